//! YAML (and JSON) documents parsed into a tree that remembers where every value was
//! written, then flattened into plain JSON plus a pointer → line:column map.
//!
//! Why serde-saphyr: serde_yaml is archived and unmaintained; serde-saphyr is
//! maintained, serde-compatible, built on a YAML 1.2 parser (so JSON files parse too,
//! and `no`/`yes` stay strings), refuses duplicate keys, and its `Spanned<T>` gives
//! the line and column of any value — which is what provenance needs (kube-rs moved
//! to it for the same reasons).

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::Spanned;

use crate::model::pointer::escape_token;

/// A YAML value with the position of every node below it.
#[derive(Debug)]
pub struct Node(Spanned<NodeValue>);

/// The value part of a [`Node`].
#[derive(Debug)]
pub enum NodeValue {
    /// `~`, `null`, or an empty value.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number that fits JSON.
    Number(Number),
    /// A string.
    String(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping with string keys, in document order.
    Map(Vec<(Spanned<String>, Node)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Spanned::<NodeValue>::deserialize(d).map(Node)
    }
}

impl<'de> Deserialize<'de> for NodeValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = NodeValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<NodeValue, E> {
        Ok(NodeValue::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<NodeValue, E> {
        Ok(NodeValue::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<NodeValue, D::Error> {
        d.deserialize_any(NodeVisitor)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<NodeValue, E> {
        Ok(NodeValue::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<NodeValue, E> {
        Ok(NodeValue::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<NodeValue, E> {
        Ok(NodeValue::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<NodeValue, E> {
        Number::from_f64(v)
            .map(NodeValue::Number)
            .ok_or_else(|| E::custom(format!("the number {v} cannot be represented in JSON")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<NodeValue, E> {
        Ok(NodeValue::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<NodeValue, E> {
        Ok(NodeValue::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NodeValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(NodeValue::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NodeValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(NodeValue::Map(entries))
    }
}

impl Node {
    /// Line and column where this node starts.
    pub fn position(&self) -> (u32, u32) {
        (self.0.referenced.line() as u32, self.0.referenced.column() as u32)
    }

    /// The value without positions.
    pub fn value(&self) -> &NodeValue {
        &self.0.value
    }

    /// Flatten into JSON, calling `record(pointer, line, column)` for every node
    /// (map keys are recorded under their value's pointer; the key's position wins
    /// because an error about a field is best shown at its name).
    pub fn to_json(&self, pointer: &str, record: &mut dyn FnMut(String, u32, u32)) -> Value {
        let (line, column) = self.position();
        record(pointer.to_string(), line, column);
        match &self.0.value {
            NodeValue::Null => Value::Null,
            NodeValue::Bool(b) => Value::Bool(*b),
            NodeValue::Number(n) => Value::Number(n.clone()),
            NodeValue::String(s) => Value::String(s.clone()),
            NodeValue::Seq(items) => Value::Array(
                items.iter().enumerate().map(|(i, n)| n.to_json(&format!("{pointer}/{i}"), record)).collect(),
            ),
            NodeValue::Map(entries) => {
                let mut map = Map::new();
                for (key, node) in entries {
                    let child = format!("{pointer}/{}", escape_token(&key.value));
                    let value = node.to_json(&child, record);
                    record(child, key.referenced.line() as u32, key.referenced.column() as u32);
                    map.insert(key.value.clone(), value);
                }
                Value::Object(map)
            }
        }
    }
}

/// Parse every document of a YAML (or JSON) text.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, serde_saphyr::Error> {
    // YAML 1.2 core schema only, so that no YAML 1.1 reader could see another value:
    // `no`, `yes`, `on` stay strings (kolla's env values use them), so does `1_000`
    // (a YAML 1.1 integer), and a `<<` merge key (YAML 1.1 only) is an error rather
    // than merged by one reader and a plain key to another.
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options.underscored_numbers_as_strings = true;
    options.merge_keys = serde_saphyr::MergeKeyPolicy::Error;
    serde_saphyr::from_str_multiple_with_options::<Node, Vec<Node>>(text, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Positions = Vec<(String, u32, u32)>;

    fn flatten(text: &str) -> Vec<(Value, Positions)> {
        parse_documents(text)
            .unwrap()
            .iter()
            .map(|n| {
                let mut seen = Vec::new();
                let v = n.to_json("", &mut |p, l, c| seen.push((p, l, c)));
                (v, seen)
            })
            .collect()
    }

    #[test]
    fn records_positions_of_nested_values() {
        let docs = flatten(
            "kind: MarathonApp\nspec:\n  id: /a\n  cpus: 0.5\n  constraints:\n    - [hostname, UNIQUE]\n",
        );
        assert_eq!(docs.len(), 1);
        let (value, seen) = &docs[0];
        assert_eq!(value["spec"]["cpus"], serde_json::json!(0.5));
        let at = |p: &str| seen.iter().rev().find(|(q, _, _)| q == p).map(|(_, l, c)| (*l, *c));
        assert_eq!(at("/spec/cpus"), Some((4, 3)));
        assert_eq!(at("/spec/constraints/0/1"), Some((6, 18)));
    }

    #[test]
    fn splits_documents_and_keeps_yaml_1_2_strings() {
        let docs = flatten("a: no\n---\nb: 128\n---\n{\"c\": 128.0}\n");
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[0].0["a"], serde_json::json!("no"));
        assert_eq!(docs[1].0["b"], serde_json::json!(128));
        assert_eq!(docs[2].0["c"].as_f64(), Some(128.0));
    }

    #[test]
    fn yaml_1_1_numbers_stay_strings_and_merge_keys_are_refused() {
        let docs = flatten("a: 1_000\nb: 0x1F\nc: 010\n");
        assert_eq!(docs[0].0["a"], serde_json::json!("1_000"));
        assert_eq!(docs[0].0["b"], serde_json::json!(31), "hex is YAML 1.2 core");
        assert_eq!(docs[0].0["c"].as_f64(), Some(10.0), "no YAML 1.1 octal");
        assert!(parse_documents("a: &x {b: 1}\nc:\n  <<: *x\n").is_err());
    }

    #[test]
    fn duplicate_keys_are_errors() {
        assert!(parse_documents("a: 1\na: 2\n").is_err());
    }
}
