//! Job runs: the emulated Chronos scheduler as a discrete-event simulation over the
//! emulated clock.
//!
//! A run starts (manual start, a schedule coming due, the parents of a dependent job
//! having succeeded, or a retry), lasts its job's configured duration and then
//! succeeds or fails as the test controls say. Every timed event (a run's end, a
//! retry, a schedule occurrence) sits in one queue ordered by time; [`Scheduler::advance`]
//! plays them in order up to "now" whenever a request arrives, so statistics carry the
//! instants they would have had on a real server, whatever the polling rate, and a
//! test can move the clock instead of sleeping.
//!
//! The semantics follow Chronos's `JobScheduler` (handleStartedTask,
//! handleFinishedTask, handleFailedTask, processDependencies), `JobGraph`
//! (getExecutableChildren, resetDependencyInvocations) and `MesosJobFramework` (a job
//! already running is not launched twice); see docs/emulator.md for the lines.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Job;
use super::schedule::parse_instant;
use crate::emulator::clock::iso_millis;

/// How many run events the log keeps (oldest dropped first).
pub const RUN_LOG_CAPACITY: usize = 10_000;

/// How many timed events one catch-up plays at most, so no schedule (a PT1S job after
/// the clock jumped a year) or dependency cycle can hold a request for long.
const EVENT_BUDGET: usize = 100_000;

/// What a run does when it ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunResult {
    /// The task finishes (`TASK_FINISHED`).
    #[default]
    Succeed,
    /// The task fails (`TASK_FAILED`).
    Fail,
}

/// The test controls' script for one job's runs (`/_sandbox/chronos/jobs/{name}/outcome`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct JobOutcome {
    /// How attempts end once `failTimes` is used up (default: succeed).
    pub result: RunResult,
    /// How long each attempt takes (default: the server-wide run duration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// The next this-many attempts fail whatever `result` says (a flaky job:
    /// `{"failTimes": 1}` fails once, then its retry succeeds).
    pub fail_times: u32,
}

/// The server-wide run settings (`/_sandbox/chronos/outcome`, `mesosync sandbox
/// --job-run-duration`, `--job-retry-delay`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct RunDefaults {
    /// How attempts of jobs without their own outcome end.
    pub result: RunResult,
    /// How long an attempt takes.
    pub duration_ms: u64,
    /// How long after a failed attempt its retry starts (Chronos's `--failure_retry`,
    /// 60000 ms on a real server).
    pub retry_delay_ms: u64,
}

/// Why a run started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// `PUT …/job/{name}`.
    Manual,
    /// The job's schedule came due.
    Schedule,
    /// Every parent of a dependent job succeeded.
    Dependency,
    /// A failed attempt with retries left.
    Retry,
}

/// What happened to a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunEventKind {
    /// The task started.
    Started,
    /// The task finished.
    Succeeded,
    /// The task failed.
    Failed,
    /// The task was killed (job deleted, `task/kill`); no statistics move.
    Killed,
}

/// One entry of the run log (`GET /_sandbox/chronos/runs`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRunEvent {
    /// Position in the log since the server started (gaps: entries dropped by the cap).
    pub seq: u64,
    /// Emulated time of the event.
    pub at: String,
    /// The job.
    pub job: String,
    /// What happened.
    pub event: RunEventKind,
    /// 0 for the first attempt, n for the n-th retry.
    pub attempt: u32,
    /// Why the run started.
    pub trigger: Trigger,
    /// On `failed`: whether a retry follows (else the failure counted as an error).
    pub retrying: bool,
}

#[derive(Clone, Debug)]
pub(super) struct ActiveRun {
    id: u64,
    attempt: u32,
    trigger: Trigger,
    fails: bool,
    ends: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub(super) struct PendingRetry {
    id: u64,
    attempt: u32,
}

/// A job's run state, beside its reported fields.
#[derive(Clone, Debug, Default)]
pub(super) struct RunState {
    pub(super) active: Option<ActiveRun>,
    pub(super) retry: Option<PendingRetry>,
    /// Which schedule the queued occurrence belongs to; a replaced job gets a new one.
    pub(super) generation: u64,
    /// Successes of each parent since this job last started (`JobGraph`'s
    /// `edgeInvocationCount`).
    pub(super) invocations: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    RunEnd(u64),
    Retry(u64),
    Occurrence(u64),
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Timed {
    at: DateTime<Utc>,
    seq: u64,
    job: String,
    kind: Kind,
}

/// All jobs and the machinery that runs them.
#[derive(Default)]
pub(super) struct Scheduler {
    pub(super) jobs: BTreeMap<String, Job>,
    queue: BinaryHeap<Reverse<Timed>>,
    log: VecDeque<JobRunEvent>,
    outcomes: BTreeMap<String, JobOutcome>,
    pub(super) defaults: RunDefaults,
    next_id: u64,
}

fn millis(ms: u64) -> chrono::Duration {
    chrono::Duration::milliseconds(i64::try_from(ms).unwrap_or(i64::MAX / 4).min(i64::MAX / 4))
}

fn later(at: DateTime<Utc>, ms: u64) -> DateTime<Utc> {
    at.checked_add_signed(millis(ms)).unwrap_or(at)
}

fn field_text<'a>(job: &'a Job, key: &str) -> &'a str {
    job.fields.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn field_u64(job: &Job, key: &str) -> u64 {
    job.fields.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn disabled(job: &Job) -> bool {
    job.fields.get("disabled") == Some(&json!(true))
}

impl Scheduler {
    pub(super) fn new(defaults: RunDefaults) -> Scheduler {
        Scheduler { defaults, ..Scheduler::default() }
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn push(&mut self, at: DateTime<Utc>, job: &str, kind: Kind) {
        let seq = self.id();
        self.queue.push(Reverse(Timed { at, seq, job: job.to_owned(), kind }));
    }

    fn record(
        &mut self,
        at: DateTime<Utc>,
        job: &str,
        event: RunEventKind,
        run: (u32, Trigger),
        retrying: bool,
    ) {
        if self.log.len() >= RUN_LOG_CAPACITY {
            self.log.pop_front();
        }
        let seq = self.log.back().map_or(1, |last| last.seq + 1);
        self.log.push_back(JobRunEvent {
            seq,
            at: iso_millis(at),
            job: job.to_owned(),
            event,
            attempt: run.0,
            trigger: run.1,
            retrying,
        });
    }

    /// Put a job in (create or replace). A replaced job keeps a run in flight (the
    /// task goes on and reports to the job of that name) but its schedule and its
    /// parents' invocation counts start afresh.
    pub(super) fn insert(&mut self, name: String, mut job: Job) {
        if let Some(old) = self.jobs.remove(&name) {
            job.runs.active = old.runs.active;
            job.runs.retry = old.runs.retry;
        }
        job.runs.generation = self.id();
        self.queue_occurrence(&name, &job);
        self.jobs.insert(name, job);
        self.compact();
    }

    fn queue_occurrence(&mut self, name: &str, job: &Job) {
        if let Some(schedule) = job.schedule.as_ref().filter(|s| !s.exhausted() && !disabled(job)) {
            let (at, generation) = (schedule.start, job.runs.generation);
            self.push(at, name, Kind::Occurrence(generation));
        }
    }

    /// Remove a job; a run in flight is killed.
    pub(super) fn remove(&mut self, name: &str, now: DateTime<Utc>) -> Option<Job> {
        let job = self.jobs.remove(name)?;
        if let Some(run) = &job.runs.active {
            self.record(now, name, RunEventKind::Killed, (run.attempt, run.trigger), false);
        }
        Some(job)
    }

    /// `DELETE …/task/kill/{name}`: the running task is killed (`handleKilledTask`:
    /// no statistics, no retry); a pending retry is cancelled with it.
    pub(super) fn kill(&mut self, name: &str, now: DateTime<Utc>) {
        let Some(job) = self.jobs.get_mut(name) else { return };
        job.runs.retry = None;
        if let Some(run) = job.runs.active.take() {
            self.record(now, name, RunEventKind::Killed, (run.attempt, run.trigger), false);
        }
    }

    /// Replace every job (a restored snapshot): nothing runs, schedules are queued.
    pub(super) fn replace_all(&mut self, jobs: BTreeMap<String, Job>) {
        self.jobs = BTreeMap::new();
        self.queue.clear();
        for (name, job) in jobs {
            self.insert(name, job);
        }
    }

    /// Whether a run of this job is in flight.
    pub(super) fn running(&self, name: &str) -> bool {
        self.jobs.get(name).is_some_and(|job| job.runs.active.is_some())
    }

    pub(super) fn set_outcome(&mut self, name: &str, outcome: Option<JobOutcome>) {
        match outcome {
            Some(outcome) => {
                self.outcomes.insert(name.to_owned(), outcome);
            }
            None => {
                self.outcomes.remove(name);
            }
        }
    }

    pub(super) fn outcomes(&self) -> Value {
        json!({"default": self.defaults, "jobs": self.outcomes})
    }

    pub(super) fn run_log(&self) -> Vec<JobRunEvent> {
        self.log.iter().cloned().collect()
    }

    pub(super) fn clear_run_log(&mut self) {
        self.log.clear();
    }

    /// `PUT …/job/{name}` (JobManagementResource.trigger): enqueue attempt 0 now.
    pub(super) fn trigger(&mut self, name: &str, now: DateTime<Utc>) {
        self.start(name, now, 0, Trigger::Manual);
    }

    /// Play every timed event up to `now`, oldest first.
    pub(super) fn advance(&mut self, now: DateTime<Utc>) {
        let mut budget = EVENT_BUDGET;
        while let Some(Reverse(next)) = self.queue.peek() {
            if next.at > now {
                return;
            }
            if budget == 0 {
                self.skip_missed_occurrences(now);
                return;
            }
            budget -= 1;
            let Some(Reverse(event)) = self.queue.pop() else { return };
            match event.kind {
                Kind::RunEnd(id) => self.end(&event.job, id, event.at),
                Kind::Retry(id) => self.retry(&event.job, id, event.at),
                Kind::Occurrence(generation) => self.occurrence(&event.job, generation, event.at),
            }
        }
    }

    /// Out of budget: the occurrences the clock jumped over are dropped unrun (as a
    /// scheduler that was down would), so the next request does not replay them.
    fn skip_missed_occurrences(&mut self, now: DateTime<Utc>) {
        let names: Vec<String> = self.jobs.keys().cloned().collect();
        for name in names {
            let Some(job) = self.jobs.get_mut(&name) else { continue };
            let Some(schedule) = job.schedule.as_mut() else { continue };
            if schedule.take_due(now) > 0 {
                let rendered = schedule.render();
                job.fields.insert("schedule".into(), json!(rendered));
                job.runs.generation = self.next_id + 1;
                self.next_id += 1;
                let job = job.clone();
                self.queue_occurrence(&name, &job);
            }
        }
        self.compact();
    }

    /// Keep the queue proportional to the jobs: stale events (replaced or deleted
    /// jobs, finished runs) are dropped by rebuilding it from the live state.
    fn compact(&mut self) {
        if self.queue.len() <= 4 * self.jobs.len() + 1024 {
            return;
        }
        let mut events: Vec<Timed> = self.queue.drain().map(|Reverse(t)| t).collect();
        events.retain(|event| {
            let Some(job) = self.jobs.get(&event.job) else { return false };
            match event.kind {
                Kind::RunEnd(id) => job.runs.active.as_ref().is_some_and(|r| r.id == id),
                Kind::Retry(id) => job.runs.retry.as_ref().is_some_and(|r| r.id == id),
                Kind::Occurrence(generation) => job.runs.generation == generation,
            }
        });
        self.queue = events.into_iter().map(Reverse).collect();
    }

    fn occurrence(&mut self, name: &str, generation: u64, at: DateTime<Utc>) {
        let Some(job) = self.jobs.get_mut(name) else { return };
        if job.runs.generation != generation || disabled(job) {
            return;
        }
        let Some(schedule) = job.schedule.as_mut() else { return };
        if schedule.take_due(at) == 0 {
            return;
        }
        let rendered = schedule.render();
        job.fields.insert("schedule".into(), json!(rendered));
        let job = job.clone();
        self.queue_occurrence(name, &job);
        self.start(name, at, 0, Trigger::Schedule);
    }

    /// Launch an attempt. A disabled job's task expires unlaunched
    /// (TaskManager.getTask); a job already running is not launched again
    /// (MesosJobFramework: "already running").
    fn start(&mut self, name: &str, at: DateTime<Utc>, attempt: u32, trigger: Trigger) {
        let Some(job) = self.jobs.get(name) else { return };
        if disabled(job) || job.runs.active.is_some() {
            return;
        }
        let outcome = self.outcomes.get_mut(name);
        let (fails, duration) = match outcome {
            Some(outcome) if outcome.fail_times > 0 => {
                outcome.fail_times -= 1;
                (true, outcome.duration_ms)
            }
            Some(outcome) => (outcome.result == RunResult::Fail, outcome.duration_ms),
            None => (self.defaults.result == RunResult::Fail, None),
        };
        let ends = later(at, duration.unwrap_or(self.defaults.duration_ms));
        let id = self.id();
        if let Some(job) = self.jobs.get_mut(name) {
            job.runs.active = Some(ActiveRun { id, attempt, trigger, fails, ends });
            job.runs.retry = None;
            // handleStartedTask: a dependent job's parents count afresh from its start.
            job.runs.invocations.clear();
        }
        self.record(at, name, RunEventKind::Started, (attempt, trigger), false);
        self.push(ends, name, Kind::RunEnd(id));
    }

    fn retry(&mut self, name: &str, id: u64, at: DateTime<Utc>) {
        let Some(job) = self.jobs.get_mut(name) else { return };
        let Some(retry) = job.runs.retry.take_if(|r| r.id == id) else { return };
        self.start(name, at, retry.attempt, Trigger::Retry);
    }

    fn end(&mut self, name: &str, id: u64, at: DateTime<Utc>) {
        let Some(job) = self.jobs.get_mut(name) else { return };
        let Some(run) = job.runs.active.take_if(|r| r.id == id) else { return };
        debug_assert_eq!(run.ends, at);
        let stamp = json!(iso_millis(at));
        let soft_error = job.fields.get("softError") == Some(&json!(true));
        if !run.fails {
            // handleFinishedTask
            let count = field_u64(job, "successCount");
            job.fields.insert("successCount".into(), json!(count + 1));
            job.fields.insert("errorsSinceLastSuccess".into(), json!(0));
            job.fields.insert("lastSuccess".into(), stamp);
            if job.schedule.as_ref().is_some_and(|s| s.exhausted()) {
                job.fields.insert("disabled".into(), json!(true));
            }
            self.record(at, name, RunEventKind::Succeeded, (run.attempt, run.trigger), false);
            self.process_dependencies(name, at);
            return;
        }
        // handleFailedTask: retries only while the last outcome was not an error.
        let retries = field_u64(job, "retries");
        let (last_success, last_error) = (field_text(job, "lastSuccess"), field_text(job, "lastError"));
        let had_recent_success = match (parse_instant(last_success), parse_instant(last_error)) {
            (Some(success), Some(error)) => success >= error,
            _ => false,
        };
        let retrying = u64::from(run.attempt) < retries && (last_error.is_empty() || had_recent_success);
        if retrying {
            let retry_at = later(at, self.defaults.retry_delay_ms);
            let retry_id = self.next_id + 1;
            self.next_id += 1;
            job.runs.retry = Some(PendingRetry { id: retry_id, attempt: run.attempt + 1 });
            self.push(retry_at, name, Kind::Retry(retry_id));
        } else {
            let errors = field_u64(job, "errorCount");
            let since = field_u64(job, "errorsSinceLastSuccess");
            job.fields.insert("errorCount".into(), json!(errors + 1));
            job.fields.insert("errorsSinceLastSuccess".into(), json!(since + 1));
            job.fields.insert("lastError".into(), stamp);
        }
        self.record(at, name, RunEventKind::Failed, (run.attempt, run.trigger), retrying);
        if !retrying && soft_error {
            self.process_dependencies(name, at);
        }
    }

    /// `processDependencies` + `JobGraph.getExecutableChildren`: a child with one
    /// parent runs after each success of it; a child with several counts each parent's
    /// successes since it last started and runs when this parent's count reaches the
    /// lowest count among its parents (so: once all of them succeeded).
    fn process_dependencies(&mut self, parent: &str, at: DateTime<Utc>) {
        let children: Vec<String> = self
            .jobs
            .iter()
            .filter(|(_, job)| job.parents.iter().any(|p| p == parent))
            .filter(|(_, job)| job.parents.iter().all(|p| self.jobs.contains_key(p)))
            .map(|(name, _)| name.clone())
            .collect();
        for child in children {
            let Some(job) = self.jobs.get_mut(&child) else { continue };
            let ready = if job.parents.len() == 1 {
                true
            } else {
                let count = job.runs.invocations.entry(parent.to_owned()).or_insert(0);
                *count += 1;
                let count = *count;
                let lowest = job
                    .parents
                    .iter()
                    .map(|p| job.runs.invocations.get(p).copied().unwrap_or(0))
                    .min()
                    .unwrap_or(0);
                count == lowest
            };
            if ready {
                self.start(&child, at, 0, Trigger::Dependency);
            }
        }
    }
}

/// The run state the graph CSV and 3.x `jobs/summary` report (`JobStats.getJobState`):
/// 2.x `running` / `idle`; 3.x writes the number of running tasks, `1 running` (the
/// emulator runs one task per job at a time, `concurrent` is not modelled).
pub(super) fn run_state(scheduler: &Scheduler, name: &str, v3: bool) -> &'static str {
    match (scheduler.running(name), v3) {
        (false, _) => "idle",
        (true, false) => "running",
        (true, true) => "1 running",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::chronos::schedule::Schedule;

    fn job(name: &str, schedule: Option<Schedule>) -> Job {
        let fields = json!({"name": name, "retries": 0, "successCount": 0, "disabled": false});
        let Value::Object(fields) = fields else { unreachable!() };
        Job { fields, schedule, parents: Vec::new(), runs: RunState::default() }
    }

    fn at(text: &str) -> DateTime<Utc> {
        parse_instant(text).expect("instant")
    }

    #[test]
    fn the_run_log_keeps_the_newest_entries_with_their_sequence() {
        let mut scheduler = Scheduler::new(RunDefaults::default());
        scheduler.insert("a".into(), job("a", None));
        let now = at("2030-01-01T00:00:00Z");
        for _ in 0..RUN_LOG_CAPACITY {
            scheduler.trigger("a", now);
            scheduler.advance(now);
        }
        let log = scheduler.run_log();
        assert_eq!(log.len(), RUN_LOG_CAPACITY);
        assert_eq!(log.last().map(|e| e.seq), Some(2 * RUN_LOG_CAPACITY as u64));
        assert_eq!(log[0].seq, RUN_LOG_CAPACITY as u64 + 1);
        assert_eq!(scheduler.jobs["a"].fields["successCount"], json!(RUN_LOG_CAPACITY));
    }

    #[test]
    fn a_clock_jump_over_a_tight_schedule_is_bounded_and_skips_the_rest() {
        let mut scheduler = Scheduler::new(RunDefaults::default());
        let start = at("2030-01-01T00:00:00Z");
        let schedule = Schedule::parse("R/2030-01-01T00:00:00Z/PT1S", start).expect("schedule");
        scheduler.insert("tick".into(), job("tick", Some(schedule)));
        let year_later = at("2031-01-01T00:00:00Z");
        scheduler.advance(year_later);
        let ran = scheduler.jobs["tick"].fields["successCount"].as_u64().expect("count");
        assert_eq!(ran, EVENT_BUDGET as u64 / 2, "a start and an end per run");
        let next = scheduler.jobs["tick"].schedule.as_ref().map(|s| s.start).expect("scheduled");
        assert!(next > year_later, "the missed occurrences were dropped: {next}");
        assert!(scheduler.queue.len() < 10, "{}", scheduler.queue.len());
    }
}
