//! The continuous controller (`mesosync run`): triggers → scheduler → reconcile →
//! requeue, in the manner of kube-runtime.
//!
//! - [`triggers`]: debounced file events on the manifest directory, a live-change
//!   stream (Marathon's `/v2/events`), `--git-pull`; SIGHUP in [`crate::daemon`].
//! - [`scheduler`]: collapses triggers, debounces bursts, keeps the resync deadline and
//!   per-object retries ([`backoff`]). Pure; tested with plain instants.
//! - [`controller`]: the loop. One reconcile at a time, through the [`Reconcile`] trait,
//!   which the real pipeline implements; the loop never looks inside.
//! - [`crate::status`] (a leaf, not part of this module): the contract of a reconcile,
//!   the status and the metrics the controller writes and the HTTP server
//!   ([`crate::server`]) reads. [`crate::daemon`] runs the two together.
//! - [`git`]: the revision of the manifest checkout and the self-pull.
//!
//! This module owns timers, file watching and child processes (`git`); it
//! makes no HTTP calls to Marathon or Chronos itself.
//!
//! # Wiring (what `mesosync run` does, without HA and the sandbox)
//!
//! ```rust,no_run
//! use std::sync::Arc;
//!
//! use futures::StreamExt;
//! use mesosync::client::{Clients, HttpConfig, MarathonClient};
//! use mesosync::daemon;
//! use mesosync::reconcile::Pipeline;
//! use mesosync::runtime::{self, Controller, LogFormat, RuntimeConfig};
//!
//! # async fn wire() -> Result<(), Box<dyn std::error::Error>> {
//! runtime::init_logging(LogFormat::Json)?;
//! let marathon = MarathonClient::new(&HttpConfig::new(["http://127.0.0.1:8080"]))?;
//! // The real pipeline implements `Reconcile`.
//! let pipeline = Pipeline {
//!     dir: "manifests".into(),
//!     load: Default::default(),
//!     clients: Clients { marathon: Some(marathon.clone()), chronos: None },
//!     plan: Default::default(),
//!     apply: Default::default(),
//!     on_revision: None,
//!     caches: Default::default(),
//! };
//! let config = RuntimeConfig::new("manifests");
//! let listener = tokio::net::TcpListener::bind(config.listen).await?;
//! let controller = Controller::new(config, Arc::new(pipeline))
//!     // Each (re)connection is a fresh stream; every event means "something changed".
//!     .with_live_events(move || {
//!         let marathon = marathon.clone();
//!         futures::stream::once(async move { marathon.events(&["api_post_event"]).await })
//!             .flat_map(|connected| match connected {
//!                 Ok(events) => events.map(|_| ()).boxed(),
//!                 Err(_) => futures::stream::empty().boxed(),
//!             })
//!     });
//! daemon::run_with(controller, listener).await?; // Ok after SIGTERM: exit 0
//! # Ok(())
//! # }
//! ```
//!
//! # When a reconcile runs
//!
//! | trigger | due |
//! |---|---|
//! | startup, SIGHUP | at once |
//! | file change, live event, git pull | after `--debounce` (300 ms) of quiet, at most 5 s after the first |
//! | resync | `--resync` (60 s) after the end of the last reconcile, whatever started it |
//! | retry of a failed object | transient failure ([`Requeue::Backoff`]): per-object backoff, 1 s, 2 s, 4 s … up to 5 min, up to 10 % shorter at random |
//! | retry after a failed list | the same backoff, for the reconcile as a whole |
//! | retry after a permanent failure ([`Requeue::AwaitChange`]: manifests that do not load, a 422) | with the next file change, git pull, SIGHUP or leadership, else the resync |
//!
//! Everything due together, or arriving while a reconcile runs, collapses into the next
//! one, whose [`ReconcileContext::reasons`] lists every reason. A debounce still in its
//! quiet period is not cut short by a timer (a half-written checkout is not read).
//!
//! # Per-object backoff inside a whole-directory reconcile
//!
//! Every reconcile covers every object, so "per-object" backoff works through the
//! context: objects whose retry is not due are listed in
//! [`ReconcileContext::backing_off`], and the reconcile should not write them (report
//! them [`ObjectState::Skipped`]). Healthy objects are never delayed by a failing one.
//! After a reconcile: a `Failed` object whose retry was due (or that was not failing)
//! counts one more failure; `Failed` while still backing off keeps its schedule;
//! `Skipped` keeps its count (re-armed if it was due); any other state, or absence from
//! the report, forgets it.
//!
//! # Files, git, live events
//!
//! - File events count only for paths the loader could read: `*.yaml`, `*.yml`,
//!   `*.json` and directories, outside hidden directories (`.git`) and not hidden or
//!   backup files (`.x.swp`, `x~`). Reads are ignored, so the loader's own reads never
//!   trigger the next reconcile.
//! - A reconcile is keyed on its input: the manifest set's fingerprint
//!   ([`Reconcile::input_fingerprint`]: paths, bytes, template values;
//!   [`ReconcileReport::input`] says what it loaded) and the checkout's revision. When
//!   only file events and git pulls ask for a reconcile and the key is the one the last
//!   (successful) reconcile loaded, they changed nothing — `--git-pull`'s fast-forward
//!   seen twice (its file events and its trigger, in either order), a file saved with
//!   the same bytes — and are dropped: no reconcile, or one for the other reasons alone
//!   (counted in `mesosync_unchanged_input_total`). To reconcile the same input again,
//!   send SIGHUP (or use the dashboard's "reconcile now"): touching a file does not.
//! - The git revision is read before every reconcile (`rev-parse HEAD`,
//!   `--no-optional-locks status --porcelain -- .`): dirtiness counts only the manifest
//!   directory. A directory with no `.git` above it costs no process.
//! - `--git-pull BRANCH` runs `git fetch origin BRANCH` and `git merge --ff-only
//!   FETCH_HEAD` in the checkout (whatever branch is checked out) every
//!   `--git-interval`, first at start, and at once when the push webhook calls
//!   [`Controller::git_pull_now`] (a burst collapses into one fetch). A diverged or
//!   conflicting checkout is reported (logs, `/status` `last_errors`), never reset.
//! - Each item of the live stream requests a reconcile; the stream ending is a
//!   disconnect, retried with backoff (1 s … 60 s, reset after a connection that lasted
//!   30 s). Events caused by mesosync's own writes come back too: filter them in the
//!   mapping from Marathon events if the extra no-op reconcile matters.
//!
//! # Readiness and shutdown
//!
//! `/readyz` turns ready after the first reconcile that returned a report (it loaded the
//! manifests and listed live state), and stays ready unless the controller is stuck:
//! a reconcile runs as its own task and is abandoned (reported as failed, retried with
//! backoff) at `--reconcile-timeout`; from then until a reconcile finishes again, and
//! while one has been running longer than that, `/readyz` answers 503.
//!
//! SIGTERM or Ctrl-C cancels the [`ReconcileContext::cancel`] token; the
//! reconcile finishes the write in flight and returns, the loop stops, the server
//! drains, and [`crate::daemon::run`] returns `Ok` (exit 0). Whatever runs, the reconcile is
//! abandoned `--shutdown-grace` after the signal and open HTTP requests get as long
//! again, so the process exits in bounded time. A second signal abandons the reconcile
//! and returns [`RuntimeError::Forced`].

pub mod backoff;
pub mod config;
pub mod controller;
pub mod git;
pub mod logging;
pub mod scheduler;
pub mod triggers;

pub use backoff::Backoff;
pub use config::{GitPullConfig, LogFormat, RuntimeConfig};
pub use controller::{Controller, RuntimeError};
pub use logging::init_logging;
// The contract of a reconcile, the status and the metrics live in `crate::status` (a
// leaf the HTTP server reads too); re-exported here, where the controller is used.
pub use crate::status::{
    ApiError, AppliedWrite, BoxFuture, FailureStage, FnReconcile, GitRevision, InputFingerprint, Metrics,
    ObjectState, OutcomeKind, PruneRefused, Reconcile, ReconcileContext, ReconcileFailure, ReconcileOutcome,
    ReconcileReport, Requeue, Status, StatusStore, Trigger,
};
pub use tokio_util::sync::CancellationToken;
pub use triggers::{LastFileEvent, TriggerSender};
