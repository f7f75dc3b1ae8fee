//! `mesosync import` against the emulator over HTTP, with the real binary: whatever is
//! live — put there by `mesosync apply` or by hand from the reference samples — is
//! written as manifests that `mesosync diff` then finds equal to live.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mesosync::diff::mask;
use mesosync::emulator::ChronosVersion;
use mesosync::model::ObjectKind;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{self, Harness};

const NO_CHANGES: &str = "0 to create, 0 to update (0 restart), 0 to scale, 0 to delete";

/// What one run of the binary said.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn mesosync(args: &[&str]) -> Run {
    mesosync_with_env(args, &[]).await
}

async fn mesosync_with_env(args: &[&str], env: &[(String, String)]) -> Run {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_mesosync"))
        .args(args)
        .envs(env.iter().cloned())
        .env(super::harness::demo_key_env().0, super::harness::demo_key_env().1)
        .env("NO_COLOR", "1")
        .env_remove("MESOSYNC_INSTANCE")
        .output()
        .await
        .expect("mesosync runs");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `mesosync <command> <extra…> --marathon … --chronos …`.
async fn against(h: &Harness, command: &str, extra: &[&str]) -> Run {
    let (marathon, chronos) = (h.sandbox.marathon_url(), h.sandbox.chronos_url());
    let mut args = vec![command];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--marathon", &marathon, "--chronos", &chronos]);
    mesosync(&args).await
}

async fn import(h: &Harness, out: &Path, extra: &[&str]) -> Run {
    let out = out.to_str().unwrap();
    let mut args = vec!["--out", out];
    args.extend_from_slice(extra);
    let run = against(h, "import", &args).await;
    eprintln!("import: {}\n{}", run.stdout, run.stderr);
    run
}

async fn diff(h: &Harness, dir: &Path, extra: &[&str]) -> Run {
    let mut args = vec![dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    against(h, "diff", &args).await
}

fn manifests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests")
}

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

fn all_text(dir: &Path) -> String {
    files(dir).iter().map(|f| std::fs::read_to_string(dir.join(f)).unwrap()).collect()
}

/// The changed pointers of each action of a `diff -o json` run.
fn changes(run: &Run) -> Vec<(String, Vec<String>)> {
    let plan: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
    plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let object = format!("{} {}", a["object"]["kind"].as_str().unwrap(), a["object"]["id"]);
            let pointers = a["changes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["pointer"].as_str().unwrap().into())
                .collect();
            (object, pointers)
        })
        .collect()
}

/// The secret values live holds (non-trivial ones), to look for in written files.
async fn live_secrets(h: &Harness) -> Vec<String> {
    let apps = h.get(&h.marathon("/v2/apps")).await.json()["apps"].clone();
    let jobs = h.get(&h.chronos("/scheduler/jobs")).await.json();
    let mut out = Vec::new();
    for (kind, list) in [(ObjectKind::MarathonApp, apps), (ObjectKind::ChronosJob, jobs)] {
        for object in list.as_array().unwrap() {
            for pointer in mask::secret_pointers(kind, object, &[]) {
                if let Some(Value::String(s)) = object.pointer(&pointer) {
                    if s.len() >= 4 {
                        out.push(s.clone());
                    }
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn the_kolla_control_plane_round_trips_through_import() {
    let h = harness::start().await;
    // Distinct secret values (values.yaml has one placeholder for all), so that each can
    // be looked for in the imported files.
    let secrets: Vec<(String, String)> = [
        "database_password",
        "keystone_admin_token",
        "rabbitmq_cluster_cookie",
        "keystone_admin_password",
        "keystone_database_password",
        "glance_database_password",
        "glance_keystone_password",
        "nova_database_password",
        "nova_keystone_password",
        "neutron_database_password",
        "neutron_keystone_password",
    ]
    .iter()
    .map(|name| (format!("MESOSYNC_VAR_{}", name.to_uppercase()), format!("s3cr3t-{name}")))
    .collect();
    let (marathon, chronos) = (h.sandbox.marathon_url(), h.sandbox.chronos_url());
    let dir = manifests();
    let args = ["apply", dir.to_str().unwrap(), "--marathon", &marathon, "--chronos", &chronos];
    let applied = mesosync_with_env(&args, &secrets).await;
    assert_eq!(applied.code, Some(0), "{}\n{}", applied.stdout, applied.stderr);
    h.settle().await;

    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("imported");
    let run = import(&h, &out, &["--include-secrets"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("20 apps, 12 jobs written to"), "{}", run.stdout);
    let written = files(&out);
    assert!(written.contains(&"openstack/keystone/keystone-api.yaml".to_string()), "{written:?}");
    assert!(written.contains(&"_chronos/openstack-keystone-db-sync.yaml".to_string()), "{written:?}");
    let keystone = std::fs::read_to_string(out.join("openstack/keystone/keystone-api.yaml")).unwrap();
    assert!(keystone.starts_with("# Imported by mesosync"), "{keystone}");
    assert!(keystone.contains(&h.sandbox.marathon_url()), "{keystone}");
    // Each file names the server of its own system.
    let db_sync = std::fs::read_to_string(out.join("_chronos/openstack-keystone-db-sync.yaml")).unwrap();
    let header: Vec<&str> = db_sync.lines().take_while(|l| l.starts_with('#')).collect();
    assert!(header.iter().any(|l| l.contains(&h.sandbox.chronos_url())), "{db_sync}");
    assert!(!db_sync.contains(&h.sandbox.marathon_url()), "{db_sync}");
    for dropped in
        ["MESOSYNC_OWNER", "  version:", "tasksRunning", "backoffFactor", "mem: 128.0", "[mesosync:"]
    {
        assert!(!all_text(&out).contains(dropped), "{dropped} written");
    }
    assert!(keystone.contains("port: 5000"), "assigned and fixed ports stay: {keystone}");

    let clean = diff(&h, &out, &[]).await;
    assert_eq!(clean.code, Some(0), "{}\n{}", clean.stdout, clean.stderr);
    assert!(clean.stdout.contains(NO_CHANGES), "{}", clean.stdout);

    // Without --include-secrets: only the redacted values differ, and none is written.
    let redacted_dir = tmp.path().join("redacted");
    let run = import(&h, &redacted_dir, &[]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stderr.contains("secret values replaced by CHANGE-ME"), "{}", run.stderr);
    let secrets = live_secrets(&h).await;
    assert_eq!(secrets.len(), 18, "{secrets:?}");
    assert!(secrets.iter().all(|s| s.starts_with("s3cr3t-")), "{secrets:?}");
    for secret in &secrets {
        for file in files(&redacted_dir) {
            let text = std::fs::read_to_string(redacted_dir.join(&file)).unwrap();
            let line = text.lines().find(|l| l.contains(secret.as_str()));
            assert!(line.is_none(), "a live secret was written to {file}: {line:?}");
        }
        assert!(!run.stderr.contains(secret.as_str()) && !run.stdout.contains(secret.as_str()));
    }
    let dirty = diff(&h, &redacted_dir, &["-o", "json"]).await;
    assert_eq!(dirty.code, Some(2), "{}", dirty.stderr);
    let changed: Vec<(String, Vec<String>)> =
        changes(&dirty).into_iter().filter(|(_, p)| !p.is_empty()).collect();
    assert!(!changed.is_empty());
    for (object, pointers) in &changed {
        for pointer in pointers {
            let secret = pointer.starts_with("/env/")
                && mask::looks_secret(pointer.trim_start_matches("/env/"))
                || pointer.starts_with("/environmentVariables/") && pointer.ends_with("/value");
            assert!(secret, "{object}: {pointer} changed, and it is not a redacted secret");
        }
    }
    for secret in &secrets {
        assert!(!dirty.stdout.contains(secret.as_str()), "diff shows a secret");
    }
}

fn group_apps(group: &Value, out: &mut Vec<Value>) {
    out.extend(group["apps"].as_array().cloned().unwrap_or_default());
    for sub in group["groups"].as_array().cloned().unwrap_or_default() {
        group_apps(&sub, out);
    }
}

/// The reference samples, as a client of Marathon would have sent them.
fn reference_apps() -> Vec<Value> {
    let list: Value = serde_json::from_str(&harness::reference("marathon/app_list.json")).unwrap();
    let group: Value = serde_json::from_str(&harness::reference("marathon/group.json")).unwrap();
    let mut apps: Vec<Value> = list["apps"].as_array().unwrap().clone();
    group_apps(&group, &mut apps);
    for app in &mut apps {
        for server_set in mesosync::normalize::marathon::SERVER_FIELDS {
            app.as_object_mut().unwrap().remove(*server_set);
        }
    }
    apps
}

async fn seed_by_hand(h: &Harness, chronos_prefix: &str) {
    for app in reference_apps() {
        let answer = h.post(&h.marathon("/v2/apps"), &app).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{app}: {}", answer.text);
    }
    let batch = harness::reference("marathon/apps_create.json");
    let answer = h.call(Method::PUT, &h.marathon("/v2/apps"), Some(&batch)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let jobs = [
        (
            "iso8601",
            json!({"name": "nightly-backup", "command": "backup.sh --all", "schedule": "R/2030-01-01T02:00:00Z/P1D",
                   "owner": "ops@example.com", "cpus": 0.5, "mem": 512, "retries": 0,
                   "environmentVariables": [{"name": "S3_SECRET_KEY", "value": "s3-hunter2"}, {"name": "MODE", "value": "full"}],
                   "constraints": [["rack", "EQUALS", "r1"]]}),
        ),
        (
            "iso8601",
            json!({"name": "hourly", "command": "true", "schedule": "R5/2020-01-01T00:00:00Z/PT1H",
                   "scheduleTimeZone": "UTC", "description": "past start, counted down live"}),
        ),
        (
            "dependency",
            json!({"name": "after-backup", "command": "verify.sh", "parents": ["nightly-backup"],
                   "container": {"type": "DOCKER", "image": "busybox", "volumes": [{"containerPath": "/d", "hostPath": "/d", "mode": "RO"}]},
                   "shell": false, "arguments": ["-v"]}),
        ),
    ];
    for (path, job) in jobs {
        let answer = h.post(&h.chronos(&format!("{chronos_prefix}/{path}")), &job).await;
        assert_eq!(answer.status, StatusCode::NO_CONTENT, "{job}: {}", answer.text);
    }
    h.settle().await;
}

async fn wait_for_jobs(h: &Harness, prefix: &str, count: usize) {
    for _ in 0..100 {
        let jobs = h.get(&h.chronos(&format!("{prefix}/jobs"))).await.json();
        if jobs.as_array().is_some_and(|j| j.len() == count) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the jobs did not appear");
}

async fn unowned_objects_round_trip(version: ChronosVersion, prefix: &str) {
    let h = harness::start_chronos(version).await;
    seed_by_hand(&h, prefix).await;
    wait_for_jobs(&h, prefix, 3).await;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path();
    h.sandbox.reset_requests();
    let run = import(&h, out, &["--include-secrets"]).await;
    // Import only reads: the Marathon listing once, the Chronos listing once (plus,
    // on 2.x, the probe of the 3.x path that tells the version).
    let requests: Vec<String> =
        h.sandbox.requests().iter().map(|r| format!("{} {} {}", r.method, r.path, r.status)).collect();
    let expected: &[&str] = match version {
        ChronosVersion::V3 => &["GET /v2/apps 200", "GET /v1/scheduler/jobs 200"],
        _ => &["GET /v2/apps 200", "GET /v1/scheduler/jobs 404", "GET /scheduler/jobs 200"],
    };
    let mut sorted = requests.clone();
    sorted.sort();
    let mut expected = expected.to_vec();
    expected.sort();
    assert_eq!(sorted, expected, "{requests:?}");
    // The batch sample's /test/sleep60 depends on an app that does not exist: a
    // manifest set must declare every dependency, so it is left out, loudly.
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("error: app /test/sleep60: not imported: depends on app /other/namespace/or/app"),
        "{}",
        run.stderr
    );
    let apps = reference_apps().len() + 1;
    assert!(run.stdout.contains(&format!("{apps} apps, 3 jobs written to")), "{}", run.stdout);
    assert!(all_text(out).contains("s3-hunter2"), "--include-secrets keeps them");

    // Nothing is owned yet: the diff leaves everything alone, and the only difference
    // it sees is the ownership mark mesosync would add.
    let plain = diff(&h, out, &[]).await;
    assert_eq!(plain.code, Some(0), "{}\n{}", plain.stdout, plain.stderr);
    assert!(plain.stdout.contains(NO_CHANGES), "{}", plain.stdout);
    let adopt = diff(&h, out, &["--adopt", "-o", "json"]).await;
    assert_eq!(adopt.code, Some(2), "{}", adopt.stderr);
    let changes = changes(&adopt);
    assert_eq!(changes.len(), apps + 3);
    for (object, pointers) in &changes {
        let marks: &[&str] = if object.starts_with("MarathonApp") {
            &["/labels/MESOSYNC_OWNER", "/labels"]
        } else {
            &["/description"]
        };
        assert!(pointers.len() == 1 && marks.contains(&pointers[0].as_str()), "{object}: {pointers:?}");
    }

    // Taken over, it is clean again — and the manifests did not change.
    let taken = against(&h, "apply", &[out.to_str().unwrap(), "--adopt"]).await;
    assert_eq!(taken.code, Some(0), "{}\n{}", taken.stdout, taken.stderr);
    h.settle().await;
    wait_for_jobs(&h, prefix, 3).await;
    let after = diff(&h, out, &[]).await;
    assert_eq!(after.code, Some(0), "{}\n{}", after.stdout, after.stderr);
    let again = tmp.path().join("again");
    assert_eq!(import(&h, &again, &["--include-secrets"]).await.code, Some(1));
    for file in files(out).iter().filter(|f| !f.starts_with("again")) {
        let strip = |t: String| t.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join("\n");
        assert_eq!(
            strip(std::fs::read_to_string(out.join(file)).unwrap()),
            strip(std::fs::read_to_string(again.join(file)).unwrap()),
            "{file}"
        );
    }
}

#[tokio::test]
async fn unowned_reference_apps_and_chronos_24_jobs_round_trip() {
    unowned_objects_round_trip(ChronosVersion::V2_4, "/scheduler").await;
}

#[tokio::test]
async fn unowned_reference_apps_and_chronos_3_jobs_round_trip() {
    unowned_objects_round_trip(ChronosVersion::V3, "/v1/scheduler").await;
}

#[tokio::test]
async fn import_refuses_to_overwrite_without_force_and_filters_by_prefix() {
    let h = harness::start().await;
    seed_by_hand(&h, "/scheduler").await;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path();
    let run = import(&h, out, &["--prefix", "/test", "--job-prefix", "nightly"]).await;
    assert_eq!(run.code, Some(1), "/test/sleep60 has a dangling dependency: {}", run.stderr);
    assert!(run.stdout.contains("1 apps, 1 jobs written to"), "{}", run.stdout);
    assert_eq!(files(out), ["_chronos/nightly-backup.yaml", "test/sleep120.yaml"]);
    assert!(run.stderr.contains("job nightly-backup: secret values replaced by CHANGE-ME"), "{}", run.stderr);
    assert!(run.stderr.contains("/environmentVariables/1/value"), "{}", run.stderr);
    assert!(!all_text(out).contains("s3-hunter2"));

    std::fs::write(out.join("test/sleep120.yaml"), "# mine\n").unwrap();
    let refused = import(&h, out, &["--prefix", "/test"]).await;
    assert_eq!(refused.code, Some(1));
    assert!(refused.stderr.contains("refusing to overwrite"), "{}", refused.stderr);
    assert!(refused.stderr.contains("sleep120.yaml"), "{}", refused.stderr);
    assert_eq!(std::fs::read_to_string(out.join("test/sleep120.yaml")).unwrap(), "# mine\n");
    assert!(!out.join("_chronos/hourly.yaml").exists(), "nothing written when one file is taken");

    let forced = import(&h, out, &["--prefix", "/test", "--force"]).await;
    assert_eq!(forced.code, Some(1), "{}", forced.stderr);
    assert!(std::fs::read_to_string(out.join("test/sleep120.yaml")).unwrap().contains("kind: MarathonApp"));
    assert!(out.join("_chronos/hourly.yaml").exists());
}

#[tokio::test]
async fn apps_of_another_instance_are_skipped_and_credentials_never_written() {
    let h = harness::start().await;
    let app = json!({"id": "/theirs", "cmd": "sleep 1", "labels": {"MESOSYNC_OWNER": "other"}});
    assert_eq!(h.post(&h.marathon("/v2/apps"), &app).await.status, StatusCode::CREATED);
    let mine = json!({"id": "/mine", "cmd": "sleep 1", "labels": {"MESOSYNC_OWNER": "prod", "team": "a"}});
    assert_eq!(h.post(&h.marathon("/v2/apps"), &mine).await.status, StatusCode::CREATED);
    h.settle().await;
    let tmp = tempfile::tempdir().unwrap();
    let url = h.sandbox.marathon_url().replace("http://", "http://admin:pa55word@");
    let out = tmp.path().to_str().unwrap();
    let run = mesosync(&["import", "--out", out, "--marathon", &url, "--instance", "prod"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains("app /theirs: not imported: owned by mesosync instance 'other'"),
        "{}",
        run.stderr
    );
    assert_eq!(files(tmp.path()), ["mine.yaml"]);
    let text = all_text(tmp.path());
    assert!(!text.contains("pa55word") && !text.contains("admin"), "{text}");
    assert!(!text.contains("MESOSYNC_OWNER") && text.contains("team: a"), "{text}");
}
