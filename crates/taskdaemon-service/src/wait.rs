//! Waiting for a task to end: a process through its shim's pidfd (no daemon
//! needed: the shim records the exit before it exits), a loop by following
//! the store while a daemon drives it.

use std::time::{Duration, Instant};

use taskdaemon_core::{TaskKind, TaskRecord};
use taskdaemon_supervisor::reconcile::{Reconciled, reconcile};

use crate::{Result, Service, ServiceError};

/// How a wait ended.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitOutcome {
    /// The task ended (its exit, if any, is recorded).
    Ended(TaskRecord),
    /// The timeout ran out; the task as it was then.
    TimedOut(TaskRecord),
}

impl Service {
    /// Blocks until the task `id` ends, or `timeout` runs out.
    pub fn wait(&self, id: &str, timeout: Option<Duration>) -> Result<WaitOutcome> {
        let task = self.store.task(id)?;
        if task.kind == TaskKind::Loop {
            return Ok(match self.wait_loop(&task.id, timeout)? {
                Some(task) => WaitOutcome::Ended(task),
                None => WaitOutcome::TimedOut(task),
            });
        }
        let workspace = self.workspace()?;
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let task = self.store.task(id)?;
            if task.status.is_terminal() {
                return Ok(WaitOutcome::Ended(task));
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left == Some(Duration::ZERO) {
                return Ok(WaitOutcome::TimedOut(task));
            }
            let failed = |e: std::io::Error| ServiceError::Failed(format!("waiting for {id}: {e}"));
            match reconcile(workspace, &*self.store, &task, "cli")? {
                Reconciled::Shim(watch) => {
                    if !watch.wait(left).map_err(failed)? {
                        return Ok(WaitOutcome::TimedOut(task));
                    }
                }
                Reconciled::Orphan(watch) => {
                    if !watch.wait(left).map_err(failed)? {
                        return Ok(WaitOutcome::TimedOut(task));
                    }
                    // The daemon may have recorded it first; either way it is settled.
                    let _ = self.store.mark_lost(
                        &task.id,
                        "exited while its shim was gone; exit status unknown",
                        "cli",
                    );
                }
                Reconciled::NeedsShim(_) => {
                    // A restart is due and only the daemon launches shims.
                    self.daemon()?;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Reconciled::Settled(task) => return Ok(WaitOutcome::Ended(task)),
            }
        }
    }
}
