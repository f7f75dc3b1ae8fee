//! Manifest loading: walk a directory, parse YAML (and plain Marathon JSON) documents,
//! check them, and build the [`DesiredState`]. Any error fails the whole load: a
//! half-read repository must never lead to a write or a prune.
//!
//! This module reads files; it does not watch them (that is `runtime`) and it knows
//! nothing of live state.

mod checks;
mod document;
mod error;
pub mod revision;
pub mod sops;
pub mod template;
pub mod walk;
pub mod yaml;

use std::fs;
use std::path::{Path, PathBuf};

use crate::model::DesiredState;

pub use document::did_you_mean;
pub use error::{LoadError, LoadErrors};
pub use walk::MAX_FILE_BYTES;

/// Parse and check the text of one manifest file named `path` (its format is taken
/// from the extension; anything else is read as YAML). Cross-file checks (duplicates,
/// references, cycles) are the job of [`load_dir`].
pub fn load_text(path: &Path, text: &str) -> (Vec<crate::model::DesiredObject>, Vec<LoadError>) {
    let format = walk::format_of(path).unwrap_or(walk::FileFormat::Yaml);
    let renderer =
        template::Renderer::new(serde_json::Value::Object(serde_json::Map::new()), Default::default());
    let file = walk::ManifestFile { path: std::sync::Arc::from(path), format };
    document::load_file(&file, text, &renderer)
}

/// How to load a manifest directory beyond its files. `Debug` names the environment
/// variables but never prints their values (an age key, a password).
#[derive(Clone, Default)]
pub struct LoadOptions {
    /// Extra template values files (`--values`), applied in order over the root's
    /// `values.yaml` and SOPS files; later wins.
    pub values_files: Vec<PathBuf>,
    /// Environment variables; those named `MESOSYNC_VAR_*` become template values, and
    /// the age identity variables ([`sops::KEY_FILE_VARS`], [`sops::KEY_VARS`]) decrypt
    /// SOPS values files. Given by the caller (the CLI passes its process environment):
    /// loading never reads process globals itself.
    pub env: Vec<(String, String)>,
    /// Where templates are rendered (the CLI: in a child process, bounded in memory).
    pub isolation: template::Isolation,
}

impl std::fmt::Debug for LoadOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("LoadOptions").field("values_files", &self.values_files).field("env", &names).finish()
    }
}

/// The prefix of environment variables that become template values.
pub use template::ENV_PREFIX;

/// Whether the environment variable `name` is one loading uses (template values and
/// age identities): what the CLI passes in [`LoadOptions::env`].
pub fn is_load_env(name: &str) -> bool {
    name.starts_with(ENV_PREFIX) || sops::KEY_FILE_VARS.contains(&name) || sops::KEY_VARS.contains(&name)
}

/// Load every manifest under `root` with no extra values files and no environment.
/// See [`load_dir_with`].
pub fn load_dir(root: &Path) -> Result<DesiredState, LoadErrors> {
    load_dir_with(root, &LoadOptions::default())
}

/// The `index.lock` of the git checkout holding `root`, if it exists: git holds it
/// while it rewrites the working tree. `.git` may be a directory or, in worktrees and
/// submodules, a file saying `gitdir: <path>`.
pub fn git_operation_in_progress(root: &Path) -> Option<PathBuf> {
    let root = fs::canonicalize(root).ok()?;
    for dir in root.ancestors() {
        let dot_git = dir.join(".git");
        let git_dir = if dot_git.is_dir() {
            dot_git
        } else if dot_git.is_file() {
            let text = fs::read_to_string(&dot_git).ok()?;
            dir.join(text.strip_prefix("gitdir:")?.trim())
        } else {
            continue;
        };
        let lock = git_dir.join("index.lock");
        return lock.exists().then_some(lock);
    }
    None
}

/// Load every manifest under `root`. Returns all errors found, not just the first,
/// sorted by file, line and column.
pub fn load_dir_with(root: &Path, options: &LoadOptions) -> Result<DesiredState, LoadErrors> {
    load(root, options, None).map(|(desired, _)| desired)
}

/// The fingerprint of a manifest set's input: every manifest file's path and bytes (in
/// path order) and the template values (values files, SOPS values, `MESOSYNC_VAR_*`).
/// Two sets with equal fingerprints load to the same desired state, so a controller
/// keys a reconcile on it, as Flux and Argo CD key theirs on the revision they apply.
/// Never printed: the values it covers may be secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InputFingerprint(u64);

/// Folds a manifest set's input into its [`InputFingerprint`]: each file's path and
/// content fingerprint in the walk's order, then the values' fingerprint. The loader
/// and [`input_fingerprint`] both fold through it, so they agree by construction.
#[derive(Default)]
struct InputHasher(xxhash_rust::xxh3::Xxh3);

impl InputHasher {
    fn file(&mut self, path: &Path, content: u64) {
        // A path never holds NUL: path, NUL, content cannot be read two ways.
        self.0.update(path.as_os_str().as_encoded_bytes());
        self.0.update(&[0]);
        self.0.update(&content.to_le_bytes());
    }

    fn finish(mut self, values: u64) -> InputFingerprint {
        self.0.update(&values.to_le_bytes());
        InputFingerprint(self.0.digest())
    }
}

/// The fingerprint of the template values a set is rendered with.
fn values_fingerprint(values: &serde_json::Value) -> u64 {
    crate::model::fingerprint(values.to_string().as_bytes())
}

/// The [`InputFingerprint`] of the manifest set under `root` as it is now, without
/// parsing it: what [`load_dir_keyed`] would report if it loaded now. `None` when a
/// load now would fail (a git operation in progress, a file that cannot be read, a
/// values file that does not decrypt): such a set is never equal to a loaded one.
pub fn input_fingerprint(root: &Path, options: &LoadOptions) -> Option<InputFingerprint> {
    input_fingerprint_with(root, options, &mut StatCache::default())
}

/// [`input_fingerprint`], reading again only the files `cache` cannot vouch for.
pub fn input_fingerprint_with(
    root: &Path,
    options: &LoadOptions,
    cache: &mut StatCache,
) -> Option<InputFingerprint> {
    fingerprint_read_at(root, options, cache, std::time::SystemTime::now())
}

/// [`input_fingerprint_with`], with the files read at `started` (for [`SETTLE`]).
fn fingerprint_read_at(
    root: &Path,
    options: &LoadOptions,
    cache: &mut StatCache,
    started: std::time::SystemTime,
) -> Option<InputFingerprint> {
    if git_operation_in_progress(root).is_some() {
        return None;
    }
    let (files, errors) = walk::find_manifests(root);
    if !errors.is_empty() {
        return None;
    }
    let values = template::collect_values(root, &options.values_files, &options.env).ok()?;
    let mut hasher = InputHasher::default();
    let mut seen = std::collections::HashMap::with_capacity(files.len());
    for file in &files {
        let stat = StatKey::of(&file.path);
        let content = match (&stat, cache.files.remove(&file.path)) {
            (Some(now), Some((then, content))) if *now == then => content,
            _ => crate::model::fingerprint(&walk::read_regular_file(&file.path, walk::MAX_FILE_BYTES).ok()?),
        };
        if let Some(stat) = stat.filter(|s| s.settled_before(started)) {
            seen.insert(file.path.clone(), (stat, content));
        }
        hasher.file(&file.path, content);
    }
    cache.files = seen;
    Some(hasher.finish(values_fingerprint(&values.values)))
}

impl StatCache {
    /// How many files it vouches for.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether it vouches for none.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// The content fingerprints of manifest files by what `stat` said of each when it was
/// read, for [`input_fingerprint_with`]: a file with the same device, inode, size and
/// change time is not read again. Git's index rule, racy case included: the kernel
/// stamps times from a coarse clock, so a write right after a read could leave the
/// change time as it was; a file changed less than [`SETTLE`] before it was read is not
/// vouched for. A write always moves the change time (`utime` cannot set it back).
/// Holds the files of the latest look only.
#[derive(Debug, Default)]
pub struct StatCache {
    files: std::collections::HashMap<std::sync::Arc<Path>, (StatKey, u64)>,
}

/// How long before a read a file must have last changed for [`StatCache`] to keep it.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct StatKey {
    dev: u64,
    ino: u64,
    len: u64,
    ctime_s: i64,
    ctime_ns: i64,
}

impl StatKey {
    /// What `stat` (following links, as the read does) says of `path`.
    fn of(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let m = fs::metadata(path).ok()?;
        Some(StatKey {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            ctime_s: m.ctime(),
            ctime_ns: m.ctime_nsec(),
        })
    }

    /// Whether the file last changed at least [`SETTLE`] before `read`.
    fn settled_before(&self, read: std::time::SystemTime) -> bool {
        let since_epoch = read.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let read_s = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX);
        self.ctime_s.saturating_add(i64::try_from(SETTLE.as_secs()).unwrap_or(i64::MAX)) < read_s
    }
}

/// Parsed files kept between loads (of the same directory by a long-running
/// controller, or of two revisions by a preview): a file whose path and bytes (and,
/// for a template, the template values) did not change is not parsed again. Keyed by
/// content, not by modification time, so an edit within one timestamp tick is never
/// missed. Cross-file checks always run on the whole set.
#[derive(Debug, Default)]
pub struct LoadCache {
    files: std::collections::HashMap<PathBuf, CachedFile>,
    /// The own secret values of every object of the last successful load, and the
    /// values of objects that have disappeared since: a prune of an object whose
    /// manifest is gone still masks what it had marked secret.
    known_secrets: std::collections::HashMap<crate::model::ObjectRef, crate::model::SecretValues>,
    retired_secrets: std::collections::BTreeSet<String>,
}

/// At most this many values of vanished objects are remembered (oldest are not
/// told apart: the set is simply not grown further).
const MAX_RETIRED_SECRETS: usize = 100_000;

#[derive(Debug)]
struct CachedFile {
    content: u64,
    /// The values a template was rendered with (`None` for other files, which do not
    /// depend on them).
    values: Option<u64>,
    objects: Vec<crate::model::DesiredObject>,
    errors: Vec<LoadError>,
}

impl LoadCache {
    /// Record the own secrets of the objects of a successful load; the values of
    /// objects that were in the last load and are gone now are kept as retired.
    /// Returns every retired value.
    fn remember_secrets(&mut self, objects: &[crate::model::DesiredObject]) -> Vec<String> {
        let now: std::collections::HashMap<crate::model::ObjectRef, crate::model::SecretValues> =
            objects.iter().map(|o| (o.object.clone(), o.secrets.clone())).collect();
        for (object, secrets) in &self.known_secrets {
            if !now.contains_key(object) {
                for value in secrets.iter() {
                    if self.retired_secrets.len() < MAX_RETIRED_SECRETS {
                        self.retired_secrets.insert(value.to_string());
                    }
                }
            }
        }
        self.known_secrets = now;
        self.retired_secrets.iter().cloned().collect()
    }
}

/// What reading one manifest file gave.
enum FileOutcome {
    /// Could not be read (or is not text).
    Unreadable(LoadError),
    /// Same bytes as the cached copy (their fingerprint).
    Unchanged(u64),
    /// Parsed now.
    Parsed { content: u64, objects: Vec<crate::model::DesiredObject>, errors: Vec<LoadError> },
}

/// Where a load reads the bytes of a manifest file: the file system, or the blobs of
/// a git revision ([`revision`]). The error says why it could not be read.
pub(crate) type ReadFile<'a> = dyn Fn(&walk::ManifestFile) -> Result<Vec<u8>, String> + Sync + 'a;

/// A manifest set found but not parsed yet: its files (sorted by path), the problems
/// met finding them, and the template values (or why they could not be read).
pub(crate) struct FoundSet {
    pub files: Vec<walk::ManifestFile>,
    pub errors: Vec<LoadError>,
    pub values: Result<serde_json::Value, Vec<LoadError>>,
    /// Where its templates are rendered.
    pub isolation: template::Isolation,
    /// The values decrypted from SOPS files (secrets to mask everywhere).
    pub secrets: Vec<String>,
}

/// Read `file`: the fingerprint of its bytes, and the bytes as text unless they are
/// those of the cached copy.
fn read_file(
    file: &walk::ManifestFile,
    read: &ReadFile<'_>,
    values: u64,
    cache: Option<&LoadCache>,
) -> Result<(u64, Option<String>), LoadError> {
    let bytes = read(file).map_err(|e| walk::file_error(&file.path, &format!("cannot read: {e}")))?;
    let content = crate::model::fingerprint(&bytes);
    if cache
        .and_then(|c| c.files.get(&*file.path))
        .is_some_and(|c| c.content == content && c.values.is_none_or(|v| v == values))
    {
        return Ok((content, None));
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        walk::file_error(&file.path, "is not UTF-8 text (a binary file named like a manifest?)")
    })?;
    Ok((content, Some(text)))
}

/// Read every file (in order, one thread: reading and hashing is cheap), then parse
/// the new and changed ones — on every core when there are many, as on a cold start,
/// where parsing YAML is most of the time. Each outcome is in the place of its file,
/// so nothing depends on scheduling.
fn read_files(
    files: &[walk::ManifestFile],
    read: &ReadFile<'_>,
    renderer: &template::Renderer,
    values_print: u64,
    cache: Option<&LoadCache>,
) -> Vec<FileOutcome> {
    let mut outcomes = Vec::with_capacity(files.len());
    let mut to_parse = Vec::new();
    for (i, file) in files.iter().enumerate() {
        outcomes.push(match read_file(file, read, values_print, cache) {
            Err(e) => FileOutcome::Unreadable(e),
            Ok((content, None)) => FileOutcome::Unchanged(content),
            Ok((content, Some(text))) => {
                to_parse.push((i, (content, text)));
                FileOutcome::Unchanged(content) // replaced below
            }
        });
    }
    let parse = |(i, (content, text)): (usize, (u64, String))| {
        let (objects, errors) = document::load_file(&files[i], &text, renderer);
        (i, FileOutcome::Parsed { content, objects, errors })
    };
    // A few files (an edit) are parsed at once; threads only pay off for many.
    let workers = std::thread::available_parallelism().map_or(1, usize::from).min(to_parse.len() / 8).max(1);
    let parsed: Vec<(usize, FileOutcome)> = if workers == 1 {
        to_parse.into_iter().map(parse).collect()
    } else {
        let queue = std::sync::Mutex::new(to_parse.into_iter());
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(|| {
                        let mut mine = Vec::new();
                        loop {
                            let next = queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).next();
                            let Some(job) = next else { break };
                            mine.push(parse(job));
                        }
                        mine
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    };
    for (i, outcome) in parsed {
        outcomes[i] = outcome;
    }
    outcomes
}

/// [`load_dir_with`], reusing the files of `cache` that did not change since the
/// last load (and updating it).
pub fn load_dir_cached(
    root: &Path,
    options: &LoadOptions,
    cache: &mut LoadCache,
) -> Result<DesiredState, LoadErrors> {
    load(root, options, Some(cache)).map(|(desired, _)| desired)
}

/// [`load_dir_cached`], with the [`InputFingerprint`] of the bytes and values it read
/// (what [`input_fingerprint`] says of the set as long as nothing changes).
pub fn load_dir_keyed(
    root: &Path,
    options: &LoadOptions,
    cache: &mut LoadCache,
) -> Result<(DesiredState, InputFingerprint), LoadErrors> {
    load(root, options, Some(cache))
}

fn load(
    root: &Path,
    options: &LoadOptions,
    cache: Option<&mut LoadCache>,
) -> Result<(DesiredState, InputFingerprint), LoadErrors> {
    if let Some(lock) = git_operation_in_progress(root) {
        // Mid-`git checkout` some files are new, some old and one may be cut short: a
        // set that can parse cleanly yet miss objects (which a prune would delete).
        let message = "a git operation (checkout, pull, rebase) is in progress in this checkout; \
                       not reading a half-written working tree (retried when it is finished)";
        return Err(LoadErrors::checkout_busy(walk::file_error(&lock, message)));
    }
    let (files, errors) = walk::find_manifests(root);
    let (values, secrets) = match template::collect_values(root, &options.values_files, &options.env) {
        Ok(v) => (Ok(v.values), v.secrets),
        Err(e) => (Err(e), Vec::new()),
    };
    let isolation = options.isolation.clone();
    // Only regular files, bounded: a FIFO named `x.yaml` must not block the reader.
    let read = |f: &walk::ManifestFile| walk::read_regular_file(&f.path, walk::MAX_FILE_BYTES);
    load_found(FoundSet { files, errors, values, secrets, isolation }, &read, cache)
}

/// Parse and check a found manifest set, reading each file with `read`: the one
/// loader behind both the work tree and git revisions, so both report the same errors
/// at the same places. Also returns the fingerprint of what it read.
pub(crate) fn load_found(
    found: FoundSet,
    read: &ReadFile<'_>,
    mut cache: Option<&mut LoadCache>,
) -> Result<(DesiredState, InputFingerprint), LoadErrors> {
    let FoundSet { files, mut errors, values, secrets: decrypted, isolation } = found;
    let values = match values {
        Ok(v) => v,
        Err(mut e) => {
            // Without its values every template would fail too ("undefined variable"):
            // report the cause alone.
            errors.append(&mut e);
            errors.sort_by(|a, b| a.location.cmp(&b.location).then_with(|| a.message.cmp(&b.message)));
            return Err(LoadErrors::new(errors));
        }
    };
    let values_print = values_fingerprint(&values);
    if let Some(cache) = cache.as_deref_mut() {
        // Forget files that are gone, so the cache never outgrows the directory.
        let present: std::collections::HashSet<&Path> = files.iter().map(|f| &*f.path).collect();
        cache.files.retain(|p, _| present.contains(p.as_path()));
    }
    let mut objects = Vec::new();
    let renderer = template::Renderer::new(values, isolation);
    let read = read_files(&files, read, &renderer, values_print, cache.as_deref());
    let mut input = InputHasher::default();
    for (file, outcome) in files.iter().zip(read) {
        match outcome {
            FileOutcome::Unreadable(e) => errors.push(e),
            FileOutcome::Unchanged(content) => {
                input.file(&file.path, content);
                if let Some(hit) = cache.as_deref().and_then(|c| c.files.get(&*file.path)) {
                    objects.extend(hit.objects.iter().cloned());
                    errors.extend(hit.errors.iter().cloned());
                }
            }
            FileOutcome::Parsed { content, objects: mut found, errors: mut problems } => {
                input.file(&file.path, content);
                if let Some(cache) = cache.as_deref_mut() {
                    let values = (file.format == walk::FileFormat::YamlTemplate).then_some(values_print);
                    let entry =
                        CachedFile { content, values, objects: found.clone(), errors: problems.clone() };
                    cache.files.insert(file.path.to_path_buf(), entry);
                }
                objects.append(&mut found);
                errors.append(&mut problems);
            }
        }
    }
    let objects = checks::dedupe(objects, &mut errors);
    checks::check_references(&objects, &mut errors);
    checks::check_cycles(&objects, &mut errors);
    if !errors.is_empty() {
        // A value decrypted from a SOPS file may end up quoted in an error (a
        // template that renders it where a number belongs): never print it.
        if !decrypted.is_empty() {
            let masker = crate::diff::mask::Masker::new(&crate::model::SecretValues::new(decrypted.clone()));
            for e in &mut errors {
                e.message = masker.text(&e.message);
            }
        }
        errors.sort_by(|a, b| a.location.cmp(&b.location).then_with(|| a.message.cmp(&b.message)));
        errors.dedup();
        return Err(LoadErrors::new(errors));
    }
    let mut shared = decrypted;
    if let Some(cache) = cache {
        shared.extend(cache.remember_secrets(&objects));
    }
    let secrets = crate::model::SecretValues::new(shared);
    let mut objects = objects;
    if !secrets.is_empty() {
        for o in &mut objects {
            o.secrets = o.secrets.with(&secrets);
        }
    }
    let (mut apps, mut jobs): (Vec<_>, Vec<_>) =
        objects.into_iter().partition(|o| o.object.kind == crate::model::ObjectKind::MarathonApp);
    apps.sort_by(|a, b| a.object.id.cmp(&b.object.id));
    jobs.sort_by(|a, b| a.object.id.cmp(&b.object.id));
    Ok((DesiredState { apps, jobs, secrets }, input.finish(values_print)))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    /// The stat cache never changes a fingerprint: after every kind of change, with
    /// the files read long after they changed (every one vouched for) or right after
    /// (none), the cached look says what a fresh one says.
    #[test]
    fn the_stat_cache_vouches_for_settled_files_only_and_changes_no_fingerprint() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let app = |id: &str, cmd: &str| format!("kind: MarathonApp\nspec: {{id: {id}, cmd: {cmd}}}\n");
        fs::write(root.join("a.yaml"), app("/a", "sleep")).unwrap();
        fs::write(root.join("b.yaml"), app("/b", "sleep")).unwrap();
        let options = LoadOptions::default();
        let later = SystemTime::now() + Duration::from_secs(60);
        let mut cache = StatCache::default();
        let mut check = |what: &str, at: SystemTime| {
            let cached = fingerprint_read_at(root, &options, &mut cache, at);
            assert_eq!(cached, input_fingerprint(root, &options), "{what}");
            (cached.unwrap(), cache.len())
        };
        // Just written: read, not vouched for.
        let (first, kept) = check("fresh files", SystemTime::now());
        assert_eq!(kept, 0);
        // Read a minute later: both vouched for; the same answer from the cache.
        assert_eq!(check("settled files", later), (first, 2));
        assert_eq!(check("settled files, from the cache", later), (first, 2));
        // An edit of the same length moves the change time: read again.
        fs::write(root.join("b.yaml"), app("/b", "slept")).unwrap();
        let (edited, _) = check("an edit of the same length", later);
        assert_ne!(edited, first);
        // The same bytes written again: read again, the same input.
        fs::write(root.join("b.yaml"), app("/b", "slept")).unwrap();
        assert_eq!(check("the same bytes again", later).0, edited);
        // A file replaced by a rename over it (another inode), one added, one removed.
        fs::write(root.join("new.yaml"), app("/b", "sleep")).unwrap();
        fs::rename(root.join("new.yaml"), root.join("b.yaml")).unwrap();
        assert_eq!(check("a file renamed over another", later).0, first);
        fs::write(root.join("c.yaml"), app("/c", "sleep")).unwrap();
        assert_eq!(check("a file added", later).1, 3);
        fs::remove_file(root.join("c.yaml")).unwrap();
        assert_eq!(check("a file removed", later), (first, 2));
    }
}
