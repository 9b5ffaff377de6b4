//! `repositories-api` Lambda: repositories as resources (see the library's
//! documentation).

use cairn_aws::{Clients, DynamoCatalog, ExternalServices, S3Store, SqsSyncQueue, init_tracing};
use cairn_core::Config;
use repositories_api::{App, router};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing(env!("CARGO_PKG_NAME"));
    let config = Config::from_env()?;
    let clients = Clients::load().await;
    let catalog = Arc::new(
        DynamoCatalog::new(clients.dynamodb.clone(), &config.table)
            .with_event_retention_days(config.event_retention_days)
            .with_dispatch_nudge(clients.sqs.clone(), config.dispatch_queue_url.clone()),
    );
    let external = ExternalServices::from_env(&clients)?;
    let app = App {
        apps: catalog.clone(),
        events: catalog.clone(),
        source: Arc::new(external.source),
        vault: Arc::new(external.vault),
        index_queue: Arc::new(external.queue),
        users: catalog.clone(),
        repositories: catalog.clone(),
        catalog,
        files: Arc::new(S3Store::new(
            clients.s3.clone(),
            &config.repo_bucket,
            &config.staging_bucket,
        )),
        queue: Arc::new(SqsSyncQueue::new(
            clients.sqs.clone(),
            &config.sync_queue_url,
        )),
        config,
    };
    cairn_http::serve(router(Arc::new(app))).await
}
