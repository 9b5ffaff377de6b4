//! YUM/DNF: one repository per architecture folder (`x86_64`, `aarch64`, ...,
//! `SRPMS`), each with content-addressed `repodata/<sha256>-{primary,filelists,other}.xml.gz`,
//! `repomd.xml` and its armoured signature `repomd.xml.asc`; plus the public key, a
//! `.repo` file and the page.

use super::{Blob, Built, Publisher};
use crate::package::{IndexEntry, PublishedPackage, rpm_arch_dirs};
use crate::ports::SignError;
use crate::repo::{DistConfig, MetadataCompression, RepoPath};
use cairn_deb::{Digests, gzip, zstd};
use cairn_rpm::{RepomdEntry, filelists_document, other_document, primary_document, repomd_xml};
use std::collections::BTreeMap;

/// One rendered document: its type, its text and the text compressed.
type Rendered = (&'static str, Vec<u8>, Vec<u8>);

/// One architecture folder's three documents, before compression.
#[derive(Default)]
struct Documents<'a> {
    primary: Vec<&'a str>,
    filelists: Vec<&'a str>,
    other: Vec<&'a str>,
}

impl Publisher<'_> {
    pub(super) fn build_yum(
        &self,
        repo: &RepoPath,
        dist: &DistConfig,
        packages: &BTreeMap<String, PublishedPackage>,
        now: time::OffsetDateTime,
    ) -> Result<Built, SignError> {
        let mut folders: BTreeMap<String, Documents<'_>> = dist
            .architectures()
            .into_iter()
            .map(|a| (a, Documents::default()))
            .collect();
        for p in packages.values() {
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
                docs.primary.push(primary);
                docs.filelists.push(filelists);
                docs.other.push(other);
            }
        }
        let timestamp = now.unix_timestamp();
        let compression = dist.metadata_compression;
        let (extension, content_type) = match compression {
            MetadataCompression::Gzip => ("gz", "application/gzip"),
            MetadataCompression::Zstd => ("zst", "application/zstd"),
        };
        let dir = repo.dir();
        // Compressing every folder's documents is the bulk of the work: one thread each.
        let rendered: Vec<(String, Vec<Rendered>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = folders
                .iter()
                .map(|(folder, docs)| {
                    let handle = scope.spawn(move || {
                        let count = docs.primary.len();
                        [
                            ("primary", primary_document(count, &docs.primary)),
                            ("filelists", filelists_document(count, &docs.filelists)),
                            ("other", other_document(count, &docs.other)),
                        ]
                        .into_iter()
                        .map(|(kind, text)| {
                            let packed = match compression {
                                MetadataCompression::Gzip => gzip(text.as_bytes()),
                                MetadataCompression::Zstd => zstd(text.as_bytes()),
                            };
                            (kind, text.into_bytes(), packed)
                        })
                        .collect::<Vec<_>>()
                    });
                    (folder.clone(), handle)
                })
                .collect();
            handles
                .into_iter()
                .map(|(folder, h)| (folder, h.join().expect("rendering does not panic")))
                .collect()
        });

        let mut data_files = Vec::new();
        let mut repomds = Vec::new();
        let mut signatures = Vec::new();
        let mut all_repomd = String::new();
        for (folder, documents) in rendered {
            let mut entries = Vec::new();
            for (kind, open, packed) in documents {
                let open_digests = Digests::of(&open);
                let digests = Digests::of(&packed);
                let href = format!("repodata/{}-{kind}.xml.{extension}", digests.sha256);
                data_files.push(Blob::new(
                    format!("{dir}/{folder}/{href}"),
                    packed,
                    content_type,
                ));
                entries.push(RepomdEntry {
                    kind: kind.to_string(),
                    href,
                    checksum: digests.sha256,
                    size: digests.size,
                    open_checksum: open_digests.sha256,
                    open_size: open_digests.size,
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
        let page = crate::html::repo_page(&title, &usage, self.base_url, packages);
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
            metadata_sha256: Digests::of(all_repomd.as_bytes()).sha256,
        })
    }
}
