//! The delivery rules over the in-memory ports and a scripted endpoint: retries keep
//! the webhook-id, 410 disables at once, a dead endpoint is disabled after the failure
//! period with a `webhook.disabled` event, an early message waits, and the signature
//! verifies with the subscription's secrets.

use async_trait::async_trait;
use bytes::Bytes;
use cairn_callback::Attempt;
use cairn_callback::standard::WebhookSecret;
use cairn_core::RepoPath;
use cairn_core::events::{EventLog, NewEvent};
use cairn_core::memory::MemoryCatalog;
use cairn_core::webhooks::{Delivery, RetrySchedule, SigningSecret, Webhook, WebhookStore};
use std::sync::{Arc, Mutex};
use webhook_worker::{Outcome, Sender, Worker};

/// One request as sent: its headers and body.
type Sent = (Vec<(String, String)>, Bytes);

/// Answers with the scripted statuses in turn (the last one forever) and keeps what
/// it was sent.
struct Endpoint {
    statuses: Mutex<Vec<u16>>,
    sent: Mutex<Vec<Sent>>,
}

#[async_trait]
impl Sender for Endpoint {
    async fn post(&self, _url: &str, headers: &[(&str, String)], body: Bytes) -> Attempt {
        let mut statuses = self.statuses.lock().expect("lock");
        let status = if statuses.len() > 1 {
            statuses.remove(0)
        } else {
            statuses[0]
        };
        self.sent.lock().expect("lock").push((
            headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            body,
        ));
        Attempt {
            at: time::OffsetDateTime::now_utc(),
            http_status: Some(status),
            error: None,
            error_kind: None,
            duration_ms: 1,
            response: Some("ok".into()),
        }
    }
}

struct World {
    catalog: Arc<MemoryCatalog>,
    endpoint: Arc<Endpoint>,
    worker: Worker,
    secret: WebhookSecret,
    seq: u64,
}

async fn world(statuses: &[u16]) -> World {
    let catalog = Arc::new(MemoryCatalog::default());
    let secret = WebhookSecret::generate();
    catalog
        .create_webhook(&Webhook {
            id: "wh_a".into(),
            owner: "alice".into(),
            url: "https://93.184.215.14/hook".into(),
            events: vec!["*".into()],
            subjects: vec![],
            description: String::new(),
            enabled: true,
            disabled_reason: None,
            secrets: vec![SigningSecret {
                secret: secret.expose(),
                created_at: 0,
                expires_at: None,
            }],
            created_at: 0,
            updated_at: 0,
            version: 1,
            made_with: None,
        })
        .await
        .expect("hook");
    let repo = RepoPath::parse("release/1/ubuntu/jammy").expect("valid");
    catalog.append_for_test(&NewEvent::package_deleted(
        &repo,
        "a_1_amd64.deb",
        "requested",
    ));
    let endpoint = Arc::new(Endpoint {
        statuses: Mutex::new(statuses.to_vec()),
        sent: Mutex::default(),
    });
    let worker = Worker {
        hooks: catalog.clone(),
        log: catalog.clone(),
        deliveries: catalog.clone(),
        queue: catalog.clone(),
        sender: endpoint.clone(),
        schedule: RetrySchedule(vec![5, 300]),
        disable_after: 1000,
    };
    World {
        catalog,
        endpoint,
        worker,
        secret,
        seq: 1,
    }
}

fn first(seq: u64) -> Delivery {
    Delivery {
        hook: "wh_a".into(),
        seq,
        attempt: 1,
        not_before: 0,
        reason: "event".into(),
    }
}

/// Runs the queued retry (there is exactly one) at its due time.
async fn run_queued(w: &World) -> Outcome {
    let (next, _) = w
        .catalog
        .queued
        .lock()
        .expect("lock")
        .pop()
        .expect("a retry was queued");
    w.worker
        .handle(&next, next.not_before)
        .await
        .expect("handled")
}

#[tokio::test]
async fn retries_keep_the_webhook_id_and_the_third_attempt_delivers() {
    let w = world(&[500, 500, 200]).await;
    assert_eq!(
        w.worker.handle(&first(w.seq), 100).await.expect("handled"),
        Outcome::Retrying
    );
    let queued = w.catalog.queued.lock().expect("lock").clone();
    assert_eq!(queued.len(), 1);
    assert_eq!(
        (queued[0].0.attempt, queued[0].1),
        (2, 5),
        "the second attempt after 5 s"
    );
    assert_eq!(run_queued(&w).await, Outcome::Retrying);
    assert_eq!(run_queued(&w).await, Outcome::Delivered);

    let sent = w.endpoint.sent.lock().expect("lock").clone();
    let event = w
        .catalog
        .event_at(w.seq)
        .await
        .expect("log")
        .expect("event");
    for (headers, body) in &sent {
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .expect(name)
        };
        assert_eq!(get("webhook-id"), event.id, "one id for every attempt");
        let timestamp: i64 = get("webhook-timestamp").parse().expect("number");
        assert!(
            w.secret
                .verifies(&get("webhook-signature"), &event.id, timestamp, body)
        );
        let delivered: serde_json::Value = serde_json::from_slice(body).expect("json");
        assert_eq!(
            delivered["seq"], w.seq,
            "the event carries its log position"
        );
    }
    let attempts = w.catalog.attempts.lock().expect("lock").clone();
    assert_eq!(
        attempts
            .iter()
            .map(|a| (a.attempt, a.http_status))
            .collect::<Vec<_>>(),
        [(1, Some(500)), (2, Some(500)), (3, Some(200))]
    );
    assert!(attempts[0].next_attempt_at.is_some() && attempts[2].next_attempt_at.is_none());
    assert!(
        w.catalog
            .get_webhook("wh_a")
            .await
            .expect("store")
            .expect("hook")
            .enabled
    );
}

#[tokio::test]
async fn gone_disables_at_once_and_says_so() {
    let w = world(&[410]).await;
    assert_eq!(
        w.worker.handle(&first(w.seq), 100).await.expect("handled"),
        Outcome::Disabled
    );
    let hook = w
        .catalog
        .get_webhook("wh_a")
        .await
        .expect("store")
        .expect("hook");
    assert!(!hook.enabled);
    assert!(hook.disabled_reason.unwrap_or_default().contains("410"));
    assert!(
        w.catalog.queued.lock().expect("lock").is_empty(),
        "no retry after 410"
    );
    let disabled = w
        .catalog
        .event_at(2)
        .await
        .expect("log")
        .expect("webhook.disabled");
    assert_eq!(disabled.kind, "webhook.disabled");
    assert_eq!(disabled.data["owner"], "alice");
    // A disabled subscription gets nothing more.
    assert_eq!(
        w.worker.handle(&first(w.seq), 101).await.expect("handled"),
        Outcome::Dropped("the subscription is disabled")
    );
}

#[tokio::test]
async fn a_dead_endpoint_is_disabled_after_the_failure_period() {
    let w = world(&[503]).await;
    assert_eq!(
        w.worker.handle(&first(w.seq), 100).await.expect("handled"),
        Outcome::Retrying
    );
    w.catalog.queued.lock().expect("lock").clear();
    // Another event, much later, still failing: the period is over.
    let later = Delivery {
        seq: w.seq,
        ..first(w.seq)
    };
    assert_eq!(
        w.worker.handle(&later, 100 + 1000).await.expect("handled"),
        Outcome::Disabled
    );
    let hook = w
        .catalog
        .get_webhook("wh_a")
        .await
        .expect("store")
        .expect("hook");
    assert!(
        hook.disabled_reason
            .unwrap_or_default()
            .contains("every delivery failed")
    );
}

#[tokio::test]
async fn an_early_message_waits_and_a_last_failure_stops() {
    let w = world(&[500]).await;
    let early = Delivery {
        not_before: 500,
        ..first(w.seq)
    };
    assert_eq!(
        w.worker.handle(&early, 100).await.expect("handled"),
        Outcome::Deferred
    );
    assert_eq!(w.catalog.queued.lock().expect("lock")[0].1, 400);
    assert!(w.endpoint.sent.lock().expect("lock").is_empty());
    let last = Delivery {
        attempt: 3,
        ..first(w.seq)
    };
    w.catalog.queued.lock().expect("lock").clear();
    assert_eq!(
        w.worker.handle(&last, 100).await.expect("handled"),
        Outcome::Failed
    );
    assert!(w.catalog.queued.lock().expect("lock").is_empty());
}
