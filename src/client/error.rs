//! The one error type of the HTTP clients. Every variant names the request (method and
//! URL path, never the host's credentials) and what the API said, so a user can act on
//! it without turning on debug logs.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One entry of Marathon's `details` array: a JSON path and what is wrong there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// JSON path into the posted body (`/cpus`); empty for object-level errors.
    #[serde(default)]
    pub path: String,
    /// The messages for that path (`error.min`, `must not be empty`, …).
    #[serde(default)]
    pub errors: Vec<String>,
}

/// A failed request to Marathon or Chronos.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// No base URL answered (connection refused, DNS, TLS handshake, …).
    #[error("{method} {path}: cannot reach {system} (tried {tried}): {reason}")]
    Unreachable {
        /// `marathon` or `chronos`.
        system: &'static str,
        /// HTTP method.
        method: String,
        /// URL path (and query) of the request.
        path: String,
        /// The base URLs tried, without credentials.
        tried: String,
        /// The transport error of the last attempt.
        reason: String,
    },
    /// The connection broke or timed out after the request was sent.
    #[error("{method} {path}: {system} transport error: {reason}")]
    Transport {
        /// `marathon` or `chronos`.
        system: &'static str,
        /// HTTP method.
        method: String,
        /// URL path of the request.
        path: String,
        /// What went wrong (timeout, connection reset, …).
        reason: String,
    },
    /// Marathon's 409 "App is locked by one or more deployments".
    #[error("{method} {path}: locked by running deployment(s) {}", .deployments.join(", "))]
    Locked {
        /// The system that answered (`marathon`).
        system: &'static str,
        /// HTTP method.
        method: String,
        /// URL path of the request.
        path: String,
        /// The ids of the deployments holding the lock.
        deployments: Vec<String>,
    },
    /// Marathon's 409 on create: "An app with id [/x] already exists."
    #[error("{method} {path}: {message}")]
    AlreadyExists {
        /// The system that answered (`marathon`).
        system: &'static str,
        /// HTTP method.
        method: String,
        /// URL path of the request.
        path: String,
        /// The API's message.
        message: String,
    },
    /// 404 (Marathon) or Chronos' 400 on an unknown job for delete / run.
    #[error("{method} {path}: not found: {message}")]
    NotFound {
        /// `marathon` or `chronos`.
        system: &'static str,
        /// HTTP method.
        method: String,
        /// URL path of the request.
        path: String,
        /// The API's message.
        message: String,
    },
    /// Any other non-2xx answer.
    #[error("{method} {path}: {system} answered {status}: {message}{}", DetailsDisplay(.details))]
    Api {
        /// `marathon` or `chronos`.
        system: &'static str,
        /// HTTP method.
        method: String,
        /// URL path of the request.
        path: String,
        /// HTTP status code.
        status: u16,
        /// The API's message (Marathon `message`, Chronos text or first line).
        message: String,
        /// Marathon's per-field `details`.
        details: Vec<ErrorDetail>,
    },
    /// A 2xx answer whose body is not what the API documents.
    #[error("{method} {path}: unexpected response from {system}: {reason}")]
    Decode {
        /// `marathon` or `chronos`.
        system: &'static str,
        /// HTTP method.
        method: String,
        /// URL path of the request.
        path: String,
        /// The parse error.
        reason: String,
    },
    /// The client could not be built (bad URL, unreadable CA bundle or credentials).
    #[error("client configuration: {0}")]
    Config(String),
}

impl ClientError {
    /// Worth retrying with backoff: transport errors and 5xx. Never 4xx.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Unreachable { .. } | ClientError::Transport { .. } => true,
            ClientError::Api { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// The system the request went to (`marathon`, `chronos`; `config` for a client
    /// that could not be built).
    pub fn system(&self) -> &'static str {
        match self {
            ClientError::Unreachable { system, .. }
            | ClientError::Transport { system, .. }
            | ClientError::Locked { system, .. }
            | ClientError::AlreadyExists { system, .. }
            | ClientError::NotFound { system, .. }
            | ClientError::Api { system, .. }
            | ClientError::Decode { system, .. } => system,
            ClientError::Config(_) => "config",
        }
    }

    /// This error with every text that came from the server (or from a URL the user
    /// gave) passed through `mask`: a server may echo the request body, secrets and all.
    /// Used with `diff::mask::Masker::text` before an error is stored or formatted.
    pub fn map_text(self, mask: &dyn Fn(&str) -> String) -> ClientError {
        match self {
            ClientError::Unreachable { system, method, path, tried, reason } => {
                ClientError::Unreachable { system, method, path: mask(&path), tried, reason: mask(&reason) }
            }
            ClientError::Transport { system, method, path, reason } => {
                ClientError::Transport { system, method, path: mask(&path), reason: mask(&reason) }
            }
            ClientError::Locked { system, method, path, deployments } => {
                ClientError::Locked { system, method, path: mask(&path), deployments }
            }
            ClientError::AlreadyExists { system, method, path, message } => {
                ClientError::AlreadyExists { system, method, path: mask(&path), message: mask(&message) }
            }
            ClientError::NotFound { system, method, path, message } => {
                ClientError::NotFound { system, method, path: mask(&path), message: mask(&message) }
            }
            ClientError::Api { system, method, path, status, message, details } => ClientError::Api {
                system,
                method,
                path: mask(&path),
                status,
                message: mask(&message),
                details: details
                    .into_iter()
                    .map(|d| ErrorDetail {
                        path: mask(&d.path),
                        errors: d.errors.iter().map(|e| mask(e)).collect(),
                    })
                    .collect(),
            },
            ClientError::Decode { system, method, path, reason } => {
                ClientError::Decode { system, method, path: mask(&path), reason: mask(&reason) }
            }
            ClientError::Config(text) => ClientError::Config(mask(&text)),
        }
    }

    /// The error without anything the server said (for debug logs of retries, which
    /// are written before anyone could mask the server's words).
    pub fn without_server_text(&self) -> String {
        match self {
            ClientError::Api { system, method, path, status, .. } => {
                format!("{method} {path}: {system} answered {status}")
            }
            ClientError::AlreadyExists { method, path, .. } => format!("{method} {path}: already exists"),
            ClientError::NotFound { method, path, .. } => format!("{method} {path}: not found"),
            ClientError::Decode { system, method, path, .. } => {
                format!("{method} {path}: unexpected response from {system}")
            }
            other => other.to_string(),
        }
    }

    /// The HTTP status, when the API answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            ClientError::Locked { .. } | ClientError::AlreadyExists { .. } => Some(409),
            _ => None,
        }
    }
}

/// Renders `details` as ` (/cpus: error.min; /id: …)`.
struct DetailsDisplay<'a>(&'a [ErrorDetail]);

impl fmt::Display for DetailsDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return Ok(());
        }
        f.write_str(" (")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            let path = if d.path.is_empty() { "/" } else { d.path.as_str() };
            write!(f, "{path}: {}", d.errors.join(", "))?;
        }
        f.write_str(")")
    }
}

/// How long a transport problem lasted, for messages.
pub(crate) fn timeout_reason(after: Duration) -> String {
    format!("no answer within {after:?}")
}
