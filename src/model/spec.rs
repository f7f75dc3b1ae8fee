//! A desired spec, held as compact JSON text.
//!
//! A controller keeps every desired object of its manifest set for its whole life
//! (tens of thousands). A parsed `serde_json::Value` costs about ten times its JSON
//! text (a map entry, a `String` and an index slot per key), so the spec is kept as
//! text and parsed only when an object is actually compared or written — which, in a
//! steady state, is only for the objects whose file or live form changed.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

/// The JSON an API accepts for one app or job, as compact text (key order kept).
#[derive(Clone, PartialEq, Eq)]
pub struct Spec {
    text: Arc<str>,
    fingerprint: u64,
}

impl Spec {
    /// Keep `value` as text.
    pub fn new(value: &Value) -> Self {
        let text: Arc<str> = value.to_string().into();
        Self { fingerprint: super::fingerprint(text.as_bytes()), text }
    }

    /// The spec as a JSON value (parsed on every call).
    pub fn value(&self) -> Value {
        // The text was written by `Spec::new` from a `Value`, so it always parses; a
        // float reads back to the same bits (`float_roundtrip`).
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    /// The compact JSON text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// A 64-bit hash of the text: equal specs have equal fingerprints.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }
}

impl From<Value> for Spec {
    fn from(value: Value) -> Self {
        Self::new(&value)
    }
}

impl fmt::Debug for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_spec_reads_back_exactly_what_was_kept() {
        let value = json!({"id": "/a", "cpus": 0.1, "mem": 128.0, "z": 1, "a": [true, null, "x"],
                           "big": 12_345_678_901_234_567u64, "tiny": 1e-300});
        let spec = Spec::new(&value);
        assert_eq!(spec.value(), value);
        // Key order is kept (the text is what a user would recognise).
        assert!(spec.text().starts_with(r#"{"id":"/a","cpus":0.1"#), "{}", spec.text());
        assert_eq!(spec.fingerprint(), Spec::new(&spec.value()).fingerprint());
        assert_ne!(spec.fingerprint(), Spec::new(&json!({"id": "/a"})).fingerprint());
    }

    #[test]
    fn floats_survive_the_round_trip_bit_for_bit() {
        for f in [
            0.1_f64,
            0.3,
            1.0 / 3.0,
            2.225_073_858_507_201e-308,
            9_007_199_254_740_993.0,
            123.456_789_012_345_67,
        ] {
            let back = Spec::new(&json!({ "f": f })).value();
            assert_eq!(back["f"].as_f64().map(f64::to_bits), Some(f.to_bits()), "{f}");
        }
    }
}
