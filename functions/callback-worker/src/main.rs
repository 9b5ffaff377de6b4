//! `callback-worker` Lambda (see the library's documentation).

use cairn_archive::ArchiveConfig;
use cairn_aws::{Clients, DynamoArchives, SqsRetryLater, init_tracing};
use cairn_callback::Deliverer;
use callback_worker::Worker;
use lambda_runtime::{Error, run, service_fn};
use std::sync::Arc;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing(env!("CARGO_PKG_NAME"));
    let config = ArchiveConfig::from_env()?;
    let clients = Clients::load().await;
    let secret_id = config
        .callback_secret
        .clone()
        .ok_or("CAIRN_CALLBACK_SECRET (the callback signing secret's ARN) is not set")?;
    let secret = clients
        .secrets
        .get_secret_value()
        .secret_id(&secret_id)
        .send()
        .await?
        .secret_string
        .ok_or("the callback signing secret has no string value")?;
    let worker = Worker {
        store: Arc::new(DynamoArchives::new(clients.dynamodb.clone(), &config.table)),
        deliverer: Deliverer::new(
            secret.into_bytes(),
            config.settings.policy.clone(),
            Duration::from_secs(10),
        ),
        backoff: config.backoff,
        retry: Arc::new(SqsRetryLater::new(
            clients.sqs.clone(),
            config.callback_queue_url.clone(),
        )),
    };
    let worker = &worker;
    run(service_fn(move |event| async move {
        worker.handle(event).await
    }))
    .await
}
