//! The repositories router in process over the in-memory ports: who may create,
//! see, change and delete which repository, and what bad requests are told.

use axum::body::Body;
use axum::http::{Request, header};
use cairn_core::Config;
use cairn_core::access::Role;
use cairn_core::auth::{UserRecord, hash_password};
use cairn_core::memory::external::{MemoryApps, MemorySource, MemoryVault};
use cairn_core::memory::{MemoryCatalog, MemoryStore};
use cairn_core::ports::UserDirectory;
use cairn_core::repositories::RepositoryStore;
use repositories_api::{App, router};
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

fn basic(user: &str) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:secret"));
    format!("Basic {encoded}")
}

/// The external repositories' fakes a world shares with its router.
struct Externals {
    apps: Arc<MemoryApps>,
    source: Arc<MemorySource>,
    vault: Arc<MemoryVault>,
}

async fn world() -> (axum::Router, Arc<MemoryCatalog>) {
    let (router, catalog, _) = world_with_externals().await;
    (router, catalog)
}

async fn world_with_externals() -> (axum::Router, Arc<MemoryCatalog>, Externals) {
    let catalog = Arc::new(MemoryCatalog::default());
    for (name, role, selectors) in [
        ("alice", Role::Uploader, vec![]),
        ("dba", Role::Reader, vec!["team=db".to_string()]),
        ("webdev", Role::Uploader, vec!["team in (web)".to_string()]),
        ("root", Role::Admin, vec![]),
    ] {
        catalog
            .put_user(&UserRecord {
                name: name.into(),
                password_hash: hash_password("secret"),
                role,
                tokens_after: 0,
                selectors,
            })
            .await
            .expect("user");
    }
    let supported = r#"{"kinds":["release"],"series":["1"],
        "dists":{"ubuntu":{"format":"deb","versions":["jammy"]}}}"#;
    let config = Config::from_lookup(|k| {
        let v = match k {
            "CAIRN_SUPPORTED_REPOS" => supported,
            "CAIRN_REPO_BASE_URL" => "https://repo.example",
            "CAIRN_TABLE"
            | "CAIRN_REPO_BUCKET"
            | "CAIRN_STAGING_BUCKET"
            | "CAIRN_SYNC_QUEUE_URL" => "test",
            _ => return None,
        };
        Some(v.to_string())
    })
    .expect("config");
    let externals = Externals {
        apps: Arc::new(MemoryApps::default()),
        source: Arc::new(MemorySource::default()),
        vault: Arc::new(MemoryVault::default()),
    };
    let app = App {
        users: catalog.clone(),
        repositories: catalog.clone(),
        catalog: catalog.clone(),
        files: Arc::new(MemoryStore::default()),
        queue: catalog.clone(),
        config,
        apps: externals.apps.clone(),
        source: externals.source.clone(),
        vault: externals.vault.clone(),
        index_queue: externals.apps.clone(),
        events: catalog.clone(),
    };
    (router(Arc::new(app)), catalog, externals)
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    auth: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(auth) = auth {
        req = req.header(header::AUTHORIZATION, auth);
    }
    let body = if body.is_null() {
        Body::empty()
    } else {
        Body::from(body.to_string())
    };
    let response = app
        .clone()
        .oneshot(req.body(body).expect("request"))
        .await
        .expect("infallible");
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn paths(body: &Value) -> Vec<String> {
    body["repositories"]
        .as_array()
        .expect("list")
        .iter()
        .filter(|r| r["configured"] == false)
        .map(|r| r["path"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn create_show_list_update_delete() {
    let (app, catalog) = world().await;
    let alice = basic("alice");
    let (status, body) = call(
        &app,
        "POST",
        "/v1/repositories",
        Some(&alice),
        json!({"format": "yum", "path": "team/db/el/9", "description": "DB builds",
               "visibility": "private", "labels": {"team": "db"}}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["format"], "yum");
    assert_eq!(body["owners"], json!(["alice"]));
    assert_eq!(
        body["sync"]["queued"], true,
        "the empty repository is published"
    );
    assert_eq!(body["packages"], "/team/db/el/9");

    let (status, body) = call(
        &app,
        "GET",
        "/v1/repositories/team/db/el/9",
        Some(&alice),
        Value::Null,
    )
    .await;
    assert_eq!(
        (status, body["visibility"].clone()),
        (200, json!("private")),
        "{body}"
    );

    // Seen by its owner, by an account whose selector matches, by admins; 404 to
    // the rest, as a repository that does not exist.
    for (who, sees) in [
        (Some(basic("alice")), true),
        (Some(basic("dba")), true),
        (Some(basic("root")), true),
        (Some(basic("webdev")), false),
        (None, false),
    ] {
        let (status, body) = call(
            &app,
            "GET",
            "/v1/repositories/team/db/el/9",
            who.as_deref(),
            Value::Null,
        )
        .await;
        assert_eq!(status, if sees { 200 } else { 404 }, "{who:?}: {body}");
        let (_, body) = call(&app, "GET", "/v1/repositories", who.as_deref(), Value::Null).await;
        assert_eq!(
            paths(&body).contains(&"team/db/el/9".to_string()),
            sees,
            "{who:?}: {body}"
        );
    }
    let (_, body) = call(&app, "GET", "/v1/repositories", None, Value::Null).await;
    assert!(
        body["repositories"]
            .as_array()
            .expect("list")
            .iter()
            .any(|r| r["path"] == "release/1/ubuntu/jammy" && r["configured"] == true),
        "{body}"
    );

    // Selectors in the query.
    let (_, body) = call(
        &app,
        "GET",
        "/v1/repositories?selector=team%3Ddb",
        Some(&alice),
        Value::Null,
    )
    .await;
    assert_eq!(paths(&body), ["team/db/el/9"]);
    let (_, body) = call(
        &app,
        "GET",
        "/v1/repositories?selector=team%21%3Ddb",
        Some(&alice),
        Value::Null,
    )
    .await;
    assert!(paths(&body).is_empty(), "{body}");

    // Changes: owners only, and what they send is checked.
    let (status, body) = call(
        &app,
        "PATCH",
        "/v1/repositories/team/db/el/9",
        Some(&basic("webdev")),
        json!({"description": "mine"}),
    )
    .await;
    assert_eq!(status, 404, "webdev does not even see it: {body}");
    let (status, body) = call(
        &app,
        "PATCH",
        "/v1/repositories/team/db/el/9",
        Some(&basic("dba")),
        json!({"description": "mine"}),
    )
    .await;
    assert_eq!(status, 403, "dba sees it, does not own it: {body}");
    let (status, body) = call(
        &app,
        "PATCH",
        "/v1/repositories/team/db/el/9",
        Some(&alice),
        json!({"visibility": "public", "owners": ["alice", "webdev"]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["visibility"].clone(), body["version"].clone()),
        (json!("public"), json!(2))
    );
    let (status, body) = call(
        &app,
        "PATCH",
        "/v1/repositories/team/db/el/9",
        Some(&alice),
        json!({"path": "x/y/z/w"}),
    )
    .await;
    assert_eq!(status, 400, "the path is not changed by a PATCH: {body}");

    // Deletion: an empty repository goes at once; the path is free again.
    let (status, body) = call(
        &app,
        "DELETE",
        "/v1/repositories/team/db/el/9",
        Some(&basic("dba")),
        Value::Null,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = call(
        &app,
        "DELETE",
        "/v1/repositories/team/db/el/9",
        Some(&basic("webdev")),
        Value::Null,
    )
    .await;
    assert_eq!(status, 204, "a co-owner deletes");
    assert!(
        catalog
            .get_repository("team/db/el/9")
            .await
            .expect("get")
            .is_none()
    );
    let (status, _) = call(
        &app,
        "GET",
        "/v1/repositories/team/db/el/9",
        Some(&alice),
        Value::Null,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn every_route_refuses_a_credential_without_its_scope() {
    let (app, catalog) = world().await;
    let (status, _) = call(
        &app,
        "POST",
        "/v1/repositories",
        Some(&basic("alice")),
        json!({"format": "helm", "path": "team/a/helm/stable"}),
    )
    .await;
    assert_eq!(status, 201);
    // alice's token without `repositories`, and one scoped elsewhere.
    for scopes in [&["upload", "read"][..], &["repositories:other/*"][..]] {
        let token = format!(
            "Bearer {}",
            catalog.issue_token_for_test("alice", scopes, 3600)
        );
        for (method, uri, body) in [
            (
                "POST",
                "/v1/repositories",
                json!({"format": "helm", "path": "team/b/helm/stable"}),
            ),
            (
                "PATCH",
                "/v1/repositories/team/a/helm/stable",
                json!({"description": "x"}),
            ),
            ("DELETE", "/v1/repositories/team/a/helm/stable", Value::Null),
        ] {
            let (status, body) = call(&app, method, uri, Some(&token), body).await;
            assert_eq!(status, 403, "{scopes:?} {method} {uri}: {body}");
            let detail = body["detail"].as_str().unwrap_or_default();
            assert!(detail.contains("repositories:team/"), "{detail}");
        }
    }
    // A reader's password has no `repositories`; no credential at all is a 401.
    let (status, _) = call(
        &app,
        "POST",
        "/v1/repositories",
        Some(&basic("dba")),
        json!({"format": "helm", "path": "team/c/helm/stable"}),
    )
    .await;
    assert_eq!(status, 403);
    for (method, uri) in [
        ("POST", "/v1/repositories"),
        ("PATCH", "/v1/repositories/team/a/helm/stable"),
        ("DELETE", "/v1/repositories/team/a/helm/stable"),
    ] {
        let (status, _) = call(&app, method, uri, None, json!({})).await;
        assert_eq!(status, 401, "{method} {uri}");
    }
    assert_eq!(catalog.list_repositories().await.expect("list").len(), 1);
}

#[tokio::test]
async fn bad_requests_get_clear_refusals_and_store_nothing() {
    let (app, catalog) = world().await;
    let alice = basic("alice");
    for (body, words) in [
        (
            json!({"format": "apt", "path": "team/../x/y"}),
            "invalid repository path",
        ),
        (
            json!({"format": "apt", "path": "a/b/c"}),
            "invalid repository path",
        ),
        (json!({"format": "zip", "path": "a/b/c/d"}), "format"),
        (
            json!({"format": "apt", "path": "a/b/c/d", "labels": {"team": "db db"}}),
            "label value",
        ),
        (
            json!({"format": "apt", "path": "a/b/c/d", "visibility": "hidden"}),
            "unknown variant",
        ),
        (
            json!({"format": "apt", "path": "a/b/c/d", "owner": "x"}),
            "unknown field",
        ),
        (
            json!({"format": "apt", "path": "a/b/c/d", "description": "x".repeat(1001)}),
            "description",
        ),
        (
            json!({"format": "apt", "path": "release/1/ubuntu/jammy"}),
            "configured by the deployment",
        ),
    ] {
        let (status, problem) =
            call(&app, "POST", "/v1/repositories", Some(&alice), body.clone()).await;
        assert!(matches!(status, 400 | 409), "{body}: {status} {problem}");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(words), "{body}: {detail}");
    }
    for (query, words) in [
        ("selector=team%3D%3D%3Dx", "expected"),
        ("selector=env+in+(prod", "in"),
        ("selector=a%3Db%2C%2C", ""),
        ("selector=%21", ""),
    ] {
        let (status, problem) = call(
            &app,
            "GET",
            &format!("/v1/repositories?{query}"),
            Some(&alice),
            Value::Null,
        )
        .await;
        assert_eq!(status, 400, "{query}: {problem}");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(
            detail.starts_with("selector") && detail.contains(words),
            "{query}: {detail}"
        );
    }
    let long = format!("selector={}", "a".repeat(5000));
    let (status, _) = call(
        &app,
        "GET",
        &format!("/v1/repositories?{long}"),
        Some(&alice),
        Value::Null,
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = call(
        &app,
        "DELETE",
        "/v1/repositories/a/b/c/d?force=maybe",
        Some(&alice),
        Value::Null,
    )
    .await;
    assert_eq!(status, 400);
    assert!(catalog.list_repositories().await.expect("list").is_empty());
}

#[tokio::test]
async fn external_repositories_are_checked_then_indexed_into_apps() {
    use cairn_core::repositories::external::{Credentials, Indexer};
    let (app, catalog, ext) = world_with_externals().await;
    let url = "https://charts.example.org";
    let right = Credentials {
        username: "ci".into(),
        password: "right".into(),
    };
    ext.source.serve(
        url,
        "apiVersion: v1\nentries:\n  nginx:\n  - version: 1.0.0\n    description: web\n",
        Some(right.clone()),
    );
    let body = |password: &str| {
        json!({"format": "external-helm", "name": "stable", "url": url,
               "credentials": {"username": "ci", "password": password}})
    };
    // validate: the same check, nothing stored; the scope is needed.
    let (status, checked) = call(
        &app,
        "POST",
        "/v1/repositories/validate",
        Some(&basic("alice")),
        json!({"url": url, "credentials": {"username": "ci", "password": "right"}}),
    )
    .await;
    assert_eq!(
        (status, checked["versions"].clone()),
        (200, json!(1)),
        "{checked}"
    );
    let (status, _) = call(
        &app,
        "POST",
        "/v1/repositories/validate",
        Some(&basic("dba")),
        json!({"url": url}),
    )
    .await;
    assert_eq!(status, 403);
    // Wrong credentials: a clear 400, nothing stored anywhere.
    let (status, refused) = call(
        &app,
        "POST",
        "/v1/repositories",
        Some(&basic("alice")),
        body("wrong"),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("credentials"),
        "{refused}"
    );
    assert!(catalog.list_repositories().await.expect("list").is_empty());
    assert!(ext.vault.secrets.lock().expect("lock").is_empty());
    // Right ones: created, first run queued, the password nowhere in the answer.
    let (status, created) = call(
        &app,
        "POST",
        "/v1/repositories",
        Some(&basic("alice")),
        body("right"),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["path"], "external/stable");
    assert_eq!(created["username"], "ci");
    assert!(!created.to_string().contains("right"), "{created}");
    assert_eq!(ext.apps.requested.lock().expect("lock").len(), 1);
    // The indexer's run (the queue's consumer), then the apps.
    let indexer = Indexer {
        store: catalog.as_ref(),
        source: ext.source.as_ref(),
        vault: ext.vault.as_ref(),
        apps: ext.apps.as_ref(),
        hosted: None,
    };
    indexer
        .run("external/stable", "created", 1)
        .await
        .expect("run");
    let (status, apps) = call(&app, "GET", "/v1/apps?q=ngi", None, Value::Null).await;
    assert_eq!(status, 200);
    assert_eq!(apps["apps"][0]["name"], "nginx", "{apps}");
    assert_eq!(apps["apps"][0]["repository"], "external/stable");
    let (status, versions) = call(&app, "GET", "/v1/apps/nginx/versions", None, Value::Null).await;
    assert_eq!(
        (status, versions["versions"][0]["version"].clone()),
        (200, json!("1.0.0"))
    );
    let (status, _) = call(&app, "GET", "/v1/apps/absent/versions", None, Value::Null).await;
    assert_eq!(status, 404);
    let (status, shown) = call(
        &app,
        "GET",
        "/v1/repositories/external/stable",
        None,
        Value::Null,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(shown["index"]["versions"], 1, "{shown}");
    assert_eq!(shown["last_run"]["status"], "indexed", "{shown}");
    // Runs on demand: owners only.
    let (status, _) = call(
        &app,
        "POST",
        "/v1/repositories/external/stable/index",
        Some(&basic("webdev")),
        Value::Null,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(
        &app,
        "POST",
        "/v1/repositories/external/stable/index",
        Some(&basic("alice")),
        Value::Null,
    )
    .await;
    assert_eq!(status, 202);
    // Deleted: its apps and credentials go.
    let (status, _) = call(
        &app,
        "DELETE",
        "/v1/repositories/external/stable",
        Some(&basic("alice")),
        Value::Null,
    )
    .await;
    assert_eq!(status, 204);
    let (_, apps) = call(&app, "GET", "/v1/apps", None, Value::Null).await;
    assert_eq!(apps["apps"], json!([]));
    assert!(ext.vault.secrets.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn external_and_archive_routes_refuse_a_credential_without_its_scope() {
    let (app, catalog, ext) = world_with_externals().await;
    let url = "https://charts.example.org";
    ext.source.serve(url, "apiVersion: v1\nentries: {}\n", None);
    for body in [
        json!({"format": "external-helm", "name": "stable", "url": url}),
        json!({"format": "archive", "name": "src", "visibility": "private"}),
    ] {
        let (status, created) = call(
            &app,
            "POST",
            "/v1/repositories",
            Some(&basic("alice")),
            body,
        )
        .await;
        assert_eq!(status, 201, "{created}");
    }
    let routes = [
        (
            "POST",
            "/v1/repositories",
            json!({"format": "external-helm", "name": "other", "url": url}),
        ),
        ("POST", "/v1/repositories/validate", json!({"url": url})),
        (
            "PATCH",
            "/v1/repositories/external/stable",
            json!({"description": "x"}),
        ),
        (
            "POST",
            "/v1/repositories/external/stable/index",
            Value::Null,
        ),
        ("DELETE", "/v1/repositories/external/stable", Value::Null),
        (
            "PATCH",
            "/v1/repositories/archive/src",
            json!({"description": "x"}),
        ),
        ("DELETE", "/v1/repositories/archive/src", Value::Null),
    ];
    for scopes in [
        &["upload", "read", "archive"][..],
        &["repositories:team/*"][..],
    ] {
        let token = format!(
            "Bearer {}",
            catalog.issue_token_for_test("alice", scopes, 3600)
        );
        for (method, uri, body) in &routes {
            let (status, answer) = call(&app, method, uri, Some(&token), body.clone()).await;
            assert_eq!(status, 403, "{scopes:?} {method} {uri}: {answer}");
            let detail = answer["detail"].as_str().unwrap_or_default();
            assert!(detail.contains("repositories:"), "{detail}");
        }
    }
    for (method, uri, body) in &routes {
        let (status, _) = call(&app, method, uri, None, body.clone()).await;
        assert_eq!(status, 401, "{method} {uri}");
    }
    // Nothing changed: both are still there, nothing else was made or queued again.
    assert_eq!(catalog.list_repositories().await.expect("list").len(), 2);
    assert_eq!(ext.apps.requested.lock().expect("lock").len(), 1);
}
