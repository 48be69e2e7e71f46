//! The one error type of the crate; every message names the repository (or
//! worktree), the branch where one is involved, and for a failed git command
//! the command line and git's own stderr.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("not a git repository: {}", .0.display())]
    NotARepository(PathBuf),
    /// `git` itself could not be started (not installed, not on PATH).
    #[error("cannot run `{command}` in {}: {source} (is git installed and on PATH?)", repo.display())]
    Spawn {
        repo: PathBuf,
        command: String,
        #[source]
        source: io::Error,
    },
    #[error("git failed in {}: `{command}` exited with {status}: {stderr}", repo.display())]
    Command {
        repo: PathBuf,
        command: String,
        status: String,
        stderr: String,
    },
    #[error("repository {}: branch '{branch}' does not exist", repo.display())]
    NoSuchBranch { repo: PathBuf, branch: String },
    #[error("repository {}: invalid branch name: {reason}", repo.display())]
    InvalidBranch { repo: PathBuf, reason: String },
    #[error(
        "repository {}: the working tree has uncommitted changes ({}); commit or stash them first",
        repo.display(), files.join(", ")
    )]
    Dirty { repo: PathBuf, files: Vec<String> },
    #[error(
        "repository {}: branch '{branch}' is checked out in {} which has uncommitted changes ({}); commit or stash them first (nothing was merged)",
        repo.display(), worktree.display(), files.join(", ")
    )]
    TargetDirty {
        repo: PathBuf,
        branch: String,
        worktree: PathBuf,
        files: Vec<String>,
    },
    #[error("repository {}: HEAD is detached, so there is no current branch", repo.display())]
    DetachedHead { repo: PathBuf },
    #[error(
        "repository {}: {} is already a worktree on {}, not on branch '{branch}'",
        repo.display(), path.display(), found.as_deref().unwrap_or("a detached HEAD")
    )]
    WorktreeOnOtherBranch {
        repo: PathBuf,
        path: PathBuf,
        branch: String,
        found: Option<String>,
    },
    #[error("repository {}: {} exists and is not an empty directory or a worktree of this repository", repo.display(), path.display())]
    PathInUse { repo: PathBuf, path: PathBuf },
    #[error("repository {}: {} is not a worktree of this repository", repo.display(), path.display())]
    NotAWorktree { repo: PathBuf, path: PathBuf },
    #[error(
        "worktree {}: a rebase is in progress; resolve it (rebase_continue) or abort it first",
        .0.display()
    )]
    RebaseInProgress(PathBuf),
    #[error("worktree {}: no rebase is in progress", .0.display())]
    NoRebaseInProgress(PathBuf),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

pub(crate) fn io_error(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> GitError {
    let path = path.into();
    move |source| GitError::Io { path, source }
}
