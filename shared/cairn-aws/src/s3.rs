//! The repository bucket (public pool and metadata) and the private staging bucket
//! that presigned uploads land in.

use async_trait::async_trait;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use cairn_core::ports::{ReadUrls, RepoStore, StoreError, UploadUrls};
use std::time::Duration;

/// S3 adapter for [`RepoStore`].
#[derive(Clone, Debug)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    staging_bucket: String,
}

/// Percent-encodes an object key for `x-amz-copy-source`, keeping `/`.
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Objects that never change once written may be cached forever.
fn cache_control(key: &str) -> &'static str {
    // Package files and content-addressed metadata never change under their name;
    // the files that point at them (Release, repomd.xml, index.yaml) always may. Archive
    // packs and tarballs are immutable; git's info/refs and objects/info/packs are not.
    let content_addressed_repodata = key.contains("/repodata/") && !key.contains("/repomd.xml");
    if key.contains("/by-hash/")
        || key.contains("/pool/")
        || key.contains("/Packages/")
        || content_addressed_repodata
        || key.ends_with(".tgz")
        || key.contains("/objects/pack/")
        || key.starts_with("tarballs/")
    {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    }
}

impl S3Store {
    /// Adapter over `bucket` (published files) and `staging_bucket` (uploads).
    pub fn new(
        client: aws_sdk_s3::Client,
        bucket: impl Into<String>,
        staging_bucket: impl Into<String>,
    ) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            staging_bucket: staging_bucket.into(),
        }
    }

    /// Streams a staged object; also returns its entity tag, which pins the version
    /// being read for [`RepoStore::copy_from_staging`].
    pub async fn open_staging(
        &self,
        staging_key: &str,
    ) -> Result<(ByteStream, String), StoreError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.staging_bucket)
            .key(staging_key)
            .send()
            .await
            .map_err(|e| StoreError::caused_by(format!("GetObject {staging_key}"), e))?;
        let etag = out.e_tag.clone().ok_or_else(|| {
            StoreError::new(format!("GetObject {staging_key}"), "no ETag in the answer")
        })?;
        Ok((out.body, etag))
    }

    /// Copies `from` to `to` inside `bucket`, metadata included.
    async fn copy_in(&self, bucket: &str, from: &str, to: &str) -> Result<(), StoreError> {
        self.client
            .copy_object()
            .bucket(bucket)
            .key(to)
            .copy_source(format!("{bucket}/{}", encode_key(from)))
            .send()
            .await
            .map_err(|e| StoreError::caused_by(format!("CopyObject {to}"), e))?;
        Ok(())
    }

    /// Copies a staged object to another key of the staging bucket.
    pub async fn copy_within_staging(&self, from: &str, to: &str) -> Result<(), StoreError> {
        self.copy_in(&self.staging_bucket, from, to).await
    }

    /// Deletes a staged object once ingested or refused.
    pub async fn delete_staging(&self, staging_key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.staging_bucket)
            .key(staging_key)
            .send()
            .await
            .map_err(|e| StoreError::caused_by(format!("DeleteObject {staging_key}"), e))?;
        Ok(())
    }
}

impl S3Store {
    /// Object `key` opened for reading (its headers read, its body not yet); `None`
    /// if there is no such object.
    async fn open(
        &self,
        key: &str,
    ) -> Result<Option<aws_sdk_s3::operation::get_object::GetObjectOutput>, StoreError> {
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out)),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(StoreError::caused_by(format!("GetObject {key}"), e)),
        }
    }
}

#[async_trait]
impl RepoStore for S3Store {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let Some(out) = self.open(key).await? else {
            return Ok(None);
        };
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| StoreError::new(format!("GetObject {key}"), e))?;
        Ok(Some(body.into_bytes()))
    }

    async fn get_within(
        &self,
        key: &str,
        max: u64,
    ) -> Result<Option<Result<Bytes, u64>>, StoreError> {
        let operation = || format!("GetObject {key}");
        let Some(out) = self.open(key).await? else {
            return Ok(None);
        };
        // The size comes with the headers: a larger object is never read.
        let size = out
            .content_length()
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(u64::MAX);
        if size > max {
            return Ok(Some(Err(size)));
        }
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| StoreError::new(operation(), e))?;
        Ok(Some(Ok(body.into_bytes())))
    }

    async fn digest(&self, key: &str) -> Result<Option<(u64, String)>, StoreError> {
        use sha2::Digest;
        let operation = || format!("GetObject {key}");
        let Some(out) = self.open(key).await? else {
            return Ok(None);
        };
        // Packages can be gigabytes: hash chunk by chunk, never holding the object.
        let mut body = out.body;
        let mut hasher = sha2::Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| StoreError::new(operation(), e))?
        {
            size += chunk.len() as u64;
            hasher.update(&chunk);
        }
        Ok(Some((size, hex::encode(hasher.finalize()))))
    }

    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .cache_control(cache_control(key))
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| StoreError::caused_by(format!("PutObject {key}"), e))?;
        Ok(())
    }

    async fn put_new(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .cache_control(cache_control(key))
            .if_none_match("*")
            .body(ByteStream::from(body))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("PreconditionFailed") => Ok(false),
            Err(e) => Err(StoreError::caused_by(format!("PutObject {key}"), e)),
        }
    }

    async fn copy_from_staging(
        &self,
        staging_key: &str,
        etag: &str,
        key: &str,
    ) -> Result<(), StoreError> {
        self.client
            .copy_object()
            .copy_source_if_match(etag)
            .bucket(&self.bucket)
            .key(key)
            .copy_source(format!(
                "{}/{}",
                self.staging_bucket,
                encode_key(staging_key)
            ))
            .content_type(content_type_of(key))
            .cache_control(cache_control(key))
            .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
            .send()
            .await
            .map_err(|e| StoreError::caused_by(format!("CopyObject {key}"), e))?;
        Ok(())
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), StoreError> {
        self.copy_in(&self.bucket, from, to).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| StoreError::caused_by(format!("ListObjectsV2 {prefix}"), e))?;
            for object in page.contents.unwrap_or_default() {
                if let Some(key) = object.key {
                    out.push((key, object.last_modified.map_or(0, |t| t.secs())));
                }
            }
        }
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| StoreError::caused_by(format!("DeleteObject {key}"), e))?;
        Ok(())
    }
}

/// The content type a package file is served with, by its name.
fn content_type_of(key: &str) -> &'static str {
    if key.ends_with(".deb") {
        "application/vnd.debian.binary-package"
    } else if key.ends_with(".rpm") {
        "application/x-rpm"
    } else if key.ends_with(".tgz") {
        "application/gzip"
    } else {
        "application/octet-stream"
    }
}

#[async_trait]
impl UploadUrls for S3Store {
    /// A presigned PUT URL for `staging_key` in the staging bucket.
    async fn staging_put_url(
        &self,
        staging_key: &str,
        ttl: Duration,
    ) -> Result<String, StoreError> {
        let config =
            PresigningConfig::expires_in(ttl).map_err(|e| StoreError::new("presign", e))?;
        let request = self
            .client
            .put_object()
            .bucket(&self.staging_bucket)
            .key(staging_key)
            .presigned(config)
            .await
            .map_err(|e| StoreError::caused_by("presign PutObject", e))?;
        Ok(request.uri().to_string())
    }
}

#[async_trait]
impl ReadUrls for S3Store {
    async fn read_url(&self, key: &str, head: bool, ttl: Duration) -> Result<String, StoreError> {
        let config =
            PresigningConfig::expires_in(ttl).map_err(|e| StoreError::new("presign", e))?;
        let request = if head {
            self.client
                .head_object()
                .bucket(&self.bucket)
                .key(key)
                .presigned(config)
                .await
                .map_err(|e| StoreError::caused_by("presign HeadObject", e))?
        } else {
            self.client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .presigned(config)
                .await
                .map_err(|e| StoreError::caused_by("presign GetObject", e))?
        };
        Ok(request.uri().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_keys_are_encoded() {
        assert_eq!(
            encode_key("incoming/ab/hello_1:2.0+b1_amd64.deb"),
            "incoming/ab/hello_1%3A2.0%2Bb1_amd64.deb"
        );
    }
}
