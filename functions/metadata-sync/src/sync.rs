//! A batch of sync requests -> one rebuild per suite, with partial batch failures.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use cairn_aws::sqs::{Parsed, SyncMessage, batch_response, parse_batch};
use cairn_aws::{DynamoCatalog, Keys, S3Store};
use cairn_core::metrics::Metrics;
use cairn_core::ports::PrefixedStore;
use cairn_core::publish::{PublishError, Publisher, SnapshotCache};
use cairn_core::repositories::{self, Intent, RepositoryError};
use cairn_core::{Config, RepoPath};
use lambda_runtime::{Error, LambdaEvent};
use std::collections::BTreeMap;
use tracing::Instrument;

/// Dependencies, built once per cold start.
pub struct Worker {
    /// Catalog.
    pub catalog: DynamoCatalog,
    /// Repository bucket.
    pub store: S3Store,
    /// Metadata signing keys (refreshed from their secret).
    pub keys: Keys,
    /// Settings.
    pub config: Config,
    /// Published package sets kept while the worker is warm.
    pub cache: SnapshotCache,
    /// Index runs: a published Helm repository is indexed into apps (none: not).
    pub index_queue: Option<cairn_aws::SqsIndexQueue>,
}

impl Worker {
    /// Coalesces the batch per suite (the highest requested sequence wins) and
    /// rebuilds each suite once. Failed suites' messages are returned for retry.
    #[tracing::instrument(skip_all)]
    pub async fn handle(&self, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
        let mut by_repo: BTreeMap<String, (u64, Vec<String>)> = BTreeMap::new();
        let mut failures = Vec::new();
        for Parsed { id, body: m, .. } in parse_batch::<SyncMessage>(event.payload, "sync") {
            let entry = by_repo.entry(m.repo).or_insert((0, Vec::new()));
            entry.0 = entry.0.max(m.seq);
            entry.1.push(id);
        }
        for (repo, (seq, ids)) in by_repo {
            let span = tracing::info_span!("sync", repository = %repo, seq);
            if let Err(e) = self.sync_one(&repo, seq).instrument(span).await {
                tracing::error!(repo, seq, error = %e, "sync failed; will retry");
                Metrics::new()
                    .count("PublishFailures", 1)
                    .property("repository", repo.as_str())
                    .emit();
                failures.extend(ids);
            }
        }
        Ok(batch_response(failures))
    }

    async fn sync_one(&self, repo: &str, seq: u64) -> Result<(), Error> {
        let repo = match RepoPath::parse(repo) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(repo, error = %e, "sync for an invalid repository dropped");
                return Ok(());
            }
        };
        let seed = &self.config.supported;
        let supported = match repositories::open(seed, &self.catalog, None, Intent::Publish, &repo)
            .await
        {
            Ok(supported) => supported,
            Err(RepositoryError::Store(e)) => return Err(e.into()),
            Err(e) => {
                tracing::error!(repo = %repo, error = %e, "sync for an unknown repository dropped");
                return Ok(());
            }
        };
        // A private repository: its files under its prefix, read through the API.
        let prefix = supported.storage_prefix(&repo);
        let files = PrefixedStore::new(&self.store, prefix.clone());
        let base_url = self.config.files_base_url(!prefix.is_empty(), None);
        let signer = self.keys.signer().await;
        let publisher = Publisher {
            catalog: &self.catalog,
            store: &files,
            signer: &*signer,
            supported: &supported,
            origin: &self.config.origin,
            base_url: &base_url,
            api_url: self.config.api_url.as_deref(),
            cache: &self.cache,
            superseded_grace_secs: self.config.superseded_grace_secs,
        };
        let report = match publisher
            .sync(&repo, seq, time::OffsetDateTime::now_utc())
            .await
        {
            Ok(report) => report,
            Err(PublishError::Repo(e)) => {
                tracing::error!(repo = %repo, error = %e, "sync for an unconfigured repository dropped");
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        tracing::info!(
            repo = %repo,
            requested_seq = seq,
            rebuilt = report.rebuilt,
            published_seq = report.published_seq,
            packages = report.packages,
            baseline = %report.baseline,
            catalog_ms = report.catalog_ms as u64,
            build_ms = report.build_ms as u64,
            write_ms = report.write_ms as u64,
            record_ms = report.record_ms as u64,
            bytes_written = report.bytes_written,
            pieces_compressed = report.pieces_compressed,
            pieces_reused = report.pieces_reused,
            superseded_pruned = report.superseded_pruned,
            "sync done"
        );
        if report.rebuilt {
            let total = report.catalog_ms + report.build_ms + report.write_ms + report.record_ms;
            Metrics::new()
                .millis("PublishDuration", total)
                .millis("PublishBuildDuration", report.build_ms)
                .millis("PublishWriteDuration", report.write_ms)
                .bytes("PublishBytes", report.bytes_written)
                .count("PackagesPublished", report.added as u64)
                .property("repository", repo.to_string())
                .property("packages", report.packages)
                .emit();
        }
        // A Helm repository's new index.yaml is read into apps, as external ones are.
        if report.rebuilt
            && supported
                .check(&repo)
                .is_ok_and(|d| d.format == cairn_core::repo::RepoFormat::Helm)
            && let Some(queue) = &self.index_queue
        {
            use cairn_core::repositories::external::IndexQueue;
            if let Err(e) = queue.request_index(&repo.to_string(), "published").await {
                tracing::warn!(repo = %repo, error = %e, "index run not queued");
            }
        }
        // A created repository being deleted goes once its packages have.
        if seed.check(&repo).is_err() {
            repositories::finish_deletion(&self.catalog, &self.catalog, &self.store, &repo).await?;
        }
        Ok(())
    }
}
