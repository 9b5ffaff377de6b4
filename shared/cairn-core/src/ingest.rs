//! Ingest: turn an inspected package into a pool file plus a catalog record,
//! refusing to change a file name's content once published.
//!
//! Order of effects, so that a crash at any point loses nothing and never publishes
//! a package whose file is missing: claim the name in the catalog (pending) ->
//! write the pool file -> mark the record ready -> note the change -> enqueue a sync.

use crate::package::{
    FilenameError, IndexEntry, PackageRecord, PackageStatus, check_filename, check_product,
    pool_filename, pool_keys,
};
use crate::ports::{Catalog, RepoStore, StoreError, SyncQueue};
use crate::repo::{DistConfig, RepoError, RepoFormat, RepoPath, SupportedRepos};
use bytes::Bytes;
use cairn_deb::{DebInfo, packages_stanza};
use cairn_helm::ChartInfo;
use cairn_rpm::RpmInfo;
use std::io::Read;

/// Catalog records must fit a DynamoDB item (400 KB) with room for the other fields.
const MAX_ENTRY_BYTES: usize = 300 * 1024;

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
    /// The file name is being deleted; it can be uploaded again after the next sync.
    #[error(
        "{filename} in {repo} is being deleted; upload it again once the repository metadata no longer lists it"
    )]
    BeingDeleted {
        /// The suite.
        repo: String,
        /// The file name.
        filename: String,
    },
    /// No such package.
    #[error("{repo} has no package {filename}")]
    NotFound {
        /// The repository.
        repo: String,
        /// The file name.
        filename: String,
    },
    /// The package's upload has not finished.
    #[error("{filename} in {repo} is still being uploaded; try again when the upload finishes")]
    NotReady {
        /// The repository.
        repo: String,
        /// The file name.
        filename: String,
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
    let dist = supported.check(repo)?;
    let extensions = dist.format.extensions();
    let extension = extensions
        .iter()
        .find(|e| filename.ends_with(**e))
        .unwrap_or(&extensions[0]);
    check_filename(filename, extension)?;
    if let Some(p) = product {
        check_product(p)?;
    }
    Ok(())
}

/// A package inspected according to its repository's format.
#[derive(Debug, Clone)]
pub enum Inspected {
    /// A binary Debian package.
    Deb(DebInfo),
    /// An RPM (binary or source).
    Rpm(Box<RpmInfo>),
    /// A packaged Helm chart.
    Chart(Box<ChartInfo>),
}

/// Reads a package of `format` from `source` to its end. Damaged packages are the
/// uploader's fault ([`IngestError::InvalidPackage`]); errors of the source itself
/// (storage, network) are [`IngestError::Store`] and can be retried.
pub fn inspect_package<R: Read>(
    format: RepoFormat,
    filename: &str,
    source: R,
) -> Result<Inspected, IngestError> {
    let invalid = |reason: String| IngestError::InvalidPackage {
        filename: filename.to_string(),
        reason,
    };
    let io =
        |e: std::io::Error| IngestError::Store(StoreError::new(format!("reading {filename}"), e));
    match format {
        RepoFormat::Deb if !filename.ends_with(".deb") => Err(invalid(
            "source package files (.dsc and the files it lists) are uploaded together in one PUT form"
                .into(),
        )),
        RepoFormat::Deb => match cairn_deb::inspect_deb(source) {
            Ok(info) => Ok(Inspected::Deb(info)),
            Err(cairn_deb::DebError::Io(e)) => Err(io(e)),
            Err(e) => Err(invalid(e.to_string())),
        },
        RepoFormat::Rpm => match cairn_rpm::inspect_rpm(source) {
            Ok(info) => Ok(Inspected::Rpm(Box::new(info))),
            Err(cairn_rpm::RpmError::Io(e)) => Err(io(e)),
            Err(e) => Err(invalid(e.to_string())),
        },
        RepoFormat::Helm => match cairn_helm::inspect_chart(filename, source) {
            Ok(info) => Ok(Inspected::Chart(Box::new(info))),
            Err(cairn_helm::ChartError::Io(e)) => Err(io(e)),
            Err(e) => Err(invalid(e.to_string())),
        },
    }
}

/// Builds the (pending) catalog record for an inspected package.
pub fn build_record(
    repo: &RepoPath,
    dist: &DistConfig,
    filename: &str,
    product: Option<&str>,
    inspected: &Inspected,
    uploader: &str,
    now: i64,
) -> Result<PackageRecord, IngestError> {
    let mut record = match inspected {
        Inspected::Deb(info) => deb_record(repo, filename, product, info)?,
        Inspected::Rpm(info) => rpm_record(repo, dist, filename, product, info, now)?,
        Inspected::Chart(info) => chart_record(repo, filename, product, info, now)?,
    };
    let entry_size = match &record.entry {
        IndexEntry::Deb { stanza } => stanza.len(),
        IndexEntry::Rpm {
            primary,
            filelists,
            other,
        } => primary.len() + filelists.len() + other.len(),
        IndexEntry::Helm { entry, provenance } => {
            entry.len() + provenance.as_ref().map_or(0, String::len)
        }
    };
    if entry_size > MAX_ENTRY_BYTES {
        return Err(IngestError::InvalidPackage {
            filename: filename.to_string(),
            reason: format!(
                "its metadata (file list, changelog, descriptions) takes {entry_size} bytes; \
                 Cairn accepts up to {MAX_ENTRY_BYTES}"
            ),
        });
    }
    record.uploaded_at = now;
    record.uploader = uploader.to_string();
    Ok(record)
}

/// Attaches an uploaded provenance file to a chart's record: it must name the chart
/// with its SHA-256; it is then kept instead of the one Cairn would sign.
pub fn attach_provenance(record: &mut PackageRecord, prov: &[u8]) -> Result<(), IngestError> {
    let IndexEntry::Helm { provenance, .. } = &mut record.entry else {
        return Err(IngestError::InvalidPackage {
            filename: format!("{}.prov", record.filename),
            reason: "only charts have provenance files".into(),
        });
    };
    cairn_helm::check_provenance(prov, &record.filename, &record.sha256).map_err(|e| {
        IngestError::InvalidPackage {
            filename: format!("{}.prov", record.filename),
            reason: e.to_string(),
        }
    })?;
    *provenance = None;
    Ok(())
}

fn new_record(
    repo: &RepoPath,
    filename: &str,
    product: String,
    entry: IndexEntry,
) -> PackageRecord {
    PackageRecord {
        repo: repo.clone(),
        filename: filename.to_string(),
        product,
        name: String::new(),
        version: String::new(),
        architecture: String::new(),
        size: 0,
        sha256: String::new(),
        pool_key: String::new(),
        entry,
        status: PackageStatus::Pending,
        uploaded_at: 0,
        uploader: String::new(),
    }
}

fn deb_record(
    repo: &RepoPath,
    filename: &str,
    product: Option<&str>,
    info: &DebInfo,
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
    let stanza = packages_stanza(control, &filename_field, &info.digests);
    Ok(PackageRecord {
        version: field("Version"),
        architecture: field("Architecture"),
        name,
        size: info.digests.size,
        sha256: info.digests.sha256.clone(),
        pool_key: format!("{}/{}", repo.root(), filename_field),
        ..new_record(repo, filename, product, IndexEntry::Deb { stanza })
    })
}

fn rpm_record(
    repo: &RepoPath,
    dist: &DistConfig,
    filename: &str,
    product: Option<&str>,
    info: &RpmInfo,
    now: i64,
) -> Result<PackageRecord, IngestError> {
    // The architecture names a folder of the repository: it must be a plain word.
    let arch_ok = !info.arch.is_empty()
        && info.arch.len() <= 32
        && info
            .arch
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !arch_ok {
        return Err(IngestError::InvalidPackage {
            filename: filename.to_string(),
            reason: format!("unusable architecture {:?}", info.arch),
        });
    }
    let product = product.unwrap_or(&info.name).to_string();
    let entry = IndexEntry::Rpm {
        primary: info.primary_xml(&format!("Packages/{filename}"), now),
        filelists: info.filelists_xml(),
        other: info.other_xml(),
    };
    let mut record = PackageRecord {
        name: info.name.clone(),
        version: info.evr(),
        architecture: info.arch.clone(),
        size: info.digests.size,
        sha256: info.digests.sha256.clone(),
        ..new_record(repo, filename, product, entry)
    };
    record.pool_key =
        pool_keys(&record, dist)
            .into_iter()
            .next()
            .ok_or_else(|| IngestError::InvalidPackage {
                filename: filename.to_string(),
                reason: "the repository has no architecture to publish a noarch package in".into(),
            })?;
    Ok(record)
}

fn chart_record(
    repo: &RepoPath,
    filename: &str,
    product: Option<&str>,
    info: &ChartInfo,
    now: i64,
) -> Result<PackageRecord, IngestError> {
    let created =
        time::OffsetDateTime::from_unix_timestamp(now).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    // A relative URL: the repository works under whatever prefix serves it.
    let entry = cairn_helm::index_entry(info, filename, created).to_string();
    let provenance = Some(cairn_helm::provenance_body(info, filename));
    Ok(PackageRecord {
        name: info.name.clone(),
        version: info.version.clone(),
        size: info.digests.size,
        sha256: info.digests.sha256.clone(),
        pool_key: format!("{}/{filename}", repo.dir()),
        ..new_record(
            repo,
            filename,
            product.unwrap_or(&info.name).to_string(),
            IndexEntry::Helm { entry, provenance },
        )
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
            Some(existing) if existing.status == PackageStatus::Deleting => {
                Err(IngestError::BeingDeleted {
                    repo: record.repo.to_string(),
                    filename: record.filename.clone(),
                })
            }
            Some(existing) if existing.sha256 == record.sha256 => Ok(Some(existing)),
            Some(existing) => Err(conflict(record, &existing)),
        }
    }

    /// Stores one package: pool file(s), the files that travel with it (`extra`, by
    /// object key: a chart's uploaded `.prov`, a source package's tarballs), and the
    /// catalog record. Does not enqueue a sync; call [`Ingestor::announce`] once after
    /// a batch.
    pub async fn store(
        &self,
        record: PackageRecord,
        source: PackageSource,
        extra: Vec<(String, Bytes)>,
    ) -> Result<IngestOutcome, IngestError> {
        let dist = self.supported.check(&record.repo)?;
        if !self.catalog.claim_package(&record).await? {
            let existing = self
                .catalog
                .get_package(&record.repo, &record.filename)
                .await?
                .ok_or_else(|| {
                    StoreError::new("claim package", "record vanished after a failed claim")
                })?;
            if existing.status == PackageStatus::Deleting {
                return Err(IngestError::BeingDeleted {
                    repo: record.repo.to_string(),
                    filename: record.filename,
                });
            }
            if existing.sha256 != record.sha256 {
                return Err(conflict(&record, &existing));
            }
            if existing.status == PackageStatus::Ready {
                return Ok(IngestOutcome::Unchanged(existing));
            }
            // Same content claimed by an upload that did not finish: finishing it
            // here is idempotent, the bytes are identical.
        }
        if let Err(e) = self.write_files(&record, dist, &source, extra).await {
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

    async fn write_files(
        &self,
        record: &PackageRecord,
        dist: &DistConfig,
        source: &PackageSource,
        extra: Vec<(String, Bytes)>,
    ) -> Result<(), StoreError> {
        let content_type = match dist.format {
            RepoFormat::Deb if record.architecture == "source" => "text/plain; charset=utf-8",
            RepoFormat::Deb => "application/vnd.debian.binary-package",
            RepoFormat::Rpm => "application/x-rpm",
            RepoFormat::Helm => "application/gzip",
        };
        match source {
            PackageSource::Bytes(bytes) => {
                self.store
                    .put(&record.pool_key, bytes.clone(), content_type)
                    .await?
            }
            PackageSource::Staged(key) => {
                self.store.copy_from_staging(key, &record.pool_key).await?
            }
        }
        // noarch RPMs live in every architecture folder, as RWS lays them out.
        if dist.format == RepoFormat::Rpm {
            for key in pool_keys(record, dist).iter().skip(1) {
                self.store.copy(&record.pool_key, key).await?;
            }
        }
        for (key, body) in extra {
            let content_type = if key.ends_with(".prov") {
                "application/pgp-signature"
            } else {
                "application/octet-stream"
            };
            self.store.put(&key, body, content_type).await?;
        }
        Ok(())
    }

    /// Builds the record of a Debian source package from its `.dsc` and checks every
    /// file it lists: in `provided` (the same upload) with the listed size and digests,
    /// or already in the pool directory with the listed size and SHA-256 (an
    /// `.orig.tar` shared by several revisions). Returns the record and the provided
    /// files to store beside the `.dsc`.
    #[allow(clippy::too_many_arguments)]
    pub async fn prepare_source(
        &self,
        repo: &RepoPath,
        dsc_name: &str,
        dsc: &[u8],
        product: Option<&str>,
        provided: &std::collections::BTreeMap<String, Bytes>,
        uploader: &str,
        now: i64,
    ) -> Result<(PackageRecord, Vec<(String, Bytes)>), IngestError> {
        let invalid = |reason: String| IngestError::InvalidPackage {
            filename: dsc_name.to_string(),
            reason,
        };
        let info = cairn_deb::inspect_dsc(dsc).map_err(|e| invalid(e.to_string()))?;
        let product = product.unwrap_or(info.source()).to_string();
        check_product(&product)?;
        let dsc_path = pool_filename(repo, &product, dsc_name);
        let directory = dsc_path
            .rsplit_once('/')
            .map(|(d, _)| d.to_string())
            .unwrap_or_default();
        let mut files = vec![cairn_deb::SourceFile {
            name: dsc_name.to_string(),
            size: info.digests.size,
            md5: info.digests.md5.clone(),
            sha256: info.digests.sha256.clone(),
        }];
        let mut extra = Vec::new();
        for listed in &info.files {
            let key = format!("{}/{directory}/{}", repo.root(), listed.name);
            let existing = self.store.digest(&key).await?;
            let mismatch = |what: &str| {
                invalid(format!(
                    "{} does not match the {what} the .dsc lists for it",
                    listed.name
                ))
            };
            let sha256 = match (provided.get(&listed.name), existing) {
                (Some(bytes), existing) => {
                    let d = cairn_deb::Digests::of(bytes);
                    if d.size != listed.size {
                        return Err(mismatch("size"));
                    }
                    if d.md5 != listed.md5 {
                        return Err(mismatch("MD5"));
                    }
                    if listed.sha256.as_ref().is_some_and(|s| *s != d.sha256) {
                        return Err(mismatch("SHA-256"));
                    }
                    if let Some((_, stored)) = existing
                        && stored != d.sha256
                    {
                        return Err(IngestError::Conflict {
                            repo: repo.to_string(),
                            filename: listed.name.clone(),
                            existing: stored,
                        });
                    }
                    extra.push((key, bytes.clone()));
                    d.sha256
                }
                (None, Some((size, stored))) => {
                    if size != listed.size {
                        return Err(mismatch("size"));
                    }
                    if listed.sha256.as_ref().is_some_and(|s| *s != stored) {
                        return Err(mismatch("SHA-256"));
                    }
                    stored
                }
                (None, None) => {
                    return Err(invalid(format!(
                        "{} (listed in the .dsc) is neither in this upload nor in {}",
                        listed.name, directory
                    )));
                }
            };
            files.push(cairn_deb::SourceFile {
                name: listed.name.clone(),
                size: listed.size,
                md5: listed.md5.clone(),
                sha256,
            });
        }
        let stanza = cairn_deb::sources_stanza(&info, &directory, &files);
        let record = PackageRecord {
            name: info.source().to_string(),
            version: info.version().to_string(),
            architecture: "source".into(),
            size: info.digests.size,
            sha256: info.digests.sha256.clone(),
            pool_key: format!("{}/{dsc_path}", repo.root()),
            uploaded_at: now,
            uploader: uploader.to_string(),
            ..new_record(repo, dsc_name, product, IndexEntry::Deb { stanza })
        };
        Ok((record, extra))
    }

    /// Deletes a package: the next sync leaves it out of the metadata, then removes
    /// its files and record. Returns the change sequence number the deletion was
    /// noted under; deleting a package that is already being deleted is a no-op
    /// that returns `None`.
    pub async fn delete(
        &self,
        repo: &RepoPath,
        filename: &str,
    ) -> Result<Option<u64>, IngestError> {
        self.supported.check(repo)?;
        if !self.catalog.mark_deleting(repo, filename).await? {
            let which = || (repo.to_string(), filename.to_string());
            return match self.catalog.get_package(repo, filename).await? {
                None => {
                    let (repo, filename) = which();
                    Err(IngestError::NotFound { repo, filename })
                }
                Some(p) if p.status == PackageStatus::Deleting => Ok(None),
                Some(_) => {
                    let (repo, filename) = which();
                    Err(IngestError::NotReady { repo, filename })
                }
            };
        }
        Ok(Some(self.announce(repo, &[filename.to_string()]).await?))
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
