//! The controller's own HTTP server: /healthz, /readyz, /status, /metrics.
//! (Filled by issue #7.)
