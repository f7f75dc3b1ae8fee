//! The settings of `mesosync run`: the clap arguments ([`RunArgs`], flags and
//! `MESOSYNC_*` environment variables) and the typed [`RuntimeConfig`] the controller
//! reads. Parsing only: nothing here touches files, the network or the clock.

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

/// Arguments of `mesosync run`: reconcile continuously.
#[derive(Clone, Debug, clap::Args)]
pub struct RunArgs {
    /// The manifest directory.
    #[arg(default_value = "manifests", env = "MESOSYNC_MANIFESTS")]
    pub dir: PathBuf,

    /// Marathon base URL (repeat for several masters; the first that answers is used).
    #[arg(long = "marathon", env = "MESOSYNC_MARATHON", value_delimiter = ',')]
    pub marathon: Vec<String>,

    /// Chronos base URL.
    #[arg(long, env = "MESOSYNC_CHRONOS")]
    pub chronos: Option<String>,

    /// Reconcile continuously but never write: only report drift.
    #[arg(long, env = "MESOSYNC_DRY_RUN")]
    pub dry_run: bool,

    /// Full reconcile at least this often, whatever the triggers (e.g. 30s, 5m).
    #[arg(long, default_value = "60s", value_parser = parse_positive_duration, env = "MESOSYNC_RESYNC")]
    pub resync: Duration,

    /// Address of the /healthz, /readyz, /status and /metrics server.
    #[arg(long, default_value = "127.0.0.1:9100", env = "MESOSYNC_LISTEN")]
    pub listen: SocketAddr,

    /// Fetch and fast-forward this branch of the manifest checkout from `origin`.
    #[arg(long, value_name = "BRANCH", env = "MESOSYNC_GIT_PULL")]
    pub git_pull: Option<String>,

    /// How often `--git-pull` fetches.
    #[arg(long, default_value = "30s", value_parser = parse_positive_duration, env = "MESOSYNC_GIT_INTERVAL")]
    pub git_interval: Duration,

    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, env = "MESOSYNC_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// This controller's name: the owner mark written on apps and jobs it manages.
    #[arg(long, default_value = "mesosync", env = "MESOSYNC_INSTANCE")]
    pub instance: String,

    /// Delete owned apps and jobs that no manifest describes any more.
    #[arg(long, env = "MESOSYNC_PRUNE")]
    pub prune: bool,

    /// Run against an embedded Marathon + Chronos emulator instead of real servers.
    #[arg(long)]
    pub sandbox: bool,

    /// Quiet period after a file change or live event before reconciling, so a burst
    /// (an editor's save, a `git checkout`) becomes one reconcile.
    #[arg(long, default_value = "300ms", value_parser = parse_duration, env = "MESOSYNC_DEBOUNCE")]
    pub debounce: Duration,
}

impl RunArgs {
    /// The controller's own settings (the Marathon / Chronos endpoints, instance and
    /// prune belong to the reconciler built from the same arguments).
    pub fn runtime_config(&self) -> RuntimeConfig {
        RuntimeConfig {
            manifest_dir: self.dir.clone(),
            dry_run: self.dry_run,
            resync: self.resync,
            debounce: self.debounce,
            listen: self.listen,
            git_pull: self
                .git_pull
                .as_ref()
                .map(|branch| GitPullConfig { branch: branch.clone(), interval: self.git_interval }),
            ..RuntimeConfig::new(self.dir.clone())
        }
    }
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
    use clap::Parser;

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

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        run: RunArgs,
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let args = Cmd::try_parse_from(["run"]).unwrap().run;
        let config = args.runtime_config();
        assert_eq!(config.manifest_dir, PathBuf::from("manifests"));
        assert_eq!(config.resync, Duration::from_secs(60));
        assert_eq!(config.debounce, Duration::from_millis(300));
        assert_eq!(config.listen.to_string(), "127.0.0.1:9100");
        assert_eq!(config.git_pull, None);
        assert!(!config.dry_run);
        assert_eq!(args.instance, "mesosync");
        assert_eq!(args.log_format, LogFormat::Human);
    }

    #[test]
    fn flags_reach_the_config() {
        let args = Cmd::try_parse_from([
            "run",
            "deploy",
            "--marathon",
            "http://m1:8080",
            "--marathon",
            "http://m2:8080",
            "--dry-run",
            "--resync",
            "5m",
            "--git-pull",
            "main",
            "--git-interval",
            "10s",
            "--log-format",
            "json",
            "--debounce",
            "1s",
            "--listen",
            "127.0.0.1:0",
        ])
        .unwrap()
        .run;
        assert_eq!(args.marathon, ["http://m1:8080", "http://m2:8080"]);
        assert_eq!(args.log_format, LogFormat::Json);
        let config = args.runtime_config();
        assert_eq!(config.manifest_dir, PathBuf::from("deploy"));
        assert!(config.dry_run);
        assert_eq!(config.resync, Duration::from_secs(300));
        assert_eq!(config.debounce, Duration::from_secs(1));
        assert_eq!(
            config.git_pull,
            Some(GitPullConfig { branch: "main".into(), interval: Duration::from_secs(10) })
        );
        assert!(Cmd::try_parse_from(["run", "--resync", "soon"]).is_err());
        assert!(Cmd::try_parse_from(["run", "--resync", "0s"]).is_err());
        assert!(Cmd::try_parse_from(["run", "--git-interval", "0"]).is_err());
        assert!(Cmd::try_parse_from(["run", "--debounce", "0ms"]).is_ok());
    }
}
