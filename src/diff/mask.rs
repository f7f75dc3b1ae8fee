//! Which values are secret, and masking them. A value is secret when its name looks
//! secret (an env var, a label, a Chronos environment variable named like PASSWORD,
//! TOKEN, KEY, …), when it is a Docker credential secret, or when a `sync.secret`
//! pointer covers it. Masked values are replaced by [`MASK`] before anything is
//! rendered, so no output path can leak them.

use serde_json::Value;

use crate::model::ObjectKind;
use crate::normalize::set_pointer_if_present;

/// What `mesosync import` writes in place of a secret value; a plan that would send
/// it to a live system is refused (see `plan::placeholder_writes`).
pub const PLACEHOLDER: &str = "CHANGE-ME";

/// What a masked value reads as.
pub const MASK: &str = "(sensitive value)";

pub use crate::system::looks_secret;

/// The pointers of every secret value in `doc` (a normalized or raw app / job), plus
/// the `extra` pointers from `sync.secret`.
pub fn secret_pointers(kind: ObjectKind, doc: &Value, extra: &[String]) -> Vec<String> {
    let mut out: Vec<String> = extra.to_vec();
    crate::system::of(kind).secret_pointers(doc, &mut out);
    out
}

/// Whether the secret pointer `secret` covers `pointer` (equal, or `pointer` below it).
pub fn covers(secret: &str, pointer: &str) -> bool {
    pointer == secret || pointer.strip_prefix(secret).is_some_and(|rest| rest.starts_with('/'))
}

/// `doc` with the value at every secret pointer replaced by [`MASK`].
pub fn mask(doc: &Value, secrets: &[String]) -> Value {
    let mut out = doc.clone();
    for pointer in secrets {
        set_pointer_if_present(&mut out, pointer, Value::String(MASK.into()));
    }
    out
}

/// `doc` with every secret value of an object of `kind` masked (names that look
/// secret, plus the `sync.secret` pointers in `extra`).
pub fn masked(kind: ObjectKind, doc: &Value, extra: &[String]) -> Value {
    mask(doc, &secret_pointers(kind, doc, extra))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn secret_names_are_recognised_case_insensitively() {
        for name in [
            "DB_PASSWORD",
            "api_key",
            "GitHubToken",
            "client_secret",
            "SSH_PRIVATE_KEY",
            "keystone_passwd",
            "RABBITMQ_CLUSTER_COOKIE",
        ] {
            assert!(looks_secret(name), "{name}");
        }
        for name in ["LOG_LEVEL", "HOME", "PORT", "KEYSTONE_ADMIN_URL", "KOLLA_PRIVATE_INTERFACE"] {
            assert!(!looks_secret(name), "{name}");
        }
    }

    #[test]
    fn masking_covers_env_labels_chronos_vars_and_sync_secret() {
        let app =
            json!({"env": {"X_TOKEN": "t0k", "A": "b"}, "labels": {"K": "v"}, "cmd": "run --pw hunter2"});
        let ptrs = secret_pointers(ObjectKind::MarathonApp, &app, &["/cmd".into()]);
        let masked = mask(&app, &ptrs).to_string();
        assert!(!masked.contains("t0k") && !masked.contains("hunter2"));
        assert!(masked.contains("\"A\":\"b\""));
        let job = json!({"environmentVariables": [{"name": "OS_PASSWORD", "value": "pw1"}]});
        let ptrs = secret_pointers(ObjectKind::ChronosJob, &job, &[]);
        assert!(!mask(&job, &ptrs).to_string().contains("pw1"));
        assert!(covers("/env", "/env/A") && !covers("/env", "/environment"));
    }
}
