//! Run-once jobs (`sync.run: onChange`, issue 17) through the binary against the
//! emulator: a job is run after it is written, its dependants are written only once a
//! run of its current definition succeeded, and a second apply neither writes nor runs
//! anything.

use std::path::Path;

use mesosync::emulator::RecordedRequest;

use super::e2e::mesosync;
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
    assert_eq!(log.len(), 2, "one GET per system: {log:?}");
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
