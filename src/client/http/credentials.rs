//! How a client authenticates: the [`Credentials`] read from the environment or files
//! (never from manifests or flags that would show in `ps`), each value a [`Secret`]
//! that prints as `***`, and the one place a secret becomes an `Authorization` header.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::HeaderValue;

use crate::client::error::ClientError;

/// A credential value. `Debug` and `Display` print `***`; only [`Secret::expose`] gives
/// the value, and the only caller is the code that builds the `Authorization` header.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself. Use only to put it on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How to authenticate to an API.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Credentials {
    /// No `Authorization` header.
    #[default]
    None,
    /// HTTP basic authentication.
    Basic {
        /// User name (not secret).
        user: String,
        /// Password.
        password: Secret,
    },
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// DC/OS' own scheme: `Authorization: token=<token>`.
    DcosToken(Secret),
}

impl Credentials {
    /// Read credentials from the environment, with variable names under `prefix`
    /// (e.g. `MESOSYNC_MARATHON`): `<prefix>_TOKEN` or `<prefix>_TOKEN_FILE` (with
    /// `<prefix>_TOKEN_SCHEME=dcos` for DC/OS' `token=` header, default `bearer`), else
    /// `<prefix>_USER` with `<prefix>_PASSWORD` or `<prefix>_PASSWORD_FILE`.
    pub fn from_env(prefix: &str) -> Result<Self, ClientError> {
        Self::from_lookup(prefix, |name| std::env::var(name).ok())
    }

    /// [`Credentials::from_env`] over any variable lookup (tests pass a map).
    pub fn from_lookup(prefix: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ClientError> {
        let var = |suffix: &str| lookup(&format!("{prefix}_{suffix}")).filter(|v| !v.is_empty());
        let secret = |name: &str| -> Result<Option<Secret>, ClientError> {
            if let Some(v) = var(name) {
                return Ok(Some(Secret::new(v)));
            }
            match var(&format!("{name}_FILE")) {
                Some(path) => read_secret_file(Path::new(&path)).map(Some),
                None => Ok(None),
            }
        };
        if let Some(token) = secret("TOKEN")? {
            return match var("TOKEN_SCHEME").as_deref().map(str::to_ascii_lowercase).as_deref() {
                None | Some("bearer") => Ok(Credentials::Bearer(token)),
                Some("dcos") => Ok(Credentials::DcosToken(token)),
                Some(other) => Err(ClientError::Config(format!(
                    "{prefix}_TOKEN_SCHEME must be `bearer` or `dcos`, not `{other}`"
                ))),
            };
        }
        match (var("USER"), secret("PASSWORD")?) {
            (Some(user), Some(password)) => Ok(Credentials::Basic { user, password }),
            (Some(_), None) => Err(ClientError::Config(format!(
                "{prefix}_USER is set but neither {prefix}_PASSWORD nor {prefix}_PASSWORD_FILE"
            ))),
            (None, Some(_)) => {
                Err(ClientError::Config(format!("{prefix}_PASSWORD is set but {prefix}_USER is not")))
            }
            (None, None) => Ok(Credentials::None),
        }
    }

    /// The `Authorization` header value, marked sensitive (never logged by the HTTP
    /// stack); `None` without credentials or when the value is not a valid header.
    pub(super) fn header(&self) -> Option<HeaderValue> {
        let raw = match self {
            Credentials::None => return None,
            Credentials::Basic { user, password } => {
                format!("Basic {}", STANDARD.encode(format!("{user}:{}", password.expose())))
            }
            Credentials::Bearer(t) => format!("Bearer {}", t.expose()),
            Credentials::DcosToken(t) => format!("token={}", t.expose()),
        };
        let mut value = HeaderValue::from_str(&raw).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

/// Read a secret from a file, trimming the trailing newline editors add.
pub fn read_secret_file(path: &Path) -> Result<Secret, ClientError> {
    std::fs::read_to_string(path)
        .map(|s| Secret::new(s.trim_end_matches(['\n', '\r'])))
        .map_err(|e| ClientError::Config(format!("cannot read secret file {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        let c = Credentials::Basic { user: "u".into(), password: s };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn basic_auth_header_is_rfc7617_base64() {
        let basic = |user: &str, password: &str| {
            let c = Credentials::Basic { user: user.into(), password: Secret::new(password) };
            c.header().unwrap().to_str().unwrap().to_string()
        };
        assert_eq!(basic("user", "pass"), "Basic dXNlcjpwYXNz");
        // Padding, and a password holding the separator.
        assert_eq!(basic("f", ""), "Basic Zjo=");
        assert_eq!(basic("a", "b:c"), "Basic YTpiOmM=");
        assert!(Credentials::Bearer(Secret::new("t")).header().unwrap().is_sensitive());
        assert_eq!(Credentials::None.header(), None);
    }

    #[test]
    fn credentials_from_lookup() {
        let env: HashMap<&str, &str> = [("M_USER", "admin"), ("M_PASSWORD", "pw")].into();
        let get = |k: &str| env.get(k).map(|v| v.to_string());
        let c = Credentials::from_lookup("M", get).unwrap();
        assert_eq!(c, Credentials::Basic { user: "admin".into(), password: Secret::new("pw") });

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "tok\n").unwrap();
        let path = file.display().to_string();
        let env: HashMap<&str, &str> = [("M_TOKEN_FILE", path.as_str()), ("M_TOKEN_SCHEME", "dcos")].into();
        let c = Credentials::from_lookup("M", |k: &str| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c, Credentials::DcosToken(Secret::new("tok")));
        assert_eq!(c.header().unwrap().to_str().unwrap(), "token=tok");

        let env: HashMap<&str, &str> = [("M_USER", "admin")].into();
        assert!(Credentials::from_lookup("M", |k: &str| env.get(k).map(|v| v.to_string())).is_err());
        assert_eq!(Credentials::from_lookup("M", |_| None).unwrap(), Credentials::None);
    }
}
