//! The chart repository index (`index.yaml`) that `helm repo add` downloads and
//! `helm search repo` / `helm pull` read.

use crate::chart::ChartInfo;
use crate::metadata::helm_metadata;
use crate::semver;
use crate::yaml::to_yaml;
use serde_json::{Map, Value};
use std::cmp::Ordering;
use time::OffsetDateTime;

/// One `index.yaml` entry for a chart, as `helm repo index` writes it: Helm's view of
/// the Chart.yaml fields (see the crate docs) plus `urls: [url]`, `created` (RFC 3339
/// with nanoseconds, as Go writes times) and `digest` (SHA-256 hex of the `.tgz`).
///
/// Returned as JSON so that it can be stored as-is in a catalog and handed back to
/// [`render_index`]. `url` should be relative (`mychart-0.1.0.tgz`): Helm resolves it
/// against the repository URL, so the repository works under any prefix.
pub fn index_entry(info: &ChartInfo, url: &str, created: OffsetDateTime) -> Value {
    let mut entry = metadata_for(info);
    entry.insert("urls".into(), Value::Array(vec![Value::String(url.into())]));
    entry.insert("created".into(), Value::String(rfc3339_nano(created)));
    entry.insert("digest".into(), Value::String(info.digests.sha256.clone()));
    Value::Object(entry)
}

/// Helm's metadata for `info`, with name and version as inspected.
pub(crate) fn metadata_for(info: &ChartInfo) -> Map<String, Value> {
    // inspect_chart refused any chart with problems; a hand-built ChartInfo still gets
    // every field that could be read.
    let mut map = helm_metadata(&info.chart_yaml).map;
    map.insert("name".into(), Value::String(info.name.clone()));
    map.insert("version".into(), Value::String(info.version.clone()));
    map
}

/// The whole `index.yaml` for stored entries (from [`index_entry`]): `apiVersion: v1`,
/// `entries` grouped by chart name, each chart's versions newest first by SemVer
/// precedence (as Helm sorts them), and `generated`. Entries without a string `name`
/// cannot be served and are left out.
pub fn render_index(entries: &[Value], generated: OffsetDateTime) -> String {
    let mut by_name: Vec<(&str, Vec<&Value>)> = Vec::new();
    for entry in entries {
        let Some(name) = entry.get("name").and_then(Value::as_str) else {
            continue;
        };
        match by_name.iter_mut().find(|(n, _)| *n == name) {
            Some((_, list)) => list.push(entry),
            None => by_name.push((name, vec![entry])),
        }
    }
    let mut grouped = Map::new();
    for (name, mut list) in by_name {
        list.sort_by(|a, b| newest_first(a, b));
        grouped.insert(
            name.to_owned(),
            Value::Array(list.into_iter().cloned().collect()),
        );
    }
    let mut index = Map::new();
    index.insert("apiVersion".into(), Value::String("v1".into()));
    index.insert("entries".into(), Value::Object(grouped));
    index.insert("generated".into(), Value::String(rfc3339_nano(generated)));
    to_yaml(&Value::Object(index))
}

fn newest_first(a: &Value, b: &Value) -> Ordering {
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).unwrap_or("").to_owned();
    let (va, vb) = (text(a, "version"), text(b, "version"));
    // Ties (equal precedence, e.g. differing build metadata) are broken so that the
    // output does not depend on the order entries were stored in.
    compare_versions(&vb, &va)
        .then_with(|| vb.cmp(&va))
        .then_with(|| text(b, "created").cmp(&text(a, "created")))
}

/// Compares two chart versions by SemVer 2 precedence (build metadata ignored). A
/// version that is not SemVer sorts before (older than) every valid one, as in Helm;
/// two invalid ones compare as text.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    match (semver::parse(a), semver::parse(b)) {
        (Ok(a), Ok(b)) => a.cmp_precedence(&b),
        (Ok(_), Err(_)) => Ordering::Greater,
        (Err(_), Ok(_)) => Ordering::Less,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

/// Go's `time.RFC3339Nano`, which is how Helm writes `created` and `generated`:
/// fractional seconds without trailing zeros (none if zero), `Z` for UTC.
pub(crate) fn rfc3339_nano(t: OffsetDateTime) -> String {
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let nanos = t.nanosecond();
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    let offset = t.offset();
    if offset.is_utc() {
        out.push('Z');
    } else {
        let (h, m, _) = offset.as_hms();
        let sign = if offset.is_negative() { '-' } else { '+' };
        out.push_str(&format!(
            "{sign}{:02}:{:02}",
            h.unsigned_abs(),
            m.unsigned_abs()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::{DEFAULT_BUDGET, load};
    use cairn_deb::Digests;
    use serde_json::json;
    use time::macros::datetime;

    fn info(yaml: &str) -> ChartInfo {
        let Ok(Some(Value::Object(chart_yaml))) = load(yaml, DEFAULT_BUDGET) else {
            panic!("bad test yaml");
        };
        let field = |k: &str| chart_yaml.get(k).and_then(Value::as_str).map(str::to_owned);
        ChartInfo {
            name: field("name").unwrap_or_default(),
            version: field("version").unwrap_or_default(),
            app_version: field("appVersion"),
            description: field("description"),
            chart_yaml_text: yaml.into(),
            chart_yaml: chart_yaml.clone(),
            digests: Digests::of(yaml.as_bytes()),
        }
    }

    #[test]
    fn entry_has_helm_fields() {
        let i = info(
            "apiVersion: v2\nname: demo\nversion: 0.1.0\nappVersion: \"1.16.0\"\n\
             description: A Helm chart\ntype: application\nengine: gotpl\n",
        );
        let entry = index_entry(
            &i,
            "demo-0.1.0.tgz",
            datetime!(2024-05-06 07:08:09.123456789 UTC),
        );
        assert_eq!(
            entry,
            json!({
                "apiVersion": "v2", "appVersion": "1.16.0", "description": "A Helm chart",
                "name": "demo", "type": "application", "version": "0.1.0",
                "urls": ["demo-0.1.0.tgz"], "created": "2024-05-06T07:08:09.123456789Z",
                "digest": i.digests.sha256,
            })
        );
    }

    #[test]
    fn times_are_written_like_go() {
        assert_eq!(
            rfc3339_nano(datetime!(2024-05-06 07:08:09 UTC)),
            "2024-05-06T07:08:09Z"
        );
        assert_eq!(
            rfc3339_nano(datetime!(2024-05-06 07:08:09.5 UTC)),
            "2024-05-06T07:08:09.5Z"
        );
        assert_eq!(
            rfc3339_nano(datetime!(2024-05-06 07:08:09.000000010 -05:30)),
            "2024-05-06T07:08:09.00000001-05:30"
        );
    }

    #[test]
    fn index_groups_and_orders_versions() {
        let at = datetime!(2024-01-01 0:00 UTC);
        let entries: Vec<Value> = [
            ("b", "0.9.0"),
            ("a", "0.2.0"),
            ("a", "0.10.0"),
            ("a", "0.10.0-rc.1"),
            ("a", "1.0.0"),
        ]
        .iter()
        .map(|(n, v)| {
            index_entry(
                &info(&format!("apiVersion: v2\nname: {n}\nversion: {v}\n")),
                &format!("{n}-{v}.tgz"),
                at,
            )
        })
        .chain([json!({"version": "1.0.0"})])
        .collect();
        let text = render_index(&entries, datetime!(2024-02-03 04:05:06.7 UTC));
        let Ok(Some(parsed)) = load(&text, DEFAULT_BUDGET) else {
            panic!("{text}");
        };
        assert_eq!(parsed["apiVersion"], "v1");
        assert_eq!(parsed["generated"], "2024-02-03T04:05:06.7Z");
        let versions: Vec<&str> = parsed["entries"]["a"]
            .as_array()
            .expect("a list")
            .iter()
            .filter_map(|e| e["version"].as_str())
            .collect();
        assert_eq!(versions, ["1.0.0", "0.10.0", "0.10.0-rc.1", "0.2.0"]);
        assert_eq!(
            parsed["entries"].as_object().map(|m| m.len()),
            Some(2),
            "the entry without a name is left out"
        );
        assert!(
            text.starts_with("apiVersion: v1\nentries:\n  a:\n  - apiVersion: v2\n"),
            "{text}"
        );
        assert!(
            text.ends_with("generated: \"2024-02-03T04:05:06.7Z\"\n"),
            "{text}"
        );
    }

    #[test]
    fn empty_index_is_valid() {
        let text = render_index(&[], datetime!(2024-02-03 04:05:06 UTC));
        assert_eq!(
            text,
            "apiVersion: v1\nentries: {}\ngenerated: \"2024-02-03T04:05:06Z\"\n"
        );
    }

    #[test]
    fn versions_compare_by_precedence() {
        assert_eq!(compare_versions("1.10.0", "1.9.0"), Ordering::Greater);
        assert_eq!(compare_versions("1.0.0-rc.1", "1.0.0"), Ordering::Less);
        assert_eq!(compare_versions("1.0.0+a", "1.0.0+b"), Ordering::Equal);
        assert_eq!(compare_versions("banana", "0.0.1"), Ordering::Less);
        assert_eq!(compare_versions("0.0.1", "banana"), Ordering::Greater);
        assert_eq!(compare_versions("a", "b"), Ordering::Less);
    }
}
