//! Saved plans (`diff --out plan.json`, `apply plan.json`): every action records the
//! live version it was computed against, and a saved plan is refused when live has
//! changed since — a plan is only valid for the state it was made from.
//!
//! A plan file never holds a secret: [`masked_for_saving`] masks every secret value
//! of the bodies (as the renderers do). `apply --plan FILE DIR` therefore plans again
//! from the manifests, checks that the fresh plan makes exactly the saved writes
//! ([`matches_saved`]) against unchanged live state, and applies the fresh one, which
//! carries the real values.

use serde_json::Value;

use super::Plan;
use crate::diff::mask::{MASK, masked};
use crate::model::{LiveState, ObjectKind};
use crate::normalize::canonical_text;
use crate::normalize::chronos::STAT_FIELDS;

/// The version of a live object: Marathon's `version`; for a Chronos job (which has
/// none) a stable hash of its JSON without run statistics, `chronos:<16 hex digits>`.
pub fn live_version(kind: ObjectKind, live: &Value) -> Option<String> {
    match kind {
        ObjectKind::MarathonApp => live.get("version").and_then(Value::as_str).map(str::to_string),
        ObjectKind::ChronosJob => {
            let mut job = live.clone();
            if let Value::Object(map) = &mut job {
                for field in STAT_FIELDS {
                    map.shift_remove(*field);
                }
            }
            Some(format!("chronos:{:016x}", crate::model::fingerprint(canonical_text(&job).as_bytes())))
        }
    }
}

/// Check that `live` is still the state `plan` was computed against: every object the
/// plan names has the recorded live version (and every object to create is still
/// absent). The error lists every object that changed.
pub fn check_still_valid(plan: &Plan, live: &LiveState) -> Result<(), String> {
    let mut stale = Vec::new();
    let index = live.index();
    for action in &plan.actions {
        let current = match action.object.kind {
            ObjectKind::MarathonApp => index.app(&action.object.id),
            ObjectKind::ChronosJob => index.job(&action.object.id),
        };
        let now = current.and_then(|l| live_version(action.object.kind, &l.value()));
        let exists = current.is_some();
        let problem = match (&action.live_version, exists) {
            (None, true) => Some("was created live since the plan was made".to_string()),
            (None, false) => None,
            (Some(_), false) => Some("was deleted live since the plan was made".to_string()),
            (Some(was), true) if now.as_deref() != Some(was.as_str()) => Some(format!(
                "changed live since the plan was made (version {was}, now {})",
                now.as_deref().unwrap_or("unknown")
            )),
            (Some(_), true) => None,
        };
        if let Some(p) = problem {
            stale.push(format!("{} {p}", action.object));
        }
    }
    if stale.is_empty() {
        Ok(())
    } else {
        Err(format!("the saved plan is stale, make a new one: {}", stale.join("; ")))
    }
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
        if let Some(note) = &action.note {
            action.note = Some(crate::diff::mask::mask_text(note, &action.secrets));
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
pub fn matches_saved(saved: &Plan, fresh: &Plan) -> Result<(), String> {
    let writes = |plan: &Plan| -> Vec<(String, String)> {
        let masked = masked_for_saving(plan);
        let mut v: Vec<(String, String)> = masked
            .actions
            .iter()
            .filter(|a| a.is_write())
            .map(|a| {
                let body = a.body.as_ref().map(canonical_text).unwrap_or_default();
                (a.object.to_string(), format!("{:?} {} {body}", a.kind, a.recreate))
            })
            .collect();
        v.sort();
        v
    };
    let (was, now) = (writes(saved), writes(fresh));
    if was == now {
        return Ok(());
    }
    let mut differ: Vec<&str> = was
        .iter()
        .filter(|w| !now.contains(w))
        .chain(now.iter().filter(|w| !was.contains(w)))
        .map(|(object, _)| object.as_str())
        .collect();
    differ.sort_unstable();
    differ.dedup();
    Err(format!(
        "the manifests no longer plan the saved writes (changed: {}); make a new plan",
        differ.join(", ")
    ))
}
