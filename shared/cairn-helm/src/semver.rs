//! Strict SemVer 2.0.0 (<https://semver.org>): parsing and precedence.
//!
//! Helm's own parser (Masterminds/semver) is lenient and reads `1.0` or `v1.2.3`;
//! the chart specification says versions are SemVer 2, and a repository that accepts
//! only those never has to guess how two spellings of one version order.

use std::cmp::Ordering;

/// A parsed version; numeric fields stay text so that no size limit applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Version<'a> {
    major: &'a str,
    minor: &'a str,
    patch: &'a str,
    pre: Vec<&'a str>,
}

/// Why a string is not SemVer 2.
pub(crate) fn parse(s: &str) -> Result<Version<'_>, &'static str> {
    let (rest, build) = match s.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (s, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let mut parts = core.split('.');
    let (Some(major), Some(minor), Some(patch), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("expected MAJOR.MINOR.PATCH");
    };
    for n in [major, minor, patch] {
        if !is_numeric(n) {
            return Err("MAJOR.MINOR.PATCH must be numbers without leading zeros");
        }
    }
    let pre: Vec<&str> = match pre {
        Some(pre) => pre.split('.').collect(),
        None => Vec::new(),
    };
    for id in &pre {
        if !is_identifier(id) {
            return Err("pre-release identifiers must be non-empty [0-9A-Za-z-]");
        }
        if id.bytes().all(|b| b.is_ascii_digit()) && !is_numeric(id) {
            return Err("numeric pre-release identifiers must not have leading zeros");
        }
    }
    if let Some(build) = build
        && !build.split('.').all(is_identifier)
    {
        return Err("build metadata identifiers must be non-empty [0-9A-Za-z-]");
    }
    Ok(Version {
        major,
        minor,
        patch,
        pre,
    })
}

fn is_identifier(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn is_numeric(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && (n == "0" || !n.starts_with('0'))
}

/// Numbers without leading zeros order by length, then digit by digit.
fn cmp_numbers(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

impl Version<'_> {
    /// SemVer precedence: build metadata is ignored.
    pub(crate) fn cmp_precedence(&self, other: &Self) -> Ordering {
        cmp_numbers(self.major, other.major)
            .then_with(|| cmp_numbers(self.minor, other.minor))
            .then_with(|| cmp_numbers(self.patch, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => cmp_pre(&self.pre, &other.pre),
            })
    }
}

fn cmp_pre(a: &[&str], b: &[&str]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let x_num = x.bytes().all(|c| c.is_ascii_digit());
        let y_num = y.bytes().all(|c| c.is_ascii_digit());
        let order = match (x_num, y_num) {
            (true, true) => cmp_numbers(x, y),
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => x.cmp(y),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_semver_2() {
        for ok in [
            "0.1.0",
            "1.0.0-alpha.1",
            "1.0.0+20130313144700",
            "1.0.0-0.3.7",
            "1.0.0-x-y-z.--",
            "99999999999999999999.0.0",
            "1.0.0+001",
        ] {
            assert!(parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "1.0",
            "v1.0.0",
            "1",
            "01.0.0",
            "1.0.0-01",
            "1.0.0-",
            "1.0.0+",
            "1.0.0-a..b",
            "1.0.0.0",
            "1.0.0-é",
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn orders_by_precedence() {
        // The example chain from semver.org section 11.
        let chain = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.9.0",
            "1.10.0",
            "2.0.0",
            "10.0.0",
        ];
        for pair in chain.windows(2) {
            let (a, b) = (
                parse(pair[0]).expect("valid"),
                parse(pair[1]).expect("valid"),
            );
            assert_eq!(a.cmp_precedence(&b), Ordering::Less, "{pair:?}");
            assert_eq!(b.cmp_precedence(&a), Ordering::Greater, "{pair:?}");
        }
        let a = parse("1.0.0+a").expect("valid");
        let b = parse("1.0.0+b").expect("valid");
        assert_eq!(a.cmp_precedence(&b), Ordering::Equal);
    }
}
