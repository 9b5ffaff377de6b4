//! The DynamoDB event-log adapter against recorded DynamoDB answers (the SDK's
//! `StaticReplayClient`, no network): a change whose own condition fails writes
//! nothing and is not retried; a lost race for the log position is retried at the next
//! position; events decode from a Query page.

mod common;

use aws_smithy_types::body::SdkBody;
use cairn_core::RepoPath;
use cairn_core::events::{EventLog, NewEvent, Subject};
use cairn_core::ports::Catalog;
use common::{answer, bodies, cancelled, catalog};

fn head(seq: u64) -> http::Response<SdkBody> {
    answer(200, &format!(r#"{{"Item":{{"seq":{{"N":"{seq}"}}}}}}"#))
}

fn repo() -> RepoPath {
    RepoPath::parse("release/1/ubuntu/jammy").expect("valid")
}

#[tokio::test]
async fn a_lost_race_for_the_log_position_is_retried_at_the_next_one() {
    let (catalog, replay) = catalog(vec![
        head(7),
        cancelled(&["None", "ConditionalCheckFailed", "None", "None"]),
        head(8),
        answer(200, "{}"),
    ]);
    let event = NewEvent::package_deleted(&repo(), "a_1_amd64.deb", "requested");
    let applied = catalog
        .mark_deleting(&repo(), "a_1_amd64.deb", &event)
        .await
        .expect("committed");
    assert!(applied);
    let sent = bodies(&replay);
    assert_eq!(sent.len(), 4, "{sent:#?}");
    assert!(sent[1].contains("EVT#00000000000000000008"), "{}", sent[1]);
    assert!(sent[3].contains("EVT#00000000000000000009"), "{}", sent[3]);
    assert!(sent[3].contains("SUBJECT#repository:release/1/ubuntu/jammy"));
    assert!(
        sent[3].contains(&event.id),
        "the same event id on the retry"
    );
}

#[tokio::test]
async fn a_change_whose_condition_fails_writes_nothing_and_is_not_retried() {
    let (catalog, replay) = catalog(vec![
        answer(200, "{}"),
        cancelled(&["ConditionalCheckFailed", "None", "None", "None"]),
    ]);
    let event = NewEvent::package_deleted(&repo(), "gone_1_amd64.deb", "requested");
    let applied = catalog
        .mark_deleting(&repo(), "gone_1_amd64.deb", &event)
        .await
        .expect("answered");
    assert!(!applied);
    assert_eq!(bodies(&replay).len(), 2);
}

#[tokio::test]
async fn other_failures_are_errors_not_retries() {
    let (catalog, _) = catalog(vec![
        head(1),
        answer(
            400,
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ValidationException","message":"bad"}"#,
        ),
    ]);
    let event = NewEvent::package_deleted(&repo(), "a_1_amd64.deb", "requested");
    let err = catalog
        .mark_deleting(&repo(), "a_1_amd64.deb", &event)
        .await
        .expect_err("a validation error is not a lost race");
    assert!(err.to_string().contains("mark deleting"), "{err}");
    assert!(
        std::error::Error::source(&err).is_some(),
        "the SDK error is kept"
    );
}

#[tokio::test]
async fn events_decode_from_a_query_page() {
    let (catalog, replay) = catalog(vec![answer(
        200,
        r#"{"Count":1,"Items":[{"pk":{"S":"SUBJECT#archive:demo"},"sk":{"S":"EVT#00000000000000000042"},
            "seq":{"N":"42"},"id":{"S":"evt_00"},"type":{"S":"archive.created"},
            "subject":{"S":"archive:demo"},"time_ms":{"N":"1796255175123"},
            "data":{"S":"{\"tag\":\"cairn-1\"}"}}]}"#,
    )]);
    let events = catalog
        .events_after(Some(&Subject::archive("demo")), 41, 10)
        .await
        .expect("page");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].seq, 42);
    assert_eq!(events[0].data["tag"], "cairn-1");
    assert_eq!(events[0].timestamp, "2026-12-02T23:46:15.123Z");
    let query = &bodies(&replay)[0];
    assert!(query.contains("SUBJECT#archive:demo") && query.contains("EVT#00000000000000000042"));
    assert!(query.contains(r#""ConsistentRead":true"#), "{query}");
}

fn stored_event(seq: u64) -> String {
    format!(
        r#"{{"pk":{{"S":"EVENTS"}},"sk":{{"S":"EVT#{seq:020}"}},"seq":{{"N":"{seq}"}},
            "id":{{"S":"evt_{seq}"}},"type":{{"S":"ping"}},"subject":{{"S":"webhook:w"}},
            "time_ms":{{"N":"1796255175123"}},"data":{{"S":"{{}}"}}}}"#
    )
}

#[tokio::test]
async fn the_latest_events_are_read_newest_first_and_returned_oldest_first() {
    let (catalog, replay) = catalog(vec![answer(
        200,
        &format!(
            r#"{{"Count":2,"Items":[{},{}]}}"#,
            stored_event(9),
            stored_event(8)
        ),
    )]);
    let events = catalog.events_latest(None, 2).await.expect("page");
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [8, 9]);
    let query = &bodies(&replay)[0];
    assert!(query.contains(r#""ScanIndexForward":false"#), "{query}");
    assert!(query.contains(r#""Limit":2"#), "{query}");
    assert!(query.contains("EVT#00000000000000000001"), "{query}");
}
