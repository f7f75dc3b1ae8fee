//! The one reqwest layer under both API clients: sending a [`Request`] to one system
//! with base-URL failover, timeouts, the `User-Agent` and bounded retries of transient
//! failures. It knows HTTP, not Marathon or Chronos semantics (apart from recognising
//! the shapes of their error bodies, in [`errors`]).
//!
//! - [`credentials`]: [`Credentials`] from the environment or files, each value a
//!   [`Secret`] that prints as `***`; the `Authorization` header.
//! - [`tls`]: extra CAs and the client identity ([`TlsConfig`]).
//! - [`retry`]: the backoff of retries ([`RetryPolicy`]).
//! - [`bases`]: the base URLs failed over between, URL redaction and encoding.
//! - [`errors`]: non-2xx answers and transport failures as [`ClientError`]s.
//! - [`stream`]: streaming responses and whole bodies.
//!
//! Error messages carry the URL *path* only, so a base URL is never echoed with
//! whatever it might contain.

mod bases;
mod credentials;
mod errors;
mod retry;
mod stream;
mod tls;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use bases::encode_segment;
use bases::{BaseUrls, redact};
pub use credentials::{Credentials, Secret, read_secret_file};
use errors::error_chain;
pub use retry::RetryPolicy;
pub use tls::TlsConfig;

use super::error::{ClientError, timeout_reason};

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
    bases: BaseUrls,
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
        let mut credentials = config.credentials.clone();
        let bases = BaseUrls::parse(system, &config.urls, &mut credentials)?;
        let builder = reqwest::Client::builder()
            .use_rustls_tls()
            .user_agent(user_agent(config.replica_id.as_deref()))
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(30));
        let builder = config.tls.apply(builder)?;
        let client = builder.build().map_err(|e| ClientError::Config(e.without_url().to_string()))?;
        Ok(HttpClient {
            inner: Arc::new(Inner {
                system,
                client,
                bases,
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
        self.inner.bases.redacted()
    }

    /// The base URL tried first (the one that answered last).
    pub fn current_base_url(&self) -> String {
        redact(self.inner.bases.get(self.inner.bases.preferred()))
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
    pub(super) async fn send_once_with(
        &self,
        req: &Request<'_>,
        timeout: Option<Duration>,
        accept: Option<&str>,
    ) -> Result<reqwest::Response, ClientError> {
        let n = self.inner.bases.len();
        let start = self.inner.bases.preferred();
        let mut last_err: Option<ClientError> = None;
        let mut last_gateway: Option<reqwest::Response> = None;
        for k in 0..n {
            let i = (start + k) % n;
            let url = self.url(self.inner.bases.get(i), req);
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
                    self.inner.bases.answered(i);
                    return Ok(resp);
                }
                Err(e) if e.is_connect() => {
                    tracing::debug!(system = self.inner.system, base = %redact(self.inner.bases.get(i)), "connect failed");
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
        let body = match stream::read_body(resp).await {
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
        errors::api_error(self.inner.system, req.method.to_string(), req.display_path(), status, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted_and_credentials_lifted() {
        let c = HttpClient::new("marathon", &HttpConfig::new(["http://bob:s3cret@127.0.0.1:1/marathon/"]))
            .unwrap();
        assert_eq!(c.base_urls(), vec!["http://127.0.0.1:1/marathon"]);
        assert_eq!(c.current_base_url(), "http://127.0.0.1:1/marathon");
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(c.inner.auth.as_ref().is_some_and(HeaderValue::is_sensitive));
    }

    #[test]
    fn bad_configs_are_refused_at_build_time() {
        let mut cfg = HttpConfig::new(["https://127.0.0.1:1"]);
        cfg.tls.ca_bundle = Some("/nonexistent/ca.pem".into());
        let err = HttpClient::new("marathon", &cfg).unwrap_err();
        assert!(err.to_string().contains("cannot read CA bundle"), "{err}");
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
