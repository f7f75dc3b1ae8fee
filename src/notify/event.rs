//! What is worth telling people: the [`Event`]s, and the [`Tracker`] that turns the
//! stream of reconcile outcomes into them. Pure: the tracker remembers what it last
//! said and only speaks on a change (a failure is announced once, not at every retry;
//! an apply once per git revision; drift when the drifted set changes).
//!
//! Adding an event: a variant of [`EventKind`] (its name), what the tracker must
//! remember, and a block in [`Tracker::observe`] comparing it with the report (object
//! health, `degraded` / `healthy`, was added that way).

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::health::{Health, HealthStatus};
use crate::model::ObjectRef;
use crate::status::{FailureStage, GitRevision, ObjectState, ReconcileOutcome};

/// Objects an event keeps (a queued event stays small however many objects drift);
/// [`Event::objects_total`] gives the count.
pub const MAX_OBJECTS: usize = 100;

/// The kinds of event a target can subscribe to (`events=` in `--notify`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// A reconcile wrote to Marathon or Chronos (once per git revision).
    Applied,
    /// Reconciles started failing (as a whole, or some objects).
    Failed,
    /// Reconciles succeed again after failing.
    Recovered,
    /// `--dry-run`: live differs from the manifests (when the drifted set changes).
    Drift,
    /// The mass-delete guard (or the empty-manifest rule) refused the deletes.
    PruneRefused,
    /// This replica became the HA leader, or stopped being it.
    Leadership,
    /// Objects became Degraded (unhealthy tasks, tasks that keep failing, a job whose
    /// last run failed).
    Degraded,
    /// Objects that were Degraded are Healthy again.
    Healthy,
}

impl EventKind {
    /// Every kind, in the order of the docs.
    pub const ALL: [EventKind; 8] = [
        EventKind::Applied,
        EventKind::Failed,
        EventKind::Recovered,
        EventKind::Drift,
        EventKind::PruneRefused,
        EventKind::Leadership,
        EventKind::Degraded,
        EventKind::Healthy,
    ];

    /// The name in `--notify … events=` and in payloads.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Applied => "applied",
            EventKind::Failed => "failed",
            EventKind::Recovered => "recovered",
            EventKind::Drift => "drift",
            EventKind::PruneRefused => "prune-refused",
            EventKind::Leadership => "leadership",
            EventKind::Degraded => "degraded",
            EventKind::Healthy => "healthy",
        }
    }

    /// The kind called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How much an event matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Something happened as it should.
    Info,
    /// Someone should look (drift, refused prune, leadership lost).
    Warning,
    /// Something failed.
    Error,
}

/// One object an event is about, and what about it (`update`, `failed: 422 …`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventObject {
    /// `app` or `job`.
    pub kind: &'static str,
    /// The app id or job name.
    pub id: String,
    /// The write made, the error met, the drift found.
    pub detail: String,
}

impl EventObject {
    fn new(object: &ObjectRef, detail: impl Into<String>) -> Self {
        Self { kind: object.kind.noun(), id: object.id.clone(), detail: detail.into() }
    }
}

/// Something to tell the targets subscribed to its kind.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// How much it matters.
    pub severity: Severity,
    /// One sentence, as a person reads it.
    pub message: String,
    /// The git revision of the manifests, when they are a git checkout.
    pub revision: Option<GitRevision>,
    /// The objects concerned, the first [`MAX_OBJECTS`] of them.
    pub objects: Vec<EventObject>,
    /// How many objects are concerned in all.
    pub objects_total: usize,
    /// The reconcile that found it (none for leadership).
    pub reconcile: Option<u64>,
    /// When.
    pub timestamp: DateTime<Utc>,
}

impl Event {
    /// This replica became the leader (`true`) or stopped being it.
    pub fn leadership(leader: bool, replica: &str, at: DateTime<Utc>) -> Self {
        let (severity, message) = if leader {
            (Severity::Info, format!("replica {replica} became the leader: it writes from now on"))
        } else {
            (
                Severity::Warning,
                format!("replica {replica} is no longer the leader: it only reports from now on"),
            )
        };
        Event {
            kind: EventKind::Leadership,
            severity,
            message,
            revision: None,
            objects: Vec::new(),
            objects_total: 0,
            reconcile: None,
            timestamp: at,
        }
    }
}

/// One finished reconcile, as the tracker reads it.
#[derive(Clone, Copy, Debug)]
pub struct Reconciled<'a> {
    /// Its number.
    pub number: u64,
    /// The revision it read.
    pub revision: Option<&'a GitRevision>,
    /// Whether the controller runs with `--dry-run`.
    pub dry_run: bool,
    /// How it ended.
    pub outcome: &'a ReconcileOutcome,
    /// When it ended.
    pub at: DateTime<Utc>,
}

/// What a failing controller is failing on: a new value is a new failure.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Failing {
    /// The reconcile failed as a whole, at this stage, with this message.
    Whole(FailureStage, String),
    /// These objects failed.
    Objects(BTreeSet<ObjectRef>),
}

/// Remembers what was last said, so that each event is said once (see the module docs).
#[derive(Debug, Default)]
pub struct Tracker {
    /// The clean commit whose writes were announced last.
    applied_commit: Option<String>,
    failing: Option<Failing>,
    drifted: BTreeSet<ObjectRef>,
    prune_refused: Option<String>,
    /// Objects announced Degraded and not Healthy since.
    degraded: BTreeSet<ObjectRef>,
}

fn short(revision: Option<&GitRevision>) -> String {
    match revision {
        Some(r) if r.dirty => format!(" at {}+dirty", r.short()),
        Some(r) => format!(" at {}", r.short()),
        None => String::new(),
    }
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{n} {one}s") }
}

impl Tracker {
    /// The events one finished reconcile causes, in order: applied, failed or
    /// recovered, drift, prune refused. A cancelled reconcile says nothing.
    pub fn observe(&mut self, r: &Reconciled<'_>) -> Vec<Event> {
        let mut events = Vec::new();
        let event = |kind, severity, message: String, mut objects: Vec<EventObject>| {
            let objects_total = objects.len();
            objects.truncate(MAX_OBJECTS);
            Event {
                kind,
                severity,
                message,
                revision: r.revision.cloned(),
                objects,
                objects_total,
                reconcile: Some(r.number),
                timestamp: r.at,
            }
        };
        let at = short(r.revision);
        let failing = match r.outcome {
            Ok(report) if report.cancelled => return events,
            Ok(report) => {
                if !report.writes.is_empty() {
                    // Once per commit: a clean revision is announced once; a dirty
                    // checkout (or no git) has no identity to dedupe on.
                    let clean = r.revision.filter(|rev| !rev.dirty).map(|rev| rev.commit.clone());
                    if clean.is_none() || clean != self.applied_commit {
                        let objects = report
                            .writes
                            .iter()
                            .map(|w| EventObject::new(&w.object, crate::plan::render::kind_word(w.action)))
                            .collect();
                        let message = format!("applied {}{at}", plural(report.writes.len(), "write"));
                        events.push(event(EventKind::Applied, Severity::Info, message, objects));
                    }
                    self.applied_commit = clean;
                }
                let failed: BTreeSet<ObjectRef> = report.failed().map(|(o, _)| o.clone()).collect();
                (!failed.is_empty()).then_some(Failing::Objects(failed))
            }
            Err(failure) => Some(Failing::Whole(failure.stage, failure.message.clone())),
        };
        match (&failing, &self.failing) {
            (Some(now), before) if Some(now) != before.as_ref() => {
                let (message, objects) = match (now, r.outcome) {
                    (Failing::Whole(..), Err(failure)) => {
                        (format!("reconcile failed{at}: {failure}"), Vec::new())
                    }
                    (_, Ok(report)) => {
                        let objects: Vec<_> = report
                            .failed()
                            .map(|(o, e)| EventObject::new(o, format!("failed: {e}")))
                            .collect();
                        (format!("{} failed{at}", plural(objects.len(), "object")), objects)
                    }
                    (Failing::Objects(_), Err(_)) => unreachable!("an Err outcome is a whole failure"),
                };
                events.push(event(EventKind::Failed, Severity::Error, message, objects));
            }
            (None, Some(_)) => {
                let message = format!("reconciles succeed again{at}");
                events.push(event(EventKind::Recovered, Severity::Info, message, Vec::new()));
            }
            _ => {}
        }
        self.failing = failing;
        let Ok(report) = r.outcome else { return events };

        if r.dry_run {
            let drifted: BTreeSet<ObjectRef> = report
                .objects
                .iter()
                .filter(|(_, s)| matches!(s, ObjectState::Drifted { .. }))
                .map(|(o, _)| o.clone())
                .collect();
            if !drifted.is_empty() && drifted != self.drifted {
                let objects = report
                    .objects
                    .iter()
                    .filter_map(|(o, s)| match s {
                        ObjectState::Drifted { changes } => {
                            Some(EventObject::new(o, plural(*changes, "change")))
                        }
                        _ => None,
                    })
                    .collect();
                let message =
                    format!("dry run: {} differ from the manifests{at}", plural(drifted.len(), "object"));
                events.push(event(EventKind::Drift, Severity::Warning, message, objects));
            }
            self.drifted = drifted;
        }

        let refused = report.prune_refused.as_ref().map(|p| p.reason.clone());
        if let Some(refusal) = report.prune_refused.as_ref().filter(|_| refused != self.prune_refused) {
            let objects = refusal.objects.iter().map(|o| EventObject::new(o, "delete refused")).collect();
            let message = format!("prune refused{at}: {}", refusal.reason);
            events.push(event(EventKind::PruneRefused, Severity::Warning, message, objects));
        }
        self.prune_refused = refused;

        // Health: an object turning Degraded is announced once; once Healthy again, so
        // is its recovery (Progressing in between — a redeploy — is neither). An
        // object gone from the report is forgotten.
        let degraded_now: Vec<(&ObjectRef, &HealthStatus)> =
            report.health.iter().filter(|(_, h)| h.health == Health::Degraded).collect();
        let newly: Vec<EventObject> = degraded_now
            .iter()
            .filter(|(o, _)| !self.degraded.contains(*o))
            .map(|(o, h)| EventObject::new(o, h.to_string()))
            .collect();
        let healthy: Vec<EventObject> = self
            .degraded
            .iter()
            .filter(|o| report.health.get(*o).is_some_and(|h| h.health == Health::Healthy))
            .map(|o| EventObject::new(o, Health::Healthy.to_string()))
            .collect();
        self.degraded.retain(|o| report.health.get(o).is_some_and(|h| h.health != Health::Healthy));
        self.degraded.extend(degraded_now.iter().map(|(o, _)| (*o).clone()));
        if !newly.is_empty() {
            let message = format!("{} degraded{at}", plural(newly.len(), "object"));
            events.push(event(EventKind::Degraded, Severity::Error, message, newly));
        }
        if !healthy.is_empty() {
            let message = format!("{} healthy again{at}", plural(healthy.len(), "object"));
            events.push(event(EventKind::Healthy, Severity::Info, message, healthy));
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ActionKind;
    use crate::status::{AppliedWrite, PruneRefused, ReconcileFailure, ReconcileReport, Requeue};

    fn rev(commit: &str, dirty: bool) -> GitRevision {
        GitRevision { commit: commit.into(), dirty }
    }

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn observe(
        t: &mut Tracker,
        revision: Option<&GitRevision>,
        dry_run: bool,
        outcome: ReconcileOutcome,
    ) -> Vec<(EventKind, String)> {
        let r = Reconciled { number: 1, revision, dry_run, outcome: &outcome, at: at() };
        t.observe(&r).into_iter().map(|e| (e.kind, e.message)).collect()
    }

    fn wrote(ids: &[&str]) -> ReconcileOutcome {
        Ok(ReconcileReport {
            objects: ids.iter().map(|id| (ObjectRef::app(*id), ObjectState::Synced)).collect(),
            writes: ids
                .iter()
                .map(|id| AppliedWrite { object: ObjectRef::app(*id), action: ActionKind::Update })
                .collect(),
            ..Default::default()
        })
    }

    fn failed(ids: &[&str]) -> ReconcileOutcome {
        Ok(ReconcileReport {
            objects: ids.iter().map(|id| (ObjectRef::app(*id), ObjectState::failed("503"))).collect(),
            ..Default::default()
        })
    }

    fn kinds(events: &[(EventKind, String)]) -> Vec<EventKind> {
        events.iter().map(|(k, _)| *k).collect()
    }

    #[test]
    fn writes_are_announced_once_per_clean_commit() {
        let mut t = Tracker::default();
        let (a, b) = (rev("aaaaaaaaaaaaaaaa", false), rev("bbbbbbbbbbbbbbbb", false));
        let first = observe(&mut t, Some(&a), false, wrote(&["/x", "/y"]));
        assert_eq!(first, [(EventKind::Applied, "applied 2 writes at aaaaaaaaaaaa".to_string())]);
        assert!(observe(&mut t, Some(&a), false, wrote(&["/x"])).is_empty(), "same commit: once");
        assert!(observe(&mut t, Some(&a), false, wrote(&[])).is_empty());
        assert_eq!(kinds(&observe(&mut t, Some(&b), false, wrote(&["/x"]))), [EventKind::Applied]);
        // A dirty checkout or no git: every reconcile that writes is announced.
        let dirty = rev("bbbbbbbbbbbbbbbb", true);
        assert_eq!(
            observe(&mut t, Some(&dirty), false, wrote(&["/x"]))[0].1,
            "applied 1 write at bbbbbbbbbbbb+dirty"
        );
        assert_eq!(kinds(&observe(&mut t, Some(&dirty), false, wrote(&["/x"]))), [EventKind::Applied]);
        assert_eq!(kinds(&observe(&mut t, None, false, wrote(&["/x"]))), [EventKind::Applied]);
    }

    #[test]
    fn a_failure_is_announced_once_and_its_end_once() {
        let mut t = Tracker::default();
        let down = || Err(ReconcileFailure::new(FailureStage::List, "connection refused", Requeue::Backoff));
        let events = observe(&mut t, None, false, down());
        assert_eq!(
            events,
            [(EventKind::Failed, "reconcile failed: listing live state: connection refused".into())]
        );
        assert!(observe(&mut t, None, false, down()).is_empty(), "retries say nothing");
        // Another failure is news; so is the set of failed objects changing.
        assert_eq!(kinds(&observe(&mut t, None, false, failed(&["/a"]))), [EventKind::Failed]);
        assert!(observe(&mut t, None, false, failed(&["/a"])).is_empty());
        assert_eq!(observe(&mut t, None, false, failed(&["/a", "/b"]))[0].1, "2 objects failed");
        assert_eq!(
            kinds(&observe(&mut t, None, false, wrote(&["/a", "/b"]))),
            [EventKind::Applied, EventKind::Recovered]
        );
        assert!(observe(&mut t, None, false, wrote(&[])).is_empty());
        let cancelled = Ok(ReconcileReport { cancelled: true, ..failed(&["/c"]).unwrap() });
        assert!(observe(&mut t, None, false, cancelled).is_empty(), "a shutdown is not a failure");
    }

    #[test]
    fn drift_is_reported_in_dry_run_when_the_drifted_set_changes() {
        let mut t = Tracker::default();
        let drift = |ids: &[&str]| -> ReconcileOutcome {
            Ok(ReconcileReport {
                objects: ids
                    .iter()
                    .map(|id| (ObjectRef::app(*id), ObjectState::Drifted { changes: 2 }))
                    .collect(),
                ..Default::default()
            })
        };
        assert!(observe(&mut t, None, false, drift(&["/a"])).is_empty(), "not a dry run");
        let events = observe(&mut t, None, true, drift(&["/a"]));
        assert_eq!(events, [(EventKind::Drift, "dry run: 1 object differ from the manifests".into())]);
        assert!(observe(&mut t, None, true, drift(&["/a"])).is_empty());
        assert!(observe(&mut t, None, true, drift(&[])).is_empty());
        assert_eq!(kinds(&observe(&mut t, None, true, drift(&["/a"]))), [EventKind::Drift], "drifted again");
        let many: Vec<String> = (0..MAX_OBJECTS + 7).map(|i| format!("/m/{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let outcome = drift(&many);
        let events =
            t.observe(&Reconciled { number: 2, revision: None, dry_run: true, outcome: &outcome, at: at() });
        assert_eq!((events[0].objects.len(), events[0].objects_total), (MAX_OBJECTS, MAX_OBJECTS + 7));
    }

    #[test]
    fn a_refused_prune_is_reported_when_it_changes() {
        let mut t = Tracker::default();
        let refused = |reason: &str| -> ReconcileOutcome {
            Ok(ReconcileReport {
                prune_refused: Some(PruneRefused {
                    reason: reason.into(),
                    objects: vec![ObjectRef::job("j")],
                }),
                ..Default::default()
            })
        };
        let events = observe(&mut t, None, false, refused("too many"));
        assert_eq!(events, [(EventKind::PruneRefused, "prune refused: too many".into())]);
        assert!(observe(&mut t, None, false, refused("too many")).is_empty());
        assert!(observe(&mut t, None, false, wrote(&[])).is_empty());
        assert_eq!(kinds(&observe(&mut t, None, false, refused("too many"))), [EventKind::PruneRefused]);
    }

    #[test]
    fn degraded_objects_are_announced_once_and_their_recovery_once() {
        let mut t = Tracker::default();
        let health = |states: &[(&str, Health)]| -> ReconcileOutcome {
            Ok(ReconcileReport {
                health: states
                    .iter()
                    .map(|(id, h)| (ObjectRef::app(*id), HealthStatus::new(*h, "0/1 tasks healthy")))
                    .collect(),
                ..Default::default()
            })
        };
        assert!(observe(&mut t, None, false, health(&[("/a", Health::Healthy)])).is_empty());
        let events =
            observe(&mut t, None, false, health(&[("/a", Health::Degraded), ("/b", Health::Progressing)]));
        assert_eq!(events, [(EventKind::Degraded, "1 object degraded".into())]);
        assert!(observe(&mut t, None, false, health(&[("/a", Health::Degraded)])).is_empty(), "said once");
        assert!(
            observe(&mut t, None, false, health(&[("/a", Health::Progressing)])).is_empty(),
            "redeploying"
        );
        let events =
            observe(&mut t, None, false, health(&[("/a", Health::Healthy), ("/b", Health::Degraded)]));
        assert_eq!(kinds(&events), [EventKind::Degraded, EventKind::Healthy]);
        assert!(
            observe(&mut t, None, false, health(&[("/a", Health::Healthy)])).is_empty(),
            "/b gone: forgotten"
        );
        assert_eq!(
            kinds(&observe(&mut t, None, false, health(&[("/b", Health::Degraded)]))),
            [EventKind::Degraded]
        );
    }

    #[test]
    fn kinds_round_trip_their_names() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(EventKind::from_name("nope"), None);
        assert_eq!(Event::leadership(false, "r1", at()).severity, Severity::Warning);
    }
}
