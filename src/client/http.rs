//! The one reqwest layer under both API clients: base-URL failover, authentication,
//! TLS, timeouts, the `User-Agent`, bounded retries and the parsing of error bodies into
//! [`ClientError`]. It knows HTTP, not Marathon or Chronos semantics (apart from
//! recognising the shapes of their error bodies).
//!
//! Credentials come from the environment or files, never from manifests, and live in a
//! [`Secret`] that prints as `***`. Error messages carry the URL *path* only, so a base
//! URL is never echoed with whatever it might contain.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rand::Rng;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::{ClientError, ErrorDetail, timeout_reason};

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

    fn header(&self) -> Option<HeaderValue> {
        let raw = match self {
            Credentials::None => return None,
            Credentials::Basic { user, password } => {
                format!("Basic {}", base64(format!("{user}:{}", password.expose()).as_bytes()))
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

/// Standard base64 (RFC 4648 with padding), for the basic-auth header.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// TLS settings beyond the built-in web PKI roots.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// A PEM bundle of extra trusted CA certificates (e.g. the DC/OS cluster CA).
    pub ca_bundle: Option<PathBuf>,
    /// A PEM client certificate (chain) for mutual TLS; needs `client_key`.
    pub client_cert: Option<PathBuf>,
    /// The PEM private key of `client_cert`.
    pub client_key: Option<PathBuf>,
}

/// Bounded exponential backoff with jitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Delay before the first retry (before jitter).
    pub initial_delay: Duration,
    /// Upper bound of any one delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy { max_attempts: 1, ..Self::default() }
    }

    /// The delay before retry number `retry` (0-based): `initial * 2^retry`, capped at
    /// `max_delay`, then jittered to a uniform value in `[cap/2, cap]` so that many
    /// clients failing together do not retry together.
    pub fn delay(&self, retry: u32) -> Duration {
        let cap = self.initial_delay.saturating_mul(2u32.saturating_pow(retry.min(20))).min(self.max_delay);
        let half = cap / 2;
        let nanos = u64::try_from(cap.saturating_sub(half).as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(rand::rng().random_range(0..=nanos))
    }
}

/// Everything needed to build an [`HttpClient`].
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Base URLs, tried in order on connection errors (e.g. all Marathon masters).
    /// A path prefix is kept (`https://dcos/service/marathon`).
    pub urls: Vec<String>,
    /// How to authenticate.
    pub credentials: Credentials,
    /// Extra CA and client identity.
    pub tls: TlsConfig,
    /// Bound on establishing a connection.
    pub connect_timeout: Duration,
    /// Bound on one whole request (not applied to event streams).
    pub request_timeout: Duration,
    /// Appended to the `User-Agent` as `mesosync/<version> (<replica id>)`, so writes
    /// can be told apart per controller replica.
    pub replica_id: Option<String>,
    /// Retries of transient failures (transport errors, 5xx) of idempotent requests.
    pub retry: RetryPolicy,
}

impl HttpConfig {
    /// Defaults for these base URLs: no credentials, 5 s connect and 30 s request
    /// timeouts, [`RetryPolicy::default`].
    pub fn new<S: Into<String>>(urls: impl IntoIterator<Item = S>) -> Self {
        HttpConfig {
            urls: urls.into_iter().map(Into::into).collect(),
            credentials: Credentials::None,
            tls: TlsConfig::default(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            replica_id: None,
            retry: RetryPolicy::default(),
        }
    }
}

/// The `User-Agent` sent: `mesosync/<version>` or `mesosync/<version> (<replica>)`.
pub fn user_agent(replica_id: Option<&str>) -> String {
    let base = concat!("mesosync/", env!("CARGO_PKG_VERSION"));
    match replica_id {
        Some(r) if !r.is_empty() => format!("{base} ({r})"),
        _ => base.to_string(),
    }
}

/// A fully read response.
#[derive(Clone, Debug)]
pub struct HttpResponse {
    /// Status code (always 2xx when returned as `Ok`).
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body bytes (shared, not copied: a listing's objects are slices of it).
    pub body: bytes::Bytes,
}

/// One request, described independently of the base URL it will be sent to.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    /// HTTP method.
    pub method: Method,
    /// Path below the base URL, starting with `/`, already percent-encoded.
    pub path: String,
    /// Query pairs (encoded by the client).
    pub query: Vec<(&'a str, String)>,
    /// JSON body.
    pub body: Option<&'a Value>,
    /// Safe to send twice: transient failures are retried only if true.
    pub idempotent: bool,
}

impl<'a> Request<'a> {
    /// A request without query or body; `GET` / `PUT` / `DELETE` count as idempotent.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        let idempotent = method != Method::POST && method != Method::PATCH;
        Request { method, path: path.into(), query: Vec::new(), body: None, idempotent }
    }

    /// Add a query pair.
    pub fn query(mut self, key: &'a str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }

    /// Set the JSON body.
    pub fn json(mut self, body: &'a Value) -> Self {
        self.body = Some(body);
        self
    }

    /// Override whether the request may be retried after a transient failure.
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    fn display_path(&self) -> String {
        if self.query.is_empty() {
            return self.path.clone();
        }
        let q: Vec<String> = self.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{}?{}", self.path, q.join("&"))
    }
}

/// The shared HTTP layer for one system. Cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    system: &'static str,
    client: reqwest::Client,
    bases: Vec<Url>,
    /// Index of the base URL that answered last: tried first next time.
    preferred: AtomicUsize,
    auth: Option<HeaderValue>,
    request_timeout: Duration,
    retry: RetryPolicy,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("system", &self.inner.system)
            .field("bases", &self.base_urls())
            .field("auth", &self.inner.auth.as_ref().map(|_| "***"))
            .finish()
    }
}

impl HttpClient {
    /// Build a client for `system` (`marathon` / `chronos`, used in messages).
    pub fn new(system: &'static str, config: &HttpConfig) -> Result<Self, ClientError> {
        if config.urls.is_empty() {
            return Err(ClientError::Config(format!("no {system} URL given")));
        }
        let mut credentials = config.credentials.clone();
        let mut bases = Vec::with_capacity(config.urls.len());
        for raw in &config.urls {
            let mut url = Url::parse(raw.trim())
                .map_err(|e| ClientError::Config(format!("{system} URL `{}`: {e}", redact_url_text(raw))))?;
            if !matches!(url.scheme(), "http" | "https") {
                // `admin:pw@host` parses with the scheme `admin`: redact the text given.
                return Err(ClientError::Config(format!(
                    "{system} URL must be http or https: {}",
                    redact_url_text(raw)
                )));
            }
            // Credentials in a URL are lifted into the Authorization header and removed
            // from the URL, so that the URL can be printed.
            if !url.username().is_empty() {
                if credentials == Credentials::None {
                    let user = percent_decode(url.username());
                    let password = Secret::new(percent_decode(url.password().unwrap_or("")));
                    credentials = Credentials::Basic { user, password };
                }
                let _ = url.set_username("");
                let _ = url.set_password(None);
            }
            let trimmed = url.path().trim_end_matches('/').to_string();
            url.set_path(&trimmed);
            bases.push(url);
        }

        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .user_agent(user_agent(config.replica_id.as_deref()))
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(30));
        if let Some(ca) = &config.tls.ca_bundle {
            let pem = std::fs::read(ca)
                .map_err(|e| ClientError::Config(format!("cannot read CA bundle {}: {e}", ca.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| ClientError::Config(format!("CA bundle {}: {e}", ca.display())))?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        match (&config.tls.client_cert, &config.tls.client_key) {
            (Some(cert), Some(key)) => {
                let mut pem = std::fs::read(cert).map_err(|e| {
                    ClientError::Config(format!("cannot read client certificate {}: {e}", cert.display()))
                })?;
                pem.push(b'\n');
                pem.extend(std::fs::read(key).map_err(|e| {
                    ClientError::Config(format!("cannot read client key {}: {e}", key.display()))
                })?);
                let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                    ClientError::Config(format!("client certificate {}: {e}", cert.display()))
                })?;
                builder = builder.identity(identity);
            }
            (None, None) => {}
            _ => {
                return Err(ClientError::Config(
                    "a client certificate needs both a cert and a key file".into(),
                ));
            }
        }
        let client = builder.build().map_err(|e| ClientError::Config(e.without_url().to_string()))?;
        Ok(HttpClient {
            inner: Arc::new(Inner {
                system,
                client,
                bases,
                preferred: AtomicUsize::new(0),
                auth: credentials.header(),
                request_timeout: config.request_timeout,
                retry: config.retry,
            }),
        })
    }

    /// `marathon` or `chronos`.
    pub fn system(&self) -> &'static str {
        self.inner.system
    }

    /// The base URLs, without credentials.
    pub fn base_urls(&self) -> Vec<String> {
        self.inner.bases.iter().map(redact).collect()
    }

    /// The base URL tried first (the one that answered last).
    pub fn current_base_url(&self) -> String {
        let i = self.inner.preferred.load(Ordering::Relaxed) % self.inner.bases.len();
        redact(&self.inner.bases[i])
    }

    /// Send `req`, failing over across base URLs and retrying transient failures (if
    /// idempotent) per the retry policy. A non-2xx answer becomes a [`ClientError`].
    pub async fn send(&self, req: &Request<'_>) -> Result<HttpResponse, ClientError> {
        let policy = if req.idempotent { self.inner.retry } else { RetryPolicy::none() };
        let mut retry = 0;
        loop {
            let result = match self.send_once(req, Some(self.inner.request_timeout)).await {
                Ok(resp) => self.read(req, resp).await,
                Err(e) => Err(e),
            };
            match result {
                Err(e) if e.is_transient() && retry + 1 < policy.max_attempts => {
                    let delay = policy.delay(retry);
                    tracing::debug!(system = self.inner.system, error = %e.without_server_text(), ?delay, "retrying");
                    tokio::time::sleep(delay).await;
                    retry += 1;
                }
                other => return other,
            }
        }
    }

    /// Send `req` and decode a JSON answer.
    pub async fn send_json<T: DeserializeOwned>(&self, req: &Request<'_>) -> Result<T, ClientError> {
        let resp = self.send(req).await?;
        self.decode(req, &resp.body)
    }

    /// Decode a JSON body, naming the request on failure.
    pub fn decode<T: DeserializeOwned>(&self, req: &Request<'_>, body: &[u8]) -> Result<T, ClientError> {
        self.decoded(req, serde_json::from_slice(body))
    }

    /// Name the request in a decoding error (for bodies decoded some other way than
    /// [`HttpClient::decode`], e.g. split into raw objects).
    pub fn decoded<T>(
        &self,
        req: &Request<'_>,
        result: Result<T, serde_json::Error>,
    ) -> Result<T, ClientError> {
        result.map_err(|e| ClientError::Decode {
            system: self.inner.system,
            method: req.method.to_string(),
            path: req.display_path(),
            reason: e.to_string(),
        })
    }

    /// Open a long-lived streaming response (no request timeout; failover applies,
    /// retries are the caller's business). Non-2xx answers become errors.
    pub async fn open_stream(
        &self,
        req: &Request<'_>,
        accept: &str,
    ) -> Result<reqwest::Response, ClientError> {
        let resp = self.send_once_with(req, None, Some(accept)).await?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        Err(self.api_error(req, status, &body))
    }

    async fn send_once(
        &self,
        req: &Request<'_>,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response, ClientError> {
        self.send_once_with(req, timeout, None).await
    }

    /// One attempt: try each base URL from the preferred one on, moving on when a
    /// connection cannot be made or a gateway says the service is not there
    /// (502/503/504), and remember the first one that answered.
    async fn send_once_with(
        &self,
        req: &Request<'_>,
        timeout: Option<Duration>,
        accept: Option<&str>,
    ) -> Result<reqwest::Response, ClientError> {
        let n = self.inner.bases.len();
        let start = self.inner.preferred.load(Ordering::Relaxed) % n;
        let mut last_err: Option<ClientError> = None;
        let mut last_gateway: Option<reqwest::Response> = None;
        for k in 0..n {
            let i = (start + k) % n;
            let url = self.url(&self.inner.bases[i], req);
            let mut builder = self.inner.client.request(req.method.clone(), url);
            if let Some(t) = timeout {
                builder = builder.timeout(t);
            }
            if let Some(auth) = &self.inner.auth {
                builder = builder.header(header::AUTHORIZATION, auth.clone());
            }
            builder = builder.header(header::ACCEPT, accept.unwrap_or("application/json"));
            if let Some(body) = req.body {
                builder = builder.json(body);
            }
            tracing::trace!(system = self.inner.system, method = %req.method, path = %req.display_path(), "http");
            match builder.send().await {
                Ok(resp)
                    if matches!(
                        resp.status(),
                        StatusCode::BAD_GATEWAY
                            | StatusCode::SERVICE_UNAVAILABLE
                            | StatusCode::GATEWAY_TIMEOUT
                    ) && k + 1 < n =>
                {
                    last_gateway = Some(resp);
                }
                Ok(resp) => {
                    self.inner.preferred.store(i, Ordering::Relaxed);
                    return Ok(resp);
                }
                Err(e) if e.is_connect() => {
                    tracing::debug!(system = self.inner.system, base = %redact(&self.inner.bases[i]), "connect failed");
                    last_err = Some(self.unreachable(req, &e.without_url()));
                }
                Err(e) => return Err(self.transport(req, e, timeout)),
            }
        }
        if let Some(resp) = last_gateway {
            return Ok(resp);
        }
        Err(last_err.unwrap_or_else(|| ClientError::Config("no base URL".into())))
    }

    async fn read(&self, req: &Request<'_>, resp: reqwest::Response) -> Result<HttpResponse, ClientError> {
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = match read_body(resp).await {
            Ok(b) => b,
            Err(e) => return Err(self.transport(req, e, Some(self.inner.request_timeout))),
        };
        if status.is_success() {
            tracing::debug!(system = self.inner.system, method = %req.method, path = %req.display_path(), status = status.as_u16(), "http");
            Ok(HttpResponse { status, headers, body })
        } else {
            Err(self.api_error(req, status, &body))
        }
    }

    fn url(&self, base: &Url, req: &Request<'_>) -> Url {
        let mut url = base.clone();
        let path = format!("{}{}", base.path().trim_end_matches('/'), req.path);
        url.set_path(&path);
        if !req.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in &req.query {
                pairs.append_pair(k, v);
            }
        }
        url
    }

    fn unreachable(&self, req: &Request<'_>, e: &reqwest::Error) -> ClientError {
        ClientError::Unreachable {
            system: self.inner.system,
            method: req.method.to_string(),
            path: req.display_path(),
            tried: self.base_urls().join(", "),
            reason: error_chain(e),
        }
    }

    fn transport(&self, req: &Request<'_>, e: reqwest::Error, timeout: Option<Duration>) -> ClientError {
        let reason = match timeout {
            Some(t) if e.is_timeout() => timeout_reason(t),
            _ => error_chain(&e.without_url()),
        };
        ClientError::Transport {
            system: self.inner.system,
            method: req.method.to_string(),
            path: req.display_path(),
            reason,
        }
    }

    /// Turn a non-2xx answer into the matching typed error.
    fn api_error(&self, req: &Request<'_>, status: StatusCode, body: &[u8]) -> ClientError {
        let parsed = ErrorBody::parse(body);
        let method = req.method.to_string();
        let path = req.display_path();
        let message = parsed
            .message
            .clone()
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
        match status.as_u16() {
            409 if !parsed.deployments.is_empty() => {
                ClientError::Locked { method, path, deployments: parsed.deployments }
            }
            409 if message.contains("already exists") => ClientError::AlreadyExists { method, path, message },
            404 => ClientError::NotFound { system: self.inner.system, method, path, message },
            code => ClientError::Api {
                system: self.inner.system,
                method,
                path,
                status: code,
                message,
                details: parsed.details,
            },
        }
    }
}

/// What can be read out of an error body: Marathon's `{"message","details",
/// "deployments"}`, Chronos 3.x's `{"message","status"}` (a Java stack trace whose first
/// line is kept), or Chronos 2.x's plain text.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ErrorBody {
    pub message: Option<String>,
    pub details: Vec<ErrorDetail>,
    pub deployments: Vec<String>,
}

impl ErrorBody {
    pub(crate) fn parse(body: &[u8]) -> Self {
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
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
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

fn redact(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string().trim_end_matches('/').to_string()
}

/// For URLs that do not even parse: the userinfo redacted, with or without a scheme
/// (`admin:pw@host` is a user's typo for `http://admin:pw@host`).
fn redact_url_text(raw: &str) -> String {
    match (raw.find("://"), raw.rfind('@')) {
        (Some(s), Some(a)) if a > s => format!("{}://***@{}", &raw[..s], &raw[a + 1..]),
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

/// The whole body, in one buffer sized from `Content-Length` when given: a listing
/// of 10,000 apps is ~14 MB, and gathering it in chunks and then copying them into
/// one buffer held it twice (and left thousands of chunk allocations behind).
async fn read_body(mut resp: reqwest::Response) -> Result<bytes::Bytes, reqwest::Error> {
    // A server's length is a hint, not a promise: cap what is reserved up front.
    const MAX_RESERVE: u64 = 256 << 20;
    let hint = resp.content_length().unwrap_or(0).min(MAX_RESERVE);
    let mut body = bytes::BytesMut::with_capacity(usize::try_from(hint).unwrap_or(0));
    while let Some(chunk) = resp.chunk().await? {
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        let c = Credentials::Basic { user: "u".into(), password: s };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
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

    #[test]
    fn retry_delay_grows_and_is_bounded() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        for _ in 0..50 {
            let d0 = p.delay(0);
            assert!(d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(100), "{d0:?}");
            let d3 = p.delay(3);
            assert!(d3 >= Duration::from_millis(400) && d3 <= Duration::from_millis(800), "{d3:?}");
            let d30 = p.delay(30);
            assert!(d30 >= Duration::from_millis(500) && d30 <= Duration::from_secs(1), "{d30:?}");
        }
    }

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

    #[test]
    fn urls_are_redacted_and_credentials_lifted() {
        let c = HttpClient::new("marathon", &HttpConfig::new(["http://bob:s3cret@127.0.0.1:1/marathon/"]))
            .unwrap();
        assert_eq!(c.base_urls(), vec!["http://127.0.0.1:1/marathon"]);
        assert!(!format!("{c:?}").contains("s3cret"));
        assert_eq!(redact_url_text("ht tp://a:b@h"), "ht tp://***@h");
        assert_eq!(percent_decode("a%40b"), "a@b");
        assert_eq!(encode_segment("my job#1"), "my%20job%231");
    }

    #[test]
    fn tls_files_are_checked_at_build_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = HttpConfig::new(["https://127.0.0.1:1"]);
        cfg.tls.ca_bundle = Some(dir.path().join("missing.pem"));
        let err = HttpClient::new("marathon", &cfg).unwrap_err();
        assert!(err.to_string().contains("cannot read CA bundle"), "{err}");

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        cfg.tls.ca_bundle = Some(empty.clone());
        HttpClient::new("marathon", &cfg).unwrap();

        cfg.tls.client_cert = Some(empty);
        let err = HttpClient::new("marathon", &cfg).unwrap_err();
        assert!(err.to_string().contains("both a cert and a key"), "{err}");

        let bad = HttpClient::new("marathon", &HttpConfig::new(["ftp://x"])).unwrap_err();
        assert!(bad.to_string().contains("http or https"), "{bad}");
        assert!(HttpClient::new("marathon", &HttpConfig::new(Vec::<String>::new())).is_err());
    }

    #[test]
    fn user_agent_carries_replica() {
        assert_eq!(user_agent(None), format!("mesosync/{}", env!("CARGO_PKG_VERSION")));
        assert!(user_agent(Some("r2")).ends_with(" (r2)"));
    }
}
