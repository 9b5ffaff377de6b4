//! `repositories-api`: repositories as resources (docs/access.md, "Repositories").
//! `POST /v1/repositories` creates an APT, YUM or Helm repository the caller owns,
//! with a description, visibility, labels and further owners; `GET
//! /v1/repositories?selector=…` lists those the caller sees whose labels match;
//! `GET`, `PATCH` and `DELETE /v1/repositories/{kind}/{series}/{dist}/{ver}` show,
//! change and delete one (a repository with packages only with `?force=true`);
//! `/v1/repositories/archive/{name}` does the same for an archive repository.
//! The use cases are `cairn_core::repositories::Manager`'s.

mod external;
mod handlers;

use axum::Router;
use cairn_core::Config;
use cairn_core::auth::Accounts;
use cairn_core::events::EventLog;
use cairn_core::ports::{Catalog, RepoStore, SyncQueue};
use cairn_core::repositories::external::{AppStore, CredentialVault, IndexQueue, IndexSource};
use cairn_core::repositories::{Manager, RepositoryStore};
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Everything a request needs, built once per cold start.
pub struct App {
    /// Accounts and their tokens.
    pub users: Arc<dyn Accounts>,
    /// Created repositories.
    pub repositories: Arc<dyn RepositoryStore>,
    /// Package catalog (a deletion removes the packages).
    pub catalog: Arc<dyn Catalog>,
    /// Repository bucket.
    pub files: Arc<dyn RepoStore>,
    /// Metadata-sync queue.
    pub queue: Arc<dyn SyncQueue>,
    /// Settings (the configured repositories among them).
    pub config: Config,
    /// Apps and versions indexed from external repositories.
    pub apps: Arc<dyn AppStore>,
    /// The network, for checking external repositories.
    pub source: Arc<dyn IndexSource>,
    /// External repositories' credentials.
    pub vault: Arc<dyn CredentialVault>,
    /// Index runs.
    pub index_queue: Arc<dyn IndexQueue>,
    /// The event log (index runs).
    pub events: Arc<dyn EventLog>,
}

impl App {
    pub(crate) fn manager(&self) -> Manager<'_> {
        Manager {
            store: self.repositories.as_ref(),
            catalog: self.catalog.as_ref(),
            files: self.files.as_ref(),
            queue: self.queue.as_ref(),
            seed: &self.config.supported,
        }
    }
}

impl cairn_http::HasUsers for App {
    fn accounts(&self) -> &dyn Accounts {
        self.users.as_ref()
    }
}

/// The routes, each with its description.
fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::with_openapi(cairn_http::openapi::base(
        "Cairn repositories",
        "Repositories as resources: owners, visibility, labels and selectors.",
    ))
    .routes(routes!(handlers::create, handlers::list))
    .routes(routes!(handlers::show, handlers::update, handlers::delete))
    .routes(routes!(
        handlers::show_archive,
        handlers::update_archive,
        handlers::delete_archive
    ))
    .routes(routes!(external::validate))
    .routes(routes!(external::show, external::update, external::delete))
    .routes(routes!(external::index))
    .routes(routes!(external::events))
    .routes(routes!(external::apps))
    .routes(routes!(external::versions))
}

/// The endpoint group's routes.
pub fn router(app: Arc<App>) -> Router {
    let (router, _) = routes().split_for_parts();
    cairn_http::finish(router).with_state(app)
}

/// The endpoint group's OpenAPI description.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}
