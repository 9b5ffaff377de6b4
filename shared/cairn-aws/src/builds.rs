//! Projects, builds and the worker queue in the single table; build logs in the
//! build bucket.
//!
//! A project is one item of the `PROJECTS` partition, its concurrency slots beside
//! its document (`running`: a string set of build ids, `waiting`: a list, oldest
//! first), so a definition change and a slot change touch different attributes. A
//! build is its own item (`BUILD#<id>`/`BUILD`) and a copy in its project's listing
//! (`PROJECT#<name>`/`BUILD#<created>#<id>`), written together. A job waiting for
//! a worker is an item of the `JOBQ` partition, oldest first; a worker takes it by
//! deleting it in the same transaction that records the claim.

use crate::dynamo::{
    DynamoCatalog, Item, applied, from_doc, get_item, get_n, get_s, n, query_docs, s, store_err,
};
use crate::keys::{
    BUILD_PREFIX, BUILD_SK, JOBQ_PK, PK, PROJECT_PREFIX, PROJECTS_PK, SCHEDULES_PK, SK, build_pk,
    job_sk, listeners_pk, log_key, project_build_sk, project_builds_pk, schedule_sk,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use bytes::Bytes;
use cairn_core::StoreError;
use cairn_core::builds::{
    Build, BuildChange, BuildStore, Job, LogStore, Project, ScheduleEntry, SlotChange, Slots, Ticks,
};
use cairn_core::events::NewEvent;

fn project_sk(name: &str) -> String {
    format!("{PROJECT_PREFIX}{name}")
}

fn doc<T: serde::Serialize>(value: &T, operation: &str) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::new(operation, e))
}

fn slots_of(item: &Item) -> Slots {
    let running = match item.get("running") {
        Some(AttributeValue::Ss(ids)) => ids.clone(),
        _ => Vec::new(),
    };
    let waiting = match item.get("waiting") {
        Some(AttributeValue::L(ids)) => ids.iter().filter_map(|v| v.as_s().ok().cloned()).collect(),
        _ => Vec::new(),
    };
    Slots { running, waiting }
}

impl DynamoCatalog {
    fn slot_update(
        &self,
        project: &str,
        id: &str,
        slot: &SlotChange,
    ) -> Result<Option<Update>, StoreError> {
        let op = "slot change";
        let base = Update::builder()
            .table_name(&self.table)
            .key(PK, s(PROJECTS_PK))
            .key(SK, s(project_sk(project)));
        let update = match slot {
            SlotChange::Keep => return Ok(None),
            SlotChange::Wait => base
                .update_expression("SET waiting = list_append(if_not_exists(waiting, :empty), :one)")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":empty", AttributeValue::L(Vec::new()))
                .expression_attribute_values(":one", AttributeValue::L(vec![s(id)])),
            SlotChange::TakeFirst { limit } => base
                .update_expression("REMOVE waiting[0] ADD running :set")
                .condition_expression(
                    "waiting[0] = :id AND (attribute_not_exists(running) OR size(running) < :limit)",
                )
                .expression_attribute_values(":id", s(id))
                .expression_attribute_values(":set", AttributeValue::Ss(vec![id.to_string()]))
                .expression_attribute_values(":limit", n(*limit)),
            SlotChange::DropFirst => base
                .update_expression("REMOVE waiting[0]")
                .condition_expression("waiting[0] = :id")
                .expression_attribute_values(":id", s(id)),
            SlotChange::Release => base
                .update_expression("DELETE running :set")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":set", AttributeValue::Ss(vec![id.to_string()])),
        };
        update.build().map(Some).map_err(|e| StoreError::new(op, e))
    }
}

#[async_trait]
impl BuildStore for DynamoCatalog {
    async fn get_project(&self, name: &str) -> Result<Option<Project>, StoreError> {
        get_item(
            &self.client,
            &self.table,
            PROJECTS_PK.to_string(),
            &project_sk(name),
        )
        .await?
        .map(|item| from_doc(&item))
        .transpose()
    }

    async fn put_project(&self, project: &Project) -> Result<bool, StoreError> {
        let op = "UpdateItem project";
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(PROJECTS_PK))
            .key(SK, s(project_sk(&project.name)))
            .update_expression("SET doc = :doc, version = :version")
            .expression_attribute_values(":doc", s(doc(project, op)?))
            .expression_attribute_values(":version", n(project.version));
        update = if project.version == 1 {
            update.condition_expression("attribute_not_exists(version)")
        } else {
            update
                .condition_expression("version = :previous")
                .expression_attribute_values(":previous", n(project.version - 1))
        };
        crate::dynamo::applied(update.send().await, op)
    }

    async fn list_projects(&self) -> Result<Vec<Project>, StoreError> {
        query_docs(
            &self.client,
            &self.table,
            PROJECTS_PK.to_string(),
            PROJECT_PREFIX,
        )
        .await
    }

    async fn slots(&self, project: &str) -> Result<Slots, StoreError> {
        Ok(get_item(
            &self.client,
            &self.table,
            PROJECTS_PK.to_string(),
            &project_sk(project),
        )
        .await?
        .map(|item| slots_of(&item))
        .unwrap_or_default())
    }

    async fn get_build(&self, id: &str) -> Result<Option<Build>, StoreError> {
        get_item(&self.client, &self.table, build_pk(id), BUILD_SK)
            .await?
            .map(|item| from_doc(&item))
            .transpose()
    }

    async fn list_builds(&self, project: &str, limit: usize) -> Result<Vec<Build>, StoreError> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(project_builds_pk(project)))
            .expression_attribute_values(":prefix", s(BUILD_PREFIX))
            .scan_index_forward(false)
            .limit(i32::try_from(limit.clamp(1, 100)).unwrap_or(100))
            .send()
            .await
            .map_err(store_err("Query builds"))?;
        page.items().iter().map(from_doc).collect()
    }

    async fn commit(&self, change: BuildChange<'_>) -> Result<bool, StoreError> {
        let op = "TransactWriteItems build";
        let build = change.build;
        let body = doc(build, op)?;
        let mut own = Put::builder()
            .table_name(&self.table)
            .item(PK, s(build_pk(&build.id)))
            .item(SK, s(BUILD_SK))
            .item("doc", s(&body))
            .item("version", n(build.version));
        own = if build.version == 1 {
            own.condition_expression("attribute_not_exists(pk)")
        } else {
            own.condition_expression("version = :previous")
                .expression_attribute_values(":previous", n(build.version - 1))
        };
        let listing = Put::builder()
            .table_name(&self.table)
            .item(PK, s(project_builds_pk(&build.project)))
            .item(SK, s(project_build_sk(build.created_at, &build.id)))
            .item("doc", s(&body))
            .item("version", n(build.version));
        let mut items = vec![
            TransactWriteItem::builder()
                .put(own.build().map_err(|e| StoreError::new(op, e))?)
                .build(),
            TransactWriteItem::builder()
                .put(listing.build().map_err(|e| StoreError::new(op, e))?)
                .build(),
        ];
        if let Some(update) = self.slot_update(&build.project, &build.id, &change.slot)? {
            items.push(TransactWriteItem::builder().update(update).build());
        }
        for job in &change.queued {
            let put = Put::builder()
                .table_name(&self.table)
                .item(PK, s(JOBQ_PK))
                .item(SK, s(job_sk(job.queued_at, &job.id)))
                .item("doc", s(doc(job, op)?))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(|e| StoreError::new(op, e))?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        for job in &change.unqueued {
            let delete = Delete::builder()
                .table_name(&self.table)
                .key(PK, s(JOBQ_PK))
                .key(SK, s(job_sk(job.queued_at, &job.id)))
                .condition_expression("attribute_exists(pk)")
                .build()
                .map_err(|e| StoreError::new(op, e))?;
            items.push(TransactWriteItem::builder().delete(delete).build());
        }
        self.commit_with_events(items, &change.events, op).await
    }

    async fn queued_jobs(&self, limit: usize) -> Result<Vec<Job>, StoreError> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", s(JOBQ_PK))
            .consistent_read(true)
            .limit(i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000))
            .send()
            .await
            .map_err(store_err("Query jobs"))?;
        page.items().iter().map(from_doc).collect()
    }

    async fn set_listener(
        &self,
        subject: &str,
        project: &str,
        version: u64,
        on: bool,
    ) -> Result<(), StoreError> {
        let (pk, sk) = (listeners_pk(subject), project_sk(project));
        // A newer version's item stays as it is (refused: not an error).
        let written = if on {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .item(PK, s(pk))
                .item(SK, s(sk))
                .item("doc", s(doc(&project, "PutItem listener")?))
                .item(VERSION, n(version))
                .condition_expression(NOT_NEWER)
                .expression_attribute_names("#v", VERSION)
                .expression_attribute_values(":v", n(version))
                .send()
                .await;
            applied(result, "PutItem listener")
        } else {
            let result = self
                .client
                .delete_item()
                .table_name(&self.table)
                .key(PK, s(pk))
                .key(SK, s(sk))
                .condition_expression(NOT_NEWER)
                .expression_attribute_names("#v", VERSION)
                .expression_attribute_values(":v", n(version))
                .send()
                .await;
            applied(result, "DeleteItem listener")
        };
        written.map(|_| ())
    }

    async fn listeners(&self, subject: &str) -> Result<Vec<String>, StoreError> {
        // Strongly consistent: a listener written just before its project is seen.
        query_docs(
            &self.client,
            &self.table,
            listeners_pk(subject),
            PROJECT_PREFIX,
        )
        .await
    }

    async fn put_schedule(&self, entry: &ScheduleEntry) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .set_item(Some(schedule_item(entry)))
            .table_name(&self.table)
            .condition_expression(NOT_NEWER)
            .expression_attribute_names("#v", VERSION)
            .expression_attribute_values(":v", n(entry.version))
            .send()
            .await;
        applied(result, "PutItem schedule").map(|_| ())
    }

    async fn due_schedules(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<Vec<ScheduleEntry>, StoreError> {
        // Every key of a time up to `now` sorts before the next second's.
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND #sk < :before")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(SCHEDULES_PK))
            .expression_attribute_values(":before", s(format!("{:012}", now + 1)))
            .consistent_read(true)
            .limit(i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000))
            .send()
            .await
            .map_err(store_err("Query schedules"))?;
        page.items()
            .iter()
            .map(|item| {
                Ok(ScheduleEntry {
                    project: get_s(item, "project")?,
                    cron: get_s(item, "cron")?,
                    at: get_n(item, "at")?,
                    // Entries from before versions were kept count as the oldest.
                    version: get_n(item, VERSION).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn move_schedule(
        &self,
        entry: &ScheduleEntry,
        next: Option<&ScheduleEntry>,
    ) -> Result<bool, StoreError> {
        let op = "TransactWriteItems schedule";
        let delete = Delete::builder()
            .table_name(&self.table)
            .key(PK, s(SCHEDULES_PK))
            .key(SK, s(schedule_sk(entry.at, &entry.project, &entry.cron)))
            .condition_expression(format!("attribute_exists(pk) AND ({NOT_NEWER})"))
            .expression_attribute_names("#v", VERSION)
            .expression_attribute_values(":v", n(entry.version))
            .build()
            .map_err(|e| StoreError::new(op, e))?;
        let mut items = vec![TransactWriteItem::builder().delete(delete).build()];
        if let Some(next) = next {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(schedule_item(next)))
                .build()
                .map_err(|e| StoreError::new(op, e))?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        self.commit_with_events(items, &[], op).await
    }

    async fn commit_events(&self, events: &[NewEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        self.commit_with_events(Vec::new(), events, "TransactWriteItems events")
            .await
            .map(|_| ())
    }
}

fn schedule_item(entry: &ScheduleEntry) -> Item {
    Item::from([
        (PK.to_string(), s(SCHEDULES_PK)),
        (
            SK.to_string(),
            s(schedule_sk(entry.at, &entry.project, &entry.cron)),
        ),
        ("project".to_string(), s(&entry.project)),
        ("cron".to_string(), s(&entry.cron)),
        ("at".to_string(), n(entry.at)),
        (VERSION.to_string(), n(entry.version)),
    ])
}

/// The project version that wrote a listener or schedule entry.
const VERSION: &str = "project_version";
/// The condition of a write over a listener or schedule entry: none there, or one of
/// the same or an older project version (`#v`, `:v`).
const NOT_NEWER: &str = "attribute_not_exists(#v) OR #v <= :v";

/// Build logs: one object per chunk, keyed by the byte offset it starts at.
pub struct S3Logs {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Logs {
    /// Logs in `bucket`.
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }
}

#[async_trait]
impl LogStore for S3Logs {
    async fn put_chunk(
        &self,
        build: &str,
        step: usize,
        offset: u64,
        bytes: Bytes,
    ) -> Result<(), StoreError> {
        let key = log_key(build, step, offset);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("text/plain; charset=utf-8")
            .body(bytes.into())
            .send()
            .await
            .map_err(|e| StoreError::caused_by(format!("PutObject {key}"), e))?;
        Ok(())
    }

    async fn chunk_offsets(&self, build: &str, step: usize) -> Result<Vec<u64>, StoreError> {
        let prefix = format!("logs/{build}/{step:03}/");
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&prefix)
            .into_paginator()
            .send();
        let mut offsets = Vec::new();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| StoreError::caused_by(format!("ListObjectsV2 {prefix}"), e))?;
            for object in page.contents() {
                if let Some(offset) = object
                    .key()
                    .and_then(|k| k.strip_prefix(&prefix))
                    .and_then(|k| k.parse().ok())
                {
                    offsets.push(offset);
                }
            }
        }
        offsets.sort_unstable();
        Ok(offsets)
    }

    async fn get_chunk(
        &self,
        build: &str,
        step: usize,
        offset: u64,
    ) -> Result<Option<Bytes>, StoreError> {
        let key = log_key(build, step, offset);
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
        {
            Ok(out) => {
                let body = out
                    .body
                    .collect()
                    .await
                    .map_err(|e| StoreError::caused_by(format!("GetObject {key}"), e))?;
                Ok(Some(body.into_bytes()))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(StoreError::caused_by(format!("GetObject {key}"), e)),
        }
    }
}

/// The build queue: the controller's clock (a message per look at a build, delayed),
/// its dispatch requests, and the events the webhook dispatcher hands over.
pub struct SqsTicks {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    delay_secs: u64,
}

impl SqsTicks {
    /// Looks `delay_secs` (at most 15 minutes) after each request, on `queue_url`.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>, delay_secs: u64) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
            delay_secs: delay_secs.min(900),
        }
    }
}

/// Body of a build-queue message.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TickMessage {
    /// The build to look at (empty for an event).
    #[serde(default)]
    pub build: String,
    /// An event that may start builds (`Builds::on_event`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<cairn_core::events::Event>,
    /// Only give its queued build-step Lambda jobs to the build-step Lambda (no look
    /// at leases, no next tick).
    #[serde(default)]
    pub dispatch: bool,
}

#[async_trait]
impl Ticks for SqsTicks {
    async fn schedule(&self, id: &str) {
        let body = serde_json::json!({"build": id}).to_string();
        let sent = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .delay_seconds(i32::try_from(self.delay_secs).unwrap_or(900))
            .send()
            .await;
        if let Err(e) = sent {
            tracing::warn!(build = id, error = %StoreError::caused_by("SendMessage tick", e), "could not schedule a look at the build");
        }
    }

    async fn dispatch(&self, id: &str) {
        let body = serde_json::json!({"build": id, "dispatch": true}).to_string();
        let sent = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await;
        if let Err(e) = sent {
            tracing::warn!(build = id, error = %StoreError::caused_by("SendMessage dispatch", e), "could not ask for a dispatch");
        }
    }
}

#[async_trait]
impl cairn_core::builds::TriggerQueue for SqsTicks {
    async fn hand_over(&self, events: &[cairn_core::events::Event]) -> Result<(), StoreError> {
        for event in events {
            let body = serde_json::json!({"event": event}).to_string();
            self.client
                .send_message()
                .queue_url(&self.queue_url)
                .message_body(body)
                .send()
                .await
                .map_err(|e| StoreError::caused_by("SendMessage event", e))?;
        }
        Ok(())
    }
}

/// The build-step Lambda's queue: one message per job the controller took for it.
pub struct SqsSteps {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsSteps {
    /// Sends jobs to `queue_url`.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

#[async_trait]
impl cairn_core::builds::StepRunner for SqsSteps {
    async fn run(&self, job: &serde_json::Value) -> Result<(), StoreError> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(job.to_string())
            // A FIFO queue, deduplicated by job: one job is never sent twice.
            .message_group_id(job["job"].as_str().unwrap_or("job"))
            .message_deduplication_id(job["job"].as_str().unwrap_or("job"))
            .send()
            .await
            .map_err(|e| StoreError::caused_by("SendMessage build step", e))?;
        Ok(())
    }
}
