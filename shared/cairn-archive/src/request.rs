//! The two request bodies and their validation. Everything here runs before any
//! network access: a request that fails it is refused without touching the origin.

use crate::ArchiveError;
use cairn_callback::{AddressPolicy, Callback, MAX_URL_LEN, check_url};
use serde::{Deserialize, Serialize};
use url::Url;

/// Longest ref accepted.
const MAX_REF_LEN: usize = 255;

/// `POST /v1/archives`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveRequest {
    /// Internal repository name.
    pub name: String,
    /// Origin URL.
    pub url: String,
    /// Branch, tag or commit id.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Asynchronous mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<Callback>,
}

/// `POST /v1/archives/{name}/workspace` as the API queues it: archive under `name` the
/// tree of a build job's workspace folder, saved as blob `sha256` (a `.tar.gz`) of
/// the project's artifact store. The API fills in `made_by` from the build record,
/// never from the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceRequest {
    /// Internal repository name.
    pub name: String,
    /// The blob's SHA-256 (hex).
    pub sha256: String,
    /// The job it came from.
    pub made_by: crate::model::MadeBy,
    /// Asynchronous mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<Callback>,
}

/// Repour's `POST /clone`: `{"type": "git", "originRepoUrl", "ref", "targetRepoUrl"}`;
/// Cairn also takes `name` instead of `targetRepoUrl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloneRequest {
    /// Only `git`.
    #[serde(rename = "type", default = "git")]
    pub kind: String,
    /// Origin URL.
    pub origin_repo_url: String,
    /// Branch, tag or commit id.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Internal repository name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Repour's way to name the target: a readonly URL of this service whose last
    /// path component (without `.git`) is the name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_repo_url: Option<String>,
    /// Asynchronous mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<Callback>,
}

fn git() -> String {
    "git".into()
}

impl CloneRequest {
    /// The internal repository: `name`, or the last component of `targetRepoUrl`.
    pub fn target_name(&self) -> Result<String, ArchiveError> {
        if let Some(name) = &self.name {
            return Ok(name.clone());
        }
        let target = self
            .target_repo_url
            .as_deref()
            .ok_or_else(|| ArchiveError::Invalid("name (or targetRepoUrl) is required".into()))?;
        let last = target
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default();
        Ok(last.strip_suffix(".git").unwrap_or(last).to_owned())
    }

    /// Checks everything but DNS.
    pub fn validate(&self) -> Result<(), ArchiveError> {
        if self.kind != "git" {
            return Err(ArchiveError::Invalid(format!(
                "type '{}' is not supported: only git",
                self.kind
            )));
        }
        validate_name(&self.target_name()?)?;
        parse_origin(&self.origin_repo_url)?;
        validate_ref(&self.reference)
    }
}

impl ArchiveRequest {
    /// Checks everything but DNS.
    pub fn validate(&self) -> Result<(), ArchiveError> {
        validate_name(&self.name)?;
        parse_origin(&self.url)?;
        validate_ref(&self.reference)
    }
}

/// Internal repository names: `[A-Za-z0-9][A-Za-z0-9._-]*`, at most 100 characters,
/// not ending in `.git` (the readonly URL adds it) nor `.lock`.
pub fn validate_name(name: &str) -> Result<(), ArchiveError> {
    cairn_core::repositories::check_archive_name(name).map_err(ArchiveError::Invalid)
}

/// Parses an origin URL: `http`/`https` only, a host, no credentials, no fragment.
/// Local paths, `file://`, `ssh://`, `git://` and scp-like `host:path` are refused.
pub fn parse_origin(raw: &str) -> Result<Url, ArchiveError> {
    let bad = |why: String| ArchiveError::BadUrl(why);
    if raw.len() > MAX_URL_LEN {
        return Err(bad(format!("longer than {MAX_URL_LEN} characters")));
    }
    let url = Url::parse(raw).map_err(|e| {
        bad(format!(
            "'{raw}' is not an absolute URL ({e}); local paths are not accepted, use http:// or https://"
        ))
    })?;
    match url.scheme() {
        "http" | "https" => {}
        other => {
            return Err(bad(format!(
                "scheme '{other}' is not allowed: only http:// and https:// origins are fetched"
            )));
        }
    }
    if url.host().is_none() {
        return Err(bad("the URL has no host".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "credentials in the URL are not accepted: Cairn archives public origins".into(),
        ));
    }
    if url.fragment().is_some() {
        return Err(bad("the URL has a fragment".into()));
    }
    Ok(url)
}

/// Parses and resolves an origin URL; refuses special-range addresses unless
/// `policy` allows them. The git client later re-checks every address it connects to.
pub async fn check_origin(raw: &str, policy: &AddressPolicy) -> Result<Url, ArchiveError> {
    let url = parse_origin(raw)?;
    check_url(&url, policy).await?;
    Ok(url)
}

/// A ref as git's `check-ref-format` would take it (plus: no leading `-`), or a
/// 40-hex commit id.
pub fn validate_ref(reference: &str) -> Result<(), ArchiveError> {
    let bad = |why: &str| {
        Err(ArchiveError::Invalid(format!(
            "invalid ref '{}': {why}",
            reference.escape_default()
        )))
    };
    if reference.is_empty() || reference.len() > MAX_REF_LEN {
        return bad("empty or too long");
    }
    if reference
        .chars()
        .any(|c| c.is_control() || " ~^:?*[\\".contains(c))
    {
        return bad("control characters, spaces and ~^:?*[\\ are not allowed");
    }
    if reference.starts_with('-') || reference.starts_with('/') || reference.ends_with('/') {
        return bad("must not start with '-' or '/', nor end with '/'");
    }
    if reference.contains("..") || reference.contains("@{") || reference.contains("//") {
        return bad("'..', '@{' and '//' are not allowed");
    }
    if reference.ends_with('.') || reference.ends_with(".lock") || reference == "@" {
        return bad("must not end with '.' or '.lock'");
    }
    if reference.split('/').any(|c| c.starts_with('.')) {
        return bad("no component may start with '.'");
    }
    Ok(())
}

/// Whether `reference` is a full commit id rather than a name.
pub fn is_commit_id(reference: &str) -> bool {
    reference.len() == 40 && reference.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["demo", "a", "tarantool-2.11", "x_y.z"] {
            validate_name(ok).unwrap();
        }
        for bad in [
            "",
            "../x",
            "-x",
            ".x",
            "a/b",
            "x.git",
            "a..b",
            "x y",
            &"n".repeat(101),
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls() {
        parse_origin("https://github.com/tarantool/tarantool.git").unwrap();
        parse_origin("http://127.0.0.1:18418/x.git").unwrap();
        for (bad, says) in [
            ("file:///etc", "scheme 'file'"),
            ("/srv/git/x.git", "local paths"),
            ("ssh://git@host/x.git", "scheme 'ssh'"),
            ("git://host/x.git", "scheme 'git'"),
            ("git@github.com:x/y.git", "local paths"),
            ("https://user:pw@host/x.git", "credentials"),
            ("https://host/x.git#frag", "fragment"),
        ] {
            let err = parse_origin(bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[tokio::test]
    async fn private_origins_refused_unless_allowed() {
        let refuse = AddressPolicy::default();
        for url in [
            "http://127.0.0.1:18418/x.git",
            "http://localhost:18418/x.git",
            "http://169.254.169.254/latest",
            "http://[::1]/x",
            "http://10.1.2.3/x",
        ] {
            let err = check_origin(url, &refuse).await.unwrap_err();
            assert!(matches!(err, ArchiveError::Refused(_)), "{url}: {err}");
        }
        let allow = AddressPolicy::parse_list("127.0.0.1:18418").unwrap();
        check_origin("http://127.0.0.1:18418/x.git", &allow)
            .await
            .unwrap();
        assert!(
            check_origin("http://127.0.0.1:18420/x.git", &allow)
                .await
                .is_err()
        );
    }

    #[test]
    fn refs() {
        for ok in [
            "main",
            "refs/heads/main",
            "v1.0",
            "release/2.11",
            &"a".repeat(40),
        ] {
            validate_ref(ok).unwrap();
        }
        for bad in [
            "", "-x", "a..b", "a b", "a:b", "a~1", "x^", "x.lock", "/x", "x/", ".x", "a/.b",
            "a@{1}", "a\nb",
        ] {
            assert!(validate_ref(bad).is_err(), "{bad:?}");
        }
        assert!(is_commit_id(&"ab".repeat(20)));
        assert!(!is_commit_id("abc"));
    }

    #[test]
    fn clone_bodies() {
        let body: CloneRequest = serde_json::from_str(
            r#"{"type":"git","originRepoUrl":"https://h/x.git","ref":"v1","targetRepoUrl":"https://cairn/git/demo.git"}"#,
        )
        .unwrap();
        assert_eq!(body.target_name().unwrap(), "demo");
        body.validate().unwrap();
        let svn: CloneRequest = serde_json::from_str(
            r#"{"type":"svn","originRepoUrl":"https://h/x","ref":"v1","name":"d"}"#,
        )
        .unwrap();
        assert!(svn.validate().is_err());
        assert!(
            serde_json::from_str::<ArchiveRequest>(r#"{"name":"d","url":"u","ref":"r","x":1}"#)
                .is_err()
        );
    }
}
