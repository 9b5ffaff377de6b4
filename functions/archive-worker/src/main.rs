//! `archive-worker`: runs queued archive and clone operations (docs/archives.md).
//! Triggered by the archive FIFO queue, one message group per repository, so one
//! repository is written by one worker at a time.

mod run;

use cairn_archive::{ArchiveConfig, Archiver, Operations};
use cairn_aws::{Clients, DynamoArchives, S3Store, SqsOperationQueues, init_tracing};
use lambda_runtime::{Error, run, service_fn};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let config = ArchiveConfig::from_env()?;
    let clients = Clients::load().await;
    let archives = Arc::new(DynamoArchives::new(clients.dynamodb.clone(), &config.table));
    let queues = Arc::new(SqsOperationQueues::new(
        clients.sqs.clone(),
        &config.archive_queue_url,
        &config.callback_queue_url,
    ));
    let worker = run::Worker {
        archiver: Archiver {
            catalog: archives.clone(),
            files: Arc::new(S3Store::new(clients.s3.clone(), &config.archive_bucket, "")),
            settings: config.settings.clone(),
        },
        operations: Operations {
            store: archives,
            queue: queues.clone(),
            callbacks: queues,
        },
    };
    let worker = &worker;
    run(service_fn(move |event| async move {
        worker.handle(event).await
    }))
    .await
}
