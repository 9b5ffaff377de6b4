//! The handlers: HTTP in, a domain call, HTTP out.

use crate::App;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cairn_archive::model::{MadeBy, OperationKind};
use cairn_archive::request::WorkspaceRequest;
use cairn_archive::request::{check_origin, validate_name};
use cairn_archive::{ArchiveError, ArchiveRequest, Archiver, CloneRequest};
use cairn_core::access::Action;
use cairn_core::auth::Principal;
use cairn_core::repositories::{Intent, open_archive};
use cairn_http::openapi::{Conflict, Refusals};
use cairn_http::{ApiBase, ApiError, Caller, JsonBody, PathParams, json};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest the API spends listing an origin's refs to answer a repeat request itself.
const LISTING_LIMIT: Duration = Duration::from_secs(4);

type AppState = State<Arc<App>>;

/// An archive-api failure: an [`ArchiveError`] or a refusal of the HTTP layer, both
/// answered as the same problem document.
pub struct Failure(ApiError);

impl From<ArchiveError> for Failure {
    fn from(e: ArchiveError) -> Self {
        Failure(ApiError::new(e.http_status(), e.to_string()))
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure(e)
    }
}

impl From<cairn_core::access::Denied> for Failure {
    fn from(e: cairn_core::access::Denied) -> Self {
        Failure(e.into())
    }
}

impl From<cairn_core::StoreError> for Failure {
    fn from(e: cairn_core::StoreError) -> Self {
        Failure(e.into())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

type Answer = Result<Response, Failure>;

/// The archiver for `name` as the caller may use it with `intent`: a name no
/// archive repository claims is public and the `archive` scope decides; a private
/// repository's takes seeing it, and owning it to write (`open_archive`).
async fn archiver_for(
    app: &App,
    caller: &Principal,
    intent: Intent,
    name: &str,
    api: &ApiBase,
) -> Result<Archiver, Failure> {
    validate_name(name)?;
    let record = open_archive(app.repositories.as_ref(), caller, intent, name)
        .await
        .map_err(ArchiveError::from)?;
    if record.is_none() {
        caller.require(Action::Archive, name)?;
    }
    Ok(app
        .archiver
        .for_repository(record.as_ref(), api.0.as_deref())?)
}

/// The caller's operation `id`, if its credential may archive under its name.
async fn own_operation(app: &App, caller: &Principal, id: &str) -> Result<(), Failure> {
    let op = app.operations.owned(id, &caller.name).await?;
    caller.require(Action::Archive, &op.name)?;
    Ok(())
}

/// `POST /v1/archives`: archive a ref. A tree archived before is answered from the
/// catalog; anything else is queued.
#[utoipa::path(
    post, path = "/v1/archives", operation_id = "archive", tag = "archives",
    summary = "Archive a ref of a git origin",
    description = "`{name, url, ref, callback?}`: the same tree always gets the same tag. \
        A tree archived before is answered at once (200); otherwise the operation is queued \
        (202), or with `callback` its result is POSTed there, signed. docs/archives.md.",
    request_body(content = Object, description = "`{\"name\", \"url\", \"ref\", \"callback\"?}`"),
    responses(
        (status = 200, description = "Archived (now or before): name, tag, commit, tree, URLs", body = Object),
        (status = 202, description = "Queued: the operation to follow", body = Object),
        Refusals, Conflict,
    ),
    security(("basic" = [])),
)]
pub async fn archive(
    State(app): AppState,
    Caller(caller): Caller,
    api: ApiBase,
    body: JsonBody<ArchiveRequest>,
) -> Answer {
    let started = Instant::now();
    let JsonBody { value: body, raw } = body;
    body.validate()?;
    let write = Intent::Write(Action::Archive);
    let archiver = archiver_for(&app, &caller, write, &body.name, &api).await?;
    let url = check_origin(&body.url, &archiver.settings.policy).await?;
    if body.callback.is_none()
        && let Some(answer) = archiver.answer_known(&body, url, LISTING_LIMIT).await?
    {
        return Ok(json(200, &answer));
    }
    submit(
        &app,
        OperationKind::Archive,
        &body.name,
        raw,
        body.callback,
        &caller,
        started,
    )
    .await
}

/// The body of `POST /v1/archives/{name}/workspace`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceBody {
    /// The build.
    pub build: String,
    /// The job (its token is the caller's credential).
    pub job: String,
    /// SHA-256 of the folder's `.tar.gz`, a blob of the project's artifact store.
    pub sha256: String,
    /// Asynchronous mode.
    #[serde(default)]
    pub callback: Option<cairn_callback::Callback>,
}

/// `POST /v1/archives/{name}/workspace`: archive the tree of a build job's workspace
/// folder beside the name's other trees (what an `archive` step with `from:` sends).
#[utoipa::path(
    post, path = "/v1/archives/{name}/workspace", operation_id = "archive_workspace", tag = "archives",
    summary = "Archive a build job's workspace folder",
    description = "`{build, job, sha256, callback?}`, with that job's own token: the \
        folder, saved as blob `sha256` (a `.tar.gz`) of the project's artifact store, becomes \
        a tree of `name`. The same tree gets the same tag as from an origin. Its provenance \
        (project, build, job, step, and the tag the build archived under `name` before: the \
        tree the steps in between adjusted) comes from the build's record. docs/builds.md.",
    params(("name" = String, Path, description = "The internal repository")),
    request_body(content = Object, description = "`{\"build\", \"job\", \"sha256\", \"callback\"?}`"),
    responses(
        (status = 200, description = "Archived (now or before): name, tag, commit, tree, URLs", body = Object),
        (status = 202, description = "Queued: the operation to follow", body = Object),
        Refusals, Conflict,
    ),
    security(("basic" = [])),
)]
pub async fn archive_workspace(
    State(app): AppState,
    Caller(caller): Caller,
    api: ApiBase,
    PathParams(name): PathParams<String>,
    body: JsonBody<WorkspaceBody>,
) -> Answer {
    use cairn_core::builds::project::ActionKind;
    use cairn_core::builds::{BuildState, StepState};
    let started = Instant::now();
    let body = body.value;
    let archiver = archiver_for(&app, &caller, Intent::Write(Action::Archive), &name, &api).await?;
    if !cairn_core::builds::artifacts::valid_sha256(&body.sha256) {
        return Err(ArchiveError::Invalid(
            "sha256 is the SHA-256 of the folder's .tar.gz: 64 lowercase hex digits".into(),
        )
        .into());
    }
    let not_held = || {
        ArchiveError::Forbidden(format!(
            "only job {}'s own token archives its workspace, while it runs",
            body.job
        ))
    };
    let build = app
        .builds
        .get_build(&body.build)
        .await?
        .ok_or_else(not_held)?;
    let step = build.step_of(&body.job).ok_or_else(not_held)?;
    let running =
        build.state == BuildState::Running && build.steps[step].state == StepState::Running;
    if !running || !build.job_token_is(step, caller.token.as_deref()) {
        return Err(not_held().into());
    }
    match &build.steps[step].action.kind {
        ActionKind::Archive { name: n, from, .. } if !from.is_empty() && *n == name => {}
        _ => {
            return Err(ArchiveError::Forbidden(format!(
                "step {step} of build {} does not archive a workspace folder as {}",
                build.id, name
            ))
            .into());
        }
    }
    // The tree this one adjusted: the build's latest archive of the same name before,
    // as the archive's catalog has it (a step's outputs are its worker's report).
    let earlier = build.steps[..step]
        .iter()
        .rev()
        .find_map(|s| match &s.action.kind {
            ActionKind::Archive { name: n, .. } if *n == name => s.outputs["tree"].as_str(),
            _ => None,
        });
    let adjusted_from = match earlier {
        Some(tree) => archiver
            .catalog
            .tree(&name, tree)
            .await
            .map_err(ArchiveError::from)?
            .map(|t| t.tag),
        None => None,
    };
    let request = WorkspaceRequest {
        name: name.clone(),
        sha256: body.sha256,
        made_by: MadeBy {
            project: build.project.clone(),
            build: build.id.clone(),
            job: body.job,
            step,
            adjusted_from,
        },
        callback: body.callback.clone(),
    };
    let raw = serde_json::to_value(&request)
        .map_err(|e| ArchiveError::Internal(format!("workspace request: {e}")))?;
    submit(
        &app,
        OperationKind::Workspace,
        &name,
        raw,
        body.callback,
        &caller,
        started,
    )
    .await
}

/// `POST /clone` (Repour).
#[utoipa::path(
    post, path = "/clone", operation_id = "repour_clone", tag = "archives",
    summary = "Repour's clone",
    request_body(content = Object, description = "Repour's `{type, origin_repo_url, ref, callback?}`"),
    responses(
        (status = 200, description = "Cloned", body = Object),
        (status = 202, description = "Queued: the operation to follow", body = Object),
        Refusals, Conflict,
    ),
    security(("basic" = [])),
)]
pub async fn clone(
    State(app): AppState,
    Caller(caller): Caller,
    api: ApiBase,
    body: JsonBody<CloneRequest>,
) -> Answer {
    let started = Instant::now();
    let JsonBody { value: body, raw } = body;
    body.validate()?;
    let name = body.target_name()?;
    archiver_for(&app, &caller, Intent::Write(Action::Archive), &name, &api).await?;
    check_origin(&body.origin_repo_url, &app.archiver.settings.policy).await?;
    submit(
        &app,
        OperationKind::Clone,
        &name,
        raw,
        body.callback,
        &caller,
        started,
    )
    .await
}

/// `POST /cancel/{id}` (Repour): the caller's own operations only.
#[utoipa::path(
    post, path = "/cancel/{id}", operation_id = "repour_cancel", tag = "archives",
    summary = "Cancel an operation (Repour)",
    params(("id" = String, Path, description = "The operation's id")),
    responses((status = 200, description = "The operation's id and status", body = Object), Refusals, Conflict),
    security(("basic" = [])),
)]
pub async fn cancel(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
) -> Answer {
    own_operation(&app, &caller, &id).await?;
    let op = app.operations.cancel(&id, &caller.name).await?;
    Ok(json(200, &json!({"id": op.id, "status": op.status})))
}

/// `GET /v1/operations/{id}`: the caller's own operations only.
#[utoipa::path(
    get, path = "/v1/operations/{id}", operation_id = "show_operation", tag = "archives",
    summary = "An operation's state and result",
    params(("id" = String, Path, description = "The operation's id")),
    responses((status = 200, description = "The operation", body = Object), Refusals),
    security(("basic" = [])),
)]
pub async fn operation(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
) -> Answer {
    own_operation(&app, &caller, &id).await?;
    Ok(json(200, &app.operations.show(&id, &caller.name).await?))
}

/// `GET /v1/archives/{name}`: the archive's tags.
#[utoipa::path(
    get, path = "/v1/archives/{name}", operation_id = "show_archive", tag = "archives",
    summary = "An archive's tags",
    params(("name" = String, Path, description = "The archive name")),
    responses((status = 200, description = "The tags with their commits, trees and URLs", body = Object), Refusals),
    security(("basic" = [])),
)]
pub async fn describe(
    State(app): AppState,
    Caller(caller): Caller,
    api: ApiBase,
    PathParams(name): PathParams<String>,
) -> Answer {
    let archiver = archiver_for(&app, &caller, Intent::Read, &name, &api).await?;
    Ok(json(200, &archiver.describe(&name).await?))
}

/// `GET /v1/archives/{name}/{tag}.tar.gz`: a redirect to the public tarball.
#[utoipa::path(
    get, path = "/v1/archives/{name}/{tarball}", operation_id = "archive_tarball", tag = "archives",
    summary = "A tag's tarball",
    params(("name" = String, Path, description = "The archive name"), ("tarball" = String, Path, description = "`<tag>.tar.gz`")),
    responses((status = 302, description = "To the public tarball"), Refusals),
    security(("basic" = [])),
)]
pub async fn tarball(
    State(app): AppState,
    Caller(caller): Caller,
    api: ApiBase,
    PathParams((name, file)): PathParams<(String, String)>,
) -> Answer {
    let archiver = archiver_for(&app, &caller, Intent::Read, &name, &api).await?;
    let tag = file
        .strip_suffix(".tar.gz")
        .filter(|t| {
            t.starts_with("cairn-")
                && t.len() == 46
                && t[6..].bytes().all(|b| b.is_ascii_hexdigit())
        })
        .ok_or_else(|| {
            ArchiveError::NotFound(format!("no tarball {file}: expected cairn-<commit>.tar.gz"))
        })?;
    let refname = format!("refs/tags/{tag}");
    let refs = archiver.catalog.refs(&name).await?;
    if !refs.iter().any(|r| r.name == refname) {
        return Err(ArchiveError::NotFound(format!("no archive {tag} in {name}")).into());
    }
    let location = HeaderValue::from_str(&archiver.tarball_url(&name, tag))
        .map_err(|e| ApiError::internal(format!("tarball URL: {e}")))?;
    Ok((StatusCode::FOUND, [(header::LOCATION, location)]).into_response())
}

/// Queues the operation; answers at once in callback mode, else waits for the
/// result up to `wait`.
async fn submit(
    app: &App,
    kind: OperationKind,
    name: &str,
    raw: Value,
    callback: Option<cairn_callback::Callback>,
    who: &Principal,
    started: Instant,
) -> Answer {
    if let Some(cb) = &callback {
        // Refuse a callback the worker could never deliver, before queueing.
        cairn_callback::check_url(cb.url(), &app.archiver.settings.policy)
            .await
            .map_err(|e| ArchiveError::Invalid(format!("callback URL refused: {e}")))?;
    }
    let has_callback = callback.is_some();
    let op = app
        .operations
        .submit(kind, name, raw, callback, &who.name)
        .await?;
    if has_callback {
        return Ok(json(202, &json!({"callback": {"id": op.id}})));
    }
    let deadline = started + app.wait;
    let mut pause = Duration::from_millis(100);
    loop {
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
        let Some(now) = app.operations.store.get(&op.id).await? else {
            return Err(ArchiveError::Internal(format!("operation {} vanished", op.id)).into());
        };
        if now.status.is_final() {
            let status = now.http_status.unwrap_or(500);
            let body = now.result.unwrap_or(Value::Null);
            let mut response = json(status, &body);
            if status >= 400 {
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/problem+json"),
                );
            }
            return Ok(response);
        }
        if Instant::now() >= deadline {
            return Ok(json(
                202,
                &json!({"id": op.id, "status": now.status,
                       "operation": format!("/v1/operations/{}", op.id),
                       "detail": "still running: poll the operation"}),
            ));
        }
    }
}
