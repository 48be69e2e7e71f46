//! Spec worktrees: creating (or, after a restart, re-attaching) one with its
//! branch, copying the ignored files `.worktreeinclude` names into it,
//! removing it, and removing the ones no plan wants any more.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::cmd::git;
use crate::error::{GitError, io_error};
use crate::repo::{Oid, Repo, canonical_or_same, worktree_admin};

/// In the repository root: gitignore-style patterns (one per line, `#`
/// comments) naming ignored files, such as `.env`, that every new worktree
/// gets a copy of, as Claude Code's file of the same name does.
pub const INCLUDE_FILE: &str = ".worktreeinclude";

/// A worktree ready for work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worktree {
    pub path: PathBuf,
    pub branch: String,
    pub head: Oid,
    /// Made now; false when an existing one was re-attached.
    pub created: bool,
    /// Files copied in because of `.worktreeinclude`, relative to the worktree.
    pub included: Vec<PathBuf>,
}

impl Repo {
    /// The worktree at `path` (relative paths are taken from the repository
    /// root) on `branch`. When it does not exist yet, the branch is created
    /// from `base` (unless it already exists, as after a crash between the
    /// two steps) and checked out there. When it exists on `branch` (the
    /// daemon restarted; paused mid-rebase counts) it is returned as it is.
    /// Either way the files `.worktreeinclude` names that it lacks are copied
    /// in, so calling this again after any crash finishes the job.
    pub fn ensure_worktree(
        &self,
        path: &Path,
        branch: &str,
        base: &str,
    ) -> Result<Worktree, GitError> {
        self.check_branch(branch)?;
        let _admin = worktree_admin();
        let path = self.root.join(path);
        let mut created = false;
        match self.worktree_at(&path)? {
            Some(info) if !info.prunable && path.is_dir() => {
                if info.branch.as_deref() != Some(branch) {
                    return Err(GitError::WorktreeOnOtherBranch {
                        repo: self.root.clone(),
                        path,
                        branch: branch.to_owned(),
                        found: info.branch,
                    });
                }
            }
            registered => {
                if registered.is_some() {
                    // Registered, but its directory was deleted.
                    git(&self.root).args(["worktree", "prune"]).run()?;
                }
                if !is_absent_or_empty_dir(&path) {
                    return Err(GitError::PathInUse {
                        repo: self.root.clone(),
                        path,
                    });
                }
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent).map_err(io_error(parent))?;
                }
                let add = git(&self.root).args(["worktree", "add", "--quiet"]);
                let add = if self.branch_exists(branch)? {
                    add.arg("--end-of-options").arg(&path).arg(branch)
                } else {
                    if base.starts_with('-') {
                        return Err(GitError::InvalidBranch {
                            repo: self.root.clone(),
                            reason: format!("'{base}': a base cannot start with '-'"),
                        });
                    }
                    add.args(["-b", branch, "--end-of-options"])
                        .arg(&path)
                        .arg(base)
                };
                add.run()?;
                created = true;
            }
        }
        self.exclude_worktrees_folder(&path)?;
        let included = self.copy_included(&path)?;
        Ok(Worktree {
            head: self.head_in(&path)?,
            path,
            branch: branch.to_owned(),
            created,
            included,
        })
    }

    /// Spec worktrees live inside the main checkout (`.taskdaemon/worktrees/
    /// PLAN/SPEC`): their folder (the spec's grandparent) goes into the
    /// repository's local `info/exclude`, so a person's `git add -A` in the
    /// main checkout never records them as embedded repositories. Nothing
    /// the user commits is touched.
    fn exclude_worktrees_folder(&self, worktree: &Path) -> Result<(), GitError> {
        let root = canonical_or_same(&self.root);
        let Some(folder) = canonical_or_same(worktree)
            .parent()
            .and_then(Path::parent)
            .map(Path::to_owned)
        else {
            return Ok(());
        };
        let Ok(relative) = folder.strip_prefix(&root) else {
            return Ok(());
        };
        let Some(relative) = relative.to_str().filter(|r| !r.is_empty()) else {
            return Ok(());
        };
        if relative.contains(['*', '?', '[', '\\', '!', '#', '\n']) {
            return Ok(());
        }
        let line = format!("/{relative}/");
        let exclude = self.common_dir.join("info").join("exclude");
        let current = match fs::read_to_string(&exclude) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io_error(&exclude)(e)),
        };
        if current.lines().any(|l| l.trim() == line) {
            return Ok(());
        }
        if let Some(dir) = exclude.parent() {
            fs::create_dir_all(dir).map_err(io_error(dir))?;
        }
        let mut text = String::new();
        if !current.is_empty() && !current.ends_with('\n') {
            text.push('\n');
        }
        text.push_str("# taskdaemon's spec worktrees\n");
        text.push_str(&line);
        text.push('\n');
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&exclude)
            .map_err(io_error(&exclude))?;
        file.write_all(text.as_bytes()).map_err(io_error(&exclude))
    }

    /// Copies the ignored files `.worktreeinclude` matches into `worktree`,
    /// keeping relative paths and permissions. Files already there are left
    /// alone; symlinks are recreated only when they point inside the
    /// repository, and nothing is ever read through a link leading out of it.
    fn copy_included(&self, worktree: &Path) -> Result<Vec<PathBuf>, GitError> {
        let include = self.root.join(INCLUDE_FILE);
        if !include.is_file() {
            return Ok(Vec::new());
        }
        // Untracked files the patterns match ...
        let matched = git(&self.root)
            .args(["ls-files", "-z", "--others", "--ignored"])
            .arg(format!("--exclude-from={}", include.display()))
            .run()?;
        let candidates: Vec<&str> = matched
            .split('\0')
            .filter(|p| !p.is_empty() && !p.ends_with('/'))
            .filter(|p| !p.split('/').any(|part| part == ".taskdaemon"))
            .collect();
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        // ... that git's own rules ignore.
        let mut input = candidates.join("\0").into_bytes();
        input.push(0);
        let command = git(&self.root)
            .args(["check-ignore", "-z", "--stdin"])
            .stdin(input);
        let output = command.output()?;
        if !matches!(output.code, Some(0 | 1)) {
            return Err(command.failed(&output));
        }
        let root = canonical_or_same(&self.root);
        let worktree = canonical_or_same(worktree);
        let mut copied = Vec::new();
        for rel in output.stdout.split('\0').filter(|p| !p.is_empty()) {
            let source = self.root.join(rel);
            let target = worktree.join(rel);
            if fs::symlink_metadata(&target).is_ok() {
                continue;
            }
            match fs::canonicalize(&source) {
                Ok(real) if real.starts_with(&root) => {}
                _ => {
                    tracing::warn!(file = %source.display(), "not copied into the worktree: it leads outside the repository");
                    continue;
                }
            }
            let parent = target.parent().unwrap_or(&worktree);
            fs::create_dir_all(parent).map_err(io_error(parent))?;
            if !canonical_or_same(parent).starts_with(&worktree) {
                tracing::warn!(file = %target.display(), "not copied: its folder in the worktree leads outside it");
                continue;
            }
            let meta = fs::symlink_metadata(&source).map_err(io_error(&source))?;
            if meta.file_type().is_symlink() {
                let link = fs::read_link(&source).map_err(io_error(&source))?;
                std::os::unix::fs::symlink(&link, &target).map_err(io_error(&target))?;
            } else if meta.is_file() {
                copy_atomically(&source, &target)?;
            } else {
                continue;
            }
            copied.push(PathBuf::from(rel));
        }
        Ok(copied)
    }

    /// Removes the worktree at `path` (discarding anything uncommitted in it)
    /// and, with `delete_branch`, the branch it had checked out. A worktree
    /// that is already gone is no error.
    pub fn remove_worktree(&self, path: &Path, delete_branch: bool) -> Result<(), GitError> {
        let _admin = worktree_admin();
        self.remove_worktree_locked(path, delete_branch)
    }

    /// [`Repo::remove_worktree`] for a caller holding [`worktree_admin`].
    fn remove_worktree_locked(&self, path: &Path, delete_branch: bool) -> Result<(), GitError> {
        let path = self.root.join(path);
        let info = self.worktree_at(&path)?;
        match &info {
            Some(info) if info.main => {
                return Err(GitError::NotAWorktree {
                    repo: self.root.clone(),
                    path,
                });
            }
            Some(info) if !info.prunable && path.exists() => {
                git(&self.root)
                    .args(["worktree", "remove", "--force", "--end-of-options"])
                    .arg(&path)
                    .run()?;
            }
            Some(_) => {}
            None if path.exists() => {
                return Err(GitError::NotAWorktree {
                    repo: self.root.clone(),
                    path,
                });
            }
            None => {}
        }
        git(&self.root).args(["worktree", "prune"]).run()?;
        if delete_branch && let Some(branch) = info.and_then(|info| info.branch) {
            self.delete_branch(&branch)?;
        }
        remove_if_empty_plan_dir(path.parent());
        Ok(())
    }

    /// Removes every spec worktree under `worktrees_root`
    /// (`.taskdaemon/worktrees/<plan>/<spec>`) for which `keep(plan, spec)` is
    /// false, leftover directories that are no worktree included, prunes
    /// git's records of worktrees whose directories are gone, and returns the
    /// paths removed. Branches are kept: a failed spec's branch may hold work
    /// someone wants to look at.
    pub fn cleanup_orphans(
        &self,
        worktrees_root: &Path,
        keep: &dyn Fn(&str, &str) -> bool,
    ) -> Result<Vec<PathBuf>, GitError> {
        let _admin = worktree_admin();
        git(&self.root).args(["worktree", "prune"]).run()?;
        let worktrees_root = self.root.join(worktrees_root);
        let mut removed = Vec::new();
        let Some(plans) = read_dir_if_exists(&worktrees_root)? else {
            return Ok(removed);
        };
        for plan in plans {
            let plan = plan.map_err(io_error(&worktrees_root))?;
            let plan_path = plan.path();
            let plan_type = plan.file_type().map_err(io_error(&plan_path))?;
            let plan_name = plan.file_name().to_string_lossy().into_owned();
            if !plan_type.is_dir() {
                // Never follow a link out of the worktrees folder.
                fs::remove_file(&plan_path).map_err(io_error(&plan_path))?;
                removed.push(plan_path);
                continue;
            }
            for spec in fs::read_dir(&plan_path).map_err(io_error(&plan_path))? {
                let spec = spec.map_err(io_error(&plan_path))?;
                let spec_path = spec.path();
                let spec_name = spec.file_name().to_string_lossy().into_owned();
                if keep(&plan_name, &spec_name) {
                    continue;
                }
                let spec_type = spec.file_type().map_err(io_error(&spec_path))?;
                if !spec_type.is_dir() {
                    fs::remove_file(&spec_path).map_err(io_error(&spec_path))?;
                } else if self.worktree_at(&spec_path)?.is_some() {
                    self.remove_worktree_locked(&spec_path, false)?;
                } else {
                    fs::remove_dir_all(&spec_path).map_err(io_error(&spec_path))?;
                }
                removed.push(spec_path);
            }
            remove_if_empty_plan_dir(Some(&plan_path));
        }
        Ok(removed)
    }
}

fn is_absent_or_empty_dir(path: &Path) -> bool {
    match fs::read_dir(path) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) => e.kind() == io::ErrorKind::NotFound,
    }
}

fn read_dir_if_exists(path: &Path) -> Result<Option<fs::ReadDir>, GitError> {
    match fs::read_dir(path) {
        Ok(entries) => Ok(Some(entries)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(path)(e)),
    }
}

/// A plan's folder under `.taskdaemon/worktrees/` goes with its last spec.
fn remove_if_empty_plan_dir(dir: Option<&Path>) {
    let Some(dir) = dir else { return };
    let under_worktrees = dir
        .parent()
        .is_some_and(|p| p.file_name().is_some_and(|n| n == "worktrees"));
    if under_worktrees {
        // Fails, as it should, while other specs' worktrees are in it.
        let _ = fs::remove_dir(dir);
    }
}

/// Copies through a temporary name so a crash never leaves half a file.
fn copy_atomically(source: &Path, target: &Path) -> Result<(), GitError> {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = target.with_file_name(format!(".{name}.taskdaemon-copy"));
    fs::copy(source, &temp).map_err(io_error(&temp))?;
    fs::rename(&temp, target).map_err(io_error(target))
}
