//! Field-level diff between normalized desired and live objects, its rendering and the
//! masking of secrets. Pure: no I/O.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::Location;

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
