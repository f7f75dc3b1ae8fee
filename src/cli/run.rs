//! `mesosync run DIR`: reconcile continuously (file watch, resync timer, Marathon's
//! event stream, SIGHUP), serve /healthz /readyz /status /metrics, optionally against
//! an embedded sandbox (`--sandbox`) and as one of several HA replicas (`--ha-zk`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;

use super::args::{self, ApplyArgs, PlanArgs, TargetArgs};
use super::duration::{parse_duration, parse_positive_duration};
use super::ha::HaArgs;
use crate::client::MarathonClient;
use crate::daemon;
use crate::emulator::{self, ChronosVersion as SandboxChronos, SandboxConfig};
use crate::ha::{LeaderElection, Role};
use crate::notify::{self, Event, Notifier};
use crate::runtime::{self, Controller, GitPullConfig, LogFormat, RuntimeConfig, Trigger};
use crate::server::ui::actions as ui_actions;
use crate::server::webhook::{self, Secret, Webhook};

/// Arguments of `mesosync run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The manifest directory.
    #[arg(default_value = "manifests", env = "MESOSYNC_MANIFESTS")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub plan: PlanArgs,
    #[command(flatten)]
    pub apply: ApplyArgs,
    #[command(flatten)]
    pub ha: HaArgs,

    /// Reconcile continuously but never write: only report drift (logs, /status, metrics).
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
    /// Serve the push webhook receiver (GitHub, GitLab, generic HMAC) on this path
    /// [default: /hooks/git]. The receiver is on only when a secret is set
    /// (environment: MESOSYNC_WEBHOOK_SECRET, or MESOSYNC_WEBHOOK_SECRET_FILE naming a file) and needs --git-pull.
    #[arg(long, value_name = "PATH", env = "MESOSYNC_WEBHOOK_PATH")]
    pub webhook_path: Option<String>,
    /// Send notifications (reconcile applied / failed / recovered, drift, prune refused,
    /// leadership, objects degraded / healthy again) to a receiver; repeatable. FORMAT is `generic` (JSON, signed with
    /// `secret-env=VAR` or `secret-file=PATH`) or `slack` (Slack, Mattermost, Rocket.Chat);
    /// URL may be `env:VAR` or `file:PATH`; `events=applied+failed…` filters. See
    /// docs/notifications.md.
    #[arg(long, value_name = "FORMAT=URL[,OPTION=VALUE…]")]
    pub notify: Vec<String>,
    /// Turn on the dashboard's actions ("reconcile now", "refresh from git"), allowed
    /// only with the token (environment: MESOSYNC_UI_TOKEN, or MESOSYNC_UI_TOKEN_FILE
    /// naming a file). The read-only pages are always served at /.
    #[arg(long, env = "MESOSYNC_UI_ACTIONS")]
    pub ui_actions: bool,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, env = "MESOSYNC_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Quiet period after a file change or live event before reconciling, so a burst
    /// (an editor's save, a `git checkout`) becomes one reconcile.
    #[arg(long, default_value = "300ms", value_parser = parse_duration, env = "MESOSYNC_DEBOUNCE")]
    pub debounce: Duration,

    /// With --prune: delete an object only once it has been missing from two successful
    /// loads at least this far apart (a file rewritten in two steps deletes nothing).
    #[arg(long, default_value = "30s", value_parser = parse_duration, env = "MESOSYNC_PRUNE_DELAY")]
    pub prune_delay: Duration,
    /// A reconcile still running after this long is abandoned, reported as failed and
    /// retried with backoff; /readyz fails until one finishes again.
    #[arg(long, default_value = "30m", value_parser = parse_positive_duration, env = "MESOSYNC_RECONCILE_TIMEOUT")]
    pub reconcile_timeout: Duration,
    /// After SIGTERM: how long the write in flight may take before the reconcile is
    /// abandoned (and, again, open /status requests before they are cut).
    #[arg(long, default_value = "10s", value_parser = parse_duration, env = "MESOSYNC_SHUTDOWN_GRACE")]
    pub shutdown_grace: Duration,
    /// Most connections the status server keeps open; beyond, the oldest idle one is closed.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..), env = "MESOSYNC_MAX_CONNECTIONS")]
    pub max_connections: u32,
    /// How long a status-server client may take to send its request headers.
    #[arg(long, default_value = "5s", value_parser = parse_positive_duration, env = "MESOSYNC_HEADER_TIMEOUT")]
    pub header_timeout: Duration,

    /// Run against an embedded Marathon + Chronos emulator instead of real servers.
    #[arg(long)]
    pub sandbox: bool,
    /// With --sandbox: where the emulated Marathon listens (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub sandbox_marathon_addr: SocketAddr,
    /// With --sandbox: where the emulated Chronos listens.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub sandbox_chronos_addr: SocketAddr,
    /// With --sandbox: how long each emulated Marathon deployment takes.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub sandbox_deployment_duration: Duration,
    /// With --sandbox: how long each emulated Chronos job run takes.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub sandbox_job_run_duration: Duration,
    /// With --sandbox: how long after a failed emulated Chronos run its retry starts.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub sandbox_job_retry_delay: Duration,
    /// With --sandbox: serve the emulator's /_sandbox/ control endpoints (faults,
    /// request log, clock, state), as `mesosync sandbox --controls` does. Off by default.
    #[arg(long, requires = "sandbox")]
    pub sandbox_controls: bool,
}

impl RunArgs {
    /// The controller loop's settings.
    pub fn runtime_config(&self) -> RuntimeConfig {
        RuntimeConfig {
            dry_run: self.dry_run,
            resync: self.resync,
            debounce: self.debounce,
            listen: self.listen,
            git_pull: self
                .git_pull
                .as_ref()
                .map(|branch| GitPullConfig { branch: branch.clone(), interval: self.git_interval }),
            reconcile_timeout: self.reconcile_timeout,
            shutdown_grace: self.shutdown_grace,
            max_connections: self.max_connections as usize,
            header_timeout: self.header_timeout,
            ..RuntimeConfig::new(self.dir.clone())
        }
    }
}

/// The environment variable holding the webhook secret.
pub const WEBHOOK_SECRET_ENV: &str = "MESOSYNC_WEBHOOK_SECRET";
/// The environment variable naming a file holding the webhook secret.
pub const WEBHOOK_SECRET_FILE_ENV: &str = "MESOSYNC_WEBHOOK_SECRET_FILE";

/// The environment variable holding the dashboard token.
pub const UI_TOKEN_ENV: &str = "MESOSYNC_UI_TOKEN";
/// The environment variable naming a file holding the dashboard token.
pub const UI_TOKEN_FILE_ENV: &str = "MESOSYNC_UI_TOKEN_FILE";

/// A secret from the environment variable `env`, or the file named by `file_env`
/// (trailing newlines dropped); never both, never empty. `what` names it in errors.
fn secret_from_env(what: &str, env: &str, file_env: &str) -> anyhow::Result<Option<Vec<u8>>> {
    let from_env = std::env::var_os(env).filter(|v| !v.is_empty());
    let file = std::env::var_os(file_env).filter(|v| !v.is_empty()).map(PathBuf::from);
    match (from_env, &file) {
        (Some(_), Some(_)) => anyhow::bail!("the {what} is set twice: {env} and {file_env}"),
        (Some(value), None) => Ok(Some(value.into_encoded_bytes())),
        (None, Some(file)) => {
            let mut value =
                std::fs::read(file).with_context(|| format!("reading the {what} file {}", file.display()))?;
            while value.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                value.pop();
            }
            if value.is_empty() {
                anyhow::bail!("the {what} file {} is empty", file.display());
            }
            Ok(Some(value))
        }
        (None, None) => Ok(None),
    }
}

impl RunArgs {
    /// The dashboard token (`--ui-actions` needs one; without `--ui-actions` the
    /// actions stay off whatever is set).
    fn ui_token(&self) -> anyhow::Result<Option<Secret>> {
        if !self.ui_actions {
            return Ok(None);
        }
        match secret_from_env("dashboard token", UI_TOKEN_ENV, UI_TOKEN_FILE_ENV)? {
            Some(token) => Ok(Some(Secret::new(token)?)),
            None => anyhow::bail!(
                "--ui-actions needs a token ({UI_TOKEN_ENV} or {UI_TOKEN_FILE_ENV}); refusing to serve actions unauthenticated"
            ),
        }
    }

    /// The webhook secret, from MESOSYNC_WEBHOOK_SECRET or the file named by
    /// MESOSYNC_WEBHOOK_SECRET_FILE (environment only, never a flag), and the checks
    /// around it: no secret, no receiver (a path alone is an error); a receiver needs
    /// --git-pull.
    fn webhook_secret(&self) -> anyhow::Result<Option<Secret>> {
        let secret = secret_from_env("webhook secret", WEBHOOK_SECRET_ENV, WEBHOOK_SECRET_FILE_ENV)?;
        match (secret, &self.webhook_path, &self.git_pull) {
            (None, Some(path), _) => anyhow::bail!(
                "--webhook-path {path}: the webhook receiver needs a secret ({WEBHOOK_SECRET_ENV} or {WEBHOOK_SECRET_FILE_ENV}); refusing to serve it unauthenticated"
            ),
            (None, None, _) => Ok(None),
            (Some(_), _, None) => {
                anyhow::bail!(
                    "a webhook secret is set but not --git-pull BRANCH: the webhook has nothing to fetch"
                )
            }
            (Some(secret), _, Some(_)) => Ok(Some(Secret::new(secret)?)),
        }
    }
}

/// Marathon events that mean someone (or something) changed live state.
const DRIFT_EVENTS: &[&str] = &["api_post_event", "deployment_success", "deployment_failed"];

/// Each (re)connection to Marathon's event stream, as a stream of "something changed".
fn live_changes(marathon: MarathonClient) -> impl FnMut() -> futures::stream::BoxStream<'static, ()> + Send {
    move || {
        let marathon = marathon.clone();
        futures::stream::once(async move { marathon.events(DRIFT_EVENTS).await })
            .flat_map(|connected| match connected {
                Ok(events) => events.take_while(|e| futures::future::ready(e.is_ok())).map(|_| ()).boxed(),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot follow Marathon's event stream; retrying");
                    futures::stream::empty().boxed()
                }
            })
            .boxed()
    }
}

/// How long queued notifications may take to go out at shutdown.
const NOTIFY_GRACE: Duration = Duration::from_secs(5);

/// The `--notify` targets' delivery tasks, if any target is given.
fn notifier(specs: &[String]) -> anyhow::Result<Option<Notifier>> {
    let targets = notify::target::parse_all(specs, &notify::target::ProcessLookup)?;
    for t in &targets {
        let events: Vec<_> = t.events.iter().map(|k| k.name()).collect();
        tracing::info!(name = %t.name, format = t.format.name(), url = %t.shown_url(), signed = t.key.is_some(), events = %events.join(","), "notifications on");
    }
    Ok((!targets.is_empty()).then(|| Notifier::start(targets)))
}

/// Run `mesosync run` until SIGTERM / Ctrl-C.
pub async fn run(mut args: RunArgs) -> anyhow::Result<u8> {
    runtime::init_logging(args.log_format).context("setting up logging")?;
    // Before the first address is printed (the embedded sandbox's, or the status
    // server's): a SIGTERM sent on seeing it must stop the process cleanly.
    let signals = daemon::Signals::install().context("installing the signal handlers")?;
    let sandbox = if args.sandbox {
        let config = SandboxConfig {
            marathon_addr: args.sandbox_marathon_addr,
            chronos_addr: args.sandbox_chronos_addr,
            chronos_version: SandboxChronos::V2_4,
            deployment_duration: args.sandbox_deployment_duration,
            job_run_duration: args.sandbox_job_run_duration,
            job_retry_delay: args.sandbox_job_retry_delay,
            controls: args.sandbox_controls,
            seed: None,
        };
        let sandbox = emulator::start(config).await.context("starting the embedded sandbox")?;
        args.target.marathon = vec![sandbox.marathon_url()];
        args.target.chronos = vec![sandbox.chronos_url()];
        outln!(
            "sandbox Marathon: {}  (try: curl {}/v2/apps)",
            sandbox.marathon_url(),
            sandbox.marathon_url()
        );
        outln!(
            "sandbox Chronos:  {}  (try: curl {}/scheduler/jobs)",
            sandbox.chronos_url(),
            sandbox.chronos_url()
        );
        Some(sandbox)
    } else {
        None
    };
    if args.target.marathon.is_empty() && args.target.chronos.is_empty() {
        anyhow::bail!(
            "no Marathon or Chronos URL: give --marathon / --chronos (or MESOSYNC_MARATHON / MESOSYNC_CHRONOS), or --sandbox"
        );
    }
    let election = match args.ha.election_config(&args.plan.instance) {
        Some(mut config) => {
            config.identity.endpoint = Some(args.listen.to_string());
            if args.target.replica_id.is_none() {
                args.target.replica_id = Some(config.identity.id.clone());
            }
            Some(LeaderElection::start(config).context("joining the leader election")?)
        }
        None => None,
    };
    let webhook_secret = args.webhook_secret()?;
    let ui_token = args.ui_token()?;
    let mut pipeline = args::pipeline(args.dir.clone(), &args.target, &args.plan, &args.apply)?;
    pipeline.plan.prune_delay = Some(args.prune_delay);
    if let Some(election) = &election {
        pipeline.apply.write_fence = Some(election.fence().as_fn());
        let publisher = election.handle();
        pipeline.on_revision = Some(Arc::new(move |rev| publisher.update_revision(rev.commit.clone())));
    }
    let marathon = pipeline.clients.marathon.clone();
    let mut controller = Controller::new(args.runtime_config(), Arc::new(pipeline));
    if let Some(marathon) = marathon {
        controller = controller.with_live_events(live_changes(marathon));
    }
    let notifier = notifier(&args.notify)?;
    if let Some(notifier) = &notifier {
        controller.register_metrics(|registry| notifier.register_metrics(registry));
        controller = controller.with_notifier(notifier.clone());
    }
    if let Some(election) = &election {
        controller.register_metrics(|registry| election.register_metrics(registry));
        let status = controller.status();
        let triggers = controller.triggers();
        let mut roles = election.subscribe();
        let reporter = election.handle();
        let notifier = notifier.clone();
        let replica = args.target.replica_id.clone().unwrap_or_default();
        tokio::spawn(async move {
            loop {
                status.set_ha(serde_json::to_value(reporter.status()).unwrap_or_default());
                let was_leader = roles.borrow().is_leader();
                if roles.changed().await.is_err() {
                    break;
                }
                let is_leader = matches!(*roles.borrow(), Role::Leader);
                if !was_leader && is_leader {
                    triggers.send(Trigger::Leadership);
                }
                if let Some(notifier) = notifier.as_ref().filter(|_| was_leader != is_leader) {
                    notifier.send(Event::leadership(is_leader, &replica, chrono::Utc::now()));
                }
            }
        });
    }
    let webhook = match (webhook_secret, &args.git_pull) {
        (Some(secret), Some(branch)) => {
            let path = args.webhook_path.as_deref().unwrap_or(webhook::DEFAULT_PATH);
            Some(Webhook::new(path, secret, branch, controller.git_pull_now())?)
        }
        _ => None,
    };
    if let Some(hook) = &webhook {
        controller.register_metrics(|registry| hook.register_metrics(registry));
    }
    let actions = ui_token.map(|token| {
        let triggers = controller.triggers();
        let reconcile: ui_actions::Callback = Arc::new(move || triggers.send(Trigger::Requested));
        let refresh: Option<ui_actions::Callback> = match &args.git_pull {
            Some(_) => Some(Arc::new(controller.git_pull_now())),
            None => None,
        };
        ui_actions::Actions::new(token, reconcile, refresh)
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding the status server to {}", args.listen))?;
    let addr = listener.local_addr()?;
    outln!(
        "mesosync: reconciling {} — status at http://{addr}/status, metrics at http://{addr}/metrics",
        args.dir.display()
    );
    outln!("mesosync: dashboard at http://{addr}/{}", if actions.is_some() { " (actions on)" } else { "" });
    if let Some(hook) = &webhook {
        println!("mesosync: push webhook at http://{addr}{}", hook.path());
    }
    let result = daemon::run_with_ui(controller, listener, webhook, actions, signals).await;
    if let Some(notifier) = notifier {
        notifier.shutdown(NOTIFY_GRACE).await;
    }
    if let Some(election) = election {
        election.shutdown().await;
    }
    if let Some(sandbox) = sandbox {
        sandbox.shutdown().await;
    }
    result?;
    Ok(super::EXIT_OK)
}
