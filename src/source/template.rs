//! Jinja templates (`*.yaml.j2`), rendered with minijinja before parsing — the way
//! kolla-mesos rendered its service definitions from `globals.yml` / `all.yml`.
//!
//! Values come from `values.yaml` in the manifest root (the defaults), then each
//! `--values FILE` in order (later wins, maps merged deeply), then `MESOSYNC_VAR_<NAME>`
//! environment variables (`<name>` lower-cased, a string). Undefined variables are
//! errors (strict mode) naming the template's file and line. Rendering keeps
//! provenance: every line of the output is mapped back to the template line it came
//! from, so a diff or an error still points into the template.
//!
//! Rendering is bounded, because a template is code: each render runs at most
//! [`RENDER_FUEL`] engine steps (an endless or huge loop is an error, not a hang), its
//! output is cut off at [`MAX_RENDERED_BYTES`] like a manifest file, all renders of one
//! load together at [`MAX_RENDERED_TOTAL`], and values files obey the file limit.
//! Memory is the one thing an engine cannot meter (`{% set b = a ~ a %}` doubles a
//! string in one step, and a failed allocation aborts the process), so the binary
//! renders each template in a child process of its own ([`Isolation::Process`]),
//! limited to [`RENDER_MEMORY`] of address space and killed after [`RENDER_TIME`].

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Map, Value};
use similar::{DiffOp, TextDiff};

use super::LoadError;
use super::walk::{MAX_FILE_BYTES, file_error, read_regular_file};

/// Engine steps one render may take. The Kolla templates take a few thousand; this
/// is well under a second of work, and far above any real template.
pub const RENDER_FUEL: u64 = 5_000_000;
/// The most one template may render to: the limit of a manifest file.
pub const MAX_RENDERED_BYTES: u64 = MAX_FILE_BYTES;
/// The most all the templates of one load may render to together.
pub const MAX_RENDERED_TOTAL: u64 = 64 * MAX_FILE_BYTES;

/// Address space a child process rendering one template may use.
pub const RENDER_MEMORY: u64 = 512 * 1024 * 1024;
/// Wall-clock time a child process rendering one template may take.
pub const RENDER_TIME: Duration = Duration::from_secs(20);
/// The hidden subcommand of the `mesosync` binary that renders one template.
pub const RENDER_COMMAND: &str = "render-template";

/// Where templates are rendered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Isolation {
    /// In this process: bounded in steps and output, not in memory. For library use
    /// and tests with trusted templates.
    #[default]
    InProcess,
    /// In a child process, `<exe> render-template`, bounded in memory and time too.
    /// `exe` must be the `mesosync` binary.
    Process(PathBuf),
}

/// What the renders of one load may still produce, shared by the threads that parse.
#[derive(Debug)]
pub struct RenderBudget(AtomicU64);

impl RenderBudget {
    /// A budget of `bytes` rendered bytes.
    pub fn new(bytes: u64) -> Self {
        Self(AtomicU64::new(bytes))
    }

    /// Take `bytes` from the budget; false when not that much is left.
    fn take(&self, bytes: u64) -> bool {
        self.0.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| left.checked_sub(bytes)).is_ok()
    }
}

impl Default for RenderBudget {
    fn default() -> Self {
        Self::new(MAX_RENDERED_TOTAL)
    }
}

/// Render output, refused past a limit (so a render that would produce gigabytes fails
/// at the limit instead of allocating them).
struct CappedOutput {
    bytes: Vec<u8>,
    limit: u64,
}

impl Write for CappedOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if (self.bytes.len() + buf.len()) as u64 > self.limit {
            return Err(std::io::Error::other("over the limit"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Render `name` from `env` into at most `limit` bytes.
fn render_capped(
    env: &minijinja::Environment<'_>,
    name: &str,
    source: &str,
    context: &minijinja::Value,
    limit: u64,
) -> Result<String, minijinja::Error> {
    let template = env.template_from_named_str(name, source)?;
    let mut out = CappedOutput { bytes: Vec::new(), limit };
    template.render_captured_to(context, &mut out)?;
    String::from_utf8(out.bytes)
        .map_err(|_| minijinja::Error::new(minijinja::ErrorKind::BadSerialization, "output is not UTF-8"))
}

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

/// Renders the templates of one load: the values, where to render, and what the
/// renders may still produce together.
#[derive(Debug)]
pub struct Renderer {
    values: Value,
    isolation: Isolation,
    budget: RenderBudget,
}

impl Renderer {
    /// A renderer for one load, with a fresh [`MAX_RENDERED_TOTAL`] budget.
    pub fn new(values: Value, isolation: Isolation) -> Self {
        Self { values, isolation, budget: RenderBudget::default() }
    }

    /// The template values.
    pub fn values(&self) -> &Value {
        &self.values
    }

    /// Render `template` (the text of `path`) as the isolation says, within
    /// [`RENDER_FUEL`] and [`MAX_RENDERED_BYTES`], taking its output from the budget.
    pub fn render(&self, path: &Path, template: &str) -> Result<(String, LineMap), LoadError> {
        match &self.isolation {
            Isolation::InProcess => render(path, template, &self.values, &self.budget),
            Isolation::Process(exe) => {
                let (rendered, map) = render_in_child(exe, path, template, &self.values)?;
                take_budget(path, &self.budget, &rendered)?;
                Ok((rendered, map))
            }
        }
    }
}

/// What a child process is asked to render.
#[derive(serde::Serialize, serde::Deserialize)]
struct RenderRequest {
    path: PathBuf,
    template: String,
    values: Value,
}

/// What it answers.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum RenderAnswer {
    Rendered { text: String, lines: Vec<u32> },
    Failed { line: u32, column: u32, message: String },
}

fn render_in_child(
    exe: &Path,
    path: &Path,
    template: &str,
    values: &Value,
) -> Result<(String, LineMap), LoadError> {
    let failed = |message: String| file_error(path, &message);
    let request =
        RenderRequest { path: path.to_path_buf(), template: template.to_string(), values: values.clone() };
    let request = serde_json::to_vec(&request).map_err(|e| failed(format!("cannot render: {e}")))?;
    let mut child = Command::new(exe)
        .arg(RENDER_COMMAND)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| failed(format!("cannot start the template renderer {}: {e}", exe.display())))?;
    let (stdin, stdout) = (child.stdin.take(), child.stdout.take());
    // Feed and read on their own threads, so that the wait below is the only one and
    // is bounded whatever the child does.
    let (sent, answer) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let fed = stdin.map(|mut input| input.write_all(&request));
        drop(fed);
        let mut out = Vec::new();
        let limit = 3 * MAX_RENDERED_BYTES + 4096;
        let read = stdout.map(|output| output.take(limit).read_to_end(&mut out));
        let _ = sent.send(read.map(|_| out));
    });
    let out = answer.recv_timeout(RENDER_TIME);
    if out.is_err() {
        let _ = child.kill();
    }
    let status = child.wait().map_err(|e| failed(format!("template renderer: {e}")))?;
    let out = match out {
        Err(_) => {
            return Err(failed(format!(
                "template did not finish rendering within {}s; stopped",
                RENDER_TIME.as_secs()
            )));
        }
        Ok(out) => out.unwrap_or_default(),
    };
    if !status.success() {
        return Err(failed(format!(
            "template rendering was stopped ({status}): it needed more than {} MiB of memory \
             (a value growing without bound?)",
            RENDER_MEMORY / (1024 * 1024)
        )));
    }
    match serde_json::from_slice::<RenderAnswer>(&out) {
        Ok(RenderAnswer::Rendered { text, lines }) => Ok((text, LineMap(lines))),
        Ok(RenderAnswer::Failed { line, column, message }) => {
            let mut error = failed(message);
            error.location.line = line;
            error.location.column = column;
            Err(error)
        }
        Err(e) => Err(failed(format!("the template renderer answered nonsense: {e}"))),
    }
}

/// The child's side (`mesosync render-template`): limit this process to
/// [`RENDER_MEMORY`], read one request from `input`, render it in process, write the
/// answer to `output`.
pub fn serve_render_request(input: impl Read, output: impl Write) -> std::io::Result<()> {
    let limit = rustix::process::Rlimit { current: Some(RENDER_MEMORY), maximum: Some(RENDER_MEMORY) };
    rustix::process::setrlimit(rustix::process::Resource::As, limit).map_err(std::io::Error::from)?;
    let mut bytes = Vec::new();
    input.take(MAX_FILE_BYTES * 8).read_to_end(&mut bytes)?;
    let request: RenderRequest = serde_json::from_slice(&bytes).map_err(std::io::Error::other)?;
    let budget = RenderBudget::default();
    let answer = match render(&request.path, &request.template, &request.values, &budget) {
        Ok((text, LineMap(lines))) => RenderAnswer::Rendered { text, lines },
        Err(e) => {
            RenderAnswer::Failed { line: e.location.line, column: e.location.column, message: e.message }
        }
    };
    serde_json::to_writer(output, &answer).map_err(std::io::Error::other)
}

fn take_budget(path: &Path, budget: &RenderBudget, rendered: &str) -> Result<(), LoadError> {
    if budget.take(rendered.len() as u64) {
        return Ok(());
    }
    let message = format!(
        "the templates of this directory render to more than {MAX_RENDERED_TOTAL} bytes together; refusing the rest"
    );
    Err(file_error(path, &message))
}

/// Render `template` (the text of `path`) with `values` in this process, within
/// [`RENDER_FUEL`] and [`MAX_RENDERED_BYTES`], taking its output from `budget`.
pub fn render(
    path: &Path,
    template: &str,
    values: &Value,
    budget: &RenderBudget,
) -> Result<(String, LineMap), LoadError> {
    let mut env = minijinja::Environment::new();
    env.set_fuel(Some(RENDER_FUEL));
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
    let rendered = render_capped(&env, &name, template, &context, MAX_RENDERED_BYTES)
        .map_err(|e| template_error(path, &e))?;
    take_budget(path, budget, &rendered)?;
    // Markers make each line longer; the shadow is for line numbers only, so failing it
    // (over its own cap) just falls back to the diff mapping.
    let shadow_limit = MAX_RENDERED_BYTES.saturating_mul(2) + 32 * rendered.lines().count() as u64;
    let shadow = render_capped(&env, &name, &shadow_template(template), &context, shadow_limit);
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
    error.message = match e.kind() {
        minijinja::ErrorKind::UndefinedError => format!("undefined variable in template{detail}"),
        minijinja::ErrorKind::OutOfFuel => format!(
            "template did not finish within its budget of {RENDER_FUEL} steps (an endless or very large loop?)"
        ),
        minijinja::ErrorKind::WriteFailure => {
            format!("template renders to more than {MAX_RENDERED_BYTES} bytes, the limit for a manifest")
        }
        other => format!("template error ({other}){detail}"),
    };
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
pub fn read_values(path: &Path, env: &[(String, String)]) -> Result<ValuesFile, LoadError> {
    let bytes = read_regular_file(path, MAX_FILE_BYTES)
        .map_err(|e| file_error(path, &format!("cannot read values: {e}")))?;
    values_from_bytes(path, &bytes, env)
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

/// The values in the bytes of the values file `path` (from disk or from a git blob):
/// parsed, and decrypted when it is a SOPS file.
pub fn values_from_bytes(
    path: &Path,
    bytes: &[u8],
    env: &[(String, String)],
) -> Result<ValuesFile, LoadError> {
    let text = std::str::from_utf8(bytes).map_err(|_| file_error(path, "values file is not UTF-8 text"))?;
    let value = parse_values(path, text)?;
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
                .filter(|p| {
                    let name = Path::new(p.file_name().unwrap_or_default());
                    super::walk::root_values(name) == Some(super::walk::RootValues::Sops) && p.is_file()
                })
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
    // `exists`, not `is_file`: a FIFO named values.yaml is refused, not skipped.
    let defaults = super::walk::DEFAULT_VALUES.iter().map(|n| root.join(n)).find(|p| p.exists());
    let sops_files = root_sops_files(root);
    merge_values(defaults.iter().chain(&sops_files).chain(files).map(|p| read_values(p, env)), env)
}

/// Merge values files in order (later wins), then `MESOSYNC_VAR_*` from `env`; the
/// secret values of every file are kept. Every file's error is reported.
pub fn merge_values(
    files: impl IntoIterator<Item = Result<ValuesFile, LoadError>>,
    env: &[(String, String)],
) -> Result<ValuesFile, Vec<LoadError>> {
    let mut out = ValuesFile { values: Value::Object(Map::new()), secrets: Vec::new() };
    let mut errors = Vec::new();
    for file in files {
        match file {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_maps_lines_back_to_the_template() {
        let template =
            "a: 1\n{% for s in services %}\n- {{ s }}\n{% endfor %}\nimage: {{ registry }}/x\nz: 2\n";
        let values = serde_json::json!({"services": ["x", "y"], "registry": "r:5000"});
        let (out, map) = render(Path::new("t.yaml.j2"), template, &values, &RenderBudget::default()).unwrap();
        assert_eq!(out, "a: 1\n- x\n- y\nimage: r:5000/x\nz: 2\n");
        let lines: Vec<u32> = (1..=5).map(|l| map.template_line(l)).collect();
        assert_eq!(lines, [1, 3, 3, 5, 6]);
    }

    #[test]
    fn multi_line_values_fall_back_to_the_diff_mapping() {
        let template = "a: 1\nb: |\n  {{ text | indent(2) }}\nc: 3\n";
        let values = serde_json::json!({"text": "x\ny"});
        let (out, map) = render(Path::new("t.yaml.j2"), template, &values, &RenderBudget::default()).unwrap();
        assert_eq!(out, "a: 1\nb: |\n  x\n  y\nc: 3\n");
        let lines: Vec<u32> = (1..=5).map(|l| map.template_line(l)).collect();
        assert_eq!(lines, [1, 2, 3, 3, 4]);
    }

    #[test]
    fn undefined_variables_are_errors_with_the_line() {
        let err = render(
            Path::new("t.yaml.j2"),
            "a: 1\nb: {{ nope }}\n",
            &serde_json::json!({}),
            &RenderBudget::default(),
        )
        .unwrap_err();
        assert_eq!(err.location.line, 2);
        assert!(err.message.starts_with("undefined variable in template"), "{}", err.message);
        let err = render(
            Path::new("t.yaml.j2"),
            "a: {{ x.y }}\n",
            &serde_json::json!({"x": {}}),
            &RenderBudget::default(),
        )
        .unwrap_err();
        assert_eq!(err.location.line, 1);
    }

    #[test]
    fn later_values_win_and_maps_merge() {
        let mut base = serde_json::json!({"a": 1, "m": {"x": 1, "y": 2}});
        merge(&mut base, serde_json::json!({"a": 2, "m": {"y": 3, "z": 4}}));
        assert_eq!(base, serde_json::json!({"a": 2, "m": {"x": 1, "y": 3, "z": 4}}));
    }
}
