//! What every route description shares: the problem answers, the Basic
//! authentication scheme, and the document each endpoint group starts from.
//!
//! Each handler carries a `#[utoipa::path]` next to its code and each router is
//! built with `utoipa_axum`'s `routes!`, so a route cannot be served without being
//! described. `cairn openapi` merges the groups into one document
//! (docs/openapi.json).

use cairn_core::problem::Problem;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, InfoBuilder, OpenApi, OpenApiBuilder};

/// The problems any route may answer (RFC 9457, `application/problem+json`).
#[derive(utoipa::IntoResponses)]
pub enum Refusals {
    /// The request is malformed; `detail` says what to change.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(#[to_schema] Problem),
    /// Credentials are missing or wrong.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(#[to_schema] Problem),
    /// No such resource, or not the caller's.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(#[to_schema] Problem),
    /// The server failed; `detail` never says why (the operator's logs do).
    #[response(status = 500, content_type = "application/problem+json")]
    Internal(#[to_schema] Problem),
}

/// A conflict with the resource's state (`detail` says which).
#[derive(utoipa::IntoResponses)]
pub enum Conflict {
    /// The resource's state does not allow the request.
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(#[to_schema] Problem),
}

/// The document an endpoint group's routes are added to: its title, and the HTTP
/// Basic scheme that `security(("basic" = []))` clauses name.
pub fn base(title: &str, description: &str) -> OpenApi {
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title(title)
                .description(Some(description))
                .version(env!("CARGO_PKG_VERSION"))
                .build(),
        )
        .components(Some(
            ComponentsBuilder::new()
                .security_scheme(
                    "basic",
                    SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
                )
                .build(),
        ))
        .build()
}
