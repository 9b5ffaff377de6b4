//! The repository service: create, show, list (with a selector), update and delete
//! created repositories. Owners (and admins) manage a repository; the
//! `repositories` scope on its path is needed besides. A private repository the
//! caller does not see answers as if it did not exist.
//!
//! Deleting a repository with packages (`force`) marks it `deleting`, marks every
//! package for deletion and queues a publication; the publication leaves them out
//! and removes their files, and [`finish_deletion`] (run by metadata-sync after it)
//! removes the repository's metadata and its record once no package is left.

use super::{
    ARCHIVE_KIND, Format, NewRepository, Repository, RepositoryError, RepositoryState,
    RepositoryStore, Visibility, check_architectures, check_description, check_owners,
};
use crate::access::Action;
use crate::auth::Principal;
use crate::ingest::{IngestError, Ingestor};
use crate::labels::{Labels, Selector, check_labels};
use crate::package::{PackageRecord, PackageStatus};
use crate::ports::{Catalog, PrefixedStore, RepoStore, StoreError, SyncQueue};
use crate::repo::{RepoPath, SupportedRepos};
use serde::Deserialize;

/// How often an update is retried when another one wins the race.
const UPDATE_ATTEMPTS: usize = 3;

impl From<IngestError> for RepositoryError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Store(e) => RepositoryError::Store(e),
            other => RepositoryError::Conflict(other.to_string()),
        }
    }
}

/// A change to a repository (`PATCH`): each field given replaces the current one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryUpdate {
    /// What it is for.
    pub description: Option<String>,
    /// `public` or `private`.
    pub visibility: Option<Visibility>,
    /// Its labels (all of them).
    pub labels: Option<Labels>,
    /// Its owners (all of them; at least one).
    pub owners: Option<Vec<String>>,
    /// Architectures to index.
    pub architectures: Option<Vec<String>>,
}

impl RepositoryUpdate {
    /// Applies the change to `repo`, checking each field as creation does.
    pub fn apply(&self, repo: &mut Repository) -> Result<(), String> {
        if let Some(d) = &self.description {
            check_description(d)?;
            repo.description = d.clone();
        }
        if let Some(v) = self.visibility {
            repo.visibility = v;
        }
        if let Some(labels) = &self.labels {
            check_labels(labels)?;
            repo.labels = labels.clone();
        }
        if let Some(owners) = &self.owners {
            let owners = check_owners(owners.iter().cloned(), Vec::new())?;
            if owners.is_empty() {
                return Err("a repository keeps at least one owner".into());
            }
            repo.owners = owners;
        }
        if let Some(archs) = &self.architectures {
            if repo.format.packages().is_none() {
                return Err(format!(
                    "an {} repository has no architectures",
                    repo.format.as_str()
                ));
            }
            check_architectures(archs)?;
            repo.architectures = archs.clone();
        }
        Ok(())
    }
}

/// What a deletion did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deletion {
    /// The repository had no packages: it is gone.
    Deleted,
    /// Its packages are being removed (this many); the record goes after the
    /// publication that removes them.
    Deleting(usize),
}

/// The repository service.
pub struct Manager<'a> {
    /// Created repositories.
    pub store: &'a dyn RepositoryStore,
    /// Package catalog.
    pub catalog: &'a dyn Catalog,
    /// Repository bucket.
    pub files: &'a dyn RepoStore,
    /// Metadata-sync queue.
    pub queue: &'a dyn SyncQueue,
    /// Configured repositories (the seed list).
    pub seed: &'a SupportedRepos,
}

impl Manager<'_> {
    fn ingestor<'s>(
        &'s self,
        supported: &'s SupportedRepos,
        files: &'s PrefixedStore<'s>,
    ) -> Ingestor<'s> {
        Ingestor {
            catalog: self.catalog,
            store: files,
            queue: self.queue,
            supported,
        }
    }

    /// The configuration with created repository `repo` in it, as ingest and
    /// publish read it.
    fn supported_with(&self, repo: &Repository, path: &RepoPath) -> SupportedRepos {
        self.seed
            .with_created(repo.dist_config().ok().map(|d| (path.clone(), d)))
    }

    fn path(text: &str) -> Result<RepoPath, RepositoryError> {
        RepoPath::parse(text).map_err(|e| RepositoryError::Invalid(e.to_string()))
    }

    /// Creates a repository the caller owns and queues its first (empty)
    /// publication, so clients can read it at once. Returns it and, if it was
    /// queued, the publication's sequence number.
    pub async fn create(
        &self,
        caller: &Principal,
        request: NewRepository,
        now: i64,
    ) -> Result<(Repository, Option<u64>), RepositoryError> {
        let repo = request
            .validate(&caller.name, now)
            .map_err(RepositoryError::Invalid)?;
        caller.require(Action::Repositories, &repo.path)?;
        if let Some(name) = repo.archive_name() {
            return self.create_archive(caller, name, &repo).await;
        }
        if repo.format == Format::ExternalHelm {
            // Checked and kept by `external::Externals`, which holds the network and
            // the vault.
            return Err(RepositoryError::Invalid(
                "external repositories are created by the external repository service".into(),
            ));
        }
        let path = Self::path(&repo.path)?;
        if self.seed.check(&path).is_ok() {
            return Err(RepositoryError::Conflict(format!(
                "{path} is configured by the deployment (SupportedRepos); it needs no creating"
            )));
        }
        if self.seed.anchors.contains_key(&path.series) {
            return Err(RepositoryError::Invalid(format!(
                "series {:?} is an anchor of this deployment (it names several series); \
                 choose another",
                path.series
            )));
        }
        self.check_layout(&repo, &path).await?;
        if !self.store.create_repository(&repo).await? {
            return Err(RepositoryError::Conflict(format!(
                "repository {path} already exists"
            )));
        }
        tracing::info!(path = %path, owner = %caller.name, "repository created");
        let supported = self.supported_with(&repo, &path);
        let files = PrefixedStore::new(self.files, supported.storage_prefix(&path));
        let ingestor = self.ingestor(&supported, &files);
        // Packages an upload stored after an earlier repository at this path was
        // deleted are not the new one's: its first publication removes them.
        let leftovers = self.catalog.list_packages(&path).await?;
        if !leftovers.is_empty() {
            tracing::warn!(path = %path, count = leftovers.len(), "leftover packages removed");
        }
        delete_ready(&ingestor, &path, &leftovers).await?;
        let seq = match ingestor.announce(&path, &[]).await {
            Ok(seq) => Some(seq),
            Err(e) => {
                // The record stands; the first upload publishes it.
                tracing::warn!(path = %path, error = %e, "first publication not queued");
                None
            }
        };
        Ok((repo, seq))
    }

    /// Creates the repository an upload of `filenames` to `path` needs, where the
    /// deployment lets uploads create repositories (`AutoCreateRepositories`):
    /// public, owned by the uploader, in the format of the files. The caller needs
    /// `repositories:<path>` as for any creation. A path that exists meanwhile (a
    /// racing upload created it, or a private repository is there) is no error:
    /// the upload then opens it as it would have. Returns whether it created it.
    pub async fn create_for_upload<'f>(
        &self,
        caller: &Principal,
        path: &RepoPath,
        filenames: impl IntoIterator<Item = &'f str>,
        now: i64,
    ) -> Result<bool, RepositoryError> {
        let format = upload_format(filenames).ok_or_else(|| {
            RepositoryError::Invalid(format!(
                "{path} is no repository yet, and the upload's files do not say which \
                 format to create it in (.deb, .rpm or a chart's .tgz, one kind per upload)"
            ))
        })?;
        let request = NewRepository {
            format: format.as_str().to_string(),
            path: path.to_string(),
            name: None,
            url: None,
            credentials: None,
            interval_minutes: None,
            description: "created by its first upload".into(),
            visibility: Visibility::Public,
            labels: Labels::new(),
            owners: Vec::new(),
            architectures: Vec::new(),
        };
        match self.create(caller, request, now).await {
            Ok(_) => Ok(true),
            Err(RepositoryError::Conflict(_))
                if self
                    .store
                    .get_repository(&path.to_string())
                    .await?
                    .is_some() =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Creates archive repository `name`: a name that holds archives already keeps
    /// them as they are (immutable, and public), so it cannot become a repository.
    async fn create_archive(
        &self,
        caller: &Principal,
        name: &str,
        repo: &Repository,
    ) -> Result<(Repository, Option<u64>), RepositoryError> {
        let in_use = || {
            RepositoryError::Conflict(format!(
                "archive name {name} holds archives already: they are immutable and stay as \
                 they were made; choose another name for a repository"
            ))
        };
        if self.store.archive_in_use(name).await? {
            return Err(in_use());
        }
        // The record claims the name; a public archive operation that wrote its first
        // item before the claim shows in the second check, one after it is refused.
        if !self.store.create_repository(repo).await? {
            return Err(RepositoryError::Conflict(format!(
                "repository {} already exists",
                repo.path
            )));
        }
        if self.store.archive_in_use(name).await? {
            if !self.store.delete_repository(repo).await? {
                tracing::error!(
                    name,
                    "could not release the claim of an archive name in use"
                );
            }
            return Err(in_use());
        }
        tracing::info!(name, owner = %caller.name, "archive repository created");
        Ok((repo.clone(), None))
    }

    /// Refuses a repository whose files would mix with others': APT suites keep
    /// `dists/` and `pool/` in their `kind/series/dist` folder, YUM and Helm
    /// repositories a folder per version in it, so one folder holds one layout;
    /// `private/` is where private repositories' files are.
    async fn check_layout(
        &self,
        repo: &Repository,
        path: &RepoPath,
    ) -> Result<(), RepositoryError> {
        if matches!(path.dist_ver.as_str(), "dists" | "pool") {
            return Err(RepositoryError::Invalid(format!(
                "{path}: a repository's last segment cannot be {:?} (APT's folders)",
                path.dist_ver
            )));
        }
        if RESERVED_KINDS.contains(&path.kind.as_str()) {
            return Err(RepositoryError::Invalid(format!(
                "a repository's first segment cannot be {:?}: private/ keeps private \
                 repositories' files, git/, trees/ and tarballs/ source archives', and \
                 archive/ names archive repositories",
                path.kind
            )));
        }
        let apt = |f: Format| f == Format::Deb;
        let root = path.root();
        let configured = self.seed.kinds.contains(&path.kind)
            && self.seed.series.contains(&path.series)
            && self
                .seed
                .dists
                .get(&path.dist)
                .is_some_and(|d| apt(d.format.into()) != apt(repo.format));
        let existing = self.store.list_repositories().await?;
        if existing.iter().any(|r| r.path == repo.path) {
            return Err(RepositoryError::Conflict(format!(
                "repository {path} already exists"
            )));
        }
        let created = existing.into_iter().find(|r| {
            r.format != Format::Archive
                && RepoPath::parse(&r.path).is_ok_and(|p| p.root() == root)
                && apt(r.format) != apt(repo.format)
        });
        if configured || created.is_some() {
            return Err(RepositoryError::Conflict(format!(
                "{root} holds {} repositories; a {} repository cannot share its folder",
                if apt(repo.format) {
                    "YUM or Helm"
                } else {
                    "APT"
                },
                if apt(repo.format) {
                    "APT"
                } else {
                    "YUM or Helm"
                },
            )));
        }
        Ok(())
    }

    /// A repository the caller sees: created, or configured.
    pub async fn get(
        &self,
        caller: Option<&Principal>,
        path: &str,
    ) -> Result<Listed, RepositoryError> {
        let path = path.trim_matches('/');
        let key = match named(path) {
            Some(_) => path.to_string(),
            None => {
                let parsed = Self::path(path)?;
                if self.seed.check(&parsed).is_ok() {
                    return Ok(Listed::configured(self.seed, &parsed));
                }
                parsed.to_string()
            }
        };
        self.store
            .get_repository(&key)
            .await?
            .filter(|r| shown_to(r, caller))
            .map(Listed::created)
            .ok_or_else(|| RepositoryError::NotFound(format!("no repository {key}")))
    }

    /// The repositories the caller sees whose labels `selector` matches, by path:
    /// created ones (one query), then configured ones.
    pub async fn list(
        &self,
        caller: Option<&Principal>,
        selector: Option<&Selector>,
    ) -> Result<Vec<Listed>, RepositoryError> {
        let matches = |labels: &Labels| selector.is_none_or(|s| s.matches(labels));
        let mut out: Vec<Listed> = self
            .store
            .list_repositories()
            .await?
            .into_iter()
            .filter(|r| shown_to(r, caller) && matches(&r.labels))
            .map(Listed::created)
            .collect();
        if matches(&Labels::new()) {
            out.extend(
                configured_paths(self.seed)
                    .iter()
                    .map(|p| Listed::configured(self.seed, p)),
            );
        }
        out.sort_by(|a, b| a.repository.path.cmp(&b.repository.path));
        Ok(out)
    }

    /// A created repository the caller may manage.
    async fn managed(&self, caller: &Principal, path: &str) -> Result<Repository, RepositoryError> {
        if named(path).is_none() && self.seed.check(&Self::path(path)?).is_ok() {
            return Err(RepositoryError::Conflict(format!(
                "{path} is configured by the deployment (SupportedRepos): change it there"
            )));
        }
        let repo = self
            .store
            .get_repository(path)
            .await?
            .filter(|r| r.visible_to_caller(Some(caller)))
            .ok_or_else(|| RepositoryError::NotFound(format!("no repository {path}")))?;
        if !repo.managed_by(caller) {
            return Err(RepositoryError::Forbidden(format!(
                "only the owners of {path} ({}) and admins manage it",
                repo.owners.join(", ")
            )));
        }
        caller.require(Action::Repositories, &repo.path)?;
        Ok(repo)
    }

    /// Changes a repository the caller manages.
    pub async fn update(
        &self,
        caller: &Principal,
        path: &str,
        change: &RepositoryUpdate,
    ) -> Result<Repository, RepositoryError> {
        let path = path.trim_matches('/');
        for _ in 0..UPDATE_ATTEMPTS {
            let mut repo = self.managed(caller, path).await?;
            if repo.state == RepositoryState::Deleting {
                return Err(RepositoryError::Conflict(format!(
                    "repository {path} is being deleted"
                )));
            }
            let before = repo.clone();
            change.apply(&mut repo).map_err(RepositoryError::Invalid)?;
            let moves = before.visibility != repo.visibility;
            if moves && repo.format == Format::Archive {
                // An archive operation already running writes where the name's files
                // were when it started: moving them under it would split the name.
                return Err(RepositoryError::Conflict(format!(
                    "{path}: an archive repository keeps the visibility it was created \
                     with; claim another name for {} archives",
                    match repo.visibility {
                        Visibility::Public => "public",
                        Visibility::Private => "private",
                    }
                )));
            }
            if moves && !self.is_empty(&repo).await? {
                return Err(RepositoryError::Conflict(format!(
                    "{path} has {}: its visibility changes only while it is empty \
                     (a private repository's files are kept apart from public ones)",
                    if repo.format == Format::Archive {
                        "archives"
                    } else {
                        "packages"
                    }
                )));
            }
            if moves {
                repo.visibility_since = time::OffsetDateTime::now_utc().unix_timestamp();
            }
            repo.version += 1;
            if self.store.replace_repository(&repo).await? {
                tracing::info!(path = %path, by = %caller.name, "repository updated");
                if moves && let Ok(path) = repo.repo_path() {
                    self.republish_elsewhere(&before, &repo, &path).await?;
                }
                return Ok(repo);
            }
        }
        Err(RepositoryError::Conflict(format!(
            "repository {path} kept changing; try again"
        )))
    }

    /// After a change of visibility (of an empty repository): removes the
    /// metadata from where it was and publishes it where it now belongs.
    async fn republish_elsewhere(
        &self,
        before: &Repository,
        after: &Repository,
        path: &RepoPath,
    ) -> Result<(), RepositoryError> {
        let old = PrefixedStore::new(self.files, before.private_prefix().unwrap_or_default());
        for (key, _) in old.list(&metadata_prefix(after, path)).await? {
            old.delete(&key).await?;
        }
        let supported = self.supported_with(after, path);
        let files = PrefixedStore::new(self.files, supported.storage_prefix(path));
        self.ingestor(&supported, &files)
            .announce(path, &[])
            .await?;
        Ok(())
    }

    /// Deletes a repository the caller manages. One with packages needs `force`:
    /// its packages and their files go with it. Repeating a deletion is safe (and
    /// picks up a package uploaded while the first one ran).
    pub async fn delete(
        &self,
        caller: &Principal,
        path: &str,
        force: bool,
    ) -> Result<Deletion, RepositoryError> {
        let path = path.trim_matches('/');
        let mut repo = self.managed(caller, path).await?;
        if repo.format == Format::ExternalHelm {
            return Err(RepositoryError::Invalid(
                "external repositories are deleted by the external repository service".into(),
            ));
        }
        if let Some(name) = repo.archive_name() {
            // Closed first, so no operation writes between the check and the release.
            if !self.store.close_archive(&repo, true).await? {
                return Err(RepositoryError::Conflict(format!(
                    "repository {path} changed meanwhile; try again"
                )));
            }
            if !self.is_empty(&repo).await? {
                self.store.close_archive(&repo, false).await?;
                return Err(RepositoryError::Conflict(format!(
                    "archive repository {name} holds archives: archives are immutable, so \
                     it stays (force does not apply)"
                )));
            }
            if !self.store.delete_repository(&repo).await? {
                self.store.close_archive(&repo, false).await?;
                return Err(RepositoryError::Conflict(format!(
                    "repository {path} changed meanwhile; try again"
                )));
            }
            tracing::info!(name, by = %caller.name, "archive repository deleted");
            return Ok(Deletion::Deleted);
        }
        let path = Self::path(path)?;
        let packages = self.catalog.list_packages(&path).await?;
        let live: Vec<_> = packages
            .iter()
            .filter(|p| p.status != PackageStatus::Deleting)
            .collect();
        if !live.is_empty() && !force {
            return Err(RepositoryError::Conflict(format!(
                "repository {path} has {} package(s); delete it with force (?force=true, \
                 cairn repo delete --force) to delete them and their files too",
                live.len()
            )));
        }
        if repo.state == RepositoryState::Active {
            repo.state = RepositoryState::Deleting;
            repo.version += 1;
            if !self.store.replace_repository(&repo).await? {
                return Err(RepositoryError::Conflict(format!(
                    "repository {path} changed meanwhile; try again"
                )));
            }
        }
        tracing::info!(path = %path, by = %caller.name, packages = live.len(), "repository deleting");
        if packages.is_empty() {
            finish_deletion(self.store, self.catalog, self.files, &path).await?;
            return Ok(Deletion::Deleted);
        }
        let supported = self.supported_with(&repo, &path);
        let files = PrefixedStore::new(self.files, supported.storage_prefix(&path));
        let ingestor = self.ingestor(&supported, &files);
        delete_ready(&ingestor, &path, &live).await?;
        // The publication that removes them, and then the repository.
        ingestor.announce(&path, &[]).await?;
        Ok(Deletion::Deleting(live.len()))
    }
}

impl Manager<'_> {
    /// Whether a repository holds nothing: no packages, or no archives.
    async fn is_empty(&self, repo: &Repository) -> Result<bool, RepositoryError> {
        if repo.format == Format::ExternalHelm {
            return Ok(true); // Its files are elsewhere; its index is readable either way.
        }
        Ok(match repo.archive_name() {
            Some(name) => !self.store.archive_in_use(name).await?,
            None => {
                let path = Self::path(&repo.path)?;
                self.catalog.list_packages(&path).await?.is_empty()
            }
        })
    }
}

/// The package format of an upload's files: `.deb`/`.udeb`/`.dsc` (and a source
/// package's tarballs) APT, `.rpm` YUM, a chart's `.tgz` (and `.prov`) Helm; `None`
/// for none of them, or a mix.
pub fn upload_format<'f>(filenames: impl IntoIterator<Item = &'f str>) -> Option<Format> {
    let mut found = None;
    for name in filenames {
        let format = if name.ends_with(".deb") || name.ends_with(".udeb") || name.ends_with(".dsc")
        {
            Format::Deb
        } else if name.ends_with(".rpm") {
            Format::Rpm
        } else if name.ends_with(".tgz") {
            Format::Helm
        } else {
            continue; // A companion (.prov, .orig.tar.gz, .diff.gz): its package decides.
        };
        if found.is_some_and(|f| f != format) {
            return None;
        }
        found = Some(format);
    }
    found
}

/// First segments no created package repository takes: where private files and
/// source archives are (`/v1/files/<key>` tells them apart by it), and `archive`
/// (`/v1/repositories/archive/{name}` is an archive repository's).
pub const RESERVED_KINDS: [&str; 6] =
    ["private", "git", "trees", "tarballs", "archive", "external"];

/// The name in a record path of a named repository: `archive/<name>`,
/// `external/<name>`.
fn named(path: &str) -> Option<&str> {
    let (kind, name) = path.split_once('/')?;
    (matches!(kind, ARCHIVE_KIND | super::external::EXTERNAL_KIND) && !name.contains('/'))
        .then_some(name)
}

/// Marks the ready packages among `packages` for deletion; one already going, or
/// gone, is no error.
async fn delete_ready<P: std::borrow::Borrow<PackageRecord>>(
    ingestor: &Ingestor<'_>,
    path: &RepoPath,
    packages: &[P],
) -> Result<(), RepositoryError> {
    for p in packages.iter().map(P::borrow) {
        if p.status != PackageStatus::Ready {
            continue;
        }
        match ingestor.delete(path, &p.filename).await {
            Ok(_) | Err(IngestError::NotFound { .. }) | Err(IngestError::NotReady { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Ends the deletion of a repository marked `deleting` once it has no packages
/// left: removes its published metadata and its record. Returns whether it did;
/// anything else (an active repository, packages still there) is left alone.
pub async fn finish_deletion(
    store: &dyn RepositoryStore,
    catalog: &dyn Catalog,
    files: &dyn RepoStore,
    path: &RepoPath,
) -> Result<bool, StoreError> {
    let Some(repo) = store.get_repository(&path.to_string()).await? else {
        return Ok(false);
    };
    if repo.state != RepositoryState::Deleting || !catalog.list_packages(path).await?.is_empty() {
        return Ok(false);
    }
    let files = PrefixedStore::new(files, repo.private_prefix().unwrap_or_default());
    for (key, _) in files.list(&metadata_prefix(&repo, path)).await? {
        files.delete(&key).await?;
    }
    let removed = store.delete_repository(&repo).await?;
    if removed {
        tracing::info!(path = %path, "repository deleted");
    }
    Ok(removed)
}

/// Whether the caller is shown a repository's record: a public one to anyone; a
/// private one to those who see it with a credential that may read or manage it.
fn shown_to(repo: &Repository, caller: Option<&Principal>) -> bool {
    repo.visibility == Visibility::Public
        || caller.is_some_and(|c| {
            repo.visible_to_caller(Some(c))
                && (c.scopes.allows(Action::Read, &repo.path)
                    || c.scopes.allows(Action::Repositories, &repo.path))
        })
}

/// The keys of a repository's published metadata: an APT suite's `dists/<suite>/`
/// (its pool is emptied by the publication that removes its packages), a YUM or
/// Helm repository's folder.
fn metadata_prefix(repo: &Repository, path: &RepoPath) -> String {
    match repo.format {
        Format::Deb => format!("{}/dists/{}/", path.root(), path.suite()),
        Format::Rpm | Format::Helm | Format::Archive | Format::ExternalHelm => {
            format!("{}/", path.dir())
        }
    }
}

/// The configured repositories: every kind, series and distribution version.
fn configured_paths(seed: &SupportedRepos) -> Vec<RepoPath> {
    let mut out = Vec::new();
    for kind in &seed.kinds {
        for series in &seed.series {
            for (dist, config) in &seed.dists {
                for ver in &config.versions {
                    if let Ok(p) = RepoPath::new(kind, series, dist, ver) {
                        out.push(p);
                    }
                }
            }
        }
    }
    out
}

/// A repository as listed: a created one, or one the deployment configures (public,
/// no owners or labels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The repository.
    pub repository: Repository,
    /// Whether it comes from configuration rather than the API.
    pub configured: bool,
}

impl Listed {
    fn created(repository: Repository) -> Self {
        Listed {
            repository,
            configured: false,
        }
    }

    fn configured(seed: &SupportedRepos, path: &RepoPath) -> Self {
        let dist = seed.check(path).ok();
        Listed {
            repository: Repository {
                path: path.to_string(),
                format: dist.map_or(Format::Deb, |d| d.format.into()),
                architectures: dist.map(|d| d.architectures.clone()).unwrap_or_default(),
                metadata_compression: dist.map(|d| d.metadata_compression).unwrap_or_default(),
                description: "configured by the deployment".into(),
                visibility: Visibility::Public,
                labels: Labels::new(),
                owners: Vec::new(),
                created_at: 0,
                version: 0,
                state: RepositoryState::Active,
                storage: String::new(),
                visibility_since: 0,
                external: None,
            },
            configured: true,
        }
    }
}
