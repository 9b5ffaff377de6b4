//! `POST /v1/oauth/token`: the OAuth 2.0 client-credentials grant (RFC 6749, 4.4),
//! so that CI systems and workers use a stock OAuth client to turn their long-lived
//! credential into a short-lived token for one job.
//!
//! The client authenticates with HTTP Basic: an account and its password, or any
//! name and a token holding the `tokens` scope (`client_id` = a name, `client_secret`
//! = the token). The body is `grant_type=client_credentials` and optionally `scope`
//! (space-separated Cairn scopes, each held by the client; default: all the
//! client's but `tokens`; a job token never holds `tokens` or `admin`) and `expires_in` (seconds, 60 to 86,400; default 3,600). The answer and
//! the errors have OAuth's shapes (`access_token`…, `error`/`error_description`), not
//! the problem documents of the other routes, because OAuth clients parse those.

use crate::App;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cairn_core::access::{Action, Scopes};
use cairn_core::auth::{AuthError, Authenticator};
use cairn_core::tokens::TokenRequest;
use serde::Serialize;
use std::sync::Arc;

/// Default lifetime of a job token.
const DEFAULT_SECS: i64 = 3600;
/// Longest lifetime of a job token: a day.
const MAX_SECS: i64 = 86_400;
/// Largest form accepted.
const MAX_FORM: usize = 8 * 1024;

/// A successful answer (RFC 6749, 5.1).
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenAnswer {
    /// The token (a Cairn token: `cairn_<id>_<secret>`).
    access_token: String,
    /// Always `Bearer`.
    token_type: &'static str,
    /// Seconds until it expires.
    expires_in: i64,
    /// Its scopes, space-separated.
    scope: String,
}

/// An OAuth error (RFC 6749, 5.2).
#[derive(Serialize, utoipa::ToSchema)]
pub struct OAuthError {
    /// `invalid_request`, `invalid_client`, `unsupported_grant_type`, `invalid_scope`,
    /// `unauthorized_client`.
    error: &'static str,
    /// For a human.
    error_description: String,
}

/// An OAuth answer: JSON that no cache keeps (RFC 6749, 5.1).
fn oauth_json(status: StatusCode, body: &impl Serialize) -> Response {
    let mut response = (status, serde_json::to_string(body).unwrap_or_default()).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn oauth_error(
    status: StatusCode,
    error: &'static str,
    description: impl Into<String>,
) -> Response {
    let mut response = oauth_json(
        status,
        &OAuthError {
            error,
            error_description: description.into(),
        },
    );
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static("Basic realm=\"cairn\""),
        );
    }
    response
}

/// Issues a short-lived token for the authenticated client.
#[utoipa::path(
    post, path = "/v1/oauth/token", operation_id = "oauth_token", tag = "tokens",
    summary = "OAuth 2.0 client credentials: a short-lived token for one job",
    description = "Client authentication with HTTP Basic (an account's password, or a \
        token with the `tokens` scope as the secret). Form body: \
        `grant_type=client_credentials`, optional `scope` (space-separated, each held by \
        the client) and `expires_in` (60-86400 s, default 3600). Errors have OAuth's \
        shape (RFC 6749, 5.2).",
    request_body(content_type = "application/x-www-form-urlencoded", content = String),
    responses(
        (status = 200, description = "The token", body = TokenAnswer),
        (status = 400, description = "OAuth error", body = OAuthError),
        (status = 401, description = "invalid_client", body = OAuthError),
    ),
    security(("basic" = [])),
)]
pub async fn token(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let header = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    let now = cairn_http::unix_now();
    let client = match Authenticator::new(app.users.as_ref())
        .authenticate(header, now)
        .await
    {
        Ok(client) => client,
        Err(AuthError::Store(e)) => {
            tracing::error!(error = %e, "oauth: credential check failed");
            return oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "try again",
            );
        }
        Err(e) => return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", e.to_string()),
    };
    if body.len() > MAX_FORM {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the form is too large",
        );
    }
    let mut grant = None;
    let mut scope = None;
    let mut expires_in = None;
    for (k, v) in url::form_urlencoded::parse(&body) {
        let slot = match k.as_ref() {
            "grant_type" => &mut grant,
            "scope" => &mut scope,
            "expires_in" => &mut expires_in,
            _ => continue,
        };
        if slot.replace(v.into_owned()).is_some() {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("{k} given twice"),
            );
        }
    }
    match grant.as_deref() {
        Some("client_credentials") => {}
        Some(other) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!("grant_type {other:?}: only client_credentials"),
            );
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required",
            );
        }
    }
    if client.require(Action::Tokens, "").is_err() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "the client credential needs the scope tokens to mint tokens",
        );
    }
    // A job token neither mints nor revokes tokens, nor administers: it would
    // outlive its revocation through its children, or act for the whole account.
    let scopes = match scope.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => client.scopes.without(Action::Tokens),
        Some(text) => {
            let requested: Vec<String> = text
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            match Scopes::parse(&requested) {
                Ok(s) => s,
                Err(e) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", e),
            }
        }
    };
    if scopes.allows_any(Action::Admin) || scopes.iter().any(|s| s.action == Action::Tokens) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "a job token cannot hold admin or tokens: name the scopes the job needs (scope=upload:release/2.11/* …)",
        );
    }
    if scopes.is_empty() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "no scope left for the job",
        );
    }
    if let Err(missing) = client.scopes.holds_all(&scopes) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            format!("the client does not hold {missing}"),
        );
    }
    let lifetime = match expires_in.as_deref().map(str::parse::<i64>) {
        None => DEFAULT_SECS,
        Some(Ok(secs)) if (60..=MAX_SECS).contains(&secs) => secs,
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("expires_in: 60 to {MAX_SECS} seconds"),
            );
        }
    };
    let request = TokenRequest {
        owner: client.name.clone(),
        description: format!(
            "oauth client_credentials for {}",
            client.token.as_deref().unwrap_or("the account's password")
        ),
        scopes,
        lifetime_secs: lifetime,
        not_after: client.expires_at,
    };
    let (record, token) = match request.issue(now) {
        Ok(issued) => issued,
        Err(e) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", e),
    };
    if let Err(e) = app.users.put_token(&record).await {
        tracing::error!(error = %e, "oauth: storing the token failed");
        return oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "try again",
        );
    }
    tracing::info!(id = %record.id, owner = %record.owner, "job token issued");
    let scope = record
        .scopes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    oauth_json(
        StatusCode::OK,
        &TokenAnswer {
            access_token: token,
            token_type: "Bearer",
            expires_in: record.expires_at - now,
            scope,
        },
    )
}
