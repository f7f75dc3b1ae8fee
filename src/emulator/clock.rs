//! The emulated clock: wall-clock time plus an offset that tests move forward through
//! the control API, so Chronos "runs" happen without sleeping. Marathon versions are
//! minted from it too. It never goes backwards.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

const MAX_OFFSET_MS: i64 = 1000 * 366 * 24 * 3600 * 1000;

/// Wall-clock time shifted by an offset that only grows.
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    /// The emulated "now".
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }

    /// Move the clock forward (at most 1000 years in all, so date arithmetic stays in
    /// range).
    pub fn advance(&self, by: Duration) {
        let millis = i64::try_from(by.as_millis()).unwrap_or(MAX_OFFSET_MS);
        let _ = self.offset_ms.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |offset| {
            Some(offset.saturating_add(millis).min(MAX_OFFSET_MS))
        });
    }
}

/// Format an instant the way both Marathon and Chronos (Joda) print it:
/// `2030-01-01T01:00:00.000Z`.
pub fn iso_millis(instant: DateTime<Utc>) -> String {
    instant.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}
