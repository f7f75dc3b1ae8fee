//! The continuous controller: triggers, scheduler, backoff and the reconcile loop.
//! (Filled by issue #7.)
