//! OpenAI-compatible chat completions client (`POST /v1/chat/completions`, streamed chunks).

use std::collections::BTreeSet;

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::client::{EventStream, LlmClient, StreamDecoder, http_client, post, sse_stream};
use crate::config::{Provider, ProviderConfig};
use crate::error::LlmError;
use crate::sse::SseEvent;
use crate::types::{ContentBlock, LlmRequest, Role, StopReason, StreamEvent, Usage};

/// Client for OpenAI chat completions and compatible servers.
#[derive(Debug)]
pub struct OpenAiClient {
    config: ProviderConfig,
    http: reqwest::Client,
}

impl OpenAiClient {
    /// A client for `config`.
    pub fn new(config: ProviderConfig) -> Result<Self, LlmError> {
        let http = http_client(&config)?;
        Ok(OpenAiClient { config, http })
    }
}

#[async_trait]
impl LlmClient for OpenAiClient {
    fn provider(&self) -> Provider {
        Provider::OpenAi
    }

    async fn stream(&self, request: &LlmRequest) -> Result<EventStream, LlmError> {
        let url = format!("{}/v1/chat/completions", self.config.base_url);
        let builder = self
            .http
            .post(url)
            .bearer_auth(self.config.api_key.expose())
            .json(&request_body(request));
        let response = post(builder, &self.config.api_key).await?;
        Ok(sse_stream(
            response,
            self.config.api_key.clone(),
            StreamDecoder::new(Provider::OpenAi),
        ))
    }
}

/// The JSON body for a request.
pub fn request_body(request: &LlmRequest) -> Value {
    let mut messages = Vec::new();
    if let Some(system) = &request.system {
        messages.push(json!({"role": "system", "content": system}));
    }
    for message in &request.messages {
        match message.role {
            Role::Assistant => {
                let mut text = String::new();
                let mut calls = Vec::new();
                for block in &message.content {
                    match block {
                        ContentBlock::Text { text: t } => text.push_str(t),
                        ContentBlock::ToolUse {
                            id, name, input, ..
                        } => calls.push(json!({"id": id, "type": "function",
                                               "function": {"name": name, "arguments": input.to_string()}})),
                        ContentBlock::ToolResult { .. } => {}
                    }
                }
                let mut m = json!({"role": "assistant", "content": text});
                if !calls.is_empty() {
                    m["tool_calls"] = Value::Array(calls);
                }
                messages.push(m);
            }
            Role::User => {
                // Tool results are separate `tool` messages in this API; text stays a user message.
                let mut text = String::new();
                for block in &message.content {
                    match block {
                        ContentBlock::ToolResult {
                            tool_use_id,
                            content,
                            is_error,
                        } => {
                            let content = if *is_error {
                                format!("ERROR: {content}")
                            } else {
                                content.clone()
                            };
                            messages.push(json!({"role": "tool", "tool_call_id": tool_use_id, "content": content}));
                        }
                        ContentBlock::Text { text: t } => text.push_str(t),
                        ContentBlock::ToolUse { .. } => {}
                    }
                }
                if !text.is_empty() {
                    messages.push(json!({"role": "user", "content": text}));
                }
            }
        }
    }
    let mut body = json!({
        "model": request.model,
        "max_tokens": request.max_tokens,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if !request.tools.is_empty() {
        body["tools"] = json!(
            request
                .tools
                .iter()
                .map(|t| json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.input_schema}}))
                .collect::<Vec<_>>()
        );
    }
    body
}

/// Maps chunks to neutral events. Text goes to block 0, tool call `i` to block `i + 1`.
#[derive(Default)]
pub(crate) struct ChunkMapper {
    started: bool,
    text_started: bool,
    tools_started: BTreeSet<usize>,
    finished: bool,
}

impl ChunkMapper {
    pub(crate) fn map(&mut self, event: SseEvent) -> Result<Vec<StreamEvent>, LlmError> {
        let mut out = Vec::new();
        if event.data.trim() == "[DONE]" {
            self.close_blocks(&mut out);
            out.push(StreamEvent::MessageStop);
            return Ok(out);
        }
        let data: Value = serde_json::from_str(&event.data)
            .map_err(|e| LlmError::Protocol(format!("malformed chunk: {e}")))?;
        if let Some(error) = data.get("error") {
            return Err(LlmError::Api {
                kind: error["type"].as_str().unwrap_or("error").to_string(),
                message: error["message"].as_str().unwrap_or("").to_string(),
            });
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::MessageStart {
                model: data["model"].as_str().unwrap_or("").to_string(),
                usage: Usage::default(),
            });
        }
        if let Some(choice) = data["choices"].as_array().and_then(|c| c.first()) {
            let delta = &choice["delta"];
            if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
                if !self.text_started {
                    self.text_started = true;
                    out.push(StreamEvent::TextStart { index: 0 });
                }
                out.push(StreamEvent::TextDelta {
                    index: 0,
                    text: text.to_string(),
                });
            }
            for call in delta["tool_calls"].as_array().into_iter().flatten() {
                let (n, index) = tool_call_index(call)?;
                if self.tools_started.insert(n) {
                    out.push(StreamEvent::ToolUseStart {
                        index,
                        id: call["id"].as_str().unwrap_or("").to_string(),
                        name: call["function"]["name"].as_str().unwrap_or("").to_string(),
                    });
                }
                if let Some(args) = call["function"]["arguments"]
                    .as_str()
                    .filter(|a| !a.is_empty())
                {
                    out.push(StreamEvent::ToolInputDelta {
                        index,
                        partial_json: args.to_string(),
                    });
                }
            }
            if let Some(reason) = choice["finish_reason"].as_str() {
                self.close_blocks(&mut out);
                out.push(StreamEvent::MessageDelta {
                    stop_reason: Some(StopReason::parse(reason)),
                    usage: Usage::default(),
                });
            }
        }
        if let Some(usage) = data.get("usage").filter(|u| u.is_object()) {
            let prompt = usage["prompt_tokens"].as_u64().unwrap_or(0);
            let cached = usage["prompt_tokens_details"]["cached_tokens"]
                .as_u64()
                .unwrap_or(0);
            out.push(StreamEvent::MessageDelta {
                stop_reason: None,
                usage: Usage {
                    input_tokens: prompt.saturating_sub(cached),
                    output_tokens: usage["completion_tokens"].as_u64().unwrap_or(0),
                    cache_creation_input_tokens: 0,
                    cache_read_input_tokens: cached,
                },
            });
        }
        Ok(out)
    }

    fn close_blocks(&mut self, out: &mut Vec<StreamEvent>) {
        if self.finished {
            return;
        }
        self.finished = true;
        if self.text_started {
            out.push(StreamEvent::BlockStop { index: 0 });
        }
        for n in &self.tools_started {
            out.push(StreamEvent::BlockStop { index: n + 1 });
        }
    }
}

/// A tool call's `index` and its block (`index + 1`: block 0 is the text).
/// An index no block can have is the provider's error, not a reason to
/// overflow.
fn tool_call_index(call: &Value) -> Result<(usize, usize), LlmError> {
    let raw = call["index"].as_u64().unwrap_or(0);
    usize::try_from(raw)
        .ok()
        .and_then(|n| Some((n, n.checked_add(1)?)))
        .ok_or_else(|| LlmError::Protocol(format!("tool call index {raw} is out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_call_index_past_the_last_block_is_a_protocol_error() {
        // Found by the sse_stream fuzz target: index u64::MAX overflowed
        // `index + 1` (a panic in debug builds, block 0 in release).
        let err = ChunkMapper::default()
            .map(SseEvent {
                event: None,
                data: r#"{"choices":[{"delta":{"tool_calls":[{"index":18446744073709551615}]}}]}"#
                    .into(),
            })
            .unwrap_err();
        assert!(
            matches!(&err, LlmError::Protocol(m) if m.contains("out of range")),
            "{err:?}"
        );
        let ok = ChunkMapper::default()
            .map(SseEvent {
                event: None,
                data: r#"{"choices":[{"delta":{"tool_calls":[{"index":2,"id":"c","function":{"name":"f"}}]}}]}"#
                    .into(),
            })
            .unwrap();
        assert!(ok.contains(&StreamEvent::ToolUseStart {
            index: 3,
            id: "c".into(),
            name: "f".into()
        }));
    }
}
