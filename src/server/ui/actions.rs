//! The dashboard's two actions, off unless `mesosync run --ui-actions` with a token
//! (`MESOSYNC_UI_TOKEN`, or `MESOSYNC_UI_TOKEN_FILE` naming a file): "reconcile now"
//! and "refresh from git". Neither can write anything git does not say: one asks the
//! controller for a reconcile of the manifests as they are, the other wakes the
//! `--git-pull` task (which only fast-forwards the watched branch).
//!
//! A POST is accepted only when, in order: actions are on (else 403), its token bucket
//! has a token (else 429), it does not come from another site (an `Origin` other than
//! the request's own host, or `Sec-Fetch-Site: cross-site`/`same-site`: 403), and it
//! carries the token, as the `token` form field or `Authorization: Bearer` (else 401),
//! compared in constant time. The token is never a cookie, so a page on another site
//! cannot make a browser send it: CSRF needs the token itself. Bodies over
//! [`MAX_BODY`] are refused by the router.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::http::{HeaderMap, StatusCode, header};

use crate::server::webhook::{Secret, TokenBucket, same_secret};

/// Largest action request body (a form with a token).
pub const MAX_BODY: usize = 4096;

/// A callback the dashboard may call.
pub type Callback = Arc<dyn Fn() + Send + Sync>;

/// What the actions do, and the token that allows them.
#[derive(Clone)]
pub struct Actions {
    token: Secret,
    reconcile: Callback,
    refresh: Option<Callback>,
    bucket: Arc<Mutex<TokenBucket>>,
}

impl std::fmt::Debug for Actions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actions").field("refresh", &self.refresh.is_some()).finish_non_exhaustive()
    }
}

/// Which action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Reconcile now.
    Reconcile,
    /// Fetch the watched branch now (`--git-pull`).
    Refresh,
}

impl Actions {
    /// Actions allowed with `token`: `reconcile` requests a reconcile, `refresh` (absent
    /// without `--git-pull`) wakes the git pull.
    pub fn new(token: Secret, reconcile: Callback, refresh: Option<Callback>) -> Self {
        let bucket = TokenBucket::new(10.0, 1.0, Instant::now());
        Self { token, reconcile, refresh, bucket: Arc::new(Mutex::new(bucket)) }
    }

    /// Whether "refresh from git" can do anything.
    pub fn can_refresh(&self) -> bool {
        self.refresh.is_some()
    }

    /// Check and run `action`: the status and the words to answer with.
    pub fn run(&self, action: Action, headers: &HeaderMap, form_token: Option<&str>) -> (StatusCode, String) {
        let taken =
            self.bucket.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take(Instant::now());
        if !taken {
            return (StatusCode::TOO_MANY_REQUESTS, "too many requests; try again in a few seconds".into());
        }
        if let Some(why) = cross_site(headers) {
            return (StatusCode::FORBIDDEN, format!("refused: {why}"));
        }
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let Some(token) = form_token.filter(|t| !t.is_empty()).or(bearer) else {
            return (StatusCode::UNAUTHORIZED, "refused: this action needs the dashboard token".into());
        };
        if !same_secret(token.trim().as_bytes(), &self.token) {
            tracing::warn!(?action, "dashboard action refused: wrong token");
            return (StatusCode::UNAUTHORIZED, "refused: wrong token".into());
        }
        match action {
            Action::Reconcile => {
                tracing::info!("dashboard: reconcile requested");
                (self.reconcile)();
                (StatusCode::ACCEPTED, "reconcile requested".into())
            }
            Action::Refresh => match &self.refresh {
                Some(refresh) => {
                    tracing::info!("dashboard: git refresh requested");
                    refresh();
                    (StatusCode::ACCEPTED, "fetching from git".into())
                }
                None => {
                    (StatusCode::CONFLICT, "refresh from git needs `mesosync run --git-pull BRANCH`".into())
                }
            },
        }
    }
}

/// Why the request comes from another site, if it does: its `Origin` is not the host
/// it was sent to, or the browser says so (`Sec-Fetch-Site`).
pub fn cross_site(headers: &HeaderMap) -> Option<String> {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site != "same-origin" && site != "none" {
            return Some(format!("a {site} request"));
        }
    }
    let origin = text(header::ORIGIN)?;
    let host = text(header::HOST).unwrap_or("");
    let origin_host = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
    if origin_host == Some(host) && !host.is_empty() {
        None
    } else {
        Some("the request's Origin is another site".into())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn actions(calls: Arc<AtomicUsize>) -> Actions {
        let reconcile: Callback = Arc::new(move || {
            calls.fetch_add(1, Ordering::SeqCst);
        });
        Actions::new(Secret::new("s3cret-token").unwrap(), reconcile, None)
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_token_is_required_and_cross_site_posts_are_refused() {
        let calls = Arc::new(AtomicUsize::new(0));
        let a = actions(calls.clone());
        let local = headers(&[("host", "127.0.0.1:9100"), ("origin", "http://127.0.0.1:9100")]);
        assert_eq!(a.run(Action::Reconcile, &local, None).0, StatusCode::UNAUTHORIZED);
        assert_eq!(a.run(Action::Reconcile, &local, Some("nope")).0, StatusCode::UNAUTHORIZED);
        let evil = headers(&[("host", "127.0.0.1:9100"), ("origin", "http://evil.example")]);
        assert_eq!(a.run(Action::Reconcile, &evil, Some("s3cret-token")).0, StatusCode::FORBIDDEN);
        let fetch = headers(&[("sec-fetch-site", "cross-site")]);
        assert_eq!(a.run(Action::Reconcile, &fetch, Some("s3cret-token")).0, StatusCode::FORBIDDEN);
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert_eq!(a.run(Action::Reconcile, &local, Some("s3cret-token")).0, StatusCode::ACCEPTED);
        let bearer = headers(&[("authorization", "Bearer s3cret-token")]);
        assert_eq!(a.run(Action::Reconcile, &bearer, None).0, StatusCode::ACCEPTED);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(a.run(Action::Refresh, &bearer, None).0, StatusCode::CONFLICT);
    }

    #[test]
    fn guessing_is_rate_limited() {
        let a = actions(Arc::new(AtomicUsize::new(0)));
        let codes: Vec<StatusCode> =
            (0..12).map(|_| a.run(Action::Reconcile, &HeaderMap::new(), Some("guess")).0).collect();
        assert_eq!(codes.iter().filter(|c| **c == StatusCode::TOO_MANY_REQUESTS).count(), 2, "{codes:?}");
    }
}
