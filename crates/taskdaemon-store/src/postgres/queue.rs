//! Queue items in PostgreSQL: the agent task and item a folder queue or a
//! submit creates, and reading and finishing items.

use postgres::types::Type;
use taskdaemon_core::time::now_millis;
use taskdaemon_core::{NewAgent, QueueCounts, QueueItem, Status, TaskKind, TaskRecord};
use uuid::Uuid;

use super::rows::{QUEUE_ITEM_COLUMNS, queue_item_from_row};
use super::{Tx, insert_event, load_status, load_task, lock_status};
use crate::encoding::{parse_kind, to_json_text};
use crate::{Result, StoreError, queue_items};

pub(super) fn load_queue_item(tx: &mut Tx<'_>, task_id: &str) -> Result<QueueItem> {
    match tx.query_cached_opt(
        &format!("SELECT {QUEUE_ITEM_COLUMNS} FROM queue_items WHERE task_id = $1"),
        &[(&task_id, Type::TEXT)],
    )? {
        Some(row) => queue_item_from_row(&row),
        None => Err(StoreError::NotFound(task_id.to_owned())),
    }
}

/// Creates an agent task, its queue item and its `created` event (shared
/// by folder queues and submitted, `claimable` work, which wakes the
/// workers listening when the transaction commits).
pub(super) fn create_agent(
    tx: &mut Tx<'_>,
    spec: &NewAgent,
    claimable: bool,
    actor: &str,
) -> Result<TaskRecord> {
    let (event, after) = queue_items::created(spec, actor)?;
    let id = queue_items::free_id(&spec.wanted_id, |id| {
        Ok(tx
            .query_opt("SELECT 1 FROM tasks WHERE id = $1", &[&id])?
            .is_some())
    })?;
    let now = now_millis();
    tx.execute(
        "INSERT INTO tasks (uuid, id, kind, name, status, argv, cwd, env, restart,
                            limits, created_at, updated_at, container)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12)",
        &[
            &Uuid::now_v7().to_string(),
            &id,
            &TaskKind::Agent.as_str(),
            &spec.document,
            &Status::Pending.as_str(),
            &to_json_text(&spec.argv),
            &spec.cwd,
            &to_json_text(&spec.env),
            &to_json_text(&spec.restart),
            &crate::encoding::limits_text(&spec.limits),
            &now,
            &crate::encoding::container_text(&spec.container),
        ],
    )?;
    tx.execute(
        "INSERT INTO queue_items (task_id, queue, document, executor, max_attempts,
                                  timeout_ms, created_at, claimable)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &id,
            &spec.queue,
            &spec.document,
            &spec.executor,
            &i64::from(spec.max_attempts),
            &spec.timeout_ms.map(|v| v as i64),
            &now,
            &claimable,
        ],
    )?;
    insert_event(tx, Some(&id), &event, None, Some(after))?;
    if claimable {
        super::claim::notify(tx, &spec.queue)?;
    }
    load_task(tx, &id)
}

/// The queue item of the agent task `task_id` (any spelling).
pub(super) fn item(tx: &mut Tx<'_>, task_id: &str) -> Result<QueueItem> {
    let (id, _) = load_status(tx, task_id)?;
    load_queue_item(tx, &id)
}

/// Items of `queue` whose result is not written yet, oldest first.
pub(super) fn open_items(tx: &mut Tx<'_>, queue: &str) -> Result<Vec<QueueItem>> {
    tx.query(
        &format!(
            "SELECT {QUEUE_ITEM_COLUMNS} FROM queue_items
             WHERE queue = $1 AND NOT finished ORDER BY created_at, n"
        ),
        &[&queue],
    )?
    .iter()
    .map(queue_item_from_row)
    .collect()
}

/// Records the result of the ended task `task_id`.
pub(super) fn finish(
    tx: &mut Tx<'_>,
    task_id: &str,
    result: &serde_json::Value,
) -> Result<QueueItem> {
    let (id, status) = lock_status(tx, task_id)?;
    queue_items::check_finishable(&id, status)?;
    let changed = tx.execute(
        "UPDATE queue_items SET finished = TRUE, result = $1, finished_at = $2
         WHERE task_id = $3",
        &[&result.to_string(), &now_millis(), &id],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound(id));
    }
    load_queue_item(tx, &id)
}

/// Done, failed and open counts of every queue that has items.
pub(super) fn counts(tx: &mut Tx<'_>) -> Result<Vec<QueueCounts>> {
    tx.query(
        "SELECT q.queue,
                count(*) FILTER (WHERE q.finished AND t.status = 'succeeded'),
                count(*) FILTER (WHERE q.finished AND t.status <> 'succeeded'),
                count(*) FILTER (WHERE NOT q.finished)
         FROM queue_items q JOIN tasks t ON t.id = q.task_id
         GROUP BY q.queue ORDER BY q.queue",
        &[],
    )?
    .iter()
    .map(|r| {
        Ok(QueueCounts {
            queue: r.try_get(0)?,
            done: r.try_get::<_, i64>(1)? as u64,
            failed: r.try_get::<_, i64>(2)? as u64,
            open: r.try_get::<_, i64>(3)? as u64,
        })
    })
    .collect()
}

/// Queue items, oldest first, of the newest `filter.limit` that match.
pub(super) fn list(tx: &mut Tx<'_>, filter: &crate::QueueItemFilter) -> Result<Vec<QueueItem>> {
    let limit = filter.limit.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
    let status = filter.status.map(|s| s.as_str().to_owned());
    let mut items = tx
        .query(
            &format!(
                "SELECT {QUEUE_ITEM_COLUMNS} FROM queue_items q
                 WHERE ($1::TEXT IS NULL OR q.queue = $1::TEXT)
                   AND ($2::TEXT IS NULL
                        OR (SELECT status FROM tasks WHERE id = q.task_id) = $2::TEXT)
                 ORDER BY q.created_at DESC, q.n DESC LIMIT $3::BIGINT"
            ),
            &[&filter.queue, &status, &limit],
        )?
        .iter()
        .map(queue_item_from_row)
        .collect::<Result<Vec<_>>>()?;
    items.reverse();
    Ok(items)
}

/// How many tasks of each kind the store holds.
pub(super) fn kind_counts(tx: &mut Tx<'_>) -> Result<Vec<(TaskKind, u64)>> {
    tx.query(
        "SELECT kind, COUNT(*) FROM tasks GROUP BY kind ORDER BY kind",
        &[],
    )?
    .iter()
    .map(|row| {
        let kind: String = row.try_get(0)?;
        let count: i64 = row.try_get(1)?;
        Ok((parse_kind(&kind)?, u64::try_from(count).unwrap_or(0)))
    })
    .collect()
}

/// Ended tasks for analytics (see [`crate::Store::finished_tasks`]).
pub(super) fn finished(
    tx: &mut Tx<'_>,
    since: i64,
    after_uuid: &str,
    limit: usize,
) -> Result<Vec<crate::FinishedTask>> {
    let limit = limit as i64;
    tx.query(
        "SELECT t.uuid, t.id, t.kind, t.status, q.queue, t.started_at, t.finished_at, t.error, q.result
         FROM tasks t LEFT JOIN queue_items q ON q.task_id = t.id
         WHERE t.finished_at >= $1 AND t.uuid > $2 ORDER BY t.uuid LIMIT $3",
        &[&since, &after_uuid, &limit],
    )?
    .iter()
    .map(|r| {
        crate::encoding::finished_task(
            r.try_get(0)?,
            r.try_get(1)?,
            &r.try_get::<_, String>(2)?,
            &r.try_get::<_, String>(3)?,
            r.try_get(4)?,
            r.try_get(5)?,
            r.try_get(6)?,
            r.try_get(7)?,
            r.try_get(8)?,
        )
    })
    .collect()
}
