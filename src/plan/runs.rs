//! Run-once jobs (`sync.run: onChange`) in the plan: whether a job must be run (or
//! waited for) and which dependants must wait. Pure: everything is read from the live
//! listing and the manifests, so a restarted controller decides exactly as the one
//! that was killed would have.
//!
//! What "succeeded for this definition" is made of (the state that survives a
//! restart, ARCHITECTURE.md "Run-once jobs"):
//! - the **run record** mesosync writes into the job's description with every write,
//!   `[mesosync-run:<definition fingerprint>]` ([`definition`],
//!   `normalize::chronos::with_run_marker`), never compared;
//! - Chronos's **run statistics** on the job (`successCount`, `errorCount`,
//!   `lastSuccess`, `lastError`, `errorsSinceLastSuccess`). Chronos resets them when a
//!   job is replaced (the POST body has none), and mesosync echoes them only when it
//!   rewrites a job whose record already matches (a repair of drift, not a new
//!   definition). So on a job whose record matches the manifest, the statistics count
//!   the runs of the current definition, with no clock of ours compared to Chronos's.
//!
//! Decisions (one per run-once job, [`plan_runs`]):
//! - a write of a new definition (create, update, replace, adopt) carries the record
//!   and a [`RunOnce`]: apply starts a run after the write and waits for it;
//! - equal, record matching, last run succeeded: done ([`Decision::Equal`]);
//! - equal, no matching record: [`RunCause::Unrecorded`] (written again with the
//!   record, statistics reset, then run);
//! - equal, record matching, not succeeded, fewer than [`MAX_RUNS`] failed runs:
//!   [`RunCause::NotSucceeded`] (apply starts a run, or waits for one in flight);
//! - [`MAX_RUNS`] runs of this definition failed: held ([`HoldReason::RunFailed`]);
//!   no endless run loop, a new definition starts again from zero;
//! - equal and done, but every Chronos parent runs in this apply: Chronos runs it
//!   after them, and apply waits for that run ([`RunCause::AfterParents`]).
//!
//! Finally every write that depends on a run-once job that is not done and does not
//! run in this apply is held ([`HoldReason::WaitsForJob`], transitively): a failed job
//! blocks its dependants and only them.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Action, Decision, HoldReason, Write};
use crate::model::{DesiredObject, DesiredState, LiveObject, ObjectKind, ObjectRef, fingerprint};
use crate::normalize::canonical_text;
use crate::normalize::chronos::{STAT_FIELDS, canonical_job, recorded_run, with_run_marker};

/// Runs of one definition mesosync starts at most (the first and two retries) before
/// it leaves the job failed until its definition changes.
pub const MAX_RUNS: u64 = 3;

/// The fingerprint of a job's definition, as recorded on it: its manifest spec in
/// Chronos's canonical form (defaults filled, sets sorted, whatever the server
/// version), so that rewording a manifest without changing the job does not re-run it.
pub fn definition(spec: &Value) -> String {
    format!("{:016x}", fingerprint(canonical_text(&canonical_job(spec, None, true)).as_bytes()))
}

/// A job's run statistics as Chronos reports them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// `successCount`.
    pub successes: u64,
    /// `errorCount`: runs that failed after Chronos's own retries.
    pub errors: u64,
    /// `errorsSinceLastSuccess`.
    pub errors_since_success: u64,
    /// `lastSuccess`.
    pub last_success: Option<DateTime<Utc>>,
    /// `lastError`.
    pub last_error: Option<DateTime<Utc>>,
}

fn instant(v: Option<&Value>) -> Option<DateTime<Utc>> {
    let text = v?.as_str()?;
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

impl RunStats {
    /// Read from a job as listed.
    pub fn of(job: &Value) -> Self {
        let count = |k: &str| job.get(k).and_then(Value::as_u64).unwrap_or(0);
        RunStats {
            successes: count("successCount"),
            errors: count("errorCount"),
            errors_since_success: count("errorsSinceLastSuccess"),
            last_success: instant(job.get("lastSuccess")),
            last_error: instant(job.get("lastError")),
        }
    }

    /// Whether its latest run succeeded.
    pub fn succeeded(&self) -> bool {
        match (self.last_success, self.last_error) {
            (Some(s), Some(e)) => s >= e,
            (Some(_), None) => true,
            (None, _) => self.successes > 0 && self.errors == 0,
        }
    }

    /// The members to echo in a body so that a rewrite keeps them.
    fn echo(&self, job: &Value, body: &mut Value) {
        if let Value::Object(map) = body {
            for field in STAT_FIELDS {
                if let Some(v) = job.get(*field) {
                    map.insert((*field).to_string(), v.clone());
                }
            }
        }
    }
}

/// The runs in words: "last run failed at 2026-11-30 08:12:03 UTC, 2 errors since last
/// success", "never run for this definition", "last run succeeded at …".
impl fmt::Display for RunStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
        match (self.succeeded(), self.last_success, self.last_error) {
            (true, Some(s), _) => write!(f, "last run succeeded at {}", at(s)),
            (false, _, Some(e)) => {
                write!(
                    f,
                    "last run failed at {}, {} error(s) since last success",
                    at(e),
                    self.errors_since_success
                )
            }
            _ if self.successes + self.errors == 0 => f.write_str("not run yet for this definition"),
            _ => write!(f, "{} run(s) succeeded, {} failed", self.successes, self.errors),
        }
    }
}

/// Why a run-once job that is equal to its manifest is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunCause {
    /// Written for this definition, and no run of it succeeded yet (or the last one
    /// failed, with runs left).
    NotSucceeded,
    /// It carries no run record of this definition (new to `sync.run: onChange`, or
    /// written by someone else): written again with the record, then run.
    Unrecorded,
    /// Every Chronos parent runs in this apply: Chronos runs it after they succeed,
    /// and its dependants wait for that run.
    AfterParents,
}

/// Who starts the run apply waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunStart {
    /// mesosync (`PUT …/job/NAME`), unless one is in flight already.
    Mesosync,
    /// Chronos, after the job's parents succeed in this apply.
    Parents,
}

/// A run apply makes (or waits for) after an action's write, if any: the job is done
/// only once a run of its current definition succeeded.
#[derive(Clone, Debug, PartialEq)]
pub struct RunOnce {
    /// The definition fingerprint the job carries (or will, once written).
    pub definition: String,
    /// Who starts the run.
    pub start: RunStart,
    /// Runs of this definition that failed already (from the live statistics).
    pub failed_runs: u64,
    /// The statistics the plan saw: a run Chronos starts after the parents is one
    /// that moves them on from these.
    pub seen: RunStats,
    /// `sync.timeout`: the bound on the whole wait, retries included.
    pub timeout: Duration,
}

/// Decide the run of every run-once job and hold the dependants of those that are
/// not done. `actions` are in desired order (apps, then jobs), one per desired object.
pub(super) fn plan_runs<'l>(
    desired: &DesiredState,
    live: &dyn Fn(&str) -> Option<&'l LiveObject>,
    actions: &mut [&mut Action],
    body_of: &dyn Fn(&DesiredObject, Option<&Value>) -> Value,
) {
    // Run-once jobs that are not done and do not run here, with why.
    let mut not_done: HashMap<ObjectRef, (ObjectRef, RunStats)> = HashMap::new();
    let mut runs: HashSet<String> = HashSet::new();
    let mut done: HashMap<String, RunStats> = HashMap::new();
    for (d, action) in desired.objects().zip(actions.iter_mut()) {
        if d.object.kind != ObjectKind::ChronosJob || !d.sync.runs_once() {
            continue;
        }
        let job = live(&d.object.id).map(LiveObject::value);
        match decide(d, job.as_ref(), action, body_of) {
            Verdict::Runs => {
                runs.insert(d.object.id.clone());
            }
            Verdict::Done(stats) => {
                done.insert(d.object.id.clone(), stats);
            }
            Verdict::NotDone(stats) => {
                not_done.insert(d.object.clone(), (d.object.clone(), stats));
            }
        }
    }
    // Chronos runs a dependent job after all its parents succeeded: a done job all of
    // whose parents run here runs again (in parents-first order, to a fixed point).
    let jobs = &desired.jobs;
    let offset = desired.apps.len();
    loop {
        let mut changed = false;
        for (i, d) in jobs.iter().enumerate() {
            let Some(stats) = done.get(&d.object.id).cloned() else { continue };
            let parents = chronos_parents(d);
            if parents.is_empty() || !parents.iter().all(|p| runs.contains(p)) {
                continue;
            }
            let action = &mut actions[offset + i];
            if action.decision != Decision::Equal {
                continue;
            }
            action.decision = Write::Run(RunCause::AfterParents).into();
            action.run = Some(RunOnce {
                definition: definition(&d.spec.value()),
                start: RunStart::Parents,
                failed_runs: 0,
                seen: stats,
                timeout: d.sync.timeout_for(ObjectKind::ChronosJob).duration(),
            });
            done.remove(&d.object.id);
            runs.insert(d.object.id.clone());
            changed = true;
        }
        if !changed {
            break;
        }
    }
    hold_dependants(desired, actions, not_done);
}

/// The `parents` of a job's spec (not `sync.dependsOn`).
fn chronos_parents(d: &DesiredObject) -> Vec<String> {
    let spec = d.spec.value();
    let parents = spec.get("parents").and_then(Value::as_array);
    parents.into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect()
}

enum Verdict {
    Runs,
    Done(RunStats),
    NotDone(RunStats),
}

/// The run decision of one run-once job.
fn decide(
    d: &DesiredObject,
    job: Option<&Value>,
    action: &mut Action,
    body_of: &dyn Fn(&DesiredObject, Option<&Value>) -> Value,
) -> Verdict {
    let def = definition(&d.spec.value());
    let recorded = job.and_then(recorded_run) == Some(def.as_str());
    let stats = match job {
        Some(j) if recorded => RunStats::of(j),
        _ => RunStats::default(),
    };
    let run = |failed_runs: u64| RunOnce {
        definition: def.clone(),
        start: RunStart::Mesosync,
        failed_runs,
        seen: stats.clone(),
        timeout: d.sync.timeout_for(ObjectKind::ChronosJob).duration(),
    };
    let exhausted = !stats.succeeded() && stats.errors >= MAX_RUNS;
    match &action.decision {
        Decision::Write(Write::Create | Write::Update | Write::Replace { .. } | Write::Adopt { .. }) => {
            if let Some(body) = action.body.as_mut() {
                with_run_marker(body, &def);
                if let (true, Some(j)) = (recorded, job) {
                    stats.echo(j, body);
                }
            }
            if recorded && stats.succeeded() {
                Verdict::Done(stats)
            } else if exhausted {
                Verdict::NotDone(stats)
            } else {
                action.run = Some(run(stats.errors));
                Verdict::Runs
            }
        }
        Decision::Equal if !recorded => {
            let mut body = body_of(d, job);
            with_run_marker(&mut body, &def);
            action.decision = Write::Run(RunCause::Unrecorded).into();
            action.body = Some(body);
            action.run = Some(run(0));
            Verdict::Runs
        }
        Decision::Equal if stats.succeeded() => Verdict::Done(stats),
        Decision::Equal if exhausted => {
            action.decision =
                Decision::Hold(HoldReason::RunFailed { stats: stats.clone(), runs: stats.errors });
            Verdict::NotDone(stats)
        }
        Decision::Equal => {
            action.decision = Write::Run(RunCause::NotSucceeded).into();
            action.run = Some(run(stats.errors));
            Verdict::Runs
        }
        // Held (suspended, not owned, …): not run by mesosync; done if it succeeded.
        _ if recorded && stats.succeeded() => Verdict::Done(stats),
        _ => Verdict::NotDone(stats),
    }
}

/// Hold every write that depends (directly or through held writes) on a run-once job
/// that is not done and does not run in this apply.
fn hold_dependants(
    desired: &DesiredState,
    actions: &mut [&mut Action],
    mut waits_on: HashMap<ObjectRef, (ObjectRef, RunStats)>,
) {
    if waits_on.is_empty() {
        return;
    }
    // Held writes can hold their own dependants: repeat to a fixed point (each pass
    // holds at least one more write, or ends).
    loop {
        let mut changed = false;
        for (d, action) in desired.objects().zip(actions.iter_mut()) {
            if !action.is_write() {
                continue;
            }
            let Some((job, stats)) = d.dependencies().iter().find_map(|r| waits_on.get(r)).cloned() else {
                continue;
            };
            action.hold(HoldReason::WaitsForJob { job: job.id.as_str().into(), stats: stats.clone() });
            action.run = None;
            waits_on.insert(d.object.clone(), (job, stats));
            changed = true;
        }
        if !changed {
            break;
        }
    }
}

/// `job` as Chronos holds it once a run of `spec`'s definition succeeded at `now`
/// (the offline preview takes a base revision as applied, runs included).
pub(super) fn as_run(job: &mut Value, spec: &Value, now: DateTime<Utc>) {
    with_run_marker(job, &definition(spec));
    if let Value::Object(map) = job {
        map.insert("successCount".into(), json!(1));
        map.insert("lastSuccess".into(), json!(now.to_rfc3339()));
    }
}

/// A job body with its run statistics, for tests.
#[cfg(test)]
pub(crate) fn with_stats(
    job: Value,
    successes: u64,
    errors: u64,
    last_success: &str,
    last_error: &str,
) -> Value {
    let mut job = job;
    let since = if last_error > last_success { errors } else { 0 };
    job.as_object_mut().map(|m| {
        m.insert("successCount".into(), json!(successes));
        m.insert("errorCount".into(), json!(errors));
        m.insert("errorsSinceLastSuccess".into(), json!(since));
        m.insert("lastSuccess".into(), json!(last_success));
        m.insert("lastError".into(), json!(last_error))
    });
    job
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LiveState, Provenance, RunPolicy, SyncOptions};
    use crate::normalize::chronos::with_owner_marker;
    use crate::plan::{ActionKind, Plan, PlanOptions, compute};

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn spec(name: &str, parents: &[&str]) -> Value {
        if parents.is_empty() {
            json!({"name": name, "command": "migrate", "schedule": "R0//P1D"})
        } else {
            json!({"name": name, "command": "migrate", "parents": parents})
        }
    }

    fn job(name: &str, parents: &[&str], once: bool) -> DesiredObject {
        let sync = SyncOptions {
            run: if once { RunPolicy::OnChange } else { RunPolicy::Chronos },
            ..Default::default()
        };
        DesiredObject::new(ObjectRef::job(name), sync, &spec(name, parents), Provenance::default())
    }

    fn app(id: &str, depends_on: &str) -> DesiredObject {
        let sync = SyncOptions { depends_on: vec![depends_on.into()], ..Default::default() };
        DesiredObject::new(ObjectRef::app(id), sync, &json!({"id": id, "cmd": "run"}), Provenance::default())
    }

    /// The job as Chronos lists it after mesosync wrote `spec` (record included), with
    /// statistics.
    fn live(spec: &Value, successes: u64, errors: u64, last_success: &str, last_error: &str) -> Value {
        let mut body = spec.clone();
        with_owner_marker(&mut body, "mesosync");
        with_run_marker(&mut body, &definition(spec));
        with_stats(body, successes, errors, last_success, last_error)
    }

    fn plan(desired: Vec<DesiredObject>, jobs: Vec<Value>) -> Plan {
        let (apps, jobs_d): (Vec<_>, Vec<_>) =
            desired.into_iter().partition(|d| d.object.kind == ObjectKind::MarathonApp);
        let desired = DesiredState { apps, jobs: jobs_d, ..Default::default() };
        compute(&desired, &LiveState::from_values(&[], &jobs), &PlanOptions::default(), now())
    }

    fn decision(plan: &Plan, object: &ObjectRef) -> Decision {
        plan.action(object).unwrap().decision.clone()
    }

    const T1: &str = "2026-05-31T08:12:03.000Z";
    const T2: &str = "2026-05-31T09:00:00.000Z";

    #[test]
    fn a_new_run_once_job_is_created_with_its_record_and_run() {
        let p = plan(vec![job("db-sync", &[], true)], vec![]);
        let a = p.action(&ObjectRef::job("db-sync")).unwrap();
        assert_eq!(a.kind(), ActionKind::Create);
        let record = recorded_run(a.body.as_ref().unwrap()).unwrap();
        assert_eq!(record, definition(&spec("db-sync", &[])));
        let run = a.run.as_ref().unwrap();
        assert_eq!((run.start, run.failed_runs), (RunStart::Mesosync, 0));
        assert_eq!(run.timeout, Duration::from_secs(1800), "the default job timeout");
        // A job Chronos runs by itself gets neither.
        let p = plan(vec![job("nightly", &[], false)], vec![]);
        let a = p.action(&ObjectRef::job("nightly")).unwrap();
        assert!(a.run.is_none() && recorded_run(a.body.as_ref().unwrap()).is_none());
    }

    #[test]
    fn equal_jobs_run_until_a_run_of_their_definition_succeeded() {
        let s = spec("db-sync", &[]);
        let done = plan(vec![job("db-sync", &[], true)], vec![live(&s, 1, 0, T1, "")]);
        assert_eq!(decision(&done, &ObjectRef::job("db-sync")), Decision::Equal);
        let never = plan(vec![job("db-sync", &[], true)], vec![live(&s, 0, 0, "", "")]);
        assert_eq!(decision(&never, &ObjectRef::job("db-sync")), Write::Run(RunCause::NotSucceeded).into());
        let failed_once = plan(vec![job("db-sync", &[], true)], vec![live(&s, 0, 1, "", T1)]);
        let a = failed_once.action(&ObjectRef::job("db-sync")).unwrap();
        assert_eq!(a.decision, Write::Run(RunCause::NotSucceeded).into());
        assert_eq!(a.run.as_ref().unwrap().failed_runs, 1, "counted from the live statistics");
        // Succeeded, then failed later: its latest run counts.
        let later_failure = plan(vec![job("db-sync", &[], true)], vec![live(&s, 1, 1, T1, T2)]);
        assert_eq!(decision(&later_failure, &ObjectRef::job("db-sync")).kind(), ActionKind::Run);
    }

    #[test]
    fn a_job_without_the_record_of_its_definition_is_written_again_then_run() {
        let s = spec("db-sync", &[]);
        let mut unrecorded = s.clone();
        with_owner_marker(&mut unrecorded, "mesosync");
        let unrecorded = with_stats(unrecorded, 5, 0, T1, "");
        let p = plan(vec![job("db-sync", &[], true)], vec![unrecorded]);
        let a = p.action(&ObjectRef::job("db-sync")).unwrap();
        assert_eq!(a.decision, Write::Run(RunCause::Unrecorded).into());
        assert_eq!(recorded_run(a.body.as_ref().unwrap()), Some(definition(&s).as_str()));
        assert!(a.body.as_ref().unwrap().get("successCount").is_none(), "statistics start again");
    }

    #[test]
    fn a_changed_definition_resets_the_count_and_a_repair_keeps_it() {
        let old = spec("db-sync", &[]);
        let mut new_desired = job("db-sync", &[], true);
        new_desired.spec = crate::model::Spec::new(
            &json!({"name": "db-sync", "command": "migrate --v2", "schedule": "R0//P1D"}),
        );
        // Three failed runs of the old definition: the new one starts from zero.
        let p = plan(vec![new_desired], vec![live(&old, 0, 3, "", T1)]);
        let a = p.action(&ObjectRef::job("db-sync")).unwrap();
        assert_eq!(a.kind(), ActionKind::Update);
        assert_eq!(a.run.as_ref().unwrap().failed_runs, 0);
        assert!(a.body.as_ref().unwrap().get("errorCount").is_none());
        // Same definition, live drifted (Chronos 3.x made R0 endless): rewritten with
        // its statistics, not run again.
        let mut drifted = live(&old, 1, 0, T1, "");
        drifted["schedule"] = json!("R/2026-06-02T00:00:00.000Z/P1D");
        let p = plan(vec![job("db-sync", &[], true)], vec![drifted]);
        let a = p.action(&ObjectRef::job("db-sync")).unwrap();
        assert_eq!(a.kind(), ActionKind::Update);
        assert!(a.run.is_none(), "already succeeded for this definition");
        assert_eq!(a.body.as_ref().unwrap()["successCount"], 1);
        assert_eq!(a.body.as_ref().unwrap()["lastSuccess"], T1);
    }

    #[test]
    fn after_max_runs_the_job_is_left_failed_and_blocks_only_its_dependants() {
        let s = spec("db-sync", &[]);
        let p = plan(
            vec![
                job("db-sync", &[], true),
                job("bootstrap", &["db-sync"], true),
                app("/keystone-api", "bootstrap"),
                job("other", &[], true),
            ],
            vec![live(&s, 0, MAX_RUNS, "", T1)],
        );
        let failed = decision(&p, &ObjectRef::job("db-sync"));
        assert!(matches!(failed, Decision::Hold(HoldReason::RunFailed { runs: 3, .. })), "{failed:?}");
        let words = failed.note().unwrap();
        assert!(
            words.contains("last run failed at 2026-05-31 08:12:03 UTC, 3 error(s) since last success"),
            "{words}"
        );
        // Its child (not created yet) and the app behind it wait, with the reason.
        let child = decision(&p, &ObjectRef::job("bootstrap"));
        assert_eq!(
            child.note().unwrap(),
            "waits for job db-sync: last run failed at 2026-05-31 08:12:03 UTC, 3 error(s) since last success"
        );
        assert!(matches!(
            decision(&p, &ObjectRef::app("/keystone-api")),
            Decision::Hold(HoldReason::WaitsForJob { .. })
        ));
        // An unrelated job proceeds.
        assert_eq!(decision(&p, &ObjectRef::job("other")).kind(), ActionKind::Create);
    }

    #[test]
    fn a_done_child_of_parents_that_run_is_waited_for_not_started() {
        let parent = spec("db-create", &[]);
        let child = spec("db-sync", &["db-create"]);
        let mut parent_desired = job("db-create", &[], true);
        parent_desired.spec = crate::model::Spec::new(
            &json!({"name": "db-create", "command": "create v2", "schedule": "R0//P1D"}),
        );
        let p = plan(
            vec![parent_desired, job("db-sync", &["db-create"], true)],
            vec![live(&parent, 1, 0, T1, ""), live(&child, 1, 0, T2, "")],
        );
        assert_eq!(p.action(&ObjectRef::job("db-create")).unwrap().kind(), ActionKind::Update);
        let a = p.action(&ObjectRef::job("db-sync")).unwrap();
        assert_eq!(a.decision, Write::Run(RunCause::AfterParents).into());
        let run = a.run.as_ref().unwrap();
        assert_eq!((run.start, run.seen.successes), (RunStart::Parents, 1));
        assert!(a.depends_on.contains(&ObjectRef::job("db-create")), "ordered after its parent");
    }

    #[test]
    fn run_statistics_in_words() {
        let s = |j: Value| RunStats::of(&j).to_string();
        assert_eq!(s(json!({})), "not run yet for this definition");
        assert_eq!(s(with_stats(json!({}), 2, 0, T2, "")), "last run succeeded at 2026-05-31 09:00:00 UTC");
        assert_eq!(
            s(with_stats(json!({}), 1, 2, T1, T2)),
            "last run failed at 2026-05-31 09:00:00 UTC, 2 error(s) since last success"
        );
    }
}
