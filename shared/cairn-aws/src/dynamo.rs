//! DynamoDB single-table adapter for the catalog, users and upload tickets.
//! Key layout: [`crate::keys`]; access patterns: `docs/data-model.md`.

use crate::keys::{
    PACKAGE_PREFIX, PK, SK, STATE_SK, TTL, UPLOAD_SK, USER_SK, package_sk, repo_pk, upload_pk,
    user_pk,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use cairn_core::auth::UserRecord;
use cairn_core::ports::{
    Catalog, RepoState, StoreError, UploadLedger, UploadTicket, UserDirectory,
};
use cairn_core::{PackageRecord, PackageStatus, RepoPath};
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

/// Upload tickets expire (DynamoDB TTL) a day after creation.
const TICKET_TTL_SECS: i64 = 24 * 3600;

/// The DynamoDB adapter.
#[derive(Clone, Debug)]
pub struct DynamoCatalog {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s(item: &Item, name: &str) -> Result<String, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(StoreError::new(
            "decode item",
            format!("attribute {name} missing or not a string"),
        )),
    }
}

fn get_opt_s(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| {
            StoreError::new("decode item", format!("attribute {name} is not a number"))
        }),
        _ => Err(StoreError::new(
            "decode item",
            format!("attribute {name} missing or not a number"),
        )),
    }
}

fn get_n_or_zero(item: &Item, name: &str) -> Result<u64, StoreError> {
    if item.contains_key(name) {
        get_n(item, name)
    } else {
        Ok(0)
    }
}

fn store_err<E, R>(operation: &str) -> impl FnOnce(SdkError<E, R>) -> StoreError + '_
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    move |e| StoreError::new(operation, DisplayErrorContext(e))
}

fn status_str(status: PackageStatus) -> &'static str {
    match status {
        PackageStatus::Pending => "pending",
        PackageStatus::Ready => "ready",
    }
}

fn package_item(record: &PackageRecord) -> Item {
    HashMap::from([
        (PK.into(), s(repo_pk(&record.repo))),
        (SK.into(), s(package_sk(&record.filename))),
        ("repo".into(), s(record.repo.to_string())),
        ("filename".into(), s(&record.filename)),
        ("product".into(), s(&record.product)),
        ("name".into(), s(&record.name)),
        ("version".into(), s(&record.version)),
        ("arch".into(), s(&record.architecture)),
        ("size".into(), n(record.size)),
        ("sha256".into(), s(&record.sha256)),
        ("pool_key".into(), s(&record.pool_key)),
        ("stanza".into(), s(&record.stanza)),
        ("status".into(), s(status_str(record.status))),
        ("uploaded_at".into(), n(record.uploaded_at)),
        ("uploader".into(), s(&record.uploader)),
    ])
}

fn package_from_item(item: &Item) -> Result<PackageRecord, StoreError> {
    let repo =
        RepoPath::parse(&get_s(item, "repo")?).map_err(|e| StoreError::new("decode package", e))?;
    let status = match get_s(item, "status")?.as_str() {
        "ready" => PackageStatus::Ready,
        _ => PackageStatus::Pending,
    };
    Ok(PackageRecord {
        repo,
        filename: get_s(item, "filename")?,
        product: get_s(item, "product")?,
        name: get_s(item, "name")?,
        version: get_s(item, "version")?,
        architecture: get_s(item, "arch")?,
        size: get_n(item, "size")?,
        sha256: get_s(item, "sha256")?,
        pool_key: get_s(item, "pool_key")?,
        stanza: get_s(item, "stanza")?,
        status,
        uploaded_at: get_n(item, "uploaded_at")?,
        uploader: get_s(item, "uploader")?,
    })
}

impl DynamoCatalog {
    /// Adapter over `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    async fn get_item(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .key(SK, s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_err("GetItem"))?;
        Ok(out.item)
    }
}

fn is_condition_failure<R>(
    e: &SdkError<aws_sdk_dynamodb::operation::put_item::PutItemError, R>,
) -> bool {
    e.as_service_error()
        .is_some_and(|s| s.is_conditional_check_failed_exception())
}

#[async_trait]
impl Catalog for DynamoCatalog {
    async fn get_package(
        &self,
        repo: &RepoPath,
        filename: &str,
    ) -> Result<Option<PackageRecord>, StoreError> {
        self.get_item(repo_pk(repo), &package_sk(filename))
            .await?
            .map(|item| package_from_item(&item))
            .transpose()
    }

    async fn claim_package(&self, record: &PackageRecord) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(package_item(record)))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(StoreError::new("PutItem package", DisplayErrorContext(e))),
        }
    }

    async fn mark_ready(&self, repo: &RepoPath, filename: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(repo_pk(repo)))
            .key(SK, s(package_sk(filename)))
            .update_expression("SET #st = :ready")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":ready", s("ready"))
            .send()
            .await
            .map_err(store_err("UpdateItem mark ready"))?;
        Ok(())
    }

    async fn drop_claim(
        &self,
        repo: &RepoPath,
        filename: &str,
        sha256: &str,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(repo_pk(repo)))
            .key(SK, s(package_sk(filename)))
            .condition_expression("#st = :pending AND sha256 = :sha")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":sha", s(sha256))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(StoreError::new("DeleteItem claim", DisplayErrorContext(e))),
        }
    }

    async fn list_packages(&self, repo: &RepoPath) -> Result<Vec<PackageRecord>, StoreError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(repo_pk(repo)))
            .expression_attribute_values(":prefix", s(PACKAGE_PREFIX))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        let mut out = Vec::new();
        while let Some(item) = pages.next().await {
            let item = item.map_err(store_err("Query packages"))?;
            out.push(package_from_item(&item)?);
        }
        Ok(out)
    }

    async fn note_change(&self, repo: &RepoPath) -> Result<u64, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(repo_pk(repo)))
            .key(SK, s(STATE_SK))
            .update_expression("ADD change_seq :one")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(store_err("UpdateItem change_seq"))?;
        let attrs = out.attributes.unwrap_or_default();
        get_n(&attrs, "change_seq")
    }

    async fn repo_state(&self, repo: &RepoPath) -> Result<RepoState, StoreError> {
        let Some(item) = self.get_item(repo_pk(repo), STATE_SK).await? else {
            return Ok(RepoState::default());
        };
        Ok(RepoState {
            change_seq: get_n_or_zero(&item, "change_seq")?,
            published_seq: get_n_or_zero(&item, "published_seq")?,
            publish_count: get_n_or_zero(&item, "publish_count")?,
            release_sha256: get_opt_s(&item, "release_sha256"),
            published_at: item
                .contains_key("published_at")
                .then(|| get_n(&item, "published_at"))
                .transpose()?,
        })
    }

    async fn record_publish(&self, repo: &RepoPath, state: &RepoState) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(repo_pk(repo)))
            .key(SK, s(STATE_SK))
            .update_expression(
                "SET published_seq = :seq, release_sha256 = :sha, published_at = :at \
                 ADD publish_count :one",
            )
            .condition_expression(
                "attribute_not_exists(published_seq) OR published_seq < :seq \
                 OR attribute_not_exists(release_sha256)",
            )
            .expression_attribute_values(":seq", n(state.published_seq))
            .expression_attribute_values(
                ":sha",
                s(state.release_sha256.clone().unwrap_or_default()),
            )
            .expression_attribute_values(":at", n(state.published_at.unwrap_or_default()))
            .expression_attribute_values(":one", n(1))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(StoreError::new(
                "UpdateItem publish",
                DisplayErrorContext(e),
            )),
        }
    }
}

#[async_trait]
impl UserDirectory for DynamoCatalog {
    async fn get_user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        let Some(item) = self.get_item(user_pk(name), USER_SK).await? else {
            return Ok(None);
        };
        Ok(Some(UserRecord {
            name: get_s(&item, "name")?,
            password_hash: get_s(&item, "password_hash")?,
        }))
    }

    async fn put_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(user_pk(&user.name)))
            .item(SK, s(USER_SK))
            .item("name", s(&user.name))
            .item("password_hash", s(&user.password_hash))
            .send()
            .await
            .map_err(store_err("PutItem user"))?;
        Ok(())
    }
}

#[async_trait]
impl UploadLedger for DynamoCatalog {
    async fn put_ticket(&self, t: &UploadTicket) -> Result<(), StoreError> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(upload_pk(&t.id)))
            .item(SK, s(UPLOAD_SK))
            .item("repo", s(t.repo.to_string()))
            .item("filename", s(&t.filename))
            .item("uploader", s(&t.uploader))
            .item("status", s(&t.status))
            .item("created_at", n(t.created_at))
            .item(TTL, n(t.created_at + TICKET_TTL_SECS))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK);
        if let Some(p) = &t.product {
            req = req.item("product", s(p));
        }
        req.send().await.map_err(store_err("PutItem upload"))?;
        Ok(())
    }

    async fn get_ticket(&self, id: &str) -> Result<Option<UploadTicket>, StoreError> {
        let Some(item) = self.get_item(upload_pk(id), UPLOAD_SK).await? else {
            return Ok(None);
        };
        Ok(Some(UploadTicket {
            id: id.to_string(),
            repo: RepoPath::parse(&get_s(&item, "repo")?)
                .map_err(|e| StoreError::new("decode upload", e))?,
            product: get_opt_s(&item, "product"),
            filename: get_s(&item, "filename")?,
            uploader: get_s(&item, "uploader")?,
            status: get_s(&item, "status")?,
            message: get_opt_s(&item, "message"),
            created_at: get_n(&item, "created_at")?,
        }))
    }

    async fn finish_ticket(&self, id: &str, status: &str, message: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(upload_pk(id)))
            .key(SK, s(UPLOAD_SK))
            .update_expression("SET #st = :st, message = :msg")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":st", s(status))
            .expression_attribute_values(":msg", s(message))
            .send()
            .await
            .map_err(store_err("UpdateItem upload"))?;
        Ok(())
    }
}
