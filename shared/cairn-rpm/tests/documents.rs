//! Cairn's own output parses: whole primary, filelists, other and repomd
//! documents built from packages with awkward text (markup characters, control
//! characters, non-characters, Latin-1 bytes, CR, tabs) are well-formed XML in
//! the right namespaces, and the text reads back as it went in, less the
//! characters XML cannot carry.

use cairn_rpm::testutil::{RpmBuilder, Value, tag};
use cairn_rpm::{
    RepomdEntry, RpmInfo, filelists_document, inspect_rpm, other_document, primary_document,
    repomd_xml,
};

const COMMON: &str = "http://linux.duke.edu/metadata/common";
const RPM: &str = "http://linux.duke.edu/metadata/rpm";

fn awkward() -> RpmInfo {
    let mut rpm = RpmBuilder::rich("awk&ward");
    rpm.header.set(
        tag::SUMMARY,
        Value::Str("<b>bold</b> & \"quoted\" 'single' ]]> \u{1}bell\u{7} \u{fffe}".into()),
    );
    rpm.header.set(
        tag::DESCRIPTION,
        Value::I18n(vec![
            "line\r\nwith CR\tand tab\n\u{10348} astral".into(),
            "second locale, ignored".into(),
        ]),
    );
    // "Vendor" in ISO-8859-1: not UTF-8, read as Latin-1.
    rpm.header.set(
        1011,
        Value::RawStr(b"Soci\xe9t\xe9 G\xe9n\xe9rale \x93quoted\x94".to_vec()),
    );
    rpm.header.set(
        tag::CHANGELOGNAME,
        Value::StrArray(vec![
            "J\u{f6}rg \"Q\" <j@x> - 1\t2\r3".into(),
            "John   ".into(),
        ]),
    );
    rpm.header.set(
        tag::BASENAMES,
        Value::StrArray(vec![
            "a&b".into(),
            "<dir>".into(),
            "caf\u{e9}".into(),
            "\u{1b}[0m".into(),
        ]),
    );
    let bytes = rpm.build();
    inspect_rpm(&bytes[..]).expect("valid package")
}

fn parse(doc: &str) -> roxmltree::Document<'_> {
    roxmltree::Document::parse(doc).unwrap_or_else(|e| panic!("not well-formed: {e}\n{doc}"))
}

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> roxmltree::Node<'a, 'i> {
    node.children()
        .find(|n| n.tag_name().name() == name)
        .unwrap_or_else(|| panic!("no <{name}> in <{}>", node.tag_name().name()))
}

#[test]
fn primary_document_parses_and_round_trips() {
    let info = awkward();
    let plain = inspect_rpm(&RpmBuilder::minimal("plain").build()[..]).expect("valid");
    let fragments = [
        info.primary_xml("Packages/a/awk&ward-1.0-1.x86_64.rpm", 1_700_000_000),
        plain.primary_xml("Packages/p/plain-1.0-1.x86_64.rpm", 1_700_000_001),
    ];
    let text = primary_document(2, &[&fragments[0], &fragments[1]]);
    let doc = parse(&text);
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "metadata");
    assert_eq!(root.tag_name().namespace(), Some(COMMON));
    assert_eq!(root.attribute("packages"), Some("2"));
    let packages: Vec<_> = root.children().filter(|n| n.is_element()).collect();
    assert_eq!(packages.len(), 2);

    let pkg = packages[0];
    assert_eq!(pkg.attribute("type"), Some("rpm"));
    assert_eq!(child(pkg, "name").text(), Some("awk&ward"));
    assert_eq!(
        child(pkg, "summary").text(),
        Some("<b>bold</b> & \"quoted\" 'single' ]]> bell ")
    );
    assert_eq!(
        child(pkg, "description").text(),
        Some("line\r\nwith CR\tand tab\n\u{10348} astral"),
        "CR survives parsing because it is written as a reference"
    );
    assert_eq!(
        child(pkg, "location").attribute("href"),
        Some("Packages/a/awk&ward-1.0-1.x86_64.rpm")
    );
    assert_eq!(
        child(pkg, "checksum").text(),
        Some(info.digests.sha256.as_str())
    );
    let format = child(pkg, "format");
    let vendor = child(format, "vendor");
    assert_eq!(vendor.tag_name().namespace(), Some(RPM));
    assert_eq!(
        vendor.text(),
        Some("Soci\u{e9}t\u{e9} G\u{e9}n\u{e9}rale quoted")
    );
    let requires: Vec<_> = child(format, "requires")
        .children()
        .filter(|n| n.is_element())
        .map(|n| {
            (
                n.attribute("name"),
                n.attribute("flags"),
                n.attribute("pre"),
            )
        })
        .collect();
    assert!(
        requires.contains(&(Some("shadow-utils"), None, Some("1"))),
        "{requires:?}"
    );
    assert!(
        requires.contains(&(Some("bash"), Some("GE"), None)),
        "{requires:?}"
    );
    let files: Vec<_> = format
        .children()
        .filter(|n| n.has_tag_name((COMMON, "file")))
        .map(|n| n.text().unwrap_or_default().to_string())
        .collect();
    assert_eq!(files, ["/usr/bin/a&b"], "only primary files");
}

#[test]
fn filelists_and_other_documents_parse() {
    let info = awkward();
    let filelists = filelists_document(1, &[&info.filelists_xml()]);
    let doc = parse(&filelists);
    let root = doc.root_element();
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://linux.duke.edu/metadata/filelists")
    );
    let pkg = child(root, "package");
    assert_eq!(pkg.attribute("pkgid"), Some(info.digests.sha256.as_str()));
    assert_eq!(pkg.attribute("name"), Some("awk&ward"));
    let files: Vec<_> = pkg
        .children()
        .filter(|n| n.has_tag_name("file"))
        .map(|n| {
            (
                n.text().unwrap_or_default().to_string(),
                n.attribute("type"),
            )
        })
        .collect();
    assert_eq!(
        files,
        [
            ("/usr/bin/a&b".to_string(), None),
            ("/usr/share/<dir>".to_string(), Some("dir")),
            ("/usr/share/caf\u{e9}".to_string(), None),
            ("/var/lib/awk&ward/[0m".to_string(), Some("ghost")),
        ]
    );

    let other = other_document(1, &[&info.other_xml()]);
    let doc = parse(&other);
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "otherdata");
    let pkg = child(root, "package");
    let changelogs: Vec<_> = pkg
        .children()
        .filter(|n| n.has_tag_name("changelog"))
        .map(|n| {
            (
                n.attribute("author").unwrap_or_default().to_string(),
                n.attribute("date").unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        changelogs,
        [
            ("John".to_string(), "1600000000".to_string()),
            (
                "J\u{f6}rg \"Q\" <j@x> - 1\t2\r3".to_string(),
                "1700000000".to_string()
            ),
        ],
        "oldest first; tab and CR in attributes survive as references"
    );
}

#[test]
fn repomd_parses() {
    let entries: Vec<RepomdEntry> = ["primary", "filelists", "other"]
        .iter()
        .zip(1u64..)
        .map(|(kind, n)| RepomdEntry {
            kind: kind.to_string(),
            href: format!("repodata/{}-{kind}.xml.gz", "ab".repeat(32)),
            checksum: "ab".repeat(32),
            size: n * 100,
            open_checksum: "cd".repeat(32),
            open_size: n * 1000,
            timestamp: 1_700_000_000,
        })
        .collect();
    let text = repomd_xml(1_700_000_123, &entries);
    let doc = parse(&text);
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "repomd");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://linux.duke.edu/metadata/repo")
    );
    assert_eq!(child(root, "revision").text(), Some("1700000123"));
    let data: Vec<_> = root.children().filter(|n| n.has_tag_name("data")).collect();
    assert_eq!(data.len(), 3);
    for (node, entry) in data.iter().zip(&entries) {
        assert_eq!(node.attribute("type"), Some(entry.kind.as_str()));
        assert_eq!(child(*node, "checksum").attribute("type"), Some("sha256"));
        assert_eq!(
            child(*node, "checksum").text(),
            Some(entry.checksum.as_str())
        );
        assert_eq!(
            child(*node, "open-checksum").text(),
            Some(entry.open_checksum.as_str())
        );
        assert_eq!(
            child(*node, "location").attribute("href"),
            Some(entry.href.as_str())
        );
        assert_eq!(
            child(*node, "size").text(),
            Some(entry.size.to_string().as_str())
        );
        assert_eq!(
            child(*node, "open-size").text(),
            Some(entry.open_size.to_string().as_str())
        );
        assert_eq!(child(*node, "timestamp").text(), Some("1700000000"));
    }
}

#[test]
fn empty_documents_parse() {
    for doc in [
        primary_document(0, &[]),
        filelists_document(0, &[]),
        other_document(0, &[]),
        repomd_xml(0, &[]),
    ] {
        parse(&doc);
    }
}
