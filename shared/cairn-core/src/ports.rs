//! The ports the domain talks through. AWS adapters live in `cairn-aws`;
//! in-memory fakes in [`crate::memory`].

use crate::auth::UserRecord;
use crate::events::NewEvent;
use crate::package::PackageRecord;
use crate::repo::RepoPath;
use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub use crate::error::StoreError;

/// The repository bucket: pool files and published metadata.
#[async_trait]
pub trait RepoStore: Send + Sync {
    /// Writes (or overwrites) an object.
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError>;
    /// Writes an object only if no object has that key; `Ok(false)` if one exists.
    async fn put_new(&self, key: &str, body: Bytes, content_type: &str)
    -> Result<bool, StoreError>;
    /// Reads a whole object; `None` if there is none.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError>;
    /// An object's bytes if it holds at most `max` of them, else (`Err`) its size,
    /// without reading it (an untrusted writer's object); `None` if there is none.
    async fn get_within(
        &self,
        key: &str,
        max: u64,
    ) -> Result<Option<Result<Bytes, u64>>, StoreError> {
        Ok(self.get(key).await?.map(|body| {
            let size = body.len() as u64;
            if size > max { Err(size) } else { Ok(body) }
        }))
    }
    /// Copies an object from the staging area (presigned uploads) into the bucket,
    /// only if the staged object still has entity tag `etag` (the version that was
    /// inspected); fails otherwise.
    async fn copy_from_staging(
        &self,
        staging_key: &str,
        etag: &str,
        key: &str,
    ) -> Result<(), StoreError>;
    /// Copies an object within the bucket.
    async fn copy(&self, from: &str, to: &str) -> Result<(), StoreError>;
    /// Deletes an object; deleting a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Every object whose key starts with `prefix`, with its last-modified time
    /// (seconds since the epoch).
    async fn list(&self, prefix: &str) -> Result<Vec<(String, i64)>, StoreError>;
    /// Size and SHA-256 (lower-case hex) of an object, read as a stream; `None` if
    /// there is no such object.
    async fn digest(&self, key: &str) -> Result<Option<(u64, String)>, StoreError> {
        use sha2::Digest;
        Ok(self
            .get(key)
            .await?
            .map(|body| (body.len() as u64, hex::encode(sha2::Sha256::digest(&body)))))
    }
}

/// A view of the repository bucket under a key prefix (a private repository's
/// `private/<storage>/`): every key is the usual one, the prefix is added on the
/// way in and taken off listings on the way out. An empty prefix is the bucket.
/// `S` is how the bucket is held: borrowed ([`PrefixedStore`]) or shared (`Arc`).
pub struct Prefixed<S> {
    inner: S,
    prefix: String,
}

/// A borrowed bucket under a prefix.
pub type PrefixedStore<'a> = Prefixed<&'a dyn RepoStore>;

impl<S> Prefixed<S> {
    /// `inner` under `prefix` (`""`, or ending with `/`).
    pub fn new(inner: S, prefix: impl Into<String>) -> Self {
        Self {
            inner,
            prefix: prefix.into(),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

#[async_trait]
impl<S> RepoStore for Prefixed<S>
where
    S: std::ops::Deref + Send + Sync,
    S::Target: RepoStore,
{
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError> {
        self.inner.put(&self.key(key), body, content_type).await
    }
    async fn put_new(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<bool, StoreError> {
        self.inner.put_new(&self.key(key), body, content_type).await
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        self.inner.get(&self.key(key)).await
    }
    async fn copy_from_staging(
        &self,
        staging_key: &str,
        etag: &str,
        key: &str,
    ) -> Result<(), StoreError> {
        self.inner
            .copy_from_staging(staging_key, etag, &self.key(key))
            .await
    }
    async fn copy(&self, from: &str, to: &str) -> Result<(), StoreError> {
        self.inner.copy(&self.key(from), &self.key(to)).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(&self.key(key)).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(self
            .inner
            .list(&self.key(prefix))
            .await?
            .into_iter()
            .filter_map(|(k, t)| k.strip_prefix(&self.prefix).map(|k| (k.to_string(), t)))
            .collect())
    }
    async fn digest(&self, key: &str) -> Result<Option<(u64, String)>, StoreError> {
        self.inner.digest(&self.key(key)).await
    }
}

/// Publishing state of one suite, kept beside its packages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoState {
    /// Incremented on every change to the suite's package set.
    pub change_seq: u64,
    /// The `change_seq` the published metadata reflects.
    pub published_seq: u64,
    /// How many times the metadata was rebuilt.
    pub publish_count: u64,
    /// SHA-256 of the published `Release`.
    pub release_sha256: Option<String>,
    /// When the metadata was last published, seconds since the epoch.
    pub published_at: Option<i64>,
    /// The content-addressed objects the published metadata names (APT `by-hash`
    /// copies, YUM repodata files), sorted: what must not be pruned.
    pub referenced: Vec<String>,
    /// When superseded objects were last pruned, seconds since the epoch.
    pub swept_at: Option<i64>,
}

/// A content-addressed object no publication names any more, waiting out the grace
/// period before it is deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superseded {
    /// Its key in the repository bucket.
    pub key: String,
    /// When the publication that stopped naming it was recorded, seconds since the epoch.
    pub at: i64,
}

/// One entry of a suite's change log: the files one upload (or re-sync) touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// The suite's `change_seq` after this change.
    pub seq: u64,
    /// File names added or changed (empty for a plain re-sync).
    pub files: Vec<String>,
}

/// The answer to a claim on a pool object ([`Catalog::claim_file`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileClaim {
    /// The caller now owns the object (alone or with packages that claimed the
    /// same content before).
    Claimed,
    /// Another package claimed the key with other content.
    Taken {
        /// SHA-256 of the content claimed first.
        sha256: String,
    },
    /// The object lost its last owner and is being deleted; claim it again later.
    Deleting,
}

/// The answer to giving up a claim ([`Catalog::release_file`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Other packages still own the object: it stays.
    StillOwned,
    /// Nobody owns the object any more and it is marked for deletion: delete it,
    /// then call [`Catalog::forget_file`].
    Unowned,
    /// There is no claim on that key (already forgotten).
    Gone,
}

/// A claim on one pool object, as the catalog keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    /// The object key, size and SHA-256 claimed.
    pub file: crate::package::PoolFile,
    /// File names of the packages (in the same repository) that own it.
    pub owners: Vec<String>,
    /// When the object lost its last owner (seconds since the epoch), if it did.
    pub deleting_since: Option<i64>,
}

/// The package catalog (DynamoDB in production).
#[async_trait]
pub trait Catalog: Send + Sync {
    /// One package by file name.
    async fn get_package(
        &self,
        repo: &RepoPath,
        filename: &str,
    ) -> Result<Option<PackageRecord>, StoreError>;
    /// Inserts a record if no record has that file name; `Ok(false)` if one exists.
    async fn claim_package(&self, record: &PackageRecord) -> Result<bool, StoreError>;
    /// Marks a claimed record as ready (its file is in the pool) and commits `event`
    /// (`package.stored`) with it.
    async fn mark_ready(
        &self,
        repo: &RepoPath,
        filename: &str,
        event: &NewEvent,
    ) -> Result<(), StoreError>;
    /// Removes a pending claim whose file could not be stored.
    async fn drop_claim(
        &self,
        repo: &RepoPath,
        filename: &str,
        sha256: &str,
    ) -> Result<(), StoreError>;
    /// Marks a ready package for deletion and commits `event` (`package.deleted`) with
    /// it; `Ok(false)` (and no event) if there is no such ready package.
    async fn mark_deleting(
        &self,
        repo: &RepoPath,
        filename: &str,
        event: &NewEvent,
    ) -> Result<bool, StoreError>;
    /// Removes a package record, only if it is marked for deletion.
    async fn delete_package(&self, repo: &RepoPath, filename: &str) -> Result<(), StoreError>;
    /// Every package of a suite, in file-name order, with a strongly consistent read.
    async fn list_packages(&self, repo: &RepoPath) -> Result<Vec<PackageRecord>, StoreError>;
    /// Packages of a suite by file name (strongly consistent); absent names are skipped.
    async fn get_packages(
        &self,
        repo: &RepoPath,
        filenames: &[String],
    ) -> Result<Vec<PackageRecord>, StoreError>;
    /// Records, atomically, that `files` of the suite changed: increments `change_seq`
    /// and stores the change under the new sequence number, which it returns.
    async fn note_change(&self, repo: &RepoPath, files: &[String]) -> Result<u64, StoreError>;
    /// The changes with `after < seq <= upto`, in sequence order. Old changes expire,
    /// so fewer than `upto - after` entries means the log no longer covers the range.
    async fn changes(
        &self,
        repo: &RepoPath,
        after: u64,
        upto: u64,
    ) -> Result<Vec<ChangeRecord>, StoreError>;
    /// The suite's publishing state (default if never written).
    async fn repo_state(&self, repo: &RepoPath) -> Result<RepoState, StoreError>;
    /// Records a publication, only if `state.published_seq` is newer than the stored
    /// one, and commits `event` (`repository.published`) with it.
    async fn record_publish(
        &self,
        repo: &RepoPath,
        state: &RepoState,
        event: &NewEvent,
    ) -> Result<bool, StoreError>;
    /// Notes `keys` as superseded at `at` (a key noted again gets the later time).
    async fn note_superseded(
        &self,
        repo: &RepoPath,
        keys: &[String],
        at: i64,
    ) -> Result<(), StoreError>;
    /// Forgets that `keys` were superseded (they are named again, or gone).
    async fn forget_superseded(&self, repo: &RepoPath, keys: &[String]) -> Result<(), StoreError>;
    /// The repository's objects superseded before `before` (seconds since the epoch).
    async fn superseded(&self, repo: &RepoPath, before: i64)
    -> Result<Vec<Superseded>, StoreError>;
    /// Claims the pool object `file.key` of `repo` for package `owner`: succeeds if
    /// nobody claimed the key, or every claim is for the same SHA-256 and the object
    /// is not being deleted. Idempotent for the same owner.
    async fn claim_file(
        &self,
        repo: &RepoPath,
        file: &crate::package::PoolFile,
        owner: &str,
    ) -> Result<FileClaim, StoreError>;
    /// Gives up `owner`'s claim on `key`. When no owner is left the claim is marked
    /// for deletion ([`Release::Unowned`]); repeating the call is safe.
    async fn release_file(
        &self,
        repo: &RepoPath,
        key: &str,
        owner: &str,
    ) -> Result<Release, StoreError>;
    /// Removes a claim that has no owner and is marked for deletion, once its object
    /// is gone; anything else is left alone.
    async fn forget_file(&self, repo: &RepoPath, key: &str) -> Result<(), StoreError>;
    /// Every claim on the repository's pool objects (strongly consistent).
    async fn list_files(&self, repo: &RepoPath) -> Result<Vec<FileRecord>, StoreError>;
}

/// Stored user accounts.
#[async_trait]
pub trait UserDirectory: Send + Sync {
    /// A user by name.
    async fn get_user(&self, name: &str) -> Result<Option<UserRecord>, StoreError>;
    /// Creates or replaces a user.
    async fn put_user(&self, user: &UserRecord) -> Result<(), StoreError>;
}

/// Where a presigned upload stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadStatus {
    /// No object has arrived yet.
    Waiting,
    /// The ticket took an object and is ingesting it.
    Ingesting,
    /// The package was stored (in at least one repository).
    Stored,
    /// The identical package was already there.
    Unchanged,
    /// The package was refused; the message says why.
    Failed,
}

impl UploadStatus {
    /// The name stored and shown (`waiting`, `ingesting`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            UploadStatus::Waiting => "waiting",
            UploadStatus::Ingesting => "ingesting",
            UploadStatus::Stored => "stored",
            UploadStatus::Unchanged => "unchanged",
            UploadStatus::Failed => "failed",
        }
    }

    /// Reads a stored name; anything else is an error, never a default.
    pub fn parse(name: &str) -> Result<Self, StoreError> {
        Ok(match name {
            "waiting" => UploadStatus::Waiting,
            "ingesting" => UploadStatus::Ingesting,
            "stored" => UploadStatus::Stored,
            "unchanged" => UploadStatus::Unchanged,
            "failed" => UploadStatus::Failed,
            other => {
                return Err(StoreError::new(
                    "decode upload",
                    format!("unknown upload status {other:?}"),
                ));
            }
        })
    }

    /// Whether the ticket has its outcome.
    pub fn is_final(self) -> bool {
        !matches!(self, UploadStatus::Waiting | UploadStatus::Ingesting)
    }
}

/// Status of a presigned upload, from request to ingest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadTicket {
    /// Opaque id, also part of the staging key.
    pub id: String,
    /// Target suite.
    pub repo: RepoPath,
    /// RWS product, if given.
    pub product: Option<String>,
    /// File name the package will have.
    pub filename: String,
    /// Who asked for the upload.
    pub uploader: String,
    /// Where it stands.
    pub status: UploadStatus,
    /// Human-readable outcome.
    pub message: Option<String>,
    /// Creation time, seconds since the epoch.
    pub created_at: i64,
}

impl UploadTicket {
    /// The staging object key the client uploads to.
    pub fn staging_key(&self) -> String {
        format!("incoming/{}/{}", self.id, self.filename)
    }
}

#[async_trait]
impl<T: UserDirectory + ?Sized> UserDirectory for &T {
    async fn get_user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        (**self).get_user(name).await
    }
    async fn put_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        (**self).put_user(user).await
    }
}

/// Presigned upload tickets.
#[async_trait]
pub trait UploadLedger: Send + Sync {
    /// Stores a new ticket.
    async fn put_ticket(&self, ticket: &UploadTicket) -> Result<(), StoreError>;
    /// A ticket by id.
    async fn get_ticket(&self, id: &str) -> Result<Option<UploadTicket>, StoreError>;
    /// Takes a waiting ticket for the staged object version `token` (an S3 event's
    /// sequencer or entity tag). `Ok(false)` if the ticket is no longer waiting: a
    /// ticket accepts one object, and only the first object's event ingests. Taking
    /// it again with the same token (a retried event) succeeds.
    async fn take_ticket(&self, id: &str, token: &str) -> Result<bool, StoreError>;
    /// Sets a ticket's outcome.
    async fn finish_ticket(
        &self,
        id: &str,
        status: UploadStatus,
        message: &str,
    ) -> Result<(), StoreError>;
}

/// Hands out URLs a client reads one object of the repository bucket from (S3
/// presigned GETs): how private repositories' files are served.
#[async_trait]
pub trait ReadUrls: Send + Sync {
    /// A URL that allows GET (or, if `head`, HEAD: a presigned URL is for one
    /// method) of the repository bucket's object `key` for `ttl`, whoever holds it.
    async fn read_url(
        &self,
        key: &str,
        head: bool,
        ttl: std::time::Duration,
    ) -> Result<String, StoreError>;
}

/// Hands out URLs a client uploads to directly (S3 presigned PUTs), for files
/// larger than the API accepts.
#[async_trait]
pub trait UploadUrls: Send + Sync {
    /// A URL that accepts one PUT of the staging object `key` for `ttl`.
    async fn staging_put_url(
        &self,
        key: &str,
        ttl: std::time::Duration,
    ) -> Result<String, StoreError>;
}

/// The metadata-sync queue.
#[async_trait]
pub trait SyncQueue: Send + Sync {
    /// Asks for the suite to be republished up to at least `change_seq`.
    async fn request_sync(&self, repo: &RepoPath, change_seq: u64) -> Result<(), StoreError>;
}

/// A failure to sign.
#[derive(Debug, thiserror::Error)]
#[error("signing failed: {0}")]
pub struct SignError(pub String);

/// Checks OpenPGP signatures against a set of trusted public keys.
pub trait SignatureCheck: Send + Sync {
    /// Verifies a cleartext-signed message (`InRelease`, a chart's `.prov`) and
    /// returns the signed text, with a final newline.
    fn cleartext(&self, signed: &str) -> Result<String, SignError>;
    /// Verifies an armoured detached signature (`Release.gpg`, `repomd.xml.asc`) of `data`.
    fn detached(&self, data: &[u8], signature: &str) -> Result<(), SignError>;
}

/// OpenPGP signing of repository metadata with one or more keys.
pub trait Signer: Send + Sync {
    /// A cleartext-signed copy of `text` (the `InRelease` format).
    fn clearsign(&self, text: &str) -> Result<String, SignError>;
    /// An armoured detached signature of `data` (the `Release.gpg` format).
    fn detached(&self, data: &[u8]) -> Result<String, SignError>;
    /// The public keys, armoured.
    fn public_keys_armored(&self) -> Result<String, SignError>;
    /// The public keys, binary (a keyring usable as apt `signed-by`).
    fn public_keys_binary(&self) -> Result<Vec<u8>, SignError>;
}
