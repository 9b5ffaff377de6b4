//! The few Go standard-library and go-yaml v2 behaviours that decide what Helm reads from
//! a Chart.yaml and how it writes `index.yaml`: number formatting (`strconv`), number
//! and timestamp recognition in plain scalars, and the order of mapping keys.
//!
//! Helm 3 reads and writes YAML through `sigs.k8s.io/yaml`, which converts between
//! go-yaml v2 values and JSON. Reproducing these rules is what makes an entry rendered
//! here equal, field for field, to one written by `helm repo index`.

use std::cmp::Ordering;

/// `strconv.FormatFloat(f, 'g', -1, 32 or 64)`: the shortest decimal that reads back as
/// the same float, in `%e` form when the exponent is below -4 or at least 6.
pub(crate) fn format_float_g(f: f64, single: bool) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let (negative, digits, exponent) = shortest_digits(f, single);
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if digits.is_empty() {
        out.push('0');
        return out;
    }
    if !(-4..6).contains(&exponent) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exponent < 0 { '-' } else { '+' });
        let magnitude = exponent.unsigned_abs();
        if magnitude < 10 {
            out.push('0');
        }
        out.push_str(&magnitude.to_string());
    } else {
        out.push_str(&fixed_from_digits(&digits, exponent));
    }
    out
}

/// Sign, significant digits (no trailing zeros; empty for zero) and decimal exponent
/// of the shortest representation that round-trips through f64 (or f32).
fn shortest_digits(f: f64, single: bool) -> (bool, String, i32) {
    // Rust's `{:e}` writes the shortest round-tripping digits, as Go's -1 precision does.
    #[allow(clippy::cast_possible_truncation)] // the point: Go rounds to float32 here too
    let text = if single {
        format!("{:e}", f as f32)
    } else {
        format!("{f:e}")
    };
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.as_str()),
    };
    let (mantissa, exponent) = rest.split_once('e').unwrap_or((rest, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0').to_string();
    (negative, digits, exponent)
}

/// Fixed notation of `0.d1d2d3… × 10^(exponent+1)` without rounding.
fn fixed_from_digits(digits: &str, exponent: i32) -> String {
    let bytes = digits.as_bytes();
    let digit = |i: i32| -> char {
        if i < 0 {
            return '0';
        }
        usize::try_from(i)
            .ok()
            .and_then(|i| bytes.get(i))
            .map_or('0', |b| char::from(*b))
    };
    let point = exponent + 1;
    let count = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
    let mut out = String::new();
    if point <= 0 {
        out.push('0');
    } else {
        for i in 0..point {
            out.push(digit(i));
        }
    }
    let decimals = (count - point).max(0);
    if decimals > 0 {
        out.push('.');
        for i in 0..decimals {
            out.push(digit(point + i));
        }
    }
    out
}

/// How a float inside an untyped Helm field (`import-values`) comes out of Helm's YAML
/// writer: `encoding/json` prints it (fixed notation below 1e21), go-yaml reads that text
/// back (an integer if it looks like one) and prints it again.
pub(crate) fn format_untyped_float(f: f64) -> String {
    if !f.is_finite() {
        return match format_float_g(f, false).as_str() {
            "+Inf" => ".inf".into(),
            "-Inf" => "-.inf".into(),
            _ => ".nan".into(),
        };
    }
    if f == 0.0 {
        return "0".into();
    }
    let magnitude = f.abs();
    if (1e-6..1e21).contains(&magnitude) && f.fract() == 0.0 {
        let (negative, digits, exponent) = shortest_digits(f, false);
        let mut fixed = fixed_from_digits(&digits, exponent);
        if negative {
            fixed.insert(0, '-');
        }
        if parse_int(&fixed).is_some() {
            return fixed;
        }
    }
    format_float_g(f, false)
}

/// An integer as Go's `strconv.ParseInt(s, 0, 64)` or, failing that,
/// `strconv.ParseUint(s, 0, 64)` reads it (sign, then `0x`/`0o`/`0b`/leading-`0` base).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GoInt {
    /// Fits int64.
    Signed(i64),
    /// Only fits uint64.
    Unsigned(u64),
}

pub(crate) fn parse_int(s: &str) -> Option<GoInt> {
    let (sign, body) = match s.as_bytes().first()? {
        b'+' => (Some('+'), &s[1..]),
        b'-' => (Some('-'), &s[1..]),
        _ => (None, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(rest) = lower.strip_prefix("0x") {
        (16, rest)
    } else if let Some(rest) = lower.strip_prefix("0o") {
        (8, rest)
    } else if let Some(rest) = lower.strip_prefix("0b") {
        (2, rest)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    match sign {
        Some('-') => {
            if magnitude <= i64::MAX.unsigned_abs() + 1 {
                Some(GoInt::Signed(
                    0i64.checked_sub_unsigned(magnitude).unwrap_or(i64::MIN),
                ))
            } else {
                None
            }
        }
        Some(_) => i64::try_from(magnitude).ok().map(GoInt::Signed),
        None => Some(
            i64::try_from(magnitude)
                .map(GoInt::Signed)
                .unwrap_or(GoInt::Unsigned(magnitude)),
        ),
    }
}

/// go-yaml's last resort for `0b…`/`-0b…` text that `ParseInt(s, 0, 64)` rejected
/// (a sign after the prefix, say).
pub(crate) fn parse_binary(plain: &str) -> Option<GoInt> {
    let (negative, digits) = if let Some(rest) = plain.strip_prefix("0b") {
        match rest.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, rest.strip_prefix('+').unwrap_or(rest)),
        }
    } else {
        (true, plain.strip_prefix("-0b")?)
    };
    if digits.is_empty() || !digits.bytes().all(|b| b == b'0' || b == b'1') {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, 2).ok()?;
    if negative {
        (magnitude <= i64::MAX.unsigned_abs())
            .then(|| GoInt::Signed(0i64.saturating_sub_unsigned(magnitude)))
    } else {
        Some(
            i64::try_from(magnitude)
                .map(GoInt::Signed)
                .unwrap_or(GoInt::Unsigned(magnitude)),
        )
    }
}

/// go-yaml's `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
pub(crate) fn is_yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// go-yaml v2's base-60 float pattern (`1:20`), which it still quotes on output.
pub(crate) fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    let Some(&first) = b.first() else {
        return false;
    };
    if !(first == b'+' || first == b'-' || first.is_ascii_digit()) || !s.contains(':') {
        return false;
    }
    // ^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$
    let mut i = usize::from(first == b'+' || first == b'-');
    if i >= b.len() || !b[i].is_ascii_digit() {
        return false;
    }
    i += 1;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while i < b.len() && b[i] == b':' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() && i - start < 2 {
            i += 1;
        }
        let group = &b[start..i];
        let ok = match group {
            [d] => d.is_ascii_digit(),
            [a, d] => (b'0'..=b'5').contains(a) && d.is_ascii_digit(),
            _ => false,
        };
        if !ok {
            return false;
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

/// Whether go-yaml v2 reads a plain scalar as a timestamp (it then quotes such strings
/// on output). Its layouts are `2006-1-2T15:4:5.999999999Z07:00` (also with `t`),
/// `2006-1-2 15:4:5.999999999` and `2006-1-2`, parsed by Go's `time.Parse`.
pub(crate) fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let mut i = 5;
    let year: u32 = s[..4].parse().unwrap_or(0);
    let Some(month) = take_number(b, &mut i) else {
        return false;
    };
    if !(1..=12).contains(&month) || b.get(i) != Some(&b'-') {
        return false;
    }
    i += 1;
    let Some(day) = take_number(b, &mut i) else {
        return false;
    };
    if day < 1 || day > days_in_month(month, year) {
        return false;
    }
    if i == b.len() {
        return true;
    }
    let zoned = match b[i] {
        b'T' | b't' => true,
        b' ' => false,
        _ => return false,
    };
    i += 1;
    let Some(hour) = take_number(b, &mut i) else {
        return false;
    };
    if hour > 23 || b.get(i) != Some(&b':') {
        return false;
    }
    i += 1;
    let Some(minute) = take_number(b, &mut i) else {
        return false;
    };
    if minute > 59 || b.get(i) != Some(&b':') {
        return false;
    }
    i += 1;
    let Some(second) = take_number(b, &mut i) else {
        return false;
    };
    if second > 59 {
        return false;
    }
    if i + 1 < b.len() && (b[i] == b'.' || b[i] == b',') && b[i + 1].is_ascii_digit() {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if !zoned {
        return i == b.len();
    }
    match b.get(i) {
        Some(b'Z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            let zone = &b[i + 1..];
            zone.len() == 5
                && zone[0].is_ascii_digit()
                && zone[1].is_ascii_digit()
                && zone[2] == b':'
                && zone[3].is_ascii_digit()
                && zone[4].is_ascii_digit()
        }
        _ => false,
    }
}

/// One or two digits, as Go's `getnum` reads a non-fixed-width field.
fn take_number(b: &[u8], i: &mut usize) -> Option<u32> {
    let first = *b.get(*i)?;
    if !first.is_ascii_digit() {
        return None;
    }
    *i += 1;
    let mut n = u32::from(first - b'0');
    if let Some(&second) = b.get(*i)
        && second.is_ascii_digit()
    {
        *i += 1;
        n = n * 10 + u32::from(second - b'0');
    }
    Some(n)
}

fn days_in_month(month: u32, year: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// go-yaml v2's order of mapping keys on output (`keyList.Less`): runs of digits
/// compare as numbers, and a non-letter sorts before a letter. Go's `unicode.IsLetter`
/// and `IsDigit` are approximated by `char::is_alphabetic` and ASCII digits, which
/// agree on every key Helm metadata uses in practice.
pub(crate) fn key_order(a: &str, b: &str) -> Ordering {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if key_less(&a, &b) {
        Ordering::Less
    } else if key_less(&b, &a) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

fn key_less(a: &[char], b: &[char]) -> bool {
    for i in 0..a.len().min(b.len()) {
        if a[i] == b[i] {
            continue;
        }
        let a_letter = a[i].is_alphabetic();
        let b_letter = b[i].is_alphabetic();
        if a_letter && b_letter {
            return a[i] < b[i];
        }
        if a_letter || b_letter {
            return b_letter;
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if a[i] == '0' || b[i] == '0' {
            for j in (0..i).rev() {
                if !a[j].is_ascii_digit() {
                    break;
                }
                if a[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let number = |s: &[char], n: &mut i64| {
            let mut k = i;
            while k < s.len() && s[k].is_ascii_digit() {
                // Go's int64 arithmetic wraps on absurdly long digit runs; so does this.
                *n = n
                    .wrapping_mul(10)
                    .wrapping_add(i64::from(u32::from(s[k]) - u32::from('0')));
                k += 1;
            }
            k
        };
        let ai = number(a, &mut an);
        let bi = number(b, &mut bn);
        if an != bn {
            return an < bn;
        }
        if ai != bi {
            return ai < bi;
        }
        return a[i] < b[i];
    }
    a.len() < b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_format_like_go() {
        let cases: &[(f64, bool, &str)] = &[
            (1.10, true, "1.1"),
            (1.0, true, "1"),
            (1e6, true, "1e+06"),
            (1_234_567.0, true, "1.234567e+06"),
            (123_456.0, true, "123456"),
            (0.0001, false, "0.0001"),
            (0.000_015, false, "1.5e-05"),
            (std::f64::consts::PI, true, "3.1415927"),
            (std::f64::consts::PI, false, "3.141592653589793"),
            (-2.5, false, "-2.5"),
            (0.0, false, "0"),
            (1e21, false, "1e+21"),
        ];
        for (f, single, want) in cases {
            assert_eq!(format_float_g(*f, *single), *want, "{f} single={single}");
        }
    }

    #[test]
    fn untyped_floats_go_through_json_first() {
        assert_eq!(format_untyped_float(1e6), "1000000");
        assert_eq!(format_untyped_float(1.5), "1.5");
        assert_eq!(format_untyped_float(1e20), "1e+20");
        assert_eq!(format_untyped_float(-0.0), "0");
        assert_eq!(
            format_untyped_float(12_345_678_901_234_567_000.0),
            "12345678901234567000"
        );
        assert_eq!(format_untyped_float(0.000_001), "1e-06");
    }

    #[test]
    fn integers_parse_like_strconv_base_zero() {
        assert_eq!(parse_int("010"), Some(GoInt::Signed(8)));
        assert_eq!(parse_int("0x1F"), Some(GoInt::Signed(31)));
        assert_eq!(parse_int("-0b101"), Some(GoInt::Signed(-5)));
        assert_eq!(parse_int("0o17"), Some(GoInt::Signed(15)));
        assert_eq!(parse_int("+7"), Some(GoInt::Signed(7)));
        assert_eq!(parse_int("0"), Some(GoInt::Signed(0)));
        assert_eq!(
            parse_int("-9223372036854775808"),
            Some(GoInt::Signed(i64::MIN))
        );
        assert_eq!(
            parse_int("18446744073709551615"),
            Some(GoInt::Unsigned(u64::MAX))
        );
        assert_eq!(parse_int("+18446744073709551615"), None);
        assert_eq!(parse_int("09"), None);
        assert_eq!(parse_int("0x"), None);
        assert_eq!(parse_int("1.0"), None);
        assert_eq!(parse_int("-"), None);
    }

    #[test]
    fn recognises_floats_timestamps_and_base60() {
        for yes in ["1.0", ".5", "1e6", "-1.5E+3", "09", "1."] {
            assert!(is_yaml_style_float(yes), "{yes}");
        }
        for no in ["1.0.0", ".", "e5", "1e", "1.16.0", "0x10", ""] {
            assert!(!is_yaml_style_float(no), "{no}");
        }
        for yes in [
            "2024-01-02",
            "2024-1-2",
            "2026-11-21T09:20:06.074292996Z",
            "2024-02-29 10:00:00",
            "2024-01-02t01:02:03+05:30",
        ] {
            assert!(is_timestamp(yes), "{yes}");
        }
        for no in [
            "2023-02-29",
            "2024-13-01",
            "2024-01-02x",
            "2024-01-02T10:00:00",
            "20240-01-02",
            "2024-01-02 10:00:00Z",
        ] {
            assert!(!is_timestamp(no), "{no}");
        }
        assert!(is_base60_float("1:20"));
        assert!(is_base60_float("-190:20:30.15"));
        assert!(!is_base60_float("1:60"));
        assert!(!is_base60_float("a:1"));
    }

    #[test]
    fn keys_sort_like_go_yaml() {
        let mut keys = vec!["chart10", "chart9", "b", "a_b", "aB", "Z", "apiVersion"];
        keys.sort_by(|a, b| key_order(a, b));
        assert_eq!(
            keys,
            vec!["Z", "a_b", "aB", "apiVersion", "b", "chart9", "chart10"]
        );
    }
}
