//! The health of every managed object, in Argo CD's vocabulary: [`Health::Healthy`],
//! `Progressing`, `Degraded`, `Suspended`, `Missing`, `Unknown` — each with the reason
//! in words ([`HealthStatus`]).
//!
//! Pure: read from what the controller already lists (Marathon's `GET /v2/apps` with
//! `embed=apps.lastTaskFailure`; Chronos' job listing plus its run states from
//! `…/graph/csv`), with "now" a parameter. One function per system
//! ([`marathon::app_health`], [`chronos::job_health`]) and [`assess`] for a whole
//! reconcile. Since when an object has had its health is the controller's business
//! (`status`), across reconciles.
//!
//! Who uses it: `reconcile` (computes it after listing), `apply` (an app's dependants
//! wait for it to be Healthy), `cli` (`diff`, `apply`), `status` (`/status`, metrics).
//! It imports `model` only.

pub mod chronos;
pub mod marathon;

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{DesiredObject, DesiredState, LiveState, ObjectKind, ObjectRef};
pub use chronos::{RunState, RunStates};

/// How an object is doing live (Argo CD's health statuses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Health {
    /// Doing what it is for: every task running (and healthy), the last run succeeded.
    Healthy,
    /// On its way: a deployment in flight, tasks starting, a job running or not run yet.
    Progressing,
    /// Failing: unhealthy tasks, tasks that keep failing, a job whose last run failed.
    Degraded,
    /// Deliberately idle: an app scaled to 0, a disabled job.
    Suspended,
    /// Desired but not live.
    Missing,
    /// Its system could not be listed.
    Unknown,
}

impl Health {
    /// Every status, in order.
    pub const ALL: [Health; 6] = [
        Health::Healthy,
        Health::Progressing,
        Health::Degraded,
        Health::Suspended,
        Health::Missing,
        Health::Unknown,
    ];

    /// The status as a word (`Healthy`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "Healthy",
            Health::Progressing => "Progressing",
            Health::Degraded => "Degraded",
            Health::Suspended => "Suspended",
            Health::Missing => "Missing",
            Health::Unknown => "Unknown",
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A health status and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthStatus {
    /// The status.
    pub health: Health,
    /// Why, in words (`0/1 tasks healthy, last task failure 08:12:03: …`).
    pub reason: String,
}

impl HealthStatus {
    /// A status with its reason.
    pub fn new(health: Health, reason: impl Into<String>) -> Self {
        HealthStatus { health, reason: reason.into() }
    }

    /// Whether dependants may proceed.
    pub fn is_healthy(&self) -> bool {
        self.health == Health::Healthy
    }

    /// The same status with its reason passed through `f` (masking).
    pub fn map_reason(self, f: impl FnOnce(&str) -> String) -> Self {
        HealthStatus { reason: f(&self.reason), ..self }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reason.is_empty() {
            write!(f, "{}", self.health)
        } else {
            write!(f, "{}: {}", self.health, self.reason)
        }
    }
}

/// The health of every object of a reconcile, by object.
pub type HealthMap = BTreeMap<ObjectRef, HealthStatus>;

/// Totals by status, every status present (for summaries and gauges).
pub fn counts<'a>(statuses: impl IntoIterator<Item = &'a HealthStatus>) -> BTreeMap<Health, usize> {
    let mut counts: BTreeMap<Health, usize> = Health::ALL.iter().map(|h| (*h, 0)).collect();
    for s in statuses {
        *counts.entry(s.health).or_default() += 1;
    }
    counts
}

/// `18 Healthy, 1 Progressing, 1 Degraded`: the statuses present, in order.
pub fn summary(map: &HealthMap) -> String {
    let parts: Vec<String> =
        counts(map.values()).into_iter().filter(|(_, n)| *n > 0).map(|(h, n)| format!("{n} {h}")).collect();
    if parts.is_empty() { "no objects".to_string() } else { parts.join(", ") }
}

/// What one reconcile listed, for [`assess`].
#[derive(Clone, Copy, Debug)]
pub struct Listed<'a> {
    /// The live objects.
    pub live: &'a LiveState,
    /// Whether Chronos was listed (`false`: its jobs are [`Health::Unknown`]).
    pub chronos_listed: bool,
    /// Chronos' run states (`None`: not read; running jobs are then not seen).
    pub run_states: Option<&'a RunStates>,
}

/// Whether a desired job is a run-once job (`sync.run: onChange`): not done until a run
/// succeeded, so Progressing while it has never run. A scheduled job is Healthy
/// before its first run.
fn run_once(desired: &DesiredObject) -> bool {
    desired.sync.runs_once()
}

/// The health of each of `objects` (desired ones and owned live ones): `Missing` when
/// desired and not listed, `Unknown` when its system was not listed.
pub fn assess<'a>(
    objects: impl IntoIterator<Item = &'a ObjectRef>,
    desired: &DesiredState,
    listed: Listed<'_>,
    now: DateTime<Utc>,
) -> HealthMap {
    assess_with(objects, desired, listed, now, &mut Memo::default())
}

/// The verdicts of the latest [`assess_with`], by everything each was read from (the
/// listed bytes, the run state, whether the job runs once, the day): an object listed
/// again as it was gets its verdict back without its JSON being read — in a steady
/// state, every object. A verdict that reads the clock beyond the day (an app's health
/// grace running out) is not kept. Only the latest assessment's verdicts are held, so
/// the memo never outgrows the set.
#[derive(Debug, Default)]
pub struct Memo {
    verdicts: HashMap<MemoKey, HealthStatus>,
}

impl Memo {
    /// How many verdicts are remembered.
    pub fn len(&self) -> usize {
        self.verdicts.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.verdicts.is_empty()
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct MemoKey {
    kind: ObjectKind,
    fingerprint: u64,
    run_state: Option<RunState>,
    run_once: bool,
    day: NaiveDate,
}

/// [`assess`], with the verdicts `memo` remembers (and this assessment's kept in it
/// for the next one). The map is the same as without it.
pub fn assess_with<'a>(
    objects: impl IntoIterator<Item = &'a ObjectRef>,
    desired: &DesiredState,
    listed: Listed<'_>,
    now: DateTime<Utc>,
    memo: &mut Memo,
) -> HealthMap {
    let index = listed.live.index();
    let mut map = HealthMap::new();
    let mut verdicts = HashMap::with_capacity(memo.verdicts.len());
    for object in objects {
        let status = match object.kind {
            ObjectKind::ChronosJob if !listed.chronos_listed => {
                HealthStatus::new(Health::Unknown, "Chronos could not be listed")
            }
            kind => match index.get(kind, &object.id) {
                None => HealthStatus::new(Health::Missing, "not found live"),
                Some(live) => {
                    let (run_state, run_once) = match kind {
                        ObjectKind::MarathonApp => (None, false),
                        ObjectKind::ChronosJob => (
                            listed.run_states.map(|r| r.get(&object.id)),
                            desired.get(object).is_some_and(run_once),
                        ),
                    };
                    let key = MemoKey {
                        kind,
                        fingerprint: live.fingerprint(),
                        run_state,
                        run_once,
                        day: now.date_naive(),
                    };
                    if let Some(status) = memo.verdicts.remove(&key) {
                        verdicts.insert(key, status.clone());
                        status
                    } else {
                        let (status, reads_time) = match kind {
                            ObjectKind::MarathonApp => marathon::app_verdict(live.raw(), now),
                            ObjectKind::ChronosJob => {
                                (chronos::job_health(live.raw(), run_state, run_once, now), false)
                            }
                        };
                        if !reads_time {
                            verdicts.insert(key, status.clone());
                        }
                        status
                    }
                }
            },
        };
        map.insert(object.clone(), status);
    }
    memo.verdicts = verdicts;
    map
}

/// A server time (`2026-01-02T08:12:03.000Z`) as people read it next to `now`: the
/// time of day when it is today, else the date too.
pub(crate) fn when(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if at.date_naive() == now.date_naive() {
        at.format("%H:%M:%S").to_string()
    } else {
        at.format("%Y-%m-%d %H:%M:%S").to_string()
    }
}

/// Parse a server timestamp (`""` and garbage are `None`).
pub(crate) fn parse_time(text: Option<&str>) -> Option<DateTime<Utc>> {
    let text = text?.trim();
    if text.is_empty() {
        return None;
    }
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::model::{Provenance, SyncOptions};

    #[test]
    fn missing_unknown_and_listed_objects() {
        let now = Utc::now();
        let live = LiveState::from_values(
            &[
                json!({"id": "/a", "instances": 1, "tasksRunning": 1, "tasksHealthy": 0, "tasksUnhealthy": 0, "tasksStaged": 0, "deployments": []}),
            ],
            &[json!({"name": "j", "disabled": true})],
        );
        let desired = DesiredState {
            apps: vec![DesiredObject::new(
                ObjectRef::app("/b"),
                SyncOptions::default(),
                &json!({"id": "/b"}),
                Provenance::default(),
            )],
            ..DesiredState::default()
        };
        let objects = [ObjectRef::app("/a"), ObjectRef::app("/b"), ObjectRef::job("j")];
        let listed = Listed { live: &live, chronos_listed: true, run_states: None };
        let map = assess(&objects, &desired, listed, now);
        assert_eq!(map[&ObjectRef::app("/a")].health, Health::Healthy);
        assert_eq!(map[&ObjectRef::app("/b")], HealthStatus::new(Health::Missing, "not found live"));
        assert_eq!(map[&ObjectRef::job("j")].health, Health::Suspended);
        let unlisted = assess(&objects, &desired, Listed { chronos_listed: false, ..listed }, now);
        assert_eq!(unlisted[&ObjectRef::job("j")].health, Health::Unknown);
        assert_eq!(summary(&map), "1 Healthy, 1 Suspended, 1 Missing");
        assert_eq!(summary(&HealthMap::new()), "no objects");
        let counts = counts(map.values());
        assert_eq!(counts[&Health::Healthy], 1);
        assert_eq!(counts[&Health::Degraded], 0);
        assert_eq!(counts.len(), 6);
    }

    #[test]
    fn the_memo_gives_the_verdicts_a_fresh_read_gives() {
        let at = |t: &str| parse_time(Some(t)).unwrap();
        let app = |running: u64| {
            json!({"id": "/a", "instances": 1, "tasksRunning": running, "tasksHealthy": 0,
                   "tasksUnhealthy": 0, "tasksStaged": 0, "deployments": [],
                   "version": "2026-03-04T09:00:00.000Z"})
        };
        // Failed at 09:30 with a 7200 s grace from its 09:00 version: Degraded from 11:00.
        let failing = json!({"id": "/f", "instances": 1, "tasksRunning": 0, "deployments": [],
            "version": "2026-03-04T09:00:00.000Z", "healthChecks": [{"gracePeriodSeconds": 7200}],
            "lastTaskFailure": {"timestamp": "2026-03-04T09:30:00.000Z", "message": "exit 1"}});
        let job = json!({"name": "j", "lastSuccess": "2026-03-04T08:00:00.000Z"});
        let objects = [ObjectRef::app("/a"), ObjectRef::app("/f"), ObjectRef::job("j")];
        let desired = DesiredState::default();
        let mut memo = Memo::default();
        let mut check = |apps: &[Value], now: DateTime<Utc>| {
            let live = LiveState::from_values(apps, std::slice::from_ref(&job));
            let listed = Listed { live: &live, chronos_listed: true, run_states: None };
            let remembered = assess_with(&objects, &desired, listed, now, &mut memo);
            assert_eq!(remembered, assess(&objects, &desired, listed, now), "at {now}");
            (remembered, memo.len())
        };
        let (map, kept) = check(&[app(0), failing.clone()], at("2026-03-04T10:00:00Z"));
        assert_eq!(map[&ObjectRef::app("/a")].health, Health::Progressing);
        assert_eq!(map[&ObjectRef::app("/f")].health, Health::Progressing);
        // The app whose verdict reads the clock is not kept; the other two are.
        assert_eq!(kept, 2);
        // Listed again unchanged, past the grace: the failing app turns Degraded.
        let (map, _) = check(&[app(0), failing.clone()], at("2026-03-04T11:00:01Z"));
        assert_eq!(map[&ObjectRef::app("/f")].health, Health::Degraded);
        // Other bytes, another verdict.
        let (map, _) = check(&[app(1), failing.clone()], at("2026-03-04T11:00:02Z"));
        assert_eq!(map[&ObjectRef::app("/a")].health, Health::Healthy);
        // The next day, a run's time is written with its date.
        let (map, _) = check(&[app(1), failing], at("2026-03-05T00:00:01Z"));
        assert_eq!(map[&ObjectRef::job("j")].reason, "last run succeeded at 2026-03-04 08:00:00");
        // Only the latest assessment's verdicts are held.
        let (_, kept) = check(&[], at("2026-03-05T00:00:02Z"));
        assert_eq!(kept, 1);
    }

    #[test]
    fn times_read_as_people_read_them() {
        let now = parse_time(Some("2026-03-04T10:00:00.000Z")).unwrap();
        assert_eq!(when(parse_time(Some("2026-03-04T08:12:03.000Z")).unwrap(), now), "08:12:03");
        assert_eq!(when(parse_time(Some("2026-03-03T08:12:03Z")).unwrap(), now), "2026-03-03 08:12:03");
        assert_eq!(parse_time(Some("")), None);
        assert_eq!(parse_time(None), None);
        assert_eq!(parse_time(Some("yesterday")), None);
        assert_eq!(HealthStatus::new(Health::Degraded, "x").to_string(), "Degraded: x");
    }
}
