//! In-memory fakes of the archive ports, for unit tests.

use crate::model::{
    ArchiveCatalog, ArchivedTree, AttemptRecord, CallbackQueue, Claim, Operation, OperationQueue,
    OperationStatus, OperationStore, PackRecord, PublishedRef, RefWrite, Transition, claim_changed,
};
use async_trait::async_trait;
use cairn_core::StoreError;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Archive records in maps. Clones share the maps; [`ArchiveCatalog::under`] gives
/// a clone writing for another claim.
#[derive(Debug, Default, Clone)]
pub struct MemoryArchives {
    trees: Arc<Mutex<BTreeMap<(String, String), ArchivedTree>>>,
    origins: Arc<Mutex<BTreeMap<(String, String), String>>>,
    refs: Arc<Mutex<BTreeMap<(String, String), PublishedRef>>>,
    packs: Arc<Mutex<BTreeMap<(String, String), PackRecord>>>,
    /// Claimed names and the storage of the repository claiming each.
    claims: Arc<Mutex<BTreeMap<String, String>>>,
    /// The claim this handle writes for.
    claim: Claim,
    /// Events committed with their changes, in order.
    pub events: Arc<Mutex<Vec<cairn_core::events::NewEvent>>>,
    /// Messages put back with a delay: (receipt, seconds).
    pub retries: Arc<Mutex<Vec<(String, u64)>>>,
}

impl MemoryArchives {
    /// Sets who claims `name` (what creating or deleting its archive repository does).
    pub fn set_claim(&self, name: &str, claim: Claim) {
        let mut claims = lock(&self.claims);
        match claim {
            Claim::Repository(storage) => claims.insert(name.into(), storage),
            Claim::Unclaimed => claims.remove(name),
        };
    }

    /// Refuses a write for `name` unless it is claimed as this handle expects.
    fn check_claim(&self, name: &str) -> Result<(), StoreError> {
        let claims = lock(&self.claims);
        let held = match claims.get(name) {
            Some(storage) => Claim::Repository(storage.clone()),
            None => Claim::Unclaimed,
        };
        if held == self.claim {
            Ok(())
        } else {
            Err(claim_changed(name))
        }
    }
}

#[async_trait]
impl ArchiveCatalog for MemoryArchives {
    fn under(&self, claim: Claim) -> Arc<dyn ArchiveCatalog> {
        Arc::new(MemoryArchives {
            claim,
            ..self.clone()
        })
    }
    async fn tree(&self, name: &str, tree: &str) -> Result<Option<ArchivedTree>, StoreError> {
        Ok(lock(&self.trees).get(&(name.into(), tree.into())).cloned())
    }
    async fn claim_tree(&self, record: &ArchivedTree) -> Result<Option<ArchivedTree>, StoreError> {
        self.check_claim(&record.name)?;
        let mut trees = lock(&self.trees);
        let key = (record.name.clone(), record.tree.clone());
        if let Some(existing) = trees.get(&key) {
            return Ok(Some(existing.clone()));
        }
        trees.insert(key, record.clone());
        Ok(None)
    }
    async fn mark_published(
        &self,
        name: &str,
        tree: &str,
        event: &cairn_core::events::NewEvent,
    ) -> Result<(), StoreError> {
        if let Some(t) = lock(&self.trees).get_mut(&(name.into(), tree.into()))
            && !t.published
        {
            t.published = true;
            lock(&self.events).push(event.clone());
        }
        Ok(())
    }
    async fn trees(&self, name: &str) -> Result<Vec<ArchivedTree>, StoreError> {
        Ok(lock(&self.trees)
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|(_, t)| t.clone())
            .collect())
    }
    async fn origin_tree(&self, name: &str, object: &str) -> Result<Option<String>, StoreError> {
        Ok(lock(&self.origins)
            .get(&(name.into(), object.into()))
            .cloned())
    }
    async fn remember_origin(
        &self,
        name: &str,
        object: &str,
        tree: &str,
    ) -> Result<(), StoreError> {
        self.check_claim(name)?;
        lock(&self.origins).insert((name.into(), object.into()), tree.into());
        Ok(())
    }
    async fn put_ref(&self, repo: &str, r: &PublishedRef) -> Result<RefWrite, StoreError> {
        self.check_claim(repo)?;
        let mut refs = lock(&self.refs);
        let key = (repo.to_owned(), r.name.clone());
        match refs.get(&key) {
            Some(existing) if existing.target == r.target => Ok(RefWrite::Unchanged),
            Some(existing) => Ok(RefWrite::Conflict(existing.clone())),
            None => {
                refs.insert(key, r.clone());
                Ok(RefWrite::Created)
            }
        }
    }
    async fn refs(&self, repo: &str) -> Result<Vec<PublishedRef>, StoreError> {
        Ok(lock(&self.refs)
            .iter()
            .filter(|((n, _), _)| n == repo)
            .map(|(_, r)| r.clone())
            .collect())
    }
    async fn add_pack(&self, repo: &str, pack: &PackRecord) -> Result<(), StoreError> {
        self.check_claim(repo)?;
        lock(&self.packs).insert((repo.into(), pack.stem.clone()), pack.clone());
        Ok(())
    }
    async fn packs(&self, repo: &str) -> Result<Vec<PackRecord>, StoreError> {
        Ok(lock(&self.packs)
            .iter()
            .filter(|((n, _), _)| n == repo)
            .map(|(_, p)| p.clone())
            .collect())
    }
}

/// Operations, both queues and the attempts, in maps and vectors.
#[derive(Debug, Default)]
pub struct MemoryOperations {
    ops: Mutex<BTreeMap<String, Operation>>,
    attempts: Mutex<BTreeMap<String, Vec<AttemptRecord>>>,
    /// Ids submitted to the archive queue, in order.
    pub submitted: Mutex<Vec<String>>,
    /// Ids queued for callback delivery, in order.
    pub callbacks: Mutex<Vec<String>>,
    /// Events committed with their changes, in order.
    pub events: Mutex<Vec<cairn_core::events::NewEvent>>,
    /// Messages put back with a delay: (receipt, seconds).
    pub retries: Mutex<Vec<(String, u64)>>,
}

impl MemoryOperations {
    fn transition(
        &self,
        id: &str,
        to: OperationStatus,
        result: Option<(u16, &Value)>,
    ) -> Transition {
        let mut ops = lock(&self.ops);
        let Some(op) = ops.get_mut(id) else {
            return Transition::Missing;
        };
        if op.status != OperationStatus::Queued {
            return Transition::Refused(op.clone());
        }
        op.status = to;
        if let Some((status, body)) = result {
            op.http_status = Some(status);
            op.result = Some(body.clone());
        }
        Transition::Done(op.clone())
    }
}

#[async_trait]
impl OperationStore for MemoryOperations {
    async fn create(&self, op: &Operation) -> Result<(), StoreError> {
        lock(&self.ops).insert(op.id.clone(), op.clone());
        Ok(())
    }
    async fn get(&self, id: &str) -> Result<Option<Operation>, StoreError> {
        Ok(lock(&self.ops).get(id).cloned())
    }
    async fn start(&self, id: &str) -> Result<Transition, StoreError> {
        Ok(self.transition(id, OperationStatus::Running, None))
    }
    async fn cancel(
        &self,
        id: &str,
        result: &Value,
        event: &cairn_core::events::NewEvent,
    ) -> Result<Transition, StoreError> {
        let transition = self.transition(id, OperationStatus::Cancelled, Some((409, result)));
        if matches!(transition, Transition::Done(_)) {
            lock(&self.events).push(event.clone());
        }
        Ok(transition)
    }
    async fn finish(
        &self,
        id: &str,
        status: OperationStatus,
        http_status: u16,
        result: &Value,
        event: &cairn_core::events::NewEvent,
    ) -> Result<(), StoreError> {
        if let Some(op) = lock(&self.ops).get_mut(id)
            && !op.status.is_final()
        {
            lock(&self.events).push(event.clone());
            op.status = status;
            op.http_status = Some(http_status);
            op.result = Some(result.clone());
        }
        Ok(())
    }
    async fn set_delivery(&self, id: &str, delivery: &str) -> Result<(), StoreError> {
        if let Some(op) = lock(&self.ops).get_mut(id) {
            op.delivery = Some(delivery.into());
        }
        Ok(())
    }
    async fn record_attempt(&self, id: &str, attempt: &AttemptRecord) -> Result<(), StoreError> {
        lock(&self.attempts)
            .entry(id.into())
            .or_default()
            .push(attempt.clone());
        Ok(())
    }
    async fn attempts(&self, id: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        Ok(lock(&self.attempts).get(id).cloned().unwrap_or_default())
    }
}

#[async_trait]
impl OperationQueue for MemoryOperations {
    async fn submit(&self, op: &Operation) -> Result<(), StoreError> {
        lock(&self.submitted).push(op.id.clone());
        Ok(())
    }
}

#[async_trait]
impl CallbackQueue for MemoryOperations {
    async fn deliver(&self, op_id: &str) -> Result<(), StoreError> {
        lock(&self.callbacks).push(op_id.into());
        Ok(())
    }
}

#[async_trait]
impl crate::model::RetryLater for MemoryOperations {
    async fn retry_after(
        &self,
        receipt: &str,
        delay: std::time::Duration,
    ) -> Result<(), StoreError> {
        lock(&self.retries).push((receipt.to_string(), delay.as_secs()));
        Ok(())
    }
}
