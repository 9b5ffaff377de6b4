//! Webhook subscriptions: where to send which events, with which secrets.
//!
//! A subscription names a URL, the event types it wants (exact, `prefix.*` or `*`)
//! and optionally the subjects (`repository:release/3.0/el/8`, or a prefix ending in
//! `*`). Its secrets sign each delivery (Standard Webhooks); while a secret is being
//! rotated the old one keeps signing beside the new one until it expires.

use crate::events::{Event, EventLog, NewEvent, check_type_pattern, owner_only, type_matches};
use crate::ports::StoreError;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Most event patterns and subjects one subscription may list.
pub const MAX_FILTERS: usize = 50;
/// Longest description.
pub const MAX_DESCRIPTION: usize = 512;

/// A secret and, once rotated out, when it stops signing (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningSecret {
    /// `whsec_<base64>`.
    pub secret: String,
    /// When it was made.
    pub created_at: i64,
    /// When it stops signing; `None` for the current secret.
    pub expires_at: Option<i64>,
}

/// A webhook subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    /// `wh_` + 32 hex digits.
    pub id: String,
    /// The account that made it; only it sees and changes it.
    pub owner: String,
    /// Where deliveries go (checked against the address policy when saved and again
    /// when delivering).
    pub url: String,
    /// Event types or prefixes (`package.*`); never empty.
    pub events: Vec<String>,
    /// Subjects or subject prefixes ending in `*`; empty means every subject.
    pub subjects: Vec<String>,
    /// For humans.
    pub description: String,
    /// Disabled subscriptions get nothing.
    pub enabled: bool,
    /// Why it was disabled (`410 Gone`, failing for days, by its owner).
    pub disabled_reason: Option<String>,
    /// Newest first.
    pub secrets: Vec<SigningSecret>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last change.
    pub updated_at: i64,
    /// Bumped by every change; a replace names the version it read.
    pub version: u64,
    /// The scopes of the token that made it, if a token did: a private repository's
    /// events reach it only if these allow reading the repository (besides the
    /// account seeing it). `None` for a password: the account's role decides.
    #[serde(default)]
    pub made_with: Option<crate::access::Scopes>,
}

/// Why a subscription is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    /// A field is not acceptable.
    #[error("{0}")]
    Invalid(String),
}

impl Webhook {
    /// Whether the subscription wants `event`: enabled, and its type and subject
    /// match. A `ping` goes to the subscription it names only, whatever its filters;
    /// events about a subscription go to its owner's subscriptions only.
    pub fn wants(&self, event: &Event) -> bool {
        if !self.enabled {
            return false;
        }
        if event.kind == "ping" {
            return event.subject == format!("webhook:{}", self.id);
        }
        if owner_only(&event.subject) && event.data["owner"] != self.owner.as_str() {
            return false;
        }
        self.events.iter().any(|p| type_matches(p, &event.kind))
            && (self.subjects.is_empty()
                || self.subjects.iter().any(|s| match s.strip_suffix('*') {
                    Some(prefix) => event.subject.starts_with(prefix),
                    None => *s == event.subject,
                }))
    }

    /// The secrets that sign at `now`: the current one and any rotated-out one whose
    /// grace period has not ended.
    pub fn signing_secrets(&self, now: i64) -> Vec<&str> {
        self.secrets
            .iter()
            .filter(|s| s.expires_at.is_none_or(|t| t > now))
            .map(|s| s.secret.as_str())
            .collect()
    }

    /// Checks the filters and description (the URL is checked by the caller, which
    /// knows the address policy).
    pub fn validate(&self) -> Result<(), WebhookError> {
        let invalid = |m: String| Err(WebhookError::Invalid(m));
        if self.events.is_empty() {
            return invalid(
                "events must name at least one event type or prefix (\"*\" for all)".into(),
            );
        }
        if self.events.len() > MAX_FILTERS || self.subjects.len() > MAX_FILTERS {
            return invalid(format!(
                "at most {MAX_FILTERS} events and {MAX_FILTERS} subjects"
            ));
        }
        for pattern in &self.events {
            check_type_pattern(pattern).map_err(WebhookError::Invalid)?;
        }
        for subject in &self.subjects {
            let exact = subject.strip_suffix('*').unwrap_or(subject);
            let kind = exact.split(':').next().unwrap_or_default();
            if !matches!(
                kind,
                "repository" | "archive" | "operation" | "webhook" | "build"
            ) || !exact.contains(':')
                || subject.len() > 300
                || subject.chars().any(char::is_control)
            {
                return invalid(format!(
                    "subject {subject:?} is not kind:name or kind:prefix* (kinds: repository, \
                     archive, operation, webhook, build)"
                ));
            }
        }
        if self.description.len() > MAX_DESCRIPTION {
            return invalid(format!(
                "description is longer than {MAX_DESCRIPTION} bytes"
            ));
        }
        Ok(())
    }
}

/// One delivery of one event to one subscription: the delivery queue's message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The subscription.
    pub hook: String,
    /// The event's log position.
    pub seq: u64,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Not before this time (Unix seconds): waits longer than one queue delay are
    /// several hops.
    pub not_before: i64,
    /// `event`, `redeliver` or `replay`.
    pub reason: String,
}

/// The waits between attempts, seconds: after attempt `n` comes `delays[n - 1]`.
/// Standard Webhooks' schedule by default: immediately, then 5 s, 5 min, 30 min, 2 h,
/// 5 h, 10 h, 10 h.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(pub Vec<u64>);

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule(vec![5, 300, 1800, 7200, 18_000, 36_000, 36_000])
    }
}

impl RetrySchedule {
    /// Reads `5,300,1800` (seconds); empty means no retries.
    pub fn parse(text: &str) -> Result<Self, String> {
        text.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| {
                t.parse()
                    .map_err(|_| format!("{t:?} is not a number of seconds"))
            })
            .collect::<Result<_, _>>()
            .map(RetrySchedule)
    }

    /// The wait after attempt `attempt` failed, with `jitter` in [0, 1) spreading it
    /// by up to a tenth; `None` when no attempt is left.
    pub fn delay_after(&self, attempt: u32, jitter: f64) -> Option<u64> {
        let base = *self.0.get(usize::try_from(attempt).ok()?.checked_sub(1)?)?;
        let spread = (base as f64 * 0.1 * jitter.clamp(0.0, 1.0)) as u64;
        Some(base + spread)
    }

    /// How many attempts there are in all.
    pub fn attempts(&self) -> u32 {
        u32::try_from(self.0.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1)
    }
}

/// What one attempt did, for the delivery log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// The subscription.
    pub hook: String,
    /// The event's log position and id.
    pub seq: u64,
    /// The event id (`webhook-id`).
    pub event_id: String,
    /// The event type.
    pub event_type: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Why it was sent: `event`, `redeliver`, `replay`.
    pub reason: String,
    /// When, RFC 3339.
    pub at: String,
    /// The answer's status, if one came.
    pub http_status: Option<u16>,
    /// What went wrong without a status.
    pub error: Option<String>,
    /// Milliseconds.
    pub duration_ms: u64,
    /// The first KiB of the answer.
    pub response: Option<String>,
    /// When the next attempt is due (Unix seconds), if there is one.
    pub next_attempt_at: Option<i64>,
}

/// Where deliveries wait.
#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    /// Queues `deliveries`, each visible after `delay_secs` (at most 900).
    async fn enqueue(&self, deliveries: &[Delivery], delay_secs: u32) -> Result<(), StoreError>;
}

/// The delivery log and the dispatcher's place in the event log.
#[async_trait]
pub trait DeliveryLog: Send + Sync {
    /// Records one attempt.
    async fn record_attempt(&self, record: &AttemptRecord) -> Result<(), StoreError>;
    /// A subscription's attempts, newest event first, at most `limit`, only events
    /// before position `before` when given.
    async fn attempts(
        &self,
        hook: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AttemptRecord>, StoreError>;
    /// The last event position the dispatcher handed out (`None` before its first run).
    async fn dispatch_cursor(&self) -> Result<Option<u64>, StoreError>;
    /// Moves the dispatcher's cursor from `from` to `to`; `Ok(false)` if another
    /// dispatcher moved it first.
    async fn advance_cursor(&self, from: Option<u64>, to: u64) -> Result<bool, StoreError>;
}

/// Stored subscriptions.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Stores a new subscription; `Ok(false)` if its id exists.
    async fn create_webhook(&self, hook: &Webhook) -> Result<bool, StoreError>;
    /// One subscription.
    async fn get_webhook(&self, id: &str) -> Result<Option<Webhook>, StoreError>;
    /// Every subscription (the dispatcher's view; there are few).
    async fn list_webhooks(&self) -> Result<Vec<Webhook>, StoreError>;
    /// Replaces a subscription only if its stored version is still `hook.version - 1`
    /// (of two concurrent updates the second gets `Ok(false)` and reads again).
    async fn replace_webhook(&self, hook: &Webhook) -> Result<bool, StoreError>;
    /// Deletes a subscription; deleting a missing one is not an error.
    async fn delete_webhook(&self, id: &str) -> Result<(), StoreError>;
    /// Notes that a delivery to `id` failed at `now`; returns since when it has been
    /// failing without a success in between.
    async fn note_failure(&self, id: &str, now: i64) -> Result<i64, StoreError>;
    /// Notes a successful delivery: the subscription is no longer failing.
    async fn note_success(&self, id: &str) -> Result<(), StoreError>;
    /// Commits `event` (a `ping`) if subscription `id` exists; `Ok(false)` if not.
    async fn commit_webhook_event(&self, id: &str, event: &NewEvent) -> Result<bool, StoreError>;
    /// Disables `hook` (as read, version bumped by the caller) and commits `event`
    /// (`webhook.disabled`) with it; `Ok(false)` if it changed since it was read.
    async fn disable_webhook(&self, hook: &Webhook, event: &NewEvent) -> Result<bool, StoreError>;
}

/// Hands the events after the dispatcher's cursor to the subscriptions that want
/// them, 100 at a time, for up to `budget`. Deliveries are queued before the cursor
/// moves, so a dispatcher that dies in between repeats them (at least once), never
/// skips them. Returns how many deliveries were queued.
pub async fn dispatch(
    log: &dyn EventLog,
    hooks: &dyn WebhookStore,
    deliveries: &dyn DeliveryLog,
    queue: &dyn DeliveryQueue,
    triggers: &dyn crate::builds::TriggerQueue,
    audience: &crate::repositories::Audience<'_>,
    budget: std::time::Duration,
) -> Result<usize, StoreError> {
    let started = std::time::Instant::now();
    let mut cursor = deliveries.dispatch_cursor().await?;
    let subscriptions: Vec<Webhook> = hooks
        .list_webhooks()
        .await?
        .into_iter()
        .filter(|h| h.enabled)
        .collect();
    let mut queued = 0;
    while started.elapsed() < budget {
        let events = log.events_after(None, cursor.unwrap_or(0), 100).await?;
        let Some(last) = events.last().map(|e| e.seq) else {
            break;
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut batch = Vec::new();
        for e in &events {
            for h in subscriptions.iter().filter(|h| h.wants(e)) {
                // A private repository's events go to the webhooks of accounts that
                // may read it.
                if audience.may_read(&h.owner, h.made_with.as_ref(), e).await? {
                    batch.push(Delivery {
                        hook: h.id.clone(),
                        seq: e.seq,
                        attempt: 1,
                        not_before: now,
                        reason: "event".into(),
                    });
                }
            }
        }
        if !batch.is_empty() {
            queue.enqueue(&batch, 0).await?;
            queued += batch.len();
        }
        let triggering: Vec<Event> = events
            .iter()
            .filter(|e| {
                crate::builds::trigger::TRIGGER_EVENTS
                    .iter()
                    .any(|(kind, _)| *kind == e.kind)
            })
            .cloned()
            .collect();
        if !triggering.is_empty() {
            triggers.hand_over(&triggering).await?;
        }
        if !deliveries.advance_cursor(cursor, last).await? {
            break;
        }
        cursor = Some(last);
    }
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hook() -> Webhook {
        Webhook {
            id: "wh_1".into(),
            owner: "alice".into(),
            url: "https://ci.example.org/hook".into(),
            events: vec!["package.*".into()],
            subjects: vec!["repository:release/3.0/*".into()],
            description: String::new(),
            enabled: true,
            disabled_reason: None,
            secrets: vec![
                SigningSecret {
                    secret: "new".into(),
                    created_at: 10,
                    expires_at: None,
                },
                SigningSecret {
                    secret: "old".into(),
                    created_at: 1,
                    expires_at: Some(100),
                },
            ],
            created_at: 1,
            updated_at: 10,
            version: 1,
            made_with: None,
        }
    }

    #[test]
    fn the_schedule_is_standard_webhooks_by_default_and_configurable() {
        let s = RetrySchedule::default();
        assert_eq!(s.attempts(), 8);
        assert_eq!(s.delay_after(1, 0.0), Some(5));
        assert_eq!(s.delay_after(2, 0.99), Some(329));
        assert_eq!(s.delay_after(7, 0.0), Some(36_000));
        assert_eq!(s.delay_after(8, 0.0), None);
        assert_eq!(s.delay_after(0, 0.0), None);
        assert_eq!(
            RetrySchedule::parse("1, 1,2"),
            Ok(RetrySchedule(vec![1, 1, 2]))
        );
        assert_eq!(RetrySchedule::parse(""), Ok(RetrySchedule(vec![])));
        assert!(RetrySchedule::parse("1,x").is_err());
    }

    #[tokio::test]
    async fn dispatch_queues_each_wanted_event_once_and_moves_its_cursor() {
        use crate::memory::MemoryCatalog;
        let store = MemoryCatalog::default();
        store.create_webhook(&hook()).await.expect("hook");
        let other = Webhook {
            id: "wh_2".into(),
            events: vec!["repository.*".into()],
            ..hook()
        };
        store.create_webhook(&other).await.expect("hook");
        let repo = crate::RepoPath::parse("release/3.0/el/8").expect("valid");
        store.append_for_test(&NewEvent::package_deleted(&repo, "a.rpm", "requested"));
        let elsewhere = crate::RepoPath::parse("release/2.11/el/8").expect("valid");
        store.append_for_test(&NewEvent::package_deleted(&elsewhere, "b.rpm", "requested"));
        store.append_for_test(&NewEvent::new(
            "archive.created",
            crate::events::Subject::archive("hello"),
            serde_json::json!({"name": "hello", "tag": "t"}),
        ));
        let budget = std::time::Duration::from_secs(5);
        let seed = seed();
        let audience = crate::repositories::Audience::new(&seed, &store, &store);
        let queued = dispatch(&store, &store, &store, &store, &store, &audience, budget)
            .await
            .expect("dispatch");
        assert_eq!(queued, 1, "wh_1 wants the release/3.0 package event only");
        let q = store.queued.lock().expect("lock").clone();
        assert_eq!(
            (q[0].0.hook.as_str(), q[0].0.seq, q[0].0.attempt),
            ("wh_1", 1, 1)
        );
        assert_eq!(store.dispatch_cursor().await.expect("cursor"), Some(3));
        let handed: Vec<u64> = store
            .handed_over
            .lock()
            .expect("lock")
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(
            handed,
            [3],
            "the archive event goes to the build controller"
        );
        let again = dispatch(&store, &store, &store, &store, &store, &audience, budget)
            .await
            .expect("dispatch");
        assert_eq!(again, 0, "nothing is handed out twice");
        assert_eq!(store.handed_over.lock().expect("lock").len(), 1);
    }

    fn seed() -> crate::SupportedRepos {
        serde_json::from_str(
            r#"{"kinds":["release"],"series":["3.0","2.11"],
                "dists":{"el":{"format":"rpm","versions":["8"]}}}"#,
        )
        .expect("seed")
    }

    #[tokio::test]
    async fn a_private_repositorys_events_reach_the_webhooks_of_its_readers_only() {
        use crate::auth::UserRecord;
        use crate::memory::MemoryCatalog;
        use crate::ports::UserDirectory;
        use crate::repositories::{NewRepository, RepositoryStore};
        let store = MemoryCatalog::default();
        for (name, selectors) in [
            ("alice", vec![]),
            ("bob", vec![]),
            ("dba", vec!["team=db".to_string()]),
        ] {
            store
                .put_user(&UserRecord {
                    name: name.into(),
                    password_hash: String::new(),
                    role: crate::access::Role::Reader,
                    tokens_after: 0,
                    selectors,
                })
                .await
                .expect("user");
            let everything = Webhook {
                id: format!("wh_{name}"),
                owner: name.into(),
                events: vec!["*".into()],
                subjects: vec![],
                ..hook()
            };
            store.create_webhook(&everything).await.expect("hook");
        }
        let new: NewRepository = serde_json::from_value(serde_json::json!({
            "format": "yum", "path": "team/db/el/9", "visibility": "private",
            "labels": {"team": "db"}
        }))
        .expect("request");
        let repo = new.validate("alice", 1).expect("valid");
        store.create_repository(&repo).await.expect("store");
        let path = crate::RepoPath::parse("team/db/el/9").expect("valid");
        store.append_for_test(&NewEvent::package_deleted(&path, "a.rpm", "requested"));
        let seed = seed();
        let audience = crate::repositories::Audience::new(&seed, &store, &store);
        let budget = std::time::Duration::from_secs(5);
        dispatch(&store, &store, &store, &store, &store, &audience, budget)
            .await
            .expect("dispatch");
        let mut hooks: Vec<String> = store
            .queued
            .lock()
            .expect("lock")
            .iter()
            .map(|(d, _)| d.hook.clone())
            .collect();
        hooks.sort();
        assert_eq!(hooks, ["wh_alice", "wh_dba"], "bob does not see it");
    }

    #[test]
    fn a_ping_reaches_the_subscription_it_names_only() {
        let h = hook();
        assert!(h.wants(&event("ping", "webhook:wh_1")));
        assert!(!h.wants(&event("ping", "webhook:wh_2")));
        let mut about_other = event("webhook.disabled", "webhook:wh_9");
        about_other.data = json!({"owner": "bob"});
        let everything = Webhook {
            events: vec!["*".into()],
            subjects: vec![],
            ..hook()
        };
        assert!(
            !everything.wants(&about_other),
            "bob's webhook events are not alice's"
        );
        about_other.data = json!({"owner": "alice"});
        assert!(everything.wants(&about_other));
    }

    fn event(kind: &str, subject: &str) -> Event {
        Event {
            seq: 1,
            id: "evt_1".into(),
            kind: kind.into(),
            timestamp: String::new(),
            subject: subject.into(),
            data: json!({}),
        }
    }

    #[test]
    fn a_subscription_wants_its_types_and_subjects_only() {
        let h = hook();
        assert!(h.wants(&event("package.stored", "repository:release/3.0/el/8")));
        assert!(!h.wants(&event(
            "repository.published",
            "repository:release/3.0/el/8"
        )));
        assert!(!h.wants(&event("package.stored", "repository:release/2.11/el/8")));
        let disabled = Webhook {
            enabled: false,
            ..hook()
        };
        assert!(!disabled.wants(&event("package.stored", "repository:release/3.0/el/8")));
    }

    #[test]
    fn a_rotated_secret_signs_until_its_grace_ends() {
        let h = hook();
        assert_eq!(h.signing_secrets(99), ["new", "old"]);
        assert_eq!(h.signing_secrets(100), ["new"]);
    }

    #[test]
    fn bad_filters_are_refused() {
        for bad in [
            Webhook {
                events: vec![],
                ..hook()
            },
            Webhook {
                events: vec!["nonsense".into()],
                ..hook()
            },
            Webhook {
                subjects: vec!["user:alice".into()],
                ..hook()
            },
            Webhook {
                subjects: vec!["release/3.0".into()],
                ..hook()
            },
            Webhook {
                description: "x".repeat(MAX_DESCRIPTION + 1),
                ..hook()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        assert!(hook().validate().is_ok());
    }
}
