//! Marathon's REST API (`/v2/apps`, `/v2/deployments`, `/v2/events`, `/v2/info`,
//! `/ping`), as typed calls over [`HttpClient`]. Apps travel as raw JSON: the client
//! neither fills defaults nor interprets definitions (that is `normalize`'s job) and
//! never decides whether to write (that is `plan`'s).
//!
//! Writes are not retried on transient failures when they are not idempotent (POST
//! create): the caller (`apply`) knows how to tell "my earlier attempt landed" from "an
//! unowned app holds this id".

use std::collections::VecDeque;
use std::pin::Pin;

use futures::{Stream, StreamExt};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ClientError;
use super::http::{HttpClient, HttpConfig, Request, encode_segment};
use crate::model::live::{self, LiveObject};
use crate::system::marathon::Marathon;

/// What a Marathon write answered: the deployment it started and the new version.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteResult {
    /// The deployment started by the write (`Marathon-Deployment-Id`, `deploymentId`
    /// or `deployments[0].id`); `None` if Marathon reported none.
    pub deployment_id: Option<String>,
    /// The app version the write produced, when reported.
    pub version: Option<String>,
}

/// One entry of `GET /v2/deployments`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// Deployment id.
    pub id: String,
    /// Target version.
    #[serde(default)]
    pub version: String,
    /// Apps it touches.
    #[serde(default)]
    pub affected_apps: Vec<String>,
    /// 1-based current step.
    #[serde(default)]
    pub current_step: u32,
    /// Number of steps.
    #[serde(default)]
    pub total_steps: u32,
}

/// An event of Marathon's `/v2/events` stream, typed where mesosync cares.
#[derive(Clone, Debug, PartialEq)]
pub enum MarathonEvent {
    /// `event_stream_attached`: the subscription is live; every later event is seen.
    Attached,
    /// `deployment_success` for this deployment id.
    DeploymentSuccess {
        /// Deployment id.
        id: String,
    },
    /// `deployment_failed` (failure or cancellation) for this deployment id.
    DeploymentFailed {
        /// Deployment id.
        id: String,
    },
    /// `deployment_info`: a deployment started or moved on.
    DeploymentInfo {
        /// Deployment id.
        id: String,
    },
    /// `api_post_event`: someone wrote an app definition (live drift trigger).
    ApiPost {
        /// The app id of the definition written, if present.
        app_id: Option<String>,
    },
    /// Any other event, as received.
    Other {
        /// The `event:` name.
        event_type: String,
        /// The `data:` JSON (or a string if it was not JSON).
        data: Value,
    },
}

impl MarathonEvent {
    /// The event type it was sent as.
    pub fn event_type(&self) -> &str {
        match self {
            MarathonEvent::Attached => "event_stream_attached",
            MarathonEvent::DeploymentSuccess { .. } => "deployment_success",
            MarathonEvent::DeploymentFailed { .. } => "deployment_failed",
            MarathonEvent::DeploymentInfo { .. } => "deployment_info",
            MarathonEvent::ApiPost { .. } => "api_post_event",
            MarathonEvent::Other { event_type, .. } => event_type,
        }
    }

    /// Build an event from one SSE frame.
    pub fn from_frame(event_type: &str, data: &str) -> Self {
        let value: Value = serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.to_string()));
        let deployment_id = || {
            value
                .get("id")
                .and_then(Value::as_str)
                .or_else(|| value.pointer("/plan/id").and_then(Value::as_str))
                .map(String::from)
        };
        let kind = if event_type.is_empty() {
            value.get("eventType").and_then(Value::as_str).unwrap_or("message").to_string()
        } else {
            event_type.to_string()
        };
        match kind.as_str() {
            "event_stream_attached" => MarathonEvent::Attached,
            "deployment_success" | "deployment_failed" | "deployment_info" => match deployment_id() {
                Some(id) if kind == "deployment_success" => MarathonEvent::DeploymentSuccess { id },
                Some(id) if kind == "deployment_failed" => MarathonEvent::DeploymentFailed { id },
                Some(id) => MarathonEvent::DeploymentInfo { id },
                None => MarathonEvent::Other { event_type: kind, data: value },
            },
            "api_post_event" => MarathonEvent::ApiPost {
                app_id: value.pointer("/appDefinition/id").and_then(Value::as_str).map(String::from),
            },
            _ => MarathonEvent::Other { event_type: kind, data: value },
        }
    }
}

/// A stream of events; it ends when the connection does. Reconnecting is the caller's
/// business (and it must re-list, since events were missed meanwhile).
pub type EventStream = Pin<Box<dyn Stream<Item = Result<MarathonEvent, ClientError>> + Send>>;

/// Splits a `text/event-stream` byte stream into `(event, data)` frames.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    event: String,
    data: Vec<String>,
}

impl SseParser {
    /// Feed bytes; returns the frames completed by them (a blank line ends a frame).
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<(String, String)> {
        self.buf.extend_from_slice(chunk);
        let mut frames = Vec::new();
        while let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
            let raw: Vec<u8> = self.buf.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&raw);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !self.data.is_empty() || !self.event.is_empty() {
                    frames.push((std::mem::take(&mut self.event), self.data.join("\n")));
                    self.data.clear();
                }
                continue;
            }
            if line.starts_with(':') {
                continue; // comment / keep-alive
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line, ""),
            };
            match field {
                "event" => self.event = value.to_string(),
                "data" => self.data.push(value.to_string()),
                _ => {}
            }
        }
        frames
    }
}

/// A Marathon API client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct MarathonClient {
    http: HttpClient,
}

/// `/v2/apps/<id>` for an app id (relative ids are made absolute).
fn app_path(id: &str) -> String {
    let segments: Vec<String> = id.split('/').filter(|s| !s.is_empty()).map(encode_segment).collect();
    format!("/v2/apps/{}", segments.join("/"))
}

impl MarathonClient {
    /// A client for the Marathon(s) at `config.urls`.
    pub fn new(config: &HttpConfig) -> Result<Self, ClientError> {
        Ok(MarathonClient { http: HttpClient::new("marathon", config)? })
    }

    /// The HTTP layer (base URLs, failover state).
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// All apps, with ONE `GET /v2/apps?embed=apps.lastTaskFailure`, optionally
    /// narrowed server-side with a label selector (`MESOSYNC_OWNER==prod`). Marathon
    /// adds the task counts and `deployments` whatever `embed` says (1.4–1.10
    /// `AppsResource.index`: `+ Embed.Counts + Embed.Deployments`); the last task
    /// failure, which health reads ([`crate::health::marathon`]), only when asked.
    pub async fn list_apps(&self, label_selector: Option<&str>) -> Result<Vec<LiveObject>, ClientError> {
        let mut req = Request::new(Method::GET, "/v2/apps").query("embed", "apps.lastTaskFailure");
        if let Some(sel) = label_selector {
            req = req.query("label", sel);
        }
        let body = self.http.send(&req).await?.body;
        self.http.decoded(&req, live::split_apps(body, &Marathon))
    }

    /// One app, or `None` if Marathon says it does not exist.
    pub async fn get_app(&self, id: &str) -> Result<Option<Value>, ClientError> {
        #[derive(Deserialize)]
        struct One {
            app: Value,
        }
        match self.http.send_json::<One>(&Request::new(Method::GET, app_path(id))).await {
            Ok(one) => Ok(Some(one.app)),
            Err(ClientError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /v2/apps`. An existing id is [`ClientError::AlreadyExists`]. Not retried
    /// on transient failures (see the module docs).
    pub async fn create_app(&self, body: &Value) -> Result<WriteResult, ClientError> {
        let req = Request::new(Method::POST, "/v2/apps").json(body);
        let resp = self.http.send(&req).await?;
        let header_id =
            resp.headers.get("Marathon-Deployment-Id").and_then(|v| v.to_str().ok()).map(String::from);
        let value: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
        let body_id = value.pointer("/deployments/0/id").and_then(Value::as_str).map(String::from);
        Ok(WriteResult {
            deployment_id: header_id.or(body_id),
            version: value.get("version").and_then(Value::as_str).map(String::from),
        })
    }

    /// `PUT /v2/apps/{id}?partialUpdate=false` with the full definition (creates the
    /// app if missing). `force` overrides a deployment lock.
    pub async fn update_app(&self, id: &str, body: &Value, force: bool) -> Result<WriteResult, ClientError> {
        let mut req = Request::new(Method::PUT, app_path(id)).query("partialUpdate", "false").json(body);
        if force {
            req = req.query("force", "true");
        }
        self.write(&req).await
    }

    /// `PUT /v2/apps/{id}` with `{"instances": n}` only: a scale, no restart.
    pub async fn scale_app(&self, id: &str, instances: u64, force: bool) -> Result<WriteResult, ClientError> {
        let body = json!({ "instances": instances });
        let mut req = Request::new(Method::PUT, app_path(id)).json(&body);
        if force {
            req = req.query("force", "true");
        }
        self.write(&req).await
    }

    /// `PUT /v2/apps/{id}` with a body as given (a plan's scale body), no query.
    pub async fn put_app_raw(&self, id: &str, body: &Value, force: bool) -> Result<WriteResult, ClientError> {
        let mut req = Request::new(Method::PUT, app_path(id)).json(body);
        if force {
            req = req.query("force", "true");
        }
        self.write(&req).await
    }

    /// `DELETE /v2/apps/{id}`. A missing app is [`ClientError::NotFound`].
    pub async fn delete_app(&self, id: &str) -> Result<WriteResult, ClientError> {
        self.write(&Request::new(Method::DELETE, app_path(id))).await
    }

    /// Running deployments.
    pub async fn list_deployments(&self) -> Result<Vec<Deployment>, ClientError> {
        self.http.send_json(&Request::new(Method::GET, "/v2/deployments")).await
    }

    /// `DELETE /v2/deployments/{id}`: without `force` a revert deployment (its id is
    /// returned), with `force` a plain cancel.
    pub async fn delete_deployment(&self, id: &str, force: bool) -> Result<WriteResult, ClientError> {
        let mut req = Request::new(Method::DELETE, format!("/v2/deployments/{}", encode_segment(id)));
        if force {
            req = req.query("force", "true");
        }
        self.write(&req).await
    }

    /// Subscribe to `/v2/events` (optionally only these event types). The first event
    /// is normally [`MarathonEvent::Attached`].
    ///
    /// The types are filtered here as well: Marathon before 1.3.7 ignores `event_type`
    /// and sends every task and health event, which must not reach the caller (a
    /// controller would reconcile on each). Frames of other types are dropped before
    /// their JSON is parsed.
    pub async fn events(&self, event_types: &[&str]) -> Result<EventStream, ClientError> {
        let mut req = Request::new(Method::GET, "/v2/events");
        for t in event_types {
            req = req.query("event_type", *t);
        }
        let wanted: Vec<String> = event_types.iter().map(|t| (*t).to_owned()).collect();
        let wants = move |event_type: &str| wanted.is_empty() || wanted.iter().any(|w| w == event_type);
        let resp = self.http.open_stream(&req, "text/event-stream").await?;
        let path = "/v2/events".to_string();
        let bytes = resp.bytes_stream();
        let stream = futures::stream::unfold(
            (Box::pin(bytes), SseParser::default(), VecDeque::new(), false),
            move |(mut bytes, mut parser, mut pending, done)| {
                let path = path.clone();
                let wants = wants.clone();
                async move {
                    loop {
                        if let Some(ev) = pending.pop_front() {
                            return Some((Ok(ev), (bytes, parser, pending, done)));
                        }
                        if done {
                            return None;
                        }
                        match bytes.next().await {
                            Some(Ok(chunk)) => {
                                for (event, data) in parser.feed(&chunk) {
                                    // A frame without an `event:` line names its type
                                    // in the JSON: parse it to know.
                                    if !event.is_empty() && !wants(&event) {
                                        continue;
                                    }
                                    let parsed = MarathonEvent::from_frame(&event, &data);
                                    if wants(parsed.event_type()) {
                                        pending.push_back(parsed);
                                    }
                                }
                            }
                            Some(Err(e)) => {
                                let err = ClientError::Transport {
                                    system: "marathon",
                                    method: "GET".into(),
                                    path,
                                    reason: e.without_url().to_string(),
                                };
                                return Some((Err(err), (bytes, parser, pending, true)));
                            }
                            None => return None,
                        }
                    }
                }
            },
        );
        Ok(Box::pin(stream))
    }

    /// `GET /v2/info` (version, leader, configuration).
    pub async fn info(&self) -> Result<Value, ClientError> {
        self.http.send_json(&Request::new(Method::GET, "/v2/info")).await
    }

    /// `GET /ping`: Ok when Marathon answers.
    pub async fn ping(&self) -> Result<(), ClientError> {
        self.http.send(&Request::new(Method::GET, "/ping")).await.map(|_| ())
    }

    /// A write answered `{"version", "deploymentId"}`.
    async fn write(&self, req: &Request<'_>) -> Result<WriteResult, ClientError> {
        let resp = self.http.send(req).await?;
        let header_id =
            resp.headers.get("Marathon-Deployment-Id").and_then(|v| v.to_str().ok()).map(String::from);
        let value: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
        let str_at = |p: &str| value.pointer(p).and_then(Value::as_str).map(String::from);
        Ok(WriteResult {
            deployment_id: str_at("/deploymentId").or(header_id).or_else(|| str_at("/deployments/0/id")),
            version: str_at("/version"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_frames_split_across_chunks() {
        let mut p = SseParser::default();
        assert!(p.feed(b"event: event_stream_attached\r\ndata: {\"remoteAddress\":\"1\"}").is_empty());
        let frames = p.feed(b"\r\n\r\n: keepalive\n\nevent: deployment_success\ndata: {\"id\":\"d1\"}\n\n");
        assert_eq!(frames.len(), 2);
        assert_eq!(MarathonEvent::from_frame(&frames[0].0, &frames[0].1), MarathonEvent::Attached);
        assert_eq!(
            MarathonEvent::from_frame(&frames[1].0, &frames[1].1),
            MarathonEvent::DeploymentSuccess { id: "d1".into() }
        );
    }

    #[test]
    fn events_are_typed() {
        let e = MarathonEvent::from_frame("deployment_failed", r#"{"plan":{"id":"d9"}}"#);
        assert_eq!(e, MarathonEvent::DeploymentFailed { id: "d9".into() });
        let e = MarathonEvent::from_frame("api_post_event", r#"{"appDefinition":{"id":"/a"}}"#);
        assert_eq!(e, MarathonEvent::ApiPost { app_id: Some("/a".into()) });
        let e = MarathonEvent::from_frame("status_update_event", r#"{"taskStatus":"TASK_RUNNING"}"#);
        assert!(
            matches!(e, MarathonEvent::Other { ref event_type, .. } if event_type == "status_update_event")
        );
    }

    #[test]
    fn app_paths() {
        assert_eq!(app_path("/openstack/keystone/api"), "/v2/apps/openstack/keystone/api");
        assert_eq!(app_path("relative"), "/v2/apps/relative");
    }
}
