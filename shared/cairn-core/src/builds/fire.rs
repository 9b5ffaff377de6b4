//! Starting builds from triggers: an event handed on by the webhook dispatcher, a
//! schedule looked at every minute. Each cause starts one build whatever happens
//! twice (the dispatcher repeats events it handed out before dying, a schedule run
//! overlaps another): the build's id is derived from the cause.

use super::cron::Cron;
use super::service::{BuildError, Builds};
use super::trigger::triggered_build_id;
use super::{Build, Project, ProjectSpec, ScheduleEntry, Trigger};
use crate::events::Event;
use std::collections::BTreeSet;

/// Schedule entries one read returns.
const SCHEDULES_PER_RUN: usize = 100;
/// Reads one run makes at most (a minute's run stays within its 30 s).
const SCHEDULE_PAGES: usize = 10;
/// A trigger starts no build while this many of the project's builds wait for a
/// slot: a schedule every minute with no worker to run it, or a flood of archives,
/// would otherwise grow the line (and the project's item) without end.
pub const MAX_WAITING_FOR_TRIGGER: usize = 20;

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Unix milliseconds of an event's RFC 3339 timestamp.
fn event_ms(event: &Event) -> Option<i64> {
    let t = time::OffsetDateTime::parse(
        &event.timestamp,
        &time::format_description::well_known::Rfc3339,
    )
    .ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

impl Builds {
    /// Registers what `project` listens to: the subjects of its event triggers, and
    /// the next time of each schedule.
    pub(super) async fn listen(&self, project: &Project) -> Result<(), BuildError> {
        let now = now_secs();
        for trigger in &project.spec.triggers {
            if let Some(subject) = trigger.subject() {
                self.store
                    .set_listener(&subject, &project.name, project.version, true)
                    .await?;
            }
            if let Some(expr) = &trigger.schedule {
                let cron = Cron::parse(expr).map_err(BuildError::Invalid)?;
                if let Some(at) = cron.next_after(now) {
                    self.store
                        .put_schedule(&ScheduleEntry {
                            project: project.name.clone(),
                            cron: expr.clone(),
                            at,
                            version: project.version,
                        })
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Drops the listeners `old` had and `new` (the project's version `version`)
    /// has not, and the next entries of the schedules it dropped, unless a newer
    /// version wrote them since. What is left (a failure here, an entry due right
    /// now) is harmless: an event finds the project not listening, a run drops the
    /// entry when it is due.
    pub(super) async fn unlisten(
        &self,
        project: &str,
        version: u64,
        old: &ProjectSpec,
        new: &ProjectSpec,
    ) {
        let subjects = |spec: &ProjectSpec| -> BTreeSet<String> {
            spec.triggers.iter().filter_map(|t| t.subject()).collect()
        };
        for subject in subjects(old).difference(&subjects(new)) {
            if let Err(e) = self
                .store
                .set_listener(subject, project, version, false)
                .await
            {
                tracing::warn!(project, subject, error = %e, "could not drop a listener");
            }
        }
        let schedules = |spec: &ProjectSpec| -> BTreeSet<String> {
            spec.triggers
                .iter()
                .filter_map(|t| t.schedule.clone())
                .collect()
        };
        let now = now_secs();
        for cron in schedules(old).difference(&schedules(new)) {
            let Some(at) = Cron::parse(cron).ok().and_then(|c| c.next_after(now)) else {
                continue;
            };
            let entry = ScheduleEntry {
                project: project.to_string(),
                cron: cron.clone(),
                at,
                version,
            };
            if let Err(e) = self.store.move_schedule(&entry, None).await {
                tracing::warn!(project, cron, error = %e, "could not drop a schedule entry");
            }
        }
    }

    /// Starts the builds `event` triggers: one per project trigger that wants it,
    /// for projects whose owner may read the event (a private repository's archive
    /// is not another account's to build from). A project defined after the event
    /// does not build for it (a dispatcher that replays an old log starts nothing).
    /// Returns the builds started now.
    pub async fn on_event(
        &self,
        event: &Event,
        audience: &crate::repositories::Audience<'_>,
    ) -> Result<Vec<Build>, BuildError> {
        let mut started = Vec::new();
        let when = event_ms(event).unwrap_or(i64::MAX);
        for name in self.store.listeners(&event.subject).await? {
            // A listener the project no longer wants stays until a redefinition
            // drops it: deleting it here could race a definition that adds it.
            let Some(project) = self.store.get_project(&name).await? else {
                continue;
            };
            // A tree a build archived (an adjusted workspace) starts no build: the
            // project that made it, or two that adjust each other's trees, would loop.
            let made_by_a_build = !event.data["build"].is_null();
            if made_by_a_build
                || when < project.created_at * 1000
                || !audience.may_read(&project.owner, None, event).await?
            {
                continue;
            }
            for trigger in &project.spec.triggers {
                if !trigger.wants(&event.kind, &event.subject) {
                    continue;
                }
                let id =
                    triggered_build_id(&project.name, &format!("{}#{}", event.id, trigger.key()));
                let cause = Trigger {
                    kind: "event".into(),
                    by: event.id.clone(),
                };
                if let Some(build) = self
                    .start_triggered(&project, trigger.overrides(Some(&event.data)), cause, &id)
                    .await?
                {
                    started.push(build);
                }
            }
        }
        Ok(started)
    }

    /// Starts the builds whose schedule is due at `now` (Unix seconds), once each
    /// however many runs look at the same entry; a schedule missed for longer (the
    /// controller was down) fires once, not once per missed time. Returns the
    /// builds started now.
    pub async fn run_schedules(&self, now: i64) -> Result<Vec<Build>, BuildError> {
        let mut started = Vec::new();
        let mut failed = BTreeSet::new();
        for _ in 0..SCHEDULE_PAGES {
            let due = self.store.due_schedules(now, SCHEDULES_PER_RUN).await?;
            let full = due.len() == SCHEDULES_PER_RUN;
            let mut moved = false;
            for entry in due {
                let key = (entry.at, entry.project.clone(), entry.cron.clone());
                if failed.contains(&key) {
                    continue;
                }
                match self.run_schedule(&entry, now).await {
                    Ok(build) => {
                        started.extend(build);
                        moved = true;
                    }
                    Err(e) => {
                        // One entry that fails must not hold back the others.
                        tracing::error!(project = %entry.project, cron = %entry.cron, error = %e, "schedule not run");
                        failed.insert(key);
                    }
                }
            }
            if !full || !moved {
                break;
            }
        }
        Ok(started)
    }

    /// Runs one due entry: the build it starts (if it starts one now), and the
    /// entry moved to its next time.
    async fn run_schedule(
        &self,
        entry: &ScheduleEntry,
        now: i64,
    ) -> Result<Option<Build>, BuildError> {
        let project = self.store.get_project(&entry.project).await?;
        let trigger = project.as_ref().and_then(|p| {
            p.spec
                .triggers
                .iter()
                .find(|t| t.schedule.as_deref() == Some(entry.cron.as_str()))
        });
        let next = |after: i64| {
            Cron::parse(&entry.cron)
                .ok()
                .and_then(|c| c.next_after(after))
                .map(|at| ScheduleEntry {
                    at,
                    ..entry.clone()
                })
        };
        let (Some(project), Some(trigger)) = (&project, trigger) else {
            if project.is_some_and(|p| p.version < entry.version) {
                // Written by a definition not stored yet (or one that never will
                // be: a later redefinition drops the entry then).
                self.store.move_schedule(entry, next(now).as_ref()).await?;
            } else {
                // The project is gone or its schedule changed: the entry is stale.
                self.store.move_schedule(entry, None).await?;
            }
            return Ok(None);
        };
        let id = triggered_build_id(
            &project.name,
            &format!("schedule#{}#{}", entry.cron, entry.at),
        );
        let cause = Trigger {
            kind: "schedule".into(),
            by: format!("{} at {}", entry.cron, entry.at),
        };
        let build = self
            .start_triggered(project, trigger.overrides(None), cause, &id)
            .await?;
        self.store
            .move_schedule(entry, next(now.max(entry.at)).as_ref())
            .await?;
        Ok(build)
    }

    /// Starts build `id` unless it exists. A trigger whose build cannot be planned
    /// (a parameter grew past its bound with the event's values) starts nothing and
    /// says so in the log: the cause will not change on a retry.
    async fn start_triggered(
        &self,
        project: &Project,
        overrides: Result<std::collections::BTreeMap<String, String>, String>,
        cause: Trigger,
        id: &str,
    ) -> Result<Option<Build>, BuildError> {
        let waiting = self.store.slots(&project.name).await?.waiting.len();
        if waiting >= MAX_WAITING_FOR_TRIGGER && self.store.get_build(id).await?.is_none() {
            tracing::warn!(project = %project.name, waiting, "trigger skipped: too many builds wait");
            return Ok(None);
        }
        let planned = match overrides {
            Ok(overrides) => self.start_once(project, &overrides, cause, id).await,
            Err(e) => Err(BuildError::Invalid(e)),
        };
        match planned {
            Ok((build, true)) => {
                tracing::info!(project = %project.name, build = %build.id, "triggered build started");
                Ok(Some(build))
            }
            Ok((_, false)) => Ok(None),
            Err(e @ (BuildError::Invalid(_) | BuildError::Spec(_))) => {
                tracing::warn!(project = %project.name, error = %e, "trigger starts no build");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}
