//! Git for the plan pipeline: a worktree and branch per spec, commits made by
//! the daemon, rebasing a spec on its target branch, merging it back, cleaning
//! up worktrees nobody wants, and watching the target branch move.
//!
//! # Why the git CLI and not git2
//!
//! Everything here runs the `git` program (no shell, `GIT_TERMINAL_PROMPT=0`,
//! `LC_ALL=C`, stderr captured into the error). libgit2 (behind git2) has no
//! worktree-aware rebase and would add a slow C build; more importantly the
//! CLI gives users git's exact semantics: their hooks, their config
//! (`core.autocrlf`, merge drivers, attributes), the conflict reporting they
//! know, and the same on-disk state their own `git` then sees. A spec worktree
//! paused mid-rebase is an ordinary rebase a person can finish by hand.
//!
//! The costs of a process per operation are small next to an LLM iteration
//! (`bench/git.sh` measures them); the one hot path, watching the target
//! branch, reads the ref file directly and runs no process at all.
//!
//! # Names
//!
//! A spec's branch is [`spec_branch`] (`td/<PLAN-N>/<spec>`); its worktree
//! path comes from `taskdaemon_workspace::Workspace::spec_worktree`.

mod cmd;
mod error;
mod integrate;
mod repo;
mod watcher;
mod worktree;

pub use error::GitError;
pub use integrate::{MergeOutcome, MergeStrategy, RebaseOutcome};
pub use repo::{Identity, Oid, Repo, WorktreeInfo};
pub use watcher::{MainWatcher, Moved};
pub use worktree::{INCLUDE_FILE, Worktree};

/// The branch a spec works on: `td/<plan>/<spec>` (the domain's rule).
pub use taskdaemon_core::pipeline::spec_branch;
