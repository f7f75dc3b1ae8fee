//! Chronos's ISO 8601 repeating schedules, `R<n>/<start>/<period>`: parsing, and the
//! rewrite Chronos does as a job runs (the count goes down by one, the start moves on
//! by one period, the string is re-formatted as `2030-01-01T01:00:00.000Z`).

use chrono::{DateTime, Months, Utc};

use crate::emulator::clock::iso_millis;

const MAX_PERIOD_SECONDS: i64 = 1_000_000_000_000;

fn seconds(n: i64) -> chrono::Duration {
    chrono::Duration::try_seconds(n).unwrap_or(chrono::Duration::MAX)
}

/// An ISO 8601 duration as Chronos reads it (`P1Y2M3W4DT5H6M7S`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Period {
    months: u32,
    /// Everything below months, in seconds (weeks, days, hours, minutes, seconds).
    seconds: i64,
    text: String,
}

impl Period {
    /// Parse `P…`; `None` when it is not a positive ISO duration.
    pub fn parse(text: &str) -> Option<Period> {
        let body = text.strip_prefix('P')?;
        let (date, time) = match body.split_once('T') {
            Some((date, time)) => (date, Some(time)),
            None => (body, None),
        };
        let mut months: u32 = 0;
        let mut seconds: i64 = 0;
        let mut any = false;
        let mut read = |part: &str, units: &[(char, i64, bool)]| -> Option<()> {
            let mut number = String::new();
            for c in part.chars() {
                if c.is_ascii_digit() {
                    number.push(c);
                    continue;
                }
                let (_, factor, is_month) = units.iter().find(|(u, _, _)| *u == c)?;
                let n: i64 = number.parse().ok()?;
                number.clear();
                any = true;
                if *is_month {
                    months = months.checked_add(u32::try_from(n * factor).ok()?)?;
                } else {
                    seconds = seconds.checked_add(n.checked_mul(*factor)?)?;
                }
            }
            number.is_empty().then_some(())
        };
        read(date, &[('Y', 12, true), ('M', 1, true), ('W', 7 * 86400, false), ('D', 86400, false)])?;
        if let Some(time) = time {
            if time.is_empty() {
                return None;
            }
            read(time, &[('H', 3600, false), ('M', 60, false), ('S', 1, false)])?;
        }
        // Periods beyond ~30k years are refused rather than overflowing date arithmetic.
        let sane = seconds <= MAX_PERIOD_SECONDS && months <= 12 * 30_000;
        (any && sane && (months > 0 || seconds > 0)).then(|| Period {
            months,
            seconds,
            text: text.to_owned(),
        })
    }

    /// `instant` minus this period once.
    pub fn before(&self, instant: DateTime<Utc>) -> DateTime<Utc> {
        let back = instant.checked_sub_months(Months::new(self.months)).unwrap_or(instant);
        back.checked_sub_signed(seconds(self.seconds)).unwrap_or(back)
    }

    /// Length in whole seconds when the period has no months (a fixed duration).
    pub fn fixed_seconds(&self) -> Option<i64> {
        (self.months == 0).then_some(self.seconds)
    }

    /// `instant` plus this period `times` times.
    fn add(&self, instant: DateTime<Utc>, times: u64) -> DateTime<Utc> {
        let mut out = instant;
        if self.months > 0 {
            let total = u64::from(self.months).saturating_mul(times);
            out =
                out.checked_add_months(Months::new(u32::try_from(total).unwrap_or(u32::MAX))).unwrap_or(out);
        }
        let secs = self.seconds.saturating_mul(i64::try_from(times).unwrap_or(i64::MAX));
        out.checked_add_signed(seconds(secs)).unwrap_or(out)
    }
}

/// A parsed `R<n>/<start>/<period>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Runs left; `None` = forever.
    pub repeats: Option<u64>,
    /// The next run.
    pub start: DateTime<Utc>,
    /// Time between runs.
    pub period: Period,
}

impl Schedule {
    /// Parse a schedule; an empty start means "now".
    pub fn parse(text: &str, now: DateTime<Utc>) -> Option<Schedule> {
        let mut parts = text.split('/');
        let (repeat, start, period) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let repeats = match repeat.strip_prefix('R')? {
            "" => None,
            n => Some(n.parse::<u64>().ok()?),
        };
        let start = if start.is_empty() { now } else { parse_instant(start)? };
        Some(Schedule { repeats, start, period: Period::parse(period)? })
    }

    /// The string Chronos writes back after a run.
    pub fn render(&self) -> String {
        let repeat = self.repeats.map(|n| n.to_string()).unwrap_or_default();
        format!("R{repeat}/{}/{}", iso_millis(self.start), self.period.text)
    }

    /// Whether runs remain.
    pub fn exhausted(&self) -> bool {
        self.repeats == Some(0)
    }

    /// Drop the occurrences before `threshold` without running them (a missed run
    /// still uses up one repetition); returns how many were dropped.
    pub fn skip_before(&mut self, threshold: DateTime<Utc>) -> u64 {
        self.take_due(threshold - chrono::Duration::milliseconds(1))
    }

    /// Consume every run due at `now`; returns how many ran.
    pub fn take_due(&mut self, now: DateTime<Utc>) -> u64 {
        if self.exhausted() || self.start > now {
            return 0;
        }
        let mut due: u64 = if self.period.months == 0 && self.period.seconds > 0 {
            let behind = (now - self.start).num_seconds().max(0);
            u64::try_from(behind / self.period.seconds).unwrap_or(0) + 1
        } else {
            let mut count = 0;
            let mut at = self.start;
            while at <= now && count < 100_000 {
                count += 1;
                at = self.period.add(at, 1);
            }
            count
        };
        if let Some(left) = self.repeats {
            due = due.min(left);
            self.repeats = Some(left - due);
        }
        self.start = self.period.add(self.start, due);
        due
    }
}

/// Parse the start instant forms Joda accepts in practice.
pub fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(parsed) = DateTime::parse_from_rfc3339(text) {
        return Some(parsed.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
        if let Ok(parsed) = DateTime::parse_from_str(text, format) {
            return Some(parsed.with_timezone(&Utc));
        }
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(parsed) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Some(parsed.and_utc());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        parse_instant(text).unwrap()
    }

    #[test]
    fn a_run_counts_down_and_moves_the_start() {
        let mut schedule =
            Schedule::parse("R3/2030-01-01T00:00:00Z/PT1H", at("2020-01-01T00:00:00Z")).unwrap();
        assert_eq!(schedule.take_due(at("2030-01-01T00:30:00Z")), 1);
        assert_eq!(schedule.render(), "R2/2030-01-01T01:00:00.000Z/PT1H");
        assert_eq!(schedule.take_due(at("2030-01-01T05:00:00Z")), 2);
        assert!(schedule.exhausted());
    }

    #[test]
    fn missed_runs_are_skipped() {
        let mut schedule = Schedule::parse("R10/2030-01-01T00:00:00Z/PT1H", Utc::now()).unwrap();
        assert_eq!(schedule.skip_before(at("2030-01-01T03:00:00Z")), 3);
        assert_eq!(schedule.render(), "R7/2030-01-01T03:00:00.000Z/PT1H");
        assert_eq!(schedule.period.before(at("2030-01-01T03:00:00Z")), at("2030-01-01T02:00:00Z"));
    }

    #[test]
    fn periods() {
        assert!(Period::parse("P1D").is_some());
        assert!(Period::parse("PT").is_none());
        assert!(Period::parse("P").is_none());
        assert!(Period::parse("1D").is_none());
        let mut monthly = Schedule::parse("R/2030-01-31T00:00:00Z/P1M", Utc::now()).unwrap();
        assert_eq!(monthly.take_due(at("2030-01-31T00:00:00Z")), 1);
        assert_eq!(monthly.render(), "R/2030-02-28T00:00:00.000Z/P1M");
    }
}
