//! Settings of the archive API and workers, read once from the environment.

use crate::origin::FetchLimits;
use crate::service::Settings;
use crate::tree::TreeLimits;
use cairn_callback::{AddressPolicy, Backoff};
use cairn_core::config::{ConfigError, number_or};
use std::time::Duration;

/// Everything the archive functions read from their environment.
#[derive(Debug, Clone)]
pub struct ArchiveConfig {
    /// DynamoDB single table.
    pub table: String,
    /// The archive bucket (immutable repositories and tarballs).
    pub archive_bucket: String,
    /// The archive worker's FIFO queue.
    pub archive_queue_url: String,
    /// The callback queue.
    pub callback_queue_url: String,
    /// How long the API waits for a result without `callback`.
    pub wait: Duration,
    /// Secrets Manager secret holding the callback HMAC key.
    pub callback_secret: Option<String>,
    /// Callback retry schedule (`max_attempts` matches the queue's maxReceiveCount).
    pub backoff: Backoff,
    /// Archive use-case settings.
    pub settings: Settings,
    /// The webhook dispatcher's queue, woken after each committed event.
    pub dispatch_queue_url: Option<String>,
    /// The API's public URL (stage included), where private archives are read
    /// (`<api>/v1/files/…`); the worker has no request to learn it from.
    pub api_url: Option<String>,
    /// The build bucket, where the archive worker reads build jobs' workspaces
    /// (`POST /v1/archives/{name}/workspace`).
    pub build_bucket: Option<String>,
}

impl ArchiveConfig {
    /// Reads the configuration through `get` (the process environment in Lambda).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));
        let number = |name, default| number_or(&get, name, default);
        let policy =
            AddressPolicy::parse_list(&get("CAIRN_OUTBOUND_ALLOW_LIST").unwrap_or_default())
                .map_err(|e| ConfigError::Invalid {
                    name: "CAIRN_OUTBOUND_ALLOW_LIST",
                    reason: e.to_string(),
                })?;
        let archive_bucket = required("CAIRN_ARCHIVE_BUCKET")?;
        Ok(Self {
            dispatch_queue_url: get("CAIRN_DISPATCH_QUEUE_URL"),
            api_url: get("CAIRN_API_URL").filter(|u| !u.is_empty()),
            build_bucket: get("CAIRN_BUILD_BUCKET").filter(|b| !b.is_empty()),
            table: required("CAIRN_TABLE")?,
            archive_queue_url: required("CAIRN_ARCHIVE_QUEUE_URL")?,
            callback_queue_url: required("CAIRN_CALLBACK_QUEUE_URL")?,
            wait: Duration::from_secs(number("CAIRN_ARCHIVE_WAIT_SECS", 25)?),
            callback_secret: get("CAIRN_CALLBACK_SECRET"),
            backoff: Backoff {
                base: Duration::from_secs(number("CAIRN_CALLBACK_BACKOFF_SECS", 30)?),
                max_delay: Duration::from_secs(900),
                max_attempts: number("CAIRN_CALLBACK_MAX_ATTEMPTS", 8)? as u32,
            },
            settings: Settings {
                policy,
                fetch: FetchLimits {
                    max_bytes: number("CAIRN_ARCHIVE_MAX_BYTES", 512 << 20)?,
                    timeout: Duration::from_secs(number("CAIRN_ARCHIVE_TIMEOUT_SECS", 600)?),
                },
                tree: TreeLimits {
                    max_objects: number("CAIRN_ARCHIVE_MAX_OBJECTS", 500_000)?,
                    max_bytes: number("CAIRN_ARCHIVE_MAX_TREE_BYTES", 2 << 30)?,
                },
                scratch: get("CAIRN_SCRATCH_DIR")
                    .unwrap_or_else(|| "/tmp/cairn-archive".into())
                    .into(),
                archive_base_url: get("CAIRN_ARCHIVE_BASE_URL")
                    .unwrap_or_else(|| format!("https://{archive_bucket}.s3.amazonaws.com")),
            },
            archive_bucket,
        })
    }

    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let c = ArchiveConfig::from_lookup(env(&[
            ("CAIRN_TABLE", "t"),
            ("CAIRN_ARCHIVE_BUCKET", "b"),
            ("CAIRN_ARCHIVE_QUEUE_URL", "q"),
            ("CAIRN_CALLBACK_QUEUE_URL", "c"),
            ("CAIRN_OUTBOUND_ALLOW_LIST", "127.0.0.1:18418"),
        ]))
        .unwrap();
        // A queue URL is not optional: without it nothing could be queued.
        let missing = ArchiveConfig::from_lookup(env(&[
            ("CAIRN_TABLE", "t"),
            ("CAIRN_ARCHIVE_BUCKET", "b"),
            ("CAIRN_CALLBACK_QUEUE_URL", "c"),
        ]))
        .unwrap_err();
        assert!(
            missing.to_string().contains("CAIRN_ARCHIVE_QUEUE_URL"),
            "{missing}"
        );
        assert_eq!(c.settings.fetch.max_bytes, 512 << 20);
        assert_eq!(c.settings.archive_base_url, "https://b.s3.amazonaws.com");
        assert_eq!(c.settings.policy.allow.len(), 1);
        let err = ArchiveConfig::from_lookup(env(&[
            ("CAIRN_TABLE", "t"),
            ("CAIRN_ARCHIVE_BUCKET", "b"),
            ("CAIRN_ARCHIVE_QUEUE_URL", "q"),
            ("CAIRN_CALLBACK_QUEUE_URL", "c"),
            ("CAIRN_OUTBOUND_ALLOW_LIST", "http://x"),
        ]))
        .unwrap_err();
        assert!(
            err.to_string().contains("CAIRN_OUTBOUND_ALLOW_LIST"),
            "{err}"
        );
    }
}
