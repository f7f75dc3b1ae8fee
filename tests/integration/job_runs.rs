//! Run-once jobs (`sync.run: onChange`, issue 17) through the binary against the
//! emulator: a job is run after it is written, its dependants are written only once a
//! run of its current definition succeeded, and a second apply neither writes nor runs
//! anything.

use std::path::Path;

use mesosync::emulator::{JobOutcome, RecordedRequest, RunEventKind, RunResult, Trigger};
use mesosync::plan::runs::MAX_RUNS;

use super::e2e::{Controller, mesosync};
use super::harness::{self, Harness};

/// db-create → db-sync (Chronos child) → an API app (`sync.dependsOn`), plus a job
/// Chronos runs by itself.
const SET: &str = r#"
kind: ChronosJob
sync: {run: onChange}
spec: {name: db-create, command: create-db, schedule: "R0//P1D"}
---
kind: ChronosJob
sync: {run: onChange, timeout: 1m}
spec: {name: db-sync, command: "migrate v1", parents: [db-create]}
---
kind: MarathonApp
sync: {dependsOn: [db-sync]}
spec: {id: /api, cmd: "serve v1", instances: 1}
---
kind: ChronosJob
spec: {name: nightly, command: backup, schedule: "R/2030-01-01T00:00:00Z/P1D"}
"#;

fn write_set(dir: &Path, text: &str) {
    std::fs::write(dir.join("set.yaml"), text).unwrap();
}

/// The writes and job starts, as `METHOD path` lines, in order.
fn writes_of(log: &[RecordedRequest]) -> Vec<String> {
    log.iter()
        .filter(|r| r.method != "GET" && !r.path.starts_with("/_sandbox"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

fn position(events: &[String], event: &str) -> usize {
    events.iter().position(|e| e == event).unwrap_or_else(|| panic!("no `{event}` in {events:#?}"))
}

async fn apply(h: &Harness, dir: &Path) -> (i32, String, String) {
    tokio::task::block_in_place(|| mesosync(h, &["apply", dir.to_str().unwrap(), "--chronos-version", "2.4"]))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_apply_runs_each_job_once_before_its_dependants_and_a_second_apply_does_nothing() {
    let h = harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path(), SET);
    let (code, stdout, stderr) = apply(&h, dir.path()).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let events = writes_of(&h.sandbox.requests());
    let at = |e: &str| position(&events, e);
    // db-create is written, then started; db-sync is written only once db-create
    // succeeded (it is a new child, so Chronos would not start it): mesosync starts it;
    // the app is written only once db-sync succeeded.
    assert!(at("POST /scheduler/iso8601") < at("PUT /scheduler/job/db-create"), "{events:#?}");
    assert!(at("PUT /scheduler/job/db-create") < at("POST /scheduler/dependency"), "{events:#?}");
    assert!(at("POST /scheduler/dependency") < at("PUT /scheduler/job/db-sync"), "{events:#?}");
    assert!(at("PUT /scheduler/job/db-sync") < at("POST /v2/apps"), "{events:#?}");
    assert!(!events.iter().any(|e| e == "PUT /scheduler/job/nightly"), "Chronos runs nightly itself");
    assert_eq!(events.iter().filter(|e| e.starts_with("PUT /scheduler/job/")).count(), 2, "{events:#?}");
    // Each run-once job carries the record of the definition it ran.
    let jobs: serde_json::Value = h.get(&h.chronos("/scheduler/jobs")).await.json();
    for job in jobs.as_array().unwrap() {
        let description = job["description"].as_str().unwrap();
        let once = job["name"] != "nightly";
        assert_eq!(description.contains("[mesosync-run:"), once, "{job}");
        assert!(description.ends_with("[mesosync:mesosync]"), "{job}");
        if once {
            assert_eq!(job["successCount"], 1, "{job}");
        }
    }

    h.sandbox.reset_requests();
    let (code, stdout, stderr) = apply(&h, dir.path()).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let log = h.sandbox.requests();
    assert!(writes_of(&log).is_empty(), "a second apply wrote or ran: {:?}", writes_of(&log));
    // The two listings, and Chronos's run states (…/graph/csv) for the jobs' health.
    assert_eq!(log.len(), 3, "{log:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn diff_says_which_jobs_run_and_a_new_definition_runs_again() {
    let h = harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path(), SET);
    assert_eq!(apply(&h, dir.path()).await.0, 0);
    // A new migration: db-sync is replaced and run again; db-create is not.
    write_set(dir.path(), &SET.replace("migrate v1", "migrate v2"));
    let (code, stdout, _) =
        tokio::task::block_in_place(|| mesosync(&h, &["diff", dir.path().to_str().unwrap()]));
    assert_eq!(code, 2, "{stdout}");
    assert!(stdout.contains("job db-sync"), "{stdout}");
    h.sandbox.reset_requests();
    let (code, stdout, stderr) = apply(&h, dir.path()).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let events = writes_of(&h.sandbox.requests());
    assert_eq!(events, ["POST /scheduler/dependency", "PUT /scheduler/job/db-sync"], "{stdout}");
}

fn failing() -> Option<JobOutcome> {
    Some(JobOutcome { result: RunResult::Fail, ..JobOutcome::default() })
}

/// `apply` with quick retries of failed runs.
async fn apply_fast(h: &Harness, dir: &Path) -> (i32, String, String) {
    tokio::task::block_in_place(|| {
        mesosync(
            h,
            &["apply", dir.to_str().unwrap(), "--chronos-version", "2.4", "--job-retry-delay", "50ms"],
        )
    })
}

/// The set with an unrelated app beside it, and `retries: 0` (Chronos's own retries
/// are the emulator's business; here each run is one attempt).
fn set_with_bystander(migration: &str) -> String {
    SET.replace("migrate v1", migration).replace("parents: [db-create]}", "parents: [db-create], retries: 0}")
        + "---\nkind: MarathonApp\nspec: {id: /bystander, cmd: idle, instances: 1}\n"
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_migration_is_retried_a_bounded_number_of_times_blocks_only_its_dependants_and_a_fix_resumes()
 {
    let h = harness::start().await;
    h.sandbox.set_job_outcome("db-sync", failing());
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path(), &set_with_bystander("migrate v1"));
    let (code, stdout, stderr) = apply_fast(&h, dir.path()).await;
    assert_ne!(code, 0, "{stdout}\n{stderr}");
    let events = writes_of(&h.sandbox.requests());
    // Three runs of this definition, then it is left failed; the API is never written,
    // the unrelated app is.
    let runs = events.iter().filter(|e| *e == "PUT /scheduler/job/db-sync").count();
    assert_eq!(runs, MAX_RUNS as usize, "{events:#?}");
    assert!(events.iter().any(|e| e == "POST /v2/apps"), "the bystander is created: {events:#?}");
    let apps: serde_json::Value = h.get(&h.marathon("/v2/apps")).await.json();
    let ids: Vec<&str> = apps["apps"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["/bystander"]);
    let all = format!("{stdout}\n{stderr}");
    assert!(all.contains("3 run(s) of this definition failed"), "{all}");
    assert!(all.contains("app /api") && all.contains("blocked by job db-sync"), "{all}");

    // Another apply does not start it again (no endless run loop) and says why the API waits.
    h.sandbox.reset_requests();
    let (code, stdout, _) =
        tokio::task::block_in_place(|| mesosync(&h, &["diff", dir.path().to_str().unwrap()]));
    // Nothing would be written (exit 0, as for a suspended object); the API is left
    // alone with the reason.
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("waits for job db-sync: last run failed at"), "{stdout}");
    assert!(stdout.contains("3 error(s) since last success"), "{stdout}");
    let (_, stdout, stderr) = apply_fast(&h, dir.path()).await;
    let events = writes_of(&h.sandbox.requests());
    assert!(events.is_empty(), "nothing written or run: {events:#?}\n{stdout}\n{stderr}");

    // Fixing the job in git: a new definition, run once, then the API.
    h.sandbox.set_job_outcome("db-sync", None);
    write_set(dir.path(), &set_with_bystander("migrate v1 --fixed"));
    h.sandbox.reset_requests();
    let (code, stdout, stderr) = apply_fast(&h, dir.path()).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let events = writes_of(&h.sandbox.requests());
    assert_eq!(
        events,
        ["POST /scheduler/dependency", "PUT /scheduler/job/db-sync", "POST /v2/apps"],
        "{events:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_longer_than_sync_timeout_fails_the_job_and_blocks_its_dependants() {
    let h = harness::start().await;
    h.sandbox
        .set_job_outcome("db-sync", Some(JobOutcome { duration_ms: Some(60_000), ..JobOutcome::default() }));
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path(), &SET.replace("timeout: 1m", "timeout: 1s"));
    let started = std::time::Instant::now();
    let (code, stdout, stderr) = apply_fast(&h, dir.path()).await;
    assert_ne!(code, 0, "{stdout}\n{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "bounded by sync.timeout");
    let all = format!("{stdout}\n{stderr}");
    assert!(all.contains("no successful run within 1s (sync.timeout)"), "{all}");
    assert!(all.contains("blocked by job db-sync"), "{all}");
    let events = writes_of(&h.sandbox.requests());
    assert!(!events.iter().any(|e| e == "POST /v2/apps"), "{events:#?}");
    assert_eq!(events.iter().filter(|e| *e == "PUT /scheduler/job/db-sync").count(), 1, "not started twice");
}

/// Wait (bounded, polling the emulator) until `cond` holds.
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn count(h: &Harness, event: &str) -> usize {
    writes_of(&h.sandbox.requests()).iter().filter(|e| *e == event).count()
}

fn ended(h: &Harness, job: &str, how: RunEventKind) -> usize {
    h.sandbox.job_runs().iter().filter(|e| e.job == job && e.event == how).count()
}

async fn app_exists(h: &Harness, id: &str) -> bool {
    h.get(&h.marathon(&format!("/v2/apps{id}"))).await.status == reqwest::StatusCode::OK
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_while_waiting_on_a_job_then_restart_neither_reruns_it_nor_writes_early() {
    let h = harness::start().await;
    let slow = |result| Some(JobOutcome { result, duration_ms: Some(1500), ..JobOutcome::default() });
    h.sandbox.set_job_outcome("db-sync", slow(RunResult::Succeed));
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path(), SET);
    let args = ["--chronos-version", "2.4", "--job-retry-delay", "50ms"];

    // Killed while it waits for db-sync's run; the run succeeds while nobody watches.
    let controller = Controller::start(&h, dir.path(), &args);
    wait_for("db-sync started", || count(&h, "PUT /scheduler/job/db-sync") == 1).await;
    drop(controller); // SIGKILL
    assert!(!app_exists(&h, "/api").await, "the API waits for the run");
    wait_for("db-sync succeeded", || ended(&h, "db-sync", RunEventKind::Succeeded) == 1).await;
    let controller = Controller::start(&h, dir.path(), &args);
    controller.wait_status("the API written", |_| true).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !app_exists(&h, "/api").await {
        assert!(std::time::Instant::now() < deadline, "the API was never written");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(count(&h, "PUT /scheduler/job/db-create"), 1, "db-create is not run again");
    assert_eq!(count(&h, "PUT /scheduler/job/db-sync"), 1, "db-sync is not run again");
    drop(controller);

    // A new definition whose run fails while the controller is dead: the restarted
    // one counts that failure from live state and never writes the API's new version.
    h.sandbox.set_job_outcome("db-sync", slow(RunResult::Fail));
    write_set(
        dir.path(),
        &SET.replace("migrate v1", "migrate v2")
            .replace("serve v1", "serve v2")
            .replace("parents: [db-create]}", "parents: [db-create], retries: 0}"),
    );
    h.sandbox.reset_requests();
    let controller = Controller::start(&h, dir.path(), &args);
    wait_for("db-sync v2 started", || count(&h, "PUT /scheduler/job/db-sync") == 1).await;
    drop(controller);
    wait_for("db-sync v2 failed", || ended(&h, "db-sync", RunEventKind::Failed) == 1).await;
    let controller = Controller::start(&h, dir.path(), &args);
    let status = controller
        .wait_status("db-sync given up", |s| s.to_string().contains("3 run(s) of this definition failed"))
        .await;
    // Two more runs after the restart (three in all for this definition), none after.
    assert_eq!(count(&h, "PUT /scheduler/job/db-sync"), MAX_RUNS as usize, "{status:#}");
    assert_eq!(h.app("/api").await["cmd"], "serve v1", "the API stays on the old version");
    drop(controller);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_while_the_run_is_in_flight_joins_it_instead_of_starting_another() {
    let h = harness::start().await;
    h.sandbox
        .set_job_outcome("db-sync", Some(JobOutcome { duration_ms: Some(3000), ..JobOutcome::default() }));
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path(), SET);
    let args = ["--chronos-version", "2.4"];
    let controller = Controller::start(&h, dir.path(), &args);
    wait_for("db-sync started", || count(&h, "PUT /scheduler/job/db-sync") == 1).await;
    drop(controller); // SIGKILL, the run goes on
    let controller = Controller::start(&h, dir.path(), &args);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !app_exists(&h, "/api").await {
        assert!(std::time::Instant::now() < deadline, "the API was never written");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(ended(&h, "db-sync", RunEventKind::Succeeded), 1, "the API waited for the run");
    assert_eq!(count(&h, "PUT /scheduler/job/db-sync"), 1, "the run in flight was joined, not doubled");
    let started = h
        .sandbox
        .job_runs()
        .iter()
        .filter(|e| e.job == "db-sync" && e.event == RunEventKind::Started)
        .count();
    assert_eq!(started, 1);
    drop(controller);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_is_not_replaced_while_chronos_runs_its_old_definition() {
    // db-create and db-sync both change. Once db-create's new run succeeds, Chronos
    // starts the *old* db-sync (its child) by itself. Chronos credits a run's result to
    // whatever job has the name when it ends, so db-sync is replaced only after that
    // run ended, and then its new definition is run by mesosync.
    let h = harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path(), SET);
    assert_eq!(apply(&h, dir.path()).await.0, 0);
    h.sandbox
        .set_job_outcome("db-sync", Some(JobOutcome { duration_ms: Some(700), ..JobOutcome::default() }));
    let since = h.sandbox.job_runs().last().unwrap().seq;
    let v2 = SET
        .replace("create-db", "create-db v2")
        .replace("migrate v1", "migrate v2")
        .replace("serve v1", "serve v2");
    write_set(dir.path(), &v2);
    let (code, stdout, stderr) = apply(&h, dir.path()).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let events: Vec<_> =
        h.sandbox.job_runs().into_iter().filter(|e| e.seq > since && e.job == "db-sync").collect();
    let runs: Vec<(RunEventKind, Trigger)> = events.iter().map(|e| (e.event, e.trigger)).collect();
    // The API rolls only after the new definition's own run succeeded.
    let api = h.app("/api").await;
    let at = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap();
    assert!(at(api["version"].as_str().unwrap()) >= at(&events.last().unwrap().at), "{api}\n{events:?}");
    assert_eq!(
        runs,
        [
            (RunEventKind::Started, Trigger::Dependency),
            (RunEventKind::Succeeded, Trigger::Dependency),
            (RunEventKind::Started, Trigger::Manual),
            (RunEventKind::Succeeded, Trigger::Manual),
        ],
        "the old definition's run ends before the new one is written and run"
    );
}

/// Issue #17's bring-up bench found every wait for a run-once job taking a listing of
/// its own, one after the other behind a lock (each asked for one newer than its own
/// request): with a slow `GET …/jobs`, N jobs started at once cost N listings in a
/// queue. Waits that ask while a listing is in flight now share it.
#[tokio::test(flavor = "multi_thread")]
async fn waits_for_many_runs_share_the_job_listing() {
    const JOBS: usize = 20;
    let h = harness::start_with(mesosync::emulator::SandboxConfig {
        job_run_duration: std::time::Duration::from_millis(300),
        ..mesosync::emulator::SandboxConfig::default()
    })
    .await;
    h.sandbox.faults().add(mesosync::emulator::FaultRule {
        system: Some(mesosync::emulator::System::Chronos),
        method: Some("GET".into()),
        path_prefix: "/scheduler/jobs".into(),
        latency_ms: 100,
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let set: String = (0..JOBS)
        .map(|i| {
            format!(
                "---\nkind: ChronosJob\nsync: {{run: onChange}}\nspec: {{name: once-{i}, command: run, schedule: \"R0//P1D\"}}\n"
            )
        })
        .collect();
    write_set(dir.path(), &set);
    let args = ["apply", dir.path().to_str().unwrap(), "--chronos-version", "2.4", "--concurrency", "20"];
    let (code, stdout, stderr) = tokio::task::block_in_place(|| mesosync(&h, &args));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let runs = h.sandbox.requests().iter().filter(|r| r.method == "PUT").count();
    assert_eq!(runs, JOBS, "each job started once");
    let listings =
        h.sandbox.requests().iter().filter(|r| r.method == "GET" && r.path == "/scheduler/jobs").count();
    assert!(listings < JOBS, "{listings} listings of the jobs for {JOBS} runs waited for at once");
}
