//! The dashboard's pages, rendered on the server with maud (escaped by construction).
//! Each page is a header (what every page needs to be read safely: dry run, revision,
//! leadership), a `<main>` whose `data-live` regions the script swaps when the status
//! changes, and nothing from outside the binary.
//!
//! Health (DESIGN §9, `crate::health`) is one column of [`objects`] (`COLUMNS`), one
//! filter, one count block on the overview and one line of the object page.

use chrono::{DateTime, SecondsFormat, Utc};
use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use super::{ObjectQuery, PAGE_SIZE, SYNC_STATES, Selection, counts};
use crate::diff::FieldChange;
use crate::model::{Location, ObjectKind, ObjectRef};
use crate::status::history::{ObjectDetail, WriteRecord, sync_word};
use crate::status::{ObjectState, ObjectStatus, Status};

/// What the header of every page shows.
#[derive(Clone, Debug)]
pub struct Frame {
    dry_run: bool,
    revision: Option<String>,
    ha_role: Option<String>,
    generation: u64,
    /// The manifest directory: file names are shown relative to it.
    root: String,
}

impl Frame {
    /// The header's facts from `s`.
    pub fn of(s: &Status) -> Self {
        let role = s.ha.as_ref().and_then(|ha| ha.get("role")).and_then(Value::as_str).map(str::to_string);
        Frame {
            dry_run: s.dry_run,
            revision: s.revision.as_ref().map(ToString::to_string),
            ha_role: role,
            generation: s.dashboard.generation,
            root: s.manifest_dir.clone(),
        }
    }
}

/// `location` with the manifest directory `root` cut from its file name
/// (`horizon/horizon.yaml.j2:9:3`).
fn place(location: &Location, root: &str) -> String {
    let text = location.to_string();
    let root = root.trim_end_matches('/');
    match text.strip_prefix(root).and_then(|rest| rest.strip_prefix('/')) {
        Some(rest) if !root.is_empty() => rest.to_string(),
        _ => text,
    }
}

fn time(at: &DateTime<Utc>) -> Markup {
    let text = at.to_rfc3339_opts(SecondsFormat::Secs, true).replace('T', " ").replace('Z', " UTC");
    html! { time datetime=(at.to_rfc3339_opts(SecondsFormat::Millis, true)) { (text) } }
}

/// The link to an object's page.
pub fn object_href(object: &ObjectRef) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("kind", object.kind.noun()).append_pair("id", &object.id);
    format!("/object?{}", q.finish())
}

fn badge(state: &ObjectState) -> Markup {
    let word = sync_word(state);
    html! { span class={ "badge " (word) } { (word.replace('-', " ")) } }
}

/// What is to be said about a state beyond its name.
fn state_note(state: &ObjectState) -> String {
    match state {
        ObjectState::Synced => String::new(),
        ObjectState::Drifted { changes } | ObjectState::Suspended { changes } => {
            format!("{changes} field{}", if *changes == 1 { "" } else { "s" })
        }
        ObjectState::Failed { error, .. } => error.clone(),
        ObjectState::Skipped { reason } => reason.clone(),
    }
}

fn layout(frame: &Frame, title: &str, current: &str, main: Markup) -> String {
    let nav = [("/", "Overview"), ("/objects", "Objects"), ("/history", "History")];
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · mesosync" }
                link rel="stylesheet" href="/ui/app.css";
                script src="/ui/app.js" defer {}
            }
            body data-generation=(frame.generation) {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "mesosync" }
                    nav aria-label="Pages" {
                        ul {
                            @for (href, name) in nav {
                                li {
                                    @if *href == *current {
                                        a href=(href) aria-current="page" { (name) }
                                    } @else {
                                        a href=(href) { (name) }
                                    }
                                }
                            }
                        }
                    }
                    div.facts #frame data-live {
                        @if frame.dry_run {
                            span.badge.dry-run title="Reconciles only report; nothing is written" { "DRY RUN: nothing is written" }
                        }
                        @if let Some(role) = &frame.ha_role {
                            span.badge.role { "HA " (role) }
                        }
                        span.revision { "revision " code { (frame.revision.as_deref().unwrap_or("not a git checkout")) } }
                        span.live-indicator role="status" aria-live="polite" { }
                    }
                }
                main #main tabindex="-1" { (main) }
            }
        }
    }
    .into_string()
}

/// A page with a heading and one sentence (bad requests).
pub fn message(title: &str, text: &str) -> String {
    let frame = Frame { dry_run: false, revision: None, ha_role: None, generation: 0, root: String::new() };
    layout(&frame, title, "", html! { h1 { (title) } p { (text) } })
}

/// `/`: what a user must see first.
pub fn overview(s: &Status, actions: Option<bool>) -> String {
    let frame = Frame::of(s);
    let (states, kinds) = counts(s);
    let main = html! {
        h1 { "Overview" }
        section #summary data-live aria-labelledby="summary-h" {
            h2 #summary-h { "Sync state" }
            @if !s.ready {
                p.notice { "No reconcile has loaded the manifests and listed live state yet." }
            }
            @if let Some(stuck) = &s.stuck {
                p.notice.error { "Stuck: " (stuck) }
            }
            dl.counts {
                @for (word, n) in SYNC_STATES.iter().zip(states) {
                    div class={ "count " (word) } {
                        dt { a href={ "/objects?state=" (word) } { (word.replace('-', " ")) } }
                        dd data-count=(word) { (n) }
                    }
                }
            }
            h2 #health-h { "Health" }
            dl.counts aria-labelledby="health-h" {
                @for (h, n) in crate::health::Health::ALL.iter().zip(super::health_counts(s)) {
                    div class={ "count health-" (h.as_str().to_lowercase()) } {
                        dt { a href={ "/objects?health=" (h.as_str()) } { (h.as_str()) } }
                        dd data-health=(h.as_str()) { (n) }
                    }
                }
            }
            p.kinds {
                @for (kind, n) in ObjectKind::ALL.iter().zip(kinds) {
                    a href={ "/objects?kind=" (kind.noun()) } { (n) " " (kind.noun()) "s" } " · "
                }
                "manifests in "
                code { (s.manifest_dir) }
            }
        }
        section #revision data-live aria-labelledby="revision-h" {
            h2 #revision-h { "Revision" }
            @match &s.revision {
                Some(r) => {
                    p {
                        "Applied commit " code #commit title=(r.commit) { (r.short()) }
                        @if r.dirty { " " span.badge.failed { "dirty work tree" } " (uncommitted changes are applied)" }
                        @else { " (clean work tree)" }
                    }
                }
                None => p { "The manifest directory is not a git work tree." },
            }
        }
        section #reconcile data-live aria-labelledby="reconcile-h" {
            h2 #reconcile-h { "Last reconcile" }
            @if let Some(r) = &s.running {
                p { "Reconcile #" (r.number) " running since " (time(&r.started_at)) " (" (reasons(&r.reasons)) ")" }
            }
            @match &s.last_reconcile {
                Some(l) => {
                    dl.facts-list {
                        dt { "Number" } dd #last-number { "#" (l.number) }
                        dt { "Finished" } dd { (time(&l.finished_at)) }
                        dt { "Why" } dd #last-reasons { (reasons(&l.reasons)) }
                        dt { "Took" } dd { (format!("{:.2} s", l.duration_seconds)) }
                        dt { "Outcome" } dd { span class={ "badge outcome-" (l.outcome.as_str()) } { (l.outcome.as_str()) } }
                        @if let Some(sum) = &l.summary {
                            dt { "Plan" }
                            dd { (sum.create) " create · " (sum.update) " update · " (sum.scale) " scale · " (sum.delete) " delete · " (sum.unchanged) " unchanged" }
                        }
                        dt { "Writes" } dd { (l.writes.len()) }
                        @if let Some(e) = &l.error { dt { "Error" } dd.error { (e) } }
                    }
                }
                None => p { "None yet." },
            }
            @if let Some(retry) = &s.retry {
                p { "Retry " (retry.failures) " after failures, at " (time(&retry.at)) }
            }
        }
        @if let Some(ha) = &s.ha {
            section #leadership data-live aria-labelledby="ha-h" {
                h2 #ha-h { "Leadership" }
                dl.facts-list {
                    dt { "Role" } dd #ha-role { (ha.get("role").map(plain).unwrap_or_default()) }
                    dt { "Leader" }
                    dd {
                        @match ha.get("leader").filter(|l| !l.is_null()) {
                            Some(leader) => {
                                (replica(leader))
                                @if let Some(endpoint) = leader.get("endpoint").and_then(Value::as_str) {
                                    " · " a href={ "http://" (endpoint.trim_start_matches("http://")) "/" } { "its dashboard" }
                                }
                            }
                            None => "none known",
                        }
                    }
                    @if let Some(me) = ha.get("me") { dt { "This replica" } dd { (replica(me)) } }
                    dt { "May write" } dd { (if ha.get("may_write") == Some(&Value::Bool(true)) { "yes" } else { "no (reconciles report only)" }) }
                    @if let Some(session) = ha.get("session_state") { dt { "ZooKeeper session" } dd { (plain(session)) } }
                }
            }
        }
        section #errors data-live aria-labelledby="errors-h" {
            h2 #errors-h { "Recent errors" }
            @if s.last_errors.is_empty() {
                p { "None." }
            } @else {
                ul.errors {
                    @for e in s.last_errors.iter().rev().take(10) {
                        li {
                            (time(&e.at)) " "
                            @if let Some(o) = &e.object { a href=(object_href(o)) { (o) } ": " }
                            span.error { (e.message) }
                        }
                    }
                }
            }
        }
        @if let Some(can_refresh) = actions {
            section #actions aria-labelledby="actions-h" {
                h2 #actions-h { "Actions" }
                form.actions method="post" action="/ui/actions/reconcile" {
                    label for="token" { "Dashboard token" }
                    input #token type="password" name="token" autocomplete="off" required;
                    button #reconcile-now type="submit" { "Reconcile now" }
                    button #refresh-git type="submit" formaction="/ui/actions/refresh" disabled[!can_refresh]
                        title=(if can_refresh { "Fetch the watched branch now" } else { "needs --git-pull" }) { "Refresh from git" }
                }
                p #action-result role="status" aria-live="polite" {}
            }
        }
    };
    layout(&frame, "Overview", "/", main)
}

/// `host (pid N)` of a replica in the HA status.
fn replica(r: &Value) -> String {
    let host = r.get("host").map(plain).unwrap_or_default();
    match r.get("pid") {
        Some(pid) => format!("{host} (pid {pid})"),
        None => host,
    }
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn reasons(reasons: &[crate::status::Trigger]) -> String {
    reasons.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// `/objects`: the filtered, sorted page of objects.
pub fn objects(frame: &Frame, query: &ObjectQuery, sel: &Selection) -> String {
    // The columns: (sort key if sortable, heading). Health goes here when it lands.
    const COLUMNS: [(Option<&str>, &str); 7] = [
        (Some("kind"), "Kind"),
        (Some("id"), "Id"),
        (Some("state"), "Sync"),
        (Some("health"), "Health"),
        (None, "Detail"),
        (None, "Plan"),
        (Some("source"), "Manifest"),
    ];
    let sort = query.sort();
    let desc = query.descending();
    let first = (sel.page - 1) * PAGE_SIZE + usize::from(sel.matching > 0);
    let last = ((sel.page - 1) * PAGE_SIZE + sel.rows.len()).min(sel.matching);
    let main = html! {
        h1 { "Objects" }
        form.filters #filters method="get" action="/objects" role="search" {
            div {
                label for="f-kind" { "Kind" }
                select #f-kind name="kind" {
                    option value="" selected[query.kind().is_none()] { "apps and jobs" }
                    option value="app" selected[query.kind.as_deref() == Some("app")] { "apps" }
                    option value="job" selected[query.kind.as_deref() == Some("job")] { "jobs" }
                }
            }
            div {
                label for="f-state" { "Sync state" }
                select #f-state name="state" {
                    option value="" selected[query.state().is_none()] { "any" }
                    @for word in SYNC_STATES {
                        option value=(word) selected[query.state() == Some(word)] { (word.replace('-', " ")) }
                    }
                }
            }
            div {
                label for="f-health" { "Health" }
                select #f-health name="health" {
                    option value="" selected[query.health().is_none()] { "any" }
                    @for h in crate::health::Health::ALL {
                        option value=(h.as_str()) selected[query.health() == Some(h)] { (h.as_str()) }
                    }
                }
            }
            div {
                label for="f-q" { "Id contains" }
                input #f-q type="search" name="q" value=(query.q.as_deref().unwrap_or("")) autocomplete="off";
            }
            @if let Some(s) = &query.sort { input type="hidden" name="sort" value=(s); }
            @if let Some(d) = &query.dir { input type="hidden" name="dir" value=(d); }
            button type="submit" { "Filter" }
            a href="/objects" { "Clear" }
        }
        section #table data-live aria-label="Objects" {
            p #count role="status" {
                @if sel.matching == 0 { "No object matches." }
                @else { "Showing " (first) "–" (last) " of " (sel.matching) " matching (" (sel.total) " in all)" }
            }
            table.objects {
                caption.visually-hidden { "Apps and jobs, sorted by " (sort) }
                thead {
                    tr {
                        @for (key, name) in COLUMNS {
                            @match key {
                                Some(key) => {
                                    @let here = key == sort;
                                    @let next = if here && !desc { "desc" } else { "asc" };
                                    th scope="col" aria-sort=(if !here { "none" } else if desc { "descending" } else { "ascending" }) {
                                        a href=(query.href(&[("sort", key), ("dir", next), ("page", "")])) { (name) @if here { span aria-hidden="true" { (if desc { " ▼" } else { " ▲" }) } } }
                                    }
                                }
                                None => th scope="col" { (name) },
                            }
                        }
                    }
                }
                tbody {
                    @for row in &sel.rows { (object_row(&row.status, row.detail.as_ref(), &frame.root)) }
                }
            }
            @if sel.pages > 1 {
                nav.pager aria-label="Pages of objects" {
                    @if sel.page > 1 { a rel="prev" href=(query.href(&[("page", &(sel.page - 1).to_string())])) { "← Previous" } }
                    span { "Page " (sel.page) " of " (sel.pages) }
                    @if sel.page < sel.pages { a rel="next" href=(query.href(&[("page", &(sel.page + 1).to_string())])) { "Next →" } }
                }
            }
        }
    };
    layout(frame, "Objects", "/objects", main)
}

fn object_row(o: &ObjectStatus, detail: Option<&ObjectDetail>, root: &str) -> Markup {
    let plan = detail.map(plan_words).unwrap_or_default();
    html! {
        tr data-id=(o.object.id) {
            td { (o.object.kind.noun()) }
            td.id { a href=(object_href(&o.object)) { (o.object.id) } }
            td { (badge(&o.state)) }
            td { (health_badge(o)) }
            td.note { (state_note(&o.state)) }
            td { (plan) }
            td.source { @if let Some(src) = detail.and_then(|d| d.source.as_ref()) { code { (place(src, root)) } } }
        }
    }
}

fn health_badge(o: &ObjectStatus) -> Markup {
    html! {
        @if let Some(h) = &o.health {
            span class={ "badge health-" (h.status.as_str().to_lowercase()) } title=(h.reason) { (h.status.as_str()) }
        } @else {
            span.absent { "—" }
        }
    }
}

fn plan_words(d: &ObjectDetail) -> String {
    let action = d.action.map(|a| crate::plan::render::kind_word(a).to_string()).unwrap_or_default();
    match d.impact.map(crate::plan::render::impact_text) {
        Some(impact) if !impact.is_empty() && d.action != Some(crate::plan::ActionKind::NoOp) => {
            format!("{action} ({impact})")
        }
        _ => action,
    }
}

fn value_cell(v: Option<&Value>, secret: bool) -> Markup {
    html! {
        @match v {
            None => span.absent { "(absent)" },
            Some(Value::String(s)) if s == crate::diff::mask::MASK => span.secret { (s) },
            Some(v) => code { (v.to_string()) },
        }
        @if secret && v.is_some() { " " span.badge.secret-badge title="secret values are never shown" { "secret" } }
    }
}

fn changes_table(id: &str, caption: &str, changes: &[FieldChange], root: &str) -> Markup {
    html! {
        table.changes #(id) {
            caption { (caption) }
            thead { tr { th scope="col" { "Field" } th scope="col" { "Live" } th scope="col" { "Desired" } th scope="col" { "Written at" } } }
            tbody {
                @for c in changes {
                    tr data-pointer=(c.pointer) {
                        th scope="row" { code { (if c.pointer.is_empty() { "/" } else { &c.pointer }) } }
                        td.old { (value_cell(c.old.as_ref(), c.secret)) }
                        td.new { (value_cell(c.new.as_ref(), c.secret)) }
                        td.source { @if let Some(l) = &c.location { code { (place(l, root)) } } }
                    }
                }
            }
        }
    }
}

/// `/object`: one object.
pub fn object(
    frame: &Frame,
    object: &ObjectRef,
    status: Option<&ObjectStatus>,
    detail: Option<&ObjectDetail>,
    writes: &[WriteRecord],
) -> String {
    let main = html! {
        p.crumbs { a href="/objects" { "Objects" } " / " (object.kind.noun()) }
        h1 { (object.kind.noun()) " " code { (object.id) } }
        section #state data-live aria-labelledby="state-h" {
            h2 #state-h { "State" }
            @match status {
                None => p { "Not in the last reconcile (no manifest and not live, or not listed)." },
                Some(st) => {
                    dl.facts-list {
                        dt { "Sync" } dd #sync-state { (badge(&st.state)) " " (state_note(&st.state)) }
                        @if let Some(d) = detail {
                            dt { "Plan" } dd #plan { (plan_words(d)) }
                            @if let Some(held) = &d.held { dt { "Why it waits" } dd #held { (held) } }
                            @if let Some(src) = &d.source { dt { "Manifest" } dd { code #source { (place(src, &frame.root)) } } }
                            @if !d.depends_on.is_empty() {
                                dt { "Waits for" }
                                dd { @for (i, dep) in d.depends_on.iter().enumerate() { @if i > 0 { ", " } a href=(object_href(dep)) { (dep) } } }
                            }
                        }
                        @if let ObjectState::Skipped { reason } = &st.state { dt { "Why it is blocked" } dd #blocked { (reason) } }
                        @if let ObjectState::Failed { error, requeue } = &st.state {
                            dt { "Error" } dd.error #error { (error) }
                            dt { "Retry" } dd { (format!("{requeue:?}").to_lowercase()) }
                        }
                        @if let Some(r) = &st.retry { dt { "Next attempt" } dd { (time(&r.at)) " (after " (r.failures) " failures)" } }
                        @if let Some(h) = &st.health {
                            dt { "Health" }
                            dd #health { (health_badge(st)) " " (h.reason) " (since " (time(&h.since)) ")" }
                        }
                    }
                }
            }
        }
        section #diff data-live aria-labelledby="diff-h" {
            h2 #diff-h { "Live vs desired" }
            @match detail {
                Some(d) if !d.changes.is_empty() => {
                    (changes_table("changes", "Fields that differ (secret values masked)", &d.changes, &frame.root))
                    @if d.changes_dropped > 0 { p { (d.changes_dropped) " more change(s) not kept; run " code { "mesosync diff" } " for all." } }
                }
                Some(d) if d.changes_dropped > 0 => p { (d.changes_dropped) " change(s) not kept; run " code { "mesosync diff" } "." },
                Some(d) if d.action == Some(crate::plan::ActionKind::Create) => p #not-live { "Not live: the manifest creates it." },
                Some(_) => p #no-diff { "Live equals the manifest." },
                None => p { "Not compared in the last reconcile." },
            }
        }
        @if let Some(d) = detail.filter(|d| !d.next_runs.is_empty()) {
            section #runs data-live aria-labelledby="runs-h" {
                h2 #runs-h { "Next runs" }
                ul { @for at in &d.next_runs { li { (time(at)) } } }
            }
        }
        section #writes data-live aria-labelledby="writes-h" {
            h2 #writes-h { "Recent writes" }
            @if writes.is_empty() {
                p { "No write to it since the controller started." }
            } @else {
                table.writes {
                    caption.visually-hidden { "Writes to this object, newest first" }
                    thead { tr { th scope="col" { "When" } th scope="col" { "Reconcile" } th scope="col" { "Revision" } th scope="col" { "Action" } th scope="col" { "Outcome" } th scope="col" { "Deployment" } th scope="col" { "Changed" } } }
                    tbody {
                        @for w in writes {
                            tr {
                                td { (time(&w.at)) }
                                td { "#" (w.reconcile) }
                                td { @if let Some(r) = &w.revision { code { (r) } } }
                                td { (crate::plan::render::kind_word(w.action)) }
                                td class=(if w.ok { "" } else { "error" }) { (w.outcome) }
                                td { @if let Some(d) = &w.deployment_id { code { (d) } } }
                                td {
                                    @for c in &w.changes {
                                        code { (c.pointer) } " "
                                        @if let Some(l) = &c.location { "(" (place(l, &frame.root)) ")" } br;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout(frame, &object.to_string(), "/objects", main)
}

/// `/history`: the last reconciles, newest first.
pub fn history(s: &Status) -> String {
    let frame = Frame::of(s);
    let main = html! {
        h1 { "History" }
        section #history data-live aria-label="Reconciles" {
            @if s.dashboard.history.is_empty() {
                p { "No reconcile has finished yet." }
            } @else {
                table.history {
                    caption { "The last " (s.dashboard.history.len()) " reconciles, newest first" }
                    thead { tr {
                        th scope="col" { "#" } th scope="col" { "Started" } th scope="col" { "Took" } th scope="col" { "Why" }
                        th scope="col" { "Revision" } th scope="col" { "Outcome" } th scope="col" { "Plan" }
                        th scope="col" { "Writes" } th scope="col" { "Failures" } th scope="col" { "Out of sync" }
                    } }
                    tbody {
                        @for r in s.dashboard.history.iter().rev() {
                            tr {
                                td { (r.number) }
                                td { (time(&r.started_at)) }
                                td { (format!("{:.2} s", r.duration_seconds)) }
                                td { (reasons(&r.reasons)) }
                                td { @if let Some(rev) = &r.revision { code { (rev) } } }
                                td {
                                    span class={ "badge outcome-" (r.outcome.as_str()) } { (r.outcome.as_str()) }
                                    @if let Some(e) = &r.error { br; span.error { (e) } }
                                }
                                td { @if let Some(sum) = &r.summary { (sum.create) "/" (sum.update) "/" (sum.scale) "/" (sum.delete) } }
                                td { (r.writes) }
                                td { (r.failures) }
                                td { (r.drifted) }
                            }
                        }
                    }
                }
                p.hint { "Plan: create / update / scale / delete." }
            }
        }
    };
    layout(&frame, "History", "/history", main)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::status::history::{Dashboard, ObjectDetail};

    fn status() -> Status {
        let bad = ObjectRef::app("/a<b>");
        let detail = ObjectDetail {
            action: Some(crate::plan::ActionKind::Update),
            source: Some(Location::new(Arc::from(Path::new("/m/dir/a.yaml")), 3, 1)),
            changes: vec![FieldChange {
                pointer: "/env/X".into(),
                old: Some(json!(crate::diff::mask::MASK)),
                new: Some(json!("<img src=x onerror=alert(1)>")),
                location: Some(Location::new(Arc::from(Path::new("/m/dir/a.yaml")), 7, 5)),
                secret: false,
            }],
            ..Default::default()
        };
        Status {
            dry_run: true,
            manifest_dir: "/m/dir".into(),
            objects: vec![ObjectStatus {
                object: bad.clone(),
                state: ObjectState::Failed {
                    error: "<script>alert(1)</script>".into(),
                    requeue: crate::status::Requeue::Backoff,
                },
                retry: None,
                health: None,
            }],
            dashboard: Dashboard { details: Arc::new([(bad, detail)].into()), ..Default::default() },
            ..Status::default()
        }
    }

    #[test]
    fn everything_from_the_status_is_escaped_and_files_are_relative() {
        let s = status();
        let selection = super::super::select(&s, &ObjectQuery::default());
        let table = objects(&Frame::of(&s), &ObjectQuery::default(), &selection);
        assert!(table.contains("&lt;script&gt;") && !table.contains("<script>alert"), "{table}");
        assert!(table.contains("<code>a.yaml:3:1</code>"), "{table}");
        let o = &s.objects[0];
        let page = object(&Frame::of(&s), &o.object, Some(o), s.dashboard.details.get(&o.object), &[]);
        assert!(!page.contains("<img src=x"), "{page}");
        assert!(page.contains("a.yaml:7:5") && page.contains("(sensitive value)"), "{page}");
        assert!(overview(&s, None).contains("DRY RUN"));
        assert!(!overview(&s, None).contains("Reconcile now"), "actions are off");
        assert!(overview(&s, Some(false)).contains("Reconcile now"));
        let ha = json!({"role": "follower", "leader": {"host": "db-1", "pid": 7, "endpoint": "10.0.0.5:9100"},
                        "me": {"host": "db-2", "pid": 9}, "may_write": false, "session_state": "SyncConnected"});
        let page = overview(&Status { ha: Some(ha), ..s }, None);
        for words in [
            "follower",
            "db-1 (pid 7)",
            "http://10.0.0.5:9100/",
            "db-2 (pid 9)",
            "no (reconciles report only)",
        ] {
            assert!(page.contains(words), "{words}: {page}");
        }
    }
}
