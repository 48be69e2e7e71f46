//! Typed links, subtasks, `next`'s candidates, the waiting graph and
//! agents' claims in PostgreSQL: the same operations as SQLite's
//! `links.rs`, through the same decisions (`changes::links`). Link changes
//! hold the graph lock; claims hold a claim lock, so two agents never pick
//! the same task.

use taskdaemon_core::graph::OpenNode;
use taskdaemon_core::next::NextCandidate;
use taskdaemon_core::time::{Millis, now_millis};
use taskdaemon_core::{LinkKind, TaskRecord};

use super::events::record;
use super::rows::{TASK_COLUMNS, task_from_row};
use super::tracked::{dependencies_of, dependency_statuses, settle_waiting};
use super::{Tx, apply, load_task, lock_task};
use crate::changes::links::{self as decide, ClaimStep};
use crate::{Result, changes};

pub(super) use super::tracked::lock_graph;

/// The stored id of the parent a new subtask names, locked so that two
/// subtasks added at once get different numbers.
pub(super) fn parent_of_new(tx: &mut Tx<'_>, parent: &str) -> Result<String> {
    let parent = lock_task(tx, parent)?;
    changes::require_tracked(&parent, "`task add --parent`")?;
    Ok(parent.id)
}

/// `PARENT.N` for the next subtask of `parent`.
pub(super) fn next_child_id(tx: &mut Tx<'_>, parent: &str) -> Result<String> {
    let children: i64 = tx
        .query_one(
            "SELECT count(*) FROM task_links WHERE task_id = $1 AND kind = 'parent-child'",
            &[&parent],
        )?
        .get(0);
    let children = u32::try_from(children).unwrap_or(u32::MAX - 1);
    decide::next_child_id(parent, children, |id| {
        Ok(tx
            .query_opt("SELECT 1 FROM tasks WHERE id = $1", &[&id])?
            .is_some())
    })
}

/// Links `from KIND to`; an existing link changes nothing. Returns `from`.
pub(super) fn link(
    tx: &mut Tx<'_>,
    from: &str,
    kind: LinkKind,
    to: &str,
    actor: &str,
) -> Result<TaskRecord> {
    let (from, to) = (lock_task(tx, from)?, load_task(tx, to)?);
    decide::check_link(&from, kind, &to)?;
    let link = taskdaemon_core::TaskLink {
        from: from.id.clone(),
        kind,
        to: to.id.clone(),
    };
    let added = match kind.blocking_edge(&from.id, &to.id) {
        Some((waiter, waited)) if kind.gates_start() => {
            let (waiter, waited) = (lock_task(tx, waiter)?, load_task(tx, waited)?);
            let new = changes::new_dependency(&waiter, &waited, |id| dependencies_of(tx, id))?;
            if new {
                tx.execute(
                    "INSERT INTO task_deps (task_id, depends_on, kind) VALUES ($1, $2, $3)",
                    &[&waiter.id, &waited.id, &kind.as_str()],
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
                "INSERT INTO task_links (task_id, kind, target) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&link.from, &kind.as_str(), &link.to],
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
    tx: &mut Tx<'_>,
    from: &str,
    kind: Option<LinkKind>,
    to: &str,
    actor: &str,
) -> Result<TaskRecord> {
    let (from, to) = (lock_task(tx, from)?, load_task(tx, to)?);
    let links = decide::links_to_remove(&from, &from.id, kind, &to.id);
    let recorded = decide::links_removed(&from.id, kind, &to.id, &links, actor)?;
    for link in &links {
        match link.kind.blocking_edge(&link.from, &link.to) {
            Some((waiter, waited)) if link.kind.gates_start() => {
                tx.execute(
                    "DELETE FROM task_deps WHERE task_id = $1 AND depends_on = $2",
                    &[&waiter, &waited],
                )?;
                settle_waiting(tx, waiter, actor)?;
            }
            _ => {
                tx.execute(
                    "DELETE FROM task_links WHERE task_id = $1 AND kind = $2 AND target = $3",
                    &[&link.from, &link.kind.as_str(), &link.to],
                )?;
            }
        }
    }
    record(tx, Some(&from.id), recorded)?;
    load_task(tx, &from.id)
}

/// The tasks `next` chooses among: every ready subtask of a running task,
/// and every ready task at the highest ready priority.
pub(super) fn next_candidates(tx: &mut Tx<'_>) -> Result<Vec<NextCandidate>> {
    let rows = tx.query(
        "SELECT t.id, t.priority, t.created_at, t.search_key,
           (SELECT count(*) FROM task_deps d JOIN tasks w ON w.id = d.task_id
             WHERE d.depends_on = t.id AND w.status IN ('pending', 'blocked')) AS unblocks,
           (SELECT k.task_id FROM task_links k JOIN tasks p ON p.id = k.task_id
             WHERE k.target = t.id AND k.kind = 'parent-child' AND p.status = 'running'
             LIMIT 1) AS running_parent
         FROM tasks t
         WHERE t.kind = 'manual' AND t.status = 'pending'
           AND (t.priority = (SELECT max(priority) FROM tasks
                              WHERE kind = 'manual' AND status = 'pending')
                OR t.id IN (SELECT k.target FROM tasks p
                            JOIN task_links k ON k.task_id = p.id AND k.kind = 'parent-child'
                            WHERE p.kind = 'manual' AND p.status = 'running'))",
        &[],
    )?;
    rows.iter()
        .map(|r| {
            let unblocks: i64 = r.try_get(4)?;
            Ok(NextCandidate {
                id: r.try_get(0)?,
                priority: i32::try_from(r.try_get::<_, i64>(1)?).unwrap_or_default(),
                created_at: r.try_get(2)?,
                seq: r.try_get(3)?,
                unblocks: u32::try_from(unblocks).unwrap_or(u32::MAX),
                running_parent: r.try_get(5)?,
            })
        })
        .collect()
}

/// Waiting tracked tasks, most urgent first, with what they wait for.
pub(super) fn open_graph(tx: &mut Tx<'_>) -> Result<Vec<OpenNode>> {
    let rows = tx.query(
        "SELECT t.id, t.status,
           (SELECT string_agg(d.depends_on || E'\\t' || coalesce(w.status, 'lost'), E'\\n')
              FROM task_deps d LEFT JOIN tasks w ON w.id = d.depends_on
             WHERE d.task_id = t.id)
         FROM tasks t
         WHERE t.kind = 'manual' AND t.status IN ('pending', 'blocked')
         ORDER BY t.priority DESC, t.search_key",
        &[],
    )?;
    rows.iter()
        .map(|r| {
            let deps: Option<String> = r.try_get(2)?;
            crate::encoding::open_node(r.try_get(0)?, r.try_get(1)?, deps.as_deref())
        })
        .collect()
}

/// Claims `id` for `claimant`: starts it, or takes over its stale claim.
pub(super) fn claim(
    tx: &mut Tx<'_>,
    id: &str,
    claimant: &str,
    lease_ms: Millis,
    actor: &str,
) -> Result<TaskRecord> {
    let task = lock_task(tx, id)?;
    let statuses = dependency_statuses(tx, &task.depends_on)?;
    let unmet = || Ok(changes::unmet_list(&statuses));
    match decide::claim(&task, claimant, now_millis(), lease_ms, unmet, actor)? {
        ClaimStep::Start(change) => apply(tx, &task, change)?,
        ClaimStep::Take {
            lease_until,
            recorded,
        } => {
            tx.execute(
                "UPDATE tasks SET claimed_by = $1, lease_until = $2, updated_at = $3 WHERE id = $4",
                &[&claimant, &lease_until, &now_millis(), &task.id],
            )?;
            record(tx, Some(&task.id), recorded)?;
        }
    }
    load_task(tx, &task.id)
}

/// Serialises claims: two agents picking "the next task" at once must not
/// both pick the same one.
pub(super) fn lock_claims(tx: &mut Tx<'_>) -> Result<()> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.taskdaemon.claims'))",
        &[],
    )?;
    Ok(())
}

/// Extends the lease of every task `claimant` holds to `lease_until`.
pub(super) fn renew_claims(tx: &mut Tx<'_>, claimant: &str, lease_until: Millis) -> Result<u64> {
    Ok(tx.execute(
        "UPDATE tasks SET lease_until = $1
         WHERE claimed_by = $2 AND status = 'running' AND lease_until < $1",
        &[&lease_until, &claimant],
    )?)
}

/// Running tasks whose claim's lease ran out by `now`, the oldest lease first.
pub(super) fn stale_claims(tx: &mut Tx<'_>, now: Millis) -> Result<Vec<TaskRecord>> {
    tx.query(
        &format!(
            "SELECT {TASK_COLUMNS} FROM tasks
             WHERE claimed_by IS NOT NULL AND status = 'running' AND lease_until <= $1
             ORDER BY lease_until"
        ),
        &[&now],
    )?
    .iter()
    .map(task_from_row)
    .collect()
}
