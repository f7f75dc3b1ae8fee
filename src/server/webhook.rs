//! The push webhook receiver (`mesosync run --git-pull BRANCH` with a webhook secret):
//! `POST /hooks/git` (or `--webhook-path`) from GitHub, GitLab or any sender of Flux's
//! generic-hmac form. A signed push to the watched branch asks the `--git-pull` task to
//! fetch now; everything else is answered and ignored.
//!
//! | sender | authentication | push event |
//! |---|---|---|
//! | GitHub | `X-Hub-Signature-256: sha256=<hex>`, HMAC-SHA256 of the raw body | `X-GitHub-Event: push` (`ping` answered 200) |
//! | GitLab | `X-Gitlab-Token: <secret>` | `X-Gitlab-Event: Push Hook` |
//! | generic | `X-Signature: sha256=<hex>`, HMAC-SHA256 of the raw body | any; a JSON `ref` field, if present, is checked |
//!
//! Every comparison with the secret is constant-time (`hmac`'s `verify_slice`; the
//! GitLab token is compared as an HMAC of itself). In order, a request is: refused 429
//! when its source address's token bucket is empty, 413 over [`MAX_BODY`], 401 unsigned or wrongly
//! signed (nothing else happens), 400 for a push whose body is not JSON, else 202
//! (fetching) or 200 (ping, another ref, another event). The secret is never logged or
//! echoed.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hmac::{Hmac, Mac};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde::Deserialize;
use sha2::Sha256;
use tracing::{debug, info, warn};

type HmacSha256 = Hmac<Sha256>;

/// The default path of the receiver.
pub const DEFAULT_PATH: &str = "/hooks/git";
/// Larger bodies are refused with 413 (GitHub caps its payloads at 25 MB, but a push
/// of a few commits is a few kB; only `ref` is read).
pub const MAX_BODY: usize = 1024 * 1024;
/// Requests accepted in a burst from one source address before 429.
pub const RATE_BURST: f64 = 20.0;
/// Sustained requests per second from one source address after a burst.
pub const RATE_PER_SECOND: f64 = 2.0;
/// Source addresses remembered by the rate limiter; beyond, a new source is refused
/// until an idle one is forgotten (a flood from many addresses cannot grow memory).
pub const MAX_SOURCES: usize = 1024;
/// A source idle this long is forgotten (its bucket would be full again anyway).
const SOURCE_IDLE: Duration = Duration::from_secs(60);

/// Why a webhook cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The secret is empty.
    #[error("the webhook secret is empty")]
    EmptySecret,
    /// The path is not a plain absolute path or collides with the status endpoints.
    #[error(
        "webhook path {0:?}: give an absolute path of letters, digits and `/_.-`, other than /healthz /readyz /status /metrics and the dashboard's (/objects /object /history /ui/…)"
    )]
    BadPath(String),
}

/// The shared secret. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// A non-empty secret.
    pub fn new(value: impl Into<Vec<u8>>) -> Result<Self, WebhookError> {
        let value = value.into();
        if value.is_empty() {
            return Err(WebhookError::EmptySecret);
        }
        Ok(Self(value))
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any length")
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A token bucket: `burst` requests at once, then `per_second`.
#[derive(Debug)]
pub struct TokenBucket {
    burst: f64,
    per_second: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(burst: f64, per_second: f64, now: Instant) -> Self {
        Self { burst, per_second, tokens: burst, last: now }
    }

    /// Take one token at `now`, if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        let refill = now.saturating_duration_since(self.last).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Who sent a correctly authenticated request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    /// `X-Hub-Signature-256`.
    GitHub,
    /// `X-Gitlab-Token`.
    GitLab,
    /// `X-Signature` (Flux's generic-hmac).
    Generic,
}

/// Check the request's signature or token against `secret`. `None`: unsigned or wrongly
/// signed. Only the first of `X-Hub-Signature-256`, `X-Gitlab-Token`, `X-Signature`
/// present is looked at.
pub fn authenticate(headers: &HeaderMap, body: &[u8], secret: &Secret) -> Option<Provider> {
    let header = |name: &str| headers.get(name).map(|v| v.as_bytes());
    if let Some(signature) = header("x-hub-signature-256") {
        return body_signed(signature, body, secret).then_some(Provider::GitHub);
    }
    if let Some(token) = header("x-gitlab-token") {
        return same_secret(token, secret).then_some(Provider::GitLab);
    }
    if let Some(signature) = header("x-signature") {
        return body_signed(signature, body, secret).then_some(Provider::Generic);
    }
    None
}

/// `signature` is `sha256=<hex of HMAC-SHA256(secret, body)>`; compared in constant time.
fn body_signed(signature: &[u8], body: &[u8], secret: &Secret) -> bool {
    let Some(hex_digest) = signature.trim_ascii().strip_prefix(b"sha256=") else {
        return false;
    };
    let Ok(digest) = hex::decode(hex_digest) else {
        return false;
    };
    let mut mac = secret.mac();
    mac.update(body);
    mac.verify_slice(&digest).is_ok()
}

/// `token == secret`, in time independent of where they differ and of their lengths:
/// the HMACs (keyed by the secret) of both are compared with `verify_slice`.
pub(crate) fn same_secret(token: &[u8], secret: &Secret) -> bool {
    let mut expected = secret.mac();
    expected.update(&secret.0);
    let expected = expected.finalize().into_bytes();
    let mut mac = secret.mac();
    mac.update(token);
    mac.verify_slice(&expected).is_ok()
}

/// What an authenticated request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// GitHub's `ping` when a hook is created.
    Ping,
    /// A push of `reference` (`refs/heads/main`, `refs/tags/v1`); `None` when a generic
    /// sender did not say which (taken as the watched branch).
    Push(Option<String>),
    /// Another event (issues, merge requests, tag pushes on GitLab…), named.
    Other(String),
}

#[derive(Deserialize)]
struct PushBody {
    #[serde(rename = "ref")]
    reference: Option<String>,
}

/// What the request is, from its event header and body. `Err`: a push whose body has
/// no readable JSON.
pub fn classify(provider: Provider, headers: &HeaderMap, body: &[u8]) -> Result<Event, String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let event = match provider {
        Provider::GitHub => header("x-github-event"),
        Provider::GitLab => header("x-gitlab-event"),
        Provider::Generic => "push",
    };
    let is_push = match provider {
        Provider::GitHub if event == "ping" => return Ok(Event::Ping),
        Provider::GitHub => event == "push",
        Provider::GitLab => event == "Push Hook",
        Provider::Generic => true,
    };
    if !is_push {
        return Ok(Event::Other(if event.is_empty() { "unnamed".into() } else { event.into() }));
    }
    let json = json_body(headers, body)?;
    if json.is_empty() && provider == Provider::Generic {
        return Ok(Event::Push(None));
    }
    let parsed: PushBody = match serde_json::from_slice(&json) {
        Ok(parsed) => parsed,
        Err(_) if provider == Provider::Generic => return Ok(Event::Push(None)),
        Err(e) => return Err(format!("the push body is not JSON: {e}")),
    };
    match (provider, parsed.reference) {
        (Provider::Generic, reference) => Ok(Event::Push(reference)),
        (_, Some(reference)) => Ok(Event::Push(Some(reference))),
        (_, None) => Err("the push body has no `ref`".into()),
    }
}

/// The JSON of the body: the body itself, or GitHub's `payload` form field when the hook
/// was set up with `application/x-www-form-urlencoded`.
fn json_body(headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, String> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return Ok(body.to_vec());
    }
    form_urlencoded::parse(body)
        .find(|(name, _)| name == "payload")
        .map(|(_, payload)| payload.into_owned().into_bytes())
        .ok_or_else(|| "a form-encoded body without a `payload` field".to_string())
}

/// One token bucket per source address (the peer of the TCP connection: behind a
/// reverse proxy, the proxy), at most [`MAX_SOURCES`] of them.
#[derive(Debug, Default)]
pub struct SourceBuckets {
    buckets: HashMap<IpAddr, TokenBucket>,
}

impl SourceBuckets {
    /// Take a token for `source` at `now`.
    pub fn take(&mut self, source: IpAddr, now: Instant) -> bool {
        if !self.buckets.contains_key(&source) && self.buckets.len() >= MAX_SOURCES {
            self.buckets.retain(|_, b| now.saturating_duration_since(b.last) < SOURCE_IDLE);
            if self.buckets.len() >= MAX_SOURCES {
                return false;
            }
        }
        self.buckets
            .entry(source)
            .or_insert_with(|| TokenBucket::new(RATE_BURST, RATE_PER_SECOND, now))
            .take(now)
    }
}

/// What became of a webhook request, as the `outcome` label of
/// `mesosync_webhook_requests_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestOutcome {
    /// A push to the watched branch: fetching.
    Accepted,
    /// Authenticated, but a ping, another ref or another event.
    Ignored,
    /// Unsigned, or wrongly signed.
    Unauthorized,
    /// Over the source's rate.
    RateLimited,
    /// Over [`MAX_BODY`].
    TooLarge,
    /// A push whose body could not be read.
    BadRequest,
    /// The body took longer than the read timeout.
    Timeout,
}

impl RequestOutcome {
    const ALL: [RequestOutcome; 7] = [
        RequestOutcome::Accepted,
        RequestOutcome::Ignored,
        RequestOutcome::Unauthorized,
        RequestOutcome::RateLimited,
        RequestOutcome::TooLarge,
        RequestOutcome::BadRequest,
        RequestOutcome::Timeout,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestOutcome::Accepted => "accepted",
            RequestOutcome::Ignored => "ignored",
            RequestOutcome::Unauthorized => "unauthorized",
            RequestOutcome::RateLimited => "rate_limited",
            RequestOutcome::TooLarge => "too_large",
            RequestOutcome::BadRequest => "bad_request",
            RequestOutcome::Timeout => "timeout",
        }
    }
}

type OutcomeLabels = Vec<(&'static str, &'static str)>;

/// The receiver: where it listens, the secret, the watched branch and what a push to it
/// does.
pub struct Webhook {
    path: String,
    secret: Secret,
    branch: String,
    on_push: Box<dyn Fn() + Send + Sync>,
    buckets: Mutex<SourceBuckets>,
    requests: Family<OutcomeLabels, Counter>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("path", &self.path)
            .field("branch", &self.branch)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// A receiver on `path` calling `on_push` for each authenticated push to `branch`.
    pub fn new(
        path: &str,
        secret: Secret,
        branch: &str,
        on_push: impl Fn() + Send + Sync + 'static,
    ) -> Result<Self, WebhookError> {
        let plain = path.starts_with('/')
            && path.len() > 1
            && path.chars().all(|c| c.is_ascii_alphanumeric() || "/_.-".contains(c))
            && !["/healthz", "/readyz", "/status", "/metrics"].contains(&path.trim_end_matches('/'))
            && !crate::server::ui::owns_path(path);
        if !plain {
            return Err(WebhookError::BadPath(path.to_string()));
        }
        Ok(Self {
            path: path.to_string(),
            secret,
            branch: branch.to_string(),
            on_push: Box::new(on_push),
            buckets: Mutex::new(SourceBuckets::default()),
            requests: Family::default(),
        })
    }

    /// Add `mesosync_webhook_requests_total{outcome}` to `registry` (every outcome
    /// from 0).
    pub fn register_metrics(&self, registry: &mut Registry) {
        for outcome in RequestOutcome::ALL {
            drop(self.requests.get_or_create(&vec![("outcome", outcome.as_str())]));
        }
        registry.register(
            "webhook_requests",
            "Push webhook requests, by outcome (accepted, ignored, unauthorized, rate_limited, too_large, bad_request, timeout)",
            self.requests.clone(),
        );
    }

    fn count(&self, outcome: RequestOutcome) {
        self.requests.get_or_create(&vec![("outcome", outcome.as_str())]).inc();
    }

    /// The path it answers on.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `POST <path>` → the receiver.
    pub fn routes(self: Arc<Self>) -> Router {
        Router::new().route(&self.path.clone(), post(receive)).with_state(self)
    }

    /// The answer to an authenticated `event`, after doing what it asks.
    fn handle(&self, provider: Provider, event: Event) -> (StatusCode, String) {
        let watched = format!("refs/heads/{}", self.branch);
        let accepted =
            matches!(&event, Event::Push(reference) if reference.as_deref().is_none_or(|r| r == watched));
        self.count(if accepted { RequestOutcome::Accepted } else { RequestOutcome::Ignored });
        match event {
            Event::Ping => (StatusCode::OK, "pong\n".into()),
            Event::Push(reference) if reference.as_deref().is_none_or(|r| r == watched) => {
                info!(?provider, branch = %self.branch, "push webhook: fetching now");
                (self.on_push)();
                (StatusCode::ACCEPTED, format!("fetching {}\n", self.branch))
            }
            Event::Push(Some(reference)) => {
                debug!(?provider, %reference, "push webhook: another ref, ignored");
                (StatusCode::OK, format!("ignored: {reference} is not {watched}\n"))
            }
            Event::Push(None) => unreachable!("a push without ref is taken as the watched branch"),
            Event::Other(name) => {
                debug!(?provider, event = %name, "webhook: not a push, ignored");
                (StatusCode::OK, format!("ignored: {name} event\n"))
            }
        }
    }
}

async fn receive(State(hook): State<Arc<Webhook>>, request: Request) -> Response {
    // The server's accept loop records the peer; without it (a router served another
    // way) every request shares one bucket.
    let source = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    let allowed =
        hook.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take(source, Instant::now());
    if !allowed {
        hook.count(RequestOutcome::RateLimited);
        return (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "1")], "too many webhook requests\n")
            .into_response();
    }
    let (parts, body) = request.into_parts();
    let declared =
        parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        hook.count(RequestOutcome::TooLarge);
        return too_large();
    }
    let body: Bytes = match tokio::time::timeout(READ_TIMEOUT, axum::body::to_bytes(body, MAX_BODY)).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => {
            hook.count(RequestOutcome::TooLarge);
            return too_large();
        }
        Err(_) => {
            hook.count(RequestOutcome::Timeout);
            return (StatusCode::REQUEST_TIMEOUT, "the body took too long\n").into_response();
        }
    };
    let Some(provider) = authenticate(&parts.headers, &body, &hook.secret) else {
        hook.count(RequestOutcome::Unauthorized);
        warn!(path = %hook.path, %source, "webhook request without a valid signature or token: refused");
        return (StatusCode::UNAUTHORIZED, "missing or invalid signature\n").into_response();
    };
    match classify(provider, &parts.headers, &body) {
        Ok(event) => hook.handle(provider, event).into_response(),
        Err(why) => {
            hook.count(RequestOutcome::BadRequest);
            (StatusCode::BAD_REQUEST, format!("{why}\n")).into_response()
        }
    }
}

/// A sender that trickles its body is cut off after this long.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

fn too_large() -> Response {
    (StatusCode::PAYLOAD_TOO_LARGE, format!("webhook bodies are limited to {MAX_BODY} bytes\n"))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::new("It's a Secret to Everybody").unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn github_documented_example_signature_verifies() {
        // The example of GitHub's "Validating webhook deliveries" page.
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let h = headers(&[("x-hub-signature-256", sig)]);
        assert_eq!(authenticate(&h, b"Hello, World!", &secret()), Some(Provider::GitHub));
        assert_eq!(authenticate(&h, b"Hello, World?", &secret()), None);
        let h = headers(&[
            ("x-hub-signature-256", "sha256=zz"),
            ("x-gitlab-token", "It's a Secret to Everybody"),
        ]);
        assert_eq!(
            authenticate(&h, b"Hello, World!", &secret()),
            None,
            "a bad GitHub signature is not rescued"
        );
    }

    #[test]
    fn gitlab_tokens_must_match_exactly() {
        let ok = headers(&[("x-gitlab-token", "It's a Secret to Everybody")]);
        assert_eq!(authenticate(&ok, b"", &secret()), Some(Provider::GitLab));
        for wrong in ["It's a Secret to Everybod", "It's a Secret to Everybody!", "", "x"] {
            let h = headers(&[("x-gitlab-token", wrong)]);
            assert_eq!(authenticate(&h, b"", &secret()), None, "{wrong:?}");
        }
        assert_eq!(authenticate(&HeaderMap::new(), b"", &secret()), None);
    }

    #[test]
    fn events_are_classified_per_provider() {
        let push = br#"{"ref":"refs/heads/main","after":"abc"}"#;
        let gh = |event: &str| headers(&[("x-github-event", event)]);
        assert_eq!(classify(Provider::GitHub, &gh("ping"), b"{}"), Ok(Event::Ping));
        assert_eq!(
            classify(Provider::GitHub, &gh("push"), push),
            Ok(Event::Push(Some("refs/heads/main".into())))
        );
        assert_eq!(classify(Provider::GitHub, &gh("issues"), push), Ok(Event::Other("issues".into())));
        assert!(classify(Provider::GitHub, &gh("push"), b"not json").is_err());
        let gl = |event: &str| headers(&[("x-gitlab-event", event)]);
        assert_eq!(
            classify(Provider::GitLab, &gl("Push Hook"), push),
            Ok(Event::Push(Some("refs/heads/main".into())))
        );
        assert_eq!(
            classify(Provider::GitLab, &gl("Tag Push Hook"), push),
            Ok(Event::Other("Tag Push Hook".into()))
        );
        assert_eq!(classify(Provider::Generic, &HeaderMap::new(), b""), Ok(Event::Push(None)));
        assert_eq!(classify(Provider::Generic, &HeaderMap::new(), b"hello"), Ok(Event::Push(None)));
        assert_eq!(
            classify(Provider::Generic, &HeaderMap::new(), push),
            Ok(Event::Push(Some("refs/heads/main".into())))
        );
        let form =
            headers(&[("x-github-event", "push"), ("content-type", "application/x-www-form-urlencoded")]);
        let body = format!("payload={}", form_urlencoded::byte_serialize(push).collect::<String>());
        assert_eq!(
            classify(Provider::GitHub, &form, body.as_bytes()),
            Ok(Event::Push(Some("refs/heads/main".into())))
        );
    }

    #[test]
    fn the_bucket_allows_a_burst_then_the_sustained_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(3.0, 2.0, t0);
        assert!((0..3).all(|_| bucket.take(t0)));
        assert!(!bucket.take(t0));
        assert!(bucket.take(t0 + Duration::from_millis(500)));
        assert!(!bucket.take(t0 + Duration::from_millis(600)));
        assert!((0..3).all(|_| bucket.take(t0 + Duration::from_secs(60))), "refills up to the burst");
        assert!(!bucket.take(t0 + Duration::from_secs(60)));
    }

    #[test]
    fn each_source_has_its_own_bucket_and_the_map_is_bounded() {
        let t0 = Instant::now();
        let mut buckets = SourceBuckets::default();
        let flood = IpAddr::from([10, 0, 0, 1]);
        let github = IpAddr::from([10, 0, 0, 2]);
        assert!((0..RATE_BURST as usize).all(|_| buckets.take(flood, t0)));
        assert!(!buckets.take(flood, t0), "the flooding source is limited");
        assert!(buckets.take(github, t0), "another source is not");
        for i in 0..MAX_SOURCES as u32 {
            buckets.take(IpAddr::from((i + 100).to_be_bytes()), t0);
        }
        assert_eq!(buckets.buckets.len(), MAX_SOURCES);
        assert!(!buckets.take(IpAddr::from([192, 168, 0, 1]), t0), "full: a new source waits");
        assert!(buckets.take(IpAddr::from([192, 168, 0, 1]), t0 + SOURCE_IDLE), "idle sources forgotten");
        assert!(buckets.buckets.len() <= MAX_SOURCES);
    }

    #[test]
    fn paths_are_checked_and_the_secret_never_shows() {
        let hook = |path: &str| Webhook::new(path, secret(), "main", || {});
        assert!(hook("/hooks/git").is_ok());
        assert!(hook("/hooks/7f3a9c-unguessable").is_ok());
        for bad in ["hooks", "/", "/status", "/metrics/", "/a/{x}", "/a b"] {
            assert!(hook(bad).is_err(), "{bad}");
        }
        assert!(Secret::new("").is_err());
        let shown = format!("{:?} {:?}", secret(), hook("/h").unwrap());
        assert!(!shown.contains("Secret to"), "{shown}");
    }
}
