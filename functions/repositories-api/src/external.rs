//! External Helm repositories and the apps indexed from them: create (checked
//! first), validate only, show with its index, request a run, its runs, delete;
//! `GET /v1/apps` and an app's versions.

use crate::App;
use crate::handlers::RepositoryView;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cairn_core::auth::Principal;
use cairn_core::events::Subject;
use cairn_core::problem::Problem;
use cairn_core::repositories::external::{
    Credentials, Externals, app_versions, external_path, index_key, list_apps,
};
use cairn_core::repositories::{Listed, NewRepository, RepositoryError, readable_events};
use cairn_http::openapi::{Conflict, Refusals};
use cairn_http::{ApiError, Caller, JsonBody, MaybeCaller, PathParams, json, rfc3339, unix_now};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

type AppState = State<Arc<App>>;

/// Longest `q` of `GET /v1/apps`.
const MAX_QUERY: usize = 200;

impl App {
    fn externals(&self) -> Externals<'_> {
        Externals {
            store: self.repositories.as_ref(),
            source: self.source.as_ref(),
            vault: self.vault.as_ref(),
            apps: self.apps.as_ref(),
            queue: self.index_queue.as_ref(),
        }
    }
}

/// `POST /v1/repositories` with `format: external-helm`.
pub(crate) async fn create(
    app: &App,
    caller: &Principal,
    request: NewRepository,
) -> Result<Response, ApiError> {
    let credentials = request.credentials.clone();
    let repo = request
        .validate(&caller.name, unix_now())
        .map_err(RepositoryError::Invalid)?;
    let (repo, check) = app.externals().create(caller, repo, credentials).await?;
    let username = repo.external.as_ref().and_then(|e| e.username.clone());
    let mut body = serde_json::to_value(RepositoryView::of(Listed {
        repository: repo,
        configured: false,
    }))
    .map_err(ApiError::internal)?;
    if let Some(u) = username {
        body["username"] = json!(u);
    }
    body["index"] = json!({"queued": true, "charts": check.charts, "versions": check.versions,
                           "digest": check.digest});
    Ok(json(201, &body))
}

/// `POST /v1/repositories/validate` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateBody {
    /// The chart repository's URL (`<url>/index.yaml` is read).
    url: String,
    /// `{"username", "password"}`, if it needs them.
    #[schema(value_type = Object)]
    credentials: Option<Credentials>,
}

/// `POST /v1/repositories/validate`: the check creation makes, storing nothing.
#[utoipa::path(
    post, path = "/v1/repositories/validate", operation_id = "validate_repository",
    tag = "repositories",
    summary = "Check an external Helm repository",
    description = "Reads `<url>/index.yaml` with the credentials, through the outbound \
        address policy (no private or link-local addresses, no redirects, a size limit), \
        and checks that it is a chart repository index. Stores nothing. Needs the \
        `repositories` scope.",
    request_body = ValidateBody,
    responses(
        (status = 200, description = "It serves a valid index: charts, versions, digest", body = Object),
        Refusals,
    ),
    security(("basic" = [])),
)]
pub async fn validate(
    State(app): AppState,
    Caller(caller): Caller,
    body: JsonBody<ValidateBody>,
) -> Result<Response, ApiError> {
    // The scope to create external repositories (`repositories:external/*`, or
    // wider): the same outbound request creation makes.
    caller.require(cairn_core::access::Action::Repositories, "external/")?;
    let check = app
        .externals()
        .validate(&body.value.url, body.value.credentials.as_ref())
        .await?;
    Ok(json(200, &check))
}

/// An external repository's name in a route.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ExternalOf {
    /// The external repository's name.
    name: String,
}

/// `GET /v1/repositories/external/{name}`: the repository, its index and last run.
#[utoipa::path(
    get, path = "/v1/repositories/external/{name}",
    operation_id = "show_external_repository", tag = "repositories",
    summary = "One external Helm repository, with its index",
    description = "404 for a private one the caller does not see. Never shows credentials.",
    params(ExternalOf),
    responses((status = 200, description = "The repository, `index` and `last_run`", body = Object), Refusals),
)]
pub async fn show(
    State(app): AppState,
    MaybeCaller(caller): MaybeCaller,
    PathParams(params): PathParams<ExternalOf>,
) -> Result<Response, ApiError> {
    let path = external_path(&params.name);
    let listed = app.manager().get(caller.as_ref(), &path).await?;
    let key = index_key(&path, &listed.repository.storage);
    let username = caller
        .as_ref()
        .filter(|c| listed.repository.managed_by(c))
        .and_then(|_| listed.repository.external.as_ref()?.username.clone());
    let mut body = serde_json::to_value(RepositoryView::of(listed)).map_err(ApiError::internal)?;
    if let Some(u) = username {
        body["username"] = json!(u);
    }
    let state = app.apps.index_state(&key).await?;
    let run = app.apps.last_run(&key).await?;
    body["index"] = match state {
        Some(s) => json!({"digest": s.digest, "versions": s.versions, "apps": s.apps,
                          "indexed_at": rfc3339(s.indexed_at)}),
        None => Value::Null,
    };
    body["last_run"] = match run {
        Some(r) => json!({"status": r.status, "at": rfc3339(r.at), "error": r.error}),
        None => Value::Null,
    };
    Ok(json(200, &body))
}

/// `DELETE /v1/repositories/external/{name}`: the repository, its apps and credentials.
#[utoipa::path(
    delete, path = "/v1/repositories/external/{name}",
    operation_id = "delete_external_repository", tag = "repositories",
    summary = "Delete an external Helm repository",
    description = "Owners and admins, with `repositories:external/NAME`: its record, the apps \
        and versions indexed from it, and its credentials go.",
    params(ExternalOf),
    responses((status = 204, description = "Deleted"), Refusals, Conflict),
    security(("basic" = [])),
)]
pub async fn delete(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(params): PathParams<ExternalOf>,
) -> Result<Response, ApiError> {
    app.externals()
        .delete(&caller, &external_path(&params.name))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/repositories/external/{name}/index`: queue an index run.
#[utoipa::path(
    post, path = "/v1/repositories/external/{name}/index",
    operation_id = "index_external_repository", tag = "repositories",
    summary = "Index an external Helm repository now",
    description = "Owners and admins. One run per repository at a time; its outcome is a \
        `repository.indexed` event (`GET .../events`).",
    params(ExternalOf),
    responses((status = 202, description = "Queued", body = Object), Refusals),
    security(("basic" = [])),
)]
pub async fn index(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(params): PathParams<ExternalOf>,
) -> Result<Response, ApiError> {
    let path = external_path(&params.name);
    app.externals().request_index(&caller, &path).await?;
    Ok(json(
        202,
        &json!({"repository": path, "queued": true,
                "events": format!("/v1/repositories/{path}/events")}),
    ))
}

/// `GET /v1/repositories/external/{name}/events`: its index runs, newest last.
#[utoipa::path(
    get, path = "/v1/repositories/external/{name}/events",
    operation_id = "external_repository_events", tag = "repositories",
    summary = "An external repository's index runs",
    description = "Its last 100 events (`repository.indexed`: status `indexed`, `unchanged` \
        or `failed` with the reason, versions added, duration), oldest first.",
    params(ExternalOf),
    responses((status = 200, description = "`{\"events\": [...]}`", body = Object), Refusals),
)]
pub async fn events(
    State(app): AppState,
    MaybeCaller(caller): MaybeCaller,
    PathParams(params): PathParams<ExternalOf>,
) -> Result<Response, ApiError> {
    let path = external_path(&params.name);
    app.manager().get(caller.as_ref(), &path).await?;
    let subject = Subject::named_repository(&path);
    let events = app.events.events_latest(Some(&subject), 100).await?;
    // Only this repository's life, as the caller may read it: not an earlier
    // repository's at the same name, nor its private past.
    let events = readable_events(
        &app.config.supported,
        app.repositories.as_ref(),
        caller.as_ref(),
        events,
    )
    .await?;
    Ok(json(200, &json!({"events": events})))
}

/// `GET /v1/apps` query.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AppsParams {
    /// Words the app's name or description contains (any case).
    q: Option<String>,
    /// A label selector on the apps' repositories.
    selector: Option<String>,
    /// Only this repository's apps (`external/<name>`).
    repository: Option<String>,
    /// At most this many (default 100, at most 1,000); `truncated` says if more matched.
    limit: Option<usize>,
}

/// `GET /v1/apps`: the charts of the indexed repositories the caller may read.
#[utoipa::path(
    get, path = "/v1/apps", operation_id = "list_apps", tag = "apps",
    summary = "Apps indexed from external Helm repositories",
    description = "One entry per chart and repository: its latest version, app version, \
        description and number of versions. Private repositories' apps only for those who \
        read them.",
    params(AppsParams),
    responses((status = 200, description = "`{\"apps\": [...]}`", body = Object), Refusals),
)]
pub async fn apps(
    State(app): AppState,
    MaybeCaller(caller): MaybeCaller,
    params: Result<Query<AppsParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let selector = crate::handlers::selector_param(params.selector.as_deref())?;
    if params.q.as_ref().is_some_and(|q| q.len() > MAX_QUERY) {
        return Err(ApiError::bad_request(format!(
            "q: at most {MAX_QUERY} characters"
        )));
    }
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit: 1 to 1000"));
    }
    let listed = list_apps(
        &app.config.supported,
        app.repositories.as_ref(),
        app.apps.as_ref(),
        caller.as_ref(),
        params.q.as_deref(),
        selector.as_ref(),
    )
    .await?;
    let matching: Vec<_> = listed
        .into_iter()
        .filter(|a| {
            params
                .repository
                .as_ref()
                .is_none_or(|r| *r == a.repository)
        })
        .collect();
    let truncated = matching.len() > limit;
    let apps: Vec<Value> = matching
        .into_iter()
        .take(limit)
        .map(|a| {
            json!({"name": a.name, "repository": a.repository,
                   "latest_version": a.latest_version, "app_version": a.app_version,
                   "description": a.description, "versions": a.versions,
                   "updated_at": rfc3339(a.updated_at),
                   "versions_url": format!("/v1/apps/{}/versions", a.name)})
        })
        .collect();
    Ok(json(200, &json!({"apps": apps, "truncated": truncated})))
}

/// An app's name in a route.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AppOf {
    /// The chart's name.
    app: String,
}

/// `GET /v1/apps/{app}/versions`: its versions in every repository the caller reads.
#[utoipa::path(
    get, path = "/v1/apps/{app}/versions", operation_id = "app_versions", tag = "apps",
    summary = "An app's versions",
    description = "Newest first within each repository. 404 when no readable repository has it.",
    params(AppOf),
    responses((status = 200, description = "`{\"app\", \"versions\": [...]}`", body = Object),
              (status = 404, description = "No such app", body = Problem,
               content_type = "application/problem+json"),
              Refusals),
)]
pub async fn versions(
    State(app): AppState,
    MaybeCaller(caller): MaybeCaller,
    PathParams(params): PathParams<AppOf>,
) -> Result<Response, ApiError> {
    let found = app_versions(
        &app.config.supported,
        app.repositories.as_ref(),
        app.apps.as_ref(),
        caller.as_ref(),
        &params.app,
    )
    .await?;
    if found.is_empty() {
        return Err(ApiError::not_found(format!("no app {}", params.app)));
    }
    let versions: Vec<Value> = found
        .into_iter()
        .map(|(repository, v)| {
            json!({"repository": repository, "version": v.version,
                   "app_version": v.app_version, "description": v.description,
                   "digest": v.digest, "created": v.created, "url": v.url})
        })
        .collect();
    Ok(json(200, &json!({"app": params.app, "versions": versions})))
}

/// `PATCH /v1/repositories/external/{name}`: description, visibility, labels, owners.
#[utoipa::path(
    patch, path = "/v1/repositories/external/{name}",
    operation_id = "update_external_repository", tag = "repositories",
    summary = "Change an external Helm repository",
    description = "Owners and admins, with `repositories:external/NAME`. Its URL and \
        credentials are changed by creating it again.",
    params(ExternalOf),
    request_body = crate::handlers::UpdateBody,
    responses((status = 200, description = "The repository as changed", body = RepositoryView),
              Refusals, Conflict),
    security(("basic" = [])),
)]
pub async fn update(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(params): PathParams<ExternalOf>,
    body: JsonBody<cairn_core::repositories::RepositoryUpdate>,
) -> Result<Response, ApiError> {
    let path = external_path(&params.name);
    let repo = app.manager().update(&caller, &path, &body.value).await?;
    Ok(json(
        200,
        &RepositoryView::of(Listed {
            repository: repo,
            configured: false,
        }),
    ))
}
