//! `archive-worker`: runs queued archive and clone operations (docs/archives.md).
//! Triggered by the archive FIFO queue, one message group per repository, so one
//! repository is written by one worker at a time.

mod run;

use cairn_archive::ArchiveConfig;
use cairn_aws::{Clients, archive_services, init_tracing};
use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let config = ArchiveConfig::from_env()?;
    let clients = Clients::load().await;
    let (archiver, operations) = archive_services(&clients, &config);
    let worker = run::Worker {
        archiver,
        operations,
    };
    let worker = &worker;
    run(service_fn(move |event| async move {
        worker.handle(event).await
    }))
    .await
}
