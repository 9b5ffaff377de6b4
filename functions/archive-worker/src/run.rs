//! A batch of operation messages -> each operation run once, with partial batch failures.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use cairn_archive::{Operations, RepositoryDestinations};
use cairn_aws::OperationMessage;
use cairn_aws::sqs::{Parsed, batch_response, parse_batch};
use lambda_runtime::{Error, LambdaEvent};

/// Dependencies, built once per cold start.
pub struct Worker {
    /// Archive use cases, per archive name.
    pub destinations: RepositoryDestinations,
    /// Operation records and queues.
    pub operations: Operations,
}

impl Worker {
    /// Runs each operation; a storage failure returns its message for a retry.
    #[tracing::instrument(skip_all)]
    pub async fn handle(&self, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
        let mut failures = Vec::new();
        for Parsed {
            id: message_id,
            body: OperationMessage { id },
            ..
        } in parse_batch::<OperationMessage>(event.payload, "operation")
        {
            if let Err(e) = self.operations.run(&id, &self.destinations).await {
                tracing::error!(id, error = %e, "operation failed; will retry");
                failures.push(message_id);
            }
        }
        Ok(batch_response(failures))
    }
}
