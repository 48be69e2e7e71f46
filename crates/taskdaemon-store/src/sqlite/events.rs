//! The event log in SQLite: appending and reading live events (the archive
//! is `history.rs`).

use rusqlite::{Connection, OptionalExtension, params};
use taskdaemon_core::time::now_millis;
use taskdaemon_core::{Event, EventKind, NewEvent};

use super::rows::{EVENT_COLUMNS, event_from_row};
use super::stored_id;
use crate::Result;
use crate::changes::Recorded;

/// Appends an event on the caller's transaction.
pub(super) fn insert_event(
    tx: &Connection,
    task_id: Option<&str>,
    event: &NewEvent,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> Result<Event> {
    let at = now_millis();
    let before_text = before.as_ref().map(serde_json::Value::to_string);
    let after_text = after.as_ref().map(serde_json::Value::to_string);
    let mut insert = tx.prepare_cached(
        "INSERT INTO events (at, task_id, actor, kind, message, before, after)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    insert.execute(params![
        at,
        task_id,
        event.actor,
        event.kind.as_str(),
        event.message,
        before_text,
        after_text
    ])?;
    Ok(Event {
        seq: tx.last_insert_rowid(),
        at,
        task_id: task_id.map(str::to_owned),
        actor: event.actor.clone(),
        kind: event.kind,
        message: event.message.clone(),
        before,
        after,
    })
}

/// Appends a decided event with its `before` and `after`.
pub(super) fn record(tx: &Connection, task_id: Option<&str>, recorded: Recorded) -> Result<Event> {
    let (event, before, after) = recorded;
    insert_event(tx, task_id, &event, before, after)
}

/// Appends an event that changes no row, on task `task_id` (any spelling) or none.
pub(super) fn append(tx: &Connection, task_id: Option<&str>, event: &NewEvent) -> Result<Event> {
    let task_id = stored_id(tx, task_id)?;
    insert_event(tx, task_id.as_deref(), event, None, None)
}

/// Events after `after_seq` of `kinds` (all when empty), oldest first.
pub(super) fn after(
    conn: &Connection,
    after_seq: i64,
    kinds: &[EventKind],
    limit: usize,
) -> Result<Vec<Event>> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE seq > ?1{} ORDER BY seq LIMIT {}",
        kind_filter(kinds),
        super::limit_literal(limit)
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([after_seq], event_from_row)?;
    rows.map(|row| row?).collect()
}

/// The newest `limit` events after `after_seq` of `kinds`, oldest first.
pub(super) fn newest_after(
    conn: &Connection,
    after_seq: i64,
    kinds: &[EventKind],
    limit: usize,
) -> Result<Vec<Event>> {
    let sql = format!(
        "SELECT * FROM ({}) ORDER BY seq",
        newest_sql(EVENT_COLUMNS, kinds, limit)
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([after_seq], event_from_row)?;
    rows.map(|row| row?).collect()
}

/// See [`Store::newest_event_tasks`](crate::Store::newest_event_tasks):
/// [`newest_after`]'s selection, two columns read.
pub(super) fn newest_tasks(
    conn: &Connection,
    after_seq: i64,
    kinds: &[EventKind],
    limit: usize,
) -> Result<Vec<crate::EventTask>> {
    let newest = newest_tasks_with_ends_sql(kinds, limit)
        .unwrap_or_else(|| newest_sql("seq, task_id", kinds, limit));
    let mut stmt = conn.prepare_cached(&format!("SELECT * FROM ({newest}) ORDER BY seq"))?;
    let rows = stmt.query_map([after_seq], |row| {
        Ok(crate::EventTask {
            seq: row.get(0)?,
            task_id: row.get(1)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// [`newest_sql`] with `seq, task_id` when `kinds` has every end kind:
/// the ends come from their covering index (migration 16) in one arm, where
/// the `(kind, seq)` index needs a table lookup per event for its task (500
/// per end kind). `None` for other lists of kinds.
fn newest_tasks_with_ends_sql(kinds: &[EventKind], limit: usize) -> Option<String> {
    let ends = crate::encoding::ENDED_KINDS;
    if !ends.iter().all(|kind| kinds.contains(kind)) {
        return None;
    }
    let literal = super::limit_literal(limit);
    // `INDEXED BY` and the `IN` as in `newest_ended`, for its reasons.
    let mut arms = vec![format!(
        "SELECT * FROM (SELECT seq, task_id FROM events INDEXED BY events_ended \
         WHERE seq > ?1{} ORDER BY seq DESC LIMIT {literal})",
        kind_filter(ends)
    )];
    let others: Vec<EventKind> = kinds
        .iter()
        .filter(|kind| !ends.contains(kind))
        .copied()
        .collect();
    if !others.is_empty() {
        arms.push(format!(
            "SELECT * FROM ({})",
            newest_sql("seq, task_id", &others, limit)
        ));
    }
    Some(format!(
        "SELECT * FROM ({}) ORDER BY seq DESC LIMIT {literal}",
        arms.join(" UNION ALL ")
    ))
}

/// See [`Store::newest_untasked_event`](crate::Store::newest_untasked_event).
/// Each kind's newest `lookback` events through one statement that reads
/// only their `seq` and whether they match (no JSON decoded, one statement
/// prepared), merged here; then the match is read whole.
pub(super) fn newest_untasked(
    conn: &Connection,
    kinds: &[EventKind],
    prefix: &str,
    lookback: usize,
) -> Result<Option<Event>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT seq, task_id IS NULL AND substr(message, 1, length(?2)) = ?2 FROM events \
         WHERE kind = ?1 ORDER BY seq DESC LIMIT {}",
        super::limit_literal(lookback)
    ))?;
    let mut newest: Vec<(i64, bool)> = Vec::new();
    for kind in kinds {
        for row in stmt.query_map(params![kind.as_str(), prefix], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })? {
            newest.push(row?);
        }
    }
    newest.sort_unstable_by_key(|&(seq, _)| std::cmp::Reverse(seq));
    newest.truncate(lookback);
    let Some((seq, _)) = newest.into_iter().find(|(_, matches)| *matches) else {
        return Ok(None);
    };
    conn.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE seq = ?1"
    ))?
    .query_row([seq], event_from_row)?
    .map(Some)
}

/// See [`Store::newest_ended`](crate::Store::newest_ended): the newest end
/// events from their own index (migration 16), each joined to its task's
/// id and status.
pub(super) fn newest_ended(
    conn: &Connection,
    after_seq: i64,
    limit: usize,
) -> Result<Vec<crate::EndedRef>> {
    // `INDEXED BY` because the planner prefers `events_kind` for the `IN`,
    // which reads every end event and sorts them; the `IN` must stay, as it
    // is what lets the partial index answer. CROSS JOIN keeps the events
    // outermost: a lookup per event, never a walk of the tasks. The order
    // is restored from `seq` by `ended_refs`, not asked of the join.
    let sql = format!(
        "SELECT e.seq, t.id, t.status, e.at FROM (SELECT seq, at, task_id FROM events \
         INDEXED BY events_ended WHERE seq > ?1{} ORDER BY seq DESC LIMIT {}) e \
         CROSS JOIN tasks t ON t.id = e.task_id",
        kind_filter(crate::encoding::ENDED_KINDS),
        super::limit_literal(limit)
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([after_seq], |row| {
        Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
    })?;
    crate::encoding::ended_refs(rows.map(|row| Ok(row?)))
}

/// The newest `limit` events after `?1` of `kinds` (all when empty), newest
/// first, with `columns`.
fn newest_sql(columns: &str, kinds: &[EventKind], limit: usize) -> String {
    let limit = super::limit_literal(limit);
    // One arm per kind, each walking the (kind, seq) index back from the
    // newest and stopping at the limit. With `kind IN (...)` SQLite reads
    // every matching event (10,000 exits in a big store) and sorts them to
    // keep the newest few.
    if kinds.is_empty() {
        return format!(
            "SELECT {columns} FROM events WHERE seq > ?1 ORDER BY seq DESC LIMIT {limit}"
        );
    }
    let arms: Vec<String> = kinds
        .iter()
        .map(|kind| {
            format!(
                "SELECT * FROM (SELECT {columns} FROM events \
                 WHERE kind = '{}' AND seq > ?1 ORDER BY seq DESC LIMIT {limit})",
                kind.as_str()
            )
        })
        .collect();
    format!(
        "SELECT * FROM ({}) ORDER BY seq DESC LIMIT {limit}",
        arms.join(" UNION ALL ")
    )
}

/// The newest sequence number ever handed out, 0 when none was.
pub(super) fn last_seq(conn: &Connection) -> Result<i64> {
    // The AUTOINCREMENT high-water mark survives archiving the newest events.
    Ok(conn
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
            [],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// ` AND kind IN (...)` for a non-empty list of kinds. The names are our own
/// constants, never user input.
fn kind_filter(kinds: &[EventKind]) -> String {
    if kinds.is_empty() {
        return String::new();
    }
    let names: Vec<String> = kinds.iter().map(|k| format!("'{}'", k.as_str())).collect();
    format!(" AND kind IN ({})", names.join(", "))
}

/// The timing of every exit event that carries one.
pub(super) fn exit_timings(conn: &Connection) -> Result<Vec<crate::ExitTiming>> {
    let mut stmt = conn.prepare_cached(crate::EXIT_TIMINGS_SQL)?;
    let rows = stmt.query_map([], |row| row.get::<_, Option<String>>(0))?;
    let mut timings = Vec::new();
    for after in rows {
        if let Some(timing) = after?.as_deref().and_then(crate::ExitTiming::from_after) {
            timings.push(timing);
        }
    }
    Ok(timings)
}
