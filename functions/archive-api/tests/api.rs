//! The archive-api router driven in process against the in-memory ports: every
//! route needs credentials, refusals are problem documents, hostile origins and
//! callbacks are refused before anything is queued, and operations are their
//! submitter's only.

use archive_api::{App, router};
use axum::body::Body;
use axum::http::{Request, header};
use cairn_archive::memory::{MemoryArchives, MemoryOperations};
use cairn_archive::origin::FetchLimits;
use cairn_archive::tree::TreeLimits;
use cairn_archive::{Archiver, Operations, Settings};
use cairn_callback::AddressPolicy;
use cairn_core::auth::{UserRecord, hash_password};
use cairn_core::memory::{MemoryCatalog, MemoryStore};
use cairn_core::ports::UserDirectory;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

const ALICE: &str = "Basic YWxpY2U6c2VjcmV0"; // alice:secret
const BOB: &str = "Basic Ym9iOnNlY3JldA=="; // bob:secret

async fn world() -> (axum::Router, Arc<MemoryOperations>) {
    let (app, ops, _) = world_with_accounts().await;
    (app, ops)
}

async fn world_with_accounts() -> (axum::Router, Arc<MemoryOperations>, Arc<MemoryCatalog>) {
    let users = Arc::new(MemoryCatalog::default());
    for name in ["alice", "bob"] {
        users
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
    let ops = Arc::new(MemoryOperations::default());
    let app = App {
        users: users.clone(),
        repositories: users.clone(),
        builds: users.clone(),
        archiver: Archiver {
            catalog: Arc::new(MemoryArchives::default()),
            files: Arc::new(MemoryStore::default()),
            workspaces: None,
            settings: Settings {
                policy: AddressPolicy::default(),
                fetch: FetchLimits {
                    max_bytes: 1 << 20,
                    timeout: Duration::from_secs(5),
                },
                tree: TreeLimits {
                    max_objects: 10,
                    max_bytes: 1 << 20,
                },
                scratch: std::env::temp_dir(),
                archive_base_url: "http://archive.test".into(),
            },
        },
        operations: Operations {
            store: ops.clone(),
            queue: ops.clone(),
            callbacks: ops.clone(),
        },
        wait: Duration::from_millis(300),
    };
    (router(Arc::new(app)), ops, users)
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    auth: Option<&str>,
    body: &str,
) -> (u16, String, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(auth) = auth {
        req = req.header(header::AUTHORIZATION, auth);
    }
    let req = req
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    let response = app.clone().oneshot(req).await.expect("infallible");
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
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Method, path, credentials, body, expected status, words the detail must contain.
type Case = (
    &'static str,
    &'static str,
    Option<&'static str>,
    String,
    u16,
    &'static str,
);

#[tokio::test]
async fn refusals_are_problems_and_queue_nothing() {
    let (app, ops) = world().await;
    let archive = |url: &str| json!({"name": "demo", "url": url, "ref": "main"}).to_string();
    let big = format!(r#"{{"name": "{}"}}"#, "x".repeat(70_000));
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/v1/archives",
            None,
            archive("https://93.184.215.14/r.git"),
            401,
            "credentials",
        ),
        (
            "GET",
            "/v1/archives/demo",
            None,
            String::new(),
            401,
            "credentials",
        ),
        (
            "GET",
            "/v1/operations/0b7f4bd4-3f5e-4a4c-9d59-4c1f6d1c2e11",
            None,
            String::new(),
            401,
            "",
        ),
        (
            "POST",
            "/v1/archives",
            Some(ALICE),
            "{not json".into(),
            400,
            "not JSON",
        ),
        ("POST", "/v1/archives", Some(ALICE), big, 413, "65536"),
        (
            "POST",
            "/v1/archives",
            Some(ALICE),
            archive("http://127.0.0.1/r.git"),
            400,
            "refused",
        ),
        (
            "POST",
            "/v1/archives",
            Some(ALICE),
            archive("http://169.254.169.254/r.git"),
            400,
            "refused",
        ),
        (
            "POST",
            "/v1/archives",
            Some(ALICE),
            archive("file:///etc"),
            400,
            "",
        ),
        (
            "POST",
            "/v1/archives",
            Some(ALICE),
            archive("https://user:pw@93.184.215.14/r.git"),
            400,
            "",
        ),
        (
            "POST",
            "/v1/archives",
            Some(ALICE),
            json!({"name": "demo", "url": "https://93.184.215.14/r.git", "ref": "main",
                   "callback": {"url": "http://10.0.0.1/hook", "method": "POST"}})
            .to_string(),
            400,
            "callback URL refused",
        ),
        (
            "GET",
            "/v1/archives",
            Some(ALICE),
            String::new(),
            405,
            "GET",
        ),
        (
            "GET",
            "/v1/nothing",
            Some(ALICE),
            String::new(),
            404,
            "no route",
        ),
        (
            "GET",
            "/v1/archives/demo/cairn-xyz.tar.gz",
            Some(ALICE),
            String::new(),
            404,
            "cairn-<commit>",
        ),
    ];
    for (method, uri, auth, body, want, words) in cases {
        let (status, content_type, problem) = call(&app, method, uri, auth, &body).await;
        assert_eq!(status, want, "{method} {uri}: {problem}");
        assert_eq!(content_type, "application/problem+json", "{method} {uri}");
        assert_eq!(problem["status"], want);
        assert_eq!(problem["type"], "about:blank");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(words), "{method} {uri}: {problem}");
    }
    assert!(
        ops.submitted.lock().expect("lock").is_empty(),
        "nothing was queued"
    );
}

#[tokio::test]
async fn an_operation_is_visible_to_its_submitter_only() {
    let (app, ops) = world().await;
    let request = json!({"name": "demo", "url": "https://93.184.215.14/r.git", "ref": "main",
                         "callback": {"url": "https://93.184.215.14/hook", "method": "POST"}});
    let (status, _, body) = call(
        &app,
        "POST",
        "/v1/archives",
        Some(ALICE),
        &request.to_string(),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let id = body["callback"]["id"].as_str().expect("id").to_string();
    assert_eq!(*ops.submitted.lock().expect("lock"), vec![id.clone()]);

    let (status, _, body) = call(
        &app,
        "GET",
        &format!("/v1/operations/{id}"),
        Some(ALICE),
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for (method, uri) in [
        ("GET", format!("/v1/operations/{id}")),
        ("POST", format!("/cancel/{id}")),
    ] {
        let (status, content_type, _) = call(&app, method, &uri, Some(BOB), "").await;
        assert_eq!(
            (status, content_type.as_str()),
            (404, "application/problem+json"),
            "{method} {uri}"
        );
    }
    let (status, _, body) = call(&app, "POST", &format!("/cancel/{id}"), Some(ALICE), "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "cancelled");
}

#[tokio::test]
async fn every_route_refuses_a_token_without_its_scope() {
    let (app, ops, accounts) = world_with_accounts().await;
    let request = json!({"name": "demo", "url": "https://93.184.215.14/r.git", "ref": "main",
                         "callback": {"url": "https://93.184.215.14/hook", "method": "POST"}});
    let (status, _, body) = call(
        &app,
        "POST",
        "/v1/archives",
        Some(ALICE),
        &request.to_string(),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let id = body["callback"]["id"].as_str().expect("id").to_string();

    let token = accounts.issue_token_for_test("alice", &["archive:other*", "upload:*"], 3600);
    let bearer = format!("Bearer {token}");
    let clone = json!({"type": "git", "originRepoUrl": "https://93.184.215.14/demo.git",
                       "ref": "main", "name": "demo"});
    for (method, uri, body) in [
        ("POST", "/v1/archives".to_string(), request.to_string()),
        ("POST", "/clone".to_string(), clone.to_string()),
        ("POST", format!("/cancel/{id}"), String::new()),
        ("GET", format!("/v1/operations/{id}"), String::new()),
        ("GET", "/v1/archives/demo".to_string(), String::new()),
        (
            "GET",
            "/v1/archives/demo/cairn-1.tar.gz".to_string(),
            String::new(),
        ),
    ] {
        let (status, content_type, problem) = call(&app, method, &uri, Some(&bearer), &body).await;
        assert_eq!(
            (status, content_type.as_str()),
            (403, "application/problem+json"),
            "{method} {uri}: {problem}"
        );
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("archive:demo"),
            "{method} {uri}: {problem}"
        );
    }
    assert_eq!(
        ops.submitted.lock().expect("lock").len(),
        1,
        "nothing more queued"
    );
    let (status, _, body) = call(
        &app,
        "GET",
        &format!("/v1/operations/{id}"),
        Some(ALICE),
        "",
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("queued")),
        "not cancelled"
    );

    // Scoped to the name, the token reads the operation.
    let token = accounts.issue_token_for_test("alice", &["archive:dem*"], 3600);
    let (status, _, body) = call(
        &app,
        "GET",
        &format!("/v1/operations/{id}"),
        Some(&format!("Bearer {token}")),
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
}
