//! Marathon's task routes (1.10 `AppTasksResource`, `TasksResource`,
//! `QueueResource`): listing every task, killing tasks with or without `scale`, and
//! the launch queue. Kills without `scale` make no deployment: Marathon simply
//! launches replacements.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::state::{Change, MarathonState, Task};
use super::{Shared, app_id_from_path, deploy_error, deployment_result, json_body, message, not_found};
use crate::emulator::controls::DeploymentFaults;
use crate::emulator::query;

/// The kill flags every kill route reads (`scale`, `force`, `wipe`, `host`).
struct KillFlags {
    scale: bool,
    force: bool,
    host: Option<String>,
}

impl KillFlags {
    /// `scale` and `wipe` together are a 400, as in the resources.
    fn read(raw: Option<&str>) -> Result<KillFlags, Box<Response>> {
        let pairs = query::pairs(raw);
        let scale = query::flag(&pairs, "scale", false);
        if scale && query::flag(&pairs, "wipe", false) {
            return Err(Box::new(message(
                StatusCode::BAD_REQUEST,
                "You cannot use scale and wipe at the same time.",
            )));
        }
        Ok(KillFlags {
            scale,
            force: query::flag(&pairs, "force", false),
            host: query::last(&pairs, "host").map(str::to_owned),
        })
    }
}

/// `DELETE /v2/apps/{id}/tasks[?host=]` (`task_id` None) or
/// `DELETE /v2/apps/{id}/tasks/{taskId}`.
pub(super) fn kill_app_tasks(
    state: &Arc<MarathonState>,
    faults: &DeploymentFaults,
    app_path: &str,
    task_id: Option<&str>,
    raw: Option<&str>,
) -> Response {
    let flags = match KillFlags::read(raw) {
        Ok(flags) => flags,
        Err(response) => return *response,
    };
    let id = app_id_from_path(app_path);
    let select = |task: &Task| match (task_id, &flags.host) {
        (Some(wanted), _) => task.id() == wanted,
        // Every emulated task runs on 127.0.0.1.
        (None, Some(host)) => host == "*" || host == "127.0.0.1",
        (None, None) => true,
    };
    let mut store = state.store();
    if !store.apps.contains_key(&id) {
        return not_found(&id, false);
    }
    if flags.scale {
        let task_ids = MarathonState::task_ids(&store, &id, select);
        let change = Change::KillAndScale { id, task_ids };
        return match state.deploy(
            &mut store,
            vec![change],
            flags.force,
            |ids| faults.outcome_for(ids),
            Vec::new(),
        ) {
            Ok((deployment_id, version)) => deployment_result(StatusCode::OK, &deployment_id, &version),
            Err(error) => deploy_error(error),
        };
    }
    let killed = state.kill_tasks(&mut store, &id, select).unwrap_or_default();
    match task_id {
        None => json_body(StatusCode::OK, &json!({ "tasks": killed })),
        Some(wanted) => match killed.into_iter().next() {
            Some(task) => json_body(StatusCode::OK, &json!({ "task": task })),
            None => message(StatusCode::NOT_FOUND, &format!("Task '{wanted}' does not exist")),
        },
    }
}

/// `GET /v2/tasks[?status=running|staging]` (also `status[]`), as JSON.
pub(super) async fn list_tasks(State(state): Shared, RawQuery(raw): RawQuery) -> Response {
    let pairs = query::pairs(raw.as_deref());
    let mut wanted = query::all(&pairs, "status");
    wanted.extend(query::all(&pairs, "status[]"));
    let states: Vec<&str> = wanted
        .iter()
        .filter_map(|s| match s.to_ascii_lowercase().as_str() {
            "running" => Some("TASK_RUNNING"),
            "staging" => Some("TASK_STAGING"),
            _ => None,
        })
        .collect();
    // Unknown statuses select nothing, as the condition set stays empty there too.
    let tasks =
        if states.is_empty() && !wanted.is_empty() { Vec::new() } else { state.all_tasks_json(&states) };
    json_body(StatusCode::OK, &json!({ "tasks": tasks }))
}

/// The app a task id belongs to (`Task.Id.parse`): the run spec's safe path before
/// `.instance-` / `.marathon-`, with `_` back to `/`.
fn app_of_task(task_id: &str) -> Option<String> {
    let (name, _) = task_id.split_once(".instance-").or_else(|| task_id.split_once(".marathon-"))?;
    (!name.is_empty()).then(|| format!("/{}", name.replace('_', "/")))
}

/// `POST /v2/tasks/delete {"ids": [...]}`: kill tasks of any apps (unknown ids are
/// skipped), or with `scale` one deployment lowering each app's instances.
pub(super) async fn delete_tasks(
    State(state): Shared,
    Extension(faults): Extension<DeploymentFaults>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let flags = match KillFlags::read(raw.as_deref()) {
        Ok(flags) => flags,
        Err(response) => return *response,
    };
    let ids: Vec<String> = match serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("ids").cloned())
    {
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            items.iter().filter_map(Value::as_str).map(str::to_owned).collect()
        }
        _ => {
            return message(StatusCode::BAD_REQUEST, "Invalid JSON: expected {\"ids\": [\"<taskId>\", ...]}");
        }
    };
    let mut by_app: Vec<(String, Vec<String>)> = Vec::new();
    for task_id in ids {
        let Some(app) = app_of_task(&task_id) else {
            return message(StatusCode::BAD_REQUEST, &format!("Invalid task id '{task_id}'."));
        };
        match by_app.iter_mut().find(|(a, _)| *a == app) {
            Some((_, tasks)) => tasks.push(task_id),
            None => by_app.push((app, vec![task_id])),
        }
    }
    let mut store = state.store();
    by_app.retain(|(app, _)| store.apps.contains_key(app));
    if flags.scale {
        let changes =
            by_app.into_iter().map(|(id, task_ids)| Change::KillAndScale { id, task_ids }).collect();
        return match state.deploy(&mut store, changes, flags.force, |ids| faults.outcome_for(ids), Vec::new())
        {
            Ok((deployment_id, version)) => deployment_result(StatusCode::OK, &deployment_id, &version),
            Err(error) => deploy_error(error),
        };
    }
    let mut killed = Vec::new();
    for (app, task_ids) in by_app {
        killed.extend(
            state
                .kill_tasks(&mut store, &app, |t| task_ids.iter().any(|id| id == t.id()))
                .unwrap_or_default(),
        );
    }
    json_body(StatusCode::OK, &json!({ "tasks": killed }))
}

/// `GET /v2/queue`.
pub(super) async fn queue(State(state): Shared) -> Response {
    json_body(StatusCode::OK, &state.queue_json())
}

#[cfg(test)]
mod tests {
    use super::app_of_task;

    #[test]
    fn task_ids_name_their_app() {
        assert_eq!(app_of_task("prod_web.instance-1234._app.1").as_deref(), Some("/prod/web"));
        assert_eq!(app_of_task("web.marathon-1234").as_deref(), Some("/web"));
        assert_eq!(app_of_task("garbage"), None);
    }
}
