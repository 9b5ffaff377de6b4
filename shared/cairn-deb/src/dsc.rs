//! Debian source packages: the `.dsc` control file (possibly OpenPGP-signed) and
//! the `Sources` stanza APT reads to find it and its files.

use crate::control::{Control, ControlError};
use crate::digest::Digests;

/// A `.dsc` is a short text file; anything larger is refused.
const MAX_DSC_BYTES: usize = 1024 * 1024;

/// Why a `.dsc` was refused.
#[derive(Debug, thiserror::Error)]
pub enum DscError {
    /// Too large to be a source control file.
    #[error("a .dsc file is at most {MAX_DSC_BYTES} bytes")]
    TooLarge,
    /// Not UTF-8 text.
    #[error("a .dsc file must be UTF-8 text")]
    NotText,
    /// An OpenPGP-signed `.dsc` whose armour is broken.
    #[error("malformed signed .dsc: {0}")]
    Armor(&'static str),
    /// The paragraph is refused.
    #[error("invalid .dsc: {0}")]
    Control(#[from] ControlError),
    /// A line of `Files` or `Checksums-Sha256` is not `digest size name`.
    #[error("invalid .dsc: bad {field} line {line:?}")]
    FileLine {
        /// The field.
        field: &'static str,
        /// The line.
        line: String,
    },
    /// A listed file name could escape the pool directory.
    #[error("invalid .dsc: file name {0:?} must be a plain name")]
    FileName(String),
}

/// One file a `.dsc` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DscFile {
    /// File name, beside the `.dsc`.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// MD5 from `Files`, lower-case hex.
    pub md5: String,
    /// SHA-256 from `Checksums-Sha256`, when the `.dsc` has it.
    pub sha256: Option<String>,
}

/// A parsed `.dsc`.
#[derive(Debug, Clone)]
pub struct DscInfo {
    /// The control paragraph (signature stripped).
    pub control: Control,
    /// The files it lists, in `Files` order.
    pub files: Vec<DscFile>,
    /// Digests of the `.dsc` file itself.
    pub digests: Digests,
}

impl DscInfo {
    /// The source package name.
    pub fn source(&self) -> &str {
        self.control.get("Source").unwrap_or_default()
    }

    /// The version.
    pub fn version(&self) -> &str {
        self.control.get("Version").unwrap_or_default()
    }
}

/// The text an OpenPGP cleartext signature wraps, dash-escaping undone; the text
/// itself when it is not signed. The signature is not checked: the uploader's key is
/// unknown, and authentication is the API's job.
fn signed_body(text: &str) -> Result<String, DscError> {
    let Some(rest) = text.strip_prefix("-----BEGIN PGP SIGNED MESSAGE-----\n") else {
        return Ok(text.to_string());
    };
    // Armour headers (`Hash: …`) end at the first empty line.
    let (_, body) = rest
        .split_once("\n\n")
        .ok_or(DscError::Armor("no blank line after the armour headers"))?;
    let (body, _) = body
        .split_once("\n-----BEGIN PGP SIGNATURE-----")
        .ok_or(DscError::Armor("no signature block"))?;
    Ok(body
        .lines()
        .map(|l| l.strip_prefix("- ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n")
}

fn file_lines(
    control: &Control,
    field: &'static str,
) -> Result<Vec<(String, u64, String)>, DscError> {
    let Some(value) = control.get(field) else {
        return Ok(Vec::new());
    };
    value
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let bad = || DscError::FileLine {
                field,
                line: line.to_string(),
            };
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [digest, size, name] = parts[..] else {
                return Err(bad());
            };
            let size = size.parse().map_err(|_| bad())?;
            if !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad());
            }
            let plain = !name.is_empty()
                && !name.starts_with('.')
                && !name.contains("..")
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._+~-".contains(&b));
            if !plain {
                return Err(DscError::FileName(name.to_string()));
            }
            Ok((digest.to_ascii_lowercase(), size, name.to_string()))
        })
        .collect()
}

/// Parses and checks a `.dsc`: `Source`, `Version`, `Format` and a `Files` list of
/// plain file names are required; `Checksums-Sha256` is read when present.
pub fn inspect_dsc(bytes: &[u8]) -> Result<DscInfo, DscError> {
    if bytes.len() > MAX_DSC_BYTES {
        return Err(DscError::TooLarge);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| DscError::NotText)?;
    let control = Control::parse(&signed_body(text)?)?;
    for field in ["Source", "Version", "Format", "Files"] {
        if control.get(field).is_none_or(|v| v.trim().is_empty()) {
            return Err(ControlError::MissingField(field).into());
        }
    }
    let sha256: Vec<(String, u64, String)> = file_lines(&control, "Checksums-Sha256")?;
    let files = file_lines(&control, "Files")?
        .into_iter()
        .map(|(md5, size, name)| DscFile {
            sha256: sha256
                .iter()
                .find(|(_, _, n)| *n == name)
                .map(|(d, _, _)| d.clone()),
            name,
            size,
            md5,
        })
        .collect();
    Ok(DscInfo {
        control,
        files,
        digests: Digests::of(bytes),
    })
}

/// A file of a source package as published: its name, size and digests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// MD5, lower-case hex.
    pub md5: String,
    /// SHA-256, lower-case hex.
    pub sha256: String,
}

/// Renders the `Sources` stanza for a source package whose files (the `.dsc` first)
/// are in `directory` (relative to the repository root), as `apt-ftparchive sources`
/// does: `Package` from `Source`, the `.dsc`'s other fields, then `Directory`,
/// `Files` and `Checksums-Sha256` covering the `.dsc` and every file it lists.
pub fn sources_stanza(info: &DscInfo, directory: &str, files: &[SourceFile]) -> String {
    // The .dsc's fields are unique (the parser refuses duplicates) and none of the
    // derived ones is copied, so the stanza is built by appending, in linear time.
    let derived = [
        "Source",
        "Files",
        "Checksums-Sha1",
        "Checksums-Sha256",
        "Package",
        "Directory",
    ];
    let mut fields = vec![("Package".to_string(), info.source().to_string())];
    fields.extend(
        info.control
            .fields()
            .filter(|(name, _)| !derived.iter().any(|d| d.eq_ignore_ascii_case(name)))
            .map(|(n, v)| (n.to_string(), v.to_string())),
    );
    let list = |digest: &dyn Fn(&SourceFile) -> &str| {
        files
            .iter()
            .map(|f| format!("\n {} {} {}", digest(f), f.size, f.name))
            .collect::<String>()
    };
    fields.push(("Directory".into(), directory.to_string()));
    fields.push(("Files".into(), list(&|f| &f.md5)));
    fields.push(("Checksums-Sha256".into(), list(&|f| &f.sha256)));
    Control::from_unique_fields(fields).render()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DSC: &str = "Format: 3.0 (quilt)\nSource: hello\nBinary: hello\nArchitecture: any\n\
Version: 2.10-3\nMaintainer: M <m@example.org>\nBuild-Depends: debhelper-compat (= 13)\n\
Checksums-Sha256:\n aaaa 10 hello_2.10.orig.tar.gz\n bbbb 5 hello_2.10-3.debian.tar.xz\n\
Files:\n 1111 10 hello_2.10.orig.tar.gz\n 2222 5 hello_2.10-3.debian.tar.xz\n";

    #[test]
    fn reads_signed_and_unsigned_dsc_and_renders_sources() {
        let signed = format!(
            "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n{}\n-----BEGIN PGP SIGNATURE-----\nx\n-----END PGP SIGNATURE-----\n",
            DSC.trim_end()
        );
        for text in [DSC.to_string(), signed] {
            let info = inspect_dsc(text.as_bytes()).expect("valid");
            assert_eq!((info.source(), info.version()), ("hello", "2.10-3"));
            assert_eq!(info.files.len(), 2);
            assert_eq!(info.files[0].sha256.as_deref(), Some("aaaa"));
            assert_eq!(info.files[1].md5, "2222");
        }
        let info = inspect_dsc(DSC.as_bytes()).expect("valid");
        let files = vec![SourceFile {
            name: "hello_2.10-3.dsc".into(),
            size: 3,
            md5: "m".into(),
            sha256: "s".into(),
        }];
        let stanza = sources_stanza(&info, "pool/jammy/main/h/hello", &files);
        assert!(stanza.starts_with("Package: hello\nFormat: 3.0 (quilt)\nBinary: hello\n"));
        assert!(stanza.contains("Directory: pool/jammy/main/h/hello\n"));
        assert!(
            stanza.contains(
                "Files:\n m 3 hello_2.10-3.dsc\nChecksums-Sha256:\n s 3 hello_2.10-3.dsc\n"
            )
        );
        assert!(!stanza.contains("Source:"));
    }

    #[test]
    fn refuses_path_tricks_and_missing_fields() {
        let evil = DSC
            .replace("hello_2.10.orig.tar.gz\n Files", "x\n Files")
            .replace(
                " 1111 10 hello_2.10.orig.tar.gz",
                " 1111 10 ../../etc/passwd",
            );
        assert!(matches!(
            inspect_dsc(evil.as_bytes()),
            Err(DscError::FileName(_))
        ));
        let no_version = DSC.replace("Version: 2.10-3\n", "");
        assert!(inspect_dsc(no_version.as_bytes()).is_err());
        assert!(inspect_dsc(b"\xff\xfe").is_err());
        let unterminated = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nSource: x\n";
        assert!(matches!(
            inspect_dsc(unterminated.as_bytes()),
            Err(DscError::Armor(_))
        ));
    }
}
