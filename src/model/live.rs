//! Live state as read from the APIs: Marathon apps and Chronos jobs as raw JSON, the
//! way `GET /v2/apps` and `GET …/scheduler/jobs` report them. Normalizing them is the
//! job of [`crate::normalize`]; this type only carries them.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Everything listed live in one reconcile.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveState {
    /// The objects of `GET /v2/apps` (`{"apps": [...]}` unwrapped), as reported.
    pub apps: Vec<Value>,
    /// The objects of `GET …/scheduler/jobs`, as reported.
    pub jobs: Vec<Value>,
}

impl LiveState {
    /// The live app with this id.
    pub fn app(&self, id: &str) -> Option<&Value> {
        self.apps.iter().find(|a| a.get("id").and_then(Value::as_str) == Some(id))
    }

    /// The live job with this name.
    pub fn job(&self, name: &str) -> Option<&Value> {
        self.jobs.iter().find(|j| j.get("name").and_then(Value::as_str) == Some(name))
    }
}

impl LiveState {
    /// Both lists keyed by id / name, for lookups in a loop: [`LiveState::app`] and
    /// [`LiveState::job`] scan, which made planning N objects cost N² (seconds at 10k).
    pub fn index(&self) -> LiveIndex<'_> {
        fn by<'a>(list: &'a [Value], key: &str) -> HashMap<&'a str, &'a Value> {
            let mut map = HashMap::with_capacity(list.len());
            for object in list {
                if let Some(k) = object.get(key).and_then(Value::as_str) {
                    // The first one wins, as with the scans.
                    map.entry(k).or_insert(object);
                }
            }
            map
        }
        LiveIndex { apps: by(&self.apps, "id"), jobs: by(&self.jobs, "name") }
    }
}

/// [`LiveState`] keyed by app id and job name (see [`LiveState::index`]).
#[derive(Debug)]
pub struct LiveIndex<'a> {
    apps: HashMap<&'a str, &'a Value>,
    jobs: HashMap<&'a str, &'a Value>,
}

impl<'a> LiveIndex<'a> {
    /// The live app with this id.
    pub fn app(&self, id: &str) -> Option<&'a Value> {
        self.apps.get(id).copied()
    }

    /// The live job with this name.
    pub fn job(&self, name: &str) -> Option<&'a Value> {
        self.jobs.get(name).copied()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_index_finds_what_the_scans_find() {
        let live = LiveState {
            apps: vec![
                json!({"id": "/a", "n": 1}),
                json!({"id": "/b"}),
                json!({"id": "/a", "n": 2}),
                json!({}),
            ],
            jobs: vec![json!({"name": "j"})],
        };
        let index = live.index();
        for id in ["/a", "/b", "/c"] {
            assert_eq!(index.app(id), live.app(id));
        }
        assert_eq!(index.job("j"), live.job("j"));
        assert_eq!(index.job("/a"), None);
    }
}
