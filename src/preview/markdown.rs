//! A preview as a Markdown comment for GitHub and GitLab (`mesosync diff --base REV
//! --output markdown`): a stable hidden marker line (so a CI step updates its previous
//! comment instead of adding one), the title, a summary table by impact, the apps that
//! restart, then one collapsible `<details>` block per changed object, in dependency
//! order, with its changed fields (file:line) and a fenced `diff`.
//!
//! Secrets are masked exactly as in the text output: both render the same masked
//! changes and previews of the plan. The comment never exceeds `max_bytes` (GitHub
//! refuses comments over 65,536 characters): when the whole does not fit, each object
//! gets a fair share of the room (small ones whole, large ones cut at a line) and says
//! how much of it was left out; if even the headers do not fit, the objects that do
//! not are counted at the end. Pure.

use super::{MARKER, Preview, RUN_ONCE_NOT_SHOWN};
use crate::diff::FieldChange;
use crate::plan::Action;
use crate::plan::render::{change_line, header};

/// The default size cap: a GitHub comment body holds 65,536 characters.
pub const DEFAULT_MAX_BYTES: usize = 65_536;

/// The smallest cap accepted: room for the marker, title and summary table.
pub const MIN_MAX_BYTES: usize = 2_048;

/// Room kept for the closing lines that say what was left out.
const RESERVE: usize = 400;

/// `&`, `<`, `>` and `"` escaped for HTML (inside `<summary>` and `<code>`).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '|' => out.push_str("&#124;"),
            _ => out.push(c),
        }
    }
    out
}

/// A code fence longer than any run of backticks in `text`.
fn fence_for(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

/// The fixed parts of one object's block and its lines that may be cut.
struct Block {
    open: String,
    fields: Vec<String>,
    diff: Vec<String>,
    fence: String,
}

const CLOSE: &str = "</details>\n\n";

impl Block {
    fn new(preview: &Preview, action: &Action) -> Self {
        let open = format!("<details><summary>{}</summary>\n\n", escape(&header(action)));
        let facts = preview.object_facts(action).into_iter().map(|l| format!("- {}\n", escape(&l)));
        let changes = action.changes.iter().map(|c| {
            // The change in code, where it is written after it.
            let what = change_line(&FieldChange { location: None, ..c.clone() });
            match c.location.as_ref().filter(|l| c.new.is_some() && l.line > 0) {
                Some(l) => format!("- <code>{}</code> — {}\n", escape(&what), escape(&l.to_string())),
                None => format!("- <code>{}</code>\n", escape(&what)),
            }
        });
        let fields = facts.chain(changes).collect();
        let diff_text = preview.object_diff(action);
        let fence = fence_for(&diff_text);
        let diff = diff_text.lines().map(|l| format!("{l}\n")).collect();
        Block { open, fields, diff, fence }
    }

    /// The size of the parts that are never cut (and of a note of what was).
    fn fixed(&self) -> usize {
        self.open.len() + CLOSE.len() + 2 * (self.fence.len() + 6) + 120
    }

    fn content(&self) -> usize {
        self.fields.iter().chain(&self.diff).map(String::len).sum()
    }

    /// The block with at most `room` bytes of its lines (cut at a line).
    fn render(&self, room: usize) -> String {
        let mut out = self.open.clone();
        let mut used = 0;
        let mut fields_taken = 0;
        for line in &self.fields {
            if used + line.len() > room {
                break;
            }
            used += line.len();
            fields_taken += 1;
            out.push_str(line);
        }
        let mut diff_taken = 0;
        if fields_taken == self.fields.len() {
            for line in &self.diff {
                if used + line.len() > room {
                    break;
                }
                used += line.len();
                diff_taken += 1;
            }
        }
        if diff_taken > 0 {
            out.push_str(&format!("\n{}diff\n", self.fence));
            for line in &self.diff[..diff_taken] {
                out.push_str(line);
            }
            out.push_str(&format!("{}\n", self.fence));
        }
        let left_lines = self.fields.len() - fields_taken + self.diff.len() - diff_taken;
        if left_lines > 0 {
            let left_bytes = self.content() - used;
            out.push_str(&format!(
                "\n_… {left_lines} more line(s) ({left_bytes} bytes) of this object left out to fit the \
                 size cap; run `mesosync diff` for all of it._\n"
            ));
        }
        out.push('\n');
        out.push_str(CLOSE);
        out
    }
}

/// The comment's opening: marker, title, summary table, restarts, notes.
fn opening(preview: &Preview, room: usize) -> String {
    let mut out = format!("{MARKER}\n### mesosync preview\n\n{}\n\n", escape(&preview.title()));
    out.push_str("| impact | objects |\n|:--|--:|\n");
    for (category, count) in preview.counts() {
        out.push_str(&format!("| {} | {count} |\n", category.text()));
    }
    out.push('\n');
    let restarts = preview.restarts();
    if restarts.is_empty() {
        out.push_str("**Apps that restart:** none\n\n");
    } else {
        // The list is bounded too: a quarter of the room at most.
        let mut list = String::new();
        let mut shown = 0;
        for id in &restarts {
            let item = format!("{}<code>{}</code>", if shown == 0 { "" } else { ", " }, escape(&id.id));
            if list.len() + item.len() > room / 4 {
                break;
            }
            list.push_str(&item);
            shown += 1;
        }
        if shown < restarts.len() {
            list.push_str(&format!(" and {} more", restarts.len() - shown));
        }
        out.push_str(&format!("**Apps that restart ({}):** {list}\n\n", restarts.len()));
    }
    if let Some(reason) = &preview.plan.prune_refused {
        out.push_str(&format!("**Prune refused:** {}\n\n", escape(&reason.to_string())));
    }
    out.push_str(&format!("_{RUN_ONCE_NOT_SHOWN}_\n\n"));
    out
}

/// Render `preview` as a Markdown comment of at most `max_bytes` bytes (at least
/// [`MIN_MAX_BYTES`] is used).
pub fn render(preview: &Preview, max_bytes: usize) -> String {
    let max_bytes = max_bytes.max(MIN_MAX_BYTES);
    let mut out = opening(preview, max_bytes);
    let closing = format!("<sub>{}</sub>\n", escape(&preview.plan.summary().to_string()));
    let blocks: Vec<Block> = preview.changed().map(|(a, _)| Block::new(preview, a)).collect();
    let mut budget = max_bytes.saturating_sub(out.len() + closing.len() + RESERVE);
    // The objects whose fixed parts fit, in order; the rest are only counted.
    let mut shown = 0;
    for block in &blocks {
        if block.fixed() > budget {
            break;
        }
        budget -= block.fixed();
        shown += 1;
    }
    // Share the rest: smallest first, each at most an equal part of what is left.
    let mut order: Vec<usize> = (0..shown).collect();
    order.sort_by_key(|&i| blocks[i].content());
    let mut room = vec![0; shown];
    for (k, &i) in order.iter().enumerate() {
        let share = budget / (shown - k);
        room[i] = blocks[i].content().min(share);
        budget -= room[i];
    }
    for (block, room) in blocks.iter().zip(&room) {
        out.push_str(&block.render(*room));
    }
    if shown < blocks.len() {
        out.push_str(&format!(
            "_… {} more changed object(s) not shown to fit the size cap; run `mesosync diff` for all of \
             them._\n\n",
            blocks.len() - shown
        ));
    }
    out.push_str(&closing);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_outgrow_backticks_and_html_is_escaped() {
        assert_eq!(fence_for("no ticks"), "```");
        assert_eq!(fence_for("a ```` b"), "`````");
        assert_eq!(escape("<b>&|\""), "&lt;b&gt;&amp;&#124;&quot;");
    }
}
