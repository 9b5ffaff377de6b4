//! `archive-api`: source archives (docs/archives.md). `POST /v1/archives`,
//! Repour's `POST /clone` and `POST /cancel/{id}`, `GET /v1/operations/{id}`,
//! `GET /v1/archives/{name}` and its tarballs. The work itself is queued to
//! `archive-worker`.

mod routes;

use cairn_archive::ArchiveConfig;
use cairn_aws::{Clients, DynamoCatalog, archive_services, init_tracing};
use lambda_http::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let config = ArchiveConfig::from_env()?;
    let clients = Clients::load().await;
    let (archiver, operations) = archive_services(&clients, &config);
    let app = routes::App {
        users: DynamoCatalog::new(clients.dynamodb.clone(), &config.table),
        archiver,
        operations,
        wait: config.wait,
    };
    let app = &app;
    run(service_fn(move |req| async move {
        Ok::<_, Error>(app.handle(req).await)
    }))
    .await
}
