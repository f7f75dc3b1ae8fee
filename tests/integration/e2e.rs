//! End to end through the real binary: `mesosync apply`, `diff` and `run` against the
//! emulator over HTTP on 127.0.0.1, with the shipped Kolla manifests.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mesosync::emulator::RecordedRequest;
use serde_json::Value;

use super::harness::{self, Harness};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_mesosync")
}

/// A copy of `manifests/` in a temp dir, to edit.
pub fn manifests_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests"), dir.path());
    dir
}

/// Copy the directory tree `from` to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// In `values.yaml`, set `resources.<name>.<field>` (written as `name: {field: v, …}`).
pub fn set_resource(dir: &Path, name: &str, field: &str, value: &str) {
    let path = dir.join("values.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut found = 0;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            if line.trim_start().starts_with(&format!("{name}:")) && line.contains(&format!("{field}: ")) {
                found += 1;
                let start = line.find(&format!("{field}: ")).unwrap() + field.len() + 2;
                let end = start + line[start..].find([',', '}']).unwrap();
                format!("{}{value}{}", &line[..start], &line[end..])
            } else {
                line.to_string()
            }
        })
        .collect();
    assert_eq!(found, 1, "resources.{name}.{field} in values.yaml");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
}

/// Run a one-shot command against the harness: (exit code, stdout, stderr).
pub fn mesosync(h: &Harness, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .args(["--marathon", &h.sandbox.marathon_url(), "--chronos", &h.sandbox.chronos_url()])
        .env("NO_COLOR", "1")
        .env(harness::demo_key_env().0, harness::demo_key_env().1)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn writes(log: &[RecordedRequest]) -> Vec<&RecordedRequest> {
    log.iter().filter(|r| r.method != "GET" && !r.path.starts_with("/_sandbox")).collect()
}

fn summary_line(stdout: &str) -> &str {
    stdout.lines().rev().find(|l| l.contains(" to create, ")).unwrap_or_default()
}

async fn apply_manifests(h: &Harness, dir: &Path) {
    let (code, stdout, stderr) =
        tokio::task::block_in_place(|| mesosync(h, &["apply", dir.to_str().unwrap()]));
    assert_eq!(code, 0, "apply failed:\n{stdout}\n{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn fresh_cluster_apply_converges_and_a_second_apply_writes_nothing() {
    let h = harness::start().await;
    let dir = manifests_copy();
    apply_manifests(&h, dir.path()).await;
    let apps: Value = h.http.get(h.marathon("/v2/apps")).send().await.unwrap().json().await.unwrap();
    assert_eq!(apps["apps"].as_array().unwrap().len(), 20);
    let jobs: Value = h.http.get(h.chronos("/scheduler/jobs")).send().await.unwrap().json().await.unwrap();
    assert_eq!(jobs.as_array().unwrap().len(), 12);
    // Every created app carries the ownership mark, every job the description marker.
    assert!(apps["apps"].as_array().unwrap().iter().all(|a| a["labels"]["MESOSYNC_OWNER"] == "mesosync"));
    assert!(
        jobs.as_array()
            .unwrap()
            .iter()
            .all(|j| j["description"].as_str().unwrap().contains("[mesosync:mesosync]"))
    );

    h.sandbox.reset_requests();
    let (code, stdout, stderr) = tokio::task::block_in_place(|| {
        mesosync(&h, &["diff", dir.path().to_str().unwrap(), "--chronos-version", "2.4"])
    });
    assert_eq!(code, 0, "diff after apply must be empty:\n{stdout}\n{stderr}");
    assert_eq!(summary_line(&stdout), "0 to create, 0 to update (0 restart), 0 to scale, 0 to delete");
    let log = h.sandbox.requests();
    // One GET per system, plus Chronos's run states (for health: the job listing does
    // not say which job is running).
    // (Marathon and Chronos are listed at once: in either order.)
    let mut seen: Vec<String> = log.iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    seen.sort();
    assert_eq!(
        seen,
        ["GET /scheduler/graph/csv", "GET /scheduler/jobs", "GET /v2/apps"],
        "a no-op diff costs one GET per system and one for run states: {log:?}"
    );
    let apps = log.iter().find(|r| r.path == "/v2/apps").unwrap();
    assert_eq!(apps.query, "embed=apps.lastTaskFailure");

    h.sandbox.reset_requests();
    let (code, stdout, _) = tokio::task::block_in_place(|| {
        mesosync(&h, &["apply", dir.path().to_str().unwrap(), "--chronos-version", "2.4"])
    });
    assert_eq!(code, 0);
    let log = h.sandbox.requests();
    assert!(writes(&log).is_empty(), "second apply wrote: {:?}", writes(&log));
    assert_eq!(log.len(), 3, "{log:?}");
    assert!(stdout.contains("0 to create, 0 to update (0 restart), 0 to scale, 0 to delete"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn diff_shows_exactly_the_edited_field_and_exits_2() {
    let h = harness::start().await;
    let dir = manifests_copy();
    apply_manifests(&h, dir.path()).await;
    set_resource(dir.path(), "keystone_api", "mem", "768");
    let (code, stdout, stderr) = tokio::task::block_in_place(|| {
        mesosync(&h, &["diff", dir.path().to_str().unwrap(), "--output", "json"])
    });
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    let changed: Vec<&Value> =
        plan["actions"].as_array().unwrap().iter().filter(|a| a["action"] != "noop").collect();
    assert_eq!(changed.len(), 1, "{changed:#?}");
    let action = changed[0];
    assert_eq!(action["object"]["id"], "/openstack/keystone/keystone-api");
    assert_eq!(action["action"], "update");
    assert_eq!(action["impact"], "restart");
    let changes = action["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert_eq!(changes[0]["pointer"], "/mem");
    assert_eq!(changes[0]["old"], 512);
    assert_eq!(changes[0]["new"], 768);
    // Text form: the field, its template line, and the summary.
    let (code, text, _) =
        tokio::task::block_in_place(|| mesosync(&h, &["diff", dir.path().to_str().unwrap()]));
    assert_eq!(code, 2);
    assert!(text.contains("/mem"), "{text}");
    assert!(text.contains("keystone/keystone-api.yaml.j2:"), "{text}");
    assert_eq!(summary_line(&text), "0 to create, 1 to update (1 restart), 0 to scale, 0 to delete");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scale_only_edit_is_one_put_and_keeps_last_config_change() {
    let h = harness::start().await;
    let dir = manifests_copy();
    apply_manifests(&h, dir.path()).await;
    let url = h.marathon("/v2/apps/openstack/infra/memcached");
    let before: Value = h.http.get(&url).send().await.unwrap().json().await.unwrap();
    set_resource(dir.path(), "memcached", "instances", "3");
    h.sandbox.reset_requests();
    let (code, stdout, stderr) =
        tokio::task::block_in_place(|| mesosync(&h, &["apply", dir.path().to_str().unwrap()]));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("0 to create, 0 to update (0 restart), 1 to scale, 0 to delete"), "{stdout}");
    let log = h.sandbox.requests();
    let w = writes(&log);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!((w[0].method.as_str(), w[0].path.as_str()), ("PUT", "/v2/apps/openstack/infra/memcached"));
    let after: Value = h.http.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(after["app"]["instances"], 3);
    assert_eq!(
        after["app"]["versionInfo"]["lastConfigChangeAt"],
        before["app"]["versionInfo"]["lastConfigChangeAt"]
    );
    assert_ne!(after["app"]["versionInfo"]["lastScalingAt"], before["app"]["versionInfo"]["lastScalingAt"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_plan_is_refused_when_live_moved() {
    let h = harness::start().await;
    let dir = manifests_copy();
    apply_manifests(&h, dir.path()).await;
    set_resource(dir.path(), "keystone_api", "mem", "640");
    let plans = tempfile::tempdir().unwrap();
    let plan = plans.path().join("plan.json");
    let plan_arg = plan.to_str().unwrap().to_string();
    let (code, _, _) = tokio::task::block_in_place(|| {
        mesosync(&h, &["diff", dir.path().to_str().unwrap(), "--out", &plan_arg])
    });
    assert_eq!(code, 2);
    // Someone scales keystone by hand: the plan no longer matches live.
    let url = h.marathon("/v2/apps/openstack/keystone/keystone-api");
    let put = h.http.put(&url).json(&serde_json::json!({"instances": 2})).send().await.unwrap();
    assert!(put.status().is_success());
    harness_settle(&h).await;
    h.sandbox.reset_requests();
    let (code, _, stderr) = tokio::task::block_in_place(|| {
        mesosync(&h, &["apply", dir.path().to_str().unwrap(), "--plan", &plan_arg])
    });
    assert_eq!(code, 1);
    assert!(stderr.contains("refusing the saved plan"), "{stderr}");
    assert!(writes(&h.sandbox.requests()).is_empty());
    // A fresh plan applies.
    let (code, stdout, stderr) = tokio::task::block_in_place(|| {
        mesosync(&h, &["diff", dir.path().to_str().unwrap(), "--out", &plan_arg])
    });
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    let (code, stdout, stderr) = tokio::task::block_in_place(|| {
        mesosync(&h, &["apply", dir.path().to_str().unwrap(), "--plan", &plan_arg])
    });
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let app: Value = h.http.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(app["app"]["mem"], 640.0);
}

async fn harness_settle(h: &Harness) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let list: Value =
            h.http.get(h.marathon("/v2/deployments")).send().await.unwrap().json().await.unwrap();
        if list.as_array().is_some_and(|a| a.is_empty()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("deployments did not settle");
}

/// A `mesosync run` process; killed on drop.
pub struct Controller {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub status_base: String,
}

impl Controller {
    /// Start `mesosync run DIR` with fast timers, and wait until it says where /status is.
    pub fn start(h: &Harness, dir: &Path, extra: &[&str]) -> Controller {
        Self::start_with_env(h, dir, extra, &[])
    }

    /// [`start`](Self::start) with extra environment variables.
    pub fn start_with_env(h: &Harness, dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Controller {
        let mut child = Command::new(bin())
            .env(harness::demo_key_env().0, harness::demo_key_env().1)
            .envs(env.iter().copied())
            .arg("run")
            .arg(dir)
            .args(["--marathon", &h.sandbox.marathon_url(), "--chronos", &h.sandbox.chronos_url()])
            .args([
                "--listen",
                "127.0.0.1:0",
                "--debounce",
                "100ms",
                "--resync",
                "30s",
                "--log-format",
                "json",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let status_base = loop {
            let line = lines.next().expect("run printed its status address").unwrap();
            if let Some(rest) = line.split("status at ").nth(1) {
                break rest.split("/status").next().unwrap().to_string();
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Controller { child, status_base }
    }

    /// GET /status.
    pub async fn status(&self) -> Value {
        reqwest::get(format!("{}/status", self.status_base)).await.unwrap().json().await.unwrap()
    }

    /// GET /metrics.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.status_base)).await.unwrap().text().await.unwrap()
    }

    /// Wait (bounded) until /status satisfies `cond`.
    pub async fn wait_status(&self, what: &str, mut cond: impl FnMut(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = self.status().await;
            if cond(&status) {
                return status;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {status:#}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, and the exit code.
    pub fn terminate(mut self) -> (Option<i32>, String) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut stderr = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
                }
                return (status.code(), stderr);
            }
            assert!(Instant::now() < deadline, "mesosync run did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn last_outcome(status: &Value) -> Option<&str> {
    status["last_reconcile"]["outcome"].as_str()
}

/// The app as Marathon reports it.
async fn app(h: &Harness, id: &str) -> Value {
    let v: Value =
        h.http.get(h.marathon(&format!("/v2/apps{id}"))).send().await.unwrap().json().await.unwrap();
    v["app"].clone()
}

async fn wait_app(h: &Harness, id: &str, what: &str, mut cond: impl FnMut(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let a = app(h, id).await;
        if cond(&a) {
            return a;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {a:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn run_converges_edits_reverts_drift_and_exits_cleanly_on_sigterm() {
    let h = harness::start().await;
    let dir = manifests_copy();
    let controller = Controller::start(&h, dir.path(), &[]);
    let status = controller
        .wait_status("the first reconcile to converge", |s| {
            s["ready"] == true
                && s["objects"].as_array().is_some_and(|o| o.len() == 32)
                && s["objects"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|o| o["state"]["state"] == "synced" || o["state"] == "synced")
        })
        .await;
    assert!(last_outcome(&status).is_some(), "{status:#}");

    // An edit lands.
    let id = "/openstack/horizon/horizon";
    set_resource(dir.path(), "horizon", "cpus", "0.4");
    wait_app(&h, id, "the edit to land", |a| a["cpus"] == 0.4).await;

    // A change made by hand is reverted after the event stream reports it.
    let put = h
        .http
        .put(h.marathon(&format!("/v2/apps{id}?force=true")))
        .json(&serde_json::json!({"cmd": "sleep 1000"}))
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success());
    wait_app(&h, id, "the manual change to be reverted", |a| a.get("cmd").is_none() && a["cpus"] == 0.4)
        .await;

    let metrics = controller.metrics().await;
    assert!(metrics.contains("mesosync_reconciles_total{outcome=\"success\"}"), "{metrics}");
    let (code, stderr) = controller.terminate();
    assert_eq!(code, Some(0), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn run_dry_run_reports_drift_and_never_writes() {
    let h = harness::start().await;
    let dir = manifests_copy();
    let controller = Controller::start(&h, dir.path(), &["--dry-run"]);
    let status = controller
        .wait_status("a dry-run reconcile", |s| {
            s["ready"] == true && s["objects"].as_array().is_some_and(|o| o.len() == 32)
        })
        .await;
    assert_eq!(status["dry_run"], true);
    let drifted =
        status["objects"].as_array().unwrap().iter().filter(|o| o.to_string().contains("drifted")).count();
    assert_eq!(drifted, 32, "{status:#}");
    let metrics = controller.metrics().await;
    assert!(
        metrics.lines().any(|l| l.starts_with("mesosync_drifted_objects") && l.ends_with(" 32")),
        "{metrics}"
    );
    // Edits are reconciled (and reported) too, still without a write.
    set_resource(dir.path(), "horizon", "cpus", "0.4");
    controller.wait_status("a second reconcile", |s| s["reconciles"].as_u64() >= Some(2)).await;
    let log = h.sandbox.requests();
    assert!(writes(&log).is_empty(), "dry-run wrote: {:?}", writes(&log));
    let (code, _) = controller.terminate();
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_refuses_to_write_the_import_placeholder_over_secrets() {
    let h = harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("app.yaml"),
        "kind: MarathonApp\nspec:\n  id: /imported/db\n  cmd: sleep 100\n  env: {DB_PASSWORD: CHANGE-ME, MODE: prod}\n",
    )
    .unwrap();
    let (code, stdout, stderr) =
        tokio::task::block_in_place(|| mesosync(&h, &["apply", dir.path().to_str().unwrap()]));
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stderr.contains("refusing to write the placeholder `CHANGE-ME`"), "{stderr}");
    assert!(stderr.contains("app /imported/db /env/DB_PASSWORD"), "{stderr}");
    assert!(writes(&h.sandbox.requests()).is_empty());
    // diff still shows the plan (the value masked) and exits 2.
    let (code, stdout, _) =
        tokio::task::block_in_place(|| mesosync(&h, &["diff", dir.path().to_str().unwrap()]));
    assert_eq!(code, 2);
    assert!(!stdout.contains("CHANGE-ME"), "{stdout}");
}

/// Regression: the controller decided "suspended" by looking for the word in the plan's
/// note, so an app owned by an instance named `suspended-ops` (the note names the
/// owner) was reported suspended instead of drifted.
#[tokio::test(flavor = "multi_thread")]
async fn an_app_owned_by_an_instance_named_suspended_is_drifted_not_suspended() {
    let h = harness::start().await;
    let created = h
        .post(
            &h.marathon("/v2/apps"),
            &serde_json::json!({"id": "/theirs/web", "cmd": "sleep 100", "cpus": 0.1, "mem": 32,
                "labels": {"MESOSYNC_OWNER": "suspended-ops"}}),
        )
        .await;
    assert!(created.status.is_success(), "{}", created.text);
    h.settle().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("web.yaml"),
        "kind: MarathonApp\nspec:\n  id: /theirs/web\n  cmd: sleep 200\n  cpus: 0.1\n  mem: 32\n",
    )
    .unwrap();
    h.sandbox.reset_requests();
    let controller = Controller::start(&h, dir.path(), &[]);
    let status = controller.wait_status("the first reconcile", |s| s["ready"] == true).await;
    let web = status["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == "/theirs/web")
        .unwrap_or_else(|| panic!("{status:#}"))
        .clone();
    assert_eq!(web["state"], "drifted", "{status:#}");
    assert!(writes(&h.sandbox.requests()).is_empty(), "another instance's app was written");
    let (code, _) = controller.terminate();
    assert_eq!(code, Some(0));
}

/// The error policy through the binary: a 422 is permanent, so it is not retried on a
/// backoff timer (its retry is the resync, 30 s here, not 1 s later) but by the next
/// change of the manifests; a 503 is retried on its own.
#[tokio::test(flavor = "multi_thread")]
async fn a_422_waits_for_a_manifest_change_while_a_503_backs_off() {
    use mesosync::emulator::{FaultRule, System};
    let h = harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = |cmd: &str| {
        format!("kind: MarathonApp\nspec:\n  id: /it/web\n  cmd: {cmd}\n  cpus: 0.1\n  mem: 32\n")
    };
    std::fs::write(dir.path().join("web.yaml"), manifest("sleep 100")).unwrap();
    let rule = |status: u16| FaultRule {
        system: Some(System::Marathon),
        method: Some("POST".into()),
        path_prefix: "/v2/apps".into(),
        error_rate: 1.0,
        error_status: Some(status),
        ..FaultRule::default()
    };
    h.sandbox.faults().add(rule(422));
    let controller = Controller::start(&h, dir.path(), &[]);
    let web =
        |s: &Value| s["objects"].as_array().and_then(|o| o.iter().find(|o| o["id"] == "/it/web")).cloned();
    let status = controller.wait_status("the 422", |s| web(s).is_some_and(|w| w["state"] == "failed")).await;
    let failed = web(&status).unwrap();
    assert_eq!(failed["requeue"], "await-change", "{status:#}");
    let finished =
        chrono::DateTime::parse_from_rfc3339(status["last_reconcile"]["finished_at"].as_str().unwrap())
            .unwrap();
    let retry_at = chrono::DateTime::parse_from_rfc3339(failed["retry"]["at"].as_str().unwrap()).unwrap();
    assert!(
        retry_at - finished >= chrono::Duration::seconds(25),
        "retried at the resync, not on a timer: {status:#}"
    );

    // The API now answers 503 and the manifest changes: the edit retries it at once, and
    // the 503 is transient, so it backs off.
    h.sandbox.faults().clear();
    h.sandbox.faults().add(rule(503));
    std::fs::write(dir.path().join("web.yaml"), manifest("sleep 200")).unwrap();
    let status =
        controller.wait_status("the 503", |s| web(s).is_some_and(|w| w["requeue"] == "backoff")).await;
    assert_eq!(web(&status).unwrap()["state"], "failed");

    // Once the API accepts it, a backoff retry creates it with no further edit.
    h.sandbox.faults().clear();
    controller
        .wait_status("the retry to create it", |s| web(s).is_some_and(|w| w["state"] == "synced"))
        .await;
    assert_eq!(app(&h, "/it/web").await["cmd"], "sleep 200");
    let (code, _) = controller.terminate();
    assert_eq!(code, Some(0));
}
