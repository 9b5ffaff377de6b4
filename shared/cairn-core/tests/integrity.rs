//! The integrity rules of ingest and deletion, against the in-memory ports: a
//! package deletes exactly the files it claimed, shared files are reference-counted,
//! a key holds one content, a staged upload is copied only as inspected, and the
//! invariant checker sees each kind of damage.

use bytes::Bytes;
use cairn_core::fsck::Fsck;
use cairn_core::ingest::{
    IngestError, IngestOutcome, Ingestor, Inspected, PackageSource, build_record,
};
use cairn_core::memory::{MemoryCatalog, MemoryStore};
use cairn_core::package::PoolFile;
use cairn_core::ports::{Catalog, RepoStore};
use cairn_core::publish::{Publisher, SnapshotCache};
use cairn_core::{PackageRecord, RepoPath, SupportedRepos};
use cairn_deb::{Control, DebInfo, Digests};

mod common;

use common::{FakeCheck, FakeSigner};

fn supported() -> SupportedRepos {
    serde_json::from_str(
        r#"{"kinds":["release"],"series":["1"],
            "dists":{"ubuntu":{"format":"deb","versions":["jammy"],"architectures":["amd64"]}}}"#,
    )
    .expect("valid")
}

fn repo() -> RepoPath {
    RepoPath::parse("release/1/ubuntu/jammy").expect("valid")
}

struct World {
    catalog: MemoryCatalog,
    store: MemoryStore,
    supported: SupportedRepos,
    cache: SnapshotCache,
}

impl World {
    fn new() -> Self {
        Self {
            catalog: MemoryCatalog::default(),
            store: MemoryStore::default(),
            supported: supported(),
            cache: SnapshotCache::default(),
        }
    }

    fn ingestor(&self) -> Ingestor<'_> {
        Ingestor {
            catalog: &self.catalog,
            store: &self.store,
            queue: &self.catalog,
            supported: &self.supported,
        }
    }

    fn record(
        &self,
        filename: &str,
        control: &str,
        content: &[u8],
    ) -> Result<PackageRecord, IngestError> {
        let inspected = Inspected::Deb(DebInfo {
            control: Control::parse(control).expect("valid control"),
            digests: Digests::of(content),
        });
        let dist = self.supported.check(&repo()).expect("configured");
        build_record(&repo(), dist, filename, Some("demo"), &inspected, "t", 0)
    }

    fn deb(&self, name: &str, version: &str, content: &[u8]) -> PackageRecord {
        self.record(
            &format!("{name}_{version}_amd64.deb"),
            &format!("Package: {name}\nVersion: {version}\nArchitecture: amd64\nDescription: d\n"),
            content,
        )
        .expect("valid record")
    }

    /// Stores `record` with `extra` files (key, bytes) and notes the change.
    async fn store(
        &self,
        record: PackageRecord,
        body: &'static [u8],
        extra: Vec<(String, &'static [u8])>,
    ) -> Result<IngestOutcome, IngestError> {
        let extra = extra
            .into_iter()
            .map(|(k, b)| (k, Bytes::from_static(b)))
            .collect();
        let outcome = self
            .ingestor()
            .store(
                record,
                PackageSource::Bytes(Bytes::from_static(body)),
                extra,
            )
            .await?;
        if let IngestOutcome::Stored(r) = &outcome {
            self.ingestor()
                .announce(&repo(), std::slice::from_ref(&r.filename))
                .await?;
        }
        Ok(outcome)
    }

    async fn sync(&self) {
        let seq = self
            .catalog
            .repo_state(&repo())
            .await
            .expect("state")
            .change_seq;
        Publisher {
            catalog: &self.catalog,
            store: &self.store,
            signer: &FakeSigner,
            supported: &self.supported,
            origin: "Cairn",
            base_url: "https://repo.example",
            api_url: None,
            cache: &self.cache,
            superseded_grace_secs: 3600,
        }
        .sync(&repo(), seq, time::OffsetDateTime::UNIX_EPOCH)
        .await
        .expect("published");
    }

    async fn delete(&self, filename: &str) {
        self.ingestor()
            .delete(&repo(), filename)
            .await
            .expect("deleted");
        self.sync().await;
    }

    async fn fsck(&self) -> Vec<String> {
        let dist = self.supported.check(&repo()).expect("configured");
        let report = Fsck {
            catalog: &self.catalog,
            store: &self.store,
            keys: &FakeCheck,
            grace_secs: 0,
            now: 1_000_000,
        }
        .check(&repo(), dist)
        .await
        .expect("checked");
        report
            .verify
            .problems
            .into_iter()
            .chain(report.problems)
            .collect()
    }
}

/// A record that also claims `files` (as a source package claims its tarballs).
fn with_files(mut record: PackageRecord, files: &[(&str, &[u8])]) -> PackageRecord {
    let dir = record
        .pool_key
        .rsplit_once('/')
        .map(|(d, _)| d.to_string())
        .expect("pool key has a directory");
    for (name, body) in files {
        let d = Digests::of(body);
        record.files.push(PoolFile {
            key: format!("{dir}/{name}"),
            sha256: d.sha256,
            size: d.size,
        });
    }
    record
}

#[tokio::test]
async fn a_binary_package_cannot_claim_architecture_source() {
    let w = World::new();
    let err = w
        .record(
            "evil_1.0_source.deb",
            "Package: evil\nVersion: 1.0\nArchitecture: source\nDescription: d\n",
            b"x",
        )
        .expect_err("refused");
    assert!(err.to_string().contains("Architecture"), "{err}");
}

#[tokio::test]
async fn a_file_name_must_say_what_the_package_is() {
    let w = World::new();
    let err = w
        .record(
            "x_1.0_amd64.deb",
            "Package: y\nVersion: 9.9\nArchitecture: amd64\nDescription: d\n",
            b"x",
        )
        .expect_err("refused");
    assert!(err.to_string().contains("y_9.9_amd64.deb"), "{err}");
    // The epoch may be left out of the name, or kept.
    let control = "Package: y\nVersion: 1:2.0-1\nArchitecture: amd64\nDescription: d\n";
    w.record("y_2.0-1_amd64.deb", control, b"x")
        .expect("epoch left out");
    w.record("y_1:2.0-1_amd64.deb", control, b"x")
        .expect("epoch kept");
}

#[tokio::test]
async fn deleting_a_package_leaves_files_it_shares_with_others() {
    let w = World::new();
    let a = with_files(
        w.deb("a", "1.0", b"deb a"),
        &[("shared.orig.tar.gz", b"orig")],
    );
    let b = with_files(
        w.deb("b", "1.0", b"deb b"),
        &[("shared.orig.tar.gz", b"orig")],
    );
    let shared = a.files[1].key.clone();
    w.store(a, b"deb a", vec![(shared.clone(), b"orig")])
        .await
        .expect("a stored");
    // b lists the tarball as already in the pool: it sends no bytes for it.
    w.store(b, b"deb b", Vec::new()).await.expect("b stored");
    w.sync().await;
    assert_eq!(w.fsck().await, Vec::<String>::new());

    w.delete("a_1.0_amd64.deb").await;
    assert!(w.store.object(&shared).is_some(), "b still claims it");
    assert_eq!(w.fsck().await, Vec::<String>::new());

    w.delete("b_1.0_amd64.deb").await;
    assert!(w.store.object(&shared).is_none(), "nobody claims it");
    assert!(
        w.catalog
            .list_files(&repo())
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(w.fsck().await, Vec::<String>::new());
}

#[tokio::test]
async fn a_package_listing_another_packages_file_cannot_delete_it() {
    let w = World::new();
    let victim = w.deb("victim", "1.0", b"victim bytes");
    let victim_key = victim.pool_key.clone();
    w.store(victim, b"victim bytes", Vec::new())
        .await
        .expect("victim stored");
    // A package that names the victim's file as one of its own (same bytes).
    let thief = with_files(
        w.deb("thief", "1.0", b"thief"),
        &[("victim_1.0_amd64.deb", b"victim bytes")],
    );
    w.store(thief, b"thief", Vec::new())
        .await
        .expect("thief stored");
    w.sync().await;
    w.delete("thief_1.0_amd64.deb").await;
    assert_eq!(
        w.store.object(&victim_key).as_deref(),
        Some(&b"victim bytes"[..]),
        "the victim's file survives"
    );
    assert_eq!(w.fsck().await, Vec::<String>::new());
}

#[tokio::test]
async fn one_name_one_content_and_the_loser_leaves_nothing() {
    let w = World::new();
    let first = with_files(
        w.deb("a", "1.0", b"deb a"),
        &[("x.orig.tar.gz", b"orig one")],
    );
    let tarball = first.files[1].key.clone();
    w.store(first, b"deb a", vec![(tarball.clone(), b"orig one")])
        .await
        .expect("first stored");
    let second = with_files(
        w.deb("b", "1.0", b"deb b"),
        &[("x.orig.tar.gz", b"orig two")],
    );
    let second_key = second.pool_key.clone();
    let err = w
        .store(second, b"deb b", vec![(tarball.clone(), b"orig two")])
        .await
        .expect_err("conflict");
    assert!(
        matches!(&err, IngestError::Conflict { filename, .. } if filename == "x.orig.tar.gz"),
        "{err}"
    );
    assert_eq!(w.store.object(&tarball).as_deref(), Some(&b"orig one"[..]));
    // The loser's own file and record are gone with its claims.
    assert!(w.store.object(&second_key).is_none());
    assert!(
        w.catalog
            .get_package(&repo(), "b_1.0_amd64.deb")
            .await
            .expect("get")
            .is_none()
    );
    w.sync().await;
    assert_eq!(w.fsck().await, Vec::<String>::new());
}

#[tokio::test]
async fn an_object_already_holding_other_bytes_is_a_conflict_and_is_kept() {
    let w = World::new();
    let record = w.deb("a", "1.0", b"the real bytes");
    let key = record.pool_key.clone();
    // Bytes nobody claimed (left by a tool outside Cairn, or a legacy deployment).
    w.store
        .put(&key, Bytes::from_static(b"stray"), "")
        .await
        .expect("put");
    let err = w
        .store(record, b"the real bytes", Vec::new())
        .await
        .expect_err("conflict");
    assert!(matches!(err, IngestError::Conflict { .. }), "{err}");
    assert_eq!(w.store.object(&key).as_deref(), Some(&b"stray"[..]));
}

#[tokio::test]
async fn a_staged_upload_is_copied_only_as_inspected() {
    let w = World::new();
    let record = w.deb("a", "1.0", b"inspected");
    let key = record.pool_key.clone();
    let staged = "incoming/t/a_1.0_amd64.deb".to_string();
    let etag = MemoryStore::etag(b"inspected");
    // Replaced by a second PUT after it was inspected.
    w.store
        .staging
        .lock()
        .expect("lock")
        .insert(staged.clone(), Bytes::from_static(b"replaced"));
    let err = w
        .ingestor()
        .store(
            record,
            PackageSource::Staged { key: staged, etag },
            Vec::new(),
        )
        .await
        .expect_err("refused");
    assert!(matches!(err, IngestError::Store(_)), "{err}");
    assert!(w.store.object(&key).is_none());
    assert!(
        w.catalog
            .get_package(&repo(), "a_1.0_amd64.deb")
            .await
            .expect("get")
            .is_none(),
        "the claim is undone, so the next attempt starts afresh"
    );
}

#[tokio::test]
async fn fsck_finds_tampered_missing_and_unclaimed_files() {
    let w = World::new();
    let record = w.deb("a", "1.0", b"bytes");
    let key = record.pool_key.clone();
    w.store(record, b"bytes", Vec::new()).await.expect("stored");
    // Never published yet: that is a problem for a repository expected to exist.
    assert!(!w.fsck().await.is_empty());
    w.sync().await;
    assert_eq!(w.fsck().await, Vec::<String>::new());

    w.store
        .put(&key, Bytes::from_static(b"other"), "")
        .await
        .expect("put");
    let problems = w.fsck().await;
    assert!(
        problems.iter().any(|p| p.contains("sha256")),
        "{problems:?}"
    );

    w.store.delete(&key).await.expect("delete");
    let problems = w.fsck().await;
    assert!(
        problems.iter().any(|p| p.contains("missing")),
        "{problems:?}"
    );

    w.store
        .put(&key, Bytes::from_static(b"bytes"), "")
        .await
        .expect("put");
    let stray = key.replace("a_1.0", "stray_1.0");
    w.store
        .put(&stray, Bytes::from_static(b"s"), "")
        .await
        .expect("put");
    let problems = w.fsck().await;
    assert!(
        problems.iter().any(|p| p.contains("no package claims")),
        "{problems:?}"
    );
}

#[tokio::test]
async fn a_ticket_takes_one_object() {
    use cairn_core::ports::{UploadLedger, UploadStatus, UploadTicket};
    let catalog = MemoryCatalog::default();
    let ticket = UploadTicket {
        id: "0123456789abcdef0123456789abcdef".into(),
        repo: repo(),
        product: None,
        filename: "a_1.0_amd64.deb".into(),
        uploader: "alice".into(),
        status: UploadStatus::Waiting,
        message: None,
        created_at: 0,
    };
    catalog.put_ticket(&ticket).await.expect("put");
    assert!(
        catalog
            .take_ticket(&ticket.id, "first")
            .await
            .expect("take")
    );
    assert!(
        !catalog
            .take_ticket(&ticket.id, "second")
            .await
            .expect("take"),
        "a second object's event is refused"
    );
    assert!(
        catalog
            .take_ticket(&ticket.id, "first")
            .await
            .expect("take"),
        "a retried event of the first object is not"
    );
    catalog
        .finish_ticket(&ticket.id, UploadStatus::Stored, "done")
        .await
        .expect("finish");
    assert!(
        !catalog
            .take_ticket(&ticket.id, "first")
            .await
            .expect("take")
    );
    let status = catalog
        .get_ticket(&ticket.id)
        .await
        .expect("get")
        .expect("ticket")
        .status;
    assert_eq!(status, UploadStatus::Stored);
    assert!(status.is_final());
    assert!(UploadStatus::parse("stroed").is_err(), "no silent default");
    assert_eq!(
        UploadStatus::parse("ingesting").expect("known"),
        UploadStatus::Ingesting
    );
}
