//! The run of a run-once job (`sync.run: onChange`): start it with Chronos's manual
//! start (`PUT …/job/NAME`) — or, when its parents ran in this apply, let Chronos start
//! it; when one is queued or running already (`…/graph/csv`), e.g. started by a
//! controller killed meanwhile, join that one — and wait until the job's run statistics say how it ended. The job is done
//! (`Applied`) only once a run of its current definition succeeded.
//!
//! - Chronos's own `retries` are its business: its statistics move only once a run has
//!   succeeded or failed after them.
//! - A failed run is started again after `run_retry_delay` (doubled each time, at most
//!   5 minutes) until [`MAX_RUNS`] runs of this definition failed (counted from the
//!   live statistics, so a restart does not reset the count); then the job fails and
//!   its dependants stay blocked. A new definition starts again from zero.
//! - The whole wait, retries included, is bounded by the job's `sync.timeout`.
//! - The statistics are read from one shared listing (`GET …/jobs`), however many jobs
//!   are waited for, at a pace proportional to the run's age: every 50 ms at first,
//!   1/32 of its age later on, at most `poll_interval` apart — the end of a run is
//!   seen within a few percent of its duration, and a listing is taken at most every
//!   25 ms in all (once per `poll_interval / 2` once every run waited for is old).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::{ApplyError, Ctx, Executed, Outcome, SkipReason};
use crate::client::{ChronosClient, ClientError};
use crate::health::chronos::RunState;
use crate::plan::runs::{MAX_RUNS, RunCause, RunOnce, RunStart, RunStats};
use crate::plan::{Action, Write};

/// The shortest pause between two looks at a run's statistics.
const FIRST_POLL: Duration = Duration::from_millis(50);

/// A run `d` old is looked at every `d / AGE_SHARE` (within FIRST_POLL ..=
/// `poll_interval`): its end is seen within ~3% of its duration (plus the shared
/// listing's age), and a long run costs one listing per `poll_interval`.
const AGE_SHARE: u32 = 32;

/// The longest pause before a failed run is started again.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(300);

/// Every job's run statistics, by name.
type Listed = Arc<HashMap<String, RunStats>>;

/// One listing of the jobs' run statistics, shared by every wait of an apply.
#[derive(Default)]
pub(super) struct JobWatch {
    last: Mutex<Option<(Instant, Listed)>>,
}

impl JobWatch {
    /// The statistics of every job, from a listing started no earlier than `since`.
    /// Waits that ask while a listing is in flight take that one when it started late
    /// enough for them, so however many waits ask at once, it is one listing (not one
    /// each, in a queue).
    async fn stats(&self, c: &ChronosClient, since: Instant) -> Result<Listed, ClientError> {
        let mut last = self.last.lock().await;
        if let Some((at, stats)) = last.as_ref() {
            if *at >= since {
                return Ok(Arc::clone(stats));
            }
        }
        let taken = Instant::now();
        let jobs = c.list_jobs().await?;
        let stats: HashMap<String, RunStats> = jobs
            .iter()
            .filter_map(|j| {
                let value = j.value();
                let name = value.get("name")?.as_str()?.to_string();
                Some((name, RunStats::of(&value)))
            })
            .collect();
        let stats = Arc::new(stats);
        *last = Some((taken, Arc::clone(&stats)));
        Ok(stats)
    }
}

/// How a wait for a run ended.
enum Ended {
    Succeeded,
    Failed(RunStats),
    TimedOut(RunStats),
    Cancelled,
    Gone,
}

impl Ctx<'_> {
    /// Run `a`'s job (see the module docs); `attempts` writes were made before.
    pub(super) async fn run_once(
        &self,
        a: &Action,
        c: &ChronosClient,
        run: &RunOnce,
        attempts: u32,
    ) -> Executed {
        let name = a.object.id.as_str();
        let deadline = Instant::now() + run.timeout;
        let mut attempts = attempts;
        let mut failed = run.failed_runs;
        let mut last = run.seen.clone();
        // Not written in this apply: a run may be in flight already (started by a
        // controller that was killed meanwhile, or by Chronos): wait for it rather than
        // start a second one.
        let in_flight = match a.decision.write() {
            Some(Write::Run(RunCause::NotSucceeded)) => match c.run_states().await {
                Ok(states) => states.get(name) != RunState::Idle,
                Err(e) => return Executed::new(Outcome::Failed(e.into()), None, attempts),
            },
            _ => false,
        };
        if in_flight {
            tracing::info!(job = name, "a run is in flight already; waiting for it");
        } else if run.start == RunStart::Parents {
            tracing::info!(job = name, "waiting for the run Chronos starts after its parents");
        }
        // The first run waited for may be one somebody else started.
        let mut join = run.start == RunStart::Parents || in_flight;
        loop {
            if failed >= MAX_RUNS {
                let error = ApplyError::RunFailed { stats: last, runs: failed };
                return Executed::new(Outcome::Failed(error), None, attempts);
            }
            let before = if join {
                join = false;
                run.seen.clone()
            } else {
                if failed > 0 {
                    let delay = self.retry_delay(failed);
                    tracing::info!(job = name, failed, ?delay, "run failed; starting it again after a pause");
                    if Instant::now() + delay >= deadline {
                        return self.ended(Ended::TimedOut(last), run, attempts);
                    }
                    if !self.pause(delay).await {
                        return Executed::new(Outcome::Skipped(SkipReason::Cancelled), None, attempts);
                    }
                }
                if let Some(reason) = self.write_refused(attempts) {
                    return Executed::new(Outcome::Skipped(reason), None, attempts);
                }
                // Fresh statistics: the run started now is the one that moves them on.
                let before = match self.jobs.stats(c, Instant::now()).await {
                    Ok(all) => match all.get(name) {
                        Some(s) => s.clone(),
                        None => return self.ended(Ended::Gone, run, attempts),
                    },
                    Err(e) => return Executed::new(Outcome::Failed(e.into()), None, attempts),
                };
                attempts += 1;
                tracing::info!(job = name, run = failed + 1, "run started");
                let slot = self.write_slot().await;
                let started = c.run_job(name).await;
                drop(slot);
                if let Err(e) = started {
                    return Executed::new(Outcome::Failed(e.into()), None, attempts);
                }
                before
            };
            match self.wait_run(c, name, &before, deadline).await {
                Ok(Ended::Succeeded) => return Executed::new(Outcome::Applied, None, attempts),
                Ok(Ended::Failed(stats)) => {
                    failed += 1;
                    last = stats;
                }
                Ok(ended) => return self.ended(ended, run, attempts),
                Err(e) => return Executed::new(Outcome::Failed(e.into()), None, attempts),
            }
        }
    }

    /// Before a run-once job that exists is rewritten: wait until no run of it is
    /// queued or in flight. Chronos credits a run's result to whatever job bears the
    /// name when the task ends (`JobScheduler.handleFinishedTask` looks the job up by
    /// name), so an old definition's run ending after the write would count as a run of
    /// the new one. (Chronos starts such runs itself: a child whose parents just ran.)
    pub(super) async fn settle_runs(
        &self,
        a: &Action,
        c: &ChronosClient,
        run: &RunOnce,
        write: &Write,
    ) -> Result<(), Outcome> {
        if !matches!(
            write,
            Write::Update | Write::Replace { .. } | Write::Adopt { .. } | Write::Run(RunCause::Unrecorded)
        ) {
            return Ok(());
        }
        let name = a.object.id.as_str();
        let deadline = Instant::now() + run.timeout;
        let mut every = FIRST_POLL.min(self.opts.poll_interval);
        let mut announced = false;
        loop {
            let states = c.run_states().await.map_err(|e| Outcome::Failed(e.into()))?;
            if states.get(name) == RunState::Idle {
                return Ok(());
            }
            if !announced {
                tracing::info!(
                    job = name,
                    "a run of its old definition is in flight; writing it once it ends"
                );
                announced = true;
            }
            if Instant::now() >= deadline {
                return Err(Outcome::Failed(ApplyError::RunTimeout {
                    after: run.timeout,
                    stats: run.seen.clone(),
                }));
            }
            if !self.pause(every.min(deadline - Instant::now())).await {
                return Err(Outcome::Skipped(SkipReason::Cancelled));
            }
            every = (every * 2).min(self.opts.poll_interval);
        }
    }

    fn ended(&self, ended: Ended, run: &RunOnce, attempts: u32) -> Executed {
        let outcome = match ended {
            Ended::Succeeded => Outcome::Applied,
            Ended::Failed(stats) => Outcome::Failed(ApplyError::RunFailed { stats, runs: 1 }),
            Ended::TimedOut(stats) => Outcome::Failed(ApplyError::RunTimeout { after: run.timeout, stats }),
            Ended::Cancelled => Outcome::Skipped(SkipReason::Cancelled),
            Ended::Gone => Outcome::Failed(ApplyError::RunGone),
        };
        Executed::new(outcome, None, attempts)
    }

    /// The pause before run number `failed + 1`.
    fn retry_delay(&self, failed: u64) -> Duration {
        let doubled = self.opts.run_retry_delay.saturating_mul(1 << (failed - 1).min(16) as u32);
        doubled.min(MAX_RETRY_DELAY)
    }

    /// Sleep `d`, or less if the apply is cancelled (then `false`).
    async fn pause(&self, d: Duration) -> bool {
        match &self.opts.cancel {
            Some(cancel) => tokio::select! {
                _ = cancel.cancelled() => false,
                _ = tokio::time::sleep(d) => true,
            },
            None => {
                tokio::time::sleep(d).await;
                true
            }
        }
    }

    /// Wait until the job's statistics move on from `before`: a success or an error
    /// (after Chronos's own retries), up to `deadline`.
    async fn wait_run(
        &self,
        c: &ChronosClient,
        name: &str,
        before: &RunStats,
        deadline: Instant,
    ) -> Result<Ended, ClientError> {
        let mut before = before.clone();
        let started = Instant::now();
        loop {
            // Looks at a pace proportional to the run's age (a run is seen within
            // ~1/32 of its duration of its end, however long it is), from FIRST_POLL
            // up to `poll_interval`.
            let every = (started.elapsed() / AGE_SHARE)
                .clamp(FIRST_POLL.min(self.opts.poll_interval), self.opts.poll_interval);
            // A listing taken within half a pause (shared with the other waits that
            // look at about the same time: at most one listing per 25 ms in all).
            let now = Instant::now();
            let all = self.jobs.stats(c, now.checked_sub(every / 2).unwrap_or(now)).await?;
            let Some(now) = all.get(name).cloned() else { return Ok(Ended::Gone) };
            // Replaced meanwhile (statistics reset): count from here.
            if now.successes < before.successes || now.errors < before.errors {
                before = now.clone();
            }
            if now.successes > before.successes {
                return Ok(Ended::Succeeded);
            }
            if now.errors > before.errors {
                return Ok(Ended::Failed(now));
            }
            if Instant::now() >= deadline {
                return Ok(Ended::TimedOut(now));
            }
            let wake = (Instant::now() + every).min(deadline);
            let slept = match &self.opts.cancel {
                Some(cancel) => tokio::select! {
                    _ = cancel.cancelled() => false,
                    _ = tokio::time::sleep_until(wake) => true,
                },
                None => {
                    tokio::time::sleep_until(wake).await;
                    true
                }
            };
            if !slept {
                return Ok(Ended::Cancelled);
            }
        }
    }
}
