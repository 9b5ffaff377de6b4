//! The artifact store against the in-memory ports: blobs are stored once per project,
//! a name needs its blob, names and blobs are their project's owner's, and a job
//! reports a workspace only once it is stored.

use cairn_core::access::Role;
use cairn_core::auth::{Authenticator, Principal, UserRecord};
use cairn_core::builds::{
    Artifacts, BuildError, Builds, JobReport, ProjectSpec, Upload, artifacts::MAX_BLOB_BYTES,
};
use cairn_core::memory::MemoryCatalog;
use cairn_core::ports::UserDirectory;
use std::collections::BTreeMap;
use std::sync::Arc;

const PROJECT: &str = "\
pipelines:
  - name: p
    actions:
      - action: shell
        script: make
      - action: shell
        script: make install
";

struct World {
    catalog: Arc<MemoryCatalog>,
    builds: Builds,
    artifacts: Artifacts,
    alice: Principal,
    bob: Principal,
}

async fn world() -> World {
    let catalog = Arc::new(MemoryCatalog::default());
    // Job tokens act for the project's owner, who must be an account.
    catalog
        .put_user(&UserRecord {
            name: "alice".into(),
            password_hash: String::new(),
            role: Role::Uploader,
            tokens_after: 0,
            selectors: Vec::new(),
        })
        .await
        .expect("user");
    let builds = Builds {
        store: catalog.clone(),
        tokens: catalog.clone(),
        logs: catalog.clone(),
        blobs: catalog.clone(),
        ticks: catalog.clone(),
        lease_ms: 60_000,
    };
    let artifacts = Artifacts {
        projects: catalog.clone(),
        index: catalog.clone(),
        blobs: catalog.clone(),
        retention_days: 30,
    };
    let (alice, bob) = (
        Principal::with_role("alice", Role::Uploader),
        Principal::with_role("bob", Role::Uploader),
    );
    for (who, name) in [(&alice, "app"), (&alice, "tools"), (&bob, "bobs")] {
        builds
            .define(who, name, ProjectSpec::from_yaml(PROJECT).expect("valid"))
            .await
            .expect("defined");
    }
    World {
        catalog,
        builds,
        artifacts,
        alice,
        bob,
    }
}

#[tokio::test]
async fn the_same_bytes_are_stored_once_and_a_name_needs_its_blob() {
    let w = world().await;
    let sha = "ab".repeat(32);
    let Upload::Put(url) = w
        .artifacts
        .upload(&w.alice, "app", &sha, 3)
        .await
        .expect("upload")
    else {
        panic!("nothing stored yet");
    };
    assert_eq!(
        (url.method.as_str(), url.url.as_str()),
        ("PUT", &*format!("memory://app/{sha}"))
    );
    assert!(matches!(
        w.artifacts.name(&w.alice, "app", "tree", &sha, None).await,
        Err(BuildError::Invalid(m)) if m.contains("upload it first")
    ));
    let stored = w.catalog.store_blob("app", b"abc");
    assert_eq!(
        w.artifacts
            .upload(&w.alice, "app", &stored, 3)
            .await
            .expect("again"),
        Upload::Stored { size: 3 }
    );
    let named = w
        .artifacts
        .name(&w.alice, "app", "tree", &stored, Some("bld_1".into()))
        .await
        .expect("named");
    assert_eq!((named.size, named.build.as_deref()), (3, Some("bld_1")));
    let (got, download) = w.artifacts.get(&w.alice, "app", "tree").await.expect("get");
    assert_eq!(
        (got.sha256.as_str(), download.method.as_str()),
        (stored.as_str(), "GET")
    );
    // Another project of the same owner has its own blobs.
    assert!(matches!(
        w.artifacts
            .name(&w.alice, "tools", "tree", &stored, None)
            .await,
        Err(BuildError::Invalid(_))
    ));
    // Bad input.
    for (sha, size) in [("abc".to_string(), 1), ("AB".repeat(32), 1)] {
        assert!(matches!(
            w.artifacts.upload(&w.alice, "app", &sha, size).await,
            Err(BuildError::Invalid(_))
        ));
    }
    assert!(matches!(
        w.artifacts
            .upload(&w.alice, "app", &stored, MAX_BLOB_BYTES + 1)
            .await,
        Err(BuildError::TooLarge(_))
    ));
    for bad in ["../x", "a/b", ".hidden", ""] {
        assert!(
            matches!(
                w.artifacts.name(&w.alice, "app", bad, &stored, None).await,
                Err(BuildError::Invalid(_))
            ),
            "{bad:?}"
        );
    }
    // Names go; the listing shows what is left.
    w.artifacts
        .name(&w.alice, "app", "other", &stored, None)
        .await
        .expect("named");
    w.artifacts
        .delete(&w.alice, "app", "tree")
        .await
        .expect("deleted");
    let names: Vec<String> = w
        .artifacts
        .list(&w.alice, "app")
        .await
        .expect("list")
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["other"]);
    assert!(matches!(
        w.artifacts.delete(&w.alice, "app", "tree").await,
        Err(BuildError::NotFound(_))
    ));
}

#[tokio::test]
async fn artifacts_are_their_projects_owners_and_its_jobs_only() {
    let w = world().await;
    let stored = w.catalog.store_blob("app", b"secret tree");
    w.artifacts
        .name(&w.alice, "app", "tree", &stored, None)
        .await
        .expect("named");
    // Another account: as if there were no such project.
    assert!(matches!(
        w.artifacts.get(&w.bob, "app", "tree").await,
        Err(BuildError::NotFound(_))
    ));
    assert!(matches!(
        w.artifacts.upload(&w.bob, "app", &stored, 11).await,
        Err(BuildError::NotFound(_))
    ));
    // A reader's role has no artifacts scope.
    let reader = Principal::with_role("alice", Role::Reader);
    assert!(matches!(
        w.artifacts.list(&reader, "app").await,
        Err(BuildError::Denied(_))
    ));
    // A job of project tools: its token reaches tools' artifacts, not app's.
    w.builds
        .start(&w.alice, "tools", &BTreeMap::new())
        .await
        .expect("started");
    let worker = Principal::with_role("ops", Role::Admin);
    let claimed = w
        .builds
        .claim(&worker, "w1", &[])
        .await
        .expect("claim")
        .expect("a job");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let job = Authenticator::new(w.catalog.as_ref())
        .authenticate(Some(&format!("Bearer {}", claimed.token)), now)
        .await
        .expect("job token");
    assert!(w.artifacts.list(&job, "tools").await.is_ok());
    assert!(matches!(
        w.artifacts.get(&job, "app", "tree").await,
        Err(BuildError::Denied(_))
    ));
    // A workspace is accepted only once it is stored, whole, in the job's project.
    let report = |workspace: Option<(String, u64)>| JobReport {
        exit_code: 0,
        error: None,
        stderr_tail: String::new(),
        outputs: serde_json::Value::Null,
        workspace,
    };
    let build = claimed.build.id.clone();
    for wrong in [
        (stored.clone(), 11), // app's blob, not tools'
        ("cd".repeat(32), 5), // never uploaded
        ("not hex".into(), 5),
    ] {
        assert!(matches!(
            w.builds
                .report(&job, &build, &claimed.job.id, report(Some(wrong)))
                .await,
            Err(BuildError::Invalid(_))
        ));
    }
    let ws = w.catalog.store_blob("tools", b"workspace tarball");
    assert!(
        matches!(
            w.builds
                .report(&job, &build, &claimed.job.id, report(Some((ws.clone(), 3))))
                .await,
            Err(BuildError::Invalid(_))
        ),
        "the size must be the stored one"
    );
    let after = w
        .builds
        .report(
            &job,
            &build,
            &claimed.job.id,
            report(Some((ws.clone(), 17))),
        )
        .await
        .expect("reported");
    let saved = after
        .workspace
        .clone()
        .expect("the workspace is the build's");
    assert_eq!(
        (saved.sha256.as_str(), saved.size, saved.step),
        (ws.as_str(), 17, 0)
    );
    assert!(claimed.build.more_after(0) && !after.more_after(1));
}
