//! The handlers: HTTP in, a domain call, HTTP out.

use crate::App;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cairn_core::access::{Action, Scopes};
use cairn_core::tokens::{DEFAULT_LIFETIME_SECS, TokenRecord, TokenRequest};
use cairn_http::openapi::Refusals;
use cairn_http::{ApiError, Caller, JsonBody, PathParams, json, rfc3339, unix_now as now};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

type AppState = State<Arc<App>>;

/// `POST /v1/tokens` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    /// What the token may do: `upload:release/2.11/*`, `webhooks`, ... (docs/access.md).
    scopes: Vec<String>,
    /// What it is for.
    #[serde(default)]
    description: String,
    /// How long it works, seconds (default 30 days, at most 366 days).
    expires_in: Option<i64>,
}

/// A token as listed: never its secret.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenView {
    /// The token's id (the part after `cairn_`).
    id: String,
    /// What it is for.
    description: String,
    /// What it may do.
    #[schema(value_type = Vec<String>)]
    scopes: Scopes,
    /// When it was issued.
    created_at: String,
    /// When it stops working.
    expires_at: String,
    /// Whether it has expired.
    expired: bool,
}

impl TokenView {
    fn of(record: &TokenRecord, now: i64) -> Self {
        Self {
            id: record.id.clone(),
            description: record.description.clone(),
            scopes: record.scopes.clone(),
            created_at: rfc3339(record.created_at),
            expires_at: rfc3339(record.expires_at),
            expired: now >= record.expires_at,
        }
    }
}

/// An issued token: the view and, this once, the token.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Issued {
    /// The token: `cairn_<id>_<secret>`. Shown here only.
    token: String,
    #[serde(flatten)]
    view: TokenView,
}

/// `POST /v1/tokens`: a new token for the caller's account, with scopes the calling
/// credential holds.
#[utoipa::path(
    post, path = "/v1/tokens", operation_id = "issue_token", tag = "tokens",
    summary = "Issue an access token",
    description = "A token for the caller's account with the given scopes, each of which the \
        calling credential must hold (a token cannot widen what its issuer may do). The \
        token is in this answer only; Cairn keeps its SHA-256.",
    request_body = IssueRequest,
    responses(
        (status = 201, description = "The token, shown once", body = Issued),
        (status = 403, description = "A scope the calling credential does not hold",
         body = cairn_core::problem::Problem, content_type = "application/problem+json"),
        Refusals,
    ),
    security(("basic" = [])),
)]
pub async fn issue(
    State(app): AppState,
    Caller(caller): Caller,
    body: JsonBody<IssueRequest>,
) -> Result<Response, ApiError> {
    caller.require(Action::Tokens, "")?;
    let body = body.value;
    let scopes = Scopes::parse(&body.scopes).map_err(ApiError::bad_request)?;
    if let Err(missing) = caller.scopes.holds_all(&scopes) {
        return Err(ApiError::new(
            403,
            format!(
                "a token can only have scopes its issuer holds; this credential does not hold {missing}"
            ),
        ));
    }
    let now = now();
    let (record, token) = TokenRequest {
        owner: caller.name,
        description: body.description,
        scopes,
        lifetime_secs: body.expires_in.unwrap_or(DEFAULT_LIFETIME_SECS),
        not_after: caller.expires_at,
    }
    .issue(now)
    .map_err(ApiError::bad_request)?;
    app.users.put_token(&record).await?;
    tracing::info!(id = %record.id, owner = %record.owner, "token issued");
    let mut response = json(
        201,
        &Issued {
            token,
            view: TokenView::of(&record, now),
        },
    );
    // The only time the token is sent: no cache keeps it.
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// The caller's tokens.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenList {
    /// Newest first.
    tokens: Vec<TokenView>,
}

/// `GET /v1/tokens`: the caller's tokens, newest first, never their secrets.
#[utoipa::path(
    get, path = "/v1/tokens", operation_id = "list_tokens", tag = "tokens",
    summary = "The caller's tokens",
    responses((status = 200, description = "Newest first, without secrets", body = TokenList), Refusals),
    security(("basic" = [])),
)]
pub async fn list(State(app): AppState, Caller(caller): Caller) -> Result<Response, ApiError> {
    caller.require(Action::Tokens, "")?;
    let now = now();
    let mut records = app.users.list_tokens(&caller.name).await?;
    records.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    let tokens = records.iter().map(|r| TokenView::of(r, now)).collect();
    Ok(json(200, &TokenList { tokens }))
}

/// `DELETE /v1/tokens/{id}`: revokes one of the caller's tokens at once.
#[utoipa::path(
    delete, path = "/v1/tokens/{id}", operation_id = "revoke_token", tag = "tokens",
    summary = "Revoke a token",
    params(("id" = String, Path, description = "The token's id")),
    responses((status = 204, description = "Revoked: the token no longer works"), Refusals),
    security(("basic" = [])),
)]
pub async fn revoke(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    caller.require(Action::Tokens, "")?;
    let well_formed = id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit());
    if !well_formed || !app.users.delete_token(&caller.name, &id).await? {
        return Err(ApiError::not_found(format!("no token {id}")));
    }
    tracing::info!(%id, owner = %caller.name, "token revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Who a credential is and what it may do.
#[derive(Serialize, utoipa::ToSchema)]
pub struct WhoAmI {
    /// The account.
    account: String,
    /// What this credential may do.
    #[schema(value_type = Vec<String>)]
    scopes: Scopes,
    /// The token's id, when the credential is a token.
    token: Option<String>,
    /// When the token stops working.
    expires_at: Option<String>,
}

/// `GET /v1/whoami`: the calling credential's account and scopes (needs no scope:
/// every valid credential may ask what it is).
#[utoipa::path(
    get, path = "/v1/whoami", operation_id = "whoami", tag = "tokens",
    summary = "The calling credential's account and scopes",
    responses((status = 200, description = "Who the credential acts for and what it may do", body = WhoAmI), Refusals),
    security(("basic" = [])),
)]
pub async fn whoami(Caller(caller): Caller) -> Result<Response, ApiError> {
    Ok(json(
        200,
        &WhoAmI {
            account: caller.name,
            scopes: caller.scopes,
            token: caller.token,
            expires_at: caller.expires_at.map(rfc3339),
        },
    ))
}
