//! Writing a git pack (version 2, no deltas) and its index (version 2).
//!
//! Dumb-HTTP clients download whole packs, so each archived tree gets a pack of its
//! own that holds every object the tree needs: a clone of one tag then costs one
//! tree's worth of bytes. Objects are written whole (no deltas): inside one tree
//! deltas rarely pay, and the output stays a pure function of the objects and their
//! order, so the same tree always gives byte-identical packs.

use flate2::Compression;
use flate2::write::ZlibEncoder;
use sha1::{Digest, Sha1};
use std::io::Write;

/// A git object kind, with its pack type number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A commit.
    Commit,
    /// A tree.
    Tree,
    /// A blob (file content or symlink target).
    Blob,
    /// An annotated tag.
    Tag,
}

impl Kind {
    fn pack_type(self) -> u8 {
        match self {
            Kind::Commit => 1,
            Kind::Tree => 2,
            Kind::Blob => 3,
            Kind::Tag => 4,
        }
    }

    /// The name git uses in object headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Commit => "commit",
            Kind::Tree => "tree",
            Kind::Blob => "blob",
            Kind::Tag => "tag",
        }
    }
}

/// The SHA-1 object id of `data` as a git object of `kind`.
pub fn object_id(kind: Kind, data: &[u8]) -> [u8; 20] {
    let mut h = Sha1::new();
    h.update(format!("{} {}\0", kind.as_str(), data.len()).as_bytes());
    h.update(data);
    h.finalize().into()
}

/// A finished pack and its index.
#[derive(Debug, Clone)]
pub struct Pack {
    /// The `.pack` bytes (shared, not copied, when stored).
    pub pack: bytes::Bytes,
    /// The `.idx` bytes.
    pub idx: bytes::Bytes,
    /// Hex SHA-1 trailer of the pack: its name is `pack-<checksum>.pack`.
    pub checksum: String,
    /// Number of objects.
    pub objects: usize,
}

impl Pack {
    /// `pack-<checksum>`, the file stem git expects.
    pub fn stem(&self) -> String {
        format!("pack-{}", self.checksum)
    }
}

/// Accumulates objects into a pack; each id may be added once (later adds of the
/// same id are ignored).
#[derive(Debug)]
pub struct PackBuilder {
    body: Vec<u8>,
    entries: Vec<([u8; 20], u32, u64)>,
    seen: std::collections::HashSet<[u8; 20]>,
    level: Compression,
}

impl Default for PackBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl PackBuilder {
    /// An empty pack at git's default zlib level.
    pub fn new() -> Self {
        let mut body = Vec::with_capacity(1 << 20);
        body.extend_from_slice(b"PACK");
        body.extend_from_slice(&2u32.to_be_bytes());
        body.extend_from_slice(&0u32.to_be_bytes()); // count, patched in finish()
        PackBuilder {
            body,
            entries: Vec::new(),
            seen: Default::default(),
            level: Compression::default(),
        }
    }

    /// Whether `id` is already in the pack.
    pub fn contains(&self, id: &[u8; 20]) -> bool {
        self.seen.contains(id)
    }

    /// Number of objects so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no object was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.body.len() as u64
    }

    /// Adds an object whose id the caller knows (it is not recomputed).
    pub fn add(&mut self, id: [u8; 20], kind: Kind, data: &[u8]) {
        if !self.seen.insert(id) {
            return;
        }
        let offset = self.body.len() as u64;
        let start = self.body.len();
        let mut size = data.len() as u64;
        let mut byte = (kind.pack_type() << 4) | (size & 0x0f) as u8;
        size >>= 4;
        while size != 0 {
            self.body.push(byte | 0x80);
            byte = (size & 0x7f) as u8;
            size >>= 7;
        }
        self.body.push(byte);
        let mut z = ZlibEncoder::new(std::mem::take(&mut self.body), self.level);
        z.write_all(data).expect("writing to a Vec cannot fail");
        self.body = z.finish().expect("writing to a Vec cannot fail");
        let crc = crc32fast::hash(&self.body[start..]);
        self.entries.push((id, crc, offset));
    }

    /// Writes the count and the trailer, and builds the index.
    pub fn finish(mut self) -> Pack {
        let count = u32::try_from(self.entries.len()).expect("fewer than 2^32 objects");
        self.body[8..12].copy_from_slice(&count.to_be_bytes());
        let trailer: [u8; 20] = Sha1::digest(&self.body).into();
        self.body.extend_from_slice(&trailer);

        let mut entries = self.entries;
        entries.sort_unstable_by_key(|e| e.0);
        let mut idx = Vec::with_capacity(1072 + entries.len() * 28 + 40);
        idx.extend_from_slice(b"\xfftOc");
        idx.extend_from_slice(&2u32.to_be_bytes());
        let mut fanout = [0u32; 256];
        for (id, _, _) in &entries {
            fanout[id[0] as usize] += 1;
        }
        let mut total = 0u32;
        for n in fanout {
            total += n;
            idx.extend_from_slice(&total.to_be_bytes());
        }
        for (id, _, _) in &entries {
            idx.extend_from_slice(id);
        }
        for (_, crc, _) in &entries {
            idx.extend_from_slice(&crc.to_be_bytes());
        }
        let mut large = Vec::new();
        for (_, _, offset) in &entries {
            if *offset < 0x8000_0000 {
                idx.extend_from_slice(&(*offset as u32).to_be_bytes());
            } else {
                let slot = 0x8000_0000u32 | large.len() as u32;
                idx.extend_from_slice(&slot.to_be_bytes());
                large.push(*offset);
            }
        }
        for offset in large {
            idx.extend_from_slice(&offset.to_be_bytes());
        }
        idx.extend_from_slice(&trailer);
        let idx_sum: [u8; 20] = Sha1::digest(&idx).into();
        idx.extend_from_slice(&idx_sum);
        Pack {
            pack: self.body.into(),
            idx: idx.into(),
            checksum: hex::encode(trailer),
            objects: entries.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    #[test]
    fn object_ids_match_git() {
        // `printf hello | git hash-object --stdin`
        assert_eq!(
            hex::encode(object_id(Kind::Blob, b"hello")),
            "b6fc4c620b67d95f953a5c1c1230aaab5db5a1b0"
        );
        // The empty tree.
        assert_eq!(
            hex::encode(object_id(Kind::Tree, b"")),
            "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
        );
    }

    #[test]
    fn git_reads_the_pack_and_index() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = PackBuilder::new();
        let big: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let blobs: Vec<Vec<u8>> = vec![b"hello".to_vec(), Vec::new(), big];
        let mut ids = Vec::new();
        for data in &blobs {
            let id = object_id(Kind::Blob, data);
            b.add(id, Kind::Blob, data);
            b.add(id, Kind::Blob, data); // duplicate ignored
            ids.push(hex::encode(id));
        }
        assert_eq!(b.len(), 3);
        let pack = b.finish();
        let stem = pack.stem();
        std::fs::write(dir.path().join(format!("{stem}.pack")), &pack.pack).unwrap();
        std::fs::write(dir.path().join(format!("{stem}.idx")), &pack.idx).unwrap();
        let out = git(dir.path(), &["verify-pack", "-v", &format!("{stem}.idx")]);
        let listing = String::from_utf8_lossy(&out.stdout);
        for id in &ids {
            assert!(listing.contains(id.as_str()), "{id} missing: {listing}");
        }
        // git's own index of our pack is byte-identical to ours.
        let theirs = dir.path().join("theirs.idx");
        git(
            dir.path(),
            &[
                "index-pack",
                "-o",
                theirs.to_str().unwrap(),
                &format!("{stem}.pack"),
            ],
        );
        assert_eq!(std::fs::read(theirs).unwrap(), pack.idx);
    }

    #[test]
    fn same_objects_same_bytes() {
        let build = || {
            let mut b = PackBuilder::new();
            for data in [&b"a"[..], b"b", b"c"] {
                b.add(object_id(Kind::Blob, data), Kind::Blob, data);
            }
            b.finish()
        };
        assert_eq!(build().pack, build().pack);
    }
}
