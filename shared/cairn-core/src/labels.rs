//! Labels on repositories and selectors over them, in Kubernetes' syntax, so that a
//! selector a team already writes for its clusters reads the same here:
//! `team=db,env in (prod,stage),!experimental`.
//!
//! A selector is a comma-separated list of requirements, all of which must hold:
//! `key=value` (or `==`), `key!=value`, `key in (a,b)`, `key notin (a,b)`, `key`
//! (present), `!key` (absent). As in Kubernetes, `!=` and `notin` also hold when the
//! key is absent. Keys are `[prefix/]name`: a name of at most 63 characters
//! (letters, digits, `-`, `_`, `.`, starting and ending with a letter or digit) and an
//! optional DNS-subdomain prefix; values follow the name rule and may be empty.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Most labels one repository carries.
pub const MAX_LABELS: usize = 64;
/// Longest selector text accepted.
pub const MAX_SELECTOR: usize = 4096;

/// A repository's labels.
pub type Labels = BTreeMap<String, String>;

fn is_name(text: &str, max: usize) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= max
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn is_dns_subdomain(text: &str) -> bool {
    text.len() <= 253
        && text.split('.').all(|part| {
            let b = part.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b.first()
                    .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && b.last()
                    .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

/// Checks a label key.
pub fn check_key(key: &str) -> Result<(), String> {
    let ok = match key.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_name(name, 63),
        None => is_name(key, 63),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "label key {key:?}: [prefix/]name, the name 1-63 letters, digits, '-', '_' or '.', \
             starting and ending with a letter or digit"
        ))
    }
}

/// Checks a label value (may be empty).
pub fn check_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_name(value, 63) {
        Ok(())
    } else {
        Err(format!(
            "label value {value:?}: at most 63 letters, digits, '-', '_' or '.', starting and \
             ending with a letter or digit"
        ))
    }
}

/// Checks a set of labels.
pub fn check_labels(labels: &Labels) -> Result<(), String> {
    if labels.len() > MAX_LABELS {
        return Err(format!("at most {MAX_LABELS} labels"));
    }
    for (k, v) in labels {
        check_key(k)?;
        check_value(v)?;
    }
    Ok(())
}

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `key=value`, `key==value`, `key in (…)`: present with one of the values.
    In(String, BTreeSet<String>),
    /// `key!=value`, `key notin (…)`: absent, or with none of the values.
    NotIn(String, BTreeSet<String>),
    /// `key`: present.
    Exists(String),
    /// `!key`: absent.
    Absent(String),
}

impl Requirement {
    fn matches(&self, labels: &Labels) -> bool {
        match self {
            Requirement::In(k, values) => labels.get(k).is_some_and(|v| values.contains(v)),
            Requirement::NotIn(k, values) => labels.get(k).is_none_or(|v| !values.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::Absent(k) => !labels.contains_key(k),
        }
    }
}

/// A parsed selector: every requirement must hold. The empty selector selects all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector(Vec<Requirement>);

impl Selector {
    /// Parses Kubernetes label-selector syntax.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() > MAX_SELECTOR {
            return Err(format!("a selector is at most {MAX_SELECTOR} bytes"));
        }
        let mut parser = Parser { text, pos: 0 };
        let mut requirements = Vec::new();
        parser.skip_spaces();
        if parser.at_end() {
            return Ok(Selector(requirements));
        }
        loop {
            requirements.push(parser.requirement()?);
            parser.skip_spaces();
            if parser.at_end() {
                break;
            }
            parser.expect(',')?;
        }
        Ok(Selector(requirements))
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.0.iter().all(|r| r.matches(labels))
    }

    /// The requirements.
    pub fn requirements(&self) -> &[Requirement] {
        &self.0
    }

    /// Parses a selector that grants an account sight of private repositories: it
    /// must require some label to be present (`key=value`, `key in (…)`, `key`).
    /// A selector of only absences (`!secret`, `env!=prod`) or the empty one would
    /// match every repository without those labels, new ones included.
    pub fn parse_granting(text: &str) -> Result<Self, String> {
        let selector = Self::parse(text)?;
        let positive = selector
            .0
            .iter()
            .any(|r| matches!(r, Requirement::In(..) | Requirement::Exists(_)));
        if !positive {
            return Err(format!(
                "selector {text:?} requires no label to be present, so it would show every \
                 private repository without the labels it excludes; add one such as team=db"
            ));
        }
        Ok(selector)
    }
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    fn skip_spaces(&mut self) {
        let trimmed = self.rest().trim_start_matches(' ');
        self.pos = self.text.len() - trimmed.len();
    }

    fn error(&self, what: &str) -> String {
        format!(
            "selector {:?}: {what} at position {} (syntax: team=db,env in (prod,stage),!experimental)",
            self.text, self.pos
        )
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        self.skip_spaces();
        if self.rest().starts_with(c) {
            self.pos += c.len_utf8();
            Ok(())
        } else {
            Err(self.error(&format!("expected '{c}'")))
        }
    }

    /// A key or value: everything up to a delimiter.
    fn word(&mut self) -> &str {
        self.skip_spaces();
        let rest = self.rest();
        let end = rest
            .find([',', '=', '!', '(', ')', ' '])
            .unwrap_or(rest.len());
        let start = self.pos;
        self.pos += end;
        &self.text[start..self.pos]
    }

    fn key(&mut self) -> Result<String, String> {
        let key = self.word().to_string();
        if key.is_empty() {
            return Err(self.error("expected a label key"));
        }
        check_key(&key).map_err(|e| self.error(&e))?;
        Ok(key)
    }

    fn value(&mut self) -> Result<String, String> {
        let value = self.word().to_string();
        check_value(&value).map_err(|e| self.error(&e))?;
        Ok(value)
    }

    fn set(&mut self) -> Result<BTreeSet<String>, String> {
        self.expect('(')?;
        let mut values = BTreeSet::new();
        loop {
            let value = self.value()?;
            if value.is_empty() {
                return Err(self.error("expected a value in the set"));
            }
            values.insert(value);
            self.skip_spaces();
            if self.rest().starts_with(')') {
                self.pos += 1;
                return Ok(values);
            }
            self.expect(',')?;
        }
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        self.skip_spaces();
        if self.rest().starts_with('!') && !self.rest().starts_with("!=") {
            self.pos += 1;
            return Ok(Requirement::Absent(self.key()?));
        }
        let key = self.key()?;
        self.skip_spaces();
        let rest = self.rest();
        let single = |p: &mut Self, skip: usize| -> Result<BTreeSet<String>, String> {
            p.pos += skip;
            Ok(BTreeSet::from([p.value()?]))
        };
        if rest.starts_with("==") {
            Ok(Requirement::In(key, single(self, 2)?))
        } else if rest.starts_with("!=") {
            Ok(Requirement::NotIn(key, single(self, 2)?))
        } else if rest.starts_with('=') {
            Ok(Requirement::In(key, single(self, 1)?))
        } else if rest.starts_with("notin") && rest[5..].trim_start().starts_with('(') {
            self.pos += 5;
            Ok(Requirement::NotIn(key, self.set()?))
        } else if rest.starts_with("in") && rest[2..].trim_start().starts_with('(') {
            self.pos += 2;
            Ok(Requirement::In(key, self.set()?))
        } else if rest.is_empty() || rest.starts_with(',') {
            Ok(Requirement::Exists(key))
        } else {
            Err(self.error("expected =, ==, !=, in (…), notin (…), ',' or the end"))
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |values: &BTreeSet<String>| values.iter().cloned().collect::<Vec<_>>().join(",");
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|r| match r {
                Requirement::In(k, v) if v.len() == 1 => format!("{k}={}", set(v)),
                Requirement::In(k, v) => format!("{k} in ({})", set(v)),
                Requirement::NotIn(k, v) if v.len() == 1 => format!("{k}!={}", set(v)),
                Requirement::NotIn(k, v) => format!("{k} notin ({})", set(v)),
                Requirement::Exists(k) => k.clone(),
                Requirement::Absent(k) => format!("!{k}"),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_granting_selector_must_require_a_label() {
        for ok in [
            "team=db",
            "team",
            "env in (prod),!experimental",
            "team,env!=prod",
        ] {
            assert!(Selector::parse_granting(ok).is_ok(), "{ok}");
        }
        for refused in ["", "  ", "!secret", "env!=prod", "env notin (dev),!x"] {
            let e = Selector::parse_granting(refused).expect_err(refused);
            assert!(e.contains("requires no label"), "{refused}: {e}");
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_kubernetes_forms_parse_and_match() {
        let s = Selector::parse("team=db, env in (prod, stage),!experimental").expect("valid");
        assert_eq!(s.requirements().len(), 3);
        assert!(s.matches(&labels(&[("team", "db"), ("env", "prod")])));
        assert!(s.matches(&labels(&[("team", "db"), ("env", "stage"), ("x", "")])));
        assert!(!s.matches(&labels(&[("team", "db"), ("env", "dev")])));
        assert!(!s.matches(&labels(&[
            ("team", "db"),
            ("env", "prod"),
            ("experimental", "")
        ])));
        assert!(!s.matches(&labels(&[("env", "prod")])));

        let s =
            Selector::parse("tier!=frontend,zone notin (a,b),owner,app.kubernetes.io/name==cairn")
                .expect("valid");
        let ok = labels(&[("owner", "x"), ("app.kubernetes.io/name", "cairn")]);
        assert!(s.matches(&ok), "!= and notin hold when the key is absent");
        let mut bad = ok.clone();
        bad.insert("zone".into(), "a".into());
        assert!(!s.matches(&bad));
        assert_eq!(
            s.to_string(),
            "tier!=frontend,zone notin (a,b),owner,app.kubernetes.io/name=cairn"
        );
        assert!(Selector::parse("").expect("valid").matches(&Labels::new()));
        assert!(
            Selector::parse("  ")
                .expect("valid")
                .matches(&Labels::new())
        );
        assert!(
            Selector::parse("env=")
                .expect("valid")
                .matches(&labels(&[("env", "")]))
        );
    }

    #[test]
    fn malformed_selectors_say_where() {
        for bad in [
            "team=db,",
            ",team=db",
            "team in prod",
            "team in (prod",
            "team in ()",
            "=db",
            "team=db=x",
            "te am=db",
            "-team=db",
            "team=-db",
            "team=(db)",
            "!",
            "!team=db",
            "a/b/c=d",
            "UPPER.example/x=y",
            &"k".repeat(64),
            &format!("k={}", "v".repeat(64)),
        ] {
            let e = Selector::parse(bad).expect_err(bad);
            assert!(e.contains("selector"), "{bad}: {e}");
        }
        assert!(Selector::parse(&"a=b,".repeat(2000)).is_err());
    }

    #[test]
    fn labels_are_checked() {
        assert!(check_labels(&labels(&[("team", "db"), ("example.com/tier", "")])).is_ok());
        assert!(check_labels(&labels(&[("", "x")])).is_err());
        assert!(check_labels(&labels(&[("team", "no spaces")])).is_err());
        let many: Labels = (0..=MAX_LABELS)
            .map(|i| (format!("k{i}"), String::new()))
            .collect();
        assert!(check_labels(&many).is_err());
    }
}
