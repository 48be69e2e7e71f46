//! Bringing the store in line with what really runs.
//!
//! Used when the daemon starts (re-adoption) and whenever a watched shim
//! exits: a task the store says runs is either still watched, settled from the
//! exit file, watched through its orphaned command, or marked `lost`.

use taskdaemon_core::{Status, TaskRecord};
use taskdaemon_store::{Store, StoreError};
use taskdaemon_workspace::Workspace;

use crate::pidfd::PidWatch;
use crate::shim::ExitFile;

/// What to do about a task after reconciling it.
#[derive(Debug)]
pub enum Reconciled {
    /// Its shim runs: watch the shim.
    Shim(PidWatch),
    /// Its shim is gone but the command runs: watch the command; its exit
    /// status will be unknown.
    Orphan(PidWatch),
    /// It is pending with no shim: a shim must be launched for it.
    NeedsShim(TaskRecord),
    /// Nothing runs for it; the store now says how it ended.
    Settled(TaskRecord),
}

/// Reconciles one task. `actor` names the caller in events.
pub fn reconcile(
    workspace: &Workspace,
    store: &dyn Store,
    task: &TaskRecord,
    actor: &str,
) -> Result<Reconciled, StoreError> {
    if let Some(watch) = task.shim_identity().as_ref().and_then(open_watch) {
        return Ok(Reconciled::Shim(watch));
    }
    // The shim may have finished between our read and our check.
    let task = store.task(&task.id)?;
    match task.status {
        Status::Running => settle_running(workspace, store, task, actor),
        Status::Pending if !task.stop_requested => Ok(Reconciled::NeedsShim(task)),
        _ => Ok(Reconciled::Settled(task)),
    }
}

fn settle_running(
    workspace: &Workspace,
    store: &dyn Store,
    task: TaskRecord,
    actor: &str,
) -> Result<Reconciled, StoreError> {
    if let Some(exit) = ExitFile::read(workspace, &task.id).filter(|e| Some(e.pid) == task.pid) {
        let recorded = store.record_exit(
            &task.id,
            exit.pid,
            exit.outcome(),
            exit.reason.as_deref(),
            actor,
        )?;
        return Ok(match recorded.task.status {
            Status::Pending => Reconciled::NeedsShim(recorded.task),
            _ => Reconciled::Settled(recorded.task),
        });
    }
    if let Some(watch) = task.process_identity().as_ref().and_then(open_watch) {
        return Ok(Reconciled::Orphan(watch));
    }
    let lost = store.mark_lost(
        &task.id,
        "process vanished with no recorded exit status",
        actor,
    )?;
    Ok(Reconciled::Settled(lost))
}

fn open_watch(identity: &taskdaemon_core::ProcessIdentity) -> Option<PidWatch> {
    PidWatch::open(identity).ok().flatten()
}
