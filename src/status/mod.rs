//! What the controller knows about itself, shared with the HTTP server: the last
//! reconcile, the revision, every object's state and retry, recent errors. The
//! controller (`runtime`) writes it between reconciles; `/status`, `/readyz` (`server`)
//! read snapshots. A leaf under both: it imports neither.
//!
//! - [`contract`]: the contract of one reconcile — the [`Reconcile`] trait, what it is
//!   told and what it answers — which is what the status and metrics are made of.
//! - [`metrics`]: the Prometheus [`Metrics`], updated after every reconcile.
//! - [`revision`]: the [`GitRevision`] a reconcile applied.
//! - here: the `/status` document ([`Status`]) behind a [`StatusStore`].
//!
//! The lock is a plain `std::sync::RwLock` held only to copy or replace values, never
//! across an `.await`.

pub mod contract;
pub mod history;
pub mod metrics;
pub mod revision;

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::health::Health;
use crate::model::ObjectRef;
use crate::plan::Summary;
pub use contract::{
    ApiError, AppliedWrite, BoxFuture, FailureStage, FnReconcile, InputFingerprint, ObjectState, OutcomeKind,
    PruneRefused, Reconcile, ReconcileContext, ReconcileFailure, ReconcileOutcome, ReconcileReport, Requeue,
    Trigger,
};
pub use metrics::Metrics;
pub use revision::GitRevision;

/// How many recent errors `/status` keeps.
pub const ERROR_HISTORY: usize = 20;

/// The whole `/status` document.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Status {
    /// A reconcile has loaded the manifests and listed live state at least once.
    pub ready: bool,
    /// Reconciles only report.
    pub dry_run: bool,
    /// The watched manifest directory.
    pub manifest_dir: String,
    /// Reconciles started since the controller started.
    pub reconciles: u64,
    /// The reconcile running now, if any.
    pub running: Option<Running>,
    /// The checkout's revision as last read.
    pub revision: Option<GitRevision>,
    /// The last finished reconcile.
    pub last_reconcile: Option<LastReconcile>,
    /// When a reconcile last ended with every object synced.
    pub last_success_at: Option<DateTime<Utc>>,
    /// Every managed object, as of the last reconcile that listed live state.
    pub objects: Vec<ObjectStatus>,
    /// After a reconcile that failed as a whole: when it is retried.
    pub retry: Option<Retry>,
    /// The most recent errors, oldest first.
    pub last_errors: VecDeque<ErrorEntry>,
    /// Set while the controller is stuck: the last reconcile was abandoned at its
    /// deadline (cleared by the next one that finishes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stuck: Option<String>,
    /// A reconcile running longer than this is stuck (`--reconcile-timeout`).
    #[serde(skip)]
    pub reconcile_timeout: Option<Duration>,
    /// High availability (`--ha-zk`): this replica's role and the current leader.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ha: Option<serde_json::Value>,
    /// What the dashboard shows beyond this document (details, history, writes).
    #[serde(skip)]
    pub dashboard: history::Dashboard,
}

/// The reconcile in progress.
#[derive(Clone, Debug, Serialize)]
pub struct Running {
    /// Its sequence number.
    pub number: u64,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Why it runs.
    pub reasons: Vec<Trigger>,
}

/// A finished reconcile.
#[derive(Clone, Debug, Serialize)]
pub struct LastReconcile {
    /// Its sequence number.
    pub number: u64,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// How long it took, in seconds.
    pub duration_seconds: f64,
    /// Why it ran.
    pub reasons: Vec<Trigger>,
    /// The revision it applied.
    pub revision: Option<GitRevision>,
    /// How it ended.
    pub outcome: OutcomeKind,
    /// Why it failed as a whole, if it did.
    pub error: Option<String>,
    /// The plan's totals (absent when it failed before planning).
    pub summary: Option<Summary>,
    /// The writes it made.
    pub writes: Vec<AppliedWrite>,
}

/// One object's state.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ObjectStatus {
    /// Which object.
    #[serde(flatten)]
    pub object: ObjectRef,
    /// What became of it in the last reconcile.
    #[serde(flatten)]
    pub state: ObjectState,
    /// Pending retry after failures, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    /// Its live health, why, and since when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<ObjectHealth>,
}

/// One object's live health in `/status`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ObjectHealth {
    /// `Healthy`, `Progressing`, `Degraded`, `Suspended`, `Missing` or `Unknown`.
    pub status: Health,
    /// Why, in words.
    pub reason: String,
    /// Since when it has had this status, as far as this controller has seen: the end
    /// of the first reconcile that found it so (its reason may change meanwhile).
    pub since: DateTime<Utc>,
}

/// A pending retry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Retry {
    /// Consecutive failures so far.
    pub failures: u32,
    /// When the next attempt is due.
    pub at: DateTime<Utc>,
}

/// One recent error.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ErrorEntry {
    /// When it was seen.
    pub at: DateTime<Utc>,
    /// The object concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectRef>,
    /// What went wrong.
    pub message: String,
}

/// What the controller hands over when a reconcile ends.
#[derive(Debug)]
pub struct Finished<'a> {
    /// Sequence number.
    pub number: u64,
    /// Why it ran.
    pub reasons: &'a [Trigger],
    /// The revision it applied.
    pub revision: Option<&'a GitRevision>,
    /// Its outcome.
    pub outcome: &'a ReconcileOutcome,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// How long it took.
    pub duration: Duration,
    /// Pending retries afterwards, by object.
    pub retries: BTreeMap<ObjectRef, Retry>,
    /// The pending retry of the whole reconcile afterwards.
    pub retry: Option<Retry>,
}

/// The shared, cheaply cloned handle on the [`Status`].
#[derive(Clone, Debug, Default)]
pub struct StatusStore(Arc<RwLock<Status>>);

impl StatusStore {
    /// A store for a controller watching `manifest_dir`.
    pub fn new(manifest_dir: &Path, dry_run: bool) -> Self {
        Self(Arc::new(RwLock::new(Status {
            dry_run,
            manifest_dir: manifest_dir.display().to_string(),
            ..Status::default()
        })))
    }

    /// Replace the high-availability section (role, leader) of the status.
    pub fn set_ha(&self, ha: serde_json::Value) {
        self.update(|s| s.ha = Some(ha));
    }

    /// Read the status in place (the dashboard reads a page of objects without copying
    /// all of them). `read` must not block: the controller waits for the lock.
    pub fn read<T>(&self, read: impl FnOnce(&Status) -> T) -> T {
        read(&self.0.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// A number that changes whenever the status does.
    pub fn generation(&self) -> u64 {
        self.read(|s| s.dashboard.generation)
    }

    /// A copy of the current status.
    pub fn snapshot(&self) -> Status {
        self.0.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Ready: a reconcile has loaded and listed, and the controller is not stuck.
    pub fn is_ready(&self) -> bool {
        self.not_ready_reason(Utc::now()).is_none()
    }

    /// Why `/readyz` should fail at `now`, if it should: no reconcile has listed live
    /// state yet, the last one was abandoned at its deadline, or the one running has
    /// outlived the deadline (a reconcile that cannot even be abandoned).
    pub fn not_ready_reason(&self, now: DateTime<Utc>) -> Option<String> {
        let s = self.0.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(stuck) = &s.stuck {
            return Some(format!("stuck: {stuck}"));
        }
        if let (Some(running), Some(timeout)) = (&s.running, s.reconcile_timeout) {
            let limit = chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::MAX);
            if now.signed_duration_since(running.started_at) > limit {
                return Some(format!(
                    "stuck: reconcile {} has been running since {}",
                    running.number, running.started_at
                ));
            }
        }
        (!s.ready).then(|| "no reconcile has loaded the manifests and listed live state yet".to_string())
    }

    /// A reconcile running longer than `timeout` makes the controller not ready.
    pub fn set_reconcile_timeout(&self, timeout: Duration) {
        self.update(|s| s.reconcile_timeout = Some(timeout));
    }

    fn update(&self, change: impl FnOnce(&mut Status)) {
        // A panic while holding the lock leaves a consistent-enough status: keep going.
        let mut status = self.0.write().unwrap_or_else(PoisonError::into_inner);
        change(&mut status);
        status.dashboard.generation += 1;
    }

    /// A reconcile starts.
    pub fn started(&self, number: u64, reasons: &[Trigger], revision: Option<&GitRevision>) {
        self.update(|s| {
            s.reconciles = s.reconciles.max(number);
            s.running = Some(Running { number, started_at: Utc::now(), reasons: reasons.to_vec() });
            s.revision = revision.cloned();
        });
    }

    /// A reconcile ended.
    pub fn finished(&self, done: Finished<'_>) {
        let finished_at = Utc::now();
        let outcome = OutcomeKind::of(done.outcome);
        self.update(|s| {
            s.running = None;
            let mut last = LastReconcile {
                number: done.number,
                started_at: done.started_at,
                finished_at,
                duration_seconds: done.duration.as_secs_f64(),
                reasons: done.reasons.to_vec(),
                revision: done.revision.cloned(),
                outcome,
                error: None,
                summary: None,
                writes: Vec::new(),
            };
            match done.outcome {
                Ok(report) => {
                    s.ready = true;
                    s.stuck = None;
                    last.summary = Some(report.summary);
                    last.writes = report.writes.clone();
                    let before: BTreeMap<&ObjectRef, &ObjectHealth> =
                        s.objects.iter().filter_map(|o| Some((&o.object, o.health.as_ref()?))).collect();
                    let objects = report
                        .objects
                        .iter()
                        .map(|(object, state)| ObjectStatus {
                            object: object.clone(),
                            state: state.clone(),
                            retry: done.retries.get(object).cloned(),
                            health: report.health.get(object).map(|h| ObjectHealth {
                                status: h.health,
                                reason: h.reason.clone(),
                                since: before
                                    .get(object)
                                    .filter(|b| b.status == h.health)
                                    .map_or(finished_at, |b| b.since),
                            }),
                        })
                        .collect();
                    s.objects = objects;
                    for (object, error) in report.failed() {
                        push_error(s, finished_at, Some(object.clone()), error.clone());
                    }
                }
                Err(failure) => {
                    if failure.stage == FailureStage::Deadline {
                        s.stuck = Some(failure.message.clone());
                    }
                    last.error = Some(failure.to_string());
                    push_error(s, finished_at, None, failure.to_string());
                }
            }
            if outcome == OutcomeKind::Success {
                s.last_success_at = Some(finished_at);
            }
            history::record(s, &done, &last);
            s.retry = done.retry;
            s.last_reconcile = Some(last);
        });
    }

    /// Remember an error that is not part of a reconcile (git pull, event stream).
    pub fn record_error(&self, message: String) {
        self.update(|s| push_error(s, Utc::now(), None, message));
    }
}

fn push_error(s: &mut Status, at: DateTime<Utc>, object: Option<ObjectRef>, message: String) {
    if s.last_errors.len() == ERROR_HISTORY {
        s.last_errors.pop_front();
    }
    s.last_errors.push_back(ErrorEntry { at, object, message });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::contract::{FailureStage, ReconcileFailure, ReconcileReport, Requeue};

    fn finish(store: &StatusStore, number: u64, outcome: &ReconcileOutcome) {
        store.finished(Finished {
            number,
            reasons: &[Trigger::Startup],
            revision: None,
            outcome,
            started_at: Utc::now(),
            duration: Duration::from_millis(5),
            retries: BTreeMap::new(),
            retry: None,
        });
    }

    #[test]
    fn ready_after_the_first_reconcile_that_listed_live_state() {
        let store = StatusStore::new(Path::new("m"), false);
        let failure = ReconcileFailure::new(FailureStage::Load, "bad yaml", Requeue::AwaitChange);
        finish(&store, 1, &Err(failure));
        assert!(!store.is_ready());
        let status = store.snapshot();
        assert_eq!(status.last_reconcile.unwrap().outcome, OutcomeKind::Error);
        assert_eq!(status.last_errors[0].message, "loading the manifests: bad yaml");
        finish(&store, 2, &Ok(ReconcileReport::default()));
        assert!(store.is_ready());
        assert!(store.snapshot().last_success_at.is_some());
    }

    #[test]
    fn health_since_is_kept_while_the_status_stays() {
        use crate::health::HealthStatus;
        let store = StatusStore::new(Path::new("m"), false);
        let report = |health: Health, reason: &str| ReconcileReport {
            objects: [(ObjectRef::app("/a"), crate::status::ObjectState::Synced)].into(),
            health: [(ObjectRef::app("/a"), HealthStatus::new(health, reason))].into(),
            ..ReconcileReport::default()
        };
        let health = |store: &StatusStore| store.snapshot().objects[0].health.clone().unwrap();
        finish(&store, 1, &Ok(report(Health::Progressing, "0/1 tasks running")));
        let long_ago = DateTime::from_timestamp(1_000_000_000, 0).unwrap();
        store.update(|s| s.objects[0].health.as_mut().unwrap().since = long_ago);
        let first = health(&store);
        finish(&store, 2, &Ok(report(Health::Progressing, "0/1 tasks running, 1 staged")));
        let second = health(&store);
        assert_eq!(second.since, long_ago, "same status, same since");
        assert_eq!(first.since, long_ago);
        assert_eq!(second.reason, "0/1 tasks running, 1 staged");
        finish(&store, 3, &Ok(report(Health::Healthy, "1/1 tasks running")));
        let third = health(&store);
        assert_eq!(third.status, Health::Healthy);
        assert!(third.since > long_ago, "a new status starts a new since");
        let json = serde_json::to_value(store.snapshot().objects[0].clone()).unwrap();
        assert_eq!(json["health"]["status"], "Healthy");
        assert_eq!(json["health"]["reason"], "1/1 tasks running");
    }

    #[test]
    fn error_history_is_bounded() {
        let store = StatusStore::new(Path::new("m"), false);
        for i in 0..(ERROR_HISTORY + 5) {
            store.record_error(format!("e{i}"));
        }
        let errors = store.snapshot().last_errors;
        assert_eq!(errors.len(), ERROR_HISTORY);
        assert_eq!(errors[0].message, "e5");
    }
}
