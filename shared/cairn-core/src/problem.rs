//! The one error body every Cairn API answers with, and the body of a failed
//! operation's callback: an RFC 9457 problem document.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Shown instead of the cause of a 5xx (the cause goes to the operator's logs).
pub const INTERNAL_DETAIL: &str = "internal error; the operator's logs have the details";

/// An RFC 9457 problem: `type`, `title`, `status`, `detail`, plus extension members
/// that say what a request did before it failed (`stored`, `syncs`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the problem type; `about:blank` means "see `status`".
    #[serde(rename = "type")]
    pub kind: String,
    /// The status's reason phrase.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong, for a human.
    pub detail: String,
    /// Extension members.
    #[serde(flatten)]
    #[schema(value_type = Object, additional_properties)]
    pub extensions: Map<String, Value>,
}

impl Problem {
    /// A problem of type `about:blank`. A 5xx never carries `detail` as given: it
    /// gets [`INTERNAL_DETAIL`].
    pub fn new(status: u16, detail: impl Into<String>) -> Self {
        let detail = if status >= 500 {
            INTERNAL_DETAIL.to_string()
        } else {
            detail.into()
        };
        Self {
            kind: "about:blank".into(),
            title: title(status).into(),
            status,
            detail,
            extensions: Map::new(),
        }
    }

    /// Adds an extension member (the standard members are never overwritten).
    pub fn with(mut self, key: &str, value: Value) -> Self {
        if !matches!(key, "type" | "title" | "status" | "detail") {
            self.extensions.insert(key.to_string(), value);
        }
        self
    }

    /// The problem as a JSON value.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// The reason phrase of the statuses Cairn answers with.
pub fn title(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        410 => "Gone",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        s if s >= 500 => "Internal Server Error",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_5xx_hides_its_cause_and_extensions_cannot_replace_standard_members() {
        let p = Problem::new(500, "DynamoDB said: table cairn-secret-name missing")
            .with("status", Value::from(200))
            .with("stored", Value::from(vec!["a.deb"]));
        let json = p.to_json();
        assert_eq!(json["detail"], INTERNAL_DETAIL);
        assert_eq!(json["status"], 500);
        assert_eq!(json["title"], "Internal Server Error");
        assert_eq!(json["type"], "about:blank");
        assert_eq!(json["stored"][0], "a.deb");
    }
}
