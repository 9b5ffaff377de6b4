//! `builds-api` Lambda: projects, builds and the worker protocol (see the library's
//! documentation).

use builds_api::{App, router};
use cairn_aws::artifacts::S3Blobs;
use cairn_aws::builds::{S3Logs, SqsTicks};
use cairn_aws::{Clients, DynamoCatalog, init_tracing};
use cairn_core::builds::{Artifacts, Builds};
use std::sync::Arc;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing(env!("CARGO_PKG_NAME"));
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let table = env("CAIRN_TABLE").ok_or("CAIRN_TABLE is not set")?;
    let bucket = env("CAIRN_BUILD_BUCKET").ok_or("CAIRN_BUILD_BUCKET is not set")?;
    let queue = env("CAIRN_BUILD_QUEUE_URL").ok_or("CAIRN_BUILD_QUEUE_URL is not set")?;
    let number = |k: &str, default: u64| env(k).and_then(|v| v.parse().ok()).unwrap_or(default);
    let lease_secs = number("CAIRN_BUILD_LEASE_SECONDS", 60);
    let clients = Clients::load().await;
    let catalog = Arc::new(
        DynamoCatalog::new(clients.dynamodb.clone(), table)
            .with_dispatch_nudge(clients.sqs.clone(), env("CAIRN_DISPATCH_QUEUE_URL")),
    );
    let blobs = Arc::new(S3Blobs::new(clients.s3.clone(), bucket.clone()));
    let app = App {
        users: catalog.clone(),
        builds: Builds {
            store: catalog.clone(),
            tokens: catalog.clone(),
            logs: Arc::new(S3Logs::new(clients.s3.clone(), bucket)),
            blobs: blobs.clone(),
            ticks: Arc::new(SqsTicks::new(clients.sqs.clone(), queue, lease_secs)),
            lease_ms: i64::try_from(lease_secs * 1000).unwrap_or(60_000),
        },
        artifacts: Artifacts {
            projects: catalog.clone(),
            index: catalog,
            blobs,
            retention_days: i64::try_from(number("CAIRN_ARTIFACT_RETENTION_DAYS", 30))
                .unwrap_or(30),
        },
        max_wait: Duration::from_secs(number("CAIRN_WORK_WAIT_SECONDS", 20)),
    };
    cairn_http::serve(router(Arc::new(app))).await
}
