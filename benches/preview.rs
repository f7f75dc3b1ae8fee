//! Bench of the pull-request preview (issue #19): `mesosync diff --base REV --head REV`
//! offline, on a git repository of 10,000 generated apps where the head commit changes
//! 100 of them. Goal: the preview (both revisions loaded from git objects, then
//! planned) takes under 2× loading one revision from git objects — identical blobs
//! are read and parsed once, and unchanged objects are not compared.
//!
//! Two layouts: one app per file (a change touches 100 of 10,000 files) and the
//! generator's 50 apps per file with every hundredth app changed (100 of 200 files:
//! half the files parsed again). Medians of 5, the two measurements interleaved.
//! Run with `make bench-preview` or `cargo bench --bench preview` (release).

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Utc;
use mesosync::generate::{self, GenSpec};
use mesosync::plan::PlanOptions;
use mesosync::preview::offline_plan;
use mesosync::source::LoadOptions;
use mesosync::source::revision::{Blobs, Repository, load_pair, load_revision};

#[path = "../examples/support/git.rs"]
mod support_git;

fn git(dir: &Path, args: &[&str]) -> String {
    support_git::git(dir, args).expect("git runs")
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// A repository with `apps` generated apps under `manifests/` on its first commit and
/// `changed` of them with a new image on the second; returns (dir, base, head).
fn repository(apps: usize, per_file: usize, changed: usize) -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    git(root, &["init", "--quiet"]);
    let spec = GenSpec { apps, jobs: 0, per_file, ..GenSpec::default() };
    let manifests = root.join("manifests");
    generate::write_manifests(&manifests, &spec).expect("write");
    git(root, &["add", "--all"]);
    git(root, &["commit", "--quiet", "-m", "base"]);
    let base = git(root, &["rev-parse", "HEAD"]);
    let step = apps / changed;
    for i in (0..apps).step_by(step).take(changed) {
        let path = manifests.join(generate::app_file(&spec, i));
        let text = std::fs::read_to_string(&path).expect("read");
        let from = format!("bench/svc-{i}:");
        assert!(text.contains(&from));
        std::fs::write(&path, text.replacen(&from, &format!("bench/svc-{i}-new:"), 1)).expect("write");
    }
    git(root, &["commit", "--quiet", "-am", "head"]);
    let head = git(root, &["rev-parse", "HEAD"]);
    (dir, base, head)
}

fn bench(label: &str, apps: usize, per_file: usize, changed: usize) {
    let (dir, base, head) = repository(apps, per_file, changed);
    let manifests = dir.path().join("manifests");
    let options = LoadOptions::default();
    let opts = PlanOptions::default();
    let mut one = Vec::new();
    let mut preview = Vec::new();
    let mut writes = 0;
    for _ in 0..5 {
        let start = Instant::now();
        let repo = Repository::open(&manifests).expect("repository");
        let revision = repo.resolve(&head).expect("head");
        let state = load_revision(&repo, &revision, &options, &mut Blobs::default(), &mut Default::default())
            .expect("head loads");
        one.push(start.elapsed());
        assert_eq!(state.apps.len(), apps);

        let start = Instant::now();
        let pair = load_pair(&manifests, &base, Some(&head), &options).expect("both load");
        let plan = offline_plan(&pair.base_state, &pair.head_state, &opts, Utc::now());
        preview.push(start.elapsed());
        writes = plan.actions.iter().filter(|a| a.is_write()).count();
    }
    assert_eq!(writes, changed, "the preview finds exactly the changed apps");
    let (one, preview) = (median(one), median(preview));
    println!(
        "| {label} | {apps} apps, {changed} changed | {:.0} ms | {:.0} ms | {:.2}× |",
        one.as_secs_f64() * 1000.0,
        preview.as_secs_f64() * 1000.0,
        preview.as_secs_f64() / one.as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; there are no options.
    println!("| layout | set | load one revision (git) | preview offline (load both + plan) | ratio |");
    println!("|:--|:--|--:|--:|--:|");
    bench("1 app per file", 10_000, 1, 100);
    bench("50 apps per file, 100 files touched", 10_000, 50, 100);
}
