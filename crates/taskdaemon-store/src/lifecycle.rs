//! The lifecycle of a supervised process, decided once for every backend:
//! what creating, starting, ending, stopping and reopening a process task
//! writes, and when each is refused.
//!
//! Each backend reads the task row (locked, where it locks), calls one of
//! these, and applies the returned [`Change`] with its own SQL in the same
//! transaction, as it does for tracked tasks (see [`crate::changes`]).

use serde_json::json;
use taskdaemon_core::process::{ExitDecision, ExitOutcome, decide_after_exit};
use taskdaemon_core::{EventKind, NewEvent, NewProcess, Status, TaskRecord, task::shell_join};

use crate::changes::{Change, Column, Recorded};
use crate::{Result, Started, StoreError};

/// The `after` field of an exit event holding when the watcher saw the
/// process end, in microseconds since the epoch.
pub(crate) const EXITED_AT_US: &str = "exited_at_us";
/// The `after` field of an exit event holding when its transaction wrote
/// it, in microseconds since the epoch.
pub(crate) const RECORDED_AT_US: &str = "recorded_at_us";

/// Refuses a process without a command; returns its `created` event.
pub(crate) fn created(spec: &NewProcess, actor: &str) -> Result<Recorded> {
    if spec.argv.is_empty() {
        return Err(StoreError::Conflict("a process needs a command".to_owned()));
    }
    Ok((
        NewEvent::new(EventKind::Created, actor, shell_join(&spec.argv)),
        None,
        Some(json!({ "status": Status::Pending.as_str() })),
    ))
}

/// `pending -> running` under the shim that reported `started`. `restarts`
/// is the count the starter saw: a task restarted since by someone else is
/// refused, so two shims never both run it.
pub(crate) fn started(
    task: &TaskRecord,
    restarts: u32,
    started: &Started,
    now: i64,
    actor: &str,
) -> Result<Change> {
    if task.restarts != restarts {
        return Err(StoreError::Conflict(format!(
            "{} was restarted by someone else (restart {} instead of {restarts})",
            task.id, task.restarts
        )));
    }
    let message = format!("pid {} (shim {})", started.process.pid, started.shim.pid);
    let mut columns = vec![
        ("pid", started.process.pid.into()),
        ("pgid", started.pgid.into()),
        ("start_time", (started.process.start_time as i64).into()),
        ("boot_id", started.process.boot_id.clone().into()),
        ("shim_pid", started.shim.pid.into()),
        ("shim_start_time", (started.shim.start_time as i64).into()),
    ];
    columns.extend(attempt_started(now));
    Ok(Change {
        observed: Vec::new(),
        to: Status::Running,
        columns,
        event: NewEvent::new(EventKind::Started, actor, message),
    })
}

/// The columns every new attempt sets: started now, and nothing left of
/// how the previous attempt ended.
pub(crate) fn attempt_started(now: i64) -> Vec<(&'static str, Column)> {
    vec![
        ("started_at", now.into()),
        ("finished_at", Column::Int(None)),
        ("exit_code", Column::Int(None)),
        ("signal", Column::Int(None)),
        ("error", Column::Text(None)),
    ]
}

/// Records how the process `pid` ended (and why, when the supervisor ended
/// it) and applies the restart policy. Refused when the task no longer runs
/// that pid, so a late report can never overwrite a newer attempt. With
/// `exited_at_us`, the instant its watcher saw it end, the event also
/// records that and the instant it is written (the detection latency
/// `/metrics` reports, see [`ExitTiming`](crate::ExitTiming)).
pub(crate) fn exited(
    task: &TaskRecord,
    pid: i32,
    outcome: ExitOutcome,
    reason: Option<&str>,
    exited_at_us: Option<i64>,
    actor: &str,
) -> Result<(Change, ExitDecision)> {
    let now = taskdaemon_core::time::now_millis();
    if task.status != Status::Running || task.pid != Some(pid) {
        return Err(StoreError::Conflict(format!(
            "exit of pid {pid} not recorded for {}: it is {} with pid {:?}",
            task.id, task.status, task.pid
        )));
    }
    let decision = decide_after_exit(&task.restart, task.restarts, outcome, task.stop_requested);
    let mut change = apply_exit(task, outcome, decision, now, actor);
    if let Some(reason) = reason {
        change.columns.push(("error", reason.to_owned().into()));
        change.event.message = format!("{}; {reason}", change.event.message);
    }
    if let Some(exited_at_us) = exited_at_us {
        change.observed = vec![
            (EXITED_AT_US, json!(exited_at_us)),
            (RECORDED_AT_US, json!(taskdaemon_core::time::now_micros())),
        ];
    }
    Ok((change, decision))
}

/// What an exit `decision` writes to a running task (shared by process
/// exits and claimed attempts).
pub(crate) fn apply_exit(
    task: &TaskRecord,
    outcome: ExitOutcome,
    decision: ExitDecision,
    now: i64,
    actor: &str,
) -> Change {
    let mut columns = vec![
        ("exit_code", outcome.code.into()),
        ("signal", outcome.signal.into()),
        ("finished_at", now.into()),
    ];
    match decision {
        ExitDecision::Restart { restart, delay } => {
            columns.push(("restarts", i64::from(restart).into()));
            let message = format!(
                "{outcome}; restart {restart}/{} in {}",
                task.restart.max_restarts,
                taskdaemon_core::duration::format_duration(delay)
            );
            Change {
                observed: Vec::new(),
                to: Status::Pending,
                columns,
                event: NewEvent::new(EventKind::Restarting, actor, message),
            }
        }
        ExitDecision::Finish(status) => Change {
            observed: Vec::new(),
            to: status,
            columns,
            event: NewEvent::new(EventKind::Exited, actor, format!("{status}, {outcome}")),
        },
    }
}

/// What a stop request does to a task.
#[derive(Debug, Clone)]
pub(crate) enum Stop {
    /// A running task is flagged (its shim then records `cancelled`): set
    /// `stop_requested` and append this event.
    Flag(Recorded),
    /// A task that has not started is cancelled at once.
    Cancel(Change),
}

/// Asks `task` to stop; refused for a task that has ended.
pub(crate) fn stop(task: &TaskRecord, now: i64, actor: &str) -> Result<Stop> {
    match task.status {
        Status::Running => Ok(Stop::Flag((
            NewEvent::new(EventKind::StopRequested, actor, "stop requested"),
            Some(json!({ "stop_requested": task.stop_requested })),
            Some(json!({ "stop_requested": true })),
        ))),
        Status::Pending | Status::Blocked => Ok(Stop::Cancel(Change {
            observed: Vec::new(),
            to: Status::Cancelled,
            columns: vec![("stop_requested", true.into()), ("finished_at", now.into())],
            event: NewEvent::new(EventKind::Exited, actor, "cancelled before it started"),
        })),
        ended => Err(StoreError::Conflict(format!(
            "{} is not running (status {ended})",
            task.id
        ))),
    }
}

/// Reopens an ended task as `pending` for a new start, counting a restart.
pub(crate) fn reopen(task: &TaskRecord, actor: &str) -> Result<Change> {
    // `running -> pending` is legal for automatic restarts only; a
    // requested restart needs the old process to have ended first.
    if !task.status.is_terminal() {
        return Err(StoreError::Conflict(format!(
            "{} is {}: it must end before it can be reopened",
            task.id, task.status
        )));
    }
    Ok(Change {
        observed: Vec::new(),
        to: Status::Pending,
        columns: vec![
            ("stop_requested", false.into()),
            ("restarts", i64::from(task.restarts + 1).into()),
        ],
        event: NewEvent::new(EventKind::RestartRequested, actor, "restart requested"),
    })
}
