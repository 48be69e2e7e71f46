//! Decay of old closed work: which tracked tasks may be compacted, what an
//! agent is given to summarise, and the summaries it hands back.
//!
//! Compacting replaces a task's description with a summary the agent wrote
//! (no model is called here, so no API key is needed) and clears its note;
//! the original text is kept beside it, stays searchable, and comes back
//! with `task restore`.

use serde::{Deserialize, Serialize};

use crate::task::{TaskKind, TaskRecord};
use crate::time::{Millis, serde_rfc3339};

/// What a task said before it was compacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Original {
    pub description: Option<String>,
    pub note: Option<String>,
    #[serde(with = "serde_rfc3339")]
    pub compacted_at: Millis,
}

/// A closed task offered for compaction, with the text to summarise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompactCandidate {
    pub id: String,
    pub title: String,
    pub status: crate::Status,
    pub labels: Vec<String>,
    pub description: Option<String>,
    pub note: Option<String>,
    pub files_modified: Vec<String>,
    #[serde(with = "serde_rfc3339::option")]
    pub finished_at: Option<Millis>,
}

impl From<&TaskRecord> for CompactCandidate {
    fn from(task: &TaskRecord) -> Self {
        Self {
            id: task.id.clone(),
            title: task.title().to_owned(),
            status: task.status,
            labels: task.labels.clone(),
            description: task.description.clone(),
            note: task.note.clone(),
            files_modified: task.files_modified.clone(),
            finished_at: task.finished_at,
        }
    }
}

/// One summary an agent wrote, as `task compact --apply FILE` reads it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CompactSummary {
    pub id: String,
    pub summary: String,
}

/// Whether `task` may be compacted: tracked, ended before `cutoff`, and not
/// compacted already (`compacted`).
pub fn compactable(task: &TaskRecord, compacted: bool, cutoff: Millis) -> bool {
    task.kind == TaskKind::Manual
        && task.status.is_terminal()
        && task.finished_at.is_some_and(|at| at < cutoff)
        && !compacted
}

/// Why `task` may not be compacted now, in words; `None` when it may.
pub fn refusal(task: &TaskRecord, compacted: bool, summary: &str) -> Option<String> {
    let id = &task.id;
    if task.kind != TaskKind::Manual {
        return Some(format!("{id} is not a tracked task"));
    }
    if !task.status.is_terminal() {
        return Some(format!(
            "{id} has not ended ({}): only closed work decays",
            task.status
        ));
    }
    if compacted {
        return Some(format!(
            "{id} is compacted already (`taskdaemon task restore {id}` first)"
        ));
    }
    if summary.trim().is_empty() {
        return Some(format!("the summary of {id} is empty"));
    }
    None
}

/// Parses the file of summaries: a JSON array of `{"id", "summary"}`.
pub fn parse_summaries(text: &str) -> Result<Vec<CompactSummary>, String> {
    let summaries: Vec<CompactSummary> = serde_json::from_str(text).map_err(|e| {
        format!("{e} (expected a JSON array of {{\"id\": \"TASK-3\", \"summary\": \"...\"}})")
    })?;
    if let Some((n, _)) = summaries
        .iter()
        .enumerate()
        .find(|(_, s)| s.summary.trim().is_empty())
    {
        return Err(format!("entry {}: the summary is empty", n + 1));
    }
    Ok(summaries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_parse_and_name_bad_entries() {
        let ok = parse_summaries(r#"[{"id": "TASK-1", "summary": "did it"}]"#).unwrap();
        assert_eq!(ok[0].id, "TASK-1");
        let err = parse_summaries(r#"[{"id": "TASK-1", "summary": " "}]"#).unwrap_err();
        assert!(err.contains("entry 1"), "{err}");
        let err = parse_summaries(r#"[{"id": "TASK-1", "text": "x"}]"#).unwrap_err();
        assert!(err.contains("text"), "{err}");
    }
}
