//! The bad-input corpus (`tests/fixtures/bad/`, plus cases built in a tempdir): each
//! is refused with a `file:line` error, and — checked in the emulator's request log —
//! makes zero writes and zero deletes, even with every prune flag on. The controller
//! keeps running through bad input and recovers once it is fixed.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mesosync::emulator::Sandbox;

use crate::reliability_support::{
    app_yaml, eventually, job_yaml, live_app_ids, live_job_names, mesosync, sandbox, start_controller, writes,
};

const CASES: &[&str] = &[
    "malformed_yaml",
    "wrong_types",
    "unknown_fields",
    "duplicate_ids",
    "invalid_ids",
    "cycles",
    "missing_parents",
    "server_refusals",
    "yaml_1_1",
];

/// The most dangerous flags: a refused load must still write and delete nothing.
const PRUNE_ALL: &[&str] = &["--prune", "--allow-empty", "--force-prune"];

fn bad_fixture(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad").join(case)
}

/// Live state the bad inputs could damage: owned apps and a job, one of them (in
/// every bad set) differing from live.
async fn seeded() -> Sandbox {
    let sb = sandbox(Duration::from_millis(20)).await;
    let good = tempfile::tempdir().unwrap();
    let text =
        format!("{}{}{}", app_yaml("/bad/other", 3), app_yaml("/bad/victim", 1), job_yaml("victim-job"));
    fs::write(good.path().join("live.yaml"), text).unwrap();
    let out = mesosync(&sb, "apply", good.path(), &[]).await;
    assert_eq!(out.code, 0, "seeding live state");
    sb.reset_requests();
    sb
}

async fn assert_untouched(sb: &Sandbox, case: &str) {
    assert_eq!(writes(sb), Vec::<String>::new(), "{case}: no write and no delete");
    assert_eq!(live_app_ids(sb).await, vec!["/bad/other".to_string(), "/bad/victim".to_string()], "{case}");
    assert_eq!(live_job_names(sb).await, vec!["victim-job".to_string()], "{case}");
}

/// `diff` and `apply` (with every prune flag) both refuse `dir`, naming each of
/// `expected` (paths relative to `dir`).
async fn assert_refused(sb: &Sandbox, case: &str, dir: &Path, expected: &[String]) {
    for (sub, extra) in [("diff", PRUNE_ALL), ("apply", PRUNE_ALL)] {
        let out = mesosync(sb, sub, dir, extra).await;
        let stderr = out.stderr.replace(&format!("{}/", dir.display()), "");
        assert_eq!(out.code, 1, "{case}: {sub} must fail");
        for line in expected {
            assert!(stderr.contains(line.as_str()), "{case}: {sub} must print\n  {line}\ngot:\n{stderr}");
        }
        assert!(
            stderr.contains("nothing would be written") || stderr.contains("nothing was written"),
            "{stderr}"
        );
        assert_untouched(sb, case).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_fixture_is_refused_with_file_and_line_and_writes_nothing() {
    let sb = seeded().await;
    for case in CASES {
        let dir = bad_fixture(case);
        let expected: Vec<String> =
            fs::read_to_string(dir.join("expected.txt")).unwrap().lines().map(String::from).collect();
        assert!(!expected.is_empty(), "{case}: expected.txt names the errors");
        for line in &expected {
            // file:line:column, then the message.
            let mut parts = line.splitn(4, ':');
            let (file, l, c) = (parts.next(), parts.next(), parts.next());
            assert!(file.is_some_and(|f| f.ends_with(".yaml")), "{case}: {line}");
            assert!(l.is_some_and(|l| l.parse::<u32>().is_ok()), "{case}: no line in {line}");
            assert!(c.is_some_and(|c| c.parse::<u32>().is_ok()), "{case}: no column in {line}");
        }
        assert_refused(&sb, case, &dir, &expected).await;
    }
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pathological_directories_are_refused_and_write_nothing() {
    let sb = seeded().await;
    let good = app_yaml("/bad/other", 1);

    // A directory that is not there (vanished, or a typo).
    let gone = tempfile::tempdir().unwrap();
    let missing = gone.path().join("manifests");
    assert_refused(&sb, "missing dir", &missing, &["cannot read the manifest directory".into()]).await;

    // Symlinks leaving the root: a file and a directory.
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("app.yaml"), app_yaml("/bad/escaped", 1)).unwrap();
    let root = tempfile::tempdir().unwrap();
    fs::write(root.path().join("ok.yaml"), &good).unwrap();
    std::os::unix::fs::symlink(outside.path().join("app.yaml"), root.path().join("escape.yaml")).unwrap();
    std::os::unix::fs::symlink(outside.path(), root.path().join("escaped-dir")).unwrap();
    let expected = vec![
        "escape.yaml: symlink points outside the manifest root".to_string(),
        "escaped-dir: symlink points outside the manifest root".to_string(),
    ];
    assert_refused(&sb, "symlink escape", root.path(), &expected).await;

    // A 100 MB file (sparse: it costs no disk) and binary garbage.
    let root = tempfile::tempdir().unwrap();
    fs::write(root.path().join("ok.yaml"), &good).unwrap();
    fs::File::create(root.path().join("huge.yaml")).unwrap().set_len(100 * 1024 * 1024).unwrap();
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    fs::write(root.path().join("garbage.yml"), garbage).unwrap();
    let expected = vec![
        "huge.yaml: file is 104857600 bytes, over the 1048576 byte limit".to_string(),
        "garbage.yml: is not UTF-8 text".to_string(),
    ];
    assert_refused(&sb, "huge and binary", root.path(), &expected).await;
    sb.shutdown().await;
}

fn git(dir: &Path, args: &[&str]) -> bool {
    std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "commit.gpgsign=false"])
        .args(args)
        .current_dir(dir)
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_written_git_checkout_is_refused_and_writes_nothing() {
    let repo = tempfile::tempdir().unwrap();
    if !git(repo.path(), &["init", "-q"]) {
        let test = "reliability_input::a_half_written_git_checkout_is_refused_and_writes_nothing";
        super::requires::missing(test, "no usable `git`", "your package manager (git is a prerequisite)");
        return;
    }
    let sb = seeded().await;
    let whole = format!("{}{}", app_yaml("/bad/other", 3), app_yaml("/bad/victim", 1));
    fs::write(repo.path().join("apps.yaml"), &whole).unwrap();
    fs::write(repo.path().join("jobs.yaml"), job_yaml("victim-job")).unwrap();
    assert!(git(repo.path(), &["add", "-A"]) && git(repo.path(), &["commit", "-qm", "all"]));
    // Mid-`git checkout`: git holds .git/index.lock while it rewrites files, and a
    // file may be cut short at a document boundary — still valid YAML, one app short,
    // which a prune would delete.
    fs::write(repo.path().join(".git/index.lock"), b"").unwrap();
    fs::write(repo.path().join("apps.yaml"), app_yaml("/bad/other", 3)).unwrap();
    assert_refused(&sb, "git checkout in progress", repo.path(), &["index.lock: a git operation".into()])
        .await;
    // The checkout finishes: the set is whole again and nothing needs writing.
    fs::write(repo.path().join("apps.yaml"), &whole).unwrap();
    fs::remove_file(repo.path().join(".git/index.lock")).unwrap();
    let out = mesosync(&sb, "apply", repo.path(), PRUNE_ALL).await;
    assert_eq!(out.code, 0);
    assert_untouched(&sb, "after the checkout").await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_survives_bad_input_and_a_vanishing_directory_then_recovers() {
    let sb = seeded().await;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("manifests");
    fs::create_dir(&dir).unwrap();
    let live =
        format!("{}{}{}", app_yaml("/bad/other", 3), app_yaml("/bad/victim", 1), job_yaml("victim-job"));
    fs::write(dir.join("live.yaml"), &live).unwrap();
    let mut run =
        start_controller(&sb, &dir, &["--prune", "--resync", "1s", "--max-delete-ratio", "1.0"], &[]).await;
    let outcome = |status: &serde_json::Value| status["last_reconcile"]["outcome"].as_str().map(String::from);
    eventually(Duration::from_secs(20), "a first successful reconcile", || async {
        outcome(&run.status().await).as_deref() == Some("success")
    })
    .await;
    assert!(writes(&sb).is_empty(), "nothing to do at first: {:?}", writes(&sb));

    // Bad input: the victim's document is broken. Without the load guard, prune would
    // delete /bad/victim.
    fs::write(dir.join("live.yaml"), format!("{}{}", app_yaml("/bad/other", 3), job_yaml("victim-job")))
        .unwrap();
    fs::write(dir.join("broken.yaml"), "kind: MarathonApp\nspec: {id: /bad/victim, cmd: [\n").unwrap();
    eventually(Duration::from_secs(20), "the load error in /status", || async {
        let status = run.status().await;
        outcome(&status).as_deref() == Some("error")
            && status["last_reconcile"]["error"].as_str().is_some_and(|e| e.contains("broken.yaml:"))
    })
    .await;
    // The manifest directory vanishes (an unmounted volume, a `rm -rf` before a clone).
    fs::rename(&dir, parent.path().join("elsewhere")).unwrap();
    eventually(Duration::from_secs(20), "the missing directory in /status", || async {
        let status = run.status().await;
        status["last_reconcile"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot read the manifest directory"))
    })
    .await;
    assert!(run.running(), "bad input never stops the controller");
    assert!(writes(&sb).is_empty(), "bad input wrote: {:?}", writes(&sb));
    assert_eq!(live_app_ids(&sb).await, vec!["/bad/other".to_string(), "/bad/victim".to_string()]);

    // Fixed: the directory is back, the broken file repaired, and one app scaled.
    fs::rename(parent.path().join("elsewhere"), &dir).unwrap();
    fs::remove_file(dir.join("broken.yaml")).unwrap();
    let fixed =
        format!("{}{}{}", app_yaml("/bad/other", 2), app_yaml("/bad/victim", 1), job_yaml("victim-job"));
    fs::write(dir.join("live.yaml"), fixed).unwrap();
    eventually(Duration::from_secs(20), "recovery: the scale applied", || async {
        outcome(&run.status().await).as_deref() == Some("success")
            && writes(&sb).iter().any(|w| w.starts_with("PUT /v2/apps/bad/other 200"))
    })
    .await;
    assert!(!writes(&sb).iter().any(|w| w.starts_with("DELETE")), "{:?}", writes(&sb));
    assert_eq!(live_app_ids(&sb).await, vec!["/bad/other".to_string(), "/bad/victim".to_string()]);
    let out = run.stop().await;
    assert_eq!(out.code, 0);
    sb.shutdown().await;
}
