//! The emulated Marathon v2 API (1.10 behaviour): `/v2/apps` (list, create, batch
//! update), `/v2/apps/{id}` (get, put, patch, delete, restart, tasks, versions),
//! `/v2/deployments`, `/v2/events` (SSE), `/v2/info`, `/v2/leader`, `/ping`.
//!
//! Handlers only translate HTTP: bodies are read by [`app`], state changes go through
//! [`state::MarathonState::deploy`]. Response bodies are shaped byte for byte like
//! Marathon's (DESIGN §4).

pub mod app;
mod groups;
pub mod outcome;
pub mod ports;
pub mod selector;
pub mod state;
mod tasks;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use serde_json::{Map, Value, json};
use tokio_stream::wrappers::BroadcastStream;

use self::app::{AppRejection, Arrival};
use self::selector::Selector;
pub(crate) use self::state::ApiPost;
pub use self::state::MarathonState;
use self::state::{Change, DeployError, Embed, Store};
use super::controls::DeploymentFaults;
use super::query;

/// The literal 409 message: Marathon keeps the placeholder in it.
const LOCKED_MESSAGE: &str = "App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/<DEPLOYMENT_ID>'.";

type Shared = State<Arc<MarathonState>>;

/// The Marathon routes, behind Marathon's servlet filters: a trailing slash is the
/// same resource (JAX-RS matches `v2/apps/` like `v2/apps`), and every answer carries
/// the `CacheDisablingFilter` headers.
pub(crate) fn router(state: Arc<MarathonState>) -> Router {
    let resources = Router::new()
        .route("/", get(redirect_to_ui))
        .route("/v2/apps", get(list_apps).post(create_app).put(batch_put).patch(batch_patch))
        .route(
            "/v2/apps/{*path}",
            get(get_app_path).put(put_app).patch(patch_app).delete(delete_app_path).post(post_app_path),
        )
        .route("/v2/groups", get(groups::get_root).post(groups::post_group))
        .route(
            "/v2/groups/{*path}",
            get(groups::get_group).put(groups::put_group).delete(groups::delete_group),
        )
        .route("/v2/tasks", get(tasks::list_tasks))
        .route("/v2/tasks/delete", axum::routing::post(tasks::delete_tasks))
        .route("/v2/queue", get(tasks::queue))
        .route("/v2/deployments", get(list_deployments))
        .route("/v2/deployments/{id}", axum::routing::delete(delete_deployment))
        .route("/v2/events", get(events))
        .route("/v2/info", get(info))
        .route("/v2/leader", get(leader))
        .route("/ping", get(ping))
        .route("/metrics", get(metrics))
        .fallback(uri_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(super::media::require_json))
        .with_state(state);
    Router::new()
        .fallback_service(resources)
        .layer(axum::middleware::from_fn(trim_trailing_slash))
        .layer(axum::middleware::from_fn(disable_caching))
}

/// `/v2/apps/` is `/v2/apps`: drop one trailing slash before routing.
async fn trim_trailing_slash(mut request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
        let rewritten = match request.uri().query() {
            Some(query) => format!("{trimmed}?{query}"),
            None => trimmed.to_owned(),
        };
        if let Ok(uri) = rewritten.parse() {
            *request.uri_mut() = uri;
        }
    }
    next.run(request).await
}

/// Marathon's `CacheDisablingFilter`: every response says "do not cache".
async fn disable_caching(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store, must-revalidate"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(header::EXPIRES, HeaderValue::from_static("0"));
    response
}

/// Jersey's `NotFoundException` for an unknown route, as `MarathonExceptionMapper`
/// maps it: 500 `{"message":"URI not found"}`.
async fn uri_not_found() -> Response {
    message(StatusCode::INTERNAL_SERVER_ERROR, "URI not found")
}

/// Jersey's `NotAllowedException`: the status with its reason phrase.
async fn method_not_allowed() -> Response {
    message(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}

/// `GET /` (SystemResource.redirectUI): 302 to the UI.
async fn redirect_to_ui() -> Response {
    (StatusCode::FOUND, [(header::LOCATION, "/ui/")]).into_response()
}

/// `GET /ping` (SystemResource.ping): `"pong"` as JSON for a client that prefers
/// JSON, plain `pong` for text, 204 when it accepts neither.
async fn ping(headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    match super::media::select_variant(accept, &["text/plain", "text/html", "application/json", "text/*"]) {
        Some("application/json") => {
            (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], "\"pong\"").into_response()
        }
        Some("text/html") => (StatusCode::OK, [(header::CONTENT_TYPE, "text/html")], "pong").into_response(),
        Some(_) => (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], "pong").into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

fn json_body(status: StatusCode, value: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], value.to_string()).into_response()
}

fn message(status: StatusCode, text: &str) -> Response {
    json_body(status, &json!({ "message": text }))
}

fn not_found(id: &str, with_details: bool) -> Response {
    let text = format!("App '{id}' does not exist");
    if with_details {
        json_body(StatusCode::NOT_FOUND, &json!({"message": text, "details": []}))
    } else {
        message(StatusCode::NOT_FOUND, &text)
    }
}

fn rejected(rejection: &AppRejection) -> Response {
    json_body(StatusCode::UNPROCESSABLE_ENTITY, &rejection.body())
}

fn deploy_error(error: DeployError) -> Response {
    match error {
        DeployError::Locked(ids) => json_body(
            StatusCode::CONFLICT,
            &json!({"message": LOCKED_MESSAGE, "deployments": ids.iter().map(|id| json!({"id": id})).collect::<Vec<_>>()}),
        ),
        DeployError::Rejected(rejection) => rejected(&rejection),
    }
}

fn deployment_result(status: StatusCode, deployment_id: &str, version: &str) -> Response {
    let mut response = json_body(status, &json!({"version": version, "deploymentId": deployment_id}));
    if let Ok(value) = HeaderValue::from_str(deployment_id) {
        response.headers_mut().insert("Marathon-Deployment-Id", value);
    }
    response
}

/// Parse a request body; malformed JSON is a 400.
fn parse_json(body: &Bytes) -> Result<Value, Box<Response>> {
    serde_json::from_slice(body).map_err(|err| {
        Box::new(json_body(
            StatusCode::BAD_REQUEST,
            &json!({"message": "Invalid JSON", "details": [{"path": "/", "errors": [format!("Unexpected input: {err}")]}]}),
        ))
    })
}

fn app_id_from_path(path: &str) -> String {
    app::absolute_id(path, "/")
}

/// The `api_post_event` a write publishes once it is accepted.
fn api_post(client: SocketAddr, uri: &str, app_id: &str) -> ApiPost {
    ApiPost { client_ip: client.ip().to_string(), uri: uri.to_owned(), app_id: app_id.to_owned() }
}

/// Jersey's `Response.created(new URI(id))`: the app id resolved against the base URI
/// of the request (`http://<Host>/<id>`).
fn created_location(headers: &HeaderMap, fallback: SocketAddr, id: &str) -> Option<HeaderValue> {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let host = host.unwrap_or_else(|| fallback.to_string());
    HeaderValue::from_str(&format!("http://{host}{id}")).ok()
}

// ---- GET /v2/apps ---------------------------------------------------------------

/// The `embed` values of an app read (`InfoEmbedResolver.resolveApp`): each may carry
/// any of the prefixes `group.apps.`, `apps.`, `app.` or none, on every route
/// (`api/v2/InfoEmbedResolver.scala:12`, `:53`); unknown values are ignored.
fn embed_from(pairs: &[(String, String)]) -> Embed {
    let mut embed = Embed::default();
    for value in query::all(pairs, "embed") {
        let bare = ["group.apps.", "apps.", "app."]
            .iter()
            .find_map(|prefix| value.strip_prefix(prefix))
            .unwrap_or(value.as_str());
        match bare {
            "tasks" => embed.tasks = true,
            "lastTaskFailure" => embed.last_task_failure = true,
            "readiness" => embed.readiness = true,
            "taskStats" => embed.task_stats = true,
            "failures" => {
                embed.tasks = true;
                embed.last_task_failure = true;
            }
            _ => {}
        }
    }
    embed
}

async fn list_apps(State(state): Shared, RawQuery(raw): RawQuery) -> Response {
    let pairs = query::pairs(raw.as_deref());
    let id_filter = query::last(&pairs, "id").map(str::to_lowercase);
    let cmd_filter = query::last(&pairs, "cmd").map(str::to_owned);
    let selector = match query::last(&pairs, "label").map(Selector::parse) {
        Some(Ok(selector)) => Some(selector),
        Some(Err(text)) => return message(StatusCode::BAD_REQUEST, &text),
        None => None,
    };
    let embed = embed_from(&pairs);
    let mut store = state.store();
    let ids: Vec<String> = store
        .apps
        .iter()
        .filter(|(id, stored)| {
            id_filter.as_ref().is_none_or(|f| id.to_lowercase().contains(f.as_str()))
                && cmd_filter.as_ref().is_none_or(|f| {
                    stored
                        .definition
                        .get("cmd")
                        .and_then(Value::as_str)
                        .is_some_and(|c| c.contains(f.as_str()))
                })
                && selector
                    .as_ref()
                    .is_none_or(|s| s.matches(stored.definition.get("labels").and_then(Value::as_object)))
        })
        .map(|(id, _)| id.clone())
        .collect();
    let mut body = String::with_capacity(ids.len() * 1024 + 16);
    body.push_str("{\"apps\":[");
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        if let Some(text) = state.render_listed(&mut store, id, embed) {
            body.push_str(&text);
        }
    }
    body.push_str("]}");
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

// ---- POST /v2/apps ----------------------------------------------------------------

async fn create_app(
    State(state): Shared,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Extension(faults): Extension<DeploymentFaults>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let value = match parse_json(&body) {
        Ok(value) => value,
        Err(response) => return *response,
    };
    let clean = match app::read_body(&value) {
        Ok(clean) => clean,
        Err(rejection) => return rejected(&rejection),
    };
    let Some(raw_id) = clean.get("id").and_then(Value::as_str) else {
        return rejected(&AppRejection::InvalidJson(vec![app::ErrorDetail {
            path: "/id".into(),
            errors: vec!["error.path.missing".into()],
        }]));
    };
    let id = app_id_from_path(raw_id);
    let accepted = match app::canonical(&clean, &id, Arrival::Post) {
        Ok(definition) => definition,
        Err(rejection) => return rejected(&rejection),
    };
    let force = query::flag(&query::pairs(raw.as_deref()), "force", false);
    let mut store = state.store();
    if store.apps.contains_key(&id) {
        return message(StatusCode::CONFLICT, &format!("An app with id [{id}] already exists."));
    }
    let posts = vec![api_post(client, "/v2/apps", &id)];
    let change = Change::Upsert { id: id.clone(), definition: accepted.clone() };
    let (deployment_id, version) =
        match state.deploy(&mut store, vec![change], force, |ids| faults.outcome_for(ids), posts) {
            Ok(result) => result,
            Err(error) => return deploy_error(error),
        };
    // The 201 body is the app as accepted: ports still 0, no versionInfo.
    let mut body = accepted;
    if let Some(pos) = body.keys().position(|k| k == "killSelection") {
        let tail: Vec<(String, Value)> = body.iter().skip(pos).map(|(k, v)| (k.clone(), v.clone())).collect();
        for (key, _) in &tail {
            body.remove(key);
        }
        body.insert("version".into(), json!(version));
        body.extend(tail);
    }
    body.insert("tasksStaged".into(), json!(0));
    body.insert("tasksRunning".into(), json!(0));
    body.insert("tasksHealthy".into(), json!(0));
    body.insert("tasksUnhealthy".into(), json!(0));
    body.insert("deployments".into(), json!([{"id": deployment_id}]));
    // `tasks = None` in AppsResource.create: no `tasks` key at all.
    let mut response = json_body(StatusCode::CREATED, &Value::Object(body));
    let location = created_location(&headers, state.addr, &id);
    let response_headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&deployment_id) {
        response_headers.insert("Marathon-Deployment-Id", value);
    }
    if let Some(location) = location {
        response_headers.insert(header::LOCATION, location);
    }
    response
}

// ---- PUT / PATCH ------------------------------------------------------------------

/// Build the new canonical definition of one app from a PUT/PATCH body.
/// `Ok(None)` means the app does not exist and `must_exist` was set.
fn updated_definition(
    store: &Store,
    id: &str,
    body: &Map<String, Value>,
    partial: bool,
    must_exist: bool,
) -> Result<Option<Map<String, Value>>, AppRejection> {
    let existing = store.apps.get(id);
    let input = match existing {
        None if must_exist => return Ok(None),
        None => body.clone(),
        Some(_) if !partial => body.clone(),
        Some(stored) => {
            // partialUpdate: top-level keys of the body replace the stored ones whole.
            let mut merged = stored.definition.clone();
            let docker_network =
                body.get("container").and_then(|c| c.get("docker")).and_then(|d| d.get("network")).is_some();
            for (deprecated, modern) in
                [("ports", "portDefinitions"), ("uris", "fetch"), ("ipAddress", "networks")]
            {
                if body.contains_key(deprecated) {
                    merged.remove(modern);
                }
            }
            if docker_network {
                merged.remove("networks");
            }
            for (key, value) in body {
                merged.insert(key.clone(), value.clone());
            }
            merged
        }
    };
    let arrival = if existing.is_some() { Arrival::PutUpdate } else { Arrival::PutCreate };
    app::canonical(&input, id, arrival).map(Some)
}

fn clean_body(value: &Value) -> Result<Map<String, Value>, AppRejection> {
    let mut clean = app::read_body(value)?;
    clean.remove("id");
    Ok(clean)
}

/// A body with `version` means "roll back to that version" (everything else in it is
/// ignored). `Err(version)`: the app has no such version.
fn rollback_target(
    store: &Store,
    id: &str,
    body: &mut Map<String, Value>,
) -> Result<Option<Map<String, Value>>, String> {
    let Some(version) = body.remove("version") else { return Ok(None) };
    let version = version.as_str().unwrap_or_default().to_owned();
    store
        .apps
        .get(id)
        .and_then(|app| app.versions.iter().find(|(v, _)| *v == version))
        .map(|(_, definition)| Some(definition.clone()))
        .ok_or(version)
}

/// What a single-app write needs besides its path and body.
struct WriteContext {
    state: Arc<MarathonState>,
    client: SocketAddr,
    faults: DeploymentFaults,
    headers: HeaderMap,
    raw: Option<String>,
}

async fn put_app(
    State(state): Shared,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Extension(faults): Extension<DeploymentFaults>,
    Path(path): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write_app(WriteContext { state, client, faults, headers, raw }, path, body, false).await
}

async fn patch_app(
    State(state): Shared,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Extension(faults): Extension<DeploymentFaults>,
    Path(path): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write_app(WriteContext { state, client, faults, headers, raw }, path, body, true).await
}

async fn write_app(context: WriteContext, path: String, body: Bytes, patch: bool) -> Response {
    let WriteContext { state, client, faults, headers, raw } = context;
    let id = app_id_from_path(&path);
    let pairs = query::pairs(raw.as_deref());
    let partial = patch || query::flag(&pairs, "partialUpdate", true);
    let force = query::flag(&pairs, "force", false);
    let value = match parse_json(&body) {
        Ok(value) => value,
        Err(response) => return *response,
    };
    let mut clean = match clean_body(&value) {
        Ok(clean) => clean,
        Err(rejection) => return rejected(&rejection),
    };
    let mut store = state.store();
    let existed = store.apps.contains_key(&id);
    let definition = match rollback_target(&store, &id, &mut clean) {
        Ok(Some(definition)) => definition,
        Err(version) => {
            return message(
                StatusCode::NOT_FOUND,
                &format!("App '{id}' does not exist in version {version}"),
            );
        }
        Ok(None) => match updated_definition(&store, &id, &clean, partial, patch) {
            Ok(Some(definition)) => definition,
            Ok(None) => return not_found(&id, false),
            Err(rejection) => return rejected(&rejection),
        },
    };
    let posts = vec![api_post(client, &format!("/v2/apps{id}"), &id)];
    let location = created_location(&headers, state.addr, &id);
    let result = state.deploy(
        &mut store,
        vec![Change::Upsert { id, definition }],
        force,
        |ids| faults.outcome_for(ids),
        posts,
    );
    upsert_result(result, !existed, location)
}

/// The answer to a write that may create: `{version, deploymentId}`, 201 with the
/// `Location` of what it created, else 200; or the refusal.
fn upsert_result(
    result: Result<(String, String), DeployError>,
    created: bool,
    location: Option<HeaderValue>,
) -> Response {
    match result {
        Ok((deployment_id, version)) => {
            let status = if created { StatusCode::CREATED } else { StatusCode::OK };
            let mut response = deployment_result(status, &deployment_id, &version);
            if let Some(location) = location.filter(|_| created) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
        Err(error) => deploy_error(error),
    }
}

async fn batch_put(
    State(state): Shared,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Extension(faults): Extension<DeploymentFaults>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    batch_write(state, client, faults, raw, body, false).await
}

async fn batch_patch(
    State(state): Shared,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Extension(faults): Extension<DeploymentFaults>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    batch_write(state, client, faults, raw, body, true).await
}

/// `PUT|PATCH /v2/apps` with an array: one deployment for all apps.
async fn batch_write(
    state: Arc<MarathonState>,
    client: SocketAddr,
    faults: DeploymentFaults,
    raw: Option<String>,
    body: Bytes,
    patch: bool,
) -> Response {
    let pairs = query::pairs(raw.as_deref());
    let partial = patch || query::flag(&pairs, "partialUpdate", true);
    let force = query::flag(&pairs, "force", false);
    let value = match parse_json(&body) {
        Ok(value) => value,
        Err(response) => return *response,
    };
    let Some(items) = value.as_array() else {
        return rejected(&AppRejection::InvalidJson(vec![app::ErrorDetail {
            path: "/".into(),
            errors: vec!["error.expected.jsarray".into()],
        }]));
    };
    let mut store = state.store();
    let mut changes = Vec::new();
    let mut posts = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let prefix = format!("/({index})");
        let raw_id = item.get("id").and_then(Value::as_str);
        let Some(raw_id) = raw_id else {
            return rejected(&AppRejection::InvalidJson(vec![app::ErrorDetail {
                path: format!("{prefix}/id"),
                errors: vec!["error.path.missing".into()],
            }]));
        };
        let id = app_id_from_path(raw_id);
        let mut clean = match clean_body(item) {
            Ok(clean) => clean,
            Err(rejection) => return rejected(&rejection.within(&prefix)),
        };
        // Batches do not roll back; a version in an item is ignored.
        clean.remove("version");
        let definition = match updated_definition(&store, &id, &clean, partial, patch) {
            Ok(Some(definition)) => definition,
            Ok(None) => return not_found(&id, false),
            Err(rejection) => return rejected(&rejection.within(&prefix)),
        };
        posts.push(api_post(client, "/v2/apps", &id));
        changes.push(Change::Upsert { id, definition });
    }
    match state.deploy(&mut store, changes, force, |ids| faults.outcome_for(ids), posts) {
        Ok((deployment_id, version)) => deployment_result(StatusCode::OK, &deployment_id, &version),
        Err(error) => deploy_error(error),
    }
}

// ---- GET / DELETE / POST on /v2/apps/{id}... ---------------------------------------

async fn get_app_path(State(state): Shared, Path(path): Path<String>, RawQuery(raw): RawQuery) -> Response {
    let store = state.store();
    if let Some(app_path) = path.strip_suffix("/tasks") {
        let id = app_id_from_path(app_path);
        let Some(stored) = store.apps.get(&id) else { return not_found(&id, false) };
        let rendered = state.render(&store, stored, Embed { tasks: true, ..Embed::default() });
        let tasks = rendered.get("tasks").cloned().unwrap_or_else(|| json!([]));
        return json_body(StatusCode::OK, &json!({ "tasks": tasks }));
    }
    if let Some(app_path) = path.strip_suffix("/versions") {
        let id = app_id_from_path(app_path);
        let Some(stored) = store.apps.get(&id) else { return not_found(&id, false) };
        let versions: Vec<&str> = stored.versions.iter().map(|(v, _)| v.as_str()).collect();
        return json_body(StatusCode::OK, &json!({ "versions": versions }));
    }
    if let Some((app_path, version)) = path.rsplit_once("/versions/") {
        let id = app_id_from_path(app_path);
        let Some(stored) = store.apps.get(&id) else { return not_found(&id, false) };
        return match stored.versions.iter().find(|(v, _)| v == version) {
            Some((v, definition)) => {
                let mut body = definition.clone();
                body.insert("version".into(), json!(v));
                json_body(StatusCode::OK, &Value::Object(body))
            }
            None => {
                message(StatusCode::NOT_FOUND, &format!("App '{id}' does not exist in version {version}"))
            }
        };
    }
    let id = app_id_from_path(&path);
    let Some(stored) = store.apps.get(&id) else { return not_found(&id, true) };
    let pairs = query::pairs(raw.as_deref());
    let mut embed = embed_from(&pairs);
    // The single-app GET embeds tasks and the last failure by default.
    embed.tasks = true;
    embed.last_task_failure = true;
    json_body(StatusCode::OK, &json!({ "app": state.render(&store, stored, embed) }))
}

/// `DELETE /v2/apps/{id}`, or a task kill: `{id}/tasks` and `{id}/tasks/{taskId}`
/// are the task sub-resource (an app id cannot end in `tasks`).
async fn delete_app_path(
    State(state): Shared,
    Extension(faults): Extension<DeploymentFaults>,
    Path(path): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Some(app_path) = path.strip_suffix("/tasks") {
        return tasks::kill_app_tasks(&state, &faults, app_path, None, raw.as_deref());
    }
    if let Some((app_path, task_id)) = path.rsplit_once("/tasks/") {
        return tasks::kill_app_tasks(&state, &faults, app_path, Some(task_id), raw.as_deref());
    }
    let id = app_id_from_path(&path);
    // force=true is the default of DELETE in all of 1.x.
    let force = query::flag(&query::pairs(raw.as_deref()), "force", true);
    deploy_existing(&state, &faults, &id, force, Change::Remove { id: id.clone() })
}

/// A deployment of one change to an existing app (delete, restart): 404 when the
/// app does not exist, 409 when a deployment holds it (unless forced).
fn deploy_existing(
    state: &MarathonState,
    faults: &DeploymentFaults,
    id: &str,
    force: bool,
    change: Change,
) -> Response {
    let mut store = state.store();
    if !store.apps.contains_key(id) {
        return not_found(id, false);
    }
    match state.deploy(&mut store, vec![change], force, |ids| faults.outcome_for(ids), Vec::new()) {
        Ok((deployment_id, version)) => deployment_result(StatusCode::OK, &deployment_id, &version),
        Err(error) => deploy_error(error),
    }
}

async fn post_app_path(
    State(state): Shared,
    Extension(faults): Extension<DeploymentFaults>,
    Path(path): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let Some(app_path) = path.strip_suffix("/restart") else {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    };
    let id = app_id_from_path(app_path);
    let force = query::flag(&query::pairs(raw.as_deref()), "force", false);
    deploy_existing(&state, &faults, &id, force, Change::Restart { id: id.clone() })
}

// ---- deployments, events, info ------------------------------------------------------

async fn list_deployments(State(state): Shared) -> Response {
    json_body(StatusCode::OK, &state.deployments_json())
}

async fn delete_deployment(
    State(state): Shared,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let force = query::flag(&query::pairs(raw.as_deref()), "force", false);
    match state.delete_deployment(&id, force) {
        None => message(StatusCode::NOT_FOUND, &format!("DeploymentPlan {id} does not exist")),
        Some(None) => StatusCode::ACCEPTED.into_response(),
        Some(Some((deployment_id, version))) => deployment_result(StatusCode::OK, &deployment_id, &version),
    }
}

fn frame(event_type: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {event_type}\ndata: {data}\n\n"))
}

async fn events(
    State(state): Shared,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    if accept != Some("text/event-stream") {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let mut wanted = query::all(&query::pairs(raw.as_deref()), "event_type");
    if state.unfiltered_events.load(std::sync::atomic::Ordering::Relaxed) {
        wanted.clear();
    }
    // HttpEventStreamHandleActor subscribes, then publishes `event_stream_attached` on
    // the bus (every stream sees it); `event_stream_detached` when it stops. The
    // filter applies per stream (HttpEventSSEHandle.subscribed).
    let receiver = state.subscribe();
    let remote = client.ip().to_string();
    state.emit("event_stream_attached", json!({ "remoteAddress": remote }));
    let detach = DetachOnDrop { state: Arc::downgrade(&state), remote };
    let wants = move |event_type: &str| wanted.is_empty() || wanted.iter().any(|w| w == event_type);
    let frames = BroadcastStream::new(receiver).filter_map(move |event| {
        let _attached = &detach;
        let out = match event {
            Ok(event) if wants(event.event_type) => Some(frame(event.event_type, &event.data)),
            _ => None,
        };
        async move { out }
    });
    let mut shutdown = state.shutdown.clone();
    let stopped = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    let stream = frames.take_until(stopped).map(Ok::<Bytes, Infallible>);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache, no-store, must-revalidate")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Publishes `event_stream_detached` when an event stream goes away.
struct DetachOnDrop {
    state: std::sync::Weak<MarathonState>,
    remote: String,
}

impl Drop for DetachOnDrop {
    fn drop(&mut self) {
        if let Some(state) = self.state.upgrade() {
            state.emit("event_stream_detached", json!({ "remoteAddress": self.remote }));
        }
    }
}

async fn info(State(state): Shared) -> Response {
    let leader = state.addr.to_string();
    json_body(
        StatusCode::OK,
        &json!({
            "name": "marathon",
            "version": "1.10.26",
            "buildref": "mesosync-sandbox",
            "elected": true,
            "leader": leader,
            "frameworkId": "mesosync-sandbox-0000",
            "marathon_config": {
                "features": [],
                "framework_name": "marathon",
                "hostname": state.addr.ip().to_string(),
                "local_port_min": ports::RANGE.0,
                "local_port_max": ports::RANGE.1,
                "mesos_role": "*",
                "webui_url": format!("http://{leader}"),
            },
            "zookeeper_config": {},
            "http_config": {"http_port": state.addr.port()},
        }),
    )
}

async fn metrics(State(state): Shared) -> Response {
    json_body(StatusCode::OK, &state.metrics_json())
}

async fn leader(State(state): Shared) -> Response {
    json_body(StatusCode::OK, &json!({"leader": state.addr.to_string()}))
}
