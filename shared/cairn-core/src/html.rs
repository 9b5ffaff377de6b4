//! The human-friendly view of a suite: `dists/<suite>/index.html`, with the lines a
//! user pastes to add the repository and the package list. Every value that comes
//! from an uploaded package is HTML-escaped.

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

fn field<'a>(stanza: &'a str, name: &str) -> &'a str {
    stanza
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
        .unwrap_or("")
}

/// Renders the page for `repo` whose packages (file name -> (architecture, stanza))
/// are published under `base_url` (the repository bucket's public URL).
pub fn suite_page(
    repo: &RepoPath,
    base_url: &str,
    origin: &str,
    packages: &BTreeMap<String, (String, String)>,
) -> String {
    let base = base_url.trim_end_matches('/');
    let root_url = format!("{base}/{}", repo.root());
    let keyring = "/usr/share/keyrings/cairn-archive-keyring.gpg";
    let title = format!("{origin} {} {}", repo.root(), repo.suite());
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>{title}</title>\
<style>body{{font-family:sans-serif;margin:2em}}pre{{background:#f4f4f4;padding:1em;overflow-x:auto}}\
table{{border-collapse:collapse}}td,th{{padding:.2em .8em;text-align:left;border-bottom:1px solid #ddd}}</style>\
</head><body>\n<h1>{title}</h1>\n<h2>Use it with apt</h2>\n<pre>sudo curl -fsSLo {keyring} {key_url}\n\
echo &quot;deb [signed-by={keyring}] {root} {suite} main&quot; | sudo tee /etc/apt/sources.list.d/{name}.list\n\
sudo apt-get update</pre>\n<p>Check the key fingerprint with the repository owner before trusting it \
(<a href=\"{key_asc}\">armoured key</a>).</p>\n<h2>{count} packages</h2>\n<table>\n\
<tr><th>Package</th><th>Version</th><th>Architecture</th><th>Size</th></tr>\n",
        title = escape(&title),
        keyring = keyring,
        key_url = escape(&format!("{root_url}/cairn-archive-keyring.gpg")),
        key_asc = escape(&format!("{root_url}/cairn-archive-keyring.asc")),
        root = escape(&root_url),
        suite = escape(repo.suite()),
        name = escape(&format!(
            "cairn-{}-{}-{}",
            repo.kind, repo.series, repo.dist
        )),
        count = packages.len(),
    );
    for (arch, stanza) in packages.values() {
        let _ = writeln!(
            out,
            "<tr><td><a href=\"{url}\">{name}</a></td><td>{version}</td><td>{arch}</td><td>{size}</td></tr>",
            url = escape(&format!("{root_url}/{}", field(stanza, "Filename"))),
            name = escape(field(stanza, "Package")),
            version = escape(field(stanza, "Version")),
            arch = escape(arch),
            size = escape(field(stanza, "Size")),
        );
    }
    out.push_str("</table>\n</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_package_supplied_text() {
        let repo = RepoPath::parse("release/1/ubuntu/jammy").expect("valid");
        let packages = BTreeMap::from([(
            "x.deb".to_string(),
            (
                "all".to_string(),
                "Package: x\nVersion: 1<script>alert(1)</script>\nFilename: pool/x.deb\nSize: 3\n"
                    .to_string(),
            ),
        )]);
        let page = suite_page(&repo, "https://repo.example/", "Cairn", &packages);
        assert!(!page.contains("<script>"));
        assert!(page.contains("1&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains(
            "deb [signed-by=/usr/share/keyrings/cairn-archive-keyring.gpg] https://repo.example/release/1/ubuntu jammy main"
        ));
        assert!(page.contains("href=\"https://repo.example/release/1/ubuntu/pool/x.deb\""));
    }
}
