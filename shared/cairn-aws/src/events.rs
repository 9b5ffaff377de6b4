//! The event log in the single table.
//!
//! A change and its event commit in one `TransactWriteItems`: the change itself
//! (with its own condition), the log counter (`EVENTS`/`HEAD`, advanced from the
//! value just read), the event in the overall log (`EVENTS`/`EVT#<seq>`) and its copy
//! in the subject's log (`SUBJECT#<subject>`/`EVT#<seq>`). Because every event
//! advances the counter from the value before it, event `n + 1` cannot commit before
//! event `n`: a reader resuming after a position never skips one.

use crate::dynamo::{
    DynamoCatalog, Item, applied, backoff, cancellation_codes, from_doc, get_n, get_s, n, now_secs,
    query_docs, s,
};
use crate::keys::{
    EVENTS_HEAD_SK, EVENTS_PK, PK, SK, TTL, WEBHOOK_PREFIX, WEBHOOKS_PK, event_sk, subject_pk,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use cairn_core::StoreError;
use cairn_core::events::{Event, EventLog, NewEvent, Subject};
use cairn_core::webhooks::{AttemptRecord, DeliveryLog, Webhook, WebhookStore};

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
    /// One Query of the overall log or a subject's, from position `from` on,
    /// oldest first (`forward`) or newest first.
    async fn query_events(
        &self,
        subject: Option<&Subject>,
        from: u64,
        forward: bool,
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
            .expression_attribute_values(":from", s(event_sk(from)))
            .expression_attribute_values(":to", s(event_sk(u64::MAX)))
            .scan_index_forward(forward)
            .consistent_read(true)
            .limit(limit)
            .send()
            .await
            .map_err(|e| StoreError::caused_by("Query events", e))?;
        page.items().iter().map(event_from_item).collect()
    }

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
        self.commit_with_events(vec![change], std::slice::from_ref(event), operation)
            .await
    }

    /// Commits `changes` and `events` together, the events at consecutive log
    /// positions in order. `Ok(false)`: a change's condition did not hold, and nothing
    /// was written. Without events, the changes alone.
    pub(crate) async fn commit_with_events(
        &self,
        changes: Vec<TransactWriteItem>,
        events: &[NewEvent],
        operation: &str,
    ) -> Result<bool, StoreError> {
        if events.is_empty() {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(changes))
                .send()
                .await;
            return match result {
                Ok(_) => Ok(true),
                Err(e) => match cancellation_codes(&e) {
                    Some(_) => Ok(false),
                    None => Err(StoreError::caused_by(operation, e)),
                },
            };
        }
        let mut data = Vec::with_capacity(events.len());
        for event in events {
            data.push(
                serde_json::to_string(&event.data)
                    .map_err(|e| StoreError::new(operation, format!("event data: {e}")))?,
            );
        }
        let expires = now_secs() + self.event_ttl_secs;
        let count = events.len() as u64;
        for attempt in 0..COMMIT_ATTEMPTS {
            let head = self.event_head().await?;
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
                .expression_attribute_values(":next", n(head + count))
                .build()
                .map_err(|e| StoreError::new(operation, e))?;
            let entry = |pk: String, seq: u64, event: &NewEvent, data: &str| {
                Put::builder()
                    .table_name(&self.table)
                    .item(PK, s(pk))
                    .item(SK, s(event_sk(seq)))
                    .item("seq", n(seq))
                    .item("id", s(&event.id))
                    .item("type", s(&event.kind))
                    .item("subject", s(event.subject.as_str()))
                    .item("time_ms", n(event.time_ms))
                    .item("data", s(data))
                    .item(TTL, n(expires))
                    .build()
                    .map_err(|e| StoreError::new(operation, e))
            };
            let mut items = changes.clone();
            items.push(TransactWriteItem::builder().update(counter).build());
            for (i, (event, data)) in events.iter().zip(&data).enumerate() {
                let seq = head + 1 + i as u64;
                for pk in [EVENTS_PK.to_string(), subject_pk(event.subject.as_str())] {
                    items.push(
                        TransactWriteItem::builder()
                            .put(entry(pk, seq, event, data)?)
                            .build(),
                    );
                }
            }
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await;
            let cancelled = match result {
                Ok(_) => {
                    self.nudge_dispatcher(head + count).await;
                    return Ok(true);
                }
                Err(e) => match cancellation_codes(&e) {
                    Some(codes) => self.why_cancelled(&codes, changes.len(), head).await?,
                    None => return Err(StoreError::caused_by(operation, e)),
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

    /// Tells the dispatcher an event committed. A lost message only delays the
    /// deliveries until the dispatcher's scheduled run.
    async fn nudge_dispatcher(&self, seq: u64) {
        if let Some((client, url)) = &self.dispatch_nudge {
            let seq_text = seq.to_string();
            if let Err(e) = crate::sqs::send(
                client,
                url,
                serde_json::json!({"seq": seq}),
                Some(("dispatch", &seq_text)),
            )
            .await
            {
                tracing::warn!(seq, error = %e, "could not nudge the webhook dispatcher");
            }
        }
    }

    /// Reads the cancellation reasons (the `changes` changes, counter, log, subject
    /// log). Without reasons, a counter that has not moved means a change's condition
    /// failed.
    async fn why_cancelled(
        &self,
        codes: &[&str],
        changes: usize,
        head: u64,
    ) -> Result<Cancelled, StoreError> {
        if codes.is_empty() {
            return if self.event_head().await? == head {
                Ok(Cancelled::Change)
            } else {
                Ok(Cancelled::Retry)
            };
        }
        if codes
            .iter()
            .take(changes)
            .any(|c| *c == "ConditionalCheckFailed")
        {
            Ok(Cancelled::Change)
        } else {
            Ok(Cancelled::Retry)
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
        self.query_events(subject, after.saturating_add(1), true, limit)
            .await
    }

    async fn events_latest(
        &self,
        subject: Option<&Subject>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let mut events = self.query_events(subject, 1, false, limit).await?;
        events.reverse();
        Ok(events)
    }

    async fn head(&self) -> Result<u64, StoreError> {
        self.event_head().await
    }
}

fn webhook_key(id: &str) -> String {
    format!("{WEBHOOK_PREFIX}{id}")
}

/// A subscription's item: the document and the version the conditional writes check.
fn webhook_item(hook: &Webhook) -> Result<Item, StoreError> {
    let doc = serde_json::to_string(hook).map_err(|e| StoreError::new("encode webhook", e))?;
    Ok(Item::from([
        (PK.to_string(), s(WEBHOOKS_PK)),
        (SK.to_string(), s(webhook_key(&hook.id))),
        ("doc".to_string(), s(doc)),
        ("version".to_string(), n(hook.version)),
    ]))
}

#[async_trait]
impl WebhookStore for DynamoCatalog {
    async fn create_webhook(&self, hook: &Webhook) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(webhook_item(hook)?))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await;
        applied(result, "PutItem webhook")
    }

    async fn get_webhook(&self, id: &str) -> Result<Option<Webhook>, StoreError> {
        crate::dynamo::get_item(
            &self.client,
            &self.table,
            WEBHOOKS_PK.into(),
            &webhook_key(id),
        )
        .await?
        .map(|item| from_doc(&item))
        .transpose()
    }

    async fn list_webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        query_docs(
            &self.client,
            &self.table,
            WEBHOOKS_PK.into(),
            WEBHOOK_PREFIX,
        )
        .await
    }

    async fn replace_webhook(&self, hook: &Webhook) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(webhook_item(hook)?))
            .condition_expression("version = :read")
            .expression_attribute_values(":read", n(hook.version.saturating_sub(1)))
            .send()
            .await;
        applied(result, "PutItem webhook update")
    }

    async fn delete_webhook(&self, id: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(WEBHOOKS_PK))
            .key(SK, s(webhook_key(id)))
            .send()
            .await
            .map_err(|e| StoreError::caused_by("DeleteItem webhook", e))?;
        Ok(())
    }

    async fn note_failure(&self, id: &str, now: i64) -> Result<i64, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(WEBHOOKS_PK))
            .key(SK, s(webhook_key(id)))
            .update_expression("SET failing_since = if_not_exists(failing_since, :now)")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":now", n(now))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => match out.attributes() {
                Some(item) => get_n(item, "failing_since"),
                None => Ok(now),
            },
            // Deleted meanwhile: nothing to track.
            Err(e) if crate::dynamo::is_condition_failure(&e) => Ok(now),
            Err(e) => Err(StoreError::caused_by("UpdateItem webhook failing", e)),
        }
    }

    async fn note_success(&self, id: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(WEBHOOKS_PK))
            .key(SK, s(webhook_key(id)))
            .update_expression("REMOVE failing_since")
            .condition_expression("attribute_exists(failing_since)")
            .send()
            .await;
        applied(result, "UpdateItem webhook recovered").map(|_| ())
    }

    async fn commit_webhook_event(&self, id: &str, event: &NewEvent) -> Result<bool, StoreError> {
        let check = aws_sdk_dynamodb::types::ConditionCheck::builder()
            .table_name(&self.table)
            .key(PK, s(WEBHOOKS_PK))
            .key(SK, s(webhook_key(id)))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .build()
            .map_err(|e| StoreError::new("webhook event", e))?;
        self.commit_with_event(
            TransactWriteItem::builder().condition_check(check).build(),
            event,
            "TransactWriteItems webhook event",
        )
        .await
    }

    async fn disable_webhook(&self, hook: &Webhook, event: &NewEvent) -> Result<bool, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(webhook_item(hook)?))
            .condition_expression("version = :read")
            .expression_attribute_values(":read", n(hook.version.saturating_sub(1)))
            .build()
            .map_err(|e| StoreError::new("disable webhook", e))?;
        self.commit_with_event(
            TransactWriteItem::builder().put(put).build(),
            event,
            "TransactWriteItems disable webhook",
        )
        .await
    }
}

const DISPATCH_PK: &str = "DISPATCH";
const DISPATCH_SK: &str = "CURSOR";

fn now_millis() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn deliveries_pk(hook: &str) -> String {
    format!("DELIVERIES#{hook}")
}

/// Sort key of one attempt: by event, then by time, so a redelivery's attempts sit
/// beside the first ones and never replace them.
fn attempt_sk(seq: u64, at_ms: i64) -> String {
    format!("ATT#{seq:020}#{at_ms:015}")
}

#[async_trait]
impl DeliveryLog for DynamoCatalog {
    async fn record_attempt(&self, record: &AttemptRecord) -> Result<(), StoreError> {
        let doc =
            serde_json::to_string(record).map_err(|e| StoreError::new("encode attempt", e))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(deliveries_pk(&record.hook)))
            .item(SK, s(attempt_sk(record.seq, now_millis())))
            .item("doc", s(doc))
            .item(TTL, n(now_secs() + self.event_ttl_secs))
            .send()
            .await
            .map_err(|e| StoreError::caused_by("PutItem delivery attempt", e))?;
        Ok(())
    }

    async fn attempts(
        &self,
        hook: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        let upper = format!("ATT#{:020}", before.unwrap_or(u64::MAX));
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(deliveries_pk(hook)))
            .expression_attribute_values(":from", s("ATT#"))
            .expression_attribute_values(":to", s(upper))
            .scan_index_forward(false)
            .limit(i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::caused_by("Query delivery attempts", e))?;
        page.items().iter().map(from_doc).collect()
    }

    async fn dispatch_cursor(&self) -> Result<Option<u64>, StoreError> {
        match crate::dynamo::get_item(&self.client, &self.table, DISPATCH_PK.into(), DISPATCH_SK)
            .await?
        {
            Some(item) => Ok(Some(get_n(&item, "seq")?)),
            None => Ok(None),
        }
    }

    async fn advance_cursor(&self, from: Option<u64>, to: u64) -> Result<bool, StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(DISPATCH_PK))
            .key(SK, s(DISPATCH_SK))
            .update_expression("SET seq = :to")
            .expression_attribute_values(":to", n(to));
        let update = match from {
            Some(from) => update
                .condition_expression("seq = :from")
                .expression_attribute_values(":from", n(from)),
            None => update.condition_expression("attribute_not_exists(seq)"),
        };
        applied(update.send().await, "UpdateItem dispatch cursor")
    }
}
