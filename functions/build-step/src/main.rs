//! `build-step` Lambda: runs the build steps that ask for `runner: lambda` (short
//! actions, at most 14 minutes). The build controller takes such a job and sends it,
//! with a token minted for that job alone, to the build-step queue; this function runs
//! it exactly as `cairn worker` would (cli/src/worker.rs): restores the workspace from
//! the artifact store, runs the action, streams stdout and stderr to the log,
//! heartbeats, saves the workspace and reports the exit code.
//!
//! Its role grants nothing but its logs and its queue: it reaches Cairn through the
//! API with the job's token, which reports on that job only and reaches only its
//! project's artifacts (and the repository or archive name its step needs), until the
//! job ends. No table, no bucket, no signing key.

use aws_lambda_events::event::sqs::SqsEvent;
use cairn_aws::init_tracing;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use std::path::PathBuf;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing(env!("CARGO_PKG_NAME"));
    let api = std::env::var("CAIRN_API_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or("CAIRN_API_URL is not set")?;
    let workdir =
        PathBuf::from(std::env::var("CAIRN_WORKDIR").unwrap_or_else(|_| "/tmp/cairn-work".into()));
    let (api, workdir) = (&api, &workdir);
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        for record in event.payload.records {
            let job: serde_json::Value =
                match serde_json::from_str(record.body.as_deref().unwrap_or_default()) {
                    Ok(job) => job,
                    Err(e) => {
                        // Not retried: a message that is not a job never becomes one.
                        tracing::error!(error = %e, "a build-step message that is not a job");
                        continue;
                    }
                };
            tracing::info!(build = %job["build"], job = %job["job"], step = %job["step"], "running a build step");
            // The outcome is reported to the API (or the job's lease runs out): never
            // retried here, so a step never runs twice from one message.
            if let Err(failure) = cairn::worker::run_job(api, workdir, &job).await {
                tracing::error!(error = %failure.message, "the build step could not run");
            }
        }
        Ok::<_, Error>(())
    }))
    .await
}
