//! LLM loops as the store keeps them: what creates one, what each finished
//! iteration adds to its counters, and how it ends.
//!
//! The loop engine's own types live in `taskdaemon-llm`; the store sees a
//! loop's spec only as JSON, so the layers stay apart. A spec never holds an
//! API key: keys come from the daemon's environment (or, in memory only,
//! from the CLI that asked for the loop).

use serde::{Deserialize, Serialize};

use crate::status::Status;
use crate::task::TaskRecord;

/// The tool name loops get their id prefix from: `LOOP-N`.
pub const LOOP_TOOL: &str = "loop";

/// A loop about to be created.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLoop {
    /// A short name for people (e.g. the spec file's name).
    pub name: Option<String>,
    pub session: Option<String>,
    /// The command line that asked for it, for reading (`command` of the task).
    pub argv: Vec<String>,
    /// The loop's working directory, absolute.
    pub workdir: String,
    /// The engine's loop spec, as JSON; opaque to the store.
    pub spec: serde_json::Value,
}

/// What one finished iteration adds to a loop's record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoopIteration {
    /// 1-based; recording an iteration already recorded changes nothing.
    pub iteration: u32,
    pub tool_calls: u32,
    /// `None` when validation could not run.
    pub validation_exit_code: Option<i32>,
    pub passed: bool,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Input tokens read from the provider's prompt cache.
    #[serde(default)]
    pub cache_read_tokens: u64,
    /// Input tokens written to the provider's prompt cache.
    #[serde(default)]
    pub cache_write_tokens: u64,
    pub cost_usd: f64,
}

impl LoopIteration {
    /// The event message: `iteration 2: 3 tool calls, validation failed (exit 1)`.
    pub fn summary(&self) -> String {
        let verdict = match (self.passed, self.validation_exit_code) {
            (true, _) => "validation passed".to_owned(),
            (false, Some(code)) => format!("validation failed (exit {code})"),
            (false, None) => "validation could not run".to_owned(),
        };
        let calls = match self.tool_calls {
            1 => "1 tool call".to_owned(),
            n => format!("{n} tool calls"),
        };
        format!("iteration {}: {calls}, {verdict}", self.iteration)
    }
}

/// A loop task with its spec and counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoopRecord {
    #[serde(flatten)]
    pub task: TaskRecord,
    pub spec: serde_json::Value,
    /// Iterations recorded (the highest iteration number seen).
    pub iterations: u32,
    pub tool_calls: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    #[serde(default)]
    pub cache_read_tokens: u64,
    #[serde(default)]
    pub cache_write_tokens: u64,
    pub cost_usd: f64,
    pub last_validation_exit_code: Option<i32>,
}

/// How a loop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoopEnd {
    /// Validation passed at this iteration.
    Succeeded { iteration: u32 },
    /// The loop gave up (iterations spent, model unreachable, no key...).
    Failed { reason: String },
    /// Stopped on request.
    Cancelled,
}

impl LoopEnd {
    /// The status it ends in.
    pub fn status(&self) -> Status {
        match self {
            LoopEnd::Succeeded { .. } => Status::Succeeded,
            LoopEnd::Failed { .. } => Status::Failed,
            LoopEnd::Cancelled => Status::Cancelled,
        }
    }

    /// The exit code `wait` reports: 0 for success, 1 for failure, none when cancelled.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            LoopEnd::Succeeded { .. } => Some(0),
            LoopEnd::Failed { .. } => Some(1),
            LoopEnd::Cancelled => None,
        }
    }

    /// For the event and the task's `note`.
    pub fn message(&self) -> String {
        match self {
            LoopEnd::Succeeded { iteration } => {
                format!("validation passed at iteration {iteration}")
            }
            LoopEnd::Failed { reason } => reason.clone(),
            LoopEnd::Cancelled => "stopped on request".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_read_well() {
        let it = LoopIteration {
            iteration: 2,
            tool_calls: 1,
            validation_exit_code: Some(1),
            ..LoopIteration::default()
        };
        assert_eq!(
            it.summary(),
            "iteration 2: 1 tool call, validation failed (exit 1)"
        );
        let end = LoopEnd::Succeeded { iteration: 3 };
        assert_eq!(end.status(), Status::Succeeded);
        assert_eq!(end.exit_code(), Some(0));
        assert_eq!(LoopEnd::Cancelled.exit_code(), None);
    }
}
