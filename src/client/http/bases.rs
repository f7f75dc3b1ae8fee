//! Failover targets: the base URLs of one system (e.g. every Marathon master), parsed
//! and cleaned once, and which of them answered last (tried first next time). Also the
//! URL text helpers: redaction for messages and path-segment encoding.

use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::Url;

use super::credentials::{Credentials, Secret};
use crate::client::error::ClientError;

/// The base URLs of one system, in the order given.
#[derive(Debug)]
pub(super) struct BaseUrls {
    urls: Vec<Url>,
    /// Index of the base URL that answered last.
    preferred: AtomicUsize,
}

impl BaseUrls {
    /// Parse `raw` (at least one; http or https). Credentials in a URL are lifted into
    /// `credentials` (unless some are set already) and removed from the URL, so that the
    /// URL can be printed; a path prefix is kept without its trailing `/`.
    pub(super) fn parse(
        system: &str,
        raw: &[String],
        credentials: &mut Credentials,
    ) -> Result<Self, ClientError> {
        if raw.is_empty() {
            return Err(ClientError::Config(format!("no {system} URL given")));
        }
        let mut urls = Vec::with_capacity(raw.len());
        for text in raw {
            let mut url = Url::parse(text.trim())
                .map_err(|e| ClientError::Config(format!("{system} URL `{}`: {e}", redact_url_text(text))))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(ClientError::Config(format!(
                    "{system} URL must be http or https: {}",
                    // `admin:pw@host` parses with the scheme `admin`: redact the text given.
                    redact_url_text(text)
                )));
            }
            if !url.username().is_empty() {
                if *credentials == Credentials::None {
                    let user = percent_decode(url.username());
                    let password = Secret::new(percent_decode(url.password().unwrap_or("")));
                    *credentials = Credentials::Basic { user, password };
                }
                let _ = url.set_username("");
                let _ = url.set_password(None);
            }
            let trimmed = url.path().trim_end_matches('/').to_string();
            url.set_path(&trimmed);
            urls.push(url);
        }
        Ok(BaseUrls { urls, preferred: AtomicUsize::new(0) })
    }

    /// How many there are (at least one).
    pub(super) fn len(&self) -> usize {
        self.urls.len()
    }

    /// All of them, printable.
    pub(super) fn redacted(&self) -> Vec<String> {
        self.urls.iter().map(redact).collect()
    }

    /// The index tried first: the one that answered last.
    pub(super) fn preferred(&self) -> usize {
        self.preferred.load(Ordering::Relaxed) % self.urls.len()
    }

    /// Base URL number `i`.
    pub(super) fn get(&self, i: usize) -> &Url {
        &self.urls[i]
    }

    /// Base URL `i` answered: try it first from now on.
    pub(super) fn answered(&self, i: usize) {
        self.preferred.store(i, Ordering::Relaxed);
    }
}

/// The URL without user and password, without a trailing `/`.
pub(super) fn redact(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string().trim_end_matches('/').to_string()
}

/// For URLs that do not even parse: drop anything up to an `@`.
fn redact_url_text(raw: &str) -> String {
    match (raw.find("://"), raw.rfind('@')) {
        (Some(s), Some(a)) if a > s => format!("{}://***@{}", &raw[..s], &raw[a + 1..]),
        // `admin:pw@host` (no scheme) is a user's typo for `http://admin:pw@host`.
        (_, Some(a)) => format!("***@{}", &raw[a + 1..]),
        _ => raw.to_string(),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(b) =
                std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encode one path segment (Chronos job names may hold spaces and `#`).
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_lifted_out_of_urls_and_urls_redacted() {
        let mut credentials = Credentials::None;
        let raw = vec!["http://bob:s3cret@127.0.0.1:1/marathon/".to_string(), "https://m2".to_string()];
        let bases = BaseUrls::parse("marathon", &raw, &mut credentials).unwrap();
        assert_eq!(bases.redacted(), vec!["http://127.0.0.1:1/marathon", "https://m2"]);
        assert_eq!(credentials, Credentials::Basic { user: "bob".into(), password: Secret::new("s3cret") });
        assert_eq!((bases.len(), bases.preferred()), (2, 0));
        bases.answered(1);
        assert_eq!(bases.preferred(), 1);

        // Credentials given otherwise win over those in a URL (which are still removed).
        let mut token = Credentials::Bearer(Secret::new("t"));
        let bases = BaseUrls::parse("marathon", &raw[..1], &mut token).unwrap();
        assert_eq!(token, Credentials::Bearer(Secret::new("t")));
        assert!(!format!("{bases:?}").contains("s3cret"));
    }

    #[test]
    fn bad_base_urls_are_refused() {
        let parse = |raw: &[&str]| {
            let raw: Vec<String> = raw.iter().map(|s| s.to_string()).collect();
            BaseUrls::parse("marathon", &raw, &mut Credentials::None).unwrap_err().to_string()
        };
        assert!(parse(&["ftp://x"]).contains("http or https"));
        assert!(parse(&[]).contains("no marathon URL"));
        let unparsable = parse(&["ht tp://a:s3cret@h"]);
        assert!(!unparsable.contains("s3cret"), "{unparsable}");
    }

    #[test]
    fn text_helpers() {
        assert_eq!(redact_url_text("ht tp://a:b@h"), "ht tp://***@h");
        assert_eq!(percent_decode("a%40b"), "a@b");
        assert_eq!(encode_segment("my job#1"), "my%20job%231");
    }
}
