//! Which values are secret. A value is secret when its name looks secret (an env var,
//! a label, a Chronos environment variable named like PASSWORD, TOKEN, KEY, …), when it
//! is a Docker credential secret, when a `sync.secret` pointer covers it, or when it
//! came out of a decrypted SOPS values file.
//!
//! Secrets are kept as **values**, not as pointers: a `sync.secret` pointer is resolved
//! once, against the manifest as written, to the values it covers
//! (`system::secret_values`). The normalizer sorts some arrays (Chronos
//! `environmentVariables`, Marathon `healthChecks`, …), so a pointer read against a
//! normalized document would name another element; a value is the same in every order
//! and every output. Masking those values is the job of `diff::mask`.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

/// The text a scalar stands for (a string's content, a number as JSON writes it);
/// `None` for null, booleans and containers: `true` is never a secret worth masking
/// everywhere.
pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Every scalar under `value` (itself included), as [`scalar_text`].
pub fn leaf_texts(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => map.values().for_each(|v| leaf_texts(v, out)),
        Value::Array(items) => items.iter().for_each(|v| leaf_texts(v, out)),
        other => out.extend(scalar_text(other)),
    }
}

/// A set of secret values, shared cheaply: an object's own values (resolved from its
/// manifest at load) and the values every object shares (decrypted SOPS values) are
/// layers, so attaching the shared set to ten thousand objects copies no string.
///
/// `Debug` never prints a value.
#[derive(Clone, Default, PartialEq)]
pub struct SecretValues {
    layers: Vec<Arc<BTreeSet<String>>>,
}

impl fmt::Debug for SecretValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValues({} values)", self.len())
    }
}

impl SecretValues {
    /// A set of exactly `values` (empty strings are dropped: they mask nothing).
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        let set: BTreeSet<String> = values.into_iter().filter(|v| !v.is_empty()).collect();
        if set.is_empty() { Self::default() } else { Self { layers: vec![Arc::new(set)] } }
    }

    /// Every scalar of `spec` under one of `pointers` (which the object's system
    /// chooses: `system::secret_values`). Pointers that name nothing are skipped (the
    /// loader reports them).
    pub fn at_pointers(spec: &Value, pointers: impl IntoIterator<Item = String>) -> Self {
        let mut values = Vec::new();
        for pointer in pointers {
            if let Some(v) = spec.pointer(&pointer) {
                leaf_texts(v, &mut values);
            }
        }
        Self::new(values)
    }

    /// This set and `other`'s values together (shares both, copies none).
    pub fn with(&self, other: &SecretValues) -> Self {
        let mut layers = self.layers.clone();
        for layer in &other.layers {
            if !layers.iter().any(|l| Arc::ptr_eq(l, layer)) {
                layers.push(layer.clone());
            }
        }
        Self { layers }
    }

    /// Whether `text` is one of the values.
    pub fn contains(&self, text: &str) -> bool {
        self.layers.iter().any(|l| l.contains(text))
    }

    /// Whether the scalar `value` is one of the values.
    pub fn contains_value(&self, value: &Value) -> bool {
        scalar_text(value).is_some_and(|t| self.contains(&t))
    }

    /// Every value (a value in two layers may come twice).
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.layers.iter().flat_map(|l| l.iter().map(String::as_str))
    }

    /// How many values (counting a value in two layers twice).
    pub fn len(&self) -> usize {
        self.layers.iter().map(|l| l.len()).sum()
    }

    /// No value at all.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}
