//! The controller's own HTTP server: `/healthz` (the process answers), `/readyz` (a
//! reconcile has loaded the manifests and listed live state), `/status` (JSON: last
//! reconcile, revision, per-object state and drift, recent errors) and `/metrics`
//! (Prometheus / OpenMetrics text).
//!
//! The web dashboard ([`ui`]) is served beside them at `/` (merged in by `daemon`).
//!
//! These four are read-only: they report what the controller wrote into the shared
//! [`StatusStore`] and [`Metrics`]. The one route that acts is the optional push
//! webhook ([`webhook`], merged in by `daemon`), which only calls the callback it was
//! given (ask `--git-pull` to fetch now).
//!
//! Bounded ([`ServeLimits`]), because it may face any client: a request's headers must
//! arrive within `header_timeout`, at most `max_connections` are open at once (a new
//! connection evicts the oldest one that is not inside a request, so clients that
//! trickle bytes or idle cannot lock out a health probe), and shutdown waits at most
//! `shutdown_grace` for open requests. Only the webhook reads a request body (at most
//! [`webhook::MAX_BODY`], within a time limit).

pub mod ui;
pub mod webhook;

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::status::{Metrics, Status, StatusStore};

/// What the handlers read.
#[derive(Clone, Debug)]
pub struct ServerState {
    /// The controller's status.
    pub status: StatusStore,
    /// The controller's metrics.
    pub metrics: Arc<Metrics>,
}

/// The routes.
pub fn router(state: ServerState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// How much the server gives any one client, and all of them together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServeLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Time to receive a request's headers.
    pub header_timeout: Duration,
    /// After shutdown began, how long open requests may take.
    pub shutdown_grace: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            max_connections: 256,
            header_timeout: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Serve [`router`] on `listener` with the default [`ServeLimits`] until `shutdown`
/// completes, then finish the requests in flight.
pub async fn serve(
    listener: TcpListener,
    state: ServerState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, ServeLimits::default(), shutdown).await
}

/// Serve [`router`] on `listener` within `limits` until `shutdown` completes, then
/// give open requests `limits.shutdown_grace` to finish.
pub async fn serve_with(
    listener: TcpListener,
    state: ServerState,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_router(listener, router(state), limits, shutdown).await
}

/// [`serve_with`] for any `routes` (the status routes plus the webhook's).
pub async fn serve_router(
    listener: TcpListener,
    routes: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let service = TowerToHyperService::new(routes);
    let open = Arc::new(OpenConnections::new(limits.max_connections.max(1)));
    let closing = CancellationToken::new();
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors (or a client gone before accept): wait a
                    // moment instead of spinning; connections closing free some.
                    tracing::warn!(error = %e, "status server: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let slot = tokio::select! {
            _ = &mut shutdown => break,
            slot = open.admit() => slot,
        };
        let (service, open, closing) = (service.clone(), open.clone(), closing.clone());
        connections.spawn(async move {
            let busy = slot.busy.clone();
            let tracked = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
                // Who is asking (the push webhook limits its rate per source).
                request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                let guard = BusyGuard::enter(busy.clone());
                let response = hyper::service::Service::call(&service, request);
                async move {
                    let response = response.await;
                    drop(guard);
                    response
                }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(TokioIo::new(stream), tracked);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                // Dropping the connection closes the socket.
                _ = slot.evict.cancelled() => {}
                _ = closing.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            open.release(slot.id);
            // The slot (and its permit) lives as long as the connection: named here so
            // the block owns all of it, not only the fields it reads.
            drop(slot);
        });
    }
    closing.cancel();
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        connections.shutdown().await;
    }
    Ok(())
}

/// How long a new connection is spared from eviction while older ones remain.
const FRESH: Duration = Duration::from_millis(500);

/// One open connection: how many of its requests are being handled, and how to close it.
struct Slot {
    id: u64,
    busy: Arc<AtomicUsize>,
    evict: CancellationToken,
    opened: std::time::Instant,
    /// Held by the connection's task: one of `max_connections`.
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// The open connections, oldest first.
struct OpenConnections {
    permits: Arc<tokio::sync::Semaphore>,
    next_id: AtomicU64,
    slots: Mutex<VecDeque<Slot>>,
}

impl OpenConnections {
    fn new(max: usize) -> Self {
        Self {
            permits: Arc::new(tokio::sync::Semaphore::new(max)),
            next_id: AtomicU64::new(0),
            slots: Mutex::new(VecDeque::new()),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, VecDeque<Slot>> {
        self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Room for a new connection: at the limit, the oldest connection not inside a
    /// request (still sending its headers, or idle) is closed, and the new one waits
    /// until a connection has really closed (its descriptor is free again), so the
    /// open connections never exceed the limit, even under a burst.
    async fn admit(&self) -> Slot {
        if self.permits.available_permits() == 0 {
            let mut slots = self.slots();
            // A connection accepted a moment ago has had no chance to send its request
            // yet: spare it if any older one can go (a health probe must not be evicted
            // by the burst that arrived right after it).
            let idle = |s: &&Slot| s.busy.load(Ordering::Acquire) == 0;
            let settled = slots.iter().position(|s| idle(&s) && s.opened.elapsed() >= FRESH);
            if let Some(idle) = settled.or_else(|| slots.iter().position(|s| idle(&s))) {
                if let Some(evicted) = slots.remove(idle) {
                    evicted.evict.cancel();
                }
            }
        }
        let permit = self.permits.clone().acquire_owned().await.ok();
        let slot = Slot {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            busy: Arc::new(AtomicUsize::new(0)),
            evict: CancellationToken::new(),
            opened: std::time::Instant::now(),
            _permit: permit,
        };
        let listed = Slot {
            id: slot.id,
            busy: slot.busy.clone(),
            evict: slot.evict.clone(),
            opened: slot.opened,
            _permit: None,
        };
        self.slots().push_back(listed);
        slot
    }

    fn release(&self, id: u64) {
        self.slots().retain(|s| s.id != id);
    }
}

/// Marks a connection busy while one of its requests is handled.
struct BusyGuard(Arc<AtomicUsize>);

impl BusyGuard {
    fn enter(busy: Arc<AtomicUsize>) -> Self {
        busy.fetch_add(1, Ordering::AcqRel);
        Self(busy)
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<ServerState>) -> Response {
    match state.status.not_ready_reason(chrono::Utc::now()) {
        None => (StatusCode::OK, "ready\n").into_response(),
        Some(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {reason}\n")).into_response(),
    }
}

async fn status(State(state): State<ServerState>) -> Json<Status> {
    Json(state.status.snapshot())
}

async fn metrics(State(state): State<ServerState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        state.metrics.encode(),
    )
        .into_response()
}
