//! The one mapping from domain errors to HTTP responses: a JSON problem body,
//! and no internals in a 5xx.

use cairn_core::StoreError;
use cairn_core::auth::AuthError;
use cairn_core::ingest::IngestError;
use cairn_core::repo::RepoError;
use lambda_http::{Body, Response};
use serde_json::json;

/// An error an API call answers with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400.
    #[error("{0}")]
    BadRequest(String),
    /// 401.
    #[error("{0}")]
    Unauthorized(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 405.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409.
    #[error("{0}")]
    Conflict(String),
    /// 413.
    #[error("{0}")]
    TooLarge(String),
    /// 500; the detail is logged, not returned.
    #[error("internal error")]
    Internal(String),
    /// Another error, answered with extra members in its problem body (what a
    /// request did before it failed).
    #[error("{0}")]
    WithDetails(Box<ApiError>, serde_json::Map<String, serde_json::Value>),
}

impl ApiError {
    fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized(_) => 401,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed => 405,
            ApiError::Conflict(_) => 409,
            ApiError::TooLarge(_) => 413,
            ApiError::Internal(_) => 500,
            ApiError::WithDetails(inner, _) => inner.status(),
        }
    }

    /// The response for this error.
    pub fn into_response(self) -> Response<Body> {
        let status = self.status();
        let cause = match &self {
            ApiError::WithDetails(inner, _) => inner.as_ref(),
            other => other,
        };
        if let ApiError::Internal(detail) = cause {
            tracing::error!(%detail, "request failed");
        } else {
            tracing::info!(status, error = %self, "request refused");
        }
        let mut builder = Response::builder()
            .status(status)
            .header("content-type", "application/problem+json");
        if status == 401 {
            builder = builder.header("www-authenticate", "Basic realm=\"Cairn\"");
        }
        let mut body = json!({"status": status, "error": self.to_string()});
        if let (ApiError::WithDetails(_, details), Some(members)) = (&self, body.as_object_mut()) {
            for (k, v) in details {
                members.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        builder
            .body(Body::from(body.to_string()))
            .expect("static headers are valid")
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Store(e) => e.into(),
            other => ApiError::Unauthorized(other.to_string()),
        }
    }
}

impl From<RepoError> for ApiError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::BadSegment(_) => ApiError::BadRequest(e.to_string()),
            RepoError::Unsupported { .. } => ApiError::NotFound(e.to_string()),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Repo(e) => e.into(),
            IngestError::Name(_) | IngestError::InvalidPackage { .. } => {
                ApiError::BadRequest(e.to_string())
            }
            IngestError::Conflict { .. }
            | IngestError::BeingDeleted { .. }
            | IngestError::NotReady { .. } => ApiError::Conflict(e.to_string()),
            IngestError::NotFound { .. } => ApiError::NotFound(e.to_string()),
            IngestError::Store(e) => e.into(),
        }
    }
}
