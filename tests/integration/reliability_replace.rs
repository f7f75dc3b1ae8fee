//! A Chronos job switching between scheduled and dependent is replaced (DELETE, then
//! the create), and Chronos rewrites the children of a deleted job (a scheduled
//! parent's children become scheduled jobs without their ownership marker). Through the
//! real binary against the emulator (Chronos 2.4): one apply converges, children
//! included; a SIGKILL between the DELETE and the create is repaired by the next apply
//! without `--prune`.

use std::time::Duration;

use mesosync::emulator::{FaultRule, Sandbox, System};
use serde_json::{Value, json};

use crate::reliability_support::{command, eventually, mesosync, sandbox, writes};

const MARK: &str = "[mesosync:mesosync]";

/// `p` and `o` scheduled, `j` scheduled (or dependent on `p`), `c1` a child of `j`,
/// `c2` a child of `j` and `o`.
fn manifests(dir: &std::path::Path, j_dependent: bool) {
    let job = |name: &str, place: &str| {
        format!(
            "---\nkind: ChronosJob\nspec:\n  name: {name}\n  command: \"true\"\n  owner: ops@example.org\n  \
             description: keep me\n  retries: 4\n{place}"
        )
    };
    let scheduled = "  schedule: R/2030-01-01T00:00:00Z/PT1H\n";
    let j_place = if j_dependent { "  parents: [p]\n" } else { scheduled };
    let text = [
        job("p", scheduled),
        job("o", scheduled),
        job("j", j_place),
        job("c1", "  parents: [j]\n"),
        job("c2", "  parents: [j, o]\n"),
    ]
    .concat();
    std::fs::write(dir.join("jobs.yaml"), text).unwrap();
}

async fn jobs(sb: &Sandbox) -> Vec<Value> {
    let body: Value =
        reqwest::get(format!("{}/scheduler/jobs", sb.chronos_url())).await.unwrap().json().await.unwrap();
    body.as_array().unwrap().clone()
}

async fn job(sb: &Sandbox, name: &str) -> Option<Value> {
    jobs(sb).await.into_iter().find(|j| j["name"] == name)
}

/// A job's parents as a sorted list (`None` for a scheduled job).
async fn parents(sb: &Sandbox, name: &str) -> Option<Vec<String>> {
    let job = job(sb, name).await.unwrap_or_else(|| panic!("{name} is listed"));
    let mut list: Vec<String> =
        job.get("parents")?.as_array()?.iter().map(|p| p.as_str().unwrap().to_string()).collect();
    list.sort();
    Some(list)
}

async fn description(sb: &Sandbox, name: &str) -> String {
    job(sb, name).await.unwrap()["description"].as_str().unwrap().to_string()
}

/// A job nobody owns, a child of `j` (someone else's, beside the manifests).
async fn unowned_child(sb: &Sandbox) {
    let body = json!({"name": "theirs", "command": "true", "owner": "x@example.org", "parents": ["j"],
        "description": "not ours"});
    let r = reqwest::Client::new()
        .post(format!("{}/scheduler/dependency", sb.chronos_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
}

async fn assert_converged(sb: &Sandbox, dir: &std::path::Path) {
    let diff = mesosync(sb, "diff", dir, &[]).await;
    assert_eq!(diff.code, 0, "diff after the apply must be empty:\n{}", diff.all());
}

async fn assert_children_in_place(sb: &Sandbox) {
    assert_eq!(parents(sb, "c1").await, Some(vec!["j".to_string()]));
    assert_eq!(parents(sb, "c2").await, Some(vec!["j".to_string(), "o".to_string()]));
    for child in ["c1", "c2"] {
        let d = description(sb, child).await;
        assert!(d.contains(MARK) && d.contains("keep me"), "{child} keeps its description and marker: {d}");
        assert_eq!(job(sb, child).await.unwrap()["retries"], json!(4), "{child} keeps its fields");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_between_scheduled_and_dependent_converges_in_one_apply_children_kept() {
    let sb = sandbox(Duration::from_millis(50)).await;
    let dir = tempfile::tempdir().unwrap();
    manifests(dir.path(), false);
    assert_eq!(mesosync(&sb, "apply", dir.path(), &[]).await.code, 0);
    unowned_child(&sb).await;

    // Scheduled → dependent: a DELETE of a scheduled parent would turn every child into
    // a scheduled job without its marker; one apply must still end converged.
    manifests(dir.path(), true);
    sb.reset_requests();
    let out = mesosync(&sb, "apply", dir.path(), &[]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    let deletes: Vec<String> = writes(&sb).into_iter().filter(|w| w.starts_with("DELETE")).collect();
    assert_eq!(deletes, ["DELETE /scheduler/job/j 204"], "only the replaced job is deleted");
    assert_eq!(parents(&sb, "j").await, Some(vec!["p".to_string()]));
    assert_children_in_place(&sb).await;
    assert_eq!(
        parents(&sb, "theirs").await,
        Some(vec!["j".to_string()]),
        "a child we do not own is kept too"
    );
    assert_eq!(description(&sb, "theirs").await, "not ours");
    assert_converged(&sb, dir.path()).await;

    // Dependent → scheduled: Chronos would hand the children j's parents.
    manifests(dir.path(), false);
    let out = mesosync(&sb, "apply", dir.path(), &[]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(parents(&sb, "j").await, None, "j is scheduled again");
    assert_children_in_place(&sb).await;
    assert_eq!(parents(&sb, "theirs").await, Some(vec!["j".to_string()]));
    assert_converged(&sb, dir.path()).await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_between_the_delete_and_the_create_of_a_replace_is_repaired_by_the_next_apply() {
    let sb = sandbox(Duration::from_millis(50)).await;
    let dir = tempfile::tempdir().unwrap();
    manifests(dir.path(), false);
    assert_eq!(mesosync(&sb, "apply", dir.path(), &[]).await.code, 0);
    manifests(dir.path(), true);
    // The replace moves c1 and c2 off j (two POSTs …/dependency), deletes j, then
    // creates it (the third): hold that one, and answer it 503 if it ever ends.
    sb.faults().add(FaultRule {
        system: Some(System::Chronos),
        method: Some("POST".into()),
        path_prefix: "/scheduler/dependency".into(),
        skip: 2,
        latency_ms: 120_000,
        error_rate: 1.0,
        ..FaultRule::default()
    });
    sb.reset_requests();
    let mut cmd = command(&sb, "apply", dir.path());
    cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("apply starts");
    eventually(Duration::from_secs(30), "the DELETE of j answered", || async {
        sb.requests().iter().any(|r| r.method == "DELETE" && r.path == "/scheduler/job/j" && r.status == 204)
    })
    .await;
    child.start_kill().expect("SIGKILL");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.unwrap().unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9), "killed by SIGKILL");
    sb.faults().clear();
    assert!(job(&sb, "j").await.is_none(), "killed after the DELETE, before the create");
    // The children were moved off j before it was deleted: still dependent, still ours.
    assert_eq!(parents(&sb, "c1").await, Some(vec!["p".to_string()]), "c1 took j's new parents");
    assert_eq!(parents(&sb, "c2").await, Some(vec!["o".to_string()]), "c2 kept its other parent");
    for c in ["c1", "c2"] {
        assert!(description(&sb, c).await.contains(MARK), "{c} is still marked");
    }

    // Restarted, without --prune: j is a create, the children updates after it.
    let diff = mesosync(&sb, "diff", dir.path(), &["--output", "json"]).await;
    let plan: Value = serde_json::from_str(&diff.stdout).expect("diff JSON");
    let kind_of = |name: &str| {
        plan["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["object"]["id"] == name)
            .map(|a| a["action"].clone())
    };
    assert_eq!(kind_of("j"), Some(json!("create")), "{}", diff.stdout);
    assert_eq!(kind_of("c1"), Some(json!("update")), "{}", diff.stdout);
    let out = mesosync(&sb, "apply", dir.path(), &[]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(parents(&sb, "j").await, Some(vec!["p".to_string()]));
    assert_children_in_place(&sb).await;
    assert_converged(&sb, dir.path()).await;
    sb.shutdown().await;
}
