//! The artifact store's handlers: blobs are uploaded and downloaded through presigned
//! URLs (the bytes never pass through the API), names point at blobs.

use crate::App;
use axum::extract::State;
use axum::response::Response;
use cairn_core::builds::{Artifact, Presigned, Upload};
use cairn_http::openapi::Refusals;
use cairn_http::{ApiError, Caller, JsonBody, PathParams, json};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

type AppState = State<Arc<App>>;

fn artifact_view(artifact: &Artifact, download: Option<&Presigned>) -> Value {
    let mut view = serde_json::to_value(artifact).unwrap_or(Value::Null);
    if let Some(download) = download {
        view["download"] = json!(download);
    }
    view
}

/// `POST /v1/projects/{name}/blobs` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlobRequest {
    /// The SHA-256 of the bytes, lowercase hex.
    sha256: String,
    /// Their size, bytes (at most 5 GiB).
    size: u64,
}

/// `POST /v1/projects/{name}/blobs`: asks to store bytes.
#[utoipa::path(
    post, path = "/v1/projects/{name}/blobs", operation_id = "upload_blob", tag = "artifacts",
    summary = "Store bytes in a project's artifact store",
    description = "Blobs are named by their SHA-256 and stored once per project. If the \
        project has these bytes, `stored` is true and there is nothing to send. Otherwise \
        `upload` says where: a `PUT` of exactly these bytes to `url` with `headers`, before \
        `expires_at`; the store refuses bytes whose SHA-256 differs. Then give the blob a \
        name (`PUT /v1/projects/{name}/artifacts/{artifact}`) or report it as a job's \
        workspace. Needs the `artifacts:<name>` scope.",
    params(("name" = String, Path, description = "The project")),
    request_body = BlobRequest,
    responses((status = 200, description = "Stored already, or where to upload", body = Object), Refusals),
    security(("basic" = [])),
)]
pub async fn upload_blob(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(project): PathParams<String>,
    body: JsonBody<BlobRequest>,
) -> Result<Response, ApiError> {
    let request = body.value;
    let answer = match app
        .artifacts
        .upload(&caller, &project, &request.sha256, request.size)
        .await?
    {
        Upload::Stored { size } => {
            json!({"sha256": request.sha256, "size": size, "stored": true, "upload": null})
        }
        Upload::Put(url) => {
            json!({"sha256": request.sha256, "size": request.size, "stored": false, "upload": url})
        }
    };
    Ok(json(200, &answer))
}

/// Path of one artifact.
#[derive(Deserialize)]
pub struct ArtifactPath {
    name: String,
    artifact: String,
}

/// `PUT /v1/projects/{name}/artifacts/{artifact}` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NameRequest {
    /// The blob's SHA-256 (uploaded already).
    sha256: String,
    /// The build that saved it, for the record.
    build: Option<String>,
}

/// `PUT /v1/projects/{name}/artifacts/{artifact}`: names a blob.
#[utoipa::path(
    put, path = "/v1/projects/{name}/artifacts/{artifact}", operation_id = "put_artifact", tag = "artifacts",
    summary = "Give a stored blob a name",
    description = "The name then reads the blob, until it is named again (the latest wins), \
        deleted, or `ArtifactRetentionDays` pass. 400 if the project has no such blob.",
    params(
        ("name" = String, Path, description = "The project"),
        ("artifact" = String, Path, description = "The artifact's name: letters, digits, `.`, `_`, `-`, `+`"),
    ),
    request_body = NameRequest,
    responses((status = 200, description = "The artifact", body = Object), Refusals),
    security(("basic" = [])),
)]
pub async fn put_artifact(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(path): PathParams<ArtifactPath>,
    body: JsonBody<NameRequest>,
) -> Result<Response, ApiError> {
    let request = body.value;
    if request.build.as_ref().is_some_and(|b| b.len() > 64) {
        return Err(ApiError::bad_request("build: at most 64 characters"));
    }
    let artifact = app
        .artifacts
        .name(
            &caller,
            &path.name,
            &path.artifact,
            &request.sha256,
            request.build,
        )
        .await?;
    Ok(json(200, &artifact_view(&artifact, None)))
}

/// `GET /v1/projects/{name}/artifacts/{artifact}`.
#[utoipa::path(
    get, path = "/v1/projects/{name}/artifacts/{artifact}", operation_id = "show_artifact", tag = "artifacts",
    summary = "An artifact, with a URL that reads its bytes",
    description = "`download` is a presigned `GET`, good for 15 minutes.",
    params(
        ("name" = String, Path, description = "The project"),
        ("artifact" = String, Path, description = "The artifact's name"),
    ),
    responses((status = 200, description = "The artifact", body = Object), Refusals),
    security(("basic" = [])),
)]
pub async fn show_artifact(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(path): PathParams<ArtifactPath>,
) -> Result<Response, ApiError> {
    let (artifact, download) = app
        .artifacts
        .get(&caller, &path.name, &path.artifact)
        .await?;
    Ok(json(200, &artifact_view(&artifact, Some(&download))))
}

/// `DELETE /v1/projects/{name}/artifacts/{artifact}`.
#[utoipa::path(
    delete, path = "/v1/projects/{name}/artifacts/{artifact}", operation_id = "delete_artifact", tag = "artifacts",
    summary = "Delete an artifact's name",
    description = "The bytes stay until their retention ends (other names or a build's \
        workspace may hold the same).",
    params(
        ("name" = String, Path, description = "The project"),
        ("artifact" = String, Path, description = "The artifact's name"),
    ),
    responses((status = 204, description = "Deleted"), Refusals),
    security(("basic" = [])),
)]
pub async fn delete_artifact(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(path): PathParams<ArtifactPath>,
) -> Result<Response, ApiError> {
    app.artifacts
        .delete(&caller, &path.name, &path.artifact)
        .await?;
    Ok(axum::response::IntoResponse::into_response(
        axum::http::StatusCode::NO_CONTENT,
    ))
}

/// `GET /v1/projects/{name}/artifacts`.
#[utoipa::path(
    get, path = "/v1/projects/{name}/artifacts", operation_id = "list_artifacts", tag = "artifacts",
    summary = "A project's artifacts, by name",
    params(("name" = String, Path, description = "The project")),
    responses((status = 200, description = "`artifacts`: each name, blob and size", body = Object), Refusals),
    security(("basic" = [])),
)]
pub async fn list_artifacts(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(project): PathParams<String>,
) -> Result<Response, ApiError> {
    let artifacts = app.artifacts.list(&caller, &project).await?;
    let views: Vec<Value> = artifacts.iter().map(|a| artifact_view(a, None)).collect();
    Ok(json(200, &json!({"artifacts": views})))
}
