//! One S3 event record -> one ingested (or refused) package.

use aws_lambda_events::event::s3::S3Event;
use cairn_aws::{DynamoCatalog, S3Store, SqsSyncQueue};
use cairn_core::Config;
use cairn_core::access::Action;
use cairn_core::auth::Principal;
use cairn_core::ingest::{
    IngestError, IngestOutcome, Ingestor, PackageSource, build_record, inspect_package,
};
use cairn_core::metrics::Metrics;
use cairn_core::ports::UserDirectory;
use cairn_core::ports::{PrefixedStore, UploadLedger, UploadStatus};
use cairn_core::repositories::{self, Intent, RepositoryError};
use lambda_runtime::{Error, LambdaEvent};
use tokio_util::io::SyncIoBridge;
use tracing::Instrument;

/// Dependencies, built once per cold start.
pub struct Worker {
    /// Catalog and tickets.
    pub catalog: DynamoCatalog,
    /// Buckets.
    pub store: S3Store,
    /// Metadata-sync queue.
    pub queue: SqsSyncQueue,
    /// Settings.
    pub config: Config,
}

/// S3 event keys are URL-encoded, with `+` for spaces.
fn decode_key(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(hi), Some(lo)) => {
                        out.push((hi * 16 + lo) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What happened to one staged object.
enum Verdict {
    Done(UploadStatus, String),
    Refused(String),
}

impl Worker {
    /// Handles an S3 notification; an `Err` makes Lambda retry the whole event,
    /// which is safe: ingest is idempotent.
    #[tracing::instrument(skip_all)]
    pub async fn handle(&self, event: LambdaEvent<S3Event>) -> Result<(), Error> {
        for record in event.payload.records {
            let Some(raw_key) = record.s3.object.key.as_deref() else {
                continue;
            };
            let key = decode_key(raw_key);
            // The event names one version of the object: on S3 a later PUT to the same
            // URL has another sequencer; LocalStack sends a constant sequencer, and there
            // the entity tag (other bytes, other tag) tells the objects apart.
            let object = &record.s3.object;
            let token = format!(
                "{}/{}/{}",
                object.sequencer.as_deref().unwrap_or_default(),
                object.e_tag.as_deref().unwrap_or_default(),
                object.version_id.as_deref().unwrap_or_default()
            );
            let span = tracing::info_span!("ingest", key = %key);
            if let Err(e) = self.ingest_staged(&key, &token).instrument(span).await {
                Metrics::new()
                    .count("IngestFailures", 1)
                    .property("key", key.as_str())
                    .emit();
                return Err(e);
            }
        }
        Ok(())
    }

    async fn ingest_staged(&self, key: &str, token: &str) -> Result<(), Error> {
        let Some((id, filename)) = key
            .strip_prefix("incoming/")
            .and_then(|rest| rest.split_once('/'))
        else {
            tracing::warn!(key, "object outside incoming/, ignored");
            return Ok(());
        };
        let Some(ticket) = self.catalog.get_ticket(id).await? else {
            tracing::warn!(key, "no upload ticket for staged object; deleting it");
            self.store.delete_staging(key).await?;
            return Ok(());
        };
        if ticket.filename != filename {
            tracing::warn!(key, "staged object does not match its ticket");
            self.store.delete_staging(key).await?;
            return Ok(());
        }
        // A ticket accepts one object: the first event takes it. A second PUT to the
        // same URL is ignored while the first is ingested (the ingest copies only the
        // version it inspected) and deleted once the ticket is finished.
        if !self.catalog.take_ticket(id, token).await? {
            tracing::warn!(
                key,
                status = ticket.status.as_str(),
                "a later object for an upload ticket that already took one; ignored"
            );
            if ticket.status.is_final() {
                self.store.delete_staging(key).await?;
            }
            return Ok(());
        }
        // The client may PUT again while this runs: ingest a private copy that no
        // client can write (only incoming/ is presigned), so the bytes inspected are
        // the bytes copied into the pool, whatever the storage does with overwrites.
        let snapshot = format!("ingest/{id}/{filename}");
        self.store.copy_within_staging(key, &snapshot).await?;
        let verdict = match self.ingest(&ticket, &snapshot).await {
            Ok(v) => v,
            Err(IngestError::Store(e)) => return Err(e.into()),
            Err(refused) => Verdict::Refused(refused.to_string()),
        };
        match verdict {
            Verdict::Done(status, message) => {
                tracing::info!(key, status = status.as_str(), "staged package ingested");
                Metrics::new().count("PackagesIngested", 1).emit();
                self.catalog.finish_ticket(id, status, &message).await?;
            }
            Verdict::Refused(message) => {
                tracing::info!(key, %message, "staged package refused");
                Metrics::new().count("IngestRefused", 1).emit();
                self.catalog
                    .finish_ticket(id, UploadStatus::Failed, &message)
                    .await?;
            }
        }
        self.store.delete_staging(&snapshot).await?;
        self.store.delete_staging(key).await?;
        Ok(())
    }

    async fn ingest(
        &self,
        ticket: &cairn_core::ports::UploadTicket,
        key: &str,
    ) -> Result<Verdict, IngestError> {
        let targets = self.config.supported.expand(&ticket.repo);
        // Checked again now, as its uploader's account is today: the repository may
        // have been deleted (or made again by someone else), the uploader removed from
        // its owners, or the account demoted or deleted since the ticket was issued.
        let Some(account) = self.catalog.get_user(&ticket.uploader).await? else {
            return Ok(Verdict::Refused(format!(
                "the account {} no longer exists",
                ticket.uploader
            )));
        };
        let uploader = Principal {
            selectors: account.parsed_selectors(),
            ..Principal::with_role(&account.name, account.role)
        };
        let supported = match repositories::open(
            &self.config.supported,
            &self.catalog,
            Some(&uploader),
            Intent::Write(Action::Upload),
            &ticket.repo,
        )
        .await
        {
            Ok(supported) => supported,
            Err(RepositoryError::Store(e)) => return Err(e.into()),
            Err(refused) => return Ok(Verdict::Refused(refused.to_string())),
        };
        // A private repository keeps its files under its own prefix.
        let files = PrefixedStore::new(&self.store, supported.storage_prefix(&ticket.repo));
        let ingestor = Ingestor {
            catalog: &self.catalog,
            store: &files,
            queue: &self.queue,
            supported: &supported,
        };
        let mut format = None;
        for target in &targets {
            cairn_core::ingest::check_target(
                &supported,
                target,
                &ticket.filename,
                ticket.product.as_deref(),
            )?;
            format = Some(supported.check(target)?.format);
        }
        let Some(format) = format else {
            return Ok(Verdict::Refused(format!(
                "anchor {} names no repository",
                ticket.repo.series
            )));
        };
        let (body, etag) = self.store.open_staging(key).await?;
        let reader = cairn_deb::SourceReader(SyncIoBridge::new(body.into_async_read()));
        let filename = ticket.filename.clone();
        let inspected =
            tokio::task::spawn_blocking(move || inspect_package(format, &filename, reader))
                .await
                .map_err(|e| cairn_core::StoreError::new("inspect", e))??;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut messages = Vec::new();
        let mut stored_any = false;
        for target in &targets {
            let dist = supported.check(target)?;
            let record = build_record(
                target,
                dist,
                &ticket.filename,
                ticket.product.as_deref(),
                &inspected,
                &ticket.uploader,
                now,
            )?;
            let outcome = ingestor
                .store(
                    record,
                    PackageSource::Staged {
                        key: key.to_string(),
                        etag: etag.clone(),
                    },
                    Vec::new(),
                )
                .await?;
            match outcome {
                IngestOutcome::Stored(r) => {
                    let seq = ingestor
                        .announce(target, std::slice::from_ref(&r.filename))
                        .await?;
                    stored_any = true;
                    messages.push(format!(
                        "{} {} stored in {target}; sync {seq} queued",
                        r.name, r.version
                    ));
                }
                IngestOutcome::Unchanged(r) => messages.push(format!(
                    "{} {} was already published in {target}",
                    r.name, r.version
                )),
            }
        }
        let status = if stored_any {
            UploadStatus::Stored
        } else {
            UploadStatus::Unchanged
        };
        Ok(Verdict::Done(status, messages.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::decode_key;

    #[test]
    fn decodes_event_keys() {
        assert_eq!(
            decode_key("incoming/ab/a%3Ab+c.deb"),
            "incoming/ab/a:b c.deb"
        );
        assert_eq!(decode_key("bad%zz%"), "bad%zz%");
    }
}
