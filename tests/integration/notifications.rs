//! Issue 20.2: `mesosync run --notify …` through the real binary, with real git (a bare
//! origin, an author clone and the controller's checkout made here, pushes announced
//! by the signed push webhook) and real HTTP receivers on 127.0.0.1 started here.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::preview::git;
use super::reliability_support::{self as support, Controller, command_to, eventually, start_controller_cmd};
use super::webhooks::{self, Repos};

/// What a receiver was sent.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    signature: Option<String>,
    body: Vec<u8>,
}

/// An HTTP receiver on 127.0.0.1:0 recording every request; answers 503 while `down`.
pub(super) struct Receiver {
    pub(super) base: String,
    seen: Arc<Mutex<Vec<Received>>>,
    attempts: Arc<std::sync::atomic::AtomicUsize>,
    down: Arc<AtomicBool>,
}

pub(super) async fn receiver() -> Receiver {
    let seen: Arc<Mutex<Vec<Received>>> = Arc::default();
    let down = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (s, d, a) = (seen.clone(), down.clone(), attempts.clone());
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: axum::body::Bytes| {
        let (seen, down, attempts) = (s.clone(), d.clone(), a.clone());
        async move {
            attempts.fetch_add(1, Ordering::SeqCst);
            if down.load(Ordering::SeqCst) {
                return StatusCode::SERVICE_UNAVAILABLE;
            }
            let signature = headers.get("x-signature").map(|v| v.to_str().unwrap().to_string());
            seen.lock().unwrap().push(Received {
                path: uri.path().to_string(),
                signature,
                body: body.to_vec(),
            });
            StatusCode::OK
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver { base, seen, attempts, down }
}

impl Receiver {
    fn at(&self, path: &str) -> Vec<Received> {
        self.seen.lock().unwrap().iter().filter(|r| r.path == path).cloned().collect()
    }

    /// The generic events received on `path`, as JSON.
    pub(super) fn events(&self, path: &str) -> Vec<Value> {
        self.at(path).iter().map(|r| serde_json::from_slice(&r.body).unwrap()).collect()
    }

    fn kinds(&self, path: &str) -> Vec<String> {
        self.events(path).iter().map(|e| e["event"].as_str().unwrap().to_string()).collect()
    }

    fn everything(&self) -> String {
        self.seen.lock().unwrap().iter().map(|r| String::from_utf8_lossy(&r.body).into_owned()).collect()
    }

    async fn wait_kinds(&self, path: &str, what: &str, expected: &[&str]) {
        eventually(Duration::from_secs(40), what, || async { self.kinds(path).len() >= expected.len() })
            .await;
        assert_eq!(self.kinds(path), expected, "{what}: {:#?}", self.events(path));
    }
}

fn hmac(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A proxy in front of Marathon: forwards everything, except that while `failing` it
/// answers every write with 500 and the request body echoed (as some servers and
/// proxies do), which holds the app's secret values.
async fn echoing_proxy(upstream: String) -> (String, Arc<AtomicBool>) {
    let failing = Arc::new(AtomicBool::new(false));
    let flag = failing.clone();
    let http = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |method: Method, uri: Uri, body: String| {
        let (upstream, flag, http) = (upstream.clone(), flag.clone(), http.clone());
        async move {
            if method != Method::GET && flag.load(Ordering::SeqCst) {
                let echo = serde_json::json!({"message": format!("internal error while saving {body}")});
                return (StatusCode::INTERNAL_SERVER_ERROR, echo.to_string());
            }
            let url = format!("{upstream}{uri}");
            let method = reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap();
            let answer = http
                .request(method, url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
            (status, answer.text().await.unwrap())
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, failing)
}

const DB_PASSWORD: &str = "s3cret-hunter2-pw";
const NOTIFY_KEY: &str = "notify-signing-key";

fn secret_app(id: &str, version: u32) -> String {
    format!(
        "kind: MarathonApp\nspec:\n  id: {id}\n  cmd: sleep 1000\n  cpus: 0.1\n  mem: 32\n  env:\n    \
         DB_PASSWORD: {DB_PASSWORD}\n    VERSION: \"{version}\"\n"
    )
}

fn commit(repos: &Repos, file: &str, text: &str) -> String {
    std::fs::write(repos.author.join(file), text).unwrap();
    git(&repos.author, &["add", "."]);
    git(&repos.author, &["commit", "--quiet", "-m", file]);
    git(&repos.author, &["push", "--quiet", "origin", "main"]);
    git(&repos.author, &["rev-parse", "HEAD"])
}

async fn announce_push(controller: &Controller) {
    let body = br#"{"ref":"refs/heads/main"}"#.to_vec();
    let answer = reqwest::Client::new()
        .post(format!("{}/hooks/git", controller.base))
        .header("x-signature", hmac(webhooks::SECRET, &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), reqwest::StatusCode::ACCEPTED);
}

#[tokio::test(flavor = "multi_thread")]
async fn applied_failed_and_recovered_reach_a_signed_generic_receiver_and_slack_without_secrets() {
    let sb = support::sandbox(Duration::from_millis(50)).await;
    let recv = receiver().await;
    let (proxy, failing) = echoing_proxy(sb.marathon_url()).await;
    let repos = webhooks::repos();
    let first = commit(&repos, "web.yaml", &secret_app("/notify/web", 1));
    git(&repos.checkout, &["pull", "--quiet", "--ff-only", "origin", "main"]);

    let generic = format!("generic={}/hook,name=ops,secret-env=TEST_NOTIFY_KEY", recv.base);
    let slack_url = format!("{}/services/T0/B0/slack-token-xyz", recv.base);
    let slack = "slack=env:TEST_SLACK_URL,events=applied+failed+recovered";
    let controller = start_controller_cmd(
        command_to(&proxy, &sb.chronos_url(), "run", &repos.checkout),
        &[
            "--git-pull",
            "main",
            "--git-interval",
            "1h",
            "--notify",
            &generic,
            "--notify",
            slack,
            "--log-format",
            "json",
        ],
        &[
            ("MESOSYNC_WEBHOOK_SECRET_FILE", repos.secret_file.to_str().unwrap()),
            ("TEST_NOTIFY_KEY", NOTIFY_KEY),
            ("TEST_SLACK_URL", &slack_url),
        ],
    )
    .await;

    // The first reconcile creates the app: one `applied` event for the commit.
    recv.wait_kinds("/hook", "the first apply", &["applied"]).await;
    let applied = &recv.events("/hook")[0];
    assert_eq!(applied["severity"], "info");
    assert_eq!(applied["revision"], serde_json::json!({"commit": first, "dirty": false}));
    let web = serde_json::json!({"kind": "app", "id": "/notify/web", "detail": "create"});
    assert!(applied["objects"].as_array().unwrap().contains(&web), "{applied:#}");
    assert!(applied["timestamp"].as_str().unwrap().ends_with('Z'));
    let received = &recv.at("/hook")[0];
    assert_eq!(received.signature.as_deref(), Some(hmac(NOTIFY_KEY, &received.body).as_str()), "signed");

    // Writes start failing with a body that echoes the app (and its password); a push
    // is announced: one `failed` event, however many retries fail.
    failing.store(true, Ordering::SeqCst);
    let second = commit(&repos, "web.yaml", &secret_app("/notify/web", 2));
    announce_push(&controller).await;
    recv.wait_kinds("/hook", "the failure", &["applied", "failed"]).await;
    let failed = &recv.events("/hook")[1];
    assert_eq!((failed["event"].as_str(), failed["severity"].as_str()), (Some("failed"), Some("error")));
    assert_eq!(failed["revision"]["commit"], second.as_str());
    assert_eq!(failed["objects"][0]["id"], "/notify/web");
    let detail = failed["objects"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("internal error while saving") && detail.contains("(sensitive value)"),
        "{detail}"
    );
    let reconciles = controller.status().await["reconciles"].as_u64().unwrap();
    eventually(Duration::from_secs(20), "a retry that fails again", || async {
        controller.status().await["reconciles"].as_u64().unwrap() > reconciles
    })
    .await;

    // The server recovers: the retry applies the commit and says so.
    failing.store(false, Ordering::SeqCst);
    recv.wait_kinds("/hook", "the recovery", &["applied", "failed", "applied", "recovered"]).await;
    assert_eq!(recv.events("/hook")[2]["revision"]["commit"], second.as_str());
    for r in recv.at("/hook") {
        assert_eq!(r.signature, Some(hmac(NOTIFY_KEY, &r.body)));
    }

    // Slack got the same three kinds, as short text naming the revision and the object.
    let texts: Vec<String> = recv
        .events("/services/T0/B0/slack-token-xyz")
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts.len(), 4, "{texts:#?}");
    assert!(texts[0].starts_with(":white_check_mark: *mesosync* applied 2 writes at"), "{}", texts[0]);
    assert!(
        texts[0].contains(&first[..12]) && texts[0].contains("• app `/notify/web` create"),
        "{}",
        texts[0]
    );
    assert!(texts[1].starts_with(":x: *mesosync* 1 object failed at"), "{}", texts[1]);
    assert!(texts[3].contains("reconciles succeed again"), "{}", texts[3]);
    assert!(recv.at("/services/T0/B0/slack-token-xyz").iter().all(|r| r.signature.is_none()));

    let metrics = controller.text("/metrics").await;
    assert!(metrics.contains("mesosync_notifications_total{target=\"ops\",outcome=\"sent\"} 4"), "{metrics}");
    let out = controller.stop().await;
    assert_eq!(out.code, 0);
    // No secret in any payload, and neither the Slack token nor the signing key in logs.
    assert!(!recv.everything().contains(DB_PASSWORD), "{}", recv.everything());
    for secret in [DB_PASSWORD, "slack-token-xyz", NOTIFY_KEY] {
        assert!(!out.all().contains(secret), "{secret} in the logs");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_that_is_down_is_logged_once_and_never_slows_reconciles() {
    let sb = support::sandbox(Duration::from_millis(50)).await;
    let recv = receiver().await;
    recv.down.store(true, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), support::app_yaml("/down/a", 1)).unwrap();
    let target = format!("generic={}/hook,events=applied", recv.base);
    let controller =
        start_controller_cmd(support::command(&sb, "run", dir.path()), &["--notify", &target], &[]).await;

    // While the receiver refuses, edits keep being applied at once.
    for (i, id) in ["/down/b", "/down/c", "/down/d"].iter().enumerate() {
        std::fs::write(dir.path().join(format!("{i}.yaml")), support::app_yaml(id, 1)).unwrap();
        eventually(Duration::from_secs(10), &format!("{id} applied"), || async {
            support::live_app_ids(&sb).await.iter().any(|a| a == id)
        })
        .await;
    }
    // The first event is retried (4 attempts), then the next ones start.
    eventually(Duration::from_secs(30), "the first event given up", || async {
        recv.attempts.load(Ordering::SeqCst) > 4
    })
    .await;
    recv.down.store(false, Ordering::SeqCst);
    eventually(Duration::from_secs(30), "delivery after the outage", || async {
        !recv.at("/hook").is_empty()
    })
    .await;
    let metrics = controller.text("/metrics").await;
    assert!(
        metrics.contains("mesosync_notifications_total{target=\"generic-1\",outcome=\"failed\"} 1"),
        "{metrics}"
    );
    let out = controller.stop().await;
    let down = out.stderr.matches("notification receiver is down").count();
    let back = out.stderr.matches("notification receiver is back").count();
    assert_eq!((down, back), (1, 1), "{}", out.stderr);
    assert!(!out.stderr.contains("/hook"), "a receiver's path is never logged");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_reports_drift_and_a_refused_prune_to_the_targets_that_asked() {
    let sb = support::sandbox(Duration::from_millis(20)).await;
    let recv = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    for id in ["a", "b", "c", "d"] {
        std::fs::write(dir.path().join(format!("{id}.yaml")), support::app_yaml(&format!("/dry/{id}"), 1))
            .unwrap();
    }
    let out = support::mesosync(&sb, "apply", dir.path(), &[]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    sb.reset_requests();
    // One app edited, three removed: with --prune the guard (at most 1 delete) refuses.
    std::fs::write(dir.path().join("a.yaml"), support::app_yaml("/dry/a", 3)).unwrap();
    for id in ["b", "c", "d"] {
        std::fs::remove_file(dir.path().join(format!("{id}.yaml"))).unwrap();
    }
    let wanted = format!("generic={}/ops,events=drift+prune-refused", recv.base);
    let unwanted = format!("generic={}/applied-only,events=applied", recv.base);
    let controller = start_controller_cmd(
        support::command(&sb, "run", dir.path()),
        &["--dry-run", "--prune", "--max-delete", "1", "--notify", &wanted, "--notify", &unwanted],
        &[],
    )
    .await;
    recv.wait_kinds("/ops", "drift and the refused prune", &["drift", "prune-refused"]).await;
    let events = recv.events("/ops");
    assert_eq!(events[0]["severity"], "warning");
    assert!(events[0]["message"].as_str().unwrap().starts_with("dry run: "), "{:#}", events[0]);
    let drifted: Vec<&str> =
        events[0]["objects"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert!(drifted.contains(&"/dry/a"), "{drifted:?}");
    let refused = &events[1];
    assert!(refused["message"].as_str().unwrap().contains("refusing to delete 3 of 4"), "{refused:#}");
    let ids: Vec<&str> =
        refused["objects"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["/dry/b", "/dry/c", "/dry/d"]);
    // A resync finds the same: nothing more is said.
    let reconciles = controller.status().await["reconciles"].as_u64().unwrap();
    controller_sighup(&controller);
    eventually(Duration::from_secs(10), "another reconcile", || async {
        controller.status().await["reconciles"].as_u64().unwrap() > reconciles
    })
    .await;
    let out = controller.stop().await;
    assert_eq!(recv.kinds("/ops").len(), 2, "{:#?}", recv.events("/ops"));
    assert!(recv.at("/applied-only").is_empty(), "a dry run applies nothing");
    assert_eq!(out.code, 0);
    assert_eq!(support::writes(&sb), Vec::<String>::new(), "a dry run writes nothing");
}

fn controller_sighup(controller: &Controller) {
    let pid = controller.child.id().unwrap().to_string();
    std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_app_turning_degraded_then_healthy_again_is_notified_once_each() {
    use mesosync::emulator::{DeploymentOutcome, FaultRule};
    let sb = support::sandbox(Duration::from_millis(50)).await;
    sb.faults().add(FaultRule::deployment("/deg/db", DeploymentOutcome::Fail));
    let recv = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("db.yaml"), support::app_yaml("/deg/db", 1)).unwrap();
    let target = format!("generic={}/health,events=degraded+healthy", recv.base);
    let controller =
        start_controller_cmd(support::command(&sb, "run", dir.path()), &["--notify", &target], &[]).await;
    recv.wait_kinds("/health", "the degraded app", &["degraded"]).await;
    let degraded = &recv.events("/health")[0];
    assert_eq!(degraded["severity"], "error");
    assert_eq!(degraded["objects"][0]["id"], "/deg/db");
    let detail = degraded["objects"][0]["detail"].as_str().unwrap();
    assert!(detail.starts_with("Degraded: "), "{detail}");
    // Retries and resyncs that find it still Degraded say nothing more.
    let reconciles = controller.status().await["reconciles"].as_u64().unwrap();
    controller_sighup(&controller);
    eventually(Duration::from_secs(20), "another reconcile", || async {
        controller.status().await["reconciles"].as_u64().unwrap() > reconciles
    })
    .await;
    assert_eq!(recv.kinds("/health"), ["degraded"]);

    // Its tasks run again after the next deployment (a scale): Healthy, said once.
    sb.faults().clear();
    std::fs::write(dir.path().join("db.yaml"), support::app_yaml("/deg/db", 2)).unwrap();
    recv.wait_kinds("/health", "the recovery", &["degraded", "healthy"]).await;
    assert_eq!(recv.events("/health")[1]["objects"][0]["id"], "/deg/db");
    assert_eq!(controller.stop().await.code, 0);
}
