//! Building a complete response out of stream events.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::LlmError;
use crate::types::{ContentBlock, LlmResponse, StopReason, StreamEvent, Usage};

enum Partial {
    Text(String),
    Tool {
        id: String,
        name: String,
        json: String,
    },
}

/// Accumulates [`StreamEvent`]s into an [`LlmResponse`]. A stream counts as
/// complete only once `MessageStop` arrived; anything else is a broken stream.
#[derive(Default)]
pub struct Assembler {
    model: String,
    blocks: BTreeMap<usize, Partial>,
    stop_reason: Option<StopReason>,
    usage: Usage,
    stopped: bool,
}

impl Assembler {
    /// An empty assembler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `MessageStop` was seen.
    pub fn is_complete(&self) -> bool {
        self.stopped
    }

    /// Applies one event.
    pub fn push(&mut self, event: &StreamEvent) {
        match event {
            StreamEvent::MessageStart { model, usage } => {
                self.model = model.clone();
                self.usage.merge_cumulative(usage);
            }
            StreamEvent::TextStart { index } => {
                self.blocks
                    .entry(*index)
                    .or_insert_with(|| Partial::Text(String::new()));
            }
            StreamEvent::TextDelta { index, text } => {
                match self
                    .blocks
                    .entry(*index)
                    .or_insert_with(|| Partial::Text(String::new()))
                {
                    Partial::Text(s) => s.push_str(text),
                    // A text delta for a tool block is a provider bug; keep the tool call intact.
                    Partial::Tool { .. } => {}
                }
            }
            StreamEvent::ToolUseStart { index, id, name } => {
                self.blocks.insert(
                    *index,
                    Partial::Tool {
                        id: id.clone(),
                        name: name.clone(),
                        json: String::new(),
                    },
                );
            }
            StreamEvent::ToolInputDelta {
                index,
                partial_json,
            } => {
                if let Some(Partial::Tool { json, .. }) = self.blocks.get_mut(index) {
                    json.push_str(partial_json);
                }
            }
            StreamEvent::MessageDelta { stop_reason, usage } => {
                if stop_reason.is_some() {
                    self.stop_reason = stop_reason.clone();
                }
                self.usage.merge_cumulative(usage);
            }
            StreamEvent::MessageStop => self.stopped = true,
            StreamEvent::BlockStop { .. } | StreamEvent::Ping | StreamEvent::Retrying { .. } => {}
        }
    }

    /// The response, or [`LlmError::StreamBroken`] when the stream never completed.
    pub fn finish(self) -> Result<LlmResponse, LlmError> {
        if !self.stopped {
            return Err(LlmError::StreamBroken(
                "stream ended before message_stop".into(),
            ));
        }
        let content = self
            .blocks
            .into_values()
            .map(|partial| match partial {
                Partial::Text(text) => ContentBlock::Text { text },
                Partial::Tool { id, name, json } => {
                    let (input, input_error) = parse_tool_input(&json);
                    ContentBlock::ToolUse {
                        id,
                        name,
                        input,
                        input_error,
                    }
                }
            })
            .collect();
        Ok(LlmResponse {
            model: self.model,
            content,
            stop_reason: self.stop_reason.unwrap_or(StopReason::EndTurn),
            usage: self.usage,
        })
    }
}

/// Parses accumulated tool input; an empty input means `{}`. Malformed input
/// is not a transport error: the model said something wrong, and it is told so
/// through an error tool result.
pub(crate) fn parse_tool_input(json: &str) -> (Value, Option<String>) {
    if json.trim().is_empty() {
        return (Value::Object(Default::default()), None);
    }
    match serde_json::from_str::<Value>(json) {
        Ok(value @ Value::Object(_)) => (value, None),
        Ok(other) => (
            Value::Object(Default::default()),
            Some(format!("tool input must be a JSON object, got: {other}")),
        ),
        Err(e) => (
            Value::Object(Default::default()),
            Some(format!("tool input is not valid JSON ({e}): {json}")),
        ),
    }
}
