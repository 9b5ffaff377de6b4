//! Delivery against real sockets: a tiny HTTP server on 127.0.0.1 in a thread,
//! reached through an allow-list, plus the address-policy table.
#![allow(clippy::unwrap_used)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_callback::{
    AddressPolicy, AttemptError, Backoff, Callback, CallbackError, Deliverer, Method,
    SIGNATURE_HEADER, check_url, deliver, verify,
};
use serde_json::{Value, json};

const SECRET: &[u8] = b"test-secret";

#[derive(Debug)]
struct Received {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn read_request(stream: &mut TcpStream) -> Received {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).expect("read request head");
        assert!(n > 0, "client closed before sending a request head");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).expect("utf-8 head");
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().expect("request line").split(' ');
    let method = request_line.next().expect("method").to_owned();
    let target = request_line.next().expect("target").to_owned();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').expect("header line");
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse().expect("content-length"));
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut chunk).expect("read body");
        assert!(n > 0, "client closed mid-body");
        body.extend_from_slice(&chunk[..n]);
    }
    Received {
        method,
        target,
        headers,
        body,
    }
}

/// Serve one scripted raw response per connection, in order; report each request.
fn serve(responses: Vec<String>) -> (SocketAddr, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for response in responses {
            let (mut stream, _) = listener.accept().expect("accept");
            let request = read_request(&mut stream);
            let _ = tx.send(request);
            let _ = stream.write_all(response.as_bytes());
        }
    });
    (addr, rx)
}

fn response(status: &str, extra_headers: &str) -> String {
    format!("HTTP/1.1 {status}\r\n{extra_headers}Content-Length: 2\r\nConnection: close\r\n\r\nok")
}

fn allow_loopback() -> AddressPolicy {
    AddressPolicy::parse_list("127.0.0.1").expect("policy")
}

fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    i64::try_from(secs).expect("fits")
}

fn fast_backoff(max_attempts: u32) -> Backoff {
    Backoff {
        base: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
        max_attempts,
    }
}

fn nobody_connected(listener: &TcpListener) -> bool {
    listener.set_nonblocking(true).expect("nonblocking");
    matches!(listener.accept(), Err(e) if e.kind() == ErrorKind::WouldBlock)
}

#[tokio::test]
async fn delivers_signed_body_with_callback_object() {
    let (addr, requests) = serve(vec![response("200 OK", "")]);
    let callback = Callback::new(&format!("http://{addr}/hooks/build?x=1"), Method::Put).unwrap();
    let body = json!({"build": {"state": "done"}, "artifacts": [1, 2]});

    let attempt = deliver(
        &callback,
        &body,
        "cb-123",
        201,
        SECRET,
        &allow_loopback(),
        Duration::from_secs(5),
    )
    .await;

    assert_eq!(attempt.http_status, Some(200), "{attempt:?}");
    assert!(attempt.is_success() && !attempt.should_retry());
    assert_eq!(attempt.error, None);
    let got = requests.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(got.method, "PUT");
    assert_eq!(got.target, "/hooks/build?x=1");
    assert_eq!(got.header("host"), Some(addr.to_string().as_str()));
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(got.header("x-cairn-callback-id"), Some("cb-123"));
    let received: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(
        received,
        json!({
            "build": {"state": "done"},
            "artifacts": [1, 2],
            "callback": {"status": 201, "id": "cb-123"}
        })
    );
    let signature = got.header(SIGNATURE_HEADER).expect("signature header");
    assert_eq!(verify(SECRET, signature, &got.body, now(), 60), Ok(()));
    assert!(verify(b"wrong", signature, &got.body, now(), 60).is_err());
    // The Standard Webhooks headers, keyed with the same secret.
    assert_eq!(got.header("webhook-id"), Some("cb-123"));
    let timestamp: i64 = got.header("webhook-timestamp").unwrap().parse().unwrap();
    let standard = cairn_callback::standard::WebhookSecret::from_bytes(SECRET.to_vec());
    assert!(standard.verifies(
        got.header("webhook-signature").unwrap(),
        "cb-123",
        timestamp,
        &got.body
    ));
}

#[tokio::test]
async fn default_method_is_post() {
    let (addr, requests) = serve(vec![response("204 No Content", "")]);
    let callback: Callback =
        serde_json::from_value(json!({"url": format!("http://{addr}/")})).unwrap();
    let deliverer = Deliverer::new(SECRET, allow_loopback(), Duration::from_secs(5));
    let attempt = deliverer.deliver(&callback, &json!({}), "id", 200).await;
    assert_eq!(attempt.http_status, Some(204), "{attempt:?}");
    assert_eq!(
        requests
            .recv_timeout(Duration::from_secs(5))
            .unwrap()
            .method,
        "POST"
    );
}

#[tokio::test]
async fn retries_500_then_succeeds() {
    let (addr, requests) = serve(vec![
        response("500 Internal Server Error", ""),
        response("200 OK", ""),
    ]);
    let callback = Callback::new(&format!("http://{addr}/cb"), Method::Post).unwrap();
    let deliverer = Deliverer::new(SECRET, allow_loopback(), Duration::from_secs(5));
    let attempts = deliverer
        .deliver_with_retries(&callback, &json!({"a": 1}), "id-1", 200, &fast_backoff(5))
        .await;
    let statuses: Vec<_> = attempts.iter().map(|a| a.http_status).collect();
    assert_eq!(statuses, vec![Some(500), Some(200)]);
    assert!(attempts[0].should_retry());
    assert!(attempts[1].is_success());
    // Each retry is signed afresh and carries the same body.
    let first = requests.recv_timeout(Duration::from_secs(5)).unwrap();
    let second = requests.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(first.body, second.body);
    for r in [&first, &second] {
        let sig = r.header(SIGNATURE_HEADER).unwrap();
        assert_eq!(verify(SECRET, sig, &r.body, now(), 60), Ok(()));
    }
}

#[tokio::test]
async fn stops_after_max_attempts() {
    let (addr, _requests) = serve(vec![response("503 Service Unavailable", ""); 3]);
    let callback = Callback::new(&format!("http://{addr}/cb"), Method::Post).unwrap();
    let deliverer = Deliverer::new(SECRET, allow_loopback(), Duration::from_secs(5));
    let attempts = deliverer
        .deliver_with_retries(&callback, &json!({}), "id", 200, &fast_backoff(3))
        .await;
    assert_eq!(attempts.len(), 3);
    assert!(attempts.iter().all(|a| a.http_status == Some(503)));
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let (addr, _requests) = serve(vec![response("404 Not Found", ""); 2]);
    let callback = Callback::new(&format!("http://{addr}/cb"), Method::Post).unwrap();
    let deliverer = Deliverer::new(SECRET, allow_loopback(), Duration::from_secs(5));
    let attempts = deliverer
        .deliver_with_retries(&callback, &json!({}), "id", 200, &fast_backoff(5))
        .await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].http_status, Some(404));
}

#[tokio::test]
async fn redirect_is_not_followed() {
    let elsewhere = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = elsewhere.local_addr().unwrap();
    let (addr, requests) = serve(vec![response(
        "302 Found",
        &format!("Location: http://{target}/stolen\r\n"),
    )]);
    let callback = Callback::new(&format!("http://{addr}/cb"), Method::Post).unwrap();
    let deliverer = Deliverer::new(SECRET, allow_loopback(), Duration::from_secs(5));
    let attempts = deliverer
        .deliver_with_retries(&callback, &json!({}), "id", 200, &fast_backoff(3))
        .await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].http_status, Some(302));
    assert!(!attempts[0].is_success() && !attempts[0].should_retry());
    requests.recv_timeout(Duration::from_secs(5)).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        nobody_connected(&elsewhere),
        "the redirect target was contacted"
    );
}

#[tokio::test]
async fn default_policy_refuses_loopback_without_connecting() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let callback = Callback::new(&format!("http://{addr}/"), Method::Post).unwrap();
    let attempt = deliver(
        &callback,
        &json!({}),
        "id",
        200,
        SECRET,
        &AddressPolicy::default(),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(
        attempt.error_kind,
        Some(AttemptError::Refused),
        "{attempt:?}"
    );
    assert!(attempt.error.as_deref().unwrap().contains("loopback"));
    assert!(!attempt.should_retry());
    assert!(nobody_connected(&listener));
}

#[tokio::test]
async fn connection_refused_is_retryable() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let callback = Callback::new(&format!("http://127.0.0.1:{port}/"), Method::Post).unwrap();
    let deliverer = Deliverer::new(SECRET, allow_loopback(), Duration::from_secs(5));
    let attempt = deliverer.deliver(&callback, &json!({}), "id", 200).await;
    assert_eq!(
        attempt.error_kind,
        Some(AttemptError::Network),
        "{attempt:?}"
    );
    assert!(attempt.should_retry());
}

#[tokio::test]
async fn silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Accept and hold the connection open without answering.
    let holder = thread::spawn(move || listener.accept().map(|(s, _)| s));
    let callback = Callback::new(&format!("http://{addr}/"), Method::Post).unwrap();
    let deliverer = Deliverer::new(SECRET, allow_loopback(), Duration::from_millis(300));
    let attempt = deliverer.deliver(&callback, &json!({}), "id", 200).await;
    assert_eq!(
        attempt.error_kind,
        Some(AttemptError::Timeout),
        "{attempt:?}"
    );
    assert!(attempt.should_retry());
    assert!(
        attempt.duration_ms >= 300 && attempt.duration_ms < 3000,
        "{attempt:?}"
    );
    drop(holder.join());
}

#[tokio::test]
async fn address_policy_table() {
    let allow = allow_loopback();
    let allow_localhost = AddressPolicy::parse_list("localhost").unwrap();
    let none = AddressPolicy::default();
    let cases: &[(&str, &AddressPolicy, Result<(), &str>)] = &[
        ("http://127.0.0.1/", &none, Err("loopback")),
        ("http://127.0.0.1:8080/", &allow, Ok(())),
        ("http://127.0.0.2/", &allow, Err("loopback")),
        ("http://[::1]/", &none, Err("loopback")),
        ("http://[::1]/", &allow, Err("loopback")),
        (
            "http://169.254.169.254/latest/meta-data/",
            &none,
            Err("link-local"),
        ),
        ("http://169.254.169.254/", &allow, Err("link-local")),
        ("http://10.1.2.3/", &none, Err("private")),
        ("http://10.1.2.3/", &allow, Err("private")),
        ("http://192.168.0.1/", &none, Err("private")),
        ("http://172.20.0.1/", &none, Err("private")),
        ("http://100.64.1.1/", &none, Err("CGNAT")),
        ("http://[::ffff:127.0.0.1]/", &none, Err("loopback")),
        ("http://[::ffff:127.0.0.1]/", &allow, Ok(())),
        ("http://[fe80::1]/", &none, Err("link-local")),
        ("http://[fd00::1]/", &none, Err("unique-local")),
        ("http://0.0.0.0/", &none, Err("unspecified")),
        ("http://2130706433/", &none, Err("loopback")), // decimal 127.0.0.1
        ("http://0x7f.1/", &none, Err("loopback")),
        ("http://localhost/", &none, Err("loopback")),
        ("http://localhost/", &allow_localhost, Ok(())),
        ("http://8.8.8.8/", &none, Ok(())),
        ("https://[2606:4700:4700::1111]/", &none, Ok(())),
        ("file:///etc/passwd", &none, Err("http or https")),
        ("ftp://ftp.example.com/pub", &none, Err("http or https")),
        ("https://admin:pw@8.8.8.8/", &none, Err("user name")),
    ];
    for (url, policy, want) in cases {
        let checked = match Callback::new(url, Method::Post) {
            Ok(c) => check_url(c.url(), policy).await,
            Err(e) => Err(e),
        };
        match (want, checked) {
            (Ok(()), Ok(addrs)) => assert!(!addrs.is_empty(), "{url}"),
            (Err(needle), Err(e)) => assert!(e.to_string().contains(needle), "{url}: {e}"),
            (want, got) => panic!("{url}: wanted {want:?}, got {got:?}"),
        }
    }
}

#[tokio::test]
async fn allowed_loopback_returns_exactly_the_checked_address() {
    let url = url_of("http://127.0.0.1:8080/x");
    let addrs = check_url(&url, &allow_loopback()).await.unwrap();
    assert_eq!(addrs, vec!["127.0.0.1:8080".parse::<SocketAddr>().unwrap()]);
    let err = check_url(&url, &AddressPolicy::default())
        .await
        .unwrap_err();
    assert!(matches!(err, CallbackError::Refused { .. }), "{err}");
}

fn url_of(s: &str) -> url::Url {
    Callback::new(s, Method::Post).unwrap().url().clone()
}
