//! A repository: opening it, the readiness check before a plan starts, branch
//! heads, the worktree list and commits made with the daemon's identity.

use std::fmt;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::cmd::{Git, git};
use crate::error::{GitError, io_error};

/// Held while git's worktree records change or are read (adding, listing,
/// removing worktrees): `git worktree list` fails on a worktree another
/// thread is half-way through adding ("failed to read
/// .git/worktrees/X/commondir"). One lock for the process: worktree
/// bookkeeping is quick, and a daemon serves one repository.
static WORKTREE_ADMIN: Mutex<()> = Mutex::new(());

/// Takes [`WORKTREE_ADMIN`]; a panic in another holder does not poison it
/// (the records are git's, on disk, not ours).
pub(crate) fn worktree_admin() -> MutexGuard<'static, ()> {
    WORKTREE_ADMIN
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// A commit id as git prints it (full hex).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Oid(pub(crate) String);

impl Oid {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// From git's output; `None` unless it is a full hex object id.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        ((text.len() == 40 || text.len() == 64) && text.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Self(text.to_ascii_lowercase()))
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Oid {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Author and committer of the commits taskdaemon makes, so that committing
/// works on a machine with no git identity configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub email: String,
}

impl Default for Identity {
    fn default() -> Self {
        Self {
            name: "taskdaemon".to_owned(),
            email: "taskdaemon@localhost".to_owned(),
        }
    }
}

/// One entry of `git worktree list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorktreeInfo {
    pub path: PathBuf,
    pub head: Option<Oid>,
    /// The branch checked out there (without `refs/heads/`), or being rebased
    /// there; none when detached.
    pub branch: Option<String>,
    /// A rebase of `branch` is in progress there (git shows a detached HEAD).
    pub rebasing: bool,
    /// The main worktree (the first one git lists).
    pub main: bool,
    /// Registered, but its directory is gone.
    pub prunable: bool,
}

/// A git repository, by the top of the working tree it was opened in.
#[derive(Debug, Clone)]
pub struct Repo {
    pub(crate) root: PathBuf,
    pub(crate) common_dir: PathBuf,
    pub(crate) identity: Identity,
}

impl Repo {
    /// Opens the repository `path` is in.
    pub fn open(path: &Path) -> Result<Self, GitError> {
        if !path.is_dir() {
            return Err(GitError::NotARepository(path.to_owned()));
        }
        let command = git(path).args(["rev-parse", "--show-toplevel", "--git-common-dir"]);
        let output = command.output()?;
        if !output.success() {
            if output.stderr.contains("not a git repository") {
                return Err(GitError::NotARepository(path.to_owned()));
            }
            return Err(command.failed(&output));
        }
        let mut lines = output.stdout.lines();
        let (Some(top), Some(common)) = (lines.next(), lines.next()) else {
            return Err(command.failed(&output));
        };
        let root = fs::canonicalize(top).map_err(io_error(top))?;
        let common = path.join(common);
        let common_dir = fs::canonicalize(&common).map_err(io_error(common))?;
        Ok(Self {
            root,
            common_dir,
            identity: Identity::default(),
        })
    }

    /// Commits made from now on carry this author and committer.
    pub fn with_identity(mut self, identity: Identity) -> Self {
        self.identity = identity;
        self
    }

    /// The top of the working tree the repository was opened in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Everything a plan needs before it starts, each failure its own error:
    /// a valid target branch that exists, and a clean working tree (tracked
    /// changes and untracked files alike, since a plan starts from committed
    /// work only; `.taskdaemon/` is ignored).
    pub fn check_ready(&self, target_branch: &str) -> Result<(), GitError> {
        self.head_of(target_branch)?;
        let files = self.dirty_files(&self.root, true)?;
        if files.is_empty() {
            Ok(())
        } else {
            Err(GitError::Dirty {
                repo: self.root.clone(),
                files,
            })
        }
    }

    /// The branch checked out in the repository's working tree.
    pub fn current_branch(&self) -> Result<String, GitError> {
        let command = git(&self.root).args(["symbolic-ref", "--quiet", "--short", "HEAD"]);
        let output = command.output()?;
        match output.code {
            Some(0) => Ok(output.stdout.trim().to_owned()),
            Some(1) => Err(GitError::DetachedHead {
                repo: self.root.clone(),
            }),
            _ => Err(command.failed(&output)),
        }
    }

    /// The commit `branch` points at.
    pub fn head_of(&self, branch: &str) -> Result<Oid, GitError> {
        self.check_branch(branch)?;
        self.resolve(&format!("refs/heads/{branch}"))?
            .ok_or_else(|| GitError::NoSuchBranch {
                repo: self.root.clone(),
                branch: branch.to_owned(),
            })
    }

    /// Whether `branch` exists.
    pub fn branch_exists(&self, branch: &str) -> Result<bool, GitError> {
        self.check_branch(branch)?;
        Ok(self.resolve(&format!("refs/heads/{branch}"))?.is_some())
    }

    /// Deletes `branch` (even when unmerged); a missing branch is no error.
    pub fn delete_branch(&self, branch: &str) -> Result<(), GitError> {
        if self.branch_exists(branch)? {
            git(&self.root).args(["branch", "-D", branch]).run()?;
        }
        Ok(())
    }

    /// The commit a revision names, if it names one.
    pub(crate) fn resolve(&self, rev: &str) -> Result<Option<Oid>, GitError> {
        self.resolve_in(&self.root, rev)
    }

    pub(crate) fn resolve_in(&self, dir: &Path, rev: &str) -> Result<Option<Oid>, GitError> {
        let command = git(dir)
            .args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
            .arg(format!("{rev}^{{commit}}"));
        let output = command.output()?;
        match output.code {
            Some(0) => Oid::parse(&output.stdout)
                .map(Some)
                .ok_or_else(|| command.failed(&output)),
            Some(1) => Ok(None),
            _ => Err(command.failed(&output)),
        }
    }

    /// Whether `ancestor` is reachable from `descendant` (or equal to it).
    pub(crate) fn is_ancestor(&self, ancestor: &Oid, descendant: &Oid) -> Result<bool, GitError> {
        let command = git(&self.root).args([
            "merge-base",
            "--is-ancestor",
            ancestor.as_str(),
            descendant.as_str(),
        ]);
        let output = command.output()?;
        match output.code {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(command.failed(&output)),
        }
    }

    pub(crate) fn check_branch(&self, branch: &str) -> Result<(), GitError> {
        taskdaemon_core::branch::check_branch_name(branch).map_err(|reason| {
            GitError::InvalidBranch {
                repo: self.root.clone(),
                reason,
            }
        })
    }

    /// Files with changes in the working tree at `dir` (staged, unstaged and,
    /// with `untracked`, untracked ones), leaving out anything under a
    /// `.taskdaemon/` directory: the daemon's own state and spec worktrees.
    pub(crate) fn dirty_files(&self, dir: &Path, untracked: bool) -> Result<Vec<String>, GitError> {
        let out = git(dir)
            .env("GIT_OPTIONAL_LOCKS", "0")
            .args([
                "status",
                "--porcelain=v1",
                "-z",
                if untracked {
                    "--untracked-files=normal"
                } else {
                    "--untracked-files=no"
                },
            ])
            .run()?;
        let mut files = Vec::new();
        let mut fields = out.split('\0');
        while let Some(entry) = fields.next() {
            if entry.len() < 4 {
                continue;
            }
            let (code, path) = entry.split_at(3);
            if code.contains('R') || code.contains('C') {
                // A rename's second field is its old name.
                fields.next();
            }
            let daemon_state = Path::new(path)
                .components()
                .any(|c| c == Component::Normal(".taskdaemon".as_ref()));
            if !daemon_state {
                files.push(path.to_owned());
            }
        }
        Ok(files)
    }

    /// Every worktree git knows of, the main one first.
    pub fn worktrees(&self) -> Result<Vec<WorktreeInfo>, GitError> {
        let _admin = worktree_admin();
        self.list_worktrees()
    }

    /// [`Repo::worktrees`] for a caller holding [`worktree_admin`].
    pub(crate) fn list_worktrees(&self) -> Result<Vec<WorktreeInfo>, GitError> {
        let out = git(&self.root)
            .args(["worktree", "list", "--porcelain", "-z"])
            .run()?;
        let mut list = Vec::new();
        let mut current: Option<WorktreeInfo> = None;
        for field in out.split('\0') {
            if field.is_empty() {
                list.extend(current.take());
                continue;
            }
            let (key, value) = field.split_once(' ').unwrap_or((field, ""));
            match (key, current.as_mut()) {
                ("worktree", _) => {
                    list.extend(current.take());
                    current = Some(WorktreeInfo {
                        path: PathBuf::from(value),
                        head: None,
                        branch: None,
                        rebasing: false,
                        main: list.is_empty(),
                        prunable: false,
                    });
                }
                ("HEAD", Some(info)) => info.head = Oid::parse(value),
                ("branch", Some(info)) => {
                    info.branch = Some(
                        value
                            .strip_prefix("refs/heads/")
                            .unwrap_or(value)
                            .to_owned(),
                    );
                }
                ("prunable", Some(info)) => info.prunable = true,
                _ => {}
            }
        }
        list.extend(current);
        for info in &mut list {
            if info.branch.is_none() && !info.prunable && info.path.is_dir() {
                info.branch = self.rebasing_branch(&info.path)?;
                info.rebasing = info.branch.is_some();
            }
        }
        Ok(list)
    }

    /// The registered worktree at `path`, comparing resolved paths (the
    /// caller holds [`worktree_admin`]).
    pub(crate) fn worktree_at(&self, path: &Path) -> Result<Option<WorktreeInfo>, GitError> {
        let wanted = canonical_or_same(path);
        Ok(self
            .list_worktrees()?
            .into_iter()
            .find(|info| canonical_or_same(&info.path) == wanted))
    }

    /// The worktree where `branch` is checked out, if any (the caller holds
    /// [`worktree_admin`]).
    pub(crate) fn checkout_of(&self, branch: &str) -> Result<Option<WorktreeInfo>, GitError> {
        Ok(self
            .list_worktrees()?
            .into_iter()
            .find(|info| info.branch.as_deref() == Some(branch) && !info.prunable))
    }

    /// The commit checked out in the worktree at `dir`.
    pub(crate) fn head_in(&self, dir: &Path) -> Result<Oid, GitError> {
        self.resolve_in(dir, "HEAD")?
            .ok_or_else(|| GitError::Command {
                repo: dir.to_owned(),
                command: "git rev-parse --verify HEAD".to_owned(),
                status: "no commit".to_owned(),
                stderr: "HEAD does not name a commit".to_owned(),
            })
    }

    /// A git command run with the daemon's identity as author and committer.
    pub(crate) fn as_author(&self, command: Git) -> Git {
        self.as_committer(command)
            .env("GIT_AUTHOR_NAME", self.identity.name.clone())
            .env("GIT_AUTHOR_EMAIL", self.identity.email.clone())
    }

    /// ... as committer only (a rebase keeps each commit's author).
    pub(crate) fn as_committer(&self, command: Git) -> Git {
        command
            .env("GIT_COMMITTER_NAME", self.identity.name.clone())
            .env("GIT_COMMITTER_EMAIL", self.identity.email.clone())
    }

    /// Stages everything in `worktree` (as `git add -A`, so ignored files stay
    /// out) and commits it; `None` when there was nothing to commit. Refused
    /// while a rebase is in progress there: a commit then would land on the
    /// rebase's detached HEAD; [`Repo::rebase_continue`] takes the changes.
    pub fn commit_all(&self, worktree: &Path, message: &str) -> Result<Option<Oid>, GitError> {
        if self.rebase_in_progress(worktree)? {
            return Err(GitError::RebaseInProgress(worktree.to_owned()));
        }
        git(worktree).args(["add", "-A"]).run()?;
        let command = git(worktree).args(["diff", "--cached", "--quiet"]);
        let output = command.output()?;
        match output.code {
            Some(0) => return Ok(None),
            Some(1) => {}
            _ => return Err(command.failed(&output)),
        }
        self.as_author(git(worktree))
            .args(["commit", "--quiet", "-m", message])
            .run()?;
        self.head_in(worktree).map(Some)
    }
}

/// `path` resolved through symlinks when it exists, else as given.
pub(crate) fn canonical_or_same(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}
