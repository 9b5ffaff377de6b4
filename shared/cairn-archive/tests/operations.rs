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
