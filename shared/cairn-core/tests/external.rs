//! External Helm repositories over in-memory fakes: checked before anything is
//! stored, credentials kept in the vault only, indexed incrementally, hostile
//! indexes recorded as failed runs that store nothing, apps listed by visibility,
//! query and selector.

use cairn_core::auth::Principal;
use cairn_core::labels::Selector;
use cairn_core::memory::MemoryCatalog;
use cairn_core::memory::external::{MemoryApps, MemorySource, MemoryVault};
use cairn_core::repositories::external::{
    Credentials, Externals, Indexer, RunOutcome, app_versions, due_for_index, list_apps,
};
use cairn_core::repositories::{NewRepository, RepositoryError, RepositoryStore};

mod common;

use common::principal;

const URL: &str = "https://charts.example.org/stable";

fn creds(password: &str) -> Credentials {
    Credentials {
        username: "reader".into(),
        password: password.into(),
    }
}

fn index(versions: &[(&str, &str)]) -> String {
    let mut by_chart: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (chart, version) in versions {
        by_chart.entry(chart).or_default().push(version);
    }
    let mut out = String::from("apiVersion: v1\nentries:\n");
    for (chart, versions) in by_chart {
        out.push_str(&format!("  {chart}:\n"));
        for v in versions {
            out.push_str(&format!(
                "  - name: {chart}\n    version: {v}\n    description: the {chart} chart\n    \
                 urls: [{chart}-{v}.tgz]\n"
            ));
        }
    }
    out
}

struct World {
    store: MemoryCatalog,
    source: MemorySource,
    vault: MemoryVault,
    apps: MemoryApps,
}

impl World {
    fn new() -> Self {
        World {
            store: MemoryCatalog::default(),
            source: MemorySource::default(),
            vault: MemoryVault::default(),
            apps: MemoryApps::default(),
        }
    }
    fn seed(&self) -> cairn_core::SupportedRepos {
        serde_json::from_str(r#"{"kinds":[],"series":[],"dists":{}}"#).expect("seed")
    }
    fn externals(&self) -> Externals<'_> {
        Externals {
            store: &self.store,
            source: &self.source,
            vault: &self.vault,
            apps: &self.apps,
            queue: &self.apps,
        }
    }
    fn indexer(&self) -> Indexer<'_> {
        Indexer {
            store: &self.store,
            source: &self.source,
            vault: &self.vault,
            apps: &self.apps,
            hosted: None,
        }
    }
    async fn create(
        &self,
        who: &Principal,
        body: serde_json::Value,
    ) -> Result<cairn_core::repositories::Repository, RepositoryError> {
        let request: NewRepository = serde_json::from_value(body).expect("request");
        let credentials = request.credentials.clone();
        let repo = request
            .validate(&who.name, 1)
            .map_err(RepositoryError::Invalid)?;
        Ok(self.externals().create(who, repo, credentials).await?.0)
    }
}

#[tokio::test]
async fn creation_checks_the_index_with_the_credentials_and_stores_nothing_on_failure() {
    let w = World::new();
    let alice = principal("alice", &["repositories", "read"], &[]);
    w.source.serve(
        URL,
        &index(&[("nginx", "1.0.0"), ("nginx", "1.1.0"), ("redis", "7.0.0")]),
        Some(creds("right")),
    );
    w.source
        .serve("https://elsewhere.example/x", "<html>not yaml: [", None);
    let body = |url: &str, password: Option<&str>| {
        let mut b = serde_json::json!({"format": "external-helm", "name": "stable", "url": url});
        if let Some(p) = password {
            b["credentials"] = serde_json::json!({"username": "reader", "password": p});
        }
        b
    };
    for (request, words) in [
        (body(URL, Some("wrong")), "refused the credentials"),
        (body(URL, None), "refused the credentials"),
        (body("https://elsewhere.example/x", None), "index.yaml"),
        (body("https://nothing.example", None), "could not be read"),
        (body("http://169.254.169.254/latest", None), "refused"),
        (body("ftp://charts.example.org", None), "http or https"),
        (
            body("https://user:pw@charts.example.org", None),
            "credentials",
        ),
    ] {
        let e = w
            .create(&alice, request.clone())
            .await
            .expect_err("refused");
        assert!(
            matches!(&e, RepositoryError::Invalid(m) if m.contains(words)),
            "{request}: {e:?}"
        );
        assert!(w.store.list_repositories().await.expect("list").is_empty());
        assert!(w.vault.secrets.lock().expect("lock").is_empty());
    }
    // Without the `repositories` scope: 403, before any request goes out.
    let narrow = principal("alice", &["read"], &[]);
    let e = w
        .create(&narrow, body(URL, Some("right")))
        .await
        .expect_err("scope");
    assert!(matches!(e, RepositoryError::Denied(_)), "{e:?}");

    let repo = w
        .create(&alice, body(URL, Some("right")))
        .await
        .expect("created");
    let external = repo.external.clone().expect("external");
    assert_eq!(external.username.as_deref(), Some("reader"));
    let reference = external.credentials.clone().expect("kept");
    // The record holds a reference, never the password.
    let stored = serde_json::to_string(
        &w.store
            .get_repository("external/stable")
            .await
            .expect("get"),
    )
    .expect("json");
    assert!(!stored.contains("right"), "{stored}");
    assert_eq!(
        w.vault.secrets.lock().expect("lock").get(&reference),
        Some(&creds("right"))
    );
    assert_eq!(
        *w.apps.requested.lock().expect("lock"),
        [("external/stable".to_string(), "created".to_string())]
    );
    let e = w
        .create(&alice, body(URL, Some("right")))
        .await
        .expect_err("taken");
    assert!(matches!(e, RepositoryError::Conflict(_)), "{e:?}");
    // Deleting it forgets its credentials.
    w.externals()
        .delete(&alice, "external/stable")
        .await
        .expect("deleted");
    assert!(w.vault.secrets.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn runs_index_incrementally_and_record_failures_without_storing_anything() {
    let w = World::new();
    let alice = principal("alice", &["repositories", "read"], &[]);
    w.source
        .serve(URL, &index(&[("nginx", "1.0.0"), ("redis", "7.0.0")]), None);
    w.create(
        &alice,
        serde_json::json!({"format": "external-helm", "name": "stable", "url": URL}),
    )
    .await
    .expect("created");
    let indexer = w.indexer();
    let run = |t| indexer.run("external/stable", "test", t);
    assert_eq!(run(10).await.expect("run"), RunOutcome::Indexed(2));
    let writes = *w.apps.writes.lock().expect("lock");
    // The same index again: nothing written but the run's record.
    assert_eq!(run(20).await.expect("run"), RunOutcome::Unchanged);
    assert_eq!(*w.apps.writes.lock().expect("lock"), writes);
    // A new version: only it is added, and its app summed up again.
    w.source.serve(
        URL,
        &index(&[("nginx", "1.0.0"), ("nginx", "1.10.0"), ("redis", "7.0.0")]),
        None,
    );
    assert_eq!(run(30).await.expect("run"), RunOutcome::Indexed(1));
    let apps = list_apps(&w.seed(), &w.store, &w.apps, None, None, None)
        .await
        .expect("apps");
    let nginx = apps.iter().find(|a| a.name == "nginx").expect("nginx");
    assert_eq!(
        (nginx.latest_version.as_str(), nginx.versions),
        ("1.10.0", 2)
    );
    // A hostile index: a failed run, recorded with its reason; nothing changes.
    let writes = *w.apps.writes.lock().expect("lock");
    let laughs = format!(
        "apiVersion: v1\na: &a [{}]\nb: &b [{}]\nc: &c [{}]\nd: &d [{}]\ne: &e [{}]\nentries: {{}}\n",
        vec!["x"; 64].join(","),
        vec!["*a"; 64].join(","),
        vec!["*b"; 64].join(","),
        vec!["*c"; 64].join(","),
        vec!["*d"; 64].join(",")
    );
    for hostile in [
        laughs,
        format!("apiVersion: v1\nentries: {}", "[".repeat(500)),
    ] {
        w.source.serve(URL, &hostile, None);
        let outcome = run(40).await.expect("run");
        assert!(matches!(outcome, RunOutcome::Failed(_)), "{outcome:?}");
    }
    assert_eq!(*w.apps.writes.lock().expect("lock"), writes);
    let events = w.apps.events.lock().expect("lock").clone();
    let statuses: Vec<&str> = events
        .iter()
        .map(|e| e.data["status"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        statuses,
        ["indexed", "unchanged", "indexed", "failed", "failed"]
    );
    assert!(events.iter().all(|e| e.kind == "repository.indexed"));
    assert!(
        events[3].data["error"]
            .as_str()
            .unwrap_or_default()
            .contains("nodes")
    );
    // The versions are still those of the last good index.
    let versions = app_versions(&w.seed(), &w.store, &w.apps, None, "nginx")
        .await
        .expect("versions");
    let listed: Vec<&str> = versions.iter().map(|(_, v)| v.version.as_str()).collect();
    assert_eq!(listed, ["1.10.0", "1.0.0"]);
    // Scheduled: due once its interval (60 min default) has passed since the last run.
    assert!(
        due_for_index(&w.store, &w.apps, 41)
            .await
            .expect("due")
            .is_empty()
    );
    assert_eq!(
        due_for_index(&w.store, &w.apps, 40 + 3600)
            .await
            .expect("due"),
        ["external/stable"]
    );
}

#[tokio::test]
async fn apps_are_listed_by_visibility_query_and_selector() {
    let w = World::new();
    let alice = principal("alice", &["repositories", "read"], &[]);
    w.source.serve(URL, &index(&[("nginx", "1.0.0")]), None);
    w.source.serve(
        "https://private.example",
        &index(&[("secret-db", "1.0.0"), ("nginx", "2.0.0")]),
        None,
    );
    w.create(
        &alice,
        serde_json::json!({"format": "external-helm", "name": "pub", "url": URL,
                           "labels": {"team": "web"}}),
    )
    .await
    .expect("created");
    w.create(
        &alice,
        serde_json::json!({"format": "external-helm", "name": "priv",
                           "url": "https://private.example", "visibility": "private",
                           "labels": {"team": "db"}}),
    )
    .await
    .expect("created");
    for path in ["external/pub", "external/priv"] {
        w.indexer().run(path, "test", 1).await.expect("run");
    }
    let names = |apps: Vec<cairn_core::repositories::external::AppSummary>| {
        apps.into_iter()
            .map(|a| format!("{}@{}", a.name, a.repository))
            .collect::<Vec<_>>()
    };
    let anonymous = list_apps(&w.seed(), &w.store, &w.apps, None, None, None)
        .await
        .expect("apps");
    assert_eq!(names(anonymous), ["nginx@external/pub"]);
    let dba = principal("dba", &["read"], &["team=db"]);
    let all = list_apps(&w.seed(), &w.store, &w.apps, Some(&dba), None, None)
        .await
        .expect("apps");
    assert_eq!(
        names(all),
        [
            "nginx@external/priv",
            "nginx@external/pub",
            "secret-db@external/priv"
        ]
    );
    let db = Selector::parse("team=db").expect("selector");
    let selected = list_apps(
        &w.seed(),
        &w.store,
        &w.apps,
        Some(&dba),
        Some("NGINX"),
        Some(&db),
    )
    .await
    .expect("apps");
    assert_eq!(names(selected), ["nginx@external/priv"]);
    // Versions of an app, from the repositories the caller reads only.
    let versions = app_versions(&w.seed(), &w.store, &w.apps, None, "nginx")
        .await
        .expect("v");
    assert_eq!(versions.len(), 1);
    let versions = app_versions(&w.seed(), &w.store, &w.apps, Some(&dba), "nginx")
        .await
        .expect("v");
    assert_eq!(versions.len(), 2);
}

#[tokio::test]
async fn cairns_own_helm_repositories_are_indexed_from_the_bucket() {
    use cairn_core::memory::MemoryStore;
    use cairn_core::ports::RepoStore;
    use cairn_core::repositories::external::Hosted;
    let w = World::new();
    let files = MemoryStore::default();
    let seed: cairn_core::SupportedRepos = serde_json::from_str(
        r#"{"kinds":["release"],"series":["1"],"dists":{"helm":{"format":"helm","versions":["stable"]}}}"#,
    )
    .expect("seed");
    let alice = principal("alice", &["repositories", "read"], &[]);
    // A private created Helm repository: its index is under its private prefix.
    let new: NewRepository = serde_json::from_value(serde_json::json!(
        {"format": "helm", "path": "team/db/helm/stable", "visibility": "private"}
    ))
    .expect("request");
    let private = new.validate("alice", 1).expect("valid");
    assert!(w.store.create_repository(&private).await.expect("store"));
    let put = |key: String, body: String| {
        let files = &files;
        async move {
            files
                .put(&key, bytes::Bytes::from(body), "application/yaml")
                .await
                .expect("put");
        }
    };
    put(
        "release/1/helm/stable/index.yaml".into(),
        index(&[("cairn-chart", "0.1.0")]),
    )
    .await;
    put(
        format!("private/{}/team/db/helm/stable/index.yaml", private.storage),
        index(&[("db-chart", "2.0.0")]),
    )
    .await;
    let indexer = Indexer {
        store: &w.store,
        source: &w.source,
        vault: &w.vault,
        apps: &w.apps,
        hosted: Some(Hosted {
            seed: &seed,
            files: &files,
        }),
    };
    for path in ["release/1/helm/stable", "team/db/helm/stable"] {
        assert_eq!(
            indexer.run(path, "published", 1).await.expect("run"),
            RunOutcome::Indexed(1),
            "{path}"
        );
    }
    // Not a Helm repository, or not one at all: nothing to do.
    assert_eq!(
        indexer
            .run("release/1/el/9", "published", 1)
            .await
            .expect("run"),
        RunOutcome::Skipped
    );
    let names = |apps: Vec<cairn_core::repositories::external::AppSummary>| {
        apps.into_iter().map(|a| a.name).collect::<Vec<_>>()
    };
    let anonymous = list_apps(&seed, &w.store, &w.apps, None, None, None)
        .await
        .expect("apps");
    assert_eq!(names(anonymous), ["cairn-chart"]);
    let owner = list_apps(&seed, &w.store, &w.apps, Some(&alice), None, None)
        .await
        .expect("apps");
    assert_eq!(names(owner), ["cairn-chart", "db-chart"]);
    // Deleted and created again at the same path: the old index is not the new one's.
    assert!(w.store.delete_repository(&private).await.expect("delete"));
    let again: NewRepository = serde_json::from_value(serde_json::json!(
        {"format": "helm", "path": "team/db/helm/stable", "visibility": "private"}
    ))
    .expect("request");
    let again = again.validate("alice", 2).expect("valid");
    assert!(w.store.create_repository(&again).await.expect("store"));
    let owner = list_apps(&seed, &w.store, &w.apps, Some(&alice), None, None)
        .await
        .expect("apps");
    assert_eq!(names(owner), ["cairn-chart"]);
}

#[tokio::test]
async fn a_repository_that_never_ran_is_due_an_interval_after_its_creation() {
    // Creation queues the first run itself; a scheduled tick before that run
    // finishes must not queue a second one (seen on the stack as an extra
    // `unchanged` run between two runs a client asked for).
    let w = World::new();
    let alice = principal("alice", &["repositories", "read"], &[]);
    w.source.serve(URL, &index(&[("nginx", "1.0.0")]), None);
    let created = w
        .create(
            &alice,
            serde_json::json!({"format": "external-helm", "name": "stable", "url": URL}),
        )
        .await
        .expect("created");
    let hour = 3600;
    for now in [created.created_at, created.created_at + hour - 1] {
        let due = due_for_index(&w.store, &w.apps, now).await.expect("due");
        assert!(due.is_empty(), "due at {now}: {due:?}");
    }
    assert_eq!(
        due_for_index(&w.store, &w.apps, created.created_at + hour)
            .await
            .expect("due"),
        ["external/stable"]
    );
}
