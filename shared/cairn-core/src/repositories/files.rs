//! The read path of repository files (`GET /v1/files/{key}`): which repository a
//! bucket key belongs to, and whether the caller may read it. Public repositories'
//! files are in the bucket's public part; a private repository's are under its own
//! prefix, which only this check hands out (as a short-lived presigned URL).

use super::{
    Format, Intent, Repository, RepositoryError, RepositoryStore, Visibility, archive_record,
    check_archive,
};
use crate::access::Action;
use crate::auth::Principal;
use crate::error::StoreError;
use crate::events::Event;
use crate::ports::UserDirectory;
use crate::repo::{RepoFormat, RepoPath, SupportedRepos};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Longest key accepted.
pub const MAX_KEY: usize = 1024;

/// Which bucket a file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// The repository bucket: packages and their metadata.
    Packages,
    /// The archive bucket: source archives' git repositories and tarballs.
    Archives,
}

/// What a request for a file gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileAccess {
    /// A public repository's file: at its public URL in that bucket.
    Public(Bucket),
    /// A private repository's file the caller may read: the bucket and the object.
    Private(Bucket, String),
    /// No credentials, and the file is not public: ask for them (401).
    Challenge,
    /// Nothing the caller may see (404).
    NotFound,
}

/// Checks a key's syntax: relative, no empty, `.` or `..` segments, printable ASCII.
pub fn check_key(key: &str) -> Result<(), String> {
    let ok = !key.is_empty()
        && key.len() <= MAX_KEY
        && key.bytes().all(|b| b.is_ascii_graphic())
        && key
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{key:?} is not a file of a repository (relative path, printable ASCII, no empty, \
             '.' or '..' segments, at most {MAX_KEY} bytes)"
        ))
    }
}

/// The repositories a key may belong to: `kind/series/dist/version/…` (YUM, Helm)
/// or an APT suite's `kind/series/dist/{dists,pool}/<suite>/…`, each with the
/// format whose layout it is.
fn candidates(key: &str) -> Vec<(RepoPath, Option<RepoFormat>)> {
    let s: Vec<&str> = key.split('/').collect();
    let mut out = Vec::new();
    if s.len() >= 5
        && let Ok(p) = RepoPath::new(s[0], s[1], s[2], s[3])
    {
        out.push((p, None));
    }
    if s.len() >= 6
        && matches!(s[3], "dists" | "pool")
        && let Ok(p) = RepoPath::new(s[0], s[1], s[2], s[4])
    {
        out.push((p, Some(RepoFormat::Deb)));
    }
    out
}

fn fits(repo: &Repository, apt_layout: Option<RepoFormat>) -> bool {
    match apt_layout {
        Some(_) => repo.format == Format::Deb,
        None => matches!(repo.format, Format::Rpm | Format::Helm),
    }
}

/// The archive name of a key in the archive layout: `git/<name>.git/…`,
/// `trees/<name>/<tag>.git/…`, `tarballs/<name>/<file>`. `None` for a key of the
/// repository bucket.
pub fn archive_of(key: &str) -> Option<&str> {
    let s: Vec<&str> = key.split('/').collect();
    match s.as_slice() {
        ["git", repo, _, ..] => repo.strip_suffix(".git"),
        ["trees", name, _, _, ..] | ["tarballs", name, _] => Some(name),
        _ => None,
    }
}

/// Who may read `key`, a file of the repository bucket as the repositories' layout
/// names it. Configured and public repositories' files are public; a private one's
/// need a caller that sees it (owner, admin, matching selector) holding
/// `read:<path>`. Anonymous callers are asked for credentials rather than told
/// whether a private repository exists.
pub async fn file_access(
    seed: &SupportedRepos,
    store: &dyn RepositoryStore,
    caller: Option<&Principal>,
    key: &str,
) -> Result<FileAccess, RepositoryError> {
    check_key(key).map_err(RepositoryError::Invalid)?;
    if let Some(name) = archive_of(key) {
        return archive_access(store, caller, name, key).await;
    }
    for (path, apt_layout) in candidates(key) {
        if let Ok(dist) = seed.check(&path) {
            if (apt_layout.is_some()) == (dist.format == RepoFormat::Deb) {
                return Ok(FileAccess::Public(Bucket::Packages));
            }
            continue;
        }
        let Some(repo) = store.get_repository(&path.to_string()).await? else {
            continue;
        };
        if !fits(&repo, apt_layout) {
            continue;
        }
        if repo.visibility == Visibility::Public {
            return Ok(FileAccess::Public(Bucket::Packages));
        }
        let Some(caller) = caller else {
            return Ok(FileAccess::Challenge);
        };
        if !repo.visible_to_caller(Some(caller)) {
            return Ok(FileAccess::NotFound);
        }
        caller.require(Action::Read, &repo.path)?;
        let prefix = repo.private_prefix().unwrap_or_default();
        return Ok(FileAccess::Private(
            Bucket::Packages,
            format!("{prefix}{key}"),
        ));
    }
    Ok(match caller {
        None => FileAccess::Challenge,
        Some(_) => FileAccess::NotFound,
    })
}

/// Who may read `key` of archive name `name`: anyone, unless an archive
/// repository record makes the name private (`check_archive`). One read.
async fn archive_access(
    store: &dyn RepositoryStore,
    caller: Option<&Principal>,
    name: &str,
    key: &str,
) -> Result<FileAccess, RepositoryError> {
    let Some(record) = archive_record(store, name)
        .await?
        .filter(|r| r.visibility == Visibility::Private)
    else {
        return Ok(FileAccess::Public(Bucket::Archives));
    };
    let Some(caller) = caller else {
        return Ok(FileAccess::Challenge);
    };
    match check_archive(&record, caller, Intent::Read) {
        Ok(()) => {
            let prefix = record.private_prefix().unwrap_or_default();
            Ok(FileAccess::Private(
                Bucket::Archives,
                format!("{prefix}{key}"),
            ))
        }
        Err(RepositoryError::NotFound(_)) => Ok(FileAccess::NotFound),
        Err(e) => Err(e),
    }
}

/// The repository record an event is guarded by, and whether its absence makes the
/// event public: a package repository's events (`repository:<path>`; no record
/// and no configuration: hidden), an archive name's (`archive:<name>`, and the
/// operations archiving under it; no record: a public name).
fn guard(event: &Event) -> Option<(String, bool)> {
    if let Some(path) = event.subject.strip_prefix("repository:") {
        return Some((path.to_string(), false));
    }
    let name = match event.subject.strip_prefix("archive:") {
        Some(name) => name,
        None if event.subject.starts_with("operation:") => event.data.get("name")?.as_str()?,
        None => return None,
    };
    Some((super::archive_path(name), true))
}

/// The events of `events` the caller may read as far as repositories go: those of
/// configured and public repositories, and of private ones the caller sees with
/// `read` on them. A repository that is neither configured nor created (deleted
/// since) has its events hidden: its visibility is no longer known. Other subjects
/// pass (their own rules apply elsewhere). One read per distinct repository.
pub async fn readable_events(
    seed: &SupportedRepos,
    store: &dyn RepositoryStore,
    caller: Option<&Principal>,
    events: Vec<Event>,
) -> Result<Vec<Event>, StoreError> {
    let mut verdicts: BTreeMap<String, bool> = BTreeMap::new();
    let mut records: BTreeMap<String, Repository> = BTreeMap::new();
    let mut out = Vec::with_capacity(events.len());
    for event in events {
        let Some((path, absent_is_public)) = guard(&event) else {
            out.push(event);
            continue;
        };
        let path = path.as_str();
        let readable = match verdicts.get(path) {
            Some(v) => *v,
            None => {
                let configured = RepoPath::parse(path).is_ok_and(|p| seed.check(&p).is_ok());
                let v = if configured {
                    true
                } else {
                    match store.get_repository(path).await? {
                        // Per event below: its history starts at creation.
                        Some(r) if r.visibility == Visibility::Public => {
                            records.insert(path.to_string(), r);
                            true
                        }
                        Some(r) => {
                            let v = caller.is_some_and(|c| r.readable_by(c));
                            records.insert(path.to_string(), r);
                            v
                        }
                        None => absent_is_public,
                    }
                };
                verdicts.insert(path.to_string(), v);
                v
            }
        };
        if readable && records.get(path).is_none_or(|r| r.history_includes(&event)) {
            out.push(event);
        }
    }
    Ok(out)
}

/// Who may be told of a repository's events when nobody is asking: the owners of
/// webhooks, as their accounts are now (role and selectors). Remembers what it read
/// for as long as it lives (one dispatch run, one replay).
pub struct Audience<'a> {
    seed: &'a SupportedRepos,
    repositories: &'a dyn RepositoryStore,
    users: &'a dyn UserDirectory,
    records: Mutex<BTreeMap<String, Option<Repository>>>,
    accounts: Mutex<BTreeMap<String, Option<Principal>>>,
}

impl<'a> Audience<'a> {
    /// Reads repositories and accounts from these stores.
    pub fn new(
        seed: &'a SupportedRepos,
        repositories: &'a dyn RepositoryStore,
        users: &'a dyn UserDirectory,
    ) -> Self {
        Self {
            seed,
            repositories,
            users,
            records: Mutex::default(),
            accounts: Mutex::default(),
        }
    }

    /// Whether account `owner` may be told of `event`: any event but a private
    /// repository's (or a deleted one's), which needs an account that sees the
    /// repository and whose role reads it, and, for a webhook a token made, that
    /// token's scopes (`bound`) reading it too.
    pub async fn may_read(
        &self,
        owner: &str,
        bound: Option<&crate::access::Scopes>,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let Some((path, absent_is_public)) = guard(event) else {
            return Ok(true);
        };
        let path = path.as_str();
        if RepoPath::parse(path).is_ok_and(|p| self.seed.check(&p).is_ok()) {
            return Ok(true);
        }
        let known = lock(&self.records).get(path).cloned();
        let record = match known {
            Some(record) => record,
            None => {
                let record = self.repositories.get_repository(path).await?;
                lock(&self.records).insert(path.to_string(), record.clone());
                record
            }
        };
        let Some(record) = record else {
            return Ok(absent_is_public);
        };
        if !record.history_includes(event) {
            return Ok(false);
        }
        if record.visibility == Visibility::Public {
            return Ok(true);
        }
        let known = lock(&self.accounts).get(owner).cloned();
        let account = match known {
            Some(account) => account,
            None => {
                let account = self.users.get_user(owner).await?.map(|u| Principal {
                    selectors: u.parsed_selectors(),
                    ..Principal::with_role(&u.name, u.role)
                });
                lock(&self.accounts).insert(owner.to_string(), account.clone());
                account
            }
        };
        Ok(account.is_some_and(|a| {
            record.readable_by(&a) && bound.is_none_or(|b| b.allows(Action::Read, path))
        }))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
