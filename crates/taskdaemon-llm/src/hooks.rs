//! Iteration lifecycle hooks, so a daemon can publish loop events.

use crate::progress::IterationRecord;
use crate::tools::ToolOutput;
use crate::types::StreamEvent;
use serde_json::Value;

/// Called by the loop engine as it runs. Every method has a no-op default.
/// Hooks run inline on the loop's task: keep them quick (send on a channel).
pub trait LoopHooks: Send + Sync {
    /// An iteration is starting.
    fn on_iteration_start(&self, _iteration: u32) {}
    /// A streaming event from the model (text deltas, retries, ...).
    fn on_llm_event(&self, _iteration: u32, _event: &StreamEvent) {}
    /// The model called a tool.
    fn on_tool_call(&self, _iteration: u32, _name: &str, _input: &Value) {}
    /// A tool answered.
    fn on_tool_result(&self, _iteration: u32, _name: &str, _output: &ToolOutput) {}
    /// Validation is about to run.
    fn on_validation_start(&self, _iteration: u32) {}
    /// The iteration is recorded in the progress log.
    fn on_iteration_end(&self, _record: &IterationRecord) {}
}

/// Hooks that do nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHooks;

impl LoopHooks for NoHooks {}
