//! Criterion benches of the pure pipeline (issue #8): load, normalize, diff and plan
//! of generated manifest sets — 1k apps, 10k apps, 5k jobs — against the live state
//! an emulator reports for the same set already in sync (the steady state of a
//! controller: every reconcile is a no-op).
//!
//! Only the measured closures are pure; building the inputs (writing the manifests,
//! seeding an emulator and snapshotting it) is setup. Run with `make bench-pipeline`
//! or `cargo bench --bench pipeline`; `make bench` runs it with the end-to-end bench.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::Value;

use mesosync::diff::diff_object;
use mesosync::emulator::{self, SandboxConfig};
use mesosync::generate::{self, GenSpec};
use mesosync::model::{DesiredState, LiveState, ObjectKind};
use mesosync::normalize::{self, ChronosVersion, NormalizeOptions};
use mesosync::plan::{self, PlanOptions};
use mesosync::source::{self, LoadOptions};

/// One generated set and everything the stages take as input.
struct Case {
    name: &'static str,
    objects: u64,
    dir: tempfile::TempDir,
    desired: DesiredState,
    live: LiveState,
    opts: PlanOptions,
    now: DateTime<Utc>,
}

fn load(dir: &Path) -> DesiredState {
    source::load_dir_with(dir, &LoadOptions::default()).unwrap_or_else(|e| panic!("generated set: {e}"))
}

fn case(name: &'static str, apps: usize, jobs: usize) -> Case {
    let dir = tempfile::tempdir().expect("temp dir");
    generate::write_manifests(dir.path(), &GenSpec { apps, jobs, ..GenSpec::default() }).expect("write");
    let desired = load(dir.path());
    let opts = PlanOptions { chronos_version: Some(ChronosVersion::V2_4), ..PlanOptions::default() };
    let now = Utc::now();
    let seed = generate::synced_seed(&desired, &opts, now);
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    let snapshot = runtime.block_on(async {
        let sandbox = emulator::start(SandboxConfig { seed: Some(seed), ..SandboxConfig::default() })
            .await
            .expect("emulator");
        let snapshot = sandbox.snapshot();
        sandbox.shutdown().await;
        snapshot
    });
    let list = |key: &str| snapshot[key].as_array().cloned().unwrap_or_default();
    let live = LiveState::from_values(&list("apps"), &list("jobs"));
    let case = Case { name, objects: (apps + jobs) as u64, dir, desired, live, opts, now };
    let writes = plan::compute(&case.desired, &case.live, &case.opts, case.now)
        .actions
        .iter()
        .filter(|a| a.is_write())
        .count();
    assert_eq!(writes, 0, "{name}: the seeded emulator must be in sync");
    case
}

/// Every desired object with its live counterpart, as `(kind, desired spec, live)`,
/// parsed (the normalize stage measures normalizing, not parsing).
fn pairs(case: &Case) -> Vec<(ObjectKind, Value, Value)> {
    let index = case.live.index();
    case.desired
        .objects()
        .map(|d| {
            let live = match d.object.kind {
                ObjectKind::MarathonApp => index.app(&d.object.id),
                ObjectKind::ChronosJob => index.job(&d.object.id),
            };
            (d.object.kind, d.spec.value(), live.expect("seeded").value())
        })
        .collect()
}

fn normalized(
    pairs: &[(ObjectKind, Value, Value)],
    nopts: &NormalizeOptions,
    now: DateTime<Utc>,
) -> Vec<(Value, Value)> {
    pairs
        .iter()
        .map(|(kind, spec, live)| {
            let system = mesosync::system::of(*kind);
            let mut want = system.normalize_desired(spec, nopts);
            let have = system.normalize_live(live, nopts);
            system.align(&mut want, &have, now, nopts);
            normalize::apply_ignore(&mut want, &have, &[]);
            (want, have)
        })
        .collect()
}

fn stages(c: &mut Criterion) {
    let cases = [case("1k-apps", 1_000, 0), case("10k-apps", 10_000, 0), case("5k-jobs", 0, 5_000)];
    let mut group = c.benchmark_group("pipeline");
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    for case in &cases {
        group.throughput(Throughput::Elements(case.objects));
        let nopts = case.opts.normalize_options();
        let pairs = pairs(case);
        group.bench_function(BenchmarkId::new("load", case.name), |b| {
            b.iter(|| black_box(load(case.dir.path())))
        });
        group.bench_function(BenchmarkId::new("normalize", case.name), |b| {
            b.iter(|| black_box(normalized(&pairs, &nopts, case.now)))
        });
        let sides = normalized(&pairs, &nopts, case.now);
        let kinds: Vec<ObjectKind> = pairs.iter().map(|p| p.0).collect();
        let objects: Vec<_> = case.desired.objects().collect();
        group.bench_function(BenchmarkId::new("diff", case.name), |b| {
            b.iter(|| {
                for ((kind, object), (want, have)) in kinds.iter().zip(&objects).zip(&sides) {
                    black_box(diff_object(*kind, Some(object), &object.secrets, want, have));
                }
            })
        });
        group.bench_function(BenchmarkId::new("plan", case.name), |b| {
            b.iter(|| black_box(plan::compute(&case.desired, &case.live, &case.opts, case.now)))
        });
        // A controller's next plan of the same inputs: every pair was found equal
        // last time (`plan::Memo`).
        let mut memo = plan::Memo::default();
        plan::compute_with(&case.desired, &case.live, &case.opts, case.now, &mut memo);
        group.bench_function(BenchmarkId::new("plan-again", case.name), |b| {
            b.iter(|| {
                black_box(plan::compute_with(&case.desired, &case.live, &case.opts, case.now, &mut memo))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
