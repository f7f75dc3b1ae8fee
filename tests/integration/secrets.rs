//! Secrets through the real binary (issues 22 and 16 #1–5): SOPS values files decrypted
//! in memory and every decrypted value masked in every output; `sync.secret` pointers
//! resolved against the manifest as written; prunes masked from what the live object
//! recorded; error bodies that echo the request masked; numeric secrets never quoted;
//! URL userinfo redacted. Files come from the real `sops` tool: committed vectors
//! (tests/fixtures/sops/README.md) and, when `make test-deps` installed it, files made
//! by `sops` during the test.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::reliability_support::{
    Output, command, command_to, eventually, finish, mesosync, sandbox, start_controller,
    start_controller_cmd, writes,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sops")
}

fn key(file: &str) -> String {
    fixtures().join("sops-3.11").join(file).display().to_string()
}

/// Fail when any of `secrets` shows in `text`.
fn assert_masked(what: &str, text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!text.contains(s), "{what} shows the secret {s:?}:\n{text}");
    }
}

/// Values decrypted from tests/fixtures/sops/sops-3.11/values.sops.yaml.
const SOPS_SECRETS: &[&str] = &["s3cret-db-pw", "tok-0123456789", "nested-key-value", "second-item"];

/// A manifest set whose secrets come from a SOPS file, landing where no name rule
/// would catch them: an env var named like a URL, a label, an arg, a command line, a
/// Chronos variable.
fn sops_manifests(dir: &Path) {
    fs::copy(fixtures().join("sops-3.11/values.sops.yaml"), dir.join("secrets.sops.yaml")).unwrap();
    fs::write(
        dir.join("apps.yaml.j2"),
        "kind: MarathonApp\nspec:\n  id: /sops/app\n  args: [serve, \"--token={{ keystone_admin_token }}\", \"{{ nested.list[1] }}\"]\n  \
         cpus: 0.1\n  mem: 32\n  env:\n    DATABASE_URL: \"mysql://app:{{ database_password }}@db:3306/app\"\n    PORT: \"{{ port }}\"\n  \
         labels:\n    owner_ref: \"{{ nested.api_key }}\"\n---\n\
         kind: ChronosJob\nspec:\n  name: sops-job\n  command: \"run --password '{{ database_password }}'\"\n  owner: ops@example.org\n  \
         schedule: R/2030-01-01T00:00:00Z/PT1H\n  environmentVariables:\n    - {name: Z_PLAIN, value: visible}\n    \
         - {name: ENDPOINT, value: \"{{ nested.api_key }}\"}\n",
    )
    .unwrap();
}

fn with_key(mut cmd: tokio::process::Command, file: &str) -> tokio::process::Command {
    cmd.env("MESOSYNC_AGE_KEY_FILE", key(file));
    cmd
}

async fn run_with_key(sb: &mesosync::emulator::Sandbox, sub: &str, dir: &Path, extra: &[&str]) -> Output {
    let mut cmd = with_key(command(sb, sub, dir), "test-key.txt");
    cmd.args(["--request-timeout", "2s"]).args(extra);
    finish(cmd, Duration::from_secs(40)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sops_values_are_decrypted_in_memory_and_masked_in_every_output() {
    let sb = sandbox(Duration::from_millis(20)).await;
    let dir = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    sops_manifests(dir.path());
    let plan = out_dir.path().join("plan.json");
    let mut outputs = vec![
        ("validate", run_with_key(&sb, "validate", dir.path(), &[]).await),
        ("diff", run_with_key(&sb, "diff", dir.path(), &[]).await),
        ("diff -o json", run_with_key(&sb, "diff", dir.path(), &["-o", "json"]).await),
        ("diff --out", run_with_key(&sb, "diff", dir.path(), &["--out", plan.to_str().unwrap()]).await),
    ];
    assert_eq!(outputs[1].1.code, 2, "changes to make: {}", outputs[1].1.all());
    assert!(outputs[1].1.stdout.contains("(sensitive value)"), "{}", outputs[1].1.stdout);
    assert!(outputs[1].1.stdout.contains("visible"), "a clear value is shown: {}", outputs[1].1.stdout);
    outputs.push(("apply", run_with_key(&sb, "apply", dir.path(), &[]).await));
    assert_eq!(outputs[4].1.code, 0, "{}", outputs[4].1.all());
    for (what, out) in &outputs {
        assert_masked(what, &out.all(), SOPS_SECRETS);
    }
    assert_masked("saved plan", &fs::read_to_string(&plan).unwrap(), SOPS_SECRETS);
    // What was written carries the real, decrypted values.
    let app: serde_json::Value =
        reqwest::get(format!("{}/v2/apps/sops/app", sb.marathon_url())).await.unwrap().json().await.unwrap();
    assert_eq!(app["app"]["env"]["DATABASE_URL"], "mysql://app:s3cret-db-pw@db:3306/app", "{app}");
    assert_eq!(app["app"]["args"][1], "--token=tok-0123456789");
    // An update of a decrypted value: shown as changed, never printed.
    fs::write(out_dir.path().join("override.yaml"), "database_password: next-db-pw-9\n").unwrap();
    let over = out_dir.path().join("override.yaml").display().to_string();
    let update = run_with_key(&sb, "diff", dir.path(), &["--values", &over]).await;
    assert_eq!(update.code, 2, "{}", update.all());
    assert!(update.stdout.contains("DATABASE_URL"), "{}", update.stdout);
    assert_masked("update diff", &update.all(), SOPS_SECRETS);

    // The controller: JSON logs at debug level, /status.
    let envs = [("MESOSYNC_AGE_KEY_FILE", key("test-key.txt")), ("RUST_LOG", "debug".into())];
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = start_controller(&sb, dir.path(), &["--log-format", "json", "--resync", "300ms"], &envs).await;
    eventually(Duration::from_secs(20), "two reconciles", || async {
        run.status().await["reconciles"].as_u64().is_some_and(|n| n >= 2)
    })
    .await;
    let status = run.text("/status").await;
    let out = run.stop().await;
    assert_masked("/status", &status, SOPS_SECRETS);
    assert_masked("run logs", &out.all(), SOPS_SECRETS);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sops_errors_name_the_file_and_reason_and_nothing_is_written() {
    let sb = sandbox(Duration::from_millis(20)).await;
    for (file, key_file, reason) in [
        ("tampered-clear.sops.yaml", Some("test-key.txt"), "MAC mismatch"),
        ("tampered-removed.sops.yaml", Some("test-key.txt"), "MAC mismatch"),
        ("tampered-swap.sops.yaml", Some("test-key.txt"), "does not decrypt"),
        ("values.sops.yaml", Some("other-key.txt"), "none of the age keys given"),
        ("values.sops.yaml", None, "no age key to decrypt it"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        fs::copy(fixtures().join("sops-3.11").join(file), dir.path().join("secrets.sops.yaml")).unwrap();
        fs::write(dir.path().join("app.yaml"), crate::reliability_support::app_yaml("/sops/x", 1)).unwrap();
        let mut cmd = command(&sb, "apply", dir.path());
        if let Some(k) = key_file {
            cmd.env("MESOSYNC_AGE_KEY_FILE", key(k));
        }
        let out = finish(cmd, Duration::from_secs(40)).await;
        assert_eq!(out.code, 1, "{file}: {}", out.all());
        assert!(
            out.stderr.contains("secrets.sops.yaml") && out.stderr.contains(reason),
            "{file}: {}",
            out.stderr
        );
        assert!(out.stderr.contains("nothing was written"), "{}", out.stderr);
        assert_masked(file, &out.all(), &["s3cret-db-pw", "partial-pw-1", "AGE-SECRET-KEY"]);
        assert!(writes(&sb).is_empty(), "{file}: a failed decryption wrote {:?}", writes(&sb));
    }
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vectors_made_by_sops_3_8_for_several_recipients_decrypt_through_the_binary() {
    let sb = sandbox(Duration::from_millis(20)).await;
    let dir = tempfile::tempdir().unwrap();
    fs::copy(fixtures().join("humphd-sops-age/secret.enc.yaml"), dir.path().join("vectors.sops.yaml"))
        .unwrap();
    fs::write(
        dir.path().join("app.yaml.j2"),
        "kind: MarathonApp\nspec:\n  id: /v/app\n  cmd: \"echo {{ complex.value }} {{ int }}\"\n  cpus: 0.1\n  mem: 32\n",
    )
    .unwrap();
    let mut cmd = command(&sb, "diff", dir.path());
    cmd.env("MESOSYNC_AGE_KEY_FILE", fixtures().join("humphd-sops-age/key.txt"));
    let out = finish(cmd, Duration::from_secs(40)).await;
    assert_eq!(out.code, 2, "{}", out.all());
    assert_masked("diff", &out.all(), &["this is a secret"]);
    assert!(out.stdout.contains("/v/app"), "{}", out.stdout);
    sb.shutdown().await;
}

/// The `sops` and `age-keygen` binaries `make test-deps` installs; a test that needs
/// them fails under CI when they are missing, and says so.
/// The `sops` and `age-keygen` programs, if installed (`make test-deps`).
pub fn sops_tools() -> Option<(PathBuf, PathBuf)> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/sops-venv/bin/sops");
    let on_path = |name: &str| {
        std::env::var_os("PATH")
            .and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|f| f.is_file()))
    };
    let sops = if venv.is_file() { Some(venv) } else { on_path("sops") };
    Some((sops?, on_path("age-keygen")?))
}

fn run_tool(program: &Path, args: &[&str], env: &[(&str, &str)], cwd: &Path) -> String {
    let out = std::process::Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(out.status.success(), "{} {args:?}: {}", program.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_the_sops_cli_makes_now_decrypt_partially_encrypted_and_after_key_rotation() {
    let Some((sops, age_keygen)) = sops_tools() else {
        return crate::requires::missing(
            "secrets::files_the_sops_cli_makes_now_decrypt_partially_encrypted_and_after_key_rotation",
            "sops or age-keygen",
            "`make test-deps` (scripts/sops-tools.sh install)",
        );
    };
    let sb = sandbox(Duration::from_millis(20)).await;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("manifests");
    fs::create_dir(&dir).unwrap();
    let (old_key, new_key) = (work.path().join("old.txt"), work.path().join("new.txt"));
    run_tool(&age_keygen, &["-o", old_key.to_str().unwrap()], &[], work.path());
    run_tool(&age_keygen, &["-o", new_key.to_str().unwrap()], &[], work.path());
    let recipient =
        |k: &Path| run_tool(&age_keygen, &["-y", k.to_str().unwrap()], &[], work.path()).trim().to_string();
    let (old_pub, new_pub) = (recipient(&old_key), recipient(&new_key));
    let secrets = dir.join("secrets.sops.yaml");
    fs::write(
        &secrets,
        "db_host: db.internal\ndb_password: cli-made-pw-77\napi:\n  token: cli-made-token-88\n",
    )
    .unwrap();
    let file = secrets.to_str().unwrap();
    run_tool(
        &sops,
        &["encrypt", "--age", &old_pub, "--encrypted-regex", "^(.*password|token)$", "-i", file],
        &[],
        &dir,
    );
    let text = fs::read_to_string(&secrets).unwrap();
    assert!(text.contains("db_host: db.internal") && !text.contains("cli-made-pw-77"), "{text}");
    fs::write(
        dir.join("app.yaml.j2"),
        "kind: MarathonApp\nspec:\n  id: /cli/app\n  cmd: \"connect {{ db_host }} {{ db_password }} {{ api.token }}\"\n  cpus: 0.1\n  mem: 32\n",
    )
    .unwrap();
    let diff = |key: PathBuf| {
        let mut cmd = command(&sb, "diff", &dir);
        cmd.env("MESOSYNC_AGE_KEY_FILE", key);
        finish(cmd, Duration::from_secs(40))
    };
    let out = diff(old_key.clone()).await;
    assert_eq!(out.code, 2, "{}", out.all());
    assert_masked("diff", &out.all(), &["cli-made-pw-77", "cli-made-token-88"]);
    assert!(out.stdout.contains("db.internal"), "the unencrypted value is not a secret: {}", out.stdout);
    // Rotation: add the new recipient, drop the old one, rotate the data key.
    let old_env = [("SOPS_AGE_KEY_FILE", old_key.to_str().unwrap())];
    run_tool(&sops, &["rotate", "-i", "--add-age", &new_pub, "--rm-age", &old_pub, file], &old_env, &dir);
    assert_eq!(diff(new_key.clone()).await.code, 2, "the new key opens the rotated file");
    let refused = diff(old_key).await;
    assert_eq!(refused.code, 1, "{}", refused.all());
    assert!(refused.stderr.contains("none of the age keys given"), "{}", refused.stderr);
    // Edited by hand without sops (a value changed): refused as tampered.
    let tampered = fs::read_to_string(&secrets).unwrap().replace("db.internal", "db.evil");
    fs::write(&secrets, tampered).unwrap();
    let out = diff(new_key).await;
    assert!(out.code == 1 && out.stderr.contains("MAC mismatch"), "{}", out.all());
    sb.shutdown().await;
}

/// Issue 16 #2: a `sync.secret` pointer into an array the normalizer sorts names the
/// element as written. Before, outputs read it against the sorted order and printed
/// the real secret (creates and updates).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_secret_pointers_into_sorted_arrays_mask_the_value_written_there() {
    let sb = sandbox(Duration::from_millis(20)).await;
    let dir = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let manifest = |secret: &str| {
        format!(
            "kind: ChronosJob\nsync:\n  secret: [/environmentVariables/1/value]\nspec:\n  name: sorted-job\n  command: \"true\"\n  \
             owner: ops@example.org\n  schedule: R/2030-01-01T00:00:00Z/PT1H\n  environmentVariables:\n    \
             - {{name: Z_PLAIN, value: plain-z-value}}\n    - {{name: A_ENDPOINT, value: \"{secret}\"}}\n"
        )
    };
    fs::write(dir.path().join("job.yaml"), manifest("https://u:sorted-secret-1@h")).unwrap();
    let plan = out_dir.path().join("plan.json");
    for (round, secret) in [(0, "sorted-secret-1"), (1, "sorted-secret-2")] {
        if round == 1 {
            fs::write(dir.path().join("job.yaml"), manifest("https://u:sorted-secret-2@h")).unwrap();
        }
        let outs = [
            mesosync(&sb, "diff", dir.path(), &[]).await,
            mesosync(&sb, "diff", dir.path(), &["-o", "json"]).await,
            mesosync(&sb, "diff", dir.path(), &["--out", plan.to_str().unwrap()]).await,
            mesosync(&sb, "apply", dir.path(), &[]).await,
        ];
        assert_eq!(outs[3].code, 0, "{}", outs[3].all());
        for out in &outs {
            assert_masked("output", &out.all(), &["sorted-secret-1", "sorted-secret-2"]);
        }
        assert_masked(
            "saved plan",
            &fs::read_to_string(&plan).unwrap(),
            &["sorted-secret-1", "sorted-secret-2"],
        );
        assert!(
            outs[0].stdout.contains("plain-z-value") || round == 1,
            "the plain value is shown: {}",
            outs[0].stdout
        );
        let _ = secret;
    }
    sb.shutdown().await;
}

/// Issue 16 #3: deleting a manifest printed its `sync.secret` values in the prune diff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prune_masks_what_the_deleted_manifest_marked_secret() {
    let sb = sandbox(Duration::from_millis(20)).await;
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("gone.yaml"),
        "kind: MarathonApp\nsync:\n  secret: [/cmd, /env/DATABASE_URL]\nspec:\n  id: /gone/app\n  cmd: ./run --key=prune-cmd-secret-1\n  \
         cpus: 0.1\n  mem: 32\n  env:\n    DATABASE_URL: mysql://u:prune-env-secret-2@db\n---\n\
         kind: ChronosJob\nsync:\n  secret: [/command]\nspec:\n  name: gone-job\n  command: \"run prune-job-secret-3\"\n  \
         owner: ops@example.org\n  schedule: R/2030-01-01T00:00:00Z/PT1H\n",
    )
    .unwrap();
    fs::write(dir.path().join("keep.yaml"), crate::reliability_support::app_yaml("/keep/app", 1)).unwrap();
    let applied = mesosync(&sb, "apply", dir.path(), &[]).await;
    assert_eq!(applied.code, 0, "{}", applied.all());
    fs::remove_file(dir.path().join("gone.yaml")).unwrap();
    let secrets = ["prune-cmd-secret-1", "prune-env-secret-2", "prune-job-secret-3"];
    let diff = mesosync(&sb, "diff", dir.path(), &["--prune"]).await;
    assert!(diff.stdout.contains("/gone/app") && diff.stdout.contains("gone-job"), "{}", diff.all());
    assert_masked("prune diff", &diff.all(), &secrets);
    assert_masked(
        "prune diff json",
        &mesosync(&sb, "diff", dir.path(), &["--prune", "-o", "json"]).await.all(),
        &secrets,
    );
    let apply = mesosync(&sb, "apply", dir.path(), &["--prune"]).await;
    assert_masked("prune apply", &apply.all(), &secrets);
    sb.shutdown().await;
}

/// Issue 16 #4: numeric secret values were quoted in type errors, then in /status
/// and logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn type_errors_about_secret_fields_never_quote_the_value() {
    let sb = sandbox(Duration::from_millis(20)).await;
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("bad.yaml"),
        "kind: MarathonApp\nsync:\n  secret: [/labels/PIN]\nspec:\n  id: /num/app\n  cmd: sleep 1\n  cpus: 0.1\n  mem: 32\n  \
         env:\n    DB_PASSWORD: 987654321\n  labels:\n    PIN: 24681357\n",
    )
    .unwrap();
    let secrets = ["987654321", "24681357"];
    let mut validate = tokio::process::Command::new(crate::reliability_support::BIN);
    validate.arg("validate").arg(dir.path());
    validate.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let validated = finish(validate, Duration::from_secs(40)).await;
    for (sub, out) in [("validate", validated), ("diff", mesosync(&sb, "diff", dir.path(), &[]).await)] {
        assert_eq!(out.code, 1, "{}", out.all());
        assert!(out.stderr.contains("bad.yaml:10") || out.stderr.contains("invalid type"), "{}", out.stderr);
        assert_masked(sub, &out.all(), &secrets);
    }
    let run = start_controller(&sb, dir.path(), &["--log-format", "json", "--resync", "300ms"], &[]).await;
    eventually(Duration::from_secs(20), "a failed reconcile", || async {
        run.status().await.to_string().contains("invalid type")
    })
    .await;
    let status = run.text("/status").await;
    let out = run.stop().await;
    assert_masked("/status", &status, &secrets);
    assert_masked("run logs", &out.all(), &secrets);
    sb.shutdown().await;
}

/// Issue 16 #5: `--marathon admin:pw@host` (no scheme) was echoed with the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_with_userinfo_are_redacted_even_without_a_scheme() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.yaml"), crate::reliability_support::app_yaml("/u/app", 1)).unwrap();
    for url in ["admin:userinfo-pw-1@127.0.0.1:1", "http://admin:userinfo-pw-1@127.0.0.1:1"] {
        for sub in ["diff", "apply"] {
            let mut cmd = tokio::process::Command::new(crate::reliability_support::BIN);
            cmd.arg(sub).arg(dir.path()).args(["--marathon", url, "--request-timeout", "1s"]);
            cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
            let out = finish(cmd, Duration::from_secs(40)).await;
            assert_eq!(out.code, 1, "{}", out.all());
            assert!(out.all().contains("127.0.0.1:1"), "the host is still named: {}", out.all());
            assert_masked(url, &out.all(), &["userinfo-pw-1"]);
        }
    }
}

/// Issue 16 #1: a server (or proxy) that echoes the request in its error body leaked
/// every secret of the object into apply output, run logs and /status. The proxy here
/// forwards reads to the emulator and answers every write with 422 + the body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_bodies_that_echo_the_request_are_masked() {
    let sb = sandbox(Duration::from_millis(20)).await;
    let upstream = sb.marathon_url();
    let app = axum::Router::new().fallback(
        move |method: axum::http::Method, uri: axum::http::Uri, body: String| {
            let upstream = upstream.clone();
            async move {
                if method == axum::http::Method::GET {
                    let text = reqwest::get(format!("{upstream}{uri}")).await.unwrap().text().await.unwrap();
                    return (axum::http::StatusCode::OK, [("content-type", "application/json")], text);
                }
                let echo = serde_json::json!({"message": format!("Object is not valid: {body}"),
                "details": [{"path": "/env", "errors": [body.clone()]}]});
                (
                    axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                    [("content-type", "application/json")],
                    echo.to_string(),
                )
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("app.yaml"),
        "kind: MarathonApp\nsync:\n  secret: [/env/DATABASE_URL]\nspec:\n  id: /echo/app\n  cmd: sleep 1\n  cpus: 0.1\n  mem: 32\n  \
         env:\n    DATABASE_URL: \"mysql://u:echo\\\"secret-1@db\"\n    API_TOKEN: echo-token-2\n",
    )
    .unwrap();
    // The password holds a quote: the echoed JSON carries it escaped (`\"`).
    let secrets = ["secret-1@db", "echo-token-2"];
    let mut cmd = command_to(&proxy, &sb.chronos_url(), "apply", dir.path());
    cmd.args(["--request-timeout", "2s"]);
    let out = finish(cmd, Duration::from_secs(40)).await;
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.all().contains("Object is not valid"), "the server's message is kept: {}", out.all());
    assert_masked("apply", &out.all(), &secrets);
    let envs = [("RUST_LOG", "debug")];
    let run = start_controller_cmd(
        command_to(&proxy, &sb.chronos_url(), "run", dir.path()),
        &["--log-format", "json", "--resync", "300ms"],
        &envs,
    )
    .await;
    eventually(Duration::from_secs(20), "the echoing error reported", || async {
        run.status().await.to_string().contains("Object is not valid")
    })
    .await;
    let status = run.text("/status").await;
    let out = run.stop().await;
    assert_masked("/status", &status, &secrets);
    assert_masked("run logs", &out.all(), &secrets);
    sb.shutdown().await;
}
