//! Path parameters and JSON answers in the shape every Cairn API uses.

use crate::ApiError;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

/// Path parameters; a path that does not decode is a 400 problem, not axum's text.
#[derive(Debug)]
pub struct PathParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| PathParams(t))
            .map_err(|e| ApiError::bad_request(format!("bad path: {}", e.body_text())))
    }
}

/// The API's public base URL, stage included (`https://<id>.execute-api.<region>
/// .amazonaws.com/v1`), for links in answers: `CAIRN_API_URL` when the deployment
/// names one (a custom domain), else the API Gateway request context (path-style
/// under `CAIRN_EXECUTE_API_ENDPOINT` on LocalStack). `None` outside API Gateway.
#[derive(Debug, Clone)]
pub struct ApiBase(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ApiBase {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        if let Some(url) = env("CAIRN_API_URL") {
            return Ok(ApiBase(Some(url.trim_end_matches('/').to_string())));
        }
        let Some(lambda_http::request::RequestContext::ApiGatewayV1(ctx)) =
            parts
                .extensions
                .get::<lambda_http::request::RequestContext>()
        else {
            return Ok(ApiBase(None));
        };
        let base = match (env("CAIRN_EXECUTE_API_ENDPOINT"), &ctx.apiid, &ctx.stage) {
            (Some(endpoint), Some(api), Some(stage)) => {
                Some(format!("{}/{api}/{stage}", endpoint.trim_end_matches('/')))
            }
            (None, _, Some(stage)) => ctx
                .domain_name
                .as_ref()
                .map(|domain| format!("https://{domain}/{stage}")),
            _ => None,
        };
        Ok(ApiBase(base))
    }
}

/// A JSON response with `status`.
pub fn json(status: u16, body: &impl serde::Serialize) -> Response {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "null".into());
    let mut response =
        (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), text).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
