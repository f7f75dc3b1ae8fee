//! A Marathon app's health, from what `GET /v2/apps?embed=apps.lastTaskFailure`
//! reports for it (1.10 `AppsResource.index` always adds the task counts and
//! `deployments`; `lastTaskFailure` only with that embed; `GET /v2/apps/{id}` embeds it
//! by default).
//!
//! The rules, in order:
//! 1. a deployment in flight → Progressing — unless the tasks of the current version
//!    keep failing past the health grace (see 5) or fail their health checks (see 4),
//!    which is Degraded: such an app's deployment never ends (Argo CD's "progress
//!    deadline exceeded");
//! 2. `instances` 0 → Suspended;
//! 3. `tasksRunning` ≥ `instances` (and `tasksHealthy` ≥ `instances` when the app has
//!    health checks) → Healthy;
//! 4. `tasksUnhealthy` > 0 → Degraded;
//! 5. a `lastTaskFailure` of the current version (its `timestamp` not before the app's
//!    `version`) once the health grace has passed since that version (the largest
//!    `gracePeriodSeconds` of its health checks; none without health checks) → Degraded;
//! 6. else Progressing (tasks staged or starting).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{Health, HealthStatus, parse_time, when};

/// Marathon's default `gracePeriodSeconds` of a health check.
const DEFAULT_GRACE_SECONDS: u64 = 300;

#[derive(Deserialize)]
struct Id {}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Check {
    grace_period_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Failure {
    timestamp: Option<String>,
    message: Option<String>,
    state: Option<String>,
}

/// The fields of a listed app that its health is read from.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    instances: Option<u64>,
    tasks_staged: Option<u64>,
    tasks_running: Option<u64>,
    tasks_healthy: Option<u64>,
    tasks_unhealthy: Option<u64>,
    #[serde(default)]
    deployments: Vec<Id>,
    #[serde(default)]
    health_checks: Vec<Check>,
    version: Option<String>,
    last_task_failure: Option<Failure>,
}

/// The health of one app, from its JSON as listed.
pub fn app_health(raw: &[u8], now: DateTime<Utc>) -> HealthStatus {
    app_verdict(raw, now).0
}

/// [`app_health`], and whether the verdict reads the clock beyond the day: only an app
/// with a `lastTaskFailure` does (whether its health grace has passed), so any other
/// app listed with the same bytes has the same health again.
pub(super) fn app_verdict(raw: &[u8], now: DateTime<Utc>) -> (HealthStatus, bool) {
    match serde_json::from_slice::<Wire>(raw) {
        Ok(app) => (rules(&app, now), app.last_task_failure.is_some()),
        Err(e) => {
            (HealthStatus::new(Health::Unknown, format!("cannot read the app's task counts: {e}")), false)
        }
    }
}

fn plural(n: u64, word: &str) -> String {
    if n == 1 { format!("{n} {word}") } else { format!("{n} {word}s") }
}

fn rules(app: &Wire, now: DateTime<Utc>) -> HealthStatus {
    let instances = app.instances.unwrap_or(1);
    let running = app.tasks_running.unwrap_or(0);
    let healthy = app.tasks_healthy.unwrap_or(0);
    let unhealthy = app.tasks_unhealthy.unwrap_or(0);
    let staged = app.tasks_staged.unwrap_or(0);
    let checked = !app.health_checks.is_empty();
    // "1/2 tasks healthy" with health checks, "1/2 tasks running" without.
    let (up, word) = if checked { (healthy, "healthy") } else { (running, "running") };
    let mut tasks = format!("{up}/{instances} tasks {word}");
    if staged > 0 {
        tasks.push_str(&format!(", {staged} staged"));
    }
    let failing = failing(app, now);
    let with_failure = |text: String| match &failing {
        Some(f) => format!("{text}, {f}"),
        None => text,
    };
    let sick = (unhealthy > 0).then(|| plural(unhealthy, "task") + " unhealthy");
    if !app.deployments.is_empty() {
        if (failing.is_some() || sick.is_some()) && up < instances {
            let mut text = format!("deployment in flight, {tasks}");
            if let Some(sick) = &sick {
                text.push_str(&format!(", {sick}"));
            }
            return HealthStatus::new(Health::Degraded, with_failure(text));
        }
        return HealthStatus::new(Health::Progressing, format!("deployment in flight, {tasks}"));
    }
    if instances == 0 {
        return HealthStatus::new(Health::Suspended, "scaled to 0 instances");
    }
    if running >= instances && (!checked || healthy >= instances) {
        return HealthStatus::new(Health::Healthy, tasks);
    }
    if let Some(sick) = sick {
        return HealthStatus::new(Health::Degraded, with_failure(format!("{sick}, {tasks}")));
    }
    if failing.is_some() {
        return HealthStatus::new(Health::Degraded, with_failure(tasks));
    }
    HealthStatus::new(Health::Progressing, tasks)
}

/// `last task failure 08:12:03: <message>` when the last failure is of the current
/// version and the health grace has passed since that version.
fn failing(app: &Wire, now: DateTime<Utc>) -> Option<String> {
    let failure = app.last_task_failure.as_ref()?;
    let at = parse_time(failure.timestamp.as_deref())?;
    let version = parse_time(app.version.as_deref());
    if version.is_some_and(|v| at < v) {
        return None; // a failure of an earlier version
    }
    let grace = if app.health_checks.is_empty() {
        0
    } else {
        app.health_checks
            .iter()
            .map(|c| c.grace_period_seconds.unwrap_or(DEFAULT_GRACE_SECONDS))
            .max()
            .unwrap_or(0)
    };
    let since = version.unwrap_or(at);
    let grace = chrono::Duration::from_std(Duration::from_secs(grace)).unwrap_or(chrono::Duration::MAX);
    if now < since + grace {
        return None;
    }
    let what = match (failure.message.as_deref().filter(|m| !m.is_empty()), failure.state.as_deref()) {
        (Some(message), _) => message.to_string(),
        (None, Some(state)) => state.to_string(),
        (None, None) => "no message".to_string(),
    };
    Some(format!("last task failure {}: {what}", when(at, now)))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn now() -> DateTime<Utc> {
        parse_time(Some("2026-03-04T10:00:00.000Z")).unwrap()
    }

    fn health(app: Value) -> HealthStatus {
        app_health(app.to_string().as_bytes(), now())
    }

    fn app(instances: u64, running: u64, healthy: u64) -> Value {
        json!({"id": "/a", "instances": instances, "tasksStaged": 0, "tasksRunning": running,
               "tasksHealthy": healthy, "tasksUnhealthy": 0, "deployments": [],
               "version": "2026-03-04T09:00:00.000Z"})
    }

    fn with(mut v: Value, key: &str, value: Value) -> Value {
        v[key] = value;
        v
    }

    #[test]
    fn running_tasks_make_an_app_without_checks_healthy() {
        assert_eq!(health(app(2, 2, 0)), HealthStatus::new(Health::Healthy, "2/2 tasks running"));
        assert_eq!(health(app(2, 1, 0)), HealthStatus::new(Health::Progressing, "1/2 tasks running"));
        let staged = with(app(1, 0, 0), "tasksStaged", json!(1));
        assert_eq!(health(staged), HealthStatus::new(Health::Progressing, "0/1 tasks running, 1 staged"));
    }

    #[test]
    fn checked_apps_need_healthy_tasks() {
        let checked = |a| with(a, "healthChecks", json!([{"protocol": "HTTP", "gracePeriodSeconds": 60}]));
        assert_eq!(health(checked(app(1, 1, 1))), HealthStatus::new(Health::Healthy, "1/1 tasks healthy"));
        assert_eq!(health(checked(app(1, 1, 0))).health, Health::Progressing);
        let sick = with(checked(app(2, 2, 1)), "tasksUnhealthy", json!(1));
        assert_eq!(health(sick), HealthStatus::new(Health::Degraded, "1 task unhealthy, 1/2 tasks healthy"));
    }

    #[test]
    fn deployments_and_scale_to_zero() {
        let deploying = with(app(1, 1, 0), "deployments", json!([{"id": "d1"}]));
        assert_eq!(
            health(deploying),
            HealthStatus::new(Health::Progressing, "deployment in flight, 1/1 tasks running")
        );
        assert_eq!(health(app(0, 0, 0)), HealthStatus::new(Health::Suspended, "scaled to 0 instances"));
    }

    #[test]
    fn failures_of_the_current_version_past_the_grace_degrade() {
        let failure = |at: &str| {
            json!({"appId": "/a", "host": "h", "message": "Command exited with status 1",
                                        "state": "TASK_FAILED", "taskId": "t", "timestamp": at, "version": "v"})
        };
        let failed = with(app(1, 0, 0), "lastTaskFailure", failure("2026-03-04T09:30:00.000Z"));
        assert_eq!(
            health(failed.clone()),
            HealthStatus::new(
                Health::Degraded,
                "0/1 tasks running, last task failure 09:30:00: Command exited with status 1"
            )
        );
        // A failure of an earlier version does not count.
        let old = with(app(1, 0, 0), "lastTaskFailure", failure("2026-03-04T08:00:00.000Z"));
        assert_eq!(health(old).health, Health::Progressing);
        // Within the grace of the health checks (since the version), still Progressing.
        let young = with(
            with(failed.clone(), "healthChecks", json!([{"gracePeriodSeconds": 7200}])),
            "version",
            json!("2026-03-04T09:00:00.000Z"),
        );
        assert_eq!(health(young).health, Health::Progressing);
        // A crash loop under a deployment that never ends is Degraded, with the failure.
        let looping = with(failed.clone(), "deployments", json!([{"id": "d"}]));
        assert_eq!(
            health(looping).reason,
            "deployment in flight, 0/1 tasks running, last task failure 09:30:00: Command exited with status 1"
        );
        // Failing health checks under a deployment that never ends: Degraded too.
        let checks = json!([{"gracePeriodSeconds": 5}]);
        let checked = with(with(app(1, 1, 0), "healthChecks", checks), "tasksUnhealthy", json!(1));
        assert_eq!(
            health(with(checked, "deployments", json!([{"id": "d"}]))),
            HealthStatus::new(Health::Degraded, "deployment in flight, 0/1 tasks healthy, 1 task unhealthy")
        );
        // Running again after the failure: Healthy wins.
        let recovered = with(failed, "tasksRunning", json!(1));
        assert_eq!(health(recovered).health, Health::Healthy);
    }

    #[test]
    fn unreadable_counts_are_unknown() {
        assert_eq!(health(json!({"id": "/a", "tasksRunning": "many"})).health, Health::Unknown);
        // Absent counts read as none (an older listing): Progressing, not a failure.
        assert_eq!(health(json!({"id": "/a"})).health, Health::Progressing);
    }
}
