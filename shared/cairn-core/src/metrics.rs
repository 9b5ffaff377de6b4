//! CloudWatch metrics in the Embedded Metric Format (EMF): one JSON line on stdout per
//! measurement, which Lambda's log delivery turns into metrics (no API call, no
//! permission, nothing to wait for: a log format, so no AWS SDK here). One dimension,
//! `Function`; the repository or hook goes in as a property, searchable in the logs but
//! not a dimension (a dimension per repository would be a metric per repository, paid
//! monthly). docs/operations.md lists the metrics and the alarms that watch them.

use std::sync::OnceLock;

use serde_json::{Map, Value, json};

static FUNCTION: OnceLock<&'static str> = OnceLock::new();

/// Names the function this process runs (`metadata-sync`), for every record it emits:
/// Cairn's name for it, stable unlike the deployed name (stack prefix, random suffix).
/// Set once at cold start; later calls change nothing.
pub fn set_function(name: &'static str) {
    let _ = FUNCTION.set(name);
}

/// The namespace of Cairn's metrics unless [`set_namespace`] names another (the
/// template gives each stack its own: `Cairn/<stack>`).
pub const NAMESPACE: &str = "Cairn";

static NAMESPACE_SET: OnceLock<String> = OnceLock::new();

/// Sets the namespace of every record this process emits, once at cold start.
pub fn set_namespace(namespace: &str) {
    if !namespace.is_empty() {
        let _ = NAMESPACE_SET.set(namespace.to_string());
    }
}

fn namespace() -> &'static str {
    NAMESPACE_SET.get().map_or(NAMESPACE, String::as_str)
}

/// The unit of a metric value, as CloudWatch names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// A number of things.
    Count,
    /// A duration.
    Milliseconds,
    /// A size.
    Bytes,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Bytes => "Bytes",
        }
    }
}

/// One EMF record: a few values measured together, for one function.
#[derive(Clone, Debug)]
pub struct Metrics {
    function: String,
    values: Vec<(&'static str, f64, Unit)>,
    properties: Map<String, Value>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A record for this process's function ([`set_function`]; `cairn` if unset).
    pub fn new() -> Self {
        Self::for_function(FUNCTION.get().copied().unwrap_or("cairn"))
    }

    /// A record for the named function.
    pub fn for_function(function: &str) -> Self {
        Self {
            function: function.to_string(),
            values: Vec::new(),
            properties: Map::new(),
        }
    }

    /// Adds a value.
    pub fn value(mut self, name: &'static str, value: f64, unit: Unit) -> Self {
        self.values.push((name, value, unit));
        self
    }

    /// Adds a count.
    pub fn count(self, name: &'static str, value: u64) -> Self {
        self.value(name, value as f64, Unit::Count)
    }

    /// Adds a duration.
    pub fn millis(self, name: &'static str, value: u128) -> Self {
        self.value(name, value as f64, Unit::Milliseconds)
    }

    /// Adds a size.
    pub fn bytes(self, name: &'static str, value: u64) -> Self {
        self.value(name, value as f64, Unit::Bytes)
    }

    /// Adds a property: in the log line, not a dimension.
    pub fn property(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.properties.insert(name.to_string(), value.into());
        self
    }

    /// The EMF line, timestamped `timestamp_ms` (milliseconds since the epoch).
    pub fn to_line(&self, timestamp_ms: i64) -> String {
        let mut root = self.properties.clone();
        let definitions: Vec<Value> = self
            .values
            .iter()
            .map(|(name, _, unit)| json!({"Name": name, "Unit": unit.as_str()}))
            .collect();
        for (name, value, _) in &self.values {
            root.insert((*name).to_string(), json!(value));
        }
        root.insert("Function".into(), json!(self.function));
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": namespace(),
                    "Dimensions": [["Function"]],
                    "Metrics": definitions,
                }],
            }),
        );
        Value::Object(root).to_string()
    }

    /// Writes the record to stdout, where Lambda's log delivery picks it up.
    pub fn emit(&self) {
        if self.values.is_empty() {
            return;
        }
        let now = time::OffsetDateTime::now_utc();
        let millis = (now.unix_timestamp_nanos() / 1_000_000) as i64;
        println!("{}", self.to_line(millis));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_one_emf_line_with_its_values_and_properties() {
        let line = Metrics::for_function("metadata-sync")
            .millis("PublishDuration", 412)
            .bytes("PublishBytes", 1 << 20)
            .count("PackagesPublished", 3)
            .property("repository", "release/3.0/ubuntu/jammy")
            .to_line(1_700_000_000_000);
        assert!(!line.contains('\n'));
        let record: Value = serde_json::from_str(&line).expect("one JSON object");
        assert_eq!(record["Function"], "metadata-sync");
        assert_eq!(record["PublishDuration"], 412.0);
        assert_eq!(record["PublishBytes"], 1048576.0);
        assert_eq!(record["PackagesPublished"], 3.0);
        assert_eq!(record["repository"], "release/3.0/ubuntu/jammy");
        let aws = &record["_aws"];
        assert_eq!(aws["Timestamp"], 1_700_000_000_000i64);
        let directive = &aws["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Cairn");
        assert_eq!(directive["Dimensions"], json!([["Function"]]));
        assert_eq!(
            directive["Metrics"],
            json!([
                {"Name": "PublishDuration", "Unit": "Milliseconds"},
                {"Name": "PublishBytes", "Unit": "Bytes"},
                {"Name": "PackagesPublished", "Unit": "Count"},
            ])
        );
    }

    #[test]
    fn a_property_cannot_replace_the_dimension_or_the_directive() {
        let line = Metrics::for_function("ingest-worker")
            .count("IngestFailures", 1)
            .property("Function", "forged")
            .property("_aws", "forged")
            .to_line(0);
        let record: Value = serde_json::from_str(&line).expect("one JSON object");
        assert_eq!(record["Function"], "ingest-worker");
        assert_eq!(record["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Cairn");
    }
}
