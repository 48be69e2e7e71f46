//! Executors: what runs a task document.
//!
//! Each executor is one module implementing [`Executor`]: the front-matter
//! fields only it takes (read and checked when the document is parsed), the
//! command line and environment it launches, and how its output is summed up
//! into the result (session, cost, tokens, final text, error). Everything
//! else (the common fields, supervision, retries, timeouts, lock files,
//! results and reports) is the same for every executor and lives elsewhere.
//!
//! Adding an executor is one new file here and one line in [`EXECUTORS`].

mod claude_code;
mod command;
mod container;

use std::fmt;
use std::path::Path;

pub use claude_code::StreamSummary;

use crate::document::{DocumentError, TaskDocument};
use crate::executor::ExecutorSettings;
use crate::result::Tokens;

/// Every executor, by the name documents give in `executor:`. The first is
/// the default for documents that name none.
const EXECUTORS: &[&dyn Executor] = &[
    &claude_code::ClaudeCode,
    &command::Command,
    &container::Container,
];

/// One kind of executor.
pub trait Executor: Sync {
    /// The `executor:` value that selects it; also recorded in the store.
    fn name(&self) -> &'static str;

    /// The front-matter fields only this executor takes, besides the common
    /// ones (`executor`, `max_attempts`, `timeout`, `workdir`, `env`,
    /// `priority`). Any other field is an error.
    fn fields(&self) -> &'static [&'static str];

    /// Checks a parsed document for this executor: its own fields (read with
    /// [`TaskDocument::option`], whose errors name line and field) and the
    /// body. Called once, when the document is parsed.
    fn check(&self, doc: &TaskDocument) -> Result<(), DocumentError>;

    /// What to launch for a checked document.
    fn launch(&self, doc: &TaskDocument, settings: &ExecutorSettings) -> Launch;

    /// Sums up the output of a finished task (its stdout log, which holds
    /// every attempt) for the result and report. The default knows nothing
    /// from the output.
    fn summarize(&self, stdout: &Path) -> OutputSummary {
        let _ = stdout;
        OutputSummary::default()
    }
}

/// The command line of an executor, and the variables it adds to the
/// environment (on top of the daemon's and the document's `env:`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Launch {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Run `argv` in this container instead of natively.
    pub container: Option<taskdaemon_core::ContainerSpec>,
}

/// What an executor's output says about the run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutputSummary {
    pub session_id: Option<String>,
    pub num_turns: Option<u32>,
    pub cost_usd: Option<f64>,
    pub tokens: Tokens,
    /// The executor's final answer, for the report.
    pub final_text: Option<String>,
    /// Why the run failed according to its output, if it did.
    pub error: Option<String>,
}

/// A registered executor: what a document and a queue item name.
#[derive(Clone, Copy)]
pub struct ExecutorKind(&'static dyn Executor);

impl ExecutorKind {
    /// The executor called `name`, if one is registered.
    pub fn from_name(name: &str) -> Option<Self> {
        EXECUTORS
            .iter()
            .find(|e| e.name() == name)
            .map(|e| ExecutorKind(*e))
    }

    /// Every registered executor, the default first.
    pub fn all() -> impl Iterator<Item = ExecutorKind> {
        EXECUTORS.iter().map(|e| ExecutorKind(*e))
    }

    /// The executor's name, as documents and the store write it.
    pub fn as_str(self) -> &'static str {
        self.0.name()
    }

    /// The executor itself.
    pub fn executor(self) -> &'static dyn Executor {
        self.0
    }

    /// "claude-code, command": the names, for messages.
    pub fn names() -> String {
        Self::all()
            .map(ExecutorKind::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The executor whose own fields include `field`, if any.
    pub(crate) fn owning(field: &str) -> Option<Self> {
        Self::all().find(|kind| kind.0.fields().contains(&field))
    }
}

impl Default for ExecutorKind {
    fn default() -> Self {
        ExecutorKind(EXECUTORS[0])
    }
}

impl PartialEq for ExecutorKind {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for ExecutorKind {}

impl fmt::Debug for ExecutorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExecutorKind({})", self.as_str())
    }
}

impl fmt::Display for ExecutorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_fields_belong_to_one_executor() {
        let names: Vec<_> = ExecutorKind::all().map(ExecutorKind::as_str).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        assert_eq!(ExecutorKind::default().as_str(), "claude-code");
        let fields: Vec<_> = ExecutorKind::all()
            .flat_map(|k| k.executor().fields().iter().copied())
            .collect();
        for field in &fields {
            assert_eq!(fields.iter().filter(|f| *f == field).count(), 1, "{field}");
            assert!(!crate::document::COMMON_FIELDS.contains(field), "{field}");
        }
        assert!(ExecutorKind::from_name("loop").is_none());
    }
}
