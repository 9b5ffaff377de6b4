//! Helm chart repositories, as Cairn serves them: streaming inspection of uploaded
//! chart packages (`.tgz`), the `index.yaml` that `helm repo add` reads, and the
//! provenance files (`.tgz.prov`) that `helm pull --verify` checks.
//!
//! Helm 3 reads and writes all of these through go-yaml v2 and Go's JSON encoder, so
//! this crate reproduces their rules (YAML 1.1 scalars, Go number formatting, key
//! order, quoting and line folding) rather than using a generic YAML library's: the
//! index entries it renders equal `helm repo index`'s field for field, and the
//! provenance text is byte for byte what `helm package --sign` signs. Parsing uses
//! `saphyr-parser`'s event stream (pure Rust, maintained, no `unsafe`), with alias
//! and depth budgets because Chart.yaml comes from uploaders.
//!
//! Nothing here does I/O beyond the `Read` it is handed.

mod chart;
mod error;
mod external;
mod index;
mod metadata;
mod provenance;
mod semver;
mod yaml;

pub use chart::{ChartInfo, MAX_CHART_BYTES, MAX_ENTRIES, MAX_FILE_BYTES, inspect_chart};
pub use error::ChartError;
pub use external::{ChartVersion, MAX_EXTERNAL_VERSIONS, parse_external_index};
pub use index::{compare_versions, index_entry, render_index};
pub use provenance::{MAX_PROVENANCE_BYTES, check_provenance, provenance_body};
