//! `archive-api`: source archives (docs/archives.md). `POST /v1/archives`,
//! Repour's `POST /clone` and `POST /cancel/{id}`, `GET /v1/operations/{id}`,
//! `GET /v1/archives/{name}` and its tarballs. The work itself is queued to
//! `archive-worker`.

mod routes;

use cairn_archive::{ArchiveConfig, Archiver, Operations};
use cairn_aws::{
    Clients, DynamoArchives, DynamoCatalog, S3Store, SqsOperationQueues, init_tracing,
};
use lambda_http::{Error, run, service_fn};
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
    let app = routes::App {
        users: DynamoCatalog::new(clients.dynamodb.clone(), &config.table),
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
        wait: config.wait,
    };
    let app = &app;
    run(service_fn(move |req| async move {
        Ok::<_, Error>(app.handle(req).await)
    }))
    .await
}
