//! End-to-end benchmark of mesosync against the in-process emulator on 127.0.0.1
//! (issue #8). Run by `make bench` (release build); see BENCHMARKS.md for the figures.
//!
//! In one run, on one generated set (default 10,000 apps + 5,000 jobs):
//! 1. **no-op reconcile**: wall time, requests made (from the emulator's request log),
//!    and the ratio to the *floor* — only reading + parsing the manifests and the two
//!    live JSON listings, measured in the same run;
//! 2. **apply of N changed apps** with the default concurrency (emulated deployments
//!    take `--deployment-ms`, 50 ms by default);
//! 3. the same changed apps deployed by **Python** tools (`scripts/bench_python.py`):
//!    the `marathon` client library doing sequential PUTs, and the real
//!    `marathon-deploy` CLI from PyPI on a time-boxed sample;
//! 4. **`mesosync run`** (the real release binary): RSS (VmHWM / VmRSS from
//!    /proc/<pid>/status) holding the whole set, and change → first write latency
//!    over `--edits` single-file edits (file written → PUT in the emulator's log);
//! 5. **scaling** 1k → 10k → 50k apps (jobs = apps / 2): no-op reconcile time, floor,
//!    and `mesosync run`'s memory after its first reconcile;
//! 6. **task-state traffic** (issue #18) on the main set: `mesosync run` idle for
//!    `--churn-seconds`, then the same time with `--churn-rate` task updates per second
//!    (tasks killed and replaced across the set), once with the event filter honoured
//!    (Marathon ≥ 1.3.7) and once ignored (older Marathon): reconciles started and the
//!    controller's CPU in each window.
//!
//! Results are printed as Markdown and written as JSON to `--out`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chrono::Utc;
use clap::Parser;
use serde::Serialize;
use serde_json::{Value, json};

use mesosync::apply::{ApplyOptions, NoProgress, Outcome};
use mesosync::client::{ChronosClient, Clients, HttpConfig, MarathonClient};
use mesosync::emulator::{self, Sandbox, SandboxConfig};
use mesosync::generate::{self, GenSpec};
use mesosync::model::ObjectKind;
use mesosync::normalize::ChronosVersion;
use mesosync::plan::{ActionKind, PlanOptions};
use mesosync::reconcile::Pipeline;
use mesosync::source::{LoadOptions, walk};

#[derive(Debug, Parser)]
#[command(about = "mesosync end-to-end benchmark against the in-process emulator")]
struct Args {
    /// Apps in the main set.
    #[arg(long, default_value_t = 10_000)]
    apps: usize,
    /// Jobs in the main set.
    #[arg(long, default_value_t = 5_000)]
    jobs: usize,
    /// Apps changed for the apply comparison.
    #[arg(long, default_value_t = 1_000)]
    changed: usize,
    /// Single-file edits for the change → write latency on the main set.
    #[arg(long, default_value_t = 50)]
    edits: usize,
    /// The same on each scaling set smaller than the main set.
    #[arg(long, default_value_t = 50)]
    small_edits: usize,
    /// Measured repetitions of the no-op reconcile and of the floor (median reported).
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// App counts of the scaling series (jobs = apps / 2), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,50000")]
    scales: Vec<usize>,
    /// How long each emulated Marathon deployment takes, in milliseconds.
    #[arg(long, default_value_t = 50)]
    deployment_ms: u64,
    /// The mesosync binary for the `mesosync run` measurements.
    #[arg(long, default_value = "target/release/mesosync")]
    mesosync: PathBuf,
    /// `mesosync run --debounce` (its default is 300ms).
    #[arg(long, default_value = "300ms")]
    debounce: String,
    /// Python interpreter of the bench venv (with `marathon` and `marathon-deploy`);
    /// the Python comparison is skipped when not given.
    #[arg(long)]
    python: Option<PathBuf>,
    /// The Python driver script.
    #[arg(long, default_value = "scripts/bench_python.py")]
    python_script: PathBuf,
    /// Apps deployed by the real `marathon-deploy` CLI (it takes seconds per app).
    #[arg(long, default_value_t = 8)]
    marathon_deploy_sample: usize,
    /// Time box of the `marathon-deploy` sample, in seconds.
    #[arg(long, default_value_t = 45)]
    marathon_deploy_timeout: u64,
    /// Length of each task-state traffic window, in seconds (0: skip that part).
    #[arg(long, default_value_t = 10)]
    churn_seconds: u64,
    /// Task state updates per second during the traffic windows.
    #[arg(long, default_value_t = 100)]
    churn_rate: u64,
    /// Only the `mesosync run` part on the main set (memory, edits, task traffic).
    #[arg(long)]
    run_only: bool,
    /// Where to write the JSON results.
    #[arg(long, default_value = "target/bench/e2e.json")]
    out: PathBuf,
}

/// A generated manifest set, an emulator holding it in sync, and a pipeline on both.
struct World {
    spec: GenSpec,
    dir: tempfile::TempDir,
    sandbox: Sandbox,
    pipeline: Pipeline,
}

fn plan_options() -> PlanOptions {
    PlanOptions { chronos_version: Some(ChronosVersion::V2_4), ..PlanOptions::default() }
}

async fn world(apps: usize, jobs: usize, deployment: Duration) -> anyhow::Result<World> {
    let spec = GenSpec { apps, jobs, ..GenSpec::default() };
    let dir = tempfile::tempdir()?;
    generate::write_manifests(dir.path(), &spec)?;
    let desired = mesosync::source::load_dir_with(dir.path(), &LoadOptions::default())
        .map_err(|e| anyhow::anyhow!("generated set does not load: {e}"))?;
    let seed = generate::synced_seed(&desired, &plan_options(), Utc::now());
    let sandbox = emulator::start(SandboxConfig {
        seed: Some(seed),
        deployment_duration: deployment,
        ..SandboxConfig::default()
    })
    .await?;
    let clients = Clients {
        marathon: Some(MarathonClient::new(&HttpConfig::new([sandbox.marathon_url()]))?),
        chronos: Some(ChronosClient::new(
            &HttpConfig::new([sandbox.chronos_url()]),
            Some(ChronosVersion::V2_4),
        )?),
    };
    let pipeline = Pipeline {
        dir: dir.path().to_path_buf(),
        load: LoadOptions::default(),
        clients,
        plan: plan_options(),
        apply: ApplyOptions::default(),
        on_revision: None,
        caches: Default::default(),
    };
    Ok(World { spec, dir, sandbox, pipeline })
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    if xs.is_empty() { f64::NAN } else { xs[xs.len() / 2] }
}

fn percentile(mut xs: Vec<f64>, p: f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    if xs.is_empty() {
        return f64::NAN;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * xs.len() as f64).ceil().max(1.0) as usize;
    xs[rank.min(xs.len()) - 1]
}

/// One no-op reconcile measured two ways: **cold** (a fresh pipeline: every file
/// parsed, every pair compared — a controller's first reconcile, or `mesosync diff`)
/// and **warm** (the same pipeline again: its load cache and plan memo kept — every
/// later reconcile of a running controller).
#[derive(Debug, Default, Serialize, Clone)]
struct Noop {
    apps: usize,
    jobs: usize,
    /// Cold: median wall of `Pipeline::plan` on a fresh pipeline.
    wall_s: f64,
    load_s: f64,
    list_s: f64,
    plan_s: f64,
    /// Warm: median wall of `Pipeline::plan` on a pipeline that has reconciled before.
    warm_wall_s: f64,
    warm_load_s: f64,
    warm_plan_s: f64,
    floor_s: f64,
    floor_read_parse_files_s: f64,
    floor_get_parse_listings_s: f64,
    ratio_to_floor: f64,
    warm_ratio_to_floor: f64,
    gets_per_reconcile: f64,
    writes_per_reconcile: f64,
    requests: Vec<String>,
}

/// Only read + parse: every manifest file into generic YAML values, both listings
/// into generic JSON values. No checks, no model, no normalize, no diff.
async fn floor(w: &World, http: &reqwest::Client) -> anyhow::Result<(Duration, Duration)> {
    let t0 = Instant::now();
    let (files, errors) = walk::find_manifests(w.dir.path());
    ensure!(errors.is_empty(), "walk errors");
    let mut documents = 0usize;
    for file in &files {
        let text = std::fs::read_to_string(&file.path)?;
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text)?;
        documents += docs.len();
    }
    std::hint::black_box(documents);
    let files_done = t0.elapsed();
    let t1 = Instant::now();
    let get = |url: String| {
        let http = http.clone();
        async move {
            let bytes = http.get(url).send().await?.error_for_status()?.bytes().await?;
            Ok::<Value, anyhow::Error>(serde_json::from_slice(&bytes)?)
        }
    };
    let (apps, jobs) = futures::try_join!(
        get(format!("{}/v2/apps", w.sandbox.marathon_url())),
        get(format!("{}/scheduler/jobs", w.sandbox.chronos_url()))
    )?;
    std::hint::black_box((apps, jobs));
    Ok((files_done, t1.elapsed()))
}

fn request_line(r: &emulator::RecordedRequest) -> String {
    let q = if r.query.is_empty() { String::new() } else { format!("?{}", r.query) };
    format!("{} {}{} → {}", r.method, r.path, q, r.status)
}

async fn noop(w: &World, repeat: usize) -> anyhow::Result<Noop> {
    let http = reqwest::Client::new();
    // Warm up (connections, page cache) and check the set really is in sync.
    let planned = w.pipeline.plan(Utc::now()).await?;
    let writes: Vec<_> = planned.plan.actions.iter().filter(|a| a.is_write()).collect();
    ensure!(
        writes.is_empty(),
        "the seeded emulator is not in sync: {} writes, first {:?}",
        writes.len(),
        writes[0].object
    );
    floor(w, &http).await?;

    w.sandbox.reset_requests();
    let fresh = || Pipeline { caches: Default::default(), ..w.pipeline.clone() };
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for _ in 0..repeat {
        for (pipeline, walls) in [(fresh(), &mut cold), (w.pipeline.clone(), &mut warm)] {
            let t0 = Instant::now();
            let planned = pipeline.plan(Utc::now()).await?;
            // A reconcile executes only when the plan has writes (reconcile.rs).
            if planned.plan.actions.iter().any(|a| a.is_write()) {
                pipeline.execute(&planned.plan, None, None, &NoProgress).await;
            }
            walls.push(secs(t0.elapsed()));
            drop(planned);
        }
    }
    let log = w.sandbox.requests();
    let gets = log.iter().filter(|r| r.method == "GET").count();
    // The stages one after the other (`Pipeline::plan` runs load and list at once).
    let (mut loads, mut lists, mut plans, mut warm_loads, mut warm_plans) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut memo = mesosync::plan::Memo::default();
    {
        // Fill the memo as the controller's previous reconcile did.
        let (desired, live) =
            (w.pipeline.load().map_err(|e| anyhow::anyhow!("{e}"))?, w.pipeline.list().await?);
        mesosync::plan::compute_with(&desired, &live, &w.pipeline.plan, Utc::now(), &mut memo);
    }
    for _ in 0..repeat {
        let t0 = Instant::now();
        let desired = fresh().load().map_err(|e| anyhow::anyhow!("{e}"))?;
        let t1 = Instant::now();
        let live = w.pipeline.list().await?;
        let t2 = Instant::now();
        std::hint::black_box(mesosync::plan::compute(&desired, &live, &w.pipeline.plan, Utc::now()));
        let t3 = Instant::now();
        let desired = w.pipeline.load().map_err(|e| anyhow::anyhow!("{e}"))?;
        let t4 = Instant::now();
        let plan = mesosync::plan::compute_with(&desired, &live, &w.pipeline.plan, Utc::now(), &mut memo);
        let t5 = Instant::now();
        std::hint::black_box(plan);
        loads.push(secs(t1 - t0));
        lists.push(secs(t2 - t1));
        plans.push(secs(t3 - t2));
        warm_loads.push(secs(t4 - t3));
        warm_plans.push(secs(t5 - t4));
    }
    let (mut floors, mut floor_files, mut floor_lists) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..repeat {
        let (files, lists) = floor(w, &http).await?;
        floors.push(secs(files + lists));
        floor_files.push(secs(files));
        floor_lists.push(secs(lists));
    }
    let (wall, warm_wall) = (median(cold), median(warm));
    let floor = median(floors);
    Ok(Noop {
        apps: w.spec.apps,
        jobs: w.spec.jobs,
        wall_s: wall,
        load_s: median(loads),
        list_s: median(lists),
        plan_s: median(plans),
        warm_wall_s: warm_wall,
        warm_load_s: median(warm_loads),
        warm_plan_s: median(warm_plans),
        floor_s: floor,
        floor_read_parse_files_s: median(floor_files),
        floor_get_parse_listings_s: median(floor_lists),
        ratio_to_floor: wall / floor,
        warm_ratio_to_floor: warm_wall / floor,
        gets_per_reconcile: gets as f64 / (2 * repeat) as f64,
        writes_per_reconcile: (log.len() - gets) as f64 / (2 * repeat) as f64,
        requests: log.iter().take(4).map(request_line).collect(),
    })
}

/// Rewrite generated app `i`'s image (`…/bench/svc-<i>[-<earlier tag>]:<version>`) so
/// its manifest differs from live.
fn edit_app(w: &World, i: usize, tag: &str) -> anyhow::Result<PathBuf> {
    let path = w.dir.path().join(generate::app_file(&w.spec, i));
    let text = std::fs::read_to_string(&path)?;
    let needle = format!("/bench/svc-{i}");
    let at = text
        .match_indices(&needle)
        .map(|(at, _)| at + needle.len())
        .find(|&end| matches!(text.as_bytes().get(end), Some(b':' | b'-')))
        .with_context(|| format!("app {i} not found in {}", path.display()))?;
    std::fs::write(&path, format!("{}-{tag}{}", &text[..at], &text[at..]))?;
    Ok(path)
}

#[derive(Debug, Default, Serialize)]
struct ApplyRun {
    changed: usize,
    concurrency: usize,
    deployment_ms: u64,
    reconcile_wall_s: f64,
    plan_s: f64,
    apply_s: f64,
    applied: usize,
    puts: usize,
    gets: usize,
    apps_per_s: f64,
    follow_up_writes: usize,
}

/// Change `changed` apps spread over the set, then one reconcile (plan + apply).
/// Returns the measurement and the bodies written (for the Python tools).
async fn apply_changed(
    w: &World,
    changed: usize,
    deployment_ms: u64,
) -> anyhow::Result<(ApplyRun, Vec<Value>)> {
    let stride = (w.spec.apps / changed.max(1)).max(1);
    let chosen: Vec<usize> = (0..w.spec.apps).step_by(stride).take(changed).collect();
    for &i in &chosen {
        edit_app(w, i, "v2")?;
    }
    w.sandbox.reset_requests();
    let t0 = Instant::now();
    let planned = w.pipeline.plan(Utc::now()).await?;
    let t1 = Instant::now();
    let report = w.pipeline.execute(&planned.plan, None, None, &NoProgress).await;
    let wall = t0.elapsed();
    let applied = report.objects.iter().filter(|o| o.outcome == Outcome::Applied).count();
    let failed: Vec<_> = report.objects.iter().filter(|o| !o.outcome.is_ok()).take(3).collect();
    ensure!(failed.is_empty(), "apply failed: {failed:?}");
    let log = w.sandbox.requests();
    let puts = log.iter().filter(|r| r.method == "PUT").count();
    let gets = log.iter().filter(|r| r.method == "GET").count();
    let bodies: Vec<Value> = planned
        .plan
        .actions
        .iter()
        .filter(|a| a.kind() == ActionKind::Update && a.object.kind == ObjectKind::MarathonApp)
        .filter_map(|a| a.body.clone())
        .collect();
    ensure!(
        bodies.len() == chosen.len(),
        "planned {} updates for {} changed apps",
        bodies.len(),
        chosen.len()
    );
    let follow_up = w.pipeline.plan(Utc::now()).await?;
    let follow_up_writes = follow_up.plan.actions.iter().filter(|a| a.is_write()).count();
    Ok((
        ApplyRun {
            changed: chosen.len(),
            concurrency: w.pipeline.apply.concurrency,
            deployment_ms,
            reconcile_wall_s: secs(wall),
            plan_s: secs(t1 - t0),
            apply_s: secs(wall - (t1 - t0)),
            applied,
            puts,
            gets,
            apps_per_s: applied as f64 / secs(wall),
            follow_up_writes,
        },
        bodies,
    ))
}

#[derive(Debug, Default, Serialize)]
struct PythonRun {
    tool: String,
    mode: String,
    apps_attempted: usize,
    apps_done: usize,
    wall_s: f64,
    per_app_s: f64,
    projected_s: f64,
    puts: usize,
    gets: usize,
    timed_out: bool,
    remaining_diffs: Option<usize>,
    ratio_to_mesosync: f64,
    note: String,
}

/// Run the Python driver in `mode` on the JSON files in `dir`; the emulator's log
/// counts the PUTs it made.
async fn run_python(
    w: &World,
    python: &Path,
    script: &Path,
    mode: &str,
    dir: &Path,
    timeout: Duration,
) -> anyhow::Result<(Duration, bool, String)> {
    w.sandbox.reset_requests();
    let t0 = Instant::now();
    let mut child = tokio::process::Command::new(python)
        .arg(script)
        .arg(mode)
        .arg("--marathon")
        .arg(w.sandbox.marathon_url())
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", python.display()))?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let collect = |pipe: Option<tokio::process::ChildStdout>| async move {
        let mut text = String::new();
        if let Some(mut p) = pipe {
            let _ = tokio::io::AsyncReadExt::read_to_string(&mut p, &mut text).await;
        }
        text
    };
    let out_task = tokio::spawn(collect(stdout));
    let err_task = tokio::spawn(async move {
        let mut text = String::new();
        if let Some(mut p) = stderr {
            let _ = tokio::io::AsyncReadExt::read_to_string(&mut p, &mut text).await;
        }
        text
    });
    let timed_out = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => {
            let status = status?;
            if !status.success() {
                let err = err_task.await.unwrap_or_default();
                bail!("{mode} exited with {status}: {}", tail(&err, 1500));
            }
            false
        }
        Err(_) => {
            let _ = child.kill().await;
            true
        }
    };
    let wall = t0.elapsed();
    let out = out_task.await.unwrap_or_default();
    Ok((wall, timed_out, out))
}

fn tail(text: &str, n: usize) -> &str {
    let start = text.len().saturating_sub(n);
    let start = (start..text.len()).find(|&i| text.is_char_boundary(i)).unwrap_or(text.len());
    &text[start..]
}

async fn remaining_diffs(w: &World) -> anyhow::Result<usize> {
    let planned = w.pipeline.plan(Utc::now()).await?;
    Ok(planned.plan.actions.iter().filter(|a| a.is_write()).count())
}

async fn python_runs(
    w: &World,
    args: &Args,
    python: &Path,
    bodies: &[Value],
    before: &Value,
    mesosync_apply_s: f64,
) -> anyhow::Result<Vec<PythonRun>> {
    let root = tempfile::tempdir()?;
    let all_dir = root.path().join("all");
    let sample_dir = root.path().join("sample");
    std::fs::create_dir_all(&all_dir)?;
    std::fs::create_dir_all(&sample_dir)?;
    for (n, body) in bodies.iter().enumerate() {
        let text = serde_json::to_string_pretty(body)?;
        std::fs::write(all_dir.join(format!("app-{n:05}.json")), &text)?;
        if n < args.marathon_deploy_sample {
            std::fs::write(sample_dir.join(format!("app-{n:05}.json")), &text)?;
        }
    }
    let mut runs = Vec::new();
    let count = |mode: &str, wall: Duration, timed_out: bool, attempted: usize, tool: &str, note: &str| {
        let log = w.sandbox.requests();
        let puts = log.iter().filter(|r| r.method == "PUT" && r.path.starts_with("/v2/apps/")).count();
        let gets = log.iter().filter(|r| r.method == "GET").count();
        let done = puts.min(attempted);
        let per_app = if done > 0 { secs(wall) / done as f64 } else { f64::NAN };
        let projected = per_app * bodies.len() as f64;
        PythonRun {
            tool: tool.into(),
            mode: mode.into(),
            apps_attempted: attempted,
            apps_done: done,
            wall_s: secs(wall),
            per_app_s: per_app,
            projected_s: projected,
            puts,
            gets,
            timed_out,
            remaining_diffs: None,
            ratio_to_mesosync: projected / mesosync_apply_s,
            note: note.into(),
        }
    };
    let script = &args.python_script;
    let sequential_box = Duration::from_secs(300);
    for (mode, tool, note) in [
        (
            "client-put-wait",
            "marathon (PyPI client library)",
            "sequential PUT ?force=true, then poll GET /v2/deployments every 0.1 s until gone (marathon-deploy's own loop, without its 3 s grace sleeps)",
        ),
        (
            "client-put",
            "marathon (PyPI client library)",
            "sequential PUT ?force=true, no wait (a lower bound)",
        ),
    ] {
        w.sandbox.restore(before).map_err(|e| anyhow::anyhow!(e))?;
        let (wall, timed_out, _) = run_python(w, python, script, mode, &all_dir, sequential_box).await?;
        let mut run = count(mode, wall, timed_out, bodies.len(), tool, note);
        if !timed_out {
            run.remaining_diffs = Some(remaining_diffs(w).await?);
        }
        runs.push(run);
    }
    w.sandbox.restore(before).map_err(|e| anyhow::anyhow!(e))?;
    let (wall, timed_out, _) = run_python(
        w,
        python,
        script,
        "marathon-deploy",
        &sample_dir,
        Duration::from_secs(args.marathon_deploy_timeout),
    )
    .await?;
    runs.push(count(
        "marathon-deploy",
        wall,
        timed_out,
        args.marathon_deploy_sample.min(bodies.len()),
        "marathon-deploy 3.0.2 (PyPI CLI)",
        "`marathon-deploy --put DIR` on a sample (answers its YES prompt); per app it lists all apps, PUTs, and waits with 0.5 s polls and 3 s grace sleeps; projected to all changed apps",
    ));
    Ok(runs)
}

// ---------------------------------------------------------------------------------
// `mesosync run`, the real binary.

#[path = "support/process.rs"]
mod support_process;
#[path = "support/writes.rs"]
mod support_writes;

use support_process::StopOnDrop;
use support_writes::first_write_after;

struct Controller {
    child: StopOnDrop,
    status_url: String,
    http: reqwest::Client,
}

#[derive(Debug, Default, Serialize, Clone, Copy)]
struct Memory {
    vm_hwm_mb: f64,
    vm_rss_mb: f64,
}

fn memory(pid: u32) -> anyhow::Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> f64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(f64::NAN)
    };
    Ok(Memory { vm_hwm_mb: field("VmHWM:"), vm_rss_mb: field("VmRSS:") })
}

fn spawn_controller(args: &Args, w: &World, log: &Path) -> anyhow::Result<Controller> {
    let stderr = std::fs::File::create(log)?;
    let mut child = Command::new(&args.mesosync)
        .arg("run")
        .arg(w.dir.path())
        .args(["--marathon", &w.sandbox.marathon_url(), "--chronos", &w.sandbox.chronos_url()])
        .args(["--chronos-version", "2.4", "--listen", "127.0.0.1:0", "--debounce", &args.debounce])
        // BENCH_RUST_LOG=info keeps the controller's own timings in the log.
        .env("RUST_LOG", std::env::var("BENCH_RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .with_context(|| {
            format!("starting {} (build it with cargo build --release)", args.mesosync.display())
        })?;
    let stdout = child.stdout.take().context("stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if !sent && let Some(rest) = line.split("status at ").nth(1) {
                let url =
                    rest.split_whitespace().next().unwrap_or_default().trim_end_matches(',').to_string();
                let _ = tx.send(url);
                sent = true;
            }
        }
    });
    let status_url =
        rx.recv_timeout(Duration::from_secs(30)).context("mesosync run did not print its address")?;
    Ok(Controller { child: StopOnDrop(child), status_url, http: reqwest::Client::new() })
}

impl Controller {
    fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// Finished reconciles, from /metrics.
    async fn finished(&self) -> anyhow::Result<(u64, f64)> {
        let url = self.status_url.replace("/status", "/metrics");
        let text = self.http.get(url).send().await?.text().await?;
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name).map(str::trim))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        Ok((
            value("mesosync_reconcile_duration_seconds_count ") as u64,
            value("mesosync_reconcile_duration_seconds_sum "),
        ))
    }

    async fn wait_finished(&self, at_least: u64, timeout: Duration) -> anyhow::Result<(u64, f64)> {
        let t0 = Instant::now();
        loop {
            if let Ok((n, sum)) = self.finished().await
                && n >= at_least
            {
                return Ok((n, sum));
            }
            ensure!(t0.elapsed() < timeout, "mesosync run finished no reconcile within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Idle: every reconcile started (one `GET /v2/apps` each) has finished, and the
    /// emulator heard nothing for `quiet`.
    async fn wait_idle(&self, sandbox: &Sandbox, quiet: Duration, timeout: Duration) -> anyhow::Result<()> {
        let t0 = Instant::now();
        let mut last_len = usize::MAX;
        let mut since = Instant::now();
        loop {
            let log = sandbox.requests();
            if log.len() != last_len {
                last_len = log.len();
                since = Instant::now();
            }
            let started = log.iter().filter(|r| r.method == "GET" && r.path == "/v2/apps").count() as u64;
            let (finished, _) = self.finished().await?;
            if finished >= started && since.elapsed() >= quiet {
                return Ok(());
            }
            ensure!(t0.elapsed() < timeout, "mesosync run did not settle within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// CPU time (user + system) of a process so far, from /proc/<pid>/stat.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("malformed /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Ok((ticks(11) + ticks(12)) / 100.0)
}

/// One window of `mesosync run` under (or without) task-state traffic.
#[derive(Debug, Default, Serialize, Clone)]
struct TrafficWindow {
    what: String,
    seconds: f64,
    task_updates: usize,
    reconciles: u64,
    cpu_seconds: f64,
    cpu_percent: f64,
}

/// Run `seconds` of traffic at `rate` task updates per second (0: none): the tasks of
/// one app after another are killed and replaced (TASK_KILLED, then the replacement's
/// TASK_STAGING and TASK_RUNNING — three updates per task, each with its
/// `instance_changed_event`, plus health events). Counts the reconciles the controller
/// started (one `GET /v2/apps` each) and its CPU time, until it is idle again.
async fn traffic_window(
    w: &World,
    c: &Controller,
    what: &str,
    seconds: u64,
    rate: u64,
) -> anyhow::Result<TrafficWindow> {
    let reconciles = |log: &[mesosync::emulator::RecordedRequest]| {
        log.iter().filter(|r| r.method == "GET" && r.path == "/v2/apps").count() as u64
    };
    let started_before = reconciles(&w.sandbox.requests());
    let cpu_before = cpu_seconds(c.pid())?;
    let t0 = Instant::now();
    let window = Duration::from_secs(seconds);
    let mut updates = 0usize;
    let mut next = 0usize;
    while t0.elapsed() < window {
        if rate > 0 {
            updates += 3 * w.sandbox.kill_tasks(&generate::app_id(next % w.spec.apps));
            next += 1;
        }
        // Pace to `rate`; without traffic just wait out the window.
        let due = if rate > 0 { Duration::from_secs_f64(updates as f64 / rate as f64) } else { window };
        if let Some(wait) = due.min(window).checked_sub(t0.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
    c.wait_idle(&w.sandbox, Duration::from_millis(1000), Duration::from_secs(120)).await?;
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds(c.pid())? - cpu_before;
    Ok(TrafficWindow {
        what: what.to_owned(),
        seconds: elapsed,
        task_updates: updates,
        reconciles: reconciles(&w.sandbox.requests()) - started_before,
        cpu_seconds: cpu,
        cpu_percent: 100.0 * cpu / elapsed,
    })
}

#[derive(Debug, Default, Serialize, Clone)]
struct RunMeasure {
    apps: usize,
    jobs: usize,
    first_reconcile_s: f64,
    after_first: Memory,
    steady: Memory,
    edits: usize,
    latency_p50_ms: f64,
    latency_p95_ms: f64,
    latency_max_ms: f64,
    latencies_ms: Vec<f64>,
    debounce: String,
    end: Memory,
    traffic: Vec<TrafficWindow>,
}

async fn run_controller(args: &Args, w: &World, edits: usize, traffic: bool) -> anyhow::Result<RunMeasure> {
    std::fs::create_dir_all("target/bench")?;
    let log = PathBuf::from(format!("target/bench/mesosync-run-{}.log", w.spec.apps));
    w.sandbox.reset_requests();
    let c = spawn_controller(args, w, &log)?;
    let (_, first) = c.wait_finished(1, Duration::from_secs(300)).await?;
    let after_first = memory(c.pid())?;
    c.wait_idle(&w.sandbox, Duration::from_millis(1000), Duration::from_secs(120)).await?;
    let steady = memory(c.pid())?;
    let mut latencies = Vec::new();
    for e in 0..edits {
        // Distinct apps, spread over the set, none of those changed by the apply step.
        let i = (e * 7919 + 1) % w.spec.apps;
        let before = w.sandbox.requests().len();
        let t0 = Instant::now();
        edit_app(w, i, &format!("e{e}"))?;
        let latency =
            first_write_after(&w.sandbox, before, t0, Duration::from_secs(60), &format!("edit {e}")).await?;
        latencies.push(latency.as_secs_f64() * 1000.0);
        c.wait_idle(&w.sandbox, Duration::from_millis(500), Duration::from_secs(120)).await?;
    }
    let end = memory(c.pid())?;
    let mut windows = Vec::new();
    if traffic && args.churn_seconds > 0 {
        windows.push(traffic_window(w, &c, "idle", args.churn_seconds, 0).await?);
        windows.push(
            traffic_window(w, &c, "task traffic, event_type honoured", args.churn_seconds, args.churn_rate)
                .await?,
        );
        w.sandbox.ignore_event_type_filters(true);
        let ignored = traffic_window(
            w,
            &c,
            "task traffic, event_type ignored (Marathon < 1.3.7)",
            args.churn_seconds,
            args.churn_rate,
        )
        .await;
        w.sandbox.ignore_event_type_filters(false);
        windows.push(ignored?);
    }
    drop(c);
    Ok(RunMeasure {
        apps: w.spec.apps,
        jobs: w.spec.jobs,
        first_reconcile_s: first,
        after_first,
        steady,
        edits: latencies.len(),
        latency_p50_ms: percentile(latencies.clone(), 50.0),
        latency_p95_ms: percentile(latencies.clone(), 95.0),
        latency_max_ms: latencies.iter().copied().fold(f64::NAN, f64::max),
        latencies_ms: latencies,
        debounce: args.debounce.clone(),
        end,
        traffic: windows,
    })
}

// ---------------------------------------------------------------------------------

#[derive(Debug, Default, Serialize)]
struct Results {
    machine: Value,
    main: Option<Noop>,
    apply: Option<ApplyRun>,
    python: Vec<PythonRun>,
    python_error: Option<String>,
    run: Option<RunMeasure>,
    scaling: Vec<(Noop, RunMeasure)>,
    total_s: f64,
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| {
        t.lines().find_map(|l| {
            l.strip_prefix("model name").map(|r| r.trim_start_matches([' ', '\t', ':']).to_string())
        })
    });
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| t.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("").to_string()));
    json!({
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": cpu,
        "mem_total_kb": mem,
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
    })
}

fn print_markdown(r: &Results) {
    println!("\n## Results\n");
    println!("machine: {}\n", r.machine);
    if let Some(n) = &r.main {
        println!("### No-op reconcile ({} apps + {} jobs)\n", n.apps, n.jobs);
        println!("| measure | value |\n|---|---|");
        println!("| cold: wall (median; fresh pipeline) | {:.3} s |", n.wall_s);
        println!(
            "| cold: load / list / plan, one after the other | {:.3} / {:.3} / {:.3} s |",
            n.load_s, n.list_s, n.plan_s
        );
        println!("| warm: wall (median; caches kept, as in `mesosync run`) | {:.3} s |", n.warm_wall_s);
        println!("| warm: load / plan | {:.3} / {:.3} s |", n.warm_load_s, n.warm_plan_s);
        println!(
            "| floor (read+parse files / GET+parse listings) | {:.3} s ({:.3} / {:.3}) |",
            n.floor_s, n.floor_read_parse_files_s, n.floor_get_parse_listings_s
        );
        println!(
            "| ratio wall / floor: cold / warm | {:.2}× / {:.2}× |",
            n.ratio_to_floor, n.warm_ratio_to_floor
        );
        println!(
            "| requests per reconcile | {} GET, {} writes |",
            n.gets_per_reconcile, n.writes_per_reconcile
        );
        println!("| requests seen | {} |\n", n.requests.join("; "));
    }
    if let Some(a) = &r.apply {
        println!(
            "### Apply of {} changed apps (concurrency {}, deployments {} ms)\n",
            a.changed, a.concurrency, a.deployment_ms
        );
        println!(
            "wall {:.2} s (plan {:.2} s + apply {:.2} s), {} applied, {} PUT, {} GET, {:.0} apps/s, follow-up writes {}\n",
            a.reconcile_wall_s,
            a.plan_s,
            a.apply_s,
            a.applied,
            a.puts,
            a.gets,
            a.apps_per_s,
            a.follow_up_writes
        );
    }
    if !r.python.is_empty() {
        println!(
            "| Python tool | mode | apps done | wall | per app | projected (all) | mesosync ratio | remaining diffs |\n|---|---|---|---|---|---|---|---|"
        );
        for p in &r.python {
            println!(
                "| {} | {} | {}/{}{} | {:.2} s | {:.3} s | {:.1} s | {:.1}× | {} |",
                p.tool,
                p.mode,
                p.apps_done,
                p.apps_attempted,
                if p.timed_out { " (time box)" } else { "" },
                p.wall_s,
                p.per_app_s,
                p.projected_s,
                p.ratio_to_mesosync,
                p.remaining_diffs.map(|d| d.to_string()).unwrap_or("-".into())
            );
        }
        println!();
    }
    if let Some(e) = &r.python_error {
        println!("Python comparison failed: {e}\n");
    }
    if let Some(run) = &r.run {
        println!("### mesosync run ({} apps + {} jobs, debounce {})\n", run.apps, run.jobs, run.debounce);
        println!(
            "first reconcile {:.2} s; RSS after it {:.1} MB (peak {:.1} MB); steady {:.1} MB; after {} edits RSS {:.1} MB, peak {:.1} MB",
            run.first_reconcile_s,
            run.after_first.vm_rss_mb,
            run.after_first.vm_hwm_mb,
            run.steady.vm_rss_mb,
            run.edits,
            run.end.vm_rss_mb,
            run.end.vm_hwm_mb
        );
        println!(
            "change → first write: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms over {} edits\n",
            run.latency_p50_ms, run.latency_p95_ms, run.latency_max_ms, run.edits
        );
        if !run.traffic.is_empty() {
            println!(
                "| window | seconds | task updates | reconciles started | controller CPU |\n|---|---|---|---|---|"
            );
            for t in &run.traffic {
                println!(
                    "| {} | {:.1} | {} | {} | {:.2} s ({:.1} %) |",
                    t.what, t.seconds, t.task_updates, t.reconciles, t.cpu_seconds, t.cpu_percent
                );
            }
            println!();
        }
    }
    if !r.scaling.is_empty() {
        println!("### Scaling\n");
        println!(
            "| apps + jobs | no-op cold / warm | cold per 1k objects | floor | ratio cold / warm | cold load / list / plan | run: first reconcile | run: RSS after / peak | change → write p50 / p95 (edits) |\n|---|---|---|---|---|---|---|---|---|"
        );
        for (n, run) in &r.scaling {
            let objects = (n.apps + n.jobs) as f64 / 1000.0;
            println!(
                "| {} + {} | {:.3} / {:.3} s | {:.1} ms | {:.3} s | {:.2}× / {:.2}× | {:.3} / {:.3} / {:.3} s | {:.2} s | {:.1} / {:.1} MB | {:.0} / {:.0} ms ({}) |",
                n.apps,
                n.jobs,
                n.wall_s,
                n.warm_wall_s,
                n.wall_s * 1000.0 / objects,
                n.floor_s,
                n.ratio_to_floor,
                n.warm_ratio_to_floor,
                n.load_s,
                n.list_s,
                n.plan_s,
                run.first_reconcile_s,
                run.after_first.vm_rss_mb,
                run.after_first.vm_hwm_mb,
                run.latency_p50_ms,
                run.latency_p95_ms,
                run.edits
            );
        }
        println!();
    }
    println!("total bench time {:.0} s", r.total_s);
}

async fn bench(args: Args) -> anyhow::Result<Results> {
    let start = Instant::now();
    let deployment = Duration::from_millis(args.deployment_ms);
    let mut results = Results { machine: machine(), ..Results::default() };
    let step = |what: &str| eprintln!("[{:>6.1} s] {what}", start.elapsed().as_secs_f64());

    step(&format!("generating and seeding {} apps + {} jobs", args.apps, args.jobs));
    let w = world(args.apps, args.jobs, deployment).await?;
    if args.run_only {
        step(&format!("mesosync run: memory, {} edits and task traffic", args.edits));
        results.run = Some(run_controller(&args, &w, args.edits, true).await?);
        results.total_s = start.elapsed().as_secs_f64();
        return Ok(results);
    }
    step("no-op reconciles");
    let main = noop(&w, args.repeat).await?;
    step(&format!("apply of {} changed apps", args.changed));
    let before = w.sandbox.snapshot();
    let (apply, bodies) = apply_changed(&w, args.changed, args.deployment_ms).await?;
    let after = w.sandbox.snapshot();
    let mesosync_apply_s = apply.reconcile_wall_s;
    results.apply = Some(apply);
    if let Some(python) = &args.python {
        step("Python tools on the same changed apps");
        match python_runs(&w, &args, python, &bodies, &before, mesosync_apply_s).await {
            Ok(runs) => results.python = runs,
            Err(e) => results.python_error = Some(format!("{e:#}")),
        }
    }
    w.sandbox.restore(&after).map_err(|e| anyhow::anyhow!(e))?;
    step(&format!("mesosync run: memory and {} edits", args.edits));
    let run = run_controller(&args, &w, args.edits, true).await?;
    let main_scale = (main.apps, main.jobs);
    let mut by_apps: HashMap<usize, (Noop, RunMeasure)> = HashMap::new();
    results.main = Some(main);
    results.run = Some(run);
    drop(w);
    for &apps in &args.scales {
        if (apps, apps / 2) == main_scale {
            continue;
        }
        step(&format!("scaling: {apps} apps + {} jobs", apps / 2));
        let w = world(apps, apps / 2, deployment).await?;
        let n = noop(&w, args.repeat.min(3)).await?;
        let edits = if apps < main_scale.0 { args.small_edits } else { 0 };
        step(&format!("scaling: mesosync run on {apps} apps, {edits} edits"));
        let run = run_controller(&args, &w, edits, false).await?;
        by_apps.insert(apps, (n, run));
    }
    for &apps in &args.scales {
        if (apps, apps / 2) == main_scale {
            let (Some(main), Some(run)) = (&results.main, &results.run) else { continue };
            let entry = (
                Noop { requests: Vec::new(), ..main.clone() },
                RunMeasure { latencies_ms: Vec::new(), ..run.clone() },
            );
            results.scaling.push(entry);
        } else if let Some(entry) = by_apps.remove(&apps) {
            results.scaling.push(entry);
        }
    }
    results.total_s = start.elapsed().as_secs_f64();
    Ok(results)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let out = args.out.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let results = runtime.block_on(bench(args))?;
    print_markdown(&results);
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&results)?)?;
    eprintln!("results written to {}", out.display());
    Ok(())
}
