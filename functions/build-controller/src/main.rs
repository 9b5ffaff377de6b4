//! `build-controller` Lambda: the build controller's clock, and the dispatcher of the
//! build-step Lambda. Each message on the build queue is a look at one build
//! (`cairn_core::builds::Builds::tick`): a step whose runner stopped heartbeating goes
//! to another, a step past its timeout fails, a waiting build starts when its project
//! has a free slot. While the build is not over, the look is scheduled again (a
//! delayed message); every other change (start, claim, report, cancel) happens in the
//! API as it is asked for.
//!
//! A build whose queued step runs on the build-step Lambda (`runner: lambda`) is also
//! sent a message at once (`dispatch`); the controller then takes that job, with a
//! token for it alone, and sends it to the build-step queue. So the build-step Lambda
//! needs no credential of its own: the job's token is all it holds.
//!
//! Builds that triggers start: an event the webhook dispatcher hands over (a message
//! with `event`) and, every minute, the schedules that are due (an EventBridge rule
//! invokes the function directly with `{"schedules": true}`).

use aws_lambda_events::event::sqs::SqsEvent;
use cairn_aws::builds::{S3Logs, SqsSteps, SqsTicks, TickMessage};
use cairn_aws::sqs::{Parsed, batch_response, parse_batch};
use cairn_aws::{Clients, DynamoCatalog, init_tracing};
use cairn_core::builds::{BuildError, Builds, StepRunner, Ticks};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use std::sync::Arc;

/// Gives build `id`'s queued build-step Lambda jobs to the build-step Lambda.
async fn dispatch(builds: &Builds, steps: &dyn StepRunner, id: &str) -> Result<(), BuildError> {
    for claimed in builds.dispatch(id).await? {
        let job = builds.job_answer(&claimed).await?;
        // Not sent: the job's lease runs out and the controller takes it again.
        steps.run(&job).await?;
        tracing::info!(build = id, job = %claimed.job.id, "job sent to the build-step Lambda");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing(env!("CARGO_PKG_NAME"));
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let table = env("CAIRN_TABLE").ok_or("CAIRN_TABLE is not set")?;
    let bucket = env("CAIRN_BUILD_BUCKET").ok_or("CAIRN_BUILD_BUCKET is not set")?;
    let queue = env("CAIRN_BUILD_QUEUE_URL").ok_or("CAIRN_BUILD_QUEUE_URL is not set")?;
    let step_queue =
        env("CAIRN_BUILD_STEP_QUEUE_URL").ok_or("CAIRN_BUILD_STEP_QUEUE_URL is not set")?;
    let lease_secs: u64 = env("CAIRN_BUILD_LEASE_SECONDS")
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let seed = cairn_core::config::supported_repos(env)?;
    let clients = Clients::load().await;
    let catalog = Arc::new(
        DynamoCatalog::new(clients.dynamodb.clone(), table)
            .with_dispatch_nudge(clients.sqs.clone(), env("CAIRN_DISPATCH_QUEUE_URL")),
    );
    let ticks = Arc::new(SqsTicks::new(clients.sqs.clone(), queue, lease_secs));
    let builds = Builds {
        store: catalog.clone(),
        tokens: catalog.clone(),
        logs: Arc::new(S3Logs::new(clients.s3.clone(), bucket.clone())),
        blobs: Arc::new(cairn_aws::artifacts::S3Blobs::new(
            clients.s3.clone(),
            bucket,
        )),
        ticks: ticks.clone(),
        lease_ms: i64::try_from(lease_secs * 1000).unwrap_or(60_000),
    };
    let steps = SqsSteps::new(clients.sqs.clone(), step_queue);
    // Who may read an event: the same table's repositories and users.
    let readers = catalog.as_ref();
    let (builds, ticks, steps, seed) = (&builds, &ticks, &steps, &seed);
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        if event.payload.get("Records").is_none() {
            // The schedule rule's minute.
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let started = builds.run_schedules(now).await?;
            tracing::info!(started = started.len(), "schedules looked at");
            return Ok::<_, Error>(serde_json::json!({"started": started.len()}));
        }
        let batch: SqsEvent = serde_json::from_value(event.payload)?;
        let mut failed = Vec::new();
        for Parsed { id, body, .. } in parse_batch::<TickMessage>(batch, "build tick") {
            if let Some(event) = &body.event {
                // A private repository's archive builds its readers' projects only.
                let audience = cairn_core::repositories::Audience::new(seed, readers, readers);
                match builds.on_event(event, &audience).await {
                    Ok(started) => {
                        tracing::info!(event = %event.id, started = started.len(), "event looked at");
                    }
                    Err(e) => {
                        tracing::error!(event = %event.id, error = %e, "event not looked at");
                        failed.push(id);
                    }
                }
                continue;
            }
            let build = body.build.as_str();
            let looked = if body.dispatch {
                Ok(false)
            } else {
                builds.tick(build).await
            };
            // A look also dispatches: a dispatch message that was lost costs one lease.
            let outcome = match looked {
                Ok(again) => dispatch(builds, steps, build).await.map(|()| again),
                Err(e) => Err(e),
            };
            match outcome {
                Ok(true) => ticks.schedule(build).await,
                Ok(false) => {}
                Err(BuildError::NotFound(_)) => {
                    tracing::warn!(build, "tick for a build that does not exist");
                }
                Err(e) => {
                    tracing::error!(build, error = %e, "tick failed");
                    failed.push(id);
                }
            }
        }
        Ok(serde_json::to_value(batch_response(failed))?)
    }))
    .await
}
