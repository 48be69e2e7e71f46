//! Memory and agent sessions in PostgreSQL (the SQLite twin is `sqlite/memory.rs`).

use taskdaemon_core::time::now_millis;
use taskdaemon_core::tracked::{Memory, NewMemory, Session, memory_id, parse_memory_id};

use super::events::record;
use super::rows::{MEMORY_COLUMNS, SESSION_COLUMNS, memory_from_row, session_from_row};
use super::{Tx, load_task, stored_id};
use crate::{MemoryFilter, Result, StoreError, changes};

pub(super) fn remember(tx: &mut Tx<'_>, new: &NewMemory, actor: &str) -> Result<Memory> {
    new.validate().map_err(StoreError::Invalid)?;
    let task_id = stored_id(tx, new.task_id.as_deref())?;
    let (text, now) = (new.text.trim(), now_millis());
    let existing: Option<Memory> = match &new.key {
        Some(key) => tx
            .query_opt(
                &format!("SELECT {MEMORY_COLUMNS} FROM memory WHERE key = $1 FOR UPDATE"),
                &[key],
            )?
            .map(|row| memory_from_row(&row))
            .transpose()?,
        None => None,
    };
    let number: i64 = match &existing {
        Some(old) => {
            tx.execute(
                "UPDATE memory SET kind = $1, text = $2, task_id = $3, session = $4, updated_at = $5
                 WHERE key = $6",
                &[
                    &new.kind.as_str(),
                    &text,
                    &task_id,
                    &new.session,
                    &now,
                    &new.key,
                ],
            )?;
            parse_memory_id(&old.id).unwrap_or_default()
        }
        None => tx
            .query_one(
                "INSERT INTO memory (kind, text, task_id, key, session, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
                &[
                    &new.kind.as_str(),
                    &text,
                    &task_id,
                    &new.key,
                    &new.session,
                    &now,
                ],
            )?
            .get(0),
    };
    if let Some(session) = &new.session {
        touch_session(tx, session, None, now)?;
    }
    let remembered = changes::remembered_event(new, number, existing.as_ref(), actor);
    record(tx, task_id.as_deref(), remembered)?;
    load_memory(tx, number)
}

pub(super) fn by_key(tx: &mut Tx<'_>, key: &str) -> Result<Option<Memory>> {
    tx.query_opt(
        &format!("SELECT {MEMORY_COLUMNS} FROM memory WHERE key = $1"),
        &[&key],
    )?
    .map(|row| memory_from_row(&row))
    .transpose()
}

pub(super) fn load_memory(tx: &mut Tx<'_>, number: i64) -> Result<Memory> {
    match tx.query_opt(
        &format!("SELECT {MEMORY_COLUMNS} FROM memory WHERE id = $1"),
        &[&number],
    )? {
        Some(row) => memory_from_row(&row),
        None => Err(StoreError::NotFound(memory_id(number))),
    }
}

pub(super) fn memories(tx: &mut Tx<'_>, filter: &MemoryFilter) -> Result<Vec<Memory>> {
    let mut sql = format!("SELECT {MEMORY_COLUMNS} FROM memory WHERE TRUE");
    let mut params: Vec<String> = Vec::new();
    if let Some(kind) = filter.kind {
        params.push(kind.as_str().to_owned());
        sql.push_str(&format!(" AND kind = ${}", params.len()));
    }
    if let Some(task) = &filter.task_id {
        params.push(load_task(tx, task)?.id);
        sql.push_str(&format!(" AND task_id = ${}", params.len()));
    }
    let limit = filter
        .limit
        .map_or_else(|| "ALL".to_owned(), |l| l.to_string());
    sql.push_str(&format!(" ORDER BY updated_at DESC, id DESC LIMIT {limit}"));
    let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = params
        .iter()
        .map(|p| p as &(dyn postgres::types::ToSql + Sync))
        .collect();
    tx.query(&sql, &refs)?.iter().map(memory_from_row).collect()
}

pub(super) fn touch_session(
    tx: &mut Tx<'_>,
    session: &str,
    tool: Option<&str>,
    now: i64,
) -> Result<()> {
    tx.execute(
        "INSERT INTO sessions (id, tool, started_at, last_seen_at) VALUES ($1, $2, $3, $3)
         ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at,
           tool = coalesce(sessions.tool, excluded.tool), ended_at = NULL",
        &[&session, &tool, &now],
    )?;
    Ok(())
}

pub(super) fn end_session(tx: &mut Tx<'_>, session: &str, actor: &str) -> Result<Session> {
    let now = now_millis();
    touch_session(tx, session, None, now)?;
    tx.execute(
        "UPDATE sessions SET ended_at = $1 WHERE id = $2",
        &[&now, &session],
    )?;
    record(tx, None, changes::session_ended(session, actor))?;
    load_session(tx, session)?.ok_or_else(|| StoreError::NotFound(session.to_owned()))
}

pub(super) fn load_session(tx: &mut Tx<'_>, session: &str) -> Result<Option<Session>> {
    tx.query_opt(
        &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1"),
        &[&session],
    )?
    .map(|row| session_from_row(&row))
    .transpose()
}

pub(super) fn latest_session(tx: &mut Tx<'_>) -> Result<Option<Session>> {
    tx.query_opt(
        &format!(
            "SELECT {SESSION_COLUMNS} FROM sessions ORDER BY last_seen_at DESC, id DESC LIMIT 1"
        ),
        &[],
    )?
    .map(|row| session_from_row(&row))
    .transpose()
}
