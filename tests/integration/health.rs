//! Health (issue 17 items 1 and 3, apps): every object's live health in `diff`,
//! `diff --output json`, `/status` and `/metrics`, and dependants that wait for an app
//! to be Healthy rather than for its write — through the real binary against the
//! emulator over HTTP.
//!
//! Unhealthy apps are made with the emulator's deployment fault rules (DESIGN §8):
//! `fail` makes an app's new tasks fail (`TASK_FAILED`, `lastTaskFailure`) and its
//! deployment end with `deployment_failed`; `kill_tasks` makes an app lose its tasks
//! until Marathon's replacements run; the app outcome controls make an app whose
//! tasks keep failing. Job runs are scripted with the emulator's Chronos outcome
//! controls.

use std::path::Path;
use std::time::Duration;

use mesosync::emulator::{
    AppOutcome, DeploymentOutcome, FaultRule, JobOutcome, RecordedRequest, RunResult, TaskOutcome,
};
use reqwest::Method;
use serde_json::Value;

use super::e2e::{Controller, mesosync};
use super::harness::{self, Harness};

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// `/it/db` (`sync.timeout` `db_timeout`), `/it/api` depending on it, the unrelated
/// `/it/other` and the job `it-report` waiting (`sync.dependsOn`) for `/it/api`.
fn manifests(db_timeout: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let app = |id: &str, cmd: &str, extra: &str| {
        format!("kind: MarathonApp\n{extra}spec:\n  id: {id}\n  cmd: {cmd}\n  cpus: 0.1\n  mem: 32\n")
    };
    write(dir.path(), "db.yaml", &app("/it/db", "sleep 100", &format!("sync: {{timeout: {db_timeout}}}\n")));
    write(dir.path(), "api.yaml", &format!("{}  dependencies: [/it/db]\n", app("/it/api", "sleep 200", "")));
    write(dir.path(), "other.yaml", &app("/it/other", "sleep 300", ""));
    write(
        dir.path(),
        "report.yaml",
        "kind: ChronosJob\nsync: {dependsOn: [/it/api]}\nspec: {name: it-report, command: \"true\", \
         owner: a@b.c, schedule: R/2030-01-01T00:00:00Z/PT1H}\n",
    );
    dir
}

fn run(h: &Harness, args: &[&str]) -> (i32, String, String) {
    tokio::task::block_in_place(|| mesosync(h, args))
}

fn writes(log: &[RecordedRequest]) -> Vec<String> {
    log.iter()
        .filter(|r| r.method != "GET" && !r.path.starts_with("/_sandbox"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

/// The first line starting with `starting` (leading spaces dropped).
fn line<'a>(text: &'a str, starting: &str) -> &'a str {
    text.lines()
        .map(str::trim_start)
        .find(|l| l.starts_with(starting))
        .unwrap_or_else(|| panic!("no `{starting}` in\n{text}"))
}

/// Create everything with `/it/db`'s tasks failing: db fails, what waits on it is
/// blocked, `/it/other` is created.
async fn with_a_failing_db(h: &Harness, dir: &Path) {
    h.sandbox.faults().add(FaultRule::deployment("/it/db", DeploymentOutcome::Fail));
    let (code, stdout, stderr) = run(h, &["apply", dir.to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(line(&stderr, "app /it/db create").contains("failed: deployment"), "{stderr}");
    assert!(line(&stderr, "app /it/other create").contains("applied"), "{stderr}");
    h.sandbox.faults().clear();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dependant_of_a_degraded_app_waits_then_is_blocked_with_the_reason_while_others_proceed() {
    let h = harness::start().await;
    let dir = manifests("1s");
    with_a_failing_db(&h, dir.path()).await;

    // diff: the health of every object, and what the pending writes would wait for.
    let (code, text, stderr) = run(&h, &["diff", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{text}\n{stderr}");
    assert_eq!(line(&text, "health: "), "health: 1 Healthy, 1 Degraded, 2 Missing");
    let db = line(&text, "app /it/db: ");
    assert!(
        db.starts_with("app /it/db: Degraded: 0/1 tasks running, last task failure ")
            && db.ends_with(": injected failure (sandbox fault)"),
        "{text}"
    );
    assert_eq!(line(&text, "app /it/api: "), "app /it/api: Missing: not found live");
    let waits = line(&text, "app /it/api waits for");
    assert!(
        waits.starts_with("app /it/api waits for app /it/db: 0/1 tasks running, last task failure "),
        "{text}"
    );
    assert!(waits.ends_with("(Degraded)"), "{text}");
    assert!(!text.contains("app /it/other: "), "Healthy objects are only counted:\n{text}");

    let (code, json, _) = run(&h, &["diff", dir.path().to_str().unwrap(), "--output", "json"]);
    assert_eq!(code, 2);
    let json: Value = serde_json::from_str(&json).unwrap();
    let health_of = |id: &str| {
        json["health"]["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["object"]["id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(health_of("/it/db")["health"], "Degraded");
    assert_eq!(health_of("/it/other")["health"], "Healthy");
    assert_eq!(health_of("/it/other")["reason"], "1/1 tasks running");
    assert_eq!(health_of("it-report")["health"], "Missing");
    assert_eq!(json["health"]["counts"]["Degraded"], 1);
    assert_eq!(json["health"]["counts"]["Suspended"], 0);
    let waits = json["waits"].as_array().unwrap();
    assert_eq!(waits.len(), 1, "{waits:#?}");
    assert_eq!(waits[0]["object"]["id"], "/it/api");
    assert_eq!(waits[0]["waitsFor"]["id"], "/it/db");
    assert_eq!(waits[0]["health"], "Degraded");

    // apply: db is left as it is (its definition is live) but not Healthy, so api waits
    // for it (re-reading it, up to db's sync.timeout) and is then reported blocked with
    // the reason; the job after api is blocked by api; nothing of theirs is written.
    h.sandbox.reset_requests();
    let (code, stdout, stderr) = run(&h, &["apply", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let waiting = line(&stderr, "app /it/api waits for app /it/db: ");
    assert!(waiting.contains("0/1 tasks running, last task failure "), "{stderr}");
    let blocked = line(&stderr, "app /it/api create");
    assert!(
        blocked.contains(": blocked: waits for app /it/db: 0/1 tasks running, last task failure "),
        "{stderr}"
    );
    assert!(blocked.ends_with("(Degraded)") || blocked.contains("(Degraded) in"), "{stderr}");
    assert!(line(&stderr, "job it-report create").contains("blocked by app /it/api"), "{stderr}");
    assert!(stdout.contains("0 applied, 2 unchanged, 0 failed, 2 blocked, 0 skipped"), "{stdout}");
    let log = h.sandbox.requests();
    assert_eq!(writes(&log), Vec::<String>::new(), "nothing is written for a blocked object");
    assert!(log.iter().any(|r| r.method == "GET" && r.path == "/v2/apps/it/db"), "db is read again: {log:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn status_and_metrics_report_health_since_when_and_the_blocked_dependant() {
    let h = harness::start().await;
    let dir = manifests("1s");
    with_a_failing_db(&h, dir.path()).await;
    let controller = Controller::start(&h, dir.path(), &[]);
    let object = |status: &Value, id: &str| {
        status["objects"]
            .as_array()
            .and_then(|o| o.iter().find(|o| o["id"] == id))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let status = controller
        .wait_status("api reported waiting for db", |s| {
            object(s, "/it/api")["reason"].as_str().is_some_and(|r| r.starts_with("waits for app /it/db"))
        })
        .await;
    let api = object(&status, "/it/api");
    assert_eq!(api["state"], "skipped");
    let reason = api["reason"].as_str().unwrap();
    assert!(
        reason.contains("0/1 tasks running, last task failure ") && reason.ends_with("(Degraded)"),
        "{reason}"
    );
    assert_eq!(api["health"]["status"], "Missing");
    let db = object(&status, "/it/db");
    assert_eq!(db["health"]["status"], "Degraded", "{db:#}");
    assert!(db["health"]["reason"].as_str().unwrap().contains("injected failure (sandbox fault)"));
    let since = db["health"]["since"].as_str().unwrap().to_string();
    assert_eq!(object(&status, "/it/other")["health"]["status"], "Healthy");
    assert_eq!(object(&status, "it-report")["reason"], "blocked by app /it/api");

    let metrics = controller.metrics().await;
    for series in [
        "mesosync_objects_health{kind=\"MarathonApp\",health=\"Degraded\"} 1",
        "mesosync_objects_health{kind=\"MarathonApp\",health=\"Healthy\"} 1",
        "mesosync_objects_health{kind=\"MarathonApp\",health=\"Missing\"} 1",
        "mesosync_objects_health{kind=\"ChronosJob\",health=\"Missing\"} 1",
        "mesosync_objects_health{kind=\"ChronosJob\",health=\"Healthy\"} 0",
    ] {
        assert!(metrics.lines().any(|l| l == series), "missing `{series}` in\n{metrics}");
    }

    // The next reconcile (a file event: a comment added, so the manifest set changes
    // but no object does; the same bytes again would be no reason to reconcile) finds
    // db as it was: its health keeps its since.
    let number = status["last_reconcile"]["number"].as_u64().unwrap();
    let other = std::fs::read_to_string(dir.path().join("other.yaml")).unwrap();
    write(dir.path(), "other.yaml", &format!("{other}# reviewed\n"));
    let later = controller
        .wait_status("another reconcile", |s| {
            s["last_reconcile"]["number"].as_u64() > Some(number) && s["running"].is_null()
        })
        .await;
    assert_eq!(object(&later, "/it/db")["health"]["since"], since.as_str());

    // db recovers (its definition is fixed in git): api and the job are written.
    write(
        dir.path(),
        "db.yaml",
        "kind: MarathonApp\nsync: {timeout: 1s}\nspec:\n  id: /it/db\n  cmd: sleep 101\n  cpus: 0.1\n  mem: 32\n",
    );
    let healed = controller
        .wait_status("db Healthy and api written", |s| {
            object(s, "/it/db")["health"]["status"] == "Healthy" && object(s, "/it/api")["state"] == "synced"
        })
        .await;
    assert_eq!(object(&healed, "it-report")["state"], "synced");
    let (code, _) = controller.terminate();
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dependant_waits_for_an_app_to_become_healthy_again_then_is_written() {
    let h = harness::start().await;
    let dir = manifests("60s");
    let (code, stdout, stderr) = run(&h, &["apply", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    // Each app write is done once the app is Healthy, as read after its deployment.
    assert!(line(&stderr, "app /it/db create").ends_with(", Healthy: 1/1 tasks running"), "{stderr}");

    // db loses its tasks; Marathon's replacements run half a (long) deployment later.
    h.sandbox.set_deployment_duration(Duration::from_secs(8));
    assert_eq!(h.sandbox.kill_tasks("/it/db"), 1);
    h.sandbox.set_deployment_duration(Duration::from_millis(200));
    write(
        dir.path(),
        "api.yaml",
        &std::fs::read_to_string(dir.path().join("api.yaml")).unwrap().replace("sleep 200", "sleep 201"),
    );
    h.sandbox.reset_requests();
    let (code, stdout, stderr) = run(&h, &["apply", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(
        line(&stderr, "app /it/api waits for"),
        "app /it/api waits for app /it/db: 0/1 tasks running, 1 staged (Progressing)"
    );
    assert!(line(&stderr, "app /it/api update").contains(": applied in "), "{stderr}");
    // The update was sent only after db was read again (and found Healthy).
    let log = h.sandbox.requests();
    let put = log.iter().position(|r| r.method == "PUT" && r.path == "/v2/apps/it/api").expect("api updated");
    assert!(log[..put].iter().any(|r| r.method == "GET" && r.path == "/v2/apps/it/db"), "{log:?}");
    assert_eq!(h.app("/it/db").await["tasksRunning"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_timeout_bounds_an_app_write_and_blocks_only_its_dependants() {
    let h = harness::start().await;
    let dir = manifests("1s");
    // db's deployment never ends: its write fails at its own 1s timeout, not the
    // 10 minute default; api and the job wait on it and are blocked; other is created.
    h.sandbox.faults().add(FaultRule::deployment("/it/db", DeploymentOutcome::NeverFinish));
    let (code, stdout, stderr) = run(&h, &["apply", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(line(&stderr, "app /it/db create").contains("still running after 1s"), "{stderr}");
    assert!(line(&stderr, "app /it/api create").contains("blocked by app /it/db"), "{stderr}");
    assert!(line(&stderr, "job it-report create").contains("blocked by app /it/api"), "{stderr}");
    assert!(line(&stderr, "app /it/other create").contains("applied"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn job_health_reads_the_statistics_and_the_run_states() {
    let h = harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    for name in ["it-ok", "it-bad", "it-slow", "it-new"] {
        write(
            dir.path(),
            &format!("{name}.yaml"),
            &format!(
                "kind: ChronosJob\nspec: {{name: {name}, command: \"true\", owner: a@b.c, \
                 schedule: R/2030-01-01T00:00:00Z/PT1H}}\n"
            ),
        );
    }
    let (code, stdout, stderr) = run(&h, &["apply", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    // it-bad's runs fail, it-slow's run takes ten minutes; each is started by hand.
    let fail = JobOutcome { result: RunResult::Fail, ..JobOutcome::default() };
    h.sandbox.set_job_outcome("it-bad", Some(fail));
    h.sandbox
        .set_job_outcome("it-slow", Some(JobOutcome { duration_ms: Some(600_000), ..JobOutcome::default() }));
    for name in ["it-ok", "it-bad", "it-slow"] {
        let answer = h.call(Method::PUT, &h.chronos(&format!("/scheduler/job/{name}")), None).await;
        assert_eq!(answer.status.as_u16(), 204, "{}", answer.text);
    }
    // Wait (bounded) until Chronos reports the outcomes.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let jobs = h.get(&h.chronos("/scheduler/jobs")).await.json();
        let graph = h.get(&h.chronos("/scheduler/graph/csv")).await.text;
        let job = |name: &str| jobs.as_array().unwrap().iter().find(|j| j["name"] == name).cloned().unwrap();
        if job("it-ok")["lastSuccess"] != ""
            && job("it-bad")["lastError"] != ""
            && graph.contains("node,it-slow,fresh,running")
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "runs did not end: {jobs:#}\n{graph}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, text, stderr) = run(&h, &["diff", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "run statistics are not changes:\n{text}\n{stderr}");
    assert_eq!(line(&text, "health: "), "health: 2 Healthy, 1 Progressing, 1 Degraded");
    let bad = line(&text, "job it-bad: ");
    assert!(bad.starts_with("job it-bad: Degraded: last run failed at "), "{text}");
    assert!(bad.contains(" since last success"), "{text}");
    assert_eq!(line(&text, "job it-slow: "), "job it-slow: Progressing: running");
    let (_, json, _) =
        run(&h, &["diff", dir.path().to_str().unwrap(), "--output", "json", "--show-unchanged"]);
    let json: Value = serde_json::from_str(&json).unwrap();
    let reason = |id: &str| {
        json["health"]["objects"].as_array().unwrap().iter().find(|o| o["object"]["id"] == id).unwrap()["reason"]
            .clone()
    };
    assert!(reason("it-ok").as_str().unwrap().starts_with("last run succeeded at "));
    assert_eq!(reason("it-new"), "scheduled, not run yet");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_looping_app_is_degraded_and_only_its_dependants_are_blocked() {
    let h = harness::start().await;
    let dir = manifests("1s");
    // db's tasks fail as they start and Marathon keeps relaunching them: its deployment
    // never ends (the emulator's app outcome controls).
    let failing = AppOutcome { tasks: TaskOutcome::Fail, ..AppOutcome::default() };
    h.sandbox.set_app_outcome("/it/db", Some(failing));
    let (code, stdout, stderr) = run(&h, &["apply", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(line(&stderr, "app /it/db create").contains("still running after 1s"), "{stderr}");
    assert!(line(&stderr, "app /it/api create").contains("blocked by app /it/db"), "{stderr}");
    assert!(line(&stderr, "app /it/other create").contains("applied"), "{stderr}");

    // Left as it is now, with its deployment still in flight: Degraded, not Progressing,
    // because the tasks of its current version keep failing; api waits, then is blocked.
    let (code, text, stderr) = run(&h, &["diff", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{text}\n{stderr}");
    let db = line(&text, "app /it/db: ");
    assert!(db.starts_with("app /it/db: Degraded: deployment in flight, 0/1 tasks running"), "{text}");
    assert!(db.contains(", last task failure "), "{text}");
    let (code, stdout, stderr) = run(&h, &["apply", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let blocked = line(&stderr, "app /it/api create");
    assert!(
        blocked.contains("blocked: waits for app /it/db: deployment in flight, 0/1 tasks running"),
        "{stderr}"
    );
    assert!(line(&stderr, "job it-report create").contains("blocked by app /it/api"), "{stderr}");
}
