//! Reading another chart repository's `index.yaml` (an external repository Cairn
//! indexes): its charts and their versions, checked as untrusted input. The YAML
//! loader's alias and depth budgets stop "billion laughs" and deep nesting; the
//! caller bounds the bytes before parsing.

use crate::yaml::{Budget, load};
use serde_json::Value;

/// Bounds on an external index, beyond its size in bytes.
pub const EXTERNAL_BUDGET: Budget = Budget {
    // About 40 nodes per version: room for 25,000 versions.
    max_nodes: 1_000_000,
    max_depth: 32,
};
/// Most chart versions one index may list.
pub const MAX_EXTERNAL_VERSIONS: usize = 25_000;
/// Longest chart name or version kept.
const MAX_NAME: usize = 100;
/// Longest description kept (longer ones are cut).
const MAX_DESCRIPTION: usize = 500;

/// One version of a chart as an index lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChartVersion {
    /// The chart's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The version of the application it packages.
    #[serde(default)]
    pub app_version: String,
    /// What it is.
    #[serde(default)]
    pub description: String,
    /// The package's SHA-256, as the index states it.
    #[serde(default)]
    pub digest: String,
    /// When it was packaged, as the index states it.
    #[serde(default)]
    pub created: String,
    /// Where the package is (the first URL, relative ones as written).
    #[serde(default)]
    pub url: String,
}

fn field(entry: &Value, key: &str) -> String {
    match entry.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn sane(what: &str, value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= MAX_NAME
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {:?} is not a chart {what} (letters, digits, '.', '_', '-', '+', at most \
             {MAX_NAME} characters)",
            value.chars().take(MAX_NAME).collect::<String>()
        ))
    }
}

/// The chart versions `text` (an `index.yaml`) lists, sorted by chart and version,
/// or why it is no chart repository index: not YAML, over the budgets, no
/// `apiVersion: v1` and `entries` map, an entry without a name or version or with
/// one that is not sane, more than [`MAX_EXTERNAL_VERSIONS`], or a version twice.
pub fn parse_external_index(text: &str) -> Result<Vec<ChartVersion>, String> {
    let doc = load(text, EXTERNAL_BUDGET)?.ok_or("the index is empty")?;
    if doc.get("apiVersion").and_then(Value::as_str) != Some("v1") {
        return Err("not a Helm chart repository index: no `apiVersion: v1`".into());
    }
    let entries = doc
        .get("entries")
        .and_then(Value::as_object)
        .ok_or("not a Helm chart repository index: no `entries` map")?;
    let mut out = Vec::new();
    for (name, versions) in entries {
        sane("name", name)?;
        let versions = versions
            .as_array()
            .ok_or_else(|| format!("entries.{name} is not a list of versions"))?;
        for entry in versions {
            if !entry.is_object() {
                return Err(format!(
                    "entries.{name} lists something that is not a version"
                ));
            }
            let version = field(entry, "version");
            sane("version", &version).map_err(|e| format!("entries.{name}: {e}"))?;
            if out.len() == MAX_EXTERNAL_VERSIONS {
                return Err(format!(
                    "the index lists more than {MAX_EXTERNAL_VERSIONS} chart versions"
                ));
            }
            let url = entry
                .get("urls")
                .and_then(Value::as_array)
                .and_then(|u| u.first())
                .and_then(Value::as_str)
                .unwrap_or_default();
            out.push(ChartVersion {
                name: name.clone(),
                version,
                app_version: field(entry, "appVersion").chars().take(MAX_NAME).collect(),
                description: field(entry, "description")
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_DESCRIPTION)
                    .collect(),
                digest: field(entry, "digest").chars().take(128).collect(),
                created: field(entry, "created").chars().take(64).collect(),
                url: url.chars().take(1024).collect(),
            });
        }
    }
    out.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    if let Some(w) = out
        .windows(2)
        .find(|w| w[0].name == w[1].name && w[0].version == w[1].version)
    {
        return Err(format!(
            "entries.{} lists version {} twice",
            w[0].name, w[0].version
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_becomes_its_versions() {
        let index = "apiVersion: v1\nentries:\n  nginx:\n  - name: nginx\n    version: 1.2.0\n    \
                     appVersion: \"1.25\"\n    description: A web server\n    digest: abc\n    \
                     urls: [charts/nginx-1.2.0.tgz]\n  - name: nginx\n    version: 1.1.0\n  \
                     redis:\n  - version: 7.0.0\ngenerated: \"2024-01-01T00:00:00Z\"\n";
        let versions = parse_external_index(index).expect("valid");
        let names: Vec<(&str, &str)> = versions
            .iter()
            .map(|v| (v.name.as_str(), v.version.as_str()))
            .collect();
        assert_eq!(
            names,
            [("nginx", "1.1.0"), ("nginx", "1.2.0"), ("redis", "7.0.0")]
        );
        assert_eq!(versions[1].app_version, "1.25");
        assert_eq!(versions[1].url, "charts/nginx-1.2.0.tgz");
    }

    #[test]
    fn aliases_of_one_huge_string_count_its_bytes() {
        let huge = "x".repeat(4 << 20);
        let refs = vec!["*big"; 100].join(",");
        let doc =
            format!("apiVersion: v1\nbig: &big \"{huge}\"\ncopies: [{refs}]\nentries: {{}}\n");
        let e = parse_external_index(&doc).expect_err("a bomb");
        assert!(e.contains("nodes"), "{e}");
    }

    #[test]
    fn hostile_or_foreign_documents_are_refused_with_a_reason() {
        let laughs = {
            let mut t = String::from(
                "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
            );
            let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
            for pair in names.windows(2) {
                let (prev, name) = (pair[0], pair[1]);
                let refs = vec![format!("*{prev}"); 9].join(",");
                t.push_str(&format!("{name}: &{name} [{refs}]\n"));
            }
            format!("apiVersion: v1\n{t}entries: {{}}\n")
        };
        let deep = format!(
            "apiVersion: v1\nentries: {}{}\n",
            "[".repeat(200),
            "]".repeat(200)
        );
        for (doc, words) in [
            (laughs.as_str(), "nodes"),
            (deep.as_str(), "deep"),
            ("{", ""),
            ("", "empty"),
            ("apiVersion: v2\nentries: {}\n", "apiVersion"),
            ("apiVersion: v1\n", "entries"),
            ("apiVersion: v1\nentries:\n  x: 1\n", "list"),
            (
                "apiVersion: v1\nentries:\n  ../x:\n  - version: 1.0.0\n",
                "name",
            ),
            (
                "apiVersion: v1\nentries:\n  x:\n  - version: \"1 0\"\n",
                "version",
            ),
            ("apiVersion: v1\nentries:\n  x:\n  - {}\n", "version"),
            (
                "apiVersion: v1\nentries:\n  x:\n  - version: 1.0.0\n  - version: 1.0.0\n",
                "twice",
            ),
        ] {
            let e = parse_external_index(doc).expect_err(doc);
            assert!(e.contains(words), "{doc:?}: {e}");
        }
    }
}
