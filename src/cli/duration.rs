//! The one parser of durations written on the command line (`--resync 60s`,
//! `--debounce 300ms`, `--ha-session-timeout 10s`, …): clap value parsers for every flag
//! that takes a duration, in every subcommand.

use std::time::Duration;

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

/// [`parse_duration`], refusing zero (a zero period would spin).
pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err(format!("`{text}`: must be longer than zero")),
        d => Ok(d),
    }
}

/// A ZooKeeper session timeout: a [`parse_positive_duration`] of at most 1 h.
pub fn parse_session_timeout(text: &str) -> Result<Duration, String> {
    let d = parse_positive_duration(text)?;
    if d > Duration::from_secs(3600) {
        return Err(format!("{text:?} is out of range (1ms to 1h)"));
    }
    Ok(d)
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
        assert!(parse_positive_duration("0s").unwrap_err().contains("longer than zero"));
    }

    #[test]
    fn session_timeouts() {
        assert_eq!(parse_session_timeout("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_session_timeout("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_session_timeout("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_session_timeout("4"), Ok(Duration::from_secs(4)));
        assert!(parse_session_timeout("0s").is_err());
        assert!(parse_session_timeout("10h").is_err());
        assert!(parse_session_timeout("fast").is_err());
    }
}
