//! One home per system: everything mesosync knows about Marathon apps or Chronos jobs
//! that the pipeline needs, behind one trait.
//!
//! A [`System`] owns, for its kind of object: the key (`id`, `name`) and the
//! dependency field (`dependencies`, `parents`); how a listed object's head is read
//! from its bytes ([`ReadHead`]: key, ownership mark, version, dependencies,
//! schedule); the ownership mark, read from a document and written into a body, and
//! who owns what; normalizing and aligning both sides (delegating to its normalizer in
//! [`crate::normalize`]); the exact request body of a write and how an update is
//! written (full, scale only, replaced); the live version a saved plan records; which
//! values are secret, and where a write records its `sync.secret` pointers; whether
//! its objects can be run once per definition (`sync.run: onChange`) and the check of
//! such a spec; what "ready for dependants" means; the next runs of a schedule; the
//! check of a manifest's spec ([`check`]). The planner, saved plans, the loader,
//! secret masking, readiness and import ask the system of an object ([`of`]) and do
//! not match on [`ObjectKind`] for these.
//!
//! Adding a third system (Metronome jobs, Marathon pods) is a module implementing
//! [`System`] plus its registration: an [`ObjectKind`] variant (with its names) and
//! one arm in [`of`], a list in `DesiredState` / `LiveState`, and the modules outside
//! this one that ARCHITECTURE.md lists ("Adding a system"). The test-only system in
//! `tests` below shows the trait is enough to check, plan, record secrets and refuse
//! a run-once option with.
//!
//! Writes are executed by `apply`, in one module per system (`apply::marathon`,
//! `apply::chronos`, chosen by kind in one place): execution needs the clients and the
//! apply engine, which sit above this module, so a system is this impl plus its
//! executor there.

pub mod check;
pub mod chronos;
pub mod marathon;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::health::Health;
use crate::model::{
    DesiredObject, Impact, LiveHead, LiveObject, LiveState, ObjectKind, ObjectRef, Provenance, ReadHead,
    SecretValues, Spec, SyncOptions,
};
use crate::normalize::NormalizeOptions;

/// What the pipeline needs to know about one system (see the module docs). A system
/// reads the [`LiveHead`] of its listed objects ([`ReadHead`]: which members hold the
/// key, the ownership mark, the dependencies, …), the rest of the pipeline reads heads.
pub trait System: ReadHead + Sync {
    /// The kind of object it holds.
    fn kind(&self) -> ObjectKind;

    /// The system's name in logs, metrics and errors (`marathon`).
    fn name(&self) -> &'static str;

    /// The system's name for people (`Marathon`).
    fn title(&self) -> &'static str;

    /// The spec member that keys an object (`id`, `name`).
    fn key_field(&self) -> &'static str;

    /// The spec member listing same-system dependencies (`dependencies`, `parents`).
    fn dependency_field(&self) -> &'static str;

    /// A dependency as written in a spec, as a reference (Marathon ids made canonical).
    fn dependency(&self, written: &str) -> ObjectRef;

    /// Check a manifest's `spec` as the server would check it, recording every problem
    /// at its pointer (`/spec/…`) in `check`, and make its key canonical in place: the
    /// object it declares when nothing is wrong with it.
    fn check_spec(&self, spec: &mut Value, check: &mut check::SpecCheck) -> Option<ObjectRef>;

    /// Whether mesosync may start this system's objects itself, once per definition
    /// (`sync.run: onChange`): the loader refuses the option elsewhere. Chronos jobs
    /// only: the runs themselves (`plan::runs`, `apply::job_runs`) read Chronos' run
    /// record and statistics, so a second system saying yes needs its own there.
    fn supports_run_once(&self) -> bool {
        false
    }

    /// Check a spec (already through [`System::check_spec`]) whose manifest says
    /// `sync.run: onChange`, recording every problem in `check`: whether it can be run
    /// once per definition. By default, only when the system [supports] it at all.
    ///
    /// [supports]: System::supports_run_once
    fn check_run_once(&self, spec: &Value, check: &mut check::SpecCheck) -> bool {
        let _ = spec;
        if !self.supports_run_once() {
            check.error("/sync/run", format!("`sync.run: onChange` is not for {} objects", self.title()));
        }
        self.supports_run_once()
    }

    /// The instance whose ownership mark a document (a body, a live object) carries.
    fn owner_of<'a>(&self, doc: &'a Value) -> Option<&'a str>;

    /// Whether `instance` owns the listed object (`prefix`: the Chronos job name prefix
    /// an instance may be restricted to). By default: the head's mark names it.
    fn owns(&self, head: &LiveHead, instance: &str, prefix: Option<&str>) -> bool {
        let _ = prefix;
        head.owner.as_deref() == Some(instance)
    }

    /// The prefix an object's key must have for an instance restricted to `prefix`,
    /// when it falls outside (a write there would never be recognised as owned).
    fn outside_prefix<'a>(&self, key: &str, prefix: Option<&'a str>) -> Option<&'a str> {
        let _ = (key, prefix);
        None
    }

    /// Write the ownership mark of `instance` into `doc`.
    fn mark(&self, doc: &mut Value, instance: &str);

    /// The desired object in canonical form, with its ownership mark.
    fn normalize_desired(&self, spec: &Value, opts: &NormalizeOptions) -> Value;

    /// The live object in canonical form, server-set fields removed.
    fn normalize_live(&self, live: &Value, opts: &NormalizeOptions) -> Value;

    /// Fix-ups that need both normalized sides (before `sync.ignore`).
    fn align(&self, desired: &mut Value, live: &Value, now: DateTime<Utc>, opts: &NormalizeOptions);

    /// The body of a create / update / adopt: the manifest as written with the mark of
    /// `instance` and this system's fix-ups (`sync.ignore` is applied by the caller).
    fn request_body(&self, spec: &Value, live: Option<&Value>, instance: &str, now: DateTime<Utc>) -> Value;

    /// What an update (or adoption) costs the running workload.
    fn update_impact(&self) -> Impact;

    /// When every changed pointer can be written alone (a Marathon `instances`
    /// change), the body of that narrower write.
    fn scale_body(&self, changed: &mut dyn Iterator<Item = &str>, want: &Value) -> Option<Value> {
        let _ = (changed, want);
        None
    }

    /// When the update cannot be done in place (a Chronos job switching between
    /// scheduled and dependent): whether it becomes scheduled.
    fn replaced(&self, want: &Value, live: &Value) -> Option<bool> {
        let _ = (want, live);
        None
    }

    /// The version of a live object a saved plan records.
    fn live_version(&self, live: &Value) -> Option<String>;

    /// The same, of a listed object: the head's version when the listing carries one
    /// (read without parsing the object), else [`System::live_version`] of the whole.
    fn listed_version(&self, live: &LiveObject) -> Option<String> {
        match &live.head().version {
            Some(version) => Some(version.to_string()),
            None => self.live_version(&live.value()),
        }
    }

    /// Append the pointers of the secret values of `doc` (by name) to `out`.
    fn secret_pointers(&self, doc: &Value, out: &mut Vec<String>);

    /// Record a write's `sync.secret` `pointers` on its request body (nothing when
    /// there are none), where a later prune finds them once the manifest is gone. The
    /// record is never compared: [`System::normalize_live`] drops it.
    fn record_secret_pointers(&self, body: &mut Value, pointers: &[String]);

    /// The pointers recorded on a live object (as listed) by
    /// [`System::record_secret_pointers`].
    fn recorded_secret_pointers(&self, live: &Value) -> Vec<String>;

    /// Whether an object in `health` is ready for its dependants to be written
    /// (`apply::readiness`). By default, as it is: nothing to wait for once written.
    fn ready_for_dependants(&self, health: Health) -> bool {
        let _ = health;
        true
    }

    /// The next three runs of the schedule of `doc`, for objects that run on one.
    fn next_runs(&self, doc: &Value, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let _ = (doc, now);
        Vec::new()
    }

    /// The same, from a listed object's head.
    fn next_runs_listed(&self, head: &LiveHead, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let _ = (head, now);
        Vec::new()
    }
}

/// Name fragments that make a variable or label secret (compared case-insensitively).
/// (`PRIVATE` alone is not one: `KOLLA_PRIVATE_INTERFACE` names a NIC; a private key
/// is caught by `KEY`.)
const SECRET_WORDS: &[&str] =
    &["PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "CREDENTIAL", "COOKIE"];

/// Whether a variable or label name looks like it holds a secret. `KEY` counts only
/// as the end of a word (`API_KEY`, `SSHKEY`), not inside one: OpenStack is full of
/// `KEYSTONE_*` names that are not secret.
pub fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_WORDS.iter().any(|w| upper.contains(w))
        || upper.split(|c: char| !c.is_ascii_alphanumeric()).any(|word| word.ends_with("KEY"))
}

/// The pointers of every value of `doc` (a raw or normalized app / job) that is secret
/// by its name, as the object's system says ([`System::secret_pointers`]), plus `extra`.
pub fn secret_pointers(kind: ObjectKind, doc: &Value, extra: &[String]) -> Vec<String> {
    let mut out: Vec<String> = extra.to_vec();
    of(kind).secret_pointers(doc, &mut out);
    out
}

/// The secret values of a spec as written: every scalar under a `sync.secret` pointer
/// (`extra`) and every value secret by its name.
pub fn secret_values(kind: ObjectKind, spec: &Value, extra: &[String]) -> SecretValues {
    SecretValues::at_pointers(spec, secret_pointers(kind, spec, extra))
}

/// The constructor of a desired object lives here, beside the systems, and not in
/// `model`: it reads the system's dependency field and secret names, and `model` must
/// not import `system` (which imports `model`).
impl DesiredObject {
    /// A desired object; its dependencies are read from `spec` and `sync` once.
    pub fn new(
        object: ObjectRef,
        sync: SyncOptions,
        spec: &serde_json::Value,
        mut provenance: Provenance,
    ) -> Self {
        let mut dependencies = sync.depends_on_refs();
        let (kind, field) = (object.kind, of(object.kind).dependency_field());
        if let Some(list) = spec.get(field).and_then(|v| v.as_array()) {
            dependencies.extend(
                list.iter().filter_map(|v| v.as_str()).map(|s| ObjectRef { kind, id: s.to_string() }),
            );
        }
        dependencies.sort();
        dependencies.dedup();
        provenance.compact();
        let secrets = secret_values(object.kind, spec, &sync.secret);
        Self { object, sync, spec: Spec::new(spec), provenance, secrets, dependencies: dependencies.into() }
    }
}

/// Live state is made here, beside the systems, and not in `model`: each object's head
/// is read by its system.
impl LiveState {
    /// Live state from parsed values.
    pub fn from_values(apps: &[Value], jobs: &[Value]) -> Self {
        let read = |kind, list: &[Value]| list.iter().map(|v| LiveObject::from_value(v, of(kind))).collect();
        Self { apps: read(ObjectKind::MarathonApp, apps), jobs: read(ObjectKind::ChronosJob, jobs) }
    }
}

impl<'de> serde::Deserialize<'de> for LiveState {
    /// `{"apps": [...], "jobs": [...]}` (fixtures).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        struct Values {
            #[serde(default)]
            apps: Vec<Value>,
            #[serde(default)]
            jobs: Vec<Value>,
        }
        let v = Values::deserialize(d)?;
        Ok(Self::from_values(&v.apps, &v.jobs))
    }
}

/// The system that holds objects of `kind`: the registry.
pub fn of(kind: ObjectKind) -> &'static dyn System {
    match kind {
        ObjectKind::MarathonApp => &marathon::Marathon,
        ObjectKind::ChronosJob => &chronos::Chronos,
    }
}

/// Every registered system, in [`ObjectKind`] order.
pub fn all() -> impl Iterator<Item = &'static dyn System> {
    ObjectKind::ALL.iter().map(|kind| of(*kind))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::{DesiredObject, Provenance, SyncOptions};
    use crate::plan::{Decision, PlanOptions, Write};

    /// A third system, as small as one can be: "widgets" keyed by `name`, marked by a
    /// `MESOSYNC_OWNER` label, written whole. It stands in for Metronome jobs or
    /// Marathon pods: the planner plans a widget through this impl alone.
    struct Widgets;

    /// Its listed head: the key and the owner label, parsed (the default, slow way).
    impl ReadHead for Widgets {
        fn head_of(&self, v: &Value) -> LiveHead {
            LiveHead {
                key: LiveHead::text_of(v, "name"),
                owner: self.owner_of(v).map(Box::from),
                ..LiveHead::default()
            }
        }
    }

    impl System for Widgets {
        fn kind(&self) -> ObjectKind {
            // References need a registered kind; nothing below looks at it.
            ObjectKind::MarathonApp
        }
        fn name(&self) -> &'static str {
            "widgets"
        }
        fn title(&self) -> &'static str {
            "Widgets"
        }
        fn key_field(&self) -> &'static str {
            "name"
        }
        fn dependency_field(&self) -> &'static str {
            "after"
        }
        fn dependency(&self, written: &str) -> ObjectRef {
            ObjectRef { kind: self.kind(), id: written.to_string() }
        }
        fn check_spec(&self, spec: &mut Value, check: &mut check::SpecCheck) -> Option<ObjectRef> {
            let Some(name) = spec.get("name").and_then(Value::as_str) else {
                check.error("/spec", "missing `name`");
                return None;
            };
            Some(ObjectRef { kind: self.kind(), id: name.to_string() })
        }
        fn owner_of<'a>(&self, doc: &'a Value) -> Option<&'a str> {
            doc.pointer("/labels/MESOSYNC_OWNER")?.as_str()
        }
        fn mark(&self, doc: &mut Value, instance: &str) {
            doc["labels"] = json!({"MESOSYNC_OWNER": instance});
        }
        fn normalize_desired(&self, spec: &Value, opts: &NormalizeOptions) -> Value {
            let mut w = spec.clone();
            self.mark(&mut w, &opts.instance);
            w
        }
        fn normalize_live(&self, live: &Value, _opts: &NormalizeOptions) -> Value {
            let mut w = live.clone();
            if let Some(m) = w.as_object_mut() {
                m.shift_remove("revision");
                m.shift_remove("sensitive");
            }
            w
        }
        fn align(&self, _desired: &mut Value, _live: &Value, _now: DateTime<Utc>, _opts: &NormalizeOptions) {}
        fn request_body(
            &self,
            spec: &Value,
            _live: Option<&Value>,
            instance: &str,
            _now: DateTime<Utc>,
        ) -> Value {
            let mut body = spec.clone();
            self.mark(&mut body, instance);
            body
        }
        fn update_impact(&self) -> Impact {
            Impact::Replace
        }
        fn live_version(&self, live: &Value) -> Option<String> {
            live.get("revision").map(|r| format!("widget:{r}"))
        }
        fn secret_pointers(&self, _doc: &Value, _out: &mut Vec<String>) {}
        fn record_secret_pointers(&self, body: &mut Value, pointers: &[String]) {
            if !pointers.is_empty() {
                body["sensitive"] = json!(pointers);
            }
        }
        fn recorded_secret_pointers(&self, live: &Value) -> Vec<String> {
            let list = live.get("sensitive").and_then(Value::as_array).into_iter().flatten();
            list.filter_map(Value::as_str).map(String::from).collect()
        }
    }

    #[test]
    fn a_third_system_is_planned_through_the_trait_alone() {
        let (opts, now) = (PlanOptions::default(), Utc::now());
        let nopts = opts.normalize_options();
        // The loader's document check goes through the trait too.
        let mut check = check::SpecCheck::default();
        assert_eq!(Widgets.check_spec(&mut json!({"size": 2}), &mut check), None);
        assert_eq!(check.into_problems()[0].pointer, "/spec");
        let mut spec = json!({"name": "w1", "size": 2});
        let object = Widgets.check_spec(&mut spec, &mut check::SpecCheck::default()).unwrap();
        // A widget is not run once per definition: `sync.run: onChange` is refused.
        let mut check = check::SpecCheck::default();
        assert!(!Widgets.check_run_once(&spec, &mut check));
        let problems = check.into_problems();
        assert_eq!(
            (problems[0].pointer.as_str(), problems[0].message.as_str()),
            ("/sync/run", "`sync.run: onChange` is not for Widgets objects")
        );
        let desired = DesiredObject::new(object, SyncOptions::default(), &spec, Provenance::default());
        let plan = |live: Option<&LiveObject>| {
            crate::plan::plan_object(&Widgets, &desired, live, &opts, &nopts, now)
        };

        let create = plan(None);
        assert_eq!(create.decision, Decision::Write(Write::Create));
        assert_eq!(
            create.body,
            Some(json!({"name": "w1", "size": 2, "labels": {"MESOSYNC_OWNER": "mesosync"}}))
        );

        let ours = json!({"name": "w1", "size": 1, "labels": {"MESOSYNC_OWNER": "mesosync"}, "revision": 7});
        let update = plan(Some(&LiveObject::from_value(&ours, &Widgets)));
        assert_eq!(
            (update.decision.clone(), update.impact),
            (Decision::Write(Write::Update), Impact::Replace)
        );
        assert_eq!(update.live_version.as_deref(), Some("widget:7"));
        assert_eq!(update.changes.iter().map(|c| c.pointer.as_str()).collect::<Vec<_>>(), ["/size"]);

        let same = json!({"name": "w1", "size": 2, "labels": {"MESOSYNC_OWNER": "mesosync"}, "revision": 8});
        assert_eq!(plan(Some(&LiveObject::from_value(&same, &Widgets))).decision, Decision::Equal);

        let theirs = json!({"name": "w1", "size": 1, "labels": {"MESOSYNC_OWNER": "other"}});
        assert!(matches!(plan(Some(&LiveObject::from_value(&theirs, &Widgets))).decision, Decision::Hold(_)));

        // `sync.secret` pointers are recorded where the system keeps them, found there
        // again (what a prune masks with once the manifest is gone), and never compared.
        let sync = SyncOptions { secret: vec!["/token".into()], ..SyncOptions::default() };
        let spec = json!({"name": "w2", "token": "hunter2-widget"});
        let secret = DesiredObject::new(
            ObjectRef { kind: Widgets.kind(), id: "w2".into() },
            sync,
            &spec,
            Provenance::default(),
        );
        let written = crate::plan::plan_object(&Widgets, &secret, None, &opts, &nopts, now).body.unwrap();
        assert_eq!(written["sensitive"], json!(["/token"]));
        let pointers = Widgets.recorded_secret_pointers(&written);
        assert!(SecretValues::at_pointers(&written, pointers).contains("hunter2-widget"));
        let listed = LiveObject::from_value(&written, &Widgets);
        let again = crate::plan::plan_object(&Widgets, &secret, Some(&listed), &opts, &nopts, now);
        assert_eq!(again.decision, Decision::Equal);

        // Written is ready: a widget's dependants do not wait on its health.
        assert!(Widgets.ready_for_dependants(crate::health::Health::Progressing));
    }

    #[test]
    fn the_registry_knows_every_kind() {
        for kind in ObjectKind::ALL {
            assert_eq!(of(*kind).kind(), *kind);
            // The names a kind is registered with in `model` agree and lead back to it.
            assert_eq!(kind.system(), of(*kind).name());
            assert_eq!(ObjectKind::from_noun(kind.noun()), Some(*kind));
            assert_eq!(ObjectKind::from_name(&kind.to_string()), Some(*kind));
        }
        assert_eq!(ObjectKind::from_noun("pod"), None);
        let names: Vec<&str> = all().map(|s| s.name()).collect();
        assert_eq!(names, ["marathon", "chronos"]);
    }

    #[test]
    fn pointers_resolve_against_the_spec_as_written_to_values() {
        let job = json!({"environmentVariables": [
            {"name": "Z_PLAIN", "value": "zzz"},
            {"name": "A_URL", "value": "postgres://u:p@db"},
            {"name": "OS_PASSWORD", "value": 987654321}
        ], "command": "run"});
        let s = secret_values(ObjectKind::ChronosJob, &job, &["/environmentVariables/1/value".into()]);
        assert!(s.contains("postgres://u:p@db") && s.contains("987654321"));
        assert!(!s.contains("zzz") && !s.contains("run"));
        assert!(s.contains_value(&json!(987654321)));
        let shared = SecretValues::new(["from-sops".to_string()]);
        let both = s.with(&shared).with(&shared);
        assert_eq!(both.len(), 3);
        assert!(both.contains("from-sops"));
        assert!(!format!("{both:?}").contains("from-sops"));
        let covered =
            secret_values(ObjectKind::MarathonApp, &json!({"env": {"A": "1", "B": "2"}}), &["/env".into()]);
        assert!(covered.contains("1") && covered.contains("2"));
    }
}
