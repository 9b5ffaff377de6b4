//! APT: `Packages` indexes (plain, gzip, xz, zstd) per architecture, `Release`,
//! `InRelease`, `Release.gpg`, by-hash copies, the keyring and the suite's page.

use super::pieces::{Codec, Cutter, Member, Pieces, cores, on_threads, split};
use super::{Blob, Built, Publisher, Snapshot, rfc2822};
use crate::package::{IndexEntry, PublishedPackage};
use crate::ports::{RepoState, SignError, StoreError};
use crate::repo::{DistConfig, RepoPath};
use bytes::Bytes;
use cairn_deb::{IndexFile, ListedDigests, ReleaseFields, render_release, sha256_hex};
use futures::future::join_all;
use std::collections::BTreeMap;

/// The architecture Cairn records source packages under; their index is `main/source`.
const SOURCE: &str = "source";
/// The compressed encodings of every index, besides the plain text.
const CODECS: [Codec; 3] = [Codec::Gzip, Codec::Xz, Codec::Zstd];

impl Publisher<'_> {
    pub(super) fn build_apt(
        &self,
        repo: &RepoPath,
        dist: &DistConfig,
        packages: &BTreeMap<String, PublishedPackage>,
        pieces: &mut Pieces,
        now: time::OffsetDateTime,
    ) -> Result<Built, SignError> {
        let mut architectures = dist.architectures();
        for p in packages.values() {
            let special = p.architecture == "all" || p.architecture == SOURCE;
            if !special && !architectures.contains(&p.architecture) {
                architectures.push(p.architecture.clone());
            }
        }
        architectures.sort();
        // Index directory -> its text in pieces: one `binary-<arch>` per architecture
        // (`all` packages in each), and `source` for the `Sources` index.
        let index_of = |wanted: &dyn Fn(&str) -> bool| {
            let mut cut = Cutter::default();
            let mut first = true;
            for (filename, p) in packages {
                let IndexEntry::Deb { stanza } = &p.entry else {
                    continue;
                };
                if wanted(&p.architecture) {
                    cut.push(filename, &[if first { "" } else { "\n" }, stanza]);
                    first = false;
                }
            }
            cut.finish()
        };
        let mut by_dir: BTreeMap<String, (&str, Vec<Bytes>)> = architectures
            .iter()
            .map(|arch| {
                let text = index_of(&|a| a == arch || a == "all");
                (format!("binary-{arch}"), ("Packages", text))
            })
            .collect();
        by_dir.insert(SOURCE.to_string(), ("Sources", index_of(&|a| a == SOURCE)));
        // Compression dominates the build: only the pieces this worker has not
        // compressed before are, on both cores.
        let threads = cores();
        let compressed: Vec<(String, &str, [Bytes; 4])> = by_dir
            .into_iter()
            .map(|(dir, (base, text))| {
                let packed = pieces.pack(&format!("main/{dir}/{base}"), text, &CODECS, threads);
                let [gz, xz, zst]: [Bytes; 3] = packed
                    .packed
                    .try_into()
                    .expect("one body per codec asked for");
                (dir, base, [packed.text, gz, xz, zst])
            })
            .collect();

        let suite_dir = format!("{}/dists/{}", repo.root(), repo.suite());
        let mut by_hash = Vec::new();
        let mut canonical = Vec::new();
        let mut listed = Vec::new();
        for (index_dir, base, bodies) in compressed {
            let names = [
                (base.to_string(), "text/plain; charset=utf-8"),
                (format!("{base}.gz"), "application/gzip"),
                (format!("{base}.xz"), "application/x-xz"),
                (format!("{base}.zst"), "application/zstd"),
            ];
            let dir = format!("main/{index_dir}");
            for ((name, content_type), body) in names.into_iter().zip(bodies) {
                let digests = ListedDigests::of(&body);
                // apt fetches an index uncompressed only when no compressed form is
                // listed, so, as in Debian's archive, the plain text has no by-hash
                // copy: a quarter of the bytes each publication writes.
                if name != base {
                    by_hash.push(Blob::addressed(
                        format!("{suite_dir}/{dir}/by-hash/SHA256/{}", digests.sha256),
                        body.clone(),
                        content_type,
                    ));
                }
                canonical.push(Blob::new(
                    format!("{suite_dir}/{dir}/{name}"),
                    body,
                    content_type,
                ));
                listed.push(IndexFile {
                    path: format!("{dir}/{name}"),
                    digests,
                });
            }
        }
        let fields = ReleaseFields {
            origin: self.origin.to_string(),
            suite: repo.suite().to_string(),
            architectures,
            components: vec!["main".into()],
            date: rfc2822(now),
            description: format!("{} {} {}", self.origin, repo.root(), repo.suite()),
        };
        let release = render_release(&fields, &listed);
        // The signed text must equal Release byte for byte, as `gpg --clearsign`
        // produces it: the signer signs up to, not including, the final newline.
        let inrelease = self.signer.clearsign(&release)?;
        let release_gpg = self.signer.detached(release.as_bytes())?;
        let key_armored = self.signer.public_keys_armored()?;
        let key_binary = self.signer.public_keys_binary()?;
        let metadata_sha256 = sha256_hex(release.as_bytes());
        let title = format!("{} {} {}", self.origin, repo.root(), repo.suite());
        let usage = crate::html::apt_usage(repo, self.base_url);
        let page = self.page(repo, &title, &usage, packages);

        // Every index at once, by hash and by name: both are read only through the
        // Release written after them.
        let mut indexes = by_hash;
        indexes.extend(canonical);
        let phases = vec![
            indexes,
            vec![
                Blob::new(
                    format!("{}/cairn-archive-keyring.gpg", repo.root()),
                    key_binary,
                    "application/pgp-keys",
                ),
                Blob::new(
                    format!("{}/cairn-archive-keyring.asc", repo.root()),
                    key_armored.into_bytes(),
                    "application/pgp-keys",
                ),
                Blob::new(
                    format!("{suite_dir}/Release.gpg"),
                    release_gpg.into_bytes(),
                    "application/pgp-signature",
                ),
            ],
            vec![Blob::new(
                format!("{suite_dir}/Release"),
                release.into_bytes(),
                "text/plain; charset=utf-8",
            )],
            vec![Blob::new(
                format!("{suite_dir}/InRelease"),
                inrelease.into_bytes(),
                "text/plain; charset=utf-8",
            )],
            // The page is informational; it follows the metadata it describes.
            vec![Blob::new(
                format!("{suite_dir}/index.html"),
                page.into_bytes(),
                "text/html; charset=utf-8",
            )],
        ];
        Ok(Built {
            phases,
            metadata_sha256,
        })
    }

    /// Reads the published package set back from the bucket: the `Release` whose
    /// digest the state records, then each `Packages` index by hash. `None` when
    /// anything does not match (the caller falls back to a full read).
    pub(super) async fn load_published(
        &self,
        repo: &RepoPath,
        state: &RepoState,
    ) -> Result<Option<Snapshot>, StoreError> {
        let Some(expected) = state.release_sha256.as_deref() else {
            return Ok(None);
        };
        let suite_dir = format!("{}/dists/{}", repo.root(), repo.suite());
        let Some(release) = self.store.get(&format!("{suite_dir}/Release")).await? else {
            return Ok(None);
        };
        if sha256_hex(&release) != expected {
            return Ok(None);
        }
        let Ok(release) = std::str::from_utf8(&release) else {
            return Ok(None);
        };
        let Some(sha_section) = release.split("\nSHA256:\n").nth(1) else {
            return Ok(None);
        };
        let mut listed = BTreeMap::new();
        for line in sha_section.lines().take_while(|l| l.starts_with(' ')) {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [digest, _size, path] = parts[..] else {
                return Ok(None);
            };
            listed.insert(path, digest);
        }
        let mut packages = BTreeMap::new();
        let mut pieces = Pieces::default();
        for (path, digest) in &listed {
            if !path.ends_with("/Packages") && !path.ends_with("/Sources") {
                continue;
            }
            // From the compressed forms, which also give this worker their pieces;
            // else (an index published before pieces, say) from the text.
            let index = match self.read_pieces(&suite_dir, path, &listed).await? {
                Some((text, read)) => {
                    pieces.seed(path, &CODECS, read);
                    text
                }
                None => {
                    // The plain text has no by-hash copy; its name may hold a newer
                    // text (a sync that failed before its Release), which the digest
                    // check below refuses.
                    let Some(index) = self.store.get(&format!("{suite_dir}/{path}")).await? else {
                        return Ok(None);
                    };
                    index
                }
            };
            if sha256_hex(&index) != *digest {
                return Ok(None);
            }
            let Ok(index) = std::str::from_utf8(&index) else {
                return Ok(None);
            };
            let stanzas: Vec<&str> = index
                .split("\n\n")
                .filter(|s| !s.trim().is_empty())
                .collect();
            let sources = path.ends_with("/Sources");
            let parsed = on_threads(&stanzas, cores(), |stanza| {
                if sources {
                    published_from_sources_stanza(repo, stanza)
                } else {
                    published_from_stanza(repo, stanza)
                }
            });
            for parsed in parsed {
                let Some(package) = parsed else {
                    return Ok(None);
                };
                packages.insert(package.file_name().to_string(), package);
            }
        }
        Ok(Some(Snapshot {
            seq: state.published_seq,
            release_sha256: expected.to_string(),
            packages,
            pieces,
        }))
    }

    /// The index at `path` (e.g. `main/binary-amd64/Packages`) read back from its
    /// compressed forms as published by hash: its text and its pieces, each with its
    /// member in every codec. `None` when one is not listed, is missing, or does not
    /// split into the same pieces as the others.
    async fn read_pieces(
        &self,
        suite_dir: &str,
        path: &str,
        listed: &BTreeMap<&str, &str>,
    ) -> Result<Option<ReadBack>, StoreError> {
        let dir = path.rsplit_once('/').map_or("", |(dir, _)| dir);
        let mut keys = Vec::new();
        for extension in ["gz", "xz", "zst"] {
            let Some(digest) = listed.get(format!("{path}.{extension}").as_str()) else {
                return Ok(None);
            };
            keys.push((
                format!("{suite_dir}/{dir}/by-hash/SHA256/{digest}"),
                *digest,
            ));
        }
        let bodies = join_all(keys.iter().map(|(key, _)| self.store.get(key))).await;
        let mut files = Vec::new();
        for (body, (_, digest)) in bodies.into_iter().zip(&keys) {
            match body? {
                Some(body) if sha256_hex(&body) == *digest => files.push(body),
                _ => return Ok(None),
            }
        }
        let Some(gz) = split(Codec::Gzip, &files[0], None) else {
            return Ok(None);
        };
        let texts: Vec<Bytes> = gz.iter().map(|(_, text)| text.clone()).collect();
        let (Some(xz), Some(zst)) = (
            split(Codec::Xz, &files[1], Some(&texts)),
            split(Codec::Zstd, &files[2], Some(&texts)),
        ) else {
            return Ok(None);
        };
        let text = Bytes::from(texts.concat());
        let read = gz
            .into_iter()
            .zip(xz)
            .zip(zst)
            .map(|(((gz, text), (xz, _)), (zst, _))| (text, vec![gz, xz, zst]))
            .collect();
        Ok(Some((text, read)))
    }
}

/// An index read back: its text, and each piece's text with its members.
type ReadBack = (Bytes, Vec<(Bytes, Vec<Member>)>);

/// A source package as a `Sources` stanza describes it: its `.dsc` is the `Files`
/// entry ending in `.dsc`.
fn published_from_sources_stanza(repo: &RepoPath, stanza: &str) -> Option<PublishedPackage> {
    let field = |name: &str| {
        stanza.lines().find_map(|l| {
            l.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(": "))
                .map(str::to_string)
        })
    };
    let files = stanza.split("\nFiles:\n").nth(1)?;
    let (size, dsc) = files
        .lines()
        .take_while(|l| l.starts_with(' '))
        .filter_map(|l| {
            let parts: Vec<&str> = l.split_whitespace().collect();
            match parts[..] {
                [_, size, name] if name.ends_with(".dsc") => Some((size.parse().ok()?, name)),
                _ => None,
            }
        })
        .next()?;
    Some(PublishedPackage {
        name: field("Package")?,
        version: field("Version")?,
        architecture: SOURCE.into(),
        size,
        pool_key: format!("{}/{}/{dsc}", repo.root(), field("Directory")?),
        entry: IndexEntry::Deb {
            stanza: format!("{}\n", stanza.trim_end_matches('\n')),
        },
    })
}

/// A published package as a `Packages` stanza describes it.
fn published_from_stanza(repo: &RepoPath, stanza: &str) -> Option<PublishedPackage> {
    let field = |name: &str| {
        stanza.lines().find_map(|l| {
            l.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(": "))
                .map(str::to_string)
        })
    };
    Some(PublishedPackage {
        name: field("Package")?,
        version: field("Version")?,
        architecture: field("Architecture")?,
        size: field("Size")?.parse().ok()?,
        pool_key: format!("{}/{}", repo.root(), field("Filename")?),
        entry: IndexEntry::Deb {
            stanza: format!("{}\n", stanza.trim_end_matches('\n')),
        },
    })
}
