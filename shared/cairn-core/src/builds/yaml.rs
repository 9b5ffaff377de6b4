//! Project files in YAML: read into a JSON value whose scalars are all strings (YAML's
//! failsafe schema: `version: 1.10` stays `"1.10"`, `on: yes` stays `"yes"`), with the
//! line each value starts on, so that a refusal found after reading (an unknown action
//! in the third step) still names its line.
//!
//! A project file is small and hand-written; anchors and aliases, tags, duplicate keys,
//! deep nesting and large files are refused rather than interpreted.

use saphyr_parser::{Event, Parser, ScalarStyle};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Largest project file read, bytes.
pub const MAX_YAML_BYTES: usize = 256 * 1024;
/// Deepest nesting of collections.
const MAX_DEPTH: usize = 16;
/// Most values in one file.
const MAX_NODES: usize = 20_000;

/// A read document: the value, and where each of its parts starts.
#[derive(Debug, Clone, Default)]
pub struct Located {
    /// The document as JSON (every scalar a string, `~`/`null`/empty as null).
    pub value: Value,
    lines: HashMap<String, usize>,
}

impl Located {
    /// The line (1-based) of the value at `path` (`pipelines[0].actions[2].action`),
    /// or of its nearest enclosing value that has one.
    pub fn line_of(&self, path: &str) -> Option<usize> {
        let mut path = path;
        loop {
            if let Some(line) = self.lines.get(path) {
                return Some(*line);
            }
            let cut = path.rfind(['.', '['])?;
            path = &path[..cut];
        }
    }
}

enum Frame {
    Seq(Vec<Value>, String),
    Map(Map<String, Value>, Option<String>, String),
}

/// Reads the single document of `text`; errors name their line.
pub fn load(text: &str) -> Result<Located, String> {
    if text.len() > MAX_YAML_BYTES {
        return Err(format!(
            "the project file is larger than {} KiB",
            MAX_YAML_BYTES / 1024
        ));
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut lines = HashMap::new();
    let mut root = None;
    let mut nodes = 0usize;
    let mut documents = 0;
    let mut parser = Parser::new_from_str(text);
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| format!("YAML syntax: {e}"))?;
        let line = span.start.line();
        let at = |message: &str| format!("line {line}: {message}");
        let value = match event {
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => continue,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(at("one document per file (no second ---)"));
                }
                continue;
            }
            Event::Alias(_) => return Err(at("aliases (*name) are not supported")),
            Event::Scalar(text, style, anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    return Err(at("anchors (&name) and tags (!tag) are not supported"));
                }
                let plain_null = style == ScalarStyle::Plain
                    && matches!(text.as_ref(), "" | "~" | "null" | "Null" | "NULL");
                if plain_null {
                    Value::Null
                } else {
                    Value::String(text.into_owned())
                }
            }
            Event::SequenceStart(anchor, ref tag) | Event::MappingStart(anchor, ref tag) => {
                if anchor != 0 || tag.is_some() {
                    return Err(at("anchors (&name) and tags (!tag) are not supported"));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(at(&format!("nested more than {MAX_DEPTH} levels deep")));
                }
                let path = child_path(&stack, line, &mut lines)?;
                let mapping = matches!(event, Event::MappingStart(..));
                stack.push(if mapping {
                    Frame::Map(Map::new(), None, path)
                } else {
                    Frame::Seq(Vec::new(), path)
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq(items, _)) => Value::Array(items),
                Some(Frame::Map(map, _, _)) => Value::Object(map),
                None => return Err(at("unbalanced collection")),
            },
        };
        nodes += 1;
        if nodes > MAX_NODES {
            return Err(at(&format!("more than {MAX_NODES} values")));
        }
        let is_collection = value.is_array() || value.is_object();
        match stack.last_mut() {
            None => root = Some(value),
            Some(Frame::Seq(items, path)) => {
                if !is_collection {
                    lines.insert(format!("{path}[{}]", items.len()), line);
                }
                items.push(value);
            }
            Some(Frame::Map(map, key, path)) => match key.take() {
                None => {
                    let Value::String(name) = value else {
                        return Err(at("a key must be a plain name, not a list, map or null"));
                    };
                    if map.contains_key(&name) {
                        return Err(at(&format!("duplicate key {name:?}")));
                    }
                    lines.insert(join(path, &name), line);
                    *key = Some(name);
                }
                Some(name) => {
                    map.insert(name, value);
                }
            },
        }
    }
    Ok(Located {
        value: root.unwrap_or(Value::Null),
        lines,
    })
}

/// The path of a collection about to open inside the top of `stack`, noting its line
/// when it is a list item (a map entry's line is its key's).
fn child_path(
    stack: &[Frame],
    line: usize,
    lines: &mut HashMap<String, usize>,
) -> Result<String, String> {
    Ok(match stack.last() {
        None => String::new(),
        Some(Frame::Seq(items, path)) => {
            let path = format!("{path}[{}]", items.len());
            lines.insert(path.clone(), line);
            path
        }
        Some(Frame::Map(_, Some(key), path)) => join(path, key),
        Some(Frame::Map(_, None, _)) => {
            return Err(format!(
                "line {line}: a key must be a plain name, not a list or map"
            ));
        }
    })
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_stay_text_and_values_know_their_lines() {
        let text = "\
parameters:
  version: 1.10
  debug: yes
pipelines:
  - name: build
    actions:
      - action: shell
        script: |
          make
      - action: publish
        files: [a.deb, ~]
";
        let doc = load(text).expect("reads");
        assert_eq!(
            doc.value["parameters"],
            json!({"version": "1.10", "debug": "yes"})
        );
        assert_eq!(
            doc.value["pipelines"][0]["actions"][1]["files"],
            json!(["a.deb", null])
        );
        assert_eq!(doc.line_of("parameters.debug"), Some(3));
        assert_eq!(doc.line_of("pipelines[0]"), Some(5));
        assert_eq!(doc.line_of("pipelines[0].actions[1].action"), Some(10));
        assert_eq!(doc.line_of("pipelines[0].actions[0].script"), Some(8));
        assert_eq!(doc.line_of("pipelines[0].actions[1].files[1]"), Some(11));
        // A path that is not there is placed at its nearest enclosing value.
        assert_eq!(doc.line_of("pipelines[0].actions[1].timeout"), Some(10));
    }

    #[test]
    fn what_a_project_file_does_not_need_is_refused_with_its_line() {
        for (text, expected) in [
            ("a: 1\na: 2\n", "line 2: duplicate key \"a\""),
            ("a: &x 1\nb: *x\n", "line 1: anchors"),
            ("a: !!int 1\n", "line 1: anchors (&name) and tags"),
            ("? [a]\n: 1\n", "line 1: a key must be a plain name"),
            ("a: 1\n---\nb: 2\n", "line 2: one document per file"),
            ("a: [1, 2\n", "YAML syntax"),
        ] {
            let error = load(text).expect_err(text);
            assert!(error.contains(expected), "{text:?}: {error}");
        }
        let deep = "a: ".to_string() + &"[".repeat(40) + &"]".repeat(40);
        assert!(load(&deep).expect_err("deep").contains("nested more than"));
        let big = "a: ".to_string() + &"x".repeat(MAX_YAML_BYTES);
        assert!(load(&big).expect_err("big").contains("larger than"));
    }
}
