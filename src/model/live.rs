//! Live state as read from the APIs: Marathon apps and Chronos jobs the way
//! `GET /v2/apps` and `GET …/scheduler/jobs` report them. Normalizing them is the job
//! of [`crate::normalize`]; this module only carries them.
//!
//! A listing of 10,000 apps is ~14 MB of JSON and would be ~150 MB as parsed
//! `serde_json::Value`s. So each object is kept as the **bytes the API sent** (a
//! zero-copy slice of the response body), with a fingerprint of those bytes and the
//! few fields every reconcile needs ([`LiveHead`]: key, owner, dependencies, schedule,
//! version), read without building a tree. [`LiveObject::value`] parses the whole
//! object when it is actually compared — in a steady state, only objects that changed.

use std::collections::HashMap;

use bytes::Bytes;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_json::value::RawValue;

use super::marathon;

/// The fields of a live object that every reconcile reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveHead {
    /// Marathon `id` or Chronos `name` (whichever the object has; an app has `id`).
    pub id: Option<Box<str>>,
    /// Chronos `name`.
    pub name: Option<Box<str>>,
    /// Marathon's `version`.
    pub version: Option<Box<str>>,
    /// The Marathon `MESOSYNC_OWNER` label (`None` when ambiguous).
    pub owner_label: Option<Box<str>>,
    /// More than one ownership mark (labels differing only in case, or several
    /// description markers): nobody owns it, and it is reported.
    pub ambiguous_mark: bool,
    /// The Chronos `description` (which carries the ownership marker).
    pub description: Option<Box<str>>,
    /// Marathon `dependencies` / Chronos `parents`, as listed.
    pub dependencies: Box<[Box<str>]>,
    /// The Chronos `schedule`.
    pub schedule: Option<Box<str>>,
}

/// What [`LiveHead`] is read from without parsing the rest of the object.
#[derive(Deserialize)]
struct HeadWire {
    id: Option<Box<str>>,
    name: Option<Box<str>>,
    version: Option<Box<str>>,
    labels: Option<Value>,
    description: Option<Box<str>>,
    dependencies: Option<Vec<Box<str>>>,
    parents: Option<Vec<Box<str>>>,
    schedule: Option<Box<str>>,
}

fn ambiguous_description(description: &str) -> bool {
    super::chronos::owner_mark(description).is_err()
}

impl LiveHead {
    /// The head of an object already parsed (or whose fields have unexpected types).
    pub fn from_value(v: &Value) -> Self {
        let text = |field: &str| v.get(field).and_then(Value::as_str).map(Box::from);
        let list = |field: &str| -> Vec<Box<str>> {
            v.get(field)
                .and_then(Value::as_array)
                .map(|l| l.iter().filter_map(Value::as_str).map(Box::from).collect())
                .unwrap_or_default()
        };
        let mut dependencies = list("dependencies");
        dependencies.extend(list("parents"));
        Self {
            id: text("id"),
            name: text("name"),
            version: text("version"),
            owner_label: marathon::owner(v).map(Box::from),
            ambiguous_mark: v.get("labels").is_some_and(|l| marathon::owner_marks(l) > 1)
                || v.get("description").and_then(Value::as_str).is_some_and(ambiguous_description),
            description: text("description"),
            dependencies: dependencies.into(),
            schedule: text("schedule"),
        }
    }

    fn from_wire(w: HeadWire) -> Self {
        let mut dependencies = w.dependencies.unwrap_or_default();
        dependencies.extend(w.parents.unwrap_or_default());
        Self {
            id: w.id,
            name: w.name,
            version: w.version,
            owner_label: w.labels.as_ref().and_then(marathon::owner_in_labels).map(Box::from),
            ambiguous_mark: w.labels.as_ref().is_some_and(|l| marathon::owner_marks(l) > 1)
                || w.description.as_deref().is_some_and(ambiguous_description),
            description: w.description,
            dependencies: dependencies.into(),
            schedule: w.schedule,
        }
    }

    /// Read the head from one object's JSON text.
    fn read(raw: &[u8]) -> Result<Self, serde_json::Error> {
        match serde_json::from_slice::<HeadWire>(raw) {
            Ok(wire) => Ok(Self::from_wire(wire)),
            // A field of an unexpected type (or a key given twice): read it the slow,
            // forgiving way, as the normalizers would see it.
            Err(_) => Ok(Self::from_value(&serde_json::from_slice(raw)?)),
        }
    }
}

/// One live object: the JSON the API sent, its fingerprint and its [`LiveHead`].
#[derive(Clone, Debug)]
pub struct LiveObject {
    raw: Bytes,
    fingerprint: u64,
    head: LiveHead,
}

impl PartialEq for LiveObject {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl LiveObject {
    /// An object from its JSON text (which must be one JSON value).
    pub fn from_bytes(raw: Bytes) -> Result<Self, serde_json::Error> {
        let head = LiveHead::read(&raw)?;
        Ok(Self { fingerprint: super::fingerprint(&raw), raw, head })
    }

    /// An object from a parsed value (tests, fixtures, the emulator's own state).
    pub fn from_value(value: &Value) -> Self {
        let raw = Bytes::from(value.to_string());
        Self { fingerprint: super::fingerprint(&raw), head: LiveHead::from_value(value), raw }
    }

    /// The whole object, parsed (on every call).
    pub fn value(&self) -> Value {
        // The bytes were checked to be one JSON value when the object was made.
        serde_json::from_slice(&self.raw).unwrap_or(Value::Null)
    }

    /// The fields every reconcile reads.
    pub fn head(&self) -> &LiveHead {
        &self.head
    }

    /// A 64-bit hash of the JSON as listed: an object that did not change at all
    /// (not even a task count) lists the same bytes.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// The JSON text as listed.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }
}

/// Split Marathon's `{"apps": […]}` listing into its objects without copying them.
pub fn split_apps(body: Bytes) -> Result<Vec<LiveObject>, serde_json::Error> {
    #[derive(Deserialize)]
    struct Apps<'a> {
        #[serde(borrow)]
        apps: Vec<&'a RawValue>,
    }
    let items = serde_json::from_slice::<Apps<'_>>(&body)?.apps;
    slices(&body, items)
}

/// Split a JSON array (Chronos' job listing) into its objects without copying them.
pub fn split_array(body: Bytes) -> Result<Vec<LiveObject>, serde_json::Error> {
    let items: Vec<&RawValue> = serde_json::from_slice(&body)?;
    slices(&body, items)
}

/// Each item as a slice of `body` (which the items borrow from).
fn slices(body: &Bytes, items: Vec<&RawValue>) -> Result<Vec<LiveObject>, serde_json::Error> {
    let start = body.as_ptr() as usize;
    items
        .into_iter()
        .map(|item| {
            let text = item.get();
            let offset = text.as_ptr() as usize - start;
            LiveObject::from_bytes(body.slice(offset..offset + text.len()))
        })
        .collect()
}

/// Everything listed live in one reconcile.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LiveState {
    /// The objects of `GET /v2/apps` (`{"apps": [...]}` unwrapped), as reported.
    pub apps: Vec<LiveObject>,
    /// The objects of `GET …/scheduler/jobs`, as reported.
    pub jobs: Vec<LiveObject>,
}

impl<'de> Deserialize<'de> for LiveState {
    /// `{"apps": [...], "jobs": [...]}` (fixtures).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Values {
            #[serde(default)]
            apps: Vec<Value>,
            #[serde(default)]
            jobs: Vec<Value>,
        }
        let v = Values::deserialize(d)?;
        Ok(Self::from_values(&v.apps, &v.jobs))
    }
}

impl LiveState {
    /// Live state from parsed values.
    pub fn from_values(apps: &[Value], jobs: &[Value]) -> Self {
        Self {
            apps: apps.iter().map(LiveObject::from_value).collect(),
            jobs: jobs.iter().map(LiveObject::from_value).collect(),
        }
    }

    /// The listed objects of `kind`.
    pub fn list(&self, kind: super::ObjectKind) -> &[LiveObject] {
        match kind {
            super::ObjectKind::MarathonApp => &self.apps,
            super::ObjectKind::ChronosJob => &self.jobs,
        }
    }

    /// The live app with this id.
    pub fn app(&self, id: &str) -> Option<&LiveObject> {
        self.apps.iter().find(|a| a.head.id.as_deref() == Some(id))
    }

    /// The live job with this name.
    pub fn job(&self, name: &str) -> Option<&LiveObject> {
        self.jobs.iter().find(|j| j.head.name.as_deref() == Some(name))
    }

    /// Both lists keyed by id / name, for lookups in a loop: [`LiveState::app`] and
    /// [`LiveState::job`] scan, which made planning N objects cost N² (seconds at 10k).
    pub fn index(&self) -> LiveIndex<'_> {
        fn by(list: &[LiveObject], key: fn(&LiveHead) -> Option<&str>) -> HashMap<&str, &LiveObject> {
            let mut map = HashMap::with_capacity(list.len());
            for object in list {
                if let Some(k) = key(&object.head) {
                    // The first one wins, as with the scans.
                    map.entry(k).or_insert(object);
                }
            }
            map
        }
        LiveIndex { apps: by(&self.apps, |h| h.id.as_deref()), jobs: by(&self.jobs, |h| h.name.as_deref()) }
    }
}

/// [`LiveState`] keyed by app id and job name (see [`LiveState::index`]).
#[derive(Debug)]
pub struct LiveIndex<'a> {
    apps: HashMap<&'a str, &'a LiveObject>,
    jobs: HashMap<&'a str, &'a LiveObject>,
}

impl<'a> LiveIndex<'a> {
    /// The live object of `kind` with this key.
    pub fn get(&self, kind: super::ObjectKind, key: &str) -> Option<&'a LiveObject> {
        match kind {
            super::ObjectKind::MarathonApp => self.app(key),
            super::ObjectKind::ChronosJob => self.job(key),
        }
    }

    /// The live app with this id.
    pub fn app(&self, id: &str) -> Option<&'a LiveObject> {
        self.apps.get(id).copied()
    }

    /// The live job with this name.
    pub fn job(&self, name: &str) -> Option<&'a LiveObject> {
        self.jobs.get(name).copied()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_index_finds_what_the_scans_find() {
        let live = LiveState::from_values(
            &[json!({"id": "/a", "n": 1}), json!({"id": "/b"}), json!({"id": "/a", "n": 2}), json!({})],
            &[json!({"name": "j"})],
        );
        let index = live.index();
        for id in ["/a", "/b", "/c"] {
            assert_eq!(index.app(id), live.app(id));
        }
        assert_eq!(index.app("/a").map(LiveObject::value), Some(json!({"id": "/a", "n": 1})));
        assert_eq!(index.job("j"), live.job("j"));
        assert_eq!(index.job("/a"), None);
    }

    #[test]
    fn a_listing_splits_into_objects_that_borrow_its_bytes() {
        let body = Bytes::from_static(
            br#"{"apps": [ {"id":"/a","version":"v1","labels":{"MESOSYNC_OWNER":"m","x":"1"},
                "dependencies":["/b"],"cpus":0.5},
               {"id":"/b","labels":{"MESOSYNC_OWNER":7}} ]}"#,
        );
        let apps = split_apps(body).unwrap();
        assert_eq!(apps.len(), 2);
        let a = apps[0].head();
        assert_eq!(a.id.as_deref(), Some("/a"));
        assert_eq!(a.version.as_deref(), Some("v1"));
        assert_eq!(a.owner_label.as_deref(), Some("m"));
        assert_eq!(&*a.dependencies, [Box::from("/b")]);
        assert_eq!(apps[0].value()["cpus"], 0.5);
        // A label of another type does not fail the listing; it is just not an owner.
        assert_eq!(apps[1].head().owner_label, None);
        assert_eq!(apps[1].head().id.as_deref(), Some("/b"));
        // The same bytes, the same fingerprint; one byte more, another.
        let again = LiveObject::from_bytes(Bytes::copy_from_slice(apps[0].raw())).unwrap();
        assert_eq!(again.fingerprint(), apps[0].fingerprint());
        assert_ne!(apps[0].fingerprint(), apps[1].fingerprint());

        let jobs = split_array(
            Bytes::from_static(br#"[{"name":"j","parents":["p"],"description":"d [mesosync:m]"},{"name":"s","schedule":"R/2026-01-01T00:00:00Z/PT1H"}]"#),
        )
        .unwrap();
        assert_eq!(jobs[0].head().name.as_deref(), Some("j"));
        assert_eq!(&*jobs[0].head().dependencies, [Box::from("p")]);
        assert_eq!(jobs[0].head().description.as_deref(), Some("d [mesosync:m]"));
        assert_eq!(jobs[1].head().schedule.as_deref(), Some("R/2026-01-01T00:00:00Z/PT1H"));
        assert!(split_array(Bytes::from_static(b"[1,")).is_err());
        assert!(split_apps(Bytes::from_static(b"[]")).is_err());
    }

    #[test]
    fn parsed_and_listed_objects_have_the_same_head() {
        let v =
            json!({"id": "/a", "version": "v", "labels": {"MESOSYNC_OWNER": "m"}, "dependencies": ["/x", 3]});
        let listed = LiveObject::from_bytes(Bytes::from(v.to_string())).unwrap();
        assert_eq!(listed.head(), LiveObject::from_value(&v).head());
        assert_eq!(listed.head().dependencies.len(), 1, "the number is not an id");
    }
}
