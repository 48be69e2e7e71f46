//! `taskdaemon wait`: block until a process ends, exit with its code.
//!
//! Works without the daemon: it sleeps on the shim's pidfd, and the shim
//! records the exit in the store before it exits. Loops run inside the
//! daemon, so waiting for one starts the daemon when none runs.

use std::time::{Duration, Instant};

use taskdaemon_core::{TaskKind, TaskRecord};
use taskdaemon_daemon::Client;

use taskdaemon_supervisor::reconcile::{Reconciled, reconcile};
use taskdaemon_workspace::Workspace;

use super::{current_exe, service};
use crate::args::WaitArgs;

/// Exit code when `--timeout` runs out, as `timeout(1)` uses.
const TIMED_OUT: u8 = 124;

pub fn run(workspace: &Workspace, args: WaitArgs) -> anyhow::Result<u8> {
    let service = service(workspace)?;
    let store = service.store();
    let deadline = args.timeout.map(|t| Instant::now() + t);
    let task = store.task(&args.id)?;
    if task.kind == TaskKind::Loop {
        return Ok(match super::loops::wait(&service, &task, args.timeout)? {
            Some(task) => finish(&task),
            None => timed_out(&task),
        });
    }
    loop {
        let task = store.task(&args.id)?;
        if task.status.is_terminal() {
            return Ok(finish(&task));
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left == Some(Duration::ZERO) {
            return Ok(timed_out(&task));
        }
        match reconcile(workspace, store, &task, "cli")? {
            Reconciled::Shim(watch) => {
                if !watch.wait(left)? {
                    return Ok(timed_out(&task));
                }
            }
            Reconciled::Orphan(watch) => {
                if !watch.wait(left)? {
                    return Ok(timed_out(&task));
                }
                // The daemon may have recorded it first; either way it is settled.
                let _ = store.mark_lost(
                    &task.id,
                    "exited while its shim was gone; exit status unknown",
                    "cli",
                );
            }
            Reconciled::NeedsShim(_) => {
                // A restart is due and only the daemon launches shims.
                Client::connect_or_start(workspace, &current_exe()?)?;
                std::thread::sleep(Duration::from_millis(50));
            }
            Reconciled::Settled(task) => return Ok(finish(&task)),
        }
    }
}

fn finish(task: &TaskRecord) -> u8 {
    let exit = task.exit();
    let how = exit.map(|e| format!(" ({e})")).unwrap_or_default();
    eprintln!("{} {}{how}", task.id, task.status);
    exit.map_or(1, |e| u8::try_from(e.shell_code()).unwrap_or(1))
}

fn timed_out(task: &TaskRecord) -> u8 {
    eprintln!("{} is still {} (wait timed out)", task.id, task.status);
    TIMED_OUT
}
