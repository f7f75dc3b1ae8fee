//! The apply engine (and the clients under it) against the real emulator over HTTP.
//! Plans are built by hand here: each test states exactly which actions it executes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use mesosync::apply::{
    self, ApplyError, ApplyOptions, NoProgress, ObjectReport, Outcome, ProgressSink, SkipReason,
};
use mesosync::client::{
    ChronosClient, ChronosVersion, Clients, HttpConfig, MarathonClient, MarathonEvent, RetryPolicy,
};
use mesosync::emulator::{self, DeploymentOutcome, FaultRule, Sandbox, SandboxConfig, System};
use mesosync::model::ObjectRef;
use mesosync::plan::{Action, ActionKind, Decision, Impact, Plan, Write};
use mesosync::reconcile::SavedPlanError;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::client::{dead_url, quick_retry};

async fn sandbox_with(version: emulator::ChronosVersion, deployment: Duration) -> Sandbox {
    emulator::start(SandboxConfig {
        chronos_version: version,
        deployment_duration: deployment,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox starts")
}

async fn sandbox() -> Sandbox {
    sandbox_with(emulator::ChronosVersion::V2_4, Duration::from_millis(100)).await
}

fn http(urls: Vec<String>) -> HttpConfig {
    let mut c = HttpConfig::new(urls);
    c.retry = RetryPolicy {
        max_attempts: 8,
        initial_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
    };
    c.request_timeout = Duration::from_secs(10);
    c.replica_id = Some("test-replica".into());
    c
}

fn clients(sb: &Sandbox) -> Clients {
    Clients {
        marathon: Some(MarathonClient::new(&http(vec![sb.marathon_url()])).unwrap()),
        chronos: Some(ChronosClient::new(&http(vec![sb.chronos_url()]), None).unwrap()),
    }
}

fn opts() -> ApplyOptions {
    ApplyOptions {
        poll_interval: Duration::from_millis(50),
        deployment_timeout: Duration::from_secs(10),
        lock_retry: quick_retry(10),
        error_retry: quick_retry(4),
        ..ApplyOptions::default()
    }
}

fn action(object: ObjectRef, kind: ActionKind, body: Option<Value>) -> Action {
    let impact = match kind {
        ActionKind::Create | ActionKind::NoOp => Impact::None,
        ActionKind::Scale => Impact::ScaleOnly,
        ActionKind::Delete => Impact::Destroy,
        _ if object.kind == mesosync::model::ObjectKind::ChronosJob => Impact::Replace,
        _ => Impact::Restart,
    };
    let decision = match kind {
        ActionKind::NoOp => Decision::Equal,
        ActionKind::Create => Write::Create.into(),
        ActionKind::Update => Write::Update.into(),
        ActionKind::Scale => Write::Scale.into(),
        ActionKind::Delete => Write::Delete.into(),
        ActionKind::Adopt => Write::Adopt { instance: "it".into() }.into(),
        ActionKind::Run => Write::Run(mesosync::plan::runs::RunCause::NotSucceeded).into(),
    };
    Action { body, ..Action::new(object, decision, impact) }
}

fn after(mut a: Action, wave: usize, deps: &[ObjectRef]) -> Action {
    a.wave = wave;
    a.depends_on = deps.to_vec();
    a
}

fn app_body(id: &str) -> Value {
    json!({
        "id": id, "cmd": "sleep 1000", "cpus": 0.1, "mem": 32, "instances": 1,
        "env": {"MODE": "test"}, "labels": {"MESOSYNC_OWNER": "it"}
    })
}

fn plan(actions: Vec<Action>) -> Plan {
    Plan { actions, prune_refused: None }
}

async fn run(plan: &Plan, clients: &Clients, opts: &ApplyOptions) -> apply::ApplyReport {
    let report =
        tokio::time::timeout(Duration::from_secs(60), apply::apply(plan, clients, opts, &NoProgress))
            .await
            .expect("apply ends");
    for o in &report.objects {
        eprintln!("{o}");
    }
    report
}

fn writes(sb: &Sandbox) -> Vec<String> {
    sb.requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| {
            if r.query.is_empty() {
                format!("{} {} {}", r.method, r.path, r.status)
            } else {
                format!("{} {}?{} {}", r.method, r.path, r.query, r.status)
            }
        })
        .collect()
}

async fn live_app(c: &Clients, id: &str) -> Option<Value> {
    c.marathon.as_ref().unwrap().get_app(id).await.unwrap()
}

#[tokio::test]
async fn create_scale_update_delete_make_exactly_the_planned_writes() {
    let sb = sandbox().await;
    let c = clients(&sb);
    let id = "/it/api";

    let report =
        run(&plan(vec![action(ObjectRef::app(id), ActionKind::Create, Some(app_body(id)))]), &c, &opts())
            .await;
    assert!(report.is_success(), "{report}");
    assert!(report.objects[0].deployment_id.is_some());
    assert!(
        c.marathon.as_ref().unwrap().list_deployments().await.unwrap().is_empty(),
        "waited for the deployment"
    );
    let before = live_app(&c, id).await.unwrap();

    // Scale: one PUT, no partialUpdate=false, body {"instances": 3}; no restart.
    sb.reset_requests();
    let scale = action(ObjectRef::app(id), ActionKind::Scale, Some(json!({"instances": 3})));
    assert!(run(&plan(vec![scale]), &c, &opts()).await.is_success());
    assert_eq!(writes(&sb), vec![format!("PUT /v2/apps{id} 200")]);
    let scaled = live_app(&c, id).await.unwrap();
    assert_eq!(scaled["instances"], 3);
    assert_eq!(scaled["env"], before["env"]);
    assert_eq!(
        scaled.pointer("/versionInfo/lastConfigChangeAt"),
        before.pointer("/versionInfo/lastConfigChangeAt")
    );
    assert_ne!(scaled["version"], before["version"]);

    // Update with partialUpdate=false: a field left out really goes away.
    sb.reset_requests();
    let mut body = app_body(id);
    body.as_object_mut().unwrap().remove("env");
    body["instances"] = json!(3);
    let update = action(ObjectRef::app(id), ActionKind::Update, Some(body));
    assert!(run(&plan(vec![update]), &c, &opts()).await.is_success());
    assert_eq!(writes(&sb), vec![format!("PUT /v2/apps{id}?partialUpdate=false 200")]);
    let updated = live_app(&c, id).await.unwrap();
    assert!(updated.get("env").is_none_or(|e| e.as_object().is_some_and(|m| m.is_empty())), "{updated}");
    assert_ne!(
        updated.pointer("/versionInfo/lastConfigChangeAt"),
        before.pointer("/versionInfo/lastConfigChangeAt")
    );

    // Delete.
    let delete = action(ObjectRef::app(id), ActionKind::Delete, None);
    assert!(run(&plan(vec![delete]), &c, &opts()).await.is_success());
    assert!(live_app(&c, id).await.is_none());
    // Every write carried the replica's User-Agent.
    assert!(
        sb.requests()
            .iter()
            .all(|r| r.user_agent.as_deref().is_some_and(|ua| ua.ends_with("(test-replica)")))
    );
}

#[tokio::test]
async fn noop_plans_make_zero_writes() {
    let sb = sandbox().await;
    let c = clients(&sb);
    let p = plan(vec![
        action(ObjectRef::app("/it/a"), ActionKind::NoOp, None),
        action(ObjectRef::job("it-job"), ActionKind::NoOp, None),
    ]);
    let report = run(&p, &c, &opts()).await;
    assert!(report.is_success());
    assert_eq!(report.counts().unchanged, 2);
    assert!(sb.requests().is_empty(), "{:?}", sb.requests());
}

#[tokio::test]
async fn a_locked_app_is_retried_after_the_deployment_ends() {
    let sb = sandbox_with(emulator::ChronosVersion::V2_4, Duration::from_millis(800)).await;
    let c = clients(&sb);
    let id = "/it/locked";
    let m = c.marathon.as_ref().unwrap();
    m.create_app(&app_body(id)).await.unwrap(); // its deployment now holds the lock

    let update = action(ObjectRef::app(id), ActionKind::Update, Some(json!({"id": id, "cmd": "sleep 2000"})));
    let report = run(&plan(vec![update.clone()]), &c, &opts()).await;
    assert!(report.is_success(), "{report}");
    assert!(report.objects[0].attempts >= 2, "{:?}", report.objects[0]);
    let puts: Vec<String> = writes(&sb).into_iter().filter(|w| w.starts_with("PUT")).collect();
    assert_eq!(puts.first().map(|p| p.ends_with(" 409")), Some(true), "{puts:?}");
    assert_eq!(puts.last().map(|p| p.ends_with(" 200")), Some(true), "{puts:?}");
    assert_eq!(live_app(&c, id).await.unwrap()["cmd"], "sleep 2000");

    // With force, a lock is overridden at once.
    sb.reset_requests();
    m.scale_app(id, 2, false).await.unwrap();
    let forced = ApplyOptions { force: true, ..opts() };
    let scale = action(ObjectRef::app(id), ActionKind::Scale, Some(json!({"instances": 3})));
    let report = run(&plan(vec![scale]), &c, &forced).await;
    assert!(report.is_success(), "{report}");
    assert_eq!(report.objects[0].attempts, 1);
    assert!(writes(&sb).contains(&format!("PUT /v2/apps{id}?force=true 200")), "{:?}", writes(&sb));
}

#[tokio::test]
async fn lock_retries_are_bounded() {
    let sb = sandbox().await;
    sb.faults().add(FaultRule::deployment("/it/stuck", DeploymentOutcome::NeverFinish));
    let c = clients(&sb);
    let id = "/it/stuck";
    c.marathon.as_ref().unwrap().create_app(&app_body(id)).await.unwrap();
    let o =
        ApplyOptions { deployment_timeout: Duration::from_millis(300), lock_retry: quick_retry(3), ..opts() };
    let update = action(ObjectRef::app(id), ActionKind::Update, Some(json!({"id": id, "cmd": "sleep 2"})));
    let report = run(&plan(vec![update]), &c, &o).await;
    assert!(
        matches!(&report.objects[0].outcome, Outcome::Failed(ApplyError::StillLocked { attempts: 3, .. })),
        "{report}"
    );
}

#[tokio::test]
async fn a_failed_deployment_blocks_only_its_dependants() {
    let sb = sandbox().await;
    sb.faults().add(FaultRule::deployment("/bad/", DeploymentOutcome::Fail));
    let c = clients(&sb);
    let (db, api, job) =
        (ObjectRef::app("/bad/db"), ObjectRef::app("/bad/api"), ObjectRef::job("bad-bootstrap"));
    let (x, y) = (ObjectRef::app("/good/x"), ObjectRef::app("/good/y"));
    let job_body = json!({"name": "bad-bootstrap", "command": "true", "owner": "a@b.c",
        "schedule": "R1/2030-01-01T00:00:00Z/PT1H"});
    let p = plan(vec![
        action(db.clone(), ActionKind::Create, Some(app_body("/bad/db"))),
        action(x.clone(), ActionKind::Create, Some(app_body("/good/x"))),
        after(
            action(api.clone(), ActionKind::Create, Some(app_body("/bad/api"))),
            1,
            std::slice::from_ref(&db),
        ),
        after(action(y.clone(), ActionKind::Create, Some(app_body("/good/y"))), 1, std::slice::from_ref(&x)),
        after(action(job.clone(), ActionKind::Create, Some(job_body)), 2, std::slice::from_ref(&api)),
    ]);
    let report = run(&p, &c, &opts()).await;
    assert!(!report.is_success());
    assert!(
        matches!(report.get(&db).unwrap().outcome, Outcome::Failed(ApplyError::DeploymentFailed { .. })),
        "{report}"
    );
    assert_eq!(report.get(&api).unwrap().outcome, Outcome::Blocked { by: db.clone() });
    assert_eq!(report.get(&job).unwrap().outcome, Outcome::Blocked { by: api.clone() });
    assert_eq!(report.get(&x).unwrap().outcome, Outcome::Applied);
    assert_eq!(report.get(&y).unwrap().outcome, Outcome::Applied);
    let c2 = report.counts();
    assert_eq!((c2.applied, c2.failed, c2.blocked), (2, 1, 2));
    // Nothing was even tried for the blocked objects.
    assert!(
        !writes(&sb).iter().any(|w| w.contains("/bad/api") || w.contains("iso8601")),
        "{:?}",
        writes(&sb)
    );
}

#[tokio::test]
async fn validation_errors_carry_the_api_details_and_are_not_retried() {
    let sb = sandbox().await;
    let c = clients(&sb);
    let bad = json!({"id": "/it/invalid", "cmd": "x", "args": ["y"], "cpus": 0.1});
    let report =
        run(&plan(vec![action(ObjectRef::app("/it/invalid"), ActionKind::Create, Some(bad))]), &c, &opts())
            .await;
    let Outcome::Failed(ApplyError::Client(e)) = &report.objects[0].outcome else { panic!("{report}") };
    assert_eq!(e.status(), Some(422));
    assert!(e.to_string().contains("422"), "{e}");
    assert_eq!(report.objects[0].attempts, 1);
    assert_eq!(writes(&sb).len(), 1);
}

/// Fault the next `times` requests `rule` matches, then serve normally: a burst that
/// ends after a known number of requests, not after some wall-clock time.
fn burst(sb: &Sandbox, rule: FaultRule, times: u64) {
    sb.faults().add(FaultRule { times: Some(times), ..rule });
}

/// The burst was met whole (every faulted answer was sent, so the writer retried past
/// it); then it is removed.
fn burst_spent(sb: &Sandbox) {
    let rules = sb.faults().list();
    assert!(rules.iter().all(|r| r.times == Some(0)), "a burst was not met whole: {rules:?}");
    sb.faults().clear();
}

#[tokio::test]
async fn server_error_bursts_and_dropped_connections_are_retried() {
    let sb = sandbox().await;
    let c = clients(&sb);
    // Nine retries outlast the bursts of three faulted answers.
    let error_retry = RetryPolicy {
        max_attempts: 10,
        initial_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
    };
    let o = ApplyOptions { error_retry, ..opts() };

    burst(
        &sb,
        FaultRule {
            system: Some(System::Marathon),
            error_rate: 1.0,
            path_prefix: "/v2/apps".into(),
            ..FaultRule::default()
        },
        3,
    );
    let report = run(
        &plan(vec![action(ObjectRef::app("/it/burst"), ActionKind::Create, Some(app_body("/it/burst")))]),
        &c,
        &o,
    )
    .await;
    assert!(report.is_success(), "{report}");
    burst_spent(&sb);
    assert_eq!(sb.requests().iter().filter(|r| r.status == 503).count(), 3, "the burst was seen");
    assert!(live_app(&c, "/it/burst").await.is_some());

    sb.reset_requests();
    burst(
        &sb,
        FaultRule {
            system: Some(System::Marathon),
            drop_rate: 1.0,
            path_prefix: "/v2/apps".into(),
            ..FaultRule::default()
        },
        3,
    );
    let scale = action(ObjectRef::app("/it/burst"), ActionKind::Scale, Some(json!({"instances": 2})));
    let report = run(&plan(vec![scale]), &c, &o).await;
    assert!(report.is_success(), "{report}");
    burst_spent(&sb);
    assert_eq!(live_app(&c, "/it/burst").await.unwrap()["instances"], 2);

    burst(
        &sb,
        FaultRule {
            system: Some(System::Chronos),
            error_rate: 1.0,
            error_status: Some(500),
            ..FaultRule::default()
        },
        3,
    );
    let job = json!({"name": "it-burst", "command": "true", "owner": "a@b.c", "schedule": "R/2030-01-01T00:00:00Z/PT1H"});
    let report =
        run(&plan(vec![action(ObjectRef::job("it-burst"), ActionKind::Create, Some(job))]), &c, &o).await;
    assert!(report.is_success(), "{report}");
    burst_spent(&sb);
}

#[tokio::test]
async fn apply_fails_over_to_a_second_marathon() {
    let sb = sandbox().await;
    let c = Clients {
        marathon: Some(MarathonClient::new(&http(vec![dead_url().await, sb.marathon_url()])).unwrap()),
        chronos: None,
    };
    let report = run(
        &plan(vec![action(ObjectRef::app("/it/fo"), ActionKind::Create, Some(app_body("/it/fo")))]),
        &c,
        &opts(),
    )
    .await;
    assert!(report.is_success(), "{report}");
    assert_eq!(c.marathon.as_ref().unwrap().http().current_base_url(), sb.marathon_url());
}

#[tokio::test]
async fn chronos_prefix_is_detected_per_version() {
    for (served, expected) in [
        (emulator::ChronosVersion::V2_4, ChronosVersion::V2_4),
        (emulator::ChronosVersion::V2_5, ChronosVersion::V2_5),
        (emulator::ChronosVersion::V3, ChronosVersion::V3),
    ] {
        let sb = sandbox_with(served, Duration::from_millis(50)).await;
        let c = clients(&sb);
        let chronos = c.chronos.as_ref().unwrap();
        assert_eq!(chronos.version().await.unwrap(), expected);

        // Parent before child, children deleted before parents.
        let parent = json!({"name": "it-parent", "command": "true", "owner": "a@b.c",
            "schedule": "R/2030-01-01T00:00:00Z/PT1H"});
        let child =
            json!({"name": "it-child", "command": "true", "owner": "a@b.c", "parents": ["it-parent"]});
        let (p, k) = (ObjectRef::job("it-parent"), ObjectRef::job("it-child"));
        let create = plan(vec![
            action(p.clone(), ActionKind::Create, Some(parent)),
            after(action(k.clone(), ActionKind::Create, Some(child)), 1, std::slice::from_ref(&p)),
        ]);
        let report = run(&create, &c, &opts()).await;
        assert!(report.is_success(), "{expected}: {report}");
        let names: Vec<String> = chronos
            .list_jobs()
            .await
            .unwrap()
            .iter()
            .filter_map(|j| j.head().key.as_deref().map(String::from))
            .collect();
        assert!(names.contains(&"it-parent".into()) && names.contains(&"it-child".into()), "{names:?}");
        let prefix = expected.prefix();
        assert!(writes(&sb).contains(&format!("POST {prefix}/dependency 204")), "{:?}", writes(&sb));

        let delete = plan(vec![
            action(k.clone(), ActionKind::Delete, None),
            after(action(p.clone(), ActionKind::Delete, None), 1, std::slice::from_ref(&k)),
        ]);
        assert!(run(&delete, &c, &opts()).await.is_success());
        assert!(chronos.list_jobs().await.unwrap().is_empty());
        // Deleting again: Chronos' 400 for an unknown job means "already gone".
        assert!(run(&delete, &c, &opts()).await.is_success());
    }
}

#[tokio::test]
async fn the_event_stream_reports_deployment_ends() {
    let sb = sandbox().await;
    let c = clients(&sb);
    let m = c.marathon.as_ref().unwrap();
    let mut events = m.events(&[]).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), events.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(first, MarathonEvent::Attached);
    let w = m.create_app(&app_body("/it/ev")).await.unwrap();
    let want = w.deployment_id.unwrap();
    let found = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(e) = events.next().await {
            if let Ok(MarathonEvent::DeploymentSuccess { id }) = e {
                if id == want {
                    return true;
                }
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(found);
}

/// Cancels once the first action ends.
struct CancelAfterFirst {
    cancel: CancellationToken,
    started: AtomicUsize,
    lines: Mutex<Vec<String>>,
}

impl ProgressSink for CancelAfterFirst {
    fn started(&self, a: &Action) {
        self.started.fetch_add(1, Ordering::SeqCst);
        self.lines.lock().unwrap().push(format!("start {}", a.object));
    }
    fn finished(&self, _: &Action, r: &ObjectReport) {
        self.lines.lock().unwrap().push(format!("end {r}"));
        self.cancel.cancel();
    }
}

#[tokio::test]
async fn cancellation_finishes_the_write_in_flight_and_starts_no_other() {
    let sb = sandbox().await;
    let c = clients(&sb);
    let cancel = CancellationToken::new();
    let sink =
        CancelAfterFirst { cancel: cancel.clone(), started: AtomicUsize::new(0), lines: Mutex::default() };
    let (a, b) = (ObjectRef::app("/it/c1"), ObjectRef::app("/it/c2"));
    let p = plan(vec![
        action(a.clone(), ActionKind::Create, Some(app_body("/it/c1"))),
        // A later sync.wave group: starts only once /it/c1 ended.
        Action {
            barrier: 1,
            ..after(action(b.clone(), ActionKind::Create, Some(app_body("/it/c2"))), 1, &[])
        },
        after(
            action(ObjectRef::app("/it/c3"), ActionKind::Create, Some(app_body("/it/c3"))),
            2,
            std::slice::from_ref(&b),
        ),
    ]);
    let o = ApplyOptions { cancel: Some(cancel), ..opts() };
    let report = apply::apply(&p, &c, &o, &sink).await;
    assert_eq!(report.get(&a).unwrap().outcome, Outcome::Applied);
    assert_eq!(report.get(&b).unwrap().outcome, Outcome::Skipped(SkipReason::Cancelled));
    // Skipped too, not "blocked by" the skipped one.
    assert_eq!(
        report.get(&ObjectRef::app("/it/c3")).unwrap().outcome,
        Outcome::Skipped(SkipReason::Cancelled)
    );
    assert_eq!(sink.started.load(Ordering::SeqCst), 1);
    assert!(live_app(&c, "/it/c2").await.is_none());
    let lines = sink.lines.lock().unwrap().clone();
    assert!(lines[0] == "start app /it/c1" && lines[1].contains("applied"), "{lines:?}");
}

#[tokio::test]
async fn a_closed_write_fence_stops_every_write() {
    let sb = sandbox().await;
    let c = clients(&sb);
    let fence_calls = Arc::new(AtomicUsize::new(0));
    let calls = Arc::clone(&fence_calls);
    let o = ApplyOptions {
        write_fence: Some(Arc::new(move || {
            calls.fetch_add(1, Ordering::SeqCst);
            false
        })),
        ..opts()
    };
    let p = plan(vec![
        action(ObjectRef::app("/it/f"), ActionKind::Create, Some(app_body("/it/f"))),
        action(ObjectRef::job("it-f"), ActionKind::Delete, None),
    ]);
    let report = run(&p, &c, &o).await;
    assert_eq!(report.counts().skipped, 2);
    assert!(report.objects.iter().all(|r| r.outcome == Outcome::Skipped(SkipReason::FenceLost)));
    assert!(fence_calls.load(Ordering::SeqCst) >= 2);
    assert!(writes(&sb).is_empty(), "{:?}", writes(&sb));
}

/// The one saved-plan path (`apply --plan FILE DIR`): plan again from the manifests,
/// refuse before any write when live moved since the file was made, else apply.
#[tokio::test]
async fn a_stale_saved_plan_is_refused_before_any_write() {
    let sb = sandbox().await;
    let c = clients(&sb);
    let id = "/it/saved";
    c.marathon.as_ref().unwrap().create_app(&app_body(id)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("saved.yaml"),
        "kind: MarathonApp\nspec:\n  id: /it/saved\n  cmd: sleep 3\n  cpus: 0.1\n  mem: 32\n",
    )
    .unwrap();
    let pipeline = mesosync::reconcile::Pipeline {
        dir: dir.path().to_path_buf(),
        load: Default::default(),
        clients: c.clone(),
        plan: mesosync::plan::PlanOptions { instance: "it".into(), ..Default::default() },
        apply: ApplyOptions { force: true, ..opts() },
        on_revision: None,
        caches: Default::default(),
    };
    // As `diff --out` writes it, and as `apply --plan` reads it back.
    let made = pipeline.plan(chrono::Utc::now()).await.unwrap().plan;
    assert!(made.has_changes());
    let text = serde_json::to_string(&mesosync::plan::masked_for_saving(&made)).unwrap();
    let saved: Plan = serde_json::from_str(&text).unwrap();

    // Someone scales the app by hand: the saved plan is stale.
    c.marathon.as_ref().unwrap().scale_app(id, 2, true).await.unwrap();
    sb.reset_requests();
    let err = pipeline.apply_saved(&saved, &NoProgress).await.unwrap_err();
    assert!(matches!(&err, SavedPlanError::LiveMoved(moved) if moved.0[0].0 == ObjectRef::app(id)), "{err}");
    assert!(writes(&sb).is_empty());

    // A plan made now applies.
    let made = pipeline.plan(chrono::Utc::now()).await.unwrap().plan;
    let saved: Plan = serde_json::from_str(&serde_json::to_string(&made).unwrap()).unwrap();
    let report = pipeline.apply_saved(&saved, &NoProgress).await.unwrap().expect("writes");
    assert!(report.is_success(), "{report}");
    assert_eq!(live_app(&c, id).await.unwrap()["cmd"], "sleep 3");
}

#[tokio::test]
async fn an_unowned_app_holding_the_id_is_never_overwritten() {
    let sb = sandbox().await;
    let c = clients(&sb);
    let id = "/it/theirs";
    c.marathon
        .as_ref()
        .unwrap()
        .create_app(&json!({"id": id, "cmd": "sleep 5", "cpus": 0.1, "mem": 32}))
        .await
        .unwrap();
    let report =
        run(&plan(vec![action(ObjectRef::app(id), ActionKind::Create, Some(app_body(id)))]), &c, &opts())
            .await;
    assert!(matches!(report.objects[0].outcome, Outcome::Failed(ApplyError::NotOwned(_))), "{report}");
    assert_eq!(live_app(&c, id).await.unwrap()["cmd"], "sleep 5");
}

#[tokio::test]
async fn without_events_polling_still_waits_for_deployments() {
    let sb = sandbox_with(emulator::ChronosVersion::V2_4, Duration::from_millis(400)).await;
    let c = clients(&sb);
    let o = ApplyOptions { use_events: false, ..opts() };
    let report = run(
        &plan(vec![action(ObjectRef::app("/it/poll"), ActionKind::Create, Some(app_body("/it/poll")))]),
        &c,
        &o,
    )
    .await;
    assert!(report.is_success(), "{report}");
    assert!(report.objects[0].duration >= Duration::from_millis(300), "{report}");
    assert!(c.marathon.as_ref().unwrap().list_deployments().await.unwrap().is_empty());
    assert!(!sb.requests().iter().any(|r| r.path == "/v2/events"));
    assert!(sb.requests().iter().any(|r| r.path == "/v2/deployments"));
}

#[tokio::test]
async fn a_deployment_that_never_ends_times_out_for_that_object_only() {
    let sb = sandbox().await;
    sb.faults().add(FaultRule::deployment("/it/crashloop", DeploymentOutcome::NeverFinish));
    let c = clients(&sb);
    let o = ApplyOptions { deployment_timeout: Duration::from_millis(500), ..opts() };
    let p = plan(vec![
        action(ObjectRef::app("/it/crashloop"), ActionKind::Create, Some(app_body("/it/crashloop"))),
        action(ObjectRef::app("/it/fine"), ActionKind::Create, Some(app_body("/it/fine"))),
    ]);
    let report = run(&p, &c, &o).await;
    let stuck = report.get(&ObjectRef::app("/it/crashloop")).unwrap();
    assert!(matches!(stuck.outcome, Outcome::Failed(ApplyError::DeploymentTimeout { .. })), "{report}");
    assert!(stuck.deployment_id.is_some());
    assert_eq!(report.get(&ObjectRef::app("/it/fine")).unwrap().outcome, Outcome::Applied);
}

#[tokio::test]
async fn chronos_3_hidden_child_is_reported_and_recreate_switches_job_type() {
    let sb = sandbox_with(emulator::ChronosVersion::V3, Duration::from_millis(50)).await;
    let c = clients(&sb);
    let o = ApplyOptions { chronos_visibility_timeout: Duration::from_millis(500), ..opts() };
    // 3.x accepts a child of a missing parent (204) and hides it: apply says so.
    let orphan = json!({"name": "it-orphan", "command": "true", "owner": "a@b.c", "parents": ["it-missing"]});
    let report =
        run(&plan(vec![action(ObjectRef::job("it-orphan"), ActionKind::Create, Some(orphan))]), &c, &o).await;
    assert!(matches!(report.objects[0].outcome, Outcome::Failed(ApplyError::NotVisible(_))), "{report}");

    // A scheduled job becoming dependent: DELETE, then POST …/dependency.
    let chronos = c.chronos.as_ref().unwrap();
    let sched = |name: &str| json!({"name": name, "command": "true", "owner": "a@b.c", "schedule": "R/2030-01-01T00:00:00Z/PT1H"});
    chronos.put_job(&sched("it-p")).await.unwrap();
    chronos.put_job(&sched("it-k")).await.unwrap();
    sb.reset_requests();
    let mut switch = action(
        ObjectRef::job("it-k"),
        ActionKind::Update,
        Some(json!({"name": "it-k", "command": "true", "owner": "a@b.c", "parents": ["it-p"]})),
    );
    switch.decision = Write::Replace { to_scheduled: false }.into();
    let report = run(&plan(vec![switch]), &c, &o).await;
    assert!(report.is_success(), "{report}");
    assert_eq!(writes(&sb), vec!["DELETE /v1/scheduler/job/it-k 204", "POST /v1/scheduler/dependency 204"]);
    let jobs = chronos.list_jobs().await.unwrap();
    let k = jobs.iter().find(|j| j.head().key.as_deref() == Some("it-k")).unwrap().value();
    assert_eq!(k["parents"], json!(["it-p"]));
}

#[tokio::test]
async fn listing_live_state_costs_one_get_per_system() {
    for served in [emulator::ChronosVersion::V3, emulator::ChronosVersion::V2_5] {
        let sb = sandbox_with(served, Duration::from_millis(50)).await;
        let c = clients(&sb);
        let job = json!({"name": "it-l", "command": "true", "owner": "a@b.c", "schedule": "R/2030-01-01T00:00:00Z/PT1H"});
        ChronosClient::new(&http(vec![sb.chronos_url()]), None).unwrap().put_job(&job).await.unwrap();
        sb.reset_requests();
        let first = c.list_live(None).await.unwrap();
        assert_eq!(first.jobs.len(), 1);
        // Detection: 3.x answers the first probe, which is the listing; 2.x one 404 more.
        let expected_first = if served == emulator::ChronosVersion::V3 { 2 } else { 3 };
        assert_eq!(sb.requests().len(), expected_first, "{:?}", sb.requests());
        sb.reset_requests();
        let again = c.list_live(Some("MESOSYNC_OWNER==it")).await.unwrap();
        assert_eq!(again, first);
        let seen: Vec<String> =
            sb.requests().iter().map(|r| format!("{} {}?{}", r.method, r.path, r.query)).collect();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(seen.iter().all(|s| s.starts_with("GET ")));
        let version = c.chronos.as_ref().unwrap().version().await.unwrap();
        assert_eq!(
            version,
            if served == emulator::ChronosVersion::V3 { ChronosVersion::V3 } else { ChronosVersion::V2_5 }
        );
    }
}

fn desired(spec: Value) -> mesosync::model::DesiredObject {
    let object = match spec.get("id").and_then(Value::as_str) {
        Some(id) => ObjectRef::app(id),
        None => ObjectRef::job(spec["name"].as_str().unwrap()),
    };
    mesosync::model::DesiredObject::new(
        object,
        mesosync::model::SyncOptions::default(),
        &spec,
        mesosync::model::Provenance::default(),
    )
}

fn desired_state(mut objects: Vec<Value>) -> mesosync::model::DesiredState {
    objects.sort_by_key(|o| o.get("id").or(o.get("name")).and_then(Value::as_str).map(String::from));
    let (apps, jobs): (Vec<_>, Vec<_>) = objects
        .into_iter()
        .map(desired)
        .partition(|d| d.object.kind == mesosync::model::ObjectKind::MarathonApp);
    mesosync::model::DesiredState { apps, jobs, ..Default::default() }
}

/// plan → apply → plan again: the second plan must be all NoOps and applying it free.
async fn converge(
    c: &Clients,
    sb: &Sandbox,
    state: &mesosync::model::DesiredState,
    popts: &mesosync::plan::PlanOptions,
) -> Plan {
    let live = c.list_live(None).await.unwrap();
    let p = mesosync::plan::compute(state, &live, popts, chrono::Utc::now());
    let report = run(&p, c, &opts()).await;
    assert!(report.is_success(), "{report}");
    let live = c.list_live(None).await.unwrap();
    let again = mesosync::plan::compute(state, &live, popts, chrono::Utc::now());
    let writes_planned: Vec<String> = again
        .actions
        .iter()
        .filter(|a| a.is_write())
        .map(|a| format!("{} {:?} {:?}", a.object, a.kind(), a.changes))
        .collect();
    assert!(writes_planned.is_empty(), "not converged: {writes_planned:?}");
    sb.reset_requests();
    assert!(run(&again, c, &opts()).await.is_success());
    assert!(writes(sb).is_empty(), "{:?}", writes(sb));
    p
}

#[tokio::test]
async fn planned_changes_converge_and_a_second_apply_writes_nothing() {
    let sb = sandbox().await;
    let c = clients(&sb);
    let popts = mesosync::plan::PlanOptions { prune: true, force_prune: true, ..Default::default() };
    let db = json!({"id": "/e2e/db", "cmd": "sleep 1000", "cpus": 0.1, "mem": 64, "instances": 1});
    let api = json!({"id": "/e2e/api", "cmd": "sleep 1000", "cpus": 0.1, "mem": 32, "instances": 1,
        "env": {"MODE": "a"}, "dependencies": ["/e2e/db"]});
    let job = json!({"name": "e2e-backup", "command": "true", "owner": "ops@example.com",
        "schedule": "R/2030-01-01T00:00:00Z/PT1H"});
    let child = json!({"name": "e2e-report", "command": "true", "owner": "ops@example.com", "parents": ["e2e-backup"]});

    let first =
        converge(&c, &sb, &desired_state(vec![db.clone(), api.clone(), job.clone(), child.clone()]), &popts)
            .await;
    assert_eq!(first.summary().create, 4);

    // Scale only: one Scale action, no restart.
    let mut api2 = api.clone();
    api2["instances"] = json!(2);
    let scaled =
        converge(&c, &sb, &desired_state(vec![db.clone(), api2.clone(), job.clone(), child.clone()]), &popts)
            .await;
    assert_eq!(scaled.summary().scale, 1, "{:?}", scaled.summary());

    // A removed env var: an Update, and the variable really goes away.
    let mut api3 = api2.clone();
    api3.as_object_mut().unwrap().remove("env");
    let updated =
        converge(&c, &sb, &desired_state(vec![db.clone(), api3.clone(), job.clone(), child.clone()]), &popts)
            .await;
    assert_eq!(updated.summary().update, 1, "{:?}", updated.summary());
    let live_api = live_app(&c, "/e2e/api").await.unwrap();
    assert!(live_api.get("env").is_none_or(|e| e.as_object().is_some_and(|m| m.is_empty())), "{live_api}");

    // Prune the child job and the api app (children first).
    let pruned = converge(&c, &sb, &desired_state(vec![db, job]), &popts).await;
    assert_eq!(pruned.summary().delete, 2, "{:?}", pruned.summary());
    assert!(live_app(&c, "/e2e/api").await.is_none());
}

/// Tracks how many actions are in flight at once.
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl ProgressSink for InFlight {
    fn started(&self, _: &Action) {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
    }
    fn finished(&self, _: &Action, _: &ObjectReport) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Records the order in which actions finish.
#[derive(Default)]
struct Finished(Mutex<Vec<(String, bool)>>);

impl ProgressSink for Finished {
    fn started(&self, _: &Action) {}
    fn finished(&self, a: &Action, r: &ObjectReport) {
        self.0.lock().unwrap().push((a.object.id.clone(), r.outcome == Outcome::Applied));
    }
}

#[tokio::test]
async fn concurrency_bounds_write_requests_not_the_waits_after_them() {
    let sb = sandbox_with(emulator::ChronosVersion::V2_4, Duration::from_millis(200)).await;
    // Every create is held 50 ms by the server, so the writes of the plan overlap; two
    // apps' deployments never end.
    sb.faults().add(FaultRule {
        system: Some(System::Marathon),
        method: Some("POST".into()),
        path_prefix: "/v2/apps".into(),
        latency_ms: 50,
        ..FaultRule::default()
    });
    sb.faults().add(FaultRule::deployment("/it/stuck", DeploymentOutcome::NeverFinish));
    let c = clients(&sb);
    let create = |id: &str| action(ObjectRef::app(id), ActionKind::Create, Some(app_body(id)));
    let mut actions: Vec<Action> = ["/it/stuck0", "/it/stuck1"]
        .iter()
        .map(|id| Action { timeout: Some(Duration::from_secs(3)), ..create(id) })
        .collect();
    actions.extend(["/it/free2", "/it/free3", "/it/free4"].iter().map(|id| create(id)));
    // In a later wave of the same group, after a free app only.
    actions.push(after(create("/it/after"), 1, &[ObjectRef::app("/it/free2")]));
    let sink = Finished::default();
    let o = ApplyOptions { concurrency: 2, ..opts() };
    let report = apply::apply(&plan(actions), &c, &o, &sink).await;
    eprintln!("{report}");
    assert_eq!(sb.counters().get(emulator::controls::MAX_WRITES_IN_FLIGHT), Some(&2), "{:?}", sb.counters());
    // The two stuck deployments held no write slot while waited for: everything else
    // was written, deployed and done before they timed out — the dependant too, as
    // soon as its own dependency was done (not when its whole wave was).
    let finished = sink.0.into_inner().unwrap();
    let ids: Vec<&str> = finished.iter().map(|(id, _)| id.as_str()).collect();
    let (first, last) = ids.split_at(4);
    let mut first = first.to_vec();
    first.sort_unstable();
    assert_eq!(first, ["/it/after", "/it/free2", "/it/free3", "/it/free4"], "{finished:?}");
    let at = |x: &str| ids.iter().position(|id| *id == x);
    assert!(at("/it/free2") < at("/it/after"), "{finished:?}");
    assert!(last.iter().all(|id| id.starts_with("/it/stuck")), "{finished:?}");
    assert!(finished[..4].iter().all(|(_, applied)| *applied), "{finished:?}");
    assert!(finished[4..].iter().all(|(_, applied)| !applied), "{finished:?}");
}

#[tokio::test]
async fn barriers_are_sequential_and_a_wide_wave_runs_at_once() {
    let sb = sandbox_with(emulator::ChronosVersion::V2_4, Duration::from_millis(200)).await;
    let c = clients(&sb);
    let creates = |prefix: &str| -> Vec<Action> {
        (0..5)
            .map(|n| {
                let id = format!("/it/{prefix}{n}");
                action(ObjectRef::app(&id), ActionKind::Create, Some(app_body(&id)))
            })
            .collect()
    };
    // One object per sync.wave group (its barrier is its wave): never more than one
    // in flight, whatever the bound.
    let sink = InFlight::default();
    let waves: Vec<Action> = creates("waves")
        .into_iter()
        .enumerate()
        .map(|(w, a)| Action { barrier: w, ..after(a, w, &[]) })
        .collect();
    let report = apply::apply(&plan(waves), &c, &opts(), &sink).await;
    assert!(report.is_success(), "{report}");
    assert_eq!(sink.max.load(Ordering::SeqCst), 1);

    let sink = InFlight::default();
    let o = ApplyOptions { concurrency: 2, ..opts() };
    let report = apply::apply(&plan(creates("wide")), &c, &o, &sink).await;
    assert!(report.is_success(), "{report}");
    assert_eq!(sink.max.load(Ordering::SeqCst), 5);
}
