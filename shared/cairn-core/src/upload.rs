//! The upload use case: one RWS form (a `product` and one or more files) into one
//! repository or every repository an anchor names.
//!
//! Every file is validated for every target before any is stored, so a bad file
//! refuses the whole upload. Files are then stored one by one; a file that loses a
//! race for its name ends the upload, and what was stored before it is still
//! announced (so it is published) and reported in [`UploadFailure`].

use crate::RepoPath;
use crate::ingest::{
    IngestError, IngestOutcome, Ingestor, Inspected, PackageSource, attach_provenance,
    build_record, check_target, inspect_package,
};
use crate::repo::RepoFormat;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};

/// A parsed upload form.
#[derive(Debug, Default, Clone)]
pub struct UploadForm {
    /// The RWS `product` field.
    pub product: Option<String>,
    /// `(file name, content)` in form order.
    pub files: Vec<(String, Bytes)>,
}

/// What an upload did.
#[derive(Debug)]
pub struct UploadReport {
    /// The repositories the upload went to (one, or an anchor's).
    pub targets: Vec<RepoPath>,
    /// One outcome per file and target, in upload order.
    pub outcomes: Vec<IngestOutcome>,
    /// The metadata syncs requested: repository and change sequence.
    pub syncs: Vec<(RepoPath, u64)>,
}

impl UploadReport {
    /// Whether any file was new.
    pub fn changed(&self) -> bool {
        self.outcomes
            .iter()
            .any(|o| matches!(o, IngestOutcome::Stored(_)))
    }
}

/// An upload that failed; `done` says what it stored before it failed (empty when
/// the failure came before anything was stored).
#[derive(Debug)]
pub struct UploadFailure {
    /// Why it failed.
    pub error: IngestError,
    /// Outcomes and syncs of the files handled before the failure.
    pub done: Option<UploadReport>,
}

impl From<IngestError> for UploadFailure {
    fn from(error: IngestError) -> Self {
        Self { error, done: None }
    }
}

impl From<crate::repo::RepoError> for UploadFailure {
    fn from(e: crate::repo::RepoError) -> Self {
        IngestError::from(e).into()
    }
}

struct Prepared {
    record: crate::PackageRecord,
    data: Bytes,
    extra: Vec<(String, Bytes)>,
}

impl Ingestor<'_> {
    /// Uploads `form` to `repo` (or to each repository the anchor `repo` names) on
    /// behalf of `uploader` at `now` (Unix seconds).
    pub async fn upload(
        &self,
        repo: &RepoPath,
        form: UploadForm,
        uploader: &str,
        now: i64,
    ) -> Result<UploadReport, UploadFailure> {
        let targets = self.supported.expand(repo);
        let mut format = None;
        for target in &targets {
            format = Some(self.supported.check(target)?.format);
        }
        let format = format.ok_or_else(|| {
            IngestError::Repo(crate::repo::RepoError::Unsupported {
                path: repo.to_string(),
                reason: format!("anchor {} names no repository", repo.series),
            })
        })?;
        let prepared = self
            .prepare_upload(&targets, format, form, uploader, now)
            .await?;

        let mut outcomes = Vec::with_capacity(prepared.len());
        let mut stored: BTreeMap<RepoPath, Vec<String>> = BTreeMap::new();
        let mut failure = None;
        for p in prepared {
            match self
                .store(p.record, PackageSource::Bytes(p.data), p.extra)
                .await
            {
                Ok(outcome) => {
                    if let IngestOutcome::Stored(r) = &outcome {
                        stored
                            .entry(r.repo.clone())
                            .or_default()
                            .push(r.filename.clone());
                    }
                    outcomes.push(outcome);
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let mut syncs = Vec::new();
        for (target, files) in &stored {
            let seq = self.announce(target, files).await?;
            syncs.push((target.clone(), seq));
        }
        let report = UploadReport {
            targets,
            outcomes,
            syncs,
        };
        match failure {
            Some(error) => Err(UploadFailure {
                error,
                done: Some(report),
            }),
            None => Ok(report),
        }
    }

    /// Validates every file of the form for every target; nothing is stored.
    async fn prepare_upload(
        &self,
        targets: &[RepoPath],
        format: RepoFormat,
        form: UploadForm,
        uploader: &str,
        now: i64,
    ) -> Result<Vec<Prepared>, IngestError> {
        let mut names: Vec<&str> = form.files.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(IngestError::Form(format!(
                "{} appears twice in the form",
                pair[0]
            )));
        }
        // Provenance files travel with their chart, source files with their .dsc,
        // in the same form.
        let (provs, packages): (Vec<_>, Vec<_>) = form
            .files
            .into_iter()
            .partition(|(name, _)| format == RepoFormat::Helm && name.ends_with(".prov"));
        let (source_files, packages): (Vec<_>, Vec<_>) =
            packages.into_iter().partition(|(name, _)| {
                format == RepoFormat::Deb && !name.ends_with(".deb") && !name.ends_with(".dsc")
            });
        let mut provs: BTreeMap<String, Bytes> = provs.into_iter().collect();
        let source_files: BTreeMap<String, Bytes> = source_files.into_iter().collect();
        let orphan_source = |used: &BTreeSet<String>| {
            source_files
                .keys()
                .find(|n| !used.contains(*n))
                .map(|orphan| {
                    IngestError::Form(format!(
                        "{orphan} is not listed by any .dsc in this upload (source files are \
                         uploaded with their .dsc; binary packages end in .deb)"
                    ))
                })
        };
        if packages.is_empty() {
            return Err(orphan_source(&BTreeSet::new())
                .unwrap_or_else(|| IngestError::Form("the form has no package file".into())));
        }
        let product = form.product.as_deref();
        let mut used_sources = BTreeSet::new();
        let mut prepared = Vec::new();
        for (filename, data) in packages {
            for target in targets {
                check_target(self.supported, target, &filename, product)?;
            }
            if filename.ends_with(".dsc") {
                for target in targets {
                    let (record, extra) = self
                        .prepare_source(
                            target,
                            &filename,
                            &data,
                            product,
                            &source_files,
                            uploader,
                            now,
                        )
                        .await?;
                    for (key, _) in &extra {
                        used_sources.insert(key.rsplit('/').next().unwrap_or(key).to_string());
                    }
                    self.check_conflict(&record).await?;
                    prepared.push(Prepared {
                        record,
                        data: data.clone(),
                        extra,
                    });
                }
                continue;
            }
            let inspected = inspect(format, filename.clone(), data.clone()).await?;
            let prov = provs.remove(&format!("{filename}.prov"));
            for target in targets {
                let dist = self.supported.check(target)?;
                let mut record =
                    build_record(target, dist, &filename, product, &inspected, uploader, now)?;
                let mut extra = Vec::new();
                if let Some(prov) = &prov {
                    attach_provenance(&mut record, prov)?;
                    extra.push((format!("{}.prov", record.pool_key), prov.clone()));
                }
                self.check_conflict(&record).await?;
                prepared.push(Prepared {
                    record,
                    data: data.clone(),
                    extra,
                });
            }
        }
        if let Some(orphan) = provs.keys().next() {
            return Err(IngestError::Form(format!(
                "{orphan} has no chart {} in the same form",
                orphan.trim_end_matches(".prov")
            )));
        }
        if let Some(err) = orphan_source(&used_sources) {
            return Err(err);
        }
        Ok(prepared)
    }
}

/// Inspects a package off the async runtime (hashing is CPU work).
async fn inspect(
    format: RepoFormat,
    filename: String,
    data: Bytes,
) -> Result<Inspected, IngestError> {
    tokio::task::spawn_blocking(move || {
        inspect_package(format, &filename, std::io::Cursor::new(&data[..]))
    })
    .await
    .map_err(|e| IngestError::Store(crate::StoreError::new("inspect", e)))?
}
