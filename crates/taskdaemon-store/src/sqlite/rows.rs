//! Mapping between SQLite rows and domain records.

use rusqlite::Row;
use taskdaemon_core::{Event, QueueItem, TaskRecord};

use crate::{Result, StoreError};

pub const TASK_COLUMNS: &str = "uuid, id, kind, name, tool, session, status, argv, cwd, env, \
     restart, restarts, hang_timeout_ms, pid, pgid, start_time, boot_id, shim_pid, \
     shim_start_time, exit_code, signal, stop_requested, error, created_at, started_at, \
     finished_at, updated_at, description, priority, note, \
     (SELECT group_concat(label, char(10) ORDER BY label) FROM task_labels l \
       WHERE l.task_id = tasks.id) AS labels, \
     (SELECT group_concat(depends_on, char(10) ORDER BY depends_on) FROM task_deps d \
       WHERE d.task_id = tasks.id) AS depends_on, \
     (SELECT group_concat(path, char(10) ORDER BY f.rowid) FROM task_files f \
       WHERE f.task_id = tasks.id) AS files_modified";

pub const QUEUE_ITEM_COLUMNS: &str = "task_id, queue, document, executor, max_attempts, \
     timeout_ms, finished, result, created_at, finished_at, claimable";

pub const EVENT_COLUMNS: &str = "seq, at, task_id, actor, kind, message, before, after";

fn malformed(field: &'static str, message: impl ToString) -> StoreError {
    StoreError::Malformed {
        field,
        message: message.to_string(),
    }
}

fn json_column<T: serde::de::DeserializeOwned>(row: &Row<'_>, column: &'static str) -> Result<T> {
    let text: String = row.get(column)?;
    serde_json::from_str(&text).map_err(|e| malformed(column, e))
}

fn parsed<T: std::str::FromStr>(row: &Row<'_>, column: &'static str) -> Result<T>
where
    T::Err: ToString,
{
    row.get::<_, String>(column)?
        .parse()
        .map_err(|e: T::Err| malformed(column, e))
}

/// A newline-joined list from `group_concat`; `NULL` is the empty list.
fn joined_list(row: &Row<'_>, column: &'static str) -> Result<Vec<String>> {
    Ok(row
        .get::<_, Option<String>>(column)?
        .map(|text| text.split('\n').map(str::to_owned).collect())
        .unwrap_or_default())
}

fn optional_json(row: &Row<'_>, column: &'static str) -> Result<Option<serde_json::Value>> {
    row.get::<_, Option<String>>(column)?
        .map(|text| serde_json::from_str(&text).map_err(|e| malformed(column, e)))
        .transpose()
}

/// Builds a [`TaskRecord`]. The shape suits `query_map`: SQLite errors stay in
/// the outer layer, every failure (malformed values too) is in the inner one.
pub fn task_from_row(row: &Row<'_>) -> rusqlite::Result<Result<TaskRecord>> {
    Ok(read_task(row))
}

/// Builds an [`Event`], shaped like [`task_from_row`].
pub fn event_from_row(row: &Row<'_>) -> rusqlite::Result<Result<Event>> {
    Ok(read_event(row))
}

fn read_task(row: &Row<'_>) -> Result<TaskRecord> {
    let argv: Vec<String> = json_column(row, "argv")?;
    let as_u64 = |v: Option<i64>| v.map(|v| v as u64);
    Ok(TaskRecord {
        command: taskdaemon_core::task::shell_join(&argv),
        id: row.get("id")?,
        uuid: parsed(row, "uuid")?,
        kind: parsed(row, "kind")?,
        name: row.get("name")?,
        tool: row.get("tool")?,
        session: row.get("session")?,
        status: parsed(row, "status")?,
        argv,
        cwd: row.get("cwd")?,
        env: json_column(row, "env")?,
        restart: json_column(row, "restart")?,
        restarts: row.get("restarts")?,
        hang_timeout_ms: as_u64(row.get("hang_timeout_ms")?),
        pid: row.get("pid")?,
        pgid: row.get("pgid")?,
        start_time: as_u64(row.get("start_time")?),
        boot_id: row.get("boot_id")?,
        shim_pid: row.get("shim_pid")?,
        shim_start_time: as_u64(row.get("shim_start_time")?),
        description: row.get("description")?,
        priority: row.get("priority")?,
        labels: joined_list(row, "labels")?,
        depends_on: joined_list(row, "depends_on")?,
        note: row.get("note")?,
        files_modified: joined_list(row, "files_modified")?,
        exit_code: row.get("exit_code")?,
        signal: row.get("signal")?,
        stop_requested: row.get("stop_requested")?,
        error: row.get("error")?,
        created_at: row.get("created_at")?,
        started_at: row.get("started_at")?,
        finished_at: row.get("finished_at")?,
        updated_at: row.get("updated_at")?,
    })
}

fn read_event(row: &Row<'_>) -> Result<Event> {
    Ok(Event {
        seq: row.get("seq")?,
        at: row.get("at")?,
        task_id: row.get("task_id")?,
        actor: row.get("actor")?,
        kind: parsed(row, "kind")?,
        message: row.get("message")?,
        before: optional_json(row, "before")?,
        after: optional_json(row, "after")?,
    })
}

/// Builds a [`QueueItem`], shaped like [`task_from_row`].
pub fn queue_item_from_row(row: &Row<'_>) -> rusqlite::Result<Result<QueueItem>> {
    Ok(read_queue_item(row))
}

fn read_queue_item(row: &Row<'_>) -> Result<QueueItem> {
    Ok(QueueItem {
        task_id: row.get("task_id")?,
        queue: row.get("queue")?,
        document: row.get("document")?,
        executor: row.get("executor")?,
        max_attempts: row.get("max_attempts")?,
        timeout_ms: row.get::<_, Option<i64>>("timeout_ms")?.map(|v| v as u64),
        finished: row.get("finished")?,
        result: optional_json(row, "result")?,
        created_at: row.get("created_at")?,
        finished_at: row.get("finished_at")?,
        claimable: row.get("claimable")?,
    })
}
