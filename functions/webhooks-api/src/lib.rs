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
use axum::routing::{get, post};
use cairn_callback::AddressPolicy;
use cairn_core::events::EventLog;
use cairn_core::ports::UserDirectory;
use cairn_core::webhooks::{DeliveryLog, DeliveryQueue, WebhookStore};
use std::sync::Arc;

/// Everything a request needs, built once per cold start.
pub struct App {
    /// Subscriptions.
    pub hooks: Arc<dyn WebhookStore>,
    /// Accounts.
    pub users: Arc<dyn UserDirectory>,
    /// Which special-range addresses webhook URLs may have (`OutboundAllowList`).
    pub policy: AddressPolicy,
    /// The event log (ping, replay).
    pub log: Arc<dyn EventLog>,
    /// The delivery log.
    pub deliveries: Arc<dyn DeliveryLog>,
    /// The delivery queue (redeliver, replay).
    pub queue: Arc<dyn DeliveryQueue>,
}

impl cairn_http::HasUsers for App {
    fn users(&self) -> &dyn UserDirectory {
        self.users.as_ref()
    }
}

/// The endpoint group's routes. Every route needs credentials.
pub fn router(app: Arc<App>) -> Router {
    cairn_http::finish(
        Router::new()
            .route("/v1/webhooks", post(handlers::create).get(handlers::list))
            .route(
                "/v1/webhooks/{id}",
                get(handlers::show)
                    .patch(handlers::update)
                    .delete(handlers::delete),
            )
            .route("/v1/webhooks/{id}/rotate", post(handlers::rotate))
            .route("/v1/webhooks/{id}/ping", post(handlers::ping))
            .route("/v1/webhooks/{id}/deliveries", get(handlers::deliveries))
            .route(
                "/v1/webhooks/{id}/deliveries/{seq}",
                get(handlers::delivery),
            )
            .route(
                "/v1/webhooks/{id}/deliveries/{seq}/redeliver",
                post(handlers::redeliver),
            )
            .route("/v1/webhooks/{id}/replay", post(handlers::replay)),
    )
    .with_state(app)
}
