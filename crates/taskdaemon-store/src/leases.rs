//! What claiming, completing and losing a lease decide, once for every
//! backend (the model is in [`crate::claim`]). Each backend finds and locks
//! the queue item and task its own way, calls these, and writes the result.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;
use taskdaemon_core::process::{ExitDecision, ExitOutcome, decide_after_lost_attempt};
use taskdaemon_core::{EventKind, NewEvent, QueueItem, Status, TaskRecord};

use crate::changes::Change;
use crate::claim::{Claim, Completion, Lease, Released};
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

/// A claim being granted: the change that starts the attempt, and the
/// claim it gives `worker` (whose task the backend reads again once the
/// change is applied).
#[derive(Debug, Clone)]
pub(crate) struct Granting {
    pub change: Change,
    pub claim: Claim,
}

/// `pending -> running` for `worker`, attempt `task.restarts + 1` of the
/// item's `max_attempts`, under lease `epoch` until `expires_at`.
pub(crate) fn claimed(
    task: &TaskRecord,
    item: QueueItem,
    worker: &str,
    (epoch, expires_at): (i64, i64),
    now: i64,
) -> Granting {
    let attempt = task.restarts + 1;
    let change = Change {
        observed: Vec::new(),
        to: Status::Running,
        columns: lifecycle::attempt_started(now),
        event: NewEvent::new(
            EventKind::Started,
            &worker_actor(worker),
            format!(
                "claimed by worker {worker} (attempt {attempt}/{})",
                item.max_attempts
            ),
        ),
    };
    let lease = Lease {
        task_id: task.id.clone(),
        worker: worker.to_owned(),
        epoch,
    };
    let claim = Claim {
        task: task.clone(),
        item,
        lease,
        attempt,
        expires_at,
    };
    Granting { change, claim }
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

/// Decides one end of a batch before anything is written: refused when its
/// item is missing (`holder`, the item's lease owner and epoch, is `None`),
/// its lease is no longer current, or the batch already ended it (`seen`);
/// otherwise how it ends, with the change checked against the state
/// machine, so writing it cannot fail for this task alone.
pub(crate) fn decide_completion(
    end: &Completion,
    holder: Option<(Option<String>, i64)>,
    task: Option<&TaskRecord>,
    seen: &mut HashSet<String>,
    now: i64,
) -> Result<Ended> {
    let lease = &end.lease;
    let Some((owner, epoch)) = holder else {
        return Err(StoreError::NotFound(lease.task_id.clone()));
    };
    check_current(lease, owner.as_deref(), epoch)?;
    if !seen.insert(lease.task_id.clone()) {
        return Err(StoreError::Conflict(format!(
            "{} is completed twice in one batch; only the first is recorded",
            lease.task_id
        )));
    }
    let task = task.ok_or_else(|| StoreError::NotFound(lease.task_id.clone()))?;
    let ended = completed(task, lease, end.outcome, &end.result, now);
    ended.change.check(task)?;
    Ok(ended)
}

/// What the store writes when an attempt ended: the task's change, the
/// decision it reports, and what becomes of the queue item.
#[derive(Debug, Clone)]
pub(crate) struct Ended {
    pub change: Change,
    pub decision: ExitDecision,
    pub item: ItemAfter,
}

/// What becomes of a queue item after an attempt: the lease is cleared
/// either way.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ItemAfter {
    /// Claimable again after `delay_ms`.
    Requeue { delay_ms: i64 },
    /// Done, with this result (JSON text).
    Finish { result: String },
}

impl ItemAfter {
    fn after(decision: ExitDecision, result: &serde_json::Value) -> Self {
        match decision {
            ExitDecision::Restart { delay, .. } => ItemAfter::Requeue {
                delay_ms: millis(delay),
            },
            ExitDecision::Finish(_) => ItemAfter::Finish {
                result: result.to_string(),
            },
        }
    }
}

/// How the attempt held under a current lease ended, with its `result`.
pub(crate) fn completed(
    task: &TaskRecord,
    lease: &Lease,
    outcome: ExitOutcome,
    result: &serde_json::Value,
    now: i64,
) -> Ended {
    let decision = taskdaemon_core::process::decide_after_exit(
        &task.restart,
        task.restarts,
        outcome,
        task.stop_requested,
    );
    let actor = worker_actor(&lease.worker);
    Ended {
        change: lifecycle::apply_exit(task, outcome, decision, now, &actor),
        decision,
        item: ItemAfter::after(decision, result),
    }
}

/// The lease of `worker` on `task` expired. A running task's attempt counts
/// as lost: it is queued again, or ends when none is left. `None` for a
/// task that no longer runs: only its lease is cleared.
pub(crate) fn lost(task: &TaskRecord, worker: &str, now: i64, actor: &str) -> Option<Ended> {
    if task.status != Status::Running {
        return None;
    }
    let decision = decide_after_lost_attempt(&task.restart, task.restarts, task.stop_requested);
    let reason = format!("worker {worker} stopped renewing its lease");
    let change = match decision {
        ExitDecision::Restart { restart, delay } => Change {
            observed: Vec::new(),
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
            observed: Vec::new(),
            to: status,
            columns: vec![
                ("error", reason.clone().into()),
                ("finished_at", now.into()),
            ],
            event: NewEvent::new(EventKind::Lost, actor, format!("{status}: {reason}")),
        },
    };
    let result = json!({ "status": change.to.as_str(), "error": reason });
    Some(Ended {
        item: ItemAfter::after(decision, &result),
        change,
        decision,
    })
}

/// What a release reports for one task.
pub(crate) fn released(task_id: String, worker: String, decision: ExitDecision) -> Released {
    Released {
        task_id,
        worker,
        decision,
    }
}
