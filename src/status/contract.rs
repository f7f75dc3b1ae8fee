//! The contract between the controller loop and one reconcile: the [`Reconcile`] trait
//! the real pipeline (load → list → normalize → diff → plan → apply) implements, what it
//! is told ([`ReconcileContext`]) and what it answers ([`ReconcileOutcome`]).
//!
//! The loop never looks inside a reconcile; a reconcile never schedules itself. The
//! report is how the two talk: failed objects are retried with backoff, the rest feed
//! /status and /metrics.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::GitRevision;
use crate::health::HealthStatus;
use crate::model::ObjectRef;
use crate::plan::{ActionKind, Summary};
pub use crate::source::InputFingerprint;

/// A boxed future, so that [`Reconcile`] can be used as `dyn Reconcile`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One full reconcile of the manifest directory against the live systems.
///
/// Implementations must check `ctx.cancel` between writes and return promptly once it
/// is cancelled (finishing the write in flight, starting no other), with
/// [`ReconcileReport::cancelled`] set.
pub trait Reconcile: Send + Sync + 'static {
    /// Load, list, plan and (unless `ctx.dry_run`) apply.
    fn reconcile(&self, ctx: ReconcileContext) -> BoxFuture<'_, ReconcileOutcome>;

    /// The fingerprint of the input (the manifest set) as it is now, without
    /// reconciling: what [`ReconcileReport::input`] would say of a reconcile started now.
    /// The controller asks before a reconcile that only file events asked for: when it
    /// equals the input of the last reconcile, the file events changed nothing and do
    /// not start one. `None` (the default): cannot tell, every file event reconciles.
    fn input_fingerprint(&self) -> BoxFuture<'_, Option<InputFingerprint>> {
        Box::pin(std::future::ready(None))
    }
}

/// Any `Fn(ReconcileContext) -> impl Future<Output = ReconcileOutcome>` as a
/// [`Reconcile`], for wiring a pipeline written as a closure.
#[derive(Clone, Copy, Debug)]
pub struct FnReconcile<F>(pub F);

impl<F, Fut> Reconcile for FnReconcile<F>
where
    F: Fn(ReconcileContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ReconcileOutcome> + Send + 'static,
{
    fn reconcile(&self, ctx: ReconcileContext) -> BoxFuture<'_, ReconcileOutcome> {
        Box::pin((self.0)(ctx))
    }
}

/// Why a reconcile runs. Several reasons collapse into one reconcile.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Trigger {
    /// The controller just started.
    Startup,
    /// Files under the manifest directory changed.
    FileChange,
    /// The periodic resync timer.
    Resync,
    /// The live systems reported a change (Marathon's event stream).
    LiveEvent,
    /// SIGHUP.
    Signal,
    /// `--git-pull` moved the checkout to a new commit.
    GitPull,
    /// The backoff of a failed object ran out.
    Retry(ObjectRef),
    /// The backoff after a reconcile that failed as a whole (load or list error) ran out.
    RetryAfterError,
    /// This replica just became the leader (`--ha-zk`): reconcile at once.
    Leadership,
    /// Someone asked for it (the dashboard's "reconcile now").
    Requested,
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::Startup => f.write_str("startup"),
            Trigger::FileChange => f.write_str("file-change"),
            Trigger::Resync => f.write_str("resync"),
            Trigger::LiveEvent => f.write_str("live-event"),
            Trigger::Signal => f.write_str("signal"),
            Trigger::Leadership => f.write_str("leadership"),
            Trigger::Requested => f.write_str("requested"),
            Trigger::GitPull => f.write_str("git-pull"),
            Trigger::Retry(object) => write!(f, "retry {object}"),
            Trigger::RetryAfterError => f.write_str("retry-after-error"),
        }
    }
}

/// Reported as its display text (`file-change`, `retry app /db`).
impl Serialize for Trigger {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// What a reconcile is told.
#[derive(Clone, Debug)]
pub struct ReconcileContext {
    /// Sequence number of this reconcile since the controller started (1 = first).
    pub number: u64,
    /// Every reason collapsed into this reconcile, sorted, without duplicates.
    pub reasons: Vec<Trigger>,
    /// The manifest checkout's HEAD and dirtiness, when it is a git work tree.
    pub revision: Option<GitRevision>,
    /// Compute and report, never write.
    pub dry_run: bool,
    /// Objects that failed recently and whose retry time has not come: the reconcile
    /// should not write them yet (report them [`ObjectState::Skipped`]).
    pub backing_off: BTreeSet<ObjectRef>,
    /// Cancelled on shutdown: finish the write in flight, start no other.
    pub cancel: CancellationToken,
}

/// What became of one object in a reconcile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum ObjectState {
    /// Live equals desired (possibly after this reconcile's write).
    Synced,
    /// Live differs and was not written (dry run): `changes` field changes.
    Drifted {
        /// Number of differing fields.
        changes: usize,
    },
    /// A write (or its deployment) failed; retried as `requeue` says.
    Failed {
        /// What went wrong, as a user reads it.
        error: String,
        /// Whether retrying can help before something changes.
        requeue: Requeue,
    },
    /// `sync.suspend: true`: never written; `changes` is the drift left alone.
    Suspended {
        /// Number of differing fields.
        changes: usize,
    },
    /// Not attempted this time: waiting on a failed dependency or on its own backoff.
    Skipped {
        /// Why (e.g. "waits for app /db", "backing off").
        reason: String,
    },
}

/// One write made to a live system.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AppliedWrite {
    /// The object written.
    pub object: ObjectRef,
    /// What was done to it.
    pub action: ActionKind,
}

/// A failed API call that did not fail the whole reconcile (counted in metrics).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiError {
    /// `marathon` or `chronos`.
    pub system: String,
    /// The error as a user reads it (status, body).
    pub message: String,
}

/// The result of a reconcile that loaded the manifests and listed live state.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ReconcileReport {
    /// Every managed object and what became of it.
    pub objects: BTreeMap<ObjectRef, ObjectState>,
    /// Writes made, in order.
    pub writes: Vec<AppliedWrite>,
    /// The plan's totals.
    pub summary: Summary,
    /// API errors met along the way.
    pub api_errors: Vec<ApiError>,
    /// Stopped early because of shutdown.
    pub cancelled: bool,
    /// The mass-delete guard (or the empty-manifest rule) refused this reconcile's
    /// deletes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prune_refused: Option<PruneRefused>,
    /// The live health of every object, as listed (or as read after its write).
    pub health: BTreeMap<ObjectRef, HealthStatus>,
    /// What the dashboard shows beyond `/status` (changes, holds, writes).
    #[serde(skip)]
    pub details: super::history::ReportDetails,
    /// The fingerprint of the input this reconcile loaded, when the reconciler can tell
    /// ([`Reconcile::input_fingerprint`]).
    #[serde(skip)]
    pub input: Option<InputFingerprint>,
}

/// Deletes the prune guard refused: why, and which objects they were.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PruneRefused {
    /// The guard's words (`refusing to delete 4 of 10 owned object(s): …`).
    pub reason: String,
    /// The owned objects without a manifest that were left alone.
    pub objects: Vec<ObjectRef>,
}

impl ReconcileReport {
    /// Objects whose write failed.
    pub fn failed(&self) -> impl Iterator<Item = (&ObjectRef, &String)> {
        self.objects.iter().filter_map(|(o, s)| match s {
            ObjectState::Failed { error, .. } => Some((o, error)),
            _ => None,
        })
    }

    /// Objects that differ from their manifest and were left so.
    pub fn drifted(&self) -> usize {
        self.objects.values().filter(|s| matches!(s, ObjectState::Drifted { .. })).count()
    }
}

/// Where a reconcile that failed as a whole stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureStage {
    /// Reading the manifests (nothing was written).
    Load,
    /// Listing the live state (nothing was written).
    List,
    /// It did not finish within the reconcile deadline (or the shutdown grace) and
    /// was abandoned.
    Deadline,
    /// Anything else.
    Other,
}

impl fmt::Display for FailureStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureStage::Load => "loading the manifests",
            FailureStage::List => "listing live state",
            FailureStage::Deadline => "abandoned",
            FailureStage::Other => "reconcile",
        })
    }
}

/// What the controller does after a failure: the error policy (kube-runtime's
/// `error_policy`), decided by the reconcile from the typed error it met.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Requeue {
    /// Transient (a 5xx, a transport error, a deployment that did not finish): retried
    /// with exponential backoff.
    Backoff,
    /// Permanent (a 4xx such as 422, manifests that do not load): the same input fails
    /// the same way, so it waits for the next change of the manifests (a file change,
    /// a git pull, SIGHUP, a new leader) or the resync.
    AwaitChange,
}

impl Requeue {
    /// [`Requeue::Backoff`] for a transient error, else [`Requeue::AwaitChange`].
    pub fn transient_if(transient: bool) -> Self {
        if transient { Requeue::Backoff } else { Requeue::AwaitChange }
    }
}

impl ObjectState {
    /// A failure retried with backoff.
    pub fn failed(error: impl Into<String>) -> Self {
        ObjectState::Failed { error: error.into(), requeue: Requeue::Backoff }
    }
}

/// A reconcile that failed as a whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{stage}: {message}")]
pub struct ReconcileFailure {
    /// Where it stopped.
    pub stage: FailureStage,
    /// What went wrong, as a user reads it.
    pub message: String,
    /// API errors behind it (for metrics).
    pub api_errors: Vec<ApiError>,
    /// Whether retrying can help before something changes.
    pub requeue: Requeue,
}

impl ReconcileFailure {
    /// A failure at `stage`, retried as `requeue` says, with no API errors.
    pub fn new(stage: FailureStage, message: impl Into<String>, requeue: Requeue) -> Self {
        ReconcileFailure { stage, message: message.into(), api_errors: Vec::new(), requeue }
    }
}

/// What a reconcile answers.
pub type ReconcileOutcome = Result<ReconcileReport, ReconcileFailure>;

/// How a reconcile ended, as a metrics label and in /status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutcomeKind {
    /// Every object is synced (or, in a dry run, reported).
    Success,
    /// Loaded and listed, but some objects failed.
    Partial,
    /// Failed as a whole (load or list error).
    Error,
    /// Stopped by shutdown.
    Cancelled,
}

impl OutcomeKind {
    /// Classify an outcome.
    pub fn of(outcome: &ReconcileOutcome) -> Self {
        match outcome {
            Err(_) => OutcomeKind::Error,
            Ok(r) if r.cancelled => OutcomeKind::Cancelled,
            Ok(r) if r.failed().next().is_some() => OutcomeKind::Partial,
            Ok(_) => OutcomeKind::Success,
        }
    }

    /// The metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Success => "success",
            OutcomeKind::Partial => "partial",
            OutcomeKind::Error => "error",
            OutcomeKind::Cancelled => "cancelled",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(dry_run: bool) -> ReconcileContext {
        ReconcileContext {
            number: 1,
            reasons: vec![Trigger::Startup, Trigger::Retry(ObjectRef::app("/a"))],
            revision: None,
            dry_run,
            backing_off: BTreeSet::new(),
            cancel: CancellationToken::new(),
        }
    }

    #[tokio::test]
    async fn a_closure_is_a_reconcile() {
        let reconciler = FnReconcile(|ctx: ReconcileContext| async move {
            let state = if ctx.dry_run { ObjectState::Drifted { changes: 1 } } else { ObjectState::Synced };
            Ok(ReconcileReport { objects: [(ObjectRef::app("/a"), state)].into(), ..Default::default() })
        });
        let dynamic: &dyn Reconcile = &reconciler;
        let report = dynamic.reconcile(context(true)).await.unwrap();
        assert_eq!(report.drifted(), 1);
        assert_eq!(OutcomeKind::of(&Ok(report)), OutcomeKind::Success);
    }

    #[test]
    fn outcomes_and_triggers_read_well() {
        let failed = ReconcileReport {
            objects: [(ObjectRef::app("/a"), ObjectState::failed("x"))].into(),
            ..Default::default()
        };
        assert_eq!(OutcomeKind::of(&Ok(failed.clone())), OutcomeKind::Partial);
        let cancelled = ReconcileReport { cancelled: true, ..failed };
        assert_eq!(OutcomeKind::of(&Ok(cancelled)), OutcomeKind::Cancelled);
        let failure = ReconcileFailure::new(FailureStage::List, "refused", Requeue::Backoff);
        assert_eq!(failure.to_string(), "listing live state: refused");
        assert_eq!(OutcomeKind::of(&Err(failure)), OutcomeKind::Error);
        let reasons = serde_json::to_value(&context(false).reasons).unwrap();
        assert_eq!(reasons, serde_json::json!(["startup", "retry app /a"]));
    }
}
