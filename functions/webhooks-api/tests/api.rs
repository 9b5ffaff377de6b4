//! The webhooks router in process over the in-memory store: subscriptions are their
//! owner's, refused URLs and filters store nothing, the secret is shown once, rotation
//! keeps the old secret for its grace period.

use axum::body::Body;
use axum::http::{Request, header};
use cairn_callback::AddressPolicy;
use cairn_core::auth::{UserRecord, hash_password};
use cairn_core::memory::MemoryCatalog;
use cairn_core::ports::UserDirectory;
use cairn_core::webhooks::WebhookStore;
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;
use webhooks_api::{App, router};

const ALICE: &str = "Basic YWxpY2U6c2VjcmV0"; // alice:secret
const BOB: &str = "Basic Ym9iOnNlY3JldA=="; // bob:secret
const PUBLIC_URL: &str = "https://93.184.215.14/hook";

async fn world() -> (axum::Router, Arc<MemoryCatalog>) {
    let store = Arc::new(MemoryCatalog::default());
    for name in ["alice", "bob"] {
        store
            .put_user(&UserRecord {
                name: name.into(),
                password_hash: hash_password("secret"),
                role: Default::default(),
                tokens_after: 0,
                selectors: Vec::new(),
            })
            .await
            .expect("user");
    }
    let app = App {
        hooks: store.clone(),
        users: store.clone(),
        policy: AddressPolicy::default(),
        log: store.clone(),
        deliveries: store.clone(),
        queue: store.clone(),
        repositories: store.clone(),
        seed: serde_json::from_str(
            r#"{"kinds":["release"],"series":["1","3.0"],
                "dists":{"ubuntu":{"format":"deb","versions":["jammy"]}}}"#,
        )
        .expect("seed"),
    };
    (router(Arc::new(app)), store)
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    auth: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(auth) = auth {
        req = req.header(header::AUTHORIZATION, auth);
    }
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let req = req
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("request");
    let response = app.clone().oneshot(req).await.expect("infallible");
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_subscription_is_its_owners_and_its_secret_is_shown_once() {
    let (app, store) = world().await;
    let (status, created) = call(
        &app,
        "POST",
        "/v1/webhooks",
        Some(ALICE),
        json!({"url": PUBLIC_URL, "events": ["package.*", "repository.published"],
               "subjects": ["repository:release/3.0/*"], "description": "CI"}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    let secret = created["secret"].as_str().expect("secret");
    assert!(secret.starts_with("whsec_"));
    assert!(cairn_callback::standard::WebhookSecret::parse(secret).is_ok());

    let (status, listed) = call(&app, "GET", "/v1/webhooks", Some(ALICE), Value::Null).await;
    assert_eq!(status, 200);
    assert_eq!(listed["webhooks"][0]["id"], id.as_str());
    assert!(
        !listed.to_string().contains("whsec_"),
        "no secret after creation: {listed}"
    );
    let (_, theirs) = call(&app, "GET", "/v1/webhooks", Some(BOB), Value::Null).await;
    assert_eq!(theirs["webhooks"], json!([]));
    for (method, uri, body) in [
        ("GET", format!("/v1/webhooks/{id}"), Value::Null),
        (
            "PATCH",
            format!("/v1/webhooks/{id}"),
            json!({"enabled": false}),
        ),
        ("DELETE", format!("/v1/webhooks/{id}"), Value::Null),
        ("POST", format!("/v1/webhooks/{id}/rotate"), Value::Null),
    ] {
        let (status, problem) = call(&app, method, &uri, Some(BOB), body).await;
        assert_eq!(status, 404, "{method} {uri} by another account: {problem}");
    }
    assert!(
        store
            .get_webhook(&id)
            .await
            .expect("store")
            .expect("kept")
            .enabled
    );

    let (status, off) = call(
        &app,
        "PATCH",
        &format!("/v1/webhooks/{id}"),
        Some(ALICE),
        json!({"enabled": false}),
    )
    .await;
    assert_eq!((status, &off["enabled"]), (200, &json!(false)), "{off}");
    assert_eq!(off["disabled_reason"], "disabled by its owner");
    let (_, on) = call(
        &app,
        "PATCH",
        &format!("/v1/webhooks/{id}"),
        Some(ALICE),
        json!({"enabled": true}),
    )
    .await;
    assert_eq!(
        (&on["enabled"], &on["disabled_reason"]),
        (&json!(true), &Value::Null)
    );

    let (status, _) = call(
        &app,
        "DELETE",
        &format!("/v1/webhooks/{id}"),
        Some(ALICE),
        Value::Null,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = call(
        &app,
        "GET",
        &format!("/v1/webhooks/{id}"),
        Some(ALICE),
        Value::Null,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn refused_urls_and_filters_store_nothing() {
    let (app, store) = world().await;
    let ok_events = json!(["package.stored"]);
    for (body, words) in [
        (
            json!({"url": "http://127.0.0.1:8080/hook", "events": ok_events}),
            "refused",
        ),
        (
            json!({"url": "http://169.254.169.254/latest/meta-data", "events": ok_events}),
            "refused",
        ),
        (
            json!({"url": "http://[::1]/hook", "events": ok_events}),
            "refused",
        ),
        (
            json!({"url": "http://10.1.2.3/hook", "events": ok_events}),
            "refused",
        ),
        (
            json!({"url": "http://0x7f000001/hook", "events": ok_events}),
            "refused",
        ),
        (
            json!({"url": "ftp://93.184.215.14/hook", "events": ok_events}),
            "refused",
        ),
        (
            json!({"url": "https://user:pw@93.184.215.14/hook", "events": ok_events}),
            "refused",
        ),
        (json!({"url": "not a url", "events": ok_events}), "refused"),
        (json!({"url": PUBLIC_URL, "events": []}), "at least one"),
        (
            json!({"url": PUBLIC_URL, "events": ["nonsense"]}),
            "unknown event type",
        ),
        (
            json!({"url": PUBLIC_URL, "events": ok_events, "subjects": ["user:alice"]}),
            "kind",
        ),
        (
            json!({"url": PUBLIC_URL, "events": ok_events, "secret": "mine"}),
            "unknown field",
        ),
    ] {
        let (status, problem) = call(&app, "POST", "/v1/webhooks", Some(ALICE), body.clone()).await;
        assert_eq!(status, 400, "{body}: {problem}");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(words), "{body}: {problem}");
    }
    let (status, _) = call(
        &app,
        "POST",
        "/v1/webhooks",
        None,
        json!({"url": PUBLIC_URL, "events": ok_events}),
    )
    .await;
    assert_eq!(status, 401);
    assert!(store.list_webhooks().await.expect("store").is_empty());
}

#[tokio::test]
async fn rotation_keeps_the_old_secret_for_its_grace_period_only() {
    let (app, store) = world().await;
    let (_, created) = call(
        &app,
        "POST",
        "/v1/webhooks",
        Some(ALICE),
        json!({"url": PUBLIC_URL, "events": ["*"]}),
    )
    .await;
    let id = created["id"].as_str().expect("id").to_string();
    let first = created["secret"].as_str().expect("secret").to_string();

    let (status, rotated) = call(
        &app,
        "POST",
        &format!("/v1/webhooks/{id}/rotate"),
        Some(ALICE),
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let second = rotated["secret"].as_str().expect("secret").to_string();
    assert_ne!(first, second);
    let hook = store.get_webhook(&id).await.expect("store").expect("hook");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert_eq!(hook.signing_secrets(now), [second.as_str(), first.as_str()]);
    assert_eq!(hook.signing_secrets(now + 24 * 3600 + 1), [second.as_str()]);

    let (_, again) = call(
        &app,
        "POST",
        &format!("/v1/webhooks/{id}/rotate"),
        Some(ALICE),
        json!({"grace_seconds": 0}),
    )
    .await;
    let third = again["secret"].as_str().expect("secret").to_string();
    let hook = store.get_webhook(&id).await.expect("store").expect("hook");
    assert_eq!(
        hook.signing_secrets(now),
        [third.as_str()],
        "older secrets end at once"
    );
    let (status, _) = call(
        &app,
        "POST",
        &format!("/v1/webhooks/{id}/rotate"),
        Some(ALICE),
        json!({"grace_seconds": -1}),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn replay_resends_what_the_hook_wants_since_a_cursor_or_a_time_in_bounded_calls() {
    use cairn_core::RepoPath;
    use cairn_core::events::NewEvent;
    let (app, store) = world().await;
    let (_, created) = call(
        &app,
        "POST",
        "/v1/webhooks",
        Some(ALICE),
        json!({"url": PUBLIC_URL, "events": ["package.deleted"]}),
    )
    .await;
    let id = created["id"].as_str().expect("id").to_string();
    let repo = RepoPath::parse("release/1/ubuntu/jammy").expect("valid");
    // Positions 1-10 at t=1..10 s: even ones are deletions, odd ones pings.
    for i in 1..=10_i64 {
        let mut event = if i % 2 == 0 {
            NewEvent::package_deleted(&repo, &format!("p{i}.deb"), "requested")
        } else {
            NewEvent::new(
                "ping",
                cairn_core::events::Subject::webhook("other"),
                json!({}),
            )
        };
        event.time_ms = i * 1000;
        store.append_for_test(&event);
    }
    let replay = |since: Value| {
        let app = app.clone();
        let uri = format!("/v1/webhooks/{id}/replay");
        async move { call(&app, "POST", &uri, Some(ALICE), json!({ "since": since })).await }
    };
    let queued = || {
        store
            .queued
            .lock()
            .expect("lock")
            .drain(..)
            .map(|(d, _)| d.seq)
            .collect::<Vec<_>>()
    };

    let (status, answer) = replay(json!(5)).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer, json!({"queued": 3, "next": "10", "complete": true}));
    assert_eq!(queued(), [6, 8, 10]);

    // A time: the events at or after it (1970-01-01T00:00:04Z is position 4).
    let (_, answer) = replay(json!("1970-01-01T00:00:04Z")).await;
    assert_eq!(answer["queued"], 4, "{answer}");
    assert_eq!(queued(), [4, 6, 8, 10]);
    let (_, answer) = replay(json!("1970-01-01T00:00:11Z")).await;
    assert_eq!(answer, json!({"queued": 0, "next": "10", "complete": true}));
    assert_eq!(queued(), Vec::<u64>::new());

    for bad in [json!("yesterday"), json!(-1), json!(null), json!([1])] {
        let (status, problem) = replay(bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {problem}");
    }
    let (status, _) = call(
        &app,
        "POST",
        &format!("/v1/webhooks/{id}/replay"),
        Some(BOB),
        json!({"since": 0}),
    )
    .await;
    assert_eq!(status, 404, "not bob's hook");
}

#[tokio::test]
async fn every_route_refuses_a_token_without_the_webhooks_scope() {
    let (app, store) = world().await;
    let (_, created) = call(
        &app,
        "POST",
        "/v1/webhooks",
        Some(ALICE),
        json!({"url": PUBLIC_URL, "events": ["ping"]}),
    )
    .await;
    let id = created["id"].as_str().expect("id").to_string();
    let token = store.issue_token_for_test("alice", &["upload:*", "events", "tokens"], 3600);
    let bearer = format!("Bearer {token}");
    for (method, uri, body) in [
        (
            "POST",
            "/v1/webhooks".to_string(),
            json!({"url": PUBLIC_URL, "events": ["ping"]}),
        ),
        ("GET", "/v1/webhooks".to_string(), Value::Null),
        ("GET", format!("/v1/webhooks/{id}"), Value::Null),
        (
            "PATCH",
            format!("/v1/webhooks/{id}"),
            json!({"enabled": false}),
        ),
        ("DELETE", format!("/v1/webhooks/{id}"), Value::Null),
        ("POST", format!("/v1/webhooks/{id}/rotate"), Value::Null),
        ("POST", format!("/v1/webhooks/{id}/ping"), Value::Null),
        ("GET", format!("/v1/webhooks/{id}/deliveries"), Value::Null),
        (
            "GET",
            format!("/v1/webhooks/{id}/deliveries/1"),
            Value::Null,
        ),
        (
            "POST",
            format!("/v1/webhooks/{id}/deliveries/1/redeliver"),
            Value::Null,
        ),
        (
            "POST",
            format!("/v1/webhooks/{id}/replay"),
            json!({"since": 0}),
        ),
    ] {
        let (status, problem) = call(&app, method, &uri, Some(&bearer), body).await;
        assert_eq!(status, 403, "{method} {uri}: {problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("scope webhooks"),
            "{problem}"
        );
    }
    let hook = store.get_webhook(&id).await.expect("store").expect("kept");
    assert!(hook.enabled, "not changed");
    assert_eq!(store.list_webhooks().await.expect("store").len(), 1);
    let token = store.issue_token_for_test("alice", &["webhooks"], 3600);
    let (status, listed) = call(
        &app,
        "GET",
        "/v1/webhooks",
        Some(&format!("Bearer {token}")),
        Value::Null,
    )
    .await;
    assert_eq!(
        (status, listed["webhooks"][0]["id"].as_str()),
        (200, Some(id.as_str()))
    );
}
