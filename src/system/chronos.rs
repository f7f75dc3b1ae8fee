//! Chronos jobs: keyed by their name, marked by a `[mesosync:<instance>]` marker in the
//! description (and, optionally, a name prefix per instance), normalized by
//! [`crate::normalize::chronos`]; an update replaces the job whole (its run statistics
//! reset), and a switch between scheduled and dependent is a delete + create.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::check::SpecCheck;
use super::{System, looks_secret};
use crate::model::chronos as spec_model;
use crate::model::chronos::Schedule;
use crate::model::{Impact, LiveHead, ObjectKind, ObjectRef, ReadHead, fingerprint};
use crate::normalize::chronos::{self as norm, STAT_FIELDS};
use crate::normalize::{NormalizeOptions, canonical_text};

/// Chronos jobs.
pub struct Chronos;

/// The members of a listed job its head is read from (the rest is skipped unparsed).
#[derive(Deserialize)]
struct HeadWire<'a> {
    name: Option<Box<str>>,
    /// Borrowed from the listing unless escaped: only the owner it names is kept.
    #[serde(default, borrow, deserialize_with = "borrowed")]
    description: Option<Cow<'a, str>>,
    parents: Option<Vec<Box<str>>>,
    schedule: Option<Box<str>>,
}

/// An optional string borrowed from the input where it can be (serde borrows a
/// `Cow<str>` only when it is the field's own type, not inside an `Option`).
fn borrowed<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Text<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Text<'de>>::deserialize(d)?.map(|t| t.0))
}

/// The owner a description's marker names and whether it has several markers.
fn description_mark(description: Option<&str>) -> (Option<Box<str>>, bool) {
    match description.map(spec_model::owner_mark) {
        Some(Ok(owner)) => (owner.map(Box::from), false),
        Some(Err(_)) => (None, true),
        None => (None, false),
    }
}

/// A job's head: `name`, the `[mesosync:…]` description marker, `parents`, `schedule`
/// (a job lists no version: [`System::live_version`] hashes it).
impl ReadHead for Chronos {
    fn head_of(&self, v: &Value) -> LiveHead {
        let (owner, ambiguous_mark) = description_mark(v.get("description").and_then(Value::as_str));
        LiveHead {
            key: LiveHead::text_of(v, "name"),
            owner,
            ambiguous_mark,
            version: None,
            dependencies: LiveHead::list_of(v, "parents"),
            schedule: LiveHead::text_of(v, "schedule"),
        }
    }

    fn read_head(&self, raw: &[u8]) -> Result<LiveHead, serde_json::Error> {
        LiveHead::read_with(raw, self, |w: HeadWire<'_>| {
            let (owner, ambiguous_mark) = description_mark(w.description.as_deref());
            LiveHead {
                key: w.name,
                owner,
                ambiguous_mark,
                version: None,
                dependencies: w.parents.unwrap_or_default().into(),
                schedule: w.schedule,
            }
        })
    }
}

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

    fn supports_run_once(&self) -> bool {
        true
    }

    /// A run-once job must be one Chronos never starts by itself (a repeat count of 0,
    /// or a dependent job, which Chronos runs after its parents), and not disabled.
    fn check_run_once(&self, spec: &Value, check: &mut SpecCheck) -> bool {
        if spec.get("disabled") == Some(&Value::Bool(true)) {
            check.error(
                "/spec/disabled",
                "a job with `sync.run: onChange` cannot be disabled: Chronos drops the run of a disabled job \
                 (TaskManager: expired), so it would never be done; use `sync.suspend: true` to leave it alone",
            );
            return false;
        }
        let Some(Value::String(text)) = spec.get("schedule") else { return true };
        match Schedule::parse(text) {
            Ok(schedule) if schedule.repeat == Some(0) => true,
            Ok(schedule) => {
                let period = text.rsplit('/').next().unwrap_or("P1D");
                let runs = match schedule.repeat {
                    None => "forever".to_string(),
                    Some(1) => "once".to_string(),
                    Some(n) => format!("{n} times"),
                };
                check.error(
                    "/spec/schedule",
                    format!(
                        "a job with `sync.run: onChange` is started by mesosync, once per definition, but this \
                         schedule makes Chronos start it as well ({runs}): write `schedule: R0//{period}` \
                         (repeat count 0: Chronos never starts it by itself), or make it a dependent job with \
                         `parents`; no far-future start is needed"
                    ),
                );
                false
            }
            // Reported by the spec check.
            Err(_) => false,
        }
    }

    fn dependency(&self, written: &str) -> ObjectRef {
        ObjectRef::job(written)
    }

    fn owner_of<'a>(&self, doc: &'a Value) -> Option<&'a str> {
        norm::marked_owner(doc.get("description")?.as_str()?)
    }

    /// The marker of `instance`, and the name prefix when one is configured.
    fn owns(&self, head: &LiveHead, instance: &str, prefix: Option<&str>) -> bool {
        let named = prefix.is_none_or(|p| head.key.as_deref().is_some_and(|k| k.starts_with(p)));
        head.owner.as_deref() == Some(instance) && named
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

    /// In a `[mesosync-sensitive:…]` marker in the description (Chronos has no labels),
    /// before the ownership marker.
    fn record_secret_pointers(&self, body: &mut Value, pointers: &[String]) {
        norm::with_secret_marker(body, pointers);
    }

    fn recorded_secret_pointers(&self, live: &Value) -> Vec<String> {
        norm::recorded_secret_pointers(live)
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

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use serde_json::json;

    use super::*;
    use crate::model::LiveObject;
    use crate::model::live::split_array;

    #[test]
    fn a_jobs_head_is_read_from_the_listing() {
        let jobs = split_array(
            Bytes::from_static(
                br#"[{"name":"j","parents":["p"],"description":"d [mesosync:m]"},
                     {"name":"s","schedule":"R/2026-01-01T00:00:00Z/PT1H","description":"\"quoted\" [mesosync:m]"},
                     {"name":"t","description":"[mesosync:m] [mesosync:n]"}]"#,
            ),
            &Chronos,
        )
        .unwrap();
        let j = jobs[0].head();
        assert_eq!((j.key.as_deref(), j.owner.as_deref(), j.ambiguous_mark), (Some("j"), Some("m"), false));
        assert_eq!(&*j.dependencies, [Box::from("p")]);
        assert_eq!(j.version, None, "a job lists no version");
        let s = jobs[1].head();
        assert_eq!(s.schedule.as_deref(), Some("R/2026-01-01T00:00:00Z/PT1H"));
        assert_eq!(s.owner.as_deref(), Some("m"), "an escaped description is read too");
        assert_eq!((jobs[2].head().owner.as_deref(), jobs[2].head().ambiguous_mark), (None, true));
        let version = Chronos.listed_version(&jobs[0]).unwrap();
        assert_eq!(Some(version), Chronos.live_version(&jobs[0].value()));
    }

    #[test]
    fn a_job_is_owned_by_its_marker_and_the_name_prefix() {
        let head = |name: &str, description: Option<&str>| {
            Chronos.head_of(&json!({"name": name, "description": description}))
        };
        let marked = Some("nightly [mesosync:prod]");
        assert!(Chronos.owns(&head("j", marked), "prod", None));
        assert!(!Chronos.owns(&head("j", marked), "prod", Some("ms-")));
        assert!(Chronos.owns(&head("ms-j", marked), "prod", Some("ms-")));
        assert!(!Chronos.owns(&head("j", marked), "other", None));
        assert!(!Chronos.owns(&head("j", None), "prod", None));
    }

    #[test]
    fn parsed_and_listed_jobs_have_the_same_head() {
        for v in [
            json!({"name": "j", "parents": ["p", 1], "description": "x [mesosync:m]"}),
            json!({"name": "j", "schedule": "R/2026-01-01T00:00:00Z/PT1H", "description": 5}),
        ] {
            let listed = LiveObject::from_bytes(Bytes::from(v.to_string()), &Chronos).unwrap();
            assert_eq!(listed.head(), LiveObject::from_value(&v, &Chronos).head());
        }
    }
}
