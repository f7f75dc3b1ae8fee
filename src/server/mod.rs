//! The controller's own HTTP server: `/healthz` (the process answers), `/readyz` (a
//! reconcile has loaded the manifests and listed live state), `/status` (JSON: last
//! reconcile, revision, per-object state and drift, recent errors) and `/metrics`
//! (Prometheus / OpenMetrics text).
//!
//! These four are read-only: they report what the controller wrote into the shared
//! [`StatusStore`] and [`Metrics`]. The one route that acts is the optional push
//! webhook ([`webhook`]), which only calls the callback it was given (ask `--git-pull`
//! to fetch now).

pub mod webhook;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use tokio::net::TcpListener;

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

/// Serve [`router`] on `listener` until `shutdown` completes, then finish the requests
/// in flight.
pub async fn serve(
    listener: TcpListener,
    state: ServerState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, None, shutdown).await
}

/// [`serve`], plus the push webhook receiver when `webhook` is given.
pub async fn serve_with(
    listener: TcpListener,
    state: ServerState,
    webhook: Option<Arc<webhook::Webhook>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut routes = router(state);
    if let Some(webhook) = webhook {
        routes = routes.merge(webhook.routes());
    }
    axum::serve(listener, routes).with_graceful_shutdown(shutdown).await
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<ServerState>) -> Response {
    if state.status.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no reconcile has loaded the manifests and listed live state yet\n",
        )
            .into_response()
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
