//! Prune safety through the real binary: an empty manifest set never prunes without
//! `--allow-empty`, the mass-delete guard refuses big prunes unless forced, and objects
//! mesosync does not own are never changed or deleted.

use std::fs;
use std::time::Duration;

use mesosync::emulator::Sandbox;
use serde_json::json;

use crate::reliability_support::{
    app_yaml, count, eventually, job_yaml, live_app_ids, live_job_names, mesosync, sandbox, start_controller,
    writes,
};

/// A sandbox holding `apps` owned apps `/own/app-<i>` and one owned job.
async fn owned(apps: usize) -> Sandbox {
    let sb = sandbox(Duration::from_millis(10)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut text: String = (0..apps).map(|i| app_yaml(&format!("/own/app-{i}"), 1)).collect();
    text.push_str(&job_yaml("own-job"));
    fs::write(dir.path().join("all.yaml"), text).unwrap();
    assert_eq!(mesosync(&sb, "apply", dir.path(), &["--concurrency", "16"]).await.code, 0);
    sb.reset_requests();
    sb
}

fn deletes(sb: &Sandbox) -> Vec<String> {
    writes(sb).into_iter().filter(|w| w.starts_with("DELETE")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_manifest_set_never_prunes_without_allow_empty() {
    let sb = owned(3).await;
    let empty = tempfile::tempdir().unwrap();
    // Not even with the guard forced, and not when only non-manifest files are left.
    for extra in [&["--prune"][..], &["--prune", "--force-prune"][..]] {
        let out = mesosync(&sb, "apply", empty.path(), extra).await;
        assert!(out.all().contains("--allow-empty"), "the refusal says how to override:\n{}", out.all());
        assert!(deletes(&sb).is_empty(), "{extra:?}: {:?}", deletes(&sb));
    }
    fs::write(empty.path().join("README.md"), "moved to another repo\n").unwrap();
    fs::create_dir(empty.path().join(".git")).unwrap();
    fs::write(empty.path().join(".git/ignored.yaml"), app_yaml("/own/app-0", 1)).unwrap();
    mesosync(&sb, "apply", empty.path(), &["--prune", "--force-prune"]).await;
    assert!(writes(&sb).is_empty(), "{:?}", writes(&sb));
    // The controller neither, over several reconciles.
    let run = start_controller(&sb, empty.path(), &["--prune", "--resync", "200ms"], &[]).await;
    eventually(Duration::from_secs(20), "three reconciles", || async {
        run.status().await["reconciles"].as_u64().is_some_and(|n| n >= 3)
    })
    .await;
    assert_eq!(run.stop().await.code, 0);
    assert!(writes(&sb).is_empty(), "{:?}", writes(&sb));
    assert_eq!(live_app_ids(&sb).await.len(), 3);
    // The override exists and works (so the checks above could have failed).
    let out = mesosync(&sb, "apply", empty.path(), &["--prune", "--allow-empty", "--force-prune"]).await;
    assert_eq!(out.code, 0);
    assert_eq!(deletes(&sb).len(), 4, "{:?}", deletes(&sb));
    assert!(live_app_ids(&sb).await.is_empty() && live_job_names(&sb).await.is_empty());
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mass_delete_guard_refuses_big_prunes_unless_forced() {
    let sb = owned(20).await;
    let dir = tempfile::tempdir().unwrap();
    let keep: String = (0..5).map(|i| app_yaml(&format!("/own/app-{i}"), 1)).collect();
    fs::write(dir.path().join("all.yaml"), format!("{keep}{}", job_yaml("own-job"))).unwrap();
    // 15 of 21 owned objects: over both the count (10) and the share (30%).
    let out = mesosync(&sb, "apply", dir.path(), &["--prune"]).await;
    assert!(out.all().contains("--force-prune"), "the refusal says how to override:\n{}", out.all());
    assert!(deletes(&sb).is_empty(), "{:?}", deletes(&sb));
    assert_eq!(out.code, 1, "a refused prune is a failed apply, not a success");
    assert!(out.stdout.contains("(15 refused by the prune guard)"), "in the summary line:\n{}", out.stdout);
    // Over the share only: 15 deletes allowed by count, 71% of the owned set is not.
    let out = mesosync(&sb, "apply", dir.path(), &["--prune", "--max-delete", "100"]).await;
    assert!(out.all().contains("--force-prune"), "{}", out.all());
    assert!(deletes(&sb).is_empty(), "{:?}", deletes(&sb));
    // diff shows the same refusal, in text and in JSON.
    let out = mesosync(&sb, "diff", dir.path(), &["--prune"]).await;
    assert!(out.all().contains("--force-prune"), "{}", out.all());
    let out = mesosync(&sb, "diff", dir.path(), &["--prune", "--output", "json"]).await;
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).expect("diff JSON");
    assert!(plan["pruneRefused"].as_str().is_some_and(|r| r.contains("--force-prune")), "{plan}");
    assert_eq!(plan["summary"]["refused_deletes"], 15, "{}", plan["summary"]);
    assert!(plan["summaryLine"].as_str().unwrap_or_default().contains("15 refused"), "{plan}");
    // Forced: exactly the 15 orphans go, nothing else.
    let out = mesosync(&sb, "apply", dir.path(), &["--prune", "--force-prune"]).await;
    assert_eq!(out.code, 0);
    assert_eq!(deletes(&sb).len(), 15, "{:?}", deletes(&sb));
    let expected: Vec<String> = {
        let mut v: Vec<String> = (0..5).map(|i| format!("/own/app-{i}")).collect();
        v.sort();
        v
    };
    assert_eq!(live_app_ids(&sb).await, expected);
    assert_eq!(live_job_names(&sb).await, vec!["own-job".to_string()]);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_mesosync_does_not_own_are_never_touched() {
    let sb = sandbox(Duration::from_millis(10)).await;
    let http = reqwest::Client::new();
    // Someone else's apps (no MESOSYNC_OWNER label, or another instance's) and jobs
    // (no ownership marker).
    for (id, labels) in [
        ("/theirs/lonely", json!({})),
        ("/theirs/same-id", json!({})),
        ("/theirs/other-instance", json!({"MESOSYNC_OWNER": "someone-else"})),
    ] {
        let body = json!({"id": id, "cmd": "sleep 5", "cpus": 0.1, "mem": 16, "labels": labels});
        let r = http.post(format!("{}/v2/apps", sb.marathon_url())).json(&body).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }
    let job = json!({"name": "their-job", "command": "true", "owner": "x@y.z", "schedule": "R/2030-01-01T00:00:00Z/PT1H"});
    let r = http.post(format!("{}/scheduler/iso8601", sb.chronos_url())).json(&job).send().await.unwrap();
    assert!(r.status().is_success());
    sb.reset_requests();
    let dir = tempfile::tempdir().unwrap();
    // The manifests want /theirs/same-id changed, and add one app of their own.
    let text = format!("{}{}", app_yaml("/theirs/same-id", 2), app_yaml("/mine/new", 1));
    fs::write(dir.path().join("all.yaml"), text).unwrap();
    let out = mesosync(&sb, "apply", dir.path(), &["--prune", "--allow-empty", "--force-prune"]).await;
    assert!(out.all().contains("/theirs/same-id"), "the unowned app is reported:\n{}", out.all());
    assert_eq!(writes(&sb), vec!["POST /v2/apps 201".to_string()], "only the new app is written");
    assert_eq!(count(&sb, "DELETE", None), 0);
    let mut all = vec!["/mine/new", "/theirs/lonely", "/theirs/other-instance", "/theirs/same-id"];
    all.sort();
    assert_eq!(live_app_ids(&sb).await, all);
    assert_eq!(live_job_names(&sb).await, vec!["their-job".to_string()]);
    // Even with an empty manifest set and every prune flag.
    let empty = tempfile::tempdir().unwrap();
    sb.reset_requests();
    mesosync(&sb, "apply", empty.path(), &["--prune", "--allow-empty", "--force-prune"]).await;
    assert_eq!(writes(&sb), vec!["DELETE /v2/apps/mine/new 200".to_string()], "only our own app goes");
    assert_eq!(live_job_names(&sb).await, vec!["their-job".to_string()]);
    // Taking one over is explicit (--adopt), so the check above could have failed.
    sb.reset_requests();
    let out = mesosync(&sb, "apply", dir.path(), &["--adopt"]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(writes(&sb).iter().any(|w| w.starts_with("PUT /v2/apps/theirs/same-id")), "{:?}", writes(&sb));
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ownership_marks_cannot_be_spoofed_into_a_prune() {
    let sb = sandbox(Duration::from_millis(10)).await;
    let http = reqwest::Client::new();
    // A job of `victim` whose description someone extended with another instance's
    // marker (before: owned by both), one whose marker is copied into the middle of the
    // text (not a mark), and an app with two owner labels differing in case.
    for (name, description) in [
        ("spoofed-job", "nightly backup [mesosync:victim] [mesosync:mesosync]"),
        ("quoted-job", "copied from [mesosync:victim] docs"),
    ] {
        let job = json!({"name": name, "command": "true", "owner": "x@y.z", "description": description,
                         "schedule": "R/2030-01-01T00:00:00Z/PT1H"});
        let r = http.post(format!("{}/scheduler/iso8601", sb.chronos_url())).json(&job).send().await.unwrap();
        assert!(r.status().is_success());
    }
    let app = json!({"id": "/spoof/app", "cmd": "sleep 5", "cpus": 0.1, "mem": 16,
                     "labels": {"MESOSYNC_OWNER": "victim", "mesosync_owner": "mesosync"}});
    let r = http.post(format!("{}/v2/apps", sb.marathon_url())).json(&app).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    sb.reset_requests();
    let empty = tempfile::tempdir().unwrap();
    for instance in ["victim", "mesosync"] {
        let flags = ["--instance", instance, "--prune", "--allow-empty", "--force-prune"];
        let out = mesosync(&sb, "apply", empty.path(), &flags).await;
        assert_eq!(writes(&sb), Vec::<String>::new(), "{instance}: nothing deleted or written");
        assert_eq!(out.code, 1, "{instance}: the ambiguous objects are errors");
        assert!(out.all().contains("more than one ownership mark"), "{}", out.all());
        for object in ["spoofed-job", "/spoof/app"] {
            assert!(out.all().contains(object), "{instance}: {object} is named\n{}", out.all());
        }
        assert!(
            !out.all().contains("quoted-job"),
            "a marker inside the text is not a mark: not ours, silent"
        );
    }
    assert_eq!(live_app_ids(&sb).await, vec!["/spoof/app".to_string()]);
    assert_eq!(live_job_names(&sb).await, vec!["quoted-job".to_string(), "spoofed-job".to_string()]);

    // A manifest cannot plant a mark either.
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{}  description: \"x [mesosync:other]\"\n{}  labels: {{mesosync_owner: other}}\n",
        job_yaml("planted"),
        app_yaml("/planted", 1)
    );
    fs::write(dir.path().join("all.yaml"), text).unwrap();
    let out = mesosync(&sb, "apply", dir.path(), &[]).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("ownership marker mesosync adds itself"), "{}", out.stderr);
    assert!(out.stderr.contains("ownership label mesosync sets itself"), "{}", out.stderr);
    assert_eq!(writes(&sb), Vec::<String>::new());
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_rewritten_in_two_steps_deletes_nothing_and_a_real_removal_waits_for_prune_delay() {
    let sb = sandbox(Duration::from_millis(10)).await;
    let dir = tempfile::tempdir().unwrap();
    let all: String = (0..3).map(|i| app_yaml(&format!("/own/app-{i}"), 1)).collect();
    fs::write(dir.path().join("apps.yaml"), &all).unwrap();
    let extra = ["--prune", "--max-delete-ratio", "1", "--prune-delay", "3s", "--resync", "1h"];
    let mut run = start_controller(&sb, dir.path(), &extra, &[]).await;
    eventually(Duration::from_secs(20), "three apps created", || async {
        live_app_ids(&sb).await.len() == 3
    })
    .await;
    let reconciles = |status: serde_json::Value| status["last_reconcile"]["number"].as_u64().unwrap_or(0);
    eventually(Duration::from_secs(20), "the first reconcile finished", || async {
        reconciles(run.status().await) >= 1
    })
    .await;
    // Half the file written, a pause longer than the debounce, then the rest.
    let before = reconciles(run.status().await);
    fs::write(dir.path().join("apps.yaml"), app_yaml("/own/app-0", 1)).unwrap();
    eventually(Duration::from_secs(20), "a reconcile of the half-written file", || async {
        reconciles(run.status().await) > before
    })
    .await;
    let status = run.status().await;
    fs::write(dir.path().join("apps.yaml"), &all).unwrap();
    assert_eq!(count(&sb, "DELETE", None), 0, "nothing deleted from a transient state: {status}");
    let state = |id: &str| {
        status["objects"]
            .as_array()
            .and_then(|o| o.iter().find(|o| o["id"] == id))
            .map(|o| o["state"].clone())
    };
    assert_eq!(state("/own/app-1"), Some(json!("drifted")), "held, reported as drift: {status}");

    // A real removal: deleted once missing from loads at least 3 s apart (SIGHUP asks
    // for reconciles until then).
    fs::write(dir.path().join("apps.yaml"), app_yaml("/own/app-0", 1)).unwrap();
    let pid = run.child.id().expect("pid").to_string();
    eventually(Duration::from_secs(20), "the removed apps pruned after the delay", || async {
        let _ = std::process::Command::new("kill").args(["-HUP", &pid]).status();
        live_app_ids(&sb).await == vec!["/own/app-0".to_string()]
    })
    .await;
    assert_eq!(count(&sb, "DELETE", None), 2);
    assert!(run.running());
    assert_eq!(run.stop().await.code, 0);
    // One-shot apply is unaffected: it prunes at once.
    fs::write(dir.path().join("apps.yaml"), "").unwrap();
    let out =
        mesosync(&sb, "apply", dir.path(), &["--prune", "--allow-empty", "--max-delete-ratio", "1"]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(live_app_ids(&sb).await.is_empty());
    sb.shutdown().await;
}
