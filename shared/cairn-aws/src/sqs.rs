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
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(json!({"repo": group, "seq": change_seq}).to_string())
            .message_group_id(&group)
            .message_deduplication_id(format!("{group}#{change_seq}"))
            .send()
            .await
            .map_err(|e| {
                StoreError::new("SendMessage", aws_sdk_sqs::error::DisplayErrorContext(e))
            })?;
        Ok(())
    }
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
