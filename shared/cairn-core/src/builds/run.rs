//! A build's record and the rules that move it: which step runs next, who holds it,
//! what a report, a heartbeat, a lost worker, a timeout or a cancellation does.
//!
//! Every change is a pure function of the record and the time, so the controller,
//! the API and the tests apply the same rules; the store only makes each change
//! conditional on the version it was computed from.

use super::project::{Action, ActionKind, ProjectSpec, Runner, SpecError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// How many times a step is given to a worker before a lost worker fails it.
pub const MAX_ATTEMPTS: u32 = 3;
/// Longest stderr tail kept in the record, bytes.
pub const STDERR_TAIL_BYTES: usize = 2048;
/// Largest outputs document of one step, bytes of JSON.
pub const MAX_OUTPUTS_BYTES: usize = 2048;
/// Largest planned build record, bytes of JSON. With each of at most
/// [`super::project::MAX_STEPS`] steps' stderr tail and outputs, a record stays
/// under DynamoDB's 400 KB item limit.
pub const MAX_PLANNED_BYTES: usize = 150 * 1024;

/// Where a build is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BuildState {
    /// Waiting for one of the project's concurrent slots.
    Queued,
    /// Its steps are running, one after another.
    Running,
    /// Every step succeeded.
    Succeeded,
    /// A step failed (a command's exit code, a timeout, a lost worker).
    Failed,
    /// Cancelled on request.
    Cancelled,
}

impl BuildState {
    /// Whether the build is over.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }

    /// The state's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Where one step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepState {
    /// Not reached yet.
    Pending,
    /// Waiting for a worker.
    Queued,
    /// A worker holds it.
    Running,
    /// Ran and exited 0.
    Succeeded,
    /// Ran and failed, timed out, or lost its worker too often.
    Failed,
    /// Stopped by a cancellation.
    Cancelled,
    /// Never ran: an earlier step failed or the build was cancelled.
    Skipped,
}

/// One step of a build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The pipeline it comes from.
    pub pipeline: String,
    /// The action, parameters substituted.
    pub action: Action,
    /// Its parameters where they differ from the build's (resolved references, an
    /// include's own): see [`Build::step_parameters`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
    /// Its state.
    pub state: StepState,
    /// The job that runs it now (a new one per attempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// The token id of the current job's credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_token: Option<String>,
    /// The worker that holds or held it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// Workers that took it so far (a claim its worker never acknowledged with a
    /// heartbeat does not count: see [`Build::expire`]).
    #[serde(default)]
    pub attempts: u32,
    /// Whether the current worker acknowledged the job (its first heartbeat).
    #[serde(default)]
    pub acked: bool,
    /// The command's exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Why it failed, when not (only) an exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The end of its stderr.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr_tail: Option<String>,
    /// When it was queued, started, finished (Unix milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_at: Option<i64>,
    /// When its worker took it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
    /// The worker's hold ends then unless it heartbeats (Unix milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<i64>,
    /// What it produced (an archive's tag and SWHID, published files).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub outputs: Value,
}

/// What started a build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    /// `api`, `event` or `schedule`.
    pub kind: String,
    /// The account that asked, or the event's id.
    pub by: String,
}

/// A build: a project's run, step by step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Build {
    /// `bld_` and 24 hex digits.
    pub id: String,
    /// Its project.
    pub project: String,
    /// The project's owner (whose events these are).
    pub owner: String,
    /// Where it is.
    pub state: BuildState,
    /// What started it.
    pub trigger: Trigger,
    /// The parameters it runs with (project defaults and overrides).
    pub parameters: BTreeMap<String, String>,
    /// Its steps, in order.
    pub steps: Vec<Step>,
    /// When it was asked for, started, finished (Unix milliseconds).
    pub created_at: i64,
    /// When its first step was queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
    /// Why it failed or was cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The workspace as the last step that saved one left it: a blob of the
    /// project's artifact store, which the next step's worker restores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<Workspace>,
    /// Bumped by every change; a change applies only to the version it read.
    pub version: u64,
}

/// A saved workspace: a `.tar.gz` blob of the project's artifact store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspace {
    /// The blob's SHA-256.
    pub sha256: String,
    /// Its size, bytes.
    pub size: u64,
    /// The step after which it was saved.
    pub step: usize,
}

/// A step waiting for a worker: what the worker queue holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// `job_` and 24 hex digits; new for each attempt.
    pub id: String,
    /// Its build.
    pub build: String,
    /// Its project.
    pub project: String,
    /// Its step's index.
    pub step: usize,
    /// Labels a worker needs.
    pub labels: Vec<String>,
    /// When it was queued (Unix milliseconds).
    pub queued_at: i64,
    /// What runs it: workers take only the jobs of workers; the controller gives
    /// the others to the build-step Lambda.
    #[serde(default, skip_serializing_if = "Runner::is_worker")]
    pub runner: Runner,
}

impl Job {
    /// Whether a worker with `labels` may take it: a worker's job, and the worker has
    /// every label the job asks for.
    pub fn fits(&self, labels: &[String]) -> bool {
        self.runner == Runner::Worker && self.labels.iter().all(|l| labels.contains(l))
    }
}

/// What a worker reports at a job's end.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobReport {
    /// The action's exit code (0: success).
    pub exit_code: i32,
    /// Why it failed when the action could not run (no exit code of its own).
    pub error: Option<String>,
    /// The end of its stderr.
    pub stderr_tail: String,
    /// What it produced.
    pub outputs: Value,
    /// The workspace it left, saved as a blob (SHA-256, size), when a later step
    /// may need it.
    pub workspace: Option<(String, u64)>,
}

/// Why a change does not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The job is not (or no longer) the one running its step: it ended, was
    /// cancelled, or went to another worker.
    #[error("job {0} is not running: it ended, was cancelled or was given to another worker")]
    NotRunning(String),
    /// The build is over.
    #[error("build {0} is already {1}")]
    Over(String, &'static str),
}

/// What a heartbeat tells the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// Keep going; the lease now ends then (Unix milliseconds).
    Continue(i64),
    /// Stop the action: the build was cancelled.
    Cancel,
}

/// What a change did, for the events and the queue.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Effects {
    /// Jobs to put in the worker queue.
    pub queued: Vec<Job>,
    /// Jobs to take out of the worker queue (cancelled before a worker took them).
    pub unqueued: Vec<Job>,
    /// Job tokens to revoke.
    pub revoked: Vec<String>,
    /// Events to commit with the change: (type, data).
    pub events: Vec<(&'static str, Value)>,
    /// Whether the build started or ended with this change.
    pub started: bool,
    /// Whether the build ended with this change.
    pub finished: bool,
}

/// A random id with `prefix`: 96 bits from the OS, as hex.
pub fn new_id(prefix: &str) -> String {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    let mut bytes = [0u8; 12];
    OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

impl Build {
    /// A new build of `project` (its definition `spec`) with `overrides`, queued.
    pub fn plan(
        project: &str,
        owner: &str,
        spec: &ProjectSpec,
        overrides: &BTreeMap<String, String>,
        trigger: Trigger,
        now: i64,
    ) -> Result<Self, SpecError> {
        let mut parameters = spec.parameters.clone();
        parameters.extend(overrides.clone());
        let steps = spec
            .steps(overrides)?
            .into_iter()
            .map(|planned| Step {
                pipeline: planned.pipeline,
                action: planned.action,
                parameters: planned
                    .parameters
                    .into_iter()
                    .filter(|(k, v)| parameters.get(k) != Some(v))
                    .collect(),
                state: StepState::Pending,
                job: None,
                job_token: None,
                worker: None,
                attempts: 0,
                acked: false,
                exit_code: None,
                error: None,
                stderr_tail: None,
                queued_at: None,
                started_at: None,
                finished_at: None,
                lease_until: None,
                outputs: Value::Null,
            })
            .collect();
        let build = Build {
            id: new_id("bld_"),
            project: project.to_string(),
            owner: owner.to_string(),
            state: BuildState::Queued,
            trigger,
            parameters,
            steps,
            created_at: now,
            started_at: None,
            finished_at: None,
            error: None,
            workspace: None,
            version: 0,
        };
        // Each step's credential names what it publishes to or archives under: a
        // value that no scope can name would stop the step at its claim.
        for index in 0..build.steps.len() {
            crate::access::Scopes::parse(&build.job_scopes(index)).map_err(|e| SpecError {
                path: "parameters".into(),
                message: format!(
                    "step {} ({}) cannot run with these parameters: {e}",
                    index + 1,
                    build.step_name(index)
                ),
                line: None,
            })?;
        }
        let size = serde_json::to_vec(&build).map_or(usize::MAX, |b| b.len());
        if size > MAX_PLANNED_BYTES {
            return Err(SpecError {
                path: "pipelines".into(),
                message: format!(
                    "a build's steps (includes expanded) take {} KiB, more than {} KiB: \
                     include long scripts fewer times, or keep them in the source tree",
                    size / 1024,
                    MAX_PLANNED_BYTES / 1024
                ),
                line: None,
            });
        }
        Ok(build)
    }

    /// The parameters step `index` runs with (a script's environment).
    pub fn step_parameters(&self, index: usize) -> BTreeMap<String, String> {
        let mut parameters = self.parameters.clone();
        if let Some(step) = self.steps.get(index) {
            parameters.extend(step.parameters.clone());
        }
        parameters
    }

    fn summary(&self) -> Value {
        json!({
            "build": self.id, "project": self.project, "owner": self.owner,
            "state": self.state.as_str(), "error": self.error,
        })
    }

    /// Starts a queued build: its first step goes to the worker queue.
    pub fn start(&mut self, now: i64) -> Result<Effects, Refusal> {
        if self.state != BuildState::Queued {
            return Err(Refusal::Over(self.id.clone(), self.state.as_str()));
        }
        self.state = BuildState::Running;
        self.started_at = Some(now);
        let mut effects = Effects {
            started: true,
            ..Effects::default()
        };
        effects.events.push(("build.started", self.summary()));
        self.advance(now, &mut effects);
        Ok(effects)
    }

    /// Queues the next pending step, or ends the build when none is left.
    fn advance(&mut self, now: i64, effects: &mut Effects) {
        match self
            .steps
            .iter()
            .position(|s| s.state == StepState::Pending)
        {
            Some(index) => effects.queued.push(self.queue(index, now)),
            None => self.finish(BuildState::Succeeded, None, now, effects),
        }
    }

    fn queue(&mut self, index: usize, now: i64) -> Job {
        let step = &mut self.steps[index];
        let job = Job {
            id: new_id("job_"),
            build: self.id.clone(),
            project: self.project.clone(),
            step: index,
            labels: step.action.labels.clone(),
            queued_at: now,
            runner: step.action.runner,
        };
        step.state = StepState::Queued;
        step.job = Some(job.id.clone());
        step.job_token = None;
        step.worker = None;
        step.acked = false;
        step.lease_until = None;
        step.queued_at = Some(now);
        job
    }

    fn finish(
        &mut self,
        state: BuildState,
        error: Option<String>,
        now: i64,
        effects: &mut Effects,
    ) {
        self.state = state;
        self.error = error;
        self.finished_at = Some(now);
        for step in &mut self.steps {
            if step.state == StepState::Pending {
                step.state = StepState::Skipped;
            }
        }
        effects.finished = true;
        let mut data = self.summary();
        data["steps"] = json!(
            self.steps
                .iter()
                .map(|s| json!({
                    "pipeline": s.pipeline, "action": s.action.kind.type_name(),
                    "state": s.state, "exit_code": s.exit_code,
                }))
                .collect::<Vec<_>>()
        );
        data["duration_ms"] = json!(now - self.started_at.unwrap_or(self.created_at));
        effects.events.push(("build.finished", data));
    }

    /// The step job `job` runs, if it is that step's current job.
    pub fn step_of(&self, job: &str) -> Option<usize> {
        self.steps
            .iter()
            .position(|s| s.job.as_deref() == Some(job))
    }

    /// Whether `token` (a caller's token id) is the token of step `index`'s job.
    pub fn job_token_is(&self, index: usize, token: Option<&str>) -> bool {
        token.is_some() && self.steps[index].job_token.as_deref() == token
    }

    /// A worker takes the queued job `job`: it holds it until `lease_ms` from now.
    pub fn claim(
        &mut self,
        job: &str,
        worker: &str,
        token: &str,
        now: i64,
        lease_ms: i64,
    ) -> Result<usize, Refusal> {
        let index = self
            .step_of(job)
            .filter(|i| {
                self.steps[*i].state == StepState::Queued && self.state == BuildState::Running
            })
            .ok_or_else(|| Refusal::NotRunning(job.to_string()))?;
        let step = &mut self.steps[index];
        step.state = StepState::Running;
        step.worker = Some(worker.to_string());
        step.job_token = Some(token.to_string());
        step.attempts += 1;
        step.started_at = Some(now);
        step.lease_until = Some(now + lease_ms);
        Ok(index)
    }

    fn running_step(&self, job: &str) -> Result<usize, Refusal> {
        self.step_of(job)
            .filter(|i| self.steps[*i].state == StepState::Running)
            .ok_or_else(|| Refusal::NotRunning(job.to_string()))
    }

    /// The worker of `job` is alive: its lease is extended, or it learns of a
    /// cancellation.
    pub fn heartbeat(&mut self, job: &str, now: i64, lease_ms: i64) -> Result<Beat, Refusal> {
        if self.state == BuildState::Cancelled
            && self
                .step_of(job)
                .is_some_and(|i| self.steps[i].state == StepState::Cancelled)
        {
            return Ok(Beat::Cancel);
        }
        let index = self.running_step(job)?;
        let until = now + lease_ms;
        self.steps[index].lease_until = Some(until);
        self.steps[index].acked = true;
        Ok(Beat::Continue(until))
    }

    /// The worker of `job` reports its end: exit code, stderr tail and outputs. A
    /// non-zero exit fails the build (never retried); zero queues the next step.
    pub fn report(&mut self, job: &str, report: JobReport, now: i64) -> Result<Effects, Refusal> {
        let JobReport {
            exit_code,
            error,
            stderr_tail,
            outputs,
            workspace,
        } = report;
        let index = self.running_step(job)?;
        // A success without the workspace the next step starts from would let that
        // step start from an older one: the runner is older than the controller.
        let error = match error {
            None if exit_code == 0 && workspace.is_none() && self.more_after(index) => {
                Some("the runner saved no workspace for the next step: update cairn worker".into())
            }
            other => other,
        };
        let mut effects = Effects::default();
        let step = &mut self.steps[index];
        step.exit_code = Some(exit_code);
        step.stderr_tail = (!stderr_tail.is_empty()).then(|| tail(&stderr_tail, STDERR_TAIL_BYTES));
        step.outputs = outputs;
        step.finished_at = Some(now);
        step.lease_until = None;
        step.error = error.clone();
        step.state = if exit_code == 0 && error.is_none() {
            StepState::Succeeded
        } else {
            StepState::Failed
        };
        effects.revoked.extend(step.job_token.clone());
        effects
            .events
            .push(("build.action.finished", self.step_event(index)));
        if self.steps[index].state == StepState::Succeeded {
            if let Some((sha256, size)) = workspace {
                self.workspace = Some(Workspace {
                    sha256,
                    size,
                    step: index,
                });
            }
            self.advance(now, &mut effects);
        } else {
            let why = match error {
                Some(e) => format!("step {} ({}) failed: {e}", index + 1, self.step_name(index)),
                None => format!(
                    "step {} ({}) exited {exit_code}",
                    index + 1,
                    self.step_name(index)
                ),
            };
            self.finish(BuildState::Failed, Some(why), now, &mut effects);
        }
        Ok(effects)
    }

    fn step_name(&self, index: usize) -> String {
        let action = &self.steps[index].action;
        action
            .name
            .clone()
            .unwrap_or_else(|| action.kind.type_name().to_string())
    }

    fn step_event(&self, index: usize) -> Value {
        let step = &self.steps[index];
        let mut data = self.summary();
        data["step"] = json!(index);
        data["action"] = json!(step.action.kind.type_name());
        data["name"] = json!(self.step_name(index));
        data["state"] = json!(step.state);
        data["exit_code"] = json!(step.exit_code);
        data["worker"] = json!(step.worker);
        data
    }

    /// Cancels the build: a running step's worker learns it at its next heartbeat;
    /// nothing after it runs.
    pub fn cancel(&mut self, by: &str, now: i64) -> Result<Effects, Refusal> {
        if self.state.is_terminal() {
            return Err(Refusal::Over(self.id.clone(), self.state.as_str()));
        }
        let mut effects = Effects::default();
        for (index, step) in self.steps.iter_mut().enumerate() {
            match step.state {
                StepState::Queued => {
                    effects.unqueued.extend(step.job.clone().map(|id| Job {
                        id,
                        build: self.id.clone(),
                        project: self.project.clone(),
                        step: index,
                        labels: step.action.labels.clone(),
                        queued_at: step.queued_at.unwrap_or_default(),
                        runner: step.action.runner,
                    }));
                    step.state = StepState::Cancelled;
                    step.finished_at = Some(now);
                }
                StepState::Running => {
                    effects.revoked.extend(step.job_token.clone());
                    step.state = StepState::Cancelled;
                    step.finished_at = Some(now);
                    step.lease_until = None;
                }
                _ => {}
            }
        }
        self.finish(
            BuildState::Cancelled,
            Some(format!("cancelled by {by}")),
            now,
            &mut effects,
        );
        Ok(effects)
    }

    /// Fails the queued step of job `job` before a runner takes it (no credential
    /// can be made for it), and the build with `why`.
    pub fn fail_queued(&mut self, job: &str, why: &str, now: i64) -> Result<Effects, Refusal> {
        let index = self
            .step_of(job)
            .filter(|i| self.steps[*i].state == StepState::Queued)
            .ok_or_else(|| Refusal::NotRunning(job.to_string()))?;
        let mut effects = Effects::default();
        effects.unqueued.extend(self.queued_job(index));
        let step = &mut self.steps[index];
        step.state = StepState::Failed;
        step.error = Some(why.to_string());
        step.finished_at = Some(now);
        let why = format!(
            "step {} ({}) failed: {why}",
            index + 1,
            self.step_name(index)
        );
        self.finish(BuildState::Failed, Some(why), now, &mut effects);
        Ok(effects)
    }

    /// Applies the clock: a running step whose worker stopped heartbeating goes to
    /// another worker (up to [`MAX_ATTEMPTS`]); one past its timeout fails. A claim
    /// that was never acknowledged (the answer to a poll whose worker had gone away)
    /// goes back to the queue without counting as an attempt.
    pub fn expire(&mut self, now: i64) -> Effects {
        let mut effects = Effects::default();
        if self.state != BuildState::Running {
            return effects;
        }
        let Some(index) = self
            .steps
            .iter()
            .position(|s| s.state == StepState::Running)
        else {
            return effects;
        };
        let step = &self.steps[index];
        let timeout_ms = i64::try_from(step.action.timeout).unwrap_or(i64::MAX / 2000) * 1000;
        let timed_out = step
            .started_at
            .is_some_and(|t| now >= t.saturating_add(timeout_ms));
        let lost = step.lease_until.is_some_and(|t| now >= t);
        if !timed_out && !lost {
            return effects;
        }
        effects.revoked.extend(step.job_token.clone());
        let worker = step.worker.clone().unwrap_or_default();
        // An unacknowledged claim of a worker's poll does not count (the worker went
        // away while it polled); the build-step Lambda was sent the job, so its
        // silence counts like a lost worker's, or a broken function would requeue
        // the step for ever.
        if !timed_out && !step.acked && step.action.runner == Runner::Worker {
            let job = self.queue(index, now);
            let step = &mut self.steps[index];
            step.attempts = step.attempts.saturating_sub(1);
            step.error = Some(format!(
                "worker {worker} never acknowledged the job (it went away while it polled); requeued"
            ));
            effects.queued.push(job);
            return effects;
        }
        if !timed_out && step.attempts < MAX_ATTEMPTS {
            let job = self.queue(index, now);
            self.steps[index].error = Some(format!("worker {worker} stopped responding; retried"));
            effects.queued.push(job);
            return effects;
        }
        let why = if timed_out {
            format!("timed out after {} s", step.action.timeout)
        } else {
            format!("lost its worker {} times (last: {worker})", step.attempts)
        };
        let step = &mut self.steps[index];
        step.state = StepState::Failed;
        step.error = Some(why.clone());
        step.finished_at = Some(now);
        step.lease_until = None;
        effects
            .events
            .push(("build.action.finished", self.step_event(index)));
        let message = format!("step {} ({}) {why}", index + 1, self.step_name(index));
        self.finish(BuildState::Failed, Some(message), now, &mut effects);
        effects
    }

    /// The scopes a job of step `index` needs beyond reporting on itself: its
    /// project's artifacts, uploading to the repository it publishes to, archiving
    /// under the name it archives.
    pub fn job_scopes(&self, index: usize) -> Vec<String> {
        // Every step may restore and save the workspace and artifacts of its project.
        let mut scopes = vec![format!("artifacts:{}", self.project)];
        match &self.steps[index].action.kind {
            ActionKind::Publish { repository, .. } => scopes.push(format!("upload:{repository}")),
            ActionKind::Archive { name, .. } => scopes.push(format!("archive:{name}")),
            _ => {}
        }
        scopes
    }

    /// The queued job of step `index`, as the worker queue holds it.
    pub fn queued_job(&self, index: usize) -> Option<Job> {
        let step = self.steps.get(index)?;
        if step.state != StepState::Queued || self.state != BuildState::Running {
            return None;
        }
        Some(Job {
            id: step.job.clone()?,
            build: self.id.clone(),
            project: self.project.clone(),
            step: index,
            labels: step.action.labels.clone(),
            queued_at: step.queued_at?,
            runner: step.action.runner,
        })
    }

    /// Whether a step after `index` is still to run (and may need the workspace).
    pub fn more_after(&self, index: usize) -> bool {
        self.steps
            .iter()
            .skip(index + 1)
            .any(|s| s.state == StepState::Pending)
    }
}

/// The last `max` bytes of `text`, cut at a character boundary.
pub fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_string()
}
