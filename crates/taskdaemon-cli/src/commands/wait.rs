//! `taskdaemon wait`: block until a process ends, exit with its code.
//!
//! Works without the daemon: it sleeps on the shim's pidfd, and the shim
//! records the exit in the store before it exits. Loops run inside the
//! daemon, so waiting for one starts the daemon when none runs.

use taskdaemon_core::TaskRecord;
use taskdaemon_service::WaitOutcome;
use taskdaemon_workspace::Workspace;

use super::service;
use crate::args::WaitArgs;

/// Exit code when `--timeout` runs out, as `timeout(1)` uses.
const TIMED_OUT: u8 = 124;

pub fn run(workspace: &Workspace, args: WaitArgs) -> anyhow::Result<u8> {
    Ok(match service(workspace)?.wait(&args.id, args.timeout)? {
        WaitOutcome::Ended(task) => finish(&task),
        WaitOutcome::TimedOut(task) => timed_out(&task),
    })
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
