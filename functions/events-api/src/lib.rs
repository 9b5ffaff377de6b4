//! `events-api`: the event log, read as JSON pages or followed as Server-Sent Events.
//!
//! `GET /v1/events?after=<cursor>&types=<t,prefix.*>&subject=<kind:name>&limit=<n>`
//! answers a JSON page and the cursor to resume after; `?last=<n>` the newest
//! events and the cursor to follow them from (what a live page shows first). With `Accept:
//! text/event-stream` the same request is a buffered long-poll: it returns as soon
//! as events past the cursor exist, or after the wait with a comment line, and a
//! browser `EventSource` reconnects with `Last-Event-ID` (API Gateway REST buffers
//! responses, so a held-open stream is not possible; docs/events.md).

mod handlers;

use axum::Router;
use cairn_core::auth::Accounts;
use cairn_core::events::EventLog;
use std::sync::Arc;
use std::time::Duration;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Everything a request needs, built once per cold start.
pub struct App {
    /// The event log.
    pub events: Arc<dyn EventLog>,
    /// Accounts, for the events that need credentials.
    pub users: Arc<dyn Accounts>,
    /// Created repositories: a private one's events are its readers' only.
    pub repositories: Arc<dyn cairn_core::repositories::RepositoryStore>,
    /// The configured repositories (public).
    pub seed: cairn_core::SupportedRepos,
    /// Longest an event-stream request waits for an event.
    pub wait: Duration,
    /// How often a waiting request looks at the log.
    pub poll: Duration,
}

impl cairn_http::HasUsers for App {
    fn accounts(&self) -> &dyn Accounts {
        self.users.as_ref()
    }
}

/// The routes, each with its description.
fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::with_openapi(cairn_http::openapi::base(
        "Cairn events",
        "The event log: JSON pages and Server-Sent Events.",
    ))
    .routes(routes!(handlers::events, handlers::preflight))
    .routes(routes!(handlers::openapi_document))
}

/// The endpoint group's routes.
pub fn router(app: Arc<App>) -> Router {
    let (router, _) = routes().split_for_parts();
    cairn_http::finish(router)
        .layer(axum::middleware::map_response(handlers::any_origin))
        .with_state(app)
}

/// The endpoint group's OpenAPI description.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}
