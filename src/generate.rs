//! Synthetic manifest sets for benchmarks and load tests: N Marathon apps spread over
//! nested groups and M Chronos jobs in dependency chains, from a seeded RNG so that a
//! benchmark measures the same input every run. Shaped like the Kolla manifests
//! (docker containers, host networking, constraints, health checks, env, labels).
//!
//! With [`GenSpec::run_once`] the set is a bring-up like Kolla's: every job is a
//! run-once job (`sync.run: onChange`), each chain's head waits for an app (as a
//! db-create waits for mariadb), some apps wait for a chain's last job (as an API
//! waits for its db-sync) and others for those apps (as an agent waits for its API).

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::Path;

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::emulator::Seed;
use crate::model::{DesiredState, LiveState, ObjectKind};
use crate::plan::PlanOptions;

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub struct GenSpec {
    /// Number of Marathon apps.
    pub apps: usize,
    /// Number of Chronos jobs.
    pub jobs: usize,
    /// RNG seed.
    pub seed: u64,
    /// Documents per file.
    pub per_file: usize,
    /// Jobs are run-once chains the apps wait on (see the module docs), instead of
    /// scheduled chains nothing waits on.
    pub run_once: bool,
}

impl Default for GenSpec {
    fn default() -> Self {
        Self { apps: 1000, jobs: 500, seed: 42, per_file: 50, run_once: false }
    }
}

/// The id of generated app `i`: three levels of groups, e.g. `/region-3/project-12/svc-1234`.
pub fn app_id(i: usize) -> String {
    format!("/region-{}/project-{}/svc-{i}", i % 7, i % 97)
}

/// The name of generated job `i`.
pub fn job_name(i: usize) -> String {
    format!("job-{i}")
}

/// The file (relative to the set's root) that holds generated app `i`.
pub fn app_file(spec: &GenSpec, i: usize) -> String {
    let chunk = i / spec.per_file.max(1);
    format!("apps/region-{}/apps-{chunk:05}.yaml", chunk % 7)
}

/// The last job of the chain app `i` waits for in a run-once set: apps `10k + 8`
/// wait for chain `k` (jobs `5k..5k+4`), if the set has it.
fn awaited_chain_tail(spec: &GenSpec, i: usize) -> Option<usize> {
    let tail = (i / 10) * 5 + 4;
    (spec.run_once && i % 10 == 8 && tail < spec.jobs).then_some(tail)
}

/// One app document.
fn app_document(spec: &GenSpec, i: usize, rng: &mut StdRng, out: &mut String) {
    let cpus = [0.1, 0.25, 0.5, 1.0][rng.random_range(0..4)];
    let mem = [64, 128, 256, 512, 1024][rng.random_range(0..5)];
    let instances = rng.random_range(1..4);
    let port = 20_000 + i % 40_000;
    let _ = write!(
        out,
        "---\nkind: MarathonApp\nspec:\n  id: {id}\n  cpus: {cpus}\n  mem: {mem}\n  instances: {instances}\n  \
         container:\n    type: DOCKER\n    docker:\n      image: registry.local:5000/bench/svc-{i}:1.{v}.0\n    \
         volumes:\n      - {{containerPath: /etc/localtime, hostPath: /etc/localtime, mode: RO}}\n  \
         networks: [{{mode: host}}]\n  portDefinitions: [{{port: {port}, name: http, protocol: tcp}}]\n  \
         requirePorts: true\n  constraints: [[hostname, UNIQUE], [rack, GROUP_BY, \"3\"]]\n  \
         env: {{SERVICE_INDEX: \"{i}\", LOG_LEVEL: info}}\n  labels: {{team: team-{team}, tier: backend}}\n  \
         healthChecks:\n    - {{protocol: HTTP, path: /health, portIndex: 0, gracePeriodSeconds: 60, intervalSeconds: 30}}\n",
        id = app_id(i),
        v = rng.random_range(0..20),
        team = i % 13,
    );
    if spec.run_once {
        // An agent waits for its API, which waits for a job chain.
        if i % 10 == 9 && awaited_chain_tail(spec, i - 1).is_some() {
            let _ = writeln!(out, "  dependencies: [{}]", app_id(i - 1));
        }
        if let Some(tail) = awaited_chain_tail(spec, i) {
            let _ = writeln!(out, "sync:\n  dependsOn: [{}]", job_name(tail));
        }
    } else if i % 10 == 9 && i >= 97 {
        // Every tenth app depends on the one before it in its project.
        let _ = writeln!(out, "  dependencies: [{}]", app_id(i - 97));
    }
}

/// One job document: every fifth job starts a chain, the next four hang off it. In a
/// run-once set every job is run-once and a chain's head waits for app `i` (whose
/// index ends in 0 or 5: an app that waits for nothing).
fn job_document(spec: &GenSpec, i: usize, rng: &mut StdRng, out: &mut String) {
    let _ = write!(
        out,
        "---\nkind: ChronosJob\nspec:\n  name: {name}\n  command: /usr/local/bin/task-{i} --batch\n  owner: ops@example.com\n  \
         cpus: 0.1\n  mem: {mem}\n  container: {{type: DOCKER, image: \"registry.local:5000/bench/task:{v}\", network: HOST}}\n  \
         environmentVariables: [{{name: TASK, value: \"{i}\"}}]\n",
        name = job_name(i),
        mem = [64, 128, 256][rng.random_range(0..3)],
        v = rng.random_range(0..9),
    );
    if spec.run_once {
        if i % 5 == 0 {
            let _ = writeln!(out, "  schedule: R0//P1D\nsync:\n  run: onChange\n  timeout: 1h");
            if i < spec.apps {
                let _ = writeln!(out, "  dependsOn: [{}]", app_id(i));
            }
        } else {
            let _ = writeln!(out, "  parents: [{}]\nsync:\n  run: onChange\n  timeout: 1h", job_name(i - 1));
        }
    } else if i % 5 == 0 {
        let _ = writeln!(
            out,
            "  schedule: R/2030-01-{:02}T{:02}:00:00.000Z/PT{}H",
            1 + i % 28,
            i % 24,
            1 + i % 12
        );
    } else {
        let _ = writeln!(out, "  parents: [{}]", job_name(i - 1));
    }
}

/// The YAML files of a generated set, as (relative path, text).
pub fn manifest_files(spec: &GenSpec) -> Vec<(String, String)> {
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let per_file = spec.per_file.max(1);
    let mut files = Vec::new();
    for chunk in 0..spec.apps.div_ceil(per_file) {
        let mut text = String::new();
        for i in chunk * per_file..((chunk + 1) * per_file).min(spec.apps) {
            app_document(spec, i, &mut rng, &mut text);
        }
        files.push((app_file(spec, chunk * per_file), text));
    }
    for chunk in 0..spec.jobs.div_ceil(per_file) {
        let mut text = String::new();
        for i in chunk * per_file..((chunk + 1) * per_file).min(spec.jobs) {
            job_document(spec, i, &mut rng, &mut text);
        }
        files.push((format!("jobs/jobs-{chunk:05}.yaml"), text));
    }
    files
}

/// Write a generated set under `dir`.
pub fn write_manifests(dir: &Path, spec: &GenSpec) -> io::Result<()> {
    for (rel, text) in manifest_files(spec) {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(path, text)?;
    }
    Ok(())
}

/// The live state mesosync itself would have written for `desired`: the body of every
/// create in a plan against an empty cluster, in plan order (parents before children),
/// as an emulator seed. A sandbox started with it holds the set already in sync, so the
/// next reconcile is a no-op — what the benchmarks measure.
pub fn synced_seed(desired: &DesiredState, opts: &PlanOptions, now: DateTime<Utc>) -> Seed {
    let plan = crate::plan::compute(desired, &LiveState::default(), opts, now);
    let mut seed = Seed::default();
    for action in plan.actions {
        let Some(body) = action.body else { continue };
        match action.object.kind {
            ObjectKind::MarathonApp => seed.apps.push(body),
            ObjectKind::ChronosJob => seed.jobs.push(body),
        }
    }
    seed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_sets_are_valid_and_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let spec = GenSpec { apps: 300, jobs: 120, seed: 7, per_file: 40, run_once: false };
        write_manifests(dir.path(), &spec).unwrap();
        let state = crate::source::load_dir(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((state.apps.len(), state.jobs.len()), (300, 120));
        assert_eq!(manifest_files(&spec), manifest_files(&spec));
        let chained = state.jobs.iter().filter(|j| j.spec.value().get("parents").is_some()).count();
        assert_eq!(chained, 96);
    }

    #[test]
    fn a_run_once_set_chains_jobs_between_apps() {
        let dir = tempfile::tempdir().unwrap();
        let spec = GenSpec { apps: 300, jobs: 120, seed: 7, per_file: 40, run_once: true };
        write_manifests(dir.path(), &spec).unwrap();
        let desired = crate::source::load_dir(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let opts = PlanOptions {
            chronos_version: Some(crate::normalize::ChronosVersion::V2_4),
            ..PlanOptions::default()
        };
        let plan = crate::plan::compute(&desired, &LiveState::default(), &opts, Utc::now());
        let jobs: Vec<_> = plan.actions.iter().filter(|a| a.object.kind == ObjectKind::ChronosJob).collect();
        assert_eq!(jobs.len(), 120);
        assert!(jobs.iter().all(|a| a.run.is_some()), "every job is run-once");
        let heads = jobs.iter().filter(|a| a.depends_on.iter().any(|d| d.kind == ObjectKind::MarathonApp));
        assert_eq!(heads.count(), 24, "each chain's head waits for an app");
        let waits_for_job = |a: &&crate::plan::Action| {
            a.object.kind == ObjectKind::MarathonApp
                && a.depends_on.iter().any(|d| d.kind == ObjectKind::ChronosJob)
        };
        // Apps 8, 18, …, 238 wait for chains 0..=23; apps 9, 19, … wait for those.
        assert_eq!(plan.actions.iter().filter(waits_for_job).count(), 24);
        let agents = plan.actions.iter().filter(|a| {
            a.object.kind == ObjectKind::MarathonApp
                && a.depends_on.iter().any(|d| d.kind == ObjectKind::MarathonApp)
        });
        assert_eq!(agents.count(), 24);
        // app 0 → job-0 … job-4 → app 8 → app 9: the deepest chain has 8 writes.
        assert_eq!(plan.actions.iter().map(|a| a.wave).max(), Some(7));
    }

    #[tokio::test]
    async fn a_synced_seed_plans_nothing() {
        let dir = tempfile::tempdir().unwrap();
        write_manifests(dir.path(), &GenSpec { apps: 120, jobs: 40, seed: 3, per_file: 25, run_once: false })
            .unwrap();
        let desired = crate::source::load_dir(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let opts = PlanOptions {
            chronos_version: Some(crate::normalize::ChronosVersion::V2_4),
            ..PlanOptions::default()
        };
        let now = Utc::now();
        let seed = synced_seed(&desired, &opts, now);
        assert_eq!((seed.apps.len(), seed.jobs.len()), (120, 40));
        let sandbox =
            crate::emulator::start(crate::emulator::SandboxConfig { seed: Some(seed), ..Default::default() })
                .await
                .unwrap();
        let snapshot = sandbox.snapshot();
        let list = |key: &str| snapshot[key].as_array().cloned().unwrap_or_default();
        let live = LiveState::from_values(&list("apps"), &list("jobs"));
        let plan = crate::plan::compute(&desired, &live, &opts, now);
        let writes: Vec<_> = plan.actions.iter().filter(|a| a.is_write()).map(|a| &a.object).collect();
        assert!(writes.is_empty(), "a synced seed must plan no write, got {writes:?}");
        sandbox.shutdown().await;
    }
}
