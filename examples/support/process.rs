//! A child process the benchmarks start (`mesosync run`) and must not leave behind,
//! shared by `examples/bench_e2e.rs` and `examples/bench_push.rs` (included with
//! `#[path]`).

use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Stops its child when dropped: SIGTERM (a graceful stop, as systemd does), SIGKILL
/// after 10 s.
pub struct StopOnDrop(pub Child);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
