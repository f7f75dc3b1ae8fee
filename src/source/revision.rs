//! Reading the manifest set of a git revision straight from git's objects: the tree
//! of the commit is listed (`git ls-tree -r -z -l`) and the blobs read in one batch
//! (`git cat-file --batch`). Nothing is checked out: the work tree, the index and the
//! refs are never written (`GIT_OPTIONAL_LOCKS=0` keeps git from even refreshing the
//! index). The files then go through the same loader as a directory
//! ([`super::load_found`]), so a revision reports the same errors at the same
//! file:line as its checkout would.
//!
//! The selection follows the directory walk ([`super::walk`]): hidden entries skipped,
//! the root's `values.yaml` read as template values, manifests by extension, the size
//! limit. A symlink to a file inside the root is followed (a file reached twice is read
//! once); one leaving the root is an error, and so is a symlink to a directory (not
//! followed in a revision). Submodules are skipped.
//!
//! Blobs are kept by object id in [`Blobs`], so two revisions sharing most files read
//! each blob once, and the [`super::LoadCache`] shared by both loads parses a file
//! present unchanged in both once.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use super::walk::{self, ManifestFile, file_error};
use super::{FoundSet, LoadCache, LoadError, LoadErrors, LoadOptions, template};
use crate::model::DesiredState;

/// Why a revision could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RevisionError {
    /// git could not be run, or refused (not a repository, unknown revision).
    #[error("{0}")]
    Git(String),
    /// The manifests of the revision did not load.
    #[error("the manifests did not load:\n{0}")]
    Load(LoadErrors),
    /// The manifest directory does not exist at that revision.
    #[error("{0}: the manifest directory does not exist at {1}")]
    NoDirectory(PathBuf, String),
}

/// The git repository holding a manifest directory.
#[derive(Clone, Debug)]
pub struct Repository {
    /// The manifest directory as given (file names in messages start with it).
    dir: PathBuf,
    /// The top of the work tree.
    top: PathBuf,
    /// `dir` relative to `top`, with `/` separators and no trailing one (`""`: the top).
    prefix: String,
}

/// One entry of a listed tree.
#[derive(Clone, Debug)]
struct TreeEntry {
    mode: String,
    oid: String,
    size: Option<u64>,
}

/// Blob contents by object id, shared by the loads of several revisions.
#[derive(Debug, Default)]
pub struct Blobs(HashMap<String, Arc<[u8]>>);

impl Blobs {
    /// How many distinct blobs were read.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A resolved revision: the name it was given by and its commit.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Revision {
    /// As given (`origin/main`, `HEAD~1`, a hash).
    pub name: String,
    /// The full commit hash.
    pub commit: String,
}

impl Revision {
    /// The first 12 characters of the commit.
    pub fn short(&self) -> &str {
        self.commit.get(..12).unwrap_or(&self.commit)
    }
}

fn git_command(dir: &Path) -> Command {
    let mut command = Command::new("git");
    command
        .arg("-C")
        .arg(dir)
        // Never take a lock or refresh the index: reading must leave no trace.
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .stdin(Stdio::null());
    command
}

/// Run git in `dir`; its stdout, or an error with its stderr.
fn run_git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, RevisionError> {
    let output = git_command(dir)
        .args(args)
        .output()
        .map_err(|e| RevisionError::Git(format!("cannot run git: {e}")))?;
    if !output.status.success() {
        return Err(RevisionError::Git(format!(
            "`git {}` in {} failed: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(output.stdout)
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).trim().to_string()
}

impl Repository {
    /// The repository whose work tree holds `dir`.
    pub fn open(dir: &Path) -> Result<Self, RevisionError> {
        if !dir.is_dir() {
            return Err(RevisionError::Git(format!("{}: not a directory", dir.display())));
        }
        let out = text(run_git(dir, &["rev-parse", "--show-toplevel", "--show-prefix"]).map_err(|e| {
            RevisionError::Git(format!("{}: not inside a git work tree ({e})", dir.display()))
        })?);
        let mut lines = out.lines();
        let top = PathBuf::from(lines.next().unwrap_or_default());
        let prefix = lines.next().unwrap_or_default().trim_end_matches('/').to_string();
        Ok(Self { dir: dir.to_path_buf(), top, prefix })
    }

    /// The commit `name` stands for. Names starting with `-` are refused (they would
    /// read as options).
    pub fn resolve(&self, name: &str) -> Result<Revision, RevisionError> {
        if name.is_empty() || name.starts_with('-') {
            return Err(RevisionError::Git(format!("not a revision: {name:?}")));
        }
        let spec = format!("{name}^{{commit}}");
        let commit =
            text(run_git(&self.top, &["rev-parse", "--verify", "--quiet", &spec]).map_err(|_| {
                RevisionError::Git(format!("unknown revision {name:?} in {}", self.top.display()))
            })?);
        Ok(Revision { name: name.to_string(), commit })
    }

    /// The path of `rel` (relative to the top, `/`-separated) inside the tree of `commit`.
    fn tree_path(&self, commit: &str, rel: &str) -> String {
        if rel.is_empty() { format!("{commit}^{{tree}}") } else { format!("{commit}:{rel}") }
    }

    /// Every blob below the manifest directory at `commit`, by path relative to it;
    /// `None` when the directory does not exist at that commit.
    fn list(&self, commit: &str) -> Result<Option<Vec<(String, TreeEntry)>>, RevisionError> {
        let tree = self.tree_path(commit, &self.prefix);
        let kind = run_git(&self.top, &["cat-file", "-t", &tree]);
        match kind.map(text) {
            Ok(k) if k == "tree" => {}
            Ok(_) => {
                return Err(RevisionError::Git(format!(
                    "{}: not a directory at {commit}",
                    self.dir.display()
                )));
            }
            Err(_) => return Ok(None),
        }
        let out = run_git(&self.top, &["ls-tree", "-r", "-z", "-l", &tree])?;
        let mut entries = Vec::new();
        for record in out.split(|&b| b == 0).filter(|r| !r.is_empty()) {
            let record = String::from_utf8_lossy(record);
            let Some((meta, path)) = record.split_once('\t') else { continue };
            let mut fields = meta.split_whitespace();
            let (Some(mode), Some(_kind), Some(oid), Some(size)) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let entry = TreeEntry { mode: mode.to_string(), oid: oid.to_string(), size: size.parse().ok() };
            entries.push((path.to_string(), entry));
        }
        Ok(Some(entries))
    }

    /// The object id and size of the blob at `rel` (relative to the top) in `commit`.
    fn blob_at(&self, commit: &str, rel: &str) -> Result<Option<TreeEntry>, RevisionError> {
        let out = run_git(&self.top, &["ls-tree", "-z", "-l", "--full-tree", commit, "--", rel])?;
        let record =
            out.split(|&b| b == 0).find(|r| !r.is_empty()).map(|r| String::from_utf8_lossy(r).to_string());
        let Some(record) = record else { return Ok(None) };
        let Some((meta, _)) = record.split_once('\t') else { return Ok(None) };
        let fields: Vec<&str> = meta.split_whitespace().collect();
        match fields.as_slice() {
            [mode, "blob", oid, size] => {
                Ok(Some(TreeEntry { mode: mode.to_string(), oid: oid.to_string(), size: size.parse().ok() }))
            }
            _ => Ok(None),
        }
    }

    /// `path` (a `--values` file, relative to the current directory or absolute)
    /// relative to the top of the work tree, if it is inside it.
    fn inside(&self, path: &Path) -> Option<String> {
        let absolute = std::fs::canonicalize(path).ok().or_else(|| {
            let parent = std::fs::canonicalize(path.parent().filter(|p| !p.as_os_str().is_empty())?).ok()?;
            Some(parent.join(path.file_name()?))
        })?;
        let top = std::fs::canonicalize(&self.top).ok()?;
        let rel = absolute.strip_prefix(&top).ok()?;
        let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
        Some(parts?.join("/"))
    }

    /// Read the blobs of `oids` that `blobs` does not hold yet, in one `git cat-file
    /// --batch`.
    fn fetch(&self, oids: &[&str], blobs: &mut Blobs) -> Result<(), RevisionError> {
        let mut wanted: Vec<&str> = oids.iter().copied().filter(|o| !blobs.0.contains_key(*o)).collect();
        wanted.sort_unstable();
        wanted.dedup();
        if wanted.is_empty() {
            return Ok(());
        }
        let mut child = git_command(&self.top)
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| RevisionError::Git(format!("cannot run git: {e}")))?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let input: String = wanted.iter().map(|o| format!("{o}\n")).collect();
        // Write from another thread: git answers while it reads, and a full pipe
        // each way would block both.
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut result = Ok(());
        for oid in &wanted {
            match read_batch_entry(&mut out) {
                Ok(bytes) => {
                    blobs.0.insert(oid.to_string(), Arc::from(bytes));
                }
                Err(e) => {
                    result = Err(RevisionError::Git(format!("`git cat-file --batch` reading {oid}: {e}")));
                    break;
                }
            }
        }
        drop(out);
        let _ = writer.join();
        let status = child.wait().map_err(|e| RevisionError::Git(format!("git cat-file: {e}")))?;
        if result.is_ok() && !status.success() {
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut stderr);
            }
            result = Err(RevisionError::Git(format!("`git cat-file --batch` failed: {}", stderr.trim())));
        }
        result
    }
}

/// One answer of `git cat-file --batch`: `<oid> <type> <size>\n<bytes>\n`.
fn read_batch_entry(out: &mut impl BufRead) -> Result<Vec<u8>, String> {
    let mut header = String::new();
    out.read_line(&mut header).map_err(|e| e.to_string())?;
    let fields: Vec<&str> = header.split_whitespace().collect();
    let size: usize = match fields.as_slice() {
        [_, _, size] => size.parse().map_err(|_| format!("unexpected answer {header:?}"))?,
        _ => return Err(format!("unexpected answer {:?}", header.trim())),
    };
    let mut bytes = vec![0; size + 1];
    out.read_exact(&mut bytes).map_err(|e| e.to_string())?;
    bytes.pop(); // the newline after the contents
    Ok(bytes)
}

/// `path` resolved lexically (`.` and `..` removed); `None` when it leaves the root.
fn lexical(path: &Path) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(p) => parts.push(p.to_str()?),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

const SYMLINK: &str = "120000";
const SUBMODULE: &str = "160000";
/// The longest symlink target read.
const MAX_LINK_BYTES: u64 = 4096;

/// Load the manifest set under the repository's directory as it is at `revision`,
/// reading blobs through `blobs` and parsing through `cache` (both may be shared with
/// the load of another revision).
pub fn load_revision(
    repo: &Repository,
    revision: &Revision,
    options: &LoadOptions,
    blobs: &mut Blobs,
    cache: &mut LoadCache,
) -> Result<DesiredState, RevisionError> {
    let commit = revision.commit.as_str();
    let Some(entries) = repo.list(commit)? else {
        return Err(RevisionError::NoDirectory(repo.dir.clone(), revision.name.clone()));
    };
    let by_path: HashMap<&str, &TreeEntry> = entries.iter().map(|(p, e)| (p.as_str(), e)).collect();
    // Symlink targets are blobs too: read them first (a path, so a few KiB at most).
    let links: Vec<&str> = entries
        .iter()
        .filter(|(_, e)| e.mode == SYMLINK && e.size.is_some_and(|s| s <= MAX_LINK_BYTES))
        .map(|(_, e)| e.oid.as_str())
        .collect();
    repo.fetch(&links, blobs)?;

    let mut errors: Vec<LoadError> = Vec::new();
    let mut files: Vec<(ManifestFile, String)> = Vec::new();
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut values_default: Option<(PathBuf, String)> = None;
    // The root's SOPS files are template values too (read after values.yaml, in name
    // order, as `collect_values` reads them from a directory).
    let mut values_sops: Vec<(PathBuf, String)> = Vec::new();
    for (rel, entry) in &entries {
        let shown = repo.dir.join(rel);
        if rel.split('/').any(|part| part.starts_with('.')) || entry.mode == SUBMODULE {
            continue;
        }
        // Follow symlinks (a few hops) to the blob they name.
        let mut target = rel.clone();
        let mut resolved: &TreeEntry = entry;
        let mut hops = 0;
        while resolved.mode == SYMLINK {
            let Some(link) = blobs.0.get(&resolved.oid).map(|b| String::from_utf8_lossy(b).to_string())
            else {
                errors.push(file_error(&shown, "symlink target is too long to be a path"));
                break;
            };
            let base = Path::new(&target).parent().unwrap_or(Path::new(""));
            let Some(next) = lexical(&base.join(&link)) else {
                errors.push(file_error(
                    &shown,
                    &format!("symlink points outside the manifest root (to {link}); refusing to follow it"),
                ));
                break;
            };
            hops += 1;
            match by_path.get(next.as_str()) {
                Some(e) if hops <= 8 => {
                    target = next;
                    resolved = e;
                }
                _ => {
                    if walk::format_of(&shown).is_some() {
                        let why = if entries.iter().any(|(p, _)| p.starts_with(&format!("{next}/"))) {
                            "is a symlink to a directory, which is not followed when reading a git revision"
                                .to_string()
                        } else {
                            format!("broken symlink (to {link})")
                        };
                        errors.push(file_error(&shown, &why));
                    }
                    break;
                }
            }
        }
        if resolved.mode == SYMLINK {
            continue;
        }
        match walk::root_values(Path::new(rel)) {
            Some(walk::RootValues::Defaults) => {
                seen.insert(target.clone());
                if values_default.is_none() {
                    values_default = Some((shown, resolved.oid.clone()));
                }
                continue;
            }
            Some(walk::RootValues::Sops) => {
                seen.insert(target.clone());
                values_sops.push((shown, resolved.oid.clone()));
                continue;
            }
            None => {}
        }
        let Some(format) = walk::format_of(&shown) else { continue };
        if !seen.insert(target) {
            continue;
        }
        if let Some(size) = resolved.size.filter(|&s| s > walk::MAX_FILE_BYTES) {
            errors.push(file_error(
                &shown,
                &format!(
                    "file is {size} bytes, over the {} byte limit for a manifest; is it really one?",
                    walk::MAX_FILE_BYTES
                ),
            ));
            continue;
        }
        files.push((ManifestFile { path: Arc::from(shown.as_path()), format }, resolved.oid.clone()));
    }
    files.sort_by(|a, b| a.0.path.cmp(&b.0.path));

    values_sops.sort();
    let (values, secrets) = match revision_values(repo, commit, values_default, values_sops, options, blobs)?
    {
        Ok(v) => (Ok(v.values), v.secrets),
        Err(e) => (Err(e), Vec::new()),
    };
    let oids: Vec<&str> = files.iter().map(|(_, oid)| oid.as_str()).collect();
    repo.fetch(&oids, blobs)?;
    let by_file: HashMap<&Path, &Arc<[u8]>> =
        files.iter().filter_map(|(f, oid)| Some((&*f.path, blobs.0.get(oid)?))).collect();
    let read = |file: &ManifestFile| -> Result<Vec<u8>, String> {
        by_file.get(&*file.path).map(|b| b.to_vec()).ok_or_else(|| "blob missing from the repository".into())
    };
    let found = FoundSet {
        files: files.iter().map(|(f, _)| f.clone()).collect(),
        errors,
        values,
        isolation: options.isolation.clone(),
        secrets,
    };
    super::load_found(found, &read, Some(cache)).map(|(desired, _)| desired).map_err(RevisionError::Load)
}

/// Where one values file of a revision is read from.
enum ValuesSource {
    /// A blob of the revision.
    Blob(PathBuf, String),
    /// Outside the repository: the same file on disk for every revision.
    Disk(PathBuf),
    /// Not readable at this revision.
    Missing(LoadError),
}

/// The template values at `commit`: the root's `values.yaml` and SOPS files (decrypted
/// in memory, as from a directory), then each `--values`
/// file — read from the revision when it lies inside the repository (so a values-only
/// change is previewed), from disk otherwise — then `MESOSYNC_VAR_*`.
fn revision_values(
    repo: &Repository,
    commit: &str,
    default: Option<(PathBuf, String)>,
    sops: Vec<(PathBuf, String)>,
    options: &LoadOptions,
    blobs: &mut Blobs,
) -> Result<Result<template::ValuesFile, Vec<LoadError>>, RevisionError> {
    let mut sources: Vec<ValuesSource> =
        default.into_iter().chain(sops).map(|(p, oid)| ValuesSource::Blob(p, oid)).collect();
    for path in &options.values_files {
        let Some(rel) = repo.inside(path) else {
            sources.push(ValuesSource::Disk(path.clone()));
            continue;
        };
        sources.push(match repo.blob_at(commit, &rel)? {
            None => ValuesSource::Missing(file_error(
                path,
                &format!("cannot read values: not in the repository at {commit}"),
            )),
            Some(e) if e.size.is_some_and(|s| s > walk::MAX_FILE_BYTES) => ValuesSource::Missing(file_error(
                path,
                &format!("values file is over the {} byte limit", walk::MAX_FILE_BYTES),
            )),
            Some(e) => ValuesSource::Blob(path.clone(), e.oid),
        });
    }
    let oids: Vec<&str> = sources
        .iter()
        .filter_map(|s| match s {
            ValuesSource::Blob(_, oid) => Some(oid.as_str()),
            _ => None,
        })
        .collect();
    repo.fetch(&oids, blobs)?;
    let read = sources.into_iter().map(|source| match source {
        ValuesSource::Blob(path, oid) => template::values_from_bytes(&path, &blobs.0[&oid], &options.env),
        ValuesSource::Disk(path) => template::read_values(&path, &options.env),
        ValuesSource::Missing(e) => Err(e),
    });
    Ok(template::merge_values(read, &options.env))
}

/// Both sides of a preview, loaded through one [`Blobs`] and one [`LoadCache`].
#[derive(Debug)]
pub struct RevisionPair {
    /// The base revision.
    pub base: Revision,
    /// Its manifests (empty when the directory did not exist yet at base).
    pub base_state: DesiredState,
    /// The head revision; `None` for the work tree.
    pub head: Option<Revision>,
    /// Its manifests.
    pub head_state: DesiredState,
}

/// Which side of a preview failed to load, and why.
#[derive(Debug, thiserror::Error)]
#[error("{side}: {error}")]
pub struct PairError {
    /// `base` or `head`.
    pub side: &'static str,
    /// Why.
    pub error: RevisionError,
}

/// Load the manifest directory `dir` at `base` and at `head` (the work tree when
/// `None`) without touching the work tree or the index. Files identical in both are
/// read and parsed once. A directory missing at base is an empty set (a change that
/// adds the manifests); missing at head is an error.
pub fn load_pair(
    dir: &Path,
    base: &str,
    head: Option<&str>,
    options: &LoadOptions,
) -> Result<RevisionPair, PairError> {
    let fail = |side| move |error| PairError { side, error };
    let repo = Repository::open(dir).map_err(fail("base"))?;
    let base = repo.resolve(base).map_err(fail("base"))?;
    let head = head.map(|h| repo.resolve(h)).transpose().map_err(fail("head"))?;
    let mut blobs = Blobs::default();
    let mut cache = LoadCache::default();
    let head_state = match &head {
        Some(h) => load_revision(&repo, h, options, &mut blobs, &mut cache),
        None => super::load_dir_cached(dir, options, &mut cache).map_err(RevisionError::Load),
    }
    .map_err(fail("head"))?;
    let base_state = match load_revision(&repo, &base, options, &mut blobs, &mut cache) {
        Err(RevisionError::NoDirectory(..)) => DesiredState::default(),
        other => other.map_err(fail("base"))?,
    };
    Ok(RevisionPair { base, base_state, head, head_state })
}
