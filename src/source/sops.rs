//! SOPS-encrypted values files, decrypted in memory with age identities.
//!
//! The format is the one the `sops` tool writes (getsops/sops, `sops.go` and
//! `aes/cipher.go`):
//! - every encrypted leaf is `ENC[AES256_GCM,data:…,iv:…,tag:…,type:str|int|float|bool|…]`,
//!   AES-256-GCM with a 32-byte IV, and the leaf's path as additional data: the mapping
//!   keys from the root joined by `:` with a trailing `:` (list indices are not part of
//!   it), so a value moved to another key does not decrypt;
//! - the 32-byte data key is age-encrypted once per recipient (`sops.age[].enc`, or
//!   `sops.key_groups[].age[]`), armored;
//! - `sops.mac` is the SHA-512 of every cleartext leaf in document order (upper-case
//!   hex), itself encrypted with the data key and `sops.lastmodified` (RFC 3339) as
//!   additional data. It is checked: a file whose values were edited, swapped or removed
//!   without the key is refused;
//! - which leaves are encrypted is decided by `unencrypted_suffix`, `encrypted_suffix`,
//!   `unencrypted_regex` and `encrypted_regex` on the path, as sops does;
//!   `mac_only_encrypted` is honoured. Comment-based rules need the YAML comments, which
//!   the values parser does not keep: such files are refused with a clear error.
//!
//! No SOPS crate is used: the maintained ones either re-implement a SOPS-like format of
//! their own or pull in an archived YAML parser and cloud SDKs (see ARCHITECTURE.md).
//! Cryptography is the `age`, `aes-gcm` and `sha2` crates'. Nothing decrypted is ever
//! written anywhere; errors name the file and the reason, never a value.

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use aes_gcm::aead::consts::U32;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};
use sha2::{Digest, Sha512};

use crate::model::secret::scalar_text;

/// Environment variables naming an age identity file (first the project's, then the
/// one `sops` itself reads).
pub const KEY_FILE_VARS: &[&str] = &["MESOSYNC_AGE_KEY_FILE", "SOPS_AGE_KEY_FILE"];
/// Environment variables holding age identities themselves (`AGE-SECRET-KEY-1…`).
pub const KEY_VARS: &[&str] = &["MESOSYNC_AGE_KEY", "SOPS_AGE_KEY"];

/// SOPS's constant prefix of the MAC when `mac_only_encrypted` is set (sops.go,
/// `MACOnlyEncryptedInitialization`), so that the two MAC kinds never compare equal.
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b, 0x0b,
    0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// AES-256-GCM with SOPS's 32-byte IV.
type SopsCipher = AesGcm<Aes256, U32>;

/// The age identities available to decrypt with, and where they came from (for error
/// messages: the source is named, the key never). `Debug` prints no key.
#[derive(Default)]
pub struct AgeIdentities {
    identities: Vec<age::x25519::Identity>,
    sources: Vec<String>,
    /// Identity sources that could not be read (reported only when a SOPS file needs them).
    problems: Vec<String>,
}

impl fmt::Debug for AgeIdentities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgeIdentities({} from {:?})", self.identities.len(), self.sources)
    }
}

impl AgeIdentities {
    /// The identities named by `env` (`MESOSYNC_AGE_KEY_FILE`, `MESOSYNC_AGE_KEY`,
    /// `SOPS_AGE_KEY_FILE`, `SOPS_AGE_KEY`). Read lazily by the caller: only a SOPS file
    /// needs them.
    pub fn from_env(env: &[(String, String)]) -> Self {
        let mut ids = AgeIdentities::default();
        let get = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        for var in KEY_FILE_VARS {
            let Some(path) = get(var).filter(|p| !p.is_empty()) else { continue };
            let source = format!("{var}={path}");
            match std::fs::read_to_string(path) {
                Ok(text) => ids.add(&text, source),
                Err(e) => ids.problems.push(format!("{source}: cannot read: {e}")),
            }
        }
        for var in KEY_VARS {
            if let Some(text) = get(var).filter(|t| !t.is_empty()) {
                ids.add(text, (*var).to_string());
            }
        }
        ids
    }

    /// Parse the `AGE-SECRET-KEY-1…` lines of `text` (comments and blank lines skipped,
    /// as in an age identity file).
    pub fn add(&mut self, text: &str, source: String) {
        let mut found = 0;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            match age::x25519::Identity::from_str(line) {
                Ok(identity) => {
                    self.identities.push(identity);
                    found += 1;
                }
                // Never quote the line: it may be a key with a typo.
                Err(_) => {
                    self.problems.push(format!("{source}: a line is not an age identity (AGE-SECRET-KEY-1…)"))
                }
            }
        }
        if found > 0 {
            self.sources.push(source);
        } else if !self.problems.iter().any(|p| p.starts_with(&source)) {
            self.problems.push(format!("{source}: holds no age identity"));
        }
    }

    /// The public keys (recipients) of the identities.
    fn recipients(&self) -> Vec<String> {
        self.identities.iter().map(|i| i.to_public().to_string()).collect()
    }
}

/// Whether a parsed values document is a SOPS file (a top-level `sops` mapping with a
/// `mac` or `lastmodified`, as every file the tool writes has).
pub fn is_sops(doc: &Value) -> bool {
    doc.get("sops")
        .and_then(Value::as_object)
        .is_some_and(|m| m.contains_key("mac") || m.contains_key("lastmodified"))
}

/// Whether `path` is named like a SOPS file (`*.sops.yaml`, `*.sops.yml`, `*.sops.json`).
pub fn is_sops_name(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| [".sops.yaml", ".sops.yml", ".sops.json"].iter().any(|s| n.ends_with(s)))
}

/// A SOPS file decrypted in memory.
#[derive(Clone, PartialEq)]
pub struct Decrypted {
    /// The cleartext document, without the `sops` metadata.
    pub values: Value,
    /// The text of every value that was encrypted (the secrets to mask everywhere).
    pub secrets: Vec<String>,
}

impl fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Decrypted({} secret values)", self.secrets.len())
    }
}

/// Why a SOPS file could not be decrypted. Never holds a value or a key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SopsError(String);

fn fail<T>(message: impl Into<String>) -> Result<T, SopsError> {
    Err(SopsError(message.into()))
}

/// The rules (from the `sops` metadata) that say which leaves are encrypted.
#[derive(Debug, Default)]
struct Rules {
    unencrypted_suffix: Option<String>,
    encrypted_suffix: Option<String>,
    unencrypted_regex: Option<regex::Regex>,
    encrypted_regex: Option<regex::Regex>,
    mac_only_encrypted: bool,
}

impl Rules {
    fn from_metadata(meta: &Map<String, Value>) -> Result<Self, SopsError> {
        let text =
            |k: &str| meta.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
        let regex = |k: &str| -> Result<Option<regex::Regex>, SopsError> {
            match text(k) {
                None => Ok(None),
                Some(r) => regex::Regex::new(&r)
                    .map(Some)
                    .map_err(|e| SopsError(format!("sops.{k} is not a valid regular expression: {e}"))),
            }
        };
        for k in ["unencrypted_comment_regex", "encrypted_comment_regex"] {
            if text(k).is_some() {
                return fail(format!(
                    "sops.{k} is set: rules on YAML comments are not supported (use encrypted_regex or \
                     unencrypted_suffix)"
                ));
            }
        }
        Ok(Rules {
            unencrypted_suffix: text("unencrypted_suffix"),
            encrypted_suffix: text("encrypted_suffix"),
            unencrypted_regex: regex("unencrypted_regex")?,
            encrypted_regex: regex("encrypted_regex")?,
            mac_only_encrypted: meta.get("mac_only_encrypted").and_then(Value::as_bool).unwrap_or(false),
        })
    }

    /// sops.go `shouldBeEncrypted`: each rule in turn, later ones overriding.
    fn encrypted(&self, path: &[String]) -> bool {
        let mut encrypted = true;
        if let Some(s) = &self.unencrypted_suffix {
            if path.iter().any(|p| p.ends_with(s.as_str())) {
                encrypted = false;
            }
        }
        if let Some(s) = &self.encrypted_suffix {
            encrypted = path.iter().any(|p| p.ends_with(s.as_str()));
        }
        if let Some(r) = &self.unencrypted_regex {
            if path.iter().any(|p| r.is_match(p)) {
                encrypted = false;
            }
        }
        if let Some(r) = &self.encrypted_regex {
            encrypted = path.iter().any(|p| r.is_match(p));
        }
        encrypted
    }
}

/// Decrypt the parsed SOPS document `doc` with `identities`.
pub fn decrypt(doc: Value, identities: &AgeIdentities) -> Result<Decrypted, SopsError> {
    let Value::Object(mut tree) = doc else { return fail("a SOPS values file must be a mapping") };
    let Some(Value::Object(meta)) = tree.shift_remove("sops") else {
        return fail("the `sops` metadata block is missing or not a mapping");
    };
    let rules = Rules::from_metadata(&meta)?;
    let key = data_key(&meta, identities)?;
    let mut walker = Walker { key: &key, rules: &rules, hash: Sha512::new(), secrets: Vec::new() };
    if rules.mac_only_encrypted {
        walker.hash.update(MAC_ONLY_ENCRYPTED_INIT);
    }
    let mut path = Vec::new();
    let mut values = Value::Object(tree);
    walker.walk(&mut values, &mut path)?;
    let computed = hex::encode_upper(walker.hash.finalize());
    check_mac(&meta, &key, &computed)?;
    let mut secrets = walker.secrets;
    secrets.sort();
    secrets.dedup();
    Ok(Decrypted { values, secrets })
}

/// The data key: the first age stanza one of the identities opens.
fn data_key(meta: &Map<String, Value>, identities: &AgeIdentities) -> Result<[u8; 32], SopsError> {
    let mut lists: Vec<&Value> = meta.get("age").into_iter().collect();
    for group in meta.get("key_groups").and_then(Value::as_array).into_iter().flatten() {
        lists.extend(group.get("age"));
    }
    let stanzas: Vec<(&str, &str)> = lists
        .into_iter()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|entry| Some((entry.get("recipient")?.as_str()?, entry.get("enc")?.as_str()?)))
        .collect();
    if meta.get("shamir_threshold").and_then(Value::as_u64).is_some_and(|t| t > 1) {
        return fail(
            "the data key is split between key groups (shamir_threshold > 1), which is not supported",
        );
    }
    if stanzas.is_empty() {
        return fail(
            "the file has no age recipient (only age is supported, not PGP, KMS or Vault); \
             re-encrypt it with `sops --age <recipient>`",
        );
    }
    if identities.identities.is_empty() {
        let mut message = format!(
            "no age key to decrypt it: set MESOSYNC_AGE_KEY_FILE (or SOPS_AGE_KEY_FILE) to an age identity \
             file, or MESOSYNC_AGE_KEY; the file is encrypted for {}",
            recipient_list(&stanzas)
        );
        if !identities.problems.is_empty() {
            message.push_str(&format!(" ({})", identities.problems.join("; ")));
        }
        return Err(SopsError(message));
    }
    let mine = identities.recipients();
    for (recipient, enc) in &stanzas {
        if !mine.iter().any(|m| m == recipient) {
            continue;
        }
        return open_stanza(enc, identities).map_err(|reason| {
            SopsError(format!("the data key for recipient {recipient} does not decrypt: {reason}"))
        });
    }
    fail(format!(
        "none of the age keys given ({}) is a recipient of this file; it is encrypted for {}",
        identities.sources.join(", "),
        recipient_list(&stanzas)
    ))
}

fn recipient_list(stanzas: &[(&str, &str)]) -> String {
    stanzas.iter().map(|(r, _)| *r).collect::<Vec<_>>().join(", ")
}

fn open_stanza(enc: &str, identities: &AgeIdentities) -> Result<[u8; 32], String> {
    let reader = age::armor::ArmoredReader::new(enc.trim().as_bytes());
    let decryptor = age::Decryptor::new(reader).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    decryptor
        .decrypt(identities.identities.iter().map(|i| i as &dyn age::Identity))
        .map_err(|e| e.to_string())?
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    out.try_into().map_err(|v: Vec<u8>| format!("the data key is {} bytes, not 32", v.len()))
}

/// Check the decrypted MAC against the one computed from the cleartext.
fn check_mac(meta: &Map<String, Value>, key: &[u8; 32], computed: &str) -> Result<(), SopsError> {
    let Some(mac) = meta.get("mac").and_then(Value::as_str).filter(|m| !m.is_empty()) else {
        return fail("the file has no MAC (sops.mac): refusing a file whose integrity cannot be checked");
    };
    let Some(modified) = meta.get("lastmodified").and_then(Value::as_str) else {
        return fail("sops.lastmodified is missing: the MAC cannot be checked");
    };
    let aad = go_rfc3339(modified).ok_or_else(|| {
        SopsError("sops.lastmodified is not an RFC 3339 time: the MAC cannot be checked".into())
    })?;
    let stored = match decrypt_leaf(mac, key, &aad) {
        Ok(Value::String(s)) => s,
        Ok(_) | Err(_) => {
            return fail(
                "the MAC does not decrypt: the metadata was changed after encryption (tampered file?)",
            );
        }
    };
    if stored != computed {
        return fail(
            "MAC mismatch: the values were changed after the file was encrypted (tampered, or edited without \
             sops); refusing it",
        );
    }
    Ok(())
}

/// `lastmodified` as Go's `time.Format(time.RFC3339)` prints it after parsing: whole
/// seconds, `Z` for UTC, else the offset.
fn go_rfc3339(text: &str) -> Option<String> {
    let t = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    let offset = t.offset().local_minus_utc();
    let zone = if offset == 0 {
        "Z".to_string()
    } else {
        let (sign, abs) = if offset < 0 { ('-', -offset) } else { ('+', offset) };
        format!("{sign}{:02}:{:02}", abs / 3600, (abs % 3600) / 60)
    };
    Some(format!("{}{zone}", t.format("%Y-%m-%dT%H:%M:%S")))
}

struct Walker<'a> {
    key: &'a [u8; 32],
    rules: &'a Rules,
    hash: Sha512,
    secrets: Vec<String>,
}

impl Walker<'_> {
    /// Decrypt every leaf under `value` in document order, hashing the cleartext as
    /// sops does (maps add their key to the path, lists do not).
    fn walk(&mut self, value: &mut Value, path: &mut Vec<String>) -> Result<(), SopsError> {
        match value {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    path.push(k.clone());
                    let r = self.walk(v, path);
                    path.pop();
                    r?;
                }
                Ok(())
            }
            Value::Array(items) => items.iter_mut().try_for_each(|v| self.walk(v, path)),
            Value::Null => Ok(()),
            leaf => self.leaf(leaf, path),
        }
    }

    fn leaf(&mut self, leaf: &mut Value, path: &[String]) -> Result<(), SopsError> {
        let encrypted = self.rules.encrypted(path);
        let where_ =
            || if path.is_empty() { "the document".to_string() } else { format!("`{}`", path.join(".")) };
        if encrypted {
            let Value::String(text) = &*leaf else {
                return fail(format!(
                    "{} should be encrypted by the file's own rules but is a plain value: the file was edited \
                     without sops",
                    where_()
                ));
            };
            let aad = format!("{}:", path.join(":"));
            let clear = if text.is_empty() {
                Value::String(String::new())
            } else {
                decrypt_leaf(text, self.key, &aad)
                    .map_err(|reason| SopsError(format!("{}: {reason}", where_())))?
            };
            self.secrets.extend(scalar_text(&clear));
            *leaf = clear;
        }
        if !self.rules.mac_only_encrypted || encrypted {
            self.hash.update(mac_bytes(leaf));
        }
        Ok(())
    }
}

/// sops.go `ToBytes`: how a cleartext value enters the MAC.
fn mac_bytes(value: &Value) -> Vec<u8> {
    match value {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Bool(true) => b"True".to_vec(),
        Value::Bool(false) => b"False".to_vec(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string().into_bytes(),
            (None, Some(u), _) => u.to_string().into_bytes(),
            // Rust's `{}` of an f64 is Go's FormatFloat(f, 'f', -1, 64): shortest
            // round-trip digits, never an exponent.
            (_, _, Some(f)) => format!("{f}").into_bytes(),
            _ => n.to_string().into_bytes(),
        },
        _ => Vec::new(),
    }
}

/// Decrypt one `ENC[AES256_GCM,…]` value with the path `aad`, typed as its `type:`
/// says. The error never quotes the value.
fn decrypt_leaf(text: &str, key: &[u8; 32], aad: &str) -> Result<Value, String> {
    let inner = text
        .strip_prefix("ENC[AES256_GCM,")
        .and_then(|t| t.strip_suffix(']'))
        .ok_or("is not a sops-encrypted value (ENC[AES256_GCM,…]): the file was edited without sops")?;
    let mut parts = std::collections::HashMap::new();
    for part in inner.split(',') {
        let (k, v) = part.split_once(':').ok_or("malformed ENC[…] value")?;
        parts.insert(k, v);
    }
    let field = |k: &str| -> Result<Vec<u8>, String> {
        let v = parts.get(k).ok_or_else(|| format!("ENC[…] value without `{k}`"))?;
        BASE64.decode(v).map_err(|_| format!("ENC[…] `{k}` is not base64"))
    };
    let (mut data, iv, tag) = (field("data")?, field("iv")?, field("tag")?);
    if iv.len() != 32 || tag.len() != 16 {
        return Err("ENC[…] value with an IV or tag of the wrong size".into());
    }
    data.extend_from_slice(&tag);
    let cipher = SopsCipher::new_from_slice(key).map_err(|_| "bad data key length".to_string())?;
    let clear = cipher
        .decrypt(Nonce::from_slice(&iv), Payload { msg: &data, aad: aad.as_bytes() })
        .map_err(|_| "does not decrypt (wrong data key, or the value was moved or altered)".to_string())?;
    let clear = String::from_utf8(clear).map_err(|_| "decrypts to bytes that are not UTF-8".to_string())?;
    let kind = parts.get("type").copied().unwrap_or("str");
    let bad = |what: &str| format!("decrypts to something that is not {what}");
    Ok(match kind {
        "str" | "bytes" | "time" | "comment" => Value::String(clear),
        "int" => Value::from(clear.parse::<i64>().map_err(|_| bad("an integer"))?),
        // JSON numbers are floats to sops: `12` comes back as type float, text "12".
        "float" => match clear.parse::<i64>() {
            Ok(i) => Value::from(i),
            Err(_) => serde_json::Number::from_f64(clear.parse::<f64>().map_err(|_| bad("a number"))?)
                .map(Value::Number)
                .ok_or_else(|| bad("a finite number"))?,
        },
        "bool" => Value::Bool(match clear.as_str() {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => true,
            "0" | "f" | "F" | "FALSE" | "false" | "False" => false,
            _ => return Err(bad("a boolean")),
        }),
        other => return Err(format!("unknown ENC[…] type `{other}`")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encryption_rules_follow_sops() {
        let p = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let default = Rules { unencrypted_suffix: Some("_unencrypted".into()), ..Rules::default() };
        assert!(default.encrypted(&p(&["a", "b"])));
        assert!(!default.encrypted(&p(&["a_unencrypted", "b"])));
        let regex = Rules {
            encrypted_regex: Some(regex::Regex::new("^(password|token)$").unwrap()),
            ..Rules::default()
        };
        assert!(regex.encrypted(&p(&["db", "password"])));
        assert!(!regex.encrypted(&p(&["db", "host"])));
    }

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sops");

    fn open(file: &str, key: &str) -> Result<Decrypted, SopsError> {
        let path = std::path::Path::new(FIXTURES).join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: Value = if file.ends_with(".json") {
            serde_json::from_str(&text).unwrap()
        } else {
            serde_saphyr::from_str(&text).unwrap()
        };
        assert!(is_sops(&doc));
        let mut ids = AgeIdentities::default();
        if !key.is_empty() {
            ids.add(&std::fs::read_to_string(std::path::Path::new(FIXTURES).join(key)).unwrap(), key.into());
        }
        decrypt(doc, &ids)
    }

    #[test]
    #[allow(clippy::approx_constant)] // the vector's cleartext is 3.14
    fn files_made_by_sops_3_8_for_three_recipients_decrypt() {
        for file in ["humphd-sops-age/secret.enc.yaml", "humphd-sops-age/secret.enc.json"] {
            let d = open(file, "humphd-sops-age/key.txt").unwrap();
            let v = &d.values;
            assert_eq!(v["secret"], "this is a secret", "{file}");
            assert_eq!(v["int"], 7);
            assert_eq!(v["float"], 3.14);
            assert_eq!(v["boolean"], true);
            assert_eq!(v["complex"]["array"], serde_json::json!(["one", "two", "three"]));
            assert!(v.get("sops").is_none());
            for s in ["this is a secret", "string", "7", "3.14", "one", "three"] {
                assert!(d.secrets.iter().any(|x| x == s), "{file}: {s} is a secret");
            }
        }
    }

    #[test]
    fn files_made_by_sops_3_11_decrypt_with_every_rule() {
        let d = open("sops-3.11/values.sops.yaml", "sops-3.11/test-key.txt").unwrap();
        assert_eq!(d.values["port"], 5432);
        assert_eq!(d.values["ratio"], 0.25);
        assert_eq!(d.values["enabled"], true);
        assert_eq!(d.values["empty"], "");
        assert_eq!(d.values["note_unencrypted"], "visible in clear");
        assert_eq!(d.values["nested"]["list"][1], "second-item");
        assert!(d.secrets.contains(&"s3cret-db-pw".to_string()) && d.secrets.contains(&"5432".to_string()));
        assert!(
            !d.secrets.iter().any(|s| s == "visible in clear"),
            "unencrypted_suffix values are not secret"
        );

        let d = open("sops-3.11/partial.sops.yaml", "sops-3.11/test-key.txt").unwrap();
        assert_eq!(d.values["database_host"], "db.example");
        assert_eq!(d.values["service"]["replicas"], 3);
        assert_eq!(d.secrets, ["partial-pw-1", "partial-token-2"], "only what encrypted_regex chose");

        let d = open("sops-3.11/maconly.sops.yaml", "sops-3.11/test-key.txt").unwrap();
        assert_eq!(
            (d.values["user"].as_str(), d.secrets.as_slice()),
            (Some("admin"), &["maconly-pw-3".to_string()][..])
        );

        let d = open("sops-3.11/values.sops.json", "sops-3.11/test-key.txt").unwrap();
        assert_eq!(
            (d.values["json_password"].as_str(), d.values["count"].as_i64()),
            (Some("json-pw-4"), Some(12))
        );
    }

    #[test]
    fn tampered_wrong_key_and_missing_key_files_are_refused_without_a_value() {
        for (file, key, want) in [
            ("sops-3.11/tampered-clear.sops.yaml", "sops-3.11/test-key.txt", "MAC mismatch"),
            ("sops-3.11/tampered-removed.sops.yaml", "sops-3.11/test-key.txt", "MAC mismatch"),
            (
                "sops-3.11/tampered-swap.sops.yaml",
                "sops-3.11/test-key.txt",
                "`database_password`: does not decrypt",
            ),
            ("sops-3.11/values.sops.yaml", "sops-3.11/other-key.txt", "none of the age keys given"),
            ("sops-3.11/values.sops.yaml", "", "no age key to decrypt it"),
        ] {
            let err = open(file, key).unwrap_err().to_string();
            assert!(err.contains(want), "{file} with {key:?}: {err}");
            for secret in
                ["s3cret-db-pw", "tok-0123456789", "partial-pw-1", "db.example", "evil.example", "AGE-SECRET"]
            {
                assert!(!err.contains(secret), "{err}");
            }
        }
    }

    #[test]
    fn mac_bytes_and_times_are_go_formatted() {
        assert_eq!(mac_bytes(&serde_json::json!(true)), b"True");
        assert_eq!(mac_bytes(&serde_json::json!(2.75)), b"2.75");
        assert_eq!(mac_bytes(&serde_json::json!(1.0)), b"1");
        assert_eq!(mac_bytes(&serde_json::json!(7)), b"7");
        assert_eq!(go_rfc3339("2024-03-25T22:08:10Z").unwrap(), "2024-03-25T22:08:10Z");
        assert_eq!(go_rfc3339("2024-03-25T22:08:10.123+02:00").unwrap(), "2024-03-25T22:08:10+02:00");
    }
}
