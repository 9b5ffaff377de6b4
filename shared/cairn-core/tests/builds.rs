//! Builds against the in-memory ports: project files and their refusals, and the
//! controller rules (claims, reports, cancellation, lost workers, concurrency).

use cairn_core::StoreError;
use cairn_core::access::Role;
use cairn_core::auth::{Authenticator, Principal, UserRecord};
use cairn_core::builds::{
    Beat, Build, BuildChange, BuildError, BuildState, BuildStore, Builds, Job, JobReport, Project,
    ProjectSpec, ScheduleEntry, Slots, StepState,
};
use cairn_core::events::EventLog;
use cairn_core::events::NewEvent;
use cairn_core::memory::MemoryCatalog;
use cairn_core::ports::UserDirectory;
use cairn_core::tokens::TokenStore;
use std::collections::BTreeMap;
use std::sync::Arc;

fn spec(text: &str) -> ProjectSpec {
    ProjectSpec::from_yaml(text).expect("valid project")
}

fn refusal(text: &str) -> String {
    ProjectSpec::from_yaml(text)
        .expect_err("refused")
        .to_string()
}

#[test]
fn a_project_file_runs_its_pipelines_in_order_with_includes_and_parameters() {
    let project = spec(
        "\
parameters:
  version: 1.10
  tag: v${version}
  repo: release/2.11/ubuntu/jammy
run: [build, ship]
pipelines:
  - name: fetch
    actions:
      - action: archive
        origin: https://example.org/hello.git
        ref: ${tag}
        name: hello
  - name: build
    actions:
      - action: pipeline
        pipeline: fetch
        parameters: {version: '2.0'}
      - action: shell
        name: compile
        labels: [dpkg]
        timeout: 120
        script: echo ${version}
  - name: ship
    actions:
      - action: publish
        repository: ${repo}
        files: [out/*.deb]
",
    );
    let steps = project.steps(&BTreeMap::new()).expect("steps");
    let kinds: Vec<_> = steps.iter().map(|s| s.action.kind.type_name()).collect();
    assert_eq!(kinds, ["archive", "shell", "publish"]);
    let json = serde_json::to_value(&steps[0].action).expect("json");
    assert_eq!(
        json["ref"], "v2.0",
        "the include's parameter, through another"
    );
    assert_eq!(steps[1].action.timeout, 120);
    assert_eq!(
        steps[1].parameters["version"], "1.10",
        "YAML scalars stay text"
    );
    let json = serde_json::to_value(&steps[1].action).expect("json");
    assert_eq!(
        json["script"], "echo ${version}",
        "the shell expands its environment"
    );
    let overridden = project
        .steps(&BTreeMap::from([("version".to_string(), "3".to_string())]))
        .expect("steps");
    assert_eq!(
        serde_json::to_value(&overridden[0].action).expect("json")["ref"],
        "v2.0"
    );
    assert_eq!(overridden[1].parameters["tag"], "v3");
    // As stored (JSON), and back: an archive's name is not a step's title.
    let stored = serde_json::to_string(&project).expect("json");
    assert_eq!(
        serde_json::from_str::<ProjectSpec>(&stored).expect("reads back"),
        project
    );
    let unknown = project.steps(&BTreeMap::from([("nope".to_string(), "x".to_string())]));
    assert!(
        unknown
            .expect_err("refused")
            .to_string()
            .contains("not a parameter")
    );
}

#[test]
fn bad_project_files_are_refused_with_their_line() {
    let base = "pipelines:\n  - name: p\n    actions:\n";
    for (text, expected) in [
        (
            format!("{base}      - action: shell\n        script: x\n      - action: compile\n"),
            "line 6: pipelines[0].actions[1].action: unknown action \"compile\"",
        ),
        (
            format!("{base}      - action: shell\n        scrpt: x\n"),
            "line 5: pipelines[0].actions[0].scrpt: unknown field for a shell action",
        ),
        (
            format!("{base}      - action: shell\n"),
            "line 4: pipelines[0].actions[0].script: is required",
        ),
        (
            format!(
                "{base}      - action: pipeline\n        pipeline: q\n  - name: q\n    actions:\n      - action: pipeline\n        pipeline: p\n"
            ),
            "pipelines include each other in a loop: p -> q -> p",
        ),
        (
            format!(
                "parameters:\n  a: ${{b}}\n  b: x${{a}}\n{base}      - action: shell\n        script: x\n"
            ),
            "line 2: parameters.a: parameters refer to each other in a loop: a -> b -> a",
        ),
        (
            format!(
                "parameters:\n  a: ${{nope}}\n{base}      - action: shell\n        script: x\n"
            ),
            "line 2: parameters.a: refers to ${nope}, which is no parameter",
        ),
        (
            format!(
                "parameters:\n  a: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n  b: ${{a}}${{a}}\n  c: ${{b}}${{b}}\n  d: ${{c}}${{c}}\n  e: ${{d}}${{d}}\n  f: ${{e}}${{e}}\n  g: ${{f}}${{f}}\n  h: ${{g}}${{g}}\n{base}      - action: shell\n        script: x\n"
            ),
            "expands to more than 4096 bytes",
        ),
        (
            format!(
                "{base}      - action: publish\n        repository: r\n        files: [../etc/passwd]\n"
            ),
            "line 6: pipelines[0].actions[0].files[0]: \"../etc/passwd\" is not a relative path",
        ),
        (
            format!("{base}      - action: shell\n        script: x\n        timeout: forever\n"),
            "line 6: pipelines[0].actions[0].timeout: is a whole number",
        ),
        (
            format!("{base}      - action: shell\n        script: x\nrun: [nope]\n"),
            "line 6: run[0]: no pipeline named \"nope\"",
        ),
        (
            format!("parameters:\n  PATH: /tmp\n{base}      - action: shell\n        script: x\n"),
            "line 2: parameters.PATH: a parameter name is letters",
        ),
        (
            "pipelines: []\n".to_string(),
            "line 1: pipelines: between 1 and 20 pipelines",
        ),
        (
            "pipelines:\n  - name: p\n    actions: [\n".to_string(),
            "YAML syntax",
        ),
    ] {
        let error = refusal(&text);
        assert!(
            error.contains(expected),
            "{text}\n=> {error}\nwanted {expected}"
        );
    }
    // Includes that multiply past the step limit.
    let mut text = String::from("pipelines:\n  - name: a\n    actions:\n");
    for _ in 0..8 {
        text.push_str("      - action: shell\n        script: x\n");
    }
    for (name, inner) in [("b", "a"), ("c", "b")] {
        text.push_str(&format!("  - name: {name}\n    actions:\n"));
        for _ in 0..8 {
            text.push_str(&format!(
                "      - action: pipeline\n        pipeline: {inner}\n"
            ));
        }
    }
    assert!(
        refusal(&text).contains("more than 50 steps"),
        "{}",
        refusal(&text)
    );
}

struct World {
    catalog: Arc<MemoryCatalog>,
    builds: Builds,
    alice: Principal,
    worker: Principal,
}

async fn world(lease_ms: i64) -> World {
    let catalog = Arc::new(MemoryCatalog::default());
    catalog
        .put_user(&UserRecord {
            name: "alice".into(),
            password_hash: String::new(),
            role: Role::Uploader,
            tokens_after: 0,
            selectors: Vec::new(),
        })
        .await
        .expect("user");
    let builds = Builds {
        store: catalog.clone(),
        tokens: catalog.clone(),
        logs: catalog.clone(),
        blobs: catalog.clone(),
        ticks: catalog.clone(),
        lease_ms,
    };
    World {
        catalog,
        builds,
        alice: Principal::with_role("alice", Role::Uploader),
        worker: Principal::with_role("ops", Role::Admin),
    }
}

static SEED: std::sync::LazyLock<cairn_core::SupportedRepos> = std::sync::LazyLock::new(|| {
    serde_json::from_str(
        r#"{"kinds":["release"],"series":["2.11"],
            "dists":{"ubuntu":{"format":"deb","versions":["jammy"]}}}"#,
    )
    .expect("seed")
});

impl World {
    /// Alice defines project `hello` as `text`.
    async fn define(&self, text: &str) {
        self.builds
            .define(&self.alice, "hello", spec(text))
            .await
            .expect("defined");
    }

    /// Project `hello` ([`TWO_STEPS`]) defined by alice, a build of it started, and
    /// its first job claimed by `worker`: the build as started, the claim, and the
    /// job token's principal.
    async fn first_job(
        &self,
        worker: &str,
    ) -> (
        cairn_core::builds::Build,
        cairn_core::builds::Claimed,
        Principal,
    ) {
        self.builds
            .define(&self.alice, "hello", spec(TWO_STEPS))
            .await
            .expect("defined");
        let build = self
            .builds
            .start(&self.alice, "hello", &BTreeMap::new())
            .await
            .expect("started");
        let job = self
            .builds
            .claim(&self.worker, worker, &[])
            .await
            .expect("claim")
            .expect("a job");
        let principal = self.job_principal(&job.token).await;
        (build, job, principal)
    }

    /// Who may read which event, as the build controller asks.
    fn audience(&self) -> cairn_core::repositories::Audience<'_> {
        cairn_core::repositories::Audience::new(&SEED, self.catalog.as_ref(), self.catalog.as_ref())
    }

    async fn job_principal(&self, token: &str) -> Principal {
        Authenticator::new(self.catalog.as_ref())
            .authenticate(Some(&format!("Bearer {token}")), now())
            .await
            .expect("the job token works while its job runs")
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

const TWO_STEPS: &str = "\
pipelines:
  - name: p
    actions:
      - action: shell
        script: echo one
      - action: publish
        repository: release/2.11/ubuntu/jammy
        files: [out/*.deb]
";

#[tokio::test]
async fn a_build_runs_its_steps_on_workers_and_records_what_they_reported() {
    let w = world(60_000).await;
    w.define(TWO_STEPS).await;
    let build = w
        .builds
        .start(&w.alice, "hello", &BTreeMap::new())
        .await
        .expect("started");
    assert_eq!(build.state, BuildState::Running);
    assert_eq!(build.steps[0].state, StepState::Queued);
    // A worker without the label a job asks for gets nothing; the worker scope is needed.
    assert!(matches!(
        w.builds.claim(&w.alice, "w", &[]).await,
        Err(BuildError::Denied(_))
    ));
    let first = w
        .builds
        .claim(&w.worker, "w1", &[])
        .await
        .expect("claim")
        .expect("a job");
    assert!(
        w.builds
            .claim(&w.worker, "w2", &[])
            .await
            .expect("claim")
            .is_none(),
        "taken once"
    );
    let job1 = w.job_principal(&first.token).await;
    assert!(
        job1.scopes
            .allows(cairn_core::access::Action::Artifacts, "hello")
            && !job1
                .scopes
                .allows(cairn_core::access::Action::Artifacts, "other")
            && !job1.scopes.allows_any(cairn_core::access::Action::Upload),
        "a shell job may use its project's artifacts, nothing more"
    );
    assert_eq!(
        w.builds
            .heartbeat(&job1, &build.id, &first.job.id)
            .await
            .expect("beat"),
        Beat::Continue(
            w.builds
                .store
                .get_build(&build.id)
                .await
                .expect("read")
                .expect("there")
                .steps[0]
                .lease_until
                .expect("lease")
        )
    );
    w.builds
        .append_log(&job1, &build.id, &first.job.id, 0, "one\n".into())
        .await
        .expect("log");
    // Another principal (the owner's own password) cannot report on the job.
    let refused = w
        .builds
        .report(
            &w.alice,
            &build.id,
            &first.job.id,
            JobReport {
                exit_code: 0,
                error: None,
                stderr_tail: "".into(),
                outputs: serde_json::Value::Null,
                workspace: Some(stored(&w, "hello")),
            },
        )
        .await;
    assert!(
        matches!(refused, Err(BuildError::Forbidden(_))),
        "{refused:?}"
    );
    let report = |workspace| JobReport {
        exit_code: 0,
        error: None,
        stderr_tail: "".into(),
        outputs: serde_json::Value::Null,
        workspace,
    };
    let after = w
        .builds
        .report(
            &job1,
            &build.id,
            &first.job.id,
            report(Some(stored(&w, "hello"))),
        )
        .await
        .expect("reported");
    assert_eq!(after.steps[0].state, StepState::Succeeded);
    assert_eq!(after.steps[1].state, StepState::Queued);
    // The job's token is gone with its job.
    let (id, _) = cairn_core::tokens::parse_token(&first.token).expect("shape");
    assert!(w.catalog.get_token(id).await.expect("read").is_none());
    assert!(
        w.builds
            .heartbeat(&job1, &build.id, &first.job.id)
            .await
            .is_err()
    );
    // The publish job's token may upload to its repository and nowhere else.
    let second = w
        .builds
        .claim(&w.worker, "w2", &[])
        .await
        .expect("claim")
        .expect("a job");
    let job2 = w.job_principal(&second.token).await;
    assert!(job2.scopes.allows(
        cairn_core::access::Action::Upload,
        "release/2.11/ubuntu/jammy"
    ));
    assert!(
        !job2
            .scopes
            .allows(cairn_core::access::Action::Upload, "release/3.0/el/9")
    );
    assert!(!job2.scopes.allows_any(cairn_core::access::Action::Builds));
    // The first job's token cannot report on the second job.
    assert!(
        w.builds
            .report(
                &job1,
                &build.id,
                &second.job.id,
                JobReport {
                    exit_code: 0,
                    error: None,
                    stderr_tail: "".into(),
                    outputs: serde_json::Value::Null,
                    workspace: None,
                }
            )
            .await
            .is_err()
    );
    let done = w
        .builds
        .report(
            &job2,
            &build.id,
            &second.job.id,
            JobReport {
                exit_code: 0,
                error: None,
                stderr_tail: "".into(),
                outputs: serde_json::json!({"published": ["a.deb"]}),
                workspace: None,
            },
        )
        .await
        .expect("reported");
    assert_eq!(done.state, BuildState::Succeeded);
    let log = w
        .builds
        .read_log(&w.alice, &build.id, 0, 0)
        .await
        .expect("log");
    assert_eq!((&log.bytes[..], log.complete), (&b"one\n"[..], true));
    let kinds: Vec<String> = w
        .catalog
        .events_after(None, 0, 100)
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "build.started",
            "log.appended",
            "build.action.finished",
            "build.action.finished",
            "build.finished"
        ]
    );
}

#[tokio::test]
async fn a_failing_command_stops_the_build_with_its_exit_code_and_is_not_retried() {
    let w = world(60_000).await;
    let (build, job, principal) = w.first_job("w1").await;
    let failed = w
        .builds
        .report(
            &principal,
            &build.id,
            &job.job.id,
            JobReport {
                exit_code: 2,
                error: None,
                stderr_tail: format!("{}the end", "x".repeat(5000)),
                outputs: serde_json::Value::Null,
                workspace: None,
            },
        )
        .await
        .expect("reported");
    assert_eq!(failed.state, BuildState::Failed);
    assert_eq!(failed.steps[0].exit_code, Some(2));
    assert!(
        failed.steps[0]
            .stderr_tail
            .as_deref()
            .is_some_and(|t| t.ends_with("the end") && t.len() <= 2048)
    );
    assert_eq!(failed.steps[1].state, StepState::Skipped);
    assert_eq!(failed.error.as_deref(), Some("step 1 (shell) exited 2"));
    assert!(
        w.builds
            .claim(&w.worker, "w2", &[])
            .await
            .expect("claim")
            .is_none()
    );
    assert!(w.builds.tick(&build.id).await.is_ok_and(|more| !more));
}

#[tokio::test]
async fn a_cancelled_build_tells_its_worker_and_refuses_the_late_report() {
    let w = world(60_000).await;
    let (build, job, principal) = w.first_job("w1").await;
    let cancelled = w
        .builds
        .cancel(&w.alice, &build.id)
        .await
        .expect("cancelled");
    assert_eq!(cancelled.state, BuildState::Cancelled);
    assert_eq!(cancelled.steps[0].state, StepState::Cancelled);
    assert_eq!(
        w.builds
            .heartbeat(&principal, &build.id, &job.job.id)
            .await
            .expect("beat"),
        Beat::Cancel
    );
    assert!(
        w.builds
            .report(
                &principal,
                &build.id,
                &job.job.id,
                JobReport {
                    exit_code: 0,
                    error: None,
                    stderr_tail: "".into(),
                    outputs: serde_json::Value::Null,
                    workspace: None,
                }
            )
            .await
            .is_err()
    );
    assert!(matches!(
        w.builds.cancel(&w.alice, &build.id).await,
        Err(BuildError::Conflict(_))
    ));
    // Another account neither sees nor cancels it.
    let mallory = Principal::with_role("mallory", Role::Uploader);
    assert!(matches!(
        w.builds.cancel(&mallory, &build.id).await,
        Err(BuildError::NotFound(_))
    ));
    assert!(matches!(
        w.builds.define(&mallory, "hello", spec(TWO_STEPS)).await,
        Err(BuildError::Forbidden(_))
    ));
}

#[tokio::test]
async fn a_lost_worker_s_step_goes_to_another_worker_and_the_old_one_cannot_report() {
    let w = world(30).await;
    let (build, lost, lost_principal) = w.first_job("w1").await;
    w.builds
        .heartbeat(&lost_principal, &build.id, &lost.job.id)
        .await
        .expect("acknowledged");
    tokio::time::sleep(std::time::Duration::from_millis(60)).await;
    assert!(w.builds.tick(&build.id).await.expect("tick"));
    // A claim nobody acknowledges (a poll whose worker went away) costs no attempt.
    w.builds
        .claim(&w.worker, "ghost", &[])
        .await
        .expect("claim")
        .expect("requeued");
    tokio::time::sleep(std::time::Duration::from_millis(60)).await;
    assert!(w.builds.tick(&build.id).await.expect("tick"));
    let record = w
        .builds
        .store
        .get_build(&build.id)
        .await
        .expect("read")
        .expect("there");
    assert_eq!(record.steps[0].attempts, 1, "{:?}", record.steps[0]);
    let again = w
        .builds
        .claim(&w.worker, "w2", &[])
        .await
        .expect("claim")
        .expect("requeued");
    let again_principal = w.job_principal(&again.token).await;
    w.builds
        .heartbeat(&again_principal, &build.id, &again.job.id)
        .await
        .expect("acknowledged");
    assert_eq!(again.job.step, 0);
    assert_ne!(again.job.id, lost.job.id);
    assert!(
        w.builds
            .report(
                &lost_principal,
                &build.id,
                &lost.job.id,
                JobReport {
                    exit_code: 0,
                    error: None,
                    stderr_tail: "".into(),
                    outputs: serde_json::Value::Null,
                    workspace: None,
                }
            )
            .await
            .is_err()
    );
    let record = w
        .builds
        .store
        .get_build(&build.id)
        .await
        .expect("read")
        .expect("there");
    assert_eq!(
        (record.steps[0].attempts, record.steps[0].worker.as_deref()),
        (2, Some("w2"))
    );
    // Lost three times: the step fails, and says why.
    for worker in ["w3"] {
        tokio::time::sleep(std::time::Duration::from_millis(60)).await;
        w.builds.tick(&build.id).await.expect("tick");
        let job = w
            .builds
            .claim(&w.worker, worker, &[])
            .await
            .expect("claim")
            .expect("requeued");
        let principal = w.job_principal(&job.token).await;
        w.builds
            .heartbeat(&principal, &build.id, &job.job.id)
            .await
            .expect("acknowledged");
    }
    tokio::time::sleep(std::time::Duration::from_millis(60)).await;
    assert!(!w.builds.tick(&build.id).await.expect("tick"));
    let record = w
        .builds
        .store
        .get_build(&build.id)
        .await
        .expect("read")
        .expect("there");
    assert_eq!(record.state, BuildState::Failed);
    assert!(
        record
            .error
            .as_deref()
            .is_some_and(|e| e.contains("lost its worker 3 times")),
        "{:?}",
        record.error
    );
}

#[tokio::test]
async fn builds_beyond_the_project_s_concurrency_wait_for_a_slot() {
    let w = world(60_000).await;
    let text = format!("concurrency: 1\n{TWO_STEPS}");
    w.define(&text).await;
    let first = w
        .builds
        .start(&w.alice, "hello", &BTreeMap::new())
        .await
        .expect("started");
    let second = w
        .builds
        .start(&w.alice, "hello", &BTreeMap::new())
        .await
        .expect("started");
    let third = w
        .builds
        .start(&w.alice, "hello", &BTreeMap::new())
        .await
        .expect("started");
    assert_eq!(
        (first.state, second.state, third.state),
        (BuildState::Running, BuildState::Queued, BuildState::Queued)
    );
    // A waiting build cancelled keeps no one waiting.
    w.builds
        .cancel(&w.alice, &second.id)
        .await
        .expect("cancelled");
    w.builds
        .cancel(&w.alice, &first.id)
        .await
        .expect("cancelled");
    let third = w
        .builds
        .store
        .get_build(&third.id)
        .await
        .expect("read")
        .expect("there");
    assert_eq!(
        third.state,
        BuildState::Running,
        "the slot went to the next one waiting"
    );
    let listed = w.builds.builds(&w.alice, "hello", 10).await.expect("list");
    assert_eq!(listed.len(), 3);
}

#[tokio::test]
async fn a_build_too_large_for_one_record_is_refused_before_it_starts() {
    let w = world(60_000).await;
    let script = "x".repeat(60 * 1024);
    let text = format!(
        "pipelines:\n  - name: big\n    actions:\n      - action: shell\n        script: {script}\n  - name: all\n    actions:\n      - action: pipeline\n        pipeline: big\n      - action: pipeline\n        pipeline: big\n      - action: pipeline\n        pipeline: big\nrun: [all]\n"
    );
    w.builds
        .define(&w.alice, "big", spec(&text))
        .await
        .expect("the definition itself is small enough");
    let refused = w.builds.start(&w.alice, "big", &BTreeMap::new()).await;
    assert!(
        matches!(&refused, Err(BuildError::Spec(e)) if e.message.contains("more than 150 KiB")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_log_chunk_that_never_came_is_skipped_once_the_step_is_over() {
    let w = world(60_000).await;
    let (build, job, principal) = w.first_job("w1").await;
    for (offset, bytes) in [(0, "ab"), (10, "xy")] {
        w.builds
            .append_log(&principal, &build.id, &job.job.id, offset, bytes.into())
            .await
            .expect("stored");
    }
    let read = w
        .builds
        .read_log(&w.alice, &build.id, 0, 0)
        .await
        .expect("log");
    assert_eq!(
        (&read.bytes[..], read.next_offset, read.complete),
        (&b"ab"[..], 2, false)
    );
    let report = JobReport {
        workspace: Some(stored(&w, "hello")),
        ..JobReport::default()
    };
    w.builds
        .report(&principal, &build.id, &job.job.id, report)
        .await
        .expect("reported");
    let read = w
        .builds
        .read_log(&w.alice, &build.id, 0, 2)
        .await
        .expect("log");
    assert_eq!(
        (&read.bytes[..], read.next_offset, read.complete),
        (&b"xy"[..], 12, true)
    );
}

#[tokio::test]
async fn a_lambda_step_is_never_a_workers_and_the_controller_takes_it_once() {
    let w = world(60_000).await;
    let text = "\
pipelines:
  - name: p
    actions:
      - action: artifact
        runner: lambda
        restore: toolchain
      - action: shell
        script: echo long
";
    w.builds
        .define(&w.alice, "mixed", spec(text))
        .await
        .expect("defined");
    let build = w
        .builds
        .start(&w.alice, "mixed", &BTreeMap::new())
        .await
        .expect("started");
    assert_eq!(
        build.steps[0].action.timeout, 840,
        "a Lambda step's default"
    );
    // Queuing it asked the controller to dispatch it; no worker may take it.
    assert_eq!(
        *w.catalog.dispatched.lock().expect("lock"),
        std::slice::from_ref(&build.id)
    );
    assert!(
        w.builds
            .claim(&w.worker, "w1", &["runner=lambda".into()])
            .await
            .expect("claim")
            .is_none()
    );
    let taken = w.builds.dispatch(&build.id).await.expect("dispatch");
    assert_eq!(taken.len(), 1);
    assert!(
        w.builds
            .dispatch(&build.id)
            .await
            .expect("again")
            .is_empty(),
        "taken once"
    );
    // A Lambda that never answered: its step goes back, and the attempt counts.
    let mut silent = taken[0].build.clone();
    let lease_end = silent.steps[0].lease_until.expect("lease");
    let effects = silent.expire(lease_end + 1);
    assert_eq!(effects.queued.len(), 1);
    assert_eq!(
        silent.steps[0].attempts, 1,
        "counted, unlike a worker's lost poll"
    );
    let answer = w.builds.job_answer(&taken[0]).await.expect("answer");
    assert_eq!(answer["action"]["runner"], "lambda");
    assert_eq!(answer["save_workspace"], true);
    let job = w
        .job_principal(answer["token"].as_str().expect("token"))
        .await;
    let after = w
        .builds
        .report(
            &job,
            &build.id,
            &taken[0].job.id,
            JobReport {
                exit_code: 0,
                error: None,
                stderr_tail: String::new(),
                outputs: serde_json::Value::Null,
                workspace: Some(stored(&w, "mixed")),
            },
        )
        .await
        .expect("reported");
    assert_eq!(after.steps[0].worker.as_deref(), Some("lambda"));
    // The next step is a worker's: no new dispatch, a worker takes it.
    assert_eq!(w.catalog.dispatched.lock().expect("lock").len(), 1);
    assert!(
        w.builds
            .claim(&w.worker, "w1", &[])
            .await
            .expect("claim")
            .is_some()
    );
}

#[test]
fn a_lambda_step_is_a_built_in_action_with_no_labels_and_at_most_14_minutes() {
    let action = |extra: &str| {
        format!(
            "pipelines:\n  - name: p\n    actions:\n      - action: artifact\n        restore: x\n{extra}"
        )
    };
    assert!(refusal(
        "pipelines:\n  - name: p\n    actions:\n      - action: shell\n        script: x\n        runner: lambda\n"
    )
    .contains("a shell step runs on a worker"));
    assert!(
        refusal(&action("        runner: lambda\n        labels: [dpkg]\n"))
            .contains("asks for no labels")
    );
    assert!(
        refusal(&action("        runner: lambda\n        timeout: 900\n"))
            .contains("between 1 and 840")
    );
    assert!(refusal(&action("        runner: ec2\n")).contains("`worker` (default) or `lambda`"));
    assert_eq!(
        spec(&action("        runner: worker\n")).pipelines[0].actions[0].timeout,
        3600
    );
    assert_eq!(
        spec(&action("        runner: lambda\n")).pipelines[0].actions[0].timeout,
        840
    );
}

const TRIGGERED: &str = "\
parameters:
  ref: main
triggers:
  - event: archive.created
    archive: hello
    parameters: {ref: '${event.tag}'}
  - schedule: '* * * * *'
pipelines:
  - name: p
    actions:
      - action: shell
        script: echo $ref
";

fn archive_event(id: &str, name: &str, tag: &str, at_secs: i64) -> cairn_core::events::Event {
    let time = time::OffsetDateTime::from_unix_timestamp(at_secs).expect("time");
    cairn_core::events::Event {
        seq: 1,
        id: id.into(),
        kind: "archive.created".into(),
        timestamp: time
            .format(&time::format_description::well_known::Rfc3339)
            .expect("formats"),
        subject: format!("archive:{name}"),
        data: serde_json::json!({"name": name, "tag": tag}),
    }
}

#[tokio::test]
async fn an_archive_event_starts_one_build_per_trigger_even_when_handed_out_twice() {
    let w = world(60_000).await;
    w.define(TRIGGERED).await;
    let event = archive_event("evt_1", "hello", "cairn/hello/1", now() + 1);
    let started = w
        .builds
        .on_event(&event, &w.audience())
        .await
        .expect("fired");
    assert_eq!(started.len(), 1);
    let build = &started[0];
    assert_eq!(build.parameters["ref"], "cairn/hello/1");
    assert_eq!(
        (build.trigger.kind.as_str(), build.trigger.by.as_str()),
        ("event", "evt_1")
    );
    assert_eq!(build.owner, "alice");
    assert!(
        w.catalog
            .scheduled
            .lock()
            .expect("lock")
            .contains(&build.id),
        "the controller looks at a triggered build like any other"
    );
    // The dispatcher hands the same event out again, twice at once.
    let (one, two) = (w.audience(), w.audience());
    let (a, b) = tokio::join!(
        w.builds.on_event(&event, &one),
        w.builds.on_event(&event, &two)
    );
    assert!(a.expect("again").is_empty() && b.expect("again").is_empty());
    let all = w.builds.builds(&w.alice, "hello", 10).await.expect("list");
    assert_eq!(all.len(), 1, "one build per event");
    // Another name's archive, and an event older than the project, start nothing.
    let other = archive_event("evt_2", "hello2", "t", now() + 1);
    assert!(
        w.builds
            .on_event(&other, &w.audience())
            .await
            .expect("fired")
            .is_empty()
    );
    let old = archive_event("evt_3", "hello", "t", now() - 3600);
    assert!(
        w.builds
            .on_event(&old, &w.audience())
            .await
            .expect("fired")
            .is_empty()
    );
    // A `$` of the event's text is not expanded by the build.
    let dollar = archive_event("evt_4", "hello", "v$${ref}", now() + 1);
    let started = w
        .builds
        .on_event(&dollar, &w.audience())
        .await
        .expect("fired");
    let steps = &w
        .builds
        .build(&w.alice, &started[0].id)
        .await
        .expect("build");
    assert_eq!(steps.parameters["ref"], "v$$$${ref}", "stored escaped");
    // Without the trigger, the next event starts nothing.
    w.define(TWO_STEPS).await;
    let later = archive_event("evt_5", "hello", "t", now() + 1);
    assert!(
        w.builds
            .on_event(&later, &w.audience())
            .await
            .expect("fired")
            .is_empty()
    );
}

#[tokio::test]
async fn a_schedule_starts_one_build_per_due_time_and_stops_when_it_changes() {
    let w = world(60_000).await;
    w.define(TRIGGERED).await;
    let t = now();
    assert!(
        w.builds.run_schedules(t).await.expect("run").is_empty(),
        "not due yet"
    );
    // Two runs look at the same due entry at once: one build.
    let (a, b) = tokio::join!(
        w.builds.run_schedules(t + 61),
        w.builds.run_schedules(t + 61)
    );
    let started = a.expect("run").len() + b.expect("run").len();
    assert_eq!(started, 1);
    let build = &w.builds.builds(&w.alice, "hello", 10).await.expect("list")[0];
    assert_eq!(build.trigger.kind, "schedule");
    assert_eq!(build.parameters["ref"], "main");
    assert!(
        w.builds
            .run_schedules(t + 61)
            .await
            .expect("run")
            .is_empty()
    );
    // Down for an hour: one build, not sixty.
    assert_eq!(
        w.builds.run_schedules(t + 3700).await.expect("run").len(),
        1
    );
    // The schedule changes: the old entry is dropped when due, the new one waits. The
    // new one is daily at an hour at least two away (`@daily` is due within the next
    // run's 63 minutes when the test runs just before midnight UTC).
    let hour = (time::OffsetDateTime::from_unix_timestamp(t)
        .expect("now")
        .hour()
        + 3)
        % 24;
    let daily = TRIGGERED.replace("'* * * * *'", &format!("'0 {hour} * * *'"));
    w.define(&daily).await;
    assert!(
        w.builds
            .run_schedules(t + 3800)
            .await
            .expect("run")
            .is_empty()
    );
    assert_eq!(
        w.builds
            .builds(&w.alice, "hello", 10)
            .await
            .expect("list")
            .len(),
        2
    );
}

#[tokio::test]
async fn a_log_chunk_is_an_event_on_the_build_s_subject() {
    let w = world(60_000).await;
    let (build, job, principal) = w.first_job("w1").await;
    let big = "é".repeat(5000); // 10,000 bytes
    for (offset, bytes) in [(0u64, "hello\n".to_string()), (6, big)] {
        w.builds
            .append_log(&principal, &build.id, &job.job.id, offset, bytes.into())
            .await
            .expect("stored");
    }
    let events: Vec<_> = w
        .catalog
        .events_after(Some(&cairn_core::events::Subject::build("hello")), 0, 100)
        .await
        .expect("events")
        .into_iter()
        .filter(|e| e.kind == "log.appended")
        .collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].data["text"], "hello\n");
    assert_eq!(events[0].data["owner"], "alice");
    assert_eq!(events[1].data["offset"], 6);
    assert_eq!(events[1].data["next_offset"], 10_006);
    assert_eq!(events[1].data["truncated"], true);
    let text = events[1].data["text"].as_str().expect("text");
    assert_eq!(text.len(), 8192, "cut at a character boundary");
    assert!(text.chars().all(|c| c == 'é'));
}

#[test]
fn bad_triggers_are_refused_with_their_line() {
    let base = "parameters:\n  ref: main\npipelines:\n  - name: p\n    actions:\n      - action: shell\n        script: x\ntriggers:\n";
    for (tail, expected) in [
        (
            "  - schedule: '0 25 * * *'\n",
            "line 9: triggers[0].schedule: hour \"25\" is not a number from 0 to 23",
        ),
        (
            "  - event: archive.created\n    archive: hello\n    parameters: {nope: '${event.tag}'}\n",
            "triggers[0].parameters.nope: not a parameter of the project",
        ),
        (
            "  - event: archive.created\n    archive: hello\n    parameters: {ref: '${event.password}'}\n",
            "line 11: triggers[0].parameters.ref: archive.created has no field \"password\"",
        ),
        (
            "  - event: repository.published\n    archive: hello\n",
            "line 9: triggers[0].event: builds start on archive.created events only",
        ),
    ] {
        let text = format!("{base}{tail}");
        let got = refusal(&text);
        assert!(got.contains(expected), "{tail}: {got}");
    }
}

#[tokio::test]
async fn a_trigger_starts_nothing_while_its_project_has_a_long_line() {
    let w = world(60_000).await;
    w.define(TRIGGERED).await;
    // Concurrency 2: two run, the rest wait (no worker takes them).
    let limit = cairn_core::builds::MAX_WAITING_FOR_TRIGGER;
    for i in 0..limit + 2 {
        let event = archive_event(&format!("evt_{i}"), "hello", "t", now() + 1);
        w.builds
            .on_event(&event, &w.audience())
            .await
            .expect("fired");
    }
    let before = w
        .builds
        .builds(&w.alice, "hello", 100)
        .await
        .expect("list")
        .len();
    assert_eq!(before, limit + 2);
    let event = archive_event("evt_more", "hello", "t", now() + 1);
    assert!(
        w.builds
            .on_event(&event, &w.audience())
            .await
            .expect("fired")
            .is_empty()
    );
    assert!(
        w.builds
            .run_schedules(now() + 61)
            .await
            .expect("run")
            .is_empty()
    );
    assert_eq!(
        w.builds
            .builds(&w.alice, "hello", 100)
            .await
            .expect("list")
            .len(),
        before
    );
}

/// A workspace blob stored in `project`, as a runner reports it.
fn stored(w: &World, project: &str) -> (String, u64) {
    (w.catalog.store_blob(project, b"workspace"), 9)
}

#[tokio::test]
async fn a_success_without_the_workspace_the_next_step_needs_fails_the_step_clearly() {
    let w = world(60_000).await;
    let (build, job, principal) = w.first_job("old-worker").await;
    let after = w
        .builds
        .report(&principal, &build.id, &job.job.id, JobReport::default())
        .await
        .expect("recorded");
    assert_eq!(after.state, BuildState::Failed);
    assert_eq!(after.steps[0].state, StepState::Failed);
    assert!(
        after.steps[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("no workspace")),
        "{:?}",
        after.steps[0].error
    );
    assert_eq!(
        after.steps[1].state,
        StepState::Skipped,
        "the next step never ran"
    );
}

#[test]
fn two_triggers_on_one_schedule_are_refused() {
    let text = TRIGGERED.replace(
        "  - schedule: '* * * * *'\n",
        "  - schedule: '* * * * *'\n  - schedule: '*  * * * *'\n",
    );
    let got = refusal(&text);
    assert!(
        got.contains("triggers[2].schedule: the same schedule as triggers[1]"),
        "{got}"
    );
}

#[tokio::test]
async fn parameters_that_no_credential_can_name_are_refused_at_the_start() {
    let w = world(60_000).await;
    let text = "\
parameters:
  repo: release/2.11/ubuntu/jammy
pipelines:
  - name: p
    actions:
      - action: publish
        repository: ${repo}
        files: [out/*.deb]
";
    w.define(text).await;
    let refused = w
        .builds
        .start(
            &w.alice,
            "hello",
            &BTreeMap::from([("repo".to_string(), "a b".to_string())]),
        )
        .await
        .expect_err("refused");
    assert!(
        refused.to_string().contains("step 1 (publish) cannot run"),
        "{refused}"
    );
    assert!(
        w.builds
            .claim(&w.worker, "w1", &[])
            .await
            .expect("claim")
            .is_none(),
        "nothing was queued"
    );
}

/// A build store that holds one `put_project` of version `at` (before or after it
/// writes) until the test lets it go: a definition caught halfway while another
/// runs.
struct Held {
    inner: Arc<MemoryCatalog>,
    at: u64,
    after: bool,
    reached: tokio::sync::Notify,
    go: tokio::sync::Notify,
}

impl Held {
    async fn hold(&self, version: u64, after: bool) {
        if version == self.at && after == self.after {
            self.reached.notify_one();
            self.go.notified().await;
        }
    }
}

#[async_trait::async_trait]
impl BuildStore for Held {
    async fn get_project(&self, name: &str) -> Result<Option<Project>, StoreError> {
        self.inner.get_project(name).await
    }
    async fn put_project(&self, project: &Project) -> Result<bool, StoreError> {
        self.hold(project.version, false).await;
        let written = self.inner.put_project(project).await?;
        self.hold(project.version, true).await;
        Ok(written)
    }
    async fn list_projects(&self) -> Result<Vec<Project>, StoreError> {
        self.inner.list_projects().await
    }
    async fn slots(&self, project: &str) -> Result<Slots, StoreError> {
        self.inner.slots(project).await
    }
    async fn get_build(&self, id: &str) -> Result<Option<Build>, StoreError> {
        self.inner.get_build(id).await
    }
    async fn list_builds(&self, project: &str, limit: usize) -> Result<Vec<Build>, StoreError> {
        self.inner.list_builds(project, limit).await
    }
    async fn commit(&self, change: BuildChange<'_>) -> Result<bool, StoreError> {
        self.inner.commit(change).await
    }
    async fn queued_jobs(&self, limit: usize) -> Result<Vec<Job>, StoreError> {
        self.inner.queued_jobs(limit).await
    }
    async fn set_listener(
        &self,
        subject: &str,
        project: &str,
        version: u64,
        on: bool,
    ) -> Result<(), StoreError> {
        self.inner.set_listener(subject, project, version, on).await
    }
    async fn listeners(&self, subject: &str) -> Result<Vec<String>, StoreError> {
        self.inner.listeners(subject).await
    }
    async fn put_schedule(&self, entry: &ScheduleEntry) -> Result<(), StoreError> {
        self.inner.put_schedule(entry).await
    }
    async fn due_schedules(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<Vec<ScheduleEntry>, StoreError> {
        self.inner.due_schedules(now, limit).await
    }
    async fn move_schedule(
        &self,
        entry: &ScheduleEntry,
        next: Option<&ScheduleEntry>,
    ) -> Result<bool, StoreError> {
        self.inner.move_schedule(entry, next).await
    }
    async fn commit_events(&self, events: &[NewEvent]) -> Result<(), StoreError> {
        self.inner.commit_events(events).await
    }
}

impl World {
    /// Defines `hello` as `text` (its version `version`) over a store that holds it
    /// before or (`after`) after it is stored while `meanwhile` runs: what
    /// `meanwhile` gave.
    async fn define_while<T>(
        &self,
        text: &str,
        version: u64,
        after: bool,
        meanwhile: impl std::future::Future<Output = T>,
    ) -> T {
        let held = Arc::new(Held {
            inner: self.catalog.clone(),
            at: version,
            after,
            reached: tokio::sync::Notify::new(),
            go: tokio::sync::Notify::new(),
        });
        let builds = Builds {
            store: held.clone(),
            tokens: self.catalog.clone(),
            logs: self.catalog.clone(),
            blobs: self.catalog.clone(),
            ticks: self.catalog.clone(),
            lease_ms: 60_000,
        };
        let (defined, out) = tokio::join!(builds.define(&self.alice, "hello", spec(text)), async {
            held.reached.notified().await;
            let out = meanwhile.await;
            held.go.notify_one();
            out
        });
        defined.expect("the held definition");
        out
    }
}

#[tokio::test]
async fn a_redefinition_that_drops_triggers_does_not_undo_a_later_one_that_adds_them() {
    let w = world(60_000).await;
    w.define(TRIGGERED).await;
    // Version 2 drops the triggers and is held after it is stored, before it drops
    // its listener and schedule entry; version 3 puts them back meanwhile.
    let added = w.define_while(
        TWO_STEPS,
        2,
        true,
        w.builds.define(&w.alice, "hello", spec(TRIGGERED)),
    );
    added.await.expect("version 3");
    let event = archive_event("evt_1", "hello", "cairn/hello/1", now() + 1);
    let started = w
        .builds
        .on_event(&event, &w.audience())
        .await
        .expect("fired");
    assert_eq!(started.len(), 1, "version 3's listener is still there");
    let started = w.builds.run_schedules(now() + 61).await.expect("run");
    assert_eq!(
        started.len(),
        1,
        "version 3's schedule entry is still there"
    );
}

#[tokio::test]
async fn a_schedule_due_while_its_definition_is_being_stored_is_kept() {
    let w = world(60_000).await;
    w.define(TWO_STEPS).await;
    // Version 2 adds a schedule: its entry is written, and a run finds it due
    // before the project that wants it is stored.
    let t = now();
    let ran = w
        .define_while(TRIGGERED, 2, false, w.builds.run_schedules(t + 61))
        .await;
    assert!(ran.expect("run").is_empty(), "version 1 has no schedule");
    let started = w.builds.run_schedules(t + 181).await.expect("run");
    assert_eq!(started.len(), 1, "the entry was moved on, not dropped");
}

const ADJUSTED: &str = "\
triggers:
  - event: archive.created
    archive: hello
pipelines:
  - name: p
    actions:
      - action: archive
        origin: https://example.org/hello.git
        ref: main
        name: hello
      - action: shell
        script: echo adjusted > src/ADJUSTED
      - action: archive
        from: src
        name: hello
";

#[test]
fn an_archive_step_archives_a_workspace_folder_or_an_origin_s_ref_not_both() {
    use cairn_core::builds::project::ActionKind;
    let project = spec(ADJUSTED);
    let kind = &project.pipelines[0].actions[2].kind;
    assert!(
        matches!(kind, ActionKind::Archive { from, origin, .. } if from == "src" && origin.is_empty()),
        "{kind:?}"
    );
    let with = |extra: &str| {
        format!(
            "pipelines:\n  - name: p\n    actions:\n      - action: archive\n        from: src\n        name: hello\n{extra}"
        )
    };
    assert_eq!(
        refusal(&with("        ref: main\n")),
        "line 7: pipelines[0].actions[0].ref: an archive action takes `from` (a workspace folder) or `origin` and `ref`, not both"
    );
    assert!(refusal(&with("        into: out\n")).contains("not both"));
    assert!(
        refusal(&with("").replace("from: src", "from: ../up")).contains("is not a relative path")
    );
    // Stored and read back, the folder stays and the origin's fields stay empty.
    let text = serde_json::to_string(&project).expect("serializes");
    let back: ProjectSpec = serde_json::from_str(&text).expect("reads back");
    assert_eq!(back, project);
}

#[tokio::test]
async fn a_tree_a_build_archived_starts_no_build() {
    let w = world(60_000).await;
    w.define(ADJUSTED).await;
    let mut own = archive_event("evt_1", "hello", "cairn-1", now() + 1);
    own.data["build"] = serde_json::json!({"project": "hello", "build": "bld_1"});
    let started = w.builds.on_event(&own, &w.audience()).await.expect("fired");
    assert!(started.is_empty(), "the project's own adjusted tree");
    let mut other = archive_event("evt_2", "hello", "cairn-2", now() + 1);
    other.data["build"] = serde_json::json!({"project": "other", "build": "bld_2"});
    let started = w
        .builds
        .on_event(&other, &w.audience())
        .await
        .expect("fired");
    assert!(
        started.is_empty(),
        "another project's adjusted tree (they could loop)"
    );
    let from_origin = archive_event("evt_3", "hello", "cairn-3", now() + 1);
    let started = w
        .builds
        .on_event(&from_origin, &w.audience())
        .await
        .expect("fired");
    assert_eq!(started.len(), 1, "a tree from an origin");
}
