//! The archive use case against a real git origin: `git http-backend` behind a tiny
//! CGI server on loopback (allowed by the test's address policy), the catalog and
//! bucket as in-memory fakes. The stored pack is checked with real git.
#![allow(clippy::unwrap_used, missing_docs)]

use cairn_archive::memory::MemoryArchives;
use cairn_archive::model::{ArchiveCatalog, Claim, MadeBy};
use cairn_archive::origin::FetchLimits;
use cairn_archive::request::WorkspaceRequest;
use cairn_archive::tree::TreeLimits;
use cairn_archive::{ArchiveError, ArchiveRequest, Archiver, CloneRequest, Settings, layout};
use cairn_callback::AddressPolicy;
use cairn_core::memory::MemoryStore;
use cairn_core::ports::RepoStore;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "T")
        .env("GIT_AUTHOR_EMAIL", "t@example.org")
        .env("GIT_COMMITTER_NAME", "T")
        .env("GIT_COMMITTER_EMAIL", "t@example.org")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Serves `root` with `git http-backend` (smart HTTP, protocol v2) on a loopback port.
fn serve(root: PathBuf) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let root = root.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or_default().to_owned();
                let target = parts.next().unwrap_or_default().to_owned();
                let (path, query) = target.split_once('?').unwrap_or((&target, ""));
                let mut headers = Vec::new();
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    let h = h.trim_end().to_owned();
                    if h.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                    }
                }
                let get = |k: &str| {
                    headers
                        .iter()
                        .find(|(n, _)| n == k)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                let len: usize = get("content-length").parse().unwrap_or(0);
                let mut body = vec![0; len];
                reader.read_exact(&mut body).unwrap();
                let mut child = Command::new("git")
                    .arg("http-backend")
                    .env("GIT_PROJECT_ROOT", &root)
                    .env("GIT_HTTP_EXPORT_ALL", "1")
                    .env("GIT_CONFIG_GLOBAL", "/dev/null")
                    .env("GIT_CONFIG_NOSYSTEM", "1")
                    .env("REQUEST_METHOD", &method)
                    .env("PATH_INFO", path)
                    .env("QUERY_STRING", query)
                    .env("CONTENT_TYPE", get("content-type"))
                    .env("CONTENT_LENGTH", len.to_string())
                    .env("GIT_PROTOCOL", get("git-protocol"))
                    .env("REMOTE_ADDR", "127.0.0.1")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap();
                child.stdin.take().unwrap().write_all(&body).unwrap();
                let out = child.wait_with_output().unwrap();
                let split = out
                    .stdout
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .map(|i| (i, 4))
                    .or_else(|| {
                        out.stdout
                            .windows(2)
                            .position(|w| w == b"\n\n")
                            .map(|i| (i, 2))
                    })
                    .unwrap();
                let head = String::from_utf8_lossy(&out.stdout[..split.0]).into_owned();
                let payload = &out.stdout[split.0 + split.1..];
                let mut status = "200 OK".to_owned();
                let mut resp = String::new();
                for h in head.lines() {
                    if let Some(s) = h.strip_prefix("Status:") {
                        status = s.trim().to_owned();
                    } else {
                        resp.push_str(h.trim_end());
                        resp.push_str("\r\n");
                    }
                }
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\n{resp}Content-Length: {}\r\nConnection: close\r\n\r\n",
                    payload.len()
                );
                let _ = stream.write_all(payload);
            });
        }
    });
    port
}

struct Origin {
    _dir: tempfile::TempDir,
    work: PathBuf,
    bare: PathBuf,
    url: String,
}

fn origin(files: &[(&str, &str)]) -> Origin {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let bare = dir.path().join("srv/demo.git");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    commit(&work, files, "first");
    git(
        dir.path(),
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    git(&bare, &["config", "uploadpack.allowAnySHA1InWant", "true"]);
    let port = serve(dir.path().join("srv"));
    Origin {
        url: format!("http://127.0.0.1:{port}/demo.git"),
        work,
        bare,
        _dir: dir,
    }
}

fn commit(work: &Path, files: &[(&str, &str)], message: &str) {
    for (path, content) in files {
        let p = work.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "-m", message]);
}

fn push(o: &Origin, args: &[&str]) {
    let mut all = vec!["push", "-q", "--force", o.bare.to_str().unwrap()];
    all.extend_from_slice(args);
    git(&o.work, &all);
}

fn archiver(policy: &str, max_bytes: u64) -> (Archiver, Arc<MemoryStore>, tempfile::TempDir) {
    let scratch = tempfile::tempdir().unwrap();
    let files = Arc::new(MemoryStore::default());
    let a = Archiver {
        catalog: Arc::new(MemoryArchives::default()),
        files: files.clone(),
        workspaces: None,
        settings: Settings {
            policy: AddressPolicy::parse_list(policy).unwrap(),
            fetch: FetchLimits {
                max_bytes,
                timeout: Duration::from_secs(60),
            },
            tree: TreeLimits {
                max_objects: 100_000,
                max_bytes: 1 << 30,
            },
            scratch: scratch.path().to_owned(),
            archive_base_url: "http://archive.test".into(),
        },
    };
    (a, files, scratch)
}

/// The origin URL as the API checks it before `answer_known`.
async fn checked(a: &Archiver, o: &Origin) -> url::Url {
    cairn_archive::request::check_origin(&o.url, &a.settings.policy)
        .await
        .unwrap()
}

fn request(o: &Origin, reference: &str) -> ArchiveRequest {
    ArchiveRequest {
        name: "demo".into(),
        url: o.url.clone(),
        reference: reference.into(),
        callback: None,
    }
}

/// Writes the bucket's repository to disk and clones `tag` from it with real git.
async fn clone_from_bucket(files: &MemoryStore, tag: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("demo.git");
    let mut keys = vec![
        layout::info_refs_key("demo"),
        layout::info_packs_key("demo"),
        layout::head_key("demo"),
    ];
    let packs = String::from_utf8(
        files
            .get(&layout::info_packs_key("demo"))
            .await
            .unwrap()
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    for line in packs.lines().filter_map(|l| l.strip_prefix("P ")) {
        let stem = line.trim_end_matches(".pack");
        keys.push(layout::pack_key("demo", stem, "pack"));
        keys.push(layout::pack_key("demo", stem, "idx"));
    }
    for key in keys {
        let body = files.get(&key).await.unwrap().unwrap();
        let path = dir.path().join(key.strip_prefix("git/").unwrap());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    // file:// reads refs, not info/refs: the same list as packed-refs.
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    let info = std::fs::read_to_string(repo.join("info/refs")).unwrap();
    let mut packed = String::from("# pack-refs with: peeled fully-peeled sorted\n");
    for line in info.lines() {
        let (id, name) = line.split_once('\t').unwrap();
        if name.ends_with("^{}") {
            packed.push_str(&format!("^{id}\n"));
        } else {
            packed.push_str(&format!("{id} {name}\n"));
        }
    }
    std::fs::write(repo.join("packed-refs"), packed).unwrap();
    let out = dir.path().join("out");
    git(
        dir.path(),
        &[
            "clone",
            "-q",
            "--branch",
            tag,
            "--single-branch",
            "--no-tags",
            &format!("file://{}", repo.display()),
            out.to_str().unwrap(),
        ],
    );
    (dir, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_publish_and_clone() {
    let o = origin(&[("README", "hello\n"), ("src/main.c", "int main;\n")]);
    let (a, files, _s) = archiver("127.0.0.1", 1 << 30);
    let first = a.archive(&request(&o, "main")).await.unwrap();
    let tree = git(&o.work, &["rev-parse", "HEAD^{tree}"]);
    assert_eq!(first["tree"], tree.as_str());
    assert_eq!(first["swhid"], format!("swh:1:dir:{tree}"));
    assert_eq!(first["created"], true);
    let tag = first["tag"].as_str().unwrap().to_owned();

    let (_d, out) = clone_from_bucket(&files, &tag).await;
    assert_eq!(git(&out, &["rev-parse", "HEAD^{tree}"]), tree);
    assert_eq!(git(&out, &["rev-list", "--count", "HEAD"]), "1");
    // The one-tag repository: one ref, one pack.
    assert_eq!(
        first["url"]["tree"],
        format!("http://archive.test/trees/demo/{tag}.git")
    );
    let refs = files
        .get(&format!("trees/demo/{tag}.git/info/refs"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        String::from_utf8(refs.to_vec()).unwrap(),
        format!("{}\trefs/tags/{tag}\n", first["commit"].as_str().unwrap())
    );
    let packs = files
        .get(&format!("trees/demo/{tag}.git/objects/info/packs"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(packs.iter().filter(|&&b| b == b'P').count(), 1);
    git(&out, &["fsck", "--strict"]);

    // The API's shortcut: a known ref is answered from one listing, an unknown one is
    // left to the worker, a missing one is an error at once.
    let quick = a
        .answer_known(
            &request(&o, "main"),
            checked(&a, &o).await,
            Duration::from_secs(5),
        )
        .await
        .unwrap()
        .expect("main is known");
    assert_eq!(quick["tag"], first["tag"]);
    assert_eq!(quick["created"], false);
    git(&o.work, &["branch", "fresh"]);
    commit(&o.work, &[("NEW", "new\n")], "new");
    push(&o, &["HEAD:refs/heads/fresh"]);
    let none = a
        .answer_known(
            &request(&o, "fresh"),
            checked(&a, &o).await,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert!(none.is_none(), "{none:?}");
    git(&o.work, &["reset", "-q", "--hard", "HEAD~1"]);
    let err = a
        .answer_known(
            &request(&o, "missing"),
            checked(&a, &o).await,
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ArchiveError::RefNotFound { .. }), "{err}");

    // The same ref again: known from the ref listing, same answer.
    let again = a.archive(&request(&o, "main")).await.unwrap();
    assert_eq!(again["tag"], first["tag"]);
    assert_eq!(again["created"], false);

    // Same tree under a new commit on another branch: same tag.
    git(&o.work, &["commit", "-q", "--allow-empty", "-m", "empty"]);
    push(&o, &["HEAD:refs/heads/other"]);
    let other = a.archive(&request(&o, "other")).await.unwrap();
    assert_eq!(other["tag"], first["tag"]);
    assert_eq!(other["created"], false);

    // Force-push different content: a new tag; the old one still clones.
    commit(&o.work, &[("README", "changed\n")], "second");
    push(&o, &["HEAD:refs/heads/main"]);
    let second = a.archive(&request(&o, "main")).await.unwrap();
    assert_ne!(second["tag"], first["tag"]);
    assert_eq!(second["created"], true);
    let (_d, out) = clone_from_bucket(&files, &tag).await;
    assert_eq!(git(&out, &["rev-parse", "HEAD^{tree}"]), tree);

    // By commit id, and an annotated tag.
    let id = git(&o.work, &["rev-parse", "HEAD"]);
    let by_id = a.archive(&request(&o, &id)).await.unwrap();
    assert_eq!(by_id["tag"], second["tag"]);
    git(&o.work, &["tag", "-a", "-m", "v1", "v1.0"]);
    push(&o, &["refs/tags/v1.0"]);
    let by_tag = a.archive(&request(&o, "v1.0")).await.unwrap();
    assert_eq!(by_tag["tag"], second["tag"]);
    assert_eq!(by_tag["origin"]["commit"], id.as_str());
    // Again: answered from the ref listing, still naming the commit, not the tag object.
    let by_tag = a.archive(&request(&o, "v1.0")).await.unwrap();
    assert_eq!(by_tag["origin"]["commit"], id.as_str());

    // A ref that does not exist.
    let err = a.archive(&request(&o, "nope")).await.unwrap_err();
    assert!(matches!(err, ArchiveError::RefNotFound { .. }), "{err}");
    assert!(err.to_string().contains("'nope'"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_policy() {
    let big: String = (0..400_000u32)
        .map(|i| format!("{:08x}", i.wrapping_mul(2654435761)))
        .collect();
    let o = origin(&[("big.txt", big.as_str())]);
    let (a, _files, _s) = archiver("127.0.0.1", 64 * 1024);
    let err = a.archive(&request(&o, "main")).await.unwrap_err();
    assert!(matches!(err, ArchiveError::TooLarge(_)), "{err}");

    let (strict, _files, _s) = archiver("", 1 << 30);
    let err = strict.archive(&request(&o, "main")).await.unwrap_err();
    assert!(matches!(err, ArchiveError::Refused(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_pushes_history() {
    let o = origin(&[("a", "1")]);
    commit(&o.work, &[("a", "2")], "two");
    commit(&o.work, &[("a", "3")], "three");
    push(&o, &["HEAD:refs/heads/main"]);
    let (a, files, _s) = archiver("127.0.0.1", 1 << 30);
    let req = |reference: &str| CloneRequest {
        kind: "git".into(),
        origin_repo_url: o.url.clone(),
        reference: reference.into(),
        name: Some("demo".into()),
        target_repo_url: None,
        callback: None,
    };
    let body = a.clone_ref(&req("main")).await.unwrap();
    assert_eq!(body["ref"], "main");
    let (_d, out) = clone_from_bucket(&files, "main").await;
    assert_eq!(git(&out, &["rev-list", "--count", "HEAD"]), "3");
    let id = git(&o.work, &["rev-parse", "HEAD~1"]);
    let body = a.clone_ref(&req(&id)).await.unwrap();
    assert_eq!(body["ref"], format!("branch-{id}"));
    // The branch moves at the origin: Cairn refuses to move it.
    commit(&o.work, &[("a", "4")], "four");
    push(&o, &["HEAD:refs/heads/main"]);
    let err = a.clone_ref(&req("main")).await.unwrap_err();
    assert!(matches!(err, ArchiveError::Conflict(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_follow_the_name_claim() {
    let o = origin(&[("README", "claimed\n")]);
    let (a, _files, _s) = archiver("127.0.0.1", 1 << 30);
    let catalog = MemoryArchives::default();
    let public = Archiver {
        catalog: Arc::new(catalog.clone()),
        ..a
    };
    // A repository claimed the name after the public operation started: it records
    // nothing and says why.
    catalog.set_claim("demo", Claim::Repository("s1".into()));
    let err = public.archive(&request(&o, "main")).await.unwrap_err();
    assert!(matches!(err, ArchiveError::Conflict(_)), "{err}");
    assert_eq!(err.http_status(), 409);
    assert!(err.to_string().contains("claimed"), "{err}");
    assert!(catalog.trees("demo").await.unwrap().is_empty());
    assert!(catalog.packs("demo").await.unwrap().is_empty());

    // The repository's own writer archives while its claim holds ...
    let owned = Archiver {
        catalog: catalog.under(Claim::Repository("s1".into())),
        ..public.clone()
    };
    let first = owned.archive(&request(&o, "main")).await.unwrap();
    assert_eq!(first["created"], true);
    // ... and not after its repository was deleted, nor for another storage.
    commit(&o.work, &[("NEW", "new\n")], "new file");
    push(&o, &["main"]);
    catalog.set_claim("demo", Claim::Unclaimed);
    let err = owned.archive(&request(&o, "main")).await.unwrap_err();
    assert!(matches!(err, ArchiveError::Conflict(_)), "{err}");
    catalog.set_claim("demo", Claim::Repository("s2".into()));
    let err = owned.archive(&request(&o, "main")).await.unwrap_err();
    assert!(matches!(err, ArchiveError::Conflict(_)), "{err}");
    assert_eq!(catalog.trees("demo").await.unwrap().len(), 1);
}

/// A `.tar.gz` of `files` as a build worker packs a folder.
fn folder_tarball(files: &[(&str, &str)]) -> bytes::Bytes {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (path, content) in files {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(content.len() as u64);
        tar.append_data(&mut h, path, content.as_bytes()).unwrap();
    }
    bytes::Bytes::from(tar.into_inner().unwrap().finish().unwrap())
}

fn workspace_request(tarball: &[u8], adjusted_from: Option<&str>) -> WorkspaceRequest {
    use sha2::Digest;
    WorkspaceRequest {
        name: "demo".into(),
        sha256: hex::encode(sha2::Sha256::digest(tarball)),
        made_by: MadeBy {
            project: "hello".into(),
            build: "bld_1".into(),
            job: "job_1".into(),
            step: 2,
            adjusted_from: adjusted_from.map(str::to_string),
        },
        callback: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_folder_is_archived_beside_the_origin_s_trees() {
    let files = [("README", "hello\n"), ("src/main.c", "int main;\n")];
    let o = origin(&files);
    let (a, store, _s) = archiver("127.0.0.1", 1 << 30);
    let original = a.archive(&request(&o, "main")).await.unwrap();
    let original_tag = original["tag"].as_str().unwrap();

    // The same files from a workspace: the same tree, so the same tag.
    let same = folder_tarball(&files);
    let answer = a
        .archive_workspace(&workspace_request(&same, None), same.clone())
        .await
        .unwrap();
    assert_eq!(answer["tag"], original["tag"]);
    assert_eq!(answer["created"], false);

    // The adjusted folder: a new tree beside the original, with its job.
    let adjusted = folder_tarball(&[
        ("README", "hello\n"),
        ("src/main.c", "int main;\n"),
        ("ADJUSTED", "yes\n"),
    ]);
    let req = workspace_request(&adjusted, Some(original_tag));
    let first = a.archive_workspace(&req, adjusted.clone()).await.unwrap();
    assert_eq!(first["created"], true);
    assert_ne!(first["tag"], original["tag"]);
    assert_eq!(first["origin"]["build"]["adjusted_from"], original_tag);
    assert_eq!(first["origin"]["build"]["build"], "bld_1");
    let tag = first["tag"].as_str().unwrap();
    let (_d, out) = clone_from_bucket(&store, tag).await;
    assert_eq!(
        std::fs::read_to_string(out.join("ADJUSTED")).unwrap(),
        "yes\n"
    );
    git(&out, &["fsck", "--strict"]);
    // Both tags are in the name's repository, and the record keeps the job.
    let record = a
        .catalog
        .tree("demo", first["tree"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.made_by, Some(req.made_by.clone()));
    let (_d2, again) = clone_from_bucket(&store, original_tag).await;
    assert!(!again.join("ADJUSTED").exists());
    // Again: the same tag, nothing new.
    let second = a.archive_workspace(&req, adjusted.clone()).await.unwrap();
    assert_eq!(
        (second["tag"].clone(), second["created"].clone()),
        (first["tag"].clone(), false.into())
    );

    // Bytes that are not the blob named, and a tarball with a way out, are refused.
    let wrong = workspace_request(&same, None);
    assert!(a.archive_workspace(&wrong, adjusted.clone()).await.is_err());
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.as_old_mut().name[..9].copy_from_slice(b"../escape");
    h.set_cksum();
    let mut t = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    t.append(&h, &b"x"[..]).unwrap();
    let hostile = bytes::Bytes::from(t.into_inner().unwrap().finish().unwrap());
    let err = a
        .archive_workspace(&workspace_request(&hostile, None), hostile.clone())
        .await
        .unwrap_err();
    assert_eq!(err.http_status(), 400, "{err}");
    assert!(err.to_string().contains("../escape"), "{err}");
}
