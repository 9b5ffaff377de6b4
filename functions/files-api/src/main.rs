//! `files-api` Lambda: the read path of repository files (see the library's
//! documentation).

use cairn_aws::{Clients, DynamoCatalog, S3Store, init_tracing};
use cairn_core::Config;
use files_api::{App, router};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing();
    let config = Config::from_env()?;
    let clients = Clients::load().await;
    let catalog = Arc::new(DynamoCatalog::new(clients.dynamodb.clone(), &config.table));
    let app = App {
        users: catalog.clone(),
        repositories: catalog,
        urls: Arc::new(S3Store::new(
            clients.s3.clone(),
            &config.repo_bucket,
            &config.staging_bucket,
        )),
        config,
    };
    cairn_http::serve(router(Arc::new(app))).await
}
