//! What claiming, completing and losing a lease decide, once for every
//! backend (the model is in [`crate::claim`]). Each backend finds and locks
//! the queue item and task its own way, calls these, and writes the result.

use std::time::Duration;

use serde_json::json;
use taskdaemon_core::process::{ExitDecision, ExitOutcome, decide_after_lost_attempt};
use taskdaemon_core::{EventKind, NewEvent, Status, TaskRecord};

use crate::changes::Change;
use crate::claim::Lease;
use crate::{Result, StoreError, lifecycle};

/// A duration as the milliseconds lease times are kept in.
pub(crate) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The actor of what a worker does.
pub(crate) fn worker_actor(worker: &str) -> String {
    format!("worker:{worker}")
}

/// The result recorded for an item whose task ended (was cancelled) while
/// it waited to be claimed.
pub(crate) fn ended_while_waiting(task: &TaskRecord) -> serde_json::Value {
    json!({ "status": task.status.as_str() })
}

/// `pending -> running` for `worker`, attempt `task.restarts + 1` of
/// `max_attempts`; returns the change and the attempt number.
pub(crate) fn claimed(
    task: &TaskRecord,
    worker: &str,
    max_attempts: u32,
    now: i64,
) -> (Change, u32) {
    let attempt = task.restarts + 1;
    let change = Change {
        to: Status::Running,
        columns: lifecycle::attempt_started(now),
        event: NewEvent::new(
            EventKind::Started,
            &worker_actor(worker),
            format!("claimed by worker {worker} (attempt {attempt}/{max_attempts})"),
        ),
    };
    (change, attempt)
}

/// Refuses a completion under a lease that is no longer current: the item
/// is now held by `owner` under `epoch`.
pub(crate) fn check_current(lease: &Lease, owner: Option<&str>, epoch: i64) -> Result<()> {
    if owner == Some(lease.worker.as_str()) && epoch == lease.epoch {
        return Ok(());
    }
    Err(StoreError::Conflict(format!(
        "the lease of worker {} on {} (epoch {}) is no longer current: now {} holds epoch {epoch}; \
         its result is not recorded",
        lease.worker,
        lease.task_id,
        lease.epoch,
        owner.unwrap_or("nobody"),
    )))
}

/// How the attempt held under a current lease ended.
pub(crate) fn completed(
    task: &TaskRecord,
    lease: &Lease,
    outcome: ExitOutcome,
    now: i64,
) -> (Change, ExitDecision) {
    let decision = taskdaemon_core::process::decide_after_exit(
        &task.restart,
        task.restarts,
        outcome,
        task.stop_requested,
    );
    let actor = worker_actor(&lease.worker);
    let change = lifecycle::apply_exit(task, outcome, decision, now, &actor);
    (change, decision)
}

/// What losing a lease does to its running task.
#[derive(Debug, Clone)]
pub(crate) struct Lost {
    pub change: Change,
    pub decision: ExitDecision,
    /// The result the queue item records when the task ends here.
    pub result: serde_json::Value,
}

/// The lease of `worker` on the running `task` expired: the attempt counts
/// as lost, and the task is queued again or ends when none is left.
pub(crate) fn lost(task: &TaskRecord, worker: &str, now: i64, actor: &str) -> Lost {
    let decision = decide_after_lost_attempt(&task.restart, task.restarts, task.stop_requested);
    let reason = format!("worker {worker} stopped renewing its lease");
    let change = match decision {
        ExitDecision::Restart { restart, delay } => Change {
            to: Status::Pending,
            columns: vec![
                ("restarts", i64::from(restart).into()),
                ("finished_at", now.into()),
            ],
            event: NewEvent::new(
                EventKind::Restarting,
                actor,
                format!(
                    "{reason}; attempt {} of {} in {}",
                    restart + 1,
                    task.restart.max_restarts + 1,
                    taskdaemon_core::duration::format_duration(delay)
                ),
            ),
        },
        ExitDecision::Finish(status) => Change {
            to: status,
            columns: vec![
                ("error", reason.clone().into()),
                ("finished_at", now.into()),
            ],
            event: NewEvent::new(EventKind::Lost, actor, format!("{status}: {reason}")),
        },
    };
    let result = json!({ "status": change.to.as_str(), "error": reason });
    Lost {
        change,
        decision,
        result,
    }
}
