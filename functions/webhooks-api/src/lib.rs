//! `webhooks-api`: webhook subscriptions (docs/events.md, "Webhooks").
//!
//! `POST /v1/webhooks` subscribes a URL to event types (and optionally subjects) and
//! answers the signing secret once; `GET /v1/webhooks[/{id}]`, `PATCH` and `DELETE
//! /v1/webhooks/{id}` manage the caller's own subscriptions; `POST
//! /v1/webhooks/{id}/rotate` makes a new secret while the old one keeps signing for a
//! grace period; `POST …/ping` sends a test event; `GET …/deliveries[/{seq}]` is the
//! delivery log, `POST …/deliveries/{seq}/redeliver` sends one event again and `POST
//! …/replay {"since"}` every matching event since a cursor. URLs go through the same address policy as archive origins and
//! callbacks, when saved and again when delivering.

mod handlers;

use axum::Router;
use cairn_callback::AddressPolicy;
use cairn_core::auth::Accounts;
use cairn_core::events::EventLog;
use cairn_core::webhooks::{DeliveryLog, DeliveryQueue, WebhookStore};
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Everything a request needs, built once per cold start.
pub struct App {
    /// Subscriptions.
    pub hooks: Arc<dyn WebhookStore>,
    /// Accounts.
    pub users: Arc<dyn Accounts>,
    /// Which special-range addresses webhook URLs may have (`OutboundAllowList`).
    pub policy: AddressPolicy,
    /// The event log (ping, replay).
    pub log: Arc<dyn EventLog>,
    /// The delivery log.
    pub deliveries: Arc<dyn DeliveryLog>,
    /// The delivery queue (redeliver, replay).
    pub queue: Arc<dyn DeliveryQueue>,
    /// Created repositories: a replay skips private ones' events the owner may not read.
    pub repositories: Arc<dyn cairn_core::repositories::RepositoryStore>,
    /// The configured repositories (public).
    pub seed: cairn_core::SupportedRepos,
}

impl cairn_http::HasUsers for App {
    fn accounts(&self) -> &dyn Accounts {
        self.users.as_ref()
    }
}

/// The routes, each with its description.
fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::with_openapi(cairn_http::openapi::base(
        "Cairn webhooks",
        "Webhook subscriptions, the delivery log, redelivery and replay.",
    ))
    .routes(routes!(handlers::create, handlers::list))
    .routes(routes!(handlers::show, handlers::update, handlers::delete))
    .routes(routes!(handlers::rotate))
    .routes(routes!(handlers::ping))
    .routes(routes!(handlers::deliveries))
    .routes(routes!(handlers::delivery))
    .routes(routes!(handlers::redeliver))
    .routes(routes!(handlers::replay))
}

/// The endpoint group's routes. Every route needs credentials.
pub fn router(app: Arc<App>) -> Router {
    let (router, _) = routes().split_for_parts();
    cairn_http::finish(router).with_state(app)
}

/// The endpoint group's OpenAPI description.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}
