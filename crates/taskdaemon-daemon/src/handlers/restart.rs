//! `Restart`: stops the process if it runs, then reopens the task and
//! launches a new shim for it.

use std::time::Duration;

use rustix::process::Signal;
use taskdaemon_core::TaskRecord;

use super::kill::{kill, not_a_loop};
use crate::blocking::blocking;
use crate::follow::launch_requested;
use crate::state::{ACTOR, Daemon, Failure, Shared};

pub(super) async fn handle(
    daemon: &Shared,
    id: String,
    grace_ms: u64,
) -> Result<TaskRecord, Failure> {
    let d = daemon.clone();
    blocking(move || restart(&d, &id, Duration::from_millis(grace_ms))).await?
}

fn restart(daemon: &Daemon, id: &str, grace: Duration) -> Result<TaskRecord, Failure> {
    let task = daemon.store.task(id)?;
    not_a_loop(&task)?;
    if !task.status.is_terminal() {
        kill(daemon, id, Signal::TERM, grace)?;
    }
    let _guard = daemon.launch_lock.lock().unwrap_or_else(|p| p.into_inner());
    let task = daemon.store.reopen_for_restart(id, ACTOR)?;
    launch_requested(daemon, &task)?;
    Ok(daemon.store.task(id)?)
}
