//! The callback worker in process: memory operation store, a real local HTTP receiver
//! (the address policy admits 127.0.0.1 here), and the retry port recorded. A failed
//! attempt is recorded and the message put back after the backoff; a success marks the
//! delivery; the last failure marks it failed and leaves the message to the DLQ.

use aws_lambda_events::event::sqs::SqsMessage;
use cairn_archive::Operations;
use cairn_archive::memory::MemoryOperations;
use cairn_archive::model::{OperationKind, OperationStatus, OperationStore};
use cairn_callback::{AddressPolicy, Backoff, Callback, Deliverer, Method};
use cairn_core::events::{NewEvent, Subject};
use callback_worker::{Next, Worker};
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

/// Answers each connection with the next status of `statuses`.
fn receiver(statuses: Vec<u16>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for status in statuses {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let mut buf = [0u8; 65536];
            let _ = stream.read(&mut buf);
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            );
        }
    });
    format!("http://{addr}/cb")
}

async fn world(url: &str, max_attempts: u32) -> (Worker, Arc<MemoryOperations>, String) {
    let ops = Arc::new(MemoryOperations::default());
    let operations = Operations {
        store: ops.clone(),
        queue: ops.clone(),
        callbacks: ops.clone(),
    };
    let op = operations
        .submit(
            OperationKind::Archive,
            "demo",
            json!({}),
            Some(Callback::new(url, Method::Post).expect("url")),
            "alice",
        )
        .await
        .expect("submit");
    ops.start(&op.id).await.expect("start");
    let event = NewEvent::new("operation.finished", Subject::operation(&op.id), json!({}));
    ops.finish(
        &op.id,
        OperationStatus::Succeeded,
        200,
        &json!({"tag": "cairn-1"}),
        &event,
    )
    .await
    .expect("finish");
    ops.set_delivery(&op.id, "pending").await.expect("pending");
    let worker = Worker {
        store: ops.clone(),
        deliverer: Deliverer::new(
            b"secret".to_vec(),
            AddressPolicy::parse_list("127.0.0.1").expect("policy"),
            Duration::from_secs(5),
        ),
        backoff: Backoff {
            base: Duration::from_secs(30),
            max_delay: Duration::from_secs(900),
            max_attempts,
        },
        retry: ops.clone(),
    };
    (worker, ops, op.id)
}

fn message(receive_count: Option<u32>) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.receipt_handle = Some("receipt-1".into());
    if let Some(n) = receive_count {
        m.attributes
            .insert("ApproximateReceiveCount".into(), n.to_string());
    }
    m
}

#[tokio::test]
async fn a_failure_waits_for_the_backoff_and_a_success_is_recorded() {
    let url = receiver(vec![503, 200]);
    let (worker, ops, id) = world(&url, 4).await;
    assert_eq!(
        worker.one(&id, &message(Some(1))).await.expect("attempt"),
        Next::Retry
    );
    let retries = ops.retries.lock().expect("lock").clone();
    assert_eq!(retries.len(), 1);
    assert_eq!(retries[0].0, "receipt-1");
    // Equal jitter after the first failure: half of the 30 s base fixed, half random.
    assert!((15..=30).contains(&retries[0].1), "{retries:?}");
    assert_eq!(
        worker.one(&id, &message(Some(2))).await.expect("attempt"),
        Next::Done
    );
    let attempts = ops.attempts(&id).await.expect("attempts");
    assert_eq!(
        attempts.iter().map(|a| a.http_status).collect::<Vec<_>>(),
        [Some(503), Some(200)]
    );
    let op = ops.get(&id).await.expect("get").expect("op");
    assert_eq!(op.delivery.as_deref(), Some("delivered"));
    // A redelivered message after success does nothing.
    assert_eq!(
        worker.one(&id, &message(Some(3))).await.expect("attempt"),
        Next::Done
    );
    assert_eq!(ops.attempts(&id).await.expect("attempts").len(), 2);
}

#[tokio::test]
async fn the_last_failure_marks_the_delivery_failed_and_leaves_the_message_to_the_dlq() {
    let url = receiver(vec![500]);
    let (worker, ops, id) = world(&url, 2).await;
    assert_eq!(
        worker.one(&id, &message(Some(2))).await.expect("attempt"),
        Next::Retry
    );
    assert!(
        ops.retries.lock().expect("lock").is_empty(),
        "no delay: the queue takes it to the DLQ"
    );
    let op = ops.get(&id).await.expect("get").expect("op");
    assert_eq!(op.delivery.as_deref(), Some("failed"));
}

#[tokio::test]
async fn a_message_without_a_receive_count_is_an_error_not_a_guess() {
    let (worker, ops, id) = world("http://127.0.0.1:9/cb", 4).await;
    assert!(worker.one(&id, &message(None)).await.is_err());
    assert!(ops.attempts(&id).await.expect("attempts").is_empty());
}
