//! Ingest: turn an inspected package into a pool file plus a catalog record,
//! refusing to change a file name's content once published.
//!
//! Order of effects, so that a crash at any point loses nothing and never publishes
//! a package whose file is missing: claim the name in the catalog (pending) ->
//! write the pool file -> mark the record ready -> note the change -> enqueue a sync.

use crate::package::{
    FilenameError, PackageRecord, PackageStatus, check_filename, check_product, pool_filename,
};
use crate::ports::{Catalog, RepoStore, StoreError, SyncQueue};
use crate::repo::{RepoError, RepoPath, SupportedRepos};
use bytes::Bytes;
use cairn_deb::{DebInfo, packages_stanza};

/// Why a package was not ingested. Everything but `Store` is the uploader's to fix.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The target repository does not exist or accept uploads.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// The file or product name is refused.
    #[error(transparent)]
    Name(#[from] FilenameError),
    /// The file is not a valid package.
    #[error("{filename}: {reason}")]
    InvalidPackage {
        /// The uploaded file name.
        filename: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The file name is already published with different content.
    #[error(
        "{filename} already exists in {repo} with different content (sha256 {existing}); published files are immutable"
    )]
    Conflict {
        /// The suite.
        repo: String,
        /// The file name.
        filename: String,
        /// SHA-256 of the published file.
        existing: String,
    },
    /// Storage failed; the upload can be retried.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where the package bytes are.
#[derive(Debug, Clone)]
pub enum PackageSource {
    /// In memory (uploads through the API).
    Bytes(Bytes),
    /// In the staging bucket (presigned uploads), under this key.
    Staged(String),
}

/// What ingesting one file did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// A new package was stored.
    Stored(PackageRecord),
    /// The identical file was already there; nothing changed.
    Unchanged(PackageRecord),
}

impl IngestOutcome {
    /// The package record either way.
    pub fn record(&self) -> &PackageRecord {
        match self {
            IngestOutcome::Stored(r) | IngestOutcome::Unchanged(r) => r,
        }
    }
}

/// The ingest service.
pub struct Ingestor<'a> {
    /// Package catalog.
    pub catalog: &'a dyn Catalog,
    /// Repository bucket.
    pub store: &'a dyn RepoStore,
    /// Metadata-sync queue.
    pub queue: &'a dyn SyncQueue,
    /// Configured repositories.
    pub supported: &'a SupportedRepos,
}

/// Checks the target and names of an upload before any byte is inspected.
pub fn check_target(
    supported: &SupportedRepos,
    repo: &RepoPath,
    filename: &str,
    product: Option<&str>,
) -> Result<(), IngestError> {
    supported.check(repo)?;
    check_filename(filename, ".deb")?;
    if let Some(p) = product {
        check_product(p)?;
    }
    Ok(())
}

/// Builds the (pending) catalog record for an inspected package.
pub fn build_record(
    repo: &RepoPath,
    filename: &str,
    product: Option<&str>,
    info: &DebInfo,
    uploader: &str,
    now: i64,
) -> Result<PackageRecord, IngestError> {
    let control = &info.control;
    let field = |name: &str| control.get(name).unwrap_or_default().to_string();
    let name = field("Package");
    // Without an RWS product, the source package name (or the package name) is the
    // pool directory, as in Debian's own pool.
    let product = match product {
        Some(p) => p.to_string(),
        None => control
            .get("Source")
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or(&name)
            .to_string(),
    };
    check_product(&product)?;
    let filename_field = pool_filename(repo, &product, filename);
    Ok(PackageRecord {
        repo: repo.clone(),
        filename: filename.to_string(),
        product,
        version: field("Version"),
        architecture: field("Architecture"),
        name,
        size: info.digests.size,
        sha256: info.digests.sha256.clone(),
        pool_key: format!("{}/{}", repo.root(), filename_field),
        stanza: packages_stanza(control, &filename_field, &info.digests),
        status: PackageStatus::Pending,
        uploaded_at: now,
        uploader: uploader.to_string(),
    })
}

impl Ingestor<'_> {
    /// Fails with [`IngestError::Conflict`] if the name is taken by other content.
    /// Returns the existing record when the identical file is already there.
    pub async fn check_conflict(
        &self,
        record: &PackageRecord,
    ) -> Result<Option<PackageRecord>, IngestError> {
        match self
            .catalog
            .get_package(&record.repo, &record.filename)
            .await?
        {
            None => Ok(None),
            Some(existing) if existing.sha256 == record.sha256 => Ok(Some(existing)),
            Some(existing) => Err(conflict(record, &existing)),
        }
    }

    /// Stores one package: pool file and catalog record. Does not enqueue a sync;
    /// call [`Ingestor::announce`] once after a batch.
    pub async fn store(
        &self,
        record: PackageRecord,
        source: PackageSource,
    ) -> Result<IngestOutcome, IngestError> {
        if !self.catalog.claim_package(&record).await? {
            let existing = self
                .catalog
                .get_package(&record.repo, &record.filename)
                .await?
                .ok_or_else(|| {
                    StoreError::new("claim package", "record vanished after a failed claim")
                })?;
            if existing.sha256 != record.sha256 {
                return Err(conflict(&record, &existing));
            }
            if existing.status == PackageStatus::Ready {
                return Ok(IngestOutcome::Unchanged(existing));
            }
            // Same content claimed by an upload that did not finish: finishing it
            // here is idempotent, the bytes are identical.
        }
        let written = match &source {
            PackageSource::Bytes(bytes) => {
                self.store
                    .put(
                        &record.pool_key,
                        bytes.clone(),
                        "application/vnd.debian.binary-package",
                    )
                    .await
            }
            PackageSource::Staged(key) => self.store.copy_from_staging(key, &record.pool_key).await,
        };
        if let Err(e) = written {
            // Best effort: a leftover pending claim is repaired by the next identical upload.
            if let Err(cleanup) = self
                .catalog
                .drop_claim(&record.repo, &record.filename, &record.sha256)
                .await
            {
                tracing::warn!(error = %cleanup, "could not drop pending claim");
            }
            return Err(e.into());
        }
        self.catalog
            .mark_ready(&record.repo, &record.filename)
            .await?;
        Ok(IngestOutcome::Stored(PackageRecord {
            status: PackageStatus::Ready,
            ..record
        }))
    }

    /// Records that `files` of `repo` changed and asks for its metadata to be rebuilt.
    pub async fn announce(&self, repo: &RepoPath, files: &[String]) -> Result<u64, IngestError> {
        let seq = self.catalog.note_change(repo, files).await?;
        self.queue.request_sync(repo, seq).await?;
        Ok(seq)
    }
}

fn conflict(record: &PackageRecord, existing: &PackageRecord) -> IngestError {
    IngestError::Conflict {
        repo: record.repo.to_string(),
        filename: record.filename.clone(),
        existing: existing.sha256.clone(),
    }
}
