//! `repo-api`: the RWS-compatible upload API behind API Gateway (REST).
//!
//! `PUT /{kind}/{series}/{dist}/{ver}` uploads packages (multipart), `POST` re-syncs
//! the metadata, `GET` lists the packages; `POST /v1/uploads` hands out presigned
//! upload URLs for packages larger than API Gateway accepts.

mod error;
mod multipart;
mod routes;

use cairn_aws::{Clients, DynamoCatalog, S3Store, SqsSyncQueue, init_tracing};
use cairn_core::Config;
use lambda_http::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let config = Config::from_env()?;
    let clients = Clients::load().await;
    let app = routes::App {
        catalog: DynamoCatalog::new(clients.dynamodb.clone(), &config.table),
        store: S3Store::new(
            clients.s3.clone(),
            &config.repo_bucket,
            &config.staging_bucket,
        ),
        queue: SqsSyncQueue::new(clients.sqs.clone(), &config.sync_queue_url),
        config,
    };
    let app = &app;
    run(service_fn(move |req| async move {
        Ok::<_, Error>(app.handle(req).await)
    }))
    .await
}
