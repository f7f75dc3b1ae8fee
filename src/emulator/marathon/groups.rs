//! Marathon's `/v2/groups` (1.10 `GroupsResource`), as far as the emulator models
//! groups: reading the tree that app ids imply (with the apps as GET reports them),
//! and group-level `dependencies` and `apps` through PUT / POST, deleting a group with
//! its apps. Nested `groups` in an update and `scaleBy` are not modelled (422 says so).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::app::{self, AppRejection, ErrorDetail};
use super::state::{Change, MarathonState, Store};
use super::{
    Shared, api_post, clean_body, created_location, deploy_error, deployment_result, json_body, message,
    parse_json, rejected, updated_definition, upsert_result,
};
use crate::emulator::controls::DeploymentFaults;
use crate::emulator::query;

/// Every group that exists: the root, the parents of every app, and the groups
/// changed through `/v2/groups`.
fn all_groups(store: &Store) -> BTreeSet<String> {
    let mut groups: BTreeSet<String> = BTreeSet::from(["/".to_owned()]);
    let mut add_with_parents = |mut group: String| {
        while groups.insert(group.clone()) && group != "/" {
            group = app::parent_group(&group);
        }
    };
    for id in store.apps.keys() {
        add_with_parents(app::parent_group(id));
    }
    for id in store.groups.keys() {
        add_with_parents(id.clone());
    }
    groups
}

/// One group as `GroupInfo` (fields in the RAML order): its apps, sub-groups,
/// dependencies, version.
fn group_json(state: &MarathonState, store: &Store, groups: &BTreeSet<String>, id: &str) -> Value {
    let apps: Vec<Value> = store
        .apps
        .values()
        .filter(|a| {
            app::parent_group(a.definition.get("id").and_then(Value::as_str).unwrap_or_default()) == id
        })
        .map(|a| Value::Object(a.definition_with_version(true)))
        .collect();
    let children: Vec<Value> = groups
        .iter()
        .filter(|g| g.as_str() != "/" && app::parent_group(g) == id)
        .map(|g| group_json(state, store, groups, g))
        .collect();
    let stored = store.groups.get(id);
    let version = stored.map(|g| g.version.clone()).or_else(|| state.last_version(store)).unwrap_or_default();
    json!({
        "id": id,
        "apps": apps,
        "pods": [],
        "groups": children,
        "dependencies": stored.map(|g| g.dependencies.clone()).unwrap_or_default(),
        "version": version,
        "enforceRole": false,
    })
}

/// `GET /v2/groups` and `GET /v2/groups/{id}`.
pub(super) async fn get_root(State(state): Shared) -> Response {
    get_group_at(&state, "/")
}

pub(super) async fn get_group(State(state): Shared, Path(path): Path<String>) -> Response {
    get_group_at(&state, &app::absolute_id(&path, "/"))
}

fn get_group_at(state: &MarathonState, id: &str) -> Response {
    let store = state.store();
    let groups = all_groups(&store);
    if !groups.contains(id) {
        return unknown_group(id);
    }
    json_body(StatusCode::OK, &group_json(state, &store, &groups, id))
}

fn unknown_group(id: &str) -> Response {
    message(StatusCode::NOT_FOUND, &format!("Group '{id}' does not exist"))
}

/// What a group write needs besides its path and body.
pub(super) struct GroupWrite {
    state: Arc<MarathonState>,
    client: SocketAddr,
    faults: DeploymentFaults,
    headers: HeaderMap,
    force: bool,
}

pub(super) async fn put_group(
    State(state): Shared,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Extension(faults): Extension<DeploymentFaults>,
    Path(path): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let force = query::flag(&query::pairs(raw.as_deref()), "force", false);
    write_group(
        GroupWrite { state, client, faults, headers, force },
        &app::absolute_id(&path, "/"),
        &body,
        false,
    )
}

pub(super) async fn post_group(
    State(state): Shared,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Extension(faults): Extension<DeploymentFaults>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let force = query::flag(&query::pairs(raw.as_deref()), "force", false);
    let id = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("id").and_then(Value::as_str).map(|id| app::absolute_id(id, "/")))
        .unwrap_or_else(|| "/".to_owned());
    write_group(GroupWrite { state, client, faults, headers, force }, &id, &body, true)
}

/// PUT (update or create) or POST (create only) of one group: its dependencies and,
/// when `apps` is given, exactly those apps directly in it (others there are removed,
/// as a group update replaces the group's app set).
fn write_group(write: GroupWrite, id: &str, body: &Bytes, create_only: bool) -> Response {
    let GroupWrite { state, client, faults, headers, force } = write;
    let value = match parse_json(body) {
        Ok(value) => value,
        Err(response) => return *response,
    };
    let Some(update) = value.as_object() else {
        return rejected(&AppRejection::InvalidJson(vec![ErrorDetail {
            path: "/".into(),
            errors: vec!["error.expected.jsobject".into()],
        }]));
    };
    if update.contains_key("groups") || update.contains_key("scaleBy") {
        return message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "mesosync sandbox: nested groups and scaleBy in a group update are not modelled",
        );
    }
    let mut store = state.store();
    let exists = all_groups(&store).contains(id);
    if create_only && exists {
        return message(
            StatusCode::CONFLICT,
            &format!("Group {id} is already created. Use PUT to change this group."),
        );
    }
    let (changes, posts) = match group_changes(&store, id, update, client) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let location = created_location(&headers, state.addr, id);
    let result = state.deploy(&mut store, changes, force, |ids| faults.outcome_for(ids), posts);
    upsert_result(result, !exists, location)
}

/// The changes of a group update: the group's dependencies (relative ids resolved
/// against the group's parent), upserts of the listed apps, removals of the others.
fn group_changes(
    store: &Store,
    id: &str,
    update: &Map<String, Value>,
    client: SocketAddr,
) -> Result<(Vec<Change>, Vec<super::ApiPost>), Box<Response>> {
    let base = app::parent_group(id);
    let dependencies: Vec<String> = match update.get("dependencies") {
        Some(Value::Array(items)) => {
            items.iter().filter_map(Value::as_str).map(|d| app::absolute_id(d, &base)).collect()
        }
        Some(_) => {
            return Err(Box::new(rejected(&AppRejection::InvalidJson(vec![ErrorDetail {
                path: "/dependencies".into(),
                errors: vec!["error.expected.jsarray".into()],
            }]))));
        }
        None => store.groups.get(id).map(|g| g.dependencies.clone()).unwrap_or_default(),
    };
    let mut changes = vec![Change::Group { id: id.to_owned(), dependencies }];
    let mut posts = Vec::new();
    let Some(apps) = update.get("apps") else { return Ok((changes, posts)) };
    let Some(apps) = apps.as_array() else {
        return Err(Box::new(rejected(&AppRejection::InvalidJson(vec![ErrorDetail {
            path: "/apps".into(),
            errors: vec!["error.expected.jsarray".into()],
        }]))));
    };
    let mut listed = Vec::new();
    for (index, item) in apps.iter().enumerate() {
        let prefix = format!("/apps({index})");
        let Some(raw_id) = item.get("id").and_then(Value::as_str) else {
            return Err(Box::new(rejected(&AppRejection::InvalidJson(vec![ErrorDetail {
                path: format!("{prefix}/id"),
                errors: vec!["error.path.missing".into()],
            }]))));
        };
        let app_id = app::absolute_id(raw_id, id);
        let clean = clean_body(item).map_err(|r| Box::new(rejected(&r.within(&prefix))))?;
        let definition = match updated_definition(store, &app_id, &clean, false, false) {
            Ok(Some(definition)) => definition,
            Ok(None) => {
                return Err(Box::new(message(
                    StatusCode::NOT_FOUND,
                    &format!("App '{app_id}' does not exist"),
                )));
            }
            Err(rejection) => return Err(Box::new(rejected(&rejection.within(&prefix)))),
        };
        posts.push(api_post(client, &format!("/v2/groups{id}"), &app_id));
        listed.push(app_id.clone());
        changes.push(Change::Upsert { id: app_id, definition });
    }
    for existing in store.apps.keys() {
        if app::parent_group(existing) == id && !listed.contains(existing) {
            changes.push(Change::Remove { id: existing.clone() });
        }
    }
    Ok((changes, posts))
}

/// `DELETE /v2/groups/{id}`: every app under the group goes, in one deployment.
pub(super) async fn delete_group(
    State(state): Shared,
    Extension(faults): Extension<DeploymentFaults>,
    Path(path): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let id = app::absolute_id(&path, "/");
    let force = query::flag(&query::pairs(raw.as_deref()), "force", false);
    let mut store = state.store();
    if !all_groups(&store).contains(&id) {
        return unknown_group(&id);
    }
    let inside = |app_id: &str| app_id.starts_with(&format!("{id}/"));
    let mut changes: Vec<Change> =
        store.apps.keys().filter(|a| inside(a)).map(|a| Change::Remove { id: a.clone() }).collect();
    let nested: Vec<String> = store.groups.keys().filter(|g| *g == &id || inside(g)).cloned().collect();
    for group in nested {
        store.groups.remove(&group);
    }
    if changes.is_empty() {
        changes.push(Change::Group { id: id.clone(), dependencies: Vec::new() });
    }
    let result = state.deploy(&mut store, changes, force, |ids| faults.outcome_for(ids), Vec::new());
    // A group without apps left is gone (the empty-group placeholder included).
    store.groups.remove(&id);
    match result {
        Ok((deployment_id, version)) => deployment_result(StatusCode::OK, &deployment_id, &version),
        Err(error) => deploy_error(error),
    }
}
