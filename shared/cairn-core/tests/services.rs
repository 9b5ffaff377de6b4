//! Ingest and publish against the in-memory ports.

use bytes::Bytes;
use cairn_core::ingest::{
    IngestError, IngestOutcome, Ingestor, Inspected, PackageSource, build_record, inspect_package,
};
use cairn_core::memory::{MemoryCatalog, MemoryStore};
use cairn_core::ports::Catalog;
use cairn_core::ports::RepoStore;
use cairn_core::publish::{Baseline, Publisher};
use cairn_core::verify::Verifier;
use cairn_core::{PackageStatus, RepoPath, SupportedRepos};
use cairn_deb::{Control, DebInfo, Digests};

mod common;

use common::{FakeCheck, FakeSigner, chart};

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

fn info(name: &str, version: &str, arch: &str, content: &[u8]) -> DebInfo {
    DebInfo {
        control: Control::parse(&format!(
            "Package: {name}\nVersion: {version}\nArchitecture: {arch}\nDescription: d\n"
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
    ingest_into(catalog, store, &supported(), name, "1.0", arch, content).await
}

async fn ingest_into(
    catalog: &MemoryCatalog,
    store: &MemoryStore,
    supported: &SupportedRepos,
    name: &str,
    version: &str,
    arch: &str,
    content: &'static [u8],
) -> Result<IngestOutcome, IngestError> {
    let ingestor = Ingestor {
        catalog,
        store,
        queue: catalog,
        supported,
    };
    let filename = format!("{name}_{version}_{arch}.deb");
    let inspected = Inspected::Deb(info(name, version, arch, content));
    let dist = supported.check(&repo())?;
    let record = build_record(&repo(), dist, &filename, None, &inspected, "t", 0)?;
    ingestor.check_conflict(&record).await?;
    let outcome = ingestor
        .store(
            record,
            PackageSource::Bytes(Bytes::from_static(content)),
            Vec::new(),
        )
        .await?;
    if let IngestOutcome::Stored(r) = &outcome {
        ingestor
            .announce(&repo(), std::slice::from_ref(&r.filename))
            .await?;
    }
    Ok(outcome)
}

fn publisher<'a>(
    catalog: &'a MemoryCatalog,
    store: &'a MemoryStore,
    supported: &'a SupportedRepos,
    cache: &'a cairn_core::publish::SnapshotCache,
) -> Publisher<'a> {
    Publisher {
        catalog,
        store,
        signer: &FakeSigner,
        supported,
        origin: "Cairn",
        base_url: "https://repo.example",
        api_url: None,
        cache,
        superseded_grace_secs: 3600,
    }
}

fn position(writes: &[String], wanted: impl Fn(&str) -> bool) -> usize {
    writes
        .iter()
        .position(|k| wanted(k))
        .expect("the write happened")
}

#[tokio::test]
async fn deletion_leaves_the_metadata_before_the_bucket() {
    let (catalog, store) = (MemoryCatalog::default(), MemoryStore::default());
    let supported = supported();
    let cache = cairn_core::publish::SnapshotCache::default();
    let stored = ingest(&catalog, &store, "hello", "amd64", b"one")
        .await
        .expect("stored");
    let pool_key = stored.record().pool_key.clone();
    publisher(&catalog, &store, &supported, &cache)
        .sync(&repo(), 1, time::OffsetDateTime::UNIX_EPOCH)
        .await
        .expect("published");
    let ingestor = Ingestor {
        catalog: &catalog,
        store: &store,
        queue: &catalog,
        supported: &supported,
    };
    let filename = "hello_1.0_amd64.deb";
    let seq = ingestor
        .delete(&repo(), filename)
        .await
        .expect("deleted")
        .expect("a change was noted");
    assert!(
        ingestor
            .delete(&repo(), filename)
            .await
            .expect("idempotent")
            .is_none(),
        "deleting twice before the sync is a no-op"
    );
    // The name cannot be reused until the deletion is done.
    let err = ingest(&catalog, &store, "hello", "amd64", b"one")
        .await
        .expect_err("being deleted");
    assert!(matches!(err, IngestError::BeingDeleted { .. }), "{err}");

    store.writes.lock().expect("lock").clear();
    let report = publisher(&catalog, &store, &supported, &cache)
        .sync(&repo(), seq, time::OffsetDateTime::UNIX_EPOCH)
        .await
        .expect("published");
    assert_eq!(report.removed, [filename]);
    assert_eq!(report.packages, 0);
    let writes = store.writes.lock().expect("lock").clone();
    let inrelease = position(&writes, |k| k.ends_with("/InRelease"));
    let deleted = position(&writes, |k| k == format!("DELETE {pool_key}"));
    assert!(
        inrelease < deleted,
        "file deleted before the metadata: {writes:?}"
    );
    assert!(store.object(&pool_key).is_none());
    let index = store
        .object("release/1/ubuntu/dists/jammy/main/binary-amd64/Packages")
        .expect("index");
    assert!(!String::from_utf8_lossy(&index).contains("hello"));
    assert!(
        catalog
            .get_package(&repo(), filename)
            .await
            .expect("get")
            .is_none()
    );
    let err = ingestor.delete(&repo(), filename).await.expect_err("gone");
    assert!(matches!(err, IngestError::NotFound { .. }), "{err}");
    // And the name is free again.
    ingest(&catalog, &store, "hello", "amd64", b"one")
        .await
        .expect("stored again");
}

#[tokio::test]
async fn retention_keeps_the_newest_versions_by_dpkg_order() {
    let (catalog, store) = (MemoryCatalog::default(), MemoryStore::default());
    let supported: SupportedRepos = serde_json::from_str(
        r#"{"kinds":["release"],"series":["1"],
            "dists":{"ubuntu":{"format":"deb","versions":["jammy"]}},
            "retention":{"release/1/ubuntu":2}}"#,
    )
    .expect("valid");
    let cache = cairn_core::publish::SnapshotCache::default();
    for (version, content) in [("1.0", &b"a"[..]), ("1.10", b"b"), ("1.9", b"c")] {
        let content: &'static [u8] = content;
        ingest_into(
            &catalog, &store, &supported, "hello", version, "amd64", content,
        )
        .await
        .expect("stored");
    }
    ingest_into(&catalog, &store, &supported, "other", "0.1", "amd64", b"d")
        .await
        .expect("stored");
    store.writes.lock().expect("lock").clear();
    let report = publisher(&catalog, &store, &supported, &cache)
        .sync(&repo(), 4, time::OffsetDateTime::UNIX_EPOCH)
        .await
        .expect("published");
    assert_eq!(report.removed, ["hello_1.0_amd64.deb"]);
    assert_eq!(report.packages, 3);
    let index = store
        .object("release/1/ubuntu/dists/jammy/main/binary-amd64/Packages")
        .expect("index");
    let index = String::from_utf8_lossy(&index);
    assert!(index.contains("Version: 1.10\n") && index.contains("Version: 1.9\n"));
    assert!(!index.contains("Version: 1.0\n") && index.contains("Package: other"));
    let writes = store.writes.lock().expect("lock").clone();
    let inrelease = position(&writes, |k| k.ends_with("/InRelease"));
    let deleted = position(&writes, |k| {
        k.starts_with("DELETE ") && k.ends_with("hello_1.0_amd64.deb")
    });
    assert!(inrelease < deleted, "{writes:?}");
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
    let publisher = publisher(&catalog, &store, &supported, &cache);
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
    // Every file the Release names exists with the stated size, the compressed ones
    // also by hash (the plain text has no by-hash copy).
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
        let (dir, name) = path.rsplit_once('/').expect("in a dir");
        assert_eq!(
            store
                .object(&format!(
                    "release/1/ubuntu/dists/jammy/{dir}/by-hash/SHA256/{digest}"
                ))
                .is_some(),
            name.contains('.'),
            "{path}"
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

    let verifier = Verifier {
        store: &store,
        keys: &FakeCheck,
    };
    let verified = verifier
        .verify(&repo(), cairn_core::repo::RepoFormat::Deb, &[])
        .await
        .expect("verified");
    assert!(verified.ok(), "{:?}", verified.problems);
    assert_eq!(verified.signatures_checked, 2);
    // (2 architectures + Sources) x (4 index variants by name + the 3 compressed ones
    // by hash) + 2 packages.
    assert_eq!(verified.files_checked, 23);
    store
        .put(
            "release/1/ubuntu/dists/jammy/InRelease",
            Bytes::from_static(b"forged"),
            "",
        )
        .await
        .expect("tamper");
    let forged = verifier
        .verify(&repo(), cairn_core::repo::RepoFormat::Deb, &[])
        .await
        .expect("verified");
    assert!(
        forged.problems[0].contains("InRelease: signature"),
        "{forged:?}"
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
    let publisher = |cache| publisher(&catalog, &store, &supported, cache);
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
    // It split the published indexes back into their compressed pieces and reused
    // the unchanged ones (`binary-arm64`, `source`); the full rebuild below, which
    // compresses everything, writes the same bytes.
    assert!(third.pieces_reused >= 2, "{third:?}");
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

fn other_formats() -> SupportedRepos {
    serde_json::from_str(
        r#"{"kinds":["release"],"series":["1"],
            "dists":{"el":{"format":"rpm","versions":["9"]},
                     "helm":{"format":"helm","versions":["stable"]}}}"#,
    )
    .expect("valid")
}

/// Inspects, stores and announces one file the way repo-api does.
async fn upload_file(
    catalog: &MemoryCatalog,
    store: &MemoryStore,
    supported: &SupportedRepos,
    repo: &RepoPath,
    filename: &str,
    bytes: Vec<u8>,
) -> u64 {
    let ingestor = Ingestor {
        catalog,
        store,
        queue: catalog,
        supported,
    };
    let dist = supported.check(repo).expect("configured");
    let inspected = inspect_package(dist.format, filename, &bytes[..]).expect("valid package");
    let record =
        build_record(repo, dist, filename, None, &inspected, "t", 1_700_000_000).expect("record");
    ingestor
        .store(record, PackageSource::Bytes(Bytes::from(bytes)), Vec::new())
        .await
        .expect("stored");
    ingestor
        .announce(repo, &[filename.to_string()])
        .await
        .expect("announced")
}

#[tokio::test]
async fn yum_repodata_per_architecture_folder_with_repomd_last() {
    use cairn_rpm::testutil::{RpmBuilder, tag};
    let (catalog, store) = (MemoryCatalog::default(), MemoryStore::default());
    let supported = other_formats();
    let repo = RepoPath::parse("release/1/el/9").expect("valid");
    let app = RpmBuilder::minimal("app").build();
    let mut dep = RpmBuilder::minimal("dep");
    dep.header = dep.header.string(tag::ARCH, "noarch");
    let src = RpmBuilder::source("app").build();
    upload_file(
        &catalog,
        &store,
        &supported,
        &repo,
        "app-1.0-1.x86_64.rpm",
        app,
    )
    .await;
    upload_file(
        &catalog,
        &store,
        &supported,
        &repo,
        "dep-1.0-1.noarch.rpm",
        dep.build(),
    )
    .await;
    let seq = upload_file(
        &catalog,
        &store,
        &supported,
        &repo,
        "app-1.0-1.src.rpm",
        src,
    )
    .await;
    // noarch is stored once per architecture folder.
    for arch in ["x86_64", "aarch64"] {
        assert!(
            store
                .object(&format!(
                    "release/1/el/9/{arch}/Packages/dep-1.0-1.noarch.rpm"
                ))
                .is_some()
        );
    }
    store.writes.lock().expect("lock").clear();
    let cache = cairn_core::publish::SnapshotCache::default();
    let report = publisher(&catalog, &store, &supported, &cache)
        .sync(&repo, seq, time::OffsetDateTime::UNIX_EPOCH)
        .await
        .expect("published");
    assert_eq!(report.packages, 3);
    let writes = store.writes.lock().expect("lock").clone();
    let primary_of = |folder: &str| {
        let repomd = store
            .object(&format!("release/1/el/9/{folder}/repodata/repomd.xml"))
            .expect("repomd.xml");
        let repomd = String::from_utf8(repomd.to_vec()).expect("utf8");
        let href = repomd
            .split("<data type=\"primary\">")
            .nth(1)
            .and_then(|s| s.split("<location href=\"").nth(1))
            .and_then(|s| s.split('"').next())
            .expect("primary location")
            .to_string();
        let key = format!("release/1/el/9/{folder}/{href}");
        let repomd_at = position(&writes, |k| {
            k.ends_with(&format!("{folder}/repodata/repomd.xml"))
        });
        let asc_at = position(&writes, |k| {
            k.ends_with(&format!("{folder}/repodata/repomd.xml.asc"))
        });
        assert!(position(&writes, |k| k == key) < repomd_at && repomd_at < asc_at);
        let gz = store.object(&key).expect("primary exists");
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::MultiGzDecoder::new(&gz[..]), &mut text)
            .expect("gzip");
        text
    };
    let x86 = primary_of("x86_64");
    assert!(x86.contains("packages=\"2\""), "{x86}");
    assert!(x86.contains("<location href=\"Packages/app-1.0-1.x86_64.rpm\"/>"));
    assert!(x86.contains("<location href=\"Packages/dep-1.0-1.noarch.rpm\"/>"));
    let arm = primary_of("aarch64");
    assert!(arm.contains("dep-1.0-1.noarch.rpm") && !arm.contains("app-1.0-1.x86_64.rpm"));
    let srpms = primary_of("SRPMS");
    assert!(srpms.contains("<arch>src</arch>") && !srpms.contains("noarch"));
    let arches = ["x86_64".to_string(), "aarch64".to_string()];
    let verifier = Verifier {
        store: &store,
        keys: &FakeCheck,
    };
    let report = verifier
        .verify(&repo, cairn_core::repo::RepoFormat::Rpm, &arches)
        .await
        .expect("verified");
    assert!(report.ok(), "{:?}", report.problems);
    // 3 folders x (3 documents) + x86_64: 2 packages, aarch64: 1, SRPMS: 1.
    assert_eq!((report.files_checked, report.signatures_checked), (13, 3));
    store
        .put(
            "release/1/el/9/aarch64/Packages/dep-1.0-1.noarch.rpm",
            Bytes::from_static(b"swapped"),
            "",
        )
        .await
        .expect("tamper");
    let report = verifier
        .verify(&repo, cairn_core::repo::RepoFormat::Rpm, &arches)
        .await
        .expect("verified");
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(
        report.problems[0]
            .starts_with("release/1/el/9/aarch64/Packages/dep-1.0-1.noarch.rpm: size 7")
    );
    assert_eq!(
        store.object("release/1/el/9/x86_64/repodata/repomd.xml.asc"),
        Some(Bytes::from(format!(
            "SIG {}",
            store
                .object("release/1/el/9/x86_64/repodata/repomd.xml")
                .expect("repomd")
                .len()
        )))
    );
}

#[tokio::test]
async fn helm_index_lists_versions_and_cairn_signs_provenance() {
    let (catalog, store) = (MemoryCatalog::default(), MemoryStore::default());
    let supported = other_formats();
    let repo = RepoPath::parse("release/1/helm/stable").expect("valid");
    upload_file(
        &catalog,
        &store,
        &supported,
        &repo,
        "demo-0.1.0.tgz",
        chart("demo", "0.1.0"),
    )
    .await;
    let seq = upload_file(
        &catalog,
        &store,
        &supported,
        &repo,
        "demo-0.10.0.tgz",
        chart("demo", "0.10.0"),
    )
    .await;
    let cache = cairn_core::publish::SnapshotCache::default();
    publisher(&catalog, &store, &supported, &cache)
        .sync(&repo, seq, time::OffsetDateTime::UNIX_EPOCH)
        .await
        .expect("published");
    let index = store
        .object("release/1/helm/stable/index.yaml")
        .expect("index.yaml");
    let index = String::from_utf8(index.to_vec()).expect("utf8");
    let newer = index.find("demo-0.10.0.tgz").expect("0.10.0 listed");
    let older = index.find("demo-0.1.0.tgz").expect("0.1.0 listed");
    assert!(newer < older, "newest first:\n{index}");
    for v in ["0.1.0", "0.10.0"] {
        let prov = store
            .object(&format!("release/1/helm/stable/demo-{v}.tgz.prov"))
            .expect("provenance written");
        let prov = String::from_utf8(prov.to_vec()).expect("utf8");
        assert!(prov.starts_with("SIGNED\n") && prov.contains(&format!("demo-{v}.tgz: sha256:")));
    }
    let report = Verifier {
        store: &store,
        keys: &FakeCheck,
    }
    .verify(&repo, cairn_core::repo::RepoFormat::Helm, &[])
    .await
    .expect("verified");
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!((report.files_checked, report.signatures_checked), (2, 2));
}

#[tokio::test]
async fn yum_cold_worker_reads_the_published_repodata_back() {
    use cairn_rpm::testutil::{RpmBuilder, tag};
    let (catalog, store) = (MemoryCatalog::default(), MemoryStore::default());
    let supported = other_formats();
    let repo = RepoPath::parse("release/1/el/9").expect("valid");
    let mut rich = RpmBuilder::rich("rich");
    rich.header = rich.header.string(tag::ARCH, "noarch");
    upload_file(
        &catalog,
        &store,
        &supported,
        &repo,
        "rich-1.0-1.noarch.rpm",
        rich.build(),
    )
    .await;
    let src = RpmBuilder::source("app").build();
    let seq = upload_file(
        &catalog,
        &store,
        &supported,
        &repo,
        "app-1.0-1.src.rpm",
        src,
    )
    .await;
    let first = cairn_core::publish::SnapshotCache::default();
    publisher(&catalog, &store, &supported, &first)
        .sync(&repo, seq, time::OffsetDateTime::UNIX_EPOCH)
        .await
        .expect("published");

    let app = RpmBuilder::minimal("app").build();
    let seq = upload_file(
        &catalog,
        &store,
        &supported,
        &repo,
        "app-1.0-1.x86_64.rpm",
        app,
    )
    .await;
    let cold = cairn_core::publish::SnapshotCache::default();
    let report = publisher(&catalog, &store, &supported, &cold)
        .sync(&repo, seq, time::OffsetDateTime::UNIX_EPOCH)
        .await
        .expect("published");
    assert_eq!(report.baseline, Baseline::Published);
    assert_eq!(report.packages, 3);
    // The published documents' members were kept and the unchanged ones reused
    // (aarch64 and SRPMS: every piece but their heads, which hold the count).
    assert!(report.pieces_reused >= 4, "{report:?}");
    let repomd = |folder: &str| {
        store
            .object(&format!("release/1/el/9/{folder}/repodata/repomd.xml"))
            .expect("repomd")
    };
    let from_published: Vec<_> = ["aarch64", "SRPMS", "x86_64"].map(repomd).to_vec();

    // A full read of the catalog produces the same repodata, byte for byte.
    store
        .put(
            "release/1/el/9/x86_64/repodata/repomd.xml",
            Bytes::from_static(b"tampered"),
            "",
        )
        .await
        .expect("tamper");
    let seq = catalog.note_change(&repo, &[]).await.expect("noted");
    let full = cairn_core::publish::SnapshotCache::default();
    let report = publisher(&catalog, &store, &supported, &full)
        .sync(&repo, seq, time::OffsetDateTime::UNIX_EPOCH)
        .await
        .expect("published");
    assert_eq!(report.baseline, Baseline::Full);
    assert_eq!(
        ["aarch64", "SRPMS", "x86_64"].map(repomd).to_vec(),
        from_published
    );
}

/// Seconds since the epoch as a time.
fn at(secs: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(secs).expect("time")
}

/// The ports of a pruning test, with `hello` (amd64) uploaded; its publisher keeps
/// superseded copies 100 s.
struct Pruning {
    catalog: MemoryCatalog,
    store: MemoryStore,
    supported: SupportedRepos,
    cache: cairn_core::publish::SnapshotCache,
}

impl Pruning {
    async fn new() -> Self {
        let fixture = Self {
            catalog: MemoryCatalog::default(),
            store: MemoryStore::default(),
            supported: supported(),
            cache: cairn_core::publish::SnapshotCache::default(),
        };
        ingest(&fixture.catalog, &fixture.store, "hello", "amd64", b"one")
            .await
            .expect("stored");
        fixture
    }

    fn publisher(&self) -> Publisher<'_> {
        Publisher {
            superseded_grace_secs: 100,
            ..publisher(&self.catalog, &self.store, &self.supported, &self.cache)
        }
    }
}

fn by_hash_keys(store: &MemoryStore) -> std::collections::BTreeSet<String> {
    store
        .objects
        .lock()
        .expect("lock")
        .keys()
        .filter(|k| k.contains("/by-hash/"))
        .cloned()
        .collect()
}

#[tokio::test]
async fn superseded_indexes_outlive_the_grace_period_then_go() {
    let fixture = Pruning::new().await;
    let (catalog, store) = (&fixture.catalog, &fixture.store);
    let publisher = fixture.publisher();
    publisher
        .sync(&repo(), 1, at(1000))
        .await
        .expect("published");
    let first = by_hash_keys(store);
    assert_eq!(first.len(), 9, "3 indexes x 3 compressed forms: {first:?}");

    // A second publication changes the amd64 index; the first one's copies stay for
    // clients that read its Release.
    ingest(catalog, store, "tool", "amd64", b"two")
        .await
        .expect("stored");
    publisher
        .sync(&repo(), 2, at(1010))
        .await
        .expect("published");
    let second = by_hash_keys(store);
    assert_eq!(second.len(), 12);
    let superseded_first: Vec<&String> = first
        .iter()
        .filter(|k| k.contains("/binary-amd64/"))
        .collect();

    // Within the grace period nothing goes.
    ingest(catalog, store, "more", "amd64", b"three")
        .await
        .expect("stored");
    let report = publisher
        .sync(&repo(), 3, at(1090))
        .await
        .expect("published");
    assert_eq!(report.superseded_pruned, 0);
    assert!(superseded_first.iter().all(|k| store.object(k).is_some()));

    // After it, what the first publication alone named goes; what the second one
    // named (superseded at 1090) and what the current one names stay.
    ingest(catalog, store, "last", "amd64", b"four")
        .await
        .expect("stored");
    let report = publisher
        .sync(&repo(), 4, at(1115))
        .await
        .expect("published");
    assert_eq!(report.superseded_pruned, 3);
    assert!(superseded_first.iter().all(|k| store.object(k).is_none()));
    // The unchanged arm64 and source copies, and the amd64 ones of publications 2-4.
    assert_eq!(by_hash_keys(store).len(), 6 + 3 * 3);
    let verified = Verifier {
        store,
        keys: &FakeCheck,
    }
    .verify(&repo(), cairn_core::repo::RepoFormat::Deb, &[])
    .await
    .expect("verified");
    assert!(verified.ok(), "{:?}", verified.problems);
}

/// With `hello` (amd64) uploaded: publishes at 1000, uploads `tool` (amd64), publishes
/// at 1010, then deletes `deleted` (one of the two). Returns the by-hash copies of the
/// first publication and the deletion's change.
async fn publish_twice_then_delete(
    catalog: &MemoryCatalog,
    store: &MemoryStore,
    supported: &SupportedRepos,
    publisher: &Publisher<'_>,
    deleted: &str,
) -> (std::collections::BTreeSet<String>, u64) {
    let at = |secs| time::OffsetDateTime::from_unix_timestamp(secs).expect("time");
    publisher
        .sync(&repo(), 1, at(1000))
        .await
        .expect("published");
    let first = by_hash_keys(store);
    ingest(catalog, store, "tool", "amd64", b"two")
        .await
        .expect("stored");
    publisher
        .sync(&repo(), 2, at(1010))
        .await
        .expect("published");
    let ingestor = Ingestor {
        catalog,
        store,
        queue: catalog,
        supported,
    };
    let seq = ingestor
        .delete(&repo(), &format!("{deleted}_1.0_amd64.deb"))
        .await
        .expect("deleted")
        .expect("a change");
    (first, seq)
}

#[tokio::test]
async fn an_index_named_again_is_not_pruned_for_its_old_supersession() {
    let fixture = Pruning::new().await;
    let (catalog, store, supported) = (&fixture.catalog, &fixture.store, &fixture.supported);
    let publisher = fixture.publisher();
    // Deleting the second package brings the first publication's indexes back, byte
    // for byte: they are named again at 1020.
    let (first, seq) =
        publish_twice_then_delete(catalog, store, supported, &publisher, "tool").await;
    publisher
        .sync(&repo(), seq, at(1020))
        .await
        .expect("published");
    let state = catalog.repo_state(&repo()).await.expect("state");
    assert_eq!(
        state.referenced,
        first.iter().cloned().collect::<Vec<_>>(),
        "the same indexes again"
    );
    // The old note (superseded at 1010) is gone: long after it, they stay.
    let expired = catalog.superseded(&repo(), 5000).await.expect("notes");
    assert!(
        expired.iter().all(|s| !first.contains(&s.key)),
        "{expired:?}"
    );
    ingest(catalog, store, "hello", "arm64", b"five")
        .await
        .expect("stored");
    let report = publisher
        .sync(&repo(), seq + 1, at(1200))
        .await
        .expect("published");
    assert!(
        report.superseded_pruned > 0,
        "the second publication's copies went"
    );
    assert!(
        first.iter().all(|k| store.object(k).is_some()),
        "named again: kept"
    );
}

#[tokio::test]
async fn every_index_is_written_again_even_if_the_last_publication_named_it() {
    // The state item outlives the metadata: a change of visibility or a deletion of the
    // repository removes the files, and the next publication names the same empty
    // indexes again. Each must be in the bucket afterwards.
    let (catalog, store) = (MemoryCatalog::default(), MemoryStore::default());
    let supported = supported();
    let cache = cairn_core::publish::SnapshotCache::default();
    let publisher = publisher(&catalog, &store, &supported, &cache);
    ingest(&catalog, &store, "hello", "amd64", b"one")
        .await
        .expect("stored");
    publisher
        .sync(&repo(), 1, time::OffsetDateTime::UNIX_EPOCH)
        .await
        .expect("published");
    store
        .objects
        .lock()
        .expect("lock")
        .retain(|k, _| !k.contains("/dists/"));
    ingest(&catalog, &store, "tool", "amd64", b"two")
        .await
        .expect("stored");
    publisher
        .sync(&repo(), 2, time::OffsetDateTime::UNIX_EPOCH)
        .await
        .expect("published");
    let verified = Verifier {
        store: &store,
        keys: &FakeCheck,
    }
    .verify(&repo(), cairn_core::repo::RepoFormat::Deb, &[])
    .await
    .expect("verified");
    assert!(verified.ok(), "{:?}", verified.problems);
}

/// The bucket, but deleting a by-hash copy fails (S3 refusing, say).
struct NoByHashDeletes<'a>(&'a MemoryStore);

#[async_trait::async_trait]
impl RepoStore for NoByHashDeletes<'_> {
    async fn put(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<(), cairn_core::StoreError> {
        self.0.put(key, body, content_type).await
    }
    async fn put_new(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<bool, cairn_core::StoreError> {
        self.0.put_new(key, body, content_type).await
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>, cairn_core::StoreError> {
        self.0.get(key).await
    }
    async fn copy_from_staging(
        &self,
        staging_key: &str,
        etag: &str,
        key: &str,
    ) -> Result<(), cairn_core::StoreError> {
        self.0.copy_from_staging(staging_key, etag, key).await
    }
    async fn copy(&self, from: &str, to: &str) -> Result<(), cairn_core::StoreError> {
        self.0.copy(from, to).await
    }
    async fn delete(&self, key: &str) -> Result<(), cairn_core::StoreError> {
        if key.contains("/by-hash/") {
            return Err(cairn_core::StoreError::new("DeleteObject", "refused"));
        }
        self.0.delete(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<(String, i64)>, cairn_core::StoreError> {
        self.0.list(prefix).await
    }
}

#[tokio::test]
async fn a_failed_pruning_neither_fails_the_sync_nor_keeps_a_deleted_packages_files() {
    let fixture = Pruning::new().await;
    let (catalog, store, supported) = (&fixture.catalog, &fixture.store, &fixture.supported);
    let publisher = fixture.publisher();
    let pool_key = catalog
        .get_package(&repo(), "hello_1.0_amd64.deb")
        .await
        .expect("read")
        .expect("stored")
        .pool_key;
    let (_, seq) = publish_twice_then_delete(catalog, store, supported, &publisher, "hello").await;

    // Past the grace period, with deletes of by-hash copies refused.
    let refusing = NoByHashDeletes(store);
    let report = Publisher {
        store: &refusing,
        ..publisher
    }
    .sync(&repo(), seq, at(1200))
    .await
    .expect("the publication stands");
    assert_eq!(report.removed, ["hello_1.0_amd64.deb"]);
    assert_eq!(report.superseded_pruned, 0);
    assert!(
        store.object(&pool_key).is_none(),
        "the deleted package's file went"
    );
    let waiting = catalog.superseded(&repo(), 1200).await.expect("notes");
    assert!(!waiting.is_empty(), "what was not pruned is still noted");

    // The next publication prunes them.
    ingest(catalog, store, "more", "amd64", b"three")
        .await
        .expect("stored");
    let report = publisher
        .sync(&repo(), seq + 1, at(1300))
        .await
        .expect("published");
    assert!(report.superseded_pruned > 0);
    assert!(
        waiting.iter().all(|s| store.object(&s.key).is_none()),
        "pruned at last"
    );
}
