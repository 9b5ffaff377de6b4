//! Builds: projects and their pipelines, builds that run them step by step on
//! workers, and the controller rules that move a build along (in the spirit of Ick:
//! a controller keeps projects and the state of each build, workers ask it for
//! work and report stdout, stderr and exit code).
//!
//! - [`project`]: the definition (YAML or JSON), checked before it is stored;
//! - [`run`]: a build's record and the pure rules of its changes;
//! - [`service`]: the use cases (define a project, start, claim, heartbeat, report,
//!   cancel, tick) over the [`BuildStore`] port, each change conditional on the
//!   version it read and committed with its events and queue changes at once;
//! - [`trigger`] and [`cron`]: what starts builds besides the API (events,
//!   schedules), and `fire`, the use cases that start them once per event or time.

pub mod artifacts;
pub mod cron;
mod fire;
pub mod project;
pub mod run;
pub mod service;
pub mod trigger;
pub mod yaml;

pub use artifacts::{Artifact, ArtifactIndex, Artifacts, BlobInfo, Blobs, Presigned, Upload};
pub use fire::MAX_WAITING_FOR_TRIGGER;
pub use project::Runner;
pub use project::{ProjectSpec, SpecError};
pub use run::{
    Beat, Build, BuildState, Job, JobReport, Refusal, Step, StepState, Trigger, Workspace,
};
pub use service::{BuildError, Builds, Claimed, LogChunk};

use crate::error::StoreError;
use crate::events::NewEvent;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A project as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    /// Its name (the `builds:` scope's pattern matches it).
    pub name: String,
    /// The account that defined it; its builds' events are this account's.
    pub owner: String,
    /// The definition.
    pub spec: ProjectSpec,
    /// When it was first defined and last changed (Unix seconds).
    pub created_at: i64,
    /// When it last changed.
    pub updated_at: i64,
    /// Bumped by every change.
    pub version: u64,
}

/// The project's concurrency slots: builds running, builds waiting for a slot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slots {
    /// Builds holding a slot.
    pub running: Vec<String>,
    /// Builds waiting, oldest first (some may have been cancelled meanwhile).
    pub waiting: Vec<String>,
}

/// What a build change does to its project's slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotChange {
    /// Nothing.
    Keep,
    /// A new build joins the end of the waiting list.
    Wait,
    /// The first waiting build (this one) takes a slot, if fewer than `limit` are taken.
    TakeFirst {
        /// The project's concurrency.
        limit: u32,
    },
    /// The first waiting build (this one) leaves the list without a slot (it was
    /// cancelled while it waited).
    DropFirst,
    /// The build gives its slot back.
    Release,
}

/// A build change to commit at once: the record (only if the stored version is
/// `build.version - 1`, or no record for version 1), the worker queue, the slots, the
/// events.
#[derive(Debug, Clone)]
pub struct BuildChange<'a> {
    /// The record after the change.
    pub build: &'a Build,
    /// Jobs to add to the worker queue.
    pub queued: Vec<Job>,
    /// Jobs to take out of the worker queue (by id and queue time); taking out one
    /// that is gone fails the change (another worker took it).
    pub unqueued: Vec<Job>,
    /// The slots.
    pub slot: SlotChange,
    /// Events committed with the change.
    pub events: Vec<NewEvent>,
}

/// Where projects, builds and the worker queue are kept.
#[async_trait]
pub trait BuildStore: Send + Sync {
    /// A project by name.
    async fn get_project(&self, name: &str) -> Result<Option<Project>, StoreError>;
    /// Writes a project: a new one if `project.version` is 1 and none exists, else
    /// only over version `project.version - 1`. `Ok(false)`: another change won.
    async fn put_project(&self, project: &Project) -> Result<bool, StoreError>;
    /// Every project, by name.
    async fn list_projects(&self) -> Result<Vec<Project>, StoreError>;
    /// A project's slots.
    async fn slots(&self, project: &str) -> Result<Slots, StoreError>;
    /// A build by id.
    async fn get_build(&self, id: &str) -> Result<Option<Build>, StoreError>;
    /// A project's builds, newest first, at most `limit`.
    async fn list_builds(&self, project: &str, limit: usize) -> Result<Vec<Build>, StoreError>;
    /// Commits a change; `Ok(false)`: the record, a slot or a queued job was not as
    /// expected (another change won), and nothing was written.
    async fn commit(&self, change: BuildChange<'_>) -> Result<bool, StoreError>;
    /// The oldest jobs of the worker queue, at most `limit`.
    async fn queued_jobs(&self, limit: usize) -> Result<Vec<Job>, StoreError>;
    /// Notes that version `version` of `project` listens to the events of `subject`,
    /// or (`on` false) no longer. Neither undoes what a newer version wrote: a
    /// definition that dropped the subject cannot delete the listener a later one
    /// (racing it) wants.
    async fn set_listener(
        &self,
        subject: &str,
        project: &str,
        version: u64,
        on: bool,
    ) -> Result<(), StoreError>;
    /// The projects listening to the events of `subject`.
    async fn listeners(&self, subject: &str) -> Result<Vec<String>, StoreError>;
    /// Writes a schedule entry (the same project, expression and time: one entry),
    /// unless one of a newer project version is there.
    async fn put_schedule(&self, entry: &ScheduleEntry) -> Result<(), StoreError>;
    /// Entries due at or before `now` (Unix seconds), earliest first, at most `limit`.
    async fn due_schedules(&self, now: i64, limit: usize)
    -> Result<Vec<ScheduleEntry>, StoreError>;
    /// Replaces `entry` by `next`, or removes it; `Ok(false)` if `entry` was gone
    /// (another run moved it first) or a newer project version than `entry.version`
    /// wrote it since.
    async fn move_schedule(
        &self,
        entry: &ScheduleEntry,
        next: Option<&ScheduleEntry>,
    ) -> Result<bool, StoreError>;
    /// Commits events that go with no other change (a build's log grew).
    async fn commit_events(&self, events: &[NewEvent]) -> Result<(), StoreError>;
}

/// Where the webhook dispatcher hands the events that may start builds (those of
/// [`trigger::TRIGGER_EVENTS`]); the build controller starts them
/// ([`Builds::on_event`]).
#[async_trait]
pub trait TriggerQueue: Send + Sync {
    /// Hands `events` over; an error leaves the dispatcher's cursor where it was, so
    /// they are handed over again.
    async fn hand_over(&self, events: &[crate::events::Event]) -> Result<(), StoreError>;
}

/// When a project's schedule is next due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleEntry {
    /// The project.
    pub project: String,
    /// Its cron expression, as written in the project (an entry whose expression the
    /// project no longer has is dropped when due).
    pub cron: String,
    /// When it is due, Unix seconds.
    pub at: i64,
    /// The project's version that wrote it: a redefinition removes only entries of
    /// its own or older versions, and a run keeps an entry newer than the project it
    /// reads (a definition in flight).
    pub version: u64,
}

/// Where build logs are kept: chunks keyed by their start offset.
#[async_trait]
pub trait LogStore: Send + Sync {
    /// Stores the chunk of step `step`'s log that starts at byte `offset`
    /// (again: the same bytes overwrite themselves).
    async fn put_chunk(
        &self,
        build: &str,
        step: usize,
        offset: u64,
        bytes: bytes::Bytes,
    ) -> Result<(), StoreError>;
    /// The start offsets of the stored chunks, ascending.
    async fn chunk_offsets(&self, build: &str, step: usize) -> Result<Vec<u64>, StoreError>;
    /// One chunk.
    async fn get_chunk(
        &self,
        build: &str,
        step: usize,
        offset: u64,
    ) -> Result<Option<bytes::Bytes>, StoreError>;
}

/// The controller's clock: a running build is looked at again after a delay (lost
/// workers, timeouts, waiting builds).
#[async_trait]
pub trait Ticks: Send + Sync {
    /// Asks for a look at build `id` later; a failure is logged, not returned (the
    /// next request about the build asks again).
    async fn schedule(&self, id: &str);
    /// Asks the controller to give build `id`'s queued build-step Lambda jobs to the
    /// build-step Lambda now; a failure is logged (the build's next look does it).
    async fn dispatch(&self, id: &str);
}

/// Where the controller sends the jobs it took for the build-step Lambda.
#[async_trait]
pub trait StepRunner: Send + Sync {
    /// Hands the job (the answer a worker's claim gets, token included) to the
    /// build-step Lambda.
    async fn run(&self, job: &serde_json::Value) -> Result<(), StoreError>;
}
