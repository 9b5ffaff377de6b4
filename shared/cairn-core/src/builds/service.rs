//! The build use cases: each reads what it changes, applies the rules of
//! [`super::run`], and commits the record with its queue, slot and event changes only
//! over the version it read, trying again when another change won.

use super::run::Effects;
use super::{
    Beat, Build, BuildChange, BuildState, BuildStore, Job, JobReport, LogStore, Project,
    ProjectSpec, Refusal, SlotChange, SpecError, StepState, Trigger,
};
use crate::access::{Action, Denied, Scopes};
use crate::auth::Principal;
use crate::error::StoreError;
use crate::events::{NewEvent, Subject};
use crate::tokens::{TokenRecord, TokenStore};
use bytes::Bytes;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The runner name of the build-step Lambda in build records.
pub const LAMBDA_RUNNER: &str = "lambda";
/// Attempts at a change that races others on one build or project.
const CHANGE_ATTEMPTS: u32 = 20;
/// Jobs of the queue a worker looks at per poll.
const QUEUE_WINDOW: usize = 100;
/// Largest log chunk, bytes.
pub const MAX_LOG_CHUNK: usize = 1024 * 1024;
/// Most of a log one read returns, bytes.
pub const MAX_LOG_READ: usize = 4 * 1024 * 1024;
/// A job token outlives its step's timeout by this much (it is revoked when the job
/// ends; this bounds a token whose revocation failed).
const JOB_TOKEN_MARGIN_SECS: i64 = 600;

/// Why a build request is refused.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// No such project, build or job (or not the caller's to see).
    #[error("{0}")]
    NotFound(String),
    /// A definition or a request that does not hold up.
    #[error("{0}")]
    Invalid(String),
    /// A request past a size limit.
    #[error("{0}")]
    TooLarge(String),
    /// The definition's refusal, with its place.
    #[error("{0}")]
    Spec(#[from] SpecError),
    /// The credential's scopes do not allow it.
    #[error(transparent)]
    Denied(#[from] Denied),
    /// Allowed by scope, but not the caller's (another account's project).
    #[error("{0}")]
    Forbidden(String),
    /// The state does not allow it (a build already over, a job no longer running).
    #[error(transparent)]
    Conflict(#[from] Refusal),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A job a worker took: what it runs and the credential it runs with.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The job.
    pub job: Job,
    /// The build, after the claim.
    pub build: Build,
    /// The job token's text (`cairn_...`), shown to this worker only.
    pub token: String,
    /// The lease ends then unless the worker heartbeats (Unix milliseconds).
    pub lease_until: i64,
}

/// A piece of a step's log.
#[derive(Debug, Clone)]
pub struct LogChunk {
    /// The bytes from the requested offset on.
    pub bytes: Bytes,
    /// Where the next read starts.
    pub next_offset: u64,
    /// Whether the step is over and nothing follows.
    pub complete: bool,
}

/// The build controller's use cases.
pub struct Builds {
    /// Projects, builds, the worker queue.
    pub store: Arc<dyn BuildStore>,
    /// Where job tokens are minted and revoked.
    pub tokens: Arc<dyn TokenStore>,
    /// Build logs.
    pub logs: Arc<dyn LogStore>,
    /// The artifact store's blobs (saved workspaces).
    pub blobs: Arc<dyn super::Blobs>,
    /// The controller's clock, and its call to give jobs to the build-step Lambda.
    pub ticks: Arc<dyn super::Ticks>,
    /// How long a worker holds a job without a heartbeat, milliseconds.
    pub lease_ms: i64,
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Whether `caller` may act on `project`'s builds: the scope, and the project is the
/// caller's (or the caller is an administrator).
fn require_project(caller: &Principal, project: &Project) -> Result<(), BuildError> {
    caller.require(Action::Builds, &project.name)?;
    if project.owner != caller.name && !caller.is_admin() {
        return Err(BuildError::Forbidden(format!(
            "project {} belongs to another account",
            project.name
        )));
    }
    Ok(())
}

/// Whether `caller` sees `build` (the owner's or an administrator's, within scope).
fn sees(caller: &Principal, build: &Build) -> bool {
    caller.scopes.allows(Action::Builds, &build.project)
        && (build.owner == caller.name || caller.is_admin())
}

impl Builds {
    /// Defines or redefines project `name`.
    pub async fn define(
        &self,
        caller: &Principal,
        name: &str,
        spec: ProjectSpec,
    ) -> Result<(Project, bool), BuildError> {
        if !super::project::valid_name(name) {
            return Err(BuildError::Invalid(
                "a project name is lowercase letters, digits, '.', '_' and '-' (at most 64)".into(),
            ));
        }
        caller.require(Action::Builds, name)?;
        let now = now_ms() / 1000;
        for _ in 0..CHANGE_ATTEMPTS {
            let existing = self.store.get_project(name).await?;
            let existing_spec = existing.as_ref().map(|p| p.spec.clone());
            let project = match existing {
                Some(old) => {
                    require_project(caller, &old)?;
                    Project {
                        spec: spec.clone(),
                        updated_at: now,
                        version: old.version + 1,
                        ..old
                    }
                }
                None => Project {
                    name: name.to_string(),
                    owner: caller.name.clone(),
                    spec: spec.clone(),
                    created_at: now,
                    updated_at: now,
                    version: 1,
                },
            };
            // Listeners and schedules first: one the definition did not keep is
            // dropped when it fires; one it lacked would never fire.
            self.listen(&project).await?;
            if self.store.put_project(&project).await? {
                let created = project.version == 1;
                if let Some(old) = existing_spec {
                    self.unlisten(&project.name, project.version, &old, &project.spec)
                        .await;
                }
                return Ok((project, created));
            }
        }
        Err(busy("define project"))
    }

    /// A project the caller may see.
    pub async fn project(&self, caller: &Principal, name: &str) -> Result<Project, BuildError> {
        match self.store.get_project(name).await? {
            Some(p) if require_project(caller, &p).is_ok() => Ok(p),
            _ => Err(BuildError::NotFound(format!("no project {name}"))),
        }
    }

    /// The projects the caller may see.
    pub async fn projects(&self, caller: &Principal) -> Result<Vec<Project>, BuildError> {
        Ok(self
            .store
            .list_projects()
            .await?
            .into_iter()
            .filter(|p| require_project(caller, p).is_ok())
            .collect())
    }

    /// Starts a build of `project` with `overrides`: it waits for a slot, and starts
    /// at once when one is free.
    pub async fn start(
        &self,
        caller: &Principal,
        project: &str,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Build, BuildError> {
        let project = self.project(caller, project).await?;
        self.start_as(
            &project,
            overrides,
            Trigger {
                kind: "api".into(),
                by: caller.name.clone(),
            },
        )
        .await
    }

    /// Starts a build of `project` for `trigger` (an API call, an event, a schedule).
    pub async fn start_as(
        &self,
        project: &Project,
        overrides: &BTreeMap<String, String>,
        trigger: Trigger,
    ) -> Result<Build, BuildError> {
        self.create(planned(project, overrides, trigger)?)
            .await?
            .ok_or_else(|| busy("create build"))
    }

    /// Starts a build of `project` with id `id` unless one exists: what a trigger
    /// that may fire twice for one cause calls. Returns the build and whether this
    /// call started it.
    pub async fn start_once(
        &self,
        project: &Project,
        overrides: &BTreeMap<String, String>,
        trigger: Trigger,
        id: &str,
    ) -> Result<(Build, bool), BuildError> {
        if let Some(build) = self.store.get_build(id).await? {
            // A start that stopped after storing it: let it take a free slot.
            if build.state == BuildState::Queued {
                self.promote(&build.project).await?;
            }
            return Ok((build, false));
        }
        let mut build = planned(project, overrides, trigger)?;
        build.id = id.to_string();
        match self.create(build).await? {
            Some(build) => Ok((build, true)),
            // Another call created it first.
            None => match self.store.get_build(id).await? {
                Some(build) => Ok((build, false)),
                None => Err(busy("create build")),
            },
        }
    }

    /// Stores a planned build in its project's line and starts it if a slot is
    /// free; `None` if a build with its id exists.
    async fn create(&self, mut build: Build) -> Result<Option<Build>, BuildError> {
        build.version = 1;
        let change = BuildChange {
            build: &build,
            queued: Vec::new(),
            unqueued: Vec::new(),
            slot: SlotChange::Wait,
            events: Vec::new(),
        };
        if !self.store.commit(change).await? {
            return Ok(None);
        }
        // The controller's clock for it: lost workers, timeouts, its turn for a slot.
        self.ticks.schedule(&build.id).await;
        self.promote(&build.project).await?;
        Ok(Some(
            self.store.get_build(&build.id).await?.unwrap_or(build),
        ))
    }

    /// Starts waiting builds of `project` while it has free slots; drops cancelled
    /// ones from the head of the line.
    pub async fn promote(&self, project: &str) -> Result<(), BuildError> {
        let Some(definition) = self.store.get_project(project).await? else {
            return Ok(());
        };
        let limit = definition.spec.concurrency;
        for _ in 0..CHANGE_ATTEMPTS {
            let slots = self.store.slots(project).await?;
            let Some(head) = slots.waiting.first() else {
                return Ok(());
            };
            let Some(mut build) = self.store.get_build(head).await? else {
                return Err(StoreError::new(
                    "promote",
                    format!("waiting build {head} has no record"),
                )
                .into());
            };
            let (slot, effects) = if build.state != BuildState::Queued {
                (SlotChange::DropFirst, Effects::default())
            } else if slots.running.len() >= limit as usize {
                return Ok(());
            } else {
                let effects = build.start(now_ms())?;
                (SlotChange::TakeFirst { limit }, effects)
            };
            // A retry reads everything again, so a lost race costs one round.
            self.commit(&mut build, effects, slot).await?;
        }
        Ok(())
    }

    /// Commits `build` changed by `effects`; `Ok(false)` if another change won.
    async fn commit(
        &self,
        build: &mut Build,
        effects: Effects,
        slot: SlotChange,
    ) -> Result<bool, BuildError> {
        build.version += 1;
        let subject = Subject::build(&build.project);
        let events = effects
            .events
            .iter()
            .map(|(kind, data)| NewEvent::new(kind, subject.clone(), data.clone()))
            .collect();
        let slot = match slot {
            SlotChange::Keep if effects.finished && build.started_at.is_some() => {
                SlotChange::Release
            }
            other => other,
        };
        let change = BuildChange {
            build,
            queued: effects.queued.clone(),
            unqueued: effects.unqueued.clone(),
            slot,
            events,
        };
        if !self.store.commit(change).await? {
            return Ok(false);
        }
        for token in &effects.revoked {
            self.revoke(&build.owner, token).await;
        }
        if effects
            .queued
            .iter()
            .any(|j| j.runner == super::Runner::Lambda)
        {
            self.ticks.dispatch(&build.id).await;
        }
        if effects.finished {
            // The slot is free: the next waiting build may start. A failure here
            // leaves it to the controller's next tick.
            if let Err(e) = Box::pin(self.promote(&build.project)).await {
                tracing::warn!(project = %build.project, error = %e, "could not start the next build");
            }
        }
        Ok(true)
    }

    async fn revoke(&self, owner: &str, token: &str) {
        if let Err(e) = self.tokens.delete_token(owner, token).await {
            // It still expires at its step's timeout.
            tracing::warn!(token, error = %e, "could not revoke a job token");
        }
    }

    /// Applies `change` to build `id` until it commits over the version it read.
    async fn change<F>(&self, id: &str, mut change: F) -> Result<Build, BuildError>
    where
        F: FnMut(&mut Build) -> Result<Effects, BuildError>,
    {
        for _ in 0..CHANGE_ATTEMPTS {
            let mut build = self
                .store
                .get_build(id)
                .await?
                .ok_or_else(|| BuildError::NotFound(format!("no build {id}")))?;
            let before = build.clone();
            let effects = change(&mut build)?;
            if build == before {
                return Ok(build);
            }
            if self.commit(&mut build, effects, SlotChange::Keep).await? {
                return Ok(build);
            }
        }
        Err(busy("change build"))
    }

    /// A build the caller may see.
    pub async fn build(&self, caller: &Principal, id: &str) -> Result<Build, BuildError> {
        match self.store.get_build(id).await? {
            Some(b) if sees(caller, &b) => Ok(b),
            _ => Err(BuildError::NotFound(format!("no build {id}"))),
        }
    }

    /// A project's builds, newest first.
    pub async fn builds(
        &self,
        caller: &Principal,
        project: &str,
        limit: usize,
    ) -> Result<Vec<Build>, BuildError> {
        let project = self.project(caller, project).await?;
        Ok(self
            .store
            .list_builds(&project.name, limit.clamp(1, 100))
            .await?)
    }

    /// Cancels a build.
    pub async fn cancel(&self, caller: &Principal, id: &str) -> Result<Build, BuildError> {
        self.build(caller, id).await?;
        let by = caller.name.clone();
        self.change(id, |b| Ok(b.cancel(&by, now_ms())?)).await
    }

    /// Gives a worker the oldest queued job its labels fit, with a token for that
    /// job alone; `None` when there is none.
    pub async fn claim(
        &self,
        worker: &Principal,
        worker_name: &str,
        labels: &[String],
    ) -> Result<Option<Claimed>, BuildError> {
        worker.require(Action::Worker, "")?;
        let jobs = self.store.queued_jobs(QUEUE_WINDOW).await?;
        for job in jobs.into_iter().filter(|j| j.fits(labels)) {
            if let Some(claimed) = self.take(job, worker_name).await? {
                return Ok(Some(claimed));
            }
        }
        Ok(None)
    }

    /// Takes the queued `job` for `runner` (a worker's name, or `lambda`) with a token
    /// for that job alone; `None` if another runner took it first.
    async fn take(&self, job: Job, runner: &str) -> Result<Option<Claimed>, BuildError> {
        let Some(mut build) = self.store.get_build(&job.build).await? else {
            return Ok(None);
        };
        let Some(index) = build.step_of(&job.id) else {
            return Ok(None);
        };
        let now = now_ms();
        let (record, token) = match self.job_token(&build, index, &job.id, now) {
            Ok(minted) => minted,
            Err(e) => {
                // This job can never run: fail its build rather than stop every
                // runner's poll at it (it is the oldest in the queue).
                let why = format!("no credential can be made for this step: {e}");
                if let Ok(effects) = build.fail_queued(&job.id, &why, now) {
                    self.commit(&mut build, effects, SlotChange::Keep).await?;
                }
                return Ok(None);
            }
        };
        let Ok(index) = build.claim(&job.id, runner, &record.id, now, self.lease_ms) else {
            return Ok(None);
        };
        self.tokens.put_token(&record).await?;
        let effects = Effects {
            unqueued: vec![job.clone()],
            ..Effects::default()
        };
        if self.commit(&mut build, effects, SlotChange::Keep).await? {
            let lease_until = build.steps[index].lease_until.unwrap_or(now);
            return Ok(Some(Claimed {
                job,
                build,
                token,
                lease_until,
            }));
        }
        // Another runner took it (or the build changed): the token goes.
        self.revoke(&record.owner, &record.id).await;
        Ok(None)
    }

    /// The controller takes build `id`'s queued jobs that the build-step Lambda runs.
    pub async fn dispatch(&self, id: &str) -> Result<Vec<Claimed>, BuildError> {
        let Some(build) = self.store.get_build(id).await? else {
            return Ok(Vec::new());
        };
        let mut taken = Vec::new();
        for index in 0..build.steps.len() {
            let Some(job) = build
                .queued_job(index)
                .filter(|j| j.runner == super::Runner::Lambda)
            else {
                continue;
            };
            if let Some(claimed) = self.take(job, LAMBDA_RUNNER).await? {
                taken.push(claimed);
            }
        }
        Ok(taken)
    }

    /// What a runner receives with a job: the action, its parameters, the job's token,
    /// its lease, and the workspace the earlier steps left (with a download URL).
    pub async fn job_answer(&self, claimed: &Claimed) -> Result<Value, BuildError> {
        let build = &claimed.build;
        let index = claimed.job.step;
        let step = &build.steps[index];
        let workspace = match &build.workspace {
            Some(saved) => {
                let download = self
                    .blobs
                    .get_url(
                        &build.project,
                        &saved.sha256,
                        super::artifacts::DOWNLOAD_URL_SECS,
                    )
                    .await?;
                json!({"sha256": saved.sha256, "size": saved.size, "step": saved.step,
                       "download": download})
            }
            None => Value::Null,
        };
        Ok(json!({
            "job": claimed.job.id, "build": build.id,
            "project": build.project, "step": index,
            "attempt": step.attempts, "pipeline": step.pipeline,
            "action": step.action, "parameters": build.step_parameters(index),
            "token": claimed.token, "lease_until": claimed.lease_until,
            "heartbeat_seconds": (self.lease_ms / 3000).max(1),
            "workspace": workspace,
            "save_workspace": build.more_after(index),
        }))
    }

    /// The credential of one job: it acts for the project's owner, may report on that
    /// job only, and holds only the scopes its step needs (upload to the repository it
    /// publishes to, archive under its name).
    fn job_token(
        &self,
        build: &Build,
        index: usize,
        job: &str,
        now_ms: i64,
    ) -> Result<(TokenRecord, String), BuildError> {
        let texts = build.job_scopes(index);
        let scopes = if texts.is_empty() {
            Scopes::default()
        } else {
            Scopes::parse(&texts).map_err(BuildError::Invalid)?
        };
        let timeout = i64::try_from(build.steps[index].action.timeout).unwrap_or(i64::MAX / 2);
        let now = now_ms / 1000;
        Ok(crate::tokens::mint(
            &build.owner,
            format!("job {job} of build {}", build.id),
            scopes,
            now,
            now.saturating_add(timeout)
                .saturating_add(JOB_TOKEN_MARGIN_SECS),
        ))
    }

    /// The running step of build `id` that job `job` holds, if `caller` is that job's
    /// token.
    fn held(build: &Build, caller: &Principal, job: &str) -> Result<usize, BuildError> {
        let index = build
            .step_of(job)
            .ok_or_else(|| BuildError::NotFound(format!("no job {job} in build {}", build.id)))?;
        if !build.job_token_is(index, caller.token.as_deref()) {
            return Err(BuildError::Forbidden(format!(
                "only job {job}'s own token reports on it"
            )));
        }
        Ok(index)
    }

    /// A worker's heartbeat for `job`.
    pub async fn heartbeat(
        &self,
        caller: &Principal,
        build: &str,
        job: &str,
    ) -> Result<Beat, BuildError> {
        let mut beat = Beat::Cancel;
        let lease = self.lease_ms;
        self.change(build, |b| {
            Self::held(b, caller, job)?;
            beat = b.heartbeat(job, now_ms(), lease)?;
            Ok(Effects::default())
        })
        .await?;
        Ok(beat)
    }

    /// A worker reports `job`'s end.
    pub async fn report(
        &self,
        caller: &Principal,
        build: &str,
        job: &str,
        report: JobReport,
    ) -> Result<Build, BuildError> {
        if let Some((sha256, size)) = &report.workspace {
            // The next step restores it: it must be stored whole, in this project.
            let record = self
                .store
                .get_build(build)
                .await?
                .ok_or_else(|| BuildError::NotFound(format!("no build {build}")))?;
            Self::held(&record, caller, job)?;
            let stored = if super::artifacts::valid_sha256(sha256) {
                self.blobs.stat(&record.project, sha256).await?
            } else {
                None
            };
            if stored.is_none_or(|b| b.size != *size) {
                return Err(BuildError::Invalid(format!(
                    "workspace: project {} has no blob sha256:{sha256} of {size} bytes: upload it first",
                    record.project
                )));
            }
        }
        self.change(build, |b| {
            Self::held(b, caller, job)?;
            Ok(b.report(job, report.clone(), now_ms())?)
        })
        .await
    }

    /// Stores a chunk of `job`'s log that starts at byte `offset`.
    pub async fn append_log(
        &self,
        caller: &Principal,
        build: &str,
        job: &str,
        offset: u64,
        bytes: Bytes,
    ) -> Result<(), BuildError> {
        if bytes.len() > MAX_LOG_CHUNK {
            return Err(BuildError::Invalid(format!(
                "a log chunk is at most {} KiB",
                MAX_LOG_CHUNK / 1024
            )));
        }
        let record = self
            .store
            .get_build(build)
            .await?
            .ok_or_else(|| BuildError::NotFound(format!("no build {build}")))?;
        let index = Self::held(&record, caller, job)?;
        if record.steps[index].state != StepState::Running {
            return Err(Refusal::NotRunning(job.to_string()).into());
        }
        let event = NewEvent::new(
            "log.appended",
            Subject::build(&record.project),
            log_event_data(&record, index, offset, &bytes),
        );
        self.logs.put_chunk(build, index, offset, bytes).await?;
        // The stored chunk is the record; its event is the live view. An event that
        // did not commit is not worth failing (and resending) the chunk for.
        if let Err(e) = self.store.commit_events(&[event]).await {
            tracing::warn!(build, step = index, offset, error = %e, "log event not committed");
        }
        Ok(())
    }

    /// Step `step`'s log from byte `offset`, at most [`MAX_LOG_READ`] bytes.
    pub async fn read_log(
        &self,
        caller: &Principal,
        build: &str,
        step: usize,
        offset: u64,
    ) -> Result<LogChunk, BuildError> {
        let record = self.build(caller, build).await?;
        let state = record
            .steps
            .get(step)
            .ok_or_else(|| BuildError::NotFound(format!("build {build} has no step {step}")))?
            .state;
        let over = !matches!(
            state,
            StepState::Pending | StepState::Queued | StepState::Running
        );
        let offsets = self.logs.chunk_offsets(build, step).await?;
        // The chunk that holds `offset`: the last that starts at or before it.
        let first = offsets.iter().rposition(|o| *o <= offset).unwrap_or(0);
        let mut out = Vec::new();
        let mut next = offset;
        for start in offsets.iter().skip(first) {
            if out.len() >= MAX_LOG_READ {
                break;
            }
            if *start > next {
                if !over {
                    break; // a chunk still on its way
                }
                // The step is over: a chunk its worker never stored is not coming.
                next = *start;
            }
            let Some(chunk) = self.logs.get_chunk(build, step, *start).await? else {
                break;
            };
            let end = start + chunk.len() as u64;
            if end <= next {
                continue;
            }
            let from = usize::try_from(next - start).unwrap_or(0);
            let room = MAX_LOG_READ - out.len();
            let piece = &chunk[from..chunk.len().min(from + room)];
            out.extend_from_slice(piece);
            next += piece.len() as u64;
        }
        let complete = over
            && offsets
                .last()
                .is_none_or(|last| next >= *last && out.len() < MAX_LOG_READ);
        Ok(LogChunk {
            bytes: Bytes::from(out),
            next_offset: next,
            complete,
        })
    }

    /// The controller's look at a build: a lost worker's step goes to another, a step
    /// past its timeout fails; waiting builds start when a slot is free. Returns
    /// whether the build still needs looking at.
    pub async fn tick(&self, id: &str) -> Result<bool, BuildError> {
        let build = self.change(id, |b| Ok(b.expire(now_ms()))).await?;
        if build.state == BuildState::Queued {
            self.promote(&build.project).await?;
        }
        let build = self.store.get_build(id).await?;
        Ok(build.is_some_and(|b| !b.state.is_terminal()))
    }
}

/// Most text of a log chunk a `log.appended` event carries, bytes.
pub const LOG_EVENT_TEXT: usize = 8 * 1024;

/// `log.appended`: where the chunk is in the step's log, and its first
/// [`LOG_EVENT_TEXT`] bytes as text (invalid UTF-8 replaced).
fn log_event_data(build: &Build, step: usize, offset: u64, bytes: &[u8]) -> Value {
    let mut end = bytes.len().min(LOG_EVENT_TEXT);
    // Do not cut a character in two (a cut inside the chunk is the event's).
    while end < bytes.len() && end > 0 && (bytes[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    json!({
        "build": build.id, "project": build.project, "owner": build.owner,
        "step": step, "offset": offset, "size": bytes.len(),
        "next_offset": offset + bytes.len() as u64,
        "text": String::from_utf8_lossy(&bytes[..end]),
        "truncated": end < bytes.len(),
    })
}

/// A new build of `project` with `overrides`, planned now.
fn planned(
    project: &Project,
    overrides: &BTreeMap<String, String>,
    trigger: Trigger,
) -> Result<Build, SpecError> {
    Build::plan(
        &project.name,
        &project.owner,
        &project.spec,
        overrides,
        trigger,
        now_ms(),
    )
}

fn busy(what: &str) -> BuildError {
    BuildError::Store(StoreError::new(
        what,
        "too many concurrent changes to one build or project; try again",
    ))
}
