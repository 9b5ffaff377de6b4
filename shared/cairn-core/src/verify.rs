//! Verification of a published repository, as a client would see it: the signed
//! entry point verifies with the trusted keys, and every file the metadata names
//! exists with the stated size and SHA-256. Reads only; changes nothing.

use crate::ports::{RepoStore, SignatureCheck, StoreError};
use crate::repo::{RepoFormat, RepoPath};

/// What a verification found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Files whose size and digest were checked.
    pub files_checked: usize,
    /// Signatures that verified.
    pub signatures_checked: usize,
    /// Everything wrong, one line each; empty when the repository is sound.
    pub problems: Vec<String>,
    /// Observations that are not errors (e.g. a provenance file signed by its uploader).
    pub notes: Vec<String>,
    /// Every object the signed metadata names, with the SHA-256 it states.
    pub named: std::collections::BTreeMap<String, String>,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks a repository in the bucket against trusted keys.
pub struct Verifier<'a> {
    /// The repository bucket.
    pub store: &'a dyn RepoStore,
    /// The keys the metadata must be signed with.
    pub keys: &'a dyn SignatureCheck,
}

/// One `size sha256 key` expectation.
struct Expected {
    key: String,
    size: Option<u64>,
    sha256: String,
}

impl Verifier<'_> {
    /// Verifies `repo` of `format`; `architectures` are the YUM folders to check
    /// (a missing `SRPMS` folder is fine: it exists only once a source package does).
    pub async fn verify(
        &self,
        repo: &RepoPath,
        format: RepoFormat,
        architectures: &[String],
    ) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport::default();
        let expected = match format {
            RepoFormat::Deb => self.apt(repo, &mut report).await?,
            RepoFormat::Rpm => self.yum(repo, architectures, &mut report).await?,
            RepoFormat::Helm => self.helm(repo, &mut report).await?,
        };
        // Helm's index is unsigned: a missing index.yaml is reported on its own.
        if report.signatures_checked == 0 && format != RepoFormat::Helm {
            report.problems.push(format!(
                "{repo}: no signed metadata verified: the repository has never been published \
                 (or its entry point is missing)"
            ));
        }
        for e in expected {
            // One name, one content: the metadata may name a file several times (a
            // tarball shared by source packages) but always with the same digest.
            match report.named.get(&e.key) {
                Some(sha) if *sha != e.sha256 => {
                    report.problems.push(format!(
                        "{}: named with SHA-256 {sha} and also {}",
                        e.key, e.sha256
                    ));
                    continue;
                }
                Some(_) => continue,
                None => {
                    report.named.insert(e.key.clone(), e.sha256.clone());
                }
            }
            match self.store.digest(&e.key).await? {
                None => report
                    .problems
                    .push(format!("{}: named by the metadata but missing", e.key)),
                Some((size, sha256)) => {
                    if e.size.is_some_and(|s| s != size) {
                        report.problems.push(format!(
                            "{}: size {size}, the metadata says {}",
                            e.key,
                            e.size.unwrap_or_default()
                        ));
                    } else if sha256 != e.sha256 {
                        report.problems.push(format!(
                            "{}: sha256 {sha256}, the metadata says {}",
                            e.key, e.sha256
                        ));
                    }
                    report.files_checked += 1;
                }
            }
        }
        Ok(report)
    }

    async fn text(
        &self,
        key: &str,
        report: &mut VerifyReport,
    ) -> Result<Option<String>, StoreError> {
        match self.store.get(key).await? {
            None => {
                report.problems.push(format!("{key}: missing"));
                Ok(None)
            }
            Some(body) => match String::from_utf8(body.to_vec()) {
                Ok(text) => Ok(Some(text)),
                Err(_) => {
                    report.problems.push(format!("{key}: not UTF-8 text"));
                    Ok(None)
                }
            },
        }
    }

    async fn apt(
        &self,
        repo: &RepoPath,
        report: &mut VerifyReport,
    ) -> Result<Vec<Expected>, StoreError> {
        let suite_dir = format!("{}/dists/{}", repo.root(), repo.suite());
        let mut expected = Vec::new();
        let Some(inrelease) = self.text(&format!("{suite_dir}/InRelease"), report).await? else {
            return Ok(expected);
        };
        let release = match self.keys.cleartext(&inrelease) {
            Ok(text) => {
                report.signatures_checked += 1;
                text
            }
            Err(e) => {
                report
                    .problems
                    .push(format!("{suite_dir}/InRelease: signature: {e}"));
                return Ok(expected);
            }
        };
        if let Some(plain) = self.text(&format!("{suite_dir}/Release"), report).await? {
            if plain != release {
                report.problems.push(format!(
                    "{suite_dir}/Release differs from the text InRelease signs"
                ));
            }
            if let Some(sig) = self
                .text(&format!("{suite_dir}/Release.gpg"), report)
                .await?
            {
                match self.keys.detached(plain.as_bytes(), &sig) {
                    Ok(()) => report.signatures_checked += 1,
                    Err(e) => report
                        .problems
                        .push(format!("{suite_dir}/Release.gpg: {e}")),
                }
            }
        }
        let section = release.split("\nSHA256:\n").nth(1).unwrap_or_default();
        for line in section.lines().take_while(|l| l.starts_with(' ')) {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [digest, size, path] = parts[..] else {
                report
                    .problems
                    .push(format!("{suite_dir}/InRelease: bad line {line:?}"));
                continue;
            };
            let size = size.parse().ok();
            expected.push(Expected {
                key: format!("{suite_dir}/{path}"),
                size,
                sha256: digest.to_string(),
            });
            // Compressed indexes have a by-hash copy; the plain text has none.
            if let Some((dir, name)) = path.rsplit_once('/')
                && name.contains('.')
            {
                expected.push(Expected {
                    key: format!("{suite_dir}/{dir}/by-hash/SHA256/{digest}"),
                    size,
                    sha256: digest.to_string(),
                });
            }
            if path.ends_with("/Sources")
                && let Some(index) = self.text(&format!("{suite_dir}/{path}"), report).await?
            {
                for stanza in index.split("\n\n").filter(|s| !s.trim().is_empty()) {
                    let directory = stanza.lines().find_map(|l| l.strip_prefix("Directory: "));
                    let files = stanza.split("\nChecksums-Sha256:\n").nth(1);
                    let (Some(directory), Some(files)) = (directory, files) else {
                        report.problems.push(format!(
                            "{suite_dir}/{path}: a stanza lacks Directory or Checksums-Sha256"
                        ));
                        continue;
                    };
                    for line in files.lines().take_while(|l| l.starts_with(' ')) {
                        if let [sha256, size, name] =
                            line.split_whitespace().collect::<Vec<_>>()[..]
                        {
                            expected.push(Expected {
                                key: format!("{}/{directory}/{name}", repo.root()),
                                size: size.parse().ok(),
                                sha256: sha256.to_string(),
                            });
                        }
                    }
                }
            }
            if path.ends_with("/Packages")
                && let Some(index) = self.text(&format!("{suite_dir}/{path}"), report).await?
            {
                for stanza in index.split("\n\n").filter(|s| !s.trim().is_empty()) {
                    let field = |name: &str| {
                        stanza.lines().find_map(|l| {
                            l.strip_prefix(name)
                                .and_then(|r| r.strip_prefix(": "))
                                .map(str::to_string)
                        })
                    };
                    match (field("Filename"), field("Size"), field("SHA256")) {
                        (Some(file), Some(size), Some(sha256)) => expected.push(Expected {
                            key: format!("{}/{file}", repo.root()),
                            size: size.parse().ok(),
                            sha256,
                        }),
                        _ => report.problems.push(format!(
                            "{suite_dir}/{path}: a stanza lacks Filename, Size or SHA256"
                        )),
                    }
                }
            }
        }
        // An index named twice (several architectures) need not be hashed twice.
        expected.sort_by(|a, b| a.key.cmp(&b.key));
        expected.dedup_by(|a, b| a.key == b.key);
        Ok(expected)
    }

    async fn yum(
        &self,
        repo: &RepoPath,
        architectures: &[String],
        report: &mut VerifyReport,
    ) -> Result<Vec<Expected>, StoreError> {
        let mut expected = Vec::new();
        let mut folders = architectures.to_vec();
        if !folders.iter().any(|f| f == "SRPMS") {
            folders.push("SRPMS".into());
        }
        for folder in folders {
            let base = format!("{}/{folder}", repo.dir());
            let repomd_key = format!("{base}/repodata/repomd.xml");
            let Some(repomd) = self.store.get(&repomd_key).await? else {
                if folder != "SRPMS" {
                    report.problems.push(format!("{repomd_key}: missing"));
                }
                continue;
            };
            match self
                .text(&format!("{repomd_key}.asc"), report)
                .await?
                .map(|sig| self.keys.detached(&repomd, &sig))
            {
                Some(Ok(())) => report.signatures_checked += 1,
                Some(Err(e)) => report.problems.push(format!("{repomd_key}.asc: {e}")),
                None => {}
            }
            let repomd = String::from_utf8_lossy(&repomd).into_owned();
            for block in repomd.split("<data type=\"").skip(1) {
                let kind = block.split('"').next().unwrap_or_default();
                let (Some(href), Some(checksum)) = (
                    between(block, "<location href=\"", "\""),
                    between(block, "<checksum type=\"sha256\">", "<"),
                ) else {
                    report.problems.push(format!(
                        "{repomd_key}: {kind} entry lacks location or sha256"
                    ));
                    continue;
                };
                let size = between(block, "<size>", "<").and_then(|s| s.parse().ok());
                expected.push(Expected {
                    key: format!("{base}/{href}"),
                    size,
                    sha256: checksum.to_string(),
                });
                if kind != "primary" {
                    continue;
                }
                let Some(gz) = self.store.get(&format!("{base}/{href}")).await? else {
                    continue;
                };
                let Some(primary) = crate::publish::unpack_document(href, &gz) else {
                    report
                        .problems
                        .push(format!("{base}/{href}: not a readable compressed XML file"));
                    continue;
                };
                for package in primary.split("<package type=\"rpm\">").skip(1) {
                    let pkgid = between(package, "pkgid=\"YES\">", "<");
                    let location = between(package, "<location href=\"", "\"");
                    let size =
                        between(package, "<size package=\"", "\"").and_then(|s| s.parse().ok());
                    match (pkgid, location) {
                        (Some(sha256), Some(location)) => expected.push(Expected {
                            key: format!("{base}/{}", unescape_xml(location)),
                            size,
                            sha256: sha256.to_string(),
                        }),
                        _ => report.problems.push(format!(
                            "{base}/{href}: a package lacks its checksum or location"
                        )),
                    }
                }
            }
        }
        Ok(expected)
    }

    async fn helm(
        &self,
        repo: &RepoPath,
        report: &mut VerifyReport,
    ) -> Result<Vec<Expected>, StoreError> {
        let dir = repo.dir();
        let mut expected = Vec::new();
        let Some(index) = self.text(&format!("{dir}/index.yaml"), report).await? else {
            return Ok(expected);
        };
        report
            .notes
            .push("index.yaml is not signed (Helm has no signed index); charts are checked through their digests and provenance files".into());
        // helm writes each entry's keys in order: `digest` comes before `urls`.
        let mut digest: Option<String> = None;
        for line in index.lines() {
            let trimmed = line.trim_start();
            if let Some(d) = trimmed.strip_prefix("digest: ") {
                digest = Some(d.trim().to_string());
            } else if let Some(url) = trimmed.strip_prefix("- ")
                && url.ends_with(".tgz")
            {
                let Some(sha256) = digest.take() else {
                    report
                        .problems
                        .push(format!("{dir}/index.yaml: {url} has no digest"));
                    continue;
                };
                if url.contains("://") || url.starts_with('/') || url.contains("..") {
                    report
                        .notes
                        .push(format!("{url}: not a file of this repository, not checked"));
                    continue;
                }
                let key = format!("{dir}/{url}");
                let prov_key = format!("{key}.prov");
                if let Some(prov) = self.text(&prov_key, report).await? {
                    let name = url.rsplit('/').next().unwrap_or(url);
                    if !prov.contains(&format!("{name}: sha256:{sha256}")) {
                        report
                            .problems
                            .push(format!("{prov_key}: does not name {name} with its digest"));
                    }
                    match self.keys.cleartext(&prov) {
                        Ok(_) => report.signatures_checked += 1,
                        Err(_) => report.notes.push(format!(
                            "{prov_key}: not signed by the repository key (the uploader's own)"
                        )),
                    }
                }
                expected.push(Expected {
                    key,
                    size: None,
                    sha256,
                });
            }
        }
        Ok(expected)
    }
}

/// The text between the first `start` and the following `end`.
pub(crate) fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = &text[text.find(start)? + start.len()..];
    Some(&rest[..rest.find(end)?])
}

/// Undoes the XML escapes of attribute values and text.
pub(crate) fn unescape_xml(s: &str) -> String {
    // Most values have no escape at all (a cold YUM read unescapes every package's).
    if !s.contains('&') {
        return s.to_string();
    }
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}
