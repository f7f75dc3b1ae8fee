//! The Prometheus metrics of the controller, updated after every reconcile and served
//! by `/metrics`. Names and labels are part of the user interface: dashboards and
//! alerts depend on them, so change them deliberately.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `mesosync_reconciles_total` | counter | `outcome` = success, partial, error, cancelled |
//! | `mesosync_reconcile_duration_seconds` | histogram | |
//! | `mesosync_writes_total` | counter | `system` = marathon, chronos; `action` |
//! | `mesosync_api_errors_total` | counter | `system` |
//! | `mesosync_drifted_objects` | gauge | |
//! | `mesosync_failed_objects` | gauge | |
//! | `mesosync_objects_health` | gauge | `kind` = MarathonApp, ChronosJob; `health` = Healthy, Progressing, Degraded, Suspended, Missing, Unknown |
//! | `mesosync_last_success_timestamp_seconds` | gauge | |
//! | `mesosync_git_revision` | gauge (always 1) | `commit` |
//! | `mesosync_git_dirty` | gauge | |
//! | `mesosync_unchanged_input_total` | counter | |

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::GitRevision;
use super::contract::{OutcomeKind, ReconcileOutcome};
use crate::model::ObjectKind;

type Labels = Vec<(&'static str, String)>;

/// The registry and every metric in it.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Family<Labels, Counter>,
    duration: Histogram,
    writes: Family<Labels, Counter>,
    api_errors: Family<Labels, Counter>,
    drifted: Gauge,
    failed: Gauge,
    health: Family<Labels, Gauge>,
    last_success: Gauge<f64, AtomicU64>,
    git_revision: Family<Labels, Gauge>,
    git_dirty: Gauge,
    unchanged_input: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// The registry, for metrics owned elsewhere (e.g. the HA role) to join it.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// A fresh registry with every metric at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("mesosync");
        let metrics = Self {
            reconciles: Family::default(),
            // 10 ms … ~80 s: a no-op reconcile is two GETs, a big apply waits on
            // deployments.
            duration: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
            writes: Family::default(),
            api_errors: Family::default(),
            drifted: Gauge::default(),
            failed: Gauge::default(),
            health: Family::default(),
            last_success: Gauge::default(),
            git_revision: Family::default(),
            git_dirty: Gauge::default(),
            unchanged_input: Counter::default(),
            registry: Registry::default(),
        };
        registry.register("reconciles", "Reconciles, by outcome", metrics.reconciles.clone());
        registry.register(
            "reconcile_duration_seconds",
            "Duration of each reconcile, in seconds",
            metrics.duration.clone(),
        );
        registry.register(
            "writes",
            "Writes to Marathon and Chronos, by system and action",
            metrics.writes.clone(),
        );
        registry.register(
            "api_errors",
            "Failed Marathon / Chronos API calls, by system",
            metrics.api_errors.clone(),
        );
        registry.register(
            "drifted_objects",
            "Objects that differ from their manifest",
            metrics.drifted.clone(),
        );
        registry.register("failed_objects", "Objects whose last write failed", metrics.failed.clone());
        registry.register(
            "objects_health",
            "Managed objects by kind and live health (as of the last reconcile that listed live state)",
            metrics.health.clone(),
        );
        registry.register(
            "last_success_timestamp_seconds",
            "Unix time of the last reconcile that loaded, listed and applied without error",
            metrics.last_success.clone(),
        );
        registry.register(
            "git_revision",
            "The HEAD commit of the manifest checkout (value always 1)",
            metrics.git_revision.clone(),
        );
        registry.register(
            "git_dirty",
            "1 when the manifest checkout has local changes",
            metrics.git_dirty.clone(),
        );
        registry.register(
            "unchanged_input",
            "File events and git pulls that found the manifest set and the revision the last \
             reconcile loaded (the checkout's own fast-forward seen twice): no reason to reconcile",
            metrics.unchanged_input.clone(),
        );
        // Every outcome series exists from the start, so `rate()` and alerts on
        // `outcome="error"` see a 0 rather than no data.
        for kind in [OutcomeKind::Success, OutcomeKind::Partial, OutcomeKind::Error, OutcomeKind::Cancelled] {
            drop(metrics.reconciles.get_or_create(&vec![("outcome", kind.as_str().to_string())]));
        }
        Self { registry, ..metrics }
    }

    /// Record one finished reconcile.
    pub fn record(&self, outcome: &ReconcileOutcome, duration: Duration, finished_at: DateTime<Utc>) {
        let kind = OutcomeKind::of(outcome);
        self.reconciles.get_or_create(&vec![("outcome", kind.as_str().to_string())]).inc();
        self.duration.observe(duration.as_secs_f64());
        let api_errors = match outcome {
            Ok(report) => {
                for write in &report.writes {
                    let action = serde_json::to_value(write.action)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    let labels = vec![("system", write.object.kind.system().to_string()), ("action", action)];
                    self.writes.get_or_create(&labels).inc();
                }
                self.drifted.set(report.drifted() as i64);
                for kind in ObjectKind::ALL {
                    let of_kind = report.health.iter().filter(|(o, _)| o.kind == *kind).map(|(_, h)| h);
                    for (health, n) in crate::health::counts(of_kind) {
                        let labels = vec![("kind", kind.to_string()), ("health", health.to_string())];
                        self.health.get_or_create(&labels).set(n as i64);
                    }
                }
                self.failed.set(report.failed().count() as i64);
                &report.api_errors
            }
            Err(failure) => &failure.api_errors,
        };
        for error in api_errors {
            self.api_errors.get_or_create(&vec![("system", error.system.clone())]).inc();
        }
        if kind == OutcomeKind::Success {
            self.last_success.set(finished_at.timestamp_millis() as f64 / 1000.0);
        }
    }

    /// Record a batch of file events and git pulls that changed nothing.
    pub fn record_unchanged_input(&self) {
        self.unchanged_input.inc();
    }

    /// Record the manifest checkout's revision (or its absence).
    pub fn record_revision(&self, revision: Option<&GitRevision>) {
        let current = vec![("commit", revision.map(|r| r.commit.clone()).unwrap_or_default())];
        let known = self.git_revision.get(&current).is_some();
        if revision.is_none() || !known {
            self.git_revision.clear();
        }
        if revision.is_some() {
            self.git_revision.get_or_create(&current).set(1);
        }
        self.git_dirty.set(revision.is_some_and(|r| r.dirty) as i64);
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::{Health, HealthStatus};
    use crate::model::ObjectRef;
    use crate::plan::ActionKind;
    use crate::status::contract::{ApiError, AppliedWrite, ObjectState, ReconcileReport};

    #[test]
    fn a_reconcile_is_counted_by_outcome_writes_and_drift() {
        let metrics = Metrics::new();
        let report = ReconcileReport {
            objects: [
                (ObjectRef::app("/a"), ObjectState::Drifted { changes: 2 }),
                (ObjectRef::app("/b"), ObjectState::failed("409")),
                (ObjectRef::job("j"), ObjectState::Synced),
            ]
            .into(),
            writes: vec![
                AppliedWrite { object: ObjectRef::app("/b"), action: ActionKind::Update },
                AppliedWrite { object: ObjectRef::job("j"), action: ActionKind::Create },
            ],
            api_errors: vec![ApiError { system: "marathon".into(), message: "409 locked".into() }],
            health: [
                (ObjectRef::app("/a"), HealthStatus::new(Health::Healthy, "1/1 tasks running")),
                (ObjectRef::app("/b"), HealthStatus::new(Health::Degraded, "0/1 tasks running")),
                (ObjectRef::job("j"), HealthStatus::new(Health::Healthy, "last run succeeded")),
            ]
            .into(),
            ..Default::default()
        };
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        metrics.record(&Ok(report), Duration::from_millis(250), at);
        let text = metrics.encode();
        for line in [
            "mesosync_objects_health{kind=\"MarathonApp\",health=\"Healthy\"} 1",
            "mesosync_objects_health{kind=\"MarathonApp\",health=\"Degraded\"} 1",
            "mesosync_objects_health{kind=\"MarathonApp\",health=\"Missing\"} 0",
            "mesosync_objects_health{kind=\"ChronosJob\",health=\"Healthy\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing `{line}` in\n{text}");
        }
        metrics.record(&Ok(ReconcileReport::default()), Duration::from_millis(20), at);
        metrics.record_revision(Some(&GitRevision { commit: "abc123".into(), dirty: true }));
        let text = metrics.encode();
        for line in [
            "mesosync_reconciles_total{outcome=\"partial\"} 1",
            "mesosync_reconciles_total{outcome=\"success\"} 1",
            "mesosync_reconciles_total{outcome=\"error\"} 0",
            "mesosync_reconcile_duration_seconds_count 2",
            "mesosync_writes_total{system=\"marathon\",action=\"update\"} 1",
            "mesosync_writes_total{system=\"chronos\",action=\"create\"} 1",
            "mesosync_api_errors_total{system=\"marathon\"} 1",
            "mesosync_drifted_objects 0",
            "mesosync_failed_objects 0",
            "mesosync_last_success_timestamp_seconds 1700000000.0",
            "mesosync_git_revision{commit=\"abc123\"} 1",
            "mesosync_git_dirty 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing `{line}` in\n{text}");
        }
    }

    #[test]
    fn a_new_commit_replaces_the_old_revision_label() {
        let metrics = Metrics::new();
        metrics.record_revision(Some(&GitRevision { commit: "old".into(), dirty: false }));
        metrics.record_revision(Some(&GitRevision { commit: "new".into(), dirty: false }));
        let text = metrics.encode();
        assert!(text.contains("mesosync_git_revision{commit=\"new\"} 1"), "{text}");
        assert!(!text.contains("old"), "{text}");
        metrics.record_revision(None);
        assert!(!metrics.encode().contains("commit="));
    }
}
