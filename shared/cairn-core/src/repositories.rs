//! Repositories as resources: a package repository with a description, owners,
//! visibility and labels, created through the API rather than only configured in
//! `SupportedRepos` (which becomes a seed list).
//!
//! This module holds the record, the validation of a creation request and the
//! store port. Resolving uploads and publications against created repositories, the
//! `/v1/repositories` routes and private reads build on it (docs/access.md, "Next").

use crate::error::StoreError;
use crate::labels::{Labels, Selector, check_labels};
use crate::repo::{DistConfig, MetadataCompression, RepoFormat, RepoPath, SupportedRepos};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Longest description.
pub const MAX_DESCRIPTION: usize = 1000;
/// Most owners of one repository.
pub const MAX_OWNERS: usize = 20;

/// Who may see a repository.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Anyone, without credentials.
    #[default]
    Public,
    /// Its owners, admins, and accounts whose selectors match its labels.
    Private,
}

/// A package repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repository {
    /// Where it lives: `kind/series/dist/version`.
    pub path: String,
    /// What it holds.
    pub format: RepoFormat,
    /// Architectures every publication indexes (empty: the format's defaults).
    #[serde(default)]
    pub architectures: Vec<String>,
    /// YUM metadata compression.
    #[serde(default)]
    pub metadata_compression: MetadataCompression,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// Who may see it.
    #[serde(default)]
    pub visibility: Visibility,
    /// Its labels, matched by selectors.
    #[serde(default)]
    pub labels: Labels,
    /// Accounts that manage it (its creator among them).
    #[serde(default)]
    pub owners: Vec<String>,
    /// When it was created, Unix seconds.
    pub created_at: i64,
    /// Incremented by every change (conditional writes).
    pub version: u64,
}

impl Repository {
    /// The repository's path, parsed.
    pub fn repo_path(&self) -> Result<RepoPath, String> {
        RepoPath::parse(&self.path).map_err(|e| e.to_string())
    }

    /// How it is published, in the shape the publishers read.
    pub fn dist_config(&self) -> Result<DistConfig, String> {
        let path = self.repo_path()?;
        Ok(DistConfig {
            format: self.format,
            versions: vec![path.dist_ver],
            architectures: self.architectures.clone(),
            metadata_compression: self.metadata_compression,
        })
    }

    /// Whether `account` (with `admin` if `is_admin`, and its `selectors`) sees it.
    pub fn visible_to(
        &self,
        account: Option<&str>,
        is_admin: bool,
        selectors: &[Selector],
    ) -> bool {
        self.visibility == Visibility::Public
            || is_admin
            || account.is_some_and(|a| self.owners.iter().any(|o| o == a))
            || (account.is_some() && selectors.iter().any(|s| s.matches(&self.labels)))
    }
}

/// A request to create a repository, as the API receives it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRepository {
    /// `apt`, `yum` or `helm`.
    pub format: String,
    /// `kind/series/dist/version`.
    pub path: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// `public` (default) or `private`.
    #[serde(default)]
    pub visibility: Visibility,
    /// Labels.
    #[serde(default)]
    pub labels: Labels,
    /// Further owners besides the creator.
    #[serde(default)]
    pub owners: Vec<String>,
    /// Architectures to index (default: the format's).
    #[serde(default)]
    pub architectures: Vec<String>,
}

impl NewRepository {
    /// Checks the request and makes the record `creator` owns.
    pub fn validate(self, creator: &str, now: i64) -> Result<Repository, String> {
        let format = match self.format.as_str() {
            "apt" | "deb" => RepoFormat::Deb,
            "yum" | "rpm" => RepoFormat::Rpm,
            "helm" => RepoFormat::Helm,
            other => {
                return Err(format!(
                    "format {other:?}: apt, yum or helm (archives are named, not created)"
                ));
            }
        };
        let path = RepoPath::parse(self.path.trim_matches('/')).map_err(|e| e.to_string())?;
        if self.description.chars().count() > MAX_DESCRIPTION
            || self
                .description
                .chars()
                .any(|c| c.is_control() && c != '\n')
        {
            return Err(format!(
                "description: at most {MAX_DESCRIPTION} characters, no control characters"
            ));
        }
        check_labels(&self.labels)?;
        let mut owners = vec![creator.to_string()];
        for owner in self.owners {
            if owner.is_empty() || owner.len() > crate::auth::MAX_USER_NAME || owner.contains(':') {
                return Err(format!("owner {owner:?} is not an account name"));
            }
            if !owners.contains(&owner) {
                owners.push(owner);
            }
        }
        if owners.len() > MAX_OWNERS {
            return Err(format!("at most {MAX_OWNERS} owners"));
        }
        for arch in &self.architectures {
            let ok = !arch.is_empty()
                && arch.len() <= 32
                && arch
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
            if !ok {
                return Err(format!("architecture {arch:?} is not a name"));
            }
        }
        Ok(Repository {
            path: path.to_string(),
            format,
            architectures: self.architectures,
            metadata_compression: MetadataCompression::default(),
            description: self.description,
            visibility: self.visibility,
            labels: self.labels,
            owners,
            created_at: now,
            version: 1,
        })
    }
}

/// Where created repositories are kept.
#[async_trait]
pub trait RepositoryStore: Send + Sync {
    /// Creates a repository; false when its path is taken.
    async fn create_repository(&self, repo: &Repository) -> Result<bool, StoreError>;
    /// A repository by path.
    async fn get_repository(&self, path: &str) -> Result<Option<Repository>, StoreError>;
    /// Every created repository.
    async fn list_repositories(&self) -> Result<Vec<Repository>, StoreError>;
    /// Replaces a repository if it is still at `repo.version - 1`; false otherwise.
    async fn replace_repository(&self, repo: &Repository) -> Result<bool, StoreError>;
}

/// The repositories `paths` name: the configured ones, and those created through the
/// API besides (one read per path that configuration does not know). Ingest and
/// publish then check paths against the answer as they check configuration.
pub async fn resolve(
    seed: &SupportedRepos,
    store: &dyn RepositoryStore,
    paths: &[RepoPath],
) -> Result<SupportedRepos, StoreError> {
    let mut created = Vec::new();
    for path in paths {
        if seed.check(path).is_ok() {
            continue;
        }
        if let Some(repo) = store.get_repository(&path.to_string()).await? {
            match repo.dist_config() {
                Ok(dist) => created.push((path.clone(), dist)),
                Err(e) => tracing::warn!(path = %path, error = %e, "unreadable repository record"),
            }
        }
    }
    Ok(seed.with_created(created))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: serde_json::Value) -> Result<Repository, String> {
        let new: NewRepository = serde_json::from_value(body).map_err(|e| e.to_string())?;
        new.validate("alice", 100)
    }

    #[test]
    fn a_request_becomes_a_record_its_creator_owns() {
        let repo = request(serde_json::json!({
            "format": "apt", "path": "/team/db/ubuntu/noble/", "description": "DB builds",
            "visibility": "private", "labels": {"team": "db"}, "owners": ["bob", "alice"]
        }))
        .expect("valid");
        assert_eq!(repo.path, "team/db/ubuntu/noble");
        assert_eq!(repo.format, RepoFormat::Deb);
        assert_eq!(repo.owners, ["alice", "bob"]);
        assert_eq!(repo.dist_config().expect("config").versions, ["noble"]);
        let db = Selector::parse("team=db").expect("valid");
        let web = Selector::parse("team=web").expect("valid");
        assert!(repo.visible_to(Some("alice"), false, &[]));
        assert!(repo.visible_to(Some("carol"), false, std::slice::from_ref(&db)));
        assert!(!repo.visible_to(Some("carol"), false, &[web]));
        assert!(
            !repo.visible_to(None, false, &[db]),
            "selectors are an account's"
        );
        assert!(repo.visible_to(Some("root"), true, &[]));
    }

    #[tokio::test]
    async fn created_repositories_resolve_beside_configured_ones() {
        let store = crate::memory::MemoryCatalog::default();
        let created =
            request(serde_json::json!({"format": "yum", "path": "team/db/el/9"})).expect("valid");
        assert!(store.create_repository(&created).await.expect("store"));
        let seed: SupportedRepos = serde_json::from_str(
            r#"{"kinds":["release"],"series":["1"],"dists":{"ubuntu":{"format":"deb","versions":["jammy"]}}}"#,
        )
        .expect("config");
        let paths = ["release/1/ubuntu/jammy", "team/db/el/9", "team/db/el/8"]
            .map(|p| RepoPath::parse(p).expect("valid"));
        let resolved = resolve(&seed, &store, &paths).await.expect("resolve");
        assert_eq!(
            resolved.check(&paths[0]).expect("configured").format,
            RepoFormat::Deb
        );
        assert_eq!(
            resolved.check(&paths[1]).expect("created").format,
            RepoFormat::Rpm
        );
        assert!(
            resolved.check(&paths[2]).is_err(),
            "neither configured nor created"
        );
        assert!(
            seed.check(&paths[1]).is_err(),
            "the seed itself is unchanged"
        );
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        for (body, words) in [
            (
                serde_json::json!({"format": "zip", "path": "a/b/c/d"}),
                "format",
            ),
            (serde_json::json!({"format": "apt", "path": "a/../c/d"}), ""),
            (serde_json::json!({"format": "apt", "path": "a/b/c"}), ""),
            (
                serde_json::json!({"format": "yum", "path": "a/b/c/d", "labels": {"bad key": "x"}}),
                "label key",
            ),
            (
                serde_json::json!({"format": "helm", "path": "a/b/c/d", "owners": ["x:y"]}),
                "owner",
            ),
            (
                serde_json::json!({"format": "apt", "path": "a/b/c/d", "architectures": ["amd64/x"]}),
                "architecture",
            ),
            (
                serde_json::json!({"format": "apt", "path": "a/b/c/d", "visibility": "secret"}),
                "unknown variant",
            ),
            (
                serde_json::json!({"format": "apt", "path": "a/b/c/d", "extra": 1}),
                "unknown field",
            ),
        ] {
            let e = request(body.clone()).expect_err(&body.to_string());
            assert!(e.contains(words), "{body}: {e}");
        }
    }
}
