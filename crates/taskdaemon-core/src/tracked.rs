//! Tracked work and agents' memory: the `manual` tasks an agent does itself,
//! what it decided and learned, and what a search finds.
//!
//! The rules for a tracked task's life (which command moves it where) live
//! here; the store applies them inside its transactions.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::status::Status;
use crate::task::TaskRecord;
use crate::time::{Millis, serde_rfc3339};

/// Named priorities; any integer works too, higher comes first.
const PRIORITY_NAMES: [(&str, i32); 4] =
    [("low", -10), ("normal", 0), ("high", 10), ("urgent", 20)];

/// Parses a priority: an integer (higher is more urgent) or `low`, `normal`,
/// `high`, `urgent`.
pub fn parse_priority(text: &str) -> Result<i32, String> {
    if let Ok(n) = text.trim().parse::<i32>() {
        return Ok(n);
    }
    PRIORITY_NAMES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(text.trim()))
        .map(|&(_, value)| value)
        .ok_or_else(|| {
            format!("invalid priority '{text}': use an integer or low, normal, high, urgent")
        })
}

/// A tracked task about to be created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewTracked {
    pub title: String,
    pub description: Option<String>,
    pub priority: i32,
    pub labels: Vec<String>,
    /// Ids of tasks that must succeed before this one can start.
    pub depends_on: Vec<String>,
    /// The task this is a subtask of: the new task's id is the parent's with
    /// `.N` appended (`TASK-12.1`), and a `parent-child` link joins them.
    pub parent: Option<String>,
    /// Lower-case tool name, giving the id prefix.
    pub tool: Option<String>,
    pub session: Option<String>,
    /// How its id is minted.
    pub id_scheme: crate::id::IdScheme,
}

impl NewTracked {
    /// Checks what the store cannot: a title, sane labels.
    pub fn validate(&self) -> Result<(), String> {
        if self.title.trim().is_empty() {
            return Err("a task needs a non-empty title".to_owned());
        }
        for label in &self.labels {
            validate_label(label)?;
        }
        Ok(())
    }
}

/// A label is one word: letters, digits, `-`, `_`, `.`, `:` or `/`.
pub fn validate_label(label: &str) -> Result<(), String> {
    let ok = !label.is_empty()
        && label.len() <= 64
        && label
            .chars()
            .all(|c| c.is_alphanumeric() || "-_.:/".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid label '{label}': use up to 64 letters, digits, '-', '_', '.', ':' or '/'"
        ))
    }
}

/// Changes to a tracked task's scope; `None` and empty lists change nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackedEdit {
    pub title: Option<String>,
    pub description: Option<String>,
    pub priority: Option<i32>,
    pub add_labels: Vec<String>,
    pub remove_labels: Vec<String>,
}

impl TrackedEdit {
    pub fn is_empty(&self) -> bool {
        self == &TrackedEdit::default()
    }

    /// Checks what the store cannot: a non-empty title, sane labels.
    pub fn validate(&self) -> Result<(), String> {
        if self.is_empty() {
            return Err(
                "nothing to change: give --title, --description, --priority, --label or --unlabel"
                    .to_owned(),
            );
        }
        if self.title.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err("a task needs a non-empty title".to_owned());
        }
        for label in &self.add_labels {
            validate_label(label)?;
        }
        Ok(())
    }
}

/// What a person or agent does to a tracked task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackedAction {
    Start,
    Done { note: Option<String> },
    Fail { reason: String },
    Cancel,
}

impl TrackedAction {
    /// The status the action moves a task to; the state machine decides whether
    /// the move is legal from where the task is.
    pub fn target(&self) -> Status {
        match self {
            TrackedAction::Start => Status::Running,
            TrackedAction::Done { .. } => Status::Succeeded,
            TrackedAction::Fail { .. } => Status::Failed,
            TrackedAction::Cancel => Status::Cancelled,
        }
    }

    /// The note or reason kept on the task.
    pub fn note(&self) -> Option<&str> {
        match self {
            TrackedAction::Done { note } => note.as_deref(),
            TrackedAction::Fail { reason } => Some(reason),
            TrackedAction::Start | TrackedAction::Cancel => None,
        }
    }

    /// The verb for messages (`start`, `done`...).
    pub fn verb(&self) -> &'static str {
        match self {
            TrackedAction::Start => "start",
            TrackedAction::Done { .. } => "done",
            TrackedAction::Fail { .. } => "fail",
            TrackedAction::Cancel => "cancel",
        }
    }
}

/// A tracked task as `task list/show --json` print it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackedView {
    pub id: String,
    pub title: String,
    pub status: Status,
    pub priority: i32,
    pub labels: Vec<String>,
    pub depends_on: Vec<String>,
    pub links: Vec<crate::links::TaskLink>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollup: Option<crate::links::Rollup>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim: Option<crate::links::Claim>,
    pub description: Option<String>,
    pub note: Option<String>,
    pub session: Option<String>,
    pub files_modified: Vec<String>,
    #[serde(with = "serde_rfc3339")]
    pub created_at: Millis,
    #[serde(with = "serde_rfc3339::option")]
    pub started_at: Option<Millis>,
    #[serde(with = "serde_rfc3339::option")]
    pub finished_at: Option<Millis>,
    #[serde(with = "serde_rfc3339")]
    pub updated_at: Millis,
    /// Its gates (`task show`: all; listings: those not open).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<crate::gate::Gate>,
    /// Why it is blocked for good: a gate that can never open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_reason: Option<String>,
}

impl TrackedView {
    /// Attaches the task's gates and the reason one of them blocks it for good.
    pub fn with_gates(mut self, gates: Vec<crate::gate::Gate>) -> Self {
        self.blocked_reason = crate::gate::blocked_reason(&gates);
        self.gates = gates;
        self
    }
}

impl From<&TaskRecord> for TrackedView {
    fn from(task: &TaskRecord) -> Self {
        Self {
            id: task.id.clone(),
            title: task.title().to_owned(),
            status: task.status,
            priority: task.priority,
            labels: task.labels.clone(),
            depends_on: task.depends_on.clone(),
            links: task.links.clone(),
            rollup: task.rollup,
            claim: task.claim.clone(),
            description: task.description.clone(),
            note: task.note.clone(),
            session: task.session.clone(),
            files_modified: task.files_modified.clone(),
            created_at: task.created_at,
            started_at: task.started_at,
            finished_at: task.finished_at,
            updated_at: task.updated_at,
            gates: Vec::new(),
            blocked_reason: None,
        }
    }
}

/// What a memory records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum MemoryKind {
    /// A choice made, with its reason, so it is not made again.
    Decision,
    /// Something learned about how this project works.
    Pattern,
    Note,
    Fact,
}

impl MemoryKind {
    pub const ALL: [MemoryKind; 4] = [
        MemoryKind::Decision,
        MemoryKind::Pattern,
        MemoryKind::Note,
        MemoryKind::Fact,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MemoryKind::Decision => "decision",
            MemoryKind::Pattern => "pattern",
            MemoryKind::Note => "note",
            MemoryKind::Fact => "fact",
        }
    }
}

impl fmt::Display for MemoryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MemoryKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        MemoryKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                format!("unknown memory kind '{text}' (expected decision, pattern, note or fact)")
            })
    }
}

/// A memory about to be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMemory {
    pub kind: MemoryKind,
    pub text: String,
    /// The task it belongs to.
    pub task_id: Option<String>,
    /// A key makes the memory a named value: remembering the same key again
    /// replaces the text instead of adding a second memory.
    pub key: Option<String>,
    pub session: Option<String>,
}

impl NewMemory {
    /// Checks what the store cannot: non-empty text and key.
    pub fn validate(&self) -> Result<(), String> {
        if self.text.trim().is_empty() {
            return Err("a memory needs non-empty text".to_owned());
        }
        if self.key.as_deref().is_some_and(|k| k.trim().is_empty()) {
            return Err("a memory key must not be empty".to_owned());
        }
        Ok(())
    }
}

/// A recorded memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Memory {
    /// `MEM-N`.
    pub id: String,
    pub kind: MemoryKind,
    pub text: String,
    pub task_id: Option<String>,
    pub key: Option<String>,
    pub session: Option<String>,
    #[serde(with = "serde_rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Millis,
    #[serde(with = "serde_rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Millis,
}

/// The prefix of memory ids.
pub const MEMORY_PREFIX: &str = "MEM";

/// `MEM-12` for row 12.
pub fn memory_id(number: i64) -> String {
    format!("{MEMORY_PREFIX}-{number}")
}

/// The row number in a memory id (`MEM-12`, `mem-12`, or `12`).
pub fn parse_memory_id(text: &str) -> Option<i64> {
    let number = match text.split_once('-') {
        Some((prefix, n)) if prefix.eq_ignore_ascii_case(MEMORY_PREFIX) => n,
        Some(_) => return None,
        None => text,
    };
    number.parse().ok().filter(|n| *n > 0)
}

/// Where a search hit comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum SearchSource {
    Task,
    Memory,
    /// An event of the history (archived ones included).
    History,
}

/// One ranked search result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchHit {
    pub source: SearchSource,
    /// The task id, memory id, or `#seq` of an event.
    pub id: String,
    /// The task the hit belongs to, when any.
    pub task_id: Option<String>,
    pub title: String,
    /// A short piece of the matching text.
    pub excerpt: String,
    /// Higher is better.
    pub score: f64,
    #[serde(with = "serde_rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Millis,
}

/// One agent conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub tool: Option<String>,
    #[serde(with = "serde_rfc3339")]
    pub started_at: Millis,
    #[serde(with = "serde_rfc3339")]
    pub last_seen_at: Millis,
    #[serde(with = "serde_rfc3339::option")]
    pub ended_at: Option<Millis>,
}

/// A short excerpt of `text` around the first of `terms` found in it.
pub fn excerpt(text: &str, terms: &[String], max_chars: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let lower = flat.to_lowercase();
    let hit = terms
        .iter()
        .filter(|t| !t.is_empty())
        .filter_map(|t| lower.find(&t.to_lowercase()))
        .min()
        .unwrap_or(0);
    // Byte offsets of `lower` match `flat` only for ASCII; count in chars instead.
    let hit_chars = lower[..hit].chars().count();
    let start = hit_chars.saturating_sub(max_chars / 3);
    let total = flat.chars().count();
    let mut out: String = flat.chars().skip(start).take(max_chars).collect();
    if start > 0 {
        out.insert(0, '…');
    }
    if start + max_chars < total {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_parse_numbers_and_names() {
        assert_eq!(parse_priority("5"), Ok(5));
        assert_eq!(parse_priority("-3"), Ok(-3));
        assert_eq!(parse_priority("HIGH"), Ok(10));
        assert!(parse_priority("soon").unwrap_err().contains("'soon'"));
    }

    #[test]
    fn labels_are_single_words() {
        assert!(validate_label("area/store").is_ok());
        assert!(validate_label("two words").is_err());
        assert!(validate_label("").is_err());
    }

    #[test]
    fn memory_ids_round_trip() {
        assert_eq!(parse_memory_id(&memory_id(12)), Some(12));
        assert_eq!(parse_memory_id("mem-3"), Some(3));
        assert_eq!(parse_memory_id("7"), Some(7));
        assert_eq!(parse_memory_id("TASK-3"), None);
        assert_eq!(parse_memory_id("MEM-0"), None);
    }

    #[test]
    fn excerpt_centres_on_the_match() {
        let text = format!("{} needle here {}", "a ".repeat(100), "b ".repeat(100));
        let out = excerpt(&text, &["needle".to_owned()], 40);
        assert!(out.contains("needle"), "{out}");
        assert!(out.starts_with('…') && out.ends_with('…'), "{out}");
        assert_eq!(excerpt("short", &["zzz".to_owned()], 40), "short");
    }

    #[test]
    fn empty_titles_are_refused() {
        let new = NewTracked {
            title: "  ".to_owned(),
            ..Default::default()
        };
        assert!(new.validate().is_err());
    }
}
