//! The script: what the fake model answers, request by request.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Token usage reported for a scripted turn, in Anthropic's field names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Uncached input tokens.
    #[serde(default)]
    pub input_tokens: u64,
    /// Generated tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Input tokens written to the prompt cache.
    #[serde(default)]
    pub cache_creation_input_tokens: u64,
    /// Input tokens read from the prompt cache.
    #[serde(default)]
    pub cache_read_input_tokens: u64,
}

/// One content block of a scripted assistant message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    /// Plain text, streamed as several text deltas.
    Text {
        /// The text.
        text: String,
    },
    /// A tool call, its input JSON streamed split across several deltas.
    ToolUse {
        /// Tool call id; generated when absent.
        #[serde(default)]
        id: Option<String>,
        /// Tool name.
        name: String,
        /// Tool input (ignored when `raw_input` is set).
        #[serde(default)]
        input: Value,
        /// Sent verbatim instead of `input`, e.g. to script malformed JSON.
        #[serde(default)]
        raw_input: Option<String>,
    },
}

impl Block {
    /// A text block.
    pub fn text(text: impl Into<String>) -> Self {
        Block::Text { text: text.into() }
    }

    /// A tool call with well-formed input.
    pub fn tool_use(name: impl Into<String>, input: Value) -> Self {
        Block::ToolUse {
            id: None,
            name: name.into(),
            input,
            raw_input: None,
        }
    }

    /// A tool call whose input is sent as the given raw (possibly invalid) JSON text.
    pub fn raw_tool_use(name: impl Into<String>, raw_input: impl Into<String>) -> Self {
        Block::ToolUse {
            id: None,
            name: name.into(),
            input: Value::Null,
            raw_input: Some(raw_input.into()),
        }
    }
}

/// One complete assistant message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// Content blocks in order.
    #[serde(default)]
    pub blocks: Vec<Block>,
    /// Anthropic stop reason; defaults to `tool_use` when the turn calls a
    /// tool, else `end_turn`. Mapped to OpenAI `finish_reason` on that route.
    #[serde(default)]
    pub stop_reason: Option<String>,
    /// Usage to report.
    #[serde(default)]
    pub usage: Usage,
}

impl Turn {
    /// A turn that only says `text` and ends.
    pub fn text(text: impl Into<String>) -> Self {
        Turn {
            blocks: vec![Block::text(text)],
            ..Turn::default()
        }
    }

    /// A turn made of the given blocks.
    pub fn blocks(blocks: Vec<Block>) -> Self {
        Turn {
            blocks,
            ..Turn::default()
        }
    }

    /// A turn that calls one tool.
    pub fn tool(name: impl Into<String>, input: Value) -> Self {
        Turn::blocks(vec![Block::tool_use(name, input)])
    }

    /// Sets the usage reported for this turn.
    pub fn with_usage(mut self, usage: Usage) -> Self {
        self.usage = usage;
        self
    }

    /// Sets the stop reason explicitly.
    pub fn with_stop_reason(mut self, reason: impl Into<String>) -> Self {
        self.stop_reason = Some(reason.into());
        self
    }

    /// The stop reason actually reported.
    pub fn effective_stop_reason(&self) -> String {
        if let Some(reason) = &self.stop_reason {
            return reason.clone();
        }
        if self
            .blocks
            .iter()
            .any(|b| matches!(b, Block::ToolUse { .. }))
        {
            "tool_use".into()
        } else {
            "end_turn".into()
        }
    }
}

/// What the server does with one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reply {
    /// Answer normally with this turn.
    Turn(Turn),
    /// HTTP 429 with a `retry-after` header (seconds or an HTTP date).
    RateLimited {
        /// The `retry-after` header value.
        retry_after: String,
    },
    /// HTTP 529 `overloaded_error`.
    Overloaded,
    /// HTTP 500 (or `status`) `api_error`.
    ServerError {
        /// Status code; 500 when absent.
        #[serde(default)]
        status: Option<u16>,
    },
    /// Stream the turn but abort the connection after `events` SSE events.
    CutAfter {
        /// How many events to send before cutting.
        events: usize,
        /// The turn being streamed.
        turn: Turn,
    },
    /// Start a stream, then send a `data:` line that is not JSON.
    MalformedSse,
    /// Never answer (for an hour): holds a loop mid-request, e.g. while a
    /// test kills the daemon under it.
    Stall,
    /// Start a stream, then send an `error` event (e.g. `overloaded_error`).
    ErrorEvent {
        /// Error type, e.g. `overloaded_error`.
        error_type: String,
        /// Human message.
        message: String,
    },
}

impl From<Turn> for Reply {
    fn from(turn: Turn) -> Self {
        Reply::Turn(turn)
    }
}

/// A script for the requests that offer one tool, so one server can play the
/// model for several loops at once (a plan loop, spec loops, Ralph loops),
/// each kind getting its own conversation whatever order requests arrive in.
///
/// A request is served by the first route that matches it and still has
/// replies; a request no route serves takes the next reply of the plain
/// queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Route {
    /// The request's `tools` must include a tool of this name.
    pub when_offers: String,
    /// And, when set, its first user message (the loop's prompt) must contain
    /// this text: tells apart loops of one kind, e.g. two specs' phase loops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when_prompt_contains: Option<String>,
    /// Replies served in order.
    #[serde(default)]
    pub replies: Vec<Reply>,
}

impl Route {
    /// A route for requests offering `tool`, with no replies yet.
    pub fn offering(tool: impl Into<String>) -> Self {
        Route {
            when_offers: tool.into(),
            when_prompt_contains: None,
            replies: Vec::new(),
        }
    }

    /// Only requests whose prompt contains `text`.
    pub fn prompt_contains(mut self, text: impl Into<String>) -> Self {
        self.when_prompt_contains = Some(text.into());
        self
    }

    /// Appends a reply.
    pub fn reply(mut self, reply: impl Into<Reply>) -> Self {
        self.replies.push(reply.into());
        self
    }

    /// Appends replies.
    pub fn replies(mut self, replies: impl IntoIterator<Item = Reply>) -> Self {
        self.replies.extend(replies);
        self
    }

    /// Whether a request offering `tools` with prompt `prompt` is this route's.
    pub fn matches(&self, tools: &[String], prompt: &str) -> bool {
        tools.contains(&self.when_offers)
            && self
                .when_prompt_contains
                .as_ref()
                .is_none_or(|text| prompt.contains(text.as_str()))
    }
}

/// A whole script: routes first, then the plain queue. This is also the
/// object form of the binary's script file (the array form is `replies` alone).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// Routes, tried in order.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Replies for requests no route serves, in order.
    #[serde(default)]
    pub replies: Vec<Reply>,
}
