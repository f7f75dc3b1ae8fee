//! Plans: the ordered Create / Update / Scale / Delete / Adopt actions computed from the
//! diff, ownership and prune rules. Pure: no I/O, no clock ("now" is a parameter).
//!
//! A plan says, for every managed object, what will happen to it, why (the field
//! changes, with the file:line of each desired value), what it costs (a Marathon
//! restart, a scale only, a Chronos replace that resets run statistics), and exactly
//! what body `apply` will send — so `apply` makes no decisions of its own.
//!
//! Every action carries a [`Decision`]: `Equal`, `Hold(HoldReason)` or `Write(Write)`.
//! Reasons are types, put into words in one place (`HoldReason`'s `Display`), so
//! callers match on them and never read the words back.
//!
//! Decisions (DESIGN §3, §6 leave them open):
//! - A live object with a manifest's id that this instance does not own is held
//!   ([`HoldReason::Unowned`], [`HoldReason::OwnedByOther`]; its differences still
//!   shown) unless adoption is enabled; then it is a [`Write::Adopt`] whose body
//!   carries the ownership mark. The summary counts adoptions as creates.
//! - An owned object without a manifest is held ([`HoldReason::PruneOff`]) while prune
//!   is off. When the guard (or the empty-manifest rule) refuses, the would-be deletes
//!   are held ([`HoldReason::PruneRefused`]) and [`Plan::prune_refused`] says why: the
//!   guard refuses more than `max_delete_count` deletes or more than
//!   `max_delete_ratio` of the owned set.
//! - A Chronos job switching between scheduled and dependent is a [`Write::Replace`]
//!   (reported as one update, impact Replace): apply deletes it, then creates `body`.
//! - `sync.suspend` holds any write ([`HoldReason::Suspended`]); the changes stay
//!   listed. [`Action::hold`] is the one place a write becomes a no-op.
//! - Marathon bodies are the manifest as written plus the ownership label (never the
//!   defaults-filled form, never `version`), with `sync.ignore` pointers set to their
//!   live values. Chronos bodies carry the description marker and, when the desired
//!   start is not in the future, the live start and repeat count.
//! - Saved plans hold `live_version` per object (Marathon `version`; Chronos a hash of
//!   the job without run statistics) and the bodies with every secret value masked
//!   (unlike Terraform plan files): `apply --plan` takes the real values from the
//!   manifests and refuses a plan they no longer produce (see `saved`).

mod compute;
mod decision;
mod order;
pub mod render;
pub mod runs;
mod saved;

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[cfg(test)]
pub(crate) use compute::plan_object;
pub use compute::{Memo, PlanOptions, compute, compute_with, created_form};
pub use decision::{Decision, HoldReason, PruneRefusal, Write};
pub use saved::{
    LiveChange, LiveMoved, WritesDiffer, check_still_valid, has_masked_secrets, live_version,
    masked_for_saving, matches_saved,
};

use crate::diff::FieldChange;
pub use crate::model::Impact;
use crate::model::ObjectRef;

/// What happens to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    /// The object does not exist live: create it.
    Create,
    /// It exists and differs in more than `instances`: write the full definition.
    Update,
    /// A Marathon app that differs only in `instances`: `PUT {"instances": N}`.
    Scale,
    /// An owned object with no manifest, with prune enabled: delete it.
    Delete,
    /// A live object with the same id that mesosync does not own yet: take it over
    /// (only when adoption is allowed); the write carries the ownership mark.
    Adopt,
    /// A run-once job equal to its manifest that apply runs (or waits for).
    Run,
    /// Nothing to do (equal, suspended with no change, or only ignored fields differ).
    NoOp,
}

/// One planned action.
///
/// Saved plan files keep the format they had before [`Decision`] was a type: the
/// decision is written as `kind`, `note` and `recreate` (see [`ActionWire`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Action {
    /// The object acted on.
    pub object: ObjectRef,
    /// What happens, and why.
    pub decision: Decision,
    /// What it costs.
    pub impact: Impact,
    /// The field-level differences that justify it. An equal object has none; a held
    /// one (suspended, unowned, refused prune) still lists them.
    pub changes: Vec<FieldChange>,
    /// Exactly what `apply` sends (full definition, `{"instances": N}`, Chronos job);
    /// `None` for Delete and NoOp.
    pub body: Option<Value>,
    /// The live `version` (Marathon) the action was computed against, for saved plans.
    pub live_version: Option<String>,
    /// Objects that must be done first (they are in earlier waves).
    pub depends_on: Vec<ObjectRef>,
    /// Dependencies this plan leaves as they are (no write of their own, so no wave):
    /// apply writes this object only once they are ready (an app Healthy). Never
    /// serialized: a saved plan is applied through a fresh plan.
    pub awaits: Vec<ObjectRef>,
    /// Ordering wave: the topological level of the write within its `sync.wave`
    /// group (deletes: their own group, last), counted across groups; its
    /// `depends_on` are in lower waves.
    pub wave: usize,
    /// The first wave of its group: apply starts it once every write of a lower wave
    /// than this ended and its `depends_on` did, not when its whole wave may start
    /// (a `sync.wave` group is a barrier, a dependency wave is not). Never serialized:
    /// a plan read back from a file takes its own wave (every lower wave first).
    pub barrier: usize,
    /// For scheduled Chronos jobs: the next three run times.
    pub next_runs: Vec<DateTime<Utc>>,
    /// The secret values of the object (its `sync.secret` and secret-named values as
    /// written, and the shared SOPS values), so renderers, saved plans and error
    /// messages can mask `body` and what a server says about it. Never serialized.
    pub secrets: crate::model::SecretValues,
    /// The masked, normalized documents the changes were computed from, for the
    /// unified-diff rendering. Never holds a secret value.
    pub preview: Option<Preview>,
    /// A run-once job's run, made (or waited for) after the write, if any: the action
    /// is done only once it succeeded. Not saved in plan files (a saved plan is
    /// applied through a fresh plan of the manifests).
    pub run: Option<runs::RunOnce>,
    /// The object's `sync.timeout`: how long its write (an app: deployment and health)
    /// and its dependants' wait for it may take. Never serialized (a saved plan is
    /// applied through a fresh plan of the manifests).
    pub timeout: Option<std::time::Duration>,
}

/// An [`Action`] as a plan file holds it.
#[derive(Deserialize)]
struct ActionWire {
    object: ObjectRef,
    kind: ActionKind,
    impact: Impact,
    changes: Vec<FieldChange>,
    body: Option<Value>,
    live_version: Option<String>,
    depends_on: Vec<ObjectRef>,
    wave: usize,
    next_runs: Vec<DateTime<Utc>>,
    note: Option<String>,
    #[serde(default)]
    recreate: bool,
    #[serde(default)]
    preview: Option<Preview>,
}

/// [`ActionWire`] borrowed, for writing.
#[derive(Serialize)]
struct ActionOut<'a> {
    object: &'a ObjectRef,
    kind: ActionKind,
    impact: Impact,
    changes: &'a [FieldChange],
    body: &'a Option<Value>,
    live_version: &'a Option<String>,
    depends_on: &'a [ObjectRef],
    wave: usize,
    next_runs: &'a [DateTime<Utc>],
    note: Option<String>,
    recreate: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    preview: &'a Option<Preview>,
}

impl Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ActionOut {
            object: &self.object,
            kind: self.kind(),
            impact: self.impact,
            changes: &self.changes,
            body: &self.body,
            live_version: &self.live_version,
            depends_on: &self.depends_on,
            wave: self.wave,
            next_runs: &self.next_runs,
            note: self.note(),
            recreate: self.recreate(),
            preview: &self.preview,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Action {
    /// The decision of a write comes back exactly (the adopting instance and the
    /// replaced job's new type are read from the body, which carries them); a held
    /// object keeps its reason as recorded words ([`HoldReason::Recorded`]).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = ActionWire::deserialize(d)?;
        let body = w.body.as_ref();
        let decision = match w.kind {
            ActionKind::NoOp => match w.note {
                Some(words) => Decision::Hold(HoldReason::Recorded(words.into())),
                None => Decision::Equal,
            },
            ActionKind::Create => Write::Create.into(),
            ActionKind::Update if w.recreate => {
                Write::Replace { to_scheduled: body.is_some_and(crate::normalize::chronos::is_scheduled) }
                    .into()
            }
            ActionKind::Update => Write::Update.into(),
            ActionKind::Scale => Write::Scale.into(),
            ActionKind::Delete => Write::Delete.into(),
            ActionKind::Run => Write::Run(runs::RunCause::NotSucceeded).into(),
            ActionKind::Adopt => {
                let owner = body.and_then(|b| crate::plan::compute::body_owner(w.object.kind, b));
                Write::Adopt { instance: owner.unwrap_or_default().into() }.into()
            }
        };
        Ok(Action {
            object: w.object,
            decision,
            impact: w.impact,
            changes: w.changes,
            body: w.body,
            live_version: w.live_version,
            depends_on: w.depends_on,
            awaits: Vec::new(),
            wave: w.wave,
            barrier: w.wave,
            next_runs: w.next_runs,
            secrets: Default::default(),
            preview: w.preview,
            run: None,
            timeout: None,
        })
    }
}

/// Masked, normalized live and desired documents of one object.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Preview {
    /// Live, normalized and masked (`None`: does not exist live).
    pub live: Option<Value>,
    /// Desired, normalized and masked (`None`: no manifest, i.e. a prune).
    pub desired: Option<Value>,
}

impl Action {
    /// An action on `object` with no changes, no body and no ordering yet; the
    /// planner (and tests) fill in the rest with struct update syntax.
    pub fn new(object: ObjectRef, decision: impl Into<Decision>, impact: Impact) -> Self {
        Action {
            object,
            decision: decision.into(),
            impact,
            changes: Vec::new(),
            body: None,
            live_version: None,
            depends_on: Vec::new(),
            awaits: Vec::new(),
            wave: 0,
            barrier: 0,
            next_runs: Vec::new(),
            secrets: Default::default(),
            preview: None,
            run: None,
            timeout: None,
        }
    }

    /// Whether apply writes anything for this action.
    pub fn is_write(&self) -> bool {
        matches!(self.decision, Decision::Write(_))
    }

    /// The action word (`create`, `update`, … `noop`).
    pub fn kind(&self) -> ActionKind {
        self.decision.kind()
    }

    /// The decision in words (why it is held, what a write implies), if any.
    pub fn note(&self) -> Option<String> {
        self.decision.note()
    }

    /// Whether apply deletes then creates the object (a Chronos replace).
    pub fn recreate(&self) -> bool {
        self.decision.recreate()
    }

    /// Leave the object alone for `reason`: no write, no body, no impact. The one
    /// place a would-be write becomes a no-op (suspension, ownership prefix, prune,
    /// backoff, an unreachable Chronos); the changes stay listed.
    pub fn hold(&mut self, reason: HoldReason) {
        self.decision = Decision::Hold(reason);
        self.impact = Impact::None;
        self.body = None;
        self.run = None;
    }
}

/// Totals for the summary line; `Display` prints it
/// (`3 to create, 2 to update (1 restart), 1 to scale, 0 to delete`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Creates (and adoptions).
    pub create: usize,
    /// Updates.
    pub update: usize,
    /// Of the updates, how many restart Marathon tasks.
    pub restart: usize,
    /// Scale-only changes.
    pub scale: usize,
    /// Deletes.
    pub delete: usize,
    /// Run-once jobs equal to their manifest that are run (or waited for).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub run: usize,
    /// NoOps: objects equal to their manifest, or left alone (with a note).
    pub unchanged: usize,
    /// Of the NoOps, deletes the mass-delete guard (or the empty-manifest rule)
    /// refused: `apply` fails when there are any.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub refused_deletes: usize,
}

/// A whole plan: actions in execution order (by wave, then by id).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Every action, NoOps included, sorted by (wave, object).
    pub actions: Vec<Action>,
    /// Set when the mass-delete guard (or the empty-manifest rule) refused the
    /// deletes: the plan then holds no Delete actions and this says why.
    pub prune_refused: Option<PruneRefusal>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} to create, {} to update ({} restart), {} to scale, {} to delete",
            self.create, self.update, self.restart, self.scale, self.delete
        )?;
        if self.run > 0 {
            write!(f, ", {} job(s) to run", self.run)?;
        }
        if self.refused_deletes > 0 {
            write!(f, " ({} refused by the prune guard)", self.refused_deletes)?;
        }
        Ok(())
    }
}

impl Plan {
    /// Count the actions by kind.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for a in &self.actions {
            match a.kind() {
                ActionKind::Create | ActionKind::Adopt => s.create += 1,
                ActionKind::Update => {
                    s.update += 1;
                    if a.impact == Impact::Restart {
                        s.restart += 1;
                    }
                }
                ActionKind::Scale => s.scale += 1,
                ActionKind::Delete => s.delete += 1,
                ActionKind::Run => s.run += 1,
                ActionKind::NoOp => s.unchanged += 1,
            }
            if matches!(a.decision, Decision::Hold(HoldReason::PruneRefused(_))) {
                s.refused_deletes += 1;
            }
        }
        s
    }

    /// Whether any action writes (`diff` exits 2 then).
    pub fn has_changes(&self) -> bool {
        self.actions.iter().any(Action::is_write)
    }

    /// The action on `object`, if any.
    pub fn action(&self, object: &ObjectRef) -> Option<&Action> {
        self.actions.iter().find(|a| &a.object == object)
    }
}

/// The writes that would send the import placeholder ([`crate::diff::mask::PLACEHOLDER`])
/// as a secret value, as `object pointer` lines: a manifest imported with redacted
/// secrets whose values were never filled in. Applying it would overwrite the real
/// secret, so `apply` and `run` refuse such a plan.
pub fn placeholder_writes(plan: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    for action in plan.actions.iter().filter(|a| a.is_write()) {
        let Some(body) = &action.body else { continue };
        for pointer in crate::diff::mask::placeholder_pointers(action.object.kind, body, &action.secrets) {
            out.push(format!("{} {pointer}", action.object));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::{DesiredObject, DesiredState, LiveState, Provenance, SyncOptions};

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn desired_app(id: &str, deps: &[&str]) -> DesiredObject {
        DesiredObject::new(
            ObjectRef::app(id),
            SyncOptions::default(),
            &json!({"id": id, "cmd": "run", "dependencies": deps}),
            Provenance::default(),
        )
    }

    fn live_app(id: &str, owner: Option<&str>) -> Value {
        let labels = owner.map(|o| json!({"MESOSYNC_OWNER": o})).unwrap_or(json!({}));
        json!({"id": id, "cmd": "run", "labels": labels, "version": format!("v-{id}")})
    }

    /// `owned` live apps owned by the default instance, of which the first `kept` have
    /// a manifest.
    fn prune_plan(owned: usize, kept: usize, opts: &PlanOptions) -> Plan {
        let ids: Vec<String> = (0..owned).map(|i| format!("/p/a{i:03}")).collect();
        let desired = DesiredState {
            apps: ids[..kept].iter().map(|id| desired_app(id, &[])).collect(),
            jobs: vec![],
            ..Default::default()
        };
        let apps: Vec<Value> = ids.iter().map(|id| live_app(id, Some("mesosync"))).collect();
        let live = LiveState::from_values(&apps, &[]);
        compute(&desired, &live, opts, now())
    }

    fn deletes(plan: &Plan) -> usize {
        plan.actions.iter().filter(|a| a.kind() == ActionKind::Delete).count()
    }

    #[test]
    fn guard_allows_small_prunes_and_refuses_large_ones() {
        let prune = PlanOptions { prune: true, ..PlanOptions::default() };
        // 3 of 10 is exactly 30%: allowed.
        let plan = prune_plan(10, 7, &prune);
        assert_eq!((deletes(&plan), plan.prune_refused.as_ref()), (3, None));
        // 4 of 10 is more than 30%.
        let plan = prune_plan(10, 6, &prune);
        assert_eq!(deletes(&plan), 0);
        assert_eq!(
            plan.prune_refused,
            Some(PruneRefusal::Guard { count: 4, owned: 10, max_count: 10, max_ratio: 0.3 })
        );
        assert!(plan.prune_refused.unwrap().to_string().contains("4 of 10"));
        // 11 of 100 is under 30% but more than 10.
        let plan = prune_plan(100, 89, &prune);
        assert_eq!(deletes(&plan), 0);
        assert!(plan.prune_refused.is_some());
        // Forced: everything goes.
        let forced = PlanOptions { force_prune: true, ..prune.clone() };
        assert_eq!(deletes(&prune_plan(100, 89, &forced)), 11);
        // Prune off: nothing is deleted and nothing is "refused" either.
        let plan = prune_plan(10, 6, &PlanOptions::default());
        assert_eq!((deletes(&plan), plan.prune_refused.as_ref()), (0, None));
    }

    #[test]
    fn empty_manifest_set_needs_allow_empty_even_when_forced() {
        let forced = PlanOptions { prune: true, force_prune: true, ..PlanOptions::default() };
        let plan = prune_plan(3, 0, &forced);
        assert_eq!(deletes(&plan), 0);
        assert_eq!(plan.prune_refused, Some(PruneRefusal::EmptyManifests { count: 3 }));
        let allowed = PlanOptions { allow_empty: true, ..forced };
        assert_eq!(deletes(&prune_plan(3, 0, &allowed)), 3);
    }

    #[test]
    fn waves_are_topological_levels_and_cycles_terminate() {
        let desired = DesiredState {
            apps: vec![
                desired_app("/a", &[]),
                desired_app("/b", &["/a"]),
                desired_app("/c", &["/a", "/b"]),
                desired_app("/x", &["/y"]),
                desired_app("/y", &["/x"]),
            ],
            jobs: vec![],
            ..Default::default()
        };
        let plan = compute(&desired, &LiveState::default(), &PlanOptions::default(), now());
        let wave = |id: &str| plan.action(&ObjectRef::app(id)).unwrap().wave;
        assert_eq!((wave("/a"), wave("/b"), wave("/c")), (0, 1, 2));
        assert_eq!(
            plan.action(&ObjectRef::app("/c")).unwrap().depends_on,
            vec![ObjectRef::app("/a"), ObjectRef::app("/b")]
        );
        // The cycle is cut: both get a wave, one after the other.
        assert_ne!(wave("/x"), wave("/y"));
        let ids: Vec<&str> = plan.actions.iter().map(|a| a.object.id.as_str()).collect();
        assert_eq!(ids.len(), 5);
    }

    #[test]
    fn unchanged_dependencies_do_not_delay() {
        let desired = DesiredState {
            apps: vec![desired_app("/a", &[]), desired_app("/b", &["/a"])],
            jobs: vec![],
            ..Default::default()
        };
        let mut a =
            crate::normalize::marathon::desired_app(&desired.apps[0].spec.value(), &Default::default());
        a["version"] = json!("v1");
        let live = LiveState::from_values(&[a], &[]);
        let plan = compute(&desired, &live, &PlanOptions::default(), now());
        let b = plan.action(&ObjectRef::app("/b")).unwrap();
        assert_eq!((b.kind(), b.wave, b.depends_on.len()), (ActionKind::Create, 0, 0));
        // No wave waits for it, but apply checks it is ready before writing /b.
        assert_eq!(b.awaits, [ObjectRef::app("/a")]);
        assert_eq!(plan.action(&ObjectRef::app("/a")).unwrap().kind(), ActionKind::NoOp);
        assert!(plan.action(&ObjectRef::app("/a")).unwrap().awaits.is_empty());
    }

    #[test]
    fn a_remembered_verdict_is_reused_only_for_the_same_inputs() {
        let desired = DesiredState { apps: vec![desired_app("/a", &[])], jobs: vec![], ..Default::default() };
        let mut same =
            crate::normalize::marathon::desired_app(&desired.apps[0].spec.value(), &Default::default());
        same["version"] = json!("v1");
        let live = LiveState::from_values(&[same.clone()], &[]);
        let opts = PlanOptions::default();
        let mut memo = Memo::default();
        let kind = |plan: &Plan| plan.actions[0].kind();
        assert_eq!(kind(&compute_with(&desired, &live, &opts, now(), &mut memo)), ActionKind::NoOp);
        assert_eq!(memo.len(), 1);
        // Live changed (one byte is enough): compared again, and found different.
        let mut edited = same.clone();
        edited["cmd"] = json!("run2");
        let changed = LiveState::from_values(&[edited], &[]);
        assert_eq!(kind(&compute_with(&desired, &changed, &opts, now(), &mut memo)), ActionKind::Update);
        assert!(memo.is_empty(), "a difference is never remembered");
        assert_eq!(kind(&compute_with(&desired, &live, &opts, now(), &mut memo)), ActionKind::NoOp);
        // The manifest changed: compared again.
        let edited =
            DesiredState { apps: vec![desired_app("/a", &["/b"])], jobs: vec![], ..Default::default() };
        let plan = compute_with(&edited, &live, &opts, now(), &mut memo);
        assert_eq!(
            plan.actions.iter().find(|a| a.object.id == "/a").map(|a| a.kind()),
            Some(ActionKind::Update)
        );
        // Other options (another instance owns nothing here): compared again.
        assert_eq!(kind(&compute_with(&desired, &live, &opts, now(), &mut memo)), ActionKind::NoOp);
        let other = PlanOptions { instance: "other".into(), ..PlanOptions::default() };
        let plan = compute_with(&desired, &live, &other, now(), &mut memo);
        assert_eq!(plan, compute(&desired, &live, &other, now()));
        assert_eq!(
            plan.actions[0].decision,
            Decision::Hold(HoldReason::OwnedByOther { owner: "mesosync".into(), instance: "other".into() })
        );
    }

    #[test]
    fn summary_line_reads_like_terraform() {
        let s = Summary {
            create: 3,
            update: 2,
            restart: 1,
            scale: 1,
            delete: 0,
            run: 0,
            unchanged: 4,
            refused_deletes: 0,
        };
        assert_eq!(s.to_string(), "3 to create, 2 to update (1 restart), 1 to scale, 0 to delete");
        assert!(!Plan::default().has_changes());
        assert_eq!(Plan::default().summary(), Summary::default());
    }

    #[test]
    fn saved_plans_are_refused_when_live_changed() {
        let desired = DesiredState {
            apps: vec![desired_app("/a", &[]), desired_app("/new", &[])],
            jobs: vec![],
            ..Default::default()
        };
        let mut changed = live_app("/a", Some("mesosync"));
        changed["cmd"] = json!("old");
        let live = LiveState::from_values(&[changed.clone()], &[]);
        let plan = compute(&desired, &live, &PlanOptions::default(), now());
        assert!(check_still_valid(&plan, &live).is_ok());
        // Survives a save / load round trip.
        let saved: Plan = serde_json::from_str(&serde_json::to_string(&plan).unwrap()).unwrap();
        assert!(check_still_valid(&saved, &live).is_ok());
        let mut other_version = changed.clone();
        other_version["version"] = json!("v-other");
        let moved = LiveState::from_values(&[other_version], &[]);
        let err = check_still_valid(&saved, &moved).unwrap_err();
        assert_eq!(
            err.0,
            [(ObjectRef::app("/a"), LiveChange::Changed { was: "v-/a".into(), now: Some("v-other".into()) })]
        );
        assert!(err.to_string().contains("app /a changed live"), "{err}");
        let created = LiveState::from_values(&[changed, live_app("/new", None)], &[]);
        assert_eq!(
            check_still_valid(&saved, &created).unwrap_err().0,
            [(ObjectRef::app("/new"), LiveChange::Created)]
        );
        let gone = check_still_valid(&saved, &LiveState::default()).unwrap_err().to_string();
        assert!(gone.contains("app /a was deleted"), "{gone}");
    }

    #[test]
    fn chronos_live_version_ignores_run_statistics_only() {
        let job = json!({"name": "j", "command": "true", "successCount": 1, "lastSuccess": "x"});
        let ran = json!({"name": "j", "command": "true", "successCount": 2, "lastSuccess": "y"});
        let edited = json!({"name": "j", "command": "false", "successCount": 1});
        let v = |j: &Value| live_version(crate::model::ObjectKind::ChronosJob, j).unwrap();
        assert_eq!(v(&job), v(&ran));
        assert_ne!(v(&job), v(&edited));
        assert!(v(&job).starts_with("chronos:"));
    }

    #[test]
    fn rendered_changes_point_at_the_manifest_line() {
        use std::path::Path;
        use std::sync::Arc;
        let mut provenance = Provenance::new(Arc::from(Path::new("apps/a.yaml")));
        provenance.insert("/spec".into(), 3, 3);
        provenance.insert("/spec/cpus".into(), 5, 9);
        provenance.insert("/spec/constraints".into(), 6, 16);
        let desired = DesiredObject::new(
            ObjectRef::app("/a"),
            SyncOptions::default(),
            &json!({"id": "/a", "cmd": "run", "cpus": 0.5, "constraints": [["b", "UNIQUE"], ["a", "UNIQUE"]]}),
            provenance,
        );
        let mut live = live_app("/a", Some("mesosync"));
        live["constraints"] = json!([["a", "UNIQUE"]]);
        let plan = compute(
            &DesiredState { apps: vec![desired], jobs: vec![], ..Default::default() },
            &LiveState::from_values(&[live], &[]),
            &PlanOptions::default(),
            now(),
        );
        let text = render::render_text(&plan, &render::RenderOptions::default());
        assert!(text.contains("~ app /a: update, restart: every task is replaced  (apps/a.yaml)"), "{text}");
        assert!(text.contains("~ /cpus: 1 → 0.5  (apps/a.yaml:5:9)"), "{text}");
        // Sets are sorted, so a change inside one points at the set itself.
        assert!(text.contains("(apps/a.yaml:6:16)"), "{text}");
        assert!(text.ends_with("0 to create, 1 to update (1 restart), 0 to scale, 0 to delete\n"));
        let json = render::render_json(&plan);
        assert_eq!(json["actions"][0]["changes"][0]["location"], "apps/a.yaml:6:16");
        assert_eq!(json["summaryLine"], "0 to create, 1 to update (1 restart), 0 to scale, 0 to delete");
    }

    #[test]
    fn creates_show_their_fields_but_never_their_secrets() {
        let mut spec = desired_app("/s", &[]).spec.value();
        spec["env"] = json!({"DB_PASSWORD": "pw-xyz", "LOG": "verbose"});
        spec["container"] =
            json!({"docker": {"image": "i", "credential": {"principal": "me", "secret": "cred-xyz"}}});
        let app =
            DesiredObject::new(ObjectRef::app("/s"), SyncOptions::default(), &spec, Provenance::default());
        let plan = compute(
            &DesiredState { apps: vec![app], jobs: vec![], ..Default::default() },
            &LiveState::default(),
            &PlanOptions::default(),
            now(),
        );
        let text = render::render_text(
            &plan,
            &render::RenderOptions { color: false, show_unchanged: true, unified: true },
        );
        let json = render::render_json(&plan).to_string();
        for out in [&text, &json] {
            assert!(!out.contains("pw-xyz") && !out.contains("cred-xyz"), "{out}");
        }
        assert!(text.contains("verbose"), "non-secret members stay visible: {text}");
        assert!(text.contains(crate::diff::mask::MASK));
        // apply gets the real values.
        assert_eq!(plan.actions[0].body.as_ref().unwrap()["env"]["DB_PASSWORD"], "pw-xyz");
    }

    #[test]
    fn chronos_ownership_needs_the_marker_and_the_prefix() {
        let job = |name: &str| {
            DesiredObject::new(
                ObjectRef::job(name),
                SyncOptions::default(),
                &json!({"name": name, "command": "new", "owner": "o", "schedule": "R//PT1H"}),
                Provenance::default(),
            )
        };
        let live_job = |name: &str| {
            json!({"name": name, "command": "old", "owner": "o", "schedule": "R//PT1H",
            "description": "[mesosync:mesosync]"})
        };
        let opts = PlanOptions { chronos_prefix: Some("ms-".into()), ..PlanOptions::default() };
        let desired = DesiredState {
            apps: vec![],
            jobs: vec![job("ms-a"), job("other"), job("zz-new")],
            ..Default::default()
        };
        let live = LiveState::from_values(&[], &[live_job("ms-a"), live_job("other")]);
        let plan = compute(&desired, &live, &opts, now());
        assert_eq!(plan.action(&ObjectRef::job("ms-a")).unwrap().kind(), ActionKind::Update);
        let other = plan.action(&ObjectRef::job("other")).unwrap();
        assert_eq!(other.kind(), ActionKind::NoOp, "marked but outside the prefix: not ours");
        let outside = plan.action(&ObjectRef::job("zz-new")).unwrap();
        assert_eq!(
            outside.decision,
            Decision::Hold(HoldReason::OutsidePrefix { prefix: "ms-".into(), would: ActionKind::Create })
        );
    }

    #[test]
    fn writes_to_live_children_of_a_replaced_job_wait_for_the_replace() {
        // `place`: a schedule, or parents.
        let spec = |name: &str, place: Value| {
            let mut s = json!({"name": name, "command": "x", "owner": "o"});
            match place {
                Value::String(schedule) => s["schedule"] = json!(schedule),
                parents => s["parents"] = parents,
            }
            s
        };
        let desired_job = |name: &str, place: Value| {
            DesiredObject::new(
                ObjectRef::job(name),
                SyncOptions::default(),
                &spec(name, place),
                Provenance::default(),
            )
        };
        let live_job = |name: &str, place: Value| {
            let mut j = spec(name, place);
            j["description"] = json!("[mesosync:mesosync]");
            j
        };
        let every = json!("R/2030-01-01T00:00:00Z/PT1H");
        // j: scheduled → dependent on p (a replace). c: live child of j moving to o (an
        // update that must not race the replace). k: live child of j that j now
        // depends on (it goes first; an edge back would be a cycle).
        // (Sorted by name, as the loader leaves them.)
        let desired = DesiredState {
            jobs: vec![
                desired_job("c", json!(["o"])),
                desired_job("j", json!(["p", "k"])),
                desired_job("k", json!(["p"])),
                desired_job("o", every.clone()),
                desired_job("p", every.clone()),
            ],
            ..Default::default()
        };
        let live = LiveState::from_values(
            &[],
            &[
                live_job("p", every.clone()),
                live_job("o", every.clone()),
                live_job("j", every.clone()),
                live_job("c", json!(["j"])),
                live_job("k", json!(["j"])),
            ],
        );
        let plan = compute(&desired, &live, &PlanOptions::default(), now());
        let action = |name: &str| plan.action(&ObjectRef::job(name)).unwrap();
        assert_eq!(action("j").decision, Decision::Write(Write::Replace { to_scheduled: false }));
        assert_eq!(action("c").kind(), ActionKind::Update);
        assert!(action("c").depends_on.contains(&ObjectRef::job("j")), "{:?}", action("c").depends_on);
        assert!(action("c").wave > action("j").wave);
        assert!(action("j").depends_on.contains(&ObjectRef::job("k")));
        assert!(action("k").wave < action("j").wave, "the job's own dependency goes first");
    }
}
