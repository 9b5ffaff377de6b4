//! One pass over a stream yields every digest APT metadata needs.

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use std::io::{self, Read};

/// Size and digests of one file, hex encoded as APT writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    /// Size in bytes.
    pub size: u64,
    /// MD5, lower-case hex.
    pub md5: String,
    /// SHA-1, lower-case hex.
    pub sha1: String,
    /// SHA-256, lower-case hex.
    pub sha256: String,
    /// SHA-512, lower-case hex.
    pub sha512: String,
}

impl Digests {
    /// Digests of an in-memory buffer.
    pub fn of(bytes: &[u8]) -> Self {
        let mut reader = HashingReader::new(bytes);
        io::copy(&mut reader, &mut io::sink()).expect("reading a slice cannot fail");
        reader.finish()
    }
}

/// SHA-256 of a buffer, lower-case hex: for the many places that need no other
/// digest (four digests of a 6 MB index cost four times one).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Size, MD5 and SHA-256 of a file a `Release` lists: the two sums it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedDigests {
    /// Size in bytes.
    pub size: u64,
    /// MD5, lower-case hex.
    pub md5: String,
    /// SHA-256, lower-case hex.
    pub sha256: String,
}

impl ListedDigests {
    /// Digests of an in-memory buffer; MD5 and SHA-256 on two threads (the larger
    /// indexes are megabytes).
    pub fn of(bytes: &[u8]) -> Self {
        let (md5, sha256) = std::thread::scope(|scope| {
            let md5 = scope.spawn(|| hex::encode(Md5::digest(bytes)));
            let sha256 = sha256_hex(bytes);
            (md5.join().expect("hashing does not panic"), sha256)
        });
        Self {
            size: bytes.len() as u64,
            md5,
            sha256,
        }
    }
}

/// A reader that hashes every byte that passes through it.
pub struct HashingReader<R> {
    inner: R,
    size: u64,
    md5: Md5,
    sha1: Sha1,
    sha256: Sha256,
    sha512: Sha512,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`; nothing is read until the caller reads.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            size: 0,
            md5: Md5::new(),
            sha1: Sha1::new(),
            sha256: Sha256::new(),
            sha512: Sha512::new(),
        }
    }

    /// Bytes seen so far.
    pub fn bytes_read(&self) -> u64 {
        self.size
    }

    /// Reads whatever is left, then returns the digests of everything read.
    pub fn drain(mut self) -> io::Result<Digests> {
        io::copy(&mut self, &mut io::sink())?;
        Ok(self.finish())
    }

    /// The digests of the bytes read so far.
    pub fn finish(self) -> Digests {
        Digests {
            size: self.size,
            md5: hex::encode(self.md5.finalize()),
            sha1: hex::encode(self.sha1.finalize()),
            sha256: hex::encode(self.sha256.finalize()),
            sha512: hex::encode(self.sha512.finalize()),
        }
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let chunk = &buf[..n];
        self.md5.update(chunk);
        self.sha1.update(chunk);
        self.sha256.update(chunk);
        self.sha512.update(chunk);
        self.size += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        let d = Digests::of(b"abc");
        assert_eq!(d.size, 3);
        assert_eq!(d.md5, "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(d.sha1, "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            d.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(d.sha512.starts_with("ddaf35a193617aba"));
        let listed = ListedDigests::of(b"abc");
        assert_eq!(
            (listed.size, &listed.md5, &listed.sha256),
            (3, &d.md5, &d.sha256)
        );
        assert_eq!(sha256_hex(b"abc"), d.sha256);
    }
}
