//! Saved plans (`diff --out plan.json`, then `apply plan.json`): before the first write,
//! live state is listed again and the plan is refused if any object it covers changed
//! since it was computed — the way Terraform refuses a stale saved plan.

use crate::client::{ClientError, Clients};
use crate::model::{LiveState, ObjectKind};
use crate::plan::{ActionKind, Plan};

use super::{ApplyOptions, ApplyReport, ProgressSink, apply};

/// Why a saved plan was not applied.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SavedPlanError {
    /// Live state could not be listed.
    #[error("cannot list live state to check the saved plan: {0}")]
    Listing(#[from] ClientError),
    /// Live state moved on since the plan was made.
    #[error("the saved plan is stale, compute a new one: {}", .0.join("; "))]
    Stale(Vec<String>),
}

/// Check that the live objects a plan covers are as they were when it was computed:
/// Marathon versions equal to the recorded `live_version`, objects to create still
/// absent, objects to change or delete still present. Returns what changed.
///
/// A stand-in until `plan` provides its own check; `apply_saved` calls only this.
pub fn check_still_valid(plan: &Plan, live: &LiveState) -> Result<(), Vec<String>> {
    let mut stale = Vec::new();
    for a in &plan.actions {
        let (present, version) = match a.object.kind {
            ObjectKind::MarathonApp => {
                let app = live.app(&a.object.id);
                (app.is_some(), app.and_then(|v| v.get("version")).and_then(|v| v.as_str()).map(String::from))
            }
            ObjectKind::ChronosJob => (live.job(&a.object.id).is_some(), None),
        };
        match a.kind {
            ActionKind::Create if present => stale.push(format!("{} exists now", a.object)),
            ActionKind::Create => {}
            ActionKind::NoOp if !present => {}
            _ if !present => stale.push(format!("{} no longer exists", a.object)),
            _ => {
                if let (Some(planned), Some(now)) = (&a.live_version, &version) {
                    if planned != now {
                        stale.push(format!("{} changed (version {planned} → {now})", a.object));
                    }
                }
            }
        }
    }
    if stale.is_empty() { Ok(()) } else { Err(stale) }
}

/// Apply a saved plan: list live state, refuse the plan if it is stale, else apply it.
pub async fn apply_saved(
    plan: &Plan,
    clients: &Clients,
    opts: &ApplyOptions,
    progress: &dyn ProgressSink,
) -> Result<ApplyReport, SavedPlanError> {
    let live = clients.list_live(None).await?;
    check_still_valid(plan, &live).map_err(SavedPlanError::Stale)?;
    Ok(apply(plan, clients, opts, progress).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ObjectRef;
    use crate::plan::{Action, Impact};
    use serde_json::json;

    fn action(object: ObjectRef, kind: ActionKind, live_version: Option<&str>) -> Action {
        Action {
            object,
            kind,
            impact: Impact::Restart,
            changes: vec![],
            body: None,
            live_version: live_version.map(String::from),
            depends_on: vec![],
            wave: 0,
            next_runs: vec![],
            note: None,
        }
    }

    #[test]
    fn stale_plans_are_named() {
        let live = LiveState {
            apps: vec![json!({"id": "/a", "version": "v2"}), json!({"id": "/c", "version": "v1"})],
            jobs: vec![json!({"name": "j"})],
        };
        let fresh = Plan {
            actions: vec![
                action(ObjectRef::app("/a"), ActionKind::Update, Some("v2")),
                action(ObjectRef::app("/b"), ActionKind::Create, None),
                action(ObjectRef::job("j"), ActionKind::Delete, None),
            ],
            prune_refused: None,
        };
        assert_eq!(check_still_valid(&fresh, &live), Ok(()));
        let stale = Plan {
            actions: vec![
                action(ObjectRef::app("/a"), ActionKind::Update, Some("v1")),
                action(ObjectRef::app("/c"), ActionKind::Create, None),
                action(ObjectRef::job("gone"), ActionKind::Update, None),
            ],
            prune_refused: None,
        };
        let errs = check_still_valid(&stale, &live).unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs[0].contains("v1 → v2"));
    }
}
