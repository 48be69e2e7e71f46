//! Bringing the store in line with what really runs.
//!
//! Used when the daemon starts (re-adoption) and whenever a watched shim
//! exits: a task the store says runs is either still watched, settled from the
//! exit file, watched through its orphaned command, or marked `lost`. An
//! adopted process (started by another tool, see
//! [`TaskRecord::is_adopted`]) is watched itself; when it has exited, its
//! exit status is read if it can still be (a zombie not yet collected by its
//! parent), and otherwise it ends as `lost` with the reason.

use taskdaemon_core::process::ExitOutcome;
use taskdaemon_core::{Status, TaskRecord};
use taskdaemon_store::{Store, StoreError};
use taskdaemon_workspace::Workspace;

use crate::pidfd::PidWatch;
use crate::procfs;
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
    if task.is_adopted() && task.status == Status::Running {
        return settle_adopted(store, task, actor).map(Reconciled::Settled);
    }
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

/// Records the end of an adopted process that has exited.
fn settle_adopted(
    store: &dyn Store,
    task: TaskRecord,
    actor: &str,
) -> Result<TaskRecord, StoreError> {
    let (Some(identity), Some(pid)) = (task.process_identity(), task.pid) else {
        return Ok(task);
    };
    let settled = match procfs::zombie_exit(&identity) {
        Some(outcome) => store
            .record_exit(&task.id, pid, outcome, None, actor)
            .map(|recorded| recorded.task),
        // We stopped it: it ended as asked (cancelled), however it exited.
        None if task.stop_requested => {
            let unknown = ExitOutcome {
                code: None,
                signal: None,
            };
            let reason = "stopped on request; adopted, so its exit status is unknown";
            store
                .record_exit(&task.id, pid, unknown, Some(reason), actor)
                .map(|recorded| recorded.task)
        }
        None => store.mark_lost(
            &task.id,
            "exited; it was adopted, not started by taskdaemon, and its parent collected \
             its exit status first, so the exit code is unknown",
            actor,
        ),
    };
    match settled {
        // The daemon and a `wait` both watch it; whoever comes second finds
        // it settled already.
        Err(StoreError::Conflict(_) | StoreError::IllegalTransition(_)) => store.task(&task.id),
        other => other,
    }
}

fn open_watch(identity: &taskdaemon_core::ProcessIdentity) -> Option<PidWatch> {
    PidWatch::open(identity).ok().flatten()
}
