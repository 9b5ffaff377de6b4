//! Streaming inspection of a packaged chart (`.tgz`): one pass over the upload checks
//! the gzip and tar layers, refuses entries that could escape or confuse an unpacker,
//! enforces Helm's size limits, parses Chart.yaml, and hashes the whole file.

use crate::error::ChartError;
use crate::metadata::helm_metadata;
use crate::yaml;
use cairn_deb::{Digests, HashingReader, find_in_chain, is_source_error};
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::io::{self, Read};

/// Helm 3's loader (3.17, the version the tests run) refuses a chart whose files add up
/// to more than 100 MiB once decompressed, or any single file over 5 MiB:
/// `MaxDecompressedChartSize = 100 * 1024 * 1024` and
/// `MaxDecompressedFileSize = 5 * 1024 * 1024` in helm.sh/helm/v3 pkg/chart/loader/archive.go
/// (Helm 4 keeps the total and deprecates the per-file limit). A chart Helm would refuse
/// to load is useless in a repository, so the same limits apply at upload.
pub const MAX_CHART_BYTES: u64 = 100 * 1024 * 1024;
/// See [`MAX_CHART_BYTES`].
pub const MAX_FILE_BYTES: u64 = 5 * 1024 * 1024;
/// Helm has no entry limit; this one bounds the per-entry bookkeeping. Real charts have
/// tens to a few hundred files.
pub const MAX_ENTRIES: usize = 10_000;
/// The tar stream also carries headers, padding and long-name records beyond the file
/// contents; everything the decompressor yields is capped so that a gzip bomb hidden
/// in those records (which the tar reader buffers) cannot exhaust memory.
const MAX_STREAM_BYTES: u64 = MAX_CHART_BYTES + 16 * 1024 * 1024;

/// The limits in force; tests shrink them to exercise them cheaply.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub chart_bytes: u64,
    pub file_bytes: u64,
    pub entries: usize,
    pub stream_bytes: u64,
}

const HELM_LIMITS: Limits = Limits {
    chart_bytes: MAX_CHART_BYTES,
    file_bytes: MAX_FILE_BYTES,
    entries: MAX_ENTRIES,
    stream_bytes: MAX_STREAM_BYTES,
};

/// What Cairn keeps of an uploaded chart.
#[derive(Debug, Clone)]
pub struct ChartInfo {
    /// Chart name (Chart.yaml `name`, equal to the archive's top directory).
    pub name: String,
    /// Chart version, SemVer 2.
    pub version: String,
    /// Chart.yaml `appVersion`, as Helm reads it.
    pub app_version: Option<String>,
    /// Chart.yaml `description`, as Helm reads it.
    pub description: Option<String>,
    /// Every Chart.yaml field, parsed (YAML 1.1 scalars, as Helm reads them), including
    /// fields Helm ignores such as `engine` or `tillerVersion`.
    pub chart_yaml: Map<String, Value>,
    /// Chart.yaml as uploaded (without a UTF-8 byte-order mark, which Helm strips too).
    pub chart_yaml_text: String,
    /// Size and digests of the whole `.tgz`.
    pub digests: Digests,
}

/// Reads a packaged chart from `source` to its end and validates it. `filename` is the
/// name it was uploaded as, which must be `{name}-{version}.tgz`.
///
/// Memory stays bounded whatever the input: file contents are streamed and dropped,
/// only Chart.yaml (at most 5 MiB) is kept.
pub fn inspect_chart<R: Read>(filename: &str, source: R) -> Result<ChartInfo, ChartError> {
    inspect_with_limits(filename, source, HELM_LIMITS)
}

pub(crate) fn inspect_with_limits<R: Read>(
    filename: &str,
    source: R,
    limits: Limits,
) -> Result<ChartInfo, ChartError> {
    let mut hashing = HashingReader::new(source);
    let mut magic = [0u8; 3];
    let got = read_up_to(&mut hashing, &mut magic).map_err(|e| classify(e, false))?;
    if got == 0 {
        return Err(ChartError::NotGzip("the file is empty"));
    }
    if magic[..got] != [0x1f, 0x8b, 0x08][..got] || got < 3 {
        return Err(ChartError::NotGzip("not a gzip file"));
    }

    let found = {
        let raw = io::Cursor::new(magic).chain(&mut hashing);
        let decoded = Capped {
            inner: flate2::read::MultiGzDecoder::new(raw),
            cap: limits.stream_bytes,
            remaining: limits.stream_bytes,
        };
        let mut archive = tar::Archive::new(decoded);
        let found = read_entries(&mut archive, filename, limits)?;
        // Reading on to the end checks the gzip trailer (CRC, length) and any further
        // gzip members, so a damaged or truncated tail is caught too.
        io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(|e| classify(e, true))?;
        found
    };
    let digests = hashing.drain().map_err(|e| classify(e, true))?;
    let meta = found.meta;
    let text_field = |key: &str| meta.get(key).and_then(Value::as_str).map(str::to_owned);
    Ok(ChartInfo {
        name: found.name,
        version: found.version,
        app_version: text_field("appVersion"),
        description: text_field("description"),
        chart_yaml: found.chart_yaml,
        chart_yaml_text: found.chart_yaml_text,
        digests,
    })
}

struct Found {
    name: String,
    version: String,
    meta: Map<String, Value>,
    chart_yaml: Map<String, Value>,
    chart_yaml_text: String,
}

fn read_entries<R: Read>(
    archive: &mut tar::Archive<R>,
    filename: &str,
    limits: Limits,
) -> Result<Found, ChartError> {
    let mut top: Option<String> = None;
    let mut files: HashSet<String> = HashSet::new();
    let mut total: u64 = 0;
    let mut count = 0usize;
    let mut found: Option<Found> = None;

    let entries = archive.entries().map_err(|e| classify(e, true))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| {
            if count == 0 && !is_source_error(&e) && e.kind() != io::ErrorKind::UnexpectedEof {
                ChartError::NotTar(e.to_string())
            } else {
                classify(e, true)
            }
        })?;
        count += 1;
        if count > limits.entries {
            return Err(ChartError::TooLarge(format!(
                "more than {} entries",
                limits.entries
            )));
        }
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        }
        let raw_path = entry.path_bytes().into_owned();
        let path = String::from_utf8(raw_path).map_err(|e| ChartError::Entry {
            path: String::from_utf8_lossy(e.as_bytes()).into_owned(),
            reason: "has a name that is not UTF-8".into(),
        })?;
        let is_file = kind.is_file() || kind.is_contiguous();
        if !is_file && !kind.is_dir() {
            return Err(entry_error(&path, type_refusal(kind)));
        }
        let parts = path_parts(&path).map_err(|reason| entry_error(&path, reason))?;
        match &top {
            None => top = Some(parts[0].to_owned()),
            Some(top) if top != parts[0] => {
                return Err(entry_error(
                    &path,
                    format!("is outside the chart directory {top:?}"),
                ));
            }
            Some(_) => {}
        }
        if !is_file {
            continue;
        }
        if parts.len() == 1 {
            return Err(entry_error(&path, "is outside the chart directory".into()));
        }
        let size = entry.size();
        if size > limits.file_bytes {
            return Err(ChartError::TooLarge(format!(
                "{path:?} is {size} bytes; Helm refuses files over {} bytes",
                limits.file_bytes
            )));
        }
        total += size;
        if total > limits.chart_bytes {
            return Err(ChartError::TooLarge(format!(
                "files add up to more than {} bytes, Helm's limit",
                limits.chart_bytes
            )));
        }
        let clean = parts.join("/");
        if !files.insert(clean.clone()) {
            return Err(entry_error(&path, "appears twice in the archive".into()));
        }

        if parts.len() == 2 && parts[1] == "Chart.yaml" {
            let mut bytes = Vec::new();
            let read = (&mut entry)
                .take(limits.file_bytes)
                .read_to_end(&mut bytes)
                .map_err(|e| classify(e, true))?;
            if (read as u64) < size {
                return Err(ChartError::Truncated);
            }
            found = Some(parse_chart_yaml(bytes, parts[0], filename)?);
        } else {
            let read = io::copy(&mut entry, &mut io::sink()).map_err(|e| classify(e, true))?;
            if read < size {
                return Err(ChartError::Truncated);
            }
        }
    }
    if count == 0 {
        return Err(ChartError::NotTar("the archive is empty".into()));
    }
    found.ok_or(ChartError::NoChartYaml)
}

fn parse_chart_yaml(bytes: Vec<u8>, top: &str, filename: &str) -> Result<Found, ChartError> {
    let mut text = String::from_utf8(bytes)
        .map_err(|_| ChartError::ChartYaml("Chart.yaml is not UTF-8 text".into()))?;
    if text.starts_with('\u{feff}') {
        text.drain(..'\u{feff}'.len_utf8());
    }
    let chart_yaml = match yaml::load(&text, yaml::DEFAULT_BUDGET).map_err(ChartError::ChartYaml)? {
        Some(Value::Object(map)) => map,
        None => return Err(ChartError::ChartYaml("Chart.yaml is empty".into())),
        Some(_) => {
            return Err(ChartError::ChartYaml(
                "Chart.yaml must be a mapping of fields".into(),
            ));
        }
    };
    let helm = helm_metadata(&chart_yaml);
    if !helm.problems.is_empty() {
        return Err(ChartError::ChartYaml(helm.problems.join("; ")));
    }
    let field = |key: &str| {
        helm.map
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let (name, version) = (field("name"), field("version"));
    if name != top {
        return Err(ChartError::ChartYaml(format!(
            "chart name {name:?} does not match the archive's directory {top:?}"
        )));
    }
    if filename != format!("{name}-{version}.tgz") {
        return Err(ChartError::FileName {
            found: filename.to_owned(),
            name,
            version,
        });
    }
    Ok(Found {
        name,
        version,
        meta: helm.map,
        chart_yaml,
        chart_yaml_text: text,
    })
}

fn entry_error(path: &str, reason: String) -> ChartError {
    ChartError::Entry {
        path: path.to_owned(),
        reason,
    }
}

/// Helm's archive loader does not look at entry types: it skips directories and PAX
/// headers and reads any other entry's data as a file, so a link loads as an empty
/// file and is never followed. `helm package` follows symlinks and refuses irregular
/// files ("cannot load irregular file"), so Helm never produces links or devices.
/// Refusing them costs nothing and protects any unpacker that would honour them.
fn type_refusal(kind: tar::EntryType) -> String {
    let what = match kind {
        tar::EntryType::Symlink => "a symbolic link",
        tar::EntryType::Link => "a hard link",
        tar::EntryType::Char | tar::EntryType::Block => "a device",
        tar::EntryType::Fifo => "a FIFO",
        _ => "of an unsupported type",
    };
    format!("is {what}; charts may contain only regular files and directories")
}

/// The components of a safe entry path: relative, no `..` or `.`, `/` separators.
fn path_parts(path: &str) -> Result<Vec<&str>, String> {
    if path.contains('\\') {
        // Helm would read these as Windows separators and re-split the path.
        return Err("contains a backslash".into());
    }
    let bytes = path.as_bytes();
    if path.starts_with('/')
        || (bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':')
    {
        return Err("is an absolute path".into());
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return Err("has an empty name".into());
    }
    if parts.contains(&"..") {
        return Err("escapes the chart directory".into());
    }
    if parts.contains(&".") {
        return Err("has a \".\" path component".into());
    }
    Ok(parts)
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Caps the decompressed stream; see [`MAX_STREAM_BYTES`].
struct Capped<R> {
    inner: R,
    cap: u64,
    remaining: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("decompressed data exceeds {0} bytes")]
struct OverCap(u64);

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let allowed = usize::try_from(self.remaining.saturating_add(1))
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.inner.read(&mut buf[..allowed])?;
        if n as u64 > self.remaining {
            return Err(io::Error::other(OverCap(self.cap)));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Sorts an I/O error from the gzip/tar layers into the uploader's fault or ours.
fn classify(e: io::Error, started: bool) -> ChartError {
    if is_source_error(&e) {
        return ChartError::Io(e);
    }
    if let Some(over) = find_in_chain::<OverCap>(&e) {
        return ChartError::TooLarge(over.to_string());
    }
    match e.kind() {
        io::ErrorKind::UnexpectedEof => ChartError::Truncated,
        _ if started => ChartError::Corrupt(e.to_string()),
        _ => ChartError::Io(e),
    }
}

#[cfg(test)]
mod tests;
