//! The read path in process: public files redirect to the bucket, private ones to a
//! presigned URL under the repository's hidden prefix for those who may read them;
//! the rest are asked for credentials (anonymous) or told nothing is there.

use axum::body::Body;
use axum::http::{Request, header};
use cairn_core::Config;
use cairn_core::access::Role;
use cairn_core::auth::{UserRecord, hash_password};
use cairn_core::memory::{MemoryCatalog, MemoryStore};
use cairn_core::ports::{RepoStore, UserDirectory};
use cairn_core::repositories::{NewRepository, RepositoryStore};
use files_api::{App, router};
use std::sync::Arc;
use tower::ServiceExt;

fn basic(user: &str) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:secret"));
    format!("Basic {encoded}")
}

/// The router, the catalog, the private APT repository's storage and the private
/// archive repository `secret`'s.
async fn world() -> (axum::Router, Arc<MemoryCatalog>, String, String) {
    let catalog = Arc::new(MemoryCatalog::default());
    for (name, selectors) in [
        ("alice", vec![]),
        ("dba", vec!["team=db".to_string()]),
        ("eve", vec![]),
    ] {
        catalog
            .put_user(&UserRecord {
                name: name.into(),
                password_hash: hash_password("secret"),
                role: Role::Uploader,
                tokens_after: 0,
                selectors,
            })
            .await
            .expect("user");
    }
    let (mut storage, mut archive_storage) = (String::new(), String::new());
    for body in [
        serde_json::json!({"format": "apt", "path": "team/db/debian/bookworm",
                           "visibility": "private", "labels": {"team": "db"}}),
        serde_json::json!({"format": "helm", "path": "team/pub/helm/stable"}),
        serde_json::json!({"format": "archive", "name": "secret", "visibility": "private",
                           "labels": {"team": "db"}}),
        serde_json::json!({"format": "archive", "name": "open"}),
    ] {
        let new: NewRepository = serde_json::from_value(body).expect("request");
        let repo = new.validate("alice", 1).expect("valid");
        if repo.path.starts_with("team/db") {
            storage = repo.storage.clone();
        }
        if repo.path == "archive/secret" {
            archive_storage = repo.storage.clone();
        }
        assert!(catalog.create_repository(&repo).await.expect("store"));
    }
    let archives = Arc::new(MemoryStore::default());
    archives
        .put(
            &format!("private/{archive_storage}/git/secret.git/info/refs"),
            bytes::Bytes::from_static(b"0123\trefs/tags/cairn-x\n"),
            "text/plain",
        )
        .await
        .expect("put");
    let supported = r#"{"kinds":["release"],"series":["1"],
        "dists":{"el":{"format":"rpm","versions":["9"]}}}"#;
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
    let app = App {
        users: catalog.clone(),
        repositories: catalog.clone(),
        urls: Arc::new(MemoryStore::default()),
        archives: archives.clone(),
        archive_urls: archives,
        archive_base_url: "https://archive.example".into(),
        config,
    };
    (router(Arc::new(app)), catalog, storage, archive_storage)
}

async fn get(app: &axum::Router, uri: &str, auth: Option<&str>) -> (u16, String) {
    let (status, location, _) = get_body(app, uri, auth).await;
    (status, location)
}

async fn get_body(app: &axum::Router, uri: &str, auth: Option<&str>) -> (u16, String, String) {
    let mut req = Request::builder().uri(uri);
    if let Some(auth) = auth {
        req = req.header(header::AUTHORIZATION, auth);
    }
    let response = app
        .clone()
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let location = response
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap_or_default().to_string())
        .unwrap_or_default();
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (
        status,
        location,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[tokio::test]
async fn private_archives_are_read_with_credentials_git_follows() {
    let (app, catalog, _, storage) = world().await;
    let refs = "/v1/files/git/secret.git/info/refs";
    let pack = "git/secret.git/objects/pack/pack-1.pack";
    let tree_pack = "trees/secret/cairn-x.git/objects/pack/pack-1.pack";
    // git's first request gets the file itself: it refuses to be redirected there.
    for who in ["alice", "dba"] {
        let (status, location, body) = get_body(&app, refs, Some(&basic(who))).await;
        assert_eq!((status, location.as_str()), (200, ""), "{who}");
        assert!(body.contains("refs/tags/cairn-x"), "{body}");
    }
    // Packs and tarballs: presigned, in the archive bucket, under the hidden prefix.
    for key in [pack, tree_pack, "tarballs/secret/cairn-x.tar.gz"] {
        let (status, location) =
            get(&app, &format!("/v1/files/{key}"), Some(&basic("alice"))).await;
        assert_eq!(status, 302, "{key}");
        assert_eq!(
            location,
            format!("memory://repo/private/{storage}/{key}?expires=300")
        );
    }
    // An index file that is not there: 404, not an empty answer.
    let missing = "/v1/files/trees/secret/cairn-y.git/info/refs";
    assert_eq!(get(&app, missing, Some(&basic("alice"))).await.0, 404);
    // The anonymous are asked; strangers see nothing; a token needs read on it
    // (or archive on the name).
    assert_eq!(get(&app, refs, None).await.0, 401);
    assert_eq!(get(&app, refs, Some(&basic("eve"))).await.0, 404);
    for (scopes, status) in [
        (&["upload"][..], 403),
        (&["read:archive/secret"][..], 200),
        (&["read:archive/*"][..], 200),
        (&["archive:secret"][..], 200),
        (&["read:team/*"][..], 403),
    ] {
        let token = catalog.issue_token_for_test("alice", scopes, 3600);
        let (got, _) = get(&app, refs, Some(&format!("Bearer {token}"))).await;
        assert_eq!(got, status, "{scopes:?}");
    }
    // A public archive name (a record, or none at all): the bucket's public URL.
    for key in ["git/open.git/info/refs", "tarballs/anything/cairn-x.tar.gz"] {
        let (status, location) = get(&app, &format!("/v1/files/{key}"), None).await;
        assert_eq!(
            (status, location),
            (302, format!("https://archive.example/{key}"))
        );
    }
}

#[tokio::test]
async fn who_reads_which_file() {
    let (app, catalog, storage, _) = world().await;
    let private = "team/db/debian/dists/bookworm/InRelease";
    let pool = "team/db/debian/pool/bookworm/main/h/hello/hello_1.0_all.deb";

    // Public: configured and created ones redirect to the bucket, for anyone.
    for key in [
        "release/1/el/9/x86_64/repodata/repomd.xml",
        "team/pub/helm/stable/index.yaml",
    ] {
        let (status, location) = get(&app, &format!("/v1/files/{key}"), None).await;
        assert_eq!(
            (status, location.as_str()),
            (302, format!("https://repo.example/{key}").as_str())
        );
    }
    // Private: the owner and a matching selector get the hidden object, presigned.
    for who in ["alice", "dba"] {
        for key in [private, pool] {
            let (status, location) =
                get(&app, &format!("/v1/files/{key}"), Some(&basic(who))).await;
            assert_eq!(status, 302, "{who} {key}");
            assert_eq!(
                location,
                format!("memory://repo/private/{storage}/{key}?expires=300")
            );
        }
    }
    // The anonymous are asked for credentials, whether or not anything is there.
    for key in [private, "team/nothing/debian/dists/bookworm/InRelease"] {
        assert_eq!(
            get(&app, &format!("/v1/files/{key}"), None).await.0,
            401,
            "{key}"
        );
    }
    // HEAD gets a URL presigned for HEAD (a presigned URL is for one method).
    let response = app
        .clone()
        .oneshot(
            Request::builder()
                .method("HEAD")
                .uri(format!("/v1/files/{private}"))
                .header(header::AUTHORIZATION, basic("alice"))
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(response.status(), 302);
    assert!(
        response.headers()[header::LOCATION]
            .to_str()
            .unwrap_or_default()
            .ends_with("&method=HEAD")
    );
    // Others: nothing there, as for a path that is nothing.
    assert_eq!(
        get(&app, &format!("/v1/files/{private}"), Some(&basic("eve")))
            .await
            .0,
        404
    );
    assert_eq!(
        get(&app, "/v1/files/team/nothing/x/y/z", Some(&basic("eve")))
            .await
            .0,
        404
    );
    // A token of the owner without `read`: 403 naming it; wrong credentials: 401.
    let token = catalog.issue_token_for_test("alice", &["upload"], 3600);
    let (status, _) = get(
        &app,
        &format!("/v1/files/{private}"),
        Some(&format!("Bearer {token}")),
    )
    .await;
    assert_eq!(status, 403);
    let token = catalog.issue_token_for_test("alice", &["read:team/db/*"], 3600);
    let (status, _) = get(
        &app,
        &format!("/v1/files/{private}"),
        Some(&format!("Basic {}", {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(format!("apt:{token}"))
        })),
    )
    .await;
    assert_eq!(
        status, 302,
        "a token as the Basic password, as apt sends it"
    );
    let (status, _) = get(
        &app,
        &format!("/v1/files/{private}"),
        Some("Basic YWxpY2U6d3Jvbmc="),
    )
    .await;
    assert_eq!(status, 401);
    // A key of another layout does not reach the private repository: the YUM/Helm
    // shape of the same path is not its file.
    assert_eq!(
        get(
            &app,
            "/v1/files/team/db/debian/bookworm/x",
            Some(&basic("alice"))
        )
        .await
        .0,
        404
    );
    // Path tricks.
    for key in [
        "team/db/debian/dists/bookworm/../../x",
        "team//db/x/y/z",
        "team/db/debian/dists/./bookworm/x",
    ] {
        let (status, _) = get(&app, &format!("/v1/files/{key}"), Some(&basic("alice"))).await;
        assert_eq!(status, 400, "{key}");
    }
}
