//! The executor: turns a [`Plan`] into HTTP writes, each as soon as it may start, and reports what
//! became of each object. It makes no decisions of its own — the plan says what to send
//! — but it owns *how*: ordering, bounded concurrency, deployment waits, lock and
//! transient-error retries, cancellation and the write fence.
//!
//! Rules it keeps:
//! - A NoOp sends nothing. Every write is checked against the cancellation signal and
//!   the write fence first; a cancelled apply finishes the writes in flight (and their
//!   waits) and starts no new one.
//! - A write starts as soon as its `depends_on` ended and every write of a wave below
//!   its `barrier` did (`Schedule`): a `sync.wave` group (and the deletes, last)
//!   is a barrier, a dependency wave is not — one slow app holds up its own
//!   dependants only, and a bring-up takes about its critical path.
//! - At most `concurrency` write *requests* are in flight at once; waiting for a
//!   deployment, a health or a job's run holds no slot (the waits share the event
//!   stream and one listing per system, so they cost no request each).
//! - An object whose dependency failed (or was blocked or skipped) is not attempted and
//!   is reported "blocked by" it; unrelated objects proceed.
//! - An object is written only once each of its dependencies is ready ([`readiness`]:
//!   an app Healthy, a job as it is): one written in this apply is ready when its write
//!   is done; one left as it is may be waited for, re-read, up to its timeout, and its
//!   dependant is then reported [`Outcome::Waits`] with the dependency's health.
//! - A Marathon write is done when its deployment ends ([`deployments`]) and the app
//!   is Healthy, both within the object's timeout (`sync.timeout`, else
//!   `deployment_timeout`). A 409 lock is
//!   waited out and retried with backoff (`force` sends `?force=true` instead);
//!   transient errors (5xx, transport) are retried with backoff; 4xx never.
//! - Create is a POST, so that an id held by an app mesosync does not own is reported
//!   (409 "already exists") instead of overwritten.
//! - A Chronos [`Write::Replace`](crate::plan::Write::Replace) (the job switches
//!   between scheduled and dependent) is a DELETE then the create, since Chronos 2.4
//!   cannot do it in place; the job's children are kept as they were and the result
//!   is read back (`chronos`).
//! - A run-once job (an action with a `run`) is done only once a run of its current
//!   definition succeeded (`job_runs`): its dependants, in later waves, are blocked
//!   when it fails.
//!
//! How one system's write is executed and waited on lives in that system's module
//! (`marathon`, `chronos`), registered by one arm in `Ctx::run`; this module keeps what
//! every system shares (waves, concurrency, blocking, cancellation, the fence, masking
//! of server errors). A third system adds a module here beside its `crate::system` impl.

mod chronos;
mod deployments;
mod job_runs;
mod marathon;
mod readiness;
pub mod report;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::client::{Clients, RetryPolicy};
use crate::health::{HealthMap, HealthStatus};
use crate::model::{ObjectKind, ObjectRef};
use crate::plan::{Action, Plan};
use deployments::DeploymentWaiter;
use readiness::{Readiness, Waited};

pub use readiness::ready;
pub use report::{
    ApplyError, ApplyReport, Counts, LineProgress, NoProgress, ObjectReport, Outcome, ProgressSink,
    SkipReason, TracingProgress, waits_text,
};

pub use crate::normalize::marathon::OWNER_LABEL;

/// Checked before every write; `false` stops all further writes (HA leadership).
pub type WriteFence = Arc<dyn Fn() -> bool + Send + Sync>;

/// How to apply.
#[derive(Clone)]
pub struct ApplyOptions {
    /// Write requests in flight at once (the waits after them are not counted).
    pub concurrency: usize,
    /// Override Marathon deployment locks (`?force=true`) instead of waiting.
    pub force: bool,
    /// Per-object bound on waiting for a deployment to end.
    pub deployment_timeout: Duration,
    /// How often `/v2/deployments` is polled while waiting.
    pub poll_interval: Duration,
    /// Use the `/v2/events` stream to learn deployment outcomes (else poll only).
    pub use_events: bool,
    /// Retries of a write answered 409 "locked" (after the blocking deployment ends).
    pub lock_retry: RetryPolicy,
    /// Retries of a write that failed transiently (5xx, transport), on top of the
    /// HTTP layer's own retries of idempotent requests.
    pub error_retry: RetryPolicy,
    /// Chronos 3.x: how long a created job may take to show up in the listing.
    pub chronos_visibility_timeout: Duration,
    /// Once cancelled, no new write starts (those in flight finish): the controller's
    /// shutdown token, passed down as is.
    pub cancel: Option<CancellationToken>,
    /// Checked before every write.
    pub write_fence: Option<WriteFence>,
    /// The pause before a failed run-once job is started again (doubled after each
    /// failed run, at most 5 minutes).
    pub run_retry_delay: Duration,
    /// The health of each object as the plan's listing saw it: a dependency listed
    /// ready is not read again. Without it every dependency left as it is is read.
    pub live_health: Option<Arc<HealthMap>>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            concurrency: 8,
            force: false,
            deployment_timeout: Duration::from_secs(600),
            poll_interval: Duration::from_secs(1),
            use_events: true,
            lock_retry: RetryPolicy {
                max_attempts: 8,
                initial_delay: Duration::from_millis(250),
                max_delay: Duration::from_secs(15),
            },
            error_retry: RetryPolicy {
                max_attempts: 3,
                initial_delay: Duration::from_millis(250),
                max_delay: Duration::from_secs(5),
            },
            chronos_visibility_timeout: Duration::from_secs(10),
            cancel: None,
            write_fence: None,
            run_retry_delay: Duration::from_secs(10),
            live_health: None,
        }
    }
}

impl fmt::Debug for ApplyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApplyOptions")
            .field("concurrency", &self.concurrency)
            .field("force", &self.force)
            .field("deployment_timeout", &self.deployment_timeout)
            .field("poll_interval", &self.poll_interval)
            .field("use_events", &self.use_events)
            .field("lock_retry", &self.lock_retry)
            .field("error_retry", &self.error_retry)
            .field("cancel", &self.cancel.is_some())
            .field("write_fence", &self.write_fence.is_some())
            .field("run_retry_delay", &self.run_retry_delay)
            .field("live_health", &self.live_health.as_ref().map(|h| h.len()))
            .finish()
    }
}

impl ApplyOptions {
    fn cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(CancellationToken::is_cancelled)
    }

    fn fence_open(&self) -> bool {
        self.write_fence.as_ref().is_none_or(|f| f())
    }

    /// Why no new write may start now, if one may not.
    fn stop_reason(&self) -> Option<SkipReason> {
        if self.cancelled() {
            Some(SkipReason::Cancelled)
        } else if !self.fence_open() {
            Some(SkipReason::FenceLost)
        } else {
            None
        }
    }
}

/// What executing one action produced.
struct Executed {
    outcome: Outcome,
    deployment_id: Option<String>,
    attempts: u32,
    health: Option<HealthStatus>,
}

impl Executed {
    fn new(outcome: Outcome, deployment_id: Option<String>, attempts: u32) -> Self {
        Executed { outcome, deployment_id, attempts, health: None }
    }

    fn with_health(self, health: Option<HealthStatus>) -> Self {
        Executed { health, ..self }
    }
}

/// Execute `plan`: each write once its dependencies and barrier allow, at most
/// `opts.concurrency` write requests at a time, waiting on Marathon deployments, and
/// report every action's outcome (in plan order).
pub async fn apply(
    plan: &Plan,
    clients: &Clients,
    opts: &ApplyOptions,
    progress: &dyn ProgressSink,
) -> ApplyReport {
    let started = Instant::now();
    let waiter = marathon::waiter(plan, clients, opts).await;
    let readiness = Readiness::new(clients, opts);
    let timeouts = plan
        .actions
        .iter()
        .map(|a| (a.object.clone(), a.timeout.unwrap_or(opts.deployment_timeout)))
        .collect();
    let ctx = Ctx {
        clients,
        opts,
        waiter: waiter.as_ref(),
        readiness: &readiness,
        timeouts,
        jobs: job_runs::JobWatch::default(),
        writes: tokio::sync::Semaphore::new(opts.concurrency.max(1)),
    };

    let mut reports: Vec<(usize, ObjectReport)> = Vec::with_capacity(plan.actions.len());
    let mut graph = Schedule::new(plan);
    for (i, a) in plan.actions.iter().enumerate() {
        if !a.is_write() {
            reports.push((i, report_for(a, Executed::new(Outcome::Unchanged, None, 0), Duration::ZERO)));
        }
    }
    // Objects that did not end up in place: their dependants are blocked.
    let mut not_in_place: HashSet<&ObjectRef> = HashSet::new();
    // FuturesUnordered fed by hand rather than `buffer_unordered` over a closure: the
    // closure form makes the whole future !Send (higher-ranked lifetimes), and a
    // controller must be able to spawn an apply.
    let mut in_flight = FuturesUnordered::new();
    loop {
        // A write not attempted ends at once and may release others: until none is left.
        let mut batch = graph.startable();
        while !batch.is_empty() {
            for i in batch {
                let a = &plan.actions[i];
                // Not attempted: once stopped, everything left is "skipped" (not "blocked"
                // by the skipped ones); otherwise anything whose dependency is not in place.
                let not_attempted = match opts.stop_reason() {
                    Some(reason) => Some(Outcome::Skipped(reason)),
                    None => a
                        .depends_on
                        .iter()
                        .find(|d| not_in_place.contains(d))
                        .map(|dep| Outcome::Blocked { by: dep.clone() }),
                };
                match not_attempted {
                    Some(outcome) => {
                        let r = report_for(a, Executed::new(outcome, None, 0), Duration::ZERO);
                        progress.finished(a, &r);
                        not_in_place.insert(&a.object);
                        reports.push((i, r));
                        graph.finished(i);
                    }
                    None => in_flight.push(run_indexed(&ctx, i, a, progress)),
                }
            }
            batch = graph.startable();
        }
        let Some((i, a, r)) = in_flight.next().await else { break };
        if r.outcome == Outcome::Applied {
            readiness.mark_done(&a.object);
        } else if !r.outcome.is_ok() {
            not_in_place.insert(&a.object);
        }
        reports.push((i, r));
        graph.finished(i);
    }
    reports.sort_by_key(|(i, _)| *i);
    ApplyReport { objects: reports.into_iter().map(|(_, r)| r).collect(), duration: started.elapsed() }
}

/// When each write of a plan may start: once every write of a wave below its
/// `barrier` ended (a `sync.wave` group, the deletes) and each of its `depends_on` did.
/// Linear in actions and edges: each write is released once, by counters.
struct Schedule {
    /// Per write: dependencies (writes in this plan) not ended yet.
    deps_left: Vec<usize>,
    /// Per write: the writes that depend on it.
    dependants: Vec<Vec<usize>>,
    barrier: Vec<usize>,
    wave: Vec<usize>,
    /// Writes not ended yet, by wave.
    open_by_wave: BTreeMap<usize, usize>,
    /// Writes whose dependencies ended, waiting for their barrier, by barrier.
    held: BTreeMap<usize, Vec<usize>>,
    /// Writes that may start now.
    ready: Vec<usize>,
}

impl Schedule {
    fn new(plan: &Plan) -> Self {
        let n = plan.actions.len();
        let mut writes_of: std::collections::HashMap<&ObjectRef, Vec<usize>> = Default::default();
        for (i, a) in plan.actions.iter().enumerate().filter(|(_, a)| a.is_write()) {
            writes_of.entry(&a.object).or_default().push(i);
        }
        let mut s = Schedule {
            deps_left: vec![0; n],
            dependants: vec![Vec::new(); n],
            barrier: plan.actions.iter().map(|a| a.barrier).collect(),
            wave: plan.actions.iter().map(|a| a.wave).collect(),
            open_by_wave: BTreeMap::new(),
            held: BTreeMap::new(),
            ready: Vec::new(),
        };
        for (i, a) in plan.actions.iter().enumerate().filter(|(_, a)| a.is_write()) {
            *s.open_by_wave.entry(a.wave).or_default() += 1;
            let mut deps: Vec<usize> = a
                .depends_on
                .iter()
                .flat_map(|d| writes_of.get(d).into_iter().flatten().copied())
                .filter(|&j| j != i && plan.actions[j].wave < a.wave)
                .collect();
            deps.sort_unstable();
            deps.dedup();
            s.deps_left[i] = deps.len();
            for j in deps {
                s.dependants[j].push(i);
            }
        }
        for (i, a) in plan.actions.iter().enumerate().filter(|(_, a)| a.is_write()) {
            if s.deps_left[i] == 0 {
                s.held.entry(a.barrier).or_default().push(i);
            }
        }
        s
    }

    /// The writes that may start now, in plan order; each is handed out once.
    fn startable(&mut self) -> Vec<usize> {
        let lowest_open = self.open_by_wave.keys().next().copied().unwrap_or(usize::MAX);
        while let Some(entry) = self.held.first_entry() {
            if *entry.key() > lowest_open {
                break;
            }
            self.ready.extend(entry.remove());
        }
        let mut out = std::mem::take(&mut self.ready);
        out.sort_unstable();
        out
    }

    /// Write `i` ended, whatever its outcome.
    fn finished(&mut self, i: usize) {
        if let Some(open) = self.open_by_wave.get_mut(&self.wave[i]) {
            *open -= 1;
            if *open == 0 {
                self.open_by_wave.remove(&self.wave[i]);
            }
        }
        for k in std::mem::take(&mut self.dependants[i]) {
            self.deps_left[k] -= 1;
            if self.deps_left[k] == 0 {
                self.held.entry(self.barrier[k]).or_default().push(k);
            }
        }
    }
}

/// Run one action inside a span naming it; returns it with its plan index.
async fn run_indexed<'a>(
    ctx: &Ctx<'_>,
    index: usize,
    action: &'a Action,
    progress: &dyn ProgressSink,
) -> (usize, &'a Action, ObjectReport) {
    let span = tracing::info_span!("apply", object = %action.object, action = ?action.kind());
    let report = ctx.run(action, progress).instrument(span).await;
    (index, action, report)
}

fn report_for(a: &Action, e: Executed, duration: Duration) -> ObjectReport {
    ObjectReport {
        object: a.object.clone(),
        kind: a.kind(),
        impact: a.impact,
        outcome: e.outcome,
        duration,
        deployment_id: e.deployment_id,
        attempts: e.attempts,
        health: e.health,
    }
}

struct Ctx<'a> {
    clients: &'a Clients,
    opts: &'a ApplyOptions,
    waiter: Option<&'a DeploymentWaiter>,
    /// The run statistics of jobs whose runs are waited for.
    jobs: job_runs::JobWatch,
    readiness: &'a Readiness<'a>,
    /// Each object's timeout (`sync.timeout`, else `deployment_timeout`).
    timeouts: std::collections::HashMap<ObjectRef, Duration>,
    /// `concurrency` permits: one is held by each write request in flight (never by
    /// a wait for a deployment, a health or a run).
    writes: tokio::sync::Semaphore,
}

impl Ctx<'_> {
    /// A slot for one write request (`None`: never, the semaphore is not closed).
    async fn write_slot(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.writes.acquire().await.ok()
    }

    async fn run(&self, a: &Action, progress: &dyn ProgressSink) -> ObjectReport {
        if let Some(reason) = self.opts.stop_reason() {
            let r = report_for(a, Executed::new(Outcome::Skipped(reason), None, 0), Duration::ZERO);
            progress.finished(a, &r);
            return r;
        }
        let t0 = Instant::now();
        if let Some(outcome) = self.wait_for_dependencies(a, progress).await {
            let r = report_for(a, Executed::new(outcome, None, 0), t0.elapsed());
            progress.finished(a, &r);
            return r;
        }
        progress.started(a);
        // The registry of executors: one arm per system.
        let executed = match a.object.kind {
            ObjectKind::MarathonApp => match &self.clients.marathon {
                Some(m) => self.run_app(a, m, progress).await,
                None => Executed::new(Outcome::Failed(ApplyError::NoClient("marathon")), None, 0),
            },
            ObjectKind::ChronosJob => match &self.clients.chronos {
                Some(c) => self.run_job(a, c).await,
                None => Executed::new(Outcome::Failed(ApplyError::NoClient("chronos")), None, 0),
            },
        };
        // A server may echo the request body in its error: mask it against the
        // object's secrets before the error is logged, reported or served.
        let executed = match executed.outcome {
            Outcome::Failed(e) => {
                let masker =
                    crate::diff::mask::Masker::for_action(a.object.kind, a.body.as_ref(), &a.secrets);
                Executed { outcome: Outcome::Failed(e.map_text(&|t| masker.text(t))), ..executed }
            }
            _ => executed,
        };
        let r = report_for(a, executed, t0.elapsed());
        progress.finished(a, &r);
        r
    }

    /// The timeout of `object` (`sync.timeout`, else `deployment_timeout`).
    fn timeout_of(&self, object: &ObjectRef) -> Duration {
        self.timeouts.get(object).copied().unwrap_or(self.opts.deployment_timeout)
    }

    /// Wait until every dependency of `a` is ready; `Some(outcome)` when one is not
    /// (within its timeout) or the apply was cancelled meanwhile.
    async fn wait_for_dependencies(&self, a: &Action, progress: &dyn ProgressSink) -> Option<Outcome> {
        for dep in a.depends_on.iter().chain(&a.awaits) {
            let listed = self.opts.live_health.as_ref().and_then(|l| l.get(dep));
            if let Some(status) = listed.filter(|s| !ready(dep, s) && !self.readiness.is_done(dep)) {
                progress.waiting(a, dep, status);
            }
            match self.readiness.wait_for(dep, self.timeout_of(dep)).await {
                Waited::Ready(_) => {}
                Waited::TimedOut(status) => return Some(Outcome::Waits { by: dep.clone(), status }),
                Waited::Cancelled => return Some(Outcome::Skipped(SkipReason::Cancelled)),
            }
        }
        None
    }

    /// Why write number `attempts + 1` may not be sent, if it may not: the fence is
    /// asked before every write; cancellation only before a retry, since the first
    /// write was admitted by [`Ctx::run`] and a retry is a new write.
    fn write_refused(&self, attempts: u32) -> Option<SkipReason> {
        if attempts > 0 {
            self.opts.stop_reason()
        } else {
            (!self.opts.fence_open()).then_some(SkipReason::FenceLost)
        }
    }
}

/// A transient error as it may be logged: a server may echo the request body (and its
/// secrets) in the error, so it is masked like a final failure is.
pub(super) fn masked(a: &Action, e: &crate::client::ClientError) -> String {
    let masker = crate::diff::mask::Masker::for_action(a.object.kind, a.body.as_ref(), &a.secrets);
    e.clone().map_text(&|t| masker.text(t)).to_string()
}

fn invalid(reason: String) -> Executed {
    Executed::new(Outcome::Failed(ApplyError::InvalidAction(reason)), None, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::FieldChange;
    use crate::plan::{Decision, Impact, Write};
    use serde_json::json;

    fn action(decision: impl Into<Decision>, changes: Vec<FieldChange>) -> Action {
        Action { changes, ..Action::new(ObjectRef::job("j"), decision, Impact::Replace) }
    }

    #[test]
    fn apply_can_be_spawned() {
        fn is_send<T: Send>(_: &T) {}
        let (plan, clients, opts) = (Plan::default(), Clients::default(), ApplyOptions::default());
        let fut = apply(&plan, &clients, &opts, &NoProgress);
        is_send(&fut);
    }

    #[tokio::test]
    async fn noop_plan_needs_no_client() {
        let mut a = action(Decision::Equal, vec![]);
        a.object = ObjectRef::app("/a");
        let plan = Plan { actions: vec![a], prune_refused: None };
        let report = apply(&plan, &Clients::default(), &ApplyOptions::default(), &NoProgress).await;
        assert!(report.is_success());
        assert_eq!(report.counts().unchanged, 1);
    }

    #[tokio::test]
    async fn dependants_of_a_failure_are_blocked() {
        // No Marathon client: the app fails; the job depending on it is blocked; an
        // unrelated NoOp is unaffected.
        let mut app = action(Write::Create, vec![]);
        app.object = ObjectRef::app("/db");
        app.body = Some(json!({"id": "/db"}));
        let mut job = action(Write::Create, vec![]);
        job.body = Some(json!({"name": "j"}));
        job.depends_on = vec![ObjectRef::app("/db")];
        job.wave = 1;
        let mut later = job.clone();
        later.object = ObjectRef::job("k");
        later.depends_on = vec![ObjectRef::job("j")];
        later.wave = 2;
        let plan = Plan { actions: vec![app, job, later], prune_refused: None };
        let report = apply(&plan, &Clients::default(), &ApplyOptions::default(), &NoProgress).await;
        assert!(!report.is_success());
        assert!(matches!(report.objects[0].outcome, Outcome::Failed(ApplyError::NoClient("marathon"))));
        assert_eq!(report.objects[1].outcome, Outcome::Blocked { by: ObjectRef::app("/db") });
        assert_eq!(report.objects[2].outcome, Outcome::Blocked { by: ObjectRef::job("j") });
        assert_eq!(report.counts().blocked, 2);
    }

    #[tokio::test]
    async fn progress_lines_name_object_action_and_outcome() {
        let mut app = action(Write::Update, vec![]);
        app.object = ObjectRef::app("/db");
        app.impact = Impact::Restart;
        app.body = Some(json!({"id": "/db"}));
        let plan = Plan { actions: vec![app], prune_refused: None };
        let sink = LineProgress::new(Vec::new());
        apply(&plan, &Clients::default(), &ApplyOptions::default(), &sink).await;
        let text = String::from_utf8(sink.into_inner()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "starting app /db update (restart: every task is replaced)");
        assert!(
            lines[1].starts_with(
                "app /db update (restart: every task is replaced): failed: no marathon client configured in "
            ),
            "{text}"
        );
    }

    #[tokio::test]
    async fn cancelled_apply_starts_nothing() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        let mut job = action(Write::Create, vec![]);
        job.body = Some(json!({"name": "j"}));
        let plan = Plan { actions: vec![job], prune_refused: None };
        let opts = ApplyOptions { cancel: Some(cancel), ..ApplyOptions::default() };
        let report = apply(&plan, &Clients::default(), &opts, &NoProgress).await;
        assert_eq!(report.objects[0].outcome, Outcome::Skipped(SkipReason::Cancelled));
    }
}
