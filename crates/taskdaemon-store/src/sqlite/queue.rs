//! Queue items in SQLite: the agent task and item a folder queue or a
//! submit creates, and reading and finishing items.

use rusqlite::{Connection, OptionalExtension, params};
use taskdaemon_core::time::now_millis;
use taskdaemon_core::{NewAgent, QueueCounts, QueueItem, Status, TaskKind, TaskRecord};
use uuid::Uuid;

use super::rows::{QUEUE_ITEM_COLUMNS, queue_item_from_row};
use super::{insert_event, load_status, load_task};
use crate::encoding::{parse_kind, to_json_text};
use crate::{Result, StoreError, queue_items};

/// Reads one queue item, failing with `NotFound`.
pub(super) fn load_queue_item(conn: &Connection, task_id: &str) -> Result<QueueItem> {
    conn.prepare_cached(&format!(
        "SELECT {QUEUE_ITEM_COLUMNS} FROM queue_items WHERE task_id = ?1"
    ))?
    .query_row([task_id], queue_item_from_row)
    .optional()?
    .unwrap_or_else(|| Err(StoreError::NotFound(task_id.to_owned())))
}

/// Creates an agent task, its queue item and its `created` event (shared
/// by folder queues and submitted, `claimable` work).
pub(super) fn create_agent(
    tx: &Connection,
    spec: &NewAgent,
    claimable: bool,
    actor: &str,
) -> Result<TaskRecord> {
    let (event, after) = queue_items::created(spec, actor)?;
    let mut taken = tx.prepare_cached("SELECT 1 FROM tasks WHERE id = ?1")?;
    let id = queue_items::free_id(&spec.wanted_id, |id| Ok(taken.exists([id])?))?;
    let now = now_millis();
    let mut insert_task = tx.prepare_cached(
        "INSERT INTO tasks (uuid, id, kind, name, status, argv, cwd, env, restart,
                            limits, created_at, updated_at, container)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12)",
    )?;
    insert_task.execute(params![
        Uuid::now_v7().to_string(),
        id,
        TaskKind::Agent.as_str(),
        spec.document,
        Status::Pending.as_str(),
        to_json_text(&spec.argv),
        spec.cwd,
        to_json_text(&spec.env),
        to_json_text(&spec.restart),
        crate::encoding::limits_text(&spec.limits),
        now,
        crate::encoding::container_text(&spec.container),
    ])?;
    let mut insert_item = tx.prepare_cached(
        "INSERT INTO queue_items (task_id, queue, document, executor, max_attempts,
                                  timeout_ms, created_at, claimable)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    insert_item.execute(params![
        id,
        spec.queue,
        spec.document,
        spec.executor,
        spec.max_attempts,
        spec.timeout_ms.map(|v| v as i64),
        now,
        claimable,
    ])?;
    insert_event(tx, Some(&id), &event, None, Some(after))?;
    load_task(tx, &id)
}

/// The queue item of the agent task `task_id` (any spelling).
pub(super) fn item(conn: &Connection, task_id: &str) -> Result<QueueItem> {
    let (id, _) = load_status(conn, task_id)?;
    load_queue_item(conn, &id)
}

/// Items of `queue` whose result is not written yet, oldest first.
pub(super) fn open_items(conn: &Connection, queue: &str) -> Result<Vec<QueueItem>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {QUEUE_ITEM_COLUMNS} FROM queue_items
         WHERE queue = ?1 AND finished = 0 ORDER BY created_at, rowid"
    ))?;
    let rows = stmt.query_map([queue], queue_item_from_row)?;
    rows.map(|row| row?).collect()
}

/// Records the result of the ended task `task_id`.
pub(super) fn finish(
    tx: &Connection,
    task_id: &str,
    result: &serde_json::Value,
) -> Result<QueueItem> {
    let (id, status) = load_status(tx, task_id)?;
    queue_items::check_finishable(&id, status)?;
    let changed = tx
        .prepare_cached(
            "UPDATE queue_items SET finished = 1, result = ?1, finished_at = ?2
             WHERE task_id = ?3",
        )?
        .execute(params![result.to_string(), now_millis(), id])?;
    if changed == 0 {
        return Err(StoreError::NotFound(id));
    }
    load_queue_item(tx, &id)
}

/// Done, failed and open counts of every queue that has items.
pub(super) fn counts(conn: &Connection) -> Result<Vec<QueueCounts>> {
    let mut stmt = conn.prepare_cached(
        "SELECT q.queue,
                SUM(q.finished = 1 AND t.status = 'succeeded'),
                SUM(q.finished = 1 AND t.status <> 'succeeded'),
                SUM(q.finished = 0)
         FROM queue_items q JOIN tasks t ON t.id = q.task_id
         GROUP BY q.queue ORDER BY q.queue",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(QueueCounts {
            queue: r.get(0)?,
            done: r.get::<_, i64>(1)? as u64,
            failed: r.get::<_, i64>(2)? as u64,
            open: r.get::<_, i64>(3)? as u64,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Queue items, oldest first, of the newest `filter.limit` that match.
pub(super) fn list(conn: &Connection, filter: &crate::QueueItemFilter) -> Result<Vec<QueueItem>> {
    let limit = filter
        .limit
        .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {QUEUE_ITEM_COLUMNS} FROM queue_items
         WHERE (?1 IS NULL OR queue = ?1)
           AND (?2 IS NULL OR (SELECT status FROM tasks WHERE id = task_id) = ?2)
         ORDER BY created_at DESC, rowid DESC LIMIT {limit}"
    ))?;
    let status = filter.status.map(|s| s.as_str());
    let rows = stmt.query_map(params![filter.queue, status], queue_item_from_row)?;
    let mut items: Vec<QueueItem> = rows.map(|row| row?).collect::<Result<_>>()?;
    items.reverse();
    Ok(items)
}

/// How many tasks of each kind the store holds.
pub(super) fn kind_counts(conn: &Connection) -> Result<Vec<(TaskKind, u64)>> {
    let mut stmt =
        conn.prepare_cached("SELECT kind, COUNT(*) FROM tasks GROUP BY kind ORDER BY kind")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    rows.map(|row| {
        let (kind, count) = row?;
        Ok((parse_kind(&kind)?, u64::try_from(count).unwrap_or(0)))
    })
    .collect()
}

/// Ended tasks for analytics (see [`crate::Store::finished_tasks`]).
pub(super) fn finished(
    conn: &Connection,
    since: i64,
    after_uuid: &str,
    limit: usize,
) -> Result<Vec<crate::FinishedTask>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT t.uuid, t.id, t.kind, t.status, q.queue, t.started_at, t.finished_at, t.error, q.result
         FROM tasks t LEFT JOIN queue_items q ON q.task_id = t.id
         WHERE t.finished_at >= ?1 AND t.uuid > ?2 ORDER BY t.uuid LIMIT {}",
        super::limit_literal(limit)
    ))?;
    let rows = stmt.query_map(params![since, after_uuid], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, Option<i64>>(5)?,
            r.get::<_, i64>(6)?,
            r.get::<_, Option<String>>(7)?,
            r.get::<_, Option<String>>(8)?,
        ))
    })?;
    rows.map(|row| {
        let (uuid, id, kind, status, queue, started_at, finished_at, error, result) = row?;
        crate::encoding::finished_task(
            uuid,
            id,
            &kind,
            &status,
            queue,
            started_at,
            finished_at,
            error,
            result,
        )
    })
    .collect()
}
