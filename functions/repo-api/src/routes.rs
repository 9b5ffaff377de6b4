//! Request routing and the handlers: each translates HTTP to a domain call and back.

use crate::error::ApiError;
use crate::multipart;
use bytes::Bytes;
use cairn_aws::{DynamoCatalog, S3Store, SqsSyncQueue};
use cairn_core::auth::{Authenticator, Principal};
use cairn_core::ingest::{
    IngestError, IngestOutcome, Ingestor, Inspected, PackageSource, attach_provenance,
    build_record, check_target, inspect_package,
};
use cairn_core::package::PackageStatus;
use cairn_core::ports::{Catalog, UploadLedger, UploadStatus, UploadTicket};
use cairn_core::repo::RepoFormat;
use cairn_core::{Config, RepoPath};
use lambda_http::http::Method;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
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
            if let Some(file) = params.first("file") {
                return match *req.method() {
                    Method::GET => self.package(&repo, file).await,
                    Method::DELETE => self.delete(&repo, file, &req).await,
                    _ => Err(ApiError::MethodNotAllowed),
                };
            }
            return match *req.method() {
                Method::GET => self.list(&repo).await,
                Method::PUT => self.upload(&repo, &req).await,
                Method::POST => self.resync(&repo, &req).await,
                Method::DELETE => Err(ApiError::BadRequest(format!(
                    "name the package to delete: DELETE /{repo}/FILENAME"
                ))),
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
        let format = self.config.supported.check(repo)?.format;
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
        let mut body = json!({"repository": repo.to_string(), "format": format, "packages": packages,
               "sync": {"change_seq": state.change_seq, "published_seq": state.published_seq,
                        "publish_count": state.publish_count,
                        "published_at": state.published_at}});
        let dir = repo.dir();
        let (usage_key, usage, page) = match format {
            RepoFormat::Deb => (
                "apt_source",
                self.sources_line(repo),
                format!("{}/dists/{}/index.html", repo.root(), repo.suite()),
            ),
            RepoFormat::Rpm => (
                "dnf_repo_file",
                self.public_url(&format!("{dir}/cairn.repo")),
                format!("{dir}/index.html"),
            ),
            RepoFormat::Helm => (
                "helm_repo",
                self.public_url(&dir),
                format!("{dir}/index.html"),
            ),
        };
        body[usage_key] = json!(usage);
        body["page"] = json!(self.public_url(&page));
        Ok(json_response(200, body))
    }

    async fn resync(&self, repo: &RepoPath, req: &Request) -> Result<Response<Body>, ApiError> {
        self.authenticate(req).await?;
        let mut syncs = Vec::new();
        for target in self.config.supported.expand(repo) {
            self.config.supported.check(&target)?;
            let seq = self.ingestor().announce(&target, &[]).await?;
            syncs.push(json!({"repository": target.to_string(), "queued": true, "seq": seq}));
        }
        let sync = match syncs.as_slice() {
            [one] => json!({"queued": true, "seq": one["seq"]}),
            _ => json!({"queued": true, "seq": null}),
        };
        Ok(json_response(
            202,
            json!({"repository": repo.to_string(), "sync": sync, "syncs": syncs}),
        ))
    }

    /// `PUT`: a 409 always says what the request stored before it failed (`stored`,
    /// empty when the conflict was found before anything was stored).
    async fn upload(&self, repo: &RepoPath, req: &Request) -> Result<Response<Body>, ApiError> {
        self.upload_files(repo, req).await.map_err(|e| match e {
            ApiError::Conflict(_) => {
                let mut details = serde_json::Map::new();
                details.insert("stored".into(), json!([]));
                ApiError::WithDetails(Box::new(e), details)
            }
            other => other,
        })
    }

    async fn upload_files(
        &self,
        repo: &RepoPath,
        req: &Request,
    ) -> Result<Response<Body>, ApiError> {
        let principal = self.authenticate(req).await?;
        // An anchor fans the upload out to every repository it names.
        let targets = self.config.supported.expand(repo);
        let mut format = None;
        for target in &targets {
            format = Some(self.config.supported.check(target)?.format);
        }
        let format = format.ok_or_else(|| {
            ApiError::NotFound(format!("anchor {} names no repository", repo.series))
        })?;
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
        let mut names: Vec<&str> = form.files.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(ApiError::BadRequest(format!(
                "{} appears twice in the form",
                pair[0]
            )));
        }
        // Provenance files travel with their chart, source files with their .dsc,
        // in the same form.
        let (provs, packages): (Vec<_>, Vec<_>) = form
            .files
            .into_iter()
            .partition(|(name, _)| format == RepoFormat::Helm && name.ends_with(".prov"));
        let (source_files, packages): (Vec<_>, Vec<_>) =
            packages.into_iter().partition(|(name, _)| {
                format == RepoFormat::Deb && !name.ends_with(".deb") && !name.ends_with(".dsc")
            });
        let mut provs: BTreeMap<String, Bytes> = provs.into_iter().collect();
        let source_files: BTreeMap<String, Bytes> = source_files.into_iter().collect();
        let orphan_source = |used: &std::collections::BTreeSet<String>| {
            source_files
                .keys()
                .find(|n| !used.contains(*n))
                .map(|orphan| {
                    ApiError::BadRequest(format!(
                        "{orphan} is not listed by any .dsc in this upload (source files are \
                         uploaded with their .dsc; binary packages end in .deb)"
                    ))
                })
        };
        if packages.is_empty() {
            return Err(orphan_source(&Default::default())
                .unwrap_or_else(|| ApiError::BadRequest("the form has no package file".into())));
        }
        let mut used_sources = std::collections::BTreeSet::new();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();

        // Validate every file for every target before storing any, so a bad file
        // refuses the whole upload.
        let mut prepared = Vec::new();
        for (filename, data) in packages {
            for target in &targets {
                check_target(
                    &self.config.supported,
                    target,
                    &filename,
                    form.product.as_deref(),
                )?;
            }
            if filename.ends_with(".dsc") {
                for target in &targets {
                    let (record, extra) = self
                        .ingestor()
                        .prepare_source(
                            target,
                            &filename,
                            &data,
                            form.product.as_deref(),
                            &source_files,
                            &principal.name,
                            now,
                        )
                        .await?;
                    for (key, _) in &extra {
                        used_sources.insert(key.rsplit('/').next().unwrap_or(key).to_string());
                    }
                    self.ingestor().check_conflict(&record).await?;
                    prepared.push((record, data.clone(), extra));
                }
                continue;
            }
            let inspected = inspect(format, filename.clone(), data.clone()).await?;
            let prov = provs.remove(&format!("{filename}.prov"));
            for target in &targets {
                let dist = self.config.supported.check(target)?;
                let mut record = build_record(
                    target,
                    dist,
                    &filename,
                    form.product.as_deref(),
                    &inspected,
                    &principal.name,
                    now,
                )?;
                let mut extra = Vec::new();
                if let Some(prov) = &prov {
                    attach_provenance(&mut record, prov)?;
                    extra.push((format!("{}.prov", record.pool_key), prov.clone()));
                }
                self.ingestor().check_conflict(&record).await?;
                prepared.push((record, data.clone(), extra));
            }
        }
        if let Some(orphan) = provs.keys().next() {
            return Err(ApiError::BadRequest(format!(
                "{orphan} has no chart {} in the same form",
                orphan.trim_end_matches(".prov")
            )));
        }
        if let Some(err) = orphan_source(&used_sources) {
            return Err(err);
        }

        // Files are stored one by one; a file that loses a race for its name (or
        // fails to store) ends the upload, and the files stored before it are still
        // announced, so they are published, and named in the error.
        let mut results = Vec::with_capacity(prepared.len());
        let mut stored: BTreeMap<RepoPath, Vec<String>> = BTreeMap::new();
        let mut failure = None;
        for (record, data, extra) in prepared {
            match self
                .ingestor()
                .store(record, PackageSource::Bytes(data), extra)
                .await
            {
                Ok(outcome) => {
                    if let IngestOutcome::Stored(r) = &outcome {
                        stored
                            .entry(r.repo.clone())
                            .or_default()
                            .push(r.filename.clone());
                    }
                    results.push(self.outcome_json(&outcome));
                }
                Err(e) => {
                    failure = Some(ApiError::from(e));
                    break;
                }
            }
        }
        let mut syncs = Vec::new();
        for (target, files) in &stored {
            let seq = self.ingestor().announce(target, files).await?;
            syncs.push(json!({"repository": target.to_string(), "queued": true, "seq": seq}));
        }
        if let Some(e) = failure {
            let mut details = serde_json::Map::new();
            details.insert(
                "stored".into(),
                json!(
                    results
                        .iter()
                        .filter(|r| r["status"] == "stored")
                        .map(|r| r["filename"].clone())
                        .collect::<Vec<_>>()
                ),
            );
            details.insert("packages".into(), json!(results));
            details.insert("syncs".into(), json!(syncs));
            return Err(ApiError::WithDetails(Box::new(e), details));
        }
        let changed = !stored.is_empty();
        let sync = match syncs.as_slice() {
            [one] => json!({"queued": true, "seq": one["seq"]}),
            _ => json!({"queued": changed, "seq": null}),
        };
        Ok(json_response(
            if changed { 201 } else { 200 },
            json!({"repository": repo.to_string(),
                   "repositories": targets.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
                   "packages": results, "sync": sync, "syncs": syncs}),
        ))
    }

    async fn delete(
        &self,
        repo: &RepoPath,
        filename: &str,
        req: &Request,
    ) -> Result<Response<Body>, ApiError> {
        self.authenticate(req).await?;
        // An anchor names several series: the package is deleted wherever it is, and
        // the answer says where it was absent; 404 only when it is nowhere.
        let targets = self.config.supported.expand(repo);
        for target in &targets {
            check_target(&self.config.supported, target, filename, None)?;
        }
        let mut results = Vec::new();
        let mut found = false;
        for target in targets {
            match self.ingestor().delete(&target, filename).await {
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
                Err(e) => {
                    let mut details = serde_json::Map::new();
                    details.insert("deleted".into(), json!(results));
                    return Err(ApiError::WithDetails(Box::new(e.into()), details));
                }
            }
        }
        if !found {
            return Err(ApiError::NotFound(format!(
                "{repo} has no package {filename}"
            )));
        }
        Ok(json_response(202, json!({"deleted": results})))
    }

    async fn package(&self, repo: &RepoPath, filename: &str) -> Result<Response<Body>, ApiError> {
        check_target(&self.config.supported, repo, filename, None)?;
        let p = self
            .catalog
            .get_package(repo, filename)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("{repo} has no package {filename}")))?;
        Ok(json_response(
            200,
            json!({
                "repository": repo.to_string(), "filename": p.filename, "package": p.name,
                "version": p.version, "architecture": p.architecture, "size": p.size,
                "sha256": p.sha256, "product": p.product, "uploaded_at": p.uploaded_at,
                "uploader": p.uploader, "status": format!("{:?}", p.status).to_lowercase(),
                "url": self.public_url(&p.pool_key),
            }),
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
                "expected a JSON body {{\"repository\", \"filename\", \"product\"}} sent with \
                 content-type: application/json: {e}"
            ))
        })?;
        let repo = RepoPath::parse(&body.repository)?;
        let companion = body.filename.ends_with(".prov")
            || body.filename.ends_with(".dsc")
            || body.filename.contains(".tar.")
            || body.filename.ends_with(".diff.gz");
        if companion {
            return Err(ApiError::BadRequest(
                "source packages and provenance files are uploaded in one PUT form with the \
                 files that go with them, not presigned"
                    .into(),
            ));
        }
        for target in self.config.supported.expand(&repo) {
            check_target(
                &self.config.supported,
                &target,
                &body.filename,
                body.product.as_deref(),
            )?;
        }
        let ticket = UploadTicket {
            id: uuid::Uuid::new_v4().simple().to_string(),
            repo,
            product: body.product,
            filename: body.filename,
            uploader: principal.name,
            status: UploadStatus::Waiting,
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
        let principal = self.authenticate(req).await?;
        let not_found = || ApiError::NotFound("no such upload".into());
        // Ticket ids are 32 hex digits (what presign makes); anything else is no ticket.
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        // A ticket is its uploader's: another account is told it does not exist.
        let ticket = self
            .catalog
            .get_ticket(id)
            .await?
            .filter(|t| t.uploader == principal.name)
            .ok_or_else(not_found)?;
        let status = if ticket.status == UploadStatus::Failed {
            422
        } else {
            200
        };
        Ok(json_response(
            status,
            json!({"id": ticket.id, "repository": ticket.repo.to_string(),
                   "filename": ticket.filename, "status": ticket.status.as_str(),
                   "message": ticket.message}),
        ))
    }

    fn outcome_json(&self, outcome: &IngestOutcome) -> Value {
        let p = outcome.record();
        json!({
            "repository": p.repo.to_string(), "filename": p.filename, "package": p.name, "version": p.version,
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
async fn inspect(
    format: RepoFormat,
    filename: String,
    data: Bytes,
) -> Result<Inspected, IngestError> {
    tokio::task::spawn_blocking(move || {
        inspect_package(format, &filename, std::io::Cursor::new(&data[..]))
    })
    .await
    .map_err(|e| IngestError::Store(cairn_core::StoreError::new("inspect", e)))?
}
