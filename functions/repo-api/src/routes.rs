//! Request routing and the handlers: each translates HTTP to a domain call and back.

use crate::error::ApiError;
use crate::multipart;
use bytes::Bytes;
use cairn_aws::{DynamoCatalog, S3Store, SqsSyncQueue};
use cairn_core::auth::{Authenticator, Principal};
use cairn_core::ingest::{
    IngestError, IngestOutcome, Ingestor, PackageSource, build_record, check_target,
};
use cairn_core::package::PackageStatus;
use cairn_core::ports::{Catalog, UploadLedger, UploadTicket};
use cairn_core::{Config, RepoPath};
use lambda_http::http::Method;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

/// Everything a request needs, built once per cold start.
pub struct App {
    /// Catalog, users and tickets.
    pub catalog: DynamoCatalog,
    /// Repository and staging buckets.
    pub store: S3Store,
    /// Metadata-sync queue.
    pub queue: SqsSyncQueue,
    /// Settings.
    pub config: Config,
}

fn json_response(status: u16, body: Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("static headers are valid")
}

fn body_bytes(req: &Request) -> Bytes {
    match req.body() {
        Body::Empty => Bytes::new(),
        Body::Text(t) => Bytes::copy_from_slice(t.as_bytes()),
        Body::Binary(b) => Bytes::copy_from_slice(b),
        _ => Bytes::new(),
    }
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

impl App {
    /// Routes one request; every error becomes a problem response here.
    #[tracing::instrument(skip_all, fields(method = %req.method(), path = req.raw_http_path()))]
    pub async fn handle(&self, req: Request) -> Response<Body> {
        match self.route(req).await {
            Ok(resp) => resp,
            Err(e) => e.into_response(),
        }
    }

    async fn route(&self, req: Request) -> Result<Response<Body>, ApiError> {
        let params = req.path_parameters();
        if let (Some(k), Some(s), Some(d), Some(v)) = (
            params.first("kind"),
            params.first("series"),
            params.first("dist"),
            params.first("ver"),
        ) {
            let repo = RepoPath::new(k, s, d, v)?;
            return match *req.method() {
                Method::GET => self.list(&repo).await,
                Method::PUT => self.upload(&repo, &req).await,
                Method::POST => self.resync(&repo, &req).await,
                _ => Err(ApiError::MethodNotAllowed),
            };
        }
        if let Some(id) = params.first("id") {
            return self.ticket_status(id, &req).await;
        }
        if req
            .raw_http_path()
            .trim_end_matches('/')
            .ends_with("/v1/uploads")
            && req.method() == Method::POST
        {
            return self.presign(&req).await;
        }
        Err(ApiError::NotFound(format!(
            "no route for {} {}",
            req.method(),
            req.raw_http_path()
        )))
    }

    async fn authenticate(&self, req: &Request) -> Result<Principal, ApiError> {
        Ok(Authenticator::new(self.catalog.clone())
            .authenticate(header(req, "authorization"))
            .await?)
    }

    fn ingestor(&self) -> Ingestor<'_> {
        Ingestor {
            catalog: &self.catalog,
            store: &self.store,
            queue: &self.queue,
            supported: &self.config.supported,
        }
    }

    async fn list(&self, repo: &RepoPath) -> Result<Response<Body>, ApiError> {
        self.config.supported.check(repo)?;
        let packages: Vec<Value> = self
            .catalog
            .list_packages(repo)
            .await?
            .into_iter()
            .filter(|p| p.status == PackageStatus::Ready)
            .map(|p| {
                json!({
                    "filename": p.filename, "package": p.name, "version": p.version,
                    "architecture": p.architecture, "size": p.size, "sha256": p.sha256,
                    "product": p.product, "uploaded_at": p.uploaded_at,
                    "url": self.public_url(&p.pool_key),
                })
            })
            .collect();
        let state = self.catalog.repo_state(repo).await?;
        Ok(json_response(
            200,
            json!({"repository": repo.to_string(), "packages": packages,
                   "apt_source": self.sources_line(repo),
                   "page": self.public_url(&format!("{}/dists/{}/index.html", repo.root(), repo.suite())),
                   "sync": {"change_seq": state.change_seq, "published_seq": state.published_seq,
                            "publish_count": state.publish_count,
                            "published_at": state.published_at}}),
        ))
    }

    async fn resync(&self, repo: &RepoPath, req: &Request) -> Result<Response<Body>, ApiError> {
        self.authenticate(req).await?;
        self.config.supported.check(repo)?;
        let seq = self.ingestor().announce(repo, &[]).await?;
        Ok(json_response(
            202,
            json!({"repository": repo.to_string(), "sync": {"queued": true, "seq": seq}}),
        ))
    }

    async fn upload(&self, repo: &RepoPath, req: &Request) -> Result<Response<Body>, ApiError> {
        let principal = self.authenticate(req).await?;
        self.config.supported.check(repo)?;
        let body = body_bytes(req);
        if body.len() as u64 > self.config.max_api_upload {
            return Err(ApiError::TooLarge(format!(
                "request body is {} bytes; the API accepts up to {} bytes. \
                 Use a presigned upload (POST /v1/uploads) for larger packages",
                body.len(),
                self.config.max_api_upload
            )));
        }
        let content_type = header(req, "content-type").unwrap_or_default();
        tracing::debug!(body_len = body.len(), content_type, "upload body");
        let form = multipart::parse(content_type, body).await?;
        if form.files.is_empty() {
            return Err(ApiError::BadRequest("the form has no package file".into()));
        }
        let mut names: Vec<&str> = form.files.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(ApiError::BadRequest(format!(
                "{} appears twice in the form",
                pair[0]
            )));
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();

        // Validate every file before storing any, so a bad file refuses the whole upload.
        let mut prepared = Vec::with_capacity(form.files.len());
        for (filename, data) in form.files {
            check_target(
                &self.config.supported,
                repo,
                &filename,
                form.product.as_deref(),
            )?;
            let info = inspect(filename.clone(), data.clone()).await?;
            let record = build_record(
                repo,
                &filename,
                form.product.as_deref(),
                &info,
                &principal.name,
                now,
            )?;
            self.ingestor().check_conflict(&record).await?;
            prepared.push((record, data));
        }

        let mut results = Vec::with_capacity(prepared.len());
        let mut stored = Vec::new();
        for (record, data) in prepared {
            let outcome = self
                .ingestor()
                .store(record, PackageSource::Bytes(data))
                .await?;
            if let IngestOutcome::Stored(r) = &outcome {
                stored.push(r.filename.clone());
            }
            results.push(self.outcome_json(&outcome));
        }
        let changed = !stored.is_empty();
        let seq = if changed {
            Some(self.ingestor().announce(repo, &stored).await?)
        } else {
            None
        };
        Ok(json_response(
            if changed { 201 } else { 200 },
            json!({"repository": repo.to_string(), "packages": results,
                   "sync": {"queued": changed, "seq": seq}}),
        ))
    }

    async fn presign(&self, req: &Request) -> Result<Response<Body>, ApiError> {
        #[derive(Deserialize)]
        struct PresignRequest {
            repository: String,
            filename: String,
            product: Option<String>,
        }
        let principal = self.authenticate(req).await?;
        let body: PresignRequest = serde_json::from_slice(&body_bytes(req)).map_err(|e| {
            ApiError::BadRequest(format!(
                "expected JSON {{\"repository\", \"filename\", \"product\"}}: {e}"
            ))
        })?;
        let repo = RepoPath::parse(&body.repository)?;
        check_target(
            &self.config.supported,
            &repo,
            &body.filename,
            body.product.as_deref(),
        )?;
        let ticket = UploadTicket {
            id: uuid::Uuid::new_v4().simple().to_string(),
            repo,
            product: body.product,
            filename: body.filename,
            uploader: principal.name,
            status: "waiting".into(),
            message: None,
            created_at: time::OffsetDateTime::now_utc().unix_timestamp(),
        };
        self.catalog.put_ticket(&ticket).await?;
        let ttl = self.config.presign_ttl_secs;
        let url = self
            .store
            .presign_staging_put(&ticket.staging_key(), Duration::from_secs(ttl))
            .await?;
        Ok(json_response(
            201,
            json!({"id": ticket.id, "method": "PUT", "upload_url": url, "expires_in": ttl,
                   "status_url": format!("/v1/uploads/{}", ticket.id)}),
        ))
    }

    async fn ticket_status(&self, id: &str, req: &Request) -> Result<Response<Body>, ApiError> {
        self.authenticate(req).await?;
        let ticket = self
            .catalog
            .get_ticket(id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no upload {id}")))?;
        let status = if ticket.status == "failed" { 422 } else { 200 };
        Ok(json_response(
            status,
            json!({"id": ticket.id, "repository": ticket.repo.to_string(),
                   "filename": ticket.filename, "status": ticket.status,
                   "message": ticket.message}),
        ))
    }

    fn outcome_json(&self, outcome: &IngestOutcome) -> Value {
        let p = outcome.record();
        json!({
            "filename": p.filename, "package": p.name, "version": p.version,
            "architecture": p.architecture, "size": p.size, "sha256": p.sha256,
            "status": if matches!(outcome, IngestOutcome::Stored(_)) { "stored" } else { "unchanged" },
            "url": self.public_url(&p.pool_key),
        })
    }

    fn public_url(&self, key: &str) -> String {
        format!(
            "{}/{}",
            self.config.repo_base_url.trim_end_matches('/'),
            key
        )
    }

    fn sources_line(&self, repo: &RepoPath) -> String {
        format!(
            "deb [signed-by=/usr/share/keyrings/cairn-archive-keyring.gpg] {} {} main",
            self.public_url(&repo.root()),
            repo.suite()
        )
    }
}

/// Inspects a package off the async runtime (hashing is CPU work).
async fn inspect(filename: String, data: Bytes) -> Result<cairn_deb::DebInfo, IngestError> {
    tokio::task::spawn_blocking(move || {
        cairn_deb::inspect_deb(std::io::Cursor::new(&data[..])).map_err(|e| {
            IngestError::InvalidPackage {
                filename,
                reason: e.to_string(),
            }
        })
    })
    .await
    .map_err(|e| IngestError::Store(cairn_core::StoreError::new("inspect", e)))?
}
