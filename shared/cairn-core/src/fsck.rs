//! The integrity invariants of one repository, checked from outside after any
//! workload: what `cairn fsck` runs and what the randomized concurrency test calls.
//!
//! 1. The signed metadata verifies, and every file it names exists with the size and
//!    SHA-256 it states, each name with one content ([`crate::verify`]).
//! 2. Once the repository is settled (its last change is published), the metadata
//!    names exactly the files of the `ready` packages: none missing, none extra.
//! 3. Every file a package claimed is claimed in the catalog for it, with the same
//!    SHA-256, and the object holds those bytes; every claim's owners are packages
//!    that list the file.
//! 4. No pool object is unreferenced (no claim, no package) beyond a grace period,
//!    no upload stays pending and no deletion stays half done beyond it.

use crate::package::{PackageStatus, generated_keys, legacy_keys};
use crate::ports::{Catalog, RepoStore, SignatureCheck, StoreError};
use crate::repo::{DistConfig, RepoFormat, RepoPath};
use crate::verify::{Verifier, VerifyReport};
use std::collections::{BTreeMap, BTreeSet};

/// What a check found, with the verification it started from.
#[derive(Debug, Clone, Default)]
pub struct FsckReport {
    /// The signature and digest verification of the published metadata.
    pub verify: VerifyReport,
    /// Packages in the catalog, by status.
    pub ready: usize,
    /// Claims on pool objects.
    pub claims: usize,
    /// Pool objects listed in the bucket.
    pub pool_objects: usize,
    /// Everything wrong beyond the verification, one line each.
    pub problems: Vec<String>,
}

impl FsckReport {
    /// True when every invariant holds.
    pub fn ok(&self) -> bool {
        self.problems.is_empty() && self.verify.ok()
    }
}

/// Checks repositories against the invariants.
pub struct Fsck<'a> {
    /// Package catalog.
    pub catalog: &'a dyn Catalog,
    /// Repository bucket.
    pub store: &'a dyn RepoStore,
    /// Keys the metadata must be signed with.
    pub keys: &'a dyn SignatureCheck,
    /// Age (seconds) after which an unreferenced object, a pending upload or a
    /// half-done deletion is a problem rather than work in progress.
    pub grace_secs: i64,
    /// Now, seconds since the epoch.
    pub now: i64,
}

/// Where a repository's package files live in the bucket.
fn pool_prefixes(repo: &RepoPath, dist: &DistConfig) -> Vec<String> {
    match dist.format {
        RepoFormat::Deb => vec![format!("{}/pool/{}/", repo.root(), repo.suite())],
        RepoFormat::Rpm => dist
            .architectures()
            .into_iter()
            .chain(["SRPMS".to_string()])
            .map(|a| format!("{}/{a}/Packages/", repo.dir()))
            .collect(),
        RepoFormat::Helm => vec![format!("{}/", repo.dir())],
    }
}

/// Whether a key under a pool prefix is a package file (Helm charts share their
/// folder with the index and the keyring).
fn is_pool_object(format: RepoFormat, prefix: &str, key: &str) -> bool {
    match format {
        RepoFormat::Helm => {
            let rest = &key[prefix.len()..];
            !rest.contains('/') && (rest.ends_with(".tgz") || rest.ends_with(".tgz.prov"))
        }
        _ => true,
    }
}

impl Fsck<'_> {
    /// Checks one repository of the given configuration.
    pub async fn check(
        &self,
        repo: &RepoPath,
        dist: &DistConfig,
    ) -> Result<FsckReport, StoreError> {
        let verify = Verifier {
            store: self.store,
            keys: self.keys,
        }
        .verify(repo, dist.format, &dist.architectures())
        .await?;
        let mut report = FsckReport {
            verify,
            ..Default::default()
        };
        let problems = &mut report.problems;

        let state = self.catalog.repo_state(repo).await?;
        let settled = state.published_seq >= state.change_seq && state.release_sha256.is_some();
        if !settled {
            problems.push(format!(
                "{repo}: changes up to {} are not published yet (published {}); check again once the sync ran",
                state.change_seq, state.published_seq
            ));
        }

        let records = self.catalog.list_packages(repo).await?;
        let claims = self.catalog.list_files(repo).await?;
        report.claims = claims.len();
        let claims: BTreeMap<&str, _> = claims.iter().map(|c| (c.file.key.as_str(), c)).collect();
        // Files the packages own, for the unreferenced-object check.
        let mut referenced: BTreeSet<String> = BTreeSet::new();
        // The package files themselves (not the files they travel with) must be
        // named by the metadata once settled; nothing but ready packages' files may be.
        let mut must_be_named: BTreeSet<String> = BTreeSet::new();
        let mut ready_files: BTreeSet<String> = BTreeSet::new();
        for record in &records {
            let filename = &record.filename;
            referenced.extend(generated_keys(record));
            if record.files.is_empty() {
                referenced.extend(legacy_keys(record, dist));
            }
            match record.status {
                PackageStatus::Ready => {
                    report.ready += 1;
                    if record.files.is_empty() {
                        must_be_named.insert(record.pool_key.clone());
                        ready_files.insert(record.pool_key.clone());
                    }
                    must_be_named.extend(
                        record
                            .files
                            .iter()
                            .filter(|f| f.sha256 == record.sha256)
                            .map(|f| f.key.clone()),
                    );
                    ready_files.extend(record.files.iter().map(|f| f.key.clone()));
                }
                PackageStatus::Pending if self.now - record.uploaded_at > self.grace_secs => {
                    problems.push(format!(
                        "{repo}/{filename}: upload pending since {} (never finished)",
                        record.uploaded_at
                    ));
                }
                PackageStatus::Pending | PackageStatus::Deleting => {}
            }
            for file in &record.files {
                referenced.insert(file.key.clone());
                match claims.get(file.key.as_str()) {
                    None => problems.push(format!(
                        "{repo}/{filename}: owns {} but the catalog has no claim on it",
                        file.key
                    )),
                    Some(c) if c.file.sha256 != file.sha256 => problems.push(format!(
                        "{repo}/{filename}: owns {} with SHA-256 {} but it is claimed with {}",
                        file.key, file.sha256, c.file.sha256
                    )),
                    Some(c) if !c.owners.contains(filename) => problems.push(format!(
                        "{repo}/{filename}: owns {} but is not among its claim's owners {:?}",
                        file.key, c.owners
                    )),
                    Some(_) => {}
                }
            }
        }
        let by_name: BTreeMap<&str, _> = records.iter().map(|r| (r.filename.as_str(), r)).collect();
        for (key, claim) in &claims {
            for owner in &claim.owners {
                let listed = by_name
                    .get(owner.as_str())
                    .is_some_and(|r| r.files.iter().any(|f| f.key == *key));
                if !listed {
                    problems.push(format!(
                        "{key}: claimed for {owner}, which does not list it (or does not exist)"
                    ));
                }
            }
            if let Some(since) = claim.deleting_since
                && self.now - since > self.grace_secs
            {
                problems.push(format!("{key}: deletion started at {since} never finished"));
            }
            if claim.owners.is_empty() && claim.deleting_since.is_none() {
                problems.push(format!("{key}: claim without owners"));
            }
        }

        // Pool objects: each claimed object holds its claimed bytes; none is left
        // unreferenced.
        let mut listed = Vec::new();
        for prefix in pool_prefixes(repo, dist) {
            for (key, modified) in self.store.list(&prefix).await? {
                if is_pool_object(dist.format, &prefix, &key) {
                    listed.push((key, modified));
                }
            }
        }
        report.pool_objects = listed.len();
        let present: BTreeSet<&str> = listed.iter().map(|(k, _)| k.as_str()).collect();
        for (key, modified) in &listed {
            let young = self.now - modified <= self.grace_secs;
            match claims.get(key.as_str()) {
                Some(claim) if !claim.owners.is_empty() => {
                    // Files the metadata names were digested by the verification.
                    let checked = report.verify.named.get(key.as_str());
                    let sha = match checked {
                        Some(sha) => Some(sha.clone()),
                        None => self.store.digest(key).await?.map(|(_, sha)| sha),
                    };
                    if sha.as_deref().is_some_and(|s| s != claim.file.sha256) {
                        problems.push(format!(
                            "{key}: holds SHA-256 {} but is claimed with {}",
                            sha.unwrap_or_default(),
                            claim.file.sha256
                        ));
                    }
                }
                _ if referenced.contains(key) || young => {}
                _ => problems.push(format!("{key}: in the pool but no package claims it")),
            }
        }
        for (key, claim) in &claims {
            if !claim.owners.is_empty() && !present.contains(key) {
                let owners_ready = claim.owners.iter().any(|o| {
                    by_name
                        .get(o.as_str())
                        .is_some_and(|r| r.status == PackageStatus::Ready)
                });
                if owners_ready {
                    problems.push(format!(
                        "{key}: claimed by ready package(s) {:?} but missing from the bucket",
                        claim.owners
                    ));
                }
            }
        }

        if settled {
            let named: BTreeSet<&str> = report
                .verify
                .named
                .keys()
                .map(String::as_str)
                .filter(|k| {
                    pool_prefixes(repo, dist)
                        .iter()
                        .any(|p| k.starts_with(p.as_str()) && is_pool_object(dist.format, p, k))
                })
                .collect();
            for key in &must_be_named {
                if !named.contains(key.as_str()) {
                    report.problems.push(format!(
                        "{key}: its package is ready but the published metadata does not name it"
                    ));
                }
            }
            for key in named {
                if !ready_files.contains(key) {
                    report.problems.push(format!(
                        "{key}: named by the published metadata but no ready package owns it"
                    ));
                }
            }
        }
        Ok(report)
    }
}
