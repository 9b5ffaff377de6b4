//! Authentication as an extractor: a handler that takes a [`Caller`] runs only for
//! an authenticated request; any other answers 401 before the handler starts.

use crate::ApiError;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use cairn_core::auth::{Accounts, AuthError, Authenticator, Principal};
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
        // On AWS, the API Gateway authorizer checked the header already (docs/access.md,
        // "Where the check runs"): its principal, refused if it expired since. A token's
        // record is read again (one GetItem, no hash), so a token revoked within the
        // answer's cache time (a job's token once its job ended) stops at once.
        if let Some(carried) = authorizer_principal(parts) {
            let principal = cairn_core::authorizer::decode(carried, crate::unix_now())?;
            if let Some(id) = &principal.token
                && state.accounts().get_token(id).await?.is_none()
            {
                return Err(AuthError::InvalidToken.into());
            }
            return Ok(Caller(principal));
        }
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

/// The principal the API Gateway authorizer put in the request context, if any (only
/// API Gateway writes the request context; LocalStack leaves this empty).
fn authorizer_principal(parts: &Parts) -> Option<&str> {
    let Some(lambda_http::request::RequestContext::ApiGatewayV1(ctx)) =
        parts
            .extensions
            .get::<lambda_http::request::RequestContext>()
    else {
        return None;
    };
    ctx.authorizer
        .fields
        .get(cairn_core::authorizer::CONTEXT_KEY)?
        .as_str()
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

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::access::Role;
    use cairn_core::memory::MemoryCatalog;
    use cairn_core::tokens::TokenStore;
    use lambda_http::aws_lambda_events::apigw::ApiGatewayProxyRequestContext;
    use lambda_http::request::RequestContext;

    struct State(MemoryCatalog);

    impl HasUsers for State {
        fn accounts(&self) -> &dyn Accounts {
            &self.0
        }
    }

    fn parts(header: Option<&str>, carried: Option<String>) -> Parts {
        let mut request = axum::http::Request::builder();
        if let Some(h) = header {
            request = request.header(AUTHORIZATION, h);
        }
        if let Some(text) = carried {
            let mut ctx = ApiGatewayProxyRequestContext::default();
            ctx.authorizer.fields.insert(
                cairn_core::authorizer::CONTEXT_KEY.into(),
                serde_json::Value::String(text),
            );
            request = request.extension(RequestContext::ApiGatewayV1(ctx));
        }
        request
            .body(())
            .map(|r| r.into_parts().0)
            .unwrap_or_else(|_| unreachable!())
    }

    #[tokio::test]
    async fn the_authorizers_principal_is_taken_and_checked_for_expiry_and_revocation() {
        // No account in the store: only the context can make this caller.
        let state = State(MemoryCatalog::default());
        let alice = Principal::with_role("alice", Role::Uploader);
        let carried = cairn_core::authorizer::encode(&alice);
        let Caller(found) = Caller::from_request_parts(
            &mut parts(Some("Basic YWxpY2U6eA=="), Some(carried)),
            &state,
        )
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(found, alice);
        // A cached answer for a token that expired since: 401.
        let expired = Principal {
            token: Some("t".into()),
            expires_at: Some(1),
            ..alice.clone()
        };
        let refused = Caller::from_request_parts(
            &mut parts(
                Some("Bearer x"),
                Some(cairn_core::authorizer::encode(&expired)),
            ),
            &state,
        )
        .await;
        assert!(refused.is_err());
        // A cached answer for a token that is still there: taken; revoked since: 401.
        let (record, text) =
            cairn_core::tokens::mint("alice", "ci".into(), alice.scopes.clone(), 0, i64::MAX);
        state
            .0
            .put_token(&record)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        let by_token = Principal {
            token: Some(record.id.clone()),
            expires_at: Some(i64::MAX),
            ..alice.clone()
        };
        let cached = || {
            parts(
                Some(&format!("Bearer {text}")),
                Some(cairn_core::authorizer::encode(&by_token)),
            )
        };
        let Caller(found) = Caller::from_request_parts(&mut cached(), &state)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(found, by_token);
        assert!(
            state
                .0
                .delete_token("alice", &record.id)
                .await
                .unwrap_or_else(|e| panic!("{e:?}"))
        );
        let refused = Caller::from_request_parts(&mut cached(), &state).await;
        assert!(
            matches!(refused, Err(ref e) if e.status() == 401),
            "{refused:?}"
        );
        // Without the context, the function checks the header itself.
        let refused =
            Caller::from_request_parts(&mut parts(Some("Basic YWxpY2U6eA=="), None), &state).await;
        assert!(refused.is_err());
        let MaybeCaller(anonymous) =
            MaybeCaller::from_request_parts(&mut parts(None, None), &state)
                .await
                .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(anonymous.is_none());
    }
}
