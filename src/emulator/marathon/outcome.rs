//! What the test controls script for an app's tasks (`/_sandbox/marathon/outcomes/…`).

use serde::{Deserialize, Serialize};

/// How an app's new tasks behave.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskOutcome {
    /// Tasks run and pass their health checks (the default).
    #[default]
    Healthy,
    /// Tasks fail as they start (`TASK_FAILED`, `lastTaskFailure`); Marathon launches
    /// replacements, which fail again: the deployment never completes.
    Fail,
    /// Tasks run but never pass their health checks: past the grace period they count
    /// in `tasksUnhealthy`; the deployment waits for health and never completes (apps
    /// without health checks are unaffected).
    Unhealthy,
}

/// The script for one app (`PUT /_sandbox/marathon/outcomes/{app id}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct AppOutcome {
    /// How the app's new tasks behave.
    pub tasks: TaskOutcome,
    /// How long this app's deployments take (staged → running half-way → healthy at
    /// the end), instead of the server-wide deployment duration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_ms: Option<u64>,
}
