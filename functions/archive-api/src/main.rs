//! `archive-api` Lambda: source archives (see the library's documentation).

use archive_api::{App, router};
use cairn_archive::ArchiveConfig;
use cairn_aws::{Clients, DynamoCatalog, archive_services, init_tracing};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing(env!("CARGO_PKG_NAME"));
    let config = ArchiveConfig::from_env()?;
    let clients = Clients::load().await;
    let (archiver, operations) = archive_services(&clients, &config);
    let catalog = Arc::new(DynamoCatalog::new(clients.dynamodb.clone(), &config.table));
    let app = App {
        users: catalog.clone(),
        repositories: catalog.clone(),
        builds: catalog,
        archiver,
        operations,
        wait: config.wait,
    };
    cairn_http::serve(router(Arc::new(app))).await
}
