//! Gates in PostgreSQL: the same operations as SQLite's `gates.rs`, under
//! the gated task's row lock, through the same shared rules.

use postgres::types::Type;
use taskdaemon_core::gate::{Gate, GateKind, GateOutcome, NewGate};
use taskdaemon_core::time::now_millis;
use taskdaemon_core::{Status, TaskRecord};

use super::events::record;
use super::statements::TypedParams;
use super::tracked::settle_waiting;
use super::{Tx, load_task, lock_task};
use crate::gates::{self as rules, GATE_COLUMNS};
use crate::{Result, StoreError};

fn gate_from_row(r: &postgres::Row) -> Result<Gate> {
    let kind: String = r.try_get(2)?;
    rules::gate_from(
        r.try_get(0)?,
        r.try_get(1)?,
        &kind,
        r.try_get(3)?,
        r.try_get(4)?,
        r.try_get(5)?,
        r.try_get(6)?,
        r.try_get(7)?,
        r.try_get(8)?,
        r.try_get(9)?,
    )
}

/// The gates `filter` selects; each `args` value with its type, so the
/// statement is prepared once per connection (a task's end asks on every
/// completion whether gates wait for it).
fn query(tx: &mut Tx<'_>, filter: &str, args: &TypedParams<'_>) -> Result<Vec<Gate>> {
    tx.query_cached(
        &format!("SELECT {GATE_COLUMNS} FROM task_gates {filter} ORDER BY task_id, seq"),
        args,
    )?
    .iter()
    .map(gate_from_row)
    .collect()
}

/// Every gate of task `id` (stored id), in order.
pub(super) fn of(tx: &mut Tx<'_>, id: &str) -> Result<Vec<Gate>> {
    query(tx, "WHERE task_id = $1", &[(&id, Type::TEXT)])
}

/// The gates of `id` that have not opened.
pub(super) fn shut_of(tx: &mut Tx<'_>, id: &str) -> Result<Vec<Gate>> {
    query(
        tx,
        "WHERE task_id = $1 AND opened_at IS NULL",
        &[(&id, Type::TEXT)],
    )
}

/// Every gate that has not opened, on every task still waiting (the daemon
/// evaluates the waiting ones; lists show why a task is blocked). Gates of
/// work that started, ended or was cancelled no longer matter. Driven by
/// the gates (few) and looking each task up: `task_id IN (SELECT … FROM
/// tasks …)` read every waiting task into a temporary table first, 10,000
/// of them on each of the daemon's evaluations (one per commit).
pub(super) fn shut(tx: &mut Tx<'_>) -> Result<Vec<Gate>> {
    query(
        tx,
        "WHERE opened_at IS NULL
         AND EXISTS (SELECT 1 FROM tasks WHERE tasks.id = task_gates.task_id
                     AND tasks.status IN ('pending', 'blocked'))",
        &[],
    )
}

/// Every gate, by task then number (for `export`).
pub(super) fn all(tx: &mut Tx<'_>) -> Result<Vec<Gate>> {
    query(tx, "", &[])
}

/// The gates of task `id` (any spelling), after checking it exists.
pub(super) fn list(tx: &mut Tx<'_>, id: &str) -> Result<Vec<Gate>> {
    let task = load_task(tx, id)?;
    of(tx, &task.id)
}

/// Adds a gate to a waiting tracked task; a gate whose event already
/// happened (or never can) is decided at once.
pub(super) fn add(tx: &mut Tx<'_>, id: &str, new: &NewGate, actor: &str) -> Result<Gate> {
    new.validate().map_err(StoreError::Invalid)?;
    let task = lock_task(tx, id)?;
    rules::check_gate_target(&task)?;
    let target: Option<TaskRecord> = match new {
        NewGate::UntilSucceeds(t) => Some(load_task(tx, t)?),
        _ => None,
    };
    let stored_target = target
        .as_ref()
        .map(|t| t.id.clone())
        .or_else(|| new.target().map(str::to_owned));
    let seq: i64 = tx
        .query_one(
            "SELECT coalesce(max(seq), 0) + 1 FROM task_gates WHERE task_id = $1",
            &[&task.id],
        )?
        .try_get(0)?;
    let now = now_millis();
    tx.execute(
        "INSERT INTO task_gates (task_id, seq, kind, target, until_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &task.id,
            &seq,
            &new.kind().as_str(),
            &stored_target,
            &new.until(),
            &now,
        ],
    )?;
    let gate = find(tx, &task.id, seq)?;
    record(tx, Some(&task.id), rules::gate_added(&gate, actor))?;
    match rules::initial_outcome(new, target.as_ref(), now) {
        Some(outcome) => resolve(tx, &task.id, seq, &outcome, actor),
        None => {
            settle_waiting(tx, &task.id, actor)?;
            Ok(gate)
        }
    }
}

fn find(tx: &mut Tx<'_>, id: &str, seq: i64) -> Result<Gate> {
    query(
        tx,
        "WHERE task_id = $1 AND seq = $2",
        &[(&id, Type::TEXT), (&seq, Type::INT8)],
    )?
    .pop()
    .ok_or_else(|| StoreError::NotFound(format!("gate #{seq} on {id}")))
}

/// Removes gate `seq` of task `id`, or all its gates; the task may become ready.
pub(super) fn remove(
    tx: &mut Tx<'_>,
    id: &str,
    seq: Option<i64>,
    actor: &str,
) -> Result<Vec<Gate>> {
    let task = lock_task(tx, id)?;
    let removed: Vec<Gate> = of(tx, &task.id)?
        .into_iter()
        .filter(|g| seq.is_none_or(|s| g.seq == s))
        .collect();
    record(
        tx,
        Some(&task.id),
        rules::gates_removed(&task.id, &removed, actor)?,
    )?;
    for gate in &removed {
        tx.execute(
            "DELETE FROM task_gates WHERE task_id = $1 AND seq = $2",
            &[&gate.task_id, &gate.seq],
        )?;
    }
    settle_waiting(tx, &task.id, actor)?;
    Ok(removed)
}

/// Opens the waiting approval gates of task `id`.
pub(super) fn approve(tx: &mut Tx<'_>, id: &str, actor: &str) -> Result<Vec<Gate>> {
    let task = lock_task(tx, id)?;
    let waiting: Vec<Gate> = shut_of(tx, &task.id)?
        .into_iter()
        .filter(|g| g.kind == GateKind::Approval && g.failed.is_none())
        .collect();
    if waiting.is_empty() {
        return Err(rules::nothing_to_approve(&task.id));
    }
    let mut opened = Vec::with_capacity(waiting.len());
    for gate in &waiting {
        opened.push(resolve(tx, &task.id, gate.seq, &GateOutcome::Open, actor)?);
    }
    Ok(opened)
}

/// Stores what evaluating gate `seq` of `id` decided, records it, and
/// re-decides the task's status. A gate decided already stays as it is.
pub(super) fn resolve(
    tx: &mut Tx<'_>,
    id: &str,
    seq: i64,
    outcome: &GateOutcome,
    actor: &str,
) -> Result<Gate> {
    let (opened, failed, attempts, next_check) = rules::outcome_columns(outcome, now_millis());
    let changed = tx.execute(
        "UPDATE task_gates SET opened_at = $1, failed = $2, attempts = attempts + $3,
                               next_check = $4
         WHERE task_id = $5 AND seq = $6 AND opened_at IS NULL AND failed IS NULL",
        &[&opened, &failed, &attempts, &next_check, &id, &seq],
    )?;
    let gate = find(tx, id, seq)?;
    if changed > 0
        && let Some(recorded) = rules::gate_resolved(&gate, actor)
    {
        record(tx, Some(id), recorded)?;
        settle_waiting(tx, id, actor)?;
    }
    Ok(gate)
}

/// After task `id` ended with `status`: decides the gates waiting on it,
/// in the same transaction as the status change.
pub(super) fn target_ended(tx: &mut Tx<'_>, id: &str, status: Status, actor: &str) -> Result<()> {
    let Some(outcome) = taskdaemon_core::gate::succeeds_outcome(id, status) else {
        return Ok(());
    };
    let waiting = query(
        tx,
        "WHERE kind = 'until-succeeds' AND target = $1 AND opened_at IS NULL AND failed IS NULL",
        &[(&id, Type::TEXT)],
    )?;
    for gate in waiting {
        resolve(tx, &gate.task_id, gate.seq, &outcome, actor)?;
    }
    Ok(())
}
