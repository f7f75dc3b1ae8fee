//! Chronos jobs: keyed by their name, marked by a `[mesosync:<instance>]` marker in the
//! description (and, optionally, a name prefix per instance), normalized by
//! [`crate::normalize::chronos`]; an update replaces the job whole (its run statistics
//! reset), and a switch between scheduled and dependent is a delete + create.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::check::SpecCheck;
use super::{System, looks_secret};
use crate::model::chronos as spec_model;
use crate::model::chronos::Schedule;
use crate::model::{Impact, LiveHead, ObjectKind, ObjectRef, fingerprint};
use crate::normalize::chronos::{self as norm, STAT_FIELDS};
use crate::normalize::{NormalizeOptions, canonical_text};

/// Chronos jobs.
pub struct Chronos;

/// The constraint operators Chronos knows (others: silently ignored).
const OPERATORS: &[&str] = &["EQUALS", "LIKE", "UNLIKE"];

/// The next three runs of an ISO 8601 repeating interval.
fn next_runs(schedule: Option<&str>, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    schedule.and_then(|s| Schedule::parse(s).ok()).map(|s| s.next_runs(now, 3)).unwrap_or_default()
}

impl System for Chronos {
    fn kind(&self) -> ObjectKind {
        ObjectKind::ChronosJob
    }

    fn name(&self) -> &'static str {
        "chronos"
    }

    fn title(&self) -> &'static str {
        "Chronos"
    }

    fn key_field(&self) -> &'static str {
        "name"
    }

    fn dependency_field(&self) -> &'static str {
        "parents"
    }

    /// Chronos' checks (`JobSpec`, a portable name, a command, either a schedule or
    /// parents, constraint operators, no ownership marker, ISO 8601 periods).
    fn check_spec(&self, spec: &mut Value, check: &mut SpecCheck) -> Option<ObjectRef> {
        let mut ok = check.typed::<spec_model::JobSpec>(spec, "/spec", "spec").is_some();
        let name = spec.get("name").and_then(Value::as_str);
        match name {
            None if spec.get("name").is_none() => {
                check.error("/spec", "missing `name` (the Chronos job name)");
                ok = false;
            }
            None => ok = false,
            Some(n) => {
                if let Err(e) = spec_model::check_job_name(n) {
                    check.error("/spec/name", e);
                    ok = false;
                }
            }
        }
        if spec.get("command").is_none() {
            check.error("/spec", "missing `command` (Chronos refuses a job without one)");
            ok = false;
        }
        let schedule = spec.get("schedule");
        let parents = spec.get("parents");
        match (schedule, parents) {
            (Some(_), Some(_)) => {
                check.error(
                    "/spec/parents",
                    "a job has either `schedule` (scheduled) or `parents` (dependent), not both",
                );
                ok = false;
            }
            (None, None) => {
                check.error("/spec", "a job needs `schedule` (scheduled) or `parents` (dependent)");
                ok = false;
            }
            (Some(Value::String(s)), None) => {
                if let Err(e) = spec_model::Schedule::parse(s) {
                    check.error("/spec/schedule", format!("malformed ISO 8601 schedule: {e}"));
                    ok = false;
                }
            }
            (None, Some(Value::Array(list))) if list.is_empty() => {
                check.error(
                    "/spec/parents",
                    "`parents` must not be empty (Chronos answers 500); use `schedule`",
                );
                ok = false;
            }
            _ => {}
        }
        ok &= check.constraints(spec, OPERATORS, "Chronos");
        if spec.get("description").and_then(Value::as_str).is_some_and(|d| d.contains("[mesosync:")) {
            check.error(
                "/spec/description",
                "`[mesosync:…]` is the ownership marker mesosync adds itself; a description must not carry one",
            );
            ok = false;
        }
        if let Some(Value::String(e)) = spec.get("epsilon") {
            if let Err(err) = spec_model::Period::parse(e) {
                check.error("/spec/epsilon", format!("malformed ISO 8601 duration: {err}"));
                ok = false;
            }
        }
        if ok { name.map(ObjectRef::job) } else { None }
    }

    fn dependency(&self, written: &str) -> ObjectRef {
        ObjectRef::job(written)
    }

    fn live_key<'a>(&self, head: &'a LiveHead) -> Option<&'a str> {
        head.name.as_deref()
    }

    fn live_owner<'a>(&self, head: &'a LiveHead) -> Option<&'a str> {
        norm::marked_owner(head.description.as_deref()?)
    }

    fn owner_of<'a>(&self, doc: &'a Value) -> Option<&'a str> {
        norm::marked_owner(doc.get("description")?.as_str()?)
    }

    /// The marker of `instance`, and the name prefix when one is configured.
    fn owns(&self, head: &LiveHead, instance: &str, prefix: Option<&str>) -> bool {
        norm::is_owned(head.description.as_deref(), head.name.as_deref(), instance, prefix)
    }

    fn outside_prefix<'a>(&self, key: &str, prefix: Option<&'a str>) -> Option<&'a str> {
        prefix.filter(|p| !key.starts_with(p))
    }

    fn mark(&self, doc: &mut Value, instance: &str) {
        norm::with_owner_marker(doc, instance);
    }

    fn normalize_desired(&self, spec: &Value, opts: &NormalizeOptions) -> Value {
        norm::desired_job(spec, opts)
    }

    fn normalize_live(&self, live: &Value, opts: &NormalizeOptions) -> Value {
        norm::live_job(live, opts)
    }

    fn align(&self, desired: &mut Value, live: &Value, now: DateTime<Utc>, opts: &NormalizeOptions) {
        norm::align_job(desired, live, now, opts.chronos_version);
    }

    /// The manifest plus the marker; when the desired schedule start is not in the
    /// future, the live start and repeat count (Chronos counts them down).
    fn request_body(&self, spec: &Value, live: Option<&Value>, instance: &str, now: DateTime<Utc>) -> Value {
        let mut body = spec.clone();
        self.mark(&mut body, instance);
        let live_schedule = live.and_then(|l| l.get("schedule")).and_then(Value::as_str);
        let desired_schedule = body.get("schedule").and_then(Value::as_str);
        if let (Some(want), Some(have)) = (desired_schedule, live_schedule) {
            if let Some(s) = norm::schedule_to_send(want, have, now) {
                body["schedule"] = Value::String(s);
            }
        }
        body
    }

    fn update_impact(&self) -> Impact {
        Impact::Replace
    }

    fn replaced(&self, want: &Value, live: &Value) -> Option<bool> {
        let to_scheduled = norm::is_scheduled(want);
        (norm::is_scheduled(live) != to_scheduled).then_some(to_scheduled)
    }

    /// A job has no version: a stable hash of its JSON without run statistics,
    /// `chronos:<16 hex digits>`.
    fn live_version(&self, live: &Value) -> Option<String> {
        let mut job = live.clone();
        if let Value::Object(map) = &mut job {
            for field in STAT_FIELDS {
                map.shift_remove(*field);
            }
        }
        Some(format!("chronos:{:016x}", fingerprint(canonical_text(&job).as_bytes())))
    }

    /// Environment variables named like secrets.
    fn secret_pointers(&self, doc: &Value, out: &mut Vec<String>) {
        if let Some(vars) = doc.get("environmentVariables").and_then(Value::as_array) {
            for (i, var) in vars.iter().enumerate() {
                if var.get("name").and_then(Value::as_str).is_some_and(looks_secret) {
                    out.push(format!("/environmentVariables/{i}/value"));
                }
            }
        }
    }

    fn next_runs(&self, doc: &Value, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        next_runs(doc.get("schedule").and_then(Value::as_str), now)
    }

    fn next_runs_listed(&self, head: &LiveHead, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        next_runs(head.schedule.as_deref(), now)
    }
}
