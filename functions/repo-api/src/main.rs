//! `repo-api` Lambda: the upload API (see the library's documentation).

use cairn_aws::{Clients, DynamoCatalog, S3Store, SqsSyncQueue, init_tracing};
use cairn_core::Config;
use repo_api::{App, router};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing(env!("CARGO_PKG_NAME"));
    let config = Config::from_env()?;
    let clients = Clients::load().await;
    let catalog = DynamoCatalog::new(clients.dynamodb.clone(), &config.table)
        .with_event_retention_days(config.event_retention_days)
        .with_dispatch_nudge(clients.sqs.clone(), config.dispatch_queue_url.clone());
    let store = Arc::new(S3Store::new(
        clients.s3.clone(),
        &config.repo_bucket,
        &config.staging_bucket,
    ));
    let app = App {
        catalog: Arc::new(catalog.clone()),
        users: Arc::new(catalog.clone()),
        repositories: Arc::new(catalog.clone()),
        tickets: Arc::new(catalog),
        store: store.clone(),
        upload_urls: store,
        queue: Arc::new(SqsSyncQueue::new(
            clients.sqs.clone(),
            &config.sync_queue_url,
        )),
        config,
    };
    cairn_http::serve(router(Arc::new(app))).await
}
