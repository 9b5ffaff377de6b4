//! Authentication as an extractor: a handler that takes a [`Caller`] runs only for
//! an authenticated request; any other answers 401 before the handler starts.

use crate::ApiError;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use cairn_core::auth::{Accounts, Authenticator, Principal};
use std::sync::Arc;

/// Application state that knows the accounts and their tokens.
pub trait HasUsers: Send + Sync {
    /// Where passwords and tokens are checked.
    fn accounts(&self) -> &dyn Accounts;
}

impl<T: HasUsers> HasUsers for Arc<T> {
    fn accounts(&self) -> &dyn Accounts {
        self.as_ref().accounts()
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
        let principal = Authenticator::new(state.accounts())
            .authenticate(header, crate::unix_now())
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
