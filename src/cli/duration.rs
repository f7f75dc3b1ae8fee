//! The value parsers of durations written on the command line (`--resync 60s`,
//! `--debounce 300ms`, `--ha-session-timeout 10s`, …), for every flag that takes a
//! duration, in every subcommand. The syntax is [`parse_duration`]'s, the one parser,
//! shared with the manifests' `sync.timeout` (`crate::model::duration`).

use std::time::Duration;

pub use crate::model::duration::parse_duration;

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
