//! The emulated Marathon checked over HTTP against the facts of DESIGN §4 and the
//! reference samples in `../shared/reference/marathon/`.

use std::time::{Duration, Instant};

use mesosync::emulator::{DeploymentOutcome, FaultRule, SandboxConfig, Seed, System};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{self, Harness};

fn keys(value: &Value) -> Vec<&str> {
    value.as_object().expect("an object").keys().map(String::as_str).collect()
}

async fn create(h: &Harness, app: Value) -> Value {
    let answer = h.post(&h.marathon("/v2/apps"), &app).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    answer.json()
}

#[tokio::test]
async fn get_reports_defaults_in_order_and_omits_empty_collections() {
    let h = harness::start().await;
    create(&h, json!({"id": "/x", "cmd": "sleep 1", "cpus": 0.1, "mem": 32, "args": [], "env": {}, "healthChecks": [{"protocol": "HTTP"}]})).await;
    h.settle().await;
    let raw = h.get(&h.marathon("/v2/apps/x")).await;
    let app = raw.json()["app"].clone();
    assert_eq!(
        keys(&app),
        [
            "id",
            "backoffFactor",
            "backoffSeconds",
            "cmd",
            "cpus",
            "disk",
            "executor",
            "healthChecks",
            "instances",
            "labels",
            "maxLaunchDelaySeconds",
            "mem",
            "gpus",
            "networks",
            "portDefinitions",
            "requirePorts",
            "upgradeStrategy",
            "version",
            "versionInfo",
            "killSelection",
            "unreachableStrategy",
            "role",
            "tasksStaged",
            "tasksRunning",
            "tasksHealthy",
            "tasksUnhealthy",
            "deployments",
            "tasks"
        ]
    );
    assert_eq!(app["backoffFactor"], json!(1.15));
    assert_eq!(app["labels"], json!({}));
    assert_eq!(app["maxLaunchDelaySeconds"], json!(300));
    assert_eq!(app["networks"], json!([{"mode": "host"}]));
    assert_eq!(app["portDefinitions"], json!([{"port": 10000, "name": "default", "protocol": "tcp"}]));
    assert_eq!(app["unreachableStrategy"], json!({"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0}));
    assert_eq!(app["role"], json!("*"));
    assert_eq!(
        app["healthChecks"],
        json!([{"gracePeriodSeconds": 300, "ignoreHttp1xx": false, "intervalSeconds": 60,
                "maxConsecutiveFailures": 3, "protocol": "HTTP", "ipProtocol": "IPv4",
                "timeoutSeconds": 20, "delaySeconds": 15}])
    );
    // Doubles are written with a fraction, as Marathon's writer does.
    for fragment in [r#""disk":0.0"#, r#""mem":32.0"#, r#""cpus":0.1"#, r#""minimumHealthCapacity":1.0"#] {
        assert!(raw.text.contains(fragment), "{fragment} missing in {}", raw.text);
    }
    assert_eq!((app["tasksRunning"].clone(), app["tasksHealthy"].clone()), (json!(1), json!(1)));
}

#[tokio::test]
async fn post_answers_the_app_as_accepted() {
    let h = harness::start().await;
    let answer = h.post(&h.marathon("/v2/apps"), &json!({"id": "web", "cmd": "serve"})).await;
    assert_eq!(answer.status, StatusCode::CREATED);
    let body = answer.json();
    let header = answer.headers["Marathon-Deployment-Id"].to_str().unwrap().to_owned();
    assert_eq!(body["id"], json!("/web"), "relative ids are made absolute");
    assert_eq!(body["portDefinitions"][0]["port"], json!(0), "ports are still 0 in the 201 body");
    assert!(body.get("versionInfo").is_none());
    assert_eq!(body["deployments"], json!([{"id": header}]));
    uuid::Uuid::parse_str(&header).expect("deployment ids are UUIDs");
    let version = body["version"].as_str().unwrap();
    chrono::DateTime::parse_from_rfc3339(version).expect("versions are ISO timestamps");
    assert!(version.ends_with('Z') && version.len() == 24, "{version}");
}

#[tokio::test]
async fn error_bodies_are_shaped_like_marathon() {
    let h = harness::start().await;
    let missing = h.get(&h.marathon("/v2/apps/nope")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.text, r#"{"message":"App '/nope' does not exist","details":[]}"#);
    let missing_delete = h.delete(&h.marathon("/v2/apps/nope")).await;
    assert_eq!(missing_delete.text, r#"{"message":"App '/nope' does not exist"}"#);

    let min = h.post(&h.marathon("/v2/apps"), &json!({"id": "/a", "cmd": "x", "cpus": 0})).await;
    assert_eq!(min.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(min.text, r#"{"message":"Invalid JSON","details":[{"path":"/cpus","errors":["error.min"]}]}"#);
    let wrong_type = h.post(&h.marathon("/v2/apps"), &json!({"id": "/a", "cmd": "x", "mem": "lots"})).await;
    assert_eq!(
        wrong_type.json()["details"][0],
        json!({"path": "/mem", "errors": ["error.expected.jsnumber"]})
    );

    let both = h.post(&h.marathon("/v2/apps"), &json!({"id": "/a", "cmd": "x", "args": ["y"]})).await;
    assert_eq!(both.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        both.text,
        r#"{"message":"Object is not valid","details":[{"path":"/","errors":["AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'."]}]}"#
    );
    let form = h
        .http
        .post(h.marathon("/v2/apps"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(r#"{"id":"/f","cmd":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "curl -d without a JSON content type");
    let malformed = h.call(Method::POST, &h.marathon("/v2/apps"), Some("{\"id\": ")).await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);

    create(&h, json!({"id": "/a", "cmd": "x"})).await;
    let again = h.post(&h.marathon("/v2/apps"), &json!({"id": "/a", "cmd": "y"})).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.text, r#"{"message":"An app with id [/a] already exists."}"#);
}

#[tokio::test]
async fn ids_are_validated() {
    let h = harness::start().await;
    for bad in ["/Upper", "/under_score", "/a/restart", "/a/tasks", "/trailing-", "/a..b"] {
        let answer = h.post(&h.marathon("/v2/apps"), &json!({"id": bad, "cmd": "x"})).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(answer.json()["details"][0]["path"], json!("/id"), "{bad}");
    }
    for good in ["/prod/web.v2", "/a1/b-2/c", "plain"] {
        let answer = h.post(&h.marathon("/v2/apps"), &json!({"id": good, "cmd": "x"})).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{good}: {}", answer.text);
    }
}

#[tokio::test]
async fn the_documentation_sample_is_rejected_like_1_10() {
    let h = harness::start().await;
    let sample = harness::reference("marathon/app.json");
    let answer = h.call(Method::POST, &h.marathon("/v2/apps"), Some(&sample)).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", answer.text);
    let body = answer.json();
    assert_eq!(body["message"], json!("Object is not valid"));
    let paths: Vec<&str> =
        body["details"].as_array().unwrap().iter().map(|d| d["path"].as_str().unwrap()).collect();
    for expected in ["/", "/secrets", "/ipAddress", "/portDefinitions"] {
        assert!(paths.contains(&expected), "{expected} not among {paths:?}");
    }
    assert_eq!(h.get(&h.marathon("/v2/apps/foo")).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn put_merges_top_level_by_default_and_replaces_with_partial_update_false() {
    let h = harness::start().await;
    create(&h, json!({"id": "/m", "cmd": "a", "env": {"A": "1"}, "labels": {"L": "x"}, "upgradeStrategy": {"minimumHealthCapacity": 0.5}})).await;
    h.settle().await;
    let merged = h
        .put(&h.marathon("/v2/apps/m"), &json!({"cmd": "b", "upgradeStrategy": {"maximumOverCapacity": 0.2}}))
        .await;
    assert_eq!(merged.status, StatusCode::OK, "{}", merged.text);
    assert_eq!(keys(&merged.json()), ["version", "deploymentId"]);
    h.settle().await;
    let app = h.app("/m").await;
    assert_eq!(app["cmd"], json!("b"));
    assert_eq!(app["env"], json!({"A": "1"}), "untouched top-level fields stay");
    // Nested objects are replaced whole: the old minimumHealthCapacity is gone.
    assert_eq!(app["upgradeStrategy"], json!({"minimumHealthCapacity": 1.0, "maximumOverCapacity": 0.2}));

    let replaced = h.put(&h.marathon("/v2/apps/m?partialUpdate=false"), &json!({"cmd": "c"})).await;
    assert_eq!(replaced.status, StatusCode::OK);
    h.settle().await;
    let app = h.app("/m").await;
    assert!(app.get("env").is_none(), "a full replace drops what was not sent");
    assert_eq!(app["labels"], json!({}));
}

#[tokio::test]
async fn scale_only_change_moves_only_last_scaling_at() {
    let h = harness::start().await;
    create(&h, json!({"id": "/s", "cmd": "a"})).await;
    h.settle().await;
    let before = h.app("/s").await;
    // Long enough to look at the running deployment even on a loaded machine.
    h.sandbox.set_deployment_duration(Duration::from_secs(1));
    let answer = h.put(&h.marathon("/v2/apps/s"), &json!({"instances": 3})).await;
    let deployments = h.get(&h.marathon("/v2/deployments")).await.json();
    assert_eq!(deployments[0]["steps"], json!([{"actions": [{"action": "ScaleApplication", "app": "/s"}]}]));
    h.settle().await;
    let after = h.app("/s").await;
    assert_eq!(after["instances"], json!(3));
    assert_eq!(after["versionInfo"]["lastConfigChangeAt"], before["versionInfo"]["lastConfigChangeAt"]);
    assert_ne!(after["versionInfo"]["lastScalingAt"], before["versionInfo"]["lastScalingAt"]);
    assert_eq!(after["version"], answer.json()["version"]);
    assert_eq!(after["tasksRunning"], json!(3));

    h.put(&h.marathon("/v2/apps/s"), &json!({"cmd": "b"})).await;
    let deployments = h.get(&h.marathon("/v2/deployments")).await.json();
    assert_eq!(deployments[0]["steps"][0]["actions"][0]["action"], json!("RestartApplication"));
    h.settle().await;
    let restarted = h.app("/s").await;
    assert_eq!(restarted["versionInfo"]["lastConfigChangeAt"], restarted["version"]);
}

#[tokio::test]
async fn a_running_deployment_locks_the_app() {
    let h = harness::start().await;
    h.sandbox.set_deployment_duration(Duration::from_secs(30));
    let created = create(&h, json!({"id": "/l", "cmd": "a"})).await;
    let first = created["deployments"][0]["id"].as_str().unwrap().to_owned();
    let mut events = h
        .http
        .get(h.marathon("/v2/events?event_type=api_post_event"))
        .header("Accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let locked = h.put(&h.marathon("/v2/apps/l"), &json!({"cmd": "refused"})).await;
    assert_eq!(locked.status, StatusCode::CONFLICT);
    assert_eq!(
        locked.text,
        format!(
            r#"{{"message":"App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/<DEPLOYMENT_ID>'.","deployments":[{{"id":"{first}"}}]}}"#
        )
    );
    let forced = h.put(&h.marathon("/v2/apps/l?force=true"), &json!({"cmd": "b"})).await;
    assert_eq!(forced.status, StatusCode::OK);
    let posted = read_events(&mut events, |t| t.contains("event: api_post_event")).await;
    let posts = frames(&posted);
    assert_eq!(posts[0].1["appDefinition"]["cmd"], json!("b"), "a refused write publishes no api_post_event");
    let list = h.get(&h.marathon("/v2/deployments")).await.json();
    let ids: Vec<&str> = list.as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [forced.json()["deploymentId"].as_str().unwrap()],
        "the forced write cancelled the first"
    );
    assert_eq!(
        keys(&list[0]),
        [
            "id",
            "version",
            "affectedApps",
            "affectedPods",
            "steps",
            "currentActions",
            "currentStep",
            "totalSteps"
        ]
    );
    // DELETE defaults to force=true: it cancels instead of answering 409.
    let deleted = h.delete(&h.marathon("/v2/apps/l")).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    assert_eq!(h.get(&h.marathon("/v2/apps/l")).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn deleting_a_deployment_reverts_or_cancels() {
    let h = harness::start().await;
    create(&h, json!({"id": "/r", "cmd": "old"})).await;
    h.settle().await;
    h.sandbox.set_deployment_duration(Duration::from_secs(30));
    let update = h.put(&h.marathon("/v2/apps/r"), &json!({"cmd": "new"})).await.json();
    let id = update["deploymentId"].as_str().unwrap();
    assert_eq!(h.app("/r").await["cmd"], json!("new"), "the new definition shows at once");
    let revert = h.delete(&h.marathon(&format!("/v2/deployments/{id}"))).await;
    assert_eq!(revert.status, StatusCode::OK);
    assert_eq!(keys(&revert.json()), ["version", "deploymentId"]);
    assert_eq!(h.app("/r").await["cmd"], json!("old"), "revert puts the old definition back");

    let revert_id = revert.json()["deploymentId"].as_str().unwrap().to_owned();
    let cancel = h.delete(&h.marathon(&format!("/v2/deployments/{revert_id}?force=true"))).await;
    assert_eq!(cancel.status, StatusCode::ACCEPTED);
    assert_eq!(h.get(&h.marathon("/v2/deployments")).await.json(), json!([]));
    let unknown = h.delete(&h.marathon("/v2/deployments/97c136bf-5a28-4821-9d94-480d9fbb01c8")).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // Reverting a creation removes the app.
    let created = create(&h, json!({"id": "/fresh", "cmd": "x"})).await;
    let id = created["deployments"][0]["id"].as_str().unwrap();
    assert_eq!(h.delete(&h.marathon(&format!("/v2/deployments/{id}"))).await.status, StatusCode::OK);
    assert_eq!(h.get(&h.marathon("/v2/apps/fresh")).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn put_creates_patch_does_not_and_a_no_op_still_deploys() {
    let h = harness::start().await;
    let patched = h.patch(&h.marathon("/v2/apps/ghost"), &json!({"cmd": "x"})).await;
    assert_eq!(patched.status, StatusCode::NOT_FOUND);
    let created = h
        .put(&h.marathon("/v2/apps/made"), &json!({"cmd": "x", "healthChecks": [{"protocol": "TCP"}]}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(keys(&created.json()), ["version", "deploymentId"]);
    h.settle().await;
    let app = h.app("/made").await;
    // Created by PUT: portIndex is filled in.
    assert_eq!(app["healthChecks"][0]["portIndex"], json!(0));
    let noop = h.put(&h.marathon("/v2/apps/made"), &json!({"cmd": "x"})).await;
    assert_eq!(noop.status, StatusCode::OK);
    assert_ne!(noop.json()["deploymentId"], created.json()["deploymentId"], "a no-op PUT mints a deployment");
    assert_eq!(h.app("/made").await["version"], app["version"], "but changes nothing");
}

#[tokio::test]
async fn service_ports_are_assigned_and_kept() {
    let h = harness::start().await;
    create(&h, json!({"id": "/p1", "cmd": "x"})).await;
    create(
        &h,
        json!({"id": "/p2", "cmd": "x", "portDefinitions": [{"port": 0}, {"port": 0, "name": "admin"}]}),
    )
    .await;
    h.settle().await;
    assert_eq!(h.app("/p1").await["portDefinitions"][0]["port"], json!(10000));
    let p2 = h.app("/p2").await;
    assert_eq!(
        p2["portDefinitions"],
        json!([{"port": 10001, "protocol": "tcp"}, {"port": 10002, "name": "admin", "protocol": "tcp"}])
    );
    // Re-sending 0 keeps the assigned ports: no change, no restart.
    let resend = h
        .put(
            &h.marathon("/v2/apps/p2?partialUpdate=false"),
            &json!({"cmd": "x", "portDefinitions": [{"port": 0}, {"port": 0, "name": "admin"}]}),
        )
        .await;
    assert_eq!(resend.status, StatusCode::OK);
    let again = h.app("/p2").await;
    assert_eq!(again["portDefinitions"], p2["portDefinitions"]);
    assert_eq!(again["version"], p2["version"]);
    // A freed port is handed out again, lowest first.
    h.delete(&h.marathon("/v2/apps/p1")).await;
    create(&h, json!({"id": "/p3", "cmd": "x"})).await;
    h.settle().await;
    assert_eq!(h.app("/p3").await["portDefinitions"][0]["port"], json!(10000));
    // No ports given and non-host networking: no default port definition.
    create(&h, json!({"id": "/b", "container": {"docker": {"image": "i"}}, "networks": [{"mode": "container/bridge"}]})).await;
    assert!(h.app("/b").await.get("portDefinitions").is_none());
    create(&h, json!({"id": "/none", "cmd": "x", "portDefinitions": []})).await;
    assert_eq!(h.app("/none").await["portDefinitions"], json!([]));
}

#[tokio::test]
async fn deprecated_forms_are_translated_and_never_reported() {
    let h = harness::start().await;
    create(
        &h,
        json!({
            "id": "/old", "cmd": "x",
            "container": {"type": "DOCKER", "docker": {"image": "nginx", "network": "BRIDGE",
                "portMappings": [{"containerPort": 80, "name": "http"}]}},
            "uris": ["http://x/app.tar.gz", "http://x/run.sh"],
        }),
    )
    .await;
    h.settle().await;
    let app = h.app("/old").await;
    assert_eq!(app["networks"], json!([{"mode": "container/bridge"}]));
    assert_eq!(
        app["container"],
        json!({"type": "DOCKER", "docker": {"forcePullImage": false, "image": "nginx", "parameters": [], "privileged": false},
               "volumes": [], "portMappings": [{"containerPort": 80, "hostPort": 0, "name": "http", "protocol": "tcp", "servicePort": 10000}]})
    );
    assert_eq!(
        app["fetch"],
        json!([{"uri": "http://x/app.tar.gz", "extract": true, "executable": false, "cache": false},
               {"uri": "http://x/run.sh", "extract": false, "executable": false, "cache": false}])
    );
    for absent in ["uris", "ports", "ipAddress", "portDefinitions"] {
        assert!(app.get(absent).is_none(), "{absent} reported");
    }
    create(&h, json!({"id": "/ports", "cmd": "x", "ports": [0, 0]})).await;
    h.settle().await;
    assert_eq!(
        h.app("/ports").await["portDefinitions"],
        json!([{"port": 10001, "protocol": "tcp"}, {"port": 10002, "protocol": "tcp"}]),
        "ports become port definitions without a name"
    );
    create(&h, json!({"id": "/user", "cmd": "x", "container": {"docker": {"image": "i", "network": "USER"}}, "ipAddress": {"networkName": "dcos"}})).await;
    assert_eq!(h.app("/user").await["networks"], json!([{"name": "dcos", "mode": "container"}]));
}

#[tokio::test]
async fn mixing_deprecated_and_new_forms_is_refused() {
    let h = harness::start().await;
    let cases = [
        (json!({"id": "/a", "cmd": "x", "ports": [0], "portDefinitions": [{"port": 0}]}), "/ports"),
        (
            json!({"id": "/a", "cmd": "x", "ipAddress": {}, "networks": [{"mode": "container", "name": "n"}]}),
            "/ipAddress",
        ),
        (json!({"id": "/a", "cmd": "x", "uris": ["u"], "fetch": [{"uri": "u"}]}), "/uris"),
        (
            json!({"id": "/a", "container": {"docker": {"image": "i", "network": "HOST"}}, "networks": [{"mode": "host"}]}),
            "/container/docker/network",
        ),
        (json!({"id": "/a", "cmd": "x", "secrets": {"s": {"source": "/x"}}}), "/secrets"),
    ];
    for (body, path) in cases {
        let answer = h.post(&h.marathon("/v2/apps"), &body).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(answer.json()["message"], json!("Object is not valid"));
        assert_eq!(answer.json()["details"][0]["path"], json!(path), "{body}");
    }
}

#[tokio::test]
async fn health_check_and_fetch_defaults() {
    let h = harness::start().await;
    create(
        &h,
        json!({"id": "/hc", "cmd": "x", "fetch": [{"uri": "http://x/f"}],
               "healthChecks": [{"protocol": "TCP", "delaySeconds": 99}, {"protocol": "COMMAND", "command": {"value": "true"}, "delaySeconds": 7}, {"protocol": "MESOS_HTTP", "path": "/h"}]}),
    )
    .await;
    let app = h.app("/hc").await;
    let checks = app["healthChecks"].as_array().unwrap();
    assert_eq!(checks[0]["delaySeconds"], json!(15), "TCP always reads back 15");
    assert!(checks[0].get("ignoreHttp1xx").is_none());
    assert!(checks[0].get("portIndex").is_none(), "POST without port definitions in the body: no portIndex");
    assert_eq!(checks[1]["delaySeconds"], json!(7));
    assert_eq!(checks[1]["ipProtocol"], json!("IPv4"), "every check is written with an ipProtocol");
    assert_eq!(checks[2]["path"], json!("/h"));
    assert!(checks[2].get("ignoreHttp1xx").is_none());
    assert_eq!(
        app["fetch"],
        json!([{"uri": "http://x/f", "extract": true, "executable": false, "cache": false}])
    );
}

#[tokio::test]
async fn batch_samples_make_one_deployment() {
    let h = harness::start().await;
    h.sandbox.set_deployment_duration(Duration::from_secs(1));
    let create_sample = harness::reference("marathon/apps_create.json");
    let answer = h.call(Method::PUT, &h.marathon("/v2/apps"), Some(&create_sample)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let deployments = h.get(&h.marathon("/v2/deployments")).await.json();
    assert_eq!(deployments.as_array().unwrap().len(), 1);
    let mut affected: Vec<&str> =
        deployments[0]["affectedApps"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    affected.sort_unstable();
    assert_eq!(affected, ["/test/sleep120", "/test/sleep60"]);
    h.settle().await;
    let sleep60 = h.app("/test/sleep60").await;
    assert_eq!(sleep60["dependencies"], json!(["/test/sleep120", "/other/namespace/or/app"]));
    assert_eq!(sleep60["mem"], json!(9.0));
    assert_eq!(sleep60["tasksRunning"], json!(2));

    let patch_sample = harness::reference("marathon/apps_patch.json");
    let patched = h.call(Method::PATCH, &h.marathon("/v2/apps"), Some(&patch_sample)).await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    h.settle().await;
    let sleep120 = h.app("/test/sleep120").await;
    assert_eq!(
        (sleep120["cpus"].clone(), sleep120["instances"].clone(), sleep120["cmd"].clone()),
        (json!(0.3), json!(2), json!("sleep 120"))
    );
    let unknown = h.patch(&h.marathon("/v2/apps"), &json!([{"id": "/nope", "cpus": 1}])).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_old_list_sample_is_accepted_and_read_back_modern() {
    let h = harness::start().await;
    let list: Value = serde_json::from_str(&harness::reference("marathon/app_list.json")).unwrap();
    let mut app = list["apps"][0].clone();
    for server_set in [
        "version",
        "versionInfo",
        "tasksStaged",
        "tasksRunning",
        "tasksHealthy",
        "tasksUnhealthy",
        "deployments",
    ] {
        app.as_object_mut().unwrap().remove(server_set);
    }
    create(&h, app).await;
    let read = h.app("/myapp").await;
    assert_eq!(
        read["portDefinitions"],
        json!([{"port": 10013, "protocol": "tcp"}, {"port": 10015, "protocol": "tcp"}])
    );
    assert_eq!(read["fetch"][0]["extract"], json!(false));
    assert_eq!(read["maxLaunchDelaySeconds"], json!(3600));
    assert_eq!(read["constraints"], json!([["hostname", "UNIQUE", ""]]));
    for absent in [
        "uris",
        "ports",
        "args",
        "user",
        "container",
        "healthChecks",
        "dependencies",
        "acceptedResourceRoles",
    ] {
        assert!(read.get(absent).is_none(), "{absent} reported");
    }
}

#[tokio::test]
async fn listing_filters_and_embeds() {
    let h = harness::start().await;
    create(&h, json!({"id": "/prod/Web-api".to_lowercase(), "cmd": "java -jar", "labels": {"MESOSYNC_OWNER": "prod", "tier": "web"}})).await;
    create(&h, json!({"id": "/prod/db", "cmd": "mysqld", "labels": {"MESOSYNC_OWNER": "other"}})).await;
    create(&h, json!({"id": "/dev/web", "cmd": "java"})).await;
    h.settle().await;
    let ids = |body: Value| -> Vec<String> {
        body["apps"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(ids(h.get(&h.marathon("/v2/apps?id=WEB")).await.json()), ["/dev/web", "/prod/web-api"]);
    assert_eq!(
        ids(h.get(&h.marathon("/v2/apps?label=MESOSYNC_OWNER==prod")).await.json()),
        ["/prod/web-api"]
    );
    assert_eq!(
        ids(h.get(&h.marathon("/v2/apps?label=MESOSYNC_OWNER")).await.json()),
        ["/prod/db", "/prod/web-api"]
    );
    assert_eq!(ids(h.get(&h.marathon("/v2/apps?label=MESOSYNC_OWNER!=prod")).await.json()), ["/prod/db"]);
    assert_eq!(
        ids(h.get(&h.marathon("/v2/apps?label=MESOSYNC_OWNER%20in%20(prod,%20x),tier")).await.json()),
        ["/prod/web-api"]
    );
    assert_eq!(ids(h.get(&h.marathon("/v2/apps?cmd=java")).await.json()), ["/dev/web", "/prod/web-api"]);

    let plain = h.get(&h.marathon("/v2/apps")).await.json();
    assert!(plain["apps"][0].get("tasks").is_none());
    assert_eq!(plain["apps"][0]["deployments"], json!([]));
    let embedded = h
        .get(&h.marathon("/v2/apps?embed=apps.tasks&embed=apps.taskStats&embed=apps.readiness"))
        .await
        .json();
    let first = &embedded["apps"][0];
    assert_eq!(first["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(first["tasks"][0]["state"], json!("TASK_RUNNING"));
    assert!(first.get("tasksStats").is_some() && first.get("readinessCheckResults").is_some());
    let tasks = h.get(&h.marathon("/v2/apps/dev/web/tasks")).await.json();
    assert_eq!(tasks["tasks"][0]["appId"], json!("/dev/web"));
}

#[tokio::test]
async fn restart_info_leader_ping() {
    let h = harness::start().await;
    create(&h, json!({"id": "/re", "cmd": "x"})).await;
    h.settle().await;
    let before = h.app("/re").await;
    let restart = h.post(&h.marathon("/v2/apps/re/restart"), &json!({})).await;
    assert_eq!(restart.status, StatusCode::OK);
    assert_eq!(keys(&restart.json()), ["version", "deploymentId"]);
    assert!(restart.headers.contains_key("Marathon-Deployment-Id"));
    h.settle().await;
    let after = h.app("/re").await;
    assert_ne!(after["versionInfo"]["lastConfigChangeAt"], before["versionInfo"]["lastConfigChangeAt"]);
    let info = h.get(&h.marathon("/v2/info")).await.json();
    assert_eq!(info["name"], json!("marathon"));
    assert!(info["version"].as_str().unwrap().starts_with("1.10"));
    let leader = h.get(&h.marathon("/v2/leader")).await.json();
    assert_eq!(leader["leader"], json!(h.sandbox.marathon_url().trim_start_matches("http://")));
    assert_eq!(h.get(&h.marathon("/ping")).await.text, "pong");
}

/// Read SSE text until `done` holds or 5 s pass.
pub async fn read_events(response: &mut reqwest::Response, done: impl Fn(&str) -> bool) -> String {
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    // Stop only at a frame boundary, so the text always parses as whole frames.
    while !(done(&text) && text.ends_with("\n\n")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, response.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            _ => panic!("event stream ended or timed out; got:\n{text}"),
        }
    }
    text
}

/// The `(event type, data)` of each SSE frame in `text`.
pub fn frames(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|frame| !frame.is_empty())
        .map(|frame| {
            let (event, data) = frame.split_once('\n').expect("two lines");
            let name = event.strip_prefix("event: ").expect("event line").to_owned();
            let json =
                serde_json::from_str(data.strip_prefix("data: ").expect("data line")).expect("one-line JSON");
            (name, json)
        })
        .collect()
}

#[tokio::test]
async fn events_stream_as_sse_frames() {
    let h = harness::start().await;
    let refused =
        h.http.get(h.marathon("/v2/events")).header("Accept", "application/json").send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::METHOD_NOT_ALLOWED);
    let mut stream =
        h.http.get(h.marathon("/v2/events")).header("Accept", "text/event-stream").send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let attached = read_events(&mut stream, |t| t.contains("\n\n")).await;
    assert!(attached.starts_with("event: event_stream_attached\ndata: {"), "{attached}");

    let mut filtered = h
        .http
        .get(h.marathon("/v2/events?event_type=deployment_success&event_type=deployment_info"))
        .header("Accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    create(&h, json!({"id": "/ev", "cmd": "x"})).await;
    let text = read_events(&mut stream, |t| t.contains("event: deployment_success")).await;
    let all = frames(&format!("{attached}{text}"));
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    let position = |name: &str| {
        names.iter().position(|n| *n == name).unwrap_or_else(|| panic!("{name} missing in {names:?}"))
    };
    assert!(position("event_stream_attached") < position("api_post_event"));
    // The plan is acknowledged (deployment_info), then the group change and the post.
    assert!(position("deployment_info") < position("group_change_success"));
    assert!(position("group_change_success") < position("api_post_event"));
    assert!(position("deployment_info") < position("deployment_step_success"));
    assert!(position("deployment_step_success") < position("deployment_success"));
    let first_status = position("status_update_event");
    assert!(position("deployment_info") < first_status, "task events follow their deployment_info");
    for (name, data) in &all {
        assert_eq!(data["eventType"], json!(name));
        assert!(data["timestamp"].is_string());
    }
    let post = &all[position("api_post_event")].1;
    assert_eq!(post["appDefinition"]["id"], json!("/ev"));
    assert_eq!(post["uri"], json!("/v2/apps"));

    let only = read_events(&mut filtered, |t| t.contains("event: deployment_success")).await;
    let only_names: Vec<String> = frames(&only).into_iter().map(|(n, _)| n).collect();
    assert_eq!(only_names, ["deployment_info", "deployment_success"]);

    h.delete(&h.marathon("/v2/apps/ev")).await;
    let deleted = read_events(&mut stream, |t| t.contains("event: app_terminated_event")).await;
    let terminated = frames(&deleted).into_iter().find(|(n, _)| n == "app_terminated_event").unwrap();
    assert_eq!(terminated.1["appId"], json!("/ev"));
}

#[tokio::test]
async fn faults_request_log_and_failing_deployments() {
    let h = harness::start().await;
    h.sandbox.faults().add(FaultRule {
        method: Some("GET".into()),
        path_prefix: "/v2/apps".into(),
        error_rate: 1.0,
        ..FaultRule::default()
    });
    assert_eq!(h.get(&h.marathon("/v2/apps")).await.status, StatusCode::SERVICE_UNAVAILABLE);
    h.sandbox.faults().clear();
    assert_eq!(h.get(&h.marathon("/v2/apps?id=x")).await.status, StatusCode::OK);

    let log = h.sandbox.requests();
    assert_eq!(log.len(), 2);
    assert_eq!((log[0].status, log[1].query.as_str()), (503, "id=x"));
    assert_eq!(log[1].user_agent.as_deref(), Some("mesosync-tests"));
    assert_eq!(log[1].system, System::Marathon);
    let counters = h.get(&h.marathon("/_sandbox/counters")).await.json();
    assert_eq!(counters["GET /v2/apps"], json!(2));
    h.delete(&h.marathon("/_sandbox/requests")).await;
    assert!(h.sandbox.requests().is_empty());

    // A burst that ends after a number of requests, not after some time.
    let burst =
        FaultRule { path_prefix: "/v2/info".into(), error_rate: 1.0, times: Some(2), ..FaultRule::default() };
    h.sandbox.faults().add(burst);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(h.get(&h.marathon("/v2/info")).await.status.as_u16());
    }
    assert_eq!(statuses, [503, 503, 200]);
    assert_eq!(h.sandbox.faults().list()[0].times, Some(0), "counted down in the listed rule");
    h.sandbox.faults().clear();
    h.sandbox.reset_requests();

    // Dropped connections: the client sees an error, not an answer.
    h.sandbox.faults().add(FaultRule {
        path_prefix: "/v2/info".into(),
        drop_rate: 1.0,
        ..FaultRule::default()
    });
    let dropped = async { h.http.get(h.marathon("/v2/info")).send().await?.text().await };
    assert!(dropped.await.is_err());
    h.sandbox.faults().clear();

    // Latency over HTTP control.
    let rule = json!({"path_prefix": "/ping", "latency_ms": 150});
    assert_eq!(h.post(&h.marathon("/_sandbox/faults"), &rule).await.status, StatusCode::NO_CONTENT);
    let started = Instant::now();
    h.get(&h.marathon("/ping")).await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    h.delete(&h.marathon("/_sandbox/faults")).await;

    h.sandbox.faults().add(FaultRule::deployment("/bad", DeploymentOutcome::Fail));
    h.sandbox.faults().add(FaultRule::deployment("/stuck", DeploymentOutcome::NeverFinish));
    let mut events = h
        .http
        .get(h.marathon("/v2/events?event_type=deployment_failed"))
        .header("Accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    create(&h, json!({"id": "/bad", "cmd": "x"})).await;
    let text = read_events(&mut events, |t| t.contains("deployment_failed")).await;
    assert!(text.contains("event: deployment_failed"));
    let failed = h.app("/bad").await;
    assert_eq!(failed["tasksRunning"], json!(0));
    assert_eq!(failed["lastTaskFailure"]["state"], json!("TASK_FAILED"));
    create(&h, json!({"id": "/stuck", "cmd": "x"})).await;
    // A deployment started after it, of the same length, ends: the stuck one would
    // have ended by then too.
    create(&h, json!({"id": "/after-stuck", "cmd": "x"})).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let list = loop {
        let list = h.get(&h.marathon("/v2/deployments")).await.json();
        if !list.to_string().contains("/after-stuck") {
            break list;
        }
        assert!(Instant::now() < deadline, "the later deployment never ended: {list}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["affectedApps"], json!(["/stuck"]), "a never-finishing deployment stays");
    assert_eq!(h.app("/stuck").await["tasksStaged"], json!(1));
}

#[tokio::test]
async fn seed_snapshot_and_restore() {
    let seed = Seed { apps: vec![json!({"id": "/seeded", "cmd": "x", "instances": 2})], jobs: vec![] };
    let h = harness::start_with(SandboxConfig {
        seed: Some(seed),
        deployment_duration: harness::DEPLOYMENT,
        ..SandboxConfig::default()
    })
    .await;
    let app = h.app("/seeded").await;
    assert_eq!((app["tasksRunning"].clone(), app["deployments"].clone()), (json!(2), json!([])));
    assert_eq!(app["portDefinitions"][0]["port"], json!(10000));
    let snapshot = h.get(&h.marathon("/_sandbox/state")).await.json();
    h.delete(&h.marathon("/v2/apps/seeded")).await;
    h.settle().await;
    assert_eq!(h.put(&h.marathon("/_sandbox/state"), &snapshot).await.status, StatusCode::NO_CONTENT);
    let back = h.app("/seeded").await;
    assert_eq!(
        (back["version"].clone(), back["versionInfo"].clone()),
        (app["version"].clone(), app["versionInfo"].clone())
    );
    let bad_seed =
        h.post(&h.marathon("/_sandbox/seed"), &json!({"apps": [{"id": "/Bad", "cmd": "x"}]})).await;
    assert_eq!(bad_seed.status, StatusCode::BAD_REQUEST);
}

/// Speed is `make bench`'s to measure (BENCHMARKS.md), not a timed test's: this checks that
/// a 10k-app listing is whole, stable and served twice the same.
#[tokio::test]
async fn ten_thousand_apps_list_in_full() {
    let apps: Vec<Value> = (0..10_000).map(|i| json!({"id": format!("/bench/app-{i}"), "cmd": "sleep 1000", "labels": {"MESOSYNC_OWNER": "bench"}})).collect();
    let jobs: Vec<Value> = (0..5_000).map(|i| json!({"name": format!("job-{i}"), "command": "true", "schedule": "R/2040-01-01T00:00:00Z/PT1H"})).collect();
    let h =
        harness::start_with(SandboxConfig { seed: Some(Seed { apps, jobs }), ..SandboxConfig::default() })
            .await;
    let first = h.get(&h.marathon("/v2/apps")).await;
    let second = h.get(&h.marathon("/v2/apps")).await;
    assert_eq!(second.json()["apps"].as_array().unwrap().len(), 10_000);
    assert_eq!(first.text, second.text);
    let last = h.app("/bench/app-9999").await;
    assert_eq!(last["portDefinitions"][0]["port"], json!(19999));
    let jobs = h.get(&h.chronos("/scheduler/jobs")).await.json();
    assert_eq!(jobs.as_array().unwrap().len(), 5_000);
}

#[tokio::test]
async fn sending_version_rolls_back() {
    let h = harness::start().await;
    create(&h, json!({"id": "/v", "cmd": "one"})).await;
    h.settle().await;
    let first = h.app("/v").await["version"].clone();
    h.put(&h.marathon("/v2/apps/v"), &json!({"cmd": "two"})).await;
    h.settle().await;
    let versions = h.get(&h.marathon("/v2/apps/v/versions")).await.json();
    assert_eq!(versions["versions"].as_array().unwrap().len(), 2);
    assert_eq!(versions["versions"][1], first);
    let old = h.get(&h.marathon(&format!("/v2/apps/v/versions/{}", first.as_str().unwrap()))).await.json();
    assert_eq!(old["cmd"], json!("one"));
    // Echoing `version` back is a rollback, whatever else the body says.
    let rollback = h.put(&h.marathon("/v2/apps/v"), &json!({"cmd": "three", "version": first})).await;
    assert_eq!(rollback.status, StatusCode::OK);
    h.settle().await;
    assert_eq!(h.app("/v").await["cmd"], json!("one"));
    let unknown = h.put(&h.marathon("/v2/apps/v"), &json!({"version": "2001-01-01T00:00:00.000Z"})).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_sandbox_command_serves_until_sigterm() {
    let (mut child, marathon, chronos) = harness::spawn_sandbox(&["--chronos-version", "3"]).await;
    let http = reqwest::Client::new();
    assert_eq!(http.get(format!("{marathon}/ping")).send().await.unwrap().text().await.unwrap(), "pong");
    let jobs = http.get(format!("{chronos}/v1/scheduler/jobs")).send().await.unwrap();
    assert_eq!(jobs.status(), StatusCode::OK, "--chronos-version 3 serves /v1");
    let controls = http.get(format!("{marathon}/_sandbox/requests")).send().await.unwrap();
    assert_eq!(controls.status(), StatusCode::INTERNAL_SERVER_ERROR, "controls are off without --controls");
    assert_eq!(controls.text().await.unwrap(), r#"{"message":"URI not found"}"#);

    let pid = child.id().expect("running").to_string();
    let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
    assert!(killed.success());
    let status =
        tokio::time::timeout(Duration::from_secs(10), child.wait()).await.expect("exits").expect("status");
    assert!(status.success(), "exit 0 on SIGTERM, got {status:?}");
}

fn group_apps(group: &Value, out: &mut Vec<Value>) {
    out.extend(group["apps"].as_array().cloned().unwrap_or_default());
    for sub in group["groups"].as_array().cloned().unwrap_or_default() {
        group_apps(&sub, out);
    }
}

#[tokio::test]
async fn the_group_sample_apps_are_accepted_one_by_one() {
    let h = harness::start().await;
    let group: Value = serde_json::from_str(&harness::reference("marathon/group.json")).unwrap();
    let mut apps = Vec::new();
    group_apps(&group, &mut apps);
    assert_eq!(apps.len(), 3);
    for app in &apps {
        create(&h, app.clone()).await;
    }
    h.settle().await;
    for sent in &apps {
        let id = sent["id"].as_str().unwrap();
        let read = h.app(id).await;
        assert_ne!(read["version"], sent["version"], "a POST mints its own version");
        assert!(read["container"]["docker"].get("network").is_none());
        assert!(read.get("uris").is_none() && read.get("ports").is_none());
        if read["networks"] == json!([{"mode": "host"}]) {
            let defined: Vec<Value> =
                read["portDefinitions"].as_array().unwrap().iter().map(|d| d["port"].clone()).collect();
            assert_eq!(&defined, sent["ports"].as_array().unwrap(), "{id}: fixed service ports are kept");
            assert!(read["portDefinitions"].as_array().unwrap().iter().all(|d| d.get("name").is_none()));
        }
    }
    let registry = h.app("/tools/docker/registry").await;
    assert_eq!(registry["networks"], json!([{"mode": "container/bridge"}]));
    assert!(registry.get("portDefinitions").is_none(), "bridge apps have no port definitions");
    assert_eq!(
        registry["container"]["portMappings"],
        json!([{"containerPort": 5000, "hostPort": 0, "protocol": "tcp", "servicePort": 5000}])
    );
    let oauth = h.app("/tools/oauth-server").await;
    assert_eq!(oauth["upgradeStrategy"], json!({"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.0}));
    assert_eq!(oauth["healthChecks"][0]["portIndex"], json!(0));
    assert_eq!(oauth["healthChecks"][0]["delaySeconds"], json!(15));
}

#[tokio::test]
async fn responses_have_the_reference_shapes() {
    let h = harness::start().await;
    h.sandbox.set_deployment_duration(Duration::from_secs(30));
    let created =
        create(&h, json!({"id": "/shape", "cmd": "x", "healthChecks": [{"protocol": "HTTP"}]})).await;
    let sample_deployments: Value =
        serde_json::from_str(&harness::reference("marathon/deployments.json")).unwrap();
    let ours = h.get(&h.marathon("/v2/deployments")).await.json();
    assert_eq!(keys(&ours[0]), keys(&sample_deployments[0]));
    assert_eq!(keys(&ours[0]["currentActions"][0]), keys(&sample_deployments[0]["currentActions"][0]));

    let sample_result: Value =
        serde_json::from_str(&harness::reference("marathon/deployments_result.json")).unwrap();
    let id = created["deployments"][0]["id"].as_str().unwrap();
    h.sandbox.set_deployment_duration(harness::DEPLOYMENT);
    let result = h.delete(&h.marathon(&format!("/v2/deployments/{id}"))).await.json();
    let mut ours_keys = keys(&result);
    let mut sample_keys = keys(&sample_result);
    ours_keys.sort_unstable();
    sample_keys.sort_unstable();
    assert_eq!(ours_keys, sample_keys);

    create(&h, json!({"id": "/task-shape", "cmd": "x"})).await;
    h.settle().await;
    let sample_tasks: Value = serde_json::from_str(&harness::reference("marathon/app_tasks.json")).unwrap();
    let tasks = h.get(&h.marathon("/v2/apps/task-shape/tasks")).await.json();
    for key in keys(&sample_tasks["tasks"][0]) {
        if !["region", "zone"].contains(&key) {
            assert!(tasks["tasks"][0].get(key).is_some(), "task field {key} missing: {tasks}");
        }
    }
    let sample_info: Value = serde_json::from_str(&harness::reference("marathon/info.json")).unwrap();
    let info = h.get(&h.marathon("/v2/info")).await.json();
    assert_eq!(keys(&info), keys(&sample_info));

    // The SSE sample: same frame layout and the same fields per event type.
    let sample_events = harness::reference("marathon/events.txt");
    let sample_frames = frames(sample_events.trim_end_matches('\n'));
    let mut stream =
        h.http.get(h.marathon("/v2/events")).header("Accept", "text/event-stream").send().await.unwrap();
    create(&h, json!({"id": "/evshape", "cmd": "x"})).await;
    let text = read_events(&mut stream, |t| t.contains("event: status_update_event")).await;
    let ours = frames(&text);
    for (name, sample) in &sample_frames {
        let mine = ours.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no {name} frame"));
        for key in keys(sample) {
            assert!(mine.1.get(key).is_some(), "{name}: field {key} missing in {}", mine.1);
        }
    }
}

#[tokio::test]
async fn port_index_appears_only_where_marathon_fills_it() {
    let h = harness::start().await;
    let desired = json!({"id": "/pi", "cmd": "x", "healthChecks": [{"protocol": "HTTP", "path": "/health"}]});
    create(&h, desired.clone()).await;
    h.settle().await;
    let posted = h.app("/pi").await;
    assert!(posted["healthChecks"][0].get("portIndex").is_none());
    // A full PUT of the same definition is a no-op: nothing fills portIndex.
    h.put(&h.marathon("/v2/apps/pi?partialUpdate=false"), &desired).await;
    h.settle().await;
    let replaced = h.app("/pi").await;
    assert_eq!(replaced["version"], posted["version"]);
    assert!(replaced["healthChecks"][0].get("portIndex").is_none());
    // The next partial PUT merges the stored port definitions, so portIndex appears and
    // even a scale becomes a restart (DESIGN §4).
    h.put(&h.marathon("/v2/apps/pi"), &json!({"instances": 2})).await;
    h.settle().await;
    let scaled = h.app("/pi").await;
    assert_eq!(scaled["healthChecks"][0]["portIndex"], json!(0));
    assert_eq!(scaled["versionInfo"]["lastConfigChangeAt"], scaled["version"]);
}
