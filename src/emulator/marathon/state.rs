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
use super::ports::ServicePorts;
use crate::emulator::Clock;
use crate::emulator::clock::iso_millis;
use crate::emulator::controls::DeploymentOutcome;

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
    /// The default listing rendering, dropped whenever anything about the app changes.
    rendered: Option<Arc<str>>,
}

impl StoredApp {
    fn touch(&mut self) {
        self.rendered = None;
    }

    fn has_health_checks(&self) -> bool {
        self.definition.get("healthChecks").and_then(Value::as_array).is_some_and(|c| !c.is_empty())
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
}

impl Change {
    fn app_id(&self) -> &str {
        match self {
            Change::Upsert { id, .. } | Change::Remove { id } | Change::Restart { id } => id,
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

/// Which optional parts a rendering includes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Embed {
    pub tasks: bool,
    pub last_task_failure: bool,
    pub readiness: bool,
    pub task_stats: bool,
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
        })
    }

    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        locked(&self.store)
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

    /// Apply a write: check locks (or cancel them with `force`), publish the
    /// `api_post_event`s of the request, update apps, start one deployment. Returns
    /// `(deploymentId, version)`; a refused write publishes nothing.
    pub(crate) fn deploy(
        &self,
        store: &mut Store,
        changes: Vec<Change>,
        force: bool,
        outcome: impl Fn(&[&str]) -> Option<DeploymentOutcome>,
        api_posts: Vec<Value>,
    ) -> Result<(String, String), DeployError> {
        let mut locking: Vec<String> = Vec::new();
        for change in &changes {
            for id in store.deployments_of(change.app_id()) {
                if !locking.iter().any(|l| l == id) {
                    locking.push(id.to_owned());
                }
            }
        }
        if !locking.is_empty() {
            if !force {
                return Err(DeployError::Locked(locking));
            }
            for id in &locking {
                self.cancel(store, id, "The deployment was canceled by a forced update");
            }
        }
        for post in api_posts {
            self.emit("api_post_event", post);
        }
        let version = self.mint_version(store);
        let deployment_id = uuid::Uuid::new_v4().to_string();
        let mut starts = Vec::new();
        let mut others = Vec::new();
        let mut original = Vec::new();
        *locked(&self.held_events) = Some(Vec::new());
        let mut applied = Ok(());
        for change in changes {
            let id = change.app_id().to_owned();
            let before = store.apps.get(&id).cloned();
            let action = match self.apply_change(store, change, &version) {
                Ok(action) => action,
                Err(rejection) => {
                    applied = Err(DeployError::Rejected(rejection));
                    break;
                }
            };
            if let Some(action) = action {
                original.push((id.clone(), before));
                if action == "StartApplication" {
                    starts.push(id);
                } else {
                    others.push((action, id));
                }
            }
        }
        let held = locked(&self.held_events).take().unwrap_or_default();
        applied?;
        let mut steps: Vec<Step> = Vec::new();
        let first: Step =
            starts.iter().map(|id| ("StartApplication", id.clone())).chain(others.iter().cloned()).collect();
        if !first.is_empty() {
            steps.push(first);
        }
        if !starts.is_empty() {
            steps.push(starts.iter().map(|id| ("ScaleApplication", id.clone())).collect());
        }
        let affected: Vec<String> = original.iter().map(|(id, _)| id.clone()).collect();
        let affected_refs: Vec<&str> = affected.iter().map(String::as_str).collect();
        let deployment = Deployment {
            id: deployment_id.clone(),
            version: version.clone(),
            outcome: outcome(&affected_refs),
            affected,
            current_step: usize::from(!steps.is_empty()),
            steps,
            original,
        };
        self.emit(
            "deployment_info",
            json!({"plan": deployment.plan_json(), "currentStep": deployment.steps.first().map(step_json)}),
        );
        for event in held {
            let _ = self.events.send(event);
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
        store.deployments.push(deployment);
        let duration = *locked(&self.deployment_duration);
        let me = self.me.clone();
        let id = deployment_id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(duration / 2).await;
            let Some(state) = me.upgrade() else { return };
            if !state.tasks_running(&id) {
                return;
            }
            drop(state);
            tokio::time::sleep(duration / 2).await;
            if let Some(state) = me.upgrade() {
                state.finish(&id);
            }
        });
        Ok((deployment_id, version))
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
                            rendered: None,
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
        let instances = app.definition.get("instances").and_then(Value::as_u64).unwrap_or(0);
        for _ in 0..instances {
            let task = self.new_task(id, app);
            self.task_event(id, &task, "TASK_STAGING");
            app.tasks.push(task);
        }
    }

    fn scale(&self, app: &mut StoredApp, id: &str) {
        let wanted = usize::try_from(app.definition.get("instances").and_then(Value::as_u64).unwrap_or(0))
            .unwrap_or(0);
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

    fn task_event(&self, app_id: &str, task: &Task, status: &str) {
        self.emit(
            "status_update_event",
            json!({
                "slaveId": "emulator-agent-0",
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
    }

    /// Half-way: staged tasks run, tasks of older versions are killed. Returns false
    /// when the deployment is gone or must never finish.
    fn tasks_running(&self, deployment_id: &str) -> bool {
        let mut store = self.store();
        let Some(deployment) = store.deployments.iter_mut().find(|d| d.id == deployment_id) else {
            return false;
        };
        if deployment.outcome == Some(DeploymentOutcome::NeverFinish) {
            return false;
        }
        let done_steps: Vec<Step> = deployment.steps[..deployment.steps.len().saturating_sub(1)].to_vec();
        deployment.current_step = deployment.steps.len();
        let plan = deployment.plan_json();
        let affected = deployment.affected.clone();
        let fails = deployment.outcome == Some(DeploymentOutcome::Fail);
        for step in done_steps {
            self.emit("deployment_step_success", json!({"plan": plan, "currentStep": step_json(&step)}));
        }
        if fails {
            return true;
        }
        let now = iso_millis(self.clock.now());
        for id in affected {
            let Some(app) = store.apps.get_mut(&id) else { continue };
            let config = app.last_config_change_at.clone();
            let mut kept = Vec::new();
            for mut task in std::mem::take(&mut app.tasks) {
                if task.config != config {
                    // Tasks of the old definition go once the new ones run.
                    self.task_event(&id, &task, "TASK_KILLED");
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
        true
    }

    /// The end: tasks become healthy and the deployment succeeds, or (fault) tasks fail.
    fn finish(&self, deployment_id: &str) {
        let mut store = self.store();
        let Some(index) = store.deployments.iter().position(|d| d.id == deployment_id) else { return };
        let deployment = store.deployments.remove(index);
        let plan = deployment.plan_json();
        let now = iso_millis(self.clock.now());
        for id in &deployment.affected {
            let Some(app) = store.apps.get_mut(id) else { continue };
            if deployment.outcome == Some(DeploymentOutcome::Fail) {
                let config = app.last_config_change_at.clone();
                let (failed, kept): (Vec<Task>, Vec<Task>) = std::mem::take(&mut app.tasks)
                    .into_iter()
                    .partition(|t| t.config == config && t.state == TaskState::Staging);
                for task in &failed {
                    self.task_event(id, task, "TASK_FAILED");
                    app.last_task_failure = Some(json!({
                        "appId": id, "host": "127.0.0.1", "message": "injected failure (sandbox fault)",
                        "state": "TASK_FAILED", "taskId": task.id, "timestamp": now, "version": task.version,
                        "slaveId": "emulator-agent-0",
                    }));
                }
                app.tasks = kept;
            } else {
                let healthy = app.has_health_checks();
                for task in &mut app.tasks {
                    task.healthy = healthy && task.state == TaskState::Running;
                }
            }
            app.touch();
        }
        if deployment.outcome == Some(DeploymentOutcome::Fail) {
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

    /// The listing of running deployments.
    pub(crate) fn deployments_json(&self) -> Value {
        Value::Array(self.store().deployments.iter().map(Deployment::listing_json).collect())
    }

    /// Render an app the way GET reports it.
    pub(crate) fn render(&self, store: &Store, app: &StoredApp, embed: Embed) -> Map<String, Value> {
        let mut out = Map::new();
        for (key, value) in &app.definition {
            if key == "killSelection" {
                out.insert("version".into(), json!(app.version));
                out.insert(
                    "versionInfo".into(),
                    json!({"lastScalingAt": app.last_scaling_at, "lastConfigChangeAt": app.last_config_change_at}),
                );
            }
            out.insert(key.clone(), value.clone());
        }
        let id = app.definition.get("id").and_then(Value::as_str).unwrap_or_default();
        let staged = app.tasks.iter().filter(|t| t.state == TaskState::Staging).count();
        let running = app.tasks.iter().filter(|t| t.state == TaskState::Running).count();
        let healthy = app.tasks.iter().filter(|t| t.healthy).count();
        out.insert("tasksStaged".into(), json!(staged));
        out.insert("tasksRunning".into(), json!(running));
        out.insert("tasksHealthy".into(), json!(healthy));
        out.insert("tasksUnhealthy".into(), json!(0));
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
                json!({"totalSummary": {"stats": {"counts": {"staged": staged, "running": running, "healthy": healthy, "unhealthy": 0}}}}),
            );
        }
        out
    }

    /// The cached default listing rendering of one app.
    pub(crate) fn render_listed(&self, store: &mut Store, id: &str) -> Option<Arc<str>> {
        if let Some(cached) = store.apps.get(id).and_then(|a| a.rendered.clone()) {
            return Some(cached);
        }
        let app = store.apps.get(id)?;
        let text: Arc<str> = Value::Object(self.render(store, app, Embed::default())).to_string().into();
        if let Some(app) = store.apps.get_mut(id) {
            app.rendered = Some(text.clone());
        }
        Some(text)
    }

    pub(crate) fn task_json(&self, app: &StoredApp, app_id: &str, task: &Task) -> Value {
        let mut out = json!({
            "appId": app_id,
            "host": "127.0.0.1",
            "id": task.id,
            "ipAddresses": [{"ipAddress": "127.0.0.1", "protocol": "IPv4"}],
            "ports": task.host_ports,
            "servicePorts": app::service_ports(&app.definition),
            "slaveId": "emulator-agent-0",
            "state": if task.state == TaskState::Staging { "TASK_STAGING" } else { "TASK_RUNNING" },
            "stagedAt": task.staged_at,
            "version": task.version,
            "localVolumes": [],
            "role": app.definition.get("role").cloned().unwrap_or(json!("*")),
        });
        if let (Some(started), Some(map)) = (&task.started_at, out.as_object_mut()) {
            map.insert("startedAt".into(), json!(started));
        }
        if app.has_health_checks() && task.state == TaskState::Running {
            if let Some(map) = out.as_object_mut() {
                map.insert(
                    "healthCheckResults".into(),
                    json!([{"alive": task.healthy, "consecutiveFailures": 0, "firstSuccess": task.started_at, "instanceId": task.id, "lastFailure": null, "lastSuccess": task.started_at}]),
                );
            }
        }
        out
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
            rendered: None,
        };
        Self::start_running(&mut stored, self, &id);
        store.apps.insert(id, stored);
        Ok(())
    }

    fn start_running(stored: &mut StoredApp, state: &MarathonState, id: &str) {
        let instances = stored.definition.get("instances").and_then(Value::as_u64).unwrap_or(0);
        let healthy = stored.has_health_checks();
        let now = iso_millis(state.clock.now());
        for _ in 0..instances {
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
                rendered: None,
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
