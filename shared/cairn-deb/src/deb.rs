//! Streaming inspection of a binary `.deb`: container checks, the control file,
//! and the digests of the whole file, in one pass and bounded memory.

use crate::ar::{ArError, ArReader};
use crate::control::{Control, ControlError};
use crate::digest::{Digests, HashingReader};
use std::io::{self, Read};

/// The control file of a package is small; anything larger is refused.
const MAX_CONTROL_FILE: u64 = 1024 * 1024;

/// Why a file is not an acceptable binary package. Each message names the problem
/// so that an uploader can fix it.
#[derive(Debug, thiserror::Error)]
pub enum DebError {
    /// The file is not an `ar` archive.
    #[error("not a Debian package: not an ar archive")]
    NotAr,
    /// The file ends early.
    #[error("truncated Debian package")]
    Truncated,
    /// The `ar` container is damaged.
    #[error("malformed Debian package: {0}")]
    Container(String),
    /// A required member is missing or out of order.
    #[error("malformed Debian package: {0}")]
    Layout(String),
    /// `control.tar` uses a compression Cairn does not read.
    #[error("unsupported control archive member {0:?}")]
    UnsupportedCompression(String),
    /// `control.tar` is not a readable tar archive.
    #[error("malformed control archive: {0}")]
    ControlArchive(String),
    /// The control file is refused.
    #[error("invalid control file: {0}")]
    Control(#[from] ControlError),
    /// Reading the source failed (not the package's fault).
    #[error("reading package: {0}")]
    Io(io::Error),
}

impl From<ArError> for DebError {
    fn from(e: ArError) -> Self {
        match e {
            ArError::BadMagic => DebError::NotAr,
            ArError::Truncated => DebError::Truncated,
            ArError::BadHeader(m) => DebError::Container(m),
            ArError::Io(e) => DebError::Io(e),
        }
    }
}

/// What Cairn keeps of a package: its control paragraph and the file's digests.
#[derive(Debug, Clone)]
pub struct DebInfo {
    /// The validated control paragraph.
    pub control: Control,
    /// Size and digests of the whole `.deb`.
    pub digests: Digests,
}

/// Reads a `.deb` from `source` to its end, validating its structure and control
/// file. Memory use is bounded by the control file size, whatever the package size.
pub fn inspect_deb<R: Read>(source: R) -> Result<DebInfo, DebError> {
    let mut ar = ArReader::new(HashingReader::new(source))?;

    let first = ar
        .next_member()?
        .ok_or_else(|| DebError::Layout("empty archive".into()))?;
    if first.name != "debian-binary" {
        return Err(DebError::Layout(format!(
            "first member is {:?}, expected \"debian-binary\"",
            first.name
        )));
    }
    let mut version = String::new();
    ar.member()
        .take(16)
        .read_to_string(&mut version)
        .map_err(|e| map_member_io(e, "debian-binary"))?;
    if !version.starts_with("2.") {
        return Err(DebError::Layout(format!(
            "unsupported format version {:?}",
            version.trim()
        )));
    }

    let mut control: Option<Control> = None;
    let mut has_data = false;
    while let Some(member) = ar.next_member()? {
        if let Some(suffix) = member.name.strip_prefix("control.tar") {
            if control.is_some() {
                return Err(DebError::Layout("two control archives".into()));
            }
            control = Some(read_control(suffix, &member.name, ar.member())?);
        } else if member.name.starts_with("data.tar") {
            if control.is_none() {
                return Err(DebError::Layout("data archive before control archive".into()));
            }
            has_data = true;
        } else if !member.name.starts_with('_') {
            return Err(DebError::Layout(format!(
                "unexpected member {:?}",
                member.name
            )));
        }
    }
    let control = control.ok_or_else(|| DebError::Layout("no control.tar member".into()))?;
    if !has_data {
        return Err(DebError::Layout("no data.tar member".into()));
    }
    control.validate_binary()?;
    let digests = ar.into_inner().drain().map_err(DebError::Io)?;
    Ok(DebInfo { control, digests })
}

fn map_member_io(e: io::Error, member: &str) -> DebError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => DebError::Truncated,
        io::ErrorKind::InvalidData => DebError::ControlArchive(format!("{member}: {e}")),
        _ => DebError::Io(e),
    }
}

fn read_control(suffix: &str, name: &str, raw: impl Read) -> Result<Control, DebError> {
    let decoded: Box<dyn Read + '_> = match suffix {
        "" => Box::new(raw),
        ".gz" => Box::new(flate2::read::GzDecoder::new(raw)),
        ".xz" => Box::new(liblzma::read::XzDecoder::new(raw)),
        ".zst" => Box::new(
            ruzstd::decoding::StreamingDecoder::new(raw)
                .map_err(|e| DebError::ControlArchive(format!("{name}: {e}")))?,
        ),
        _ => return Err(DebError::UnsupportedCompression(name.to_string())),
    };
    let mut archive = tar::Archive::new(decoded);
    let entries = archive
        .entries()
        .map_err(|e| map_member_io(e, name))?;
    for entry in entries {
        let entry = entry.map_err(|e| map_tar_error(e, name))?;
        let path = entry.path().map_err(|e| map_tar_error(e, name))?;
        let path = path.to_string_lossy();
        if path.trim_start_matches("./") != "control" {
            continue;
        }
        if entry.size() > MAX_CONTROL_FILE {
            return Err(DebError::ControlArchive(format!(
                "control file is {} bytes, more than {MAX_CONTROL_FILE}",
                entry.size()
            )));
        }
        let mut text = String::new();
        entry
            .take(MAX_CONTROL_FILE)
            .read_to_string(&mut text)
            .map_err(|e| map_tar_error(e, name))?;
        return Ok(Control::parse(&text)?);
    }
    Err(DebError::ControlArchive(format!(
        "{name} has no control file"
    )))
}

fn map_tar_error(e: io::Error, member: &str) -> DebError {
    // The tar and decompression layers report corruption in many ways; only an
    // early end of the outer stream is plain truncation.
    if e.kind() == io::ErrorKind::UnexpectedEof {
        DebError::Truncated
    } else {
        DebError::ControlArchive(format!("{member}: {e}"))
    }
}
