//! The RPM header structure (used for both the signature header and the main
//! header): a 16-byte intro, an index of 16-byte entries, then a data store the
//! entries point into. Everything is big-endian.
//!
//! Every entry is validated once, when the header is read, so the typed getters
//! below can slice the store without further bounds worries.

use crate::error::RpmError;
use std::collections::HashMap;
use std::io::Read;

/// Most index entries a header may have. rpm's own packages have a few hundred;
/// the cap keeps a hostile count from costing memory.
pub const MAX_INDEX_ENTRIES: u32 = 100_000;

/// Largest data store a header may have (64 MiB). Headers of real packages with
/// tens of thousands of files stay far below this.
pub const MAX_DATA_STORE: u32 = 64 * 1024 * 1024;

const MAGIC: [u8; 4] = [0x8e, 0xad, 0xe8, 0x01];

/// Which of the two headers is being read; only changes the error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderKind {
    Signature,
    Main,
}

impl HeaderKind {
    fn label(self) -> &'static str {
        match self {
            HeaderKind::Signature => "RPM signature header",
            HeaderKind::Main => "RPM header",
        }
    }
}

/// A tag number with the name error messages use.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tag {
    pub id: u32,
    pub name: &'static str,
}

/// The data types of index entries (`rpmTagType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagType {
    Char,
    Int8,
    Int16,
    Int32,
    Int64,
    String,
    Bin,
    StringArray,
    I18nString,
}

impl TagType {
    fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            1 => TagType::Char,
            2 => TagType::Int8,
            3 => TagType::Int16,
            4 => TagType::Int32,
            5 => TagType::Int64,
            6 => TagType::String,
            7 => TagType::Bin,
            8 => TagType::StringArray,
            9 => TagType::I18nString,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            TagType::Char => "CHAR",
            TagType::Int8 => "INT8",
            TagType::Int16 => "INT16",
            TagType::Int32 => "INT32",
            TagType::Int64 => "INT64",
            TagType::String => "STRING",
            TagType::Bin => "BIN",
            TagType::StringArray => "STRING_ARRAY",
            TagType::I18nString => "I18NSTRING",
        }
    }
}

/// One validated index entry: `store[offset..offset + len]` holds its data.
#[derive(Debug, Clone, Copy)]
struct Entry {
    ty: TagType,
    offset: usize,
    count: usize,
    len: usize,
}

/// A header read into memory, entries validated.
#[derive(Debug)]
pub(crate) struct Header {
    kind: HeaderKind,
    entries: HashMap<u32, Entry>,
    store: Vec<u8>,
}

impl Header {
    /// Reads one header from `r`, consuming exactly its bytes (no padding).
    pub(crate) fn read(r: &mut impl Read, kind: HeaderKind) -> Result<Self, RpmError> {
        let label = kind.label();
        let mut intro = [0u8; 16];
        r.read_exact(&mut intro).map_err(RpmError::from_io)?;
        if intro[..4] != MAGIC {
            return Err(RpmError::Malformed(format!(
                "{label} has a bad magic number"
            )));
        }
        let index_count = be32(&intro[8..12]);
        let store_len = be32(&intro[12..16]);
        if index_count > MAX_INDEX_ENTRIES {
            return Err(RpmError::Malformed(format!(
                "{label} has {index_count} index entries, more than the limit of {MAX_INDEX_ENTRIES}"
            )));
        }
        if store_len > MAX_DATA_STORE {
            return Err(RpmError::Malformed(format!(
                "{label} data store is {store_len} bytes, more than the limit of {MAX_DATA_STORE} (64 MiB)"
            )));
        }
        let index = read_len(r, index_count as usize * 16)?;
        let store = read_len(r, store_len as usize)?;

        let mut entries = HashMap::with_capacity(index_count as usize);
        for (i, raw) in index.chunks_exact(16).enumerate() {
            let tag = be32(&raw[0..4]);
            let entry = validate_entry(&store, raw).map_err(|problem| {
                RpmError::Malformed(format!("{label} index entry {i} (tag {tag}) {problem}"))
            })?;
            // rpm looks tags up by binary search, so a second copy of a tag would
            // be read by some tools and not others: refuse the ambiguity.
            if entries.insert(tag, entry).is_some() {
                return Err(RpmError::Malformed(format!(
                    "{label} index entry {i} (tag {tag}) repeats a tag already in the header"
                )));
            }
        }
        Ok(Header {
            kind,
            entries,
            store,
        })
    }

    /// Bytes the header occupied in the file.
    pub(crate) fn encoded_len(&self) -> u64 {
        16 + 16 * self.entries.len() as u64 + self.store.len() as u64
    }

    fn wrong_type(&self, tag: Tag, ty: TagType, expected: &str) -> RpmError {
        RpmError::Malformed(format!(
            "{} tag {} ({}) has type {}, expected {expected}",
            self.kind.label(),
            tag.name,
            tag.id,
            ty.name()
        ))
    }

    /// Whether the header has `tag`.
    pub(crate) fn has(&self, tag: Tag) -> bool {
        self.entries.contains_key(&tag.id)
    }

    /// Number of elements of a tag (0 if absent), so that callers can check
    /// their limits before materialising an array.
    pub(crate) fn count(&self, tag: Tag) -> usize {
        self.entries.get(&tag.id).map_or(0, |e| e.count)
    }

    /// The raw data of a string-typed tag.
    fn string_data(&self, tag: Tag) -> Result<Option<(&[u8], usize)>, RpmError> {
        let Some(e) = self.entries.get(&tag.id) else {
            return Ok(None);
        };
        match e.ty {
            TagType::String | TagType::StringArray | TagType::I18nString => {
                Ok(Some((&self.store[e.offset..e.offset + e.len], e.count)))
            }
            other => Err(self.wrong_type(tag, other, "a string")),
        }
    }

    /// All strings of a string, string-array or i18n-string tag.
    pub(crate) fn strings(&self, tag: Tag) -> Result<Option<Vec<String>>, RpmError> {
        let Some((data, count)) = self.string_data(tag)? else {
            return Ok(None);
        };
        // Validation guaranteed `count` NUL-terminated strings in `data`.
        Ok(Some(
            data.split(|&b| b == 0)
                .take(count)
                .map(decode_string)
                .collect(),
        ))
    }

    /// The first string of a string tag, without reading the others. For i18n
    /// strings that is the text in the default ("C") locale, which is what
    /// createrepo_c and dnf show.
    pub(crate) fn string(&self, tag: Tag) -> Result<Option<String>, RpmError> {
        let Some((data, count)) = self.string_data(tag)? else {
            return Ok(None);
        };
        Ok((count > 0).then(|| decode_string(data.split(|&b| b == 0).next().unwrap_or(&[]))))
    }

    /// The raw data of an integer tag and its element width.
    fn number_data(&self, tag: Tag) -> Result<Option<(&[u8], usize)>, RpmError> {
        let Some(e) = self.entries.get(&tag.id) else {
            return Ok(None);
        };
        let width = match e.ty {
            TagType::Char | TagType::Int8 => 1,
            TagType::Int16 => 2,
            TagType::Int32 => 4,
            TagType::Int64 => 8,
            other => return Err(self.wrong_type(tag, other, "an integer")),
        };
        Ok(Some((&self.store[e.offset..e.offset + e.len], width)))
    }

    /// All values of an integer tag, widened to `u64`.
    pub(crate) fn numbers(&self, tag: Tag) -> Result<Option<Vec<u64>>, RpmError> {
        let Some((data, width)) = self.number_data(tag)? else {
            return Ok(None);
        };
        Ok(Some(data.chunks_exact(width).map(be_uint).collect()))
    }

    /// The first value of an integer tag, without reading the others.
    pub(crate) fn number(&self, tag: Tag) -> Result<Option<u64>, RpmError> {
        let Some((data, width)) = self.number_data(tag)? else {
            return Ok(None);
        };
        Ok(data.chunks_exact(width).next().map(be_uint))
    }
}

fn be_uint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b))
}

/// Checks one raw index entry against the data store; the error text completes
/// "RPM header index entry N (tag T) ...".
fn validate_entry(store: &[u8], raw: &[u8]) -> Result<Entry, String> {
    let raw_type = be32(&raw[4..8]);
    let offset = be32(&raw[8..12]) as usize;
    let count = be32(&raw[12..16]) as usize;
    let ty = TagType::from_raw(raw_type).ok_or_else(|| format!("has unknown type {raw_type}"))?;
    const OUTSIDE: &str = "points outside the data store";
    if offset > store.len() {
        return Err(OUTSIDE.into());
    }
    let available = store.len() - offset;
    let len = match ty {
        TagType::Char | TagType::Int8 | TagType::Bin => Some(count),
        TagType::Int16 => count.checked_mul(2),
        TagType::Int32 => count.checked_mul(4),
        TagType::Int64 => count.checked_mul(8),
        TagType::String => {
            if count != 1 {
                return Err(format!("is a single string with count {count}"));
            }
            Some(string_span(&store[offset..], 1)?)
        }
        TagType::StringArray | TagType::I18nString => {
            // Each string takes at least its NUL: a count beyond the space left
            // cannot fit, and checking first keeps the scan below short.
            if count > available {
                return Err(OUTSIDE.into());
            }
            Some(string_span(&store[offset..], count)?)
        }
    };
    match len {
        Some(len) if len <= available => Ok(Entry {
            ty,
            offset,
            count,
            len,
        }),
        _ => Err(OUTSIDE.into()),
    }
}

/// Length of `count` consecutive NUL-terminated strings at the start of `data`.
fn string_span(data: &[u8], count: usize) -> Result<usize, String> {
    let mut pos = 0;
    for _ in 0..count {
        match data[pos..].iter().position(|&b| b == 0) {
            Some(nul) => pos += nul + 1,
            None if pos >= data.len() => return Err("points outside the data store".into()),
            None => {
                return Err("has a string that is not NUL-terminated within the data store".into());
            }
        }
    }
    Ok(pos)
}

/// Header strings are bytes; almost always UTF-8. Anything else is read as
/// ISO-8859-1 the way createrepo_c does it (bytes 0x80-0xBF, mostly cp1252 debris,
/// dropped; control characters dropped), so that Cairn's metadata and a
/// createrepo_c repository of the same package agree.
pub(crate) fn decode_string(raw: &[u8]) -> String {
    match std::str::from_utf8(raw) {
        Ok(s) => s.to_owned(),
        Err(_) => raw
            .iter()
            .filter(|&&b| match b {
                b'\t' | b'\n' | b'\r' => true,
                0..0x20 => false,
                0x80..0xc0 => false,
                _ => true,
            })
            .map(|&b| char::from(b))
            .collect(),
    }
}

/// Reads exactly `len` bytes, growing the buffer as data arrives so that a
/// header claiming a large store in a short file costs no more than the file.
fn read_len(r: &mut impl Read, len: usize) -> Result<Vec<u8>, RpmError> {
    let mut buf = Vec::with_capacity(len.min(64 * 1024));
    r.take(len as u64)
        .read_to_end(&mut buf)
        .map_err(RpmError::from_io)?;
    if buf.len() < len {
        return Err(RpmError::Truncated);
    }
    Ok(buf)
}

pub(crate) fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// The tags Cairn reads, named as in rpm's `rpmtag.h`.
pub(crate) mod tags {
    use super::Tag;

    macro_rules! tags {
        ($($name:ident = $id:expr;)*) => {
            $(pub const $name: Tag = Tag { id: $id, name: stringify!($name) };)*
        };
    }

    tags! {
        // Signature header.
        SIG_PAYLOADSIZE = 1007;
        SIG_LONGARCHIVESIZE = 271;
        // Main header.
        LONGARCHIVESIZE = 271;
        NAME = 1000;
        VERSION = 1001;
        RELEASE = 1002;
        EPOCH = 1003;
        SUMMARY = 1004;
        DESCRIPTION = 1005;
        BUILDTIME = 1006;
        BUILDHOST = 1007;
        SIZE = 1009;
        VENDOR = 1011;
        LICENSE = 1014;
        PACKAGER = 1015;
        GROUP = 1016;
        URL = 1020;
        ARCH = 1022;
        OLDFILENAMES = 1027;
        FILEMODES = 1030;
        FILEFLAGS = 1037;
        SOURCERPM = 1044;
        ARCHIVESIZE = 1046;
        PROVIDENAME = 1047;
        REQUIREFLAGS = 1048;
        REQUIRENAME = 1049;
        REQUIREVERSION = 1050;
        CONFLICTFLAGS = 1053;
        CONFLICTNAME = 1054;
        CONFLICTVERSION = 1055;
        CHANGELOGTIME = 1080;
        CHANGELOGNAME = 1081;
        CHANGELOGTEXT = 1082;
        OBSOLETENAME = 1090;
        SOURCEPACKAGE = 1106;
        PROVIDEFLAGS = 1112;
        PROVIDEVERSION = 1113;
        OBSOLETEFLAGS = 1114;
        OBSOLETEVERSION = 1115;
        DIRINDEXES = 1116;
        BASENAMES = 1117;
        DIRNAMES = 1118;
        OLDSUGGESTSNAME = 1156;
        OLDSUGGESTSVERSION = 1157;
        OLDSUGGESTSFLAGS = 1158;
        OLDENHANCESNAME = 1159;
        OLDENHANCESVERSION = 1160;
        OLDENHANCESFLAGS = 1161;
        LONGSIZE = 5009;
        RECOMMENDNAME = 5046;
        RECOMMENDVERSION = 5047;
        RECOMMENDFLAGS = 5048;
        SUGGESTNAME = 5049;
        SUGGESTVERSION = 5050;
        SUGGESTFLAGS = 5051;
        SUPPLEMENTNAME = 5052;
        SUPPLEMENTVERSION = 5053;
        SUPPLEMENTFLAGS = 5054;
        ENHANCENAME = 5055;
        ENHANCEVERSION = 5056;
        ENHANCEFLAGS = 5057;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{HeaderBuilder, RawEntry};
    use proptest::prelude::*;

    #[test]
    fn latin1_fallback_matches_createrepo_c() {
        assert_eq!(decode_string(b"plain"), "plain");
        assert_eq!(decode_string("caf\u{e9}".as_bytes()), "caf\u{e9}");
        // 0xE9 alone is not UTF-8: read as Latin-1; 0x93 (cp1252 quote) dropped.
        assert_eq!(decode_string(b"caf\xe9 \x93x\x01"), "caf\u{e9} x");
    }

    proptest! {
        /// Whatever validation lets through, the getters read without
        /// panicking. Entries are aimed at the end of a small store, with
        /// counts around what fits there, where off-by-one mistakes live.
        #[test]
        fn validated_entries_are_readable(
            entries in prop::collection::vec((0u32..11, 0u32..12, -2i64..=2, 0u32..4), 1..6),
            store in prop::collection::vec(prop_oneof![Just(0u8), any::<u8>()], 0..48),
        ) {
            let mut builder = HeaderBuilder::new().extra_store(&store);
            let mut raws = Vec::new();
            for (tag, &(ty, back, delta, wild)) in (0..).zip(&entries) {
                let offset = store.len().saturating_sub(back as usize);
                let rest = &store[offset..];
                let fit = match ty {
                    3 => rest.len() / 2,
                    4 => rest.len() / 4,
                    5 => rest.len() / 8,
                    6 | 8 | 9 => rest.iter().filter(|&&b| b == 0).count(),
                    _ => rest.len(),
                };
                let count = i64::try_from(fit).unwrap_or(0).saturating_add(delta).max(0);
                // Now and then, a value from anywhere.
                let (offset, count) = match wild {
                    0 => (u32::MAX - back, count as u32),
                    1 => (offset as u32, u32::MAX - back),
                    _ => (offset as u32, count as u32),
                };
                let raw = RawEntry { tag, ty, offset, count };
                raws.push(raw);
                builder = builder.raw_entry(raw);
            }
            let bytes = builder.build();
            if let Ok(header) = Header::read(&mut &bytes[..], HeaderKind::Main) {
                for raw in raws {
                    let tag = Tag { id: raw.tag, name: "T" };
                    let strings = header.strings(tag);
                    let numbers = header.numbers(tag);
                    // The getter for the entry's own kind returns every element.
                    let count = Some(raw.count as usize);
                    match raw.ty {
                        1..=5 => assert_eq!(numbers.ok().flatten().map(|v| v.len()), count),
                        6 | 8 | 9 => assert_eq!(strings.ok().flatten().map(|v| v.len()), count),
                        _ => {}
                    }
                }
            }
        }
    }

    #[test]
    fn string_span_counts_terminators() {
        assert_eq!(string_span(b"a\0bc\0", 2), Ok(5));
        assert!(string_span(b"a\0bc", 2).is_err());
        assert!(string_span(b"a\0", 2).is_err());
    }
}
