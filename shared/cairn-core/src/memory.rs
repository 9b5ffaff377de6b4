//! In-memory implementations of the ports, for unit tests and benchmarks of the
//! domain without AWS.

use crate::auth::UserRecord;
use crate::events::{Event, EventLog, NewEvent, Subject};
use crate::package::{PackageRecord, PackageStatus, PoolFile};
use crate::ports::{
    Catalog, ChangeRecord, FileClaim, FileRecord, Release, RepoState, RepoStore, StoreError,
    Superseded, SyncQueue, UploadLedger, UploadStatus, UploadTicket, UploadUrls, UserDirectory,
};
use crate::repo::RepoPath;
use crate::repositories::{Repository, RepositoryStore};
use crate::tokens::{TokenRecord, TokenStore};
use crate::webhooks::{AttemptRecord, Delivery, DeliveryLog, DeliveryQueue, Webhook, WebhookStore};
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Mutex;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().expect("a test fake's lock is never poisoned")
}

/// Objects by key, plus a staging area.
#[derive(Default)]
pub struct MemoryStore {
    /// Repository bucket objects.
    pub objects: Mutex<BTreeMap<String, Bytes>>,
    /// Staging bucket objects.
    pub staging: Mutex<BTreeMap<String, Bytes>>,
    /// Every key written, in order.
    pub writes: Mutex<Vec<String>>,
}

impl MemoryStore {
    /// An object's body.
    pub fn object(&self, key: &str) -> Option<Bytes> {
        lock(&self.objects).get(key).cloned()
    }

    /// The entity tag the fake gives a staged body: its SHA-256.
    pub fn etag(body: &[u8]) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(body))
    }
}

#[async_trait]
impl UploadUrls for MemoryStore {
    async fn staging_put_url(
        &self,
        key: &str,
        ttl: std::time::Duration,
    ) -> Result<String, StoreError> {
        Ok(format!("memory://staging/{key}?expires={}", ttl.as_secs()))
    }
}

#[async_trait]
impl crate::ports::ReadUrls for MemoryStore {
    async fn read_url(
        &self,
        key: &str,
        head: bool,
        ttl: std::time::Duration,
    ) -> Result<String, StoreError> {
        let method = if head { "&method=HEAD" } else { "" };
        Ok(format!(
            "memory://repo/{key}?expires={}{method}",
            ttl.as_secs()
        ))
    }
}

#[async_trait]
impl RepoStore for MemoryStore {
    async fn put(&self, key: &str, body: Bytes, _content_type: &str) -> Result<(), StoreError> {
        lock(&self.objects).insert(key.to_string(), body);
        lock(&self.writes).push(key.to_string());
        Ok(())
    }

    async fn put_new(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<bool, StoreError> {
        if lock(&self.objects).contains_key(key) {
            return Ok(false);
        }
        self.put(key, body, content_type).await?;
        Ok(true)
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        Ok(self.object(key))
    }

    async fn copy_from_staging(
        &self,
        staging_key: &str,
        etag: &str,
        key: &str,
    ) -> Result<(), StoreError> {
        let body = lock(&self.staging)
            .get(staging_key)
            .cloned()
            .ok_or_else(|| StoreError::new("copy", format!("no staged object {staging_key}")))?;
        if Self::etag(&body) != etag {
            return Err(StoreError::new(
                "copy",
                format!("{staging_key} changed since it was inspected"),
            ));
        }
        self.put(key, body, "").await
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), StoreError> {
        let body = self
            .object(from)
            .ok_or_else(|| StoreError::new("copy", format!("no object {from}")))?;
        self.put(to, body, "").await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(lock(&self.objects)
            .keys()
            .filter(|k| k.starts_with(prefix))
            .map(|k| (k.clone(), 0))
            .collect())
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        lock(&self.objects).remove(key);
        lock(&self.writes).push(format!("DELETE {key}"));
        Ok(())
    }
}

/// Catalog, users, tickets and queue in maps.
#[derive(Default)]
pub struct MemoryCatalog {
    packages: Mutex<BTreeMap<(String, String), PackageRecord>>,
    states: Mutex<BTreeMap<String, RepoState>>,
    changes: Mutex<BTreeMap<(String, u64), ChangeRecord>>,
    users: Mutex<BTreeMap<String, UserRecord>>,
    tokens: Mutex<BTreeMap<String, TokenRecord>>,
    repositories: Mutex<BTreeMap<String, Repository>>,
    /// Archive names that hold archives (the archive catalog is another crate's).
    archives_in_use: Mutex<std::collections::BTreeSet<String>>,
    /// Archive names whose next claim or closing an archive writer follows at once.
    racing_writers: Mutex<std::collections::BTreeSet<String>>,
    /// Archive names closed to writers (being deleted).
    closed_archives: Mutex<std::collections::BTreeSet<String>>,
    tickets: Mutex<BTreeMap<String, UploadTicket>>,
    ticket_tokens: Mutex<BTreeMap<String, String>>,
    files: Mutex<BTreeMap<(String, String), FileRecord>>,
    superseded: Mutex<BTreeMap<(String, String), i64>>,
    /// Sync requests sent, in order.
    pub sync_requests: Mutex<Vec<(RepoPath, u64)>>,
    /// The event log, in order.
    pub events: Mutex<Vec<Event>>,
    webhooks: Mutex<BTreeMap<String, Webhook>>,
    failing: Mutex<BTreeMap<String, i64>>,
    /// Delivery attempts recorded, in order.
    pub attempts: Mutex<Vec<AttemptRecord>>,
    cursor: Mutex<Option<u64>>,
    /// Deliveries queued, with their delay.
    pub queued: Mutex<Vec<(Delivery, u32)>>,
    projects: Mutex<BTreeMap<String, crate::builds::Project>>,
    builds: Mutex<BTreeMap<String, crate::builds::Build>>,
    slots: Mutex<BTreeMap<String, crate::builds::Slots>>,
    /// The worker queue: (queued at, job id) -> job.
    jobs: Mutex<BTreeMap<(i64, String), crate::builds::Job>>,
    logs: Mutex<BTreeMap<(String, usize, u64), Bytes>>,
    artifacts: Mutex<BTreeMap<(String, String), crate::builds::Artifact>>,
    /// Blobs of the artifact store: (project, sha256) -> bytes.
    pub blobs: Mutex<BTreeMap<(String, String), Bytes>>,
    /// Builds whose build-step Lambda jobs were asked to be dispatched, in order.
    pub dispatched: Mutex<Vec<String>>,
    /// (subject, project) pairs of event triggers.
    listeners: Mutex<BTreeMap<(String, String), u64>>,
    /// Schedule entries: (at, project, cron).
    schedules: Mutex<BTreeMap<(i64, String, String), u64>>,
    /// Events the webhook dispatcher handed to the build controller, in order.
    pub handed_over: Mutex<Vec<Event>>,
    /// Builds the controller was asked to look at later, in order.
    pub scheduled: Mutex<Vec<String>>,
}

impl MemoryCatalog {
    /// Issues a token for `owner` with `scopes` and returns its text (tests).
    pub fn issue_token_for_test(&self, owner: &str, scopes: &[&str], lifetime_secs: i64) -> String {
        let scopes =
            crate::access::Scopes::parse(&scopes.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .expect("valid scopes");
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let (mut record, token) = crate::tokens::TokenRequest {
            owner: owner.into(),
            description: "test".into(),
            scopes,
            lifetime_secs: 3600,
            not_after: None,
        }
        .issue(now)
        .expect("issued");
        // Any lifetime, an expired one too.
        record.expires_at = now + lifetime_secs;
        lock(&self.tokens).insert(record.id.clone(), record);
        token
    }

    /// Appends `event` to the log without a change (tests of readers).
    pub fn append_for_test(&self, event: &NewEvent) {
        self.commit_event(event);
    }

    /// Appends `event` to the log (called while the change's lock is held, so the
    /// change and its event are one step).
    fn commit_event(&self, event: &NewEvent) {
        let mut events = lock(&self.events);
        let seq = events.len() as u64 + 1;
        events.push(Event::committed(event, seq));
    }
}

#[async_trait]
impl WebhookStore for MemoryCatalog {
    async fn create_webhook(&self, hook: &Webhook) -> Result<bool, StoreError> {
        let mut hooks = lock(&self.webhooks);
        if hooks.contains_key(&hook.id) {
            return Ok(false);
        }
        hooks.insert(hook.id.clone(), hook.clone());
        Ok(true)
    }

    async fn get_webhook(&self, id: &str) -> Result<Option<Webhook>, StoreError> {
        Ok(lock(&self.webhooks).get(id).cloned())
    }

    async fn list_webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        Ok(lock(&self.webhooks).values().cloned().collect())
    }

    async fn replace_webhook(&self, hook: &Webhook) -> Result<bool, StoreError> {
        let mut hooks = lock(&self.webhooks);
        match hooks.get(&hook.id) {
            Some(h) if h.version + 1 == hook.version => {
                hooks.insert(hook.id.clone(), hook.clone());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_webhook(&self, id: &str) -> Result<(), StoreError> {
        lock(&self.webhooks).remove(id);
        Ok(())
    }

    async fn note_failure(&self, id: &str, now: i64) -> Result<i64, StoreError> {
        Ok(*lock(&self.failing).entry(id.to_string()).or_insert(now))
    }

    async fn note_success(&self, id: &str) -> Result<(), StoreError> {
        lock(&self.failing).remove(id);
        Ok(())
    }

    async fn commit_webhook_event(&self, id: &str, event: &NewEvent) -> Result<bool, StoreError> {
        let hooks = lock(&self.webhooks);
        if !hooks.contains_key(id) {
            return Ok(false);
        }
        self.commit_event(event);
        Ok(true)
    }

    async fn disable_webhook(&self, hook: &Webhook, event: &NewEvent) -> Result<bool, StoreError> {
        let mut hooks = lock(&self.webhooks);
        match hooks.get(&hook.id) {
            Some(h) if h.version + 1 == hook.version => {
                hooks.insert(hook.id.clone(), hook.clone());
                self.commit_event(event);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[async_trait]
impl DeliveryQueue for MemoryCatalog {
    async fn enqueue(&self, deliveries: &[Delivery], delay_secs: u32) -> Result<(), StoreError> {
        lock(&self.queued).extend(deliveries.iter().map(|d| (d.clone(), delay_secs)));
        Ok(())
    }
}

#[async_trait]
impl DeliveryLog for MemoryCatalog {
    async fn record_attempt(&self, record: &AttemptRecord) -> Result<(), StoreError> {
        lock(&self.attempts).push(record.clone());
        Ok(())
    }

    async fn attempts(
        &self,
        hook: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        let mut found: Vec<AttemptRecord> = lock(&self.attempts)
            .iter()
            .filter(|a| a.hook == hook && before.is_none_or(|b| a.seq < b))
            .cloned()
            .collect();
        found.sort_by_key(|a| std::cmp::Reverse((a.seq, a.attempt)));
        found.truncate(limit);
        Ok(found)
    }

    async fn dispatch_cursor(&self) -> Result<Option<u64>, StoreError> {
        Ok(*lock(&self.cursor))
    }

    async fn advance_cursor(&self, from: Option<u64>, to: u64) -> Result<bool, StoreError> {
        let mut cursor = lock(&self.cursor);
        if *cursor != from {
            return Ok(false);
        }
        *cursor = Some(to);
        Ok(true)
    }
}

#[async_trait]
impl EventLog for MemoryCatalog {
    async fn events_after(
        &self,
        subject: Option<&Subject>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        Ok(lock(&self.events)
            .iter()
            .filter(|e| e.seq > after && subject.is_none_or(|s| s.as_str() == e.subject))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn events_latest(
        &self,
        subject: Option<&Subject>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let events = lock(&self.events);
        let mut latest: Vec<Event> = events
            .iter()
            .rev()
            .filter(|e| subject.is_none_or(|s| s.as_str() == e.subject))
            .take(limit)
            .cloned()
            .collect();
        latest.reverse();
        Ok(latest)
    }

    async fn head(&self) -> Result<u64, StoreError> {
        Ok(lock(&self.events).len() as u64)
    }
}

#[async_trait]
impl Catalog for MemoryCatalog {
    async fn get_package(
        &self,
        repo: &RepoPath,
        filename: &str,
    ) -> Result<Option<PackageRecord>, StoreError> {
        Ok(lock(&self.packages)
            .get(&(repo.to_string(), filename.to_string()))
            .cloned())
    }

    async fn claim_package(&self, record: &PackageRecord) -> Result<bool, StoreError> {
        let mut packages = lock(&self.packages);
        let key = (record.repo.to_string(), record.filename.clone());
        if packages.contains_key(&key) {
            return Ok(false);
        }
        packages.insert(key, record.clone());
        Ok(true)
    }

    async fn mark_ready(
        &self,
        repo: &RepoPath,
        filename: &str,
        event: &NewEvent,
    ) -> Result<(), StoreError> {
        match lock(&self.packages).get_mut(&(repo.to_string(), filename.to_string())) {
            Some(r) => {
                r.status = PackageStatus::Ready;
                self.commit_event(event);
                Ok(())
            }
            None => Err(StoreError::new("mark_ready", "no such record")),
        }
    }

    async fn drop_claim(
        &self,
        repo: &RepoPath,
        filename: &str,
        sha256: &str,
    ) -> Result<(), StoreError> {
        let mut packages = lock(&self.packages);
        let key = (repo.to_string(), filename.to_string());
        if packages
            .get(&key)
            .is_some_and(|r| r.sha256 == sha256 && r.status == PackageStatus::Pending)
        {
            packages.remove(&key);
        }
        Ok(())
    }

    async fn mark_deleting(
        &self,
        repo: &RepoPath,
        filename: &str,
        event: &NewEvent,
    ) -> Result<bool, StoreError> {
        match lock(&self.packages).get_mut(&(repo.to_string(), filename.to_string())) {
            Some(r) if r.status == PackageStatus::Ready => {
                r.status = PackageStatus::Deleting;
                self.commit_event(event);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_package(&self, repo: &RepoPath, filename: &str) -> Result<(), StoreError> {
        let mut packages = lock(&self.packages);
        let key = (repo.to_string(), filename.to_string());
        if packages
            .get(&key)
            .is_some_and(|r| r.status == PackageStatus::Deleting)
        {
            packages.remove(&key);
        }
        Ok(())
    }

    async fn list_packages(&self, repo: &RepoPath) -> Result<Vec<PackageRecord>, StoreError> {
        let id = repo.to_string();
        Ok(lock(&self.packages)
            .iter()
            .filter(|((r, _), _)| *r == id)
            .map(|(_, p)| p.clone())
            .collect())
    }

    async fn get_packages(
        &self,
        repo: &RepoPath,
        filenames: &[String],
    ) -> Result<Vec<PackageRecord>, StoreError> {
        let packages = lock(&self.packages);
        Ok(filenames
            .iter()
            .filter_map(|f| packages.get(&(repo.to_string(), f.clone())).cloned())
            .collect())
    }

    async fn note_change(&self, repo: &RepoPath, files: &[String]) -> Result<u64, StoreError> {
        let mut states = lock(&self.states);
        let s = states.entry(repo.to_string()).or_default();
        s.change_seq += 1;
        lock(&self.changes).insert(
            (repo.to_string(), s.change_seq),
            ChangeRecord {
                seq: s.change_seq,
                files: files.to_vec(),
            },
        );
        Ok(s.change_seq)
    }

    async fn changes(
        &self,
        repo: &RepoPath,
        after: u64,
        upto: u64,
    ) -> Result<Vec<ChangeRecord>, StoreError> {
        let id = repo.to_string();
        Ok(lock(&self.changes)
            .range((id.clone(), after + 1)..=(id, upto))
            .map(|(_, c)| c.clone())
            .collect())
    }

    async fn repo_state(&self, repo: &RepoPath) -> Result<RepoState, StoreError> {
        Ok(lock(&self.states)
            .get(&repo.to_string())
            .cloned()
            .unwrap_or_default())
    }

    async fn record_publish(
        &self,
        repo: &RepoPath,
        state: &RepoState,
        event: &NewEvent,
    ) -> Result<bool, StoreError> {
        let mut states = lock(&self.states);
        let s = states.entry(repo.to_string()).or_default();
        if s.release_sha256.is_some() && s.published_seq >= state.published_seq {
            return Ok(false);
        }
        s.published_seq = state.published_seq;
        s.publish_count += 1;
        s.release_sha256 = state.release_sha256.clone();
        s.published_at = state.published_at;
        s.referenced = state.referenced.clone();
        if state.swept_at.is_some() {
            s.swept_at = state.swept_at;
        }
        self.commit_event(event);
        Ok(true)
    }

    async fn note_superseded(
        &self,
        repo: &RepoPath,
        keys: &[String],
        at: i64,
    ) -> Result<(), StoreError> {
        let mut superseded = lock(&self.superseded);
        for key in keys {
            superseded.insert((repo.to_string(), key.clone()), at);
        }
        Ok(())
    }

    async fn forget_superseded(&self, repo: &RepoPath, keys: &[String]) -> Result<(), StoreError> {
        let mut superseded = lock(&self.superseded);
        for key in keys {
            superseded.remove(&(repo.to_string(), key.clone()));
        }
        Ok(())
    }

    async fn superseded(
        &self,
        repo: &RepoPath,
        before: i64,
    ) -> Result<Vec<Superseded>, StoreError> {
        let repo = repo.to_string();
        Ok(lock(&self.superseded)
            .iter()
            .filter(|((r, _), at)| *r == repo && **at < before)
            .map(|((_, key), at)| Superseded {
                key: key.clone(),
                at: *at,
            })
            .collect())
    }

    async fn claim_file(
        &self,
        repo: &RepoPath,
        file: &PoolFile,
        owner: &str,
    ) -> Result<FileClaim, StoreError> {
        let mut files = lock(&self.files);
        let record = files
            .entry((repo.to_string(), file.key.clone()))
            .or_insert_with(|| FileRecord {
                file: file.clone(),
                owners: Vec::new(),
                deleting_since: None,
            });
        if record.deleting_since.is_some() {
            return Ok(FileClaim::Deleting);
        }
        if record.file.sha256 != file.sha256 {
            return Ok(FileClaim::Taken {
                sha256: record.file.sha256.clone(),
            });
        }
        if !record.owners.iter().any(|o| o == owner) {
            record.owners.push(owner.to_string());
        }
        Ok(FileClaim::Claimed)
    }

    async fn release_file(
        &self,
        repo: &RepoPath,
        key: &str,
        owner: &str,
    ) -> Result<Release, StoreError> {
        let mut files = lock(&self.files);
        let Some(record) = files.get_mut(&(repo.to_string(), key.to_string())) else {
            return Ok(Release::Gone);
        };
        record.owners.retain(|o| o != owner);
        if !record.owners.is_empty() {
            return Ok(Release::StillOwned);
        }
        record.deleting_since.get_or_insert(0);
        Ok(Release::Unowned)
    }

    async fn forget_file(&self, repo: &RepoPath, key: &str) -> Result<(), StoreError> {
        let mut files = lock(&self.files);
        let id = (repo.to_string(), key.to_string());
        if files
            .get(&id)
            .is_some_and(|r| r.owners.is_empty() && r.deleting_since.is_some())
        {
            files.remove(&id);
        }
        Ok(())
    }

    async fn list_files(&self, repo: &RepoPath) -> Result<Vec<FileRecord>, StoreError> {
        let id = repo.to_string();
        Ok(lock(&self.files)
            .iter()
            .filter(|((r, _), _)| *r == id)
            .map(|(_, f)| f.clone())
            .collect())
    }
}

#[async_trait]
impl UserDirectory for MemoryCatalog {
    async fn get_user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(lock(&self.users).get(name).cloned())
    }

    async fn put_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        lock(&self.users).insert(user.name.clone(), user.clone());
        Ok(())
    }
}

impl MemoryCatalog {
    /// Records that archive name `name` holds archives.
    pub fn mark_archive_in_use(&self, name: &str) {
        lock(&self.archives_in_use).insert(name.to_string());
    }

    /// Makes an archive writer land right after the next claim or closing of
    /// archive name `name`, between the manager's write and its check that the
    /// name is empty (the race those checks close).
    pub fn race_archive_writer(&self, name: &str) {
        lock(&self.racing_writers).insert(name.to_string());
    }

    /// Whether archive name `name` is closed to writers.
    pub fn archive_closed(&self, name: &str) -> bool {
        lock(&self.closed_archives).contains(name)
    }

    fn writer_lands(&self, name: &str) {
        if lock(&self.racing_writers).remove(name) {
            self.mark_archive_in_use(name);
        }
    }
}

#[async_trait]
impl RepositoryStore for MemoryCatalog {
    async fn archive_in_use(&self, name: &str) -> Result<bool, StoreError> {
        Ok(lock(&self.archives_in_use).contains(name))
    }

    async fn create_repository(&self, repo: &Repository) -> Result<bool, StoreError> {
        let mut repos = lock(&self.repositories);
        if repos.contains_key(&repo.path) {
            return Ok(false);
        }
        repos.insert(repo.path.clone(), repo.clone());
        drop(repos);
        if let Some(name) = repo.archive_name() {
            self.writer_lands(name);
        }
        Ok(true)
    }

    async fn get_repository(&self, path: &str) -> Result<Option<Repository>, StoreError> {
        Ok(lock(&self.repositories).get(path).cloned())
    }

    async fn list_repositories(&self) -> Result<Vec<Repository>, StoreError> {
        Ok(lock(&self.repositories).values().cloned().collect())
    }

    async fn replace_repository(&self, repo: &Repository) -> Result<bool, StoreError> {
        let mut repos = lock(&self.repositories);
        match repos.get(&repo.path) {
            Some(current) if current.version + 1 == repo.version => {
                repos.insert(repo.path.clone(), repo.clone());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_repository(&self, repo: &Repository) -> Result<bool, StoreError> {
        let mut repos = lock(&self.repositories);
        match repos.get(&repo.path) {
            Some(current) if current.version == repo.version => {
                repos.remove(&repo.path);
                if let Some(name) = repo.archive_name() {
                    lock(&self.closed_archives).remove(name);
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn close_archive(&self, repo: &Repository, closing: bool) -> Result<bool, StoreError> {
        let Some(name) = repo.archive_name() else {
            return Ok(false);
        };
        let claimed = lock(&self.repositories)
            .get(&repo.path)
            .is_some_and(|r| r.storage == repo.storage);
        if !claimed {
            return Ok(false);
        }
        if closing {
            lock(&self.closed_archives).insert(name.to_string());
            self.writer_lands(name);
        } else {
            lock(&self.closed_archives).remove(name);
        }
        Ok(true)
    }
}

#[async_trait]
impl TokenStore for MemoryCatalog {
    async fn put_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        lock(&self.tokens).insert(token.id.clone(), token.clone());
        Ok(())
    }

    async fn get_token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        Ok(lock(&self.tokens).get(id).cloned())
    }

    async fn list_tokens(&self, owner: &str) -> Result<Vec<TokenRecord>, StoreError> {
        Ok(lock(&self.tokens)
            .values()
            .filter(|t| t.owner == owner)
            .cloned()
            .collect())
    }

    async fn delete_token(&self, owner: &str, id: &str) -> Result<bool, StoreError> {
        let mut tokens = lock(&self.tokens);
        if tokens.get(id).is_some_and(|t| t.owner == owner) {
            tokens.remove(id);
            return Ok(true);
        }
        Ok(false)
    }
}

#[async_trait]
impl UploadLedger for MemoryCatalog {
    async fn put_ticket(&self, ticket: &UploadTicket) -> Result<(), StoreError> {
        lock(&self.tickets).insert(ticket.id.clone(), ticket.clone());
        Ok(())
    }

    async fn get_ticket(&self, id: &str) -> Result<Option<UploadTicket>, StoreError> {
        Ok(lock(&self.tickets).get(id).cloned())
    }

    async fn take_ticket(&self, id: &str, token: &str) -> Result<bool, StoreError> {
        let mut tickets = lock(&self.tickets);
        let mut tokens = lock(&self.ticket_tokens);
        let Some(t) = tickets.get_mut(id) else {
            return Ok(false);
        };
        let same_token = tokens.get(id).is_some_and(|held| held == token);
        if t.status == UploadStatus::Waiting || (t.status == UploadStatus::Ingesting && same_token)
        {
            t.status = UploadStatus::Ingesting;
            tokens.insert(id.to_string(), token.to_string());
            return Ok(true);
        }
        Ok(false)
    }

    async fn finish_ticket(
        &self,
        id: &str,
        status: UploadStatus,
        message: &str,
    ) -> Result<(), StoreError> {
        if let Some(t) = lock(&self.tickets).get_mut(id) {
            t.status = status;
            t.message = Some(message.to_string());
        }
        Ok(())
    }
}

#[async_trait]
impl SyncQueue for MemoryCatalog {
    async fn request_sync(&self, repo: &RepoPath, change_seq: u64) -> Result<(), StoreError> {
        lock(&self.sync_requests).push((repo.clone(), change_seq));
        Ok(())
    }
}

/// External repositories' fakes: apps and runs, index requests, a vault and a
/// network of index files.
pub mod external {
    use super::lock;
    use crate::error::StoreError;
    use crate::events::NewEvent;
    use crate::repositories::external::{
        AppStore, AppSummary, CredentialVault, Credentials, IndexQueue, IndexSource, IndexState,
        RunRecord, SourceError,
    };
    use async_trait::async_trait;
    use bytes::Bytes;
    use cairn_helm::ChartVersion;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    /// Apps, versions, states and runs in maps; counts writes.
    #[derive(Default)]
    pub struct MemoryApps {
        versions: Mutex<BTreeMap<String, Vec<ChartVersion>>>,
        apps: Mutex<BTreeMap<(String, String), AppSummary>>,
        states: Mutex<BTreeMap<String, IndexState>>,
        runs: Mutex<BTreeMap<String, RunRecord>>,
        /// Events of finished runs, in order.
        pub events: Mutex<Vec<NewEvent>>,
        /// Versions and apps written, and states replaced (not runs).
        pub writes: Mutex<usize>,
        /// Index runs requested: (path, reason).
        pub requested: Mutex<Vec<(String, String)>>,
    }

    #[async_trait]
    impl AppStore for MemoryApps {
        async fn index_state(&self, repo: &str) -> Result<Option<IndexState>, StoreError> {
            Ok(lock(&self.states).get(repo).cloned())
        }
        async fn indexed_versions(&self, repo: &str) -> Result<Vec<ChartVersion>, StoreError> {
            Ok(lock(&self.versions).get(repo).cloned().unwrap_or_default())
        }
        async fn add_versions(
            &self,
            repo: &str,
            versions: &[ChartVersion],
        ) -> Result<(), StoreError> {
            *lock(&self.writes) += versions.len();
            lock(&self.versions)
                .entry(repo.to_string())
                .or_default()
                .extend(versions.iter().cloned());
            Ok(())
        }
        async fn put_apps(&self, apps: &[AppSummary]) -> Result<(), StoreError> {
            *lock(&self.writes) += apps.len();
            let mut all = lock(&self.apps);
            for a in apps {
                all.insert((a.name.clone(), a.repository.clone()), a.clone());
            }
            Ok(())
        }
        async fn finish_run(
            &self,
            repo: &str,
            state: Option<&IndexState>,
            run: &RunRecord,
            event: &NewEvent,
        ) -> Result<(), StoreError> {
            if let Some(state) = state {
                *lock(&self.writes) += 1;
                lock(&self.states).insert(repo.to_string(), state.clone());
            }
            lock(&self.runs).insert(repo.to_string(), run.clone());
            lock(&self.events).push(event.clone());
            Ok(())
        }
        async fn last_run(&self, repo: &str) -> Result<Option<RunRecord>, StoreError> {
            Ok(lock(&self.runs).get(repo).cloned())
        }
        async fn apps(&self) -> Result<Vec<AppSummary>, StoreError> {
            Ok(lock(&self.apps).values().cloned().collect())
        }
        async fn app_versions(
            &self,
            repo: &str,
            app: &str,
        ) -> Result<Vec<ChartVersion>, StoreError> {
            Ok(lock(&self.versions)
                .get(repo)
                .into_iter()
                .flatten()
                .filter(|v| v.name == app)
                .cloned()
                .collect())
        }
        async fn forget_index(&self, repo: &str) -> Result<(), StoreError> {
            lock(&self.versions).remove(repo);
            lock(&self.states).remove(repo);
            lock(&self.runs).remove(repo);
            lock(&self.apps).retain(|(_, r), _| r != repo);
            Ok(())
        }
    }

    #[async_trait]
    impl IndexQueue for MemoryApps {
        async fn request_index(&self, path: &str, reason: &str) -> Result<(), StoreError> {
            lock(&self.requested).push((path.to_string(), reason.to_string()));
            Ok(())
        }
    }

    /// Credentials in a map.
    #[derive(Default)]
    pub struct MemoryVault {
        /// What it holds, by reference.
        pub secrets: Mutex<BTreeMap<String, Credentials>>,
    }

    #[async_trait]
    impl CredentialVault for MemoryVault {
        async fn store(&self, storage: &str, c: &Credentials) -> Result<String, StoreError> {
            let reference = format!("vault:{storage}");
            lock(&self.secrets).insert(reference.clone(), c.clone());
            Ok(reference)
        }
        async fn read(&self, reference: &str) -> Result<Option<Credentials>, StoreError> {
            Ok(lock(&self.secrets).get(reference).cloned())
        }
        async fn forget(&self, reference: &str) -> Result<(), StoreError> {
            lock(&self.secrets).remove(reference);
            Ok(())
        }
    }

    /// Index files by URL, each with the credentials it wants (if any).
    #[derive(Default)]
    pub struct MemorySource {
        /// `url -> (index.yaml, required credentials)`.
        pub indexes: Mutex<BTreeMap<String, (Bytes, Option<Credentials>)>>,
    }

    impl MemorySource {
        /// Serves `body` at `url`, asking for `credentials`.
        pub fn serve(&self, url: &str, body: &str, credentials: Option<Credentials>) {
            lock(&self.indexes).insert(
                url.to_string(),
                (Bytes::from(body.to_string()), credentials),
            );
        }
    }

    #[async_trait]
    impl IndexSource for MemorySource {
        async fn fetch_index(
            &self,
            url: &str,
            credentials: Option<&Credentials>,
        ) -> Result<Bytes, SourceError> {
            if url.contains("169.254.") || url.contains("://10.") {
                return Err(SourceError::Refused(format!("{url}: a private address")));
            }
            let Some((body, wanted)) = lock(&self.indexes).get(url).cloned() else {
                return Err(SourceError::Failed("HTTP 404".into()));
            };
            if wanted.is_some() && wanted.as_ref() != credentials {
                return Err(SourceError::Unauthorized("HTTP 401".into()));
            }
            Ok(body)
        }
    }
}

#[async_trait]
impl crate::builds::BuildStore for MemoryCatalog {
    async fn get_project(&self, name: &str) -> Result<Option<crate::builds::Project>, StoreError> {
        Ok(lock(&self.projects).get(name).cloned())
    }

    async fn put_project(&self, project: &crate::builds::Project) -> Result<bool, StoreError> {
        let mut projects = lock(&self.projects);
        let current = projects.get(&project.name).map(|p| p.version);
        if current.map_or(project.version != 1, |v| v + 1 != project.version) {
            return Ok(false);
        }
        projects.insert(project.name.clone(), project.clone());
        Ok(true)
    }

    async fn list_projects(&self) -> Result<Vec<crate::builds::Project>, StoreError> {
        Ok(lock(&self.projects).values().cloned().collect())
    }

    async fn slots(&self, project: &str) -> Result<crate::builds::Slots, StoreError> {
        Ok(lock(&self.slots).get(project).cloned().unwrap_or_default())
    }

    async fn get_build(&self, id: &str) -> Result<Option<crate::builds::Build>, StoreError> {
        Ok(lock(&self.builds).get(id).cloned())
    }

    async fn list_builds(
        &self,
        project: &str,
        limit: usize,
    ) -> Result<Vec<crate::builds::Build>, StoreError> {
        let mut builds: Vec<_> = lock(&self.builds)
            .values()
            .filter(|b| b.project == project)
            .cloned()
            .collect();
        builds.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        builds.truncate(limit);
        Ok(builds)
    }

    async fn commit(&self, change: crate::builds::BuildChange<'_>) -> Result<bool, StoreError> {
        use crate::builds::SlotChange;
        // One lock order for every change: builds, slots, jobs, events.
        let mut builds = lock(&self.builds);
        let mut slots = lock(&self.slots);
        let mut jobs = lock(&self.jobs);
        let build = change.build;
        let current = builds.get(&build.id).map(|b| b.version);
        if current.map_or(build.version != 1, |v| v + 1 != build.version) {
            return Ok(false);
        }
        if change
            .unqueued
            .iter()
            .any(|j| !jobs.contains_key(&(j.queued_at, j.id.clone())))
        {
            return Ok(false);
        }
        let mut slot = slots.get(&build.project).cloned().unwrap_or_default();
        match change.slot {
            SlotChange::Keep => {}
            SlotChange::Wait => slot.waiting.push(build.id.clone()),
            SlotChange::TakeFirst { limit } => {
                if slot.waiting.first() != Some(&build.id) || slot.running.len() >= limit as usize {
                    return Ok(false);
                }
                slot.waiting.remove(0);
                slot.running.push(build.id.clone());
            }
            SlotChange::DropFirst => {
                if slot.waiting.first() != Some(&build.id) {
                    return Ok(false);
                }
                slot.waiting.remove(0);
            }
            SlotChange::Release => slot.running.retain(|id| id != &build.id),
        }
        slots.insert(build.project.clone(), slot);
        for job in &change.unqueued {
            jobs.remove(&(job.queued_at, job.id.clone()));
        }
        for job in change.queued {
            jobs.insert((job.queued_at, job.id.clone()), job);
        }
        builds.insert(build.id.clone(), build.clone());
        for event in &change.events {
            self.commit_event(event);
        }
        Ok(true)
    }

    async fn queued_jobs(&self, limit: usize) -> Result<Vec<crate::builds::Job>, StoreError> {
        Ok(lock(&self.jobs).values().take(limit).cloned().collect())
    }

    async fn set_listener(
        &self,
        subject: &str,
        project: &str,
        version: u64,
        on: bool,
    ) -> Result<(), StoreError> {
        let key = (subject.to_string(), project.to_string());
        let mut listeners = lock(&self.listeners);
        if listeners.get(&key).is_some_and(|&v| v > version) {
            return Ok(());
        }
        if on {
            listeners.insert(key, version);
        } else {
            listeners.remove(&key);
        }
        Ok(())
    }

    async fn listeners(&self, subject: &str) -> Result<Vec<String>, StoreError> {
        Ok(lock(&self.listeners)
            .keys()
            .filter(|(s, _)| s == subject)
            .map(|(_, p)| p.clone())
            .collect())
    }

    async fn put_schedule(&self, entry: &crate::builds::ScheduleEntry) -> Result<(), StoreError> {
        let key = (entry.at, entry.project.clone(), entry.cron.clone());
        let mut schedules = lock(&self.schedules);
        if schedules.get(&key).is_none_or(|&v| v <= entry.version) {
            schedules.insert(key, entry.version);
        }
        Ok(())
    }

    async fn due_schedules(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<Vec<crate::builds::ScheduleEntry>, StoreError> {
        Ok(lock(&self.schedules)
            .iter()
            .take_while(|((at, _, _), _)| *at <= now)
            .take(limit)
            .map(
                |((at, project, cron), version)| crate::builds::ScheduleEntry {
                    project: project.clone(),
                    cron: cron.clone(),
                    at: *at,
                    version: *version,
                },
            )
            .collect())
    }

    async fn move_schedule(
        &self,
        entry: &crate::builds::ScheduleEntry,
        next: Option<&crate::builds::ScheduleEntry>,
    ) -> Result<bool, StoreError> {
        let mut schedules = lock(&self.schedules);
        let key = (entry.at, entry.project.clone(), entry.cron.clone());
        if schedules.get(&key).is_none_or(|&v| v > entry.version) {
            return Ok(false);
        }
        schedules.remove(&key);
        if let Some(n) = next {
            schedules.insert((n.at, n.project.clone(), n.cron.clone()), n.version);
        }
        Ok(true)
    }

    async fn commit_events(&self, events: &[crate::events::NewEvent]) -> Result<(), StoreError> {
        for event in events {
            self.commit_event(event);
        }
        Ok(())
    }
}

#[async_trait]
impl crate::builds::TriggerQueue for MemoryCatalog {
    async fn hand_over(&self, events: &[Event]) -> Result<(), StoreError> {
        lock(&self.handed_over).extend_from_slice(events);
        Ok(())
    }
}

#[async_trait]
impl crate::builds::LogStore for MemoryCatalog {
    async fn put_chunk(
        &self,
        build: &str,
        step: usize,
        offset: u64,
        bytes: Bytes,
    ) -> Result<(), StoreError> {
        lock(&self.logs).insert((build.to_string(), step, offset), bytes);
        Ok(())
    }

    async fn chunk_offsets(&self, build: &str, step: usize) -> Result<Vec<u64>, StoreError> {
        Ok(lock(&self.logs)
            .keys()
            .filter(|(b, s, _)| b == build && *s == step)
            .map(|(_, _, o)| *o)
            .collect())
    }

    async fn get_chunk(
        &self,
        build: &str,
        step: usize,
        offset: u64,
    ) -> Result<Option<Bytes>, StoreError> {
        Ok(lock(&self.logs)
            .get(&(build.to_string(), step, offset))
            .cloned())
    }
}

#[async_trait]
impl crate::builds::ArtifactIndex for MemoryCatalog {
    async fn get_artifact(
        &self,
        project: &str,
        name: &str,
    ) -> Result<Option<crate::builds::Artifact>, StoreError> {
        Ok(lock(&self.artifacts)
            .get(&(project.to_string(), name.to_string()))
            .cloned())
    }

    async fn put_artifact(&self, artifact: &crate::builds::Artifact) -> Result<(), StoreError> {
        lock(&self.artifacts).insert(
            (artifact.project.clone(), artifact.name.clone()),
            artifact.clone(),
        );
        Ok(())
    }

    async fn list_artifacts(
        &self,
        project: &str,
        limit: usize,
    ) -> Result<Vec<crate::builds::Artifact>, StoreError> {
        Ok(lock(&self.artifacts)
            .values()
            .filter(|a| a.project == project)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn delete_artifact(&self, project: &str, name: &str) -> Result<bool, StoreError> {
        Ok(lock(&self.artifacts)
            .remove(&(project.to_string(), name.to_string()))
            .is_some())
    }
}

/// Blobs in a map: an upload URL is `memory://<project>/<sha256>`, which a test
/// fulfils with [`MemoryCatalog::store_blob`].
#[async_trait]
impl crate::builds::Blobs for MemoryCatalog {
    async fn stat(
        &self,
        project: &str,
        sha256: &str,
    ) -> Result<Option<crate::builds::BlobInfo>, StoreError> {
        Ok(lock(&self.blobs)
            .get(&(project.to_string(), sha256.to_string()))
            .map(|b| crate::builds::BlobInfo {
                size: b.len() as u64,
                age_secs: 0,
            }))
    }

    async fn put_url(
        &self,
        project: &str,
        sha256: &str,
        size: u64,
        ttl_secs: u64,
    ) -> Result<crate::builds::Presigned, StoreError> {
        Ok(crate::builds::Presigned {
            method: "PUT".into(),
            url: format!("memory://{project}/{sha256}"),
            headers: [("content-length".to_string(), size.to_string())].into(),
            expires_at: time::OffsetDateTime::now_utc().unix_timestamp() + ttl_secs as i64,
        })
    }

    async fn get_url(
        &self,
        project: &str,
        sha256: &str,
        ttl_secs: u64,
    ) -> Result<crate::builds::Presigned, StoreError> {
        Ok(crate::builds::Presigned {
            method: "GET".into(),
            url: format!("memory://{project}/{sha256}"),
            headers: BTreeMap::new(),
            expires_at: time::OffsetDateTime::now_utc().unix_timestamp() + ttl_secs as i64,
        })
    }

    async fn refresh(&self, _project: &str, _sha256: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

impl MemoryCatalog {
    /// Stores `bytes` as a blob of `project`, as an upload to its URL would; its
    /// SHA-256 (tests).
    pub fn store_blob(&self, project: &str, bytes: &[u8]) -> String {
        use sha2::Digest;
        let sha256 = hex::encode(sha2::Sha256::digest(bytes));
        lock(&self.blobs).insert(
            (project.to_string(), sha256.clone()),
            Bytes::copy_from_slice(bytes),
        );
        sha256
    }
}

/// The controller's clock: looks are not scheduled (tests call `tick`); dispatch
/// requests are recorded.
#[async_trait]
impl crate::builds::Ticks for MemoryCatalog {
    async fn schedule(&self, id: &str) {
        lock(&self.scheduled).push(id.to_string());
    }

    async fn dispatch(&self, id: &str) {
        lock(&self.dispatched).push(id.to_string());
    }
}
