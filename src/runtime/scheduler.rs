//! When the next reconcile runs and why: collapses triggers, debounces bursts, keeps the
//! resync deadline and the per-object retry times.
//!
//! Pure state: every method takes `now`, nothing here sleeps, spawns or reads the clock
//! (apart from the random jitter), so the rules are tested by passing instants. The
//! controller loop owns one [`Scheduler`], sleeps until [`Scheduler::next_due`], takes a
//! [`Batch`], runs it, and hands the outcome back with [`Scheduler::finished`]. Since
//! the loop runs one batch at a time, two reconciles never overlap, and every trigger
//! that arrives meanwhile is collapsed into the next batch.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use super::backoff::Backoff;
use crate::model::ObjectRef;
use crate::status::contract::{ObjectState, ReconcileOutcome, Requeue, Trigger};

/// The scheduler's timing rules.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SchedulerConfig {
    /// File changes and live events wait for this much quiet before a reconcile.
    pub debounce: Duration,
    /// …but a steady stream of them never postpones it by more than this.
    pub max_debounce: Duration,
    /// Longest time between the end of one reconcile and the start of the next.
    pub resync: Duration,
    /// Retry delays for failed objects and failed reconciles.
    pub backoff: Backoff,
}

/// A failed object (or the whole reconcile) waiting to be retried.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryState {
    /// Consecutive failures.
    pub failures: u32,
    /// When the retry is due; `None` for a permanent failure ([`Requeue::AwaitChange`]),
    /// retried by the next reconcile that may see other manifests (file change, git
    /// pull, SIGHUP, leadership) or by the resync.
    pub at: Option<Instant>,
    /// The last error.
    pub error: String,
}

/// One reconcile's worth of reasons, taken from the scheduler when due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Every collapsed reason, sorted, without duplicates.
    pub reasons: Vec<Trigger>,
    /// Failed objects whose retry is not due yet.
    pub backing_off: BTreeSet<ObjectRef>,
}

/// A burst of debounced triggers: when it started and when it was last extended.
#[derive(Clone, Copy, Debug)]
struct Burst {
    first: Instant,
    last: Instant,
}

/// The scheduler state (see the module docs).
#[derive(Debug)]
pub struct Scheduler {
    config: SchedulerConfig,
    /// Reasons requested since the last batch.
    reasons: BTreeSet<Trigger>,
    /// Due time of the earliest immediate request (startup, signal, leadership).
    immediate: Option<Instant>,
    /// Pending burst of debounced requests (file changes, live events).
    burst: Option<Burst>,
    /// When the periodic resync is due.
    resync_at: Instant,
    /// Failed objects waiting for their retry.
    retries: BTreeMap<ObjectRef, RetryState>,
    /// The whole reconcile failed: when to try again.
    whole: Option<RetryState>,
    /// Retries that were due when the running batch was taken.
    attempted: BTreeSet<ObjectRef>,
    rng: StdRng,
}

impl Scheduler {
    /// An idle scheduler; the first resync is due `config.resync` after `now`.
    pub fn new(config: SchedulerConfig, now: Instant) -> Self {
        Self::with_rng(config, now, StdRng::from_os_rng())
    }

    /// The same, with a seeded jitter source (for reproducible tests).
    pub fn with_seed(config: SchedulerConfig, now: Instant, seed: u64) -> Self {
        Self::with_rng(config, now, StdRng::seed_from_u64(seed))
    }

    fn with_rng(config: SchedulerConfig, now: Instant, rng: StdRng) -> Self {
        Self {
            config,
            reasons: BTreeSet::new(),
            immediate: None,
            burst: None,
            resync_at: now + config.resync,
            retries: BTreeMap::new(),
            whole: None,
            attempted: BTreeSet::new(),
            rng,
        }
    }

    /// Ask for a reconcile. File changes, live events and git pulls are debounced (a
    /// pull is followed by the file events of its checkout: one burst); every other
    /// trigger is due at once. Requests collapse until the next batch is taken.
    pub fn request(&mut self, trigger: Trigger, now: Instant) {
        match trigger {
            Trigger::FileChange | Trigger::LiveEvent | Trigger::GitPull => {
                let burst = self.burst.get_or_insert(Burst { first: now, last: now });
                burst.last = burst.last.max(now);
            }
            _ => self.immediate = Some(self.immediate.map_or(now, |t| t.min(now))),
        }
        self.reasons.insert(trigger);
    }

    /// When the requested (not timer-driven) reconcile is due, if one is pending.
    fn requested_due(&self) -> Option<Instant> {
        let burst = self.burst.map(|b| {
            (b.last + self.config.debounce).min(b.first + self.config.max_debounce.max(self.config.debounce))
        });
        [self.immediate, burst].into_iter().flatten().min()
    }

    /// When the next reconcile is due (possibly already past).
    pub fn next_due(&self) -> Instant {
        let retries = self.retries.values().filter_map(|r| r.at);
        let whole = self.whole.as_ref().and_then(|r| r.at);
        retries.chain(whole).chain(self.requested_due()).fold(self.resync_at, Instant::min)
    }

    /// When the periodic resync is due (a permanent failure is retried then at the
    /// latest).
    pub fn resync_at(&self) -> Instant {
        self.resync_at
    }

    /// Take the batch due at `now`, if any. A debounced burst still inside its quiet
    /// period stays pending even when a timer makes the batch due, so a half-written
    /// checkout is not read twice.
    pub fn take_due(&mut self, now: Instant) -> Option<Batch> {
        if self.next_due() > now {
            return None;
        }
        let mut reasons = BTreeSet::new();
        if self.requested_due().is_some_and(|due| due <= now) {
            reasons = std::mem::take(&mut self.reasons);
            self.immediate = None;
            self.burst = None;
        }
        if self.resync_at <= now {
            reasons.insert(Trigger::Resync);
        }
        if self.whole.as_ref().and_then(|w| w.at).is_some_and(|at| at <= now) {
            reasons.insert(Trigger::RetryAfterError);
        }
        // Permanent failures are tried again only when the input may have changed.
        let changed = reasons.iter().any(may_change_input);
        let mut backing_off = BTreeSet::new();
        self.attempted.clear();
        for (object, retry) in &self.retries {
            match retry.at {
                Some(at) if at <= now => {
                    reasons.insert(Trigger::Retry(object.clone()));
                    self.attempted.insert(object.clone());
                }
                None if changed => {
                    self.attempted.insert(object.clone());
                }
                _ => {
                    backing_off.insert(object.clone());
                }
            }
        }
        Some(Batch { reasons: reasons.into_iter().collect(), backing_off })
    }

    /// The batch's file events and git pulls changed nothing: the manifests and the
    /// revision are the ones the last reconcile loaded (the controller compared them).
    /// Take [`Trigger::FileChange`] and [`Trigger::GitPull`] out of its reasons, and
    /// with them the retry of permanent failures they allowed (those still wait for a
    /// real change). `false` when no reason is left: there is nothing to run, and
    /// nothing to record (the resync keeps its time).
    pub fn drop_unchanged_input(&mut self, batch: &mut Batch) -> bool {
        batch.reasons.retain(|r| !matches!(r, Trigger::FileChange | Trigger::GitPull));
        if !batch.reasons.iter().any(may_change_input) {
            let retries = &self.retries;
            let waiting: Vec<ObjectRef> = self
                .attempted
                .iter()
                .filter(|o| retries.get(*o).is_some_and(|r| r.at.is_none()))
                .cloned()
                .collect();
            for object in waiting {
                self.attempted.remove(&object);
                batch.backing_off.insert(object);
            }
        }
        !batch.reasons.is_empty()
    }

    /// Record how the batch taken last ended, at `now`: restart the resync period,
    /// schedule retries for failed objects (exponential per object), forget objects
    /// that succeeded.
    pub fn finished(&mut self, now: Instant, outcome: &ReconcileOutcome) {
        self.resync_at = now + self.config.resync;
        let attempted = std::mem::take(&mut self.attempted);
        match outcome {
            Err(failure) => {
                let failures = self.whole.as_ref().map_or(0, |w| w.failures) + 1;
                self.whole = Some(self.retry_state(now, failures, failure.message.clone(), failure.requeue));
                // Nothing was attempted: objects whose retry was due keep their count.
                for object in attempted {
                    self.rearm(&object, now);
                }
            }
            Ok(report) => {
                self.whole = None;
                self.retries.retain(|object, _| report.objects.contains_key(object));
                for (object, state) in &report.objects {
                    let due = attempted.contains(object);
                    match state {
                        ObjectState::Failed { error, requeue } => match self.retries.get(object) {
                            // Failed again while backing off (tried by a reconcile
                            // another trigger started): keep the schedule.
                            Some(_) if !due => {}
                            previous => {
                                let failures = previous.map_or(0, |r| r.failures) + 1;
                                let retry = self.retry_state(now, failures, error.clone(), *requeue);
                                self.retries.insert(object.clone(), retry);
                            }
                        },
                        ObjectState::Skipped { .. } if due => self.rearm(object, now),
                        ObjectState::Skipped { .. } => {}
                        _ => {
                            self.retries.remove(object);
                        }
                    }
                }
            }
        }
    }

    /// Objects waiting for a retry, by object.
    pub fn retries(&self) -> &BTreeMap<ObjectRef, RetryState> {
        &self.retries
    }

    /// The pending retry after a failed reconcile, if any.
    pub fn whole_retry(&self) -> Option<&RetryState> {
        self.whole.as_ref()
    }

    /// The error policy: a transient failure is due after the backoff delay of its
    /// failure count; a permanent one waits for a change (no due time).
    fn retry_state(&mut self, now: Instant, failures: u32, error: String, requeue: Requeue) -> RetryState {
        let at = match requeue {
            Requeue::Backoff => {
                let sample: f64 = self.rng.random();
                Some(now + self.config.backoff.delay(failures, sample))
            }
            Requeue::AwaitChange => None,
        };
        RetryState { failures, at, error }
    }

    /// A due retry that was not attempted after all: wait again, same failure count
    /// and policy.
    fn rearm(&mut self, object: &ObjectRef, now: Instant) {
        if let Some(retry) = self.retries.get(object).cloned() {
            let requeue = if retry.at.is_some() { Requeue::Backoff } else { Requeue::AwaitChange };
            let again = self.retry_state(now, retry.failures, retry.error, requeue);
            self.retries.insert(object.clone(), again);
        }
    }
}

/// Whether `trigger` says the input (the manifests, or what the controller knows of
/// them) may have changed: only then are permanent failures tried again.
pub fn may_change_input(trigger: &Trigger) -> bool {
    matches!(
        trigger,
        Trigger::Startup
            | Trigger::FileChange
            | Trigger::GitPull
            | Trigger::Signal
            | Trigger::Leadership
            | Trigger::Requested
            | Trigger::Resync
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::contract::{FailureStage, ReconcileFailure, ReconcileReport, Requeue};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn config() -> SchedulerConfig {
        SchedulerConfig {
            debounce: ms(300),
            max_debounce: secs(5),
            resync: secs(60),
            backoff: Backoff { initial: secs(1), max: secs(30), factor: 2.0, jitter: 0.0 },
        }
    }

    fn report(states: &[(&str, ObjectState)]) -> ReconcileOutcome {
        let objects = states.iter().map(|(id, s)| (ObjectRef::app(*id), s.clone())).collect();
        Ok(ReconcileReport { objects, ..Default::default() })
    }

    fn failed(error: &str) -> ObjectState {
        ObjectState::failed(error)
    }

    fn failed_permanently(error: &str) -> ObjectState {
        ObjectState::Failed { error: error.into(), requeue: Requeue::AwaitChange }
    }

    /// Run the scheduler as the controller does, with instant reconciles answering
    /// `answer(batch)`, until `until`; returns (time since t0, batch) of every reconcile.
    fn drive(
        s: &mut Scheduler,
        t0: Instant,
        until: Duration,
        mut answer: impl FnMut(&Batch) -> ReconcileOutcome,
    ) -> Vec<(Duration, Batch)> {
        let mut seen = Vec::new();
        loop {
            let now = s.next_due();
            if now > t0 + until {
                return seen;
            }
            let batch = s.take_due(now).expect("due at next_due");
            s.finished(now, &answer(&batch));
            seen.push((now - t0, batch));
        }
    }

    #[test]
    fn immediate_triggers_are_due_now_and_collapse() {
        let t0 = Instant::now();
        let mut s = Scheduler::with_seed(config(), t0, 1);
        assert_eq!(s.next_due(), t0 + secs(60), "idle: only the resync is pending");
        assert_eq!(s.take_due(t0), None);
        s.request(Trigger::Startup, t0);
        s.request(Trigger::Signal, t0 + ms(1));
        s.request(Trigger::Startup, t0 + ms(2));
        assert_eq!(s.next_due(), t0);
        let batch = s.take_due(t0 + ms(2)).unwrap();
        assert_eq!(batch.reasons, [Trigger::Startup, Trigger::Signal]);
        assert_eq!(s.take_due(t0 + ms(2)), None, "taken once");
    }

    #[test]
    fn a_burst_of_file_events_becomes_one_batch_after_the_quiet_period() {
        let t0 = Instant::now();
        let mut s = Scheduler::with_seed(config(), t0, 1);
        for i in 0..50 {
            s.request(Trigger::FileChange, t0 + ms(i * 2));
        }
        let last = t0 + ms(98);
        assert_eq!(s.next_due(), last + ms(300));
        assert_eq!(s.take_due(last + ms(299)), None, "still inside the quiet period");
        let batch = s.take_due(last + ms(300)).unwrap();
        assert_eq!(batch.reasons, [Trigger::FileChange]);
        s.finished(last + ms(300), &report(&[]));
        assert_eq!(s.next_due(), last + ms(300) + secs(60), "nothing else pending");
    }

    #[test]
    fn a_git_pull_and_the_file_events_of_its_checkout_are_one_batch() {
        let t0 = Instant::now();
        let mut s = Scheduler::with_seed(config(), t0, 1);
        s.request(Trigger::FileChange, t0);
        s.request(Trigger::GitPull, t0 + ms(20));
        s.request(Trigger::FileChange, t0 + ms(120));
        assert_eq!(s.take_due(t0 + ms(300)), None);
        let batch = s.take_due(t0 + ms(420)).unwrap();
        assert_eq!(batch.reasons, [Trigger::FileChange, Trigger::GitPull]);
    }

    #[test]
    fn a_steady_stream_of_events_is_not_postponed_forever() {
        let t0 = Instant::now();
        let mut s = Scheduler::with_seed(config(), t0, 1);
        let mut now = t0;
        while now < t0 + secs(4) {
            s.request(Trigger::LiveEvent, now);
            now += ms(100);
        }
        assert_eq!(s.next_due(), t0 + secs(4) - ms(100) + ms(300));
        s.request(Trigger::LiveEvent, t0 + ms(4900));
        assert_eq!(s.next_due(), t0 + secs(5), "capped by max_debounce");
    }

    #[test]
    fn a_timer_does_not_cut_a_burst_short() {
        let t0 = Instant::now();
        let mut s = Scheduler::with_seed(config(), t0, 1);
        s.request(Trigger::FileChange, t0 + secs(60) - ms(100));
        let batch = s.take_due(t0 + secs(60)).unwrap();
        assert_eq!(batch.reasons, [Trigger::Resync], "the burst stays pending");
        s.finished(t0 + secs(60), &report(&[]));
        assert_eq!(s.next_due(), t0 + secs(60) + ms(200));
        assert_eq!(s.take_due(s.next_due()).unwrap().reasons, [Trigger::FileChange]);
    }

    #[test]
    fn resync_fires_a_period_after_the_last_reconcile() {
        let t0 = Instant::now();
        let mut s = Scheduler::with_seed(config(), t0, 1);
        let seen = drive(&mut s, t0, secs(200), |_| report(&[("/a", ObjectState::Synced)]));
        let times: Vec<_> = seen.iter().map(|(t, _)| *t).collect();
        assert_eq!(times, [secs(60), secs(120), secs(180)]);
        assert!(seen.iter().all(|(_, b)| b.reasons == [Trigger::Resync]));

        // Any reconcile restarts the period.
        s.request(Trigger::Signal, t0 + secs(200));
        s.take_due(t0 + secs(200)).unwrap();
        s.finished(t0 + secs(201), &report(&[]));
        assert_eq!(s.next_due(), t0 + secs(261));
    }

    #[test]
    fn a_failing_object_backs_off_exponentially_up_to_the_cap() {
        let t0 = Instant::now();
        let mut s = Scheduler::with_seed(config(), t0, 1);
        s.request(Trigger::Startup, t0);
        let seen = drive(&mut s, t0, secs(100), |_| {
            report(&[("/bad", failed("boom")), ("/good", ObjectState::Synced)])
        });
        let times: Vec<_> = seen.iter().map(|(t, _)| t.as_secs()).collect();
        // Startup at 0, then retries 1, 2, 4, 8, 16 s apart, then 30 s (the cap).
        assert_eq!(times, [0, 1, 3, 7, 15, 31, 61, 91]);
        assert_eq!(seen[1].1.reasons, [Trigger::Retry(ObjectRef::app("/bad"))]);
        assert_eq!(s.retries()[&ObjectRef::app("/bad")].failures, 8);
        assert_eq!(s.retries()[&ObjectRef::app("/bad")].error, "boom");
        assert!(!s.retries().contains_key(&ObjectRef::app("/good")));
    }

    #[test]
    fn other_triggers_are_not_delayed_by_a_backing_off_object() {
        let t0 = Instant::now();
        let mut s = Scheduler::with_seed(config(), t0, 1);
        let bad = ObjectRef::app("/bad");
        // Fail three times: the next retry is 4 s after the third failure.
        s.request(Trigger::Startup, t0);
        let seen = drive(&mut s, t0, secs(4), |_| report(&[("/bad", failed("boom"))]));
        assert_eq!(seen.len(), 3);
        assert_eq!(s.next_due(), t0 + secs(7));

        // A live event at 4 s is reconciled after the debounce, not at 7 s, and is told
        // that /bad is still backing off; failing again there does not bump its count.
        s.request(Trigger::LiveEvent, t0 + secs(4));
        assert_eq!(s.next_due(), t0 + secs(4) + ms(300));
        let batch = s.take_due(t0 + secs(4) + ms(300)).unwrap();
        assert_eq!(batch.reasons, [Trigger::LiveEvent]);
        assert_eq!(batch.backing_off, BTreeSet::from([bad.clone()]));
        s.finished(t0 + secs(4) + ms(300), &report(&[("/bad", failed("boom"))]));
        assert_eq!(s.retries()[&bad].failures, 3);
        assert_eq!(s.next_due(), t0 + secs(7), "the retry keeps its time");

        // The retry succeeds: the object is forgotten, only the resync remains.
        let batch = s.take_due(t0 + secs(7)).unwrap();
        assert_eq!(batch.reasons, [Trigger::Retry(bad.clone())]);
        assert!(batch.backing_off.is_empty());
        s.finished(t0 + secs(7), &report(&[("/bad", ObjectState::Synced)]));
        assert!(s.retries().is_empty());
        assert_eq!(s.next_due(), t0 + secs(67));
    }

    #[test]
    fn a_due_retry_that_was_skipped_waits_again_without_spinning() {
        let t0 = Instant::now();
        let mut s = Scheduler::with_seed(config(), t0, 1);
        let bad = ObjectRef::app("/bad");
        s.request(Trigger::Startup, t0);
        s.take_due(t0).unwrap();
        s.finished(t0, &report(&[("/bad", failed("boom"))]));
        s.take_due(t0 + secs(1)).unwrap();
        let skipped = ObjectState::Skipped { reason: "waits for /db".into() };
        s.finished(t0 + secs(1), &report(&[("/bad", skipped)]));
        assert_eq!(s.retries()[&bad].failures, 1, "not attempted: not counted");
        assert_eq!(s.next_due(), t0 + secs(2), "re-armed, not due in the past");
    }

    #[test]
    fn objects_gone_from_the_manifests_are_forgotten() {
        let t0 = Instant::now();
        let mut s = Scheduler::with_seed(config(), t0, 1);
        s.request(Trigger::Startup, t0);
        s.take_due(t0).unwrap();
        s.finished(t0, &report(&[("/bad", failed("boom"))]));
        s.request(Trigger::FileChange, t0);
        s.take_due(t0 + ms(300)).unwrap();
        s.finished(t0 + ms(300), &report(&[("/other", ObjectState::Synced)]));
        assert!(s.retries().is_empty());
    }

    #[test]
    fn a_failed_reconcile_is_retried_with_backoff_and_reset_by_success() {
        let t0 = Instant::now();
        let mut s = Scheduler::with_seed(config(), t0, 1);
        let failure = ReconcileFailure::new(FailureStage::List, "marathon down", Requeue::Backoff);
        s.request(Trigger::Startup, t0);
        let mut calls = 0;
        let seen = drive(&mut s, t0, secs(20), |_| {
            calls += 1;
            if calls <= 4 { Err(failure.clone()) } else { report(&[]) }
        });
        let times: Vec<_> = seen.iter().map(|(t, _)| t.as_secs()).collect();
        assert_eq!(times, [0, 1, 3, 7, 15]);
        assert_eq!(seen[1].1.reasons, [Trigger::RetryAfterError]);
        assert!(s.whole_retry().is_none());
        assert_eq!(s.next_due(), t0 + secs(75));
    }

    #[test]
    fn jitter_spreads_retries_within_the_policy() {
        let mut c = config();
        c.backoff.jitter = 0.5;
        let t0 = Instant::now();
        let mut s = Scheduler::with_seed(c, t0, 7);
        s.request(Trigger::Startup, t0);
        s.take_due(t0).unwrap();
        let objects: Vec<_> = (0..20).map(|i| (format!("/app{i}"), failed("x"))).collect();
        let states: Vec<_> = objects.iter().map(|(id, st)| (id.as_str(), st.clone())).collect();
        s.finished(t0, &report(&states));
        let delays: BTreeSet<_> = s.retries().values().map(|r| r.at.unwrap() - t0).collect();
        assert!(delays.len() > 10, "retries are spread out: {delays:?}");
        assert!(delays.iter().all(|d| *d > ms(500) && *d <= secs(1)), "{delays:?}");
    }

    #[test]
    fn a_permanent_object_failure_waits_for_a_change_or_the_resync() {
        let t0 = Instant::now();
        let mut s = Scheduler::with_seed(config(), t0, 1);
        let bad = ObjectRef::app("/bad");
        s.request(Trigger::Startup, t0);
        s.take_due(t0).unwrap();
        s.finished(t0, &report(&[("/bad", failed_permanently("422 Object is not valid"))]));
        assert_eq!(s.retries()[&bad].at, None, "no backoff timer");
        assert_eq!(s.next_due(), t0 + secs(60), "nothing is due before the resync");

        // A live event does not retry it: Marathon's state is not the input that failed.
        s.request(Trigger::LiveEvent, t0 + secs(5));
        let batch = s.take_due(t0 + secs(5) + ms(300)).unwrap();
        assert_eq!(batch.backing_off, BTreeSet::from([bad.clone()]));
        s.finished(t0 + secs(5) + ms(300), &report(&[("/bad", ObjectState::Skipped { reason: "b".into() })]));
        assert_eq!(s.retries()[&bad].failures, 1);

        // An edit of the manifests does, without a Retry reason of its own.
        s.request(Trigger::FileChange, t0 + secs(10));
        let batch = s.take_due(t0 + secs(10) + ms(300)).unwrap();
        assert_eq!(batch.reasons, [Trigger::FileChange]);
        assert!(batch.backing_off.is_empty());
        s.finished(t0 + secs(10) + ms(300), &report(&[("/bad", failed_permanently("422"))]));
        assert_eq!((s.retries()[&bad].failures, s.retries()[&bad].at), (2, None));

        // So does the resync; a success forgets it.
        let due = s.next_due();
        assert_eq!(due, t0 + secs(70) + ms(300));
        let batch = s.take_due(due).unwrap();
        assert_eq!((batch.reasons.as_slice(), batch.backing_off.len()), ([Trigger::Resync].as_slice(), 0));
        s.finished(due, &report(&[("/bad", ObjectState::Synced)]));
        assert!(s.retries().is_empty());
    }

    #[test]
    fn a_transient_and_a_permanent_object_failure_are_requeued_differently() {
        let t0 = Instant::now();
        let mut s = Scheduler::with_seed(config(), t0, 1);
        s.request(Trigger::Startup, t0);
        let seen = drive(&mut s, t0, secs(20), |_| {
            report(&[("/unavailable", failed("503")), ("/invalid", failed_permanently("422"))])
        });
        let times: Vec<_> = seen.iter().map(|(t, _)| t.as_secs()).collect();
        assert_eq!(times, [0, 1, 3, 7, 15], "only the 503 is retried on its backoff");
        assert!(seen[1..].iter().all(|(_, b)| b.reasons == [Trigger::Retry(ObjectRef::app("/unavailable"))]));
        assert_eq!(s.retries()[&ObjectRef::app("/invalid")].failures, 1);
    }

    #[test]
    fn a_permanent_reconcile_failure_waits_for_a_change_or_the_resync() {
        let t0 = Instant::now();
        let mut s = Scheduler::with_seed(config(), t0, 1);
        let bad_yaml = ReconcileFailure::new(FailureStage::Load, "bad yaml", Requeue::AwaitChange);
        s.request(Trigger::Startup, t0);
        let seen = drive(&mut s, t0, secs(100), |_| Err(bad_yaml.clone()));
        let times: Vec<_> = seen.iter().map(|(t, _)| t.as_secs()).collect();
        assert_eq!(times, [0, 60], "no retry timer: the resync alone");
        assert!(seen[1].1.reasons == [Trigger::Resync]);
        assert_eq!(s.whole_retry().map(|w| (w.failures, w.at)), Some((2, None)));
        // The fix arrives as a file change.
        s.request(Trigger::FileChange, t0 + secs(100));
        let batch = s.take_due(t0 + secs(100) + ms(300)).unwrap();
        assert_eq!(batch.reasons, [Trigger::FileChange]);
        s.finished(t0 + secs(100) + ms(300), &report(&[]));
        assert!(s.whole_retry().is_none());
    }

    #[test]
    fn an_unchanged_input_leaves_the_batch_and_permanent_failures_waiting() {
        let t0 = Instant::now();
        let mut s = Scheduler::with_seed(config(), t0, 1);
        s.request(Trigger::Startup, t0);
        s.take_due(t0).unwrap();
        s.finished(t0, &report(&[("/invalid", failed_permanently("422")), ("/web", ObjectState::Synced)]));
        let invalid = ObjectRef::app("/invalid");

        // File events and a pull with a live event: the live event alone is left, and
        // the permanent failure, which only a change retries, waits again.
        s.request(Trigger::FileChange, t0 + secs(1));
        s.request(Trigger::GitPull, t0 + secs(1));
        s.request(Trigger::LiveEvent, t0 + secs(1) + ms(10));
        let due = s.next_due();
        let mut batch = s.take_due(due).unwrap();
        assert_eq!(batch.reasons, [Trigger::FileChange, Trigger::LiveEvent, Trigger::GitPull]);
        assert!(batch.backing_off.is_empty(), "a file change retries permanent failures");
        assert!(s.drop_unchanged_input(&mut batch));
        assert_eq!(batch.reasons, [Trigger::LiveEvent]);
        assert_eq!(batch.backing_off, [invalid.clone()].into());
        let skipped = ObjectState::Skipped { reason: "backing off".into() };
        s.finished(due, &report(&[("/invalid", skipped), ("/web", ObjectState::Synced)]));
        assert_eq!(s.retries()[&invalid].failures, 1, "not counted as tried");
        let resync = s.resync_at();

        // File events alone: nothing is left to run, and nothing moves.
        s.request(Trigger::FileChange, t0 + secs(5));
        let due = s.next_due();
        let mut batch = s.take_due(due).unwrap();
        assert!(!s.drop_unchanged_input(&mut batch));
        assert!(batch.reasons.is_empty());
        assert_eq!((s.next_due(), s.resync_at()), (resync, resync), "only the resync is pending");
        assert_eq!(s.retries()[&invalid], RetryState { failures: 1, at: None, error: "422".into() });
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// What a simulated reconcile answers.
        #[derive(Clone, Debug)]
        enum Answer {
            AllSynced,
            Fails(Vec<u8>),
            Skips(Vec<u8>),
            WholeFailure,
            PermanentFailure,
            FailsPermanently(Vec<u8>),
        }

        fn answer(a: &Answer) -> ReconcileOutcome {
            let state_of = |ids: &[u8], state: ObjectState| {
                let mut objects: BTreeMap<_, _> =
                    (0..4u8).map(|i| (ObjectRef::app(format!("/a{i}")), ObjectState::Synced)).collect();
                for id in ids {
                    objects.insert(ObjectRef::app(format!("/a{}", id % 4)), state.clone());
                }
                Ok(ReconcileReport { objects, ..Default::default() })
            };
            match a {
                Answer::AllSynced => state_of(&[], ObjectState::Synced),
                Answer::Fails(ids) => state_of(ids, failed("boom")),
                Answer::Skips(ids) => state_of(ids, ObjectState::Skipped { reason: "waits".into() }),
                Answer::WholeFailure => {
                    Err(ReconcileFailure::new(FailureStage::List, "down", Requeue::Backoff))
                }
                Answer::PermanentFailure => {
                    Err(ReconcileFailure::new(FailureStage::Load, "bad yaml", Requeue::AwaitChange))
                }
                Answer::FailsPermanently(ids) => state_of(ids, failed_permanently("422")),
            }
        }

        fn answers() -> impl Strategy<Value = Answer> {
            prop_oneof![
                Just(Answer::AllSynced),
                prop::collection::vec(0..4u8, 1..3).prop_map(Answer::Fails),
                prop::collection::vec(0..4u8, 1..3).prop_map(Answer::Skips),
                Just(Answer::WholeFailure),
                Just(Answer::PermanentFailure),
                prop::collection::vec(0..4u8, 1..3).prop_map(Answer::FailsPermanently),
            ]
        }

        fn triggers() -> impl Strategy<Value = Trigger> {
            prop_oneof![
                Just(Trigger::FileChange),
                Just(Trigger::LiveEvent),
                Just(Trigger::GitPull),
                Just(Trigger::Signal),
                Just(Trigger::Startup),
            ]
        }

        proptest! {
            /// Driven as the controller drives it: every request is served within its
            /// bound (immediate: at once; debounced: within max_debounce), every batch
            /// has a reason, and the scheduler never asks to run again at once unless a
            /// request is pending (no busy loop).
            #[test]
            fn requests_are_served_in_time_and_the_loop_never_spins(
                // Mostly bursts (gaps inside the debounce), sometimes quiet.
                requests in prop::collection::vec((prop_oneof![4 => 0u64..250, 1 => 0u64..3000], triggers()), 1..40),
                outcomes in prop::collection::vec(answers(), 1..10),
                jitter in 0.0..0.5f64,
            ) {
                let mut c = config();
                c.backoff.jitter = jitter;
                c.max_debounce = Duration::from_secs(1);
                let t0 = Instant::now();
                let mut s = Scheduler::with_seed(c, t0, 3);
                let mut waiting: Vec<(Trigger, Instant)> = Vec::new();
                let mut outcome = outcomes.iter().cycle();
                let mut now = t0;
                let mut run_until = |s: &mut Scheduler, waiting: &mut Vec<(Trigger, Instant)>, limit: Instant| {
                    let mut runs = 0;
                    while s.next_due() <= limit {
                        let due = s.next_due();
                        let batch = s.take_due(due).expect("due at next_due");
                        prop_assert!(!batch.reasons.is_empty());
                        // Everything requested so far, served now or still waiting, is
                        // within its bound.
                        for (t, at) in waiting.iter() {
                            let bound = match t {
                                Trigger::FileChange | Trigger::LiveEvent | Trigger::GitPull => c.max_debounce,
                                _ => Duration::ZERO,
                            };
                            prop_assert!(due <= *at + bound, "{t} requested at {at:?} still waits at {due:?}");
                        }
                        waiting.retain(|(t, _)| !batch.reasons.contains(t));
                        s.finished(due, &answer(outcome.next().unwrap()));
                        if s.reasons.is_empty() {
                            prop_assert!(s.next_due() > due, "would spin after {batch:?}");
                        }
                        runs += 1;
                        prop_assert!(runs < 10_000, "runaway loop");
                    }
                    Ok(())
                };
                for (gap, trigger) in &requests {
                    now += ms(*gap);
                    run_until(&mut s, &mut waiting, now)?;
                    s.request(trigger.clone(), now);
                    waiting.push((trigger.clone(), now));
                }
                run_until(&mut s, &mut waiting, now + c.max_debounce)?;
                prop_assert!(waiting.is_empty(), "never served: {waiting:?}");
            }
        }
    }
}
