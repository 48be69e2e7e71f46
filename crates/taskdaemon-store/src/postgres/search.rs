//! Full-text search in PostgreSQL: a tsvector per document in `search_docs`
//! (kept by triggers, see the migration), ranked with `ts_rank`, titles
//! weighing five times the body as with SQLite's bm25 weights.

use taskdaemon_core::tracked::SearchHit;

use super::Tx;
use super::history::archived_event;
use super::rows::{
    EVENT_COLUMNS, MEMORY_COLUMNS, TASK_COLUMNS, event_from_row, memory_from_row, task_from_row,
};
use crate::Result;
use crate::search_text::{
    KEY_EVENT, KEY_MEMORY, KEY_TASK, RANK_WINDOW, event_hit, is_prefix_term, memory_hit, no_terms,
    query_terms, task_hit,
};

/// A tsquery matching all (`&`) or any (`|`) of `terms`. Terms hold only
/// letters and digits and are quoted besides, so nothing a user types is
/// read as tsquery syntax.
fn tsquery(terms: &[String], joiner: &str) -> String {
    terms
        .iter()
        .map(|t| {
            if is_prefix_term(t) {
                format!("'{t}':*")
            } else {
                format!("'{t}'")
            }
        })
        .collect::<Vec<_>>()
        .join(joiner)
}

pub(super) fn search(tx: &mut Tx<'_>, query: &str, limit: usize) -> Result<Vec<SearchHit>> {
    let terms = query_terms(query);
    if terms.is_empty() {
        return Err(no_terms(query));
    }
    let mut ranked = ranked_docs(tx, &tsquery(&terms, " & "), limit)?;
    if ranked.is_empty() && terms.len() > 1 {
        ranked = ranked_docs(tx, &tsquery(&terms, " | "), limit)?;
    }
    let mut hits = Vec::with_capacity(ranked.len());
    for (doc, score) in ranked {
        if let Some(hit) = resolve(tx, doc, score, &terms)? {
            hits.push(hit);
        }
    }
    Ok(hits)
}

/// The best `limit` documents among the newest [`RANK_WINDOW`] matches.
fn ranked_docs(tx: &mut Tx<'_>, query: &str, limit: usize) -> Result<Vec<(i64, f64)>> {
    // Weights are {D, C, B, A}: bodies are D, titles A.
    let rows = tx.query(
        "SELECT doc, ts_rank('{0.2, 0.2, 0.2, 1.0}', tsv, q)::float8 AS score
         FROM (SELECT doc, tsv FROM search_docs, to_tsquery('simple', $1) q
               WHERE tsv @@ q ORDER BY doc DESC LIMIT $2) newest,
              to_tsquery('simple', $1) q
         ORDER BY score DESC, doc DESC LIMIT $3",
        &[&query, &RANK_WINDOW, &(limit as i64)],
    )?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Turns a document key back into a hit; `None` when its source is gone.
fn resolve(tx: &mut Tx<'_>, doc: i64, score: f64, terms: &[String]) -> Result<Option<SearchHit>> {
    let key = doc / 4;
    Ok(match doc % 4 {
        KEY_TASK => tx
            .query_opt(
                &format!("SELECT {TASK_COLUMNS} FROM tasks WHERE search_key = $1"),
                &[&key],
            )?
            .map(|row| task_from_row(&row))
            .transpose()?
            .map(|task| task_hit(task, score, terms)),
        KEY_MEMORY => tx
            .query_opt(
                &format!("SELECT {MEMORY_COLUMNS} FROM memory WHERE id = $1"),
                &[&key],
            )?
            .map(|row| memory_from_row(&row))
            .transpose()?
            .map(|memory| memory_hit(memory, key, score, terms)),
        KEY_EVENT => {
            let live = tx
                .query_opt(
                    &format!("SELECT {EVENT_COLUMNS} FROM events WHERE seq = $1"),
                    &[&key],
                )?
                .map(|row| event_from_row(&row))
                .transpose()?;
            let event = match live {
                Some(event) => Some(event),
                None => archived_event(tx, key)?,
            };
            event.map(|event| event_hit(event, score, terms))
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_never_becomes_tsquery_syntax() {
        let terms = query_terms("NOT \"db\" (locked) & x|y:*!");
        assert_eq!(terms, ["not", "db", "locked", "x", "y"]);
        assert_eq!(tsquery(&terms[..3], " & "), "'not':* & 'db' & 'locked':*");
    }
}
