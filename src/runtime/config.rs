//! The settings of the controller loop: the typed [`RuntimeConfig`] it reads (built by
//! `mesosync run`'s arguments in `cli::run`), the log format, and duration parsing. Parsing only: nothing here touches files, the network or the clock.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::backoff::Backoff;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event (the default).
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// `--git-pull`: fetch `branch` from `origin` every `interval` and fast-forward.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitPullConfig {
    /// The branch fetched from `origin`.
    pub branch: String,
    /// Time between fetches.
    pub interval: Duration,
}

/// What the controller loop needs to know.
#[derive(Clone, Debug, PartialEq)]
pub struct RuntimeConfig {
    /// The manifest directory: watched, and read for the git revision.
    pub manifest_dir: PathBuf,
    /// Passed to every reconcile: compute and report, never write.
    pub dry_run: bool,
    /// Longest time between two reconciles.
    pub resync: Duration,
    /// Quiet period that collapses bursts of file changes and live events.
    pub debounce: Duration,
    /// Longest a steady stream of events may postpone a reconcile.
    pub max_debounce: Duration,
    /// Address of the HTTP server (`runtime::run` binds it).
    pub listen: SocketAddr,
    /// Per-object retry policy after a failed write.
    pub backoff: Backoff,
    /// Reconnect policy for the live event stream.
    pub reconnect: Backoff,
    /// Optional self-pull of the manifest checkout.
    pub git_pull: Option<GitPullConfig>,
    /// A reconcile still running after this long is abandoned and reported; `/readyz`
    /// fails from then until a reconcile finishes again.
    pub reconcile_timeout: Duration,
    /// After SIGTERM, how long the reconcile in flight may take to finish its write
    /// before it is abandoned (and the HTTP server's open requests before they are cut).
    pub shutdown_grace: Duration,
    /// The most connections the HTTP server holds open at once; a new one evicts the
    /// oldest connection that is not in the middle of a request.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers.
    pub header_timeout: Duration,
}

impl RuntimeConfig {
    /// The defaults of `mesosync run` for manifest directory `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            manifest_dir: dir.into(),
            dry_run: false,
            resync: Duration::from_secs(60),
            debounce: Duration::from_millis(300),
            max_debounce: Duration::from_secs(5),
            listen: SocketAddr::from(([127, 0, 0, 1], 9100)),
            backoff: Backoff::default(),
            reconnect: Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(60),
                factor: 2.0,
                jitter: 0.2,
            },
            git_pull: None,
            reconcile_timeout: Duration::from_secs(1800),
            shutdown_grace: Duration::from_secs(10),
            max_connections: 256,
            header_timeout: Duration::from_secs(5),
        }
    }
}

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
    }

    #[test]
    fn bad_durations_are_explained() {
        assert!(parse_duration("").unwrap_err().contains("not a duration"));
        assert!(parse_duration("s").unwrap_err().contains("not a duration"));
        assert!(parse_duration("10 parsecs").unwrap_err().contains("unknown unit `parsecs`"));
        assert!(parse_duration("1.2.3s").is_err());
        assert!(parse_duration("-5s").is_err());
    }
}
