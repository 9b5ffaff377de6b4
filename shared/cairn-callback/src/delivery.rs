use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, USER_AGENT};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use url::{Host, Position, Url};

use crate::signature::{SIGNATURE_HEADER, signature_header};
use crate::{AddressPolicy, Backoff, Callback, check_url};

/// Header carrying the callback id, so a receiver can de-duplicate retries.
const ID_HEADER: &str = "X-Cairn-Callback-Id";
const USER_AGENT_VALUE: &str = concat!("cairn-callback/", env!("CARGO_PKG_VERSION"));

/// Why an attempt got no HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptError {
    /// The URL or its resolved addresses were refused by the address policy.
    Refused,
    /// The result body is not a JSON object, so `callback` cannot be added.
    InvalidBody,
    /// DNS, connect, TLS or HTTP protocol failure.
    Network,
    /// The whole attempt took longer than the timeout.
    Timeout,
}

impl AttemptError {
    /// Whether trying again later could help.
    pub fn is_transient(self) -> bool {
        matches!(self, AttemptError::Network | AttemptError::Timeout)
    }
}

/// The record of one delivery attempt, to be stored with the callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// When the attempt started.
    pub at: OffsetDateTime,
    /// The response status, if a response arrived (redirects are not followed,
    /// so a 3xx is recorded as is).
    pub http_status: Option<u16>,
    /// What went wrong when there is no status.
    pub error: Option<String>,
    /// The kind of `error`, which decides whether to retry.
    pub error_kind: Option<AttemptError>,
    /// Wall time of the attempt, in milliseconds.
    pub duration_ms: u64,
    /// The first KiB of the response body (lossy UTF-8), for delivery logs.
    pub response: Option<String>,
}

impl Attempt {
    /// A 2xx answer.
    pub fn is_success(&self) -> bool {
        matches!(self.http_status, Some(200..=299))
    }

    /// Whether to try again: network errors and timeouts, 408, 429 and 5xx.
    /// Other answers (3xx, 4xx) and refused targets are final.
    pub fn should_retry(&self) -> bool {
        match self.http_status {
            Some(status) => matches!(status, 408 | 429 | 500..=599),
            None => self.error_kind.is_some_and(AttemptError::is_transient),
        }
    }
}

/// Sends one request to a URL the address policy accepts: resolves once, connects
/// only to the checked addresses (no second DNS lookup, so DNS rebinding cannot
/// redirect it), never follows redirects, bounds the whole attempt by a timeout and
/// keeps the first KiB of the answer. Build one per Lambda container and reuse it
/// (it holds the TLS configuration once built).
pub struct Outgoing {
    policy: AddressPolicy,
    timeout: Duration,
    tls: OnceLock<Result<Arc<ClientConfig>, String>>,
}

/// The longest response prefix an [`Attempt`] keeps.
pub const RESPONSE_PREFIX: usize = 1024;

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("policy", &self.policy)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Outgoing {
    /// Requests to targets `policy` accepts, each bounded by `timeout` (resolve,
    /// connect, TLS, request, response head and the first KiB of the body).
    pub fn new(policy: AddressPolicy, timeout: Duration) -> Self {
        Outgoing {
            policy,
            timeout,
            tls: OnceLock::new(),
        }
    }

    /// One attempt: `method` `url` with `headers` (besides Host, Content-Type JSON,
    /// Content-Length, User-Agent and Connection) and `payload`.
    pub async fn send(
        &self,
        url: &Url,
        method: &str,
        headers: &[(&str, String)],
        payload: Bytes,
    ) -> Attempt {
        let at = OffsetDateTime::now_utc();
        let started = Instant::now();
        let outcome =
            match tokio::time::timeout(self.timeout, self.exchange(url, method, headers, payload))
                .await
            {
                Ok(outcome) => outcome,
                Err(_) => Err((
                    AttemptError::Timeout,
                    format!("no response within {} ms", self.timeout.as_millis()),
                )),
            };
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match outcome {
            Ok((http_status, response)) => Attempt {
                at,
                http_status: Some(http_status),
                error: None,
                error_kind: None,
                duration_ms,
                response: Some(response),
            },
            Err((kind, error)) => Attempt {
                at,
                http_status: None,
                error: Some(error),
                error_kind: Some(kind),
                duration_ms,
                response: None,
            },
        }
    }

    /// `GET url` with `headers`, reading the whole body up to `max_bytes`: the
    /// status and the body, or why not (refused, network, timeout, or a body larger
    /// than `max_bytes`, which is not read past the limit). Redirects are not
    /// followed: a 3xx is returned as it is.
    pub async fn get(
        &self,
        url: &Url,
        headers: &[(&str, String)],
        max_bytes: usize,
    ) -> Result<(u16, Bytes), (AttemptError, String)> {
        let exchange = self.request(url, "GET", headers, Bytes::new(), max_bytes);
        let (status, body, complete) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| {
                (
                    AttemptError::Timeout,
                    format!("no complete answer within {} s", self.timeout.as_secs()),
                )
            })??;
        if !complete {
            return Err((
                AttemptError::InvalidBody,
                format!("the answer is larger than {max_bytes} bytes"),
            ));
        }
        Ok((status, Bytes::from(body)))
    }

    async fn exchange(
        &self,
        url: &Url,
        method: &str,
        headers: &[(&str, String)],
        payload: Bytes,
    ) -> Result<(u16, String), Failure> {
        let (status, prefix, _) = self
            .request(url, method, headers, payload, RESPONSE_PREFIX)
            .await?;
        Ok((status, String::from_utf8_lossy(&prefix).into_owned()))
    }

    async fn request(
        &self,
        url: &Url,
        method: &str,
        headers: &[(&str, String)],
        payload: Bytes,
        limit: usize,
    ) -> Result<(u16, Vec<u8>, bool), Failure> {
        let addrs = check_url(url, &self.policy).await.map_err(|e| {
            let kind = match e {
                // DNS failures are usually transient; a refusal is not.
                crate::CallbackError::Resolve { .. } => AttemptError::Network,
                _ => AttemptError::Refused,
            };
            (kind, e.to_string())
        })?;
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(&url[Position::BeforePath..Position::AfterQuery])
            .header(HOST, host_header(url))
            .header(CONTENT_TYPE, "application/json")
            .header(CONTENT_LENGTH, payload.len())
            .header(USER_AGENT, USER_AGENT_VALUE)
            .header(CONNECTION, "close");
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let request = request.body(Full::new(payload)).map_err(|e| {
            (
                AttemptError::InvalidBody,
                format!("cannot build request: {e}"),
            )
        })?;
        let tcp = connect(&addrs).await?;
        if url.scheme() == "https" {
            let config = self.tls_config()?;
            let name = server_name(url)?;
            let tls = TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| (AttemptError::Network, format!("TLS handshake failed: {e}")))?;
            exchange(tls, request, limit).await
        } else {
            exchange(tcp, request, limit).await
        }
    }

    fn tls_config(&self) -> Result<Arc<ClientConfig>, Failure> {
        self.tls
            .get_or_init(build_tls_config)
            .clone()
            .map_err(|e| (AttemptError::Network, e))
    }
}

/// Sends callbacks: the signing secret and an [`Outgoing`]. Build one per Lambda
/// container and reuse it.
pub struct Deliverer {
    secret: Vec<u8>,
    outgoing: Outgoing,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret stays out of logs.
        f.debug_struct("Deliverer")
            .field("outgoing", &self.outgoing)
            .finish_non_exhaustive()
    }
}

type Failure = (AttemptError, String);

impl Deliverer {
    /// A deliverer signing with `secret`, checking targets against `policy`, and
    /// giving each attempt (resolve, connect, TLS, request, response head)
    /// `timeout` in total.
    pub fn new(secret: impl Into<Vec<u8>>, policy: AddressPolicy, timeout: Duration) -> Self {
        Deliverer {
            secret: secret.into(),
            outgoing: Outgoing::new(policy, timeout),
        }
    }

    /// One attempt: add `"callback": {"status": status, "id": id}` to `body`, sign
    /// it, send it to the checked addresses only, and record what happened.
    /// Redirects are not followed.
    pub async fn deliver(
        &self,
        callback: &Callback,
        body: &Value,
        id: &str,
        status: u16,
    ) -> Attempt {
        let host = callback.url().host_str().unwrap_or_default();
        let attempt = match with_callback_object(body, id, status) {
            Ok(payload) => {
                let timestamp = OffsetDateTime::now_utc().unix_timestamp();
                let signature = signature_header(&self.secret, timestamp, &payload);
                // Standard Webhooks headers too, keyed with the same secret, so one
                // library verifies callbacks and webhooks alike (docs/archives.md).
                let standard = crate::standard::WebhookSecret::from_bytes(self.secret.clone())
                    .sign(id, timestamp, &payload);
                let headers = [
                    (SIGNATURE_HEADER, signature),
                    (ID_HEADER, id.to_string()),
                    ("webhook-id", id.to_string()),
                    ("webhook-timestamp", timestamp.to_string()),
                    ("webhook-signature", standard),
                ];
                self.outgoing
                    .send(
                        callback.url(),
                        callback.method().as_str(),
                        &headers,
                        Bytes::from(payload),
                    )
                    .await
            }
            Err((kind, error)) => Attempt {
                at: OffsetDateTime::now_utc(),
                http_status: None,
                error: Some(error),
                error_kind: Some(kind),
                duration_ms: 0,
                response: None,
            },
        };
        let duration_ms = attempt.duration_ms;
        tracing::info!(
            callback_id = id,
            host,
            http_status = attempt.http_status,
            error = attempt.error.as_deref(),
            duration_ms,
            "callback attempt"
        );
        attempt
    }

    /// Attempt delivery until it succeeds, fails for good, or `backoff` runs out,
    /// sleeping between attempts; returns every attempt. For tools and tests: the
    /// Lambda retries through SQS instead, one [`Deliverer::deliver`] per message.
    pub async fn deliver_with_retries(
        &self,
        callback: &Callback,
        body: &Value,
        id: &str,
        status: u16,
        backoff: &Backoff,
    ) -> Vec<Attempt> {
        let mut attempts = Vec::new();
        for number in 1.. {
            let attempt = self.deliver(callback, body, id, status).await;
            let again = !attempt.is_success() && attempt.should_retry();
            attempts.push(attempt);
            match backoff.delay_with_random_jitter(number) {
                Some(delay) if again => tokio::time::sleep(delay).await,
                _ => break,
            }
        }
        attempts
    }
}

/// One attempt with a throw-away [`Deliverer`]. Convenient, but it reloads the TLS
/// roots on every https call: long-lived callers should keep a `Deliverer`.
pub async fn deliver(
    callback: &Callback,
    body: &Value,
    id: &str,
    status: u16,
    secret: &[u8],
    policy: &AddressPolicy,
    timeout: Duration,
) -> Attempt {
    Deliverer::new(secret, policy.clone(), timeout)
        .deliver(callback, body, id, status)
        .await
}

fn with_callback_object(body: &Value, id: &str, status: u16) -> Result<Vec<u8>, Failure> {
    let Value::Object(map) = body else {
        return Err((
            AttemptError::InvalidBody,
            "callback body must be a JSON object".to_owned(),
        ));
    };
    let mut map = map.clone();
    map.insert(
        "callback".to_owned(),
        serde_json::json!({ "status": status, "id": id }),
    );
    serde_json::to_vec(&Value::Object(map)).map_err(|e| {
        (
            AttemptError::InvalidBody,
            format!("cannot serialise body: {e}"),
        )
    })
}

fn host_header(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

fn server_name(url: &Url) -> Result<ServerName<'static>, Failure> {
    match url.host() {
        Some(Host::Domain(name)) => ServerName::try_from(name.to_owned()).map_err(|e| {
            (
                AttemptError::Refused,
                format!("invalid TLS server name: {e}"),
            )
        }),
        Some(Host::Ipv4(ip)) => Ok(ServerName::from(std::net::IpAddr::from(ip))),
        Some(Host::Ipv6(ip)) => Ok(ServerName::from(std::net::IpAddr::from(ip))),
        None => Err((AttemptError::Refused, "callback url has no host".to_owned())),
    }
}

/// Connect to the first checked address that answers; never resolves again.
async fn connect(addrs: &[SocketAddr]) -> Result<TcpStream, Failure> {
    let mut errors = Vec::new();
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => errors.push(format!("{addr}: {e}")),
        }
    }
    Err((
        AttemptError::Network,
        format!("could not connect: {}", errors.join("; ")),
    ))
}

/// Sends `request` and reads at most `limit` bytes of the body: the status, those
/// bytes, and whether that was the whole body.
async fn exchange<S>(
    io: S,
    request: hyper::Request<Full<Bytes>>,
    limit: usize,
) -> Result<(u16, Vec<u8>, bool), Failure>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    use http_body_util::BodyExt;
    let network = |e: hyper::Error| (AttemptError::Network, format!("HTTP error: {e}"));
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(network)?;
    // The connection future does the I/O; aborting it afterwards closes the socket
    // without reading more of the body than the prefix kept.
    let driver = tokio::spawn(connection);
    let result = async {
        let response = sender.send_request(request).await.map_err(network)?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut prefix = Vec::new();
        let mut complete = false;
        while prefix.len() <= limit {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        prefix.extend_from_slice(data);
                    }
                }
                // A body cut short still leaves its status and what arrived.
                Some(Err(_)) => break,
                None => {
                    complete = true;
                    break;
                }
            }
        }
        complete &= prefix.len() <= limit;
        prefix.truncate(limit);
        Ok((status, prefix, complete))
    }
    .await;
    driver.abort();
    result
}

fn build_tls_config() -> Result<Arc<ClientConfig>, String> {
    let native = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        return Err(format!(
            "no usable TLS root certificates found ({} errors loading them)",
            native.errors.len()
        ));
    }
    // An explicit provider: the process default panics if a binary ends up with
    // both aws-lc-rs and ring enabled.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(http_status: Option<u16>, error_kind: Option<AttemptError>) -> Attempt {
        Attempt {
            at: OffsetDateTime::UNIX_EPOCH,
            http_status,
            error: error_kind.map(|k| format!("{k:?}")),
            error_kind,
            duration_ms: 0,
            response: None,
        }
    }

    #[test]
    fn success_and_retry_table() {
        let cases = [
            (Some(200), true, false),
            (Some(204), true, false),
            (Some(302), false, false),
            (Some(400), false, false),
            (Some(404), false, false),
            (Some(408), false, true),
            (Some(429), false, true),
            (Some(500), false, true),
            (Some(503), false, true),
        ];
        for (status, success, retry) in cases {
            let a = attempt(status, None);
            assert_eq!(a.is_success(), success, "{status:?}");
            assert_eq!(a.should_retry(), retry, "{status:?}");
        }
        for (kind, retry) in [
            (AttemptError::Network, true),
            (AttemptError::Timeout, true),
            (AttemptError::Refused, false),
            (AttemptError::InvalidBody, false),
        ] {
            let a = attempt(None, Some(kind));
            assert!(!a.is_success());
            assert_eq!(a.should_retry(), retry, "{kind:?}");
        }
    }

    #[test]
    fn callback_object_is_added_and_overrides() {
        let body = serde_json::json!({"result": "ok", "callback": "client value"});
        let bytes = with_callback_object(&body, "abc", 201).unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"result": "ok", "callback": {"status": 201, "id": "abc"}})
        );
        assert_eq!(
            with_callback_object(&serde_json::json!([1]), "abc", 200)
                .unwrap_err()
                .0,
            AttemptError::InvalidBody
        );
    }

    #[test]
    fn host_header_keeps_explicit_ports_only() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(host_header(&u("http://a.example/")), "a.example");
        assert_eq!(host_header(&u("http://a.example:80/")), "a.example");
        assert_eq!(host_header(&u("https://a.example:8443/")), "a.example:8443");
        assert_eq!(host_header(&u("http://[::1]:8080/")), "[::1]:8080");
    }

    #[test]
    fn tls_config_builds_with_system_roots() {
        // Needs a CA bundle on the machine, as the Lambda image has.
        assert!(build_tls_config().is_ok());
    }
}
