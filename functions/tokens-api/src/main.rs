//! `tokens-api` Lambda: access tokens (see the library's documentation).

use cairn_aws::{Clients, DynamoCatalog, init_tracing};
use std::sync::Arc;
use tokens_api::{App, router};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing(env!("CARGO_PKG_NAME"));
    let table = std::env::var("CAIRN_TABLE").map_err(|_| "CAIRN_TABLE is not set")?;
    let clients = Clients::load().await;
    let catalog = Arc::new(DynamoCatalog::new(clients.dynamodb.clone(), table));
    let app = App { users: catalog };
    cairn_http::serve(router(Arc::new(app))).await
}
