//! The metadata-sync queue: an SQS FIFO queue, one message group per suite, so a
//! suite is never rebuilt by two workers at once.

use async_trait::async_trait;
use cairn_core::RepoPath;
use cairn_core::ports::{StoreError, SyncQueue};
use serde_json::json;

/// Sends sync requests to the FIFO queue.
#[derive(Clone, Debug)]
pub struct SqsSyncQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsSyncQueue {
    /// Adapter for the queue at `queue_url`.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

/// Body of a sync request.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SyncMessage {
    /// The suite, `kind/series/dist/dist_ver`.
    pub repo: String,
    /// Publish at least up to this change sequence number.
    pub seq: u64,
}

#[async_trait]
impl SyncQueue for SqsSyncQueue {
    async fn request_sync(&self, repo: &RepoPath, change_seq: u64) -> Result<(), StoreError> {
        let group = repo.to_string();
        let dedup = format!("{group}#{change_seq}");
        send(
            &self.client,
            &self.queue_url,
            json!({"repo": group, "seq": change_seq}),
            Some((&group, &dedup)),
        )
        .await
    }
}

/// Sends `body` to the queue at `url`; `fifo` is (message group, deduplication id)
/// for FIFO queues.
pub(crate) async fn send(
    client: &aws_sdk_sqs::Client,
    url: &str,
    body: serde_json::Value,
    fifo: Option<(&str, &str)>,
) -> Result<(), StoreError> {
    let mut message = client
        .send_message()
        .queue_url(url)
        .message_body(body.to_string());
    if let Some((group, dedup)) = fifo {
        message = message
            .message_group_id(group)
            .message_deduplication_id(dedup);
    }
    message
        .send()
        .await
        .map_err(|e| StoreError::caused_by("SendMessage", e))?;
    Ok(())
}

/// A queue message whose JSON body was read as `T`.
pub struct Parsed<T> {
    /// The message id (what a partial batch failure names).
    pub id: String,
    /// The body.
    pub body: T,
    /// The whole message (attributes such as `ApproximateReceiveCount`).
    pub message: aws_lambda_events::event::sqs::SqsMessage,
}

/// Reads every message body of a batch as JSON `T`. A body that can never be read
/// would come back forever (and block a FIFO group): it is logged, naming `kind`, and
/// left out, so the batch acknowledges it.
pub fn parse_batch<T: serde::de::DeserializeOwned>(
    event: aws_lambda_events::event::sqs::SqsEvent,
    kind: &str,
) -> Vec<Parsed<T>> {
    event
        .records
        .into_iter()
        .filter_map(|message| {
            let id = message.message_id.clone().unwrap_or_default();
            match message.body.as_deref().map(serde_json::from_str::<T>) {
                Some(Ok(body)) => Some(Parsed { id, body, message }),
                _ => {
                    tracing::error!(message_id = id, body = ?message.body, kind, "unreadable message dropped");
                    None
                }
            }
        })
        .collect()
}

/// The SQS batch response that returns the messages `failed` (message ids) to the
/// queue: every queue-triggered worker reports partial batch failures this way.
pub fn batch_response(
    failed: impl IntoIterator<Item = String>,
) -> aws_lambda_events::event::sqs::SqsBatchResponse {
    let mut response = aws_lambda_events::event::sqs::SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut f = aws_lambda_events::event::sqs::BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect();
    response
}

/// The webhook delivery queue (standard SQS): one message per delivery attempt.
#[derive(Clone, Debug)]
pub struct SqsDeliveryQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsDeliveryQueue {
    /// Adapter for the queue at `queue_url`.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

#[async_trait]
impl cairn_core::webhooks::DeliveryQueue for SqsDeliveryQueue {
    async fn enqueue(
        &self,
        deliveries: &[cairn_core::webhooks::Delivery],
        delay_secs: u32,
    ) -> Result<(), StoreError> {
        // SQS delays stop at 15 minutes; longer waits are several hops (`not_before`).
        let delay = i32::try_from(delay_secs.min(900)).unwrap_or(900);
        for chunk in deliveries.chunks(10) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, d) in chunk.iter().enumerate() {
                let body =
                    serde_json::to_string(d).map_err(|e| StoreError::new("encode delivery", e))?;
                entries.push(
                    aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .delay_seconds(delay)
                        .build()
                        .map_err(|e| StoreError::new("SendMessageBatch deliveries", e))?,
                );
            }
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| StoreError::caused_by("SendMessageBatch deliveries", e))?;
            if let Some(failed) = out.failed().first() {
                return Err(StoreError::new(
                    "SendMessageBatch deliveries",
                    format!(
                        "{} of {} entries refused, first: {} {}",
                        out.failed().len(),
                        chunk.len(),
                        failed.code(),
                        failed.message().unwrap_or_default()
                    ),
                ));
            }
        }
        Ok(())
    }
}
