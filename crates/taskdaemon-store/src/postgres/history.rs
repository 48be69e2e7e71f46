//! The audit trail in PostgreSQL: reading sequenced events, paging across
//! the archive, and archiving old events into compressed chunks (the chunk
//! format is shared with SQLite, see `crate::archive`).
//!
//! Only sequenced events (`seq IS NOT NULL`) are read: the caller runs
//! `td_sequence_events()` first, so every committed event is included.

use taskdaemon_core::Event;

use super::Tx;
use super::rows::{EVENT_COLUMNS, event_from_row};
use crate::archive::{self, CHUNK_EVENTS, archived_page, decode_chunk};
use crate::{HistoryFilter, Result};

pub(super) fn page(
    tx: &mut Tx<'_>,
    filter: &HistoryFilter,
    after_seq: i64,
    limit: usize,
) -> Result<Vec<Event>> {
    let chunks: Vec<i64> = tx
        .query(
            "SELECT chunk FROM event_archive WHERE last_seq > $1 AND last_at >= $2 ORDER BY first_seq",
            &[&after_seq, &filter.since.unwrap_or(i64::MIN)],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut events = archived_page(
        &chunks,
        |chunk| read_chunk(tx, chunk),
        filter,
        after_seq,
        limit,
    )?;
    if events.len() == limit {
        return Ok(events);
    }
    let cursor = events.last().map_or(after_seq, |e| e.seq);
    let rows = tx.query(
        &format!(
            "SELECT {EVENT_COLUMNS} FROM events
             WHERE seq > $1 AND at >= $2 AND ($3::text IS NULL OR task_id = $3)
             ORDER BY seq LIMIT $4"
        ),
        &[
            &cursor,
            &filter.since.unwrap_or(i64::MIN),
            &filter.task_id,
            &((limit - events.len()) as i64),
        ],
    )?;
    for row in &rows {
        events.push(event_from_row(row)?);
    }
    Ok(events)
}

/// Moves up to one chunk of sequenced events older than `before` into the
/// archive; returns how many moved.
pub(super) fn archive_one_chunk(tx: &mut Tx<'_>, before: i64) -> Result<usize> {
    // Only a prefix of the log: stop at the first event that is not old enough.
    let boundary: i64 = tx
        .query_one(
            "SELECT coalesce((SELECT min(seq) FROM events WHERE at >= $1 AND seq IS NOT NULL),
                             (SELECT coalesce(max(seq), 0) + 1 FROM events))",
            &[&before],
        )?
        .get(0);
    let events = tx
        .query(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE seq < $1 ORDER BY seq LIMIT $2 FOR UPDATE"
            ),
            &[&boundary, &(CHUNK_EVENTS as i64)],
        )?
        .iter()
        .map(event_from_row)
        .collect::<Result<Vec<Event>>>()?;
    let Some(chunk) = archive::chunk(&events)? else {
        return Ok(0);
    };
    tx.execute(
        "INSERT INTO event_archive (first_seq, last_seq, first_at, last_at, count, data)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &chunk.first_seq,
            &chunk.last_seq,
            &chunk.first_at,
            &chunk.last_at,
            &chunk.count,
            &chunk.data,
        ],
    )?;
    tx.execute(
        "DELETE FROM events WHERE seq BETWEEN $1 AND $2",
        &[&chunk.first_seq, &chunk.last_seq],
    )?;
    Ok(events.len())
}

pub(super) fn read_chunk(tx: &mut Tx<'_>, chunk: i64) -> Result<Vec<Event>> {
    let data: Vec<u8> = tx
        .query_one("SELECT data FROM event_archive WHERE chunk = $1", &[&chunk])?
        .try_get(0)?;
    decode_chunk(&data)
}

pub(super) fn archived_event(tx: &mut Tx<'_>, seq: i64) -> Result<Option<Event>> {
    let chunk: Option<i64> = tx
        .query_opt(
            "SELECT chunk FROM event_archive WHERE first_seq <= $1 AND last_seq >= $1 LIMIT 1",
            &[&seq],
        )?
        .map(|r| r.get(0));
    match chunk {
        Some(chunk) => Ok(read_chunk(tx, chunk)?.into_iter().find(|e| e.seq == seq)),
        None => Ok(None),
    }
}

pub(super) fn chunk_ids(tx: &mut Tx<'_>) -> Result<Vec<i64>> {
    Ok(tx
        .query("SELECT chunk FROM event_archive ORDER BY first_seq", &[])?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

pub(super) fn check_chunk(tx: &mut Tx<'_>, chunk: i64) -> Result<Option<String>> {
    let count: i64 = tx
        .query_one(
            "SELECT count FROM event_archive WHERE chunk = $1",
            &[&chunk],
        )?
        .get(0);
    Ok(match read_chunk(tx, chunk) {
        Ok(events) if events.len() as i64 == count => None,
        Ok(events) => Some(format!(
            "archive chunk {chunk} holds {} events, expected {count}",
            events.len()
        )),
        Err(e) => Some(format!("archive chunk {chunk} cannot be read: {e}")),
    })
}
