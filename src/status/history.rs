//! What the dashboard (`server::ui`) shows beyond `/status`: every object's planned
//! action with its field changes and their file:line, why it is held, its next runs;
//! the last reconciles; the last writes. Bounded, since a controller runs for months
//! over tens of thousands of objects: ring buffers of [`HISTORY`] reconciles and
//! [`WRITE_LOG`] writes, at most [`MAX_CHANGES`] changes kept per object and
//! [`CHANGE_BUDGET`] per reconcile, each value cut at [`MAX_VALUE_BYTES`].
//!
//! Everything here comes out of the plan already masked (`diff::mask`, through
//! `diff_object` and the error texts `apply` masks): nothing here formats a value.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::contract::{ObjectState, OutcomeKind, Trigger};
use super::{GitRevision, Status};
use crate::diff::FieldChange;
use crate::model::{Impact, Location, ObjectRef};
use crate::plan::{ActionKind, Summary};

/// Reconciles kept for the history page.
pub const HISTORY: usize = 100;
/// Writes kept (all objects together).
pub const WRITE_LOG: usize = 1000;
/// Field changes kept per object (the rest are counted).
pub const MAX_CHANGES: usize = 50;
/// Field changes kept per reconcile, all objects together: a first dry run against an
/// empty cluster lists every field of every object as added.
pub const CHANGE_BUDGET: usize = 20_000;
/// A change's value longer than this (as JSON) is replaced by a note of its size.
pub const MAX_VALUE_BYTES: usize = 2048;
/// Field changes kept on a write record.
pub const MAX_WRITE_CHANGES: usize = 20;

/// What one reconcile planned for one object, beyond its [`ObjectState`].
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ObjectDetail {
    /// The planned action (`noop` when equal or held).
    pub action: Option<ActionKind>,
    /// What the write costs.
    pub impact: Option<Impact>,
    /// Why a write is held (suspended, unowned, prune off, backing off…), in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
    /// Where the object's manifest document is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Location>,
    /// Live vs desired, field by field, masked, with the file:line of each desired value.
    pub changes: Vec<FieldChange>,
    /// Changes not kept (over [`MAX_CHANGES`] or the reconcile's [`CHANGE_BUDGET`]).
    pub changes_dropped: usize,
    /// Jobs: the next run times.
    pub next_runs: Vec<DateTime<Utc>>,
    /// The objects it waits for.
    pub depends_on: Vec<ObjectRef>,
}

/// One write attempted on a live system.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WriteRecord {
    /// When the reconcile's apply finished.
    pub at: DateTime<Utc>,
    /// The reconcile that made it.
    pub reconcile: u64,
    /// The revision it applied.
    pub revision: Option<GitRevision>,
    /// The object written.
    pub object: ObjectRef,
    /// What was done.
    pub action: ActionKind,
    /// `applied`, or the masked error.
    pub outcome: String,
    /// Whether it succeeded.
    pub ok: bool,
    /// The Marathon deployment it started.
    pub deployment_id: Option<String>,
    /// How long it took, in milliseconds (waits included).
    pub duration_ms: u64,
    /// The field changes it made (updates and scales; a create writes everything).
    pub changes: Vec<FieldChange>,
}

/// One finished reconcile, compactly.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReconcileRecord {
    /// Its sequence number.
    pub number: u64,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// How long it took, in seconds.
    pub duration_seconds: f64,
    /// Why it ran.
    pub reasons: Vec<Trigger>,
    /// The revision it applied.
    pub revision: Option<GitRevision>,
    /// How it ended.
    pub outcome: OutcomeKind,
    /// Why it failed as a whole.
    pub error: Option<String>,
    /// The plan's totals.
    pub summary: Option<Summary>,
    /// Writes made.
    pub writes: usize,
    /// Objects that failed.
    pub failures: usize,
    /// Objects that differ from their manifest and were left so.
    pub drifted: usize,
}

/// The dashboard's part of a [`ReconcileReport`](super::ReconcileReport): filled by the
/// pipeline, kept by the [`StatusStore`](super::StatusStore).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReportDetails {
    /// Every planned object's detail.
    pub objects: BTreeMap<ObjectRef, ObjectDetail>,
    /// Every write attempted, in order (`reconcile` and `revision` filled by the store).
    pub writes: Vec<WriteRecord>,
}

impl ReportDetails {
    /// Record `detail`, keeping `changes` within [`MAX_CHANGES`] and what is left of
    /// `budget`.
    pub fn insert(&mut self, object: ObjectRef, mut detail: ObjectDetail, budget: &mut usize) {
        let keep = detail.changes.len().min(MAX_CHANGES).min(*budget);
        detail.changes_dropped += detail.changes.len() - keep;
        detail.changes.truncate(keep);
        *budget -= keep;
        detail.changes.iter_mut().for_each(cut_values);
        self.objects.insert(object, detail);
    }
}

/// Cut the values of a change longer than [`MAX_VALUE_BYTES`].
pub fn cut_values(change: &mut FieldChange) {
    for value in [&mut change.old, &mut change.new].into_iter().flatten() {
        let len = value.to_string().len();
        if len > MAX_VALUE_BYTES {
            *value = Value::String(format!("({len} bytes, not kept; see `mesosync diff`)"));
        }
    }
}

/// What the dashboard keeps between reconciles (inside [`Status`], not in `/status`).
#[derive(Clone, Debug, Default)]
pub struct Dashboard {
    /// The latest details, by object (replaced whole by each reconcile that planned).
    pub details: Arc<BTreeMap<ObjectRef, ObjectDetail>>,
    /// The last [`HISTORY`] reconciles, oldest first.
    pub history: Arc<std::collections::VecDeque<ReconcileRecord>>,
    /// The last [`WRITE_LOG`] writes, oldest first.
    pub writes: Arc<std::collections::VecDeque<WriteRecord>>,
    /// Bumped by every change of the status: the dashboard polls it.
    pub generation: u64,
}

impl Dashboard {
    /// The writes to `object`, newest first.
    pub fn writes_to<'a>(&'a self, object: &'a ObjectRef) -> impl Iterator<Item = &'a WriteRecord> + 'a {
        self.writes.iter().rev().filter(move |w| &w.object == object)
    }
}

/// Keep what a finished reconcile says for the dashboard.
pub(super) fn record(status: &mut Status, done: &super::Finished<'_>, last: &super::LastReconcile) {
    let board = &mut status.dashboard;
    let (writes, failures, drifted) = match done.outcome {
        Ok(report) => (report.writes.len(), report.failed().count(), report.drifted()),
        Err(_) => (0, 0, 0),
    };
    let history = Arc::make_mut(&mut board.history);
    if history.len() == HISTORY {
        history.pop_front();
    }
    history.push_back(ReconcileRecord {
        number: last.number,
        started_at: last.started_at,
        duration_seconds: last.duration_seconds,
        reasons: last.reasons.clone(),
        revision: last.revision.clone(),
        outcome: last.outcome,
        error: last.error.clone(),
        summary: last.summary,
        writes,
        failures,
        drifted,
    });
    let Ok(report) = done.outcome else { return };
    board.details = Arc::new(report.details.objects.clone());
    let log = Arc::make_mut(&mut board.writes);
    for write in &report.details.writes {
        if log.len() == WRITE_LOG {
            log.pop_front();
        }
        log.push_back(WriteRecord {
            reconcile: done.number,
            revision: done.revision.cloned(),
            ..write.clone()
        });
    }
}

/// The words for a state, as the dashboard and its filters use them.
pub fn sync_word(state: &ObjectState) -> &'static str {
    match state {
        ObjectState::Synced => "synced",
        ObjectState::Drifted { .. } => "out-of-sync",
        ObjectState::Suspended { .. } => "suspended",
        ObjectState::Skipped { .. } => "blocked",
        ObjectState::Failed { .. } => "failed",
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::status::{Finished, ReconcileReport, StatusStore};

    fn change(i: usize, value: Value) -> FieldChange {
        FieldChange { pointer: format!("/f{i}"), old: None, new: Some(value), location: None, secret: false }
    }

    #[test]
    fn changes_are_capped_per_object_and_per_reconcile() {
        let mut details = ReportDetails::default();
        let mut budget = MAX_CHANGES + 10;
        let many =
            ObjectDetail { changes: (0..80).map(|i| change(i, json!(i))).collect(), ..Default::default() };
        details.insert(ObjectRef::app("/a"), many.clone(), &mut budget);
        details.insert(ObjectRef::app("/b"), many, &mut budget);
        let a = &details.objects[&ObjectRef::app("/a")];
        let b = &details.objects[&ObjectRef::app("/b")];
        assert_eq!((a.changes.len(), a.changes_dropped), (MAX_CHANGES, 30));
        assert_eq!((b.changes.len(), b.changes_dropped), (10, 70));
        assert_eq!(budget, 0);
        let mut big = change(0, json!("x".repeat(MAX_VALUE_BYTES + 1)));
        cut_values(&mut big);
        assert!(big.new.unwrap().as_str().unwrap().contains("not kept"));
    }

    #[test]
    fn history_and_write_log_are_ring_buffers() {
        let store = StatusStore::new(Path::new("m"), false);
        for number in 1..=(HISTORY as u64 + 5) {
            let write = WriteRecord {
                at: Utc::now(),
                reconcile: 0,
                revision: None,
                object: ObjectRef::app(format!("/a{number}")),
                action: ActionKind::Update,
                outcome: "applied".into(),
                ok: true,
                deployment_id: None,
                duration_ms: 1,
                changes: Vec::new(),
            };
            let report = ReconcileReport {
                details: ReportDetails { writes: vec![write; 12], ..Default::default() },
                ..Default::default()
            };
            store.finished(Finished {
                number,
                reasons: &[Trigger::Resync],
                revision: None,
                outcome: &Ok(report),
                started_at: Utc::now(),
                duration: Duration::from_millis(1),
                retries: BTreeMap::new(),
                retry: None,
            });
        }
        let board = store.snapshot().dashboard;
        assert_eq!(board.history.len(), HISTORY);
        assert_eq!(board.history[0].number, 6);
        assert_eq!(board.writes.len(), WRITE_LOG);
        assert_eq!(board.writes.back().unwrap().reconcile, HISTORY as u64 + 5);
        assert!(board.generation > HISTORY as u64);
        let last = ObjectRef::app(format!("/a{}", HISTORY + 5));
        assert_eq!(board.writes_to(&last).count(), 12);
    }
}
