//! `metadata-sync`: rebuilds and signs a suite's APT metadata from the catalog.
//! Triggered by the FIFO sync queue; one message group per suite.

mod sync;

use cairn_aws::{Clients, DynamoCatalog, KeySource, Keys, S3Store, init_tracing};
use cairn_core::Config;
use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing(env!("CARGO_PKG_NAME"));
    let config = Config::from_env()?;
    let clients = Clients::load().await;
    let keys = Keys::load(KeySource::from_env()?, clients.clone()).await?;
    tracing::info!(keys = ?keys.fingerprints().await, "signing keys loaded");
    let worker = sync::Worker {
        catalog: DynamoCatalog::new(clients.dynamodb.clone(), &config.table)
            .with_event_retention_days(config.event_retention_days)
            .with_dispatch_nudge(clients.sqs.clone(), config.dispatch_queue_url.clone()),
        store: S3Store::new(
            clients.s3.clone(),
            &config.repo_bucket,
            &config.staging_bucket,
        ),
        index_queue: std::env::var("CAIRN_INDEX_QUEUE_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .map(|url| cairn_aws::SqsIndexQueue::new(clients.sqs.clone(), url)),
        keys,
        config,
        cache: Default::default(),
    };
    let worker = &worker;
    run(service_fn(move |event| async move {
        worker.handle(event).await
    }))
    .await
}
