//! The emulated Chronos API, one generation per server as in reality: 2.4 / 2.5 under
//! `/scheduler/*`, 3.x under `/v1/scheduler/*` (DESIGN §5).
//!
//! A POST to `iso8601` or `dependency` creates or fully replaces a job (nothing is
//! merged); GET reports every field in the version's order with server defaults; jobs
//! run (see [`runs`]) when started by hand, when the clock passes their schedule or
//! when their parents succeeded; runs take time, succeed or fail as the test controls
//! say, and move the statistics as Chronos does.

pub mod runs;
pub mod schedule;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use chrono::{DateTime, Utc};
use regex::Regex;
use serde_json::{Map, Value, json};

use self::runs::{JobOutcome, JobRunEvent, RunDefaults, RunState, Scheduler};
use self::schedule::Schedule;
use super::{ChronosVersion, Clock, query};

/// Why Chronos refused a request.
#[derive(Clone, Debug, PartialEq)]
pub enum ChronosError {
    /// A failed `require(...)`: 400 (`requirement failed: …`).
    Requirement(String),
    /// An unparseable schedule: 400 (2.x: empty body).
    BadSchedule(String),
    /// An exception inside the server: 500 (e.g. `"parents": []`).
    Internal(String),
}

impl std::fmt::Display for ChronosError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChronosError::Requirement(text) => write!(f, "requirement failed: {text}"),
            ChronosError::BadSchedule(text) => write!(f, "Cannot parse schedule '{text}'"),
            ChronosError::Internal(text) => write!(f, "{text}"),
        }
    }
}

/// Which create path a job arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Scheduled,
    Dependent,
}

#[derive(Clone, Debug)]
struct Job {
    /// Every reported field, in the version's order.
    fields: Map<String, Value>,
    schedule: Option<Schedule>,
    parents: Vec<String>,
    runs: RunState,
}

/// The Chronos server's state.
pub struct ChronosState {
    version: ChronosVersion,
    state: Mutex<Scheduler>,
    clock: Arc<Clock>,
    addr: SocketAddr,
}

static NAME_2_4: LazyLock<Regex> = LazyLock::new(|| compile(r"^[\w\s#_-]+$"));
static NAME_2_5: LazyLock<Regex> = LazyLock::new(|| compile(r"^[\w\s.#_-]+$"));
static NAME_3: LazyLock<Regex> = LazyLock::new(|| compile(r"^[\w.-]+$"));

fn compile(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|_| unreachable!("constant regex"))
}

/// Lenient readers: Chronos's Jackson deserializer takes `"0.5"` for a number, etc.
fn text(input: &Map<String, Value>, key: &str, default: &str) -> Value {
    match input.get(key) {
        Some(Value::String(s)) => json!(s),
        Some(Value::Number(n)) => json!(n.to_string()),
        Some(Value::Bool(b)) => json!(b.to_string()),
        _ => json!(default),
    }
}

fn number(input: &Map<String, Value>, key: &str) -> Option<f64> {
    match input.get(key) {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
}

fn integer(input: &Map<String, Value>, key: &str, default: i64) -> Value {
    json!(number(input, key).map_or(default, |n| n as i64))
}

fn boolean(input: &Map<String, Value>, key: &str, default: bool) -> Value {
    json!(match input.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => default,
    })
}

fn list(input: &Map<String, Value>, key: &str) -> Value {
    match input.get(key) {
        Some(Value::Array(items)) => Value::Array(items.clone()),
        _ => json!([]),
    }
}

/// A resource where 0 or missing means the server default.
fn resource(input: &Map<String, Value>, key: &str, default: f64) -> Value {
    json!(number(input, key).filter(|n| *n > 0.0).unwrap_or(default))
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ChronosState {
    pub(crate) fn new(
        version: ChronosVersion,
        clock: Arc<Clock>,
        addr: SocketAddr,
        defaults: RunDefaults,
    ) -> Arc<ChronosState> {
        Arc::new(ChronosState { version, state: Mutex::new(Scheduler::new(defaults)), clock, addr })
    }

    fn name_rule(&self) -> (&'static Regex, &'static str) {
        match self.version {
            ChronosVersion::V2_4 => (&NAME_2_4, r"[\w\s#_-]+"),
            ChronosVersion::V2_5 => (&NAME_2_5, r"[\w\s.#_-]+"),
            ChronosVersion::V3 => (&NAME_3, r"[\w.-]+"),
        }
    }

    /// The reported fields of a job, in the order this version writes them.
    fn fields(&self, input: &Map<String, Value>, tail: Vec<(&str, Value)>) -> Map<String, Value> {
        let v2 = self.version.is_2x();
        let newer = self.version != ChronosVersion::V2_4;
        let mut out = Map::new();
        let mut put = |key: &str, value: Value| {
            out.insert(key.to_owned(), value);
        };
        put("name", text(input, "name", ""));
        put("command", text(input, "command", ""));
        put("shell", boolean(input, "shell", true));
        if v2 {
            put("epsilon", text(input, "epsilon", "PT60S"));
        }
        put("executor", text(input, "executor", ""));
        put("executorFlags", text(input, "executorFlags", ""));
        if newer {
            put("taskInfoData", text(input, "taskInfoData", ""));
        }
        put("retries", integer(input, "retries", 2));
        put("owner", text(input, "owner", ""));
        put("ownerName", text(input, "ownerName", ""));
        put("description", text(input, "description", ""));
        if v2 {
            put("async", boolean(input, "async", false));
        }
        put("successCount", integer(input, "successCount", 0));
        put("errorCount", integer(input, "errorCount", 0));
        put("lastSuccess", text(input, "lastSuccess", ""));
        put("lastError", text(input, "lastError", ""));
        put("cpus", resource(input, "cpus", 0.1));
        put("disk", resource(input, "disk", 256.0));
        put("mem", resource(input, "mem", 128.0));
        put("disabled", boolean(input, "disabled", false));
        put("softError", boolean(input, "softError", false));
        let data_job = input.get("dataProcessingJobType").or_else(|| input.get("dataJob"));
        put("dataProcessingJobType", json!(data_job.and_then(Value::as_bool).unwrap_or(false)));
        put("errorsSinceLastSuccess", integer(input, "errorsSinceLastSuccess", 0));
        if newer {
            put("fetch", list(input, "fetch"));
        }
        put("uris", list(input, "uris"));
        put("environmentVariables", list(input, "environmentVariables"));
        put("arguments", list(input, "arguments"));
        put("highPriority", boolean(input, "highPriority", false));
        put("runAsUser", text(input, "runAsUser", "root"));
        if self.version == ChronosVersion::V3 {
            put("concurrent", boolean(input, "concurrent", false));
        }
        if let Some(container) = input.get("container").filter(|c| c.is_object()) {
            put("container", container.clone());
        }
        put("constraints", list(input, "constraints"));
        if self.version == ChronosVersion::V3 {
            put("maxCompletionTime", integer(input, "maxCompletionTime", 0));
        }
        for (key, value) in tail {
            put(key, value);
        }
        out
    }

    /// Create or fully replace a job (POST iso8601 / dependency).
    fn accept(&self, scheduler: &mut Scheduler, body: &Value, route: Route) -> Result<(), ChronosError> {
        let jobs = &scheduler.jobs;
        let job = self.parse_job(jobs, body, route)?;
        let name = job.fields.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
        scheduler.insert(name, job);
        Ok(())
    }

    /// Read a POSTed job against the jobs already defined.
    fn parse_job(
        &self,
        jobs: &BTreeMap<String, Job>,
        body: &Value,
        route: Route,
    ) -> Result<Job, ChronosError> {
        let input =
            body.as_object().ok_or_else(|| ChronosError::Requirement("job must be a JSON object".into()))?;
        let name = input.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
        let now = self.clock.now();
        let existing = jobs.get(&name);
        if existing.is_none() {
            let (rule, pattern) = self.name_rule();
            if !rule.is_match(&name) {
                return Err(ChronosError::Requirement(format!(
                    "the job's name is invalid. Allowed names: '{pattern}'"
                )));
            }
        }
        let job = match route {
            Route::Scheduled => {
                let raw = input.get("schedule").and_then(Value::as_str).unwrap_or_default();
                let mut schedule =
                    Schedule::parse(raw, now).ok_or_else(|| ChronosError::BadSchedule(raw.to_owned()))?;
                // The string stays as posted unless the scheduler already moved it on.
                let reported = if self.skip_missed(&mut schedule, input, now) > 0 {
                    schedule.render()
                } else {
                    raw.to_owned()
                };
                let tail = vec![
                    ("schedule", json!(reported)),
                    ("scheduleTimeZone", text(input, "scheduleTimeZone", "")),
                ];
                Job {
                    fields: self.fields(input, tail),
                    schedule: Some(schedule),
                    parents: Vec::new(),
                    runs: RunState::default(),
                }
            }
            Route::Dependent => {
                let parents: Vec<String> = input
                    .get("parents")
                    .and_then(Value::as_array)
                    .map(|p| p.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                    .unwrap_or_default();
                if parents.is_empty() {
                    return Err(ChronosError::Internal(
                        "java.util.NoSuchElementException: head of empty list".into(),
                    ));
                }
                let all_defined = parents.iter().all(|p| jobs.contains_key(p));
                if !all_defined && self.version.is_2x() {
                    return Err(ChronosError::Requirement(format!(
                        "Job {name} does not have all parents defined!"
                    )));
                }
                let tail = vec![("parents", json!(parents))];
                Job { fields: self.fields(input, tail), schedule: None, parents, runs: RunState::default() }
            }
        };
        Ok(job)
    }

    /// A start in the past: occurrences a real server would never have run are
    /// dropped at once (each still uses up a repetition). 2.x runs what falls within
    /// `epsilon` (default PT60S) and skips older ones; 3.x runs the latest past
    /// occurrence immediately. Returns how many were dropped.
    fn skip_missed(&self, schedule: &mut Schedule, input: &Map<String, Value>, now: DateTime<Utc>) -> u64 {
        if schedule.start > now {
            return 0;
        }
        let threshold = if self.version.is_2x() {
            let epsilon = input
                .get("epsilon")
                .and_then(Value::as_str)
                .and_then(schedule::Period::parse)
                .and_then(|p| p.fixed_seconds())
                .unwrap_or(60);
            now.checked_sub_signed(chrono::Duration::try_seconds(epsilon).unwrap_or(chrono::Duration::MAX))
                .unwrap_or(now)
        } else {
            schedule.period.before(now) + chrono::Duration::milliseconds(1)
        };
        schedule.skip_before(threshold)
    }

    /// Accept a job like a POST does (seeds): `parents` → dependency, else iso8601.
    pub(crate) fn seed_job(&self, body: &Value) -> Result<(), String> {
        let route = if body.get("parents").is_some() { Route::Dependent } else { Route::Scheduled };
        let mut scheduler = locked(&self.state);
        self.accept(&mut scheduler, body, route).map_err(|e| e.to_string())
    }

    /// Whether a job shows in listings (3.x hides jobs whose parents are missing).
    fn visible(jobs: &BTreeMap<String, Job>, job: &Job) -> bool {
        job.parents.iter().all(|p| jobs.contains_key(p))
    }

    /// Play the runs, retries and schedule occurrences the clock has passed.
    pub(crate) fn catch_up(&self) {
        let now = self.clock.now();
        locked(&self.state).advance(now);
    }

    /// Script how the runs of a job end (`None`: back to the server-wide default).
    pub(crate) fn set_outcome(&self, name: &str, outcome: Option<JobOutcome>) {
        self.catch_up();
        locked(&self.state).set_outcome(name, outcome);
    }

    /// Change the server-wide run settings.
    pub(crate) fn set_run_defaults(&self, defaults: RunDefaults) {
        self.catch_up();
        locked(&self.state).defaults = defaults;
    }

    /// The per-job scripts and the server-wide default.
    pub(crate) fn outcomes(&self) -> Value {
        locked(&self.state).outcomes()
    }

    /// The run log, oldest first.
    pub(crate) fn run_log(&self) -> Vec<JobRunEvent> {
        self.catch_up();
        locked(&self.state).run_log()
    }

    /// Forget the run log.
    pub(crate) fn clear_run_log(&self) {
        self.catch_up();
        locked(&self.state).clear_run_log();
    }

    /// Delete a job, re-wiring its dependants as Chronos does ([`Self::orphaned`]).
    fn delete(&self, scheduler: &mut Scheduler, name: &str) -> Result<(), ChronosError> {
        let removed = scheduler
            .remove(name, self.clock.now())
            .ok_or_else(|| ChronosError::Requirement(format!("Job '{name}' not found")))?;
        let children: Vec<String> = scheduler
            .jobs
            .iter()
            .filter(|(_, j)| j.parents.iter().any(|p| p == name))
            .map(|(n, _)| n.clone())
            .collect();
        for child_name in children {
            let Some(child) = scheduler.jobs.get(&child_name).cloned() else { continue };
            let (fields, parents) = self.orphaned(&removed, name, &child);
            let replacement = if parents.is_empty() {
                Job { fields, schedule: removed.schedule.clone(), parents, runs: RunState::default() }
            } else {
                Job { fields, schedule: None, parents, ..child }
            };
            scheduler.insert(child_name, replacement);
        }
        Ok(())
    }

    /// What deleting `removed` (named `name`) makes of one of its dependent children:
    /// its reported fields and parents (none: it became scheduled). The DELETE handler
    /// (`JobManagementResource.delete`, 2.4.0 / 2.5.x / v3.0.2) rewrites every child
    /// before deregistering the parent:
    /// - a **dependent** parent: `childJob.copy(parents = childJob.parents.filter(_ !=
    ///   job.name) ++ j.parents)` — the grandparents appended, a set, nothing else
    ///   touched;
    /// - a **scheduled** parent: *every* dependent child (whatever its other parents)
    ///   becomes `new ScheduleBasedJob(schedule = j.schedule, scheduleTimeZone =
    ///   j.scheduleTimeZone, …)` copying only name, command, epsilon, successCount,
    ///   errorCount, executor, executorFlags, taskInfoData (2.5+), retries, owner,
    ///   lastError, lastSuccess, async, cpus, disk, mem, disabled, softError, uris,
    ///   fetch (2.5+) and highPriority; the rest takes the case class defaults
    ///   (`description` and `ownerName` "", `runAsUser` "", no environment, arguments,
    ///   container or constraints, `errorsSinceLastSuccess` 0, `shell` true).
    fn orphaned(&self, removed: &Job, name: &str, child: &Job) -> (Map<String, Value>, Vec<String>) {
        if !removed.parents.is_empty() {
            let mut parents: Vec<String> = child.parents.iter().filter(|p| *p != name).cloned().collect();
            for grandparent in &removed.parents {
                if !parents.contains(grandparent) {
                    parents.push(grandparent.clone());
                }
            }
            let mut fields = child.fields.clone();
            fields.insert("parents".into(), json!(parents));
            return (fields, parents);
        }
        const COPIED: &[&str] = &[
            "name",
            "command",
            "epsilon",
            "successCount",
            "errorCount",
            "executor",
            "executorFlags",
            "taskInfoData",
            "retries",
            "owner",
            "lastError",
            "lastSuccess",
            "async",
            "cpus",
            "disk",
            "mem",
            "disabled",
            "softError",
            "uris",
            "fetch",
            "highPriority",
        ];
        let mut input: Map<String, Value> =
            COPIED.iter().filter_map(|k| Some(((*k).to_owned(), child.fields.get(*k)?.clone()))).collect();
        input.insert("runAsUser".into(), json!(""));
        let tail = vec![
            ("schedule", removed.fields.get("schedule").cloned().unwrap_or(json!(""))),
            ("scheduleTimeZone", removed.fields.get("scheduleTimeZone").cloned().unwrap_or(json!(""))),
        ];
        (self.fields(&input, tail), Vec::new())
    }

    /// `PUT …/job/{name}`: start a run now (JobManagementResource.trigger).
    fn run_now(&self, scheduler: &mut Scheduler, name: &str) -> Result<(), ChronosError> {
        if !scheduler.jobs.contains_key(name) {
            return Err(ChronosError::Requirement(format!("Job '{name}' not found")));
        }
        scheduler.trigger(name, self.clock.now());
        Ok(())
    }

    /// Every job (hidden ones too), as GET reports them.
    pub(crate) fn snapshot(&self) -> Vec<Value> {
        locked(&self.state).jobs.values().map(|j| Value::Object(j.fields.clone())).collect()
    }

    /// Replace all jobs with a snapshot.
    pub(crate) fn restore(&self, items: &[Value]) -> Result<(), String> {
        let now = self.clock.now();
        let mut fresh = BTreeMap::new();
        for item in items {
            let fields = item.as_object().cloned().ok_or("snapshot job is not an object")?;
            let name =
                fields.get("name").and_then(Value::as_str).ok_or("snapshot job without name")?.to_owned();
            let parents: Vec<String> = fields
                .get("parents")
                .and_then(Value::as_array)
                .map(|p| p.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default();
            let schedule =
                fields.get("schedule").and_then(Value::as_str).and_then(|s| Schedule::parse(s, now));
            fresh.insert(name, Job { fields, schedule, parents, runs: RunState::default() });
        }
        locked(&self.state).replace_all(fresh);
        Ok(())
    }

    fn error_response(&self, error: &ChronosError) -> Response {
        let status = match error {
            ChronosError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        if self.version.is_2x() {
            return match error {
                ChronosError::Requirement(_) => {
                    (status, [(header::CONTENT_TYPE, "text/plain")], error.to_string()).into_response()
                }
                _ => status.into_response(),
            };
        }
        let message = match error {
            ChronosError::Requirement(_) => format!(
                "java.lang.IllegalArgumentException: {error}\n\tat scala.Predef$.require(Predef.scala:224)"
            ),
            other => other.to_string(),
        };
        let reason = status.canonical_reason().unwrap_or_default();
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            json!({"message": message, "status": reason}).to_string(),
        )
            .into_response()
    }
}

type Shared = State<Arc<ChronosState>>;

/// The Chronos routes of the configured version.
pub(crate) fn router(state: Arc<ChronosState>) -> Router {
    let prefix = state.version.prefix();
    let mut create_scheduled = post(create_scheduled);
    let mut create_dependent = post(create_dependent);
    if state.version.is_2x() {
        // 2.4.0, 2.5.0 and 2.5.1 also take PUT on the two create paths
        // (Iso8601JobResource.put, DependentJobResource.put); 3.x only POST.
        create_scheduled = create_scheduled.put(create_scheduled_put);
        create_dependent = create_dependent.put(create_dependent_put);
    }
    let mut job_route = delete(delete_job).put(run_job);
    if state.version == ChronosVersion::V3 {
        job_route = job_route.get(get_job);
    }
    let mut router = Router::new()
        .route(&format!("{prefix}/iso8601"), create_scheduled)
        .route(&format!("{prefix}/dependency"), create_dependent)
        .route(&format!("{prefix}/jobs"), get(list_jobs))
        .route(&format!("{prefix}/jobs/search"), get(search_jobs))
        .route(&format!("{prefix}/job/{{name}}"), job_route)
        .route(&format!("{prefix}/task/kill/{{name}}"), delete(kill_tasks))
        .route(&format!("{prefix}/graph/dot"), get(graph_dot))
        .route(&format!("{prefix}/graph/csv"), get(graph_csv))
        .route(&format!("{prefix}/job/stat/{{name}}"), get(job_stat))
        .route("/metrics", get(metrics));
    if state.version != ChronosVersion::V2_4 {
        router = router.route(&format!("{prefix}/leader"), get(leader));
    }
    if state.version == ChronosVersion::V3 {
        router = router.route(&format!("{prefix}/jobs/summary"), get(jobs_summary));
    }
    router.layer(axum::middleware::from_fn(super::media::require_json)).with_state(state)
}

fn create(state: &ChronosState, body: &Bytes, route: Route) -> Response {
    state.catch_up();
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(err) => return state.error_response(&ChronosError::Requirement(format!("invalid JSON: {err}"))),
    };
    let mut scheduler = locked(&state.state);
    match state.accept(&mut scheduler, &value, route) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => state.error_response(&error),
    }
}

async fn create_scheduled(State(state): Shared, body: Bytes) -> Response {
    create(&state, &body, Route::Scheduled)
}

async fn create_scheduled_put(State(state): Shared, body: Bytes) -> Response {
    create(&state, &body, Route::Scheduled)
}

async fn create_dependent(State(state): Shared, body: Bytes) -> Response {
    create(&state, &body, Route::Dependent)
}

async fn create_dependent_put(State(state): Shared, body: Bytes) -> Response {
    create(&state, &body, Route::Dependent)
}

fn json_ok(value: &Value) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], value.to_string()).into_response()
}

fn visible_jobs(jobs: &BTreeMap<String, Job>) -> impl Iterator<Item = &Job> {
    jobs.values().filter(|job| ChronosState::visible(jobs, job))
}

async fn list_jobs(State(state): Shared) -> Response {
    state.catch_up();
    let scheduler = locked(&state.state);
    let jobs = &scheduler.jobs;
    let mut body = String::with_capacity(jobs.len() * 900 + 2);
    body.push('[');
    for (i, job) in visible_jobs(jobs).enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&Value::Object(job.fields.clone()).to_string());
    }
    body.push(']');
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `jobs/search`: `name`, `command`, `any` (lower-cased substring), `limit` (default
/// 10 — which is why a controller must never list with it), `offset`.
async fn search_jobs(State(state): Shared, RawQuery(raw): RawQuery) -> Response {
    state.catch_up();
    let pairs = query::pairs(raw.as_deref());
    let term = |key: &str| query::last(&pairs, key).map(str::to_lowercase);
    let (name, command, any) = (term("name"), term("command"), term("any"));
    let limit = query::last(&pairs, "limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(10);
    let offset = query::last(&pairs, "offset").and_then(|o| o.parse::<usize>().ok()).unwrap_or(0);
    let scheduler = locked(&state.state);
    let jobs = &scheduler.jobs;
    let field =
        |job: &Job, key: &str| job.fields.get(key).and_then(Value::as_str).unwrap_or_default().to_lowercase();
    let found: Vec<Value> = visible_jobs(jobs)
        .filter(|job| name.as_ref().is_none_or(|n| field(job, "name").contains(n.as_str())))
        .filter(|job| command.as_ref().is_none_or(|c| field(job, "command").contains(c.as_str())))
        .filter(|job| {
            any.as_ref().is_none_or(|a| {
                field(job, "name").contains(a.as_str()) || field(job, "command").contains(a.as_str())
            })
        })
        .skip(offset)
        .take(limit)
        .map(|job| Value::Object(job.fields.clone()))
        .collect();
    json_ok(&Value::Array(found))
}

async fn get_job(State(state): Shared, Path(name): Path<String>) -> Response {
    state.catch_up();
    let scheduler = locked(&state.state);
    let jobs = &scheduler.jobs;
    match jobs.get(&name).filter(|job| ChronosState::visible(jobs, job)) {
        Some(job) => json_ok(&Value::Object(job.fields.clone())),
        None => state.error_response(&ChronosError::Requirement(format!("Job '{name}' not found"))),
    }
}

async fn delete_job(State(state): Shared, Path(name): Path<String>) -> Response {
    state.catch_up();
    let mut scheduler = locked(&state.state);
    match state.delete(&mut scheduler, &name) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => state.error_response(&error),
    }
}

async fn run_job(State(state): Shared, Path(name): Path<String>) -> Response {
    state.catch_up();
    let mut scheduler = locked(&state.state);
    match state.run_now(&mut scheduler, &name) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => state.error_response(&error),
    }
}

async fn kill_tasks(State(state): Shared, Path(name): Path<String>) -> Response {
    state.catch_up();
    let mut scheduler = locked(&state.state);
    if scheduler.jobs.contains_key(&name) {
        scheduler.kill(&name, state.clock.now());
        StatusCode::NO_CONTENT.into_response()
    } else {
        state.error_response(&ChronosError::Requirement(format!("Job '{name}' not found")))
    }
}

fn last_status(job: &Job) -> &'static str {
    let success = job.fields.get("lastSuccess").and_then(Value::as_str).unwrap_or_default();
    let error = job.fields.get("lastError").and_then(Value::as_str).unwrap_or_default();
    match (success.is_empty(), error.is_empty()) {
        (true, true) => "fresh",
        (false, true) => "success",
        (true, false) => "failure",
        (false, false) if success >= error => "success",
        _ => "failure",
    }
}

async fn graph_dot(State(state): Shared) -> Response {
    state.catch_up();
    let scheduler = locked(&state.state);
    let jobs = &scheduler.jobs;
    let mut dot = String::from("digraph G {\n  node [style=filled];\n");
    for (name, job) in jobs.iter() {
        let color = match last_status(job) {
            "success" => "green",
            "failure" => "red",
            _ => "white",
        };
        dot.push_str(&format!("  \"{name}\" [fillcolor=\"{color}\"];\n"));
    }
    for (name, job) in jobs.iter() {
        for parent in &job.parents {
            dot.push_str(&format!("  \"{parent}\" -> \"{name}\";\n"));
        }
    }
    dot.push_str("}\n");
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], dot).into_response()
}

async fn graph_csv(State(state): Shared) -> Response {
    state.catch_up();
    let scheduler = locked(&state.state);
    let jobs = &scheduler.jobs;
    let mut csv = String::new();
    for (name, job) in jobs.iter() {
        csv.push_str(&format!(
            "node,{name},{},{}\n",
            last_status(job),
            runs::run_state(&scheduler, name, !state.version.is_2x())
        ));
    }
    for (name, job) in jobs.iter() {
        for parent in &job.parents {
            csv.push_str(&format!("link,{parent},{name}\n"));
        }
    }
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], csv).into_response()
}

async fn leader(State(state): Shared) -> Response {
    json_ok(&json!({"leader": state.addr.to_string()}))
}

/// `GET …/job/stat/{name}` (JobManagementResource.getStat, JobStatWrapperSerializer):
/// the run-time histogram and the task history. The emulator runs no Mesos tasks, so
/// both are empty.
async fn job_stat(State(state): Shared, Path(name): Path<String>) -> Response {
    state.catch_up();
    let scheduler = locked(&state.state);
    let jobs = &scheduler.jobs;
    if !jobs.contains_key(&name) {
        return state.error_response(&ChronosError::Requirement(format!("Job '{name}' not found")));
    }
    json_ok(&json!({
        "histogram": {
            "75thPercentile": 0.0, "95thPercentile": 0.0, "98thPercentile": 0.0,
            "99thPercentile": 0.0, "median": 0.0, "mean": 0.0, "count": 0,
        },
        "taskStatHistory": [],
    }))
}

/// `GET /v1/scheduler/jobs/summary` (3.x JobManagementResource.getSummary, read by
/// Chronos's own UI). The resource passes `state` and `status` to `JobSummary` in
/// swapped order, so `status` holds the last outcome (`fresh`/`success`/`failure`) and
/// `state` the run state (`running` while a run is in flight, else `idle`).
async fn jobs_summary(State(state): Shared) -> Response {
    state.catch_up();
    let scheduler = locked(&state.state);
    let jobs = &scheduler.jobs;
    let summaries: Vec<Value> = visible_jobs(jobs)
        .map(|job| {
            let schedule = job.fields.get("schedule").cloned().unwrap_or(json!(""));
            json!({
                "name": job.fields.get("name").cloned().unwrap_or(json!("")),
                "status": last_status(job),
                "state": runs::run_state(&scheduler, job.fields.get("name").and_then(Value::as_str).unwrap_or_default(), !state.version.is_2x()),
                "schedule": if job.parents.is_empty() { schedule } else { json!("") },
                "parents": job.parents,
                "disabled": job.fields.get("disabled").cloned().unwrap_or(json!(false)),
            })
        })
        .collect();
    json_ok(&json!({ "jobs": summaries }))
}

/// `GET /metrics` (Dropwizard's `MetricsServlet`, ChronosRestModule): the registry as
/// JSON. The emulator keeps no JVM metrics; the sections are there, empty.
async fn metrics() -> Response {
    json_ok(&json!({
        "version": "3.0.0", "gauges": {}, "counters": {}, "histograms": {}, "meters": {}, "timers": {},
    }))
}
