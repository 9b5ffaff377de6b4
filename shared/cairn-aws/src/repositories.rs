//! Created repositories in the table (docs/data-model.md): one partition holds them
//! all, so a listing (with a selector applied in the function) is one Query.

use crate::dynamo::store_err;
use crate::dynamo::{DynamoCatalog, applied, from_doc, get_item, n, query_docs, s};
use crate::keys::{PK, REPOSITORIES_PK, REPOSITORY_PREFIX, SK, archive_pk};
use async_trait::async_trait;
use cairn_core::StoreError;
use cairn_core::repositories::{Repository, RepositoryStore};

fn repository_sk(path: &str) -> String {
    format!("{REPOSITORY_PREFIX}{path}")
}

impl DynamoCatalog {
    async fn put_repository(&self, repo: &Repository, condition: &str) -> Result<bool, StoreError> {
        let operation = "PutItem repository";
        let doc = serde_json::to_string(repo).map_err(|e| StoreError::new(operation, e))?;
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(REPOSITORIES_PK))
            .item(SK, s(repository_sk(&repo.path)))
            .item("doc", s(doc))
            .item("version", n(repo.version))
            .condition_expression(condition);
        if repo.version > 1 {
            put = put.expression_attribute_values(":prev", n(repo.version - 1));
        }
        applied(put.send().await, operation)
    }
}

#[async_trait]
impl RepositoryStore for DynamoCatalog {
    async fn archive_in_use(&self, name: &str) -> Result<bool, StoreError> {
        // Any item of the name's partition: a tree, an origin, a ref or a pack.
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", s(archive_pk(name)))
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(store_err("Query archive"))?;
        Ok(out.count() > 0)
    }

    async fn create_repository(&self, repo: &Repository) -> Result<bool, StoreError> {
        self.put_repository(repo, "attribute_not_exists(pk)").await
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
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(REPOSITORIES_PK))
            .key(SK, s(repository_sk(&repo.path)))
            .condition_expression("version = :current")
            .expression_attribute_values(":current", n(repo.version))
            .send()
            .await;
        applied(result, "DeleteItem repository")
    }
}
