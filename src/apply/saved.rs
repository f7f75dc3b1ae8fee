//! Saved plans (`diff --out plan.json`, then `apply plan.json`): before the first write,
//! live state is listed again and the plan is refused if any object it covers changed
//! since it was computed ([`crate::plan::check_still_valid`]) — the way Terraform
//! refuses a stale saved plan.

use crate::client::{ClientError, Clients};
use crate::plan::{Plan, check_still_valid, has_masked_secrets};

use super::{ApplyOptions, ApplyReport, ProgressSink, apply};

/// Why a saved plan was not applied.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SavedPlanError {
    /// Live state could not be listed.
    #[error("cannot list live state to check the saved plan: {0}")]
    Listing(#[from] ClientError),
    /// Live state moved on since the plan was made (the message names every object).
    #[error("{0}")]
    Stale(String),
}

/// Apply a saved plan: list live state (one GET per system), refuse the plan if it is
/// stale (or holds masked secrets, i.e. came from a file), else apply it.
pub async fn apply_saved(
    plan: &Plan,
    clients: &Clients,
    opts: &ApplyOptions,
    progress: &dyn ProgressSink,
) -> Result<ApplyReport, SavedPlanError> {
    if has_masked_secrets(plan) {
        return Err(SavedPlanError::Stale(
            "the plan's secret values are masked (as in every plan file); apply it with \
             `mesosync apply --plan FILE DIR`, which takes them from the manifests"
                .into(),
        ));
    }
    let live = clients.list_live(None).await?;
    check_still_valid(plan, &live).map_err(SavedPlanError::Stale)?;
    Ok(apply(plan, clients, opts, progress).await)
}
