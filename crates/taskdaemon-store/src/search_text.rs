//! What a search means, whichever index answers it: how a query splits into
//! words, which words match as prefixes, how many matches are ranked, and how
//! a hit is shown. SQLite answers with FTS5, PostgreSQL with tsvector; both
//! call these.

use taskdaemon_core::tracked::{Memory, SearchHit, SearchSource, excerpt, memory_id};
use taskdaemon_core::{Event, TaskRecord};

/// Characters of matching text shown with a hit.
pub(crate) const EXCERPT_CHARS: usize = 120;
/// A query matching more entries than this ranks only the newest this many:
/// ranking costs time in proportion to the matches, and for a word found
/// everywhere, recent entries are the ones an agent is after.
pub(crate) const RANK_WINDOW: i64 = 2000;
/// Terms this long or longer also match words they begin (`lock` finds `locked`).
pub(crate) const PREFIX_MIN_CHARS: usize = 3;

/// Index keys say what a hit is: `key * 4 + 1` a task (its creation order),
/// `id * 4 + 2` a memory, `seq * 4 + 3` an event.
pub(crate) const KEY_TASK: i64 = 1;
pub(crate) const KEY_MEMORY: i64 = 2;
pub(crate) const KEY_EVENT: i64 = 3;

/// The words of a free-text query. Only letters and digits survive, so
/// nothing a user types is read as query syntax by either index.
pub(crate) fn query_terms(query: &str) -> Vec<String> {
    query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Whether `term` also matches the words it begins.
pub(crate) fn is_prefix_term(term: &str) -> bool {
    term.chars().count() >= PREFIX_MIN_CHARS
}

/// The error for a query with nothing to look for.
pub(crate) fn no_terms(query: &str) -> crate::StoreError {
    crate::StoreError::Invalid(format!("search query '{query}' has no words to look for"))
}

pub(crate) fn task_hit(task: TaskRecord, score: f64, terms: &[String]) -> SearchHit {
    let body = [
        task.description.as_deref(),
        task.note.as_deref(),
        Some(task.command.as_str()),
    ]
    .into_iter()
    .flatten()
    .filter(|part| !part.is_empty())
    .collect::<Vec<_>>()
    .join(" — ");
    SearchHit {
        source: SearchSource::Task,
        id: task.id.clone(),
        task_id: Some(task.id.clone()),
        title: format!("{} ({})", task.title(), task.status),
        excerpt: excerpt(&format!("{} {body}", task.title()), terms, EXCERPT_CHARS),
        score,
        at: task.updated_at,
    }
}

pub(crate) fn memory_hit(memory: Memory, number: i64, score: f64, terms: &[String]) -> SearchHit {
    SearchHit {
        source: SearchSource::Memory,
        id: memory_id(number),
        task_id: memory.task_id.clone(),
        title: match &memory.key {
            Some(k) => format!("{} {k}", memory.kind),
            None => memory.kind.to_string(),
        },
        excerpt: excerpt(&memory.text, terms, EXCERPT_CHARS),
        score,
        at: memory.updated_at,
    }
}

pub(crate) fn event_hit(event: Event, score: f64, terms: &[String]) -> SearchHit {
    SearchHit {
        source: SearchSource::History,
        id: format!("#{}", event.seq),
        task_id: event.task_id.clone(),
        title: format!(
            "{} {}",
            event.task_id.as_deref().unwrap_or("workspace"),
            event.kind
        ),
        excerpt: excerpt(&event.message, terms, EXCERPT_CHARS),
        score,
        at: event.at,
    }
}
