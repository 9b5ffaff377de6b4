//! `files-api`: the read path of repository files, `GET /v1/files/{key}`, one base
//! URL for every repository a client reads (docs/access.md, "Private
//! repositories"). A public repository's file is a redirect to its public URL in
//! the bucket; a private repository's needs a credential that sees it and holds
//! `read:<path>` (a token as the Basic password, as apt's `auth.conf`, dnf's
//! `username`/`password` and `helm repo add --username --password` send it) and is
//! a redirect to a presigned URL that works for a few minutes. Without credentials
//! the answer is 401 whether or not a private repository is there; with credentials
//! that do not see it, 404.
//!
//! Source archives are read the same way (`git/<name>.git/…`, `trees/…`,
//! `tarballs/…`, from the archive bucket). git's dumb HTTP client refuses a
//! redirect of its first request (`info/refs`) to another URL, so a private
//! archive's small index files (`info/refs`, `HEAD`, `objects/info/…`) are served
//! here; its packs and tarballs redirect, which git follows with
//! `http.followRedirects=true`.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cairn_core::Config;
use cairn_core::auth::Accounts;
use cairn_core::ports::{ReadUrls, RepoStore};
use cairn_core::repositories::{Bucket, FileAccess, RepositoryStore, file_access};
use cairn_http::{ApiError, MaybeCaller};
use std::sync::Arc;
use std::time::Duration;

/// How long a presigned URL of a private file works.
pub const READ_URL_TTL: Duration = Duration::from_secs(300);

/// Everything a request needs, built once per cold start.
pub struct App {
    /// Accounts and their tokens.
    pub users: Arc<dyn Accounts>,
    /// Created repositories.
    pub repositories: Arc<dyn RepositoryStore>,
    /// Presigned reads of the repository bucket.
    pub urls: Arc<dyn ReadUrls>,
    /// The archive bucket: a private archive's git index files are served from it.
    pub archives: Arc<dyn RepoStore>,
    /// Presigned reads of the archive bucket.
    pub archive_urls: Arc<dyn ReadUrls>,
    /// Public URL of the archive bucket.
    pub archive_base_url: String,
    /// Settings.
    pub config: Config,
}

impl cairn_http::HasUsers for App {
    fn accounts(&self) -> &dyn Accounts {
        self.users.as_ref()
    }
}

fn redirect(location: &str, cache: &'static str) -> Result<Response, ApiError> {
    let location = HeaderValue::from_str(location).map_err(ApiError::internal)?;
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
    )
        .into_response())
}

/// `GET /v1/files/{key}`: a redirect to the file, if the caller may read it.
#[utoipa::path(
    get, path = "/v1/files/{key+}", operation_id = "read_file", tag = "files",
    summary = "Read a repository file",
    description = "One base URL for every repository: `<api>/v1/files/<the file's key>`. A \
        public repository's file redirects to its public URL; a private repository's to a \
        presigned URL (5 minutes) when the credential sees the repository and holds \
        `read:<path>`. No credentials: 401 unless the file is public. Credentials that do \
        not see it: 404, as for nothing.",
    params(("key+" = String, Path, description = "The file's key: `team/db/debian/dists/bookworm/InRelease`")),
    responses(
        (status = 302, description = "Where the file is (Location)"),
        (status = 403, description = "The credential sees the repository but lacks `read:<path>`",
         body = cairn_core::problem::Problem, content_type = "application/problem+json"),
        cairn_http::openapi::Refusals,
    ),
    security((), ("basic" = [])),
)]
pub async fn read(
    State(app): State<Arc<App>>,
    MaybeCaller(caller): MaybeCaller,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    answer(&app, caller, &key, false).await
}

async fn answer(
    app: &App,
    caller: Option<cairn_core::auth::Principal>,
    key: &str,
    head: bool,
) -> Result<Response, ApiError> {
    let seed = &app.config.supported;
    match file_access(seed, app.repositories.as_ref(), caller.as_ref(), key).await? {
        FileAccess::Public(bucket) => {
            let base = match bucket {
                Bucket::Packages => &app.config.repo_base_url,
                Bucket::Archives => &app.archive_base_url,
            };
            redirect(
                &format!("{}/{key}", base.trim_end_matches('/')),
                "public, max-age=60",
            )
        }
        FileAccess::Private(Bucket::Archives, object) if is_git_index(key) => {
            serve(app.archives.as_ref(), &object, key, head).await
        }
        FileAccess::Private(bucket, object) => {
            let urls = match bucket {
                Bucket::Packages => &app.urls,
                Bucket::Archives => &app.archive_urls,
            };
            let url = urls.read_url(&object, head, READ_URL_TTL).await?;
            redirect(&url, "private, no-store")
        }
        FileAccess::Challenge => Err(ApiError::unauthorized(
            "credentials needed: a token with read:<repository> as the password",
        )),
        FileAccess::NotFound => Err(ApiError::not_found(format!("no file {key}"))),
    }
}

/// Whether `key` is one of a git repository's dumb-HTTP index files, which git
/// must get from the URL it asked (no redirect).
fn is_git_index(key: &str) -> bool {
    let in_repo = |rest: &str| {
        matches!(
            rest,
            "info/refs"
                | "HEAD"
                | "objects/info/packs"
                | "objects/info/alternates"
                | "objects/info/http-alternates"
        )
    };
    let s: Vec<&str> = key.splitn(3, '/').collect();
    match s.as_slice() {
        ["git", repo, rest] => repo.ends_with(".git") && in_repo(rest),
        ["trees", _, rest] => rest
            .split_once(".git/")
            .is_some_and(|(tag, rest)| !tag.contains('/') && in_repo(rest)),
        _ => false,
    }
}

/// A small file of the archive bucket, as it is (`head`: its headers only).
async fn serve(
    files: &dyn RepoStore,
    object: &str,
    key: &str,
    head: bool,
) -> Result<Response, ApiError> {
    let Some(body) = files.get(object).await? else {
        return Err(ApiError::not_found(format!("no file {key}")));
    };
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        ),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        ),
    ];
    Ok(if head {
        (
            StatusCode::OK,
            headers,
            [(header::CONTENT_LENGTH, body.len())],
        )
            .into_response()
    } else {
        (StatusCode::OK, headers, body).into_response()
    })
}

/// `HEAD /v1/files/{key}`: as `GET` (the redirect, without a body).
#[utoipa::path(
    head, path = "/v1/files/{key+}", operation_id = "head_file", tag = "files",
    summary = "Where a repository file is, without reading it",
    params(("key+" = String, Path, description = "The file's key")),
    responses((status = 302, description = "Where the file is (Location)"), cairn_http::openapi::Refusals),
    security((), ("basic" = [])),
)]
pub async fn head(
    State(app): State<Arc<App>>,
    MaybeCaller(caller): MaybeCaller,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    answer(&app, caller, &key, true).await
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(read, head))]
struct Described;

/// The endpoint group's routes.
pub fn router(app: Arc<App>) -> Router {
    let route = get(read).head(head);
    cairn_http::finish(Router::new().route("/v1/files/{*key}", route)).with_state(app)
}

/// The endpoint group's OpenAPI description.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = cairn_http::openapi::base(
        "Cairn files",
        "The read path of repository files: public ones redirect to the bucket, private \
         ones to a presigned URL for readers with a token.",
    );
    doc.merge(<Described as utoipa::OpenApi>::openapi());
    doc
}
