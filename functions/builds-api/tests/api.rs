//! The builds router in process over the in-memory stores: a project file's refusal
//! names its line, a worker takes a job with a token for it alone, streams its log,
//! and reports; the build records it.

use axum::body::Body;
use axum::http::{Request, header};
use builds_api::{App, router};
use cairn_core::access::Role;
use cairn_core::auth::{UserRecord, hash_password};
use cairn_core::builds::{Artifacts, Builds, Ticks};
use cairn_core::memory::MemoryCatalog;
use cairn_core::ports::UserDirectory;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;

const ALICE: &str = "Basic YWxpY2U6c2VjcmV0"; // alice:secret (uploader)
const OPS: &str = "Basic b3BzOnNlY3JldA=="; // ops:secret (admin)

#[derive(Default)]
struct Clock(Mutex<Vec<String>>);

#[async_trait::async_trait]
impl Ticks for Clock {
    async fn schedule(&self, id: &str) {
        self.0.lock().expect("lock").push(id.to_string());
    }

    async fn dispatch(&self, _id: &str) {}
}

async fn world() -> (axum::Router, Arc<Clock>) {
    let store = Arc::new(MemoryCatalog::default());
    for (name, role) in [("alice", Role::Uploader), ("ops", Role::Admin)] {
        store
            .put_user(&UserRecord {
                name: name.into(),
                password_hash: hash_password("secret"),
                role,
                tokens_after: 0,
                selectors: Vec::new(),
            })
            .await
            .expect("user");
    }
    let clock = Arc::new(Clock::default());
    let app = App {
        users: store.clone(),
        builds: Builds {
            store: store.clone(),
            tokens: store.clone(),
            logs: store.clone(),
            blobs: store.clone(),
            ticks: clock.clone(),
            lease_ms: 60_000,
        },
        artifacts: Artifacts {
            projects: store.clone(),
            index: store.clone(),
            blobs: store,
            retention_days: 30,
        },
        max_wait: Duration::from_secs(1),
    };
    (router(Arc::new(app)), clock)
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    auth: &str,
    content_type: &str,
    body: impl Into<Body>,
) -> (u16, Value, axum::http::HeaderMap) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, auth)
        .header(header::CONTENT_TYPE, content_type)
        .body(body.into())
        .expect("request");
    let response = app.clone().oneshot(req).await.expect("infallible");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 8 << 20)
        .await
        .expect("body");
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value, headers)
}

const PROJECT: &str = "\
parameters:
  greeting: hello
pipelines:
  - name: build
    actions:
      - action: shell
        script: echo $greeting
";

#[tokio::test]
async fn a_worker_takes_a_job_streams_its_log_and_reports() {
    let (app, clock) = world().await;
    let yaml = "application/yaml";
    let (status, body, _) = call(
        &app,
        "PUT",
        "/v1/projects/hello",
        ALICE,
        yaml,
        "pipelines:\n  - name: p\n    actions:\n      - action: compile\n",
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["line"], 4, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("unknown action \"compile\"")),
        "{body}"
    );
    let (status, _, _) = call(&app, "PUT", "/v1/projects/hello", ALICE, yaml, PROJECT).await;
    assert_eq!(status, 201);
    let (status, _, _) = call(&app, "PUT", "/v1/projects/hello", ALICE, yaml, PROJECT).await;
    assert_eq!(status, 200, "redefined");
    let (status, build, _) = call(
        &app,
        "POST",
        "/v1/projects/hello/builds",
        ALICE,
        "application/json",
        json!({"parameters": {"greeting": "hi"}}).to_string(),
    )
    .await;
    assert_eq!(status, 201, "{build}");
    let id = build["id"].as_str().expect("id").to_string();
    assert_eq!(*clock.0.lock().expect("lock"), vec![id.clone()]);
    // Only a worker credential takes work.
    let work = json!({"worker": "w1", "labels": ["dpkg"], "wait": 0}).to_string();
    let (status, _, _) = call(
        &app,
        "POST",
        "/v1/work",
        ALICE,
        "application/json",
        work.clone(),
    )
    .await;
    assert_eq!(status, 403);
    let (status, job, _) = call(
        &app,
        "POST",
        "/v1/work",
        OPS,
        "application/json",
        work.clone(),
    )
    .await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["parameters"]["greeting"], "hi");
    assert_eq!(job["action"]["script"], "echo $greeting");
    let (status, _, _) = call(&app, "POST", "/v1/work", OPS, "application/json", work).await;
    assert_eq!(status, 204, "one job, taken once");
    let token = format!("Bearer {}", job["token"].as_str().expect("token"));
    let base = format!("/v1/builds/{id}/jobs/{}", job["job"].as_str().expect("job"));
    let (status, beat, _) = call(
        &app,
        "POST",
        &format!("{base}/heartbeat"),
        &token,
        "application/json",
        "",
    )
    .await;
    assert_eq!((status, beat["state"].as_str()), (200, Some("continue")));
    for (offset, chunk) in [(0, "hi\n"), (3, "there\n")] {
        let (status, _, _) = call(
            &app,
            "POST",
            &format!("{base}/log?offset={offset}"),
            &token,
            "application/octet-stream",
            chunk,
        )
        .await;
        assert_eq!(status, 204);
    }
    let (status, log, headers) = call(
        &app,
        "GET",
        &format!("/v1/builds/{id}/log?step=0&offset=1"),
        ALICE,
        "",
        "",
    )
    .await;
    assert_eq!((status, log.as_str()), (200, Some("i\nthere\n")));
    assert_eq!(
        headers["cairn-log-complete"], "false",
        "the step still runs"
    );
    assert_eq!(headers["cairn-log-next-offset"], "9");
    // The job's token is for the job: not for the owner's other business.
    let (status, _, _) = call(&app, "GET", "/v1/projects/hello", &token, "", "").await;
    assert_eq!(status, 404);
    let (status, after, _) = call(
        &app,
        "POST",
        &format!("{base}/result"),
        &token,
        "application/json",
        json!({"exit_code": 3, "stderr_tail": "boom"}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["state"], "failed");
    assert_eq!(after["steps"][0]["exit_code"], 3);
    assert_eq!(after["steps"][0]["stderr_tail"], "boom");
    assert!(
        after["steps"][0].get("job_token").is_none(),
        "no credentials in the record"
    );
    // Reported once; the token is gone.
    let (status, _, _) = call(
        &app,
        "POST",
        &format!("{base}/result"),
        &token,
        "application/json",
        json!({"exit_code": 0}).to_string(),
    )
    .await;
    assert_eq!(status, 401);
    let (_, _, headers) = call(
        &app,
        "GET",
        &format!("/v1/builds/{id}/log?step=0&offset=9"),
        ALICE,
        "",
        "",
    )
    .await;
    assert_eq!(headers["cairn-log-complete"], "true");
    let (status, list, _) = call(&app, "GET", "/v1/builds?project=hello", ALICE, "", "").await;
    assert_eq!(
        (status, list["builds"].as_array().map(Vec::len)),
        (200, Some(1))
    );
    let (status, _, _) = call(
        &app,
        "POST",
        &format!("/v1/builds/{id}/cancel"),
        ALICE,
        "",
        "",
    )
    .await;
    assert_eq!(status, 409, "over already");
}
