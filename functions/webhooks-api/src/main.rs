//! `webhooks-api` Lambda: webhook subscriptions (see the library's documentation).

use cairn_aws::sqs::SqsDeliveryQueue;
use cairn_aws::{Clients, DynamoCatalog, init_tracing};
use cairn_callback::AddressPolicy;
use std::sync::Arc;
use webhooks_api::{App, router};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing(env!("CARGO_PKG_NAME"));
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let table = env("CAIRN_TABLE").ok_or("CAIRN_TABLE is not set")?;
    let policy = AddressPolicy::parse_list(&env("CAIRN_OUTBOUND_ALLOW_LIST").unwrap_or_default())
        .map_err(|e| format!("CAIRN_OUTBOUND_ALLOW_LIST: {e}"))?;
    let queue_url = env("CAIRN_DELIVERY_QUEUE_URL").ok_or("CAIRN_DELIVERY_QUEUE_URL is not set")?;
    let seed = cairn_core::config::supported_repos(env)?;
    let clients = Clients::load().await;
    let catalog = Arc::new(
        DynamoCatalog::new(clients.dynamodb.clone(), table)
            .with_dispatch_nudge(clients.sqs.clone(), env("CAIRN_DISPATCH_QUEUE_URL")),
    );
    let app = App {
        hooks: catalog.clone(),
        users: catalog.clone(),
        policy,
        log: catalog.clone(),
        deliveries: catalog.clone(),
        queue: Arc::new(SqsDeliveryQueue::new(clients.sqs.clone(), queue_url)),
        repositories: catalog,
        seed,
    };
    cairn_http::serve(router(Arc::new(app))).await
}
