//! Request bodies, read with a limit and refused with a message that says what the
//! endpoint expected.

use crate::ApiError;
use axum::body::Body;
use axum::extract::{FromRequest, Request};
use bytes::Bytes;
use serde::de::DeserializeOwned;

/// Largest JSON request body (the API's JSON documents are small).
pub const MAX_JSON_BODY: usize = 64 * 1024;

/// Reads a whole body of at most `limit` bytes; a larger one is a 413 that says how
/// large a body may be and what to do instead (`hint`).
pub async fn read_body(body: Body, limit: usize, hint: &str) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        let mut too_large = false;
        while let Some(s) = source {
            too_large |= s.is::<http_body_util::LengthLimitError>();
            source = s.source();
        }
        if too_large {
            ApiError::too_large(format!(
                "the request body is larger than the {limit} bytes this endpoint accepts{hint}"
            ))
        } else {
            ApiError::bad_request(format!("could not read the request body: {e}"))
        }
    })
}

/// A JSON request body of at most [`MAX_JSON_BODY`] bytes, parsed as `T`; also
/// keeps the document as sent (`raw`).
#[derive(Debug)]
pub struct JsonBody<T> {
    /// The parsed body.
    pub value: T,
    /// The body as a JSON document.
    pub raw: serde_json::Value,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req.into_body(), MAX_JSON_BODY, "").await?;
        let raw: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_request(format!(
                "the request body is not JSON (send it with content-type: application/json): {e}"
            ))
        })?;
        let value = serde_json::from_value(raw.clone())
            .map_err(|e| ApiError::bad_request(format!("invalid request: {e}")))?;
        Ok(JsonBody { value, raw })
    }
}
