//! `builds-api`: build projects, builds and the worker protocol (docs/builds.md).
//!
//! Projects: `PUT /v1/projects/{name}` defines one from YAML or JSON (refusals name
//! the line), `GET /v1/projects[/{name}]`. Builds: `POST /v1/projects/{name}/builds`
//! starts one, `GET /v1/builds?project=`, `GET /v1/builds/{id}`, `POST
//! /v1/builds/{id}/cancel`, `GET /v1/builds/{id}/log`. Workers (a credential with the
//! `worker` scope): `POST /v1/work` long-polls for a job and receives it with a token
//! for that job alone, which then heartbeats, streams the log and reports the result
//! under `/v1/builds/{id}/jobs/{job}/`. Artifacts (the `artifacts:<project>`
//! scope): `POST /v1/projects/{name}/blobs` answers where to upload bytes (or that
//! they are stored), `PUT|GET|DELETE /v1/projects/{name}/artifacts/{artifact}` name,
//! read and forget them.

mod artifacts;
mod handlers;

use axum::Router;
use cairn_core::auth::Accounts;
use cairn_core::builds::{Artifacts, Builds};
use std::sync::Arc;
use std::time::Duration;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Everything a request needs, built once per cold start.
pub struct App {
    /// Accounts and their tokens.
    pub users: Arc<dyn Accounts>,
    /// The build controller's use cases.
    pub builds: Builds,
    /// The artifact store's.
    pub artifacts: Artifacts,
    /// Longest a worker's poll waits for a job.
    pub max_wait: Duration,
}

impl cairn_http::HasUsers for App {
    fn accounts(&self) -> &dyn Accounts {
        self.users.as_ref()
    }
}

/// The routes, each with its description.
fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::with_openapi(cairn_http::openapi::base(
        "Cairn builds",
        "Projects and pipelines, builds, and the protocol of pull-based workers.",
    ))
    .routes(routes!(handlers::list_projects))
    .routes(routes!(handlers::put_project, handlers::show_project))
    .routes(routes!(handlers::start_build))
    .routes(routes!(handlers::list_builds))
    .routes(routes!(handlers::show_build))
    .routes(routes!(handlers::cancel_build))
    .routes(routes!(handlers::read_log))
    .routes(routes!(handlers::claim))
    .routes(routes!(handlers::heartbeat))
    .routes(routes!(handlers::append_log))
    .routes(routes!(handlers::report))
    .routes(routes!(artifacts::upload_blob))
    .routes(routes!(artifacts::list_artifacts))
    .routes(routes!(
        artifacts::put_artifact,
        artifacts::show_artifact,
        artifacts::delete_artifact
    ))
}

/// The endpoint group's routes; every one needs credentials.
pub fn router(app: Arc<App>) -> Router {
    let (router, _) = routes().split_for_parts();
    cairn_http::finish(router).with_state(app)
}

/// The endpoint group's OpenAPI description.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}
