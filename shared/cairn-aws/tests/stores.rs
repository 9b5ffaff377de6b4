//! The token and repository adapters against recorded DynamoDB answers: the
//! conditions they send, and a failed condition answered as "not applied".

mod common;

use cairn_core::repositories::{NewRepository, RepositoryStore};
use cairn_core::tokens::TokenStore;
use common::{answer, bodies, cancelled, catalog};

fn repository(version: u64) -> cairn_core::repositories::Repository {
    let new: NewRepository = serde_json::from_value(serde_json::json!({
        "format": "apt", "path": "team/db/ubuntu/noble", "labels": {"team": "db"}
    }))
    .expect("request");
    let mut repo = new.validate("alice", 100).expect("valid");
    repo.version = version;
    repo
}

fn condition_failed() -> http::Response<aws_smithy_types::body::SdkBody> {
    answer(
        400,
        r#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}"#,
    )
}

#[tokio::test]
async fn a_taken_path_is_not_created_and_a_stale_version_not_replaced() {
    let (catalog, replay) = catalog(vec![
        answer(200, "{}"),
        condition_failed(),
        condition_failed(),
    ]);
    assert!(
        catalog
            .create_repository(&repository(1))
            .await
            .expect("create")
    );
    assert!(
        !catalog
            .create_repository(&repository(1))
            .await
            .expect("create")
    );
    assert!(
        !catalog
            .replace_repository(&repository(3))
            .await
            .expect("replace")
    );
    let sent = bodies(&replay);
    assert!(
        sent[0].contains("attribute_not_exists(pk)")
            && sent[0].contains("REPO#team/db/ubuntu/noble"),
        "{}",
        sent[0]
    );
    assert!(
        sent[2].contains("version = :prev") && sent[2].contains(r#"":prev":{"N":"2"}"#),
        "{}",
        sent[2]
    );
}

#[tokio::test]
async fn revoking_another_accounts_token_is_not_found() {
    let (catalog, replay) = catalog(vec![cancelled(&["ConditionalCheckFailed", "None"])]);
    assert!(
        !catalog
            .delete_token("bob", "0123456789abcdef")
            .await
            .expect("revoke")
    );
    let sent = &bodies(&replay)[0];
    assert!(
        sent.contains("TOKEN#0123456789abcdef") && sent.contains(r#"":owner":{"S":"bob"}"#),
        "{sent}"
    );
}
