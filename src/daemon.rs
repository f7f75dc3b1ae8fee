//! `mesosync run` as a process: the controller loop ([`crate::runtime`]), its HTTP
//! server ([`crate::server`]) and Unix signals, wired together. The only module that
//! knows both: the runtime and the server share the [`crate::status`] leaf and never
//! import each other.
//!
//! SIGTERM or Ctrl-C cancels the controller's shutdown token (the reconcile finishes the
//! write in flight), the server drains, and [`run_with`] returns `Ok`; a second signal
//! abandons the reconcile ([`RuntimeError::Forced`]). SIGHUP requests a reconcile.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::runtime::{Controller, Reconcile, RuntimeConfig, RuntimeError, Trigger};
use crate::server::ui::{self, Ui, actions::Actions};
use crate::server::webhook::Webhook;
use crate::server::{ServeLimits, ServerState, router, serve_router};

/// `mesosync run`: bind `config.listen`, then [`run_with`].
pub async fn run<R: Reconcile>(config: RuntimeConfig, reconciler: Arc<R>) -> Result<(), RuntimeError> {
    let addr = config.listen;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| RuntimeError::Server { addr: addr.to_string(), source })?;
    run_with(Controller::new(config, reconciler), listener).await
}

/// Serve the HTTP endpoints on `listener` and run `controller` until SIGTERM / Ctrl-C
/// (SIGHUP requests a reconcile). Returns `Ok` after a graceful shutdown.
pub async fn run_with(controller: Controller, listener: TcpListener) -> Result<(), RuntimeError> {
    run_with_webhook(controller, listener, None).await
}

/// [`run_with`], also serving the push `webhook` receiver (built around
/// [`Controller::git_pull_now`]) when given.
pub async fn run_with_webhook(
    controller: Controller,
    listener: TcpListener,
    webhook: Option<Webhook>,
) -> Result<(), RuntimeError> {
    run_with_ui(controller, listener, webhook, None, Signals::install()?).await
}

/// The process's SIGTERM, SIGINT and SIGHUP handlers. Installed before anything tells
/// the world the process is up: a supervisor's SIGTERM sent as soon as an address is
/// printed must find them, not the default action (which kills with status 15).
/// Signals that arrive before [`run_with_ui`] runs wait in their streams.
pub struct Signals {
    terminate: Signal,
    interrupt: Signal,
    hangup: Signal,
}

impl Signals {
    /// Install the handlers (from here on, these signals no longer kill the process).
    pub fn install() -> Result<Self, RuntimeError> {
        let install = |kind| signal(kind).map_err(RuntimeError::Signals);
        Ok(Self {
            terminate: install(SignalKind::terminate())?,
            interrupt: install(SignalKind::interrupt())?,
            hangup: install(SignalKind::hangup())?,
        })
    }
}

/// [`run_with_webhook`], with the dashboard's actions (`--ui-actions`) when given and
/// `signals` installed by the caller. The dashboard itself ([`crate::server::ui`]) is
/// always served, at `/`.
pub async fn run_with_ui(
    controller: Controller,
    listener: TcpListener,
    webhook: Option<Webhook>,
    actions: Option<Actions>,
    signals: Signals,
) -> Result<(), RuntimeError> {
    let shutdown = controller.shutdown_token();
    let triggers = controller.triggers();
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let Signals { mut terminate, mut interrupt, mut hangup } = signals;
    let forced = CancellationToken::new();
    let signals = {
        let (shutdown, forced) = (shutdown.clone(), forced.clone());
        tokio::spawn(async move {
            loop {
                let name = tokio::select! {
                    _ = terminate.recv() => "SIGTERM",
                    _ = interrupt.recv() => "SIGINT",
                    _ = hangup.recv() => {
                        info!("SIGHUP: reconciling");
                        triggers.send(Trigger::Signal);
                        continue;
                    }
                };
                if shutdown.is_cancelled() {
                    warn!(signal = name, "second signal: stopping now");
                    forced.cancel();
                    return;
                }
                info!(signal = name, "shutting down after the write in flight");
                shutdown.cancel();
            }
        })
    };

    let state = ServerState { status: controller.status(), metrics: controller.metrics() };
    let config = controller.config();
    let limits = ServeLimits {
        max_connections: config.max_connections,
        header_timeout: config.header_timeout,
        shutdown_grace: config.shutdown_grace,
    };
    let ui = Ui { status: controller.status(), actions };
    let mut routes = router(state).merge(ui::routes(ui));
    match webhook {
        Some(hook) => {
            info!(%addr, webhook = hook.path(), "serving the dashboard, /healthz /readyz /status /metrics and the push webhook");
            routes = routes.merge(Arc::new(hook).routes());
        }
        None => info!(%addr, "serving the dashboard, /healthz /readyz /status /metrics"),
    }
    let server = tokio::spawn(serve_router(listener, routes, limits, shutdown.clone().cancelled_owned()));
    let result = tokio::select! {
        result = controller.run() => result,
        _ = forced.cancelled() => Err(RuntimeError::Forced),
    };
    shutdown.cancel();
    signals.abort();
    let served = match server.await {
        Ok(served) => served.map_err(|source| RuntimeError::Server { addr, source }),
        Err(join) => Err(RuntimeError::Server { addr, source: std::io::Error::other(join) }),
    };
    result.and(served)
}
