//! Marathon apps: keyed by their absolute id, marked by the `MESOSYNC_OWNER` label,
//! normalized by [`crate::normalize::marathon`]; an update restarts every task unless
//! only `instances` changed (then it is a scale).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::check::SpecCheck;
use super::{System, looks_secret};
use crate::model::marathon as spec_model;
use crate::model::marathon::canonical_app_id;
use crate::model::{Impact, LiveHead, LiveObject, ObjectKind, ObjectRef};
use crate::normalize::marathon as norm;
use crate::normalize::{NormalizeOptions, escape_token};

/// Marathon apps.
pub struct Marathon;

/// The constraint operators Marathon knows (others: a 422).
const OPERATORS: &[&str] = &["UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS"];

impl System for Marathon {
    fn kind(&self) -> ObjectKind {
        ObjectKind::MarathonApp
    }

    fn name(&self) -> &'static str {
        "marathon"
    }

    fn title(&self) -> &'static str {
        "Marathon"
    }

    fn key_field(&self) -> &'static str {
        "id"
    }

    fn dependency_field(&self) -> &'static str {
        "dependencies"
    }

    /// Marathon's checks (`AppSpec`, id rules, `cmd` xor `args`, constraint operators, no
    /// ownership label), the id made absolute and relative dependencies resolved as
    /// Marathon does (against the app's parent group).
    fn check_spec(&self, spec: &mut Value, check: &mut SpecCheck) -> Option<ObjectRef> {
        let mut ok = true;
        for server_field in ["version", "versionInfo"] {
            if spec.get(server_field).is_some() {
                check.error(
                    &format!("/spec/{server_field}"),
                    format!(
                        "`{server_field}` is set by Marathon and must not be in a manifest \
                         (sending `version` back rolls the app back to that version)"
                    ),
                );
                if let Some(m) = spec.as_object_mut() {
                    m.remove(server_field);
                }
                ok = false;
            }
        }
        ok &= check.typed::<spec_model::AppSpec>(spec, "/spec", "spec").is_some();
        if spec.get("cmd").is_some() && spec.get("args").is_some() {
            check.error("/spec/args", "an app must have `cmd` or `args`, not both (Marathon answers 422)");
            ok = false;
        }
        let Some(id) = spec.get("id").and_then(Value::as_str) else {
            if spec.get("id").is_none() {
                check.error("/spec", "missing `id` (the app's absolute path, e.g. /openstack/infra/mariadb)");
            }
            return None;
        };
        if let Err(e) = spec_model::check_app_id(id) {
            check.error("/spec/id", e);
            return None;
        }
        ok &= check.constraints(spec, OPERATORS, "Marathon");
        let owner_labels = spec.get("labels").and_then(Value::as_object).into_iter().flatten();
        for (key, _) in owner_labels.filter(|(k, _)| k.eq_ignore_ascii_case("MESOSYNC_OWNER")) {
            check.error(
                &format!("/spec/labels/{key}"),
                "MESOSYNC_OWNER is the ownership label mesosync sets itself; a manifest must not set it",
            );
            ok = false;
        }
        if let Some(deps) = spec.get("dependencies").and_then(Value::as_array) {
            let bad: Vec<(usize, String)> = deps
                .iter()
                .enumerate()
                .filter_map(|(i, d)| {
                    d.as_str().and_then(|d| spec_model::check_app_id(d).err().map(|e| (i, e)))
                })
                .collect();
            for (i, e) in bad {
                check.error(&format!("/spec/dependencies/{i}"), format!("dependency: {e}"));
                ok = false;
            }
        }
        let id = spec_model::canonical_app_id(id);
        spec["id"] = Value::String(id.clone());
        // Marathon resolves relative dependencies against the app's parent group.
        let group = id.rsplit_once('/').map_or("/", |(g, _)| g).to_string();
        if let Some(deps) = spec.get_mut("dependencies").and_then(Value::as_array_mut) {
            for d in deps.iter_mut() {
                if let Some(s) = d.as_str() {
                    *d = Value::String(spec_model::resolve_app_id(s, &group));
                }
            }
        }
        ok.then(|| ObjectRef::app(id))
    }

    fn dependency(&self, written: &str) -> ObjectRef {
        ObjectRef::app(canonical_app_id(written))
    }

    fn live_key<'a>(&self, head: &'a LiveHead) -> Option<&'a str> {
        head.id.as_deref()
    }

    fn live_owner<'a>(&self, head: &'a LiveHead) -> Option<&'a str> {
        head.owner_label.as_deref()
    }

    fn owner_of<'a>(&self, doc: &'a Value) -> Option<&'a str> {
        norm::owner(doc)
    }

    fn mark(&self, doc: &mut Value, instance: &str) {
        norm::with_owner_label(doc, instance);
    }

    fn normalize_desired(&self, spec: &Value, opts: &NormalizeOptions) -> Value {
        norm::desired_app(spec, opts)
    }

    fn normalize_live(&self, live: &Value, opts: &NormalizeOptions) -> Value {
        norm::live_app(live, opts)
    }

    fn align(&self, desired: &mut Value, live: &Value, _now: DateTime<Utc>, _opts: &NormalizeOptions) {
        norm::align_app(desired, live);
    }

    /// The manifest as written plus the label, never `version` (which would roll the
    /// app back), with the id canonical.
    fn request_body(
        &self,
        spec: &Value,
        _live: Option<&Value>,
        instance: &str,
        _now: DateTime<Utc>,
    ) -> Value {
        let mut body = spec.clone();
        self.mark(&mut body, instance);
        if let Value::Object(map) = &mut body {
            map.shift_remove("version");
            if let Some(Value::String(id)) = map.get("id") {
                let id = canonical_app_id(id);
                map.insert("id".into(), Value::String(id));
            }
        }
        body
    }

    fn update_impact(&self) -> Impact {
        Impact::Restart
    }

    fn scale_body(&self, changed: &mut dyn Iterator<Item = &str>, want: &Value) -> Option<Value> {
        for pointer in changed {
            if pointer != "/instances" {
                return None;
            }
        }
        Some(json!({"instances": want.get("instances").cloned().unwrap_or(json!(1))}))
    }

    fn live_version(&self, live: &Value) -> Option<String> {
        live.get("version").and_then(Value::as_str).map(str::to_string)
    }

    fn listed_version(&self, live: &LiveObject) -> Option<String> {
        live.head().version.as_deref().map(str::to_string)
    }

    /// Env vars and labels named like secrets, and the Docker credential secret.
    fn secret_pointers(&self, doc: &Value, out: &mut Vec<String>) {
        for member in ["env", "labels"] {
            if let Some(map) = doc.get(member).and_then(Value::as_object) {
                out.extend(
                    map.keys().filter(|k| looks_secret(k)).map(|k| format!("/{member}/{}", escape_token(k))),
                );
            }
        }
        out.push("/container/docker/credential/secret".into());
    }
}
