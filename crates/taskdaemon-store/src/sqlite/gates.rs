//! Gates in SQLite: adding, removing, approving and resolving a tracked
//! task's gates, each followed by re-deciding the task's waiting status.

use rusqlite::{Connection, params};
use taskdaemon_core::gate::{Gate, GateKind, GateOutcome, NewGate};
use taskdaemon_core::time::now_millis;
use taskdaemon_core::{Status, TaskRecord};

use super::events::record;
use super::load_task;
use super::tracked::settle_waiting;
use crate::gates::{self as rules, GATE_COLUMNS};
use crate::{Result, StoreError};

fn gate_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Gate>> {
    let kind: String = r.get(2)?;
    Ok(rules::gate_from(
        r.get(0)?,
        r.get(1)?,
        &kind,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
    ))
}

fn query(conn: &Connection, filter: &str, args: impl rusqlite::Params) -> Result<Vec<Gate>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {GATE_COLUMNS} FROM task_gates {filter} ORDER BY task_id, seq"
    ))?;
    let rows = stmt.query_map(args, gate_from_row)?;
    rows.map(|row| row?).collect()
}

/// Every gate of task `id` (stored id), in order.
pub(super) fn of(conn: &Connection, id: &str) -> Result<Vec<Gate>> {
    query(conn, "WHERE task_id = ?1", [id])
}

/// The gates of `id` that have not opened.
pub(super) fn shut_of(conn: &Connection, id: &str) -> Result<Vec<Gate>> {
    query(conn, "WHERE task_id = ?1 AND opened_at IS NULL", [id])
}

/// Every gate that has not opened, on every task still waiting (the daemon
/// evaluates the waiting ones; lists show why a task is blocked). Gates of
/// work that started, ended or was cancelled no longer matter. Driven by
/// the gates (few) and looking each task up: `task_id IN (SELECT … FROM
/// tasks …)` read every waiting task into a temporary table first, 10,000
/// of them on each of the daemon's evaluations (one per commit).
pub(super) fn shut(conn: &Connection) -> Result<Vec<Gate>> {
    query(conn, SHUT_FILTER, [])
}

/// The filter of [`shut`].
const SHUT_FILTER: &str = "WHERE opened_at IS NULL
     AND EXISTS (SELECT 1 FROM tasks WHERE tasks.id = task_gates.task_id
                 AND tasks.status IN ('pending', 'blocked'))";

/// Every gate, by task then number (for `export`).
pub(super) fn all(conn: &Connection) -> Result<Vec<Gate>> {
    query(conn, "", [])
}

/// The gates of task `id` (any spelling), after checking it exists.
pub(super) fn list(conn: &Connection, id: &str) -> Result<Vec<Gate>> {
    let task = load_task(conn, id)?;
    of(conn, &task.id)
}

/// Adds a gate to a waiting tracked task; a gate whose event already
/// happened (or never can) is decided at once.
pub(super) fn add(tx: &Connection, id: &str, new: &NewGate, actor: &str) -> Result<Gate> {
    new.validate().map_err(StoreError::Invalid)?;
    let task = load_task(tx, id)?;
    rules::check_gate_target(&task)?;
    let target: Option<TaskRecord> = match new {
        NewGate::UntilSucceeds(t) => Some(load_task(tx, t)?),
        _ => None,
    };
    let stored_target = target
        .as_ref()
        .map(|t| t.id.clone())
        .or_else(|| new.target().map(str::to_owned));
    let seq: i64 = tx.query_row(
        "SELECT coalesce(max(seq), 0) + 1 FROM task_gates WHERE task_id = ?1",
        [&task.id],
        |r| r.get(0),
    )?;
    let now = now_millis();
    tx.execute(
        "INSERT INTO task_gates (task_id, seq, kind, target, until_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            task.id,
            seq,
            new.kind().as_str(),
            stored_target,
            new.until(),
            now
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

fn find(conn: &Connection, id: &str, seq: i64) -> Result<Gate> {
    query(conn, "WHERE task_id = ?1 AND seq = ?2", params![id, seq])?
        .pop()
        .ok_or_else(|| StoreError::NotFound(format!("gate #{seq} on {id}")))
}

/// Removes gate `seq` of task `id`, or all its gates; the task may become ready.
pub(super) fn remove(
    tx: &Connection,
    id: &str,
    seq: Option<i64>,
    actor: &str,
) -> Result<Vec<Gate>> {
    let task = load_task(tx, id)?;
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
            "DELETE FROM task_gates WHERE task_id = ?1 AND seq = ?2",
            params![gate.task_id, gate.seq],
        )?;
    }
    settle_waiting(tx, &task.id, actor)?;
    Ok(removed)
}

/// Opens the waiting approval gates of task `id`.
pub(super) fn approve(tx: &Connection, id: &str, actor: &str) -> Result<Vec<Gate>> {
    let task = load_task(tx, id)?;
    let waiting: Vec<Gate> = shut_of(tx, &task.id)?
        .into_iter()
        .filter(|g| g.kind == GateKind::Approval && g.failed.is_none())
        .collect();
    if waiting.is_empty() {
        return Err(rules::nothing_to_approve(&task.id));
    }
    waiting
        .iter()
        .map(|g| resolve(tx, &task.id, g.seq, &GateOutcome::Open, actor))
        .collect()
}

/// Stores what evaluating gate `seq` of `id` decided, records it, and
/// re-decides the task's status. A gate decided already stays as it is.
pub(super) fn resolve(
    tx: &Connection,
    id: &str,
    seq: i64,
    outcome: &GateOutcome,
    actor: &str,
) -> Result<Gate> {
    let (opened, failed, attempts, next_check) = rules::outcome_columns(outcome, now_millis());
    let changed = tx.execute(
        "UPDATE task_gates SET opened_at = ?1, failed = ?2, attempts = attempts + ?3,
                               next_check = ?4
         WHERE task_id = ?5 AND seq = ?6 AND opened_at IS NULL AND failed IS NULL",
        params![opened, failed, attempts, next_check, id, seq],
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
pub(super) fn target_ended(tx: &Connection, id: &str, status: Status, actor: &str) -> Result<()> {
    let Some(outcome) = taskdaemon_core::gate::succeeds_outcome(id, status) else {
        return Ok(());
    };
    let waiting = query(
        tx,
        "WHERE kind = 'until-succeeds' AND target = ?1 AND opened_at IS NULL AND failed IS NULL",
        [id],
    )?;
    for gate in waiting {
        resolve(tx, &gate.task_id, gate.seq, &outcome, actor)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rusqlite::StatementStatus;
    use taskdaemon_core::NewTracked;

    use super::*;
    use crate::{SqliteStore, Store};

    /// The daemon looks for shut gates after every commit: with many
    /// waiting tasks and no gate, that must not walk the tasks.
    #[test]
    fn shut_gates_cost_follows_the_gates_not_the_waiting_tasks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = SqliteStore::open(&path).unwrap();
        for n in 0..200 {
            let new = NewTracked {
                title: format!("waiting {n}"),
                ..NewTracked::default()
            };
            store.create_tracked(&new, "test").unwrap();
        }
        assert!(store.shut_gates().unwrap().is_empty());

        let conn = Connection::open(&path).unwrap();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {GATE_COLUMNS} FROM task_gates {SHUT_FILTER} ORDER BY task_id, seq"
            ))
            .unwrap();
        let rows = stmt.query_map([], |_| Ok(())).unwrap().count();
        assert_eq!(rows, 0);
        // Reading 200 task ids first took over 2,000 steps.
        let steps = stmt.get_status(StatementStatus::VmStep);
        assert!(steps < 50, "{steps} virtual machine steps for no gate");
    }
}
