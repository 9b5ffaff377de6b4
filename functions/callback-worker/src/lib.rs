//! `callback-worker`: delivers the results of asynchronous operations to their
//! callback URLs (docs/archives.md), signed, with retries and a dead-letter queue.
//!
//! One attempt per message receive. A retryable failure leaves the message on the
//! queue with its visibility timeout set to the backoff delay; after the last
//! attempt (the queue's maxReceiveCount) SQS moves it to the dead-letter queue.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use cairn_archive::model::{AttemptRecord, OperationStore, RetryLater};
use cairn_aws::OperationMessage;
use cairn_aws::sqs::{Parsed, batch_response, parse_batch};
use cairn_callback::{Backoff, Deliverer};
use lambda_runtime::{Error, LambdaEvent};
use serde_json::json;
use std::sync::Arc;

/// Dependencies, built once per cold start.
pub struct Worker {
    /// Operation records and attempts.
    pub store: Arc<dyn OperationStore>,
    /// Signs and sends.
    pub deliverer: Deliverer,
    /// Retry schedule.
    pub backoff: Backoff,
    /// Delays the next receive of a message (the callback queue's visibility).
    pub retry: Arc<dyn RetryLater>,
}

/// What to do with a message after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Acknowledge it: delivered, failed for good, or nothing to deliver.
    Done,
    /// Leave it on the queue for the next attempt.
    Retry,
}

impl Worker {
    /// Delivers each message's callback once.
    #[tracing::instrument(skip_all)]
    pub async fn handle(&self, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
        let mut failures = Vec::new();
        for Parsed {
            id: message_id,
            body: OperationMessage { id },
            message,
        } in parse_batch::<OperationMessage>(event.payload, "callback")
        {
            match self.one(&id, &message).await {
                Ok(Next::Done) => {}
                Ok(Next::Retry) => failures.push(message_id),
                Err(e) => {
                    tracing::error!(message_id, error = %e, "callback bookkeeping failed; will retry");
                    failures.push(message_id);
                }
            }
        }
        Ok(batch_response(failures))
    }

    /// One attempt for operation `id`'s callback, from `message`.
    pub async fn one(&self, id: &str, message: &SqsMessage) -> Result<Next, Error> {
        // SQS always sends this attribute (the event source mapping asks for it);
        // without it the attempt count, and so the retry limit, would be wrong.
        let receive_count: u32 = match message
            .attributes
            .get("ApproximateReceiveCount")
            .map(|v| v.parse::<u32>())
        {
            Some(Ok(n)) => n,
            other => {
                return Err(format!(
                    "callback message: ApproximateReceiveCount missing or unreadable: {other:?}"
                )
                .into());
            }
        };
        let Some(op) = self.store.get(id).await? else {
            tracing::warn!(id, "callback for an unknown operation dropped");
            return Ok(Next::Done);
        };
        let Some(callback) = op.callback.clone() else {
            return Ok(Next::Done);
        };
        if op.delivery.as_deref() != Some("pending") || !op.status.is_final() {
            tracing::info!(id, delivery = ?op.delivery, "nothing to deliver");
            return Ok(Next::Done);
        }
        let status = op.http_status.unwrap_or(500);
        let body = op.result.clone().unwrap_or_else(|| json!({}));
        let attempt = self.deliverer.deliver(&callback, &body, id, status).await;
        self.store
            .record_attempt(
                id,
                &AttemptRecord {
                    attempt: receive_count,
                    at: cairn_archive::service::now(),
                    http_status: attempt.http_status,
                    error: attempt.error.clone(),
                    duration_ms: attempt.duration_ms,
                },
            )
            .await?;
        tracing::info!(id, attempt = receive_count, http_status = ?attempt.http_status, error = ?attempt.error, "callback attempt");
        cairn_core::metrics::Metrics::new()
            .count("CallbackAttempts", 1)
            .count("CallbackFailures", u64::from(!attempt.is_success()))
            .property("operation", id)
            .emit();
        if attempt.is_success() {
            self.store.set_delivery(id, "delivered").await?;
            return Ok(Next::Done);
        }
        if !attempt.should_retry() {
            self.store.set_delivery(id, "failed").await?;
            return Ok(Next::Done);
        }
        match self.backoff.delay_with_random_jitter(receive_count) {
            Some(delay) => {
                if let Some(handle) = &message.receipt_handle {
                    self.retry.retry_after(handle, delay).await?;
                }
            }
            None => {
                // The last attempt: the queue moves the message to the DLQ.
                self.store.set_delivery(id, "failed").await?;
            }
        }
        Ok(Next::Retry)
    }
}
