//! `mesosync diff DIR`: what `apply` would change, and nothing else. Exit 0 when
//! nothing would change, 2 when something would, 1 on any error — like
//! `terraform plan -detailed-exitcode`.
//!
//! With `--base REV` it previews a change between two git revisions (head: `--head
//! REV`, else the work tree), read from git objects without a checkout: offline
//! (desired(base) → desired(head)) without `--marathon`/`--chronos`, against the live
//! cluster with them (see [`crate::preview`]). The same exit codes, plus 1 when
//! `--fail-on-restarts` / `--fail-on-delete` is exceeded (after printing the preview).

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;

use super::args::{self, ApplyArgs, PlanArgs, TargetArgs};
use crate::plan::render::{RenderOptions, render_json, render_text};
use crate::reconcile::Planned;

/// Output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// A readable, optionally coloured diff per object and a summary line.
    #[default]
    Text,
    /// The plan as JSON (secrets masked), for machines.
    Json,
    /// A Markdown pull-request comment (with `--base` only).
    Markdown,
}

const MARKDOWN_NEEDS_BASE: &str = "--output markdown previews a change: it needs --base REV";

/// When to colour text output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// When stdout is a terminal and `NO_COLOR` is not set.
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

impl ColorChoice {
    /// Decide, honouring `NO_COLOR` (https://no-color.org) for `auto`.
    pub fn enabled(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
            }
        }
    }
}

/// Arguments of `mesosync diff`.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The manifest directory.
    #[arg(default_value = "manifests", env = "MESOSYNC_MANIFESTS")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Save the plan (with the live versions it was computed against) for `apply --plan FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Colour.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Also list objects with nothing to do.
    #[arg(long)]
    pub show_unchanged: bool,
    /// Preview a change: the git revision it starts from (e.g. the target branch).
    /// Read from git objects; the work tree and index are not touched.
    #[arg(long, value_name = "REV", conflicts_with = "out")]
    pub base: Option<String>,
    /// The revision of the change (default: the work tree).
    #[arg(long, value_name = "REV", requires = "base")]
    pub head: Option<String>,
    /// Markdown output: the size cap of the comment (each object is cut to fit and says
    /// what was left out).
    #[arg(long, value_name = "BYTES", default_value_t = crate::preview::markdown::DEFAULT_MAX_BYTES as u64,
          value_parser = clap::value_parser!(u64).range(crate::preview::markdown::MIN_MAX_BYTES as u64..))]
    pub max_bytes: u64,
    /// With --base: exit 1 when the change restarts more than N Marathon apps.
    #[arg(long, value_name = "N", requires = "base")]
    pub fail_on_restarts: Option<usize>,
    /// With --base: exit 1 when the change deletes anything (deletes need --prune).
    #[arg(long, requires = "base")]
    pub fail_on_delete: bool,
}

/// Print the plan, then the live health of its objects (and what writes would wait
/// for).
pub fn print_plan(
    planned: &Planned,
    output: OutputFormat,
    color: bool,
    show_unchanged: bool,
) -> anyhow::Result<()> {
    let plan = &planned.plan;
    match output {
        OutputFormat::Markdown => anyhow::bail!(MARKDOWN_NEEDS_BASE),
        OutputFormat::Json => {
            let mut json = render_json(plan);
            json["health"] = health_json(planned);
            json["waits"] = waits_json(planned);
            outln!("{}", serde_json::to_string_pretty(&json)?);
        }
        OutputFormat::Text => {
            // The rendering ends with the prune refusal (if any) and the summary line.
            outln!(
                "{}",
                render_text(plan, &RenderOptions { color, show_unchanged, unified: true }).trim_end()
            );
            let health = health_text(planned, show_unchanged);
            if !health.is_empty() {
                outln!("{}", health.trim_end());
            }
        }
    }
    Ok(())
}

/// The health section of the text output: a summary line, every object that is not
/// Healthy (all with `--show-unchanged`) with its reason, and each write that would
/// wait for a dependency that is not ready.
fn health_text(planned: &Planned, show_all: bool) -> String {
    if planned.health.is_empty() {
        return String::new();
    }
    let mut out = format!("\nhealth: {}\n", crate::health::summary(&planned.health));
    for (object, status) in &planned.health {
        if show_all || status.health != crate::health::Health::Healthy {
            out.push_str(&format!("  {object}: {status}\n"));
        }
    }
    for (object, dep, status) in planned.waits() {
        out.push_str(&format!("  {object} {}\n", crate::apply::waits_text(dep, status)));
    }
    out
}

fn health_json(planned: &Planned) -> serde_json::Value {
    let objects: Vec<serde_json::Value> = planned
        .health
        .iter()
        .map(|(object, status)| {
            serde_json::json!({"object": object, "health": status.health, "reason": status.reason})
        })
        .collect();
    let counts: serde_json::Map<String, serde_json::Value> = crate::health::counts(planned.health.values())
        .into_iter()
        .map(|(h, n)| (h.to_string(), n.into()))
        .collect();
    serde_json::json!({"objects": objects, "counts": counts})
}

fn waits_json(planned: &Planned) -> serde_json::Value {
    let waits: Vec<serde_json::Value> = planned
        .waits()
        .into_iter()
        .map(|(object, dep, status)| {
            serde_json::json!({
                "object": object,
                "waitsFor": dep,
                "health": status.health,
                "reason": crate::apply::waits_text(dep, status),
            })
        })
        .collect();
    serde_json::Value::Array(waits)
}

/// Say on stderr that Chronos was unreachable (its jobs were not compared); true if so.
pub fn report_unreachable(planned: &crate::reconcile::Planned) -> bool {
    let Some(e) = &planned.chronos_unreachable else { return false };
    errln!(
        "error: Chronos is unreachable; its {} job(s) were not compared or written (the Marathon apps were): {e}",
        planned.jobs_not_reconciled().count()
    );
    true
}

/// Run `mesosync diff`.
pub async fn run(args: DiffArgs) -> anyhow::Result<u8> {
    if let Some(base) = args.base.clone() {
        return run_preview(args, base).await;
    }
    if args.output == OutputFormat::Markdown {
        anyhow::bail!(MARKDOWN_NEEDS_BASE);
    }
    let pipeline = args::pipeline(args.dir.clone(), &args.target, &args.plan, &ApplyArgs::default_flags())?;
    let Some(planned) = args::plan_or_report(&pipeline).await? else {
        return Ok(super::EXIT_ERROR);
    };
    args::check_targets(&planned.desired, &args.target)?;
    print_plan(&planned, args.output, args.color.enabled(), args.show_unchanged)?;
    if report_unreachable(&planned) {
        // A saved plan must be whole: one missing every job would be applied as such.
        return Ok(super::EXIT_ERROR);
    }
    if let Some(path) = &args.out {
        // Secrets masked: `apply --plan FILE DIR` takes them from the manifests again.
        let text = serde_json::to_string_pretty(&crate::plan::masked_for_saving(&planned.plan))?;
        std::fs::write(path, text).with_context(|| format!("writing the plan to {}", path.display()))?;
        errln!("plan saved to {}", path.display());
    }
    Ok(if planned.plan.has_changes() { super::EXIT_CHANGES } else { super::EXIT_OK })
}

/// Run `mesosync diff DIR --base REV [--head REV]`.
async fn run_preview(args: DiffArgs, base: String) -> anyhow::Result<u8> {
    use crate::preview::{self, Mode, Preview, Side};
    use crate::source::revision::{self, RevisionError};

    let options = args.plan.load_options();
    let (dir, head) = (args.dir.clone(), args.head.clone());
    let loaded =
        tokio::task::spawn_blocking(move || revision::load_pair(&dir, &base, head.as_deref(), &options))
            .await?;
    let pair = match loaded {
        Ok(pair) => pair,
        Err(e) => {
            if let RevisionError::Load(errors) = &e.error {
                for error in errors.iter() {
                    errln!("{error}");
                }
                errln!("{}: {} error(s) in the manifests; no preview", e.side, errors.len());
                return Ok(super::EXIT_ERROR);
            }
            anyhow::bail!("{e}");
        }
    };
    let live_mode = !args.target.marathon.is_empty() || !args.target.chronos.is_empty();
    let now = chrono::Utc::now();
    let mut opts = args.plan.plan_options(args.target.chronos_version);
    let (mode, plan, causes) = if live_mode {
        args::check_targets(&pair.head_state, &args.target)?;
        let clients = args.target.clients().context("configuring the API clients")?;
        if let (None, Some(chronos)) = (opts.chronos_version, &clients.chronos) {
            opts.chronos_version = Some(chronos.version().await.context("reading the Chronos version")?);
        }
        let live = clients.list_live(None).await.context("listing live state")?;
        let head_vs_live = crate::plan::compute(&pair.head_state, &live, &opts, now);
        let base_vs_live = crate::plan::compute(&pair.base_state, &live, &opts, now);
        let base_vs_head = preview::offline_plan(&pair.base_state, &pair.head_state, &opts, now);
        let causes = preview::causes(&head_vs_live, &base_vs_head, &base_vs_live);
        (Mode::Live, head_vs_live, causes)
    } else {
        (
            Mode::Offline,
            preview::offline_plan(&pair.base_state, &pair.head_state, &opts, now),
            Default::default(),
        )
    };
    let side = |r: &revision::Revision| Side { name: r.name.clone(), commit: Some(r.commit.clone()) };
    let preview = Preview {
        base: side(&pair.base),
        head: pair.head.as_ref().map_or_else(|| Side { name: "work tree".into(), commit: None }, side),
        mode,
        plan,
        causes,
    };
    match args.output {
        OutputFormat::Text => print!("{}", preview::render_text(&preview)),
        OutputFormat::Json => outln!("{}", serde_json::to_string_pretty(&preview::render_json(&preview))?),
        OutputFormat::Markdown => {
            let max_bytes = usize::try_from(args.max_bytes).unwrap_or(usize::MAX);
            print!("{}", crate::preview::markdown::render(&preview, max_bytes));
        }
    }
    let mut failed = false;
    if let Some(limit) = args.fail_on_restarts {
        let restarts = preview.restarts_by_change();
        if restarts.len() > limit {
            errln!(
                "error: the change restarts {} app(s), more than --fail-on-restarts {limit}",
                restarts.len()
            );
            failed = true;
        }
    }
    let deletes = preview.deletes_by_change();
    if args.fail_on_delete && !deletes.is_empty() {
        let ids: Vec<String> = deletes.iter().map(ToString::to_string).collect();
        errln!("error: the change deletes {} object(s) (--fail-on-delete): {}", ids.len(), ids.join(", "));
        failed = true;
    }
    Ok(if failed {
        super::EXIT_ERROR
    } else if preview.has_changes() {
        super::EXIT_CHANGES
    } else {
        super::EXIT_OK
    })
}
