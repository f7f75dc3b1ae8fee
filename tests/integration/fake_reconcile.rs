//! A test double of `runtime::Reconcile`: it loads the manifest directory for real
//! (so the loader's own file reads are part of every test), records every call, fails
//! loudly if two calls overlap, and answers what the test scripts. It can be held (a
//! gate) so that a test decides when a reconcile ends, and [`Running`] knows when the
//! controller's file watcher has caught up: tests wait on events, never sleep.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mesosync::model::ObjectRef;
use mesosync::runtime::{
    BoxFuture, CancellationToken, Controller, FailureStage, GitRevision, InputFingerprint, LastFileEvent,
    Metrics, ObjectState, Reconcile, ReconcileContext, ReconcileFailure, ReconcileOutcome, ReconcileReport,
    Requeue, RuntimeConfig, RuntimeError, StatusStore, Trigger, TriggerSender,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// `fut`, or `Err` once `limit` of **real** time has passed. A failure bound only, never
/// synchronisation. Not `tokio::time::timeout`: under a paused clock tokio advances
/// time whenever the runtime idles waiting on something outside it (the file watcher's
/// thread, a blocking task), so a bound on that clock can expire after a second of real
/// time while the controller is still working, which failed
/// `runtime::a_reconcile_that_fails_as_a_whole_is_retried_then_recovers` once in ten full
/// runs under load.
pub async fn within_real_time<F: std::future::Future>(limit: Duration, fut: F) -> Result<F::Output, ()> {
    let (expired, expiry) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        let _ = expired.send(());
    });
    tokio::select! {
        out = fut => Ok(out),
        _ = expiry => Err(()),
    }
}

/// One recorded call.
#[derive(Clone, Debug)]
pub struct Call {
    /// When it started (tokio's clock: virtual under a paused clock).
    pub at: Instant,
    pub reasons: Vec<Trigger>,
    pub dry_run: bool,
    pub revision: Option<GitRevision>,
    pub backing_off: Vec<ObjectRef>,
    /// How many simulated writes it made before returning.
    pub writes: usize,
    pub cancelled: bool,
}

type Script = Box<dyn FnMut(usize, &ReconcileContext) -> Option<ReconcileOutcome> + Send>;

/// The fake. By default every loaded object is reported `Synced`.
pub struct FakeReconcile {
    dir: PathBuf,
    calls: Mutex<Vec<Call>>,
    count: watch::Sender<usize>,
    /// Calls that started (a held call has started but not finished).
    entered: watch::Sender<usize>,
    /// While false, a call waits before loading (see [`FakeReconcile::hold`]).
    open: watch::Sender<bool>,
    running: AtomicBool,
    /// Simulated writes per reconcile, each taking `write_time`; the cancel signal is
    /// checked between them, as the apply layer must.
    writes: usize,
    write_time: Duration,
    script: Mutex<Script>,
    /// Report the loaded input's fingerprint and answer `input_fingerprint`, as the
    /// real pipeline does (off by default: the loop's timing tests send file triggers
    /// without changing a file).
    keyed: bool,
}

impl FakeReconcile {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            calls: Mutex::new(Vec::new()),
            count: watch::channel(0).0,
            entered: watch::channel(0).0,
            open: watch::channel(true).0,
            running: AtomicBool::new(false),
            writes: 0,
            write_time: Duration::ZERO,
            script: Mutex::new(Box::new(|_, _| None)),
            keyed: false,
        }
    }

    /// Key reconciles on their input, as the real pipeline does: each report carries
    /// the fingerprint of the manifest set it loaded, and `input_fingerprint` says the
    /// one on disk now.
    pub fn keyed(mut self) -> Self {
        self.keyed = true;
        self
    }

    /// Each reconcile makes `n` writes of `each` (cancellable between writes).
    pub fn with_writes(mut self, n: usize, each: Duration) -> Self {
        self.writes = n;
        self.write_time = each;
        self
    }

    /// Answer call number `n` (1-based) with the script's outcome, when it gives one.
    pub fn with_script(
        self,
        script: impl FnMut(usize, &ReconcileContext) -> Option<ReconcileOutcome> + Send + 'static,
    ) -> Self {
        *self.script.lock().unwrap() = Box::new(script);
        self
    }

    /// From now on, every call waits at its start until [`FakeReconcile::release`]: what
    /// happens meanwhile (file events, triggers) lands while a reconcile runs.
    pub fn hold(&self) {
        self.open.send_replace(false);
    }

    /// Let held and later calls run.
    pub fn release(&self) {
        self.open.send_replace(true);
    }

    /// Wait (at most `limit` of real time, see [`within_real_time`]) until at least `n` calls started.
    pub async fn wait_for_entered(&self, n: usize, limit: Duration) {
        let mut entered = self.entered.subscribe();
        let waited = within_real_time(limit, entered.wait_for(|c| *c >= n)).await;
        assert!(waited.is_ok(), "expected {n} reconciles to start within {limit:?}, saw {:#?}", self.calls());
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Wait (at most `limit` of real time, see [`within_real_time`]) until at least `n` calls finished.
    pub async fn wait_for_calls(&self, n: usize, limit: Duration) -> Vec<Call> {
        let mut count = self.count.subscribe();
        let waited = within_real_time(limit, count.wait_for(|c| *c >= n)).await;
        assert!(waited.is_ok(), "expected {n} reconciles within {limit:?}, saw {:#?}", self.calls());
        self.calls()
    }

    async fn run(&self, ctx: ReconcileContext) -> ReconcileOutcome {
        assert!(!self.running.swap(true, Ordering::SeqCst), "two reconciles overlap");
        self.entered.send_modify(|c| *c += 1);
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|open| *open).await;
        let mut call = Call {
            at: Instant::now(),
            reasons: ctx.reasons.clone(),
            dry_run: ctx.dry_run,
            revision: ctx.revision.clone(),
            backing_off: ctx.backing_off.iter().cloned().collect(),
            writes: 0,
            cancelled: false,
        };
        let options = mesosync::source::LoadOptions::default();
        let loaded = mesosync::source::load_dir_keyed(&self.dir, &options, &mut Default::default());
        let mut outcome = match loaded {
            Ok((desired, input)) => Ok(ReconcileReport {
                objects: desired.objects().map(|o| (o.object.clone(), ObjectState::Synced)).collect(),
                input: self.keyed.then_some(input),
                ..Default::default()
            }),
            // Backoff, unlike the real pipeline (which waits for a change): the timing
            // tests of the loop use a load error as the failing reconcile.
            Err(errors) => {
                Err(ReconcileFailure::new(FailureStage::Load, errors.to_string(), Requeue::Backoff))
            }
        };
        for _ in 0..self.writes {
            if ctx.cancel.is_cancelled() {
                call.cancelled = true;
                break;
            }
            tokio::time::sleep(self.write_time).await;
            call.writes += 1;
        }
        let number = self.calls.lock().unwrap().len() + 1;
        if let Some(scripted) = (self.script.lock().unwrap())(number, &ctx) {
            outcome = scripted;
        }
        if let Ok(report) = &mut outcome {
            report.cancelled |= call.cancelled;
        }
        self.calls.lock().unwrap().push(call);
        self.running.store(false, Ordering::SeqCst);
        self.count.send_modify(|c| *c += 1);
        outcome
    }
}

impl Reconcile for FakeReconcile {
    fn reconcile(&self, ctx: ReconcileContext) -> BoxFuture<'_, ReconcileOutcome> {
        Box::pin(self.run(ctx))
    }

    fn input_fingerprint(&self) -> BoxFuture<'_, Option<InputFingerprint>> {
        let now = self.keyed.then(|| mesosync::source::input_fingerprint(&self.dir, &Default::default()));
        Box::pin(std::future::ready(now.flatten()))
    }
}

/// A valid manifest for one Marathon app.
pub fn app_manifest(id: &str, instances: u32) -> String {
    format!(
        "kind: MarathonApp\nspec:\n  id: {id}\n  cmd: sleep 1000\n  cpus: 0.1\n  mem: 32\n  instances: {instances}\n"
    )
}

/// A config for tests: quiet defaults that no test waits for by accident.
pub fn test_config(dir: &Path) -> RuntimeConfig {
    let mut config = RuntimeConfig::new(dir);
    config.resync = Duration::from_secs(3600);
    config.debounce = Duration::from_millis(200);
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.backoff.jitter = 0.0;
    config
}

/// A controller running on its own task, with the handles tests use.
pub struct Running {
    pub status: StatusStore,
    pub metrics: Arc<Metrics>,
    pub triggers: TriggerSender,
    pub shutdown: CancellationToken,
    pub file_events: LastFileEvent,
    task: JoinHandle<Result<(), RuntimeError>>,
}

impl Running {
    pub fn start(controller: Controller) -> Self {
        Self {
            status: controller.status(),
            metrics: controller.metrics(),
            triggers: controller.triggers(),
            shutdown: controller.shutdown_token(),
            file_events: controller.last_file_event(),
            task: tokio::spawn(controller.run()),
        }
    }

    /// Return once the controller's file watcher has turned every file event so far into
    /// triggers: write a hidden file (which the controller ignores) and wait until the
    /// watcher has handled its event, which the kernel queued after all earlier ones.
    pub async fn file_events_handled(&self, dir: &Path, limit: Duration) {
        static BARRIERS: AtomicUsize = AtomicUsize::new(0);
        let name = format!(".barrier-{}", BARRIERS.fetch_add(1, Ordering::SeqCst));
        let barrier = dir.canonicalize().expect("manifest dir").join(name);
        let mut handled = self.file_events.subscribe();
        std::fs::write(&barrier, "").expect("barrier file");
        let waited = within_real_time(limit, handled.wait_for(|paths| paths.contains(&barrier))).await;
        assert!(waited.is_ok(), "the file watcher did not report {} within {limit:?}", barrier.display());
    }

    /// Shut down and check that `run` returned `Ok`.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.expect("the controller task").expect("run returns Ok after shutdown");
    }
}

/// The fake, shared between the controller and the test.
pub fn fake(dir: &Path) -> Arc<FakeReconcile> {
    Arc::new(FakeReconcile::new(dir))
}
