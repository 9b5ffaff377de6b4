//! DynamoDB single-table adapter for the catalog, users and upload tickets.
//! Key layout: [`crate::keys`]; access patterns: `docs/data-model.md`.

use crate::keys::{
    FILE_PREFIX, PACKAGE_PREFIX, PK, SK, STATE_SK, SUPERSEDED_PREFIX, TTL, UPLOAD_SK, USER_SK,
    change_sk, file_sk, package_sk, repo_pk, superseded_sk, upload_pk, user_pk,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::ReturnValue;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, KeysAndAttributes, Put, PutRequest, TransactWriteItem, Update,
    WriteRequest,
};
use cairn_core::access::Role;
use cairn_core::auth::UserRecord;
use cairn_core::events::NewEvent;
use cairn_core::package::{IndexEntry, PoolFile};
use cairn_core::ports::{
    Catalog, ChangeRecord, FileClaim, FileRecord, Release, RepoState, StoreError, Superseded,
    UploadLedger, UploadStatus, UploadTicket, UserDirectory,
};
use cairn_core::{PackageRecord, PackageStatus, RepoPath};
use serde::de::DeserializeOwned;
use std::collections::HashMap;

pub(crate) type Item = HashMap<String, AttributeValue>;

/// Upload tickets expire (DynamoDB TTL) a day after creation.
const TICKET_TTL_SECS: i64 = 24 * 3600;
/// Change-log entries expire after a week; a publisher whose snapshot is older
/// rebuilds from the full package list instead.
const CHANGE_TTL_SECS: i64 = 7 * 24 * 3600;
/// Attempts at the optimistic `change_seq` increment before giving up.
const NOTE_CHANGE_ATTEMPTS: u32 = 50;
/// BatchGetItem accepts at most 100 keys.
const BATCH_GET_MAX: usize = 100;

/// The DynamoDB adapter.
#[derive(Clone, Debug)]
pub struct DynamoCatalog {
    pub(crate) client: aws_sdk_dynamodb::Client,
    pub(crate) table: String,
    /// How long events stay in the log (TTL).
    pub(crate) event_ttl_secs: i64,
    /// Where to tell the webhook dispatcher that an event committed.
    pub(crate) dispatch_nudge: Option<(aws_sdk_sqs::Client, String)>,
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn get_s(item: &Item, name: &str) -> Result<String, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(StoreError::new(
            "decode item",
            format!("attribute {name} missing or not a string"),
        )),
    }
}

pub(crate) fn get_opt_s(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

pub(crate) fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| {
            StoreError::new("decode item", format!("attribute {name} is not a number"))
        }),
        _ => Err(StoreError::new(
            "decode item",
            format!("attribute {name} missing or not a number"),
        )),
    }
}

fn get_n_or_zero(item: &Item, name: &str) -> Result<u64, StoreError> {
    if item.contains_key(name) {
        get_n(item, name)
    } else {
        Ok(0)
    }
}

pub(crate) fn store_err<E, R>(operation: &str) -> impl FnOnce(SdkError<E, R>) -> StoreError + '_
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    move |e| StoreError::caused_by(operation, e)
}

fn entry_json(entry: &IndexEntry) -> String {
    serde_json::to_string(entry).expect("an index entry is plain strings")
}

fn package_item(record: &PackageRecord) -> Item {
    HashMap::from([
        (PK.into(), s(repo_pk(&record.repo))),
        (SK.into(), s(package_sk(&record.filename))),
        ("repo".into(), s(record.repo.to_string())),
        ("filename".into(), s(&record.filename)),
        ("product".into(), s(&record.product)),
        ("name".into(), s(&record.name)),
        ("version".into(), s(&record.version)),
        ("arch".into(), s(&record.architecture)),
        ("size".into(), n(record.size)),
        ("sha256".into(), s(&record.sha256)),
        ("pool_key".into(), s(&record.pool_key)),
        ("entry".into(), s(entry_json(&record.entry))),
        ("status".into(), s(PackageStatus::as_str(record.status))),
        ("uploaded_at".into(), n(record.uploaded_at)),
        ("uploader".into(), s(&record.uploader)),
        (
            "files".into(),
            s(serde_json::to_string(&record.files).expect("pool files are plain strings")),
        ),
    ])
}

fn package_from_item(item: &Item) -> Result<PackageRecord, StoreError> {
    let repo =
        RepoPath::parse(&get_s(item, "repo")?).map_err(|e| StoreError::new("decode package", e))?;
    let status = PackageStatus::parse(&get_s(item, "status")?)?;
    // Records written before uploads recorded their files have none (legacy).
    let files = match item.get("files") {
        None => Vec::new(),
        Some(_) => serde_json::from_str(&get_s(item, "files")?)
            .map_err(|e| StoreError::new("decode package files", e))?,
    };
    let entry = serde_json::from_str(&get_s(item, "entry")?)
        .map_err(|e| StoreError::new("decode package entry", e))?;
    Ok(PackageRecord {
        repo,
        filename: get_s(item, "filename")?,
        product: get_s(item, "product")?,
        name: get_s(item, "name")?,
        version: get_s(item, "version")?,
        architecture: get_s(item, "arch")?,
        size: get_n(item, "size")?,
        sha256: get_s(item, "sha256")?,
        pool_key: get_s(item, "pool_key")?,
        entry,
        status,
        uploaded_at: get_n(item, "uploaded_at")?,
        uploader: get_s(item, "uploader")?,
        files,
    })
}

fn file_from_item(item: &Item) -> Result<FileRecord, StoreError> {
    let owners = match item.get("owners") {
        None => Vec::new(),
        Some(AttributeValue::Ss(owners)) => owners.clone(),
        Some(_) => {
            return Err(StoreError::new(
                "decode file claim",
                "attribute owners is not a string set",
            ));
        }
    };
    Ok(FileRecord {
        file: PoolFile {
            key: get_s(item, "key")?,
            sha256: get_s(item, "sha256")?,
            size: get_n(item, "size")?,
        },
        owners,
        deleting_since: item
            .contains_key("deleting")
            .then(|| get_n(item, "deleting"))
            .transpose()?,
    })
}

/// The pause before attempt `attempt + 1` of an optimistic write: growing, with
/// jitter so that racing writers spread out.
pub(crate) fn backoff(attempt: u32) -> std::time::Duration {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    std::time::Duration::from_millis(5 + u64::from(attempt.min(10)) * 5 + random % 20)
}

pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

impl DynamoCatalog {
    /// Adapter over `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            event_ttl_secs: i64::from(cairn_core::config::DEFAULT_EVENT_RETENTION_DAYS) * 86_400,
            dispatch_nudge: None,
        }
    }

    /// After each committed event, a message to the webhook dispatcher's queue at
    /// `queue_url` (so deliveries start at once rather than at its next scheduled
    /// run). `None` or an empty URL: no message.
    pub fn with_dispatch_nudge(
        mut self,
        client: aws_sdk_sqs::Client,
        queue_url: Option<String>,
    ) -> Self {
        self.dispatch_nudge = queue_url.filter(|u| !u.is_empty()).map(|u| (client, u));
        self
    }

    /// Keeps events for `days` days instead of the default.
    pub fn with_event_retention_days(mut self, days: u32) -> Self {
        self.event_ttl_secs = i64::from(days) * 86_400;
        self
    }

    /// Every item of a suite's partition whose sort key (`#sk`) matches
    /// `sk_condition` with `values` bound, strongly consistent, all pages.
    async fn query_suite(
        &self,
        repo: &RepoPath,
        sk_condition: &str,
        values: Vec<(&str, AttributeValue)>,
        operation: &str,
    ) -> Result<Vec<Item>, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression(format!("#pk = :pk AND {sk_condition}"))
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(repo_pk(repo)))
            .consistent_read(true);
        for (name, value) in values {
            query = query.expression_attribute_values(name, value);
        }
        let mut pages = query.into_paginator().items().send();
        let mut out = Vec::new();
        while let Some(item) = pages.next().await {
            out.push(item.map_err(store_err(operation))?);
        }
        Ok(out)
    }

    /// Every item of one kind (sort-key prefix) in a suite's partition, decoded.
    async fn query_kind<T>(
        &self,
        repo: &RepoPath,
        prefix: &str,
        operation: &str,
        decode: fn(&Item) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.query_suite(
            repo,
            "begins_with(#sk, :prefix)",
            vec![(":prefix", s(prefix))],
            operation,
        )
        .await?
        .iter()
        .map(decode)
        .collect()
    }

    async fn get_item(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        get_item(&self.client, &self.table, pk, sk).await
    }
}

/// The JSON document an item keeps in its `doc` attribute.
pub(crate) fn from_doc<T: DeserializeOwned>(item: &Item) -> Result<T, StoreError> {
    serde_json::from_str(&get_s(item, "doc")?).map_err(|e| StoreError::new("decode item", e))
}

/// The documents of every item of partition `pk` whose sort key starts with `prefix`,
/// strongly consistent, all pages.
pub(crate) async fn query_docs<T: DeserializeOwned>(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    pk: String,
    prefix: &str,
) -> Result<Vec<T>, StoreError> {
    let mut pages = client
        .query()
        .table_name(table)
        .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
        .expression_attribute_names("#pk", PK)
        .expression_attribute_names("#sk", SK)
        .expression_attribute_values(":pk", s(pk))
        .expression_attribute_values(":prefix", s(prefix))
        .consistent_read(true)
        .into_paginator()
        .items()
        .send();
    let mut out = Vec::new();
    while let Some(item) = pages.next().await {
        out.push(from_doc(&item.map_err(store_err("Query"))?)?);
    }
    Ok(out)
}

/// One item by key, strongly consistent; `None` if there is none.
pub(crate) async fn get_item(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    pk: String,
    sk: &str,
) -> Result<Option<Item>, StoreError> {
    let out = client
        .get_item()
        .table_name(table)
        .key(PK, s(pk))
        .key(SK, s(sk))
        .consistent_read(true)
        .send()
        .await
        .map_err(store_err("GetItem"))?;
    Ok(out.item)
}

/// Whether a conditional write was refused because its condition did not hold
/// (any operation: PutItem, UpdateItem, DeleteItem).
pub(crate) fn is_condition_failure<E, R>(e: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    e.as_service_error()
        .is_some_and(|s| s.code() == Some("ConditionalCheckFailedException"))
}

/// The reason codes of a transaction DynamoDB cancelled, one per item in order
/// (`"None"` for an item that was fine, `"ConditionalCheckFailed"` for a condition
/// that did not hold; empty when the service gave none), or `None` when the
/// transaction failed some other way.
pub(crate) fn cancellation_codes<R>(e: &SdkError<TransactWriteItemsError, R>) -> Option<Vec<&str>> {
    match e.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(t)) => Some(
            t.cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None"))
                .collect(),
        ),
        _ => None,
    }
}

/// The outcome of a conditional write: `Ok(true)` if it was applied, `Ok(false)` if its
/// condition did not hold, any other failure as a [`StoreError`] naming `operation`.
pub(crate) fn applied<T, E, R>(
    result: Result<T, SdkError<E, R>>,
    operation: &str,
) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if is_condition_failure(&e) => Ok(false),
        Err(e) => Err(StoreError::caused_by(operation, e)),
    }
}

#[async_trait]
impl Catalog for DynamoCatalog {
    async fn get_package(
        &self,
        repo: &RepoPath,
        filename: &str,
    ) -> Result<Option<PackageRecord>, StoreError> {
        self.get_item(repo_pk(repo), &package_sk(filename))
            .await?
            .map(|item| package_from_item(&item))
            .transpose()
    }

    async fn claim_package(&self, record: &PackageRecord) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(package_item(record)))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await;
        applied(result, "PutItem package")
    }

    async fn mark_ready(
        &self,
        repo: &RepoPath,
        filename: &str,
        event: &NewEvent,
    ) -> Result<(), StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .key(PK, s(repo_pk(repo)))
            .key(SK, s(package_sk(filename)))
            .update_expression("SET #st = :ready")
            .condition_expression("attribute_exists(#pk) AND #st <> :ready")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":ready", s("ready"))
            .build()
            .map_err(|e| StoreError::new("mark ready", e))?;
        let change = TransactWriteItem::builder().update(update).build();
        if self
            .commit_with_event(change, event, "TransactWriteItems mark ready")
            .await?
        {
            return Ok(());
        }
        // Already ready (a retried step committed it, and its event) is done; no
        // record at all is an error.
        match self.get_package(repo, filename).await? {
            Some(p) if p.status == PackageStatus::Ready => Ok(()),
            _ => Err(StoreError::new(
                "mark ready",
                format!("{repo} has no pending record {filename}"),
            )),
        }
    }

    async fn mark_deleting(
        &self,
        repo: &RepoPath,
        filename: &str,
        event: &NewEvent,
    ) -> Result<bool, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .key(PK, s(repo_pk(repo)))
            .key(SK, s(package_sk(filename)))
            .update_expression("SET #st = :deleting")
            .condition_expression("#st = :ready")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":ready", s("ready"))
            .expression_attribute_values(":deleting", s("deleting"))
            .build()
            .map_err(|e| StoreError::new("mark deleting", e))?;
        let change = TransactWriteItem::builder().update(update).build();
        self.commit_with_event(change, event, "TransactWriteItems mark deleting")
            .await
    }

    async fn delete_package(&self, repo: &RepoPath, filename: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(repo_pk(repo)))
            .key(SK, s(package_sk(filename)))
            .condition_expression("#st = :deleting")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":deleting", s("deleting"))
            .send()
            .await;
        // Not applied means already done (or never needed).
        applied(result, "DeleteItem package").map(|_| ())
    }

    async fn drop_claim(
        &self,
        repo: &RepoPath,
        filename: &str,
        sha256: &str,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(repo_pk(repo)))
            .key(SK, s(package_sk(filename)))
            .condition_expression("#st = :pending AND sha256 = :sha")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":sha", s(sha256))
            .send()
            .await;
        // Not applied means already done (or never needed).
        applied(result, "DeleteItem claim").map(|_| ())
    }

    async fn list_packages(&self, repo: &RepoPath) -> Result<Vec<PackageRecord>, StoreError> {
        self.query_kind(repo, PACKAGE_PREFIX, "Query packages", package_from_item)
            .await
    }

    async fn get_packages(
        &self,
        repo: &RepoPath,
        filenames: &[String],
    ) -> Result<Vec<PackageRecord>, StoreError> {
        let mut out = Vec::with_capacity(filenames.len());
        for chunk in filenames.chunks(BATCH_GET_MAX) {
            let keys: Vec<Item> = chunk
                .iter()
                .map(|f| {
                    HashMap::from([
                        (PK.to_string(), s(repo_pk(repo))),
                        (SK.to_string(), s(package_sk(f))),
                    ])
                })
                .collect();
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::new("BatchGetItem", e))?,
            );
            while let Some(request) = pending.take() {
                let resp = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(store_err("BatchGetItem packages"))?;
                for item in resp
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default()
                {
                    out.push(package_from_item(&item)?);
                }
                pending = resp
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .filter(|k| !k.keys().is_empty());
            }
        }
        Ok(out)
    }

    async fn note_change(&self, repo: &RepoPath, files: &[String]) -> Result<u64, StoreError> {
        // Optimistic concurrency: the increment and the change-log entry commit together,
        // so a reader that sees change_seq = N also finds the entries up to N.
        let now = now_secs();
        for attempt in 0..NOTE_CHANGE_ATTEMPTS {
            let current = self.repo_state(repo).await?.change_seq;
            let next = current + 1;
            let condition = if current == 0 {
                "attribute_not_exists(change_seq) OR change_seq = :cur"
            } else {
                "change_seq = :cur"
            };
            let update = Update::builder()
                .table_name(&self.table)
                .key(PK, s(repo_pk(repo)))
                .key(SK, s(STATE_SK))
                .update_expression("SET change_seq = :next")
                .condition_expression(condition)
                .expression_attribute_values(":cur", n(current))
                .expression_attribute_values(":next", n(next))
                .build()
                .map_err(|e| StoreError::new("note change", e))?;
            let files_value = AttributeValue::L(files.iter().map(s).collect());
            let put = Put::builder()
                .table_name(&self.table)
                .item(PK, s(repo_pk(repo)))
                .item(SK, s(change_sk(next)))
                .item("seq", n(next))
                .item("files", files_value)
                .item(TTL, n(now + CHANGE_TTL_SECS))
                .build()
                .map_err(|e| StoreError::new("note change", e))?;
            let result = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().update(update).build())
                .transact_items(TransactWriteItem::builder().put(put).build())
                .send()
                .await;
            match result {
                Ok(_) => return Ok(next),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_transaction_canceled_exception()) =>
                {
                    // Another upload took this number; back off a little and retry.
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => {
                    return Err(StoreError::caused_by("TransactWriteItems change", e));
                }
            }
        }
        Err(StoreError::new(
            "note change",
            format!("change_seq still contended after {NOTE_CHANGE_ATTEMPTS} attempts"),
        ))
    }

    async fn changes(
        &self,
        repo: &RepoPath,
        after: u64,
        upto: u64,
    ) -> Result<Vec<ChangeRecord>, StoreError> {
        if upto <= after {
            return Ok(Vec::new());
        }
        let items = self
            .query_suite(
                repo,
                "#sk BETWEEN :from AND :to",
                vec![
                    (":from", s(change_sk(after + 1))),
                    (":to", s(change_sk(upto))),
                ],
                "Query changes",
            )
            .await?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            // An unreadable entry must fail the sync (and be retried or reported):
            // reading it as "no files" would publish without the change.
            let unreadable = || {
                StoreError::new(
                    "decode change",
                    format!("change {:?} has no readable files list", item.get(SK)),
                )
            };
            let files = match item.get("files") {
                Some(AttributeValue::L(values)) => values
                    .iter()
                    .map(|v| v.as_s().cloned().map_err(|_| unreadable()))
                    .collect::<Result<Vec<_>, _>>()?,
                _ => return Err(unreadable()),
            };
            out.push(ChangeRecord {
                seq: get_n(&item, "seq")?,
                files,
            });
        }
        Ok(out)
    }

    async fn repo_state(&self, repo: &RepoPath) -> Result<RepoState, StoreError> {
        let Some(item) = self.get_item(repo_pk(repo), STATE_SK).await? else {
            return Ok(RepoState::default());
        };
        Ok(RepoState {
            change_seq: get_n_or_zero(&item, "change_seq")?,
            published_seq: get_n_or_zero(&item, "published_seq")?,
            publish_count: get_n_or_zero(&item, "publish_count")?,
            release_sha256: get_opt_s(&item, "release_sha256"),
            published_at: item
                .contains_key("published_at")
                .then(|| get_n(&item, "published_at"))
                .transpose()?,
            referenced: match item.get("referenced") {
                Some(AttributeValue::L(keys)) => {
                    keys.iter().filter_map(|k| k.as_s().ok().cloned()).collect()
                }
                _ => Vec::new(),
            },
            swept_at: item
                .contains_key("swept_at")
                .then(|| get_n(&item, "swept_at"))
                .transpose()?,
        })
    }

    async fn record_publish(
        &self,
        repo: &RepoPath,
        state: &RepoState,
        event: &NewEvent,
    ) -> Result<bool, StoreError> {
        let swept = if state.swept_at.is_some() {
            ", swept_at = :swept"
        } else {
            ""
        };
        let mut update = Update::builder()
            .table_name(&self.table)
            .key(PK, s(repo_pk(repo)))
            .key(SK, s(STATE_SK))
            .update_expression(format!(
                "SET published_seq = :seq, release_sha256 = :sha, published_at = :at, \
                 referenced = :refs{swept} ADD publish_count :one"
            ))
            .condition_expression(
                "attribute_not_exists(published_seq) OR published_seq < :seq \
                 OR attribute_not_exists(release_sha256)",
            )
            .expression_attribute_values(":seq", n(state.published_seq))
            .expression_attribute_values(
                ":sha",
                s(state.release_sha256.clone().unwrap_or_default()),
            )
            .expression_attribute_values(":at", n(state.published_at.unwrap_or_default()))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(
                ":refs",
                AttributeValue::L(state.referenced.iter().map(s).collect()),
            );
        if let Some(at) = state.swept_at {
            update = update.expression_attribute_values(":swept", n(at));
        }
        let update = update
            .build()
            .map_err(|e| StoreError::new("record publish", e))?;
        let change = TransactWriteItem::builder().update(update).build();
        self.commit_with_event(change, event, "TransactWriteItems publish")
            .await
    }

    async fn note_superseded(
        &self,
        repo: &RepoPath,
        keys: &[String],
        at: i64,
    ) -> Result<(), StoreError> {
        let requests = keys
            .iter()
            .map(|key| {
                let put = PutRequest::builder()
                    .item(PK, s(repo_pk(repo)))
                    .item(SK, s(superseded_sk(key)))
                    .item("key", s(key))
                    .item("superseded_at", n(at))
                    .build()
                    .map_err(|e| StoreError::new("PutRequest", e))?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.batch_write(requests).await
    }

    async fn forget_superseded(&self, repo: &RepoPath, keys: &[String]) -> Result<(), StoreError> {
        let requests = keys
            .iter()
            .map(|key| {
                let delete = DeleteRequest::builder()
                    .key(PK, s(repo_pk(repo)))
                    .key(SK, s(superseded_sk(key)))
                    .build()
                    .map_err(|e| StoreError::new("DeleteRequest", e))?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.batch_write(requests).await
    }

    async fn superseded(
        &self,
        repo: &RepoPath,
        before: i64,
    ) -> Result<Vec<Superseded>, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .filter_expression("superseded_at < :before")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(repo_pk(repo)))
            .expression_attribute_values(":prefix", s(SUPERSEDED_PREFIX))
            .expression_attribute_values(":before", n(before))
            .into_paginator()
            .items()
            .send();
        let mut out = Vec::new();
        while let Some(item) = query.next().await {
            let item = item.map_err(store_err("Query superseded"))?;
            out.push(Superseded {
                key: get_s(&item, "key")?,
                at: get_n(&item, "superseded_at")?,
            });
        }
        Ok(out)
    }

    async fn claim_file(
        &self,
        repo: &RepoPath,
        file: &PoolFile,
        owner: &str,
    ) -> Result<FileClaim, StoreError> {
        // Two tries: a claim refused because the object was being deleted may find
        // the claim forgotten by the time it is read back.
        for _ in 0..2 {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(PK, s(repo_pk(repo)))
                .key(SK, s(file_sk(&file.key)))
                .update_expression(
                    "SET sha256 = if_not_exists(sha256, :sha), #size = if_not_exists(#size, :size), \
                     #key = if_not_exists(#key, :key) ADD owners :owner",
                )
                .condition_expression(
                    "attribute_not_exists(#pk) OR (sha256 = :sha AND attribute_not_exists(deleting))",
                )
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#size", "size")
                .expression_attribute_names("#key", "key")
                .expression_attribute_values(":sha", s(&file.sha256))
                .expression_attribute_values(":size", n(file.size))
                .expression_attribute_values(":key", s(&file.key))
                .expression_attribute_values(":owner", AttributeValue::Ss(vec![owner.to_string()]))
                .send()
                .await;
            match result {
                Ok(_) => return Ok(FileClaim::Claimed),
                Err(e) if is_condition_failure(&e) => {}
                Err(e) => {
                    return Err(StoreError::caused_by("UpdateItem claim file", e));
                }
            }
            let Some(item) = self.get_item(repo_pk(repo), &file_sk(&file.key)).await? else {
                continue;
            };
            let held = file_from_item(&item)?;
            if held.deleting_since.is_some() {
                return Ok(FileClaim::Deleting);
            }
            if held.file.sha256 != file.sha256 {
                return Ok(FileClaim::Taken {
                    sha256: held.file.sha256,
                });
            }
        }
        Ok(FileClaim::Deleting)
    }

    async fn release_file(
        &self,
        repo: &RepoPath,
        key: &str,
        owner: &str,
    ) -> Result<Release, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(repo_pk(repo)))
            .key(SK, s(file_sk(key)))
            .update_expression("DELETE owners :owner")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":owner", AttributeValue::Ss(vec![owner.to_string()]))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let remaining = match result {
            Ok(out) => out.attributes.unwrap_or_default(),
            Err(e) if is_condition_failure(&e) => return Ok(Release::Gone),
            Err(e) => {
                return Err(StoreError::caused_by("UpdateItem release file", e));
            }
        };
        // DynamoDB removes a set attribute when its last member goes.
        if remaining.contains_key("owners") {
            return Ok(Release::StillOwned);
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(repo_pk(repo)))
            .key(SK, s(file_sk(key)))
            .update_expression("SET deleting = if_not_exists(deleting, :now)")
            .condition_expression("attribute_exists(#pk) AND attribute_not_exists(owners)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":now", n(now_secs()))
            .send()
            .await;
        // Not applied: claimed again in between (or forgotten), not ours to delete.
        Ok(if applied(result, "UpdateItem mark file deleting")? {
            Release::Unowned
        } else {
            Release::StillOwned
        })
    }

    async fn forget_file(&self, repo: &RepoPath, key: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(repo_pk(repo)))
            .key(SK, s(file_sk(key)))
            .condition_expression("attribute_exists(deleting) AND attribute_not_exists(owners)")
            .send()
            .await;
        // Not applied means already done (or never needed).
        applied(result, "DeleteItem file claim").map(|_| ())
    }

    async fn list_files(&self, repo: &RepoPath) -> Result<Vec<FileRecord>, StoreError> {
        self.query_kind(repo, FILE_PREFIX, "Query file claims", file_from_item)
            .await
    }
}

#[async_trait]
impl UserDirectory for DynamoCatalog {
    async fn get_user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        let Some(item) = self.get_item(user_pk(name), USER_SK).await? else {
            return Ok(None);
        };
        let role = match item.get("role").and_then(|v| v.as_s().ok()) {
            Some(role) => Role::parse(role).map_err(|e| StoreError::new("decode user", e))?,
            None => Role::default(),
        };
        Ok(Some(UserRecord {
            name: get_s(&item, "name")?,
            password_hash: get_s(&item, "password_hash")?,
            role,
            tokens_after: get_n(&item, "tokens_after").unwrap_or(0),
            selectors: item
                .get("selectors")
                .and_then(|v| v.as_l().ok())
                .map(|list| list.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
                .unwrap_or_default(),
        }))
    }

    async fn put_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(user_pk(&user.name)))
            .item(SK, s(USER_SK))
            .item("name", s(&user.name))
            .item("password_hash", s(&user.password_hash))
            .item("role", s(user.role.as_str()))
            .item("tokens_after", n(user.tokens_after))
            .item(
                "selectors",
                AttributeValue::L(user.selectors.iter().map(s).collect()),
            )
            .send()
            .await
            .map_err(store_err("PutItem user"))?;
        Ok(())
    }
}

#[async_trait]
impl UploadLedger for DynamoCatalog {
    async fn put_ticket(&self, t: &UploadTicket) -> Result<(), StoreError> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(upload_pk(&t.id)))
            .item(SK, s(UPLOAD_SK))
            .item("repo", s(t.repo.to_string()))
            .item("filename", s(&t.filename))
            .item("uploader", s(&t.uploader))
            .item("status", s(t.status.as_str()))
            .item("created_at", n(t.created_at))
            .item(TTL, n(t.created_at + TICKET_TTL_SECS))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK);
        if let Some(p) = &t.product {
            req = req.item("product", s(p));
        }
        req.send().await.map_err(store_err("PutItem upload"))?;
        Ok(())
    }

    async fn get_ticket(&self, id: &str) -> Result<Option<UploadTicket>, StoreError> {
        let Some(item) = self.get_item(upload_pk(id), UPLOAD_SK).await? else {
            return Ok(None);
        };
        Ok(Some(UploadTicket {
            id: id.to_string(),
            repo: RepoPath::parse(&get_s(&item, "repo")?)
                .map_err(|e| StoreError::new("decode upload", e))?,
            product: get_opt_s(&item, "product"),
            filename: get_s(&item, "filename")?,
            uploader: get_s(&item, "uploader")?,
            status: UploadStatus::parse(&get_s(&item, "status")?)?,
            message: get_opt_s(&item, "message"),
            created_at: get_n(&item, "created_at")?,
        }))
    }

    async fn take_ticket(&self, id: &str, token: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(upload_pk(id)))
            .key(SK, s(UPLOAD_SK))
            .update_expression("SET #st = :ingesting, #token = :token")
            .condition_expression("#st = :waiting OR (#st = :ingesting AND #token = :token)")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#token", "object_token")
            .expression_attribute_values(":waiting", s(UploadStatus::Waiting.as_str()))
            .expression_attribute_values(":ingesting", s(UploadStatus::Ingesting.as_str()))
            .expression_attribute_values(":token", s(token))
            .send()
            .await;
        applied(result, "UpdateItem take upload")
    }

    async fn finish_ticket(
        &self,
        id: &str,
        status: UploadStatus,
        message: &str,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(upload_pk(id)))
            .key(SK, s(UPLOAD_SK))
            .update_expression("SET #st = :st, message = :msg")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":st", s(status.as_str()))
            .expression_attribute_values(":msg", s(message))
            .send()
            .await
            .map_err(store_err("UpdateItem upload"))?;
        Ok(())
    }
}
