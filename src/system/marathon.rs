//! Marathon apps: keyed by their absolute id, marked by the `MESOSYNC_OWNER` label,
//! normalized by [`crate::normalize::marathon`]; an update restarts every task unless
//! only `instances` changed (then it is a scale).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::check::SpecCheck;
use super::{System, looks_secret};
use crate::health::Health;
use crate::model::marathon as spec_model;
use crate::model::marathon::canonical_app_id;
use crate::model::{Impact, LiveHead, ObjectKind, ObjectRef, ReadHead};
use crate::normalize::marathon as norm;
use crate::normalize::{NormalizeOptions, escape_token};

/// Marathon apps.
pub struct Marathon;

/// The members of a listed app its head is read from (the rest is skipped unparsed).
#[derive(Deserialize)]
struct HeadWire {
    id: Option<Box<str>>,
    version: Option<Box<str>>,
    labels: Option<Value>,
    dependencies: Option<Vec<Box<str>>>,
}

/// An app's head: `id`, the `MESOSYNC_OWNER` label, `version`, `dependencies`.
impl ReadHead for Marathon {
    fn head_of(&self, v: &Value) -> LiveHead {
        LiveHead {
            key: LiveHead::text_of(v, "id"),
            owner: spec_model::owner(v).map(Box::from),
            ambiguous_mark: v.get("labels").is_some_and(|l| spec_model::owner_marks(l) > 1),
            version: LiveHead::text_of(v, "version"),
            dependencies: LiveHead::list_of(v, "dependencies"),
            schedule: None,
        }
    }

    fn read_head(&self, raw: &[u8]) -> Result<LiveHead, serde_json::Error> {
        LiveHead::read_with(raw, self, |w: HeadWire| LiveHead {
            key: w.id,
            owner: w.labels.as_ref().and_then(spec_model::owner_in_labels).map(Box::from),
            ambiguous_mark: w.labels.as_ref().is_some_and(|l| spec_model::owner_marks(l) > 1),
            version: w.version,
            dependencies: w.dependencies.unwrap_or_default().into(),
            schedule: None,
        })
    }
}

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

    /// Refused, saying why: an app is never run once.
    fn check_run_once(&self, _spec: &Value, check: &mut SpecCheck) -> bool {
        check.error(
            "/sync/run",
            "`sync.run: onChange` is for Chronos jobs (an app runs all the time; its dependants wait \
             for it to be healthy)",
        );
        false
    }

    fn dependency(&self, written: &str) -> ObjectRef {
        ObjectRef::app(canonical_app_id(written))
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

    /// Healthy, or Suspended (scaled to 0 on purpose: nothing to wait for).
    fn ready_for_dependants(&self, health: Health) -> bool {
        matches!(health, Health::Healthy | Health::Suspended)
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

    /// In the `MESOSYNC_SENSITIVE` label (a JSON array).
    fn record_secret_pointers(&self, body: &mut Value, pointers: &[String]) {
        norm::with_secret_pointers(body, pointers);
    }

    fn recorded_secret_pointers(&self, live: &Value) -> Vec<String> {
        norm::recorded_secret_pointers(live)
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

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use serde_json::json;

    use super::*;
    use crate::model::LiveObject;
    use crate::model::live::split_apps;

    #[test]
    fn an_apps_head_is_read_from_the_listing() {
        let body = Bytes::from_static(
            br#"{"apps": [ {"id":"/a","version":"v1","labels":{"MESOSYNC_OWNER":"m","x":"1"},
                "dependencies":["/b"],"cpus":0.5},
               {"id":"/b","labels":{"MESOSYNC_OWNER":7}},
               {"id":"/c","labels":{"MESOSYNC_OWNER":"m","mesosync_owner":"n"}} ]}"#,
        );
        let apps = split_apps(body, &Marathon).unwrap();
        let a = apps[0].head();
        assert_eq!(
            (a.key.as_deref(), a.version.as_deref(), a.owner.as_deref()),
            (Some("/a"), Some("v1"), Some("m"))
        );
        assert_eq!(&*a.dependencies, [Box::from("/b")]);
        assert!(Marathon.owns(a, "m", None) && !Marathon.owns(a, "n", None));
        // A label of another type does not fail the listing; it is just not an owner.
        assert_eq!((apps[1].head().key.as_deref(), apps[1].head().owner.as_deref()), (Some("/b"), None));
        // Two labels that differ in case: nobody's, and reported.
        assert_eq!((apps[2].head().owner.as_deref(), apps[2].head().ambiguous_mark), (None, true));
        assert_eq!(Marathon.listed_version(&apps[0]).as_deref(), Some("v1"));
    }

    #[test]
    fn parsed_and_listed_apps_have_the_same_head() {
        let v =
            json!({"id": "/a", "version": "v", "labels": {"MESOSYNC_OWNER": "m"}, "dependencies": ["/x", 3]});
        let listed = LiveObject::from_bytes(Bytes::from(v.to_string()), &Marathon).unwrap();
        assert_eq!(listed.head(), LiveObject::from_value(&v, &Marathon).head());
        assert_eq!(listed.head().dependencies.len(), 1, "the number is not an id");
        let v = json!({"id": "/a", "labels": {"MESOSYNC_OWNER": "m", "Mesosync_Owner": "m"}});
        let listed = LiveObject::from_bytes(Bytes::from(v.to_string()), &Marathon).unwrap();
        assert_eq!(listed.head(), LiveObject::from_value(&v, &Marathon).head());
        assert!(listed.head().ambiguous_mark);
    }
}
