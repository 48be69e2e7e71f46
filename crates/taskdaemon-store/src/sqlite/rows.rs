//! Mapping between SQLite rows and domain records.

use rusqlite::Row;
use taskdaemon_core::{Event, QueueItem, TaskRecord};

use crate::Result;
use crate::encoding::{malformed, parse_container, parse_limits};

pub const TASK_COLUMNS: &str = "uuid, id, kind, name, tool, session, status, argv, cwd, env, \
     restart, restarts, hang_timeout_ms, pid, pgid, start_time, boot_id, shim_pid, \
     shim_start_time, exit_code, signal, stop_requested, error, created_at, started_at, \
     finished_at, updated_at, description, priority, note, limits, container, container_id, \
     (SELECT group_concat(label, char(10) ORDER BY label) FROM task_labels l \
       WHERE l.task_id = tasks.id) AS labels, \
     (SELECT group_concat(depends_on, char(10) ORDER BY depends_on) FROM task_deps d \
       WHERE d.task_id = tasks.id) AS depends_on, \
     (SELECT group_concat(path, char(10) ORDER BY f.rowid) FROM task_files f \
       WHERE f.task_id = tasks.id) AS files_modified, \
     (SELECT group_concat(CASE d.kind WHEN 'waits-for' \
         THEN d.task_id || char(9) || d.kind || char(9) || d.depends_on \
         ELSE d.depends_on || char(9) || d.kind || char(9) || d.task_id END, char(10)) \
       FROM task_deps d WHERE d.task_id = tasks.id OR d.depends_on = tasks.id) AS dep_links, \
     (SELECT group_concat(k.task_id || char(9) || k.kind || char(9) || k.target, char(10)) \
       FROM task_links k WHERE k.task_id = tasks.id OR k.target = tasks.id) AS typed_links, \
     (SELECT count(*) || '/' || coalesce(sum(c.status = 'succeeded'), 0) || '/' || \
         coalesce(sum(c.status IN ('pending', 'blocked', 'running')), 0) \
       FROM task_links k JOIN tasks c ON c.id = k.target \
       WHERE k.task_id = tasks.id AND k.kind = 'parent-child') AS rollup, \
     claimed_by, lease_until";

/// Positions in [`TASK_COLUMNS`], counted from its first column (`uuid`).
///
/// Rows are read by position: looking 33 columns up by name costs a string
/// comparison per column per lookup, which dominated wide listings. A test
/// checks these against the list.
mod task_col {
    pub const UUID: usize = 0;
    pub const ID: usize = 1;
    pub const KIND: usize = 2;
    pub const NAME: usize = 3;
    pub const TOOL: usize = 4;
    pub const SESSION: usize = 5;
    pub const STATUS: usize = 6;
    pub const ARGV: usize = 7;
    pub const CWD: usize = 8;
    pub const ENV: usize = 9;
    pub const RESTART: usize = 10;
    pub const RESTARTS: usize = 11;
    pub const HANG_TIMEOUT_MS: usize = 12;
    pub const PID: usize = 13;
    pub const PGID: usize = 14;
    pub const START_TIME: usize = 15;
    pub const BOOT_ID: usize = 16;
    pub const SHIM_PID: usize = 17;
    pub const SHIM_START_TIME: usize = 18;
    pub const EXIT_CODE: usize = 19;
    pub const SIGNAL: usize = 20;
    pub const STOP_REQUESTED: usize = 21;
    pub const ERROR: usize = 22;
    pub const CREATED_AT: usize = 23;
    pub const STARTED_AT: usize = 24;
    pub const FINISHED_AT: usize = 25;
    pub const UPDATED_AT: usize = 26;
    pub const DESCRIPTION: usize = 27;
    pub const PRIORITY: usize = 28;
    pub const NOTE: usize = 29;
    pub const LIMITS: usize = 30;
    pub const CONTAINER: usize = 31;
    pub const CONTAINER_ID: usize = 32;
    pub const LABELS: usize = 33;
    pub const DEPENDS_ON: usize = 34;
    pub const FILES_MODIFIED: usize = 35;
    pub const DEP_LINKS: usize = 36;
    pub const TYPED_LINKS: usize = 37;
    pub const ROLLUP: usize = 38;
    pub const CLAIMED_BY: usize = 39;
    pub const LEASE_UNTIL: usize = 40;
}

pub const QUEUE_ITEM_COLUMNS: &str = "task_id, queue, document, executor, max_attempts, \
     timeout_ms, finished, result, created_at, finished_at, claimable";

pub const EVENT_COLUMNS: &str = "seq, at, task_id, actor, kind, message, before, after";

fn parsed<T: std::str::FromStr>(row: &Row<'_>, column: &'static str) -> Result<T>
where
    T::Err: ToString,
{
    row.get::<_, String>(column)?
        .parse()
        .map_err(|e: T::Err| malformed(column, e))
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

/// The columns of a running-process line (see `processes::running_items`),
/// by position in its query.
pub fn running_columns(row: &Row<'_>) -> rusqlite::Result<crate::encoding::RunningColumns> {
    Ok(crate::encoding::RunningColumns {
        id: row.get(0)?,
        argv: row.get(1)?,
        container: row.get(2)?,
        pid: row.get(3)?,
        started_at: row.get(4)?,
        created_at: row.get(5)?,
    })
}

/// The columns of an ended-process line (see `processes::ended_items`), by
/// position in its query.
pub fn ended_columns(row: &Row<'_>) -> rusqlite::Result<crate::encoding::EndedColumns> {
    Ok(crate::encoding::EndedColumns {
        id: row.get(0)?,
        argv: row.get(1)?,
        container: row.get(2)?,
        status: row.get(3)?,
        exit_code: row.get(4)?,
        signal: row.get(5)?,
        finished_at: row.get(6)?,
        error: row.get(7)?,
    })
}

/// Builds an [`Event`], shaped like [`task_from_row`].
pub fn event_from_row(row: &Row<'_>) -> rusqlite::Result<Result<Event>> {
    Ok(read_event(row))
}

fn read_task(row: &Row<'_>) -> Result<TaskRecord> {
    use task_col as c;
    // Some queries put their own columns before the task's; find where it starts.
    let base = row.as_ref().column_index("uuid")?;
    let at = |column: usize| base + column;
    let text = |column: usize| row.get::<_, String>(at(column));
    let argv: Vec<String> =
        serde_json::from_str(&text(c::ARGV)?).map_err(|e| malformed("argv", e))?;
    let as_u64 = |v: Option<i64>| v.map(|v| v as u64);
    let list = |column: usize| -> Result<Vec<String>> {
        Ok(row
            .get::<_, Option<String>>(at(column))?
            .map(|t| t.split('\n').map(str::to_owned).collect())
            .unwrap_or_default())
    };
    let (links, rollup, claim) = crate::encoding::link_fields(crate::encoding::LinkColumns {
        dep_links: row.get(at(c::DEP_LINKS))?,
        typed_links: row.get(at(c::TYPED_LINKS))?,
        rollup: row.get(at(c::ROLLUP))?,
        claimed_by: row.get(at(c::CLAIMED_BY))?,
        lease_until: row.get(at(c::LEASE_UNTIL))?,
    })?;
    Ok(TaskRecord {
        command: taskdaemon_core::task::shell_join(&argv),
        id: row.get(at(c::ID))?,
        uuid: text(c::UUID)?.parse().map_err(|e| malformed("uuid", e))?,
        kind: text(c::KIND)?.parse().map_err(|e| malformed("kind", e))?,
        name: row.get(at(c::NAME))?,
        tool: row.get(at(c::TOOL))?,
        session: row.get(at(c::SESSION))?,
        status: text(c::STATUS)?
            .parse()
            .map_err(|e: taskdaemon_core::status::UnknownStatus| malformed("status", e))?,
        argv,
        cwd: row.get(at(c::CWD))?,
        env: serde_json::from_str(&text(c::ENV)?).map_err(|e| malformed("env", e))?,
        restart: serde_json::from_str(&text(c::RESTART)?).map_err(|e| malformed("restart", e))?,
        restarts: row.get(at(c::RESTARTS))?,
        hang_timeout_ms: as_u64(row.get(at(c::HANG_TIMEOUT_MS))?),
        limits: parse_limits(row.get(at(c::LIMITS))?)?,
        pid: row.get(at(c::PID))?,
        pgid: row.get(at(c::PGID))?,
        start_time: as_u64(row.get(at(c::START_TIME))?),
        boot_id: row.get(at(c::BOOT_ID))?,
        shim_pid: row.get(at(c::SHIM_PID))?,
        shim_start_time: as_u64(row.get(at(c::SHIM_START_TIME))?),
        container: parse_container(row.get(at(c::CONTAINER))?)?,
        container_id: row.get(at(c::CONTAINER_ID))?,
        description: row.get(at(c::DESCRIPTION))?,
        priority: row.get(at(c::PRIORITY))?,
        labels: list(c::LABELS)?,
        depends_on: list(c::DEPENDS_ON)?,
        links,
        rollup,
        claim,
        note: row.get(at(c::NOTE))?,
        files_modified: list(c::FILES_MODIFIED)?,
        exit_code: row.get(at(c::EXIT_CODE))?,
        signal: row.get(at(c::SIGNAL))?,
        stop_requested: row.get(at(c::STOP_REQUESTED))?,
        error: row.get(at(c::ERROR))?,
        created_at: row.get(at(c::CREATED_AT))?,
        started_at: row.get(at(c::STARTED_AT))?,
        finished_at: row.get(at(c::FINISHED_AT))?,
        updated_at: row.get(at(c::UPDATED_AT))?,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The top-level column names of [`TASK_COLUMNS`], aliases for subqueries.
    fn column_names() -> Vec<String> {
        let mut names = Vec::new();
        let (mut depth, mut current) = (0, String::new());
        for ch in TASK_COLUMNS.chars() {
            match ch {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => names.push(std::mem::take(&mut current)),
                _ => {}
            }
            if !(ch == ',' && depth == 0) {
                current.push(ch);
            }
        }
        names.push(current);
        names
            .iter()
            .map(|n| n.split_whitespace().last().unwrap_or_default().to_owned())
            .collect()
    }

    #[test]
    fn task_column_positions_match_the_list() {
        use task_col as c;
        let names = column_names();
        let expected = [
            (c::UUID, "uuid"),
            (c::ID, "id"),
            (c::KIND, "kind"),
            (c::NAME, "name"),
            (c::TOOL, "tool"),
            (c::SESSION, "session"),
            (c::STATUS, "status"),
            (c::ARGV, "argv"),
            (c::CWD, "cwd"),
            (c::ENV, "env"),
            (c::RESTART, "restart"),
            (c::RESTARTS, "restarts"),
            (c::HANG_TIMEOUT_MS, "hang_timeout_ms"),
            (c::PID, "pid"),
            (c::PGID, "pgid"),
            (c::START_TIME, "start_time"),
            (c::BOOT_ID, "boot_id"),
            (c::SHIM_PID, "shim_pid"),
            (c::SHIM_START_TIME, "shim_start_time"),
            (c::EXIT_CODE, "exit_code"),
            (c::SIGNAL, "signal"),
            (c::STOP_REQUESTED, "stop_requested"),
            (c::ERROR, "error"),
            (c::CREATED_AT, "created_at"),
            (c::STARTED_AT, "started_at"),
            (c::FINISHED_AT, "finished_at"),
            (c::UPDATED_AT, "updated_at"),
            (c::DESCRIPTION, "description"),
            (c::PRIORITY, "priority"),
            (c::NOTE, "note"),
            (c::LIMITS, "limits"),
            (c::CONTAINER, "container"),
            (c::CONTAINER_ID, "container_id"),
            (c::LABELS, "labels"),
            (c::DEPENDS_ON, "depends_on"),
            (c::FILES_MODIFIED, "files_modified"),
            (c::DEP_LINKS, "dep_links"),
            (c::TYPED_LINKS, "typed_links"),
            (c::ROLLUP, "rollup"),
            (c::CLAIMED_BY, "claimed_by"),
            (c::LEASE_UNTIL, "lease_until"),
        ];
        assert_eq!(names.len(), expected.len(), "{names:?}");
        for (position, name) in expected {
            assert_eq!(names[position], name, "column {position}");
        }
    }
}
