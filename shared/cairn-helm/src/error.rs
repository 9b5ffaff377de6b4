//! Why a chart or a provenance file is refused.

use std::io;

/// Why an uploaded chart (or its provenance file) is not acceptable. Every variant
/// but [`ChartError::Io`] is the uploader's to fix, and its message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// The file is not gzip-compressed.
    #[error("not a Helm chart: {0}")]
    NotGzip(&'static str),
    /// The gzip stream does not hold a tar archive.
    #[error("not a Helm chart: the gzip data is not a tar archive ({0})")]
    NotTar(String),
    /// The file ends early.
    #[error("truncated chart archive: the file ends before the archive does")]
    Truncated,
    /// The compressed stream or the archive is damaged.
    #[error("corrupt chart archive: {0}")]
    Corrupt(String),
    /// An entry whose path or type Cairn (and Helm) will not accept.
    #[error("chart archive entry {path:?} {reason}")]
    Entry {
        /// The entry's path as stored in the archive.
        path: String,
        /// What is wrong with it, e.g. "escapes the chart directory".
        reason: String,
    },
    /// A size or entry-count limit is exceeded.
    #[error("chart archive too large: {0}")]
    TooLarge(String),
    /// The archive has no `<chart>/Chart.yaml`.
    #[error("no Chart.yaml in chart archive")]
    NoChartYaml,
    /// Chart.yaml is unreadable or breaks Helm's rules.
    #[error("invalid Chart.yaml: {0}")]
    ChartYaml(String),
    /// The uploaded file's name is not `{name}-{version}.tgz`.
    #[error(
        "file name {found} does not match chart {name} version {version} (expected {name}-{version}.tgz)"
    )]
    FileName {
        /// The name the file was uploaded as.
        found: String,
        /// The chart name from Chart.yaml.
        name: String,
        /// The chart version from Chart.yaml.
        version: String,
    },
    /// The provenance file is malformed or does not vouch for this chart.
    #[error("invalid provenance file: {0}")]
    Provenance(String),
    /// Reading the upload failed: a storage or network problem, not the chart's fault.
    #[error("reading chart: {0}")]
    Io(io::Error),
}

impl ChartError {
    /// Whether retrying may help: only failures of the source are not the uploader's.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ChartError::Io(_))
    }
}
