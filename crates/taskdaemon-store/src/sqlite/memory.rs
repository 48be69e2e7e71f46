//! Memory (decisions, patterns, notes, facts) and agent sessions in SQLite.

use rusqlite::{Connection, OptionalExtension, Row, params};
use taskdaemon_core::time::now_millis;
use taskdaemon_core::tracked::{Memory, NewMemory, Session, memory_id};

use super::events::record;
use super::{load_task, stored_id};
use crate::{MemoryFilter, Result, StoreError, changes};

pub(super) const MEMORY_COLUMNS: &str =
    "id, kind, text, task_id, key, session, created_at, updated_at";
pub(super) const SESSION_COLUMNS: &str = "id, tool, started_at, last_seen_at, ended_at";

/// Records a memory; with a key, replaces the memory that has that key.
pub(super) fn remember(tx: &Connection, new: &NewMemory, actor: &str) -> Result<Memory> {
    new.validate().map_err(StoreError::Invalid)?;
    let task_id = stored_id(tx, new.task_id.as_deref())?;
    let (text, now) = (new.text.trim(), now_millis());
    let existing = match &new.key {
        Some(key) => by_key(tx, key)?,
        None => None,
    };
    let number = match &existing {
        Some(old) => {
            tx.execute(
                "UPDATE memory SET kind = ?1, text = ?2, task_id = ?3, session = ?4, updated_at = ?5
                 WHERE key = ?6",
                params![new.kind.as_str(), text, task_id, new.session, now, new.key],
            )?;
            taskdaemon_core::tracked::parse_memory_id(&old.id).unwrap_or_default()
        }
        None => {
            tx.execute(
                "INSERT INTO memory (kind, text, task_id, key, session, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![new.kind.as_str(), text, task_id, new.key, new.session, now],
            )?;
            tx.last_insert_rowid()
        }
    };
    if let Some(session) = &new.session {
        touch_session(tx, session, None, now)?;
    }
    let remembered = changes::remembered_event(new, number, existing.as_ref(), actor);
    record(tx, task_id.as_deref(), remembered)?;
    load_memory(tx, number)
}

/// The memory recorded under `key`.
pub(super) fn by_key(conn: &Connection, key: &str) -> Result<Option<Memory>> {
    conn.prepare_cached(&format!(
        "SELECT {MEMORY_COLUMNS} FROM memory WHERE key = ?1"
    ))?
    .query_row([key], memory_from_row)
    .optional()?
    .transpose()
}

fn load_memory(conn: &Connection, number: i64) -> Result<Memory> {
    conn.prepare_cached(&format!(
        "SELECT {MEMORY_COLUMNS} FROM memory WHERE id = ?1"
    ))?
    .query_row([number], memory_from_row)
    .optional()?
    .unwrap_or_else(|| Err(StoreError::NotFound(memory_id(number))))
}

/// Memories matching `filter`, newest first.
pub(super) fn memories(conn: &Connection, filter: &MemoryFilter) -> Result<Vec<Memory>> {
    let mut sql = format!("SELECT {MEMORY_COLUMNS} FROM memory WHERE 1 = 1");
    let mut values: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(kind) = filter.kind {
        values.push(kind.as_str().to_owned().into());
        sql.push_str(&format!(" AND kind = ?{}", values.len()));
    }
    if let Some(task) = &filter.task_id {
        values.push(load_task(conn, task)?.id.into());
        sql.push_str(&format!(" AND task_id = ?{}", values.len()));
    }
    let limit = filter.limit.map_or(-1, |l| l as i64);
    sql.push_str(&format!(" ORDER BY updated_at DESC, id DESC LIMIT {limit}"));
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(values), memory_from_row)?;
    rows.map(|row| row?).collect()
}

pub(super) fn memory_from_row(row: &Row<'_>) -> rusqlite::Result<Result<Memory>> {
    let kind: String = row.get("kind")?;
    let kind = match kind.parse() {
        Ok(kind) => kind,
        Err(message) => {
            return Ok(Err(StoreError::Malformed {
                field: "memory.kind",
                message,
            }));
        }
    };
    Ok(Ok(Memory {
        id: memory_id(row.get("id")?),
        kind,
        text: row.get("text")?,
        task_id: row.get("task_id")?,
        key: row.get("key")?,
        session: row.get("session")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    }))
}

/// Notes that `session` was active at `now`, creating it on first sight.
pub(super) fn touch_session(
    tx: &Connection,
    session: &str,
    tool: Option<&str>,
    now: i64,
) -> Result<()> {
    tx.execute(
        "INSERT INTO sessions (id, tool, started_at, last_seen_at) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT(id) DO UPDATE SET last_seen_at = excluded.last_seen_at,
           tool = coalesce(sessions.tool, excluded.tool), ended_at = NULL",
        params![session, tool, now],
    )?;
    Ok(())
}

/// Marks `session` ended.
pub(super) fn end_session(tx: &Connection, session: &str, actor: &str) -> Result<Session> {
    let now = now_millis();
    touch_session(tx, session, None, now)?;
    tx.execute(
        "UPDATE sessions SET ended_at = ?1 WHERE id = ?2",
        params![now, session],
    )?;
    record(tx, None, changes::session_ended(session, actor))?;
    load_session(tx, session)?.ok_or_else(|| StoreError::NotFound(session.to_owned()))
}

pub(super) fn load_session(conn: &Connection, session: &str) -> Result<Option<Session>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1"
        ))?
        .query_row([session], session_from_row)
        .optional()?)
}

/// The session seen most recently.
pub(super) fn latest_session(conn: &Connection) -> Result<Option<Session>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions ORDER BY last_seen_at DESC LIMIT 1"
        ))?
        .query_row([], session_from_row)
        .optional()?)
}

pub(super) fn session_from_row(row: &Row<'_>) -> rusqlite::Result<Session> {
    Ok(Session {
        id: row.get("id")?,
        tool: row.get("tool")?,
        started_at: row.get("started_at")?,
        last_seen_at: row.get("last_seen_at")?,
        ended_at: row.get("ended_at")?,
    })
}
