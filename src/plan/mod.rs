//! Plans: the ordered Create / Update / Scale / Delete / Adopt actions computed from the
//! diff, ownership and prune rules. Pure: no I/O, no clock ("now" is a parameter).
//!
//! A plan says, for every managed object, what will happen to it, why (the field
//! changes, with the file:line of each desired value), what it costs (a Marathon
//! restart, a scale only, a Chronos replace that resets run statistics), and exactly
//! what body `apply` will send — so `apply` makes no decisions of its own.

mod compute;
mod order;
pub mod render;
mod saved;

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use compute::{PlanOptions, compute};
pub use saved::{check_still_valid, live_version};

use crate::diff::FieldChange;
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
    /// Nothing to do (equal, suspended with no change, or only ignored fields differ).
    NoOp,
}

/// What a write costs the running workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Impact {
    /// No effect on running tasks (no write, or a create).
    None,
    /// Marathon: every task is restarted (any change but `instances`).
    Restart,
    /// Marathon: only the number of tasks changes.
    ScaleOnly,
    /// Chronos: the job is replaced whole; its run statistics are reset.
    Replace,
    /// The object (and its tasks) goes away.
    Destroy,
}

/// One planned action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// The object acted on.
    pub object: ObjectRef,
    /// What happens.
    pub kind: ActionKind,
    /// What it costs.
    pub impact: Impact,
    /// The field-level differences that justify it (empty for NoOp).
    pub changes: Vec<FieldChange>,
    /// Exactly what `apply` sends (full definition, `{"instances": N}`, Chronos job);
    /// `None` for Delete and NoOp.
    pub body: Option<Value>,
    /// The live `version` (Marathon) the action was computed against, for saved plans.
    pub live_version: Option<String>,
    /// Objects that must be done first (they are in earlier waves).
    pub depends_on: Vec<ObjectRef>,
    /// Ordering wave: all actions of wave n run before any of wave n+1.
    pub wave: usize,
    /// For scheduled Chronos jobs: the next three run times.
    pub next_runs: Vec<DateTime<Utc>>,
    /// Why this object is left alone or refused, if it is (suspended, unowned, …).
    pub note: Option<String>,
    /// Chronos: the job changes between scheduled and dependent, which Chronos cannot
    /// do in place (2.4 keeps firing the old schedule): apply must `DELETE` the job and
    /// then create it with `body`. The action stays one Update (impact Replace) so
    /// ordering and reporting see one object.
    #[serde(default)]
    pub recreate: bool,
    /// `sync.secret` pointers of the object, so renderers can mask `body` too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// The masked, normalized documents the changes were computed from, for the
    /// unified-diff rendering. Never holds a secret value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<Preview>,
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
    /// Whether apply writes anything for this action.
    pub fn is_write(&self) -> bool {
        self.kind != ActionKind::NoOp
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
    /// Objects equal to their manifest.
    pub unchanged: usize,
}

/// A whole plan: actions in execution order (by wave, then by id).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Every action, NoOps included, sorted by (wave, object).
    pub actions: Vec<Action>,
    /// Set when the mass-delete guard (or the empty-manifest rule) refused the
    /// deletes: the plan then holds no Delete actions and this says why.
    pub prune_refused: Option<String>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} to create, {} to update ({} restart), {} to scale, {} to delete",
            self.create, self.update, self.restart, self.scale, self.delete
        )
    }
}

impl Plan {
    /// Count the actions by kind.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for a in &self.actions {
            match a.kind {
                ActionKind::Create | ActionKind::Adopt => s.create += 1,
                ActionKind::Update => {
                    s.update += 1;
                    if a.impact == Impact::Restart {
                        s.restart += 1;
                    }
                }
                ActionKind::Scale => s.scale += 1,
                ActionKind::Delete => s.delete += 1,
                ActionKind::NoOp => s.unchanged += 1,
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
