//! Chronos' REST API, 2.4 / 2.5 at `/scheduler/*` and 3.x at `/v1/scheduler/*`, over
//! [`HttpClient`]. The version is configured or detected once (try the 3.x path, fall
//! back to the 2.x one). Jobs travel as raw JSON; no defaults are filled in here.
//!
//! Listing always uses `GET …/jobs`: the search endpoint defaults to `limit=10` and
//! would make every job past the tenth look deleted.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use tokio::sync::OnceCell;

use super::error::ClientError;
use super::http::{HttpClient, HttpConfig, Request, encode_segment};
use crate::health::RunStates;
use crate::model::live::{self, LiveObject};
use crate::system::chronos::Chronos;

pub use crate::model::chronos::ChronosVersion;

/// A Chronos API client. Cheap to clone; clones share the detected version.
#[derive(Clone, Debug)]
pub struct ChronosClient {
    http: HttpClient,
    version: std::sync::Arc<OnceCell<ChronosVersion>>,
}

/// Whether a job is dependent (non-empty `parents`) rather than scheduled.
pub fn is_dependent(job: &Value) -> bool {
    job.get("parents").and_then(Value::as_array).is_some_and(|p| !p.is_empty())
}

impl ChronosClient {
    /// A client for the Chronos at `config.urls`; `version` `None` means "detect on
    /// first use".
    pub fn new(config: &HttpConfig, version: Option<ChronosVersion>) -> Result<Self, ClientError> {
        let cell = match version {
            Some(v) => OnceCell::new_with(Some(v)),
            None => OnceCell::new(),
        };
        Ok(ChronosClient { http: HttpClient::new("chronos", config)?, version: std::sync::Arc::new(cell) })
    }

    /// The HTTP layer.
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// The configured or detected version (see [`ChronosClient::list_jobs`] for how).
    pub async fn version(&self) -> Result<ChronosVersion, ClientError> {
        self.version.get_or_try_init(|| async { self.detect().await.map(|(v, _)| v) }).await.copied()
    }

    /// `GET /v1/scheduler/jobs` answers on 3.x; else `GET /scheduler/jobs` answers on
    /// 2.x, whose jobs tell 2.5 (`taskInfoData`, `fetch`) from 2.4; with no job to look
    /// at, `/scheduler/leader` (2.5 only) decides. Returns the listing it got on the way,
    /// so that the first reconcile costs no extra GET on 3.x.
    async fn detect(&self) -> Result<(ChronosVersion, Option<Vec<LiveObject>>), ClientError> {
        let v3 = Request::new(Method::GET, "/v1/scheduler/jobs");
        match self.http.send(&v3).await {
            Ok(resp) => return Ok((ChronosVersion::V3, live::split_array(resp.body, &Chronos).ok())),
            // A 2.x Chronos may answer unknown paths with something else than 404 (its
            // UI catch-all); only a transport error is final here.
            Err(e @ (ClientError::Unreachable { .. } | ClientError::Transport { .. })) => return Err(e),
            Err(_) => {}
        }
        let v2 = Request::new(Method::GET, "/scheduler/jobs");
        let body = self.http.send(&v2).await?.body;
        let jobs = self.http.decoded(&v2, live::split_array(body, &Chronos))?;
        let first = jobs.first().map(LiveObject::value);
        let version = match first {
            Some(job) if job.get("taskInfoData").is_some() || job.get("fetch").is_some() => {
                ChronosVersion::V2_5
            }
            Some(_) => ChronosVersion::V2_4,
            None => match self.http.send(&Request::new(Method::GET, "/scheduler/leader")).await {
                Ok(_) => ChronosVersion::V2_5,
                Err(e) if e.is_transient() => return Err(e),
                Err(_) => ChronosVersion::V2_4,
            },
        };
        tracing::debug!(%version, "detected Chronos version");
        Ok((version, Some(jobs)))
    }

    async fn path(&self, rest: &str) -> Result<String, ClientError> {
        Ok(format!("{}{rest}", self.version().await?.prefix()))
    }

    /// Every job, with one `GET …/scheduler/jobs` once the version is known. The first
    /// call of a client with no configured version detects it and reuses the listing
    /// it got doing so: keep one client for the life of a controller.
    pub async fn list_jobs(&self) -> Result<Vec<LiveObject>, ClientError> {
        if self.version.get().is_none() {
            let (version, jobs) = self.detect().await?;
            let _ = self.version.set(version); // a concurrent detection may have won
            if let Some(jobs) = jobs {
                return Ok(jobs);
            }
        }
        let req = Request::new(Method::GET, self.path("/jobs").await?);
        let body = self.http.send(&req).await?.body;
        self.http.decoded(&req, live::split_array(body, &Chronos))
    }

    /// Whether each job is running, queued or idle: `GET …/graph/csv` (every version;
    /// see [`crate::health::chronos`]). The job listing does not carry it.
    pub async fn run_states(&self) -> Result<RunStates, ClientError> {
        let req = Request::new(Method::GET, self.path("/graph/csv").await?);
        let body = self.http.send(&req).await?.body;
        Ok(RunStates::parse_graph_csv(&String::from_utf8_lossy(&body)))
    }

    /// Create or fully replace a job: `POST …/dependency` if it has `parents`, else
    /// `POST …/iso8601`. Replacing is idempotent, so transient failures are retried.
    pub async fn put_job(&self, job: &Value) -> Result<(), ClientError> {
        let kind = if is_dependent(job) { "/dependency" } else { "/iso8601" };
        let path = self.path(kind).await?;
        self.http.send(&Request::new(Method::POST, path).json(job).idempotent(true)).await.map(|_| ())
    }

    /// `DELETE …/job/{name}`. Chronos answers 400 for an unknown job: that becomes
    /// [`ClientError::NotFound`].
    pub async fn delete_job(&self, name: &str) -> Result<(), ClientError> {
        let path = self.path(&format!("/job/{}", encode_segment(name))).await?;
        not_found_on_400(self.http.send(&Request::new(Method::DELETE, path)).await.map(|_| ()))
    }

    /// `PUT …/job/{name}`: run the job now. Unknown job → [`ClientError::NotFound`].
    pub async fn run_job(&self, name: &str) -> Result<(), ClientError> {
        let path = self.path(&format!("/job/{}", encode_segment(name))).await?;
        let req = Request::new(Method::PUT, path).idempotent(false);
        not_found_on_400(self.http.send(&req).await.map(|_| ()))
    }

    /// Wait until `name` shows up in the listing (3.x creates jobs asynchronously),
    /// polling every `interval` up to `timeout`. Returns whether it appeared.
    pub async fn wait_visible(
        &self,
        name: &str,
        interval: Duration,
        timeout: Duration,
    ) -> Result<bool, ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let jobs = self.list_jobs().await?;
            if jobs.iter().any(|j| j.head().key.as_deref() == Some(name)) {
                return Ok(true);
            }
            if tokio::time::Instant::now() + interval > deadline {
                return Ok(false);
            }
            tokio::time::sleep(interval).await;
        }
    }
}

fn not_found_on_400(result: Result<(), ClientError>) -> Result<(), ClientError> {
    match result {
        Err(ClientError::Api { status: 400, system, method, path, message, .. }) => {
            Err(ClientError::NotFound { system, method, path, message })
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn versions_parse() {
        assert_eq!("2.4.0".parse::<ChronosVersion>().unwrap(), ChronosVersion::V2_4);
        assert_eq!("2.5".parse::<ChronosVersion>().unwrap(), ChronosVersion::V2_5);
        assert_eq!("3.x".parse::<ChronosVersion>().unwrap(), ChronosVersion::V3);
        assert!("4".parse::<ChronosVersion>().is_err());
        assert_eq!(ChronosVersion::V3.prefix(), "/v1/scheduler");
        assert_eq!(ChronosVersion::V2_5.prefix(), "/scheduler");
    }

    #[test]
    fn dependent_jobs() {
        assert!(is_dependent(&json!({"name": "b", "parents": ["a"]})));
        assert!(!is_dependent(&json!({"name": "a", "schedule": "R/2030-01-01T00:00:00Z/PT1H"})));
        assert!(!is_dependent(&json!({"name": "a", "parents": []})));
    }
}
