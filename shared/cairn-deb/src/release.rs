//! `Packages` stanzas and `Release` files, as `apt-ftparchive` writes them.

use crate::control::Control;
use crate::digest::{Digests, ListedDigests};

/// Fields a stanza gets from the pool, never from the uploaded control file.
const POOL_FIELDS: [&str; 6] = ["Filename", "Size", "MD5sum", "SHA1", "SHA256", "SHA512"];

/// Renders the `Packages` stanza for a package stored at `filename` (relative to
/// the repository root), ending with a newline; stanzas are joined by a blank line.
pub fn packages_stanza(control: &Control, filename: &str, digests: &Digests) -> String {
    let pool_values = [
        filename.to_string(),
        digests.size.to_string(),
        digests.md5.clone(),
        digests.sha1.clone(),
        digests.sha256.clone(),
        digests.sha512.clone(),
    ];
    let mut pool = Some(
        POOL_FIELDS
            .iter()
            .zip(pool_values)
            .map(|(f, v)| (f.to_string(), v)),
    );
    // The control file's names are unique and none is a pool field once those are
    // skipped, so fields are appended as they come: looking each one up (`set`)
    // would be quadratic in a control file of 100,000 fields.
    let mut fields = Vec::with_capacity(control.fields().count() + POOL_FIELDS.len());
    for (name, value) in control.fields() {
        if POOL_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(name)) {
            continue;
        }
        if name.eq_ignore_ascii_case("Description") {
            fields.extend(pool.take().into_iter().flatten());
        }
        fields.push((name.to_string(), value.to_string()));
    }
    fields.extend(pool.into_iter().flatten());
    Control::from_unique_fields(fields).render()
}

/// One file listed in a `Release` file.
#[derive(Debug, Clone)]
pub struct IndexFile {
    /// Path relative to the `dists/<suite>/` directory.
    pub path: String,
    /// Its size and digests.
    pub digests: ListedDigests,
}

/// The descriptive fields of a `Release` file.
#[derive(Debug, Clone)]
pub struct ReleaseFields {
    /// `Origin` and `Label`.
    pub origin: String,
    /// `Suite` and `Codename`.
    pub suite: String,
    /// `Architectures`, space separated in the output.
    pub architectures: Vec<String>,
    /// `Components`.
    pub components: Vec<String>,
    /// `Date`, already formatted as RFC 2822 in UTC.
    pub date: String,
    /// `Description`.
    pub description: String,
}

/// Renders a `Release` file listing `files` with MD5 and SHA-256 sums, and
/// `Acquire-By-Hash: yes` (every index is also published under `by-hash/SHA256/`).
pub fn render_release(fields: &ReleaseFields, files: &[IndexFile]) -> String {
    let mut out = String::new();
    let mut line = |name: &str, value: &str| {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push('\n');
    };
    line("Origin", &fields.origin);
    line("Label", &fields.origin);
    line("Suite", &fields.suite);
    line("Codename", &fields.suite);
    line("Date", &fields.date);
    line("Architectures", &fields.architectures.join(" "));
    line("Components", &fields.components.join(" "));
    line("Description", &fields.description);
    line("Acquire-By-Hash", "yes");
    let width = files
        .iter()
        .map(|f| f.digests.size.to_string().len())
        .max()
        .unwrap_or(0)
        .max(8);
    for (title, pick) in [
        (
            "MD5Sum",
            (|d: &ListedDigests| d.md5.clone()) as fn(&ListedDigests) -> String,
        ),
        ("SHA256", |d: &ListedDigests| d.sha256.clone()),
    ] {
        out.push_str(title);
        out.push_str(":\n");
        for f in files {
            out.push_str(&format!(
                " {} {:>width$} {}\n",
                pick(&f.digests),
                f.digests.size,
                f.path
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_fields_go_before_description_and_override_upload() {
        let control = Control::parse(
            "Package: a\nVersion: 1\nArchitecture: all\nSize: 1\nDescription: x\n y\n",
        )
        .expect("valid");
        let d = Digests::of(b"pkg");
        let s = packages_stanza(&control, "pool/a.deb", &d);
        let expected_head =
            "Package: a\nVersion: 1\nArchitecture: all\nFilename: pool/a.deb\nSize: 3\n";
        assert!(s.starts_with(expected_head), "{s}");
        assert!(s.ends_with("Description: x\n y\n"), "{s}");
        assert_eq!(s.matches("Size:").count(), 1);
    }

    // Regression: the stanza was built with one lookup per field, 12 s for a
    // control file of 96,000 fields in a release build.
    #[test]
    fn many_fields_render_in_linear_time() {
        let mut text = String::from("Package: a\nVersion: 1\nArchitecture: all\n");
        for i in 0..100_000 {
            text.push_str(&format!("X-{i}: v\n"));
        }
        let control = Control::parse(&text).expect("valid");
        let start = std::time::Instant::now();
        let s = packages_stanza(&control, "pool/a.deb", &Digests::of(b"pkg"));
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        assert!(s.starts_with(&text), "no Description: pool fields go last");
        assert!(s.ends_with(&format!("SHA512: {}\n", Digests::of(b"pkg").sha512)));
    }

    #[test]
    fn release_lists_every_file_in_each_hash_section() {
        let fields = ReleaseFields {
            origin: "Cairn".into(),
            suite: "jammy".into(),
            architectures: vec!["amd64".into()],
            components: vec!["main".into()],
            date: "Sat, 21 Nov 2026 06:00:00 UTC".into(),
            description: "test".into(),
        };
        let files = vec![IndexFile {
            path: "main/binary-amd64/Packages".into(),
            digests: ListedDigests::of(b""),
        }];
        let r = render_release(&fields, &files);
        assert!(r.contains("Acquire-By-Hash: yes\n"));
        assert!(r.contains(
            "SHA256:\n e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855        0 main/binary-amd64/Packages\n"
        ));
        assert!(r.contains("MD5Sum:\n d41d8cd98f00b204e9800998ecf8427e"));
    }
}
