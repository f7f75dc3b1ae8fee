//! The one parser of durations (`30s`, `5m`, `1.5h`), shared by the command line
//! (`crate::cli::duration`) and the manifests (`sync.timeout`), and [`Timeout`], the
//! per-object bound on waiting for an object to be done.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Parse a duration written as a number and a unit: `500ms`, `30s`, `5m`, `1h`, `2d`
/// (a bare number is seconds). Fractions are allowed (`1.5s`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| {
        format!("`{text}` is not a duration: expected a number and a unit, like 30s or 500ms")
    })?;
    let seconds_per_unit = match unit.trim() {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        other => return Err(format!("`{text}`: unknown unit `{other}` (use ms, s, m, h or d)")),
    };
    Duration::try_from_secs_f64(value * seconds_per_unit).map_err(|e| format!("`{text}`: {e}"))
}
/// The longest `sync.timeout` accepted: a week. A longer wait is a mistake (an hour
/// written as `3600m`), and every wait of a process must be bounded.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// `sync.timeout`: how long mesosync waits for one object to be done after writing it
/// (a run-once job's run to succeed, an app to become healthy) before reporting it failed
/// and leaving its dependants blocked. Written like a command-line duration (`20m`,
/// `90s`); more than zero, at most [`MAX_TIMEOUT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeout(Duration);

impl Timeout {
    /// A timeout of `d` (not checked against the bounds: for defaults and tests).
    pub const fn new(d: Duration) -> Self {
        Timeout(d)
    }

    /// The bound.
    pub fn duration(self) -> Duration {
        self.0
    }

    /// Parse and check the bounds.
    pub fn parse(text: &str) -> Result<Self, String> {
        let d = parse_duration(text)?;
        if d.is_zero() {
            return Err(format!("`{text}`: a timeout must be longer than zero"));
        }
        if d > MAX_TIMEOUT {
            return Err(format!("`{text}`: a timeout must be at most 7d"));
        }
        Ok(Timeout(d))
    }
}

/// As written back: whole seconds, milliseconds otherwise.
impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.subsec_millis() == 0 { write!(f, "{}s", d.as_secs()) } else { write!(f, "{}ms", d.as_millis()) }
    }
}

impl Serialize for Timeout {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A string (`"20m"`) or a number of seconds.
impl<'de> Deserialize<'de> for Timeout {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Text(String),
            Seconds(f64),
        }
        let text = match Written::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a duration like 20m, 90s or 1h (or a number of seconds)")
        })? {
            Written::Text(t) => t,
            Written::Seconds(s) => format!("{s}s"),
        };
        Timeout::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration(" 2d "), Ok(Duration::from_secs(2 * 86400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn timeouts_are_bounded_and_read_back() {
        assert_eq!(Timeout::parse("20m"), Ok(Timeout::new(Duration::from_secs(1200))));
        assert!(Timeout::parse("0s").unwrap_err().contains("longer than zero"));
        assert!(Timeout::parse("8d").unwrap_err().contains("at most 7d"));
        assert!(Timeout::parse("soon").unwrap_err().contains("not a duration"));
        assert_eq!(Timeout::new(Duration::from_millis(1500)).to_string(), "1500ms");
        let t: Timeout = serde_json::from_value(serde_json::json!(90)).unwrap();
        assert_eq!((t.duration(), t.to_string()), (Duration::from_secs(90), "90s".to_string()));
        let t: Timeout = serde_json::from_value(serde_json::json!("1h")).unwrap();
        assert_eq!(serde_json::to_value(t).unwrap(), serde_json::json!("3600s"));
        assert!(serde_json::from_value::<Timeout>(serde_json::json!(true)).is_err());
    }
}
