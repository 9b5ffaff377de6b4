//! DynamoDB adapter for source archives and asynchronous operations (same single
//! table; keys in [`crate::keys`], access patterns in `docs/data-model.md`).
//!
//! Archive records are written once with `attribute_not_exists` conditions: a tree,
//! a ref or an origin mapping never changes after its first write. Operations move
//! through their states with conditional updates on `status`.

use crate::dynamo::{
    Item, applied, cancellation_codes, from_doc, get_item, get_n, get_opt_s, get_s,
    is_condition_failure, n, query_docs, s, store_err,
};
use crate::keys::{
    ARCHIVE_CLAIM_SK, ARCHIVE_ORIGIN_PREFIX, ARCHIVE_PACK_PREFIX, ARCHIVE_REF_PREFIX,
    ARCHIVE_TREE_PREFIX, ATTEMPT_PREFIX, OPERATION_SK, PK, SK, TTL, archive_pk, attempt_sk,
    operation_pk,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, ReturnValue, TransactWriteItem, Update,
};
use cairn_archive::model::{
    ArchiveCatalog, ArchivedTree, AttemptRecord, CallbackQueue, Claim, Operation, OperationQueue,
    OperationStatus, OperationStore, PackRecord, PublishedRef, RefWrite, Transition, claim_changed,
};
use cairn_core::events::NewEvent;
use cairn_core::ports::StoreError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Operations and their attempts expire (DynamoDB TTL) 30 days after creation.
const OPERATION_TTL_SECS: i64 = 30 * 24 * 3600;

/// The DynamoDB adapter for archives and operations.
#[derive(Clone, Debug)]
pub struct DynamoArchives {
    client: aws_sdk_dynamodb::Client,
    table: String,
    /// Commits the events of archive changes (the same table's event log).
    events: crate::DynamoCatalog,
    /// The claim catalog writes are for.
    claim: Claim,
}

fn to_doc<T: Serialize>(v: &T) -> Result<AttributeValue, StoreError> {
    serde_json::to_string(v)
        .map(s)
        .map_err(|e| StoreError::new("encode item", e))
}

fn status_of(text: &str) -> Result<OperationStatus, StoreError> {
    serde_json::from_value(Value::String(text.to_owned()))
        .map_err(|e| StoreError::new("decode item", e))
}

/// An operation item: the creation-time document plus the mutable attributes.
fn operation_of(item: &Item) -> Result<Operation, StoreError> {
    let mut op: Operation = from_doc(item)?;
    op.status = status_of(&get_s(item, "status")?)?;
    op.updated_at = get_opt_s(item, "updated_at").unwrap_or(op.updated_at);
    op.delivery = get_opt_s(item, "delivery").or(op.delivery);
    if item.contains_key("http_status") {
        op.http_status = Some(get_n(item, "http_status")?);
    }
    if let Some(result) = get_opt_s(item, "result") {
        op.result =
            Some(serde_json::from_str(&result).map_err(|e| StoreError::new("decode item", e))?);
    }
    Ok(op)
}

impl DynamoArchives {
    /// Adapter over `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        let table = table.into();
        Self {
            events: crate::DynamoCatalog::new(client.clone(), table.clone()),
            client,
            table,
            claim: Claim::Unclaimed,
        }
    }

    /// Wakes the webhook dispatcher after each committed event (see
    /// [`crate::DynamoCatalog::with_dispatch_nudge`]).
    pub fn with_dispatch_nudge(
        mut self,
        client: aws_sdk_sqs::Client,
        queue_url: Option<String>,
    ) -> Self {
        self.events = self.events.with_dispatch_nudge(client, queue_url);
        self
    }

    async fn get(&self, pk: String, sk: String) -> Result<Option<Item>, StoreError> {
        get_item(&self.client, &self.table, pk, &sk).await
    }

    /// The documents of every item of partition `pk` whose sort key starts with
    /// `prefix`, all pages.
    async fn query_docs<T: DeserializeOwned>(
        &self,
        pk: String,
        prefix: &str,
    ) -> Result<Vec<T>, StoreError> {
        query_docs(&self.client, &self.table, pk, prefix).await
    }

    /// Puts an item unless its key exists; `false` if it did.
    async fn put_once(&self, item: Item) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await;
        applied(result, "PutItem")
    }

    /// Puts `item` of archive name `name`'s partition unless its key exists (`false`
    /// if it did), and only while the name's claim is this adapter's: one
    /// transaction of a condition check on the claim item and the put.
    async fn put_once_claimed(&self, name: &str, item: Item) -> Result<bool, StoreError> {
        let operation = "TransactWriteItems archive";
        let mut check = ConditionCheck::builder()
            .table_name(&self.table)
            .key(PK, s(archive_pk(name)))
            .key(SK, s(ARCHIVE_CLAIM_SK));
        check = match &self.claim {
            Claim::Unclaimed => check
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK),
            Claim::Repository(storage) => check
                .condition_expression("#storage = :storage AND attribute_not_exists(#closing)")
                .expression_attribute_names("#storage", "storage")
                .expression_attribute_names("#closing", "closing")
                .expression_attribute_values(":storage", s(storage)),
        };
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .build()
            .map_err(|e| StoreError::new(operation, e))?;
        let check = check.build().map_err(|e| StoreError::new(operation, e))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().condition_check(check).build())
            .transact_items(TransactWriteItem::builder().put(put).build())
            .send()
            .await;
        // The claim's check is the transaction's first item.
        let first_failed = match result {
            Ok(_) => return Ok(true),
            Err(e) => match cancellation_codes(&e) {
                Some(codes) => codes.first().map(|c| *c == "ConditionalCheckFailed"),
                None => return Err(StoreError::caused_by(operation, e)),
            },
        };
        let claim_failed = match first_failed {
            Some(failed) => failed,
            // No reasons given: read the claim to tell which condition failed.
            None => !self.claim_holds(name).await?,
        };
        if claim_failed {
            return Err(claim_changed(name));
        }
        Ok(false)
    }

    /// Whether name `name`'s claim is this adapter's (a consistent read).
    async fn claim_holds(&self, name: &str) -> Result<bool, StoreError> {
        let item = self.get(archive_pk(name), ARCHIVE_CLAIM_SK.into()).await?;
        Ok(match (&self.claim, item) {
            (Claim::Unclaimed, item) => item.is_none(),
            (Claim::Repository(storage), Some(item)) => {
                get_opt_s(&item, "storage").as_deref() == Some(storage.as_str())
                    && !item.contains_key("closing")
            }
            (Claim::Repository(_), None) => false,
        })
    }

    /// UpdateItem `expression` on an item that must exist.
    async fn update_existing(
        &self,
        pk: String,
        sk: String,
        expression: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<(), StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .key(SK, s(sk))
            .update_expression(expression)
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK);
        for (name, attribute) in names {
            update = update.expression_attribute_names(*name, *attribute);
        }
        for (name, value) in values {
            update = update.expression_attribute_values(name, value);
        }
        update.send().await.map_err(store_err("UpdateItem"))?;
        Ok(())
    }

    fn doc_item(&self, pk: String, sk: String, doc: AttributeValue) -> Item {
        Item::from([(PK.into(), s(pk)), (SK.into(), s(sk)), ("doc".into(), doc)])
    }

    /// `queued` -> `to`, returning the operation after (or as found).
    async fn leave_queued(
        &self,
        id: &str,
        to: OperationStatus,
        result: Option<&Value>,
    ) -> Result<Transition, StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(operation_pk(id)))
            .key(SK, s(OPERATION_SK))
            .condition_expression("#status = :queued")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":queued", s("queued"))
            .expression_attribute_values(":to", s(to.as_str()))
            .expression_attribute_values(":now", s(cairn_archive::service::now()))
            .return_values(ReturnValue::AllNew);
        update = match result {
            Some(body) => update
                .update_expression(
                    "SET #status = :to, updated_at = :now, http_status = :http, #result = :result",
                )
                .expression_attribute_names("#result", "result")
                .expression_attribute_values(":http", n(409))
                .expression_attribute_values(":result", s(body.to_string())),
            None => update.update_expression("SET #status = :to, updated_at = :now"),
        };
        match update.send().await {
            Ok(out) => match out.attributes {
                Some(item) => Ok(Transition::Done(operation_of(&item)?)),
                None => Err(StoreError::new("UpdateItem", "no attributes returned")),
            },
            Err(e) if is_condition_failure(&e) => {
                match self.get(operation_pk(id), OPERATION_SK.into()).await? {
                    Some(item) => Ok(Transition::Refused(operation_of(&item)?)),
                    None => Ok(Transition::Missing),
                }
            }
            Err(e) => Err(store_err("UpdateItem")(e)),
        }
    }
}

#[async_trait]
impl ArchiveCatalog for DynamoArchives {
    fn under(&self, claim: Claim) -> std::sync::Arc<dyn ArchiveCatalog> {
        std::sync::Arc::new(Self {
            claim,
            ..self.clone()
        })
    }

    async fn tree(&self, name: &str, tree: &str) -> Result<Option<ArchivedTree>, StoreError> {
        let item = self
            .get(archive_pk(name), format!("{ARCHIVE_TREE_PREFIX}{tree}"))
            .await?;
        let Some(item) = item else { return Ok(None) };
        let mut t: ArchivedTree = from_doc(&item)?;
        t.published = matches!(item.get("published"), Some(AttributeValue::Bool(true)));
        Ok(Some(t))
    }

    async fn claim_tree(&self, record: &ArchivedTree) -> Result<Option<ArchivedTree>, StoreError> {
        let item = self.doc_item(
            archive_pk(&record.name),
            format!("{ARCHIVE_TREE_PREFIX}{}", record.tree),
            to_doc(record)?,
        );
        if self.put_once_claimed(&record.name, item).await? {
            return Ok(None);
        }
        self.tree(&record.name, &record.tree)
            .await?
            .map(Some)
            .ok_or_else(|| StoreError::new("claim tree", "claimed, then missing"))
    }

    async fn mark_published(
        &self,
        name: &str,
        tree: &str,
        event: &NewEvent,
    ) -> Result<(), StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .key(PK, s(archive_pk(name)))
            .key(SK, s(format!("{ARCHIVE_TREE_PREFIX}{tree}")))
            .update_expression("SET published = :t")
            .condition_expression(
                "attribute_exists(#pk) AND (attribute_not_exists(published) OR published = :f)",
            )
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .expression_attribute_values(":f", AttributeValue::Bool(false))
            .build()
            .map_err(|e| StoreError::new("mark published", e))?;
        // Not applied: already published (a repeated run), and its event with it.
        self.events
            .commit_with_event(
                TransactWriteItem::builder().update(update).build(),
                event,
                "TransactWriteItems archive published",
            )
            .await
            .map(|_| ())
    }

    async fn trees(&self, name: &str) -> Result<Vec<ArchivedTree>, StoreError> {
        let mut out: Vec<ArchivedTree> = self
            .query_docs(archive_pk(name), ARCHIVE_TREE_PREFIX)
            .await?;
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at));
        Ok(out)
    }

    async fn origin_tree(&self, name: &str, object: &str) -> Result<Option<String>, StoreError> {
        let item = self
            .get(archive_pk(name), format!("{ARCHIVE_ORIGIN_PREFIX}{object}"))
            .await?;
        item.map(|i| get_s(&i, "tree")).transpose()
    }

    async fn remember_origin(
        &self,
        name: &str,
        object: &str,
        tree: &str,
    ) -> Result<(), StoreError> {
        let item = Item::from([
            (PK.into(), s(archive_pk(name))),
            (SK.into(), s(format!("{ARCHIVE_ORIGIN_PREFIX}{object}"))),
            ("tree".into(), s(tree)),
        ]);
        // An object id always has the same tree: an existing item is the same.
        self.put_once_claimed(name, item).await?;
        Ok(())
    }

    async fn put_ref(&self, repo: &str, r: &PublishedRef) -> Result<RefWrite, StoreError> {
        let sk = format!("{ARCHIVE_REF_PREFIX}{}", r.name);
        if self
            .put_once_claimed(
                repo,
                self.doc_item(archive_pk(repo), sk.clone(), to_doc(r)?),
            )
            .await?
        {
            return Ok(RefWrite::Created);
        }
        let existing: PublishedRef = match self.get(archive_pk(repo), sk).await? {
            Some(item) => from_doc(&item)?,
            None => return Err(StoreError::new("put ref", "refused, then missing")),
        };
        Ok(if existing.target == r.target {
            RefWrite::Unchanged
        } else {
            RefWrite::Conflict(existing)
        })
    }

    async fn refs(&self, repo: &str) -> Result<Vec<PublishedRef>, StoreError> {
        self.query_docs(archive_pk(repo), ARCHIVE_REF_PREFIX).await
    }

    async fn add_pack(&self, repo: &str, pack: &PackRecord) -> Result<(), StoreError> {
        let item = self.doc_item(
            archive_pk(repo),
            format!("{ARCHIVE_PACK_PREFIX}{}", pack.stem),
            to_doc(pack)?,
        );
        // Pack names are content checksums: an existing item is the same pack.
        self.put_once_claimed(repo, item).await?;
        Ok(())
    }

    async fn packs(&self, repo: &str) -> Result<Vec<PackRecord>, StoreError> {
        self.query_docs(archive_pk(repo), ARCHIVE_PACK_PREFIX).await
    }
}

fn expiry() -> AttributeValue {
    n(time::OffsetDateTime::now_utc().unix_timestamp() + OPERATION_TTL_SECS)
}

#[async_trait]
impl OperationStore for DynamoArchives {
    async fn create(&self, op: &Operation) -> Result<(), StoreError> {
        let mut item = self.doc_item(operation_pk(&op.id), OPERATION_SK.into(), to_doc(op)?);
        item.insert("status".into(), s(op.status.as_str()));
        item.insert("updated_at".into(), s(&op.updated_at));
        item.insert(TTL.into(), expiry());
        if !self.put_once(item).await? {
            return Err(StoreError::new("create operation", "id already used"));
        }
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<Operation>, StoreError> {
        DynamoArchives::get(self, operation_pk(id), OPERATION_SK.into())
            .await?
            .map(|item| operation_of(&item))
            .transpose()
    }

    async fn start(&self, id: &str) -> Result<Transition, StoreError> {
        self.leave_queued(id, OperationStatus::Running, None).await
    }

    async fn cancel(
        &self,
        id: &str,
        result: &Value,
        event: &NewEvent,
    ) -> Result<Transition, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .key(PK, s(operation_pk(id)))
            .key(SK, s(OPERATION_SK))
            .update_expression(
                "SET #status = :to, updated_at = :now, http_status = :http, #result = :result",
            )
            .condition_expression("#status = :queued")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#result", "result")
            .expression_attribute_values(":queued", s("queued"))
            .expression_attribute_values(":to", s(OperationStatus::Cancelled.as_str()))
            .expression_attribute_values(":now", s(cairn_archive::service::now()))
            .expression_attribute_values(":http", n(409))
            .expression_attribute_values(":result", s(result.to_string()))
            .build()
            .map_err(|e| StoreError::new("cancel operation", e))?;
        let done = self
            .events
            .commit_with_event(
                TransactWriteItem::builder().update(update).build(),
                event,
                "TransactWriteItems cancel operation",
            )
            .await?;
        match self.get(operation_pk(id), OPERATION_SK.into()).await? {
            Some(item) if done => Ok(Transition::Done(operation_of(&item)?)),
            Some(item) => Ok(Transition::Refused(operation_of(&item)?)),
            None => Ok(Transition::Missing),
        }
    }

    async fn finish(
        &self,
        id: &str,
        status: OperationStatus,
        http_status: u16,
        result: &Value,
        event: &NewEvent,
    ) -> Result<(), StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .key(PK, s(operation_pk(id)))
            .key(SK, s(OPERATION_SK))
            .update_expression(
                "SET #status = :status, http_status = :http, #result = :result, updated_at = :now",
            )
            .condition_expression(
                "attribute_exists(#pk) AND #status <> :succeeded AND #status <> :failed \
                 AND #status <> :cancelled",
            )
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#result", "result")
            .expression_attribute_values(":status", s(status.as_str()))
            .expression_attribute_values(":http", n(http_status))
            .expression_attribute_values(":result", s(result.to_string()))
            .expression_attribute_values(":now", s(cairn_archive::service::now()))
            .expression_attribute_values(":succeeded", s(OperationStatus::Succeeded.as_str()))
            .expression_attribute_values(":failed", s(OperationStatus::Failed.as_str()))
            .expression_attribute_values(":cancelled", s(OperationStatus::Cancelled.as_str()))
            .build()
            .map_err(|e| StoreError::new("finish operation", e))?;
        // Not applied: finished before (a repeated run) or gone; nothing to do.
        self.events
            .commit_with_event(
                TransactWriteItem::builder().update(update).build(),
                event,
                "TransactWriteItems finish operation",
            )
            .await
            .map(|_| ())
    }

    async fn set_delivery(&self, id: &str, delivery: &str) -> Result<(), StoreError> {
        self.update_existing(
            operation_pk(id),
            OPERATION_SK.into(),
            "SET delivery = :d",
            &[],
            vec![(":d", s(delivery))],
        )
        .await
    }

    async fn record_attempt(&self, id: &str, attempt: &AttemptRecord) -> Result<(), StoreError> {
        let mut item = self.doc_item(
            operation_pk(id),
            attempt_sk(attempt.attempt),
            to_doc(attempt)?,
        );
        item.insert(TTL.into(), expiry());
        // A redelivered message may record the same attempt number twice: keep the first.
        self.put_once(item).await?;
        Ok(())
    }

    async fn attempts(&self, id: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        self.query_docs(operation_pk(id), ATTEMPT_PREFIX).await
    }
}

/// The archive worker's FIFO queue (one message group per repository) and the
/// callback queue.
#[derive(Clone, Debug)]
pub struct SqsOperationQueues {
    client: aws_sdk_sqs::Client,
    archive_queue_url: String,
    callback_queue_url: String,
}

impl SqsOperationQueues {
    /// Adapter over both queues.
    pub fn new(
        client: aws_sdk_sqs::Client,
        archive_queue_url: impl Into<String>,
        callback_queue_url: impl Into<String>,
    ) -> Self {
        Self {
            client,
            archive_queue_url: archive_queue_url.into(),
            callback_queue_url: callback_queue_url.into(),
        }
    }
}

/// Body of both queues' messages.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct OperationMessage {
    /// Operation id.
    pub id: String,
}

#[async_trait]
impl OperationQueue for SqsOperationQueues {
    async fn submit(&self, op: &Operation) -> Result<(), StoreError> {
        crate::sqs::send(
            &self.client,
            &self.archive_queue_url,
            serde_json::json!({"id": op.id}),
            Some((&op.name, &op.id)),
        )
        .await
    }
}

#[async_trait]
impl CallbackQueue for SqsOperationQueues {
    async fn deliver(&self, op_id: &str) -> Result<(), StoreError> {
        crate::sqs::send(
            &self.client,
            &self.callback_queue_url,
            serde_json::json!({"id": op_id}),
            None,
        )
        .await
    }
}

/// The archive use cases and operations over the AWS adapters, as `archive-api` and
/// `archive-worker` both build them.
pub fn archive_services(
    clients: &crate::Clients,
    config: &cairn_archive::ArchiveConfig,
) -> (cairn_archive::Archiver, cairn_archive::Operations) {
    use std::sync::Arc;
    let archives = Arc::new(
        DynamoArchives::new(clients.dynamodb.clone(), &config.table)
            .with_dispatch_nudge(clients.sqs.clone(), config.dispatch_queue_url.clone()),
    );
    let queues = Arc::new(SqsOperationQueues::new(
        clients.sqs.clone(),
        &config.archive_queue_url,
        &config.callback_queue_url,
    ));
    let archiver = cairn_archive::Archiver {
        catalog: archives.clone(),
        files: Arc::new(crate::S3Store::new(
            clients.s3.clone(),
            &config.archive_bucket,
            "",
        )),
        workspaces: config.build_bucket.as_ref().map(|bucket| {
            Arc::new(crate::S3Store::new(clients.s3.clone(), bucket, ""))
                as Arc<dyn cairn_core::ports::RepoStore>
        }),
        settings: config.settings.clone(),
    };
    let operations = cairn_archive::Operations {
        store: archives,
        queue: queues.clone(),
        callbacks: queues,
    };
    (archiver, operations)
}

/// The callback queue's visibility, for retries after a backoff.
#[derive(Clone, Debug)]
pub struct SqsRetryLater {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsRetryLater {
    /// Adapter for the queue at `queue_url`.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

#[async_trait]
impl cairn_archive::model::RetryLater for SqsRetryLater {
    async fn retry_after(
        &self,
        receipt: &str,
        delay: std::time::Duration,
    ) -> Result<(), StoreError> {
        let seconds = i32::try_from(delay.as_secs().max(1)).unwrap_or(43_200);
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds.min(43_200))
            .send()
            .await
            .map_err(|e| StoreError::caused_by("ChangeMessageVisibility", e))?;
        Ok(())
    }
}
