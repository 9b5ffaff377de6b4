//! Why a file is not an acceptable RPM package.

use crate::header::Tag;
use std::io;

/// Why a file is not an acceptable RPM package. Each message names the problem
/// so that an uploader can fix it; only [`RpmError::Io`] is not the package's
/// fault (retry it).
#[derive(Debug, thiserror::Error)]
pub enum RpmError {
    /// The first four bytes are not the RPM lead magic.
    #[error("not an RPM package: bad lead magic")]
    NotRpm,
    /// The lead names a format version other than 3 or 4.
    #[error("unsupported RPM format version {0} (only versions 3 and 4 are read)")]
    UnsupportedVersion(u8),
    /// The file ends inside the lead or one of the two headers.
    #[error("truncated RPM header")]
    Truncated,
    /// A header is damaged or breaks a limit; the message says where.
    #[error("{0}")]
    Malformed(String),
    /// The main header lacks a tag every package needs.
    #[error("missing required tag {0}")]
    MissingTag(&'static str),
    /// Reading the source failed (network, storage), not the package's fault.
    #[error("reading package: {0}")]
    Io(io::Error),
}

impl RpmError {
    /// Maps an I/O error met while reading the lead or a header: an early end of
    /// the package is [`RpmError::Truncated`], anything else is the source's fault.
    pub(crate) fn from_io(e: io::Error) -> Self {
        if !is_source_error(&e) && e.kind() == io::ErrorKind::UnexpectedEof {
            RpmError::Truncated
        } else {
            RpmError::Io(e)
        }
    }
}

impl RpmError {
    /// Parallel arrays (`tags`) whose element counts differ.
    pub(crate) fn count_mismatch(tags: &[Tag], counts: &[usize]) -> Self {
        let names: Vec<&str> = tags.iter().map(|t| t.name).collect();
        let counts: Vec<String> = counts.iter().map(usize::to_string).collect();
        RpmError::Malformed(format!(
            "RPM header tags {} have different counts ({})",
            names.join(", "),
            counts.join(", ")
        ))
    }

    /// More `what` than Cairn reads from one package.
    pub(crate) fn too_many(what: &str, n: usize, max: usize) -> Self {
        RpmError::Malformed(format!(
            "RPM header lists {n} {what}, more than the limit of {max}"
        ))
    }
}

pub(crate) use cairn_deb::is_source_error;
