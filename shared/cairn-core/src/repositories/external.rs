//! External Helm repositories (OpenPitrix's repository service and indexer): a
//! repository record that points at another chart repository's URL, with
//! credentials kept in a vault (never returned), checked on creation (reachable
//! with those credentials through the outbound address policy, serving a valid
//! `index.yaml`), and indexed into apps and app versions by runs that a queue feeds
//! one at a time per repository: on creation, on demand and on a schedule.
//!
//! A run is incremental: an index whose digest is the last run's changes nothing;
//! otherwise the versions not indexed yet are added (insert if absent: a version
//! that leaves the index stays listed) and the apps they belong to are summed up
//! again. Each run is recorded and announced as a `repository.indexed` event, failed
//! ones with their reason; a failed run stores nothing.

use super::{Format, Repository, RepositoryError, RepositoryStore, Visibility};
use crate::access::Action;
use crate::auth::Principal;
use crate::error::StoreError;
use crate::events::{NewEvent, Subject};
use crate::labels::{Labels, Selector};
use crate::ports::RepoStore;
use crate::repo::{RepoFormat, RepoPath, SupportedRepos};
use async_trait::async_trait;
use bytes::Bytes;
use cairn_helm::{ChartVersion, compare_versions, parse_external_index};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// Where external repositories' records are: `external/<name>`.
pub const EXTERNAL_KIND: &str = "external";
/// Default minutes between scheduled index runs.
pub const DEFAULT_INTERVAL_MINUTES: u32 = 60;
/// Shortest interval between scheduled runs (0 turns the schedule off).
pub const MIN_INTERVAL_MINUTES: u32 = 5;
/// Longest URL accepted.
const MAX_URL: usize = 2048;
/// Longest user name or password accepted.
const MAX_CREDENTIAL: usize = 1024;

/// The record path of external repository `name`.
pub fn external_path(name: &str) -> String {
    format!("{EXTERNAL_KIND}/{name}")
}

/// What an external repository's record keeps besides the common fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct External {
    /// The chart repository's URL (its index is `<url>/index.yaml`).
    pub url: String,
    /// The user name sent, if any (the password is in the vault only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The vault's reference to the credentials (never returned by the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
    /// Minutes between scheduled index runs; 0: on creation and on demand only.
    #[serde(default = "default_interval")]
    pub interval_minutes: u32,
}

fn default_interval() -> u32 {
    DEFAULT_INTERVAL_MINUTES
}

/// A user name and password for a chart repository. Its `Debug` hides the password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

impl Credentials {
    /// Checks lengths and characters (a header value cannot hold control characters).
    pub fn check(&self) -> Result<(), String> {
        let ok = |s: &str| s.len() <= MAX_CREDENTIAL && !s.chars().any(char::is_control);
        if self.username.is_empty() || !ok(&self.username) || !ok(&self.password) {
            return Err(format!(
                "credentials: a user name and a password of at most {MAX_CREDENTIAL} \
                 characters, no control characters"
            ));
        }
        Ok(())
    }
}

/// Checks an external repository URL's shape: `http(s)://host[:port][/path]`, no
/// user info (credentials go in `credentials`), query or fragment. Where it may
/// connect is the address policy's to say, when it is fetched.
pub fn check_url(url: &str) -> Result<String, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("url {url:?}: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("url {url:?}: http or https only"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("url {url:?} has no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("url: put credentials in `credentials`, not in the URL".into());
    }
    if parsed.query().is_some() || parsed.fragment().is_some() || url.len() > MAX_URL {
        return Err(format!(
            "url {url:?}: no query or fragment, at most {MAX_URL} characters"
        ));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// Why an index could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The URL or where it resolves is refused (address policy, syntax).
    #[error("{0}")]
    Refused(String),
    /// The repository refused the credentials (401, 403).
    #[error("{0}")]
    Unauthorized(String),
    /// Anything else: unreachable, a status other than 200, too large, too slow.
    #[error("{0}")]
    Failed(String),
}

/// Reading a chart repository's `index.yaml` over the network.
#[async_trait]
pub trait IndexSource: Send + Sync {
    /// The bytes of `<url>/index.yaml`, sent with `credentials` if any.
    async fn fetch_index(
        &self,
        url: &str,
        credentials: Option<&Credentials>,
    ) -> Result<Bytes, SourceError>;
}

/// Where credentials are kept, encrypted at rest.
#[async_trait]
pub trait CredentialVault: Send + Sync {
    /// Keeps `credentials` for the repository whose storage id is `storage`; the
    /// reference to read them back with.
    async fn store(&self, storage: &str, credentials: &Credentials) -> Result<String, StoreError>;
    /// The credentials `reference` names.
    async fn read(&self, reference: &str) -> Result<Option<Credentials>, StoreError>;
    /// Forgets them.
    async fn forget(&self, reference: &str) -> Result<(), StoreError>;
}

/// Asks for an index run.
#[async_trait]
pub trait IndexQueue: Send + Sync {
    /// Queues a run of repository `path` (one at a time per repository).
    async fn request_index(&self, path: &str, reason: &str) -> Result<(), StoreError>;
}

/// An app: one chart of one indexed repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSummary {
    /// The chart's name.
    pub name: String,
    /// The repository it is in.
    pub repository: String,
    /// Its highest version.
    pub latest_version: String,
    /// That version's application version.
    #[serde(default)]
    pub app_version: String,
    /// That version's description.
    #[serde(default)]
    pub description: String,
    /// How many versions are indexed.
    pub versions: usize,
    /// When a version was last added, Unix seconds.
    pub updated_at: i64,
    /// The storage id of the repository it was indexed from: an app of an earlier
    /// repository at the same path (deleted, created again) is not the new one's.
    #[serde(default)]
    pub storage: String,
}

/// The key a repository's index is kept under: its path and storage id, so a
/// repository created again at a path starts with an empty index, and a run still
/// writing for a deleted one writes where nobody reads.
pub fn index_key(path: &str, storage: &str) -> String {
    format!("{path}#{storage}")
}

/// Where an indexed repository stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexState {
    /// SHA-256 of the index last read.
    pub digest: String,
    /// When it was read, Unix seconds.
    pub indexed_at: i64,
    /// Versions indexed.
    pub versions: usize,
    /// Apps indexed.
    pub apps: usize,
}

/// The last run of a repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// `indexed`, `unchanged` or `failed`.
    pub status: String,
    /// When it ran, Unix seconds.
    pub at: i64,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Apps and app versions.
#[async_trait]
pub trait AppStore: Send + Sync {
    /// Where repository `repo`'s index stands.
    async fn index_state(&self, repo: &str) -> Result<Option<IndexState>, StoreError>;
    /// Every version indexed from `repo`.
    async fn indexed_versions(&self, repo: &str) -> Result<Vec<ChartVersion>, StoreError>;
    /// Adds versions (none of them indexed yet) to `repo`'s.
    async fn add_versions(&self, repo: &str, versions: &[ChartVersion]) -> Result<(), StoreError>;
    /// Writes (replaces) app summaries.
    async fn put_apps(&self, apps: &[AppSummary]) -> Result<(), StoreError>;
    /// Records a run: its state if it indexed, its record, and its event, together.
    async fn finish_run(
        &self,
        repo: &str,
        state: Option<&IndexState>,
        run: &RunRecord,
        event: &NewEvent,
    ) -> Result<(), StoreError>;
    /// The last run of `repo`.
    async fn last_run(&self, repo: &str) -> Result<Option<RunRecord>, StoreError>;
    /// Every app of every repository.
    async fn apps(&self) -> Result<Vec<AppSummary>, StoreError>;
    /// The versions of app `app` in `repo`.
    async fn app_versions(&self, repo: &str, app: &str) -> Result<Vec<ChartVersion>, StoreError>;
    /// Forgets everything indexed from `repo` (its repository is deleted).
    async fn forget_index(&self, repo: &str) -> Result<(), StoreError>;
}

/// What a check of an external repository found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexCheck {
    /// Charts in its index.
    pub charts: usize,
    /// Chart versions in its index.
    pub versions: usize,
    /// SHA-256 of the index.
    pub digest: String,
}

/// The external repository use cases.
pub struct Externals<'a> {
    /// Repository records.
    pub store: &'a dyn RepositoryStore,
    /// The network.
    pub source: &'a dyn IndexSource,
    /// Credentials.
    pub vault: &'a dyn CredentialVault,
    /// Apps and versions.
    pub apps: &'a dyn AppStore,
    /// Index runs.
    pub queue: &'a dyn IndexQueue,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Fetches and parses an index: its versions and digest, or a refusal saying why.
async fn read_index(
    source: &dyn IndexSource,
    url: &str,
    credentials: Option<&Credentials>,
) -> Result<(Vec<ChartVersion>, String), RepositoryError> {
    let (body, digest) = fetch_index(source, url, credentials).await?;
    let versions = parse_index_bytes(&body)
        .map_err(|e| RepositoryError::Invalid(format!("{url}/index.yaml: {e}")))?;
    Ok((versions, digest))
}

/// Fetches an index: its bytes and their digest.
async fn fetch_index(
    source: &dyn IndexSource,
    url: &str,
    credentials: Option<&Credentials>,
) -> Result<(Bytes, String), RepositoryError> {
    let body = source.fetch_index(url, credentials).await.map_err(|e| {
        RepositoryError::Invalid(match e {
            SourceError::Unauthorized(m) => {
                format!("{url} refused the credentials: {m}")
            }
            SourceError::Refused(m) => format!("{url} is refused: {m}"),
            SourceError::Failed(m) => format!("{url}/index.yaml could not be read: {m}"),
        })
    })?;
    let digest = sha256_hex(&body);
    Ok((body, digest))
}

fn parse_index_bytes(body: &[u8]) -> Result<Vec<ChartVersion>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "not UTF-8 text".to_string())?;
    parse_external_index(text)
}

impl Externals<'_> {
    /// Checks that `url` serves a valid index with `credentials`, storing nothing.
    pub async fn validate(
        &self,
        url: &str,
        credentials: Option<&Credentials>,
    ) -> Result<IndexCheck, RepositoryError> {
        let url = check_url(url).map_err(RepositoryError::Invalid)?;
        if let Some(c) = credentials {
            c.check().map_err(RepositoryError::Invalid)?;
        }
        let (versions, digest) = read_index(self.source, &url, credentials).await?;
        let charts = versions.iter().map(|v| &v.name).collect::<BTreeSet<_>>();
        Ok(IndexCheck {
            charts: charts.len(),
            versions: versions.len(),
            digest,
        })
    }

    /// Creates external repository `repo` (validated by [`super::NewRepository`])
    /// after checking its URL with `credentials`; keeps the credentials in the vault
    /// and queues its first index run. Nothing is stored when the check fails.
    pub async fn create(
        &self,
        caller: &Principal,
        mut repo: Repository,
        credentials: Option<Credentials>,
    ) -> Result<(Repository, IndexCheck), RepositoryError> {
        caller.require(Action::Repositories, &repo.path)?;
        let Some(external) = repo.external.clone() else {
            return Err(RepositoryError::Invalid(
                "an external repository needs a url".into(),
            ));
        };
        if self.store.get_repository(&repo.path).await?.is_some() {
            return Err(RepositoryError::Conflict(format!(
                "repository {} already exists",
                repo.path
            )));
        }
        let check = self.validate(&external.url, credentials.as_ref()).await?;
        let reference = match &credentials {
            Some(c) => Some(self.vault.store(&repo.storage, c).await?),
            None => None,
        };
        repo.external = Some(External {
            username: credentials.as_ref().map(|c| c.username.clone()),
            credentials: reference.clone(),
            ..external
        });
        let created = self.store.create_repository(&repo).await;
        if !matches!(created, Ok(true)) {
            // No record refers to the secret: it goes (best effort when the store
            // failed; its name is the repository's random storage id).
            if let Some(r) = &reference
                && let Err(e) = self.vault.forget(r).await
            {
                tracing::warn!(path = %repo.path, error = %e, "credentials of a failed creation kept");
            }
            created?;
            return Err(RepositoryError::Conflict(format!(
                "repository {} already exists",
                repo.path
            )));
        }
        tracing::info!(path = %repo.path, owner = %caller.name, "external repository created");
        if let Err(e) = self.queue.request_index(&repo.path, "created").await {
            tracing::warn!(path = %repo.path, error = %e, "first index run not queued");
        }
        Ok((repo, check))
    }

    /// The external repository at `path` if the caller manages it.
    async fn managed(&self, caller: &Principal, path: &str) -> Result<Repository, RepositoryError> {
        let repo = self
            .store
            .get_repository(path)
            .await?
            .filter(|r| r.format == Format::ExternalHelm && r.visible_to_caller(Some(caller)))
            .ok_or_else(|| RepositoryError::NotFound(format!("no external repository {path}")))?;
        if !repo.managed_by(caller) {
            return Err(RepositoryError::Forbidden(format!(
                "only the owners of {path} ({}) and admins manage it",
                repo.owners.join(", ")
            )));
        }
        caller.require(Action::Repositories, path)?;
        Ok(repo)
    }

    /// Queues an index run of a repository the caller manages.
    pub async fn request_index(
        &self,
        caller: &Principal,
        path: &str,
    ) -> Result<(), RepositoryError> {
        self.managed(caller, path).await?;
        self.queue.request_index(path, "requested").await?;
        Ok(())
    }

    /// Deletes an external repository the caller manages, with its index and
    /// credentials.
    pub async fn delete(&self, caller: &Principal, path: &str) -> Result<(), RepositoryError> {
        let repo = self.managed(caller, path).await?;
        // Its index and credentials first: if those fail the record stays and the
        // deletion can be repeated; nothing is left that no record refers to.
        self.apps
            .forget_index(&index_key(path, &repo.storage))
            .await?;
        if let Some(r) = repo.external.as_ref().and_then(|e| e.credentials.as_ref()) {
            self.vault.forget(r).await?;
        }
        if !self.store.delete_repository(&repo).await? {
            return Err(RepositoryError::Conflict(format!(
                "repository {path} changed meanwhile; try again"
            )));
        }
        tracing::info!(path, by = %caller.name, "external repository deleted");
        Ok(())
    }
}

/// What an index run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// Versions were added (this many) to the apps.
    Indexed(usize),
    /// The index is the one read last time: nothing changed.
    Unchanged,
    /// It could not be read or is no valid index: nothing stored.
    Failed(String),
    /// No external repository at that path (deleted since the run was asked for).
    Skipped,
}

/// The indexer: reads an external repository's index, or one of Cairn's own Helm
/// repositories', into apps and versions.
pub struct Indexer<'a> {
    /// Repository records.
    pub store: &'a dyn RepositoryStore,
    /// The network.
    pub source: &'a dyn IndexSource,
    /// Credentials.
    pub vault: &'a dyn CredentialVault,
    /// Apps and versions.
    pub apps: &'a dyn AppStore,
    /// Cairn's own Helm repositories, if this indexer reads them too.
    pub hosted: Option<Hosted<'a>>,
}

/// Cairn's own Helm repositories: configured ones and created ones, whose
/// `index.yaml` the indexer reads from the repository bucket.
#[derive(Clone, Copy)]
pub struct Hosted<'a> {
    /// The configured repositories.
    pub seed: &'a SupportedRepos,
    /// The repository bucket.
    pub files: &'a dyn RepoStore,
}

/// What a run reads: the repository's index key, and where its index is.
enum Target {
    External {
        key: String,
        storage: String,
        url: String,
        credentials: Option<Credentials>,
    },
    Hosted {
        key: String,
        storage: String,
        object: String,
    },
}

impl Target {
    fn key(&self) -> &str {
        match self {
            Target::External { key, .. } | Target::Hosted { key, .. } => key,
        }
    }
    fn storage(&self) -> &str {
        match self {
            Target::External { storage, .. } | Target::Hosted { storage, .. } => storage,
        }
    }
}

impl Indexer<'_> {
    /// One index run of `path`, at `now` (Unix seconds). Storage failures are
    /// errors (the queue retries the run); everything else is a recorded outcome.
    pub async fn run(&self, path: &str, reason: &str, now: i64) -> Result<RunOutcome, StoreError> {
        let started = std::time::Instant::now();
        let Some(target) = self.target(path).await? else {
            return Ok(RunOutcome::Skipped);
        };
        let key = target.key().to_string();
        let previous = self.apps.index_state(&key).await?.unwrap_or_default();
        // The digest first: an unchanged index is not even parsed.
        let read = match self.fetch(&target).await? {
            Ok((_, digest)) if digest == previous.digest => Ok(None),
            Ok((body, digest)) => parse_index_bytes(&body)
                .map(|versions| Some((versions, digest)))
                .map_err(|e| format!("index.yaml: {e}")),
            Err(e) => Err(e),
        };
        let (outcome, state, detail) = match read {
            Err(e) => (RunOutcome::Failed(e), None, serde_json::json!({})),
            Ok(None) => (
                RunOutcome::Unchanged,
                None,
                serde_json::json!({"digest": previous.digest, "versions": previous.versions}),
            ),
            Ok(Some((versions, digest))) => {
                let (added, state) = self.add(path, &target, versions, digest, now).await?;
                let detail = serde_json::json!({
                    "digest": state.digest, "versions": state.versions,
                    "apps": state.apps, "added": added,
                });
                (RunOutcome::Indexed(added), Some(state), detail)
            }
        };
        let (status, error) = match &outcome {
            RunOutcome::Indexed(_) => ("indexed", None),
            RunOutcome::Unchanged => ("unchanged", None),
            RunOutcome::Failed(e) => ("failed", Some(e.clone())),
            RunOutcome::Skipped => ("skipped", None),
        };
        let mut data = serde_json::json!({
            "repository": path, "status": status, "reason": reason,
            "duration_ms": u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        });
        if let (Some(map), serde_json::Value::Object(more)) = (data.as_object_mut(), detail) {
            map.extend(more);
            if let Some(e) = &error {
                map.insert("error".into(), serde_json::json!(e));
            }
        }
        let event = NewEvent::new("repository.indexed", Subject::named_repository(path), data);
        let run = RunRecord {
            status: status.into(),
            at: now,
            error,
        };
        self.apps
            .finish_run(&key, state.as_ref(), &run, &event)
            .await?;
        tracing::info!(path, status, "index run");
        Ok(outcome)
    }

    /// What a run of `path` reads: an external repository's URL, or a Helm
    /// repository's `index.yaml` in the bucket (under its private prefix if it has
    /// one); `None` for anything else.
    async fn target(&self, path: &str) -> Result<Option<Target>, StoreError> {
        let record = self.store.get_repository(path).await?;
        if let Some(repo) = record.as_ref().filter(|r| r.format == Format::ExternalHelm) {
            let Some(external) = repo.external.as_ref() else {
                return Ok(None);
            };
            let credentials = match &external.credentials {
                Some(reference) => self.vault.read(reference).await?,
                None => None,
            };
            return Ok(Some(Target::External {
                key: index_key(path, &repo.storage),
                storage: repo.storage.clone(),
                url: external.url.clone(),
                credentials,
            }));
        }
        let (Some(hosted), Ok(repo_path)) = (self.hosted, RepoPath::parse(path)) else {
            return Ok(None);
        };
        let (storage, prefix) = match (&record, hosted.seed.check(&repo_path)) {
            (_, Ok(dist)) if dist.format == RepoFormat::Helm => (String::new(), String::new()),
            (Some(r), Err(_)) if r.format == Format::Helm => {
                (r.storage.clone(), r.private_prefix().unwrap_or_default())
            }
            _ => return Ok(None),
        };
        Ok(Some(Target::Hosted {
            key: index_key(path, &storage),
            storage,
            object: format!("{prefix}{}/index.yaml", repo_path.dir()),
        }))
    }

    /// The index's bytes and digest, or why they cannot be read (`Ok(Err)`: a
    /// failed run; `Err`: storage trouble, retried).
    async fn fetch(&self, target: &Target) -> Result<Result<(Bytes, String), String>, StoreError> {
        match target {
            Target::External {
                url, credentials, ..
            } => Ok(fetch_index(self.source, url, credentials.as_ref())
                .await
                .map_err(|e| e.to_string())),
            Target::Hosted { object, .. } => {
                let files = self.hosted.map(|h| h.files);
                match files {
                    Some(files) => Ok(match files.get(object).await? {
                        Some(body) => {
                            let digest = sha256_hex(&body);
                            Ok((body, digest))
                        }
                        None => Err("no index.yaml published yet".to_string()),
                    }),
                    None => Ok(Err("hosted repositories are not indexed here".into())),
                }
            }
        }
    }

    /// Adds the versions not indexed yet and sums up the apps they belong to.
    async fn add(
        &self,
        path: &str,
        target: &Target,
        versions: Vec<ChartVersion>,
        digest: String,
        now: i64,
    ) -> Result<(usize, IndexState), StoreError> {
        let key = target.key();
        let existing = self.apps.indexed_versions(key).await?;
        let known: BTreeSet<(&str, &str)> = existing
            .iter()
            .map(|v| (v.name.as_str(), v.version.as_str()))
            .collect();
        let new: Vec<ChartVersion> = versions
            .into_iter()
            .filter(|v| !known.contains(&(v.name.as_str(), v.version.as_str())))
            .collect();
        self.apps.add_versions(key, &new).await?;
        // The apps of the new versions; with none (the index changed otherwise, or a
        // run that stored versions failed before their apps), every app again.
        let touched: BTreeSet<&str> = if new.is_empty() {
            existing.iter().map(|v| v.name.as_str()).collect()
        } else {
            new.iter().map(|v| v.name.as_str()).collect()
        };
        let mut by_app: BTreeMap<&str, Vec<&ChartVersion>> = BTreeMap::new();
        for v in existing.iter().chain(new.iter()) {
            by_app.entry(v.name.as_str()).or_default().push(v);
        }
        let summaries: Vec<AppSummary> = by_app
            .iter()
            .filter(|(name, _)| touched.contains(*name))
            .filter_map(|(name, versions)| {
                let latest = versions
                    .iter()
                    .max_by(|a, b| compare_versions(&a.version, &b.version))?;
                Some(AppSummary {
                    name: (*name).to_string(),
                    repository: path.to_string(),
                    latest_version: latest.version.clone(),
                    app_version: latest.app_version.clone(),
                    description: latest.description.clone(),
                    versions: versions.len(),
                    updated_at: now,
                    storage: target.storage().to_string(),
                })
            })
            .collect();
        self.apps.put_apps(&summaries).await?;
        let state = IndexState {
            digest,
            indexed_at: now,
            versions: existing.len() + new.len(),
            apps: by_app.len(),
        };
        Ok((new.len(), state))
    }
}

/// The scheduled runs due at `now`: external repositories with an interval whose
/// last run is that old, or that never ran and were created that long ago (creation
/// queues the first run itself: a tick right after it must not queue a second one).
pub async fn due_for_index(
    store: &dyn RepositoryStore,
    apps: &dyn AppStore,
    now: i64,
) -> Result<Vec<String>, StoreError> {
    let mut due = Vec::new();
    for repo in store.list_repositories().await? {
        let Some(external) = repo.external.as_ref() else {
            continue;
        };
        if repo.format != Format::ExternalHelm || external.interval_minutes == 0 {
            continue;
        }
        let last = apps
            .last_run(&index_key(&repo.path, &repo.storage))
            .await?
            .map_or(repo.created_at, |r| r.at);
        if now - last >= i64::from(external.interval_minutes) * 60 {
            due.push(repo.path);
        }
    }
    Ok(due)
}

/// The apps the caller may see (their repository visible and, if private, readable),
/// whose repository's labels `selector` matches and whose name or description
/// contains `q` (any case), by name then repository.
pub async fn list_apps(
    seed: &SupportedRepos,
    store: &dyn RepositoryStore,
    apps: &dyn AppStore,
    caller: Option<&Principal>,
    q: Option<&str>,
    selector: Option<&Selector>,
) -> Result<Vec<AppSummary>, StoreError> {
    let repos: BTreeMap<String, Repository> = store
        .list_repositories()
        .await?
        .into_iter()
        .map(|r| (r.path.clone(), r))
        .collect();
    let q = q.map(str::to_lowercase);
    let mut out: Vec<AppSummary> = apps
        .apps()
        .await?
        .into_iter()
        .filter(|a| app_visible(seed, &repos, a, caller, selector))
        .filter(|a| {
            q.as_deref().is_none_or(|q| {
                a.name.to_lowercase().contains(q) || a.description.to_lowercase().contains(q)
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.name, &a.repository).cmp(&(&b.name, &b.repository)));
    Ok(out)
}

/// The versions of app `app` in the repositories the caller may read, newest first
/// within each repository: `(repository, version)` pairs.
pub async fn app_versions(
    seed: &SupportedRepos,
    store: &dyn RepositoryStore,
    apps: &dyn AppStore,
    caller: Option<&Principal>,
    app: &str,
) -> Result<Vec<(String, ChartVersion)>, StoreError> {
    let mut out = Vec::new();
    for summary in apps.apps().await?.into_iter().filter(|a| a.name == app) {
        let mut repos = BTreeMap::new();
        if let Some(repo) = store.get_repository(&summary.repository).await? {
            repos.insert(repo.path.clone(), repo);
        }
        if !app_visible(seed, &repos, &summary, caller, None) {
            continue;
        }
        let key = index_key(&summary.repository, &summary.storage);
        let mut versions = apps.app_versions(&key, app).await?;
        versions.sort_by(|a, b| compare_versions(&b.version, &a.version));
        out.extend(
            versions
                .into_iter()
                .map(|v| (summary.repository.clone(), v)),
        );
    }
    Ok(out)
}

/// Whether the caller sees app `app`: its repository is the one it was indexed
/// from (same storage id) and readable by the caller (public, or seen with `read`),
/// or configured (public, no labels); and `selector` matches the repository's labels.
fn app_visible(
    seed: &SupportedRepos,
    repos: &BTreeMap<String, Repository>,
    app: &AppSummary,
    caller: Option<&Principal>,
    selector: Option<&Selector>,
) -> bool {
    match repos.get(&app.repository) {
        Some(r) => {
            r.storage == app.storage
                && (r.visibility == Visibility::Public || caller.is_some_and(|c| r.readable_by(c)))
                && selector.is_none_or(|s| s.matches(&r.labels))
        }
        None => {
            app.storage.is_empty()
                && RepoPath::parse(&app.repository).is_ok_and(|p| seed.check(&p).is_ok())
                && selector.is_none_or(|s| s.matches(&Labels::new()))
        }
    }
}
