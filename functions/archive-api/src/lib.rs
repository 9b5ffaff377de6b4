//! `archive-api`: source archives (docs/archives.md). `POST /v1/archives`,
//! Repour's `POST /clone` and `POST /cancel/{id}`, `GET /v1/operations/{id}`,
//! `GET /v1/archives/{name}` and its tarballs. The work itself is queued to
//! `archive-worker`; the handlers only translate HTTP.

mod handlers;

use axum::Router;
use axum::routing::{get, post};
use cairn_archive::{Archiver, Operations};
use cairn_core::ports::UserDirectory;
use std::sync::Arc;
use std::time::Duration;

/// Everything a request needs, built once per cold start.
pub struct App {
    /// Upload accounts (the same as for packages).
    pub users: Arc<dyn UserDirectory>,
    /// Archive use cases.
    pub archiver: Archiver,
    /// Operations.
    pub operations: Operations,
    /// How long to wait for a result without `callback`.
    pub wait: Duration,
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
            .route("/v1/archives", post(handlers::archive))
            .route("/v1/archives/{name}", get(handlers::describe))
            .route("/v1/archives/{name}/{tarball}", get(handlers::tarball))
            .route("/clone", post(handlers::clone))
            .route("/cancel/{id}", post(handlers::cancel))
            .route("/v1/operations/{id}", get(handlers::operation)),
    )
    .with_state(app)
}
