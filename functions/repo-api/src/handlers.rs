//! The handlers: each translates HTTP to a domain call and back.

use crate::App;
use crate::multipart;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::response::Response;
use cairn_core::access::Action;
use cairn_core::auth::Principal;
use cairn_core::ingest::{IngestError, IngestOutcome, Ingestor, check_target};
use cairn_core::package::PackageStatus;
use cairn_core::ports::{PrefixedStore, UploadStatus, UploadTicket};
use cairn_core::problem::Problem;
use cairn_core::repo::RepoFormat;
use cairn_core::repositories::{self, Intent, RepositoryError};
use cairn_core::upload::{UploadFailure, UploadReport};
use cairn_core::{RepoPath, SupportedRepos};
use cairn_http::openapi::{Conflict, Refusals};
use cairn_http::{ApiBase, ApiError, Caller, JsonBody, MaybeCaller, PathParams, json, read_body};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

type AppState = State<Arc<App>>;

/// `/{kind}/{series}/{dist}/{ver}`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RepoParams {
    /// `release`, `pre-release`, ... (the deployment's `kinds`).
    kind: String,
    /// A series (`3.0`), or an anchor that names several.
    series: String,
    /// A distribution (`ubuntu`, `el`, `helm`).
    dist: String,
    /// Its version (`jammy`, `9`, `stable`).
    ver: String,
}

impl RepoParams {
    fn repo(&self) -> Result<RepoPath, ApiError> {
        Ok(RepoPath::new(
            &self.kind,
            &self.series,
            &self.dist,
            &self.ver,
        )?)
    }
}

/// `/{kind}/{series}/{dist}/{ver}/{file}`.
#[derive(Deserialize)]
pub struct FileParams {
    #[serde(flatten)]
    repo: RepoParams,
    file: String,
}

/// The repositories `repo` names (an anchor names several), checked for the
/// caller and what it means to do: configured ones by scope; created ones by
/// visibility (404 when hidden), ownership for changes, then scope.
async fn open_for(
    app: &App,
    caller: Option<&Principal>,
    intent: Intent,
    repo: &RepoPath,
) -> Result<SupportedRepos, ApiError> {
    Ok(repositories::open(
        &app.config.supported,
        app.repositories.as_ref(),
        caller,
        intent,
        repo,
    )
    .await?)
}

/// An upload's repositories: opened, or (where the deployment lets uploads create
/// repositories) none yet, to be created once the files say which format.
enum UploadTarget {
    Open(SupportedRepos),
    ToCreate(ApiError),
}

impl App {
    /// Opens `repo` for an upload by `caller`, unless it is no repository and the
    /// deployment creates repositories there on upload.
    async fn upload_target(
        &self,
        caller: &Principal,
        repo: &RepoPath,
    ) -> Result<UploadTarget, ApiError> {
        let intent = Intent::Write(Action::Upload);
        let seed = &self.config.supported;
        match repositories::open(seed, self.repositories.as_ref(), Some(caller), intent, repo).await
        {
            Ok(supported) => Ok(UploadTarget::Open(supported)),
            Err(e @ RepositoryError::NotFound(_))
                if self.config.auto_creates(&repo.to_string()) =>
            {
                Ok(UploadTarget::ToCreate(e.into()))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn manager(&self) -> repositories::Manager<'_> {
        repositories::Manager {
            store: self.repositories.as_ref(),
            catalog: self.catalog.as_ref(),
            files: self.store.as_ref(),
            queue: self.queue.as_ref(),
            seed: &self.config.supported,
        }
    }

    /// The upload's repositories, creating `repo` first if it is [`UploadTarget::ToCreate`],
    /// in the format of `filenames`; and whether this request created it.
    async fn open_upload_target<'f>(
        &self,
        target: UploadTarget,
        caller: &Principal,
        repo: &RepoPath,
        filenames: impl IntoIterator<Item = &'f str>,
    ) -> Result<(SupportedRepos, bool), ApiError> {
        let not_found = match target {
            UploadTarget::Open(supported) => return Ok((supported, false)),
            UploadTarget::ToCreate(not_found) => not_found,
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let created = match self
            .manager()
            .create_for_upload(caller, repo, filenames, now)
            .await
        {
            Ok(created) => created,
            // Without the right to create it, the path stays what it was: nothing.
            Err(RepositoryError::Denied(_)) => return Err(not_found),
            Err(e) => return Err(e.into()),
        };
        match open_for(self, Some(caller), Intent::Write(Action::Upload), repo).await {
            Ok(supported) => Ok((supported, created)),
            Err(e) => {
                // Created but not writable by this credential (it may create, not
                // upload): the empty repository goes again.
                if created {
                    self.uncreate(caller, repo).await;
                }
                Err(e)
            }
        }
    }

    /// Undoes the creation of `repo` by an upload that stored nothing: bad input
    /// leaves no repository behind. Best effort (an upload racing into it keeps it).
    async fn uncreate(&self, caller: &Principal, repo: &RepoPath) {
        if let Err(e) = self
            .manager()
            .delete(caller, &repo.to_string(), false)
            .await
        {
            tracing::warn!(path = %repo, error = %e, "repository created by a failed upload kept");
        }
    }

    /// The bucket as `repo` keeps its files (under a private repository's prefix).
    fn files(&self, supported: &SupportedRepos, repo: &RepoPath) -> PrefixedStore<'_> {
        PrefixedStore::new(self.store.as_ref(), supported.storage_prefix(repo))
    }

    fn ingestor<'a>(
        &'a self,
        supported: &'a SupportedRepos,
        files: &'a PrefixedStore<'a>,
    ) -> Ingestor<'a> {
        Ingestor {
            catalog: self.catalog.as_ref(),
            store: files,
            queue: self.queue.as_ref(),
            supported,
        }
    }

    /// Where clients read `key` of `repo`: the bucket, or the API's read path for a
    /// private repository.
    fn file_url(
        &self,
        api: &ApiBase,
        supported: &SupportedRepos,
        repo: &RepoPath,
        key: &str,
    ) -> String {
        let private = !supported.storage_prefix(repo).is_empty();
        let base = self.config.files_base_url(private, api.0.as_deref());
        format!("{}/{key}", base.trim_end_matches('/'))
    }

    fn outcome_json(
        &self,
        api: &ApiBase,
        supported: &SupportedRepos,
        outcome: &IngestOutcome,
    ) -> Value {
        let p = outcome.record();
        json!({
            "repository": p.repo.to_string(), "filename": p.filename, "package": p.name, "version": p.version,
            "architecture": p.architecture, "size": p.size, "sha256": p.sha256,
            "status": if matches!(outcome, IngestOutcome::Stored(_)) { "stored" } else { "unchanged" },
            "url": self.file_url(api, supported, &p.repo, &p.pool_key),
        })
    }
}

fn syncs_json(syncs: &[(RepoPath, u64)]) -> Vec<Value> {
    syncs
        .iter()
        .map(|(repo, seq)| json!({"repository": repo.to_string(), "queued": true, "seq": seq}))
        .collect()
}

/// `GET /{repo}`: the repository's ready packages, its sync state and how to use it.
#[utoipa::path(
    get, path = "/{kind}/{series}/{dist}/{ver}", operation_id = "list_packages", tag = "packages",
    summary = "A repository's packages and how to use it",
    description = "The ready packages, the publication state, the line or file a client \
        needs (`apt_source`, `dnf_repo_file`, `helm_repo`) and the live page's URL.",
    params(RepoParams),
    responses((status = 200, description = "The repository", body = Object), Refusals),
)]
pub async fn list(
    State(app): AppState,
    api: ApiBase,
    MaybeCaller(caller): MaybeCaller,
    PathParams(params): PathParams<RepoParams>,
) -> Result<Response, ApiError> {
    let repo = params.repo()?;
    let supported = open_for(&app, caller.as_ref(), Intent::Read, &repo).await?;
    let format = supported.check(&repo)?.format;
    let packages: Vec<Value> = app
        .catalog
        .list_packages(&repo)
        .await?
        .into_iter()
        .filter(|p| p.status == PackageStatus::Ready)
        .map(|p| {
            json!({
                "filename": p.filename, "package": p.name, "version": p.version,
                "architecture": p.architecture, "size": p.size, "sha256": p.sha256,
                "product": p.product, "uploaded_at": p.uploaded_at,
                "url": app.file_url(&api, &supported, &repo, &p.pool_key),
            })
        })
        .collect();
    let state = app.catalog.repo_state(&repo).await?;
    let mut body = json!({"repository": repo.to_string(), "format": format, "packages": packages,
           "sync": {"change_seq": state.change_seq, "published_seq": state.published_seq,
                    "publish_count": state.publish_count,
                    "published_at": state.published_at}});
    let dir = repo.dir();
    let (usage_key, usage, page) = match format {
        RepoFormat::Deb => (
            "apt_source",
            format!(
                "deb [signed-by=/usr/share/keyrings/cairn-archive-keyring.gpg] {} {} main",
                app.file_url(&api, &supported, &repo, &repo.root()),
                repo.suite()
            ),
            format!("{}/dists/{}/index.html", repo.root(), repo.suite()),
        ),
        RepoFormat::Rpm => (
            "dnf_repo_file",
            app.file_url(&api, &supported, &repo, &format!("{dir}/cairn.repo")),
            format!("{dir}/index.html"),
        ),
        RepoFormat::Helm => (
            "helm_repo",
            app.file_url(&api, &supported, &repo, &dir),
            format!("{dir}/index.html"),
        ),
    };
    body[usage_key] = json!(usage);
    body["page"] = json!(app.file_url(&api, &supported, &repo, &page));
    Ok(json(200, &body))
}

/// `POST /{repo}`: publish again (every repository of an anchor).
#[utoipa::path(
    post, path = "/{kind}/{series}/{dist}/{ver}", operation_id = "republish", tag = "packages",
    summary = "Publish again",
    description = "Queues a publication of the repository (every repository of an anchor).",
    params(RepoParams),
    responses((status = 202, description = "Queued: the sync sequence numbers", body = Object), Refusals),
    security(("basic" = [])),
)]
pub async fn resync(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(params): PathParams<RepoParams>,
) -> Result<Response, ApiError> {
    let repo = params.repo()?;
    let supported = open_for(&app, Some(&caller), Intent::Write(Action::Upload), &repo).await?;
    let mut syncs = Vec::new();
    for target in supported.expand(&repo) {
        let files = app.files(&supported, &target);
        let seq = app
            .ingestor(&supported, &files)
            .announce(&target, &[])
            .await?;
        syncs.push((target, seq));
    }
    let sync = match syncs.as_slice() {
        [(_, seq)] => json!({"queued": true, "seq": seq}),
        _ => json!({"queued": true, "seq": null}),
    };
    Ok(json(
        202,
        &json!({"repository": repo.to_string(), "sync": sync, "syncs": syncs_json(&syncs)}),
    ))
}

/// `PUT /{repo}`: an RWS upload form. A 409 always says what the request stored
/// before it failed (`stored`, empty when nothing was).
#[utoipa::path(
    put, path = "/{kind}/{series}/{dist}/{ver}", operation_id = "upload_packages", tag = "packages",
    summary = "Upload packages (RWS compatible)",
    description = "A multipart form: one field per package file (the field's name is the \
        file name), optionally `product`. Stored packages are published by the next sync. \
        A 409 says what the request stored before it failed (`stored`). Bodies over \
        `MaxApiUpload` use `POST /v1/uploads`.",
    params(RepoParams),
    request_body(content_type = "multipart/form-data", content = Object,
                 description = "Package files as form fields, and `product`"),
    responses(
        (status = 201, description = "Stored: each file and the sync it waits for", body = Object),
        (status = 413, description = "Larger than the API takes; use a presigned upload",
         body = Problem, content_type = "application/problem+json"),
        Refusals, Conflict,
    ),
    security(("basic" = [])),
)]
pub async fn upload(
    State(app): AppState,
    api: ApiBase,
    Caller(caller): Caller,
    PathParams(params): PathParams<RepoParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let repo = params.repo()?;
    // Refuse an unknown repository before reading a large body.
    let target = app.upload_target(&caller, &repo).await?;
    let limit = usize::try_from(app.config.max_api_upload).unwrap_or(usize::MAX);
    let body = read_body(
        body,
        limit,
        ". Use a presigned upload (POST /v1/uploads) for larger packages",
    )
    .await?;
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let form = multipart::parse(content_type, body).await?;
    let names = form.files.iter().map(|(name, _)| name.as_str());
    let (supported, created) = app
        .open_upload_target(target, &caller, &repo, names)
        .await?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let files = app.files(&supported, &repo);
    match app
        .ingestor(&supported, &files)
        .upload(&repo, form, &caller.name, now)
        .await
    {
        Ok(report) => Ok(upload_answer(&app, &api, &supported, &repo, &report)),
        Err(UploadFailure { error, done }) => {
            let e = ApiError::from(error);
            let stored_any = done.as_ref().is_some_and(|d| {
                d.outcomes
                    .iter()
                    .any(|o| matches!(o, IngestOutcome::Stored(_)))
            });
            if created && !stored_any {
                app.uncreate(&caller, &repo).await;
            }
            if e.status() != 409 {
                return Err(e);
            }
            let done = done.unwrap_or(UploadReport {
                targets: vec![],
                outcomes: vec![],
                syncs: vec![],
            });
            let stored: Vec<&str> = done
                .outcomes
                .iter()
                .filter_map(|o| match o {
                    IngestOutcome::Stored(r) => Some(r.filename.as_str()),
                    IngestOutcome::Unchanged(_) => None,
                })
                .collect();
            let packages: Vec<Value> = done
                .outcomes
                .iter()
                .map(|o| app.outcome_json(&api, &supported, o))
                .collect();
            Err(e
                .with("stored", json!(stored))
                .with("packages", json!(packages))
                .with("syncs", json!(syncs_json(&done.syncs))))
        }
    }
}

fn upload_answer(
    app: &App,
    api: &ApiBase,
    supported: &SupportedRepos,
    repo: &RepoPath,
    report: &UploadReport,
) -> Response {
    let changed = report.changed();
    let sync = match report.syncs.as_slice() {
        [(_, seq)] => json!({"queued": true, "seq": seq}),
        _ => json!({"queued": changed, "seq": null}),
    };
    let packages: Vec<Value> = report
        .outcomes
        .iter()
        .map(|o| app.outcome_json(api, supported, o))
        .collect();
    json(
        if changed { 201 } else { 200 },
        &json!({"repository": repo.to_string(),
               "repositories": report.targets.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
               "packages": packages, "sync": sync, "syncs": syncs_json(&report.syncs)}),
    )
}

/// `DELETE /{repo}` without a file name.
#[utoipa::path(
    delete,
    path = "/{kind}/{series}/{dist}/{ver}",
    operation_id = "delete_unnamed",
    tag = "packages",
    summary = "Refused: a deletion names its package",
    params(RepoParams),
    responses(Refusals)
)]
pub async fn delete_without_name(
    PathParams(params): PathParams<RepoParams>,
) -> Result<Response, ApiError> {
    let repo = params.repo()?;
    Err(ApiError::bad_request(format!(
        "name the package to delete: DELETE /{repo}/FILENAME"
    )))
}

/// `DELETE /{repo}/{file}`: an anchor names several series; the package is deleted
/// wherever it is, the answer says where it was absent, 404 only when it is nowhere.
#[utoipa::path(
    delete, path = "/{kind}/{series}/{dist}/{ver}/{file}", operation_id = "delete_package", tag = "packages",
    summary = "Delete a package",
    description = "The package leaves the repository with the next publication. An anchor \
        names several series: the package is deleted wherever it is; 404 only when it is \
        nowhere.",
    params(RepoParams, ("file" = String, Path, description = "A package file name")),
    responses((status = 202, description = "Deleted where it was; the syncs queued", body = Object), Refusals, Conflict),
    security(("basic" = [])),
)]
pub async fn delete(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(params): PathParams<FileParams>,
) -> Result<Response, ApiError> {
    let repo = params.repo.repo()?;
    let supported = open_for(&app, Some(&caller), Intent::Write(Action::Delete), &repo).await?;
    let filename = params.file.as_str();
    let targets = supported.expand(&repo);
    for target in &targets {
        check_target(&supported, target, filename, None)?;
    }
    let mut results = Vec::new();
    let mut found = false;
    for target in targets {
        let files = app.files(&supported, &target);
        match app
            .ingestor(&supported, &files)
            .delete(&target, filename)
            .await
        {
            Ok(seq) => {
                found = true;
                results.push(json!({"repository": target.to_string(), "filename": filename,
                                    "status": "deleting", "sync": {"queued": seq.is_some(), "seq": seq}}));
            }
            Err(IngestError::NotFound { .. }) => {
                results.push(
                    json!({"repository": target.to_string(), "filename": filename,
                                    "status": "absent"}),
                );
            }
            Err(e) => return Err(ApiError::from(e).with("deleted", json!(results))),
        }
    }
    if !found {
        return Err(ApiError::not_found(format!(
            "{repo} has no package {filename}"
        )));
    }
    Ok(json(202, &json!({"deleted": results})))
}

/// `GET /{repo}/{file}`: one package.
#[utoipa::path(
    get, path = "/{kind}/{series}/{dist}/{ver}/{file}", operation_id = "show_package", tag = "packages",
    summary = "One package",
    params(RepoParams, ("file" = String, Path, description = "A package file name")),
    responses((status = 200, description = "The package's record and URL", body = Object), Refusals),
)]
pub async fn package(
    State(app): AppState,
    api: ApiBase,
    MaybeCaller(caller): MaybeCaller,
    PathParams(params): PathParams<FileParams>,
) -> Result<Response, ApiError> {
    let repo = params.repo.repo()?;
    let filename = params.file.as_str();
    let supported = open_for(&app, caller.as_ref(), Intent::Read, &repo).await?;
    check_target(&supported, &repo, filename, None)?;
    let p = app
        .catalog
        .get_package(&repo, filename)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{repo} has no package {filename}")))?;
    Ok(json(
        200,
        &json!({
            "repository": repo.to_string(), "filename": p.filename, "package": p.name,
            "version": p.version, "architecture": p.architecture, "size": p.size,
            "sha256": p.sha256, "product": p.product, "uploaded_at": p.uploaded_at,
            "uploader": p.uploader, "status": p.status.as_str(),
            "url": app.file_url(&api, &supported, &repo, &p.pool_key),
        }),
    ))
}

/// `POST /v1/uploads` body.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct PresignRequest {
    repository: String,
    filename: String,
    product: Option<String>,
}

/// `POST /v1/uploads`: a ticket and a presigned URL for one package file.
#[utoipa::path(
    post, path = "/v1/uploads", operation_id = "presign_upload", tag = "packages",
    summary = "A presigned upload for one large package",
    request_body = PresignRequest,
    responses((status = 201, description = "The ticket and the URL to PUT the file to", body = Object), Refusals),
    security(("basic" = [])),
)]
pub async fn presign(
    State(app): AppState,
    Caller(caller): Caller,
    body: Result<JsonBody<PresignRequest>, ApiError>,
) -> Result<Response, ApiError> {
    let body = body
        .map_err(|e| {
            ApiError::new(
                e.status(),
                format!(
                    "expected a JSON body {{\"repository\", \"filename\", \"product\"}} sent with \
                     content-type: application/json: {}",
                    e.problem().detail
                ),
            )
        })?
        .value;
    let repo = RepoPath::parse(&body.repository)?;
    let target = app.upload_target(&caller, &repo).await?;
    let (supported, _) = app
        .open_upload_target(target, &caller, &repo, [body.filename.as_str()])
        .await?;
    let companion = body.filename.ends_with(".prov")
        || body.filename.ends_with(".dsc")
        || body.filename.contains(".tar.")
        || body.filename.ends_with(".diff.gz");
    if companion {
        return Err(ApiError::bad_request(
            "source packages and provenance files are uploaded in one PUT form with the \
             files that go with them, not presigned",
        ));
    }
    for target in supported.expand(&repo) {
        check_target(&supported, &target, &body.filename, body.product.as_deref())?;
    }
    let ticket = UploadTicket {
        id: uuid::Uuid::new_v4().simple().to_string(),
        repo,
        product: body.product,
        filename: body.filename,
        uploader: caller.name,
        status: UploadStatus::Waiting,
        message: None,
        created_at: time::OffsetDateTime::now_utc().unix_timestamp(),
    };
    app.tickets.put_ticket(&ticket).await?;
    let ttl = app.config.presign_ttl_secs;
    let url = app
        .upload_urls
        .staging_put_url(&ticket.staging_key(), Duration::from_secs(ttl))
        .await?;
    Ok(json(
        201,
        &json!({"id": ticket.id, "method": "PUT", "upload_url": url, "expires_in": ttl,
               "status_url": format!("/v1/uploads/{}", ticket.id)}),
    ))
}

/// `GET /v1/uploads/{id}`: how a presigned upload went (its uploader only).
#[utoipa::path(
    get, path = "/v1/uploads/{id}", operation_id = "upload_status", tag = "packages",
    summary = "How a presigned upload went",
    params(("id" = String, Path, description = "The ticket id from `POST /v1/uploads`")),
    responses((status = 200, description = "The ticket's state and, once ingested, the package", body = Object), Refusals),
    security(("basic" = [])),
)]
pub async fn ticket_status(
    State(app): AppState,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found("no such upload");
    // Ticket ids are 32 hex digits (what presign makes); anything else is no ticket.
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    // A ticket is its uploader's: another account is told it does not exist.
    let ticket = app
        .tickets
        .get_ticket(&id)
        .await?
        .filter(|t| t.uploader == caller.name)
        .ok_or_else(not_found)?;
    for target in app.config.supported.expand(&ticket.repo) {
        caller.require(Action::Upload, &target.to_string())?;
    }
    let status = if ticket.status == UploadStatus::Failed {
        422
    } else {
        200
    };
    Ok(json(
        status,
        &json!({"id": ticket.id, "repository": ticket.repo.to_string(),
               "filename": ticket.filename, "status": ticket.status.as_str(),
               "message": ticket.message}),
    ))
}
