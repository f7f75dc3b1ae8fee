//! The controller loop: wait for the scheduler's next batch, read the git revision, run
//! one reconcile, feed its outcome back to the scheduler, the status and the metrics.
//! One loop, one reconcile at a time; triggers arriving meanwhile wait in a channel and
//! collapse into the next batch.
//!
//! The loop knows nothing of HTTP, manifests or plans: it drives any [`Reconcile`].

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};

use super::config::RuntimeConfig;
use super::git;
use super::scheduler::{Batch, RetryState, Scheduler, SchedulerConfig, may_change_input};
use super::triggers::{self, LastFileEvent, LiveEvents, TRIGGER_QUEUE, TriggerSender};
use crate::notify::{Notifier, Reconciled};
use crate::status::{
    FailureStage, Finished, GitRevision, InputFingerprint, Metrics, OutcomeKind, Reconcile, ReconcileContext,
    ReconcileFailure, ReconcileOutcome, Requeue, Retry, StatusStore, Trigger,
};

/// Why the controller could not run.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The manifest directory cannot be watched (missing, unreadable, no inotify).
    #[error("cannot watch {dir}: {source}")]
    Watch {
        /// The manifest directory.
        dir: String,
        /// Why.
        source: notify::Error,
    },
    /// The HTTP server's address cannot be bound or served.
    #[error("HTTP server on {addr}: {source}")]
    Server {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// Signal handlers cannot be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    /// `--git-pull` was given but the manifest directory is not in a git work tree.
    #[error("--git-pull: {0} is not inside a git work tree")]
    NotAGitCheckout(String),
    /// A second SIGTERM / Ctrl-C arrived before the in-flight reconcile finished.
    #[error("forced shutdown: the in-flight reconcile was abandoned")]
    Forced,
}

/// How long shutdown waits for background tasks (a git pull) to finish.
const BACKGROUND_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

type ConnectLive = Box<dyn FnMut() -> LiveEvents + Send>;

/// What a reconcile loaded: the key of the next one (see
/// [`Controller::without_unchanged_input`]).
#[derive(Debug, PartialEq)]
struct Loaded {
    /// The manifest set's fingerprint.
    input: InputFingerprint,
    /// The checkout's revision when it started (`None` outside git).
    revision: Option<GitRevision>,
}

/// The controller: triggers → scheduler → reconcile, until shut down.
pub struct Controller {
    config: RuntimeConfig,
    reconciler: Arc<dyn Reconcile>,
    status: StatusStore,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    sender: TriggerSender,
    receiver: mpsc::Receiver<Trigger>,
    last_file_event: LastFileEvent,
    /// Wakes the `--git-pull` task for an immediate fetch (the push webhook).
    pull_now: Arc<tokio::sync::Notify>,
    /// In a mutex only so the controller is `Sync` (it is taken once, at start).
    live: std::sync::Mutex<Option<ConnectLive>>,
    /// Told every finished reconcile (`--notify`).
    notifier: Option<Notifier>,
}

impl Controller {
    /// A controller for `config` driving `reconciler`; nothing runs until [`run`](Self::run).
    pub fn new<R: Reconcile>(config: RuntimeConfig, reconciler: Arc<R>) -> Self {
        let (sender, receiver) = mpsc::channel(TRIGGER_QUEUE);
        let status = StatusStore::new(&config.manifest_dir, config.dry_run);
        status.set_reconcile_timeout(config.reconcile_timeout);
        Self {
            status,
            metrics: Arc::new(Metrics::new()),
            config,
            reconciler,
            shutdown: CancellationToken::new(),
            sender: TriggerSender(sender),
            receiver,
            last_file_event: LastFileEvent::default(),
            pull_now: Arc::new(tokio::sync::Notify::new()),
            live: std::sync::Mutex::new(None),
            notifier: None,
        }
    }

    /// Tell `notifier` about every finished reconcile (it never blocks the loop).
    pub fn with_notifier(mut self, notifier: Notifier) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// Follow a stream of live-change notifications (e.g. Marathon's `/v2/events`
    /// mapped to `()`): each item requests a (debounced) reconcile. `connect` is called
    /// again, with backoff, whenever the stream ends; a connection that fails should
    /// simply end its stream (an async connect fits with
    /// `futures::stream::once(connect()).flatten()`).
    pub fn with_live_events<S>(mut self, mut connect: impl FnMut() -> S + Send + 'static) -> Self
    where
        S: futures::Stream<Item = ()> + Send + 'static,
    {
        let connect: ConnectLive = Box::new(move || Box::pin(connect()) as LiveEvents);
        self.live = std::sync::Mutex::new(Some(connect));
        self
    }

    /// Register more metrics in the controller's registry (before [`run`](Self::run)).
    pub fn register_metrics(&mut self, register: impl FnOnce(&mut prometheus_client::registry::Registry)) {
        if let Some(metrics) = Arc::get_mut(&mut self.metrics) {
            register(metrics.registry_mut());
        }
    }

    /// The status the HTTP server reports.
    pub fn status(&self) -> StatusStore {
        self.status.clone()
    }

    /// The metrics the HTTP server reports.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Cancel it to stop: the in-flight reconcile is told to finish its current write,
    /// then [`run`](Self::run) returns `Ok`.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// The last file event the watcher handled: a barrier for tests (see
    /// [`LastFileEvent`]).
    #[doc(hidden)]
    pub fn last_file_event(&self) -> LastFileEvent {
        self.last_file_event.clone()
    }

    /// Ask the `--git-pull` task to fetch now instead of at the next `--git-interval`
    /// tick (what the push webhook calls). Requests made while a fetch is running
    /// collapse into one more fetch after it; without `--git-pull` it does nothing.
    pub fn git_pull_now(&self) -> impl Fn() + Send + Sync + 'static {
        let pull_now = self.pull_now.clone();
        move || pull_now.notify_one()
    }

    /// Request reconciles from outside (SIGHUP, tests, other integrations).
    pub fn triggers(&self) -> TriggerSender {
        self.sender.clone()
    }

    /// Run until the shutdown token is cancelled. Starts with one reconcile
    /// ([`Trigger::Startup`]).
    pub async fn run(mut self) -> Result<(), RuntimeError> {
        let dir = self.config.manifest_dir.clone();
        if self.config.git_pull.is_some() && git::work_tree(&dir).is_none() {
            return Err(RuntimeError::NotAGitCheckout(dir.display().to_string()));
        }
        let _watcher = triggers::watch_files(&dir, self.sender.clone(), self.last_file_event.clone())
            .map_err(|source| RuntimeError::Watch { dir: dir.display().to_string(), source })?;
        let background = self.shutdown.child_token();
        let mut tasks = JoinSet::new();
        let live = self.live.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(connect) = live {
            let reconnect = self.config.reconnect;
            tasks.spawn(triggers::follow_live_events(
                connect,
                reconnect,
                self.sender.clone(),
                background.clone(),
            ));
        }
        if let Some(pull) = self.config.git_pull.clone() {
            tasks.spawn(triggers::pull_periodically(
                dir.clone(),
                pull,
                self.pull_now.clone(),
                self.sender.clone(),
                self.status.clone(),
                background.clone(),
            ));
        }
        info!(dir = %dir.display(), dry_run = self.config.dry_run, resync = ?self.config.resync, "controller started");

        let mut scheduler = Scheduler::new(
            SchedulerConfig {
                debounce: self.config.debounce,
                max_debounce: self.config.max_debounce,
                resync: self.config.resync,
                backoff: self.config.backoff,
            },
            Instant::now(),
        );
        scheduler.request(Trigger::Startup, Instant::now());
        let mut number = 0;
        // What the last reconcile loaded (`None` after a failed one).
        let mut loaded = None;
        loop {
            let due = scheduler.next_due();
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => break,
                Some(trigger) = self.receiver.recv() => scheduler.request(trigger, Instant::now()),
                _ = tokio::time::sleep_until(due) => {
                    let Some(batch) = scheduler.take_due(Instant::now()) else { continue };
                    let Some(batch) = self.without_unchanged_input(batch, &loaded, &mut scheduler).await else {
                        continue;
                    };
                    number += 1;
                    loaded = self.reconcile(number, batch, &mut scheduler).await;
                }
            }
        }
        // Let a git pull in progress finish (killing `git merge` midway could leave a
        // half-updated checkout), within reason.
        background.cancel();
        let drained =
            tokio::time::timeout(BACKGROUND_GRACE, async { while tasks.join_next().await.is_some() {} });
        if drained.await.is_err() {
            warn!(grace = ?BACKGROUND_GRACE, "background tasks did not stop in time; aborting them");
            tasks.shutdown().await;
        }
        info!(reconciles = number, "controller stopped");
        Ok(())
    }

    /// A batch in which only file events and git pulls say the input may have changed
    /// (live events and retries may ride along), while the manifest set and the
    /// checkout's revision are the ones the last reconcile loaded: they were no change
    /// (the file events of the checkout's own fast-forward seen after a reconcile
    /// already loaded it, or the pull's trigger seen after its file events were; a file
    /// saved with the same bytes), so they are taken out of the batch; `None` when
    /// nothing else asked for it. A reconcile is keyed on its input, as Flux and Argo CD
    /// key theirs on the revision they apply: the same input again is no reason to load,
    /// plan and write again. A real edit changes the fingerprint and reconciles.
    async fn without_unchanged_input(
        &self,
        mut batch: Batch,
        loaded: &Option<Loaded>,
        scheduler: &mut Scheduler,
    ) -> Option<Batch> {
        let manifests = |r: &Trigger| matches!(r, Trigger::FileChange | Trigger::GitPull);
        let only_manifests = batch.reasons.iter().any(manifests)
            && !batch.reasons.iter().any(|r| !manifests(r) && may_change_input(r));
        let Some(loaded) = loaded.as_ref().filter(|_| only_manifests) else { return Some(batch) };
        // Bounded like a reconcile: a look that does not finish is "cannot tell". The
        // manifests first: a real edit differs there, and is not kept waiting for git.
        let look = async {
            let input = self.reconciler.input_fingerprint().await.filter(|input| *input == loaded.input)?;
            let revision = git::revision(&self.config.manifest_dir).await.ok()?;
            Some(Loaded { input, revision })
        };
        if tokio::time::timeout(self.config.reconcile_timeout, look).await.ok().flatten().as_ref()
            != Some(loaded)
        {
            return Some(batch);
        }
        self.metrics.record_unchanged_input();
        let dropped =
            batch.reasons.iter().filter(|r| manifests(r)).map(ToString::to_string).collect::<Vec<_>>();
        let left = scheduler.drop_unchanged_input(&mut batch);
        // What still asks for a reconcile (live events, retries), if anything.
        let remaining = batch.reasons.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        info!(
            dropped = dropped.join(", "),
            remaining,
            "the manifests and the revision are those the last reconcile loaded: not a reason to reconcile"
        );
        left.then_some(batch)
    }

    /// One reconcile, start to finish, including its bookkeeping. Returns what it
    /// loaded, if it succeeded.
    async fn reconcile(&self, number: u64, batch: Batch, scheduler: &mut Scheduler) -> Option<Loaded> {
        let revision = match git::revision(&self.config.manifest_dir).await {
            Ok(revision) => revision,
            Err(e) => {
                warn!(error = %e, "cannot read the git revision");
                self.status.record_error(format!("git revision: {e}"));
                None
            }
        };
        self.metrics.record_revision(revision.as_ref());
        self.status.started(number, &batch.reasons, revision.as_ref());
        let reasons = batch.reasons.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        let span = info_span!(
            "reconcile",
            number,
            reasons,
            revision = revision.as_ref().map_or("none", GitRevision::short),
            dirty = revision.as_ref().is_some_and(|r| r.dirty),
        );
        span.in_scope(|| info!(dry_run = self.config.dry_run, "reconcile started"));

        let context = ReconcileContext {
            number,
            reasons: batch.reasons.clone(),
            revision: revision.clone(),
            dry_run: self.config.dry_run,
            backing_off: batch.backing_off,
            cancel: self.shutdown.child_token(),
        };
        let started = Instant::now();
        let started_at = Utc::now();
        let outcome = self.run_bounded(context, started).instrument(span.clone()).await;
        let duration = started.elapsed();
        let now = Instant::now();
        scheduler.finished(now, &outcome);

        let finished_at = Utc::now();
        // A permanent failure has no timer: it is retried by the resync at the latest.
        let resync = scheduler.resync_at();
        let retry_wall = |r: &RetryState| Retry {
            failures: r.failures,
            at: finished_at
                + chrono::Duration::from_std(r.at.unwrap_or(resync).saturating_duration_since(now))
                    .unwrap_or_default(),
        };
        self.metrics.record(&outcome, duration, finished_at);
        self.status.finished(Finished {
            number,
            reasons: &batch.reasons,
            revision: revision.as_ref(),
            outcome: &outcome,
            started_at,
            duration,
            retries: scheduler.retries().iter().map(|(o, r)| (o.clone(), retry_wall(r))).collect(),
            retry: scheduler.whole_retry().map(retry_wall),
        });
        span.in_scope(|| log_outcome(&outcome, duration, scheduler));
        if let Some(notifier) = &self.notifier {
            let dry_run = self.config.dry_run;
            let revision = revision.as_ref();
            notifier.reconciled(&Reconciled {
                number,
                revision,
                dry_run,
                outcome: &outcome,
                at: finished_at,
            });
        }
        let input = outcome.ok()?.input?;
        Some(Loaded { input, revision })
    }
}

impl Controller {
    /// Run one reconcile as its own task, so that nothing it does (a blocked read, a
    /// server that never answers, a panic) can hold the loop: it is abandoned at
    /// `--reconcile-timeout`, or `--shutdown-grace` after shutdown began.
    async fn run_bounded(&self, context: ReconcileContext, started: Instant) -> ReconcileOutcome {
        let reconciler = self.reconciler.clone();
        let cancel = context.cancel.clone();
        let mut task = tokio::spawn(async move { reconciler.reconcile(context).await }.in_current_span());
        let handle = task.abort_handle();
        let timeout = self.config.reconcile_timeout;
        let grace = self.config.shutdown_grace;
        let shutdown = async {
            self.shutdown.cancelled().await;
            tokio::time::sleep(grace).await;
        };
        let abandoned = |message: String| {
            cancel.cancel();
            handle.abort();
            error!(error = %message, "reconcile abandoned");
            Err(ReconcileFailure::new(FailureStage::Deadline, message, Requeue::Backoff))
        };
        tokio::select! {
            joined = &mut task => joined.unwrap_or_else(|e| {
                // A panicking reconcile is a failed reconcile, not a dead controller.
                let message = match e.try_into_panic() {
                    Ok(panic) => panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into()),
                    Err(e) => e.to_string(),
                };
                Err(ReconcileFailure::new(
                    FailureStage::Other,
                    format!("reconcile panicked: {message}"),
                    Requeue::Backoff,
                ))
            }),
            _ = tokio::time::sleep_until(started + timeout) => abandoned(format!(
                "the reconcile did not finish within --reconcile-timeout ({}); \
                 it was abandoned and is retried with backoff",
                humantime(timeout)
            )),
            _ = shutdown => abandoned(format!(
                "the reconcile did not finish within --shutdown-grace ({}) of the shutdown signal",
                humantime(grace)
            )),
        }
    }
}

/// `90s`, `1.5s`, `30m`: a duration as the flags take it.
fn humantime(d: std::time::Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 60.0 && secs % 60.0 == 0.0 { format!("{}m", secs / 60.0) } else { format!("{secs}s") }
}

/// One line for the reconcile, one per failed object.
fn log_outcome(outcome: &ReconcileOutcome, duration: std::time::Duration, scheduler: &Scheduler) {
    let kind = OutcomeKind::of(outcome).as_str();
    let took_ms = duration.as_millis() as u64;
    match outcome {
        Ok(report) => {
            for (object, error) in report.failed() {
                let retry = scheduler.retries().get(object);
                let retry_in =
                    retry.and_then(|r| r.at).map(|at| at.saturating_duration_since(Instant::now()));
                let awaits_change = retry.is_some_and(|r| r.at.is_none());
                warn!(%object, error, ?retry_in, awaits_change, "object failed");
            }
            info!(
                outcome = kind,
                took_ms,
                writes = report.writes.len(),
                drifted = report.drifted(),
                failed = report.failed().count(),
                unchanged = report.summary.unchanged,
                "reconcile finished"
            );
        }
        Err(failure) => {
            let retry_in = scheduler
                .whole_retry()
                .and_then(|r| r.at)
                .map(|at| at.saturating_duration_since(Instant::now()));
            let requeue = failure.requeue;
            error!(outcome = kind, took_ms, stage = ?failure.stage, error = %failure.message, ?retry_in, ?requeue, "reconcile failed");
        }
    }
}
