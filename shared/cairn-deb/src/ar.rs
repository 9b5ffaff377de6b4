//! A streaming reader for the `ar` container used by `.deb` files.
//!
//! Members are read in order and skipped by reading, never seeking, so a
//! [`crate::HashingReader`] underneath sees every byte of the file.

use std::io::{self, Read};

const MAGIC: &[u8; 8] = b"!<arch>\n";
const HEADER_LEN: usize = 60;

/// Why an archive could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ArError {
    /// The first eight bytes are not the `ar` magic.
    #[error("not an ar archive (bad magic)")]
    BadMagic,
    /// The stream ended inside a header or a member.
    #[error("truncated ar archive")]
    Truncated,
    /// A member header is not well formed.
    #[error("bad ar member header: {0}")]
    BadHeader(String),
    /// The underlying reader failed.
    #[error(transparent)]
    Io(io::Error),
}

impl ArError {
    /// Maps an I/O error, turning an early end of stream into [`ArError::Truncated`].
    pub fn from_io(e: io::Error) -> Self {
        let from_source = crate::deb::is_source_error(&e);
        if e.kind() == io::ErrorKind::UnexpectedEof && !from_source {
            ArError::Truncated
        } else {
            ArError::Io(e)
        }
    }
}

/// One member's header.
#[derive(Debug, Clone)]
pub struct Member {
    /// The member name, without GNU `/` terminator or padding.
    pub name: String,
}

/// Sequential access to the members of an `ar` archive.
pub struct ArReader<R> {
    inner: R,
    /// Bytes of the current member not yet consumed.
    remaining: u64,
    /// Whether the current member is followed by a padding byte.
    padded: bool,
}

fn read_exact_or_eof(r: &mut impl Read, buf: &mut [u8]) -> Result<bool, ArError> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(ArError::Truncated),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ArError::Io(e)),
        }
    }
    Ok(true)
}

impl<R: Read> ArReader<R> {
    /// Checks the magic and positions the reader before the first member.
    pub fn new(mut inner: R) -> Result<Self, ArError> {
        let mut magic = [0u8; 8];
        if !read_exact_or_eof(&mut inner, &mut magic)? || &magic != MAGIC {
            return Err(ArError::BadMagic);
        }
        Ok(Self {
            inner,
            remaining: 0,
            padded: false,
        })
    }

    /// Skips what is left of the current member and reads the next header.
    pub fn next_member(&mut self) -> Result<Option<Member>, ArError> {
        self.skip_current()?;
        let mut header = [0u8; HEADER_LEN];
        if !read_exact_or_eof(&mut self.inner, &mut header)? {
            return Ok(None);
        }
        if &header[58..60] != b"`\n" {
            return Err(ArError::BadHeader("missing header terminator".into()));
        }
        let name = String::from_utf8_lossy(&header[0..16])
            .trim_end()
            .trim_end_matches('/')
            .to_string();
        let size_field = std::str::from_utf8(&header[48..58])
            .map_err(|_| ArError::BadHeader("size is not ASCII".into()))?
            .trim();
        let size: u64 = size_field
            .parse()
            .map_err(|_| ArError::BadHeader(format!("size {size_field:?} is not a number")))?;
        self.remaining = size;
        self.padded = size % 2 == 1;
        Ok(Some(Member { name }))
    }

    /// A reader over the rest of the current member.
    pub fn member(&mut self) -> MemberReader<'_, R> {
        MemberReader { ar: self }
    }

    fn skip_current(&mut self) -> Result<(), ArError> {
        io::copy(&mut self.member(), &mut io::sink()).map_err(ArError::from_io)?;
        if self.padded {
            self.padded = false;
            let mut pad = [0u8; 1];
            // A missing final padding byte is tolerated, as dpkg does.
            read_exact_or_eof(&mut self.inner, &mut pad)?;
        }
        Ok(())
    }

    /// Consumes the reader, returning the underlying stream.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

/// Reads the current member of an [`ArReader`]; a short member is an error.
pub struct MemberReader<'a, R> {
    ar: &'a mut ArReader<R>,
}

impl<R: Read> Read for MemberReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ar.remaining == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.ar.remaining).unwrap_or(usize::MAX));
        let n = self.ar.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "ar member ends early",
            ));
        }
        self.ar.remaining -= n as u64;
        Ok(n)
    }
}
