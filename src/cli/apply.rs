//! `mesosync apply DIR`: make live equal to the manifests with the minimal writes,
//! in dependency order, waiting on deployments. `--dry-run` is `diff`. `--plan FILE`
//! applies a plan saved by `diff --out`, refused if live changed since or if DIR no
//! longer plans the same writes (plan files hold no secrets: the values come from DIR).

use std::path::PathBuf;

use anyhow::Context;

use super::args::{self, ApplyArgs, PlanArgs, TargetArgs};
use super::diff::{ColorChoice, OutputFormat, print_plan};
use crate::apply::{ApplyReport, LineProgress};
use crate::plan::Plan;
use crate::reconcile::{PipelineError, SavedPlanError};

/// Arguments of `mesosync apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyCommand {
    /// The manifest directory.
    #[arg(default_value = "manifests", env = "MESOSYNC_MANIFESTS")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub plan: PlanArgs,
    #[command(flatten)]
    pub apply: ApplyArgs,
    /// Show the plan and write nothing (the same as `diff`, same exit codes).
    #[arg(long)]
    pub dry_run: bool,
    /// Apply this saved plan (`diff --out FILE`): refused unless DIR still plans exactly
    /// its writes against unchanged live state (the secret values, masked in the file,
    /// are taken from DIR).
    #[arg(long = "plan", value_name = "FILE")]
    pub saved_plan: Option<PathBuf>,
    /// Colour of the plan shown before applying.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

impl ApplyArgs {
    /// The defaults, for commands that plan but do not apply.
    pub fn default_flags() -> Self {
        ApplyArgs { concurrency: 8, force: false, deployment_timeout: std::time::Duration::from_secs(600) }
    }
}

fn finish(report: &ApplyReport) -> u8 {
    outln!("{report}");
    if report.is_success() { super::EXIT_OK } else { super::EXIT_ERROR }
}

/// Run `mesosync apply`.
pub async fn run(args: ApplyCommand) -> anyhow::Result<u8> {
    let pipeline = args::pipeline(args.dir.clone(), &args.target, &args.plan, &args.apply)?;
    let progress = LineProgress::new(std::io::stderr());
    if let Some(path) = &args.saved_plan {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let saved: Plan =
            serde_json::from_str(&text).with_context(|| format!("{} is not a saved plan", path.display()))?;
        return match pipeline.apply_saved(&saved, &progress).await {
            Ok(Some(report)) => Ok(finish(&report)),
            Ok(None) => Ok(super::EXIT_OK),
            Err(SavedPlanError::Pipeline(PipelineError::Load(errors))) => {
                super::print_load_errors(&pipeline.dir, &errors);
                Ok(super::EXIT_ERROR)
            }
            Err(e @ SavedPlanError::ChronosUnreachable { .. }) => {
                errln!("error: {e}");
                Ok(super::EXIT_ERROR)
            }
            Err(e @ (SavedPlanError::LiveMoved(_) | SavedPlanError::WritesDiffer(_))) => {
                errln!("refusing the saved plan {}: {e}", path.display());
                errln!("run `mesosync diff --out` again to make a fresh plan");
                Ok(super::EXIT_ERROR)
            }
            Err(SavedPlanError::Pipeline(e)) => Err(e.into()),
        };
    }
    let Some(planned) = args::plan_or_report(&pipeline).await? else {
        return Ok(super::EXIT_ERROR);
    };
    args::check_targets(&planned.desired, &args.target)?;
    print_plan(&planned, OutputFormat::Text, args.color.enabled(), false)?;
    let chronos_down = super::diff::report_unreachable(&planned);
    if args.dry_run {
        return Ok(if chronos_down {
            super::EXIT_ERROR
        } else if planned.plan.has_changes() {
            super::EXIT_CHANGES
        } else {
            super::EXIT_OK
        });
    }
    // A refused prune leaves live state unlike the manifests: the rest is applied, and
    // the command fails so that no pipeline takes it for a success.
    let prune_refused = planned.plan.prune_refused.as_ref();
    let ambiguous = planned
        .plan
        .actions
        .iter()
        .filter(|a| {
            matches!(a.decision, crate::plan::Decision::Hold(crate::plan::HoldReason::AmbiguousOwner))
        })
        .count();
    if ambiguous > 0 {
        errln!(
            "error: {ambiguous} live object(s) carry more than one ownership mark; left alone (see above)"
        );
    }
    let failed_holds = prune_refused.is_some() || ambiguous > 0;
    if !planned.plan.actions.iter().any(|a| a.is_write()) {
        report_refused_prune(prune_refused);
        return Ok(if chronos_down || failed_holds { super::EXIT_ERROR } else { super::EXIT_OK });
    }
    crate::reconcile::Pipeline::check_writable(&planned.plan)?;
    let report = pipeline.execute_planned(&planned.plan, &planned.health, None, &progress).await;
    let code = finish(&report);
    if chronos_down {
        super::diff::report_unreachable(&planned);
        return Ok(super::EXIT_ERROR);
    }
    report_refused_prune(prune_refused);
    Ok(if failed_holds { super::EXIT_ERROR } else { code })
}

fn report_refused_prune(refusal: Option<&crate::plan::PruneRefusal>) {
    if let Some(why) = refusal {
        errln!("error: prune refused, nothing was deleted: {why}");
    }
}
