//! The settings of the controller loop: the typed [`RuntimeConfig`] it reads (built by
//! `mesosync run`'s arguments in `cli::run`) and the log format. Data only: nothing here
//! touches files, the network or the clock (flags and their parsing are `cli`'s).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::backoff::Backoff;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One short line per event and a summary line per reconcile, coloured on a
    /// terminal unless NO_COLOR is set (the default, terminal or not).
    #[default]
    Human,
    /// One JSON object per line with every field, for log collectors.
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
    /// Address of the HTTP server (`daemon::run` binds it).
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
