//! Metadata sync: rebuild a repository's signed metadata from the catalog alone,
//! for each format ([`apt`], [`yum`], [`helm`]), then apply deletions and retention.
//!
//! Write order keeps every published entry point truthful: content-addressed files
//! first, then the files that name them, the signed entry point (`InRelease`,
//! `repomd.xml`, `index.yaml`) last. Files of deleted or pruned packages leave the
//! metadata first and the bucket afterwards, so no client is sent to a missing file.

mod apt;
mod helm;
mod pieces;
mod yum;

pub use pieces::Pieces;

pub(crate) use yum::unpack_document;

use crate::events::{NewEvent, Publication};
use crate::ingest::release_files;
use crate::package::{PackageRecord, PackageStatus, PublishedPackage, generated_keys, legacy_keys};
use crate::ports::{Catalog, RepoState, RepoStore, SignError, Signer, StoreError};
use crate::repo::{DistConfig, RepoError, RepoFormat, RepoPath, SupportedRepos};
use bytes::Bytes;
use futures::future::join_all;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Instant;

/// How many repositories a warm worker keeps snapshots of.
const SNAPSHOT_CACHE_SUITES: usize = 32;

/// A repository's published package set by file name, as of `seq`. Kept by a warm
/// worker so that the next sync reads only what changed.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The `change_seq` this set reflects.
    pub seq: u64,
    /// SHA-256 of the entry-point metadata published from it (see [`RepoState`]).
    pub release_sha256: String,
    /// Ready packages by file name.
    pub packages: BTreeMap<String, PublishedPackage>,
    /// The indexes' compressed pieces, to reuse (empty when read back cold).
    pub pieces: Pieces,
}

impl Snapshot {
    /// Roughly the bytes it holds: the index entries' text and the pieces.
    fn weight(&self) -> usize {
        let entries: usize = self
            .packages
            .values()
            .map(|p| match &p.entry {
                crate::package::IndexEntry::Deb { stanza } => stanza.len(),
                crate::package::IndexEntry::Rpm {
                    primary,
                    filelists,
                    other,
                } => primary.len() + filelists.len() + other.len(),
                crate::package::IndexEntry::Helm { entry, provenance } => {
                    entry.len() + provenance.as_ref().map_or(0, String::len)
                }
            })
            .sum();
        entries + self.pieces.bytes()
    }
}

/// Snapshots of recently published repositories, shared across invocations of a worker.
#[derive(Debug)]
pub struct SnapshotCache {
    /// Each snapshot with its weight, weighed once when it is put.
    suites: Mutex<HashMap<RepoPath, (Snapshot, usize)>>,
    /// Bytes the snapshots may hold together (about; see [`Snapshot::weight`]).
    budget: usize,
}

impl Default for SnapshotCache {
    /// A quarter of the function's memory (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, MB), else
    /// 128 MiB: a 10,000-package APT suite with its pieces weighs about 17 MB.
    fn default() -> Self {
        let memory_mb = std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(512);
        Self::with_budget(memory_mb / 4 * 1024 * 1024)
    }
}

impl SnapshotCache {
    /// A cache holding at most about `budget` bytes of snapshots (and always the last one).
    pub fn with_budget(budget: usize) -> Self {
        Self {
            suites: Mutex::new(HashMap::new()),
            budget,
        }
    }

    fn take(&self, repo: &RepoPath) -> Option<Snapshot> {
        self.suites
            .lock()
            .expect("snapshot cache lock is never poisoned")
            .remove(repo)
            .map(|(snapshot, _)| snapshot)
    }

    fn put(&self, repo: &RepoPath, snapshot: Snapshot) {
        let mut suites = self
            .suites
            .lock()
            .expect("snapshot cache lock is never poisoned");
        // Any victims will do: a miss only costs one read of the published indexes.
        let own = snapshot.weight();
        let mut weight: usize = own + suites.values().map(|(_, w)| w).sum::<usize>();
        while !suites.is_empty() && (suites.len() >= SNAPSHOT_CACHE_SUITES || weight > self.budget)
        {
            if let Some(victim) = suites.keys().next().cloned()
                && let Some((_, gone)) = suites.remove(&victim)
            {
                weight -= gone;
            }
        }
        suites.insert(repo.clone(), (snapshot, own));
    }
}

/// Why a sync failed; every variant is retried by the queue.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The repository is not configured (message dropped after logging).
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
    /// The published indexes (verified against the recorded digest of `Release` or
    /// of the `repomd.xml` files), plus the change log: a cold APT or YUM worker's path.
    Published,
    /// Every package record of the repository (first publication, an expired log,
    /// or a cold Helm worker: charts have no read-back path).
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
    /// Packages in the published metadata.
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
    /// Milliseconds recording the publication and its event (one transaction).
    pub record_ms: u128,
    /// Packages removed from the repository by this sync (deleted or pruned).
    pub removed: Vec<String>,
    /// Packages (file names) this sync added to the published metadata.
    pub added: usize,
    /// Bytes of metadata written (indexes, their compressed forms, signatures, page).
    pub bytes_written: u64,
    /// Index pieces this sync compressed (see `pieces.rs`).
    pub pieces_compressed: usize,
    /// Index pieces it reused, compressed by this worker's last sync.
    pub pieces_reused: usize,
    /// Superseded content-addressed objects this sync deleted (grace period over).
    pub superseded_pruned: usize,
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
    /// The API's URL: with it, the page shows the repository's recent events and
    /// follows the event stream.
    pub api_url: Option<&'a str>,
    /// Snapshots kept between invocations.
    pub cache: &'a SnapshotCache,
    /// How long a content-addressed object outlives the last publication naming it,
    /// in seconds: long enough for any client that read that publication's entry
    /// point to fetch what it names.
    pub superseded_grace_secs: i64,
}

/// One object to write.
pub(crate) struct Blob {
    pub(crate) key: String,
    pub(crate) body: Bytes,
    pub(crate) content_type: &'static str,
    /// Named by its content's digest: never rewritten with other bytes, pruned once
    /// no publication has named it for the grace period.
    pub(crate) addressed: bool,
}

impl Blob {
    pub(crate) fn new(key: String, body: impl Into<Bytes>, content_type: &'static str) -> Self {
        Self {
            key,
            body: body.into(),
            content_type,
            addressed: false,
        }
    }

    /// An object whose key holds its content's digest (see [`Blob::addressed`]).
    pub(crate) fn addressed(
        key: String,
        body: impl Into<Bytes>,
        content_type: &'static str,
    ) -> Self {
        Self {
            addressed: true,
            ..Self::new(key, body, content_type)
        }
    }
}

/// A format's rebuilt metadata: groups of objects written one group after the other.
pub(crate) struct Built {
    /// Write phases, in order; objects within a phase are written concurrently.
    pub(crate) phases: Vec<Vec<Blob>>,
    /// SHA-256 of the entry-point metadata, recorded in [`RepoState`].
    pub(crate) metadata_sha256: String,
}

/// The package set a sync works from, and what it learnt on the way.
struct PackageSet {
    packages: BTreeMap<String, PublishedPackage>,
    /// Compressed index pieces of the baseline, if this worker has them.
    pieces: Pieces,
    baseline: Baseline,
    /// Records marked for deletion that the set no longer holds.
    tombstones: Vec<PackageRecord>,
    /// File names changed since the baseline; `None` when the set was read whole.
    changed: Option<Vec<String>>,
    /// Which of the changed files the baseline held (empty for a whole read).
    before: BTreeSet<String>,
}

impl Publisher<'_> {
    /// The repository's human-friendly page.
    pub(crate) fn page(
        &self,
        repo: &RepoPath,
        title: &str,
        usage_html: &str,
        packages: &BTreeMap<String, PublishedPackage>,
    ) -> String {
        let subject = crate::events::Subject::repository(repo);
        let live = self.api_url.map(|api_url| crate::html::Live {
            api_url,
            subject: subject.as_str(),
        });
        crate::html::repo_page(title, usage_html, self.base_url, packages, live)
    }

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
        let PackageSet {
            mut packages,
            mut pieces,
            baseline,
            tombstones,
            changed,
            before,
        } = self.read_packages(repo, dist, &state, target_seq).await?;
        let pruned = self.prune(repo, dist, &mut packages).await?;
        let catalog_ms = started.elapsed().as_millis();

        let started = Instant::now();
        let (compressed_before, reused_before) = (pieces.compressed, pieces.reused);
        let built = match dist.format {
            RepoFormat::Deb => self.build_apt(repo, dist, &packages, &mut pieces, now)?,
            RepoFormat::Rpm => self.build_yum(repo, dist, &packages, &mut pieces, now)?,
            RepoFormat::Helm => {
                self.build_helm(repo, &packages, changed.as_deref(), now)
                    .await?
            }
        };
        let build_ms = started.elapsed().as_millis();
        let pieces_compressed = pieces.compressed - compressed_before;
        let pieces_reused = pieces.reused - reused_before;

        let metadata = built
            .phases
            .iter()
            .flatten()
            .filter(|b| {
                b.key.ends_with("/Release")
                    || b.key.ends_with("/repodata/repomd.xml")
                    || b.key.ends_with("/index.yaml")
            })
            .map(|b| (b.key.clone(), cairn_deb::sha256_hex(&b.body)))
            .collect();
        // Every object is written, also content-addressed ones the last publication
        // named: the state cannot vouch that they are still there (a repository's
        // metadata is removed when it changes visibility or is deleted, and the state
        // item outlives both).
        let previous: BTreeSet<&str> = state.referenced.iter().map(String::as_str).collect();
        let mut referenced: Vec<String> = built
            .phases
            .iter()
            .flatten()
            .filter(|b| b.addressed)
            .map(|b| b.key.clone())
            .collect();
        referenced.sort();
        referenced.dedup();
        let named_again: Vec<String> = referenced
            .iter()
            .filter(|k| !previous.contains(k.as_str()))
            .cloned()
            .collect();
        let bytes_written = built
            .phases
            .iter()
            .flatten()
            .map(|b| b.body.len() as u64)
            .sum();
        let started = Instant::now();
        let writes = async {
            for phase in built.phases {
                self.write_all(phase).await?;
            }
            Ok::<_, StoreError>(())
        };
        // An object named again must not be pruned for an old supersession: its note
        // goes before the publication naming it is recorded.
        futures::try_join!(writes, self.catalog.forget_superseded(repo, &named_again))?;
        let write_ms = started.elapsed().as_millis();

        let now_secs = now.unix_timestamp();
        let sweep_due = state
            .swept_at
            .is_none_or(|at| now_secs - at >= self.superseded_grace_secs / 8);
        let new_state = RepoState {
            change_seq: state.change_seq,
            published_seq: target_seq,
            publish_count: state.publish_count + 1,
            release_sha256: Some(built.metadata_sha256.clone()),
            published_at: Some(now_secs),
            referenced: referenced.clone(),
            swept_at: sweep_due.then_some(now_secs),
        };
        let package_count = packages.len();
        let (added, removed) = match changed {
            Some(files) => diff(&files, &before, &packages, &pruned),
            None => {
                let changes = self
                    .catalog
                    .changes(repo, state.published_seq, target_seq)
                    .await?;
                let files: Vec<String> = changes.into_iter().flat_map(|c| c.files).collect();
                diff(&files, &before, &packages, &pruned)
            }
        };
        let added_count = added.len();
        let event = NewEvent::repository_published(
            repo,
            &Publication {
                format: dist.format.as_str().to_string(),
                number: new_state.publish_count,
                published_seq: target_seq,
                metadata,
                metadata_sha256: built.metadata_sha256.clone(),
                packages: package_count,
                added,
                removed,
            },
        );
        // A concurrent sync that published a newer sequence wins; ours was correct
        // for its snapshot and is simply superseded (and not cached, and no event).
        let started = Instant::now();
        let recorded = self
            .catalog
            .record_publish(repo, &new_state, &event)
            .await?;
        let record_ms = started.elapsed().as_millis();
        // What stops being named now is pruned a grace period from now. A sync that
        // lost to a newer one notes what it wrote: the pruning spares whatever the
        // publication of the day names.
        let unnamed: Vec<String> = if recorded {
            let current: BTreeSet<&str> = referenced.iter().map(String::as_str).collect();
            previous
                .iter()
                .filter(|k| !current.contains(*k))
                .map(|k| k.to_string())
                .collect()
        } else {
            named_again
        };
        if recorded {
            self.cache.put(
                repo,
                Snapshot {
                    seq: target_seq,
                    release_sha256: built.metadata_sha256,
                    packages,
                    pieces,
                },
            );
        }
        // Only now that no published metadata names them do their files go: exactly
        // the files each package claimed at upload, each only once no other package
        // (a source package sharing an `.orig` tarball) still claims it.
        let mut removed = Vec::new();
        for record in tombstones.into_iter().chain(pruned) {
            if record.files.is_empty() {
                for key in legacy_keys(&record, dist) {
                    self.store.delete(&key).await?;
                }
            } else {
                release_files(
                    self.catalog,
                    self.store,
                    repo,
                    &record.filename,
                    record.files.iter().map(|f| f.key.as_str()),
                    &[],
                )
                .await?;
            }
            for key in generated_keys(&record) {
                self.store.delete(&key).await?;
            }
            self.catalog.delete_package(repo, &record.filename).await?;
            removed.push(record.filename);
        }
        // Last, and not worth failing the sync for (a retry would find the publication
        // done and do nothing): a note lost leaves objects behind, it never deletes one
        // too early; a pruning that failed is taken up by a later publication.
        let superseded_pruned = match self
            .retire_superseded(repo, &unnamed, recorded && sweep_due, &referenced, now_secs)
            .await
        {
            Ok(pruned) => pruned,
            Err(e) => {
                tracing::warn!(repo = %repo, error = %e, "superseded metadata not noted or not pruned");
                0
            }
        };
        Ok(PublishReport {
            rebuilt: true,
            baseline,
            packages: package_count,
            published_seq: target_seq,
            catalog_ms,
            build_ms,
            write_ms,
            record_ms,
            removed,
            added: added_count,
            bytes_written,
            pieces_compressed,
            pieces_reused,
            superseded_pruned,
        })
    }

    /// Notes `unnamed` as superseded now and, if `sweep`, prunes what is past the
    /// grace period (see [`Publisher::prune_superseded`]). Returns how many went.
    async fn retire_superseded(
        &self,
        repo: &RepoPath,
        unnamed: &[String],
        sweep: bool,
        referenced: &[String],
        now: i64,
    ) -> Result<usize, StoreError> {
        self.catalog.note_superseded(repo, unnamed, now).await?;
        if !sweep {
            return Ok(0);
        }
        self.prune_superseded(repo, referenced, now).await
    }

    /// Deletes the content-addressed objects superseded more than the grace period
    /// before `now` that the current publication (`referenced`) does not name, and
    /// forgets them. Runs inside a sync, after its publication is recorded: the
    /// repository's syncs never overlap (one queue message group per repository), so
    /// no publication naming one of them can be in the making. Returns how many
    /// objects went.
    async fn prune_superseded(
        &self,
        repo: &RepoPath,
        referenced: &[String],
        now: i64,
    ) -> Result<usize, StoreError> {
        let expired = self
            .catalog
            .superseded(repo, now - self.superseded_grace_secs)
            .await?;
        let doomed: Vec<&str> = expired
            .iter()
            .map(|s| s.key.as_str())
            .filter(|k| referenced.binary_search_by(|r| r.as_str().cmp(k)).is_err())
            .collect();
        for chunk in doomed.chunks(32) {
            let results = join_all(chunk.iter().map(|key| self.store.delete(key))).await;
            results.into_iter().collect::<Result<Vec<()>, _>>()?;
        }
        let pruned = doomed.len();
        let keys: Vec<String> = expired.into_iter().map(|s| s.key).collect();
        self.catalog.forget_superseded(repo, &keys).await?;
        Ok(pruned)
    }

    /// Applies the repository's retention policy: keeps the newest K versions of each
    /// package (per architecture), marks the others for deletion in the catalog and
    /// takes them out of `packages`. Returns the pruned records.
    async fn prune(
        &self,
        repo: &RepoPath,
        dist: &DistConfig,
        packages: &mut BTreeMap<String, PublishedPackage>,
    ) -> Result<Vec<PackageRecord>, StoreError> {
        let Some(keep) = self.supported.retention_for(repo) else {
            return Ok(Vec::new());
        };
        let mut groups: BTreeMap<(&str, &str), Vec<(&str, &str)>> = BTreeMap::new();
        for (filename, p) in packages.iter() {
            groups
                .entry((&p.name, &p.architecture))
                .or_default()
                .push((&p.version, filename));
        }
        let mut doomed = Vec::new();
        for versions in groups.values_mut() {
            versions.sort_by(|a, b| {
                crate::versions::compare(dist.format, b.0, a.0).then_with(|| b.1.cmp(a.1))
            });
            doomed.extend(
                versions
                    .iter()
                    .skip(keep as usize)
                    .map(|(_, f)| f.to_string()),
            );
        }
        let mut pruned = Vec::new();
        for filename in doomed {
            packages.remove(&filename);
            // A record that is no longer ready was deleted or re-marked concurrently:
            // whoever changed it owns its files.
            let event = NewEvent::package_deleted(repo, &filename, "retention");
            if self.catalog.mark_deleting(repo, &filename, &event).await? {
                if let Some(record) = self.catalog.get_package(repo, &filename).await? {
                    pruned.push(record);
                }
            } else if let Some(record) = self.catalog.get_package(repo, &filename).await?
                && record.status == PackageStatus::Deleting
            {
                pruned.push(record);
            }
        }
        Ok(pruned)
    }

    /// The repository's ready packages as of `target_seq`: a snapshot of the published
    /// set (this worker's, or read back from the published APT indexes) plus the change
    /// log since; a full read of the repository when neither is usable.
    async fn read_packages(
        &self,
        repo: &RepoPath,
        dist: &DistConfig,
        state: &RepoState,
        target_seq: u64,
    ) -> Result<PackageSet, StoreError> {
        let current = |snap: &Snapshot| {
            snap.seq == state.published_seq
                && state.release_sha256.as_deref() == Some(snap.release_sha256.as_str())
        };
        let base = match self.cache.take(repo).filter(current) {
            Some(snap) => Some((snap, Baseline::Cache)),
            None if dist.format == RepoFormat::Deb => self
                .load_published(repo, state)
                .await?
                .map(|snap| (snap, Baseline::Published)),
            None if dist.format == RepoFormat::Rpm => self
                .load_published_yum(repo, dist, state)
                .await?
                .map(|snap| (snap, Baseline::Published)),
            None => None,
        };
        if let Some((mut snap, baseline)) = base {
            let changes = self.catalog.changes(repo, snap.seq, target_seq).await?;
            if changes.len() as u64 == target_seq - snap.seq {
                let mut files: Vec<String> = changes.into_iter().flat_map(|c| c.files).collect();
                files.sort();
                files.dedup();
                let found = self.catalog.get_packages(repo, &files).await?;
                let mut before = BTreeSet::new();
                for name in &files {
                    if snap.packages.remove(name).is_some() {
                        before.insert(name.clone());
                    }
                }
                let mut tombstones = Vec::new();
                for p in found {
                    match p.status {
                        PackageStatus::Ready => {
                            snap.packages.insert(p.filename.clone(), p.into());
                        }
                        PackageStatus::Deleting => tombstones.push(p),
                        PackageStatus::Pending => {}
                    }
                }
                return Ok(PackageSet {
                    packages: snap.packages,
                    pieces: snap.pieces,
                    baseline,
                    tombstones,
                    changed: Some(files),
                    before,
                });
            }
            tracing::info!(repo = %repo, "change log does not cover the snapshot; full read");
        }
        let mut packages = BTreeMap::new();
        let mut tombstones = Vec::new();
        for p in self.catalog.list_packages(repo).await? {
            match p.status {
                PackageStatus::Ready => {
                    packages.insert(p.filename.clone(), p.into());
                }
                PackageStatus::Deleting => tombstones.push(p),
                PackageStatus::Pending => {}
            }
        }
        Ok(PackageSet {
            packages,
            pieces: Pieces::default(),
            baseline: Baseline::Full,
            tombstones,
            changed: None,
            before: BTreeSet::new(),
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

/// What a publication added and removed: of the files changed since the last one,
/// those now published that were not before, and those published before (or
/// pruned) that are gone. After a whole read `before` is unknown (empty): a file
/// stored and deleted between two publications then counts as removed.
fn diff(
    changed: &[String],
    before: &BTreeSet<String>,
    now: &BTreeMap<String, PublishedPackage>,
    pruned: &[PackageRecord],
) -> (Vec<String>, Vec<String>) {
    let changed: BTreeSet<&String> = changed.iter().collect();
    let added = changed
        .iter()
        .filter(|f| now.contains_key(f.as_str()) && !before.contains(f.as_str()))
        .map(|f| f.to_string())
        .collect();
    let mut removed: BTreeSet<String> = changed
        .iter()
        .filter(|f| !now.contains_key(f.as_str()))
        .filter(|f| before.is_empty() || before.contains(f.as_str()))
        .map(|f| f.to_string())
        .collect();
    removed.extend(pruned.iter().map(|p| p.filename.clone()));
    (added, removed.into_iter().collect())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(bytes: usize) -> Snapshot {
        let mut pieces = Pieces::default();
        pieces.pack(
            "idx",
            vec![Bytes::from(vec![b'a'; bytes])],
            &[pieces::Codec::Gzip],
            1,
        );
        Snapshot {
            pieces,
            ..Default::default()
        }
    }

    #[test]
    fn the_snapshot_cache_keeps_to_its_budget_but_always_holds_the_last_one() {
        let (one, two) = (
            RepoPath::parse("release/1/ubuntu/jammy").expect("path"),
            RepoPath::parse("release/1/ubuntu/noble").expect("path"),
        );
        let cache = SnapshotCache::with_budget(1500);
        cache.put(&one, snapshot(1000));
        cache.put(&two, snapshot(1000));
        assert!(
            cache.take(&one).is_none(),
            "over budget: the other one goes"
        );
        assert!(cache.take(&two).is_some());
        // One snapshot over the whole budget is still kept (it is the one in use).
        cache.put(&one, snapshot(4000));
        assert!(cache.take(&one).is_some());
        // Within budget both stay.
        let roomy = SnapshotCache::with_budget(1 << 20);
        roomy.put(&one, snapshot(1000));
        roomy.put(&two, snapshot(1000));
        assert!(roomy.take(&one).is_some() && roomy.take(&two).is_some());
    }
}
