//! The repo-api router driven in process against the in-memory ports: routing,
//! authentication, the problem body of every refusal, and what an upload leaves
//! behind. The deployed stack and real clients are tested in `tests/e2e`.

use axum::body::Body;
use axum::http::{Request, Response, header};
use cairn_core::auth::{UserRecord, hash_password};
use cairn_core::memory::{MemoryCatalog, MemoryStore};
use cairn_core::ports::{Catalog, UserDirectory};
use cairn_core::{Config, RepoPath};
use repo_api::{App, router};
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

const REPO: &str = "release/1/ubuntu/jammy";
const BASIC_ALICE: &str = "Basic YWxpY2U6c2VjcmV0"; // alice:secret
const BASIC_BOB: &str = "Basic Ym9iOnNlY3JldA=="; // bob:secret

struct World {
    catalog: Arc<MemoryCatalog>,
    store: Arc<MemoryStore>,
    app: axum::Router,
}

async fn world() -> World {
    let catalog = Arc::new(MemoryCatalog::default());
    for name in ["alice", "bob"] {
        catalog
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
    let store = Arc::new(MemoryStore::default());
    let supported = r#"{"kinds":["release"],"series":["1"],
        "dists":{"ubuntu":{"format":"deb","versions":["jammy"],"architectures":["amd64"]}}}"#;
    let config = Config::from_lookup(|k| {
        let v = match k {
            "CAIRN_SUPPORTED_REPOS" => supported,
            "CAIRN_REPO_BASE_URL" => "https://repo.example",
            "CAIRN_MAX_API_UPLOAD" => "65536",
            "CAIRN_AUTO_CREATE_REPOSITORIES" => "auto/*",
            "CAIRN_TABLE"
            | "CAIRN_REPO_BUCKET"
            | "CAIRN_STAGING_BUCKET"
            | "CAIRN_SYNC_QUEUE_URL" => "test",
            _ => return None,
        };
        Some(v.to_string())
    })
    .expect("config");
    let app = App {
        catalog: catalog.clone(),
        users: catalog.clone(),
        repositories: catalog.clone(),
        tickets: catalog.clone(),
        store: store.clone(),
        upload_urls: store.clone(),
        queue: catalog.clone(),
        config,
    };
    World {
        catalog,
        store,
        app: router(Arc::new(app)),
    }
}

async fn call(app: &axum::Router, req: Request<Body>) -> (u16, Response<Body>, Value) {
    let response = app.clone().oneshot(req).await.expect("infallible");
    let status = response.status().as_u16();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.expect("body");
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, Response::from_parts(parts, Body::empty()), json)
}

fn request(method: &str, uri: &str, auth: Option<&str>) -> axum::http::request::Builder {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(auth) = auth {
        b = b.header(header::AUTHORIZATION, auth);
    }
    b
}

/// A minimal valid binary package: `debian-binary`, an uncompressed `control.tar`
/// and an empty `data.tar` in an ar archive.
fn deb(name: &str, version: &str, payload: &str) -> Vec<u8> {
    let control = format!(
        "Package: {name}\nVersion: {version}\nArchitecture: amd64\nMaintainer: t <t@example.org>\n\
         Description: {payload}\n"
    );
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(control.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "./control", control.as_bytes())
        .expect("tar");
    let control_tar = tar.into_inner().expect("tar");
    let data_tar = vec![0u8; 1024];
    let mut ar = b"!<arch>\n".to_vec();
    for (member, body) in [
        ("debian-binary", b"2.0\n".to_vec()),
        ("control.tar", control_tar),
        ("data.tar", data_tar),
    ] {
        ar.extend(
            format!(
                "{member:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                0,
                0,
                0,
                100644,
                body.len()
            )
            .as_bytes(),
        );
        ar.extend(&body);
        if body.len() % 2 == 1 {
            ar.push(b'\n');
        }
    }
    ar
}

fn form(files: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "cairn-test-boundary";
    let mut body = Vec::new();
    body.extend(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"product\"\r\n\r\ndemo\r\n")
            .as_bytes(),
    );
    for (name, data) in files {
        body.extend(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend(*data);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn upload(auth: Option<&str>, files: &[(&str, &[u8])]) -> Request<Body> {
    let (content_type, body) = form(files);
    request("PUT", &format!("/{REPO}"), auth)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .expect("request")
}

fn assert_problem(status: u16, response: &Response<Body>, body: &Value) {
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["type"], "about:blank", "{body}");
    assert!(body["title"].is_string(), "{body}");
    assert!(body["detail"].is_string(), "{body}");
}

#[tokio::test]
async fn an_upload_is_stored_announced_and_listed() {
    let w = world().await;
    let deb = deb("hello", "1.0", "one");
    let (status, _, body) = call(
        &w.app,
        upload(Some(BASIC_ALICE), &[("hello_1.0_amd64.deb", &deb)]),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["packages"][0]["status"], "stored");
    assert_eq!(body["repositories"][0], REPO);
    let repo = RepoPath::parse(REPO).expect("valid");
    let record = w
        .catalog
        .get_package(&repo, "hello_1.0_amd64.deb")
        .await
        .expect("catalog")
        .expect("stored");
    assert_eq!(record.uploader, "alice");
    assert_eq!(w.store.object(&record.pool_key).expect("in the pool"), deb);
    assert_eq!(w.catalog.sync_requests.lock().expect("lock").len(), 1);

    // The same bytes again change nothing and say so.
    let (status, _, body) = call(
        &w.app,
        upload(Some(BASIC_ALICE), &[("hello_1.0_amd64.deb", &deb)]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["packages"][0]["status"], "unchanged");

    let (status, _, body) = call(
        &w.app,
        request("GET", &format!("/{REPO}"), None)
            .body(Body::empty())
            .expect("req"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["packages"][0]["filename"], "hello_1.0_amd64.deb");
    let (status, _, body) = call(
        &w.app,
        request("GET", &format!("/{REPO}/hello_1.0_amd64.deb"), None)
            .body(Body::empty())
            .expect("req"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(
        body["url"],
        format!("https://repo.example/{}", record.pool_key)
    );
}

#[tokio::test]
async fn other_bytes_under_a_published_name_are_a_conflict_that_says_what_was_stored() {
    let w = world().await;
    let first = deb("hello", "1.0", "one");
    let (status, _, _) = call(
        &w.app,
        upload(Some(BASIC_ALICE), &[("hello_1.0_amd64.deb", &first)]),
    )
    .await;
    assert_eq!(status, 201);
    let other = deb("hello", "1.0", "two");
    let (status, response, body) = call(
        &w.app,
        upload(Some(BASIC_ALICE), &[("hello_1.0_amd64.deb", &other)]),
    )
    .await;
    assert_problem(409, &response, &body);
    assert_eq!(status, 409);
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("immutable"),
        "{body}"
    );
    assert_eq!(body["stored"], serde_json::json!([]));
    assert!(
        body["packages"].is_array() && body["syncs"].is_array(),
        "{body}"
    );
    let repo = RepoPath::parse(REPO).expect("valid");
    let record = w
        .catalog
        .get_package(&repo, "hello_1.0_amd64.deb")
        .await
        .expect("catalog")
        .expect("kept");
    assert_eq!(
        w.store.object(&record.pool_key).expect("kept"),
        first,
        "the first upload's bytes stay"
    );
}

#[tokio::test]
async fn refusals_are_problems_and_store_nothing() {
    let w = world().await;
    let deb = deb("hello", "1.0", "one");
    let cases: Vec<(Request<Body>, u16, &str)> = vec![
        (
            upload(None, &[("hello_1.0_amd64.deb", &deb)]),
            401,
            "credentials",
        ),
        (
            upload(
                Some("Basic YWxpY2U6d3Jvbmc="),
                &[("hello_1.0_amd64.deb", &deb)],
            ),
            401,
            "",
        ),
        (
            upload(Some(BASIC_ALICE), &[("other_1.0_amd64.deb", &deb)]),
            400,
            "other_1.0_amd64.deb",
        ),
        (
            upload(
                Some(BASIC_ALICE),
                &[("hello_1.0_amd64.deb", b"not a package")],
            ),
            400,
            "hello_1.0_amd64.deb",
        ),
        (
            upload(
                Some(BASIC_ALICE),
                &[("hello_1.0_amd64.deb", &deb), ("hello_1.0_amd64.deb", &deb)],
            ),
            400,
            "appears twice",
        ),
        (
            upload(
                Some(BASIC_ALICE),
                &[("big_1.0_amd64.deb", &vec![0u8; 70_000])],
            ),
            413,
            "/v1/uploads",
        ),
        (
            request("PUT", "/release/9/ubuntu/jammy", Some(BASIC_ALICE))
                .body(Body::empty())
                .expect("req"),
            404,
            "9",
        ),
        (
            request("PUT", "/release/1/ubuntu/..", Some(BASIC_ALICE))
                .body(Body::empty())
                .expect("req"),
            400,
            "",
        ),
        (
            request("DELETE", &format!("/{REPO}"), Some(BASIC_ALICE))
                .body(Body::empty())
                .expect("req"),
            400,
            "name the package",
        ),
        (
            request(
                "DELETE",
                &format!("/{REPO}/nothing_1.0_amd64.deb"),
                Some(BASIC_ALICE),
            )
            .body(Body::empty())
            .expect("req"),
            404,
            "nothing_1.0_amd64.deb",
        ),
        (
            request("PATCH", &format!("/{REPO}"), Some(BASIC_ALICE))
                .body(Body::empty())
                .expect("req"),
            405,
            "PATCH",
        ),
        (
            request("GET", "/v1/nothing", None)
                .body(Body::empty())
                .expect("req"),
            404,
            "no route",
        ),
    ];
    for (req, want, words) in cases {
        let what = format!("{} {}", req.method(), req.uri());
        let (status, response, body) = call(&w.app, req).await;
        assert_eq!(status, want, "{what}: {body}");
        assert_problem(want, &response, &body);
        assert!(
            body["detail"].as_str().unwrap_or_default().contains(words),
            "{what}: {body}"
        );
        if want == 401 {
            assert_eq!(
                response.headers()[header::WWW_AUTHENTICATE],
                "Basic realm=\"Cairn\""
            );
        }
    }
    let repo = RepoPath::parse(REPO).expect("valid");
    assert!(
        w.catalog
            .list_packages(&repo)
            .await
            .expect("catalog")
            .is_empty()
    );
    assert!(w.store.objects.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn a_presigned_ticket_is_its_uploaders_only() {
    let w = world().await;
    let presign = |body: &str, content_type: &str| {
        request("POST", "/v1/uploads", Some(BASIC_ALICE))
            .header(header::CONTENT_TYPE, content_type.to_string())
            .body(Body::from(body.to_string()))
            .expect("req")
    };
    let (status, response, body) = call(
        &w.app,
        presign("repository=x", "application/x-www-form-urlencoded"),
    )
    .await;
    assert_eq!(status, 400);
    assert_problem(400, &response, &body);
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("content-type: application/json"),
        "{body}"
    );

    let (status, _, body) = call(
        &w.app,
        presign(
            &format!(r#"{{"repository":"{REPO}","filename":"big_2.0_amd64.deb"}}"#),
            "application/json",
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().expect("id").to_string();
    assert!(
        body["upload_url"]
            .as_str()
            .unwrap_or_default()
            .starts_with("memory://staging/")
    );

    let status_of = |auth: &str| {
        request("GET", &format!("/v1/uploads/{id}"), Some(auth))
            .body(Body::empty())
            .expect("req")
    };
    let (status, _, body) = call(&w.app, status_of(BASIC_ALICE)).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("waiting")),
        "{body}"
    );
    let (status, response, body) = call(&w.app, status_of(BASIC_BOB)).await;
    assert_eq!(
        status, 404,
        "another account is told the ticket does not exist"
    );
    assert_problem(404, &response, &body);
}

#[tokio::test]
async fn every_route_refuses_a_token_without_its_scope() {
    let w = world().await;
    let file = deb("scoped", "1.0", "scoped");
    // A ticket of alice's, for the ticket route.
    let (status, _, ticket) = call(
        &w.app,
        request("POST", "/v1/uploads", Some(BASIC_ALICE))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(format!(
                r#"{{"repository":"{REPO}","filename":"big_2.0_amd64.deb"}}"#
            )))
            .expect("req"),
    )
    .await;
    assert_eq!(status, 201, "{ticket}");
    let ticket = ticket["id"].as_str().expect("id").to_string();
    // Scoped to another series and to reading: allowed nothing here.
    let token = w.catalog.issue_token_for_test(
        "alice",
        &[
            "upload:release/2/*",
            "delete:release/2/*",
            "read:*",
            "webhooks",
        ],
        3600,
    );
    let bearer = format!("Bearer {token}");
    let presign_body = format!(r#"{{"repository":"{REPO}","filename":"x_1_amd64.deb"}}"#);
    let routes: Vec<(&str, Request<Body>, &str)> = vec![
        (
            "PUT upload",
            upload(Some(&bearer), &[("scoped_1.0_amd64.deb", &file)]),
            "upload:",
        ),
        (
            "POST republish",
            request("POST", &format!("/{REPO}"), Some(&bearer))
                .body(Body::empty())
                .expect("req"),
            "upload:",
        ),
        (
            "DELETE package",
            request(
                "DELETE",
                &format!("/{REPO}/scoped_1.0_amd64.deb"),
                Some(&bearer),
            )
            .body(Body::empty())
            .expect("req"),
            "delete:",
        ),
        (
            "POST presign",
            request("POST", "/v1/uploads", Some(&bearer))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(presign_body))
                .expect("req"),
            "upload:",
        ),
        (
            "GET ticket",
            request("GET", &format!("/v1/uploads/{ticket}"), Some(&bearer))
                .body(Body::empty())
                .expect("req"),
            "upload:",
        ),
    ];
    for (what, req, scope) in routes {
        let (status, response, body) = call(&w.app, req).await;
        assert_eq!(status, 403, "{what}: {body}");
        assert_problem(403, &response, &body);
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(&format!("{scope}{REPO}")),
            "{what}: {detail}"
        );
    }
    assert!(
        w.catalog
            .list_packages(&RepoPath::parse(REPO).expect("valid"))
            .await
            .expect("list")
            .is_empty(),
        "nothing stored"
    );

    // The same token scoped to this series uploads, as Bearer or as a Basic password.
    let token = w
        .catalog
        .issue_token_for_test("alice", &["upload:release/1/*"], 3600);
    let (status, _, body) = call(
        &w.app,
        upload(
            Some(&format!("Bearer {token}")),
            &[("scoped_1.0_amd64.deb", &file)],
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // Reading a public repository needs no scope at all.
    let (status, _, _) = call(
        &w.app,
        request("GET", &format!("/{REPO}"), None)
            .body(Body::empty())
            .expect("req"),
    )
    .await;
    assert_eq!(status, 200);
}

fn upload_to(path: &str, auth: Option<&str>, files: &[(&str, &[u8])]) -> Request<Body> {
    let (content_type, body) = form(files);
    request("PUT", &format!("/{path}"), auth)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .expect("request")
}

#[tokio::test]
async fn created_repositories_take_uploads_from_their_owners_and_hide_when_private() {
    use cairn_core::repositories::{NewRepository, RepositoryStore};
    let w = world().await;
    let private: NewRepository = serde_json::from_value(serde_json::json!({
        "format": "apt", "path": "team/db/ubuntu/noble", "visibility": "private"
    }))
    .expect("request");
    let repo = private.validate("alice", 1).expect("valid");
    assert!(w.catalog.create_repository(&repo).await.expect("store"));
    let package = deb("hello", "1.0", "hi");
    let files: &[(&str, &[u8])] = &[("hello_1.0_amd64.deb", &package)];

    // Not a repository at all: 404 that says how to make one.
    let (status, response, body) = call(
        &w.app,
        upload_to("team/web/ubuntu/noble", Some(BASIC_ALICE), files),
    )
    .await;
    assert_problem(404, &response, &body);
    assert_eq!(status, 404);
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("POST /v1/repositories"), "{detail}");

    // Private and not bob's: the same 404, for uploads and reads alike.
    let (status, _, body) = call(
        &w.app,
        upload_to("team/db/ubuntu/noble", Some(BASIC_BOB), files),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let hidden = body["detail"].clone();
    for uri in [
        "/team/db/ubuntu/noble",
        "/team/db/ubuntu/noble/hello_1.0_amd64.deb",
    ] {
        for auth in [None, Some(BASIC_BOB)] {
            let (status, _, body) = call(
                &w.app,
                request("GET", uri, auth)
                    .body(Body::empty())
                    .expect("request"),
            )
            .await;
            assert_eq!(status, 404, "{uri} {auth:?}: {body}");
        }
    }
    assert!(
        w.catalog
            .list_packages(&RepoPath::parse("team/db/ubuntu/noble").expect("valid"))
            .await
            .expect("list")
            .is_empty()
    );

    // Its owner uploads and reads it.
    let (status, _, body) = call(
        &w.app,
        upload_to("team/db/ubuntu/noble", Some(BASIC_ALICE), files),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, _, body) = call(
        &w.app,
        request("GET", "/team/db/ubuntu/noble", Some(BASIC_ALICE))
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["packages"][0]["package"], "hello");

    // Made public, bob reads it but still may not upload: it is alice's.
    let mut public = w
        .catalog
        .get_repository("team/db/ubuntu/noble")
        .await
        .expect("get")
        .expect("there");
    public.visibility = cairn_core::repositories::Visibility::Public;
    public.version += 1;
    assert!(
        w.catalog
            .replace_repository(&public)
            .await
            .expect("replace")
    );
    let (status, _, _) = call(
        &w.app,
        request("GET", "/team/db/ubuntu/noble", None)
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(status, 200);
    let other = deb("other", "1.0", "x");
    let (status, _, body) = call(
        &w.app,
        upload_to(
            "team/db/ubuntu/noble",
            Some(BASIC_BOB),
            &[("other_1.0_amd64.deb", &other)],
        ),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("alice"),
        "{body}"
    );
    assert_ne!(hidden, body["detail"]);
}

#[tokio::test]
async fn uploads_create_repositories_where_the_deployment_says_and_bad_ones_leave_none() {
    use cairn_core::repositories::{Format, RepositoryStore};
    let w = world().await;
    let package = deb("hello", "1.0", "hi");
    let files: &[(&str, &[u8])] = &[("hello_1.0_amd64.deb", &package)];
    // Under auto/: the first upload creates a public APT repository its uploader owns.
    let (status, _, body) = call(
        &w.app,
        upload_to("auto/a/debian/bookworm", Some(BASIC_ALICE), files),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let repo = w
        .catalog
        .get_repository("auto/a/debian/bookworm")
        .await
        .expect("get")
        .expect("created");
    assert_eq!(
        (repo.format, repo.owners.clone()),
        (Format::Deb, vec!["alice".to_string()])
    );
    // It is alice's now: bob's upload there is refused, not a second creation.
    let (status, _, body) = call(
        &w.app,
        upload_to("auto/a/debian/bookworm", Some(BASIC_BOB), files),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    // A malformed package: 400, and no repository is left behind.
    let bad: &[(&str, &[u8])] = &[("broken_1.0_amd64.deb", b"not an ar archive")];
    let (status, _, body) = call(
        &w.app,
        upload_to("auto/b/debian/bookworm", Some(BASIC_ALICE), bad),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        w.catalog
            .get_repository("auto/b/debian/bookworm")
            .await
            .expect("get")
            .is_none()
    );
    // Files that name no format, or two: a 400 that says so.
    let mixed: &[(&str, &[u8])] = &[("a_1.0_amd64.deb", &package), ("b-1.0.x86_64.rpm", b"x")];
    let (status, _, body) = call(&w.app, upload_to("auto/c/el/9", Some(BASIC_ALICE), mixed)).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("format"),
        "{body}"
    );
    // A token without `repositories` gets the plain 404, as outside auto/.
    let token = w.catalog.issue_token_for_test("alice", &["upload"], 3600);
    let (status, _, body) = call(
        &w.app,
        upload_to(
            "auto/d/debian/bookworm",
            Some(&format!("Bearer {token}")),
            files,
        ),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, _, body) = call(
        &w.app,
        upload_to("manual/a/debian/bookworm", Some(BASIC_ALICE), files),
    )
    .await;
    assert_eq!(status, 404, "{body}");
}
