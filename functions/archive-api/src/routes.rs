//! Routing and handlers: HTTP in, a domain call, HTTP out. Every error becomes a
//! problem response in [`App::handle`].

use cairn_archive::model::OperationKind;
use cairn_archive::request::{check_origin, validate_name};
use cairn_archive::{ArchiveError, ArchiveRequest, Archiver, CloneRequest, Operations};
use cairn_aws::DynamoCatalog;
use cairn_core::auth::{AuthError, Authenticator, Principal};
use lambda_http::http::Method;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Longest the API spends listing an origin's refs to answer a repeat request itself.
const LISTING_LIMIT: Duration = Duration::from_secs(4);

/// Largest request body accepted (these are small JSON documents).
const MAX_BODY: usize = 64 * 1024;

/// Everything a request needs, built once per cold start.
pub struct App {
    /// Upload accounts (the same as for packages).
    pub users: DynamoCatalog,
    /// Archive use cases.
    pub archiver: Archiver,
    /// Operations.
    pub operations: Operations,
    /// How long to wait for a result without `callback`.
    pub wait: Duration,
}

fn respond(status: u16, content_type: &str, body: Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Body::from(body.to_string()))
        .expect("static headers are valid")
}

fn problem(e: &ArchiveError) -> Response<Body> {
    let status = e.http_status();
    if status >= 500 {
        tracing::error!(error = %e, "request failed");
    } else {
        tracing::info!(status, error = %e, "request refused");
    }
    respond(status, "application/problem+json", e.problem())
}

fn unauthorized(e: AuthError) -> Response<Body> {
    if let AuthError::Store(e) = e {
        return problem(&ArchiveError::Store(e));
    }
    let mut resp = respond(
        401,
        "application/problem+json",
        json!({"type": "about:blank", "title": "Unauthorized", "status": 401, "detail": e.to_string()}),
    );
    resp.headers_mut().insert(
        "www-authenticate",
        "Basic realm=\"Cairn\"".parse().expect("static header"),
    );
    resp
}

fn json_body<T: serde::de::DeserializeOwned>(req: &Request) -> Result<(T, Value), ArchiveError> {
    let bytes: &[u8] = match req.body() {
        Body::Empty => b"",
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => b"",
    };
    if bytes.len() > MAX_BODY {
        return Err(ArchiveError::Invalid(format!(
            "request body larger than {MAX_BODY} bytes"
        )));
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ArchiveError::Invalid(format!("request body is not JSON: {e}")))?;
    let parsed = serde_json::from_value(value.clone())
        .map_err(|e| ArchiveError::Invalid(format!("invalid request: {e}")))?;
    Ok((parsed, value))
}

impl App {
    /// Routes one request; answers every error with a problem body.
    #[tracing::instrument(skip_all, fields(method = %req.method(), path = req.raw_http_path()))]
    pub async fn handle(&self, req: Request) -> Response<Body> {
        let principal = match Authenticator::new(self.users.clone())
            .authenticate(
                req.headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok()),
            )
            .await
        {
            Ok(p) => p,
            Err(e) => return unauthorized(e),
        };
        match self.route(&req, &principal).await {
            Ok(resp) => resp,
            Err(e) => problem(&e),
        }
    }

    async fn route(&self, req: &Request, who: &Principal) -> Result<Response<Body>, ArchiveError> {
        let params = req.path_parameters();
        let path = req.raw_http_path();
        let path = path.trim_end_matches('/');
        let method = req.method().clone();
        if let Some(id) = params.first("id") {
            return match (method, path.contains("/cancel/")) {
                (Method::POST, true) => {
                    let op = self.operations.cancel(id, &who.name).await?;
                    Ok(respond(
                        200,
                        "application/json",
                        json!({"id": op.id, "status": op.status}),
                    ))
                }
                (Method::GET, false) => Ok(respond(
                    200,
                    "application/json",
                    self.operations.show(id, &who.name).await?,
                )),
                _ => Err(ArchiveError::Invalid(format!(
                    "{} is not allowed here",
                    req.method()
                ))),
            };
        }
        if let Some(name) = params.first("name") {
            if let Some(file) = params.first("tarball") {
                return self.tarball(name, file).await;
            }
            return Ok(respond(
                200,
                "application/json",
                self.archiver.describe(name).await?,
            ));
        }
        if path.ends_with("/archives") && method == Method::POST {
            let started = Instant::now();
            let (body, raw): (ArchiveRequest, Value) = json_body(req)?;
            body.validate()?;
            let url = check_origin(&body.url, &self.archiver.settings.policy).await?;
            if body.callback.is_none()
                && let Some(answer) = self
                    .archiver
                    .answer_known(&body, url, LISTING_LIMIT)
                    .await?
            {
                // A tree archived before: answered from the catalog, nothing queued.
                return Ok(respond(200, "application/json", answer));
            }
            return self
                .submit(
                    OperationKind::Archive,
                    &body.name,
                    raw,
                    body.callback,
                    who,
                    started,
                )
                .await;
        }
        if path.ends_with("/clone") && method == Method::POST {
            let (body, raw): (CloneRequest, Value) = json_body(req)?;
            body.validate()?;
            check_origin(&body.origin_repo_url, &self.archiver.settings.policy).await?;
            let name = body.target_name()?;
            return self
                .submit(
                    OperationKind::Clone,
                    &name,
                    raw,
                    body.callback,
                    who,
                    Instant::now(),
                )
                .await;
        }
        Err(ArchiveError::NotFound(format!(
            "no route for {} {}",
            req.method(),
            req.raw_http_path()
        )))
    }

    /// Queues the operation; answers at once in callback mode, else waits for the
    /// result up to `wait`.
    async fn submit(
        &self,
        kind: OperationKind,
        name: &str,
        raw: Value,
        callback: Option<cairn_callback::Callback>,
        who: &Principal,
        started: Instant,
    ) -> Result<Response<Body>, ArchiveError> {
        if let Some(cb) = &callback {
            // Refuse a callback the worker could never deliver, before queueing.
            cairn_callback::check_url(cb.url(), &self.archiver.settings.policy)
                .await
                .map_err(|e| ArchiveError::Invalid(format!("callback URL refused: {e}")))?;
        }
        let has_callback = callback.is_some();
        let op = self
            .operations
            .submit(kind, name, raw, callback, &who.name)
            .await?;
        if has_callback {
            return Ok(respond(
                202,
                "application/json",
                json!({"callback": {"id": op.id}}),
            ));
        }
        let deadline = started + self.wait;
        let mut pause = Duration::from_millis(100);
        loop {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
            let Some(now) = self.operations.store.get(&op.id).await? else {
                return Err(ArchiveError::Internal(format!(
                    "operation {} vanished",
                    op.id
                )));
            };
            if now.status.is_final() {
                let status = now.http_status.unwrap_or(500);
                let body = now.result.unwrap_or(Value::Null);
                let kind = if status >= 400 {
                    "application/problem+json"
                } else {
                    "application/json"
                };
                return Ok(respond(status, kind, body));
            }
            if Instant::now() >= deadline {
                return Ok(respond(
                    202,
                    "application/json",
                    json!({"id": op.id, "status": now.status,
                           "operation": format!("/v1/operations/{}", op.id),
                           "detail": "still running: poll the operation"}),
                ));
            }
        }
    }

    /// `GET /v1/archives/{name}/{tag}.tar.gz`: a redirect to the public tarball.
    async fn tarball(&self, name: &str, file: &str) -> Result<Response<Body>, ArchiveError> {
        validate_name(name)?;
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
        let refs = self.archiver.catalog.refs(name).await?;
        if !refs.iter().any(|r| r.name == refname) {
            return Err(ArchiveError::NotFound(format!(
                "no archive {tag} in {name}"
            )));
        }
        Ok(Response::builder()
            .status(302)
            .header("location", self.archiver.tarball_url(name, tag))
            .body(Body::Empty)
            .expect("valid redirect"))
    }
}
