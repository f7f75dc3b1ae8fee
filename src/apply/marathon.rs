//! How a Marathon write is executed and waited on: the request by write kind, a 409
//! lock waited out (or forced), transient errors retried, a 409 "already exists" told
//! apart from our own earlier attempt, the deployment the write started waited for
//! (through [`DeploymentWaiter`]), and then the app waited for until it is Healthy
//! (through [`super::readiness`]) — both within the object's timeout.

use serde_json::Value;

use std::time::Duration;

use super::deployments::DeploymentWaiter;
use super::readiness::Waited;
use super::{ApplyError, ApplyOptions, Ctx, Executed, Outcome, ProgressSink, invalid, masked};
use crate::client::{ClientError, Clients, MarathonClient};
use crate::model::ObjectKind;
use crate::plan::{Action, Plan, Write};
use crate::system::System;
use crate::system::marathon::Marathon;

/// The deployment waiter of one apply, started only when the plan writes an app.
pub(super) async fn waiter(plan: &Plan, clients: &Clients, opts: &ApplyOptions) -> Option<DeploymentWaiter> {
    let writes = plan.actions.iter().any(|a| a.object.kind == ObjectKind::MarathonApp && a.is_write());
    if !writes {
        return None;
    }
    Some(DeploymentWaiter::start(clients.marathon.as_ref(), opts.use_events, opts.poll_interval).await)
}

impl Ctx<'_> {
    /// One Marathon action: write, wait out locks and transient errors, then wait for
    /// the deployment.
    pub(super) async fn run_app(
        &self,
        a: &Action,
        m: &MarathonClient,
        progress: &dyn ProgressSink,
    ) -> Executed {
        let id = a.object.id.as_str();
        let force = self.opts.force;
        let Some(write) = a.decision.write() else { return Executed::new(Outcome::Unchanged, None, 0) };
        let body = match (write, &a.body) {
            (Write::Delete, _) => None,
            (Write::Scale, Some(b)) => match scale_only(b) {
                Some(_) => Some(b),
                None => return invalid(format!("a scale body must be {{\"instances\": N}}, got {b}")),
            },
            (Write::Replace { .. }, _) => return invalid("Marathon apps are never replaced".into()),
            (_, Some(b)) => Some(b),
            (write, None) => return invalid(format!("{:?} of {id} has no body", write.kind())),
        };
        let timeout = self.timeout_of(&a.object);
        let started = tokio::time::Instant::now();
        let mut attempts = 0u32;
        let mut lock_retries = 0u32;
        let mut error_retries = 0u32;
        let mut had_transient = false;
        loop {
            if let Some(reason) = self.write_refused(attempts) {
                return Executed::new(Outcome::Skipped(reason), None, attempts);
            }
            attempts += 1;
            let slot = self.write_slot().await;
            let result = match (write, body) {
                (Write::Create, Some(b)) => m.create_app(b).await,
                (Write::Update | Write::Adopt { .. }, Some(b)) => m.update_app(id, b, force).await,
                (Write::Scale, Some(b)) => m.put_app_raw(id, b, force).await,
                (Write::Delete, _) => m.delete_app(id).await,
                _ => return Executed::new(Outcome::Unchanged, None, 0),
            };
            drop(slot);
            match result {
                Ok(w) => {
                    let outcome = match (&w.deployment_id, self.waiter) {
                        (Some(d), Some(waiter)) => match waiter.wait(d, timeout).await {
                            Ok(()) => Outcome::Applied,
                            Err(e) => Outcome::Failed(e),
                        },
                        _ => Outcome::Applied,
                    };
                    if outcome != Outcome::Applied || *write == Write::Delete {
                        return Executed::new(outcome, w.deployment_id, attempts);
                    }
                    let left = timeout.saturating_sub(started.elapsed());
                    return self.wait_healthy(a, left, progress).await.into_executed(
                        w.deployment_id,
                        attempts,
                        timeout,
                    );
                }
                Err(ClientError::Locked { deployments, .. }) => {
                    if lock_retries + 1 >= self.opts.lock_retry.max_attempts {
                        let e = ApplyError::StillLocked { deployments, attempts };
                        return Executed::new(Outcome::Failed(e), None, attempts);
                    }
                    tracing::info!(object = %a.object, blocking = ?deployments, "locked by a running deployment; waiting");
                    if let Some(waiter) = self.waiter {
                        for d in &deployments {
                            waiter.wait_gone(d, self.opts.deployment_timeout).await;
                        }
                    }
                    tokio::time::sleep(self.opts.lock_retry.delay(lock_retries)).await;
                    lock_retries += 1;
                }
                Err(ClientError::AlreadyExists { message, .. }) => {
                    // The 409 may be our own earlier attempt (after a create that failed
                    // transiently) or a create by another run of this same instance
                    // that got there first (two applies, or a replica, at once): either
                    // way the app carries our ownership mark, so it is ours. Any
                    // difference from the manifest is found and written by the next
                    // plan, like any drift.
                    if self.landed_earlier(m, id, body).await {
                        if !had_transient {
                            tracing::info!(object = %a.object, "created meanwhile by another run of this instance; ours");
                        }
                        return Executed::new(Outcome::Applied, None, attempts);
                    }
                    return Executed::new(Outcome::Failed(ApplyError::NotOwned(message)), None, attempts);
                }
                Err(ClientError::NotFound { .. }) if *write == Write::Delete => {
                    return Executed::new(Outcome::Applied, None, attempts);
                }
                Err(e) if e.is_transient() && error_retries + 1 < self.opts.error_retry.max_attempts => {
                    tracing::info!(object = %a.object, error = %masked(a, &e), "transient error; retrying");
                    had_transient = true;
                    tokio::time::sleep(self.opts.error_retry.delay(error_retries)).await;
                    error_retries += 1;
                }
                Err(e) => return Executed::new(Outcome::Failed(e.into()), None, attempts),
            }
        }
    }

    /// After its deployment ended: wait until the app is Healthy, for up to `left`.
    async fn wait_healthy(&self, a: &Action, left: Duration, progress: &dyn ProgressSink) -> Waited {
        let first = self.readiness.wait_until_ready(&a.object, Duration::ZERO).await;
        match first {
            Waited::TimedOut(status) if !left.is_zero() => {
                progress.waiting(a, &a.object, &status);
                self.readiness.wait_until_ready(&a.object, left).await
            }
            other => other,
        }
    }

    /// Whether the live app `id` carries the same ownership mark as `body`.
    async fn landed_earlier(&self, m: &MarathonClient, id: &str, body: Option<&Value>) -> bool {
        let mark = |v: &Value| Marathon.owner_of(v).map(String::from);
        let Some(ours) = body.and_then(mark) else { return false };
        matches!(m.get_app(id).await, Ok(Some(live)) if mark(&live).as_deref() == Some(ours.as_str()))
    }
}

impl Waited {
    /// What a write whose deployment succeeded became, given how its health wait ended.
    fn into_executed(self, deployment_id: Option<String>, attempts: u32, timeout: Duration) -> Executed {
        match self {
            Waited::Ready(health) => {
                Executed::new(Outcome::Applied, deployment_id, attempts).with_health(health)
            }
            Waited::TimedOut(status) => {
                let e = ApplyError::NotHealthy { status: status.clone(), after: timeout };
                Executed::new(Outcome::Failed(e), deployment_id, attempts).with_health(Some(status))
            }
            // Written; the shutdown only ended the wait (no new write starts anyway).
            Waited::Cancelled => Executed::new(Outcome::Applied, deployment_id, attempts),
        }
    }
}

/// `Some(n)` if `body` is exactly `{"instances": n}`.
fn scale_only(body: &Value) -> Option<u64> {
    let map = body.as_object()?;
    if map.len() != 1 {
        return None;
    }
    map.get("instances")?.as_u64()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn scale_bodies() {
        assert_eq!(scale_only(&json!({"instances": 3})), Some(3));
        assert_eq!(scale_only(&json!({"instances": 3, "cpus": 1})), None);
        assert_eq!(scale_only(&json!({"instances": -1})), None);
    }
}
