//! What an apply did, object by object: the [`ApplyReport`], its [`Outcome`]s and the
//! [`ApplyError`]s, plus the [`ProgressSink`] that hears about each action as it starts
//! and ends.

use std::fmt;
use std::time::Duration;

use crate::client::ClientError;
use crate::health::HealthStatus;
use crate::model::ObjectRef;
use crate::plan::{Action, ActionKind, Impact};

/// Why one object's action failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ApplyError {
    /// The API refused or could not be reached (after retries).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The write's deployment ended with `deployment_failed` (failure or cancel).
    #[error("deployment {id} failed")]
    DeploymentFailed {
        /// Deployment id.
        id: String,
    },
    /// The write's deployment was still running when the per-object timeout ran out
    /// (a crash-looping app's deployment never ends).
    #[error("deployment {id} still running after {after:?}")]
    DeploymentTimeout {
        /// Deployment id.
        id: String,
        /// The timeout.
        after: Duration,
    },
    /// Still answered 409 "locked" after all lock retries.
    #[error("still locked by deployment(s) {} after {attempts} attempts (use force to override)", .deployments.join(", "))]
    StillLocked {
        /// The deployments holding the lock at the last attempt.
        deployments: Vec<String>,
        /// Attempts made.
        attempts: u32,
    },
    /// A create found the id taken by an app mesosync does not own: never overwritten.
    #[error("not owned by mesosync: {0}")]
    NotOwned(String),
    /// A Chronos 3.x job was accepted but never showed up in the listing (e.g. a
    /// parent is missing).
    #[error("job accepted but not listed after {0:?} (missing parent?)")]
    NotVisible(Duration),
    /// A Chronos replace (delete + create) was written but reading the job and its
    /// children back did not show what was sent (e.g. a child's parents rewritten).
    #[error("replaced, but {0}")]
    ReplaceUnsettled(String),
    /// The plan's action cannot be executed as written (missing body, scale of a job…).
    #[error("invalid action: {0}")]
    InvalidAction(String),
    /// The system of this object has no configured client.
    #[error("no {0} client configured")]
    NoClient(&'static str),
    /// Written (its deployment ended), but not Healthy within the object's timeout
    /// (`sync.timeout`, else the deployment timeout).
    #[error("written, but not Healthy after {after:?}: {status}")]
    NotHealthy {
        /// Its health at the deadline.
        status: HealthStatus,
        /// The timeout.
        after: Duration,
    },
}

impl ApplyError {
    /// Whether trying the same write again later can succeed: an API that was
    /// unreachable or answered 5xx, a lock or a deployment that did not end. A 4xx
    /// (422 invalid, 409 owned by someone else), an invalid action or a missing client
    /// fail the same way until something changes.
    pub fn is_transient(&self) -> bool {
        match self {
            ApplyError::Client(e) => e.is_transient(),
            ApplyError::DeploymentFailed { .. }
            | ApplyError::DeploymentTimeout { .. }
            | ApplyError::StillLocked { .. }
            | ApplyError::NotVisible(_)
            | ApplyError::ReplaceUnsettled(_)
            | ApplyError::NotHealthy { .. } => true,
            ApplyError::NotOwned(_) | ApplyError::InvalidAction(_) | ApplyError::NoClient(_) => false,
        }
    }
}

/// Why an action was not attempted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// Cancellation was requested before it started.
    Cancelled,
    /// The write fence said no (e.g. this replica lost leadership).
    FenceLost,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipReason::Cancelled => "cancelled",
            SkipReason::FenceLost => "write fence closed (not leader)",
        })
    }
}

/// What became of one object.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Written, and (for Marathon) its deployment finished successfully.
    Applied,
    /// A NoOp: nothing was sent.
    Unchanged,
    /// The action failed.
    Failed(ApplyError),
    /// Not attempted because an object it depends on failed or was not applied.
    Blocked {
        /// The dependency that failed (or was itself blocked).
        by: ObjectRef,
    },
    /// Not attempted because a dependency in place did not become ready in time (an
    /// app not Healthy): the dependency and its health at the deadline.
    Waits {
        /// The dependency.
        by: ObjectRef,
        /// Its health when the wait ended.
        status: HealthStatus,
    },
    /// Not attempted (cancellation, write fence).
    Skipped(SkipReason),
}

/// `waits for app /db: 0/1 tasks healthy, … (Degraded)`: why a dependant is not written.
pub fn waits_text(by: &ObjectRef, status: &HealthStatus) -> String {
    if status.reason.is_empty() {
        format!("waits for {by} ({})", status.health)
    } else {
        format!("waits for {by}: {} ({})", status.reason, status.health)
    }
}

impl ApplyError {
    /// This error with every text a server (or a user's URL) supplied passed through
    /// `mask` (see `ClientError::map_text`).
    pub fn map_text(self, mask: &dyn Fn(&str) -> String) -> ApplyError {
        match self {
            ApplyError::Client(e) => ApplyError::Client(e.map_text(mask)),
            ApplyError::NotOwned(m) => ApplyError::NotOwned(mask(&m)),
            ApplyError::InvalidAction(m) => ApplyError::InvalidAction(mask(&m)),
            ApplyError::NotHealthy { status, after } => {
                ApplyError::NotHealthy { status: status.map_reason(mask), after }
            }
            other => other,
        }
    }
}

impl Outcome {
    /// Applied or unchanged.
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Applied | Outcome::Unchanged)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Applied => f.write_str("applied"),
            Outcome::Unchanged => f.write_str("unchanged"),
            Outcome::Failed(e) => write!(f, "failed: {e}"),
            Outcome::Blocked { by } => write!(f, "blocked by {by}"),
            Outcome::Waits { by, status } => write!(f, "blocked: {}", waits_text(by, status)),
            Outcome::Skipped(r) => write!(f, "skipped: {r}"),
        }
    }
}

/// One object's line in the report.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectReport {
    /// The object.
    pub object: ObjectRef,
    /// The planned action.
    pub kind: ActionKind,
    /// Its planned impact.
    pub impact: Impact,
    /// What happened.
    pub outcome: Outcome,
    /// Wall time from start to end (writes, retries and waits).
    pub duration: Duration,
    /// The Marathon deployment of the (last) write.
    pub deployment_id: Option<String>,
    /// Writes attempted (0 for NoOp, blocked, skipped).
    pub attempts: u32,
    /// The object's health when its write was done (apps), as last read.
    pub health: Option<HealthStatus>,
}

impl fmt::Display for ObjectReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} ({}): {} in {:.1?}",
            self.object,
            crate::plan::render::kind_word(self.kind),
            crate::plan::render::impact_text(self.impact),
            self.outcome,
            self.duration
        )?;
        if let Some(d) = &self.deployment_id {
            write!(f, " [deployment {d}]")?;
        }
        if let (Some(h), true) = (&self.health, self.outcome.is_ok()) {
            write!(f, ", {h}")?;
        }
        Ok(())
    }
}

/// Totals by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Applied.
    pub applied: usize,
    /// Unchanged (NoOp).
    pub unchanged: usize,
    /// Failed.
    pub failed: usize,
    /// Blocked by a failed dependency, or waiting on one that is not ready.
    pub blocked: usize,
    /// Skipped (cancelled, fence).
    pub skipped: usize,
}

/// The result of one apply: every action of the plan, in plan order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApplyReport {
    /// One entry per action.
    pub objects: Vec<ObjectReport>,
    /// Wall time of the whole apply.
    pub duration: Duration,
}

impl ApplyReport {
    /// Every object applied or unchanged.
    pub fn is_success(&self) -> bool {
        self.objects.iter().all(|o| o.outcome.is_ok())
    }

    /// Totals by outcome.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for o in &self.objects {
            match o.outcome {
                Outcome::Applied => c.applied += 1,
                Outcome::Unchanged => c.unchanged += 1,
                Outcome::Failed(_) => c.failed += 1,
                Outcome::Blocked { .. } | Outcome::Waits { .. } => c.blocked += 1,
                Outcome::Skipped(_) => c.skipped += 1,
            }
        }
        c
    }

    /// The entry for `object`.
    pub fn get(&self, object: &ObjectRef) -> Option<&ObjectReport> {
        self.objects.iter().find(|o| &o.object == object)
    }

    /// Entries that did not succeed.
    pub fn failures(&self) -> impl Iterator<Item = &ObjectReport> {
        self.objects.iter().filter(|o| !o.outcome.is_ok())
    }
}

impl fmt::Display for ApplyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.counts();
        write!(
            f,
            "{} applied, {} unchanged, {} failed, {} blocked, {} skipped in {:.1?}",
            c.applied, c.unchanged, c.failed, c.blocked, c.skipped, self.duration
        )
    }
}

/// Hears about each action as it starts and ends (the CLI prints, the controller logs
/// and counts). Blocked and skipped actions only end; NoOps are not reported.
pub trait ProgressSink: Send + Sync {
    /// An action is about to make its first write.
    fn started(&self, action: &Action);
    /// An action is done, whatever the outcome.
    fn finished(&self, action: &Action, report: &ObjectReport);
    /// An action waits for `on` (a dependency, or the object itself after its write)
    /// to be ready; `status` is its health now.
    fn waiting(&self, _action: &Action, _on: &ObjectRef, _status: &HealthStatus) {}
}

/// A [`ProgressSink`] that logs one `tracing` line per start and end.
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingProgress;

impl ProgressSink for TracingProgress {
    fn started(&self, action: &Action) {
        tracing::info!(object = %action.object, action = ?action.kind(), impact = ?action.impact, wave = action.wave, "starting");
    }

    fn finished(&self, action: &Action, report: &ObjectReport) {
        let duration_ms = u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX);
        let deployment = report.deployment_id.as_deref().unwrap_or("");
        if report.outcome.is_ok() {
            tracing::info!(object = %action.object, action = ?action.kind(), impact = ?action.impact, duration_ms, deployment, outcome = %report.outcome, "done");
        } else {
            tracing::warn!(object = %action.object, action = ?action.kind(), impact = ?action.impact, duration_ms, deployment, outcome = %report.outcome, "not applied");
        }
    }

    fn waiting(&self, action: &Action, on: &ObjectRef, status: &HealthStatus) {
        tracing::info!(object = %action.object, waits_for = %on, health = %status.health, reason = %status.reason, "waiting");
    }
}

/// A [`ProgressSink`] that says nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn started(&self, _: &Action) {}
    fn finished(&self, _: &Action, _: &ObjectReport) {}
}

/// A [`ProgressSink`] that writes one plain line per start and end to a writer (the
/// CLI passes stderr): `starting app /x update (restart: every task is replaced)` and the [`ObjectReport`] line.
pub struct LineProgress<W: std::io::Write + Send> {
    out: std::sync::Mutex<W>,
}

impl<W: std::io::Write + Send> LineProgress<W> {
    /// Write progress lines to `out`.
    pub fn new(out: W) -> Self {
        LineProgress { out: std::sync::Mutex::new(out) }
    }

    /// The writer back (tests read what was written).
    pub fn into_inner(self) -> W {
        self.out.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn line(&self, text: fmt::Arguments<'_>) {
        if let Ok(mut out) = self.out.lock() {
            // Progress output is best effort: a closed stderr must not fail an apply.
            let _ = writeln!(out, "{text}");
        }
    }
}

impl<W: std::io::Write + Send> ProgressSink for LineProgress<W> {
    fn started(&self, action: &Action) {
        self.line(format_args!(
            "starting {} {} ({})",
            action.object,
            crate::plan::render::kind_word(action.kind()),
            crate::plan::render::impact_text(action.impact)
        ));
    }

    fn finished(&self, _: &Action, report: &ObjectReport) {
        self.line(format_args!("{report}"));
    }

    fn waiting(&self, action: &Action, on: &ObjectRef, status: &HealthStatus) {
        if on == &action.object {
            self.line(format_args!("{} waits to be Healthy: {status}", action.object));
        } else {
            self.line(format_args!("{} {}", action.object, waits_text(on, status)));
        }
    }
}
