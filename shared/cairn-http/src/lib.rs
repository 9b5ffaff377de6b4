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
    lambda_http::run(router.layer(axum::middleware::from_fn(request_span))).await
}

/// Runs the request inside a `request` span, so that every line it logs names its
/// operation (method and route), its path and, where the route names one, its
/// repository, beside the runtime's request id.
async fn request_span(req: Request, next: axum::middleware::Next) -> Response {
    use tracing::Instrument;
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("-", |p| p.as_str())
        .to_string();
    let path = req.uri().path().to_string();
    let span = tracing::info_span!(
        "request",
        operation = %format!("{} {route}", req.method()),
        path = %path,
        repository = %repository_of(&route, &path).unwrap_or_default(),
    );
    next.run(req).instrument(span).await
}

/// The repository a request's route names: `{kind}/{series}/{dist}/{ver}` (the upload
/// and repository routes), `external/<name>` or `archive/<name>`.
fn repository_of(route: &str, path: &str) -> Option<String> {
    let route: Vec<&str> = route.trim_start_matches('/').split('/').collect();
    let path: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if let Some(at) = route.iter().position(|s| *s == "{kind}")
        && route.get(at + 3) == Some(&"{ver}")
    {
        return path.get(at..at + 4).map(|parts| parts.join("/"));
    }
    match route[..] {
        [
            "v1",
            "repositories",
            kind @ ("external" | "archive"),
            "{name}",
            ..,
        ] => Some(format!("{kind}/{}", path.get(3)?)),
        ["v1", "archives", "{name}", ..] => Some(format!("archive/{}", path.get(2)?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::repository_of;

    #[test]
    fn the_repository_comes_from_the_route_s_parameters() {
        for (route, path, repository) in [
            (
                "/{kind}/{series}/{dist}/{ver}",
                "/release/2.11/ubuntu/jammy",
                Some("release/2.11/ubuntu/jammy"),
            ),
            (
                "/{kind}/{series}/{dist}/{ver}/{file}",
                "/live/3.0/el/8/a.rpm",
                Some("live/3.0/el/8"),
            ),
            (
                "/v1/repositories/{kind}/{series}/{dist}/{ver}",
                "/v1/repositories/r/1/d/v",
                Some("r/1/d/v"),
            ),
            (
                "/v1/repositories/external/{name}/events",
                "/v1/repositories/external/ch/events",
                Some("external/ch"),
            ),
            (
                "/v1/archives/{name}/{tarball}",
                "/v1/archives/tool/x.tar.gz",
                Some("archive/tool"),
            ),
            ("/v1/tokens/{id}", "/v1/tokens/t1", None),
            ("-", "/nothing/here", None),
        ] {
            assert_eq!(repository_of(route, path).as_deref(), repository, "{route}");
        }
    }
}
