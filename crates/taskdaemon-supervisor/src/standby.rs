//! Standby shims: a shim started before its task exists, so that the exec
//! and start-up of the (large) binary, its config load and its store open
//! leave the path from a queued document to its running command.
//!
//! The daemon starts `taskdaemon --workspace DIR __shim-standby` with a pipe
//! as stdin and another as stdout, and keeps their other ends. The standby
//! loads what a shim loads, then blocks reading one line from stdin: the
//! task id it is to run. From there on it is the shim of that task, exactly
//! as `__shim ID` would be (same session, same handshake line on stdout,
//! stdin and stdout then pointed at `/dev/null`, its stderr moved to the
//! task's `shim.log`): it owns the command and outlives the daemon.
//!
//! A standby that is never handed a task reads end-of-file when the daemon
//! drops it, or dies, or is restarted (the write end lives only in the
//! daemon, close-on-exec), and exits: an idle standby never outlives the
//! daemon that started it.

use std::fs::{self, File};
use std::io::{self, BufRead, PipeReader, PipeWriter, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use taskdaemon_workspace::Workspace;

use crate::launch::{FirstLine, LaunchError, Launched, parse_report, read_line_within, reap_child};

/// The hidden subcommand a standby shim runs as:
/// `taskdaemon --workspace DIR __shim-standby`.
pub const STANDBY_SUBCOMMAND: &str = "__shim-standby";

/// The line a standby says once it is ready for its task.
const READY: &str = "ready";

/// How long a standby may take to start its command and report once it
/// has its task (as long as a freshly started shim may).
const REPORT_TIMEOUT: Duration = Duration::from_secs(15);

/// A started standby shim, waiting for its task. Dropping it (or the
/// daemon ending) tells it to exit; [`Standby::dismiss`] also reaps it.
#[derive(Debug)]
pub struct Standby {
    /// 0 once it is no longer ours to reap (it became a task's shim, or
    /// was reaped).
    pid: i32,
    to_shim: PipeWriter,
    from_shim: PipeReader,
}

/// Why a standby did not take a task.
#[derive(Debug, thiserror::Error)]
pub enum HandOverError {
    /// It never read the task id (it exited, or never got ready): nothing
    /// was started for the task, and a fresh shim may run it.
    #[error("the standby shim (pid {pid}) was gone before it took the task")]
    Gone { pid: i32 },
    /// It took the task and the start failed, as with a fresh shim.
    #[error(transparent)]
    Launch(#[from] LaunchError),
}

impl Standby {
    /// Starts a standby shim of `workspace` with the binary `exe`. Returns
    /// at once: the standby gets ready while the caller does other work.
    pub fn start(exe: &Path, workspace: &Workspace) -> io::Result<Self> {
        let log = standby_log(workspace);
        if let Some(dir) = log.parent() {
            fs::create_dir_all(dir)?;
        }
        let stderr = File::options().create(true).append(true).open(&log)?;
        let (stdin, to_shim) = io::pipe()?;
        let (from_shim, stdout) = io::pipe()?;
        let stdio = crate::spawn::Stdio {
            stdin: stdin.as_fd(),
            stdout: stdout.as_fd(),
            stderr: stderr.as_fd(),
        };
        let args = [
            std::ffi::OsStr::new("--workspace"),
            workspace.root().as_os_str(),
            std::ffi::OsStr::new(STANDBY_SUBCOMMAND),
        ];
        let pid = crate::spawn::spawn_session_leader(exe, &args, &stdio)?;
        // Only the standby may hold its ends: end-of-file must come when
        // either side goes.
        drop((stdin, stdout));
        Ok(Self {
            pid,
            to_shim,
            from_shim,
        })
    }

    /// Its process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Hands task `id` (pending, its start not yet tried) to the standby
    /// and waits for its handshake line, as [`crate::launch_shim`] waits
    /// for a fresh shim's. [`HandOverError::Gone`] means the standby never
    /// read the id: nothing was started for the task.
    pub fn hand_over(mut self, workspace: &Workspace, id: &str) -> Result<Launched, HandOverError> {
        let what = format!("shim for {id}");
        let spawn_error = |source| LaunchError::Spawn {
            what: what.clone(),
            source,
        };
        fs::create_dir_all(workspace.proc_dir(id)).map_err(spawn_error)?;
        // It says it is ready (usually long ago) before it reads anything:
        // a standby that failed to get ready is gone without the id.
        match read_line_within(&mut self.from_shim, REPORT_TIMEOUT).map_err(spawn_error)? {
            FirstLine::Line(line) if line == READY => {}
            FirstLine::Line(_) | FirstLine::Eof => return Err(self.gone()),
            // Stuck getting ready: it never gets the id. Dropped, it exits
            // (and is reaped) whenever it gets that far.
            FirstLine::TimedOut => return Err(HandOverError::Gone { pid: self.pid }),
        }
        let written = self
            .to_shim
            .write_all(format!("{id}\n").as_bytes())
            .and_then(|()| self.to_shim.flush());
        if written.is_err() {
            // EPIPE: it exited after all, without reading the id.
            return Err(self.gone());
        }
        let line = read_line_within(&mut self.from_shim, REPORT_TIMEOUT).map_err(spawn_error)?;
        let pid = self.pid;
        // From here the standby is the task's shim: whoever follows it reaps it.
        self.pid = 0;
        match line {
            FirstLine::Line(line) => {
                let launched = parse_report(&line, pid);
                if matches!(launched, Err(LaunchError::Refused(_))) {
                    // It said it is ending.
                    reap_child(pid);
                }
                Ok(launched?)
            }
            FirstLine::TimedOut => Err(LaunchError::Timeout {
                what,
                timeout: REPORT_TIMEOUT,
            }
            .into()),
            FirstLine::Eof => {
                reap_child(pid);
                Err(LaunchError::NoReport {
                    what,
                    log: workspace.shim_log(id).display().to_string(),
                }
                .into())
            }
        }
    }

    /// Tells the standby to exit and waits until it has.
    pub fn dismiss(mut self) {
        let pid = std::mem::replace(&mut self.pid, 0);
        drop(self);
        reap_child(pid);
    }

    fn gone(mut self) -> HandOverError {
        let pid = std::mem::replace(&mut self.pid, 0);
        drop(self);
        reap_child(pid);
        HandOverError::Gone { pid }
    }
}

impl Drop for Standby {
    /// Closing the pipes tells a standby still waiting to exit; it is
    /// reaped aside, so that dropping one never blocks the dropper.
    fn drop(&mut self) {
        if self.pid > 0 {
            let pid = self.pid;
            let _ = std::thread::Builder::new()
                .name("standby-reaper".into())
                .spawn(move || reap_child(pid));
        }
    }
}

/// Where standby shims write their diagnostics until they have a task (a
/// shim's own go to its task's `shim.log`).
pub fn standby_log(workspace: &Workspace) -> std::path::PathBuf {
    workspace.state_dir().join("standby-shim.log")
}

/// Said by the standby once it has loaded what it needs: says it is ready,
/// blocks until the daemon names its task, then becomes that task's shim as
/// far as descriptors go (stdin `/dev/null`, stderr the task's `shim.log`,
/// both best effort: a failure is noted and the shim runs on). None when
/// the daemon let it go.
pub fn await_task(workspace: &Workspace) -> Option<String> {
    {
        let mut stdout = io::stdout().lock();
        // A daemon gone already shows as end-of-file below.
        let _ = writeln!(stdout, "{READY}");
        let _ = stdout.flush();
    }
    let mut line = String::new();
    // A read error is the daemon gone as surely as end-of-file is.
    let read = io::stdin().lock().read_line(&mut line).unwrap_or(0);
    let id = line
        .strip_suffix('\n')
        .filter(|id| read > 0 && !id.is_empty())?;
    let redirected = File::open("/dev/null")
        .and_then(|null| Ok(rustix::stdio::dup2_stdin(&null)?))
        .and_then(|()| {
            let log = File::options()
                .create(true)
                .append(true)
                .open(workspace.shim_log(id))?;
            Ok(rustix::stdio::dup2_stderr(&log)?)
        });
    if let Err(e) = redirected {
        crate::note!("taskdaemon standby shim for {id}: cannot redirect stdin or stderr: {e}");
    }
    Some(id.to_owned())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    use super::*;
    use crate::procfs::{Liveness, identity, liveness};

    /// A stand-in for the binary, run as `--workspace DIR __shim-standby`;
    /// the body plays the standby.
    fn stand_in(dir: &Path, body: &str) -> PathBuf {
        let path = dir.join("standby.sh");
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn workspace(dir: &Path) -> Workspace {
        Workspace::init(dir).unwrap().0
    }

    #[test]
    fn the_task_id_goes_to_the_standby_and_its_report_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let ws = workspace(dir.path());
        let got = dir.path().join("got");
        let exe = stand_in(
            dir.path(),
            &format!(
                "[ \"$3\" = {STANDBY_SUBCOMMAND} ] || exit 3\necho ready\nread id\necho \"$id\" > {}\necho \"ok 4242\"",
                got.display()
            ),
        );
        let standby = Standby::start(&exe, &ws).unwrap();
        let pid = standby.pid();
        let launched = standby.hand_over(&ws, "task-7").unwrap();
        assert_eq!((launched.pid, launched.report.as_str()), (pid, "4242"));
        assert_eq!(fs::read_to_string(&got).unwrap(), "task-7\n");
        assert!(ws.proc_dir("task-7").is_dir());
        reap_child(pid);
    }

    #[test]
    fn a_refusal_is_reported_as_from_a_fresh_shim() {
        let dir = tempfile::tempdir().unwrap();
        let ws = workspace(dir.path());
        let exe = stand_in(
            dir.path(),
            "echo ready\nread id\necho \"error no such program\"",
        );
        let standby = Standby::start(&exe, &ws).unwrap();
        match standby.hand_over(&ws, "task-1") {
            Err(HandOverError::Launch(LaunchError::Refused(message))) => {
                assert_eq!(message, "no such program")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_standby_that_never_got_ready_is_gone_and_never_read_the_id() {
        let dir = tempfile::tempdir().unwrap();
        let ws = workspace(dir.path());
        // As a standby that cannot open the store: it ends before `ready`.
        let exe = stand_in(dir.path(), "echo 'cannot open the store' >&2\nexit 1");
        let standby = Standby::start(&exe, &ws).unwrap();
        let pid = standby.pid();
        assert!(matches!(
            standby.hand_over(&ws, "task-2"),
            Err(HandOverError::Gone { pid: p }) if p == pid
        ));
        // Reaped: no zombie of it is left.
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
        let log = fs::read_to_string(standby_log(&ws)).unwrap();
        assert!(log.contains("cannot open the store"), "{log}");
    }

    #[test]
    fn a_standby_exits_when_it_is_let_go() {
        let dir = tempfile::tempdir().unwrap();
        let ws = workspace(dir.path());
        // Exits on end-of-file, as `await_task` makes the real one do.
        let exe = stand_in(dir.path(), "echo ready\nread id || exit 0\nsleep 300");
        let standby = Standby::start(&exe, &ws).unwrap();
        let pid = standby.pid();
        let process = identity(pid).unwrap();
        standby.dismiss();
        assert_ne!(liveness(&process), Liveness::Alive);
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "reaped");
    }
}
