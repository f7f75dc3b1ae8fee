//! Waiting for Marathon deployments to end. A deployment is over when it leaves
//! `GET /v2/deployments`; whether it succeeded is told by the `deployment_success` /
//! `deployment_failed` events. The waiter subscribes to the event stream once per apply
//! (before the first write, so no end can be missed) and polls `/v2/deployments` as a
//! safety net — and as the only source if the stream is unavailable.
//!
//! Without the stream a deployment that left the list counts as a success: Marathon
//! keeps no record of how it ended (a crash-looping app is still caught, by the
//! timeout). With the stream, an end seen in the list but not (yet) as an event gets a
//! short grace period for the event before it counts as a success.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::report::ApplyError;
use crate::client::{ClientError, MarathonClient, MarathonEvent};

/// How long to wait for the stream's `event_stream_attached` before polling only.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(3);

/// Shared between the event task and the waiters.
#[derive(Default)]
struct Seen {
    /// Deployment id → succeeded?
    ended: Mutex<HashMap<String, bool>>,
    notify: Notify,
    /// The event stream is attached and has not broken.
    live: AtomicBool,
}

/// The ids in one `GET /v2/deployments`, and when it was taken.
type Listing = (Instant, Arc<HashSet<String>>);

/// Waits on deployments for one apply.
pub(crate) struct DeploymentWaiter {
    marathon: Option<MarathonClient>,
    seen: Arc<Seen>,
    task: Option<JoinHandle<()>>,
    poll_interval: Duration,
    /// The last listing, shared by every wait: however many deployments are waited
    /// for, at most one `GET /v2/deployments` per poll interval.
    last: tokio::sync::Mutex<Option<Listing>>,
}

impl DeploymentWaiter {
    /// Subscribe to the event stream (if `use_events` and there is a Marathon).
    pub(crate) async fn start(
        marathon: Option<&MarathonClient>,
        use_events: bool,
        poll_interval: Duration,
    ) -> Self {
        let seen = Arc::new(Seen::default());
        let mut task = None;
        if let (Some(m), true) = (marathon, use_events) {
            match subscribe(m).await {
                Some(mut stream) => {
                    seen.live.store(true, Ordering::SeqCst);
                    let seen2 = Arc::clone(&seen);
                    task = Some(tokio::spawn(async move {
                        while let Some(event) = stream.next().await {
                            let (id, ok) = match event {
                                Ok(MarathonEvent::DeploymentSuccess { id }) => (id, true),
                                Ok(MarathonEvent::DeploymentFailed { id }) => (id, false),
                                Ok(_) => continue,
                                Err(_) => break,
                            };
                            if let Ok(mut ended) = seen2.ended.lock() {
                                ended.insert(id, ok);
                            }
                            seen2.notify.notify_waiters();
                        }
                        tracing::debug!("Marathon event stream ended; polling deployments");
                        seen2.live.store(false, Ordering::SeqCst);
                        seen2.notify.notify_waiters();
                    }));
                }
                None => tracing::debug!("Marathon event stream unavailable; polling deployments"),
            }
        }
        DeploymentWaiter { marathon: marathon.cloned(), seen, task, poll_interval, last: Default::default() }
    }

    /// The deployments in flight, listed no earlier than `since` (a listing older than
    /// a wait cannot hold the deployment it waits for).
    async fn in_flight(
        &self,
        m: &MarathonClient,
        since: Instant,
    ) -> Result<Arc<HashSet<String>>, ClientError> {
        let mut last = self.last.lock().await;
        if let Some((at, ids)) = last.as_ref() {
            if *at >= since {
                return Ok(Arc::clone(ids));
            }
        }
        let taken = Instant::now();
        let ids: Arc<HashSet<String>> =
            Arc::new(m.list_deployments().await?.into_iter().map(|d| d.id).collect());
        *last = Some((taken, Arc::clone(&ids)));
        Ok(ids)
    }

    fn ended(&self, id: &str) -> Option<bool> {
        self.seen.ended.lock().ok().and_then(|m| m.get(id).copied())
    }

    /// Wait until deployment `id` ends; `Err` if it failed or outlived `timeout`.
    pub(crate) async fn wait(&self, id: &str, timeout: Duration) -> Result<(), ApplyError> {
        match self.wait_end(id, timeout, true).await {
            Some(true) => Ok(()),
            Some(false) => Err(ApplyError::DeploymentFailed { id: id.to_string() }),
            None => Err(ApplyError::DeploymentTimeout { id: id.to_string(), after: timeout }),
        }
    }

    /// Wait until deployment `id` is gone from the list, whatever its outcome (used
    /// when another deployment holds a lock). `false` on timeout.
    pub(crate) async fn wait_gone(&self, id: &str, timeout: Duration) -> bool {
        self.wait_end(id, timeout, false).await.is_some()
    }

    /// `Some(succeeded)` when the deployment ended, `None` on timeout. Without
    /// `need_outcome`, leaving the list is enough (no grace period for the event).
    async fn wait_end(&self, id: &str, timeout: Duration, need_outcome: bool) -> Option<bool> {
        let started = Instant::now();
        let deadline = started + timeout;
        let mut gone_since: Option<Instant> = None;
        // With events flowing no end can be missed (the stream was attached before the
        // write): the first poll, a safety net, comes one interval later.
        let mut next_poll =
            if self.seen.live.load(Ordering::SeqCst) { started + self.poll_interval * 4 } else { started };
        loop {
            let notified = self.seen.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(ok) = self.ended(id) {
                return Some(ok);
            }
            let live = self.seen.live.load(Ordering::SeqCst);
            let now = Instant::now();
            if now >= next_poll {
                // With events flowing, polling is only a safety net: poll less often.
                let every = if live { self.poll_interval * 4 } else { self.poll_interval };
                next_poll = now + every;
                if let Some(m) = &self.marathon {
                    let since = started.max(now.checked_sub(every).unwrap_or(started));
                    match self.in_flight(m, since).await {
                        Ok(ids) if ids.contains(id) => gone_since = None,
                        Ok(_) => {
                            if !live || !need_outcome {
                                // No events to say otherwise: leaving the list is success.
                                return self.ended(id).or(Some(true));
                            }
                            gone_since.get_or_insert(Instant::now());
                        }
                        Err(e) => tracing::debug!(error = %e, "polling deployments failed"),
                    }
                } else {
                    return Some(true);
                }
            }
            // Gone from the list but no event yet: give the event a moment to arrive.
            if let Some(since) = gone_since {
                if since.elapsed() >= self.poll_interval.max(Duration::from_millis(500)) {
                    return self.ended(id).or(Some(true));
                }
            }
            if Instant::now() >= deadline {
                return self.ended(id);
            }
            let wake = next_poll.min(deadline).max(Instant::now() + Duration::from_millis(10));
            let wake = match gone_since {
                Some(s) => wake.min(s + self.poll_interval.max(Duration::from_millis(500))),
                None => wake,
            };
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }
}

impl Drop for DeploymentWaiter {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Open the stream and wait for `event_stream_attached`, so that every deployment end
/// after this point is seen.
async fn subscribe(m: &MarathonClient) -> Option<crate::client::EventStream> {
    let attach = async {
        let mut stream = m
            .events(&["event_stream_attached", "deployment_success", "deployment_failed"])
            .await
            .map_err(|e| tracing::debug!(error = %e, "cannot subscribe to Marathon events"))
            .ok()?;
        match stream.next().await {
            Some(Ok(MarathonEvent::Attached)) => Some(stream),
            _ => None,
        }
    };
    tokio::time::timeout(ATTACH_TIMEOUT, attach).await.ok().flatten()
}
