//! The commands that talk to a deployed Cairn over its API: `login`, `whoami`,
//! `push`, `token create|list|revoke`. They exit with codes a CI script can trust
//! (docs/cli.md): 0 done, 1 refused by Cairn (4xx), 2 bad command line or no login,
//! 3 credentials refused (401/403), 4 Cairn or the network failed, 5 `--wait` timed out.

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A failure and the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    /// The process exit code.
    pub code: i32,
    /// What to tell the user.
    pub message: String,
}

impl Failure {
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }

    pub(crate) fn network(message: impl Into<String>) -> Self {
        Self {
            code: 4,
            message: message.into(),
        }
    }

    /// A refusal from the API, by status: 401/403 are credential problems.
    pub(crate) fn answer(status: u16, body: &Value, what: &str) -> Self {
        let detail = body["detail"]
            .as_str()
            .map_or_else(|| body.to_string(), str::to_string);
        let code = match status {
            401 | 403 => 3,
            400..=499 => 1,
            _ => 4,
        };
        Self {
            code,
            message: format!("{what}: {status} {detail}"),
        }
    }
}

pub(crate) type Outcome<T = ()> = Result<T, Failure>;

/// Where the login is kept: `$CAIRN_CONFIG`, else `$XDG_CONFIG_HOME/cairn/config.json`,
/// else `~/.config/cairn/config.json`.
pub fn config_path() -> Outcome<PathBuf> {
    if let Some(path) = std::env::var_os("CAIRN_CONFIG") {
        return Ok(PathBuf::from(path));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .ok_or_else(|| Failure::usage("neither CAIRN_CONFIG, XDG_CONFIG_HOME nor HOME is set"))?;
    Ok(base.join("cairn").join("config.json"))
}

/// The stored login.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Login {
    /// The API's URL, stage included.
    pub api: String,
    /// The token.
    pub token: String,
}

impl Login {
    /// The login: `CAIRN_API_URL` and `CAIRN_TOKEN` if both are set (CI), else the
    /// config file.
    pub fn load() -> Outcome<Self> {
        if let (Ok(api), Ok(token)) = (std::env::var("CAIRN_API_URL"), std::env::var("CAIRN_TOKEN"))
        {
            return Ok(Login { api, token });
        }
        let path = config_path()?;
        let text = std::fs::read_to_string(&path).map_err(|_| {
            Failure::usage(format!(
                "not logged in: run `cairn login --api URL` (or set CAIRN_API_URL and CAIRN_TOKEN); no {}",
                path.display()
            ))
        })?;
        serde_json::from_str(&text)
            .map_err(|e| Failure::usage(format!("{} is not a cairn login: {e}", path.display())))
    }

    /// Writes the login, readable by its owner only (0600, in a 0700 folder).
    fn save(&self, path: &Path) -> Outcome {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        let fail = |e: std::io::Error| Failure::usage(format!("writing {}: {e}", path.display()));
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(fail)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(fail)?;
        // An existing file keeps its mode on open: make sure.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(fail)?;
        let text = serde_json::to_string_pretty(self).map_err(|e| Failure::usage(e.to_string()))?;
        file.write_all(text.as_bytes()).map_err(fail)
    }
}

/// An API client with one credential.
pub struct Api {
    pub(crate) base: String,
    auth: String,
    pub(crate) http: reqwest::Client,
}

impl Api {
    pub(crate) fn new(base: &str, auth: String) -> Outcome<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("cairn-cli/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(600))
            .build()
            .map_err(|e| Failure::network(e.to_string()))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            auth,
            http,
        })
    }

    /// The `authorization` header it sends.
    pub(crate) fn auth(&self) -> &str {
        &self.auth
    }

    /// A client with the stored login.
    pub fn logged_in() -> Outcome<Self> {
        let login = Login::load()?;
        Self::new(&login.api, format!("Bearer {}", login.token))
    }

    pub(crate) async fn send(&self, request: reqwest::RequestBuilder) -> Outcome<(u16, Value)> {
        let response = request
            .header("authorization", &self.auth)
            .send()
            .await
            .map_err(|e| Failure::network(format!("{}: {e}", self.base)))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Failure::network(e.to_string()))?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    async fn get(&self, path: &str) -> Outcome<(u16, Value)> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
    ) -> Outcome<(u16, Value)> {
        self.send(
            self.http
                .request(method, format!("{}{path}", self.base))
                .json(body),
        )
        .await
    }

    /// `method path` with an optional JSON body: the status and the answer.
    pub(crate) async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Outcome<(u16, Value)> {
        match body {
            Some(body) => self.json(method, path, body).await,
            None => {
                self.send(self.http.request(method, format!("{}{path}", self.base)))
                    .await
            }
        }
    }

    /// `method path`, expecting `ok`; anything else is a [`Failure`].
    pub(crate) async fn expect(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        ok: u16,
        what: &str,
    ) -> Outcome<Value> {
        let (status, answer) = self.request(method, path, body).await?;
        if status == ok {
            Ok(answer)
        } else {
            Err(Failure::answer(status, &answer, what))
        }
    }
}

fn read_stdin(what: &str) -> Outcome<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| Failure::usage(format!("reading the {what} from standard input: {e}")))?;
    let text = text.trim().to_string();
    if text.is_empty() {
        return Err(Failure::usage(format!("no {what} on standard input")));
    }
    Ok(text)
}

/// `cairn login`: with `--user`, the password on standard input is exchanged for a
/// token holding the account's scopes; without, standard input is a token. The
/// token is checked, then stored (0600).
pub async fn login(api: &str, user: Option<&str>, expires_in_days: u32) -> Outcome {
    let token = match user {
        Some(user) => {
            use base64::Engine;
            let password = read_stdin("password")?;
            let basic =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            let client = Api::new(api, format!("Basic {basic}"))?;
            let me = client
                .expect(reqwest::Method::GET, "/v1/whoami", None, 200, "log in")
                .await?;
            let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
            let issued = client
                .expect(
                    reqwest::Method::POST,
                    "/v1/tokens",
                    Some(&json!({
                        "scopes": me["scopes"],
                        "description": format!("cairn login on {}", host.trim()),
                        "expires_in": i64::from(expires_in_days) * 86_400,
                    })),
                    201,
                    "issue a token",
                )
                .await?;
            issued["token"].as_str().unwrap_or_default().to_string()
        }
        None => read_stdin("token")?,
    };
    let client = Api::new(api, format!("Bearer {token}"))?;
    let me = client
        .expect(
            reqwest::Method::GET,
            "/v1/whoami",
            None,
            200,
            "check the token",
        )
        .await?;
    let path = config_path()?;
    Login {
        api: api.to_string(),
        token,
    }
    .save(&path)?;
    eprintln!(
        "logged in to {api} as {} ({}); token stored in {}",
        me["account"].as_str().unwrap_or("?"),
        scopes_text(&me["scopes"]),
        path.display()
    );
    Ok(())
}

fn scopes_text(scopes: &Value) -> String {
    scopes
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// `cairn whoami`.
pub async fn whoami() -> Outcome {
    let me = Api::logged_in()?
        .expect(reqwest::Method::GET, "/v1/whoami", None, 200, "whoami")
        .await?;
    println!(
        "{} {} (token {}, expires {})",
        me["account"].as_str().unwrap_or("?"),
        scopes_text(&me["scopes"]),
        me["token"].as_str().unwrap_or("-"),
        me["expires_at"].as_str().unwrap_or("-"),
    );
    Ok(())
}

/// `cairn token create`: prints the token alone on standard output.
pub async fn token_create(scopes: &[String], description: &str, expires_in_days: u32) -> Outcome {
    let issued = Api::logged_in()?
        .expect(
            reqwest::Method::POST,
            "/v1/tokens",
            Some(&json!({"scopes": scopes, "description": description,
                         "expires_in": i64::from(expires_in_days) * 86_400})),
            201,
            "issue a token",
        )
        .await?;
    eprintln!(
        "token {} ({}), expires {}; it is shown this once",
        issued["id"].as_str().unwrap_or("?"),
        scopes_text(&issued["scopes"]),
        issued["expires_at"].as_str().unwrap_or("?")
    );
    println!("{}", issued["token"].as_str().unwrap_or_default());
    Ok(())
}

/// `cairn token list`.
pub async fn token_list() -> Outcome {
    let listed = Api::logged_in()?
        .expect(reqwest::Method::GET, "/v1/tokens", None, 200, "list tokens")
        .await?;
    for t in listed["tokens"].as_array().into_iter().flatten() {
        println!(
            "{}  {}  expires {}{}  {}",
            t["id"].as_str().unwrap_or("?"),
            scopes_text(&t["scopes"]),
            t["expires_at"].as_str().unwrap_or("?"),
            if t["expired"] == true {
                " (expired)"
            } else {
                ""
            },
            t["description"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

/// `cairn token revoke`.
pub async fn token_revoke(id: &str) -> Outcome {
    Api::logged_in()?
        .expect(
            reqwest::Method::DELETE,
            &format!("/v1/tokens/{id}"),
            None,
            204,
            "revoke",
        )
        .await?;
    eprintln!("token {id} revoked");
    Ok(())
}

/// What `cairn push` sends.
pub struct Push {
    /// The files.
    pub files: Vec<PathBuf>,
    /// The repository path (`release/2.11/ubuntu/jammy`, or an anchor).
    pub repo: String,
    /// RWS `product`.
    pub product: Option<String>,
    /// Files above this size go through a presigned upload.
    pub presign_above: u64,
    /// Wait until the signed index lists the files, at most this long.
    pub wait: Option<Duration>,
}

/// `(repository, change sequence)` a publication must reach.
type Sync = (String, u64);

/// `cairn push`: each file, one request each (multipart, or presigned above the
/// limit); then, with `--wait`, until every repository's signed index lists them.
pub async fn push(p: Push) -> Outcome {
    push_with(&Api::logged_in()?, p).await
}

/// `push` with the credential of `api` (a build job's token, say).
pub(crate) async fn push_with(api: &Api, p: Push) -> Outcome {
    let repo = p.repo.trim_matches('/').to_string();
    let terminal = std::io::stderr().is_terminal();
    let mut syncs: Vec<Sync> = Vec::new();
    let mut refused: Option<Failure> = None;
    for file in &p.files {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Failure::usage(format!("{}: not a file name", file.display())))?
            .to_string();
        let size = std::fs::metadata(file)
            .map_err(|e| Failure::usage(format!("{}: {e}", file.display())))?
            .len();
        let result = if size > p.presign_above {
            push_presigned(
                api,
                &repo,
                &name,
                file,
                size,
                p.product.as_deref(),
                terminal,
            )
            .await
        } else {
            push_form(api, &repo, &name, file, p.product.as_deref()).await
        };
        match result {
            Ok(mut s) => syncs.append(&mut s),
            // A refused file does not stop the others; the exit code says it.
            Err(f) if f.code == 1 => {
                eprintln!("{name}: {}", f.message);
                refused.get_or_insert(f);
            }
            Err(f) => return Err(f),
        }
    }
    if let Some(limit) = p.wait {
        wait_published(api, &syncs, limit, terminal).await?;
    }
    match refused {
        Some(f) => Err(Failure {
            code: 1,
            message: format!("some files were refused; first: {}", f.message),
        }),
        None => Ok(()),
    }
}

fn syncs_of(answer: &Value) -> Vec<Sync> {
    answer["syncs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| Some((s["repository"].as_str()?.to_string(), s["seq"].as_u64()?)))
        .collect()
}

async fn push_form(
    api: &Api,
    repo: &str,
    name: &str,
    file: &Path,
    product: Option<&str>,
) -> Outcome<Vec<Sync>> {
    let bytes =
        std::fs::read(file).map_err(|e| Failure::usage(format!("{}: {e}", file.display())))?;
    let boundary = format!("cairn-{}", std::process::id());
    let mut body = Vec::with_capacity(bytes.len() + 512);
    if let Some(product) = product {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"product\"\r\n\r\n{product}\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(&bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let (status, answer) = api
        .send(
            api.http
                .put(format!("{}/{repo}", api.base))
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(body),
        )
        .await?;
    if status != 201 {
        return Err(Failure::answer(status, &answer, &format!("upload {name}")));
    }
    let sha256 = answer["packages"][0]["sha256"].as_str().unwrap_or("");
    eprintln!("{name}: stored in {repo} {sha256}");
    Ok(syncs_of(&answer))
}

async fn push_presigned(
    api: &Api,
    repo: &str,
    name: &str,
    file: &Path,
    size: u64,
    product: Option<&str>,
    terminal: bool,
) -> Outcome<Vec<Sync>> {
    let mut request = json!({"repository": repo, "filename": name});
    if let Some(product) = product {
        request["product"] = json!(product);
    }
    let ticket = api
        .expect(
            reqwest::Method::POST,
            "/v1/uploads",
            Some(&request),
            201,
            &format!("upload {name}"),
        )
        .await?;
    let url = ticket["upload_url"]
        .as_str()
        .ok_or_else(|| Failure::network("the ticket has no upload_url"))?;
    let id = ticket["id"].as_str().unwrap_or_default().to_string();
    let handle = tokio::fs::File::open(file)
        .await
        .map_err(|e| Failure::usage(format!("{}: {e}", file.display())))?;
    let started = Instant::now();
    let mut sent = 0u64;
    let label = name.to_string();
    let stream =
        tokio_util::io::ReaderStream::with_capacity(handle, 1 << 20).inspect(move |chunk| {
            if let Ok(chunk) = chunk {
                sent += chunk.len() as u64;
                if terminal {
                    eprint!(
                        "\r{label}: {:.1} / {:.1} MiB",
                        sent as f64 / 1048576.0,
                        size as f64 / 1048576.0
                    );
                }
            }
        });
    let mut put = api
        .http
        .put(url)
        .header("content-length", size)
        .body(reqwest::Body::wrap_stream(stream));
    for (k, v) in ticket["headers"].as_object().into_iter().flatten() {
        if let Some(v) = v.as_str() {
            put = put.header(k.as_str(), v);
        }
    }
    let response = put
        .send()
        .await
        .map_err(|e| Failure::network(format!("upload {name} to the bucket: {e}")))?;
    if terminal {
        eprintln!();
    }
    if !response.status().is_success() {
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        return Err(Failure::network(format!(
            "upload {name} to the bucket: {status} {text}"
        )));
    }
    eprintln!(
        "{name}: {:.1} MiB sent in {:.1} s; ingesting",
        size as f64 / 1048576.0,
        started.elapsed().as_secs_f64()
    );
    // The ticket says when the package is stored (or why not).
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (status, state) = api.get(&format!("/v1/uploads/{id}")).await?;
        match state["status"].as_str() {
            Some("stored" | "unchanged") => break,
            Some("failed") => {
                return Err(Failure {
                    code: 1,
                    message: format!(
                        "upload {name}: {}",
                        state["message"].as_str().unwrap_or("refused")
                    ),
                });
            }
            _ if status != 200 => {
                return Err(Failure::answer(status, &state, &format!("upload {name}")));
            }
            _ if Instant::now() > deadline => {
                return Err(Failure::network(format!(
                    "upload {name}: not ingested within 300 s"
                )));
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    eprintln!("{name}: stored in {repo}");
    // The package's change is recorded by now: each repository's publication must
    // reach its current change sequence.
    let (status, listing) = api.get(&format!("/{repo}")).await?;
    match status {
        200 => Ok(vec![(
            repo.to_string(),
            listing["sync"]["change_seq"].as_u64().unwrap_or(0),
        )]),
        // An anchor has no listing of its own: its repositories are not known here.
        404 => {
            eprintln!("{name}: {repo} is an anchor; --wait does not follow its repositories");
            Ok(Vec::new())
        }
        _ => Err(Failure::answer(status, &listing, &format!("read {repo}"))),
    }
}

async fn wait_published(api: &Api, syncs: &[Sync], limit: Duration, terminal: bool) -> Outcome {
    let deadline = Instant::now() + limit;
    let mut pending: Vec<Sync> = syncs.to_vec();
    pending.sort();
    pending.dedup_by(|b, a| {
        // Keep the highest sequence per repository.
        if a.0 == b.0 {
            a.1 = a.1.max(b.1);
            true
        } else {
            false
        }
    });
    while !pending.is_empty() {
        let mut left = Vec::new();
        for (repo, seq) in pending {
            let (status, listing) = api.get(&format!("/{repo}")).await?;
            if status != 200 {
                return Err(Failure::answer(status, &listing, &format!("read {repo}")));
            }
            if listing["sync"]["published_seq"].as_u64().unwrap_or(0) >= seq {
                eprintln!(
                    "{repo}: published (publication {})",
                    listing["sync"]["publish_count"]
                );
            } else {
                left.push((repo, seq));
            }
        }
        pending = left;
        if pending.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            return Err(Failure {
                code: 5,
                message: format!(
                    "not published within {} s: {}",
                    limit.as_secs(),
                    pending
                        .iter()
                        .map(|(r, _)| r.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        if terminal {
            eprint!(".");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}
