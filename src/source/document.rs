//! One manifest file → its documents → checked [`DesiredObject`]s, with every
//! problem reported at the line and column it is written on.

use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_path_to_error::Segment;

use super::LoadError;
use super::template;
use super::walk::{FileFormat, ManifestFile, file_error};
use super::yaml;
use crate::model::pointer::{escape_token, remove_pointer};
use crate::model::{DesiredObject, ObjectKind, ObjectRef, Provenance, SyncOptions, chronos, marathon};

const TOP_LEVEL_KEYS: [&str; 3] = ["kind", "sync", "spec"];
const KINDS: [&str; 2] = ["MarathonApp", "ChronosJob"];
const MARATHON_OPERATORS: &[&str] = &["UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS"];
const CHRONOS_OPERATORS: &[&str] = &["EQUALS", "LIKE", "UNLIKE"];

/// Parse and check every document of one file; templates are rendered by `renderer`.
pub fn load_file(
    file: &ManifestFile,
    text: &str,
    renderer: &template::Renderer,
) -> (Vec<DesiredObject>, Vec<LoadError>) {
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    let (text, lines) = if file.format == FileFormat::YamlTemplate {
        match renderer.render(&file.path, text) {
            Ok((rendered, map)) => (std::borrow::Cow::Owned(rendered), Some(map)),
            Err(e) => {
                errors.push(e);
                return (objects, errors);
            }
        }
    } else {
        (std::borrow::Cow::Borrowed(text), None)
    };
    let template_line = |line: u32| lines.as_ref().map_or(line, |m| m.template_line(line));
    let documents = match yaml::parse_documents(&text) {
        Ok(docs) => docs,
        Err(e) => {
            let mut error = parse_error(file, &e);
            error.location.line = template_line(error.location.line);
            errors.push(error);
            return (objects, errors);
        }
    };
    for node in documents {
        if matches!(node.value(), yaml::NodeValue::Null) {
            continue; // an empty document, e.g. a trailing `---`
        }
        // A `*.json` file is a Marathon app only when it has an `id` (DESIGN §2):
        // other JSON (a saved plan, a values dump) beside the manifests is not one.
        if file.format == FileFormat::Json
            && !matches!(node.value(), yaml::NodeValue::Map(entries) if entries.iter().any(|(k, _)| k.value == "id"))
        {
            continue;
        }
        let mut provenance = Provenance::new(file.path.clone());
        let prefix = match file.format {
            FileFormat::Yaml | FileFormat::YamlTemplate => "",
            FileFormat::Json => "/spec",
        };
        let value = node.to_json(prefix, &mut |p, l, c| provenance.insert(p, template_line(l), c));
        let document = match file.format {
            FileFormat::Yaml | FileFormat::YamlTemplate => value,
            FileFormat::Json => serde_json::json!({"kind": "MarathonApp", "spec": value}),
        };
        // Errors about a secret field must not quote its value (serde says
        // "invalid type: integer `987654321`"): mask them by the document's secrets,
        // read leniently since the document may be the one that is wrong.
        let masker = crate::diff::mask::Masker::new(&document_secrets(&document));
        let mut checker = DocumentChecker { provenance, errors: Vec::new() };
        if let Some(object) = checker.check(document) {
            objects.push(object);
        }
        for mut error in checker.errors {
            error.message = masker.text(&error.message);
            errors.push(error);
        }
    }
    (objects, errors)
}

/// The secret values of a document that may not be valid: its `sync.secret` pointers
/// (those that are strings) and secret names, resolved against its `spec`.
fn document_secrets(document: &Value) -> crate::model::SecretValues {
    let kind = match document.get("kind").and_then(Value::as_str) {
        Some("ChronosJob") => ObjectKind::ChronosJob,
        _ => ObjectKind::MarathonApp,
    };
    let Some(spec) = document.get("spec") else { return Default::default() };
    let pointers: Vec<String> = document
        .pointer("/sync/secret")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    crate::system::secret_values(kind, spec, &pointers)
}

fn parse_error(file: &ManifestFile, e: &serde_saphyr::Error) -> LoadError {
    let mut error = file_error(&file.path, "");
    if let Some(loc) = e.location() {
        error.location.line = loc.line() as u32;
        error.location.column = loc.column() as u32;
    }
    let what = match file.format {
        FileFormat::Yaml | FileFormat::YamlTemplate => "YAML",
        FileFormat::Json => "JSON",
    };
    // The library's message may carry a source snippet over several lines; keep the
    // first line, the location is given separately.
    let text = e.to_string();
    let mut first = text.lines().next().unwrap_or("syntax error").trim();
    first = first.strip_prefix("error: ").unwrap_or(first);
    if first.starts_with("line ") {
        first = first.split_once(": ").map_or(first, |(_, rest)| rest);
    }
    error.message = if first.contains("merge keys are not allowed") {
        "a `<<` merge key is YAML 1.1, and manifests are read as YAML 1.2 (where it would be \
         a plain key): write the fields out, or use a template (`*.yaml.j2`)"
            .to_string()
    } else {
        format!("invalid {what}: {first}")
    };
    error
}

struct DocumentChecker {
    provenance: Provenance,
    errors: Vec<LoadError>,
}

impl DocumentChecker {
    fn error(&mut self, pointer: &str, message: impl Into<String>) {
        self.errors.push(LoadError { location: self.provenance.locate(pointer), message: message.into() });
    }

    fn check(&mut self, document: Value) -> Option<DesiredObject> {
        let Value::Object(mut top) = document else {
            self.error("", "a manifest document must be a mapping with `kind` and `spec`");
            return None;
        };
        for key in top.keys().filter(|k| !TOP_LEVEL_KEYS.contains(&k.as_str())).cloned().collect::<Vec<_>>() {
            let hint = did_you_mean(&key, &TOP_LEVEL_KEYS);
            self.error(
                &format!("/{}", escape_token(&key)),
                format!("unknown top-level key `{key}`{hint}; a document has only `kind`, `sync` and `spec`"),
            );
        }
        let kind = match top.get("kind") {
            Some(Value::String(k)) if ObjectKind::from_name(k).is_some() => ObjectKind::from_name(k),
            Some(Value::String(k)) => {
                let hint = did_you_mean(k, &KINDS);
                self.error("/kind", format!("unknown kind `{k}`{hint}; expected MarathonApp or ChronosJob"));
                None
            }
            Some(_) => {
                self.error("/kind", "`kind` must be the string MarathonApp or ChronosJob");
                None
            }
            None => {
                self.error("", "missing `kind` (MarathonApp or ChronosJob)");
                None
            }
        };
        let sync = match top.remove("sync") {
            None | Some(Value::Null) => Some(SyncOptions::default()),
            Some(v) => self.typed::<SyncOptions>(&v, "/sync", "sync"),
        };
        if let Some(sync) = &sync {
            self.check_pointers(&sync.ignore, "/sync/ignore");
            self.check_pointers(&sync.secret, "/sync/secret");
        }
        let mut spec = match top.remove("spec") {
            Some(Value::Object(m)) => Value::Object(m),
            Some(_) => {
                self.error("/spec", "`spec` must be a mapping (the app or job definition)");
                return None;
            }
            None => {
                self.error("", "missing `spec` (the app or job definition)");
                return None;
            }
        };
        let object = match kind? {
            ObjectKind::MarathonApp => self.check_app(&mut spec)?,
            ObjectKind::ChronosJob => self.check_job(&spec)?,
        };
        if let Some(sync) = &sync {
            if sync.runs_once() && !self.check_run_once(object.kind, &spec) {
                return None;
            }
        }
        Some(DesiredObject::new(object, sync?, &spec, self.provenance.clone()))
    }

    fn check_app(&mut self, spec: &mut Value) -> Option<ObjectRef> {
        let mut ok = true;
        for server_field in ["version", "versionInfo"] {
            if spec.get(server_field).is_some() {
                self.error(
                    &format!("/spec/{server_field}"),
                    format!(
                        "`{server_field}` is set by Marathon and must not be in a manifest \
                         (sending `version` back rolls the app back to that version)"
                    ),
                );
                if let Some(m) = spec.as_object_mut() {
                    m.remove(server_field);
                }
                ok = false;
            }
        }
        ok &= self.typed::<marathon::AppSpec>(spec, "/spec", "spec").is_some();
        if spec.get("cmd").is_some() && spec.get("args").is_some() {
            self.error("/spec/args", "an app must have `cmd` or `args`, not both (Marathon answers 422)");
            ok = false;
        }
        let Some(id) = spec.get("id").and_then(Value::as_str) else {
            if spec.get("id").is_none() {
                self.error("/spec", "missing `id` (the app's absolute path, e.g. /openstack/infra/mariadb)");
            }
            return None;
        };
        if let Err(e) = marathon::check_app_id(id) {
            self.error("/spec/id", e);
            return None;
        }
        ok &= self.check_constraints(spec, MARATHON_OPERATORS, "Marathon");
        let owner_labels = spec.get("labels").and_then(Value::as_object).into_iter().flatten();
        for (key, _) in owner_labels.filter(|(k, _)| k.eq_ignore_ascii_case("MESOSYNC_OWNER")) {
            self.error(
                &format!("/spec/labels/{key}"),
                "MESOSYNC_OWNER is the ownership label mesosync sets itself; a manifest must not set it",
            );
            ok = false;
        }
        if let Some(deps) = spec.get("dependencies").and_then(Value::as_array) {
            let bad: Vec<(usize, String)> = deps
                .iter()
                .enumerate()
                .filter_map(|(i, d)| d.as_str().and_then(|d| marathon::check_app_id(d).err().map(|e| (i, e))))
                .collect();
            for (i, e) in bad {
                self.error(&format!("/spec/dependencies/{i}"), format!("dependency: {e}"));
                ok = false;
            }
        }
        let id = marathon::canonical_app_id(id);
        spec["id"] = Value::String(id.clone());
        // Marathon resolves relative dependencies against the app's parent group.
        let group = id.rsplit_once('/').map_or("/", |(g, _)| g).to_string();
        if let Some(deps) = spec.get_mut("dependencies").and_then(Value::as_array_mut) {
            for d in deps.iter_mut() {
                if let Some(s) = d.as_str() {
                    *d = Value::String(marathon::resolve_app_id(s, &group));
                }
            }
        }
        ok.then(|| ObjectRef::app(id))
    }

    fn check_job(&mut self, spec: &Value) -> Option<ObjectRef> {
        let mut ok = self.typed::<chronos::JobSpec>(spec, "/spec", "spec").is_some();
        let name = spec.get("name").and_then(Value::as_str);
        match name {
            None if spec.get("name").is_none() => {
                self.error("/spec", "missing `name` (the Chronos job name)");
                ok = false;
            }
            None => ok = false,
            Some(n) => {
                if let Err(e) = chronos::check_job_name(n) {
                    self.error("/spec/name", e);
                    ok = false;
                }
            }
        }
        if spec.get("command").is_none() {
            self.error("/spec", "missing `command` (Chronos refuses a job without one)");
            ok = false;
        }
        let schedule = spec.get("schedule");
        let parents = spec.get("parents");
        match (schedule, parents) {
            (Some(_), Some(_)) => {
                self.error(
                    "/spec/parents",
                    "a job has either `schedule` (scheduled) or `parents` (dependent), not both",
                );
                ok = false;
            }
            (None, None) => {
                self.error("/spec", "a job needs `schedule` (scheduled) or `parents` (dependent)");
                ok = false;
            }
            (Some(Value::String(s)), None) => {
                if let Err(e) = chronos::Schedule::parse(s) {
                    self.error("/spec/schedule", format!("malformed ISO 8601 schedule: {e}"));
                    ok = false;
                }
            }
            (None, Some(Value::Array(list))) if list.is_empty() => {
                self.error(
                    "/spec/parents",
                    "`parents` must not be empty (Chronos answers 500); use `schedule`",
                );
                ok = false;
            }
            _ => {}
        }
        ok &= self.check_constraints(spec, CHRONOS_OPERATORS, "Chronos");
        if spec.get("description").and_then(Value::as_str).is_some_and(|d| d.contains("[mesosync:")) {
            self.error(
                "/spec/description",
                "`[mesosync:…]` is the ownership marker mesosync adds itself; a description must not carry one",
            );
            ok = false;
        }
        if let Some(Value::String(e)) = spec.get("epsilon") {
            if let Err(err) = chronos::Period::parse(e) {
                self.error("/spec/epsilon", format!("malformed ISO 8601 duration: {err}"));
                ok = false;
            }
        }
        if ok { name.map(ObjectRef::job) } else { None }
    }

    /// `sync.run: onChange`: only a job, and one Chronos never starts by itself (a
    /// repeat count of 0, or a dependent job, which Chronos runs after its parents).
    fn check_run_once(&mut self, kind: ObjectKind, spec: &Value) -> bool {
        if kind != ObjectKind::ChronosJob {
            self.error(
                "/sync/run",
                "`sync.run: onChange` is for Chronos jobs (an app runs all the time; its dependants wait \
                 for it to be healthy)",
            );
            return false;
        }
        let Some(Value::String(text)) = spec.get("schedule") else { return true };
        match chronos::Schedule::parse(text) {
            Ok(schedule) if schedule.repeat == Some(0) => true,
            Ok(schedule) => {
                let period = text.rsplit('/').next().unwrap_or("P1D");
                let runs = match schedule.repeat {
                    None => "forever".to_string(),
                    Some(1) => "once".to_string(),
                    Some(n) => format!("{n} times"),
                };
                self.error(
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

    /// `constraints`: `[field, OPERATOR]` or `[field, OPERATOR, value]`, with an
    /// operator the system knows (Marathon rejects others with 422; Chronos ignores
    /// them silently, which is worse).
    fn check_constraints(&mut self, spec: &Value, operators: &[&str], system: &str) -> bool {
        let Some(list) = spec.get("constraints").and_then(Value::as_array) else { return true };
        let mut ok = true;
        for (i, c) in list.iter().enumerate() {
            let Some(parts) = c.as_array() else { continue };
            let at = format!("/spec/constraints/{i}");
            if !(2..=3).contains(&parts.len()) {
                self.error(&at, "a constraint is [field, OPERATOR] or [field, OPERATOR, value]");
                ok = false;
                continue;
            }
            let op = parts[1].as_str().unwrap_or_default();
            if !operators.contains(&op) {
                let hint = did_you_mean(op, operators);
                self.error(
                    &format!("{at}/1"),
                    format!(
                        "unknown {system} constraint operator `{op}`{hint}; expected one of {}",
                        operators.join(", ")
                    ),
                );
                ok = false;
            }
        }
        ok
    }

    fn check_pointers(&mut self, pointers: &[String], at: &str) {
        for (i, p) in pointers.iter().enumerate() {
            if !p.starts_with('/') {
                self.error(
                    &format!("{at}/{i}"),
                    format!("`{p}` is not a JSON pointer into spec; write it as `/{p}`"),
                );
            }
        }
    }

    /// Deserialize `value` into `T`, reporting every unknown field and wrong type
    /// (each offending field is set aside and the check repeated, so one run shows
    /// them all). `base` is the pointer of `value` in the document.
    fn typed<T: DeserializeOwned>(&mut self, value: &Value, base: &str, what: &str) -> Option<T> {
        let mut work = value.clone();
        let mut clean = true;
        for _ in 0..64 {
            // Strict: a struct only from a mapping, as the servers read them.
            match serde_path_to_error::deserialize::<_, T>(crate::model::strict::Strict(&work)) {
                Ok(t) => return clean.then_some(t),
                Err(err) => {
                    clean = false;
                    let tokens = path_tokens(err.path());
                    let message = err.inner().to_string();
                    let (tokens, text) = describe(tokens, &message, what);
                    let pointer: String = tokens.iter().map(|t| format!("/{}", escape_token(t))).collect();
                    self.error(&format!("{base}{pointer}"), text);
                    if pointer.is_empty() || remove_pointer(&mut work, &pointer).is_none() {
                        return None;
                    }
                }
            }
        }
        None
    }
}

/// The tokens of a serde path (map keys and sequence indices).
fn path_tokens(path: &serde_path_to_error::Path) -> Vec<String> {
    path.iter()
        .filter_map(|s| match s {
            Segment::Seq { index } => Some(index.to_string()),
            Segment::Map { key } => Some(key.clone()),
            Segment::Enum { .. } | Segment::Unknown => None,
        })
        .collect()
}

/// Turn serde's message into one a user can act on, and name the field it is about.
fn describe(mut tokens: Vec<String>, message: &str, what: &str) -> (Vec<String>, String) {
    let field_path = |tokens: &[String]| {
        if tokens.is_empty() { what.to_string() } else { format!("{what}.{}", tokens.join(".")) }
    };
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        let hint = did_you_mean(field, &candidates);
        // serde_path_to_error's path already ends at the unknown key.
        if tokens.last().map(String::as_str) != Some(field) {
            tokens.push(field.to_string());
        }
        let parent = field_path(&tokens[..tokens.len() - 1]);
        return (tokens, format!("unknown field `{field}` in {parent}{hint}"));
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or(rest);
        return (tokens.clone(), format!("missing field `{field}` in {}", field_path(&tokens)));
    }
    if message.starts_with("data did not match any variant of untagged enum EnvValue") {
        return (
            tokens.clone(),
            format!("{}: an env value must be a string or {{secret: <name>}}", field_path(&tokens)),
        );
    }
    let text = message
        .replace("f64", "a number")
        .replace("u32", "a whole number")
        .replace("u64", "a whole number")
        .replace("i64", "a whole number");
    (tokens.clone(), format!("{}: {text}", field_path(&tokens)))
}

/// ` (did you mean `x`?)` when a candidate is close to `word`, else "".
pub fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    let lower = word.to_ascii_lowercase();
    // Names from other tools (Kubernetes, Chronos, docker) that are far from Marathon's
    // spelling; offered only when the suggestion is a valid field here.
    const ALIASES: &[(&str, &str)] = &[
        ("command", "cmd"),
        ("comand", "cmd"),
        ("memory", "mem"),
        ("replicas", "instances"),
        ("arguments", "args"),
        ("environment", "env"),
        ("environmentvariables", "env"),
        ("image", "container"),
    ];
    if let Some((_, target)) =
        ALIASES.iter().find(|(alias, target)| *alias == lower && candidates.contains(target))
    {
        return format!(" (did you mean `{target}`?)");
    }
    let best = candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(&lower, &c.to_ascii_lowercase()), *c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((_, c)) => format!(" (did you mean `{c}`?)"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn hints_cover_typos_and_other_tools_names() {
        let marathon = ["id", "cmd", "args", "cpus", "mem", "instances", "env", "container"];
        assert_eq!(did_you_mean("cpu", &marathon), " (did you mean `cpus`?)");
        assert_eq!(did_you_mean("comand", &marathon), " (did you mean `cmd`?)");
        assert_eq!(did_you_mean("replicas", &marathon), " (did you mean `instances`?)");
        assert_eq!(did_you_mean("zzz", &marathon), "");
        // An alias is offered only where its target is a field.
        let chronos = ["name", "command", "arguments"];
        assert_eq!(did_you_mean("comand", &chronos), " (did you mean `command`?)");
        assert_eq!(did_you_mean("memory", &chronos), "");
    }
}
