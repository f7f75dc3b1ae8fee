//! One reconcile, in one place: **load → list live → plan (normalize, diff) → apply**.
//!
//! [`Pipeline`] holds what a reconcile needs (the manifest directory, the API clients,
//! the plan and apply options). `mesosync diff` stops after [`Pipeline::plan`];
//! `mesosync apply` and every reconcile of `mesosync run` continue with
//! [`Pipeline::execute`]; `--dry-run` stops before the first write. All of them run
//! the same code, so what `diff` shows is what `apply` does.
//!
//! Invariant: nothing is written unless the whole manifest set loaded and Marathon
//! was listed. An unreachable Chronos does not hold Marathon hostage: the apps are
//! still reconciled, while the jobs (and any app waiting on a job) are left alone,
//! never pruned, and reported as failed ([`Planned::chronos_unreachable`]).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::apply::{self, ApplyOptions, ApplyReport, Outcome, ProgressSink, WriteFence};
use crate::client::{ClientError, Clients};
use crate::health::{self, HealthMap, HealthStatus};
use crate::model::{DesiredState, LiveObject, LiveState, Location, ObjectRef};
use crate::plan::{self, Decision, HoldReason, Plan, PlanOptions};
use crate::runtime::{
    ApiError, AppliedWrite, BoxFuture, FailureStage, InputFingerprint, ObjectState, PruneRefused, Reconcile,
    ReconcileContext, ReconcileFailure, ReconcileOutcome, ReconcileReport, Requeue,
};
use crate::source::{self, LoadErrors, LoadOptions};
use crate::status::history::{self, ObjectDetail, ReportDetails, WriteRecord};

/// Why a reconcile stopped before planning.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The manifests did not load; nothing was written.
    #[error("manifests did not load; nothing was written:\n{0}")]
    Load(LoadErrors),
    /// Live state could not be listed; nothing was written.
    #[error("could not list live state; nothing was written: {0}")]
    List(ClientError),
    /// The plan would write the import placeholder over real secrets.
    #[error(
        "refusing to write the placeholder `{}` over secret values (fill them in the manifests first): {}",
        crate::diff::mask::PLACEHOLDER,
        .0.join(", ")
    )]
    Placeholder(Vec<String>),
}

/// Why a saved plan (`diff --out FILE`, then `apply --plan FILE DIR`) was not applied.
#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    /// The manifests did not load, live state could not be listed, or the fresh plan
    /// would write the import placeholder.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// Chronos could not be listed: a saved plan is applied whole or not at all.
    #[error(
        "Chronos is unreachable; its {jobs} job(s) were not compared or written (the Marathon apps were): {error}"
    )]
    ChronosUnreachable {
        /// The desired jobs left alone.
        jobs: usize,
        /// Why Chronos could not be listed.
        error: ClientError,
    },
    /// Live state moved on since the plan was made.
    #[error("live state changed since it was made: {0}")]
    LiveMoved(#[from] plan::LiveMoved),
    /// The manifests no longer plan the saved writes.
    #[error(transparent)]
    WritesDiffer(#[from] plan::WritesDiffer),
}

/// The error policy (kube-runtime's `error_policy`): a reconcile that stopped on a
/// typed error is retried with backoff when the error is transient (Marathon
/// unreachable, a 5xx, a git operation rewriting the checkout), and waits for the next
/// change of the manifests or the resync when retrying cannot help (manifests that do
/// not load, a 4xx, the placeholder).
impl From<PipelineError> for ReconcileFailure {
    fn from(e: PipelineError) -> Self {
        let (stage, api_errors, requeue) = match &e {
            PipelineError::Load(errors) => {
                (FailureStage::Load, vec![], Requeue::transient_if(errors.is_transient()))
            }
            PipelineError::List(client) => (
                FailureStage::List,
                vec![ApiError { system: client.system().into(), message: client.to_string() }],
                Requeue::transient_if(client.is_transient()),
            ),
            PipelineError::Placeholder(_) => (FailureStage::Other, vec![], Requeue::AwaitChange),
        };
        // A load or list error reads as before: the stage says what failed.
        let message = match &e {
            PipelineError::Load(errors) => errors.to_string(),
            PipelineError::List(client) => client.to_string(),
            PipelineError::Placeholder(_) => e.to_string(),
        };
        ReconcileFailure { stage, message, api_errors, requeue }
    }
}

/// A plan with the inputs it was computed from.
#[derive(Debug)]
pub struct Planned {
    /// The desired state as loaded.
    pub desired: DesiredState,
    /// The live state as listed.
    pub live: LiveState,
    /// What would be done.
    pub plan: Plan,
    /// Chronos could not be listed: its jobs were neither compared nor planned (nor
    /// pruned), and apps depending on a job are held back. The reconcile must report
    /// this as an error.
    pub chronos_unreachable: Option<ClientError>,
    /// The live health of every object of the plan, as listed (reasons masked).
    pub health: HealthMap,
    /// The fingerprint of the manifest set as loaded.
    pub input: InputFingerprint,
}

impl Planned {
    /// Each write whose dependency is not Healthy now, with that dependency: what a
    /// write would wait for (apply waits, bounded, and then reports it blocked).
    pub fn waits(&self) -> Vec<(&ObjectRef, &ObjectRef, &HealthStatus)> {
        let mut waits = Vec::new();
        for action in self.plan.actions.iter().filter(|a| a.is_write()) {
            for dep in &action.awaits {
                if let Some(status) = self.health.get(dep).filter(|s| !apply::ready(dep, s)) {
                    waits.push((&action.object, dep, status));
                }
            }
        }
        waits
    }
}

impl Planned {
    /// The desired jobs left alone because Chronos was unreachable.
    pub fn jobs_not_reconciled(&self) -> impl Iterator<Item = &ObjectRef> {
        self.chronos_unreachable.iter().flat_map(|_| self.desired.jobs.iter().map(|j| &j.object))
    }
}

/// Told the git revision of every reconcile.
pub type RevisionHook = std::sync::Arc<dyn Fn(&crate::runtime::GitRevision) + Send + Sync>;

/// Everything one reconcile needs.
#[derive(Clone)]
pub struct Pipeline {
    /// The manifest directory.
    pub dir: PathBuf,
    /// Template values and environment for loading.
    pub load: LoadOptions,
    /// The Marathon and Chronos clients.
    pub clients: Clients,
    /// Ownership, prune and guard settings.
    pub plan: PlanOptions,
    /// Concurrency, waits, retries, the write fence. While the fence is closed (this
    /// replica is not the HA leader) a reconcile only reports, like `--dry-run`.
    pub apply: ApplyOptions,
    /// Called with the revision of every reconcile (the HA leader publishes it).
    pub on_revision: Option<RevisionHook>,
    /// What earlier reconciles of this pipeline learnt (a controller reloads the same
    /// directory and lists the same objects again and again).
    pub caches: Caches,
}

/// Kept between the reconciles of one [`Pipeline`] (clones share them): parsed
/// manifest files by content, which (desired, live) pairs compared equal, the health
/// read from each listed object, and what `stat` said of each manifest file. None
/// changes a result — only how much work it takes.
#[derive(Clone, Debug, Default)]
pub struct Caches {
    /// Files parsed by earlier loads.
    pub load: Arc<Mutex<source::LoadCache>>,
    /// Verdicts of the latest plan.
    pub verdicts: Arc<Mutex<plan::Memo>>,
    /// Health verdicts of the latest reconcile.
    pub health: Arc<Mutex<health::Memo>>,
    /// Manifest files' content fingerprints by their `stat`, for the unchanged-input
    /// check.
    pub stats: Arc<Mutex<source::StatCache>>,
    /// When each owned object was first found without a manifest by a successful
    /// load (`--prune-delay`).
    pub missing_since: Arc<Mutex<HashMap<ObjectRef, DateTime<Utc>>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Pipeline {
    /// Load the manifests.
    pub fn load(&self) -> Result<DesiredState, LoadErrors> {
        self.load_keyed().map(|(desired, _)| desired)
    }

    /// Load the manifests, with the fingerprint of what was read.
    fn load_keyed(&self) -> Result<(DesiredState, InputFingerprint), LoadErrors> {
        source::load_dir_keyed(&self.dir, &self.load, &mut lock(&self.caches.load))
    }

    /// List live state: one GET per system.
    pub async fn list(&self) -> Result<LiveState, ClientError> {
        self.clients.list_live(None).await
    }

    /// The Chronos version to plan for (the configured one, else detected once — the
    /// client caches it) and the live jobs.
    ///
    /// With jobs listed, one more GET reads their run states (`…/graph/csv`, for
    /// health: the listing does not say which job is running). Its failure costs only
    /// that: running jobs are then not told apart from idle ones.
    async fn list_chronos(&self) -> Result<ChronosListing, ClientError> {
        let Some(chronos) = &self.clients.chronos else {
            return Ok((self.plan.chronos_version, Vec::new(), None));
        };
        let version = match self.plan.chronos_version {
            Some(v) => v,
            None => chronos.version().await?,
        };
        let jobs = chronos.list_jobs().await?;
        let runs = if jobs.is_empty() {
            None
        } else {
            chronos
                .run_states()
                .await
                .map_err(|e| tracing::warn!(error = %e, "cannot read Chronos run states; running jobs are not seen"))
                .ok()
        };
        Ok((Some(version), jobs, runs))
    }

    /// Load, list and plan. Pure after the two reads. Marathon unreachable fails the
    /// whole plan; Chronos unreachable plans Marathon alone (see the module docs).
    pub async fn plan(&self, now: DateTime<Utc>) -> Result<Planned, PipelineError> {
        // Loading is CPU work and listing is waiting: do both at once.
        let load = {
            let pipeline = self.clone();
            tokio::task::spawn_blocking(move || pipeline.load_keyed())
        };
        let apps = async {
            match &self.clients.marathon {
                Some(m) => m.list_apps(None).await,
                None => Ok(Vec::new()),
            }
        };
        let (desired, apps, chronos) = tokio::join!(load, apps, self.list_chronos());
        let (desired, input) = match desired {
            Ok(loaded) => loaded.map_err(PipelineError::Load)?,
            Err(panicked) => std::panic::resume_unwind(panicked.into_panic()),
        };
        let apps = apps.map_err(PipelineError::List)?;
        let mut opts = self.plan.clone();
        let mut memo = lock(&self.caches.verdicts);
        match chronos {
            Ok((version, jobs, runs)) => {
                opts.chronos_version = version;
                let live = LiveState { apps, jobs };
                let plan = plan::compute_with(&desired, &live, &opts, now, &mut memo);
                let listed = health::Listed { live: &live, chronos_listed: true, run_states: runs.as_ref() };
                let health = assess_health(&plan, &desired, listed, now, &mut lock(&self.caches.health));
                Ok(Planned { desired, live, plan, chronos_unreachable: None, health, input })
            }
            Err(e) => {
                // Plan the apps only: no desired jobs and no live jobs means no job is
                // created, updated or pruned.
                let apps_only = DesiredState {
                    apps: desired.apps.clone(),
                    jobs: Vec::new(),
                    secrets: desired.secrets.clone(),
                };
                let live = LiveState { apps, jobs: Vec::new() };
                let mut plan = plan::compute_with(&apps_only, &live, &opts, now, &mut memo);
                hold_back_waiting_on_jobs(&mut plan, &desired);
                let listed = health::Listed { live: &live, chronos_listed: false, run_states: None };
                let mut health = assess_health(&plan, &desired, listed, now, &mut lock(&self.caches.health));
                let jobs = desired.jobs.iter().map(|j| &j.object);
                health.extend(health::assess(jobs, &desired, listed, now));
                Ok(Planned { desired, live, plan, chronos_unreachable: Some(e), health, input })
            }
        }
    }

    /// Refuse a plan that would write the import placeholder over secrets.
    pub fn check_writable(plan: &Plan) -> Result<(), PipelineError> {
        let found = plan::placeholder_writes(plan);
        if found.is_empty() { Ok(()) } else { Err(PipelineError::Placeholder(found)) }
    }

    /// Apply a plan saved by `diff --out`: the one path of `apply --plan FILE DIR`.
    ///
    /// A plan file holds no secret values, so it is never applied as read: the
    /// manifests are planned again against a fresh listing, the saved plan is refused
    /// if live moved since it was made ([`plan::check_still_valid`]) or if the fresh plan
    /// makes other writes ([`plan::matches_saved`]), and the fresh plan — the same
    /// writes, with the real values — is applied. `Ok(None)`: nothing to write.
    pub async fn apply_saved(
        &self,
        saved: &Plan,
        progress: &dyn ProgressSink,
    ) -> Result<Option<ApplyReport>, SavedPlanError> {
        let fresh = self.plan(Utc::now()).await?;
        if let Some(error) = &fresh.chronos_unreachable {
            let jobs = fresh.jobs_not_reconciled().count();
            return Err(SavedPlanError::ChronosUnreachable { jobs, error: error.clone() });
        }
        plan::check_still_valid(saved, &fresh.live)?;
        plan::matches_saved(saved, &fresh.plan)?;
        if !fresh.plan.has_changes() {
            return Ok(None);
        }
        Self::check_writable(&fresh.plan)?;
        Ok(Some(self.execute_planned(&fresh.plan, &fresh.health, None, progress).await))
    }

    /// Apply a plan. `cancel` stops it between writes; `fence` is checked before
    /// every write (on top of the pipeline's own). Every dependency left as it is is
    /// read before its dependants are written ([`Pipeline::execute_planned`] uses the
    /// plan's listing instead).
    pub async fn execute(
        &self,
        plan: &Plan,
        cancel: Option<CancellationToken>,
        fence: Option<WriteFence>,
        progress: &dyn ProgressSink,
    ) -> ApplyReport {
        self.execute_seen(plan, None, cancel, fence, progress).await
    }

    /// [`Pipeline::execute`] with the health the plan's listing saw ([`Planned::health`]):
    /// a dependency listed ready is not read again.
    pub async fn execute_planned(
        &self,
        plan: &Plan,
        health: &HealthMap,
        cancel: Option<CancellationToken>,
        progress: &dyn ProgressSink,
    ) -> ApplyReport {
        self.execute_seen(plan, Some(Arc::new(health.clone())), cancel, None, progress).await
    }

    async fn execute_seen(
        &self,
        plan: &Plan,
        live_health: Option<Arc<HealthMap>>,
        cancel: Option<CancellationToken>,
        fence: Option<WriteFence>,
        progress: &dyn ProgressSink,
    ) -> ApplyReport {
        let mut opts = self.apply.clone();
        opts.live_health = live_health;
        if cancel.is_some() {
            opts.cancel = cancel;
        }
        if fence.is_some() {
            opts.write_fence = fence;
        }
        apply::apply(plan, &self.clients, &opts, progress).await
    }
}

/// What listing Chronos gives: the version planned for, the jobs, their run states.
type ChronosListing = (Option<crate::client::ChronosVersion>, Vec<LiveObject>, Option<health::RunStates>);

/// The health of every object of `plan`. A Degraded reason may quote a server (a task
/// failure's message): it is masked against the object's secrets.
fn assess_health(
    plan: &Plan,
    desired: &DesiredState,
    listed: health::Listed<'_>,
    now: DateTime<Utc>,
    memo: &mut health::Memo,
) -> HealthMap {
    let mut map = health::assess_with(plan.actions.iter().map(|a| &a.object), desired, listed, now, memo);
    for action in &plan.actions {
        if let Some(status) = map.get_mut(&action.object).filter(|s| s.health == health::Health::Degraded) {
            let masker = crate::diff::mask::Masker::new(&action.secrets);
            status.reason = masker.text(&status.reason);
        }
    }
    map
}

/// Hold the writes of objects the controller must not attempt now (their retry is not
/// due), so `apply` leaves them and everything else proceeds. Returns the actions as
/// they were, by position.
fn hold_back(plan: &mut Plan, backing_off: &BTreeSet<ObjectRef>) -> Vec<(usize, plan::Action)> {
    let mut originals = Vec::new();
    for (i, action) in plan.actions.iter_mut().enumerate() {
        if backing_off.contains(&action.object) && action.is_write() {
            originals.push((i, action.clone()));
            action.hold(HoldReason::BackingOff);
        }
    }
    originals
}

/// What a reconcile reports of its plan: the summary, every object's planned state,
/// the dashboard's details, the health its listing saw.
fn planned_report(planned: &Planned, dry_run: bool, backing_off: &BTreeSet<ObjectRef>) -> ReconcileReport {
    let mut report = ReconcileReport {
        summary: planned.plan.summary(),
        prune_refused: prune_refused(&planned.plan),
        input: Some(planned.input),
        ..ReconcileReport::default()
    };
    for action in &planned.plan.actions {
        report.objects.insert(action.object.clone(), planned_state(action, dry_run, backing_off));
    }
    report.details = dashboard_details(planned);
    if let Some(e) = &planned.chronos_unreachable {
        report.api_errors.push(ApiError { system: e.system().into(), message: e.to_string() });
        for job in planned.jobs_not_reconciled() {
            let error = format!("not reconciled: Chronos is unreachable: {e}");
            let requeue = Requeue::transient_if(e.is_transient());
            report.objects.insert(job.clone(), ObjectState::Failed { error, requeue });
        }
    }
    report.health = planned.health.clone();
    report
}

/// Hold the writes of apps that wait (directly or through other apps) on a Chronos job:
/// with Chronos unreachable, the job's state is unknown.
fn hold_back_waiting_on_jobs(plan: &mut Plan, desired: &DesiredState) {
    // Who waits on whom, reversed: a walk from the jobs finds every app waiting on
    // one, each edge followed once.
    let mut dependants: HashMap<&ObjectRef, Vec<&ObjectRef>> = HashMap::new();
    for app in &desired.apps {
        for d in app.dependencies() {
            dependants.entry(d).or_default().push(&app.object);
        }
    }
    let mut waiting: HashSet<&ObjectRef> = desired.jobs.iter().map(|j| &j.object).collect();
    let mut queue: Vec<&ObjectRef> = waiting.iter().copied().collect();
    while let Some(object) = queue.pop() {
        for &app in dependants.get(object).into_iter().flatten() {
            if waiting.insert(app) {
                queue.push(app);
            }
        }
    }
    for action in plan.actions.iter_mut().filter(|a| waiting.contains(&a.object) && a.is_write()) {
        action.hold(HoldReason::WaitsOnUnreachableChronos);
    }
}

impl Pipeline {
    /// `--prune-delay`: hold each delete until the object has been missing from two
    /// successful loads at least the delay apart. Objects back in the manifests (or
    /// gone from live) are forgotten.
    fn delay_prunes(&self, plan: &mut Plan, now: DateTime<Utc>) {
        let Some(delay) = self.plan.prune_delay else { return };
        let delay = chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
        let mut missing = lock(&self.caches.missing_since);
        let deletes: HashSet<&ObjectRef> = plan
            .actions
            .iter()
            .filter(|a| a.decision.write() == Some(&plan::Write::Delete))
            .map(|a| &a.object)
            .collect();
        missing.retain(|object, _| deletes.contains(object));
        for action in plan.actions.iter_mut().filter(|a| a.decision.write() == Some(&plan::Write::Delete)) {
            let since = *missing.entry(action.object.clone()).or_insert(now);
            let left = since + delay - now;
            if left > chrono::Duration::zero() {
                let seconds_left = u64::try_from(left.num_seconds()).unwrap_or(0).max(1);
                action.hold(HoldReason::PruneDelayed { seconds_left });
            }
        }
    }
}

/// The health of what an apply wrote, as far as it read it: an app's health once its
/// write was done; any other written object is read again by the next listing.
fn health_after(applied: &ApplyReport) -> Vec<(ObjectRef, HealthStatus)> {
    applied
        .objects
        .iter()
        .filter(|o| o.attempts > 0 && o.kind != plan::ActionKind::Delete)
        .filter_map(|o| {
            let status = match (&o.health, &o.outcome) {
                (Some(h), _) => h.clone(),
                (None, Outcome::Applied) => HealthStatus::new(
                    health::Health::Progressing,
                    "written; read again by the next reconcile",
                ),
                _ => return None,
            };
            Some((o.object.clone(), status))
        })
        .collect()
}

/// What a reconcile reports for one planned object, before or without applying.
fn planned_state(action: &plan::Action, dry_run: bool, backing_off: &BTreeSet<ObjectRef>) -> ObjectState {
    let changes = action.changes.len();
    if backing_off.contains(&action.object) && action.is_write() {
        return ObjectState::Skipped { reason: "backing off after a failure".into() };
    }
    match &action.decision {
        Decision::Hold(HoldReason::Suspended { .. }) => ObjectState::Suspended { changes },
        // Retrying does not help: someone has to remove a mark, or fix the job in git.
        Decision::Hold(reason @ (HoldReason::AmbiguousOwner | HoldReason::RunFailed { .. })) => {
            ObjectState::Failed { error: reason.to_string(), requeue: Requeue::AwaitChange }
        }
        Decision::Hold(reason @ HoldReason::WaitsForJob { .. }) => {
            ObjectState::Skipped { reason: reason.to_string() }
        }
        Decision::Equal | Decision::Hold(_) if changes > 0 => ObjectState::Drifted { changes },
        Decision::Equal | Decision::Hold(_) => ObjectState::Synced,
        Decision::Write(_) if dry_run => ObjectState::Drifted { changes: changes.max(1) },
        Decision::Write(_) => ObjectState::Synced,
    }
}

/// For each object blocked (directly or through other blocked objects) by a run-once
/// job whose run failed or timed out: why, in words ("waits for job X: last run failed
/// at …"), as the plan says it once the job is left failed.
fn blocked_reasons(applied: &apply::ApplyReport) -> HashMap<ObjectRef, String> {
    let outcomes: HashMap<&ObjectRef, &Outcome> =
        applied.objects.iter().map(|o| (&o.object, &o.outcome)).collect();
    let mut out = HashMap::new();
    for object in &applied.objects {
        let Outcome::Blocked { by } = &object.outcome else { continue };
        // Follow the chain of blocked objects to the one that failed (bounded: a chain
        // never revisits an object, the plan has no cycles).
        let mut root = by;
        for _ in 0..outcomes.len() {
            match outcomes.get(root) {
                Some(Outcome::Blocked { by }) => root = by,
                _ => break,
            }
        }
        if let Some(Outcome::Failed(
            e @ (apply::ApplyError::RunFailed { .. } | apply::ApplyError::RunTimeout { .. }),
        )) = outcomes.get(root)
        {
            out.insert(object.object.clone(), format!("waits for {root}: {e}"));
        }
    }
    out
}

/// The deletes the guard refused, for the report (and the `prune-refused` event).
fn prune_refused(plan: &Plan) -> Option<PruneRefused> {
    let reason = plan.prune_refused.as_ref()?.to_string();
    let objects = plan
        .actions
        .iter()
        .filter(|a| matches!(a.decision, Decision::Hold(HoldReason::PruneRefused(_))))
        .map(|a| a.object.clone())
        .collect();
    Some(PruneRefused { reason, objects })
}

/// What the dashboard shows of each planned object: its action, held reason, changes
/// (already masked by the diff) with their file:line, where its manifest is, next runs.
fn dashboard_details(planned: &Planned) -> ReportDetails {
    let sources: HashMap<&ObjectRef, Location> =
        planned.desired.objects().map(|d| (&d.object, d.locate(""))).collect();
    let mut details = ReportDetails::default();
    let mut budget = history::CHANGE_BUDGET;
    for action in &planned.plan.actions {
        let held = match &action.decision {
            Decision::Hold(reason) => Some(reason.to_string()),
            _ => None,
        };
        let detail = ObjectDetail {
            action: Some(action.kind()),
            impact: Some(action.impact),
            held,
            source: sources.get(&action.object).cloned(),
            // A create's changes are every field of the manifest: not worth the budget
            // that real drift needs (a first dry run would spend it all on creates).
            changes: if action.kind() == plan::ActionKind::Create {
                Vec::new()
            } else {
                action.changes.clone()
            },
            changes_dropped: 0,
            next_runs: action.next_runs.clone(),
            depends_on: action.depends_on.clone(),
        };
        details.insert(action.object.clone(), detail, &mut budget);
    }
    details
}

/// One attempted write, for the dashboard's log (with the changes of an update).
fn write_record(
    object: &apply::ObjectReport,
    action: Option<&plan::Action>,
    at: DateTime<Utc>,
) -> WriteRecord {
    let mut changes: Vec<_> = match (object.kind, action) {
        (plan::ActionKind::Update | plan::ActionKind::Scale, Some(a)) => {
            a.changes.iter().take(history::MAX_WRITE_CHANGES).cloned().collect()
        }
        _ => Vec::new(),
    };
    changes.iter_mut().for_each(history::cut_values);
    WriteRecord {
        at,
        reconcile: 0,
        revision: None,
        object: object.object.clone(),
        action: object.kind,
        outcome: object.outcome.to_string(),
        ok: object.outcome.is_ok(),
        deployment_id: object.deployment_id.clone(),
        duration_ms: u64::try_from(object.duration.as_millis()).unwrap_or(u64::MAX),
        changes,
    }
}

fn outcome_state(outcome: &Outcome) -> Option<ObjectState> {
    match outcome {
        Outcome::Applied | Outcome::Unchanged => None,
        Outcome::Failed(e) => Some(ObjectState::Failed {
            error: e.to_string(),
            requeue: Requeue::transient_if(e.is_transient()),
        }),
        Outcome::Blocked { by } => Some(ObjectState::Skipped { reason: format!("blocked by {by}") }),
        Outcome::Waits { by, status } => Some(ObjectState::Skipped { reason: apply::waits_text(by, status) }),
        Outcome::Skipped(reason) => Some(ObjectState::Skipped { reason: reason.to_string() }),
    }
}

impl Reconcile for Pipeline {
    fn reconcile(&self, ctx: ReconcileContext) -> BoxFuture<'_, ReconcileOutcome> {
        Box::pin(async move {
            if let (Some(hook), Some(revision)) = (&self.on_revision, &ctx.revision) {
                hook(revision);
            }
            let may_write = self.apply.write_fence.as_ref().is_none_or(|fence| fence());
            let dry_run = ctx.dry_run || !may_write;
            let now = Utc::now();
            let mut planned = self.plan(now).await.map_err(ReconcileFailure::from)?;
            self.delay_prunes(&mut planned.plan, now);
            if dry_run || !planned.plan.actions.iter().any(|a| a.is_write()) {
                return Ok(planned_report(&planned, dry_run, &ctx.backing_off));
            }
            Self::check_writable(&planned.plan)?;
            // The writes first, the report's bookkeeping (a state and details for
            // every object) after them: at 15k objects it would delay the first write
            // by tens of milliseconds. The report is of the plan as made, before the
            // holds of objects backing off.
            let originals = hold_back(&mut planned.plan, &ctx.backing_off);
            let applied = self
                .execute_planned(
                    &planned.plan,
                    &planned.health,
                    Some(ctx.cancel.clone()),
                    &apply::TracingProgress,
                )
                .await;
            for (i, action) in originals {
                planned.plan.actions[i] = action;
            }
            let mut report = planned_report(&planned, dry_run, &ctx.backing_off);
            report.health.extend(health_after(&applied));
            let waits = blocked_reasons(&applied);
            let written_at = Utc::now();
            let actions: HashMap<&ObjectRef, &plan::Action> =
                planned.plan.actions.iter().map(|a| (&a.object, a)).collect();
            for object in &applied.objects {
                if object.attempts > 0 || object.outcome == Outcome::Applied {
                    let action = actions.get(&object.object).copied();
                    report.details.writes.push(write_record(object, action, written_at));
                }
                if object.outcome == Outcome::Applied {
                    report.writes.push(AppliedWrite { object: object.object.clone(), action: object.kind });
                }
                let state = match waits.get(&object.object) {
                    Some(reason) => Some(ObjectState::Skipped { reason: reason.clone() }),
                    None => outcome_state(&object.outcome),
                };
                if let Some(state) = state {
                    if let Outcome::Failed(e) = &object.outcome {
                        report.api_errors.push(ApiError {
                            system: object.object.kind.system().into(),
                            message: e.to_string(),
                        });
                    }
                    report.cancelled |=
                        matches!(object.outcome, Outcome::Skipped(apply::SkipReason::Cancelled));
                    report.objects.insert(object.object.clone(), state);
                }
            }
            Ok(report)
        })
    }

    /// Found, read and hashed like a load, but not parsed ([`source::input_fingerprint`]).
    fn input_fingerprint(&self) -> BoxFuture<'_, Option<InputFingerprint>> {
        let (dir, load) = (self.dir.clone(), self.load.clone());
        Box::pin(async move {
            let stats = self.caches.stats.clone();
            tokio::task::spawn_blocking(move || {
                source::input_fingerprint_with(&dir, &load, &mut lock(&stats))
            })
            .await
            .ok()
            .flatten()
        })
    }
}
