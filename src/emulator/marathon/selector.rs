//! Marathon's label selector (`?label=`): terms joined by commas, all must hold.
//! `key` (exists), `key==v`, `key!=v`, `key in (a, b)`, `key notin (a, b)`; a backslash
//! escapes the next character.

use serde_json::{Map, Value};

/// One parsed term.
#[derive(Clone, Debug, PartialEq)]
enum Term {
    Exists(String),
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// A parsed selector.
#[derive(Clone, Debug, PartialEq)]
pub struct Selector(Vec<Term>);

/// Split on `sep` outside parentheses, honouring backslash escapes.
fn split_top(text: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut depth = 0;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    if let Some(last) = parts.last_mut() {
                        last.push(next);
                    }
                }
            }
            '(' => {
                depth += 1;
                if let Some(last) = parts.last_mut() {
                    last.push(c);
                }
            }
            ')' => {
                depth -= 1;
                if let Some(last) = parts.last_mut() {
                    last.push(c);
                }
            }
            c if c == sep && depth == 0 => parts.push(String::new()),
            c => {
                if let Some(last) = parts.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    parts
}

fn parse_set(text: &str) -> Option<Vec<String>> {
    let inner = text.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(inner.split(',').map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).collect())
}

impl Selector {
    /// Parse a selector; `Err` names the term that could not be read.
    pub fn parse(text: &str) -> Result<Selector, String> {
        let mut terms = Vec::new();
        for raw in split_top(text, ',') {
            let term = raw.trim();
            if term.is_empty() {
                continue;
            }
            let parsed = if let Some((k, v)) = term.split_once("==") {
                Term::Equals(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some((k, v)) = term.split_once("!=") {
                Term::NotEquals(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some((k, set)) = term.split_once(" notin ") {
                Term::NotIn(
                    k.trim().to_owned(),
                    parse_set(set).ok_or_else(|| format!("Can not parse label selector {term}"))?,
                )
            } else if let Some((k, set)) = term.split_once(" in ") {
                Term::In(
                    k.trim().to_owned(),
                    parse_set(set).ok_or_else(|| format!("Can not parse label selector {term}"))?,
                )
            } else if term.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                Term::Exists(term.to_owned())
            } else {
                return Err(format!("Can not parse label selector {term}"));
            };
            terms.push(parsed);
        }
        Ok(Selector(terms))
    }

    /// Whether an app's labels satisfy every term.
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        let value = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        self.0.iter().all(|term| match term {
            Term::Exists(k) => value(k).is_some(),
            Term::Equals(k, v) => value(k) == Some(v.as_str()),
            Term::NotEquals(k, v) => value(k).is_some_and(|actual| actual != v),
            Term::In(k, set) => value(k).is_some_and(|actual| set.iter().any(|s| s == actual)),
            Term::NotIn(k, set) => value(k).is_some_and(|actual| !set.iter().any(|s| s == actual)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selector_terms() {
        let labels = json!({"MESOSYNC_OWNER": "prod", "tier": "web"});
        let labels = labels.as_object();
        assert!(Selector::parse("MESOSYNC_OWNER==prod").unwrap().matches(labels));
        assert!(!Selector::parse("MESOSYNC_OWNER==dev").unwrap().matches(labels));
        assert!(Selector::parse("tier in (db, web), MESOSYNC_OWNER").unwrap().matches(labels));
        assert!(!Selector::parse("tier notin (db, web)").unwrap().matches(labels));
        assert!(Selector::parse("tier!=db").unwrap().matches(labels));
        assert!(!Selector::parse("missing").unwrap().matches(labels));
    }
}
