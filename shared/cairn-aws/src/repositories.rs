//! Created repositories in the table (docs/data-model.md): one partition holds them
//! all, so a listing (with a selector applied in the function) is one Query.

use crate::dynamo::store_err;
use crate::dynamo::{
    DynamoCatalog, applied, cancellation_codes, from_doc, get_item, n, query_docs, s,
};
use crate::keys::{ARCHIVE_CLAIM_SK, PK, REPOSITORIES_PK, REPOSITORY_PREFIX, SK, archive_pk};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use cairn_core::StoreError;
use cairn_core::repositories::{Repository, RepositoryStore};

fn repository_sk(path: &str) -> String {
    format!("{REPOSITORY_PREFIX}{path}")
}

impl DynamoCatalog {
    /// The put of `repo`'s record under `condition`.
    fn repository_put(&self, repo: &Repository, condition: &str) -> Result<Put, StoreError> {
        let operation = "PutItem repository";
        let doc = serde_json::to_string(repo).map_err(|e| StoreError::new(operation, e))?;
        let mut put = Put::builder()
            .table_name(&self.table)
            .item(PK, s(REPOSITORIES_PK))
            .item(SK, s(repository_sk(&repo.path)))
            .item("doc", s(doc))
            .item("version", n(repo.version))
            .condition_expression(condition);
        if repo.version > 1 {
            put = put.expression_attribute_values(":prev", n(repo.version - 1));
        }
        put.build().map_err(|e| StoreError::new(operation, e))
    }

    async fn put_repository(&self, repo: &Repository, condition: &str) -> Result<bool, StoreError> {
        let put = self.repository_put(repo, condition)?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(put.item))
            .set_condition_expression(put.condition_expression)
            .set_expression_attribute_values(put.expression_attribute_values)
            .send()
            .await;
        applied(result, "PutItem repository")
    }

    /// Writes `items` in one transaction: `false` if a condition failed.
    async fn transact(
        &self,
        operation: &str,
        items: Vec<TransactWriteItem>,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if cancellation_codes(&e).is_some_and(|codes| {
                    codes
                        .iter()
                        .all(|c| matches!(*c, "None" | "ConditionalCheckFailed"))
                }) =>
            {
                Ok(false)
            }
            Err(e) => Err(StoreError::caused_by(operation, e)),
        }
    }
}

#[async_trait]
impl RepositoryStore for DynamoCatalog {
    async fn archive_in_use(&self, name: &str) -> Result<bool, StoreError> {
        // Any item of the name's partition after its claim: a tree, an origin, a ref
        // or a pack.
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND #sk > :claim")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(archive_pk(name)))
            .expression_attribute_values(":claim", s(ARCHIVE_CLAIM_SK))
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(store_err("Query archive"))?;
        Ok(out.count() > 0)
    }

    async fn create_repository(&self, repo: &Repository) -> Result<bool, StoreError> {
        let Some(name) = repo.archive_name() else {
            return self.put_repository(repo, "attribute_not_exists(pk)").await;
        };
        // An archive repository claims its name in the same transaction.
        let operation = "TransactWriteItems archive repository";
        let record = self.repository_put(repo, "attribute_not_exists(pk)")?;
        let claim = Put::builder()
            .table_name(&self.table)
            .item(PK, s(archive_pk(name)))
            .item(SK, s(ARCHIVE_CLAIM_SK))
            .item("storage", s(&repo.storage))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::new(operation, e))?;
        self.transact(
            operation,
            vec![
                TransactWriteItem::builder().put(record).build(),
                TransactWriteItem::builder().put(claim).build(),
            ],
        )
        .await
    }

    async fn get_repository(&self, path: &str) -> Result<Option<Repository>, StoreError> {
        get_item(
            &self.client,
            &self.table,
            REPOSITORIES_PK.to_string(),
            &repository_sk(path),
        )
        .await?
        .map(|item| from_doc(&item))
        .transpose()
    }

    async fn list_repositories(&self) -> Result<Vec<Repository>, StoreError> {
        query_docs(
            &self.client,
            &self.table,
            REPOSITORIES_PK.to_string(),
            REPOSITORY_PREFIX,
        )
        .await
    }

    async fn replace_repository(&self, repo: &Repository) -> Result<bool, StoreError> {
        if repo.version < 2 {
            return Ok(false);
        }
        self.put_repository(repo, "version = :prev").await
    }

    async fn delete_repository(&self, repo: &Repository) -> Result<bool, StoreError> {
        let operation = "DeleteItem repository";
        let record = Delete::builder()
            .table_name(&self.table)
            .key(PK, s(REPOSITORIES_PK))
            .key(SK, s(repository_sk(&repo.path)))
            .condition_expression("version = :current")
            .expression_attribute_values(":current", n(repo.version))
            .build()
            .map_err(|e| StoreError::new(operation, e))?;
        let Some(name) = repo.archive_name() else {
            let result = self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(record.key))
                .set_condition_expression(record.condition_expression)
                .set_expression_attribute_values(record.expression_attribute_values)
                .send()
                .await;
            return applied(result, operation);
        };
        // An archive repository releases its name's claim with it.
        let claim = Delete::builder()
            .table_name(&self.table)
            .key(PK, s(archive_pk(name)))
            .key(SK, s(ARCHIVE_CLAIM_SK))
            .condition_expression("#storage = :storage")
            .expression_attribute_names("#storage", "storage")
            .expression_attribute_values(":storage", s(&repo.storage))
            .build()
            .map_err(|e| StoreError::new(operation, e))?;
        self.transact(
            "TransactWriteItems delete archive repository",
            vec![
                TransactWriteItem::builder().delete(record).build(),
                TransactWriteItem::builder().delete(claim).build(),
            ],
        )
        .await
    }

    async fn close_archive(&self, repo: &Repository, closing: bool) -> Result<bool, StoreError> {
        let Some(name) = repo.archive_name() else {
            return Ok(false);
        };
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(archive_pk(name)))
            .key(SK, s(ARCHIVE_CLAIM_SK))
            .condition_expression("#storage = :storage")
            .expression_attribute_names("#storage", "storage")
            .expression_attribute_values(":storage", s(&repo.storage));
        let update = update.expression_attribute_names("#closing", "closing");
        let update = if closing {
            update
                .update_expression("SET #closing = :t")
                .expression_attribute_values(":t", AttributeValue::Bool(true))
        } else {
            update.update_expression("REMOVE #closing")
        };
        applied(update.send().await, "UpdateItem archive claim")
    }
}
