//! Finding and reading manifest files: a recursive walk that skips hidden entries,
//! refuses symlinks that leave the root, anything that is not a regular file (a FIFO
//! or device named `*.yaml` would block the reader forever) and files too large to be
//! a manifest; and [`read_regular_file`], the one bounded way every manifest and
//! values file is read.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::LoadError;
use crate::model::Location;

/// The largest manifest file accepted. Real manifests are a few KiB; anything this
/// large is a mistake (a dump, a binary), and reading it would stall the controller.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// What kind of manifest a file holds, by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// `*.yaml` / `*.yml`: one or more `kind`/`sync`/`spec` documents.
    Yaml,
    /// `*.json`: a plain Marathon app definition.
    Json,
    /// `*.yaml.j2` / `*.yml.j2`: a Jinja template rendering to YAML documents.
    YamlTemplate,
}

/// A manifest file found by the walk.
#[derive(Clone, Debug)]
pub struct ManifestFile {
    /// The path as shown to users (the root joined with the relative path).
    pub path: Arc<Path>,
    /// Its format.
    pub format: FileFormat,
}

/// The format of `path`, or `None` when it is not a manifest.
pub fn format_of(path: &Path) -> Option<FileFormat> {
    let name = path.file_name()?.to_str()?;
    if name.ends_with(".yaml.j2") || name.ends_with(".yml.j2") {
        return Some(FileFormat::YamlTemplate);
    }
    match path.extension()?.to_str()? {
        "yaml" | "yml" => Some(FileFormat::Yaml),
        "json" => Some(FileFormat::Json),
        _ => None,
    }
}

/// The names of the default values file at the manifest root, the first found wins.
pub const DEFAULT_VALUES: [&str; 2] = ["values.yaml", "values.yml"];

/// A file at the manifest root that holds template values rather than manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootValues {
    /// `values.yaml` / `values.yml`.
    Defaults,
    /// A SOPS-encrypted file (`*.sops.yaml`, …), decrypted in memory.
    Sops,
}

/// The one rule, for a directory and for a git revision alike, of which files are
/// template values: `rel` is a path relative to the manifest root.
pub fn root_values(rel: &Path) -> Option<RootValues> {
    if rel.components().count() != 1 {
        return None;
    }
    let name = rel.file_name()?.to_str()?;
    if DEFAULT_VALUES.contains(&name) {
        Some(RootValues::Defaults)
    } else if super::sops::is_sops_name(rel) {
        Some(RootValues::Sops)
    } else {
        None
    }
}

/// Every manifest file below `root`, sorted by path, and the problems met on the way.
pub fn find_manifests(root: &Path) -> (Vec<ManifestFile>, Vec<LoadError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    let real_root = match fs::canonicalize(root) {
        Ok(r) if r.is_dir() => r,
        Ok(_) => {
            errors.push(file_error(root, "is not a directory"));
            return (files, errors);
        }
        Err(e) => {
            errors.push(file_error(root, &format!("cannot read the manifest directory: {e}")));
            return (files, errors);
        }
    };
    let mut seen = std::collections::HashSet::new();
    // The root's values files hold template values, not manifests.
    let entries = fs::read_dir(root).into_iter().flatten().filter_map(|e| e.ok());
    for entry in entries.filter(|e| root_values(Path::new(&e.file_name())).is_some()) {
        if let Ok(real) = fs::canonicalize(entry.path()) {
            seen.insert(real);
        }
    }
    walk(root, &real_root, &mut seen, &mut files, &mut errors);
    files.sort_by(|a, b| a.path.cmp(&b.path));
    (files, errors)
}

/// `seen` holds canonical paths already visited: a file or directory reached twice
/// through a symlink inside the root is read once (and a symlink loop ends).
fn walk(
    dir: &Path,
    real_root: &Path,
    seen: &mut std::collections::HashSet<PathBuf>,
    files: &mut Vec<ManifestFile>,
    errors: &mut Vec<LoadError>,
) {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            errors.push(file_error(dir, &format!("cannot list directory: {e}")));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let hidden = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        let Ok(link_meta) = fs::symlink_metadata(&path) else { continue };
        if link_meta.file_type().is_symlink() {
            match fs::canonicalize(&path) {
                Ok(target) if !target.starts_with(real_root) => {
                    errors.push(file_error(
                        &path,
                        &format!(
                            "symlink points outside the manifest root (to {}); refusing to follow it",
                            target.display()
                        ),
                    ));
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    if format_of(&path).is_some() {
                        errors.push(file_error(&path, &format!("broken symlink: {e}")));
                    }
                    continue;
                }
            }
        }
        let Ok(meta) = fs::metadata(&path) else { continue };
        let Ok(real) = fs::canonicalize(&path) else { continue };
        if !seen.insert(real) {
            continue;
        }
        if meta.is_dir() {
            walk(&path, real_root, seen, files, errors);
        } else if let Some(format) = format_of(&path) {
            if !meta.is_file() {
                errors.push(file_error(&path, NOT_REGULAR));
                continue;
            }
            if meta.len() > MAX_FILE_BYTES {
                errors.push(file_error(&path, &too_large(meta.len(), MAX_FILE_BYTES)));
                continue;
            }
            files.push(ManifestFile { path: Arc::from(path.as_path()), format });
        }
    }
}

const NOT_REGULAR: &str =
    "is not a regular file (a FIFO, socket or device named like a manifest); refusing to read it";

/// Read `path` whole, if it is a regular file of at most `limit` bytes. The file is
/// opened without blocking and checked on the open handle, so a FIFO (or a file
/// swapped for one after the walk) is refused instead of blocking the reader until a
/// writer appears, and a file growing after the walk is cut off at `limit + 1` bytes
/// and refused.
pub fn read_regular_file(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err(NOT_REGULAR.to_string());
    }
    if meta.len() > limit {
        return Err(too_large(meta.len(), limit));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64, limit));
    }
    Ok(bytes)
}

fn too_large(len: u64, limit: u64) -> String {
    format!("file is {len} bytes, over the {limit} byte limit for a manifest; is it really one?")
}

/// An error about a whole file or directory.
pub fn file_error(path: &Path, message: &str) -> LoadError {
    LoadError { location: Location::file_only(Arc::from(path)), message: message.to_string() }
}
