//! `ingest-worker`: ingests packages that arrive in the staging bucket through
//! presigned uploads (S3 `ObjectCreated` events), with the same rules as the API.

mod ingest;

use cairn_aws::{Clients, DynamoCatalog, S3Store, SqsSyncQueue, init_tracing};
use cairn_core::Config;
use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing(env!("CARGO_PKG_NAME"));
    let config = Config::from_env()?;
    let clients = Clients::load().await;
    let worker = ingest::Worker {
        catalog: DynamoCatalog::new(clients.dynamodb.clone(), &config.table)
            .with_event_retention_days(config.event_retention_days)
            .with_dispatch_nudge(clients.sqs.clone(), config.dispatch_queue_url.clone()),
        store: S3Store::new(
            clients.s3.clone(),
            &config.repo_bucket,
            &config.staging_bucket,
        ),
        queue: SqsSyncQueue::new(clients.sqs.clone(), &config.sync_queue_url),
        config,
    };
    let worker = &worker;
    run(service_fn(move |event| async move {
        worker.handle(event).await
    }))
    .await
}
