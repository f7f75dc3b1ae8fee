//! Convergence properties against the emulator (proptest): for random desired / live
//! pairs, one apply makes the diff empty and a second apply writes nothing; fields
//! under `sync.ignore` never cause a write. The pure-core properties (normalize is
//! idempotent, an object has no diff with itself) live in `plan_properties.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

use mesosync::apply::{ApplyOptions, NoProgress};
use mesosync::client::{ChronosClient, Clients, HttpConfig, MarathonClient};
use mesosync::emulator::Sandbox;
use mesosync::plan::PlanOptions;
use mesosync::reconcile::Pipeline;
use mesosync::source::LoadOptions;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::reliability_support::{sandbox, writes};

fn app_spec() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["sleep 100", "sleep 200"]),
        prop::sample::select(vec![0.1, 0.25, 0.5]),
        prop::sample::select(vec![json!(32), json!(64), json!(128.0)]),
        0u32..3,
        prop::collection::btree_map(
            prop::sample::select(vec!["A", "B", "C"]),
            prop::sample::select(vec!["x", "y"]),
            0..3,
        ),
        prop::collection::btree_map(
            prop::sample::select(vec!["team", "tier"]),
            prop::sample::select(vec!["a", "b"]),
            0..2,
        ),
        prop::sample::subsequence(
            vec![json!(["hostname", "UNIQUE"]), json!(["rack", "GROUP_BY", "2"])],
            0..=2,
        ),
        prop::option::of(prop::sample::select(vec![
            json!([{"protocol": "HTTP", "path": "/health"}]),
            json!([{"protocol": "TCP", "gracePeriodSeconds": 30}]),
        ])),
        prop::option::of(prop::sample::select(vec![json!([]), json!([{"port": 0, "name": "http"}])])),
        prop::option::of(prop::sample::select(vec![1, 5])),
        prop::option::of(prop::sample::select(vec![json!([{"uri": "http://repo/a.tgz"}]), json!([])])),
    )
        .prop_map(|(cmd, cpus, mem, instances, env, labels, constraints, hc, ports, backoff, fetch)| {
            let mut spec = json!({"cmd": cmd, "cpus": cpus, "mem": mem, "instances": instances});
            let map = spec.as_object_mut().expect("object");
            if !env.is_empty() {
                map.insert("env".into(), json!(env));
            }
            if !labels.is_empty() {
                map.insert("labels".into(), json!(labels));
            }
            if !constraints.is_empty() {
                map.insert("constraints".into(), Value::Array(constraints));
            }
            for (key, value) in [("healthChecks", hc), ("portDefinitions", ports), ("fetch", fetch)] {
                if let Some(v) = value {
                    map.insert(key.into(), v);
                }
            }
            if let Some(b) = backoff {
                map.insert("backoffSeconds".into(), json!(b));
            }
            spec
        })
}

/// One app of a case: what the manifests say (if anything), what live holds (if
/// anything, and whether mesosync owns it).
#[derive(Clone, Debug)]
struct Pair {
    desired: Option<Value>,
    live: Option<(Value, bool)>,
}

fn pair() -> impl Strategy<Value = Pair> {
    (prop::option::of(app_spec()), prop::option::of((app_spec(), prop::bool::weighted(0.8))))
        .prop_map(|(desired, live)| Pair { desired, live })
}

fn clients(sb: &Sandbox) -> Clients {
    let config = |url: String| {
        let mut c = HttpConfig::new(vec![url]);
        c.request_timeout = Duration::from_secs(5);
        c
    };
    Clients {
        marathon: Some(MarathonClient::new(&config(sb.marathon_url())).expect("client")),
        chronos: Some(ChronosClient::new(&config(sb.chronos_url()), None).expect("client")),
    }
}

fn pipeline(sb: &Sandbox, dir: &std::path::Path) -> Pipeline {
    Pipeline {
        dir: dir.to_path_buf(),
        load: LoadOptions::default(),
        clients: clients(sb),
        plan: PlanOptions { prune: true, allow_empty: true, force_prune: true, ..PlanOptions::default() },
        apply: ApplyOptions {
            poll_interval: Duration::from_millis(20),
            deployment_timeout: Duration::from_secs(10),
            ..ApplyOptions::default()
        },
        on_revision: None,
        caches: Default::default(),
    }
}

/// Create the live side straight through the API and wait for its deployments.
async fn seed_live(sb: &Sandbox, apps: &BTreeMap<String, (Value, bool)>) {
    let http = reqwest::Client::new();
    for (id, (spec, owned)) in apps {
        let mut body = spec.clone();
        body["id"] = json!(id);
        if *owned {
            body["labels"]["MESOSYNC_OWNER"] = json!("mesosync");
        }
        let r = http.post(format!("{}/v2/apps", sb.marathon_url())).json(&body).send().await.expect("POST");
        assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap_or_default());
    }
    for _ in 0..200 {
        let list: Value = http
            .get(format!("{}/v2/deployments", sb.marathon_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if list.as_array().is_some_and(Vec::is_empty) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("seed deployments did not end");
}

fn write_manifests(dir: &std::path::Path, apps: &BTreeMap<String, (Value, Vec<&str>)>) {
    let mut text = String::new();
    for (id, (spec, ignore)) in apps {
        let mut spec = spec.clone();
        spec["id"] = json!(id);
        text.push_str(&format!(
            "---\nkind: MarathonApp\nsync: {{ignore: {}}}\nspec: {spec}\n",
            json!(ignore)
        ));
    }
    std::fs::write(dir.join("apps.yaml"), text).expect("manifests written");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn after_apply_the_diff_is_empty_and_a_second_apply_writes_nothing(pairs in prop::collection::vec(pair(), 1..5)) {
        runtime().block_on(async {
            let sb = sandbox(Duration::from_millis(10)).await;
            let dir = tempfile::tempdir().unwrap();
            let id = |i: usize| format!("/prop/app-{i}");
            let live: BTreeMap<String, (Value, bool)> =
                pairs.iter().enumerate().filter_map(|(i, p)| p.live.clone().map(|l| (id(i), l))).collect();
            let desired: BTreeMap<String, (Value, Vec<&str>)> =
                pairs.iter().enumerate().filter_map(|(i, p)| p.desired.clone().map(|d| (id(i), (d, vec![])))).collect();
            seed_live(&sb, &live).await;
            write_manifests(dir.path(), &desired);
            let p = pipeline(&sb, dir.path());
            let first = p.plan(chrono::Utc::now()).await.expect("plan");
            let report = p.execute(&first.plan, None, None, &NoProgress).await;
            // Unowned apps with a manifest are refused (reported), never written.
            let unowned: Vec<String> = live.iter().filter(|(id, (_, owned))| !owned && desired.contains_key(*id)).map(|(id, _)| id.clone()).collect();
            assert!(report.is_success() || !unowned.is_empty(), "{report}");
            let second = p.plan(chrono::Utc::now()).await.expect("plan");
            let left: Vec<String> = second.plan.actions.iter().filter(|a| a.is_write()).map(|a| format!("{a:?}")).collect();
            assert!(left.is_empty(), "not converged after one apply:\n{}", left.join("\n"));
            sb.reset_requests();
            let again = p.execute(&second.plan, None, None, &NoProgress).await;
            assert!(again.is_success(), "{again}");
            assert_eq!(writes(&sb), Vec::<String>::new(), "a second apply wrote");
            // Unowned live apps are exactly as they were.
            for id in &unowned {
                let app: Value = reqwest::get(format!("{}/v2/apps{id}", sb.marathon_url())).await.unwrap().json().await.unwrap();
                assert!(app["app"]["labels"].get("MESOSYNC_OWNER").is_none(), "{id} was taken over");
            }
            sb.shutdown().await;
        });
    }

    #[test]
    fn ignored_fields_never_cause_a_write(spec in app_spec(), live_instances in 0u32..5, live_env in "[a-z]{1,8}") {
        runtime().block_on(async {
            let sb = sandbox(Duration::from_millis(10)).await;
            let dir = tempfile::tempdir().unwrap();
            // Live differs from the manifest only under the ignored pointers.
            let mut live = spec.clone();
            live["instances"] = json!(live_instances);
            live["env"]["AUTOSCALER_STATE"] = json!(live_env);
            seed_live(&sb, &BTreeMap::from([("/prop/ignored".to_string(), (live, true))])).await;
            let mut desired = spec.clone();
            if let Some(env) = desired.get_mut("env").and_then(Value::as_object_mut) {
                env.remove("AUTOSCALER_STATE");
            }
            write_manifests(
                dir.path(),
                &BTreeMap::from([("/prop/ignored".to_string(), (desired, vec!["/instances", "/env/AUTOSCALER_STATE"]))]),
            );
            sb.reset_requests();
            let p = pipeline(&sb, dir.path());
            let planned = p.plan(chrono::Utc::now()).await.expect("plan");
            let writes_planned: Vec<String> = planned.plan.actions.iter().filter(|a| a.is_write()).map(|a| format!("{a:?}")).collect();
            assert!(writes_planned.is_empty(), "ignored fields planned a write:\n{}", writes_planned.join("\n"));
            let report = p.execute(&planned.plan, None, None, &NoProgress).await;
            assert!(report.is_success(), "{report}");
            assert_eq!(writes(&sb), Vec::<String>::new());
            let app: Value = reqwest::get(format!("{}/v2/apps/prop/ignored", sb.marathon_url())).await.unwrap().json().await.unwrap();
            assert_eq!(app["app"]["instances"], json!(live_instances));
            sb.shutdown().await;
        });
    }
}

/// `loader_fuzz.rs` feeds single texts to `load_text`; this feeds whole mutated
/// directories to `load_dir`, whose cross-file checks (duplicates, references, cycles)
/// the single-text fuzzing never reaches.
fn cross_file_set() -> Vec<(&'static str, String)> {
    vec![
        (
            "a.yaml",
            "kind: MarathonApp\nspec: {id: /f/db, cmd: sleep 1}\n---\nkind: MarathonApp\nspec: {id: /f/api, cmd: sleep 1, dependencies: [/f/db]}\n".into(),
        ),
        (
            "sub/b.yaml",
            "kind: ChronosJob\nsync: {dependsOn: [/f/api]}\nspec: {name: boot, command: \"true\", owner: a@b.c, schedule: R/2030-01-01T00:00:00Z/PT1H}\n---\nkind: ChronosJob\nspec: {name: child, command: \"true\", owner: a@b.c, parents: [boot]}\n".into(),
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn mutated_manifest_directories_load_or_fail_cleanly(
        cuts in prop::collection::vec((0usize..2, 0usize..400, 0usize..12, prop::sample::select(vec![b'/', b':', b'-', b'[', b'\n', b' ', b'a', b'1'])), 1..6)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut files = cross_file_set();
        for (file, at, len, byte) in cuts {
            let bytes = splice(&files[file].1, at, len, byte);
            files[file].1 = bytes;
        }
        for (name, text) in &files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        match mesosync::source::load_dir(dir.path()) {
            Ok(state) => {
                // Whatever loaded is whole: every reference resolves inside the set.
                for object in state.objects() {
                    for dep in object.dependencies() {
                        prop_assert!(state.get(dep).is_some(), "{dep} of {} dangles", object.object);
                    }
                }
            }
            Err(errors) => {
                prop_assert!(!errors.is_empty());
                let root = dir.path().display().to_string();
                for e in errors.iter() {
                    prop_assert!(e.to_string().starts_with(&root), "error outside the dir: {e}");
                }
            }
        }
    }
}

/// `text` with `len` bytes at `at` (wrapped) replaced by `byte`, kept valid UTF-8.
fn splice(text: &str, at: usize, len: usize, byte: u8) -> String {
    let mut bytes = text.as_bytes().to_vec();
    if bytes.is_empty() {
        return String::new();
    }
    let at = at % bytes.len();
    let end = (at + len).min(bytes.len());
    bytes.splice(at..end, std::iter::once(byte));
    String::from_utf8_lossy(&bytes).into_owned()
}
