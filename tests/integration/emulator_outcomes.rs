//! The emulator models outcomes (issue 17 item 7): Chronos runs that take time and
//! succeed or fail as the test controls say, retries, statistics, dependent jobs run by
//! the emulated Chronos itself, the run log; all over real HTTP against the emulator.
//! Time moves through the emulated clock (`/_sandbox/clock/advance`), never by sleeping.

use std::time::Duration;

use mesosync::emulator::ChronosVersion;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{self, Harness};

/// A scheduled job that never comes due by itself.
fn idle_job(name: &str) -> Value {
    json!({"name": name, "command": "true", "schedule": "R/2099-01-01T00:00:00Z/PT1H"})
}

async fn create(h: &Harness, prefix: &str, job: &Value) {
    let path = if job.get("parents").is_some() { "dependency" } else { "iso8601" };
    let answer = h.post(&h.chronos(&format!("{prefix}/{path}")), job).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.text);
}

async fn start_run(h: &Harness, prefix: &str, name: &str) {
    let answer = h.call(reqwest::Method::PUT, &h.chronos(&format!("{prefix}/job/{name}")), None).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.text);
}

async fn outcome(h: &Harness, name: &str, body: Value) {
    let url = h.chronos(&format!("/_sandbox/chronos/jobs/{name}/outcome"));
    let answer = h.put(&url, &body).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.text);
}

async fn job(h: &Harness, prefix: &str, name: &str) -> Value {
    let all = h.get(&h.chronos(&format!("{prefix}/jobs"))).await.json();
    all.as_array()
        .and_then(|jobs| jobs.iter().find(|j| j["name"] == json!(name)).cloned())
        .unwrap_or_else(|| panic!("{name} not listed: {all}"))
}

/// The run log as `"<job> <event> <attempt>"` lines.
async fn runs(h: &Harness) -> Vec<String> {
    let log = h.get(&h.chronos("/_sandbox/chronos/runs")).await.json();
    log.as_array()
        .expect("a list")
        .iter()
        .map(|e| format!("{} {} {}", e["job"].as_str().unwrap(), e["event"].as_str().unwrap(), e["attempt"]))
        .collect()
}

async fn advance(h: &Harness, seconds: u64) {
    let answer = h.post(&h.chronos("/_sandbox/clock/advance"), &json!({"seconds": seconds})).await;
    assert_eq!(answer.status, StatusCode::OK);
}

fn stats(job: &Value) -> Value {
    json!([job["successCount"], job["errorCount"], job["errorsSinceLastSuccess"]])
}

/// The run state column of `graph/csv` (`node,<name>,<last outcome>,<state>`).
async fn csv_state(h: &Harness, prefix: &str, name: &str) -> String {
    let csv = h.get(&h.chronos(&format!("{prefix}/graph/csv"))).await.text;
    let line = csv
        .lines()
        .find(|l| l.starts_with(&format!("node,{name},")))
        .unwrap_or_else(|| panic!("{name} not in {csv}"));
    line.rsplit(',').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_manual_start_runs_for_its_duration_then_succeeds() {
    let h = harness::start_chronos(ChronosVersion::V3).await;
    create(&h, "/v1/scheduler", &idle_job("migrate")).await;
    outcome(&h, "migrate", json!({"durationMs": 60_000})).await;
    let started = h.sandbox.clock().now();
    start_run(&h, "/v1/scheduler", "migrate").await;

    assert_eq!(csv_state(&h, "/v1/scheduler", "migrate").await, "1 running", "3.x counts running tasks");
    let summary = h.get(&h.chronos("/v1/scheduler/jobs/summary")).await.json();
    assert_eq!(summary["jobs"][0]["state"], json!("1 running"), "{summary}");
    assert_eq!(summary["jobs"][0]["status"], json!("fresh"), "no outcome yet");
    let running = job(&h, "/v1/scheduler", "migrate").await;
    assert_eq!((stats(&running), running["lastSuccess"].clone()), (json!([0, 0, 0]), json!("")));
    assert_eq!(runs(&h).await, ["migrate started 0"]);

    advance(&h, 61).await;
    let done = job(&h, "/v1/scheduler", "migrate").await;
    assert_eq!(stats(&done), json!([1, 0, 0]));
    let last_success = mesosync_instant(&done["lastSuccess"]);
    let took = last_success - started;
    assert!(
        // (timestamps are written to the millisecond)
        took > chrono::Duration::milliseconds(59_998) && took < chrono::Duration::seconds(65),
        "lastSuccess is the run's end, not the time it was noticed: {took:?}"
    );
    assert_eq!(csv_state(&h, "/v1/scheduler", "migrate").await, "idle");
    assert_eq!(runs(&h).await, ["migrate started 0", "migrate succeeded 0"]);
}

fn mesosync_instant(value: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(value.as_str().expect("a timestamp")).expect("ISO").to_utc()
}

#[tokio::test]
async fn a_start_while_running_is_dropped_and_a_disabled_job_does_not_run() {
    let h = harness::start().await;
    create(&h, "/scheduler", &idle_job("slow")).await;
    outcome(&h, "slow", json!({"durationMs": 10_000})).await;
    start_run(&h, "/scheduler", "slow").await;
    assert_eq!(csv_state(&h, "/scheduler", "slow").await, "running");
    start_run(&h, "/scheduler", "slow").await;
    advance(&h, 11).await;
    assert_eq!(runs(&h).await, ["slow started 0", "slow succeeded 0"], "one task per job at a time");
    assert_eq!(stats(&job(&h, "/scheduler", "slow").await), json!([1, 0, 0]));

    let mut off = idle_job("off");
    off["disabled"] = json!(true);
    create(&h, "/scheduler", &off).await;
    start_run(&h, "/scheduler", "off").await;
    assert_eq!(runs(&h).await.len(), 2, "the disabled job's task expires unlaunched");
    let unknown = h.call(reqwest::Method::PUT, &h.chronos("/scheduler/job/nope"), None).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_failing_job_is_retried_then_counts_one_error_and_later_failures_are_not_retried() {
    let h = harness::start().await;
    let mut db_sync = idle_job("db-sync");
    db_sync["retries"] = json!(2);
    create(&h, "/scheduler", &db_sync).await;
    outcome(&h, "db-sync", json!({"result": "fail"})).await;
    start_run(&h, "/scheduler", "db-sync").await;
    assert_eq!(
        runs(&h).await,
        [
            "db-sync started 0",
            "db-sync failed 0",
            "db-sync started 1",
            "db-sync failed 1",
            "db-sync started 2",
            "db-sync failed 2"
        ],
        "retries: 2 → three attempts"
    );
    let log = h.get(&h.chronos("/_sandbox/chronos/runs")).await.json();
    let retrying: Vec<Value> = log.as_array().unwrap().iter().map(|e| e["retrying"].clone()).collect();
    assert_eq!(retrying, [false, true, false, true, false, false]);
    assert_eq!(log[2]["trigger"], json!("retry"));
    let failed = job(&h, "/scheduler", "db-sync").await;
    assert_eq!(stats(&failed), json!([0, 1, 1]), "one error for the whole run");
    assert_ne!(failed["lastError"], json!(""));
    assert_eq!(failed["lastSuccess"], json!(""));
    assert_eq!(csv_state(&h, "/scheduler", "db-sync").await, "idle");

    // handleFailedTask retries only while the last outcome was not an error.
    advance(&h, 1).await;
    start_run(&h, "/scheduler", "db-sync").await;
    assert_eq!(runs(&h).await.len(), 8, "{:?}", runs(&h).await);
    assert_eq!(stats(&job(&h, "/scheduler", "db-sync").await), json!([0, 2, 2]));

    // Fixed: the next run succeeds and resets errorsSinceLastSuccess.
    advance(&h, 1).await;
    outcome(&h, "db-sync", json!({"result": "succeed"})).await;
    start_run(&h, "/scheduler", "db-sync").await;
    let fixed = job(&h, "/scheduler", "db-sync").await;
    assert_eq!(stats(&fixed), json!([1, 2, 0]));
    assert!(mesosync_instant(&fixed["lastSuccess"]) > mesosync_instant(&fixed["lastError"]));
}

#[tokio::test]
async fn a_flaky_job_fails_once_and_its_retry_succeeds_after_the_retry_delay() {
    let h = harness::start().await;
    h.sandbox.set_job_run_defaults(mesosync::emulator::RunDefaults {
        retry_delay_ms: 60_000,
        ..Default::default()
    });
    create(&h, "/scheduler", &idle_job("flaky")).await;
    outcome(&h, "flaky", json!({"failTimes": 1})).await;
    start_run(&h, "/scheduler", "flaky").await;
    assert_eq!(runs(&h).await, ["flaky started 0", "flaky failed 0"]);
    assert_eq!(
        stats(&job(&h, "/scheduler", "flaky").await),
        json!([0, 0, 0]),
        "a retried failure is no error"
    );
    advance(&h, 59).await;
    assert_eq!(runs(&h).await.len(), 2, "the retry waits for the failure-retry delay");
    advance(&h, 2).await;
    assert_eq!(runs(&h).await, ["flaky started 0", "flaky failed 0", "flaky started 1", "flaky succeeded 1"]);
    assert_eq!(stats(&job(&h, "/scheduler", "flaky").await), json!([1, 0, 0]));
    let outcomes = h.get(&h.chronos("/_sandbox/chronos/outcomes")).await.json();
    assert_eq!(outcomes["jobs"]["flaky"]["failTimes"], json!(0), "used up: {outcomes}");
    assert_eq!(outcomes["default"]["retryDelayMs"], json!(60_000));
}

#[tokio::test]
async fn a_dependent_job_runs_once_every_parent_succeeded_since_its_last_start() {
    let h = harness::start().await;
    for name in ["db-create", "user-create"] {
        create(&h, "/scheduler", &idle_job(name)).await;
    }
    create(
        &h,
        "/scheduler",
        &json!({"name": "db-sync", "command": "x", "parents": ["db-create", "user-create"]}),
    )
    .await;
    create(&h, "/scheduler", &json!({"name": "bootstrap", "command": "x", "parents": ["db-sync"]})).await;

    start_run(&h, "/scheduler", "db-create").await;
    assert_eq!(runs(&h).await, ["db-create started 0", "db-create succeeded 0"], "one parent is not enough");
    start_run(&h, "/scheduler", "db-create").await;
    assert_eq!(runs(&h).await.len(), 4, "the same parent twice is still not enough");
    start_run(&h, "/scheduler", "user-create").await;
    assert_eq!(
        runs(&h).await[4..],
        [
            "user-create started 0",
            "user-create succeeded 0",
            "db-sync started 0",
            "db-sync succeeded 0",
            "bootstrap started 0",
            "bootstrap succeeded 0"
        ],
        "the last parent's success starts the chain"
    );
    let log = h.get(&h.chronos("/_sandbox/chronos/runs")).await.json();
    assert_eq!(log[6]["trigger"], json!("dependency"));

    // The child started, so its parents count afresh.
    start_run(&h, "/scheduler", "user-create").await;
    assert_eq!(runs(&h).await.len(), 12, "only one parent succeeded since db-sync's start");
    start_run(&h, "/scheduler", "db-create").await;
    assert_eq!(runs(&h).await.len(), 18, "both again: the chain runs again");
    assert_eq!(stats(&job(&h, "/scheduler", "bootstrap").await), json!([2, 0, 0]));
}

#[tokio::test]
async fn a_failed_parent_holds_its_children_unless_soft_error() {
    let h = harness::start().await;
    create(
        &h,
        "/scheduler",
        &json!({"name": "hard", "command": "x", "schedule": "R/2099-01-01T00:00:00Z/PT1H", "retries": 0}),
    )
    .await;
    create(&h, "/scheduler", &json!({"name": "soft", "command": "x", "schedule": "R/2099-01-01T00:00:00Z/PT1H", "retries": 0, "softError": true})).await;
    create(&h, "/scheduler", &json!({"name": "after-hard", "command": "x", "parents": ["hard"]})).await;
    create(&h, "/scheduler", &json!({"name": "after-soft", "command": "x", "parents": ["soft"]})).await;
    outcome(&h, "hard", json!({"result": "fail"})).await;
    outcome(&h, "soft", json!({"result": "fail"})).await;
    start_run(&h, "/scheduler", "hard").await;
    start_run(&h, "/scheduler", "soft").await;
    assert_eq!(
        runs(&h).await,
        [
            "hard started 0",
            "hard failed 0",
            "soft started 0",
            "soft failed 0",
            "after-soft started 0",
            "after-soft succeeded 0"
        ]
    );
}

#[tokio::test]
async fn a_schedule_coming_due_starts_a_timed_run_at_the_scheduled_instant() {
    let h = harness::start().await;
    let start = h.sandbox.clock().now() + chrono::Duration::minutes(10);
    let start_text = start.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    create(
        &h,
        "/scheduler",
        &json!({"name": "nightly", "command": "x", "schedule": format!("R2/{start_text}/PT1H")}),
    )
    .await;
    create(&h, "/scheduler", &json!({"name": "after-nightly", "command": "x", "parents": ["nightly"]})).await;
    outcome(&h, "nightly", json!({"durationMs": 120_000})).await;
    advance(&h, 11 * 60).await;
    let log = h.get(&h.chronos("/_sandbox/chronos/runs")).await.json();
    let started = mesosync_instant(&log[0]["at"]);
    assert_eq!(started.format("%Y-%m-%dT%H:%M:%SZ").to_string(), start_text, "{log}");
    assert_eq!(log[0]["trigger"], json!("schedule"));
    assert_eq!(runs(&h).await, ["nightly started 0"], "still running (2 min)");
    advance(&h, 60).await;
    assert_eq!(
        runs(&h).await,
        ["nightly started 0", "nightly succeeded 0", "after-nightly started 0", "after-nightly succeeded 0"]
    );
    let log = h.get(&h.chronos("/_sandbox/chronos/runs")).await.json();
    assert_eq!(mesosync_instant(&log[1]["at"]) - started, chrono::Duration::minutes(2));
    let nightly = job(&h, "/scheduler", "nightly").await;
    assert_eq!((nightly["successCount"].clone(), nightly["disabled"].clone()), (json!(1), json!(false)));
    assert!(nightly["schedule"].as_str().unwrap().starts_with("R1/"), "{nightly}");

    advance(&h, 3600).await;
    let done = job(&h, "/scheduler", "nightly").await;
    assert_eq!((done["successCount"].clone(), done["disabled"].clone()), (json!(2), json!(true)));
}

#[tokio::test]
async fn the_run_controls_validate_and_the_log_can_be_cleared() {
    let h = harness::start().await;
    let url = h.chronos("/_sandbox/chronos/jobs/x/outcome");
    let bad = h.put(&url, &json!({"result": "maybe"})).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    let unknown_key = h.put(&url, &json!({"fail": true})).await;
    assert_eq!(unknown_key.status, StatusCode::BAD_REQUEST);
    // Set before the job exists (a test scripts the failure, then the controller creates).
    assert_eq!(h.post(&url, &json!({"result": "fail"})).await.status, StatusCode::NO_CONTENT);
    let mut x = idle_job("x");
    x["retries"] = json!(0);
    create(&h, "/scheduler", &x).await;
    start_run(&h, "/scheduler", "x").await;
    assert_eq!(runs(&h).await, ["x started 0", "x failed 0"]);
    assert_eq!(h.delete(&url).await.status, StatusCode::NO_CONTENT);
    let default = h.put(&h.marathon("/_sandbox/chronos/outcome"), &json!({"durationMs": 5000})).await;
    assert_eq!(default.status, StatusCode::NO_CONTENT, "served on both servers");
    start_run(&h, "/scheduler", "x").await;
    assert_eq!(runs(&h).await.len(), 3);
    assert_eq!(h.delete(&h.chronos("/_sandbox/chronos/runs")).await.status, StatusCode::NO_CONTENT);
    advance(&h, 5).await;
    assert_eq!(runs(&h).await, ["x succeeded 0"], "back on the default: succeeds after 5 s");
    // Deleting a job kills its run.
    start_run(&h, "/scheduler", "x").await;
    assert_eq!(h.delete(&h.chronos("/scheduler/job/x")).await.status, StatusCode::NO_CONTENT);
    assert_eq!(runs(&h).await[1..], ["x started 0", "x killed 0"]);
}

#[tokio::test]
async fn the_sandbox_command_takes_run_timings() {
    let (mut child, _, chronos) =
        harness::spawn_sandbox(&["--controls", "--job-run-duration", "4321", "--job-retry-delay", "1234"])
            .await;
    let outcomes: Value = reqwest::get(format!("{chronos}/_sandbox/chronos/outcomes"))
        .await
        .expect("served")
        .json()
        .await
        .expect("JSON");
    assert_eq!(outcomes["default"], json!({"result": "succeed", "durationMs": 4321, "retryDelayMs": 1234}));
    child.kill().await.expect("killed");
}

// ---- Marathon: task life cycle, failing and unhealthy apps --------------------------

/// Poll the app listing (with `query`) until `done` holds for the app (5 s at most).
async fn wait_for_app(h: &Harness, query: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let list = h.get(&h.marathon(&format!("/v2/apps{query}"))).await.json();
        let app = list["apps"]
            .as_array()
            .and_then(|apps| apps.iter().find(|a| a["id"] == json!(id)).cloned())
            .unwrap_or(Value::Null);
        if done(&app) {
            return app;
        }
        assert!(std::time::Instant::now() < deadline, "condition not reached for {id}: {app}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn counts(app: &Value) -> Value {
    json!([app["tasksStaged"], app["tasksRunning"], app["tasksHealthy"], app["tasksUnhealthy"]])
}

fn checked_app(id: &str, grace: u64) -> Value {
    json!({"id": id, "cmd": "serve", "instances": 1,
           "healthChecks": [{"protocol": "HTTP", "path": "/", "gracePeriodSeconds": grace}]})
}

async fn app_outcome(h: &Harness, id: &str, body: Value) {
    let answer = h.put(&h.marathon(&format!("/_sandbox/marathon/outcomes{id}")), &body).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.text);
}

#[tokio::test]
async fn tasks_are_staged_then_run_then_pass_their_checks_before_the_deployment_ends() {
    use crate::emulator_marathon::{frames, read_events};
    let h = harness::start().await;
    app_outcome(&h, "/web", json!({"deploymentMs": 2000})).await;
    let mut stream =
        h.http.get(h.marathon("/v2/events")).header("Accept", "text/event-stream").send().await.unwrap();
    read_events(&mut stream, |t| t.contains("\n\n")).await;
    let created = h.post(&h.marathon("/v2/apps"), &checked_app("/web", 300)).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let listed = h.get(&h.marathon("/v2/apps")).await.json();
    assert_eq!(counts(&listed["apps"][0]), json!([1, 0, 0, 0]), "staged at once");
    assert_eq!(listed["apps"][0]["deployments"].as_array().map(Vec::len), Some(1));

    let text = read_events(&mut stream, |t| t.contains("event: deployment_success")).await;
    let lifecycle: Vec<String> = frames(&text)
        .into_iter()
        .filter_map(|(name, data)| match name.as_str() {
            "status_update_event" => Some(data["taskStatus"].as_str().unwrap().to_owned()),
            "health_status_changed_event" => Some(format!("alive={}", data["alive"])),
            "deployment_success" => Some(name),
            _ => None,
        })
        .collect();
    assert_eq!(lifecycle, ["TASK_STAGING", "TASK_RUNNING", "alive=true", "deployment_success"]);
    let done = h.get(&h.marathon("/v2/apps")).await.json();
    assert_eq!(counts(&done["apps"][0]), json!([0, 1, 1, 0]));
    assert_eq!(done["apps"][0]["deployments"], json!([]));
}

#[tokio::test]
async fn an_app_whose_tasks_keep_failing_never_finishes_deploying_and_reports_the_failure() {
    let h = harness::start().await;
    let created = h.post(&h.marathon("/v2/apps"), &json!({"id": "/api", "cmd": "v1", "instances": 1})).await;
    assert_eq!(created.status, StatusCode::CREATED);
    h.settle().await;

    app_outcome(&h, "/api", json!({"tasks": "fail"})).await;
    let upgrade = h.put(&h.marathon("/v2/apps/api"), &json!({"cmd": "v2"})).await;
    assert_eq!(upgrade.status, StatusCode::OK);
    let failed = wait_for_app(&h, "?embed=apps.lastTaskFailure", "/api", |app| {
        app["lastTaskFailure"]["state"] == json!("TASK_FAILED")
    })
    .await;
    assert_eq!(failed["tasksRunning"], json!(1), "the old version keeps running: {failed}");
    assert_eq!(failed["deployments"].as_array().map(Vec::len), Some(1), "still deploying");
    let failure_time = failed["lastTaskFailure"]["timestamp"].clone();
    let relaunched = wait_for_app(&h, "?embed=lastTaskFailure", "/api", |app| {
        app["lastTaskFailure"]["timestamp"] != failure_time
    })
    .await;
    assert_eq!(relaunched["lastTaskFailure"]["appId"], json!("/api"), "unprefixed embed works too");
    let plain = h.get(&h.marathon("/v2/apps")).await.json();
    assert!(plain["apps"][0].get("lastTaskFailure").is_none(), "not in the default listing");
    assert_eq!(h.get(&h.marathon("/v2/deployments")).await.json().as_array().map(Vec::len), Some(1));

    // Fixed: the next relaunch runs and the deployment completes.
    assert_eq!(h.delete(&h.marathon("/_sandbox/marathon/outcomes/api")).await.status, StatusCode::NO_CONTENT);
    h.settle().await;
    let app = h.app("/api").await;
    assert_eq!((app["cmd"].clone(), app["tasksRunning"].clone()), (json!("v2"), json!(1)));
    let tasks = h.get(&h.marathon("/v2/apps/api/tasks")).await.json();
    assert_eq!(tasks["tasks"].as_array().map(Vec::len), Some(1), "the old task is gone: {tasks}");
    assert_eq!(tasks["tasks"][0]["version"], app["version"]);
}

#[tokio::test]
async fn an_unhealthy_app_counts_unhealthy_tasks_after_the_grace_period_and_keeps_deploying() {
    let h = harness::start().await;
    app_outcome(&h, "/db", json!({"tasks": "unhealthy"})).await;
    let created = h.post(&h.marathon("/v2/apps"), &checked_app("/db", 60)).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let running = wait_for_app(&h, "", "/db", |app| app["tasksRunning"] == json!(1)).await;
    assert_eq!(counts(&running), json!([0, 1, 0, 0]), "within grace: neither healthy nor unhealthy");
    advance(&h, 61).await;
    let unhealthy = h.get(&h.marathon("/v2/apps?embed=apps.taskStats")).await.json();
    let app = &unhealthy["apps"][0];
    assert_eq!(counts(app), json!([0, 1, 0, 1]), "grace over: {app}");
    assert_eq!(app["tasksStats"]["totalSummary"]["stats"]["counts"]["unhealthy"], json!(1));
    assert_eq!(app["deployments"].as_array().map(Vec::len), Some(1), "waits for health");
    let tasks = h.get(&h.marathon("/v2/apps/db/tasks")).await.json();
    assert_eq!(tasks["tasks"][0]["healthCheckResults"][0]["alive"], json!(false));

    assert_eq!(h.delete(&h.marathon("/_sandbox/marathon/outcomes/db")).await.status, StatusCode::NO_CONTENT);
    h.settle().await;
    assert_eq!(counts(&h.app("/db").await), json!([0, 1, 1, 0]));
    let outcomes = h.get(&h.marathon("/_sandbox/marathon/outcomes")).await.json();
    assert_eq!(outcomes, json!({}));
    let bad = h.put(&h.marathon("/_sandbox/marathon/outcomes/db"), &json!({"tasks": "sick"})).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}
