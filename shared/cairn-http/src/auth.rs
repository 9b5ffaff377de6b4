//! Authentication as an extractor: a handler that takes a [`Caller`] runs only for
//! an authenticated request; any other answers 401 before the handler starts.

use crate::ApiError;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use cairn_core::auth::{Authenticator, Principal};
use cairn_core::ports::UserDirectory;
use std::sync::Arc;

/// Application state that knows the upload accounts.
pub trait HasUsers: Send + Sync {
    /// The user directory that checks credentials.
    fn users(&self) -> &dyn UserDirectory;
}

impl<T: HasUsers> HasUsers for Arc<T> {
    fn users(&self) -> &dyn UserDirectory {
        self.as_ref().users()
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl<S: HasUsers> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let principal = Authenticator::new(state.users())
            .authenticate(header)
            .await?;
        Ok(Caller(principal))
    }
}

/// The caller of a request that may be anonymous: `None` without credentials; wrong
/// credentials are still a 401.
#[derive(Debug, Clone)]
pub struct MaybeCaller(pub Option<Principal>);

impl<S: HasUsers> FromRequestParts<S> for MaybeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if !parts.headers.contains_key(AUTHORIZATION) {
            return Ok(MaybeCaller(None));
        }
        let Caller(principal) = Caller::from_request_parts(parts, state).await?;
        Ok(MaybeCaller(Some(principal)))
    }
}
