//! Supervised processes in PostgreSQL: their rows, and the exits and stop
//! requests that [`crate::lifecycle`] decides, applied under the task's row
//! lock (starts, ends and reopens go through `change_task`, see
//! [`crate::wiring`]).

use taskdaemon_core::process::ExitOutcome;
use taskdaemon_core::time::now_millis;
use taskdaemon_core::{NewProcess, Status, TaskKind, TaskRecord};
use uuid::Uuid;

use super::events::record;
use super::rows::{TASK_COLUMNS, task_from_row};
use super::{Tx, apply, load_task, lock_task, memory, next_task_id};
use crate::encoding::{container_text, limits_text, to_json_text};
use crate::lifecycle::{self, Stop};
use crate::{ExitRecorded, ProcessFilter, Result};

/// Creates a `pending` process task with the next id, and its `created` event.
pub(super) fn create(tx: &mut Tx<'_>, spec: &NewProcess, actor: &str) -> Result<TaskRecord> {
    let created = lifecycle::created(spec, actor)?;
    let id = next_task_id(tx, spec.tool.as_deref())?;
    let now = now_millis();
    tx.execute(
        "INSERT INTO tasks (uuid, id, kind, name, tool, session, status, argv, cwd, env,
                            restart, hang_timeout_ms, limits, container, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $15, $14, $14)",
        &[
            &Uuid::now_v7().to_string(),
            &id,
            &TaskKind::Process.as_str(),
            &spec.name,
            &spec.tool,
            &spec.session,
            &Status::Pending.as_str(),
            &to_json_text(&spec.argv),
            &spec.cwd,
            &to_json_text(&spec.env),
            &to_json_text(&spec.restart),
            &spec.hang_timeout_ms.map(|v| v as i64),
            &limits_text(&spec.limits),
            &now,
            &container_text(&spec.container),
        ],
    )?;
    if let Some(session) = &spec.session {
        memory::touch_session(tx, session, spec.tool.as_deref(), now)?;
    }
    record(tx, Some(&id), created)?;
    load_task(tx, &id)
}

/// Process tasks matching `filter`, oldest first.
pub(super) fn list(tx: &mut Tx<'_>, filter: &ProcessFilter) -> Result<Vec<TaskRecord>> {
    let mut sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE kind = 'process'");
    if !filter.all {
        sql.push_str(" AND status IN ('pending', 'blocked', 'running')");
    }
    if filter.tool.is_some() {
        sql.push_str(" AND tool = $1");
    }
    let limit = filter
        .limit
        .map_or_else(|| "ALL".to_owned(), |l| l.to_string());
    // The newest `limit` rows, shown oldest first.
    let sql = format!(
        "SELECT * FROM ({sql} ORDER BY search_key DESC LIMIT {limit}) t ORDER BY search_key"
    );
    let rows = match &filter.tool {
        Some(tool) => tx.query(&sql, &[tool])?,
        None => tx.query(&sql, &[])?,
    };
    rows.iter().map(task_from_row).collect()
}

/// See [`Store::running_items`](crate::Store::running_items), in the order
/// they were created.
pub(super) fn running_items(
    tx: &mut Tx<'_>,
) -> Result<Vec<taskdaemon_core::rehydrate::RunningItem>> {
    let rows = tx.query(
        "SELECT id, argv, container, pid, started_at, created_at FROM tasks
          WHERE kind = 'process' AND status = 'running' ORDER BY search_key",
        &[],
    )?;
    rows.iter()
        .map(|row| crate::encoding::running_item(super::rows::running_columns(row)?))
        .collect()
}

/// See [`Store::ended_items`](crate::Store::ended_items).
pub(super) fn ended_items(
    tx: &mut Tx<'_>,
    ended: &[crate::EndedRef],
) -> Result<Vec<taskdaemon_core::rehydrate::EndedItem>> {
    let ids: Vec<&str> = ended.iter().map(|e| e.id.as_str()).collect();
    let rows = tx.query(
        "SELECT id, argv, container, status, exit_code, signal, finished_at, error
           FROM tasks WHERE id = ANY($1)",
        &[&ids],
    )?;
    crate::encoding::ended_items(ended, rows.iter().map(super::rows::ended_columns))
}

/// A page of tasks of every kind, newest first (see [`crate::task_page`]).
pub(super) fn page(tx: &mut Tx<'_>, filter: &crate::TaskPageFilter) -> Result<Vec<TaskRecord>> {
    let (condition, args) = crate::task_page::where_clause(filter, |n| format!("${n}"));
    let sql = format!(
        "SELECT {TASK_COLUMNS} FROM tasks WHERE {condition} ORDER BY tasks.uuid DESC LIMIT {}",
        filter.limit
    );
    let params: Vec<&(dyn postgres::types::ToSql + Sync)> = args
        .iter()
        .map(|a| a as &(dyn postgres::types::ToSql + Sync))
        .collect();
    tx.query(&sql, &params)?.iter().map(task_from_row).collect()
}

pub(super) fn record_exit(
    tx: &mut Tx<'_>,
    id: &str,
    pid: i32,
    outcome: ExitOutcome,
    reason: Option<&str>,
    exited_at_us: Option<i64>,
    actor: &str,
) -> Result<ExitRecorded> {
    let task = lock_task(tx, id)?;
    let (change, decision) = lifecycle::exited(&task, pid, outcome, reason, exited_at_us, actor)?;
    apply(tx, &task, change)?;
    let task = load_task(tx, id)?;
    Ok(ExitRecorded { task, decision })
}

pub(super) fn request_stop(tx: &mut Tx<'_>, id: &str, actor: &str) -> Result<TaskRecord> {
    let task = lock_task(tx, id)?;
    match lifecycle::stop(&task, now_millis(), actor)? {
        Stop::Flag(flagged) => {
            tx.execute(
                "UPDATE tasks SET stop_requested = TRUE, updated_at = $1 WHERE id = $2",
                &[&now_millis(), &task.id],
            )?;
            record(tx, Some(&task.id), flagged)?;
        }
        Stop::Cancel(change) => apply(tx, &task, change)?,
    }
    load_task(tx, id)
}

/// Records the engine's id of a container task's container.
pub(super) fn set_container_id(
    tx: &mut Tx<'_>,
    id: &str,
    container_id: &str,
) -> Result<TaskRecord> {
    let changed = tx.execute(
        "UPDATE tasks SET container_id = $1, updated_at = $2 WHERE id = $3",
        &[&container_id, &now_millis(), &id],
    )?;
    if changed == 0 {
        return Err(crate::StoreError::NotFound(id.to_owned()));
    }
    load_task(tx, id)
}
