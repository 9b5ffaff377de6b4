//! The tokens router in process over the in-memory store: a token is shown once and
//! stored as a hash, works as Bearer and as a Basic password, can only carry scopes
//! its issuer holds, and stops working when revoked or expired.

use axum::body::Body;
use axum::http::{Request, header};
use cairn_core::access::Role;
use cairn_core::auth::{UserRecord, hash_password};
use cairn_core::memory::MemoryCatalog;
use cairn_core::ports::UserDirectory;
use cairn_core::tokens::TokenStore;
use serde_json::{Value, json};
use std::sync::Arc;
use tokens_api::{App, router};
use tower::ServiceExt;

const ALICE: &str = "Basic YWxpY2U6c2VjcmV0"; // alice:secret (uploader)
const READER: &str = "Basic cmVhZGVyOnNlY3JldA=="; // reader:secret (reader)

async fn world() -> (axum::Router, Arc<MemoryCatalog>) {
    let store = Arc::new(MemoryCatalog::default());
    for (name, role) in [("alice", Role::Uploader), ("reader", Role::Reader)] {
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
    let app = App {
        users: store.clone(),
    };
    (router(Arc::new(app)), store)
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    auth: &str,
    body: Value,
) -> (u16, Value) {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, auth)
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

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

#[tokio::test]
async fn a_token_is_shown_once_works_both_ways_and_stops_when_revoked() {
    let (app, store) = world().await;
    let (status, issued) = call(
        &app,
        "POST",
        "/v1/tokens",
        ALICE,
        json!({"scopes": ["upload:release/2.11/*", "tokens"], "description": "CI", "expires_in": 3600}),
    )
    .await;
    assert_eq!(status, 201, "{issued}");
    let token = issued["token"].as_str().expect("token").to_string();
    let id = issued["id"].as_str().expect("id").to_string();
    assert!(token.starts_with(&format!("cairn_{id}_")));
    assert_eq!(issued["scopes"], json!(["upload:release/2.11/*", "tokens"]));

    // Stored as a hash: the record does not hold the secret.
    let record = store.get_token(&id).await.expect("store").expect("kept");
    let secret = token.rsplit('_').next().expect("secret");
    assert!(!format!("{record:?}").contains(secret));

    // The token works as Bearer and as the Basic password (any user name).
    for auth in [bearer(&token), basic("anyone", &token)] {
        let (status, listed) = call(&app, "GET", "/v1/tokens", &auth, Value::Null).await;
        assert_eq!(status, 200, "{auth}: {listed}");
        assert_eq!(listed["tokens"][0]["id"], id.as_str());
        assert!(
            !listed.to_string().contains(secret),
            "never the secret: {listed}"
        );
    }

    // Revoked: 401 at once; revoking again, or another account's token, is 404.
    let (status, _) = call(
        &app,
        "DELETE",
        &format!("/v1/tokens/{id}"),
        &bearer(&token),
        Value::Null,
    )
    .await;
    assert_eq!(status, 204);
    let (status, problem) = call(&app, "GET", "/v1/tokens", &bearer(&token), Value::Null).await;
    assert_eq!(status, 401, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("revoked")
    );
    let (status, _) = call(
        &app,
        "DELETE",
        &format!("/v1/tokens/{id}"),
        ALICE,
        Value::Null,
    )
    .await;
    assert_eq!(status, 404);
    let theirs = store.issue_token_for_test("reader", &["tokens"], 3600);
    let their_id = &theirs[6..22];
    let (status, _) = call(
        &app,
        "DELETE",
        &format!("/v1/tokens/{their_id}"),
        ALICE,
        Value::Null,
    )
    .await;
    assert_eq!(status, 404, "another account's token is not found");
    assert!(store.get_token(their_id).await.expect("store").is_some());
}

#[tokio::test]
async fn expired_forged_and_malformed_tokens_are_refused() {
    let (app, store) = world().await;
    let expired = store.issue_token_for_test("alice", &["tokens"], -1);
    let (status, problem) = call(&app, "GET", "/v1/tokens", &bearer(&expired), Value::Null).await;
    assert_eq!(status, 401);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("expired"),
        "{problem}"
    );

    let good = store.issue_token_for_test("alice", &["tokens"], 3600);
    let forged = format!(
        "{}{}",
        &good[..good.len() - 1],
        if good.ends_with('0') { '1' } else { '0' }
    );
    for auth in [
        bearer(&forged),
        bearer("cairn_nonsense"),
        bearer(
            "cairn_0123456789abcdef_0000000000000000000000000000000000000000000000000000000000000000",
        ),
        basic("alice", &forged),
    ] {
        let (status, _) = call(&app, "GET", "/v1/tokens", &auth, Value::Null).await;
        assert_eq!(status, 401, "{auth}");
    }
}

#[tokio::test]
async fn a_token_never_holds_more_than_its_issuer() {
    let (app, store) = world().await;
    // A reader may not mint an upload token; an uploader may not mint admin.
    for (auth, scopes, refused) in [
        (READER, json!(["upload:*"]), "upload:*"),
        (ALICE, json!(["admin"]), "admin"),
    ] {
        let (status, problem) =
            call(&app, "POST", "/v1/tokens", auth, json!({"scopes": scopes})).await;
        assert_eq!(status, 403, "{problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(refused),
            "{problem}"
        );
    }
    // A narrow token may mint a narrower one, not a wider one.
    let narrow = store.issue_token_for_test("alice", &["upload:release/2.11/*", "tokens"], 3600);
    let (status, _) = call(
        &app,
        "POST",
        "/v1/tokens",
        &bearer(&narrow),
        json!({"scopes": ["upload:release/2.11/ubuntu/*"]}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, problem) = call(
        &app,
        "POST",
        "/v1/tokens",
        &bearer(&narrow),
        json!({"scopes": ["upload:release/*"]}),
    )
    .await;
    assert_eq!(status, 403, "{problem}");
    // A token without the `tokens` scope manages no tokens.
    let upload_only = store.issue_token_for_test("alice", &["upload:*"], 3600);
    for (method, uri, body) in [
        (
            "POST",
            "/v1/tokens".to_string(),
            json!({"scopes": ["upload:*"]}),
        ),
        ("GET", "/v1/tokens".to_string(), Value::Null),
        (
            "DELETE",
            format!("/v1/tokens/{}", &narrow[6..22]),
            Value::Null,
        ),
    ] {
        let (status, problem) = call(&app, method, &uri, &bearer(&upload_only), body).await;
        assert_eq!(status, 403, "{method} {uri}: {problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("scope tokens")
        );
    }
    // Bad requests store nothing.
    let before = store.list_tokens("alice").await.expect("store").len();
    for body in [
        json!({"scopes": []}),
        json!({"scopes": ["fly"]}),
        json!({"scopes": ["upload:a*b"]}),
        json!({"scopes": ["tokens"], "expires_in": 10}),
        json!({"scopes": ["tokens"], "expires_in": 400 * 86400}),
        json!({"scopes": ["tokens"], "extra": 1}),
    ] {
        let (status, problem) = call(&app, "POST", "/v1/tokens", ALICE, body.clone()).await;
        assert_eq!(status, 400, "{body}: {problem}");
    }
    assert_eq!(
        store.list_tokens("alice").await.expect("store").len(),
        before
    );
}

#[tokio::test]
async fn whoami_tells_any_credential_its_account_and_scopes() {
    let (app, store) = world().await;
    let (status, me) = call(&app, "GET", "/v1/whoami", READER, Value::Null).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["account"], "reader");
    assert_eq!(me["scopes"], json!(["read:*", "events", "tokens"]));
    assert!(me["token"].is_null());
    let token = store.issue_token_for_test("alice", &["upload:release/*"], 3600);
    let (status, me) = call(&app, "GET", "/v1/whoami", &bearer(&token), Value::Null).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        (me["account"].as_str(), me["token"].as_str()),
        (Some("alice"), Some(&token[6..22]))
    );
    assert_eq!(me["scopes"], json!(["upload:release/*"]));
    assert!(me["expires_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    let (status, _) = call(&app, "GET", "/v1/whoami", "Bearer cairn_x", Value::Null).await;
    assert_eq!(status, 401);
}

async fn form(app: &axum::Router, auth: &str, body: &str) -> (u16, Value) {
    let req = Request::builder()
        .method("POST")
        .uri("/v1/oauth/token")
        .header(header::AUTHORIZATION, auth)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body.to_string()))
        .expect("request");
    let response = app.clone().oneshot(req).await.expect("infallible");
    let status = response.status().as_u16();
    assert_eq!(response.headers()["cache-control"], "no-store");
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn client_credentials_mint_a_short_lived_narrower_token() {
    let (app, store) = world().await;
    // A password client: all its scopes by default, an hour.
    let (status, answer) = form(&app, ALICE, "grant_type=client_credentials").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["expires_in"], 3600);
    assert!(
        answer["scope"]
            .as_str()
            .unwrap_or_default()
            .contains("upload:*")
    );

    // A token client asks for less; the job token works and expires with its parent.
    let parent = store.issue_token_for_test("alice", &["tokens", "upload:release/*"], 600);
    let (status, answer) = form(
        &app,
        &basic("ci", &parent),
        "grant_type=client_credentials&scope=upload%3Arelease%2F2.11%2F*&expires_in=7200",
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["scope"], "upload:release/2.11/*");
    let expires_in = answer["expires_in"].as_i64().expect("expires_in");
    assert!(
        (590..=600).contains(&expires_in),
        "capped at the parent's expiry: {expires_in}"
    );
    let job = answer["access_token"].as_str().expect("token");
    let (status, me) = call(&app, "GET", "/v1/whoami", &bearer(job), Value::Null).await;
    assert_eq!(
        (status, me["scopes"].clone()),
        (200, json!(["upload:release/2.11/*"]))
    );

    for (auth, body, status, error) in [
        (
            ALICE.to_string(),
            "grant_type=password",
            400,
            "unsupported_grant_type",
        ),
        (ALICE.to_string(), "", 400, "invalid_request"),
        (
            ALICE.to_string(),
            "grant_type=client_credentials&scope=admin",
            400,
            "invalid_scope",
        ),
        (
            ALICE.to_string(),
            "grant_type=client_credentials&scope=fly",
            400,
            "invalid_scope",
        ),
        (
            ALICE.to_string(),
            "grant_type=client_credentials&expires_in=999999",
            400,
            "invalid_request",
        ),
        (
            ALICE.to_string(),
            "grant_type=client_credentials&grant_type=client_credentials",
            400,
            "invalid_request",
        ),
        (
            basic("alice", "wrong"),
            "grant_type=client_credentials",
            401,
            "invalid_client",
        ),
        (
            bearer(job),
            "grant_type=client_credentials",
            400,
            "unauthorized_client",
        ),
    ] {
        let (got, answer) = form(&app, &auth, body).await;
        assert_eq!(
            (got, answer["error"].as_str()),
            (status, Some(error)),
            "{body}: {answer}"
        );
    }
}

#[tokio::test]
async fn rewriting_the_account_revokes_its_tokens_and_a_role_bounds_them() {
    let (app, store) = world().await;
    let token = store.issue_token_for_test("alice", &["upload:*", "tokens"], 3600);
    let (status, _) = call(&app, "GET", "/v1/whoami", &bearer(&token), Value::Null).await;
    assert_eq!(status, 200);
    // Demoted to reader: the token keeps working, with what a reader may do.
    let mut alice = store.get_user("alice").await.expect("store").expect("user");
    alice.role = Role::Reader;
    store.put_user(&alice).await.expect("store");
    let (_, me) = call(&app, "GET", "/v1/whoami", &bearer(&token), Value::Null).await;
    assert_eq!(
        me["scopes"],
        json!(["tokens"]),
        "upload:* is beyond a reader now"
    );
    // A password reset (tokens_after moved past the token's issue): 401.
    alice.tokens_after = i64::MAX;
    store.put_user(&alice).await.expect("store");
    let (status, _) = call(&app, "GET", "/v1/whoami", &bearer(&token), Value::Null).await;
    assert_eq!(status, 401);
    // A token of an account that no longer exists: 401.
    let ghost = store.issue_token_for_test("ghost", &["tokens"], 3600);
    let (status, _) = call(&app, "GET", "/v1/whoami", &bearer(&ghost), Value::Null).await;
    assert_eq!(status, 401);
}
