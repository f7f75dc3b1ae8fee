//! Normalizers, one per system, that bring desired and live objects to one canonical
//! form so that only real differences remain. Pure: no I/O, "now" is a parameter.
//!
//! The approach (the one gitops-engine takes for Kubernetes): every rule that makes two
//! spellings of the same thing equal is applied to *both* sides — defaults, deprecated
//! forms, number forms, set ordering, empty-versus-absent. The desired side also gains
//! the ownership mark (DESIGN §3); the live side loses what the server sets (versions,
//! task counts, run statistics). What needs both sides at once — a desired `port: 0`
//! against the live assigned port, a Chronos schedule the server has rewritten, fields a
//! server version does not report — is done by the `align_*` functions after each side
//! is normalized, then `sync.ignore` ([`apply_ignore`]). Normalizing twice changes
//! nothing. The pipeline reaches these through each system (`system::System`).
//!
//! This module decides what is *equal*; it never decides what to *send*: the body of a
//! write is built by [`crate::plan`] from the manifest as written.
//!
//! Decisions worth knowing:
//! - Absent, `null` and empty collections are one thing, except Marathon
//!   `portDefinitions`, where absent means "one default port" with host networking.
//! - Integral numbers are integers (`128.0` → `128`); other floats stay as they are.
//! - A desired `port` / `servicePort` of 0 takes the live port at the same index; an
//!   absent health-check `portIndex` is 0; `delaySeconds` is 15 for HTTP/HTTPS/TCP.
//! - `sync.ignore` pointers address the normalized document (for sets: after sorting).
//! - Chronos schedules compare by period and repeat-ness; the start (and the exact
//!   count) only when the desired start is in the future. A job Chronos disabled
//!   because its count ran out is not a difference.
//! - Fields a Chronos version does not report are dropped from both sides when the
//!   version is configured, and from desired when live lacks them otherwise.

pub mod chronos;
pub mod marathon;

use serde_json::{Map, Number, Value};

pub use crate::model::chronos::ChronosVersion;

/// A Marathon version as `(major, minor, patch)`, e.g. `(1, 10, 0)`; decides the few
/// defaults that changed over 1.x.
pub type MarathonVersion = (u32, u32, u32);

/// What the normalizers need to know besides the object itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NormalizeOptions {
    /// The controller instance name written into the ownership marks.
    pub instance: String,
    /// The Marathon version when known; `None` = 1.10 behaviour.
    pub marathon_version: Option<MarathonVersion>,
    /// The Chronos version when known; `None` = decide from what live reports.
    pub chronos_version: Option<ChronosVersion>,
}

impl Default for NormalizeOptions {
    fn default() -> Self {
        Self { instance: DEFAULT_INSTANCE.to_string(), marathon_version: None, chronos_version: None }
    }
}

/// The instance name used when none is configured.
pub const DEFAULT_INSTANCE: &str = "mesosync";

/// Bring every number to one form: integral values (`128.0`) become integers (`128`),
/// so that Marathon's `mem: 32.0` equals a manifest's `mem: 32`.
pub(crate) fn canonical_numbers(value: &mut Value) {
    match value {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| !n.is_i64() && !n.is_u64()) {
                if f.fract() == 0.0 && f.abs() < 9.0e15 {
                    *value = Value::Number(Number::from(f as i64));
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(canonical_numbers),
        Value::Object(map) => map.values_mut().for_each(canonical_numbers),
        _ => {}
    }
}

/// Drop `null` members and empty arrays / objects everywhere, except the members named
/// in `keep_empty` at the top level (where `[]` means something different from absent,
/// e.g. Marathon `portDefinitions`). Marathon 1.5+ omits empty collections, 1.4 writes
/// `null`s, manifests write `[]`: all mean "none".
pub(crate) fn drop_empty(value: &mut Value, keep_empty: &[&str]) {
    if let Value::Object(map) = value {
        for member in map.values_mut() {
            drop_empty(member, &[]);
        }
        map.retain(|key, member| keep_empty.contains(&key.as_str()) || !is_empty(member));
    } else if let Value::Array(items) = value {
        for item in items.iter_mut() {
            drop_empty(item, &[]);
        }
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Sort object keys recursively, so that rendering and hashing are stable.
pub(crate) fn sort_keys(value: &mut Value) {
    match value {
        Value::Object(map) => {
            // In place: rebuilding the map re-allocated and re-hashed every key.
            map.sort_keys();
            map.values_mut().for_each(sort_keys);
        }
        Value::Array(items) => items.iter_mut().for_each(sort_keys),
        _ => {}
    }
}

/// Sort an array member as a set: by the canonical text of each element, duplicates
/// removed.
pub(crate) fn sort_set(map: &mut Map<String, Value>, key: &str) {
    if let Some(Value::Array(items)) = map.get_mut(key) {
        let mut keyed: Vec<(String, Value)> = items.drain(..).map(|v| (canonical_text(&v), v)).collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        keyed.dedup_by(|a, b| a.0 == b.0);
        items.extend(keyed.into_iter().map(|(_, v)| v));
    }
}

/// The JSON text of `value` with keys sorted: equal for equal values.
pub fn canonical_text(value: &Value) -> String {
    let mut v = value.clone();
    sort_keys(&mut v);
    v.to_string()
}

/// Insert `value` under `key` unless a value is already there.
pub(crate) fn default_member(map: &mut Map<String, Value>, key: &str, value: Value) {
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.to_string(), value);
    }
}

pub(crate) use crate::model::pointer::remove_pointer;
pub use crate::model::pointer::{escape_token, pointer_tokens};

/// Set the value at `pointer`, creating intermediate objects; false if a parent on the
/// way is not a container.
pub(crate) fn set_pointer(value: &mut Value, pointer: &str, new: Value) -> bool {
    let tokens = pointer_tokens(pointer);
    let Some((last, parents)) = tokens.split_last() else {
        *value = new;
        return true;
    };
    let mut cur = value;
    for t in parents {
        if cur.is_null() {
            *cur = Value::Object(Map::new());
        }
        cur = match cur {
            Value::Object(m) => m.entry(t.clone()).or_insert(Value::Null),
            Value::Array(a) => match t.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    if cur.is_null() {
        *cur = Value::Object(Map::new());
    }
    match cur {
        Value::Object(m) => {
            m.insert(last.clone(), new);
            true
        }
        Value::Array(a) => match last.parse::<usize>().ok() {
            Some(i) if i < a.len() => {
                a[i] = new;
                true
            }
            Some(i) if i == a.len() => {
                a.push(new);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

/// Replace the value at `pointer` only if there is one.
pub(crate) fn set_pointer_if_present(value: &mut Value, pointer: &str, new: Value) {
    if let Some(slot) = value.pointer_mut(pointer) {
        *slot = new;
    }
}

/// `sync.ignore`: at every pointer the live value wins — copied into `desired`, or the
/// pointer removed from `desired` when live has nothing there. Afterwards no difference
/// can remain under an ignored pointer.
pub fn apply_ignore(desired: &mut Value, live: &Value, ignore: &[String]) {
    for pointer in ignore {
        match live.pointer(pointer) {
            Some(v) => {
                if !set_pointer(desired, pointer, v.clone()) {
                    remove_pointer(desired, pointer);
                }
            }
            None => {
                remove_pointer(desired, pointer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn integral_floats_become_integers() {
        let mut v = json!({"mem": 128.0, "cpus": 0.5, "list": [1.0, 2]});
        canonical_numbers(&mut v);
        assert_eq!(v.to_string(), r#"{"mem":128,"cpus":0.5,"list":[1,2]}"#);
    }

    #[test]
    fn empty_collections_and_nulls_are_dropped_except_kept_keys() {
        let mut v = json!({"a": [], "b": {}, "c": null, "d": {"e": []}, "portDefinitions": [], "f": 1});
        drop_empty(&mut v, &["portDefinitions"]);
        assert_eq!(v, json!({"portDefinitions": [], "f": 1}));
        let mut v = json!({"portDefinitions": [{"port": 1, "labels": {}}]});
        drop_empty(&mut v, &["portDefinitions"]);
        assert_eq!(v, json!({"portDefinitions": [{"port": 1}]}));
    }

    #[test]
    fn pointers_follow_rfc6901_escaping() {
        assert_eq!(pointer_tokens("/labels/a~1b~0c"), vec!["labels", "a/b~c"]);
        assert_eq!(escape_token("a/b~c"), "a~1b~0c");
        let mut v = json!({"labels": {"a/b": "x"}, "list": [1, 2]});
        assert_eq!(remove_pointer(&mut v, "/labels/a~1b"), Some(json!("x")));
        assert!(set_pointer(&mut v, "/list/1", json!(5)));
        assert!(set_pointer(&mut v, "/new/deep", json!(true)));
        assert_eq!(v, json!({"labels": {}, "list": [1, 5], "new": {"deep": true}}));
    }

    #[test]
    fn ignored_pointers_take_the_live_value_or_vanish() {
        let mut desired = json!({"instances": 1, "env": {"A": "1"}});
        let live = json!({"instances": 7});
        apply_ignore(&mut desired, &live, &["/instances".into(), "/env/A".into()]);
        assert_eq!(desired, json!({"instances": 7, "env": {}}));
    }
}
