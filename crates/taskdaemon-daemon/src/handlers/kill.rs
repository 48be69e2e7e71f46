//! `Kill`: signals a running process group, SIGKILL after the grace period,
//! and answers once the shim has recorded the end. A task that has not
//! started yet is just marked stopped.

use std::time::Duration;

use rustix::process::Signal;
use taskdaemon_core::{Status, TaskKind, TaskRecord};
use taskdaemon_supervisor::group::{Group, terminate_process};
use taskdaemon_supervisor::pidfd::{PidWatch, reap};
use taskdaemon_supervisor::reconcile::{Reconciled, reconcile};

use crate::blocking::blocking;
use crate::protocol::ErrorKind;
use crate::state::{ACTOR, Daemon, Failure, Shared, failure};

/// How long a kill waits for the shim to record the end, beyond the grace period.
const RECORD_WAIT: Duration = Duration::from_secs(10);

pub(super) async fn handle(
    daemon: &Shared,
    id: String,
    signal: i32,
    grace_ms: u64,
) -> Result<TaskRecord, Failure> {
    let d = daemon.clone();
    blocking(move || {
        let signal = Signal::from_named_raw(signal)
            .ok_or_else(|| failure(ErrorKind::Invalid, format!("unknown signal {signal}")))?;
        kill(&d, &id, signal, Duration::from_millis(grace_ms))
    })
    .await?
}

/// Stops task `id`: `signal` to its group, SIGKILL after `grace`.
pub(super) fn kill(
    daemon: &Daemon,
    id: &str,
    signal: Signal,
    grace: Duration,
) -> Result<TaskRecord, Failure> {
    let task = daemon.store.task(id)?;
    not_a_loop(&task)?;
    match task.status {
        Status::Running => {}
        Status::Pending | Status::Blocked => return Ok(daemon.store.request_stop(id, ACTOR)?),
        ended => {
            let how = task.exit().map(|e| format!(", {e}")).unwrap_or_default();
            return Err(failure(
                ErrorKind::Conflict,
                format!("{} is not running (status {ended}{how})", task.id),
            ));
        }
    }
    daemon.store.request_stop(id, ACTOR)?;
    if stop_container(daemon, id, grace) {
        return wait_for_record(daemon, &task, grace + RECORD_WAIT);
    }
    let (Some(pgid), Some(leader)) = (task.pgid, task.process_identity()) else {
        return Err(failure(
            ErrorKind::Internal,
            format!("{} has no process recorded", task.id),
        ));
    };
    let outcome = if task.is_adopted() && pgid != leader.pid {
        // Its group is the tool's that started it: stop just this process.
        terminate_process(&leader, signal, grace)
    } else {
        Group { pgid, leader }.terminate(signal, grace)
    }
    .map_err(|e| failure(ErrorKind::Conflict, format!("{}: {e}", task.id)))?;
    tracing::info!(id = task.id, ?outcome, "terminated process group");
    wait_for_record(daemon, &task, grace + RECORD_WAIT)
}

/// A container task is stopped by its engine (SIGTERM, SIGKILL after
/// `grace`); its runner then sees the exit and the shim records it. False
/// when it is not a container task, has no container yet, or the engine
/// failed: the process group is signalled instead (the runner passes a
/// SIGTERM on to the container).
fn stop_container(daemon: &Daemon, id: &str, grace: Duration) -> bool {
    // Re-read: the runner records the container id after the task started.
    let Ok(task) = daemon.store.task(id) else {
        return false;
    };
    let (Some(spec), Some(container)) = (&task.container, &task.container_id) else {
        return false;
    };
    let stopped = taskdaemon_container::Engine::new(&spec.engine)
        .and_then(|engine| taskdaemon_container::block_on(engine.stop(container, grace))?);
    match stopped {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(id, error = %e, "cannot stop the container; signalling its runner");
            false
        }
    }
}

/// Loops have no process to signal: they are stopped with `loop stop`.
pub(super) fn not_a_loop(task: &TaskRecord) -> Result<(), Failure> {
    if task.kind == TaskKind::Loop {
        return Err(failure(
            ErrorKind::Invalid,
            format!(
                "{} is a loop, not a process: use `taskdaemon loop stop {}`",
                task.id, task.id
            ),
        ));
    }
    Ok(())
}

/// Waits for the shim of `task` to record its end, then returns the task.
fn wait_for_record(
    daemon: &Daemon,
    task: &TaskRecord,
    timeout: Duration,
) -> Result<TaskRecord, Failure> {
    if let Some(watch) = task
        .shim_identity()
        .and_then(|s| PidWatch::open(&s).ok().flatten())
    {
        let _ = watch.wait(Some(timeout));
        reap(watch.identity().pid);
    }
    let current = daemon.store.task(&task.id)?;
    if current.status != Status::Running {
        return Ok(current);
    }
    // The shim is gone without recording: settle it from what is left.
    Ok(
        match reconcile(&daemon.workspace, &*daemon.store, &current, ACTOR)? {
            Reconciled::Settled(task) | Reconciled::NeedsShim(task) => task,
            Reconciled::Shim(_) | Reconciled::Orphan(_) => daemon.store.task(&task.id)?,
        },
    )
}
