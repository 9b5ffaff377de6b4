//! Chart.yaml as Helm 3 understands it: the fields of Helm's `chart.Metadata` type,
//! coerced the way `sigs.k8s.io/yaml` coerces them (a YAML number in a string field
//! becomes Go's shortest float32 text, so `appVersion: 1.10` is "1.1"), sanitised
//! the way `Metadata.Validate` sanitises them (control characters dropped, whitespace
//! turned into spaces), with empty fields omitted. Fields Helm does not know
//! (`engine`, `tillerVersion`, …) are not part of it: `helm repo index` drops them too.
//!
//! This one view feeds both the `index.yaml` entry and the provenance text, which is
//! what makes them equal to what `helm repo index` and `helm package --sign` write.

use crate::semver;
use crate::yaml::go;
use serde_json::{Map, Value};
use std::collections::HashSet;

/// Helm's `chartutil` name rule (`helm create` enforces it; characters outside it are
/// "known to be problematic") and its length limit.
const MAX_NAME_LEN: usize = 250;

/// Helm's view of a Chart.yaml, and every reason Helm (or this stricter repository)
/// would refuse it. An empty problem list means the chart is acceptable.
pub(crate) struct HelmMetadata {
    pub map: Map<String, Value>,
    pub problems: Vec<String>,
}

pub(crate) fn helm_metadata(chart: &Map<String, Value>) -> HelmMetadata {
    let mut n = Normaliser {
        map: Map::new(),
        problems: Vec::new(),
    };
    n.text(chart, "apiVersion", false);
    for key in [
        "name",
        "home",
        "description",
        "icon",
        "condition",
        "tags",
        "appVersion",
        "kubeVersion",
    ] {
        n.text(chart, key, true);
    }
    n.text(chart, "version", false);
    n.text(chart, "type", false);
    n.texts(chart, "sources");
    n.texts(chart, "keywords");
    n.maintainers(chart);
    n.annotations(chart);
    n.deprecated(chart);
    n.dependencies(chart);
    n.validate(chart);
    HelmMetadata {
        map: n.map,
        problems: n.problems,
    }
}

struct Normaliser {
    map: Map<String, Value>,
    problems: Vec<String>,
}

impl Normaliser {
    fn text(&mut self, chart: &Map<String, Value>, key: &str, sanitise: bool) {
        match coerce_text(chart.get(key)) {
            Ok(Some(s)) => {
                let s = if sanitise { sanitize(&s) } else { s };
                if !s.is_empty() {
                    self.map.insert(key.to_owned(), Value::String(s));
                }
            }
            Ok(None) => {}
            Err(kind) => self
                .problems
                .push(format!("{key} must be a string, not {kind}")),
        }
    }

    fn texts(&mut self, chart: &Map<String, Value>, key: &str) {
        match text_list(chart.get(key)) {
            Ok(list) if !list.is_empty() => {
                let list = list.iter().map(|s| Value::String(sanitize(s))).collect();
                self.map.insert(key.to_owned(), Value::Array(list));
            }
            Ok(_) => {}
            Err(kind) => self
                .problems
                .push(format!("{key} must be a list of strings, not {kind}")),
        }
    }

    fn maintainers(&mut self, chart: &Map<String, Value>) {
        let list = match chart.get("maintainers") {
            None | Some(Value::Null) => return,
            Some(Value::Array(list)) => list,
            Some(other) => {
                self.problems.push(format!(
                    "maintainers must be a list, not {}",
                    kind_of(other)
                ));
                return;
            }
        };
        let mut out = Vec::new();
        for item in list {
            let Value::Object(fields) = item else {
                self.problems.push(match item {
                    Value::Null => "maintainers must not contain empty or null nodes".into(),
                    other => format!("each maintainer must be a mapping, not {}", kind_of(other)),
                });
                continue;
            };
            let mut maintainer = Map::new();
            for key in ["name", "email", "url"] {
                match coerce_text(fields.get(key)) {
                    Ok(Some(s)) if !sanitize(&s).is_empty() => {
                        maintainer.insert(key.into(), Value::String(sanitize(&s)));
                    }
                    Ok(_) => {}
                    Err(kind) => self
                        .problems
                        .push(format!("maintainer {key} must be a string, not {kind}")),
                }
            }
            out.push(Value::Object(maintainer));
        }
        if !out.is_empty() {
            self.map.insert("maintainers".into(), Value::Array(out));
        }
    }

    fn annotations(&mut self, chart: &Map<String, Value>) {
        let fields = match chart.get("annotations") {
            None | Some(Value::Null) => return,
            Some(Value::Object(fields)) => fields,
            Some(other) => {
                self.problems.push(format!(
                    "annotations must be a mapping of strings, not {}",
                    kind_of(other)
                ));
                return;
            }
        };
        let mut out = Map::new();
        for (key, value) in fields {
            match coerce_text(Some(value)) {
                // Helm neither sanitises nor drops empty annotation values.
                Ok(s) => {
                    out.insert(key.clone(), Value::String(s.unwrap_or_default()));
                }
                Err(kind) => self
                    .problems
                    .push(format!("annotation {key:?} must be a string, not {kind}")),
            }
        }
        if !out.is_empty() {
            self.map.insert("annotations".into(), Value::Object(out));
        }
    }

    fn deprecated(&mut self, chart: &Map<String, Value>) {
        match chart.get("deprecated") {
            None | Some(Value::Null | Value::Bool(false)) => {}
            Some(Value::Bool(true)) => {
                self.map.insert("deprecated".into(), Value::Bool(true));
            }
            Some(other) => self.problems.push(format!(
                "deprecated must be true or false, not {}",
                kind_of(other)
            )),
        }
    }

    fn dependencies(&mut self, chart: &Map<String, Value>) {
        let list = match chart.get("dependencies") {
            None | Some(Value::Null) => return,
            Some(Value::Array(list)) => list,
            Some(other) => {
                self.problems.push(format!(
                    "dependencies must be a list, not {}",
                    kind_of(other)
                ));
                return;
            }
        };
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for item in list {
            let Value::Object(fields) = item else {
                self.problems.push(match item {
                    Value::Null => "dependencies must not contain empty or null nodes".into(),
                    other => format!("each dependency must be a mapping, not {}", kind_of(other)),
                });
                continue;
            };
            let mut dep = Map::new();
            for (key, always) in [
                ("name", true),
                ("version", false),
                ("repository", true),
                ("condition", false),
                ("alias", false),
            ] {
                match coerce_text(fields.get(key)) {
                    Ok(s) => {
                        let s = s.unwrap_or_default();
                        // Helm sanitises every dependency string but the alias.
                        let s = if key == "alias" { s } else { sanitize(&s) };
                        // `name` and `repository` have no omitempty in Helm's type.
                        if always || !s.is_empty() {
                            dep.insert(key.into(), Value::String(s));
                        }
                    }
                    Err(kind) => self
                        .problems
                        .push(format!("dependency {key} must be a string, not {kind}")),
                }
            }
            match text_list(fields.get("tags")) {
                Ok(tags) if !tags.is_empty() => {
                    let tags = tags.iter().map(|t| Value::String(sanitize(t))).collect();
                    dep.insert("tags".into(), Value::Array(tags));
                }
                Ok(_) => {}
                Err(kind) => self.problems.push(format!(
                    "dependency tags must be a list of strings, not {kind}"
                )),
            }
            match fields.get("enabled") {
                None | Some(Value::Null | Value::Bool(false)) => {}
                Some(Value::Bool(true)) => {
                    dep.insert("enabled".into(), Value::Bool(true));
                }
                Some(other) => self.problems.push(format!(
                    "dependency enabled must be true or false, not {}",
                    kind_of(other)
                )),
            }
            match fields.get("import-values") {
                None | Some(Value::Null) => {}
                Some(Value::Array(values)) if values.is_empty() => {}
                // Go decodes these into interface{}: every number becomes a float64.
                Some(Value::Array(values)) => {
                    dep.insert(
                        "import-values".into(),
                        Value::Array(values.iter().map(numbers_as_floats).collect()),
                    );
                }
                Some(other) => self.problems.push(format!(
                    "dependency import-values must be a list, not {}",
                    kind_of(other)
                )),
            }
            let name = dep.get("name").and_then(Value::as_str).unwrap_or_default();
            let alias = dep.get("alias").and_then(Value::as_str).unwrap_or_default();
            if !alias.is_empty()
                && !alias
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                self.problems.push(format!(
                    "dependency {name:?} has disallowed characters in the alias"
                ));
            }
            let key = if alias.is_empty() { name } else { alias }.to_owned();
            if !seen.insert(key.clone()) {
                self.problems.push(format!(
                    "more than one dependency with name or alias {key:?}"
                ));
            }
            out.push(Value::Object(dep));
        }
        if !out.is_empty() {
            self.map.insert("dependencies".into(), Value::Array(out));
        }
    }

    fn validate(&mut self, chart: &Map<String, Value>) {
        // Helm 2 charts may lack apiVersion; Helm 3 loads them as v1 and says so in its
        // index, so a missing one is v1 here too.
        let api = self
            .map
            .entry("apiVersion")
            .or_insert_with(|| Value::String("v1".into()));
        if let Some(api) = api.as_str()
            && api != "v1"
            && api != "v2"
        {
            self.problems.push(format!(
                "apiVersion {api:?} is not supported (Helm charts are v1 or v2)"
            ));
        }

        match self.map.get("name").and_then(Value::as_str) {
            None => self.problems.push("name is required".into()),
            Some(name) => {
                if let Some(problem) = name_problem(name) {
                    self.problems.push(problem);
                }
            }
        }

        match self.map.get("version").and_then(Value::as_str) {
            None => self.problems.push("version is required".into()),
            Some(version) => {
                if let Err(why) = semver::parse(version) {
                    let hint = if chart.get("version").is_some_and(Value::is_number) {
                        " (YAML read it as a number: quote it)"
                    } else {
                        ""
                    };
                    self.problems.push(format!(
                        "version {version:?} is not SemVer 2: {why}{hint}; Helm requires e.g. \"1.0.0\""
                    ));
                }
            }
        }

        if let Some(kind) = self.map.get("type").and_then(Value::as_str)
            && kind != "application"
            && kind != "library"
        {
            self.problems
                .push(format!("type {kind:?} must be application or library"));
        }
    }
}

fn name_problem(name: &str) -> Option<String> {
    if name == "." || name == ".." {
        return Some(format!("name {name:?} is not allowed"));
    }
    if name.len() > MAX_NAME_LEN {
        return Some(format!("name is longer than {MAX_NAME_LEN} characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Some(format!(
            "name {name:?} may contain only letters, digits, '.', '_' and '-'"
        ));
    }
    None
}

/// A scalar as `sigs.k8s.io/yaml` turns it into a Go string field; `Err` names what
/// Helm's JSON decoding would refuse.
fn coerce_text(value: Option<&Value>) -> Result<Option<String>, &'static str> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(Value::Number(n)) => Ok(Some(match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() => go::format_float_g(f, true),
            _ => n.to_string(),
        })),
        Some(Value::Array(_)) => Err("a list"),
        Some(Value::Object(_)) => Err("a mapping"),
    }
}

/// A list of scalars as a Go `[]string`: nulls become empty strings, as in Helm.
fn text_list(value: Option<&Value>) -> Result<Vec<String>, &'static str> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| coerce_text(Some(item)).map(Option::unwrap_or_default))
            .collect::<Result<_, _>>()
            .map_err(|_| "a list with nested values"),
        Some(other) => Err(kind_of(other)),
    }
}

fn numbers_as_floats(value: &Value) -> Value {
    match value {
        Value::Number(n) => n
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        Value::Array(items) => Value::Array(items.iter().map(numbers_as_floats).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), numbers_as_floats(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Helm's `sanitizeString`: whitespace becomes a space, other unprintable characters go.
/// Go's `unicode.IsSpace` and `IsPrint` are matched by Rust's whitespace test and "not
/// a control or format character": close enough for text, and identical for ASCII.
fn sanitize(s: &str) -> String {
    s.chars()
        .filter_map(|c| {
            if c.is_whitespace() {
                Some(' ')
            } else if is_go_printable(c) {
                Some(c)
            } else {
                None
            }
        })
        .collect()
}

fn is_go_printable(c: char) -> bool {
    !c.is_control()
        && !matches!(
            c,
            '\u{ad}' | '\u{600}'..='\u{605}' | '\u{61c}' | '\u{6dd}' | '\u{70f}'
        )
        && !matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}')
        && !matches!(c, '\u{2066}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}')
        && !matches!(c, '\u{e000}'..='\u{f8ff}' | '\u{f0000}'..)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::{DEFAULT_BUDGET, load};
    use serde_json::json;

    fn metadata(yaml: &str) -> HelmMetadata {
        match load(yaml, DEFAULT_BUDGET) {
            Ok(Some(Value::Object(map))) => helm_metadata(&map),
            other => panic!("{yaml}: {other:?}"),
        }
    }

    #[test]
    fn coerces_and_sanitises_like_helm() {
        let m = metadata(
            "apiVersion: v2\nname: demo\nversion: 0.1.0\nappVersion: 1.10\nhome: y\nicon: 0x1F\n\
             kubeVersion: 1_000\ndescription: |\n  two\n  lines\tand tab\n\
             keywords: [yes, 010, 1e6, 1234567.0, 2024-01-02, ~, 1.0]\n\
             annotations: {foo: 12, bar: true, empty: \"\", nul: ~}\nengine: gotpl\n\
             maintainers: [{name: Jane, extra: x}, {name: \"\"}]\ndeprecated: false\n\
             dependencies:\n- name: sub\n  version: ~0.1.0\n  enabled: true\n  export-values: [a]\n  \
               import-values: [data, 1, {child: a}]\n  tags: [t1, 2]\n",
        );
        assert!(m.problems.is_empty(), "{:?}", m.problems);
        assert_eq!(
            Value::Object(m.map),
            json!({
                "apiVersion": "v2", "name": "demo", "version": "0.1.0", "appVersion": "1.1",
                "home": "true", "icon": "31", "kubeVersion": "1000",
                "description": "two lines and tab ",
                "keywords": ["true", "8", "1e+06", "1.234567e+06", "2024-01-02", "", "1"],
                "annotations": {"foo": "12", "bar": "true", "empty": "", "nul": ""},
                "maintainers": [{"name": "Jane"}, {}],
                "dependencies": [{"name": "sub", "version": "~0.1.0", "repository": "",
                                  "enabled": true, "import-values": ["data", 1.0, {"child": "a"}],
                                  "tags": ["t1", "2"]}]
            })
        );
    }

    #[test]
    fn missing_api_version_is_v1() {
        let m = metadata("name: old\nversion: 1.0.0\n");
        assert!(m.problems.is_empty(), "{:?}", m.problems);
        assert_eq!(m.map.get("apiVersion"), Some(&json!("v1")));
    }

    #[test]
    fn names_every_problem() {
        let cases = [
            (
                "apiVersion: v3\nname: a\nversion: 1.0.0\n",
                "apiVersion \"v3\"",
            ),
            ("apiVersion: v2\nversion: 1.0.0\n", "name is required"),
            (
                "apiVersion: v2\nname: a/b\nversion: 1.0.0\n",
                "may contain only",
            ),
            ("apiVersion: v2\nname: ..\nversion: 1.0.0\n", "not allowed"),
            ("apiVersion: v2\nname: a\n", "version is required"),
            ("apiVersion: v2\nname: a\nversion: 1.0\n", "quote it"),
            ("apiVersion: v2\nname: a\nversion: v1.0.0\n", "not SemVer 2"),
            (
                "apiVersion: v2\nname: a\nversion: 1.0.0\ntype: app\n",
                "application or library",
            ),
            (
                "apiVersion: v2\nname: a\nversion: 1.0.0\nkeywords: x\n",
                "keywords must be a list",
            ),
            (
                "apiVersion: v2\nname: a\nversion: 1.0.0\ndescription: [x]\n",
                "description must be a string",
            ),
            (
                "apiVersion: v2\nname: a\nversion: 1.0.0\nmaintainers: [~]\n",
                "empty or null",
            ),
            (
                "apiVersion: v2\nname: a\nversion: 1.0.0\ndeprecated: \"yes\"\n",
                "deprecated must be",
            ),
            (
                "apiVersion: v2\nname: a\nversion: 1.0.0\ndependencies: [{name: x, alias: a.b}]\n",
                "alias",
            ),
            (
                "apiVersion: v2\nname: a\nversion: 1.0.0\ndependencies: [{name: x}, {name: x}]\n",
                "more than one",
            ),
        ];
        for (yaml, want) in cases {
            let m = metadata(yaml);
            assert!(
                m.problems.iter().any(|p| p.contains(want)),
                "{yaml}: {:?} lacks {want:?}",
                m.problems
            );
        }
    }
}
