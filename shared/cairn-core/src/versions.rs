//! Version ordering as each package manager defines it, for retention ("keep the
//! newest K versions"): dpkg for Debian, rpmvercmp for RPM, SemVer for charts.

use crate::repo::RepoFormat;
use std::cmp::Ordering;

/// Compares two versions of the same package by the rules of `format`.
pub fn compare(format: RepoFormat, a: &str, b: &str) -> Ordering {
    match format {
        RepoFormat::Deb => compare_deb(a, b),
        RepoFormat::Rpm => compare_rpm_evr(a, b),
        RepoFormat::Helm => cairn_helm::compare_versions(a, b),
    }
}

/// Splits `[epoch:]rest` into a numeric epoch (0 when absent or unreadable) and the rest.
fn split_epoch(v: &str) -> (u64, &str) {
    match v.split_once(':') {
        Some((e, rest)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => {
            (e.parse().unwrap_or(u64::MAX), rest)
        }
        _ => (0, v),
    }
}

/// dpkg's ordering of `[epoch:]upstream[-revision]`.
pub fn compare_deb(a: &str, b: &str) -> Ordering {
    let (ea, ra) = split_epoch(a);
    let (eb, rb) = split_epoch(b);
    let split_rev = |v: &str| -> (String, String) {
        match v.rsplit_once('-') {
            Some((up, rev)) => (up.to_string(), rev.to_string()),
            None => (v.to_string(), String::new()),
        }
    };
    let (ua, va) = split_rev(ra);
    let (ub, vb) = split_rev(rb);
    ea.cmp(&eb)
        .then_with(|| deb_part(&ua, &ub))
        .then_with(|| deb_part(&va, &vb))
}

/// dpkg's `verrevcmp`: alternating non-digit and digit runs; `~` sorts before
/// everything, even the end of the string; letters before other characters.
fn deb_part(a: &str, b: &str) -> Ordering {
    fn order(c: Option<u8>) -> i32 {
        match c {
            None => 0,
            Some(b'~') => -1,
            Some(c) if c.is_ascii_digit() => 0,
            Some(c) if c.is_ascii_alphabetic() => i32::from(c),
            Some(c) => i32::from(c) + 256,
        }
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ac = order(a.get(i).copied().filter(|c| !c.is_ascii_digit()));
            let bc = order(b.get(j).copied().filter(|c| !c.is_ascii_digit()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            if i < a.len() && !a[i].is_ascii_digit() {
                i += 1;
            }
            if j < b.len() && !b[j].is_ascii_digit() {
                j += 1;
            }
        }
        let start_a = i;
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        let start_b = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let by_number = compare_digits(&a[start_a..i], &b[start_b..j]);
        if by_number != Ordering::Equal {
            return by_number;
        }
    }
    Ordering::Equal
}

/// Compares two runs of ASCII digits as numbers of any length.
fn compare_digits(a: &[u8], b: &[u8]) -> Ordering {
    let trim = |s: &[u8]| -> Vec<u8> { s.iter().copied().skip_while(|c| *c == b'0').collect() };
    let (a, b) = (trim(a), trim(b));
    a.len().cmp(&b.len()).then_with(|| a.cmp(&b))
}

/// RPM's ordering of `[epoch:]version-release`.
pub fn compare_rpm_evr(a: &str, b: &str) -> Ordering {
    let (ea, ra) = split_epoch(a);
    let (eb, rb) = split_epoch(b);
    let split_rel = |v: &str| -> (String, String) {
        match v.rsplit_once('-') {
            Some((ver, rel)) => (ver.to_string(), rel.to_string()),
            None => (v.to_string(), String::new()),
        }
    };
    let (va, la) = split_rel(ra);
    let (vb, lb) = split_rel(rb);
    ea.cmp(&eb)
        .then_with(|| rpmvercmp(&va, &vb))
        .then_with(|| rpmvercmp(&la, &lb))
}

/// rpm's `rpmvercmp`: alphanumeric segments compared pairwise (numbers as numbers,
/// numbers newer than letters); `~` sorts before anything, `^` after the end.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let separator = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    loop {
        while i < a.len() && separator(a[i]) {
            i += 1;
        }
        while j < b.len() && separator(b[j]) {
            j += 1;
        }
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        if ca == Some(b'^') || cb == Some(b'^') {
            match (ca, cb) {
                (None, _) => return Ordering::Less,
                (_, None) => return Ordering::Greater,
                (Some(x), _) if x != b'^' => return Ordering::Greater,
                (_, Some(y)) if y != b'^' => return Ordering::Less,
                _ => {}
            }
            i += 1;
            j += 1;
            continue;
        }
        let (Some(ca), Some(_)) = (ca, cb) else {
            break;
        };
        let numeric = ca.is_ascii_digit();
        let take = |s: &[u8], mut k: usize| {
            let start = k;
            while k < s.len()
                && (if numeric {
                    s[k].is_ascii_digit()
                } else {
                    s[k].is_ascii_alphabetic()
                })
            {
                k += 1;
            }
            (start, k)
        };
        let (sa, ea) = take(a, i);
        let (sb, eb) = take(b, j);
        i = ea;
        j = eb;
        if sb == eb {
            // A number against letters: the number is newer.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let by_segment = if numeric {
            compare_digits(&a[sa..ea], &b[sb..eb])
        } else {
            a[sa..ea].cmp(&b[sb..eb])
        };
        if by_segment != Ordering::Equal {
            return by_segment;
        }
    }
    match (i >= a.len(), j >= b.len()) {
        (true, true) => Ordering::Equal,
        (false, _) => Ordering::Greater,
        (_, false) => Ordering::Less,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::{Equal, Greater, Less};

    #[test]
    fn dpkg_order() {
        for (a, b, want) in [
            ("1.0", "1.0", Equal),
            ("1.0", "1.1", Less),
            ("1.10", "1.9", Greater),
            ("1.0~rc1", "1.0", Less),
            ("1.0~rc1", "1.0~rc2", Less),
            ("1:0.1", "2.0", Greater),
            ("1.0-1", "1.0-2", Less),
            ("1.0-10", "1.0-9", Greater),
            ("1.0a", "1.0+", Less),
            ("2.10-3", "2.10-3ubuntu1", Less),
        ] {
            assert_eq!(compare_deb(a, b), want, "{a} vs {b}");
            assert_eq!(compare_deb(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn rpm_order() {
        for (a, b, want) in [
            ("1.0-1", "1.0-1", Equal),
            ("1.0-1", "1.0-2", Less),
            ("1.10-1", "1.9-1", Greater),
            ("1.0~rc1-1", "1.0-1", Less),
            ("1.0^git1-1", "1.0-1", Greater),
            ("1.0^git1-1", "1.0.1-1", Less),
            ("1:1.0-1", "2.0-1", Greater),
            ("1.0a-1", "1.0-1", Greater),
            ("1.0-1.el8", "1.0-1.el9", Less),
            ("2.0", "2.a", Greater),
            ("1.01", "1.1", Equal),
        ] {
            assert_eq!(compare_rpm_evr(a, b), want, "{a} vs {b}");
            assert_eq!(compare_rpm_evr(b, a), want.reverse(), "{b} vs {a}");
        }
    }
}
