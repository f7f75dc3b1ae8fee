//! The fault matrix, through the real binary against the emulator's fault injection:
//! every case ends converged (`diff` exit 0) with no lost work (every object exists)
//! and no duplicated work (one successful create per object, no delete of anything
//! live).

use std::time::Duration;

use mesosync::emulator::{DeploymentOutcome, FaultRule, System};
use serde_json::json;

use crate::reliability_support::{
    Output, app_yaml, count, eventually, job_yaml, live_app_ids, live_job_names, mesosync, sandbox,
    start_controller, write_apps, writes,
};

fn ids(prefix: &str, n: usize) -> Vec<String> {
    let mut v: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    v.sort();
    v
}

async fn assert_converged(sb: &mesosync::emulator::Sandbox, dir: &std::path::Path) {
    let diff = mesosync(sb, "diff", dir, &[]).await;
    assert_eq!(diff.code, 0, "diff after convergence must be empty:\n{}", diff.all());
}

/// `apply` repeatedly (at most `tries` times) until it exits 0.
async fn apply_until_success(
    sb: &mesosync::emulator::Sandbox,
    dir: &std::path::Path,
    extra: &[&str],
    tries: usize,
) -> Vec<Output> {
    let mut outputs = Vec::new();
    for _ in 0..tries {
        let out = mesosync(sb, "apply", dir, extra).await;
        let done = out.code == 0;
        outputs.push(out);
        if done {
            return outputs;
        }
    }
    panic!("apply did not succeed in {tries} tries: {:#?}", outputs.last());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marathon_5xx_bursts_and_dropped_connections_converge_without_duplicates() {
    let sb = sandbox(Duration::from_millis(50)).await;
    let dir = tempfile::tempdir().unwrap();
    write_apps(dir.path(), 12);
    // A total outage of writes: nothing lands, apply says so.
    sb.faults().add(FaultRule {
        system: Some(System::Marathon),
        method: Some("POST".into()),
        path_prefix: "/v2/apps".into(),
        error_rate: 1.0,
        ..FaultRule::default()
    });
    let out = mesosync(&sb, "apply", dir.path(), &[]).await;
    assert_eq!(out.code, 1, "an apply that wrote nothing must fail");
    assert!(live_app_ids(&sb).await.is_empty());
    assert_eq!(count(&sb, "POST", Some(201)), 0);
    // Then a burst: half the writes answer 503, a fifth of every request is dropped.
    sb.faults().set(vec![
        FaultRule {
            system: Some(System::Marathon),
            path_prefix: "/v2/".into(),
            drop_rate: 0.2,
            ..FaultRule::default()
        },
        FaultRule {
            system: Some(System::Marathon),
            method: Some("POST".into()),
            path_prefix: "/v2/apps".into(),
            error_rate: 0.5,
            error_status: Some(503),
            ..FaultRule::default()
        },
    ]);
    apply_until_success(&sb, dir.path(), &[], 8).await;
    sb.faults().clear();
    assert_eq!(live_app_ids(&sb).await, ids("/rel/app-", 12));
    assert_eq!(count(&sb, "POST", Some(201)), 12, "exactly one successful create per app: {:?}", writes(&sb));
    assert_eq!(count(&sb, "DELETE", None), 0, "{:?}", writes(&sb));
    assert_converged(&sb, dir.path()).await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_time_out_are_retried_and_converge_without_duplicates() {
    let sb = sandbox(Duration::from_millis(50)).await;
    let dir = tempfile::tempdir().unwrap();
    write_apps(dir.path(), 3);
    // Every create takes longer than the client waits.
    sb.faults().add(FaultRule {
        system: Some(System::Marathon),
        method: Some("POST".into()),
        path_prefix: "/v2/apps".into(),
        latency_ms: 1_500,
        ..FaultRule::default()
    });
    let out = mesosync(&sb, "apply", dir.path(), &["--request-timeout", "500ms"]).await;
    assert_eq!(out.code, 1, "timed-out writes are an error");
    assert!(out.all().contains("no answer within 500ms"), "the timeout is named:\n{}", out.all());
    // The server may or may not have finished a create after the client gave up;
    // either way the next apply converges without a second create of the same app.
    // Wait until every request the client gave up on has landed or been dropped.
    eventually(Duration::from_secs(30), "the abandoned creates served or dropped", || async {
        sb.in_flight() == 0
    })
    .await;
    sb.faults().clear();
    apply_until_success(&sb, dir.path(), &[], 2).await;
    assert_eq!(live_app_ids(&sb).await, ids("/rel/app-", 3));
    assert_eq!(count(&sb, "POST", Some(201)), 3, "{:?}", writes(&sb));
    assert_eq!(count(&sb, "DELETE", None), 0);
    assert_converged(&sb, dir.path()).await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_409_lock_held_for_long_is_waited_out_then_written_once() {
    let sb = sandbox(Duration::from_millis(50)).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), app_yaml("/rel/locked", 1)).unwrap();
    apply_until_success(&sb, dir.path(), &[], 1).await;
    // Someone else starts a long deployment on the app (a restart) …
    sb.set_deployment_duration(Duration::from_secs(3));
    let restart = reqwest::Client::new()
        .post(format!("{}/v2/apps/rel/locked/restart", sb.marathon_url()))
        .send()
        .await
        .unwrap();
    assert!(restart.status().is_success());
    sb.reset_requests();
    // … while the manifest scales it.
    std::fs::write(dir.path().join("a.yaml"), app_yaml("/rel/locked", 2)).unwrap();
    let out = mesosync(&sb, "apply", dir.path(), &[]).await;
    assert_eq!(out.code, 0, "a lock is waited out, not an error");
    let puts: Vec<String> = writes(&sb).into_iter().filter(|w| w.starts_with("PUT")).collect();
    assert!(puts.iter().any(|w| w.ends_with(" 409")), "the lock was met: {puts:?}");
    assert_eq!(puts.iter().filter(|w| w.ends_with(" 200")).count(), 1, "one successful write: {puts:?}");
    assert!(!puts.iter().any(|w| w.contains("force")), "no force without --force");
    sb.set_deployment_duration(Duration::from_millis(50));
    assert_converged(&sb, dir.path()).await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_deployment_is_an_error_for_that_app_only_and_recovers() {
    let sb = sandbox(Duration::from_millis(50)).await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{}{}", app_yaml("/rel/good", 1), app_yaml("/rel/bad", 1));
    std::fs::write(dir.path().join("a.yaml"), text).unwrap();
    sb.faults().add(FaultRule::deployment("/rel/bad", DeploymentOutcome::Fail));
    let out = mesosync(&sb, "apply", dir.path(), &[]).await;
    assert_eq!(out.code, 1);
    assert!(out.all().contains("/rel/bad"), "the failed app is named:\n{}", out.all());
    assert!(live_app_ids(&sb).await.contains(&"/rel/good".to_string()));
    // Fixed (the image now starts): a changed manifest deploys and converges.
    sb.faults().clear();
    let text = format!("{}{}", app_yaml("/rel/good", 1), app_yaml("/rel/bad", 2));
    std::fs::write(dir.path().join("a.yaml"), text).unwrap();
    apply_until_success(&sb, dir.path(), &[], 2).await;
    assert_eq!(live_app_ids(&sb).await, vec!["/rel/bad".to_string(), "/rel/good".to_string()]);
    assert_eq!(count(&sb, "POST", Some(201)), 2, "{:?}", writes(&sb));
    assert_eq!(count(&sb, "DELETE", None), 0);
    assert_converged(&sb, dir.path()).await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_that_never_finishes_times_out_then_recovers() {
    let sb = sandbox(Duration::from_millis(50)).await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{}{}", app_yaml("/rel/fine", 1), app_yaml("/rel/stuck", 1));
    std::fs::write(dir.path().join("a.yaml"), text).unwrap();
    sb.faults().add(FaultRule::deployment("/rel/stuck", DeploymentOutcome::NeverFinish));
    let out = mesosync(&sb, "apply", dir.path(), &["--deployment-timeout", "1s"]).await;
    assert_eq!(out.code, 1, "a deployment past its timeout is an error");
    assert!(out.all().contains("/rel/stuck"), "{}", out.all());
    assert!(live_app_ids(&sb).await.contains(&"/rel/fine".to_string()));
    // Later the app's definition is fixed; the stuck deployment still holds the lock,
    // so the operator overrides it (as the timeout message says) and it converges.
    sb.faults().clear();
    let text = format!("{}{}", app_yaml("/rel/fine", 1), app_yaml("/rel/stuck", 2));
    std::fs::write(dir.path().join("a.yaml"), text).unwrap();
    apply_until_success(&sb, dir.path(), &["--force"], 2).await;
    assert_eq!(live_app_ids(&sb).await, vec!["/rel/fine".to_string(), "/rel/stuck".to_string()]);
    assert_eq!(count(&sb, "POST", Some(201)), 2, "{:?}", writes(&sb));
    assert_eq!(count(&sb, "DELETE", None), 0);
    assert_converged(&sb, dir.path()).await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chronos_down_while_marathon_is_up_converges_marathon_and_reports_chronos() {
    let sb = sandbox(Duration::from_millis(50)).await;
    let dir = tempfile::tempdir().unwrap();
    write_apps(dir.path(), 2);
    std::fs::write(dir.path().join("jobs.yaml"), job_yaml("rel-job")).unwrap();
    // An app that waits on the job: with Chronos down it must wait too.
    let waits = "kind: MarathonApp\nsync: {dependsOn: [rel-job]}\nspec: {id: /rel/after-job, cmd: sleep 1, cpus: 0.1, mem: 32}\n";
    std::fs::write(dir.path().join("waits.yaml"), waits).unwrap();
    sb.faults().add(FaultRule { system: Some(System::Chronos), error_rate: 1.0, ..FaultRule::default() });
    let out = mesosync(&sb, "apply", dir.path(), &[]).await;
    assert_eq!(out.code, 1, "an unreachable Chronos is an error");
    assert!(out.stderr.to_lowercase().contains("chronos"), "Chronos is reported:\n{}", out.all());
    assert_eq!(live_app_ids(&sb).await, ids("/rel/app-", 2), "the Marathon side converged anyway");
    assert!(
        !sb.requests().iter().any(|r| r.method != "GET" && r.path.starts_with("/scheduler")),
        "nothing written to Chronos"
    );
    sb.faults().clear();
    apply_until_success(&sb, dir.path(), &[], 1).await;
    assert_eq!(live_job_names(&sb).await, vec!["rel-job".to_string()]);
    let mut all = ids("/rel/app-", 2);
    all.insert(0, "/rel/after-job".to_string());
    assert_eq!(live_app_ids(&sb).await, all);
    assert_eq!(count(&sb, "POST", Some(201)), 3, "{:?}", writes(&sb));
    assert_eq!(count(&sb, "DELETE", None), 0);
    assert_converged(&sb, dir.path()).await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_failing_then_reconnecting_still_corrects_live_drift() {
    let sb = sandbox(Duration::from_millis(50)).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), app_yaml("/rel/watched", 1)).unwrap();
    // The stream is refused from the start.
    sb.faults().add(FaultRule {
        system: Some(System::Marathon),
        path_prefix: "/v2/events".into(),
        error_rate: 1.0,
        ..FaultRule::default()
    });
    // A resync far away: only the event stream can notice live drift in time.
    let mut run = start_controller(&sb, dir.path(), &["--resync", "1h"], &[]).await;
    let events_refused = |sb: &mesosync::emulator::Sandbox| {
        sb.requests().iter().filter(|r| r.path == "/v2/events" && r.status == 503).count()
    };
    eventually(Duration::from_secs(20), "the app created and the stream refused", || async {
        live_app_ids(&sb).await.len() == 1 && events_refused(&sb) >= 2
    })
    .await;
    sb.faults().clear();
    eventually(Duration::from_secs(20), "the event stream reconnected", || async {
        sb.requests().iter().any(|r| r.path == "/v2/events" && r.status == 200)
    })
    .await;
    // Someone scales the app by hand; the event stream brings the controller back.
    let scaled = reqwest::Client::new()
        .put(format!("{}/v2/apps/rel/watched", sb.marathon_url()))
        .json(&json!({"instances": 3}))
        .send()
        .await
        .unwrap();
    assert!(scaled.status().is_success());
    eventually(Duration::from_secs(15), "the drift reverted to 1 instance", || async {
        let app: serde_json::Value = reqwest::get(format!("{}/v2/apps/rel/watched", sb.marathon_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        app["app"]["instances"] == 1
    })
    .await;
    assert!(run.running(), "the controller kept running");
    assert_eq!(count(&sb, "POST", Some(201)), 1);
    assert_eq!(count(&sb, "DELETE", None), 0);
    let out = run.stop().await;
    assert_eq!(out.code, 0);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_the_middle_of_a_large_apply_then_restart_converges_without_duplicates() {
    const APPS: usize = 200;
    let sb = sandbox(Duration::from_millis(400)).await;
    let dir = tempfile::tempdir().unwrap();
    mesosync::generate::write_manifests(
        dir.path(),
        &mesosync::generate::GenSpec { apps: APPS, jobs: 0, seed: 9, per_file: 50, run_once: false },
    )
    .unwrap();
    // Each create takes the server 25 ms: waits hold no write slot, so without it the
    // 200 creates could all land before the kill.
    sb.faults().add(FaultRule {
        system: Some(System::Marathon),
        method: Some("POST".into()),
        path_prefix: "/v2/apps".into(),
        latency_ms: 25,
        ..FaultRule::default()
    });
    let mut cmd = crate::reliability_support::command(&sb, "apply", dir.path());
    // The plan it prints is long; nobody reads it here (a full pipe would stall it).
    cmd.args(["--request-timeout", "5s"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("apply starts");
    eventually(Duration::from_secs(30), "some creates landed", || async {
        count(&sb, "POST", Some(201)) >= 20
    })
    .await;
    child.start_kill().expect("SIGKILL");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.unwrap().unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9), "killed by SIGKILL");
    let created_before = count(&sb, "POST", Some(201));
    assert!(created_before < APPS, "the kill came mid-apply ({created_before} created)");
    // Restarted, with its deployments from the killed run possibly still running.
    sb.set_deployment_duration(Duration::from_millis(20));
    let out = mesosync(&sb, "apply", dir.path(), &["--concurrency", "32"]).await;
    assert_eq!(out.code, 0, "the restarted apply converges");
    assert_eq!(live_app_ids(&sb).await.len(), APPS, "every app exists");
    assert_eq!(count(&sb, "POST", Some(201)), APPS, "exactly one create per app");
    assert_eq!(count(&sb, "POST", Some(409)), 0, "no app created twice");
    assert_eq!(count(&sb, "DELETE", None), 0, "nothing live deleted");
    assert_eq!(count(&sb, "PUT", None), 0, "apps created by the killed run are left alone");
    assert_converged(&sb, dir.path()).await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_reports_chronos_down_converges_marathon_and_catches_up_later() {
    let sb = sandbox(Duration::from_millis(50)).await;
    let dir = tempfile::tempdir().unwrap();
    write_apps(dir.path(), 2);
    std::fs::write(dir.path().join("jobs.yaml"), job_yaml("rel-job")).unwrap();
    sb.faults().add(FaultRule { system: Some(System::Chronos), error_rate: 1.0, ..FaultRule::default() });
    let run = start_controller(&sb, dir.path(), &["--resync", "500ms"], &[]).await;
    eventually(Duration::from_secs(20), "apps created, the job reported failed in /status", || async {
        let status = run.status().await;
        let job_failed = status["objects"].as_array().is_some_and(|objects| {
            objects.iter().any(|o| {
                o.to_string().contains("rel-job")
                    && o["state"] == "failed"
                    && o.to_string().contains("Chronos is unreachable")
            })
        });
        job_failed && live_app_ids(&sb).await.len() == 2
    })
    .await;
    assert!(
        !sb.requests().iter().any(|r| r.method != "GET" && r.path.starts_with("/scheduler")),
        "nothing written to Chronos while it is down"
    );
    sb.faults().clear();
    eventually(Duration::from_secs(20), "the job created once Chronos is back", || async {
        live_job_names(&sb).await == vec!["rel-job".to_string()]
    })
    .await;
    assert_eq!(count(&sb, "POST", Some(201)), 2);
    assert_eq!(count(&sb, "DELETE", None), 0);
    assert_eq!(run.stop().await.code, 0);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_applies_creating_the_same_apps_at_once_both_succeed() {
    // Two runs of the same instance (two operators, a CI job and a controller) plan
    // the same creates; the emulator holds each create 300 ms, so the second create
    // of every app meets a 409 "already exists" for an app that carries our label.
    let sb = sandbox(Duration::from_millis(20)).await;
    let dir = tempfile::tempdir().unwrap();
    write_apps(dir.path(), 6);
    sb.faults().add(FaultRule {
        system: Some(System::Marathon),
        method: Some("POST".into()),
        path_prefix: "/v2/apps".into(),
        latency_ms: 300,
        ..FaultRule::default()
    });
    let (a, b) =
        tokio::join!(mesosync(&sb, "apply", dir.path(), &[]), mesosync(&sb, "apply", dir.path(), &[]));
    sb.faults().clear();
    let conflicts = count(&sb, "POST", Some(409));
    assert!(conflicts > 0, "the race happened: {:?}", writes(&sb));
    for out in [&a, &b] {
        assert_eq!(out.code, 0, "{}", out.all());
        assert!(!out.all().contains("not owned"), "{}", out.all());
    }
    assert_eq!(count(&sb, "POST", Some(201)), 6, "one create per app");
    assert_eq!(count(&sb, "PUT", None) + count(&sb, "DELETE", None), 0, "nothing else written");
    assert_eq!(mesosync(&sb, "diff", dir.path(), &[]).await.code, 0, "converged");
    sb.shutdown().await;
}

/// Issue #17's bring-up bench found apply holding a `--concurrency` slot for the whole
/// wait on a deployment and starting a dependency wave only when the previous one had
/// ended: one slow app held up everything after it. Now a stuck deployment holds up
/// only its own dependants: with one write slot, every other app (and the dependant of
/// a fast one, in a later wave) is written and Healthy before the stuck one times out,
/// and the waits share the event stream instead of each polling `/v2/deployments`.
#[tokio::test]
async fn a_stuck_deployment_holds_no_write_slot_and_no_unrelated_dependant() {
    let sb = sandbox(Duration::from_millis(200)).await;
    sb.faults().add(FaultRule::deployment("/rel/stuck", DeploymentOutcome::NeverFinish));
    let dir = tempfile::tempdir().unwrap();
    let mut text = format!("{}sync:\n  timeout: 4s\n", app_yaml("/rel/stuck", 1));
    for i in 0..4 {
        text.push_str(&app_yaml(&format!("/rel/free-{i}"), 1));
    }
    text.push_str(&format!("{}  dependencies: [/rel/free-0]\n", app_yaml("/rel/dependant", 1)));
    std::fs::write(dir.path().join("apps.yaml"), text).unwrap();
    let out = mesosync(&sb, "apply", dir.path(), &["--concurrency", "1"]).await;
    assert_eq!(out.code, 1, "the stuck app fails the apply");
    let all = out.all();
    let line = |prefix: &str| {
        all.lines()
            .position(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line {prefix:?} in:\n{all}"))
    };
    let stuck = line("app /rel/stuck create (no restart): failed");
    assert!(line("app /rel/dependant create (no restart): applied") < stuck, "{all}");
    for i in 0..4 {
        assert!(line(&format!("app /rel/free-{i} create (no restart): applied")) < stuck, "{all}");
    }
    assert_eq!(live_app_ids(&sb).await.len(), 6);
    let polls = sb.requests().iter().filter(|r| r.method == "GET" && r.path == "/v2/deployments").count();
    assert!(polls <= 1, "{polls} polls of /v2/deployments with the event stream attached");
}
