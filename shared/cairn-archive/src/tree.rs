//! Turning one fetched tree into what Cairn publishes: the archive commit, a
//! self-contained pack (commit, trees, blobs) and a reproducible tarball, in one walk.
//!
//! Objects come from a fetched, untrusted repository, so every tree is parsed here
//! with limits (objects, bytes, depth) and entry names that a checkout or a tar
//! extraction could misuse (`..`, `.git`, names with `/`) are refused.

use crate::ArchiveError;
use crate::pack::{Kind, PackBuilder, object_id};
use flate2::Compression;
use flate2::write::GzEncoder;

/// Where objects are read from (the fetched repository; a map in tests).
pub trait ObjectSource {
    /// The kind and content of object `id`.
    fn read(&self, id: &[u8; 20]) -> Result<(Kind, Vec<u8>), ArchiveError>;
}

/// Bounds on what one archive may contain.
#[derive(Debug, Clone, Copy)]
pub struct TreeLimits {
    /// Most objects (trees and blobs) in the tree.
    pub max_objects: u64,
    /// Most bytes of object content, uncompressed.
    pub max_bytes: u64,
}

/// Deepest directory nesting accepted (git itself refuses beyond 4096; checkouts
/// of much less are already unusual).
pub(crate) const MAX_DEPTH: usize = 256;

/// Author, committer and date of every archive commit: fixed, so the commit is a
/// function of the tree alone and the same tree always gets the same tag.
pub const ARCHIVE_IDENT: &str = "Cairn Archive <archive@cairn.invalid> 0 +0000";

/// A gitlink (submodule) entry: recorded, not followed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Submodule {
    /// Path in the tree.
    pub path: String,
    /// The commit the superproject records.
    pub commit: String,
}

/// One parsed tree entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Octal mode as git writes it (`100644`, `40000`, ...).
    pub mode: u32,
    /// The entry name (a single path component).
    pub name: Vec<u8>,
    /// Object id.
    pub id: [u8; 20],
}

/// Parses a tree object's content.
pub fn parse_tree(data: &[u8]) -> Result<Vec<Entry>, ArchiveError> {
    let bad = |why: &str| ArchiveError::BadObject(format!("malformed tree: {why}"));
    let mut entries = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let space = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| bad("no mode"))?;
        let mode_text = std::str::from_utf8(&rest[..space]).map_err(|_| bad("mode"))?;
        let mode = u32::from_str_radix(mode_text, 8).map_err(|_| bad("mode"))?;
        rest = &rest[space + 1..];
        let nul = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| bad("no name end"))?;
        let name = rest[..nul].to_vec();
        rest = &rest[nul + 1..];
        if rest.len() < 20 {
            return Err(bad("truncated id"));
        }
        let mut id = [0u8; 20];
        id.copy_from_slice(&rest[..20]);
        rest = &rest[20..];
        entries.push(Entry { mode, name, id });
    }
    Ok(entries)
}

/// Refuses names a checkout or an extraction could misuse.
pub(crate) fn check_name(name: &[u8], parent: &str) -> Result<String, ArchiveError> {
    let text = String::from_utf8_lossy(name);
    let unsafe_name = name.is_empty()
        || name == b"."
        || name == b".."
        || name.contains(&b'/')
        || name.contains(&b'\\')
        || name.contains(&0)
        || name.eq_ignore_ascii_case(b".git");
    if unsafe_name {
        return Err(ArchiveError::UnsafePath(format!("{parent}{text}")));
    }
    Ok(text.into_owned())
}

/// The archive commit object for `tree` (no parent, fixed identity and message).
pub fn archive_commit(tree_hex: &str) -> Vec<u8> {
    format!(
        "tree {tree_hex}\nauthor {ARCHIVE_IDENT}\ncommitter {ARCHIVE_IDENT}\n\nCairn archive of tree {tree_hex}\n"
    )
    .into_bytes()
}

/// What one walk produced.
#[derive(Debug)]
pub struct Archived {
    /// The archive commit id (hex).
    pub commit: String,
    /// Its pack: the commit, every tree and every blob.
    pub pack: crate::pack::Pack,
    /// The `.tar.gz` of the tree under `prefix/`.
    pub tarball: Vec<u8>,
    /// Gitlinks found.
    pub submodules: Vec<Submodule>,
    /// Files (blobs and symlinks) in the tree.
    pub files: u64,
}

/// Walks `tree` from `source`: pack, tarball (entries under `prefix`), submodules.
pub fn archive_tree(
    source: &dyn ObjectSource,
    tree: [u8; 20],
    prefix: &str,
    limits: TreeLimits,
) -> Result<Archived, ArchiveError> {
    let tree_hex = hex::encode(tree);
    let commit = archive_commit(&tree_hex);
    let commit_id = object_id(Kind::Commit, &commit);
    let mut pack = PackBuilder::new();
    pack.add(commit_id, Kind::Commit, &commit);
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    tar.mode(tar::HeaderMode::Deterministic);
    let mut walk = Walk {
        source,
        pack,
        tar,
        limits,
        objects: 0,
        bytes: 0,
        files: 0,
        submodules: Vec::new(),
    };
    walk.dir(&format!("{prefix}/"))?;
    walk.tree(tree, &format!("{prefix}/"), "", 0)?;
    let tarball = walk
        .tar
        .into_inner()
        .and_then(|gz| gz.finish())
        .map_err(|e| ArchiveError::Internal(format!("tarball: {e}")))?;
    Ok(Archived {
        commit: hex::encode(commit_id),
        pack: walk.pack.finish(),
        tarball,
        submodules: walk.submodules,
        files: walk.files,
    })
}

struct Walk<'a> {
    source: &'a dyn ObjectSource,
    pack: PackBuilder,
    tar: tar::Builder<GzEncoder<Vec<u8>>>,
    limits: TreeLimits,
    objects: u64,
    bytes: u64,
    files: u64,
    submodules: Vec<Submodule>,
}

impl Walk<'_> {
    fn count(&mut self, len: usize) -> Result<(), ArchiveError> {
        self.objects += 1;
        self.bytes += len as u64;
        if self.objects > self.limits.max_objects {
            return Err(ArchiveError::TooManyObjects(self.limits.max_objects));
        }
        if self.bytes > self.limits.max_bytes {
            return Err(ArchiveError::TooLarge(self.limits.max_bytes));
        }
        Ok(())
    }

    fn read(&mut self, id: &[u8; 20], want: Kind) -> Result<Vec<u8>, ArchiveError> {
        let (kind, data) = self.source.read(id)?;
        if kind != want {
            return Err(ArchiveError::BadObject(format!(
                "{} is a {}, expected a {}",
                hex::encode(id),
                kind.as_str(),
                want.as_str()
            )));
        }
        if object_id(kind, &data) != *id {
            return Err(ArchiveError::BadObject(format!(
                "{} does not hash to its id",
                hex::encode(id)
            )));
        }
        self.count(data.len())?;
        Ok(data)
    }

    fn header(&self, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    fn dir(&mut self, path: &str) -> Result<(), ArchiveError> {
        let mut h = self.header(tar::EntryType::Directory, 0o755, 0);
        self.tar
            .append_data(&mut h, path, std::io::empty())
            .map_err(|e| ArchiveError::Internal(format!("tarball: {e}")))
    }

    /// `tar_dir` is the directory inside the tarball, `git_dir` the same path in the
    /// tree (for messages and submodule paths), both ending in `/` or empty.
    fn tree(
        &mut self,
        id: [u8; 20],
        tar_dir: &str,
        git_dir: &str,
        depth: usize,
    ) -> Result<(), ArchiveError> {
        if depth > MAX_DEPTH {
            return Err(ArchiveError::UnsafePath(format!(
                "{git_dir}: nested deeper than {MAX_DEPTH} directories"
            )));
        }
        let data = self.read(&id, Kind::Tree)?;
        self.pack.add(id, Kind::Tree, &data);
        for entry in parse_tree(&data)? {
            let name = check_name(&entry.name, git_dir)?;
            let git_path = format!("{git_dir}{name}");
            let tar_path = format!("{tar_dir}{name}");
            match entry.mode {
                0o40000 => {
                    self.dir(&format!("{tar_path}/"))?;
                    self.tree(
                        entry.id,
                        &format!("{tar_path}/"),
                        &format!("{git_path}/"),
                        depth + 1,
                    )?;
                }
                0o160000 => {
                    self.dir(&format!("{tar_path}/"))?;
                    self.submodules.push(Submodule {
                        path: git_path,
                        commit: hex::encode(entry.id),
                    });
                }
                0o100644 | 0o100755 | 0o100664 | 0o120000 => {
                    let data = if self.pack.contains(&entry.id) {
                        // Same content elsewhere in the tree: counted once, read again
                        // only for the tarball.
                        self.source.read(&entry.id)?.1
                    } else {
                        let data = self.read(&entry.id, Kind::Blob)?;
                        self.pack.add(entry.id, Kind::Blob, &data);
                        data
                    };
                    self.files += 1;
                    let result = if entry.mode == 0o120000 {
                        let target = String::from_utf8_lossy(&data).into_owned();
                        let mut h = self.header(tar::EntryType::Symlink, 0o777, 0);
                        self.tar.append_link(&mut h, &tar_path, target)
                    } else {
                        let mode = if entry.mode == 0o100755 { 0o755 } else { 0o644 };
                        let mut h = self.header(tar::EntryType::Regular, mode, data.len() as u64);
                        self.tar.append_data(&mut h, &tar_path, data.as_slice())
                    };
                    result.map_err(|e| ArchiveError::Internal(format!("tarball: {e}")))?;
                }
                other => {
                    return Err(ArchiveError::BadObject(format!(
                        "{git_path}: unknown tree entry mode {other:o}"
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Map(HashMap<[u8; 20], (Kind, Vec<u8>)>);

    impl Map {
        fn put(&mut self, kind: Kind, data: Vec<u8>) -> [u8; 20] {
            let id = object_id(kind, &data);
            self.0.insert(id, (kind, data));
            id
        }
    }

    impl ObjectSource for Map {
        fn read(&self, id: &[u8; 20]) -> Result<(Kind, Vec<u8>), ArchiveError> {
            self.0
                .get(id)
                .cloned()
                .ok_or_else(|| ArchiveError::BadObject(format!("missing {}", hex::encode(id))))
        }
    }

    fn tree_of(entries: &[(&str, &[u8], [u8; 20])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (mode, name, id) in entries {
            out.extend_from_slice(mode.as_bytes());
            out.push(b' ');
            out.extend_from_slice(name);
            out.push(0);
            out.extend_from_slice(id);
        }
        out
    }

    const LIMITS: TreeLimits = TreeLimits {
        max_objects: 1000,
        max_bytes: 1 << 20,
    };

    #[test]
    fn walks_trees_blobs_links_and_submodules() {
        let mut m = Map::default();
        let a = m.put(Kind::Blob, b"alpha\n".to_vec());
        let link = m.put(Kind::Blob, b"a.txt".to_vec());
        let sub = [7u8; 20];
        let inner = m.put(Kind::Tree, tree_of(&[("100755", b"run.sh", a)]));
        let root = m.put(
            Kind::Tree,
            tree_of(&[
                ("100644", b"a.txt", a),
                ("120000", b"l", link),
                ("40000", b"bin", inner),
                ("160000", b"vendor", sub),
            ]),
        );
        let out = archive_tree(&m, root, "demo-t", LIMITS).unwrap();
        // commit + root + inner + two distinct blobs
        assert_eq!(out.pack.objects, 5);
        assert_eq!(out.files, 3);
        assert_eq!(
            out.submodules,
            vec![Submodule {
                path: "vendor".into(),
                commit: hex::encode(sub)
            }]
        );
        assert_eq!(
            out.commit,
            hex::encode(object_id(Kind::Commit, &archive_commit(&hex::encode(root))))
        );
        let tar = flate2::read::GzDecoder::new(out.tarball.as_slice());
        let mut archive = tar::Archive::new(tar);
        let mut seen = Vec::new();
        for e in archive.entries().unwrap() {
            let e = e.unwrap();
            seen.push((
                e.path().unwrap().display().to_string(),
                e.header().mode().unwrap(),
                e.header().mtime().unwrap(),
            ));
        }
        assert_eq!(
            seen,
            vec![
                ("demo-t/".into(), 0o755, 0),
                ("demo-t/a.txt".into(), 0o644, 0),
                ("demo-t/l".into(), 0o777, 0),
                ("demo-t/bin/".into(), 0o755, 0),
                ("demo-t/bin/run.sh".into(), 0o755, 0),
                ("demo-t/vendor/".into(), 0o755, 0),
            ]
        );
        // Reproducible.
        let again = archive_tree(&m, root, "demo-t", LIMITS).unwrap();
        assert_eq!(again.tarball, out.tarball);
        assert_eq!(again.pack.pack, out.pack.pack);
    }

    #[test]
    fn refuses_unsafe_names() {
        for name in [&b".."[..], b".git", b".GIT", b"a/b", b"", b"."] {
            let mut m = Map::default();
            let a = m.put(Kind::Blob, b"x".to_vec());
            let root = m.put(Kind::Tree, tree_of(&[("100644", name, a)]));
            let err = archive_tree(&m, root, "p", LIMITS).unwrap_err();
            assert!(
                matches!(err, ArchiveError::UnsafePath(_)),
                "{name:?}: {err}"
            );
        }
    }

    #[test]
    fn limits_and_lies_are_refused() {
        let mut m = Map::default();
        let big = m.put(Kind::Blob, vec![b'x'; 2048]);
        let root = m.put(Kind::Tree, tree_of(&[("100644", b"big", big)]));
        let small = TreeLimits {
            max_objects: 10,
            max_bytes: 1024,
        };
        assert!(matches!(
            archive_tree(&m, root, "p", small).unwrap_err(),
            ArchiveError::TooLarge(1024)
        ));
        let few = TreeLimits {
            max_objects: 1,
            max_bytes: 1 << 20,
        };
        assert!(matches!(
            archive_tree(&m, root, "p", few).unwrap_err(),
            ArchiveError::TooManyObjects(1)
        ));
        // An object whose content does not hash to the id it is stored under.
        let mut liar = Map::default();
        let real = liar.put(Kind::Blob, b"real".to_vec());
        liar.0.insert(real, (Kind::Blob, b"forged".to_vec()));
        let root = liar.put(Kind::Tree, tree_of(&[("100644", b"f", real)]));
        assert!(matches!(
            archive_tree(&liar, root, "p", LIMITS).unwrap_err(),
            ArchiveError::BadObject(_)
        ));
    }
}
