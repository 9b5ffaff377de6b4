//! `cairn worker`: a pull-based build worker (Ick's worker-manager). It asks the
//! builds API for a job its labels fit, runs the action with the token minted for
//! that job alone, streams the output as it comes, heartbeats, and reports the exit
//! code and the end of stderr. A cancelled build (or a job given to another worker)
//! stops the action: its whole process group is killed.
//!
//! Each build has a workspace folder under `--workdir`. A step that a later step
//! follows saves it into the project's artifact store; the next step's worker
//! restores it from there unless its folder is that workspace already.

use crate::remote::{Api, Failure, Outcome, Push, push_with};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

/// Bytes of output gathered before a chunk is sent anyway.
const CHUNK: usize = 512 * 1024;
/// How often gathered output is sent.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// End of stderr kept for the report.
const STDERR_TAIL: usize = 2048;

/// What `cairn worker` was asked to be.
pub struct Worker {
    /// Its name in build records.
    pub name: String,
    /// What it has (`arch=amd64`, `dpkg`).
    pub labels: Vec<String>,
    /// Where workspaces go.
    pub workdir: PathBuf,
    /// Stop after one job.
    pub once: bool,
}

/// `cairn worker`: takes jobs until stopped (or one, with `--once`).
pub async fn run(worker: Worker) -> Outcome {
    let api = Api::logged_in()?;
    std::fs::create_dir_all(&worker.workdir)
        .map_err(|e| Failure::usage(format!("{}: {e}", worker.workdir.display())))?;
    eprintln!(
        "worker {} polling {} (labels: {})",
        worker.name,
        api.base,
        worker.labels.join(",")
    );
    loop {
        let asked = api
            .request(
                Method::POST,
                "/v1/work",
                Some(&json!({"worker": worker.name, "labels": worker.labels})),
            )
            .await;
        match asked {
            Ok((200, job)) => {
                execute(&api, &worker, &job).await;
                if worker.once {
                    return Ok(());
                }
            }
            Ok((204, _)) => {}
            Ok((status @ (401 | 403), answer)) => {
                return Err(Failure::answer(
                    status,
                    &answer,
                    "take work (needs the worker scope)",
                ));
            }
            Ok((status, answer)) => {
                eprintln!(
                    "worker: {}",
                    Failure::answer(status, &answer, "take work").message
                );
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            Err(e) => {
                eprintln!("worker: {}", e.message);
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }
}

/// Runs one job that a runner was given (a claim's answer, token included) as a
/// worker would, with the API at `api_base` and workspaces under `workdir`, then
/// deletes the job's workspace (the next step may run anywhere): the build-step
/// Lambda's way in.
pub async fn run_job(api_base: &str, workdir: &Path, job: &Value) -> Outcome {
    std::fs::create_dir_all(workdir)
        .map_err(|e| Failure::usage(format!("{}: {e}", workdir.display())))?;
    let api = Api::new(api_base, String::new())?;
    let runner = Worker {
        name: "lambda".into(),
        labels: Vec::new(),
        workdir: workdir.to_path_buf(),
        once: true,
    };
    execute(&api, &runner, job).await;
    let build = job["build"].as_str().unwrap_or_default();
    if !build.is_empty() {
        let _ = std::fs::remove_dir_all(workdir.join(build));
        let _ = std::fs::remove_file(marker(workdir, build));
    }
    Ok(())
}

/// One job: its action run, its output streamed, its end reported.
async fn execute(api: &Api, worker: &Worker, job: &Value) {
    let text = |k: &str| job[k].as_str().unwrap_or_default().to_string();
    let (build, id) = (text("build"), text("job"));
    let Ok(job_api) = Api::new(&api.base, format!("Bearer {}", text("token"))) else {
        return;
    };
    let base = format!("/v1/builds/{build}/jobs/{id}");
    let workspace = worker.workdir.join(&build);
    let action = &job["action"];
    let kind = action["action"].as_str().unwrap_or("?");
    eprintln!("job {id}: build {build} step {} ({kind})", job["step"]);
    let mut log = LogStream::new(&job_api, &base);
    // The job is this runner's only if its token still works: a job that ended or
    // went to another runner (a late or repeated delivery) never starts.
    if let Some(why) = beat_once(&job_api, &base).await {
        eprintln!("job {id}: not started: {why}");
        return;
    }
    // Heartbeats run beside the action, whatever it is; a stop ends the action.
    let beat = Duration::from_secs(job["heartbeat_seconds"].as_u64().unwrap_or(20).max(1));
    let (stop_tx, mut stop) = tokio::sync::watch::channel(None::<String>);
    let heart = {
        let (api, path) = (
            Api::new(&api.base, format!("Bearer {}", text("token"))),
            base.clone(),
        );
        tokio::spawn(async move {
            let Ok(api) = api else { return };
            let mut ticks = tokio::time::interval(beat);
            loop {
                ticks.tick().await;
                if let Some(why) = beat_once(&api, &path).await {
                    let _ = stop_tx.send(Some(why));
                    return;
                }
            }
        })
    };
    let prepared = tokio::select! {
        ready = prepare_workspace(&job_api, &worker.workdir, job, &workspace, &mut log) => ready,
        why = stopped(&mut stop) => Err(format!("stopped: {why}")),
    };
    let outcome = match prepared {
        Err(e) => Ended::Failed(format!("workspace: {e}")),
        Ok(()) => match kind {
            "shell" => shell(&workspace, job, &mut stop, &mut log).await,
            "publish" => tokio::select! {
                ended = publish(&job_api, &workspace, action, &mut log) => ended,
                why = stopped(&mut stop) => Ended::Stopped(why),
            },
            "archive" if action["from"].as_str().is_some_and(|f| !f.is_empty()) => tokio::select! {
                ended = archive_folder(&job_api, &worker.workdir, &workspace, job, &mut log) => ended,
                why = stopped(&mut stop) => Ended::Stopped(why),
            },
            "archive" => tokio::select! {
                ended = archive(&job_api, &workspace, action, &mut log) => ended,
                why = stopped(&mut stop) => Ended::Stopped(why),
            },
            "artifact" => tokio::select! {
                ended = artifact(&job_api, &workspace, job, &mut log) => ended,
                why = stopped(&mut stop) => Ended::Stopped(why),
            },
            other => Ended::Failed(format!("this worker does not run {other} actions")),
        },
    };
    // A later step (perhaps on another worker) starts from the workspace this one left.
    let succeeded = matches!(outcome, Ended::Exited(0) | Ended::Done(_));
    let mut saved = None;
    let outcome = if !succeeded {
        outcome
    } else if job["save_workspace"] == true {
        let saving = tokio::select! {
            saving = save_workspace(&job_api, &worker.workdir, job, &workspace, &mut log) => saving,
            why = stopped(&mut stop) => Err(format!("stopped: {why}")),
        };
        match saving {
            Ok(blob) => {
                saved = Some(blob);
                outcome
            }
            Err(e) => Ended::Failed(format!("saving the workspace: {e}")),
        }
    } else {
        // The build's last step: its workspace is not needed any more.
        let _ = std::fs::remove_dir_all(&workspace);
        outcome
    };
    heart.abort();
    log.flush().await;
    let (exit_code, error, outputs) = match outcome {
        Ended::Exited(code) => (code, None, Value::Null),
        Ended::Done(outputs) => (0, None, outputs),
        Ended::Failed(why) => (1, Some(why), Value::Null),
        Ended::Stopped(why) => {
            eprintln!("job {id}: stopped: {why}");
            return;
        }
    };
    let mut report = json!({
        "exit_code": exit_code, "error": error, "outputs": outputs,
        "stderr_tail": String::from_utf8_lossy(&log.stderr_tail).into_owned(),
    });
    if let Some((sha256, size)) = saved {
        report["workspace"] = json!({"sha256": sha256, "size": size});
    }
    for attempt in 0..5u64 {
        match job_api
            .request(Method::POST, &format!("{base}/result"), Some(&report))
            .await
        {
            Ok((200, _)) => {
                eprintln!("job {id}: reported exit code {exit_code}");
                return;
            }
            Ok((status, answer)) if status < 500 => {
                eprintln!(
                    "job {id}: {}",
                    Failure::answer(status, &answer, "report").message
                );
                return;
            }
            _ => tokio::time::sleep(Duration::from_secs(1 << attempt)).await,
        }
    }
}

/// How an action ended.
enum Ended {
    /// Its command exited with this code.
    Exited(i32),
    /// A built-in action succeeded with these outputs.
    Done(Value),
    /// It could not run or a built-in action failed: why.
    Failed(String),
    /// The job is no longer this worker's (cancelled, or given to another): nothing
    /// is reported.
    Stopped(String),
}

/// The job's output on its way to the log: gathered, sent in chunks at their offsets.
struct LogStream<'a> {
    api: &'a Api,
    path: String,
    sent: u64,
    pending: Vec<u8>,
    stderr_tail: Vec<u8>,
}

impl<'a> LogStream<'a> {
    fn new(api: &'a Api, base: &str) -> Self {
        Self {
            api,
            path: format!("{base}/log"),
            sent: 0,
            pending: Vec::new(),
            stderr_tail: Vec::new(),
        }
    }

    fn push(&mut self, bytes: &[u8], stderr: bool) {
        self.pending.extend_from_slice(bytes);
        if stderr {
            self.stderr_tail.extend_from_slice(bytes);
            let excess = self.stderr_tail.len().saturating_sub(STDERR_TAIL);
            self.stderr_tail.drain(..excess);
        }
    }

    async fn line(&mut self, text: &str) {
        self.push(format!("{text}\n").as_bytes(), false);
        self.flush().await;
    }

    /// Sends what is gathered (in chunks of at most [`CHUNK`]), trying each a few times.
    async fn flush(&mut self) {
        while !self.pending.is_empty() {
            let take = self.pending.len().min(CHUNK);
            let chunk: Vec<u8> = self.pending[..take].to_vec();
            let mut stored = false;
            for attempt in 0..5u64 {
                let sent = self
                    .api
                    .http
                    .post(format!(
                        "{}{}?offset={}",
                        self.api.base, self.path, self.sent
                    ))
                    .header("authorization", self.api.auth())
                    .header("content-type", "application/octet-stream")
                    .body(chunk.clone())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().as_u16() == 204 => {
                        stored = true;
                        break;
                    }
                    Ok(r) if r.status().is_client_error() => break,
                    _ => tokio::time::sleep(Duration::from_millis(200 << attempt)).await,
                }
            }
            if !stored {
                eprintln!("log chunk at {} was not stored", self.sent);
            }
            self.sent += take as u64;
            self.pending.drain(..take);
        }
    }
}

/// Waits until the heartbeat says stop; the reason.
async fn stopped(stop: &mut tokio::sync::watch::Receiver<Option<String>>) -> String {
    loop {
        if let Some(why) = stop.borrow_and_update().clone() {
            return why;
        }
        if stop.changed().await.is_err() {
            // The heartbeat task ended without a stop: never stop for it.
            std::future::pending::<()>().await;
        }
    }
}

/// Runs a `shell` action: `sh -e -c script` in the workspace, parameters as
/// environment, in a process group of its own so a stop kills all of it.
async fn shell(
    workspace: &Path,
    job: &Value,
    stop: &mut tokio::sync::watch::Receiver<Option<String>>,
    log: &mut LogStream<'_>,
) -> Ended {
    let script = job["action"]["script"].as_str().unwrap_or_default();
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-e")
        .arg("-c")
        .arg(script)
        .current_dir(workspace)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for (name, value) in job["parameters"].as_object().into_iter().flatten() {
        command.env(name, value.as_str().unwrap_or_default());
    }
    let text = |k: &str| job[k].as_str().unwrap_or_default().to_string();
    command
        .env("CAIRN_BUILD", text("build"))
        .env("CAIRN_JOB", text("job"))
        .env("CAIRN_PROJECT", text("project"))
        .env("CAIRN_STEP", job["step"].to_string())
        .env("CAIRN_WORKSPACE", workspace);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return Ended::Failed(format!("could not start sh: {e}")),
    };
    let pgid = child.id();
    let (tx, mut rx) = mpsc::channel::<(Vec<u8>, bool)>(64);
    for (pipe, stderr) in [
        (
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            false,
        ),
        (
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            true,
        ),
    ] {
        let Some(mut pipe) = pipe else { continue };
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = pipe.read(&mut buf).await {
                if n == 0 || tx.send((buf[..n].to_vec(), stderr)).await.is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    let mut open = true;
    let status = loop {
        tokio::select! {
            piece = rx.recv(), if open => match piece {
                Some((bytes, stderr)) => {
                    log.push(&bytes, stderr);
                    if log.pending.len() >= CHUNK {
                        log.flush().await;
                    }
                }
                None => open = false,
            },
            _ = flush.tick() => log.flush().await,
            why = stopped(stop) => {
                kill_group(pgid).await;
                let _ = child.wait().await;
                return Ended::Stopped(why);
            }
            status = child.wait(), if !open => break status,
        }
    };
    // Nothing the step started outlives it (it would change the saved workspace).
    kill_group(pgid).await;
    match status {
        Ok(status) => Ended::Exited(status.code().unwrap_or_else(|| {
            use std::os::unix::process::ExitStatusExt;
            128 + status.signal().unwrap_or(0)
        })),
        Err(e) => Ended::Failed(format!("waiting for sh: {e}")),
    }
}

/// One heartbeat of the job whose routes start with `base`; `Some(why)` when the
/// worker must stop.
async fn beat_once(api: &Api, base: &str) -> Option<String> {
    match api
        .request(Method::POST, &format!("{base}/heartbeat"), None)
        .await
    {
        Ok((200, answer)) if answer["state"] == "cancel" => Some("the build was cancelled".into()),
        Ok((200, _)) => None,
        Ok((status @ (401 | 403 | 404 | 409), answer)) => {
            Some(Failure::answer(status, &answer, "heartbeat").message)
        }
        // A passing failure: the lease outlasts a few missed beats.
        Ok(_) | Err(_) => None,
    }
}

/// Kills the action's process group (the shell and everything it started). Only a
/// group of its own: never 1 (kill(-1) is every process) nor this worker's.
async fn kill_group(pgid: Option<u32>) {
    let own = std::process::id();
    let Some(pgid) = pgid.filter(|p| *p > 1 && *p != own) else {
        return;
    };
    let Some(pid) = i32::try_from(pgid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    match rustix::process::kill_process_group(pid, rustix::process::Signal::KILL) {
        // Nothing left in the group.
        Ok(()) | Err(rustix::io::Errno::SRCH) => {}
        Err(e) => eprintln!("could not kill process group {pgid}: {e}"),
    }
}

/// Where a worker notes which saved workspace a build's folder holds as it is.
fn marker(workdir: &Path, build: &str) -> PathBuf {
    workdir.join(format!(".{build}.workspace"))
}

/// Makes the build's folder the workspace the earlier steps left: kept if it is
/// that one already (this worker saved it), else emptied and restored from the
/// artifact store (or left empty before the first step).
async fn prepare_workspace(
    api: &Api,
    workdir: &Path,
    job: &Value,
    workspace: &Path,
    log: &mut LogStream<'_>,
) -> Result<(), String> {
    let build = job["build"].as_str().unwrap_or_default();
    let saved = &job["workspace"];
    let expected = saved["sha256"].as_str().unwrap_or_default();
    let marker = marker(workdir, build);
    let have = std::fs::read_to_string(&marker).ok();
    // From here on the folder changes: it is no longer what was saved.
    let _ = std::fs::remove_file(&marker);
    if have.as_deref() == Some(expected) && workspace.is_dir() {
        return Ok(());
    }
    if workspace.exists() {
        std::fs::remove_dir_all(workspace).map_err(|e| format!("{}: {e}", workspace.display()))?;
    }
    std::fs::create_dir_all(workspace).map_err(|e| format!("{}: {e}", workspace.display()))?;
    if expected.is_empty() {
        return Ok(());
    }
    log.line(&format!(
        "restoring the workspace saved after step {} ({:.1} MiB, sha256:{expected})",
        saved["step"],
        saved["size"].as_f64().unwrap_or(0.0) / 1048576.0
    ))
    .await;
    let tarball = workdir.join(format!(".{build}.restore.tar.gz"));
    crate::artifacts::download(api, &saved["download"], expected, &tarball).await?;
    let (from, into) = (tarball.clone(), workspace.to_path_buf());
    let unpacked = tokio::task::spawn_blocking(move || crate::artifacts::unpack_into(&from, &into))
        .await
        .map_err(|e| e.to_string());
    let _ = std::fs::remove_file(&tarball);
    let files = unpacked?.map_err(|e| format!("unpacking: {e}"))?;
    log.line(&format!("{files} files restored")).await;
    Ok(())
}

/// Saves the build's folder as a blob of the project's artifact store (nothing is
/// sent if the project has the same bytes); its SHA-256 and size.
async fn save_workspace(
    api: &Api,
    workdir: &Path,
    job: &Value,
    workspace: &Path,
    log: &mut LogStream<'_>,
) -> Result<(String, u64), String> {
    let build = job["build"].as_str().unwrap_or_default();
    let project = job["project"].as_str().unwrap_or_default();
    let tarball = workdir.join(format!(".{build}.save.tar.gz"));
    let (stored, files) = store_folder(api, project, workspace, &tarball).await?;
    log.line(&format!("workspace saved: {}", stored.describe(files)))
        .await;
    let _ = std::fs::write(marker(workdir, build), &stored.sha256);
    Ok((stored.sha256, stored.size))
}

/// Packs folder `root` whole into `tarball` and stores it as a blob of `project`'s
/// artifact store (nothing is sent if the project has the same bytes); the file is
/// removed after. The blob, and the number of files packed.
async fn store_folder(
    api: &Api,
    project: &str,
    root: &Path,
    tarball: &Path,
) -> Result<(crate::artifacts::Stored, usize), String> {
    let (root, out) = (root.to_path_buf(), tarball.to_path_buf());
    let packed = tokio::task::spawn_blocking(move || {
        crate::artifacts::pack(&root, &crate::artifacts::top_level(&root)?, &out)
    })
    .await
    .map_err(|e| e.to_string())?;
    let files = match packed {
        Ok(files) => files,
        Err(e) => {
            let _ = std::fs::remove_file(tarball);
            return Err(format!("packing: {e}"));
        }
    };
    let stored = crate::artifacts::store(api, project, tarball).await;
    let _ = std::fs::remove_file(tarball);
    Ok((stored.map_err(|f| f.message)?, files))
}

/// Runs an `artifact` action: `save` packs workspace paths (files, folders, globs)
/// into a blob of the project's artifact store and names it; `restore` unpacks the
/// named artifact into the workspace.
async fn artifact(api: &Api, workspace: &Path, job: &Value, log: &mut LogStream<'_>) -> Ended {
    let action = &job["action"];
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    let (op, name, project) = (
        text(action, "op"),
        text(action, "artifact"),
        text(job, "project"),
    );
    let scratch = match tempfile::Builder::new()
        .prefix(".cairn-artifact-")
        .tempdir_in(workspace.parent().unwrap_or(Path::new(".")))
    {
        Ok(dir) => dir,
        Err(e) => return Ended::Failed(format!("artifact: scratch folder: {e}")),
    };
    let tarball = scratch.path().join("artifact.tar.gz");
    if op == "save" {
        let mut paths = Vec::new();
        for pattern in action["paths"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            let literal = workspace.join(pattern);
            let found = if !pattern.contains(['*', '?'])
                && inside(workspace, pattern)
                && literal.symlink_metadata().is_ok()
            {
                Ok(vec![literal])
            } else {
                glob(workspace, pattern)
            };
            match found {
                Ok(found) if found.is_empty() => {
                    return Ended::Failed(format!("artifact: no file matches {pattern}"));
                }
                Ok(found) => paths.extend(
                    found
                        .iter()
                        .filter_map(|f| f.strip_prefix(workspace).ok().map(Path::to_path_buf)),
                ),
                Err(e) => return Ended::Failed(format!("artifact: {pattern}: {e}")),
            }
        }
        let (root, out) = (workspace.to_path_buf(), tarball.clone());
        let files =
            match tokio::task::spawn_blocking(move || crate::artifacts::pack(&root, &paths, &out))
                .await
            {
                Ok(Ok(files)) => files,
                Ok(Err(e)) => return Ended::Failed(format!("artifact: packing: {e}")),
                Err(e) => return Ended::Failed(format!("artifact: packing: {e}")),
            };
        let stored = match crate::artifacts::store(api, &project, &tarball).await {
            Ok(stored) => stored,
            Err(f) => return Ended::Failed(format!("artifact: {}", f.message)),
        };
        let named = api
            .request(
                Method::PUT,
                &format!("/v1/projects/{project}/artifacts/{name}"),
                Some(&json!({"sha256": stored.sha256, "build": job["build"]})),
            )
            .await;
        match named {
            Ok((200, _)) => {}
            Ok((status, answer)) => {
                return Ended::Failed(Failure::answer(status, &answer, "artifact").message);
            }
            Err(f) => return Ended::Failed(format!("artifact: {}", f.message)),
        }
        log.line(&format!("saved {name}: {}", stored.describe(files)))
            .await;
        return Ended::Done(json!({
            "artifact": name, "sha256": stored.sha256, "size": stored.size,
            "files": files, "deduplicated": stored.deduplicated,
        }));
    }
    let found = api
        .request(
            Method::GET,
            &format!("/v1/projects/{project}/artifacts/{name}"),
            None,
        )
        .await;
    let artifact = match found {
        Ok((200, artifact)) => artifact,
        Ok((status, answer)) => {
            return Ended::Failed(Failure::answer(status, &answer, "artifact").message);
        }
        Err(f) => return Ended::Failed(format!("artifact: {}", f.message)),
    };
    let sha256 = text(&artifact, "sha256");
    if let Err(e) = crate::artifacts::download(api, &artifact["download"], &sha256, &tarball).await
    {
        return Ended::Failed(format!("artifact: download {name}: {e}"));
    }
    let (from, into) = (tarball.clone(), workspace.to_path_buf());
    let files = match tokio::task::spawn_blocking(move || {
        crate::artifacts::unpack_into(&from, &into)
    })
    .await
    {
        Ok(Ok(files)) => files,
        Ok(Err(e)) => {
            return Ended::Failed(format!(
                "artifact: {name} is not a .tar.gz this worker can unpack: {e}"
            ));
        }
        Err(e) => return Ended::Failed(format!("artifact: unpacking: {e}")),
    };
    log.line(&format!("restored {name}: {files} files (sha256:{sha256})"))
        .await;
    Ended::Done(json!({
        "artifact": name, "sha256": sha256, "size": artifact["size"], "files": files,
    }))
}

/// Runs a `publish` action: uploads the workspace files its globs match, with the
/// job's token (which may upload to that repository only).
async fn publish(api: &Api, workspace: &Path, action: &Value, log: &mut LogStream<'_>) -> Ended {
    let repository = action["repository"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut files = Vec::new();
    for pattern in action["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        match glob(workspace, pattern) {
            Ok(found) if found.is_empty() => {
                return Ended::Failed(format!("publish: no file matches {pattern}"));
            }
            Ok(found) => files.extend(found),
            Err(e) => return Ended::Failed(format!("publish: {pattern}: {e}")),
        }
    }
    files.sort();
    files.dedup();
    let names: Vec<String> = files
        .iter()
        .filter_map(|f| f.strip_prefix(workspace).ok())
        .map(|f| f.display().to_string())
        .collect();
    log.line(&format!("publishing {} to {repository}", names.join(", ")))
        .await;
    let pushed = push_with(
        api,
        Push {
            files,
            repo: repository.clone(),
            product: None,
            presign_above: 3 * 1024 * 1024,
            wait: None,
        },
    )
    .await;
    match pushed {
        Ok(()) => {
            log.line("published").await;
            Ended::Done(json!({"repository": repository, "published": names}))
        }
        Err(f) => {
            log.line(&f.message).await;
            Ended::Failed(format!("publish: {}", f.message))
        }
    }
}

/// Runs an `archive` action: freezes the ref with Cairn's source archive (the job's
/// token may archive under that name only), then unpacks the archived tree into the
/// workspace folder `into`. Its outputs are the provenance: name, tag, commit, tree,
/// SWHID and origin.
async fn archive(api: &Api, workspace: &Path, action: &Value, log: &mut LogStream<'_>) -> Ended {
    let text = |k: &str| action[k].as_str().unwrap_or_default().to_string();
    let (name, origin, reference, into) = (text("name"), text("origin"), text("ref"), text("into"));
    log.line(&format!("archiving {origin} {reference} as {name}"))
        .await;
    let body = json!({"name": name, "url": origin, "ref": reference});
    let answer = match post_archive(api, "/v1/archives", &body).await {
        Ok(answer) => answer,
        Err(why) => return Ended::Failed(why),
    };
    let tarball = answer["tarball"].as_str().unwrap_or_default().to_string();
    log.line(&format!(
        "archived: tag {} ({}), unpacking into {into}",
        answer["tag"].as_str().unwrap_or("?"),
        answer["swhid"].as_str().unwrap_or("?")
    ))
    .await;
    let bytes = match fetch(api, &tarball).await {
        Ok(bytes) => bytes,
        Err(why) => return Ended::Failed(format!("archive: tarball {tarball}: {why}")),
    };
    if !inside(workspace, &into) {
        return Ended::Failed(format!(
            "archive: {into} leads out of the workspace (through a symbolic link)"
        ));
    }
    let target = workspace.join(&into);
    let unpacked = tokio::task::spawn_blocking(move || unpack(&bytes, &target)).await;
    match unpacked {
        Ok(Ok(files)) => log.line(&format!("{files} files")).await,
        Ok(Err(e)) => return Ended::Failed(format!("archive: unpacking the tarball: {e}")),
        Err(e) => return Ended::Failed(format!("archive: unpacking the tarball: {e}")),
    }
    Ended::Done(archive_outputs(answer))
}

/// What an archive step records of the archive's answer.
fn archive_outputs(mut answer: Value) -> Value {
    if let Some(map) = answer.as_object_mut() {
        map.retain(|k, _| {
            [
                "name", "tag", "commit", "tree", "swhid", "origin", "created",
            ]
            .contains(&k.as_str())
        });
    }
    answer
}

/// Runs an `archive` action with `from`: the workspace folder's tree is packed,
/// stored as a blob of the project's artifact store and archived under the name
/// (`POST /v1/archives/{name}/workspace`), beside the trees from origins.
async fn archive_folder(
    api: &Api,
    workdir: &Path,
    workspace: &Path,
    job: &Value,
    log: &mut LogStream<'_>,
) -> Ended {
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    let action = &job["action"];
    let (name, from) = (text(action, "name"), text(action, "from"));
    let root = workspace.join(&from);
    // The folder itself must not be a link either (`inside` checks the parts above).
    let is_folder = std::fs::symlink_metadata(&root).is_ok_and(|m| m.is_dir());
    if !inside(workspace, &from) || (root.is_symlink() && from != ".") {
        return Ended::Failed(format!(
            "archive: {from} leads out of the workspace (through a symbolic link)"
        ));
    }
    if !is_folder {
        return Ended::Failed(format!("archive: the workspace has no folder {from}"));
    }
    log.line(&format!("archiving the workspace folder {from} as {name}"))
        .await;
    let tarball = workdir.join(format!(".{}.archive.tar.gz", text(job, "job")));
    let stored = match store_folder(api, &text(job, "project"), &root, &tarball).await {
        Ok((stored, _)) => stored,
        Err(why) => return Ended::Failed(format!("archive: {from}: {why}")),
    };
    let body =
        json!({"build": text(job, "build"), "job": text(job, "job"), "sha256": stored.sha256});
    let path = format!("/v1/archives/{name}/workspace");
    let answer = match post_archive(api, &path, &body).await {
        Ok(answer) => answer,
        Err(why) => return Ended::Failed(why),
    };
    log.line(&format!(
        "archived: tag {} ({}){}",
        answer["tag"].as_str().unwrap_or("?"),
        answer["swhid"].as_str().unwrap_or("?"),
        answer["origin"]["build"]["adjusted_from"]
            .as_str()
            .map(|t| format!(", adjusted from {t}"))
            .unwrap_or_default()
    ))
    .await;
    Ended::Done(archive_outputs(answer))
}

/// An archive request's answer, once its operation ended if it was queued.
async fn post_archive(api: &Api, path: &str, body: &Value) -> Result<Value, String> {
    match api.request(Method::POST, path, Some(body)).await {
        Ok((200, answer)) => Ok(answer),
        Ok((202, pending)) => wait_operation(api, &pending).await,
        Ok((status, answer)) => Err(Failure::answer(status, &answer, "archive").message),
        Err(e) => Err(format!("archive: {}", e.message)),
    }
}

/// Follows an archive request that answered 202 until its operation ends; the
/// operation's result.
async fn wait_operation(api: &Api, pending: &Value) -> Result<Value, String> {
    let path = pending["operation"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        match api.request(Method::GET, &path, None).await {
            Ok((200, op)) => match op["status"].as_str() {
                Some("succeeded") => return Ok(op["result"].clone()),
                Some("failed" | "cancelled") => {
                    return Err(format!(
                        "archive: operation {}: {}",
                        op["status"], op["result"]
                    ));
                }
                _ => {}
            },
            Ok((status, answer)) => {
                return Err(Failure::answer(status, &answer, "archive operation").message);
            }
            Err(e) => return Err(e.message),
        }
    }
    Err("archive: the operation did not end within 10 minutes".into())
}

/// GET of a URL (the archive's tarball: public, or the API's read path), with the
/// job's token, following redirects to presigned URLs; at most 1 GiB.
async fn fetch(api: &Api, url: &str) -> Result<Vec<u8>, String> {
    let mut url = url.to_string();
    for _ in 0..3 {
        let mut request = api.http.get(&url);
        if url.starts_with(&api.base) {
            request = request.header("authorization", api.auth());
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        if status.is_redirection() {
            url = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .ok_or("a redirect without a location")?
                .to_string();
            continue;
        }
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        if response.content_length().is_some_and(|n| n > 1 << 30) {
            return Err("larger than 1 GiB".into());
        }
        return response
            .bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| e.to_string());
    }
    Err("too many redirects".into())
}

/// Unpacks an archive's `.tar.gz` (every entry under one `<name>-<tag>/` folder) so
/// that the tree's files land in `target`, which must not exist yet; the number of
/// files. Entries are unpacked by the tar crate's `unpack_in` (nothing may leave the
/// folder, through `..` or a symbolic link) into a scratch folder beside `target`,
/// whose one top folder then becomes `target`.
fn unpack(bytes: &[u8], target: &Path) -> std::io::Result<usize> {
    use std::io::{Error, ErrorKind};
    if target.exists() {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            format!("{} exists already", target.display()),
        ));
    }
    let parent = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let scratch = tempfile::Builder::new()
        .prefix(".cairn-unpack-")
        .tempdir_in(parent)?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut files = 0;
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.unpack_in(scratch.path())? && entry.header().entry_type().is_file() {
            files += 1;
        }
    }
    let tops: Vec<_> = std::fs::read_dir(scratch.path())?.collect::<Result<_, _>>()?;
    match &tops[..] {
        [top] if top.file_type()?.is_dir() => std::fs::rename(top.path(), target)?,
        _ => {
            return Err(Error::new(
                ErrorKind::InvalidData,
                "the tarball does not hold one top folder",
            ));
        }
    }
    Ok(files)
}

/// Whether the workspace path `relative` stays inside `root`: relative, no `..`,
/// and no folder on the way is a symbolic link (the last part may be one: it is
/// packed as a link, never followed).
fn inside(root: &Path, relative: &str) -> bool {
    use std::path::Component;
    let path = Path::new(relative);
    let parts: Vec<_> = path.components().collect();
    if parts
        .iter()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return false;
    }
    let mut at = root.to_path_buf();
    for part in parts.iter().take(parts.len().saturating_sub(1)) {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => return false,
            Ok(meta) if !meta.is_dir() => return false,
            // Not there yet (an archive's folder): nothing to follow.
            Err(_) => return true,
            Ok(_) => {}
        }
    }
    true
}

/// The regular files under `root` that `pattern` matches: `/`-separated parts, each
/// literal or with `*` and `?`, never leaving `root` (no `..`, no symbolic links).
fn glob(root: &Path, pattern: &str) -> std::io::Result<Vec<PathBuf>> {
    let mut current = vec![root.to_path_buf()];
    let parts: Vec<&str> = pattern
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let mut next = Vec::new();
        for dir in &current {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries {
                let entry = entry?;
                let kind = entry.file_type()?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if kind.is_symlink() || !wildcard(part, &name) {
                    continue;
                }
                if (last && kind.is_file()) || (!last && kind.is_dir()) {
                    next.push(entry.path());
                }
            }
        }
        current = next;
    }
    Ok(current)
}

/// Whether `name` matches `pattern` (`*` any run, `?` one character).
fn wildcard(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tarball(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (path, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            // set_path refuses `..`; write the name as a hostile tarball would.
            header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_cksum();
            builder.append(&header, *data).expect("entry");
        }
        builder.into_inner().expect("tar").finish().expect("gzip")
    }

    #[test]
    fn an_archived_tree_lands_in_its_folder_and_nowhere_else() {
        let root = tempfile::tempdir().expect("tmp");
        let good = tarball(&[("demo-cairn-1/a.txt", b"a"), ("demo-cairn-1/d/b.txt", b"b")]);
        let target = root.path().join("src");
        assert_eq!(unpack(&good, &target).expect("unpacked"), 2);
        assert_eq!(std::fs::read(target.join("d/b.txt")).expect("file"), b"b");
        assert!(
            unpack(&good, &target).is_err(),
            "an existing folder is not overwritten"
        );
        let hostile = tarball(&[("demo-cairn-1/../../escape.txt", b"x")]);
        let _ = unpack(&hostile, &root.path().join("other"));
        assert!(!root.path().join("escape.txt").exists());
        assert!(
            !root
                .path()
                .parent()
                .expect("parent")
                .join("escape.txt")
                .exists()
        );
    }

    #[test]
    fn a_path_through_a_symbolic_link_is_not_inside() {
        let root = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(root.path().join("real/sub")).expect("dirs");
        std::os::unix::fs::symlink("/etc", root.path().join("out")).expect("link");
        assert!(inside(root.path(), "real/sub/file") && inside(root.path(), "new/folder"));
        assert!(
            inside(root.path(), "out"),
            "the link itself is packed as a link"
        );
        for bad in ["out/passwd", "../x", "/etc/passwd", "real/../../x"] {
            assert!(!inside(root.path(), bad), "{bad}");
        }
    }

    #[test]
    fn globs_match_within_the_workspace_only() {
        let root = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(root.path().join("out/sub")).expect("dirs");
        for f in [
            "out/a_1.0_amd64.deb",
            "out/b.deb",
            "out/notes.txt",
            "out/sub/c.deb",
        ] {
            std::fs::write(root.path().join(f), "x").expect("file");
        }
        let names = |pattern: &str| {
            let mut found: Vec<String> = glob(root.path(), pattern)
                .expect("glob")
                .iter()
                .map(|p| {
                    p.strip_prefix(root.path())
                        .expect("inside")
                        .display()
                        .to_string()
                })
                .collect();
            found.sort();
            found
        };
        assert_eq!(names("out/*.deb"), ["out/a_1.0_amd64.deb", "out/b.deb"]);
        assert_eq!(names("*/*/?.deb"), ["out/sub/c.deb"]);
        assert_eq!(names("out/b.deb"), ["out/b.deb"]);
        assert!(names("out/*.rpm").is_empty());
        assert!(wildcard("a*b*c", "aXXbYc") && !wildcard("a*b", "ab c") && wildcard("*", ""));
    }
}
