//! `build-controller` Lambda: the build controller's clock. Each message on the build
//! queue is a look at one build (`cairn_core::builds::Builds::tick`): a step whose
//! worker stopped heartbeating goes to another worker, a step past its timeout
//! fails, a waiting build starts when its project has a free slot. While the build
//! is not over, the look is scheduled again (a delayed message); every other change
//! (start, claim, report, cancel) happens in the API as it is asked for.

use aws_lambda_events::event::sqs::SqsEvent;
use cairn_aws::builds::{S3Logs, SqsTicks, TickMessage};
use cairn_aws::sqs::{Parsed, batch_response, parse_batch};
use cairn_aws::{Clients, DynamoCatalog, init_tracing};
use cairn_core::builds::{Builds, Ticks};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing(env!("CARGO_PKG_NAME"));
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let table = env("CAIRN_TABLE").ok_or("CAIRN_TABLE is not set")?;
    let bucket = env("CAIRN_BUILD_BUCKET").ok_or("CAIRN_BUILD_BUCKET is not set")?;
    let queue = env("CAIRN_BUILD_QUEUE_URL").ok_or("CAIRN_BUILD_QUEUE_URL is not set")?;
    let lease_secs: u64 = env("CAIRN_BUILD_LEASE_SECONDS")
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let clients = Clients::load().await;
    let catalog = Arc::new(
        DynamoCatalog::new(clients.dynamodb.clone(), table)
            .with_dispatch_nudge(clients.sqs.clone(), env("CAIRN_DISPATCH_QUEUE_URL")),
    );
    let builds = Builds {
        store: catalog.clone(),
        tokens: catalog,
        logs: Arc::new(S3Logs::new(clients.s3.clone(), bucket.clone())),
        blobs: Arc::new(cairn_aws::artifacts::S3Blobs::new(
            clients.s3.clone(),
            bucket,
        )),
        lease_ms: i64::try_from(lease_secs * 1000).unwrap_or(60_000),
    };
    let ticks = SqsTicks::new(clients.sqs.clone(), queue, lease_secs);
    let (builds, ticks) = (&builds, &ticks);
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let mut failed = Vec::new();
        for Parsed { id, body, .. } in parse_batch::<TickMessage>(event.payload, "build tick") {
            match builds.tick(&body.build).await {
                Ok(true) => ticks.schedule(&body.build).await,
                Ok(false) => tracing::info!(build = %body.build, "build over"),
                Err(cairn_core::builds::BuildError::NotFound(_)) => {
                    tracing::warn!(build = %body.build, "tick for a build that does not exist");
                }
                Err(e) => {
                    tracing::error!(build = %body.build, error = %e, "tick failed");
                    failed.push(id);
                }
            }
        }
        Ok::<_, Error>(batch_response(failed))
    }))
    .await
}
