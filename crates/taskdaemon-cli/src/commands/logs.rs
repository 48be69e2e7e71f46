//! `taskdaemon logs`: a process's output, or the daemon log.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context;
use taskdaemon_service::{LogCursor, Service, read_whole_log, tail_log};
use taskdaemon_watch as fswatch;
use taskdaemon_workspace::Workspace;

use super::service;
use crate::args::LogsArgs;
use crate::error::UsageError;

/// Longest sleep between checks of whether a followed process has ended.
const STATUS_CHECK: Duration = Duration::from_millis(500);

pub fn run(workspace: &Workspace, args: LogsArgs) -> anyhow::Result<u8> {
    let (path, followed) = match &args.id {
        None => (workspace.daemon_log(), None),
        Some(id) => {
            let service = service(workspace)?;
            let (id, path) = service.log_path(id, args.stderr)?;
            (path, Some((service, id)))
        }
    };
    if args.id.is_none() && args.stderr {
        return Err(UsageError("--stderr needs a process id".to_owned()).into());
    }
    let cursor = print_existing(&path, args.tail)?;
    if args.follow {
        follow(cursor, followed.as_ref().map(|(s, id)| (s, id.as_str())))?;
    }
    Ok(0)
}

/// Prints the log (or its last `tail` lines), rotated copies included;
/// returns where it stopped.
pub(super) fn print_existing(path: &Path, tail: Option<usize>) -> anyhow::Result<LogCursor> {
    let context = || format!("cannot read {}", path.display());
    let (bytes, cursor) = match tail {
        Some(lines) => {
            // The cursor first: a line written in between is printed by
            // `follow`, not lost.
            let cursor = LogCursor::at_end(path).with_context(context)?;
            (tail_log(path, lines).with_context(context)?, cursor)
        }
        None => read_whole_log(path).with_context(context)?,
    };
    write_out(&bytes)?;
    Ok(cursor)
}

/// Prints what is appended to the log until the followed process has ended
/// (forever for the daemon log), across rotations. Woken by inotify; the
/// periodic check only notices the end of the process.
pub(super) fn follow(mut cursor: LogCursor, task: Option<(&Service, &str)>) -> anyhow::Result<()> {
    let path = cursor.path().to_owned();
    let (tx, rx) = mpsc::channel();
    let dir: PathBuf = path.parent().map(Path::to_owned).unwrap_or_default();
    // Only writes wake us: our own reads of the log must not (see fswatch).
    let _watcher = fswatch::watch_dir(&dir, move || {
        let _ = tx.send(());
    })
    .with_context(|| format!("cannot watch {}", dir.display()))?;
    loop {
        let ended = match task {
            Some((service, id)) => service.task(id)?.status.is_terminal(),
            None => false,
        };
        let bytes = cursor
            .read_new()
            .with_context(|| format!("cannot read {}", path.display()))?;
        write_out(&bytes)?;
        if ended {
            return Ok(());
        }
        // Any event or the timeout: read again.
        let _ = rx.recv_timeout(STATUS_CHECK);
        while rx.try_recv().is_ok() {}
    }
}

fn write_out(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        // A closed pipe (`logs | head`) is not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => std::process::exit(0),
        other => Ok(other?),
    }
}
