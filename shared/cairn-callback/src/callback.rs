use serde::{Deserialize, Serialize};
use url::{Host, Url};

use crate::CallbackError;

/// Longest callback URL accepted, in bytes.
pub const MAX_URL_LEN: usize = 2048;
/// Longest host name accepted (the DNS limit).
const MAX_HOST_LEN: usize = 253;

/// HTTP method used for a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// `POST`, the default.
    #[default]
    Post,
    /// `PUT`.
    Put,
}

impl Method {
    /// The method as it goes on the request line.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Put => "PUT",
        }
    }
}

/// Where to send a result later: `{"url": "https://..", "method": "POST"}`.
///
/// Always valid: construction and deserialization both run the URL checks, so a
/// `Callback` in hand has an http(s) URL with a host and no credentials. Whether
/// the host is an acceptable *address* is decided at delivery time by
/// [`crate::check_url`], because DNS answers change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawCallback", into = "RawCallback")]
pub struct Callback {
    url: Url,
    method: Method,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCallback {
    url: String,
    #[serde(default)]
    method: Method,
}

impl TryFrom<RawCallback> for Callback {
    type Error = CallbackError;

    fn try_from(raw: RawCallback) -> Result<Self, Self::Error> {
        Callback::new(&raw.url, raw.method)
    }
}

impl From<Callback> for RawCallback {
    fn from(callback: Callback) -> Self {
        RawCallback {
            url: callback.url.into(),
            method: callback.method,
        }
    }
}

impl Callback {
    /// Validate `url` and build a callback.
    pub fn new(url: &str, method: Method) -> Result<Self, CallbackError> {
        Ok(Callback {
            url: validate_url(url)?,
            method,
        })
    }

    /// The validated URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The HTTP method.
    pub fn method(&self) -> Method {
        self.method
    }
}

/// Syntactic checks only; no DNS.
fn validate_url(raw: &str) -> Result<Url, CallbackError> {
    if raw.len() > MAX_URL_LEN {
        return Err(CallbackError::UrlTooLong {
            len: raw.len(),
            max: MAX_URL_LEN,
        });
    }
    let url = Url::parse(raw)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(CallbackError::UnsupportedScheme(url.scheme().to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(CallbackError::Userinfo);
    }
    match url.host() {
        None => return Err(CallbackError::MissingHost),
        Some(Host::Domain("")) => return Err(CallbackError::MissingHost),
        Some(Host::Domain(d)) if d.len() > MAX_HOST_LEN => {
            return Err(CallbackError::HostTooLong {
                len: d.len(),
                max: MAX_HOST_LEN,
            });
        }
        Some(_) => {}
    }
    if url.port() == Some(0) {
        return Err(CallbackError::ZeroPort);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_and_default_method() {
        let c: Callback =
            serde_json::from_str(r#"{"url": "https://ci.example.com/hook?x=1"}"#).unwrap();
        assert_eq!(c.method(), Method::Post);
        assert_eq!(c.url().as_str(), "https://ci.example.com/hook?x=1");
        let c: Callback =
            serde_json::from_str(r#"{"url": "http://ci.example.com/", "method": "PUT"}"#).unwrap();
        assert_eq!(c.method(), Method::Put);
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            serde_json::json!({"url": "http://ci.example.com/", "method": "PUT"})
        );
    }

    #[test]
    fn json_rejects_bad_method_unknown_field_and_bad_url() {
        let err =
            serde_json::from_str::<Callback>(r#"{"url": "https://a.example", "method": "GET"}"#)
                .unwrap_err();
        assert!(err.to_string().contains("GET"), "{err}");
        assert!(
            serde_json::from_str::<Callback>(r#"{"url": "https://a.example", "extra": 1}"#)
                .is_err()
        );
        let err = serde_json::from_str::<Callback>(r#"{"url": "ftp://a.example/x"}"#).unwrap_err();
        assert!(err.to_string().contains("http or https"), "{err}");
    }

    #[test]
    fn url_table() {
        let long = format!("https://a.example/{}", "x".repeat(MAX_URL_LEN));
        let long_host = format!("https://{}.example/", "a".repeat(260));
        let cases: &[(&str, Result<(), &str>)] = &[
            ("https://ci.example.com/cb", Ok(())),
            ("http://ci.example.com:8080/cb?id=1", Ok(())),
            ("http://127.0.0.1/", Ok(())), // syntactically fine; the address policy refuses it
            ("file:///etc/passwd", Err("scheme")),
            ("ftp://ci.example.com/", Err("scheme")),
            ("gopher://ci.example.com/", Err("scheme")),
            ("https://user:pw@ci.example.com/", Err("user name")),
            ("https://user@ci.example.com/", Err("user name")),
            ("http:///nohost", Ok(())), // url normalises this to host "nohost"
            ("https://", Err("valid URL")),
            ("not a url", Err("valid URL")),
            ("https://ci.example.com:0/", Err("port")),
            (long.as_str(), Err("limit")),
            (long_host.as_str(), Err("limit")),
        ];
        for (url, want) in cases {
            let got = Callback::new(url, Method::Post);
            match (want, got) {
                (Ok(()), Ok(_)) => {}
                (Err(needle), Err(e)) => {
                    assert!(e.to_string().contains(needle), "{url}: {e}")
                }
                (want, got) => panic!("{url}: wanted {want:?}, got {got:?}"),
            }
        }
    }
}
