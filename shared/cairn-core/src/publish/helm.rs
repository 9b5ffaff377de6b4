//! Helm: `index.yaml` with relative chart URLs, a provenance file beside every chart
//! (the uploader's, or one Cairn signs), the public keyring and the page.

use super::{Blob, Built, PublishError, Publisher};
use crate::package::{IndexEntry, PublishedPackage};
use crate::repo::RepoPath;
use bytes::Bytes;
use std::collections::BTreeMap;

impl Publisher<'_> {
    pub(super) async fn build_helm(
        &self,
        repo: &RepoPath,
        packages: &BTreeMap<String, PublishedPackage>,
        changed: Option<&[String]>,
        now: time::OffsetDateTime,
    ) -> Result<Built, PublishError> {
        let mut entries = Vec::with_capacity(packages.len());
        for (filename, p) in packages {
            let IndexEntry::Helm { entry, provenance } = &p.entry else {
                continue;
            };
            match serde_json::from_str::<serde_json::Value>(entry) {
                Ok(value) => entries.push(value),
                Err(e) => {
                    tracing::error!(filename, error = %e, "unreadable chart entry left out of index.yaml");
                    continue;
                }
            }
            // Charts without an uploaded provenance file get one signed with the
            // repository key, once: only new charts need it (all of them after a
            // full read, where put_new keeps the ones already written).
            let is_new = changed.is_none_or(|c| c.binary_search(filename).is_ok());
            if let (Some(body), true) = (provenance, is_new) {
                let signed = self.signer.clearsign(body)?;
                self.store
                    .put_new(
                        &format!("{}.prov", p.pool_key),
                        Bytes::from(signed.into_bytes()),
                        "application/pgp-signature",
                    )
                    .await?;
            }
        }
        let index = cairn_helm::render_index(&entries, now);
        let dir = repo.dir();
        let key_binary = self.signer.public_keys_binary()?;
        let key_armored = self.signer.public_keys_armored()?;
        let title = format!("{} {}", self.origin, repo);
        let usage = crate::html::helm_usage(repo, self.base_url);
        let page = self.page(repo, &title, &usage, packages);
        let metadata_sha256 = cairn_deb::sha256_hex(index.as_bytes());
        Ok(Built {
            phases: vec![
                vec![
                    Blob::new(
                        format!("{dir}/cairn-keyring.gpg"),
                        key_binary,
                        "application/pgp-keys",
                    ),
                    Blob::new(
                        format!("{dir}/cairn-keyring.asc"),
                        key_armored.into_bytes(),
                        "application/pgp-keys",
                    ),
                ],
                vec![Blob::new(
                    format!("{dir}/index.yaml"),
                    index.into_bytes(),
                    "application/x-yaml",
                )],
                vec![Blob::new(
                    format!("{dir}/index.html"),
                    page.into_bytes(),
                    "text/html; charset=utf-8",
                )],
            ],
            metadata_sha256,
        })
    }
}
