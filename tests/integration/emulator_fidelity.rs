//! Emulator fidelity, second pass (issue 18, and the emulator parts of 16): each test
//! drives the sandbox over HTTP the way a third-party client that failed against it
//! did, and checks the answer real Marathon / Chronos give (sources cited in
//! docs/emulator.md).

use std::time::{Duration, Instant};

use mesosync::emulator::{ChronosVersion, DeploymentOutcome, FaultRule};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::emulator_marathon::frames;
use crate::harness::{self, Harness};

async fn create(h: &Harness, app: Value) -> Value {
    let answer = h.post(&h.marathon("/v2/apps"), &app).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    answer.json()
}

/// An open `/v2/events` stream (optionally filtered), the text read so far and how
/// much of it earlier calls returned.
struct Events {
    response: reqwest::Response,
    text: String,
    returned: usize,
}

impl Events {
    async fn open(h: &Harness, query: &str) -> Events {
        let response = h
            .http
            .get(h.marathon(&format!("/v2/events{query}")))
            .header("Accept", "text/event-stream")
            .send()
            .await
            .expect("stream opens");
        assert_eq!(response.status(), StatusCode::OK);
        Events { response, text: String::new(), returned: 0 }
    }

    /// Read until a frame of `event_type` arrived after the previous call (5 s at
    /// most); the frames since the previous call.
    async fn until(&mut self, event_type: &str) -> Vec<(String, Value)> {
        let marker = format!("event: {event_type}\n");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !(self.text[self.returned..].contains(&marker) && self.text.ends_with("\n\n")) {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.response.chunk()).await {
                Ok(Ok(Some(chunk))) => self.text.push_str(&String::from_utf8_lossy(&chunk)),
                _ => panic!("no {event_type} frame; got:\n{}", self.text),
            }
        }
        let fresh = frames(&self.text[self.returned..]);
        self.returned = self.text.len();
        fresh
    }
}

fn named<'a>(all: &'a [(String, Value)], name: &str) -> Vec<&'a Value> {
    all.iter().filter(|(n, _)| n == name).map(|(_, data)| data).collect()
}

// ---- 18.1 trailing slashes ------------------------------------------------------

#[tokio::test]
async fn collection_paths_with_a_trailing_slash_are_the_same_resources() {
    let h = harness::start().await;
    let batch = json!([{"id": "/slash-a", "cmd": "a"}, {"id": "/slash-b", "cmd": "b"}]);
    let put = h.put(&h.marathon("/v2/apps/"), &batch).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    assert!(put.json()["deploymentId"].is_string());
    let posted = h.post(&h.marathon("/v2/apps/"), &json!({"id": "/slash-c", "cmd": "c"})).await;
    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text);
    let patched =
        h.patch(&h.marathon("/v2/apps/?force=true"), &json!([{"id": "/slash-a", "instances": 2}])).await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    let listed = h.get(&h.marathon("/v2/apps/")).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.json()["apps"].as_array().unwrap().len(), 3);
    assert_eq!(h.get(&h.marathon("/v2/deployments/")).await.status, StatusCode::OK);
    assert_eq!(h.get(&h.marathon("/v2/info/")).await.json()["name"], json!("marathon"));
    assert_eq!(h.get(&h.marathon("/v2/apps/slash-a/")).await.json()["app"]["instances"], json!(2));
}

// ---- 18.2 ipProtocol ----------------------------------------------------------------

#[tokio::test]
async fn every_health_check_is_written_with_an_ip_protocol() {
    let h = harness::start().await;
    let checks = json!([
        {"protocol": "HTTP", "ipProtocol": "IPv6"},
        {"protocol": "MESOS_HTTP", "path": "/h", "ipProtocol": "IPv6"},
        {"protocol": "MESOS_HTTPS", "path": "/h"},
        {"protocol": "MESOS_TCP"},
        {"protocol": "COMMAND", "command": {"value": "true"}},
        {"protocol": "TCP"},
    ]);
    create(&h, json!({"id": "/ip", "cmd": "x", "healthChecks": checks})).await;
    let app = h.app("/ip").await;
    let written: Vec<&Value> =
        app["healthChecks"].as_array().unwrap().iter().map(|c| &c["ipProtocol"]).collect();
    // Marathon-side checks and COMMAND always read back IPv4 (the model has no field);
    // the Mesos HTTP/TCP checks keep what was sent.
    assert_eq!(
        written,
        [&json!("IPv4"), &json!("IPv6"), &json!("IPv4"), &json!("IPv4"), &json!("IPv4"), &json!("IPv4")]
    );
}

// ---- 18.3 Chronos 2.5 PUT -------------------------------------------------------------

#[tokio::test]
async fn chronos_2_5_accepts_put_on_the_create_paths_and_3_does_not() {
    let job =
        json!({"name": "p", "command": "true", "schedule": "R/2030-01-01T00:00:00Z/PT1H", "owner": "a@b"});
    let child = json!({"name": "q", "command": "true", "parents": ["p"], "owner": "a@b"});
    let h = harness::start_chronos(ChronosVersion::V2_5).await;
    assert_eq!(h.put(&h.chronos("/scheduler/iso8601"), &job).await.status, StatusCode::NO_CONTENT);
    assert_eq!(h.put(&h.chronos("/scheduler/dependency"), &child).await.status, StatusCode::NO_CONTENT);
    let jobs = h.get(&h.chronos("/scheduler/jobs")).await.json();
    assert_eq!(jobs.as_array().unwrap().len(), 2);
    let v3 = harness::start_chronos(ChronosVersion::V3).await;
    assert_eq!(
        v3.put(&v3.chronos("/v1/scheduler/iso8601"), &job).await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

// ---- 18.4 events ------------------------------------------------------------------------

#[tokio::test]
async fn a_deployment_emits_the_events_real_marathon_sends() {
    let h = harness::start().await;
    let mut all = Events::open(&h, "").await;
    let mut filtered = Events::open(&h, "?event_type=group_change_success").await;
    create(&h, json!({"id": "/grp/ev", "cmd": "x", "instances": 2, "healthChecks": [{"protocol": "HTTP"}]}))
        .await;
    let seen = all.until("deployment_success").await;
    let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    let position =
        |name: &str| names.iter().position(|n| *n == name).unwrap_or_else(|| panic!("{name}: {names:?}"));
    assert!(position("deployment_info") < position("group_change_success"));
    assert!(position("deployment_step_success") < position("deployment_success"));

    let first_post = named(&seen, "api_post_event")[0].clone();
    let change = named(&seen, "group_change_success")[0];
    assert_eq!(change["groupId"], json!("/grp"), "an app write changes the app's group");
    assert!(change["version"].is_string());
    let added = named(&seen, "add_health_check_event");
    assert_eq!(added.len(), 1);
    assert_eq!(added[0]["appId"], json!("/grp/ev"));
    assert_eq!(added[0]["healthCheck"]["protocol"], json!("HTTP"));
    let instances = named(&seen, "instance_changed_event");
    let conditions: Vec<&Value> = instances.iter().map(|e| &e["condition"]).collect();
    assert_eq!(conditions, [&json!("Staging"), &json!("Staging"), &json!("Running"), &json!("Running")]);
    let keys: Vec<&String> = instances[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "instanceId",
            "condition",
            "runSpecId",
            "agentId",
            "host",
            "runSpecVersion",
            "timestamp",
            "eventType"
        ]
    );
    assert_eq!(named(&seen, "status_update_event").len(), 4, "one per task state change");
    assert_eq!(named(&seen, "health_status_changed_event").len(), 2);
    let healthy = named(&seen, "instance_health_changed_event");
    assert_eq!(healthy.len(), 2);
    assert_eq!(healthy[0]["healthy"], json!(true));
    assert!(!healthy[0]["instanceId"].as_str().unwrap().contains("._app."), "an instance id, not a task id");

    // The api_post_event carries the app as stored: version, and versionInfo once it
    // is an update.
    h.put(&h.marathon("/v2/apps/grp/ev?force=true"), &json!({"cmd": "y"})).await;
    let seen = all.until("deployment_success").await;
    let posts = named(&seen, "api_post_event");
    assert_eq!(posts.len(), 1);
    assert!(first_post["appDefinition"]["version"].is_string());
    assert!(first_post["appDefinition"].get("versionInfo").is_none(), "a create has a version only");
    let update = posts[0];
    assert_eq!(update["appDefinition"]["cmd"], json!("y"));
    assert!(update["appDefinition"]["versionInfo"]["lastConfigChangeAt"].is_string(), "{update}");
    assert_eq!(update["uri"], json!("/v2/apps/grp/ev"));

    let only = filtered.until("group_change_success").await;
    assert!(only.iter().all(|(n, _)| n == "group_change_success"), "{only:?}");
}

#[tokio::test]
async fn a_failing_step_emits_deployment_step_failure() {
    let h = harness::start().await;
    h.sandbox.faults().add(FaultRule { deployment: Some(DeploymentOutcome::Fail), ..FaultRule::default() });
    let mut events =
        Events::open(&h, "?event_type=deployment_step_failure&event_type=deployment_failed").await;
    create(&h, json!({"id": "/fails", "cmd": "x"})).await;
    let seen = events.until("deployment_failed").await;
    let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["deployment_step_failure", "deployment_failed"]);
    assert!(seen[0].1["currentStep"]["actions"].is_array());
}

#[tokio::test]
async fn every_stream_sees_attach_and_detach() {
    let h = harness::start().await;
    let mut watcher =
        Events::open(&h, "?event_type=event_stream_attached&event_type=event_stream_detached").await;
    watcher.until("event_stream_attached").await;
    let other = Events::open(&h, "?event_type=deployment_info").await;
    let seen = watcher.until("event_stream_attached").await;
    assert_eq!(named(&seen, "event_stream_attached").len(), 1, "the bus carries every stream's attach");
    drop(other);
    let seen = watcher.until("event_stream_detached").await;
    assert_eq!(named(&seen, "event_stream_detached")[0]["remoteAddress"], json!("127.0.0.1"));
}

// ---- 18.5 smaller mismatches ---------------------------------------------------------------

#[tokio::test]
async fn unknown_routes_headers_ping_and_the_root() {
    let h = harness::start().await;
    let unknown = h.get(&h.marathon("/v2/nothing-here")).await;
    assert_eq!(unknown.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(unknown.json(), json!({"message": "URI not found"}));
    let not_allowed = h.call(Method::DELETE, &h.marathon("/v2/info"), None).await;
    assert_eq!(not_allowed.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(not_allowed.json(), json!({"message": "Method Not Allowed"}));
    for answer in [&unknown, &not_allowed, &h.get(&h.marathon("/v2/apps")).await] {
        assert_eq!(answer.headers["cache-control"], "no-cache, no-store, must-revalidate");
        assert_eq!(answer.headers["pragma"], "no-cache");
        assert_eq!(answer.headers["expires"], "0");
    }

    let ping = |accept: Option<&'static str>| {
        let mut request = h.http.get(h.marathon("/ping"));
        if let Some(accept) = accept {
            request = request.header("Accept", accept);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let media = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
            (status, media, response.text().await.unwrap())
        }
    };
    let json_media = Some("application/json".to_owned());
    assert_eq!(ping(Some("application/json")).await, (StatusCode::OK, json_media.clone(), "\"pong\"".into()));
    assert_eq!(
        ping(Some("application/json, text/plain, */*")).await,
        (StatusCode::OK, json_media, "\"pong\"".into())
    );
    assert_eq!(ping(None).await, (StatusCode::OK, Some("text/plain".into()), "pong".into()));
    assert_eq!(ping(Some("application/xml")).await.0, StatusCode::NO_CONTENT);

    let no_redirects =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let root = no_redirects.get(h.marathon("/")).send().await.unwrap();
    assert_eq!(root.status(), StatusCode::FOUND);
    assert_eq!(root.headers()["location"], "/ui/");
}

#[tokio::test]
async fn creates_answer_a_location_and_post_has_no_tasks() {
    let h = harness::start().await;
    let posted = h.post(&h.marathon("/v2/apps"), &json!({"id": "/loc/a", "cmd": "x"})).await;
    assert_eq!(posted.status, StatusCode::CREATED);
    let base = h.sandbox.marathon_url();
    assert_eq!(posted.headers["location"], format!("{base}/loc/a").as_str(), "resolved against the base URI");
    assert!(posted.json().get("tasks").is_none(), "AppsResource.create sets tasks = None");
    let put = h.put(&h.marathon("/v2/apps/loc/b"), &json!({"cmd": "x"})).await;
    assert_eq!(put.status, StatusCode::CREATED);
    assert_eq!(put.headers["location"], format!("{base}/loc/b").as_str());
    h.settle().await;
    let updated = h.put(&h.marathon("/v2/apps/loc/b"), &json!({"cmd": "y"})).await;
    assert_eq!(updated.status, StatusCode::OK);
    assert!(updated.headers.get("location").is_none(), "only a create has a Location");
}

#[tokio::test]
async fn health_results_leave_out_what_is_not_set() {
    let h = harness::start().await;
    create(&h, json!({"id": "/hr", "cmd": "x", "healthChecks": [{"protocol": "HTTP"}]})).await;
    h.settle().await;
    let tasks = h.get(&h.marathon("/v2/apps/hr/tasks")).await.json();
    let result = &tasks["tasks"][0]["healthCheckResults"][0];
    let keys: Vec<&String> = result.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["alive", "consecutiveFailures", "firstSuccess", "instanceId", "lastSuccess"],
        "{result}"
    );
    let task_id = tasks["tasks"][0]["id"].as_str().unwrap();
    assert!(task_id.starts_with(result["instanceId"].as_str().unwrap()));
}

// ---- 18.6 endpoints ------------------------------------------------------------------------

#[tokio::test]
async fn tasks_are_listed_and_killed_like_marathon() {
    let h = harness::start().await;
    create(&h, json!({"id": "/k/web", "cmd": "x", "instances": 3})).await;
    h.settle().await;
    let all = h.get(&h.marathon("/v2/tasks")).await.json();
    assert_eq!(all["tasks"].as_array().unwrap().len(), 3);
    assert_eq!(
        h.get(&h.marathon("/v2/tasks?status=running")).await.json()["tasks"].as_array().unwrap().len(),
        3
    );
    assert_eq!(h.get(&h.marathon("/v2/tasks?status=staging")).await.json()["tasks"], json!([]));
    let ids: Vec<String> =
        all["tasks"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_owned()).collect();

    // DELETE …/tasks is a kill, not an app called `tasks`; the app keeps 3 instances.
    let mut events = Events::open(&h, "?event_type=status_update_event").await;
    let killed = h.delete(&h.marathon(&format!("/v2/apps/k/web/tasks/{}", ids[0]))).await;
    assert_eq!(killed.status, StatusCode::OK, "{}", killed.text);
    assert_eq!(killed.json()["task"]["id"], json!(ids[0]));
    let seen = events.until("status_update_event").await;
    assert_eq!(seen[0].1["taskStatus"], json!("TASK_KILLED"));
    assert_eq!(h.app("/k/web").await["instances"], json!(3));
    assert!(
        h.get(&h.marathon("/v2/deployments")).await.json().as_array().unwrap().is_empty(),
        "no deployment"
    );
    let unknown = h.delete(&h.marathon("/v2/apps/k/web/tasks/k_web.instance-nope._app.1")).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // With scale=true the instance count goes down, in a deployment.
    let scaled = h.delete(&h.marathon(&format!("/v2/apps/k/web/tasks/{}?scale=true", ids[1]))).await;
    assert!(scaled.json()["deploymentId"].is_string(), "{}", scaled.text);
    assert_eq!(h.app("/k/web").await["instances"], json!(2));
    h.settle().await;
    let both = h.call(Method::DELETE, &h.marathon("/v2/apps/k/web/tasks?scale=true&wipe=true"), None).await;
    assert_eq!(both.status, StatusCode::BAD_REQUEST);

    let body = json!({"ids": [ids[2]]});
    let deleted = h.post(&h.marathon("/v2/tasks/delete?scale=true"), &body).await;
    assert!(deleted.json()["deploymentId"].is_string(), "{}", deleted.text);
    assert_eq!(h.app("/k/web").await["instances"], json!(1));
    let all_killed = h.delete(&h.marathon("/v2/apps/k/web/tasks")).await;
    assert_eq!(all_killed.json()["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(h.get(&h.marathon("/v2/apps/k/web")).await.status, StatusCode::OK, "the app is still there");
}

#[tokio::test]
async fn groups_are_read_and_carry_dependencies() {
    let h = harness::start().await;
    create(&h, json!({"id": "/g/db", "cmd": "x"})).await;
    create(&h, json!({"id": "/g/web/api", "cmd": "x"})).await;
    let root = h.get(&h.marathon("/v2/groups")).await.json();
    assert_eq!(root["id"], json!("/"));
    let keys: Vec<&String> = root.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["id", "apps", "pods", "groups", "dependencies", "version", "enforceRole"]);
    assert_eq!(root["groups"][0]["id"], json!("/g"));
    assert_eq!(root["groups"][0]["apps"][0]["id"], json!("/g/db"));
    assert_eq!(root["groups"][0]["groups"][0]["id"], json!("/g/web"));
    assert_eq!(h.get(&h.marathon("/v2/groups/nope")).await.status, StatusCode::NOT_FOUND);

    let put = h.put(&h.marathon("/v2/groups/g/web"), &json!({"dependencies": ["../db"]})).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    assert!(put.json()["deploymentId"].is_string());
    let web = h.get(&h.marathon("/v2/groups/g/web")).await.json();
    assert_eq!(web["dependencies"], json!(["/db"]), "relative to the group's parent: {web}");
    assert_eq!(web["apps"][0]["id"], json!("/g/web/api"), "a dependency-only update keeps the apps");

    let created =
        h.post(&h.marathon("/v2/groups"), &json!({"id": "/new", "apps": [{"id": "one", "cmd": "x"}]})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(h.app("/new/one").await["cmd"], json!("x"));
    let again = h.post(&h.marathon("/v2/groups"), &json!({"id": "/new"})).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    h.settle().await;
    assert_eq!(h.delete(&h.marathon("/v2/groups/new")).await.status, StatusCode::OK);
    assert_eq!(h.get(&h.marathon("/v2/apps/new/one")).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn queue_and_metrics_of_both_servers() {
    let h = harness::start_chronos(ChronosVersion::V3).await;
    assert_eq!(h.get(&h.marathon("/v2/queue")).await.json(), json!({"queue": []}));
    let metrics = h.get(&h.marathon("/metrics")).await.json();
    assert_eq!(metrics["version"], json!("4.0.0"));
    assert!(metrics["gauges"]["marathon.apps.active.gauge"]["value"].is_number());
    let chronos = h.get(&h.chronos("/metrics")).await.json();
    for section in ["gauges", "counters", "histograms", "meters", "timers"] {
        assert!(chronos[section].is_object(), "{chronos}");
    }
}

#[tokio::test]
async fn chronos_job_stats_and_the_3x_summary() {
    let h = harness::start_chronos(ChronosVersion::V3).await;
    let job =
        json!({"name": "s", "command": "true", "schedule": "R/2030-01-01T00:00:00Z/PT1H", "owner": "a@b"});
    assert_eq!(h.post(&h.chronos("/v1/scheduler/iso8601"), &job).await.status, StatusCode::NO_CONTENT);
    let child = json!({"name": "t", "command": "true", "parents": ["s"], "owner": "a@b"});
    assert_eq!(h.post(&h.chronos("/v1/scheduler/dependency"), &child).await.status, StatusCode::NO_CONTENT);
    let stat = h.get(&h.chronos("/v1/scheduler/job/stat/s")).await.json();
    assert_eq!(stat["taskStatHistory"], json!([]));
    assert_eq!(stat["histogram"]["count"], json!(0));
    assert_eq!(h.get(&h.chronos("/v1/scheduler/job/stat/none")).await.status, StatusCode::BAD_REQUEST);
    let summary = h.get(&h.chronos("/v1/scheduler/jobs/summary")).await.json();
    assert_eq!(
        summary["jobs"][0],
        json!({"name": "s", "status": "fresh", "state": "idle", "schedule": "R/2030-01-01T00:00:00Z/PT1H", "parents": [], "disabled": false})
    );
    assert_eq!(summary["jobs"][1]["parents"], json!(["s"]));
    assert_eq!(summary["jobs"][1]["schedule"], json!(""));

    let old = harness::start_chronos(ChronosVersion::V2_4).await;
    let job =
        json!({"name": "s", "command": "true", "schedule": "R/2030-01-01T00:00:00Z/PT1H", "owner": "a@b"});
    old.post(&old.chronos("/scheduler/iso8601"), &job).await;
    assert_eq!(old.get(&old.chronos("/scheduler/job/stat/s")).await.status, StatusCode::OK);
    assert_eq!(
        old.get(&old.chronos("/scheduler/jobs/summary")).await.status,
        StatusCode::NOT_FOUND,
        "3.x only"
    );
}

// ---- issue 16.13: values Marathon refuses, bounded memory ------------------------------------

#[tokio::test]
async fn out_of_range_values_are_refused_and_huge_apps_stay_bounded() {
    let h = harness::start().await;
    let too_many =
        h.post(&h.marathon("/v2/apps"), &json!({"id": "/big", "cmd": "x", "instances": 2147483648u64})).await;
    assert_eq!(too_many.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(too_many.json()["details"], json!([{"path": "/instances", "errors": ["error.expected.int"]}]));
    for (field, value) in
        [("cpus", json!(-1.0)), ("disk", json!(-1)), ("mem", json!(-5)), ("instances", json!(-1))]
    {
        let answer = h.post(&h.marathon("/v2/apps"), &json!({"id": "/neg", "cmd": "x", field: value})).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {}", answer.text);
        assert_eq!(answer.json()["details"][0]["errors"], json!(["error.min"]), "{field}");
    }
    for (field, value, path, error) in [
        ("env", json!({"A": ["x"]}), "/env/A", "error.expected.jsstring"),
        ("upgradeStrategy", json!([1, 0]), "/upgradeStrategy", "error.expected.jsobject"),
        ("unreachableStrategy", json!([]), "/unreachableStrategy", "error.expected.jsobject"),
    ] {
        let answer =
            h.post(&h.marathon("/v2/apps"), &json!({"id": "/shape", "cmd": "x", field: value})).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {}", answer.text);
        assert_eq!(answer.json()["details"], json!([{"path": path, "errors": [error]}]), "{field}");
    }
    let batch = h.put(&h.marathon("/v2/apps"), &json!([{"id": "/b", "cmd": "x", "instances": 1e12}])).await;
    assert_eq!(batch.status, StatusCode::UNPROCESSABLE_ENTITY);

    // The largest count Marathon accepts: accepted, launched up to the emulator's
    // bound, the rest waits in the queue.
    create(&h, json!({"id": "/max", "cmd": "x", "instances": 2147483647})).await;
    let app = h.app("/max").await;
    assert_eq!(app["instances"], json!(2147483647));
    assert_eq!(app["tasksStaged"].as_u64().unwrap() + app["tasksRunning"].as_u64().unwrap(), 1000);
    let queue = h.get(&h.marathon("/v2/queue")).await.json();
    assert_eq!(queue["queue"][0]["count"], json!(2147483647u64 - 1000));
    assert_eq!(queue["queue"][0]["app"]["id"], json!("/max"));
}

// ---- issue 16.15: `run --sandbox` controls -----------------------------------------------

/// Start `mesosync run --sandbox` on an empty directory and return the child and the
/// sandbox Marathon URL it prints.
async fn run_sandbox(extra: &[&str]) -> (tokio::process::Child, String, tempfile::TempDir) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mesosync"))
        .arg("run")
        .arg(dir.path())
        .args(["--sandbox", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("mesosync run starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("stdout readable") {
            if let Some(rest) = line.strip_prefix("sandbox Marathon:") {
                return rest.split_whitespace().next().expect("a URL").to_owned();
            }
        }
        panic!("mesosync run ended without printing the sandbox URL");
    })
    .await
    .expect("the sandbox URL is printed");
    (child, url, dir)
}

#[tokio::test]
async fn run_sandbox_serves_controls_only_when_asked() {
    let http = reqwest::Client::new();
    let (mut child, marathon, _dir) = run_sandbox(&[]).await;
    assert_eq!(http.get(format!("{marathon}/v2/apps")).send().await.unwrap().status(), StatusCode::OK);
    for path in ["/_sandbox/requests", "/_sandbox/state", "/_sandbox/faults"] {
        let answer = http.get(format!("{marathon}{path}")).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR, "{path} must not be served");
    }
    let fault = http
        .post(format!("{marathon}/_sandbox/faults"))
        .json(&json!({"error_rate": 1.0}))
        .send()
        .await
        .unwrap();
    assert!(!fault.status().is_success(), "faults cannot be injected without --sandbox-controls");
    child.kill().await.expect("stopped");

    let (mut child, marathon, _dir) = run_sandbox(&["--sandbox-controls"]).await;
    let answer = http.get(format!("{marathon}/_sandbox/requests")).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK, "--sandbox-controls turns them on");
    child.kill().await.expect("stopped");
}

/// A supervisor that sends SIGTERM the moment `mesosync run --sandbox` prints its first
/// address must see a clean exit: the handlers are installed before anything is printed
/// (before the fix they came after the status server's address, and this SIGTERM met
/// the default action, status 15). Sent straight from the test, not by spawning `kill`,
/// to land as early as a supervisor's would.
#[tokio::test]
async fn run_sandbox_exits_cleanly_on_a_sigterm_sent_as_its_first_line_appears() {
    let (mut child, _marathon, _dir) = run_sandbox(&[]).await;
    let pid = rustix::process::Pid::from_raw(child.id().expect("running") as i32).expect("a pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM sent");
    let status =
        tokio::time::timeout(Duration::from_secs(20), child.wait()).await.expect("exits").expect("status");
    assert!(status.success(), "exit 0 on a SIGTERM during start-up, got {status:?}");
}

// ---- 18.2, the controller side: its normalizer agrees with Marathon's ipProtocol -----------

#[tokio::test(flavor = "multi_thread")]
async fn health_check_ip_protocols_do_not_show_a_diff_after_apply() {
    let h = harness::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = "kind: MarathonApp\nspec:\n  id: /ip/checks\n  cmd: sleep 1\n  healthChecks:\n    \
                    - {protocol: COMMAND, command: {value: 'true'}}\n    \
                    - {protocol: HTTP, ipProtocol: IPv6}\n    \
                    - {protocol: MESOS_TCP, ipProtocol: IPv6}\n    \
                    - {protocol: MESOS_HTTP, path: /h}\n";
    std::fs::write(dir.path().join("app.yaml"), manifest).expect("manifest written");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mesosync"))
            .args(args)
            .arg(dir.path())
            .args(["--marathon", &h.sandbox.marathon_url(), "--chronos", &h.sandbox.chronos_url()])
            .env("NO_COLOR", "1")
            .output()
            .expect("mesosync runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, output) = tokio::task::block_in_place(|| run(&["apply"]));
    assert_eq!(code, Some(0), "{output}");
    let written = h.app("/ip/checks").await;
    assert_eq!(written["healthChecks"][1]["ipProtocol"], json!("IPv4"), "Marathon keeps no IPv6 on HTTP");
    let (code, output) = tokio::task::block_in_place(|| run(&["diff"]));
    assert_eq!(code, Some(0), "a diff right after apply must be empty:\n{output}");
}

// ---- 18, the controller side: task-state traffic never triggers a reconcile ------------------

/// `mesosync run` against a Marathon that sends every event (an old one ignoring
/// `event_type`), while one app's tasks are killed and replaced over and over: the
/// only reconcile after the first is the one a file edit asks for, and task events
/// are not among its reasons.
#[tokio::test(flavor = "multi_thread")]
async fn task_state_traffic_does_not_trigger_reconciles() {
    use crate::e2e::Controller;

    let h = harness::start().await;
    h.sandbox.ignore_event_type_filters(true);
    let churned =
        json!({"id": "/churn/web", "cmd": "x", "instances": 5, "healthChecks": [{"protocol": "HTTP"}]});
    h.sandbox.seed(&mesosync::emulator::Seed { apps: vec![churned], jobs: vec![] }).expect("seeded");
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = dir.path().join("job.yaml");
    let job = "kind: ChronosJob\nspec:\n  name: churn-probe\n  command: 'true'\n  \
               schedule: R1/2030-01-01T00:00:00Z/PT1H\n  owner: ops@example.com\n";
    std::fs::write(&manifest, job).expect("manifest written");
    let controller =
        tokio::task::block_in_place(|| Controller::start(&h, dir.path(), &["--chronos-version", "2.4"]));
    let first = controller
        .wait_status("the first reconcile", |s| {
            s["last_reconcile"]["outcome"] == "success" && s["running"].is_null()
        })
        .await;
    let baseline = first["last_reconcile"]["number"].as_u64().expect("a reconcile number");

    let mut events = Events::open(&h, "?event_type=instance_health_changed_event").await;
    for round in 0..10 {
        assert_eq!(h.sandbox.kill_tasks("/churn/web"), 5, "round {round}");
        // Every replacement runs and passes its check before the next round.
        for _ in 0..5 {
            events.until("instance_health_changed_event").await;
        }
    }
    let sent: usize = named(&frames(&events.text), "instance_health_changed_event").len();
    assert_eq!(sent, 50, "the churn produced its task and health events");

    // A file edit is the barrier: once its reconcile is over, every event sent before
    // it has been read by the controller.
    std::fs::write(&manifest, job.replace("'true'", "'true '")).expect("manifest edited");
    let after = controller
        .wait_status("the edit's reconcile", |s| {
            s["last_reconcile"]["number"].as_u64() > Some(baseline) && s["running"].is_null()
        })
        .await;
    assert_eq!(
        after["last_reconcile"]["number"].as_u64(),
        Some(baseline + 1),
        "one reconcile, for the edit: {after:#}"
    );
    assert_eq!(after["last_reconcile"]["reasons"], json!(["file-change"]), "{after:#}");
}
