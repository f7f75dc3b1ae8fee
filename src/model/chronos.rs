//! Typed model of a Chronos job (fields of 2.4, 2.5 and 3.x) and the ISO 8601
//! repeating-interval schedules Chronos uses (`R<n>/<start>/<period>`).
//!
//! Like [`super::marathon`], the typed job exists to check a manifest; the job travels
//! as JSON. Chronos drops unknown fields silently, so this check is the only one.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Datelike, Duration, Months, Utc};
use serde::Deserialize;
use serde_json::Value;

/// The Chronos API generations (DESIGN §5). Version decides the path prefix, the
/// fields a server reports, and which job names it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum ChronosVersion {
    /// 2.4.x: `/scheduler/*`, no leader endpoint, names without dots; has `epsilon`,
    /// `async`; no `taskInfoData`, `fetch`, `concurrent`, `maxCompletionTime`.
    V2_4,
    /// 2.5.x: `/scheduler/*`, `/scheduler/leader`; adds `taskInfoData` and `fetch`.
    V2_5,
    /// 3.x: `/v1/scheduler/*`; drops `epsilon` and `async`, adds `concurrent` and
    /// `maxCompletionTime`.
    V3,
}

impl ChronosVersion {
    /// The path prefix of the scheduler API.
    pub fn prefix(self) -> &'static str {
        match self {
            ChronosVersion::V2_4 | ChronosVersion::V2_5 => "/scheduler",
            ChronosVersion::V3 => "/v1/scheduler",
        }
    }
}

impl fmt::Display for ChronosVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChronosVersion::V2_4 => "2.4",
            ChronosVersion::V2_5 => "2.5",
            ChronosVersion::V3 => "3",
        })
    }
}

impl std::str::FromStr for ChronosVersion {
    type Err = String;

    /// `2.4`, `2.5`, `3` (also `2.4.0`, `3.0.2`, `3.x`, a leading `v`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().trim_start_matches('v');
        if s == "2.4" || s.starts_with("2.4.") {
            Ok(ChronosVersion::V2_4)
        } else if s == "2.5" || s.starts_with("2.5.") {
            Ok(ChronosVersion::V2_5)
        } else if s == "3" || s.starts_with("3.") {
            Ok(ChronosVersion::V3)
        } else {
            Err(format!("unsupported Chronos version `{s}` (expected 2.4, 2.5 or 3)"))
        }
    }
}

/// What opens an ownership marker.
pub const MARKER_OPEN: &str = "[mesosync:";

/// A description carrying more than one ownership marker: ownership is ambiguous
/// (someone copied a marker in, or tries to make two instances own the job), so no
/// instance owns it and it is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AmbiguousMark {
    /// How many markers it carries.
    pub marks: usize,
}

/// The ownership mark of a description: exactly one marker, at the very end (where
/// `normalize::chronos::with_owner_marker` puts it), counts; a marker anywhere else is text; two or more
/// are an error.
pub fn owner_mark(description: &str) -> Result<Option<&str>, AmbiguousMark> {
    let marks = description.matches(MARKER_OPEN).count();
    if marks > 1 {
        return Err(AmbiguousMark { marks });
    }
    let Some(start) = description.rfind(MARKER_OPEN) else { return Ok(None) };
    let rest = &description[start + MARKER_OPEN.len()..];
    Ok(rest.strip_suffix(']').filter(|instance| !instance.contains(']')))
}

/// A Chronos job as a manifest may write it (union of 2.4, 2.5 and 3.x fields).
#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JobSpec {
    pub name: String,
    pub command: Option<String>,
    pub arguments: Option<Vec<String>>,
    pub shell: Option<bool>,
    pub epsilon: Option<String>,
    pub executor: Option<String>,
    pub executor_flags: Option<String>,
    pub task_info_data: Option<String>,
    pub max_completion_time: Option<u64>,
    pub retries: Option<super::number::Int32>,
    pub owner: Option<String>,
    pub owner_name: Option<String>,
    pub description: Option<String>,
    #[serde(rename = "async")]
    pub async_: Option<bool>,
    // Chronos itself takes any number; a negative one is a job Mesos can never run.
    pub cpus: Option<super::number::NonNegative>,
    pub mem: Option<super::number::NonNegative>,
    pub disk: Option<super::number::NonNegative>,
    pub disabled: Option<bool>,
    pub soft_error: Option<bool>,
    pub data_processing_job_type: Option<bool>,
    pub data_job: Option<bool>,
    pub concurrent: Option<bool>,
    pub high_priority: Option<bool>,
    pub uris: Option<Vec<String>>,
    pub fetch: Option<Vec<Fetch>>,
    pub schedule: Option<String>,
    pub schedule_time_zone: Option<String>,
    pub parents: Option<Vec<String>>,
    pub run_as_user: Option<String>,
    pub container: Option<Container>,
    pub environment_variables: Option<Vec<EnvironmentVariable>>,
    pub constraints: Option<Vec<Vec<String>>>,
}

#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Fetch {
    pub uri: String,
    pub extract: Option<bool>,
    pub executable: Option<bool>,
    pub cache: Option<bool>,
    pub output_file: Option<String>,
}

#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnvironmentVariable {
    pub name: String,
    pub value: String,
}

#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Container {
    #[serde(rename = "type")]
    pub kind: String,
    pub image: String,
    pub force_pull_image: Option<bool>,
    pub network: Option<String>,
    pub network_name: Option<String>,
    pub network_infos: Option<Vec<Value>>,
    pub volumes: Option<Vec<Volume>>,
    pub parameters: Option<Vec<Parameter>>,
}

#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Volume {
    pub container_path: String,
    pub host_path: Option<String>,
    pub mode: Option<String>,
    pub external: Option<BTreeMap<String, Value>>,
}

#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parameter {
    pub key: String,
    pub value: String,
}

/// Check a job name against the portable set `[A-Za-z0-9_-]+`, which every Chronos
/// version accepts (2.4 refuses dots; 3.x refuses spaces and `#`).
pub fn check_job_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("job name must not be empty".into());
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-')) {
        return Err(format!(
            "job name '{name}' contains {c:?}: only letters, digits, '_' and '-' work on every Chronos version \
             (2.4 refuses '.', 3.x refuses spaces and '#')"
        ));
    }
    Ok(())
}

/// An ISO 8601 duration as Chronos accepts it (`P1D`, `PT1H`, `P1W`, `P1Y2M3DT4H5M6S`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Period {
    /// Calendar years.
    pub years: u32,
    /// Calendar months.
    pub months: u32,
    /// Weeks.
    pub weeks: u32,
    /// Days.
    pub days: u32,
    /// Hours.
    pub hours: u32,
    /// Minutes.
    pub minutes: u32,
    /// Seconds.
    pub seconds: u32,
}

impl Period {
    /// Parse `P…` (upper case designators; `T` separates date and time parts).
    pub fn parse(text: &str) -> Result<Self, String> {
        let body = text.strip_prefix('P').ok_or_else(|| format!("period '{text}' must start with 'P'"))?;
        let mut period = Period::default();
        let mut in_time = false;
        let mut number = String::new();
        let mut any = false;
        for c in body.chars() {
            match c {
                '0'..='9' => number.push(c),
                'T' if !in_time && number.is_empty() => in_time = true,
                'Y' | 'M' | 'W' | 'D' | 'H' | 'S' => {
                    let n: u32 = number
                        .parse()
                        .map_err(|_| format!("period '{text}': a number must come before '{c}'"))?;
                    number.clear();
                    any = true;
                    let slot = match (in_time, c) {
                        (false, 'Y') => &mut period.years,
                        (false, 'M') => &mut period.months,
                        (false, 'W') => &mut period.weeks,
                        (false, 'D') => &mut period.days,
                        (true, 'H') => &mut period.hours,
                        (true, 'M') => &mut period.minutes,
                        (true, 'S') => &mut period.seconds,
                        _ => {
                            return Err(format!(
                                "period '{text}': '{c}' is not allowed here (time parts need 'T')"
                            ));
                        }
                    };
                    *slot = n;
                }
                _ => return Err(format!("period '{text}': unexpected character {c:?}")),
            }
        }
        if !number.is_empty() || !any {
            return Err(format!("period '{text}' is incomplete"));
        }
        if period == Period::default() {
            return Err(format!("period '{text}' is zero"));
        }
        Ok(period)
    }

    /// `instant` moved forward by this period `times` times (calendar-aware).
    pub fn advance(&self, instant: DateTime<Utc>, times: u32) -> Option<DateTime<Utc>> {
        let months = (self.years * 12 + self.months).checked_mul(times)?;
        let shifted = if months > 0 { instant.checked_add_months(Months::new(months))? } else { instant };
        let secs = (u64::from(self.weeks) * 7 * 86_400
            + u64::from(self.days) * 86_400
            + u64::from(self.hours) * 3600
            + u64::from(self.minutes) * 60
            + u64::from(self.seconds))
        .checked_mul(u64::from(times))?;
        shifted.checked_add_signed(Duration::seconds(i64::try_from(secs).ok()?))
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("P")?;
        for (n, d) in [(self.years, 'Y'), (self.months, 'M'), (self.weeks, 'W'), (self.days, 'D')] {
            if n > 0 {
                write!(f, "{n}{d}")?;
            }
        }
        if self.hours + self.minutes + self.seconds > 0 {
            f.write_str("T")?;
            for (n, d) in [(self.hours, 'H'), (self.minutes, 'M'), (self.seconds, 'S')] {
                if n > 0 {
                    write!(f, "{n}{d}")?;
                }
            }
        }
        Ok(())
    }
}

/// A parsed Chronos schedule `R[n]/[start]/period`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Runs left (ISO 8601 `Rn`: n occurrences); `None` = forever (`R/…`).
    pub repeat: Option<u64>,
    /// First run; `None` = "now" (an empty start).
    pub start: Option<DateTime<Utc>>,
    /// Time between runs.
    pub period: Period,
}

impl Schedule {
    /// Parse a schedule string as Chronos would accept it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split('/').collect();
        let [r, start, period] = parts.as_slice() else {
            return Err(format!("schedule '{text}' must have three parts R[n]/start/period"));
        };
        let count = r.strip_prefix('R').ok_or_else(|| format!("schedule '{text}' must start with 'R'"))?;
        let repeat = if count.is_empty() {
            None
        } else {
            Some(
                count
                    .parse::<u64>()
                    .map_err(|_| format!("schedule '{text}': repeat count '{count}' is not a number"))?,
            )
        };
        let start = if start.is_empty() {
            None
        } else {
            Some(
                DateTime::parse_from_rfc3339(start)
                    .map_err(|e| {
                        format!("schedule '{text}': start '{start}' is not an ISO 8601 date-time ({e})")
                    })?
                    .with_timezone(&Utc),
            )
        };
        let period = Period::parse(period).map_err(|e| format!("schedule '{text}': {e}"))?;
        Ok(Self { repeat, start, period })
    }

    /// The next `n` run times at or after `now` (fewer if the repeat count runs out).
    pub fn next_runs(&self, now: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let Some(start) = self.start else {
            return (0..n as u32).filter_map(|i| self.period.advance(now, i)).collect();
        };
        let mut out = Vec::new();
        let mut k: u32 = 0;
        // Skip past runs quickly for short periods by estimating the index first.
        if start < now {
            if let Some(step) =
                self.period.advance(start, 1).map(|t| (t - start).num_seconds()).filter(|s| *s > 0)
            {
                let skipped = ((now - start).num_seconds() / step).max(1) - 1;
                k = u32::try_from(skipped).unwrap_or(u32::MAX);
            }
        }
        while out.len() < n {
            if let Some(limit) = self.repeat {
                if u64::from(k) >= limit {
                    break;
                }
            }
            let Some(t) = self.period.advance(start, k) else { break };
            if t >= now {
                out.push(t);
            }
            k = match k.checked_add(1) {
                Some(k) => k,
                None => break,
            };
        }
        out
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("R")?;
        if let Some(n) = self.repeat {
            write!(f, "{n}")?;
        }
        f.write_str("/")?;
        if let Some(s) = self.start {
            write!(f, "{}", s.format("%Y-%m-%dT%H:%M:%S%.3fZ"))?;
        }
        write!(f, "/{}", self.period)
    }
}

/// The day of week, used by callers that render next runs.
pub fn weekday_name(t: DateTime<Utc>) -> String {
    t.weekday().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chronos_schedules() {
        let s = Schedule::parse("R10/2012-10-01T05:52:00Z/PT2S").unwrap();
        assert_eq!(s.repeat, Some(10));
        assert_eq!(s.period, Period { seconds: 2, ..Period::default() });
        assert_eq!(s.to_string(), "R10/2012-10-01T05:52:00.000Z/PT2S");
        let s = Schedule::parse("R/2016-12-05T22:00:00.000Z/P1W").unwrap();
        assert_eq!(s.repeat, None);
        assert_eq!(s.period.weeks, 1);
        assert!(Schedule::parse("R//PT1H").unwrap().start.is_none());
    }

    #[test]
    fn rejects_malformed_schedules() {
        for bad in [
            "",
            "R/2014-10-10T18:32:00Z",
            "X/2014-10-10T18:32:00Z/PT1H",
            "R/notadate/PT1H",
            "R/2014-10-10T18:32:00Z/1H",
            "R/2014-10-10T18:32:00Z/PT",
            "R/2014-10-10T18:32:00Z/P1H",
            "Rx/2014-10-10T18:32:00Z/PT1H",
            "R/2014-10-10T18:32:00Z/P0D",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn next_runs_follow_the_period_and_repeat_count() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T10:30:00Z").unwrap().with_timezone(&Utc);
        let s = Schedule::parse("R/2026-01-01T00:00:00Z/PT1H").unwrap();
        let runs: Vec<String> = s.next_runs(now, 3).iter().map(|t| t.to_rfc3339()).collect();
        assert_eq!(
            runs,
            ["2026-01-01T11:00:00+00:00", "2026-01-01T12:00:00+00:00", "2026-01-01T13:00:00+00:00"]
        );
        let s = Schedule::parse("R2/2026-01-01T11:00:00Z/PT1H").unwrap();
        assert_eq!(s.next_runs(now, 5).len(), 2);
        let s = Schedule::parse("R/2026-01-31T00:00:00Z/P1M").unwrap();
        assert_eq!(s.next_runs(now, 2)[1].to_rfc3339(), "2026-02-28T00:00:00+00:00");
    }
}
