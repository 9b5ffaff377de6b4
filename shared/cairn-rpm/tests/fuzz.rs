//! Property tests on hostile input: mutated packages (byte flips, truncations,
//! overwritten words, random index entries) must make `inspect_rpm` return
//! `Ok` or `Err`, never panic, and whatever it accepts must render to
//! well-formed XML.
//!
//! The seeds are the tiny packages in `fuzz/corpus/` (written by
//! `seed_corpus_is_current`; see `fuzz/README.md` for longer runs) plus any other
//! `.rpm` dropped there, e.g. a reproducer from a long run.

use cairn_rpm::testutil::{HeaderBuilder, RawEntry, RpmBuilder, Value, tag};
use cairn_rpm::{RpmInfo, filelists_document, inspect_rpm, other_document, primary_document};
use proptest::prelude::*;
use proptest::sample::Index;
use std::path::PathBuf;
use std::sync::LazyLock;

fn corpus_dir() -> PathBuf {
    // Where `cargo test` runs it from (it sets the variable at run time too), not
    // where it was compiled: a test binary built in another checkout sharing the
    // target directory stays fresh for cargo and must still find this corpus.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("fuzz/corpus")
}

/// A package using the older encodings: OLDFILENAMES, pre-4.12 weak
/// dependencies, a "missing OK" require, several libc.so.6 requires.
fn legacy_seed() -> RpmBuilder {
    let mut rpm = RpmBuilder::source("legacy");
    rpm.header = rpm
        .header
        .string(tag::SOURCERPM, "legacy-1.0-1.src.rpm")
        .strings(tag::OLDFILENAMES, &["/usr/bin/legacy", "/etc/legacy.conf"])
        .tag(tag::FILEMODES, Value::Int16(vec![0o100_755, 0o100_644]))
        .int32(tag::FILEFLAGS, &[0, 1])
        .strings(
            tag::REQUIRENAME,
            &[
                "libc.so.6()(64bit)",
                "libc.so.6(GLIBC_2.4)(64bit)",
                "weak-old",
                "/etc/legacy.conf",
            ],
        )
        .int32(tag::REQUIREFLAGS, &[0, 0, 1 << 19, 0])
        .strings(tag::REQUIREVERSION, &["", "", "", ""])
        // OLDSUGGESTS{NAME,VERSION,FLAGS}: one "strong" (a recommend).
        .strings(1156, &["sugg", "rec"])
        .strings(1157, &["", "1.0"])
        .int32(1158, &[0, (1 << 27) | 0x0c]);
    rpm.lead = RpmBuilder::lead("legacy");
    rpm
}

/// The named seeds, as the builder makes them today.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("minimal.rpm", RpmBuilder::minimal("seed").build()),
        ("rich.rpm", RpmBuilder::rich("seed").build()),
        ("source.src.rpm", RpmBuilder::source("seed").build()),
        ("legacy.rpm", legacy_seed().build()),
    ]
}

/// Everything in the corpus directory, plus the builder's seeds (so the
/// property tests still have seeds if the directory is missing).
static SEEDS: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    let mut all: Vec<Vec<u8>> = seeds().into_iter().map(|(_, bytes)| bytes).collect();
    if let Ok(dir) = std::fs::read_dir(corpus_dir()) {
        let mut paths: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            if path.extension().is_some_and(|e| e == "rpm") {
                all.push(std::fs::read(&path).expect("read corpus file"));
            }
        }
    }
    all
});

/// Renders everything and checks it parses: accepted input must never yield
/// metadata a client chokes on.
fn assert_renders(info: &RpmInfo, input_len: usize) {
    assert_eq!(info.digests.size, input_len as u64);
    assert!(info.header_range.0 < info.header_range.1);
    assert!(info.header_range.1 <= input_len as u64);
    let primary = primary_document(1, &[&info.primary_xml("Packages/x.rpm", 1)]);
    let filelists = filelists_document(1, &[&info.filelists_xml()]);
    let other = other_document(1, &[&info.other_xml()]);
    for doc in [primary, filelists, other] {
        if let Err(e) = roxmltree::Document::parse(&doc) {
            panic!("rendered XML is not well-formed: {e}\n{doc}");
        }
    }
}

#[test]
fn seed_corpus_is_current() {
    let dir = corpus_dir();
    let write = std::env::var_os("CAIRN_RPM_WRITE_CORPUS").is_some();
    for (name, bytes) in seeds() {
        assert!(bytes.len() < 4096, "{name} should stay tiny");
        let info = inspect_rpm(&bytes[..]).unwrap_or_else(|e| panic!("seed {name} invalid: {e}"));
        assert_renders(&info, bytes.len());
        let path = dir.join(name);
        if write {
            std::fs::create_dir_all(&dir).expect("create corpus dir");
            std::fs::write(&path, &bytes).expect("write seed");
            continue;
        }
        let on_disk = std::fs::read(&path).unwrap_or_default();
        assert!(
            on_disk == bytes,
            "{} is missing or stale; regenerate the seeds with \
             `CAIRN_RPM_WRITE_CORPUS=1 cargo test -p cairn-rpm --test fuzz seed_corpus_is_current`",
            path.display()
        );
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: Index, xor: u8 },
    Truncate { at: Index },
    SetWord { at: Index, value: u32 },
    Insert { at: Index, bytes: Vec<u8> },
    Remove { at: Index, len: usize },
}

fn interesting_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(1),
        Just(0x7fff_ffff),
        Just(u32::MAX),
        Just(cairn_rpm::MAX_INDEX_ENTRIES + 1),
        Just(cairn_rpm::MAX_DATA_STORE),
        0u32..1024,
        any::<u32>(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), 1u8..=255).prop_map(|(at, xor)| Mutation::Flip { at, xor }),
        1 => any::<Index>().prop_map(|at| Mutation::Truncate { at }),
        3 => (any::<Index>(), interesting_u32()).prop_map(|(at, value)| Mutation::SetWord { at, value }),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        1 => (any::<Index>(), 1usize..32).prop_map(|(at, len)| Mutation::Remove { at, len }),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match m {
        Mutation::Flip { at, xor } => {
            let i = at.index(bytes.len());
            bytes[i] ^= xor;
        }
        Mutation::Truncate { at } => bytes.truncate(at.index(bytes.len())),
        Mutation::SetWord { at, value } => {
            // Word-aligned within the headers hits counts, offsets and types.
            let i = at.index(bytes.len()) & !3;
            let end = (i + 4).min(bytes.len());
            bytes[i..end].copy_from_slice(&value.to_be_bytes()[..end - i]);
        }
        Mutation::Insert { at, bytes: new } => {
            let i = at.index(bytes.len());
            bytes.splice(i..i, new.iter().copied());
        }
        Mutation::Remove { at, len } => {
            let i = at.index(bytes.len());
            let end = (i + len).min(bytes.len());
            bytes.drain(i..end);
        }
    }
}

/// Tags Cairn reads, so that a bad entry is not only validated but also used.
const READ_TAGS: &[u32] = &[
    270, 271, 1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1009, 1011, 1014, 1015, 1016, 1020,
    1022, 1027, 1030, 1037, 1044, 1046, 1047, 1048, 1049, 1050, 1053, 1054, 1055, 1080, 1081, 1082,
    1090, 1106, 1112, 1113, 1114, 1115, 1116, 1117, 1118, 1156, 1157, 1158, 1159, 1160, 1161, 5009,
    5046, 5047, 5048, 5049, 5050, 5051, 5052, 5053, 5054, 5055, 5056, 5057,
];

/// Where a random entry points: anywhere, or a few bytes from the end of the
/// data store, where off-by-one mistakes live.
#[derive(Debug, Clone)]
enum Offset {
    Absolute(u32),
    FromEnd(u32),
}

/// How many elements: any number, or about as many as fit before the end.
#[derive(Debug, Clone)]
enum Count {
    Absolute(u32),
    Fit(i8),
}

#[derive(Debug, Clone)]
struct EntrySpec {
    tag: u32,
    ty: u32,
    offset: Offset,
    count: Count,
}

impl EntrySpec {
    fn resolve(&self, store_len: u32) -> RawEntry {
        let offset = match self.offset {
            Offset::Absolute(o) => o,
            Offset::FromEnd(back) => store_len.saturating_sub(back),
        };
        let count = match self.count {
            Count::Absolute(c) => c,
            Count::Fit(delta) => {
                let width = match self.ty {
                    3 => 2,
                    4 => 4,
                    5 => 8,
                    _ => 1,
                };
                let fit = store_len.saturating_sub(offset) / width;
                fit.saturating_add_signed(i32::from(delta))
            }
        };
        RawEntry {
            tag: self.tag,
            ty: self.ty,
            offset,
            count,
        }
    }
}

fn entry_spec() -> impl Strategy<Value = EntrySpec> {
    let tag = prop_oneof![
        3 => prop::sample::select(READ_TAGS),
        1 => 1000u32..1200,
        1 => any::<u32>(),
    ];
    // Mostly plausible entries: one wild entry already sinks the header, and
    // the bugs worth finding are in entries that pass validation.
    let ty = prop_oneof![6 => 1u32..=5, 4 => 6u32..10, 1 => any::<u32>()];
    let offset = prop_oneof![
        2 => (0u32..256).prop_map(Offset::Absolute),
        3 => (0u32..12).prop_map(Offset::FromEnd),
        1 => any::<u32>().prop_map(Offset::Absolute),
    ];
    let count = prop_oneof![
        2 => (0u32..64).prop_map(Count::Absolute),
        3 => (-1i8..=1).prop_map(Count::Fit),
        1 => any::<u32>().prop_map(Count::Absolute),
    ];
    (tag, ty, offset, count).prop_map(|(tag, ty, offset, count)| EntrySpec {
        tag,
        ty,
        offset,
        count,
    })
}

/// 512 cases per property unless `PROPTEST_CASES` says otherwise.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mutated_seeds_never_panic(
        seed in any::<Index>(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let mut bytes = seed.get(&SEEDS).clone();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        if let Ok(info) = inspect_rpm(&bytes[..]) {
            assert_renders(&info, bytes.len());
        }
    }

    #[test]
    fn random_index_entries_never_panic(
        seed in 0usize..3,
        in_signature in any::<bool>(),
        entries in prop::collection::vec(entry_spec(), 1..5),
        store in prop::collection::vec(any::<u8>(), 0..300),
        mutations in prop::collection::vec(mutation(), 0..3),
    ) {
        let mut rpm = match seed {
            0 => RpmBuilder::minimal("fuzz"),
            1 => RpmBuilder::rich("fuzz"),
            _ => legacy_seed(),
        };
        let target: &mut HeaderBuilder = if in_signature {
            &mut rpm.signature
        } else {
            &mut rpm.header
        };
        let mut header = std::mem::take(target).extra_store(&store);
        let store_len = header.store_len();
        for e in &entries {
            header = header.raw_entry(e.resolve(store_len));
        }
        *target = header;
        let mut bytes = rpm.build();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        if let Ok(info) = inspect_rpm(&bytes[..]) {
            assert_renders(&info, bytes.len());
        }
    }

    #[test]
    fn random_strings_render_to_well_formed_xml(
        summary in prop::collection::vec(any::<u8>(), 0..40),
        name in "[ -~]{1,20}",
        changelog in any::<String>(),
    ) {
        let mut rpm = RpmBuilder::rich("fuzz");
        rpm.header.set(tag::SUMMARY, Value::RawStr(summary.into_iter().filter(|&b| b != 0).collect()));
        rpm.header.set(tag::NAME, Value::Str(name));
        rpm.header.set(tag::CHANGELOGTEXT, Value::StrArray(vec![changelog.replace('\0', ""), "x".into()]));
        let bytes = rpm.build();
        let info = inspect_rpm(&bytes[..]).expect("valid apart from the strings");
        assert_renders(&info, bytes.len());
    }
}
