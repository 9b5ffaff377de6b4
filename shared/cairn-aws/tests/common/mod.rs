//! Recorded DynamoDB answers for the adapter tests (the SDK's `StaticReplayClient`).

#![allow(dead_code)]

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
use aws_smithy_types::body::SdkBody;
use cairn_aws::DynamoCatalog;

/// An answer with `status` and a DynamoDB JSON body.
pub fn answer(status: u16, body: &str) -> http::Response<SdkBody> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .body(SdkBody::from(body.to_string()))
        .expect("response")
}

/// Any request: the replay client does not compare them.
pub fn any_request() -> http::Request<SdkBody> {
    http::Request::builder()
        .uri("https://dynamodb.us-east-1.amazonaws.com/")
        .body(SdkBody::empty())
        .expect("request")
}

/// A catalog whose client answers `answers` in order.
pub fn catalog(answers: Vec<http::Response<SdkBody>>) -> (DynamoCatalog, StaticReplayClient) {
    let replay = StaticReplayClient::new(
        answers
            .into_iter()
            .map(|a| ReplayEvent::new(any_request(), a))
            .collect(),
    );
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("a", "b", None, None, "test"))
        .http_client(replay.clone())
        .build();
    (
        DynamoCatalog::new(aws_sdk_dynamodb::Client::from_conf(config), "cairn"),
        replay,
    )
}

/// A cancelled transaction with one reason code per item.
pub fn cancelled(codes: &[&str]) -> http::Response<SdkBody> {
    let reasons: Vec<String> = codes
        .iter()
        .map(|c| format!(r#"{{"Code":"{c}"}}"#))
        .collect();
    answer(
        400,
        &format!(
            r#"{{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","message":"Transaction cancelled","CancellationReasons":[{}]}}"#,
            reasons.join(",")
        ),
    )
}

/// The bodies of the requests the client received.
pub fn bodies(replay: &StaticReplayClient) -> Vec<String> {
    replay
        .actual_requests()
        .map(|r| String::from_utf8_lossy(r.body().bytes().unwrap_or_default()).into_owned())
        .collect()
}
