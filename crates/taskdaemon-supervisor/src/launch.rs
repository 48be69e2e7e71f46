//! Starting detached helpers (the shim, the daemon) with a start-up handshake.
//!
//! The helper starts in a new session so that nothing its starter does (exit,
//! crash, terminal hang-up) reaches it. Its stdout is a pipe only until it has
//! said one line, `ok ...` or `error ...`; then it points stdout at
//! `/dev/null`, so no pipe held by the starter outlives the start.
//!
//! Helpers start through [`crate::spawn`] (`posix_spawn`), not a fork of
//! the starter.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, PipeReader, Read, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use taskdaemon_workspace::Workspace;

/// A helper failed to start.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot start {what}: {source}")]
    Spawn {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{what} did not report within {}s", timeout.as_secs())]
    Timeout { what: String, timeout: Duration },
    #[error("{what} exited before reporting (see {log})")]
    NoReport { what: String, log: String },
    #[error("{0}")]
    Refused(String),
}

/// The hidden subcommand that runs a shim: `taskdaemon --workspace DIR __shim ID`.
pub const SHIM_SUBCOMMAND: &str = "__shim";

/// How long a shim may take to start its command and report.
const SHIM_REPORT_TIMEOUT: Duration = Duration::from_secs(15);

/// Starts the shim for task `id` with the binary `exe`; returns once the
/// command runs (`report` is its pid) or the start failed.
pub fn launch_shim(exe: &Path, workspace: &Workspace, id: &str) -> Result<Launched, LaunchError> {
    let dir = workspace.proc_dir(id);
    fs::create_dir_all(&dir).map_err(|source| LaunchError::Spawn {
        what: format!("shim for {id}"),
        source,
    })?;
    let args = [
        OsStr::new("--workspace"),
        workspace.root().as_os_str(),
        OsStr::new(SHIM_SUBCOMMAND),
        OsStr::new(id),
    ];
    launch_detached(
        exe,
        &args,
        &format!("shim for {id}"),
        &workspace.shim_log(id),
        SHIM_REPORT_TIMEOUT,
    )
}

/// A started helper and the first line it reported after `ok `.
#[derive(Debug)]
pub struct Launched {
    pub pid: i32,
    pub report: String,
}

/// Starts `program` with `args` in a new session with `stderr_log` as its
/// stderr and waits up to `timeout` for its handshake line.
pub fn launch_detached(
    program: &Path,
    args: &[&OsStr],
    what: &str,
    stderr_log: &Path,
    timeout: Duration,
) -> Result<Launched, LaunchError> {
    let spawn_error = |source| LaunchError::Spawn {
        what: what.to_owned(),
        source,
    };
    let stderr = File::options()
        .create(true)
        .append(true)
        .open(stderr_log)
        .map_err(spawn_error)?;
    let stdin = File::open("/dev/null").map_err(spawn_error)?;
    let (mut stdout, writer) = io::pipe().map_err(spawn_error)?;
    let stdio = crate::spawn::Stdio {
        stdin: stdin.as_fd(),
        stdout: writer.as_fd(),
        stderr: stderr.as_fd(),
    };
    let pid = crate::spawn::spawn_session_leader(program, args, &stdio).map_err(spawn_error)?;
    // Only the child may hold the write end, or the end of its output never comes.
    drop(writer);
    let line = read_line_within(&mut stdout, timeout).map_err(spawn_error)?;
    // The helper lives on; whoever watches it reaps it, or init does.
    let result = match line {
        FirstLine::Line(line) => parse_report(&line, pid),
        FirstLine::TimedOut => Err(LaunchError::Timeout {
            what: what.to_owned(),
            timeout,
        }),
        FirstLine::Eof => Err(LaunchError::NoReport {
            what: what.to_owned(),
            log: stderr_log.display().to_string(),
        }),
    };
    if matches!(
        result,
        Err(LaunchError::Refused(_) | LaunchError::NoReport { .. })
    ) {
        reap_child(pid);
    }
    result
}

/// Waits for our child `pid` to end (it has said it is ending, or its
/// pipe closed).
pub(crate) fn reap_child(pid: i32) {
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child; `status` is a valid out pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}

pub(crate) fn parse_report(line: &str, pid: i32) -> Result<Launched, LaunchError> {
    if let Some(report) = line.strip_prefix("ok") {
        return Ok(Launched {
            pid,
            report: report.trim().to_owned(),
        });
    }
    let message = line.strip_prefix("error").unwrap_or(line).trim();
    Err(LaunchError::Refused(message.to_owned()))
}

pub(crate) enum FirstLine {
    Line(String),
    Eof,
    TimedOut,
}

/// Reads up to the first newline, waiting at most `timeout` in all.
pub(crate) fn read_line_within(pipe: &mut PipeReader, timeout: Duration) -> io::Result<FirstLine> {
    let deadline = Instant::now() + timeout;
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        if !poll_readable(&*pipe, deadline)? {
            return Ok(FirstLine::TimedOut);
        }
        let n = pipe.read(&mut chunk)?;
        if n == 0 {
            return Ok(FirstLine::Eof);
        }
        bytes.extend_from_slice(&chunk[..n]);
        if let Some(end) = bytes.iter().position(|&b| b == b'\n') {
            return Ok(FirstLine::Line(
                String::from_utf8_lossy(&bytes[..end]).into_owned(),
            ));
        }
    }
}

fn poll_readable(fd: impl AsFd, deadline: Instant) -> io::Result<bool> {
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let left = Timespec::try_from(left).unwrap_or(Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        });
        match poll(&mut fds, Some(&left)) {
            Ok(n) => return Ok(n > 0),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Said by the helper: writes its one report line and detaches stdout.
pub fn report(line: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    // The starter may be gone already; the helper must carry on regardless.
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
    drop(stdout);
    let null = File::options().write(true).open("/dev/null")?;
    rustix::stdio::dup2_stdout(&null)?;
    Ok(())
}
