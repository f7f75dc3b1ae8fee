//! The HTTP clients against real sockets: a scripted recorder (to see headers and
//! bodies the emulator does not log) and the emulator itself.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use mesosync::client::{
    ChronosClient, ClientError, Credentials, HttpConfig, MarathonClient, RetryPolicy, Secret,
};
use serde_json::json;

/// One request as the recorder saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path_and_query: String,
    pub authorization: Option<String>,
    pub user_agent: Option<String>,
    pub body: String,
}

/// A server answering from a script (then `200 {}`) and recording every request.
#[derive(Clone, Default)]
pub struct Recorder {
    script: Arc<Mutex<VecDeque<(u16, String)>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Recorder {
    /// Start on 127.0.0.1:0; answers `script` in order, then `200 {}`.
    pub async fn start(script: Vec<(u16, &str)>) -> (Recorder, String) {
        let rec = Recorder {
            script: Arc::new(Mutex::new(script.into_iter().map(|(s, b)| (s, b.to_string())).collect())),
            seen: Arc::default(),
        };
        let r2 = rec.clone();
        let app = Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let rec = r2.clone();
            async move { rec.answer(method, uri, headers, body) }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (rec, format!("http://{addr}"))
    }

    fn answer(&self, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(String::from);
        self.seen.lock().unwrap().push(Seen {
            method: method.to_string(),
            path_and_query: uri.path_and_query().map(|p| p.to_string()).unwrap_or_default(),
            authorization: header("authorization"),
            user_agent: header("user-agent"),
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        let (status, body) = self.script.lock().unwrap().pop_front().unwrap_or((200, "{}".to_string()));
        let status = StatusCode::from_u16(status).unwrap();
        (status, [("content-type", "application/json")], body).into_response()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A base URL nothing listens on.
pub async fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// Fast retries for tests.
pub fn quick_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
    }
}

pub fn config(urls: Vec<String>) -> HttpConfig {
    let mut c = HttpConfig::new(urls);
    c.retry = quick_retry(4);
    c.connect_timeout = Duration::from_secs(2);
    c.request_timeout = Duration::from_secs(10);
    c
}

#[tokio::test]
async fn basic_auth_from_env_is_sent_and_never_printed() {
    let (rec, url) = Recorder::start(vec![(
        422,
        r#"{"message":"Object is not valid","details":[{"path":"/cpus","errors":["error.min"]}]}"#,
    )])
    .await;
    let env: HashMap<&str, &str> = [("MS_USER", "admin"), ("MS_PASSWORD", "pa55-word")].into();
    let mut cfg = config(vec![url]);
    cfg.credentials = Credentials::from_lookup("MS", |k| env.get(k).map(|v| v.to_string())).unwrap();
    let m = MarathonClient::new(&cfg).unwrap();

    let err = m.update_app("/a", &json!({"id": "/a", "cpus": 0}), false).await.unwrap_err();
    let seen = rec.seen();
    assert_eq!(seen.len(), 1, "a 422 is not retried");
    assert_eq!(seen[0].authorization.as_deref(), Some("Basic YWRtaW46cGE1NS13b3Jk"));
    assert!(matches!(&err, ClientError::Api { status: 422, details, .. } if details[0].path == "/cpus"));
    let shown = format!("{err} {err:?} {cfg:?} {m:?}");
    assert!(shown.contains("/cpus: error.min"), "{shown}");
    assert!(!shown.contains("pa55-word"), "{shown}");
    assert!(!shown.contains("YWRtaW46cGE1NS13b3Jk"), "{shown}");
}

#[tokio::test]
async fn bearer_and_dcos_tokens_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "s3cr3t-token\n").unwrap();
    let path = file.display().to_string();
    for (scheme, expected) in [("bearer", "Bearer s3cr3t-token"), ("dcos", "token=s3cr3t-token")] {
        let (rec, url) = Recorder::start(vec![]).await;
        let env: HashMap<&str, &str> = [("MS_TOKEN_FILE", path.as_str()), ("MS_TOKEN_SCHEME", scheme)].into();
        let mut cfg = config(vec![url]);
        cfg.credentials = Credentials::from_lookup("MS", |k| env.get(k).map(|v| v.to_string())).unwrap();
        assert!(!format!("{:?}", cfg.credentials).contains("s3cr3t"));
        let c = ChronosClient::new(&cfg, Some("3".parse().unwrap())).unwrap();
        c.put_job(&json!({"name": "j", "command": "true", "schedule": "R/2030-01-01T00:00:00Z/PT1H"}))
            .await
            .unwrap();
        let seen = rec.seen();
        assert_eq!(seen[0].authorization.as_deref(), Some(expected));
        assert_eq!(seen[0].path_and_query, "/v1/scheduler/iso8601");
    }
    assert_eq!(format!("{}", Secret::new("x")), "***");
}

#[tokio::test]
async fn url_credentials_are_lifted_and_redacted() {
    let (rec, url) = Recorder::start(vec![(500, "boom")]).await;
    let with_creds = url.replace("http://", "http://bob:hunter2@");
    let mut cfg = config(vec![with_creds]);
    cfg.retry = RetryPolicy::none();
    let m = MarathonClient::new(&cfg).unwrap();
    let err = m.ping().await.unwrap_err();
    assert_eq!(rec.seen()[0].authorization.as_deref(), Some("Basic Ym9iOmh1bnRlcjI="));
    let shown = format!("{err} {err:?} {m:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[tokio::test]
async fn user_agent_carries_replica_id() {
    let (rec, url) = Recorder::start(vec![]).await;
    let mut cfg = config(vec![url]);
    cfg.replica_id = Some("replica-b".into());
    MarathonClient::new(&cfg).unwrap().ping().await.unwrap();
    let ua = rec.seen()[0].user_agent.clone().unwrap();
    assert_eq!(ua, format!("mesosync/{} (replica-b)", env!("CARGO_PKG_VERSION")));
}

#[tokio::test]
async fn server_errors_are_retried_client_errors_are_not() {
    let (rec, url) = Recorder::start(vec![(503, "{}"), (500, "oops"), (200, r#"{"apps":[]}"#)]).await;
    let m = MarathonClient::new(&config(vec![url])).unwrap();
    assert!(m.list_apps(None).await.unwrap().is_empty());
    assert_eq!(rec.seen().len(), 3);

    // Bounded: four attempts, then the last error.
    let (rec, url) = Recorder::start(vec![(500, "a"), (500, "b"), (500, "c"), (500, "d"), (500, "e")]).await;
    let m = MarathonClient::new(&config(vec![url])).unwrap();
    let err = m.list_apps(None).await.unwrap_err();
    assert!(matches!(err, ClientError::Api { status: 500, ref message, .. } if message == "d"), "{err:?}");
    assert_eq!(rec.seen().len(), 4);

    // A non-idempotent create is not retried by the HTTP layer.
    let (rec, url) = Recorder::start(vec![(503, "{}")]).await;
    let m = MarathonClient::new(&config(vec![url])).unwrap();
    assert!(m.create_app(&json!({"id": "/a"})).await.unwrap_err().is_transient());
    assert_eq!(rec.seen().len(), 1);
}

#[tokio::test]
async fn conflicts_are_typed() {
    let lock = r#"{"message":"App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/<DEPLOYMENT_ID>'.","deployments":[{"id":"5ed4c0c5-9ff8-4a6f-a0cd-f57f59a34b43"}]}"#;
    let (rec, url) =
        Recorder::start(vec![(409, lock), (409, r#"{"message":"An app with id [/a] already exists."}"#)])
            .await;
    let m = MarathonClient::new(&config(vec![url])).unwrap();
    let err = m.scale_app("/a", 3, false).await.unwrap_err();
    assert_eq!(
        err,
        ClientError::Locked {
            system: "marathon",
            method: "PUT".into(),
            path: "/v2/apps/a".into(),
            deployments: vec!["5ed4c0c5-9ff8-4a6f-a0cd-f57f59a34b43".into()]
        }
    );
    let err = m.create_app(&json!({"id": "/a"})).await.unwrap_err();
    assert!(matches!(err, ClientError::AlreadyExists { system: "marathon", .. }), "{err:?}");
    let seen = rec.seen();
    assert_eq!(seen[0].body, r#"{"instances":3}"#);
    assert_eq!(seen[0].path_and_query, "/v2/apps/a");
}

#[tokio::test]
async fn writes_send_the_documented_queries() {
    let (rec, url) = Recorder::start(vec![
        (200, r#"{"version":"v2","deploymentId":"d2"}"#),
        (200, r#"{"version":"v3","deploymentId":"d3"}"#),
        (200, r#"{"apps":[]}"#),
    ])
    .await;
    let m = MarathonClient::new(&config(vec![url])).unwrap();
    let w = m.update_app("/g/a", &json!({"id": "/g/a", "cmd": "x"}), false).await.unwrap();
    assert_eq!(w.deployment_id.as_deref(), Some("d2"));
    assert_eq!(w.version.as_deref(), Some("v2"));
    m.scale_app("/g/a", 0, true).await.unwrap();
    m.list_apps(Some("MESOSYNC_OWNER==prod")).await.unwrap();
    let seen: Vec<String> = rec.seen().iter().map(|s| format!("{} {}", s.method, s.path_and_query)).collect();
    assert_eq!(
        seen,
        vec![
            "PUT /v2/apps/g/a?partialUpdate=false",
            "PUT /v2/apps/g/a?force=true",
            // The last task failure, for health (counts and deployments come anyway).
            "GET /v2/apps?embed=apps.lastTaskFailure&label=MESOSYNC_OWNER%3D%3Dprod",
        ]
    );
}

#[tokio::test]
async fn fails_over_to_the_next_url_and_remembers_it() {
    let (rec, url) = Recorder::start(vec![]).await;
    let dead = dead_url().await;
    let m = MarathonClient::new(&config(vec![dead.clone(), url.clone()])).unwrap();
    m.ping().await.unwrap();
    assert_eq!(m.http().current_base_url(), url);
    m.ping().await.unwrap();
    assert_eq!(rec.seen().len(), 2);

    // All down: one error naming every URL tried, after bounded retries.
    let m = MarathonClient::new(&config(vec![dead.clone(), dead_url().await])).unwrap();
    let err = m.ping().await.unwrap_err();
    assert!(matches!(&err, ClientError::Unreachable { tried, .. } if tried.contains(&dead)), "{err:?}");
}

#[tokio::test]
async fn a_gateway_error_moves_on_to_the_next_url_but_a_500_does_not() {
    let (first, url1) = Recorder::start(vec![(503, "{}")]).await;
    let (second, url2) = Recorder::start(vec![]).await;
    let m = MarathonClient::new(&config(vec![url1.clone(), url2.clone()])).unwrap();
    m.ping().await.unwrap();
    assert_eq!((first.seen().len(), second.seen().len()), (1, 1));
    assert_eq!(m.http().current_base_url(), url2);

    let (first, url1) = Recorder::start(vec![(500, "boom")]).await;
    let (second, url2) = Recorder::start(vec![]).await;
    let m = MarathonClient::new(&config(vec![url1.clone(), url2])).unwrap();
    m.ping().await.unwrap(); // retried on the same URL
    assert_eq!((first.seen().len(), second.seen().len()), (2, 0));
    assert_eq!(m.http().current_base_url(), url1);
}

#[tokio::test]
async fn custom_ca_bundle_and_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let made = super::certs::make(d, true);
    if !made {
        let test = "client::custom_ca_bundle_and_client_certificate";
        super::requires::missing(test, "`openssl` is missing or failed", "`make test-deps`");
        return;
    }
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let accept = format!("127.0.0.1:{port}");
    // A TLS server that requires a client certificate signed by the test CA.
    let _server = tokio::process::Command::new("openssl")
        .args(["s_server", "-accept", &accept, "-cert", "server.pem", "-key", "server.key"])
        .args(["-CAfile", "ca.pem", "-Verify", "1", "-verify_return_error", "-www", "-quiet"])
        .current_dir(d)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(&accept).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = format!("https://127.0.0.1:{port}");
    let mut cfg = config(vec![url]);
    cfg.retry = RetryPolicy::none();

    // Unknown CA: refused.
    let err = MarathonClient::new(&cfg).unwrap().ping().await.unwrap_err();
    assert!(err.to_string().to_lowercase().contains("certificate"), "{err}");
    // Trusted CA, no client certificate: refused by the server.
    cfg.tls.ca_bundle = Some(d.join("ca.pem"));
    let err = MarathonClient::new(&cfg).unwrap().ping().await.unwrap_err();
    assert!(matches!(err, ClientError::Unreachable { .. } | ClientError::Transport { .. }), "{err}");
    // Trusted CA and the client identity: accepted.
    cfg.tls.client_cert = Some(d.join("client.pem"));
    cfg.tls.client_key = Some(d.join("client.key"));
    MarathonClient::new(&cfg).unwrap().ping().await.unwrap();
}

#[tokio::test]
async fn slow_answers_time_out_and_are_reported_as_transport_errors() {
    use mesosync::emulator::{self, FaultRule, SandboxConfig, System};
    let sb = emulator::start(SandboxConfig::default()).await.unwrap();
    sb.faults().add(FaultRule { system: Some(System::Marathon), latency_ms: 500, ..FaultRule::default() });
    let mut cfg = config(vec![sb.marathon_url()]);
    cfg.request_timeout = Duration::from_millis(100);
    cfg.retry = quick_retry(2);
    let err = MarathonClient::new(&cfg).unwrap().list_apps(None).await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Transport { reason, .. } if reason.contains("no answer within")),
        "{err}"
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn run_job_and_cancel_deployment_against_the_emulator() {
    use mesosync::emulator::{self, SandboxConfig};
    let sb = emulator::start(SandboxConfig {
        deployment_duration: Duration::from_secs(30),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let chronos = ChronosClient::new(&config(vec![sb.chronos_url()]), None).unwrap();
    let job = json!({"name": "run-me", "command": "true", "owner": "a@b.c", "schedule": "R/2030-01-01T00:00:00Z/PT1H"});
    chronos.put_job(&job).await.unwrap();
    chronos.run_job("run-me").await.unwrap();
    assert!(matches!(chronos.run_job("nope").await, Err(ClientError::NotFound { .. })));
    assert!(matches!(chronos.delete_job("nope").await, Err(ClientError::NotFound { .. })));

    let m = MarathonClient::new(&config(vec![sb.marathon_url()])).unwrap();
    let w = m.create_app(&json!({"id": "/slow", "cmd": "sleep 1", "cpus": 0.1, "mem": 32})).await.unwrap();
    let id = w.deployment_id.unwrap();
    assert_eq!(m.list_deployments().await.unwrap()[0].id, id);
    assert_eq!(m.list_deployments().await.unwrap()[0].affected_apps, vec!["/slow"]);
    m.delete_deployment(&id, true).await.unwrap();
    assert!(m.list_deployments().await.unwrap().is_empty());
    assert!(matches!(m.delete_deployment(&id, true).await, Err(ClientError::NotFound { .. })));
    assert!(m.info().await.unwrap().get("version").is_some());
}
