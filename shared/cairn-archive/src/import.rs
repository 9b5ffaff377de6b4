//! A tree from a `.tar.gz` a build step made (the workspace folder an adjust step
//! changed): its git objects, built here from the tarball's entries, so the tree is
//! archived exactly like a fetched one ([`crate::tree::archive_tree`]).
//!
//! The tarball comes from a build's job, so it is as untrusted as an origin: paths
//! are checked component by component like tree entries (`..`, `.git`, absolute
//! paths refused), a path given twice, hard links and device files are refused, and
//! the bytes read are bounded while reading.

use crate::ArchiveError;
use crate::pack::{Kind, object_id};
use crate::tree::{MAX_DEPTH, ObjectSource, TreeLimits, check_name};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;

/// Objects held in memory, by id.
#[derive(Debug, Default)]
pub struct MapSource(HashMap<[u8; 20], (Kind, Vec<u8>)>);

impl MapSource {
    fn add(&mut self, kind: Kind, data: Vec<u8>) -> [u8; 20] {
        let id = object_id(kind, &data);
        self.0.entry(id).or_insert((kind, data));
        id
    }
}

impl ObjectSource for MapSource {
    fn read(&self, id: &[u8; 20]) -> Result<(Kind, Vec<u8>), ArchiveError> {
        self.0
            .get(id)
            .cloned()
            .ok_or_else(|| ArchiveError::Internal(format!("object {} missing", hex::encode(id))))
    }
}

/// A folder being read: its entries by name.
#[derive(Debug, Default)]
struct Dir(BTreeMap<Vec<u8>, Node>);

#[derive(Debug)]
enum Node {
    Dir(Dir),
    /// Git mode and blob id.
    File(u32, [u8; 20]),
}

const UNSAFE: &str = "an unsafe path (`.`, `..`, `.git`, a backslash)";

/// Most bytes a tarball may unpack to, headers and all: its files are held in
/// memory (then packed and re-tarred) by a worker of 2 GB, whatever the archive's
/// content limit for fetched trees, whose objects stay on disk.
pub const MAX_UNPACKED_BYTES: u64 = 256 << 20;

/// What headers (long names, PAX records) may add to the content limit.
const HEADER_ROOM: u64 = 16 << 20;

/// A reader that fails once more than `cap` bytes came through it.
struct Capped<R> {
    inner: R,
    read: u64,
    cap: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.cap {
            return Err(std::io::Error::other(format!(
                "it unpacks to more than {} bytes",
                self.cap
            )));
        }
        Ok(n)
    }
}

fn refused(path: &str, why: &str) -> ArchiveError {
    ArchiveError::Invalid(format!("the tarball's {path}: {why}"))
}

/// The tree of the `.tar.gz` `gz`, and its objects. Folders that hold no file are
/// left out (git keeps none); an executable file (the owner's `x` bit) is `100755`,
/// a symbolic link `120000` with its target as content.
pub fn tree_of_tarball(
    gz: &[u8],
    limits: TreeLimits,
) -> Result<([u8; 20], MapSource), ArchiveError> {
    let mut archive = tar::Archive::new(Capped {
        inner: flate2::read::GzDecoder::new(gz),
        read: 0,
        cap: limits
            .max_bytes
            .saturating_add(HEADER_ROOM)
            .min(MAX_UNPACKED_BYTES),
    });
    let mut source = MapSource::default();
    let mut root = Dir::default();
    let (mut objects, mut bytes) = (0u64, 0u64);
    let unreadable = |e: std::io::Error| ArchiveError::Invalid(format!("not a .tar.gz: {e}"));
    for entry in archive.entries().map_err(unreadable)? {
        let mut entry = entry.map_err(unreadable)?;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        if raw.starts_with(b"/") {
            return Err(refused(&shown, "an absolute path"));
        }
        let mut parts: Vec<&[u8]> = raw
            .split(|&b| b == b'/')
            .filter(|p| !p.is_empty() && *p != b".")
            .collect();
        if parts.len() > MAX_DEPTH {
            return Err(refused(
                &shown.chars().take(200).collect::<String>(),
                &format!("nested deeper than {MAX_DEPTH} folders"),
            ));
        }
        let kind = entry.header().entry_type();
        let node = match kind {
            tar::EntryType::Directory => None,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.size();
                bytes = bytes.saturating_add(size);
                if bytes > limits.max_bytes {
                    return Err(ArchiveError::Invalid(format!(
                        "the tarball holds more than {} bytes",
                        limits.max_bytes
                    )));
                }
                let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(1 << 20));
                (&mut entry)
                    .take(size)
                    .read_to_end(&mut data)
                    .map_err(unreadable)?;
                // Executable for git: the owner's x bit, as `git add` reads it.
                let exec = entry.header().mode().map_err(unreadable)? & 0o100 != 0;
                let mode = if exec { 0o100755 } else { 0o100644 };
                Some(Node::File(mode, source.add(Kind::Blob, data)))
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| refused(&shown, "a symbolic link without a target"))?
                    .into_owned();
                Some(Node::File(0o120000, source.add(Kind::Blob, target)))
            }
            tar::EntryType::Link => return Err(refused(&shown, "a hard link (not archived)")),
            other => {
                return Err(refused(
                    &shown,
                    &format!("a {other:?} entry: only files, folders and symbolic links"),
                ));
            }
        };
        objects += 1;
        if objects > limits.max_objects {
            return Err(ArchiveError::Invalid(format!(
                "the tarball holds more than {} entries",
                limits.max_objects
            )));
        }
        let Some(last) = parts.pop() else {
            if node.is_some() {
                return Err(refused(&shown, "a file without a name"));
            }
            continue;
        };
        let mut dir = &mut root;
        let mut seen = String::new();
        for part in parts {
            let name = check_name(part, &seen).map_err(|_| refused(&shown, UNSAFE))?;
            seen = format!("{seen}{name}/");
            let next = dir
                .0
                .entry(part.to_vec())
                .or_insert_with(|| Node::Dir(Dir::default()));
            dir = match next {
                Node::Dir(d) => d,
                Node::File(..) => return Err(refused(&shown, "under a path that is a file")),
            };
        }
        check_name(last, &seen).map_err(|_| refused(&shown, UNSAFE))?;
        match (dir.0.get_mut(last), node) {
            (None, Some(node)) => {
                dir.0.insert(last.to_vec(), node);
            }
            (None, None) => {
                dir.0.insert(last.to_vec(), Node::Dir(Dir::default()));
            }
            (Some(Node::Dir(_)), None) => {}
            (Some(_), _) => return Err(refused(&shown, "given twice")),
        }
    }
    let tree = write_tree(&root, &mut source)?
        .ok_or_else(|| ArchiveError::Invalid("the tarball holds no file".into()))?;
    Ok((tree, source))
}

/// Writes `dir`'s tree object (and its folders'); `None` for a folder without files.
fn write_tree(dir: &Dir, source: &mut MapSource) -> Result<Option<[u8; 20]>, ArchiveError> {
    let mut entries: Vec<(Vec<u8>, u32, [u8; 20])> = Vec::new();
    for (name, node) in &dir.0 {
        match node {
            Node::File(mode, id) => entries.push((name.clone(), *mode, *id)),
            Node::Dir(sub) => {
                if let Some(id) = write_tree(sub, source)? {
                    entries.push((name.clone(), 0o40000, id));
                }
            }
        }
    }
    if entries.is_empty() {
        return Ok(None);
    }
    // Git orders a folder's entry as if its name ended in `/`.
    let key = |(name, mode, _): &(Vec<u8>, u32, [u8; 20])| {
        let mut k = name.clone();
        if *mode == 0o40000 {
            k.push(b'/');
        }
        k
    };
    entries.sort_by_key(key);
    let mut data = Vec::new();
    for (name, mode, id) in &entries {
        data.extend_from_slice(format!("{mode:o} ").as_bytes());
        data.extend_from_slice(name);
        data.push(0);
        data.extend_from_slice(id);
    }
    Ok(Some(source.add(Kind::Tree, data)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const LIMITS: TreeLimits = TreeLimits {
        max_objects: 1000,
        max_bytes: 1 << 20,
    };

    /// A `.tar.gz` of `entries`: (path, type, mode, content or link target).
    fn tarball(entries: &[(&str, tar::EntryType, u32, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (path, kind, mode, content) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(*mode);
            if *kind == tar::EntryType::Symlink || *kind == tar::EntryType::Link {
                h.set_size(0);
                builder.append_link(&mut h, path, content).unwrap();
            } else {
                h.set_size(content.len() as u64);
                if !path.contains("..") && path.len() > 99 {
                    builder
                        .append_data(&mut h, path, content.as_bytes())
                        .unwrap();
                    continue;
                }
                // `append_data` refuses `..`: write the name into the header itself.
                let name = h.as_old_mut();
                name.name[..path.len()].copy_from_slice(path.as_bytes());
                h.set_cksum();
                builder.append(&h, content.as_bytes()).unwrap();
            }
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn the_tree_is_the_one_git_writes_for_the_same_files() {
        use tar::EntryType::{Directory, Regular, Symlink};
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // Names whose order differs between plain bytes and git's folder rule.
        let files = [
            ("a.b", Regular, 0o644, "dot\n"),
            ("a/x", Regular, 0o644, "in a\n"),
            ("a-b/y", Regular, 0o755, "#!/bin/sh\n"),
            ("run.sh", Regular, 0o755, "#!/bin/sh\necho hi\n"),
            ("link", Symlink, 0o777, "a/x"),
            ("empty/", Directory, 0o755, ""),
            ("./lead/z", Regular, 0o600, "z\n"),
            ("others-x", Regular, 0o645, "not executable for git\n"),
            ("owner-x", Regular, 0o744, "executable for git\n"),
        ];
        let (tree, source) = tree_of_tarball(&tarball(&files), LIMITS).unwrap();
        // The same files through git itself.
        for (path, kind, mode, content) in files {
            let full = root.join(path);
            match kind {
                Directory => std::fs::create_dir_all(&full).unwrap(),
                Symlink => std::os::unix::fs::symlink(content, &full).unwrap(),
                _ => {
                    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
                    std::fs::write(&full, content).unwrap();
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&full, std::fs::Permissions::from_mode(mode)).unwrap();
                }
            }
        }
        let git = |args: &[&str]| {
            let out = Command::new("git")
                .args(["-c", "core.fileMode=true"])
                .args(args)
                .current_dir(root)
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            String::from_utf8(out.stdout).unwrap()
        };
        git(&["init", "-q"]);
        git(&["add", "-A"]);
        assert_eq!(hex::encode(tree), git(&["write-tree"]).trim());
        // Every object the tree names is there, and the archive walk accepts it.
        let archived = crate::tree::archive_tree(&source, tree, "p", LIMITS).unwrap();
        assert_eq!(archived.files, 8);
    }

    #[test]
    fn unsafe_or_ambiguous_entries_are_refused_with_their_path() {
        use tar::EntryType::{Block, Directory, Link, Regular};
        let refusal = |entries: &[(&str, tar::EntryType, u32, &str)]| {
            tree_of_tarball(&tarball(entries), LIMITS)
                .unwrap_err()
                .to_string()
        };
        assert!(refusal(&[("../up", Regular, 0o644, "x")]).contains(".."));
        assert!(refusal(&[("src/.git/config", Regular, 0o644, "x")]).contains(".git"));
        assert!(refusal(&[("src/.GIT/hooks/x", Regular, 0o644, "x")]).contains(".GIT"));
        assert!(refusal(&[("/etc/passwd", Regular, 0o644, "x")]).contains("absolute"));
        assert!(
            refusal(&[("a", Regular, 0o644, "1"), ("a", Regular, 0o644, "2")])
                .contains("given twice")
        );
        assert!(
            refusal(&[("a", Regular, 0o644, "1"), ("a/b", Regular, 0o644, "2")])
                .contains("is a file")
        );
        assert!(
            refusal(&[("a", Regular, 0o644, "1"), ("b", Link, 0o644, "a")]).contains("hard link")
        );
        assert!(refusal(&[("dev", Block, 0o644, "")]).contains("only files"));
        assert!(refusal(&[("only/", Directory, 0o755, "")]).contains("no file"));
        assert!(
            tree_of_tarball(b"not a tarball", LIMITS)
                .unwrap_err()
                .to_string()
                .contains("not a .tar.gz")
        );
        let deep = "a/".repeat(MAX_DEPTH + 1) + "f";
        assert!(refusal(&[(&deep, Regular, 0o644, "x")]).contains("nested deeper"));
        // A long name is read whole by the tar reader: the unpacked stream is capped.
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::GNULongName);
        h.set_size(20 << 20);
        h.set_cksum();
        let mut t = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        t.append(&h, std::io::repeat(b'a').take(20 << 20)).unwrap();
        let gz = t.into_inner().unwrap().finish().unwrap();
        assert!(gz.len() < 1 << 20, "it compresses well");
        let err = tree_of_tarball(&gz, LIMITS).unwrap_err().to_string();
        assert!(err.contains("unpacks to more than"), "{err}");
        let big = "x".repeat(600_000);
        let small = TreeLimits {
            max_objects: 2,
            max_bytes: 1 << 20,
        };
        assert!(
            refusal(&[("a", Regular, 0o644, &big), ("b", Regular, 0o644, &big)])
                .contains("more than 1048576 bytes")
        );
        let many = [
            ("a", Regular, 0o644, "1"),
            ("b", Regular, 0o644, "2"),
            ("c", Regular, 0o644, "3"),
        ];
        assert!(
            tree_of_tarball(&tarball(&many), small)
                .unwrap_err()
                .to_string()
                .contains("more than 2 entries")
        );
    }
}
