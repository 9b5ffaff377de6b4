//! YUM/DNF: one repository per architecture folder (`x86_64`, `aarch64`, ...,
//! `SRPMS`), each with content-addressed `repodata/<sha256>-{primary,filelists,other}.xml.gz`,
//! `repomd.xml` and its armoured signature `repomd.xml.asc`; plus the public key, a
//! `.repo` file and the page.

use super::pieces::{Codec, Cutter, Member, Pieces, cores, on_threads, split};
use super::{Blob, Built, Publisher, Snapshot};
use crate::package::{IndexEntry, PublishedPackage, rpm_arch_dirs};
use crate::ports::{RepoState, SignError, StoreError};
use crate::repo::{DistConfig, MetadataCompression, RepoPath};
use crate::verify::{between, unescape_xml};
use bytes::Bytes;
use cairn_deb::sha256_hex;
use cairn_rpm::{RepomdEntry, document_frame, repomd_xml};
use futures::future::join_all;
use std::collections::BTreeMap;

/// One rendered document: its type, its text and the text compressed.
type Rendered = (&'static str, Bytes, Bytes);

/// One architecture folder's three documents, before compression: each package's
/// file name and fragment.
#[derive(Default)]
struct Documents<'a> {
    primary: Vec<(&'a str, &'a str)>,
    filelists: Vec<(&'a str, &'a str)>,
    other: Vec<(&'a str, &'a str)>,
}

impl Publisher<'_> {
    pub(super) fn build_yum(
        &self,
        repo: &RepoPath,
        dist: &DistConfig,
        packages: &BTreeMap<String, PublishedPackage>,
        pieces: &mut Pieces,
        now: time::OffsetDateTime,
    ) -> Result<Built, SignError> {
        let mut folders: BTreeMap<String, Documents<'_>> = dist
            .architectures()
            .into_iter()
            .map(|a| (a, Documents::default()))
            .collect();
        for (filename, p) in packages {
            let IndexEntry::Rpm {
                primary,
                filelists,
                other,
            } = &p.entry
            else {
                continue;
            };
            for folder in rpm_arch_dirs(&p.architecture, dist) {
                let docs = folders.entry(folder).or_default();
                docs.primary.push((filename, primary));
                docs.filelists.push((filename, filelists));
                docs.other.push((filename, other));
            }
        }
        let timestamp = now.unix_timestamp();
        let compression = dist.metadata_compression;
        let (extension, content_type, codec) = match compression {
            MetadataCompression::Gzip => ("gz", "application/gzip", Codec::Gzip),
            MetadataCompression::Zstd => ("zst", "application/zstd", Codec::Zstd),
        };
        let dir = repo.dir();
        // Compression is the bulk of the work: only the pieces this worker has not
        // compressed before are, on both cores.
        let threads = cores();
        let rendered: Vec<(String, Vec<Rendered>)> = folders
            .iter()
            .map(|(folder, docs)| {
                let documents = [
                    ("primary", &docs.primary),
                    ("filelists", &docs.filelists),
                    ("other", &docs.other),
                ]
                .into_iter()
                .map(|(kind, fragments)| {
                    let (head, tail) = document_frame(kind, fragments.len())
                        .expect("primary, filelists and other are documents");
                    let mut cut = Cutter::default();
                    cut.own_piece(&head);
                    for (filename, fragment) in fragments {
                        cut.push(filename, &[fragment]);
                    }
                    cut.own_piece(&tail);
                    let packed =
                        pieces.pack(&format!("{folder}/{kind}"), cut.finish(), &[codec], threads);
                    let [body]: [Bytes; 1] = packed
                        .packed
                        .try_into()
                        .expect("one body per codec asked for");
                    (kind, packed.text, body)
                })
                .collect();
                (folder.clone(), documents)
            })
            .collect();

        let mut data_files = Vec::new();
        let mut repomds = Vec::new();
        let mut signatures = Vec::new();
        let mut all_repomd = String::new();
        // Every document's two checksums (megabytes of text), on both cores.
        let all: Vec<&Rendered> = rendered.iter().flat_map(|(_, docs)| docs).collect();
        let mut checksums = on_threads(&all, threads, |(_, open, packed)| {
            (sha256_hex(open), sha256_hex(packed))
        })
        .into_iter();
        for (folder, documents) in rendered {
            let mut entries = Vec::new();
            for (kind, open, packed) in documents {
                let (open_checksum, checksum) = checksums
                    .next()
                    .expect("one pair of checksums per document");
                let href = format!("repodata/{checksum}-{kind}.xml.{extension}");
                let size = packed.len() as u64;
                data_files.push(Blob::addressed(
                    format!("{dir}/{folder}/{href}"),
                    packed,
                    content_type,
                ));
                entries.push(RepomdEntry {
                    kind: kind.to_string(),
                    href,
                    checksum,
                    size,
                    open_checksum,
                    open_size: open.len() as u64,
                    timestamp,
                });
            }
            let repomd = repomd_xml(timestamp, &entries);
            let signature = self.signer.detached(repomd.as_bytes())?;
            all_repomd.push_str(&repomd);
            repomds.push(Blob::new(
                format!("{dir}/{folder}/repodata/repomd.xml"),
                repomd.into_bytes(),
                "text/xml; charset=utf-8",
            ));
            signatures.push(Blob::new(
                format!("{dir}/{folder}/repodata/repomd.xml.asc"),
                signature.into_bytes(),
                "application/pgp-signature",
            ));
        }
        let key_armored = self.signer.public_keys_armored()?;
        let title = format!("{} {}", self.origin, repo);
        let usage = crate::html::dnf_usage(repo, self.base_url);
        let page = self.page(repo, &title, &usage, packages);
        let repo_file = crate::html::dnf_repo_file(repo, self.base_url, self.origin);
        let phases = vec![
            data_files,
            vec![
                Blob::new(
                    format!("{dir}/RPM-GPG-KEY-cairn"),
                    key_armored.into_bytes(),
                    "application/pgp-keys",
                ),
                Blob::new(
                    format!("{dir}/cairn.repo"),
                    repo_file.into_bytes(),
                    "text/plain; charset=utf-8",
                ),
            ],
            // dnf reads repomd.xml, then its signature: the pair is written back to
            // back, and a client that catches the moment in between retries.
            repomds,
            signatures,
            vec![Blob::new(
                format!("{dir}/index.html"),
                page.into_bytes(),
                "text/html; charset=utf-8",
            )],
        ];
        Ok(Built {
            phases,
            metadata_sha256: sha256_hex(all_repomd.as_bytes()),
        })
    }

    /// Reads the published package set back from the bucket, as a cold worker's
    /// baseline: every folder's `repomd.xml` (their concatenation must have the digest
    /// the state records), each document it names (checked against its checksum),
    /// split back into the per-package fragments they were built from. `None` when
    /// anything does not match; the caller then reads the catalog in full.
    pub(super) async fn load_published_yum(
        &self,
        repo: &RepoPath,
        dist: &DistConfig,
        state: &RepoState,
    ) -> Result<Option<Snapshot>, StoreError> {
        let Some(expected) = state.release_sha256.as_deref() else {
            return Ok(None);
        };
        let dir = repo.dir();
        // The folders the builder writes, in its (sorted) order. A folder only an
        // unusual architecture created is not guessed: the digest then differs and the
        // caller falls back to a full read.
        let mut folders = dist.architectures();
        folders.push("SRPMS".into());
        folders.sort();
        folders.dedup();
        let keys: Vec<String> = folders
            .iter()
            .map(|folder| format!("{dir}/{folder}/repodata/repomd.xml"))
            .collect();
        let bodies = join_all(keys.iter().map(|key| self.store.get(key))).await;
        let mut repomds = Vec::new();
        let mut all = String::new();
        for (folder, body) in folders.into_iter().zip(bodies) {
            if let Some(body) = body? {
                let Ok(text) = String::from_utf8(body.to_vec()) else {
                    return Ok(None);
                };
                all.push_str(&text);
                repomds.push((folder, text));
            }
        }
        if sha256_hex(all.as_bytes()) != expected {
            return Ok(None);
        }
        // Every folder's three documents, fetched at once.
        let mut located = Vec::with_capacity(3 * repomds.len());
        for (folder, repomd) in &repomds {
            for kind in ["primary", "filelists", "other"] {
                let Some(block) = repomd.split(&format!("<data type=\"{kind}\">")).nth(1) else {
                    return Ok(None);
                };
                let (Some(href), Some(checksum)) = (
                    between(block, "<location href=\"", "\""),
                    between(block, "<checksum type=\"sha256\">", "<"),
                ) else {
                    return Ok(None);
                };
                located.push((folder.as_str(), kind, href, checksum));
            }
        }
        let keys: Vec<String> = located
            .iter()
            .map(|(folder, _, href, _)| format!("{dir}/{folder}/{href}"))
            .collect();
        let bodies = join_all(keys.iter().map(|key| self.store.get(key))).await;
        let mut fetched = Vec::with_capacity(located.len());
        for (place, body) in located.into_iter().zip(bodies) {
            let Some(body) = body? else {
                return Ok(None);
            };
            fetched.push((place, body));
        }
        // Checked, split into their members (the pieces they were packed from, which
        // this worker keeps) and decoded, on both cores.
        let threads = cores();
        let opened = on_threads(&fetched, threads, |((_, _, href, checksum), packed)| {
            read_document(href, checksum, packed)
        });
        let mut pieces = Pieces::default();
        let mut opened = opened.into_iter();
        let mut texts = Vec::with_capacity(repomds.len());
        for (folder, _) in &repomds {
            let mut documents = Vec::with_capacity(3);
            for kind in ["primary", "filelists", "other"] {
                let Some(Some((codec, text, members))) = opened.next() else {
                    return Ok(None);
                };
                pieces.seed(&format!("{folder}/{kind}"), &[codec], members);
                documents.push(text);
            }
            texts.push(documents);
        }
        // Each package's three fragments, folder after folder, parsed on both cores.
        let mut triples = Vec::new();
        for documents in &texts {
            let [primary, filelists, other] = &documents[..] else {
                return Ok(None);
            };
            let (primary, filelists, other) =
                (fragments(primary), fragments(filelists), fragments(other));
            if primary.len() != filelists.len() || primary.len() != other.len() {
                return Ok(None);
            }
            triples.extend(primary.into_iter().zip(filelists).zip(other));
        }
        let parsed = on_threads(&triples, threads, |((p, f), o)| {
            published_from_primary(&dir, dist, p, f, o)
        });
        let mut packages = BTreeMap::new();
        for package in parsed {
            let Some(package) = package else {
                return Ok(None);
            };
            // A noarch package is in every folder: the first one read stands.
            packages
                .entry(package.file_name().to_string())
                .or_insert(package);
        }
        Ok(Some(Snapshot {
            seq: state.published_seq,
            release_sha256: expected.to_string(),
            packages,
            pieces,
        }))
    }
}

/// A published document read back: its codec, its text, and each member with its text.
type ReadDocument = (Codec, String, Vec<(Bytes, Vec<Member>)>);

/// A document as fetched, checked against the checksum `repomd.xml` gives and split
/// into its members; `None` when it does not match or split.
fn read_document(href: &str, checksum: &str, packed: &Bytes) -> Option<ReadDocument> {
    if sha256_hex(packed) != checksum {
        return None;
    }
    let codec = codec_of(href);
    let members = split(codec, packed, None)?;
    let text = text_of(&members)?;
    let members = members
        .into_iter()
        .map(|(member, text)| (text, vec![member]))
        .collect();
    Some((codec, text, members))
}

/// A repodata document's codec, by its extension (`.zst`, else gzip).
fn codec_of(href: &str) -> Codec {
    if href.ends_with(".zst") {
        Codec::Zstd
    } else {
        Codec::Gzip
    }
}

/// The text of a document's members, in order.
fn text_of(members: &[(Member, Bytes)]) -> Option<String> {
    let texts: Vec<&[u8]> = members.iter().map(|(_, t)| t.as_ref()).collect();
    String::from_utf8(texts.concat()).ok()
}

/// A repodata document's text: its members (gzip members or zstd frames, the
/// pieces it was packed from) decoded one after the other. `None` when it is not
/// such a sequence or not UTF-8.
pub(crate) fn unpack_document(href: &str, packed: &Bytes) -> Option<String> {
    text_of(&split(codec_of(href), packed, None)?)
}

/// The `<package` elements of a repodata document, exactly as they were concatenated
/// into it. Package text is XML-escaped, so `<package ` only ever opens an element.
fn fragments(document: &str) -> Vec<&str> {
    let starts: Vec<usize> = document
        .match_indices("<package ")
        .map(|(i, _)| i)
        .collect();
    let end = document.rfind("</").unwrap_or(document.len());
    starts
        .iter()
        .enumerate()
        .map(|(n, &start)| &document[start..starts.get(n + 1).copied().unwrap_or(end)])
        .collect()
}

/// A published package from its three fragments.
fn published_from_primary(
    dir: &str,
    dist: &DistConfig,
    primary: &str,
    filelists: &str,
    other: &str,
) -> Option<PublishedPackage> {
    let attr = |element: &str, name: &str| -> Option<String> {
        let tag = between(primary, &format!("<{element} "), ">")?;
        Some(unescape_xml(between(tag, &format!("{name}=\""), "\"")?))
    };
    let name = unescape_xml(between(primary, "<name>", "</name>")?);
    let arch = unescape_xml(between(primary, "<arch>", "</arch>")?);
    let (epoch, ver, rel) = (
        attr("version", "epoch")?,
        attr("version", "ver")?,
        attr("version", "rel")?,
    );
    let version = if epoch == "0" {
        format!("{ver}-{rel}")
    } else {
        format!("{epoch}:{ver}-{rel}")
    };
    let filename = attr("location", "href")?
        .strip_prefix("Packages/")?
        .to_string();
    let folder = rpm_arch_dirs(&arch, dist).into_iter().next()?;
    Some(PublishedPackage {
        name,
        version,
        size: attr("size", "package")?.parse().ok()?,
        pool_key: format!("{dir}/{folder}/Packages/{filename}"),
        architecture: arch,
        entry: IndexEntry::Rpm {
            primary: primary.to_string(),
            filelists: filelists.to_string(),
            other: other.to_string(),
        },
    })
}
