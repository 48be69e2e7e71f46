//! The event log in PostgreSQL: appending events and reading sequenced
//! ones (the archive is `history.rs`; sequencing is in the module docs of
//! `postgres.rs`).

use postgres::types::Type;
use taskdaemon_core::time::now_millis;
use taskdaemon_core::{Event, EventKind, NewEvent};

use super::rows::{EVENT_COLUMNS, event_from_row};
use super::{Tx, stored_id};
use crate::changes::Recorded;
use crate::{Result, StoreError};

/// Appends an event on the caller's transaction. Its `seq` is given after
/// commit (see the module docs), so the returned event carries the row id
/// in `seq` only until then; callers that return an event re-read it.
pub(super) fn insert_event(
    tx: &mut Tx<'_>,
    task_id: Option<&str>,
    event: &NewEvent,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> Result<i64> {
    let before = before.as_ref().map(serde_json::Value::to_string);
    let after = after.as_ref().map(serde_json::Value::to_string);
    let row = tx.query_cached_one(
        "INSERT INTO events (at, task_id, actor, kind, message, before, after)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        &[
            (&now_millis(), Type::INT8),
            (&task_id, Type::TEXT),
            (&event.actor, Type::TEXT),
            (&event.kind.as_str(), Type::TEXT),
            (&event.message, Type::TEXT),
            (&before, Type::TEXT),
            (&after, Type::TEXT),
        ],
    )?;
    Ok(row.try_get(0)?)
}

/// Appends a decided event with its `before` and `after`.
pub(super) fn record(tx: &mut Tx<'_>, task_id: Option<&str>, recorded: Recorded) -> Result<i64> {
    let (event, before, after) = recorded;
    insert_event(tx, task_id, &event, before, after)
}

/// Appends an event that changes no row, on task `task_id` (any spelling)
/// or none; returns its row id (its `seq` is given after commit).
pub(super) fn append(tx: &mut Tx<'_>, task_id: Option<&str>, event: &NewEvent) -> Result<i64> {
    let task_id = stored_id(tx, task_id)?;
    insert_event(tx, task_id.as_deref(), event, None, None)
}

/// One sequenced event by its row id.
pub(super) fn by_id(tx: &mut Tx<'_>, id: i64) -> Result<Event> {
    match tx.query_opt(
        &format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = $1 AND seq IS NOT NULL"),
        &[&id],
    )? {
        Some(row) => event_from_row(&row),
        None => Err(StoreError::NotFound(format!("event {id}"))),
    }
}

/// Events after `after_seq` of `kinds` (all when empty), oldest first.
pub(super) fn after(
    tx: &mut Tx<'_>,
    after_seq: i64,
    kinds: &[EventKind],
    limit: usize,
) -> Result<Vec<Event>> {
    let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    tx.query(
        &format!(
            "SELECT {EVENT_COLUMNS} FROM events
             WHERE seq > $1 AND (cardinality($2::text[]) = 0 OR kind = ANY($2))
             ORDER BY seq LIMIT $3"
        ),
        &[&after_seq, &kinds, &(limit as i64)],
    )?
    .iter()
    .map(event_from_row)
    .collect()
}

/// The newest `limit` events after `after_seq` of the given kinds, oldest first.
pub(super) fn newest_after(
    tx: &mut Tx<'_>,
    after_seq: i64,
    kinds: &[EventKind],
    limit: usize,
) -> Result<Vec<Event>> {
    query_newest(tx, EVENT_COLUMNS, after_seq, kinds, limit)?
        .iter()
        .map(event_from_row)
        .collect()
}

/// See [`Store::newest_event_tasks`](crate::Store::newest_event_tasks):
/// [`newest_after`]'s selection, two columns read.
pub(super) fn newest_tasks(
    tx: &mut Tx<'_>,
    after_seq: i64,
    kinds: &[EventKind],
    limit: usize,
) -> Result<Vec<crate::EventTask>> {
    query_newest(tx, "seq, task_id", after_seq, kinds, limit)?
        .iter()
        .map(|row| {
            Ok(crate::EventTask {
                seq: row.try_get(0)?,
                task_id: row.try_get(1)?,
            })
        })
        .collect()
}

/// `columns` of the newest `limit` events after `after_seq` of `kinds`
/// (all when empty), oldest first.
fn query_newest(
    tx: &mut Tx<'_>,
    columns: &str,
    after_seq: i64,
    kinds: &[EventKind],
    limit: usize,
) -> Result<Vec<postgres::Row>> {
    let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    Ok(tx.query(
        &format!(
            "SELECT * FROM (SELECT {columns} FROM events
               WHERE seq > $1 AND (cardinality($2::text[]) = 0 OR kind = ANY($2))
               ORDER BY seq DESC LIMIT $3) newest ORDER BY seq"
        ),
        &[&after_seq, &kinds, &(limit as i64)],
    )?)
}

/// See [`Store::newest_untasked_event`](crate::Store::newest_untasked_event).
pub(super) fn newest_untasked(
    tx: &mut Tx<'_>,
    kinds: &[EventKind],
    prefix: &str,
    lookback: usize,
) -> Result<Option<Event>> {
    let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    tx.query_opt(
        &format!(
            "SELECT * FROM (SELECT {EVENT_COLUMNS} FROM events
               WHERE seq IS NOT NULL AND kind = ANY($1) ORDER BY seq DESC LIMIT $2) newest
             WHERE task_id IS NULL AND starts_with(message, $3) ORDER BY seq DESC LIMIT 1"
        ),
        &[&kinds, &(lookback as i64), &prefix],
    )?
    .as_ref()
    .map(event_from_row)
    .transpose()
}

/// See [`Store::newest_ended`](crate::Store::newest_ended): the newest end
/// events, each joined to its task's id and status.
pub(super) fn newest_ended(
    tx: &mut Tx<'_>,
    after_seq: i64,
    limit: usize,
) -> Result<Vec<crate::EndedRef>> {
    let kinds: Vec<&str> = crate::encoding::ENDED_KINDS
        .iter()
        .map(|k| k.as_str())
        .collect();
    let rows = tx.query(
        "SELECT e.seq, t.id, t.status, e.at
           FROM (SELECT seq, at, task_id FROM events
                  WHERE seq > $1 AND kind = ANY($2) ORDER BY seq DESC LIMIT $3) e
           JOIN tasks t ON t.id = e.task_id",
        &[&after_seq, &kinds, &(limit as i64)],
    )?;
    crate::encoding::ended_refs(rows.iter().map(|row| {
        Ok((
            row.try_get(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
        ))
    }))
}

/// The timing of every exit event that carries one.
pub(super) fn exit_timings(tx: &mut Tx<'_>) -> Result<Vec<crate::ExitTiming>> {
    let mut timings = Vec::new();
    for row in tx.query(crate::EXIT_TIMINGS_SQL, &[])? {
        let after: Option<String> = row.try_get(0)?;
        if let Some(timing) = after.as_deref().and_then(crate::ExitTiming::from_after) {
            timings.push(timing);
        }
    }
    Ok(timings)
}
