//! Repositories as resources: a package repository with a description, owners,
//! visibility and labels, created through the API rather than only configured in
//! `SupportedRepos` (which becomes a seed list).
//!
//! This module holds the record, the validation of a creation request and the
//! store port. Resolving uploads and publications against created repositories, the
//! `/v1/repositories` routes and private reads build on it (docs/access.md, "Next").

use crate::access::{Action, Denied};
use crate::auth::Principal;
use crate::error::StoreError;
use crate::labels::{Labels, Selector, check_labels};
use crate::repo::{
    DistConfig, MetadataCompression, RepoError, RepoFormat, RepoPath, SupportedRepos,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub mod external;
mod files;
mod manage;
pub use files::{
    Audience, Bucket, FileAccess, archive_of, check_key, file_access, readable_events,
};
pub use manage::{
    Deletion, Listed, Manager, RESERVED_KINDS, RepositoryUpdate, finish_deletion, upload_format,
};

/// Longest description.
pub const MAX_DESCRIPTION: usize = 1000;
/// Most owners of one repository.
pub const MAX_OWNERS: usize = 20;
/// Longest archive name.
pub const MAX_ARCHIVE_NAME: usize = 100;
/// Where archive repositories' records are: `archive/<name>`.
pub const ARCHIVE_KIND: &str = "archive";

/// What a repository holds: packages in one of the package formats, or source
/// archives (git repositories a name's archived trees are kept in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// APT.
    Deb,
    /// YUM/DNF.
    Rpm,
    /// Helm charts.
    Helm,
    /// Source archives of one name (docs/archives.md).
    Archive,
    /// Another chart repository, indexed into apps (`external/<name>`).
    #[serde(rename = "external-helm")]
    ExternalHelm,
}

impl Format {
    /// The package format, unless it holds archives.
    pub fn packages(self) -> Option<RepoFormat> {
        match self {
            Format::Deb => Some(RepoFormat::Deb),
            Format::Rpm => Some(RepoFormat::Rpm),
            Format::Helm => Some(RepoFormat::Helm),
            Format::Archive | Format::ExternalHelm => None,
        }
    }

    /// Its name in answers: `deb`, `rpm`, `helm`, `archive`, `external-helm`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Archive => "archive",
            Format::ExternalHelm => "external-helm",
            packages => packages.packages().map_or("", RepoFormat::as_str),
        }
    }
}

impl From<RepoFormat> for Format {
    fn from(f: RepoFormat) -> Self {
        match f {
            RepoFormat::Deb => Format::Deb,
            RepoFormat::Rpm => Format::Rpm,
            RepoFormat::Helm => Format::Helm,
        }
    }
}

impl PartialEq<RepoFormat> for Format {
    fn eq(&self, other: &RepoFormat) -> bool {
        self.packages() == Some(*other)
    }
}

/// The record path of archive repository `name`.
pub fn archive_path(name: &str) -> String {
    format!("{ARCHIVE_KIND}/{name}")
}

/// Checks an archive name: letters, digits, `.`, `_`, `-`, starting with a letter
/// or digit, no `..`, no `.git` or `.lock` suffix.
pub fn check_archive_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_ARCHIVE_NAME
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !name.contains("..")
        && !name.ends_with(".git")
        && !name.ends_with(".lock");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid name '{name}': use letters, digits, '.', '_' and '-', start with a \
             letter or digit, at most {MAX_ARCHIVE_NAME} characters, no '..' and no .git suffix"
        ))
    }
}

/// Who may see a repository.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Anyone, without credentials.
    #[default]
    Public,
    /// Its owners, admins, and accounts whose selectors match its labels.
    Private,
}

/// A package repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repository {
    /// Where it lives: `kind/series/dist/version`, or `archive/<name>`.
    pub path: String,
    /// What it holds.
    pub format: Format,
    /// Architectures every publication indexes (empty: the format's defaults).
    #[serde(default)]
    pub architectures: Vec<String>,
    /// YUM metadata compression.
    #[serde(default)]
    pub metadata_compression: MetadataCompression,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// Who may see it.
    #[serde(default)]
    pub visibility: Visibility,
    /// Its labels, matched by selectors.
    #[serde(default)]
    pub labels: Labels,
    /// Accounts that manage it (its creator among them).
    #[serde(default)]
    pub owners: Vec<String>,
    /// When it was created, Unix seconds.
    pub created_at: i64,
    /// Incremented by every change (conditional writes).
    pub version: u64,
    /// `active`, or `deleting` while its packages and files go.
    #[serde(default)]
    pub state: RepositoryState,
    /// Random, set at creation: a private repository's files are kept under
    /// `private/<storage>/` in the bucket, a location nobody can guess.
    #[serde(default)]
    pub storage: String,
    /// When its visibility last changed, Unix seconds (0: never): events before
    /// it, or before it was created, are not shown as its history, so an earlier
    /// repository's events at the same path (or its private past) stay hidden.
    #[serde(default)]
    pub visibility_since: i64,
    /// An external repository's URL, user name, credentials reference and schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<external::External>,
}

/// Where a repository is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RepositoryState {
    /// Takes uploads and is published.
    #[default]
    Active,
    /// Deleted: takes no uploads; its packages are being removed, then its
    /// metadata and record.
    Deleting,
}

impl Repository {
    /// The repository's path, parsed.
    pub fn repo_path(&self) -> Result<RepoPath, String> {
        RepoPath::parse(&self.path).map_err(|e| e.to_string())
    }

    /// The archive name, if it holds archives.
    pub fn archive_name(&self) -> Option<&str> {
        (self.format == Format::Archive)
            .then(|| self.path.strip_prefix(ARCHIVE_KIND)?.strip_prefix('/'))
            .flatten()
    }

    /// How it is published, in the shape the publishers read.
    pub fn dist_config(&self) -> Result<DistConfig, String> {
        let format = self
            .format
            .packages()
            .ok_or_else(|| format!("{} holds archives, not packages", self.path))?;
        let path = self.repo_path()?;
        Ok(DistConfig {
            format,
            versions: vec![path.dist_ver],
            architectures: self.architectures.clone(),
            metadata_compression: self.metadata_compression,
            private_prefix: self.private_prefix(),
        })
    }

    /// Whether `event` (of this repository's subject) happened in this
    /// repository's present life: after it was created and its visibility last
    /// changed. An event whose time cannot be read is not.
    pub fn history_includes(&self, event: &crate::events::Event) -> bool {
        let start = self.created_at.max(self.visibility_since);
        crate::events::event_time(event).is_some_and(|t| t.unix_timestamp() >= start)
    }

    /// Where its files are kept when it is private: `private/<storage>/`.
    pub fn private_prefix(&self) -> Option<String> {
        (self.visibility == Visibility::Private).then(|| format!("private/{}/", self.storage))
    }

    /// Whether the caller (anonymous when `None`) sees it.
    pub fn visible_to_caller(&self, caller: Option<&Principal>) -> bool {
        match caller {
            Some(p) => self.visible_to(Some(&p.name), p.is_admin(), &p.selectors),
            None => self.visible_to(None, false, &[]),
        }
    }

    /// Whether `reader` reads it: sees it, and its credential holds `read` on it.
    pub fn readable_by(&self, reader: &Principal) -> bool {
        self.visible_to_caller(Some(reader)) && reader.scopes.allows(Action::Read, &self.path)
    }

    /// Whether the caller manages it: an owner, or an admin.
    pub fn managed_by(&self, caller: &Principal) -> bool {
        caller.is_admin() || self.owners.contains(&caller.name)
    }

    /// Whether `account` (with `admin` if `is_admin`, and its `selectors`) sees it.
    pub fn visible_to(
        &self,
        account: Option<&str>,
        is_admin: bool,
        selectors: &[Selector],
    ) -> bool {
        self.visibility == Visibility::Public
            || is_admin
            || account.is_some_and(|a| self.owners.iter().any(|o| o == a))
            || (account.is_some() && selectors.iter().any(|s| s.matches(&self.labels)))
    }
}

/// A request to create a repository, as the API receives it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRepository {
    /// `apt`, `yum`, `helm` or `archive`.
    pub format: String,
    /// `kind/series/dist/version` (an archive's: `archive/<name>`, or give `name`).
    #[serde(default)]
    pub path: String,
    /// An archive or external repository's name (an archive's is the `name` of
    /// `POST /v1/archives`).
    #[serde(default)]
    pub name: Option<String>,
    /// An external repository's URL.
    #[serde(default)]
    pub url: Option<String>,
    /// An external repository's credentials (kept in the vault, never returned).
    #[serde(default)]
    pub credentials: Option<external::Credentials>,
    /// Minutes between an external repository's scheduled index runs (0: none).
    #[serde(default)]
    pub interval_minutes: Option<u32>,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// `public` (default) or `private`.
    #[serde(default)]
    pub visibility: Visibility,
    /// Labels.
    #[serde(default)]
    pub labels: Labels,
    /// Further owners besides the creator.
    #[serde(default)]
    pub owners: Vec<String>,
    /// Architectures to index (default: the format's).
    #[serde(default)]
    pub architectures: Vec<String>,
}

impl NewRepository {
    /// Checks the request and makes the record `creator` owns.
    pub fn validate(self, creator: &str, now: i64) -> Result<Repository, String> {
        let format = match self.format.as_str() {
            "apt" | "deb" => Format::Deb,
            "yum" | "rpm" => Format::Rpm,
            "helm" => Format::Helm,
            "archive" => Format::Archive,
            "external-helm" => Format::ExternalHelm,
            other => {
                return Err(format!(
                    "format {other:?}: apt, yum, helm, archive or external-helm"
                ));
            }
        };
        let external = self.external_part(format)?;
        let path = if matches!(format, Format::Archive | Format::ExternalHelm) {
            let kind = if format == Format::Archive {
                ARCHIVE_KIND
            } else {
                external::EXTERNAL_KIND
            };
            let from_path = self.path.trim_matches('/');
            let prefix = format!("{kind}/");
            let named = |n: &str| format!("{kind}/{n}");
            let name = match (&self.name, from_path.strip_prefix(prefix.as_str())) {
                (Some(name), _) if from_path.is_empty() || from_path == named(name) => name.clone(),
                (None, Some(name)) => name.to_string(),
                _ => {
                    return Err(format!(
                        "an {} repository is named: {{\"format\": \"{}\", \"name\": \
                         \"<name>\"}} (its path is {kind}/<name>)",
                        self.format,
                        format.as_str()
                    ));
                }
            };
            check_archive_name(&name)?;
            if !self.architectures.is_empty() {
                return Err(format!(
                    "an {} repository has no architectures",
                    self.format
                ));
            }
            named(&name)
        } else {
            if self.name.is_some() {
                return Err(format!(
                    "a {} repository is placed by its path, not named",
                    self.format
                ));
            }
            RepoPath::parse(self.path.trim_matches('/'))
                .map_err(|e| e.to_string())?
                .to_string()
        };
        check_description(&self.description)?;
        check_labels(&self.labels)?;
        let owners = check_owners(self.owners, vec![creator.to_string()])?;
        check_architectures(&self.architectures)?;
        Ok(Repository {
            path,
            format,
            architectures: self.architectures,
            metadata_compression: MetadataCompression::default(),
            description: self.description,
            visibility: self.visibility,
            labels: self.labels,
            owners,
            created_at: now,
            version: 1,
            state: RepositoryState::Active,
            storage: random_hex(),
            visibility_since: 0,
            external,
        })
    }

    /// The external part of an `external-helm` request (its URL and schedule; the
    /// credentials go to the vault), and none of it for other formats.
    fn external_part(&self, format: Format) -> Result<Option<external::External>, String> {
        if format != Format::ExternalHelm {
            if self.url.is_some() || self.credentials.is_some() || self.interval_minutes.is_some() {
                return Err(format!(
                    "url, credentials and interval_minutes are an external-helm \
                     repository's; a {} repository has none",
                    self.format
                ));
            }
            return Ok(None);
        }
        let url = self
            .url
            .as_deref()
            .ok_or("an external-helm repository needs a url")?;
        let url = external::check_url(url)?;
        if let Some(c) = &self.credentials {
            c.check()?;
        }
        let interval = self
            .interval_minutes
            .unwrap_or(external::DEFAULT_INTERVAL_MINUTES);
        if interval != 0 && interval < external::MIN_INTERVAL_MINUTES {
            return Err(format!(
                "interval_minutes: 0 (no schedule) or at least {}",
                external::MIN_INTERVAL_MINUTES
            ));
        }
        Ok(Some(external::External {
            url,
            username: None,
            credentials: None,
            interval_minutes: interval,
        }))
    }
}

/// 128 random bits, hex.
fn random_hex() -> String {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Checks a description.
pub(crate) fn check_description(text: &str) -> Result<(), String> {
    if text.chars().count() > MAX_DESCRIPTION || text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(format!(
            "description: at most {MAX_DESCRIPTION} characters, no control characters"
        ));
    }
    Ok(())
}

/// `first` and then `more` owners, without repeats, each an account name.
pub(crate) fn check_owners(
    more: impl IntoIterator<Item = String>,
    first: Vec<String>,
) -> Result<Vec<String>, String> {
    let mut owners = first;
    for owner in more {
        if owner.is_empty() || owner.len() > crate::auth::MAX_USER_NAME || owner.contains(':') {
            return Err(format!("owner {owner:?} is not an account name"));
        }
        if !owners.contains(&owner) {
            owners.push(owner);
        }
    }
    if owners.len() > MAX_OWNERS {
        return Err(format!("at most {MAX_OWNERS} owners"));
    }
    Ok(owners)
}

/// Checks architecture names.
pub(crate) fn check_architectures(archs: &[String]) -> Result<(), String> {
    for arch in archs {
        let ok = !arch.is_empty()
            && arch.len() <= 32
            && arch
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
        if !ok {
            return Err(format!("architecture {arch:?} is not a name"));
        }
    }
    Ok(())
}

/// Where created repositories are kept.
#[async_trait]
pub trait RepositoryStore: Send + Sync {
    /// Whether archive name `name` holds anything (an archived tree, a pushed ref).
    async fn archive_in_use(&self, name: &str) -> Result<bool, StoreError>;
    /// Creates a repository; false when its path is taken.
    async fn create_repository(&self, repo: &Repository) -> Result<bool, StoreError>;
    /// A repository by path.
    async fn get_repository(&self, path: &str) -> Result<Option<Repository>, StoreError>;
    /// Every created repository.
    async fn list_repositories(&self) -> Result<Vec<Repository>, StoreError>;
    /// Replaces a repository if it is still at `repo.version - 1`; false otherwise.
    async fn replace_repository(&self, repo: &Repository) -> Result<bool, StoreError>;
    /// Removes a repository if it is still at `repo.version`; false otherwise. An
    /// archive repository releases its name's claim with it (created, it claims it).
    async fn delete_repository(&self, repo: &Repository) -> Result<bool, StoreError>;
    /// Closes archive repository `repo`'s name to writers (`closing`), or opens it
    /// again; false if the name is not claimed by `repo`. Deleting an archive
    /// repository closes it first, so no operation writes into a name between the
    /// check that it is empty and its release.
    async fn close_archive(&self, repo: &Repository, closing: bool) -> Result<bool, StoreError>;
}

/// Why a repository request was refused.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// The request is malformed (400).
    #[error("{0}")]
    Invalid(String),
    /// No such repository, or one the caller may not see (404: a private
    /// repository is not told apart from an absent one).
    #[error("{0}")]
    NotFound(String),
    /// The repository's state forbids it (409).
    #[error("{0}")]
    Conflict(String),
    /// The caller sees the repository but may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// A scope the credential lacks (403).
    #[error(transparent)]
    Denied(#[from] Denied),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a request means to do with the repositories it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Read its listing (public, or visible to the caller with `read`).
    Read,
    /// Change its packages (`upload` or `delete`): created repositories take
    /// changes from their owners (and admins) only, and none while being deleted.
    Write(Action),
    /// Publish it: any repository that exists, in any state (one being deleted is
    /// published empty before it goes).
    Publish,
}

/// The 404 for a path that is no repository the caller can see: says how to make one.
pub fn not_a_repository(path: &RepoPath, reason: &str) -> RepositoryError {
    RepositoryError::NotFound(format!(
        "unknown repository {path}: {reason}. Create it with POST /v1/repositories \
         {{\"path\": \"{path}\", \"format\": \"apt|yum|helm\"}} (cairn repo create {path} \
         --format apt|yum|helm)"
    ))
}

/// The repositories `requested` names (an anchor names several), checked for the
/// caller and the intent: the configured ones (scopes decide) and those created
/// through the API (visibility, then ownership for writes, then scopes), as a
/// [`SupportedRepos`] that ingest and publish check paths against as they check
/// configuration. One read per path that configuration does not know.
pub async fn open(
    seed: &SupportedRepos,
    store: &dyn RepositoryStore,
    caller: Option<&Principal>,
    intent: Intent,
    requested: &RepoPath,
) -> Result<SupportedRepos, RepositoryError> {
    let anchor = seed.anchors.contains_key(&requested.series);
    let paths = seed.expand(requested);
    let mut created = Vec::new();
    for path in &paths {
        let name = path.to_string();
        let public = match seed.check(path) {
            Ok(_) => true,
            // An anchor fans out to configured repositories only: a created one
            // (perhaps private, with its files apart) is written to by its own path.
            Err(RepoError::Unsupported { .. }) if anchor => {
                return Err(RepositoryError::Invalid(format!(
                    "{path} is not a configured repository: an anchor reaches configured \
                     repositories only"
                )));
            }
            Err(RepoError::Unsupported { reason, .. }) => {
                let record = store
                    .get_repository(&name)
                    .await?
                    // A publication acts on what an authorized request asked for.
                    .filter(|r| intent == Intent::Publish || r.visible_to_caller(caller));
                let Some(record) = record else {
                    return Err(not_a_repository(path, &reason));
                };
                if matches!(intent, Intent::Write(_)) && record.state == RepositoryState::Deleting {
                    return Err(RepositoryError::Conflict(format!(
                        "repository {name} is being deleted"
                    )));
                }
                if matches!(intent, Intent::Write(_))
                    && !caller.is_some_and(|c| record.managed_by(c))
                {
                    return Err(RepositoryError::Forbidden(format!(
                        "only the owners of {name} ({}) change its packages",
                        record.owners.join(", ")
                    )));
                }
                match record.dist_config() {
                    Ok(dist) => created.push((path.clone(), dist)),
                    Err(e) => {
                        tracing::warn!(path = %path, error = %e, "unreadable repository record");
                        return Err(not_a_repository(path, "its record is unreadable"));
                    }
                }
                record.visibility == Visibility::Public
            }
            Err(e) => return Err(RepositoryError::Invalid(e.to_string())),
        };
        match (intent, caller) {
            (Intent::Write(action), Some(caller)) => caller.require(action, &name)?,
            (Intent::Write(action), None) => {
                return Err(Denied { action, name }.into());
            }
            // A private repository's listing needs `read` on it.
            (Intent::Read, Some(caller)) if !public => caller.require(Action::Read, &name)?,
            (Intent::Read | Intent::Publish, _) => {}
        }
    }
    Ok(seed.with_created(created))
}

/// Archive repository `name` as the caller may use it: `None` when no repository
/// record names it (its archives are public and the `archive` scope alone decides,
/// as before repositories were resources); a private one the caller does not see is
/// 404. Writing (archiving under the name) takes an owner or admin with
/// `archive:<name>`; reading one takes `archive:<name>` or `read:archive/<name>`.
pub async fn open_archive(
    store: &dyn RepositoryStore,
    caller: &Principal,
    intent: Intent,
    name: &str,
) -> Result<Option<Repository>, RepositoryError> {
    let Some(record) = archive_record(store, name).await? else {
        return Ok(None);
    };
    check_archive(&record, caller, intent)?;
    Ok(Some(record))
}

/// The archive repository record claiming `name`, if any (one read).
pub async fn archive_record(
    store: &dyn RepositoryStore,
    name: &str,
) -> Result<Option<Repository>, StoreError> {
    Ok(store
        .get_repository(&archive_path(name))
        .await?
        .filter(|r| r.format == Format::Archive))
}

/// [`open_archive`]'s check of a record already read.
pub fn check_archive(
    record: &Repository,
    caller: &Principal,
    intent: Intent,
) -> Result<(), RepositoryError> {
    let name = record.archive_name().unwrap_or_default();
    if !record.visible_to_caller(Some(caller)) {
        return Err(RepositoryError::NotFound(format!(
            "no repository named '{name}'"
        )));
    }
    match intent {
        Intent::Write(_) => {
            if !record.managed_by(caller) {
                return Err(RepositoryError::Forbidden(format!(
                    "only the owners of archive repository {name} ({}) archive under it",
                    record.owners.join(", ")
                )));
            }
            caller.require(Action::Archive, name)?;
        }
        Intent::Read if !caller.scopes.allows(Action::Archive, name) => {
            caller.require(Action::Read, &record.path)?;
        }
        Intent::Read | Intent::Publish => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: serde_json::Value) -> Result<Repository, String> {
        let new: NewRepository = serde_json::from_value(body).map_err(|e| e.to_string())?;
        new.validate("alice", 100)
    }

    #[test]
    fn a_request_becomes_a_record_its_creator_owns() {
        let repo = request(serde_json::json!({
            "format": "apt", "path": "/team/db/ubuntu/noble/", "description": "DB builds",
            "visibility": "private", "labels": {"team": "db"}, "owners": ["bob", "alice"]
        }))
        .expect("valid");
        assert_eq!(repo.path, "team/db/ubuntu/noble");
        assert_eq!(repo.format, RepoFormat::Deb);
        assert_eq!(repo.owners, ["alice", "bob"]);
        assert_eq!(repo.dist_config().expect("config").versions, ["noble"]);
        let db = Selector::parse("team=db").expect("valid");
        let web = Selector::parse("team=web").expect("valid");
        assert!(repo.visible_to(Some("alice"), false, &[]));
        assert!(repo.visible_to(Some("carol"), false, std::slice::from_ref(&db)));
        assert!(!repo.visible_to(Some("carol"), false, &[web]));
        assert!(
            !repo.visible_to(None, false, &[db]),
            "selectors are an account's"
        );
        assert!(repo.visible_to(Some("root"), true, &[]));
    }

    fn principal(name: &str, scopes: &[&str], selectors: &[&str]) -> Principal {
        let texts: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        Principal {
            name: name.into(),
            scopes: crate::access::Scopes::parse(&texts).expect("scopes"),
            token: None,
            expires_at: None,
            selectors: selectors
                .iter()
                .map(|s| Selector::parse(s).expect("selector"))
                .collect(),
        }
    }

    #[tokio::test]
    async fn open_checks_visibility_then_ownership_then_scopes() {
        let store = crate::memory::MemoryCatalog::default();
        for body in [
            serde_json::json!({"format": "yum", "path": "team/db/el/9"}),
            serde_json::json!({"format": "yum", "path": "team/db/el/8", "visibility": "private",
                               "labels": {"team": "db"}}),
        ] {
            assert!(
                store
                    .create_repository(&request(body).expect("valid"))
                    .await
                    .expect("store")
            );
        }
        let seed: SupportedRepos = serde_json::from_str(
            r#"{"kinds":["release"],"series":["1"],"dists":{"ubuntu":{"format":"deb","versions":["jammy"]}}}"#,
        )
        .expect("config");
        let path = |p: &str| RepoPath::parse(p).expect("valid");
        let open1 = |caller: Option<Principal>, intent: Intent, p: &'static str| {
            let (seed, store) = (&seed, &store);
            async move { open(seed, store, caller.as_ref(), intent, &path(p)).await }
        };
        let alice = || Some(principal("alice", &["upload", "read"], &[]));
        let carol_db = || Some(principal("carol", &["upload", "read"], &["team=db"]));
        let carol_no_read = || Some(principal("carol", &["upload:release/*"], &["team=db"]));
        let dave = || Some(principal("dave", &["upload", "read"], &["team=web"]));
        let upload = Intent::Write(Action::Upload);

        // Configured: scopes decide; anyone reads.
        let ok = open1(alice(), upload, "release/1/ubuntu/jammy").await;
        assert!(ok.is_ok(), "{ok:?}");
        let ok = open1(None, Intent::Read, "release/1/ubuntu/jammy").await;
        assert!(ok.is_ok());
        // Created and public: anyone reads, its owner writes, others are told who may.
        let resolved = open1(None, Intent::Read, "team/db/el/9")
            .await
            .expect("public");
        assert_eq!(
            resolved
                .check(&path("team/db/el/9"))
                .expect("created")
                .format,
            RepoFormat::Rpm
        );
        let ok = open1(alice(), upload, "team/db/el/9").await;
        assert!(ok.is_ok(), "{ok:?}");
        let e = open1(dave(), upload, "team/db/el/9")
            .await
            .expect_err("not an owner");
        assert!(
            matches!(&e, RepositoryError::Forbidden(m) if m.contains("alice")),
            "{e:?}"
        );
        // Private: 404 to the anonymous and to strangers, with the same words as a
        // path that is nothing at all.
        for (caller, what) in [(None, "anonymous"), (dave(), "stranger")] {
            let e = open1(caller, Intent::Read, "team/db/el/8")
                .await
                .expect_err(what);
            assert!(
                matches!(&e, RepositoryError::NotFound(m) if m.contains("POST /v1/repositories")),
                "{what}: {e:?}"
            );
        }
        let absent = open1(dave(), Intent::Read, "team/db/el/7")
            .await
            .expect_err("absent");
        assert!(matches!(absent, RepositoryError::NotFound(_)));
        // A matching selector shows it (with `read`), but gives no right to write.
        assert!(
            open1(carol_db(), Intent::Read, "team/db/el/8")
                .await
                .is_ok()
        );
        let e = open1(carol_no_read(), Intent::Read, "team/db/el/8")
            .await
            .expect_err("no read");
        assert!(matches!(e, RepositoryError::Denied(_)), "{e:?}");
        let e = open1(carol_db(), upload, "team/db/el/8")
            .await
            .expect_err("not an owner");
        assert!(matches!(e, RepositoryError::Forbidden(_)), "{e:?}");
        // The owner, with a token scoped elsewhere: the scope still decides.
        let narrow = Some(principal("alice", &["upload:release/*"], &[]));
        let e = open1(narrow, upload, "team/db/el/8")
            .await
            .expect_err("scope");
        assert!(matches!(e, RepositoryError::Denied(_)), "{e:?}");
        // Being deleted: no more writes.
        let mut doomed = store
            .get_repository("team/db/el/9")
            .await
            .expect("get")
            .expect("there");
        doomed.state = RepositoryState::Deleting;
        doomed.version += 1;
        assert!(store.replace_repository(&doomed).await.expect("replace"));
        let e = open1(alice(), upload, "team/db/el/9")
            .await
            .expect_err("deleting");
        assert!(matches!(e, RepositoryError::Conflict(_)), "{e:?}");
        let publication = open1(None, Intent::Publish, "team/db/el/9")
            .await
            .expect("published while deleting");
        assert!(
            publication.check(&path("team/db/el/9")).is_ok(),
            "still published"
        );
        assert!(
            seed.check(&path("team/db/el/9")).is_err(),
            "the seed is unchanged"
        );
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        for (body, words) in [
            (
                serde_json::json!({"format": "zip", "path": "a/b/c/d"}),
                "format",
            ),
            (serde_json::json!({"format": "apt", "path": "a/../c/d"}), ""),
            (serde_json::json!({"format": "apt", "path": "a/b/c"}), ""),
            (
                serde_json::json!({"format": "yum", "path": "a/b/c/d", "labels": {"bad key": "x"}}),
                "label key",
            ),
            (
                serde_json::json!({"format": "helm", "path": "a/b/c/d", "owners": ["x:y"]}),
                "owner",
            ),
            (
                serde_json::json!({"format": "apt", "path": "a/b/c/d", "architectures": ["amd64/x"]}),
                "architecture",
            ),
            (
                serde_json::json!({"format": "apt", "path": "a/b/c/d", "visibility": "secret"}),
                "unknown variant",
            ),
            (
                serde_json::json!({"format": "apt", "path": "a/b/c/d", "extra": 1}),
                "unknown field",
            ),
        ] {
            let e = request(body.clone()).expect_err(&body.to_string());
            assert!(e.contains(words), "{body}: {e}");
        }
    }
}
