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
//!
//! Which member of an object holds which of those is its system's knowledge: a
//! [`ReadHead`] (each `System` is one) reads the head, this module only keeps it.

use std::collections::HashMap;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// The fields of a live object that every reconcile reads, whatever its system.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveHead {
    /// The object's key (a Marathon `id`, a Chronos `name`).
    pub key: Option<Box<str>>,
    /// The instance its ownership mark names (a Marathon label, a Chronos description
    /// marker); `None` when unmarked or ambiguous.
    pub owner: Option<Box<str>>,
    /// More than one ownership mark (labels differing only in case, or several
    /// description markers): nobody owns it, and it is reported.
    pub ambiguous_mark: bool,
    /// The version the listing carries, for systems that have one (Marathon's
    /// `version`); a system without one derives it from the whole object.
    pub version: Option<Box<str>>,
    /// Keys of the same-system objects it depends on, as listed (Marathon
    /// `dependencies`, Chronos `parents`).
    pub dependencies: Box<[Box<str>]>,
    /// The schedule, for objects that run on one (a Chronos `schedule`).
    pub schedule: Option<Box<str>>,
}

/// Reads the [`LiveHead`] of one listed object of a system: implemented by each
/// system (`crate::system`), which knows its members.
pub trait ReadHead {
    /// The head of an object already parsed (or whose members have unexpected types).
    fn head_of(&self, value: &Value) -> LiveHead;

    /// The head of one object from its JSON text, the fast way when the system has one
    /// ([`LiveHead::read_with`]); by default the object is parsed whole.
    fn read_head(&self, raw: &[u8]) -> Result<LiveHead, serde_json::Error> {
        Ok(self.head_of(&serde_json::from_slice(raw)?))
    }
}

impl LiveHead {
    /// Read a head through `W`, a struct of only the members the head needs (borrowed
    /// from `raw` where it can: no tree is built), made a head by `from_wire`. When a
    /// member has an unexpected type (or a key is given twice) the object is parsed
    /// and read the slow, forgiving way (`reader.head_of`), as the normalizers would
    /// see it. An error only when `raw` is not JSON.
    pub fn read_with<'a, W: Deserialize<'a>, R: ReadHead + ?Sized>(
        raw: &'a [u8],
        reader: &R,
        from_wire: impl FnOnce(W) -> LiveHead,
    ) -> Result<Self, serde_json::Error> {
        match serde_json::from_slice::<W>(raw) {
            Ok(wire) => Ok(from_wire(wire)),
            Err(_) => Ok(reader.head_of(&serde_json::from_slice(raw)?)),
        }
    }

    /// A string member of a parsed object (`None` when absent or not a string).
    pub fn text_of(value: &Value, member: &str) -> Option<Box<str>> {
        value.get(member).and_then(Value::as_str).map(Box::from)
    }

    /// The strings of an array member of a parsed object (other items skipped).
    pub fn list_of(value: &Value, member: &str) -> Box<[Box<str>]> {
        value
            .get(member)
            .and_then(Value::as_array)
            .map(|l| l.iter().filter_map(Value::as_str).map(Box::from).collect())
            .unwrap_or_default()
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
    /// An object from its JSON text (which must be one JSON value), its head read by
    /// its system.
    pub fn from_bytes<R: ReadHead + ?Sized>(raw: Bytes, reader: &R) -> Result<Self, serde_json::Error> {
        let head = reader.read_head(&raw)?;
        Ok(Self { fingerprint: super::fingerprint(&raw), raw, head })
    }

    /// An object from a parsed value (tests, fixtures, the offline preview).
    pub fn from_value<R: ReadHead + ?Sized>(value: &Value, reader: &R) -> Self {
        let raw = Bytes::from(value.to_string());
        Self { fingerprint: super::fingerprint(&raw), head: reader.head_of(value), raw }
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
pub fn split_apps<R: ReadHead + ?Sized>(
    body: Bytes,
    reader: &R,
) -> Result<Vec<LiveObject>, serde_json::Error> {
    #[derive(Deserialize)]
    struct Apps<'a> {
        #[serde(borrow)]
        apps: Vec<&'a RawValue>,
    }
    let items = serde_json::from_slice::<Apps<'_>>(&body)?.apps;
    slices(&body, items, reader)
}

/// Split a JSON array (Chronos' job listing) into its objects without copying them.
pub fn split_array<R: ReadHead + ?Sized>(
    body: Bytes,
    reader: &R,
) -> Result<Vec<LiveObject>, serde_json::Error> {
    let items: Vec<&RawValue> = serde_json::from_slice(&body)?;
    slices(&body, items, reader)
}

/// Each item as a slice of `body` (which the items borrow from).
fn slices<R: ReadHead + ?Sized>(
    body: &Bytes,
    items: Vec<&RawValue>,
    reader: &R,
) -> Result<Vec<LiveObject>, serde_json::Error> {
    let start = body.as_ptr() as usize;
    items
        .into_iter()
        .map(|item| {
            let text = item.get();
            let offset = text.as_ptr() as usize - start;
            LiveObject::from_bytes(body.slice(offset..offset + text.len()), reader)
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

/// Its constructor from parsed values and its `Deserialize` (fixtures) live in
/// `crate::system`, which reads each object's head.
impl LiveState {
    /// The listed objects of `kind`.
    pub fn list(&self, kind: super::ObjectKind) -> &[LiveObject] {
        match kind {
            super::ObjectKind::MarathonApp => &self.apps,
            super::ObjectKind::ChronosJob => &self.jobs,
        }
    }

    /// The live app with this id.
    pub fn app(&self, id: &str) -> Option<&LiveObject> {
        self.apps.iter().find(|a| a.head.key.as_deref() == Some(id))
    }

    /// The live job with this name.
    pub fn job(&self, name: &str) -> Option<&LiveObject> {
        self.jobs.iter().find(|j| j.head.key.as_deref() == Some(name))
    }

    /// Both lists keyed by id / name, for lookups in a loop: [`LiveState::app`] and
    /// [`LiveState::job`] scan, which made planning N objects cost N² (seconds at 10k).
    pub fn index(&self) -> LiveIndex<'_> {
        fn by(list: &[LiveObject]) -> HashMap<&str, &LiveObject> {
            let mut map = HashMap::with_capacity(list.len());
            for object in list {
                if let Some(k) = object.head.key.as_deref() {
                    // The first one wins, as with the scans.
                    map.entry(k).or_insert(object);
                }
            }
            map
        }
        LiveIndex { apps: by(&self.apps), jobs: by(&self.jobs) }
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

    /// A system as small as one can be: objects keyed by `k`, marked by `owner`.
    struct Toy;

    #[derive(Deserialize)]
    struct ToyWire<'a> {
        k: Option<&'a str>,
        owner: Option<Box<str>>,
    }

    impl ReadHead for Toy {
        fn head_of(&self, v: &Value) -> LiveHead {
            LiveHead {
                key: LiveHead::text_of(v, "k"),
                owner: LiveHead::text_of(v, "owner"),
                ..LiveHead::default()
            }
        }

        fn read_head(&self, raw: &[u8]) -> Result<LiveHead, serde_json::Error> {
            LiveHead::read_with(raw, self, |w: ToyWire<'_>| LiveHead {
                key: w.k.map(Box::from),
                owner: w.owner,
                ..LiveHead::default()
            })
        }
    }

    #[test]
    fn a_listing_splits_into_objects_that_borrow_its_bytes() {
        let body =
            Bytes::from_static(br#"{"apps": [ {"k":"a","owner":"m","cpus":0.5}, {"k":"b","owner":7} ]}"#);
        let apps = split_apps(body.clone(), &Toy).unwrap();
        assert_eq!(apps.len(), 2);
        assert_eq!(apps[0].raw().as_ptr(), body[11..].as_ptr(), "a slice of the body, not a copy");
        assert_eq!((apps[0].head().key.as_deref(), apps[0].head().owner.as_deref()), (Some("a"), Some("m")));
        assert_eq!(apps[0].value()["cpus"], 0.5);
        // A member of another type does not fail the listing: it is read the slow way.
        assert_eq!((apps[1].head().key.as_deref(), apps[1].head().owner.as_deref()), (Some("b"), None));
        // The same bytes, the same fingerprint; other bytes, another.
        let again = LiveObject::from_bytes(Bytes::copy_from_slice(apps[0].raw()), &Toy).unwrap();
        assert_eq!(again.fingerprint(), apps[0].fingerprint());
        assert_ne!(apps[0].fingerprint(), apps[1].fingerprint());

        let jobs = split_array(Bytes::from_static(br#"[{"k":"j"},{"k":"s"}]"#), &Toy).unwrap();
        assert_eq!(jobs[1].head().key.as_deref(), Some("s"));
        assert!(split_array(Bytes::from_static(b"[1,"), &Toy).is_err());
        assert!(split_apps(Bytes::from_static(b"[]"), &Toy).is_err());
    }

    #[test]
    fn the_default_reader_parses_the_whole_object() {
        struct Slow;
        impl ReadHead for Slow {
            fn head_of(&self, v: &Value) -> LiveHead {
                LiveHead { dependencies: LiveHead::list_of(v, "after"), ..LiveHead::default() }
            }
        }
        let object =
            LiveObject::from_bytes(Bytes::from_static(br#"{"after": ["x", 3, "y"]}"#), &Slow).unwrap();
        assert_eq!(&*object.head().dependencies, [Box::from("x"), Box::from("y")]);
        assert!(LiveObject::from_bytes(Bytes::from_static(b"{"), &Slow).is_err());
    }
}
