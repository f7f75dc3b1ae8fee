//! What Marathon 1.10 does to an app definition on the way in: the JSON reader's type
//! and range checks (422 "Invalid JSON"), the semantic validation (422 "Object is not
//! valid"), the translation of deprecated forms, and the defaults — producing the
//! canonical definition that GET reports. Written from DESIGN §4 and the reference RAML,
//! independently of the controller's normalizer. Service ports are assigned elsewhere
//! ([`super::ports`]); this module is pure.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value, json};

/// One entry of the `details` list of a 422 body.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorDetail {
    /// JSON path, e.g. `/cpus` or `/healthChecks(0)/protocol`.
    pub path: String,
    /// The messages for that path.
    pub errors: Vec<String>,
}

/// Why an app definition was refused (both answered 422).
#[derive(Clone, Debug, PartialEq)]
pub enum AppRejection {
    /// The JSON reader refused a type or range: `{"message":"Invalid JSON",...}`.
    InvalidJson(Vec<ErrorDetail>),
    /// Semantic validation failed: `{"message":"Object is not valid",...}`.
    NotValid(Vec<ErrorDetail>),
}

impl AppRejection {
    /// The response body Marathon writes.
    pub fn body(&self) -> Value {
        let (message, details) = match self {
            AppRejection::InvalidJson(d) => ("Invalid JSON", d),
            AppRejection::NotValid(d) => ("Object is not valid", d),
        };
        let details: Vec<Value> =
            details.iter().map(|d| json!({"path": d.path, "errors": d.errors})).collect();
        json!({"message": message, "details": details})
    }

    /// Prefix every path (batch bodies: `/(0)/cpus`).
    pub fn within(self, prefix: &str) -> AppRejection {
        let shift = |details: Vec<ErrorDetail>| {
            details
                .into_iter()
                .map(|d| ErrorDetail { path: format!("{prefix}{}", d.path), errors: d.errors })
                .collect()
        };
        match self {
            AppRejection::InvalidJson(d) => AppRejection::InvalidJson(shift(d)),
            AppRejection::NotValid(d) => AppRejection::NotValid(shift(d)),
        }
    }
}

impl std::fmt::Display for AppRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.body())
    }
}

/// The message of the cmd/args/container rule (a constant in Marathon).
pub const CMD_ARGS_MESSAGE: &str =
    "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.";
const SECRETS_MESSAGE: &str = "Feature secrets is not enabled. Enable with --enable_features secrets)";
const ID_PATTERN: &str =
    r"^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])|(\.|\.\.)$";

static ID_PART: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])$").unwrap_or_else(|_| unreachable!("constant regex"))
});

/// Make `id` absolute relative to `base` (a group id such as `/` or `/prod`), resolving
/// `.` and `..`, dropping empty segments.
pub fn absolute_id(id: &str, base: &str) -> String {
    let mut segments: Vec<&str> =
        if id.starts_with('/') { Vec::new() } else { base.split('/').filter(|s| !s.is_empty()).collect() };
    for segment in id.split('/').filter(|s| !s.is_empty()) {
        match segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    format!("/{}", segments.join("/"))
}

/// The group an app id lives in (`/a/b` → `/a`).
pub fn parent_group(id: &str) -> String {
    match id.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(cut) => id[..cut].to_owned(),
    }
}

/// Check an absolute app id: every segment is dot-joined `[a-z0-9]` words with inner
/// dashes, and the last segment is not a reserved route name.
pub fn id_problem(absolute: &str) -> Option<String> {
    let segments: Vec<&str> = absolute.split('/').filter(|s| !s.is_empty()).collect();
    let Some(last) = segments.last() else {
        return Some("Path must contain at least one path element".to_owned());
    };
    for segment in &segments {
        if !segment.split('.').all(|part| ID_PART.is_match(part)) {
            return Some(format!("must fully match regular expression '{ID_PATTERN}'"));
        }
    }
    if ["restart", "tasks", "versions"].contains(last) {
        return Some(format!("must not end with '{last}': it is a reserved word"));
    }
    None
}

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Bool,
    Obj,
    Arr,
    StrArr,
    /// A double with an optional minimum.
    Num(Option<f64>),
    /// An integer with an optional minimum.
    Int(Option<i64>),
}

/// The top-level fields Marathon's reader knows, with their types. Anything else is
/// dropped silently, as the real reader does.
const FIELDS: &[(&str, Kind)] = &[
    ("id", Kind::Str),
    ("acceptedResourceRoles", Kind::StrArr),
    ("args", Kind::StrArr),
    ("backoffFactor", Kind::Num(Some(1.0))),
    ("backoffSeconds", Kind::Int(Some(0))),
    ("cmd", Kind::Str),
    ("constraints", Kind::Arr),
    ("container", Kind::Obj),
    ("cpus", Kind::Num(Some(0.001))),
    ("dependencies", Kind::StrArr),
    ("disk", Kind::Num(Some(0.0))),
    ("env", Kind::Obj),
    ("executor", Kind::Str),
    ("executorResources", Kind::Obj),
    ("fetch", Kind::Arr),
    ("healthChecks", Kind::Arr),
    ("check", Kind::Obj),
    ("instances", Kind::Int(Some(0))),
    ("labels", Kind::Obj),
    ("maxLaunchDelaySeconds", Kind::Int(Some(0))),
    ("mem", Kind::Num(Some(0.0))),
    ("gpus", Kind::Int(Some(0))),
    ("ipAddress", Kind::Obj),
    ("networks", Kind::Arr),
    ("ports", Kind::Arr),
    ("portDefinitions", Kind::Arr),
    ("readinessChecks", Kind::Arr),
    ("residency", Kind::Obj),
    ("resourceLimits", Kind::Obj),
    ("requirePorts", Kind::Bool),
    ("secrets", Kind::Obj),
    ("taskKillGracePeriodSeconds", Kind::Int(Some(0))),
    ("upgradeStrategy", Kind::Obj),
    ("uris", Kind::StrArr),
    ("user", Kind::Str),
    ("version", Kind::Str),
    ("killSelection", Kind::Str),
    ("unreachableStrategy", Kind::Obj),
    ("tty", Kind::Bool),
    ("role", Kind::Str),
];

fn type_error(value: &Value, kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Str => (!value.is_string()).then_some("error.expected.jsstring"),
        Kind::Bool => (!value.is_boolean()).then_some("error.expected.jsboolean"),
        Kind::Obj => (!value.is_object()).then_some("error.expected.jsobject"),
        Kind::Arr => (!value.is_array()).then_some("error.expected.jsarray"),
        Kind::StrArr => match value.as_array() {
            None => Some("error.expected.jsarray"),
            Some(items) => (!items.iter().all(Value::is_string)).then_some("error.expected.jsstring"),
        },
        Kind::Num(min) => match value.as_f64() {
            None => Some("error.expected.jsnumber"),
            Some(n) => min.is_some_and(|m| n < m).then_some("error.min"),
        },
        // Play's Int reader: a number outside 32 bits is `error.expected.int`.
        Kind::Int(min) => match value.as_i64().filter(|n| i32::try_from(*n).is_ok()) {
            None if value.is_number() => Some("error.expected.int"),
            None => Some("error.expected.jsnumber"),
            Some(n) => min.is_some_and(|m| n < m).then_some("error.min"),
        },
    }
}

/// Keep only known fields, treat `null` as absent (Play's `readNullable`), and check
/// types and minimums. Returns the cleaned body.
pub fn read_body(body: &Value) -> Result<Map<String, Value>, AppRejection> {
    let Some(object) = body.as_object() else {
        return Err(AppRejection::InvalidJson(vec![ErrorDetail {
            path: "/".into(),
            errors: vec!["error.expected.jsobject".into()],
        }]));
    };
    let mut clean = Map::new();
    let mut details = Vec::new();
    for (name, kind) in FIELDS {
        let Some(value) = object.get(*name) else { continue };
        if value.is_null() {
            continue;
        }
        if let Some(error) = type_error(value, *kind) {
            details.push(ErrorDetail { path: format!("/{name}"), errors: vec![error.to_owned()] });
            continue;
        }
        clean.insert((*name).to_owned(), value.clone());
    }
    check_nested_types(&clean, &mut details);
    if details.is_empty() { Ok(clean) } else { Err(AppRejection::InvalidJson(details)) }
}

fn check_nested_types(clean: &Map<String, Value>, details: &mut Vec<ErrorDetail>) {
    let mut expect = |path: String, ok: bool, error: &str| {
        if !ok {
            details.push(ErrorDetail { path, errors: vec![error.to_owned()] });
        }
    };
    for (list, required) in [
        ("healthChecks", None),
        ("portDefinitions", None),
        ("fetch", Some("uri")),
        ("networks", None),
        ("readinessChecks", None),
    ] {
        for (i, item) in array(clean, list).iter().enumerate() {
            expect(format!("/{list}({i})"), item.is_object(), "error.expected.jsobject");
            if let Some(key) = required {
                expect(
                    format!("/{list}({i})/{key}"),
                    item.get(key).is_some_and(Value::is_string),
                    "error.path.missing",
                );
            }
        }
    }
    for (i, port) in array(clean, "ports").iter().enumerate() {
        expect(
            format!("/ports({i})"),
            port.as_i64().is_some_and(|p| (0..=65535).contains(&p)),
            "error.expected.int",
        );
    }
    for (i, def) in array(clean, "portDefinitions").iter().enumerate() {
        if let Some(port) = def.get("port") {
            expect(
                format!("/portDefinitions({i})/port"),
                port.as_i64().is_some_and(|p| (0..=65535).contains(&p)),
                "error.expected.int",
            );
        }
    }
    for (i, constraint) in array(clean, "constraints").iter().enumerate() {
        let ok = constraint.as_array().is_some_and(|parts| parts.iter().all(Value::is_string));
        expect(format!("/constraints({i})"), ok, "error.expected.jsarray");
    }
    if let Some(labels) = clean.get("labels").and_then(Value::as_object) {
        for (key, value) in labels {
            expect(format!("/labels/{key}"), value.is_string(), "error.expected.jsstring");
        }
    }
    if let Some(env) = clean.get("env").and_then(Value::as_object) {
        for (key, value) in env {
            let ok = value.is_string() || value.get("secret").is_some_and(Value::is_string);
            expect(format!("/env/{key}"), ok, "error.expected.jsstring");
        }
    }
}

fn array<'a>(map: &'a Map<String, Value>, key: &str) -> &'a [Value] {
    map.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

fn non_empty(map: &Map<String, Value>, key: &str) -> bool {
    match map.get(key) {
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::Null) | None => false,
        Some(_) => true,
    }
}

/// How the definition reached the server, for the rules that depend on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// `POST /v2/apps` (or a seed).
    Post,
    /// A `PUT` that creates the app.
    PutCreate,
    /// A `PUT`/`PATCH` of an existing app (partial: merged with the stored one).
    PutUpdate,
}

/// Turn a cleaned body (see [`read_body`]) into the canonical definition GET reports,
/// without status fields and with `port: 0` still unassigned. `id` is the absolute id.
///
/// Validation first (every rule adds its details, in Marathon's order), then the
/// defaults; both read the body's networking [`Shape`] once.
pub fn canonical(
    input: &Map<String, Value>,
    id: &str,
    arrival: Arrival,
) -> Result<Map<String, Value>, AppRejection> {
    let mut problems = Problems::default();
    if let Some(message) = id_problem(id) {
        problems.add("/id", message);
    }
    command_rules(input, &mut problems);
    secret_rules(input, &mut problems);
    deprecated_mix_rules(input, &mut problems);
    let shape = Shape::read(input, &mut problems);
    networking_rules(&shape, &mut problems);
    upgrade_strategy_rules(input, &mut problems);
    health_check_rules(input, &mut problems);
    constraint_rules(input, &mut problems);
    kill_selection_rule(input, &mut problems);
    if !problems.0.is_empty() {
        return Err(AppRejection::NotValid(problems.0));
    }
    // Marathon fills portIndex only for bodies with ports and for apps created by PUT;
    // a partial update merges the stored port definitions, so it fills it too.
    let fill_port_index = shape.uses_ports() || arrival == Arrival::PutCreate;
    Ok(with_defaults(input, id, &shape, fill_port_index))
}

/// The semantic problems found so far (the `details` of a 422 "Object is not valid").
#[derive(Default)]
struct Problems(Vec<ErrorDetail>);

impl Problems {
    fn add(&mut self, path: &str, message: impl Into<String>) {
        self.0.push(ErrorDetail { path: path.to_owned(), errors: vec![message.into()] });
    }
}

/// The networking facts of a body that both the rules and the defaults need.
struct Shape<'a> {
    container: Option<&'a Map<String, Value>>,
    /// The networks after translating deprecated forms.
    networks: Vec<Value>,
    host_networking: bool,
    /// `portDefinitions`, or deprecated `ports` on host networking.
    port_definitions: Option<Vec<Value>>,
    /// `container.portMappings`, else deprecated `container.docker.portMappings`.
    mappings: Option<&'a Value>,
}

impl<'a> Shape<'a> {
    fn read(input: &'a Map<String, Value>, problems: &mut Problems) -> Shape<'a> {
        let container = input.get("container").and_then(Value::as_object);
        let networks = networks_of(input, docker_network(input), problems);
        let host_networking = networks.iter().all(|n| n.get("mode").and_then(Value::as_str) == Some("host"));
        let port_definitions = match (input.get("portDefinitions"), input.get("ports")) {
            (Some(Value::Array(defs)), _) => Some(defs.clone()),
            // Deprecated `ports` only mean port definitions on host networking; old
            // exports of bridge apps echo their service ports there, which are dropped.
            (None, Some(Value::Array(ports))) if host_networking => {
                Some(ports.iter().map(|p| json!({"port": p})).collect())
            }
            _ => None,
        };
        let (docker_mappings, container_mappings) = port_mappings(input);
        Shape {
            container,
            networks,
            host_networking,
            port_definitions,
            mappings: container_mappings.or(docker_mappings),
        }
    }

    fn has_port_definitions(&self) -> bool {
        self.port_definitions.as_ref().is_some_and(|d| !d.is_empty())
    }

    fn has_mappings(&self) -> bool {
        self.mappings.and_then(Value::as_array).is_some_and(|m| !m.is_empty())
    }

    fn uses_ports(&self) -> bool {
        self.has_port_definitions() || self.has_mappings()
    }
}

fn docker_of(input: &Map<String, Value>) -> Option<&Map<String, Value>> {
    input.get("container").and_then(|c| c.get("docker")).and_then(Value::as_object)
}

fn docker_network(input: &Map<String, Value>) -> Option<&str> {
    docker_of(input).and_then(|d| d.get("network")).and_then(Value::as_str)
}

/// `(container.docker.portMappings, container.portMappings)`, nulls as absent.
fn port_mappings(input: &Map<String, Value>) -> (Option<&Value>, Option<&Value>) {
    let docker = docker_of(input).and_then(|d| d.get("portMappings")).filter(|v| !v.is_null());
    let container = input.get("container").and_then(|c| c.get("portMappings")).filter(|v| !v.is_null());
    (docker, container)
}

/// Exactly one of `cmd` / `args`, or a container; `cmd` not empty.
fn command_rules(input: &Map<String, Value>, problems: &mut Problems) {
    let has_cmd = input.contains_key("cmd");
    let has_args = non_empty(input, "args");
    let has_container = input.contains_key("container");
    if (has_cmd && has_args) || !(has_cmd || has_args || has_container) {
        problems.add("/", CMD_ARGS_MESSAGE);
    }
    if input.get("cmd").and_then(Value::as_str).is_some_and(str::is_empty) {
        problems.add("/cmd", "must not be empty");
    }
}

/// The secrets feature is off: no `secrets`, no env values referring to one.
fn secret_rules(input: &Map<String, Value>, problems: &mut Problems) {
    if non_empty(input, "secrets") {
        problems.add("/secrets", SECRETS_MESSAGE);
    }
    if let Some(env) = input.get("env").and_then(Value::as_object) {
        for (name, value) in env {
            if value.is_object() {
                problems.add(&format!("/env/{name}"), SECRETS_MESSAGE);
            }
        }
    }
}

/// Mixing a deprecated form with its replacement is refused, not merged.
fn deprecated_mix_rules(input: &Map<String, Value>, problems: &mut Problems) {
    let docker_network = docker_network(input);
    let has_networks = input.contains_key("networks");
    let has_ip_address = input.contains_key("ipAddress");
    if has_ip_address && has_networks {
        problems.add("/ipAddress", "ipAddress is deprecated and may not be combined with networks");
    }
    if docker_network.is_some() && has_networks {
        problems.add(
            "/container/docker/network",
            "container.docker.network is deprecated and may not be combined with networks",
        );
    }
    if let (true, Some(network @ ("BRIDGE" | "HOST"))) = (has_ip_address, docker_network) {
        problems
            .add("/ipAddress", format!("ipAddress is not allowed with container.docker.network {network}"));
    }
    if input.contains_key("ports") && input.contains_key("portDefinitions") {
        problems.add("/ports", "ports is deprecated and may not be combined with portDefinitions");
    }
    if input.contains_key("uris") && input.contains_key("fetch") {
        problems.add("/uris", "uris is deprecated and may not be combined with fetch");
    }
    if let (Some(_), Some(_)) = port_mappings(input) {
        problems.add(
            "/container/docker/portMappings",
            "container.docker.portMappings is deprecated and may not be combined with container.portMappings",
        );
    }
}

/// Port definitions need host networking; port mappings need container networking.
fn networking_rules(shape: &Shape<'_>, problems: &mut Problems) {
    if !shape.host_networking && shape.has_port_definitions() {
        problems.add(
            "/portDefinitions",
            "portDefinitions are only allowed with host networking; use container.portMappings",
        );
    }
    if shape.host_networking && shape.has_mappings() {
        problems.add("/container/portMappings", "portMappings are not allowed with host networking");
    }
}

fn upgrade_strategy_rules(input: &Map<String, Value>, problems: &mut Problems) {
    let Some(strategy) = input.get("upgradeStrategy").and_then(Value::as_object) else { return };
    for key in ["minimumHealthCapacity", "maximumOverCapacity"] {
        let path = format!("/upgradeStrategy/{key}");
        match strategy.get(key).map(Value::as_f64) {
            Some(Some(n)) if n > 1.0 => problems.add(&path, "is greater than 1"),
            Some(Some(n)) if n < 0.0 => problems.add(&path, "is less than 0"),
            Some(None) => problems.add(&path, "error.expected.jsnumber"),
            _ => {}
        }
    }
}

const HEALTH_CHECK_PROTOCOLS: [&str; 7] =
    ["HTTP", "HTTPS", "TCP", "COMMAND", "MESOS_HTTP", "MESOS_HTTPS", "MESOS_TCP"];

fn health_check_rules(input: &Map<String, Value>, problems: &mut Problems) {
    for (i, check) in array(input, "healthChecks").iter().enumerate() {
        let protocol = check.get("protocol").and_then(Value::as_str).unwrap_or("HTTP");
        if !HEALTH_CHECK_PROTOCOLS.contains(&protocol) {
            problems.add(&format!("/healthChecks({i})/protocol"), format!("error.expected.enum: {protocol}"));
        }
        if check.get("port").is_some() && check.get("portIndex").is_some() {
            problems.add(
                &format!("/healthChecks({i})"),
                "Health check must specify either a port or a portIndex, not both",
            );
        }
    }
}

fn constraint_rules(input: &Map<String, Value>, problems: &mut Problems) {
    const OPERATORS: [&str; 8] = ["UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS", "IN"];
    for (i, constraint) in array(input, "constraints").iter().enumerate() {
        let operator = constraint.get(1).and_then(Value::as_str).unwrap_or_default();
        let len = constraint.as_array().map_or(0, Vec::len);
        if !(2..=3).contains(&len) || !OPERATORS.contains(&operator) {
            problems.add(
                &format!("/constraints({i})"),
                "Each constraint must have either 2 or 3 fields and a known operator",
            );
        }
    }
}

fn kill_selection_rule(input: &Map<String, Value>, problems: &mut Problems) {
    if let Some(selection) = input.get("killSelection").and_then(Value::as_str) {
        if !["YOUNGEST_FIRST", "OLDEST_FIRST"].contains(&selection) {
            problems.add("/killSelection", format!("error.expected.enum: {selection}"));
        }
    }
}

/// The canonical definition of a valid body: every field in the order GET writes
/// them, with Marathon's defaults.
fn with_defaults(
    input: &Map<String, Value>,
    id: &str,
    shape: &Shape<'_>,
    fill_port_index: bool,
) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("id".into(), json!(id));
    copy_non_empty(input, "acceptedResourceRoles", &mut out);
    copy_non_empty(input, "args", &mut out);
    out.insert("backoffFactor".into(), double(input, "backoffFactor", 1.15));
    out.insert("backoffSeconds".into(), int(input, "backoffSeconds", 1));
    copy_present(input, "cmd", &mut out);
    copy_non_empty(input, "constraints", &mut out);
    if let Some(container) = shape.container {
        out.insert("container".into(), canonical_container(container, shape.mappings, &shape.networks));
    }
    out.insert("cpus".into(), double(input, "cpus", 1.0));
    put_non_empty(&mut out, "dependencies", dependencies(input, id));
    out.insert("disk".into(), double(input, "disk", 0.0));
    copy_non_empty(input, "env", &mut out);
    out.insert("executor".into(), input.get("executor").cloned().unwrap_or_else(|| json!("")));
    copy_present(input, "executorResources", &mut out);
    put_non_empty(&mut out, "fetch", fetch_items(input));
    let checks = array(input, "healthChecks").iter().map(|c| canonical_health_check(c, fill_port_index));
    put_non_empty(&mut out, "healthChecks", checks.collect());
    copy_present(input, "check", &mut out);
    out.insert("instances".into(), int(input, "instances", 1));
    out.insert("labels".into(), input.get("labels").cloned().unwrap_or_else(|| json!({})));
    out.insert("maxLaunchDelaySeconds".into(), int(input, "maxLaunchDelaySeconds", 300));
    out.insert("mem".into(), double(input, "mem", 128.0));
    out.insert("gpus".into(), int(input, "gpus", 0));
    out.insert("networks".into(), Value::Array(shape.networks.clone()));
    if let Some(defs) = port_definitions(shape) {
        out.insert("portDefinitions".into(), defs);
    }
    let readiness = array(input, "readinessChecks").iter().map(canonical_readiness_check);
    put_non_empty(&mut out, "readinessChecks", readiness.collect());
    copy_present(input, "residency", &mut out);
    copy_present(input, "resourceLimits", &mut out);
    out.insert("requirePorts".into(), input.get("requirePorts").cloned().unwrap_or(json!(false)));
    copy_present(input, "taskKillGracePeriodSeconds", &mut out);
    out.insert("upgradeStrategy".into(), upgrade_strategy(input));
    copy_present(input, "user", &mut out);
    out.insert(
        "killSelection".into(),
        input.get("killSelection").cloned().unwrap_or(json!("YOUNGEST_FIRST")),
    );
    out.insert("unreachableStrategy".into(), unreachable_strategy(input));
    copy_present(input, "tty", &mut out);
    out.insert("role".into(), input.get("role").cloned().unwrap_or(json!("*")));
    out
}

/// Dependencies made absolute relative to the app's group.
fn dependencies(input: &Map<String, Value>, id: &str) -> Vec<Value> {
    let base = parent_group(id);
    array(input, "dependencies")
        .iter()
        .filter_map(Value::as_str)
        .map(|d| json!(absolute_id(d, &base)))
        .collect()
}

/// `fetch`, or deprecated `uris` translated.
fn fetch_items(input: &Map<String, Value>) -> Vec<Value> {
    match (input.get("fetch"), input.get("uris")) {
        (Some(Value::Array(items)), _) => items.iter().map(canonical_fetch).collect(),
        (None, Some(Value::Array(uris))) => {
            uris.iter().filter_map(Value::as_str).map(fetch_from_uri).collect()
        }
        _ => Vec::new(),
    }
}

/// Port definitions exist only on host networking; none given means one default port.
fn port_definitions(shape: &Shape<'_>) -> Option<Value> {
    if !shape.host_networking {
        return None;
    }
    Some(match &shape.port_definitions {
        Some(defs) => Value::Array(defs.iter().map(canonical_port_definition).collect()),
        None => json!([{"port": 0, "name": "default", "protocol": "tcp"}]),
    })
}

fn upgrade_strategy(input: &Map<String, Value>) -> Value {
    let strategy = input.get("upgradeStrategy");
    json!({
        "minimumHealthCapacity": nested_double(strategy, "minimumHealthCapacity", 1.0),
        "maximumOverCapacity": nested_double(strategy, "maximumOverCapacity", 1.0),
    })
}

fn unreachable_strategy(input: &Map<String, Value>) -> Value {
    let strategy = input.get("unreachableStrategy");
    let seconds = |key: &str| strategy.and_then(|u| u.get(key)).cloned().unwrap_or(json!(0));
    json!({
        "inactiveAfterSeconds": seconds("inactiveAfterSeconds"),
        "expungeAfterSeconds": seconds("expungeAfterSeconds"),
    })
}

fn copy_present(input: &Map<String, Value>, key: &str, out: &mut Map<String, Value>) {
    if let Some(value) = input.get(key) {
        out.insert(key.to_owned(), value.clone());
    }
}

fn copy_non_empty(input: &Map<String, Value>, key: &str, out: &mut Map<String, Value>) {
    if non_empty(input, key) {
        copy_present(input, key, out);
    }
}

fn put_non_empty(out: &mut Map<String, Value>, key: &str, items: Vec<Value>) {
    if !items.is_empty() {
        out.insert(key.to_owned(), Value::Array(items));
    }
}

/// A double, always written with a fraction (`32.0`), as Marathon's writer does.
fn double(input: &Map<String, Value>, key: &str, default: f64) -> Value {
    json!(input.get(key).and_then(Value::as_f64).unwrap_or(default))
}

fn nested_double(parent: Option<&Value>, key: &str, default: f64) -> Value {
    json!(parent.and_then(|p| p.get(key)).and_then(Value::as_f64).unwrap_or(default))
}

fn int(input: &Map<String, Value>, key: &str, default: i64) -> Value {
    json!(input.get(key).and_then(Value::as_i64).unwrap_or(default))
}

fn networks_of(
    input: &Map<String, Value>,
    docker_network: Option<&str>,
    problems: &mut Problems,
) -> Vec<Value> {
    let ip_network_name = input
        .get("ipAddress")
        .and_then(|ip| ip.get("networkName"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let container_network = |name: Option<String>| match name {
        Some(name) => json!({"name": name, "mode": "container"}),
        None => json!({"mode": "container"}),
    };
    if let Some(Value::Array(networks)) = input.get("networks") {
        if networks.is_empty() {
            return vec![json!({"mode": "host"})];
        }
        return networks
            .iter()
            .enumerate()
            .map(|(i, network)| {
                let mode = network.get("mode").and_then(Value::as_str).unwrap_or("container");
                if !["host", "container", "container/bridge"].contains(&mode) {
                    problems.add(&format!("/networks({i})/mode"), format!("error.expected.enum: {mode}"));
                }
                let mut out = Map::new();
                if let Some(name) = network.get("name") {
                    out.insert("name".into(), name.clone());
                }
                out.insert("mode".into(), json!(mode));
                if let Some(labels) =
                    network.get("labels").filter(|l| l.as_object().is_some_and(|o| !o.is_empty()))
                {
                    out.insert("labels".into(), labels.clone());
                }
                Value::Object(out)
            })
            .collect();
    }
    match docker_network {
        Some("HOST") => vec![json!({"mode": "host"})],
        Some("BRIDGE") => vec![json!({"mode": "container/bridge"})],
        Some("USER") => vec![container_network(ip_network_name)],
        Some("NONE") => vec![container_network(None)],
        Some(other) => {
            problems.add("/container/docker/network", format!("error.expected.enum: {other}"));
            vec![json!({"mode": "host"})]
        }
        None if input.contains_key("ipAddress") => vec![container_network(ip_network_name)],
        None => vec![json!({"mode": "host"})],
    }
}

fn canonical_container(
    container: &Map<String, Value>,
    mappings: Option<&Value>,
    networks: &[Value],
) -> Value {
    let bridge = networks.iter().any(|n| n.get("mode").and_then(Value::as_str) == Some("container/bridge"));
    let mut out = Map::new();
    out.insert("type".into(), container.get("type").cloned().unwrap_or(json!("DOCKER")));
    if let Some(docker) = container.get("docker").and_then(Value::as_object) {
        let mut d = Map::new();
        d.insert("forcePullImage".into(), docker.get("forcePullImage").cloned().unwrap_or(json!(false)));
        if let Some(image) = docker.get("image") {
            d.insert("image".into(), image.clone());
        }
        d.insert("parameters".into(), docker.get("parameters").cloned().unwrap_or(json!([])));
        d.insert("privileged".into(), docker.get("privileged").cloned().unwrap_or(json!(false)));
        if let Some(pull) = docker.get("pullConfig") {
            d.insert("pullConfig".into(), pull.clone());
        }
        out.insert("docker".into(), Value::Object(d));
    }
    out.insert("volumes".into(), container.get("volumes").cloned().unwrap_or(json!([])));
    if let Some(Value::Array(mappings)) = mappings {
        let canonical: Vec<Value> = mappings
            .iter()
            .map(|m| {
                let mut c = Map::new();
                c.insert("containerPort".into(), m.get("containerPort").cloned().unwrap_or(json!(0)));
                match m.get("hostPort") {
                    Some(port) => {
                        c.insert("hostPort".into(), port.clone());
                    }
                    None if bridge => {
                        c.insert("hostPort".into(), json!(0));
                    }
                    None => {}
                }
                if let Some(labels) = m.get("labels").filter(|l| l.as_object().is_some_and(|o| !o.is_empty()))
                {
                    c.insert("labels".into(), labels.clone());
                }
                if let Some(name) = m.get("name") {
                    c.insert("name".into(), name.clone());
                }
                c.insert("protocol".into(), m.get("protocol").cloned().unwrap_or(json!("tcp")));
                c.insert("servicePort".into(), m.get("servicePort").cloned().unwrap_or(json!(0)));
                Value::Object(c)
            })
            .collect();
        out.insert("portMappings".into(), Value::Array(canonical));
    }
    for key in ["linuxInfo", "appc"] {
        if let Some(value) = container.get(key) {
            out.insert(key.into(), value.clone());
        }
    }
    Value::Object(out)
}

fn canonical_port_definition(def: &Value) -> Value {
    let mut out = Map::new();
    out.insert("port".into(), def.get("port").cloned().unwrap_or(json!(0)));
    if let Some(name) = def.get("name") {
        out.insert("name".into(), name.clone());
    }
    out.insert("protocol".into(), def.get("protocol").cloned().unwrap_or(json!("tcp")));
    if let Some(labels) = def.get("labels").filter(|l| l.as_object().is_some_and(|o| !o.is_empty())) {
        out.insert("labels".into(), labels.clone());
    }
    Value::Object(out)
}

/// Health check defaults: `delaySeconds` reads back 15 for the Marathon-side checks
/// whatever was sent; `ignoreHttp1xx` exists only on HTTP/HTTPS; `path` has none;
/// `ipProtocol` is always written.
fn canonical_health_check(check: &Value, fill_port_index: bool) -> Value {
    let protocol = check.get("protocol").and_then(Value::as_str).unwrap_or("HTTP").to_owned();
    let marathon_side = ["HTTP", "HTTPS", "TCP"].contains(&protocol.as_str());
    let http = ["HTTP", "HTTPS"].contains(&protocol.as_str());
    let get = |key: &str, default: Value| check.get(key).cloned().unwrap_or(default);
    let mut out = Map::new();
    if let Some(command) = check.get("command") {
        out.insert("command".into(), command.clone());
    }
    out.insert("gracePeriodSeconds".into(), get("gracePeriodSeconds", json!(300)));
    if http {
        out.insert("ignoreHttp1xx".into(), get("ignoreHttp1xx", json!(false)));
    }
    out.insert("intervalSeconds".into(), get("intervalSeconds", json!(60)));
    out.insert("maxConsecutiveFailures".into(), get("maxConsecutiveFailures", json!(3)));
    if let Some(path) = check.get("path") {
        out.insert("path".into(), path.clone());
    }
    if let Some(port) = check.get("port") {
        out.insert("port".into(), port.clone());
    } else if let Some(index) = check.get("portIndex") {
        out.insert("portIndex".into(), index.clone());
    } else if fill_port_index && protocol != "COMMAND" {
        out.insert("portIndex".into(), json!(0));
    }
    out.insert("protocol".into(), json!(protocol));
    // Every check is written with an ipProtocol; only the Mesos-side HTTP/TCP checks
    // keep the one given (HealthCheckConversion.appHealthCheckWrites).
    let ip_protocol =
        if protocol.starts_with("MESOS_") { get("ipProtocol", json!("IPv4")) } else { json!("IPv4") };
    out.insert("ipProtocol".into(), ip_protocol);
    out.insert("timeoutSeconds".into(), get("timeoutSeconds", json!(20)));
    out.insert("delaySeconds".into(), if marathon_side { json!(15) } else { get("delaySeconds", json!(15)) });
    Value::Object(out)
}

fn canonical_readiness_check(check: &Value) -> Value {
    let get = |key: &str, default: Value| check.get(key).cloned().unwrap_or(default);
    json!({
        "name": get("name", json!("readinessCheck")),
        "protocol": get("protocol", json!("HTTP")),
        "path": get("path", json!("/")),
        "portName": get("portName", json!("http")),
        "intervalSeconds": get("intervalSeconds", json!(30)),
        "timeoutSeconds": get("timeoutSeconds", json!(10)),
        "httpStatusCodesForReady": get("httpStatusCodesForReady", json!([200])),
        "preserveLastResponse": get("preserveLastResponse", json!(false)),
    })
}

fn canonical_fetch(item: &Value) -> Value {
    let get = |key: &str, default: Value| item.get(key).cloned().unwrap_or(default);
    let mut out = Map::new();
    out.insert("uri".into(), get("uri", json!("")));
    out.insert("extract".into(), get("extract", json!(true)));
    out.insert("executable".into(), get("executable", json!(false)));
    out.insert("cache".into(), get("cache", json!(false)));
    if let Some(dest) = item.get("destPath") {
        out.insert("destPath".into(), dest.clone());
    }
    Value::Object(out)
}

/// A deprecated `uris` entry as a fetch item: extracted when it names an archive.
fn fetch_from_uri(uri: &str) -> Value {
    let archive = [".tgz", ".tar.gz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz", ".zip"];
    let lower = uri.to_ascii_lowercase();
    let extract = archive.iter().any(|ext| lower.ends_with(ext));
    json!({"uri": uri, "extract": extract, "executable": false, "cache": false})
}

/// The service ports a canonical definition holds, in order (0 = unassigned).
pub fn service_ports(definition: &Map<String, Value>) -> Vec<i64> {
    let defs = array(definition, "portDefinitions").iter().map(|d| d.get("port"));
    let mappings = definition
        .get("container")
        .and_then(|c| c.get("portMappings"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(|m| m.get("servicePort"));
    defs.chain(mappings).map(|p| p.and_then(Value::as_i64).unwrap_or(0)).collect()
}

/// Whether two canonical definitions differ only in `instances` (a scale).
pub fn only_instances_differ(old: &Map<String, Value>, new: &Map<String, Value>) -> bool {
    old.len() == new.len()
        && old.iter().all(|(key, value)| key == "instances" || new.get(key) == Some(value))
        && old.get("instances") != new.get("instances")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_marathon_rules() {
        assert_eq!(absolute_id("a/b", "/"), "/a/b");
        assert_eq!(absolute_id("../c", "/a/b"), "/a/c");
        assert!(id_problem("/prod/web.v2-x").is_none());
        assert!(id_problem("/Prod").is_some());
        assert!(id_problem("/a_b").is_some());
        assert!(id_problem("/a/restart").is_some());
        assert!(id_problem("/a-").is_some());
    }

    #[test]
    fn uris_become_fetch_with_extract_by_extension() {
        assert_eq!(fetch_from_uri("http://x/a.tar.gz")["extract"], json!(true));
        assert_eq!(fetch_from_uri("http://x/a.py")["extract"], json!(false));
    }
}
