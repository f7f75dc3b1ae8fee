//! The Marathon app normalizer: Marathon's defaults table (DESIGN §4) and the canonical
//! form both sides are brought to before they are compared.
//!
//! Canonical form: modern fields only (`networks`, `portDefinitions`,
//! `container.portMappings`, `fetch`), every default Marathon fills in present, numbers
//! in one form, sets (`constraints`, `healthChecks`, `dependencies`,
//! `acceptedResourceRoles`) sorted, empty collections absent (except `portDefinitions`,
//! where `[]` and absent differ), keys sorted. Server-set fields are removed from live.
//! It must not decide what gets sent: that is the manifest as written (see `plan`).

use serde_json::{Map, Value, json};

use super::{
    MarathonVersion, NormalizeOptions, canonical_numbers, default_member, drop_empty, sort_keys, sort_set,
};
use crate::model::marathon::canonical_app_id;
// The ownership label is a fact of the model (live state reads it without normalizing).
pub use crate::model::marathon::{OWNER_LABEL, owner, owner_in_labels};

/// Fields only the server writes; never compared, never sent.
pub const SERVER_FIELDS: &[&str] = &[
    "version",
    "versionInfo",
    "tasksStaged",
    "tasksRunning",
    "tasksHealthy",
    "tasksUnhealthy",
    "deployments",
    "tasks",
    "lastTaskFailure",
    "readinessCheckResults",
    "tasksStats",
    "taskStats",
];

/// Fields that are sets, not lists: their order never matters.
pub const SET_FIELDS: &[&str] = &["constraints", "healthChecks", "dependencies", "acceptedResourceRoles"];

/// File extensions Marathon's fetcher extracts when an `uris` entry becomes `fetch`.
const EXTRACTED_EXTENSIONS: &[&str] = &[".tgz", ".tar.gz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz", ".zip"];

/// Marathon's defaults for top-level app fields — the one place they are written down.
/// `portDefinitions`, `networks` and nested defaults depend on other fields and are
/// filled by [`fill_defaults`].
pub fn defaults_table(version: Option<MarathonVersion>) -> Vec<(&'static str, Value)> {
    let v = version.unwrap_or((1, 10, 0));
    // maxLaunchDelaySeconds became 300 in 1.8.180; 1.4.0–1.4.8 and 1.5.0 wrote
    // unreachableStrategy 300/600.
    let max_launch_delay = if v < (1, 8, 180) { 3600 } else { 300 };
    let unreachable = if ((1, 4, 0)..=(1, 4, 8)).contains(&v) || v == (1, 5, 0) {
        json!({"inactiveAfterSeconds": 300, "expungeAfterSeconds": 600})
    } else {
        json!({"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0})
    };
    vec![
        ("cpus", json!(1)),
        ("mem", json!(128)),
        ("disk", json!(0)),
        ("gpus", json!(0)),
        ("instances", json!(1)),
        ("backoffSeconds", json!(1)),
        ("backoffFactor", json!(1.15)),
        ("maxLaunchDelaySeconds", json!(max_launch_delay)),
        ("executor", json!("")),
        ("requirePorts", json!(false)),
        ("killSelection", json!("YOUNGEST_FIRST")),
        ("upgradeStrategy", json!({"minimumHealthCapacity": 1, "maximumOverCapacity": 1})),
        ("unreachableStrategy", unreachable),
        ("role", json!("*")),
        ("labels", json!({})),
    ]
}

/// Health-check defaults (Marathon's `HealthCheck` RAML).
const HEALTH_CHECK_DEFAULTS: &[(&str, i64)] = &[
    ("gracePeriodSeconds", 300),
    ("intervalSeconds", 60),
    ("maxConsecutiveFailures", 3),
    ("timeoutSeconds", 20),
    ("delaySeconds", 15),
];

/// The desired app in canonical form, with the ownership label of `opts.instance`.
pub fn desired_app(spec: &Value, opts: &NormalizeOptions) -> Value {
    let mut app = spec.clone();
    with_owner_label(&mut app, &opts.instance);
    canonical_app_owned(app, opts.marathon_version)
}

/// The live app (as `GET /v2/apps` reports it) in canonical form, server fields removed.
pub fn live_app(live: &Value, opts: &NormalizeOptions) -> Value {
    let mut app = live.clone();
    if let Value::Object(map) = &mut app {
        for field in SERVER_FIELDS {
            map.shift_remove(*field);
        }
        if let Some(Value::Object(labels)) = map.get_mut("labels") {
            labels.shift_remove(SECRETS_LABEL);
        }
    }
    canonical_app_owned(app, opts.marathon_version)
}

/// The label that records which values of an app were written as secret
/// (`sync.secret` pointers into the body as sent, a JSON array). Marathon keeps the
/// app as posted, so after its manifest is deleted a prune can still mask them. It is
/// written with every write and never compared (both sides drop it), so adding or
/// changing it alone never restarts an app.
pub const SECRETS_LABEL: &str = "MESOSYNC_SENSITIVE";

/// Record `pointers` in the app's [`SECRETS_LABEL`] (nothing when there are none).
pub fn with_secret_pointers(app: &mut Value, pointers: &[String]) {
    if pointers.is_empty() {
        return;
    }
    if let Value::Object(map) = app {
        let labels = map.entry("labels").or_insert_with(|| json!({}));
        if let Value::Object(labels) = labels {
            labels.insert(SECRETS_LABEL.to_string(), Value::String(json!(pointers).to_string()));
        }
    }
}

/// The pointers a live app's [`SECRETS_LABEL`] records.
pub fn recorded_secret_pointers(live: &Value) -> Vec<String> {
    live.pointer(&format!("/labels/{SECRETS_LABEL}"))
        .and_then(Value::as_str)
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default()
}

/// Add `MESOSYNC_OWNER: <instance>` to the app's labels.
pub fn with_owner_label(app: &mut Value, instance: &str) {
    if let Value::Object(map) = app {
        let labels = map.entry("labels").or_insert_with(|| json!({}));
        if !labels.is_object() {
            *labels = json!({});
        }
        if let Value::Object(labels) = labels {
            labels.insert(OWNER_LABEL.to_string(), Value::String(instance.to_string()));
        }
    }
}

/// Both-sides fix-ups done after normalizing: a desired `port: 0` (or a `servicePort`
/// of 0) means "assign me one" and matches whatever port live holds at that index, so
/// the live port is copied into the desired form.
pub fn align_app(desired: &mut Value, live: &Value) {
    for (list, field) in [("/portDefinitions", "port"), ("/container/portMappings", "servicePort")] {
        let Some(live_items) = live.pointer(list).and_then(Value::as_array) else { continue };
        let Some(Value::Array(items)) = desired.pointer_mut(list) else { continue };
        for (item, live_item) in items.iter_mut().zip(live_items) {
            let assigned = item.get(field).and_then(Value::as_u64) == Some(0);
            if let (true, Some(port), Value::Object(map)) = (assigned, live_item.get(field), item) {
                map.insert(field.to_string(), port.clone());
            }
        }
    }
}

/// The canonical form of one app definition (either side).
pub fn canonical_app(app: &Value, version: Option<MarathonVersion>) -> Value {
    canonical_app_owned(app.clone(), version)
}

/// [`canonical_app`] of a copy the caller already made (saves cloning it again).
fn canonical_app_owned(app: Value, version: Option<MarathonVersion>) -> Value {
    let Value::Object(mut map) = app else { return app };
    map.retain(|_, v| !v.is_null());
    translate_deprecated(&mut map);
    if let Some(Value::String(id)) = map.get("id") {
        let id = canonical_app_id(id);
        map.insert("id".into(), Value::String(id));
    }
    canonical_dependencies(&mut map);
    fill_defaults(&mut map, version);
    canonical_constraints(&mut map);
    let mut out = Value::Object(map);
    canonical_numbers(&mut out);
    drop_empty(&mut out, &["portDefinitions"]);
    if let Value::Object(map) = &mut out {
        for field in SET_FIELDS {
            sort_set(map, field);
        }
    }
    sort_keys(&mut out);
    out
}

/// Rewrite the forms Marathon 1.5+ translates itself: `ports`, `uris`,
/// `container.docker.network`, `container.docker.portMappings`, `ipAddress`.
fn translate_deprecated(map: &mut Map<String, Value>) {
    if let Some(ports) = map.shift_remove("ports") {
        if !map.contains_key("portDefinitions") {
            let defs: Vec<Value> = ports
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| json!({"port": p, "protocol": "tcp"}))
                .collect();
            map.insert("portDefinitions".into(), Value::Array(defs));
        }
    }
    if let Some(uris) = map.shift_remove("uris") {
        if !map.contains_key("fetch") {
            let fetch: Vec<Value> = uris
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|uri| {
                    let path = uri.split(['?', '#']).next().unwrap_or(uri).to_ascii_lowercase();
                    let extract = EXTRACTED_EXTENSIONS.iter().any(|ext| path.ends_with(ext));
                    json!({"uri": uri, "extract": extract, "executable": false, "cache": false})
                })
                .collect();
            map.insert("fetch".into(), Value::Array(fetch));
        }
    }
    let ip_address = map.shift_remove("ipAddress");
    let mut docker_network = None;
    if let Some(Value::Object(container)) = map.get_mut("container") {
        if let Some(Value::Object(docker)) = container.get_mut("docker") {
            docker_network = docker.shift_remove("network");
            let mappings = docker.shift_remove("portMappings");
            if let Some(mappings) = mappings.filter(|m| !m.is_null()) {
                if !container.contains_key("portMappings") {
                    container.insert("portMappings".into(), mappings);
                }
            }
        }
    }
    if map.get("networks").is_none_or(Value::is_null) {
        let ip_network = || {
            let mut n = json!({"mode": "container"});
            if let Some(name) = ip_address.as_ref().and_then(|ip| ip.get("networkName")) {
                n["name"] = name.clone();
            }
            if let Some(labels) = ip_address.as_ref().and_then(|ip| ip.get("labels")) {
                n["labels"] = labels.clone();
            }
            n
        };
        let networks = match docker_network.as_ref().and_then(Value::as_str) {
            Some("HOST") => Some(json!([{"mode": "host"}])),
            Some("BRIDGE") => Some(json!([{"mode": "container/bridge"}])),
            Some("USER") => Some(json!([ip_network()])),
            _ if ip_address.as_ref().is_some_and(|ip| !ip.is_null()) => Some(json!([ip_network()])),
            _ => None,
        };
        if let Some(networks) = networks {
            map.insert("networks".into(), networks);
        }
    }
}

/// Dependencies are absolute ids; relative ones are resolved against the app's group.
fn canonical_dependencies(map: &mut Map<String, Value>) {
    let group = map
        .get("id")
        .and_then(Value::as_str)
        .map(|id| id.rsplit_once('/').map(|(g, _)| g.to_string()).unwrap_or_default())
        .unwrap_or_default();
    if let Some(Value::Array(deps)) = map.get_mut("dependencies") {
        for dep in deps.iter_mut() {
            if let Value::String(d) = dep {
                let absolute = if d.starts_with('/') {
                    canonical_app_id(d)
                } else {
                    canonical_app_id(&format!("{group}/{d}"))
                };
                *d = absolute;
            }
        }
    }
}

/// Old Marathon versions write a unary constraint as `[field, UNIQUE, ""]`.
fn canonical_constraints(map: &mut Map<String, Value>) {
    if let Some(Value::Array(constraints)) = map.get_mut("constraints") {
        for c in constraints.iter_mut() {
            if let Value::Array(parts) = c {
                if parts.len() == 3 && parts[2].as_str() == Some("") {
                    parts.pop();
                }
            }
        }
    }
}

fn is_host_networking(map: &Map<String, Value>) -> bool {
    match map.get("networks").and_then(Value::as_array) {
        Some(networks) => networks.iter().all(|n| n.get("mode").and_then(Value::as_str) == Some("host")),
        None => true,
    }
}

/// Whether the app has local persistent volumes (a "resident" app).
fn is_resident(map: &Map<String, Value>) -> bool {
    map.get("container")
        .and_then(|c| c.get("volumes"))
        .and_then(Value::as_array)
        .is_some_and(|v| v.iter().any(|v| v.get("persistent").is_some_and(|p| !p.is_null())))
}

fn fill_defaults(map: &mut Map<String, Value>, version: Option<MarathonVersion>) {
    if is_resident(map) {
        // Resident apps cannot over-provision or be replaced elsewhere, so Marathon
        // gives them their own defaults.
        default_member(
            map,
            "upgradeStrategy",
            json!({"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0}),
        );
        default_member(map, "unreachableStrategy", json!("disabled"));
    }
    for (key, value) in defaults_table(version) {
        default_member(map, key, value.clone());
        // Nested defaults: a partial object gets the missing members.
        if let (Some(Value::Object(present)), Value::Object(defaults)) = (map.get_mut(key), value) {
            for (k, v) in defaults {
                default_member(present, &k, v);
            }
        }
    }
    if map.get("networks").and_then(Value::as_array).is_none_or(Vec::is_empty) {
        map.insert("networks".into(), json!([{"mode": "host"}]));
    }
    if let Some(Value::Array(networks)) = map.get_mut("networks") {
        for n in networks.iter_mut().filter_map(Value::as_object_mut) {
            default_member(n, "mode", json!("container"));
        }
    }
    let host = is_host_networking(map);
    if !map.contains_key("portDefinitions") {
        let defs = if host { json!([{"port": 0, "name": "default", "protocol": "tcp"}]) } else { json!([]) };
        map.insert("portDefinitions".into(), defs);
    }
    if let Some(Value::Array(defs)) = map.get_mut("portDefinitions") {
        for d in defs.iter_mut().filter_map(Value::as_object_mut) {
            default_member(d, "protocol", json!("tcp"));
        }
    }
    if let Some(Value::Array(fetch)) = map.get_mut("fetch") {
        for f in fetch.iter_mut().filter_map(Value::as_object_mut) {
            default_member(f, "extract", json!(true));
            default_member(f, "executable", json!(false));
            default_member(f, "cache", json!(false));
        }
    }
    if let Some(Value::Array(checks)) = map.get_mut("healthChecks") {
        for check in checks.iter_mut().filter_map(Value::as_object_mut) {
            health_check_defaults(check);
        }
    }
    if let Some(Value::Array(checks)) = map.get_mut("readinessChecks") {
        for check in checks.iter_mut().filter_map(Value::as_object_mut) {
            for (key, value) in readiness_check_defaults() {
                default_member(check, key, value);
            }
        }
    }
    if let Some(Value::Object(residency)) = map.get_mut("residency") {
        default_member(residency, "relaunchEscalationTimeoutSeconds", json!(3600));
        default_member(residency, "taskLostBehavior", json!("WAIT_FOREVER"));
    }
    let bridge = map
        .get("networks")
        .and_then(Value::as_array)
        .is_some_and(|n| n.iter().any(|n| n.get("mode").and_then(Value::as_str) == Some("container/bridge")));
    if let Some(Value::Object(container)) = map.get_mut("container") {
        default_member(container, "type", json!("DOCKER"));
        if let Some(Value::Object(docker)) = container.get_mut("docker") {
            default_member(docker, "privileged", json!(false));
            default_member(docker, "forcePullImage", json!(false));
        }
        if let Some(Value::Array(mappings)) = container.get_mut("portMappings") {
            for m in mappings.iter_mut().filter_map(Value::as_object_mut) {
                default_member(m, "containerPort", json!(0));
                default_member(m, "servicePort", json!(0));
                default_member(m, "protocol", json!("tcp"));
                if bridge {
                    default_member(m, "hostPort", json!(0));
                }
            }
        }
    }
}

/// Readiness-check defaults (Marathon's `ReadinessCheck` RAML).
fn readiness_check_defaults() -> [(&'static str, Value); 8] {
    [
        ("name", json!("readinessCheck")),
        ("protocol", json!("HTTP")),
        ("path", json!("/")),
        ("portName", json!("http-api")),
        ("intervalSeconds", json!(30)),
        ("timeoutSeconds", json!(10)),
        ("httpStatusCodesForReady", json!([200])),
        ("preserveLastResponse", json!(false)),
    ]
}

fn health_check_defaults(check: &mut Map<String, Value>) {
    default_member(check, "protocol", json!("HTTP"));
    let protocol = check.get("protocol").and_then(Value::as_str).unwrap_or("HTTP").to_string();
    for (key, value) in HEALTH_CHECK_DEFAULTS {
        default_member(check, key, json!(value));
    }
    if matches!(protocol.as_str(), "HTTP" | "HTTPS" | "TCP") {
        // Marathon reads back 15 whatever was sent for these protocols.
        check.insert("delaySeconds".into(), json!(15));
    }
    if matches!(protocol.as_str(), "HTTP" | "HTTPS") {
        default_member(check, "ignoreHttp1xx", json!(false));
    } else {
        check.shift_remove("ignoreHttp1xx");
    }
    // Marathon writes an ipProtocol on every check; only the Mesos HTTP/TCP checks keep
    // the one sent (1.10 HealthCheckConversion.appHealthCheckWrites), the others read
    // back IPv4 whatever was sent.
    if protocol.starts_with("MESOS_") {
        default_member(check, "ipProtocol", json!("IPv4"));
    } else {
        check.insert("ipProtocol".into(), json!("IPv4"));
    }
    if protocol != "COMMAND" {
        // Absent portIndex and 0 are the same port (DESIGN §4).
        if check.get("port").is_none_or(Value::is_null) {
            default_member(check, "portIndex", json!(0));
        }
    }
}

/// DESIGN §4's example: `{"id":"/x","cmd":"sleep 1","cpus":0.1,"mem":32,"healthChecks":
/// [{"protocol":"HTTP"}]}` as a Marathon 1.10 GET reports it (tests of this module and
/// of `import`).
#[cfg(test)]
pub(crate) fn design_get_example() -> Value {
    json!({"id":"/x","backoffFactor":1.15,"backoffSeconds":1,"cmd":"sleep 1","cpus":0.1,
        "disk":0.0,"executor":"","healthChecks":[{"gracePeriodSeconds":300,"ignoreHttp1xx":false,
        "intervalSeconds":60,"maxConsecutiveFailures":3,"protocol":"HTTP","ipProtocol":"IPv4",
        "timeoutSeconds":20,"delaySeconds":15}],"instances":1,"labels":{},"maxLaunchDelaySeconds":300,
        "mem":32.0,"gpus":0,"networks":[{"mode":"host"}],"portDefinitions":[{"port":10000,
        "name":"default","protocol":"tcp"}],"requirePorts":false,"upgradeStrategy":{
        "minimumHealthCapacity":1.0,"maximumOverCapacity":1.0},"version":"2026-01-01T00:00:00.000Z",
        "versionInfo":{"lastScalingAt":"x","lastConfigChangeAt":"x"},"killSelection":"YOUNGEST_FIRST",
        "unreachableStrategy":{"inactiveAfterSeconds":0,"expungeAfterSeconds":0},"role":"*",
        "tasksStaged":0,"tasksRunning":0,"tasksHealthy":0,"tasksUnhealthy":0,"deployments":[],"tasks":[]})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> NormalizeOptions {
        NormalizeOptions::default()
    }

    #[test]
    fn design_example_get_equals_the_posted_app() {
        let posted =
            json!({"id":"/x","cmd":"sleep 1","cpus":0.1,"mem":32,"healthChecks":[{"protocol":"HTTP"}]});
        let got = design_get_example();
        let mut desired = canonical_app(&posted, None);
        let live = live_app(&got, &opts());
        align_app(&mut desired, &live);
        assert_eq!(desired, live);
    }

    #[test]
    fn deprecated_forms_become_modern() {
        let old = json!({"id":"a","ports":[0],"uris":["http://x/a.tar.gz","http://x/run.sh"],
            "container":{"docker":{"image":"i","network":"BRIDGE","portMappings":[{"containerPort":80}]}}});
        let n = canonical_app(&old, None);
        assert_eq!(n["id"], "/a");
        assert_eq!(n["portDefinitions"], json!([{"port":0,"protocol":"tcp"}]));
        assert_eq!(n["fetch"][0]["extract"], true);
        assert_eq!(n["fetch"][1]["extract"], false);
        assert_eq!(n["networks"], json!([{"mode":"container/bridge"}]));
        assert_eq!(n["container"]["portMappings"][0]["hostPort"], 0);
        assert!(n["container"]["docker"].get("network").is_none());
        assert!(n.get("ports").is_none() && n.get("uris").is_none());
    }

    #[test]
    fn portdefinitions_default_only_for_host_networking_without_ports() {
        assert_eq!(canonical_app(&json!({"id":"/a"}), None)["portDefinitions"][0]["name"], "default");
        assert_eq!(
            canonical_app(&json!({"id":"/a","portDefinitions":[]}), None)["portDefinitions"],
            json!([])
        );
        let bridged = json!({"id":"/a","networks":[{"mode":"container/bridge"}]});
        assert_eq!(canonical_app(&bridged, None)["portDefinitions"], json!([]));
    }

    #[test]
    fn readiness_checks_and_containers_get_their_defaults() {
        let n = canonical_app(
            &json!({"id":"/a","readinessChecks":[{"path":"/ready"}],"container":{"docker":{"image":"i"}}}),
            None,
        );
        assert_eq!(n["readinessChecks"][0]["portName"], "http-api");
        assert_eq!(n["readinessChecks"][0]["path"], "/ready");
        assert_eq!(n["container"]["type"], "DOCKER");
        assert_eq!(n["container"]["docker"]["forcePullImage"], false);
    }

    #[test]
    fn resident_apps_have_their_own_strategies() {
        let app = json!({"id":"/db","container":{"type":"MESOS","volumes":[{"containerPath":"data","mode":"RW","persistent":{"size":10}}]}});
        let n = canonical_app(&app, None);
        assert_eq!(n["upgradeStrategy"], json!({"maximumOverCapacity":0,"minimumHealthCapacity":0.5}));
        assert_eq!(n["unreachableStrategy"], "disabled");
    }

    #[test]
    fn old_versions_have_their_own_defaults() {
        let n = canonical_app(&json!({"id":"/a"}), Some((1, 4, 5)));
        assert_eq!(n["maxLaunchDelaySeconds"], 3600);
        assert_eq!(n["unreachableStrategy"]["expungeAfterSeconds"], 600);
    }

    #[test]
    fn desired_apps_carry_the_owner_label() {
        let n = desired_app(&json!({"id":"/a","labels":{"X":"1"}}), &opts());
        assert_eq!(n["labels"], json!({"MESOSYNC_OWNER":"mesosync","X":"1"}));
        assert_eq!(owner(&n), Some("mesosync"));
    }
}
