//! `files-api` Lambda: the read path of repository files (see the library's
//! documentation).

use cairn_aws::{Clients, DynamoCatalog, S3Store, init_tracing};
use cairn_core::Config;
use files_api::{App, router};
use std::sync::Arc;

fn env(name: &'static str) -> Result<String, cairn_core::config::ConfigError> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or(cairn_core::config::ConfigError::Missing(name))
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing(env!("CARGO_PKG_NAME"));
    let config = Config::from_env()?;
    let clients = Clients::load().await;
    let catalog = Arc::new(DynamoCatalog::new(clients.dynamodb.clone(), &config.table));
    let archive_bucket = Arc::new(S3Store::new(
        clients.s3.clone(),
        &env("CAIRN_ARCHIVE_BUCKET")?,
        "",
    ));
    let app = App {
        users: catalog.clone(),
        repositories: catalog,
        urls: Arc::new(S3Store::new(
            clients.s3.clone(),
            &config.repo_bucket,
            &config.staging_bucket,
        )),
        archives: archive_bucket.clone(),
        archive_urls: archive_bucket,
        archive_base_url: env("CAIRN_ARCHIVE_BASE_URL")?,
        config,
    };
    cairn_http::serve(router(Arc::new(app))).await
}
