//! `authorizer`: the API Gateway REQUEST authorizer of the routes that always take
//! credentials (docs/access.md, "Where the check runs"). It authenticates the
//! `Authorization` header as the functions do and answers with a policy allowing
//! the stage and the principal in the context; API Gateway caches the answer per
//! header value (`AuthorizerCacheSeconds`). Wrong credentials: `Unauthorized`, which
//! API Gateway turns into a 401. The functions still check the principal's scopes.

use cairn_aws::{Clients, DynamoCatalog, init_tracing};
use cairn_core::auth::{AuthError, Authenticator};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

/// The error message API Gateway answers 401 for.
const UNAUTHORIZED: &str = "Unauthorized";

/// The `Authorization` header of a REQUEST authorizer event (header names in any
/// case; API Gateway passes them as the client sent them).
fn authorization(event: &Value) -> Option<&str> {
    event
        .get("headers")?
        .as_object()?
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, value)| value.as_str())
}

async fn handle(catalog: &DynamoCatalog, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let header = authorization(&event.payload);
    let principal = match Authenticator::new(catalog).authenticate(header, now).await {
        Ok(principal) => principal,
        Err(AuthError::Store(e)) => {
            tracing::error!(error = %e, "the accounts could not be read");
            return Err("the accounts could not be read".into());
        }
        Err(e) => {
            tracing::info!(reason = %e, "credentials refused");
            return Err(UNAUTHORIZED.into());
        }
    };
    let arn = event
        .payload
        .get("methodArn")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let answer = cairn_core::authorizer::allow(&principal, arn)
        .ok_or_else(|| format!("methodArn {arn:?} names no stage"))?;
    tracing::info!(principal = %principal.name, token = ?principal.token, "authorized");
    Ok(answer)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing(env!("CARGO_PKG_NAME"));
    let clients = Clients::load().await;
    let table = std::env::var("CAIRN_TABLE").map_err(|_| "CAIRN_TABLE is not set")?;
    let catalog = DynamoCatalog::new(clients.dynamodb.clone(), table);
    let catalog = &catalog;
    run(service_fn(move |event| handle(catalog, event))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_found_in_any_case() {
        let event = serde_json::json!({"headers": {"authorization": "Bearer x"}});
        assert_eq!(authorization(&event), Some("Bearer x"));
        let event = serde_json::json!({"headers": {"Authorization": "Basic y"}});
        assert_eq!(authorization(&event), Some("Basic y"));
        assert_eq!(authorization(&serde_json::json!({"headers": null})), None);
    }
}
