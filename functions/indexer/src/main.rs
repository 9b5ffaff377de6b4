//! `indexer`: index runs of external Helm repositories (docs/access.md, "External
//! Helm repositories"). Fed by the index FIFO queue, one message group per
//! repository, so one run of a repository at a time; also invoked on a schedule,
//! when it queues a run of every repository whose interval has passed.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use cairn_aws::sqs::{Parsed, batch_response, parse_batch};
use cairn_aws::{Clients, DynamoCatalog, ExternalServices, IndexMessage, init_tracing};
use cairn_core::repositories::external::{IndexQueue, Indexer, due_for_index};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

struct Worker {
    catalog: DynamoCatalog,
    services: ExternalServices,
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
    init_tracing();
    let clients = Clients::load().await;
    let table = std::env::var("CAIRN_TABLE").map_err(|_| "CAIRN_TABLE is not set")?;
    let worker = Worker {
        catalog: DynamoCatalog::new(clients.dynamodb.clone(), &table),
        services: ExternalServices::from_env(&clients)?,
    };
    let worker = &worker;
    run(service_fn(move |event| async move {
        worker.handle(event).await
    }))
    .await
}
