//! `metadata-sync`: rebuilds and signs a suite's APT metadata from the catalog.
//! Triggered by the FIFO sync queue; one message group per suite.

mod sync;

use cairn_aws::{Clients, DynamoCatalog, S3Store, init_tracing, load_signer};
use cairn_core::Config;
use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let config = Config::from_env()?;
    let signer = load_signer()?;
    tracing::info!(keys = ?signer.fingerprints(), "signing keys loaded");
    let clients = Clients::load().await;
    let worker = sync::Worker {
        catalog: DynamoCatalog::new(clients.dynamodb.clone(), &config.table),
        store: S3Store::new(
            clients.s3.clone(),
            &config.repo_bucket,
            &config.staging_bucket,
        ),
        signer,
        config,
        cache: Default::default(),
    };
    let worker = &worker;
    run(service_fn(move |event| async move {
        worker.handle(event).await
    }))
    .await
}
