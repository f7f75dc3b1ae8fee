//! Fixture pairs for the pure core: `tests/fixtures/<case>/desired.yaml` (manifest
//! documents), `live.json` (`{"apps": [...], "jobs": [...]}` as the APIs report them)
//! and an optional `options.json` give the plan, pinned as insta snapshots next to the
//! case (`plan.snap`, `text.snap`), plus the facts each case exists for, asserted
//! directly.
//!
//! The manifest loader is not used here: documents become `DesiredObject`s through a
//! small helper with an empty provenance, so these tests pin normalize/diff/plan only.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use mesosync::model::marathon::canonical_app_id;
use mesosync::model::{
    DesiredObject, DesiredState, LiveState, ObjectKind, ObjectRef, Provenance, SyncOptions,
};
use mesosync::normalize::ChronosVersion;
use mesosync::plan::render::{RenderOptions, render_json, render_text};
use mesosync::plan::{ActionKind, Decision, HoldReason, Impact, Plan, PlanOptions, compute};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Manifest documents (`kind`, `sync`, `spec`) as desired state.
pub fn desired_from_yaml(text: &str) -> DesiredState {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).expect("desired.yaml parses");
    let mut state = DesiredState::default();
    for doc in docs.into_iter().filter(|d| !d.is_null()) {
        let mut spec = doc["spec"].clone();
        let sync: SyncOptions =
            serde_json::from_value(doc.get("sync").cloned().unwrap_or(Value::Object(Default::default())))
                .expect("sync block");
        let object = match doc["kind"].as_str() {
            Some("MarathonApp") => {
                let id = canonical_app_id(spec["id"].as_str().expect("app id"));
                spec["id"] = Value::String(id.clone());
                ObjectRef::app(id)
            }
            Some("ChronosJob") => ObjectRef::job(spec["name"].as_str().expect("job name")),
            other => panic!("unknown kind {other:?}"),
        };
        let list = if object.kind == ObjectKind::MarathonApp { &mut state.apps } else { &mut state.jobs };
        list.push(DesiredObject::new(object, sync, &spec, Provenance::default()));
    }
    state.apps.sort_by(|a, b| a.object.id.cmp(&b.object.id));
    state.jobs.sort_by(|a, b| a.object.id.cmp(&b.object.id));
    state
}

/// `options.json`: plan options and the "now" of the case.
fn options(case: &Path) -> (PlanOptions, DateTime<Utc>) {
    let mut opts = PlanOptions::default();
    let mut now = "2026-06-01T00:00:00Z".to_string();
    if let Ok(text) = std::fs::read_to_string(case.join("options.json")) {
        let o: Value = serde_json::from_str(&text).expect("options.json");
        let flag = |k: &str| o.get(k).and_then(Value::as_bool).unwrap_or(false);
        opts.prune = flag("prune");
        opts.adopt = flag("adopt");
        opts.allow_empty = flag("allowEmpty");
        opts.force_prune = flag("forcePrune");
        if let Some(n) = o.get("maxDeleteCount").and_then(Value::as_u64) {
            opts.max_delete_count = n as usize;
        }
        if let Some(i) = o.get("instance").and_then(Value::as_str) {
            opts.instance = i.to_string();
        }
        opts.chronos_version = match o.get("chronosVersion").and_then(Value::as_str) {
            Some("2.4") => Some(ChronosVersion::V2_4),
            Some("2.5") => Some(ChronosVersion::V2_5),
            Some("3") => Some(ChronosVersion::V3),
            _ => None,
        };
        if let Some(v) = o.get("marathonVersion").and_then(Value::as_str) {
            let parts: Vec<u32> = v.split('.').map(|p| p.parse().expect("version number")).collect();
            opts.marathon_version = Some((parts[0], parts[1], parts[2]));
        }
        if let Some(n) = o.get("now").and_then(Value::as_str) {
            now = n.to_string();
        }
    }
    (opts, DateTime::parse_from_rfc3339(&now).expect("now").with_timezone(&Utc))
}

/// Load a case, compute its plan, check the snapshot and return the plan.
pub fn run_case(name: &str) -> Plan {
    let dir = fixtures().join(name);
    let desired =
        desired_from_yaml(&std::fs::read_to_string(dir.join("desired.yaml")).expect("desired.yaml"));
    let live: LiveState =
        serde_json::from_str(&std::fs::read_to_string(dir.join("live.json")).expect("live.json"))
            .expect("live");
    let (opts, now) = options(&dir);
    let plan = compute(&desired, &live, &opts, now);
    // The same inputs always give the same plan (no clock, no randomness).
    assert_eq!(plan, compute(&desired, &live, &opts, now));
    let text = render_text(&plan, &RenderOptions { color: false, show_unchanged: true, unified: true });
    insta::with_settings!({
        snapshot_path => dir.clone(),
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_json_snapshot!("plan", render_json(&plan), {
            ".actions[].liveVersion" => "[version]",
        });
        insta::assert_snapshot!("text", text);
    });
    plan
}

fn action<'p>(plan: &'p Plan, object: &ObjectRef) -> &'p mesosync::plan::Action {
    plan.action(object).unwrap_or_else(|| panic!("no action for {object}"))
}

fn summary(plan: &Plan) -> String {
    plan.summary().to_string()
}

#[test]
fn mixed_create_update_scale_noop_and_prune() {
    let plan = run_case("mixed");
    assert_eq!(summary(&plan), "1 to create, 1 to update (1 restart), 1 to scale, 1 to delete");
    let create = action(&plan, &ObjectRef::app("/infra/new-app"));
    assert_eq!(create.kind(), ActionKind::Create);
    let body = create.body.as_ref().unwrap();
    // What the user wrote plus the ownership label: no defaults, no version.
    assert_eq!(body["labels"]["MESOSYNC_OWNER"], "mesosync");
    assert!(body.get("instances").is_none() && body.get("version").is_none());
    let update = action(&plan, &ObjectRef::app("/infra/mariadb"));
    assert_eq!((update.kind(), update.impact), (ActionKind::Update, Impact::Restart));
    assert_eq!(update.changes.len(), 1);
    assert_eq!(update.changes[0].pointer, "/cpus");
    assert_eq!(update.live_version.as_deref(), Some("2026-05-01T00:00:01.000Z"));
    let scale = action(&plan, &ObjectRef::app("/infra/memcached"));
    assert_eq!((scale.kind(), scale.impact), (ActionKind::Scale, Impact::ScaleOnly));
    assert_eq!(scale.body, Some(serde_json::json!({"instances": 3})));
    assert_eq!(action(&plan, &ObjectRef::app("/infra/rabbitmq")).kind(), ActionKind::NoOp);
    let delete = action(&plan, &ObjectRef::app("/infra/old-app"));
    assert_eq!((delete.kind(), delete.body.as_ref()), (ActionKind::Delete, None));
    // Unowned live objects without a manifest are not even mentioned.
    assert!(plan.action(&ObjectRef::app("/other/unowned-orphan")).is_none());
    // Deletes run after every create/update.
    let last_write =
        plan.actions.iter().filter(|a| a.kind() != ActionKind::Delete).map(|a| a.wave).max().unwrap();
    assert!(
        delete.wave > last_write
            || plan.actions.iter().all(|a| a.kind() == ActionKind::NoOp || a.wave <= delete.wave)
    );
}

/// Every object of the plan is left alone and nothing is reported as changed.
fn assert_no_spurious_diff(plan: &Plan) {
    for a in &plan.actions {
        assert_eq!(a.kind(), ActionKind::NoOp, "{} should be unchanged: {:#?}", a.object, a.changes);
        assert!(a.changes.is_empty(), "{} has spurious changes: {:#?}", a.object, a.changes);
    }
    assert!(!plan.has_changes());
}

#[test]
fn marathon_110_get_shape_equals_the_manifest() {
    let plan = run_case("marathon_110_get_shape");
    assert_eq!(plan.actions.len(), 2);
    assert_no_spurious_diff(&plan);
    assert_eq!(summary(&plan), "0 to create, 0 to update (0 restart), 0 to scale, 0 to delete");
}

#[test]
fn deprecated_forms_equal_their_modern_translation() {
    assert_no_spurious_diff(&run_case("deprecated_forms"));
}

#[test]
fn marathon_14_nulls_ports_uris_and_old_defaults() {
    assert_no_spurious_diff(&run_case("marathon_14_live"));
}

#[test]
fn sets_are_unordered_but_fetch_is_ordered() {
    let plan = run_case("reordered_sets");
    assert_eq!(action(&plan, &ObjectRef::app("/openstack/keystone/api")).kind(), ActionKind::NoOp);
    assert!(action(&plan, &ObjectRef::app("/openstack/keystone/api")).changes.is_empty());
    let fetcher = action(&plan, &ObjectRef::app("/openstack/keystone/fetcher"));
    assert_eq!((fetcher.kind(), fetcher.impact), (ActionKind::Update, Impact::Restart));
    assert!(fetcher.changes.iter().all(|c| c.pointer.starts_with("/fetch/")));
}

#[test]
fn assigned_ports_match_port_zero() {
    let plan = run_case("assigned_ports");
    for id in ["/web/any-port", "/web/bridged"] {
        let a = action(&plan, &ObjectRef::app(id));
        assert_eq!(a.kind(), ActionKind::NoOp, "{id}: {:?}", a.changes);
        assert!(a.changes.is_empty());
    }
    let fixed = action(&plan, &ObjectRef::app("/web/fixed-port"));
    assert_eq!(fixed.kind(), ActionKind::Update);
    assert_eq!(fixed.changes[0].pointer, "/portDefinitions/0/port");
    assert_eq!(
        (fixed.changes[0].old.clone(), fixed.changes[0].new.clone()),
        (Some(8081.into()), Some(8080.into()))
    );
}

#[test]
fn empty_and_absent_collections_are_equal() {
    assert_no_spurious_diff(&run_case("empty_vs_absent"));
}

#[test]
fn ignored_fields_never_cause_a_write_and_keep_their_live_value() {
    let plan = run_case("ignored_fields");
    let only_ignored = action(&plan, &ObjectRef::app("/auto/scaled"));
    assert_eq!(only_ignored.kind(), ActionKind::NoOp);
    assert!(only_ignored.changes.is_empty());
    assert_eq!(action(&plan, &ObjectRef::job("paused-by-hand")).kind(), ActionKind::NoOp);
    let changed = action(&plan, &ObjectRef::app("/auto/scaled-and-changed"));
    assert_eq!(changed.kind(), ActionKind::Update);
    assert_eq!(changed.changes.len(), 1, "{:?}", changed.changes);
    assert_eq!(changed.changes[0].pointer, "/cmd");
    let body = changed.body.as_ref().unwrap();
    assert_eq!(body["instances"], 5, "the autoscaled live instances are kept");
    assert_eq!(body["env"]["BUILD"], "77");
}

#[test]
fn chronos_rewritten_schedules_are_not_changes() {
    let plan = run_case("chronos_rewritten_schedule");
    let nightly = action(&plan, &ObjectRef::job("nightly"));
    assert_eq!(nightly.kind(), ActionKind::NoOp, "{:?}", nightly.changes);
    assert!(nightly.changes.is_empty());
    let report = action(&plan, &ObjectRef::job("report"));
    assert_eq!((report.kind(), report.impact), (ActionKind::Update, Impact::Replace));
    assert_eq!(report.changes.len(), 1);
    assert_eq!(report.changes[0].pointer, "/command");
    // The past desired start is not re-posted: the live start and count are sent.
    let body = report.body.as_ref().unwrap();
    assert_eq!(body["schedule"], "R3/2030-01-03T00:00:00.000Z/P1D");
    assert_eq!(body["description"], "[mesosync:mesosync]");
    assert_eq!(report.next_runs.len(), 3);
    assert_eq!(report.next_runs[0].to_rfc3339(), "2030-01-03T00:00:00+00:00");
    let later = action(&plan, &ObjectRef::job("later"));
    assert_eq!(later.kind(), ActionKind::Update);
    assert_eq!(later.body.as_ref().unwrap()["schedule"], "R/2031-01-01T00:00:00Z/PT12H");
}

#[test]
fn chronos_version_differences_and_defaults_do_not_diff() {
    assert_no_spurious_diff(&run_case("chronos_versions"));
}

#[test]
fn unowned_objects_are_never_written() {
    let plan = run_case("unowned");
    for object in [
        ObjectRef::app("/shared/unlabelled"),
        ObjectRef::app("/shared/other-instance"),
        ObjectRef::job("hand-made"),
    ] {
        let a = action(&plan, &object);
        assert_eq!((a.kind(), a.body.as_ref()), (ActionKind::NoOp, None), "{object}");
        assert!(matches!(a.decision, Decision::Hold(_)), "{object}");
        assert!(a.note().unwrap().contains("left alone"), "{object}");
        assert!(!a.changes.is_empty(), "{object}: its differences are still shown");
    }
    assert_eq!(
        action(&plan, &ObjectRef::app("/shared/other-instance")).decision,
        Decision::Hold(HoldReason::OwnedByOther { owner: "staging".into(), instance: "mesosync".into() })
    );
    let orphan = action(&plan, &ObjectRef::app("/shared/orphan-owned"));
    assert_eq!(orphan.kind(), ActionKind::NoOp);
    assert_eq!(orphan.decision, Decision::Hold(HoldReason::PruneOff { instance: "mesosync".into() }));
    assert!(orphan.note().unwrap().contains("prune is off"));
    assert!(!plan.has_changes());
}

#[test]
fn adoption_is_an_explicit_action_carrying_the_mark() {
    let plan = run_case("adopt");
    let app = action(&plan, &ObjectRef::app("/shared/unlabelled"));
    assert_eq!((app.kind(), app.impact), (ActionKind::Adopt, Impact::Restart));
    assert_eq!(app.body.as_ref().unwrap()["labels"]["MESOSYNC_OWNER"], "mesosync");
    let job = action(&plan, &ObjectRef::job("hand-made"));
    assert_eq!((job.kind(), job.impact), (ActionKind::Adopt, Impact::Replace));
    assert_eq!(job.body.as_ref().unwrap()["description"], "[mesosync:mesosync]");
    // An object marked by another instance is never adopted.
    let other = action(&plan, &ObjectRef::app("/shared/other-instance"));
    assert_eq!((other.kind(), other.body.as_ref()), (ActionKind::NoOp, None));
    assert!(other.note().unwrap().contains("never adopted"));
    assert_eq!(plan.summary().create, 2);
}

#[test]
fn mass_delete_guard_refuses_and_says_why() {
    let plan = run_case("prune_guard");
    let reason = plan.prune_refused.as_ref().expect("refused").to_string();
    assert!(reason.contains("3 of 5"), "{reason}");
    assert!(plan.actions.iter().all(|a| a.kind() != ActionKind::Delete));
    assert_eq!(
        plan.actions
            .iter()
            .filter(|a| matches!(a.decision, Decision::Hold(HoldReason::PruneRefused(_))))
            .count(),
        3
    );
}

#[test]
fn an_empty_manifest_set_never_prunes_without_allow_empty() {
    let plan = run_case("prune_empty");
    assert!(plan.prune_refused.as_ref().unwrap().to_string().contains("--allow-empty"));
    assert!(!plan.has_changes());
    // The unowned app is not even considered.
    assert_eq!(plan.actions.len(), 2);
}

#[test]
fn ordering_follows_one_graph_with_waves_and_children_first_deletes() {
    let plan = run_case("ordering");
    let wave = |o: ObjectRef| action(&plan, &o).wave;
    assert_eq!(wave(ObjectRef::app("/early/dns")), 0);
    let mariadb = wave(ObjectRef::app("/infra/mariadb"));
    let keystone = wave(ObjectRef::app("/openstack/keystone"));
    let glance = wave(ObjectRef::app("/openstack/glance"));
    let bootstrap = wave(ObjectRef::job("keystone-bootstrap"));
    let users = wave(ObjectRef::job("keystone-users"));
    let dashboard = wave(ObjectRef::app("/late/dashboard"));
    assert!(0 < mariadb && mariadb < keystone && keystone < glance);
    assert!(keystone < bootstrap && bootstrap < users, "cross-system dependsOn and parents");
    assert!(dashboard > glance.max(users), "a higher sync.wave comes after everything lower");
    assert_eq!(
        action(&plan, &ObjectRef::job("keystone-bootstrap")).depends_on,
        vec![ObjectRef::app("/openstack/keystone")]
    );
    let (gc, c, p) = (
        wave(ObjectRef::job("old-grandchild")),
        wave(ObjectRef::job("old-child")),
        wave(ObjectRef::job("old-parent")),
    );
    assert!(dashboard < gc && gc < c && c < p, "deletes last, children first");
    assert_eq!(action(&plan, &ObjectRef::job("old-parent")).depends_on, vec![ObjectRef::job("old-child")]);
    // Actions are sorted by wave.
    assert!(plan.actions.windows(2).all(|w| w[0].wave <= w[1].wave));
    // Apply's barriers: a sync.wave group (and the deletes) starts once everything
    // below it ended; inside a group a write waits for its dependencies only.
    let barrier = |o: ObjectRef| action(&plan, &o).barrier;
    assert_eq!(barrier(ObjectRef::app("/early/dns")), 0);
    assert_eq!(barrier(ObjectRef::app("/openstack/glance")), mariadb, "mariadb opens the default group");
    assert_eq!(barrier(ObjectRef::job("keystone-users")), mariadb);
    assert_eq!(barrier(ObjectRef::app("/late/dashboard")), dashboard);
    assert_eq!((barrier(ObjectRef::job("old-child")), barrier(ObjectRef::job("old-parent"))), (gc, gc));
}

#[test]
fn suspended_objects_show_changes_but_are_not_written() {
    let plan = run_case("suspended");
    let a = action(&plan, &ObjectRef::app("/frozen"));
    assert_eq!((a.kind(), a.body.as_ref()), (ActionKind::NoOp, None));
    assert_eq!(a.decision, Decision::Hold(HoldReason::Suspended { would: ActionKind::Update }));
    assert!(a.note().unwrap().contains("suspended"));
    assert_eq!(a.changes.len(), 2);
}

#[test]
fn switching_between_scheduled_and_dependent_is_a_recreate() {
    let plan = run_case("scheduled_to_dependent");
    assert!(!action(&plan, &ObjectRef::job("parent")).recreate());
    for name in ["was-scheduled", "was-dependent"] {
        let a = action(&plan, &ObjectRef::job(name));
        assert_eq!((a.kind(), a.impact, a.recreate()), (ActionKind::Update, Impact::Replace, true), "{name}");
        assert!(a.note().unwrap().contains("deleted and created again"));
    }
    assert!(action(&plan, &ObjectRef::job("was-scheduled")).body.as_ref().unwrap().get("schedule").is_none());
}

#[test]
fn secrets_never_appear_in_any_rendering() {
    let plan = run_case("secrets");
    let text = render_text(&plan, &RenderOptions { color: true, show_unchanged: true, unified: true });
    let json = render_json(&plan).to_string();
    for secret in ["hunter2", "s3cr3t", "tok-old", "tok-new", "os-pw"] {
        assert!(!text.contains(secret), "{secret} leaked into the text rendering:\n{text}");
        assert!(!json.contains(secret), "{secret} leaked into the JSON rendering");
    }
    let app = action(&plan, &ObjectRef::app("/sec/app"));
    let secret_pointers: Vec<&str> =
        app.changes.iter().filter(|c| c.secret).map(|c| c.pointer.as_str()).collect();
    assert_eq!(secret_pointers, vec!["/cmd", "/env/DB_PASSWORD", "/labels/API_TOKEN"]);
    assert!(app.changes.iter().any(|c| c.pointer == "/env/LOG_LEVEL" && !c.secret));
    assert!(text.contains("/env/DB_PASSWORD: (sensitive value) → (sensitive value)"));
    // apply still gets the real value.
    assert_eq!(app.body.as_ref().unwrap()["env"]["DB_PASSWORD"], "s3cr3t-new");
    let job = action(&plan, &ObjectRef::job("sec-job"));
    assert!(job.changes.iter().all(|c| c.secret));
}
