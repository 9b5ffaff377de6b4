//! `repo-api`: the RWS-compatible upload API behind API Gateway (REST).
//!
//! `PUT /{kind}/{series}/{dist}/{ver}` uploads packages (multipart), `POST`
//! re-syncs the metadata, `GET` lists the packages, `GET`/`DELETE …/{file}` shows or
//! deletes one; `POST /v1/uploads` hands out presigned upload URLs for packages
//! larger than API Gateway accepts and `GET /v1/uploads/{id}` tells how one went.
//! The handlers only translate HTTP; the use cases are in `cairn-core`.

mod handlers;
mod multipart;

use axum::Router;
use cairn_core::Config;
use cairn_core::auth::Accounts;
use cairn_core::ports::{Catalog, RepoStore, SyncQueue, UploadLedger, UploadUrls};
use cairn_core::repositories::RepositoryStore;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Everything a request needs, built once per cold start.
pub struct App {
    /// Package catalog.
    pub catalog: Arc<dyn Catalog>,
    /// Upload accounts.
    pub users: Arc<dyn Accounts>,
    /// Repositories created through the API.
    pub repositories: Arc<dyn RepositoryStore>,
    /// Presigned upload tickets.
    pub tickets: Arc<dyn UploadLedger>,
    /// Repository bucket.
    pub store: Arc<dyn RepoStore>,
    /// Presigned URLs into the staging bucket.
    pub upload_urls: Arc<dyn UploadUrls>,
    /// Metadata-sync queue.
    pub queue: Arc<dyn SyncQueue>,
    /// Settings.
    pub config: Config,
}

impl cairn_http::HasUsers for App {
    fn accounts(&self) -> &dyn Accounts {
        self.users.as_ref()
    }
}

/// The routes, each with its description.
fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::with_openapi(cairn_http::openapi::base(
        "Cairn packages",
        "Upload (RWS compatible), list, delete and republish packages; presigned uploads.",
    ))
    .routes(routes!(
        handlers::list,
        handlers::upload,
        handlers::resync,
        handlers::delete_without_name
    ))
    .routes(routes!(handlers::package, handlers::delete))
    .routes(routes!(handlers::presign))
    .routes(routes!(handlers::ticket_status))
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
