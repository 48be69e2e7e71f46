//! Loop-specific tools whose calls the loop's owner handles.
//!
//! The [`Toolbox`](crate::Toolbox) tools act on files and commands inside the
//! loop's workdir. Structural tools instead hand something to whoever runs the
//! loop (a plan, a spec, a message), so the engine only routes them: the
//! owner passes a [`StructuralTools`] to
//! [`LoopRunner::with_structural_tools`](crate::LoopRunner::with_structural_tools),
//! its specs are offered next to the toolbox's, and each call goes to
//! [`StructuralTools::call`]. An error answer goes back to the model as an
//! `is_error` tool result it can read and correct; a
//! [`StructuralOutput::finish`] answer ends the loop as succeeded without
//! running the validation command.

use async_trait::async_trait;
use serde_json::Value;

use crate::tools::ToolOutput;
use crate::types::ToolSpec;

/// One call of a structural tool, as the engine hands it over.
#[derive(Debug, Clone, Copy)]
pub struct StructuralCall<'a> {
    /// The loop iteration making the call.
    pub iteration: u32,
    /// The provider's call id (unique within the conversation).
    pub id: &'a str,
    /// Tool name, one of [`StructuralTools::specs`].
    pub name: &'a str,
    /// The model's input, already parsed as JSON.
    pub input: &'a Value,
}

/// The handler's answer to a structural call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructuralOutput {
    /// Text for the model.
    pub content: String,
    /// The call was refused or failed; the model sees the text and may retry.
    pub is_error: bool,
    /// The loop is done: the engine sends no further requests, records the
    /// iteration as passed and the loop ends as succeeded.
    pub finish: bool,
}

impl StructuralOutput {
    /// A successful answer.
    pub fn ok(content: impl Into<String>) -> Self {
        StructuralOutput {
            content: content.into(),
            is_error: false,
            finish: false,
        }
    }

    /// A refusal the model can read and fix.
    pub fn err(content: impl Into<String>) -> Self {
        StructuralOutput {
            content: content.into(),
            is_error: true,
            finish: false,
        }
    }

    /// A successful answer that ends the loop.
    pub fn finish(content: impl Into<String>) -> Self {
        StructuralOutput {
            content: content.into(),
            is_error: false,
            finish: true,
        }
    }

    /// The answer as a tool result (what hooks and the model see).
    pub fn to_tool_output(&self) -> ToolOutput {
        ToolOutput {
            content: self.content.clone(),
            is_error: self.is_error,
        }
    }
}

/// Tools offered to one loop whose calls its owner handles.
#[async_trait]
pub trait StructuralTools: Send + Sync {
    /// The tools offered, with JSON schemas. Their names must differ from
    /// the toolbox's ([`TOOL_NAMES`](crate::TOOL_NAMES)); the engine refuses
    /// to start otherwise. They are offered as given: the loop's
    /// `allowed_tools` limits only the toolbox, since attaching a handler is
    /// already the owner's decision to offer these.
    fn specs(&self) -> Vec<ToolSpec>;

    /// Whether the loop ends only by a [`StructuralOutput::finish`] answer.
    /// When true the validation command is never run: an iteration in which
    /// the model ends its turn without finishing is recorded as not passed
    /// (with a note telling the model to call the finishing tool), and the
    /// next iteration starts.
    fn ends_by_tool(&self) -> bool {
        false
    }

    /// Handles one call. Runs inline on the loop's task; the engine stops
    /// waiting for it when the loop is cancelled.
    async fn call(&self, call: StructuralCall<'_>) -> StructuralOutput;

    /// Text the owner adds at the end of iteration `iteration`'s prompt
    /// (messages that arrived for the loop, answers to its questions). Read
    /// once as each iteration starts; `None` adds nothing.
    async fn context(&self, _iteration: u32) -> Option<String> {
        None
    }
}
