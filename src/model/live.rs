//! Live state as read from the APIs: Marathon apps and Chronos jobs as raw JSON, the
//! way `GET /v2/apps` and `GET …/scheduler/jobs` report them. Normalizing them is the
//! job of [`crate::normalize`]; this type only carries them.

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
