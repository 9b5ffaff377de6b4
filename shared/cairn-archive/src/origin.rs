//! Fetching from an untrusted origin with gix: smart HTTP(S) only, into a scratch
//! bare repository with isolated configuration (no hooks, filters or checkout ever
//! run), with limits on bytes and time.
//!
//! Every connection goes through a resolver that applies the [`AddressPolicy`]
//! to the addresses it returns, so a DNS answer that changes between the API's check
//! and the fetch (rebinding) still cannot reach a private address. Redirects are not
//! followed and proxies from the environment are ignored.

use crate::ArchiveError;
use crate::pack::Kind;
use crate::request::is_commit_id;
use crate::tree::ObjectSource;
use cairn_callback::AddressPolicy;
use gix::protocol::transport::client::blocking_io::http;
use gix::remote::Direction;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use url::Url;

/// Bounds on one fetch.
#[derive(Debug, Clone, Copy)]
pub struct FetchLimits {
    /// Most bytes the received pack may have.
    pub max_bytes: u64,
    /// Longest the whole fetch may take.
    pub timeout: Duration,
}

/// How much history to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum History {
    /// Only the commit the ref names (depth 1): an archive needs one tree.
    Tip,
    /// Everything reachable: `/clone` pushes history as it is.
    Full,
}

/// A fetched ref, with the scratch repository holding its objects (deleted on drop).
pub struct Fetched {
    /// The scratch repository.
    pub repo: gix::Repository,
    /// The full remote ref name that matched (`refs/heads/main`), `None` for a commit id.
    pub refname: Option<String>,
    /// What the ref points to: a commit, or an annotated tag object.
    pub target: [u8; 20],
    /// The commit it peels to.
    pub commit: [u8; 20],
    /// The commit's tree.
    pub tree: [u8; 20],
    /// Bytes received (the packs the fetch wrote).
    pub bytes: u64,
    /// Milliseconds from connecting to the last byte.
    pub elapsed_ms: u128,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for Fetched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetched")
            .field("refname", &self.refname)
            .field("commit", &hex::encode(self.commit))
            .finish_non_exhaustive()
    }
}

/// The fetch refspecs for a user's ref, in order of preference: a tag wins over a
/// branch of the same name, as in `git rev-parse`.
fn refspecs(reference: &str) -> Vec<String> {
    if is_commit_id(reference) {
        vec![reference.to_ascii_lowercase()]
    } else if reference.starts_with("refs/") {
        vec![format!("+{reference}:{reference}")]
    } else {
        vec![
            format!("+refs/tags/{reference}:refs/tags/{reference}"),
            format!("+refs/heads/{reference}:refs/heads/{reference}"),
        ]
    }
}

/// Resolves only the origin's host, and only to addresses the policy accepts.
struct PolicyResolver {
    host: String,
    port: u16,
    policy: AddressPolicy,
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let asked = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        let host = self.host.clone();
        let port = self.port;
        let policy = self.policy.clone();
        Box::pin(async move {
            if asked != host {
                return Err(
                    format!("{asked}: only the origin host {host} may be contacted").into(),
                );
            }
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((asked.as_str(), port))
                .await?
                .collect();
            policy.check_resolved(&asked, &addrs)?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

fn transport_options(url: &Url, policy: &AddressPolicy, timeout: Duration) -> http::Options {
    let resolver = Arc::new(PolicyResolver {
        host: url
            .host_str()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase(),
        port: url.port_or_known_default().unwrap_or(443),
        policy: policy.clone(),
    });
    let backend = http::reqwest::Options {
        configure_client: Some(Box::new(move |builder| {
            Ok(builder
                .dns_resolver(resolver.clone())
                .no_proxy()
                .timeout(timeout))
        })),
        configure_request: None,
    };
    http::Options {
        follow_redirects: http::options::FollowRedirects::None,
        connect_timeout: Some(Duration::from_secs(10)),
        user_agent: Some(concat!("cairn-archive/", env!("CARGO_PKG_VERSION")).into()),
        backend: Some(Arc::new(Mutex::new(backend))),
        ..Default::default()
    }
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Watches a fetch: interrupts it when the pack directory outgrows the limit or
/// the time is up, and remembers which.
struct Watchdog {
    done: Arc<AtomicBool>,
    tripped: Arc<Mutex<Option<ArchiveError>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    fn start(
        pack_dir: std::path::PathBuf,
        limits: FetchLimits,
        interrupt: Arc<AtomicBool>,
    ) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let tripped = Arc::new(Mutex::new(None));
        let (d, t) = (done.clone(), tripped.clone());
        let started = Instant::now();
        let thread = std::thread::spawn(move || {
            while !d.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(25));
                let reason = if started.elapsed() > limits.timeout {
                    Some(ArchiveError::Timeout(limits.timeout.as_secs()))
                } else if dir_size(&pack_dir) > limits.max_bytes {
                    Some(ArchiveError::TooLarge(limits.max_bytes))
                } else {
                    None
                };
                if let Some(reason) = reason {
                    *t.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
                    interrupt.store(true, Ordering::SeqCst);
                    return;
                }
            }
        });
        Watchdog {
            done,
            tripped,
            thread: Some(thread),
        }
    }

    /// Stops watching; the limit that interrupted the fetch, if one did.
    fn stop(mut self) -> Option<ArchiveError> {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.tripped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

fn oid(id: &gix::oid) -> [u8; 20] {
    let mut out = [0u8; 20];
    out.copy_from_slice(id.as_bytes());
    out
}

/// What [`fetch`] did.
#[derive(Debug)]
pub enum Fetch {
    /// The ref's target was already known (`known` said so): nothing was downloaded.
    Known {
        /// What the ref points to.
        target: [u8; 20],
        /// The commit it peels to, as the origin advertised it.
        commit: [u8; 20],
    },
    /// The objects were downloaded.
    Fetched(Box<Fetched>),
}

/// Fetches `reference` from `url` into a fresh scratch repository under `scratch`.
///
/// After listing the origin's refs, `known` is asked about the ref's target; if it
/// answers true nothing is downloaded (a repeat request costs one ref listing).
/// `url` must already have passed [`crate::request::check_origin`]; the connection
/// re-applies `policy` to every address it resolves.
pub fn fetch(
    url: &Url,
    reference: &str,
    history: History,
    limits: FetchLimits,
    policy: &AddressPolicy,
    scratch: &Path,
    known: &dyn Fn(&[u8; 20]) -> bool,
) -> Result<Fetch, ArchiveError> {
    let internal =
        |what: &str, e: &dyn std::fmt::Display| ArchiveError::Internal(format!("{what}: {e}"));
    let failed = |e: &dyn std::fmt::Display| ArchiveError::Fetch {
        url: url.to_string(),
        reason: format!("{e}"),
    };
    std::fs::create_dir_all(scratch).map_err(|e| internal("scratch directory", &e))?;
    let dir = tempfile::Builder::new()
        .prefix("cairn-fetch-")
        .tempdir_in(scratch)
        .map_err(|e| internal("scratch directory", &e))?;
    gix::init_bare(dir.path()).map_err(|e| internal("init scratch repository", &e))?;
    let repo = gix::open_opts(dir.path(), gix::open::Options::isolated())
        .map_err(|e| internal("open scratch repository", &e))?;

    let specs = refspecs(reference);
    let remote = repo
        .remote_at(url.as_str())
        .map_err(|e| failed(&e))?
        .with_fetch_tags(gix::remote::fetch::Tags::None)
        .with_refspecs(specs.iter().map(String::as_str), Direction::Fetch)
        .map_err(|e| internal("refspec", &e))?;

    let started = std::time::Instant::now();
    let interrupt = Arc::new(AtomicBool::new(false));
    let watchdog = Watchdog::start(dir.path().join("objects/pack"), limits, interrupt.clone());
    let result = (|| {
        let connection = remote
            .connect(Direction::Fetch)
            .map_err(|e| failed(&e))?
            .with_transport_options(Box::new(transport_options(url, policy, limits.timeout)));
        let prepare = connection
            .prepare_fetch(gix::progress::Discard, Default::default())
            .map_err(|e| failed(&e))?;
        let chosen = prepare
            .ref_map()
            .mappings
            .iter()
            .filter_map(|m| {
                let index = match m.spec_index {
                    gix::protocol::fetch::refmap::SpecIndex::ExplicitInRemote(i) => i,
                    gix::protocol::fetch::refmap::SpecIndex::Implicit(_) => return None,
                };
                let (name, target, peeled) = match &m.remote {
                    gix::protocol::fetch::refmap::Source::ObjectId(id) => (None, oid(id), None),
                    gix::protocol::fetch::refmap::Source::Ref(r) => {
                        let (name, target, peeled) = r.unpack();
                        (Some(name.to_string()), oid(target?), peeled.map(oid))
                    }
                };
                Some((index, name, target, peeled))
            })
            .min_by_key(|(index, ..)| *index);
        let Some((_, refname, target, peeled)) = chosen else {
            return Err(ArchiveError::RefNotFound {
                reference: reference.to_owned(),
                url: url.to_string(),
            });
        };
        if refname.is_some() && known(&target) {
            return Ok((refname, target, peeled, false));
        }
        let prepare = match history {
            History::Tip => prepare.with_shallow(gix::remote::fetch::Shallow::DepthAtRemote(
                std::num::NonZeroU32::MIN,
            )),
            History::Full => prepare,
        };
        prepare
            .receive(gix::progress::Discard, &interrupt)
            .map_err(|e| {
                if refname.is_none() {
                    ArchiveError::RefNotFound {
                        reference: reference.to_owned(),
                        url: format!("{url} (or the origin does not serve commits by id: {e})"),
                    }
                } else {
                    failed(&e)
                }
            })?;
        Ok((refname, target, peeled, true))
    })();
    if let Some(limit) = watchdog.stop() {
        return Err(limit);
    }
    let (refname, target, peeled, downloaded) = result?;
    if !downloaded {
        return Ok(Fetch::Known {
            target,
            commit: peeled.unwrap_or(target),
        });
    }
    let elapsed_ms = started.elapsed().as_millis();
    let bytes = dir_size(&dir.path().join("objects/pack"));
    let (commit, tree) = peel(&repo, target)?;
    Ok(Fetch::Fetched(Box::new(Fetched {
        repo,
        refname,
        target,
        commit,
        tree,
        bytes,
        elapsed_ms,
        _dir: dir,
    })))
}

/// Follows annotated tags to a commit; the commit and its tree.
fn peel(repo: &gix::Repository, target: [u8; 20]) -> Result<([u8; 20], [u8; 20]), ArchiveError> {
    let mut id = target;
    for _ in 0..10 {
        let (kind, data) = repo.read(&id)?;
        match kind {
            Kind::Commit => {
                let commit = gix::objs::CommitRef::from_bytes(&data, gix::hash::Kind::Sha1)
                    .map_err(|e| {
                        ArchiveError::BadObject(format!("commit {}: {e}", hex::encode(id)))
                    })?;
                return Ok((id, oid(&commit.tree())));
            }
            Kind::Tag => {
                let tag =
                    gix::objs::TagRef::from_bytes(&data, gix::hash::Kind::Sha1).map_err(|e| {
                        ArchiveError::BadObject(format!("tag {}: {e}", hex::encode(id)))
                    })?;
                id = oid(&tag.target());
            }
            other => {
                return Err(ArchiveError::Invalid(format!(
                    "the ref names a {}, not a commit",
                    other.as_str()
                )));
            }
        }
    }
    Err(ArchiveError::BadObject("tag chain longer than 10".into()))
}

impl ObjectSource for gix::Repository {
    fn read(&self, id: &[u8; 20]) -> Result<(Kind, Vec<u8>), ArchiveError> {
        let object = self
            .find_object(gix::ObjectId::from_bytes_or_panic(id))
            .map_err(|e| ArchiveError::BadObject(format!("{}: {e}", hex::encode(id))))?;
        let kind = match object.kind {
            gix::object::Kind::Commit => Kind::Commit,
            gix::object::Kind::Tree => Kind::Tree,
            gix::object::Kind::Blob => Kind::Blob,
            gix::object::Kind::Tag => Kind::Tag,
        };
        Ok((kind, object.detach().data))
    }
}

/// A pack of every object reachable from `tip` (a commit or an annotated tag):
/// what `/clone` stores, history included.
pub fn pack_history(
    repo: &gix::Repository,
    tip: [u8; 20],
    max_objects: u64,
) -> Result<crate::pack::Pack, ArchiveError> {
    let mut pack = crate::pack::PackBuilder::new();
    let mut stack = vec![tip];
    while let Some(id) = stack.pop() {
        if pack.contains(&id) {
            continue;
        }
        if pack.len() as u64 >= max_objects {
            return Err(ArchiveError::TooManyObjects(max_objects));
        }
        let (kind, data) = repo.read(&id)?;
        if crate::pack::object_id(kind, &data) != id {
            return Err(ArchiveError::BadObject(format!(
                "{} does not hash to its id",
                hex::encode(id)
            )));
        }
        pack.add(id, kind, &data);
        match kind {
            Kind::Commit => {
                let c = gix::objs::CommitRef::from_bytes(&data, gix::hash::Kind::Sha1)
                    .map_err(|e| ArchiveError::BadObject(format!("commit: {e}")))?;
                stack.push(oid(&c.tree()));
                for p in c.parents() {
                    let p = oid(&p);
                    // A shallow origin may lack old parents; what the origin has is kept.
                    if repo.has_object(gix::ObjectId::from_bytes_or_panic(&p)) {
                        stack.push(p);
                    }
                }
            }
            Kind::Tag => {
                let t = gix::objs::TagRef::from_bytes(&data, gix::hash::Kind::Sha1)
                    .map_err(|e| ArchiveError::BadObject(format!("tag: {e}")))?;
                stack.push(oid(&t.target()));
            }
            Kind::Tree => {
                for e in crate::tree::parse_tree(&data)? {
                    if e.mode != 0o160000 {
                        stack.push(e.id);
                    }
                }
            }
            Kind::Blob => {}
        }
    }
    Ok(pack.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refspecs_prefer_tags_and_take_ids() {
        assert_eq!(
            refspecs("main"),
            vec![
                "+refs/tags/main:refs/tags/main".to_owned(),
                "+refs/heads/main:refs/heads/main".to_owned()
            ]
        );
        assert_eq!(
            refspecs("refs/heads/x"),
            vec!["+refs/heads/x:refs/heads/x".to_owned()]
        );
        let id = "AB".repeat(20);
        assert_eq!(refspecs(&id), vec!["ab".repeat(20)]);
    }
}
