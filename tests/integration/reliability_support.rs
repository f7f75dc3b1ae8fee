//! Shared by the `reliability_*` modules: an emulator on 127.0.0.1:0, the real
//! `mesosync` binary driven against it with bounded timeouts, and readings of the
//! emulator's request log (what was written, what was deleted).
#![allow(dead_code)]

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use mesosync::emulator::{self, RecordedRequest, Sandbox, SandboxConfig};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_mesosync");

/// A sandbox whose deployments take `deployment`.
pub async fn sandbox(deployment: Duration) -> Sandbox {
    emulator::start(SandboxConfig { deployment_duration: deployment, ..SandboxConfig::default() })
        .await
        .expect("sandbox starts")
}

/// What one run of the binary printed.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Everything printed, for greps.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// A `mesosync` command aimed at the sandbox, with no `MESOSYNC_*` from the outer
/// environment (a developer's settings must not change what a test means).
pub fn command(sb: &Sandbox, sub: &str, dir: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(BIN);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("MESOSYNC_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("NO_COLOR", "1")
        .arg(sub)
        .arg(dir)
        .arg("--marathon")
        .arg(sb.marathon_url())
        .arg("--chronos")
        .arg(sb.chronos_url())
        .arg("--chronos-version")
        .arg("2.4")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Run a command to its end (killed and failed after `limit`).
pub async fn finish(mut cmd: tokio::process::Command, limit: Duration) -> Output {
    let child = cmd.spawn().expect("mesosync starts");
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("mesosync did not finish within {limit:?}"))
        .expect("mesosync output");
    let output = Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    eprintln!("--- exit {}\n{}\n{}", output.code, output.stdout, output.stderr);
    output
}

/// `mesosync <sub> DIR <extra…>` against the sandbox, to its end.
pub async fn mesosync(sb: &Sandbox, sub: &str, dir: &Path, extra: &[&str]) -> Output {
    let mut cmd = command(sb, sub, dir);
    if !extra.contains(&"--request-timeout") {
        cmd.args(["--request-timeout", "2s"]);
    }
    cmd.args(extra);
    finish(cmd, Duration::from_secs(40)).await
}

/// Requests that change something (anything but GET), as `METHOD path status`.
pub fn writes(sb: &Sandbox) -> Vec<String> {
    sb.requests()
        .iter()
        .filter(|r| is_write(r))
        .map(|r| format!("{} {} {}", r.method, r.path, r.status))
        .collect()
}

/// Whether a logged request is a write.
pub fn is_write(r: &RecordedRequest) -> bool {
    r.method != "GET" && r.method != "HEAD"
}

/// Logged requests with this method.
pub fn count(sb: &Sandbox, method: &str, status: Option<u16>) -> usize {
    sb.requests().iter().filter(|r| r.method == method && status.is_none_or(|s| r.status == s)).count()
}

/// A Marathon app manifest owned by nobody but the manifests.
pub fn app_yaml(id: &str, instances: u32) -> String {
    format!(
        "---\nkind: MarathonApp\nspec:\n  id: {id}\n  cmd: sleep 1000\n  cpus: 0.1\n  mem: 32\n  instances: {instances}\n"
    )
}

/// A scheduled Chronos job manifest.
pub fn job_yaml(name: &str) -> String {
    format!(
        "---\nkind: ChronosJob\nspec:\n  name: {name}\n  command: \"true\"\n  owner: ops@example.org\n  schedule: R/2030-01-01T00:00:00Z/PT1H\n"
    )
}

/// Write `apps` apps `/rel/app-<i>` into `dir/apps.yaml`.
pub fn write_apps(dir: &Path, apps: usize) {
    let text: String = (0..apps).map(|i| app_yaml(&format!("/rel/app-{i}"), 1)).collect();
    std::fs::write(dir.join("apps.yaml"), text).unwrap();
}

/// Ids of the live Marathon apps (straight from the emulator's API).
pub async fn live_app_ids(sb: &Sandbox) -> Vec<String> {
    let body: serde_json::Value = reqwest::get(format!("{}/v2/apps", sb.marathon_url()))
        .await
        .expect("GET /v2/apps")
        .json()
        .await
        .expect("apps JSON");
    let mut ids: Vec<String> = body["apps"]
        .as_array()
        .expect("apps array")
        .iter()
        .filter_map(|a| a["id"].as_str().map(String::from))
        .collect();
    ids.sort();
    ids
}

/// Names of the live Chronos jobs (2.x paths).
pub async fn live_job_names(sb: &Sandbox) -> Vec<String> {
    let body: serde_json::Value = reqwest::get(format!("{}/scheduler/jobs", sb.chronos_url()))
        .await
        .expect("GET jobs")
        .json()
        .await
        .expect("jobs JSON");
    let mut names: Vec<String> =
        body.as_array().expect("jobs").iter().filter_map(|j| j["name"].as_str().map(String::from)).collect();
    names.sort();
    names
}

/// Poll `check` every 50 ms until it holds (panics with `what` after `limit`).
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A running `mesosync run` and the address of its status server.
pub struct Controller {
    pub child: tokio::process::Child,
    pub base: String,
    stderr: tokio::task::JoinHandle<String>,
    stdout: tokio::task::JoinHandle<String>,
}

/// Start `mesosync run DIR` against the sandbox on 127.0.0.1:0 and wait for its
/// status URL ("status at http://ADDR/status").
pub async fn start_controller(sb: &Sandbox, dir: &Path, extra: &[&str], envs: &[(&str, &str)]) -> Controller {
    let mut cmd = command(sb, "run", dir);
    cmd.args(["--listen", "127.0.0.1:0", "--debounce", "100ms"]).args(extra);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    spawn_controller(cmd).await
}

/// [`start_controller`] under a shell's `ulimit` (e.g. `-n 128`, `-v 2000000`), so a
/// test of resource exhaustion is bounded by the kernel, not by the machine.
pub async fn start_limited_controller(sb: &Sandbox, dir: &Path, ulimit: &str, extra: &[&str]) -> Controller {
    let inner = command(sb, "run", dir);
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c").arg(format!("ulimit {ulimit} && exec \"$0\" \"$@\"")).arg(inner.as_std().get_program());
    cmd.args(inner.as_std().get_args());
    for (key, value) in inner.as_std().get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    cmd.args(["--listen", "127.0.0.1:0", "--debounce", "100ms"]).args(extra);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    spawn_controller(cmd).await
}

async fn spawn_controller(mut cmd: tokio::process::Command) -> Controller {
    let mut child = cmd.spawn().expect("mesosync run starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut seen = String::new();
    let base = tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(Some(line)) = lines.next_line().await {
            seen.push_str(&line);
            seen.push('\n');
            if let Some(rest) = line.split("status at http://").nth(1) {
                let addr = rest.split('/').next().unwrap_or_default();
                return format!("http://{addr}");
            }
        }
        panic!("mesosync run ended before printing its status URL: {seen}");
    })
    .await
    .expect("status URL printed within 20 s");
    let stdout = tokio::spawn(async move {
        let mut rest = seen;
        while let Ok(Some(line)) = lines.next_line().await {
            rest.push_str(&line);
            rest.push('\n');
        }
        rest
    });
    let mut err = child.stderr.take().expect("stderr");
    let stderr = tokio::spawn(async move {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text).await;
        text
    });
    Controller { child, base, stderr, stdout }
}

impl Controller {
    /// `GET /status` as JSON.
    pub async fn status(&self) -> serde_json::Value {
        reqwest::get(format!("{}/status", self.base))
            .await
            .expect("GET /status")
            .json()
            .await
            .expect("status JSON")
    }

    /// `GET <path>` as text.
    pub async fn text(&self, path: &str) -> String {
        reqwest::get(format!("{}{path}", self.base)).await.expect("GET").text().await.expect("text")
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, wait (bounded), and return (exit code, stdout, stderr).
    pub async fn stop(mut self) -> Output {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
        }
        let status = match tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await {
            Ok(s) => s.expect("wait"),
            Err(_) => {
                let _ = self.child.kill().await;
                panic!("mesosync run did not stop within 15 s of SIGTERM");
            }
        };
        let output = Output {
            code: status.code().unwrap_or(-1),
            stdout: self.stdout.await.unwrap_or_default(),
            stderr: self.stderr.await.unwrap_or_default(),
        };
        eprintln!("--- controller exit {}\n{}\n{}", output.code, output.stdout, output.stderr);
        output
    }
}
