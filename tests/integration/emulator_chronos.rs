//! The emulated Chronos checked over HTTP against DESIGN §5, for each API generation.

use std::time::Duration;

use mesosync::emulator::ChronosVersion;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{self, Harness};

const FAR_START: &str = "2030-01-01T00:00:00Z";

fn keys(value: &Value) -> Vec<&str> {
    value.as_object().expect("an object").keys().map(String::as_str).collect()
}

fn scheduled(name: &str) -> Value {
    json!({"name": name, "command": "echo hi", "schedule": format!("R5/{FAR_START}/PT1H"), "owner": "ops@example.com"})
}

/// POST to a 2.x server.
async fn post(h: &Harness, path: &str, body: &Value) -> StatusCode {
    h.post(&h.chronos(&format!("/scheduler{path}")), body).await.status
}

async fn jobs(h: &Harness, prefix: &str) -> Vec<Value> {
    let answer = h.get(&h.chronos(&format!("{prefix}/jobs"))).await;
    assert_eq!(answer.status, StatusCode::OK);
    answer.json().as_array().unwrap().clone()
}

async fn job(h: &Harness, prefix: &str, name: &str) -> Value {
    jobs(h, prefix)
        .await
        .into_iter()
        .find(|j| j["name"] == json!(name))
        .unwrap_or_else(|| panic!("no job {name}"))
}

#[tokio::test]
async fn v2_4_reports_every_field_in_order() {
    let h = harness::start_chronos(ChronosVersion::V2_4).await;
    assert_eq!(post(&h, "/iso8601", &scheduled("j1")).await, StatusCode::NO_CONTENT);
    let listed = jobs(&h, "/scheduler").await;
    assert_eq!(
        keys(&listed[0]),
        [
            "name",
            "command",
            "shell",
            "epsilon",
            "executor",
            "executorFlags",
            "retries",
            "owner",
            "ownerName",
            "description",
            "async",
            "successCount",
            "errorCount",
            "lastSuccess",
            "lastError",
            "cpus",
            "disk",
            "mem",
            "disabled",
            "softError",
            "dataProcessingJobType",
            "errorsSinceLastSuccess",
            "uris",
            "environmentVariables",
            "arguments",
            "highPriority",
            "runAsUser",
            "constraints",
            "schedule",
            "scheduleTimeZone"
        ]
    );
    let j = &listed[0];
    assert_eq!(
        (j["shell"].clone(), j["epsilon"].clone(), j["retries"].clone()),
        (json!(true), json!("PT60S"), json!(2))
    );
    assert_eq!(
        (j["cpus"].clone(), j["disk"].clone(), j["mem"].clone()),
        (json!(0.1), json!(256.0), json!(128.0))
    );
    assert_eq!(j["runAsUser"], json!("root"));
    let raw = h.get(&h.chronos("/scheduler/jobs")).await.text;
    assert!(raw.contains(r#""disk":256.0,"mem":128.0"#), "{raw}");
    // 2.4 has no leader endpoint and no /v1 paths.
    assert_eq!(h.get(&h.chronos("/scheduler/leader")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(h.get(&h.chronos("/v1/scheduler/jobs")).await.status, StatusCode::NOT_FOUND);
    // A dependent job reports parents instead of schedule.
    assert_eq!(
        post(&h, "/dependency", &json!({"name": "child", "command": "x", "parents": ["j1"]})).await,
        StatusCode::NO_CONTENT
    );
    let child = job(&h, "/scheduler", "child").await;
    assert_eq!(keys(&child).last(), Some(&"parents"));
    assert!(child.get("schedule").is_none() && child.get("scheduleTimeZone").is_none());
}

#[tokio::test]
async fn v2_5_adds_task_info_data_fetch_and_leader() {
    let h = harness::start_chronos(ChronosVersion::V2_5).await;
    assert_eq!(post(&h, "/iso8601", &scheduled("j.dotted")).await, StatusCode::NO_CONTENT, "2.5 allows dots");
    let j = job(&h, "/scheduler", "j.dotted").await;
    assert_eq!((j["taskInfoData"].clone(), j["fetch"].clone()), (json!(""), json!([])));
    assert!(j.get("epsilon").is_some() && j.get("concurrent").is_none());
    let leader = h.get(&h.chronos("/scheduler/leader")).await.json();
    assert_eq!(leader["leader"], json!(h.sandbox.chronos_url().trim_start_matches("http://")));
    // 2.5 takes PUT on the create paths like 2.4 (2.5.0 / 2.5.1 Iso8601JobResource.put).
    let put = h.put(&h.chronos("/scheduler/iso8601"), &scheduled("p")).await;
    assert_eq!(put.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn v3_serves_v1_paths_with_its_own_field_set() {
    let h = harness::start_chronos(ChronosVersion::V3).await;
    assert_eq!(h.post(&h.chronos("/scheduler/iso8601"), &scheduled("j")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        h.post(&h.chronos("/v1/scheduler/iso8601"), &scheduled("j")).await.status,
        StatusCode::NO_CONTENT
    );
    let put = h.put(&h.chronos("/v1/scheduler/iso8601"), &scheduled("j")).await;
    assert_eq!(put.status, StatusCode::METHOD_NOT_ALLOWED, "3.x takes only POST");
    let j = job(&h, "/v1/scheduler", "j").await;
    assert!(j.get("epsilon").is_none() && j.get("async").is_none());
    assert_eq!(
        (
            j["taskInfoData"].clone(),
            j["fetch"].clone(),
            j["concurrent"].clone(),
            j["maxCompletionTime"].clone()
        ),
        (json!(""), json!([]), json!(false), json!(0))
    );
    let single = h.get(&h.chronos("/v1/scheduler/job/j")).await;
    assert_eq!(single.json(), j);
    assert_eq!(h.get(&h.chronos("/v1/scheduler/leader")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn resources_default_and_unknown_fields_are_dropped() {
    let h = harness::start().await;
    let body = json!({"name": "r", "command": "x", "schedule": format!("R/{FAR_START}/P1D"), "cpus": 0, "mem": "512", "bogus": 1, "container": {"type": "DOCKER", "image": "i"}});
    assert_eq!(post(&h, "/iso8601", &body).await, StatusCode::NO_CONTENT);
    let j = job(&h, "/scheduler", "r").await;
    assert_eq!(
        (j["cpus"].clone(), j["mem"].clone(), j["disk"].clone()),
        (json!(0.1), json!(512.0), json!(256.0))
    );
    assert!(j.get("bogus").is_none());
    assert_eq!(j["container"], json!({"type": "DOCKER", "image": "i"}));
}

#[tokio::test]
async fn a_post_replaces_the_whole_job_and_resets_statistics() {
    let h = harness::start().await;
    let mut body = scheduled("rep");
    body["description"] = json!("first");
    post(&h, "/iso8601", &body).await;
    assert_eq!(
        h.put(&h.chronos("/scheduler/job/rep"), &json!({})).await.status,
        StatusCode::NO_CONTENT,
        "run now"
    );
    let ran = job(&h, "/scheduler", "rep").await;
    assert_eq!(ran["successCount"], json!(1));
    assert_ne!(ran["lastSuccess"], json!(""));
    post(&h, "/iso8601", &scheduled("rep")).await;
    let replaced = job(&h, "/scheduler", "rep").await;
    assert_eq!((replaced["successCount"].clone(), replaced["lastSuccess"].clone()), (json!(0), json!("")));
    assert_eq!(replaced["description"], json!(""), "nothing is merged");
}

#[tokio::test]
async fn unknown_jobs_and_empty_parents() {
    for version in [ChronosVersion::V2_4, ChronosVersion::V3] {
        let h = harness::start_chronos(version).await;
        let prefix = version.prefix();
        assert_eq!(h.delete(&h.chronos(&format!("{prefix}/job/nope"))).await.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            h.put(&h.chronos(&format!("{prefix}/job/nope")), &json!({})).await.status,
            StatusCode::BAD_REQUEST
        );
        let empty = h
            .post(
                &h.chronos(&format!("{prefix}/dependency")),
                &json!({"name": "c", "command": "x", "parents": []}),
            )
            .await;
        assert_eq!(empty.status, StatusCode::INTERNAL_SERVER_ERROR, "{version:?}");
        h.post(&h.chronos(&format!("{prefix}/iso8601")), &scheduled("gone")).await;
        assert_eq!(h.delete(&h.chronos(&format!("{prefix}/job/gone"))).await.status, StatusCode::NO_CONTENT);
        assert!(jobs(&h, prefix).await.is_empty());
    }
}

#[tokio::test]
async fn missing_parents_differ_by_version() {
    let h = harness::start_chronos(ChronosVersion::V2_4).await;
    let orphan = json!({"name": "j2", "command": "x", "parents": ["j1"]});
    let refused = h.post(&h.chronos("/scheduler/dependency"), &orphan).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.text, "requirement failed: Job j2 does not have all parents defined!");

    let h = harness::start_chronos(ChronosVersion::V3).await;
    assert_eq!(h.post(&h.chronos("/v1/scheduler/dependency"), &orphan).await.status, StatusCode::NO_CONTENT);
    assert!(jobs(&h, "/v1/scheduler").await.is_empty(), "hidden until the parent exists");
    h.post(&h.chronos("/v1/scheduler/iso8601"), &scheduled("j1")).await;
    let names: Vec<Value> = jobs(&h, "/v1/scheduler").await.into_iter().map(|j| j["name"].clone()).collect();
    assert_eq!(names, [json!("j1"), json!("j2")]);
}

#[tokio::test]
async fn names_and_error_bodies_per_version() {
    let h = harness::start_chronos(ChronosVersion::V2_4).await;
    let dotted = h.post(&h.chronos("/scheduler/iso8601"), &scheduled("a.b")).await;
    assert_eq!(dotted.status, StatusCode::BAD_REQUEST);
    assert!(dotted.text.starts_with("requirement failed: "), "{}", dotted.text);
    assert_eq!(
        h.post(&h.chronos("/scheduler/iso8601"), &scheduled("with space#1")).await.status,
        StatusCode::NO_CONTENT
    );
    let mut bad = scheduled("bad");
    bad["schedule"] = json!("every hour");
    let form = h
        .http
        .post(h.chronos("/scheduler/iso8601"))
        .header("Content-Type", "text/plain")
        .body(scheduled("t").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let bad_schedule = h.post(&h.chronos("/scheduler/iso8601"), &bad).await;
    assert_eq!((bad_schedule.status, bad_schedule.text.as_str()), (StatusCode::BAD_REQUEST, ""));

    let h = harness::start_chronos(ChronosVersion::V3).await;
    let spaced = h.post(&h.chronos("/v1/scheduler/iso8601"), &scheduled("with space")).await;
    assert_eq!(spaced.status, StatusCode::BAD_REQUEST);
    let body = spaced.json();
    assert_eq!(keys(&body), ["message", "status"]);
    assert_eq!(body["status"], json!("Bad Request"));
    let bad_schedule = h.post(&h.chronos("/v1/scheduler/iso8601"), &bad).await.json();
    assert_eq!(
        bad_schedule,
        json!({"message": "Cannot parse schedule 'every hour'", "status": "Bad Request"})
    );
}

#[tokio::test]
async fn schedules_are_rewritten_as_jobs_run() {
    let h = harness::start().await;
    let now = h.sandbox.clock().now();
    let start = now + chrono::Duration::minutes(10);
    let start_text = start.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let body = json!({"name": "tick", "command": "x", "schedule": format!("R2/{start_text}/PT1H")});
    post(&h, "/iso8601", &body).await;
    post(&h, "/dependency", &json!({"name": "after-tick", "command": "x", "parents": ["tick"]})).await;
    assert_eq!(
        job(&h, "/scheduler", "tick").await["schedule"],
        json!(format!("R2/{start_text}/PT1H")),
        "kept as sent until it runs"
    );

    let advance = h.post(&h.chronos("/_sandbox/clock/advance"), &json!({"seconds": 11 * 60})).await;
    assert_eq!(advance.status, StatusCode::OK);
    let ran = job(&h, "/scheduler", "tick").await;
    let next = (start + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%S.000Z").to_string();
    assert_eq!(ran["schedule"], json!(format!("R1/{next}/PT1H")));
    assert_eq!((ran["successCount"].clone(), ran["disabled"].clone()), (json!(1), json!(false)));
    assert_ne!(ran["lastSuccess"], json!(""));
    assert_eq!(
        job(&h, "/scheduler", "after-tick").await["successCount"],
        json!(1),
        "dependants run after their parent"
    );

    h.sandbox.advance_clock(Duration::from_secs(3600));
    let done = job(&h, "/scheduler", "tick").await;
    assert_eq!((done["successCount"].clone(), done["disabled"].clone()), (json!(2), json!(true)));
    assert!(done["schedule"].as_str().unwrap().starts_with("R0/"));
}

#[tokio::test]
async fn deleting_parents_rewires_children() {
    let h = harness::start().await;
    post(&h, "/iso8601", &scheduled("root")).await;
    post(&h, "/dependency", &json!({"name": "middle", "command": "x", "parents": ["root"]})).await;
    post(&h, "/dependency", &json!({"name": "leaf", "command": "x", "parents": ["middle"]})).await;
    assert_eq!(h.delete(&h.chronos("/scheduler/job/middle")).await.status, StatusCode::NO_CONTENT);
    assert_eq!(
        job(&h, "/scheduler", "leaf").await["parents"],
        json!(["root"]),
        "re-parented to the grandparent"
    );
    h.put(&h.chronos("/scheduler/job/leaf"), &json!({})).await;
    // A second child of the scheduled root, with another parent and fields that the
    // conversion does not copy (JobManagementResource.delete builds a ScheduleBasedJob
    // from a fixed list of fields).
    post(&h, "/iso8601", &scheduled("other")).await;
    let rich = json!({"name": "rich", "command": "x", "parents": ["root", "other"], "description": "d [mesosync:x]",
        "ownerName": "ops", "runAsUser": "nobody", "retries": 5, "arguments": ["a"],
        "environmentVariables": [{"name": "A", "value": "1"}]});
    post(&h, "/dependency", &rich).await;
    assert_eq!(h.delete(&h.chronos("/scheduler/job/root")).await.status, StatusCode::NO_CONTENT);
    let leaf = job(&h, "/scheduler", "leaf").await;
    assert!(leaf.get("parents").is_none());
    assert_eq!(leaf["schedule"], json!(format!("R5/{FAR_START}/PT1H")), "takes the parent's schedule");
    assert_eq!(leaf["successCount"], json!(1), "statistics are copied");
    let rich = job(&h, "/scheduler", "rich").await;
    assert!(rich.get("parents").is_none(), "converted despite its other parent: {rich}");
    assert_eq!(rich["schedule"], json!(format!("R5/{FAR_START}/PT1H")));
    assert_eq!(rich["retries"], json!(5), "copied");
    for (field, default) in [
        ("description", json!("")),
        ("ownerName", json!("")),
        ("runAsUser", json!("")),
        ("arguments", json!([])),
        ("environmentVariables", json!([])),
    ] {
        assert_eq!(rich[field], default, "{field} is not copied by the conversion");
    }
}

#[tokio::test]
async fn search_defaults_to_ten_and_graphs_show_edges() {
    let h = harness::start().await;
    for i in 0..12 {
        post(&h, "/iso8601", &scheduled(&format!("job-{i:02}"))).await;
    }
    post(&h, "/dependency", &json!({"name": "child", "command": "x", "parents": ["job-00"]})).await;
    let found = h.get(&h.chronos("/scheduler/jobs/search?name=JOB")).await.json();
    assert_eq!(found.as_array().unwrap().len(), 10, "the search endpoint caps at 10 by default");
    let all = h.get(&h.chronos("/scheduler/jobs/search?name=job&limit=50")).await.json();
    assert_eq!(all.as_array().unwrap().len(), 12);
    assert_eq!(jobs(&h, "/scheduler").await.len(), 13);
    let dot = h.get(&h.chronos("/scheduler/graph/dot")).await.text;
    assert!(dot.starts_with("digraph") && dot.contains("\"job-00\" -> \"child\""), "{dot}");
    let csv = h.get(&h.chronos("/scheduler/graph/csv")).await.text;
    assert!(csv.contains("link,job-00,child"), "{csv}");
    let log = h.sandbox.requests();
    assert!(log.iter().any(|r| r.method == "GET" && r.path == "/scheduler/graph/csv" && r.status == 200));
}

#[tokio::test]
async fn a_past_start_skips_missed_runs_per_version() {
    for (version, runs, left) in [(ChronosVersion::V2_4, 0, 9), (ChronosVersion::V3, 1, 9)] {
        let h = harness::start_chronos(version).await;
        let now = h.sandbox.clock().now();
        let whole = now - chrono::Duration::nanoseconds(i64::from(chrono::Timelike::nanosecond(&now)));
        let start = whole - chrono::Duration::minutes(10 * 60 + 30);
        let body = json!({"name": "past", "command": "x", "schedule": format!("R20/{}/PT1H", start.format("%Y-%m-%dT%H:%M:%SZ"))});
        let prefix = version.prefix();
        assert_eq!(
            h.post(&h.chronos(&format!("{prefix}/iso8601")), &body).await.status,
            StatusCode::NO_CONTENT
        );
        let j = job(&h, prefix, "past").await;
        let next = (whole + chrono::Duration::minutes(30)).format("%Y-%m-%dT%H:%M:%S.000Z");
        assert_eq!(j["schedule"], json!(format!("R{left}/{next}/PT1H")), "{version:?}");
        assert_eq!(
            j["successCount"],
            json!(runs),
            "{version:?}: 2.x skips runs older than epsilon, 3.x runs the latest"
        );
    }
}

#[tokio::test]
async fn v2_4_takes_put_on_create_paths_and_state_round_trips() {
    let h = harness::start().await;
    assert_eq!(h.put(&h.chronos("/scheduler/iso8601"), &scheduled("p")).await.status, StatusCode::NO_CONTENT);
    let dependent = json!({"name": "d", "command": "x", "parents": ["p"]});
    assert_eq!(h.put(&h.chronos("/scheduler/dependency"), &dependent).await.status, StatusCode::NO_CONTENT);
    h.put(&h.chronos("/scheduler/job/p"), &json!({})).await;
    let before = jobs(&h, "/scheduler").await;
    let snapshot = h.get(&h.chronos("/_sandbox/state")).await.json();
    h.delete(&h.chronos("/scheduler/job/d")).await;
    h.delete(&h.chronos("/scheduler/job/p")).await;
    assert!(jobs(&h, "/scheduler").await.is_empty());
    assert_eq!(h.put(&h.chronos("/_sandbox/state"), &snapshot).await.status, StatusCode::NO_CONTENT);
    assert_eq!(jobs(&h, "/scheduler").await, before);
}
