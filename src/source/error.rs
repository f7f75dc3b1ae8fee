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
pub struct LoadErrors(pub Vec<LoadError>, Transience);

/// Whether loading again without any change can succeed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Transience {
    /// The manifests are wrong: the same files fail the same way.
    #[default]
    Permanent,
    /// A git operation was rewriting the checkout: retry soon.
    CheckoutBusy,
}

impl LoadErrors {
    /// Problems in the manifests themselves.
    pub fn new(errors: Vec<LoadError>) -> Self {
        LoadErrors(errors, Transience::Permanent)
    }

    /// The checkout was being rewritten by git (its `index.lock` exists): nothing was
    /// read, and loading again shortly will do.
    pub fn checkout_busy(error: LoadError) -> Self {
        LoadErrors(vec![error], Transience::CheckoutBusy)
    }

    /// Whether loading again without a change to the files can succeed (a git
    /// operation was in progress), rather than the files being wrong.
    pub fn is_transient(&self) -> bool {
        self.1 == Transience::CheckoutBusy
    }

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
