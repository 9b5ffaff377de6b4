//! The handlers: each translates HTTP to a build use case and back.

use crate::App;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use cairn_core::builds::service::{MAX_LOG_CHUNK, MAX_LOG_READ};
use cairn_core::builds::yaml::MAX_YAML_BYTES;
use cairn_core::builds::{Beat, Build, Project, ProjectSpec};
use cairn_http::openapi::{Conflict, Refusals};
use cairn_http::{ApiError, Caller, JsonBody, PathParams, json, read_body};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

type AppState = State<Arc<App>>;

/// Longest error text a worker reports.
const MAX_ERROR: usize = 1000;
/// Longest stderr tail a worker reports, bytes.
const MAX_STDERR_TAIL: usize = 8 * 1024;
/// Largest outputs document a worker reports, bytes of JSON.
const MAX_OUTPUTS: usize = cairn_core::builds::run::MAX_OUTPUTS_BYTES;

fn project_view(project: &Project) -> Value {
    json!({
        "name": project.name, "owner": project.owner,
        "created_at": project.created_at, "updated_at": project.updated_at,
        "version": project.version,
        "parameters": project.spec.parameters, "run": project.spec.run,
        "concurrency": project.spec.concurrency, "pipelines": project.spec.pipelines,
    })
}

/// A build as its readers see it: no job credentials.
fn build_view(build: &Build) -> Value {
    let mut view = serde_json::to_value(build).unwrap_or(Value::Null);
    if let Some(steps) = view.get_mut("steps").and_then(Value::as_array_mut) {
        for step in steps {
            if let Some(step) = step.as_object_mut() {
                step.remove("job_token");
            }
        }
    }
    view
}

/// `PUT /v1/projects/{name}`: defines a project from YAML (`content-type:
/// application/yaml`) or JSON.
#[utoipa::path(
    put, path = "/v1/projects/{name}", operation_id = "put_project", tag = "builds",
    summary = "Define or redefine a project",
    description = "The body is the project file, YAML (`application/yaml`, `text/yaml`) or \
        JSON: `parameters`, `pipelines` (each a `name` and `actions`), optional `run`, \
        `concurrency` and `triggers` (events, schedules) (docs/builds.md). A refusal names the `path` of what is wrong and, for \
        YAML, its `line`. Needs the `builds:<name>` scope; a project is its definer's.",
    params(("name" = String, Path, description = "The project's name")),
    request_body(content = String, description = "The project file", content_type = "application/yaml"),
    responses(
        (status = 200, description = "Redefined", body = Object),
        (status = 201, description = "Defined", body = Object),
        Refusals,
    ),
    security(("basic" = [])),
)]
pub async fn put_project(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(name): PathParams<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(body, MAX_YAML_BYTES, "").await?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::bad_request("the project file is not UTF-8 text"))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let spec = if content_type.contains("yaml") {
        ProjectSpec::from_yaml(text)
    } else {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            ApiError::bad_request(format!(
                "the body is not JSON ({e}); send YAML with content-type: application/yaml"
            ))
        })?;
        ProjectSpec::from_value(&value)
    }
    .map_err(cairn_core::builds::BuildError::from)?;
    let (project, created) = app.builds.define(&caller, &name, spec).await?;
    Ok(json(
        if created { 201 } else { 200 },
        &project_view(&project),
    ))
}

/// `GET /v1/projects/{name}`.
#[utoipa::path(
    get, path = "/v1/projects/{name}", operation_id = "show_project", tag = "builds",
    summary = "A project's definition",
    params(("name" = String, Path, description = "The project's name")),
    responses((status = 200, description = "The project", body = Object), Refusals),
    security(("basic" = [])),
)]
pub async fn show_project(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(name): PathParams<String>,
) -> Result<Response, ApiError> {
    Ok(json(
        200,
        &project_view(&app.builds.project(&caller, &name).await?),
    ))
}

/// `GET /v1/projects`.
#[utoipa::path(
    get, path = "/v1/projects", operation_id = "list_projects", tag = "builds",
    summary = "The caller's projects",
    responses((status = 200, description = "`{\"projects\": [...]}`", body = Object), Refusals),
    security(("basic" = [])),
)]
pub async fn list_projects(
    State(app): AppState,
    Caller(caller): Caller,
) -> Result<Response, ApiError> {
    let projects: Vec<Value> = app
        .builds
        .projects(&caller)
        .await?
        .iter()
        .map(project_view)
        .collect();
    Ok(json(200, &json!({"projects": projects})))
}

/// `POST /v1/projects/{name}/builds` body.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartBuild {
    /// Values for the project's parameters (only declared ones).
    #[serde(default)]
    parameters: BTreeMap<String, String>,
}

/// `POST /v1/projects/{name}/builds`: starts a build.
#[utoipa::path(
    post, path = "/v1/projects/{name}/builds", operation_id = "start_build", tag = "builds",
    summary = "Build a project",
    description = "Starts a build with the project's parameters, overridden by the body's. \
        It runs at once when the project has a free slot (`concurrency`), else it waits \
        (`queued`).",
    params(("name" = String, Path, description = "The project's name")),
    request_body = StartBuild,
    responses((status = 201, description = "The build", body = Object), Refusals),
    security(("basic" = [])),
)]
pub async fn start_build(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(name): PathParams<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(body, cairn_http::MAX_JSON_BODY, "").await?;
    let request: StartBuild = if bytes.iter().all(u8::is_ascii_whitespace) {
        StartBuild::default()
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("invalid request: {e}")))?
    };
    let build = app
        .builds
        .start(&caller, &name, &request.parameters)
        .await?;
    Ok(json(201, &build_view(&build)))
}

/// `GET /v1/builds` query.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// The project.
    project: String,
    /// Most builds returned, newest first (default 20, at most 100).
    limit: Option<usize>,
}

/// `GET /v1/builds?project=`.
#[utoipa::path(
    get, path = "/v1/builds", operation_id = "list_builds", tag = "builds",
    summary = "A project's builds, newest first",
    params(ListQuery),
    responses((status = 200, description = "`{\"builds\": [...]}`", body = Object), Refusals),
    security(("basic" = [])),
)]
pub async fn list_builds(
    State(app): AppState,
    Caller(caller): Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let builds = app
        .builds
        .builds(&caller, &query.project, query.limit.unwrap_or(20))
        .await?;
    Ok(json(
        200,
        &json!({"builds": builds.iter().map(build_view).collect::<Vec<_>>()}),
    ))
}

/// `GET /v1/builds/{id}`.
#[utoipa::path(
    get, path = "/v1/builds/{id}", operation_id = "show_build", tag = "builds",
    summary = "A build: its state, and each step's state, worker, exit code, times and outputs",
    params(("id" = String, Path, description = "The build's id (`bld_…`)")),
    responses((status = 200, description = "The build", body = Object), Refusals),
    security(("basic" = [])),
)]
pub async fn show_build(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    Ok(json(
        200,
        &build_view(&app.builds.build(&caller, &id).await?),
    ))
}

/// `POST /v1/builds/{id}/cancel`.
#[utoipa::path(
    post, path = "/v1/builds/{id}/cancel", operation_id = "cancel_build", tag = "builds",
    summary = "Cancel a build",
    description = "Nothing after the running step runs; its worker stops the action at its \
        next heartbeat.",
    params(("id" = String, Path, description = "The build's id (`bld_…`)")),
    responses((status = 200, description = "The build, cancelled", body = Object), Refusals, Conflict),
    security(("basic" = [])),
)]
pub async fn cancel_build(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    Ok(json(
        200,
        &build_view(&app.builds.cancel(&caller, &id).await?),
    ))
}

/// `GET /v1/builds/{id}/log` query.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// The step (0-based; default 0).
    step: Option<usize>,
    /// The byte to start at (default 0).
    offset: Option<u64>,
}

/// `GET /v1/builds/{id}/log?step=&offset=`: a step's output (stdout and stderr).
#[utoipa::path(
    get, path = "/v1/builds/{id}/log", operation_id = "read_build_log", tag = "builds",
    summary = "A step's log, readable while it runs",
    description = "Up to 4 MiB from `offset`. `Cairn-Log-Next-Offset` is where the next \
        read starts; `Cairn-Log-Complete: true` once the step is over and everything was \
        read.",
    params(("id" = String, Path, description = "The build's id"), LogQuery),
    responses((status = 200, description = "The log bytes", body = String, content_type = "text/plain"), Refusals),
    security(("basic" = [])),
)]
pub async fn read_log(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
    query: Result<Query<LogQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let chunk = app
        .builds
        .read_log(
            &caller,
            &id,
            query.step.unwrap_or(0),
            query.offset.unwrap_or(0),
        )
        .await?;
    debug_assert!(chunk.bytes.len() <= MAX_LOG_READ);
    let mut response = chunk.bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        "cairn-log-next-offset",
        HeaderValue::from(chunk.next_offset),
    );
    headers.insert(
        "cairn-log-complete",
        HeaderValue::from_static(if chunk.complete { "true" } else { "false" }),
    );
    Ok(response)
}

/// `POST /v1/work` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkRequest {
    /// The worker's name (shown in the build's record).
    worker: String,
    /// What the worker has (`arch=amd64`, `dpkg`): it takes jobs that ask for no more.
    #[serde(default)]
    labels: Vec<String>,
    /// Seconds to wait for a job (default and most: the API's limit, about 20).
    wait: Option<u64>,
}

/// `POST /v1/work`: a worker asks for a job.
#[utoipa::path(
    post, path = "/v1/work", operation_id = "claim_work", tag = "builds",
    summary = "Take a job (workers)",
    description = "Long-polls for the oldest queued job whose labels the worker has. The \
        answer carries the action, its parameters and a token for this job alone: it \
        reports on the job, and may do what the step needs (upload to the repository it \
        publishes to, the project's artifacts), until the job ends. Heartbeat before \
        `lease_until` or the job goes to another worker. `workspace`: the workspace the \
        earlier steps left (SHA-256 and a download URL), `save_workspace`: whether a later \
        step needs this one's. 204: no job within the wait. Needs the `worker` scope.",
    request_body = WorkRequest,
    responses(
        (status = 200, description = "A job", body = Object),
        (status = 204, description = "No job within the wait"),
        Refusals,
    ),
    security(("basic" = [])),
)]
pub async fn claim(
    State(app): AppState,
    Caller(caller): Caller,
    body: JsonBody<WorkRequest>,
) -> Result<Response, ApiError> {
    let request = body.value;
    if request.worker.is_empty()
        || request.worker == cairn_core::builds::service::LAMBDA_RUNNER
        || request.worker.len() > 64
        || !request.worker.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(ApiError::bad_request(
            "worker: 1 to 64 printable characters, no spaces, not `lambda`",
        ));
    }
    if request.labels.len() > 50 || request.labels.iter().any(|l| l.len() > 64) {
        return Err(ApiError::bad_request(
            "labels: at most 50, each at most 64 characters",
        ));
    }
    let wait = request
        .wait
        .map_or(app.max_wait, |s| Duration::from_secs(s).min(app.max_wait));
    let started = Instant::now();
    loop {
        if let Some(claimed) = app
            .builds
            .claim(&caller, &request.worker, &request.labels)
            .await?
        {
            return Ok(json(200, &app.builds.job_answer(&claimed).await?));
        }
        if started.elapsed() + Duration::from_secs(1) > wait {
            return Ok(axum::http::StatusCode::NO_CONTENT.into_response());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Path of a job's routes.
#[derive(Deserialize)]
pub struct JobPath {
    id: String,
    job: String,
}

/// `POST /v1/builds/{id}/jobs/{job}/heartbeat`.
#[utoipa::path(
    post, path = "/v1/builds/{id}/jobs/{job}/heartbeat", operation_id = "job_heartbeat", tag = "builds",
    summary = "A worker is still on its job (the job's token)",
    description = "Extends the lease. `{\"state\": \"cancel\"}`: the build was cancelled; stop \
        the action. 409: the job is no longer this worker's; stop.",
    params(("id" = String, Path, description = "The build"), ("job" = String, Path, description = "The job")),
    responses((status = 200, description = "`continue` with the new `lease_until`, or `cancel`", body = Object), Refusals, Conflict),
    security(("basic" = [])),
)]
pub async fn heartbeat(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(path): PathParams<JobPath>,
) -> Result<Response, ApiError> {
    Ok(
        match app.builds.heartbeat(&caller, &path.id, &path.job).await? {
            Beat::Continue(until) => json(200, &json!({"state": "continue", "lease_until": until})),
            Beat::Cancel => json(200, &json!({"state": "cancel"})),
        },
    )
}

/// `POST /v1/builds/{id}/jobs/{job}/log` query.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AppendQuery {
    /// The byte of the log this chunk starts at.
    offset: u64,
}

/// `POST /v1/builds/{id}/jobs/{job}/log?offset=`: a chunk of the job's output.
#[utoipa::path(
    post, path = "/v1/builds/{id}/jobs/{job}/log", operation_id = "append_job_log", tag = "builds",
    summary = "Stream a job's output (the job's token)",
    description = "The body is the chunk (at most 1 MiB) that starts at byte `offset`; \
        sending a chunk again is harmless.",
    params(("id" = String, Path, description = "The build"), ("job" = String, Path, description = "The job"), AppendQuery),
    request_body(content = String, content_type = "application/octet-stream"),
    responses((status = 204, description = "Stored"), Refusals, Conflict),
    security(("basic" = [])),
)]
pub async fn append_log(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(path): PathParams<JobPath>,
    query: Result<Query<AppendQuery>, axum::extract::rejection::QueryRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let bytes = read_body(
        body,
        MAX_LOG_CHUNK,
        ": send the log in chunks of at most 1 MiB",
    )
    .await?;
    app.builds
        .append_log(&caller, &path.id, &path.job, query.offset, bytes)
        .await?;
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/builds/{id}/jobs/{job}/result` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobResult {
    /// The action's exit code (0: success).
    exit_code: i32,
    /// Why it failed, when the action could not run (no exit code of its own).
    error: Option<String>,
    /// The end of its stderr.
    #[serde(default)]
    stderr_tail: String,
    /// What it produced (an archive's tag and SWHID, published files).
    #[serde(default)]
    #[schema(value_type = Object)]
    outputs: Value,
    /// The workspace the step left, uploaded as a blob of the project (see
    /// `POST /v1/projects/{name}/blobs`), for the next step's worker.
    workspace: Option<SavedWorkspace>,
}

/// A workspace saved as a blob.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SavedWorkspace {
    /// The blob's SHA-256, lowercase hex.
    sha256: String,
    /// Its size, bytes.
    size: u64,
}

/// `POST /v1/builds/{id}/jobs/{job}/result`: the job's end.
#[utoipa::path(
    post, path = "/v1/builds/{id}/jobs/{job}/result", operation_id = "report_job", tag = "builds",
    summary = "Report a job's end (the job's token)",
    description = "Exit code 0 moves the build to its next step; any other fails the build \
        (a failing command is never retried). The job's token stops working.",
    params(("id" = String, Path, description = "The build"), ("job" = String, Path, description = "The job")),
    request_body = JobResult,
    responses((status = 200, description = "The build after the report", body = Object), Refusals, Conflict),
    security(("basic" = [])),
)]
pub async fn report(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(path): PathParams<JobPath>,
    body: JsonBody<JobResult>,
) -> Result<Response, ApiError> {
    let result = body.value;
    if result.error.as_ref().is_some_and(|e| e.len() > MAX_ERROR) {
        return Err(ApiError::bad_request(format!(
            "error: at most {MAX_ERROR} bytes"
        )));
    }
    if result.stderr_tail.len() > MAX_STDERR_TAIL {
        return Err(ApiError::bad_request(format!(
            "stderr_tail: at most {MAX_STDERR_TAIL} bytes"
        )));
    }
    if serde_json::to_vec(&result.outputs).map_or(0, |v| v.len()) > MAX_OUTPUTS {
        return Err(ApiError::bad_request(format!(
            "outputs: at most {MAX_OUTPUTS} bytes of JSON"
        )));
    }
    let build = app
        .builds
        .report(
            &caller,
            &path.id,
            &path.job,
            cairn_core::builds::JobReport {
                exit_code: result.exit_code,
                error: result.error,
                stderr_tail: result.stderr_tail,
                outputs: result.outputs,
                workspace: result.workspace.map(|w| (w.sha256, w.size)),
            },
        )
        .await?;
    Ok(json(200, &build_view(&build)))
}
