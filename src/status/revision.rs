//! The revision of the manifest checkout a reconcile applied, as reported (logs,
//! /status, metrics). Reading it from git is `runtime`'s job; this is only the value.

use serde::Serialize;

/// Where the applied manifests come from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GitRevision {
    /// The HEAD commit (full hash).
    pub commit: String,
    /// The manifest directory has uncommitted or untracked changes: what is applied
    /// is not exactly `commit`.
    pub dirty: bool,
}

impl GitRevision {
    /// The first 12 characters of the commit, for log lines.
    pub fn short(&self) -> &str {
        self.commit.get(..12).unwrap_or(&self.commit)
    }
}

impl std::fmt::Display for GitRevision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.short())?;
        if self.dirty {
            f.write_str("-dirty")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_display() {
        let r = GitRevision { commit: "0123456789abcdef0123".into(), dirty: true };
        assert_eq!(r.short(), "0123456789ab");
        assert_eq!(r.to_string(), "0123456789ab-dirty");
        let r = GitRevision { commit: "abc".into(), dirty: false };
        assert_eq!(r.to_string(), "abc");
    }
}
