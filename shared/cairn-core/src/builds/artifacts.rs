//! The artifact store: a project's files kept between build steps and builds (a
//! workspace, a built system tree, a cache), in the spirit of Ick's artifact store.
//!
//! A blob is content-addressed: its name is the SHA-256 of its bytes, so the same
//! bytes are stored once per project however often they are saved. Clients move the
//! bytes themselves, straight to and from the object store, through presigned URLs;
//! an upload URL is signed for one SHA-256, so the store itself refuses bytes that
//! do not hash to the blob's name. An artifact is a name in a project that points at
//! a blob (the latest save wins).
//!
//! Blobs are a project's own: another project's blob of the same bytes is a separate
//! object, so an upload never tells one project what another stores. A use (an
//! upload that found the blob, a name given to it) restarts its retention once it is
//! a day old; a name expires when its blob's retention (as it stood when the name was
//! given) ends, never after its blob.

use super::{BuildError, BuildStore, Project};
use crate::access::Action;
use crate::auth::Principal;
use crate::error::StoreError;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Largest blob, bytes: what one presigned PUT may carry.
pub const MAX_BLOB_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// How long an upload URL is good for, seconds.
pub const UPLOAD_URL_SECS: u64 = 3600;
/// How long a download URL is good for, seconds.
pub const DOWNLOAD_URL_SECS: u64 = 900;
/// A blob used again is refreshed (its retention restarted) once it is this old.
pub const REFRESH_AFTER_SECS: i64 = 86_400;
/// Longest artifact name, bytes.
pub const MAX_NAME: usize = 128;
/// Most artifacts one listing returns.
pub const MAX_LISTED: usize = 1000;

/// A named artifact of a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// Its project.
    pub project: String,
    /// Its name in the project (`toolchain`, `debs-1.0`).
    pub name: String,
    /// The blob's SHA-256, lowercase hex.
    pub sha256: String,
    /// The blob's size, bytes.
    pub size: u64,
    /// The build that saved it, if a build did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
    /// Who saved it (the account).
    pub saved_by: String,
    /// When it was saved (Unix seconds).
    pub created_at: i64,
    /// When it expires unless saved again (Unix seconds).
    pub expires_at: i64,
}

/// The key of blob `sha256` of `project` in the build bucket.
pub fn blob_key(project: &str, sha256: &str) -> String {
    format!("artifacts/{project}/sha256/{sha256}")
}

/// A presigned request: what a client sends, where, with which headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presigned {
    /// `PUT` or `GET`.
    pub method: String,
    /// The URL.
    pub url: String,
    /// Headers the request must carry exactly (they are signed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// When the URL stops working (Unix seconds).
    pub expires_at: i64,
}

/// A blob as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobInfo {
    /// Its size, bytes.
    pub size: u64,
    /// Seconds since it was stored or last refreshed.
    pub age_secs: i64,
}

/// What an upload request answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upload {
    /// The project has these bytes already: nothing to send.
    Stored {
        /// Their size.
        size: u64,
    },
    /// Send the bytes with this request.
    Put(Presigned),
}

/// Where blobs are kept.
#[async_trait]
pub trait Blobs: Send + Sync {
    /// Blob `sha256` of `project`, if stored whole (its checksum is the name's).
    async fn stat(&self, project: &str, sha256: &str) -> Result<Option<BlobInfo>, StoreError>;
    /// A URL that stores `size` bytes hashing to `sha256` as that blob, and nothing else.
    async fn put_url(
        &self,
        project: &str,
        sha256: &str,
        size: u64,
        ttl_secs: u64,
    ) -> Result<Presigned, StoreError>;
    /// A URL that reads the blob.
    async fn get_url(
        &self,
        project: &str,
        sha256: &str,
        ttl_secs: u64,
    ) -> Result<Presigned, StoreError>;
    /// Restarts the blob's retention.
    async fn refresh(&self, project: &str, sha256: &str) -> Result<(), StoreError>;
}

/// Where artifact names are kept.
#[async_trait]
pub trait ArtifactIndex: Send + Sync {
    /// An artifact by name (expired ones included: the caller decides).
    async fn get_artifact(&self, project: &str, name: &str)
    -> Result<Option<Artifact>, StoreError>;
    /// Writes an artifact over any of that name.
    async fn put_artifact(&self, artifact: &Artifact) -> Result<(), StoreError>;
    /// A project's artifacts by name, at most `limit`.
    async fn list_artifacts(
        &self,
        project: &str,
        limit: usize,
    ) -> Result<Vec<Artifact>, StoreError>;
    /// Deletes a name; `Ok(false)` if there was none.
    async fn delete_artifact(&self, project: &str, name: &str) -> Result<bool, StoreError>;
}

/// Whether `text` is a SHA-256 as the store names blobs: 64 lowercase hex digits.
pub fn valid_sha256(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether `name` is an artifact name: letters, digits, `.`, `_`, `-` and `+`,
/// starting with a letter or digit; at most [`MAX_NAME`] bytes.
pub fn valid_name(name: &str) -> bool {
    name.len() <= MAX_NAME
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The artifact store's use cases.
pub struct Artifacts {
    /// Projects (artifacts belong to one).
    pub projects: Arc<dyn BuildStore>,
    /// Names.
    pub index: Arc<dyn ArtifactIndex>,
    /// Bytes.
    pub blobs: Arc<dyn Blobs>,
    /// How long an unused artifact or blob is kept, days.
    pub retention_days: i64,
}

impl Artifacts {
    /// Project `name`, if the caller may use its artifacts: the `artifacts:` scope, and
    /// the project is the caller's (or the caller an administrator). Anything else is
    /// "no project", as if it did not exist.
    pub async fn project(&self, caller: &Principal, name: &str) -> Result<Project, BuildError> {
        caller.require(Action::Artifacts, name)?;
        match self.projects.get_project(name).await? {
            Some(p) if p.owner == caller.name || caller.is_admin() => Ok(p),
            _ => Err(BuildError::NotFound(format!("no project {name}"))),
        }
    }

    /// Asks to store `size` bytes hashing to `sha256` in `project`: nothing to do if
    /// they are there, else where to send them.
    pub async fn upload(
        &self,
        caller: &Principal,
        project: &str,
        sha256: &str,
        size: u64,
    ) -> Result<Upload, BuildError> {
        let project = self.project(caller, project).await?;
        check_sha256(sha256)?;
        if size > MAX_BLOB_BYTES {
            return Err(BuildError::TooLarge(format!(
                "an artifact is at most {} GiB",
                MAX_BLOB_BYTES >> 30
            )));
        }
        if let Some(info) = self.blobs.stat(&project.name, sha256).await? {
            let info = self.keep(&project.name, sha256, info).await;
            return Ok(Upload::Stored { size: info.size });
        }
        let url = self
            .blobs
            .put_url(&project.name, sha256, size, UPLOAD_URL_SECS)
            .await?;
        Ok(Upload::Put(url))
    }

    /// Gives blob `sha256` (uploaded already) the name `name` in `project`.
    pub async fn name(
        &self,
        caller: &Principal,
        project: &str,
        name: &str,
        sha256: &str,
        build: Option<String>,
    ) -> Result<Artifact, BuildError> {
        let project = self.project(caller, project).await?;
        check_name(name)?;
        check_sha256(sha256)?;
        let info = self.blob(&project.name, sha256).await?;
        let created_at = now();
        // The name expires with its blob's retention, counted from when the blob was
        // written or last refreshed: never after the blob.
        let artifact = Artifact {
            project: project.name,
            name: name.to_string(),
            sha256: sha256.to_string(),
            size: info.size,
            build,
            saved_by: caller.name.clone(),
            created_at,
            expires_at: created_at - info.age_secs + self.retention_days * 86_400,
        };
        self.index.put_artifact(&artifact).await?;
        Ok(artifact)
    }

    /// Artifact `name` of `project` and a URL that reads its bytes.
    pub async fn get(
        &self,
        caller: &Principal,
        project: &str,
        name: &str,
    ) -> Result<(Artifact, Presigned), BuildError> {
        let project = self.project(caller, project).await?;
        let missing =
            || BuildError::NotFound(format!("project {} has no artifact {name}", project.name));
        let artifact = self
            .index
            .get_artifact(&project.name, name)
            .await?
            .filter(|a| a.expires_at > now())
            .ok_or_else(missing)?;
        let url = self
            .blobs
            .get_url(&project.name, &artifact.sha256, DOWNLOAD_URL_SECS)
            .await?;
        Ok((artifact, url))
    }

    /// A project's artifacts, by name.
    pub async fn list(
        &self,
        caller: &Principal,
        project: &str,
    ) -> Result<Vec<Artifact>, BuildError> {
        let project = self.project(caller, project).await?;
        let now = now();
        Ok(self
            .index
            .list_artifacts(&project.name, MAX_LISTED)
            .await?
            .into_iter()
            .filter(|a| a.expires_at > now)
            .collect())
    }

    /// Deletes a name (its blob stays until its retention ends: other names and
    /// workspaces may hold the same bytes).
    pub async fn delete(
        &self,
        caller: &Principal,
        project: &str,
        name: &str,
    ) -> Result<(), BuildError> {
        let project = self.project(caller, project).await?;
        if self.index.delete_artifact(&project.name, name).await? {
            Ok(())
        } else {
            Err(BuildError::NotFound(format!(
                "project {} has no artifact {name}",
                project.name
            )))
        }
    }

    /// Blob `sha256` of `project`, refreshed (its age is then 0); refused if it is
    /// not stored whole.
    pub async fn blob(&self, project: &str, sha256: &str) -> Result<BlobInfo, BuildError> {
        let info = self.blobs.stat(project, sha256).await?.ok_or_else(|| {
            BuildError::Invalid(format!(
                "project {project} has no blob sha256:{sha256}: upload it first"
            ))
        })?;
        Ok(self.keep(project, sha256, info).await)
    }

    /// Restarts a used blob's retention when it has run a while (a failure is logged:
    /// the blob still has most of its retention left); the blob as it is then.
    async fn keep(&self, project: &str, sha256: &str, info: BlobInfo) -> BlobInfo {
        if info.age_secs < REFRESH_AFTER_SECS {
            return info;
        }
        match self.blobs.refresh(project, sha256).await {
            Ok(()) => BlobInfo {
                age_secs: 0,
                ..info
            },
            Err(e) => {
                tracing::warn!(project, sha256, error = %e, "could not refresh a blob");
                info
            }
        }
    }
}

fn check_sha256(sha256: &str) -> Result<(), BuildError> {
    if valid_sha256(sha256) {
        Ok(())
    } else {
        Err(BuildError::Invalid(
            "sha256 is the SHA-256 of the bytes: 64 lowercase hex digits".into(),
        ))
    }
}

fn check_name(name: &str) -> Result<(), BuildError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(BuildError::Invalid(format!(
            "an artifact name is letters, digits, '.', '_', '-' and '+', starting with a \
             letter or digit, at most {MAX_NAME} bytes"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_digests_are_checked() {
        assert!(valid_name("toolchain") && valid_name("debs-1.0+b1_amd64"));
        for bad in ["", "/abs", "a/b", "..", ".hidden", "a b", &"x".repeat(129)] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        assert!(valid_sha256(&"a".repeat(64)));
        assert!(!valid_sha256(&"A".repeat(64)) && !valid_sha256("abc"));
    }
}
