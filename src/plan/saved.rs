//! Saved plans (`diff --out plan.json`, `apply plan.json`): every action records the
//! live version it was computed against, and a saved plan is refused when live has
//! changed since — a plan is only valid for the state it was made from.

use serde_json::Value;

use super::Plan;
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
            Some(format!("chronos:{:016x}", fnv1a(canonical_text(&job).as_bytes())))
        }
    }
}

/// FNV-1a, 64 bit: stable across processes and Rust versions (unlike `DefaultHasher`).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
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
        let now = current.and_then(|l| live_version(action.object.kind, l));
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
