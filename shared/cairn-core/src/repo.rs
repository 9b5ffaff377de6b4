//! Repository coordinates (`{kind}/{series}/{dist}/{dist_ver}`, as RWS names them)
//! and the configured set of repositories that may be written to.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The package format a distribution's repositories hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RepoFormat {
    /// APT: `.deb` packages, `dists/` and `pool/`.
    Deb,
    /// YUM/DNF: `.rpm` packages, one `repodata/` per architecture directory.
    Rpm,
    /// Helm chart repository: packaged charts and `index.yaml`.
    Helm,
}

impl RepoFormat {
    /// The name used in configuration and answers (`deb`, `rpm`, `helm`).
    pub fn as_str(self) -> &'static str {
        match self {
            RepoFormat::Deb => "deb",
            RepoFormat::Rpm => "rpm",
            RepoFormat::Helm => "helm",
        }
    }

    /// The file name endings an upload to this format may have.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            RepoFormat::Deb => &[
                ".deb",
                ".dsc",
                ".tar.gz",
                ".tar.xz",
                ".tar.bz2",
                ".tar.zst",
                ".tar.lzma",
                ".diff.gz",
            ],
            RepoFormat::Rpm => &[".rpm"],
            RepoFormat::Helm => &[".tgz", ".tgz.prov"],
        }
    }
}

/// One APT suite of one repository, e.g. `release/2.11/ubuntu/jammy`.
///
/// The APT repository root is `{kind}/{series}/{dist}` and the suite is `{dist_ver}`,
/// so the sources line is `deb <base>/{kind}/{series}/{dist} {dist_ver} main`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RepoPath {
    /// Repository kind, e.g. `release` or `pre-release`.
    pub kind: String,
    /// Product series, e.g. `2.11`.
    pub series: String,
    /// Distribution, e.g. `ubuntu`.
    pub dist: String,
    /// Distribution version (the APT suite), e.g. `jammy`.
    pub dist_ver: String,
}

/// Why a repository path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepoError {
    /// A segment has characters that cannot appear in a repository path.
    #[error("invalid repository path segment {0:?}")]
    BadSegment(String),
    /// The path is well formed but not configured.
    #[error("unknown repository {path}: {reason}")]
    Unsupported {
        /// The requested path.
        path: String,
        /// Which segment is not configured.
        reason: String,
    },
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

impl RepoPath {
    /// Builds a path from its four segments, checking only their syntax.
    pub fn new(kind: &str, series: &str, dist: &str, dist_ver: &str) -> Result<Self, RepoError> {
        for s in [kind, series, dist, dist_ver] {
            if !valid_segment(s) {
                return Err(RepoError::BadSegment(s.to_string()));
            }
        }
        Ok(Self {
            kind: kind.into(),
            series: series.into(),
            dist: dist.into(),
            dist_ver: dist_ver.into(),
        })
    }

    /// Parses `kind/series/dist/dist_ver`.
    pub fn parse(path: &str) -> Result<Self, RepoError> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        match parts.as_slice() {
            [k, s, d, v] => Self::new(k, s, d, v),
            _ => Err(RepoError::BadSegment(path.to_string())),
        }
    }

    /// The APT repository root inside the bucket: `kind/series/dist`.
    pub fn root(&self) -> String {
        format!("{}/{}/{}", self.kind, self.series, self.dist)
    }

    /// The folder of this repository's own files: `kind/series/dist/dist_ver`. For
    /// YUM repositories it holds one repository per architecture folder, for Helm
    /// the charts and `index.yaml`; APT suites share [`RepoPath::root`] instead.
    pub fn dir(&self) -> String {
        format!("{}/{}", self.root(), self.dist_ver)
    }

    /// The APT suite (and codename): `dist_ver`.
    pub fn suite(&self) -> &str {
        &self.dist_ver
    }
}

impl fmt::Display for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.kind, self.series, self.dist, self.dist_ver
        )
    }
}

/// How one distribution is published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistConfig {
    /// Package format of this distribution's repositories.
    pub format: RepoFormat,
    /// Accepted distribution versions (APT suites).
    pub versions: Vec<String>,
    /// Architectures every suite publishes an index for, even if empty
    /// (default: `amd64`, `arm64` for APT; `x86_64`, `aarch64` for YUM).
    #[serde(default)]
    pub architectures: Vec<String>,
    /// How YUM repodata documents are compressed (`gzip`, the default every yum and
    /// dnf reads, or `zstd`, smaller and faster, read by dnf with a zstd-enabled
    /// libsolv: Fedora, EL 9). Ignored by the other formats.
    #[serde(default)]
    pub metadata_compression: MetadataCompression,
    /// Where a private repository's files are kept in the bucket: this prefix and
    /// then the usual keys. The bucket's public read excludes `private/`; readers go
    /// through the API's read path. `None` for public repositories (configured ones
    /// always are).
    #[serde(skip)]
    pub private_prefix: Option<String>,
}

/// Compression of YUM repodata documents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetadataCompression {
    /// `.xml.gz`.
    #[default]
    Gzip,
    /// `.xml.zst`.
    Zstd,
}

impl DistConfig {
    /// The configured architectures, or the format's defaults.
    pub fn architectures(&self) -> Vec<String> {
        if !self.architectures.is_empty() {
            return self.architectures.clone();
        }
        let defaults: &[&str] = match self.format {
            RepoFormat::Deb => &["amd64", "arm64"],
            RepoFormat::Rpm => &["x86_64", "aarch64"],
            RepoFormat::Helm => &[],
        };
        defaults.iter().map(|a| a.to_string()).collect()
    }
}

/// The repositories that accept uploads, like RWS's `supported_repos`:
/// every combination of a kind, a series and a configured distribution version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupportedRepos {
    /// Accepted kinds.
    pub kinds: Vec<String>,
    /// Accepted series.
    pub series: Vec<String>,
    /// Accepted distributions, by name.
    pub dists: BTreeMap<String, DistConfig>,
    /// Anchors, as RWS has `enabled`: a name used in the series position that fans
    /// one upload out to every listed series (`PUT /release/enabled/el/8`).
    #[serde(default)]
    pub anchors: BTreeMap<String, Vec<String>>,
    /// Repositories created through the API (not configuration): path -> settings.
    /// Filled per request for the paths it touches ([`SupportedRepos::with_created`]).
    #[serde(skip)]
    pub created: BTreeMap<String, DistConfig>,
    /// Retention: keep only the newest K versions of each package (per
    /// architecture). Keys are repository paths or whole-segment prefixes of them
    /// (`live`, `live/3.0`, `release/2.11/el/8`); the longest matching key wins.
    #[serde(default)]
    pub retention: BTreeMap<String, u32>,
}

impl SupportedRepos {
    /// The repositories an upload to `path` goes to: the path itself, or one per
    /// series of the anchor named in its series position.
    pub fn expand(&self, path: &RepoPath) -> Vec<RepoPath> {
        match self.anchors.get(&path.series) {
            Some(series) => series
                .iter()
                .map(|s| RepoPath {
                    series: s.clone(),
                    ..path.clone()
                })
                .collect(),
            None => vec![path.clone()],
        }
    }

    /// How many versions of each package `repo` keeps, if it has a retention policy.
    pub fn retention_for(&self, repo: &RepoPath) -> Option<u32> {
        let full = repo.to_string();
        self.retention
            .iter()
            .filter(|(prefix, _)| {
                let prefix = prefix.trim_matches('/');
                full == prefix || full.starts_with(&format!("{prefix}/"))
            })
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, keep)| (*keep).max(1))
    }

    /// These repositories and `created` ones besides (a created repository wins over
    /// nothing: configuration is checked second).
    pub fn with_created(&self, created: impl IntoIterator<Item = (RepoPath, DistConfig)>) -> Self {
        let mut out = self.clone();
        out.created
            .extend(created.into_iter().map(|(p, d)| (p.to_string(), d)));
        out
    }

    /// Where `path`'s files live in the bucket: `""` (public), or a private
    /// repository's prefix (ends with `/`).
    pub fn storage_prefix(&self, path: &RepoPath) -> String {
        self.check(path)
            .ok()
            .and_then(|d| d.private_prefix.clone())
            .unwrap_or_default()
    }

    /// Checks that `path` names a configured repository and returns its distribution settings.
    pub fn check(&self, path: &RepoPath) -> Result<&DistConfig, RepoError> {
        if let Some(dist) = self.created.get(&path.to_string()) {
            return Ok(dist);
        }
        let unsupported = |reason: String| RepoError::Unsupported {
            path: path.to_string(),
            reason,
        };
        if !self.kinds.contains(&path.kind) {
            return Err(unsupported(format!(
                "kind {:?} is not one of {:?}",
                path.kind, self.kinds
            )));
        }
        if !self.series.contains(&path.series) {
            return Err(unsupported(format!(
                "series {:?} is not one of {:?}",
                path.series, self.series
            )));
        }
        let dist = self.dists.get(&path.dist).ok_or_else(|| {
            unsupported(format!("distribution {:?} is not configured", path.dist))
        })?;
        if !dist.versions.contains(&path.dist_ver) {
            return Err(unsupported(format!(
                "{} version {:?} is not one of {:?}",
                path.dist, path.dist_ver, dist.versions
            )));
        }
        Ok(dist)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn supported() -> SupportedRepos {
        serde_json::from_str(
            r#"{"kinds":["release"],"series":["2.11"],
                "dists":{"ubuntu":{"format":"deb","versions":["jammy"]}}}"#,
        )
        .expect("valid config")
    }

    #[test]
    fn accepts_configured_and_names_what_is_not() {
        let s = supported();
        let ok = RepoPath::parse("release/2.11/ubuntu/jammy").expect("syntax");
        assert_eq!(
            s.check(&ok).expect("configured").architectures(),
            ["amd64", "arm64"]
        );
        assert_eq!(ok.root(), "release/2.11/ubuntu");
        let bad = RepoPath::parse("release/2.11/ubuntu/focal").expect("syntax");
        let err = s.check(&bad).expect_err("focal not configured").to_string();
        assert!(err.contains("focal"), "{err}");
    }

    #[test]
    fn anchors_fan_out_and_retention_takes_the_longest_prefix() {
        let s: SupportedRepos = serde_json::from_str(
            r#"{"kinds":["live"],"series":["2.11","3.0"],
                "dists":{"el":{"format":"rpm","versions":["8"]}},
                "anchors":{"enabled":["2.11","3.0"]},
                "retention":{"live":5,"live/3.0/el/8":2}}"#,
        )
        .expect("valid config");
        let anchored = RepoPath::parse("live/enabled/el/8").expect("syntax");
        let targets: Vec<String> = s.expand(&anchored).iter().map(|r| r.to_string()).collect();
        assert_eq!(targets, ["live/2.11/el/8", "live/3.0/el/8"]);
        let plain = RepoPath::parse("live/3.0/el/8").expect("syntax");
        assert_eq!(s.expand(&plain), vec![plain.clone()]);
        assert_eq!(s.retention_for(&plain), Some(2));
        let other = RepoPath::parse("live/2.11/el/8").expect("syntax");
        assert_eq!(s.retention_for(&other), Some(5));
        let none = RepoPath::parse("livex/2.11/el/8").expect("syntax");
        assert_eq!(s.retention_for(&none), None);
    }

    #[test]
    fn refuses_traversal_segments() {
        assert!(RepoPath::parse("release/../ubuntu/jammy").is_err());
        assert!(RepoPath::parse("release/2.11/ubuntu").is_err());
        assert!(RepoPath::new("a b", "1", "d", "v").is_err());
    }
}
