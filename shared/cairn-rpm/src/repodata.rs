//! Repository metadata for YUM/DNF: per-package fragments of `primary.xml`,
//! `filelists.xml` and `other.xml`, the documents that wrap them, and
//! `repomd.xml`.
//!
//! The text is what createrepo_c 0.x writes (libxml2 formatting and escaping
//! included), so a fragment can be checked byte for byte against the real tool
//! and any client that reads createrepo_c repositories reads these.

use crate::deps::Dependency;
use crate::inspect::{FileKind, RpmInfo};
use crate::xml;

/// Changelog entries kept per package in `other.xml`: the newest ten, which is
/// createrepo_c's default (`--changelog-limit`). dnf only shows them, and a
/// package with a decade of history would otherwise bloat every client's cache.
pub const CHANGELOG_LIMIT: usize = 10;

const NS_COMMON: &str = "http://linux.duke.edu/metadata/common";
const NS_FILELISTS: &str = "http://linux.duke.edu/metadata/filelists";
const NS_OTHER: &str = "http://linux.duke.edu/metadata/other";
const NS_REPO: &str = "http://linux.duke.edu/metadata/repo";
const NS_RPM: &str = "http://linux.duke.edu/metadata/rpm";
const XML_DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// Whether `path` belongs in `primary.xml`'s file list, by the rule every
/// createrepo since yum's has used (and dnf relies on for file requires without
/// downloading filelists): anything under `/etc/`, any path containing `bin/`
/// (so also `/opt/x/sbin/y`), and `/usr/lib/sendmail`.
pub fn is_primary_file(path: &str) -> bool {
    path.starts_with("/etc/") || path.contains("bin/") || path == "/usr/lib/sendmail"
}

/// A small writer for the fixed element shapes of repodata.
struct Out(String);

impl Out {
    fn raw(&mut self, s: &str) {
        self.0.push_str(s);
    }

    fn text(&mut self, s: &str) {
        xml::text(&mut self.0, s);
    }

    /// ` name="value"`
    fn attr(&mut self, name: &str, value: &str) {
        self.0.push(' ');
        self.0.push_str(name);
        self.0.push_str("=\"");
        xml::attr(&mut self.0, value);
        self.0.push('"');
    }

    /// `indent<name>text</name>` and a newline.
    fn text_element(&mut self, indent: &str, name: &str, value: &str) {
        self.raw(indent);
        self.raw("<");
        self.raw(name);
        self.raw(">");
        self.text(value);
        self.raw("</");
        self.raw(name);
        self.raw(">\n");
    }

    fn version(&mut self, info: &RpmInfo) {
        self.raw("  <version");
        self.attr("epoch", &info.epoch.unwrap_or(0).to_string());
        self.attr("ver", &info.version);
        self.attr("rel", &info.release);
        self.raw("/>\n");
    }

    /// `<package pkgid=… name=… arch=…>` and the version line, shared by
    /// filelists.xml and other.xml.
    fn package_by_pkgid(&mut self, info: &RpmInfo) {
        self.raw("<package");
        self.attr("pkgid", &info.digests.sha256);
        self.attr("name", &info.name);
        self.attr("arch", &info.arch);
        self.raw(">\n");
        self.version(info);
    }

    fn deps(&mut self, element: &str, deps: &[Dependency], with_pre: bool) {
        if deps.is_empty() {
            return;
        }
        let named: Vec<&Dependency> = deps.iter().filter(|d| !d.name.is_empty()).collect();
        if named.is_empty() {
            // libxml2 writes an element left without children in short form.
            self.raw(&format!("    <{element}/>\n"));
            return;
        }
        self.raw(&format!("    <{element}>\n"));
        for dep in named {
            self.raw("      <rpm:entry");
            self.attr("name", &dep.name);
            // Without a comparison the version means nothing to a solver, and
            // createrepo_c leaves it out.
            if let Some(flags) = dep.flags {
                self.attr("flags", flags.as_str());
                for (name, value) in [
                    ("epoch", &dep.epoch),
                    ("ver", &dep.version),
                    ("rel", &dep.release),
                ] {
                    if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
                        self.attr(name, value);
                    }
                }
            }
            if with_pre && dep.pre {
                self.attr("pre", "1");
            }
            self.raw("/>\n");
        }
        self.raw(&format!("    </{element}>\n"));
    }

    fn file(&mut self, indent: &str, path: &str, kind: FileKind) {
        self.raw(indent);
        self.raw("<file");
        match kind {
            FileKind::File => {}
            FileKind::Dir => self.attr("type", "dir"),
            FileKind::Ghost => self.attr("type", "ghost"),
        }
        self.raw(">");
        self.text(path);
        self.raw("</file>\n");
    }
}

impl RpmInfo {
    /// One `<package type="rpm">…</package>` element for primary.xml, with a
    /// trailing newline. `href` is the package's location relative to the
    /// repository root (e.g. `Packages/f/foo-1-1.x86_64.rpm`); `file_time` is
    /// the upload time in seconds, written as `<time file=…>` where
    /// createrepo_c writes the file's mtime.
    pub fn primary_xml(&self, href: &str, file_time: i64) -> String {
        let mut out = Out(String::with_capacity(2048));
        out.raw("<package type=\"rpm\">\n");
        out.text_element("  ", "name", &self.name);
        out.text_element("  ", "arch", &self.arch);
        out.version(self);
        out.raw("  <checksum type=\"sha256\" pkgid=\"YES\">");
        out.text(&self.digests.sha256);
        out.raw("</checksum>\n");
        out.text_element("  ", "summary", &self.summary);
        out.text_element("  ", "description", &self.description);
        out.text_element("  ", "packager", &self.packager);
        out.text_element("  ", "url", &self.url);
        out.raw(&format!(
            "  <time file=\"{file_time}\" build=\"{}\"/>\n",
            self.build_time
        ));
        out.raw(&format!(
            "  <size package=\"{}\" installed=\"{}\" archive=\"{}\"/>\n",
            self.digests.size, self.installed_size, self.archive_size
        ));
        out.raw("  <location");
        out.attr("href", href);
        out.raw("/>\n");

        out.raw("  <format>\n");
        out.text_element("    ", "rpm:license", &self.license);
        out.text_element("    ", "rpm:vendor", &self.vendor);
        out.text_element("    ", "rpm:group", &self.group);
        out.text_element("    ", "rpm:buildhost", &self.buildhost);
        out.text_element(
            "    ",
            "rpm:sourcerpm",
            self.source_rpm.as_deref().unwrap_or(""),
        );
        out.raw(&format!(
            "    <rpm:header-range start=\"{}\" end=\"{}\"/>\n",
            self.header_range.0, self.header_range.1
        ));
        out.deps("rpm:provides", &self.provides, false);
        out.deps("rpm:requires", &self.requires, true);
        out.deps("rpm:conflicts", &self.conflicts, false);
        out.deps("rpm:obsoletes", &self.obsoletes, false);
        out.deps("rpm:suggests", &self.suggests, false);
        out.deps("rpm:enhances", &self.enhances, false);
        out.deps("rpm:recommends", &self.recommends, false);
        out.deps("rpm:supplements", &self.supplements, false);
        for f in self.files.iter().filter(|f| is_primary_file(&f.path)) {
            out.file("    ", &f.path, f.kind);
        }
        out.raw("  </format>\n");
        out.raw("</package>\n");
        out.0
    }

    /// One `<package pkgid=… name=… arch=…>` element for filelists.xml, listing
    /// every file, with a trailing newline.
    pub fn filelists_xml(&self) -> String {
        let mut out = Out(String::with_capacity(256 + 64 * self.files.len()));
        out.package_by_pkgid(self);
        for f in &self.files {
            out.file("  ", &f.path, f.kind);
        }
        out.raw("</package>\n");
        out.0
    }

    /// One `<package pkgid=… name=… arch=…>` element for other.xml with the
    /// newest [`CHANGELOG_LIMIT`] changelog entries, oldest first, with a
    /// trailing newline.
    ///
    /// Like createrepo_c, trailing spaces are trimmed from authors, and entries
    /// sharing a date get the newer ones' dates bumped by a second each, so
    /// that clients which key changelogs by date keep all of them.
    pub fn other_xml(&self) -> String {
        let kept = &self.changelogs[..self.changelogs.len().min(CHANGELOG_LIMIT)];
        let mut dates: Vec<u64> = kept.iter().map(|c| c.time).collect();
        let mut last_time = 0;
        for i in 0..dates.len() {
            let time = kept[i].time;
            if time != last_time {
                last_time = time;
                continue;
            }
            // Walk back over the newer entries that still collide: the one
            // just before takes `time + 1`, which may push the next, and so on.
            for (collide, date) in (time..).zip(dates[..i].iter_mut().rev()) {
                if *date != collide {
                    break;
                }
                *date += 1;
            }
        }

        let mut out = Out(String::with_capacity(512));
        out.package_by_pkgid(self);
        for (entry, date) in kept.iter().zip(dates).rev() {
            // createrepo_c never trims the first character, even a space.
            let keep = entry.author.trim_end_matches(' ').len().max(1);
            let author = entry.author.get(..keep).unwrap_or(&entry.author);
            out.raw("  <changelog");
            out.attr("author", author);
            out.attr("date", &date.to_string());
            out.raw(">");
            out.text(&entry.text);
            out.raw("</changelog>\n");
        }
        out.raw("</package>\n");
        out.0
    }
}

/// What comes before and after the package elements of a document.
fn frame(root_open: &str, root: &str) -> (String, String) {
    // No newline after the root element, as createrepo_c writes it.
    (format!("{XML_DECL}{root_open}"), format!("</{root}>"))
}

/// A repodata document's text before and after its package elements, for `kind`
/// `primary`, `filelists` or `other` and `count` packages: the document is the head,
/// the fragments in order, then the tail. `None` for another kind.
pub fn document_frame(kind: &str, count: usize) -> Option<(String, String)> {
    Some(match kind {
        "primary" => frame(
            &format!(
                "<metadata xmlns=\"{NS_COMMON}\" xmlns:rpm=\"{NS_RPM}\" packages=\"{count}\">\n"
            ),
            "metadata",
        ),
        "filelists" => frame(
            &format!("<filelists xmlns=\"{NS_FILELISTS}\" packages=\"{count}\">\n"),
            "filelists",
        ),
        "other" => frame(
            &format!("<otherdata xmlns=\"{NS_OTHER}\" packages=\"{count}\">\n"),
            "otherdata",
        ),
        _ => return None,
    })
}

/// A whole `primary.xml` from [`RpmInfo::primary_xml`] fragments; `count` is
/// the `packages` attribute (the number of fragments).
pub fn primary_document(count: usize, packages: &[&str]) -> String {
    whole("primary", count, packages)
}

/// A whole `filelists.xml` from [`RpmInfo::filelists_xml`] fragments.
pub fn filelists_document(count: usize, packages: &[&str]) -> String {
    whole("filelists", count, packages)
}

/// A whole `other.xml` from [`RpmInfo::other_xml`] fragments.
pub fn other_document(count: usize, packages: &[&str]) -> String {
    whole("other", count, packages)
}

fn whole(kind: &str, count: usize, packages: &[&str]) -> String {
    let (head, tail) = document_frame(kind, count).expect("a known document kind");
    let mut out = String::with_capacity(
        packages.iter().map(|p| p.len()).sum::<usize>() + head.len() + tail.len(),
    );
    out.push_str(&head);
    for p in packages {
        out.push_str(p);
    }
    out.push_str(&tail);
    out
}

/// One `<data>` record of `repomd.xml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepomdEntry {
    /// `primary`, `filelists` or `other`.
    pub kind: String,
    /// Location relative to the repository root, conventionally
    /// `repodata/<checksum>-<kind>.xml.gz`.
    pub href: String,
    /// SHA-256 of the compressed file, hex.
    pub checksum: String,
    /// Size of the compressed file, in bytes.
    pub size: u64,
    /// SHA-256 of the uncompressed document, hex.
    pub open_checksum: String,
    /// Size of the uncompressed document, in bytes.
    pub open_size: u64,
    /// When the file was made, seconds since the epoch.
    pub timestamp: i64,
}

/// `repomd.xml` naming `entries`, in the given order. `revision` is the
/// repository's revision, by convention the publish time in seconds.
pub fn repomd_xml(revision: i64, entries: &[RepomdEntry]) -> String {
    let mut out = Out(String::with_capacity(256 + 512 * entries.len()));
    out.raw(XML_DECL);
    out.raw(&format!(
        "<repomd xmlns=\"{NS_REPO}\" xmlns:rpm=\"{NS_RPM}\">\n"
    ));
    out.raw(&format!("  <revision>{revision}</revision>\n"));
    for e in entries {
        out.raw("  <data");
        out.attr("type", &e.kind);
        out.raw(">\n");
        out.raw("    <checksum type=\"sha256\">");
        out.text(&e.checksum);
        out.raw("</checksum>\n");
        out.raw("    <open-checksum type=\"sha256\">");
        out.text(&e.open_checksum);
        out.raw("</open-checksum>\n");
        out.raw("    <location");
        out.attr("href", &e.href);
        out.raw("/>\n");
        out.raw(&format!("    <timestamp>{}</timestamp>\n", e.timestamp));
        out.raw(&format!("    <size>{}</size>\n", e.size));
        out.raw(&format!("    <open-size>{}</open-size>\n", e.open_size));
        out.raw("  </data>\n");
    }
    out.raw("</repomd>\n");
    out.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deps::DepFlag;
    use crate::inspect::{Changelog, FileEntry};
    use cairn_deb::Digests;

    fn info() -> RpmInfo {
        RpmInfo {
            name: "demo".into(),
            epoch: None,
            version: "1.0".into(),
            release: "1".into(),
            arch: "x86_64".into(),
            summary: "s".into(),
            description: "d".into(),
            license: "MIT".into(),
            url: String::new(),
            group: "Unspecified".into(),
            vendor: String::new(),
            packager: String::new(),
            buildhost: "h".into(),
            build_time: 1,
            source_rpm: Some("demo-1.0-1.src.rpm".into()),
            installed_size: 2,
            archive_size: 3,
            header_range: (4504, 5000),
            provides: vec![],
            requires: vec![],
            conflicts: vec![],
            obsoletes: vec![],
            recommends: vec![],
            suggests: vec![],
            supplements: vec![],
            enhances: vec![],
            files: vec![],
            changelogs: vec![],
            digests: Digests::of(b"demo"),
        }
    }

    #[test]
    fn primary_files_rule() {
        for yes in [
            "/etc/x",
            "/usr/bin/x",
            "/opt/a/sbin/b",
            "/usr/lib/sendmail",
            "/bin/",
        ] {
            assert!(is_primary_file(yes), "{yes}");
        }
        for no in ["/usr/share/x", "/etc", "/usr/lib/sendmail2", "/usr/binx/y"] {
            assert!(!is_primary_file(no), "{no}");
        }
    }

    #[test]
    fn same_day_changelogs_are_spread_like_createrepo_c() {
        let mut p = info();
        let entry = |author: &str, time| Changelog {
            author: author.into(),
            time,
            text: "-".into(),
        };
        // Newest first, as in the header.
        p.changelogs = vec![
            entry("c  ", 200),
            entry("b", 100),
            entry("a", 100),
            entry("z", 100),
            entry("y", 50),
        ];
        let xml = p.other_xml();
        let dates: Vec<&str> = xml
            .split("date=\"")
            .skip(1)
            .map(|s| &s[..s.find('"').unwrap_or(0)])
            .collect();
        assert_eq!(dates, ["50", "100", "101", "102", "200"]);
        assert!(xml.contains("author=\"c\""), "{xml}");
    }

    #[test]
    fn changelog_limit_keeps_newest() {
        let mut p = info();
        p.changelogs = (0..15)
            .map(|i| Changelog {
                author: format!("a{i}"),
                time: 1000 - i,
                text: String::new(),
            })
            .collect();
        let xml = p.other_xml();
        assert_eq!(xml.matches("<changelog").count(), CHANGELOG_LIMIT);
        assert!(xml.contains("author=\"a0\"") && !xml.contains("author=\"a10\""));
        let first = xml.find("a9").unwrap_or(usize::MAX);
        assert!(first < xml.find("a0").unwrap_or(0), "oldest first");
    }

    #[test]
    fn unversioned_or_odd_flags_write_only_the_name() {
        let mut p = info();
        p.requires = vec![
            Dependency {
                name: "x".into(),
                flags: None,
                epoch: Some("0".into()),
                version: Some("1".into()),
                release: None,
                pre: true,
            },
            Dependency {
                name: "y".into(),
                flags: Some(DepFlag::Ge),
                epoch: Some("0".into()),
                version: Some("2".into()),
                release: Some("1".into()),
                pre: false,
            },
        ];
        p.files = vec![
            FileEntry {
                path: "/usr/bin/x".into(),
                kind: FileKind::File,
            },
            FileEntry {
                path: "/usr/share/x".into(),
                kind: FileKind::File,
            },
        ];
        let xml = p.primary_xml("x.rpm", 7);
        assert!(xml.contains("<rpm:entry name=\"x\" pre=\"1\"/>"), "{xml}");
        assert!(
            xml.contains("<rpm:entry name=\"y\" flags=\"GE\" epoch=\"0\" ver=\"2\" rel=\"1\"/>"),
            "{xml}"
        );
        assert!(xml.contains("<file>/usr/bin/x</file>") && !xml.contains("/usr/share/x"));
    }
}
