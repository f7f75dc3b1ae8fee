//! Provenance: where in which file a value was written.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Serialize, Serializer};

/// A place in a manifest file: path, 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// The file, as found under the manifest root (root-relative where possible).
    pub file: Arc<Path>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

impl Location {
    /// A location in `file`.
    pub fn new(file: Arc<Path>, line: u32, column: u32) -> Self {
        Self { file, line, column }
    }

    /// The whole file (line 0 is printed as just the path).
    pub fn file_only(file: Arc<Path>) -> Self {
        Self { file, line: 0, column: 0 }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file.display())
        } else {
            write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
        }
    }
}

impl Serialize for Location {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Where every value of one manifest document was written: a map from JSON pointer
/// (relative to the document, e.g. `/spec/container/docker/image`) to line and column.
///
/// A controller holds one per object for its whole life (tens of thousands), so the
/// pointers are kept as 64-bit hashes in a sorted vector (16 bytes an entry) rather
/// than as strings in a tree (about 100 bytes an entry). A collision among the few
/// hundred pointers of one document is vanishingly unlikely and would only misplace a
/// line number in a message.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Provenance {
    file: Option<Arc<Path>>,
    /// Shared between copies (a reconcile copies every desired object out of the load
    /// cache); written only while a document is being read.
    positions: Arc<Vec<(u64, u32, u32)>>,
}

/// A stable (process-independent) hash of a JSON pointer.
fn pointer_key(pointer: &str) -> u64 {
    super::fingerprint(pointer.as_bytes())
}

impl Provenance {
    /// An empty provenance for `file`.
    pub fn new(file: Arc<Path>) -> Self {
        Self { file: Some(file), positions: Arc::default() }
    }

    /// Record that the value at `pointer` starts at `line`:`column` (a later record of
    /// the same pointer replaces the earlier one).
    pub fn insert(&mut self, pointer: String, line: u32, column: u32) {
        let key = pointer_key(&pointer);
        let positions = Arc::make_mut(&mut self.positions);
        match positions.binary_search_by_key(&key, |e| e.0) {
            Ok(i) => positions[i] = (key, line, column),
            Err(i) => positions.insert(i, (key, line, column)),
        }
    }

    /// Drop the spare capacity left by [`Provenance::insert`] (a controller keeps one
    /// per object for its whole life).
    pub fn compact(&mut self) {
        if self.positions.capacity() > self.positions.len() {
            self.positions = Arc::new(self.positions.to_vec());
        }
    }

    fn position(&self, pointer: &str) -> Option<(u32, u32)> {
        let key = pointer_key(pointer);
        self.positions
            .binary_search_by_key(&key, |e| e.0)
            .ok()
            .map(|i| (self.positions[i].1, self.positions[i].2))
    }

    /// The file this document came from.
    pub fn file(&self) -> Arc<Path> {
        self.file.clone().unwrap_or_else(|| Arc::from(PathBuf::from("<unknown>").as_path()))
    }

    /// The location of `pointer`, or of its nearest recorded ancestor.
    pub fn locate(&self, pointer: &str) -> Location {
        let mut p = pointer;
        loop {
            if let Some((line, column)) = self.position(p) {
                return Location::new(self.file(), line, column);
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return Location::file_only(self.file()),
            }
        }
    }

    /// The exact location of `pointer`, if one was recorded.
    pub fn get(&self, pointer: &str) -> Option<Location> {
        self.position(pointer).map(|(l, c)| Location::new(self.file(), l, c))
    }
}
