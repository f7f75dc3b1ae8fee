//! Computing a plan: pair each desired object with its live counterpart, normalize and
//! diff both, decide the action (ownership, suspension, scale-only, prune and its
//! guard), build the exact body apply will send, then order everything.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::order::order;
use super::saved::live_version;
use super::{Action, ActionKind, Impact, Plan, Preview};
use crate::diff::{FieldChange, diff_object, mask};
use crate::model::chronos::Schedule;
use crate::model::marathon::canonical_app_id;
use crate::model::{
    DesiredObject, DesiredState, LiveHead, LiveObject, LiveState, ObjectKind, ObjectRef, fingerprint,
};
use crate::normalize::chronos as chronos_norm;
use crate::normalize::marathon as marathon_norm;
use crate::normalize::{self, ChronosVersion, DEFAULT_INSTANCE, MarathonVersion, NormalizeOptions};

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

    fn owns(&self, kind: ObjectKind, live: &LiveHead) -> bool {
        match kind {
            ObjectKind::MarathonApp => live.owner_label.as_deref() == Some(self.instance.as_str()),
            ObjectKind::ChronosJob => chronos_norm::is_owned(
                live.description.as_deref(),
                live.name.as_deref(),
                &self.instance,
                self.chronos_prefix.as_deref(),
            ),
        }
    }
}

/// One action plus what ordering needs to know about it.
pub(super) struct Planned {
    pub action: Action,
    /// Objects it waits for (desired dependencies; for a delete: its live children).
    pub edges: Vec<ObjectRef>,
    /// `sync.wave` (0 when unset).
    pub sync_wave: i64,
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
    let mut planned: Vec<Planned> = desired
        .objects()
        .map(|d| {
            let live_object = match d.object.kind {
                ObjectKind::MarathonApp => index.app(&d.object.id),
                ObjectKind::ChronosJob => index.job(&d.object.id),
            };
            let key = live_object.map(|l| pair_key(options, d, l));
            let remembered = key.and_then(|k| memo.equal.get(&k).map(|version| (k, version.clone())));
            let action = match (remembered, live_object) {
                (Some((key, version)), Some(l)) => {
                    let action = unchanged(d, version.clone(), l.head().schedule.as_deref(), now);
                    verdicts.insert(key, version);
                    action
                }
                _ => {
                    let action = plan_object(d, live_object, opts, &nopts, now);
                    if let (Some(key), true) = (key, action.changes.is_empty()) {
                        verdicts.insert(key, action.live_version.clone());
                    }
                    action
                }
            };
            Planned { action, edges: d.dependencies().to_vec(), sync_wave: d.sync.wave.unwrap_or(0) }
        })
        .collect();
    memo.equal = verdicts;
    let prune_refused = plan_prunes(desired, live, opts, &nopts, &mut planned);
    Plan { actions: order(planned), prune_refused }
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
    live_schedule: Option<&str>,
    now: DateTime<Utc>,
) -> Action {
    let mut action = Action {
        live_version,
        secrets: d.secrets.clone(),
        ..Action::new(d.object.clone(), ActionKind::NoOp, Impact::None)
    };
    if d.object.kind == ObjectKind::ChronosJob {
        action.next_runs = next_runs(live_schedule, now);
    }
    action
}

/// The next three runs of a Chronos schedule.
fn next_runs(schedule: Option<&str>, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    schedule.and_then(|s| Schedule::parse(s).ok()).map(|s| s.next_runs(now, 3)).unwrap_or_default()
}

/// Normalize, align, ignore and diff one desired object against its live form.
fn compare(
    kind: ObjectKind,
    d: &DesiredObject,
    spec: &Value,
    live: Option<&Value>,
    nopts: &NormalizeOptions,
    now: DateTime<Utc>,
) -> (Value, Option<Value>, Vec<FieldChange>) {
    let mut want = normalize::desired(kind, spec, nopts);
    let have = live.map(|l| normalize::live(kind, l, nopts));
    if let Some(have) = &have {
        normalize::align(kind, &mut want, have, &d.sync.ignore, now, nopts);
    }
    let changes = diff_object(kind, Some(d), &d.secrets, &want, have.as_ref().unwrap_or(&json!({})));
    (want, have, changes)
}

fn plan_object(
    d: &DesiredObject,
    live_object: Option<&LiveObject>,
    opts: &PlanOptions,
    nopts: &NormalizeOptions,
    now: DateTime<Utc>,
) -> Action {
    let kind = d.object.kind;
    let spec = d.spec.value();
    let live_value = live_object.map(LiveObject::value);
    let live = live_value.as_ref();
    let (want, have, changes) = compare(kind, d, &spec, live, nopts, now);
    // An unchanged object's preview would be two equal documents (an empty unified
    // diff) — two masked copies per object, most of a steady-state plan's memory.
    let preview = (live.is_none() || !changes.is_empty()).then(|| {
        let (desired, live) = mask::mask_pair(kind, &want, have.as_ref().unwrap_or(&json!({})), &d.secrets);
        Preview { live: have.as_ref().map(|_| live), desired: Some(desired) }
    });
    let mut action =
        Action { changes, preview, ..unchanged(d, live.and_then(|l| live_version(kind, l)), None, now) };
    let write_impact = match kind {
        ObjectKind::MarathonApp => Impact::Restart,
        ObjectKind::ChronosJob => Impact::Replace,
    };
    let owns = live_object.is_some_and(|l| opts.owns(kind, l.head()));
    match live {
        None => {
            action.kind = ActionKind::Create;
            action.body = Some(body(d, &spec, None, &opts.instance, now));
        }
        Some(_) if action.changes.is_empty() => {}
        Some(l) if !owns => {
            let owner = live_object.and_then(|o| live_owner(kind, o.head()));
            // Only an unmarked object can be adopted: one marked by another instance
            // belongs to another controller, and taking it would start a tug of war.
            if opts.adopt && owner.is_none() {
                action.kind = ActionKind::Adopt;
                action.impact = write_impact;
                action.body = Some(body(d, &spec, Some(l), &opts.instance, now));
                action.note = Some(format!("not owned yet: adopting it for instance '{}'", opts.instance));
            } else {
                action.note = Some(unowned_note(owner, opts));
            }
        }
        Some(l) => {
            let scale_only =
                kind == ObjectKind::MarathonApp && action.changes.iter().all(|c| c.pointer == "/instances");
            if scale_only {
                action.kind = ActionKind::Scale;
                action.impact = Impact::ScaleOnly;
                action.body = Some(json!({"instances": want.get("instances").cloned().unwrap_or(json!(1))}));
            } else {
                action.kind = ActionKind::Update;
                action.impact = write_impact;
                action.body = Some(body(d, &spec, Some(l), &opts.instance, now));
                if kind == ObjectKind::ChronosJob {
                    let was = chronos_norm::is_scheduled(l);
                    if was != chronos_norm::is_scheduled(&want) {
                        action.recreate = true;
                        action.note = Some(format!(
                            "changes from {} to {}: Chronos cannot do that in place, so the job is deleted \
                             and created again",
                            if was { "scheduled" } else { "dependent" },
                            if was { "dependent" } else { "scheduled" },
                        ));
                    }
                }
            }
        }
    }
    let outside_prefix = match (&opts.chronos_prefix, kind) {
        (Some(prefix), ObjectKind::ChronosJob) if !d.object.id.starts_with(prefix.as_str()) => Some(prefix),
        _ => None,
    };
    if action.kind != ActionKind::NoOp {
        let would = format!("{:?}", action.kind).to_lowercase();
        let reason = if d.sync.suspend {
            Some("suspended (sync.suspend)".to_string())
        } else {
            // A job written outside the prefix would never be recognised as owned
            // afterwards (and so never updated or pruned): refuse to write it at all.
            outside_prefix.map(|p| format!("the job name is outside this instance's prefix '{p}'"))
        };
        if let Some(reason) = reason {
            action.kind = ActionKind::NoOp;
            action.impact = Impact::None;
            action.body = None;
            action.recreate = false;
            action.note = Some(format!("{reason}: would {would}, left alone"));
        }
    }
    if kind == ObjectKind::ChronosJob {
        let schedule = action
            .body
            .as_ref()
            .or(if action.kind == ActionKind::NoOp { live } else { None })
            .or(Some(&spec))
            .and_then(|j| j.get("schedule"))
            .and_then(Value::as_str);
        action.next_runs = next_runs(schedule, now);
    }
    action
}

/// The instance whose mark a live object carries, if any.
fn live_owner(kind: ObjectKind, live: &LiveHead) -> Option<&str> {
    match kind {
        ObjectKind::MarathonApp => live.owner_label.as_deref(),
        ObjectKind::ChronosJob => chronos_norm::marked_owner(live.description.as_deref()?),
    }
}

fn unowned_note(owner: Option<&str>, opts: &PlanOptions) -> String {
    match owner {
        Some(o) if o == opts.instance => {
            format!("carries the mark of instance '{o}' but not the job name prefix: left alone")
        }
        Some(o) => format!(
            "exists live but is owned by instance '{o}', not '{}': left alone (never adopted from another instance)",
            opts.instance
        ),
        None => {
            "exists live but is not owned by mesosync: left alone (enable adoption to take it over)".into()
        }
    }
}

/// Exactly what apply sends for a create / update / adopt: the manifest as written,
/// plus the ownership mark, with ignored pointers taken from live and, for Chronos, the
/// live schedule start when the desired start is not in the future.
fn body(d: &DesiredObject, spec: &Value, live: Option<&Value>, instance: &str, now: DateTime<Utc>) -> Value {
    let mut body = spec.clone();
    match d.object.kind {
        ObjectKind::MarathonApp => {
            marathon_norm::with_secret_pointers(&mut body, &d.sync.secret);
            marathon_norm::with_owner_label(&mut body, instance);
            if let Value::Object(map) = &mut body {
                map.shift_remove("version");
                if let Some(Value::String(id)) = map.get("id") {
                    let id = canonical_app_id(id);
                    map.insert("id".into(), Value::String(id));
                }
            }
        }
        ObjectKind::ChronosJob => {
            chronos_norm::with_secret_marker(&mut body, &d.sync.secret);
            chronos_norm::with_owner_marker(&mut body, instance);
            let live_schedule = live.and_then(|l| l.get("schedule")).and_then(Value::as_str);
            let desired_schedule = body.get("schedule").and_then(Value::as_str);
            if let (Some(want), Some(have)) = (desired_schedule, live_schedule) {
                if let Some(s) = chronos_norm::schedule_to_send(want, have, now) {
                    body["schedule"] = Value::String(s);
                }
            }
        }
    }
    if let Some(live) = live {
        normalize::apply_ignore(&mut body, live, &d.sync.ignore);
    }
    body
}

/// Deletes of owned objects without a manifest, behind the prune switch and the
/// mass-delete guard. Returns why prune was refused, if it was.
fn plan_prunes(
    desired: &DesiredState,
    live: &LiveState,
    opts: &PlanOptions,
    nopts: &NormalizeOptions,
    planned: &mut Vec<Planned>,
) -> Option<String> {
    let mut owned_total = 0usize;
    let mut orphans: Vec<Planned> = Vec::new();
    let lists = [(ObjectKind::MarathonApp, &live.apps), (ObjectKind::ChronosJob, &live.jobs)];
    for (kind, list) in lists {
        for l in list.iter().filter(|l| opts.owns(kind, l.head())) {
            owned_total += 1;
            let head = l.head();
            let key = match kind {
                ObjectKind::MarathonApp => &head.id,
                ObjectKind::ChronosJob => &head.name,
            };
            let Some(id) = key.as_deref() else { continue };
            let object = ObjectRef { kind, id: id.to_string() };
            if desired.get(&object).is_some() {
                continue;
            }
            let value = l.value();
            let have = normalize::live(kind, &value, nopts);
            let children = live_children(kind, id, live);
            // No manifest says what is secret any more: the pointers recorded on the
            // live object when it was written, its secret names and the shared values.
            let secrets = mask::recorded_secrets(kind, &value).with(&desired.secrets);
            orphans.push(Planned {
                action: Action {
                    changes: diff_object(kind, None, &secrets, &json!({}), &have),
                    live_version: live_version(kind, &value),
                    preview: Some(Preview { live: Some(mask::masked(kind, &have, &secrets)), desired: None }),
                    ..Action::new(object, ActionKind::Delete, Impact::Destroy)
                },
                edges: children,
                sync_wave: 0,
            });
        }
    }
    let count = orphans.len();
    let refusal = if count == 0 {
        None
    } else if !opts.prune {
        for o in &mut orphans {
            o.action.note = Some(format!(
                "owned by instance '{}' but has no manifest: prune is off, left alone",
                opts.instance
            ));
        }
        None
    } else if desired.apps.is_empty() && desired.jobs.is_empty() && !opts.allow_empty {
        Some(format!(
            "the manifest set is empty: refusing to delete {count} owned object(s) without --allow-empty"
        ))
    } else if !opts.force_prune
        && (count > opts.max_delete_count || count as f64 > opts.max_delete_ratio * owned_total as f64)
    {
        Some(format!(
            "refusing to delete {count} of {owned_total} owned object(s): more than {} or more than {:.0}% \
             of the owned set (use --force-prune to override)",
            opts.max_delete_count,
            opts.max_delete_ratio * 100.0
        ))
    } else {
        None
    };
    for o in &mut orphans {
        if !opts.prune || refusal.is_some() {
            o.action.kind = ActionKind::NoOp;
            o.action.impact = Impact::None;
            if let Some(reason) = &refusal {
                o.action.note = Some(format!("would be deleted, but prune was refused: {reason}"));
            }
        }
    }
    planned.extend(orphans);
    refusal
}

/// Live objects that depend on the live object `id` (Marathon `dependencies`, Chronos
/// `parents`): a delete of `id` waits for theirs.
fn live_children(kind: ObjectKind, id: &str, live: &LiveState) -> Vec<ObjectRef> {
    let list = match kind {
        ObjectKind::MarathonApp => &live.apps,
        ObjectKind::ChronosJob => &live.jobs,
    };
    list.iter()
        .map(LiveObject::head)
        .filter(|h| {
            h.dependencies.iter().any(|d| match kind {
                ObjectKind::MarathonApp => canonical_app_id(d) == id,
                ObjectKind::ChronosJob => &**d == id,
            })
        })
        .filter_map(|h| match kind {
            ObjectKind::MarathonApp => h.id.as_deref(),
            ObjectKind::ChronosJob => h.name.as_deref(),
        })
        .map(|c| ObjectRef { kind, id: c.to_string() })
        .collect()
}
