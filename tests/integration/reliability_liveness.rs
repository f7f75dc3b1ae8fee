//! Liveness and bounded work, through the real binary: templates that never finish
//! or grow without bound, files that would block a reader, a reconcile that hangs,
//! SIGTERM while it hangs, and a flood of slow clients on the status server. Every
//! run is bounded by a timeout and, where memory or descriptors are at stake, by a
//! shell `ulimit`, so a regression fails the test instead of the machine.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mesosync::emulator::{FaultRule, System};
use tokio::io::AsyncWriteExt;

use super::reliability_support::*;

/// `mesosync validate DIR` under `ulimit -v` (4 GB of address space: far above what a
/// healthy run needs, far below what would hurt the machine), to its end.
async fn validate(dir: &Path) -> Output {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -v 4000000 && exec \"$0\" validate \"$1\"")
        .arg(BIN)
        .arg(dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    finish(cmd, Duration::from_secs(60)).await
}

/// A directory holding one file `name` with `text`.
fn dir_with(name: &str, text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(name), text).unwrap();
    dir
}

fn assert_refused(out: &Output, file: &str, message: &str) {
    assert_eq!(out.code, 1, "a refused load exits 1 (not a signal, not a hang)");
    let line = out.stderr.lines().find(|l| l.contains(file)).unwrap_or_default();
    assert!(line.contains(message), "expected `{file}: …{message}…` in:\n{}", out.stderr);
}

#[tokio::test]
async fn templates_that_never_end_or_grow_without_bound_are_refused_with_their_file() {
    // Ten billion loop steps: an endless loop for practical purposes.
    let endless = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\n";
    let out = validate(dir_with("loop.yaml.j2", endless).path()).await;
    assert_refused(&out, "loop.yaml.j2", "did not finish within its budget");

    // Three lines doubling a string 40 times: a terabyte, in 40 engine steps.
    let doubling = "{% set ns = namespace(s=\"xxxxxxxx\") %}\n\
                    {% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}\n\
                    {{ ns.s }}\n";
    let out = validate(dir_with("double.yaml.j2", doubling).path()).await;
    assert_refused(&out, "double.yaml.j2", "needed more than 512 MiB of memory");

    // Output over the file limit, and a values file over it.
    let out = validate(dir_with("big.yaml.j2", "a: {{ \"x\" * 2000000 }}\n").path()).await;
    assert_refused(&out, "big.yaml.j2", "renders to more than 1048576 bytes");
    let values = dir_with("values.yaml", &format!("big: {}\n", "x".repeat(2 << 20)));
    let out = validate(values.path()).await;
    assert_refused(&out, "values.yaml", "over the 1048576 byte limit");

    // Many templates, each under the limit, together over the set's cap (64 MiB).
    let many = tempfile::tempdir().unwrap();
    for i in 0..66 {
        std::fs::write(many.path().join(format!("t{i:02}.yaml.j2")), "# {{ \"x\" * 1040000 }}\n").unwrap();
    }
    let out = validate(many.path()).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("render to more than 67108864 bytes together"), "{}", out.stderr);
}

/// `mkfifo PATH` (a FIFO blocks whoever opens it for reading until a writer appears).
fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo").arg(path).status().expect("mkfifo runs");
    assert!(made.success(), "mkfifo {}", path.display());
}

#[tokio::test]
async fn a_fifo_named_like_a_manifest_or_values_file_is_refused_not_read() {
    let dir = dir_with("apps.yaml", &app_yaml("/live/a", 1));
    mkfifo(&dir.path().join("pipe.yaml"));
    let out = validate(dir.path()).await;
    assert_refused(&out, "pipe.yaml", "is not a regular file");

    let dir = dir_with("apps.yaml", &app_yaml("/live/a", 1));
    mkfifo(&dir.path().join("values.yaml"));
    let out = validate(dir.path()).await;
    assert_refused(&out, "values.yaml", "is not a regular file");
}

/// `GET <base><path>` with a short timeout: the status code, or 0 when no answer came.
async fn probe(base: &str, path: &str) -> (u16, String) {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    match client.get(format!("{base}{path}")).send().await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(_) => (0, String::new()),
    }
}

#[tokio::test]
async fn a_stuck_reconcile_is_abandoned_reported_and_unready_and_sigterm_still_exits_at_once() {
    let sb = sandbox(Duration::from_millis(50)).await;
    let dir = tempfile::tempdir().unwrap();
    write_apps(dir.path(), 1);
    let extra =
        ["--reconcile-timeout", "2s", "--shutdown-grace", "1s", "--request-timeout", "1h", "--resync", "1h"];
    let controller = start_controller(&sb, dir.path(), &extra, &[]).await;
    let base = controller.base.clone();
    eventually(Duration::from_secs(20), "ready after the first reconcile", || async {
        probe(&base, "/readyz").await.0 == 200
    })
    .await;

    // Marathon stops answering its listing (the client would wait an hour).
    sb.faults().add(FaultRule {
        system: Some(System::Marathon),
        method: Some("GET".into()),
        path_prefix: "/v2/apps".into(),
        latency_ms: 3_600_000,
        ..FaultRule::default()
    });
    write_apps(dir.path(), 2);
    eventually(Duration::from_secs(20), "/readyz fails while the controller is stuck", || async {
        let (code, body) = probe(&base, "/readyz").await;
        code == 503 && body.contains("stuck")
    })
    .await;
    // /readyz says "stuck" once the running reconcile is past --reconcile-timeout; the
    // abandoned reconcile is recorded a moment later (seen under load).
    eventually(Duration::from_secs(20), "the stuck reconcile recorded as abandoned", || async {
        controller.status().await["last_reconcile"]["outcome"] == "error"
    })
    .await;
    let status = controller.status().await;
    let error = status["last_reconcile"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("abandoned") && error.contains("--reconcile-timeout"), "{status}");
    assert_eq!(probe(&base, "/healthz").await.0, 200, "alive while stuck");

    // SIGTERM while a reconcile hangs again: exit 0 within the grace, not an hour.
    eventually(Duration::from_secs(20), "a retry reconcile is running (and hanging)", || async {
        controller.status().await["running"].is_object()
    })
    .await;
    let stopped = Instant::now();
    let out = controller.stop().await;
    let took = stopped.elapsed();
    assert_eq!(out.code, 0, "graceful exit");
    assert!(took < Duration::from_secs(8), "SIGTERM took {took:?} with --shutdown-grace 1s");
    sb.faults().clear();
}

/// Open a connection to `addr` and send a request's first bytes, then one byte every
/// `every`, never finishing the headers; reconnect whenever the server drops it.
async fn trickle(addr: String, every: Duration, until: Instant, connects: Arc<AtomicUsize>) {
    while Instant::now() < until {
        let Ok(mut socket) = tokio::net::TcpStream::connect(&addr).await else {
            tokio::time::sleep(every).await;
            continue;
        };
        connects.fetch_add(1, Ordering::Relaxed);
        if socket.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.is_err() {
            continue;
        }
        while Instant::now() < until {
            tokio::time::sleep(every).await;
            if socket.write_all(b"X").await.is_err() {
                break;
            }
        }
    }
}

#[tokio::test]
async fn a_flood_of_trickling_clients_neither_exhausts_descriptors_nor_stops_healthz_or_reconciles() {
    let sb = sandbox(Duration::from_millis(50)).await;
    let dir = tempfile::tempdir().unwrap();
    write_apps(dir.path(), 2);
    // 128 descriptors for the whole controller, 300 slow clients.
    let extra = ["--max-connections", "48", "--header-timeout", "2s", "--resync", "1h"];
    let controller = start_limited_controller(&sb, dir.path(), "-n 128", &extra).await;
    let base = controller.base.clone();
    eventually(Duration::from_secs(20), "ready", || async { probe(&base, "/readyz").await.0 == 200 }).await;

    let addr = base.trim_start_matches("http://").to_string();
    let until = Instant::now() + Duration::from_secs(8);
    let connects = Arc::new(AtomicUsize::new(0));
    let flood: Vec<_> = (0..300)
        .map(|_| tokio::spawn(trickle(addr.clone(), Duration::from_millis(500), until, connects.clone())))
        .collect();
    eventually(Duration::from_secs(10), "the flood built up (every client connected)", || async {
        connects.load(Ordering::Relaxed) >= 300
    })
    .await;

    // Ten probes, each allowed three attempts, as a health checker counts consecutive
    // failures (Marathon's default maxConsecutiveFailures is 3).
    for i in 0..10 {
        let mut answers = Vec::new();
        for _ in 0..3 {
            answers.push(probe(&base, "/healthz").await);
            if answers.last().is_some_and(|(code, _)| *code == 200) {
                break;
            }
        }
        assert_eq!(
            answers.last().map(|(c, b)| (*c, b.as_str())),
            Some((200, "ok\n")),
            "probe {i}: {answers:?}"
        );
    }
    // A reconcile during the flood still has descriptors for its API calls.
    let text = (0..2).map(|i| app_yaml(&format!("/rel/app-{i}"), 2)).collect::<String>();
    std::fs::write(dir.path().join("apps.yaml"), text).unwrap();
    eventually(Duration::from_secs(10), "the edit applied during the flood", || async {
        let app: serde_json::Value = reqwest::get(format!("{}/v2/apps/rel/app-1", sb.marathon_url()))
            .await
            .expect("GET app")
            .json()
            .await
            .expect("app JSON");
        app["app"]["instances"] == 2
    })
    .await;
    for task in flood {
        let _ = task.await;
    }
    let status = controller.status().await;
    let text = status.to_string();
    assert!(!text.contains("Too many open files"), "{status}");
    let out = controller.stop().await;
    assert_eq!(out.code, 0);
    assert!(!out.all().contains("Too many open files"), "{}", out.all());
}

#[tokio::test]
async fn guard_values_that_would_switch_the_guard_off_are_refused_by_the_cli() {
    let sb = sandbox(Duration::from_millis(50)).await;
    let dir = dir_with("apps.yaml", &app_yaml("/live/a", 1));
    for ratio in ["nan", "NaN", "-0.1", "1.5", "inf", "x"] {
        let flag = format!("--max-delete-ratio={ratio}");
        let out = mesosync(&sb, "diff", dir.path(), &["--prune", &flag]).await;
        assert_eq!(out.code, 1, "a usage error for {ratio} (1, not diff's 2 for changes)");
        assert!(out.stderr.contains("--max-delete-ratio"), "{}", out.stderr);
        let mut cmd = command(&sb, "apply", dir.path());
        cmd.env("MESOSYNC_MAX_DELETE_RATIO", ratio).arg("--prune");
        let out = finish(cmd, Duration::from_secs(20)).await;
        assert_eq!(out.code, 1, "the environment variable is checked too ({ratio})");
        assert!(out.stderr.contains("is not a"), "{}", out.stderr);
    }
    assert!(sb.requests().is_empty(), "nothing asked of the servers: {:?}", sb.requests());
    for ratio in ["0", "0.3", "1"] {
        let out = mesosync(&sb, "diff", dir.path(), &[&format!("--max-delete-ratio={ratio}")]).await;
        assert_eq!(out.code, 2, "valid ({ratio}): the diff shows the create");
    }
}

#[tokio::test]
async fn a_reader_that_goes_away_does_not_crash_diff() {
    // `mesosync diff | head -1`: more output than a pipe holds (64 KiB), and the reader
    // closes its end at once, so a write fails with EPIPE whatever the timing.
    let sb = sandbox(Duration::from_millis(20)).await;
    let dir = tempfile::tempdir().unwrap();
    write_apps(dir.path(), 400);
    for extra in [&[][..], &["--output", "json"][..]] {
        let mut cmd = command(&sb, "diff", dir.path());
        cmd.args(extra);
        let mut child = cmd.spawn().expect("mesosync diff starts");
        drop(child.stdout.take());
        let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
            .await
            .expect("diff ends")
            .expect("diff output");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{extra:?}: {stderr}");
        assert_eq!(out.status.code(), Some(2), "{extra:?}: still the diff's own exit code (changes)");
    }
}
