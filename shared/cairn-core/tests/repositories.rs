//! Repositories as resources against the in-memory ports: create, list with
//! selectors, update, and deletion through a publication.

use bytes::Bytes;
use cairn_core::ingest::{Ingestor, PackageSource, build_record, inspect_package};
use cairn_core::labels::Selector;
use cairn_core::memory::{MemoryCatalog, MemoryStore};
use cairn_core::ports::{Catalog, PrefixedStore};
use cairn_core::publish::{Publisher, SnapshotCache};
use cairn_core::repositories::{
    Deletion, Intent, Manager, NewRepository, RepositoryError, RepositoryState, RepositoryStore,
    RepositoryUpdate, Visibility, finish_deletion, open,
};
use cairn_core::{RepoPath, SupportedRepos};

mod common;

use common::{FakeSigner, chart, principal};

fn seed() -> SupportedRepos {
    serde_json::from_str(
        r#"{"kinds":["release"],"series":["1"],"anchors":{"enabled":["1"]},
            "dists":{"helm":{"format":"helm","versions":["stable"]}}}"#,
    )
    .expect("valid")
}

fn new(body: serde_json::Value) -> NewRepository {
    serde_json::from_value(body).expect("request")
}

struct World {
    catalog: MemoryCatalog,
    files: MemoryStore,
    seed: SupportedRepos,
}

impl World {
    fn new() -> Self {
        World {
            catalog: MemoryCatalog::default(),
            files: MemoryStore::default(),
            seed: seed(),
        }
    }

    fn manager(&self) -> Manager<'_> {
        Manager {
            store: &self.catalog,
            catalog: &self.catalog,
            files: &self.files,
            queue: &self.catalog,
            seed: &self.seed,
        }
    }

    async fn upload_chart(&self, path: &RepoPath, name: &str) {
        let supported = open(&self.seed, &self.catalog, None, Intent::Publish, path)
            .await
            .expect("exists");
        let files = PrefixedStore::new(&self.files, supported.storage_prefix(path));
        let ingestor = Ingestor {
            catalog: &self.catalog,
            store: &files,
            queue: &self.catalog,
            supported: &supported,
        };
        let filename = format!("{name}-0.1.0.tgz");
        let bytes = chart(name, "0.1.0");
        let dist = supported.check(path).expect("created");
        let inspected = inspect_package(dist.format, &filename, &bytes[..]).expect("chart");
        let record =
            build_record(path, dist, &filename, None, &inspected, "alice", 1).expect("record");
        ingestor
            .store(record, PackageSource::Bytes(Bytes::from(bytes)), Vec::new())
            .await
            .expect("stored");
        ingestor
            .announce(path, &[filename])
            .await
            .expect("announced");
    }

    /// What metadata-sync does for one message: publish, then finish a deletion.
    async fn publish(&self, path: &RepoPath) {
        let supported = open(&self.seed, &self.catalog, None, Intent::Publish, path)
            .await
            .expect("exists");
        let cache = SnapshotCache::default();
        let files = PrefixedStore::new(&self.files, supported.storage_prefix(path));
        let publisher = Publisher {
            catalog: &self.catalog,
            store: &files,
            signer: &FakeSigner,
            supported: &supported,
            origin: "Cairn",
            base_url: "https://repo.example",
            api_url: None,
            cache: &cache,
            superseded_grace_secs: 3600,
        };
        let seq = self
            .catalog
            .repo_state(path)
            .await
            .expect("state")
            .change_seq;
        publisher
            .sync(path, seq, time::OffsetDateTime::now_utc())
            .await
            .expect("published");
        finish_deletion(&self.catalog, &self.catalog, &self.files, path)
            .await
            .expect("finish");
    }
}

#[tokio::test]
async fn create_checks_scope_place_and_name() {
    let w = World::new();
    let m = w.manager();
    let alice = principal("alice", &["repositories:team/*", "read"], &[]);
    let (repo, seq) = m
        .create(
            &alice,
            new(serde_json::json!({"format": "helm", "path": "team/db/helm/stable"})),
            10,
        )
        .await
        .expect("created");
    assert_eq!(repo.owners, ["alice"]);
    assert!(seq.is_some(), "the first, empty publication is queued");

    for (body, who, expected) in [
        // Outside the scope's pattern.
        (
            serde_json::json!({"format": "helm", "path": "other/db/helm/stable"}),
            &alice,
            "repositories:other/db/helm/stable",
        ),
        // Taken.
        (
            serde_json::json!({"format": "apt", "path": "team/db/helm/stable"}),
            &alice,
            "already exists",
        ),
        // Configured already.
        (
            serde_json::json!({"format": "helm", "path": "release/1/helm/stable"}),
            &principal("root", &["admin"], &[]),
            "configured by the deployment",
        ),
        // An anchor's name in the series position would fan uploads out.
        (
            serde_json::json!({"format": "helm", "path": "team/enabled/helm/x"}),
            &alice,
            "anchor",
        ),
    ] {
        let e = m
            .create(who, new(body.clone()), 10)
            .await
            .expect_err(&body.to_string());
        assert!(e.to_string().contains(expected), "{body}: {e}");
    }
    assert_eq!(w.catalog.list_repositories().await.expect("list").len(), 1);
}

#[tokio::test]
async fn selectors_decide_who_lists_which_private_repository() {
    let w = World::new();
    let m = w.manager();
    let root = principal("root", &["admin"], &[]);
    for (path, visibility, team) in [
        ("team/db/helm/stable", "private", "db"),
        ("team/web/helm/stable", "private", "web"),
        ("team/all/helm/stable", "public", "all"),
    ] {
        m.create(
            &root,
            new(
                serde_json::json!({"format": "helm", "path": path, "visibility": visibility,
                                   "labels": {"team": team, "env": "prod"}}),
            ),
            1,
        )
        .await
        .expect("created");
    }
    let created = |listed: Vec<cairn_core::repositories::Listed>| -> Vec<String> {
        listed
            .into_iter()
            .filter(|l| !l.configured)
            .map(|l| l.repository.path)
            .collect()
    };
    let db = principal("dba", &["read"], &["team=db"]);
    let web = principal("webdev", &["read"], &["team in (web),env=prod"]);
    assert_eq!(
        created(m.list(Some(&db), None).await.expect("list")),
        ["team/all/helm/stable", "team/db/helm/stable"]
    );
    assert_eq!(
        created(m.list(Some(&web), None).await.expect("list")),
        ["team/all/helm/stable", "team/web/helm/stable"]
    );
    assert_eq!(
        created(m.list(None, None).await.expect("list")),
        ["team/all/helm/stable"]
    );
    let prod_not_all = Selector::parse("env=prod,team notin (all)").expect("selector");
    assert_eq!(
        created(
            m.list(Some(&root), Some(&prod_not_all))
                .await
                .expect("list")
        ),
        ["team/db/helm/stable", "team/web/helm/stable"]
    );
    // The configured repositories are listed too (no labels: a selector requiring
    // one leaves them out).
    let all = m.list(None, None).await.expect("list");
    assert!(
        all.iter()
            .any(|l| l.configured && l.repository.path == "release/1/helm/stable")
    );
    assert!(
        m.list(None, Some(&prod_not_all))
            .await
            .expect("list")
            .iter()
            .all(|l| !l.configured)
    );
    // A private repository is absent to those who do not see it, not forbidden.
    let e = m
        .get(Some(&web), "team/db/helm/stable")
        .await
        .expect_err("hidden");
    assert!(matches!(e, RepositoryError::NotFound(_)), "{e:?}");
    assert!(m.get(Some(&db), "team/db/helm/stable").await.is_ok());
}

#[tokio::test]
async fn owners_update_others_are_refused() {
    let w = World::new();
    let m = w.manager();
    let alice = principal("alice", &["repositories", "read"], &[]);
    let bob = principal("bob", &["repositories", "read"], &["team=db"]);
    m.create(
        &alice,
        new(
            serde_json::json!({"format": "helm", "path": "team/db/helm/stable",
                               "visibility": "private", "labels": {"team": "db"}}),
        ),
        1,
    )
    .await
    .expect("created");
    let share = RepositoryUpdate {
        owners: Some(vec!["alice".into(), "bob".into()]),
        ..Default::default()
    };
    let e = m
        .update(&bob, "team/db/helm/stable", &share)
        .await
        .expect_err("bob sees, does not own");
    assert!(matches!(e, RepositoryError::Forbidden(_)), "{e:?}");
    let updated = m
        .update(&alice, "team/db/helm/stable", &share)
        .await
        .expect("owner");
    assert_eq!((updated.owners.len(), updated.version), (2, 2));
    let nobody = RepositoryUpdate {
        owners: Some(vec![]),
        ..Default::default()
    };
    let e = m
        .update(&bob, "team/db/helm/stable", &nobody)
        .await
        .expect_err("empty");
    assert!(e.to_string().contains("at least one owner"), "{e}");
    let bad = RepositoryUpdate {
        labels: Some([("bad key".to_string(), "x".to_string())].into()),
        ..Default::default()
    };
    assert!(matches!(
        m.update(&bob, "team/db/helm/stable", &bad).await,
        Err(RepositoryError::Invalid(_))
    ));
    let e = m
        .update(&alice, "release/1/helm/stable", &share)
        .await
        .expect_err("configured");
    assert!(matches!(e, RepositoryError::Conflict(_)), "{e:?}");
}

#[tokio::test]
async fn deleting_a_repository_with_packages_needs_force_and_takes_its_files() {
    let w = World::new();
    let m = w.manager();
    let alice = principal("alice", &["repositories", "upload", "read"], &[]);
    let path = RepoPath::parse("team/db/helm/stable").expect("valid");
    m.create(
        &alice,
        new(serde_json::json!({"format": "helm", "path": path.to_string()})),
        1,
    )
    .await
    .expect("created");
    w.upload_chart(&path, "demo").await;
    w.publish(&path).await;
    let chart_key = "team/db/helm/stable/demo-0.1.0.tgz";
    assert!(w.files.object(chart_key).is_some());
    assert!(w.files.object("team/db/helm/stable/index.yaml").is_some());

    let e = m
        .delete(&alice, &path.to_string(), false)
        .await
        .expect_err("packages");
    assert!(e.to_string().contains("force"), "{e}");
    let stranger = principal("bob", &["repositories", "read"], &[]);
    let e = m
        .delete(&stranger, &path.to_string(), true)
        .await
        .expect_err("not an owner");
    assert!(matches!(e, RepositoryError::Forbidden(_)), "{e:?}");

    assert_eq!(
        m.delete(&alice, &path.to_string(), true)
            .await
            .expect("forced"),
        Deletion::Deleting(1)
    );
    let record = w
        .catalog
        .get_repository(&path.to_string())
        .await
        .expect("get");
    assert_eq!(
        record.expect("still there").state,
        RepositoryState::Deleting
    );
    // The publication drops the chart and its file, then the repository goes.
    w.publish(&path).await;
    assert!(w.files.object(chart_key).is_none(), "the chart's file went");
    assert!(w.files.object("team/db/helm/stable/index.yaml").is_none());
    assert!(
        w.catalog
            .get_repository(&path.to_string())
            .await
            .expect("get")
            .is_none()
    );
    let e = m
        .get(Some(&alice), &path.to_string())
        .await
        .expect_err("gone");
    assert!(matches!(e, RepositoryError::NotFound(_)));

    // An empty repository goes at once; its path can be created again.
    m.create(
        &alice,
        new(serde_json::json!({"format": "helm", "path": path.to_string()})),
        2,
    )
    .await
    .expect("created again");
    assert_eq!(
        m.delete(&alice, &path.to_string(), false)
            .await
            .expect("empty"),
        Deletion::Deleted
    );
}

#[tokio::test]
async fn one_folder_one_layout_and_no_reserved_names() {
    let w = World::new();
    let m = w.manager();
    let root = principal("root", &["admin"], &[]);
    m.create(
        &root,
        new(serde_json::json!({"format": "apt", "path": "team/a/debian/bookworm"})),
        1,
    )
    .await
    .expect("created");
    for (body, words) in [
        // Its files would be an APT root's pool or dists.
        (
            serde_json::json!({"format": "helm", "path": "team/a/debian/pool"}),
            "cannot be",
        ),
        (
            serde_json::json!({"format": "apt", "path": "team/b/debian/dists"}),
            "cannot be",
        ),
        // A YUM or Helm repository beside APT suites, created or configured.
        (
            serde_json::json!({"format": "helm", "path": "team/a/debian/stable"}),
            "cannot share",
        ),
        (
            serde_json::json!({"format": "apt", "path": "release/1/helm/bookworm"}),
            "cannot share",
        ),
        // Where private repositories' files are.
        (
            serde_json::json!({"format": "helm", "path": "private/x/helm/stable"}),
            "private",
        ),
    ] {
        let e = m
            .create(&root, new(body.clone()), 1)
            .await
            .expect_err(&body.to_string());
        assert!(e.to_string().contains(words), "{body}: {e}");
    }
    // Another APT suite beside it is fine.
    let ok = m
        .create(
            &root,
            new(serde_json::json!({"format": "apt", "path": "team/a/debian/trixie"})),
            1,
        )
        .await;
    assert!(ok.is_ok(), "{ok:?}");
}

#[tokio::test]
async fn private_files_live_apart_and_leftovers_do_not_join_a_new_repository() {
    let w = World::new();
    let m = w.manager();
    let alice = principal("alice", &["repositories", "upload", "read"], &[]);
    let path = RepoPath::parse("team/db/helm/stable").expect("valid");
    let (repo, _) = m
        .create(
            &alice,
            new(serde_json::json!({"format": "helm", "path": path.to_string(), "visibility": "private"})),
            1,
        )
        .await
        .expect("created");
    w.upload_chart(&path, "secret").await;
    w.publish(&path).await;
    let hidden = format!("private/{}/team/db/helm/stable", repo.storage);
    assert!(
        w.files
            .object(&format!("{hidden}/secret-0.1.0.tgz"))
            .is_some()
    );
    assert!(w.files.object(&format!("{hidden}/index.yaml")).is_some());
    assert!(
        w.files
            .object("team/db/helm/stable/secret-0.1.0.tgz")
            .is_none(),
        "not public"
    );
    assert!(
        w.files.object("team/db/helm/stable/index.yaml").is_none(),
        "not public"
    );
    // Its visibility changes only while it is empty.
    let public = RepositoryUpdate {
        visibility: Some(Visibility::Public),
        ..Default::default()
    };
    let e = m
        .update(&alice, &path.to_string(), &public)
        .await
        .expect_err("has packages");
    assert!(e.to_string().contains("empty"), "{e}");

    // An upload that raced the deletion of the record leaves a package behind: the
    // next repository at that path does not inherit it.
    let record = w
        .catalog
        .get_repository(&path.to_string())
        .await
        .expect("get")
        .expect("there");
    assert!(w.catalog.delete_repository(&record).await.expect("delete"));
    let bob = principal("bob", &["repositories", "read"], &[]);
    m.create(
        &bob,
        new(serde_json::json!({"format": "helm", "path": path.to_string()})),
        2,
    )
    .await
    .expect("created again");
    w.publish(&path).await;
    let left: Vec<_> = w.catalog.list_packages(&path).await.expect("list");
    assert!(left.is_empty(), "{left:?}");
    let index = w
        .files
        .object("team/db/helm/stable/index.yaml")
        .expect("published");
    assert!(
        !String::from_utf8_lossy(&index).contains("secret"),
        "{index:?}"
    );
}

#[tokio::test]
async fn private_records_are_shown_to_credentials_that_may_read_or_manage_them() {
    let w = World::new();
    let m = w.manager();
    let root = principal("root", &["admin"], &[]);
    m.create(
        &root,
        new(
            serde_json::json!({"format": "helm", "path": "team/db/helm/stable",
                               "visibility": "private", "labels": {"team": "db"}}),
        ),
        1,
    )
    .await
    .expect("created");
    let reads = principal("dba", &["read:team/*"], &["team=db"]);
    let uploads_only = principal("dba", &["upload"], &["team=db"]);
    assert!(m.get(Some(&reads), "team/db/helm/stable").await.is_ok());
    let e = m
        .get(Some(&uploads_only), "team/db/helm/stable")
        .await
        .expect_err("no read");
    assert!(matches!(e, RepositoryError::NotFound(_)), "{e:?}");
    let listed = m.list(Some(&uploads_only), None).await.expect("list");
    assert!(
        listed
            .iter()
            .all(|l| l.repository.path != "team/db/helm/stable")
    );
}

#[tokio::test]
async fn an_anchor_reaches_configured_repositories_only() {
    let w = World::new();
    let m = w.manager();
    let root = principal("root", &["admin"], &[]);
    m.create(
        &root,
        new(serde_json::json!({"format": "helm", "path": "release/1/helm/edge", "visibility": "private"})),
        1,
    )
    .await
    .expect("created");
    let through_anchor = RepoPath::parse("release/enabled/helm/edge").expect("valid");
    let e = open(
        &w.seed,
        &w.catalog,
        Some(&root),
        Intent::Write(cairn_core::access::Action::Upload),
        &through_anchor,
    )
    .await
    .expect_err("anchor to a created repository");
    assert!(e.to_string().contains("anchor"), "{e}");
    let direct = RepoPath::parse("release/1/helm/edge").expect("valid");
    let ok = open(
        &w.seed,
        &w.catalog,
        Some(&root),
        Intent::Write(cairn_core::access::Action::Upload),
        &direct,
    )
    .await;
    assert!(ok.is_ok(), "{ok:?}");
}

#[tokio::test]
async fn a_repositorys_history_starts_when_it_was_made_or_changed_visibility() {
    use cairn_core::events::{Event, NewEvent};
    use cairn_core::repositories::readable_events;
    let w = World::new();
    let m = w.manager();
    let alice = principal("alice", &["repositories", "read"], &[]);
    let path = RepoPath::parse("team/db/helm/stable").expect("valid");
    let at = |secs: i64, n: u64| {
        let mut e = Event::committed(
            &NewEvent::package_deleted(&path, "old-0.1.0.tgz", "requested"),
            n,
        );
        e.timestamp = time::OffsetDateTime::from_unix_timestamp(secs)
            .expect("time")
            .format(&time::format_description::well_known::Rfc3339)
            .expect("format");
        e
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    m.create(
        &alice,
        new(serde_json::json!({"format": "helm", "path": path.to_string()})),
        now,
    )
    .await
    .expect("created");
    // An earlier repository's event at this path, and this one's.
    let events = vec![at(now - 3600, 1), at(now + 1, 2)];
    let shown = readable_events(&w.seed, &w.catalog, None, events.clone())
        .await
        .expect("read");
    assert_eq!(shown.iter().map(|e| e.seq).collect::<Vec<_>>(), [2]);
    let audience = cairn_core::repositories::Audience::new(&w.seed, &w.catalog, &w.catalog);
    assert!(
        !audience
            .may_read("bob", None, &events[0])
            .await
            .expect("read")
    );
    assert!(
        audience
            .may_read("bob", None, &events[1])
            .await
            .expect("read")
    );
}

#[tokio::test]
async fn archive_repositories_are_named_claim_unused_names_and_stay_while_they_hold_archives() {
    use cairn_core::repositories::{Format, open_archive};
    let w = World::new();
    let m = w.manager();
    let alice = principal("alice", &["repositories", "archive", "read"], &[]);
    let body = |name: &str, vis: &str| {
        new(
            serde_json::json!({"format": "archive", "name": name, "visibility": vis,
                               "labels": {"team": "db"}}),
        )
    };
    let (repo, seq) = m
        .create(&alice, body("secret", "private"), 1)
        .await
        .expect("created");
    assert_eq!(
        (repo.path.as_str(), repo.format, seq),
        ("archive/secret", Format::Archive, None)
    );
    assert_eq!(repo.archive_name(), Some("secret"));
    // Its path works as well as its name; other shapes are refused.
    let e = m
        .create(
            &alice,
            new(serde_json::json!({"format": "archive", "path": "archive/secret"})),
            1,
        )
        .await
        .expect_err("taken");
    assert!(matches!(e, RepositoryError::Conflict(_)), "{e:?}");
    for bad in [
        serde_json::json!({"format": "archive", "name": "x.git"}),
        serde_json::json!({"format": "archive", "name": "../x"}),
        serde_json::json!({"format": "archive", "path": "a/b/c/d"}),
        serde_json::json!({"format": "archive", "name": "x", "architectures": ["amd64"]}),
        serde_json::json!({"format": "apt", "path": "a/b/c/d", "name": "x"}),
    ] {
        let e = m
            .create(&alice, new(bad.clone()), 1)
            .await
            .expect_err("bad");
        assert!(matches!(e, RepositoryError::Invalid(_)), "{bad}: {e:?}");
    }
    // A name that holds (public) archives already cannot be claimed.
    w.catalog.mark_archive_in_use("tarantool");
    let e = m
        .create(&alice, body("tarantool", "private"), 1)
        .await
        .expect_err("in use");
    assert!(
        matches!(&e, RepositoryError::Conflict(m) if m.contains("immutable")),
        "{e:?}"
    );
    // Package repositories keep off the archives' first segments.
    for kind in ["git", "trees", "tarballs", "archive"] {
        let e = m
            .create(
                &alice,
                new(serde_json::json!({"format": "helm", "path": format!("{kind}/a/b/c")})),
                1,
            )
            .await
            .expect_err("reserved");
        assert!(matches!(e, RepositoryError::Invalid(_)), "{kind}: {e:?}");
    }
    // Who archives under it and who reads it.
    let write = Intent::Write(cairn_core::access::Action::Archive);
    let dba = principal("dba", &["archive", "read"], &["team=db"]);
    let eve = principal("eve", &["archive", "read"], &[]);
    let narrow = principal("alice", &["archive:other"], &[]);
    assert!(
        open_archive(&w.catalog, &alice, write, "secret")
            .await
            .expect("owner")
            .is_some()
    );
    let e = open_archive(&w.catalog, &dba, write, "secret")
        .await
        .expect_err("sees it, owns it not");
    assert!(matches!(e, RepositoryError::Forbidden(_)), "{e:?}");
    assert!(
        open_archive(&w.catalog, &dba, Intent::Read, "secret")
            .await
            .is_ok()
    );
    let e = open_archive(&w.catalog, &eve, Intent::Read, "secret")
        .await
        .expect_err("stranger");
    assert!(matches!(e, RepositoryError::NotFound(_)), "{e:?}");
    let e = open_archive(&w.catalog, &narrow, write, "secret")
        .await
        .expect_err("scope");
    assert!(matches!(e, RepositoryError::Denied(_)), "{e:?}");
    assert!(
        open_archive(&w.catalog, &eve, write, "unclaimed")
            .await
            .expect("public name")
            .is_none()
    );
    // Empty: visibility may change, and it may go. Holding archives: neither.
    let public = RepositoryUpdate {
        visibility: Some(Visibility::Public),
        ..Default::default()
    };
    w.catalog.mark_archive_in_use("secret");
    let e = m
        .update(&alice, "archive/secret", &public)
        .await
        .expect_err("holds archives");
    assert!(matches!(e, RepositoryError::Conflict(_)), "{e:?}");
    let e = m
        .delete(&alice, "archive/secret", true)
        .await
        .expect_err("immutable");
    assert!(
        matches!(&e, RepositoryError::Conflict(m) if m.contains("immutable")),
        "{e:?}"
    );
    m.create(&alice, body("empty", "private"), 1)
        .await
        .expect("created");
    // Even empty, it keeps its visibility (an operation in flight writes where the
    // name's files were when it started); its other fields change.
    let e = m
        .update(&alice, "archive/empty", &public)
        .await
        .expect_err("fixed visibility");
    assert!(
        matches!(&e, RepositoryError::Conflict(m) if m.contains("keeps the visibility")),
        "{e:?}"
    );
    let described = RepositoryUpdate {
        description: Some("sources".into()),
        ..Default::default()
    };
    let changed = m
        .update(&alice, "archive/empty", &described)
        .await
        .expect("described");
    assert_eq!(changed.description, "sources");
    assert_eq!(
        m.delete(&alice, "archive/empty", false)
            .await
            .expect("deleted"),
        Deletion::Deleted
    );
    assert!(m.get(Some(&alice), "archive/empty").await.is_err());
    // Listed with the others, to those who see it.
    let listed = m.list(Some(&dba), None).await.expect("list");
    assert!(listed.iter().any(|l| l.repository.path == "archive/secret"));
    let listed = m.list(Some(&eve), None).await.expect("list");
    assert!(!listed.iter().any(|l| l.repository.path == "archive/secret"));
}

#[tokio::test]
async fn archive_writers_racing_a_claim_or_a_deletion_keep_the_name_public_or_claimed() {
    let w = World::new();
    let m = w.manager();
    let alice = principal("alice", &["repositories", "archive", "read"], &[]);
    let body = |name: &str| {
        new(serde_json::json!({"format": "archive", "name": name, "visibility": "private"}))
    };
    // A public operation's first write lands between the first check and the claim:
    // the claim is undone and nothing of the repository stays.
    w.catalog.race_archive_writer("raced");
    let e = m
        .create(&alice, body("raced"), 1)
        .await
        .expect_err("in use");
    assert!(
        matches!(&e, RepositoryError::Conflict(m) if m.contains("holds archives")),
        "{e:?}"
    );
    assert!(m.get(Some(&alice), "archive/raced").await.is_err());
    // A repository's operation writes as its deletion closes the name: it stays,
    // open again.
    m.create(&alice, body("kept"), 1).await.expect("created");
    w.catalog.race_archive_writer("kept");
    let e = m
        .delete(&alice, "archive/kept", false)
        .await
        .expect_err("not empty any more");
    assert!(
        matches!(&e, RepositoryError::Conflict(m) if m.contains("immutable")),
        "{e:?}"
    );
    assert!(m.get(Some(&alice), "archive/kept").await.is_ok());
    assert!(!w.catalog.archive_closed("kept"));
}

#[tokio::test]
async fn a_private_archives_events_reach_its_readers_only() {
    use cairn_core::events::{Event, NewEvent, Subject};
    use cairn_core::repositories::readable_events;
    let w = World::new();
    let alice = principal("alice", &["repositories", "archive", "read"], &[]);
    w.manager()
        .create(
            &alice,
            new(serde_json::json!({"format": "archive", "name": "secret",
                                   "visibility": "private"})),
            1,
        )
        .await
        .expect("created");
    let events: Vec<Event> = [
        NewEvent::new(
            "archive.created",
            Subject::archive("secret"),
            serde_json::json!({}),
        ),
        NewEvent::new(
            "operation.finished",
            Subject::operation("op-1"),
            serde_json::json!({"name": "secret", "kind": "archive"}),
        ),
        NewEvent::new(
            "archive.created",
            Subject::archive("open"),
            serde_json::json!({}),
        ),
    ]
    .iter()
    .enumerate()
    .map(|(i, e)| Event::committed(e, i as u64 + 1))
    .collect();
    let seqs = |v: Vec<Event>| v.iter().map(|e| e.seq).collect::<Vec<_>>();
    let eve = principal("eve", &["read", "events"], &[]);
    let shown = readable_events(&w.seed, &w.catalog, Some(&eve), events.clone())
        .await
        .expect("read");
    assert_eq!(seqs(shown), [3]);
    let shown = readable_events(&w.seed, &w.catalog, Some(&alice), events.clone())
        .await
        .expect("read");
    assert_eq!(seqs(shown), [1, 2, 3]);
    let audience = cairn_core::repositories::Audience::new(&w.seed, &w.catalog, &w.catalog);
    assert!(
        !audience
            .may_read("eve", None, &events[1])
            .await
            .expect("read")
    );
    assert!(
        audience
            .may_read("eve", None, &events[2])
            .await
            .expect("read")
    );
}
