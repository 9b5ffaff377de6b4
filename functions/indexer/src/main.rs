//! `indexer`: index runs of external Helm repositories (docs/access.md, "External
//! Helm repositories") and of Cairn's own Helm repositories (metadata-sync asks for
//! one after each publication). Fed by the index FIFO queue, one message group per
//! repository, so one run of a repository at a time; also invoked on a schedule,
//! when it queues a run of every external repository whose interval has passed.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use cairn_aws::sqs::{Parsed, batch_response, parse_batch};
use cairn_aws::{Clients, DynamoCatalog, ExternalServices, IndexMessage, S3Store, init_tracing};
use cairn_core::SupportedRepos;
use cairn_core::repositories::external::{Hosted, IndexQueue, Indexer, due_for_index};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

struct Worker {
    catalog: DynamoCatalog,
    services: ExternalServices,
    /// The configured repositories (Cairn's own Helm repositories are indexed too).
    seed: SupportedRepos,
    /// The repository bucket, where those keep their index.yaml.
    files: S3Store,
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Worker {
    async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, Error> {
        if event.payload.get("Records").is_some() {
            let sqs: SqsEvent = serde_json::from_value(event.payload)?;
            return Ok(serde_json::to_value(self.runs(sqs).await)?);
        }
        // A scheduled invocation: queue the runs that are due.
        let due = due_for_index(&self.catalog, &self.catalog, now()).await?;
        for path in &due {
            self.services.queue.request_index(path, "schedule").await?;
        }
        tracing::info!(queued = due.len(), "scheduled index runs");
        Ok(serde_json::json!({"queued": due}))
    }

    async fn runs(&self, event: SqsEvent) -> SqsBatchResponse {
        let indexer = Indexer {
            store: &self.catalog,
            source: &self.services.source,
            vault: &self.services.vault,
            apps: &self.catalog,
            hosted: Some(Hosted {
                seed: &self.seed,
                files: &self.files,
            }),
        };
        let mut failures = Vec::new();
        for Parsed { id, body, .. } in parse_batch::<IndexMessage>(event, "index run") {
            let IndexMessage { repository, reason } = body;
            if let Err(e) = indexer.run(&repository, &reason, now()).await {
                tracing::error!(repository, error = %e, "index run failed; will retry");
                failures.push(id);
            }
        }
        batch_response(failures)
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing(env!("CARGO_PKG_NAME"));
    let clients = Clients::load().await;
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let table = env("CAIRN_TABLE").ok_or("CAIRN_TABLE is not set")?;
    let bucket = env("CAIRN_REPO_BUCKET").ok_or("CAIRN_REPO_BUCKET is not set")?;
    let worker = Worker {
        catalog: DynamoCatalog::new(clients.dynamodb.clone(), &table)
            .with_dispatch_nudge(clients.sqs.clone(), env("CAIRN_DISPATCH_QUEUE_URL")),
        services: ExternalServices::from_env(&clients)?,
        seed: cairn_core::config::supported_repos(env)?,
        files: S3Store::new(clients.s3.clone(), &bucket, ""),
    };
    let worker = &worker;
    run(service_fn(move |event| async move {
        worker.handle(event).await
    }))
    .await
}
