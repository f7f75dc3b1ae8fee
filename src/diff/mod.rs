//! Field-level diff between normalized desired and live objects, its rendering and the
//! masking of secrets. Pure: no I/O.
//!
//! The diff walks both canonical documents together and reports every leaf that was
//! added, removed or changed as an RFC 6901 pointer with the live and desired values
//! and where the desired value is written. Objects are compared member by member;
//! arrays of equal length element by element, arrays of different length as one
//! change (a set that gained a member reads better whole than as a shifted list).
//! Secret values are masked here, once, so no renderer can print them.

pub mod mask;
pub mod render;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{DesiredObject, Location, ObjectKind};
use crate::normalize::escape_token;

/// One difference at one JSON pointer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// RFC 6901 pointer into the object (`/container/docker/image`).
    pub pointer: String,
    /// The live value (`None`: absent live, i.e. the field is added).
    pub old: Option<Value>,
    /// The desired value (`None`: absent in the manifest, i.e. removed).
    pub new: Option<Value>,
    /// Where the desired value is written (for removals: the enclosing object).
    #[serde(skip_deserializing)]
    pub location: Option<Location>,
    /// The value is secret: renderers print `(sensitive value)` instead of it.
    pub secret: bool,
}

impl FieldChange {
    /// `+` added, `-` removed, `~` changed.
    pub fn sign(&self) -> char {
        match (&self.old, &self.new) {
            (None, Some(_)) => '+',
            (Some(_), None) => '-',
            _ => '~',
        }
    }
}

/// A raw difference between two documents: pointer, left (live) and right (desired).
#[derive(Clone, Debug, PartialEq)]
pub struct RawChange {
    /// RFC 6901 pointer.
    pub pointer: String,
    /// The live value, if any.
    pub old: Option<Value>,
    /// The desired value, if any.
    pub new: Option<Value>,
}

/// Every difference between `live` (old) and `desired` (new), in document order.
pub fn diff_values(desired: &Value, live: &Value) -> Vec<RawChange> {
    let mut out = Vec::new();
    walk(String::new(), Some(live), Some(desired), &mut out);
    out
}

fn walk(pointer: String, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<RawChange>) {
    match (old, new) {
        (Some(Value::Object(o)), Some(Value::Object(n))) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.extend(n.keys().filter(|k| !o.contains_key(*k)));
            keys.sort();
            for key in keys {
                walk(format!("{pointer}/{}", escape_token(key)), o.get(key), n.get(key), out);
            }
        }
        (Some(Value::Array(o)), Some(Value::Array(n))) if o.len() == n.len() => {
            for (i, (a, b)) in o.iter().zip(n).enumerate() {
                walk(format!("{pointer}/{i}"), Some(a), Some(b), out);
            }
        }
        (Some(a), Some(b)) if a == b => {}
        (None, None) => {}
        _ => out.push(RawChange { pointer, old: old.cloned(), new: new.cloned() }),
    }
}

/// Members that are sets (sorted by the normalizer): a change inside one is located at
/// the member itself, since indices no longer match the manifest.
const SORTED_MEMBERS: &[&str] = &[
    "constraints",
    "healthChecks",
    "dependencies",
    "acceptedResourceRoles",
    "parents",
    "environmentVariables",
];

/// The pointer into the manifest's `spec` that best locates a change at `pointer`.
fn location_pointer(pointer: &str) -> &str {
    for member in SORTED_MEMBERS {
        let head = format!("/{member}");
        if pointer == head || pointer.starts_with(&format!("{head}/")) {
            return &pointer[..head.len()];
        }
    }
    pointer
}

/// The field changes of one object of `kind`: `desired` and `live` are the normalized
/// (and aligned) documents; `object` (absent for a prune) gives locations and
/// `sync.secret` pointers. Secret values are masked in the result.
pub fn diff_object(
    kind: ObjectKind,
    object: Option<&DesiredObject>,
    desired: &Value,
    live: &Value,
) -> Vec<FieldChange> {
    let raw_changes = diff_values(desired, live);
    // Most objects of a steady-state reconcile are unchanged: do not build masked
    // copies of both documents only to throw them away.
    if raw_changes.is_empty() {
        return Vec::new();
    }
    let extra: &[String] = object.map(|o| o.sync.secret.as_slice()).unwrap_or(&[]);
    let desired_secrets = mask::secret_pointers(kind, desired, extra);
    let live_secrets = mask::secret_pointers(kind, live, extra);
    let masked_desired = mask::mask(desired, &desired_secrets);
    let masked_live = mask::mask(live, &live_secrets);
    raw_changes
        .into_iter()
        .map(|raw| {
            let under_secret =
                desired_secrets.iter().chain(&live_secrets).any(|s| mask::covers(s, &raw.pointer));
            let old =
                raw.old.as_ref().map(|_| masked_live.pointer(&raw.pointer).cloned().unwrap_or(Value::Null));
            let new = raw
                .new
                .as_ref()
                .map(|_| masked_desired.pointer(&raw.pointer).cloned().unwrap_or(Value::Null));
            let secret = under_secret || old != raw.old || new != raw.new;
            let location = object.map(|o| o.locate(location_pointer(&raw.pointer)));
            FieldChange { pointer: raw.pointer, old, new, location, secret }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn equal_documents_have_no_diff() {
        let v = json!({"a": [1, {"b": 2}], "c": {"d": "e"}});
        assert!(diff_values(&v, &v).is_empty());
    }

    #[test]
    fn added_removed_and_changed_leaves_with_escaped_pointers() {
        let live = json!({"cpus": 1, "labels": {"a/b": "x", "gone": "y"}, "list": [1, 2]});
        let desired = json!({"cpus": 2, "labels": {"a/b": "z"}, "list": [1, 2, 3], "new": true});
        let changes = diff_values(&desired, &live);
        let summary: Vec<(String, Option<Value>, Option<Value>)> =
            changes.into_iter().map(|c| (c.pointer, c.old, c.new)).collect();
        assert_eq!(
            summary,
            vec![
                ("/cpus".into(), Some(json!(1)), Some(json!(2))),
                ("/labels/a~1b".into(), Some(json!("x")), Some(json!("z"))),
                ("/labels/gone".into(), Some(json!("y")), None),
                ("/list".into(), Some(json!([1, 2])), Some(json!([1, 2, 3]))),
                ("/new".into(), None, Some(json!(true))),
            ]
        );
    }

    #[test]
    fn secret_changes_are_reported_but_masked() {
        let live = json!({"env": {"DB_PASSWORD": "old-pw", "LEVEL": "1"}});
        let desired = json!({"env": {"DB_PASSWORD": "new-pw", "LEVEL": "2"}});
        let changes = diff_object(ObjectKind::MarathonApp, None, &desired, &live);
        assert_eq!(changes.len(), 2);
        assert!(changes[0].secret);
        assert_eq!(changes[0].new, Some(json!(mask::MASK)));
        assert!(!changes[1].secret);
        let whole = diff_object(ObjectKind::MarathonApp, None, &desired, &json!({}));
        assert!(whole[0].secret);
        assert!(!whole[0].new.as_ref().unwrap().to_string().contains("new-pw"));
    }
}
