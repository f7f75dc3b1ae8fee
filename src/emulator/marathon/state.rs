//! Marathon's state: apps as canonical JSON with their versions and tasks, running
//! deployments, service ports, and the event bus. Every write goes through
//! [`MarathonState::deploy`], which takes the deployment locks (409), mints the
//! version and deployment id, and starts the deployment that moves tasks from staged to
//! running to healthy over the configured duration.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use super::app::{self, AppRejection, Arrival};
use super::outcome::{AppOutcome, TaskOutcome};
use super::ports::ServicePorts;
use crate::emulator::Clock;
use crate::emulator::clock::iso_millis;
use crate::emulator::controls::DeploymentOutcome;

/// The shortest wait between two checks of a deployment that waits for failing or
/// unhealthy tasks, so a zero deployment duration cannot spin.
const MIN_RECHECK: Duration = Duration::from_millis(10);

/// Marathon's default `gracePeriodSeconds` of a health check.
const DEFAULT_GRACE_SECONDS: i64 = 300;

/// How a deployment's half-way point went.
enum Halfway {
    /// The deployment is gone (finished, cancelled) or must never finish.
    Gone,
    /// New tasks failed and were relaunched: check again later.
    Relaunched,
    /// The new tasks run.
    Running,
}

/// The agent every emulated task runs on.
const AGENT_ID: &str = "emulator-agent-0";

/// One SSE frame's content.
#[derive(Debug)]
pub struct Event {
    /// `eventType`, also the SSE `event:` line.
    pub event_type: &'static str,
    /// The one-line JSON of the `data:` line.
    pub data: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TaskState {
    Staging,
    Running,
}

impl TaskState {
    fn mesos_name(self) -> &'static str {
        match self {
            TaskState::Staging => "TASK_STAGING",
            TaskState::Running => "TASK_RUNNING",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Task {
    id: String,
    state: TaskState,
    healthy: bool,
    version: String,
    /// `lastConfigChangeAt` of the definition it runs: a restart replaces tasks whose
    /// config is older, a scale keeps them.
    config: String,
    staged_at: String,
    started_at: Option<String>,
    host_ports: Vec<i64>,
}

/// An app as the server holds it.
#[derive(Clone, Debug)]
pub(crate) struct StoredApp {
    /// Canonical definition (no status fields), service ports assigned.
    pub definition: Map<String, Value>,
    pub version: String,
    pub last_scaling_at: String,
    pub last_config_change_at: String,
    /// Every version with its definition, newest first (`/versions`, rollback).
    pub versions: Vec<(String, Map<String, Value>)>,
    tasks: Vec<Task>,
    last_task_failure: Option<Value>,
    /// The listing renderings of the cacheable embeds ([`Embed::cache_slot`]), dropped
    /// whenever anything about the app changes.
    rendered: [Option<Arc<str>>; 2],
}

impl Task {
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// The instance a task belongs to: its id without the `._app.<incarnation>` tail.
    pub(crate) fn instance_id(&self) -> &str {
        self.id.rsplit_once("._app.").map_or(self.id.as_str(), |(instance, _)| instance)
    }
}

impl StoredApp {
    fn touch(&mut self) {
        self.rendered = [None, None];
    }

    /// The definition with `version` (and `versionInfo` when `with_info`) before
    /// `killSelection`, where Marathon writes them.
    pub(crate) fn definition_with_version(&self, with_info: bool) -> Map<String, Value> {
        let mut out = Map::new();
        for (key, value) in &self.definition {
            if key == "killSelection" {
                out.insert("version".into(), json!(self.version));
                if with_info {
                    out.insert(
                        "versionInfo".into(),
                        json!({"lastScalingAt": self.last_scaling_at, "lastConfigChangeAt": self.last_config_change_at}),
                    );
                }
            }
            out.insert(key.clone(), value.clone());
        }
        out
    }

    fn has_health_checks(&self) -> bool {
        self.definition.get("healthChecks").and_then(Value::as_array).is_some_and(|c| !c.is_empty())
    }

    /// Whether any check is run by Marathon itself (HTTP, HTTPS, TCP).
    fn has_marathon_health_checks(&self) -> bool {
        self.definition
            .get("healthChecks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|c| matches!(c.get("protocol").and_then(Value::as_str), Some("HTTP" | "HTTPS" | "TCP")))
    }
}

/// What a write asks for, per app.
#[derive(Clone, Debug)]
pub(crate) enum Change {
    /// Create or update to this canonical definition (ports not yet assigned).
    Upsert { id: String, definition: Map<String, Value> },
    /// Delete the app.
    Remove { id: String },
    /// Restart all tasks without a definition change.
    Restart { id: String },
    /// Put back an app as it was (revert of a deployment).
    Restore { app: Box<StoredApp> },
    /// Kill these tasks and lower `instances` by their number (`?scale=true`).
    KillAndScale { id: String, task_ids: Vec<String> },
    /// Set a group's dependencies (`/v2/groups`); no deployment step of its own.
    Group { id: String, dependencies: Vec<String> },
}

impl Change {
    fn app_id(&self) -> &str {
        match self {
            Change::Upsert { id, .. }
            | Change::Remove { id }
            | Change::Restart { id }
            | Change::KillAndScale { id, .. }
            | Change::Group { id, .. } => id,
            Change::Restore { app } => app.definition.get("id").and_then(Value::as_str).unwrap_or_default(),
        }
    }
}

/// One deployment step: the actions run together.
type Step = Vec<(&'static str, String)>;

fn step_json(step: &Step) -> Value {
    json!({"actions": step.iter().map(|(action, app)| json!({"action": action, "app": app})).collect::<Vec<_>>()})
}

#[derive(Clone, Debug)]
struct Deployment {
    id: String,
    version: String,
    affected: Vec<String>,
    steps: Vec<Step>,
    current_step: usize,
    original: Vec<(String, Option<StoredApp>)>,
    outcome: Option<DeploymentOutcome>,
}

impl Deployment {
    fn steps_json(&self) -> Value {
        Value::Array(self.steps.iter().map(step_json).collect())
    }

    fn plan_json(&self) -> Value {
        json!({"id": self.id, "steps": self.steps_json(), "version": self.version})
    }

    fn listing_json(&self) -> Value {
        let current = self.steps.get(self.current_step.saturating_sub(1)).cloned().unwrap_or_default();
        json!({
            "id": self.id,
            "version": self.version,
            "affectedApps": self.affected,
            "affectedPods": [],
            "steps": self.steps_json(),
            "currentActions": current.iter().map(|(a, app)| json!({"action": a, "app": app, "readinessCheckResults": []})).collect::<Vec<_>>(),
            "currentStep": self.current_step,
            "totalSteps": self.steps.len(),
        })
    }
}

/// Why a write was refused.
#[derive(Debug)]
pub(crate) enum DeployError {
    /// Locked by these running deployments (409).
    Locked(Vec<String>),
    /// A definition could not be accepted (422).
    Rejected(AppRejection),
}

#[derive(Debug, Default)]
pub(crate) struct Store {
    pub apps: BTreeMap<String, StoredApp>,
    /// Groups created or changed through `/v2/groups`: their dependencies and
    /// version. Other groups exist only as the parents of apps.
    pub groups: BTreeMap<String, StoredGroup>,
    deployments: Vec<Deployment>,
    ports: ServicePorts,
    last_version: Option<DateTime<Utc>>,
}

impl Store {
    fn deployments_of(&self, app_id: &str) -> Vec<&str> {
        self.deployments
            .iter()
            .filter(|d| d.affected.iter().any(|a| a == app_id))
            .map(|d| d.id.as_str())
            .collect()
    }
}

/// The running deployments that hold any app these changes touch.
fn locks_of(store: &Store, changes: &[Change]) -> Vec<String> {
    let mut locking: Vec<String> = Vec::new();
    for change in changes {
        for id in store.deployments_of(change.app_id()) {
            if !locking.iter().any(|l| l == id) {
                locking.push(id.to_owned());
            }
        }
    }
    locking
}

/// The group a write changed (`GroupManager.updateApp` updates the app's parent; a
/// batch updates the root).
fn changed_group(changes: &[Change]) -> String {
    // GroupsResource updates the root at the changed group's parent.
    if let Some(Change::Group { id, .. }) = changes.iter().find(|c| matches!(c, Change::Group { .. })) {
        return app::parent_group(id);
    }
    match changes {
        [one] => app::parent_group(one.app_id()),
        _ => "/".to_owned(),
    }
}

/// What applying a write's changes did: each touched app's deployment action and
/// the app as it was before.
#[derive(Default)]
struct Applied {
    actions: Vec<(&'static str, String)>,
    original: Vec<(String, Option<StoredApp>)>,
}

impl Applied {
    /// Started apps first (with everything else) in step one; their scale-up in step
    /// two.
    fn steps(&self) -> Vec<Step> {
        let starts: Vec<&String> =
            self.actions.iter().filter(|(a, _)| *a == "StartApplication").map(|(_, id)| id).collect();
        let mut steps: Vec<Step> = Vec::new();
        let first: Step = starts
            .iter()
            .map(|id| ("StartApplication", (*id).clone()))
            .chain(self.actions.iter().filter(|(a, _)| *a != "StartApplication").cloned())
            .collect();
        if !first.is_empty() {
            steps.push(first);
        }
        if !starts.is_empty() {
            steps.push(starts.iter().map(|id| ("ScaleApplication", (*id).clone())).collect());
        }
        steps
    }
}

/// Where an `api_post_event` comes from: the client, the request URI and the app
/// written.
#[derive(Clone, Debug)]
pub(crate) struct ApiPost {
    pub client_ip: String,
    pub uri: String,
    pub app_id: String,
}

impl ApiPost {
    fn payload(&self, app_definition: Map<String, Value>) -> Value {
        json!({"clientIp": self.client_ip, "uri": self.uri, "appDefinition": app_definition})
    }
}

/// A group changed through `/v2/groups`.
#[derive(Clone, Debug, Default)]
pub(crate) struct StoredGroup {
    pub dependencies: Vec<String>,
    pub version: String,
}

/// Which optional parts a rendering includes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Embed {
    pub tasks: bool,
    pub last_task_failure: bool,
    pub readiness: bool,
    pub task_stats: bool,
}

impl Embed {
    /// Where a listing rendering with this embed is cached: the default one (what
    /// most clients list) and `lastTaskFailure` alone (what mesosync lists every
    /// reconcile). Embeds with tasks or statistics are rendered each time.
    fn cache_slot(self) -> Option<usize> {
        let failure_only = Embed { last_task_failure: true, ..Embed::default() };
        if self == Embed::default() {
            Some(0)
        } else if self == failure_only {
            Some(1)
        } else {
            None
        }
    }
}

/// The Marathon server's state.
pub struct MarathonState {
    store: Mutex<Store>,
    events: broadcast::Sender<Arc<Event>>,
    pub(crate) clock: Arc<Clock>,
    pub(crate) addr: SocketAddr,
    deployment_duration: Mutex<Duration>,
    me: Weak<MarathonState>,
    /// While a write applies its changes, task events wait here so that they follow
    /// the `deployment_info` of their deployment, as on a real Marathon.
    held_events: Mutex<Option<Vec<Arc<Event>>>>,
    /// Flips to true when the sandbox stops; event streams end then.
    pub(crate) shutdown: tokio::sync::watch::Receiver<bool>,
    /// Serve `/v2/events` like Marathon before 1.3.7, which ignores `event_type`.
    pub(crate) unfiltered_events: std::sync::atomic::AtomicBool,
    /// What the test controls scripted per app id (kept by id: set before the app exists).
    outcomes: Mutex<BTreeMap<String, AppOutcome>>,
}

/// The most tasks the emulator launches for one app. Marathon accepts up to 2^31-1
/// instances; a cluster without room for them leaves the rest in the launch queue, and
/// so does the emulator, which keeps its memory bounded that way (`/v2/queue` reports
/// them).
pub(crate) const MAX_TASKS_PER_APP: usize = 1000;

/// `instances` of a definition (as an index, never negative).
pub(crate) fn instances_of(definition: &Map<String, Value>) -> usize {
    definition.get("instances").and_then(Value::as_u64).and_then(|n| usize::try_from(n).ok()).unwrap_or(0)
}

/// How many tasks of this definition the emulator runs.
fn launched_instances(definition: &Map<String, Value>) -> usize {
    instances_of(definition).min(MAX_TASKS_PER_APP)
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MarathonState {
    pub(crate) fn new(
        clock: Arc<Clock>,
        shutdown: tokio::sync::watch::Receiver<bool>,
        addr: SocketAddr,
        deployment_duration: Duration,
    ) -> Arc<MarathonState> {
        let (events, _) = broadcast::channel(4096);
        Arc::new_cyclic(|me| MarathonState {
            store: Mutex::new(Store::default()),
            events,
            clock,
            addr,
            deployment_duration: Mutex::new(deployment_duration),
            me: me.clone(),
            held_events: Mutex::new(None),
            shutdown,
            unfiltered_events: std::sync::atomic::AtomicBool::new(false),
            outcomes: Mutex::new(BTreeMap::new()),
        })
    }

    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        locked(&self.store)
    }

    /// Script how an app's new tasks behave (`None`: healthy, server-wide timing).
    pub(crate) fn set_app_outcome(&self, app_id: &str, outcome: Option<AppOutcome>) {
        match outcome {
            Some(outcome) => locked(&self.outcomes).insert(app_id.to_owned(), outcome),
            None => locked(&self.outcomes).remove(app_id),
        };
        if let Some(app) = self.store().apps.get_mut(app_id) {
            app.touch();
        }
    }

    /// The scripted outcomes by app id.
    pub(crate) fn app_outcomes(&self) -> BTreeMap<String, AppOutcome> {
        locked(&self.outcomes).clone()
    }

    fn outcome_of(&self, app_id: &str) -> AppOutcome {
        locked(&self.outcomes).get(app_id).cloned().unwrap_or_default()
    }

    /// Whether an app's tasks wait for health checks they will not pass.
    fn stays_unhealthy(&self, app: &StoredApp, app_id: &str) -> bool {
        app.has_health_checks() && self.outcome_of(app_id).tasks == TaskOutcome::Unhealthy
    }

    pub(crate) fn set_deployment_duration(&self, duration: Duration) {
        *locked(&self.deployment_duration) = duration;
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    /// Publish an event (adds `eventType` and `timestamp`).
    pub(crate) fn emit(&self, event_type: &'static str, data: Value) {
        let mut data = match data {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        data.insert("eventType".into(), json!(event_type));
        data.insert("timestamp".into(), json!(iso_millis(self.clock.now())));
        let event = Arc::new(Event { event_type, data: Value::Object(data).to_string() });
        if let Some(held) = locked(&self.held_events).as_mut() {
            held.push(event);
            return;
        }
        let _ = self.events.send(event);
    }

    /// The newest version minted so far (the root group's version).
    pub(crate) fn last_version(&self, store: &Store) -> Option<String> {
        store.last_version.map(iso_millis)
    }

    /// A new, strictly increasing version timestamp.
    fn mint_version(&self, store: &mut Store) -> String {
        let mut now = self.clock.now();
        if let Some(last) = store.last_version {
            if now <= last {
                now = last + chrono::Duration::milliseconds(1);
            }
        }
        store.last_version = Some(now);
        iso_millis(now)
    }

    /// Apply a write: check locks (or cancel them with `force`), update apps, start one
    /// deployment, then publish `group_change_success` and the `api_post_event`s of the
    /// request (each carrying the app as stored, with `version`). Returns
    /// `(deploymentId, version)`; a refused write publishes nothing.
    pub(crate) fn deploy(
        &self,
        store: &mut Store,
        changes: Vec<Change>,
        force: bool,
        outcome: impl Fn(&[&str]) -> Option<DeploymentOutcome>,
        api_posts: Vec<ApiPost>,
    ) -> Result<(String, String), DeployError> {
        let locking = locks_of(store, &changes);
        if !locking.is_empty() {
            if !force {
                return Err(DeployError::Locked(locking));
            }
            for id in &locking {
                self.cancel(store, id, "The deployment was canceled by a forced update");
            }
        }
        let version = self.mint_version(store);
        let group = changed_group(&changes);
        let existed: Vec<bool> = api_posts.iter().map(|p| store.apps.contains_key(&p.app_id)).collect();
        *locked(&self.held_events) = Some(Vec::new());
        let applied = self.apply_all(store, changes, &version);
        let held = locked(&self.held_events).take().unwrap_or_default();
        let applied = applied?;
        let steps = applied.steps();
        let affected: Vec<String> = applied.original.iter().map(|(id, _)| id.clone()).collect();
        let affected_refs: Vec<&str> = affected.iter().map(String::as_str).collect();
        let deployment = Deployment {
            id: uuid::Uuid::new_v4().to_string(),
            version: version.clone(),
            outcome: outcome(&affected_refs),
            affected,
            current_step: usize::from(!steps.is_empty()),
            steps,
            original: applied.original,
        };
        let deployment_id = deployment.id.clone();
        self.publish_start(&deployment, held);
        self.emit("group_change_success", json!({"groupId": group, "version": version}));
        for (post, existed) in api_posts.iter().zip(existed) {
            if let Some(app) = store.apps.get(&post.app_id) {
                self.emit("api_post_event", post.payload(app.definition_with_version(existed)));
            }
        }
        if deployment.steps.is_empty() {
            // A no-op write still makes a deployment; it has nothing to do.
            self.emit("deployment_success", json!({"id": deployment.id, "plan": deployment.plan_json()}));
            return Ok((deployment_id, version));
        }
        for id in &deployment.affected {
            if let Some(app) = store.apps.get_mut(id) {
                app.touch();
            }
        }
        let duration = self.duration_of(&deployment.affected);
        store.deployments.push(deployment);
        self.schedule(deployment_id.clone(), duration);
        Ok((deployment_id, version))
    }

    /// Apply every change in order; the first refusal undoes nothing but stops.
    fn apply_all(
        &self,
        store: &mut Store,
        changes: Vec<Change>,
        version: &str,
    ) -> Result<Applied, DeployError> {
        let mut applied = Applied::default();
        for change in changes {
            let id = change.app_id().to_owned();
            let before = store.apps.get(&id).cloned();
            let action = self.apply_change(store, change, version).map_err(DeployError::Rejected)?;
            if let Some(action) = action {
                applied.original.push((id.clone(), before));
                applied.actions.push((action, id));
            }
        }
        Ok(applied)
    }

    /// `deployment_info`, then the task events the changes caused (held until now).
    fn publish_start(&self, deployment: &Deployment, held: Vec<Arc<Event>>) {
        self.emit(
            "deployment_info",
            json!({"plan": deployment.plan_json(), "currentStep": deployment.steps.first().map(step_json)}),
        );
        for event in held {
            let _ = self.events.send(event);
        }
    }

    /// How long a deployment takes: the longest scripted `deploymentMs` of the apps it
    /// touches, else the server-wide duration.
    fn duration_of(&self, affected: &[String]) -> Duration {
        let outcomes = locked(&self.outcomes);
        affected
            .iter()
            .filter_map(|id| outcomes.get(id).and_then(|o| o.deployment_ms))
            .max()
            .map_or_else(|| *locked(&self.deployment_duration), Duration::from_millis)
    }

    /// Run a deployment's clock: tasks run half-way (failing tasks are relaunched and
    /// checked again), the deployment ends at the end once the new tasks are healthy.
    fn schedule(&self, deployment_id: String, duration: Duration) {
        let recheck = (duration / 2).max(MIN_RECHECK);
        let me = self.me.clone();
        tokio::spawn(async move {
            let mut wait = duration / 2;
            loop {
                tokio::time::sleep(wait).await;
                let Some(state) = me.upgrade() else { return };
                match state.tasks_running(&deployment_id) {
                    Halfway::Gone => return,
                    Halfway::Running => break,
                    Halfway::Relaunched => wait = recheck,
                }
            }
            let mut wait = duration / 2;
            loop {
                tokio::time::sleep(wait).await;
                let Some(state) = me.upgrade() else { return };
                if state.finish(&deployment_id) {
                    return;
                }
                wait = recheck;
            }
        });
    }

    /// Update the store for one change; returns the deployment action, if any.
    fn apply_change(
        &self,
        store: &mut Store,
        change: Change,
        version: &str,
    ) -> Result<Option<&'static str>, AppRejection> {
        match change {
            Change::Upsert { id, mut definition } => {
                let previous_ports =
                    store.apps.get(&id).map(|a| app::service_ports(&a.definition)).unwrap_or_default();
                store.ports.release(&previous_ports);
                if let Err(message) = store.ports.assign(&mut definition, &previous_ports) {
                    store.ports.claim(&previous_ports);
                    return Err(AppRejection::NotValid(vec![app::ErrorDetail {
                        path: "/portDefinitions".into(),
                        errors: vec![message],
                    }]));
                }
                match store.apps.get_mut(&id) {
                    None => {
                        let mut stored = StoredApp {
                            versions: vec![(version.to_owned(), definition.clone())],
                            definition,
                            version: version.to_owned(),
                            last_scaling_at: version.to_owned(),
                            last_config_change_at: version.to_owned(),
                            tasks: Vec::new(),
                            last_task_failure: None,
                            rendered: [None, None],
                        };
                        self.launch(&mut stored, &id);
                        store.apps.insert(id, stored);
                        Ok(Some("StartApplication"))
                    }
                    Some(existing) if existing.definition == definition => Ok(None),
                    Some(existing) => {
                        let scale_only = app::only_instances_differ(&existing.definition, &definition);
                        existing.versions.insert(0, (version.to_owned(), definition.clone()));
                        existing.definition = definition;
                        existing.version = version.to_owned();
                        existing.last_scaling_at = version.to_owned();
                        existing.touch();
                        if scale_only {
                            self.scale(existing, &id);
                            Ok(Some("ScaleApplication"))
                        } else {
                            existing.last_config_change_at = version.to_owned();
                            self.launch(existing, &id);
                            Ok(Some("RestartApplication"))
                        }
                    }
                }
            }
            Change::Restart { id } => {
                let Some(existing) = store.apps.get_mut(&id) else { return Ok(None) };
                existing.version = version.to_owned();
                existing.last_scaling_at = version.to_owned();
                existing.last_config_change_at = version.to_owned();
                existing.versions.insert(0, (version.to_owned(), existing.definition.clone()));
                existing.touch();
                self.launch(existing, &id);
                Ok(Some("RestartApplication"))
            }
            Change::Remove { id } => {
                let Some(removed) = store.apps.remove(&id) else { return Ok(None) };
                store.ports.release(&app::service_ports(&removed.definition));
                for task in &removed.tasks {
                    self.task_event(&id, task, "TASK_KILLED");
                }
                self.emit("app_terminated_event", json!({"appId": id}));
                Ok(Some("StopApplication"))
            }
            Change::Group { id, dependencies } => {
                store.groups.insert(id, StoredGroup { dependencies, version: version.to_owned() });
                Ok(None)
            }
            Change::KillAndScale { id, task_ids } => {
                let Some(existing) = store.apps.get_mut(&id) else { return Ok(None) };
                let (killed, kept): (Vec<Task>, Vec<Task>) =
                    std::mem::take(&mut existing.tasks).into_iter().partition(|t| task_ids.contains(&t.id));
                existing.tasks = kept;
                for task in &killed {
                    self.task_event(&id, task, "TASK_KILLED");
                }
                let instances = instances_of(&existing.definition).saturating_sub(killed.len());
                existing.definition.insert("instances".into(), json!(instances));
                existing.versions.insert(0, (version.to_owned(), existing.definition.clone()));
                existing.version = version.to_owned();
                existing.last_scaling_at = version.to_owned();
                existing.touch();
                self.scale(existing, &id);
                Ok(Some("ScaleApplication"))
            }
            Change::Restore { app: restored } => {
                let mut restored = *restored;
                let id = restored.definition.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
                let existed = match store.apps.get(&id) {
                    Some(current) => {
                        let ports = app::service_ports(&current.definition);
                        store.ports.release(&ports);
                        true
                    }
                    None => false,
                };
                store.ports.claim(&app::service_ports(&restored.definition));
                restored.tasks = store.apps.get(&id).map(|a| a.tasks.clone()).unwrap_or_default();
                restored.touch();
                let same_config =
                    existed && restored.tasks.iter().all(|t| t.config == restored.last_config_change_at);
                let action = if same_config {
                    self.scale(&mut restored, &id);
                    "ScaleApplication"
                } else {
                    self.launch(&mut restored, &id);
                    if existed { "RestartApplication" } else { "StartApplication" }
                };
                store.apps.insert(id, restored);
                Ok(Some(action))
            }
        }
    }

    fn new_task(&self, app_id: &str, app: &StoredApp) -> Task {
        let ports = app::service_ports(&app.definition).len();
        let name = app_id.trim_start_matches('/').replace('/', "_");
        Task {
            id: format!("{name}.instance-{}._app.1", uuid::Uuid::new_v4()),
            state: TaskState::Staging,
            healthy: false,
            version: app.version.clone(),
            config: app.last_config_change_at.clone(),
            staged_at: iso_millis(self.clock.now()),
            started_at: None,
            host_ports: (0..ports).map(|_| rand::random_range(31000..32000)).collect(),
        }
    }

    /// Stage `instances` tasks of the current version (old ones keep running until
    /// the new ones run).
    fn launch(&self, app: &mut StoredApp, id: &str) {
        self.add_health_check_events(app, id);
        for _ in 0..launched_instances(&app.definition) {
            let task = self.new_task(id, app);
            self.task_event(id, &task, "TASK_STAGING");
            app.tasks.push(task);
        }
    }

    fn scale(&self, app: &mut StoredApp, id: &str) {
        let wanted = launched_instances(&app.definition);
        while app.tasks.len() < wanted {
            let task = self.new_task(id, app);
            self.task_event(id, &task, "TASK_STAGING");
            app.tasks.push(task);
        }
        while app.tasks.len() > wanted {
            // killSelection YOUNGEST_FIRST: the last launched goes first.
            if let Some(task) = app.tasks.pop() {
                self.task_event(id, &task, "TASK_KILLED");
            }
        }
    }

    /// A task changed state: Mesos's `status_update_event` and Marathon's own
    /// `instance_changed_event` (Events.scala `MesosStatusUpdateEvent`,
    /// `InstanceChanged`; Formats.scala `InstanceChangedEventWrites`).
    fn task_event(&self, app_id: &str, task: &Task, status: &str) {
        self.emit(
            "status_update_event",
            json!({
                "slaveId": AGENT_ID,
                "taskId": task.id,
                "taskStatus": status,
                "message": "",
                "appId": app_id,
                "host": "127.0.0.1",
                "ipAddresses": [{"ipAddress": "127.0.0.1", "protocol": "IPv4"}],
                "ports": task.host_ports,
                "version": task.version,
            }),
        );
        let condition = match status {
            "TASK_STAGING" => "Staging",
            "TASK_RUNNING" => "Running",
            "TASK_FAILED" => "Failed",
            _ => "Killed",
        };
        self.emit(
            "instance_changed_event",
            json!({
                "instanceId": task.instance_id(),
                "condition": condition,
                "runSpecId": app_id,
                "agentId": AGENT_ID,
                "host": "127.0.0.1",
                "runSpecVersion": task.version,
                "timestamp": null,
                "eventType": null,
            }),
        );
    }

    /// A task passed its health checks: `health_status_changed_event` for the
    /// Marathon-side checks (HealthCheckActor) and `instance_health_changed_event`
    /// (AppHealthCheckActor).
    fn health_events(&self, app: &StoredApp, app_id: &str, task: &Task) {
        if app.has_marathon_health_checks() {
            self.emit(
                "health_status_changed_event",
                json!({"appId": app_id, "instanceId": task.instance_id(), "version": task.version, "alive": true}),
            );
        }
        self.emit(
            "instance_health_changed_event",
            json!({
                "instanceId": task.instance_id(),
                "runSpecId": app_id,
                "healthy": true,
                "runSpecVersion": task.version,
                "timestamp": null,
                "eventType": null,
            }),
        );
    }

    /// A new app version's health checks start (`MarathonHealthCheckManager.add`):
    /// one `add_health_check_event` per check.
    fn add_health_check_events(&self, app: &StoredApp, app_id: &str) {
        for check in app.definition.get("healthChecks").and_then(Value::as_array).into_iter().flatten() {
            self.emit(
                "add_health_check_event",
                json!({"appId": app_id, "eventType": null, "healthCheck": check, "timestamp": null, "version": app.version}),
            );
        }
    }

    /// Kill the tasks of one app that `select` picks; Marathon launches replacements
    /// (no deployment), which run after half the deployment duration. Returns the
    /// killed tasks as JSON, `None` for an unknown app.
    pub(crate) fn kill_tasks(
        &self,
        store: &mut Store,
        app_id: &str,
        select: impl Fn(&Task) -> bool,
    ) -> Option<Vec<Value>> {
        let app = store.apps.get_mut(app_id)?;
        let (killed, kept): (Vec<Task>, Vec<Task>) =
            std::mem::take(&mut app.tasks).into_iter().partition(|t| select(t));
        app.tasks = kept;
        let rendered = killed.iter().map(|t| self.task_json(app, app_id, t)).collect();
        for task in &killed {
            self.task_event(app_id, task, "TASK_KILLED");
        }
        self.scale(app, app_id);
        app.touch();
        let duration = *locked(&self.deployment_duration);
        let me = self.me.clone();
        let id = app_id.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(duration / 2).await;
            if let Some(state) = me.upgrade() {
                state.run_replacements(&id);
            }
        });
        Some(rendered)
    }

    /// Replacement tasks of an app outside any deployment start running (and pass
    /// their health checks).
    fn run_replacements(&self, app_id: &str) {
        let mut store = self.store();
        if !store.deployments_of(app_id).is_empty() {
            return;
        }
        let now = iso_millis(self.clock.now());
        let Some(app) = store.apps.get_mut(app_id) else { return };
        let healthy = app.has_health_checks();
        let mut started = Vec::new();
        for task in app.tasks.iter_mut().filter(|t| t.state == TaskState::Staging) {
            task.state = TaskState::Running;
            task.started_at = Some(now.clone());
            task.healthy = healthy;
            started.push(task.clone());
        }
        for task in &started {
            self.task_event(app_id, task, "TASK_RUNNING");
            if healthy {
                self.health_events(app, app_id, task);
            }
        }
        app.touch();
    }

    /// Every task of every app, as `GET /v2/tasks` lists them (`states` empty: all).
    pub(crate) fn all_tasks_json(&self, states: &[&str]) -> Vec<Value> {
        let store = self.store();
        let mut out = Vec::new();
        for (id, app) in &store.apps {
            for task in &app.tasks {
                if states.is_empty() || states.contains(&task.state.mesos_name()) {
                    out.push(self.task_json(app, id, task));
                }
            }
        }
        out
    }

    /// The ids of an app's tasks that `select` picks.
    pub(crate) fn task_ids(store: &Store, app_id: &str, select: impl Fn(&Task) -> bool) -> Vec<String> {
        store
            .apps
            .get(app_id)
            .map(|a| a.tasks.iter().filter(|t| select(t)).map(|t| t.id.clone()).collect())
            .unwrap_or_default()
    }

    /// `GET /v2/queue`: apps with instances the emulator did not launch (beyond
    /// [`MAX_TASKS_PER_APP`]), as `QueueApp`s.
    pub(crate) fn queue_json(&self) -> Value {
        let store = self.store();
        let since = iso_millis(self.clock.now());
        let queue: Vec<Value> = store
            .apps
            .values()
            .filter_map(|app| {
                let waiting = instances_of(&app.definition).saturating_sub(app.tasks.len());
                (waiting > 0).then(|| {
                    json!({
                        "count": waiting,
                        "role": app.definition.get("role").cloned().unwrap_or(json!("*")),
                        "delay": {"timeLeftSeconds": 0, "overdue": true},
                        "since": since,
                        "processedOffersSummary": {"processedOffersCount": 0, "unusedOffersCount": 0},
                        "app": app.definition_with_version(true),
                    })
                })
            })
            .collect();
        json!({ "queue": queue })
    }

    /// Half-way: staged tasks run, tasks of older versions are killed (kept while the
    /// new ones fail or wait for health, as a rolling upgrade keeps its capacity).
    /// Tasks scripted to fail fail and are relaunched.
    fn tasks_running(&self, deployment_id: &str) -> Halfway {
        let mut store = self.store();
        let Some(deployment) = store.deployments.iter_mut().find(|d| d.id == deployment_id) else {
            return Halfway::Gone;
        };
        if deployment.outcome == Some(DeploymentOutcome::NeverFinish) {
            return Halfway::Gone;
        }
        let done_steps: Vec<Step> = if deployment.current_step < deployment.steps.len() {
            deployment.steps[..deployment.steps.len().saturating_sub(1)].to_vec()
        } else {
            Vec::new()
        };
        deployment.current_step = deployment.steps.len();
        let plan = deployment.plan_json();
        let affected = deployment.affected.clone();
        let fails = deployment.outcome == Some(DeploymentOutcome::Fail);
        for step in done_steps {
            self.emit("deployment_step_success", json!({"plan": plan, "currentStep": step_json(&step)}));
        }
        if fails {
            return Halfway::Running;
        }
        let now = iso_millis(self.clock.now());
        let mut relaunched = false;
        for id in affected {
            let Some(app) = store.apps.get_mut(&id) else { continue };
            let failing = self.outcome_of(&id).tasks == TaskOutcome::Fail;
            let keep_old = failing || self.stays_unhealthy(app, &id);
            let config = app.last_config_change_at.clone();
            let mut kept = Vec::new();
            for mut task in std::mem::take(&mut app.tasks) {
                if task.config != config {
                    // Tasks of the old definition go once the new ones run.
                    if keep_old {
                        kept.push(task);
                    } else {
                        self.task_event(&id, &task, "TASK_KILLED");
                    }
                    continue;
                }
                if task.state == TaskState::Staging && failing {
                    self.fail_task(app, &id, &task, "Command exited with status 1 (sandbox outcome)");
                    let fresh = self.new_task(&id, app);
                    self.task_event(&id, &fresh, "TASK_STAGING");
                    kept.push(fresh);
                    relaunched = true;
                    continue;
                }
                if task.state == TaskState::Staging {
                    task.state = TaskState::Running;
                    task.started_at = Some(now.clone());
                    self.task_event(&id, &task, "TASK_RUNNING");
                }
                kept.push(task);
            }
            app.tasks = kept;
            app.touch();
        }
        if relaunched { Halfway::Relaunched } else { Halfway::Running }
    }

    /// A task failed: `TASK_FAILED` and the app's `lastTaskFailure`
    /// (`TaskFailure` as `Formats.scala` writes it).
    fn fail_task(&self, app: &mut StoredApp, app_id: &str, task: &Task, message: &str) {
        self.task_event(app_id, task, "TASK_FAILED");
        app.touch();
        app.last_task_failure = Some(json!({
            "appId": app_id, "host": "127.0.0.1", "message": message,
            "state": "TASK_FAILED", "taskId": task.id, "timestamp": iso_millis(self.clock.now()),
            "version": task.version, "slaveId": AGENT_ID,
        }));
    }

    /// The end: tasks become healthy and the deployment succeeds, or (fault) tasks fail.
    /// Returns false while an app's new tasks wait for health they do not get (the
    /// deployment stays); true once the deployment is over.
    fn finish(&self, deployment_id: &str) -> bool {
        let mut store = self.store();
        let Some(index) = store.deployments.iter().position(|d| d.id == deployment_id) else { return true };
        let waits = store.deployments[index].outcome != Some(DeploymentOutcome::Fail)
            && store.deployments[index]
                .affected
                .iter()
                .any(|id| store.apps.get(id).is_some_and(|app| self.stays_unhealthy(app, id)));
        if waits {
            return false;
        }
        let deployment = store.deployments.remove(index);
        let plan = deployment.plan_json();
        for id in &deployment.affected {
            let Some(app) = store.apps.get_mut(id) else { continue };
            if deployment.outcome == Some(DeploymentOutcome::Fail) {
                let config = app.last_config_change_at.clone();
                let (failed, kept): (Vec<Task>, Vec<Task>) = std::mem::take(&mut app.tasks)
                    .into_iter()
                    .partition(|t| t.config == config && t.state == TaskState::Staging);
                for task in &failed {
                    self.fail_task(app, id, task, "injected failure (sandbox fault)");
                }
                app.tasks = kept;
            } else {
                // Old tasks kept while the new ones were not yet healthy go now.
                let config = app.last_config_change_at.clone();
                let (old, current): (Vec<Task>, Vec<Task>) =
                    std::mem::take(&mut app.tasks).into_iter().partition(|t| t.config != config);
                for task in &old {
                    self.task_event(id, task, "TASK_KILLED");
                }
                app.tasks = current;
                let healthy = app.has_health_checks();
                let mut now_healthy = Vec::new();
                for task in &mut app.tasks {
                    let was = task.healthy;
                    task.healthy = healthy && task.state == TaskState::Running;
                    if task.healthy && !was {
                        now_healthy.push(task.clone());
                    }
                }
                for task in &now_healthy {
                    self.health_events(app, id, task);
                }
            }
            app.touch();
        }
        if deployment.outcome == Some(DeploymentOutcome::Fail) {
            if let Some(last) = deployment.steps.last() {
                self.emit("deployment_step_failure", json!({"plan": plan, "currentStep": step_json(last)}));
            }
            self.emit(
                "deployment_failed",
                json!({"id": deployment.id, "plan": plan, "reason": "tasks failed (sandbox fault)"}),
            );
        } else {
            if let Some(last) = deployment.steps.last() {
                self.emit("deployment_step_success", json!({"plan": plan, "currentStep": step_json(last)}));
            }
            self.emit("deployment_success", json!({"id": deployment.id, "plan": plan}));
        }
        true
    }

    /// Stop a deployment where it is (apps keep their new definitions).
    fn cancel(&self, store: &mut Store, deployment_id: &str, reason: &str) -> Option<Deployment> {
        let index = store.deployments.iter().position(|d| d.id == deployment_id)?;
        let deployment = store.deployments.remove(index);
        for id in &deployment.affected {
            if let Some(app) = store.apps.get_mut(id) {
                app.touch();
            }
        }
        self.emit(
            "deployment_failed",
            json!({"id": deployment.id, "plan": deployment.plan_json(), "reason": reason}),
        );
        Some(deployment)
    }

    /// `DELETE /v2/deployments/{id}`: `force` cancels only; otherwise a new deployment
    /// puts the affected apps back as they were. `None` when unknown.
    pub(crate) fn delete_deployment(
        &self,
        deployment_id: &str,
        force: bool,
    ) -> Option<Option<(String, String)>> {
        let mut store = self.store();
        let deployment = self.cancel(&mut store, deployment_id, "The deployment was canceled")?;
        if force {
            return Some(None);
        }
        let changes: Vec<Change> = deployment
            .original
            .into_iter()
            .map(|(id, before)| match before {
                Some(app) => Change::Restore { app: Box::new(app) },
                None => Change::Remove { id },
            })
            .collect();
        self.deploy(&mut store, changes, true, |_| None, Vec::new()).ok().map(Some)
    }

    /// `GET /metrics` (SystemResource.metrics, MetricsConversion): the 1.10 "new
    /// metrics" document with the gauges the emulator can know (names as
    /// DropwizardMetrics builds them: prefix `marathon`, suffix `gauge`).
    pub(crate) fn metrics_json(&self) -> Value {
        let store = self.store();
        let running: usize = store
            .apps
            .values()
            .map(|a| a.tasks.iter().filter(|t| t.state == TaskState::Running).count())
            .sum();
        let mut groups: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        for id in store.apps.keys() {
            let mut group = app::parent_group(id);
            while group != "/" && groups.insert(group.clone()) {
                group = app::parent_group(&group);
            }
        }
        json!({
            "version": "4.0.0",
            "counters": {},
            "gauges": {
                "marathon.apps.active.gauge": {"value": store.apps.len() as f64},
                "marathon.deployments.active.gauge": {"value": store.deployments.len() as f64},
                "marathon.groups.active.gauge": {"value": (groups.len() + 1) as f64},
                "marathon.instances.running.gauge": {"value": running as f64},
            },
            "histograms": {},
            "meters": {},
            "timers": {},
        })
    }

    /// The listing of running deployments.
    pub(crate) fn deployments_json(&self) -> Value {
        Value::Array(self.store().deployments.iter().map(Deployment::listing_json).collect())
    }

    /// Render an app the way GET reports it.
    pub(crate) fn render(&self, store: &Store, app: &StoredApp, embed: Embed) -> Map<String, Value> {
        let mut out = app.definition_with_version(true);
        let id = app.definition.get("id").and_then(Value::as_str).unwrap_or_default();
        let staged = app.tasks.iter().filter(|t| t.state == TaskState::Staging).count();
        let running = app.tasks.iter().filter(|t| t.state == TaskState::Running).count();
        let healthy = app.tasks.iter().filter(|t| t.healthy).count();
        let unhealthy = app.tasks.iter().filter(|t| self.counts_unhealthy(app, id, t)).count();
        out.insert("tasksStaged".into(), json!(staged));
        out.insert("tasksRunning".into(), json!(running));
        out.insert("tasksHealthy".into(), json!(healthy));
        out.insert("tasksUnhealthy".into(), json!(unhealthy));
        let deployments: Vec<Value> =
            store.deployments_of(id).into_iter().map(|d| json!({"id": d})).collect();
        out.insert("deployments".into(), Value::Array(deployments));
        if embed.readiness {
            out.insert("readinessCheckResults".into(), json!([]));
        }
        if embed.tasks {
            out.insert(
                "tasks".into(),
                Value::Array(app.tasks.iter().map(|t| self.task_json(app, id, t)).collect()),
            );
        }
        if embed.last_task_failure {
            if let Some(failure) = &app.last_task_failure {
                out.insert("lastTaskFailure".into(), failure.clone());
            }
        }
        if embed.task_stats {
            out.insert(
                "tasksStats".into(),
                json!({"totalSummary": {"stats": {"counts": {"staged": staged, "running": running, "healthy": healthy, "unhealthy": unhealthy}}}}),
            );
        }
        out
    }

    /// Whether a task counts in `tasksUnhealthy`: it runs, its app's checks are
    /// scripted to fail, it never passed one, and the grace period since it started
    /// is over (`HealthCheckActor.ignoreFailures`: failures before a first success
    /// within `gracePeriodSeconds` are ignored).
    fn counts_unhealthy(&self, app: &StoredApp, app_id: &str, task: &Task) -> bool {
        if task.state != TaskState::Running || task.healthy || !self.stays_unhealthy(app, app_id) {
            return false;
        }
        let grace = app
            .definition
            .get("healthChecks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| c.get("gracePeriodSeconds").and_then(Value::as_i64).unwrap_or(DEFAULT_GRACE_SECONDS))
            .min()
            .unwrap_or(DEFAULT_GRACE_SECONDS);
        let started = task
            .started_at
            .as_deref()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.to_utc());
        started.is_some_and(|t| self.clock.now() >= t + chrono::Duration::seconds(grace))
    }

    /// The listing rendering of one app with `embed`, cached for the embeds a listing
    /// asks for every reconcile ([`Embed::cache_slot`]; not cached while its tasks are
    /// scripted unhealthy: the count moves with the clock).
    pub(crate) fn render_listed(&self, store: &mut Store, id: &str, embed: Embed) -> Option<Arc<str>> {
        let slot = embed.cache_slot();
        if let Some(cached) = slot.and_then(|k| store.apps.get(id).and_then(|a| a.rendered[k].clone())) {
            return Some(cached);
        }
        let app = store.apps.get(id)?;
        let text: Arc<str> = Value::Object(self.render(store, app, embed)).to_string().into();
        if self.outcome_of(id).tasks == TaskOutcome::Unhealthy {
            return Some(text);
        }
        if let (Some(k), Some(app)) = (slot, store.apps.get_mut(id)) {
            app.rendered[k] = Some(text.clone());
        }
        Some(text)
    }

    /// A task as `raml.Task` writes it (TaskConversion.enrichedTaskRamlWrite), fields in
    /// the RAML order; unset optional fields are left out, including those of each
    /// health result (HealthConversion).
    pub(crate) fn task_json(&self, app: &StoredApp, app_id: &str, task: &Task) -> Value {
        let mut out = Map::new();
        out.insert("appId".into(), json!(app_id));
        if app.has_health_checks() && task.state == TaskState::Running {
            let mut result = Map::new();
            result.insert("alive".into(), json!(task.healthy));
            let failing = self.counts_unhealthy(app, app_id, task);
            result.insert("consecutiveFailures".into(), json!(u8::from(failing)));
            if task.healthy {
                result.insert("firstSuccess".into(), json!(task.started_at));
            }
            result.insert("instanceId".into(), json!(task.instance_id()));
            if task.healthy {
                result.insert("lastSuccess".into(), json!(task.started_at));
            }
            out.insert("healthCheckResults".into(), json!([result]));
        }
        out.insert("host".into(), json!("127.0.0.1"));
        out.insert("id".into(), json!(task.id));
        out.insert("ipAddresses".into(), json!([{"ipAddress": "127.0.0.1", "protocol": "IPv4"}]));
        out.insert("ports".into(), json!(task.host_ports));
        out.insert("servicePorts".into(), json!(app::service_ports(&app.definition)));
        out.insert("slaveId".into(), json!(AGENT_ID));
        out.insert("state".into(), json!(task.state.mesos_name()));
        out.insert("stagedAt".into(), json!(task.staged_at));
        if let Some(started) = &task.started_at {
            out.insert("startedAt".into(), json!(started));
        }
        out.insert("version".into(), json!(task.version));
        out.insert("localVolumes".into(), json!([]));
        out.insert("role".into(), app.definition.get("role").cloned().unwrap_or(json!("*")));
        Value::Object(out)
    }

    /// Accept an app like POST does, with its tasks already running (seeds).
    pub(crate) fn seed_app(&self, body: &Value) -> Result<(), String> {
        let clean = app::read_body(body).map_err(|e| e.to_string())?;
        let raw_id = clean.get("id").and_then(Value::as_str).ok_or("app without an id")?;
        let id = app::absolute_id(raw_id, "/");
        let mut definition = app::canonical(&clean, &id, Arrival::Post).map_err(|e| e.to_string())?;
        let mut store = self.store();
        if store.apps.contains_key(&id) {
            return Err(format!("An app with id [{id}] already exists."));
        }
        store.ports.assign(&mut definition, &[])?;
        let version = self.mint_version(&mut store);
        let mut stored = StoredApp {
            versions: vec![(version.clone(), definition.clone())],
            definition,
            version: version.clone(),
            last_scaling_at: version.clone(),
            last_config_change_at: version.clone(),
            tasks: Vec::new(),
            last_task_failure: None,
            rendered: [None, None],
        };
        Self::start_running(&mut stored, self, &id);
        store.apps.insert(id, stored);
        Ok(())
    }

    fn start_running(stored: &mut StoredApp, state: &MarathonState, id: &str) {
        let healthy = stored.has_health_checks();
        let now = iso_millis(state.clock.now());
        for _ in 0..launched_instances(&stored.definition) {
            let mut task = state.new_task(id, stored);
            task.state = TaskState::Running;
            task.healthy = healthy;
            task.started_at = Some(now.clone());
            stored.tasks.push(task);
        }
    }

    /// Every app as GET reports it, without status fields.
    pub(crate) fn snapshot(&self) -> Vec<Value> {
        let store = self.store();
        store
            .apps
            .values()
            .map(|app| {
                let mut rendered = self.render(&store, app, Embed::default());
                for key in ["tasksStaged", "tasksRunning", "tasksHealthy", "tasksUnhealthy", "deployments"] {
                    rendered.remove(key);
                }
                Value::Object(rendered)
            })
            .collect()
    }

    /// Replace all apps with a snapshot; deployments are dropped, tasks run.
    pub(crate) fn restore(&self, apps: &[Value]) -> Result<(), String> {
        let mut fresh = Store::default();
        for item in apps {
            let mut definition = item.as_object().cloned().ok_or("snapshot app is not an object")?;
            let id =
                definition.get("id").and_then(Value::as_str).ok_or("snapshot app without id")?.to_owned();
            let version = definition
                .remove("version")
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| self.mint_version(&mut fresh));
            let info = definition.remove("versionInfo");
            let from_info =
                |key: &str| info.as_ref().and_then(|i| i.get(key)).and_then(Value::as_str).map(str::to_owned);
            fresh.ports.claim(&app::service_ports(&definition));
            let mut stored = StoredApp {
                last_scaling_at: from_info("lastScalingAt").unwrap_or_else(|| version.clone()),
                last_config_change_at: from_info("lastConfigChangeAt").unwrap_or_else(|| version.clone()),
                versions: vec![(version.clone(), definition.clone())],
                version,
                definition,
                tasks: Vec::new(),
                last_task_failure: None,
                rendered: [None, None],
            };
            Self::start_running(&mut stored, self, &id);
            fresh.apps.insert(id, stored);
        }
        let mut store = self.store();
        fresh.last_version = store.last_version;
        *store = fresh;
        Ok(())
    }
}
