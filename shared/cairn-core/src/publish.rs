//! Metadata sync: rebuild a suite's signed APT metadata from the catalog alone.
//!
//! Write order keeps every published `Release` truthful: by-hash objects first,
//! then the canonical index paths, then `Release.gpg`, `Release`, and `InRelease`
//! last. A client that sees a new `InRelease` finds every index it names.

use crate::package::PackageStatus;
use crate::ports::{Catalog, RepoState, RepoStore, SignError, Signer, StoreError};
use crate::repo::{RepoError, RepoPath, SupportedRepos};
use bytes::Bytes;
use cairn_deb::{Digests, IndexFile, ReleaseFields, gzip, render_release, xz};
use futures::future::join_all;
use std::collections::BTreeMap;
use std::time::Instant;

/// Why a sync failed; every variant is retried by the queue.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The suite is not configured (message dropped after logging).
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Signing failed.
    #[error(transparent)]
    Sign(#[from] SignError),
}

/// What one sync did, with timings for the benchmark and the logs.
#[derive(Debug, Clone, Default)]
pub struct PublishReport {
    /// False when the published metadata already covered the request.
    pub rebuilt: bool,
    /// Packages in the published indexes.
    pub packages: usize,
    /// The `change_seq` now published.
    pub published_seq: u64,
    /// Milliseconds reading the catalog.
    pub catalog_ms: u128,
    /// Milliseconds generating, compressing and signing.
    pub build_ms: u128,
    /// Milliseconds writing to the bucket.
    pub write_ms: u128,
}

/// The publisher service.
pub struct Publisher<'a> {
    /// Package catalog.
    pub catalog: &'a dyn Catalog,
    /// Repository bucket.
    pub store: &'a dyn RepoStore,
    /// Metadata signer.
    pub signer: &'a dyn Signer,
    /// Configured repositories.
    pub supported: &'a SupportedRepos,
    /// `Origin` and `Label`.
    pub origin: &'a str,
}

struct Blob {
    key: String,
    body: Bytes,
    content_type: &'static str,
}

impl Publisher<'_> {
    /// Republishes `repo` unless its published metadata already reflects `requested_seq`.
    pub async fn sync(
        &self,
        repo: &RepoPath,
        requested_seq: u64,
        now: time::OffsetDateTime,
    ) -> Result<PublishReport, PublishError> {
        let dist = self.supported.check(repo)?;
        let state = self.catalog.repo_state(repo).await?;
        if state.published_seq >= requested_seq && state.release_sha256.is_some() {
            return Ok(PublishReport {
                published_seq: state.published_seq,
                ..Default::default()
            });
        }
        // Everything noted up to this sequence number is visible to the read below,
        // because records are written before the change is noted.
        let target_seq = state.change_seq.max(requested_seq);

        let started = Instant::now();
        let packages = self.catalog.list_packages(repo).await?;
        let catalog_ms = started.elapsed().as_millis();

        let started = Instant::now();
        let mut by_arch: BTreeMap<String, String> = dist
            .architectures
            .iter()
            .map(|a| (a.clone(), String::new()))
            .collect();
        let ready: Vec<_> = packages
            .iter()
            .filter(|p| p.status == PackageStatus::Ready)
            .collect();
        for p in &ready {
            if p.architecture != "all" {
                by_arch.entry(p.architecture.clone()).or_default();
            }
        }
        for p in &ready {
            for (arch, index) in by_arch.iter_mut() {
                if p.architecture == *arch || p.architecture == "all" {
                    if !index.is_empty() {
                        index.push('\n');
                    }
                    index.push_str(&p.stanza);
                }
            }
        }

        let suite_dir = format!("{}/dists/{}", repo.root(), repo.suite());
        let mut by_hash = Vec::new();
        let mut canonical = Vec::new();
        let mut listed = Vec::new();
        for (arch, text) in &by_arch {
            let plain = Bytes::from(text.clone().into_bytes());
            let variants = [
                ("Packages", plain.clone(), "text/plain; charset=utf-8"),
                ("Packages.gz", Bytes::from(gzip(&plain)), "application/gzip"),
                ("Packages.xz", Bytes::from(xz(&plain)), "application/x-xz"),
            ];
            let dir = format!("main/binary-{arch}");
            for (name, body, content_type) in variants {
                let digests = Digests::of(&body);
                by_hash.push(Blob {
                    key: format!("{suite_dir}/{dir}/by-hash/SHA256/{}", digests.sha256),
                    body: body.clone(),
                    content_type,
                });
                canonical.push(Blob {
                    key: format!("{suite_dir}/{dir}/{name}"),
                    body,
                    content_type,
                });
                listed.push(IndexFile {
                    path: format!("{dir}/{name}"),
                    digests,
                });
            }
        }
        let fields = ReleaseFields {
            origin: self.origin.to_string(),
            suite: repo.suite().to_string(),
            architectures: by_arch.keys().cloned().collect(),
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
        let release_sha256 = Digests::of(release.as_bytes()).sha256;
        let build_ms = started.elapsed().as_millis();

        let started = Instant::now();
        self.write_all(by_hash).await?;
        self.write_all(canonical).await?;
        self.write_all(vec![
            Blob {
                key: format!("{}/cairn-archive-keyring.gpg", repo.root()),
                body: Bytes::from(key_binary),
                content_type: "application/pgp-keys",
            },
            Blob {
                key: format!("{}/cairn-archive-keyring.asc", repo.root()),
                body: Bytes::from(key_armored.into_bytes()),
                content_type: "application/pgp-keys",
            },
            Blob {
                key: format!("{suite_dir}/Release.gpg"),
                body: Bytes::from(release_gpg.into_bytes()),
                content_type: "application/pgp-signature",
            },
        ])
        .await?;
        self.write_all(vec![Blob {
            key: format!("{suite_dir}/Release"),
            body: Bytes::from(release.into_bytes()),
            content_type: "text/plain; charset=utf-8",
        }])
        .await?;
        self.write_all(vec![Blob {
            key: format!("{suite_dir}/InRelease"),
            body: Bytes::from(inrelease.into_bytes()),
            content_type: "text/plain; charset=utf-8",
        }])
        .await?;
        let write_ms = started.elapsed().as_millis();

        let new_state = RepoState {
            change_seq: state.change_seq,
            published_seq: target_seq,
            publish_count: state.publish_count + 1,
            release_sha256: Some(release_sha256),
            published_at: Some(now.unix_timestamp()),
        };
        // A concurrent sync that published a newer sequence wins; ours was correct
        // for its snapshot and is simply superseded.
        self.catalog.record_publish(repo, &new_state).await?;
        Ok(PublishReport {
            rebuilt: true,
            packages: ready.len(),
            published_seq: target_seq,
            catalog_ms,
            build_ms,
            write_ms,
        })
    }

    async fn write_all(&self, blobs: Vec<Blob>) -> Result<(), StoreError> {
        let results = join_all(
            blobs
                .iter()
                .map(|b| self.store.put(&b.key, b.body.clone(), b.content_type)),
        )
        .await;
        results.into_iter().collect()
    }
}

/// `Date` field format: `Sat, 21 Nov 2026 06:00:00 UTC`.
pub fn rfc2822(t: time::OffsetDateTime) -> String {
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] UTC"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .expect("the format has only fields an OffsetDateTime has")
}
