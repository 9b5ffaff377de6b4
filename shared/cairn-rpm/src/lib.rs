//! RPM package formats, as Cairn needs them: streaming inspection of `.rpm` files
//! (lead, signature header, main header, digests of the whole file) and the
//! YUM/DNF repository metadata built from them (`primary.xml`, `filelists.xml`,
//! `other.xml` and `repomd.xml`).
//!
//! The metadata mirrors what `createrepo_c` 0.x writes for the same package, byte
//! for byte where it can (`tests/createrepo.rs` checks this against the real tool),
//! so that dnf, yum and libsolv read Cairn's repositories exactly as they read a
//! repository made by the usual tooling.
//!
//! Nothing here does I/O beyond the `Read` it is handed, so the same code runs on
//! an in-memory upload and on a large object streamed from S3; memory use is
//! bounded by the header size limits, whatever the payload size.

mod deps;
mod error;
mod header;
mod inspect;
mod repodata;
mod vercmp;
mod xml;

#[cfg(any(test, feature = "testutil"))]
pub mod testutil;

pub use cairn_deb::Digests;
pub use deps::{DepFlag, Dependency, MAX_DEPENDENCIES};
pub use error::RpmError;
pub use header::{MAX_DATA_STORE, MAX_INDEX_ENTRIES};
pub use inspect::{
    Changelog, FileEntry, FileKind, MAX_CHANGELOGS, MAX_FILE_LIST_BYTES, MAX_FILES, RpmInfo,
    inspect_rpm,
};
pub use repodata::{
    CHANGELOG_LIMIT, RepomdEntry, document_frame, filelists_document, is_primary_file,
    other_document, primary_document, repomd_xml,
};
pub use vercmp::rpmvercmp;
