//! The Kolla example end to end (issue 17 items 6 and 8), through the binary against
//! the emulator: a fresh apply brings the whole control plane up with no manual step,
//! each object written or run only after what it depends on is done — checked on the
//! emulator's own clock (app versions are write times, the run log has each run's
//! start and end) — and raising `openstack_release` re-runs the migrations before the
//! APIs roll; a failing migration holds back only its project, says why in /status,
//! and a fix in git resumes the rollout.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use mesosync::emulator::{JobOutcome, RunEventKind, RunResult, Trigger};
use serde_json::Value;

use super::e2e::{Controller, manifests_copy, mesosync};
use super::harness::{self, Harness};

fn instant(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("{text}: {e}")).with_timezone(&Utc)
}

/// Every dependency edge of the manifests (`object → what it waits for`), read from the
/// plan against an empty cluster (where every object is a create, so every edge shows).
fn edges(h: &Harness, dir: &Path) -> Vec<(Value, Value)> {
    let (code, stdout, stderr) = mesosync(h, &["diff", dir.to_str().unwrap(), "--output", "json"]);
    assert_eq!(code, 2, "{stderr}");
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    let mut out = Vec::new();
    for action in plan["actions"].as_array().unwrap() {
        for dep in action["dependsOn"].as_array().unwrap() {
            out.push((action["object"].clone(), dep.clone()));
        }
    }
    assert!(out.len() > 30, "the Kolla graph: {out:?}");
    out
}

/// When things happened after run-log entry `since`, on the emulator's clock.
struct Timeline {
    /// Each app's current version: when it was last written.
    app_written: HashMap<String, DateTime<Utc>>,
    /// Each job's last started run, and how it started.
    job_started: HashMap<String, (DateTime<Utc>, Trigger)>,
    /// Each job's last successful run.
    job_succeeded: HashMap<String, DateTime<Utc>>,
}

async fn timeline(h: &Harness, since: u64) -> Timeline {
    let apps: Value = h.get(&h.marathon("/v2/apps")).await.json();
    let app_written = apps["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["id"].as_str().unwrap().to_string(), instant(a["version"].as_str().unwrap())))
        .collect();
    let (mut job_started, mut job_succeeded) = (HashMap::new(), HashMap::new());
    for event in h.sandbox.job_runs().into_iter().filter(|e| e.seq >= since) {
        match event.event {
            RunEventKind::Started => {
                job_started.insert(event.job.clone(), (instant(&event.at), event.trigger));
            }
            RunEventKind::Succeeded => {
                job_succeeded.insert(event.job.clone(), instant(&event.at));
            }
            _ => {}
        }
    }
    Timeline { app_written, job_started, job_succeeded }
}

impl Timeline {
    /// When `object` was done: an app written, a job's run succeeded.
    fn done(&self, object: &Value) -> DateTime<Utc> {
        let id = object["id"].as_str().unwrap();
        let found = match object["kind"].as_str().unwrap() {
            "MarathonApp" => self.app_written.get(id),
            _ => self.job_succeeded.get(id),
        };
        *found.unwrap_or_else(|| panic!("{object} was not done"))
    }

    /// When `object` was begun: an app written, a job's run started.
    fn begun(&self, object: &Value) -> DateTime<Utc> {
        let id = object["id"].as_str().unwrap();
        match object["kind"].as_str().unwrap() {
            "MarathonApp" => self.app_written[id],
            _ => self.job_started.get(id).unwrap_or_else(|| panic!("{object} never ran")).0,
        }
    }

    /// Every edge: the dependant began only once its dependency was done.
    fn check_order(&self, edges: &[(Value, Value)], only: impl Fn(&Value) -> bool) {
        for (object, dep) in edges.iter().filter(|(o, _)| only(o)) {
            assert!(
                self.begun(object) >= self.done(dep),
                "{object} began at {} before {dep} was done at {}",
                self.begun(object),
                self.done(dep)
            );
        }
    }
}

fn set_release(dir: &Path, release: &str) {
    let path = dir.join("values.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replace("openstack_release: \"2.0.0\"", &format!("openstack_release: \"{release}\""));
    assert_ne!(text, edited, "openstack_release in values.yaml");
    std::fs::write(path, edited).unwrap();
}

const PROJECTS: [&str; 4] = ["keystone", "glance", "nova", "neutron"];

fn image_of(app: &Value) -> String {
    app["container"]["docker"]["image"].as_str().unwrap().to_string()
}

async fn apply(h: &Harness, dir: &Path) -> (i32, String, String) {
    tokio::task::block_in_place(|| {
        mesosync(h, &["apply", dir.to_str().unwrap(), "--job-retry-delay", "50ms"])
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_kolla_control_plane_comes_up_in_order_then_upgrades_migrations_first() {
    let h = harness::start().await;
    h.sandbox.set_job_run_defaults(mesosync::emulator::RunDefaults { duration_ms: 30, ..Default::default() });
    let dir = manifests_copy();
    let edges = tokio::task::block_in_place(|| edges(&h, dir.path()));

    // Fresh bring-up, no manual step: every job ran once (started by mesosync: each is
    // created after its parents succeeded), every edge kept.
    let (code, stdout, stderr) = apply(&h, dir.path()).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let fresh = timeline(&h, 0).await;
    assert_eq!(fresh.app_written.len(), 20);
    assert_eq!(fresh.job_succeeded.len(), 12, "every bootstrap job succeeded");
    assert!(fresh.job_started.values().all(|(_, t)| *t == Trigger::Manual), "{:?}", fresh.job_started);
    fresh.check_order(&edges, |_| true);
    let runs = h.sandbox.job_runs().len();
    assert_eq!(runs, 24, "12 starts and 12 successes, nothing twice");

    // The upgrade: raise openstack_release. Migrations (db-create, db-sync, bootstrap,
    // endpoints) are replaced and run before the APIs roll, in dependency order.
    set_release(dir.path(), "3.0.0");
    let marker = h.sandbox.job_runs().last().unwrap().seq + 1;
    let (code, stdout, stderr) = apply(&h, dir.path()).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let upgrade = timeline(&h, marker).await;
    for project in PROJECTS {
        let sync = format!("openstack-{project}-db-sync");
        assert!(upgrade.job_succeeded.contains_key(&sync), "{sync} ran for 3.0.0");
        assert_eq!(upgrade.job_started[&sync].1, Trigger::Manual, "the new definition's run, by mesosync");
    }
    upgrade.check_order(&edges, |o| o["kind"] == "ChronosJob" || o["id"].as_str().unwrap().contains("api"));
    let keystone = h.app("/openstack/keystone/keystone-api").await;
    assert!(image_of(&keystone).ends_with(":3.0.0"), "{}", image_of(&keystone));
    assert!(
        upgrade.app_written["/openstack/keystone/keystone-api"]
            >= upgrade.job_succeeded["openstack-keystone-bootstrap"]
    );

    // Nothing left to do.
    h.sandbox.reset_requests();
    let (code, stdout, _) = apply(&h, dir.path()).await;
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("0 to create, 0 to update (0 restart), 0 to scale, 0 to delete"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_migration_keeps_its_project_on_the_old_version_says_why_and_a_fix_resumes() {
    let h = harness::start().await;
    let dir = manifests_copy();
    let (code, stdout, stderr) = apply(&h, dir.path()).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");

    // nova's migration fails for the new release.
    h.sandbox.set_job_outcome(
        "openstack-nova-db-sync",
        Some(JobOutcome { result: RunResult::Fail, ..Default::default() }),
    );
    set_release(dir.path(), "3.0.0");
    let controller = Controller::start(&h, dir.path(), &["--job-retry-delay", "50ms"]);
    let status = controller
        .wait_status("nova's migration given up", |s| {
            s["objects"].as_array().is_some_and(|objects| {
                objects.iter().any(|o| o["id"] == "openstack-nova-db-sync" && o["state"] == "failed")
            })
        })
        .await;
    let objects = status["objects"].as_array().unwrap();
    let find =
        |id: &str| objects.iter().find(|o| o["id"] == id).unwrap_or_else(|| panic!("{id} in {status:#}"));
    let failed = find("openstack-nova-db-sync");
    assert!(failed["error"].as_str().unwrap().contains("run(s) of this definition failed"), "{failed}");
    // The nova API waits, with the reason; the other projects rolled on.
    let nova_api = h.app("/openstack/nova/nova-api").await;
    assert!(image_of(&nova_api).ends_with(":2.0.0"), "nova-api stays on the old version");
    let keystone = h.app("/openstack/keystone/keystone-api").await;
    assert!(image_of(&keystone).ends_with(":3.0.0"), "unrelated projects upgrade");
    let glance = h.app("/openstack/glance/glance-api").await;
    assert!(image_of(&glance).ends_with(":3.0.0"));
    let status = controller
        .wait_status("the nova API reported waiting", |s| {
            s["objects"].as_array().is_some_and(|objects| {
                objects.iter().any(|o| {
                    o["id"] == "/openstack/nova/nova-api"
                        && o["reason"].as_str().is_some_and(|r| r.contains("openstack-nova-db-sync"))
                })
            })
        })
        .await;
    let waiting =
        status["objects"].as_array().unwrap().iter().find(|o| o["id"] == "/openstack/nova/nova-api").cloned();
    let reason = waiting.unwrap()["reason"].as_str().unwrap().to_string();
    assert!(
        reason.contains("last run failed at") && reason.contains("error(s) since last success"),
        "{reason}"
    );

    // The fix, in git: a new definition of the migration (here: a flag), and the job
    // works again. The rollout resumes: nova's migration runs, then its API rolls.
    h.sandbox.set_job_outcome("openstack-nova-db-sync", None);
    let path = dir.path().join("nova/bootstrap.yaml.j2");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace(
            "  retries: 3\n  epsilon: PT60S\n  parents: [openstack-nova-db-create]",
            "  retries: 4\n  epsilon: PT60S\n  parents: [openstack-nova-db-create]",
        ),
    )
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if image_of(&h.app("/openstack/nova/nova-api").await).ends_with(":3.0.0") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nova-api never rolled: {:#}",
            controller.status().await
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    drop(controller);
}
