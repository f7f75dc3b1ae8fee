//! Bring-up against the critical-path floor (issue #17): the time from an empty
//! sandbox to every object Healthy, for the Kolla manifests (`manifests/`) and for a
//! generated set (default 1,000 apps + 500 run-once jobs in chains that apps wait on,
//! `GenSpec::run_once`), next to the floor no orchestrator can beat: the longest
//! dependency chain, summing each app's deployment time and each run-once job's run
//! time along it. Run by `make bench-bringup` (release build); figures in BENCHMARKS.md.
//!
//! For each set: `mesosync sandbox` (the release binary, empty, 127.0.0.1 port 0, test
//! controls on) gets a deployment time per app and a run time per run-once job (the
//! means `--deployment-ms` / `--job-run-ms`, each object drawn ±`--spread` around them,
//! seeded: real services do not all take the same time), scripted through
//! `/_sandbox/marathon/outcomes/{id}` and `/_sandbox/chronos/jobs/{name}/outcome` and
//! read back from there for the floor. Then `mesosync run` starts on the set (the clock
//! starts just before it is spawned) and the bench polls the emulator every
//! `--poll-ms` — the same listings the controller reads, judged by mesosync's own
//! health rules — until every desired object is Healthy. Reported: the time, the floor,
//! their ratio, when the controller's first reconcile ended, the longest chain, and the
//! objects that finished latest after their own earliest possible end (where the time
//! went).

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chrono::Utc;
use clap::Parser;
use serde::Serialize;
use serde_json::{Value, json};

use mesosync::generate::{self, GenSpec};
use mesosync::health::chronos::RunStates;
use mesosync::health::{self, Health, Listed};
use mesosync::model::{LiveState, ObjectKind, ObjectRef};
use mesosync::normalize::ChronosVersion;
use mesosync::plan::PlanOptions;
use mesosync::source::LoadOptions;

#[path = "support/process.rs"]
mod support_process;

use support_process::StopOnDrop;

#[derive(Debug, Parser)]
#[command(about = "bring-up from an empty sandbox to every object Healthy, against the critical-path floor")]
struct Args {
    /// The sets to bring up, comma-separated: `kolla` (the manifests in --manifests),
    /// `generated` (--apps apps + --jobs run-once jobs).
    #[arg(long, value_delimiter = ',', default_value = "kolla,generated")]
    sets: Vec<String>,
    /// Apps in the generated set.
    #[arg(long, default_value_t = 1_000)]
    apps: usize,
    /// Jobs in the generated set (run-once, in chains of five).
    #[arg(long, default_value_t = 500)]
    jobs: usize,
    /// Mean time of one app's Marathon deployment (its tasks staged, running, healthy),
    /// in milliseconds.
    #[arg(long, default_value_t = 3_000)]
    deployment_ms: u64,
    /// Mean time of one Chronos job run, in milliseconds.
    #[arg(long, default_value_t = 1_500)]
    job_run_ms: u64,
    /// Each object's time is drawn uniformly within ±spread of the mean (0: all equal).
    #[arg(long, default_value_t = 0.5)]
    spread: f64,
    /// Seed of the per-object times.
    #[arg(long, default_value_t = 17)]
    seed: u64,
    /// How often the bench looks at the emulator (the resolution of the figure).
    #[arg(long, default_value_t = 100)]
    poll_ms: u64,
    /// Give up on a set after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout_s: u64,
    /// The Kolla manifests.
    #[arg(long, default_value = "manifests")]
    manifests: PathBuf,
    /// The age identity that decrypts the Kolla set's SOPS file (the demo key `make
    /// run` uses).
    #[arg(long, default_value = "examples/demo-age-key.txt")]
    age_key: PathBuf,
    /// The mesosync binary (sandbox and controller).
    #[arg(long, default_value = "target/release/mesosync")]
    mesosync: PathBuf,
    /// Extra arguments for `mesosync run`, whitespace-separated (e.g. "--concurrency 16").
    #[arg(long, default_value = "")]
    run_args: String,
    /// Where to write the JSON results.
    #[arg(long, default_value = "target/bench/bringup.json")]
    out: PathBuf,
}

/// One set to bring up: where its manifests are and what loading them needs.
struct Set {
    name: String,
    dir: PathBuf,
    env: Vec<(String, String)>,
    _tmp: Option<tempfile::TempDir>,
}

/// A desired object in the dependency graph: its own time and what it waits for.
struct Node {
    object: ObjectRef,
    /// Deployment (app) or run (run-once job) time; 0 for a job nothing runs.
    own: Duration,
    deps: Vec<usize>,
}

/// The longest chain: its length and objects, and each object's earliest end.
struct Floor {
    total: Duration,
    chain: Vec<(ObjectRef, Duration)>,
    earliest: Vec<Duration>,
}

#[derive(Debug, Serialize)]
struct Result {
    set: String,
    apps: usize,
    jobs: usize,
    run_once_jobs: usize,
    floor_s: f64,
    measured_s: f64,
    ratio: f64,
    first_reconcile_s: Option<f64>,
    chain: Vec<String>,
    latest: Vec<String>,
}

/// A value in [0, 1) from `seed` and `key`: FNV-1a, so a set's times never change.
fn unit(seed: u64, key: &str) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h >> 11) as f64 / (1u64 << 53) as f64
}

fn drawn(args: &Args, mean_ms: u64, key: &str) -> u64 {
    let factor = 1.0 + args.spread * (2.0 * unit(args.seed, key) - 1.0);
    (mean_ms as f64 * factor).round().max(1.0) as u64
}

fn sets(args: &Args) -> anyhow::Result<Vec<Set>> {
    let mut out = Vec::new();
    for name in &args.sets {
        match name.as_str() {
            "kolla" => out.push(Set {
                name: "Kolla (manifests/)".into(),
                dir: args.manifests.clone(),
                env: vec![("MESOSYNC_AGE_KEY_FILE".into(), args.age_key.display().to_string())],
                _tmp: None,
            }),
            "generated" => {
                let tmp = tempfile::tempdir()?;
                let spec = GenSpec { apps: args.apps, jobs: args.jobs, run_once: true, ..GenSpec::default() };
                generate::write_manifests(tmp.path(), &spec)?;
                out.push(Set {
                    name: format!("generated ({} apps, {} run-once jobs)", args.apps, args.jobs),
                    dir: tmp.path().to_path_buf(),
                    env: Vec::new(),
                    _tmp: Some(tmp),
                });
            }
            other => bail!("unknown set {other:?} (kolla, generated)"),
        }
    }
    Ok(out)
}

/// `mesosync sandbox` on two free ports, empty, with the test controls.
fn sandbox(args: &Args) -> anyhow::Result<(StopOnDrop, String, String)> {
    let mut child = Command::new(&args.mesosync)
        .args(["sandbox", "--marathon-addr", "127.0.0.1:0", "--chronos-addr", "127.0.0.1:0", "--controls"])
        .args(["--deployment-duration", &args.deployment_ms.to_string()])
        .args(["--job-run-duration", &args.job_run_ms.to_string()])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {} (make bench-bringup builds it)", args.mesosync.display()))?;
    let stdout = child.stdout.take().context("stdout")?;
    let guard = StopOnDrop(child);
    let mut lines = BufReader::new(stdout).lines();
    let mut url = |prefix: &str| -> anyhow::Result<String> {
        let line = lines.next().context("the sandbox printed nothing")??;
        let rest = line.strip_prefix(prefix).with_context(|| format!("unexpected sandbox line {line:?}"))?;
        Ok(rest.split_whitespace().next().unwrap_or_default().to_string())
    };
    let marathon = url("marathon:")?;
    let chronos = url("chronos:")?;
    Ok((guard, marathon, chronos))
}

/// The desired set as a graph (from the plan against an empty cluster: every object a
/// write, every edge kept), with the times the emulator was told, read back from it.
async fn graph(
    args: &Args,
    set: &Set,
    http: &reqwest::Client,
    marathon: &str,
    chronos: &str,
) -> anyhow::Result<(mesosync::model::DesiredState, Vec<Node>)> {
    let load = LoadOptions { env: set.env.clone(), ..LoadOptions::default() };
    let desired = mesosync::source::load_dir_with(&set.dir, &load)
        .map_err(|e| anyhow::anyhow!("{} does not load: {e}", set.dir.display()))?;
    let opts = PlanOptions { chronos_version: Some(ChronosVersion::V2_4), ..PlanOptions::default() };
    let plan = mesosync::plan::compute(&desired, &LiveState::default(), &opts, Utc::now());
    // Script every object's time.
    for a in &plan.actions {
        let (url, body) = match a.object.kind {
            ObjectKind::MarathonApp => (
                format!("{marathon}/_sandbox/marathon/outcomes{}", a.object.id),
                json!({"deploymentMs": drawn(args, args.deployment_ms, &a.object.id)}),
            ),
            ObjectKind::ChronosJob => (
                format!("{chronos}/_sandbox/chronos/jobs/{}/outcome", a.object.id),
                json!({"durationMs": drawn(args, args.job_run_ms, &a.object.id)}),
            ),
        };
        let answer = http.put(&url).json(&body).send().await?;
        ensure!(answer.status().is_success(), "PUT {url}: {}", answer.status());
    }
    // The floor is computed from what the emulator holds, not from what was sent.
    let apps: BTreeMap<String, Value> =
        http.get(format!("{marathon}/_sandbox/marathon/outcomes")).send().await?.json().await?;
    let jobs: Value = http.get(format!("{chronos}/_sandbox/chronos/outcomes")).send().await?.json().await?;
    let ms = |v: Option<&Value>| v.and_then(Value::as_u64).map(Duration::from_millis);
    let index: HashMap<&ObjectRef, usize> =
        plan.actions.iter().enumerate().map(|(i, a)| (&a.object, i)).collect();
    let mut nodes = Vec::new();
    for a in &plan.actions {
        let own = match a.object.kind {
            ObjectKind::MarathonApp => ms(apps.get(&a.object.id).and_then(|o| o.get("deploymentMs")))
                .unwrap_or(Duration::from_millis(args.deployment_ms)),
            ObjectKind::ChronosJob if a.run.is_some() => {
                ms(jobs["jobs"].get(&a.object.id).and_then(|o| o.get("durationMs")))
                    .or_else(|| ms(jobs["default"].get("durationMs")))
                    .context("the emulator's run time")?
            }
            ObjectKind::ChronosJob => Duration::ZERO,
        };
        let deps = a.depends_on.iter().filter_map(|d| index.get(d).copied()).collect();
        nodes.push(Node { object: a.object.clone(), own, deps });
    }
    Ok((desired, nodes))
}

/// The longest chain through `nodes` (given in plan order: dependencies first).
fn floor(nodes: &[Node]) -> Floor {
    let mut earliest = vec![Duration::ZERO; nodes.len()];
    let mut via: Vec<Option<usize>> = vec![None; nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        let before = n.deps.iter().copied().filter(|&d| d < i).max_by_key(|&d| earliest[d]);
        earliest[i] = n.own + before.map_or(Duration::ZERO, |d| earliest[d]);
        via[i] = before;
    }
    let mut chain = Vec::new();
    let mut at = (0..nodes.len()).max_by_key(|&i| earliest[i]);
    while let Some(i) = at {
        chain.push((nodes[i].object.clone(), nodes[i].own));
        at = via[i];
    }
    chain.reverse();
    let total = earliest.iter().copied().max().unwrap_or_default();
    Floor { total, chain, earliest }
}

/// The health of every desired object, from the emulator's listings.
async fn observe(
    http: &reqwest::Client,
    marathon: &str,
    chronos: &str,
    desired: &mesosync::model::DesiredState,
    objects: &[ObjectRef],
) -> anyhow::Result<Vec<Health>> {
    let apps: Value =
        http.get(format!("{marathon}/v2/apps?embed=apps.lastTaskFailure")).send().await?.json().await?;
    let jobs: Value = http.get(format!("{chronos}/scheduler/jobs")).send().await?.json().await?;
    let csv = http.get(format!("{chronos}/scheduler/graph/csv")).send().await?.text().await?;
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let live = LiveState::from_values(&list(&apps["apps"]), &list(&jobs));
    let states = RunStates::parse_graph_csv(&csv);
    let listed = Listed { live: &live, chronos_listed: true, run_states: Some(&states) };
    let map = health::assess(objects, desired, listed, Utc::now());
    Ok(objects.iter().map(|o| map.get(o).map_or(Health::Unknown, |s| s.health)).collect())
}

/// Reconciles `mesosync run` finished (its `/metrics`).
async fn reconciles(http: &reqwest::Client, base: &str) -> u64 {
    let Ok(answer) = http.get(format!("{base}/metrics")).send().await else { return 0 };
    let text = answer.text().await.unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("mesosync_reconcile_duration_seconds_count "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0) as u64
}

async fn bring_up(args: &Args, set: &Set) -> anyhow::Result<Result> {
    let http = reqwest::Client::new();
    let (_sandbox, marathon, chronos) = sandbox(args)?;
    let (desired, nodes) = graph(args, set, &http, &marathon, &chronos).await?;
    let floor = floor(&nodes);
    let objects: Vec<ObjectRef> = nodes.iter().map(|n| n.object.clone()).collect();
    std::fs::create_dir_all("target/bench")?;
    let log = PathBuf::from(format!(
        "target/bench/mesosync-run-bringup-{}.log",
        set.name.split(' ').next().unwrap_or("set")
    ));

    let mut cmd = Command::new(&args.mesosync);
    cmd.arg("run")
        .arg(&set.dir)
        .args(["--marathon", &marathon, "--chronos", &chronos, "--chronos-version", "2.4"])
        .args(["--listen", "127.0.0.1:0"])
        .args(args.run_args.split_whitespace())
        .envs(set.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log)?);
    let t0 = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("starting {}", args.mesosync.display()))?;
    let stdout = child.stdout.take().context("stdout")?;
    let _controller = StopOnDrop(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines().map_while(std::result::Result::ok) {
            if !sent && let Some(rest) = line.split("status at ").nth(1) {
                let _ = tx.send(rest.split("/status").next().unwrap_or_default().to_string());
                sent = true;
            }
        }
    });

    let mut base: Option<String> = None;
    let mut first_reconcile = None;
    let mut healthy_at: Vec<Option<Duration>> = vec![None; objects.len()];
    let poll = Duration::from_millis(args.poll_ms);
    let measured = loop {
        let now = t0.elapsed();
        ensure!(
            now < Duration::from_secs(args.timeout_s),
            "{}: not all Healthy within {}s (log: {})",
            set.name,
            args.timeout_s,
            log.display()
        );
        if base.is_none() {
            base = rx.try_recv().ok();
        }
        if let (Some(b), None) = (&base, first_reconcile) {
            if reconciles(&http, b).await > 0 {
                first_reconcile = Some(t0.elapsed());
            }
        }
        let healths = observe(&http, &marathon, &chronos, &desired, &objects).await?;
        for (at, h) in healthy_at.iter_mut().zip(&healths) {
            if at.is_none() && *h == Health::Healthy {
                *at = Some(now);
            }
        }
        if healths.iter().all(|h| *h == Health::Healthy) {
            break now;
        }
        tokio::time::sleep(poll).await;
    };
    // When the controller itself was done: its first reconcile (the apply) ended.
    while first_reconcile.is_none() && t0.elapsed() < Duration::from_secs(args.timeout_s) {
        if base.is_none() {
            base = rx.try_recv().ok();
        }
        if let Some(b) = &base {
            if reconciles(&http, b).await > 0 {
                first_reconcile = Some(t0.elapsed());
            }
        }
        tokio::time::sleep(poll).await;
    }
    // Where the time went: the objects that ended latest after their earliest end.
    let mut late: Vec<(Duration, usize)> = healthy_at
        .iter()
        .enumerate()
        .map(|(i, at)| (at.unwrap_or(measured).saturating_sub(floor.earliest[i]), i))
        .collect();
    late.sort_by(|a, b| b.cmp(a));
    let latest = late
        .iter()
        .take(5)
        .map(|(slack, i)| {
            format!(
                "{} (earliest {:.1}s, Healthy at {:.1}s, +{:.1}s)",
                objects[*i],
                floor.earliest[*i].as_secs_f64(),
                healthy_at[*i].unwrap_or(measured).as_secs_f64(),
                slack.as_secs_f64()
            )
        })
        .collect();
    let count = |k: ObjectKind| objects.iter().filter(|o| o.kind == k).count();
    Ok(Result {
        set: set.name.clone(),
        apps: count(ObjectKind::MarathonApp),
        jobs: count(ObjectKind::ChronosJob),
        run_once_jobs: nodes
            .iter()
            .filter(|n| n.object.kind == ObjectKind::ChronosJob && !n.own.is_zero())
            .count(),
        floor_s: floor.total.as_secs_f64(),
        measured_s: measured.as_secs_f64(),
        ratio: measured.as_secs_f64() / floor.total.as_secs_f64().max(f64::EPSILON),
        first_reconcile_s: first_reconcile.map(|d| d.as_secs_f64()),
        chain: floor.chain.iter().map(|(o, d)| format!("{o} {:.1}s", d.as_secs_f64())).collect(),
        latest,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let mut results = Vec::new();
    for set in sets(&args)? {
        eprintln!("bench-bringup: {}", set.name);
        let r = bring_up(&args, &set).await?;
        eprintln!("  {:.2}s, floor {:.2}s, ratio {:.3}", r.measured_s, r.floor_s, r.ratio);
        results.push(r);
    }
    println!(
        "deployments {} ms ± {:.0}%, job runs {} ms ± {:.0}% (seed {}), polled every {} ms\n",
        args.deployment_ms,
        args.spread * 100.0,
        args.job_run_ms,
        args.spread * 100.0,
        args.seed,
        args.poll_ms
    );
    println!(
        "| set | apps | jobs (run-once) | floor | every object Healthy | ratio | first reconcile ended |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in &results {
        println!(
            "| {} | {} | {} ({}) | {:.2} s | {:.2} s | {:.3}× | {} |",
            r.set,
            r.apps,
            r.jobs,
            r.run_once_jobs,
            r.floor_s,
            r.measured_s,
            r.ratio,
            r.first_reconcile_s.map_or("-".into(), |s| format!("{s:.2} s"))
        );
    }
    for r in &results {
        println!("\n{}: longest chain ({} links): {}", r.set, r.chain.len(), r.chain.join(" → "));
        println!("{}: latest after their earliest end: {}", r.set, r.latest.join("; "));
    }
    println!("\nwall {:.0} s", started.elapsed().as_secs_f64());
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(
        &args.out,
        serde_json::to_string_pretty(&json!({"args": format!("{args:?}"), "results": results}))?,
    )?;
    Ok(())
}
