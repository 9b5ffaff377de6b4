//! `cairn repo`: repositories as resources, through `/v1/repositories`.

use crate::remote::{Api, Failure, Outcome};
use reqwest::Method;
use serde_json::{Map, Value, json};

/// What `cairn repo create` sends.
pub struct Create {
    /// `kind/series/dist/version`.
    pub path: String,
    /// `apt`, `yum`, `helm` or `archive`.
    pub format: String,
    /// What it is for.
    pub description: String,
    /// Private rather than public.
    pub private: bool,
    /// `key=value` labels.
    pub labels: Vec<String>,
    /// Further owners.
    pub owners: Vec<String>,
}

fn labels(pairs: &[String]) -> Outcome<Map<String, Value>> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), json!(v))),
            None => Err(Failure::usage(format!(
                "label {pair:?}: write it key=value"
            ))),
        })
        .collect()
}

fn path_of(path: &str) -> String {
    path.trim_matches('/').to_string()
}

/// One line per repository: path, format, visibility, owners, labels.
fn line(r: &Value) -> String {
    let text = |v: &Value| v.as_str().unwrap_or("?").to_string();
    let list = |v: &Value| {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    };
    let labels = r["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let owners = if r["configured"] == true {
        "(configured)".to_string()
    } else {
        list(&r["owners"])
    };
    let state = if r["state"] == "deleting" {
        " deleting"
    } else {
        ""
    };
    format!(
        "{}  {}  {}  {}  {}{}",
        text(&r["path"]),
        text(&r["format"]),
        text(&r["visibility"]),
        owners,
        labels,
        state
    )
    .trim_end()
    .to_string()
}

/// `cairn repo create`.
pub async fn create(c: Create) -> Outcome {
    let body = json!({
        "path": path_of(&c.path), "format": c.format, "description": c.description,
        "visibility": if c.private { "private" } else { "public" },
        "labels": labels(&c.labels)?, "owners": c.owners,
    });
    let created = Api::logged_in()?
        .expect(Method::POST, "/v1/repositories", Some(&body), 201, "create")
        .await?;
    println!("{}", line(&created));
    Ok(())
}

/// `cairn repo list`.
pub async fn list(selector: Option<&str>) -> Outcome {
    let path = match selector {
        Some(s) => {
            let mut url = reqwest::Url::parse("http://x/v1/repositories")
                .map_err(|e| Failure::usage(e.to_string()))?;
            url.query_pairs_mut().append_pair("selector", s);
            format!("/v1/repositories?{}", url.query().unwrap_or_default())
        }
        None => "/v1/repositories".to_string(),
    };
    let listed = Api::logged_in()?
        .expect(Method::GET, &path, None, 200, "list")
        .await?;
    for r in listed["repositories"].as_array().into_iter().flatten() {
        println!("{}", line(r));
    }
    Ok(())
}

/// `cairn repo show`: the repository as JSON.
pub async fn show(path: &str) -> Outcome {
    let shown = Api::logged_in()?
        .expect(
            Method::GET,
            &format!("/v1/repositories/{}", path_of(path)),
            None,
            200,
            "show",
        )
        .await?;
    println!(
        "{}",
        serde_json::to_string_pretty(&shown).unwrap_or_default()
    );
    Ok(())
}

/// `cairn repo delete`.
pub async fn delete(path: &str, force: bool) -> Outcome {
    let path = path_of(path);
    let query = if force { "?force=true" } else { "" };
    let api = Api::logged_in()?;
    let uri = format!("/v1/repositories/{path}{query}");
    match api.request(Method::DELETE, &uri, None).await? {
        (204, _) => eprintln!("repository {path} deleted"),
        (202, answer) => eprintln!(
            "repository {path} is being deleted: its {} package(s) go with the next publication",
            answer["packages"]
        ),
        (status, answer) => return Err(Failure::answer(status, &answer, "delete")),
    }
    Ok(())
}
