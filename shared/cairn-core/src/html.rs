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

/// Where a page follows its subject's events from.
#[derive(Debug, Clone, Copy)]
pub struct Live<'a> {
    /// The API's base URL (the events endpoint is `{api_url}/v1/events`).
    pub api_url: &'a str,
    /// The subject whose events the page shows, e.g. `repository:release/1/ubuntu/jammy`.
    pub subject: &'a str,
}

/// How many recent events a live page shows.
const LIVE_EVENTS: usize = 20;

/// The script of a live page: it reads the subject's recent events, then follows the
/// stream (`EventSource`, which resumes with `Last-Event-ID`), and on each
/// `repository.published` fetches the page again and swaps in its package list, so
/// a new package shows up without a reload. Event text goes in with `textContent`
/// only. Where and what to follow come from the `#live` element's data attributes.
const LIVE_SCRIPT: &str = r#"(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.EventSource || !window.fetch) { return; }
  var list = document.getElementById("events");
  var status = document.getElementById("live-status");
  var keep = Number(live.dataset.keep);
  var base = live.dataset.events + "?subject=" + encodeURIComponent(live.dataset.subject);
  var cursor = null;
  function describe(e) {
    var d = e.data || {};
    switch (e.type) {
      case "package.stored": return d.filename + " stored (in the next publication)";
      case "package.deleted": return d.filename + " deleted (" + d.reason + ")";
      case "repository.published":
        return "publication " + d.publication + ": " + d.packages + " packages, " +
          (d.added || []).length + " added, " + (d.removed || []).length + " removed";
      default: return e.type;
    }
  }
  function show(e) {
    var item = document.createElement("li");
    item.dataset.seq = e.seq;
    item.dataset.type = e.type;
    var time = document.createElement("time");
    time.dateTime = e.timestamp;
    time.textContent = e.timestamp.replace("T", " ").replace(/\.\d+Z$/, "Z");
    var text = document.createElement("span");
    text.textContent = describe(e);
    item.append(time, " ", text);
    list.insertBefore(item, list.firstChild);
    while (list.children.length > keep) { list.removeChild(list.lastChild); }
    cursor = e.seq;
  }
  function refresh() {
    fetch(location.href, { cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("packages");
        var now = document.getElementById("packages");
        if (fresh && now) { now.replaceWith(fresh); }
      })
      .catch(function () { status.textContent = "Published; reload the page to see the packages."; });
  }
  function follow() {
    var source = new EventSource(base + (cursor === null ? "" : "&after=" + cursor));
    source.onopen = function () { status.textContent = "Live: new events appear here as they happen."; };
    source.onmessage = function (m) {
      var e = JSON.parse(m.data);
      show(e);
      if (e.type === "repository.published") { refresh(); }
    };
    source.onerror = function () {
      // Each long-poll answer ends the response and EventSource reconnects by
      // itself; only a refused request closes it for good.
      if (source.readyState === EventSource.CLOSED) {
        status.textContent = "Disconnected from the event stream; retrying in 10 s.";
        setTimeout(follow, 10000);
      }
    };
  }
  fetch(base + "&last=" + keep)
    .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
    .then(function (page) { page.events.forEach(show); cursor = page.next; })
    .catch(function () { status.textContent = "Could not read the recent events; following new ones."; })
    .then(follow);
}());
"#;

/// Packages a repository page lists (the first ones by file name).
pub const PAGE_ROWS: usize = 1000;

/// Renders a repository page: a title, the usage block (already HTML) and the
/// packages (at most [`PAGE_ROWS`]), each linking to its file under `base_url`. With
/// `live`, the page also lists the subject's recent events and follows the event
/// stream.
pub fn repo_page(
    title: &str,
    usage_html: &str,
    base_url: &str,
    packages: &BTreeMap<String, PublishedPackage>,
    live: Option<Live<'_>>,
) -> String {
    let base = base_url.trim_end_matches('/');
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>{title}</title>\
<style>body{{font-family:sans-serif;margin:2em}}pre{{background:#f4f4f4;padding:1em;overflow-x:auto}}\
table{{border-collapse:collapse}}td,th{{padding:.2em .8em;text-align:left;border-bottom:1px solid #ddd}}\
#events{{list-style:none;padding:0}}#events time{{color:#666;font-size:.9em}}</style>\
</head><body>\n<h1>{title}</h1>\n{usage_html}<section id=\"packages\">\n<h2>{count} packages</h2>\n<table>\n\
<tr><th>Package</th><th>Version</th><th>Architecture</th><th>Size</th></tr>\n",
        title = escape(title),
        count = packages.len(),
    );
    // A page of tens of thousands of rows helps nobody and costs every publication
    // its rendering and a write of megabytes: the first rows by file name, then a count.
    for p in packages.values().take(PAGE_ROWS) {
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
    out.push_str("</table>\n");
    if packages.len() > PAGE_ROWS {
        let _ = writeln!(
            out,
            "<p id=\"unlisted\">{} more packages are not listed on this page; the package \
manager's index and the API's listing name them all.</p>",
            packages.len() - PAGE_ROWS
        );
    }
    out.push_str("</section>\n");
    if let Some(live) = live {
        let _ = write!(
            out,
            "<section id=\"live\" data-events=\"{events}\" data-subject=\"{subject}\" data-keep=\"{LIVE_EVENTS}\">\n\
<h2>Recent events</h2>\n<p id=\"live-status\">This page follows the event stream when scripts run.</p>\n\
<ol id=\"events\"></ol>\n</section>\n<script>\n{LIVE_SCRIPT}</script>\n",
            events = escape(&format!("{}/v1/events", live.api_url.trim_end_matches('/'))),
            subject = escape(live.subject),
        );
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::IndexEntry;

    #[test]
    fn a_page_lists_the_first_rows_and_counts_the_rest() {
        let packages: BTreeMap<String, PublishedPackage> = (0..PAGE_ROWS + 5)
            .map(|n| {
                let name = format!("p{n:05}");
                (
                    format!("{name}_1_all.deb"),
                    PublishedPackage {
                        name: name.clone(),
                        version: "1".into(),
                        architecture: "all".into(),
                        size: 1,
                        pool_key: format!("pool/{name}_1_all.deb"),
                        entry: IndexEntry::Deb {
                            stanza: String::new(),
                        },
                    },
                )
            })
            .collect();
        let page = repo_page("t", "", "https://r", &packages, None);
        assert!(page.contains(&format!("<h2>{} packages</h2>", PAGE_ROWS + 5)));
        assert_eq!(page.matches("<tr><td>").count(), PAGE_ROWS);
        assert!(page.contains(">p00999<") && !page.contains(">p01000<"));
        assert!(page.contains("5 more packages are not listed on this page"));
    }

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
        let page = repo_page("t", &usage, "https://repo.example/", &packages, None);
        assert!(!page.contains("<script>"));
        assert!(page.contains("1&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains(
            "deb [signed-by=/usr/share/keyrings/cairn-archive-keyring.gpg] https://repo.example/release/1/ubuntu jammy main"
        ));
        assert!(page.contains("href=\"https://repo.example/release/1/ubuntu/pool/x.deb\""));
        assert!(
            !page.contains("<script"),
            "no live section without an API URL"
        );
    }

    #[test]
    fn a_live_page_follows_its_subject_with_escaped_attributes() {
        let live = Live {
            api_url: "https://api.example/v1/",
            subject: "repository:release/1/ubuntu/jammy\"><script>",
        };
        let page = repo_page(
            "t",
            "",
            "https://repo.example",
            &BTreeMap::new(),
            Some(live),
        );
        assert!(page.contains("data-events=\"https://api.example/v1/v1/events\""));
        assert!(page.contains(
            "data-subject=\"repository:release/1/ubuntu/jammy&quot;&gt;&lt;script&gt;\""
        ));
        assert_eq!(
            page.matches("<script>").count(),
            1,
            "only the page's own script"
        );
        assert!(
            page.contains("<section id=\"packages\">"),
            "the part a publication swaps"
        );
    }

    #[test]
    fn dnf_repo_file_points_at_arch_folders() {
        let repo = RepoPath::parse("release/3.0/el/9").expect("valid");
        let file = dnf_repo_file(&repo, "https://r.example", "Cairn");
        assert!(file.contains("baseurl=https://r.example/release/3.0/el/9/$basearch\n"));
        assert!(file.contains("repo_gpgcheck=1"));
    }
}
