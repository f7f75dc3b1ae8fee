//! Test hooks shared by both servers: the request log and counters, fault injection,
//! and the `/_sandbox/` control endpoints (deployment duration, clock, state
//! snapshot/restore, seeding). The log and faults work whether or not the HTTP
//! control endpoints are served; `/_sandbox/` requests are never logged or faulted.
//!
//! Endpoints (both servers, only when `SandboxConfig::controls`):
//! - `GET /_sandbox/requests`, `DELETE /_sandbox/requests`, `GET /_sandbox/counters`
//! - `GET|PUT|POST|DELETE /_sandbox/faults` (list / replace / add one / clear)
//! - `PUT /_sandbox/deployment-duration` `{"millis": n}`
//! - `GET /_sandbox/clock`, `POST /_sandbox/clock/advance` `{"seconds": n}`
//! - `GET|PUT /_sandbox/state` (snapshot / restore), `POST /_sandbox/seed`
//! - `GET /_sandbox/chronos/outcomes`, `PUT /_sandbox/chronos/outcome` (server-wide run
//!   default), `PUT|POST|DELETE /_sandbox/chronos/jobs/{name}/outcome` (one job's script)
//! - `GET|DELETE /_sandbox/chronos/runs` (the run log)
//! - `GET /_sandbox/marathon/outcomes`, `PUT|POST|DELETE /_sandbox/marathon/outcomes/{app id}`
//!   (how an app's tasks behave, its deployment time)

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::{Deserialize, Serialize};

use super::clock::iso_millis;
use super::{
    AppOutcome, Clock, JobOutcome, RunDefaults, Seed, chronos::ChronosState, marathon::MarathonState,
};

/// Which emulated server answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum System {
    /// The Marathon server.
    Marathon,
    /// The Chronos server.
    Chronos,
}

/// One served request, as the request log keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// Which server served it.
    pub system: System,
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Raw query string (empty when none).
    pub query: String,
    /// The `User-Agent` header, if any.
    pub user_agent: Option<String>,
    /// Status code answered.
    pub status: u16,
}

/// How a Marathon deployment matched by a [`FaultRule`] ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentOutcome {
    /// Tasks fail; the deployment ends with `deployment_failed`.
    Fail,
    /// Tasks stay staged; the deployment never leaves `/v2/deployments`.
    NeverFinish,
}

/// One fault injection rule. A request matches when its server, method and path prefix
/// match (unset fields match everything). The first matching rule applies.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultRule {
    /// Only this server (both when unset).
    pub system: Option<System>,
    /// Only this method, e.g. `PUT` (any when unset).
    pub method: Option<String>,
    /// Only paths starting with this (all when empty).
    pub path_prefix: String,
    /// Share of requests (0..=1) answered with `error_status` instead.
    pub error_rate: f64,
    /// Status of injected errors (default 503).
    pub error_status: Option<u16>,
    /// Added latency before the request is served.
    pub latency_ms: u64,
    /// Share of requests (0..=1) whose connection is dropped without an answer.
    pub drop_rate: f64,
    /// Marathon deployments created by matching requests end this way.
    pub deployment: Option<DeploymentOutcome>,
    /// With `deployment`: only deployments touching an app id with this prefix.
    pub app_id_prefix: Option<String>,
    /// Let this many matching requests through untouched before the rule applies
    /// (counted down as they pass), e.g. to hold only the second POST of a sequence.
    pub skip: u64,
    /// Apply to this many matching requests (after `skip`), then to none: an outage
    /// that ends after a known number of requests rather than after some time
    /// (counted down in the listed rule). Unset: every matching request.
    pub times: Option<u64>,
}

impl FaultRule {
    /// Marathon deployments touching an app whose id starts with `app_id_prefix` end
    /// `outcome`'s way (every other request is served as usual).
    pub fn deployment(app_id_prefix: &str, outcome: DeploymentOutcome) -> Self {
        Self {
            system: Some(System::Marathon),
            deployment: Some(outcome),
            app_id_prefix: Some(app_id_prefix.into()),
            ..Self::default()
        }
    }

    fn matches(&self, system: System, method: &str, path: &str) -> bool {
        self.system.is_none_or(|s| s == system)
            && self.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
            && path.starts_with(&self.path_prefix)
    }
}

/// The deployment faults that matched a request, handed to the Marathon handlers as a
/// request extension.
#[derive(Clone, Debug, Default)]
pub struct DeploymentFaults(pub Vec<(Option<String>, DeploymentOutcome)>);

impl DeploymentFaults {
    /// The outcome for a deployment touching these apps, if a rule says so.
    pub fn outcome_for(&self, app_ids: &[&str]) -> Option<DeploymentOutcome> {
        self.0.iter().find_map(|(prefix, outcome)| match prefix {
            None => Some(*outcome),
            Some(prefix) => app_ids.iter().any(|id| id.starts_with(prefix.as_str())).then_some(*outcome),
        })
    }
}

#[derive(Debug, Default)]
struct Log {
    requests: Vec<RecordedRequest>,
    counters: BTreeMap<String, u64>,
    /// Requests other than GET being served now (both servers).
    writes_now: u64,
}

/// The counter of the most requests other than GET served at once (both servers).
pub const MAX_WRITES_IN_FLIGHT: &str = "writes in flight (max)";

/// Request log, counters and fault rules shared by both servers.
#[derive(Debug, Default)]
pub struct Controls {
    log: Mutex<Log>,
    rules: Mutex<Vec<FaultRule>>,
    /// Requests being served (see [`Controls::in_flight`]).
    in_flight: std::sync::atomic::AtomicUsize,
}

/// Counts one request in [`Controls::in_flight`] while it lives: until it is answered,
/// or until the server drops it (its client went away).
struct InFlight<'a>(&'a Controls);

impl<'a> InFlight<'a> {
    fn enter(controls: &'a Controls) -> Self {
        controls.in_flight.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        InFlight(controls)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Counts one request other than GET towards [`MAX_WRITES_IN_FLIGHT`] while it lives
/// (dropped with the request if its client goes away).
struct WriteInFlight<'a>(&'a Controls);

impl<'a> WriteInFlight<'a> {
    fn enter(controls: &'a Controls) -> Self {
        controls.write_in_flight(true);
        WriteInFlight(controls)
    }
}

impl Drop for WriteInFlight<'_> {
    fn drop(&mut self) {
        self.0.write_in_flight(false);
    }
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Controls {
    /// Every logged request, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        locked(&self.log).requests.clone()
    }

    /// Requests (`/_sandbox/` excluded) the servers are serving now: received, not yet
    /// answered (a streamed answer counts once its head is out), and not dropped. A test
    /// waits for 0 to know that every request a client gave up on (a timeout) has landed
    /// or never will, instead of sleeping.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Counters keyed `"<METHOD> <path>"`.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        locked(&self.log).counters.clone()
    }

    /// Forget the log and counters.
    pub fn reset_requests(&self) {
        *locked(&self.log) = Log::default();
    }

    /// A request other than GET starts (`true`) or ends being served.
    fn write_in_flight(&self, starts: bool) {
        let mut log = locked(&self.log);
        if starts {
            log.writes_now += 1;
            let now = log.writes_now;
            let max = log.counters.entry(MAX_WRITES_IN_FLIGHT.to_string()).or_default();
            *max = (*max).max(now);
        } else {
            log.writes_now = log.writes_now.saturating_sub(1);
        }
    }

    fn record(&self, request: RecordedRequest) {
        let mut log = locked(&self.log);
        *log.counters.entry(format!("{} {}", request.method, request.path)).or_default() += 1;
        log.requests.push(request);
    }

    fn rules(&self) -> Vec<FaultRule> {
        locked(&self.rules).clone()
    }

    /// The rules that apply to this request; a matching rule still skipping requests
    /// counts this one down instead, and a rule whose `times` are spent does not apply.
    fn take_matching(&self, system: System, method: &str, path: &str) -> Vec<FaultRule> {
        let mut rules = locked(&self.rules);
        let mut applying = Vec::new();
        for rule in rules.iter_mut().filter(|r| r.matches(system, method, path)) {
            if rule.skip > 0 {
                rule.skip -= 1;
            } else if rule.times != Some(0) {
                if let Some(times) = &mut rule.times {
                    *times -= 1;
                }
                applying.push(rule.clone());
            }
        }
        applying
    }
}

/// A handle on the fault rules, for tests that inject faults without HTTP.
#[derive(Clone, Debug)]
pub struct Faults {
    controls: Arc<Controls>,
}

impl Faults {
    pub(crate) fn new(controls: Arc<Controls>) -> Self {
        Faults { controls }
    }

    /// Add a rule (after the existing ones).
    pub fn add(&self, rule: FaultRule) {
        locked(&self.controls.rules).push(rule);
    }

    /// Replace all rules.
    pub fn set(&self, rules: Vec<FaultRule>) {
        *locked(&self.controls.rules) = rules;
    }

    /// Remove all rules.
    pub fn clear(&self) {
        locked(&self.controls.rules).clear();
    }

    /// The current rules.
    pub fn list(&self) -> Vec<FaultRule> {
        self.controls.rules()
    }
}

/// What the HTTP control endpoints act on.
#[derive(Clone)]
pub(crate) struct ControlTargets {
    pub marathon: Arc<MarathonState>,
    pub chronos: Arc<ChronosState>,
    pub controls: Arc<Controls>,
    pub clock: Arc<Clock>,
}

#[derive(Clone)]
struct LogLayerState {
    system: System,
    controls: Arc<Controls>,
}

/// Put the request log and fault injection around a server's router, and add the
/// control endpoints when `targets` is given.
pub(crate) fn wrap(
    router: Router,
    system: System,
    controls: Arc<Controls>,
    targets: Option<ControlTargets>,
) -> Router {
    let router =
        router.layer(middleware::from_fn_with_state(LogLayerState { system, controls }, log_and_fault));
    match targets {
        Some(targets) => router.nest("/_sandbox", control_router(targets)),
        None => router,
    }
}

async fn log_and_fault(State(layer): State<LogLayerState>, mut request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    if path.starts_with("/_sandbox") {
        return next.run(request).await;
    }
    let _in_flight = InFlight::enter(&layer.controls);
    let query = request.uri().query().unwrap_or_default().to_owned();
    let user_agent =
        request.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned);

    let _write = (method != "GET").then(|| WriteInFlight::enter(&layer.controls));
    let rules = layer.controls.take_matching(layer.system, &method, &path);
    let mut injected: Option<Response> = None;
    if let Some(rule) = rules
        .iter()
        .find(|r| r.deployment.is_none() || r.latency_ms > 0 || r.error_rate > 0.0 || r.drop_rate > 0.0)
    {
        if rule.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(rule.latency_ms)).await;
        }
        if rule.drop_rate > 0.0 && rand::random::<f64>() < rule.drop_rate {
            injected = Some(dropped_connection());
        } else if rule.error_rate > 0.0 && rand::random::<f64>() < rule.error_rate {
            let status = StatusCode::from_u16(rule.error_status.unwrap_or(503))
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            injected = Some(
                (status, [(header::CONTENT_TYPE, "application/json")], r#"{"message":"injected fault"}"#)
                    .into_response(),
            );
        }
    }
    let response = match injected {
        Some(response) => response,
        None => {
            let deployment_faults = DeploymentFaults(
                rules.iter().filter_map(|r| r.deployment.map(|o| (r.app_id_prefix.clone(), o))).collect(),
            );
            request.extensions_mut().insert(deployment_faults);
            next.run(request).await
        }
    };
    layer.controls.record(RecordedRequest {
        system: layer.system,
        method,
        path,
        query,
        user_agent,
        status: response.status().as_u16(),
    });
    response
}

/// A response whose body fails at once: the server closes the connection without a
/// complete answer, which clients see as a dropped connection.
fn dropped_connection() -> Response {
    let failing = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected drop",
        ))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_LENGTH, "1024")
        .body(Body::from_stream(failing))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn control_router(targets: ControlTargets) -> Router {
    Router::new()
        .route("/requests", get(list_requests).delete(reset_requests))
        .route("/counters", get(counters))
        .route("/faults", get(list_faults).put(set_faults).post(add_fault).delete(clear_faults))
        .route("/deployment-duration", put(set_deployment_duration))
        .route("/clock", get(clock_now))
        .route("/clock/advance", post(advance_clock))
        .route("/state", get(snapshot).put(restore))
        .route("/seed", post(seed))
        .route("/chronos/outcomes", get(job_outcomes))
        .route("/chronos/outcome", put(set_run_defaults))
        .route(
            "/chronos/jobs/{name}/outcome",
            put(set_job_outcome).post(set_job_outcome).delete(clear_job_outcome),
        )
        .route("/chronos/runs", get(job_runs).delete(clear_job_runs))
        .route("/marathon/outcomes", get(app_outcomes))
        .route(
            "/marathon/outcomes/{*id}",
            put(set_app_outcome).post(set_app_outcome).delete(clear_app_outcome),
        )
        .with_state(targets)
}

fn json_response(status: StatusCode, value: serde_json::Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], value.to_string()).into_response()
}

fn bad_request(message: impl std::fmt::Display) -> Response {
    json_response(StatusCode::BAD_REQUEST, serde_json::json!({"message": message.to_string()}))
}

async fn list_requests(State(t): State<ControlTargets>) -> Response {
    json_response(StatusCode::OK, serde_json::to_value(t.controls.requests()).unwrap_or_default())
}

async fn reset_requests(State(t): State<ControlTargets>) -> StatusCode {
    t.controls.reset_requests();
    StatusCode::NO_CONTENT
}

async fn counters(State(t): State<ControlTargets>) -> Response {
    json_response(StatusCode::OK, serde_json::to_value(t.controls.counters()).unwrap_or_default())
}

async fn list_faults(State(t): State<ControlTargets>) -> Response {
    json_response(StatusCode::OK, serde_json::to_value(t.controls.rules()).unwrap_or_default())
}

async fn set_faults(State(t): State<ControlTargets>, body: Bytes) -> Response {
    match serde_json::from_slice::<Vec<FaultRule>>(&body) {
        Ok(rules) => {
            Faults::new(t.controls.clone()).set(rules);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(err) => bad_request(err),
    }
}

async fn add_fault(State(t): State<ControlTargets>, body: Bytes) -> Response {
    match serde_json::from_slice::<FaultRule>(&body) {
        Ok(rule) => {
            Faults::new(t.controls.clone()).add(rule);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(err) => bad_request(err),
    }
}

async fn clear_faults(State(t): State<ControlTargets>) -> StatusCode {
    Faults::new(t.controls.clone()).clear();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DurationBody {
    millis: u64,
}

async fn set_deployment_duration(State(t): State<ControlTargets>, body: Bytes) -> Response {
    match serde_json::from_slice::<DurationBody>(&body) {
        Ok(duration) => {
            t.marathon.set_deployment_duration(Duration::from_millis(duration.millis));
            StatusCode::NO_CONTENT.into_response()
        }
        Err(err) => bad_request(err),
    }
}

async fn clock_now(State(t): State<ControlTargets>) -> Response {
    json_response(StatusCode::OK, serde_json::json!({"now": iso_millis(t.clock.now())}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdvanceBody {
    seconds: u64,
}

async fn advance_clock(State(t): State<ControlTargets>, body: Bytes) -> Response {
    match serde_json::from_slice::<AdvanceBody>(&body) {
        Ok(advance) => {
            t.clock.advance(Duration::from_secs(advance.seconds));
            t.chronos.catch_up();
            json_response(StatusCode::OK, serde_json::json!({"now": iso_millis(t.clock.now())}))
        }
        Err(err) => bad_request(err),
    }
}

async fn snapshot(State(t): State<ControlTargets>) -> Response {
    json_response(
        StatusCode::OK,
        serde_json::json!({"apps": t.marathon.snapshot(), "jobs": t.chronos.snapshot()}),
    )
}

async fn restore(State(t): State<ControlTargets>, body: Bytes) -> Response {
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(err) => return bad_request(err),
    };
    let empty = Vec::new();
    let apps = value.get("apps").and_then(|v| v.as_array()).unwrap_or(&empty);
    let jobs = value.get("jobs").and_then(|v| v.as_array()).unwrap_or(&empty);
    match t.marathon.restore(apps).and_then(|()| t.chronos.restore(jobs)) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => bad_request(err),
    }
}

async fn seed(State(t): State<ControlTargets>, body: Bytes) -> Response {
    let seed: Seed = match serde_json::from_slice(&body) {
        Ok(seed) => seed,
        Err(err) => return bad_request(err),
    };
    for app in &seed.apps {
        if let Err(err) = t.marathon.seed_app(app) {
            return bad_request(err);
        }
    }
    for job in &seed.jobs {
        if let Err(err) = t.chronos.seed_job(job) {
            return bad_request(err);
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn job_outcomes(State(t): State<ControlTargets>) -> Response {
    json_response(StatusCode::OK, t.chronos.outcomes())
}

async fn set_run_defaults(State(t): State<ControlTargets>, body: Bytes) -> Response {
    match serde_json::from_slice::<RunDefaults>(&body) {
        Ok(defaults) => {
            t.chronos.set_run_defaults(defaults);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(err) => bad_request(err),
    }
}

async fn set_job_outcome(State(t): State<ControlTargets>, Path(name): Path<String>, body: Bytes) -> Response {
    match serde_json::from_slice::<JobOutcome>(&body) {
        Ok(outcome) => {
            t.chronos.set_outcome(&name, Some(outcome));
            StatusCode::NO_CONTENT.into_response()
        }
        Err(err) => bad_request(err),
    }
}

async fn clear_job_outcome(State(t): State<ControlTargets>, Path(name): Path<String>) -> StatusCode {
    t.chronos.set_outcome(&name, None);
    StatusCode::NO_CONTENT
}

async fn job_runs(State(t): State<ControlTargets>) -> Response {
    json_response(StatusCode::OK, serde_json::to_value(t.chronos.run_log()).unwrap_or_default())
}

async fn clear_job_runs(State(t): State<ControlTargets>) -> StatusCode {
    t.chronos.clear_run_log();
    StatusCode::NO_CONTENT
}

async fn app_outcomes(State(t): State<ControlTargets>) -> Response {
    json_response(StatusCode::OK, serde_json::to_value(t.marathon.app_outcomes()).unwrap_or_default())
}

/// The app id of a `/_sandbox/marathon/outcomes/{*id}` path, absolute.
fn absolute_app_id(tail: &str) -> String {
    format!("/{}", tail.trim_matches('/'))
}

async fn set_app_outcome(State(t): State<ControlTargets>, Path(id): Path<String>, body: Bytes) -> Response {
    match serde_json::from_slice::<AppOutcome>(&body) {
        Ok(outcome) => {
            t.marathon.set_app_outcome(&absolute_app_id(&id), Some(outcome));
            StatusCode::NO_CONTENT.into_response()
        }
        Err(err) => bad_request(err),
    }
}

async fn clear_app_outcome(State(t): State<ControlTargets>, Path(id): Path<String>) -> StatusCode {
    t.marathon.set_app_outcome(&absolute_app_id(&id), None);
    StatusCode::NO_CONTENT
}
