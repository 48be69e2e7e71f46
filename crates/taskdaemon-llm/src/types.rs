//! Provider-neutral request, response and stream event types.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The user (and tool results).
    User,
    /// The model.
    Assistant,
}

/// One block of message content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// A tool call made by the model.
    ToolUse {
        /// Call id, echoed back in the matching tool result.
        id: String,
        /// Tool name.
        name: String,
        /// Parsed input; `{}` when the model sent JSON that does not parse.
        input: Value,
        /// Why the streamed input did not parse, if it did not. The tool layer
        /// answers such a call with an error result instead of running it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input_error: Option<String>,
    },
    /// The result of a tool call, sent back to the model.
    ToolResult {
        /// The id of the call this answers.
        tool_use_id: String,
        /// Result text.
        content: String,
        /// True when the tool failed or refused.
        #[serde(default)]
        is_error: bool,
    },
}

impl ContentBlock {
    /// A text block.
    pub fn text(text: impl Into<String>) -> Self {
        ContentBlock::Text { text: text.into() }
    }
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Speaker.
    pub role: Role,
    /// Content blocks in order.
    pub content: Vec<ContentBlock>,
}

impl Message {
    /// A user message with one text block.
    pub fn user_text(text: impl Into<String>) -> Self {
        Message {
            role: Role::User,
            content: vec![ContentBlock::text(text)],
        }
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Name.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// JSON schema of its input object.
    pub input_schema: Value,
}

/// One model call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmRequest {
    /// Model name, e.g. `claude-sonnet-4-5`.
    pub model: String,
    /// System prompt.
    pub system: Option<String>,
    /// The conversation so far.
    pub messages: Vec<Message>,
    /// Tools offered.
    pub tools: Vec<ToolSpec>,
    /// Output token limit.
    pub max_tokens: u32,
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model finished its turn.
    EndTurn,
    /// The model wants tool results.
    ToolUse,
    /// Output limit reached.
    MaxTokens,
    /// A stop sequence matched.
    StopSequence,
    /// Anything else the provider reported.
    Other(String),
}

impl StopReason {
    /// Parses Anthropic's `stop_reason` (and OpenAI's `finish_reason`).
    pub fn parse(s: &str) -> Self {
        match s {
            "end_turn" | "stop" => StopReason::EndTurn,
            "tool_use" | "tool_calls" | "function_call" => StopReason::ToolUse,
            "max_tokens" | "length" => StopReason::MaxTokens,
            "stop_sequence" => StopReason::StopSequence,
            other => StopReason::Other(other.to_string()),
        }
    }
}

/// Token counts, in Anthropic's terms (OpenAI's are mapped onto them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Usage {
    /// Uncached input tokens.
    #[serde(default)]
    pub input_tokens: u64,
    /// Output tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Input tokens written to the prompt cache.
    #[serde(default)]
    pub cache_creation_input_tokens: u64,
    /// Input tokens read from the prompt cache.
    #[serde(default)]
    pub cache_read_input_tokens: u64,
}

impl Usage {
    /// Field-wise sum.
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_creation_input_tokens += other.cache_creation_input_tokens;
        self.cache_read_input_tokens += other.cache_read_input_tokens;
    }

    /// Field-wise maximum: streamed usage counts are cumulative, so a later
    /// report supersedes an earlier one without ever lowering a count.
    pub fn merge_cumulative(&mut self, later: &Usage) {
        self.input_tokens = self.input_tokens.max(later.input_tokens);
        self.output_tokens = self.output_tokens.max(later.output_tokens);
        self.cache_creation_input_tokens = self
            .cache_creation_input_tokens
            .max(later.cache_creation_input_tokens);
        self.cache_read_input_tokens = self
            .cache_read_input_tokens
            .max(later.cache_read_input_tokens);
    }
}

/// A provider-neutral streaming event. Both clients map their wire format onto these.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The message started; usage so far (input tokens).
    MessageStart {
        /// Model that answers.
        model: String,
        /// Usage reported at start.
        usage: Usage,
    },
    /// A text block started at `index`.
    TextStart {
        /// Block index.
        index: usize,
    },
    /// Text appended to block `index`.
    TextDelta {
        /// Block index.
        index: usize,
        /// The fragment.
        text: String,
    },
    /// A tool call block started.
    ToolUseStart {
        /// Block index.
        index: usize,
        /// Call id.
        id: String,
        /// Tool name.
        name: String,
    },
    /// A fragment of a tool call's input JSON.
    ToolInputDelta {
        /// Block index.
        index: usize,
        /// JSON fragment.
        partial_json: String,
    },
    /// Block `index` is complete.
    BlockStop {
        /// Block index.
        index: usize,
    },
    /// Top-level message changes: stop reason and cumulative usage.
    MessageDelta {
        /// Stop reason, when known.
        stop_reason: Option<StopReason>,
        /// Cumulative usage.
        usage: Usage,
    },
    /// The message is complete.
    MessageStop,
    /// Keep-alive.
    Ping,
    /// Not from the wire: the resilient layer is about to retry; any partial
    /// output seen so far is discarded.
    Retrying {
        /// The attempt that failed (1-based).
        attempt: u32,
        /// How long it waits first.
        delay: std::time::Duration,
        /// What went wrong.
        reason: String,
    },
}

/// A complete assistant message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmResponse {
    /// Model that answered.
    pub model: String,
    /// Content blocks in order.
    pub content: Vec<ContentBlock>,
    /// Why it stopped.
    pub stop_reason: StopReason,
    /// Usage of this call.
    pub usage: Usage,
}

impl LlmResponse {
    /// All text blocks joined.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|b| match b {
                ContentBlock::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("")
    }

    /// The tool calls, in order.
    pub fn tool_uses(&self) -> impl Iterator<Item = &ContentBlock> {
        self.content
            .iter()
            .filter(|b| matches!(b, ContentBlock::ToolUse { .. }))
    }
}
