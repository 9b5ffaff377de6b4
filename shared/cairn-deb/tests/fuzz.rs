//! Property tests on hostile input: mutated and random `.deb` files must make
//! `inspect_deb` return `Ok` or `Err`, never panic, hang or allocate without bound,
//! and whatever it accepts must render to a `Packages` stanza that parses again.
//!
//! The seeds are the tiny packages in `fuzz/corpus/` (kept in step with [`SEEDS`] by
//! `seed_corpus_is_current`; see `fuzz/README.md` for longer runs) plus any other
//! `.deb` dropped there, e.g. a reproducer from a long run. Mutations act at three
//! depths so that they get past each layer's checksums: raw bytes of the package,
//! bytes of the decompressed `control.tar` (re-compressed), and bytes of the control
//! file (re-packed). The hostile cases at the end build structures random mutation
//! would rarely reach: absurd member sizes, decompression bombs, huge control files.

use cairn_deb::{
    Control, DebError, DebInfo, Digests, MAX_CONTROL_ARCHIVE, MAX_CONTROL_FILE, inspect_deb,
    packages_stanza,
};
use proptest::prelude::*;
use proptest::sample::Index;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::LazyLock;

/// How a member is compressed, as the suffix of its name says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    None,
    Gz,
    Xz,
    Zst,
}

impl Compression {
    fn suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gz => ".gz",
            Compression::Xz => ".xz",
            Compression::Zst => ".zst",
        }
    }

    fn from_member(name: &str) -> Option<Self> {
        let suffix = name
            .strip_prefix("control.tar")
            .or_else(|| name.strip_prefix("data.tar"))?;
        [Self::None, Self::Gz, Self::Xz, Self::Zst]
            .into_iter()
            .find(|c| c.suffix() == suffix)
    }

    fn compress(self, data: &[u8]) -> Vec<u8> {
        match self {
            Compression::None => data.to_vec(),
            Compression::Gz => cairn_deb::gzip(data),
            Compression::Xz => cairn_deb::xz(data),
            Compression::Zst => cairn_deb::zstd(data),
        }
    }

    fn decompress(self, data: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        match self {
            Compression::None => out.extend_from_slice(data),
            Compression::Gz => {
                flate2::read::GzDecoder::new(data)
                    .read_to_end(&mut out)
                    .ok()?;
            }
            Compression::Xz => {
                liblzma::read::XzDecoder::new(data)
                    .read_to_end(&mut out)
                    .ok()?;
            }
            Compression::Zst => {
                ruzstd::decoding::StreamingDecoder::new(data)
                    .ok()?
                    .read_to_end(&mut out)
                    .ok()?;
            }
        }
        Some(out)
    }
}

type Files = &'static [(&'static str, &'static str)];

/// A seed package before packing: what `dpkg-deb --build` would put in it.
struct Seed {
    file: &'static str,
    control: &'static str,
    /// Files of `control.tar` besides `./control`; a path ending in `/` is a directory.
    control_files: Files,
    control_compression: Compression,
    data_files: Files,
    data_compression: Compression,
    /// Members after `data.tar`, such as a `dpkg-sig` signature.
    trailer: Files,
}

const SEEDS: &[Seed] = &[
    // The layout tests/e2e/debs.py uploads.
    Seed {
        file: "minimal.deb",
        control: "Package: minimal\nVersion: 1.0\nArchitecture: all\n\
Maintainer: Cairn Fuzz <fuzz@cairn.invalid>\nDescription: minimal seed\n",
        control_files: &[],
        control_compression: Compression::Gz,
        data_files: &[("./usr/share/doc/minimal/copyright", "none\n")],
        data_compression: Compression::None,
        trailer: &[],
    },
    // Everything dpkg-deb writes: a `./` entry, maintainer scripts, md5sums,
    // multi-line fields; plus a dpkg-sig member after the data.
    Seed {
        file: "rich.deb",
        control: "Package: rich-seed\nSource: rich (2:1.2~rc1-3)\nVersion: 2:1.2~rc1-3+b1\n\
Architecture: amd64\nMaintainer: Cairn Fuzz <fuzz@cairn.invalid>\nInstalled-Size: 12\n\
Depends: libc6 (>= 2.34), minimal | other (<< 2)\nSection: utils\nPriority: optional\n\
Description: rich seed\n Several lines of text.\n .\n A second paragraph.\n",
        control_files: &[
            ("./", ""),
            (
                "./md5sums",
                "d41d8cd98f00b204e9800998ecf8427e  usr/bin/rich\n",
            ),
            ("./conffiles", "/etc/rich.conf\n"),
            ("./postinst", "#!/bin/sh\nset -e\nexit 0\n"),
        ],
        control_compression: Compression::Xz,
        data_files: &[
            ("./usr/", ""),
            ("./usr/bin/rich", ""),
            ("./etc/rich.conf", "key=value\n"),
        ],
        data_compression: Compression::Xz,
        trailer: &[("_gpgbuilder", "-----BEGIN PGP SIGNATURE-----\n")],
    },
    // zstd (apt >= 1.5, Ubuntu's default), CRLF line ends, a comment, lower-case
    // names, a tab continuation, and odd-sized members that need ar padding.
    Seed {
        file: "zstd.deb",
        control: "package: zst\r\nversion: 0.1-1\r\n# a comment\r\narchitecture: arm64\r\n\
description: zstd seed\r\n\tcontinued with a tab\r\n",
        control_files: &[("./triggers", "interest-noawait /usr/lib\n")],
        control_compression: Compression::Zst,
        data_files: &[("./usr/lib/zst/a", "a")],
        data_compression: Compression::Zst,
        trailer: &[],
    },
    // An uncompressed control.tar, as old dpkg-deb could write.
    Seed {
        file: "plain.deb",
        control: "Package: plain\nVersion: 3\nArchitecture: all\nDescription: plain seed\n",
        control_files: &[],
        control_compression: Compression::None,
        data_files: &[("./usr/share/plain", "plain\n")],
        data_compression: Compression::Gz,
        trailer: &[],
    },
];

impl Seed {
    fn control_tar(&self) -> Vec<u8> {
        self.control_tar_with(self.control.as_bytes())
    }

    fn control_tar_with(&self, control: &[u8]) -> Vec<u8> {
        let mut files: Vec<(&str, &[u8])> = Vec::new();
        let mut rest = self.control_files.iter().peekable();
        // `./` comes first, as dpkg-deb writes it.
        if let Some((dir, _)) = rest.next_if(|(p, _)| *p == "./") {
            files.push((dir, b""));
        }
        files.push(("./control", control));
        files.extend(rest.map(|(p, d)| (*p, d.as_bytes())));
        tar_of(&files)
    }

    fn members_with(&self, control_tar: &[u8]) -> Vec<(String, Vec<u8>)> {
        let data: Vec<(&str, &[u8])> = self
            .data_files
            .iter()
            .map(|(p, d)| (*p, d.as_bytes()))
            .collect();
        let mut members = vec![
            ("debian-binary".to_string(), b"2.0\n".to_vec()),
            (
                format!("control.tar{}", self.control_compression.suffix()),
                self.control_compression.compress(control_tar),
            ),
            (
                format!("data.tar{}", self.data_compression.suffix()),
                self.data_compression.compress(&tar_of(&data)),
            ),
        ];
        for (name, text) in self.trailer {
            members.push((name.to_string(), text.as_bytes().to_vec()));
        }
        members
    }

    fn build_with_control_tar(&self, control_tar: &[u8]) -> Vec<u8> {
        ar_of(&self.members_with(control_tar))
    }

    fn build(&self) -> Vec<u8> {
        self.build_with_control_tar(&self.control_tar())
    }
}

/// A deterministic tar (fixed times, owners and modes).
fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        if path.ends_with('/') {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
        } else {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(if path.contains("inst") { 0o755 } else { 0o644 });
        }
        builder
            .append_data(&mut header, path, *data)
            .expect("in-memory tar");
    }
    builder.into_inner().expect("in-memory tar")
}

/// The 60-byte header of an ar member, with the size field as given (cut or
/// padded with spaces to its ten bytes).
fn ar_header(name: &str, size: &str) -> Vec<u8> {
    let mut header = format!("{name:<16}{:<12}{:<6}{:<6}{:<8}", 0, 0, 0, 100644).into_bytes();
    assert_eq!(header.len(), 48, "{name:?}");
    let mut size = size.as_bytes().to_vec();
    size.resize(10, b' ');
    header.extend(size);
    header.extend(b"`\n");
    header
}

fn ar_of<N: AsRef<str>>(members: &[(N, Vec<u8>)]) -> Vec<u8> {
    let mut out = b"!<arch>\n".to_vec();
    for (name, data) in members {
        out.extend(ar_header(name.as_ref(), &data.len().to_string()));
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}

/// The members of an archive, decompressed; `None` unless it is well formed.
fn unpack(bytes: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let mut rest = bytes.strip_prefix(b"!<arch>\n")?;
    let mut members = Vec::new();
    while !rest.is_empty() {
        let header = rest.get(..60)?;
        let name = String::from_utf8_lossy(&header[..16])
            .trim_end()
            .to_string();
        let size: usize = std::str::from_utf8(&header[48..58])
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let data = rest.get(60..60 + size)?;
        let data = match Compression::from_member(&name) {
            Some(c) => c.decompress(data)?,
            None => data.to_vec(),
        };
        members.push((name, data));
        rest = rest.get(60 + size + size % 2..).unwrap_or_default();
    }
    Some(members)
}

fn corpus_dir() -> PathBuf {
    // Where `cargo test` runs it from (it sets the variable at run time too), not
    // where it was compiled: a test binary built in another checkout sharing the
    // target directory stays fresh for cargo and must still find this corpus.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("fuzz/corpus")
}

/// Everything in the corpus directory, plus the seeds as built today (so the
/// properties still have seeds if the directory is missing).
static CORPUS: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    let mut all: Vec<Vec<u8>> = SEEDS.iter().map(Seed::build).collect();
    if let Ok(dir) = std::fs::read_dir(corpus_dir()) {
        let mut paths: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            if path.extension().is_some_and(|e| e == "deb") {
                all.push(std::fs::read(&path).expect("read corpus file"));
            }
        }
    }
    all
});

#[test]
fn seed_corpus_is_current() {
    let dir = corpus_dir();
    let write = std::env::var_os("CAIRN_DEB_WRITE_CORPUS").is_some();
    for seed in SEEDS {
        let bytes = seed.build();
        let info = exercise(&bytes).unwrap_or_else(|e| panic!("seed {} invalid: {e}", seed.file));
        assert_eq!(info.digests.size, bytes.len() as u64);
        assert!(bytes.len() < 4096, "{} should stay tiny", seed.file);
        let path = dir.join(seed.file);
        if write {
            std::fs::create_dir_all(&dir).expect("create corpus dir");
            std::fs::write(&path, &bytes).expect("write seed");
            continue;
        }
        let on_disk = std::fs::read(&path).unwrap_or_default();
        // Compare what the members hold: a new compressor version may compress the
        // same tar to different bytes.
        assert!(
            unpack(&on_disk).is_some_and(|m| Some(m) == unpack(&bytes)),
            "{} is missing or stale; regenerate the seeds with \
             `CAIRN_DEB_WRITE_CORPUS=1 cargo test -p cairn-deb --test fuzz seed_corpus_is_current`",
            path.display()
        );
    }
}

/// Inspects `bytes` and checks everything a caller does with an accepted package.
fn exercise(bytes: &[u8]) -> Result<DebInfo, DebError> {
    let result = inspect_deb(bytes);
    match &result {
        Ok(info) => {
            assert_eq!(info.digests, Digests::of(bytes), "digests cover the input");
            info.control
                .validate_binary()
                .expect("accepted packages have valid control fields");
            let rendered = info.control.render();
            assert_eq!(
                Control::parse(&rendered).as_ref(),
                Ok(&info.control),
                "control renders losslessly:\n{rendered}"
            );
            let stanza = packages_stanza(&info.control, "pool/main/f/fuzz/f.deb", &info.digests);
            let parsed = Control::parse(&stanza)
                .unwrap_or_else(|e| panic!("stanza does not parse: {e}\n{stanza}"));
            assert_eq!(parsed.get("Package"), info.control.get("Package"));
            assert_eq!(parsed.get("SHA256"), Some(info.digests.sha256.as_str()));
        }
        Err(DebError::Io(e)) => panic!("an in-memory input cannot fail to read: {e}"),
        Err(_) => {}
    }
    result
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: Index, xor: u8 },
    Set { at: Index, byte: u8 },
    Truncate { at: Index },
    Insert { at: Index, bytes: Vec<u8> },
    Remove { at: Index, len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    // Bytes that mean something to ar headers (digits, spaces, "`\n"), tar headers
    // (NUL, digits, '/'), deb822 (':', ' ', '\n', '#') and UTF-8 (0x80, 0xff).
    let special = prop::sample::select(vec![
        0u8, b'0', b'7', b'9', b' ', b'\t', b'\n', b'\r', b':', b'#', b'/', b'.', b'`', 0x80, 0xff,
    ]);
    prop_oneof![
        4 => (any::<Index>(), 1u8..=255).prop_map(|(at, xor)| Mutation::Flip { at, xor }),
        3 => (any::<Index>(), special).prop_map(|(at, byte)| Mutation::Set { at, byte }),
        1 => any::<Index>().prop_map(|at| Mutation::Truncate { at }),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        1 => (any::<Index>(), 1usize..64).prop_map(|(at, len)| Mutation::Remove { at, len }),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutations: &[Mutation]) {
    for m in mutations {
        if bytes.is_empty() {
            return;
        }
        match m {
            Mutation::Flip { at, xor } => {
                let i = at.index(bytes.len());
                bytes[i] ^= xor;
            }
            Mutation::Set { at, byte } => {
                let i = at.index(bytes.len());
                bytes[i] = *byte;
            }
            Mutation::Truncate { at } => bytes.truncate(at.index(bytes.len())),
            Mutation::Insert { at, bytes: new } => {
                let i = at.index(bytes.len() + 1);
                bytes.splice(i..i, new.iter().copied());
            }
            Mutation::Remove { at, len } => {
                let i = at.index(bytes.len());
                let end = (i + len).min(bytes.len());
                bytes.drain(i..end);
            }
        }
    }
}

/// Text for an ar size field (10 characters): numbers past the end of the file,
/// numbers that overflow, signs, hex, blanks and garbage.
fn size_field() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("9999999999".to_string()),
        Just("4294967296".to_string()),
        Just("-1".to_string()),
        Just("+60".to_string()),
        Just("0x10".to_string()),
        Just(String::new()),
        Just("1 2".to_string()),
        Just("1e3".to_string()),
        Just("\u{e9}".to_string()),
        (0u64..10_000).prop_map(|n| n.to_string()),
        (0u64..10_000_000_000).prop_map(|n| n.to_string()),
        "[ -~]{0,10}",
    ]
}

/// One line of a deb822 paragraph: known and unknown fields (in any case, so some
/// are duplicates), continuation lines, comments, blank lines, long lines, garbage.
fn control_line() -> impl Strategy<Value = String> {
    let known = prop::sample::select(vec![
        "Package",
        "package",
        "PACKAGE",
        "Version",
        "Architecture",
        "Description",
        "Depends",
        "Source",
        "Filename",
        "SHA256",
        "Size",
        "X-Custom",
    ]);
    let value = prop_oneof![
        4 => "[ -~]{0,24}",
        1 => any::<String>(),
        1 => (0usize..20_000).prop_map(|n| "x".repeat(n)),
    ];
    prop_oneof![
        4 => (known, prop::sample::select(vec![":", ": ", ":\t", " : "]), value.clone())
            .prop_map(|(n, s, v)| format!("{n}{s}{v}")),
        2 => ("[A-Za-z0-9-]{1,12}", value.clone()).prop_map(|(n, v)| format!("{n}: {v}")),
        2 => (prop::sample::select(vec![" ", "\t", "  "]), value.clone())
            .prop_map(|(indent, v)| format!("{indent}{v}")),
        1 => Just(" .".to_string()),
        1 => value.clone().prop_map(|v| format!("#{v}")),
        1 => Just(String::new()),
        1 => any::<String>(),
    ]
}

/// The field a line must be read as (lower-cased), if any: a valid name before the
/// first colon, at the start of the line.
fn field_name(line: &str) -> Option<String> {
    let (name, _) = line.split_once(':')?;
    let valid = !name.is_empty()
        && !name.starts_with(['-', '#'])
        && name.bytes().all(|b| b.is_ascii_graphic());
    valid.then(|| name.to_ascii_lowercase())
}

/// A member of a randomly laid out archive.
fn random_member() -> impl Strategy<Value = (String, Vec<u8>)> {
    let name = prop_oneof![
        8 => prop::sample::select(vec![
            "debian-binary",
            "debian-binary/",
            "control.tar",
            "control.tar.gz",
            "control.tar.xz",
            "control.tar.zst",
            "control.tar.bz2",
            "data.tar",
            "data.tar.gz",
            "_gpgorigin",
            "md5sums",
        ]).prop_map(str::to_string),
        1 => "[ -~]{0,16}",
    ];
    let seed = &SEEDS[0];
    let contents = prop_oneof![
        Just(b"2.0\n".to_vec()),
        Just(b"3.0\n".to_vec()),
        Just(seed.control_compression.compress(&seed.control_tar())),
        Just(seed.control_tar()),
        Just(Vec::new()),
        prop::collection::vec(any::<u8>(), 0..64),
    ];
    (name, contents)
}

/// 256 cases per property unless `PROPTEST_CASES` says otherwise; the whole file
/// stays within a few seconds in a debug build.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        // A long run must not stop at the first few thousand rejected packages.
        max_global_rejects: cases.saturating_mul(4),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mutated_debs_never_panic(
        seed in any::<Index>(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let mut bytes = seed.get(&CORPUS).clone();
        apply(&mut bytes, &mutations);
        let _ = exercise(&bytes);
    }

    #[test]
    fn mutated_control_tars_never_panic(
        seed in any::<Index>(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let seed = seed.get(SEEDS);
        let mut tar = seed.control_tar();
        apply(&mut tar, &mutations);
        let _ = exercise(&seed.build_with_control_tar(&tar));
    }

    #[test]
    fn mutated_control_files_never_panic(
        seed in any::<Index>(),
        mutations in prop::collection::vec(mutation(), 1..8),
    ) {
        let seed = seed.get(SEEDS);
        let mut control = seed.control.as_bytes().to_vec();
        apply(&mut control, &mutations);
        let result = exercise(&seed.build_with_control_tar(&seed.control_tar_with(&control)));
        if std::str::from_utf8(&control).is_err() {
            prop_assert!(result.is_err(), "a control file that is not UTF-8 was accepted");
        }
    }

    #[test]
    fn random_control_paragraphs_never_panic(
        seed in any::<Index>(),
        valid_start in any::<bool>(),
        lines in prop::collection::vec(control_line(), 0..12),
        crlf in any::<bool>(),
    ) {
        let seed = seed.get(SEEDS);
        let mut all: Vec<String> = Vec::new();
        if valid_start {
            all.extend(["Package: fuzz", "Version: 1.0", "Architecture: all"].map(String::from));
        }
        all.extend(lines);
        let text = all.join(if crlf { "\r\n" } else { "\n" }) + "\n";
        let result = exercise(&seed.build_with_control_tar(&seed.control_tar_with(text.as_bytes())));
        let mut names: Vec<String> = all.iter().filter_map(|l| field_name(l)).collect();
        names.sort();
        let duplicated = names.windows(2).any(|w| w[0] == w[1]);
        if duplicated {
            prop_assert!(result.is_err(), "duplicate field accepted:\n{text}");
        }
    }

    #[test]
    fn random_bytes_never_panic(
        prefix in prop::sample::select(vec![
            &b""[..],
            b"!<arch>\n",
            b"!<arch>\ndebian-binary   ",
        ]),
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut input = prefix.to_vec();
        input.extend(bytes);
        let result = exercise(&input);
        prop_assert!(result.is_err(), "random bytes accepted");
    }

    #[test]
    fn random_ar_layouts_never_panic(
        members in prop::collection::vec(random_member(), 0..6),
        mutations in prop::collection::vec(mutation(), 0..3),
    ) {
        let mut bytes = ar_of(&members);
        apply(&mut bytes, &mutations);
        let _ = exercise(&bytes);
    }

    #[test]
    fn hostile_ar_sizes_are_refused(
        seed in any::<Index>(),
        member in any::<Index>(),
        size in size_field(),
    ) {
        let seed = seed.get(SEEDS);
        let members = seed.members_with(&seed.control_tar());
        let member = member.index(members.len());
        let mut bytes = b"!<arch>\n".to_vec();
        let mut after = 0;
        for (i, (name, data)) in members.iter().enumerate() {
            let declared = if i == member { size.clone() } else { data.len().to_string() };
            bytes.extend(ar_header(name, &declared));
            bytes.extend_from_slice(data);
            if data.len() % 2 == 1 {
                bytes.push(b'\n');
            }
            if i == member {
                after = bytes.len() - data.len() - data.len() % 2;
            }
        }
        let result = exercise(&bytes);
        let written = &ar_header("", &size)[48..58];
        let written = std::str::from_utf8(written).map(str::trim);
        match written.map(str::parse::<u64>) {
            Err(_) | Ok(Err(_)) => prop_assert!(
                matches!(result, Err(DebError::Container(_))),
                "size {size:?}: {result:?}"
            ),
            Ok(Ok(n)) if n > (bytes.len() - after) as u64 => prop_assert!(
                matches!(result, Err(DebError::Truncated)),
                "size {size:?}: {result:?}"
            ),
            Ok(Ok(_)) => {}
        }
    }
}

// Hostile structures. Each of these needs a specific shape that random mutation
// would take very long to find.

/// A stream of `head` followed by `unit` repeated `count` times: a decompression
/// bomb of any declared size that costs no memory to produce.
struct Repeating {
    head: io::Cursor<Vec<u8>>,
    unit: Vec<u8>,
    at: usize,
    count: u64,
}

impl Read for Repeating {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.head.read(buf)?;
        if n > 0 || self.count == 0 {
            return Ok(n);
        }
        let n = buf.len().min(self.unit.len() - self.at);
        buf[..n].copy_from_slice(&self.unit[self.at..self.at + n]);
        self.at += n;
        if self.at == self.unit.len() {
            self.at = 0;
            self.count -= 1;
        }
        Ok(n)
    }
}

/// Decompressed size of the bombs: far past [`MAX_CONTROL_ARCHIVE`], and more
/// memory than a test machine (or a Lambda) has.
const BOMB_BYTES: u64 = 8 << 30;

/// A tar header block; `kind` `L` is a GNU long name, which tar readers buffer.
fn tar_header(path: &str, kind: tar::EntryType, size: u64) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.set_size(size);
    header.set_cksum();
    header.as_bytes().to_vec()
}

/// An archive whose control member is `control.tar{suffix}` = `head` + `unit` x `count`.
fn bomb_deb(suffix: &str, head: Vec<u8>, unit: Vec<u8>, count: u64) -> Repeating {
    let mut bytes = ar_of(&[("debian-binary", b"2.0\n".to_vec())]);
    let size = head.len() as u64 + unit.len() as u64 * count;
    bytes.extend(ar_header(
        &format!("control.tar{suffix}"),
        &size.to_string(),
    ));
    bytes.extend(head);
    Repeating {
        head: io::Cursor::new(bytes),
        unit,
        at: 0,
        count,
    }
}

/// Raw deflate of `data`, ending on a full flush: byte-aligned and independent of
/// what came before, so copies of it can follow each other.
fn deflate_full_flush(data: &[u8]) -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::fast(), false);
    let mut out = Vec::with_capacity(data.len() + 1024);
    c.compress_vec(data, &mut out, flate2::FlushCompress::Full)
        .expect("in-memory deflate");
    assert_eq!(c.total_in(), data.len() as u64, "output buffer too small");
    out
}

/// A gzip stream of the tar header `first` and then `BOMB_BYTES` of zeros.
fn gzip_bomb(first: &[u8]) -> Repeating {
    const UNIT: usize = 1 << 20;
    let mut head = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    head.extend(deflate_full_flush(first));
    let unit = deflate_full_flush(&[0; UNIT]);
    bomb_deb(".gz", head, unit, BOMB_BYTES / UNIT as u64)
}

/// A zstd frame of the tar header `first` (a raw block) and then `BOMB_BYTES` of
/// zeros in 128 KiB RLE blocks of four bytes each.
fn zstd_bomb(first: &[u8]) -> Repeating {
    const UNIT: u64 = 128 << 10;
    // Magic, no content size or checksum, a 128 KiB window.
    let mut head = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 7 << 3];
    let raw = (first.len() as u32) << 3;
    head.extend(&raw.to_le_bytes()[..3]);
    head.extend(first);
    let rle = ((UNIT as u32) << 3) | (1 << 1);
    let mut unit = rle.to_le_bytes()[..3].to_vec();
    unit.push(0);
    bomb_deb(".zst", head, unit, BOMB_BYTES / UNIT)
}

fn assert_too_large(result: Result<DebInfo, DebError>, what: &str) {
    match result {
        Err(DebError::ControlTooLarge { limit, .. }) => assert_eq!(limit, MAX_CONTROL_ARCHIVE),
        other => panic!("{what}: expected ControlTooLarge, got {other:?}"),
    }
}

#[test]
fn decompression_bombs_in_the_control_archive_are_refused() {
    // A maintainer script that inflates to 8 GiB: read only to skip it, but the
    // decompressor still has to produce every byte.
    let script = tar_header("./postinst", tar::EntryType::Regular, BOMB_BYTES - 1024);
    assert_too_large(inspect_deb(gzip_bomb(&script)), "gzip script");
    assert_too_large(inspect_deb(zstd_bomb(&script)), "zstd script");
    // A GNU long name of 8 GiB: tar readers keep long names in memory.
    let long_name = tar_header(
        "././@LongLink",
        tar::EntryType::GNULongName,
        BOMB_BYTES - 1024,
    );
    assert_too_large(inspect_deb(gzip_bomb(&long_name)), "gzip long name");
    assert_too_large(inspect_deb(zstd_bomb(&long_name)), "zstd long name");
}

#[test]
fn a_huge_control_file_is_refused_before_it_is_read() {
    // The bomb is the control file itself: refused on its declared size.
    let control = tar_header("./control", tar::EntryType::Regular, BOMB_BYTES - 1024);
    let err = inspect_deb(gzip_bomb(&control)).expect_err("refused");
    assert!(
        matches!(&err, DebError::ControlArchive(m) if m.contains("more than")),
        "{err:?}"
    );
}

#[test]
fn control_files_at_and_over_the_limit() {
    let seed = &SEEDS[3];
    let head = "Package: plain\nVersion: 3\nArchitecture: all\nDescription: long\n ";
    let fill = MAX_CONTROL_FILE as usize - head.len() - 1;
    let at_limit = format!("{head}{}\n", "x".repeat(fill));
    assert_eq!(at_limit.len() as u64, MAX_CONTROL_FILE);
    let info = exercise(&seed.build_with_control_tar(&seed.control_tar_with(at_limit.as_bytes())))
        .expect("a control file of exactly the limit is accepted");
    assert_eq!(
        info.control.get("Description").map(str::len),
        Some(fill + 6)
    );

    let over = format!("{head}{}\n", "x".repeat(fill + 1));
    let err = exercise(&seed.build_with_control_tar(&seed.control_tar_with(over.as_bytes())))
        .expect_err("over the limit");
    assert!(err.to_string().contains("more than 1048576"), "{err}");
}

#[test]
fn control_files_that_are_not_utf8_are_refused() {
    let seed = &SEEDS[0];
    for bad in [
        &b"Package: caf\xe9\n"[..],
        b"\xff\xfe",
        b"Description: \xc3\n",
    ] {
        let mut control = seed.control.as_bytes().to_vec();
        control.extend_from_slice(bad);
        let err = exercise(&seed.build_with_control_tar(&seed.control_tar_with(&control)))
            .expect_err("not UTF-8");
        assert!(matches!(err, DebError::ControlArchive(_)), "{err:?}");
    }
}

#[test]
fn duplicate_fields_are_refused() {
    let seed = &SEEDS[0];
    for dup in ["Package: again\n", "PACKAGE: again\n", "version: 2\n"] {
        let control = format!("{}{dup}", seed.control);
        let err =
            exercise(&seed.build_with_control_tar(&seed.control_tar_with(control.as_bytes())))
                .expect_err("duplicate");
        assert!(err.to_string().contains("duplicate field"), "{err}");
    }
}

#[test]
fn a_control_file_of_many_fields_is_read_in_linear_time() {
    // A million bytes of distinct fields: each used to be checked against all the
    // fields before it, by the parser and again by the stanza writer.
    let seed = &SEEDS[3];
    let mut control = String::from("Package: plain\nVersion: 3\nArchitecture: all\n");
    let mut fields = 3;
    while control.len() < MAX_CONTROL_FILE as usize - 32 {
        control.push_str(&format!("X-{fields}: v\n"));
        fields += 1;
    }
    let info = exercise(&seed.build_with_control_tar(&seed.control_tar_with(control.as_bytes())))
        .expect("distinct fields within the size limit");
    assert_eq!(info.control.fields().count(), fields);
}
