//! `Spawn`: records a new process task and launches its shim.

use taskdaemon_core::{NewProcess, TaskRecord};

use crate::blocking::blocking;
use crate::follow::launch_requested;
use crate::protocol::ErrorKind;
use crate::state::{ACTOR, Daemon, Failure, Shared, failure};

pub(super) async fn handle(daemon: &Shared, spec: NewProcess) -> Result<TaskRecord, Failure> {
    let d = daemon.clone();
    blocking(move || spawn_process(&d, spec)).await?
}

fn spawn_process(daemon: &Daemon, spec: NewProcess) -> Result<TaskRecord, Failure> {
    if spec.argv.is_empty() || spec.argv[0].is_empty() {
        return Err(failure(
            ErrorKind::Invalid,
            "missing command: nothing to run",
        ));
    }
    let task = daemon.store.create_process(&spec, ACTOR)?;
    launch_requested(daemon, &task)?;
    Ok(daemon.store.task(&task.id)?)
}
