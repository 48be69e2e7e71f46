//! Gates in the store: the decisions both backends share (who may be gated,
//! what each gate change records, the column list), so only SQL differs.

use serde_json::json;
use taskdaemon_core::gate::{Gate, GateKind, GateOutcome, NewGate};
use taskdaemon_core::time::Millis;
use taskdaemon_core::{EventKind, NewEvent, Status, TaskKind, TaskRecord};

use crate::changes::Recorded;
use crate::{Result, StoreError};

/// The columns a gate is read from, in [`gate_from`]'s order.
pub(crate) const GATE_COLUMNS: &str =
    "task_id, seq, kind, target, until_at, opened_at, failed, attempts, next_check, created_at";

/// The predicate "task `t` has a shut gate", for the repair query.
pub(crate) const HAS_SHUT_GATE: &str =
    "EXISTS (SELECT 1 FROM task_gates g WHERE g.task_id = t.id AND g.opened_at IS NULL)";

/// A gate from its columns, in [`GATE_COLUMNS`]' order.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gate_from(
    task_id: String,
    seq: i64,
    kind: &str,
    target: Option<String>,
    until: Option<Millis>,
    opened_at: Option<Millis>,
    failed: Option<String>,
    attempts: i64,
    next_check: Option<Millis>,
    created_at: Millis,
) -> Result<Gate> {
    let kind: GateKind = kind.parse().map_err(StoreError::Invalid)?;
    Ok(Gate {
        task_id,
        seq,
        kind,
        target,
        until,
        opened_at,
        failed,
        attempts: attempts.clamp(0, u32::MAX as i64) as u32,
        next_check,
        created_at,
    })
}

/// Only tracked work that has not started can be gated.
pub(crate) fn check_gate_target(task: &TaskRecord) -> Result<()> {
    if task.kind != TaskKind::Manual {
        return Err(StoreError::Invalid(format!(
            "{} is a {:?} task: only tracked tasks can be gated",
            task.id, task.kind
        )));
    }
    if !matches!(task.status, Status::Pending | Status::Blocked) {
        return Err(StoreError::Conflict(format!(
            "{} is {}: gates can only be added to work that has not started",
            task.id, task.status
        )));
    }
    Ok(())
}

/// What a new gate already knows at creation: an awaited task that has
/// ended, or a time that has passed, decides it at once.
pub(crate) fn initial_outcome(
    new: &NewGate,
    target: Option<&TaskRecord>,
    now: Millis,
) -> Option<GateOutcome> {
    match (new, target) {
        (NewGate::UntilSucceeds(_), Some(t)) => {
            taskdaemon_core::gate::succeeds_outcome(&t.id, t.status)
        }
        (NewGate::Until(at), _) => taskdaemon_core::gate::time_outcome(*at, now),
        _ => None,
    }
}

/// The event of a gate added to a task.
pub(crate) fn gate_added(gate: &Gate, actor: &str) -> Recorded {
    let event = NewEvent::new(
        EventKind::GateAdded,
        actor,
        format!("gated: {}", gate.describe()),
    );
    (event, None, Some(json!({ "gate": gate })))
}

/// The event of gates removed; `NotFound` when none matched.
pub(crate) fn gates_removed(task: &str, removed: &[Gate], actor: &str) -> Result<Recorded> {
    if removed.is_empty() {
        return Err(StoreError::NotFound(format!("a gate on {task}")));
    }
    let list: Vec<String> = removed.iter().map(Gate::describe).collect();
    let event = NewEvent::new(
        EventKind::GateRemoved,
        actor,
        format!("ungated: {}", list.join("; ")),
    );
    Ok((event, Some(json!({ "gates": removed })), None))
}

/// The event of a gate that opened or can never open; `None` for a retry,
/// which changes nothing worth an event.
pub(crate) fn gate_resolved(gate: &Gate, actor: &str) -> Option<Recorded> {
    if gate.opened_at.is_none() && gate.failed.is_none() {
        return None;
    }
    // A gate is resolved either way: its event happened, or never can.
    let kind = if gate.opened_at.is_some() {
        EventKind::GateOpened
    } else {
        EventKind::GateFailed
    };
    let event = NewEvent::new(kind, actor, gate.describe());
    Some((event, None, Some(json!({ "gate": gate }))))
}

/// `NotFound` when a task had no approval gate waiting.
pub(crate) fn nothing_to_approve(task: &str) -> StoreError {
    StoreError::NotFound(format!("an approval gate waiting on {task}"))
}

/// The stored values an outcome sets: (opened_at, failed, attempts delta, next_check).
pub(crate) fn outcome_columns(
    outcome: &GateOutcome,
    now: Millis,
) -> (Option<Millis>, Option<String>, i64, Option<Millis>) {
    match outcome {
        GateOutcome::Open => (Some(now), None, 0, None),
        GateOutcome::Never(reason) => (None, Some(reason.clone()), 0, None),
        GateOutcome::Retry { next_check } => (None, None, 1, Some(*next_check)),
    }
}
