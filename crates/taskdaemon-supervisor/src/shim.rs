//! The shim: the small process that owns one supervised command.
//!
//! It runs as `taskdaemon __shim ID` in its own session, starts the command in
//! a new process group with stdout and stderr appended to log files, waits for
//! it, and records the exit (store first, exit file beside the logs too). It
//! applies the restart policy itself, so restarts happen even while the daemon
//! is down.

use std::fs::{self, File};
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use taskdaemon_core::process::{ExitDecision, ExitOutcome};
use taskdaemon_core::time::{Millis, now_millis};
use taskdaemon_core::{Status, TaskRecord};
use taskdaemon_store::{Started, Store, StoreError};
use taskdaemon_workspace::{Workspace, write_atomic, write_projection};

use crate::group::Group;
use crate::launch::report;
use crate::procfs;

/// Who the shim says it is in events.
pub const ACTOR: &str = "shim";

/// Environment variable naming the task, set for every supervised command.
pub const TASK_ID_ENV: &str = "TASKDAEMON_TASK_ID";

/// How often a failed store write of an exit is retried before the exit file
/// alone carries it.
const RECORD_ATTEMPTS: u32 = 10;

/// The exit status as written beside the logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitFile {
    pub pid: i32,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub at: Millis,
}

impl ExitFile {
    pub fn outcome(&self) -> ExitOutcome {
        ExitOutcome {
            code: self.code,
            signal: self.signal,
        }
    }

    /// Reads the exit file of task `id`, if there is a readable one.
    pub fn read(workspace: &Workspace, id: &str) -> Option<Self> {
        let text = fs::read_to_string(workspace.exit_file(id)).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// What the shim needs from its surroundings.
pub struct Shim<'a> {
    pub workspace: &'a Workspace,
    pub store: &'a dyn Store,
    /// Called after every state change the shim commits (registry projection).
    pub on_change: &'a dyn Fn(),
    /// Called instead of `on_change` after the last exit, just before the
    /// shim ends. A live daemon follows the shim and rewrites projections
    /// when it exits, so this may skip work the daemon will do anyway, and
    /// a queue worker waiting for that exit does not wait for it.
    pub on_end: &'a dyn Fn(),
}

impl Shim<'_> {
    /// Runs task `id` to its end, restarts included. Returns the shim's exit code.
    pub fn run(&self, id: &str) -> i32 {
        let mut reported = false;
        // After an automatic restart decision, the restart count this shim
        // owns; a different count later means someone else took over.
        let mut owned_restarts = None;
        loop {
            match self.run_attempt(id, owned_restarts, &mut reported) {
                Ok(Some((restarts, delay))) => {
                    owned_restarts = Some(restarts);
                    thread::sleep(delay);
                }
                Ok(None) => return 0,
                Err(message) => {
                    if !reported {
                        let _ = report(&format!("error {message}"));
                    }
                    eprintln!("taskdaemon shim {id}: {message}");
                    return 1;
                }
            }
        }
    }

    /// One start of the command. `Ok(Some((restarts, delay)))` asks for
    /// restart number `restarts` after `delay`.
    fn run_attempt(
        &self,
        id: &str,
        owned_restarts: Option<u32>,
        reported: &mut bool,
    ) -> Result<Option<(u32, Duration)>, String> {
        let task = self.store.task(id).map_err(|e| e.to_string())?;
        let restarts = owned_restarts.unwrap_or(task.restarts);
        if task.status != Status::Pending || task.restarts != restarts {
            // Cancelled during a restart backoff, or started by someone else.
            return if *reported {
                Ok(None)
            } else {
                Err(format!("{id} is {}, not pending", task.status))
            };
        }
        let mut child = match self.start_command(&task) {
            Ok(child) => child,
            Err(e) => {
                let message = format!("cannot start `{}`: {e}", task.command);
                let _ = self.store.record_start_failure(id, &message, ACTOR);
                (self.on_change)();
                return Err(message);
            }
        };
        let pid = child.id() as i32;
        let started = self.started(pid).map_err(|e| e.to_string())?;
        if let Err(e) = self.store.mark_started(id, restarts, &started, ACTOR) {
            // Cancelled while we were starting: the command must not outlive that.
            let group = Group {
                pgid: started.pgid,
                leader: started.process.clone(),
            };
            let _ = group.terminate(rustix::process::Signal::KILL, Duration::ZERO);
            let _ = child.wait();
            return if *reported {
                Ok(None)
            } else {
                Err(e.to_string())
            };
        }
        if !*reported {
            // Answer the spawner before the projection work below.
            let _ = report(&format!("ok {pid}"));
            *reported = true;
        }
        (self.on_change)();
        let status = wait_child(&mut child).map_err(|e| format!("waiting for pid {pid}: {e}"))?;
        let outcome = outcome_of(status);
        let decision = self.record_exit(id, pid, outcome)?;
        Ok(match decision {
            ExitDecision::Restart { restart, delay } => {
                (self.on_change)();
                Some((restart, delay))
            }
            ExitDecision::Finish(_) => {
                (self.on_end)();
                None
            }
        })
    }

    fn start_command(&self, task: &TaskRecord) -> io::Result<Child> {
        let dir = self.workspace.proc_dir(&task.id);
        fs::create_dir_all(&dir)?;
        let append = |path| File::options().create(true).append(true).open(path);
        let (program, args) = task
            .argv
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
        let mut command = Command::new(program);
        command
            .args(args)
            .env_clear()
            .envs(task.env.iter().map(|(k, v)| (k, v)))
            .env(TASK_ID_ENV, &task.id)
            .stdin(Stdio::null())
            .stdout(append(self.workspace.stdout_log(&task.id))?)
            .stderr(append(self.workspace.stderr_log(&task.id))?)
            .process_group(0);
        if let Some(cwd) = &task.cwd {
            command.current_dir(cwd);
        }
        command.spawn()
    }

    fn started(&self, pid: i32) -> io::Result<Started> {
        let process = procfs::identity(pid)?;
        let shim = procfs::identity(std::process::id() as i32)?;
        Ok(Started {
            process,
            pgid: pid,
            shim,
        })
    }

    /// Writes the exit file, then the store, retrying the store while it is busy.
    fn record_exit(
        &self,
        id: &str,
        pid: i32,
        outcome: ExitOutcome,
    ) -> Result<ExitDecision, String> {
        let file = ExitFile {
            pid,
            code: outcome.code,
            signal: outcome.signal,
            at: now_millis(),
        };
        let json = serde_json::to_vec(&file).map_err(|e| e.to_string())?;
        let path = self.workspace.exit_file(id);
        // Written first so a shim killed before the store commit still leaves
        // the exit behind; not synced, since the (synced) store commit right
        // after is what keeps it, unless that fails.
        if let Err(e) = write_projection(&path, &json) {
            eprintln!("taskdaemon shim {id}: cannot write exit file: {e}");
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.store.record_exit(id, pid, outcome, ACTOR) {
                Ok(recorded) => return Ok(recorded.decision),
                Err(StoreError::Conflict(message)) => return Err(message),
                Err(e) if attempt < RECORD_ATTEMPTS => {
                    eprintln!("taskdaemon shim {id}: recording exit failed, retrying: {e}");
                    thread::sleep(Duration::from_millis(200 * u64::from(attempt)));
                }
                Err(e) => {
                    // Now the exit file is the only copy: make it durable.
                    if let Err(e) = write_atomic(&path, &json) {
                        eprintln!("taskdaemon shim {id}: cannot sync exit file: {e}");
                    }
                    return Err(format!("recording exit: {e}; the exit file keeps it"));
                }
            }
        }
    }
}

fn wait_child(child: &mut Child) -> io::Result<ExitStatus> {
    loop {
        match child.wait() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

fn outcome_of(status: ExitStatus) -> ExitOutcome {
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitOutcome::exited(code),
        (None, Some(signal)) => ExitOutcome::signalled(signal),
        (None, None) => ExitOutcome {
            code: None,
            signal: None,
        },
    }
}
