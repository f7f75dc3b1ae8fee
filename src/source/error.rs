//! Load errors: each names the place (file:line:column) and says what to do.

use std::fmt;

use crate::model::Location;

/// One problem found while loading manifests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// Where the problem is.
    pub location: Location,
    /// What is wrong, and what to do about it.
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Every problem found in one load, sorted by location.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadErrors(pub Vec<LoadError>);

impl LoadErrors {
    /// The errors, in file / line order.
    pub fn iter(&self) -> impl Iterator<Item = &LoadError> {
        self.0.iter()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// None at all?
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadErrors {}
