//! Push → first write latency (issue 20.3): a commit pushed to a local bare repository
//! until the emulator sees the first write it causes, for `mesosync run --git-pull` on
//! a generated set (default 10,000 apps + 5,000 jobs), **with the push webhook** (the
//! bench sends the signed request right after `git push`, as a Git host does) and
//! **without** it (`--git-interval 5s` polling). Run by `make bench-push` (release
//! build); figures in BENCHMARKS.md.
//!
//! Each push changes one app's image in one manifest file of an author clone, commits
//! and pushes to the bare origin; the clock starts when `git push` has returned. Between
//! pushes the bench waits until the controller is idle (every reconcile started has
//! finished, the emulator heard nothing for 500 ms), so each push measures fetch +
//! debounce + one reconcile, not a queue.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use chrono::Utc;
use clap::Parser;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use mesosync::emulator::{self, Sandbox, SandboxConfig};
use mesosync::generate::{self, GenSpec};
use mesosync::normalize::ChronosVersion;
use mesosync::plan::PlanOptions;
use mesosync::source::LoadOptions;

#[derive(Debug, Parser)]
#[command(about = "push → first write latency of mesosync run --git-pull, with and without the webhook")]
struct Args {
    /// Apps in the set.
    #[arg(long, default_value_t = 10_000)]
    apps: usize,
    /// Jobs in the set.
    #[arg(long, default_value_t = 5_000)]
    jobs: usize,
    /// Pushes measured in each mode.
    #[arg(long, default_value_t = 20)]
    pushes: usize,
    /// `--git-interval` of the polling mode.
    #[arg(long, default_value = "5s")]
    interval: String,
    /// How long each emulated Marathon deployment takes, in milliseconds.
    #[arg(long, default_value_t = 50)]
    deployment_ms: u64,
    /// The mesosync binary.
    #[arg(long, default_value = "target/release/mesosync")]
    mesosync: PathBuf,
    /// Where to write the JSON results.
    #[arg(long, default_value = "target/bench/push.json")]
    out: PathBuf,
}

const SECRET: &str = "bench-webhook-secret";

#[path = "support/git.rs"]
mod support_git;
#[path = "support/process.rs"]
mod support_process;
#[path = "support/writes.rs"]
mod support_writes;

use support_git::git;
use support_process::StopOnDrop;
use support_writes::first_write_after;

/// The generated set in an author clone, its bare origin, and an emulator holding it in sync.
struct World {
    spec: GenSpec,
    root: tempfile::TempDir,
    author: PathBuf,
    origin: PathBuf,
    sandbox: Sandbox,
}

async fn world(args: &Args) -> anyhow::Result<World> {
    let spec = GenSpec { apps: args.apps, jobs: args.jobs, ..GenSpec::default() };
    let root = tempfile::tempdir()?;
    let author = root.path().join("author");
    let origin = root.path().join("origin.git");
    std::fs::create_dir(&author)?;
    generate::write_manifests(&author, &spec)?;
    let desired = mesosync::source::load_dir_with(&author, &LoadOptions::default())
        .map_err(|e| anyhow::anyhow!("generated set does not load: {e}"))?;
    let plan = PlanOptions { chronos_version: Some(ChronosVersion::V2_4), ..PlanOptions::default() };
    let seed = generate::synced_seed(&desired, &plan, Utc::now());
    let sandbox = emulator::start(SandboxConfig {
        seed: Some(seed),
        deployment_duration: Duration::from_millis(args.deployment_ms),
        ..SandboxConfig::default()
    })
    .await?;
    git(&author, &["init", "--quiet", "-b", "main"])?;
    git(&author, &["add", "."])?;
    git(&author, &["commit", "--quiet", "-m", "generated set"])?;
    git(root.path(), &["clone", "--quiet", "--bare", author.to_str().unwrap(), origin.to_str().unwrap()])?;
    git(&author, &["remote", "add", "origin", origin.to_str().unwrap()])?;
    Ok(World { spec, root, author, origin, sandbox })
}

/// Rewrite app `i`'s image in the author clone, commit, push.
fn push_edit(w: &World, i: usize, tag: &str) -> anyhow::Result<()> {
    let path = w.author.join(generate::app_file(&w.spec, i));
    let text = std::fs::read_to_string(&path)?;
    let needle = format!("/bench/svc-{i}");
    let at = text
        .match_indices(&needle)
        .map(|(at, _)| at + needle.len())
        .find(|&end| matches!(text.as_bytes().get(end), Some(b':' | b'-')))
        .with_context(|| format!("app {i} not found in {}", path.display()))?;
    std::fs::write(&path, format!("{}-{tag}{}", &text[..at], &text[at..]))?;
    git(&w.author, &["commit", "--quiet", "-a", "-m", tag])?;
    git(&w.author, &["push", "--quiet", "origin", "main"])?;
    Ok(())
}

struct Controller {
    _child: StopOnDrop,
    base: String,
    http: reqwest::Client,
}

fn spawn(
    args: &Args,
    w: &World,
    checkout: &Path,
    interval: &str,
    webhook: bool,
    log: &Path,
) -> anyhow::Result<Controller> {
    let mut cmd = Command::new(&args.mesosync);
    cmd.arg("run")
        .arg(checkout)
        .args(["--marathon", &w.sandbox.marathon_url(), "--chronos", &w.sandbox.chronos_url()])
        .args(["--chronos-version", "2.4", "--listen", "127.0.0.1:0"])
        .args(["--git-pull", "main", "--git-interval", interval])
        .env("RUST_LOG", "warn")
        .env_remove("MESOSYNC_WEBHOOK_SECRET")
        .env_remove("MESOSYNC_WEBHOOK_SECRET_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log)?);
    if webhook {
        cmd.env("MESOSYNC_WEBHOOK_SECRET", SECRET);
    }
    let mut child =
        cmd.spawn().with_context(|| format!("starting {} (make bench-build)", args.mesosync.display()))?;
    let stdout = child.stdout.take().context("stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if !sent && let Some(rest) = line.split("status at ").nth(1) {
                let _ = tx.send(rest.split("/status").next().unwrap_or_default().to_string());
                sent = true;
            }
        }
    });
    let base = rx.recv_timeout(Duration::from_secs(30)).context("mesosync run did not print its address")?;
    Ok(Controller { _child: StopOnDrop(child), base, http: reqwest::Client::new() })
}

impl Controller {
    async fn finished(&self) -> anyhow::Result<u64> {
        let text = self.http.get(format!("{}/metrics", self.base)).send().await?.text().await?;
        Ok(text
            .lines()
            .find_map(|l| l.strip_prefix("mesosync_reconcile_duration_seconds_count "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0) as u64)
    }

    /// Every reconcile started (one `GET /v2/apps` each) has finished and the emulator
    /// heard nothing for `quiet`.
    async fn wait_idle(&self, sandbox: &Sandbox, quiet: Duration, timeout: Duration) -> anyhow::Result<()> {
        let t0 = Instant::now();
        let (mut last_len, mut since) = (usize::MAX, Instant::now());
        loop {
            let log = sandbox.requests();
            if log.len() != last_len {
                (last_len, since) = (log.len(), Instant::now());
            }
            let started = log.iter().filter(|r| r.method == "GET" && r.path == "/v2/apps").count() as u64;
            if started > 0 && self.finished().await? >= started && since.elapsed() >= quiet {
                return Ok(());
            }
            ensure!(t0.elapsed() < timeout, "mesosync run did not settle within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn announce(&self) -> anyhow::Result<()> {
        let body = br#"{"ref":"refs/heads/main"}"#.to_vec();
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes())?;
        mac.update(&body);
        let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let answer = self
            .http
            .post(format!("{}/hooks/git", self.base))
            .header("x-signature", signature)
            .body(body)
            .send()
            .await?;
        ensure!(answer.status() == reqwest::StatusCode::ACCEPTED, "webhook answered {}", answer.status());
        Ok(())
    }
}

fn percentile(mut xs: Vec<f64>, p: f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * xs.len() as f64).ceil().max(1.0) as usize;
    xs.get(rank.min(xs.len()).saturating_sub(1)).copied().unwrap_or(f64::NAN)
}

#[derive(Debug, Serialize)]
struct Mode {
    mode: String,
    pushes: usize,
    p50_ms: f64,
    p95_ms: f64,
    min_ms: f64,
    max_ms: f64,
    latencies_ms: Vec<f64>,
}

async fn measure(args: &Args, w: &World, webhook: bool, offset: usize) -> anyhow::Result<Mode> {
    let name = if webhook { "webhook".to_string() } else { format!("poll --git-interval {}", args.interval) };
    let checkout = w.root.path().join(if webhook { "checkout-webhook" } else { "checkout-poll" });
    git(w.root.path(), &["clone", "--quiet", w.origin.to_str().unwrap(), checkout.to_str().unwrap()])?;
    std::fs::create_dir_all("target/bench")?;
    let log = PathBuf::from(format!(
        "target/bench/mesosync-run-push-{}.log",
        if webhook { "webhook" } else { "poll" }
    ));
    let interval = if webhook { "1h" } else { args.interval.as_str() };
    w.sandbox.reset_requests();
    let c = spawn(args, w, &checkout, interval, webhook, &log)?;
    c.wait_idle(&w.sandbox, Duration::from_millis(1000), Duration::from_secs(300)).await?;
    let mut latencies = Vec::new();
    for k in 0..args.pushes {
        let i = ((offset + k) * 7919 + 1) % w.spec.apps;
        push_edit(w, i, &format!("p{}", offset + k))?;
        let before = w.sandbox.requests().len();
        let t0 = Instant::now();
        if webhook {
            c.announce().await?;
        }
        let latency =
            first_write_after(&w.sandbox, before, t0, Duration::from_secs(120), &format!("push {k}")).await?;
        latencies.push(latency.as_secs_f64() * 1000.0);
        c.wait_idle(&w.sandbox, Duration::from_millis(500), Duration::from_secs(120)).await?;
    }
    drop(c);
    Ok(Mode {
        mode: name,
        pushes: latencies.len(),
        p50_ms: percentile(latencies.clone(), 50.0),
        p95_ms: percentile(latencies.clone(), 95.0),
        min_ms: latencies.iter().copied().fold(f64::INFINITY, f64::min),
        max_ms: latencies.iter().copied().fold(0.0, f64::max),
        latencies_ms: latencies,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    eprintln!("bench-push: generating {} apps + {} jobs, seeding the emulator", args.apps, args.jobs);
    let w = world(&args).await?;
    eprintln!("bench-push: {} pushes with the webhook", args.pushes);
    let webhook = measure(&args, &w, true, 0).await?;
    eprintln!("bench-push: {} pushes polled every {}", args.pushes, args.interval);
    let poll = measure(&args, &w, false, args.pushes).await?;
    println!(
        "| mode ({} apps + {} jobs, {} pushes each) | p50 | p95 | min | max |",
        args.apps, args.jobs, args.pushes
    );
    println!("|---|---|---|---|---|");
    for m in [&webhook, &poll] {
        println!(
            "| {} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms |",
            m.mode, m.p50_ms, m.p95_ms, m.min_ms, m.max_ms
        );
    }
    println!("\nwall {:.0} s", started.elapsed().as_secs_f64());
    let json = serde_json::json!({
        "apps": args.apps, "jobs": args.jobs, "deployment_ms": args.deployment_ms,
        "modes": [webhook, poll], "wall_s": started.elapsed().as_secs_f64(),
    });
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&json)?)?;
    Ok(())
}
