//! Ingest and publish against the in-memory ports.

use bytes::Bytes;
use cairn_core::ingest::{IngestError, IngestOutcome, Ingestor, PackageSource, build_record};
use cairn_core::memory::{MemoryCatalog, MemoryStore};
use cairn_core::ports::RepoStore;
use cairn_core::ports::{Catalog, SignError, Signer};
use cairn_core::publish::{Baseline, Publisher};
use cairn_core::{PackageStatus, RepoPath, SupportedRepos};
use cairn_deb::{Control, DebInfo, Digests};

struct FakeSigner;

impl Signer for FakeSigner {
    fn clearsign(&self, text: &str) -> Result<String, SignError> {
        Ok(format!("SIGNED\n{text}"))
    }
    fn detached(&self, data: &[u8]) -> Result<String, SignError> {
        Ok(format!("SIG {}", data.len()))
    }
    fn public_keys_armored(&self) -> Result<String, SignError> {
        Ok("KEY".into())
    }
    fn public_keys_binary(&self) -> Result<Vec<u8>, SignError> {
        Ok(b"KEY".to_vec())
    }
}

fn supported() -> SupportedRepos {
    serde_json::from_str(
        r#"{"kinds":["release"],"series":["1"],
            "dists":{"ubuntu":{"format":"deb","versions":["jammy"],"architectures":["amd64","arm64"]}}}"#,
    )
    .expect("valid")
}

fn repo() -> RepoPath {
    RepoPath::parse("release/1/ubuntu/jammy").expect("valid")
}

fn info(name: &str, arch: &str, content: &[u8]) -> DebInfo {
    DebInfo {
        control: Control::parse(&format!(
            "Package: {name}\nVersion: 1.0\nArchitecture: {arch}\nDescription: d\n"
        ))
        .expect("valid"),
        digests: Digests::of(content),
    }
}

async fn ingest(
    catalog: &MemoryCatalog,
    store: &MemoryStore,
    name: &str,
    arch: &str,
    content: &'static [u8],
) -> Result<IngestOutcome, IngestError> {
    let supported = supported();
    let ingestor = Ingestor {
        catalog,
        store,
        queue: catalog,
        supported: &supported,
    };
    let filename = format!("{name}_1.0_{arch}.deb");
    let record = build_record(&repo(), &filename, None, &info(name, arch, content), "t", 0)?;
    ingestor.check_conflict(&record).await?;
    let outcome = ingestor
        .store(record, PackageSource::Bytes(Bytes::from_static(content)))
        .await?;
    if let IngestOutcome::Stored(r) = &outcome {
        ingestor
            .announce(&repo(), std::slice::from_ref(&r.filename))
            .await?;
    }
    Ok(outcome)
}

#[tokio::test]
async fn ingest_is_immutable_and_idempotent() {
    let (catalog, store) = (MemoryCatalog::default(), MemoryStore::default());
    let first = ingest(&catalog, &store, "hello", "amd64", b"one")
        .await
        .expect("stored");
    assert!(matches!(first, IngestOutcome::Stored(_)));
    assert_eq!(
        store.object("release/1/ubuntu/pool/jammy/main/h/hello/hello_1.0_amd64.deb"),
        Some(Bytes::from_static(b"one"))
    );
    let again = ingest(&catalog, &store, "hello", "amd64", b"one")
        .await
        .expect("no-op");
    assert!(matches!(again, IngestOutcome::Unchanged(_)));
    let writes = store.writes.lock().expect("lock").len();
    let err = ingest(&catalog, &store, "hello", "amd64", b"two")
        .await
        .expect_err("conflict");
    assert!(matches!(err, IngestError::Conflict { .. }), "{err}");
    assert_eq!(
        store.writes.lock().expect("lock").len(),
        writes,
        "nothing written"
    );
    assert_eq!(catalog.sync_requests.lock().expect("lock").len(), 1);
    let listed = catalog.list_packages(&repo()).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, PackageStatus::Ready);
}

#[tokio::test]
async fn publish_writes_indexes_before_release_and_inrelease_last() {
    let (catalog, store) = (MemoryCatalog::default(), MemoryStore::default());
    ingest(&catalog, &store, "hello", "amd64", b"one")
        .await
        .expect("stored");
    ingest(&catalog, &store, "docs", "all", b"two")
        .await
        .expect("stored");
    store.writes.lock().expect("lock").clear();
    let supported = supported();
    let cache = cairn_core::publish::SnapshotCache::default();
    let publisher = Publisher {
        catalog: &catalog,
        store: &store,
        signer: &FakeSigner,
        supported: &supported,
        origin: "Cairn",
        base_url: "https://repo.example",
        cache: &cache,
    };
    let report = publisher
        .sync(&repo(), 2, time::OffsetDateTime::UNIX_EPOCH)
        .await
        .expect("published");
    assert!(report.rebuilt);
    assert_eq!(report.packages, 2);

    let writes = store.writes.lock().expect("lock").clone();
    let inrelease_at = writes
        .iter()
        .position(|k| k.ends_with("/InRelease"))
        .expect("InRelease written");
    assert_eq!(
        &writes[inrelease_at + 1..],
        ["release/1/ubuntu/dists/jammy/index.html"],
        "InRelease is the last metadata file; only the page follows it"
    );
    let release_at = writes
        .iter()
        .position(|k| k.ends_with("/Release"))
        .expect("Release written");
    for (i, key) in writes.iter().enumerate() {
        if key.contains("/binary-") {
            assert!(i < release_at, "{key} written after Release");
        }
    }
    let release = store
        .object("release/1/ubuntu/dists/jammy/Release")
        .expect("Release");
    let release = std::str::from_utf8(&release).expect("utf8");
    assert!(release.contains("Architectures: amd64 arm64\n"));
    assert!(release.contains("Date: Thu, 01 Jan 1970 00:00:00 UTC\n"));
    // Every file the Release names exists with the stated size, also by hash.
    for line in release
        .split("SHA256:\n")
        .nth(1)
        .expect("sha256 section")
        .lines()
    {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [digest, size, path] = parts[..] else {
            panic!("bad line {line}")
        };
        let body = store
            .object(&format!("release/1/ubuntu/dists/jammy/{path}"))
            .expect("named index exists");
        assert_eq!(body.len().to_string(), size);
        let dir = path.rsplit_once('/').expect("in a dir").0;
        assert!(
            store
                .object(&format!(
                    "release/1/ubuntu/dists/jammy/{dir}/by-hash/SHA256/{digest}"
                ))
                .is_some()
        );
    }
    // Architecture: all goes into every architecture's index.
    let arm = store
        .object("release/1/ubuntu/dists/jammy/main/binary-arm64/Packages")
        .expect("arm64 index");
    let arm = std::str::from_utf8(&arm).expect("utf8");
    assert!(arm.contains("Package: docs") && !arm.contains("Package: hello"));
    assert_eq!(
        store.object("release/1/ubuntu/dists/jammy/InRelease"),
        Some(Bytes::from(format!("SIGNED\n{release}")))
    );

    // A request already covered rebuilds nothing.
    let again = publisher
        .sync(&repo(), 2, time::OffsetDateTime::UNIX_EPOCH)
        .await
        .expect("ok");
    assert!(!again.rebuilt);
}

#[tokio::test]
async fn incremental_sync_matches_a_full_rebuild() {
    let (catalog, store) = (MemoryCatalog::default(), MemoryStore::default());
    let supported = supported();
    let warm = cairn_core::publish::SnapshotCache::default();
    let publisher = |cache| Publisher {
        catalog: &catalog,
        store: &store,
        signer: &FakeSigner,
        supported: &supported,
        origin: "Cairn",
        base_url: "https://repo.example",
        cache,
    };
    let index = "release/1/ubuntu/dists/jammy/main/binary-amd64/Packages";
    ingest(&catalog, &store, "hello", "amd64", b"one")
        .await
        .expect("stored");
    let first = publisher(&warm)
        .sync(&repo(), 1, time::OffsetDateTime::UNIX_EPOCH)
        .await
        .expect("published");
    assert_eq!(first.baseline, Baseline::Full, "nothing published yet");
    ingest(&catalog, &store, "docs", "all", b"two")
        .await
        .expect("stored");
    ingest(&catalog, &store, "zed", "amd64", b"three")
        .await
        .expect("stored");
    let second = publisher(&warm)
        .sync(&repo(), 3, time::OffsetDateTime::UNIX_EPOCH)
        .await
        .expect("published");
    assert_eq!(
        second.baseline,
        Baseline::Cache,
        "warm snapshot + change log"
    );
    assert_eq!(second.packages, 3);
    let incremental = store.object(index).expect("index");

    // A cold worker (empty cache) reads the published indexes back.
    let cold = cairn_core::publish::SnapshotCache::default();
    ingest(&catalog, &store, "late", "amd64", b"four")
        .await
        .expect("stored");
    let seq = catalog.repo_state(&repo()).await.expect("state").change_seq;
    let third = publisher(&cold)
        .sync(&repo(), seq, time::OffsetDateTime::UNIX_EPOCH)
        .await
        .expect("published");
    assert_eq!(third.baseline, Baseline::Published);
    assert_eq!(third.packages, 4);
    let from_published = store.object(index).expect("index");

    // Full read of the catalog (no cache, published indexes unusable) agrees byte for byte.
    store
        .put(
            "release/1/ubuntu/dists/jammy/Release",
            Bytes::from_static(b"x"),
            "",
        )
        .await
        .expect("tamper");
    let seq = catalog.note_change(&repo(), &[]).await.expect("noted");
    let full = cairn_core::publish::SnapshotCache::default();
    let fourth = publisher(&full)
        .sync(&repo(), seq, time::OffsetDateTime::UNIX_EPOCH)
        .await
        .expect("published");
    assert_eq!(fourth.baseline, Baseline::Full);
    assert_eq!(store.object(index).expect("index"), from_published);
    assert_ne!(from_published, incremental, "late package added");
    assert!(String::from_utf8_lossy(&from_published).contains("Package: late"));
}
