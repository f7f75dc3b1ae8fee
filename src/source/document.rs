//! One manifest file → its documents → checked [`DesiredObject`]s, with every
//! problem reported at the line and column it is written on.

use serde_json::Value;

use super::LoadError;
use super::template;
use super::walk::{FileFormat, ManifestFile, file_error};
use super::yaml;
use crate::model::pointer::escape_token;
use crate::model::{DesiredObject, ObjectKind, Provenance, SyncOptions};
pub use crate::system::check::did_you_mean;
use crate::system::{self, check::SpecCheck};

const TOP_LEVEL_KEYS: [&str; 3] = ["kind", "sync", "spec"];

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
        let mut checker = DocumentChecker { check: SpecCheck::default() };
        if let Some(object) = checker.check(document, &provenance) {
            objects.push(object);
        }
        for problem in checker.check.into_problems() {
            let location = provenance.locate(&problem.pointer);
            errors.push(LoadError { location, message: masker.text(&problem.message) });
        }
    }
    (objects, errors)
}

/// The secret values of a document that may not be valid: its `sync.secret` pointers
/// (those that are strings) and secret names, resolved against its `spec`.
fn document_secrets(document: &Value) -> crate::model::SecretValues {
    let kind = document.get("kind").and_then(Value::as_str).and_then(ObjectKind::from_name);
    let kind = kind.unwrap_or(ObjectKind::MarathonApp);
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

/// The checks of one document: its own (kind, `sync`) here, its spec's by its system.
struct DocumentChecker {
    check: SpecCheck,
}

impl DocumentChecker {
    fn error(&mut self, pointer: &str, message: impl Into<String>) {
        self.check.error(pointer, message);
    }

    fn check(&mut self, document: Value, provenance: &Provenance) -> Option<DesiredObject> {
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
        // Every registered kind, by its manifest name.
        let kinds: Vec<String> = ObjectKind::ALL.iter().map(ObjectKind::to_string).collect();
        let names: Vec<&str> = kinds.iter().map(String::as_str).collect();
        let expected = names.join(" or ");
        let kind = match top.get("kind") {
            Some(Value::String(k)) if ObjectKind::from_name(k).is_some() => ObjectKind::from_name(k),
            Some(Value::String(k)) => {
                let hint = did_you_mean(k, &names);
                self.error("/kind", format!("unknown kind `{k}`{hint}; expected {expected}"));
                None
            }
            Some(_) => {
                self.error("/kind", format!("`kind` must be the string {expected}"));
                None
            }
            None => {
                self.error("", format!("missing `kind` ({expected})"));
                None
            }
        };
        let sync = match top.remove("sync") {
            None | Some(Value::Null) => Some(SyncOptions::default()),
            Some(v) => self.check.typed::<SyncOptions>(&v, "/sync", "sync"),
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
        let system = system::of(kind?);
        let object = system.check_spec(&mut spec, &mut self.check)?;
        if let Some(sync) = &sync {
            if sync.runs_once() && !system.check_run_once(&spec, &mut self.check) {
                return None;
            }
        }
        Some(DesiredObject::new(object, sync?, &spec, provenance.clone()))
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
