//! Checking a manifest's spec the way its server would: every value Marathon or
//! Chronos would refuse (or silently drop) is a problem at the JSON pointer it is
//! written at, which the loader turns into `file:line:column`. Each system checks its
//! own specs ([`super::System::check_spec`]) with these tools: typed models read
//! strictly, constraint operators, "did you mean" hints.

use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_path_to_error::Segment;

use crate::model::pointer::{escape_token, remove_pointer};

/// One problem of a document: where (a JSON pointer into the document) and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Pointer into the document (`/spec/cpus`; "" for the document itself).
    pub pointer: String,
    /// What is wrong, for people.
    pub message: String,
}

/// The problems found in one document, in the order they were found.
#[derive(Debug, Default)]
pub struct SpecCheck {
    problems: Vec<Problem>,
}

impl SpecCheck {
    /// Record a problem at `pointer`.
    pub fn error(&mut self, pointer: &str, message: impl Into<String>) {
        self.problems.push(Problem { pointer: pointer.to_string(), message: message.into() });
    }

    /// Every problem recorded, oldest first.
    pub fn into_problems(self) -> Vec<Problem> {
        self.problems
    }

    /// Deserialize `value` into `T`, reporting every unknown field and wrong type
    /// (each offending field is set aside and the check repeated, so one run shows
    /// them all). `base` is the pointer of `value` in the document.
    pub fn typed<T: DeserializeOwned>(&mut self, value: &Value, base: &str, what: &str) -> Option<T> {
        let mut work = value.clone();
        let mut clean = true;
        for _ in 0..64 {
            // Strict: a struct only from a mapping, as the servers read them.
            match serde_path_to_error::deserialize::<_, T>(crate::model::strict::Strict(&work)) {
                Ok(t) => return clean.then_some(t),
                Err(err) => {
                    clean = false;
                    let tokens = path_tokens(err.path());
                    let message = err.inner().to_string();
                    let (tokens, text) = describe(tokens, &message, what);
                    let pointer: String = tokens.iter().map(|t| format!("/{}", escape_token(t))).collect();
                    self.error(&format!("{base}{pointer}"), text);
                    if pointer.is_empty() || remove_pointer(&mut work, &pointer).is_none() {
                        return None;
                    }
                }
            }
        }
        None
    }

    /// `constraints`: `[field, OPERATOR]` or `[field, OPERATOR, value]`, with an
    /// operator the system knows (Marathon rejects others with 422; Chronos ignores
    /// them silently, which is worse).
    pub fn constraints(&mut self, spec: &Value, operators: &[&str], system: &str) -> bool {
        let Some(list) = spec.get("constraints").and_then(Value::as_array) else { return true };
        let mut ok = true;
        for (i, c) in list.iter().enumerate() {
            let Some(parts) = c.as_array() else { continue };
            let at = format!("/spec/constraints/{i}");
            if !(2..=3).contains(&parts.len()) {
                self.error(&at, "a constraint is [field, OPERATOR] or [field, OPERATOR, value]");
                ok = false;
                continue;
            }
            let op = parts[1].as_str().unwrap_or_default();
            if !operators.contains(&op) {
                let hint = did_you_mean(op, operators);
                self.error(
                    &format!("{at}/1"),
                    format!(
                        "unknown {system} constraint operator `{op}`{hint}; expected one of {}",
                        operators.join(", ")
                    ),
                );
                ok = false;
            }
        }
        ok
    }
}

/// The tokens of a serde path (map keys and sequence indices).
fn path_tokens(path: &serde_path_to_error::Path) -> Vec<String> {
    path.iter()
        .filter_map(|s| match s {
            Segment::Seq { index } => Some(index.to_string()),
            Segment::Map { key } => Some(key.clone()),
            Segment::Enum { .. } | Segment::Unknown => None,
        })
        .collect()
}

/// Turn serde's message into one a user can act on, and name the field it is about.
fn describe(mut tokens: Vec<String>, message: &str, what: &str) -> (Vec<String>, String) {
    let field_path = |tokens: &[String]| {
        if tokens.is_empty() { what.to_string() } else { format!("{what}.{}", tokens.join(".")) }
    };
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        let hint = did_you_mean(field, &candidates);
        // serde_path_to_error's path already ends at the unknown key.
        if tokens.last().map(String::as_str) != Some(field) {
            tokens.push(field.to_string());
        }
        let parent = field_path(&tokens[..tokens.len() - 1]);
        return (tokens, format!("unknown field `{field}` in {parent}{hint}"));
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or(rest);
        return (tokens.clone(), format!("missing field `{field}` in {}", field_path(&tokens)));
    }
    if message.starts_with("data did not match any variant of untagged enum EnvValue") {
        return (
            tokens.clone(),
            format!("{}: an env value must be a string or {{secret: <name>}}", field_path(&tokens)),
        );
    }
    let text = message
        .replace("f64", "a number")
        .replace("u32", "a whole number")
        .replace("u64", "a whole number")
        .replace("i64", "a whole number");
    (tokens.clone(), format!("{}: {text}", field_path(&tokens)))
}

/// ` (did you mean `x`?)` when a candidate is close to `word`, else "".
pub fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    let lower = word.to_ascii_lowercase();
    // Names from other tools (Kubernetes, Chronos, docker) that are far from Marathon's
    // spelling; offered only when the suggestion is a valid field here.
    const ALIASES: &[(&str, &str)] = &[
        ("command", "cmd"),
        ("comand", "cmd"),
        ("memory", "mem"),
        ("replicas", "instances"),
        ("arguments", "args"),
        ("environment", "env"),
        ("environmentvariables", "env"),
        ("image", "container"),
    ];
    if let Some((_, target)) =
        ALIASES.iter().find(|(alias, target)| *alias == lower && candidates.contains(target))
    {
        return format!(" (did you mean `{target}`?)");
    }
    let best = candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(&lower, &c.to_ascii_lowercase()), *c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((_, c)) => format!(" (did you mean `{c}`?)"),
        None => String::new(),
    }
}
