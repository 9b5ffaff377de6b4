//! What the catalog keeps about archives and operations, and the ports to it.

use crate::tree::Submodule;
use async_trait::async_trait;
use cairn_callback::Callback;
use cairn_core::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One archived tree of a repository: immutable once claimed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedTree {
    /// Internal repository.
    pub name: String,
    /// Tree id (hex).
    pub tree: String,
    /// Archive commit id (hex).
    pub commit: String,
    /// Tag naming the commit (`cairn-<commit>`).
    pub tag: String,
    /// Stem of the pack holding the tree.
    pub pack: String,
    /// The first origin it was archived from.
    pub origin_url: String,
    /// The ref asked for then.
    pub origin_ref: String,
    /// The origin commit it came from then.
    pub origin_commit: String,
    /// Gitlinks recorded in the tree.
    pub submodules: Vec<Submodule>,
    /// Files in the tree.
    pub files: u64,
    /// RFC 3339.
    pub created_at: String,
    /// Whether its tag is in `info/refs` (set after the index files are written).
    pub published: bool,
    /// The build job whose workspace it was archived from (an adjusted tree), when
    /// it did not come from an origin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub made_by: Option<MadeBy>,
}

/// The build job a tree came from (`POST /v1/archives/{name}/workspace`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MadeBy {
    /// The project.
    pub project: String,
    /// The build.
    pub build: String,
    /// The job.
    pub job: String,
    /// The step's index in the build.
    pub step: usize,
    /// The tag of the tree the build archived under the same name before this step
    /// (what the steps in between adjusted), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjusted_from: Option<String>,
}

/// A ref published in a repository's `info/refs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedRef {
    /// Full ref name.
    pub name: String,
    /// Object id (hex): a commit or an annotated tag.
    pub target: String,
    /// The commit an annotated tag peels to.
    pub peeled: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

/// A pack in a repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackRecord {
    /// `pack-<checksum>`.
    pub stem: String,
    /// Objects in it.
    pub objects: u64,
    /// Size of the `.pack`.
    pub bytes: u64,
}

/// The result of a conditional ref write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefWrite {
    /// The ref is new.
    Created,
    /// It existed with the same target.
    Unchanged,
    /// It exists with another target: published refs never move.
    Conflict(PublishedRef),
}

/// Which place an archive name's writes are for: the name's catalog items and
/// files belong either to no repository (public, anyone with the `archive` scope
/// adds to them) or to the archive repository record that claimed the name, whose
/// `storage` says where its files are.
///
/// A claim is an item of the name's partition that creating the archive
/// repository writes and deleting it removes; every catalog write that can be a
/// name's first item carries a condition on it, so an operation that started
/// before a claim changed cannot write where the name's files no longer are
/// (docs/data-model.md, "Archive name claims").
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Claim {
    /// No repository record claims the name.
    #[default]
    Unclaimed,
    /// The archive repository whose record has this `storage` claims it.
    Repository(String),
}

impl Claim {
    /// The claim of archive repository `record` (`None`: the name is unclaimed).
    pub fn of(record: Option<&cairn_core::repositories::Repository>) -> Self {
        match record {
            Some(r) => Claim::Repository(r.storage.clone()),
            None => Claim::Unclaimed,
        }
    }
}

/// The [`StoreError::operation`] of a write refused because the name's claim is
/// not the one the writer was made for.
pub const CLAIM_CHANGED: &str = "archive name claim";

/// The error of a write refused because archive name `name` was claimed by a
/// repository, or released by one, after the writer started.
pub fn claim_changed(name: &str) -> StoreError {
    StoreError::new(
        CLAIM_CHANGED,
        format!(
            "archive name {name} was claimed by an archive repository, or its repository \
             was deleted, while this operation ran: nothing was recorded; send the request \
             again"
        ),
    )
}

/// Archive records in the catalog.
///
/// The writes that can be a name's first item (`claim_tree`, `remember_origin`,
/// `put_ref`, `add_pack`) fail with [`claim_changed`] when the name's claim is not
/// this catalog's [`Claim`]. Once a name has any item its claim no longer changes
/// (a claim and a repository deletion both need an empty name), so the later
/// writes need no such check.
#[async_trait]
pub trait ArchiveCatalog: Send + Sync {
    /// The same catalog, writing for `claim`.
    fn under(&self, claim: Claim) -> std::sync::Arc<dyn ArchiveCatalog>;
    /// The archive of `tree` in `name`, if any.
    async fn tree(&self, name: &str, tree: &str) -> Result<Option<ArchivedTree>, StoreError>;
    /// Claims `record.tree` for `record`: `None` if the claim succeeded, the
    /// existing record if the tree was archived first by someone else.
    async fn claim_tree(&self, record: &ArchivedTree) -> Result<Option<ArchivedTree>, StoreError>;
    /// Notes that the tree's tag is published and commits `event` (`archive.created`)
    /// with it; a tree already marked is left alone, with no second event.
    async fn mark_published(
        &self,
        name: &str,
        tree: &str,
        event: &cairn_core::events::NewEvent,
    ) -> Result<(), StoreError>;
    /// Every archived tree of `name`.
    async fn trees(&self, name: &str) -> Result<Vec<ArchivedTree>, StoreError>;
    /// The tree an origin object (commit or tag) was found to have before.
    async fn origin_tree(
        &self,
        name: &str,
        origin_object: &str,
    ) -> Result<Option<String>, StoreError>;
    /// Remembers that an origin object has `tree` (object ids never change meaning).
    async fn remember_origin(
        &self,
        name: &str,
        origin_object: &str,
        tree: &str,
    ) -> Result<(), StoreError>;
    /// Writes a ref unless it exists.
    async fn put_ref(&self, repo: &str, r: &PublishedRef) -> Result<RefWrite, StoreError>;
    /// Every ref of `repo`.
    async fn refs(&self, repo: &str) -> Result<Vec<PublishedRef>, StoreError>;
    /// Records a pack (idempotent).
    async fn add_pack(&self, repo: &str, pack: &PackRecord) -> Result<(), StoreError>;
    /// Every pack of `repo`.
    async fn packs(&self, repo: &str) -> Result<Vec<PackRecord>, StoreError>;
}

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperationKind {
    /// `POST /v1/archives`.
    Archive,
    /// `POST /clone`.
    Clone,
    /// `POST /v1/archives/{name}/workspace`.
    Workspace,
}

/// Where an operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperationStatus {
    /// Waiting in the queue.
    Queued,
    /// A worker has it.
    Running,
    /// Finished with a 2xx result.
    Succeeded,
    /// Finished with an error result.
    Failed,
    /// Cancelled while queued.
    Cancelled,
}

impl OperationStatus {
    /// Whether the operation has ended.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            OperationStatus::Succeeded | OperationStatus::Failed | OperationStatus::Cancelled
        )
    }

    /// Lower-case name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationStatus::Queued => "queued",
            OperationStatus::Running => "running",
            OperationStatus::Succeeded => "succeeded",
            OperationStatus::Failed => "failed",
            OperationStatus::Cancelled => "cancelled",
        }
    }
}

/// An asynchronous request and, once it ended, its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    /// Id (a UUID).
    pub id: String,
    /// What it does.
    pub kind: OperationKind,
    /// Where it is.
    pub status: OperationStatus,
    /// The internal repository it works on (its queue group).
    pub name: String,
    /// The request body (callback included).
    pub request: Value,
    /// Who asked.
    pub owner: String,
    /// Where to send the result.
    pub callback: Option<Callback>,
    /// The HTTP status of the result, once ended.
    pub http_status: Option<u16>,
    /// The result body (or problem body), once ended.
    pub result: Option<Value>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// Callback delivery: `pending`, `delivered` or `failed`.
    pub delivery: Option<String>,
}

/// One recorded callback attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// 1 for the first attempt.
    pub attempt: u32,
    /// RFC 3339.
    pub at: String,
    /// The receiver's status, if it answered.
    pub http_status: Option<u16>,
    /// What went wrong otherwise.
    pub error: Option<String>,
    /// Wall time.
    pub duration_ms: u64,
}

/// How a conditional state change turned out.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// Done; the operation as it now is.
    Done(Operation),
    /// The operation was not in the required state; as it is.
    Refused(Operation),
    /// No such operation.
    Missing,
}

/// Operation records.
#[async_trait]
pub trait OperationStore: Send + Sync {
    /// Stores a new (queued) operation.
    async fn create(&self, op: &Operation) -> Result<(), StoreError>;
    /// Reads one.
    async fn get(&self, id: &str) -> Result<Option<Operation>, StoreError>;
    /// `queued` -> `running`.
    async fn start(&self, id: &str) -> Result<Transition, StoreError>;
    /// `queued` -> `cancelled`, with its result, committing `event`
    /// (`operation.finished`) with it.
    async fn cancel(
        &self,
        id: &str,
        result: &Value,
        event: &cairn_core::events::NewEvent,
    ) -> Result<Transition, StoreError>;
    /// Records the end (status, HTTP status and body) and commits `event`
    /// (`operation.finished`) with it; an operation already finished is left alone,
    /// with no second event.
    async fn finish(
        &self,
        id: &str,
        status: OperationStatus,
        http_status: u16,
        result: &Value,
        event: &cairn_core::events::NewEvent,
    ) -> Result<(), StoreError>;
    /// Sets the callback delivery state.
    async fn set_delivery(&self, id: &str, delivery: &str) -> Result<(), StoreError>;
    /// Records a callback attempt.
    async fn record_attempt(&self, id: &str, attempt: &AttemptRecord) -> Result<(), StoreError>;
    /// The recorded attempts, oldest first.
    async fn attempts(&self, id: &str) -> Result<Vec<AttemptRecord>, StoreError>;
}

/// The queue of operations for the archive worker (one repository at a time).
#[async_trait]
pub trait OperationQueue: Send + Sync {
    /// Queues `op` for the worker.
    async fn submit(&self, op: &Operation) -> Result<(), StoreError>;
}

/// The queue of callbacks to deliver.
#[async_trait]
pub trait CallbackQueue: Send + Sync {
    /// Queues the delivery of `op`'s result.
    async fn deliver(&self, op_id: &str) -> Result<(), StoreError>;
}

/// Puts a received delivery message back on its queue after a delay (SQS: its
/// visibility timeout), so the next attempt follows the backoff.
#[async_trait]
pub trait RetryLater: Send + Sync {
    /// The message with `receipt` is received again after `delay`.
    async fn retry_after(
        &self,
        receipt: &str,
        delay: std::time::Duration,
    ) -> Result<(), StoreError>;
}
