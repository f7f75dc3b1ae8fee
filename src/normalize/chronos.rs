//! The Chronos job normalizer: Chronos's defaults table (DESIGN §5) and the canonical
//! form both sides are brought to before they are compared.
//!
//! Canonical form: every default present (cpus / mem / disk of 0 read as the server
//! defaults), run statistics removed, `parents` / `constraints` /
//! `environmentVariables` sorted as sets, schedules re-formatted the way Chronos writes
//! them, numbers in one form, empty collections absent, keys sorted. What needs both
//! sides — a schedule the server has rewritten as it ran, fields the server version does
//! not report — is done by [`align_job`]. It must not decide what gets sent.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::{
    ChronosVersion, NormalizeOptions, canonical_numbers, default_member, drop_empty, sort_keys, sort_set,
};
use crate::model::chronos::Schedule;

/// Run statistics the server keeps (also client-writable, but never desired).
pub const STAT_FIELDS: &[&str] =
    &["successCount", "errorCount", "errorsSinceLastSuccess", "lastSuccess", "lastError"];

/// Fields that are sets, not lists.
pub const SET_FIELDS: &[&str] = &["parents", "constraints"];

/// Fields only some Chronos versions report (2.5 adds the first two, 3.x the next two
/// and drops the last two).
pub const VERSIONED_FIELDS: &[&str] =
    &["taskInfoData", "fetch", "concurrent", "maxCompletionTime", "epsilon", "async"];

/// Chronos's job defaults — the one place they are written down. `scheduleTimeZone`
/// only applies to scheduled jobs and is filled by [`canonical_job`].
pub const DEFAULTS: &[(&str, DefaultValue)] = &[
    ("shell", DefaultValue::Bool(true)),
    ("epsilon", DefaultValue::Str("PT60S")),
    ("executor", DefaultValue::Str("")),
    ("executorFlags", DefaultValue::Str("")),
    ("retries", DefaultValue::Int(2)),
    ("owner", DefaultValue::Str("")),
    ("ownerName", DefaultValue::Str("")),
    ("description", DefaultValue::Str("")),
    ("async", DefaultValue::Bool(false)),
    ("disabled", DefaultValue::Bool(false)),
    ("softError", DefaultValue::Bool(false)),
    ("dataProcessingJobType", DefaultValue::Bool(false)),
    ("highPriority", DefaultValue::Bool(false)),
    ("runAsUser", DefaultValue::Str("root")),
    ("taskInfoData", DefaultValue::Str("")),
    ("concurrent", DefaultValue::Bool(false)),
    ("maxCompletionTime", DefaultValue::Int(0)),
];

/// Resources: missing or 0 is replaced by the server default at POST.
pub const RESOURCE_DEFAULTS: &[(&str, f64)] = &[("cpus", 0.1), ("mem", 128.0), ("disk", 256.0)];

/// A constant default value (a `const`-friendly subset of JSON).
#[derive(Clone, Copy, Debug)]
pub enum DefaultValue {
    /// A boolean.
    Bool(bool),
    /// A string.
    Str(&'static str),
    /// An integer.
    Int(i64),
}

impl DefaultValue {
    fn to_json(self) -> Value {
        match self {
            DefaultValue::Bool(b) => json!(b),
            DefaultValue::Str(s) => json!(s),
            DefaultValue::Int(i) => json!(i),
        }
    }
}

/// The ownership marker appended to a job's description (DESIGN §3).
pub fn owner_marker(instance: &str) -> String {
    format!("[mesosync:{instance}]")
}

pub use crate::model::chronos::{AmbiguousMark, MARKER_OPEN, owner_mark};

/// Append the ownership marker of `instance` to the job's description (once).
pub fn with_owner_marker(job: &mut Value, instance: &str) {
    let marker = owner_marker(instance);
    if let Value::Object(map) = job {
        let description = map.get("description").and_then(Value::as_str).unwrap_or("");
        if owner_mark(description) != Ok(Some(instance)) {
            let text = if description.is_empty() { marker } else { format!("{description} {marker}") };
            map.insert("description".into(), Value::String(text));
        }
    }
}

/// The start of the marker that records which values of a job were written as secret
/// (`sync.secret` pointers into the body as sent, a JSON array): Chronos has no labels,
/// so it goes into the description, before the ownership marker. Written with every
/// write, never compared (live normalization removes it).
const SECRETS_MARKER: &str = "[mesosync-sensitive:";

/// Record `pointers` in the job's description (nothing when there are none), before
/// the ownership marker, which stays last.
pub fn with_secret_marker(job: &mut Value, pointers: &[String]) {
    if pointers.is_empty() {
        return;
    }
    insert_marker(job, &format!("{SECRETS_MARKER}{}]", json!(pointers)));
}

/// Put `marker` into the job's description, before the ownership marker when it is
/// there already (it stays last: the single-mark rule, [`owner_mark`]).
fn insert_marker(job: &mut Value, marker: &str) {
    if let Value::Object(map) = job {
        let description = map.get("description").and_then(Value::as_str).unwrap_or("");
        let text = match description.find(MARKER_OPEN) {
            Some(at) => format!("{}{marker} {}", &description[..at], &description[at..]),
            None if description.is_empty() => marker.to_string(),
            None => format!("{description} {marker}"),
        };
        map.insert("description".into(), Value::String(text));
    }
}

/// The start of the run record of a run-once job (`sync.run: onChange`): the
/// fingerprint of the definition it was written with, `[mesosync-run:<16 hex>]`.
/// Written with every write of such a job, before the ownership marker; never
/// compared (live normalization removes it). Chronos resets a job's run statistics
/// when it is replaced, so the statistics of a job whose record matches the manifest
/// are those of runs of that definition (see `plan::runs`).
const RUN_MARKER: &str = "[mesosync-run:";

/// Record the definition fingerprint `definition` in the job's description.
pub fn with_run_marker(job: &mut Value, definition: &str) {
    insert_marker(job, &format!("{RUN_MARKER}{definition}]"));
}

/// The byte range of the run record in `description` and the fingerprint it holds.
fn find_run_marker(description: &str) -> Option<(std::ops::Range<usize>, &str)> {
    let start = description.find(RUN_MARKER)?;
    let value_start = start + RUN_MARKER.len();
    let len = description[value_start..].find(']')?;
    let value = &description[value_start..value_start + len];
    value.bytes().all(|b| b.is_ascii_hexdigit()).then_some((start..value_start + len + 1, value))
}

/// The definition fingerprint a live job's run record holds, if it has one.
pub fn recorded_run(live: &Value) -> Option<&str> {
    live.get("description").and_then(Value::as_str).and_then(find_run_marker).map(|(_, v)| v)
}

/// `description` without the byte range `range` (and the space that joined it).
fn cut(description: &str, range: std::ops::Range<usize>) -> String {
    let (mut start, mut end) = (range.start, range.end);
    if description[..start].ends_with(' ') {
        start -= 1;
    } else if description[end..].starts_with(' ') {
        end += 1;
    }
    format!("{}{}", &description[..start], &description[end..])
}

/// The byte range of the secrets marker in `description` and the pointers it holds.
fn find_secret_marker(description: &str) -> Option<(std::ops::Range<usize>, Vec<String>)> {
    let start = description.find(SECRETS_MARKER)?;
    let json_start = start + SECRETS_MARKER.len();
    let mut stream =
        serde_json::Deserializer::from_str(&description[json_start..]).into_iter::<Vec<String>>();
    let pointers = stream.next()?.ok()?;
    let end = json_start + stream.byte_offset();
    description[end..].starts_with(']').then(|| (start..end + 1, pointers))
}

/// The pointers a live job's description records.
pub fn recorded_secret_pointers(live: &Value) -> Vec<String> {
    live.get("description")
        .and_then(Value::as_str)
        .and_then(find_secret_marker)
        .map(|(_, p)| p)
        .unwrap_or_default()
}

/// `description` without the secrets marker (and the space that joined it).
pub fn without_secret_marker(description: &str) -> String {
    match find_secret_marker(description) {
        Some((range, _)) => cut(description, range),
        None => description.to_string(),
    }
}

/// `description` without mesosync's records (secrets, run): what is compared.
pub fn without_records(description: &str) -> String {
    let text = without_secret_marker(description);
    match find_run_marker(&text) {
        Some((range, _)) => cut(&text, range),
        None => text,
    }
}

/// The instance named by a job's ownership mark ([`owner_mark`]), if it has exactly one.
pub fn marked_owner(description: &str) -> Option<&str> {
    owner_mark(description).ok().flatten()
}

/// The desired job in canonical form, with the ownership marker of `opts.instance`.
pub fn desired_job(spec: &Value, opts: &NormalizeOptions) -> Value {
    let mut job = spec.clone();
    with_owner_marker(&mut job, &opts.instance);
    canonical_job(&job, opts.chronos_version, true)
}

/// The live job (as `GET …/jobs` reports it) in canonical form, statistics removed.
pub fn live_job(live: &Value, opts: &NormalizeOptions) -> Value {
    if let Some(description) = live
        .get("description")
        .and_then(Value::as_str)
        .filter(|d| d.contains(SECRETS_MARKER) || d.contains(RUN_MARKER))
    {
        let mut job = live.clone();
        job["description"] = Value::String(without_records(description));
        return canonical_job(&job, opts.chronos_version, opts.chronos_version.is_some());
    }
    canonical_job(live, opts.chronos_version, opts.chronos_version.is_some())
}

/// Fields the given version does not report: removed from both sides.
fn unreported(version: ChronosVersion) -> &'static [&'static str] {
    match version {
        ChronosVersion::V2_4 => &["taskInfoData", "fetch", "concurrent", "maxCompletionTime"],
        ChronosVersion::V2_5 => &["concurrent", "maxCompletionTime"],
        ChronosVersion::V3 => &["epsilon", "async"],
    }
}

/// The canonical form of one job (either side). `fill_versioned`: also default the
/// fields only some versions report — done for desired jobs and, when the version is
/// known, for live ones; otherwise [`align_job`] drops from desired what live lacks.
pub fn canonical_job(job: &Value, version: Option<ChronosVersion>, fill_versioned: bool) -> Value {
    let Value::Object(source) = job else { return job.clone() };
    let mut map: Map<String, Value> = source
        .iter()
        .filter(|(k, v)| !v.is_null() && !STAT_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (key, value) in DEFAULTS {
        if fill_versioned || !VERSIONED_FIELDS.contains(key) {
            default_member(&mut map, key, value.to_json());
        }
    }
    for (key, default) in RESOURCE_DEFAULTS {
        if map.get(*key).and_then(Value::as_f64).is_none_or(|v| v == 0.0) {
            map.insert((*key).to_string(), json!(default));
        }
    }
    if let Some(Value::String(text)) = map.get("schedule") {
        if let Ok(schedule) = Schedule::parse(text) {
            map.insert("schedule".into(), Value::String(schedule.to_string()));
        }
        default_member(&mut map, "scheduleTimeZone", json!(""));
    }
    if let Some(Value::Array(fetch)) = map.get_mut("fetch") {
        for f in fetch.iter_mut().filter_map(Value::as_object_mut) {
            default_member(f, "extract", json!(true));
            default_member(f, "executable", json!(false));
            default_member(f, "cache", json!(false));
        }
    }
    if let Some(Value::Object(container)) = map.get_mut("container") {
        default_member(container, "network", json!("HOST"));
        default_member(container, "forcePullImage", json!(false));
    }
    if let Some(version) = version {
        for key in unreported(version) {
            map.shift_remove(*key);
        }
    }
    for field in SET_FIELDS {
        sort_set(&mut map, field);
    }
    if let Some(Value::Array(vars)) = map.get_mut("environmentVariables") {
        vars.sort_by(|a, b| {
            let name = |v: &Value| v.get("name").and_then(Value::as_str).unwrap_or("").to_string();
            name(a).cmp(&name(b)).then_with(|| a.to_string().cmp(&b.to_string()))
        });
    }
    let mut out = Value::Object(map);
    canonical_numbers(&mut out);
    drop_empty(&mut out, &[]);
    sort_keys(&mut out);
    out
}

/// Whether a job is scheduled (has `schedule`) rather than dependent (has `parents`).
pub fn is_scheduled(job: &Value) -> bool {
    job.get("schedule").is_some_and(|s| !s.is_null())
}

/// Both-sides fix-ups after normalizing, with `now` for schedule starts:
/// - fields the live server does not report are dropped from desired (when the
///   version was not configured);
/// - a schedule equal in period and repeat-ness, whose desired start is not in the
///   future, is the live schedule: Chronos counts the repeats down and moves the start
///   forward as the job runs, so only a future start (or a different period) is a real
///   change.
pub fn align_job(desired: &mut Value, live: &Value, now: DateTime<Utc>, version: Option<ChronosVersion>) {
    let Value::Object(map) = desired else { return };
    if version.is_none() {
        for key in VERSIONED_FIELDS {
            if live.get(*key).is_none() {
                map.shift_remove(*key);
            }
        }
    }
    let (Some(d), Some(l)) = (
        map.get("schedule").and_then(Value::as_str).and_then(|s| Schedule::parse(s).ok()),
        live.get("schedule").and_then(Value::as_str).and_then(|s| Schedule::parse(s).ok()),
    ) else {
        return;
    };
    if schedules_match(&d, &l, now) {
        map.insert("schedule".into(), Value::String(l.to_string()));
        // Chronos disables a job itself when its repeat count runs out: that is the
        // desired schedule having run, not a change to undo.
        if l.repeat == Some(0) && live.get("disabled") == Some(&Value::Bool(true)) {
            map.insert("disabled".into(), Value::Bool(true));
        }
    }
}

/// Whether a desired schedule is satisfied by the live one (see [`align_job`]).
pub fn schedules_match(desired: &Schedule, live: &Schedule, now: DateTime<Utc>) -> bool {
    if desired.period != live.period || desired.repeat.is_some() != live.repeat.is_some() {
        return false;
    }
    match desired.start {
        Some(start) if start > now => desired == live,
        _ => true,
    }
}

/// The schedule to send when a job that exists live is replaced: when the desired
/// start is not in the future, the live start (and repeat count, if the repeat-ness
/// is unchanged) with the desired period — re-posting a past start would re-run the
/// job and reset the count. `None`: send the desired schedule as written.
pub fn schedule_to_send(desired: &str, live: &str, now: DateTime<Utc>) -> Option<String> {
    let d = Schedule::parse(desired).ok()?;
    let l = Schedule::parse(live).ok()?;
    if d.start.is_some_and(|s| s > now) {
        return None;
    }
    let repeat = if d.repeat.is_some() == l.repeat.is_some() { l.repeat } else { d.repeat };
    Some(Schedule { repeat, start: l.start, period: d.period }.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn get_shape_of_a_minimal_24_job_equals_the_posted_one() {
        let posted =
            json!({"name":"j","command":"true","schedule":"R/2030-01-01T00:00:00Z/PT1H","owner":"o"});
        let got = json!({"name":"j","command":"true","shell":true,"epsilon":"PT60S","executor":"",
            "executorFlags":"","retries":2,"owner":"o","ownerName":"","description":"","async":false,
            "successCount":4,"errorCount":1,"lastSuccess":"2026-01-01T00:00:00.000Z","lastError":"",
            "cpus":0.1,"disk":256.0,"mem":128.0,"disabled":false,"softError":false,
            "dataProcessingJobType":false,"errorsSinceLastSuccess":0,"uris":[],"environmentVariables":[],
            "arguments":[],"highPriority":false,"runAsUser":"root","constraints":[],
            "schedule":"R/2030-01-01T00:00:00.000Z/PT1H","scheduleTimeZone":""});
        let opts = NormalizeOptions::default();
        let mut desired = canonical_job(&posted, None, true);
        let live = live_job(&got, &opts);
        align_job(&mut desired, &live, at("2026-01-01T00:00:00Z"), None);
        // shell defaults to true in Chronos.
        assert_eq!(desired, live);
    }

    #[test]
    fn zero_resources_are_server_defaults() {
        let n = canonical_job(&json!({"name":"j","cpus":0,"mem":0.0}), None, true);
        assert_eq!(
            (n["cpus"].clone(), n["mem"].clone(), n["disk"].clone()),
            (json!(0.1), json!(128), json!(256))
        );
    }

    #[test]
    fn rewritten_schedules_match_unless_the_start_is_in_the_future() {
        let now = at("2031-06-01T00:00:00Z");
        let d = Schedule::parse("R5/2030-01-01T00:00:00Z/P1D").unwrap();
        let l = Schedule::parse("R3/2030-01-03T00:00:00.000Z/P1D").unwrap();
        assert!(schedules_match(&d, &l, now));
        assert!(!schedules_match(&d, &l, at("2029-01-01T00:00:00Z")));
        let other_period = Schedule::parse("R3/2030-01-03T00:00:00Z/P2D").unwrap();
        assert!(!schedules_match(&d, &other_period, now));
        let forever = Schedule::parse("R/2030-01-03T00:00:00Z/P1D").unwrap();
        assert!(!schedules_match(&d, &forever, now));
        assert_eq!(
            schedule_to_send("R5/2030-01-01T00:00:00Z/P2D", "R3/2030-01-03T00:00:00Z/P1D", now).as_deref(),
            Some("R3/2030-01-03T00:00:00.000Z/P2D")
        );
    }

    #[test]
    fn a_job_disabled_by_running_out_of_repeats_is_not_a_change() {
        let now = at("2031-01-01T00:00:00Z");
        let mut d = canonical_job(&json!({"name":"j","schedule":"R2/2030-01-01T00:00:00Z/P1D"}), None, true);
        let live = canonical_job(
            &json!({"name":"j","schedule":"R0/2030-01-03T00:00:00Z/P1D","disabled":true}),
            None,
            true,
        );
        align_job(&mut d, &live, now, None);
        assert_eq!(d, live);
    }

    #[test]
    fn versions_drop_what_they_do_not_report() {
        let n = canonical_job(&json!({"name":"j","epsilon":"PT1M"}), Some(ChronosVersion::V3), true);
        assert!(n.get("epsilon").is_none() && n.get("async").is_none());
        assert_eq!(n["concurrent"], false);
        let mut d = canonical_job(&json!({"name":"j","concurrent":true}), None, true);
        align_job(&mut d, &json!({"name":"j"}), at("2026-01-01T00:00:00Z"), None);
        assert!(d.get("concurrent").is_none());
    }

    #[test]
    fn secret_markers_round_trip_and_vanish_from_the_live_form() {
        let mut job = json!({"description": "nightly"});
        with_owner_marker(&mut job, "prod");
        with_secret_marker(&mut job, &["/environmentVariables/1/value".into(), "/a]b".into()]);
        let d = job["description"].as_str().unwrap();
        assert!(d.ends_with(" [mesosync:prod]"), "{d}");
        assert_eq!(recorded_secret_pointers(&job), ["/environmentVariables/1/value", "/a]b"]);
        assert_eq!(without_secret_marker(d), "nightly [mesosync:prod]");
        assert_eq!(marked_owner(d), Some("prod"));
        let mut bare = json!({});
        with_secret_marker(&mut bare, &["/x".into()]);
        with_owner_marker(&mut bare, "p");
        assert_eq!(without_secret_marker(bare["description"].as_str().unwrap()), "[mesosync:p]");
    }

    #[test]
    fn run_records_sit_before_the_owner_mark_and_vanish_from_the_live_form() {
        let mut job = json!({"description": "migrate"});
        with_owner_marker(&mut job, "prod");
        with_secret_marker(&mut job, &["/environmentVariables/0/value".into()]);
        with_run_marker(&mut job, "00ff00ff00ff00ff");
        let d = job["description"].as_str().unwrap();
        assert!(d.ends_with("[mesosync-run:00ff00ff00ff00ff] [mesosync:prod]"), "{d}");
        assert_eq!(recorded_run(&job), Some("00ff00ff00ff00ff"));
        assert_eq!(marked_owner(d), Some("prod"), "one ownership mark, still last");
        assert_eq!(without_records(d), "migrate [mesosync:prod]");
        let live = live_job(&job, &NormalizeOptions::default());
        assert_eq!(live["description"], "migrate [mesosync:prod]");
        assert_eq!(recorded_run(&json!({"description": "[mesosync-run:not hex]"})), None);
        let mut bare = json!({});
        with_run_marker(&mut bare, "ab");
        assert_eq!(bare["description"], "[mesosync-run:ab]");
    }

    #[test]
    fn owner_marker_is_appended_once() {
        let mut j = json!({"name":"j","description":"nightly"});
        with_owner_marker(&mut j, "prod");
        with_owner_marker(&mut j, "prod");
        assert_eq!(j["description"], "nightly [mesosync:prod]");
        assert_eq!(marked_owner(j["description"].as_str().unwrap()), Some("prod"));
        assert_eq!(marked_owner("x [mesosync:a] [mesosync:b]"), None, "two marks: nobody's");
        assert_eq!(owner_mark("x [mesosync:a] [mesosync:b]"), Err(AmbiguousMark { marks: 2 }));
        assert_eq!(marked_owner("x [mesosync:a]"), Some("a"));
        assert_eq!(marked_owner("copied [mesosync:a] here"), None, "only at the end");
        assert_eq!(marked_owner("nothing"), None);
    }
}
