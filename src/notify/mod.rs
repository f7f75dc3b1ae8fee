//! Notifications (`mesosync run --notify …`): what the controller did, told to a
//! generic JSON webhook or a Slack-compatible chat, without anyone watching the logs.
//!
//! - [`event`]: the [`Event`]s and the [`Tracker`] that derives them from finished
//!   reconciles, saying each thing once. Pure.
//! - [`target`]: the `--notify` values ([`Target`]). Pure (the environment and files are
//!   read through a [`target::Lookup`]).
//! - [`payload`]: event → body (generic JSON, Slack text) and the HMAC signature. Pure.
//! - [`deliver`]: the [`Notifier`], one bounded queue and task per target; never blocks
//!   the reconcile.
//!
//! The controller calls [`Notifier::reconciled`] after each reconcile; `cli::run` sends
//! the HA role changes. Setup for receivers: docs/notifications.md.

pub mod deliver;
pub mod event;
pub mod payload;
pub mod target;

pub use deliver::Notifier;
pub use event::{Event, EventKind, Reconciled, Severity, Tracker};
pub use target::{Format, Target};
