//! `archive-api`: source archives (docs/archives.md). `POST /v1/archives`,
//! Repour's `POST /clone` and `POST /cancel/{id}`, `GET /v1/operations/{id}`,
//! `GET /v1/archives/{name}` and its tarballs. The work itself is queued to
//! `archive-worker`; the handlers only translate HTTP.

mod handlers;

use axum::Router;
use cairn_archive::{Archiver, Operations};
use cairn_core::auth::Accounts;
use std::sync::Arc;
use std::time::Duration;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Everything a request needs, built once per cold start.
pub struct App {
    /// Upload accounts (the same as for packages).
    pub users: Arc<dyn Accounts>,
    /// Archive use cases (public names; a private archive repository's are derived).
    pub archiver: Archiver,
    /// Repository records: archive repositories make a name private.
    pub repositories: Arc<dyn cairn_core::repositories::RepositoryStore>,
    /// Operations.
    pub operations: Operations,
    /// Builds: whose job may archive its workspace.
    pub builds: Arc<dyn cairn_core::builds::BuildStore>,
    /// How long to wait for a result without `callback`.
    pub wait: Duration,
}

impl cairn_http::HasUsers for App {
    fn accounts(&self) -> &dyn Accounts {
        self.users.as_ref()
    }
}

/// The routes, each with its description.
fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::with_openapi(cairn_http::openapi::base(
        "Cairn source archives",
        "Immutable archives of untrusted git origins, and Repour's clone API.",
    ))
    .routes(routes!(handlers::archive))
    .routes(routes!(handlers::archive_workspace))
    .routes(routes!(handlers::describe))
    .routes(routes!(handlers::tarball))
    .routes(routes!(handlers::clone))
    .routes(routes!(handlers::cancel))
    .routes(routes!(handlers::operation))
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
