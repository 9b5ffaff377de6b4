//! Streaming inspection of an `.rpm`: lead, signature header, main header, then
//! the payload read only to hash it. What is kept is what repodata needs.

use crate::deps::{Dependency, read_deps};
use crate::error::RpmError;
use crate::header::{Header, HeaderKind, Tag, tags};
use crate::vercmp::rpmvercmp;
use cairn_deb::{Digests, HashingReader};
use std::cmp::Ordering;
use std::io::Read;

const LEAD_LEN: usize = 96;
const LEAD_MAGIC: [u8; 4] = [0xed, 0xab, 0xee, 0xdb];
/// The only signature type rpm 3 and 4 packages use: a header-structured signature.
const SIGNATURE_TYPE_HEADER: u16 = 5;

/// Most files a package may list. Big real packages list tens of thousands;
/// the cap, with [`MAX_FILE_LIST_BYTES`], keeps a crafted header (a million
/// one-byte names) from turning a 64 MiB header into gigabytes of paths.
pub const MAX_FILES: usize = 1_000_000;

/// Most bytes the full paths of a package's files may add up to. Paths are
/// built from a directory and a base name, so without this cap one long
/// directory name shared by many files would multiply memory use.
pub const MAX_FILE_LIST_BYTES: usize = 64 * 1024 * 1024;

/// Most changelog entries a package may carry.
pub const MAX_CHANGELOGS: usize = 100_000;

/// `RPMFILE_GHOST`: the file is owned but not shipped in the payload.
const FILE_GHOST: u64 = 0x40;

/// What a file entry is, as filelists.xml distinguishes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file, symlink or device node.
    File,
    /// A directory owned by the package.
    Dir,
    /// A `%ghost` file: owned, but not in the payload.
    Ghost,
}

/// One path owned by the package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Absolute path (directory name + base name); a bare name in source packages.
    pub path: String,
    /// File, directory or ghost.
    pub kind: FileKind,
}

/// One `%changelog` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changelog {
    /// The entry's header line after the date, e.g. `Jane Doe <jane@example.org> - 1.0-1`.
    pub author: String,
    /// Date, seconds since the epoch (rpm stores noon UTC of the day written).
    pub time: u64,
    /// The entry's text.
    pub text: String,
}

/// What Cairn keeps of an RPM package: the fields repodata needs, plus the
/// file's digests.
///
/// Strings come from the header; text that is not UTF-8 is read as ISO-8859-1
/// the way createrepo_c reads it (bytes 0x80-0xBF and control characters
/// dropped). Optional text fields are empty when the tag is absent.
#[derive(Debug, Clone)]
pub struct RpmInfo {
    /// Package name.
    pub name: String,
    /// Epoch, if the package has one.
    pub epoch: Option<u32>,
    /// Version.
    pub version: String,
    /// Release.
    pub release: String,
    /// Architecture; `src` for a source package.
    pub arch: String,
    /// One-line summary.
    pub summary: String,
    /// Description.
    pub description: String,
    /// License.
    pub license: String,
    /// Upstream URL.
    pub url: String,
    /// Group (mostly `Unspecified` nowadays).
    pub group: String,
    /// Vendor.
    pub vendor: String,
    /// Packager.
    pub packager: String,
    /// Host the package was built on.
    pub buildhost: String,
    /// Build time, seconds since the epoch.
    pub build_time: u64,
    /// File name of the source package this was built from; `None` for a
    /// source package.
    pub source_rpm: Option<String>,
    /// Total size of the installed files, in bytes.
    pub installed_size: u64,
    /// Size of the uncompressed payload archive, in bytes (0 if unknown).
    pub archive_size: u64,
    /// Byte range of the main header in the file, `(start, end)`, end exclusive.
    pub header_range: (u64, u64),
    /// Capabilities provided.
    pub provides: Vec<Dependency>,
    /// Capabilities required, filtered as createrepo_c does: no `rpmlib(...)`,
    /// no paths this package ships among its primary files, none that equal a
    /// provide of this package, no repeat of the previous require of the same
    /// name, and of the `libc.so.6(...)` requires only the highest version,
    /// listed last. Requires marked "missing OK" (legacy weak deps) move to
    /// [`RpmInfo::recommends`].
    pub requires: Vec<Dependency>,
    /// Conflicts.
    pub conflicts: Vec<Dependency>,
    /// Obsoletes.
    pub obsoletes: Vec<Dependency>,
    /// Recommends (weak requires).
    pub recommends: Vec<Dependency>,
    /// Suggests.
    pub suggests: Vec<Dependency>,
    /// Supplements (reverse recommends).
    pub supplements: Vec<Dependency>,
    /// Enhances (reverse suggests).
    pub enhances: Vec<Dependency>,
    /// Every path the package owns, in header order.
    pub files: Vec<FileEntry>,
    /// Changelog entries in header order: newest first.
    pub changelogs: Vec<Changelog>,
    /// Size and digests of the whole `.rpm`; `sha256` is the repodata pkgid.
    pub digests: Digests,
}

impl RpmInfo {
    /// `E:V-R`, the epoch only when the package has one.
    pub fn evr(&self) -> String {
        match self.epoch {
            Some(epoch) => format!("{epoch}:{}-{}", self.version, self.release),
            None => format!("{}-{}", self.version, self.release),
        }
    }

    /// `N-E:V-R.A`, the epoch only when the package has one.
    pub fn nevra(&self) -> String {
        format!("{}-{}.{}", self.name, self.evr(), self.arch)
    }

    /// Orders two packages' versions as rpm and dnf do: epoch (absent = 0), then
    /// version, then release, each with [`rpmvercmp`].
    pub fn compare_evr(&self, other: &RpmInfo) -> Ordering {
        self.epoch
            .unwrap_or(0)
            .cmp(&other.epoch.unwrap_or(0))
            .then_with(|| rpmvercmp(&self.version, &other.version))
            .then_with(|| rpmvercmp(&self.release, &other.release))
    }

    /// Whether this is a source package.
    pub fn is_source(&self) -> bool {
        self.source_rpm.is_none()
    }
}

/// Reads an `.rpm` from `source` to its end: validates the lead and both
/// headers, extracts what repodata needs, and hashes the whole file. The payload
/// is never decompressed or kept; memory is bounded by the header limits
/// ([`crate::MAX_INDEX_ENTRIES`], [`crate::MAX_DATA_STORE`]) and the limits on
/// what is extracted ([`MAX_FILES`], [`MAX_FILE_LIST_BYTES`],
/// [`MAX_DEPENDENCIES`], [`MAX_CHANGELOGS`]), whatever the payload size.
pub fn inspect_rpm<R: Read>(source: R) -> Result<RpmInfo, RpmError> {
    let mut reader = HashingReader::new(source);

    let mut lead = [0u8; LEAD_LEN];
    read_lead(&mut reader, &mut lead)?;
    if lead[..4] != LEAD_MAGIC {
        return Err(RpmError::NotRpm);
    }
    let major = lead[4];
    if major != 3 && major != 4 {
        return Err(RpmError::UnsupportedVersion(major));
    }
    let signature_type = u16::from_be_bytes([lead[78], lead[79]]);
    if signature_type != SIGNATURE_TYPE_HEADER {
        return Err(RpmError::Malformed(format!(
            "RPM lead names signature type {signature_type}, expected {SIGNATURE_TYPE_HEADER}"
        )));
    }

    let signature = Header::read(&mut reader, HeaderKind::Signature)?;
    // The signature header is padded so that the main header starts 8-aligned.
    let padding = (8 - signature.encoded_len() % 8) % 8;
    let mut pad = [0u8; 8];
    reader
        .read_exact(&mut pad[..padding as usize])
        .map_err(RpmError::from_io)?;

    let header_start = reader.bytes_read();
    let header = Header::read(&mut reader, HeaderKind::Main)?;
    let header_end = reader.bytes_read();

    // Everything is checked before the payload is read, so a bad upload fails
    // without streaming the rest of it.
    let mut info = read_info(&signature, &header, (header_start, header_end))?;
    info.digests = reader.drain().map_err(RpmError::Io)?;
    Ok(info)
}

/// Reads the lead; a file shorter than the magic is "not an RPM" rather than
/// "truncated", since nothing says it ever was one.
fn read_lead(reader: &mut impl Read, lead: &mut [u8; LEAD_LEN]) -> Result<(), RpmError> {
    let mut filled = 0;
    while filled < LEAD_LEN {
        match reader.read(&mut lead[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(RpmError::from_io(e)),
        }
    }
    if filled == LEAD_LEN {
        return Ok(());
    }
    if filled < LEAD_MAGIC.len() || lead[..LEAD_MAGIC.len()] != LEAD_MAGIC {
        return Err(RpmError::NotRpm);
    }
    Err(RpmError::Truncated)
}

/// Everything but the digests, which [`inspect_rpm`] fills in once the payload
/// has been read.
fn read_info(
    signature: &Header,
    h: &Header,
    header_range: (u64, u64),
) -> Result<RpmInfo, RpmError> {
    // Name, version, release and arch end up in file names and keys: an empty
    // one is as useless as a missing one, but deserves its own message.
    let required = |tag: Tag| -> Result<String, RpmError> {
        match h.string(tag)? {
            None => Err(RpmError::MissingTag(tag.name)),
            Some(s) if s.is_empty() => Err(RpmError::Malformed(format!(
                "RPM header tag {} is empty",
                tag.name
            ))),
            Some(s) => Ok(s),
        }
    };
    let optional =
        |tag: Tag| -> Result<String, RpmError> { Ok(h.string(tag)?.unwrap_or_default()) };

    let name = required(tags::NAME)?;
    let version = required(tags::VERSION)?;
    let release = required(tags::RELEASE)?;
    let epoch = match h.number(tags::EPOCH)? {
        Some(e) => Some(u32::try_from(e).map_err(|_| {
            RpmError::Malformed(format!("RPM header tag EPOCH has value {e}, too large"))
        })?),
        None => None,
    };

    // rpm calls a package a source package when it has no SOURCERPM;
    // createrepo_c looks at SOURCEPACKAGE. rpmbuild sets both consistently, and
    // honouring either keeps odd packages out of the binary architectures.
    let source_rpm = h.string(tags::SOURCERPM)?;
    let is_source = source_rpm.is_none() || h.number(tags::SOURCEPACKAGE)?.unwrap_or(0) != 0;
    let arch = if is_source {
        "src".to_string()
    } else {
        required(tags::ARCH)?
    };
    let source_rpm = if is_source { None } else { source_rpm };

    let installed_size = match h.number(tags::LONGSIZE)? {
        Some(size) => size,
        None => h.number(tags::SIZE)?.unwrap_or(0),
    };
    // rpm 4 keeps the payload size in the signature header only (rpm merges it
    // into the main header when reading), so look in both places.
    let archive_size = [
        h.number(tags::LONGARCHIVESIZE)?,
        h.number(tags::ARCHIVESIZE)?,
        signature.number(tags::SIG_LONGARCHIVESIZE)?,
        signature.number(tags::SIG_PAYLOADSIZE)?,
    ]
    .into_iter()
    .flatten()
    .next()
    .unwrap_or(0);

    let files = read_files(h)?;
    let deps = read_deps(h, &files)?;
    let changelogs = read_changelogs(h)?;

    Ok(RpmInfo {
        name,
        epoch,
        version,
        release,
        arch,
        summary: optional(tags::SUMMARY)?,
        description: optional(tags::DESCRIPTION)?,
        license: optional(tags::LICENSE)?,
        url: optional(tags::URL)?,
        group: optional(tags::GROUP)?,
        vendor: optional(tags::VENDOR)?,
        packager: optional(tags::PACKAGER)?,
        buildhost: optional(tags::BUILDHOST)?,
        build_time: h.number(tags::BUILDTIME)?.unwrap_or(0),
        source_rpm,
        installed_size,
        archive_size,
        header_range,
        provides: deps.provides,
        requires: deps.requires,
        conflicts: deps.conflicts,
        obsoletes: deps.obsoletes,
        recommends: deps.recommends,
        suggests: deps.suggests,
        supplements: deps.supplements,
        enhances: deps.enhances,
        files,
        changelogs,
        digests: Digests::of(b""),
    })
}

/// Optional per-file numbers (modes, flags): absent means all zero; present
/// with another count than the file list is malformed. The count is checked
/// before the array is read, so a huge one costs nothing.
fn per_file(h: &Header, paths_tag: Tag, n: usize, tag: Tag) -> Result<Vec<u64>, RpmError> {
    if h.has(tag) && h.count(tag) != n {
        return Err(RpmError::count_mismatch(
            &[paths_tag, tag],
            &[n, h.count(tag)],
        ));
    }
    Ok(h.numbers(tag)?.unwrap_or_else(|| vec![0; n]))
}

fn read_files(h: &Header) -> Result<Vec<FileEntry>, RpmError> {
    for tag in [tags::BASENAMES, tags::DIRNAMES, tags::OLDFILENAMES] {
        if h.count(tag) > MAX_FILES {
            return Err(RpmError::too_many("files", h.count(tag), MAX_FILES));
        }
    }
    let (paths_tag, paths) = if let Some(basenames) = h.strings(tags::BASENAMES)? {
        if !h.has(tags::DIRINDEXES) {
            return Err(RpmError::Malformed(
                "RPM header has BASENAMES but no DIRINDEXES".into(),
            ));
        }
        if h.count(tags::DIRINDEXES) != basenames.len() {
            return Err(RpmError::count_mismatch(
                &[tags::BASENAMES, tags::DIRINDEXES],
                &[basenames.len(), h.count(tags::DIRINDEXES)],
            ));
        }
        let indexes = h.numbers(tags::DIRINDEXES)?.unwrap_or_default();
        let dirnames = h.strings(tags::DIRNAMES)?.ok_or_else(|| {
            RpmError::Malformed("RPM header has BASENAMES but no DIRNAMES".into())
        })?;
        let mut dirs = Vec::with_capacity(basenames.len());
        let mut total = 0usize;
        for (base, index) in basenames.iter().zip(&indexes) {
            let dir = usize::try_from(*index)
                .ok()
                .and_then(|i| dirnames.get(i))
                .ok_or_else(|| {
                    RpmError::Malformed(format!(
                        "RPM header file {base:?} has directory index {index}, but there are {} directories",
                        dirnames.len()
                    ))
                })?;
            total = total.saturating_add(dir.len() + base.len());
            dirs.push(dir);
        }
        if total > MAX_FILE_LIST_BYTES {
            return Err(RpmError::Malformed(format!(
                "RPM header file paths add up to {total} bytes, more than the limit of {MAX_FILE_LIST_BYTES}"
            )));
        }
        let paths = dirs
            .into_iter()
            .zip(&basenames)
            .map(|(dir, base)| format!("{dir}{base}"))
            .collect();
        (tags::BASENAMES, paths)
    } else if let Some(paths) = h.strings(tags::OLDFILENAMES)? {
        (tags::OLDFILENAMES, paths)
    } else {
        return Ok(Vec::new());
    };

    let modes = per_file(h, paths_tag, paths.len(), tags::FILEMODES)?;
    let flags = per_file(h, paths_tag, paths.len(), tags::FILEFLAGS)?;
    Ok(paths
        .into_iter()
        .zip(modes.into_iter().zip(flags))
        .map(|(path, (mode, flags))| {
            // S_ISDIR wins over the ghost flag, as in createrepo_c: a %ghost
            // directory is listed as a directory.
            let kind = if mode & 0o170_000 == 0o040_000 {
                FileKind::Dir
            } else if flags & FILE_GHOST != 0 {
                FileKind::Ghost
            } else {
                FileKind::File
            };
            FileEntry { path, kind }
        })
        .collect())
}

fn read_changelogs(h: &Header) -> Result<Vec<Changelog>, RpmError> {
    let counts = [
        h.count(tags::CHANGELOGTIME),
        h.count(tags::CHANGELOGNAME),
        h.count(tags::CHANGELOGTEXT),
    ];
    if counts[0] > MAX_CHANGELOGS {
        return Err(RpmError::too_many(
            "changelog entries",
            counts[0],
            MAX_CHANGELOGS,
        ));
    }
    if counts[1] != counts[0] || counts[2] != counts[0] {
        return Err(RpmError::count_mismatch(
            &[
                tags::CHANGELOGTIME,
                tags::CHANGELOGNAME,
                tags::CHANGELOGTEXT,
            ],
            &counts,
        ));
    }
    let times = h.numbers(tags::CHANGELOGTIME)?.unwrap_or_default();
    let names = h.strings(tags::CHANGELOGNAME)?.unwrap_or_default();
    let texts = h.strings(tags::CHANGELOGTEXT)?.unwrap_or_default();
    Ok(times
        .into_iter()
        .zip(names.into_iter().zip(texts))
        .map(|(time, (author, text))| Changelog { author, time, text })
        .collect())
}

#[cfg(test)]
mod malformed {
    use super::*;
    use crate::testutil::{HeaderBuilder, RawEntry, RpmBuilder, Value, tag};
    use std::io;

    fn inspect(bytes: &[u8]) -> Result<RpmInfo, RpmError> {
        inspect_rpm(bytes)
    }

    fn err(bytes: &[u8]) -> RpmError {
        inspect(bytes).expect_err("malformed input accepted")
    }

    #[test]
    fn reads_a_valid_package() {
        let rpm = RpmBuilder::rich("demo");
        let bytes = rpm.build();
        let info = inspect(&bytes).expect("valid");
        assert_eq!(info.nevra(), "demo-2:1.0-1.x86_64");
        assert_eq!(info.evr(), "2:1.0-1");
        assert_eq!(info.summary, "A <demo> & co");
        assert_eq!(info.source_rpm.as_deref(), Some("demo-1.0-1.src.rpm"));
        assert_eq!(info.archive_size, 4, "from the signature's PAYLOADSIZE");
        assert_eq!(info.installed_size, 1234);
        assert_eq!(info.digests, Digests::of(&bytes));
        let start = rpm.header_start() as u64;
        assert_eq!(
            info.header_range,
            (start, start + rpm.header.build().len() as u64)
        );
        let kinds: Vec<(&str, FileKind)> = info
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("/usr/bin/demo", FileKind::File),
                ("/usr/share/demo", FileKind::Dir),
                ("/usr/share/data", FileKind::File),
                ("/var/lib/demo/state", FileKind::Ghost),
            ]
        );
        let requires: Vec<(&str, bool)> = info
            .requires
            .iter()
            .map(|d| (d.name.as_str(), d.pre))
            .collect();
        // Own primary file and rpmlib() dropped; %pre require marked.
        assert_eq!(
            requires,
            [
                ("/usr/bin/sh", false),
                ("bash", false),
                ("libfoo", false),
                ("shadow-utils", true)
            ]
        );
        assert_eq!(info.requires[2].epoch.as_deref(), Some("1"));
        assert_eq!(info.requires[2].release.as_deref(), Some("4"));
        assert_eq!(info.recommends.len(), 1);
        assert_eq!(info.changelogs.len(), 2);
        assert_eq!(info.changelogs[0].text, "- newer");
    }

    #[test]
    fn reads_a_source_package() {
        let info = inspect(&RpmBuilder::source("demo").build()).expect("valid");
        assert_eq!(info.arch, "src");
        assert!(info.is_source());
        assert_eq!(info.files[0].path, "demo.spec");
    }

    #[test]
    fn bad_lead_magic() {
        let mut bytes = RpmBuilder::minimal("demo").build();
        bytes[0] = b'P';
        let e = err(&bytes);
        assert!(matches!(e, RpmError::NotRpm), "{e:?}");
        assert_eq!(e.to_string(), "not an RPM package: bad lead magic");
        assert!(matches!(err(b""), RpmError::NotRpm));
        assert!(matches!(err(b"PK\x03\x04 a zip file"), RpmError::NotRpm));
    }

    #[test]
    fn truncated_lead() {
        let bytes = RpmBuilder::minimal("demo").build();
        for cut in [4, 50, 95] {
            let e = err(&bytes[..cut]);
            assert!(matches!(e, RpmError::Truncated), "cut {cut}: {e:?}");
        }
        assert_eq!(err(&bytes[..50]).to_string(), "truncated RPM header");
    }

    #[test]
    fn unsupported_lead() {
        let mut rpm = RpmBuilder::minimal("demo");
        rpm.lead[4] = 2;
        let e = err(&rpm.build());
        assert!(matches!(e, RpmError::UnsupportedVersion(2)), "{e:?}");

        let mut rpm = RpmBuilder::minimal("demo");
        rpm.lead[79] = 1;
        let e = err(&rpm.build());
        assert_eq!(e.to_string(), "RPM lead names signature type 1, expected 5");
    }

    #[test]
    fn truncated_header() {
        let rpm = RpmBuilder::rich("demo");
        let bytes = rpm.build();
        let start = rpm.header_start();
        let end = start + rpm.header.build().len();
        // Inside the signature header, its padding, the main header's intro,
        // index and data store: all truncation.
        for cut in [100, 112, start - 1, start + 8, start + 40, end - 1] {
            let e = err(&bytes[..cut]);
            assert!(matches!(e, RpmError::Truncated), "cut {cut}: {e:?}");
        }
        // Cut exactly after the header: a package with an empty payload is
        // still well-formed as far as the headers go.
        assert!(inspect(&bytes[..end]).is_ok());
    }

    #[test]
    fn entry_outside_data_store() {
        let mut rpm = RpmBuilder::minimal("demo");
        rpm.header = rpm.header.raw_entry(RawEntry {
            tag: 1004,
            ty: 6,
            offset: 10_000,
            count: 1,
        });
        let e = err(&rpm.build());
        assert!(matches!(e, RpmError::Malformed(_)), "{e:?}");
        assert_eq!(
            e.to_string(),
            "RPM header index entry 5 (tag 1004) points outside the data store"
        );

        // An integer array running past the end of the store.
        let mut rpm = RpmBuilder::minimal("demo");
        rpm.header = rpm.header.raw_entry(RawEntry {
            tag: 1030,
            ty: 3,
            offset: 0,
            count: 1_000,
        });
        assert_eq!(
            err(&rpm.build()).to_string(),
            "RPM header index entry 5 (tag 1030) points outside the data store"
        );

        // The same in the signature header.
        let mut rpm = RpmBuilder::minimal("demo");
        rpm.signature = rpm.signature.raw_entry(RawEntry {
            tag: 1007,
            ty: 4,
            offset: 2,
            count: 1,
        });
        assert_eq!(
            err(&rpm.build()).to_string(),
            "RPM signature header index entry 1 (tag 1007) points outside the data store"
        );
    }

    #[test]
    fn absurd_sizes_are_refused_before_reading() {
        let mut rpm = RpmBuilder::minimal("demo");
        rpm.header = rpm.header.index_count_override(u32::MAX);
        let e = err(&rpm.build());
        assert_eq!(
            e.to_string(),
            "RPM header has 4294967295 index entries, more than the limit of 100000"
        );

        let mut rpm = RpmBuilder::minimal("demo");
        rpm.signature = rpm.signature.store_len_override(512 * 1024 * 1024);
        let e = err(&rpm.build());
        assert!(
            e.to_string()
                .starts_with("RPM signature header data store is 536870912 bytes"),
            "{e}"
        );

        // Within the limits but longer than the file: truncated, and cheap.
        let mut rpm = RpmBuilder::minimal("demo");
        rpm.header = rpm.header.store_len_override(MAX_DATA_STORE_FOR_TEST);
        assert!(matches!(err(&rpm.build()), RpmError::Truncated));
    }
    const MAX_DATA_STORE_FOR_TEST: u32 = crate::MAX_DATA_STORE;

    #[test]
    fn missing_name() {
        let mut rpm = RpmBuilder::minimal("demo");
        rpm.header.remove(tag::NAME);
        let e = err(&rpm.build());
        assert!(matches!(e, RpmError::MissingTag("NAME")), "{e:?}");
        assert_eq!(e.to_string(), "missing required tag NAME");

        let mut rpm = RpmBuilder::minimal("demo");
        rpm.header.remove(tag::ARCH);
        assert!(matches!(err(&rpm.build()), RpmError::MissingTag("ARCH")));

        let mut rpm = RpmBuilder::minimal("demo");
        rpm.header.set(tag::VERSION, Value::Str(String::new()));
        assert_eq!(
            err(&rpm.build()).to_string(),
            "RPM header tag VERSION is empty"
        );
    }

    #[test]
    fn bad_entries() {
        let with = |entry: RawEntry, extra: &[u8]| {
            let mut rpm = RpmBuilder::minimal("demo");
            rpm.header = rpm.header.extra_store(extra).raw_entry(entry);
            err(&rpm.build()).to_string()
        };
        let raw = |tag, ty, offset, count| RawEntry {
            tag,
            ty,
            offset,
            count,
        };
        assert_eq!(
            with(raw(1004, 42, 0, 1), b""),
            "RPM header index entry 5 (tag 1004) has unknown type 42"
        );
        assert_eq!(
            with(raw(1004, 0, 0, 1), b""),
            "RPM header index entry 5 (tag 1004) has unknown type 0"
        );
        assert_eq!(
            with(raw(1004, 6, 0, 2), b""),
            "RPM header index entry 5 (tag 1004) is a single string with count 2"
        );
        // The minimal header's store is 52 bytes; "abc" follows, unterminated.
        let store_len = RpmBuilder::minimal("demo").header.build().len() as u32 - 16 - 5 * 16;
        assert_eq!(
            with(raw(1004, 6, store_len, 1), b"abc"),
            "RPM header index entry 5 (tag 1004) has a string that is not NUL-terminated within the data store"
        );
        assert_eq!(
            with(raw(1004, 8, store_len, 3), b"a\0b\0c"),
            "RPM header index entry 5 (tag 1004) has a string that is not NUL-terminated within the data store"
        );
        assert_eq!(
            with(raw(1000, 6, 0, 1), b""),
            "RPM header index entry 5 (tag 1000) repeats a tag already in the header"
        );

        let mut rpm = RpmBuilder::minimal("demo");
        rpm.header.set(tag::NAME, Value::Int32(vec![7]));
        assert_eq!(
            err(&rpm.build()).to_string(),
            "RPM header tag NAME (1000) has type INT32, expected a string"
        );

        let mut rpm = RpmBuilder::minimal("demo");
        rpm.signature = rpm.signature.bad_magic();
        assert_eq!(
            err(&rpm.build()).to_string(),
            "RPM signature header has a bad magic number"
        );
    }

    #[test]
    fn inconsistent_arrays() {
        let mut rpm = RpmBuilder::rich("demo");
        rpm.header
            .set(tag::DIRINDEXES, Value::Int32(vec![0, 1, 1, 9]));
        assert_eq!(
            err(&rpm.build()).to_string(),
            "RPM header file \"state\" has directory index 9, but there are 3 directories"
        );

        let mut rpm = RpmBuilder::rich("demo");
        rpm.header.set(tag::REQUIREFLAGS, Value::Int32(vec![0]));
        assert_eq!(
            err(&rpm.build()).to_string(),
            "RPM header tags REQUIRENAME, REQUIREFLAGS, REQUIREVERSION have different counts (6, 1, 6)"
        );

        let mut rpm = RpmBuilder::rich("demo");
        rpm.header.remove(tag::CHANGELOGTEXT);
        assert!(matches!(err(&rpm.build()), RpmError::Malformed(_)));
    }

    #[test]
    fn weak_and_odd_dependencies() {
        let mut rpm = RpmBuilder::minimal("demo");
        rpm.header = rpm
            .header
            .strings(tag::PROVIDENAME, &["demo", "cap"])
            .int32(tag::PROVIDEFLAGS, &[8, 8])
            .strings(tag::PROVIDEVERSION, &["1.0-1", "x:1"])
            .strings(
                tag::REQUIRENAME,
                &[
                    "demo",
                    "a",
                    "a",
                    "a",
                    "legacy-weak",
                    "libc.so.6",
                    "libc.so.6(GLIBC_2.14)(64bit)",
                    "libc.so.6(GLIBC_2.2.5)(64bit)",
                    "z",
                ],
            )
            .int32(tag::REQUIREFLAGS, &[8, 0, 0, 0x40, 1 << 19, 0, 0, 0, 0])
            .strings(
                tag::REQUIREVERSION,
                &["1.0-1", "", "", "", "", "", "", "", ""],
            );
        let info = inspect(&rpm.build()).expect("valid");
        assert_eq!(info.provides.len(), 1, "bad epoch skipped");
        let names: Vec<(&str, bool)> = info
            .requires
            .iter()
            .map(|d| (d.name.as_str(), d.pre))
            .collect();
        assert_eq!(
            names,
            [
                ("a", false),
                ("a", true),
                ("z", false),
                ("libc.so.6(GLIBC_2.14)(64bit)", false)
            ],
            "self-provided, repeated and lower libc requires dropped"
        );
        assert_eq!(info.recommends[0].name, "legacy-weak");
    }

    #[test]
    fn source_failures_are_not_blamed_on_the_package() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("connection reset"))
            }
        }
        let bytes = RpmBuilder::rich("demo").build();
        for cut in [0, 2, 90, 120, bytes.len() - 2] {
            let reader = cairn_deb::SourceReader(Read::chain(&bytes[..cut], Failing));
            let e = inspect_rpm(reader).expect_err("source failed");
            assert!(matches!(e, RpmError::Io(_)), "cut {cut}: {e:?}");
        }
    }

    #[test]
    fn payload_is_streamed() {
        struct Lazy {
            head: io::Cursor<Vec<u8>>,
            remaining: u64,
        }
        impl Read for Lazy {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.head.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                let n = buf.len().min(self.remaining as usize);
                buf[..n].fill(0);
                self.remaining -= n as u64;
                Ok(n)
            }
        }
        let head = RpmBuilder::minimal("demo").build();
        let head_len = head.len() as u64;
        let size = 8 * 1024 * 1024;
        let info = inspect_rpm(Lazy {
            head: io::Cursor::new(head),
            remaining: size,
        })
        .expect("valid");
        assert_eq!(info.digests.size, head_len + size);
    }

    #[test]
    fn empty_header_builder_is_refused_politely() {
        let rpm = RpmBuilder {
            header: HeaderBuilder::new(),
            ..RpmBuilder::minimal("demo")
        };
        assert!(matches!(err(&rpm.build()), RpmError::MissingTag("NAME")));
    }
}

#[cfg(test)]
mod limits {
    use super::*;
    use crate::deps::MAX_DEPENDENCIES;
    use crate::testutil::{RpmBuilder, Value, tag};

    #[test]
    fn shared_long_directory_cannot_multiply_memory() {
        // One 1 MiB directory name shared by 100 files: 100 MiB of paths.
        let mut rpm = RpmBuilder::minimal("bomb");
        let dir = format!("/{}/", "d".repeat(1024 * 1024));
        rpm.header = rpm
            .header
            .tag(tag::DIRNAMES, Value::StrArray(vec![dir]))
            .tag(tag::BASENAMES, Value::StrArray(vec!["f".into(); 100]))
            .tag(tag::DIRINDEXES, Value::Int32(vec![0; 100]));
        let e = inspect_rpm(&rpm.build()[..]).expect_err("refused");
        assert!(
            e.to_string().starts_with("RPM header file paths add up to"),
            "{e}"
        );
    }

    #[test]
    fn too_many_dependencies() {
        let n = MAX_DEPENDENCIES + 1;
        let mut rpm = RpmBuilder::minimal("deps");
        rpm.header = rpm
            .header
            .tag(tag::PROVIDENAME, Value::StrArray(vec!["p".into(); n]))
            .tag(tag::PROVIDEFLAGS, Value::Int32(vec![0; n]))
            .tag(tag::PROVIDEVERSION, Value::StrArray(vec![String::new(); n]));
        let e = inspect_rpm(&rpm.build()[..]).expect_err("refused");
        assert_eq!(
            e.to_string(),
            format!("RPM header lists {n} dependencies, more than the limit of {MAX_DEPENDENCIES}")
        );
    }

    #[test]
    fn single_values_take_the_first_element() {
        let mut rpm = RpmBuilder::minimal("wide");
        rpm.header = rpm
            .header
            .tag(tag::SUMMARY, Value::I18n(vec![String::new(); 1000]))
            .tag(tag::EPOCH, Value::Int8(vec![7; 1000]));
        let info = inspect_rpm(&rpm.build()[..]).expect("valid");
        assert_eq!(info.epoch, Some(7));
        assert_eq!(info.summary, "");
    }
}
