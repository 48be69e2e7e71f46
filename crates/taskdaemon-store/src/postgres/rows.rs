//! Mapping between PostgreSQL rows and domain records, and the typed values
//! a status change writes.

use postgres::Row;
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use taskdaemon_core::tracked::{Memory, Session, memory_id};
use taskdaemon_core::{Event, QueueItem, TaskRecord};

use crate::Result;
use crate::changes::Column;
use crate::encoding::{malformed, parse_container, parse_limits};

pub const TASK_COLUMNS: &str = "tasks.search_key, tasks.uuid, tasks.id, tasks.kind, tasks.name, \
     tasks.tool, tasks.session, tasks.status, tasks.argv, tasks.cwd, tasks.env, tasks.restart, \
     tasks.restarts, tasks.hang_timeout_ms, tasks.pid, tasks.pgid, tasks.start_time, \
     tasks.boot_id, tasks.shim_pid, tasks.shim_start_time, tasks.exit_code, tasks.signal, \
     tasks.stop_requested, tasks.error, tasks.created_at, tasks.started_at, tasks.finished_at, \
     tasks.updated_at, tasks.description, tasks.priority, tasks.note, tasks.limits, \
     tasks.container, tasks.container_id, \
     (SELECT string_agg(label, E'\\n' ORDER BY label COLLATE \"C\") FROM task_labels l \
       WHERE l.task_id = tasks.id) AS labels, \
     (SELECT string_agg(depends_on, E'\\n' ORDER BY depends_on COLLATE \"C\") FROM task_deps d \
       WHERE d.task_id = tasks.id) AS depends_on, \
     (SELECT string_agg(path, E'\\n' ORDER BY f.n) FROM task_files f \
       WHERE f.task_id = tasks.id) AS files_modified, \
     (SELECT string_agg(CASE d.kind WHEN 'waits-for' \
         THEN d.task_id || E'\\t' || d.kind || E'\\t' || d.depends_on \
         ELSE d.depends_on || E'\\t' || d.kind || E'\\t' || d.task_id END, E'\\n') \
       FROM task_deps d WHERE d.task_id = tasks.id OR d.depends_on = tasks.id) AS dep_links, \
     (SELECT string_agg(k.task_id || E'\\t' || k.kind || E'\\t' || k.target, E'\\n') \
       FROM task_links k WHERE k.task_id = tasks.id OR k.target = tasks.id) AS typed_links, \
     (SELECT count(*)::text || '/' || count(*) FILTER (WHERE c.status = 'succeeded') || '/' || \
         count(*) FILTER (WHERE c.status IN ('pending', 'blocked', 'running')) \
       FROM task_links k JOIN tasks c ON c.id = k.target \
       WHERE k.task_id = tasks.id AND k.kind = 'parent-child') AS rollup, \
     tasks.claimed_by, tasks.lease_until";

pub const QUEUE_ITEM_COLUMNS: &str = "task_id, queue, document, executor, max_attempts, \
     timeout_ms, finished, result, created_at, finished_at, claimable";

pub const EVENT_COLUMNS: &str = "seq, at, task_id, actor, kind, message, before, after";

pub const MEMORY_COLUMNS: &str = "id, kind, text, task_id, key, session, created_at, updated_at";

pub const SESSION_COLUMNS: &str = "id, tool, started_at, last_seen_at, ended_at";

fn json_column<T: serde::de::DeserializeOwned>(row: &Row, column: &'static str) -> Result<T> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| malformed(column, e))
}

fn parsed<T: std::str::FromStr>(row: &Row, column: &'static str) -> Result<T>
where
    T::Err: ToString,
{
    row.try_get::<_, String>(column)?
        .parse()
        .map_err(|e: T::Err| malformed(column, e))
}

fn joined_list(row: &Row, column: &'static str) -> Result<Vec<String>> {
    Ok(row
        .try_get::<_, Option<String>>(column)?
        .map(|text| text.split('\n').map(str::to_owned).collect())
        .unwrap_or_default())
}

fn optional_json(row: &Row, column: &'static str) -> Result<Option<serde_json::Value>> {
    row.try_get::<_, Option<String>>(column)?
        .map(|text| serde_json::from_str(&text).map_err(|e| malformed(column, e)))
        .transpose()
}

/// A BIGINT column holding a value of a narrower type.
fn narrow<T: TryFrom<i64>>(row: &Row, column: &'static str) -> Result<T> {
    let value: i64 = row.try_get(column)?;
    T::try_from(value).map_err(|_| malformed(column, format!("{value} is out of range")))
}

fn narrow_opt<T: TryFrom<i64>>(row: &Row, column: &'static str) -> Result<Option<T>> {
    row.try_get::<_, Option<i64>>(column)?
        .map(|value| {
            T::try_from(value).map_err(|_| malformed(column, format!("{value} is out of range")))
        })
        .transpose()
}

/// The columns of a running-process line (see `processes::running_items`).
pub fn running_columns(row: &Row) -> Result<crate::encoding::RunningColumns> {
    Ok(crate::encoding::RunningColumns {
        id: row.try_get("id")?,
        argv: row.try_get("argv")?,
        container: row.try_get("container")?,
        pid: narrow_opt(row, "pid")?,
        started_at: row.try_get("started_at")?,
        created_at: row.try_get("created_at")?,
    })
}

/// The columns of an ended-process line (see `processes::ended_items`).
pub fn ended_columns(row: &Row) -> Result<crate::encoding::EndedColumns> {
    Ok(crate::encoding::EndedColumns {
        id: row.try_get("id")?,
        argv: row.try_get("argv")?,
        container: row.try_get("container")?,
        status: row.try_get("status")?,
        exit_code: narrow_opt(row, "exit_code")?,
        signal: narrow_opt(row, "signal")?,
        finished_at: row.try_get("finished_at")?,
        error: row.try_get("error")?,
    })
}

pub fn task_from_row(row: &Row) -> Result<TaskRecord> {
    let argv: Vec<String> = json_column(row, "argv")?;
    let (links, rollup, claim) = crate::encoding::link_fields(crate::encoding::LinkColumns {
        dep_links: row.try_get("dep_links")?,
        typed_links: row.try_get("typed_links")?,
        rollup: row.try_get("rollup")?,
        claimed_by: row.try_get("claimed_by")?,
        lease_until: row.try_get("lease_until")?,
    })?;
    Ok(TaskRecord {
        command: taskdaemon_core::task::shell_join(&argv),
        id: row.try_get("id")?,
        uuid: parsed(row, "uuid")?,
        kind: parsed(row, "kind")?,
        name: row.try_get("name")?,
        tool: row.try_get("tool")?,
        session: row.try_get("session")?,
        status: parsed(row, "status")?,
        argv,
        cwd: row.try_get("cwd")?,
        env: json_column(row, "env")?,
        restart: json_column(row, "restart")?,
        restarts: narrow(row, "restarts")?,
        hang_timeout_ms: narrow_opt(row, "hang_timeout_ms")?,
        limits: parse_limits(row.try_get("limits")?)?,
        pid: narrow_opt(row, "pid")?,
        pgid: narrow_opt(row, "pgid")?,
        start_time: narrow_opt(row, "start_time")?,
        boot_id: row.try_get("boot_id")?,
        shim_pid: narrow_opt(row, "shim_pid")?,
        shim_start_time: narrow_opt(row, "shim_start_time")?,
        container: parse_container(row.try_get("container")?)?,
        container_id: row.try_get("container_id")?,
        description: row.try_get("description")?,
        priority: narrow(row, "priority")?,
        labels: joined_list(row, "labels")?,
        depends_on: joined_list(row, "depends_on")?,
        links,
        rollup,
        claim,
        note: row.try_get("note")?,
        files_modified: joined_list(row, "files_modified")?,
        exit_code: narrow_opt(row, "exit_code")?,
        signal: narrow_opt(row, "signal")?,
        stop_requested: row.try_get("stop_requested")?,
        error: row.try_get("error")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub fn event_from_row(row: &Row) -> Result<Event> {
    Ok(Event {
        seq: row.try_get("seq")?,
        at: row.try_get("at")?,
        task_id: row.try_get("task_id")?,
        actor: row.try_get("actor")?,
        kind: parsed(row, "kind")?,
        message: row.try_get("message")?,
        before: optional_json(row, "before")?,
        after: optional_json(row, "after")?,
    })
}

/// [`QUEUE_ITEM_COLUMNS`] of the CTE `leased`, for a row that also holds
/// [`TASK_COLUMNS`]: the item's times are renamed, as the task has columns
/// of those names (read with [`leased_item_from_row`]).
pub const LEASED_ITEM_COLUMNS: &str = "leased.task_id, leased.queue, leased.document, \
     leased.executor, leased.max_attempts, leased.timeout_ms, leased.finished, leased.result, \
     leased.created_at AS item_created_at, leased.finished_at AS item_finished_at, \
     leased.claimable";

pub fn queue_item_from_row(row: &Row) -> Result<QueueItem> {
    queue_item_with_times(row, ("created_at", "finished_at"))
}

/// A queue item read through [`LEASED_ITEM_COLUMNS`].
pub fn leased_item_from_row(row: &Row) -> Result<QueueItem> {
    queue_item_with_times(row, ("item_created_at", "item_finished_at"))
}

/// A queue item whose creation and finish times are in columns `times`.
fn queue_item_with_times(row: &Row, times: (&str, &str)) -> Result<QueueItem> {
    Ok(QueueItem {
        task_id: row.try_get("task_id")?,
        queue: row.try_get("queue")?,
        document: row.try_get("document")?,
        executor: row.try_get("executor")?,
        max_attempts: narrow(row, "max_attempts")?,
        timeout_ms: narrow_opt(row, "timeout_ms")?,
        finished: row.try_get("finished")?,
        result: optional_json(row, "result")?,
        created_at: row.try_get(times.0)?,
        finished_at: row.try_get(times.1)?,
        claimable: row.try_get("claimable")?,
    })
}

pub fn memory_from_row(row: &Row) -> Result<Memory> {
    let kind: String = row.try_get("kind")?;
    Ok(Memory {
        id: memory_id(row.try_get("id")?),
        kind: kind.parse().map_err(|e| malformed("memory.kind", e))?,
        text: row.try_get("text")?,
        task_id: row.try_get("task_id")?,
        key: row.try_get("key")?,
        session: row.try_get("session")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub fn session_from_row(row: &Row) -> Result<Session> {
    Ok(Session {
        id: row.try_get("id")?,
        tool: row.try_get("tool")?,
        started_at: row.try_get("started_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
        ended_at: row.try_get("ended_at")?,
    })
}

/// The PostgreSQL type of a decided column value, for typed (one round
/// trip) statements; every integer column is BIGINT.
pub fn column_type(value: &Column) -> Type {
    match value {
        Column::Int(_) => Type::INT8,
        Column::Text(_) => Type::TEXT,
        Column::Bool(_) => Type::BOOL,
    }
}

impl ToSql for Column {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Column::Int(v) => v.to_sql(ty, out),
            Column::Text(v) => v.to_sql(ty, out),
            Column::Bool(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        <Option<i64> as ToSql>::accepts(ty)
            || <Option<String> as ToSql>::accepts(ty)
            || <bool as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}
