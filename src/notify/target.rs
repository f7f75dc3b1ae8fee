//! Where notifications go: one [`Target`] per `--notify` value.
//!
//! ```text
//! --notify FORMAT=URL[,name=NAME][,events=KIND+KIND…][,secret-env=VAR | ,secret-file=PATH]
//! ```
//!
//! - `FORMAT`: `generic` (a JSON event, signed when a secret is set) or `slack` (an
//!   incoming-webhook message, which Slack, Mattermost and Rocket.Chat accept).
//! - `URL`: `http(s)://…`, or `env:VAR` / `file:PATH` to read it from the environment or
//!   a file — a Slack webhook URL is itself a credential, and a flag's value shows in
//!   `ps`. Logs and metrics name a target by `name` and show only `scheme://host:port`.
//! - `events`: the kinds sent (default: all), e.g. `events=applied+failed+recovered`.
//! - `secret-env` / `secret-file`: the HMAC-SHA256 key of a `generic` target, named,
//!   never given as a value.
//!
//! Parsing is pure: the environment and files are read through the [`Lookup`] given.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use reqwest::Url;

use super::event::EventKind;

/// How the body is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One JSON event per request ([`super::payload::generic`]).
    Generic,
    /// A Slack-compatible `{"text": …}` message ([`super::payload::slack`]).
    Slack,
}

impl Format {
    /// `generic` or `slack`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Generic => "generic",
            Format::Slack => "slack",
        }
    }
}

/// An HMAC key; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(pub(crate) Vec<u8>);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

/// One receiver of notifications.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// Its name in logs and metrics.
    pub name: String,
    /// The body's form.
    pub format: Format,
    /// Where to POST (may hold a token: never logged; see [`Target::shown_url`]).
    pub url: Url,
    /// The kinds of event it receives.
    pub events: BTreeSet<EventKind>,
    /// Signs `generic` bodies (`X-Signature: sha256=<hex>`).
    pub key: Option<SigningKey>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("url", &self.shown_url())
            .field("events", &self.events)
            .field("signed", &self.key.is_some())
            .finish()
    }
}

impl Target {
    /// `scheme://host:port` only: no userinfo, path or query (which may hold tokens).
    pub fn shown_url(&self) -> String {
        let host = self.url.host_str().unwrap_or("?");
        match self.url.port() {
            Some(port) => format!("{}://{host}:{port}", self.url.scheme()),
            None => format!("{}://{host}", self.url.scheme()),
        }
    }

    /// Whether it receives events of `kind`.
    pub fn wants(&self, kind: EventKind) -> bool {
        self.events.contains(&kind)
    }
}

/// Reads what a spec names: environment variables and files.
pub trait Lookup {
    /// The value of environment variable `name`, if set and not empty.
    fn env(&self, name: &str) -> Option<String>;
    /// The contents of `path`.
    fn file(&self, path: &Path) -> std::io::Result<String>;
}

/// The process environment and file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessLookup;

impl Lookup for ProcessLookup {
    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }

    fn file(&self, path: &Path) -> std::io::Result<String> {
        // Bounded: a key or a URL is small.
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut std::io::Read::take(std::fs::File::open(path)?, 64 * 1024),
            &mut text,
        )?;
        Ok(text)
    }
}

/// Why a `--notify` value is refused. Never holds a secret or a URL's path.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("--notify {target}: {why}")]
pub struct TargetError {
    /// The target's name (or its format, before the name is known).
    pub target: String,
    /// What is wrong.
    pub why: String,
}

/// Parse one `--notify` value (the `index`-th, for the default name `FORMAT-INDEX`).
pub fn parse(spec: &str, index: usize, lookup: &dyn Lookup) -> Result<Target, TargetError> {
    let mut parts = spec.split(',');
    let head = parts.next().unwrap_or_default();
    let fail = |target: &str, why: String| TargetError { target: target.to_string(), why };
    let Some((format, url)) = head.split_once('=') else {
        return Err(fail(&format!("#{index}"), "expected FORMAT=URL (generic=… or slack=…)".into()));
    };
    let format = match format.trim() {
        "generic" => Format::Generic,
        "slack" => Format::Slack,
        other => {
            return Err(fail(
                &format!("#{index}"),
                format!("unknown format {other:?}: use generic or slack"),
            ));
        }
    };
    let mut name = format!("{}-{index}", format.name());
    let mut events: BTreeSet<EventKind> = EventKind::ALL.into_iter().collect();
    let mut key_source = None;
    for option in parts {
        let Some((k, v)) = option.split_once('=') else {
            return Err(fail(&name, "expected key=value options after the URL".into()));
        };
        match k.trim() {
            "name" if !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) => {
                name = v.to_string()
            }
            "name" => return Err(fail(&name, "a name is letters, digits and -_.".into())),
            "events" => {
                events = BTreeSet::new();
                for word in v.split('+').map(str::trim) {
                    let kind = EventKind::from_name(word).ok_or_else(|| {
                        let known: Vec<_> = EventKind::ALL.iter().map(|k| k.name()).collect();
                        fail(&name, format!("unknown event {word:?}; known: {}", known.join(", ")))
                    })?;
                    events.insert(kind);
                }
            }
            "secret-env" | "secret-file" if key_source.is_some() => {
                return Err(fail(&name, "give one of secret-env and secret-file".into()));
            }
            "secret-env" | "secret-file" => key_source = Some((k.trim().to_string(), v.to_string())),
            "secret" => {
                return Err(fail(
                    &name,
                    "a secret is never a flag value (it would show in `ps`): use secret-env=VAR or secret-file=PATH"
                        .into(),
                ));
            }
            other => return Err(fail(&name, format!("unknown option {other:?}"))),
        }
    }
    let url = read_value(url.trim(), lookup).map_err(|why| fail(&name, format!("URL: {why}")))?;
    let url = Url::parse(url.trim()).map_err(|e| fail(&name, format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(fail(&name, "the URL must be http:// or https:// with a host".into()));
    }
    let key = match key_source {
        None => None,
        Some(_) if format == Format::Slack => {
            return Err(fail(&name, "slack targets are not signed (the URL is the credential)".into()));
        }
        Some((source, value)) => {
            let reference =
                if source == "secret-env" { format!("env:{value}") } else { format!("file:{value}") };
            let secret =
                read_value(&reference, lookup).map_err(|why| fail(&name, format!("secret: {why}")))?;
            let secret = secret.trim_end_matches(['\n', '\r']);
            if secret.is_empty() {
                return Err(fail(&name, "the secret is empty".into()));
            }
            Some(SigningKey(secret.as_bytes().to_vec()))
        }
    };
    Ok(Target { name, format, url, events, key })
}

/// `env:VAR` → the variable, `file:PATH` → the file (trailing newline dropped), else
/// the text itself.
fn read_value(text: &str, lookup: &dyn Lookup) -> Result<String, String> {
    if let Some(var) = text.strip_prefix("env:") {
        return lookup.env(var).ok_or_else(|| format!("environment variable {var} is not set"));
    }
    if let Some(path) = text.strip_prefix("file:") {
        let read = lookup.file(Path::new(path)).map_err(|e| format!("reading {path}: {e}"))?;
        return Ok(read.trim_end_matches(['\n', '\r']).to_string());
    }
    Ok(text.to_string())
}

/// Parse every `--notify` value; names must be unique.
pub fn parse_all(specs: &[String], lookup: &dyn Lookup) -> Result<Vec<Target>, TargetError> {
    let mut targets: Vec<Target> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let target = parse(spec, i + 1, lookup)?;
        if targets.iter().any(|t| t.name == target.name) {
            return Err(TargetError { target: target.name, why: "two targets have this name".into() });
        }
        targets.push(target);
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Fake(HashMap<&'static str, &'static str>);

    impl Lookup for Fake {
        fn env(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|v| v.to_string())
        }
        fn file(&self, path: &Path) -> std::io::Result<String> {
            self.0
                .get(path.to_str().unwrap())
                .map(|v| v.to_string())
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
        }
    }

    fn lookup() -> Fake {
        Fake(HashMap::from([
            ("SLACK_URL", "https://hooks.slack.com/services/T0/B0/tokentoken"),
            ("HOOK_KEY", "k3y-from-env"),
            ("/run/key", "k3y-from-file\n"),
        ]))
    }

    #[test]
    fn specs_parse_with_defaults_and_options() {
        let t = parse("generic=http://127.0.0.1:9000/hook", 1, &lookup()).unwrap();
        assert_eq!(
            (t.name.as_str(), t.format, t.events.len(), t.key.is_none()),
            ("generic-1", Format::Generic, 8, true)
        );
        let t = parse(
            "generic=http://127.0.0.1:9000/hook,name=ops,events=applied+failed+recovered,secret-file=/run/key",
            2,
            &lookup(),
        )
        .unwrap();
        assert_eq!(t.name, "ops");
        assert_eq!(t.events, BTreeSet::from([EventKind::Applied, EventKind::Failed, EventKind::Recovered]));
        assert_eq!(t.key, Some(SigningKey(b"k3y-from-file".to_vec())));
        let t = parse("generic=http://h/x,secret-env=HOOK_KEY", 3, &lookup()).unwrap();
        assert_eq!(t.key, Some(SigningKey(b"k3y-from-env".to_vec())));
        let t = parse("slack=env:SLACK_URL,events=leadership", 4, &lookup()).unwrap();
        assert_eq!(t.url.path(), "/services/T0/B0/tokentoken");
        assert_eq!(t.shown_url(), "https://hooks.slack.com");
        let shown = format!("{t:?}");
        assert!(!shown.contains("tokentoken"), "{shown}");
    }

    #[test]
    fn bad_specs_are_refused_without_echoing_secrets() {
        for (spec, expected) in [
            ("http://x", "expected FORMAT=URL"),
            ("teams=http://x", "unknown format"),
            ("generic=ftp://x", "http:// or https://"),
            ("generic=not a url", "not a URL"),
            ("generic=http://x,events=applied+nope", "unknown event \"nope\""),
            ("generic=http://x,secret=hunter2", "never a flag value"),
            ("generic=http://x,secret-env=MISSING", "MISSING is not set"),
            ("generic=http://x,secret-env=HOOK_KEY,secret-file=/run/key", "one of"),
            ("slack=http://x,secret-env=HOOK_KEY", "not signed"),
            ("slack=env:NOPE", "NOPE is not set"),
            ("generic=http://x,color=red", "unknown option"),
        ] {
            let e = parse(spec, 1, &lookup()).unwrap_err().to_string();
            assert!(e.contains(expected), "{spec}: {e}");
            assert!(!e.contains("hunter2") && !e.contains("k3y"), "{e}");
        }
        let twice = ["generic=http://a,name=x".to_string(), "slack=http://b,name=x".to_string()];
        assert!(parse_all(&twice, &lookup()).unwrap_err().to_string().contains("two targets"));
    }

    #[test]
    fn the_shown_url_has_no_userinfo_path_or_query() {
        let t = parse("generic=https://user:pw@example.test:8443/p/secret?token=t", 1, &lookup()).unwrap();
        assert_eq!(t.shown_url(), "https://example.test:8443");
    }
}
