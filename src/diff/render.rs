//! Rendering one object's change as a unified diff (via `similar`) of its masked,
//! normalized live and desired documents. Colour is the caller's decision (NO_COLOR,
//! tty): this module only obeys the flag.

use serde_json::Value;
use similar::{ChangeTag, TextDiff};

/// ANSI colours used when colour is asked for.
pub(crate) mod ansi {
    /// Red (removed).
    pub const RED: &str = "\x1b[31m";
    /// Green (added).
    pub const GREEN: &str = "\x1b[32m";
    /// Yellow (changed / headers).
    pub const YELLOW: &str = "\x1b[33m";
    /// Cyan (hunk headers).
    pub const CYAN: &str = "\x1b[36m";
    /// Bold.
    pub const BOLD: &str = "\x1b[1m";
    /// Reset.
    pub const RESET: &str = "\x1b[0m";
}

/// Wrap `text` in `colour` when `color` is on.
pub(crate) fn paint(text: &str, colour: &str, color: bool) -> String {
    if color { format!("{colour}{text}{}", ansi::RESET) } else { text.to_string() }
}

/// Pretty JSON of a document (`""` for an absent one), keys as normalized.
pub fn pretty(doc: Option<&Value>) -> String {
    match doc {
        Some(v) => serde_json::to_string_pretty(v).unwrap_or_default() + "\n",
        None => String::new(),
    }
}

/// A unified diff from `live` to `desired` (both already masked), with three lines of
/// context, `--- live` / `+++ desired` headers and `-` / `+` lines coloured on request.
pub fn unified(live: Option<&Value>, desired: Option<&Value>, color: bool) -> String {
    unified_between(("live", live), ("desired", desired), color)
}

/// [`unified`] with other names for the two sides (`--- base` / `+++ head` in a
/// preview of two revisions).
pub fn unified_between(
    (old_name, live): (&str, Option<&Value>),
    (new_name, desired): (&str, Option<&Value>),
    color: bool,
) -> String {
    let old = pretty(live);
    let new = pretty(desired);
    let diff = TextDiff::from_lines(&old, &new);
    let mut out = String::new();
    let mut udiff = diff.unified_diff();
    udiff.context_radius(3);
    for (i, hunk) in udiff.iter_hunks().enumerate() {
        if i == 0 {
            out.push_str(&paint(&format!("--- {old_name}"), ansi::RED, color));
            out.push('\n');
            out.push_str(&paint(&format!("+++ {new_name}"), ansi::GREEN, color));
            out.push('\n');
        }
        out.push_str(&paint(&hunk.header().to_string(), ansi::CYAN, color));
        out.push('\n');
        for change in hunk.iter_changes() {
            let line = change.to_string_lossy();
            let line = line.trim_end_matches('\n');
            let (sign, colour) = match change.tag() {
                ChangeTag::Delete => ('-', Some(ansi::RED)),
                ChangeTag::Insert => ('+', Some(ansi::GREEN)),
                ChangeTag::Equal => (' ', None),
            };
            let text = format!("{sign}{line}");
            match colour {
                Some(c) => out.push_str(&paint(&text, c, color)),
                None => out.push_str(&text),
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn unified_diff_shows_changed_lines_and_colours_only_on_request() {
        let live = json!({"cpus": 1, "id": "/a"});
        let desired = json!({"cpus": 2, "id": "/a"});
        let plain = unified(Some(&live), Some(&desired), false);
        assert!(plain.contains("-  \"cpus\": 1,"), "{plain}");
        assert!(plain.contains("+  \"cpus\": 2,"), "{plain}");
        assert!(!plain.contains('\x1b'));
        assert!(unified(Some(&live), Some(&desired), true).contains(ansi::GREEN));
        assert!(unified(Some(&live), Some(&live), false).is_empty());
    }
}
