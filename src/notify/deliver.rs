//! Delivery: one bounded queue and one task per target, so that nothing a receiver does
//! (slow, down, refusing) reaches the reconcile or another target.
//!
//! - [`Notifier::send`] never waits: a full queue drops the event and counts it
//!   (`mesosync_notifications_total{outcome="dropped"}`).
//! - Each event is tried [`ATTEMPTS`] times, [`FIRST_RETRY`] apart and doubling; a 4xx
//!   other than 408/429 is not retried (the receiver will refuse it again).
//! - A receiver that is down is logged once when the outage starts and once when it
//!   ends (with how many events were lost meanwhile), not per event.
//! - On shutdown ([`Notifier::shutdown`]) what is queued gets one attempt each, within
//!   a grace period.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::event::{Event, Reconciled, Tracker};
use super::payload;
use super::target::{Format, Target};

/// Events waiting per target before new ones are dropped.
pub const QUEUE: usize = 64;
/// Attempts per event.
pub const ATTEMPTS: u32 = 4;
/// The wait before the first retry (then 2×, 4× …).
pub const FIRST_RETRY: Duration = Duration::from_secs(1);
/// One request's time limit.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

type Labels = Vec<(&'static str, String)>;

/// `mesosync_notifications_total{target, outcome = sent | failed | dropped}`.
#[derive(Clone, Debug, Default)]
pub struct NotifyMetrics {
    total: Family<Labels, Counter>,
}

impl NotifyMetrics {
    fn count(&self, target: &str, outcome: &str) {
        self.total
            .get_or_create(&vec![("target", target.to_string()), ("outcome", outcome.to_string())])
            .inc();
    }
}

struct Queue {
    name: String,
    wants: Target,
    sender: mpsc::Sender<Event>,
}

/// The handle the controller (and the HA role watcher) sends events through. Clones
/// share the queues and the tracker.
#[derive(Clone)]
pub struct Notifier {
    queues: Arc<Vec<Queue>>,
    tracker: Arc<Mutex<Tracker>>,
    metrics: NotifyMetrics,
    closing: CancellationToken,
    tasks: Arc<Mutex<JoinSet<()>>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.queues.iter().map(|q| q.name.as_str()).collect();
        f.debug_struct("Notifier").field("targets", &names).finish_non_exhaustive()
    }
}

impl Notifier {
    /// Start one delivery task per target (on the current tokio runtime).
    pub fn start(targets: Vec<Target>) -> Self {
        Self::start_with(targets, FIRST_RETRY)
    }

    /// [`start`](Self::start) with another first retry delay (tests).
    pub fn start_with(targets: Vec<Target>, first_retry: Duration) -> Self {
        let metrics = NotifyMetrics::default();
        let closing = CancellationToken::new();
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("mesosync/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a client with rustls and no custom roots builds");
        let mut tasks = JoinSet::new();
        let mut queues = Vec::new();
        for target in targets {
            let (sender, receiver) = mpsc::channel(QUEUE);
            for outcome in ["sent", "failed", "dropped"] {
                drop(
                    metrics
                        .total
                        .get_or_create(&vec![("target", target.name.clone()), ("outcome", outcome.into())]),
                );
            }
            let worker = Worker {
                target: target.clone(),
                http: http.clone(),
                metrics: metrics.clone(),
                first_retry,
                down_since_lost: None,
            };
            tasks.spawn(worker.run(receiver, closing.clone()));
            queues.push(Queue { name: target.name.clone(), wants: target, sender });
        }
        Notifier {
            queues: Arc::new(queues),
            tracker: Arc::default(),
            metrics,
            closing,
            tasks: Arc::new(Mutex::new(tasks)),
        }
    }

    /// Add `mesosync_notifications_total` to `registry`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register(
            "notifications",
            "Notifications by target and outcome (sent, failed after retries, dropped on a full queue)",
            self.metrics.total.clone(),
        );
    }

    /// Queue `event` for every target subscribed to its kind. Never waits.
    pub fn send(&self, event: Event) {
        for queue in self.queues.iter().filter(|q| q.wants.wants(event.kind)) {
            match queue.sender.try_send(event.clone()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(e)) => {
                    self.metrics.count(&queue.name, "dropped");
                    debug!(target_name = %queue.name, event = %e.kind, "notification queue full: event dropped");
                }
                Err(mpsc::error::TrySendError::Closed(_)) => self.metrics.count(&queue.name, "dropped"),
            }
        }
    }

    /// The events of one finished reconcile (see [`Tracker`]), queued.
    pub fn reconciled(&self, reconciled: &Reconciled<'_>) {
        if self.queues.is_empty() {
            return;
        }
        let events =
            self.tracker.lock().unwrap_or_else(std::sync::PoisonError::into_inner).observe(reconciled);
        for event in events {
            self.send(event);
        }
    }

    /// Stop: every queued event gets one attempt, within `grace`; then the tasks end.
    pub async fn shutdown(&self, grace: Duration) {
        self.closing.cancel();
        let mut tasks =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        let drained = tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            warn!(?grace, "notifications still pending at shutdown were abandoned");
            tasks.shutdown().await;
        }
    }
}

struct Worker {
    target: Target,
    http: reqwest::Client,
    metrics: NotifyMetrics,
    first_retry: Duration,
    /// While the receiver is down: events lost since it went down.
    down_since_lost: Option<u64>,
}

/// Why one attempt failed.
enum Failure {
    /// Worth retrying (transport error, 5xx, 408, 429).
    Transient(String),
    /// The receiver refused it (another 4xx).
    Refused(String),
}

impl Worker {
    async fn run(mut self, mut events: mpsc::Receiver<Event>, closing: CancellationToken) {
        loop {
            let event = tokio::select! {
                biased;
                _ = closing.cancelled() => break,
                event = events.recv() => match event {
                    Some(event) => event,
                    None => return,
                },
            };
            self.deliver(&event, ATTEMPTS, &closing).await;
        }
        // Shutting down: one attempt for each event still queued.
        while let Ok(event) = events.try_recv() {
            self.deliver(&event, 1, &CancellationToken::new()).await;
        }
    }

    async fn deliver(&mut self, event: &Event, attempts: u32, closing: &CancellationToken) {
        let body = match self.target.format {
            Format::Generic => payload::generic(event),
            Format::Slack => payload::slack(event),
        };
        let mut delay = self.first_retry;
        let mut last = String::new();
        for attempt in 1..=attempts {
            match self.post(&body).await {
                Ok(()) => {
                    self.metrics.count(&self.target.name, "sent");
                    if let Some(lost) = self.down_since_lost.take() {
                        info!(target_name = %self.target.name, url = %self.target.shown_url(), lost, "notification receiver is back");
                    }
                    return;
                }
                Err(Failure::Refused(why)) => {
                    last = why;
                    break;
                }
                Err(Failure::Transient(why)) => last = why,
            }
            if attempt < attempts {
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = closing.cancelled() => break,
                }
                delay = delay.saturating_mul(2);
            }
        }
        self.metrics.count(&self.target.name, "failed");
        match &mut self.down_since_lost {
            Some(lost) => {
                *lost += 1;
                debug!(target_name = %self.target.name, event = %event.kind, error = %last, "notification not delivered (receiver still down)");
            }
            None => {
                self.down_since_lost = Some(1);
                warn!(target_name = %self.target.name, url = %self.target.shown_url(), event = %event.kind, error = %last,
                    "notification receiver is down: events are dropped until it answers again (logged once)");
            }
        }
    }

    async fn post(&self, body: &[u8]) -> Result<(), Failure> {
        let mut request = self
            .http
            .post(self.target.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        if let Some(key) = &self.target.key {
            request = request.header(payload::SIGNATURE_HEADER, payload::signature(key, body));
        }
        match request.send().await {
            Ok(answer) if answer.status().is_success() => Ok(()),
            Ok(answer) => {
                let status = answer.status();
                let why = format!("answered {status}");
                if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
                    Err(Failure::Transient(why))
                } else {
                    Err(Failure::Refused(why))
                }
            }
            // reqwest's error names the URL, which may hold a token: say only what kind.
            Err(e) => Err(Failure::Transient(transport_error(&e))),
        }
    }
}

fn transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "cannot connect".into()
    } else {
        "request failed".into()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::Utc;

    use super::*;
    use crate::notify::event::EventKind;

    fn target(url: &str, events: &[EventKind]) -> Target {
        Target {
            name: "t".into(),
            format: Format::Generic,
            url: url.parse().unwrap(),
            events: events.iter().copied().collect::<BTreeSet<_>>(),
            key: None,
        }
    }

    fn metric(notifier: &Notifier, outcome: &str) -> u64 {
        notifier.metrics.total.get_or_create(&vec![("target", "t".into()), ("outcome", outcome.into())]).get()
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_without_waiting() {
        // A receiver that accepts connections and never answers: the worker is stuck on
        // its first event for the request timeout.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let _hold = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                open.push(socket);
            }
        });
        let notifier = Notifier::start(vec![target(&url, &[EventKind::Leadership])]);
        let started = std::time::Instant::now();
        for _ in 0..QUEUE + 36 {
            notifier.send(Event::leadership(true, "r", Utc::now()));
        }
        // Events of kinds the target did not ask for are not queued at all.
        notifier.send(Event { kind: EventKind::Drift, ..Event::leadership(true, "r", Utc::now()) });
        assert!(started.elapsed() < Duration::from_secs(1), "send never waits");
        let dropped = metric(&notifier, "dropped");
        assert!(dropped == 35 || dropped == 36, "{dropped}");
        notifier.shutdown(Duration::from_millis(100)).await;
    }
}
