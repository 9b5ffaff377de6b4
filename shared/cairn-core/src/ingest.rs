//! Ingest: turn an inspected package into a pool file plus a catalog record,
//! refusing to change a file name's content once published.
//!
//! Order of effects, so that a crash at any point loses nothing and never publishes
//! a package whose file is missing: claim the name in the catalog (pending) ->
//! write the pool file -> mark the record ready -> note the change -> enqueue a sync.

use crate::events::NewEvent;
use crate::package::{
    FilenameError, IndexEntry, PackageRecord, PackageStatus, PoolFile, check_filename,
    check_product, package_keys, pool_filename,
};
use crate::ports::{Catalog, FileClaim, Release, RepoStore, StoreError, SyncQueue};
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
    /// The upload as a whole is malformed (a file twice, a source file without its
    /// `.dsc`, a `.prov` without its chart, no package at all).
    #[error("{0}")]
    Form(String),
    /// Storage failed; the upload can be retried.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where the package bytes are.
#[derive(Debug, Clone)]
pub enum PackageSource {
    /// In memory (uploads through the API).
    Bytes(Bytes),
    /// In the staging bucket (presigned uploads): the object version that was
    /// inspected, and only that version, is copied.
    Staged {
        /// Staging object key.
        key: String,
        /// Entity tag of the inspected version.
        etag: String,
    },
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
    let digests = cairn_deb::Digests::of(prov);
    record.files.push(PoolFile {
        key: format!("{}.prov", record.pool_key),
        sha256: digests.sha256,
        size: digests.size,
    });
    Ok(())
}

/// Refuses a package whose file name does not say what its contents are: the name
/// is what users, mirrors and retention see, the contents what clients install.
fn check_named_after(filename: &str, expected: &[String]) -> Result<(), IngestError> {
    if expected.iter().any(|e| e == filename) {
        return Ok(());
    }
    Err(IngestError::InvalidPackage {
        filename: filename.to_string(),
        reason: format!(
            "the file name does not match the package's own name, version and architecture; \
             name it {}",
            expected.first().map(String::as_str).unwrap_or_default()
        ),
    })
}

/// A Debian version without its epoch, as file names carry it.
fn without_epoch(version: &str) -> &str {
    version.split_once(':').map_or(version, |(_, v)| v)
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
        files: Vec::new(),
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
    let version = field("Version");
    let architecture = field("Architecture");
    // "source" is what Cairn records a .dsc under: a binary package claiming it would
    // be published in Sources with a file list read from its own control data.
    if architecture == "source" || architecture.is_empty() {
        return Err(IngestError::InvalidPackage {
            filename: filename.to_string(),
            reason: format!(
                "a binary package cannot have Architecture {architecture:?}; source packages \
                 are uploaded as a .dsc with the files it lists"
            ),
        });
    }
    check_named_after(
        filename,
        &[
            format!("{name}_{}_{architecture}.deb", without_epoch(&version)),
            format!("{name}_{version}_{architecture}.deb"),
        ],
    )?;
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
    let pool_key = format!("{}/{}", repo.root(), filename_field);
    Ok(PackageRecord {
        version,
        architecture,
        name,
        size: info.digests.size,
        sha256: info.digests.sha256.clone(),
        files: vec![PoolFile {
            key: pool_key.clone(),
            sha256: info.digests.sha256.clone(),
            size: info.digests.size,
        }],
        pool_key,
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
    let arch_name = if info.is_source() {
        if filename.ends_with(".nosrc.rpm") {
            "nosrc"
        } else {
            "src"
        }
    } else {
        info.arch.as_str()
    };
    check_named_after(
        filename,
        &[format!(
            "{}-{}-{}.{arch_name}.rpm",
            info.name, info.version, info.release
        )],
    )?;
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
    record.files = package_keys(&record, dist)
        .into_iter()
        .map(|key| PoolFile {
            key,
            sha256: record.sha256.clone(),
            size: record.size,
        })
        .collect();
    record.pool_key =
        record
            .files
            .first()
            .map(|f| f.key.clone())
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
    let pool_key = format!("{}/{filename}", repo.dir());
    Ok(PackageRecord {
        name: info.name.clone(),
        version: info.version.clone(),
        size: info.digests.size,
        sha256: info.digests.sha256.clone(),
        files: vec![PoolFile {
            key: pool_key.clone(),
            sha256: info.digests.sha256.clone(),
            size: info.digests.size,
        }],
        pool_key,
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

    /// Stores one package: claims its name, then every object it owns (the
    /// package file, its copies, and the files that travel with it in `extra`, by
    /// object key: a chart's uploaded `.prov`, a source package's tarballs), writes
    /// them, and marks the record ready. Does not enqueue a sync; call
    /// [`Ingestor::announce`] once after a batch.
    ///
    /// Every object is claimed in the catalog before it is written, and written only
    /// if absent: a key claimed by another package with other content is a conflict,
    /// the same content is shared (reference-counted by owner). A failure releases
    /// what this upload claimed, so nothing half-stored stays behind.
    pub async fn store(
        &self,
        record: PackageRecord,
        source: PackageSource,
        extra: Vec<(String, Bytes)>,
    ) -> Result<IngestOutcome, IngestError> {
        let dist = self.supported.check(&record.repo)?;
        let claimed_here = self.catalog.claim_package(&record).await?;
        if !claimed_here {
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
            // Same content claimed by an upload that did not finish (or is still
            // running): finishing it here is idempotent, the bytes are identical. Its
            // files are the ones it recorded.
            return self.finish(existing, dist, &source, extra, false).await;
        }
        self.finish(record, dist, &source, extra, true).await
    }

    /// Claims and writes a claimed record's files and marks it ready. When
    /// `owns_claim`, a failure undoes the claims; an upload finishing somebody else's
    /// pending claim leaves them for that upload (or a later identical one).
    async fn finish(
        &self,
        record: PackageRecord,
        dist: &DistConfig,
        source: &PackageSource,
        extra: Vec<(String, Bytes)>,
        owns_claim: bool,
    ) -> Result<IngestOutcome, IngestError> {
        let mut claimed = Vec::with_capacity(record.files.len());
        let mut failure = None;
        for file in &record.files {
            match self
                .catalog
                .claim_file(&record.repo, file, &record.filename)
                .await
            {
                Ok(FileClaim::Claimed) => claimed.push(file.key.clone()),
                Ok(FileClaim::Taken { sha256 }) => {
                    failure = Some(IngestError::Conflict {
                        repo: record.repo.to_string(),
                        filename: file.name().to_string(),
                        existing: sha256,
                    });
                    break;
                }
                Ok(FileClaim::Deleting) => {
                    failure = Some(IngestError::BeingDeleted {
                        repo: record.repo.to_string(),
                        filename: file.name().to_string(),
                    });
                    break;
                }
                Err(e) => {
                    failure = Some(e.into());
                    break;
                }
            }
        }
        let mut foreign = Vec::new();
        if failure.is_none()
            && let Err(e) = self
                .write_files(&record, dist, source, extra, &mut foreign)
                .await
        {
            failure = Some(e);
        }
        if let Some(e) = failure {
            if owns_claim {
                // Objects found holding other bytes were not ours: never delete them.
                let undo = async {
                    release_files(
                        self.catalog,
                        self.store,
                        &record.repo,
                        &record.filename,
                        claimed.iter().map(String::as_str),
                        &foreign,
                    )
                    .await?;
                    self.catalog
                        .drop_claim(&record.repo, &record.filename, &record.sha256)
                        .await
                };
                if let Err(cleanup) = undo.await {
                    // What is left is a pending record: never published, finished by
                    // an identical upload, reported by `cairn fsck`.
                    tracing::warn!(error = %cleanup, filename = record.filename, "could not undo a failed upload's claims");
                }
            }
            return Err(e);
        }
        let record = PackageRecord {
            status: PackageStatus::Ready,
            ..record
        };
        self.catalog
            .mark_ready(
                &record.repo,
                &record.filename,
                &NewEvent::package_stored(&record),
            )
            .await?;
        Ok(IngestOutcome::Stored(record))
    }

    /// Writes each of the record's files unless an object with the same content is
    /// already there. An object holding other bytes is a conflict; its key is added
    /// to `foreign` so that the clean-up leaves it alone.
    async fn write_files(
        &self,
        record: &PackageRecord,
        dist: &DistConfig,
        source: &PackageSource,
        extra: Vec<(String, Bytes)>,
        foreign: &mut Vec<String>,
    ) -> Result<(), IngestError> {
        let content_type = match dist.format {
            RepoFormat::Deb if record.architecture == "source" => "text/plain; charset=utf-8",
            RepoFormat::Deb => "application/vnd.debian.binary-package",
            RepoFormat::Rpm => "application/x-rpm",
            RepoFormat::Helm => "application/gzip",
        };
        let mut extra: std::collections::HashMap<String, Bytes> = extra.into_iter().collect();
        for file in &record.files {
            let body = match source {
                PackageSource::Bytes(bytes) if file.key == record.pool_key => {
                    Some((bytes.clone(), content_type))
                }
                _ => extra.remove(&file.key).map(|body| {
                    let content_type = if file.key.ends_with(".prov") {
                        "application/pgp-signature"
                    } else {
                        "application/octet-stream"
                    };
                    (body, content_type)
                }),
            };
            let found = match body {
                // A conditional write finds an existing object itself.
                Some((body, content_type)) => {
                    if self.store.put_new(&file.key, body, content_type).await? {
                        continue;
                    }
                    self.store.digest(&file.key).await?
                }
                // Copies are not conditional: look first.
                None => match self.store.digest(&file.key).await? {
                    Some(found) => Some(found),
                    None => {
                        if file.key == record.pool_key
                            && let PackageSource::Staged { key, etag } = source
                        {
                            self.store.copy_from_staging(key, etag, &file.key).await?;
                        } else if file.sha256 == record.sha256 {
                            // Another copy of the package (noarch RPMs live in every
                            // architecture folder, as RWS lays them out).
                            self.store.copy(&record.pool_key, &file.key).await?;
                        } else {
                            // A file listed as already in the pool vanished after it
                            // was checked.
                            return Err(IngestError::InvalidPackage {
                                filename: record.filename.clone(),
                                reason: format!("{} is no longer in the repository", file.name()),
                            });
                        }
                        continue;
                    }
                },
            };
            // Already there: written by an upload of the same content (the claim
            // admits only that) or left by something else; check rather than trust.
            if found.as_ref().is_none_or(|(_, sha)| *sha != file.sha256) {
                foreign.push(file.key.clone());
                return Err(IngestError::Conflict {
                    repo: record.repo.to_string(),
                    filename: file.name().to_string(),
                    existing: found.map(|(_, sha)| sha).unwrap_or_default(),
                });
            }
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
        check_named_after(
            dsc_name,
            &[
                format!("{}_{}.dsc", info.source(), without_epoch(info.version())),
                format!("{}_{}.dsc", info.source(), info.version()),
            ],
        )?;
        // A source package lists tarballs, patches and their signatures; naming a
        // package file or another source package would make it claim files that are
        // not part of it.
        if let Some(bad) = info.files.iter().find(|f| {
            [".deb", ".udeb", ".ddeb", ".dsc", ".changes", ".buildinfo"]
                .iter()
                .any(|ext| f.name.ends_with(ext))
        }) {
            return Err(invalid(format!(
                "{} is not a source file: a .dsc lists only its tarballs, patches and signatures",
                bad.name
            )));
        }
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
        let pool_files = files
            .iter()
            .map(|f| PoolFile {
                key: format!("{}/{directory}/{}", repo.root(), f.name),
                sha256: f.sha256.clone(),
                size: f.size,
            })
            .collect();
        let record = PackageRecord {
            name: info.source().to_string(),
            version: info.version().to_string(),
            architecture: "source".into(),
            size: info.digests.size,
            sha256: info.digests.sha256.clone(),
            pool_key: format!("{}/{dsc_path}", repo.root()),
            uploaded_at: now,
            uploader: uploader.to_string(),
            files: pool_files,
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
        let event = NewEvent::package_deleted(repo, filename, "requested");
        if !self.catalog.mark_deleting(repo, filename, &event).await? {
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

/// Gives up `owner`'s claims on `keys` and deletes each object nobody owns any more
/// (unless it is in `keep`), then forgets its claim. Safe to repeat after a failure.
pub async fn release_files<'k>(
    catalog: &dyn Catalog,
    store: &dyn RepoStore,
    repo: &RepoPath,
    owner: &str,
    keys: impl Iterator<Item = &'k str>,
    keep: &[String],
) -> Result<(), StoreError> {
    for key in keys {
        if catalog.release_file(repo, key, owner).await? == Release::Unowned {
            if !keep.iter().any(|k| k == key) {
                store.delete(key).await?;
            }
            catalog.forget_file(repo, key).await?;
        }
    }
    Ok(())
}

fn conflict(record: &PackageRecord, existing: &PackageRecord) -> IngestError {
    IngestError::Conflict {
        repo: record.repo.to_string(),
        filename: record.filename.clone(),
        existing: existing.sha256.clone(),
    }
}
