//! Events: one for each change Cairn commits, kept in an ordered log.
//!
//! An event is written in the same transaction as the change it reports (the
//! catalog methods that commit a change take the [`NewEvent`]), so an event exists
//! if and only if its change was committed. The log numbers events with one counter
//! that each transaction advances, so event `n + 1` cannot be visible before event
//! `n`: a reader that resumes after a cursor never skips one. Each event is kept
//! twice: in the overall log and in its subject's log.

use crate::error::StoreError;
use crate::{PackageRecord, RepoPath};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Longest file list an event carries; longer lists are cut and flagged `truncated`.
pub const MAX_EVENT_FILES: usize = 1000;

/// The event types Cairn emits.
pub const EVENT_TYPES: [&str; 12] = [
    "package.stored",
    "package.deleted",
    "repository.published",
    "repository.indexed",
    "archive.created",
    "operation.finished",
    "webhook.disabled",
    "build.started",
    "build.action.finished",
    "build.finished",
    "log.appended",
    "ping",
];

/// What an event is about: `repository:release/3.0/el/8`, `archive:demo`,
/// `operation:<id>`, `webhook:<id>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subject(String);

impl Subject {
    /// A repository's events (its packages' too).
    pub fn repository(repo: &RepoPath) -> Self {
        Subject(format!("repository:{repo}"))
    }

    /// The events of a repository named by its record path (an external
    /// repository's `external/<name>`).
    pub fn named_repository(path: &str) -> Self {
        Subject(format!("repository:{path}"))
    }

    /// An archive name's events.
    pub fn archive(name: &str) -> Self {
        Subject(format!("archive:{name}"))
    }

    /// An operation's events.
    pub fn operation(id: &str) -> Self {
        Subject(format!("operation:{id}"))
    }

    /// A webhook's events.
    pub fn webhook(id: &str) -> Self {
        Subject(format!("webhook:{id}"))
    }

    /// A project's builds' events.
    pub fn build(project: &str) -> Self {
        Subject(format!("build:{project}"))
    }

    /// Reads `kind:name`; the kind must be one Cairn uses and the name non-empty.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (kind, name) = text
            .split_once(':')
            .ok_or_else(|| format!("subject {text:?} is not kind:name"))?;
        if !matches!(
            kind,
            "repository" | "archive" | "operation" | "webhook" | "build"
        ) {
            return Err(format!(
                "subject kind {kind:?} is not one of repository, archive, operation, webhook, build"
            ));
        }
        if name.is_empty() || name.len() > 256 || name.chars().any(char::is_control) {
            return Err(format!(
                "subject name {name:?} is empty, too long or not text"
            ));
        }
        Ok(Subject(text.to_string()))
    }

    /// The subject's kind (`repository`, ...).
    pub fn kind(&self) -> &str {
        self.0.split_once(':').map_or("", |(k, _)| k)
    }

    /// The `kind:name` text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An event about to be committed with its change.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Stable id (`evt_` + 32 hex digits): the same across redeliveries.
    pub id: String,
    /// The type, e.g. `package.stored`.
    pub kind: String,
    /// What it is about.
    pub subject: Subject,
    /// When the change happened, Unix milliseconds.
    pub time_ms: i64,
    /// What a receiver needs to act without another call.
    pub data: Value,
}

/// `evt_` and 128 random bits from the OS, as hex.
fn new_id() -> String {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    format!("evt_{}", hex::encode(bytes))
}

fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as i64
}

fn capped(files: &[String]) -> (Vec<&String>, bool) {
    (
        files.iter().take(MAX_EVENT_FILES).collect(),
        files.len() > MAX_EVENT_FILES,
    )
}

impl NewEvent {
    /// An event of `kind` about `subject` now.
    pub fn new(kind: &str, subject: Subject, data: Value) -> Self {
        Self {
            id: new_id(),
            kind: kind.to_string(),
            subject,
            time_ms: now_ms(),
            data,
        }
    }

    /// `package.stored`: the file is in the pool and will be in the next publication.
    pub fn package_stored(record: &PackageRecord) -> Self {
        Self::new(
            "package.stored",
            Subject::repository(&record.repo),
            json!({
                "repository": record.repo.to_string(),
                "filename": record.filename,
                "package": record.name,
                "version": record.version,
                "architecture": record.architecture,
                "size": record.size,
                "sha256": record.sha256,
                "product": record.product,
                "uploader": record.uploader,
                "pool_key": record.pool_key,
            }),
        )
    }

    /// `package.deleted`: the package leaves the repository with the next
    /// publication; `reason` is `requested` or `retention`.
    pub fn package_deleted(repo: &RepoPath, filename: &str, reason: &str) -> Self {
        Self::new(
            "package.deleted",
            Subject::repository(repo),
            json!({"repository": repo.to_string(), "filename": filename, "reason": reason}),
        )
    }

    /// `repository.published`: the signed index is live.
    pub fn repository_published(repo: &RepoPath, publication: &Publication) -> Self {
        let (added, added_cut) = capped(&publication.added);
        let (removed, removed_cut) = capped(&publication.removed);
        Self::new(
            "repository.published",
            Subject::repository(repo),
            json!({
                "repository": repo.to_string(),
                "format": publication.format,
                "publication": publication.number,
                "published_seq": publication.published_seq,
                "metadata": publication.metadata.iter()
                    .map(|(key, sha256)| json!({"key": key, "sha256": sha256}))
                    .collect::<Vec<_>>(),
                "metadata_sha256": publication.metadata_sha256,
                "packages": publication.packages,
                "added": added,
                "removed": removed,
                "truncated": added_cut || removed_cut,
            }),
        )
    }
}

/// What a publication changed, for its `repository.published` event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Publication {
    /// `deb`, `rpm` or `helm`.
    pub format: String,
    /// The repository's publication number (1 for its first).
    pub number: u64,
    /// The change sequence number the publication covers.
    pub published_seq: u64,
    /// Key and SHA-256 of each index a client starts from: `dists/<suite>/Release`,
    /// each architecture's `repodata/repomd.xml`, `index.yaml`.
    pub metadata: Vec<(String, String)>,
    /// The digest the repository state records for this publication.
    pub metadata_sha256: String,
    /// Packages in the publication.
    pub packages: usize,
    /// File names new in this publication.
    pub added: Vec<String>,
    /// File names gone in this publication.
    pub removed: Vec<String>,
}

/// A committed event, as the log returns it and receivers get it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    /// Position in the log; the cursor to resume after this event.
    pub seq: u64,
    /// Stable id.
    pub id: String,
    /// Type.
    #[serde(rename = "type")]
    pub kind: String,
    /// When the change happened, RFC 3339 with milliseconds.
    pub timestamp: String,
    /// What it is about, `kind:name`.
    pub subject: String,
    /// The type's data.
    pub data: Value,
}

impl Event {
    /// The committed form of `new` at log position `seq`.
    pub fn committed(new: &NewEvent, seq: u64) -> Self {
        let time =
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(new.time_ms) * 1_000_000)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let timestamp = time
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        Self {
            seq,
            id: new.id.clone(),
            kind: new.kind.clone(),
            timestamp,
            subject: new.subject.to_string(),
            data: new.data.clone(),
        }
    }
}

/// Whether events about `subject` belong to one account (its `data.owner`): a
/// webhook's, an operation's and a project's builds'. Only their owner reads or
/// receives them.
pub fn owner_only(subject: &str) -> bool {
    subject.starts_with("webhook:")
        || subject.starts_with("operation:")
        || subject.starts_with("build:")
}

/// Whether `kind` matches a filter entry: an exact type, `prefix.*`, or `*`.
pub fn type_matches(pattern: &str, kind: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some("") => true,
        Some(prefix) => kind.starts_with(prefix),
        None => pattern == kind,
    }
}

/// Checks a type filter entry: a known type, a known prefix with `.*`, or `*`.
pub fn check_type_pattern(pattern: &str) -> Result<(), String> {
    let known = EVENT_TYPES.iter().any(|t| type_matches(pattern, t));
    if known && (pattern == "*" || !pattern.contains('*') || pattern.ends_with(".*")) {
        Ok(())
    } else {
        Err(format!(
            "unknown event type {pattern:?}: one of {} or a prefix such as package.*",
            EVENT_TYPES.join(", ")
        ))
    }
}

/// Reading the event log.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Up to `limit` events after position `after`, oldest first: the whole log, or
    /// one subject's.
    async fn events_after(
        &self,
        subject: Option<&Subject>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError>;

    /// The last `limit` events, oldest first: the whole log's, or one subject's.
    async fn events_latest(
        &self,
        subject: Option<&Subject>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError>;

    /// The last log position used (0 before the first event).
    async fn head(&self) -> Result<u64, StoreError>;

    /// The event at position `seq`, if it is still kept.
    async fn event_at(&self, seq: u64) -> Result<Option<Event>, StoreError> {
        Ok(self
            .events_after(None, seq.saturating_sub(1), 1)
            .await?
            .into_iter()
            .find(|e| e.seq == seq))
    }
}

/// A read of the event log: after a cursor, optionally one subject, optionally some
/// types.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Only events after this log position.
    pub after: u64,
    /// Only this subject's events.
    pub subject: Option<Subject>,
    /// Only these types (exact, `prefix.*` or `*`); empty means all.
    pub types: Vec<String>,
    /// At most this many events.
    pub limit: usize,
    /// The authenticated reader, if any: anonymous readers see repository events
    /// only; a webhook's events are its owner's. (Private repositories' events are
    /// filtered after, by `repositories::readable_events`.)
    pub reader: Option<String>,
}

/// One page of events and where to resume.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    /// The matching events, oldest first.
    pub events: Vec<Event>,
    /// The cursor to resume after: the last position read, which may be past the
    /// last event returned when the filter left some out.
    pub next: u64,
}

/// When `event` happened, parsed back from its timestamp.
pub fn event_time(event: &Event) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(
        &event.timestamp,
        &time::format_description::well_known::Rfc3339,
    )
    .ok()
}

/// The cursor just before the first kept event at or after `time` (the head when
/// there is none), found by bisection over log positions in about 2 log2(head)
/// reads: positions are in commit order and times follow them, to within the clock
/// skew between writers.
pub async fn cursor_at(log: &dyn EventLog, time: time::OffsetDateTime) -> Result<u64, StoreError> {
    let (mut lo, mut hi) = (1, log.head().await?.saturating_add(1));
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match log.events_after(None, mid - 1, 1).await?.first() {
            Some(e) if e.seq < hi && event_time(e).is_some_and(|at| at < time) => lo = e.seq + 1,
            _ => hi = mid,
        }
    }
    Ok(lo - 1)
}

/// A read of the newest events, for a page that shows what happened recently and
/// then follows the stream.
#[derive(Debug, Clone, Default)]
pub struct LatestQuery {
    /// Only this subject's events.
    pub subject: Option<Subject>,
    /// How many log positions to read back.
    pub limit: usize,
    /// The authenticated reader, if any (as in [`EventQuery`]).
    pub reader: Option<String>,
}

impl LatestQuery {
    /// Reads the newest events, oldest first. `next` follows on without a gap: the
    /// head is read before the events, so an event committed in between is either
    /// in the page or after the cursor.
    pub async fn read(&self, log: &dyn EventLog) -> Result<EventPage, StoreError> {
        let head = log.head().await?;
        let read = log
            .events_latest(self.subject.as_ref(), self.limit.clamp(1, 1000))
            .await?;
        let next = read.last().map_or(head, |e| e.seq.max(head));
        let query = EventQuery {
            reader: self.reader.clone(),
            ..Default::default()
        };
        Ok(EventPage {
            events: read.into_iter().filter(|e| query.admits(e)).collect(),
            next,
        })
    }
}

impl EventQuery {
    fn admits(&self, event: &Event) -> bool {
        let visible = match &self.reader {
            None => event.subject.starts_with("repository:"),
            Some(reader) => !owner_only(&event.subject) || event.data["owner"] == reader.as_str(),
        };
        visible
            && (self.types.is_empty() || self.types.iter().any(|t| type_matches(t, &event.kind)))
    }

    /// Reads one page.
    pub async fn read(&self, log: &dyn EventLog) -> Result<EventPage, StoreError> {
        let limit = self.limit.clamp(1, 1000);
        let read = log
            .events_after(self.subject.as_ref(), self.after, limit)
            .await?;
        let next = read.last().map_or(self.after, |e| e.seq);
        Ok(EventPage {
            events: read.into_iter().filter(|e| self.admits(e)).collect(),
            next,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_filters_take_exact_types_prefixes_and_everything() {
        assert!(type_matches("package.*", "package.stored"));
        assert!(!type_matches("package.*", "repository.published"));
        assert!(type_matches("*", "ping"));
        assert!(type_matches("ping", "ping"));
        assert!(check_type_pattern("package.*").is_ok());
        assert!(check_type_pattern("repository.published").is_ok());
        assert!(check_type_pattern("packages.*").is_err());
        assert!(check_type_pattern("pack*").is_err());
        assert!(check_type_pattern("nonsense").is_err());
    }

    #[test]
    fn subjects_are_kind_and_name() {
        assert!(Subject::parse("repository:release/3.0/el/8").is_ok());
        assert_eq!(
            Subject::parse("archive:demo").map(|s| s.kind().to_string()),
            Ok("archive".to_string())
        );
        assert!(Subject::parse("user:alice").is_err());
        assert!(Subject::parse("repository:").is_err());
        assert!(Subject::parse("no-colon").is_err());
    }

    #[tokio::test]
    async fn anonymous_readers_see_repository_events_and_the_cursor_passes_filtered_ones() {
        let log = crate::memory::MemoryCatalog::default();
        let repo = RepoPath::parse("release/1/ubuntu/jammy").expect("valid");
        for event in [
            NewEvent::package_deleted(&repo, "a_1_amd64.deb", "requested"),
            NewEvent::new("archive.created", Subject::archive("demo"), json!({})),
            NewEvent::package_deleted(&repo, "b_1_amd64.deb", "requested"),
        ] {
            log.append_for_test(&event);
        }
        let anonymous = EventQuery {
            limit: 10,
            ..Default::default()
        };
        let page = anonymous.read(&log).await.expect("read");
        assert_eq!(
            page.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [1, 3]
        );
        assert_eq!(page.next, 3);
        let archives = EventQuery {
            types: vec!["archive.*".into()],
            reader: Some("alice".into()),
            limit: 2,
            ..Default::default()
        };
        let page = archives.read(&log).await.expect("read");
        assert_eq!(page.events.iter().map(|e| e.seq).collect::<Vec<_>>(), [2]);
        assert_eq!(page.next, 2, "a page of two read positions 1 and 2");
        let subject = EventQuery {
            subject: Some(Subject::repository(&repo)),
            after: 1,
            limit: 10,
            ..Default::default()
        };
        let page = subject.read(&log).await.expect("read");
        assert_eq!(page.events.iter().map(|e| e.seq).collect::<Vec<_>>(), [3]);
    }

    #[tokio::test]
    async fn a_time_becomes_the_cursor_before_the_first_event_at_or_after_it() {
        let log = crate::memory::MemoryCatalog::default();
        let repo = RepoPath::parse("release/1/ubuntu/jammy").expect("valid");
        for ms in [1_000, 2_000, 2_000, 3_000, 5_000, 8_000, 13_000] {
            let mut event = NewEvent::package_deleted(&repo, "a.deb", "requested");
            event.time_ms = ms;
            log.append_for_test(&event);
        }
        let at = |ms: i64| {
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .expect("time")
        };
        for (ms, cursor) in [
            (0, 0),
            (1_000, 0),
            (1_500, 1),
            (2_000, 1),
            (2_001, 3),
            (5_000, 4),
            (13_000, 6),
            (20_000, 7),
        ] {
            assert_eq!(cursor_at(&log, at(ms)).await.expect("read"), cursor, "{ms}");
        }
        let empty = crate::memory::MemoryCatalog::default();
        assert_eq!(cursor_at(&empty, at(0)).await.expect("read"), 0);
    }

    #[test]
    fn long_file_lists_are_cut_and_flagged() {
        let repo = RepoPath::parse("release/1/ubuntu/jammy").expect("valid");
        let publication = Publication {
            added: (0..MAX_EVENT_FILES + 5)
                .map(|i| format!("p{i}.deb"))
                .collect(),
            ..Default::default()
        };
        let event = NewEvent::repository_published(&repo, &publication);
        assert_eq!(
            event.data["added"].as_array().map(Vec::len),
            Some(MAX_EVENT_FILES)
        );
        assert_eq!(event.data["truncated"], true);
        assert!(event.id.starts_with("evt_") && event.id.len() == 36);
    }
}
