//! Properties of the pure core, over generated Marathon apps and Chronos jobs that mix
//! every spelling the normalizers know (deprecated forms, nulls, floats, unordered
//! sets, partial nested objects):
//! - normalizing is idempotent, on the desired and on the live side;
//! - a normalized object has no diff with itself;
//! - an object live exactly as desired plans to nothing, and stays so when live
//!   differs only under `sync.ignore` pointers;
//! - a plan that reuses remembered verdicts (`plan::Memo`) is the plan a fresh
//!   comparison makes, whether or not the pair differs.

use chrono::{DateTime, Utc};
use mesosync::diff::{diff_object, diff_values};
use mesosync::model::{
    DesiredObject, DesiredState, LiveState, ObjectKind, ObjectRef, Provenance, SyncOptions,
};
use mesosync::normalize::chronos::{canonical_job, desired_job, live_job};
use mesosync::normalize::marathon::{canonical_app, desired_app, live_app};
use mesosync::normalize::{NormalizeOptions, canonical_text};
use mesosync::plan::{ActionKind, Memo, PlanOptions, compute, compute_with};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z").unwrap().with_timezone(&Utc)
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (1u32..4096).prop_map(|n| json!(n)),
        (1u32..4096).prop_map(|n| json!(f64::from(n))),
        (1u32..100).prop_map(|n| json!(f64::from(n) / 10.0))
    ]
}

fn name() -> impl Strategy<Value = String> {
    "[A-Z][A-Z_]{0,8}"
}

fn maybe<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> impl Strategy<Value = Option<T>> {
    prop_oneof![Just(None), s.prop_map(Some)]
}

fn health_check() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["HTTP", "HTTPS", "TCP", "COMMAND", "MESOS_HTTP", "MESOS_TCP"]),
        maybe(0u32..60),
        maybe(0u32..2),
        maybe(prop::bool::ANY),
    )
        .prop_map(|(protocol, delay, port_index, explicit_protocol)| {
            let mut hc = Map::new();
            if explicit_protocol.unwrap_or(true) || protocol != "HTTP" {
                hc.insert("protocol".into(), json!(protocol));
            }
            if protocol == "COMMAND" {
                hc.insert("command".into(), json!({"value": "true"}));
            } else if let Some(i) = port_index {
                hc.insert("portIndex".into(), json!(i));
            }
            if let Some(d) = delay {
                hc.insert("delaySeconds".into(), json!(d));
            }
            Value::Object(hc)
        })
}

/// A Marathon app as a manifest or an old server might spell it.
fn app_spec() -> impl Strategy<Value = Value> {
    (
        (maybe(number()), maybe(number()), maybe(1u32..10), maybe(prop::collection::btree_map(name(), "[a-z0-9]{0,6}", 0..3))),
        (
            maybe(prop::collection::vec(prop::sample::select(vec!["hostname", "rack", "zone"]), 0..3)),
            maybe(prop::collection::vec(health_check(), 0..3)),
            maybe(prop::collection::vec(prop::sample::select(vec![0u32, 0, 8080, 9000]), 0..3)),
            prop::bool::ANY,
        ),
        (
            maybe(prop::collection::vec(prop::sample::select(vec!["a.tgz", "b.sh", "c.zip"]), 0..3)),
            maybe(prop::sample::select(vec!["HOST", "BRIDGE"])),
            maybe(prop::collection::vec(prop::sample::select(vec!["/infra/db", "../cache", "/x/y"]), 0..3)),
            maybe(0.0f64..1.0),
        ),
    )
        .prop_map(|((cpus, mem, instances, env), (constraints, checks, ports, use_port_defs), (uris, network, deps, capacity))| {
            let mut app = json!({"id": "/gen/app", "cmd": "run", "labels": {"TEAM": "core"}, "args": null});
            let obj = app.as_object_mut().unwrap();
            let mut put = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    obj.insert(k.into(), v);
                }
            };
            put("cpus", cpus);
            put("mem", mem);
            put("instances", instances.map(|i| json!(i)));
            put("env", env.map(|e| json!(e)));
            put("constraints", constraints.map(|c| json!(c.iter().map(|f| json!([f, "UNIQUE"])).collect::<Vec<_>>())));
            put("healthChecks", checks.map(|c| json!(c)));
            if network.is_none() {
                let key = if use_port_defs { "portDefinitions" } else { "ports" };
                put(
                    key,
                    ports.map(|p| {
                        if use_port_defs { json!(p.iter().map(|p| json!({"port": p})).collect::<Vec<_>>()) } else { json!(p) }
                    }),
                );
            }
            put("uris", uris.map(|u| json!(u.iter().map(|f| format!("https://example.org/{f}")).collect::<Vec<_>>())));
            put(
                "container",
                network.map(|n| json!({"docker": {"image": "busybox", "network": n, "parameters": []}, "volumes": []})),
            );
            put("dependencies", deps.map(|d| json!(d)));
            put("upgradeStrategy", capacity.map(|c| json!({"minimumHealthCapacity": c})));
            app
        })
}

/// A Chronos job as a manifest might spell it.
fn job_spec() -> impl Strategy<Value = Value> {
    (
        prop::bool::ANY,
        maybe(prop::sample::select(vec![0.0, 0.5, 1.0])),
        maybe(prop::collection::vec((name(), "[a-z]{0,4}"), 0..3)),
        maybe(prop::collection::vec(prop::sample::select(vec!["p1", "p2", "p3"]), 1..3)),
        maybe(prop::sample::select(vec![
            "R/2026-01-01T00:00:00Z/PT1H",
            "R5/2030-01-01T00:00:00.000Z/P1D",
            "R//PT30M",
        ])),
        maybe(prop::bool::ANY),
    )
        .prop_map(|(shell, cpus, vars, parents, schedule, disabled)| {
            let mut job =
                json!({"name": "gen-job", "command": "true", "owner": "ops@example.org", "shell": shell});
            let obj = job.as_object_mut().unwrap();
            if let Some(c) = cpus {
                obj.insert("cpus".into(), json!(c));
            }
            if let Some(v) = vars {
                let list: Vec<Value> = v.into_iter().map(|(n, v)| json!({"name": n, "value": v})).collect();
                obj.insert("environmentVariables".into(), json!(list));
            }
            match (parents, schedule) {
                (Some(p), _) => {
                    obj.insert("parents".into(), json!(p));
                }
                (None, s) => {
                    obj.insert("schedule".into(), json!(s.unwrap_or("R/2026-01-01T00:00:00Z/PT1H")));
                }
            }
            if let Some(d) = disabled {
                obj.insert("disabled".into(), json!(d));
            }
            job
        })
}

fn object(kind: ObjectKind, spec: &Value, ignore: Vec<String>) -> DesiredObject {
    let object = match kind {
        ObjectKind::MarathonApp => ObjectRef::app(spec["id"].as_str().unwrap()),
        ObjectKind::ChronosJob => ObjectRef::job(spec["name"].as_str().unwrap()),
    };
    DesiredObject::new(object, SyncOptions { ignore, ..SyncOptions::default() }, spec, Provenance::default())
}

/// What a server would report after accepting `spec`: the normalized desired form
/// with the ports assigned and the server's own fields added.
fn as_live(kind: ObjectKind, spec: &Value) -> Value {
    let opts = NormalizeOptions::default();
    match kind {
        ObjectKind::MarathonApp => {
            let mut live = desired_app(spec, &opts);
            if let Some(Value::Array(defs)) = live.get_mut("portDefinitions") {
                for (i, d) in defs.iter_mut().enumerate() {
                    if d["port"] == 0 {
                        d["port"] = json!(10000 + i);
                    }
                }
            }
            live["version"] = json!("2026-05-01T00:00:00.000Z");
            live["tasksRunning"] = json!(1);
            live
        }
        ObjectKind::ChronosJob => {
            let mut live = desired_job(spec, &opts);
            live["successCount"] = json!(3);
            live["lastSuccess"] = json!("2026-05-31T00:00:00.000Z");
            live
        }
    }
}

fn plan_for(kind: ObjectKind, d: DesiredObject, live: Value) -> mesosync::plan::Plan {
    let (desired, live) = states(kind, d, live);
    compute(&desired, &live, &PlanOptions::default(), now())
}

fn states(kind: ObjectKind, d: DesiredObject, live: Value) -> (DesiredState, LiveState) {
    match kind {
        ObjectKind::MarathonApp => (
            DesiredState { apps: vec![d], jobs: vec![], ..Default::default() },
            LiveState::from_values(&[live], &[]),
        ),
        ObjectKind::ChronosJob => (
            DesiredState { apps: vec![], jobs: vec![d], ..Default::default() },
            LiveState::from_values(&[], &[live]),
        ),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn normalizing_apps_is_idempotent(spec in app_spec()) {
        let opts = NormalizeOptions::default();
        let once = desired_app(&spec, &opts);
        prop_assert_eq!(canonical_text(&desired_app(&once, &opts)), canonical_text(&once));
        prop_assert_eq!(canonical_text(&canonical_app(&once, None)), canonical_text(&once));
        let live = live_app(&as_live(ObjectKind::MarathonApp, &spec), &opts);
        prop_assert_eq!(canonical_text(&live_app(&live, &opts)), canonical_text(&live));
    }

    #[test]
    fn normalizing_jobs_is_idempotent(spec in job_spec()) {
        let opts = NormalizeOptions::default();
        let once = desired_job(&spec, &opts);
        prop_assert_eq!(canonical_text(&desired_job(&once, &opts)), canonical_text(&once));
        prop_assert_eq!(canonical_text(&canonical_job(&once, None, true)), canonical_text(&once));
        let live = live_job(&as_live(ObjectKind::ChronosJob, &spec), &opts);
        prop_assert_eq!(canonical_text(&live_job(&live, &opts)), canonical_text(&live));
    }

    #[test]
    fn an_object_has_no_diff_with_itself(app in app_spec(), job in job_spec()) {
        let opts = NormalizeOptions::default();
        let app = desired_app(&app, &opts);
        prop_assert!(diff_values(&app, &app).is_empty());
        prop_assert!(diff_object(ObjectKind::MarathonApp, None, &Default::default(), &app, &app).is_empty());
        let job = desired_job(&job, &opts);
        prop_assert!(diff_object(ObjectKind::ChronosJob, None, &Default::default(), &job, &job).is_empty());
    }

    #[test]
    fn every_change_points_at_the_values_it_reports(a in app_spec(), b in app_spec()) {
        let opts = NormalizeOptions::default();
        let (desired, live) = (desired_app(&a, &opts), live_app(&as_live(ObjectKind::MarathonApp, &b), &opts));
        let changes = diff_values(&desired, &live);
        prop_assert_eq!(changes.is_empty(), desired == live);
        for c in changes {
            prop_assert_eq!(desired.pointer(&c.pointer), c.new.as_ref(), "{}", c.pointer);
            prop_assert_eq!(live.pointer(&c.pointer), c.old.as_ref(), "{}", c.pointer);
            prop_assert_ne!(c.old, c.new);
        }
    }

    #[test]
    fn live_as_desired_plans_nothing(app in app_spec(), job in job_spec()) {
        for (kind, spec) in [(ObjectKind::MarathonApp, app), (ObjectKind::ChronosJob, job)] {
            let live = as_live(kind, &spec);
            let plan = plan_for(kind, object(kind, &spec, vec![]), live);
            prop_assert!(!plan.has_changes(), "{:#?}", plan.actions[0].changes);
            prop_assert!(plan.actions[0].changes.is_empty(), "{:#?}", plan.actions[0].changes);
        }
    }

    #[test]
    fn differences_only_in_ignored_fields_are_never_acted_on(
        app in app_spec(),
        job in job_spec(),
        instances in 0u32..50,
        cpus in 1u32..40,
        env_value in "[a-z]{1,5}",
        retries in 0u32..9,
        command in "[a-z ]{1,10}",
    ) {
        let ignore = vec!["/instances".to_string(), "/cpus".to_string(), "/env/EXTRA".to_string()];
        let mut live = as_live(ObjectKind::MarathonApp, &app);
        live["instances"] = json!(instances);
        live["cpus"] = json!(f64::from(cpus) / 10.0);
        live["env"] = {
            let mut env = live.get("env").cloned().unwrap_or(json!({}));
            env["EXTRA"] = json!(env_value);
            env
        };
        let plan = plan_for(ObjectKind::MarathonApp, object(ObjectKind::MarathonApp, &app, ignore), live);
        prop_assert_eq!(plan.actions[0].kind(), ActionKind::NoOp);
        prop_assert!(plan.actions[0].changes.is_empty(), "{:#?}", plan.actions[0].changes);

        let ignore = vec!["/retries".to_string(), "/command".to_string(), "/disabled".to_string()];
        let mut live = as_live(ObjectKind::ChronosJob, &job);
        live["retries"] = json!(retries);
        live["command"] = json!(command);
        live["disabled"] = json!(true);
        let plan = plan_for(ObjectKind::ChronosJob, object(ObjectKind::ChronosJob, &job, ignore), live);
        prop_assert_eq!(plan.actions[0].kind(), ActionKind::NoOp);
        prop_assert!(plan.actions[0].changes.is_empty(), "{:#?}", plan.actions[0].changes);
    }

    #[test]
    fn remembered_verdicts_plan_what_a_fresh_comparison_plans(
        app in app_spec(),
        other in app_spec(),
        job in job_spec(),
        instances in 0u32..5,
    ) {
        let mut scaled = as_live(ObjectKind::MarathonApp, &app);
        scaled["instances"] = json!(instances);
        let cases = [
            (ObjectKind::MarathonApp, &app, as_live(ObjectKind::MarathonApp, &app)),
            (ObjectKind::MarathonApp, &app, scaled),
            (ObjectKind::MarathonApp, &app, as_live(ObjectKind::MarathonApp, &other)),
            (ObjectKind::ChronosJob, &job, as_live(ObjectKind::ChronosJob, &job)),
        ];
        let opts = PlanOptions::default();
        for (kind, spec, live) in cases {
            let (desired, live) = states(kind, object(kind, spec, vec![]), live);
            let fresh = compute(&desired, &live, &opts, now());
            let mut memo = Memo::default();
            let first = compute_with(&desired, &live, &opts, now(), &mut memo);
            // Only a pair found equal is remembered…
            prop_assert_eq!(memo.len(), usize::from(fresh.actions[0].changes.is_empty()));
            // …and the plan made from the memory is the same plan.
            let again = compute_with(&desired, &live, &opts, now(), &mut memo);
            prop_assert_eq!(&first, &fresh);
            prop_assert_eq!(&again, &fresh);
        }
    }
}
