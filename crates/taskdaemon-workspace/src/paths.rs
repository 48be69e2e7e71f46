//! Workspace discovery and the layout of `.taskdaemon/`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The directory that marks a workspace.
pub const STATE_DIR: &str = ".taskdaemon";
/// The folder queue every workspace starts with, for tasks dropped in by hand.
pub const DEFAULT_QUEUE: &str = "ad-hoc";
/// The second queue a workspace starts with, for planned work: its id ...
pub const PLANNED_QUEUE: &str = "planned";
/// ... and its folder under `tasks/`.
pub const PLANNED_QUEUE_DIR: &str = "planning";
/// The subfolders of a folder queue.
pub const QUEUE_SUBDIRS: [&str; 5] = ["pending", "completed", "failed", "results", "reports"];

/// Unix socket paths longer than this do not fit in `sockaddr_un` on every platform.
const MAX_SOCKET_PATH: usize = 100;

/// Why no workspace could be used.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error(
        "not in a taskdaemon workspace: no {STATE_DIR}/ in {} or any parent directory (run `taskdaemon init` first, or pass --workspace DIR)",
        .0.display()
    )]
    NotFound(PathBuf),
    #[error("{} is not a taskdaemon workspace: {STATE_DIR}/ is missing (run `taskdaemon init` there)", .0.display())]
    NotAWorkspace(PathBuf),
    #[error("cannot use {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> WorkspaceError + '_ {
    move |source| WorkspaceError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A workspace root and every path derived from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    root: PathBuf,
}

impl Workspace {
    /// Walks up from `start` to the first directory holding `.taskdaemon/`.
    pub fn discover(start: &Path) -> Result<Self, WorkspaceError> {
        let start = fs::canonicalize(start).map_err(io_error(start))?;
        start
            .ancestors()
            .find(|dir| dir.join(STATE_DIR).is_dir())
            .map(|root| Self {
                root: root.to_owned(),
            })
            .ok_or(WorkspaceError::NotFound(start))
    }

    /// Uses `root` exactly (`--workspace DIR`); it must already be initialised.
    pub fn open(root: &Path) -> Result<Self, WorkspaceError> {
        let root = fs::canonicalize(root).map_err(io_error(root))?;
        if !root.join(STATE_DIR).is_dir() {
            return Err(WorkspaceError::NotAWorkspace(root));
        }
        Ok(Self { root })
    }

    /// Creates the workspace layout under `root`; harmless when it exists.
    /// Returns the workspace and whether `.taskdaemon/` was newly made.
    pub fn init(root: &Path) -> Result<(Self, bool), WorkspaceError> {
        let root = fs::canonicalize(root).map_err(io_error(root))?;
        let workspace = Self { root };
        let created = !workspace.state_dir().is_dir();
        for dir in [workspace.state_dir(), workspace.procs_dir()] {
            fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        }
        for sub in QUEUE_SUBDIRS {
            let dir = workspace.queue_dir(DEFAULT_QUEUE).join(sub);
            fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        }
        Ok((workspace, created))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `.taskdaemon/`
    pub fn state_dir(&self) -> PathBuf {
        self.root.join(STATE_DIR)
    }

    /// The SQLite store.
    pub fn db_path(&self) -> PathBuf {
        self.state_dir().join("state.db")
    }

    pub fn config_path(&self) -> PathBuf {
        self.state_dir().join("config.toml")
    }

    /// The daemon's log; rotated copies sit beside it as `daemon.log.1`, `.2`, ...
    pub fn daemon_log(&self) -> PathBuf {
        self.state_dir().join("daemon.log")
    }

    /// The PID file the daemon holds an exclusive lock on while it runs.
    pub fn pid_file(&self) -> PathBuf {
        self.state_dir().join("daemon.pid")
    }

    /// Serialises writers of the registry projection.
    pub fn registry_lock(&self) -> PathBuf {
        self.state_dir().join("registry.lock")
    }

    /// Seed 003's task files (`[autodev] dir`): `current.json`,
    /// `memory.json`, `history/`.
    pub fn autodev_dir(&self, config: &crate::Config) -> PathBuf {
        self.resolve(&config.autodev.dir)
    }

    /// The seed snapshot other tools read: where tracked work stands. The
    /// only one: `.taskdaemon/current.json` is no longer written.
    pub fn snapshot_path(&self, config: &crate::Config) -> PathBuf {
        self.autodev_dir(config).join("current.json")
    }

    /// What holds the daemon's plan scheduler back now (backpressure), for
    /// `status`; written by the daemon.
    pub fn pipeline_state_path(&self) -> PathBuf {
        self.state_dir().join("pipeline.json")
    }

    /// Serialises writers of the seed snapshot.
    pub fn snapshot_lock(&self) -> PathBuf {
        self.state_dir().join("current.lock")
    }

    /// The web dashboard's login token (mode 0600).
    pub fn web_token_path(&self) -> PathBuf {
        self.state_dir().join("web-token")
    }

    /// The token a client presents on the daemon's socket (mode 0600, made
    /// anew by each daemon before it listens).
    pub fn socket_token_path(&self) -> PathBuf {
        self.state_dir().join("daemon-token")
    }

    /// Where a running web server says which address it serves.
    pub fn web_url_path(&self) -> PathBuf {
        self.state_dir().join("web.url")
    }

    /// Where `backup` puts copies of the store by default.
    pub fn backups_dir(&self) -> PathBuf {
        self.state_dir().join("backups")
    }

    /// The daemon's Unix socket. Deep workspaces would overflow `sockaddr_un`,
    /// so those get a socket in the runtime directory named by a hash of the root.
    pub fn socket_path(&self) -> PathBuf {
        let local = self.state_dir().join("daemon.sock");
        if local.as_os_str().len() <= MAX_SOCKET_PATH {
            return local;
        }
        let runtime = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|dir| dir.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        runtime.join(format!(
            "taskdaemon-{:016x}.sock",
            fnv1a(self.root.as_os_str().as_encoded_bytes())
        ))
    }

    /// Where supervised processes keep their logs and exit files.
    pub fn procs_dir(&self) -> PathBuf {
        self.state_dir().join("procs")
    }

    /// `.taskdaemon/procs/ID/`
    pub fn proc_dir(&self, id: &str) -> PathBuf {
        self.procs_dir().join(id)
    }

    pub fn stdout_log(&self, id: &str) -> PathBuf {
        self.proc_dir(id).join("stdout.log")
    }

    pub fn stderr_log(&self, id: &str) -> PathBuf {
        self.proc_dir(id).join("stderr.log")
    }

    /// The exit status the shim writes beside the logs, in case the store cannot take it.
    pub fn exit_file(&self, id: &str) -> PathBuf {
        self.proc_dir(id).join("exit.json")
    }

    /// The shim's own diagnostics.
    pub fn shim_log(&self, id: &str) -> PathBuf {
        self.proc_dir(id).join("shim.log")
    }

    /// Where LLM loops keep their progress logs.
    pub fn loops_dir(&self) -> PathBuf {
        self.state_dir().join("loops")
    }

    /// `.taskdaemon/loops/ID/`
    pub fn loop_dir(&self, id: &str) -> PathBuf {
        self.loops_dir().join(id)
    }

    /// A loop's append-only JSONL progress log, one record per finished iteration.
    pub fn loop_progress(&self, id: &str) -> PathBuf {
        self.loop_dir(id).join("progress.jsonl")
    }

    /// A loop's human log: one line per iteration, tool call, retry and verdict.
    pub fn loop_log(&self, id: &str) -> PathBuf {
        self.loop_dir(id).join("loop.log")
    }

    /// Where spec worktrees live: `.taskdaemon/worktrees/`.
    pub fn worktrees_dir(&self) -> PathBuf {
        self.state_dir().join("worktrees")
    }

    /// A spec's git worktree: `.taskdaemon/worktrees/<PLAN-N>/<spec>` (its
    /// branch is `td/<PLAN-N>/<spec>`).
    pub fn spec_worktree(&self, plan: &str, spec: &str) -> PathBuf {
        // The domain's relative path, stored on each spec, is the one rule.
        self.root
            .join(taskdaemon_core::pipeline::spec_worktree(plan, spec))
    }

    /// A folder queue by name, under `tasks/`.
    pub fn queue_dir(&self, name: &str) -> PathBuf {
        self.root.join("tasks").join(name)
    }

    /// Resolves a path from the config relative to the workspace root.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.root.join(path)
        }
    }
}

/// FNV-1a: a stable hash, so that every client finds the same socket name.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_root(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("td-ws-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn discover_walks_up_and_init_is_idempotent() {
        let root = temp_root("discover");
        let (ws, created) = Workspace::init(&root).unwrap();
        assert!(created);
        let (_, created_again) = Workspace::init(&root).unwrap();
        assert!(!created_again);
        let deep = root.join("a/b/c");
        fs::create_dir_all(&deep).unwrap();
        assert_eq!(Workspace::discover(&deep).unwrap(), ws);
        assert!(ws.queue_dir(DEFAULT_QUEUE).join("results").is_dir());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn outside_a_workspace_is_a_clear_error() {
        let root = temp_root("outside");
        let err = Workspace::open(&root).unwrap_err();
        assert!(err.to_string().contains("run `taskdaemon init`"), "{err}");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn spec_worktrees_sit_under_the_state_dir_by_plan_and_spec() {
        let ws = Workspace {
            root: PathBuf::from("/repo"),
        };
        assert_eq!(
            ws.spec_worktree("PLAN-3", "add-oauth"),
            Path::new("/repo/.taskdaemon/worktrees/PLAN-3/add-oauth")
        );
        assert!(
            ws.spec_worktree("PLAN-3", "x")
                .starts_with(ws.worktrees_dir())
        );
    }

    #[test]
    fn long_roots_get_a_short_socket_path() {
        let ws = Workspace {
            root: PathBuf::from(format!("/tmp/{}", "x".repeat(120))),
        };
        let socket = ws.socket_path();
        assert!(
            socket.as_os_str().len() <= MAX_SOCKET_PATH + 40,
            "{socket:?}"
        );
        assert_eq!(socket, ws.socket_path(), "must be stable");
    }
}
