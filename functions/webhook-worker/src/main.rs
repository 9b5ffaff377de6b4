//! `webhook-worker` Lambda: one attempt per delivery message (see the library's
//! documentation). The batch's attempts run concurrently, so a slow endpoint does not
//! hold back the others; a message whose bookkeeping failed goes back to the queue.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use cairn_aws::sqs::{Parsed, SqsDeliveryQueue, batch_response, parse_batch};
use cairn_aws::{Clients, DynamoCatalog, init_tracing};
use cairn_callback::{AddressPolicy, Outgoing};
use cairn_core::config::number_or;
use cairn_core::webhooks::{Delivery, RetrySchedule};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use std::sync::Arc;
use std::time::Duration;
use webhook_worker::Worker;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing(env!("CARGO_PKG_NAME"));
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let table = env("CAIRN_TABLE").ok_or("CAIRN_TABLE is not set")?;
    let queue_url = env("CAIRN_DELIVERY_QUEUE_URL").ok_or("CAIRN_DELIVERY_QUEUE_URL is not set")?;
    let policy = AddressPolicy::parse_list(&env("CAIRN_OUTBOUND_ALLOW_LIST").unwrap_or_default())
        .map_err(|e| format!("CAIRN_OUTBOUND_ALLOW_LIST: {e}"))?;
    let schedule = match env("CAIRN_WEBHOOK_RETRY_SECS") {
        Some(text) => {
            RetrySchedule::parse(&text).map_err(|e| format!("CAIRN_WEBHOOK_RETRY_SECS: {e}"))?
        }
        None => RetrySchedule::default(),
    };
    let disable_after = number_or(&env, "CAIRN_WEBHOOK_DISABLE_AFTER_SECS", 5 * 86_400)?;
    let timeout = number_or(&env, "CAIRN_WEBHOOK_TIMEOUT_SECS", 10)?;
    let clients = Clients::load().await;
    // A disabled subscription's `webhook.disabled` wakes the dispatcher too.
    let catalog = Arc::new(
        DynamoCatalog::new(clients.dynamodb.clone(), table)
            .with_dispatch_nudge(clients.sqs.clone(), env("CAIRN_DISPATCH_QUEUE_URL")),
    );
    let worker = Worker {
        hooks: catalog.clone(),
        log: catalog.clone(),
        deliveries: catalog,
        queue: Arc::new(SqsDeliveryQueue::new(clients.sqs.clone(), queue_url)),
        sender: Arc::new(Outgoing::new(policy, Duration::from_secs(timeout))),
        schedule,
        disable_after: i64::try_from(disable_after).unwrap_or(i64::MAX),
    };
    let worker = &worker;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let attempts = parse_batch::<Delivery>(event.payload, "delivery")
            .into_iter()
            .map(|Parsed { id, body, .. }| async move {
                match worker.handle(&body, now).await {
                    Ok(outcome) => {
                        tracing::debug!(hook = body.hook, seq = body.seq, ?outcome, "delivery handled");
                        None
                    }
                    Err(e) => {
                        tracing::error!(hook = body.hook, seq = body.seq, error = %e, "delivery bookkeeping failed; will retry");
                        Some(id)
                    }
                }
            });
        let failed = futures::future::join_all(attempts).await.into_iter().flatten();
        Ok::<SqsBatchResponse, Error>(batch_response(failed))
    }))
    .await
}
