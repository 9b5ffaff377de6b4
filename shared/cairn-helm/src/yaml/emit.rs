//! Writes a JSON value as block YAML the way Helm 3 does (`sigs.k8s.io/yaml` on top of
//! go-yaml v2, itself a port of libyaml's emitter): keys in go-yaml's order, the same
//! choice between plain, single-quoted, double-quoted and literal scalars, compact
//! sequences under mapping keys, and long scalars folded past column 80.
//!
//! Matching the bytes matters for provenance files (a reviewer can diff ours against
//! `helm package --sign`) and keeps `index.yaml` diffs against Helm's own output empty.
//! Whatever the byte layout, the output must read back as the same value: the tests
//! check that for arbitrary values.

use super::go;
use serde_json::Value;

/// go-yaml's defaults: two-space indentation, fold at 80 columns.
const BEST_INDENT: i32 = 2;
const BEST_WIDTH: usize = 80;
/// Longer keys are written as explicit `? key` entries, as libyaml does.
const MAX_SIMPLE_KEY: usize = 128;

/// One YAML document for `value`, ending in a newline.
pub(crate) fn to_yaml(value: &Value) -> String {
    let mut e = Emitter {
        out: String::new(),
        column: 0,
        whitespace: true,
        indention: true,
        indent: -1,
        indents: Vec::new(),
    };
    e.node(value, Context::Root);
    e.write_indent();
    e.out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Root,
    SequenceItem,
    MappingValue,
    SimpleKey,
    ComplexKey,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

struct Emitter {
    out: String,
    column: usize,
    /// The last character written was whitespace (no separating space needed).
    whitespace: bool,
    /// Only indentation (and indicators) written on this line so far.
    indention: bool,
    indent: i32,
    indents: Vec<i32>,
}

impl Emitter {
    fn node(&mut self, value: &Value, context: Context) {
        match value {
            Value::Object(map) if map.is_empty() => self.empty_flow("{", "}"),
            Value::Array(items) if items.is_empty() => self.empty_flow("[", "]"),
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| go::key_order(a.0, b.0));
                self.block_mapping(&entries);
            }
            Value::Array(items) => self.block_sequence(items, context),
            Value::String(s) => self.scalar(s, string_style(s), context),
            Value::Bool(b) => self.scalar(if *b { "true" } else { "false" }, Style::Plain, context),
            Value::Null => self.scalar("null", Style::Plain, context),
            Value::Number(n) => {
                let text = match n.as_f64() {
                    Some(f) if !n.is_i64() && !n.is_u64() => go::format_untyped_float(f),
                    _ => n.to_string(),
                };
                self.scalar(&text, Style::Plain, context);
            }
        }
    }

    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        if self.indent < 0 {
            self.indent = if flow { BEST_INDENT } else { 0 };
        } else if !indentless {
            self.indent += BEST_INDENT;
        }
    }

    fn pop_indent(&mut self) {
        self.indent = self.indents.pop().unwrap_or(-1);
    }

    fn empty_flow(&mut self, open: &str, close: &str) {
        self.write_indicator(open, true, true, false);
        self.increase_indent(true, false);
        self.write_indicator(close, false, false, false);
        self.pop_indent();
    }

    fn block_sequence(&mut self, items: &[Value], context: Context) {
        let indentless = context == Context::MappingValue && !self.indention;
        self.increase_indent(false, indentless);
        for item in items {
            self.write_indent();
            self.write_indicator("-", true, false, true);
            self.node(item, Context::SequenceItem);
        }
        self.pop_indent();
    }

    fn block_mapping(&mut self, entries: &[(&String, &Value)]) {
        self.increase_indent(false, false);
        for (key, value) in entries {
            let simple = key.len() <= MAX_SIMPLE_KEY && !key.chars().any(is_break);
            self.write_indent();
            if simple {
                self.scalar(key, string_style(key), Context::SimpleKey);
                self.write_indicator(":", false, false, false);
            } else {
                self.write_indicator("?", true, false, true);
                self.scalar(key, string_style(key), Context::ComplexKey);
                self.write_indent();
                self.write_indicator(":", true, false, true);
            }
            self.node(value, Context::MappingValue);
        }
        self.pop_indent();
    }

    fn scalar(&mut self, value: &str, requested: Style, context: Context) {
        let analysis = Analysis::of(value);
        let simple_key = context == Context::SimpleKey;
        let mut style = requested;
        if simple_key && analysis.multiline {
            style = Style::Double;
        }
        if style == Style::Plain
            && (!analysis.block_plain_allowed || (value.is_empty() && simple_key))
        {
            style = Style::Single;
        }
        if style == Style::Single && !analysis.single_quoted_allowed {
            style = Style::Double;
        }
        if style == Style::Literal && (!analysis.block_allowed || simple_key) {
            style = Style::Double;
        }
        self.increase_indent(true, false);
        let allow_breaks = !simple_key;
        match style {
            Style::Plain => self.write_plain(value, allow_breaks),
            Style::Single => self.write_single(value, allow_breaks),
            Style::Double => self.write_double(value, allow_breaks),
            Style::Literal => self.write_literal(value),
        }
        self.pop_indent();
    }

    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    fn write_indent(&mut self) {
        let indent = usize::try_from(self.indent.max(0)).unwrap_or(0);
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    fn write_indicator(
        &mut self,
        indicator: &str,
        need_whitespace: bool,
        is_whitespace: bool,
        is_indention: bool,
    ) {
        if need_whitespace && !self.whitespace {
            self.put(' ');
        }
        for c in indicator.chars() {
            self.put(c);
        }
        self.whitespace = is_whitespace;
        self.indention = self.indention && is_indention;
    }

    fn write_plain(&mut self, value: &str, allow_breaks: bool) {
        if !self.whitespace {
            self.put(' ');
        }
        let chars: Vec<char> = value.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_is_space = chars.get(i + 1) == Some(&' ');
                if allow_breaks && !spaces && self.column > BEST_WIDTH && !next_is_space {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                self.indention = false;
                spaces = false;
            }
        }
        if !value.is_empty() {
            self.whitespace = false;
        }
        self.indention = false;
    }

    fn write_single(&mut self, value: &str, allow_breaks: bool) {
        self.write_indicator("'", true, false, false);
        let chars: Vec<char> = value.chars().collect();
        let last = chars.len().saturating_sub(1);
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_is_space = chars.get(i + 1) == Some(&' ');
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i > 0
                    && i < last
                    && !next_is_space
                {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                if c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                self.indention = false;
                spaces = false;
            }
        }
        self.write_indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_double(&mut self, value: &str, allow_breaks: bool) {
        self.write_indicator("\"", true, false, false);
        let chars: Vec<char> = value.chars().collect();
        let last = chars.len().saturating_sub(1);
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if !is_printable(c) || c == '\u{feff}' || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                match c {
                    '\0' => self.put('0'),
                    '\u{7}' => self.put('a'),
                    '\u{8}' => self.put('b'),
                    '\t' => self.put('t'),
                    '\n' => self.put('n'),
                    '\u{b}' => self.put('v'),
                    '\u{c}' => self.put('f'),
                    '\r' => self.put('r'),
                    '\u{1b}' => self.put('e'),
                    '"' => self.put('"'),
                    '\\' => self.put('\\'),
                    '\u{85}' => self.put('N'),
                    '\u{a0}' => self.put('_'),
                    '\u{2028}' => self.put('L'),
                    '\u{2029}' => self.put('P'),
                    _ => {
                        let code = u32::from(c);
                        let (letter, width) = if code <= 0xff {
                            ('x', 2)
                        } else if code <= 0xffff {
                            ('u', 4)
                        } else {
                            ('U', 8)
                        };
                        self.put(letter);
                        for ch in format!("{code:0width$X}").chars() {
                            self.put(ch);
                        }
                    }
                }
                spaces = false;
            } else if c == ' ' {
                if allow_breaks && !spaces && self.column > BEST_WIDTH && i > 0 && i < last {
                    self.write_indent();
                    if chars.get(i + 1) == Some(&' ') {
                        self.put('\\');
                    }
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
        }
        self.write_indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_literal(&mut self, value: &str) {
        self.write_indicator("|", true, false, false);
        let first = value.chars().next();
        if first.is_some_and(|c| c == ' ' || is_break(c)) {
            self.write_indicator("2", false, false, false);
        }
        let chars: Vec<char> = value.chars().collect();
        let chomp = match chars.as_slice() {
            [] => Some("-"),
            [.., last] if !is_break(*last) => Some("-"),
            [_] => Some("+"),
            [.., before, _] if is_break(*before) => Some("+"),
            _ => None,
        };
        if let Some(chomp) = chomp {
            self.write_indicator(chomp, false, false, false);
        }
        self.put_break();
        self.indention = true;
        self.whitespace = true;
        let mut breaks = true;
        for &c in &chars {
            if is_break(c) {
                // Only '\n' reaches here: other breaks are special and force quoting.
                self.put_break();
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
    }
}

/// go-yaml's `stringv`: a string that would read back as something else (a number, a
/// boolean, null, a timestamp) is double-quoted; one with newlines is a literal block.
fn string_style(s: &str) -> Style {
    if s.contains('\n') {
        Style::Literal
    } else if plain_reads_as_string(s) && !go::is_base60_float(s) {
        Style::Plain
    } else {
        Style::Double
    }
}

/// Whether go-yaml v2 reads `s` unquoted back as the same string.
fn plain_reads_as_string(s: &str) -> bool {
    let Some(&first) = s.as_bytes().first() else {
        return false;
    };
    if matches!(
        s,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "true"
            | "True"
            | "TRUE"
            | "on"
            | "On"
            | "ON"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "false"
            | "False"
            | "FALSE"
            | "off"
            | "Off"
            | "OFF"
            | "~"
            | "null"
            | "Null"
            | "NULL"
            | ".nan"
            | ".NaN"
            | ".NAN"
            | ".inf"
            | ".Inf"
            | ".INF"
            | "+.inf"
            | "+.Inf"
            | "+.INF"
            | "-.inf"
            | "-.Inf"
            | "-.INF"
    ) {
        return false;
    }
    match first {
        b'.' => !s.parse::<f64>().is_ok_and(f64::is_finite),
        b'+' | b'-' | b'0'..=b'9' => {
            if go::is_timestamp(s) {
                return false;
            }
            let plain = s.replace('_', "");
            go::parse_int(&plain).is_none()
                && !(go::is_yaml_style_float(&plain)
                    && plain.parse::<f64>().is_ok_and(f64::is_finite))
                && go::parse_binary(&plain).is_none()
        }
        _ => true,
    }
}

/// libyaml's line breaks. U+2028/U+2029/U+0085 are also treated as special below, so
/// they are always written escaped: YAML 1.1 and 1.2 readers disagree on them.
fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// libyaml's printable set, minus the breaks that are not `\n`.
fn is_printable(c: char) -> bool {
    match c {
        '\n' => true,
        '\u{85}' | '\u{2028}' | '\u{2029}' => false,
        ' '..='~' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' => c != '\u{feff}',
        _ => false,
    }
}

/// What libyaml's `analyze_scalar` finds out about a scalar (flow context is never used).
struct Analysis {
    multiline: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

impl Analysis {
    fn of(value: &str) -> Self {
        if value.is_empty() {
            return Analysis {
                multiline: false,
                block_plain_allowed: true,
                single_quoted_allowed: true,
                block_allowed: false,
            };
        }
        let chars: Vec<char> = value.chars().collect();
        let mut block_indicators = value.starts_with("---") || value.starts_with("...");
        let (mut line_breaks, mut special, mut tabs) = (false, false, false);
        let (mut leading_space, mut leading_break) = (false, false);
        let (mut trailing_space, mut trailing_break) = (false, false);
        let (mut break_space, mut space_break) = (false, false);
        let (mut previous_space, mut previous_break) = (false, false);
        let mut preceded_by_whitespace = true;
        let last = chars.len() - 1;
        for (i, &c) in chars.iter().enumerate() {
            let followed_by_whitespace = chars.get(i + 1).is_none_or(|n| *n == ' ' || *n == '\t');
            if i == 0 {
                match c {
                    '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\''
                    | '"' | '%' | '@' | '`' => block_indicators = true,
                    '?' | ':' | '-' if followed_by_whitespace => block_indicators = true,
                    _ => {}
                }
            } else {
                match c {
                    ':' if followed_by_whitespace => block_indicators = true,
                    '#' if preceded_by_whitespace => block_indicators = true,
                    _ => {}
                }
            }
            if c == '\t' {
                tabs = true;
            } else if !is_printable(c) {
                special = true;
            }
            if c == ' ' {
                leading_space |= i == 0;
                trailing_space |= i == last;
                break_space |= previous_break;
                previous_space = true;
                previous_break = false;
            } else if is_break(c) {
                line_breaks = true;
                leading_break |= i == 0;
                trailing_break |= i == last;
                space_break |= previous_space;
                previous_space = false;
                previous_break = true;
            } else {
                previous_space = false;
                previous_break = false;
            }
            preceded_by_whitespace = c == ' ' || c == '\t' || c == '\0' || is_break(c);
        }
        let mut block_plain_allowed = true;
        let mut single_quoted_allowed = true;
        let mut block_allowed = true;
        if leading_space || leading_break || trailing_space || trailing_break {
            block_plain_allowed = false;
        }
        if trailing_space {
            block_allowed = false;
        }
        if break_space {
            block_plain_allowed = false;
            single_quoted_allowed = false;
        }
        if space_break || tabs || special {
            block_plain_allowed = false;
            single_quoted_allowed = false;
        }
        if space_break || special {
            block_allowed = false;
        }
        if line_breaks || block_indicators {
            block_plain_allowed = false;
        }
        Analysis {
            multiline: line_breaks,
            block_plain_allowed,
            single_quoted_allowed,
            block_allowed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::load::{DEFAULT_BUDGET, load};
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn matches_helm_layout() {
        let value = json!({
            "apiVersion": "v1",
            "entries": {"demo": [{
                "annotations": {"bar": "true", "empty": "", "foo": "12", "with: colon": "#hash"},
                "appVersion": "1.1",
                "created": "2026-11-21T09:20:06.074292996Z",
                "dependencies": [{"alias": "sub-x", "enabled": true,
                    "import-values": [{"child": "a.b", "parent": "c"}, "data", 1.5, 1e6],
                    "name": "sub", "tags": ["t1", "2"], "version": "~0.1.0"}],
                "description": "A long description line one that goes on and on and on, well past the eighty column mark, yes. Second line with tab ",
                "keywords": ["true", "8", "1e+06", "2024-01-02", ""],
                "maintainers": [{"email": "j@example.com", "name": "Jane"}, {}],
                "urls": ["demo-0.1.0.tgz"],
                "version": "0.1.0"
            }]},
            "generated": "2026-11-21T09:20:06.0734931Z",
            "empty": []
        });
        let want = r#"apiVersion: v1
empty: []
entries:
  demo:
  - annotations:
      bar: "true"
      empty: ""
      foo: "12"
      'with: colon': '#hash'
    appVersion: "1.1"
    created: "2026-11-21T09:20:06.074292996Z"
    dependencies:
    - alias: sub-x
      enabled: true
      import-values:
      - child: a.b
        parent: c
      - data
      - 1.5
      - 1000000
      name: sub
      tags:
      - t1
      - "2"
      version: ~0.1.0
    description: 'A long description line one that goes on and on and on, well past
      the eighty column mark, yes. Second line with tab '
    keywords:
    - "true"
    - "8"
    - "1e+06"
    - "2024-01-02"
    - ""
    maintainers:
    - email: j@example.com
      name: Jane
    - {}
    urls:
    - demo-0.1.0.tgz
    version: 0.1.0
generated: "2026-11-21T09:20:06.0734931Z"
"#;
        assert_eq!(to_yaml(&value), want);
    }

    #[test]
    fn literal_blocks_and_escapes() {
        let value = json!({"a": "line one\nline two\n", "b": "x\n\n", "c": " lead\nx",
                           "d": "tab\there", "e": "nul\0bell\u{7}", "f": "emoji \u{1F600}",
                           "g": [["a", "b"], "c"]});
        let text = to_yaml(&value);
        assert_eq!(
            text,
            "a: |\n  line one\n  line two\nb: |+\n  x\n\nc: |2-\n   lead\n  x\n\
             d: \"tab\\there\"\ne: \"nul\\0bell\\a\"\nf: \"emoji \\U0001F600\"\n\
             g:\n- - a\n  - b\n- c\n"
        );
    }

    fn arbitrary_value() -> impl Strategy<Value = Value> {
        let text = prop::collection::vec(
            prop_oneof![
                Just(' '),
                Just('\n'),
                Just(':'),
                Just('#'),
                Just('-'),
                Just('\''),
                Just('"'),
                Just('\t'),
                Just('\u{2028}'),
                Just('é'),
                Just('1'),
                Just('.'),
                Just('e'),
                any::<char>(),
                prop::char::range('a', 'z'),
            ],
            0..40,
        )
        .prop_map(|chars| chars.into_iter().collect::<String>());
        let leaf = prop_oneof![
            text.clone().prop_map(Value::String),
            any::<i64>().prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
            Just(Value::Null),
            (-1e6f64..1e6f64).prop_map(|f| json!(f)),
            prop::sample::select(vec![
                "yes",
                "on",
                "y",
                "010",
                "0x1F",
                "1.10",
                "1e6",
                "2024-01-02",
                "~",
                "",
                "1:20",
                "-",
                "- a",
                "? x",
                "...",
                "---",
                "a #b",
                "<<",
                ".5",
                "+1",
                "1_000",
                "0b101",
            ])
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 40, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map(text.clone(), inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Floats go through Go's JSON/YAML round trip, which may turn 1.0 into 1.
    fn normalise_numbers(v: &Value) -> Value {
        match v {
            Value::Number(n) => json!(n.as_f64().unwrap_or(0.0)),
            Value::Array(a) => Value::Array(a.iter().map(normalise_numbers).collect()),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), normalise_numbers(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]
        #[test]
        fn output_reads_back_as_the_same_value(value in arbitrary_value()) {
            let text = to_yaml(&json!({"root": value}));
            let back = load(&text, DEFAULT_BUDGET)
                .unwrap_or_else(|e| panic!("{text}\n{e}"))
                .unwrap_or(Value::Null);
            prop_assert_eq!(
                normalise_numbers(&back),
                normalise_numbers(&json!({"root": value})),
                "{}", text
            );
        }
    }
}
