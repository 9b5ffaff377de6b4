//! `tokens-api`: access tokens (docs/access.md). `POST /v1/tokens` issues a token
//! with scopes, a lifetime and a description, and shows it once; `GET /v1/tokens`
//! lists the caller's tokens (never their secrets); `DELETE /v1/tokens/{id}`
//! revokes one. A token is issued only with scopes the issuing credential holds.
//! `GET /v1/whoami` tells any credential its account and scopes. `POST
//! /v1/oauth/token` is OAuth 2.0's client-credentials grant: a short-lived token for
//! one job, from a stock OAuth client.

mod handlers;
mod oauth;

use axum::Router;
use cairn_core::auth::Accounts;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Everything a request needs, built once per cold start.
pub struct App {
    /// Accounts and their tokens.
    pub users: Arc<dyn Accounts>,
}

impl cairn_http::HasUsers for App {
    fn accounts(&self) -> &dyn Accounts {
        self.users.as_ref()
    }
}

/// The routes, each with its description.
fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::with_openapi(cairn_http::openapi::base(
        "Cairn tokens",
        "Scoped, expiring, revocable access tokens.",
    ))
    .routes(routes!(handlers::issue, handlers::list))
    .routes(routes!(handlers::revoke))
    .routes(routes!(handlers::whoami))
    .routes(routes!(oauth::token))
}

/// The endpoint group's routes. Every route needs credentials; all but `whoami` the
/// `tokens` scope.
pub fn router(app: Arc<App>) -> Router {
    let (router, _) = routes().split_for_parts();
    cairn_http::finish(router).with_state(app)
}

/// The endpoint group's OpenAPI description.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}
