//! The inverse of normalization, for `mesosync import`: turn live apps and jobs (as
//! `GET /v2/apps` and `GET …/scheduler/jobs` report them) into the smallest manifests
//! whose normalized form equals the live one, so that `mesosync diff` right after an
//! import shows no change. Pure: the listings, the clock and the options come in as
//! values; reading the APIs and writing files is the job of `cli::import`.
//!
//! How a spec is made minimal: the live object, minus server fields and the ownership
//! mark, is brought to canonical form by the normalizer ([`crate::normalize`]) — modern
//! forms, integral numbers as integers, empty collections dropped. Then every member is
//! removed in turn (top level first, then inside the objects that had to stay) and the
//! removal is kept when the normalizer still gives the same canonical form. The
//! normalizer is the only oracle, so no second copy of the defaults tables exists and a
//! value equal to what Marathon or Chronos would fill in is left out exactly when the
//! normalizer would fill it back in. Assigned service ports stay as they are live.
//!
//! Secrets: values at [`crate::diff::mask::secret_pointers`] (env vars and labels named
//! like PASSWORD / TOKEN / KEY, Chronos environment variables likewise, Docker
//! credential secrets) are replaced by [`PLACEHOLDER`] unless asked otherwise, and the
//! pointers are reported: a manifest repository must not receive live secrets by
//! accident.

use std::path::PathBuf;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::diff::mask;
use crate::model::{ObjectKind, ObjectRef, chronos as chronos_model, marathon as marathon_model};
use crate::normalize::chronos::{self as chronos_norm, canonical_job};
use crate::normalize::marathon::{self as marathon_norm, canonical_app};
use crate::normalize::{ChronosVersion, MarathonVersion, escape_token, remove_pointer};

/// What a redacted secret value reads as in an imported manifest.
pub use crate::diff::mask::PLACEHOLDER;

/// The directory (under the output directory) that holds imported Chronos jobs. Marathon
/// ids cannot contain `_`, so no app file can ever land in it.
pub const JOBS_DIR: &str = "_chronos";

/// What shapes an import besides the live state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportOptions {
    /// The instance whose ownership marks are removed (mesosync adds them back itself).
    /// Objects marked by another instance are skipped.
    pub instance: String,
    /// The Marathon version, if known (`None`: 1.10 defaults, as `diff` assumes).
    pub marathon_version: Option<MarathonVersion>,
    /// The Chronos version (detected by the caller); decides which fields are compared.
    pub chronos_version: Option<ChronosVersion>,
    /// Keep only apps in this group (`/openstack` keeps `/openstack/…`).
    pub app_prefix: Option<String>,
    /// Keep only jobs whose name starts with this.
    pub job_prefix: Option<String>,
    /// Write secret-looking values as they are instead of [`PLACEHOLDER`].
    pub include_secrets: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            instance: crate::normalize::DEFAULT_INSTANCE.to_string(),
            marathon_version: None,
            chronos_version: None,
            app_prefix: None,
            job_prefix: None,
            include_secrets: false,
        }
    }
}

/// One object turned into a manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedObject {
    /// The app or job.
    pub object: ObjectRef,
    /// Where its manifest goes, relative to the output directory.
    pub path: PathBuf,
    /// The manifest's `spec`.
    pub spec: Value,
    /// Pointers into `spec` whose secret values were replaced by [`PLACEHOLDER`].
    pub redacted: Vec<String>,
}

/// A live object that was not imported, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedObject {
    /// The app or job.
    pub object: ObjectRef,
    /// Why it was left out.
    pub reason: String,
    /// Whether this is a problem (the object should have been imported) rather than a
    /// choice (owned by another instance).
    pub error: bool,
}

/// The outcome of turning a live listing into manifests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Import {
    /// Imported apps, then jobs, each sorted by id / name.
    pub objects: Vec<ImportedObject>,
    /// Objects within the prefixes that were left out.
    pub skipped: Vec<SkippedObject>,
}

impl Import {
    /// How many apps and jobs were imported.
    pub fn counts(&self) -> (usize, usize) {
        let (mut apps, mut jobs) = (0, 0);
        for o in &self.objects {
            match o.object.kind {
                ObjectKind::MarathonApp => apps += 1,
                ObjectKind::ChronosJob => jobs += 1,
            }
        }
        (apps, jobs)
    }
}

/// Turn every live app and job within the prefixes into a minimal manifest spec.
pub fn import(apps: &[Value], jobs: &[Value], opts: &ImportOptions) -> Import {
    let mut out = Import::default();
    let mut apps: Vec<&Value> = apps.iter().filter(|a| in_group(a, opts.app_prefix.as_deref())).collect();
    apps.sort_by_key(|a| a.get("id").and_then(Value::as_str).unwrap_or_default().to_string());
    for live in apps {
        let id = live.get("id").and_then(Value::as_str).unwrap_or_default();
        let object = ObjectRef::app(marathon_model::canonical_app_id(id));
        match import_app(live, opts) {
            Ok(imported) => out.objects.push(imported),
            Err((reason, error)) => out.skipped.push(SkippedObject { object, reason, error }),
        }
    }
    let mut jobs: Vec<&Value> = jobs
        .iter()
        .filter(|j| {
            let name = j.get("name").and_then(Value::as_str).unwrap_or_default();
            opts.job_prefix.as_deref().is_none_or(|p| name.starts_with(p))
        })
        .collect();
    jobs.sort_by_key(|j| j.get("name").and_then(Value::as_str).unwrap_or_default().to_string());
    for live in jobs {
        let name = live.get("name").and_then(Value::as_str).unwrap_or_default();
        let object = ObjectRef::job(name);
        match import_job(live, opts) {
            Ok(imported) => out.objects.push(imported),
            Err((reason, error)) => out.skipped.push(SkippedObject { object, reason, error }),
        }
    }
    leave_out_dangling(&mut out);
    out
}

/// The references of an imported spec: Marathon `dependencies`, Chronos `parents`.
fn references(object: &ImportedObject) -> Vec<ObjectRef> {
    let system = crate::system::of(object.object.kind);
    let list = object.spec.get(system.dependency_field()).and_then(Value::as_array);
    list.into_iter().flatten().filter_map(Value::as_str).map(|d| system.dependency(d)).collect()
}

/// The loader refuses a manifest set in which an object depends on one no manifest
/// declares, so an object whose dependency or parent is not imported (not live, or
/// outside the prefixes) is left out — and, in turn, whatever depends on it — rather
/// than writing a directory that does not load.
fn leave_out_dangling(import: &mut Import) {
    loop {
        let imported: std::collections::HashSet<ObjectRef> =
            import.objects.iter().map(|o| o.object.clone()).collect();
        let Some((index, missing)) = import.objects.iter().enumerate().find_map(|(i, o)| {
            let missing: Vec<String> =
                references(o).into_iter().filter(|r| !imported.contains(r)).map(|r| r.to_string()).collect();
            (!missing.is_empty()).then_some((i, missing))
        }) else {
            return;
        };
        let object = import.objects.remove(index).object;
        import.skipped.push(SkippedObject {
            object,
            reason: format!(
                "depends on {}, which is not imported (not live, outside --prefix / --job-prefix, or left out \
                 itself); a manifest set must declare every dependency",
                missing.join(", ")
            ),
            error: true,
        });
    }
}

fn in_group(app: &Value, prefix: Option<&str>) -> bool {
    let Some(prefix) = prefix else { return true };
    let group = marathon_model::canonical_app_id(prefix);
    let id = marathon_model::canonical_app_id(app.get("id").and_then(Value::as_str).unwrap_or_default());
    group == "/" || id == group || id.strip_prefix(&group).is_some_and(|rest| rest.starts_with('/'))
}

type Refusal = (String, bool);

fn import_app(live: &Value, opts: &ImportOptions) -> Result<ImportedObject, Refusal> {
    let id = live.get("id").and_then(Value::as_str).ok_or(("the app has no id".to_string(), true))?;
    marathon_model::check_app_id(id).map_err(|e| (e, true))?;
    match crate::system::of(ObjectKind::MarathonApp).owner_of(live) {
        Some(owner) if owner != opts.instance => {
            return Err((format!("owned by mesosync instance '{owner}', not '{}'", opts.instance), false));
        }
        _ => {}
    }
    let spec = app_spec(live, opts.marathon_version);
    let id = marathon_model::canonical_app_id(id);
    let path = PathBuf::from(format!("{}.yaml", id.trim_start_matches('/')));
    finish(ObjectRef::app(id), path, spec, live, opts)
}

fn import_job(live: &Value, opts: &ImportOptions) -> Result<ImportedObject, Refusal> {
    let name = live.get("name").and_then(Value::as_str).ok_or(("the job has no name".to_string(), true))?;
    chronos_model::check_job_name(name).map_err(|e| (e, true))?;
    let owner = crate::system::of(ObjectKind::ChronosJob).owner_of(live);
    if let Some(owner) = owner.filter(|o| *o != opts.instance) {
        return Err((format!("owned by mesosync instance '{owner}', not '{}'", opts.instance), false));
    }
    let spec = job_spec(live, &opts.instance, opts.chronos_version);
    let path = PathBuf::from(JOBS_DIR).join(format!("{name}.yaml"));
    finish(ObjectRef::job(name), path, spec, live, opts)
}

/// Redact, order, and check that the manifest loads back to exactly this spec.
fn finish(
    object: ObjectRef,
    path: PathBuf,
    mut spec: Value,
    live: &Value,
    opts: &ImportOptions,
) -> Result<ImportedObject, Refusal> {
    let redacted = if opts.include_secrets {
        Vec::new()
    } else {
        redact(object.kind, &mut spec, &mask::recorded_secrets(object.kind, live))
    };
    let spec = order_like(&spec, live, &["id", "name"]);
    let imported = ImportedObject { object, path, spec, redacted };
    check_loads_back(&imported).map_err(|e| (e, true))?;
    Ok(imported)
}

/// The minimal manifest spec of a live Marathon app: server fields, the ownership
/// label and every value the normalizer would fill back in are left out.
pub fn app_spec(live: &Value, version: Option<MarathonVersion>) -> Value {
    let mut app = live.clone();
    if let Value::Object(map) = &mut app {
        for field in marathon_norm::SERVER_FIELDS {
            map.shift_remove(*field);
        }
        if let Some(Value::Object(labels)) = map.get_mut("labels") {
            labels.shift_remove(marathon_norm::OWNER_LABEL);
            labels.shift_remove(marathon_norm::SECRETS_LABEL);
        }
    }
    minimize(canonical_app(&app, version), |v| canonical_app(v, version))
}

/// The minimal manifest spec of a live Chronos job: run statistics, the ownership
/// marker of `instance` and every value the normalizer would fill back in are left out;
/// the schedule is written as live reports it.
pub fn job_spec(live: &Value, instance: &str, version: Option<ChronosVersion>) -> Value {
    let mut job = live.clone();
    if let Some(Value::String(description)) = job.get_mut("description") {
        let marker = chronos_norm::owner_marker(instance);
        *description = chronos_norm::without_records(description)
            .replace(&format!(" {marker}"), "")
            .replace(&marker, "");
    }
    let fill = version.is_some();
    let mut spec = minimize(canonical_job(&job, version, fill), |v| canonical_job(v, version, fill));
    if let (Some(raw), Value::Object(map)) = (live.get("schedule").filter(|s| s.is_string()), &mut spec) {
        map.insert("schedule".into(), raw.clone());
    }
    spec
}

/// Members of list items that are always written, to say what the item is (a health
/// check's or port's `protocol`, a network's `mode`), even when equal to the default.
const DISCRIMINATORS: &[&str] = &["protocol", "mode"];

/// Remove every object member of `doc` whose removal leaves `canonical(doc)` unchanged:
/// top-level members first, then, inside each member that has to stay, its own members
/// (through arrays, whose elements are never removed: that would change the list). A
/// list item keeps its [`DISCRIMINATORS`] and never becomes `{}`.
fn minimize(doc: Value, canonical: impl Fn(&Value) -> Value) -> Value {
    let target = canonical(&doc);
    let mut current = doc;
    let mut queue: std::collections::VecDeque<String> = members(&current, "").into();
    while let Some(pointer) = queue.pop_front() {
        let mut trial = current.clone();
        if removable(&pointer, &current)
            && remove_pointer(&mut trial, &pointer).is_some()
            && !leaves_empty_item(&trial, &pointer)
            && canonical(&trial) == target
        {
            current = trial;
        } else if let Some(kept) = current.pointer(&pointer) {
            queue.extend(members(kept, &pointer));
        }
    }
    current
}

/// The parent of a pointer (`/a/b` → `/a`; a top-level member → `None`).
fn parent(pointer: &str) -> Option<&str> {
    pointer.rsplit_once('/').map(|(p, _)| p).filter(|p| !p.is_empty())
}

/// Whether the member at `pointer` may be tried at all: not a discriminator of a list item.
fn removable(pointer: &str, doc: &Value) -> bool {
    let name = pointer.rsplit('/').next().unwrap_or_default();
    let in_list_item =
        parent(pointer).and_then(parent).and_then(|g| doc.pointer(g)).is_some_and(Value::is_array);
    !(in_list_item && DISCRIMINATORS.contains(&name))
}

/// Whether removing `pointer` left an empty object as a list item.
fn leaves_empty_item(doc: &Value, pointer: &str) -> bool {
    let Some(item) = parent(pointer) else { return false };
    let empty = doc.pointer(item).and_then(Value::as_object).is_some_and(Map::is_empty);
    empty && parent(item).and_then(|list| doc.pointer(list)).is_some_and(Value::is_array)
}

/// The pointers of the object members directly under `value` (looking through arrays).
fn members(value: &Value, at: &str) -> Vec<String> {
    match value {
        Value::Object(map) => map.keys().map(|k| format!("{at}/{}", escape_token(k))).collect(),
        Value::Array(items) => {
            items.iter().enumerate().flat_map(|(i, item)| members(item, &format!("{at}/{i}"))).collect()
        }
        _ => Vec::new(),
    }
}

/// Replace secret values by [`PLACEHOLDER`]: those under secret names, and those the
/// live object's recorded `sync.secret` pointers held (`recorded`, matched by value:
/// the spec's arrays are in canonical order). Returns their pointers.
fn redact(kind: ObjectKind, spec: &mut Value, recorded: &crate::model::SecretValues) -> Vec<String> {
    let mut redacted = Vec::new();
    for pointer in mask::secret_pointers(kind, spec, &[]) {
        if let Some(slot @ Value::String(_)) = spec.pointer_mut(&pointer) {
            *slot = Value::String(PLACEHOLDER.into());
            redacted.push(pointer);
        }
    }
    redact_values(spec, String::new(), recorded, &mut redacted);
    redacted
}

fn redact_values(
    doc: &mut Value,
    pointer: String,
    secrets: &crate::model::SecretValues,
    out: &mut Vec<String>,
) {
    match doc {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                redact_values(v, format!("{pointer}/{}", escape_token(k)), secrets, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                redact_values(v, format!("{pointer}/{i}"), secrets, out);
            }
        }
        leaf if secrets.contains_value(leaf) && leaf.as_str() != Some(PLACEHOLDER) => {
            *leaf = Value::String(PLACEHOLDER.into());
            out.push(pointer);
        }
        _ => {}
    }
}

/// `value` with its top-level keys in the order `like` has them (the order the API
/// reports), `first` keys leading; nested objects keep their canonical order.
fn order_like(value: &Value, like: &Value, first: &[&str]) -> Value {
    let (Value::Object(map), Some(reference)) = (value, like.as_object()) else { return value.clone() };
    let rank = |k: &str| {
        first
            .iter()
            .position(|f| *f == k)
            .map(|i| (0, i))
            .or_else(|| reference.keys().position(|r| r == k).map(|i| (1, i)))
            .unwrap_or((2, 0))
    };
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by_key(|(k, _)| rank(k));
    Value::Object(entries.into_iter().map(|(k, v)| (k.clone(), v.clone())).collect::<Map<_, _>>())
}

/// Where the manifest came from, for the header comment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The API base URL the object was read from (credentials are removed here).
    pub url: String,
    /// When it was read.
    pub at: DateTime<Utc>,
}

/// Why an imported object could not be written as a manifest.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The YAML serializer refused the document.
    #[error("writing YAML: {0}")]
    Yaml(#[from] serde_saphyr::SerializeError),
}

/// The manifest file text: a header comment, then one document.
pub fn render(object: &ImportedObject, origin: &Origin) -> Result<String, RenderError> {
    let kind = object.object.kind;
    let system = crate::system::of(kind).title();
    let document = json!({"kind": kind, "spec": object.spec});
    let body = serde_saphyr::to_string(&document)?;
    let mut header = format!(
        "# Imported by mesosync {} from {system} at {} on {}.\n\
         # Values equal to {system}'s defaults are left out; mesosync adds its ownership mark itself.\n",
        env!("CARGO_PKG_VERSION"),
        redact_url(&origin.url),
        origin.at.to_rfc3339_opts(SecondsFormat::Secs, true),
    );
    if !object.redacted.is_empty() {
        header.push_str(&format!(
            "# Secret values were replaced by {PLACEHOLDER}: {}\n\
             # Put the real values in a SOPS-encrypted values file (e.g. secrets.sops.yaml, see\n\
             # docs/secrets.md) and use them here as template values; never commit them in clear.\n",
            object.redacted.join(", ")
        ));
    }
    Ok(format!("{header}---\n{}", body.trim_start_matches("---\n")))
}

/// `url` without user name, password, query or fragment: a header must never carry
/// credentials.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string().trim_end_matches('/').to_string()
        }
        Err(_) => "(unparsable URL)".into(),
    }
}

/// Render and load the manifest back with the real loader: it must load without error
/// and give exactly `spec` (a guard against a YAML quoting or typing surprise).
fn check_loads_back(object: &ImportedObject) -> Result<(), String> {
    let origin = Origin { url: String::new(), at: DateTime::<Utc>::UNIX_EPOCH };
    let text = render(object, &origin).map_err(|e| e.to_string())?;
    let (loaded, errors) = crate::source::load_text(&object.path, &text);
    if let Some(e) = errors.first() {
        return Err(format!("the manifest would not load: {}", e.message));
    }
    match loaded.as_slice() {
        [one] if one.spec.value() == object.spec => Ok(()),
        [one] => {
            let masked =
                |spec: &Value| mask::masked(object.object.kind, spec, &crate::model::SecretValues::default());
            Err(format!(
                "the manifest would load differently (a bug; please report it): wrote {}, read {}",
                masked(&object.spec),
                masked(&one.spec.value())
            ))
        }
        _ => Err("the manifest would not hold exactly one object".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::chronos::{DEFAULTS, RESOURCE_DEFAULTS};
    use crate::normalize::marathon::defaults_table;

    /// A value of the same type that differs from `v`.
    fn different(v: &Value) -> Value {
        match v {
            Value::Bool(b) => json!(!b),
            Value::Number(n) => json!(n.as_f64().unwrap() + 2.5),
            Value::String(s) if s.is_empty() => json!("x"),
            Value::String(s) => json!(format!("{s}-other")),
            Value::Object(m) if m.is_empty() => json!({"team": "a"}),
            Value::Object(m) => {
                let mut m = m.clone();
                let first = m.keys().next().unwrap().clone();
                m[&first] = different(&m[&first]);
                Value::Object(m)
            }
            other => other.clone(),
        }
    }

    fn live_app(extra: Value) -> Value {
        let mut app = json!({"id": "/a", "cmd": "run", "version": "2026-01-01T00:00:00.000Z",
            "versionInfo": {"lastConfigChangeAt": "x"}, "tasksRunning": 1, "deployments": [],
            "labels": {"MESOSYNC_OWNER": "mesosync"}, "portDefinitions": [{"port": 10001, "name": "default", "protocol": "tcp"}]});
        for (k, v) in extra.as_object().unwrap() {
            app[k] = v.clone();
        }
        app
    }

    #[test]
    fn marathon_defaults_are_dropped_and_other_values_kept() {
        for version in [None, Some((1, 4, 5))] {
            for (key, default) in defaults_table(version) {
                let spec = app_spec(&live_app(json!({key: default.clone()})), version);
                assert!(spec.get(key).is_none(), "{key} = {default} kept: {spec}");
                let other = different(&default);
                let spec = app_spec(&live_app(json!({key: other.clone()})), version);
                assert!(spec.get(key).is_some(), "{key} = {other} dropped: {spec}");
                assert_ne!(spec[key], default, "{key}");
            }
        }
    }

    #[test]
    fn chronos_defaults_are_dropped_and_other_values_kept() {
        let base = json!({"name": "j", "command": "true", "schedule": "R/2030-01-01T00:00:00.000Z/PT1H",
            "successCount": 3, "errorCount": 1, "lastSuccess": "2026-01-01T00:00:00.000Z", "lastError": "",
            "errorsSinceLastSuccess": 0});
        let version = |key: &str| {
            if ["concurrent", "maxCompletionTime"].contains(&key) {
                ChronosVersion::V3
            } else {
                ChronosVersion::V2_5
            }
        };
        let mut cases: Vec<(&str, Value)> = DEFAULTS
            .iter()
            .map(|(k, _)| *k)
            .zip(DEFAULTS.iter().map(|(k, _)| {
                crate::normalize::chronos::canonical_job(&json!({}), Some(version(k)), true)[*k].clone()
            }))
            .collect();
        cases.extend(RESOURCE_DEFAULTS.iter().map(|(k, v)| (*k, json!(v))));
        cases.push(("scheduleTimeZone", json!("")));
        for (key, default) in cases {
            let v = Some(version(key));
            let mut live = base.clone();
            live[key] = default.clone();
            let spec = job_spec(&live, "mesosync", v);
            assert_eq!(spec, json!({"name": "j", "command": "true", "schedule": base["schedule"]}), "{key}");
            live[key] = different(&default);
            let spec = job_spec(&live, "mesosync", v);
            assert_eq!(
                spec.get(key),
                Some(&different(&default))
                    .map(|d| {
                        let mut d = d.clone();
                        crate::normalize::canonical_numbers(&mut d);
                        d
                    })
                    .as_ref(),
                "{key}"
            );
        }
    }

    #[test]
    fn design_example_get_gives_back_the_posted_app() {
        let got = crate::normalize::marathon::design_get_example();
        let spec = app_spec(&got, None);
        // The assigned port stays: a manifest with `port: 10000` keeps it on a new cluster.
        assert_eq!(
            spec,
            json!({"cmd":"sleep 1","cpus":0.1,"healthChecks":[{"protocol":"HTTP"}],"id":"/x","mem":32,
                "portDefinitions":[{"name":"default","port":10000,"protocol":"tcp"}]})
        );
        assert!(spec["mem"].is_i64(), "integral floats are integers");
    }

    #[test]
    fn old_forms_come_out_modern_and_nested_defaults_go() {
        let live = json!({"id": "/old", "cmd": "run", "ports": [10013], "uris": ["http://x/a.tgz"],
            "constraints": [["hostname", "UNIQUE", ""]], "maxLaunchDelaySeconds": 3600,
            "container": {"type": "DOCKER", "docker": {"image": "i", "network": "BRIDGE", "privileged": false,
                "portMappings": [{"containerPort": 80, "hostPort": 0, "servicePort": 10020, "protocol": "tcp"}]}},
            "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 1.0}});
        let spec = app_spec(&live, None);
        assert_eq!(
            spec,
            json!({"cmd": "run", "constraints": [["hostname", "UNIQUE"]],
                "container": {"docker": {"image": "i"}, "portMappings": [{"containerPort": 80, "protocol": "tcp", "servicePort": 10020}]},
                "fetch": [{"uri": "http://x/a.tgz"}], "id": "/old", "maxLaunchDelaySeconds": 3600,
                "networks": [{"mode": "container/bridge"}], "portDefinitions": [{"port": 10013, "protocol": "tcp"}],
                "upgradeStrategy": {"minimumHealthCapacity": 0.5}})
        );
    }

    #[test]
    fn host_apps_without_ports_keep_an_empty_list() {
        let spec = app_spec(&json!({"id": "/a", "cmd": "run", "portDefinitions": []}), None);
        assert_eq!(spec["portDefinitions"], json!([]), "[] is not the default for host networking");
    }

    #[test]
    fn chronos_marks_statistics_and_schedules() {
        let live = json!({"name": "j", "command": "true", "description": "nightly [mesosync:prod]",
            "schedule": "R3/2030-01-03T00:00:00.000Z/P1D", "successCount": 9, "lastError": "2026-01-01T00:00:00Z",
            "mem": 128.0, "disk": 512.0, "disabled": false, "uris": [], "parents": null});
        let spec = job_spec(&live, "prod", Some(ChronosVersion::V2_4));
        assert_eq!(
            spec,
            json!({"command": "true", "description": "nightly", "disk": 512, "name": "j",
                "schedule": "R3/2030-01-03T00:00:00.000Z/P1D"})
        );
        let only_marker =
            json!({"name": "j", "command": "c", "parents": ["p"], "description": "[mesosync:prod]"});
        assert!(job_spec(&only_marker, "prod", None).get("description").is_none());
    }

    #[test]
    fn secrets_are_redacted_unless_included() {
        let app = live_app(json!({"env": {"DB_PASSWORD": "pw-1", "LOG": "debug"},
            "container": {"docker": {"image": "i", "credential": {"principal": "me", "secret": "cred-1"}}}}));
        let job = json!({"name": "j", "command": "c", "schedule": "R/2030-01-01T00:00:00Z/P1D",
            "environmentVariables": [{"name": "MODE", "value": "x"}, {"name": "API_TOKEN", "value": "tok-1"}]});
        let result =
            import(std::slice::from_ref(&app), std::slice::from_ref(&job), &ImportOptions::default());
        assert!(result.skipped.is_empty(), "{:?}", result.skipped);
        let [app_out, job_out] = &result.objects[..] else { panic!("{result:?}") };
        assert_eq!(app_out.redacted, ["/env/DB_PASSWORD", "/container/docker/credential/secret"]);
        assert_eq!(job_out.redacted, ["/environmentVariables/0/value"], "sorted by name: API_TOKEN first");
        let text = format!("{}{}", app_out.spec, job_out.spec);
        assert!(!text.contains("pw-1") && !text.contains("cred-1") && !text.contains("tok-1"), "{text}");
        assert_eq!(app_out.spec["env"]["LOG"], "debug");
        assert_eq!(app_out.spec["env"]["DB_PASSWORD"], PLACEHOLDER);
        let included =
            import(&[app], &[job], &ImportOptions { include_secrets: true, ..ImportOptions::default() });
        assert!(included.objects.iter().all(|o| o.redacted.is_empty()));
        assert_eq!(included.objects[0].spec["env"]["DB_PASSWORD"], "pw-1");
    }

    #[test]
    fn prefixes_owners_and_dangling_dependencies_decide_what_is_imported() {
        let apps = [
            json!({"id": "/openstack/a", "cmd": "c"}),
            json!({"id": "/openstack/b", "cmd": "c", "dependencies": ["/infra/db"]}),
            json!({"id": "/openstack/c", "cmd": "c", "dependencies": ["../openstack/b"]}),
            json!({"id": "/openstackish", "cmd": "c"}),
            json!({"id": "/openstack/d", "cmd": "c", "labels": {"MESOSYNC_OWNER": "other"}}),
            json!({"id": "/infra/db", "cmd": "c"}),
        ];
        let opts = ImportOptions { app_prefix: Some("/openstack".into()), ..ImportOptions::default() };
        let result = import(&apps, &[], &opts);
        let ids: Vec<&str> = result.objects.iter().map(|o| o.object.id.as_str()).collect();
        assert_eq!(ids, ["/openstack/a"]);
        let skipped: Vec<(&str, bool)> =
            result.skipped.iter().map(|s| (s.object.id.as_str(), s.error)).collect();
        assert_eq!(skipped, [("/openstack/d", false), ("/openstack/b", true), ("/openstack/c", true)]);
        assert!(result.skipped[1].reason.contains("app /infra/db"), "{:?}", result.skipped[1]);
        assert_eq!(import(&apps, &[], &ImportOptions::default()).objects.len(), 5);
        assert_eq!(result.objects[0].path, PathBuf::from("openstack/a.yaml"));
        let job = json!({"name": "nightly", "command": "c", "schedule": "R/2030-01-01T00:00:00Z/P1D"});
        let jobs = import(
            &[],
            &[job],
            &ImportOptions { job_prefix: Some("night".into()), ..ImportOptions::default() },
        );
        assert_eq!(jobs.objects[0].path, PathBuf::from("_chronos/nightly.yaml"));
        assert_eq!(jobs.counts(), (0, 1));
    }

    #[test]
    fn rendered_files_load_back_and_name_their_source_without_credentials() {
        let spec = json!({"id": "/a", "cmd": "echo 'x' \"y\"\nline2", "cpus": 0.1, "mem": 128,
            "env": {"A": "", "B": "1", "C": "true", "D": "null", "E": "{\"k\": 1}", "F": "~", "G": "0x10"}});
        let object =
            ImportedObject { object: ObjectRef::app("/a"), path: "a.yaml".into(), spec, redacted: vec![] };
        check_loads_back(&object).unwrap();
        let origin = Origin {
            url: "https://admin:pw@marathon.example:8443/?token=t".into(),
            at: DateTime::<Utc>::UNIX_EPOCH,
        };
        let text = render(&object, &origin).unwrap();
        assert!(text.starts_with("# Imported by mesosync"), "{text}");
        assert!(
            text.contains("from Marathon at https://marathon.example:8443 on 1970-01-01T00:00:00Z"),
            "{text}"
        );
        assert!(!text.contains("pw") && !text.contains("token"), "{text}");
        assert!(text.contains("kind: MarathonApp\nspec:\n  id: /a\n"), "{text}");
    }
}

/// The property the whole command exists for: whatever an API reports, the imported
/// manifest — rendered, loaded back with the real loader and planned with the real
/// planner against that live object — plans no change at all.
#[cfg(test)]
mod round_trip {
    use chrono::TimeZone;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;
    use crate::model::{DesiredState, LiveState};
    use crate::plan::{PlanOptions, compute};

    /// A member that is absent or takes one of `choices` (often the default).
    fn member(
        key: &'static str,
        choices: Vec<Value>,
    ) -> impl Strategy<Value = Option<(&'static str, Value)>> {
        proptest::option::of(proptest::sample::select(choices).prop_map(move |v| (key, v)))
    }

    fn object(members: Vec<Option<(&'static str, Value)>>, base: Value) -> Value {
        let mut out = base;
        for (k, v) in members.into_iter().flatten() {
            out[k] = v;
        }
        out
    }

    fn app() -> impl Strategy<Value = Value> {
        let scalars = vec![
            member("cpus", vec![json!(1.0), json!(0.25)]),
            member("mem", vec![json!(128.0), json!(64.0)]),
            member("disk", vec![json!(0.0), json!(10.0)]),
            member("instances", vec![json!(1), json!(3), json!(0)]),
            member("backoffFactor", vec![json!(1.15), json!(2.0)]),
            member("maxLaunchDelaySeconds", vec![json!(300), json!(3600)]),
            member("requirePorts", vec![json!(false), json!(true)]),
            member("killSelection", vec![json!("YOUNGEST_FIRST"), json!("OLDEST_FIRST")]),
            member("role", vec![json!("*"), json!("ops")]),
            member("executor", vec![json!(""), json!("//cmd")]),
            member("labels", vec![json!({}), json!({"team": "a", "API_TOKEN": "t"})]),
            member("env", vec![json!({}), json!({"A": "1", "B": "", "DB_PASSWORD": "pw"})]),
            member(
                "constraints",
                vec![
                    json!([]),
                    json!([["hostname", "UNIQUE", ""]]),
                    json!([["b", "LIKE", "x"], ["a", "UNIQUE"]]),
                ],
            ),
        ];
        let nested = vec![
            member(
                "upgradeStrategy",
                vec![
                    json!({"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0}),
                    json!({"minimumHealthCapacity": 0.5, "maximumOverCapacity": 1.0}),
                    json!({"minimumHealthCapacity": 0.0, "maximumOverCapacity": 0.0}),
                ],
            ),
            member(
                "unreachableStrategy",
                vec![
                    json!({"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0}),
                    json!({"inactiveAfterSeconds": 60, "expungeAfterSeconds": 0}),
                ],
            ),
            member("networks", vec![json!([{"mode": "host"}]), json!([{"mode": "container/bridge"}])]),
            member(
                "portDefinitions",
                vec![
                    json!([]),
                    json!([{"port": 10004, "name": "default", "protocol": "tcp"}]),
                    json!([{"port": 5000, "name": "api"}, {"port": 10007, "protocol": "udp"}]),
                ],
            ),
            member(
                "healthChecks",
                vec![
                    json!([{"protocol": "HTTP", "path": "/h", "gracePeriodSeconds": 300, "intervalSeconds": 60,
                        "timeoutSeconds": 20, "maxConsecutiveFailures": 3, "delaySeconds": 15,
                        "ignoreHttp1xx": false, "ipProtocol": "IPv4", "portIndex": 0}]),
                    json!([{"protocol": "TCP", "portIndex": 1, "intervalSeconds": 10},
                        {"protocol": "COMMAND", "command": {"value": "true"}}]),
                ],
            ),
            member(
                "fetch",
                vec![json!([{"uri": "http://x/a.tgz", "extract": true, "executable": false, "cache": false},
                    {"uri": "http://x/run", "executable": true}])],
            ),
            member(
                "container",
                vec![
                    json!({"type": "DOCKER", "docker": {"image": "i:1", "forcePullImage": false,
                        "privileged": false, "parameters": []}, "volumes": []}),
                    json!({"type": "MESOS", "docker": {"image": "i:2", "forcePullImage": true}}),
                ],
            ),
        ];
        (scalars, nested).prop_map(|(a, b)| {
            let base = json!({"id": "/g/app", "cmd": "run"});
            object(a.into_iter().chain(b).collect(), base)
        })
    }

    fn job() -> impl Strategy<Value = Value> {
        let members = vec![
            member("shell", vec![json!(true), json!(false)]),
            member("epsilon", vec![json!("PT60S"), json!("PT5M")]),
            member("retries", vec![json!(2), json!(0)]),
            member("owner", vec![json!(""), json!("ops@example.com")]),
            member("description", vec![json!(""), json!("nightly"), json!("nightly [mesosync:mesosync]")]),
            member("async", vec![json!(false), json!(true)]),
            member("cpus", vec![json!(0.1), json!(0.0), json!(1.5)]),
            member("mem", vec![json!(128.0), json!(512.0)]),
            member("disk", vec![json!(256.0), json!(0)]),
            member("softError", vec![json!(false), json!(true)]),
            member("highPriority", vec![json!(false), json!(true)]),
            member("runAsUser", vec![json!("root"), json!("nobody")]),
            member("taskInfoData", vec![json!(""), json!("x")]),
            member("concurrent", vec![json!(false), json!(true)]),
            member("maxCompletionTime", vec![json!(0), json!(600)]),
            member("uris", vec![json!([]), json!(["http://x/a"])]),
            member("constraints", vec![json!([]), json!([["rack", "EQUALS", "r1"]])]),
            member(
                "environmentVariables",
                vec![json!([]), json!([{"name": "Z", "value": "1"}, {"name": "A_SECRET", "value": "s"}])],
            ),
            member(
                "container",
                vec![
                    json!({"type": "DOCKER", "image": "busybox", "network": "HOST", "forcePullImage": false}),
                ],
            ),
            member("successCount", vec![json!(4)]),
            member("lastError", vec![json!("2026-01-01T00:00:00.000Z")]),
        ];
        let shape = proptest::sample::select(vec![
            json!({"schedule": "R/2030-01-01T00:00:00.000Z/PT1H", "scheduleTimeZone": ""}),
            json!({"schedule": "R3/2020-01-01T00:00:00.000Z/P1D", "scheduleTimeZone": "UTC"}),
            json!({"parents": ["a", "b"]}),
        ]);
        (members, shape).prop_map(|(m, shape)| {
            let mut base = json!({"name": "j", "command": "true"});
            for (k, v) in shape.as_object().into_iter().flatten() {
                base[k] = v.clone();
            }
            object(m, base)
        })
    }

    fn version() -> impl Strategy<Value = ChronosVersion> {
        proptest::sample::select(vec![ChronosVersion::V2_4, ChronosVersion::V2_5, ChronosVersion::V3])
    }

    /// Import `live`, render, load back, plan against `live`: the pointers planned as
    /// changed on the subject.
    fn planned_changes(kind: ObjectKind, live: Value, opts: &ImportOptions) -> Vec<String> {
        let (apps, jobs) = match kind {
            ObjectKind::MarathonApp => (vec![live], vec![]),
            ObjectKind::ChronosJob => {
                // The parents a dependent job names must be imported too.
                let parent = |name: &str| {
                    json!({"name": name, "command": "true", "schedule": "R/2030-01-01T00:00:00Z/P1D",
                        "description": "[mesosync:mesosync]"})
                };
                (vec![], vec![live, parent("a"), parent("b")])
            }
        };
        let imported = import(&apps, &jobs, opts);
        assert!(imported.skipped.is_empty(), "{:?}", imported.skipped);
        let mut desired = DesiredState::default();
        for object in &imported.objects {
            let origin = Origin { url: "http://m".into(), at: DateTime::<Utc>::UNIX_EPOCH };
            let text = render(object, &origin).unwrap();
            let (loaded, errors) = crate::source::load_text(&object.path, &text);
            assert!(errors.is_empty(), "{text}\n{errors:?}");
            match kind {
                ObjectKind::MarathonApp => desired.apps.extend(loaded),
                ObjectKind::ChronosJob => desired.jobs.extend(loaded),
            }
        }
        let live = LiveState::from_values(&apps, &jobs);
        let plan_opts = PlanOptions { chronos_version: opts.chronos_version, ..PlanOptions::default() };
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
        let plan = compute(&desired, &live, &plan_opts, now);
        let writes = plan.actions.iter().filter(|a| a.is_write()).count();
        assert!(writes == 0 || !opts.include_secrets, "{plan:?}");
        let subject = if kind == ObjectKind::MarathonApp { "/g/app" } else { "j" };
        let action = plan.actions.iter().find(|a| a.object.id == subject).expect("planned");
        action.changes.iter().map(|c| c.pointer.clone()).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        #[test]
        fn an_imported_app_plans_no_change(spec in app(), owned in any::<bool>()) {
            // What GET reports: the defaults filled in, floats as Marathon writes them.
            let mut live = crate::normalize::marathon::canonical_app(&spec, None);
            live["version"] = json!("2026-01-01T00:00:00.000Z");
            live["tasksRunning"] = json!(1);
            live["mem"] = json!(live["mem"].as_f64().unwrap_or(128.0));
            if owned {
                crate::normalize::marathon::with_owner_label(&mut live, "mesosync");
            }
            let opts = ImportOptions { include_secrets: true, ..ImportOptions::default() };
            let changes = planned_changes(ObjectKind::MarathonApp, live.clone(), &opts);
            let expected: Vec<String> = if owned {
                vec![]
            } else {
                // Unowned: the ownership mark is the one difference (and nothing is written).
                let labels = live.get("labels").and_then(Value::as_object).is_some_and(|l| !l.is_empty());
                vec![if labels { "/labels/MESOSYNC_OWNER".into() } else { "/labels".into() }]
            };
            prop_assert_eq!(changes, expected);
            // Redacted: only the secret pointers differ.
            let redacted = planned_changes(ObjectKind::MarathonApp, live, &ImportOptions::default());
            prop_assert!(
                redacted.iter().all(|p| p.starts_with("/labels") || p == "/env/DB_PASSWORD"),
                "{:?}",
                redacted
            );
        }

        #[test]
        fn an_imported_job_plans_no_change(spec in job(), version in version()) {
            let mut live = crate::normalize::chronos::canonical_job(&spec, Some(version), true);
            crate::normalize::chronos::with_owner_marker(&mut live, "mesosync");
            live["successCount"] = json!(7);
            let opts =
                ImportOptions { include_secrets: true, chronos_version: Some(version), ..ImportOptions::default() };
            prop_assert_eq!(planned_changes(ObjectKind::ChronosJob, live, &opts), Vec::<String>::new());
        }
    }
}
