//! A Chronos job's health, from the job as listed (`disabled`, `lastSuccess`,
//! `lastError`, `errorsSinceLastSuccess`) and its run state, which the listing does
//! not carry: `GET …/graph/csv` (2.4, 2.5 and 3.x alike, `GraphManagementResource`,
//! written by `Exporter.export`) has one line `node,<name>,<last state>,<run state>`
//! per job, the run state being `idle`, `queued`, `running` (2.x) or `N running`
//! (3.x `JobStats.updateJobState`). That is one more GET per reconcile, made only when
//! there are jobs; 3.x's `jobs/summary` carries the same two values.
//!
//! The rules, in order: disabled → Suspended (unless Chronos disabled it because its
//! repeat count ran out, `R0/…`); running or queued → Progressing;
//! `errorsSinceLastSuccess` > 0 or `lastError` newer than `lastSuccess` → Degraded;
//! never run → Progressing for a run-once job, Healthy for a scheduled one;
//! else (`lastSuccess` the newest) → Healthy.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{Health, HealthStatus, parse_time, when};

/// Whether a job is running now, as Chronos reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RunState {
    /// Not running or queued (Chronos reports unknown jobs as idle too).
    #[default]
    Idle,
    /// Queued to run.
    Queued,
    /// Running (one or more tasks).
    Running,
}

/// The run state of every job, read from `…/graph/csv`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunStates(HashMap<String, RunState>);

impl RunStates {
    /// Parse the CSV Chronos serves at `…/graph/csv`: `node,<name>,<last>,<state>`
    /// lines (and `link,<parent>,<child>` lines, skipped). A line that does not parse
    /// is skipped.
    pub fn parse_graph_csv(text: &str) -> Self {
        let mut states = HashMap::new();
        for line in text.lines() {
            let mut fields = line.trim().split(',');
            if fields.next() != Some("node") {
                continue;
            }
            let (Some(name), Some(_last), Some(state)) = (fields.next(), fields.next(), fields.next()) else {
                continue;
            };
            let state = state.trim();
            let run = if state.ends_with("running") {
                RunState::Running
            } else if state == "queued" {
                RunState::Queued
            } else {
                RunState::Idle
            };
            states.insert(name.to_string(), run);
        }
        RunStates(states)
    }

    /// The run state of `name` (idle when not listed).
    pub fn get(&self, name: &str) -> RunState {
        self.0.get(name).copied().unwrap_or_default()
    }

    /// Set one job's run state (tests, fixtures).
    pub fn insert(&mut self, name: impl Into<String>, state: RunState) {
        self.0.insert(name.into(), state);
    }
}

/// The fields of a listed job that its health is read from.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    #[serde(default)]
    disabled: bool,
    last_success: Option<String>,
    last_error: Option<String>,
    #[serde(default)]
    errors_since_last_success: u64,
    schedule: Option<String>,
}

/// The health of one job from its JSON as listed, its run state (`None`: not known)
/// and whether it is a run-once job. It reads the clock for the day only (a run's time
/// is written without its date when it is today).
pub fn job_health(
    raw: &[u8],
    run_state: Option<RunState>,
    run_once: bool,
    now: DateTime<Utc>,
) -> HealthStatus {
    let job = match serde_json::from_slice::<Wire>(raw) {
        Ok(job) => job,
        Err(e) => {
            return HealthStatus::new(Health::Unknown, format!("cannot read the job's statistics: {e}"));
        }
    };
    // Chronos 2.x disables a job whose repeat count ran out (`R0/…`, a run-once job
    // after its run): that is not a suspension; its statistics say how it went.
    let ran_out = job.schedule.as_deref().is_some_and(|s| s.starts_with("R0/"));
    if job.disabled && !ran_out {
        return HealthStatus::new(Health::Suspended, "disabled");
    }
    match run_state {
        Some(RunState::Running) => return HealthStatus::new(Health::Progressing, "running"),
        Some(RunState::Queued) => return HealthStatus::new(Health::Progressing, "queued to run"),
        Some(RunState::Idle) | None => {}
    }
    let success = parse_time(job.last_success.as_deref());
    let error = parse_time(job.last_error.as_deref());
    let failed_last = match (success, error) {
        (Some(s), Some(e)) => e > s,
        (None, Some(_)) => true,
        _ => false,
    };
    if job.errors_since_last_success > 0 || failed_last {
        let mut reason = match error {
            Some(e) => format!("last run failed at {}", when(e, now)),
            None => "last run failed".to_string(),
        };
        if job.errors_since_last_success > 0 {
            let n = job.errors_since_last_success;
            reason.push_str(&format!(", {n} error{} since last success", if n == 1 { "" } else { "s" }));
        }
        return HealthStatus::new(Health::Degraded, reason);
    }
    match success {
        Some(s) => HealthStatus::new(Health::Healthy, format!("last run succeeded at {}", when(s, now))),
        None if run_once => HealthStatus::new(Health::Progressing, "never run"),
        None => HealthStatus::new(Health::Healthy, "scheduled, not run yet"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn now() -> DateTime<Utc> {
        parse_time(Some("2026-03-04T10:00:00.000Z")).unwrap()
    }

    fn health(job: Value, run: Option<RunState>, once: bool) -> HealthStatus {
        job_health(job.to_string().as_bytes(), run, once, now())
    }

    fn job(success: &str, error: &str, errors: u64) -> Value {
        json!({"name": "j", "disabled": false, "lastSuccess": success, "lastError": error,
               "errorsSinceLastSuccess": errors, "successCount": 1, "errorCount": errors})
    }

    #[test]
    fn the_graph_csv_gives_run_states() {
        let csv = "node,a,success,idle\nnode,b,fresh,queued\nnode,c,failure,running\nnode,d,success,2 running\nlink,a,b\nbad\n";
        let states = RunStates::parse_graph_csv(csv);
        assert_eq!(states.get("a"), RunState::Idle);
        assert_eq!(states.get("b"), RunState::Queued);
        assert_eq!(states.get("c"), RunState::Running);
        assert_eq!(states.get("d"), RunState::Running);
        assert_eq!(states.get("unknown"), RunState::Idle);
    }

    #[test]
    fn job_rules_in_order() {
        let disabled = json!({"name": "j", "disabled": true, "lastError": "2026-03-04T09:00:00Z"});
        assert_eq!(health(disabled, Some(RunState::Running), false).health, Health::Suspended);
        let ok = job("2026-03-04T09:00:00.000Z", "", 0);
        assert_eq!(
            health(ok.clone(), Some(RunState::Running), false),
            HealthStatus::new(Health::Progressing, "running")
        );
        assert_eq!(
            health(ok.clone(), None, false),
            HealthStatus::new(Health::Healthy, "last run succeeded at 09:00:00")
        );
        let failing = job("2026-03-04T07:00:00.000Z", "2026-03-04T08:12:03.000Z", 2);
        assert_eq!(
            health(failing, Some(RunState::Idle), true),
            HealthStatus::new(Health::Degraded, "last run failed at 08:12:03, 2 errors since last success")
        );
        // An error older than the last success is history.
        let recovered = job("2026-03-04T09:00:00.000Z", "2026-03-04T08:00:00.000Z", 0);
        assert_eq!(health(recovered, None, false).health, Health::Healthy);
        let never = job("", "", 0);
        assert_eq!(health(never.clone(), None, true), HealthStatus::new(Health::Progressing, "never run"));
        assert_eq!(health(never, None, false), HealthStatus::new(Health::Healthy, "scheduled, not run yet"));
        assert_eq!(health(json!({"disabled": "no"}), None, false).health, Health::Unknown);
        // A run-once job that ran: Chronos 2.x disabled it (its count ran out).
        let mut ran = job("2026-03-04T09:00:00.000Z", "", 0);
        ran["disabled"] = json!(true);
        ran["schedule"] = json!("R0/2026-03-04T08:59:00.000Z/P1D");
        assert_eq!(health(ran, None, true).health, Health::Healthy);
    }
}
