//! `taskdaemon logs`: a process's output, or the daemon log.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context;
use taskdaemon_service::Service;
use taskdaemon_watch as fswatch;
use taskdaemon_workspace::Workspace;

use super::service;
use crate::args::LogsArgs;
use crate::error::UsageError;
use crate::output::tail_lines;

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
    let offset = print_existing(&path, args.tail)?;
    if args.follow {
        follow(
            &path,
            offset,
            followed.as_ref().map(|(s, id)| (s, id.as_str())),
        )?;
    }
    Ok(0)
}

/// Prints the file (or its last `tail` lines); returns where it stopped.
pub(super) fn print_existing(path: &Path, tail: Option<usize>) -> anyhow::Result<u64> {
    let len = match std::fs::metadata(path) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let bytes = match tail {
        Some(lines) => tail_lines(path, lines)?,
        None => {
            let mut bytes = Vec::with_capacity(len as usize);
            File::open(path)?.take(len).read_to_end(&mut bytes)?;
            bytes
        }
    };
    write_out(&bytes)?;
    Ok(len)
}

/// Prints what is appended to `path` until the followed process has ended
/// (forever for the daemon log). Woken by inotify; the periodic check only
/// notices the end of the process.
pub(super) fn follow(
    path: &Path,
    mut offset: u64,
    task: Option<(&Service, &str)>,
) -> anyhow::Result<()> {
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
        offset = print_from(path, offset)?;
        if ended {
            return Ok(());
        }
        // Any event or the timeout: read again.
        let _ = rx.recv_timeout(STATUS_CHECK);
        while rx.try_recv().is_ok() {}
    }
}

fn print_from(path: &Path, offset: u64) -> anyhow::Result<u64> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(offset),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let len = file.metadata()?.len();
    // Truncated or rotated: start over.
    let start = if len < offset { 0 } else { offset };
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(len - start).read_to_end(&mut bytes)?;
    write_out(&bytes)?;
    Ok(len)
}

fn write_out(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        // A closed pipe (`logs | head`) is not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => std::process::exit(0),
        other => Ok(other?),
    }
}
