//! Jinja templates (`*.yaml.j2`), rendered with minijinja before parsing — the way
//! kolla-mesos rendered its service definitions from `globals.yml` / `all.yml`.
//!
//! Values come from `values.yaml` in the manifest root (the defaults), then each
//! `--values FILE` in order (later wins, maps merged deeply), then `MESOSYNC_VAR_<NAME>`
//! environment variables (`<name>` lower-cased, a string). Undefined variables are
//! errors (strict mode) naming the template's file and line. Rendering keeps
//! provenance: every line of the output is mapped back to the template line it came
//! from, so a diff or an error still points into the template.

use std::path::Path;

use serde_json::{Map, Value};
use similar::{DiffOp, TextDiff};

use super::LoadError;
use super::walk::file_error;

/// Prefix of environment variables that become template values.
pub const ENV_PREFIX: &str = "MESOSYNC_VAR_";

/// For each line of a rendered text (index 0 = line 1), the template line it came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LineMap(Vec<u32>);

impl LineMap {
    /// The template line of output line `line` (1-based); unknown lines map to themselves.
    pub fn template_line(&self, line: u32) -> u32 {
        line.checked_sub(1).and_then(|i| self.0.get(i as usize)).copied().unwrap_or(line)
    }
}

/// Render `template` (the text of `path`) with `values`.
pub fn render(path: &Path, template: &str, values: &Value) -> Result<(String, LineMap), LoadError> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    // Keep a trailing newline, and let `{% … %}` lines vanish cleanly as kolla's did.
    env.set_keep_trailing_newline(true);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    // minijinja would JSON-escape every value in a `*.yaml.j2` file by default; kolla's
    // templates substitute raw text. `| tojson` quotes a value when a template wants it.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    let name = path.display().to_string();
    let context = minijinja::Value::from_serialize(values);
    let rendered = env
        .template_from_named_str(&name, template)
        .and_then(|t| t.render(&context))
        .map_err(|e| template_error(path, &e))?;
    let shadow =
        env.template_from_named_str(&name, &shadow_template(template)).and_then(|t| t.render(&context));
    let map = match shadow {
        Ok(shadow) => {
            marker_map(&shadow, rendered.lines().count()).unwrap_or_else(|| line_map(template, &rendered))
        }
        Err(_) => line_map(template, &rendered),
    };
    Ok((rendered, map))
}

const MARKER: &str = "@mesosync-line:";

/// The template with the same control flow whose every output line says which
/// template line produced it: tag-only lines are kept as they are, any other line is
/// replaced by the tags it holds followed by a line marker.
fn shadow_template(template: &str) -> String {
    let tags = regex::Regex::new(r"\{%.*?%\}").expect("a valid regex");
    let mut out = String::with_capacity(template.len() * 2);
    for (i, line) in template.split_inclusive('\n').enumerate() {
        let body = line.trim_end_matches('\n');
        let trimmed = body.trim();
        let tag_only = tags.replace_all(trimmed, "").trim().is_empty() && !trimmed.is_empty();
        let comment_only = trimmed.starts_with("{#") && trimmed.ends_with("#}");
        if tag_only || comment_only {
            out.push_str(line);
            continue;
        }
        for tag in tags.find_iter(body) {
            out.push_str(tag.as_str());
        }
        out.push_str(&format!("{MARKER}{}", i + 1));
        if line.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// Read the markers of a rendered shadow; `None` when it does not line up with the
/// real output (an expression produced several lines).
fn marker_map(shadow: &str, lines: usize) -> Option<LineMap> {
    let shadow_lines: Vec<&str> = shadow.lines().collect();
    if shadow_lines.len() != lines {
        return None;
    }
    shadow_lines
        .iter()
        .map(|l| l.rsplit_once(MARKER).and_then(|(_, n)| n.trim().parse::<u32>().ok()))
        .collect::<Option<Vec<u32>>>()
        .map(LineMap)
}

fn template_error(path: &Path, e: &minijinja::Error) -> LoadError {
    let mut error = file_error(path, "");
    if let Some(line) = e.line() {
        error.location.line = line as u32;
        error.location.column = 1;
    }
    let detail = e.detail().map(|d| format!(": {d}")).unwrap_or_default();
    let kind = match e.kind() {
        minijinja::ErrorKind::UndefinedError => "undefined variable in template".to_string(),
        other => format!("template error ({other})"),
    };
    error.message = format!("{kind}{detail}");
    error
}

/// Fallback when the shadow does not line up: map rendered lines to template lines
/// with a line diff: unchanged lines map
/// exactly; each line of a changed region maps to the most similar template line of
/// that region (in order, skipping pure `{% … %}` tag lines), so a loop body's output
/// points at the body line and a substituted value at the line that holds it.
fn line_map(template: &str, rendered: &str) -> LineMap {
    let old_lines: Vec<&str> = template.lines().collect();
    let new_lines: Vec<&str> = rendered.lines().collect();
    let diff = TextDiff::from_lines(template, rendered);
    let mut map = vec![0u32; new_lines.len()];
    for op in diff.ops() {
        match *op {
            DiffOp::Equal { old_index, new_index, len } => {
                for k in 0..len {
                    map[new_index + k] = (old_index + k) as u32 + 1;
                }
            }
            DiffOp::Insert { old_index, new_index, new_len } => {
                let region = old_index.saturating_sub(1)..(old_index + 1).min(old_lines.len());
                map_region(&old_lines, region, &new_lines, new_index..new_index + new_len, &mut map);
            }
            DiffOp::Replace { old_index, old_len, new_index, new_len } => {
                map_region(
                    &old_lines,
                    old_index..old_index + old_len,
                    &new_lines,
                    new_index..new_index + new_len,
                    &mut map,
                );
            }
            DiffOp::Delete { .. } => {}
        }
    }
    LineMap(map)
}

fn map_region(
    old_lines: &[&str],
    old: std::ops::Range<usize>,
    new_lines: &[&str],
    new: std::ops::Range<usize>,
    map: &mut [u32],
) {
    let is_tag = |l: &str| {
        let t = l.trim();
        t.starts_with("{%") && t.ends_with("%}")
    };
    let candidates: Vec<usize> = old.clone().filter(|&i| !is_tag(old_lines[i])).collect();
    let mut first_allowed = 0;
    for n in new {
        let best = candidates
            .iter()
            .enumerate()
            .skip(first_allowed)
            .map(|(pos, &i)| {
                (strsim::normalized_levenshtein(old_lines[i].trim(), new_lines[n].trim()), pos, i)
            })
            .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)));
        map[n] = match best {
            Some((_, pos, i)) => {
                first_allowed = pos;
                i as u32 + 1
            }
            None => old.start as u32 + 1,
        };
    }
}

/// Merge `overlay` into `base`: maps deeply, anything else replaced.
pub fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Read one values file (a YAML or JSON mapping). A SOPS file (named `*.sops.yaml` or
/// carrying a `sops:` block) is decrypted in memory with the age identities of `env`.
pub fn read_values(path: &Path) -> Result<Value, LoadError> {
    read_values_with(path, &[]).map(|v| v.values)
}

/// A values file as read: its values, and the secret values it held (every value that
/// was SOPS-encrypted).
#[derive(Default)]
pub struct ValuesFile {
    /// The values (decrypted).
    pub values: Value,
    /// The text of every decrypted value.
    pub secrets: Vec<String>,
}

fn read_values_with(path: &Path, env: &[(String, String)]) -> Result<ValuesFile, LoadError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| file_error(path, &format!("cannot read values: {e}")))?;
    let value = parse_values(path, &text)?;
    if super::sops::is_sops(&value) {
        let identities = super::sops::AgeIdentities::from_env(env);
        let decrypted = super::sops::decrypt(value, &identities)
            .map_err(|e| file_error(path, &format!("cannot decrypt this SOPS file: {e}")))?;
        return Ok(ValuesFile { values: decrypted.values, secrets: decrypted.secrets });
    }
    if super::sops::is_sops_name(path) {
        return Err(file_error(
            path,
            "is named like a SOPS file but has no `sops` metadata: encrypt it (`sops encrypt -i FILE`) \
             or rename it; refusing to read secrets kept in clear text as if they were encrypted",
        ));
    }
    Ok(ValuesFile { values: value, secrets: Vec::new() })
}

/// Parse the text of the values file `path` (a YAML mapping; empty is `{}`).
pub fn parse_values(path: &Path, text: &str) -> Result<Value, LoadError> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    let value: Value = serde_saphyr::from_str_with_options(text, options).map_err(|e| {
        let mut err = file_error(path, "");
        if let Some(loc) = e.location() {
            err.location.line = loc.line() as u32;
            err.location.column = loc.column() as u32;
        }
        // The parser's message may quote the text it choked on: in a SOPS file that
        // is at worst ciphertext, but never print more than its first line.
        err.message = format!("invalid values file: {}", e.to_string().lines().next().unwrap_or_default());
        err
    })?;
    if !value.is_object() {
        return Err(file_error(path, "a values file must be a mapping of names to values"));
    }
    Ok(value)
}

/// The SOPS values files of the manifest root (`*.sops.yaml`, `*.sops.yml`,
/// `*.sops.json`), sorted by name: read after `values.yaml`, before `--values`.
pub fn root_sops_files(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<std::path::PathBuf> = std::fs::read_dir(root)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| super::sops::is_sops_name(p) && p.is_file())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The values for templates under `root`: `root/values.yaml` (if any), the root's
/// SOPS files, then `files` in order, then `MESOSYNC_VAR_*` from `env` — and the secret
/// values decrypted on the way. `env` also carries the age identity variables.
pub fn collect_values(
    root: &Path,
    files: &[std::path::PathBuf],
    env: &[(String, String)],
) -> Result<ValuesFile, Vec<LoadError>> {
    let mut out = ValuesFile { values: Value::Object(Map::new()), secrets: Vec::new() };
    let mut errors = Vec::new();
    let defaults = ["values.yaml", "values.yml"].iter().map(|n| root.join(n)).find(|p| p.is_file());
    let sops_files = root_sops_files(root);
    for path in defaults.iter().chain(&sops_files).chain(files) {
        match read_values_with(path, env) {
            Ok(v) => {
                merge(&mut out.values, v.values);
                out.secrets.extend(v.secrets);
            }
            Err(e) => errors.push(e),
        }
    }
    for (key, value) in env {
        if let Some(name) = key.strip_prefix(ENV_PREFIX) {
            merge(&mut out.values, serde_json::json!({ name.to_ascii_lowercase(): value }));
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// Merge values files already read (in order, later wins), then `MESOSYNC_VAR_*` from
/// `env`. Every file that could not be read is an error. (Used for git revisions,
/// whose SOPS files are not decrypted.)
pub fn merge_values(
    files: impl IntoIterator<Item = Result<Value, LoadError>>,
    env: &[(String, String)],
) -> Result<Value, Vec<LoadError>> {
    let mut values = Value::Object(Map::new());
    let mut errors = Vec::new();
    for file in files {
        match file {
            Ok(v) => merge(&mut values, v),
            Err(e) => errors.push(e),
        }
    }
    for (key, value) in env {
        if let Some(name) = key.strip_prefix(ENV_PREFIX) {
            merge(&mut values, serde_json::json!({ name.to_ascii_lowercase(): value }));
        }
    }
    if errors.is_empty() { Ok(values) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_maps_lines_back_to_the_template() {
        let template =
            "a: 1\n{% for s in services %}\n- {{ s }}\n{% endfor %}\nimage: {{ registry }}/x\nz: 2\n";
        let values = serde_json::json!({"services": ["x", "y"], "registry": "r:5000"});
        let (out, map) = render(Path::new("t.yaml.j2"), template, &values).unwrap();
        assert_eq!(out, "a: 1\n- x\n- y\nimage: r:5000/x\nz: 2\n");
        let lines: Vec<u32> = (1..=5).map(|l| map.template_line(l)).collect();
        assert_eq!(lines, [1, 3, 3, 5, 6]);
    }

    #[test]
    fn multi_line_values_fall_back_to_the_diff_mapping() {
        let template = "a: 1\nb: |\n  {{ text | indent(2) }}\nc: 3\n";
        let values = serde_json::json!({"text": "x\ny"});
        let (out, map) = render(Path::new("t.yaml.j2"), template, &values).unwrap();
        assert_eq!(out, "a: 1\nb: |\n  x\n  y\nc: 3\n");
        let lines: Vec<u32> = (1..=5).map(|l| map.template_line(l)).collect();
        assert_eq!(lines, [1, 2, 3, 3, 4]);
    }

    #[test]
    fn undefined_variables_are_errors_with_the_line() {
        let err =
            render(Path::new("t.yaml.j2"), "a: 1\nb: {{ nope }}\n", &serde_json::json!({})).unwrap_err();
        assert_eq!(err.location.line, 2);
        assert!(err.message.starts_with("undefined variable in template"), "{}", err.message);
        let err =
            render(Path::new("t.yaml.j2"), "a: {{ x.y }}\n", &serde_json::json!({"x": {}})).unwrap_err();
        assert_eq!(err.location.line, 1);
    }

    #[test]
    fn later_values_win_and_maps_merge() {
        let mut base = serde_json::json!({"a": 1, "m": {"x": 1, "y": 2}});
        merge(&mut base, serde_json::json!({"a": 2, "m": {"y": 3, "z": 4}}));
        assert_eq!(base, serde_json::json!({"a": 2, "m": {"x": 1, "y": 3, "z": 4}}));
    }
}
