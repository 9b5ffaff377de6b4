//! Property-based fuzzing on stable Rust: mutated chart archives and provenance files
//! must be refused with an error, never a panic, a hang or an absurd allocation.
//!
//! Seeds are the small charts in `fuzz/corpus/`, made by [`seeds`] (the test
//! `corpus_is_generated` keeps the files in step; `CAIRN_WRITE_CORPUS=1` rewrites them).
//! Mutations act at three depths so that they reach every layer: raw bytes of the
//! `.tgz` (gzip), bytes of the decompressed tar (headers, paths, sizes), and bytes of
//! Chart.yaml (the YAML reader and Helm's field rules). See `fuzz/README.md` for
//! longer runs.

use cairn_deb::Digests;
use cairn_helm::{
    ChartError, check_provenance, index_entry, inspect_chart, provenance_body, render_index,
};
use proptest::prelude::*;
use std::io::{Read, Write};
use std::path::PathBuf;

const MINIMAL_CHART_YAML: &str = "apiVersion: v2\nname: mini\nversion: 0.1.0\n";

const RICH_CHART_YAML: &str = r#"apiVersion: v2
name: rich
version: 1.2.3-rc.1
appVersion: 1.10
description: |
  Two lines,
  of text.
keywords: [yes, "010", a]
maintainers:
  - name: Jane
    email: jane@example.com
annotations:
  category: Database
  answer: 42
dependencies:
  - name: sub
    version: ~0.1.0
    repository: file://./charts/sub
    alias: sub-alias
    import-values: [{child: a, parent: b}, c]
anchors: &a [1, 2]
reuse: *a
"#;

const V1_CHART_YAML: &str = "name: legacy\nversion: 2.0.0\nengine: gotpl\n\
tillerVersion: \">2.0.0\"\n";

type Files = &'static [(&'static str, &'static str)];

/// The seed charts: name, file name, and their files in archive order.
fn seeds() -> Vec<(&'static str, Files)> {
    vec![
        (
            "mini-0.1.0.tgz",
            &[
                ("mini/Chart.yaml", MINIMAL_CHART_YAML),
                ("mini/values.yaml", "replicaCount: 1\n"),
            ],
        ),
        (
            "rich-1.2.3-rc.1.tgz",
            &[
                ("rich/Chart.yaml", RICH_CHART_YAML),
                ("rich/values.yaml", "sub:\n  enabled: true\n"),
                (
                    "rich/templates/deployment.yaml",
                    "kind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n",
                ),
                (
                    "rich/charts/sub/Chart.yaml",
                    "apiVersion: v2\nname: sub\nversion: 0.1.0\n",
                ),
                ("rich/.helmignore", "*.swp\n"),
            ],
        ),
        (
            "legacy-2.0.0.tgz",
            &[
                ("legacy/Chart.yaml", V1_CHART_YAML),
                (
                    "legacy/requirements.yaml",
                    "dependencies:\n- name: x\n  version: 1.0.0\n",
                ),
                ("legacy/templates/NOTES.txt", "hello\n"),
            ],
        ),
    ]
}

/// A deterministic tar (fixed times, owners and modes), as the corpus holds it.
fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, text) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path, text.as_bytes())
            .expect("in-memory tar");
    }
    builder.into_inner().expect("in-memory tar")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    e.write_all(data).expect("in memory");
    e.finish().expect("in memory")
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("corpus files are valid gzip");
    out
}

fn corpus_dir() -> PathBuf {
    // Where `cargo test` runs it from (it sets the variable at run time too), not
    // where it was compiled: a test binary built in another checkout sharing the
    // target directory stays fresh for cargo and must still find this corpus.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("fuzz/corpus")
}

/// The corpus files, read from disk: the fuzz runs start from what is checked in.
fn corpus() -> Vec<(&'static str, Vec<u8>)> {
    seeds()
        .into_iter()
        .map(|(name, _)| {
            let path = corpus_dir().join(name);
            let bytes = std::fs::read(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e}; run CAIRN_WRITE_CORPUS=1 cargo test -p cairn-helm --test fuzz_inspect corpus",
                    path.display()
                )
            });
            (name, bytes)
        })
        .collect()
}

#[test]
fn corpus_is_generated() {
    for (name, files) in seeds() {
        let tar = tar_of(files);
        let path = corpus_dir().join(name);
        if std::env::var_os("CAIRN_WRITE_CORPUS").is_some() {
            std::fs::create_dir_all(corpus_dir()).expect("corpus dir");
            std::fs::write(&path, gzip(&tar)).expect("write corpus");
        }
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; run with CAIRN_WRITE_CORPUS=1", path.display()));
        // Compare what the gzip holds: another deflate implementation may compress
        // the same tar to different bytes.
        assert!(
            gunzip(&bytes) == tar,
            "{name} is out of date; run with CAIRN_WRITE_CORPUS=1"
        );
        assert!(bytes.len() < 4096, "{name} is {} bytes", bytes.len());
        let info = inspect_chart(name, &bytes[..]).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(info.digests, Digests::of(&bytes));
    }
}

/// Everything a caller does with an accepted chart must work on it too.
fn exercise(name: &str, bytes: &[u8]) {
    match inspect_chart(name, bytes) {
        Ok(info) => {
            assert_eq!(info.digests, Digests::of(bytes), "digests cover the input");
            assert!(!info.name.is_empty() && !info.version.is_empty());
            let entry = index_entry(&info, name, time::OffsetDateTime::UNIX_EPOCH);
            let index = render_index(&[entry], time::OffsetDateTime::UNIX_EPOCH);
            assert!(index.starts_with("apiVersion: v1\n"));
            let body = provenance_body(&info, name);
            assert!(body.contains("\n...\nfiles:\n"));
        }
        Err(ChartError::Io(e)) => panic!("an in-memory input cannot fail to read: {e}"),
        Err(_) => {}
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, mask: u8 },
    Set { at: usize, byte: u8 },
    Truncate { at: usize },
    Insert { at: usize, bytes: Vec<u8> },
    Remove { at: usize, len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        (
            any::<usize>(),
            prop::sample::select(vec![
                0u8, b'/', b'.', b':', b'\n', b' ', b'-', b'[', b'&', b'*', 0xff
            ])
        )
            .prop_map(|(at, byte)| Mutation::Set { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), 1usize..64).prop_map(|(at, len)| Mutation::Remove { at, len }),
    ]
}

fn apply(data: &mut Vec<u8>, mutations: &[Mutation]) {
    for m in mutations {
        if data.is_empty() {
            return;
        }
        let len = data.len();
        match m {
            Mutation::Flip { at, mask } => data[at % len] ^= mask,
            Mutation::Set { at, byte } => data[at % len] = *byte,
            Mutation::Truncate { at } => data.truncate(at % len),
            Mutation::Insert { at, bytes } => {
                let at = at % (len + 1);
                data.splice(at..at, bytes.iter().copied());
            }
            Mutation::Remove { at, len: n } => {
                let at = at % len;
                data.drain(at..(at + n).min(len));
            }
        }
    }
}

fn seed_index() -> impl Strategy<Value = usize> {
    0..seeds().len()
}

/// 1024 cases per property (about a second in a debug build) unless `PROPTEST_CASES`
/// asks for more.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(1024);
    ProptestConfig::with_cases(cases)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mutated_archives_never_panic(
        seed in seed_index(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let (name, mut bytes) = corpus().swap_remove(seed);
        apply(&mut bytes, &mutations);
        exercise(name, &bytes);
    }

    #[test]
    fn mutated_tar_streams_never_panic(
        seed in seed_index(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let (name, bytes) = corpus().swap_remove(seed);
        let mut tar = gunzip(&bytes);
        apply(&mut tar, &mutations);
        exercise(name, &gzip(&tar));
    }

    #[test]
    fn mutated_chart_yaml_never_panics(
        seed in seed_index(),
        mutations in prop::collection::vec(mutation(), 1..8),
    ) {
        let (name, files) = seeds().swap_remove(seed);
        let mut yaml = files[0].1.as_bytes().to_vec();
        apply(&mut yaml, &mutations);
        let yaml = String::from_utf8_lossy(&yaml).into_owned();
        let mut owned: Vec<(&str, &str)> = files.to_vec();
        owned[0].1 = &yaml;
        exercise(name, &gzip(&tar_of(&owned)));
    }

    #[test]
    fn mutated_provenance_never_panics(
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let (name, bytes) = corpus().swap_remove(0);
        let info = inspect_chart(name, &bytes[..]).expect("seed is valid");
        let prov = format!(
            "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n{}-----BEGIN PGP SIGNATURE-----\n\nwsDcBAEBCgAQBQJrAWKL\n=na9D\n-----END PGP SIGNATURE-----",
            provenance_body(&info, name)
        );
        check_provenance(prov.as_bytes(), name, &info.digests.sha256).expect("unmutated is valid");
        let mut prov = prov.into_bytes();
        apply(&mut prov, &mutations);
        let _ = check_provenance(&prov, name, &info.digests.sha256);
    }
}
