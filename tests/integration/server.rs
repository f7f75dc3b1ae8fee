//! The controller's HTTP server over real HTTP on 127.0.0.1: /healthz, /readyz,
//! /status, /metrics; and `daemon::run_with` end to end with real signals.

use std::fs;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use mesosync::model::ObjectRef;
use mesosync::plan::{ActionKind, Summary};
use mesosync::runtime::{
    ApiError, AppliedWrite, Controller, FailureStage, ObjectState, ReconcileFailure, ReconcileReport,
    Requeue, Trigger,
};
use mesosync::server::{ServerState, serve};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::fake_reconcile::{FakeReconcile, Running, app_manifest, test_config};

const WAIT: Duration = Duration::from_secs(20);

async fn get(base: &str, path: &str) -> (u16, String, String) {
    let response = reqwest::get(format!("{base}{path}")).await.unwrap();
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

async fn get_json(base: &str, path: &str) -> Value {
    let (status, content_type, body) = get(base, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    assert_eq!(content_type, "application/json");
    serde_json::from_str(&body).unwrap()
}

fn partial_report() -> ReconcileReport {
    ReconcileReport {
        objects: [
            (ObjectRef::app("/web"), ObjectState::Synced),
            (ObjectRef::app("/drift"), ObjectState::Drifted { changes: 3 }),
            (
                ObjectRef::app("/bad"),
                ObjectState::Failed {
                    error: "422 Object is not valid".into(),
                    requeue: Requeue::AwaitChange,
                },
            ),
            (ObjectRef::job("nightly"), ObjectState::Suspended { changes: 1 }),
        ]
        .into(),
        writes: vec![
            AppliedWrite { object: ObjectRef::app("/web"), action: ActionKind::Scale },
            AppliedWrite { object: ObjectRef::job("backup"), action: ActionKind::Create },
        ],
        summary: Summary { create: 1, scale: 1, unchanged: 1, ..Summary::default() },
        api_errors: vec![ApiError { system: "marathon".into(), message: "422 Object is not valid".into() }],
        cancelled: false,
        prune_refused: None,
        health: Default::default(),
        details: Default::default(),
        input: None,
    }
}

#[tokio::test]
async fn healthz_readyz_status_and_metrics_report_the_controller() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("web.yaml"), app_manifest("/web", 1)).unwrap();
    let fake = Arc::new(FakeReconcile::new(dir.path()).with_script(|n, _| {
        Some(if n == 1 {
            Err(ReconcileFailure {
                stage: FailureStage::List,
                message: "GET /v2/apps: connection refused".into(),
                api_errors: vec![ApiError {
                    system: "marathon".into(),
                    message: "connection refused".into(),
                }],
                requeue: Requeue::Backoff,
            })
        } else {
            Ok(partial_report())
        })
    }));
    let mut config = test_config(dir.path());
    // Keep retries out of the way: this test looks at the first two reconciles only.
    config.backoff.initial = Duration::from_secs(3600);
    let running = Running::start(Controller::new(config, fake.clone()));
    let state = ServerState { status: running.status.clone(), metrics: running.metrics.clone() };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(serve(listener, state, running.shutdown.clone().cancelled_owned()));

    // Before any successful list: alive, not ready.
    fake.wait_for_calls(1, WAIT).await;
    assert_eq!(get(&base, "/healthz").await.0, 200);
    let (code, _, body) = get(&base, "/readyz").await;
    assert_eq!(code, 503, "{body}");
    assert!(body.starts_with("not ready"));
    let status = get_json(&base, "/status").await;
    assert_eq!(status["ready"], false);
    assert_eq!(status["last_reconcile"]["outcome"], "error");
    assert_eq!(status["last_reconcile"]["reasons"], json!(["startup"]));
    assert!(status["last_reconcile"]["error"].as_str().unwrap().contains("connection refused"));
    assert_eq!(status["retry"]["failures"], 1);

    // A second reconcile lists live state: ready, with per-object state and drift.
    running.triggers.send(Trigger::Signal);
    fake.wait_for_calls(2, WAIT).await;
    let (code, _, body) = get(&base, "/readyz").await;
    assert_eq!((code, body.as_str()), (200, "ready\n"));

    let status = get_json(&base, "/status").await;
    assert_eq!(status["ready"], true);
    assert_eq!(status["dry_run"], false);
    assert_eq!(status["reconciles"], 2);
    assert_eq!(status["running"], Value::Null);
    assert_eq!(status["revision"], Value::Null, "a plain directory has no git revision");
    assert_eq!(status["manifest_dir"], dir.path().display().to_string());
    let last = &status["last_reconcile"];
    assert_eq!(last["number"], 2);
    assert_eq!(last["outcome"], "partial");
    assert!(last["reasons"].as_array().unwrap().contains(&json!("signal")), "{last}");
    assert!(last["duration_seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(last["summary"]["create"], 1);
    assert_eq!(
        last["writes"][0],
        json!({"object": {"kind": "MarathonApp", "id": "/web"}, "action": "scale"})
    );
    assert_eq!(status["retry"], Value::Null, "the whole-reconcile retry is reset by a listing");
    assert_eq!(status["last_success_at"], Value::Null, "partial is not success");
    let objects = status["objects"].as_array().unwrap();
    let find =
        |id: &str| objects.iter().find(|o| o["id"] == id).unwrap_or_else(|| panic!("{id} in {objects:?}"));
    assert_eq!(find("/web"), &json!({"kind": "MarathonApp", "id": "/web", "state": "synced"}));
    assert_eq!(
        find("/drift"),
        &json!({"kind": "MarathonApp", "id": "/drift", "state": "drifted", "changes": 3})
    );
    assert_eq!(find("nightly")["state"], "suspended");
    let bad = find("/bad");
    assert_eq!(bad["state"], "failed");
    assert_eq!(bad["error"], "422 Object is not valid");
    assert_eq!(bad["requeue"], "await-change", "a 422 waits for a change, not a timer");
    assert_eq!(bad["retry"]["failures"], 1);
    assert!(bad["retry"]["at"].as_str().unwrap().ends_with('Z'));
    let errors: Vec<&str> =
        status["last_errors"].as_array().unwrap().iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].contains("connection refused"));
    assert_eq!(errors[1], "422 Object is not valid");

    let (code, content_type, metrics) = get(&base, "/metrics").await;
    assert_eq!(code, 200);
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    for line in [
        "mesosync_reconciles_total{outcome=\"error\"} 1",
        "mesosync_reconciles_total{outcome=\"partial\"} 1",
        "mesosync_reconcile_duration_seconds_count 2",
        "mesosync_writes_total{system=\"marathon\",action=\"scale\"} 1",
        "mesosync_writes_total{system=\"chronos\",action=\"create\"} 1",
        "mesosync_api_errors_total{system=\"marathon\"} 2",
        "mesosync_drifted_objects 1",
        "mesosync_failed_objects 1",
        "mesosync_last_success_timestamp_seconds 0.0",
        "mesosync_git_dirty 0",
        "# EOF",
    ] {
        assert!(metrics.lines().any(|l| l == line), "missing `{line}` in\n{metrics}");
    }

    assert_eq!(get(&base, "/nope").await.0, 404);

    running.stop().await;
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn run_fails_cleanly_when_the_listen_address_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = test_config(dir.path());
    config.listen = taken.local_addr().unwrap();
    let fake = Arc::new(FakeReconcile::new(dir.path()));
    let err = mesosync::daemon::run(config, fake.clone()).await.unwrap_err();
    assert!(err.to_string().contains(&taken.local_addr().unwrap().to_string()), "{err}");
    assert!(fake.calls().is_empty());
}

fn signal_self(signal: &str) {
    let status =
        Command::new("kill").arg(format!("-{signal}")).arg(std::process::id().to_string()).status().unwrap();
    assert!(status.success());
}

/// The only test that signals the test process: `run_with` has installed its handlers
/// (it answers /healthz) before any signal is sent.
#[tokio::test]
async fn run_with_serves_http_reconciles_on_sighup_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("web.yaml"), app_manifest("/web", 1)).unwrap();
    let fake = Arc::new(FakeReconcile::new(dir.path()));
    let controller = Controller::new(test_config(dir.path()), fake.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let running = tokio::spawn(mesosync::daemon::run_with(controller, listener));

    fake.wait_for_calls(1, WAIT).await;
    assert_eq!(get(&base, "/healthz").await.0, 200);
    assert_eq!(get(&base, "/readyz").await.0, 200);

    signal_self("HUP");
    let calls = fake.wait_for_calls(2, WAIT).await;
    assert_eq!(calls[1].reasons, [Trigger::Signal]);

    signal_self("TERM");
    let result = tokio::time::timeout(WAIT, running).await.expect("run_with stops on SIGTERM");
    result.unwrap().unwrap();
    assert!(reqwest::get(format!("{base}/healthz")).await.is_err(), "the server is gone");
}
