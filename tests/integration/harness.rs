//! Shared test harness: a sandbox on 127.0.0.1:0 with short deployments, a reqwest
//! client, and small helpers to call it and read the reference samples.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mesosync::emulator::{self, ChronosVersion, Sandbox, SandboxConfig};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::Value;

/// Deployment duration used by tests: long enough to observe locks, short to wait.
pub const DEPLOYMENT: Duration = Duration::from_millis(150);

/// A running sandbox and a client for it.
pub struct Harness {
    pub sandbox: Sandbox,
    pub http: reqwest::Client,
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Answer {
    /// The body as JSON (panics with the body when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

/// Start a sandbox with the test defaults (Chronos 2.4).
pub async fn start() -> Harness {
    start_with(SandboxConfig { deployment_duration: DEPLOYMENT, ..SandboxConfig::default() }).await
}

/// Start a sandbox serving the given Chronos version.
pub async fn start_chronos(version: ChronosVersion) -> Harness {
    start_with(SandboxConfig {
        chronos_version: version,
        deployment_duration: DEPLOYMENT,
        ..SandboxConfig::default()
    })
    .await
}

/// Start a sandbox with a custom configuration.
pub async fn start_with(config: SandboxConfig) -> Harness {
    let sandbox = emulator::start(config).await.expect("sandbox starts");
    let http = reqwest::Client::builder().user_agent("mesosync-tests").build().expect("client");
    Harness { sandbox, http }
}

/// `mesosync sandbox` on free ports with extra `args`, as a child process (killed on
/// drop); returns it with the Marathon and Chronos URLs it printed.
pub async fn spawn_sandbox(args: &[&str]) -> (tokio::process::Child, String, String) {
    use tokio::io::{AsyncBufReadExt, BufReader};

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mesosync"))
        .args(["sandbox", "--marathon-addr", "127.0.0.1:0", "--chronos-addr", "127.0.0.1:0"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("mesosync sandbox starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut next_url = async |label: &str| -> String {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the sandbox prints its URLs")
            .expect("stdout readable")
            .expect("a line");
        let rest = line.strip_prefix(label).unwrap_or_else(|| panic!("{label} expected, got {line}"));
        rest.split_whitespace().next().expect("a URL").to_owned()
    };
    let marathon = next_url("marathon:").await;
    let chronos = next_url("chronos:").await;
    (child, marathon, chronos)
}

/// The environment variable and path that let the binary decrypt the Kolla example's
/// `manifests/secrets.sops.yaml`: the DEMO age key shipped in `examples/`.
pub fn demo_key_env() -> (&'static str, String) {
    ("MESOSYNC_AGE_KEY_FILE", format!("{}/examples/demo-age-key.txt", env!("CARGO_MANIFEST_DIR")))
}

/// A reference sample from `../shared/reference/` (beside the repository).
pub fn reference(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/reference").join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

impl Harness {
    pub fn marathon(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.marathon_url())
    }

    pub fn chronos(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.chronos_url())
    }

    /// Send a request with an optional raw body.
    pub async fn call(&self, method: Method, url: &str, body: Option<&str>) -> Answer {
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.header("Content-Type", "application/json").body(body.to_owned());
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body read");
        Answer { status, headers, text }
    }

    pub async fn get(&self, url: &str) -> Answer {
        self.call(Method::GET, url, None).await
    }

    pub async fn post(&self, url: &str, body: &Value) -> Answer {
        self.call(Method::POST, url, Some(&body.to_string())).await
    }

    pub async fn put(&self, url: &str, body: &Value) -> Answer {
        self.call(Method::PUT, url, Some(&body.to_string())).await
    }

    pub async fn patch(&self, url: &str, body: &Value) -> Answer {
        self.call(Method::PATCH, url, Some(&body.to_string())).await
    }

    pub async fn delete(&self, url: &str) -> Answer {
        self.call(Method::DELETE, url, None).await
    }

    /// `GET /v2/apps/{id}` → the `app` object.
    pub async fn app(&self, id: &str) -> Value {
        let answer = self.get(&self.marathon(&format!("/v2/apps{id}"))).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        answer.json()["app"].clone()
    }

    /// Wait until `/v2/deployments` is empty (panics after 5 s).
    pub async fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let list = self.get(&self.marathon("/v2/deployments")).await.json();
            if list.as_array().is_some_and(Vec::is_empty) {
                return;
            }
            assert!(Instant::now() < deadline, "deployments did not finish: {list}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
