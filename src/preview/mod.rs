//! Pull-request previews: what merging a change between two revisions of the
//! manifests would do, impact first. Pure: the revisions are loaded (and live state
//! listed) by the caller; this module plans, classifies and renders (text and JSON
//! here, Markdown in [`markdown`]).
//!
//! - **Offline** (no cluster): the base revision is taken as applied — every object
//!   in the form apply would have created it ([`crate::plan::created_form`]) — and
//!   the head revision is planned against that with the ordinary planner. Both sides
//!   go through the same normalizer, so a change that only reformats, moves or renames
//!   files shows nothing. An object whose manifest (spec and `sync`) is byte-for-byte
//!   the same in both revisions is known equal without being compared.
//! - **Live**: head is planned against the live state as `diff` does, and each object
//!   that would change says whether the PR causes it (its manifest differs between
//!   base and head) or it is drift already present on base (base differs from live),
//!   or both.
//!
//! This sits above [`crate::plan`] and [`crate::diff`] (it reads plans); nothing below
//! it depends on it, so `diff` (which `plan` uses) never imports it.

pub mod markdown;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::diff::render::unified_between;
use crate::model::{DesiredObject, DesiredState, LiveObject, LiveState, ObjectRef};
use crate::plan::render::{change_line, header};
use crate::plan::{
    Action, ActionKind, Decision, Impact, Memo, Plan, PlanOptions, Write, compute_with, created_form,
};

/// The stable hidden line a CI step looks for to update its previous comment.
pub const MARKER: &str = "<!-- mesosync-preview -->";

/// What the preview does not show yet, said in every output.
pub const RUN_ONCE_NOT_SHOWN: &str =
    "Run-once jobs that this change would run are not shown yet (run-once orchestration has not landed).";

/// One side of the preview.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Side {
    /// As the user named it (`origin/main`, `HEAD`), or `work tree`.
    pub name: String,
    /// The full commit hash; `None` for the work tree.
    pub commit: Option<String>,
}

impl Side {
    /// `main (0123456789ab)`, or `work tree`.
    pub fn label(&self) -> String {
        match &self.commit {
            // Named by its hash: the short hash says it all.
            Some(c) if c.starts_with(&self.name) => c.get(..12).unwrap_or(c).to_string(),
            Some(c) => format!("{} ({})", self.name, c.get(..12).unwrap_or(c)),
            None => self.name.clone(),
        }
    }
}

/// What a preview compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// desired(base) → desired(head).
    Offline,
    /// live → desired(head), each change attributed.
    Live,
}

/// Why an object would change, in live mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// Its manifest differs between base and head, and live matches base.
    ThisChange,
    /// Its manifest is the same in both: live already differs from base (drift).
    Drift,
    /// The PR changes it, and live already differed from base too.
    ThisChangeAndDrift,
}

impl Cause {
    /// In words.
    pub fn text(self) -> &'static str {
        match self {
            Cause::ThisChange => "caused by this change",
            Cause::Drift => "drift already present on base (not caused by this change)",
            Cause::ThisChangeAndDrift => "caused by this change, on top of drift already present on base",
        }
    }

    /// Whether the PR has a part in it.
    pub fn by_change(self) -> bool {
        self != Cause::Drift
    }
}

/// How a changed object is affected, the rows of the summary table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// Created.
    Create,
    /// Marathon app updated: every task restarts.
    Restart,
    /// Marathon app scaled only.
    ScaleOnly,
    /// Chronos job replaced (its run statistics reset).
    JobReplace,
    /// Run-once Chronos job run again (its parents ran, or its run record is missing).
    JobRun,
    /// Taken over (adoption): written with the ownership mark.
    Adopt,
    /// Deleted (only with `--prune`).
    Delete,
    /// Differs, but left alone (suspended, unowned, prune off or refused).
    LeftAlone,
}

impl Category {
    /// Every category, in table order.
    pub const ALL: [Category; 8] = [
        Category::Create,
        Category::Restart,
        Category::ScaleOnly,
        Category::JobReplace,
        Category::JobRun,
        Category::Adopt,
        Category::Delete,
        Category::LeftAlone,
    ];

    /// The row label.
    pub fn text(self) -> &'static str {
        match self {
            Category::Create => "create",
            Category::Restart => "update (restart)",
            Category::ScaleOnly => "scale only",
            Category::JobReplace => "job replace",
            Category::JobRun => "job run",
            Category::Adopt => "adopt",
            Category::Delete => "delete",
            Category::LeftAlone => "left alone",
        }
    }

    /// The category of `action`; `None` when nothing about it changes.
    pub fn of(action: &Action) -> Option<Category> {
        Some(match &action.decision {
            Decision::Equal => return None,
            Decision::Hold(_) => Category::LeftAlone,
            Decision::Write(Write::Create) => Category::Create,
            Decision::Write(Write::Replace { .. }) => Category::JobReplace,
            Decision::Write(Write::Update) if action.impact == Impact::Replace => Category::JobReplace,
            Decision::Write(Write::Update) => Category::Restart,
            Decision::Write(Write::Scale) => Category::ScaleOnly,
            Decision::Write(Write::Adopt { .. }) => Category::Adopt,
            Decision::Write(Write::Delete) => Category::Delete,
            Decision::Write(Write::Run(_)) => Category::JobRun,
        })
    }
}

/// A computed preview.
#[derive(Clone, Debug)]
pub struct Preview {
    /// The base revision.
    pub base: Side,
    /// The head revision (or the work tree).
    pub head: Side,
    /// Offline or live.
    pub mode: Mode,
    /// What applying head would do (against base as applied, or against live).
    pub plan: Plan,
    /// Live mode: why each changed object changes.
    pub causes: BTreeMap<ObjectRef, Cause>,
}

/// The live state once `base` was applied: every object in its created form.
pub fn applied(base: &DesiredState, opts: &PlanOptions, now: DateTime<Utc>) -> LiveState {
    let form = |d: &DesiredObject| {
        LiveObject::from_value(&created_form(d, &opts.instance, now), crate::system::of(d.object.kind))
    };
    LiveState { apps: base.apps.iter().map(form).collect(), jobs: base.jobs.iter().map(form).collect() }
}

/// The plan that takes `base` (as applied) to `head`. Objects whose manifest did not
/// change are not compared (they are equal by construction).
pub fn offline_plan(
    base: &DesiredState,
    head: &DesiredState,
    opts: &PlanOptions,
    now: DateTime<Utc>,
) -> Plan {
    let live = applied(base, opts, now);
    let index = live.index();
    let mut memo = Memo::default();
    for d in head.objects() {
        let Some(b) = base.get(&d.object) else { continue };
        let created = index.get(d.object.kind, &d.object.id);
        if let Some(created) =
            created.filter(|_| b.spec.fingerprint() == d.spec.fingerprint() && b.sync == d.sync)
        {
            memo.assume_equal(opts, d, created);
        }
    }
    compute_with(head, &live, opts, now, &mut memo)
}

/// Whether an action of a plan says the object differs.
fn differs(action: Option<&Action>) -> bool {
    action.is_some_and(|a| a.is_write() || !a.changes.is_empty())
}

/// For each object `head_vs_live` would change: whether the PR causes it
/// (`base_vs_head`, the offline plan, changes it) or it is drift (`base_vs_live`
/// changes it), or both.
pub fn causes(head_vs_live: &Plan, base_vs_head: &Plan, base_vs_live: &Plan) -> BTreeMap<ObjectRef, Cause> {
    let by_change: std::collections::HashMap<&ObjectRef, &Action> =
        base_vs_head.actions.iter().map(|a| (&a.object, a)).collect();
    let by_drift: std::collections::HashMap<&ObjectRef, &Action> =
        base_vs_live.actions.iter().map(|a| (&a.object, a)).collect();
    head_vs_live
        .actions
        .iter()
        .filter(|a| Category::of(a).is_some())
        .map(|a| {
            let change = differs(by_change.get(&a.object).copied());
            let drift = differs(by_drift.get(&a.object).copied());
            let cause = match (change, drift) {
                (true, true) => Cause::ThisChangeAndDrift,
                (false, true) => Cause::Drift,
                _ => Cause::ThisChange,
            };
            (a.object.clone(), cause)
        })
        .collect()
}

impl Preview {
    /// The actions that change something, in dependency (wave) order.
    pub fn changed(&self) -> impl Iterator<Item = (&Action, Category)> {
        self.plan.actions.iter().filter_map(|a| Category::of(a).map(|c| (a, c)))
    }

    /// How many objects fall in each category.
    pub fn counts(&self) -> BTreeMap<Category, usize> {
        let mut counts: BTreeMap<Category, usize> = Category::ALL.iter().map(|&c| (c, 0)).collect();
        for (_, category) in self.changed() {
            *counts.entry(category).or_default() += 1;
        }
        counts
    }

    /// The objects whose tasks would all restart (Marathon apps' updates and
    /// adoptions: the writes whose impact, their system's, is [`Impact::Restart`]).
    pub fn restarts(&self) -> Vec<&ObjectRef> {
        self.changed()
            .filter(|(a, _)| a.is_write() && a.impact == Impact::Restart)
            .map(|(a, _)| &a.object)
            .collect()
    }

    /// The restarts this change is responsible for (all of them offline; in live mode,
    /// not those that only drift causes) — what `--fail-on-restarts` counts.
    pub fn restarts_by_change(&self) -> Vec<&ObjectRef> {
        self.restarts().into_iter().filter(|o| self.causes.get(*o).is_none_or(|c| c.by_change())).collect()
    }

    /// The deletes this change is responsible for — what `--fail-on-delete` counts.
    pub fn deletes_by_change(&self) -> Vec<&ObjectRef> {
        self.changed()
            .filter(|(a, _)| a.kind() == ActionKind::Delete)
            .map(|(a, _)| &a.object)
            .filter(|o| self.causes.get(*o).is_none_or(|c| c.by_change()))
            .collect()
    }

    /// Whether applying head would write anything.
    pub fn has_changes(&self) -> bool {
        self.plan.has_changes()
    }

    /// The names of the two sides of a field diff.
    pub fn side_names(&self) -> (&'static str, &'static str) {
        match self.mode {
            Mode::Offline => ("base", "head"),
            Mode::Live => ("live", "head"),
        }
    }

    /// The title line: what is compared to what.
    pub fn title(&self) -> String {
        match self.mode {
            Mode::Offline => {
                format!(
                    "base {} → head {} (offline: no cluster was read)",
                    self.base.label(),
                    self.head.label()
                )
            }
            Mode::Live => format!(
                "live cluster → head {} (causes compared with base {})",
                self.head.label(),
                self.base.label()
            ),
        }
    }

    /// The unified diff of one object's masked, normalized documents.
    pub fn object_diff(&self, action: &Action) -> String {
        let Some(preview) = &action.preview else { return String::new() };
        let (old, new) = self.side_names();
        unified_between((old, preview.live.as_ref()), (new, preview.desired.as_ref()), false)
    }

    /// The lines under an object's header: wave and order, cause, note, changed fields
    /// with the file:line of each desired value.
    pub fn object_lines(&self, action: &Action) -> Vec<String> {
        let mut lines = self.object_facts(action);
        lines.extend(action.changes.iter().map(change_line));
        lines
    }

    /// The facts about an object besides its changed fields: wave and order, cause,
    /// note.
    pub fn object_facts(&self, action: &Action) -> Vec<String> {
        let mut lines = Vec::new();
        if action.is_write() {
            let mut line = format!("wave {}", action.wave);
            if !action.depends_on.is_empty() {
                let deps: Vec<String> = action.depends_on.iter().map(ToString::to_string).collect();
                line.push_str(&format!(", after {}", deps.join(", ")));
            }
            lines.push(line);
        }
        if let Some(cause) = self.causes.get(&action.object) {
            lines.push(format!("cause: {}", cause.text()));
        }
        if let Some(note) = action.note() {
            lines.push(format!("note: {note}"));
        }
        lines
    }

    /// The summary: counts by impact, the apps that restart, and what is not shown.
    pub fn summary_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (category, count) in self.counts() {
            lines.push(format!("{:<18}{count:>6}", category.text()));
        }
        let restarts = self.restarts();
        if restarts.is_empty() {
            lines.push("apps that restart: none".into());
        } else {
            let ids: Vec<&str> = restarts.iter().map(|o| o.id.as_str()).collect();
            lines.push(format!("apps that restart ({}): {}", ids.len(), ids.join(", ")));
        }
        if let Some(reason) = &self.plan.prune_refused {
            lines.push(format!("prune refused: {reason}"));
        }
        lines.push(RUN_ONCE_NOT_SHOWN.into());
        lines
    }
}

/// The preview for people: title, summary table, then each changed object in
/// dependency order with its fields and unified diff, then the plan's summary line.
pub fn render_text(preview: &Preview) -> String {
    let mut out = format!("mesosync preview: {}\n\n", preview.title());
    for line in preview.summary_lines() {
        out.push_str(&line);
        out.push('\n');
    }
    out.push('\n');
    for (action, _) in preview.changed() {
        out.push_str(&header(action));
        out.push('\n');
        for line in preview.object_lines(action) {
            out.push_str(&format!("    {line}\n"));
        }
        for line in preview.object_diff(action).lines() {
            out.push_str(&format!("    {line}\n"));
        }
        out.push('\n');
    }
    out.push_str(&preview.plan.summary().to_string());
    out.push('\n');
    out
}

/// The preview for machines: the same data as the text and Markdown (secrets masked).
pub fn render_json(preview: &Preview) -> Value {
    let counts: serde_json::Map<String, Value> =
        preview.counts().into_iter().map(|(c, n)| (c.text().to_string(), json!(n))).collect();
    let objects: Vec<Value> = preview
        .changed()
        .map(|(a, category)| {
            json!({
                "object": {"kind": a.object.kind, "id": a.object.id},
                "category": category,
                "action": a.kind(),
                "impact": a.impact,
                "wave": a.wave,
                "dependsOn": a.depends_on,
                "cause": preview.causes.get(&a.object),
                "note": a.note(),
                "changes": a.changes,
                "diff": preview.object_diff(a),
            })
        })
        .collect();
    json!({
        "mode": preview.mode,
        "base": preview.base,
        "head": preview.head,
        "summary": counts,
        "restarts": preview.restarts(),
        "pruneRefused": preview.plan.prune_refused,
        "runOnceJobs": {"shown": false, "reason": RUN_ONCE_NOT_SHOWN},
        "objects": objects,
        "hasChanges": preview.has_changes(),
        "summaryLine": preview.plan.summary().to_string(),
    })
}
