//! Manifest loading: walk a directory, parse YAML (and plain Marathon JSON) documents,
//! check them, and build the [`DesiredState`]. Any error fails the whole load: a
//! half-read repository must never lead to a write or a prune.
//!
//! This module reads files; it does not watch them (that is `runtime`) and it knows
//! nothing of live state.

mod checks;
mod document;
mod error;
pub mod walk;
pub mod yaml;

use std::fs;
use std::path::Path;

use crate::model::DesiredState;

pub use document::did_you_mean;
pub use error::{LoadError, LoadErrors};
pub use walk::MAX_FILE_BYTES;

/// Parse and check the text of one manifest file named `path` (its format is taken
/// from the extension; anything else is read as YAML). Cross-file checks (duplicates,
/// references, cycles) are the job of [`load_dir`].
pub fn load_text(path: &Path, text: &str) -> (Vec<crate::model::DesiredObject>, Vec<LoadError>) {
    let format = walk::format_of(path).unwrap_or(walk::FileFormat::Yaml);
    document::load_file(&walk::ManifestFile { path: std::sync::Arc::from(path), format }, text)
}

/// Load every manifest under `root`. Returns all errors found, not just the first,
/// sorted by file, line and column.
pub fn load_dir(root: &Path) -> Result<DesiredState, LoadErrors> {
    let (files, mut errors) = walk::find_manifests(root);
    let mut objects = Vec::new();
    for file in &files {
        let bytes = match fs::read(&file.path) {
            Ok(b) => b,
            Err(e) => {
                errors.push(walk::file_error(&file.path, &format!("cannot read: {e}")));
                continue;
            }
        };
        let Ok(text) = String::from_utf8(bytes) else {
            errors.push(walk::file_error(
                &file.path,
                "is not UTF-8 text (a binary file named like a manifest?)",
            ));
            continue;
        };
        let (mut found, mut problems) = document::load_file(file, &text);
        objects.append(&mut found);
        errors.append(&mut problems);
    }
    let objects = checks::dedupe(objects, &mut errors);
    checks::check_references(&objects, &mut errors);
    checks::check_cycles(&objects, &mut errors);
    if !errors.is_empty() {
        errors.sort_by(|a, b| a.location.cmp(&b.location).then_with(|| a.message.cmp(&b.message)));
        errors.dedup();
        return Err(LoadErrors(errors));
    }
    let (mut apps, mut jobs): (Vec<_>, Vec<_>) =
        objects.into_iter().partition(|o| o.object.kind == crate::model::ObjectKind::MarathonApp);
    apps.sort_by(|a, b| a.object.id.cmp(&b.object.id));
    jobs.sort_by(|a, b| a.object.id.cmp(&b.object.id));
    Ok(DesiredState { apps, jobs })
}
