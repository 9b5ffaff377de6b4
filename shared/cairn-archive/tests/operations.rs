//! The life of an operation over in-memory fakes: submit, run, cancel, show.
#![allow(clippy::unwrap_used, missing_docs)]

use cairn_archive::memory::{MemoryArchives, MemoryOperations};
use cairn_archive::model::{OperationKind, OperationStatus, OperationStore};
use cairn_archive::origin::FetchLimits;
use cairn_archive::tree::TreeLimits;
use cairn_archive::{ArchiveError, Archiver, Operations, Settings};
use cairn_callback::{AddressPolicy, Callback, Method};
use cairn_core::memory::MemoryStore;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

fn setup() -> (Operations, Arc<MemoryOperations>, Archiver) {
    let ops = Arc::new(MemoryOperations::default());
    let operations = Operations {
        store: ops.clone(),
        queue: ops.clone(),
        callbacks: ops.clone(),
    };
    let archiver = Archiver {
        catalog: Arc::new(MemoryArchives::default()),
        files: Arc::new(MemoryStore::default()),
        workspaces: None,
        settings: Settings {
            policy: AddressPolicy::default(),
            fetch: FetchLimits {
                max_bytes: 1 << 20,
                timeout: Duration::from_secs(5),
            },
            tree: TreeLimits {
                max_objects: 10,
                max_bytes: 1 << 20,
            },
            scratch: std::env::temp_dir(),
            archive_base_url: "http://archive.test".into(),
        },
    };
    (operations, ops, archiver)
}

fn callback() -> Option<Callback> {
    Some(Callback::new("https://ci.example.org/hook", Method::Put).unwrap())
}

#[tokio::test]
async fn a_refused_request_fails_with_its_status_and_queues_the_callback() {
    let (operations, ops, archiver) = setup();
    let request = json!({"name": "demo", "url": "file:///etc", "ref": "main",
                         "callback": {"url": "https://ci.example.org/hook", "method": "PUT"}});
    let op = operations
        .submit(OperationKind::Archive, "demo", request, callback(), "alice")
        .await
        .unwrap();
    assert_eq!(*ops.submitted.lock().unwrap(), vec![op.id.clone()]);
    operations.run(&op.id, &archiver).await.unwrap();
    let done = ops.get(&op.id).await.unwrap().unwrap();
    assert_eq!(done.status, OperationStatus::Failed);
    assert_eq!(done.http_status, Some(400));
    let detail = done.result.unwrap()["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("scheme 'file'"), "{detail}");
    assert_eq!(*ops.callbacks.lock().unwrap(), vec![op.id.clone()]);
    // A redelivered message for a finished operation does nothing.
    operations.run(&op.id, &archiver).await.unwrap();
    assert_eq!(ops.callbacks.lock().unwrap().len(), 1);
    // Its end is one event, its owner's.
    let events = ops.events.lock().unwrap().clone();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].kind, "operation.finished");
    assert_eq!(events[0].subject.as_str(), format!("operation:{}", op.id));
    assert_eq!(events[0].data["owner"], "alice");
    assert_eq!(events[0].data["status"], "failed");
    let shown = operations.show(&op.id, "alice").await.unwrap();
    assert_eq!(shown["status"], "failed");
    assert_eq!(shown["callback"]["method"], "PUT");
    assert_eq!(shown["callback"]["delivered"], false);
}

#[tokio::test]
async fn cancel_only_a_queued_operation() {
    let (operations, ops, archiver) = setup();
    let request = json!({"name": "demo", "url": "https://example.org/x.git", "ref": "main"});
    let queued = operations
        .submit(
            OperationKind::Archive,
            "demo",
            request.clone(),
            callback(),
            "alice",
        )
        .await
        .unwrap();
    // Another account neither sees nor cancels it.
    assert!(matches!(
        operations.cancel(&queued.id, "bob").await.unwrap_err(),
        ArchiveError::NotFound(_)
    ));
    assert!(matches!(
        operations.show(&queued.id, "bob").await.unwrap_err(),
        ArchiveError::NotFound(_)
    ));
    let cancelled = operations.cancel(&queued.id, "alice").await.unwrap();
    assert_eq!(cancelled.status, OperationStatus::Cancelled);
    assert_eq!(cancelled.http_status, Some(409));
    assert_eq!(*ops.callbacks.lock().unwrap(), vec![queued.id.clone()]);
    // The worker skips it, and it cannot be cancelled twice.
    operations.run(&queued.id, &archiver).await.unwrap();
    let still = ops.get(&queued.id).await.unwrap().unwrap();
    assert_eq!(still.status, OperationStatus::Cancelled);
    assert!(matches!(
        operations.cancel(&queued.id, "alice").await.unwrap_err(),
        ArchiveError::Conflict(_)
    ));
    // One operation.finished, for the cancellation that happened.
    let events = ops.events.lock().unwrap().clone();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].data["status"], "cancelled");
    assert_eq!(events[0].data["http_status"], 409);

    let running = operations
        .submit(OperationKind::Archive, "demo", request, None, "alice")
        .await
        .unwrap();
    ops.start(&running.id).await.unwrap();
    let err = operations.cancel(&running.id, "alice").await.unwrap_err();
    assert!(err.to_string().contains("running"), "{err}");
    assert!(matches!(
        operations.cancel("nope", "bob").await.unwrap_err(),
        ArchiveError::NotFound(_)
    ));
    assert!(matches!(
        operations.show("nope", "alice").await.unwrap_err(),
        ArchiveError::NotFound(_)
    ));
}

#[tokio::test]
async fn a_private_archive_repository_takes_its_owners_operations_under_its_prefix() {
    use cairn_archive::{Destinations, RepositoryDestinations};
    use cairn_core::auth::{UserRecord, hash_password};
    use cairn_core::memory::MemoryCatalog;
    use cairn_core::ports::UserDirectory;
    use cairn_core::repositories::{NewRepository, RepositoryStore};
    let (operations, ops, archiver) = setup();
    let catalog = Arc::new(MemoryCatalog::default());
    for name in ["alice", "bob"] {
        catalog
            .put_user(&UserRecord {
                name: name.into(),
                password_hash: hash_password("secret"),
                role: Default::default(),
                tokens_after: 0,
                selectors: Vec::new(),
            })
            .await
            .unwrap();
    }
    let new: NewRepository = serde_json::from_value(
        json!({"format": "archive", "name": "secret", "visibility": "private"}),
    )
    .unwrap();
    let repo = new.validate("alice", 1).unwrap();
    assert!(catalog.create_repository(&repo).await.unwrap());
    let destinations = RepositoryDestinations {
        public: archiver,
        repositories: catalog.clone(),
        users: catalog.clone(),
        api_url: Some("https://api.test/v1".into()),
    };
    let submit = |name: &'static str, owner: &'static str| {
        let operations = &operations;
        async move {
            let request = json!({"name": name, "url": "https://example.org/x.git", "ref": "main"});
            operations
                .submit(OperationKind::Archive, name, request, None, owner)
                .await
                .unwrap()
        }
    };
    // The owner's operation: files under the repository's hidden prefix, links
    // through the API's read path.
    let op = submit("secret", "alice").await;
    let private = destinations.archiver_for(&op).await.unwrap();
    assert_eq!(
        private.readonly_url("secret"),
        "https://api.test/v1/v1/files/git/secret.git"
    );
    private.publish("secret").await.unwrap();
    let inner = destinations.public.files.clone();
    let key = format!("private/{}/git/secret.git/info/refs", repo.storage);
    assert!(inner.get(&key).await.unwrap().is_some(), "{key}");
    assert!(
        inner
            .get("git/secret.git/info/refs")
            .await
            .unwrap()
            .is_none()
    );
    // Another account's operation (accepted before the repository was made, say)
    // fails at run time: the repository is not theirs to see.
    let op = submit("secret", "bob").await;
    operations.run(&op.id, &destinations).await.unwrap();
    let done = ops.get(&op.id).await.unwrap().unwrap();
    assert_eq!(
        (done.status, done.http_status),
        (OperationStatus::Failed, Some(404))
    );
    // A name no repository claims: the public archiver.
    let op = submit("open", "bob").await;
    let public = destinations.archiver_for(&op).await.unwrap();
    assert_eq!(
        public.readonly_url("open"),
        "http://archive.test/git/open.git"
    );
}
