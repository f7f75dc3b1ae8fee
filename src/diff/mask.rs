//! Masking secrets: the one mechanism every output goes through (text and JSON diffs,
//! plans, saved plan files, apply output, logs, `/status`, error messages).
//!
//! What is secret is decided in [`crate::model::secret`]: values whose name looks
//! secret, values under `sync.secret` pointers (resolved to values at load) and every
//! value decrypted from a SOPS file. Masking is **by value**: wherever a secret value
//! lands (env, labels, args, a Chronos variable, inside a command line, in an error
//! body a server echoed) it reads as [`MASK`]. Name rules are applied on top, on each
//! document, so a live value under a secret name is masked even when it is not known.
//! URLs with userinfo (`scheme://user:pw@host`, and `user:pw@host` without a scheme)
//! are redacted in every text.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, MatchKind};
use serde_json::Value;

use crate::model::{ObjectKind, SecretValues};
use crate::normalize::set_pointer_if_present;

/// What `mesosync import` writes in place of a secret value; a plan that would send
/// it to a live system is refused (see `plan::placeholder_writes`).
pub const PLACEHOLDER: &str = "CHANGE-ME";

/// What a masked value reads as.
pub const MASK: &str = "(sensitive value)";

/// Secrets at least this long are also masked inside longer strings (a password in a
/// command line, a token in an echoed request body). Shorter ones are masked where a
/// whole value equals them, and in text only as a whole word: masking every `42`
/// inside every string would make output unreadable without hiding anything.
pub const MIN_EMBEDDED_LEN: usize = 4;

pub use crate::system::looks_secret;

/// The pointers of every secret value in `doc` (a normalized or raw app / job), plus
/// the `extra` pointers from `sync.secret`.
pub fn secret_pointers(kind: ObjectKind, doc: &Value, extra: &[String]) -> Vec<String> {
    crate::system::secret_pointers(kind, doc, extra)
}

/// Whether the secret pointer `secret` covers `pointer` (equal, or `pointer` below it).
pub fn covers(secret: &str, pointer: &str) -> bool {
    pointer == secret || pointer.strip_prefix(secret).is_some_and(|rest| rest.starts_with('/'))
}

/// Masks one set of secret values in documents and texts. Build one per object (or
/// per message) and reuse it: the search automaton is made once.
pub struct Masker {
    secrets: SecretValues,
    /// Every secret long enough to be searched for inside text, plus its JSON-escaped
    /// form (a server echoing the request body writes `\"` and `\n`).
    embedded: Option<AhoCorasick>,
    /// Short secrets, matched as whole words in text.
    short: Vec<String>,
}

impl Masker {
    /// A masker for `secrets`.
    pub fn new(secrets: &SecretValues) -> Self {
        let mut patterns: Vec<String> = Vec::new();
        let mut short = Vec::new();
        for value in secrets.iter() {
            if value.chars().count() >= MIN_EMBEDDED_LEN {
                let escaped = Value::String(value.to_string()).to_string();
                let escaped = &escaped[1..escaped.len() - 1];
                if escaped != value {
                    patterns.push(escaped.to_string());
                }
                patterns.push(value.to_string());
            } else {
                short.push(value.to_string());
            }
        }
        patterns.sort();
        patterns.dedup();
        let embedded = (!patterns.is_empty()).then(|| {
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&patterns)
                .expect("plain string patterns always build")
        });
        Self { secrets: secrets.clone(), embedded, short }
    }

    /// A masker for what a server says about a write of `body` (a request body of
    /// `kind`): the object's `secrets` plus every value of the body under a secret name.
    pub fn for_action(kind: ObjectKind, body: Option<&Value>, secrets: &SecretValues) -> Self {
        match body {
            Some(body) => Self::new(&crate::system::secret_values(kind, body, &[]).with(secrets)),
            None => Self::new(secrets),
        }
    }

    /// `text` with every secret value (and URL userinfo) replaced by [`MASK`].
    pub fn text(&self, text: &str) -> String {
        let mut out = match &self.embedded {
            Some(ac) => ac.replace_all(text, &vec![MASK; ac.patterns_len()]),
            None => text.to_string(),
        };
        for value in &self.short {
            out = replace_whole_words(&out, value);
        }
        redact_userinfo(&out)
    }

    /// Mask every secret value inside `doc`, in place: a scalar equal to a secret
    /// becomes [`MASK`], a string holding one has it replaced.
    pub fn value(&self, doc: &mut Value) {
        match doc {
            Value::Object(map) => map.values_mut().for_each(|v| self.value(v)),
            Value::Array(items) => items.iter_mut().for_each(|v| self.value(v)),
            Value::String(s) => {
                if self.secrets.contains(s) {
                    *s = MASK.to_string();
                } else if let Some(ac) = &self.embedded {
                    if ac.is_match(s.as_str()) {
                        *s = ac.replace_all(s, &vec![MASK; ac.patterns_len()]);
                    }
                }
            }
            Value::Number(_) if self.secrets.contains_value(doc) => *doc = Value::String(MASK.into()),
            _ => {}
        }
    }

    /// `doc` (an app or job of `kind`, raw or normalized) with its secret values masked:
    /// the values under names that look secret, and every known secret value.
    pub fn masked(&self, kind: ObjectKind, doc: &Value) -> Value {
        let mut out = doc.clone();
        for pointer in secret_pointers(kind, doc, &[]) {
            set_pointer_if_present(&mut out, &pointer, Value::String(MASK.into()));
        }
        self.value(&mut out);
        out
    }
}

/// Replace `word` in `text` where it stands alone (not inside a longer word or number).
fn replace_whole_words(text: &str, word: &str) -> String {
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '.' || c == '-';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(word) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + word.len()..].chars().next();
        out.push_str(&rest[..at]);
        if before.is_some_and(is_word) || after.is_some_and(is_word) {
            out.push_str(word);
        } else {
            out.push_str(MASK);
        }
        rest = &rest[at + word.len()..];
    }
    out.push_str(rest);
    out
}

/// `text` with the userinfo of every URL replaced by `***`: `https://u:pw@h` →
/// `https://***@h`, and the scheme-less `u:pw@h` a user may pass as `--marathon`.
pub fn redact_userinfo(text: &str) -> String {
    static WITH_SCHEME: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"([A-Za-z][A-Za-z0-9+.\-]*://)[^/\s@'`]+@").expect("a valid regex")
    });
    static BARE: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r#"(^|[\s'"`(\[=,;<])[^\s/@:'"`(\[=,;<]+:[^\s/@'"`]+@([A-Za-z0-9\[])"#)
            .expect("a valid regex")
    });
    if !text.contains('@') {
        return text.to_string();
    }
    let once = WITH_SCHEME.replace_all(text, |c: &regex::Captures<'_>| {
        if &c[0][c[1].len()..] == "***@" { c[0].to_string() } else { format!("{}***@", &c[1]) }
    });
    BARE.replace_all(&once, |c: &regex::Captures<'_>| {
        if c[0][c[1].len()..].starts_with("***") {
            c[0].to_string()
        } else {
            format!("{}***@{}", &c[1], &c[2])
        }
    })
    .into_owned()
}

/// The pointers of `body` (a request body of `kind`) that hold the import
/// [`PLACEHOLDER`] where a secret belongs: under a secret name, or where the manifest
/// marked the placeholder itself as secret (`sync.secret`).
pub fn placeholder_pointers(kind: ObjectKind, body: &Value, secrets: &SecretValues) -> Vec<String> {
    let mut out: Vec<String> = secret_pointers(kind, body, &[])
        .into_iter()
        .filter(|p| body.pointer(p).and_then(Value::as_str) == Some(PLACEHOLDER))
        .collect();
    if secrets.contains(PLACEHOLDER) {
        find_string(body, String::new(), PLACEHOLDER, &mut out);
    }
    out.sort();
    out.dedup();
    out
}

fn find_string(doc: &Value, pointer: String, needle: &str, out: &mut Vec<String>) {
    match doc {
        Value::Object(map) => {
            for (k, v) in map {
                find_string(v, format!("{pointer}/{}", crate::model::pointer::escape_token(k)), needle, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                find_string(v, format!("{pointer}/{i}"), needle, out);
            }
        }
        Value::String(s) if s == needle => out.push(pointer),
        _ => {}
    }
}

/// Standard error with the userinfo of every URL redacted: the log writer of `run`
/// (text and JSON), so no log line can carry `user:password@` whatever code logged it.
/// The log layer formats each event whole and writes it in one call, so a URL is never
/// split between writes.
#[derive(Clone, Copy, Debug, Default)]
pub struct RedactingStderr;

impl std::io::Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(redact_userinfo(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// The secret values of a live object (as listed, not normalized) that mesosync wrote:
/// those at the `sync.secret` pointers it recorded on the object (where: its system's
/// choice, [`System::recorded_secret_pointers`]) and those under secret names.
///
/// [`System::recorded_secret_pointers`]: crate::system::System::recorded_secret_pointers
pub fn recorded_secrets(kind: ObjectKind, live: &Value) -> SecretValues {
    let pointers = crate::system::of(kind).recorded_secret_pointers(live);
    crate::system::secret_values(kind, live, &pointers)
}

/// `text` with every value of `secrets` (and URL userinfo) masked.
pub fn mask_text(text: &str, secrets: &SecretValues) -> String {
    Masker::new(secrets).text(text)
}

/// `doc` with every secret value of an object of `kind` masked (names that look
/// secret, plus every value of `secrets`).
pub fn masked(kind: ObjectKind, doc: &Value, secrets: &SecretValues) -> Value {
    Masker::new(secrets).masked(kind, doc)
}

/// Mask `doc` wherever `masked_other` (the other side of a comparison, at the same
/// pointers) is masked: the live value of a secret field is secret too, even when it
/// is an old value nobody knows any more.
pub fn mask_like(doc: &mut Value, masked_other: &Value) {
    match (doc, masked_other) {
        (Value::Object(m), Value::Object(o)) => {
            for (k, v) in m.iter_mut() {
                if let Some(ov) = o.get(k) {
                    mask_like(v, ov);
                }
            }
        }
        (Value::Array(a), Value::Array(o)) if a.len() == o.len() => {
            a.iter_mut().zip(o).for_each(|(v, ov)| mask_like(v, ov));
        }
        (slot, Value::String(s)) if s == MASK && !slot.is_object() && !slot.is_array() => {
            *slot = Value::String(MASK.into());
        }
        _ => {}
    }
}

/// The masked forms of one desired / live pair of `kind`: each side masked by name and
/// value, then each also where the other is masked.
pub fn mask_pair(kind: ObjectKind, desired: &Value, live: &Value, secrets: &SecretValues) -> (Value, Value) {
    let masker = Masker::new(secrets);
    let mut d = masker.masked(kind, desired);
    let mut l = masker.masked(kind, live);
    mask_like(&mut l, &d);
    mask_like(&mut d, &l);
    (d, l)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn masking_covers_names_values_and_embedded_values() {
        let secrets = SecretValues::new(["hunter22".to_string(), "987654321".to_string()]);
        let app = json!({"env": {"X_TOKEN": "t0k", "A": "b", "URL": "db://hunter22@x"},
                         "labels": {"K": "v"}, "cmd": "run --pw hunter22", "args": [987654321]});
        let masked = masked(ObjectKind::MarathonApp, &app, &secrets).to_string();
        assert!(!masked.contains("t0k") && !masked.contains("hunter22") && !masked.contains("987654321"));
        assert!(masked.contains("\"A\":\"b\"") && masked.contains("run --pw (sensitive value)"));
        let job = json!({"environmentVariables": [{"name": "OS_PASSWORD", "value": "pw1"}]});
        assert!(!masked_job(&job).contains("pw1"));
        assert!(covers("/env", "/env/A") && !covers("/env", "/environment"));
    }

    fn masked_job(job: &Value) -> String {
        masked(ObjectKind::ChronosJob, job, &SecretValues::default()).to_string()
    }

    #[test]
    fn text_masking_finds_raw_escaped_and_short_values() {
        let secrets =
            SecretValues::new(["p\"w\nline2".to_string(), "s3cret-long".to_string(), "42".to_string()]);
        let body = r#"{"env":{"A":"p\"w\nline2"},"x":"s3cret-long","n":42,"port":4200}"#;
        let out = mask_text(body, &secrets);
        assert!(!out.contains("line2") && !out.contains("s3cret"), "{out}");
        assert!(out.contains("\"n\":(sensitive value)") && out.contains("4200"), "{out}");
    }

    #[test]
    fn userinfo_is_redacted_with_and_without_scheme() {
        for (input, want) in [
            ("cannot parse `admin:pw@host:8080`", "cannot parse `***@host:8080`"),
            ("admin:pw@host", "***@host"),
            ("url https://u:p@h/x and http://tok@h2", "url https://***@h/x and http://***@h2"),
            ("zk://a:b@z1:2181,z2:2181/m", "zk://***@z1:2181,z2:2181/m"),
            ("mail me@example.com, git@github.com:org/repo", "mail me@example.com, git@github.com:org/repo"),
            ("already https://***@h", "already https://***@h"),
        ] {
            assert_eq!(redact_userinfo(input), want, "{input}");
        }
    }

    #[test]
    fn a_pair_is_masked_where_either_side_is() {
        let secrets = SecretValues::new(["new-secret".to_string()]);
        let desired = json!({"cmd": "new-secret", "env": {"A": "1"}});
        let live = json!({"cmd": "old-secret", "env": {"A": "1"}});
        let (d, l) = mask_pair(ObjectKind::MarathonApp, &desired, &live, &secrets);
        assert_eq!(d["cmd"], json!(MASK));
        assert_eq!(l["cmd"], json!(MASK), "the old value of a secret field is secret");
        assert_eq!(l["env"]["A"], json!("1"));
    }
}
