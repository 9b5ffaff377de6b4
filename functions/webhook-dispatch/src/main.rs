//! `webhook-dispatch` Lambda: hands the events after its cursor to the webhook
//! subscriptions that want them, as messages on the delivery queue
//! (`cairn_core::webhooks::dispatch`). Woken by a message after each committed event
//! (FIFO, one group, so one run at a time) and by a schedule every minute, which
//! catches up after a lost wake-up. Any payload will do: the cursor says where to go on.
//! Events that may start builds (`archive.created`) also go to the build queue.

use cairn_aws::builds::SqsTicks;
use cairn_aws::sqs::SqsDeliveryQueue;
use cairn_aws::{Clients, DynamoCatalog, init_tracing};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use std::time::Duration;

/// How long one run hands out events before it lets the next run go on.
const BUDGET: Duration = Duration::from_secs(20);

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing(env!("CARGO_PKG_NAME"));
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let table = env("CAIRN_TABLE").ok_or("CAIRN_TABLE is not set")?;
    let queue_url = env("CAIRN_DELIVERY_QUEUE_URL").ok_or("CAIRN_DELIVERY_QUEUE_URL is not set")?;
    let build_queue = env("CAIRN_BUILD_QUEUE_URL").ok_or("CAIRN_BUILD_QUEUE_URL is not set")?;
    let seed = cairn_core::config::supported_repos(env)?;
    let clients = Clients::load().await;
    let catalog = DynamoCatalog::new(clients.dynamodb.clone(), table);
    let queue = SqsDeliveryQueue::new(clients.sqs.clone(), queue_url);
    // Events that may start builds go to the build controller.
    let triggers = SqsTicks::new(clients.sqs.clone(), build_queue, 0);
    let (catalog, queue, triggers, seed) = (&catalog, &queue, &triggers, &seed);
    run(service_fn(
        move |_: LambdaEvent<serde_json::Value>| async move {
            // Private repositories' events go to their readers' webhooks only.
            let audience = cairn_core::repositories::Audience::new(seed, catalog, catalog);
            let queued = cairn_core::webhooks::dispatch(
                catalog, catalog, catalog, queue, triggers, &audience, BUDGET,
            )
            .await?;
            tracing::info!(queued, "dispatched");
            Ok::<_, Error>(serde_json::json!({"queued": queued}))
        },
    ))
    .await
}
