//! Standby shims: a long-lived starter of shims, so that the exec and
//! start-up of the (large) binary and its config load leave the path from
//! a queued document to its running command.
//!
//! The daemon starts `taskdaemon --workspace DIR __shim-standby` with a pipe
//! as stdin and another as stdout, and keeps their other ends. The standby
//! loads the config and says `ready`; then, for every task id the daemon
//! writes to it (one line each), it forks a child that becomes that task's
//! shim, as `__shim ID` would be: its own session, stdin `/dev/null`,
//! stderr the task's `shim.log`, the same handshake, and `__shim` in its
//! command line. The child opens the store itself (a connection must not
//! cross a fork), owns the command and outlives the daemon and the standby.
//!
//! The standby relays each child's handshake line to the daemon, prefixed
//! with the child's pid: `PID ok ...` or `PID error ...`; a child that ends
//! before it says anything is relayed as such at once, so the daemon never
//! waits out a timeout for a shim that is gone. The standby reaps its
//! children as they end (a `SIGCHLD` handler), so none lingers as a zombie
//! and their CPU time is counted in the standby's, as a fresh shim's is in
//! the daemon's.
//!
//! Forking is only sound in a process with one thread; the standby checks
//! that it has one before each fork. When it cannot fork it says it started
//! nothing and exits, and the daemon starts a fresh shim for the task.
//!
//! The standby forks each shim before its task comes: a spare child that
//! prepares what it can without the task (in the binary: opens the store,
//! which loads the schema) and then waits for a task id on a pipe of its
//! own. A task id from the daemon goes to the spare, whose handshake is
//! relayed as before; only then is the next spare forked, while the task
//! runs. So neither the fork nor the store's opening lies between a queued
//! document and its running command. A spare that cannot be had (a fork
//! refused, a spare gone) leaves the standby forking the task's shim on
//! the spot, as it did before spares.
//!
//! A standby reads end-of-file when the daemon drops it, or dies, or is
//! restarted (the write end lives only in the daemon, close-on-exec), and
//! exits: a standby never outlives the daemon that started it, while the
//! shims it started do. Its spare reads end-of-file in turn and exits
//! without having run anything.

use std::fs::{self, File};
use std::io::{self, BufRead, PipeReader, PipeWriter, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use taskdaemon_workspace::Workspace;

use crate::launch::{FirstLine, LaunchError, Launched, parse_report, read_line_within, reap_child};
use crate::procfs::stat_field;

/// The hidden subcommand a standby shim runs as:
/// `taskdaemon --workspace DIR __shim-standby`.
pub const STANDBY_SUBCOMMAND: &str = "__shim-standby";

/// The line a standby says once it is ready for its first task.
const READY: &str = "ready";
/// The answer of a standby that started nothing (it cannot fork, or fork
/// safely), followed by why; it exits after saying it.
const DECLINED: &str = "declined";
/// After a shim's pid: it exited before reporting.
const SILENT: &str = "silent";
/// After a shim's pid: it did not report within [`REPORT_TIMEOUT`].
const TIMED_OUT: &str = "timeout";

/// How long a shim may take to start its command and report once it has
/// its task (as long as a freshly started shim may).
const REPORT_TIMEOUT: Duration = Duration::from_secs(15);

/// How long the daemon waits for the standby's relay of a report: the
/// standby's own wait, and a margin for the relay itself.
const RELAY_TIMEOUT: Duration = Duration::from_secs(20);

/// A started standby shim, waiting for tasks. Dropping it (or the daemon
/// ending) tells it to exit; [`Standby::dismiss`] also reaps it.
#[derive(Debug)]
pub struct Standby {
    pid: i32,
    to_standby: PipeWriter,
    from_standby: PipeReader,
    /// It said `ready`.
    ready: bool,
    /// A hand-over left the pipes out of step (a timeout, a standby gone):
    /// it takes no more tasks.
    broken: bool,
}

/// Why a standby did not take a task.
#[derive(Debug, thiserror::Error)]
pub enum HandOverError {
    /// It never read the task id (it exited, or never got ready): nothing
    /// was started for the task, and a fresh shim may run it.
    #[error("the standby shim (pid {pid}) was gone before it took the task")]
    Gone { pid: i32 },
    /// It read the task id and started nothing (it could not fork): a
    /// fresh shim may run the task.
    #[error("the standby shim (pid {pid}) started nothing: {why}")]
    Declined { pid: i32, why: String },
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
        let (stdin, to_standby) = io::pipe()?;
        let (from_standby, stdout) = io::pipe()?;
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
            to_standby,
            from_standby,
            ready: false,
            broken: false,
        })
    }

    /// Its process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Whether it can take another task: false once a hand-over failed in
    /// a way that leaves its answers out of step with its tasks.
    pub fn usable(&self) -> bool {
        !self.broken
    }

    /// Hands task `id` (pending, its start not yet tried) to the standby
    /// and waits for the handshake line of the shim it starts, as
    /// [`crate::launch_shim`] waits for a fresh shim's. The returned pid is
    /// the shim's. [`HandOverError::Gone`] and [`HandOverError::Declined`]
    /// mean nothing was started for the task. After any error but a
    /// refusal or a shim that ended before reporting, the standby is no
    /// longer [`usable`](Self::usable).
    pub fn hand_over(
        &mut self,
        workspace: &Workspace,
        id: &str,
    ) -> Result<Launched, HandOverError> {
        if self.broken {
            return Err(HandOverError::Gone { pid: self.pid });
        }
        let what = format!("shim for {id}");
        let spawn_error = |source| LaunchError::Spawn {
            what: what.clone(),
            source,
        };
        fs::create_dir_all(workspace.proc_dir(id)).map_err(spawn_error)?;
        if !self.ready {
            // It says it is ready (usually long ago) before it reads anything:
            // a standby that failed to get ready is gone without the id.
            let line = read_line_within(&mut self.from_standby, REPORT_TIMEOUT);
            self.broken = true;
            match line.map_err(spawn_error)? {
                FirstLine::Line(line) if line == READY => {}
                // Stuck getting ready, or gone: it never gets the id.
                FirstLine::Line(_) | FirstLine::Eof | FirstLine::TimedOut => {
                    return Err(HandOverError::Gone { pid: self.pid });
                }
            }
            self.ready = true;
            self.broken = false;
        }
        let written = self
            .to_standby
            .write_all(format!("{id}\n").as_bytes())
            .and_then(|()| self.to_standby.flush());
        if written.is_err() {
            // EPIPE: it exited, without reading the id.
            self.broken = true;
            return Err(HandOverError::Gone { pid: self.pid });
        }
        let line = read_line_within(&mut self.from_standby, RELAY_TIMEOUT);
        // Anything but an answer leaves the next answer in doubt.
        self.broken = !matches!(line, Ok(FirstLine::Line(_)));
        let line = match line.map_err(spawn_error)? {
            FirstLine::Line(line) => line,
            FirstLine::TimedOut => {
                return Err(LaunchError::Timeout {
                    what,
                    timeout: RELAY_TIMEOUT,
                }
                .into());
            }
            FirstLine::Eof => {
                return Err(LaunchError::NoReport {
                    what,
                    log: standby_log(workspace).display().to_string(),
                }
                .into());
            }
        };
        match Relay::parse(&line) {
            Some(Relay::Report(pid, report)) => Ok(parse_report(report, pid)?),
            Some(Relay::Silent(_)) => Err(LaunchError::NoReport {
                what,
                log: workspace.shim_log(id).display().to_string(),
            }
            .into()),
            Some(Relay::TimedOut(_)) => Err(LaunchError::Timeout {
                what,
                timeout: REPORT_TIMEOUT,
            }
            .into()),
            Some(Relay::Declined(why)) => {
                self.broken = true;
                Err(HandOverError::Declined {
                    pid: self.pid,
                    why: why.to_owned(),
                })
            }
            None => {
                self.broken = true;
                Err(LaunchError::Refused(format!("the standby shim said {line:?}")).into())
            }
        }
    }

    /// Tells the standby to exit and waits until it has.
    pub fn dismiss(mut self) {
        let pid = std::mem::replace(&mut self.pid, 0);
        drop(self);
        reap_child(pid);
    }
}

impl Drop for Standby {
    /// Closing the pipes tells the standby to exit; it is reaped aside, so
    /// that dropping one never blocks the dropper.
    fn drop(&mut self) {
        if self.pid > 0 {
            let pid = self.pid;
            let _ = std::thread::Builder::new()
                .name("standby-reaper".into())
                .spawn(move || reap_child(pid));
        }
    }
}

/// The standby's answer to a task id, one line.
#[derive(Debug, PartialEq, Eq)]
enum Relay<'a> {
    /// `PID LINE`: shim PID said LINE (`ok ...` or `error ...`).
    Report(i32, &'a str),
    /// `PID silent`: shim PID exited before reporting.
    Silent(i32),
    /// `PID timeout`: shim PID did not report in time.
    TimedOut(i32),
    /// `declined WHY`: nothing was started.
    Declined(&'a str),
}

impl<'a> Relay<'a> {
    fn parse(line: &'a str) -> Option<Self> {
        let (first, rest) = line.split_once(' ').unwrap_or((line, ""));
        if first == DECLINED {
            return Some(Relay::Declined(rest));
        }
        let pid = first.parse().ok().filter(|pid: &i32| *pid > 0)?;
        Some(match rest {
            SILENT => Relay::Silent(pid),
            TIMED_OUT => Relay::TimedOut(pid),
            "" => return None,
            report => Relay::Report(pid, report),
        })
    }
}

/// Where standby shims write their diagnostics (a shim's own go to its
/// task's `shim.log`).
pub fn standby_log(workspace: &Workspace) -> std::path::PathBuf {
    workspace.state_dir().join("standby-shim.log")
}

/// The standby's side: says it is ready, then for every task id read from
/// stdin has a child run `run_shim(id, prepared)` as that task's shim and
/// exit with its code, and relays the child's handshake line to stdout.
/// The child is a spare forked ahead of the task, which ran `prepare()`
/// before its task came (see the module docs), or, when there is no spare,
/// one forked for the task, which runs `prepare()` once it has it.
/// Returns (the standby's exit code) at end-of-file on stdin, when the
/// daemon let it go, or when it cannot fork safely.
pub fn serve<P>(
    workspace: &Workspace,
    prepare: &dyn Fn() -> P,
    run_shim: &dyn Fn(&str, P) -> i32,
) -> i32 {
    if let Err(e) = reap_children_as_they_end() {
        crate::note!("taskdaemon standby shim: cannot handle SIGCHLD: {e}");
        return 1;
    }
    if say(READY).is_err() {
        return 0;
    }
    let mut spare = fork_spare_or_note(workspace, prepare, run_shim);
    let stdin = io::stdin();
    let mut line = String::new();
    loop {
        line.clear();
        // A read error is the daemon gone as surely as end-of-file is.
        if stdin.lock().read_line(&mut line).unwrap_or(0) == 0 {
            return 0;
        }
        let Some(id) = line.strip_suffix('\n').filter(|id| !id.is_empty()) else {
            return 0;
        };
        let handed = spare.take().and_then(|spare| spare.take_task(id));
        let answer = match handed {
            Some(answer) => Ok(answer),
            None => start_shim(workspace, id, &|id| run_shim(id, prepare())),
        };
        match answer {
            Ok(answer) => {
                if say(&answer).is_err() {
                    return 0;
                }
            }
            Err(e) => {
                // Nothing was started: the daemon starts a fresh shim.
                crate::note!("taskdaemon standby shim: cannot start the shim for {id}: {e}");
                let _ = say(&format!("{DECLINED} {e}"));
                return 1;
            }
        }
        spare = fork_spare_or_note(workspace, prepare, run_shim);
    }
}

/// A shim forked ahead of its task (see the module docs): it has run, or
/// is running, `prepare` and waits for its task id.
struct Spare {
    pid: i32,
    /// Its task id goes here, one line. Dropped unwritten, it tells the
    /// spare to exit.
    to_spare: PipeWriter,
    /// Its handshake line comes back here.
    from_spare: PipeReader,
}

impl Spare {
    /// Gives the spare task `id` and waits for its handshake; returns the
    /// answer for the daemon. None when the spare was gone before it could
    /// have read the id: nothing was started.
    fn take_task(mut self, id: &str) -> Option<String> {
        let written = self
            .to_spare
            .write_all(format!("{id}\n").as_bytes())
            .and_then(|()| self.to_spare.flush());
        if written.is_err() {
            // EPIPE: it ended without reading anything.
            return None;
        }
        Some(relay_report(self.pid, &mut self.from_spare))
    }
}

/// [`fork_spare`], noting why there is no spare when it fails: the next
/// task's shim is then forked for it.
fn fork_spare_or_note<P>(
    workspace: &Workspace,
    prepare: &dyn Fn() -> P,
    run_shim: &dyn Fn(&str, P) -> i32,
) -> Option<Spare> {
    fork_spare(workspace, prepare, run_shim)
        .inspect_err(|e| crate::note!("taskdaemon standby shim: no spare shim: {e}"))
        .ok()
}

/// Forks a spare: in its own session already, stdin `/dev/null`, stdout
/// its handshake pipe, stderr still the standby's log; it runs `prepare`,
/// then waits for its task id. Given one, it sends its stderr to the
/// task's `shim.log` and runs `run_shim` as the task's shim; given
/// end-of-file (the standby gone), it exits having run nothing.
fn fork_spare<P>(
    workspace: &Workspace,
    prepare: &dyn Fn() -> P,
    run_shim: &dyn Fn(&str, P) -> i32,
) -> io::Result<Spare> {
    if threads() != Some(1) {
        return Err(io::Error::other(
            "the standby is not single-threaded; forking is unsafe",
        ));
    }
    let null = File::open("/dev/null")?;
    let (from_spare, to_standby) = io::pipe()?;
    let (from_standby, to_spare) = io::pipe()?;
    // SAFETY: the process has one thread (checked above), so the child
    // gets a consistent copy of every lock and allocator state.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // Holding the write end itself, it would never read end-of-file.
        drop((from_spare, to_spare));
        become_shim(&null, &to_standby, None);
        drop((null, to_standby));
        let prepared = prepare();
        let code = match read_task_id(from_standby) {
            Some(id) => {
                redirect_stderr_to_shim_log(workspace, &id);
                run_shim(&id, prepared)
            }
            None => 0,
        };
        std::process::exit(code);
    }
    drop((null, to_standby, from_standby));
    Ok(Spare {
        pid,
        to_spare,
        from_spare,
    })
}

/// The one line a spare is given: its task id. None at end-of-file.
fn read_task_id(pipe: PipeReader) -> Option<String> {
    let mut line = String::new();
    io::BufReader::new(pipe).read_line(&mut line).ok()?;
    line.strip_suffix('\n')
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

/// In a spare given task `id`: stderr becomes the task's `shim.log` (its
/// directory made by the daemon before it handed the id over). A failure
/// is noted in the standby's log, and the shim runs on.
fn redirect_stderr_to_shim_log(workspace: &Workspace, id: &str) {
    let opened = File::options()
        .create(true)
        .append(true)
        .open(workspace.shim_log(id));
    match opened.and_then(|log| rustix::stdio::dup2_stderr(&log).map_err(io::Error::from)) {
        Ok(()) => {}
        Err(e) => crate::note!("taskdaemon shim {id}: cannot write to its shim.log: {e}"),
    }
}

/// Installs a `SIGCHLD` handler that reaps every ended child. Restarting
/// (`SA_RESTART`): the standby's blocking reads go on undisturbed.
fn reap_children_as_they_end() -> io::Result<()> {
    extern "C" fn reap(_: libc::c_int) {
        // SAFETY: waitpid and errno access are async-signal-safe; errno is
        // put back so the interrupted code sees its own.
        unsafe {
            let errno = *libc::__errno_location();
            while libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) > 0 {}
            *libc::__errno_location() = errno;
        }
    }
    // SAFETY: an all-zero sigaction is valid to fill in; the handler is an
    // `extern "C" fn(c_int)`, as sa_sigaction without SA_SIGINFO expects.
    let rc = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = reap as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART | libc::SA_NOCLDSTOP;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGCHLD, &action, std::ptr::null_mut())
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Writes one line to the daemon.
fn say(line: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{line}")?;
    stdout.flush()
}

/// Forks the shim of task `id` and waits for its handshake line; returns
/// the answer for the daemon (see [`Relay`]). An error means nothing was
/// started.
fn start_shim(
    workspace: &Workspace,
    id: &str,
    run_shim: &dyn Fn(&str) -> i32,
) -> io::Result<String> {
    if threads() != Some(1) {
        return Err(io::Error::other(
            "the standby is not single-threaded; forking is unsafe",
        ));
    }
    let log = File::options()
        .create(true)
        .append(true)
        .open(workspace.shim_log(id))?;
    let null = File::open("/dev/null")?;
    let (mut from_shim, to_daemon) = io::pipe()?;
    // SAFETY: the process has one thread (checked above), so the child
    // gets a consistent copy of every lock and allocator state.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        drop(from_shim);
        become_shim(&null, &to_daemon, Some(&log));
        drop((null, to_daemon, log));
        std::process::exit(run_shim(id));
    }
    drop((null, to_daemon, log));
    Ok(relay_report(pid, &mut from_shim))
}

/// Waits for the handshake line of shim `pid` on `pipe`; returns what to
/// tell the daemon (see [`Relay`]).
fn relay_report(pid: i32, pipe: &mut PipeReader) -> String {
    match read_line_within(pipe, REPORT_TIMEOUT) {
        Ok(FirstLine::Line(report)) => format!("{pid} {report}"),
        Ok(FirstLine::Eof) => format!("{pid} {SILENT}"),
        // A pipe we cannot read is a report we cannot have.
        Ok(FirstLine::TimedOut) | Err(_) => format!("{pid} {TIMED_OUT}"),
    }
}

/// In the forked child: its own session, default `SIGCHLD` (its command
/// is its child to wait for), stdin `/dev/null`, stdout the pipe its
/// handshake goes through, stderr the task's `shim.log` (a spare's stays
/// the standby's log until it has its task), and a command line that says
/// it is a shim. Failures are noted and the shim runs on, as a fresh
/// shim's would.
fn become_shim(null: &File, report: &PipeWriter, log: Option<&File>) {
    // SAFETY: plain syscalls on our own process.
    unsafe {
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
        libc::setsid();
    }
    retitle_as_shim();
    let redirected = rustix::stdio::dup2_stdin(null)
        .and_then(|()| rustix::stdio::dup2_stdout(report))
        .and_then(|()| log.map_or(Ok(()), rustix::stdio::dup2_stderr));
    if let Err(e) = redirected {
        crate::note!("taskdaemon shim: cannot set up stdin, stdout or stderr: {e}");
    }
}

/// Rewrites this process's command line (as `ps` and `/proc/PID/cmdline`
/// show it) from the standby's `... __shim-standby` to `... __shim`, so
/// that a shim is not taken for a standby: the subcommand's bytes are
/// overwritten in place, the rest padded with NULs (the region cannot
/// grow, so the task id is not added). Best effort.
fn retitle_as_shim() {
    const FROM: &[u8] = b"__shim-standby\0";
    let Some((start, end)) = argument_area() else {
        return;
    };
    // SAFETY: [start, end) is this process's argument area, as the kernel
    // reports it: mapped, writable (it is on the initial stack) and ours;
    // nothing reads it concurrently (the process has one thread here).
    let area = unsafe { std::slice::from_raw_parts_mut(start as *mut u8, end - start) };
    if let Some(at) = area.windows(FROM.len()).rposition(|w| w == FROM) {
        let subcommand = &mut area[at..at + FROM.len()];
        subcommand.fill(0);
        subcommand[..crate::SHIM_SUBCOMMAND.len()]
            .copy_from_slice(crate::SHIM_SUBCOMMAND.as_bytes());
    }
}

/// The start and end of this process's argument strings (fields 48 and
/// 49 of `/proc/self/stat`).
fn argument_area() -> Option<(usize, usize)> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    let start: usize = stat_field(&stat, 48)?.parse().ok()?;
    let end: usize = stat_field(&stat, 49)?.parse().ok()?;
    (start > 0 && end > start).then_some((start, end))
}

/// The number of threads of this process (field 20 of `/proc/self/stat`).
fn threads() -> Option<u64> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    stat_field(&stat, 20)?.parse().ok()
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
    fn each_task_id_goes_to_the_standby_and_its_shims_report_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let ws = workspace(dir.path());
        let got = dir.path().join("got");
        // Answers for shims 500 and 501, whose commands are 4242 and 4243.
        let exe = stand_in(
            dir.path(),
            &format!(
                "[ \"$3\" = {STANDBY_SUBCOMMAND} ] || exit 3\necho ready\nn=0\nwhile read id; do\n  echo \"$id\" >> {}\n  echo \"$((500 + n)) ok $((4242 + n))\"\n  n=$((n + 1))\ndone",
                got.display()
            ),
        );
        let mut standby = Standby::start(&exe, &ws).unwrap();
        let first = standby.hand_over(&ws, "task-7").unwrap();
        let second = standby.hand_over(&ws, "task-8").unwrap();
        assert_eq!((first.pid, first.report.as_str()), (500, "4242"));
        assert_eq!((second.pid, second.report.as_str()), (501, "4243"));
        assert!(standby.usable());
        assert_eq!(fs::read_to_string(&got).unwrap(), "task-7\ntask-8\n");
        assert!(ws.proc_dir("task-8").is_dir());
        standby.dismiss();
    }

    #[test]
    fn a_refusal_is_reported_as_from_a_fresh_shim_and_the_standby_stays() {
        let dir = tempfile::tempdir().unwrap();
        let ws = workspace(dir.path());
        let exe = stand_in(
            dir.path(),
            "echo ready\nread id\necho \"77 error no such program\"\nread id\necho \"78 ok 9\"",
        );
        let mut standby = Standby::start(&exe, &ws).unwrap();
        match standby.hand_over(&ws, "task-1") {
            Err(HandOverError::Launch(LaunchError::Refused(message))) => {
                assert_eq!(message, "no such program")
            }
            other => panic!("{other:?}"),
        }
        assert!(standby.usable());
        let next = standby.hand_over(&ws, "task-2").unwrap();
        assert_eq!((next.pid, next.report.as_str()), (78, "9"));
    }

    #[test]
    fn an_answer_out_of_protocol_leaves_the_standby_unusable() {
        let dir = tempfile::tempdir().unwrap();
        let ws = workspace(dir.path());
        let exe = stand_in(dir.path(), "echo ready\nread id\necho garbage\nread id");
        let mut standby = Standby::start(&exe, &ws).unwrap();
        assert!(standby.hand_over(&ws, "task-1").is_err());
        assert!(!standby.usable());
        assert!(matches!(
            standby.hand_over(&ws, "task-2"),
            Err(HandOverError::Gone { .. })
        ));
    }

    #[test]
    fn a_standby_that_never_got_ready_is_gone_and_never_read_the_id() {
        let dir = tempfile::tempdir().unwrap();
        let ws = workspace(dir.path());
        // As a standby that cannot load the config: it ends before `ready`.
        let exe = stand_in(dir.path(), "echo 'cannot load the config' >&2\nexit 1");
        let mut standby = Standby::start(&exe, &ws).unwrap();
        let pid = standby.pid();
        assert!(matches!(
            standby.hand_over(&ws, "task-2"),
            Err(HandOverError::Gone { pid: p }) if p == pid
        ));
        assert!(!standby.usable());
        standby.dismiss();
        // Reaped: no zombie of it is left.
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
        let log = fs::read_to_string(standby_log(&ws)).unwrap();
        assert!(log.contains("cannot load the config"), "{log}");
    }

    #[test]
    fn a_standby_exits_when_it_is_let_go() {
        let dir = tempfile::tempdir().unwrap();
        let ws = workspace(dir.path());
        // Exits on end-of-file, as `serve` makes the real one do.
        let exe = stand_in(dir.path(), "echo ready\nread id || exit 0\nsleep 300");
        let standby = Standby::start(&exe, &ws).unwrap();
        let pid = standby.pid();
        let process = identity(pid).unwrap();
        standby.dismiss();
        assert_ne!(liveness(&process), Liveness::Alive);
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "reaped");
    }

    #[test]
    fn the_relay_names_the_shim_and_what_became_of_it() {
        assert_eq!(Relay::parse("12 ok 34"), Some(Relay::Report(12, "ok 34")));
        assert_eq!(
            Relay::parse("12 error no such program"),
            Some(Relay::Report(12, "error no such program"))
        );
        assert_eq!(Relay::parse("12 silent"), Some(Relay::Silent(12)));
        assert_eq!(Relay::parse("12 timeout"), Some(Relay::TimedOut(12)));
        assert_eq!(
            Relay::parse("declined cannot fork"),
            Some(Relay::Declined("cannot fork"))
        );
        assert_eq!(Relay::parse("ok 34"), None);
        assert_eq!(Relay::parse("0 ok 34"), None);
        assert_eq!(Relay::parse("12"), None);
    }

    #[test]
    fn a_shim_that_exits_before_reporting_is_a_launch_error_and_the_standby_stays() {
        let dir = tempfile::tempdir().unwrap();
        let ws = workspace(dir.path());
        let exe = stand_in(
            dir.path(),
            "echo ready\nread id\necho \"31 silent\"\nread id\necho \"32 ok 9\"",
        );
        let mut standby = Standby::start(&exe, &ws).unwrap();
        match standby.hand_over(&ws, "task-1") {
            Err(HandOverError::Launch(LaunchError::NoReport { log, .. })) => {
                assert!(log.ends_with("task-1/shim.log"), "{log}")
            }
            other => panic!("{other:?}"),
        }
        assert!(standby.usable());
        assert_eq!(standby.hand_over(&ws, "task-2").unwrap().pid, 32);
    }

    #[test]
    fn a_standby_that_declines_is_gone_for_this_task_and_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let ws = workspace(dir.path());
        let exe = stand_in(
            dir.path(),
            "echo ready\nread id\necho \"declined cannot fork\"",
        );
        let mut standby = Standby::start(&exe, &ws).unwrap();
        match standby.hand_over(&ws, "task-1") {
            Err(HandOverError::Declined { why, .. }) => assert_eq!(why, "cannot fork"),
            other => panic!("{other:?}"),
        }
        assert!(!standby.usable());
        assert!(matches!(
            standby.hand_over(&ws, "task-2"),
            Err(HandOverError::Gone { .. })
        ));
    }

    #[test]
    fn threads_counts_the_threads_of_this_process() {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let before = threads().unwrap();
        let extra = std::thread::spawn(move || stopped.recv());
        let during = threads().unwrap();
        drop(stop);
        let _ = extra.join();
        assert!(before >= 1 && during > before, "{before} then {during}");
    }
}
