//! The archive and clone use cases, and the life of an operation.

use crate::ArchiveError;
use crate::layout;
use crate::model::{
    ArchiveCatalog, ArchivedTree, CallbackQueue, Operation, OperationKind, OperationQueue,
    OperationStatus, OperationStore, PackRecord, PublishedRef, RefWrite, Transition,
};
use crate::origin::{self, FetchLimits, History};
use crate::pack::Pack;
use crate::request::{ArchiveRequest, CloneRequest, WorkspaceRequest, check_origin, is_commit_id};
use crate::tree::{TreeLimits, archive_tree};
use bytes::Bytes;
use cairn_callback::AddressPolicy;
use cairn_core::ports::RepoStore;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Settings of the archive worker and API.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Which special-range addresses origins and callbacks may have.
    pub policy: AddressPolicy,
    /// Fetch bounds.
    pub fetch: FetchLimits,
    /// Tree bounds.
    pub tree: TreeLimits,
    /// Where scratch repositories go.
    pub scratch: PathBuf,
    /// Public base URL of the archive bucket (readonly URLs, tarballs).
    pub archive_base_url: String,
}

/// Current time, RFC 3339.
pub fn now() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// The archive and clone use cases over their ports.
#[derive(Clone)]
pub struct Archiver {
    /// Archive records.
    pub catalog: Arc<dyn ArchiveCatalog>,
    /// The archive bucket.
    pub files: Arc<dyn RepoStore>,
    /// The build bucket, where build jobs' workspaces are saved (none: archiving a
    /// workspace is refused).
    pub workspaces: Option<Arc<dyn RepoStore>>,
    /// Settings.
    pub settings: Settings,
}

/// Where a fetched ref led.
struct Origin {
    target: String,
    commit: String,
    tree: String,
}

/// What the blocking part of an archive found.
enum Step {
    /// The ref's target was archived before (hex target and the commit it peels to).
    Known(String, String),
    /// The tree was archived before.
    Existing(Origin, ArchivedTree),
    /// A new tree, walked.
    New(Origin, crate::tree::Archived),
}

/// The tag of an archive commit.
pub fn tag_for(commit: &str) -> String {
    format!("cairn-{commit}")
}

/// The top directory of the tarball of tree `tree_hex` of `name`: `<name>-<tag>`.
fn tarball_prefix(name: &str, tree_hex: &str) -> String {
    let commit = crate::pack::object_id(
        crate::pack::Kind::Commit,
        &crate::tree::archive_commit(tree_hex),
    );
    format!("{name}-{}", tag_for(&hex::encode(commit)))
}

/// Which archiver runs an operation: the one for its name, as the operation's
/// owner may use it now (a private archive repository's, or refused).
#[async_trait::async_trait]
pub trait Destinations: Send + Sync {
    /// The archiver for `op`.
    async fn archiver_for(&self, op: &Operation) -> Result<Archiver, ArchiveError>;
}

/// Every name public: the archiver as it is.
#[async_trait::async_trait]
impl Destinations for Archiver {
    async fn archiver_for(&self, _op: &Operation) -> Result<Archiver, ArchiveError> {
        Ok(self.clone())
    }
}

/// Destinations as archive repositories decide them: a name no repository record
/// claims is public; a private repository's archives go under its prefix, for an
/// owner (or admin) as the operation owner's account is now: one removed from the
/// owners since the request was accepted is refused.
pub struct RepositoryDestinations {
    /// The archiver of public names.
    pub public: Archiver,
    /// Repository records.
    pub repositories: Arc<dyn cairn_core::repositories::RepositoryStore>,
    /// Accounts (role and selectors of an operation's owner).
    pub users: Arc<dyn cairn_core::ports::UserDirectory>,
    /// The API's URL (stage included), for private archives' links.
    pub api_url: Option<String>,
}

#[async_trait::async_trait]
impl Destinations for RepositoryDestinations {
    async fn archiver_for(&self, op: &Operation) -> Result<Archiver, ArchiveError> {
        use cairn_core::repositories::{Intent, archive_record, check_archive};
        let Some(record) = archive_record(self.repositories.as_ref(), &op.name).await? else {
            return self.public.for_repository(None, None);
        };
        let owner = self
            .users
            .get_user(&op.owner)
            .await?
            .map(|u| cairn_core::auth::Principal {
                selectors: u.parsed_selectors(),
                ..cairn_core::auth::Principal::with_role(&u.name, u.role)
            })
            .ok_or_else(|| {
                ArchiveError::Forbidden(format!("account {} no longer exists", op.owner))
            })?;
        check_archive(
            &record,
            &owner,
            Intent::Write(cairn_core::access::Action::Archive),
        )?;
        self.public
            .for_repository(Some(&record), self.api_url.as_deref())
    }
}

impl Archiver {
    /// The archiver for archive repository `record` (`None`: a name no repository
    /// record claims, public): a private repository's files are written under its
    /// `private/<storage>/` prefix and linked through the API's read path,
    /// `<api_url>/v1/files/…` (`api_url` ends with the stage). Its catalog writes
    /// are for the record's claim (see [`crate::model::Claim`]).
    pub fn for_repository(
        &self,
        record: Option<&cairn_core::repositories::Repository>,
        api_url: Option<&str>,
    ) -> Result<Archiver, ArchiveError> {
        let catalog = self.catalog.under(crate::model::Claim::of(record));
        let Some(prefix) = record.and_then(|r| r.private_prefix()) else {
            return Ok(Archiver {
                catalog,
                ..self.clone()
            });
        };
        let api = api_url.ok_or_else(|| {
            ArchiveError::Internal("no API URL to link a private archive's files to".into())
        })?;
        let mut settings = self.settings.clone();
        settings.archive_base_url = format!("{}/v1/files", api.trim_end_matches('/'));
        Ok(Archiver {
            catalog,
            files: Arc::new(cairn_core::ports::Prefixed::new(self.files.clone(), prefix)),
            workspaces: self.workspaces.clone(),
            settings,
        })
    }

    /// The readonly URL of repository `name`.
    pub fn readonly_url(&self, name: &str) -> String {
        format!(
            "{}/{}",
            self.settings.archive_base_url.trim_end_matches('/'),
            layout::repo_prefix(name)
        )
    }

    /// The readonly URL of the one-tag repository of `tag`.
    pub fn tree_url(&self, name: &str, tag: &str) -> String {
        format!(
            "{}/{}",
            self.settings.archive_base_url.trim_end_matches('/'),
            layout::tree_repo_prefix(name, tag)
        )
    }

    /// The public URL of the tarball of `tag`.
    pub fn tarball_url(&self, name: &str, tag: &str) -> String {
        format!(
            "{}/{}",
            self.settings.archive_base_url.trim_end_matches('/'),
            layout::tarball_key(name, tag)
        )
    }

    /// The 200 body of an archive request.
    pub fn archive_body(&self, t: &ArchivedTree, origin: Value, created: bool) -> Value {
        json!({
            "name": t.name,
            "tag": t.tag,
            "commit": t.commit,
            "tree": t.tree,
            "swhid": format!("swh:1:dir:{}", t.tree),
            "url": {"readonly": self.readonly_url(&t.name), "tree": self.tree_url(&t.name, &t.tag)},
            "tarball": self.tarball_url(&t.name, &t.tag),
            "origin": origin,
            "submodules": t.submodules,
            "files": t.files,
            "created": created,
        })
    }

    /// Archives the tree `req.reference` names at `req.url` as repository `req.name`.
    #[tracing::instrument(skip_all, fields(name = %req.name, url = %req.url, reference = %req.reference))]
    pub async fn archive(&self, req: &ArchiveRequest) -> Result<Value, ArchiveError> {
        req.validate()?;
        let url = check_origin(&req.url, &self.settings.policy).await?;
        let origin = |commit: &str| json!({"url": req.url, "ref": req.reference, "commit": commit});

        // A commit id seen before needs no network at all.
        if is_commit_id(&req.reference) {
            let id = req.reference.to_ascii_lowercase();
            if let Some(found) = self.known(&req.name, &id).await? {
                return Ok(self.archive_body(&found, origin(&id), false));
            }
        }

        // gix repositories are not Send: fetch and walk happen in one blocking task,
        // which asks the catalog (on the runtime) what it already has.
        let (settings, reference) = (self.settings.clone(), req.reference.clone());
        let (catalog, name) = (self.catalog.clone(), req.name.clone());
        let runtime = tokio::runtime::Handle::current();
        let step = tokio::task::spawn_blocking(move || {
            // A ref whose target was archived before: answered after the ref listing.
            // A catalog error is not "no": it is remembered and fails the request
            // (retried by the queue) instead of fetching as if nothing were archived.
            let lookup_error = std::cell::RefCell::new(None);
            let known = |target: &[u8; 20]| match runtime
                .block_on(catalog.origin_tree(&name, &hex::encode(target)))
            {
                Ok(found) => found.is_some(),
                Err(e) => {
                    lookup_error.borrow_mut().get_or_insert(e);
                    true
                }
            };
            let fetched = origin::fetch(
                &url,
                &reference,
                History::Tip,
                settings.fetch,
                &settings.policy,
                &settings.scratch,
                &known,
            );
            if let Some(e) = lookup_error.borrow_mut().take() {
                return Err(e.into());
            }
            let fetched = match fetched? {
                origin::Fetch::Known { target, commit } => {
                    return Ok(Step::Known(hex::encode(target), hex::encode(commit)));
                }
                origin::Fetch::Fetched(f) => f,
            };
            fetch_metrics(&fetched, "archive", &name);
            let origin = Origin {
                target: hex::encode(fetched.target),
                commit: hex::encode(fetched.commit),
                tree: hex::encode(fetched.tree),
            };
            if let Some(found) = runtime.block_on(catalog.tree(&name, &origin.tree))? {
                return Ok(Step::Existing(origin, found));
            }
            let prefix = tarball_prefix(&name, &origin.tree);
            let archived = archive_tree(&fetched.repo, fetched.tree, &prefix, settings.tree)?;
            Ok::<_, ArchiveError>(Step::New(origin, archived))
        })
        .await
        .map_err(|e| ArchiveError::Internal(format!("fetch task: {e}")))??;
        let (found_origin, archived) = match step {
            Step::Known(target, commit) => {
                return match self.known(&req.name, &target).await? {
                    Some(found) => Ok(self.archive_body(&found, origin(&commit), false)),
                    None => Err(ArchiveError::Internal(format!(
                        "origin object {target} was known, then not"
                    ))),
                };
            }
            Step::Existing(o, found) => {
                self.ensure_published(&found).await?;
                self.remember(&req.name, &o).await?;
                return Ok(self.archive_body(&found, origin(&o.commit), false));
            }
            Step::New(o, archived) => (o, archived),
        };
        let origin_commit = found_origin.commit.clone();
        let record = ArchivedTree {
            origin_url: req.url.clone(),
            origin_ref: req.reference.clone(),
            origin_commit: origin_commit.clone(),
            ..self.new_tree(&req.name, &found_origin.tree, &archived)
        };
        let (record, created) = self.store_new(record, archived).await?;
        self.remember(&req.name, &found_origin).await?;
        tracing::info!(tag = %record.tag, created, "archived");
        Ok(self.archive_body(&record, origin(&origin_commit), created))
    }

    /// The record of a tree just walked, origin fields empty.
    fn new_tree(&self, name: &str, tree: &str, archived: &crate::tree::Archived) -> ArchivedTree {
        ArchivedTree {
            name: name.to_string(),
            tree: tree.to_string(),
            commit: archived.commit.clone(),
            tag: tag_for(&archived.commit),
            pack: archived.pack.stem(),
            origin_url: String::new(),
            origin_ref: String::new(),
            origin_commit: String::new(),
            submodules: archived.submodules.clone(),
            files: archived.files,
            created_at: now(),
            published: false,
            made_by: None,
        }
    }

    /// Stores a tree just walked and claims its record; the record that holds the
    /// tree then (another request's, if it claimed the tree first), and whether it
    /// is this one.
    async fn store_new(
        &self,
        record: ArchivedTree,
        archived: crate::tree::Archived,
    ) -> Result<(ArchivedTree, bool), ArchiveError> {
        let (name, tag) = (record.name.as_str(), record.tag.as_str());
        // Immutable files first: a claimed tree always has its pack, its own
        // repository and its tarball.
        self.store_pack(name, &archived.pack).await?;
        self.store_tree_repo(name, tag, &archived.commit, &archived.pack.stem())
            .await?;
        self.files
            .put_new(
                &layout::tarball_key(name, tag),
                Bytes::from(archived.tarball),
                "application/gzip",
            )
            .await?;
        let (record, created) = match self.catalog.claim_tree(&record).await? {
            None => (record, true),
            Some(winner) => (winner, false),
        };
        self.ensure_published(&record).await?;
        Ok((record, created))
    }

    /// Archives under `req.name` the tree of a build job's workspace: `tarball`, the
    /// blob `req.sha256` (checked here). The same tree gets the same tag as from an
    /// origin; the answer's `origin` is the job.
    #[tracing::instrument(skip_all, fields(name = %req.name, build = %req.made_by.build))]
    pub async fn archive_workspace(
        &self,
        req: &WorkspaceRequest,
        tarball: Bytes,
    ) -> Result<Value, ArchiveError> {
        use sha2::Digest;
        if hex::encode(sha2::Sha256::digest(&tarball)) != req.sha256 {
            return Err(ArchiveError::Internal(format!(
                "the stored workspace sha256:{} holds other bytes",
                req.sha256
            )));
        }
        let (catalog, name, limits) = (self.catalog.clone(), req.name.clone(), self.settings.tree);
        let runtime = tokio::runtime::Handle::current();
        let step = tokio::task::spawn_blocking(move || {
            let (tree, source) = crate::import::tree_of_tarball(&tarball, limits)?;
            let tree_hex = hex::encode(tree);
            if let Some(found) = runtime.block_on(catalog.tree(&name, &tree_hex))? {
                return Ok(Err(found));
            }
            let archived = archive_tree(&source, tree, &tarball_prefix(&name, &tree_hex), limits)?;
            Ok::<_, ArchiveError>(Ok((tree_hex, archived)))
        })
        .await
        .map_err(|e| ArchiveError::Internal(format!("workspace task: {e}")))??;
        let origin = json!({"build": req.made_by});
        let (tree, archived) = match step {
            Err(found) => {
                self.ensure_published(&found).await?;
                return Ok(self.archive_body(&found, origin, false));
            }
            Ok(new) => new,
        };
        let record = ArchivedTree {
            made_by: Some(req.made_by.clone()),
            ..self.new_tree(&req.name, &tree, &archived)
        };
        let (record, created) = self.store_new(record, archived).await?;
        tracing::info!(tag = %record.tag, created, "workspace archived");
        Ok(self.archive_body(&record, origin, created))
    }

    /// Answers a request for a tree archived before without queueing it: a known
    /// commit id needs no network, a named ref one ref listing (bounded by `listing`).
    /// `None` when the worker has to fetch; an unknown ref is an error here already.
    /// `req` must be validated and `url` the result of [`check_origin`] on `req.url`
    /// (the API has both before it gets here; resolving again would cost a DNS query).
    pub async fn answer_known(
        &self,
        req: &ArchiveRequest,
        url: url::Url,
        listing: std::time::Duration,
    ) -> Result<Option<Value>, ArchiveError> {
        let origin = |commit: &str| json!({"url": req.url, "ref": req.reference, "commit": commit});
        if is_commit_id(&req.reference) {
            let id = req.reference.to_ascii_lowercase();
            return Ok(self
                .known(&req.name, &id)
                .await?
                .map(|found| self.archive_body(&found, origin(&id), false)));
        }
        let mut settings = self.settings.clone();
        settings.fetch.timeout = listing;
        let reference = req.reference.clone();
        let listed = tokio::task::spawn_blocking(move || {
            // `known` says yes to everything: list the refs, download nothing.
            match origin::fetch(
                &url,
                &reference,
                History::Tip,
                settings.fetch,
                &settings.policy,
                &settings.scratch,
                &|_| true,
            )? {
                origin::Fetch::Known { target, commit } => {
                    Ok((hex::encode(target), hex::encode(commit)))
                }
                origin::Fetch::Fetched(_) => {
                    Err(ArchiveError::Internal("listing downloaded objects".into()))
                }
            }
        });
        let (target, commit) = match tokio::time::timeout(listing, listed).await {
            Ok(joined) => {
                match joined.map_err(|e| ArchiveError::Internal(format!("listing task: {e}")))? {
                    Ok(found) => found,
                    // A slow or flaky origin: the worker will try with its own, longer limits.
                    Err(ArchiveError::Timeout(_) | ArchiveError::Fetch { .. }) => return Ok(None),
                    Err(e) => return Err(e),
                }
            }
            Err(_) => return Ok(None),
        };
        Ok(self
            .known(&req.name, &target)
            .await?
            .map(|found| self.archive_body(&found, origin(&commit), false)))
    }

    async fn remember(&self, name: &str, o: &Origin) -> Result<(), ArchiveError> {
        self.catalog
            .remember_origin(name, &o.commit, &o.tree)
            .await?;
        if o.target != o.commit {
            self.catalog
                .remember_origin(name, &o.target, &o.tree)
                .await?;
        }
        Ok(())
    }

    async fn known(
        &self,
        name: &str,
        origin_object: &str,
    ) -> Result<Option<ArchivedTree>, ArchiveError> {
        let Some(tree) = self.catalog.origin_tree(name, origin_object).await? else {
            return Ok(None);
        };
        let Some(found) = self.catalog.tree(name, &tree).await? else {
            return Ok(None);
        };
        self.ensure_published(&found).await?;
        Ok(Some(found))
    }

    async fn store_pack(&self, name: &str, pack: &Pack) -> Result<(), ArchiveError> {
        let stem = pack.stem();
        // The index goes after the pack: a reader that sees an index finds its pack.
        let files = [
            ("pack", &pack.pack, "application/x-git-packed-objects"),
            ("idx", &pack.idx, "application/x-git-packed-objects-toc"),
        ];
        for (ext, body, content_type) in files {
            self.files
                .put_new(
                    &layout::pack_key(name, &stem, ext),
                    body.clone(),
                    content_type,
                )
                .await?;
        }
        self.catalog
            .add_pack(
                name,
                &PackRecord {
                    stem,
                    objects: pack.objects as u64,
                    bytes: pack.pack.len() as u64,
                },
            )
            .await?;
        Ok(())
    }

    /// The one-tag repository of an archived tree: the same pack (copied inside the
    /// bucket) under `trees/<name>/<tag>.git`, with index files naming only that tag.
    /// A clone of it downloads that pack and its index and nothing else, however
    /// many trees the name holds. Every file is written once.
    async fn store_tree_repo(
        &self,
        name: &str,
        tag: &str,
        commit: &str,
        stem: &str,
    ) -> Result<(), ArchiveError> {
        // Only a new tree gets here; two workers racing on one tree copy the same bytes.
        for ext in ["pack", "idx"] {
            self.files
                .copy(
                    &layout::pack_key(name, stem, ext),
                    &layout::tree_pack_key(name, tag, stem, ext),
                )
                .await?;
        }
        let refs = [PublishedRef {
            name: format!("refs/tags/{tag}"),
            target: commit.to_owned(),
            peeled: None,
            created_at: String::new(),
        }];
        let prefix = layout::tree_repo_prefix(name, tag);
        let files = [
            (
                format!("{prefix}/objects/info/packs"),
                layout::info_packs([stem]),
            ),
            (format!("{prefix}/info/refs"), layout::info_refs(&refs)),
            (format!("{prefix}/HEAD"), layout::head(&refs)),
        ];
        for (key, text) in files {
            self.files
                .put_new(&key, Bytes::from(text), "text/plain; charset=utf-8")
                .await?;
        }
        Ok(())
    }

    /// Makes sure the tree's tag is a ref and in the index files (a worker may have
    /// stopped between the claim and the publication).
    async fn ensure_published(&self, t: &ArchivedTree) -> Result<(), ArchiveError> {
        if t.published {
            return Ok(());
        }
        let r = PublishedRef {
            name: format!("refs/tags/{}", t.tag),
            target: t.commit.clone(),
            peeled: None,
            created_at: t.created_at.clone(),
        };
        if let RefWrite::Conflict(existing) = self.catalog.put_ref(&t.name, &r).await? {
            return Err(ArchiveError::Internal(format!(
                "{} already points to {}",
                existing.name, existing.target
            )));
        }
        self.publish(&t.name).await?;
        let event = cairn_core::events::NewEvent::new(
            "archive.created",
            cairn_core::events::Subject::archive(&t.name),
            serde_json::json!({
                "name": t.name, "tag": t.tag, "commit": t.commit, "tree": t.tree,
                "swhid": format!("swh:1:dir:{}", t.tree),
                "readonly_url": self.readonly_url(&t.name),
                "tarball_url": self.tarball_url(&t.name, &t.tag),
                "origin_url": t.origin_url, "origin_ref": t.origin_ref,
                "origin_commit": t.origin_commit, "files": t.files,
                "build": t.made_by,
            }),
        );
        self.catalog
            .mark_published(&t.name, &t.tree, &event)
            .await?;
        Ok(())
    }

    /// Rewrites `info/refs`, `objects/info/packs` and `HEAD` of `name` from the catalog.
    pub async fn publish(&self, name: &str) -> Result<(), ArchiveError> {
        let (refs, packs) = tokio::try_join!(self.catalog.refs(name), self.catalog.packs(name))?;
        // Packs before refs: a client that sees a new ref finds its objects.
        let files = [
            (
                layout::info_packs_key(name),
                layout::info_packs(packs.iter().map(|p| p.stem.as_str())),
            ),
            (layout::info_refs_key(name), layout::info_refs(&refs)),
            (layout::head_key(name), layout::head(&refs)),
        ];
        for (key, text) in files {
            self.files
                .put(&key, Bytes::from(text), "text/plain; charset=utf-8")
                .await?;
        }
        Ok(())
    }

    /// Repour's `/clone`: pushes the ref with its history into repository `name`.
    #[tracing::instrument(skip_all, fields(url = %req.origin_repo_url, reference = %req.reference))]
    pub async fn clone_ref(&self, req: &CloneRequest) -> Result<Value, ArchiveError> {
        req.validate()?;
        let name = req.target_name()?;
        let url = check_origin(&req.origin_repo_url, &self.settings.policy).await?;
        let (settings, reference) = (self.settings.clone(), req.reference.clone());
        let target_name = name.clone();
        let (refname, target, peeled, pack) = tokio::task::spawn_blocking(move || {
            let origin::Fetch::Fetched(fetched) = origin::fetch(
                &url,
                &reference,
                History::Full,
                settings.fetch,
                &settings.policy,
                &settings.scratch,
                &|_| false,
            )?
            else {
                return Err(ArchiveError::Internal("clone fetch skipped".into()));
            };
            fetch_metrics(&fetched, "clone", &target_name);
            let pack =
                origin::pack_history(&fetched.repo, fetched.target, settings.tree.max_objects)?;
            let refname = match &fetched.refname {
                Some(r) => r.clone(),
                None => format!("refs/heads/branch-{}", hex::encode(fetched.commit)),
            };
            let peeled = (fetched.target != fetched.commit).then(|| hex::encode(fetched.commit));
            Ok::<_, ArchiveError>((refname, hex::encode(fetched.target), peeled, pack))
        })
        .await
        .map_err(|e| ArchiveError::Internal(format!("clone task: {e}")))??;

        let r = PublishedRef {
            name: refname.clone(),
            target: target.clone(),
            peeled: peeled.clone(),
            created_at: now(),
        };
        // Refuse a moved ref before writing anything.
        if let Some(existing) = self
            .catalog
            .refs(&name)
            .await?
            .into_iter()
            .find(|e| e.name == refname)
            && existing.target != target
        {
            return Err(moved(&existing, &target));
        }
        self.store_pack(&name, &pack).await?;
        match self.catalog.put_ref(&name, &r).await? {
            RefWrite::Conflict(existing) => return Err(moved(&existing, &target)),
            RefWrite::Created | RefWrite::Unchanged => {}
        }
        self.publish(&name).await?;
        let short = refname
            .strip_prefix("refs/heads/")
            .or_else(|| refname.strip_prefix("refs/tags/"))
            .unwrap_or(&refname);
        Ok(json!({
            "type": "git",
            "ref": short,
            "refname": refname,
            "originRepoUrl": req.origin_repo_url,
            "targetRepoUrl": self.readonly_url(&name),
            "commit": peeled.unwrap_or(target),
        }))
    }

    /// `GET /v1/archives/{name}`.
    pub async fn describe(&self, name: &str) -> Result<Value, ArchiveError> {
        crate::request::validate_name(name)?;
        let (trees, refs) = tokio::try_join!(self.catalog.trees(name), self.catalog.refs(name))?;
        if trees.is_empty() && refs.is_empty() {
            return Err(ArchiveError::NotFound(format!(
                "no repository named '{name}'"
            )));
        }
        let tags: Vec<Value> = trees
            .iter()
            .map(|t| {
                json!({"tag": t.tag, "commit": t.commit, "tree": t.tree,
                       "swhid": format!("swh:1:dir:{}", t.tree), "created_at": t.created_at,
                       "origin": {"url": t.origin_url, "ref": t.origin_ref, "commit": t.origin_commit},
                       "tarball": self.tarball_url(name, &t.tag),
                       "url": self.tree_url(name, &t.tag)})
            })
            .collect();
        Ok(json!({
            "name": name,
            "url": {"readonly": self.readonly_url(name)},
            "archives": tags,
            "refs": refs.iter().map(|r| json!({"name": r.name, "target": r.target, "peeled": r.peeled})).collect::<Vec<_>>(),
        }))
    }
}

fn moved(existing: &PublishedRef, target: &str) -> ArchiveError {
    ArchiveError::Conflict(format!(
        "{} is already published at {}; Cairn never moves a published ref (the origin now has {target})",
        existing.name, existing.target
    ))
}

/// Operations: accepting (API side), running (worker side), cancelling, showing.
pub struct Operations {
    /// Records.
    pub store: Arc<dyn OperationStore>,
    /// To the archive worker.
    pub queue: Arc<dyn OperationQueue>,
    /// To the callback worker.
    pub callbacks: Arc<dyn CallbackQueue>,
}

impl Operations {
    /// Records and queues a new operation.
    pub async fn submit(
        &self,
        kind: OperationKind,
        name: &str,
        request: Value,
        callback: Option<cairn_callback::Callback>,
        owner: &str,
    ) -> Result<Operation, ArchiveError> {
        let at = now();
        let op = Operation {
            id: uuid::Uuid::new_v4().to_string(),
            kind,
            status: OperationStatus::Queued,
            name: name.to_owned(),
            request,
            owner: owner.to_owned(),
            delivery: callback.as_ref().map(|_| "pending".to_owned()),
            callback,
            http_status: None,
            result: None,
            created_at: at.clone(),
            updated_at: at,
        };
        self.store.create(&op).await?;
        self.queue.submit(&op).await?;
        Ok(op)
    }

    /// Runs operation `id` (worker side). A cancelled or finished operation is
    /// skipped; a running one (a redelivered message) runs again, which is safe:
    /// every write is idempotent or conditional.
    pub async fn run(&self, id: &str, archivers: &dyn Destinations) -> Result<(), ArchiveError> {
        let op = match self.store.start(id).await? {
            Transition::Done(op) => op,
            Transition::Refused(op) if op.status == OperationStatus::Running => op,
            Transition::Refused(op) => {
                tracing::info!(id, status = op.status.as_str(), "not running: not queued");
                return Ok(());
            }
            Transition::Missing => {
                tracing::warn!(id, "operation record missing; message dropped");
                return Ok(());
            }
        };
        let outcome = match archivers.archiver_for(&op).await {
            Ok(archiver) => Self::perform(&op, &archiver).await,
            Err(e) => Err(e),
        };
        let (status, http_status, body) = match outcome {
            Ok(body) => (OperationStatus::Succeeded, 200, body),
            Err(ArchiveError::Store(e)) => {
                // Storage trouble is retried by the queue, not reported as a result.
                return Err(ArchiveError::Store(e));
            }
            Err(e) => {
                if e.http_status() >= 500 {
                    tracing::error!(id, error = %e, "operation failed");
                } else {
                    tracing::info!(id, error = %e, "operation refused");
                }
                (OperationStatus::Failed, e.http_status(), e.problem())
            }
        };
        let event = cairn_core::events::NewEvent::new(
            "operation.finished",
            cairn_core::events::Subject::operation(id),
            serde_json::json!({
                "id": id, "kind": op.kind, "name": op.name, "owner": op.owner,
                "status": status, "http_status": http_status,
            }),
        );
        self.store
            .finish(id, status, http_status, &body, &event)
            .await?;
        if op.callback.is_some() {
            self.callbacks.deliver(id).await?;
        }
        Ok(())
    }

    /// Runs `op` with `archiver`.
    async fn perform(op: &Operation, archiver: &Archiver) -> Result<Value, ArchiveError> {
        match op.kind {
            OperationKind::Archive => {
                match serde_json::from_value::<ArchiveRequest>(op.request.clone()) {
                    Ok(req) => archiver.archive(&req).await,
                    Err(e) => Err(ArchiveError::Invalid(e.to_string())),
                }
            }
            OperationKind::Clone => {
                match serde_json::from_value::<CloneRequest>(op.request.clone()) {
                    Ok(req) => archiver.clone_ref(&req).await,
                    Err(e) => Err(ArchiveError::Invalid(e.to_string())),
                }
            }
            OperationKind::Workspace => {
                let req = serde_json::from_value::<WorkspaceRequest>(op.request.clone())
                    .map_err(|e| ArchiveError::Invalid(e.to_string()))?;
                let Some(store) = &archiver.workspaces else {
                    return Err(ArchiveError::Internal(
                        "no build bucket to read workspaces from (CAIRN_BUILD_BUCKET)".into(),
                    ));
                };
                let key =
                    cairn_core::builds::artifacts::blob_key(&req.made_by.project, &req.sha256);
                // Bounded like a fetch from an origin: the pack bytes received.
                let max = archiver.settings.fetch.max_bytes;
                let tarball = match store.get_within(&key, max).await? {
                    None => {
                        return Err(ArchiveError::NotFound(format!(
                            "project {} has no blob sha256:{}",
                            req.made_by.project, req.sha256
                        )));
                    }
                    Some(Err(size)) => {
                        return Err(ArchiveError::Invalid(format!(
                            "the workspace's .tar.gz is {size} bytes: more than the archive \
                             takes ({max}, ArchiveMaxBytes)"
                        )));
                    }
                    Some(Ok(bytes)) => bytes,
                };
                archiver.archive_workspace(&req, tarball).await
            }
        }
    }

    /// The operation `id` if `who` owns it. Another account's operation, and an id
    /// that is not one (operation ids are UUIDs), are answered as not found.
    pub async fn owned(&self, id: &str, who: &str) -> Result<Operation, ArchiveError> {
        let not_found = || ArchiveError::NotFound(format!("no operation {id}"));
        if uuid::Uuid::try_parse(id).is_err() {
            return Err(ArchiveError::NotFound("no such operation".into()));
        }
        self.store
            .get(id)
            .await?
            .filter(|op| op.owner == who)
            .ok_or_else(not_found)
    }

    /// Cancels a queued operation of `by`'s.
    pub async fn cancel(&self, id: &str, by: &str) -> Result<Operation, ArchiveError> {
        let op = self.owned(id, by).await?;
        let result = json!({
            "type": "about:blank",
            "title": "cancelled",
            "status": 409,
            "detail": format!("operation {id} was cancelled by {by} before it ran"),
        });
        let event = cairn_core::events::NewEvent::new(
            "operation.finished",
            cairn_core::events::Subject::operation(id),
            serde_json::json!({
                "id": id, "kind": op.kind, "name": op.name, "owner": op.owner,
                "status": OperationStatus::Cancelled, "http_status": 409,
            }),
        );
        match self.store.cancel(id, &result, &event).await? {
            Transition::Done(op) => {
                if op.callback.is_some() {
                    self.callbacks.deliver(id).await?;
                }
                Ok(op)
            }
            Transition::Refused(op) => Err(ArchiveError::Conflict(format!(
                "operation {id} is {}: only a queued operation can be cancelled",
                op.status.as_str()
            ))),
            Transition::Missing => Err(ArchiveError::NotFound(format!("no operation {id}"))),
        }
    }

    /// `GET /v1/operations/{id}`, for the operation's owner.
    pub async fn show(&self, id: &str, who: &str) -> Result<Value, ArchiveError> {
        let op = self.owned(id, who).await?;
        let attempts = if op.callback.is_some() {
            self.store.attempts(id).await?
        } else {
            Vec::new()
        };
        Ok(operation_view(&op, &attempts))
    }
}

/// The public view of an operation.
pub fn operation_view(op: &Operation, attempts: &[crate::model::AttemptRecord]) -> Value {
    let mut v = json!({
        "id": op.id,
        "kind": op.kind,
        "status": op.status,
        "name": op.name,
        "http_status": op.http_status,
        "result": op.result,
        "request": op.request,
        "owner": op.owner,
        "created_at": op.created_at,
        "updated_at": op.updated_at,
    });
    if let Some(cb) = &op.callback {
        v["callback"] = json!({
            "url": cb.url().as_str(),
            "method": cb.method().as_str(),
            "delivery": op.delivery,
            "delivered": op.delivery.as_deref() == Some("delivered"),
            "attempts": attempts,
        });
    }
    v
}

/// The fetch's size and time, as a log line and as metrics.
fn fetch_metrics(fetched: &origin::Fetched, operation: &str, name: &str) {
    tracing::info!(
        bytes = fetched.bytes,
        fetch_ms = fetched.elapsed_ms as u64,
        "fetched from the origin"
    );
    cairn_core::metrics::Metrics::new()
        .bytes("ArchiveFetchBytes", fetched.bytes)
        .millis("ArchiveFetchDuration", fetched.elapsed_ms)
        .property("operation", operation)
        .property("archive", name)
        .emit();
}
