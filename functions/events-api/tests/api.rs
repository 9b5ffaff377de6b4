//! The events router in process over the in-memory log: pages and cursors, the
//! Server-Sent Events long-poll and its resumption, and who may read what.

use axum::body::Body;
use axum::http::{Request, header};
use cairn_core::RepoPath;
use cairn_core::auth::{UserRecord, hash_password};
use cairn_core::events::{NewEvent, Subject};
use cairn_core::memory::MemoryCatalog;
use cairn_core::ports::UserDirectory;
use events_api::{App, router};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

const ALICE: &str = "Basic YWxpY2U6c2VjcmV0"; // alice:secret

async fn world() -> (axum::Router, Arc<MemoryCatalog>) {
    let log = Arc::new(MemoryCatalog::default());
    log.put_user(&UserRecord {
        name: "alice".into(),
        password_hash: hash_password("secret"),
        role: Default::default(),
        tokens_after: 0,
        selectors: Vec::new(),
    })
    .await
    .expect("user");
    let repo = RepoPath::parse("release/1/ubuntu/jammy").expect("valid");
    log.append_for_test(&NewEvent::package_deleted(
        &repo,
        "a_1_amd64.deb",
        "requested",
    ));
    log.append_for_test(&NewEvent::new(
        "archive.created",
        Subject::archive("demo"),
        json!({}),
    ));
    log.append_for_test(&NewEvent::package_deleted(
        &repo,
        "b_1_amd64.deb",
        "retention",
    ));
    let seed = serde_json::from_str(
        r#"{"kinds":["release"],"series":["1","2"],
            "dists":{"ubuntu":{"format":"deb","versions":["jammy","noble"]}}}"#,
    )
    .expect("seed");
    let app = App {
        events: log.clone(),
        users: log.clone(),
        repositories: log.clone(),
        seed,
        wait: Duration::from_millis(600),
        poll: Duration::from_millis(50),
    };
    (router(Arc::new(app)), log)
}

async fn send(
    app: &axum::Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
) -> axum::response::Response {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    app.clone()
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("infallible")
}

async fn get(app: &axum::Router, uri: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let response = send(app, "GET", uri, headers).await;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (
        status,
        content_type,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

fn seqs(body: &str) -> Vec<u64> {
    let page: Value = serde_json::from_str(body).expect("json");
    page["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["seq"].as_u64().expect("seq"))
        .collect()
}

/// The `id:` lines of an event-stream body.
fn ids(body: &str) -> Vec<u64> {
    body.lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .map(|id| id.parse().expect("numeric id"))
        .collect()
}

#[tokio::test]
async fn pages_resume_after_their_cursor_and_anonymous_readers_see_repositories_only() {
    let (app, _) = world().await;
    let (status, _, body) = get(&app, "/v1/events", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(seqs(&body), [1, 3], "the archive event needs credentials");
    let (_, _, body) = get(&app, "/v1/events", &[("authorization", ALICE)]).await;
    assert_eq!(seqs(&body), [1, 2, 3]);
    let (_, _, body) = get(
        &app,
        "/v1/events?after=1&limit=1",
        &[("authorization", ALICE)],
    )
    .await;
    assert_eq!(seqs(&body), [2]);
    let next: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(next["next"], "2");
    let (_, _, body) = get(
        &app,
        "/v1/events?types=archive.*",
        &[("authorization", ALICE)],
    )
    .await;
    assert_eq!(seqs(&body), [2]);
    let (_, _, body) = get(
        &app,
        "/v1/events?subject=repository:release/1/ubuntu/jammy&after=1",
        &[],
    )
    .await;
    assert_eq!(seqs(&body), [3]);
}

#[tokio::test]
async fn bad_queries_are_problems() {
    let (app, _) = world().await;
    for (uri, status, words) in [
        ("/v1/events?after=abc", 400, "cursor"),
        ("/v1/events?types=nonsense", 400, "unknown event type"),
        ("/v1/events?subject=user:alice", 400, "subject kind"),
        ("/v1/events?subject=archive:demo", 401, "credentials"),
        ("/v1/events?limit=0", 400, "limit"),
    ] {
        let (got, content_type, body) = get(&app, uri, &[]).await;
        assert_eq!(got, status, "{uri}: {body}");
        assert_eq!(content_type, "application/problem+json");
        assert!(body.contains(words), "{uri}: {body}");
    }
    let (got, _, _) = get(
        &app,
        "/v1/events",
        &[("authorization", "Basic YWxpY2U6d3Jvbmc=")],
    )
    .await;
    assert_eq!(
        got, 401,
        "wrong credentials are refused, not read as anonymous"
    );
}

#[tokio::test]
async fn the_stream_resumes_after_last_event_id_and_waits_for_new_events() {
    let (app, log) = world().await;
    let sse = [("accept", "text/event-stream"), ("authorization", ALICE)];
    let (status, content_type, body) = get(&app, "/v1/events?after=0", &sse).await;
    assert_eq!((status, content_type.as_str()), (200, "text/event-stream"));
    assert_eq!(ids(&body), [1, 2, 3]);
    assert!(body.starts_with("retry: "), "{body}");

    // Reconnecting with Last-Event-ID resumes after it, whatever `after` says.
    let mut resume = sse.to_vec();
    resume.push(("last-event-id", "2"));
    let (_, _, body) = get(&app, "/v1/events?after=0", &resume).await;
    assert_eq!(ids(&body), [3]);

    // Nothing new: the request waits, then answers a comment and the cursor.
    let (_, _, body) = get(&app, "/v1/events", &sse).await;
    assert!(body.contains(": no new events"), "{body}");
    assert_eq!(ids(&body), [3]);

    // An event committed while a request waits is answered at once.
    let writer = log.clone();
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let repo = RepoPath::parse("release/1/ubuntu/jammy").expect("valid");
        writer.append_for_test(&NewEvent::package_deleted(
            &repo,
            "c_1_amd64.deb",
            "requested",
        ));
    });
    let (_, _, body) = get(&app, "/v1/events", &sse).await;
    late.await.expect("writer");
    assert_eq!(ids(&body), [4], "{body}");
    assert!(body.contains("c_1_amd64.deb"));
}

fn next(body: &str) -> String {
    let page: Value = serde_json::from_str(body).expect("json");
    page["next"].as_str().expect("next").to_string()
}

#[tokio::test]
async fn last_reads_the_newest_events_and_the_cursor_to_follow_them() {
    let (app, _) = world().await;
    let jammy = "subject=repository:release/1/ubuntu/jammy";
    let (status, _, body) = get(&app, &format!("/v1/events?{jammy}&last=1"), &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((seqs(&body), next(&body)), (vec![3], "3".to_string()));
    let (_, _, body) = get(&app, &format!("/v1/events?{jammy}&last=50"), &[]).await;
    assert_eq!(seqs(&body), [1, 3], "oldest first");

    // The overall log's last two positions hold an archive event, which an anonymous
    // reader does not see; the cursor still passes it.
    let (_, _, body) = get(&app, "/v1/events?last=2", &[]).await;
    assert_eq!((seqs(&body), next(&body)), (vec![3], "3".to_string()));

    // A subject without events yet follows on from the head of the log.
    let (_, _, body) = get(
        &app,
        "/v1/events?subject=repository:release/2/ubuntu/noble&last=5",
        &[],
    )
    .await;
    assert_eq!((seqs(&body), next(&body)), (vec![], "3".to_string()));

    for (uri, headers) in [
        ("/v1/events?last=0", vec![]),
        ("/v1/events?last=101", vec![]),
        ("/v1/events?last=5&after=1", vec![]),
        ("/v1/events?last=5&types=ping", vec![]),
        ("/v1/events?last=5", vec![("accept", "text/event-stream")]),
    ] {
        let (status, _, body) = get(&app, uri, &headers).await;
        assert_eq!(status, 400, "{uri}: {body}");
        assert!(body.contains("last"), "{uri}: {body}");
    }
}

#[tokio::test]
async fn pages_on_other_origins_may_read_the_log() {
    let (app, _) = world().await;
    for (method, uri, status) in [
        ("GET", "/v1/events", 200),
        ("GET", "/v1/events?after=x", 400),
        ("OPTIONS", "/v1/events", 204),
    ] {
        let response = send(&app, method, uri, &[("origin", "https://pages.example")]).await;
        assert_eq!(response.status().as_u16(), status, "{method} {uri}");
        assert_eq!(
            response.headers()["access-control-allow-origin"],
            "*",
            "{method} {uri}"
        );
    }
    let response = send(&app, "OPTIONS", "/v1/events", &[]).await;
    let allowed = response.headers()["access-control-allow-headers"]
        .to_str()
        .expect("text")
        .to_ascii_lowercase();
    assert!(allowed.contains("last-event-id") && allowed.contains("authorization"));
}

#[tokio::test]
async fn the_accounts_own_events_need_the_events_scope() {
    let (app, log) = world().await;
    log.append_for_test(&NewEvent::new(
        "ping",
        Subject::webhook("w1"),
        json!({"webhook": "w1", "owner": "alice"}),
    ));
    let without = log.issue_token_for_test("alice", &["upload:*"], 3600);
    let with = log.issue_token_for_test("alice", &["events"], 3600);
    let (status, _, body) = get(
        &app,
        "/v1/events?subject=webhook:w1",
        &[("authorization", &format!("Bearer {without}"))],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("scope events"), "{body}");
    // The whole log: without the scope, what any account sees (no webhook events).
    let (_, _, body) = get(
        &app,
        "/v1/events",
        &[("authorization", &format!("Bearer {without}"))],
    )
    .await;
    assert!(!seqs(&body).contains(&4), "{body}");
    let (status, _, body) = get(
        &app,
        "/v1/events?subject=webhook:w1",
        &[("authorization", &format!("Bearer {with}"))],
    )
    .await;
    assert_eq!((status, seqs(&body)), (200, vec![4]), "{body}");
}

#[tokio::test]
async fn a_private_repositorys_events_are_for_its_readers() {
    use cairn_core::repositories::{NewRepository, RepositoryStore};
    let (app, log) = world().await;
    for (path, visibility) in [
        ("team/db/ubuntu/noble", "private"),
        ("team/pub/ubuntu/noble", "public"),
    ] {
        let new: NewRepository = serde_json::from_value(json!({
            "format": "apt", "path": path, "visibility": visibility
        }))
        .expect("request");
        let repo = new.validate("alice", 1).expect("valid");
        assert!(log.create_repository(&repo).await.expect("store"));
        log.append_for_test(&NewEvent::package_deleted(
            &RepoPath::parse(path).expect("valid"),
            "secret_1_all.deb",
            "requested",
        ));
    }
    // A repository deleted since: its visibility is unknown, its events hidden.
    log.append_for_test(&NewEvent::package_deleted(
        &RepoPath::parse("team/gone/ubuntu/noble").expect("valid"),
        "x_1_all.deb",
        "requested",
    ));
    let subjects = |body: &Value| -> Vec<String> {
        body["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| e["subject"].as_str().unwrap_or_default().to_string())
            .filter(|s| s.starts_with("repository:team/"))
            .collect()
    };
    let page = |body: String| -> Value { serde_json::from_str(&body).expect("json") };
    let anonymous = page(get(&app, "/v1/events", &[]).await.2);
    assert_eq!(subjects(&anonymous), ["repository:team/pub/ubuntu/noble"]);
    let owner = page(get(&app, "/v1/events", &[("authorization", ALICE)]).await.2);
    assert_eq!(
        subjects(&owner),
        [
            "repository:team/db/ubuntu/noble",
            "repository:team/pub/ubuntu/noble"
        ]
    );
    for uri in [
        "/v1/events?subject=repository:team/db/ubuntu/noble",
        "/v1/events?subject=repository:team/db/ubuntu/noble&last=5",
    ] {
        let (status, _, body) = get(&app, uri, &[]).await;
        assert_eq!(
            (status, subjects(&page(body.clone())).len()),
            (200, 0),
            "{uri}: {body}"
        );
    }
}

#[tokio::test]
async fn the_openapi_description_is_served_to_anyone() {
    let (app, _) = world().await;
    let (status, content_type, body) = get(&app, "/v1/openapi.json", &[]).await;
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    let doc: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert!(doc["openapi"].as_str().expect("version").starts_with("3.1"));
    // The document describes itself, and every endpoint group's routes.
    for path in [
        "/v1/openapi.json",
        "/v1/events",
        "/v1/tokens",
        "/v1/files/{key+}",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path}");
    }
}
