//! Readiness: whether an object is ready for its dependants to be written — the one
//! question the wave logic asks before writing anything that depends on another
//! object (Marathon `dependencies`, Chronos `parents`, `sync.dependsOn`). Argo CD's
//! sync waves and Flux's `dependsOn` wait for the outcome the same way, not for the
//! write.
//!
//! One check per system (`System::ready_for_dependants`, asked in [`ready`]):
//! - a Marathon app is ready when it is Healthy (or Suspended: scaled to 0 on purpose,
//!   nothing to wait for) — see [`crate::health::marathon`];
//! - a Chronos job is ready as it is (its write, if any, is done); run-once jobs —
//!   done once a run of their current definition succeeded — plug in here.
//!
//! An object written in this apply is ready when its write succeeded (an app's write
//! is done only once it is Healthy: [`Readiness::wait_healthy`] in the Marathon
//! executor). One that is not written is ready when its listed health says so;
//! otherwise it is re-read every `poll_interval` until it is, up to its timeout
//! (`sync.timeout`, else the deployment timeout). Each dependency is waited for once
//! per apply, however many dependants it has; cancellation ends a wait at once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::ApplyOptions;
use crate::client::Clients;
use crate::health::{self, Health, HealthMap, HealthStatus};
use crate::model::{ObjectKind, ObjectRef};

/// Whether `object`, whose health is `status`, is ready for its dependants: its
/// system says ([`crate::system::System::ready_for_dependants`]).
pub fn ready(object: &ObjectRef, status: &HealthStatus) -> bool {
    crate::system::of(object.kind).ready_for_dependants(status.health)
}

/// How a wait for readiness ended.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Waited {
    /// Ready; its health when last read (`None`: not read, e.g. written in this apply).
    Ready(Option<HealthStatus>),
    /// Still not ready at the deadline: its health then.
    TimedOut(HealthStatus),
    /// The apply was cancelled meanwhile.
    Cancelled,
}

/// The readiness of dependencies during one apply.
pub(super) struct Readiness<'a> {
    clients: &'a Clients,
    opts: &'a ApplyOptions,
    /// Objects written (and done) in this apply.
    done: Mutex<HashSet<ObjectRef>>,
    /// One wait per dependency, shared by its dependants.
    waits: Mutex<HashMap<ObjectRef, Arc<OnceCell<Waited>>>>,
}

impl<'a> Readiness<'a> {
    pub(super) fn new(clients: &'a Clients, opts: &'a ApplyOptions) -> Self {
        Readiness { clients, opts, done: Mutex::default(), waits: Mutex::default() }
    }

    fn listed(&self) -> Option<&HealthMap> {
        self.opts.live_health.as_deref()
    }

    /// `object` was written in this apply and its write is done.
    pub(super) fn mark_done(&self, object: &ObjectRef) {
        if let Ok(mut done) = self.done.lock() {
            done.insert(object.clone());
        }
    }

    /// Whether `object` was written in this apply and its write is done.
    pub(super) fn is_done(&self, object: &ObjectRef) -> bool {
        self.done.lock().is_ok_and(|done| done.contains(object))
    }

    /// Wait (once per apply) until dependency `dep` is ready, for up to `timeout`.
    pub(super) async fn wait_for(&self, dep: &ObjectRef, timeout: Duration) -> Waited {
        if self.is_done(dep) {
            return Waited::Ready(None);
        }
        if let Some(status) = self.listed().and_then(|l| l.get(dep)).filter(|s| ready(dep, s)) {
            return Waited::Ready(Some(status.clone()));
        }
        let cell = {
            let Ok(mut waits) = self.waits.lock() else { return Waited::Cancelled };
            Arc::clone(waits.entry(dep.clone()).or_default())
        };
        cell.get_or_init(|| self.wait_until_ready(dep, timeout)).await.clone()
    }

    /// Re-read `object` until it is ready, the deadline passes or the apply is
    /// cancelled; the first read is immediate.
    pub(super) async fn wait_until_ready(&self, object: &ObjectRef, timeout: Duration) -> Waited {
        let deadline = Instant::now() + timeout;
        let mut announced = false;
        loop {
            let status = self.read(object).await;
            if ready(object, &status) {
                return Waited::Ready(Some(status));
            }
            // Nothing in this apply creates it: waiting cannot help.
            if status.health == Health::Missing {
                return Waited::TimedOut(status);
            }
            if !announced {
                tracing::info!(object = %object, health = %status, "waiting for it to be ready");
                announced = true;
            }
            if Instant::now() >= deadline {
                return Waited::TimedOut(status);
            }
            let wake = (Instant::now() + self.opts.poll_interval).min(deadline);
            match &self.opts.cancel {
                Some(cancel) => tokio::select! {
                    _ = cancel.cancelled() => return Waited::Cancelled,
                    _ = tokio::time::sleep_until(wake) => {}
                },
                None => tokio::time::sleep_until(wake).await,
            }
        }
    }

    /// The health of `object` now, read from its system.
    async fn read(&self, object: &ObjectRef) -> HealthStatus {
        match object.kind {
            ObjectKind::MarathonApp => {
                let Some(m) = &self.clients.marathon else {
                    return HealthStatus::new(Health::Unknown, "no marathon client configured");
                };
                // `GET /v2/apps/{id}` embeds the tasks and the last task failure.
                match m.get_app(&object.id).await {
                    Ok(Some(app)) => {
                        health::marathon::app_health(app.to_string().as_bytes(), chrono::Utc::now())
                    }
                    Ok(None) => HealthStatus::new(Health::Missing, "not found live"),
                    Err(e) => HealthStatus::new(Health::Unknown, format!("cannot read it: {e}")),
                }
            }
            // In place is ready: nothing to read beyond the listing.
            ObjectKind::ChronosJob => HealthStatus::new(Health::Healthy, "in place"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_are_ready_when_healthy_or_scaled_to_zero_jobs_as_they_are() {
        let app = ObjectRef::app("/a");
        let job = ObjectRef::job("j");
        for (health, app_ready, job_ready) in [
            (Health::Healthy, true, true),
            (Health::Suspended, true, true),
            (Health::Progressing, false, true),
            (Health::Degraded, false, true),
            (Health::Missing, false, true),
            (Health::Unknown, false, true),
        ] {
            let status = HealthStatus::new(health, "");
            assert_eq!(ready(&app, &status), app_ready, "{health}");
            assert_eq!(ready(&job, &status), job_ready, "{health}");
        }
    }

    #[tokio::test]
    async fn a_dependency_listed_ready_or_written_is_not_read() {
        let clients = Clients::default();
        let mut opts = ApplyOptions::default();
        let listed: HealthMap =
            [(ObjectRef::app("/ok"), HealthStatus::new(Health::Healthy, "1/1 tasks running"))].into();
        opts.live_health = Some(Arc::new(listed));
        let r = Readiness::new(&clients, &opts);
        assert!(matches!(r.wait_for(&ObjectRef::app("/ok"), Duration::ZERO).await, Waited::Ready(Some(_))));
        r.mark_done(&ObjectRef::app("/new"));
        assert_eq!(r.wait_for(&ObjectRef::app("/new"), Duration::ZERO).await, Waited::Ready(None));
        // Not listed, no client: read as Unknown, and the zero timeout ends the wait.
        assert_eq!(
            r.wait_for(&ObjectRef::app("/other"), Duration::ZERO).await,
            Waited::TimedOut(HealthStatus::new(Health::Unknown, "no marathon client configured"))
        );
    }
}
