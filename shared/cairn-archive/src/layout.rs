//! Where archive files live in the archive bucket, and the dumb-HTTP index files.
//!
//! A repository `name` is a bare repository under `git/{name}.git/` that git's
//! dumb HTTP client reads: `info/refs` (refs and peeled tags), `objects/info/packs`
//! (the packs), `HEAD`, and the packs themselves. Packs and tarballs are written
//! once (`If-None-Match`) and never change; the three index files are rewritten from
//! the catalog whenever a ref is added.

use crate::model::PublishedRef;

/// Key prefix of repository `name`.
pub fn repo_prefix(name: &str) -> String {
    format!("git/{name}.git")
}

/// Key of a pack file (`ext` = `pack` or `idx`).
pub fn pack_key(name: &str, stem: &str, ext: &str) -> String {
    format!("{}/objects/pack/{stem}.{ext}", repo_prefix(name))
}

/// Key prefix of the one-tag repository of an archived tree.
pub fn tree_repo_prefix(name: &str, tag: &str) -> String {
    format!("trees/{name}/{tag}.git")
}

/// Key of a pack file of a one-tag repository.
pub fn tree_pack_key(name: &str, tag: &str, stem: &str, ext: &str) -> String {
    format!("{}/objects/pack/{stem}.{ext}", tree_repo_prefix(name, tag))
}

/// Key of the tarball of `tag`.
pub fn tarball_key(name: &str, tag: &str) -> String {
    format!("tarballs/{name}/{tag}.tar.gz")
}

/// Key of `info/refs`.
pub fn info_refs_key(name: &str) -> String {
    format!("{}/info/refs", repo_prefix(name))
}

/// Key of `objects/info/packs`.
pub fn info_packs_key(name: &str) -> String {
    format!("{}/objects/info/packs", repo_prefix(name))
}

/// Key of `HEAD`.
pub fn head_key(name: &str) -> String {
    format!("{}/HEAD", repo_prefix(name))
}

/// `info/refs` as `git update-server-info` writes it: sorted by name, each
/// annotated tag followed by its peeled `^{}` line.
pub fn info_refs(refs: &[PublishedRef]) -> String {
    let mut refs: Vec<&PublishedRef> = refs.iter().collect();
    refs.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = String::new();
    for r in refs {
        out.push_str(&format!("{}\t{}\n", r.target, r.name));
        if let Some(peeled) = &r.peeled {
            out.push_str(&format!("{peeled}\t{}^{{}}\n", r.name));
        }
    }
    out
}

/// `objects/info/packs`: one `P <pack>` line per pack, then an empty line.
pub fn info_packs<'a>(stems: impl IntoIterator<Item = &'a str>) -> String {
    let mut stems: Vec<&str> = stems.into_iter().collect();
    stems.sort_unstable();
    let mut out = String::new();
    for stem in stems {
        out.push_str(&format!("P {stem}.pack\n"));
    }
    out.push('\n');
    out
}

/// `HEAD`: the newest branch if there is one (so a plain `git clone` checks it out),
/// else detached at the newest archive commit.
pub fn head(refs: &[PublishedRef]) -> String {
    let newest = |prefix: &str| {
        refs.iter()
            .filter(|r| r.name.starts_with(prefix))
            .max_by(|a, b| a.created_at.cmp(&b.created_at).then(a.name.cmp(&b.name)))
    };
    if let Some(branch) = newest("refs/heads/") {
        return format!("ref: {}\n", branch.name);
    }
    match newest("refs/tags/") {
        Some(tag) => format!("{}\n", tag.peeled.as_deref().unwrap_or(&tag.target)),
        None => "ref: refs/heads/main\n".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: &str, target: &str, peeled: Option<&str>, at: &str) -> PublishedRef {
        PublishedRef {
            name: name.into(),
            target: target.into(),
            peeled: peeled.map(Into::into),
            created_at: at.into(),
        }
    }

    #[test]
    fn index_files() {
        let refs = vec![
            r("refs/tags/v1", "aa", Some("bb"), "2"),
            r("refs/heads/main", "cc", None, "1"),
        ];
        assert_eq!(
            info_refs(&refs),
            "cc\trefs/heads/main\naa\trefs/tags/v1\nbb\trefs/tags/v1^{}\n"
        );
        assert_eq!(head(&refs), "ref: refs/heads/main\n");
        assert_eq!(head(&refs[..1]), "bb\n");
        assert_eq!(
            info_packs(["pack-b", "pack-a"]),
            "P pack-a.pack\nP pack-b.pack\n\n"
        );
        assert_eq!(
            pack_key("demo", "pack-a", "idx"),
            "git/demo.git/objects/pack/pack-a.idx"
        );
    }
}
