//! Reads one YAML document into a JSON value the way Helm 3 does (go-yaml v2 behind
//! `sigs.k8s.io/yaml`): YAML 1.1 plain scalars (`yes`/`on`/`y` are booleans, `010` is
//! octal, `1_000` an integer), timestamps left as strings, scalar keys turned into strings.
//!
//! The input is untrusted (an uploaded Chart.yaml), so aliases are expanded against a
//! node budget (a "billion laughs" file fails instead of filling memory), nesting is
//! bounded (deep values are also dropped recursively), and anything Helm would choke on
//! or read ambiguously (duplicate keys, merge keys, non-finite numbers) is refused.

use super::go::{self, GoInt};
use saphyr_parser::{Event, Parser, ScalarStyle, Tag};
use serde_json::{Map, Number, Value};
use std::collections::HashMap;

/// Bounds on what one document may expand to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    /// Nodes after alias expansion; a scalar counts one node per 64 bytes, so
    /// this also bounds the bytes aliases can copy.
    pub max_nodes: usize,
    /// Nesting depth of collections.
    pub max_depth: usize,
}

/// Bytes of a scalar that count as one node of the budget.
const SCALAR_BYTES_PER_NODE: usize = 64;

/// Chart.yaml and provenance metadata are small; these limits leave wide room for real
/// files while bounding memory to a few tens of MiB.
pub(crate) const DEFAULT_BUDGET: Budget = Budget {
    max_nodes: 200_000,
    max_depth: 64,
};

enum Frame {
    Seq {
        items: Vec<Value>,
        anchor: usize,
        nodes: usize,
    },
    Map {
        map: Map<String, Value>,
        key: Option<String>,
        anchor: usize,
        nodes: usize,
    },
}

struct Builder {
    budget: Budget,
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Value, usize)>,
    total: usize,
    root: Option<Value>,
}

/// Parses the first document of `text`; `Ok(None)` if there is none (an empty file).
pub(crate) fn load(text: &str, budget: Budget) -> Result<Option<Value>, String> {
    let mut builder = Builder {
        budget,
        stack: Vec::new(),
        anchors: HashMap::new(),
        total: 0,
        root: None,
    };
    let mut parser = Parser::new_from_str(text);
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| e.to_string())?;
        let at = |message: String| format!("{message} (line {})", span.start.line());
        match event {
            Event::Nothing | Event::StreamStart | Event::DocumentStart(_) => {}
            // Helm reads the first document only.
            Event::DocumentEnd | Event::StreamEnd => break,
            Event::Scalar(text, style, anchor, tag) => {
                let merge_key = style == ScalarStyle::Plain && tag.is_none() && text == "<<";
                let value = resolve_scalar(&text, style, tag.as_deref()).map_err(at)?;
                // A long scalar weighs more: aliases of one huge string would
                // otherwise cost a node each and copy megabytes.
                let weight = 1 + text.len() / SCALAR_BYTES_PER_NODE;
                builder
                    .complete(value, weight, anchor, merge_key)
                    .map_err(at)?;
            }
            Event::SequenceStart(anchor, _) => {
                builder.open(Frame::Seq {
                    items: Vec::new(),
                    anchor,
                    nodes: 1,
                })?;
            }
            Event::MappingStart(anchor, _) => {
                builder.open(Frame::Map {
                    map: Map::new(),
                    key: None,
                    anchor,
                    nodes: 1,
                })?;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (value, nodes, anchor) = match builder.stack.pop() {
                    Some(Frame::Seq {
                        items,
                        anchor,
                        nodes,
                    }) => (Value::Array(items), nodes, anchor),
                    Some(Frame::Map {
                        map, anchor, nodes, ..
                    }) => (Value::Object(map), nodes, anchor),
                    None => return Err("unbalanced YAML collection".into()),
                };
                // The collection's children are already counted.
                builder.total -= nodes - 1;
                builder.complete(value, nodes, anchor, false).map_err(at)?;
            }
            Event::Alias(id) => {
                let (value, nodes) = builder
                    .anchors
                    .get(&id)
                    .ok_or_else(|| at("alias to an unknown anchor".into()))?;
                // Check the budget before copying: the copy is what could be huge.
                builder.check_budget(*nodes).map_err(at)?;
                let (value, nodes) = (value.clone(), *nodes);
                builder.complete(value, nodes, 0, false).map_err(at)?;
            }
        }
    }
    Ok(builder.root)
}

impl Builder {
    fn open(&mut self, frame: Frame) -> Result<(), String> {
        if self.stack.len() >= self.budget.max_depth {
            return Err(format!(
                "YAML nested more than {} levels deep",
                self.budget.max_depth
            ));
        }
        self.stack.push(frame);
        Ok(())
    }

    fn check_budget(&self, nodes: usize) -> Result<(), String> {
        if self.total.saturating_add(nodes) > self.budget.max_nodes {
            return Err(format!(
                "YAML expands to more than {} nodes (aliases included)",
                self.budget.max_nodes
            ));
        }
        Ok(())
    }

    fn complete(
        &mut self,
        value: Value,
        nodes: usize,
        anchor: usize,
        merge_key: bool,
    ) -> Result<(), String> {
        self.check_budget(nodes)?;
        self.total += nodes;
        if anchor != 0 {
            self.anchors.insert(anchor, (value.clone(), nodes));
        }
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Seq {
                items,
                nodes: parent,
                ..
            }) => {
                items.push(value);
                *parent += nodes;
            }
            Some(Frame::Map {
                map,
                key,
                nodes: parent,
                ..
            }) => match key.take() {
                None => {
                    if merge_key {
                        return Err("merge keys (<<) are not supported".into());
                    }
                    *key = Some(key_string(&value)?);
                }
                Some(k) => {
                    if map.contains_key(&k) {
                        return Err(format!("duplicate key {k:?}"));
                    }
                    map.insert(k, value);
                    *parent += nodes;
                }
            },
        }
        Ok(())
    }
}

/// `sigs.k8s.io/yaml` turns scalar keys into strings for JSON.
fn key_string(key: &Value) -> Result<String, String> {
    match key {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() => go::format_float_g(f, true),
            _ => n.to_string(),
        }),
        Value::Null => Err("null mapping keys are not supported".into()),
        Value::Array(_) | Value::Object(_) => Err("mapping keys must be scalars".into()),
    }
}

fn resolve_scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    let Some(tag) = tag else {
        return if style == ScalarStyle::Plain {
            resolve_plain(text)
        } else {
            Ok(Value::String(text.to_owned()))
        };
    };
    if !tag.is_yaml_core_schema() {
        // go-yaml keeps the text of scalars with tags it does not know.
        return Ok(Value::String(text.to_owned()));
    }
    let resolved = resolve_plain(text);
    let mismatch = || format!("cannot read {text:?} as !!{}", tag.suffix);
    match tag.suffix.as_str() {
        "str" | "timestamp" => Ok(Value::String(text.to_owned())),
        "null" => match resolved? {
            Value::Null => Ok(Value::Null),
            _ => Err(mismatch()),
        },
        "bool" => match resolved? {
            Value::Bool(b) => Ok(Value::Bool(b)),
            _ => Err(mismatch()),
        },
        "int" => match resolved? {
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(Value::Number(n)),
            _ => Err(mismatch()),
        },
        "float" => match resolved? {
            Value::Number(n) => n
                .as_f64()
                .and_then(Number::from_f64)
                .map(Value::Number)
                .ok_or_else(mismatch),
            _ => Err(mismatch()),
        },
        "binary" => Err("!!binary values are not supported".into()),
        _ => Ok(Value::String(text.to_owned())),
    }
}

/// go-yaml v2's `resolve` for an untagged plain scalar.
fn resolve_plain(text: &str) -> Result<Value, String> {
    let Some(&first) = text.as_bytes().first() else {
        return Ok(Value::Null);
    };
    let candidate = matches!(first, b'+' | b'-' | b'.' | b'~')
        || first.is_ascii_digit()
        || b"yYnNtTfFoO".contains(&first);
    if !candidate {
        return Ok(Value::String(text.to_owned()));
    }
    match text {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Ok(Value::Bool(true));
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Ok(Value::Bool(false));
        }
        "~" | "null" | "Null" | "NULL" => return Ok(Value::Null),
        ".nan" | ".NaN" | ".NAN" | ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF"
        | "-.inf" | "-.Inf" | "-.INF" => {
            // JSON cannot carry them and Helm fails on them outside string fields.
            return Err(format!("{text} (infinite or NaN numbers) is not supported"));
        }
        _ => {}
    }
    if first == b'.' {
        return Ok(float_or_string(text, text));
    }
    if first == b'+' || first == b'-' || first.is_ascii_digit() {
        let plain = text.replace('_', "");
        match go::parse_int(&plain) {
            Some(GoInt::Signed(i)) => return Ok(Value::from(i)),
            Some(GoInt::Unsigned(u)) => return Ok(Value::from(u)),
            None => {}
        }
        if go::is_yaml_style_float(&plain) {
            let value = float_or_string(&plain, text);
            if value.is_number() {
                return Ok(value);
            }
        }
        match go::parse_binary(&plain) {
            Some(GoInt::Signed(i)) => return Ok(Value::from(i)),
            Some(GoInt::Unsigned(u)) => return Ok(Value::from(u)),
            None => {}
        }
    }
    Ok(Value::String(text.to_owned()))
}

/// Go's `ParseFloat` fails on overflow, and go-yaml then keeps the text.
fn float_or_string(number: &str, text: &str) -> Value {
    match number.parse::<f64>().ok().and_then(Number::from_f64) {
        Some(n) => Value::Number(n),
        None => Value::String(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(text: &str) -> Value {
        load(text, DEFAULT_BUDGET)
            .unwrap_or_else(|e| panic!("{text:?}: {e}"))
            .unwrap_or(Value::Null)
    }

    #[test]
    fn plain_scalars_resolve_like_yaml_1_1() {
        let doc = one(
            "a: yes\nb: on\nc: y\nd: 010\ne: 0x1F\nf: 1_000\ng: 1.10\nh: 2024-01-02\n\
             i: ~\nj:\nk: '010'\nl: 1.16.0\nm: -3\nbig: 1e400\no: .5\np: !!str 12\nq: !!float 1\n",
        );
        assert_eq!(
            doc,
            json!({"a": true, "b": true, "c": true, "d": 8, "e": 31, "f": 1000, "g": 1.1,
                   "h": "2024-01-02", "i": null, "j": null, "k": "010", "l": "1.16.0",
                   "m": -3, "big": "1e400", "o": 0.5, "p": "12", "q": 1.0})
        );
    }

    #[test]
    fn keys_become_strings() {
        assert_eq!(
            one("1: a\ntrue: b\n1.5: c\n"),
            json!({"1": "a", "true": "b", "1.5": "c"})
        );
        assert!(load("? [a]\n: b\n", DEFAULT_BUDGET).is_err());
        assert!(load("~: b\n", DEFAULT_BUDGET).is_err());
    }

    #[test]
    fn refuses_ambiguous_input() {
        let err = load("name: a\nname: b\n", DEFAULT_BUDGET).expect_err("duplicate");
        assert!(err.contains("duplicate key \"name\""), "{err}");
        let err = load("a: &x {b: 1}\nc:\n  <<: *x\n", DEFAULT_BUDGET).expect_err("merge");
        assert!(err.contains("merge keys"), "{err}");
        assert!(load("a: .inf\n", DEFAULT_BUDGET).is_err());
        assert!(load("a: [b\n", DEFAULT_BUDGET).is_err());
        assert!(load("a: *nope\n", DEFAULT_BUDGET).is_err());
    }

    #[test]
    fn aliases_expand_within_budget() {
        assert_eq!(
            one("a: &x [1, 2]\nb: *x\n"),
            json!({"a": [1, 2], "b": [1, 2]})
        );
        let mut bomb = String::from("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            bomb.push_str(&format!(
                "l{i}: &l{i} [*l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}]\n"
            ));
        }
        let err = load(&bomb, DEFAULT_BUDGET).expect_err("billion laughs");
        assert!(err.contains("more than"), "{err}");
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        let deep = "[".repeat(100_000);
        let err = load(&deep, DEFAULT_BUDGET).expect_err("too deep");
        // saphyr-parser has its own limit (255); ours is lower for block collections.
        assert!(
            err.contains("nested") || err.contains("recursion limit"),
            "{err}"
        );
        assert!(load(&"{a: ".repeat(5000), DEFAULT_BUDGET).is_err());
    }

    #[test]
    fn only_the_first_document_counts() {
        assert_eq!(one("a: 1\n---\nb: [\n"), json!({"a": 1}));
        // YAML 1.1: `n` is false, and a false key is the string "false".
        assert_eq!(one("n: 1\n"), json!({"false": 1}));
        assert_eq!(load("", DEFAULT_BUDGET), Ok(None));
        assert_eq!(load("# only a comment\n", DEFAULT_BUDGET), Ok(None));
    }
}
