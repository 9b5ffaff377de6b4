//! Streaming inspection of a binary `.deb`: container checks, the control file,
//! and the digests of the whole file, in one pass and bounded memory.

use crate::ar::{ArError, ArReader};
use crate::control::{Control, ControlError};
use crate::digest::{Digests, HashingReader};
use std::io::{self, Read};

/// The control file of a package is small; anything larger is refused.
pub const MAX_CONTROL_FILE: u64 = 1024 * 1024;

/// The most `control.tar` may decompress to. Besides the control file it holds the
/// maintainer scripts, `md5sums` (about 100 bytes per packaged file, a few MB for the
/// largest packages in Debian) and `symbols`/`shlibs`, so 64 MiB leaves a wide margin.
/// Without a cap, a few MB of upload could decompress to gigabytes: skipping an entry
/// still decompresses it, and the tar reader holds GNU long names and pax headers in
/// memory whole.
pub const MAX_CONTROL_ARCHIVE: u64 = 64 * 1024 * 1024;

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
    /// `control.tar` decompresses to more than [`MAX_CONTROL_ARCHIVE`] bytes.
    #[error("control archive {member} decompresses to more than {limit} bytes")]
    ControlTooLarge {
        /// The member name, such as `control.tar.gz`.
        member: String,
        /// The limit it exceeds.
        limit: u64,
    },
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
            ArError::Io(e) if is_source_error(&e) => DebError::Io(e),
            ArError::BadMagic => DebError::NotAr,
            ArError::Truncated => DebError::Truncated,
            ArError::BadHeader(m) => DebError::Container(m),
            ArError::Io(e) => DebError::Io(e),
        }
    }
}

/// Marks an I/O error as the source's fault (network, storage), not the package's:
/// readers over remote objects wrap their errors in it, and inspection then reports
/// [`DebError::Io`] (retry) instead of a malformed package.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// Wraps a reader so that every error it returns is a [`SourceError`].
pub struct SourceReader<R>(pub R);

impl<R: Read> Read for SourceReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0
            .read(buf)
            .map_err(|e| io::Error::other(SourceError(e.to_string())))
    }
}

/// Whether `e`, or an error it wraps (decompressors wrap their reader's errors),
/// is a [`SourceError`]: the storage failed, not the package. Every format's
/// inspector uses it to tell a retryable read failure from a damaged package.
pub fn is_source_error(e: &io::Error) -> bool {
    find_in_chain::<SourceError>(e).is_some()
}

/// The first `T` in the chain of errors `e` wraps: decompressors and the tar reader
/// wrap the errors of the reader beneath them.
pub fn find_in_chain<T: std::error::Error + 'static>(e: &io::Error) -> Option<&T> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = e
        .get_ref()
        .map(|inner| inner as &(dyn std::error::Error + 'static));
    while let Some(err) = current {
        if let Some(found) = err.downcast_ref::<T>() {
            return Some(found);
        }
        if let Some(io) = err.downcast_ref::<io::Error>()
            && let Some(found) = find_in_chain::<T>(io)
        {
            return Some(found);
        }
        current = err.source();
    }
    None
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
    let mut version = Vec::new();
    ar.member()
        .take(16)
        .read_to_end(&mut version)
        .map_err(|e| map_member_io(e, "debian-binary"))?;
    if !version.starts_with(b"2.") {
        return Err(DebError::Layout(format!(
            "unsupported format version {:?}",
            String::from_utf8_lossy(&version).trim()
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
                return Err(DebError::Layout(
                    "no control.tar member before the data archive".into(),
                ));
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
    if is_source_error(&e) {
        return DebError::Io(e);
    }
    if let Some(over) = find_in_chain::<OverCap>(&e) {
        return over.error(member);
    }
    match e.kind() {
        io::ErrorKind::UnexpectedEof => DebError::Truncated,
        io::ErrorKind::InvalidData => DebError::ControlArchive(format!("{member}: {e}")),
        _ => DebError::Io(e),
    }
}

fn read_control(suffix: &str, name: &str, raw: impl Read) -> Result<Control, DebError> {
    read_control_capped(suffix, name, raw, MAX_CONTROL_ARCHIVE)
}

fn read_control_capped(
    suffix: &str,
    name: &str,
    raw: impl Read,
    cap: u64,
) -> Result<Control, DebError> {
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
    let mut archive = tar::Archive::new(Capped {
        inner: decoded,
        remaining: cap,
        cap,
    });
    let entries = archive.entries().map_err(|e| map_member_io(e, name))?;
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
    if is_source_error(&e) {
        DebError::Io(e)
    } else if let Some(over) = find_in_chain::<OverCap>(&e) {
        over.error(member)
    } else if e.kind() == io::ErrorKind::UnexpectedEof {
        DebError::Truncated
    } else {
        DebError::ControlArchive(format!("{member}: {e}"))
    }
}

/// Caps the decompressed `control.tar`; see [`MAX_CONTROL_ARCHIVE`].
struct Capped<R> {
    inner: R,
    remaining: u64,
    cap: u64,
}

/// The error [`Capped`] returns once the stream goes past its cap.
#[derive(Debug, thiserror::Error)]
#[error("decompressed data exceeds {0} bytes")]
struct OverCap(u64);

impl OverCap {
    fn error(&self, member: &str) -> DebError {
        DebError::ControlTooLarge {
            member: member.to_string(),
            limit: self.0,
        }
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Asking for one byte more than allowed tells a stream that ends exactly at
        // the cap from one that goes on.
        let allowed = usize::try_from(self.remaining.saturating_add(1))
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.inner.read(&mut buf[..allowed])?;
        if n as u64 > self.remaining {
            return Err(io::Error::other(OverCap(self.cap)));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const CONTROL: &str = "Package: demo\nVersion: 1.0-1\nArchitecture: amd64\n\
Maintainer: Demo <demo@example.org>\nDescription: demo package\n long text\n";

    fn tar_with(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(&mut header, name, *data)
                .expect("in-memory tar");
        }
        builder.into_inner().expect("in-memory tar")
    }

    fn compress(kind: &str, data: &[u8]) -> Vec<u8> {
        match kind {
            "" => data.to_vec(),
            ".gz" => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data).expect("in memory");
                e.finish().expect("in memory")
            }
            ".xz" => crate::xz(data),
            ".zst" => {
                ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
            }
            other => panic!("no compressor for {other}"),
        }
    }

    fn ar(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut out = b"!<arch>\n".to_vec();
        for (name, data) in members {
            let header = format!(
                "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                name,
                0,
                0,
                0,
                100644,
                data.len()
            );
            assert_eq!(header.len(), 60);
            out.extend_from_slice(header.as_bytes());
            out.extend_from_slice(data);
            if data.len() % 2 == 1 {
                out.push(b'\n');
            }
        }
        out
    }

    fn deb(control_compression: &str, control: &str) -> Vec<u8> {
        let control_tar = tar_with(&[("./control", control.as_bytes()), ("./md5sums", b"")]);
        let data_tar = tar_with(&[("./usr/share/doc/demo/README", b"hello")]);
        ar(&[
            ("debian-binary", b"2.0\n".to_vec()),
            (
                &format!("control.tar{control_compression}"),
                compress(control_compression, &control_tar),
            ),
            ("data.tar.gz", compress(".gz", &data_tar)),
        ])
    }

    #[test]
    fn reads_every_control_compression() {
        for kind in ["", ".gz", ".xz", ".zst"] {
            let bytes = deb(kind, CONTROL);
            let info = inspect_deb(&bytes[..]).unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(info.control.get("Package"), Some("demo"));
            assert_eq!(
                info.digests,
                Digests::of(&bytes),
                "{kind}: digests cover the file"
            );
        }
    }

    #[test]
    fn truncation_anywhere_is_an_error() {
        let bytes = deb(".gz", CONTROL);
        for cut in (0..bytes.len()).step_by(7) {
            let err = inspect_deb(&bytes[..cut]).expect_err("truncated input accepted");
            assert!(
                matches!(
                    err,
                    DebError::Truncated
                        | DebError::NotAr
                        | DebError::ControlArchive(_)
                        | DebError::Layout(_)
                ),
                "cut at {cut}: unexpected {err:?}"
            );
        }
    }

    #[test]
    fn names_the_problem() {
        let not_ar = inspect_deb(&b"hello world, not a package"[..]).expect_err("refused");
        assert_eq!(
            not_ar.to_string(),
            "not a Debian package: not an ar archive"
        );

        let no_package = deb(".gz", "Version: 1\nArchitecture: all\n");
        let err = inspect_deb(&no_package[..]).expect_err("refused");
        assert_eq!(
            err.to_string(),
            "invalid control file: control file has no Package field"
        );

        let no_control = ar(&[
            ("debian-binary", b"2.0\n".to_vec()),
            ("data.tar.gz", compress(".gz", &tar_with(&[]))),
        ]);
        let err = inspect_deb(&no_control[..]).expect_err("refused");
        assert!(
            err.to_string()
                .contains("no control.tar member before the data"),
            "{err}"
        );

        let only_binary = ar(&[("debian-binary", b"2.0\n".to_vec())]);
        let err = inspect_deb(&only_binary[..]).expect_err("refused");
        assert!(err.to_string().contains("no control.tar member"), "{err}");

        let control_tar = tar_with(&[("./postinst", b"#!/bin/sh\n")]);
        let missing_file = ar(&[
            ("debian-binary", b"2.0\n".to_vec()),
            ("control.tar.gz", compress(".gz", &control_tar)),
            ("data.tar", tar_with(&[])),
        ]);
        let err = inspect_deb(&missing_file[..]).expect_err("refused");
        assert!(err.to_string().contains("has no control file"), "{err}");

        let bzip = ar(&[
            ("debian-binary", b"2.0\n".to_vec()),
            ("control.tar.bz2", b"BZh".to_vec()),
        ]);
        let err = inspect_deb(&bzip[..]).expect_err("refused");
        assert!(matches!(err, DebError::UnsupportedCompression(_)), "{err}");
    }

    #[test]
    fn a_debian_binary_that_is_not_text_is_a_layout_error() {
        let bytes = ar(&[("debian-binary", b"\xff\xfe2.0\n".to_vec())]);
        let err = inspect_deb(&bytes[..]).expect_err("refused");
        assert!(
            matches!(&err, DebError::Layout(m) if m.starts_with("unsupported format version")),
            "{err:?}"
        );
    }

    #[test]
    fn the_cap_allows_exactly_its_size() {
        let mut capped = Capped {
            inner: &[7u8; 10][..],
            remaining: 10,
            cap: 10,
        };
        let mut out = Vec::new();
        capped.read_to_end(&mut out).expect("at the cap");
        assert_eq!(out.len(), 10);

        let mut capped = Capped {
            inner: &[7u8; 11][..],
            remaining: 10,
            cap: 10,
        };
        let err = capped.read_to_end(&mut Vec::new()).expect_err("over");
        assert!(find_in_chain::<OverCap>(&err).is_some(), "{err}");
    }

    // Regression: a control.tar.gz of a few MB that inflated to gigabytes was read to
    // its end, and a GNU long-name record in it was held in memory whole (2 GiB of
    // resident memory for a 2 MB upload). tests/fuzz.rs has the full-size bombs.
    #[test]
    fn control_archive_is_capped_after_decompression() {
        let zeros = vec![0u8; 1 << 20];
        let skipped = tar_with(&[("./postinst", &zeros), ("./control", CONTROL.as_bytes())]);
        let gz = compress(".gz", &skipped);
        let cap = 64 * 1024;
        let err = read_control_capped(".gz", "control.tar.gz", &gz[..], cap).expect_err("capped");
        assert!(
            matches!(&err, DebError::ControlTooLarge { member, limit }
                if member == "control.tar.gz" && *limit == cap),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "control archive control.tar.gz decompresses to more than 65536 bytes"
        );
        read_control_capped(".gz", "control.tar.gz", &gz[..], 4 << 20).expect("under the cap");

        let mut long_name = tar::Header::new_gnu();
        long_name.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        long_name.set_entry_type(tar::EntryType::GNULongName);
        long_name.set_size(zeros.len() as u64);
        long_name.set_cksum();
        let mut buffered = long_name.as_bytes().to_vec();
        buffered.extend_from_slice(&zeros);
        buffered.extend(tar_with(&[("./control", CONTROL.as_bytes())]));
        let err = read_control_capped(".xz", "control.tar.xz", &crate::xz(&buffered)[..], cap)
            .expect_err("capped");
        assert!(matches!(err, DebError::ControlTooLarge { .. }), "{err:?}");
    }

    #[test]
    fn source_failures_are_not_blamed_on_the_package() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("connection reset"));
                }
                let n = buf.len().min(self.0);
                buf[..n].fill(b'!');
                self.0 -= n;
                Ok(n)
            }
        }
        let bytes = deb(".gz", CONTROL);
        for cut in [4, 70, 90, bytes.len() - 10] {
            let reader = SourceReader(std::io::Read::chain(&bytes[..cut], Failing(0)));
            let err = inspect_deb(reader).expect_err("source failed");
            assert!(matches!(err, DebError::Io(_)), "cut {cut}: {err:?}");
        }
    }

    #[test]
    fn memory_does_not_grow_with_data_size() {
        // A reader that produces a large data member lazily: inspection must stream it.
        struct Lazy {
            head: std::io::Cursor<Vec<u8>>,
            remaining: u64,
        }
        impl Read for Lazy {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.head.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                let n = buf.len().min(self.remaining as usize);
                buf[..n].fill(0);
                self.remaining -= n as u64;
                Ok(n)
            }
        }
        let control_tar = tar_with(&[("./control", CONTROL.as_bytes())]);
        let mut head = ar(&[
            ("debian-binary", b"2.0\n".to_vec()),
            ("control.tar.gz", compress(".gz", &control_tar)),
        ]);
        let size: u64 = 64 * 1024 * 1024;
        head.extend_from_slice(
            format!(
                "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                "data.tar", 0, 0, 0, 100644, size
            )
            .as_bytes(),
        );
        let head_len = head.len() as u64;
        let info = inspect_deb(Lazy {
            head: std::io::Cursor::new(head),
            remaining: size,
        })
        .expect("valid");
        assert_eq!(info.digests.size, head_len + size);
    }
}
