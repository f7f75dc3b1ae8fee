//! How long until the emulator sees a write, shared by `examples/bench_e2e.rs` and
//! `examples/bench_push.rs` (included with `#[path]`).

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use mesosync::emulator::Sandbox;

/// Time from `t0` to the first PUT or POST in the emulator's request log after its
/// first `before` entries, polled every 2 ms; an error naming `what` after `limit`.
pub async fn first_write_after(
    sandbox: &Sandbox,
    before: usize,
    t0: Instant,
    limit: Duration,
    what: &str,
) -> Result<Duration> {
    loop {
        let log = sandbox.requests();
        if log[before.min(log.len())..].iter().any(|r| r.method == "PUT" || r.method == "POST") {
            return Ok(t0.elapsed());
        }
        ensure!(t0.elapsed() < limit, "{what}: no write within {} s", limit.as_secs());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
