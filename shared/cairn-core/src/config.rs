//! Function configuration, read once at start-up from the environment that
//! `template.yaml` declares.

use crate::repo::SupportedRepos;

/// Largest request body the API accepts directly. API Gateway and Lambda limit a
/// synchronous request to 6 MB, and binary bodies arrive base64-encoded (4/3 larger).
pub const DEFAULT_MAX_API_UPLOAD: u64 = 4 * 1024 * 1024;

/// How many days events stay in the log unless `CAIRN_EVENT_RETENTION_DAYS` says.
pub const DEFAULT_EVENT_RETENTION_DAYS: u32 = 30;

/// How long superseded metadata files stay unless `CAIRN_SUPERSEDED_GRACE_SECONDS` says.
pub const DEFAULT_SUPERSEDED_GRACE_SECS: u64 = 86_400;

/// Settings shared by every Cairn function.
#[derive(Debug, Clone)]
pub struct Config {
    /// DynamoDB single table.
    pub table: String,
    /// Public repository bucket (pool and metadata).
    pub repo_bucket: String,
    /// Private bucket for presigned uploads.
    pub staging_bucket: String,
    /// URL of the metadata-sync FIFO queue.
    pub sync_queue_url: String,
    /// Repositories that accept uploads.
    pub supported: SupportedRepos,
    /// Public base URL of the repository bucket, for messages and sources lines.
    pub repo_base_url: String,
    /// The API's public URL (stage included), for the live repository pages; none
    /// leaves them static.
    pub api_url: Option<String>,
    /// Largest body accepted by the upload API; larger packages use presigned uploads.
    pub max_api_upload: u64,
    /// Lifetime of presigned upload URLs, seconds.
    pub presign_ttl_secs: u64,
    /// `Origin`/`Label` of published repositories.
    pub origin: String,
    /// How many days events stay in the log.
    pub event_retention_days: u32,
    /// The webhook dispatcher's queue, woken after each committed event (none: the
    /// dispatcher's schedule alone finds the events).
    pub dispatch_queue_url: Option<String>,
    /// Paths where an upload to a path that is no repository creates it (public,
    /// owned by the uploader) instead of answering 404: `sandbox/*`. Empty: none.
    pub auto_create: Vec<crate::access::Pattern>,
    /// Seconds a superseded index or repodata file stays in the bucket before it is
    /// pruned (`CAIRN_SUPERSEDED_GRACE_SECONDS`, default a day).
    pub superseded_grace_secs: i64,
}

/// A missing or malformed setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is absent.
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    /// A variable does not parse.
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Why.
        reason: String,
    },
}

/// The number in variable `name` (read through `get`), or `default` when it is unset.
pub fn number_or(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
) -> Result<u64, ConfigError> {
    match get(name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|e| ConfigError::Invalid {
            name,
            reason: format!("{e}"),
        }),
    }
}

/// The configured repositories, `CAIRN_SUPPORTED_REPOS`, read through `get`: for
/// the functions that need them without the rest of [`Config`].
pub fn supported_repos(
    get: impl Fn(&str) -> Option<String>,
) -> Result<SupportedRepos, ConfigError> {
    let json = get("CAIRN_SUPPORTED_REPOS").ok_or(ConfigError::Missing("CAIRN_SUPPORTED_REPOS"))?;
    serde_json::from_str(&json).map_err(|e| ConfigError::Invalid {
        name: "CAIRN_SUPPORTED_REPOS",
        reason: e.to_string(),
    })
}

impl Config {
    /// Where a repository's files are read: the bucket's URL for public
    /// repositories, the API's read path (`<api>/v1/files`) for private ones, with
    /// `api` the API's URL as a request reached it, else the configured one.
    pub fn files_base_url(&self, private: bool, api: Option<&str>) -> String {
        match (api.or(self.api_url.as_deref()), private) {
            (Some(api), true) => format!("{}/v1/files", api.trim_end_matches('/')),
            _ => self.repo_base_url.clone(),
        }
    }

    /// Reads the configuration through `get` (the process environment in Lambda).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));
        let number = |name, default| number_or(&get, name, default);
        let supported = supported_repos(&get)?;
        Ok(Self {
            table: required("CAIRN_TABLE")?,
            repo_bucket: required("CAIRN_REPO_BUCKET")?,
            staging_bucket: required("CAIRN_STAGING_BUCKET")?,
            sync_queue_url: required("CAIRN_SYNC_QUEUE_URL")?,
            supported,
            repo_base_url: get("CAIRN_REPO_BASE_URL").unwrap_or_default(),
            api_url: get("CAIRN_API_URL").filter(|url| !url.is_empty()),
            max_api_upload: number("CAIRN_MAX_API_UPLOAD", DEFAULT_MAX_API_UPLOAD)?,
            presign_ttl_secs: number("CAIRN_PRESIGN_TTL", 3600)?,
            origin: get("CAIRN_ORIGIN").unwrap_or_else(|| "Cairn".into()),
            event_retention_days: u32::try_from(number(
                "CAIRN_EVENT_RETENTION_DAYS",
                u64::from(DEFAULT_EVENT_RETENTION_DAYS),
            )?)
            .map_err(|e| ConfigError::Invalid {
                name: "CAIRN_EVENT_RETENTION_DAYS",
                reason: e.to_string(),
            })?,
            dispatch_queue_url: get("CAIRN_DISPATCH_QUEUE_URL"),
            superseded_grace_secs: i64::try_from(number(
                "CAIRN_SUPERSEDED_GRACE_SECONDS",
                DEFAULT_SUPERSEDED_GRACE_SECS,
            )?)
            .map_err(|e| ConfigError::Invalid {
                name: "CAIRN_SUPERSEDED_GRACE_SECONDS",
                reason: e.to_string(),
            })?,
            auto_create: get("CAIRN_AUTO_CREATE_REPOSITORIES")
                .unwrap_or_default()
                .split([',', ' '])
                .filter(|p| !p.is_empty())
                .map(crate::access::Pattern::parse)
                .collect::<Result<_, _>>()
                .map_err(|reason| ConfigError::Invalid {
                    name: "CAIRN_AUTO_CREATE_REPOSITORIES",
                    reason,
                })?,
        })
    }

    /// Whether an upload to `path`, no repository yet, creates it.
    pub fn auto_creates(&self, path: &str) -> bool {
        self.auto_create.iter().any(|p| p.matches(path))
    }

    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }
}
