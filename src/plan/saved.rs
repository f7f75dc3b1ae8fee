//! Saved plans (`diff --out FILE`, then `apply --plan FILE DIR`): every action records
//! the live version it was computed against, and a saved plan is refused when live has
//! changed since — a plan is only valid for the state it was made from.
//!
//! A plan file never holds a secret: [`masked_for_saving`] masks every secret value
//! of the bodies (as the renderers do). `apply --plan FILE DIR` therefore plans again
//! from the manifests, checks that the fresh plan makes exactly the saved writes
//! ([`matches_saved`]) against unchanged live state, and applies the fresh one, which
//! carries the real values (`reconcile::Pipeline::apply_saved`, the only path).

use std::fmt;

use serde_json::Value;

use super::Plan;
use crate::diff::mask::{MASK, masked};
use crate::model::{LiveState, ObjectKind, ObjectRef};
use crate::normalize::canonical_text;

/// The version of a live object a saved plan records: Marathon's `version`; for a
/// Chronos job (which has none) a stable hash of its JSON without run statistics,
/// `chronos:<16 hex digits>` (see [`crate::system::System::live_version`]).
pub fn live_version(kind: ObjectKind, live: &Value) -> Option<String> {
    crate::system::of(kind).live_version(live)
}

/// How one object moved live since a saved plan was made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LiveChange {
    /// The plan found nothing there; live has it now.
    Created,
    /// The plan found it; live has it no more.
    Deleted,
    /// Its live version differs from the recorded one.
    Changed {
        /// The version the plan recorded.
        was: String,
        /// The version live reports now, if it reports one.
        now: Option<String>,
    },
}

impl fmt::Display for LiveChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LiveChange::Created => f.write_str("was created live since the plan was made"),
            LiveChange::Deleted => f.write_str("was deleted live since the plan was made"),
            LiveChange::Changed { was, now } => write!(
                f,
                "changed live since the plan was made (version {was}, now {})",
                now.as_deref().unwrap_or("unknown")
            ),
        }
    }
}

/// A saved plan made against live state that has moved on: every object that moved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the saved plan is stale, make a new one: {}", moved_list(.0))]
pub struct LiveMoved(pub Vec<(ObjectRef, LiveChange)>);

fn moved_list(moved: &[(ObjectRef, LiveChange)]) -> String {
    moved.iter().map(|(object, change)| format!("{object} {change}")).collect::<Vec<_>>().join("; ")
}

/// The manifests no longer plan a saved plan's writes: the objects whose write differs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the manifests no longer plan the saved writes (changed: {}); make a new plan",
    .0.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
)]
pub struct WritesDiffer(pub Vec<ObjectRef>);

/// Check that `live` is still the state `plan` was computed against: every object the
/// plan names has the recorded live version (and every object to create is still
/// absent). The error lists every object that changed.
pub fn check_still_valid(plan: &Plan, live: &LiveState) -> Result<(), LiveMoved> {
    let mut stale = Vec::new();
    let index = live.index();
    for action in &plan.actions {
        let current = index.get(action.object.kind, &action.object.id);
        let now = current.and_then(|l| live_version(action.object.kind, &l.value()));
        let problem = match (&action.live_version, current.is_some()) {
            (None, true) => Some(LiveChange::Created),
            (None, false) => None,
            (Some(_), false) => Some(LiveChange::Deleted),
            (Some(was), true) if now.as_deref() != Some(was.as_str()) => {
                Some(LiveChange::Changed { was: was.clone(), now })
            }
            (Some(_), true) => None,
        };
        if let Some(p) = problem {
            stale.push((action.object.clone(), p));
        }
    }
    if stale.is_empty() { Ok(()) } else { Err(LiveMoved(stale)) }
}

/// A copy of `plan` fit to be written to a file: every secret value of every body
/// (names that look secret, `sync.secret` values, SOPS values) and of every note
/// replaced by the mask.
pub fn masked_for_saving(plan: &Plan) -> Plan {
    let mut saved = plan.clone();
    for action in &mut saved.actions {
        if let Some(body) = &action.body {
            action.body = Some(masked(action.object.kind, body, &action.secrets));
        }
    }
    saved
}

/// Whether a body of `plan` holds a masked secret (a plan read back from a file): such
/// a plan must not be applied as it is, or the mask would be written. Masking is by
/// value, so the mask may stand anywhere (inside a command line too).
pub fn has_masked_secrets(plan: &Plan) -> bool {
    plan.actions.iter().any(|a| a.body.as_ref().is_some_and(holds_mask))
}

fn holds_mask(doc: &Value) -> bool {
    match doc {
        Value::Object(map) => map.values().any(holds_mask),
        Value::Array(items) => items.iter().any(holds_mask),
        Value::String(s) => s.contains(MASK),
        _ => false,
    }
}

/// Check that `fresh` makes exactly the writes of `saved` (compared with secrets
/// masked): same objects, same kinds, same bodies. The error names every difference.
pub fn matches_saved(saved: &Plan, fresh: &Plan) -> Result<(), WritesDiffer> {
    let writes = |plan: &Plan| -> Vec<(ObjectRef, String)> {
        let masked = masked_for_saving(plan);
        let mut v: Vec<(ObjectRef, String)> = masked
            .actions
            .iter()
            .filter(|a| a.is_write())
            .map(|a| {
                let body = a.body.as_ref().map(canonical_text).unwrap_or_default();
                (a.object.clone(), format!("{:?} {} {body}", a.kind(), a.recreate()))
            })
            .collect();
        v.sort();
        v
    };
    let (was, now) = (writes(saved), writes(fresh));
    if was == now {
        return Ok(());
    }
    let mut differ: Vec<ObjectRef> = was
        .iter()
        .filter(|w| !now.contains(w))
        .chain(now.iter().filter(|w| !was.contains(w)))
        .map(|(object, _)| object.clone())
        .collect();
    // Sorted as the words were ("app /b" before "job a").
    differ.sort_by_cached_key(ToString::to_string);
    differ.dedup();
    Err(WritesDiffer(differ))
}
