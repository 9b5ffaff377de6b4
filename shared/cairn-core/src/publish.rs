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
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Instant;

/// How many suites a warm worker keeps snapshots of.
const SNAPSHOT_CACHE_SUITES: usize = 32;

/// A suite's published package set: file name -> (architecture, stanza), as of
/// `seq`. Kept by a warm worker so that the next sync reads only what changed.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The `change_seq` this set reflects.
    pub seq: u64,
    /// SHA-256 of the `Release` published from it.
    pub release_sha256: String,
    /// Ready packages by file name.
    pub packages: BTreeMap<String, (String, String)>,
}

/// Snapshots of recently published suites, shared across invocations of a worker.
#[derive(Debug, Default)]
pub struct SnapshotCache {
    suites: Mutex<HashMap<RepoPath, Snapshot>>,
}

impl SnapshotCache {
    fn take(&self, repo: &RepoPath) -> Option<Snapshot> {
        self.suites
            .lock()
            .expect("snapshot cache lock is never poisoned")
            .remove(repo)
    }

    fn put(&self, repo: &RepoPath, snapshot: Snapshot) {
        let mut suites = self
            .suites
            .lock()
            .expect("snapshot cache lock is never poisoned");
        if suites.len() >= SNAPSHOT_CACHE_SUITES {
            // Any victim will do: a miss only costs one full read.
            if let Some(victim) = suites.keys().next().cloned() {
                suites.remove(&victim);
            }
        }
        suites.insert(repo.clone(), snapshot);
    }
}

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

/// Where a sync's package set came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Baseline {
    /// This worker's snapshot of the published set, plus the change log.
    Cache,
    /// The published indexes (verified against the recorded `Release` digest),
    /// plus the change log: a cold worker's path.
    Published,
    /// Every package record of the suite (first publication, or an expired log).
    #[default]
    Full,
}

impl std::fmt::Display for Baseline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Baseline::Cache => "cache",
            Baseline::Published => "published",
            Baseline::Full => "full",
        })
    }
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
    /// What the package set was rebuilt from.
    pub baseline: Baseline,
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
    /// Public URL of the repository bucket, for the human-friendly page.
    pub base_url: &'a str,
    /// Snapshots kept between invocations.
    pub cache: &'a SnapshotCache,
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
        // Every change up to this sequence number is in the catalog: records are
        // written before the change is noted.
        let target_seq = state.change_seq.max(requested_seq);

        let started = Instant::now();
        let (packages, baseline) = self.read_packages(repo, &state, target_seq).await?;
        let catalog_ms = started.elapsed().as_millis();

        let started = Instant::now();
        let mut architectures: Vec<String> = dist.architectures.clone();
        for (arch, _) in packages.values() {
            if arch != "all" && !architectures.contains(arch) {
                architectures.push(arch.clone());
            }
        }
        architectures.sort();
        let by_arch: BTreeMap<String, String> = architectures
            .iter()
            .map(|arch| {
                let mut index = String::new();
                for (p_arch, stanza) in packages.values() {
                    if p_arch == arch || p_arch == "all" {
                        if !index.is_empty() {
                            index.push('\n');
                        }
                        index.push_str(stanza);
                    }
                }
                (arch.clone(), index)
            })
            .collect();
        // Compression dominates the build: run the indexes' compressors in parallel.
        let compressed: Vec<(String, Bytes, Bytes, Bytes)> = std::thread::scope(|scope| {
            let handles: Vec<_> = by_arch
                .iter()
                .map(|(arch, text)| {
                    let plain = Bytes::from(text.clone().into_bytes());
                    let xz_input = plain.clone();
                    let xz_handle = scope.spawn(move || Bytes::from(xz(&xz_input)));
                    let gz = Bytes::from(gzip(&plain));
                    (arch.clone(), plain, gz, xz_handle)
                })
                .collect();
            handles
                .into_iter()
                .map(|(arch, plain, gz, xz_handle)| {
                    let xz = xz_handle.join().expect("xz compression does not panic");
                    (arch, plain, gz, xz)
                })
                .collect()
        });

        let suite_dir = format!("{}/dists/{}", repo.root(), repo.suite());
        let mut by_hash = Vec::new();
        let mut canonical = Vec::new();
        let mut listed = Vec::new();
        for (arch, plain, gz, xz) in compressed {
            let variants = [
                ("Packages", plain, "text/plain; charset=utf-8"),
                ("Packages.gz", gz, "application/gzip"),
                ("Packages.xz", xz, "application/x-xz"),
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
        let release_sha256 = Digests::of(release.as_bytes()).sha256;
        let page = crate::html::suite_page(repo, self.base_url, self.origin, &packages);
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
        // The page is informational; it follows the metadata it describes.
        self.write_all(vec![Blob {
            key: format!("{suite_dir}/index.html"),
            body: Bytes::from(page.into_bytes()),
            content_type: "text/html; charset=utf-8",
        }])
        .await?;
        let write_ms = started.elapsed().as_millis();

        let package_count = packages.len();
        let new_state = RepoState {
            change_seq: state.change_seq,
            published_seq: target_seq,
            publish_count: state.publish_count + 1,
            release_sha256: Some(release_sha256.clone()),
            published_at: Some(now.unix_timestamp()),
        };
        // A concurrent sync that published a newer sequence wins; ours was correct
        // for its snapshot and is simply superseded (and not cached).
        if self.catalog.record_publish(repo, &new_state).await? {
            self.cache.put(
                repo,
                Snapshot {
                    seq: target_seq,
                    release_sha256,
                    packages,
                },
            );
        }
        Ok(PublishReport {
            rebuilt: true,
            baseline,
            packages: package_count,
            published_seq: target_seq,
            catalog_ms,
            build_ms,
            write_ms,
        })
    }

    /// The suite's ready packages as of `target_seq`: a snapshot of the published set
    /// (this worker's, or read back from the published indexes) plus the change log
    /// since; a full read of the suite when neither is usable.
    async fn read_packages(
        &self,
        repo: &RepoPath,
        state: &RepoState,
        target_seq: u64,
    ) -> Result<(BTreeMap<String, (String, String)>, Baseline), StoreError> {
        let current = |snap: &Snapshot| {
            snap.seq == state.published_seq
                && state.release_sha256.as_deref() == Some(snap.release_sha256.as_str())
        };
        let base = match self.cache.take(repo).filter(current) {
            Some(snap) => Some((snap, Baseline::Cache)),
            None => self
                .load_published(repo, state)
                .await?
                .map(|snap| (snap, Baseline::Published)),
        };
        if let Some((mut snap, baseline)) = base {
            let changes = self.catalog.changes(repo, snap.seq, target_seq).await?;
            if changes.len() as u64 == target_seq - snap.seq {
                let mut files: Vec<String> = changes.into_iter().flat_map(|c| c.files).collect();
                files.sort();
                files.dedup();
                let found = self.catalog.get_packages(repo, &files).await?;
                for name in &files {
                    snap.packages.remove(name);
                }
                for p in found {
                    if p.status == PackageStatus::Ready {
                        snap.packages.insert(p.filename, (p.architecture, p.stanza));
                    }
                }
                return Ok((snap.packages, baseline));
            }
            tracing::info!(repo = %repo, "change log does not cover the snapshot; full read");
        }
        let packages = self
            .catalog
            .list_packages(repo)
            .await?
            .into_iter()
            .filter(|p| p.status == PackageStatus::Ready)
            .map(|p| (p.filename, (p.architecture, p.stanza)))
            .collect();
        Ok((packages, Baseline::Full))
    }

    /// Reads the published package set back from the bucket: the `Release` whose
    /// digest the state records, then each `Packages` index by hash. `None` when
    /// anything does not match (the caller falls back to a full read).
    async fn load_published(
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
        if Digests::of(&release).sha256 != expected {
            return Ok(None);
        }
        let Ok(release) = std::str::from_utf8(&release) else {
            return Ok(None);
        };
        let Some(sha_section) = release.split("\nSHA256:\n").nth(1) else {
            return Ok(None);
        };
        let mut packages = BTreeMap::new();
        for line in sha_section.lines().take_while(|l| l.starts_with(' ')) {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [digest, _size, path] = parts[..] else {
                return Ok(None);
            };
            let Some(dir) = path.strip_suffix("/Packages") else {
                continue;
            };
            let key = format!("{suite_dir}/{dir}/by-hash/SHA256/{digest}");
            let Some(index) = self.store.get(&key).await? else {
                return Ok(None);
            };
            if Digests::of(&index).sha256 != digest {
                return Ok(None);
            }
            let Ok(index) = std::str::from_utf8(&index) else {
                return Ok(None);
            };
            for stanza in index.split("\n\n").filter(|s| !s.trim().is_empty()) {
                let field = |name: &str| {
                    stanza.lines().find_map(|l| {
                        l.strip_prefix(name)
                            .and_then(|rest| rest.strip_prefix(": "))
                            .map(str::to_string)
                    })
                };
                let (Some(filename), Some(arch)) = (field("Filename"), field("Architecture"))
                else {
                    return Ok(None);
                };
                let name = filename.rsplit('/').next().unwrap_or_default().to_string();
                let text = format!("{}\n", stanza.trim_end_matches('\n'));
                packages.insert(name, (arch, text));
            }
        }
        Ok(Some(Snapshot {
            seq: state.published_seq,
            release_sha256: expected.to_string(),
            packages,
        }))
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
