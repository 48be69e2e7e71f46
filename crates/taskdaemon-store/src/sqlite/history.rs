//! The audit trail over time: paging through events, live and archived, and
//! archiving old events into compressed chunks.
//!
//! Archived events always form a prefix of the log (every archived seq is
//! below every live one), so a page is "the archive chunks past the cursor,
//! then the live table", and nothing needs the whole history in memory: at
//! most one decompressed chunk at a time.

use rusqlite::{Connection, OptionalExtension, params};
use taskdaemon_core::Event;

use super::rows::{EVENT_COLUMNS, event_from_row};
use crate::archive::{self, CHUNK_EVENTS, archived_page, decode_chunk};
use crate::{HistoryFilter, Result};

/// Up to `limit` events after `after_seq` matching `filter`, oldest first.
pub(super) fn page(
    conn: &Connection,
    filter: &HistoryFilter,
    after_seq: i64,
    limit: usize,
) -> Result<Vec<Event>> {
    let chunks: Vec<i64> = conn
        .prepare_cached(
            "SELECT chunk FROM event_archive WHERE last_seq > ?1 AND last_at >= ?2 ORDER BY first_seq",
        )?
        .query_map(params![after_seq, filter.since.unwrap_or(i64::MIN)], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let read = |chunk| read_chunk(conn, chunk);
    let mut events = archived_page(&chunks, read, filter, after_seq, limit)?;
    if events.len() == limit {
        return Ok(events);
    }
    let cursor = events.last().map_or(after_seq, |e| e.seq);
    let mut sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE seq > ?1");
    let mut values: Vec<rusqlite::types::Value> = vec![cursor.into()];
    if let Some(since) = filter.since {
        values.push(since.into());
        sql.push_str(&format!(" AND at >= ?{}", values.len()));
    }
    if let Some(task) = &filter.task_id {
        values.push(task.clone().into());
        sql.push_str(&format!(" AND task_id = ?{}", values.len()));
    }
    sql.push_str(&format!(" ORDER BY seq LIMIT {}", limit - events.len()));
    let mut stmt = conn.prepare_cached(&sql)?;
    for row in stmt.query_map(rusqlite::params_from_iter(values), event_from_row)? {
        events.push(row??);
    }
    Ok(events)
}

/// Moves up to one chunk of events older than `before` into the archive.
/// Returns how many events moved (0 when there is nothing left to archive).
pub(super) fn archive_one_chunk(tx: &Connection, before: i64) -> Result<usize> {
    // Only a prefix of the log: stop at the first event that is not old enough.
    let boundary: i64 = tx.query_row(
        "SELECT coalesce((SELECT min(seq) FROM events WHERE at >= ?1),
                         (SELECT coalesce(max(seq), 0) + 1 FROM events))",
        [before],
        |r| r.get(0),
    )?;
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE seq < ?1 ORDER BY seq LIMIT {CHUNK_EVENTS}"
    ))?;
    let events = stmt
        .query_map([boundary], event_from_row)?
        .map(|row| row?)
        .collect::<Result<Vec<Event>>>()?;
    let Some(chunk) = archive::chunk(&events)? else {
        return Ok(0);
    };
    tx.prepare_cached(
        "INSERT INTO event_archive (first_seq, last_seq, first_at, last_at, count, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        chunk.first_seq,
        chunk.last_seq,
        chunk.first_at,
        chunk.last_at,
        chunk.count,
        chunk.data
    ])?;
    tx.execute(
        "DELETE FROM events WHERE seq BETWEEN ?1 AND ?2",
        params![chunk.first_seq, chunk.last_seq],
    )?;
    Ok(events.len())
}

/// The events of one archive chunk, oldest first.
pub(super) fn read_chunk(conn: &Connection, chunk: i64) -> Result<Vec<Event>> {
    let data: Vec<u8> = conn
        .prepare_cached("SELECT data FROM event_archive WHERE chunk = ?1")?
        .query_row([chunk], |r| r.get(0))?;
    decode_chunk(&data)
}

/// One archived event by sequence number.
pub(super) fn archived_event(conn: &Connection, seq: i64) -> Result<Option<Event>> {
    let chunk: Option<i64> = conn
        .prepare_cached(
            "SELECT chunk FROM event_archive WHERE first_seq <= ?1 AND last_seq >= ?1 LIMIT 1",
        )?
        .query_row([seq], |r| r.get(0))
        .optional()?;
    match chunk {
        Some(chunk) => Ok(read_chunk(conn, chunk)?.into_iter().find(|e| e.seq == seq)),
        None => Ok(None),
    }
}

/// Every archive chunk id, in log order.
pub(super) fn chunk_ids(conn: &Connection) -> Result<Vec<i64>> {
    Ok(conn
        .prepare_cached("SELECT chunk FROM event_archive ORDER BY first_seq")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?)
}

/// Sanity of one chunk: it decodes and holds the count it claims.
pub(super) fn check_chunk(conn: &Connection, chunk: i64) -> Result<Option<String>> {
    let count: i64 = conn.query_row(
        "SELECT count FROM event_archive WHERE chunk = ?1",
        [chunk],
        |r| r.get(0),
    )?;
    Ok(match read_chunk(conn, chunk) {
        Ok(events) if events.len() as i64 == count => None,
        Ok(events) => Some(format!(
            "archive chunk {chunk} holds {} events, expected {count}",
            events.len()
        )),
        Err(e) => Some(format!("archive chunk {chunk} cannot be read: {e}")),
    })
}
