//! `archive-worker`: runs queued archive and clone operations (docs/archives.md).
//! Triggered by the archive FIFO queue, one message group per repository, so one
//! repository is written by one worker at a time.

mod run;

use cairn_archive::{ArchiveConfig, RepositoryDestinations};
use cairn_aws::{Clients, DynamoCatalog, archive_services, init_tracing};
use lambda_runtime::{Error, run, service_fn};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing(env!("CARGO_PKG_NAME"));
    let config = ArchiveConfig::from_env()?;
    let clients = Clients::load().await;
    let (archiver, operations) = archive_services(&clients, &config);
    let catalog = Arc::new(DynamoCatalog::new(clients.dynamodb.clone(), &config.table));
    let worker = run::Worker {
        destinations: RepositoryDestinations {
            public: archiver,
            repositories: catalog.clone(),
            users: catalog,
            api_url: config.api_url.clone(),
        },
        operations,
    };
    let worker = &worker;
    run(service_fn(move |event| async move {
        worker.handle(event).await
    }))
    .await
}
