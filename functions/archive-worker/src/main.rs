//! `archive-worker`: runs queued archive and clone operations (docs/archives.md).
//! Triggered by the archive FIFO queue, one message group per repository, so one
//! repository is written by one worker at a time.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use cairn_archive::{ArchiveConfig, Archiver, Operations};
use cairn_aws::{
    Clients, DynamoArchives, OperationMessage, S3Store, SqsOperationQueues, init_tracing,
};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use std::sync::Arc;

struct Worker {
    archiver: Archiver,
    operations: Operations,
}

impl Worker {
    /// Runs each operation; a storage failure returns its message for a retry.
    #[tracing::instrument(skip_all)]
    async fn handle(&self, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
        let mut failures = Vec::new();
        for message in event.payload.records {
            let message_id = message.message_id.clone().unwrap_or_default();
            let parsed = message
                .body
                .as_deref()
                .map(serde_json::from_str::<OperationMessage>);
            let Some(Ok(OperationMessage { id })) = parsed else {
                tracing::error!(message_id, body = ?message.body, "unreadable operation message dropped");
                continue;
            };
            if let Err(e) = self.operations.run(&id, &self.archiver).await {
                tracing::error!(id, error = %e, "operation failed; will retry");
                let mut f = BatchItemFailure::default();
                f.item_identifier = message_id;
                failures.push(f);
            }
        }
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = failures;
        Ok(response)
    }
}

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
    let worker = Worker {
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
