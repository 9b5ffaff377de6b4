//! The event log in the single table.
//!
//! A change and its event commit in one `TransactWriteItems`: the change itself
//! (with its own condition), the log counter (`EVENTS`/`HEAD`, advanced from the
//! value just read), the event in the overall log (`EVENTS`/`EVT#<seq>`) and its copy
//! in the subject's log (`SUBJECT#<subject>`/`EVT#<seq>`). Because every event
//! advances the counter from the value before it, event `n + 1` cannot commit before
//! event `n`: a reader resuming after a position never skips one.

use crate::dynamo::{DynamoCatalog, Item, backoff, get_n, get_s, n, now_secs, s};
use crate::keys::{EVENTS_HEAD_SK, EVENTS_PK, PK, SK, TTL, event_sk, subject_pk};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use cairn_core::StoreError;
use cairn_core::events::{Event, EventLog, NewEvent, Subject};

/// Attempts at taking the next log position before giving up.
const COMMIT_ATTEMPTS: u32 = 50;

/// What became of a change committed with its event.
enum Cancelled {
    /// The change's own condition did not hold: nothing was written.
    Change,
    /// Another change took the log position (or conflicted): try again.
    Retry,
}

impl DynamoCatalog {
    /// The last log position used (0 before the first event).
    async fn event_head(&self) -> Result<u64, StoreError> {
        match crate::dynamo::get_item(
            &self.client,
            &self.table,
            EVENTS_PK.to_string(),
            EVENTS_HEAD_SK,
        )
        .await?
        {
            Some(item) => get_n(&item, "seq"),
            None => Ok(0),
        }
    }

    /// Commits `change` and `event` together. `Ok(false)`: the change's condition
    /// did not hold, and neither was written.
    pub(crate) async fn commit_with_event(
        &self,
        change: TransactWriteItem,
        event: &NewEvent,
        operation: &str,
    ) -> Result<bool, StoreError> {
        let data = serde_json::to_string(&event.data)
            .map_err(|e| StoreError::new(operation, format!("event data: {e}")))?;
        let expires = now_secs() + self.event_ttl_secs;
        for attempt in 0..COMMIT_ATTEMPTS {
            let head = self.event_head().await?;
            let next = head + 1;
            let condition = if head == 0 {
                "attribute_not_exists(seq) OR seq = :cur"
            } else {
                "seq = :cur"
            };
            let counter = Update::builder()
                .table_name(&self.table)
                .key(PK, s(EVENTS_PK))
                .key(SK, s(EVENTS_HEAD_SK))
                .update_expression("SET seq = :next")
                .condition_expression(condition)
                .expression_attribute_values(":cur", n(head))
                .expression_attribute_values(":next", n(next))
                .build()
                .map_err(|e| StoreError::new(operation, e))?;
            let entry = |pk: String| {
                Put::builder()
                    .table_name(&self.table)
                    .item(PK, s(pk))
                    .item(SK, s(event_sk(next)))
                    .item("seq", n(next))
                    .item("id", s(&event.id))
                    .item("type", s(&event.kind))
                    .item("subject", s(event.subject.as_str()))
                    .item("time_ms", n(event.time_ms))
                    .item("data", s(&data))
                    .item(TTL, n(expires))
                    .build()
                    .map_err(|e| StoreError::new(operation, e))
            };
            let result = self
                .client
                .transact_write_items()
                .transact_items(change.clone())
                .transact_items(TransactWriteItem::builder().update(counter).build())
                .transact_items(
                    TransactWriteItem::builder()
                        .put(entry(EVENTS_PK.to_string())?)
                        .build(),
                )
                .transact_items(
                    TransactWriteItem::builder()
                        .put(entry(subject_pk(event.subject.as_str()))?)
                        .build(),
                )
                .send()
                .await;
            let cancelled = match result {
                Ok(_) => return Ok(true),
                Err(e) => match e.as_service_error() {
                    Some(TransactWriteItemsError::TransactionCanceledException(t)) => {
                        let codes: Vec<&str> = t
                            .cancellation_reasons()
                            .iter()
                            .map(|r| r.code().unwrap_or("None"))
                            .collect();
                        self.why_cancelled(&codes, head).await?
                    }
                    _ => return Err(StoreError::caused_by(operation, e)),
                },
            };
            match cancelled {
                Cancelled::Change => return Ok(false),
                Cancelled::Retry => tokio::time::sleep(backoff(attempt)).await,
            }
        }
        Err(StoreError::new(
            operation,
            "the event log stayed busy: too many concurrent changes, try again",
        ))
    }

    /// Reads the cancellation reasons (change, counter, log, subject log). Without
    /// reasons, a counter that has not moved means the change's condition failed.
    async fn why_cancelled(&self, codes: &[&str], head: u64) -> Result<Cancelled, StoreError> {
        match codes.first() {
            Some(&"ConditionalCheckFailed") => Ok(Cancelled::Change),
            Some(_) => Ok(Cancelled::Retry),
            None if self.event_head().await? == head => Ok(Cancelled::Change),
            None => Ok(Cancelled::Retry),
        }
    }
}

fn event_from_item(item: &Item) -> Result<Event, StoreError> {
    let data = get_s(item, "data")?;
    let new = NewEvent {
        id: get_s(item, "id")?,
        kind: get_s(item, "type")?,
        subject: Subject::parse(&get_s(item, "subject")?)
            .map_err(|e| StoreError::new("decode event", e))?,
        time_ms: get_n(item, "time_ms")?,
        data: serde_json::from_str(&data).map_err(|e| StoreError::new("decode event", e))?,
    };
    Ok(Event::committed(&new, get_n(item, "seq")?))
}

#[async_trait]
impl EventLog for DynamoCatalog {
    async fn events_after(
        &self,
        subject: Option<&Subject>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let pk = subject.map_or_else(|| EVENTS_PK.to_string(), |s| subject_pk(s.as_str()));
        let limit = i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000);
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":from", s(event_sk(after.saturating_add(1))))
            .expression_attribute_values(":to", s(event_sk(u64::MAX)))
            .consistent_read(true)
            .limit(limit)
            .send()
            .await
            .map_err(|e| StoreError::caused_by("Query events", e))?;
        page.items().iter().map(event_from_item).collect()
    }

    async fn head(&self) -> Result<u64, StoreError> {
        self.event_head().await
    }
}
