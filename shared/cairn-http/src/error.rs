//! The one mapping from domain errors to HTTP responses.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cairn_core::StoreError;
use cairn_core::access::Denied;
use cairn_core::auth::AuthError;
use cairn_core::ingest::IngestError;
use cairn_core::problem::Problem;
use cairn_core::repo::RepoError;
use cairn_core::repositories::RepositoryError;
use serde_json::Value;

/// An error an API call answers with: a status, a message for the caller, extension
/// members that say what the request did before it failed, and (for a 5xx) the
/// cause, which is logged and never sent.
#[derive(Debug)]
pub struct ApiError {
    problem: Box<Problem>,
    cause: Option<Box<str>>,
}

impl ApiError {
    /// An error with `status` and `detail`.
    pub fn new(status: u16, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        let cause = (status >= 500).then(|| detail.clone().into_boxed_str());
        Self {
            problem: Box::new(Problem::new(status, detail)),
            cause,
        }
    }

    /// 400.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(400, detail)
    }

    /// 401; the response asks for HTTP Basic credentials.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(401, detail)
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, detail)
    }

    /// 405.
    pub fn method_not_allowed(detail: impl Into<String>) -> Self {
        Self::new(405, detail)
    }

    /// 409.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(409, detail)
    }

    /// 413.
    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::new(413, detail)
    }

    /// 500: `cause` is logged; the caller is told nothing about it.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::new(500, cause.to_string())
    }

    /// Adds an extension member to the problem body (what the request did before it
    /// failed); a standard member is never replaced.
    pub fn with(mut self, key: &str, value: Value) -> Self {
        *self.problem = self.problem.with(key, value);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.problem.status
    }

    /// The problem body.
    pub fn problem(&self) -> &Problem {
        &self.problem
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.problem.status, self.problem.detail)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.problem.status;
        match &self.cause {
            Some(cause) => tracing::error!(status, %cause, "request failed"),
            None => tracing::info!(status, detail = %self.problem.detail, "request refused"),
        }
        let body = serde_json::to_vec(&self.problem).unwrap_or_default();
        let mut response = (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body,
        )
            .into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == 401 {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Cairn\""),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::internal(e)
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Store(e) => e.into(),
            other => ApiError::unauthorized(other.to_string()),
        }
    }
}

impl From<Denied> for ApiError {
    fn from(e: Denied) -> Self {
        ApiError::new(403, e.to_string())
    }
}

impl From<cairn_core::builds::BuildError> for ApiError {
    fn from(e: cairn_core::builds::BuildError) -> Self {
        use cairn_core::builds::BuildError;
        match e {
            BuildError::NotFound(m) => ApiError::not_found(m),
            BuildError::Invalid(m) => ApiError::bad_request(m),
            BuildError::TooLarge(m) => ApiError::too_large(m),
            BuildError::Spec(spec) => {
                let mut error = ApiError::bad_request(spec.to_string())
                    .with("path", serde_json::json!(spec.path));
                if let Some(line) = spec.line {
                    error = error.with("line", serde_json::json!(line));
                }
                error
            }
            BuildError::Denied(d) => d.into(),
            BuildError::Forbidden(m) => ApiError::new(403, m),
            BuildError::Conflict(refusal) => ApiError::conflict(refusal.to_string()),
            BuildError::Store(e) => e.into(),
        }
    }
}

impl From<RepoError> for ApiError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::BadSegment(_) => ApiError::bad_request(e.to_string()),
            RepoError::Unsupported { .. } => ApiError::not_found(e.to_string()),
        }
    }
}

impl From<RepositoryError> for ApiError {
    fn from(e: RepositoryError) -> Self {
        match e {
            RepositoryError::Invalid(m) => ApiError::bad_request(m),
            RepositoryError::NotFound(m) => ApiError::not_found(m),
            RepositoryError::Conflict(m) => ApiError::conflict(m),
            RepositoryError::Forbidden(m) => ApiError::new(403, m),
            RepositoryError::Denied(d) => d.into(),
            RepositoryError::Store(e) => e.into(),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Repo(e) => e.into(),
            IngestError::Name(_) | IngestError::InvalidPackage { .. } | IngestError::Form(_) => {
                ApiError::bad_request(e.to_string())
            }
            IngestError::Conflict { .. }
            | IngestError::BeingDeleted { .. }
            | IngestError::NotReady { .. } => ApiError::conflict(e.to_string()),
            IngestError::NotFound { .. } => ApiError::not_found(e.to_string()),
            IngestError::Store(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_store_failure_is_a_500_that_does_not_say_why() {
        let e: ApiError = StoreError::new("GetItem users", "secret table name").into();
        let response = e.into_response();
        assert_eq!(response.status(), 500);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        let text = String::from_utf8_lossy(&body);
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("\"status\":500"), "{text}");
    }

    #[tokio::test]
    async fn a_401_asks_for_basic_credentials() {
        let response = ApiError::from(AuthError::Missing).into_response();
        assert_eq!(response.status(), 401);
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Basic realm=\"Cairn\""
        );
    }
}
