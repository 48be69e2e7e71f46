//! Typed links, subtasks, `next`'s candidates, the waiting graph and
//! agents' claims in SQLite. The decisions are `changes::links`'; this is
//! the SQL. Claims need no lock of their own: every write transaction is
//! `IMMEDIATE`, so two claims never interleave.

use rusqlite::{Connection, OptionalExtension, params};
use taskdaemon_core::graph::OpenNode;
use taskdaemon_core::next::NextCandidate;
use taskdaemon_core::time::{Millis, now_millis};
use taskdaemon_core::{LinkKind, TaskRecord};

use super::events::record;
use super::rows::{TASK_COLUMNS, task_from_row};
use super::tracked::{dependencies_of, dependency_statuses, settle_waiting};
use super::{apply, load_task};
use crate::changes::links::{self as decide, ClaimStep};
use crate::{Result, changes};

/// The stored id of the parent a new subtask names.
pub(super) fn parent_of_new(tx: &Connection, parent: &str) -> Result<String> {
    let parent = load_task(tx, parent)?;
    changes::require_tracked(&parent, "`task add --parent`")?;
    Ok(parent.id)
}

/// `PARENT.N` for the next subtask of `parent`.
pub(super) fn next_child_id(tx: &Connection, parent: &str) -> Result<String> {
    let children: u32 = tx.query_row(
        "SELECT count(*) FROM task_links WHERE task_id = ?1 AND kind = 'parent-child'",
        [parent],
        |r| r.get(0),
    )?;
    let mut exists = tx.prepare_cached("SELECT 1 FROM tasks WHERE id = ?1")?;
    decide::next_child_id(parent, children, |id| {
        Ok(exists.query_row([id], |_| Ok(())).optional()?.is_some())
    })
}

/// Links `from KIND to`; an existing link changes nothing. Returns `from`.
pub(super) fn link(
    tx: &Connection,
    from: &str,
    kind: LinkKind,
    to: &str,
    actor: &str,
) -> Result<TaskRecord> {
    let (from, to) = (load_task(tx, from)?, load_task(tx, to)?);
    decide::check_link(&from, kind, &to)?;
    let link = taskdaemon_core::TaskLink {
        from: from.id.clone(),
        kind,
        to: to.id.clone(),
    };
    let added = match kind.blocking_edge(&from.id, &to.id) {
        Some((waiter, waited)) if kind.gates_start() => {
            let (waiter, waited) = (load_task(tx, waiter)?, load_task(tx, waited)?);
            let new = changes::new_dependency(&waiter, &waited, |id| dependencies_of(tx, id))?;
            if new {
                tx.execute(
                    "INSERT INTO task_deps (task_id, depends_on, kind) VALUES (?1, ?2, ?3)",
                    params![waiter.id, waited.id, kind.as_str()],
                )?;
                settle_waiting(tx, &waiter.id, actor)?;
            }
            new
        }
        blocking => {
            if let Some((parent, child)) = blocking {
                decide::check_parent_child(parent, child, |id| dependencies_of(tx, id))?;
            }
            tx.execute(
                "INSERT OR IGNORE INTO task_links (task_id, kind, target) VALUES (?1, ?2, ?3)",
                params![link.from, kind.as_str(), link.to],
            )? > 0
        }
    };
    if added {
        record(tx, Some(&link.from), decide::link_added(&link, actor))?;
    }
    load_task(tx, &link.from)
}

/// Removes the links `from [KIND] to` (every kind when `kind` is `None`).
pub(super) fn unlink(
    tx: &Connection,
    from: &str,
    kind: Option<LinkKind>,
    to: &str,
    actor: &str,
) -> Result<TaskRecord> {
    let (from, to) = (load_task(tx, from)?, load_task(tx, to)?);
    let links = decide::links_to_remove(&from, &from.id, kind, &to.id);
    let recorded = decide::links_removed(&from.id, kind, &to.id, &links, actor)?;
    for link in &links {
        match link.kind.blocking_edge(&link.from, &link.to) {
            Some((waiter, waited)) if link.kind.gates_start() => {
                tx.execute(
                    "DELETE FROM task_deps WHERE task_id = ?1 AND depends_on = ?2",
                    params![waiter, waited],
                )?;
                settle_waiting(tx, waiter, actor)?;
            }
            _ => {
                tx.execute(
                    "DELETE FROM task_links WHERE task_id = ?1 AND kind = ?2 AND target = ?3",
                    params![link.from, link.kind.as_str(), link.to],
                )?;
            }
        }
    }
    record(tx, Some(&from.id), recorded)?;
    load_task(tx, &from.id)
}

/// The tasks `next` chooses among: every ready subtask of a running task,
/// and every ready task at the highest ready priority.
pub(super) fn next_candidates(conn: &Connection) -> Result<Vec<NextCandidate>> {
    let mut stmt = conn.prepare_cached(
        "SELECT t.id, t.priority, t.created_at, t.rowid,
           (SELECT count(*) FROM task_deps d JOIN tasks w ON w.id = d.task_id
             WHERE d.depends_on = t.id AND w.status IN ('pending', 'blocked')),
           (SELECT k.task_id FROM task_links k JOIN tasks p ON p.id = k.task_id
             WHERE k.target = t.id AND k.kind = 'parent-child' AND p.status = 'running'
             LIMIT 1)
         FROM tasks t
         WHERE t.kind = 'manual' AND t.status = 'pending'
           AND (t.priority = (SELECT max(priority) FROM tasks
                              WHERE kind = 'manual' AND status = 'pending')
                OR t.id IN (SELECT k.target FROM tasks p
                            JOIN task_links k ON k.task_id = p.id AND k.kind = 'parent-child'
                            WHERE p.kind = 'manual' AND p.status = 'running'))",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(NextCandidate {
            id: r.get(0)?,
            priority: r.get(1)?,
            created_at: r.get(2)?,
            seq: r.get(3)?,
            unblocks: r.get(4)?,
            running_parent: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Waiting tracked tasks, most urgent first, with what they wait for.
pub(super) fn open_graph(conn: &Connection) -> Result<Vec<OpenNode>> {
    let mut stmt = conn.prepare_cached(
        "SELECT t.id, t.status,
           (SELECT group_concat(d.depends_on || char(9) || coalesce(w.status, 'lost'), char(10))
              FROM task_deps d LEFT JOIN tasks w ON w.id = d.depends_on
             WHERE d.task_id = t.id)
         FROM tasks t
         WHERE t.kind = 'manual' AND t.status IN ('pending', 'blocked')
         ORDER BY t.priority DESC, t.rowid",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
        ))
    })?;
    rows.map(|row| {
        let (id, status, deps) = row?;
        crate::encoding::open_node(id, &status, deps.as_deref())
    })
    .collect()
}

/// Claims `id` for `claimant`: starts it, or takes over its stale claim.
pub(super) fn claim(
    tx: &Connection,
    id: &str,
    claimant: &str,
    lease_ms: Millis,
    actor: &str,
) -> Result<TaskRecord> {
    let task = load_task(tx, id)?;
    let unmet = || {
        Ok(changes::unmet_list(&dependency_statuses(
            tx,
            &task.depends_on,
        )?))
    };
    match decide::claim(&task, claimant, now_millis(), lease_ms, unmet, actor)? {
        ClaimStep::Start(change) => apply(tx, &task, change)?,
        ClaimStep::Take {
            lease_until,
            recorded,
        } => {
            tx.execute(
                "UPDATE tasks SET claimed_by = ?1, lease_until = ?2, updated_at = ?3 WHERE id = ?4",
                params![claimant, lease_until, now_millis(), task.id],
            )?;
            record(tx, Some(&task.id), recorded)?;
        }
    }
    load_task(tx, &task.id)
}

/// Nothing to lock: SQLite's write transactions are serialised already.
pub(super) fn lock_claims(_tx: &Connection) -> Result<()> {
    Ok(())
}

/// Extends the lease of every task `claimant` holds to `lease_until`.
pub(super) fn renew_claims(tx: &Connection, claimant: &str, lease_until: Millis) -> Result<u64> {
    let renewed = tx.execute(
        "UPDATE tasks SET lease_until = ?1
         WHERE claimed_by = ?2 AND status = 'running' AND lease_until < ?1",
        params![lease_until, claimant],
    )?;
    Ok(renewed as u64)
}

/// Running tasks whose claim's lease ran out by `now`, the oldest lease first.
pub(super) fn stale_claims(conn: &Connection, now: Millis) -> Result<Vec<TaskRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {TASK_COLUMNS} FROM tasks
         WHERE claimed_by IS NOT NULL AND status = 'running' AND lease_until <= ?1
         ORDER BY lease_until"
    ))?;
    let rows = stmt.query_map([now], task_from_row)?;
    rows.map(|row| row?).collect()
}

/// Nothing to lock: SQLite's write transactions are serialised already.
pub(super) fn lock_graph(_tx: &Connection) -> Result<()> {
    Ok(())
}
