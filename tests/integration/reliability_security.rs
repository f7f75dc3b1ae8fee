//! Security promises through the real binary: credentials come from the environment
//! or files and never appear in any output (stdout, stderr, logs at debug level,
//! /status, /metrics, saved plans); the status server binds loopback by default; no
//! manifest value reaches a shell; TLS verification is on by default.

use std::fs;
use std::path::Path;
use std::time::Duration;

use mesosync::emulator::{FaultRule, System};

use crate::reliability_support::{
    BIN, Output, eventually, finish, mesosync, sandbox, start_controller, writes,
};

const MARATHON_TOKEN: &str = "env-token-s3cr3t-1111";
const CHRONOS_PASSWORD: &str = "file-password-s3cr3t-2222";
const URL_PASSWORD: &str = "url-password-s3cr3t-3333";
const MANIFEST_PASSWORD: &str = "manifest-password-s3cr3t-4444";
const MANIFEST_CMD_SECRET: &str = "manifest-cmd-s3cr3t-5555";
const ALL_SECRETS: &[&str] =
    &[MARATHON_TOKEN, CHRONOS_PASSWORD, URL_PASSWORD, MANIFEST_PASSWORD, MANIFEST_CMD_SECRET];

fn assert_no_secret(what: &str, text: &str) {
    for secret in ALL_SECRETS {
        assert!(!text.contains(secret), "{what} shows the secret {secret}:\n{text}");
    }
}

fn secret_manifests(dir: &Path) {
    let text = format!(
        "kind: MarathonApp\nsync:\n  secret: [/cmd]\nspec:\n  id: /sec/app\n  cmd: ./run --token={MANIFEST_CMD_SECRET}\n  \
         cpus: 0.1\n  mem: 32\n  env:\n    DB_PASSWORD: {MANIFEST_PASSWORD}\n    LOG_LEVEL: debug\n---\n\
         kind: ChronosJob\nspec:\n  name: sec-job\n  command: \"true\"\n  owner: ops@example.org\n  \
         schedule: R/2030-01-01T00:00:00Z/PT1H\n  environmentVariables:\n    - {{name: OS_PASSWORD, value: {MANIFEST_PASSWORD}}}\n"
    );
    fs::write(dir.join("secret.yaml"), text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_and_manifest_secrets_never_appear_in_any_output() {
    let sb = sandbox(Duration::from_millis(20)).await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    secret_manifests(dir.path());
    let password_file = secrets.path().join("chronos-password");
    fs::write(&password_file, format!("{CHRONOS_PASSWORD}\n")).unwrap();
    let password_file = password_file.display().to_string();
    // Chronos also reached through a URL carrying credentials, and failing, so that
    // error paths (which print URLs) are exercised.
    let chronos_url = sb.chronos_url().replace("http://", &format!("http://ops:{URL_PASSWORD}@"));
    sb.faults().add(FaultRule {
        system: Some(System::Chronos),
        method: Some("POST".into()),
        error_rate: 1.0,
        error_status: Some(500),
        ..FaultRule::default()
    });
    let envs = [
        ("MESOSYNC_MARATHON_TOKEN", MARATHON_TOKEN),
        ("MESOSYNC_CHRONOS_USER", "ops"),
        ("MESOSYNC_CHRONOS_PASSWORD_FILE", password_file.as_str()),
        ("RUST_LOG", "debug"),
    ];
    let run_cli = |sub: &'static str, extra: Vec<String>| {
        let mut cmd = crate::reliability_support::command(&sb, sub, dir.path());
        cmd.args(["--chronos", &chronos_url]).args(extra);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        finish(cmd, Duration::from_secs(40))
    };
    let plan_file = secrets.path().join("plan.json");
    let mut outputs: Vec<(String, Output)> = Vec::new();
    outputs.push(("diff".into(), run_cli("diff", vec![]).await));
    outputs.push(("diff -o json".into(), run_cli("diff", vec!["-o".into(), "json".into()]).await));
    outputs.push((
        "diff --out".into(),
        run_cli("diff", vec!["--out".into(), plan_file.display().to_string()]).await,
    ));
    outputs.push(("apply".into(), run_cli("apply", vec![]).await));
    for (what, out) in &outputs {
        assert_no_secret(&format!("{what} stdout"), &out.stdout);
        assert_no_secret(&format!("{what} stderr"), &out.stderr);
    }
    // The apply really ran (the app landed) and really failed on Chronos (an error
    // path that names the URL was taken).
    let apply = &outputs[3].1;
    assert_eq!(apply.code, 1, "{}", apply.all());
    assert!(writes(&sb).iter().any(|w| w == "POST /v2/apps 201"), "{:?}", writes(&sb));
    assert!(apply.all().contains("sec-job"), "{}", apply.all());
    assert!(
        apply.all().contains("***") || apply.all().contains("DB_PASSWORD"),
        "the secret is masked, not dropped"
    );
    let plan = fs::read_to_string(&plan_file).expect("the saved plan");
    assert_no_secret("saved plan", &plan);

    // The controller: logs (JSON, debug level), /status, /metrics.
    let mut extra = vec!["--resync", "300ms", "--log-format", "json", "--chronos"];
    extra.push(&chronos_url);
    let run = start_controller(&sb, dir.path(), &extra, &envs).await;
    eventually(Duration::from_secs(20), "two reconciles with the Chronos failure", || async {
        let status = run.status().await;
        status["reconciles"].as_u64().is_some_and(|n| n >= 2) && status.to_string().contains("sec-job")
    })
    .await;
    let status = run.text("/status").await;
    let metrics = run.text("/metrics").await;
    assert!(metrics.contains("mesosync_"), "{metrics}");
    let out = run.stop().await;
    assert_no_secret("/status", &status);
    assert_no_secret("/metrics", &metrics);
    assert_no_secret("run stdout", &out.stdout);
    assert_no_secret("run stderr (logs)", &out.stderr);
    assert!(out.stderr.contains("DEBUG") || out.stderr.contains("\"level\":\"DEBUG\""), "debug logs were on");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_taken_from_env_or_files_never_from_flags() {
    let help = std::process::Command::new(BIN).args(["run", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout).to_lowercase();
    for word in ["token", "password", "secret"] {
        assert!(!help.contains(&format!("--{word}")), "a credential flag would show in `ps`: --{word}");
        assert!(!help.lines().any(|l| l.trim_start().starts_with("--") && l.contains(word)), "{help}");
    }
    // A half-set credential is refused before any request.
    let sb = sandbox(Duration::from_millis(20)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = crate::reliability_support::command(&sb, "diff", dir.path());
    cmd.env("MESOSYNC_MARATHON_USER", "ops");
    let out = finish(cmd, Duration::from_secs(20)).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("MESOSYNC_MARATHON_PASSWORD"), "{}", out.stderr);
    assert!(sb.requests().is_empty(), "{:?}", sb.requests());
    sb.shutdown().await;
}

#[tokio::test]
async fn the_status_server_binds_loopback_by_default() {
    let help = std::process::Command::new(BIN).args(["run", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let listen = help.split("--listen").nth(1).expect("--listen documented");
    let default = listen.split("[default: ").nth(1).and_then(|d| d.split(']').next()).expect("a default");
    let addr: std::net::SocketAddr = default.parse().unwrap();
    assert!(addr.ip().is_loopback(), "default listen address {addr}");
    assert!(mesosync::runtime::RuntimeConfig::new(std::path::PathBuf::from("m")).listen.ip().is_loopback());
    // The sandbox's defaults too.
    let help = std::process::Command::new(BIN).args(["sandbox", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for default in help.split("[default: ").skip(1).filter_map(|d| d.split(']').next()) {
        if let Ok(addr) = default.parse::<std::net::SocketAddr>() {
            assert!(addr.ip().is_loopback(), "sandbox default {addr}");
        }
    }
}

/// Every `Command::new` in the library, with the program it runs.
fn process_spawns() -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = fs::read_to_string(&path).unwrap();
                for (i, line) in text.lines().enumerate() {
                    for pattern in ["Command::new(", "process::Command", "\"sh\"", "\"bash\"", "\"-c\""] {
                        if line.contains(pattern) && !line.trim_start().starts_with("//") {
                            found.push((format!("{}:{}", path.display(), i + 1), line.trim().to_string()));
                        }
                    }
                }
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_manifest_value_reaches_a_shell() {
    // Statically: the only program the library starts is `git`, with literal
    // arguments, in the runtime's git module (which reads no manifest) and in the
    // git-revision reader of `diff --base` (revision names, paths and object ids as
    // separate arguments, never through a shell). The other: the template renderer,
    // which starts this binary itself with one literal argument (`render-template`)
    // and passes the template on stdin as JSON.
    for (place, line) in process_spawns() {
        let git = (place.contains("src/runtime/git.rs")
            && (line.contains("Command::new(\"git\")") || line.contains("use tokio::process::Command")))
            || (place.contains("src/source/revision.rs") && line.contains("Command::new(\"git\")"));
        let renderer = place.contains("src/source/template.rs")
            && (line.contains("let mut child = Command::new(exe)")
                || line.contains("use std::process::{Command, Stdio};"));
        assert!(git || renderer, "a process is started at {place}: {line}");
    }
    let template_rs =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/source/template.rs")).unwrap();
    let spawn = template_rs.split("let mut child = Command::new(exe)").nth(1).unwrap_or_default();
    let args: Vec<&str> = spawn.split(".spawn()").next().unwrap_or_default().matches(".arg").collect();
    assert_eq!(args, [".arg"], "the renderer gets exactly one argument");
    assert!(spawn.trim_start().starts_with(".arg(RENDER_COMMAND)"), "and it is the literal subcommand");
    let git_rs =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/runtime/git.rs")).unwrap();
    for forbidden in ["crate::model", "crate::source", "DesiredState", "\"sh\"", "\"-c\""] {
        assert!(!git_rs.contains(forbidden), "src/runtime/git.rs uses {forbidden}");
    }
    // Dynamically: shell metacharacters in every kind of value are sent as data.
    let sb = sandbox(Duration::from_millis(20)).await;
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pwned");
    let m = marker.display();
    let text = format!(
        "kind: MarathonApp\nspec:\n  id: /shell/app\n  cmd: \"touch {m}; $(touch {m}) `touch {m}`\"\n  cpus: 0.1\n  mem: 32\n  \
         env: {{X: \"$(touch {m})\"}}\n  labels: {{Y: \"`touch {m}`\"}}\n---\nkind: ChronosJob\nspec:\n  name: shell-job\n  \
         command: \"touch {m} && $(touch {m})\"\n  owner: \"a@b.c; touch {m}\"\n  schedule: R/2030-01-01T00:00:00Z/PT1H\n"
    );
    fs::write(dir.path().join("x.yaml"), text).unwrap();
    assert_eq!(mesosync(&sb, "diff", dir.path(), &[]).await.code, 2);
    assert_eq!(mesosync(&sb, "apply", dir.path(), &[]).await.code, 0);
    assert!(!marker.exists(), "a manifest value was run by a shell");
    let app: serde_json::Value =
        reqwest::get(format!("{}/v2/apps/shell/app", sb.marathon_url())).await.unwrap().json().await.unwrap();
    assert!(app["app"]["cmd"].as_str().unwrap().starts_with("touch "), "sent verbatim: {app}");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_verification_is_on_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let made = super::certs::make(d, false);
    if !made {
        let test = "reliability_security::tls_verification_is_on_by_default";
        super::requires::missing(test, "`openssl` is missing or failed", "`make test-deps`");
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let accept = format!("127.0.0.1:{port}");
    let _server = tokio::process::Command::new("openssl")
        .args(["s_server", "-accept", &accept, "-cert", "server.pem", "-key", "server.key", "-www", "-quiet"])
        .current_dir(d)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut up = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(&accept).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "openssl s_server did not start");
    let manifests = tempfile::tempdir().unwrap();
    fs::write(manifests.path().join("a.yaml"), crate::reliability_support::app_yaml("/tls/app", 1)).unwrap();
    let diff = |ca: Option<&Path>| {
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.arg("diff")
            .arg(manifests.path())
            .args(["--marathon", &format!("https://{accept}"), "--request-timeout", "3s"])
            .env_remove("MESOSYNC_CA_BUNDLE")
            .env_remove("SSL_CERT_FILE")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if let Some(ca) = ca {
            cmd.arg("--ca-bundle").arg(ca);
        }
        finish(cmd, Duration::from_secs(30))
    };
    let refused = diff(None).await;
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.to_lowercase().contains("certificate"),
        "refused for its certificate:\n{}",
        refused.stderr
    );
    // Trusting the CA gets past TLS (the server is no Marathon, so diff still fails,
    // but not on the certificate).
    let trusted = diff(Some(&d.join("ca.pem"))).await;
    assert_eq!(trusted.code, 1);
    assert!(!trusted.stderr.to_lowercase().contains("certificate"), "{}", trusted.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_plan_holds_no_secret_and_applies_the_real_values_from_the_manifests() {
    let sb = sandbox(Duration::from_millis(20)).await;
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    secret_manifests(dir.path());
    let plan_file = files.path().join("plan.json");
    let plan_arg = plan_file.display().to_string();
    assert_eq!(mesosync(&sb, "diff", dir.path(), &["--out", &plan_arg]).await.code, 2);
    let saved = fs::read_to_string(&plan_file).unwrap();
    assert_no_secret("saved plan", &saved);
    assert!(saved.contains("DB_PASSWORD"), "the masked field is still there");
    // The library refuses to write a masked plan as it is.
    let plan: mesosync::plan::Plan = serde_json::from_str(&saved).unwrap();
    assert!(mesosync::plan::has_masked_secrets(&plan));
    // The manifests changed since: refused, nothing written.
    let other = tempfile::tempdir().unwrap();
    secret_manifests(other.path());
    let changed = fs::read_to_string(other.path().join("secret.yaml"))
        .unwrap()
        .replace("LOG_LEVEL: debug", "LOG_LEVEL: info");
    fs::write(other.path().join("secret.yaml"), changed).unwrap();
    let out = mesosync(&sb, "apply", other.path(), &["--plan", &plan_arg]).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("no longer plan the saved writes") && out.stderr.contains("/sec/app"),
        "{}",
        out.stderr
    );
    assert!(writes(&sb).is_empty(), "{:?}", writes(&sb));
    // Applied from the same manifests: the real secret lands, not the mask.
    let out = mesosync(&sb, "apply", dir.path(), &["--plan", &plan_arg]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert_no_secret("apply --plan", &out.all());
    let app: serde_json::Value =
        reqwest::get(format!("{}/v2/apps/sec/app", sb.marathon_url())).await.unwrap().json().await.unwrap();
    assert_eq!(app["app"]["env"]["DB_PASSWORD"], MANIFEST_PASSWORD);
    assert_eq!(app["app"]["cmd"], format!("./run --token={MANIFEST_CMD_SECRET}"));
    // Applying the same plan again: live moved on, refused.
    let out = mesosync(&sb, "apply", dir.path(), &["--plan", &plan_arg]).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("live state changed"), "{}", out.stderr);
    sb.shutdown().await;
}
