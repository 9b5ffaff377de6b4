//! The artifact store: blobs in the build bucket under
//! `artifacts/<project>/sha256/<hex>`, names in the project's partition
//! (`PROJECT#<name>`/`ARTIFACT#<artifact>`).
//!
//! An upload URL is a presigned PUT whose signed headers carry the blob's SHA-256
//! (`x-amz-checksum-sha256`): S3 refuses a body that does not hash to it, so a blob's
//! key always names its bytes. `stat` asks S3 for the stored checksum and trusts a
//! blob only when it matches. The bucket's lifecycle rule expires blobs
//! `ArtifactRetentionDays` after they were written; `refresh` copies a blob onto
//! itself to start that count again.

use crate::dynamo::{DynamoCatalog, from_doc, get_item, n, query_docs, s, store_err};
use crate::keys::{PK, SK, project_builds_pk};
use async_trait::async_trait;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, MetadataDirective};
use base64::Engine;
use cairn_core::StoreError;
use cairn_core::builds::{Artifact, ArtifactIndex, BlobInfo, Blobs, Presigned};
use std::time::Duration;

/// Sort-key prefix of a project's artifact names.
const ARTIFACT_PREFIX: &str = "ARTIFACT#";

fn artifact_sk(name: &str) -> String {
    format!("{ARTIFACT_PREFIX}{name}")
}

pub use cairn_core::builds::artifacts::blob_key;

/// The base64 form S3 gives checksums in.
fn checksum(sha256: &str) -> Result<String, StoreError> {
    let raw = hex::decode(sha256).map_err(|e| StoreError::new("sha256", e))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(raw))
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Blobs in the build bucket.
pub struct S3Blobs {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Blobs {
    /// Blobs in `bucket`.
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }
}

/// What a client needs of a presigned request: its URL and the headers it was signed with.
fn presigned(
    method: &str,
    request: &aws_sdk_s3::presigning::PresignedRequest,
    ttl_secs: u64,
) -> Presigned {
    Presigned {
        method: method.into(),
        url: request.uri().to_string(),
        headers: request
            .headers()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect(),
        expires_at: now() + i64::try_from(ttl_secs).unwrap_or(0),
    }
}

fn presigning(ttl_secs: u64) -> Result<PresigningConfig, StoreError> {
    PresigningConfig::expires_in(Duration::from_secs(ttl_secs))
        .map_err(|e| StoreError::new("presign", e))
}

#[async_trait]
impl Blobs for S3Blobs {
    async fn stat(&self, project: &str, sha256: &str) -> Result<Option<BlobInfo>, StoreError> {
        let key = blob_key(project, sha256);
        let head = match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
        {
            Ok(head) => head,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => return Ok(None),
            Err(e) => return Err(StoreError::caused_by(format!("HeadObject {key}"), e)),
        };
        if head.checksum_sha256() != Some(checksum(sha256)?.as_str()) {
            // Not written through an upload URL (or not whole): never trusted.
            tracing::warn!(key, stored = ?head.checksum_sha256(), "a blob whose checksum is not its name");
            return Ok(None);
        }
        let written = head.last_modified().map_or(0, |t| t.secs());
        Ok(Some(BlobInfo {
            size: u64::try_from(head.content_length().unwrap_or(0)).unwrap_or(0),
            age_secs: (now() - written).max(0),
        }))
    }

    async fn put_url(
        &self,
        project: &str,
        sha256: &str,
        size: u64,
        ttl_secs: u64,
    ) -> Result<Presigned, StoreError> {
        let key = blob_key(project, sha256);
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .checksum_sha256(checksum(sha256)?)
            .content_length(i64::try_from(size).unwrap_or(i64::MAX))
            .content_type("application/octet-stream")
            .presigned(presigning(ttl_secs)?)
            .await
            .map_err(|e| StoreError::caused_by(format!("presign PutObject {key}"), e))?;
        Ok(presigned("PUT", &request, ttl_secs))
    }

    async fn get_url(
        &self,
        project: &str,
        sha256: &str,
        ttl_secs: u64,
    ) -> Result<Presigned, StoreError> {
        let key = blob_key(project, sha256);
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .presigned(presigning(ttl_secs)?)
            .await
            .map_err(|e| StoreError::caused_by(format!("presign GetObject {key}"), e))?;
        Ok(presigned("GET", &request, ttl_secs))
    }

    async fn refresh(&self, project: &str, sha256: &str) -> Result<(), StoreError> {
        let key = blob_key(project, sha256);
        self.client
            .copy_object()
            .bucket(&self.bucket)
            .key(&key)
            .copy_source(format!("{}/{key}", self.bucket))
            .metadata_directive(MetadataDirective::Replace)
            .metadata("refreshed", now().to_string())
            .content_type("application/octet-stream")
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .send()
            .await
            .map_err(|e| StoreError::caused_by(format!("CopyObject {key}"), e))?;
        Ok(())
    }
}

#[async_trait]
impl ArtifactIndex for DynamoCatalog {
    async fn get_artifact(
        &self,
        project: &str,
        name: &str,
    ) -> Result<Option<Artifact>, StoreError> {
        get_item(
            &self.client,
            &self.table,
            project_builds_pk(project),
            &artifact_sk(name),
        )
        .await?
        .map(|item| from_doc(&item))
        .transpose()
    }

    async fn put_artifact(&self, artifact: &Artifact) -> Result<(), StoreError> {
        let doc = serde_json::to_string(artifact).map_err(|e| StoreError::new("artifact", e))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(project_builds_pk(&artifact.project)))
            .item(SK, s(artifact_sk(&artifact.name)))
            .item("doc", s(doc))
            // The table's TTL attribute: DynamoDB deletes the name some time after.
            .item("expires_at", n(artifact.expires_at))
            .send()
            .await
            .map_err(store_err("PutItem artifact"))?;
        Ok(())
    }

    async fn list_artifacts(
        &self,
        project: &str,
        limit: usize,
    ) -> Result<Vec<Artifact>, StoreError> {
        let mut all: Vec<Artifact> = query_docs(
            &self.client,
            &self.table,
            project_builds_pk(project),
            ARTIFACT_PREFIX,
        )
        .await?;
        all.truncate(limit);
        Ok(all)
    }

    async fn delete_artifact(&self, project: &str, name: &str) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(project_builds_pk(project)))
            .key(SK, s(artifact_sk(name)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(store_err("DeleteItem artifact"))?;
        Ok(out.attributes.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_are_the_digest_in_base64() {
        // SHA-256 of the empty string.
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            checksum(empty).expect("hex"),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(
            blob_key("hello", empty),
            format!("artifacts/hello/sha256/{empty}")
        );
    }
}
