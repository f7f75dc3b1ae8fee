//! Durations as people write them, in manifests (`sync.timeout: 10m`) and on the
//! command line (`--resync 60s`): one parser for both.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

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

/// Serde for an optional duration written as text (`"10m"`) or a number of seconds.
pub mod option {
    use super::*;

    /// Read `"90s"`, `"10m"` or `600` (seconds).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Seconds(f64),
            Text(String),
        }
        match Option::<Written>::deserialize(d)? {
            None => Ok(None),
            Some(Written::Text(text)) => parse_duration(&text).map(Some).map_err(serde::de::Error::custom),
            Some(Written::Seconds(s)) => Duration::try_from_secs_f64(s)
                .map(Some)
                .map_err(|_| serde::de::Error::custom(format!("{s} is not a number of seconds"))),
        }
    }

    /// Write as seconds with a unit (`"600s"`).
    pub fn serialize<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => s.serialize_str(&format!("{}s", d.as_secs_f64())),
            None => s.serialize_none(),
        }
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
    fn bad_durations_are_explained() {
        assert!(parse_duration("").unwrap_err().contains("not a duration"));
        assert!(parse_duration("s").unwrap_err().contains("not a duration"));
        assert!(parse_duration("10 parsecs").unwrap_err().contains("unknown unit `parsecs`"));
        assert!(parse_duration("1.2.3s").is_err());
        assert!(parse_duration("-5s").is_err());
    }

    #[test]
    fn manifests_write_text_or_seconds() {
        #[derive(Deserialize, serde::Serialize, Debug, PartialEq)]
        struct T {
            #[serde(default, with = "option")]
            timeout: Option<Duration>,
        }
        let read = |text: &str| serde_json::from_str::<T>(text).map(|t| t.timeout);
        assert_eq!(read(r#"{"timeout": "10m"}"#).unwrap(), Some(Duration::from_secs(600)));
        assert_eq!(read(r#"{"timeout": 90}"#).unwrap(), Some(Duration::from_secs(90)));
        assert_eq!(read(r#"{}"#).unwrap(), None);
        assert!(read(r#"{"timeout": "soon"}"#).unwrap_err().to_string().contains("not a duration"));
        assert!(read(r#"{"timeout": -1}"#).is_err());
        let written = serde_json::to_string(&T { timeout: Some(Duration::from_secs(90)) }).unwrap();
        assert_eq!(written, r#"{"timeout":"90s"}"#);
    }
}
