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

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::apply::{self, ApplyOptions, ApplyReport, Outcome, ProgressSink, WriteFence};
use crate::client::{ClientError, Clients};
use crate::model::{DesiredState, LiveObject, LiveState, ObjectRef};
use crate::plan::{self, ActionKind, Plan, PlanOptions};
use crate::runtime::{
    ApiError, AppliedWrite, BoxFuture, FailureStage, ObjectState, Reconcile, ReconcileContext,
    ReconcileFailure, ReconcileOutcome, ReconcileReport,
};
use crate::source::{self, LoadErrors, LoadOptions};

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
/// manifest files by content, and which (desired, live) pairs compared equal.
/// Neither changes a result — only how much work it takes.
#[derive(Clone, Debug, Default)]
pub struct Caches {
    /// Files parsed by earlier loads.
    pub load: Arc<Mutex<source::LoadCache>>,
    /// Verdicts of the latest plan.
    pub verdicts: Arc<Mutex<plan::Memo>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Pipeline {
    /// Load the manifests.
    pub fn load(&self) -> Result<DesiredState, LoadErrors> {
        source::load_dir_cached(&self.dir, &self.load, &mut lock(&self.caches.load))
    }

    /// List live state: one GET per system.
    pub async fn list(&self) -> Result<LiveState, ClientError> {
        self.clients.list_live(None).await
    }

    /// The Chronos version to plan for (the configured one, else detected once — the
    /// client caches it) and the live jobs.
    async fn list_chronos(
        &self,
    ) -> Result<(Option<crate::client::ChronosVersion>, Vec<LiveObject>), ClientError> {
        let Some(chronos) = &self.clients.chronos else { return Ok((self.plan.chronos_version, Vec::new())) };
        let version = match self.plan.chronos_version {
            Some(v) => v,
            None => chronos.version().await?,
        };
        Ok((Some(version), chronos.list_jobs().await?))
    }

    /// Load, list and plan. Pure after the two reads. Marathon unreachable fails the
    /// whole plan; Chronos unreachable plans Marathon alone (see the module docs).
    pub async fn plan(&self, now: DateTime<Utc>) -> Result<Planned, PipelineError> {
        // Loading is CPU work and listing is waiting: do both at once.
        let load = {
            let pipeline = self.clone();
            tokio::task::spawn_blocking(move || pipeline.load())
        };
        let apps = async {
            match &self.clients.marathon {
                Some(m) => m.list_apps(None).await,
                None => Ok(Vec::new()),
            }
        };
        let (desired, apps, chronos) = tokio::join!(load, apps, self.list_chronos());
        let desired = match desired {
            Ok(loaded) => loaded.map_err(PipelineError::Load)?,
            Err(panicked) => std::panic::resume_unwind(panicked.into_panic()),
        };
        let apps = apps.map_err(PipelineError::List)?;
        let mut opts = self.plan.clone();
        let mut memo = lock(&self.caches.verdicts);
        match chronos {
            Ok((version, jobs)) => {
                opts.chronos_version = version;
                let live = LiveState { apps, jobs };
                let plan = plan::compute_with(&desired, &live, &opts, now, &mut memo);
                Ok(Planned { desired, live, plan, chronos_unreachable: None })
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
                Ok(Planned { desired, live, plan, chronos_unreachable: Some(e) })
            }
        }
    }

    /// Refuse a plan that would write the import placeholder over secrets.
    pub fn check_writable(plan: &Plan) -> Result<(), PipelineError> {
        let found = plan::placeholder_writes(plan);
        if found.is_empty() { Ok(()) } else { Err(PipelineError::Placeholder(found)) }
    }

    /// Apply a plan. `cancel` stops it between writes; `fence` is checked before
    /// every write (on top of the pipeline's own).
    pub async fn execute(
        &self,
        plan: &Plan,
        cancel: Option<watch::Receiver<bool>>,
        fence: Option<WriteFence>,
        progress: &dyn ProgressSink,
    ) -> ApplyReport {
        let mut opts = self.apply.clone();
        if cancel.is_some() {
            opts.cancel = cancel;
        }
        if fence.is_some() {
            opts.write_fence = fence;
        }
        apply::apply(plan, &self.clients, &opts, progress).await
    }
}

/// Turn a planned action the controller must not attempt now (its retry is not due)
/// into a NoOp, so `apply` leaves it and everything else proceeds.
fn hold_back(plan: &mut Plan, backing_off: &BTreeSet<ObjectRef>) {
    for action in plan.actions.iter_mut().filter(|a| backing_off.contains(&a.object) && a.is_write()) {
        action.kind = ActionKind::NoOp;
        action.body = None;
        action.note = Some("backing off after a failure; retried later".into());
    }
}

/// Turn the writes of apps that wait (directly or through other apps) on a Chronos job
/// into NoOps: with Chronos unreachable, the job's state is unknown.
fn hold_back_waiting_on_jobs(plan: &mut Plan, desired: &DesiredState) {
    let mut waiting: BTreeSet<ObjectRef> = desired.jobs.iter().map(|j| j.object.clone()).collect();
    // Each pass adds at least one app or stops: bounded by the number of apps.
    for _ in 0..=desired.apps.len() {
        let before = waiting.len();
        for app in &desired.apps {
            if app.dependencies().iter().any(|d| waiting.contains(d)) {
                waiting.insert(app.object.clone());
            }
        }
        if waiting.len() == before {
            break;
        }
    }
    for action in plan.actions.iter_mut().filter(|a| waiting.contains(&a.object) && a.is_write()) {
        action.kind = ActionKind::NoOp;
        action.body = None;
        action.note = Some("waits on a Chronos job, and Chronos is unreachable".into());
    }
}

/// What a reconcile reports for one planned object, before or without applying.
fn planned_state(action: &plan::Action, dry_run: bool, backing_off: &BTreeSet<ObjectRef>) -> ObjectState {
    let changes = action.changes.len();
    if backing_off.contains(&action.object) && action.kind != ActionKind::NoOp {
        return ObjectState::Skipped { reason: "backing off after a failure".into() };
    }
    match action.kind {
        ActionKind::NoOp if action.note.as_deref().is_some_and(|n| n.contains("suspend")) => {
            ObjectState::Suspended { changes }
        }
        ActionKind::NoOp if changes > 0 => ObjectState::Drifted { changes },
        ActionKind::NoOp => ObjectState::Synced,
        _ if dry_run => ObjectState::Drifted { changes: changes.max(1) },
        _ => ObjectState::Synced,
    }
}

fn outcome_state(outcome: &Outcome) -> Option<ObjectState> {
    match outcome {
        Outcome::Applied | Outcome::Unchanged => None,
        Outcome::Failed(e) => Some(ObjectState::Failed { error: e.to_string() }),
        Outcome::Blocked { by } => Some(ObjectState::Skipped { reason: format!("blocked by {by}") }),
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
            let planned = match self.plan(Utc::now()).await {
                Ok(p) => p,
                Err(PipelineError::Load(e)) => {
                    return Err(ReconcileFailure {
                        stage: FailureStage::Load,
                        message: e.to_string(),
                        api_errors: vec![],
                    });
                }
                Err(PipelineError::List(e)) => {
                    let api = ApiError { system: e.system().into(), message: e.to_string() };
                    return Err(ReconcileFailure {
                        stage: FailureStage::List,
                        message: e.to_string(),
                        api_errors: vec![api],
                    });
                }
                Err(e @ PipelineError::Placeholder(_)) => {
                    return Err(ReconcileFailure {
                        stage: FailureStage::Other,
                        message: e.to_string(),
                        api_errors: vec![],
                    });
                }
            };
            let mut report =
                ReconcileReport { summary: planned.plan.summary(), ..ReconcileReport::default() };
            for action in &planned.plan.actions {
                report
                    .objects
                    .insert(action.object.clone(), planned_state(action, dry_run, &ctx.backing_off));
            }
            if let Some(e) = &planned.chronos_unreachable {
                report.api_errors.push(ApiError { system: e.system().into(), message: e.to_string() });
                for job in planned.jobs_not_reconciled() {
                    let error = format!("not reconciled: Chronos is unreachable: {e}");
                    report.objects.insert(job.clone(), ObjectState::Failed { error });
                }
            }
            let mut plan = planned.plan;
            if dry_run || !plan.actions.iter().any(|a| a.is_write()) {
                return Ok(report);
            }
            if let Err(e) = Self::check_writable(&plan) {
                return Err(ReconcileFailure {
                    stage: FailureStage::Other,
                    message: e.to_string(),
                    api_errors: vec![],
                });
            }
            hold_back(&mut plan, &ctx.backing_off);
            let (cancel_tx, cancel_rx) = watch::channel(false);
            let token = ctx.cancel.clone();
            let forward = tokio::spawn(async move {
                token.cancelled().await;
                let _ = cancel_tx.send(true);
            });
            let applied = self.execute(&plan, Some(cancel_rx), None, &apply::TracingProgress).await;
            forward.abort();
            for object in &applied.objects {
                if object.outcome == Outcome::Applied {
                    report.writes.push(AppliedWrite { object: object.object.clone(), action: object.kind });
                }
                if let Some(state) = outcome_state(&object.outcome) {
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
}
