//! The manifest checkout as a git work tree: which commit is applied, whether the tree
//! has local changes, and `--git-pull` (fetch + fast-forward). Runs the `git` CLI, so
//! whatever credentials and remotes the user configured (file://, local paths, ssh)
//! just work; mesosync never writes the repository except by fast-forwarding.

use std::path::{Path, PathBuf};

use tokio::process::Command;

use crate::status::GitRevision;

/// A git command that failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// `git` could not be started.
    #[error("cannot run git: {0}")]
    Spawn(#[from] std::io::Error),
    /// `git` ran and failed.
    #[error("`git {args}` in {dir} failed ({status}): {stderr}")]
    Failed {
        /// The arguments, joined.
        args: String,
        /// The working directory.
        dir: PathBuf,
        /// The exit status.
        status: std::process::ExitStatus,
        /// What git printed on stderr.
        stderr: String,
    },
}

/// The work tree holding `dir`, if any: found by looking for `.git` in `dir` and its
/// ancestors (no process is started for plain directories).
pub fn work_tree(dir: &Path) -> Option<PathBuf> {
    let dir = std::path::absolute(dir).ok()?;
    dir.ancestors().find(|d| d.join(".git").exists()).map(Path::to_path_buf)
}

/// HEAD and dirtiness of the checkout holding `dir`; `Ok(None)` outside a git work tree
/// and in a repository without commits. Dirtiness counts changes under `dir` only (a
/// manifest directory may be one folder of a bigger repository).
pub async fn revision(dir: &Path) -> Result<Option<GitRevision>, GitError> {
    if work_tree(dir).is_none() {
        return Ok(None);
    }
    let commit = match git(dir, &["rev-parse", "--verify", "--quiet", "HEAD"]).await {
        Ok(out) => out.trim().to_string(),
        // `--verify --quiet` fails silently only for an unborn HEAD (no commit yet).
        Err(GitError::Failed { stderr, .. }) if stderr.is_empty() => return Ok(None),
        Err(e) => return Err(e),
    };
    // --no-optional-locks: a status must not rewrite .git/index, which would show up
    // as a file event in a watched tree.
    let status = git(dir, &["--no-optional-locks", "status", "--porcelain", "--", "."]).await?;
    Ok(Some(GitRevision { commit, dirty: !status.trim().is_empty() }))
}

/// What a pull did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pulled {
    /// HEAD before.
    pub before: String,
    /// HEAD after.
    pub after: String,
}

impl Pulled {
    /// The checkout moved.
    pub fn changed(&self) -> bool {
        self.before != self.after
    }
}

/// `git fetch origin <branch>` then `git merge --ff-only FETCH_HEAD`: never a merge
/// commit, never a rewrite of local work (a diverged checkout is an error to fix by hand).
pub async fn pull(dir: &Path, branch: &str) -> Result<Pulled, GitError> {
    let before = git(dir, &["rev-parse", "HEAD"]).await?.trim().to_string();
    git(dir, &["fetch", "--quiet", "origin", branch]).await?;
    git(dir, &["merge", "--ff-only", "--quiet", "FETCH_HEAD"]).await?;
    let after = git(dir, &["rev-parse", "HEAD"]).await?.trim().to_string();
    Ok(Pulled { before, after })
}

/// Run `git -C dir args…` and return its stdout.
async fn git(dir: &Path, args: &[&str]) -> Result<String, GitError> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        // Never wait for a password prompt: a controller has no terminal.
        .env("GIT_TERMINAL_PROMPT", "0")
        .kill_on_drop(true)
        .output()
        .await?;
    if !output.status.success() {
        return Err(GitError::Failed {
            args: args.join(" "),
            dir: dir.to_path_buf(),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_repository_without_commits_has_no_revision() {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "--quiet"]).await.unwrap();
        assert!(work_tree(dir.path()).is_some());
        assert_eq!(revision(dir.path()).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_broken_git_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        let err = revision(dir.path()).await.unwrap_err();
        assert!(err.to_string().contains("not a git repository"), "{err}");
    }

    #[tokio::test]
    async fn plain_directories_have_no_revision() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(work_tree(dir.path()), None);
        assert_eq!(revision(dir.path()).await.unwrap(), None);
    }
}
