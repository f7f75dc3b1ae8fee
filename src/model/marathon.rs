//! Typed model of a Marathon app definition: every field Marathon 1.10 accepts
//! (reference: Marathon's `app.raml` and the 1.7 `AppDefinition.json` schema).
//!
//! It exists to *check* a manifest (unknown fields, wrong types) with serde; the
//! definition itself travels as JSON so that nothing is lost or reordered. Server-set
//! fields (`version`, `versionInfo`, task counts) are not accepted in a manifest:
//! sending `version` back to Marathon means "roll back to that version".

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::number::{AnyPort, BackoffFactor, Cpus, Int32, Int64, NonNegative, Share};
use super::strict::Strict;

/// A Marathon app as a manifest may write it.
#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AppSpec {
    pub id: String,
    pub accepted_resource_roles: Option<Vec<String>>,
    pub args: Option<Vec<String>>,
    pub backoff_factor: Option<BackoffFactor>,
    pub backoff_seconds: Option<Int32>,
    pub cmd: Option<String>,
    pub constraints: Option<Vec<Vec<String>>>,
    pub container: Option<Container>,
    pub cpus: Option<Cpus>,
    pub dependencies: Option<Vec<String>>,
    pub disk: Option<NonNegative>,
    pub env: Option<BTreeMap<String, EnvValue>>,
    pub executor: Option<String>,
    pub executor_resources: Option<ExecutorResources>,
    pub fetch: Option<Vec<Fetch>>,
    pub gpus: Option<Int32>,
    pub health_checks: Option<Vec<HealthCheck>>,
    pub check: Option<Value>,
    pub instances: Option<Int32>,
    pub labels: Option<BTreeMap<String, String>>,
    pub max_launch_delay_seconds: Option<Int32>,
    pub mem: Option<NonNegative>,
    pub ip_address: Option<IpAddress>,
    pub networks: Option<Vec<Network>>,
    pub ports: Option<Vec<AnyPort>>,
    pub port_definitions: Option<Vec<PortDefinition>>,
    pub readiness_checks: Option<Vec<ReadinessCheck>>,
    pub residency: Option<Residency>,
    pub resource_limits: Option<ResourceLimits>,
    pub require_ports: Option<bool>,
    pub secrets: Option<BTreeMap<String, SecretRef>>,
    pub task_kill_grace_period_seconds: Option<Int32>,
    pub upgrade_strategy: Option<UpgradeStrategy>,
    pub uris: Option<Vec<String>>,
    pub user: Option<String>,
    pub kill_selection: Option<KillSelection>,
    pub unreachable_strategy: Option<UnreachableStrategyValue>,
    pub tty: Option<bool>,
    pub role: Option<String>,
}

/// An `env` value: a plain string or a reference to a secret (`{"secret": "name"}`).
/// Read by hand rather than `untagged`: serde would take a list `[name]` for the
/// secret object (a struct from a sequence), which Marathon refuses
/// (`EnvVarValueOrSecret`, environmentVariable.raml).
#[allow(missing_docs)]
#[derive(Debug)]
pub enum EnvValue {
    Plain(String),
    Secret(EnvSecret),
}

/// `{"secret": "<name of an entry in secrets>"}`.
#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvSecret {
    pub secret: String,
}

/// An entry of `secrets`: `{"source": "<store path>"}`.
#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    pub source: String,
}

#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExecutorResources {
    pub cpus: Option<NonNegative>,
    pub mem: Option<NonNegative>,
    pub disk: Option<NonNegative>,
}

#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResourceLimits {
    pub cpus: Option<Value>,
    pub mem: Option<Value>,
}

#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Container {
    #[serde(rename = "type")]
    pub kind: Option<ContainerType>,
    pub docker: Option<Docker>,
    pub appc: Option<Appc>,
    pub port_mappings: Option<Vec<PortMapping>>,
    pub volumes: Option<Vec<Volume>>,
    pub linux_info: Option<Value>,
}

#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ContainerType {
    Docker,
    Mesos,
}

#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Docker {
    pub image: String,
    pub credential: Option<DockerCredential>,
    pub pull_config: Option<DockerPullConfig>,
    pub force_pull_image: Option<bool>,
    pub network: Option<DockerNetwork>,
    pub parameters: Option<Vec<DockerParameter>>,
    pub port_mappings: Option<Vec<PortMapping>>,
    pub privileged: Option<bool>,
}

#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DockerNetwork {
    Host,
    Bridge,
    User,
    None,
}

#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerCredential {
    pub principal: String,
    pub secret: Option<String>,
}

#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerPullConfig {
    pub secret: String,
}

#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerParameter {
    pub key: String,
    pub value: String,
}

#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Appc {
    pub image: String,
    pub id: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub force_pull_image: Option<bool>,
}

#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PortMapping {
    pub container_port: Option<AnyPort>,
    pub host_port: Option<AnyPort>,
    pub service_port: Option<AnyPort>,
    pub name: Option<String>,
    pub protocol: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub network_names: Option<Vec<String>>,
}

#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Volume {
    pub container_path: String,
    pub host_path: Option<String>,
    pub mode: Option<String>,
    pub persistent: Option<PersistentVolume>,
    pub external: Option<ExternalVolume>,
    pub secret: Option<String>,
}

#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PersistentVolume {
    pub size: Int64,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub max_size: Option<Int64>,
    pub profile_name: Option<String>,
    pub constraints: Option<Vec<Vec<String>>>,
}

#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExternalVolume {
    pub name: Option<String>,
    pub provider: Option<String>,
    pub size: Option<u64>,
    pub options: Option<BTreeMap<String, String>>,
}

#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Fetch {
    pub uri: String,
    pub extract: Option<bool>,
    pub executable: Option<bool>,
    pub cache: Option<bool>,
    pub dest_path: Option<String>,
}

#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HealthCheck {
    pub protocol: Option<HealthProtocol>,
    pub command: Option<HealthCommand>,
    pub delay_seconds: Option<Int32>,
    pub grace_period_seconds: Option<Int32>,
    pub ignore_http1xx: Option<bool>,
    pub interval_seconds: Option<Int32>,
    pub ip_protocol: Option<IpProtocol>,
    pub max_consecutive_failures: Option<Int32>,
    pub path: Option<String>,
    pub port: Option<AnyPort>,
    pub port_index: Option<Int32>,
    pub timeout_seconds: Option<Int32>,
}

#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthProtocol {
    Http,
    Https,
    Tcp,
    Command,
    MesosHttp,
    MesosHttps,
    MesosTcp,
}

#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
pub enum IpProtocol {
    IPv4,
    IPv6,
}

#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCommand {
    pub value: String,
}

#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IpAddress {
    pub discovery: Option<Value>,
    pub groups: Option<Vec<String>>,
    pub labels: Option<BTreeMap<String, String>>,
    pub network_name: Option<String>,
}

#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Network {
    pub mode: Option<NetworkMode>,
    pub name: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
}

#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkMode {
    Host,
    Container,
    #[serde(rename = "container/bridge")]
    ContainerBridge,
}

#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PortDefinition {
    /// Optional, 0 by default (network.raml `PortDefinition.port?: AnyPort`).
    pub port: Option<AnyPort>,
    pub name: Option<String>,
    pub protocol: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
}

#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReadinessCheck {
    pub name: Option<String>,
    pub protocol: Option<String>,
    pub path: Option<String>,
    pub port_name: Option<String>,
    pub interval_seconds: Option<Int32>,
    pub timeout_seconds: Option<Int32>,
    pub http_status_codes_for_ready: Option<Vec<Int32>>,
    pub preserve_last_response: Option<bool>,
}

#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Residency {
    pub relaunch_escalation_timeout_seconds: Option<Int64>,
    pub task_lost_behavior: Option<String>,
}

#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpgradeStrategy {
    pub minimum_health_capacity: Option<Share>,
    pub maximum_over_capacity: Option<Share>,
}

#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KillSelection {
    YoungestFirst,
    OldestFirst,
}

/// `unreachableStrategy`: either the string `"disabled"` or the two timeouts
/// (unreachableStrategy.raml: `UnreachableDisabled | UnreachableEnabled`, the string
/// being the enum `[disabled]`). Read by hand for the same reason as [`EnvValue`].
#[allow(missing_docs)]
#[derive(Debug)]
pub enum UnreachableStrategyValue {
    Disabled,
    Enabled(UnreachableStrategy),
}

impl<'de> Deserialize<'de> for EnvValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match Value::deserialize(deserializer)? {
            Value::String(s) => Ok(EnvValue::Plain(s)),
            object @ Value::Object(_) => EnvSecret::deserialize(Strict(&object))
                .map(EnvValue::Secret)
                .map_err(|_| D::Error::custom(ENV_VALUE_ERROR)),
            _ => Err(D::Error::custom(ENV_VALUE_ERROR)),
        }
    }
}

/// The message describe() in `source` turns into "an env value must be …".
const ENV_VALUE_ERROR: &str = "data did not match any variant of untagged enum EnvValue";

impl<'de> Deserialize<'de> for UnreachableStrategyValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match Value::deserialize(deserializer)? {
            Value::String(s) if s == "disabled" => Ok(UnreachableStrategyValue::Disabled),
            object @ Value::Object(_) => UnreachableStrategy::deserialize(Strict(&object))
                .map(UnreachableStrategyValue::Enabled)
                .map_err(D::Error::custom),
            _ => Err(D::Error::custom(
                "must be the string `disabled` or {inactiveAfterSeconds, expungeAfterSeconds}",
            )),
        }
    }
}

#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UnreachableStrategy {
    pub inactive_after_seconds: Option<Int64>,
    pub expunge_after_seconds: Option<Int64>,
}

/// The label that marks an app as managed by a mesosync instance (DESIGN §3).
pub const OWNER_LABEL: &str = "MESOSYNC_OWNER";

/// The instance that owns a live app, from its label.
pub fn owner(live: &Value) -> Option<&str> {
    owner_in_labels(live.get("labels")?)
}

/// The instance named by the ownership label of an app's `labels` object: the key
/// spelled exactly `MESOSYNC_OWNER`, and no other key that differs only in case
/// (`mesosync_owner` beside it makes ownership ambiguous: nobody's, and reported).
pub fn owner_in_labels(labels: &Value) -> Option<&str> {
    if owner_marks(labels) > 1 {
        return None;
    }
    labels.get(OWNER_LABEL)?.as_str()
}

/// How many labels look like the ownership label (its name in any case).
pub fn owner_marks(labels: &Value) -> usize {
    labels.as_object().map_or(0, |m| m.keys().filter(|k| k.eq_ignore_ascii_case(OWNER_LABEL)).count())
}

/// Check one Marathon path id (DESIGN §4): absolute or relative segments, each
/// `[a-z0-9]` or `[a-z0-9][a-z0-9-]*[a-z0-9]`, `.` and `..` allowed as path
/// navigation, and an app's last segment may not be `restart`, `tasks` or `versions`.
pub fn check_app_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id == "/" {
        return Err("app id must not be empty".into());
    }
    for segment in id.trim_start_matches('/').split('/') {
        if segment.is_empty() {
            return Err(format!("app id '{id}' has an empty segment"));
        }
        if segment == "." || segment == ".." {
            continue;
        }
        if !segment_ok(segment) {
            return Err(format!(
                "app id '{id}': segment '{segment}' must be lower-case letters, digits, '-' and '.', \
                 starting and ending with a letter or digit (no '_', no upper case)"
            ));
        }
    }
    let last = id.rsplit('/').next().unwrap_or_default();
    if matches!(last, "restart" | "tasks" | "versions") {
        return Err(format!(
            "app id '{id}': the last segment may not be '{last}' (a reserved Marathon path)"
        ));
    }
    Ok(())
}

fn segment_ok(segment: &str) -> bool {
    // Marathon: ^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])$
    segment.split('.').all(|label| {
        let bytes = label.as_bytes();
        let ok_char = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        match bytes {
            [] => false,
            [only] => ok_char(only),
            [first, middle @ .., last] => {
                ok_char(first) && ok_char(last) && middle.iter().all(|c| ok_char(c) || *c == b'-')
            }
        }
    })
}

/// Make `id` absolute and canonical: relative ids are taken from the root group,
/// `.` and `..` segments resolved, a trailing `/` dropped.
pub fn canonical_app_id(id: &str) -> String {
    resolve_app_id(id, "/")
}

/// Resolve `id` as Marathon resolves an app's `dependencies`: a relative id is taken
/// from `base` (the app's parent group), then `.` / `..` are resolved.
pub fn resolve_app_id(id: &str, base: &str) -> String {
    let joined = if id.starts_with('/') { id.to_string() } else { format!("{base}/{id}") };
    let mut out: Vec<&str> = Vec::new();
    for segment in joined.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_ids_follow_marathon_rules() {
        for ok in ["/a", "/openstack/infra/mariadb", "a-b", "/a.b/c1", "/x/../y"] {
            assert!(check_app_id(ok).is_ok(), "{ok}");
        }
        for bad in ["/A", "/a_b", "/-a", "/a-", "/a//b", "/x/tasks", "/x/restart", "/x/versions", "", "/"] {
            assert!(check_app_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn canonical_ids_are_absolute() {
        assert_eq!(canonical_app_id("a/b"), "/a/b");
        assert_eq!(canonical_app_id("/a/./b/../c/"), "/a/c");
        assert_eq!(resolve_app_id("../infra/mariadb", "/openstack/keystone"), "/openstack/infra/mariadb");
        assert_eq!(resolve_app_id("memcached", "/openstack/infra"), "/openstack/infra/memcached");
    }
}
