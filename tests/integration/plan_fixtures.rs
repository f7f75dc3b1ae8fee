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
use mesosync::plan::{ActionKind, Impact, Plan, PlanOptions, compute};
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
        list.push(DesiredObject { object, sync, spec, provenance: Provenance::default() });
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
    assert_eq!(create.kind, ActionKind::Create);
    let body = create.body.as_ref().unwrap();
    // What the user wrote plus the ownership label: no defaults, no version.
    assert_eq!(body["labels"]["MESOSYNC_OWNER"], "mesosync");
    assert!(body.get("instances").is_none() && body.get("version").is_none());
    let update = action(&plan, &ObjectRef::app("/infra/mariadb"));
    assert_eq!((update.kind, update.impact), (ActionKind::Update, Impact::Restart));
    assert_eq!(update.changes.len(), 1);
    assert_eq!(update.changes[0].pointer, "/cpus");
    assert_eq!(update.live_version.as_deref(), Some("2026-05-01T00:00:01.000Z"));
    let scale = action(&plan, &ObjectRef::app("/infra/memcached"));
    assert_eq!((scale.kind, scale.impact), (ActionKind::Scale, Impact::ScaleOnly));
    assert_eq!(scale.body, Some(serde_json::json!({"instances": 3})));
    assert_eq!(action(&plan, &ObjectRef::app("/infra/rabbitmq")).kind, ActionKind::NoOp);
    let delete = action(&plan, &ObjectRef::app("/infra/old-app"));
    assert_eq!((delete.kind, delete.body.as_ref()), (ActionKind::Delete, None));
    // Unowned live objects without a manifest are not even mentioned.
    assert!(plan.action(&ObjectRef::app("/other/unowned-orphan")).is_none());
    // Deletes run after every create/update.
    let last_write =
        plan.actions.iter().filter(|a| a.kind != ActionKind::Delete).map(|a| a.wave).max().unwrap();
    assert!(
        delete.wave > last_write
            || plan.actions.iter().all(|a| a.kind == ActionKind::NoOp || a.wave <= delete.wave)
    );
}
