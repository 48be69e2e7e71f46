//! Bringing a spec's work together with its target branch: rebasing the spec
//! worktree on the target (when the target moved, and before merging), and
//! merging the rebased branch into the target.
//!
//! A rebase that conflicts is left in progress in the spec's worktree, as
//! `git rebase` leaves it for a person: the conflicting files hold the
//! markers, a resolver (a person or a Ralph iteration) edits them, and
//! [`Repo::rebase_continue`] finishes (or [`Repo::rebase_abort`] gives up).
//! Leaving it there, rather than aborting, is also what crash recovery needs:
//! after a restart [`Repo::rebase_in_progress`] says the spec is mid-conflict.
//!
//! A merge only ever happens from a branch already rebased on the target, so
//! it cannot conflict: its result is the branch's tree. When the target moved
//! in between, the outcome is [`MergeOutcome::Retry`] and nothing changed.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use crate::cmd::git;
use crate::error::GitError;
use crate::repo::{Oid, Repo, worktree_admin};

static MERGES: Mutex<()> = Mutex::new(());

/// What became of a rebase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebaseOutcome {
    /// The branch already contains the target's head.
    UpToDate,
    /// The branch now sits on the target: its head went from `from` to `to`.
    Rebased { from: Oid, to: Oid },
    /// The rebase stopped on conflicts in these files (relative to the
    /// worktree) and is left in progress.
    Conflict { files: Vec<String> },
}

/// How a spec branch joins its target (`[pipeline] merge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MergeStrategy {
    /// The target is fast-forwarded to the branch (`merge = "ff"`).
    #[default]
    FastForward,
    /// A merge commit (`--no-ff`) whose second parent is the branch (`merge = "merge"`).
    MergeCommit,
}

/// What became of a merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeOutcome {
    /// The target moved from `from` to `to`.
    Merged { from: Oid, to: Oid },
    /// The target already contains the branch; nothing was done.
    AlreadyMerged { head: Oid },
    /// The branch is not based on the target's head (`target`), which moved
    /// since the last rebase: rebase on it and merge again. Nothing changed.
    Retry { target: Oid },
}

impl Repo {
    /// Rebases the branch checked out in `worktree` onto `onto_branch`'s head.
    /// The worktree must hold no uncommitted changes (commit them first with
    /// [`Repo::commit_all`]). A conflict leaves the rebase in progress; asked
    /// again while it is (after a restart, say), this reports the conflict
    /// still standing rather than starting anything.
    pub fn rebase(&self, worktree: &Path, onto_branch: &str) -> Result<RebaseOutcome, GitError> {
        let onto = self.head_of(onto_branch)?;
        if self.rebase_in_progress(worktree)? {
            return Ok(RebaseOutcome::Conflict {
                files: self.conflicted_files(worktree)?,
            });
        }
        let before = self.head_in(worktree)?;
        if self.is_ancestor(&onto, &before)? {
            return Ok(RebaseOutcome::UpToDate);
        }
        let files = self.dirty_files(worktree, false)?;
        if !files.is_empty() {
            return Err(GitError::Dirty {
                repo: worktree.to_owned(),
                files,
            });
        }
        let command = self
            .as_committer(git(worktree))
            .args(["rebase", "--quiet", onto.as_str()]);
        let output = command.output()?;
        self.after_rebase_step(worktree, before, &command, &output)
    }

    /// Whether `worktree` is stopped in the middle of a rebase.
    pub fn rebase_in_progress(&self, worktree: &Path) -> Result<bool, GitError> {
        Ok(self.rebase_dir(worktree)?.is_some())
    }

    /// Stages the resolved files and continues the rebase in progress; it may
    /// stop again on the next commit's conflicts.
    pub fn rebase_continue(&self, worktree: &Path) -> Result<RebaseOutcome, GitError> {
        let Some(dir) = self.rebase_dir(worktree)? else {
            return Err(GitError::NoRebaseInProgress(worktree.to_owned()));
        };
        let before = fs::read_to_string(dir.join("orig-head"))
            .ok()
            .and_then(|text| Oid::parse(&text));
        git(worktree).args(["add", "-A"]).run()?;
        let command = self
            .as_committer(git(worktree))
            .args(["rebase", "--continue"]);
        let output = command.output()?;
        let before = match before {
            Some(oid) => oid,
            None => self.head_in(worktree)?,
        };
        self.after_rebase_step(worktree, before, &command, &output)
    }

    /// The files of `files` (relative to `worktree`) that still hold
    /// conflict markers. A resolver that edits files without staging them
    /// (a Ralph iteration asked to resolve a conflict) is done when this is
    /// empty.
    pub fn files_with_markers(&self, worktree: &Path, files: &[String]) -> Vec<String> {
        let marked = |text: &str| {
            text.lines()
                .any(|l| l.starts_with("<<<<<<< ") || l.starts_with(">>>>>>> ") || l == "=======")
        };
        files
            .iter()
            .filter(|f| fs::read_to_string(worktree.join(f)).is_ok_and(|t| marked(&t)))
            .cloned()
            .collect()
    }

    /// Abandons the rebase in progress, putting the branch back as it was; no
    /// rebase in progress is no error.
    pub fn rebase_abort(&self, worktree: &Path) -> Result<(), GitError> {
        if self.rebase_in_progress(worktree)? {
            git(worktree).args(["rebase", "--abort"]).run()?;
        }
        Ok(())
    }

    fn after_rebase_step(
        &self,
        worktree: &Path,
        before: Oid,
        command: &crate::cmd::Git,
        output: &crate::cmd::Output,
    ) -> Result<RebaseOutcome, GitError> {
        if output.success() && !self.rebase_in_progress(worktree)? {
            return Ok(RebaseOutcome::Rebased {
                from: before,
                to: self.head_in(worktree)?,
            });
        }
        if !self.rebase_in_progress(worktree)? {
            return Err(command.failed(output));
        }
        let files = self.conflicted_files(worktree)?;
        if files.is_empty() {
            // Stopped for a reason other than a conflict (a failing hook, say).
            return Err(command.failed(output));
        }
        Ok(RebaseOutcome::Conflict { files })
    }

    fn conflicted_files(&self, worktree: &Path) -> Result<Vec<String>, GitError> {
        let out = git(worktree)
            .args(["diff", "--name-only", "--diff-filter=U", "-z"])
            .run()?;
        let mut files: Vec<String> = out
            .split('\0')
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .collect();
        files.dedup();
        Ok(files)
    }

    /// The worktree's rebase state directory, when a rebase is in progress.
    pub(crate) fn rebase_dir(&self, worktree: &Path) -> Result<Option<PathBuf>, GitError> {
        let out = git(worktree)
            .args([
                "rev-parse",
                "--git-path",
                "rebase-merge",
                "--git-path",
                "rebase-apply",
            ])
            .run()?;
        Ok(out
            .lines()
            .map(|line| worktree.join(line))
            .find(|dir| dir.is_dir()))
    }

    /// The branch a rebase in progress in `worktree` is rebasing, if any.
    pub(crate) fn rebasing_branch(&self, worktree: &Path) -> Result<Option<String>, GitError> {
        let Some(dir) = self.rebase_dir(worktree)? else {
            return Ok(None);
        };
        Ok(fs::read_to_string(dir.join("head-name"))
            .ok()
            .and_then(|name| name.trim().strip_prefix("refs/heads/").map(str::to_owned)))
    }

    /// Merges `branch` into `target`. The branch must already be rebased on
    /// the target's head, else [`MergeOutcome::Retry`]. When `target` is
    /// checked out somewhere (the main worktree, usually) that checkout is
    /// updated too, and must have no uncommitted changes to tracked files
    /// (else [`GitError::TargetDirty`] and nothing changes); otherwise only
    /// the ref moves, by compare-and-swap on its old value.
    pub fn merge_into(
        &self,
        branch: &str,
        target: &str,
        strategy: MergeStrategy,
    ) -> Result<MergeOutcome, GitError> {
        // Merges are quick; one at a time keeps two specs finishing together
        // from racing for the target's index lock.
        let _one_at_a_time = MERGES.lock().unwrap_or_else(PoisonError::into_inner);
        let tip = self.head_of(branch)?;
        let old = self.head_of(target)?;
        if self.is_ancestor(&tip, &old)? {
            return Ok(MergeOutcome::AlreadyMerged { head: old });
        }
        if !self.is_ancestor(&old, &tip)? {
            return Ok(MergeOutcome::Retry { target: old });
        }
        let checkout = {
            let _admin = worktree_admin();
            self.checkout_of(target)?
        };
        if let Some(checkout) = &checkout {
            if checkout.rebasing {
                return Err(GitError::RebaseInProgress(checkout.path.clone()));
            }
            let files = self.dirty_files(&checkout.path, false)?;
            if !files.is_empty() {
                return Err(GitError::TargetDirty {
                    repo: self.root.clone(),
                    branch: target.to_owned(),
                    worktree: checkout.path.clone(),
                    files,
                });
            }
        }
        let new = match strategy {
            MergeStrategy::FastForward => tip,
            MergeStrategy::MergeCommit => {
                // The branch sits on the target, so the merge's tree is the
                // branch's tree: no conflict is possible, no checkout needed.
                let out = self
                    .as_author(git(&self.root))
                    .args(["commit-tree", &format!("{tip}^{{tree}}")])
                    .args(["-p", old.as_str(), "-p", tip.as_str()])
                    .args(["-m", &format!("Merge branch '{branch}' into {target}")])
                    .run()?;
                Oid::parse(&out).ok_or_else(|| GitError::Command {
                    repo: self.root.clone(),
                    command: "git commit-tree".to_owned(),
                    status: "status 0".to_owned(),
                    stderr: format!("unexpected output: {}", out.trim()),
                })?
            }
        };
        let moved = match &checkout {
            Some(checkout) => {
                let command =
                    git(&checkout.path).args(["merge", "--ff-only", "--quiet", new.as_str()]);
                let output = command.output()?;
                if !output.success() {
                    if self.head_of(target)? != old {
                        return Ok(MergeOutcome::Retry {
                            target: self.head_of(target)?,
                        });
                    }
                    return Err(command.failed(&output));
                }
                true
            }
            None => {
                let command = git(&self.root).args([
                    "update-ref",
                    "-m",
                    &format!("taskdaemon: merge {branch}"),
                    &format!("refs/heads/{target}"),
                    new.as_str(),
                    old.as_str(),
                ]);
                let output = command.output()?;
                if !output.success() && self.head_of(target)? == old {
                    return Err(command.failed(&output));
                }
                output.success()
            }
        };
        if !moved {
            return Ok(MergeOutcome::Retry {
                target: self.head_of(target)?,
            });
        }
        Ok(MergeOutcome::Merged { from: old, to: new })
    }
}
