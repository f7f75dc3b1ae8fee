//! Computing a plan: pair each desired object with its live counterpart, normalize and
//! diff both, decide the action (ownership, suspension, scale-only, prune and its
//! guard), build the exact body apply will send, then order everything.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::order::order;
use super::saved::live_version;
use super::{Action, ActionKind, Impact, Plan, Preview};
use crate::diff::{FieldChange, diff_object, mask};
use crate::model::chronos::Schedule;
use crate::model::marathon::canonical_app_id;
use crate::model::{DesiredObject, DesiredState, LiveState, ObjectKind, ObjectRef};
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

    fn owns(&self, kind: ObjectKind, live: &Value) -> bool {
        match kind {
            ObjectKind::MarathonApp => marathon_norm::owner(live) == Some(self.instance.as_str()),
            ObjectKind::ChronosJob => {
                chronos_norm::is_owned(live, &self.instance, self.chronos_prefix.as_deref())
            }
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

/// Compute the plan that makes `live` equal to `desired` (pure; `now` only decides
/// which Chronos schedule starts are in the future and the next run times).
pub fn compute(desired: &DesiredState, live: &LiveState, opts: &PlanOptions, now: DateTime<Utc>) -> Plan {
    let nopts = opts.normalize_options();
    let index = live.index();
    let mut planned: Vec<Planned> = desired
        .objects()
        .map(|d| {
            let live_object = match d.object.kind {
                ObjectKind::MarathonApp => index.app(&d.object.id),
                ObjectKind::ChronosJob => index.job(&d.object.id),
            };
            Planned {
                action: plan_object(d, live_object, opts, &nopts, now),
                edges: d.dependencies(),
                sync_wave: d.sync.wave.unwrap_or(0),
            }
        })
        .collect();
    let prune_refused = plan_prunes(desired, live, opts, &nopts, &mut planned);
    Plan { actions: order(planned), prune_refused }
}

/// Normalize, align, ignore and diff one desired object against its live form.
fn compare(
    d: &DesiredObject,
    live: Option<&Value>,
    nopts: &NormalizeOptions,
    now: DateTime<Utc>,
) -> (Value, Option<Value>, Vec<FieldChange>) {
    let kind = d.object.kind;
    let mut want = normalize::desired(kind, &d.spec, nopts);
    let have = live.map(|l| normalize::live(kind, l, nopts));
    if let Some(have) = &have {
        normalize::align(kind, &mut want, have, &d.sync.ignore, now, nopts);
    }
    let changes = diff_object(kind, Some(d), &want, have.as_ref().unwrap_or(&json!({})));
    (want, have, changes)
}

fn plan_object(
    d: &DesiredObject,
    live: Option<&Value>,
    opts: &PlanOptions,
    nopts: &NormalizeOptions,
    now: DateTime<Utc>,
) -> Action {
    let kind = d.object.kind;
    let (want, have, changes) = compare(d, live, nopts, now);
    // An unchanged object's preview would be two equal documents (an empty unified
    // diff) — two masked copies per object, most of a steady-state plan's memory.
    let preview = (live.is_none() || !changes.is_empty()).then(|| Preview {
        live: have.as_ref().map(|h| mask::masked(kind, h, &d.sync.secret)),
        desired: Some(mask::masked(kind, &want, &d.sync.secret)),
    });
    let mut action = Action {
        changes,
        live_version: live.and_then(|l| live_version(kind, l)),
        secrets: d.sync.secret.clone(),
        preview,
        ..Action::new(d.object.clone(), ActionKind::NoOp, Impact::None)
    };
    let write_impact = match kind {
        ObjectKind::MarathonApp => Impact::Restart,
        ObjectKind::ChronosJob => Impact::Replace,
    };
    match live {
        None => {
            action.kind = ActionKind::Create;
            action.body = Some(body(d, None, &opts.instance, now));
        }
        Some(_) if action.changes.is_empty() => {}
        Some(l) if !opts.owns(kind, l) => {
            // Only an unmarked object can be adopted: one marked by another instance
            // belongs to another controller, and taking it would start a tug of war.
            if opts.adopt && live_owner(kind, l).is_none() {
                action.kind = ActionKind::Adopt;
                action.impact = write_impact;
                action.body = Some(body(d, Some(l), &opts.instance, now));
                action.note = Some(format!("not owned yet: adopting it for instance '{}'", opts.instance));
            } else {
                action.note = Some(unowned_note(kind, l, opts));
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
                action.body = Some(body(d, Some(l), &opts.instance, now));
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
            .or(Some(&d.spec))
            .and_then(|j| j.get("schedule"))
            .and_then(Value::as_str)
            .and_then(|s| Schedule::parse(s).ok());
        action.next_runs = schedule.map(|s| s.next_runs(now, 3)).unwrap_or_default();
    }
    action
}

/// The instance whose mark a live object carries, if any.
fn live_owner(kind: ObjectKind, live: &Value) -> Option<String> {
    match kind {
        ObjectKind::MarathonApp => marathon_norm::owner(live).map(str::to_string),
        ObjectKind::ChronosJob => live
            .get("description")
            .and_then(Value::as_str)
            .and_then(|d| d.split("[mesosync:").nth(1))
            .and_then(|rest| rest.split(']').next())
            .map(str::to_string),
    }
}

fn unowned_note(kind: ObjectKind, live: &Value, opts: &PlanOptions) -> String {
    match live_owner(kind, live) {
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
fn body(d: &DesiredObject, live: Option<&Value>, instance: &str, now: DateTime<Utc>) -> Value {
    let mut body = d.spec.clone();
    match d.object.kind {
        ObjectKind::MarathonApp => {
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
    let lists = [(ObjectKind::MarathonApp, &live.apps, "id"), (ObjectKind::ChronosJob, &live.jobs, "name")];
    for (kind, list, key) in lists {
        for l in list.iter().filter(|l| opts.owns(kind, l)) {
            owned_total += 1;
            let Some(id) = l.get(key).and_then(Value::as_str) else { continue };
            let object = ObjectRef { kind, id: id.to_string() };
            if desired.get(&object).is_some() {
                continue;
            }
            let have = normalize::live(kind, l, nopts);
            let children = live_children(kind, id, live);
            orphans.push(Planned {
                action: Action {
                    changes: diff_object(kind, None, &json!({}), &have),
                    live_version: live_version(kind, l),
                    preview: Some(Preview { live: Some(mask::masked(kind, &have, &[])), desired: None }),
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
    let (list, key, field): (&Vec<Value>, &str, &str) = match kind {
        ObjectKind::MarathonApp => (&live.apps, "id", "dependencies"),
        ObjectKind::ChronosJob => (&live.jobs, "name", "parents"),
    };
    list.iter()
        .filter(|l| {
            l.get(field).and_then(Value::as_array).is_some_and(|deps| {
                deps.iter().filter_map(Value::as_str).any(|d| match kind {
                    ObjectKind::MarathonApp => canonical_app_id(d) == id,
                    ObjectKind::ChronosJob => d == id,
                })
            })
        })
        .filter_map(|l| l.get(key).and_then(Value::as_str))
        .map(|c| ObjectRef { kind, id: c.to_string() })
        .collect()
}
