//! `cairn apply`, `cairn build ...`: projects and builds through the builds API.

use crate::remote::{Api, Failure, Outcome};
use reqwest::Method;
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// `cairn apply FILE`: defines (or redefines) the project the file describes. The
/// file is checked here first, so a mistake is shown with its line before anything is
/// sent; the API checks it again.
pub async fn apply(file: &Path, name: Option<&str>) -> Outcome {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::usage(format!("{}: {e}", file.display())))?;
    let doc = cairn_core::builds::yaml::load(&text)
        .map_err(|e| Failure::usage(format!("{}: {e}", file.display())))?;
    cairn_core::builds::ProjectSpec::from_located(&doc).map_err(|e| Failure {
        code: 1,
        message: format!("{}: {e}", file.display()),
    })?;
    let name = match (name, doc.value["project"].as_str()) {
        (Some(n), _) | (None, Some(n)) => n.to_string(),
        (None, None) => {
            return Err(Failure::usage(
                "name the project: `project: <name>` in the file, or --project",
            ));
        }
    };
    let api = Api::logged_in()?;
    let (status, answer) = api
        .send(
            api.http
                .put(format!("{}/v1/projects/{name}", api.base))
                .header("content-type", "application/yaml")
                .body(text),
        )
        .await?;
    match status {
        201 => eprintln!("project {name} defined"),
        200 => eprintln!("project {name} updated (version {})", answer["version"]),
        _ => {
            return Err(Failure::answer(
                status,
                &answer,
                &format!("apply {}", file.display()),
            ));
        }
    }
    Ok(())
}

/// `cairn build start PROJECT`: prints the build's id; with `--wait`, follows it to
/// its end and fails (exit 1) unless it succeeded.
pub async fn start(project: &str, parameters: &[String], wait: bool, log: bool) -> Outcome {
    let mut values = serde_json::Map::new();
    for pair in parameters {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| Failure::usage(format!("--param {pair:?}: write it name=value")))?;
        values.insert(k.to_string(), json!(v));
    }
    let api = Api::logged_in()?;
    let build = api
        .expect(
            Method::POST,
            &format!("/v1/projects/{project}/builds"),
            Some(&json!({"parameters": values})),
            201,
            "start build",
        )
        .await?;
    let id = build["id"].as_str().unwrap_or_default().to_string();
    println!("{id}");
    if wait {
        return follow(&api, &id, log).await;
    }
    Ok(())
}

/// Follows build `id` until it ends; with `log`, prints each step's log as it comes.
async fn follow(api: &Api, id: &str, log: bool) -> Outcome {
    let mut offsets: Vec<u64> = Vec::new();
    loop {
        let build = api
            .expect(
                Method::GET,
                &format!("/v1/builds/{id}"),
                None,
                200,
                "show build",
            )
            .await?;
        if log {
            let steps = build["steps"].as_array().map_or(0, Vec::len);
            offsets.resize(steps, 0);
            for (step, offset) in offsets.iter_mut().enumerate() {
                let state = build["steps"][step]["state"].as_str().unwrap_or("");
                if matches!(state, "pending" | "queued" | "skipped") {
                    continue;
                }
                *offset = print_log(api, id, step, *offset).await?;
            }
        }
        let state = build["state"].as_str().unwrap_or("?");
        if matches!(state, "succeeded" | "failed" | "cancelled") {
            eprintln!(
                "build {id}: {state}{}",
                build["error"]
                    .as_str()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            );
            return if state == "succeeded" {
                Ok(())
            } else {
                Err(Failure {
                    code: 1,
                    message: format!("build {id} {state}"),
                })
            };
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Prints step `step`'s log from `offset` to what is stored now; the next offset.
async fn print_log(api: &Api, id: &str, step: usize, mut offset: u64) -> Outcome<u64> {
    loop {
        let response = api
            .http
            .get(format!(
                "{}/v1/builds/{id}/log?step={step}&offset={offset}",
                api.base
            ))
            .header("authorization", api.auth())
            .send()
            .await
            .map_err(|e| Failure::network(e.to_string()))?;
        let status = response.status().as_u16();
        let next = response
            .headers()
            .get("cairn-log-next-offset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(offset);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Failure::network(e.to_string()))?;
        if status != 200 {
            let answer = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            return Err(Failure::answer(status, &answer, "read log"));
        }
        std::io::stdout()
            .write_all(&bytes)
            .map_err(|e| Failure::network(e.to_string()))?;
        if next == offset || bytes.is_empty() {
            return Ok(next);
        }
        offset = next;
    }
}

/// `cairn build show ID`.
pub async fn show(id: &str) -> Outcome {
    let api = Api::logged_in()?;
    let build = api
        .expect(
            Method::GET,
            &format!("/v1/builds/{id}"),
            None,
            200,
            "show build",
        )
        .await?;
    println!(
        "{}",
        serde_json::to_string_pretty(&build).unwrap_or_default()
    );
    Ok(())
}

/// `cairn build list PROJECT`: one line per build, newest first.
pub async fn list(project: &str) -> Outcome {
    let api = Api::logged_in()?;
    let answer = api
        .expect(
            Method::GET,
            &format!("/v1/builds?project={project}"),
            None,
            200,
            "list builds",
        )
        .await?;
    for build in answer["builds"].as_array().into_iter().flatten() {
        println!(
            "{}\t{}\t{}",
            build["id"].as_str().unwrap_or("?"),
            build["state"].as_str().unwrap_or("?"),
            build["error"].as_str().unwrap_or(""),
        );
    }
    Ok(())
}

/// `cairn build log ID`: a step's log; with `--follow`, every step's until the end.
pub async fn log(id: &str, step: usize, follow_build: bool) -> Outcome {
    let api = Api::logged_in()?;
    if follow_build {
        return follow(&api, id, true).await;
    }
    print_log(&api, id, step, 0).await.map(|_| ())
}

/// `cairn build cancel ID`.
pub async fn cancel(id: &str) -> Outcome {
    let api = Api::logged_in()?;
    let build = api
        .expect(
            Method::POST,
            &format!("/v1/builds/{id}/cancel"),
            None,
            200,
            "cancel build",
        )
        .await?;
    eprintln!("build {id}: {}", build["state"].as_str().unwrap_or("?"));
    Ok(())
}
