//! The shim: the small process that owns one supervised command.
//!
//! It runs as `taskdaemon __shim ID` in its own session, starts the command in
//! a new process group with stdout and stderr pumped into size-bounded log
//! files (see [`crate::output`]), waits for it, and records the exit (exit
//! file beside the logs first, then the store). It applies the restart
//! policy itself, so restarts happen even while the daemon is down.
//!
//! While the command runs, the shim holds no store connection and has
//! handed its set-up memory back (see [`crate::memory`]): it costs one
//! blocked thread, two output pumps and the pages of the binary it shares
//! with every other shim. It opens the store again to record the exit.
//!
//! For a container task the command is the runner; a runner that dies
//! (a signal) with no restart to follow would leave its container running
//! at the engine, so the shim stops and removes it (see [`Shim::reap`]).

use std::fs;
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use taskdaemon_core::container::ContainerSpec;
use taskdaemon_core::process::{ExitDecision, ExitOutcome, decide_after_exit};
use taskdaemon_core::time::{Millis, now_micros, now_millis};
use taskdaemon_core::{ProcessIdentity, Status, TaskKind, TaskRecord};
use taskdaemon_store::{DetectedExit, Started, Store, StoreError};
use taskdaemon_workspace::{LogsConfig, Workspace, write_atomic, write_projection};

use crate::group::Group;
use crate::launch::report;
use crate::limits::{self, MemoryWatch};
use crate::memory;
use crate::output::{OutputLogs, Pumps};
use crate::pidfd::PidWatch;
use crate::procfs;

/// Who the shim says it is in events.
pub const ACTOR: &str = "shim";

/// Environment variable naming the task, set for every supervised command.
pub const TASK_ID_ENV: &str = "TASKDAEMON_TASK_ID";

/// How often a failed store write of an exit is retried before the exit file
/// alone carries it.
const RECORD_ATTEMPTS: u32 = 10;

/// The longest wait between two tries to record an exit.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

/// How long a shim whose exit is written nowhere durable (neither the store
/// nor the exit file take it: a full disk) keeps trying before it gives up.
const KEEP_TRYING: Duration = Duration::from_secs(24 * 3600);

/// How long after the command's exit the shim waits for the rest of its
/// output before recording the exit (a child it left behind may hold the
/// pipes open much longer; its output still reaches the logs meanwhile).
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// How long the shim keeps the store it started the command with, waiting
/// for the command to end, before it lets go of it for the command's run:
/// a command that ends this soon has its exit recorded without opening the
/// store again (a connection, and the schema loaded into it).
const QUICK_EXIT: Duration = Duration::from_millis(50);

/// How long a container whose runner died gets between SIGTERM and
/// SIGKILL (the default grace of `kill` elsewhere).
const ORPHAN_STOP_GRACE: Duration = Duration::from_secs(5);

/// The exit status as written beside the logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitFile {
    pub pid: i32,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub at: Millis,
    /// Why the shim ended the command (a limit), when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ExitFile {
    pub fn outcome(&self) -> ExitOutcome {
        ExitOutcome {
            code: self.code,
            signal: self.signal,
        }
    }

    fn new(pid: i32, outcome: ExitOutcome, reason: Option<String>) -> Self {
        Self {
            pid,
            code: outcome.code,
            signal: outcome.signal,
            at: now_millis(),
            reason,
        }
    }

    /// Writes it beside task `id`'s logs: atomically in any case, and
    /// synced when it is the only record of the exit.
    fn write(&self, workspace: &Workspace, id: &str, durable: bool) -> io::Result<()> {
        let json = serde_json::to_vec(self).map_err(io::Error::other)?;
        let path = workspace.exit_file(id);
        if durable {
            write_atomic(&path, &json)
        } else {
            write_projection(&path, &json)
        }
    }

    /// Reads the exit file of task `id`, if there is a readable one.
    pub fn read(workspace: &Workspace, id: &str) -> Option<Self> {
        let text = fs::read_to_string(workspace.exit_file(id)).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// Opens the workspace's store (see [`Shim::open_store`]).
pub type OpenStore<'a> = &'a dyn Fn() -> Result<Arc<dyn Store>, StoreError>;

/// What the shim needs from its surroundings.
pub struct Shim<'a> {
    pub workspace: &'a Workspace,
    /// Opens the store. The shim holds what this returns only around its
    /// reads and writes, and drops it while the command runs, so a waiting
    /// shim has no connection (nor, for PostgreSQL, a client runtime).
    pub open_store: OpenStore<'a>,
    /// Bounds on the command's log files.
    pub logs: LogsConfig,
    /// Called after every state change the shim commits to a task the
    /// registry projection lists (a process, not a queue task).
    pub on_change: &'a dyn Fn(&dyn Store),
    /// Called instead of `on_change` after the last exit, just before the
    /// shim ends. A live daemon follows the shim and rewrites projections
    /// when it exits, so this may skip work the daemon will do anyway, and
    /// a queue worker waiting for that exit does not wait for it.
    pub on_end: &'a dyn Fn(&dyn Store),
}

impl Shim<'_> {
    /// Runs task `id` to its end, restarts included. Returns the shim's exit code.
    pub fn run(&self, id: &str) -> i32 {
        let fail = |message: String| {
            let _ = report(&format!("error {message}"));
            crate::note!("taskdaemon shim {id}: {message}");
            1
        };
        let logs = match OutputLogs::open(self.workspace, id, &self.logs) {
            Ok(logs) => logs,
            Err(e) => {
                let message = format!("cannot open the output logs: {e}");
                if let Ok(store) = (self.open_store)() {
                    let _ = store.record_start_failure(id, &message, ACTOR);
                    (self.on_change)(&*store);
                }
                return fail(message);
            }
        };
        let mut reported = false;
        // After an automatic restart decision, the restart count this shim
        // owns; a different count later means someone else took over.
        let mut owned_restarts = None;
        // Pumps still fed by children an attempt left behind.
        let mut leftover = Vec::new();
        let code = loop {
            match self.run_attempt(id, &logs, owned_restarts, &mut reported, &mut leftover) {
                Ok(Some((restarts, delay))) => {
                    owned_restarts = Some(restarts);
                    thread::sleep(delay);
                }
                Ok(None) => break 0,
                Err(message) if reported => {
                    crate::note!("taskdaemon shim {id}: {message}");
                    break 1;
                }
                Err(message) => break fail(message),
            }
        };
        // Their output belongs in the logs for as long as they write it.
        for pumps in leftover {
            pumps.finish();
        }
        code
    }

    /// One start of the command. `Ok(Some((restarts, delay)))` asks for
    /// restart number `restarts` after `delay`.
    fn run_attempt(
        &self,
        id: &str,
        logs: &OutputLogs,
        owned_restarts: Option<u32>,
        reported: &mut bool,
        leftover: &mut Vec<Pumps>,
    ) -> Result<Option<(u32, Duration)>, String> {
        let store = (self.open_store)().map_err(|e| e.to_string())?;
        let task = store.task(id).map_err(|e| e.to_string())?;
        let restarts = owned_restarts.unwrap_or(task.restarts);
        if task.status != Status::Pending || task.restarts != restarts {
            // Cancelled during a restart backoff, or started by someone else.
            return if *reported {
                Ok(None)
            } else {
                Err(format!("{id} is {}, not pending", task.status))
            };
        }
        let (mut child, mut pumps) = match self.start_command(&task, logs) {
            Ok(started) => started,
            Err(e) => {
                let message = format!("cannot start `{}`: {e}", task.command);
                let _ = store.record_start_failure(id, &message, ACTOR);
                (self.on_change)(&*store);
                return Err(message);
            }
        };
        let pid = child.id() as i32;
        let started = self.started(pid).map_err(|e| e.to_string())?;
        let group = Group {
            pgid: started.pgid,
            leader: started.process.clone(),
        };
        let memory_watch = MemoryWatch::start(&task.limits, group)
            .map_err(|e| format!("cannot watch the memory of pid {pid}: {e}"))?;
        let marked = commit_for(&task, || store.mark_started(id, restarts, &started, ACTOR));
        if let Err(e) = marked {
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
        // The registry lists a started process before its spawner hears of
        // the start: a `spawn` that returned is in the file, and the daemon
        // answering it has nothing to rewrite. (A queue task is not listed,
        // so its worker hears at once.)
        if in_registry(&task) {
            (self.on_change)(&*store);
        }
        if !*reported {
            let _ = report(&format!("ok {pid}"));
            *reported = true;
        }
        // A command that ends at once (a queue of short tasks) has its exit
        // recorded on the store still open; for one that runs on, nothing
        // of the set-up is needed while it runs.
        let kept = if ends_within(&started.process, QUICK_EXIT) {
            Some(store)
        } else {
            drop(store);
            memory::release_free_memory();
            memory::release_unused_stack();
            None
        };
        let status = wait_child(&mut child).map_err(|e| format!("waiting for pid {pid}: {e}"))?;
        // The exit's detection instant: its latency to the store is measured from here.
        let exited_at_us = now_micros();
        // Whoever reads the exit (a queue worker summarising the output)
        // must find all of the output in the logs.
        if !pumps.drain(DRAIN_GRACE) {
            leftover.push(pumps);
        }
        let outcome = outcome_of(status);
        let store = match kept {
            Some(store) => store,
            None => self.reopen_after_exit(id, pid, outcome)?,
        };
        let mut reason = memory_watch
            .and_then(MemoryWatch::finish)
            .or_else(|| limits::exit_reason(&task.limits, outcome));
        // The runner exits with its container's code; a signal means it
        // died before the container ended.
        let orphan = task.container.as_ref().filter(|_| outcome.signal.is_some());
        if let Some(spec) = orphan
            && no_restart_follows(&*store, id, outcome)
        {
            let died = orphan_reason(outcome, spec.keep);
            reason = Some(match reason {
                Some(limit) => format!("{limit}; {died}"),
                None => died,
            });
        }
        let exit = DetectedExit {
            pid,
            outcome,
            reason,
            exited_at_us,
        };
        let decision = commit_for(&task, || self.record_exit(&*store, id, &exit))?;
        Ok(match decision {
            ExitDecision::Restart { restart, delay } => {
                if in_registry(&task) {
                    (self.on_change)(&*store);
                }
                Some((restart, delay))
            }
            ExitDecision::Finish(_) => {
                if let Some(spec) = orphan {
                    self.reap(id, spec);
                }
                if in_registry(&task) {
                    (self.on_end)(&*store);
                }
                None
            }
        })
    }

    fn start_command(&self, task: &TaskRecord, logs: &OutputLogs) -> io::Result<(Child, Pumps)> {
        let mut command = if task.container.is_some() {
            self.container_runner(task)?
        } else {
            let (program, args) = task
                .argv
                .split_first()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
            let mut command = match spawnable_file(program, &task.env) {
                Some(file) => {
                    let mut command = Command::new(file);
                    command.arg0(program);
                    command
                }
                None => Command::new(program),
            };
            command.args(args);
            command
        };
        command
            .env_clear()
            .envs(task.env.iter().map(|(k, v)| (k, v)))
            .env(TASK_ID_ENV, &task.id)
            .stdin(Stdio::null())
            .process_group(0);
        if let Some(cwd) = &task.cwd {
            command.current_dir(cwd);
        }
        if !task.limits.is_empty() {
            let limits = task.limits;
            // SAFETY: the closure only makes async-signal-safe calls
            // (setrlimit, setpriority) and allocates nothing.
            unsafe {
                command.pre_exec(move || limits::apply_to_self(&limits));
            }
        }
        let pumps = logs.attach(&mut command)?;
        let child = command.spawn()?;
        // `command` holds the pipes' write ends; they must close here.
        drop(command);
        Ok((child, pumps))
    }

    /// A container task's supervised process: the runner (this binary),
    /// which drives the engine and exits with the container's exit code.
    fn container_runner(&self, task: &TaskRecord) -> io::Result<Command> {
        let mut command = Command::new(std::env::current_exe()?);
        command
            .arg("--workspace")
            .arg(self.workspace.root())
            .arg(taskdaemon_core::container::RUNNER_SUBCOMMAND)
            .arg(&task.id);
        Ok(command)
    }

    /// Opens the store again once the command has exited, retrying while
    /// it cannot be opened. When it never opens, the exit file (synced)
    /// carries the exit, and the daemon settles the task from it; while
    /// even that file cannot be written (a full disk), the shim is the
    /// exit's only holder and keeps trying, as [`Self::record_exit`] does.
    fn reopen_after_exit(
        &self,
        id: &str,
        pid: i32,
        outcome: ExitOutcome,
    ) -> Result<Arc<dyn Store>, String> {
        let mut attempt = 0;
        let since = Instant::now();
        loop {
            attempt += 1;
            let e = match (self.open_store)() {
                Ok(store) => return Ok(store),
                Err(e) => e,
            };
            if attempt >= RECORD_ATTEMPTS {
                let kept = ExitFile::new(pid, outcome, None).write(self.workspace, id, true);
                match kept {
                    Ok(()) => {
                        return Err(format!(
                            "recording exit: cannot open the store: {e}; the exit file keeps it"
                        ));
                    }
                    Err(write) if since.elapsed() > KEEP_TRYING => {
                        return Err(format!(
                            "recording exit: cannot open the store: {e}, nor write the exit file: {write}"
                        ));
                    }
                    Err(write) => {
                        crate::note!("taskdaemon shim {id}: cannot write exit file: {write}")
                    }
                }
            }
            crate::note!("taskdaemon shim {id}: opening the store failed, retrying: {e}");
            thread::sleep(retry_delay(attempt));
        }
    }

    /// Stops (with grace) and removes, unless kept, the containers task
    /// `id`'s dead runner left: no runner follows to re-attach to them.
    fn reap(&self, id: &str, spec: &ContainerSpec) {
        let root = self.workspace.root().display().to_string();
        let reaped = taskdaemon_container::Engine::new(&spec.engine).and_then(|engine| {
            taskdaemon_container::block_on(taskdaemon_container::reap(
                &engine,
                &root,
                id,
                ORPHAN_STOP_GRACE,
                spec.keep,
            ))?
        });
        match reaped {
            Ok(containers) if !containers.is_empty() => {
                crate::note!(
                    "taskdaemon shim {id}: stopped containers {containers:?} of its dead runner"
                );
            }
            Ok(_) => {}
            Err(e) => {
                crate::note!("taskdaemon shim {id}: cannot stop its dead runner's container: {e}")
            }
        }
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
        store: &dyn Store,
        id: &str,
        exit: &DetectedExit,
    ) -> Result<ExitDecision, String> {
        let file = ExitFile::new(exit.pid, exit.outcome, exit.reason.clone());
        // Written first so a shim killed before the store commit still leaves
        // the exit behind; not synced, since the (synced) store commit right
        // after is what keeps it, unless that fails.
        if let Err(e) = file.write(self.workspace, id, false) {
            crate::note!("taskdaemon shim {id}: cannot write exit file: {e}");
        }
        let mut attempt = 0;
        let mut durable = false;
        let since = Instant::now();
        loop {
            attempt += 1;
            let e = match store.record_detected_exit(id, exit, ACTOR) {
                Ok(recorded) => return Ok(recorded.decision),
                Err(StoreError::Conflict(message)) => return Err(message),
                Err(e) => e,
            };
            if attempt >= RECORD_ATTEMPTS && !durable {
                // The exit file is to be the only copy: make it durable.
                match file.write(self.workspace, id, true) {
                    Ok(()) => durable = true,
                    Err(e) => crate::note!("taskdaemon shim {id}: cannot sync exit file: {e}"),
                }
            }
            // With the exit nowhere durable (a full disk refuses the store and
            // the file alike) the shim is its only holder: it keeps trying
            // until one of them takes it, so the exit is recorded once space
            // returns.
            if durable || since.elapsed() > KEEP_TRYING {
                return Err(format!("recording exit: {e}; the exit file keeps it"));
            }
            crate::note!("taskdaemon shim {id}: recording exit failed, retrying: {e}");
            thread::sleep(retry_delay(attempt));
        }
    }
}

/// The file to start `program` from, when the shim can name it itself:
/// found on the command's own `PATH` as `execvp` would find it, and in a
/// format the kernel runs without help (ELF, or a `#!` script).
///
/// std's `Command` starts a bare program name under a changed environment
/// with `fork` and `execvp` (the lookup must use the new `PATH`), and the
/// fork copies the page tables of the shim and all its threads, then
/// faults on every page either side writes. Given a path, it uses
/// `posix_spawn` (`clone(CLONE_VM | CLONE_VFORK)`), which copies nothing.
/// A file without a known header is left to `execvp`, which runs it with
/// `/bin/sh` where `posix_spawn` would fail.
fn spawnable_file(program: &str, env: &[(String, String)]) -> Option<std::path::PathBuf> {
    let path = env.iter().find(|(key, _)| key == "PATH")?;
    let file = crate::spawn::find_on_path(program, std::ffi::OsStr::new(&path.1))?;
    let mut header = [0u8; 4];
    let read = fs::File::open(&file).and_then(|mut f| io::Read::read(&mut f, &mut header));
    let known = match read {
        Ok(n) => header[..n].starts_with(b"\x7fELF") || header[..n].starts_with(b"#!"),
        Err(_) => false,
    };
    known.then_some(file)
}

/// Whether a task's changes show in the registry projection, which lists
/// processes only: a queue task's start and end leave it as it was, so the
/// shim of a queue task skips rewriting it (a store read of the process
/// table and a file write for every queue task otherwise).
fn in_registry(task: &TaskRecord) -> bool {
    task.kind == TaskKind::Process
}

/// Runs `commit` deferred for a queue task (see [`taskdaemon_store::deferred`]):
/// its start and exit are acknowledged by nobody but its result, which the
/// daemon writes after a durable commit that makes them durable too. A
/// spawned process's start and exit are read by clients as they commit, so
/// they stay durable.
fn commit_for<T>(task: &TaskRecord, commit: impl FnOnce() -> T) -> T {
    if task.kind == TaskKind::Agent {
        taskdaemon_store::deferred(commit)
    } else {
        commit()
    }
}

/// The wait before retry number `attempt` of an exit's store write: growing,
/// then every [`MAX_RETRY_DELAY`].
fn retry_delay(attempt: u32) -> Duration {
    Duration::from_millis(200 * u64::from(attempt)).min(MAX_RETRY_DELAY)
}

/// Whether recording `outcome` now would end task `id` (the store decides
/// the same way when it records it), so that the error can say what
/// happens to a dead runner's container in the same write.
fn no_restart_follows(store: &dyn Store, id: &str, outcome: ExitOutcome) -> bool {
    store.task(id).is_ok_and(|task| {
        let decision =
            decide_after_exit(&task.restart, task.restarts, outcome, task.stop_requested);
        matches!(decision, ExitDecision::Finish(_))
    })
}

/// The error of a task whose container runner died with no restart to follow.
fn orphan_reason(outcome: ExitOutcome, keep: bool) -> String {
    let signal = outcome
        .signal
        .map_or_else(String::new, |s| format!(" (signal {s})"));
    let fate = if keep {
        "stopped (kept)"
    } else {
        "stopped and removed"
    };
    format!("the container runner died{signal}; its container is {fate}")
}

/// Whether our child `process` ends within `within` (it stays unreaped).
fn ends_within(process: &ProcessIdentity, within: Duration) -> bool {
    match PidWatch::open(process) {
        Ok(Some(watch)) => watch.wait(Some(within)).unwrap_or(false),
        // Until we reap it, our child's PID names no other process: gone
        // (a zombie) means ended.
        Ok(None) => true,
        Err(_) => false,
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
