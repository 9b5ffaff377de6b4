//! Access tokens in the table (docs/data-model.md, "Tokens"): one item to find a
//! token by id when a request presents it, one in its owner's partition to list an
//! account's tokens. Both hold the same document (the secret's SHA-256, never the
//! secret) and are written and deleted together in one transaction. They expire
//! with the table's TTL a week after the token does, so an expired token is still
//! answered "expired" for a while rather than "invalid".

use crate::dynamo::{DynamoCatalog, cancellation_codes, from_doc, get_item, n, query_docs, s};
use crate::keys::{PK, SK, TOKEN_PREFIX, TOKEN_SK, TTL, token_pk, user_pk};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use cairn_core::StoreError;
use cairn_core::tokens::{TokenRecord, TokenStore};

/// How long an expired token's record is kept, seconds.
const KEEP_AFTER_EXPIRY_SECS: i64 = 7 * 86_400;

fn listing_sk(id: &str) -> String {
    format!("{TOKEN_PREFIX}{id}")
}

/// Whether a transaction failed because a condition did not hold.
fn condition_failed(e: &aws_sdk_dynamodb::error::SdkError<TransactWriteItemsError>) -> bool {
    cancellation_codes(e).is_some_and(|codes| codes.contains(&"ConditionalCheckFailed"))
}

#[async_trait]
impl TokenStore for DynamoCatalog {
    async fn put_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        let operation = "TransactWriteItems token";
        let doc = serde_json::to_string(token).map_err(|e| StoreError::new(operation, e))?;
        let put = |pk: String, sk: String, condition: Option<&str>| {
            Put::builder()
                .table_name(&self.table)
                .item(PK, s(pk))
                .item(SK, s(sk))
                .item("owner", s(&token.owner))
                .item("doc", s(&doc))
                .item(TTL, n(token.expires_at + KEEP_AFTER_EXPIRY_SECS))
                .set_condition_expression(condition.map(str::to_string))
                .build()
                .map(|p| TransactWriteItem::builder().put(p).build())
                .map_err(|e| StoreError::new(operation, e))
        };
        self.client
            .transact_write_items()
            .transact_items(put(
                token_pk(&token.id),
                TOKEN_SK.to_string(),
                Some("attribute_not_exists(pk)"),
            )?)
            .transact_items(put(user_pk(&token.owner), listing_sk(&token.id), None)?)
            .send()
            .await
            .map_err(|e| StoreError::caused_by(operation, e))?;
        Ok(())
    }

    async fn get_token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        get_item(&self.client, &self.table, token_pk(id), TOKEN_SK)
            .await?
            .map(|item| from_doc(&item))
            .transpose()
    }

    async fn list_tokens(&self, owner: &str) -> Result<Vec<TokenRecord>, StoreError> {
        query_docs(&self.client, &self.table, user_pk(owner), TOKEN_PREFIX).await
    }

    async fn delete_token(&self, owner: &str, id: &str) -> Result<bool, StoreError> {
        let operation = "TransactWriteItems revoke token";
        let delete = |pk: String, sk: String| {
            Delete::builder()
                .table_name(&self.table)
                .key(PK, s(pk))
                .key(SK, s(sk))
                .condition_expression("#owner = :owner")
                .expression_attribute_names("#owner", "owner")
                .expression_attribute_values(":owner", s(owner))
                .build()
                .map(|d| TransactWriteItem::builder().delete(d).build())
                .map_err(|e| StoreError::new(operation, e))
        };
        let result = self
            .client
            .transact_write_items()
            .transact_items(delete(token_pk(id), TOKEN_SK.to_string())?)
            .transact_items(delete(user_pk(owner), listing_sk(id))?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(StoreError::caused_by(operation, e)),
        }
    }
}
