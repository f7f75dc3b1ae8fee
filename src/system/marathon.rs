//! Marathon apps: keyed by their absolute id, marked by the `MESOSYNC_OWNER` label,
//! normalized by [`crate::normalize::marathon`]; an update restarts every task unless
//! only `instances` changed (then it is a scale).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{System, looks_secret};
use crate::model::marathon::canonical_app_id;
use crate::model::{Impact, LiveHead, LiveObject, ObjectKind, ObjectRef};
use crate::normalize::marathon as norm;
use crate::normalize::{NormalizeOptions, escape_token};

/// Marathon apps.
pub struct Marathon;

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
