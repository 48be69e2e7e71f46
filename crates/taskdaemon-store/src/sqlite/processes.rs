//! Supervised processes in SQLite: their rows, and the exits and stop
//! requests that [`crate::lifecycle`] decides, applied here (starts, ends
//! and reopens go through `change_task`, see [`crate::wiring`]).

use rusqlite::{Connection, params};
use taskdaemon_core::process::ExitOutcome;
use taskdaemon_core::time::now_millis;
use taskdaemon_core::{NewProcess, Status, TaskKind, TaskRecord};
use uuid::Uuid;

use super::events::record;
use super::rows::{TASK_COLUMNS, task_from_row};
use super::{apply, load_task, next_task_id, touch_session};
use crate::encoding::{container_text, limits_text, to_json_text};
use crate::lifecycle::{self, Stop};
use crate::{ExitRecorded, ProcessFilter, Result};

/// Creates a `pending` process task with the next id, and its `created` event.
pub(super) fn create(tx: &Connection, spec: &NewProcess, actor: &str) -> Result<TaskRecord> {
    let created = lifecycle::created(spec, actor)?;
    let id = next_task_id(tx, spec.tool.as_deref())?;
    let now = now_millis();
    let mut insert = tx.prepare_cached(
        "INSERT INTO tasks (uuid, id, kind, name, tool, session, status, argv, cwd, env,
                            restart, hang_timeout_ms, limits, container, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?15, ?14, ?14)",
    )?;
    insert.execute(params![
        Uuid::now_v7().to_string(),
        id,
        TaskKind::Process.as_str(),
        spec.name,
        spec.tool,
        spec.session,
        Status::Pending.as_str(),
        to_json_text(&spec.argv),
        spec.cwd,
        to_json_text(&spec.env),
        to_json_text(&spec.restart),
        spec.hang_timeout_ms.map(|v| v as i64),
        limits_text(&spec.limits),
        now,
        container_text(&spec.container),
    ])?;
    if let Some(session) = &spec.session {
        touch_session(tx, session, spec.tool.as_deref(), now)?;
    }
    record(tx, Some(&id), created)?;
    load_task(tx, &id)
}

/// Process tasks matching `filter`, oldest first.
pub(super) fn list(conn: &Connection, filter: &ProcessFilter) -> Result<Vec<TaskRecord>> {
    // Live tasks are few: find them through the status index. Listing
    // all (newest first, often with a limit) is a rowid walk; `+kind`
    // keeps SQLite from sorting the whole table through an index.
    let mut sql = if filter.all {
        format!("SELECT rowid AS row_order, {TASK_COLUMNS} FROM tasks WHERE +kind = 'process'")
    } else {
        format!(
            "SELECT rowid AS row_order, {TASK_COLUMNS} FROM tasks WHERE kind = 'process' \
             AND status IN ('pending', 'blocked', 'running')"
        )
    };
    if filter.tool.is_some() {
        sql.push_str(" AND tool = ?1");
    }
    let limit = filter.limit.map_or(-1, |l| l as i64);
    // The newest `limit` rows, shown oldest first.
    let sql = format!("SELECT * FROM ({sql} ORDER BY rowid DESC LIMIT {limit}) ORDER BY row_order");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = match &filter.tool {
        Some(tool) => stmt.query_map([tool], task_from_row)?,
        None => stmt.query_map([], task_from_row)?,
    };
    rows.map(|row| row?).collect()
}

/// See [`Store::running_items`](crate::Store::running_items): found through
/// the status index, in the order they were created.
pub(super) fn running_items(
    conn: &Connection,
) -> Result<Vec<taskdaemon_core::rehydrate::RunningItem>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, argv, container, pid, started_at, created_at FROM tasks \
         WHERE kind = 'process' AND status = 'running' ORDER BY rowid",
    )?;
    let rows = stmt.query_map([], super::rows::running_columns)?;
    rows.map(|row| crate::encoding::running_item(row?))
        .collect()
}

/// See [`Store::ended_items`](crate::Store::ended_items): one lookup by id
/// per line, the ids passed as one JSON array.
pub(super) fn ended_items(
    conn: &Connection,
    ended: &[crate::EndedRef],
) -> Result<Vec<taskdaemon_core::rehydrate::EndedItem>> {
    let ids: Vec<&str> = ended.iter().map(|e| e.id.as_str()).collect();
    let ids = serde_json::to_string(&ids).map_err(|e| crate::encoding::malformed("ids", e))?;
    let mut stmt = conn.prepare_cached(
        "SELECT id, argv, container, status, exit_code, signal, finished_at, error FROM tasks \
         WHERE id IN (SELECT value FROM json_each(?1))",
    )?;
    let rows = stmt.query_map([ids], super::rows::ended_columns)?;
    crate::encoding::ended_items(ended, rows.map(|row| Ok(row?)))
}

/// A page of tasks of every kind, newest first (see [`crate::task_page`]).
/// One page of tasks, newest first. Ids first, rows after: the listed
/// columns (with their subqueries) are computed for the page only.
pub(super) fn page(conn: &Connection, filter: &crate::TaskPageFilter) -> Result<Vec<TaskRecord>> {
    let (ids, args) = page_ids(conn, filter)?;
    let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id IN ({ids}) ORDER BY uuid DESC");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), task_from_row)?;
    rows.map(|row| row?).collect()
}

/// How many tasks a label may have for its page to start from the label: a
/// few pages' worth, where looking each one up costs about what one page of
/// a walk does.
const LABEL_FIRST_MAX: i64 = 200;

/// The query of a page's ids and its arguments. A rare label's page starts
/// from the `task_labels_label` index (`CROSS JOIN` keeps that order), as
/// walking every task newest first would probe nearly all of them; a common
/// label's page walks the tasks newest first, which stops after a page, where
/// starting from the label would look up and sort every labelled task
/// (measured: 1,000 of 10,000 tasks was ten times slower that way).
fn page_ids(conn: &Connection, filter: &crate::TaskPageFilter) -> Result<(String, Vec<String>)> {
    let rare = match &filter.label {
        Some(label) => label_count(conn, label)? <= LABEL_FIRST_MAX,
        None => false,
    };
    let (Some(label), true) = (&filter.label, rare) else {
        let (condition, args) = crate::task_page::where_clause(filter, |n| format!("?{n}"));
        let sql = format!(
            "SELECT tasks.id FROM tasks WHERE {condition} ORDER BY tasks.uuid DESC LIMIT {}",
            filter.limit
        );
        return Ok((sql, args));
    };
    let others = crate::TaskPageFilter {
        label: None,
        ..filter.clone()
    };
    let (condition, mut args) = crate::task_page::where_clause(&others, |n| format!("?{n}"));
    args.push(label.clone());
    let sql = format!(
        "SELECT tasks.id FROM task_labels tl CROSS JOIN tasks ON tasks.id = tl.task_id
         WHERE tl.label = ?{} AND {condition} ORDER BY tasks.uuid DESC LIMIT {}",
        args.len(),
        filter.limit
    );
    Ok((sql, args))
}

/// How many tasks carry `label` (a count over the covering label index).
fn label_count(conn: &Connection, label: &str) -> Result<i64> {
    let mut stmt = conn.prepare_cached("SELECT count(*) FROM task_labels WHERE label = ?1")?;
    Ok(stmt.query_row([label], |r| r.get(0))?)
}

pub(super) fn record_exit(
    tx: &Connection,
    id: &str,
    pid: i32,
    outcome: ExitOutcome,
    reason: Option<&str>,
    exited_at_us: Option<i64>,
    actor: &str,
) -> Result<ExitRecorded> {
    let task = load_task(tx, id)?;
    let (change, decision) = lifecycle::exited(&task, pid, outcome, reason, exited_at_us, actor)?;
    apply(tx, &task, change)?;
    Ok(ExitRecorded {
        task: load_task(tx, id)?,
        decision,
    })
}

pub(super) fn request_stop(tx: &Connection, id: &str, actor: &str) -> Result<TaskRecord> {
    let task = load_task(tx, id)?;
    match lifecycle::stop(&task, now_millis(), actor)? {
        Stop::Flag(flagged) => {
            tx.execute(
                "UPDATE tasks SET stop_requested = 1, updated_at = ?1 WHERE id = ?2",
                params![now_millis(), task.id],
            )?;
            record(tx, Some(&task.id), flagged)?;
        }
        Stop::Cancel(change) => apply(tx, &task, change)?,
    }
    load_task(tx, id)
}

/// Records the engine's id of a container task's container.
pub(super) fn set_container_id(
    tx: &Connection,
    id: &str,
    container_id: &str,
) -> Result<TaskRecord> {
    let changed = tx.execute(
        "UPDATE tasks SET container_id = ?1, updated_at = ?2 WHERE id = ?3",
        params![container_id, now_millis(), id],
    )?;
    if changed == 0 {
        return Err(crate::StoreError::NotFound(id.to_owned()));
    }
    load_task(tx, id)
}
