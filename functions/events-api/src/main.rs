//! `events-api` Lambda: the event log as JSON and as Server-Sent Events (see the
//! library's documentation).

use cairn_aws::{Clients, DynamoCatalog, init_tracing};
use cairn_core::config::number_or;
use events_api::{App, router};
use std::sync::Arc;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing(env!("CARGO_PKG_NAME"));
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let table = env("CAIRN_TABLE").ok_or("CAIRN_TABLE is not set")?;
    let wait = number_or(&env, "CAIRN_EVENTS_WAIT_SECS", 20)?;
    let poll = number_or(&env, "CAIRN_EVENTS_POLL_MS", 250)?;
    let seed = cairn_core::config::supported_repos(env)?;
    let clients = Clients::load().await;
    let catalog = Arc::new(DynamoCatalog::new(clients.dynamodb.clone(), table));
    let app = App {
        events: catalog.clone(),
        users: catalog.clone(),
        repositories: catalog,
        seed,
        wait: Duration::from_secs(wait),
        poll: Duration::from_millis(poll.max(50)),
    };
    cairn_http::serve(router(Arc::new(app))).await
}
