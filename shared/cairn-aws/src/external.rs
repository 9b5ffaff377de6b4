//! External repositories' adapters: apps and versions in the table, index runs on
//! their FIFO queue, credentials in Secrets Manager, and index files over HTTP
//! through the outbound address policy.

use crate::dynamo::{DynamoCatalog, Item, backoff, from_doc, get_item, query_docs, s};
use crate::keys::{
    APP_PREFIX, APPS_PK, INDEX_RUN_SK, INDEX_VERSION_PREFIX, PK, SK, STATE_SK, index_pk,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{DeleteRequest, Put, PutRequest, TransactWriteItem, WriteRequest};
use bytes::Bytes;
use cairn_callback::{AddressPolicy, Outgoing};
use cairn_core::StoreError;
use cairn_core::events::NewEvent;
use cairn_core::repositories::external::{
    AppStore, AppSummary, CredentialVault, Credentials, IndexQueue, IndexSource, IndexState,
    RunRecord, SourceError,
};
use cairn_helm::ChartVersion;
use sha2::Digest;
use std::time::Duration;

/// Items per BatchWriteItem.
const BATCH: usize = 25;

fn doc_item(pk: String, sk: String, doc: &impl serde::Serialize) -> Result<Item, StoreError> {
    let text = serde_json::to_string(doc).map_err(|e| StoreError::new("encode", e))?;
    Ok(Item::from([
        (PK.to_string(), s(pk)),
        (SK.to_string(), s(sk)),
        ("doc".to_string(), s(text)),
    ]))
}

fn version_sk(v: &ChartVersion) -> String {
    format!("{INDEX_VERSION_PREFIX}{}#{}", v.name, v.version)
}

impl DynamoCatalog {
    /// Writes `requests` in batches of 25, retrying what DynamoDB leaves unprocessed.
    pub(crate) async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for chunk in requests.chunks(BATCH) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|e| StoreError::caused_by("BatchWriteItem", e))?;
                pending = out
                    .unprocessed_items()
                    .and_then(|u| u.get(&self.table))
                    .cloned()
                    .unwrap_or_default();
                if !pending.is_empty() {
                    attempt += 1;
                    if attempt > 8 {
                        return Err(StoreError::new(
                            "BatchWriteItem",
                            "items left unprocessed after 8 attempts",
                        ));
                    }
                    tokio::time::sleep(backoff(attempt)).await;
                }
            }
        }
        Ok(())
    }

    async fn put_docs(&self, items: Vec<Item>) -> Result<(), StoreError> {
        let requests = items
            .into_iter()
            .map(|item| {
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(|e| StoreError::new("PutRequest", e))?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.batch_write(requests).await
    }

    async fn keys_of(&self, pk: String, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(pk.clone()))
            .projection_expression("#pk, #sk");
        // An empty string is no valid key value: no prefix is the whole partition.
        query = if prefix.is_empty() {
            query.key_condition_expression("#pk = :pk")
        } else {
            query
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_values(":prefix", s(prefix))
        };
        let mut pages = query.into_paginator().items().send();
        let mut out = Vec::new();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|e| StoreError::caused_by("Query keys", e))?;
            if let Some(sk) = item.get(SK).and_then(|v| v.as_s().ok()) {
                out.push((pk.clone(), sk.clone()));
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl AppStore for DynamoCatalog {
    async fn index_state(&self, repo: &str) -> Result<Option<IndexState>, StoreError> {
        get_item(&self.client, &self.table, index_pk(repo), STATE_SK)
            .await?
            .map(|item| from_doc(&item))
            .transpose()
    }

    async fn indexed_versions(&self, repo: &str) -> Result<Vec<ChartVersion>, StoreError> {
        query_docs(
            &self.client,
            &self.table,
            index_pk(repo),
            INDEX_VERSION_PREFIX,
        )
        .await
    }

    async fn add_versions(&self, repo: &str, versions: &[ChartVersion]) -> Result<(), StoreError> {
        let items = versions
            .iter()
            .map(|v| doc_item(index_pk(repo), version_sk(v), v))
            .collect::<Result<Vec<_>, _>>()?;
        self.put_docs(items).await
    }

    async fn put_apps(&self, apps: &[AppSummary]) -> Result<(), StoreError> {
        let items = apps
            .iter()
            .map(|a| {
                // The repository's index key (path#storage): a run still writing for
                // a deleted repository does not touch the new one's apps.
                let sk = format!("{APP_PREFIX}{}#{}#{}", a.name, a.repository, a.storage);
                doc_item(APPS_PK.to_string(), sk, a)
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.put_docs(items).await
    }

    async fn finish_run(
        &self,
        repo: &str,
        state: Option<&IndexState>,
        run: &RunRecord,
        event: &NewEvent,
    ) -> Result<(), StoreError> {
        if let Some(state) = state {
            self.put_docs(vec![doc_item(index_pk(repo), STATE_SK.into(), state)?])
                .await?;
        }
        let item = doc_item(index_pk(repo), INDEX_RUN_SK.into(), run)?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()
            .map_err(|e| StoreError::new("Put run", e))?;
        let change = TransactWriteItem::builder().put(put).build();
        self.commit_with_event(change, event, "record index run")
            .await?;
        Ok(())
    }

    async fn last_run(&self, repo: &str) -> Result<Option<RunRecord>, StoreError> {
        get_item(&self.client, &self.table, index_pk(repo), INDEX_RUN_SK)
            .await?
            .map(|item| from_doc(&item))
            .transpose()
    }

    async fn apps(&self) -> Result<Vec<AppSummary>, StoreError> {
        query_docs(&self.client, &self.table, APPS_PK.to_string(), APP_PREFIX).await
    }

    async fn app_versions(&self, repo: &str, app: &str) -> Result<Vec<ChartVersion>, StoreError> {
        let prefix = format!("{INDEX_VERSION_PREFIX}{app}#");
        query_docs(&self.client, &self.table, index_pk(repo), &prefix).await
    }

    async fn forget_index(&self, repo: &str) -> Result<(), StoreError> {
        let mut keys = self.keys_of(index_pk(repo), "").await?;
        let suffix = format!("#{repo}");
        keys.extend(
            self.keys_of(APPS_PK.to_string(), APP_PREFIX)
                .await?
                .into_iter()
                .filter(|(_, sk)| sk.ends_with(&suffix)),
        );
        let requests = keys
            .into_iter()
            .map(|(pk, sk)| {
                let delete = DeleteRequest::builder()
                    .key(PK, s(pk))
                    .key(SK, s(sk))
                    .build()
                    .map_err(|e| StoreError::new("DeleteRequest", e))?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.batch_write(requests).await
    }
}

/// Index runs on the indexer's FIFO queue: one message group per repository, so
/// one run of a repository at a time.
pub struct SqsIndexQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl SqsIndexQueue {
    /// The queue at `url`.
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }
}

/// An index run request on the queue.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct IndexMessage {
    /// The repository's record path.
    pub repository: String,
    /// Why: `created`, `requested`, `schedule`.
    pub reason: String,
}

#[async_trait]
impl IndexQueue for SqsIndexQueue {
    async fn request_index(&self, path: &str, reason: &str) -> Result<(), StoreError> {
        let body = serde_json::to_string(&IndexMessage {
            repository: path.to_string(),
            reason: reason.to_string(),
        })
        .map_err(|e| StoreError::new("encode", e))?;
        // Requests of one repository within a second are one run.
        let dedup = format!("{path}#{}", crate::dynamo::now_secs());
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .message_group_id(path)
            .message_deduplication_id(hex::encode(sha2::Sha256::digest(dedup.as_bytes())))
            .send()
            .await
            .map_err(|e| StoreError::caused_by("SendMessage index", e))?;
        Ok(())
    }
}

/// Credentials in Secrets Manager (encrypted with its KMS key), one secret per
/// repository, named `<prefix><storage id>`.
pub struct SecretsVault {
    client: aws_sdk_secretsmanager::Client,
    prefix: String,
}

impl SecretsVault {
    /// Secrets named under `prefix` (`cairn/<stack>/repositories/`).
    pub fn new(client: aws_sdk_secretsmanager::Client, prefix: impl Into<String>) -> Self {
        Self {
            client,
            prefix: prefix.into(),
        }
    }
}

#[async_trait]
impl CredentialVault for SecretsVault {
    async fn store(&self, storage: &str, credentials: &Credentials) -> Result<String, StoreError> {
        let text = serde_json::to_string(credentials).map_err(|e| StoreError::new("encode", e))?;
        let out = self
            .client
            .create_secret()
            .name(format!("{}{storage}", self.prefix))
            .description("Cairn external repository credentials")
            .secret_string(text)
            .send()
            .await
            .map_err(|e| StoreError::caused_by("CreateSecret", e))?;
        out.arn()
            .map(str::to_string)
            .ok_or_else(|| StoreError::new("CreateSecret", "no ARN in the answer"))
    }

    async fn read(&self, reference: &str) -> Result<Option<Credentials>, StoreError> {
        let out = match self
            .client
            .get_secret_value()
            .secret_id(reference)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(StoreError::caused_by("GetSecretValue", e)),
        };
        out.secret_string()
            .map(|t| serde_json::from_str(t).map_err(|e| StoreError::new("decode secret", e)))
            .transpose()
    }

    async fn forget(&self, reference: &str) -> Result<(), StoreError> {
        match self
            .client
            .delete_secret()
            .secret_id(reference)
            .force_delete_without_recovery(true)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(StoreError::caused_by("DeleteSecret", e)),
        }
    }
}

/// `index.yaml` over HTTP(S): resolved and connected through the address policy,
/// no redirects, Basic credentials if any, at most `max_bytes`.
pub struct HttpIndexSource {
    outgoing: Outgoing,
    max_bytes: usize,
}

impl HttpIndexSource {
    /// Reads through `policy`, each fetch within `timeout` and `max_bytes`.
    pub fn new(policy: AddressPolicy, timeout: Duration, max_bytes: usize) -> Self {
        Self {
            outgoing: Outgoing::new(policy, timeout),
            max_bytes,
        }
    }
}

#[async_trait]
impl IndexSource for HttpIndexSource {
    async fn fetch_index(
        &self,
        url: &str,
        credentials: Option<&Credentials>,
    ) -> Result<Bytes, SourceError> {
        use base64::Engine;
        let target = url::Url::parse(&format!("{}/index.yaml", url.trim_end_matches('/')))
            .map_err(|e| SourceError::Refused(format!("{url}: {e}")))?;
        let mut headers = vec![("accept", "application/yaml, text/yaml, */*".to_string())];
        if let Some(c) = credentials {
            let pair = format!("{}:{}", c.username, c.password);
            let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
            headers.push(("authorization", format!("Basic {encoded}")));
        }
        let (status, body) = self
            .outgoing
            .get(&target, &headers, self.max_bytes)
            .await
            .map_err(|(kind, message)| match kind {
                cairn_callback::AttemptError::Refused => SourceError::Refused(message),
                _ => SourceError::Failed(message),
            })?;
        match status {
            200 => Ok(body),
            401 | 403 => Err(SourceError::Unauthorized(format!("HTTP {status}"))),
            300..=399 => Err(SourceError::Failed(format!(
                "HTTP {status}: redirects are not followed; give the URL it redirects to"
            ))),
            other => Err(SourceError::Failed(format!("HTTP {other}"))),
        }
    }
}

/// The external repository adapters, from the environment: `CAIRN_INDEX_QUEUE_URL`,
/// `CAIRN_CREDENTIALS_PREFIX`, `CAIRN_OUTBOUND_ALLOW_LIST`, `CAIRN_INDEX_MAX_BYTES`
/// (default 16 MiB) and `CAIRN_INDEX_TIMEOUT_SECS` (default 20).
pub struct ExternalServices {
    /// The network.
    pub source: HttpIndexSource,
    /// Credentials.
    pub vault: SecretsVault,
    /// Index runs.
    pub queue: SqsIndexQueue,
}

impl ExternalServices {
    /// Reads the settings through `get` and builds the adapters on `clients`.
    pub fn from_lookup(
        clients: &crate::Clients,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, cairn_core::config::ConfigError> {
        use cairn_core::config::{ConfigError, number_or};
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));
        let policy =
            AddressPolicy::parse_list(&get("CAIRN_OUTBOUND_ALLOW_LIST").unwrap_or_default())
                .map_err(|e| ConfigError::Invalid {
                    name: "CAIRN_OUTBOUND_ALLOW_LIST",
                    reason: e.to_string(),
                })?;
        let max_bytes = number_or(&get, "CAIRN_INDEX_MAX_BYTES", 16 << 20)?;
        let timeout = Duration::from_secs(number_or(&get, "CAIRN_INDEX_TIMEOUT_SECS", 20)?);
        Ok(Self {
            source: HttpIndexSource::new(
                policy,
                timeout,
                usize::try_from(max_bytes).unwrap_or(usize::MAX),
            ),
            vault: SecretsVault::new(
                clients.secrets.clone(),
                required("CAIRN_CREDENTIALS_PREFIX")?,
            ),
            queue: SqsIndexQueue::new(clients.sqs.clone(), required("CAIRN_INDEX_QUEUE_URL")?),
        })
    }

    /// From the process environment.
    pub fn from_env(clients: &crate::Clients) -> Result<Self, cairn_core::config::ConfigError> {
        Self::from_lookup(clients, |k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }
}
