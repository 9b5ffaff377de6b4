//! A synthetic RPM writer for tests: lead, signature header, main header and
//! payload bytes with whatever tags a test wants, including broken ones
//! (wrong offsets, counts, types, magic). Real packages come from `rpmbuild` in
//! `tests/createrepo.rs`; these are for the cases rpmbuild would never write.
//!
//! Only compiled for tests and with the `testutil` feature.

/// A tag value, encoded with rpm's type and alignment rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `RPM_INT8_TYPE`
    Int8(Vec<u8>),
    /// `RPM_INT16_TYPE`
    Int16(Vec<u16>),
    /// `RPM_INT32_TYPE`
    Int32(Vec<u32>),
    /// `RPM_INT64_TYPE`
    Int64(Vec<u64>),
    /// `RPM_STRING_TYPE`
    Str(String),
    /// `RPM_BIN_TYPE`
    Bin(Vec<u8>),
    /// `RPM_STRING_ARRAY_TYPE`
    StrArray(Vec<String>),
    /// `RPM_I18NSTRING_TYPE`
    I18n(Vec<String>),
    /// `RPM_STRING_TYPE` with arbitrary bytes (not UTF-8, embedded control
    /// characters); the terminating NUL is added.
    RawStr(Vec<u8>),
}

impl Value {
    fn type_and_count(&self) -> (u32, u32) {
        let n = |len: usize| u32::try_from(len).expect("test values are small");
        match self {
            Value::Int8(v) => (2, n(v.len())),
            Value::Int16(v) => (3, n(v.len())),
            Value::Int32(v) => (4, n(v.len())),
            Value::Int64(v) => (5, n(v.len())),
            Value::Str(_) | Value::RawStr(_) => (6, 1),
            Value::Bin(v) => (7, n(v.len())),
            Value::StrArray(v) => (8, n(v.len())),
            Value::I18n(v) => (9, n(v.len())),
        }
    }

    fn alignment(&self) -> usize {
        match self {
            Value::Int16(_) => 2,
            Value::Int32(_) => 4,
            Value::Int64(_) => 8,
            _ => 1,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        fn strings(out: &mut Vec<u8>, v: &[String]) {
            for s in v {
                out.extend_from_slice(s.as_bytes());
                out.push(0);
            }
        }
        match self {
            Value::Int8(v) | Value::Bin(v) => out.extend_from_slice(v),
            Value::Int16(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_be_bytes())),
            Value::Int32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_be_bytes())),
            Value::Int64(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_be_bytes())),
            Value::Str(s) => strings(out, std::slice::from_ref(s)),
            Value::StrArray(v) | Value::I18n(v) => strings(out, v),
            Value::RawStr(v) => {
                out.extend_from_slice(v);
                out.push(0);
            }
        }
    }
}

/// An index entry written as given, not checked against the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawEntry {
    /// Tag number.
    pub tag: u32,
    /// Type number (1..=9 are valid).
    pub ty: u32,
    /// Offset into the data store.
    pub offset: u32,
    /// Element count.
    pub count: u32,
}

/// One header (signature or main). Tags are written in insertion order.
#[derive(Debug, Clone, Default)]
pub struct HeaderBuilder {
    entries: Vec<(u32, Value)>,
    raw_entries: Vec<RawEntry>,
    extra_store: Vec<u8>,
    index_count_override: Option<u32>,
    store_len_override: Option<u32>,
    bad_magic: bool,
}

impl HeaderBuilder {
    /// An empty header.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a tag.
    pub fn tag(mut self, tag: u32, value: Value) -> Self {
        self.set(tag, value);
        self
    }

    /// Adds or replaces a tag in place.
    pub fn set(&mut self, tag: u32, value: Value) {
        self.remove(tag);
        self.entries.push((tag, value));
    }

    /// Removes a tag, if present.
    pub fn remove(&mut self, tag: u32) {
        self.entries.retain(|(t, _)| *t != tag);
    }

    /// Shorthand for a string tag.
    pub fn string(self, tag: u32, s: &str) -> Self {
        self.tag(tag, Value::Str(s.to_string()))
    }

    /// Shorthand for a string-array tag.
    pub fn strings(self, tag: u32, v: &[&str]) -> Self {
        self.tag(
            tag,
            Value::StrArray(v.iter().map(|s| s.to_string()).collect()),
        )
    }

    /// Shorthand for an INT32 tag.
    pub fn int32(self, tag: u32, v: &[u32]) -> Self {
        self.tag(tag, Value::Int32(v.to_vec()))
    }

    /// Appends an index entry exactly as given, after the real ones.
    pub fn raw_entry(mut self, entry: RawEntry) -> Self {
        self.raw_entries.push(entry);
        self
    }

    /// Appends raw bytes to the end of the data store.
    pub fn extra_store(mut self, bytes: &[u8]) -> Self {
        self.extra_store.extend_from_slice(bytes);
        self
    }

    /// Writes this index count in the intro instead of the real one.
    pub fn index_count_override(mut self, count: u32) -> Self {
        self.index_count_override = Some(count);
        self
    }

    /// Writes this data store length in the intro instead of the real one.
    pub fn store_len_override(mut self, len: u32) -> Self {
        self.store_len_override = Some(len);
        self
    }

    /// Writes a wrong header magic.
    pub fn bad_magic(mut self) -> Self {
        self.bad_magic = true;
        self
    }

    /// Length of the data store [`HeaderBuilder::build`] writes (before any
    /// override), so tests can aim raw entries at its end.
    pub fn store_len(&self) -> u32 {
        let bytes = self.build();
        let index = 16 * (self.entries.len() + self.raw_entries.len());
        u32::try_from(bytes.len() - 16 - index).expect("test headers are small")
    }

    /// The header's bytes (no trailing padding).
    pub fn build(&self) -> Vec<u8> {
        let mut store = Vec::new();
        let mut index = Vec::new();
        for (tag, value) in &self.entries {
            let align = value.alignment();
            while store.len() % align != 0 {
                store.push(0);
            }
            let (ty, count) = value.type_and_count();
            let offset = u32::try_from(store.len()).expect("test headers are small");
            value.encode(&mut store);
            for word in [*tag, ty, offset, count] {
                index.extend_from_slice(&word.to_be_bytes());
            }
        }
        for e in &self.raw_entries {
            for word in [e.tag, e.ty, e.offset, e.count] {
                index.extend_from_slice(&word.to_be_bytes());
            }
        }
        store.extend_from_slice(&self.extra_store);

        let count = self.entries.len() + self.raw_entries.len();
        let count = u32::try_from(count).expect("test headers are small");
        let store_len = u32::try_from(store.len()).expect("test headers are small");
        let mut out = Vec::with_capacity(16 + index.len() + store.len());
        if self.bad_magic {
            out.extend_from_slice(&[0x8e, 0xad, 0xe8, 0x02]);
        } else {
            out.extend_from_slice(&[0x8e, 0xad, 0xe8, 0x01]);
        }
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&self.index_count_override.unwrap_or(count).to_be_bytes());
        out.extend_from_slice(&self.store_len_override.unwrap_or(store_len).to_be_bytes());
        out.extend_from_slice(&index);
        out.extend_from_slice(&store);
        out
    }
}

/// A whole package.
#[derive(Debug, Clone)]
pub struct RpmBuilder {
    /// The 96-byte lead.
    pub lead: [u8; 96],
    /// Signature header (padded to 8 bytes when written).
    pub signature: HeaderBuilder,
    /// Main header.
    pub header: HeaderBuilder,
    /// Whatever follows the main header.
    pub payload: Vec<u8>,
}

/// Tag numbers the builder's presets use, named as in rpm's `rpmtag.h`.
#[allow(missing_docs)]
pub mod tag {
    pub const SIG_SIZE: u32 = 1000;
    pub const SIG_PAYLOADSIZE: u32 = 1007;
    pub const NAME: u32 = 1000;
    pub const VERSION: u32 = 1001;
    pub const RELEASE: u32 = 1002;
    pub const EPOCH: u32 = 1003;
    pub const SUMMARY: u32 = 1004;
    pub const DESCRIPTION: u32 = 1005;
    pub const BUILDTIME: u32 = 1006;
    pub const BUILDHOST: u32 = 1007;
    pub const SIZE: u32 = 1009;
    pub const LICENSE: u32 = 1014;
    pub const GROUP: u32 = 1016;
    pub const ARCH: u32 = 1022;
    pub const OLDFILENAMES: u32 = 1027;
    pub const FILEMODES: u32 = 1030;
    pub const FILEFLAGS: u32 = 1037;
    pub const SOURCERPM: u32 = 1044;
    pub const PROVIDENAME: u32 = 1047;
    pub const REQUIREFLAGS: u32 = 1048;
    pub const REQUIRENAME: u32 = 1049;
    pub const REQUIREVERSION: u32 = 1050;
    pub const CHANGELOGTIME: u32 = 1080;
    pub const CHANGELOGNAME: u32 = 1081;
    pub const CHANGELOGTEXT: u32 = 1082;
    pub const PROVIDEFLAGS: u32 = 1112;
    pub const PROVIDEVERSION: u32 = 1113;
    pub const DIRINDEXES: u32 = 1116;
    pub const BASENAMES: u32 = 1117;
    pub const DIRNAMES: u32 = 1118;
    pub const RECOMMENDNAME: u32 = 5046;
    pub const RECOMMENDVERSION: u32 = 5047;
    pub const RECOMMENDFLAGS: u32 = 5048;
}

impl RpmBuilder {
    /// A valid lead for `name` (binary package, format 3.0, header signature).
    pub fn lead(name: &str) -> [u8; 96] {
        let mut lead = [0u8; 96];
        lead[..4].copy_from_slice(&[0xed, 0xab, 0xee, 0xdb]);
        lead[4] = 3;
        let bytes = name.as_bytes();
        let n = bytes.len().min(65);
        lead[10..10 + n].copy_from_slice(&bytes[..n]);
        lead[78..80].copy_from_slice(&5u16.to_be_bytes());
        lead
    }

    /// The smallest valid binary package: NAME, VERSION, RELEASE, ARCH and
    /// SOURCERPM, an empty signature header, and a few payload bytes.
    pub fn minimal(name: &str) -> Self {
        RpmBuilder {
            lead: Self::lead(name),
            signature: HeaderBuilder::new().int32(tag::SIG_PAYLOADSIZE, &[4]),
            header: HeaderBuilder::new()
                .string(tag::NAME, name)
                .string(tag::VERSION, "1.0")
                .string(tag::RELEASE, "1")
                .string(tag::ARCH, "x86_64")
                .string(tag::SOURCERPM, &format!("{name}-1.0-1.src.rpm")),
            payload: b"\x1f\x8b\x08\x00".to_vec(),
        }
    }

    /// A fuller package: summary, description, files (dir, ghost, primary and
    /// not), dependencies and a changelog.
    pub fn rich(name: &str) -> Self {
        let mut rpm = Self::minimal(name);
        rpm.header = rpm
            .header
            .int32(tag::EPOCH, &[2])
            .tag(tag::SUMMARY, Value::I18n(vec!["A <demo> & co".into()]))
            .tag(
                tag::DESCRIPTION,
                Value::I18n(vec!["Line one\nline two".into()]),
            )
            .int32(tag::BUILDTIME, &[1_700_000_000])
            .string(tag::BUILDHOST, "builder.example.org")
            .int32(tag::SIZE, &[1234])
            .string(tag::LICENSE, "MIT")
            .tag(tag::GROUP, Value::I18n(vec!["Unspecified".into()]))
            .tag(tag::DIRINDEXES, Value::Int32(vec![0, 1, 1, 2]))
            .strings(tag::BASENAMES, &[name, name, "data", "state"])
            .strings(
                tag::DIRNAMES,
                &["/usr/bin/", "/usr/share/", &format!("/var/lib/{name}/")],
            )
            .tag(
                tag::FILEMODES,
                Value::Int16(vec![0o100_755, 0o040_755, 0o100_644, 0o100_644]),
            )
            .int32(tag::FILEFLAGS, &[0, 0, 0, 0x40])
            .strings(tag::PROVIDENAME, &[name, "virtual-thing"])
            .int32(tag::PROVIDEFLAGS, &[8, 0])
            .strings(tag::PROVIDEVERSION, &["2:1.0-1", ""])
            .strings(
                tag::REQUIRENAME,
                &[
                    &format!("/usr/bin/{name}"),
                    "/usr/bin/sh",
                    "bash",
                    "libfoo",
                    "rpmlib(CompressedFileNames)",
                    "shadow-utils",
                ],
            )
            .int32(tag::REQUIREFLAGS, &[0, 0, 0x0c, 0x08, 0x0100_000a, 0x200])
            .strings(
                tag::REQUIREVERSION,
                &["", "", "4.0", "1:2.3-4", "3.0.4-1", ""],
            )
            .strings(tag::RECOMMENDNAME, &["extras"])
            .int32(tag::RECOMMENDFLAGS, &[0])
            .strings(tag::RECOMMENDVERSION, &[""])
            .int32(tag::CHANGELOGTIME, &[1_700_000_000, 1_600_000_000])
            .strings(
                tag::CHANGELOGNAME,
                &["Jane <j@example.org> - 1.0-1", "John - 0.9-1"],
            )
            .strings(tag::CHANGELOGTEXT, &["- newer", "- older"]);
        rpm
    }

    /// A source package: no SOURCERPM, so its arch reads as `src`.
    pub fn source(name: &str) -> Self {
        let mut rpm = Self::minimal(name);
        rpm.lead[6..8].copy_from_slice(&1u16.to_be_bytes());
        rpm.header.remove(tag::SOURCERPM);
        rpm.header = rpm
            .header
            .strings(tag::OLDFILENAMES, &[&format!("{name}.spec")])
            .tag(tag::FILEMODES, Value::Int16(vec![0o100_644]))
            .int32(tag::FILEFLAGS, &[0x20]);
        rpm
    }

    /// Offset of the main header in [`RpmBuilder::build`]'s output.
    pub fn header_start(&self) -> usize {
        let sig = self.signature.build().len();
        96 + sig + (8 - sig % 8) % 8
    }

    /// The package's bytes.
    pub fn build(&self) -> Vec<u8> {
        let mut out = self.lead.to_vec();
        let sig = self.signature.build();
        out.extend_from_slice(&sig);
        out.resize(out.len() + (8 - sig.len() % 8) % 8, 0);
        out.extend_from_slice(&self.header.build());
        out.extend_from_slice(&self.payload);
        out
    }
}
