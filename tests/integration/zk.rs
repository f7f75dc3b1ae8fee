//! A throwaway ZooKeeper server for tests (Debian's `zookeeper` package, installed by
//! `make test-deps`, started by `scripts/zookeeper.sh` on a free loopback port with a
//! temp data dir), shared by the election tests and the end-to-end HA tests. Without
//! ZooKeeper these tests fail under CI and say SKIPPED elsewhere (see `requires`).
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use mesosync::ha::ZkUrl;

use super::requires;

pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/zookeeper.sh")
}

/// Whether ZooKeeper can run here (`scripts/zookeeper.sh available`). Nothing is
/// installed here: `make test-deps` does that.
pub fn zookeeper_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        Command::new("bash")
            .arg(script())
            .arg("available")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// A throwaway ZooKeeper server; killed on drop (and, via ZK_OWNER_PID, when the test
/// process dies).
pub struct ZkServer {
    dir: tempfile::TempDir,
    port: u16,
}

impl ZkServer {
    /// Starts one. Without ZooKeeper installed: None after [`requires::missing`] (a
    /// failure under CI, a SKIPPED line elsewhere). Installed but not starting: a failure.
    pub fn start(test: &str) -> Option<ZkServer> {
        if !zookeeper_available() {
            requires::missing(
                test,
                "ZooKeeper is not installed (Debian's zookeeper package and java)",
                "`make test-deps` (scripts/zookeeper.sh install, as root)",
            );
            return None;
        }
        let mut server = ZkServer { dir: tempfile::tempdir().expect("tempdir"), port: 0 };
        for _ in 0..3 {
            // A port free a moment ago; another process may take it first, hence the retries.
            server.port = free_port();
            if server.run_script("start") {
                return Some(server);
            }
            server.run_script("stop");
        }
        panic!("{test}: ZooKeeper is installed but did not start (its log is above)");
    }

    fn run_script(&self, verb: &str) -> bool {
        let mut cmd = Command::new("bash");
        cmd.arg(script()).arg(verb).arg(self.dir.path());
        if verb == "start" {
            cmd.arg(self.port.to_string()).env("ZK_OWNER_PID", std::process::id().to_string());
        }
        let ok = cmd.stdin(Stdio::null()).status().is_ok_and(|s| s.success());
        if !ok && verb == "start" {
            if let Ok(log) = std::fs::read_to_string(self.dir.path().join("zookeeper.log")) {
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                eprintln!("zookeeper.log (last lines, newest first):\n{}", tail.join("\n"));
            }
        }
        ok
    }

    /// SIGKILL, as a crash or a lost ensemble.
    pub fn stop(&self) {
        assert!(self.run_script("stop"), "zookeeper.sh stop failed");
    }

    /// Same port, same data dir.
    pub fn restart(&self) {
        // The killed JVM may hold the port for a moment longer.
        for _ in 0..5 {
            if self.run_script("start") {
                return;
            }
            self.run_script("stop");
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!("zookeeper.sh start (restart) failed");
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self, root: &str) -> ZkUrl {
        format!("zk://{}{root}", self.address()).parse().unwrap()
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(script()).arg("stop").arg(self.dir.path()).status();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
