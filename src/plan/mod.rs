//! Plans: the ordered Create / Update / Scale / Delete / Adopt actions computed from the
//! diff, ownership and prune rules. Pure: no I/O, no clock ("now" is a parameter).
//!
//! A plan says, for every managed object, what will happen to it, why (the field
//! changes, with the file:line of each desired value), what it costs (a Marathon
//! restart, a scale only, a Chronos replace that resets run statistics), and exactly
//! what body `apply` will send — so `apply` makes no decisions of its own.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
}

/// Totals for the summary line.
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
