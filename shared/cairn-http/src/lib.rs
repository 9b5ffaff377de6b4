//! The HTTP layer every Cairn API Lambda shares.
//!
//! Each API Lambda is an axum [`Router`] served by `lambda_http` ([`serve`]). This
//! crate gives them the parts that must behave the same everywhere:
//! - [`ApiError`]: the one mapping from domain errors to an RFC 9457 problem
//!   response (a 5xx never says why; the cause is logged);
//! - [`Caller`]: authentication as an extractor (HTTP Basic against the user table);
//! - [`JsonBody`] and [`read_body`]: bodies read with a size limit and clear errors;
//! - [`finish`]: the 404 and 405 answers for paths and methods no route takes;
//! - [`openapi`]: what the route descriptions share.

mod auth;
mod body;
mod error;
mod extract;
pub mod openapi;

pub use auth::{Caller, HasUsers, MaybeCaller};
pub use body::{JsonBody, MAX_JSON_BODY, read_body};
pub use error::ApiError;
pub use extract::{ApiBase, PathParams, json};

use axum::Router;
use axum::extract::Request;
use axum::http::Method;
use axum::response::{IntoResponse, Response};

/// Finishes an endpoint group's router: unknown paths answer 404 and known paths
/// with another method 405, both as problems; bodies are not limited here (each
/// handler reads its body with its own limit).
pub fn finish<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(axum::extract::DefaultBodyLimit::disable())
}

async fn no_route(method: Method, req: Request) -> Response {
    ApiError::not_found(format!("no route for {method} {}", req.uri().path())).into_response()
}

async fn wrong_method(method: Method, req: Request) -> Response {
    ApiError::method_not_allowed(format!("{method} is not allowed on {}", req.uri().path()))
        .into_response()
}

/// Now, Unix seconds (what credentials' and tokens' times are in).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Unix seconds as RFC 3339 (`2026-12-03T06:00:00Z`); empty if out of range.
pub fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Serves `router` as this Lambda's handler until the runtime stops it.
///
/// Routes match API Gateway's `path`, which has no stage in it; the template sets
/// `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH` so that lambda_http does not add it back.
pub async fn serve(router: Router) -> Result<(), lambda_http::Error> {
    lambda_http::run(router).await
}
