//! The human-friendly view of a repository: an `index.html` beside its metadata,
//! with the lines a user pastes to add it (apt sources line, dnf `.repo` file,
//! `helm repo add`) and the package list. Every value that comes from an uploaded
//! package is HTML-escaped.

use crate::package::PublishedPackage;
use crate::repo::RepoPath;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The name users give the repository on their machines.
fn local_name(repo: &RepoPath) -> String {
    format!(
        "cairn-{}-{}-{}-{}",
        repo.kind, repo.series, repo.dist, repo.dist_ver
    )
}

/// How to use an APT suite.
pub fn apt_usage(repo: &RepoPath, base_url: &str) -> String {
    let root_url = format!("{}/{}", base_url.trim_end_matches('/'), repo.root());
    let keyring = "/usr/share/keyrings/cairn-archive-keyring.gpg";
    format!(
        "<h2>Use it with apt</h2>\n<pre>sudo curl -fsSLo {keyring} {key_url}\n\
echo &quot;deb [signed-by={keyring}] {root} {suite} main&quot; | sudo tee /etc/apt/sources.list.d/{name}.list\n\
sudo apt-get update</pre>\n<p>Check the key fingerprint with the repository owner before trusting it \
(<a href=\"{key_asc}\">armoured key</a>).</p>\n",
        key_url = escape(&format!("{root_url}/cairn-archive-keyring.gpg")),
        key_asc = escape(&format!("{root_url}/cairn-archive-keyring.asc")),
        root = escape(&root_url),
        suite = escape(repo.suite()),
        name = escape(&local_name(repo)),
    )
}

/// The `.repo` file for a YUM repository; `$basearch` picks the architecture folder.
/// It works as downloaded: the signed metadata is checked (`repo_gpgcheck=1`) with the
/// key published beside it, which dnf imports on first use (after asking, or with
/// `-y`). Users who pin the key out of band point `gpgkey=` at their local copy.
/// Packages carry their builders' signatures, if any, not Cairn's: `gpgcheck=0`.
pub fn dnf_repo_file(repo: &RepoPath, base_url: &str, origin: &str) -> String {
    let dir_url = format!("{}/{}", base_url.trim_end_matches('/'), repo.dir());
    format!(
        "[{name}]\nname={origin} {repo}\nbaseurl={dir_url}/$basearch\nenabled=1\n\
gpgcheck=0\nrepo_gpgcheck=1\ngpgkey={dir_url}/RPM-GPG-KEY-cairn\n\n\
[{name}-source]\nname={origin} {repo} (sources)\nbaseurl={dir_url}/SRPMS\nenabled=0\n\
gpgcheck=0\nrepo_gpgcheck=1\ngpgkey={dir_url}/RPM-GPG-KEY-cairn\n",
        name = local_name(repo),
    )
}

/// How to use a YUM repository.
pub fn dnf_usage(repo: &RepoPath, base_url: &str) -> String {
    let dir_url = format!("{}/{}", base_url.trim_end_matches('/'), repo.dir());
    let name = local_name(repo);
    format!(
        "<h2>Use it with dnf</h2>\n<pre>sudo curl -fsSLo /etc/yum.repos.d/{name}.repo {repo_url}\n\
sudo dnf makecache</pre>\n<p>The repository metadata is signed (<code>repo_gpgcheck=1</code>); \
dnf offers to import the <a href=\"{key_url}\">key</a> on first use: check its fingerprint with \
the repository owner before accepting it, or download it once and point <code>gpgkey=</code> at \
your copy (<code>file:///etc/pki/rpm-gpg/RPM-GPG-KEY-{name}</code>).</p>\n",
        name = escape(&name),
        key_url = escape(&format!("{dir_url}/RPM-GPG-KEY-cairn")),
        repo_url = escape(&format!("{dir_url}/cairn.repo")),
    )
}

/// How to use a Helm chart repository.
pub fn helm_usage(repo: &RepoPath, base_url: &str) -> String {
    let dir_url = format!("{}/{}", base_url.trim_end_matches('/'), repo.dir());
    format!(
        "<h2>Use it with helm</h2>\n<pre>helm repo add {name} {dir}\n\
curl -fsSLo cairn-keyring.gpg {key_url}\n\
helm search repo {name} --versions\n\
helm pull {name}/CHART --verify --keyring cairn-keyring.gpg</pre>\n\
<p>Every chart has a provenance file (<code>.prov</code>) for <code>--verify</code>.</p>\n",
        name = escape(&local_name(repo)),
        dir = escape(&dir_url),
        key_url = escape(&format!("{dir_url}/cairn-keyring.gpg")),
    )
}

/// Renders a repository page: a title, the usage block (already HTML) and the
/// packages, each linking to its file under `base_url`.
pub fn repo_page(
    title: &str,
    usage_html: &str,
    base_url: &str,
    packages: &BTreeMap<String, PublishedPackage>,
) -> String {
    let base = base_url.trim_end_matches('/');
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>{title}</title>\
<style>body{{font-family:sans-serif;margin:2em}}pre{{background:#f4f4f4;padding:1em;overflow-x:auto}}\
table{{border-collapse:collapse}}td,th{{padding:.2em .8em;text-align:left;border-bottom:1px solid #ddd}}</style>\
</head><body>\n<h1>{title}</h1>\n{usage_html}<h2>{count} packages</h2>\n<table>\n\
<tr><th>Package</th><th>Version</th><th>Architecture</th><th>Size</th></tr>\n",
        title = escape(title),
        count = packages.len(),
    );
    for p in packages.values() {
        let _ = writeln!(
            out,
            "<tr><td><a href=\"{url}\">{name}</a></td><td>{version}</td><td>{arch}</td><td>{size}</td></tr>",
            url = escape(&format!("{base}/{}", p.pool_key)),
            name = escape(&p.name),
            version = escape(&p.version),
            arch = escape(&p.architecture),
            size = p.size,
        );
    }
    out.push_str("</table>\n</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::IndexEntry;

    #[test]
    fn escapes_package_supplied_text() {
        let repo = RepoPath::parse("release/1/ubuntu/jammy").expect("valid");
        let packages = BTreeMap::from([(
            "x.deb".to_string(),
            PublishedPackage {
                name: "x".into(),
                version: "1<script>alert(1)</script>".into(),
                architecture: "all".into(),
                size: 3,
                pool_key: "release/1/ubuntu/pool/x.deb".into(),
                entry: IndexEntry::Deb {
                    stanza: String::new(),
                },
            },
        )]);
        let usage = apt_usage(&repo, "https://repo.example/");
        let page = repo_page("t", &usage, "https://repo.example/", &packages);
        assert!(!page.contains("<script>"));
        assert!(page.contains("1&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains(
            "deb [signed-by=/usr/share/keyrings/cairn-archive-keyring.gpg] https://repo.example/release/1/ubuntu jammy main"
        ));
        assert!(page.contains("href=\"https://repo.example/release/1/ubuntu/pool/x.deb\""));
    }

    #[test]
    fn dnf_repo_file_points_at_arch_folders() {
        let repo = RepoPath::parse("release/3.0/el/9").expect("valid");
        let file = dnf_repo_file(&repo, "https://r.example", "Cairn");
        assert!(file.contains("baseurl=https://r.example/release/3.0/el/9/$basearch\n"));
        assert!(file.contains("repo_gpgcheck=1"));
    }
}
