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
use axum::routing::{get, post};
use cairn_core::Config;
use cairn_core::ports::{Catalog, RepoStore, SyncQueue, UploadLedger, UploadUrls, UserDirectory};
use std::sync::Arc;

/// Everything a request needs, built once per cold start.
pub struct App {
    /// Package catalog.
    pub catalog: Arc<dyn Catalog>,
    /// Upload accounts.
    pub users: Arc<dyn UserDirectory>,
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
    fn users(&self) -> &dyn UserDirectory {
        self.users.as_ref()
    }
}

/// The endpoint group's routes.
pub fn router(app: Arc<App>) -> Router {
    let repo = "/{kind}/{series}/{dist}/{ver}";
    cairn_http::finish(
        Router::new()
            .route(
                repo,
                get(handlers::list)
                    .put(handlers::upload)
                    .post(handlers::resync)
                    .delete(handlers::delete_without_name),
            )
            .route(
                &format!("{repo}/{{file}}"),
                get(handlers::package).delete(handlers::delete),
            )
            .route("/v1/uploads", post(handlers::presign))
            .route("/v1/uploads/{id}", get(handlers::ticket_status)),
    )
    .with_state(app)
}
