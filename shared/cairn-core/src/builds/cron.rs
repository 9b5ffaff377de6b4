//! Cron expressions for scheduled builds: the five fields of crontab(5) (minute,
//! hour, day of month, month, day of week) in UTC, with `*`, lists, ranges, steps,
//! month and day names, and the `@daily`-style shorthands.
//!
//! As in Vixie cron, when both the day of month and the day of week are restricted a
//! day matches either; when one is `*` only the other counts.

use time::{Date, OffsetDateTime, Time};

/// How far ahead the next time is looked for: an expression that names a day that
/// never comes (`0 0 30 2 *`) is refused instead of scheduled.
const HORIZON_DAYS: i64 = 366 * 5;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    any_day: bool,
    any_weekday: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// One field's allowed values as a bit set, and whether it starts with `*`.
fn field(
    text: &str,
    what: &str,
    min: u32,
    max: u32,
    names: &[&str],
) -> Result<(u64, bool), String> {
    let value = |t: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(t)) {
            return Ok(min + i as u32);
        }
        t.parse::<u32>()
            .ok()
            .filter(|v| (min..=max).contains(v))
            .ok_or_else(|| format!("{what} {t:?} is not a number from {min} to {max}"))
    };
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step = s
                    .parse::<u32>()
                    .ok()
                    .filter(|s| (1..=max.max(1)).contains(s))
                    .ok_or_else(|| format!("{what} step {s:?} is not a number from 1 to {max}"))?;
                (r, step)
            }
            None => (part, 1),
        };
        let (from, to) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (value(a)?, value(b)?);
            if a > b {
                return Err(format!("{what} range {range:?} runs backwards"));
            }
            (a, b)
        } else {
            let a = value(range)?;
            // `5/15` means from 5 to the end in steps of 15, as in Vixie cron.
            (a, if part.contains('/') { max } else { a })
        };
        let mut v = from;
        while v <= to {
            bits |= 1 << v;
            v += step;
        }
    }
    // As in Vixie cron, a field that starts with `*` (`*/2` too) counts as
    // unrestricted when day of month and day of week are combined.
    Ok((bits, text.starts_with('*')))
}

impl Cron {
    /// Reads an expression; the error says which field is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let expanded = match text {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other if other.starts_with('@') => {
                return Err(format!(
                    "{other:?} is not one of @yearly, @monthly, @weekly, @daily, @hourly"
                ));
            }
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return Err(format!(
                "{text:?} is not a cron expression: five fields (minute hour day-of-month \
                 month day-of-week, in UTC) or @daily and the like"
            ));
        };
        let (minutes, _) = field(minute, "minute", 0, 59, &[])?;
        let (hours, _) = field(hour, "hour", 0, 23, &[])?;
        let (days, any_day) = field(day, "day of month", 1, 31, &[])?;
        let (months, _) = field(month, "month", 1, 12, &MONTHS)?;
        let (mut weekdays, any_weekday) = field(weekday, "day of week", 0, 7, &WEEKDAYS)?;
        // 7 is Sunday too.
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays | 1) & 0x7f;
        }
        let cron = Cron {
            minutes,
            hours: hours as u32,
            days: days as u32,
            months: months as u16,
            weekdays: weekdays as u8,
            any_day,
            any_weekday,
        };
        if cron.next_after(0).is_none() {
            return Err(format!("{text:?} names a day that never comes"));
        }
        Ok(cron)
    }

    fn day_matches(&self, date: Date) -> bool {
        if self.months & (1 << u8::from(date.month())) == 0 {
            return false;
        }
        let day = self.days & (1 << date.day()) != 0;
        let weekday = self.weekdays & (1 << date.weekday().number_days_from_sunday()) != 0;
        match (self.any_day, self.any_weekday) {
            (false, false) => day || weekday,
            (false, true) => day,
            (true, false) => weekday,
            (true, true) => true,
        }
    }

    /// The first matching minute strictly after `after` (Unix seconds), as Unix
    /// seconds; `None` if none comes within five years.
    pub fn next_after(&self, after: i64) -> Option<i64> {
        let start = OffsetDateTime::from_unix_timestamp(after.div_euclid(60) * 60 + 60).ok()?;
        let mut date = start.date();
        let mut from = (start.hour(), start.minute());
        for _ in 0..HORIZON_DAYS {
            if self.day_matches(date) {
                for hour in from.0..24 {
                    if self.hours & (1 << hour) == 0 {
                        continue;
                    }
                    let first = if hour == from.0 { from.1 } else { 0 };
                    if let Some(minute) = (first..60).find(|m| self.minutes & (1 << m) != 0) {
                        let time = Time::from_hms(hour, minute, 0).ok()?;
                        return Some(date.with_time(time).assume_utc().unix_timestamp());
                    }
                }
            }
            date = date.next_day()?;
            from = (0, 0);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn next(expr: &str, after: OffsetDateTime) -> OffsetDateTime {
        let t = Cron::parse(expr)
            .expect("parses")
            .next_after(after.unix_timestamp())
            .expect("a next time");
        OffsetDateTime::from_unix_timestamp(t).expect("time")
    }

    #[test]
    fn finds_the_next_matching_minute() {
        let now = datetime!(2026-12-04 18:35:20 UTC);
        assert_eq!(next("* * * * *", now), datetime!(2026-12-04 18:36 UTC));
        assert_eq!(next("*/15 * * * *", now), datetime!(2026-12-04 18:45 UTC));
        assert_eq!(next("0 3 * * *", now), datetime!(2026-12-05 03:00 UTC));
        assert_eq!(next("@daily", now), datetime!(2026-12-05 00:00 UTC));
        assert_eq!(next("30 18 * * *", now), datetime!(2026-12-05 18:30 UTC));
        assert_eq!(next("0 0 1 jan *", now), datetime!(2027-01-01 00:00 UTC));
        // 2026-12-04 is a Friday.
        assert_eq!(
            next("0 9 * * mon-fri", now),
            datetime!(2026-12-07 09:00 UTC)
        );
        assert_eq!(next("0 9 * * 7", now), datetime!(2026-12-06 09:00 UTC));
        assert_eq!(next("0 0 29 2 *", now), datetime!(2028-02-29 00:00 UTC));
        assert_eq!(next("5/20 * * * *", now), datetime!(2026-12-04 18:45 UTC));
    }

    #[test]
    fn a_restricted_day_and_weekday_match_either() {
        // The 13th, or any Friday: the next is today's (Friday) 20:00.
        let now = datetime!(2026-12-04 18:35 UTC);
        assert_eq!(next("0 20 13 * fri", now), datetime!(2026-12-04 20:00 UTC));
        assert_eq!(next("0 20 13 * *", now), datetime!(2026-12-13 20:00 UTC));
        // `*/2` starts with `*`: odd days that are Mondays (the 7th), not either.
        assert_eq!(next("0 0 */2 * mon", now), datetime!(2026-12-07 00:00 UTC));
    }

    #[test]
    fn a_time_exactly_on_a_match_gives_the_next_one() {
        let now = datetime!(2026-12-04 03:00 UTC);
        assert_eq!(next("0 3 * * *", now), datetime!(2026-12-05 03:00 UTC));
    }

    #[test]
    fn refuses_what_is_not_an_expression() {
        for (expr, says) in [
            ("* * * *", "five fields"),
            ("60 * * * *", "minute \"60\""),
            ("* 24 * * *", "hour"),
            ("* * 0 * *", "day of month"),
            ("* * * 13 *", "month"),
            ("* * * * 8", "day of week"),
            ("*/0 * * * *", "step"),
            ("5-1 * * * *", "backwards"),
            ("@reboot", "@daily"),
            ("0 0 30 2 *", "never comes"),
            ("", "five fields"),
        ] {
            let e = Cron::parse(expr).expect_err(expr);
            assert!(e.contains(says), "{expr}: {e}");
        }
    }
}
