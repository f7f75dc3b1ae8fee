//! An independent Marathon + Chronos emulator: the server behind `mesosync sandbox`,
//! `make run`, the benches and every integration test.
//!
//! It serves Marathon's v2 API and one Chronos API version over real HTTP, holding apps
//! and jobs as JSON the way the real servers report them (defaults filled in, versions
//! and deployment ids minted, deployments that take time, job runs that take time and
//! succeed or fail as the test controls say, moving the job statistics). It must **not** reuse the controller's normalizer, model or defaults
//! tables: everything here is written again from the API facts (DESIGN §4, §5) so a
//! mistake on one side is caught by the other instead of hidden by it.
//!
//! Test hooks live under `/_sandbox/` on both servers (see [`controls`]) and on
//! [`Sandbox`] itself. The Marathon and Chronos internals are crate-private on purpose:
//! the controller must not borrow the emulator's defaults any more than the reverse. See `docs/emulator.md` for what is modelled and what is not.
#![forbid(unsafe_code)]

pub(crate) mod chronos;
pub mod clock;
pub mod controls;
pub(crate) mod marathon;
mod media;
mod query;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use chronos::runs::{JobOutcome, JobRunEvent, RunDefaults, RunEventKind, RunResult, Trigger};
pub use clock::Clock;
pub use controls::{DeploymentOutcome, FaultRule, Faults, RecordedRequest, System};
pub use marathon::outcome::{AppOutcome, TaskOutcome};

/// The Chronos API generation an emulator instance serves. A real Chronos server
/// serves exactly one, so the emulator does too: 2.x under `/scheduler/*`, 3.x under
/// `/v1/scheduler/*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum ChronosVersion {
    /// Chronos 2.4.0: job names `[\w\s#_-]+`, PUT accepted on the create paths, no
    /// leader endpoint, `epsilon`/`async` reported. Kolla used 2.x, hence the default.
    #[default]
    V2_4,
    /// Chronos 2.5: names may contain dots; adds `taskInfoData` and `fetch`;
    /// `/scheduler/leader`.
    V2_5,
    /// Chronos 3.x: `/v1/scheduler/*`, names `[\w.-]+`, JSON errors, no
    /// `epsilon`/`async`, adds `concurrent` and `maxCompletionTime`.
    V3,
}

impl ChronosVersion {
    /// The path prefix of the scheduler API of this version.
    pub fn prefix(self) -> &'static str {
        match self {
            ChronosVersion::V2_4 | ChronosVersion::V2_5 => "/scheduler",
            ChronosVersion::V3 => "/v1/scheduler",
        }
    }

    /// Whether this is a 2.x server (plain-text errors, refuses missing parents).
    pub fn is_2x(self) -> bool {
        !matches!(self, ChronosVersion::V3)
    }
}

impl std::str::FromStr for ChronosVersion {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().trim_start_matches(['v', 'V']) {
            "2.4" | "2.4.0" | "2_4" => Ok(ChronosVersion::V2_4),
            "2.5" | "2.5.0" | "2_5" => Ok(ChronosVersion::V2_5),
            "3" | "3.0" | "3.x" => Ok(ChronosVersion::V3),
            other => Err(format!("unknown Chronos version '{other}' (expected 2.4, 2.5 or 3)")),
        }
    }
}

/// Objects to load at start, accepted through the same code paths as a POST (so
/// defaults are filled in and ids validated). Seeded apps start with their tasks
/// running and no deployment.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// Marathon app definitions, as a POST /v2/apps body each.
    #[serde(default)]
    pub apps: Vec<serde_json::Value>,
    /// Chronos jobs, as a POST body each (`schedule` → iso8601, `parents` → dependency).
    /// Parents must come before their children.
    #[serde(default)]
    pub jobs: Vec<serde_json::Value>,
}

impl Seed {
    /// Read a seed file (`{"apps": [...], "jobs": [...]}`).
    pub fn from_file(path: &Path) -> std::io::Result<Seed> {
        let text = std::fs::read_to_string(path)?;
        serde_json::from_str(&text).map_err(|err| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: not a seed file: {err}", path.display()),
            )
        })
    }
}

/// How to run a sandbox.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Where Marathon listens (port 0: any free port).
    pub marathon_addr: SocketAddr,
    /// Where Chronos listens (port 0: any free port).
    pub chronos_addr: SocketAddr,
    /// The Chronos API generation to serve.
    pub chronos_version: ChronosVersion,
    /// How long a Marathon deployment takes (tasks staged → running → healthy).
    pub deployment_duration: Duration,
    /// How long a Chronos job run takes (per job: [`Sandbox::set_job_outcome`]).
    pub job_run_duration: Duration,
    /// How long after a failed Chronos run its retry starts (Chronos's
    /// `--failure_retry`, 60 s on a real server).
    pub job_retry_delay: Duration,
    /// Serve the `/_sandbox/` control endpoints over HTTP.
    pub controls: bool,
    /// Apps and jobs to load at start.
    pub seed: Option<Seed>,
}

impl Default for SandboxConfig {
    /// Both servers on 127.0.0.1 with a free port, Chronos 2.4 (what Kolla ran),
    /// 200 ms deployments, Chronos runs that end (successfully) the instant they start
    /// and retry at once, and the control endpoints on (this default is for tests; the
    /// CLI turns controls off unless `--controls` and makes runs take time).
    fn default() -> Self {
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        SandboxConfig {
            marathon_addr: any_port,
            chronos_addr: any_port,
            chronos_version: ChronosVersion::V2_4,
            deployment_duration: Duration::from_millis(200),
            job_run_duration: Duration::ZERO,
            job_retry_delay: Duration::ZERO,
            controls: true,
            seed: None,
        }
    }
}

/// A running sandbox: both servers, their shared clock and test hooks.
pub struct Sandbox {
    marathon_addr: SocketAddr,
    chronos_addr: SocketAddr,
    marathon: Arc<marathon::MarathonState>,
    chronos: Arc<chronos::ChronosState>,
    controls: Arc<controls::Controls>,
    clock: Arc<Clock>,
    shutdown: watch::Sender<bool>,
    servers: Vec<JoinHandle<std::io::Result<()>>>,
}

/// Start both servers and load the seed. Returns once both listen.
pub async fn start(config: SandboxConfig) -> std::io::Result<Sandbox> {
    let clock = Arc::new(Clock::default());
    let controls = Arc::new(controls::Controls::default());
    let marathon_listener = TcpListener::bind(config.marathon_addr).await?;
    let chronos_listener = TcpListener::bind(config.chronos_addr).await?;
    let marathon_addr = marathon_listener.local_addr()?;
    let chronos_addr = chronos_listener.local_addr()?;

    let (shutdown, shutdown_rx) = watch::channel(false);
    let marathon = marathon::MarathonState::new(
        clock.clone(),
        shutdown_rx.clone(),
        marathon_addr,
        config.deployment_duration,
    );
    let run_defaults = RunDefaults {
        result: RunResult::Succeed,
        duration_ms: u64::try_from(config.job_run_duration.as_millis()).unwrap_or(u64::MAX),
        retry_delay_ms: u64::try_from(config.job_retry_delay.as_millis()).unwrap_or(u64::MAX),
    };
    let chronos =
        chronos::ChronosState::new(config.chronos_version, clock.clone(), chronos_addr, run_defaults);

    if let Some(seed) = &config.seed {
        seed_into(&marathon, &chronos, seed)?;
    }

    let marathon_router = controls::wrap(
        marathon::router(marathon.clone()),
        System::Marathon,
        controls.clone(),
        config.controls.then(|| control_state(&marathon, &chronos, &controls, &clock)),
    );
    let chronos_router = controls::wrap(
        chronos::router(chronos.clone()),
        System::Chronos,
        controls.clone(),
        config.controls.then(|| control_state(&marathon, &chronos, &controls, &clock)),
    );
    let servers = vec![
        tokio::spawn(serve(marathon_listener, marathon_router, shutdown_rx.clone())),
        tokio::spawn(serve(chronos_listener, chronos_router, shutdown_rx)),
    ];
    Ok(Sandbox { marathon_addr, chronos_addr, marathon, chronos, controls, clock, shutdown, servers })
}

fn control_state(
    marathon: &Arc<marathon::MarathonState>,
    chronos: &Arc<chronos::ChronosState>,
    controls: &Arc<controls::Controls>,
    clock: &Arc<Clock>,
) -> controls::ControlTargets {
    controls::ControlTargets {
        marathon: marathon.clone(),
        chronos: chronos.clone(),
        controls: controls.clone(),
        clock: clock.clone(),
    }
}

fn seed_into(
    marathon: &marathon::MarathonState,
    chronos: &chronos::ChronosState,
    seed: &Seed,
) -> std::io::Result<()> {
    let invalid = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    for app in &seed.apps {
        marathon.seed_app(app).map_err(|err| invalid(format!("seed app rejected: {err}")))?;
    }
    for job in &seed.jobs {
        chronos.seed_job(job).map_err(|err| invalid(format!("seed job rejected: {err}")))?;
    }
    Ok(())
}

async fn serve(
    listener: TcpListener,
    router: axum::Router,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .await
}

impl Sandbox {
    /// `http://127.0.0.1:<port>` of the Marathon server.
    pub fn marathon_url(&self) -> String {
        format!("http://{}", self.marathon_addr)
    }

    /// `http://127.0.0.1:<port>` of the Chronos server.
    pub fn chronos_url(&self) -> String {
        format!("http://{}", self.chronos_addr)
    }

    /// Every request served so far (both servers, `/_sandbox/` excluded), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.controls.requests()
    }

    /// Counters keyed `"<METHOD> <path>"`, and [`controls::MAX_WRITES_IN_FLIGHT`].
    pub fn counters(&self) -> std::collections::BTreeMap<String, u64> {
        self.controls.counters()
    }

    /// Forget the request log and counters.
    pub fn reset_requests(&self) {
        self.controls.reset_requests()
    }

    /// Requests being served now (both servers, `/_sandbox/` excluded): see
    /// [`controls::Controls::in_flight`].
    pub fn in_flight(&self) -> usize {
        self.controls.in_flight()
    }

    /// The fault injection rules (shared by both servers).
    pub fn faults(&self) -> Faults {
        Faults::new(self.controls.clone())
    }

    /// Change how long new Marathon deployments take.
    pub fn set_deployment_duration(&self, duration: Duration) {
        self.marathon.set_deployment_duration(duration)
    }

    /// Serve `/v2/events` like Marathon before 1.3.7 (the `event_type` filter came in
    /// 1.3.7, changelog #4936): every stream gets every event whatever it asked for.
    pub fn ignore_event_type_filters(&self, ignore: bool) {
        self.marathon.unfiltered_events.store(ignore, std::sync::atomic::Ordering::Relaxed);
    }

    /// Kill every running task of an app, as `DELETE /v2/apps/{id}/tasks` does
    /// (Marathon launches replacements): task-state event traffic for tests and
    /// benches. Returns how many tasks were killed (0 for an unknown app).
    pub fn kill_tasks(&self, app_id: &str) -> usize {
        let mut store = self.marathon.store();
        self.marathon.kill_tasks(&mut store, app_id, |_| true).map_or(0, |killed| killed.len())
    }

    /// Script how an app's new tasks behave and how long its deployments take (kept by
    /// absolute app id: it may be set before the app exists); `None` resets it.
    pub fn set_app_outcome(&self, app_id: &str, outcome: Option<AppOutcome>) {
        self.marathon.set_app_outcome(app_id, outcome)
    }

    /// Script how the runs of a Chronos job end (kept by name: it may be set before the
    /// job exists); `None` puts the job back on the server-wide default.
    pub fn set_job_outcome(&self, job: &str, outcome: Option<JobOutcome>) {
        self.chronos.set_outcome(job, outcome)
    }

    /// Change the server-wide Chronos run settings (result, duration, retry delay).
    pub fn set_job_run_defaults(&self, defaults: RunDefaults) {
        self.chronos.set_run_defaults(defaults)
    }

    /// The Chronos run log (every run start and end, oldest first; the last
    /// [`chronos::runs::RUN_LOG_CAPACITY`] entries).
    pub fn job_runs(&self) -> Vec<JobRunEvent> {
        self.chronos.run_log()
    }

    /// Move the emulated clock forward; runs, retries and schedules the clock passes
    /// play out in order.
    pub fn advance_clock(&self, by: Duration) {
        self.clock.advance(by);
        self.chronos.catch_up();
    }

    /// The shared emulated clock.
    pub fn clock(&self) -> Arc<Clock> {
        self.clock.clone()
    }

    /// The whole state as JSON (`{"apps": [...], "jobs": [...]}`), as GET reports it.
    pub fn snapshot(&self) -> serde_json::Value {
        serde_json::json!({"apps": self.marathon.snapshot(), "jobs": self.chronos.snapshot()})
    }

    /// Replace the whole state with a [`Sandbox::snapshot`]. Running deployments are
    /// dropped; restored apps have their tasks running.
    pub fn restore(&self, snapshot: &serde_json::Value) -> Result<(), String> {
        let empty = Vec::new();
        let apps = snapshot.get("apps").and_then(|v| v.as_array()).unwrap_or(&empty);
        let jobs = snapshot.get("jobs").and_then(|v| v.as_array()).unwrap_or(&empty);
        self.marathon.restore(apps)?;
        self.chronos.restore(jobs)
    }

    /// Load more apps and jobs, as at start.
    pub fn seed(&self, seed: &Seed) -> std::io::Result<()> {
        seed_into(&self.marathon, &self.chronos, seed)
    }

    /// Stop both servers and wait for them.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for server in self.servers {
            let abort = server.abort_handle();
            // Graceful first; a client that keeps a connection open must not hang us.
            if tokio::time::timeout(Duration::from_secs(2), server).await.is_err() {
                abort.abort();
            }
        }
    }
}
