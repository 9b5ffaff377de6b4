//! The API Gateway Lambda authorizer's side of authentication (docs/access.md, "Where
//! the check runs"): on AWS, routes that always take credentials are behind a REQUEST
//! authorizer that checks the `Authorization` header once (the same [`Authenticator`]
//! as in the functions) and hands the principal to the function in the request
//! context; API Gateway caches that answer per header value for a short while. The
//! functions still decide what the principal may do (its scopes), and authenticate
//! by themselves whenever the context has no principal (LocalStack, which does not
//! run authorizers, and the routes that also serve anonymous callers).
//!
//! [`Authenticator`]: crate::auth::Authenticator

use crate::access::Scopes;
use crate::auth::{AuthError, Principal};
use crate::labels::Selector;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The request-context key under which the authorizer passes the principal.
pub const CONTEXT_KEY: &str = "cairn_principal";

/// A principal as the context carries it (a JSON string: context values are flat).
#[derive(Debug, Serialize, Deserialize)]
struct Wire {
    name: String,
    scopes: Scopes,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    selectors: Vec<String>,
}

/// The principal as text for the request context.
pub fn encode(principal: &Principal) -> String {
    let wire = Wire {
        name: principal.name.clone(),
        scopes: principal.scopes.clone(),
        token: principal.token.clone(),
        expires_at: principal.expires_at,
        selectors: principal.selectors.iter().map(|s| s.to_string()).collect(),
    };
    // A struct of strings and numbers always serializes.
    serde_json::to_string(&wire).unwrap_or_default()
}

/// The principal an authorizer put in the context, checked again against `now`: an
/// answer API Gateway cached past the token's expiry is refused.
pub fn decode(text: &str, now: i64) -> Result<Principal, AuthError> {
    let wire: Wire = serde_json::from_str(text).map_err(|e| {
        tracing::error!(error = %e, "the authorizer's principal does not decode");
        AuthError::Malformed
    })?;
    if wire.expires_at.is_some_and(|at| at <= now) {
        return Err(AuthError::Expired);
    }
    let selectors = wire
        .selectors
        .iter()
        .map(|s| Selector::parse(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            tracing::error!(error = %e, "the authorizer's selectors do not parse");
            AuthError::Malformed
        })?;
    Ok(Principal {
        name: wire.name,
        scopes: wire.scopes,
        token: wire.token,
        expires_at: wire.expires_at,
        selectors,
    })
}

/// The authorizer's answer for `principal` on the request to `method_arn`
/// (`arn:aws:execute-api:<region>:<account>:<api id>/<stage>/<method>/<path>`): allow
/// every route of the stage, since API Gateway reuses a cached answer for the same
/// header on other routes, and carry the principal. `None` if the ARN has no stage.
pub fn allow(principal: &Principal, method_arn: &str) -> Option<Value> {
    let mut parts = method_arn.splitn(3, '/');
    let (api, stage) = (parts.next()?, parts.next()?);
    if !api.starts_with("arn:") || stage.is_empty() {
        return None;
    }
    Some(json!({
        "principalId": principal.name,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{
                "Action": "execute-api:Invoke",
                "Effect": "Allow",
                "Resource": format!("{api}/{stage}/*"),
            }],
        },
        "context": { CONTEXT_KEY: encode(principal) },
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::access::Role;

    #[test]
    fn principals_travel_through_the_context_unchanged() {
        for role in [Role::Admin, Role::Uploader, Role::Reader] {
            let p = Principal {
                selectors: vec![Selector::parse("team=db,env in (prod,stage),!old").unwrap()],
                ..Principal::with_role("alice", role)
            };
            assert_eq!(decode(&encode(&p), 0).unwrap(), p, "{role:?}");
        }
        let token = Principal {
            name: "ci".into(),
            scopes: Scopes::parse(&["upload:release/2.11/*".into(), "read".into()]).unwrap(),
            token: Some("abc".into()),
            expires_at: Some(100),
            selectors: Vec::new(),
        };
        assert_eq!(decode(&encode(&token), 99).unwrap(), token);
        // A cached answer outlives the token: refused.
        assert!(matches!(
            decode(&encode(&token), 100),
            Err(AuthError::Expired)
        ));
        assert!(matches!(decode("{}", 0), Err(AuthError::Malformed)));
        assert!(matches!(
            decode(r#"{"name":"x","scopes":["fly:*"]}"#, 0),
            Err(AuthError::Malformed)
        ));
    }

    #[test]
    fn the_answer_allows_the_stage_and_carries_the_principal() {
        let p = Principal::with_role("alice", Role::Uploader);
        let arn =
            "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3/v1/PUT/release/2.11/ubuntu/focal";
        let answer = allow(&p, arn).unwrap();
        assert_eq!(answer["principalId"], "alice");
        assert_eq!(
            answer["policyDocument"]["Statement"][0]["Resource"],
            "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3/v1/*"
        );
        let carried = answer["context"][CONTEXT_KEY].as_str().unwrap();
        assert_eq!(decode(carried, 0).unwrap(), p);
        assert!(allow(&p, "not-an-arn").is_none());
        assert!(allow(&p, "arn:aws:execute-api:x:y:z").is_none());
    }
}
