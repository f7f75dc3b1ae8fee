//! Issue 21.9: `mesosync run --log-format human` (the default) reads like a person
//! wrote it: one short line per event, a summary line per reconcile, colour only on a
//! terminal and never with `NO_COLOR`. Through the real binary against its sandbox.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::e2e::manifests_copy;
use super::harness;
use super::reliability_support::{BIN, eventually};

fn hh_mm_ss(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 9
        && b[2] == b':'
        && b[5] == b':'
        && b[8] == b' '
        && [0, 1, 3, 4, 6, 7].iter().all(|&i| b[i].is_ascii_digit())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sandbox_run_logs_one_short_line_per_write_and_a_summary_without_colour_on_a_pipe() {
    let dir = manifests_copy();
    let mut child = tokio::process::Command::new(BIN)
        .args(["run", dir.path().to_str().unwrap(), "--sandbox", "--listen", "127.0.0.1:0"])
        .args(["--sandbox-deployment-duration", "50ms", "--log-format", "human"])
        .env(harness::demo_key_env().0, harness::demo_key_env().1)
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .env_remove("MESOSYNC_LOG_FORMAT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout =
        tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(child.stdout.take().unwrap()));
    let base = loop {
        let line = stdout.next_line().await.unwrap().expect("run printed its status address");
        if let Some(rest) = line.split("status at ").nth(1) {
            break rest.split("/status").next().unwrap().to_string();
        }
    };
    let mut stderr = child.stderr.take().unwrap();
    let collected = tokio::spawn(async move {
        let mut text = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut text).await;
        text
    });
    eventually(Duration::from_secs(60), "the first reconcile", || async {
        let status: serde_json::Value =
            reqwest::get(format!("{base}/status")).await.unwrap().json().await.unwrap();
        status["last_reconcile"]["outcome"] == "success"
    })
    .await;
    let pid = child.id().unwrap().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let code = tokio::time::timeout(Duration::from_secs(20), child.wait()).await.unwrap().unwrap();
    let log = collected.await.unwrap();
    assert_eq!(code.code(), Some(0), "{log}");

    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.iter().all(|l| hh_mm_ss(l)), "every line starts with the time:\n{log}");
    assert!(!log.contains('\x1b'), "no ANSI codes on a pipe:\n{log}");
    for noise in ["impact=None", "reconcile{", "apply{", "object=", "mesosync::", "starting"] {
        assert!(!log.contains(noise), "{noise:?} in:\n{log}");
    }
    // One line per write, the object named once.
    let horizon: Vec<&&str> = lines.iter().filter(|l| l.contains("/openstack/horizon/horizon")).collect();
    assert_eq!(horizon.len(), 1, "{horizon:#?}");
    let tail = horizon[0].split_once(' ').unwrap().1;
    assert!(
        tail.starts_with("#1 startup  app /openstack/horizon/horizon  create  applied "),
        "{}",
        horizon[0]
    );
    assert_eq!(horizon[0].matches("horizon/horizon").count(), 1);
    // The summary line of the reconcile: 20 apps and 12 jobs created.
    let summary = lines
        .iter()
        .find(|l| l.contains("#1 startup  success in "))
        .unwrap_or_else(|| panic!("no summary:\n{log}"));
    assert!(summary.ends_with(": 32 written"), "{summary}");
    assert!(lines.iter().any(|l| l.ends_with("#1 startup  reconciling")), "{log}");
}

/// Under a terminal (made by `script`, util-linux, in every Debian install), the same
/// lines are coloured, unless `NO_COLOR` is set.
#[test]
fn colour_on_a_terminal_only_without_no_color() {
    let dir = tempfile::tempdir().unwrap();
    let run = |no_color: Option<&str>| -> String {
        let inner = format!(
            "exec {BIN} run {} --sandbox --listen 127.0.0.1:0 --log-format human",
            dir.path().display()
        );
        // The shell prints the controller's pid, so it is stopped by SIGTERM, not left
        // behind when the terminal closes.
        let shell = format!("{inner} & echo PID=$!; wait");
        let mut cmd = Command::new("script");
        cmd.args(["-qefc", &shell, "/dev/null"]).env_remove("NO_COLOR").env_remove("RUST_LOG");
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        let mut child =
            cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("script (util-linux) runs");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = String::new();
        let mut pid = None;
        let deadline = Instant::now() + Duration::from_secs(60);
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(p) = line.trim().strip_prefix("PID=") {
                pid = Some(p.to_string());
            }
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("controller started") || Instant::now() > deadline {
                break;
            }
        }
        let pid = pid.unwrap_or_else(|| panic!("no pid in:\n{seen}"));
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        for line in lines {
            seen.push_str(&line.unwrap_or_default());
            seen.push('\n');
        }
        let _ = child.wait();
        assert!(seen.contains("controller started"), "{seen}");
        seen
    };
    let coloured = run(None);
    assert!(coloured.contains("\x1b[2m"), "a terminal gets colour:\n{coloured:?}");
    let plain = run(Some("1"));
    assert!(!plain.contains("\x1b["), "NO_COLOR=1 turns it off:\n{plain:?}");
}
