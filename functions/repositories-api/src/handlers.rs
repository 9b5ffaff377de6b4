//! The handlers: HTTP in, a `Manager` call, HTTP out.

use crate::App;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cairn_core::labels::{Labels, MAX_SELECTOR, Selector};
use cairn_core::problem::Problem;
use cairn_core::repositories::{
    Deletion, Format, Listed, NewRepository, RepositoryState, RepositoryUpdate, Visibility,
};
use cairn_http::openapi::{Conflict, Refusals};
use cairn_http::{ApiError, Caller, JsonBody, MaybeCaller, PathParams, json, rfc3339, unix_now};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;

type AppState = State<Arc<App>>;

/// `/v1/repositories/{kind}/{series}/{dist}/{ver}`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct PathOf {
    /// First segment (`release`, `team`, ...).
    kind: String,
    /// Second segment (a series).
    series: String,
    /// Third segment (a distribution).
    dist: String,
    /// Fourth segment (its version, the APT suite).
    ver: String,
}

impl PathOf {
    fn path(&self) -> String {
        format!("{}/{}/{}/{}", self.kind, self.series, self.dist, self.ver)
    }
}

/// A repository as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RepositoryView {
    /// `kind/series/dist/version`.
    path: String,
    /// `apt`, `yum` or `helm`.
    format: &'static str,
    /// What it is for.
    description: String,
    /// `public` or `private`.
    #[schema(value_type = String)]
    visibility: Visibility,
    /// Its labels.
    #[schema(value_type = Object)]
    labels: Labels,
    /// Accounts that manage it.
    owners: Vec<String>,
    /// Architectures it indexes (empty: the format's defaults).
    architectures: Vec<String>,
    /// `active`, or `deleting` while its packages go.
    #[schema(value_type = String)]
    state: RepositoryState,
    /// Whether the deployment configures it (`SupportedRepos`) rather than the API.
    configured: bool,
    /// When it was created (absent for configured ones).
    created_at: Option<String>,
    /// Incremented by every change.
    version: u64,
    /// Its packages (an archive repository's archives) and how clients use them:
    /// `GET` this.
    packages: String,
    /// An archive repository's name (`POST /v1/archives` `name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    /// An external repository's URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    /// The user name sent to an external repository, shown to its owners and admins
    /// (its password is never shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    /// Minutes between an external repository's scheduled index runs (0: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    interval_minutes: Option<u32>,
}

impl RepositoryView {
    pub(crate) fn of(listed: Listed) -> Self {
        let r = listed.repository;
        RepositoryView {
            packages: match (r.archive_name(), r.format) {
                (Some(name), _) => format!("/v1/archives/{name}"),
                (None, Format::ExternalHelm) => format!("/v1/apps?repository={}", r.path),
                (None, _) => format!("/{}", r.path),
            },
            name: r
                .archive_name()
                .or_else(|| r.path.strip_prefix("external/"))
                .map(str::to_string),
            format: match r.format {
                Format::Deb => "apt",
                Format::Rpm => "yum",
                Format::Helm => "helm",
                Format::Archive => "archive",
                Format::ExternalHelm => "external-helm",
            },
            url: r.external.as_ref().map(|e| e.url.clone()),
            // Shown to its managers only (`external::show`, `external::create`).
            username: None,
            interval_minutes: r.external.as_ref().map(|e| e.interval_minutes),
            path: r.path,
            description: r.description,
            visibility: r.visibility,
            labels: r.labels,
            owners: r.owners,
            architectures: r.architectures,
            state: r.state,
            configured: listed.configured,
            created_at: (!listed.configured).then(|| rfc3339(r.created_at)),
            version: r.version,
        }
    }
}

/// `POST /v1/repositories` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[allow(dead_code)] // Read through `NewRepository`; here to describe the body.
pub struct CreateBody {
    /// `apt`, `yum`, `helm`, `archive` or `external-helm`.
    format: String,
    /// `kind/series/dist/version`: where it lives (`team/db/ubuntu/noble`); an
    /// archive repository's is `archive/<name>` (or give `name`).
    path: Option<String>,
    /// An archive repository's name (the `name` its archives are made under), or an
    /// external repository's.
    name: Option<String>,
    /// An external repository's URL: `<url>/index.yaml` is its index.
    url: Option<String>,
    /// An external repository's credentials, `{"username", "password"}`: checked,
    /// kept encrypted, never returned.
    #[schema(value_type = Object)]
    credentials: Option<serde_json::Value>,
    /// Minutes between an external repository's scheduled index runs (default 60,
    /// at least 5; 0: on creation and on demand only).
    interval_minutes: Option<u32>,
    /// What it is for (at most 1,000 characters).
    description: Option<String>,
    /// `public` (default) or `private`.
    visibility: Option<String>,
    /// Labels that selectors match: `{"team": "db"}`.
    #[schema(value_type = Object)]
    labels: Option<Labels>,
    /// Further owners besides the creator.
    owners: Option<Vec<String>>,
    /// Architectures to index (default: the format's).
    architectures: Option<Vec<String>>,
}

/// `POST /v1/repositories`: a repository the caller owns.
#[utoipa::path(
    post, path = "/v1/repositories", operation_id = "create_repository", tag = "repositories",
    summary = "Create a repository",
    description = "An APT, YUM or Helm repository at a path the caller's `repositories` scope \
        covers, owned by the caller (and `owners`). Its first, empty publication is queued, \
        so clients can read it at once.",
    request_body = CreateBody,
    responses(
        (status = 201, description = "Created", body = RepositoryView),
        (status = 403, description = "The credential lacks `repositories:PATH`",
         body = Problem, content_type = "application/problem+json"),
        Refusals, Conflict,
    ),
    security(("basic" = [])),
)]
pub async fn create(
    State(app): AppState,
    Caller(caller): Caller,
    body: JsonBody<NewRepository>,
) -> Result<Response, ApiError> {
    if body.value.format == "external-helm" {
        return crate::external::create(&app, &caller, body.value).await;
    }
    let (repo, seq) = app
        .manager()
        .create(&caller, body.value, unix_now())
        .await?;
    let mut body = serde_json::to_value(RepositoryView::of(Listed {
        repository: repo,
        configured: false,
    }))
    .map_err(ApiError::internal)?;
    body["sync"] = json!({"queued": seq.is_some(), "seq": seq});
    Ok(json(201, &body))
}

/// `GET /v1/repositories` query.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// A label selector, Kubernetes syntax: `team=db,env in (prod,stage),!experimental`.
    selector: Option<String>,
}

/// The repositories a caller sees.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RepositoryList {
    /// By path.
    repositories: Vec<RepositoryView>,
}

/// A `selector` query parameter, parsed (the listings of repositories and apps).
pub(crate) fn selector_param(text: Option<&str>) -> Result<Option<Selector>, ApiError> {
    match text {
        Some(text) if text.len() > MAX_SELECTOR => Err(ApiError::bad_request(format!(
            "selector: at most {MAX_SELECTOR} characters"
        ))),
        Some(text) => Ok(Some(Selector::parse(text).map_err(ApiError::bad_request)?)),
        None => Ok(None),
    }
}

/// `GET /v1/repositories`: what the caller sees, optionally only what a selector
/// matches.
#[utoipa::path(
    get, path = "/v1/repositories", operation_id = "list_repositories", tag = "repositories",
    summary = "The repositories the caller sees",
    description = "Public ones, the caller's own, those whose labels one of the account's \
        selectors matches (admins: all), and the configured ones; `selector` keeps those \
        whose labels it matches. Anonymous callers see public repositories.",
    params(ListParams),
    responses((status = 200, description = "By path", body = RepositoryList), Refusals),
)]
pub async fn list(
    State(app): AppState,
    MaybeCaller(caller): MaybeCaller,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let selector = selector_param(params.selector.as_deref())?;
    let listed = app
        .manager()
        .list(caller.as_ref(), selector.as_ref())
        .await?;
    Ok(json(
        200,
        &RepositoryList {
            repositories: listed.into_iter().map(RepositoryView::of).collect(),
        },
    ))
}

/// `GET /v1/repositories/{path}`: one repository (404 if the caller does not see it).
#[utoipa::path(
    get, path = "/v1/repositories/{kind}/{series}/{dist}/{ver}",
    operation_id = "show_repository", tag = "repositories",
    summary = "One repository",
    description = "404 for a private repository the caller does not see, as for none.",
    params(PathOf),
    responses((status = 200, description = "The repository", body = RepositoryView), Refusals),
)]
pub async fn show(
    State(app): AppState,
    MaybeCaller(caller): MaybeCaller,
    PathParams(params): PathParams<PathOf>,
) -> Result<Response, ApiError> {
    show_path(&app, caller, &params.path()).await
}

async fn show_path(
    app: &App,
    caller: Option<cairn_core::auth::Principal>,
    path: &str,
) -> Result<Response, ApiError> {
    let listed = app.manager().get(caller.as_ref(), path).await?;
    Ok(json(200, &RepositoryView::of(listed)))
}

/// An archive repository's name in a route.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ArchiveOf {
    /// The archive name (`POST /v1/archives` `name`).
    name: String,
}

impl ArchiveOf {
    fn path(&self) -> String {
        cairn_core::repositories::archive_path(&self.name)
    }
}

/// `GET /v1/repositories/archive/{name}`: one archive repository.
#[utoipa::path(
    get, path = "/v1/repositories/archive/{name}",
    operation_id = "show_archive_repository", tag = "repositories",
    summary = "One archive repository",
    description = "404 for a private one the caller does not see, as for none.",
    params(ArchiveOf),
    responses((status = 200, description = "The repository", body = RepositoryView), Refusals),
)]
pub async fn show_archive(
    State(app): AppState,
    MaybeCaller(caller): MaybeCaller,
    PathParams(params): PathParams<ArchiveOf>,
) -> Result<Response, ApiError> {
    show_path(&app, caller, &params.path()).await
}

/// `PATCH /v1/repositories/{path}` body: each field given replaces the current one.
#[derive(Deserialize, utoipa::ToSchema)]
#[allow(dead_code)] // Read through `RepositoryUpdate`; here to describe the body.
pub struct UpdateBody {
    /// What it is for.
    description: Option<String>,
    /// `public` or `private`.
    visibility: Option<String>,
    /// Its labels (all of them).
    #[schema(value_type = Object)]
    labels: Option<Labels>,
    /// Its owners (all of them, at least one).
    owners: Option<Vec<String>>,
    /// Architectures to index.
    architectures: Option<Vec<String>>,
}

/// `PATCH /v1/repositories/{path}`: changes a repository the caller owns.
#[utoipa::path(
    patch, path = "/v1/repositories/{kind}/{series}/{dist}/{ver}",
    operation_id = "update_repository", tag = "repositories",
    summary = "Change a repository",
    description = "Owners and admins, with `repositories:PATH`. Configured repositories are \
        changed in the deployment's configuration instead (409).",
    params(PathOf),
    request_body = UpdateBody,
    responses(
        (status = 200, description = "The repository as changed", body = RepositoryView),
        (status = 403, description = "Not an owner, or the credential lacks the scope",
         body = Problem, content_type = "application/problem+json"),
        Refusals, Conflict,
    ),
    security(("basic" = [])),
)]
pub async fn update(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(params): PathParams<PathOf>,
    body: JsonBody<RepositoryUpdate>,
) -> Result<Response, ApiError> {
    update_path(&app, &caller, &params.path(), &body.value).await
}

/// `PATCH /v1/repositories/archive/{name}`: changes an archive repository the caller owns.
#[utoipa::path(
    patch, path = "/v1/repositories/archive/{name}",
    operation_id = "update_archive_repository", tag = "repositories",
    summary = "Change an archive repository",
    description = "Owners and admins, with `repositories:archive/NAME`: description, labels, \
        owners. Its visibility never changes (409).",
    params(ArchiveOf),
    request_body = UpdateBody,
    responses(
        (status = 200, description = "The repository as changed", body = RepositoryView),
        (status = 403, description = "Not an owner, or the credential lacks the scope",
         body = Problem, content_type = "application/problem+json"),
        Refusals, Conflict,
    ),
    security(("basic" = [])),
)]
pub async fn update_archive(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(params): PathParams<ArchiveOf>,
    body: JsonBody<RepositoryUpdate>,
) -> Result<Response, ApiError> {
    update_path(&app, &caller, &params.path(), &body.value).await
}

async fn update_path(
    app: &App,
    caller: &cairn_core::auth::Principal,
    path: &str,
    change: &RepositoryUpdate,
) -> Result<Response, ApiError> {
    let repo = app.manager().update(caller, path, change).await?;
    Ok(json(
        200,
        &RepositoryView::of(Listed {
            repository: repo,
            configured: false,
        }),
    ))
}

/// `DELETE /v1/repositories/{path}` query.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteParams {
    /// `true` to delete a repository that has packages, and them with it.
    force: Option<bool>,
}

/// `DELETE /v1/repositories/{path}`: deletes a repository the caller owns.
#[utoipa::path(
    delete, path = "/v1/repositories/{kind}/{series}/{dist}/{ver}",
    operation_id = "delete_repository", tag = "repositories",
    summary = "Delete a repository",
    description = "An empty repository goes at once (204). One with packages needs \
        `force=true`: it is marked `deleting` (no more uploads), its packages are deleted \
        and the next publication removes their files, then its metadata and record (202). \
        Repeating the request is safe.",
    params(PathOf, DeleteParams),
    responses(
        (status = 204, description = "Deleted"),
        (status = 202, description = "Deleting: its packages are being removed", body = Object),
        (status = 403, description = "Not an owner, or the credential lacks the scope",
         body = Problem, content_type = "application/problem+json"),
        Refusals, Conflict,
    ),
    security(("basic" = [])),
)]
pub async fn delete(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(params): PathParams<PathOf>,
    query: Result<Query<DeleteParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    delete_path(&app, &caller, &params.path(), query.force.unwrap_or(false)).await
}

/// `DELETE /v1/repositories/archive/{name}`: deletes an empty archive repository.
#[utoipa::path(
    delete, path = "/v1/repositories/archive/{name}",
    operation_id = "delete_archive_repository", tag = "repositories",
    summary = "Delete an archive repository",
    description = "Only while it holds no archives (204): archives are immutable, so one \
        that holds some stays (409, whatever `force` says).",
    params(ArchiveOf),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not an owner, or the credential lacks the scope",
         body = Problem, content_type = "application/problem+json"),
        Refusals, Conflict,
    ),
    security(("basic" = [])),
)]
pub async fn delete_archive(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(params): PathParams<ArchiveOf>,
) -> Result<Response, ApiError> {
    delete_path(&app, &caller, &params.path(), false).await
}

async fn delete_path(
    app: &App,
    caller: &cairn_core::auth::Principal,
    path: &str,
    force: bool,
) -> Result<Response, ApiError> {
    match app.manager().delete(caller, path, force).await? {
        Deletion::Deleted => Ok(StatusCode::NO_CONTENT.into_response()),
        Deletion::Deleting(packages) => Ok(json(
            202,
            &json!({"path": path, "state": "deleting", "packages": packages,
                    "status_url": format!("/v1/repositories/{path}")}),
        )),
    }
}
