//! Full-text search over tasks, memory and history with SQLite FTS5.
//!
//! One contentless index (`search_fts`, kept by triggers) holds the terms of
//! every task, memory and event. A hit's rowid says what it is (see the
//! migration): the text shown with it is read back from its source row, or
//! from the compressed archive chunk for archived events.

use rusqlite::{Connection, OptionalExtension};
use taskdaemon_core::tracked::SearchHit;

use super::history::archived_event;
use super::memory::memory_from_row;
use super::rows::{EVENT_COLUMNS, TASK_COLUMNS, event_from_row, task_from_row};
use crate::Result;
use crate::search_text::{
    RANK_WINDOW, event_hit, is_prefix_term, memory_hit, no_terms, query_terms, task_hit,
};

/// An FTS5 expression matching all (`AND`) or any (`OR`) of `terms`; with
/// `prefix`, the terms [`is_prefix_term`] accepts also match longer words.
///
/// Each term is quoted, so nothing a user types is read as FTS5 syntax.
fn match_expression(terms: &[String], joiner: &str, prefix: bool) -> String {
    terms
        .iter()
        .map(|t| {
            if prefix && is_prefix_term(t) {
                format!("\"{t}\"*")
            } else {
                format!("\"{t}\"")
            }
        })
        .collect::<Vec<_>>()
        .join(joiner)
}

/// Ranked hits for `query`.
///
/// Whole words first: a prefix query reads every word sharing the prefix, so
/// it only runs when whole words found fewer than `limit` entries. Entries
/// with all the words come first; when none has them all, entries with any.
pub(super) fn search(conn: &Connection, query: &str, limit: usize) -> Result<Vec<SearchHit>> {
    let terms = query_terms(query);
    if terms.is_empty() {
        return Err(no_terms(query));
    }
    let joiners: &[&str] = if terms.len() > 1 {
        &[" AND ", " OR "]
    } else {
        &[" AND "]
    };
    let mut ranked: Vec<(i64, f64)> = Vec::new();
    for joiner in joiners {
        ranked = ranked_rowids(conn, &match_expression(&terms, joiner, false), limit)?;
        let prefixed = match_expression(&terms, joiner, true);
        if ranked.len() < limit && prefixed != match_expression(&terms, joiner, false) {
            for hit in ranked_rowids(conn, &prefixed, limit)? {
                if ranked.len() < limit && !ranked.iter().any(|(rowid, _)| *rowid == hit.0) {
                    ranked.push(hit);
                }
            }
        }
        if !ranked.is_empty() {
            break;
        }
    }
    let mut hits = Vec::with_capacity(ranked.len());
    for (rowid, score) in ranked {
        if let Some(hit) = resolve(conn, rowid, score, &terms)? {
            hits.push(hit);
        }
    }
    Ok(hits)
}

/// The best `limit` rowids among the newest [`RANK_WINDOW`] matches, titles
/// weighing five times the body.
fn ranked_rowids(conn: &Connection, expression: &str, limit: usize) -> Result<Vec<(i64, f64)>> {
    // Walking matches newest first is cheap (no ranking): find where the window starts.
    let floor: i64 = conn
        .prepare_cached(&format!(
            "SELECT rowid FROM search_fts WHERE search_fts MATCH ?1
             ORDER BY rowid DESC LIMIT 1 OFFSET {}",
            RANK_WINDOW - 1
        ))?
        .query_row([expression], |r| r.get(0))
        .optional()?
        .unwrap_or(i64::MIN);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT rowid, bm25(search_fts, 5.0, 1.0) AS score FROM search_fts
         WHERE search_fts MATCH ?1 AND rowid >= ?2 ORDER BY score LIMIT {}",
        super::limit_literal(limit)
    ))?;
    let rows = stmt.query_map(rusqlite::params![expression, floor], |r| {
        Ok((r.get::<_, i64>(0)?, -r.get::<_, f64>(1)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Turns an index rowid back into a hit; `None` when its source is gone.
fn resolve(
    conn: &Connection,
    rowid: i64,
    score: f64,
    terms: &[String],
) -> Result<Option<SearchHit>> {
    let key = rowid / 4;
    let hit = match rowid % 4 {
        1 => conn
            .prepare_cached(&format!(
                "SELECT {TASK_COLUMNS} FROM tasks WHERE search_key = ?1"
            ))?
            .query_row([key], task_from_row)
            .optional()?
            .transpose()?
            .map(|task| task_hit(task, score, terms)),
        2 => conn
            .prepare_cached("SELECT * FROM memory WHERE id = ?1")?
            .query_row([key], memory_from_row)
            .optional()?
            .transpose()?
            .map(|memory| memory_hit(memory, key, score, terms)),
        3 => {
            let live = conn
                .prepare_cached(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE seq = ?1"
                ))?
                .query_row([key], event_from_row)
                .optional()?
                .transpose()?;
            let event = match live {
                Some(event) => Some(event),
                None => archived_event(conn, key)?,
            };
            event.map(|event| event_hit(event, score, terms))
        }
        _ => None,
    };
    Ok(hit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_never_becomes_fts_syntax() {
        let terms = query_terms("NOT \"db\" (locked) OR x-y:z*");
        assert_eq!(terms, ["not", "db", "locked", "or", "x", "y", "z"]);
        assert_eq!(
            match_expression(&terms[..3], " AND ", true),
            "\"not\"* AND \"db\" AND \"locked\"*"
        );
        assert_eq!(
            match_expression(&terms[..2], " OR ", false),
            "\"not\" OR \"db\""
        );
    }
}
