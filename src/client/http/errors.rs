//! What went wrong on the wire, as a [`ClientError`]: a non-2xx answer read into the
//! matching typed error (Marathon's and Chronos' error bodies recognised), and a
//! transport error's causes spelled out. Messages carry the request path, never a base
//! URL, and at most the first line of an error body.

use reqwest::StatusCode;
use serde_json::Value;

use crate::client::error::{ClientError, ErrorDetail};

/// Turn a non-2xx answer of `system` to `method path` into the matching typed error.
pub(super) fn api_error(
    system: &'static str,
    method: String,
    path: String,
    status: StatusCode,
    body: &[u8],
) -> ClientError {
    let parsed = ErrorBody::parse(body);
    let message =
        parsed.message.clone().unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
    match status.as_u16() {
        409 if !parsed.deployments.is_empty() => {
            ClientError::Locked { system, method, path, deployments: parsed.deployments }
        }
        409 if message.contains("already exists") => {
            ClientError::AlreadyExists { system, method, path, message }
        }
        404 => ClientError::NotFound { system, method, path, message },
        code => ClientError::Api { system, method, path, status: code, message, details: parsed.details },
    }
}

/// What can be read out of an error body: Marathon's `{"message","details",
/// "deployments"}`, Chronos 3.x's `{"message","status"}` (a Java stack trace whose first
/// line is kept), or Chronos 2.x's plain text.
#[derive(Debug, Default, PartialEq)]
struct ErrorBody {
    message: Option<String>,
    details: Vec<ErrorDetail>,
    deployments: Vec<String>,
}

impl ErrorBody {
    fn parse(body: &[u8]) -> Self {
        const MAX: usize = 500;
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if text.is_empty() {
            return ErrorBody::default();
        }
        if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) {
            let message = map.get("message").and_then(Value::as_str).map(|m| first_line(m, MAX));
            let details = map
                .get("details")
                .and_then(|d| serde_json::from_value::<Vec<ErrorDetail>>(d.clone()).ok())
                .unwrap_or_default();
            let deployments = map
                .get("deployments")
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .filter_map(|d| d.get("id").and_then(Value::as_str))
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            let message = message.or_else(|| map.get("status").and_then(Value::as_str).map(String::from));
            return ErrorBody { message, details, deployments };
        }
        ErrorBody { message: Some(first_line(text, MAX)), ..ErrorBody::default() }
    }
}

fn first_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    if line.chars().count() > max {
        let cut: String = line.chars().take(max).collect();
        format!("{cut}…")
    } else {
        line.to_string()
    }
}

/// The error and its causes, `: `-joined (reqwest's own Display says little).
pub(super) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies() {
        let m = ErrorBody::parse(
            br#"{"message":"App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/<DEPLOYMENT_ID>'.","deployments":[{"id":"d1"},{"id":"d2"}]}"#,
        );
        assert_eq!(m.deployments, vec!["d1", "d2"]);
        let m = ErrorBody::parse(
            br#"{"message":"Invalid JSON","details":[{"path":"/cpus","errors":["error.min"]}]}"#,
        );
        assert_eq!(m.message.as_deref(), Some("Invalid JSON"));
        assert_eq!(m.details, vec![ErrorDetail { path: "/cpus".into(), errors: vec!["error.min".into()] }]);
        let m = ErrorBody::parse(b"requirement failed: Job j2 does not have all parents defined!\n");
        assert_eq!(
            m.message.as_deref(),
            Some("requirement failed: Job j2 does not have all parents defined!")
        );
        let m = ErrorBody::parse(
            br#"{"message":"java.lang.IllegalArgumentException: Cannot parse schedule 'x'\n\tat org.foo","status":"Bad Request"}"#,
        );
        assert_eq!(
            m.message.as_deref(),
            Some("java.lang.IllegalArgumentException: Cannot parse schedule 'x'")
        );
        assert_eq!(ErrorBody::parse(b""), ErrorBody::default());
    }
}
