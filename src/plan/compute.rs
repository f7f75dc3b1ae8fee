//! Computing a plan: pair each desired object with its live counterpart, normalize and
//! diff both, decide the action (ownership, suspension, scale-only, prune and its
//! guard), build the exact body apply will send, then order everything.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::order::{Node, order};
use super::{Action, ActionKind, Decision, HoldReason, Impact, Plan, Preview, PruneRefusal, Write};
use crate::diff::{FieldChange, diff_object, mask};
use crate::model::{
    DesiredObject, DesiredState, LiveHead, LiveObject, LiveState, ObjectKind, ObjectRef, fingerprint,
};
use crate::normalize::{self, ChronosVersion, DEFAULT_INSTANCE, MarathonVersion, NormalizeOptions};
use crate::system::{self, System};

/// Everything that shapes a plan besides desired and live state.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanOptions {
    /// The instance name in ownership marks (default `mesosync`).
    pub instance: String,
    /// Delete owned objects that have no manifest.
    pub prune: bool,
    /// Allow pruning when the manifest set is empty.
    pub allow_empty: bool,
    /// Take over live objects with a manifest's id that are not owned.
    pub adopt: bool,
    /// The guard refuses more deletes than this (default 10)…
    pub max_delete_count: usize,
    /// …or more than this share of the owned objects (default 0.3).
    pub max_delete_ratio: f64,
    /// Override the guard.
    pub force_prune: bool,
    /// Chronos ownership also requires this job name prefix, if set.
    pub chronos_prefix: Option<String>,
    /// The Chronos version, if known (otherwise decided from what live reports).
    pub chronos_version: Option<ChronosVersion>,
    /// The Marathon version, if known (otherwise 1.10).
    pub marathon_version: Option<MarathonVersion>,
    /// `run --prune-delay`: a controller deletes an object only once it has been
    /// missing from two successful loads at least this far apart (enforced by
    /// `reconcile`, which remembers when each was first missed; `None` for one-shot
    /// commands).
    pub prune_delay: Option<std::time::Duration>,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self {
            instance: DEFAULT_INSTANCE.to_string(),
            prune: false,
            allow_empty: false,
            adopt: false,
            max_delete_count: 10,
            max_delete_ratio: 0.3,
            force_prune: false,
            chronos_prefix: None,
            chronos_version: None,
            marathon_version: None,
            prune_delay: None,
        }
    }
}

impl PlanOptions {
    /// The options the normalizers need.
    pub fn normalize_options(&self) -> NormalizeOptions {
        NormalizeOptions {
            instance: self.instance.clone(),
            marathon_version: self.marathon_version,
            chronos_version: self.chronos_version,
        }
    }

    fn owns(&self, system: &dyn System, live: &LiveHead) -> bool {
        system.owns(live, &self.instance, self.chronos_prefix.as_deref())
    }
}

/// Verdicts kept between the plans of a long-running controller: which pairs of
/// (desired spec, live object as listed) compared equal under which options.
///
/// Comparing means parsing both sides, normalizing and diffing them — the bulk of a
/// plan's time, and all of it wasted on objects that did not change. A pair is keyed
/// by the fingerprints of the desired spec (and its `sync.ignore`), of the live
/// object's bytes *as listed* (any live change, even a task count, is a new key) and
/// of the plan options; so a hit stands for exactly the inputs that were compared.
/// Only "no difference" is remembered: everything else is compared again every time.
///
/// Time is the one input not in the key: the comparison of a Chronos schedule whose
/// start is in the future is strict (start and count), and once the start has passed
/// it only gets looser (period and repetition). A pair found equal stays equal.
///
/// The memo only holds the verdicts of the latest plan, so it never outgrows the set.
#[derive(Debug, Default)]
pub struct Memo {
    equal: HashMap<u64, Option<String>>,
}

impl Memo {
    /// How many pairs are remembered as equal.
    pub fn len(&self) -> usize {
        self.equal.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.equal.is_empty()
    }

    /// Remember `d` against `live` as equal without comparing them: for a caller that
    /// knows it by construction — the offline preview, where `live` is the form `d`'s
    /// unchanged manifest was created with ([`created_form`]).
    pub fn assume_equal(&mut self, opts: &PlanOptions, d: &DesiredObject, live: &LiveObject) {
        let options = fingerprint(format!("{opts:?}").as_bytes());
        let version = system::of(d.object.kind).listed_version(live);
        self.equal.insert(pair_key(options, d, live), version);
    }
}

/// What a live system holds once `d` was created by apply (the create body): the
/// offline preview takes the base revision as applied this way.
pub fn created_form(d: &DesiredObject, instance: &str, now: DateTime<Utc>) -> Value {
    let mut form = system::of(d.object.kind).request_body(&d.spec.value(), None, instance, now);
    if d.object.kind == ObjectKind::ChronosJob && d.sync.runs_once() {
        super::runs::as_run(&mut form, &d.spec.value(), now);
    }
    form
}

/// Compute the plan that makes `live` equal to `desired` (pure; `now` only decides
/// which Chronos schedule starts are in the future and the next run times).
pub fn compute(desired: &DesiredState, live: &LiveState, opts: &PlanOptions, now: DateTime<Utc>) -> Plan {
    compute_with(desired, live, opts, now, &mut Memo::default())
}

/// [`compute`], skipping the comparison of pairs `memo` has seen equal (and keeping
/// this plan's verdicts in it for the next one). The plan is the same as without it.
pub fn compute_with(
    desired: &DesiredState,
    live: &LiveState,
    opts: &PlanOptions,
    now: DateTime<Utc>,
    memo: &mut Memo,
) -> Plan {
    let nopts = opts.normalize_options();
    let options = fingerprint(format!("{opts:?}").as_bytes());
    let index = live.index();
    let mut verdicts = HashMap::with_capacity(memo.equal.len());
    let mut planned: Vec<Node> = desired
        .objects()
        .map(|d| {
            let live_object = index.get(d.object.kind, &d.object.id);
            let key = live_object.map(|l| pair_key(options, d, l));
            let remembered = key.and_then(|k| memo.equal.get(&k).map(|version| (k, version.clone())));
            let action = match (remembered, live_object) {
                (Some((key, version)), Some(l)) => {
                    let action = unchanged(d, version.clone(), Some(l.head()), now);
                    verdicts.insert(key, version);
                    action
                }
                _ => {
                    let action = plan_object(system::of(d.object.kind), d, live_object, opts, &nopts, now);
                    if let (Some(key), true) = (key, action.changes.is_empty()) {
                        verdicts.insert(key, action.live_version.clone());
                    }
                    action
                }
            };
            Node { action, edges: d.dependencies().to_vec(), sync_wave: d.sync.wave.unwrap_or(0) }
        })
        .collect();
    memo.equal = verdicts;
    {
        let body_of = |d: &DesiredObject, live: Option<&Value>| {
            write_body(system::of(d.object.kind), d, &d.spec.value(), live, opts, now)
        };
        let live_job = |name: &str| index.get(ObjectKind::ChronosJob, name);
        let mut actions: Vec<&mut Action> = planned.iter_mut().map(|n| &mut n.action).collect();
        super::runs::plan_runs(desired, &live_job, &mut actions, &body_of);
    }
    let prune_refused = plan_prunes(desired, live, opts, &nopts, &mut planned);
    order_around_replaces(&mut planned, live);
    Plan { actions: order(planned), prune_refused }
}

/// A Chronos replace deletes the job for a moment, and Chronos rewrites the children of
/// a deleted job; the replace keeps them as they were (`apply::chronos`). Any other
/// write to one of those live children waits for the replace, so that neither undoes
/// the other — unless the replaced job now depends on that child (then the child goes
/// first, as the job's own edge says, and is no longer its child when it is replaced).
/// Deletes need nothing: they come after every other write.
fn order_around_replaces(planned: &mut [Node], live: &LiveState) {
    let is_replace = |n: &Node| matches!(n.action.decision.write(), Some(Write::Replace { .. }));
    if !planned.iter().any(is_replace) {
        return;
    }
    let children = live_children(live);
    let at: HashMap<ObjectRef, usize> = planned
        .iter()
        .enumerate()
        .filter(|(_, n)| n.action.kind() != ActionKind::Delete)
        .map(|(i, n)| (n.action.object.clone(), i))
        .collect();
    let replaced: Vec<usize> = (0..planned.len()).filter(|&i| is_replace(&planned[i])).collect();
    for j in replaced {
        let parent = planned[j].action.object.clone();
        let Some(kids) = children.get(&parent) else { continue };
        // What the replaced job waits for, transitively: an edge back would be a cycle.
        let mut upstream = vec![false; planned.len()];
        let mut stack = vec![j];
        while let Some(i) = stack.pop() {
            for e in &planned[i].edges {
                if let Some(&k) = at.get(e) {
                    if !upstream[k] {
                        upstream[k] = true;
                        stack.push(k);
                    }
                }
            }
        }
        for kid in kids {
            let Some(&c) = at.get(kid) else { continue };
            if c != j && planned[c].action.is_write() && !upstream[c] && !planned[c].edges.contains(&parent) {
                planned[c].edges.push(parent.clone());
            }
        }
    }
}

/// The memo key of one desired object against one live object.
fn pair_key(options: u64, d: &DesiredObject, live: &LiveObject) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(&options.to_le_bytes());
    h.update(&[d.object.kind as u8]);
    h.update(&d.spec.fingerprint().to_le_bytes());
    for pointer in &d.sync.ignore {
        h.update(pointer.as_bytes());
        h.update(&[0]);
    }
    h.update(&live.fingerprint().to_le_bytes());
    h.digest()
}

/// The action for an object whose comparison found no difference: exactly what
/// [`plan_object`] returns for one.
fn unchanged(
    d: &DesiredObject,
    live_version: Option<String>,
    live_head: Option<&LiveHead>,
    now: DateTime<Utc>,
) -> Action {
    Action {
        live_version,
        secrets: d.secrets.clone(),
        timeout: d.sync.timeout.map(crate::model::Timeout::duration),
        next_runs: live_head.map(|h| system::of(d.object.kind).next_runs_listed(h, now)).unwrap_or_default(),
        ..Action::new(d.object.clone(), Decision::Equal, Impact::None)
    }
}

/// Normalize, align, ignore and diff one desired object against its live form.
fn compare(
    system: &dyn System,
    d: &DesiredObject,
    spec: &Value,
    live: Option<&Value>,
    nopts: &NormalizeOptions,
    now: DateTime<Utc>,
) -> (Value, Option<Value>, Vec<FieldChange>) {
    let mut want = system.normalize_desired(spec, nopts);
    let have = live.map(|l| system.normalize_live(l, nopts));
    if let Some(have) = &have {
        system.align(&mut want, have, now, nopts);
        normalize::apply_ignore(&mut want, have, &d.sync.ignore);
    }
    let changes = diff_object(system.kind(), Some(d), &d.secrets, &want, have.as_ref().unwrap_or(&json!({})));
    (want, have, changes)
}

/// Decide the action for one desired object, through its system alone.
pub(crate) fn plan_object(
    system: &dyn System,
    d: &DesiredObject,
    live_object: Option<&LiveObject>,
    opts: &PlanOptions,
    nopts: &NormalizeOptions,
    now: DateTime<Utc>,
) -> Action {
    let kind = system.kind();
    let spec = d.spec.value();
    let live_value = live_object.map(LiveObject::value);
    let live = live_value.as_ref();
    let (want, have, changes) = compare(system, d, &spec, live, nopts, now);
    // An unchanged object's preview would be two equal documents (an empty unified
    // diff) — two masked copies per object, most of a steady-state plan's memory.
    let preview = (live.is_none() || !changes.is_empty()).then(|| {
        let (desired, live) = mask::mask_pair(kind, &want, have.as_ref().unwrap_or(&json!({})), &d.secrets);
        Preview { live: have.as_ref().map(|_| live), desired: Some(desired) }
    });
    let mut action =
        Action { changes, preview, ..unchanged(d, live.and_then(|l| system.live_version(l)), None, now) };
    let body = |live: Option<&Value>| write_body(system, d, &spec, live, opts, now);
    let owns = live_object.is_some_and(|l| opts.owns(system, l.head()));
    match live {
        None => {
            action.decision = Write::Create.into();
            action.body = Some(body(None));
        }
        Some(_) if action.changes.is_empty() => {}
        Some(_) if live_object.is_some_and(|o| o.head().ambiguous_mark) => {
            action.decision = Decision::Hold(HoldReason::AmbiguousOwner);
        }
        Some(l) if !owns => {
            let owner = live_object.and_then(|o| o.head().owner.as_deref());
            // Only an unmarked object can be adopted: one marked by another instance
            // belongs to another controller, and taking it would start a tug of war.
            if opts.adopt && owner.is_none() {
                action.decision = Write::Adopt { instance: opts.instance.as_str().into() }.into();
                action.impact = system.update_impact();
                action.body = Some(body(Some(l)));
            } else {
                action.decision = Decision::Hold(unowned(owner, opts));
            }
        }
        Some(l) => {
            let mut changed = action.changes.iter().map(|c| c.pointer.as_str());
            if let Some(scale) = system.scale_body(&mut changed, &want) {
                action.decision = Write::Scale.into();
                action.impact = Impact::ScaleOnly;
                action.body = Some(scale);
            } else {
                action.decision = match system.replaced(&want, l) {
                    Some(to_scheduled) => Write::Replace { to_scheduled }.into(),
                    None => Write::Update.into(),
                };
                action.impact = system.update_impact();
                action.body = Some(body(Some(l)));
            }
        }
    }
    if action.is_write() {
        let would = action.kind();
        if d.sync.suspend {
            action.hold(HoldReason::Suspended { would });
        } else if let Some(prefix) = system.outside_prefix(&d.object.id, opts.chronos_prefix.as_deref()) {
            // A job written outside the prefix would never be recognised as owned
            // afterwards (and so never updated or pruned): refuse to write it at all.
            action.hold(HoldReason::OutsidePrefix { prefix: prefix.into(), would });
        }
    }
    // The schedule that will be in force: the one written, else the live one.
    let in_force = action.body.as_ref().or(if action.is_write() { None } else { live }).unwrap_or(&spec);
    action.next_runs = system.next_runs(in_force, now);
    action
}

/// Exactly what apply sends to write `d` (`spec` parsed) over `live`.
fn write_body(
    system: &dyn System,
    d: &DesiredObject,
    spec: &Value,
    live: Option<&Value>,
    opts: &PlanOptions,
    now: DateTime<Utc>,
) -> Value {
    let mut body = system.request_body(spec, live, &opts.instance, now);
    system.record_secret_pointers(&mut body, &d.sync.secret);
    if let Some(live) = live {
        normalize::apply_ignore(&mut body, live, &d.sync.ignore);
    }
    body
}

/// Why a live object this instance does not own is left alone.
fn unowned(owner: Option<&str>, opts: &PlanOptions) -> HoldReason {
    match owner {
        Some(o) if o == opts.instance => HoldReason::MarkedOutsidePrefix { owner: o.into() },
        Some(o) => HoldReason::OwnedByOther { owner: o.into(), instance: opts.instance.as_str().into() },
        None => HoldReason::Unowned,
    }
}

/// The instance whose ownership mark a request body carries (a saved adopt).
pub(super) fn body_owner(kind: ObjectKind, body: &Value) -> Option<&str> {
    system::of(kind).owner_of(body)
}

/// Deletes of owned objects without a manifest, behind the prune switch and the
/// mass-delete guard. Returns why prune was refused, if it was.
fn plan_prunes(
    desired: &DesiredState,
    live: &LiveState,
    opts: &PlanOptions,
    nopts: &NormalizeOptions,
    planned: &mut Vec<Node>,
) -> Option<PruneRefusal> {
    let mut owned_total = 0usize;
    let mut orphans: Vec<Node> = Vec::new();
    for system in system::all() {
        let kind = system.kind();
        for l in live.list(kind).iter().filter(|l| l.head().ambiguous_mark) {
            let Some(id) = l.head().key.as_deref() else { continue };
            if desired.find(kind, id).is_none() {
                // Never pruned (nobody owns it), but never silently either.
                let object = ObjectRef { kind, id: id.to_string() };
                let mut action = Action::new(object, Write::Delete, Impact::Destroy);
                action.hold(HoldReason::AmbiguousOwner);
                planned.push(Node { action, edges: Vec::new(), sync_wave: 0 });
            }
        }
        for l in live.list(kind).iter().filter(|l| opts.owns(system, l.head())) {
            owned_total += 1;
            let Some(id) = l.head().key.as_deref() else { continue };
            if desired.find(kind, id).is_some() {
                continue;
            }
            let value = l.value();
            let have = system.normalize_live(&value, nopts);
            let object = ObjectRef { kind, id: id.to_string() };
            // No manifest says what is secret any more: the pointers recorded on the
            // live object when it was written, its secret names and the shared values.
            let secrets = mask::recorded_secrets(kind, &value).with(&desired.secrets);
            orphans.push(Node {
                action: Action {
                    changes: diff_object(kind, None, &secrets, &json!({}), &have),
                    live_version: system.live_version(&value),
                    preview: Some(Preview { live: Some(mask::masked(kind, &have, &secrets)), desired: None }),
                    ..Action::new(object, Write::Delete, Impact::Destroy)
                },
                edges: Vec::new(),
                sync_wave: 0,
            });
        }
    }
    if !orphans.is_empty() {
        let children = live_children(live);
        for o in &mut orphans {
            o.edges = children.get(&o.action.object).cloned().unwrap_or_default();
        }
    }
    let count = orphans.len();
    let refusal = if count == 0 || !opts.prune {
        None
    } else if desired.apps.is_empty() && desired.jobs.is_empty() && !opts.allow_empty {
        Some(PruneRefusal::EmptyManifests { count })
    } else if !opts.force_prune
        && (count > opts.max_delete_count || count as f64 > opts.max_delete_ratio * owned_total as f64)
    {
        Some(PruneRefusal::Guard {
            count,
            owned: owned_total,
            max_count: opts.max_delete_count,
            max_ratio: opts.max_delete_ratio,
        })
    } else {
        None
    };
    for o in &mut orphans {
        if !opts.prune {
            o.action.hold(HoldReason::PruneOff { instance: opts.instance.as_str().into() });
        } else if let Some(reason) = &refusal {
            o.action.hold(HoldReason::PruneRefused(reason.clone()));
        }
    }
    planned.extend(orphans);
    refusal
}

/// For every live object, the live objects that depend on it (Marathon
/// `dependencies`, Chronos `parents`): a delete waits for the deletes of its children.
/// One pass over the listing, so pruning stays linear.
fn live_children(live: &LiveState) -> HashMap<ObjectRef, Vec<ObjectRef>> {
    let mut children: HashMap<ObjectRef, Vec<ObjectRef>> = HashMap::new();
    for system in system::all() {
        for head in live.list(system.kind()).iter().map(LiveObject::head) {
            let Some(child) = head.key.as_deref() else { continue };
            for d in &head.dependencies {
                children
                    .entry(system.dependency(d))
                    .or_default()
                    .push(ObjectRef { kind: system.kind(), id: child.to_string() });
            }
        }
    }
    children
}
