//! `mesosync diff DIR`: what `apply` would change, and nothing else. Exit 0 when
//! nothing would change, 2 when something would, 1 on any error — like
//! `terraform plan -detailed-exitcode`.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;

use super::args::{self, ApplyArgs, PlanArgs, TargetArgs};
use crate::plan::Plan;
use crate::plan::render::{RenderOptions, render_json, render_text};

/// Output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// A readable, optionally coloured diff per object and a summary line.
    #[default]
    Text,
    /// The plan as JSON (secrets masked), for machines.
    Json,
}

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
}

/// Print the plan and return 0 (no changes) or 2 (changes).
pub fn print_plan(
    plan: &Plan,
    output: OutputFormat,
    color: bool,
    show_unchanged: bool,
) -> anyhow::Result<()> {
    match output {
        OutputFormat::Json => outln!("{}", serde_json::to_string_pretty(&render_json(plan))?),
        OutputFormat::Text => {
            // The rendering ends with the prune refusal (if any) and the summary line.
            outln!(
                "{}",
                render_text(plan, &RenderOptions { color, show_unchanged, unified: true }).trim_end()
            );
        }
    }
    Ok(())
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
    let pipeline = args::pipeline(args.dir.clone(), &args.target, &args.plan, &ApplyArgs::default_flags())?;
    let Some(planned) = args::plan_or_report(&pipeline).await? else {
        return Ok(super::EXIT_ERROR);
    };
    args::check_targets(&planned.desired, &args.target)?;
    print_plan(&planned.plan, args.output, args.color.enabled(), args.show_unchanged)?;
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
