//! Rendering a plan: for people (a header per object naming the action and its impact,
//! one line per changed field with the file:line of the desired value, a unified diff
//! of the normalized documents, the summary line) and for machines (`--output json`).
//! Secrets never appear: changes and previews are masked when the plan is computed,
//! and bodies are masked here.

use serde_json::{Value, json};

use super::{Action, ActionKind, Decision, Impact, Plan};
use crate::diff::FieldChange;
use crate::diff::mask::{self, MASK};
use crate::diff::render::{ansi, paint, unified};
use crate::model::Location;

/// How to render for people.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// ANSI colours (the caller decides from NO_COLOR and whether stdout is a tty).
    pub color: bool,
    /// Also list objects with nothing to do.
    pub show_unchanged: bool,
    /// Append the unified diff of the normalized documents under each object.
    pub unified: bool,
}

/// What an impact means, in words.
pub fn impact_text(impact: Impact) -> &'static str {
    match impact {
        Impact::None => "no restart",
        Impact::Restart => "restart: every task is replaced",
        Impact::ScaleOnly => "scale only, no restart",
        Impact::Replace => "replace (resets run statistics)",
        Impact::Destroy => "destroy",
    }
}

/// The action as a word (`create`, `update`, …).
pub fn kind_word(kind: ActionKind) -> &'static str {
    match kind {
        ActionKind::Create => "create",
        ActionKind::Update => "update",
        ActionKind::Scale => "scale",
        ActionKind::Delete => "delete",
        ActionKind::Adopt => "adopt",
        ActionKind::Run => "run",
        ActionKind::NoOp => "no change",
    }
}

fn sign(kind: ActionKind) -> (&'static str, &'static str) {
    match kind {
        ActionKind::Create | ActionKind::Adopt => ("+", ansi::GREEN),
        ActionKind::Update | ActionKind::Scale => ("~", ansi::YELLOW),
        ActionKind::Run => (">", ansi::YELLOW),
        ActionKind::Delete => ("-", ansi::RED),
        ActionKind::NoOp => ("=", ""),
    }
}

/// Change values are masked when the plan is computed (secret leaves read [`MASK`]),
/// so a structured value keeps its non-secret members visible.
fn value_text(value: &Option<Value>, secret: bool) -> String {
    match value {
        None => "(absent)".into(),
        Some(Value::String(s)) if secret && s == MASK => MASK.into(),
        Some(_) if secret && !value.as_ref().is_some_and(|v| v.is_object() || v.is_array()) => MASK.into(),
        Some(v) => v.to_string(),
    }
}

/// A document built without a file (tests, library use) has nothing to point at.
fn is_unknown(loc: &Location) -> bool {
    loc.file.as_os_str() == "<unknown>"
}

/// One changed field: `~ /cpus: 1 → 0.5  (apps/a.yaml:5:9)`, secrets masked.
pub fn change_line(change: &FieldChange) -> String {
    let what = match change.sign() {
        '+' => format!("+ {} = {}", change.pointer, value_text(&change.new, change.secret)),
        '-' => format!("- {} (was {})", change.pointer, value_text(&change.old, change.secret)),
        _ => format!(
            "~ {}: {} → {}",
            change.pointer,
            value_text(&change.old, change.secret),
            value_text(&change.new, change.secret)
        ),
    };
    match &change.location {
        Some(loc) if change.new.is_some() && !is_unknown(loc) => {
            format!("{what}  ({loc})")
        }
        _ => what,
    }
}

/// The header line of one action: `~ app /a: update, restart: every task is replaced`.
pub fn header(action: &Action) -> String {
    let (s, _) = sign(action.kind());
    let word = match &action.decision {
        Decision::Hold(_) => "left alone",
        Decision::Equal if !action.changes.is_empty() => "left alone",
        decision => kind_word(decision.kind()),
    };
    let mut text = format!("{s} {}: {word}", action.object);
    if action.is_write() && action.impact != Impact::None {
        text.push_str(&format!(", {}", impact_text(action.impact)));
    }
    if action.recreate() {
        text.push_str(" [delete + create]");
    }
    // The manifest file, from the first change that knows where it is written.
    if let Some(loc) = action.changes.iter().filter_map(|c| c.location.as_ref()).find(|l| !is_unknown(l)) {
        text.push_str(&format!("  ({})", loc.file.display()));
    }
    text
}

/// The plan for people: one block per object that changes (or is noted), then the
/// summary line (and why prune was refused, if it was).
pub fn render_text(plan: &Plan, opts: &RenderOptions) -> String {
    let mut out = String::new();
    for action in &plan.actions {
        let note = action.note();
        let interesting = action.is_write() || !action.changes.is_empty() || note.is_some();
        if !interesting && !opts.show_unchanged {
            continue;
        }
        let (_, colour) = sign(action.kind());
        let head = header(action);
        out.push_str(&if colour.is_empty() {
            head
        } else {
            paint(&head, &format!("{}{colour}", ansi::BOLD), opts.color)
        });
        out.push('\n');
        if action.is_write() {
            let mut line = format!("    wave {}", action.wave);
            if !action.depends_on.is_empty() {
                let deps: Vec<String> = action.depends_on.iter().map(ToString::to_string).collect();
                line.push_str(&format!(", after {}", deps.join(", ")));
            }
            out.push_str(&line);
            out.push('\n');
        }
        if let Some(note) = &note {
            out.push_str(&format!("    note: {note}\n"));
        }
        if !action.next_runs.is_empty() {
            let runs: Vec<String> =
                action.next_runs.iter().map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()).collect();
            out.push_str(&format!("    next runs: {}\n", runs.join(", ")));
        }
        for change in &action.changes {
            out.push_str("    ");
            out.push_str(&change_line(change));
            out.push('\n');
        }
        // A create or delete lists every field already; the unified diff adds nothing.
        if opts.unified
            && matches!(
                action.kind(),
                ActionKind::Update | ActionKind::Scale | ActionKind::Adopt | ActionKind::NoOp
            )
        {
            if let Some(preview) = &action.preview {
                for line in unified(preview.live.as_ref(), preview.desired.as_ref(), opts.color).lines() {
                    out.push_str("    ");
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        out.push('\n');
    }
    if let Some(reason) = &plan.prune_refused {
        out.push_str(&paint(&format!("prune refused: {reason}"), ansi::RED, opts.color));
        out.push('\n');
    }
    out.push_str(&plan.summary().to_string());
    out.push('\n');
    out
}

/// The plan for machines (`--output json`): every action with masked changes and
/// masked body, the summary counts and line, and the prune refusal.
pub fn render_json(plan: &Plan) -> Value {
    let actions: Vec<Value> = plan
        .actions
        .iter()
        .map(|a| {
            let body = a.body.as_ref().map(|b| mask::masked(a.object.kind, b, &a.secrets));
            json!({
                "object": {"kind": a.object.kind, "id": a.object.id},
                "action": a.kind(),
                "impact": a.impact,
                "recreate": a.recreate(),
                "wave": a.wave,
                "dependsOn": a.depends_on,
                "changes": a.changes,
                "body": body,
                "liveVersion": a.live_version,
                "nextRuns": a.next_runs,
                "note": a.note(),
            })
        })
        .collect();
    let summary = plan.summary();
    json!({
        "actions": actions,
        "summary": summary,
        "summaryLine": summary.to_string(),
        "hasChanges": plan.has_changes(),
        "pruneRefused": plan.prune_refused,
    })
}
