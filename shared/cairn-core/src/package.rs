//! Package records as the catalog keeps them, and the naming rules for files in the pool.

use crate::repo::{DistConfig, RepoFormat, RepoPath};
use serde::{Deserialize, Serialize};

/// Whether a package's file is in the pool yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageStatus {
    /// Claimed in the catalog; the file may not be in the pool yet. Never published.
    Pending,
    /// In the pool; published by the next sync.
    Ready,
    /// Deleted (by request or retention): left out of the metadata by the next sync,
    /// which then removes the pool files and the record.
    Deleting,
}

impl PackageStatus {
    /// The name stored and shown (`pending`, `ready`, `deleting`).
    pub fn as_str(self) -> &'static str {
        match self {
            PackageStatus::Pending => "pending",
            PackageStatus::Ready => "ready",
            PackageStatus::Deleting => "deleting",
        }
    }

    /// Reads a stored name; anything else is an error, never a default.
    pub fn parse(name: &str) -> Result<Self, crate::StoreError> {
        Ok(match name {
            "pending" => PackageStatus::Pending,
            "ready" => PackageStatus::Ready,
            "deleting" => PackageStatus::Deleting,
            other => {
                return Err(crate::StoreError::new(
                    "decode package",
                    format!("unknown package status {other:?}"),
                ));
            }
        })
    }
}

/// What one package contributes to its repository's metadata, in the format's own
/// syntax, so that a sync rebuilds the metadata from the catalog without reading
/// any package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "lowercase")]
pub enum IndexEntry {
    /// APT: the complete `Packages` stanza, ending with a newline.
    Deb {
        /// The stanza.
        stanza: String,
    },
    /// YUM: the package's elements of `primary.xml`, `filelists.xml`, `other.xml`.
    Rpm {
        /// `<package type="rpm">` element of `primary.xml`.
        primary: String,
        /// `<package>` element of `filelists.xml`.
        filelists: String,
        /// `<package>` element of `other.xml`.
        other: String,
    },
    /// Helm: the chart's `index.yaml` entry, as JSON.
    Helm {
        /// The entry.
        entry: String,
        /// The text Cairn signs as the chart's provenance file when the uploader sent
        /// none; `None` when an uploaded `.prov` is kept beside the chart.
        provenance: Option<String>,
    },
}

/// One package file in one suite, with everything a `Packages` index needs,
/// so that metadata is rebuilt from the catalog alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageRecord {
    /// The suite the package belongs to.
    pub repo: RepoPath,
    /// The uploaded file name, unique within the suite.
    pub filename: String,
    /// RWS `product`: the pool sub-directory.
    pub product: String,
    /// Package (or chart) name.
    pub name: String,
    /// Version as the format writes it (`[epoch:]version-release` for RPM).
    pub version: String,
    /// Architecture (`all`/`noarch`/`src` included; empty for charts).
    pub architecture: String,
    /// File size in bytes.
    pub size: u64,
    /// SHA-256 of the file, lower-case hex: the file's identity.
    pub sha256: String,
    /// Object key of the file in the repository bucket (the first of
    /// [`pool_keys`] when the format keeps several copies).
    pub pool_key: String,
    /// The package's part of the repository metadata.
    pub entry: IndexEntry,
    /// Whether the file is in the pool.
    pub status: PackageStatus,
    /// Upload time, seconds since the Unix epoch.
    pub uploaded_at: i64,
    /// Who uploaded it.
    pub uploader: String,
    /// Every object the package claimed in the bucket when it was uploaded: exactly
    /// the files its deletion may remove (each only once no other package claims it).
    /// Recorded at upload, never re-derived from the package's contents. Empty for
    /// records written before files were recorded; see [`legacy_keys`].
    pub files: Vec<PoolFile>,
}

/// One object in the repository bucket that a package claimed at upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolFile {
    /// Object key.
    pub key: String,
    /// SHA-256 of the object's bytes, lower-case hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

impl PoolFile {
    /// The object's file name (the last path component of its key).
    pub fn name(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or(&self.key)
    }
}

/// A package as the published metadata shows it: what a sync keeps between runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPackage {
    /// Package (or chart) name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Architecture (empty for charts).
    pub architecture: String,
    /// File size in bytes.
    pub size: u64,
    /// Object key of the (first) file in the repository bucket.
    pub pool_key: String,
    /// The package's part of the metadata.
    pub entry: IndexEntry,
}

impl PublishedPackage {
    /// The file name it is published under (the last path component of its pool key).
    pub fn file_name(&self) -> &str {
        self.pool_key.rsplit('/').next().unwrap_or(&self.pool_key)
    }
}

impl From<PackageRecord> for PublishedPackage {
    fn from(r: PackageRecord) -> Self {
        Self {
            name: r.name,
            version: r.version,
            architecture: r.architecture,
            size: r.size,
            pool_key: r.pool_key,
            entry: r.entry,
        }
    }
}

/// Why an uploaded file name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilenameError {
    /// The name is empty.
    #[error("file name is empty")]
    Empty,
    /// The name is longer than the pool allows.
    #[error("file name is longer than 200 bytes")]
    TooLong,
    /// The name contains a character that could escape the pool or confuse clients.
    #[error("file name {name:?} must not contain {what}")]
    Forbidden {
        /// The refused name (control characters escaped by `Debug`).
        name: String,
        /// What was found.
        what: &'static str,
    },
    /// The name does not end with the extension the repository format expects.
    #[error("file name {name:?} does not end with {expected}")]
    WrongExtension {
        /// The refused name.
        name: String,
        /// The expected extension.
        expected: &'static str,
    },
}

/// Checks an uploaded file name for use as a single pool path component.
pub fn check_filename(name: &str, extension: &'static str) -> Result<(), FilenameError> {
    let forbidden = |what| FilenameError::Forbidden {
        name: name.to_string(),
        what,
    };
    if name.is_empty() {
        return Err(FilenameError::Empty);
    }
    if name.len() > 200 {
        return Err(FilenameError::TooLong);
    }
    if name.contains('\0') {
        return Err(forbidden("a NUL byte"));
    }
    if name.contains("..") {
        return Err(forbidden("'..'"));
    }
    if name.contains('/') || name.contains('\\') {
        return Err(forbidden("a path separator"));
    }
    if name.starts_with('.') || name.starts_with('-') {
        return Err(forbidden("a leading '.' or '-'"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._+~-:".contains(&b))
    {
        return Err(forbidden("characters outside [A-Za-z0-9._+~:-]"));
    }
    if !name.ends_with(extension) {
        return Err(FilenameError::WrongExtension {
            name: name.to_string(),
            expected: extension,
        });
    }
    Ok(())
}

/// Checks an RWS `product` name, used as a pool directory.
pub fn check_product(product: &str) -> Result<(), FilenameError> {
    if product.is_empty() {
        return Err(FilenameError::Empty);
    }
    let ok = product.len() <= 100
        && product.starts_with(|c: char| c.is_ascii_alphanumeric())
        && product
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(FilenameError::Forbidden {
            name: product.to_string(),
            what: "characters outside [A-Za-z0-9._+-] (product)",
        })
    }
}

/// The pool directory letter, as Debian uses it: `libfoo` goes under `libf`.
fn pool_letter(product: &str) -> &str {
    if product.starts_with("lib") && product.len() > 3 {
        &product[..4]
    } else {
        &product[..1]
    }
}

/// The YUM architecture folders an RPM of `arch` is published in: source packages in
/// `SRPMS`, `noarch` in every configured architecture (as RWS does), others in their own.
pub fn rpm_arch_dirs(arch: &str, dist: &DistConfig) -> Vec<String> {
    match arch {
        "src" | "nosrc" => vec!["SRPMS".into()],
        "noarch" => dist.architectures(),
        other => vec![other.to_string()],
    }
}

/// The object keys of a package's file in the bucket: one for APT and Helm; for YUM
/// one per architecture folder it is published in, `{dir}/{arch}/Packages/{filename}`.
pub fn package_keys(record: &PackageRecord, dist: &DistConfig) -> Vec<String> {
    match dist.format {
        RepoFormat::Deb | RepoFormat::Helm => vec![record.pool_key.clone()],
        RepoFormat::Rpm => rpm_arch_dirs(&record.architecture, dist)
            .into_iter()
            .map(|d| format!("{}/{d}/Packages/{}", record.repo.dir(), record.filename))
            .collect(),
    }
}

/// Objects a sync writes for a package that no upload claimed: the provenance file
/// Cairn signs for a chart uploaded without one. Only that package ever names them.
pub fn generated_keys(record: &PackageRecord) -> Vec<String> {
    match &record.entry {
        IndexEntry::Helm {
            provenance: Some(_),
            ..
        } => vec![format!("{}.prov", record.pool_key)],
        _ => Vec::new(),
    }
}

/// What to delete for a record written before uploads recorded their files
/// ([`PackageRecord::files`] empty): the package's own copies and its generated
/// provenance, never a file that its metadata merely lists (a source package's
/// tarballs stay, and `cairn fsck` reports them once nothing references them).
pub fn legacy_keys(record: &PackageRecord, dist: &DistConfig) -> Vec<String> {
    let mut keys = package_keys(record, dist);
    if dist.format == RepoFormat::Helm {
        keys.push(format!("{}.prov", record.pool_key));
    }
    keys
}

/// Path of a package file relative to the APT repository root (the `Filename` field):
/// `pool/{suite}/main/{letter}/{product}/{filename}`, RWS's layout.
pub fn pool_filename(repo: &RepoPath, product: &str, filename: &str) -> String {
    format!(
        "pool/{}/main/{}/{}/{}",
        repo.suite(),
        pool_letter(product),
        product,
        filename
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_path_tricks() {
        for bad in [
            "../x.deb",
            "a/b.deb",
            "a\0.deb",
            "..deb",
            ".hidden.deb",
            "a\\b.deb",
            "sp ace.deb",
        ] {
            assert!(check_filename(bad, ".deb").is_err(), "{bad:?} accepted");
        }
        assert!(matches!(
            check_filename("x.rpm", ".deb"),
            Err(FilenameError::WrongExtension { .. })
        ));
        check_filename("hello_2.10-3_amd64.deb", ".deb").expect("valid");
        check_filename("hello_1:2.10-3_amd64.deb", ".deb").expect("epoch colon is valid");
    }

    #[test]
    fn pool_layout_follows_debian_letters() {
        let repo = RepoPath::parse("release/2.11/ubuntu/jammy").expect("valid");
        assert_eq!(
            pool_filename(&repo, "libfoo", "libfoo1_1_amd64.deb"),
            "pool/jammy/main/libf/libfoo/libfoo1_1_amd64.deb"
        );
        assert_eq!(
            pool_filename(&repo, "hello", "h.deb"),
            "pool/jammy/main/h/hello/h.deb"
        );
    }
}
