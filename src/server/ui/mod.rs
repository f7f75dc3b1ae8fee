//! The web dashboard, served by `mesosync run`'s own listener at `/` (same bind rules:
//! 127.0.0.1 unless told otherwise). Server-rendered HTML ([`pages`], maud) with one
//! small script and one stylesheet embedded in the binary: no CDN, no front-end build.
//!
//! | path | page |
//! |---|---|
//! | `/` | overview: revision, last reconcile, counts by sync state, leadership, errors |
//! | `/objects` | apps and jobs, filtered (`kind`, `state`, `q`), sorted (`sort`, `dir`), [`PAGE_SIZE`] a page |
//! | `/object?kind=app&id=…` | one object: live vs desired with file:line, why held, writes, next runs |
//! | `/history` | the last reconciles |
//! | `/ui/generation` | a number that changes with the status (the script polls it, then swaps the changed parts) |
//! | `POST /ui/actions/{reconcile,refresh}` | [`actions`], off unless `--ui-actions` |
//!
//! Reads the [`StatusStore`] only, under its lock for the time it takes to copy one
//! page of rows: a page costs the same with 15 objects or 15,000. Everything shown
//! comes from the status already masked (`diff::mask`); the tests check that no secret
//! value reaches a page.

pub mod actions;
mod pages;

use std::cmp::Ordering;
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use self::actions::{Action, Actions};
use crate::health::Health;
use crate::model::{ObjectKind, ObjectRef};
use crate::status::history::{ObjectDetail, sync_word};
use crate::status::{ObjectStatus, Status, StatusStore};

/// Rows on one page of the objects table.
pub const PAGE_SIZE: usize = 100;

/// The sync states, as the filter and the badges name them.
pub const SYNC_STATES: [&str; 5] = ["synced", "out-of-sync", "suspended", "blocked", "failed"];

/// What the dashboard serves.
#[derive(Clone, Debug)]
pub struct Ui {
    /// The controller's status.
    pub status: StatusStore,
    /// The actions, when enabled.
    pub actions: Option<Actions>,
}

/// The dashboard's routes.
pub fn routes(ui: Ui) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/objects", get(objects))
        .route("/object", get(object))
        .route("/history", get(history))
        .route("/ui/generation", get(generation))
        .route("/ui/app.css", get(stylesheet))
        .route("/ui/app.js", get(script))
        .route("/ui/actions/reconcile", post(reconcile_now))
        .route("/ui/actions/refresh", post(refresh_now))
        .layer(DefaultBodyLimit::max(actions::MAX_BODY))
        .with_state(Arc::new(ui))
}

/// Whether `path` is one of the dashboard's (a webhook may not take it: the routes would
/// overlap).
pub fn owns_path(path: &str) -> bool {
    let path = path.trim_end_matches('/');
    path.is_empty() || ["/objects", "/object", "/history", "/ui"].contains(&path) || path.starts_with("/ui/")
}

/// The query of the objects table.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct ObjectQuery {
    /// `app` or `job`.
    #[serde(default)]
    pub kind: Option<String>,
    /// One of [`SYNC_STATES`].
    #[serde(default)]
    pub state: Option<String>,
    /// A health status (`Healthy`, `Degraded`, …).
    #[serde(default)]
    pub health: Option<String>,
    /// Part of the id (case-insensitive).
    #[serde(default)]
    pub q: Option<String>,
    /// `id` (default), `kind`, `state` or `source`.
    #[serde(default)]
    pub sort: Option<String>,
    /// `asc` (default) or `desc`.
    #[serde(default)]
    pub dir: Option<String>,
    /// 1-based page.
    #[serde(default)]
    pub page: Option<usize>,
}

impl ObjectQuery {
    fn kind(&self) -> Option<ObjectKind> {
        self.kind.as_deref().and_then(ObjectKind::from_noun)
    }

    fn text(&self) -> Option<String> {
        self.q.as_deref().map(str::trim).filter(|q| !q.is_empty()).map(str::to_lowercase)
    }

    fn state(&self) -> Option<&str> {
        self.state.as_deref().filter(|s| SYNC_STATES.contains(s))
    }

    fn health(&self) -> Option<Health> {
        Health::ALL.into_iter().find(|h| Some(h.as_str()) == self.health.as_deref())
    }

    fn sort(&self) -> &str {
        match self.sort.as_deref() {
            Some(s @ ("kind" | "state" | "health" | "source")) => s,
            _ => "id",
        }
    }

    fn descending(&self) -> bool {
        self.dir.as_deref() == Some("desc")
    }

    /// This query as a URL query string, with `change` applied (`("page", "2")`,
    /// `("sort", "state")`; an empty value drops the key).
    pub fn href(&self, change: &[(&str, &str)]) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        let fields = [
            ("kind", self.kind.clone()),
            ("state", self.state.clone()),
            ("health", self.health.clone()),
            ("q", self.q.clone()),
            ("sort", self.sort.clone()),
            ("dir", self.dir.clone()),
            ("page", self.page.map(|p| p.to_string())),
        ];
        for (key, value) in fields {
            let value = change.iter().find(|(k, _)| *k == key).map(|(_, v)| v.to_string()).or(value);
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                pairs.push((key, value));
            }
        }
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            out.append_pair(k, &v);
        }
        format!("/objects?{}", out.finish())
    }
}

/// One row of the objects table.
#[derive(Clone, Debug)]
pub struct Row {
    /// The object and its state.
    pub status: ObjectStatus,
    /// What the last plan said of it.
    pub detail: Option<ObjectDetail>,
}

/// One page of the objects table.
#[derive(Clone, Debug)]
pub struct Selection {
    /// The rows of the page.
    pub rows: Vec<Row>,
    /// Objects matching the filters.
    pub matching: usize,
    /// Objects in all.
    pub total: usize,
    /// The page shown (1-based) and the number of pages.
    pub page: usize,
    /// Pages in all.
    pub pages: usize,
}

/// The page of objects `query` asks for: filtered, sorted, cut. Only the page's rows are
/// copied; sorting moves indices.
pub fn select(status: &Status, query: &ObjectQuery) -> Selection {
    let details = &status.dashboard.details;
    let (kind, state, health, text) = (query.kind(), query.state(), query.health(), query.text());
    let mut picked: Vec<&ObjectStatus> = status
        .objects
        .iter()
        .filter(|o| kind.is_none_or(|k| o.object.kind == k))
        .filter(|o| state.is_none_or(|s| sync_word(&o.state) == s))
        .filter(|o| health.is_none_or(|h| o.health.as_ref().map(|x| x.status) == Some(h)))
        .filter(|o| text.as_deref().is_none_or(|t| contains_lowercase(&o.object.id, t)))
        .collect();
    let source = |o: &ObjectStatus| details.get(&o.object).and_then(|d| d.source.clone());
    let by_id = |a: &&ObjectStatus, b: &&ObjectStatus| a.object.cmp(&b.object);
    match query.sort() {
        "kind" => picked.sort_by(|a, b| a.object.kind.cmp(&b.object.kind).then_with(|| by_id(a, b))),
        "state" => picked.sort_by(|a, b| state_rank(a).cmp(&state_rank(b)).then_with(|| by_id(a, b))),
        "health" => picked.sort_by(|a, b| health_rank(a).cmp(&health_rank(b)).then_with(|| by_id(a, b))),
        "source" => picked.sort_by(|a, b| match (source(a), source(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => by_id(a, b),
        }),
        _ => picked.sort_by(by_id),
    }
    if query.descending() {
        picked.reverse();
    }
    let matching = picked.len();
    let pages = matching.div_ceil(PAGE_SIZE).max(1);
    let page = query.page.unwrap_or(1).clamp(1, pages);
    let rows = picked
        .into_iter()
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .map(|o| Row { status: o.clone(), detail: details.get(&o.object).cloned() })
        .collect();
    Selection { rows, matching, total: status.objects.len(), page, pages }
}

fn contains_lowercase(haystack: &str, needle_lower: &str) -> bool {
    if haystack.is_ascii() {
        let (h, n) = (haystack.as_bytes(), needle_lower.as_bytes());
        n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
    } else {
        haystack.to_lowercase().contains(needle_lower)
    }
}

/// Worst first: failed, blocked, out of sync, suspended, synced.
fn state_rank(o: &ObjectStatus) -> usize {
    let order = ["failed", "blocked", "out-of-sync", "suspended", "synced"];
    order.iter().position(|s| *s == sync_word(&o.state)).unwrap_or(order.len())
}

/// Worst first: Degraded, Missing, Unknown, Progressing, Suspended, Healthy, none.
fn health_rank(o: &ObjectStatus) -> usize {
    let order = [
        Health::Degraded,
        Health::Missing,
        Health::Unknown,
        Health::Progressing,
        Health::Suspended,
        Health::Healthy,
    ];
    o.health.as_ref().and_then(|h| order.iter().position(|x| *x == h.status)).unwrap_or(order.len())
}

/// Counts by health, in [`Health::ALL`] order (objects without a health are not counted).
pub fn health_counts(status: &Status) -> [usize; 6] {
    let mut counts = [0; 6];
    for h in status.objects.iter().filter_map(|o| o.health.as_ref()) {
        if let Some(i) = Health::ALL.iter().position(|x| *x == h.status) {
            counts[i] += 1;
        }
    }
    counts
}

/// Counts by sync state, in [`SYNC_STATES`] order, and by kind, in [`ObjectKind::ALL`]
/// order (apps, jobs).
pub fn counts(status: &Status) -> ([usize; 5], [usize; ObjectKind::ALL.len()]) {
    let mut states = [0; 5];
    let mut kinds = [0; ObjectKind::ALL.len()];
    for o in &status.objects {
        if let Some(i) = SYNC_STATES.iter().position(|s| *s == sync_word(&o.state)) {
            states[i] += 1;
        }
        if let Some(i) = ObjectKind::ALL.iter().position(|k| *k == o.object.kind) {
            kinds[i] += 1;
        }
    }
    (states, kinds)
}

/// The query of the object page.
#[derive(Clone, Debug, Deserialize)]
pub struct ObjectKey {
    /// `app` or `job`.
    pub kind: String,
    /// The app id or job name.
    pub id: String,
}

impl ObjectKey {
    fn object(&self) -> Option<ObjectRef> {
        match self.kind.as_str() {
            "app" => Some(ObjectRef::app(&self.id)),
            "job" => Some(ObjectRef::job(&self.id)),
            _ => None,
        }
    }
}

/// A page with the headers every dashboard page carries: no caching, no framing, no
/// script or style from anywhere but here.
fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

fn can_refresh(ui: &Ui) -> Option<bool> {
    ui.actions.as_ref().map(Actions::can_refresh)
}

async fn overview(State(ui): State<Arc<Ui>>) -> Response {
    let body = ui.status.read(|s| pages::overview(s, can_refresh(&ui)));
    html(StatusCode::OK, body)
}

async fn objects(State(ui): State<Arc<Ui>>, query: Result<Query<ObjectQuery>, QueryRejection>) -> Response {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let (selection, status) = ui.status.read(|s| (select(s, &query), pages::Frame::of(s)));
    html(StatusCode::OK, pages::objects(&status, &query, &selection))
}

async fn object(State(ui): State<Arc<Ui>>, key: Result<Query<ObjectKey>, QueryRejection>) -> Response {
    let Some(object) = key.ok().and_then(|Query(k)| k.object()) else {
        return html(StatusCode::BAD_REQUEST, pages::message("Which object?", "Give ?kind=app|job&id=…"));
    };
    let found = ui.status.read(|s| {
        // The status lists objects in order (they come out of the report's map).
        let status = s.objects.binary_search_by(|o| o.object.cmp(&object)).ok().map(|i| s.objects[i].clone());
        let detail = s.dashboard.details.get(&object).cloned();
        let writes: Vec<_> = s.dashboard.writes_to(&object).take(20).cloned().collect();
        (pages::Frame::of(s), status, detail, writes)
    });
    let (frame, status, detail, writes) = found;
    let code = if status.is_some() || !writes.is_empty() { StatusCode::OK } else { StatusCode::NOT_FOUND };
    html(code, pages::object(&frame, &object, status.as_ref(), detail.as_ref(), &writes))
}

async fn history(State(ui): State<Arc<Ui>>) -> Response {
    let body = ui.status.read(pages::history);
    html(StatusCode::OK, body)
}

async fn generation(State(ui): State<Arc<Ui>>) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], ui.status.generation().to_string()).into_response()
}

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", include_str!("assets/app.css"))
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", include_str!("assets/app.js"))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

async fn reconcile_now(State(ui): State<Arc<Ui>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    act(&ui, Action::Reconcile, &headers, &body)
}

async fn refresh_now(State(ui): State<Arc<Ui>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    act(&ui, Action::Refresh, &headers, &body)
}

fn act(ui: &Ui, action: Action, headers: &HeaderMap, body: &[u8]) -> Response {
    let (code, words) = match &ui.actions {
        None => {
            (StatusCode::FORBIDDEN, "actions are off (start `mesosync run` with --ui-actions)".to_string())
        }
        Some(actions) => actions.run(action, headers, form_token(body).as_deref()),
    };
    let mut response = (code, format!("{words}\n")).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The `token` field of an urlencoded body (anything else in it is ignored).
fn form_token(body: &[u8]) -> Option<String> {
    form_urlencoded::parse(body).find(|(k, _)| k == "token").map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::ObjectState;

    fn status(n: usize) -> Status {
        let objects = (0..n)
            .map(|i| ObjectStatus {
                object: if i % 3 == 0 {
                    ObjectRef::job(format!("job-{i}"))
                } else {
                    ObjectRef::app(format!("/g/app-{i}"))
                },
                state: if i % 10 == 0 { ObjectState::Drifted { changes: 1 } } else { ObjectState::Synced },
                retry: None,
                health: None,
            })
            .collect();
        Status { objects, ..Status::default() }
    }

    #[test]
    fn a_webhook_cannot_take_a_dashboard_path() {
        let secret = || crate::server::webhook::Secret::new("s").unwrap();
        for path in ["/", "/objects", "/history/", "/ui/app.js"] {
            assert!(crate::server::webhook::Webhook::new(path, secret(), "main", || {}).is_err(), "{path}");
        }
        assert!(crate::server::webhook::Webhook::new("/hooks/git", secret(), "main", || {}).is_ok());
    }

    #[test]
    fn filters_sort_and_pages() {
        let s = status(1000);
        let all = select(&s, &ObjectQuery::default());
        assert_eq!((all.matching, all.total, all.pages, all.rows.len()), (1000, 1000, 10, PAGE_SIZE));
        let apps = select(&s, &ObjectQuery { kind: Some("app".into()), ..Default::default() });
        assert_eq!(apps.matching, 666);
        let drifted = select(&s, &ObjectQuery { state: Some("out-of-sync".into()), ..Default::default() });
        assert_eq!(drifted.matching, 100);
        let found = select(&s, &ObjectQuery { q: Some(" APP-77 ".into()), ..Default::default() });
        let ids: Vec<_> = found.rows.iter().map(|r| r.status.object.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "/g/app-77",
                "/g/app-770",
                "/g/app-772",
                "/g/app-773",
                "/g/app-775",
                "/g/app-776",
                "/g/app-778",
                "/g/app-779"
            ]
        );
        let worst = select(&s, &ObjectQuery { sort: Some("state".into()), ..Default::default() });
        assert_eq!(sync_word(&worst.rows[0].status.state), "out-of-sync");
        let last =
            select(&s, &ObjectQuery { page: Some(99), dir: Some("desc".into()), ..Default::default() });
        assert_eq!(last.page, 10);
        let q = ObjectQuery { q: Some("a b&c".into()), page: Some(3), ..Default::default() };
        assert_eq!(q.href(&[("page", "")]), "/objects?q=a+b%26c");
        assert_eq!(counts(&s), ([900, 100, 0, 0, 0], [666, 334]));
        let overview = pages::overview(&s, None);
        let kinds = r#"<a href="/objects?kind=app">666 apps</a> · <a href="/objects?kind=job">334 jobs</a> · manifests in "#;
        assert!(overview.contains(kinds), "{overview}");
    }
}
