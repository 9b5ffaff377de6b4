//! Debian package formats, as Cairn needs them: streaming inspection of `.deb` files
//! (ar container, `control.tar.{gz,xz,zst}`, control fields, digests), `Packages`
//! stanzas and `Release` files for an APT repository, and the index compressors.
//!
//! Nothing here does I/O beyond the `Read` it is handed, so the same code runs on an
//! in-memory upload and on a 200 MB object streamed from S3.

mod ar;
mod compress;
mod control;
mod deb;
mod digest;
mod dsc;
mod release;

pub use compress::{gzip, xz, zstd};
pub use control::{Control, ControlError};
pub use deb::{
    DebError, DebInfo, MAX_CONTROL_ARCHIVE, MAX_CONTROL_FILE, SourceError, SourceReader,
    find_in_chain, inspect_deb, is_source_error,
};
pub use digest::{Digests, HashingReader, ListedDigests, sha256_hex};
pub use dsc::{DscError, DscFile, DscInfo, SourceFile, inspect_dsc, sources_stanza};
pub use release::{IndexFile, ReleaseFields, packages_stanza, render_release};
