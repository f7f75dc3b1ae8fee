//! Log output for `mesosync run`: `--log-format human` (the default) writes one short
//! line per event, as a person would; `--log-format json` writes one JSON object per
//! line with every field, for machines. `RUST_LOG` overrides the level (default `info`).
//!
//! A human line is `TIME [#N REASONS @REVISION]  WHAT`:
//!
//! ```text
//! 08:10:14 #5 file change @b89ac76+dirty  reconciling
//! 08:10:15 #5 file change @b89ac76+dirty  app /openstack/horizon/horizon  update (restart)  applied 1.0s
//! 08:10:15 #5 file change @b89ac76+dirty  success in 1.1s: 1 written, 31 unchanged
//! ```
//!
//! The reconcile's number, reasons and revision are said once, at the start of the
//! line, not repeated per span; the start of each write is left to `json` (and
//! `RUST_LOG=debug`), its end is the line. Colour only when standard error is a
//! terminal and `NO_COLOR` is unset (<https://no-color.org>). Every line goes through
//! [`RedactingStderr`](crate::diff::mask::RedactingStderr), as JSON does.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::{SubscriberInitExt, TryInitError};

use super::config::LogFormat;

/// Install the global log subscriber. Fails if one is already installed.
pub fn init_logging(format: LogFormat) -> Result<(), TryInitError> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Human => {
            let colour = use_colour(
                std::io::IsTerminal::is_terminal(&std::io::stderr()),
                std::env::var_os("NO_COLOR").as_deref(),
            );
            registry
                .with(ReconcileSpans)
                .with(
                    tracing_subscriber::fmt::layer()
                        .event_format(Human { colour })
                        .with_writer(|| crate::diff::mask::RedactingStderr),
                )
                .try_init()
        }
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_ansi(false)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(|| crate::diff::mask::RedactingStderr),
            )
            .try_init(),
    }
}

/// Colour on a terminal, unless `NO_COLOR` is set to anything but the empty string.
pub fn use_colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// What a `reconcile` span says of itself, kept on the span for the human lines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReconcileTag {
    /// Its number.
    pub number: String,
    /// Why it runs (`file-change, git-pull`).
    pub reasons: String,
    /// The revision's short commit, or `none`.
    pub revision: String,
    /// The checkout had local changes.
    pub dirty: bool,
}

impl ReconcileTag {
    /// `#5 file change @b89ac76+dirty`.
    pub fn render(&self) -> String {
        let reasons: Vec<String> = self
            .reasons
            .split(", ")
            .filter(|r| !r.is_empty())
            .map(|r| if r.starts_with("retry ") { r.to_string() } else { r.replace('-', " ") })
            .collect();
        let mut out = format!("#{}", self.number);
        if !reasons.is_empty() {
            out.push(' ');
            out.push_str(&reasons.join(", "));
        }
        if self.revision != "none" && !self.revision.is_empty() {
            out.push_str(" @");
            out.push_str(self.revision.get(..7).unwrap_or(&self.revision));
            if self.dirty {
                out.push_str("+dirty");
            }
        }
        out
    }
}

impl Visit for ReconcileTag {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        self.record_str(field, text.trim_matches('"'));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "number" => self.number = value.to_string(),
            "reasons" => self.reasons = value.to_string(),
            "revision" => self.revision = value.to_string(),
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record_str(field, &value.to_string());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "dirty" {
            self.dirty = value;
        }
    }
}

/// Keeps a [`ReconcileTag`] on every `reconcile` span.
struct ReconcileSpans;

impl<S: Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for ReconcileSpans {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        if attrs.metadata().name() != "reconcile" {
            return;
        }
        let mut tag = ReconcileTag::default();
        attrs.record(&mut tag);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(tag);
        }
    }
}

/// An event's message and fields, as text (`None` values dropped, `Some(x)` read `x`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields {
    /// The message.
    pub message: String,
    /// The other fields, in order.
    pub fields: Vec<(String, String)>,
}

impl Fields {
    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = text;
            return;
        }
        let text = match text.strip_prefix("Some(").and_then(|t| t.strip_suffix(')')) {
            Some(inner) => inner.to_string(),
            None if text == "None" => return,
            None => text,
        };
        self.fields.push((field.name().to_string(), text));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.fields.push((field.name().to_string(), value.to_string()));
        }
    }
}

const DIM: &str = "\x1b[2m";
const BOLD: &str = "\x1b[1m";
const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const CYAN: &str = "\x1b[36m";
const RESET: &str = "\x1b[0m";

/// The human line formatter (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct Human {
    /// Write ANSI colours.
    pub colour: bool,
}

impl<S, N> FormatEvent<S, N> for Human
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let tag = ctx.event_scope().and_then(|scope| {
            scope.from_root().find_map(|span| span.extensions().get::<ReconcileTag>().cloned())
        });
        let time = chrono::Local::now().format("%H:%M:%S").to_string();
        let meta = event.metadata();
        match human_line(&time, *meta.level(), meta.target(), tag.as_ref(), &fields, self.colour) {
            Some(line) => writeln!(writer, "{line}"),
            None => Ok(()),
        }
    }
}

fn paint(text: &str, colour: &str, on: bool) -> String {
    if on { format!("{colour}{text}{RESET}") } else { text.to_string() }
}

/// `1.0s`, `250ms`.
fn took(ms: &str) -> String {
    match ms.parse::<u64>() {
        Ok(ms) if ms >= 1000 => format!("{:.1}s", ms as f64 / 1000.0),
        Ok(ms) => format!("{ms}ms"),
        Err(_) => ms.to_string(),
    }
}

/// A Debug-formatted duration (`1.809s`, `910.59871ms`) shortened (`1.8s`, `911ms`).
fn short_duration(text: &str) -> String {
    let parse = |suffix: &str, scale: f64| text.strip_suffix(suffix)?.parse::<f64>().ok().map(|v| v * scale);
    let ms = parse("ms", 1.0)
        .or_else(|| parse("µs", 0.001))
        .or_else(|| parse("ns", 0.000_001))
        .or_else(|| parse("s", 1000.0));
    match ms {
        Some(ms) => took(&format!("{}", ms.round() as u64)),
        None => text.to_string(),
    }
}

/// `Update` → `update`, `ScaleOnly` → `scale only`.
fn words(debug_name: &str) -> String {
    let mut out = String::new();
    for (i, c) in debug_name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// One human line, or `None` for an event the human format leaves out (the start of
/// each write). Pure, for tests.
pub fn human_line(
    time: &str,
    level: Level,
    target: &str,
    tag: Option<&ReconcileTag>,
    f: &Fields,
    colour: bool,
) -> Option<String> {
    let apply_report = target.starts_with("mesosync::apply::report");
    let body = match f.message.as_str() {
        "starting" if apply_report => return None,
        "done" | "not applied" if apply_report => {
            let action = f.get("action").map(words).unwrap_or_default();
            let impact = f.get("impact").map(words).filter(|i| i != "none").map(|i| format!(" ({i})"));
            let outcome = f.get("outcome").unwrap_or_default();
            let painted = if outcome == "applied" {
                paint(outcome, GREEN, colour)
            } else {
                paint(outcome, RED, colour)
            };
            let duration = f.get("duration_ms").map(took).unwrap_or_default();
            format!(
                "{}  {action}{}  {painted} {duration}",
                f.get("object").unwrap_or_default(),
                impact.unwrap_or_default()
            )
        }
        "reconcile started" => {
            let dry = if f.get("dry_run") == Some("true") { " (dry run)" } else { "" };
            format!("reconciling{dry}")
        }
        "reconcile finished" => {
            let outcome = f.get("outcome").unwrap_or_default();
            let counts: Vec<String> = [
                ("writes", "written"),
                ("drifted", "drifted"),
                ("failed", "failed"),
                ("unchanged", "unchanged"),
            ]
            .iter()
            .filter_map(|(name, word)| match f.get(name) {
                Some(n) if n != "0" => Some(format!("{n} {word}")),
                _ => None,
            })
            .collect();
            let counts = if counts.is_empty() { "nothing to do".to_string() } else { counts.join(", ") };
            let painted = match outcome {
                "success" => paint(outcome, GREEN, colour),
                "partial" | "cancelled" => paint(outcome, YELLOW, colour),
                _ => paint(outcome, RED, colour),
            };
            format!("{painted} in {}: {counts}", took(f.get("took_ms").unwrap_or("0")))
        }
        "reconcile failed" => {
            let retry =
                f.get("retry_in").map(|r| format!("; retry in {}", short_duration(r))).unwrap_or_default();
            format!(
                "{} in {}: {}{retry}",
                paint("failed", RED, colour),
                took(f.get("took_ms").unwrap_or("0")),
                f.get("error").unwrap_or_default()
            )
        }
        "object failed" => {
            let next = match (f.get("retry_in"), f.get("awaits_change")) {
                (Some(r), _) => format!("; retry in {}", short_duration(r)),
                (None, Some("true")) => "; retried after the next change".to_string(),
                _ => String::new(),
            };
            format!(
                "{}  {}: {}{next}",
                f.get("object").unwrap_or_default(),
                paint("failed", RED, colour),
                f.get("error").unwrap_or_default()
            )
        }
        message => {
            let mut line = message.to_string();
            for (name, value) in &f.fields {
                let value = if name.ends_with("retry_in") || name == "grace" {
                    short_duration(value)
                } else {
                    value.clone()
                };
                let _ = write!(line, "  {}", paint(&format!("{name}={value}"), DIM, colour));
            }
            line
        }
    };
    let mut out = paint(time, DIM, colour);
    out.push(' ');
    if let Some(tag) = tag {
        out.push_str(&paint(&tag.render(), CYAN, colour));
        out.push_str("  ");
    }
    match level {
        Level::ERROR => out.push_str(&paint("ERROR ", &format!("{BOLD}{RED}"), colour)),
        Level::WARN => out.push_str(&paint("WARN ", YELLOW, colour)),
        _ => {}
    }
    out.push_str(&body);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(message: &str, pairs: &[(&str, &str)]) -> Fields {
        Fields {
            message: message.into(),
            fields: pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
        }
    }

    fn tag() -> ReconcileTag {
        ReconcileTag {
            number: "5".into(),
            reasons: "file-change, retry app /a-b".into(),
            revision: "b89ac76e1f2a".into(),
            dirty: true,
        }
    }

    const REPORT: &str = "mesosync::apply::report";

    #[test]
    fn a_write_is_one_short_line_with_the_reconcile_said_once() {
        let done = fields(
            "done",
            &[
                ("object", "app /openstack/horizon/horizon"),
                ("action", "Update"),
                ("impact", "Restart"),
                ("duration_ms", "1003"),
                ("deployment", "5fd3"),
                ("outcome", "applied"),
            ],
        );
        let line = human_line("08:10:15", Level::INFO, REPORT, Some(&tag()), &done, false).unwrap();
        assert_eq!(
            line,
            "08:10:15 #5 file change, retry app /a-b @b89ac76+dirty  app /openstack/horizon/horizon  update (restart)  applied 1.0s"
        );
        let create = fields(
            "done",
            &[
                ("object", "job x"),
                ("action", "Create"),
                ("impact", "None"),
                ("duration_ms", "12"),
                ("outcome", "applied"),
            ],
        );
        let line = human_line("08:10:15", Level::INFO, REPORT, None, &create, false).unwrap();
        assert_eq!(line, "08:10:15 job x  create  applied 12ms");
        assert!(
            human_line("t", Level::INFO, REPORT, Some(&tag()), &fields("starting", &[]), false).is_none()
        );
    }

    #[test]
    fn the_reconcile_summary_and_failures_read_as_sentences() {
        let t = ReconcileTag {
            number: "1".into(),
            reasons: "startup".into(),
            revision: "none".into(),
            dirty: false,
        };
        let finished = fields(
            "reconcile finished",
            &[
                ("outcome", "success"),
                ("took_ms", "1022"),
                ("writes", "20"),
                ("drifted", "0"),
                ("failed", "0"),
                ("unchanged", "12"),
            ],
        );
        assert_eq!(
            human_line("t", Level::INFO, "x", Some(&t), &finished, false).unwrap(),
            "t #1 startup  success in 1.0s: 20 written, 12 unchanged"
        );
        let failed = fields(
            "object failed",
            &[
                ("object", "app /a"),
                ("error", "503"),
                ("retry_in", "910.59871ms"),
                ("awaits_change", "false"),
            ],
        );
        assert_eq!(
            human_line("t", Level::WARN, "x", None, &failed, false).unwrap(),
            "t WARN app /a  failed: 503; retry in 911ms"
        );
        let other = fields("pulled new commits", &[("branch", "main"), ("to", "abc")]);
        assert_eq!(
            human_line("t", Level::INFO, "x", None, &other, false).unwrap(),
            "t pulled new commits  branch=main  to=abc"
        );
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some(OsStr::new(""))));
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(!use_colour(false, None));
        let finished = fields("reconcile finished", &[("outcome", "error"), ("took_ms", "5")]);
        let plain = human_line("t", Level::ERROR, "x", Some(&tag()), &finished, false).unwrap();
        let coloured = human_line("t", Level::ERROR, "x", Some(&tag()), &finished, true).unwrap();
        assert!(!plain.contains('\x1b') && coloured.contains("\x1b[31merror\x1b[0m"), "{coloured:?}");
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(short_duration("1.809s"), "1.8s");
        assert_eq!(short_duration("910.59871ms"), "911ms");
        assert_eq!(short_duration("60s"), "60.0s");
        assert_eq!(words("ScaleOnly"), "scale only");
    }
}
