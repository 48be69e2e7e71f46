//! Anthropic Messages API client (`POST /v1/messages`, SSE streaming).

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::client::{EventStream, LlmClient, StreamDecoder, http_client, post, sse_stream};
use crate::config::{Provider, ProviderConfig};
use crate::error::LlmError;
use crate::sse::SseEvent;
use crate::types::{ContentBlock, LlmRequest, Message, Role, StopReason, StreamEvent, Usage};

/// The API version header value this client speaks.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Client for the Anthropic Messages API.
#[derive(Debug)]
pub struct AnthropicClient {
    config: ProviderConfig,
    http: reqwest::Client,
}

impl AnthropicClient {
    /// A client for `config` (its provider should be Anthropic).
    pub fn new(config: ProviderConfig) -> Result<Self, LlmError> {
        let http = http_client(&config)?;
        Ok(AnthropicClient { config, http })
    }
}

#[async_trait]
impl LlmClient for AnthropicClient {
    fn provider(&self) -> Provider {
        Provider::Anthropic
    }

    async fn stream(&self, request: &LlmRequest) -> Result<EventStream, LlmError> {
        let url = format!("{}/v1/messages", self.config.base_url);
        let builder = self
            .http
            .post(url)
            .header("x-api-key", self.config.api_key.expose())
            .header("anthropic-version", ANTHROPIC_VERSION)
            .header("accept", "text/event-stream")
            .json(&request_body(request));
        let response = post(builder, &self.config.api_key).await?;
        Ok(sse_stream(
            response,
            self.config.api_key.clone(),
            StreamDecoder::new(Provider::Anthropic),
        ))
    }
}

/// The JSON body for a request.
pub fn request_body(request: &LlmRequest) -> Value {
    let mut body = json!({
        "model": request.model,
        "max_tokens": request.max_tokens,
        "messages": request.messages.iter().map(message_json).collect::<Vec<_>>(),
        "stream": true,
    });
    if let Some(system) = &request.system {
        body["system"] = json!(system);
    }
    if !request.tools.is_empty() {
        body["tools"] = json!(
            request
                .tools
                .iter()
                .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.input_schema}))
                .collect::<Vec<_>>()
        );
    }
    body
}

fn message_json(message: &Message) -> Value {
    let role = match message.role {
        Role::User => "user",
        Role::Assistant => "assistant",
    };
    let content: Vec<Value> = message
        .content
        .iter()
        .map(|block| match block {
            ContentBlock::Text { text } => json!({"type": "text", "text": text}),
            ContentBlock::ToolUse {
                id, name, input, ..
            } => json!({"type": "tool_use", "id": id, "name": name, "input": input}),
            ContentBlock::ToolResult {
                tool_use_id,
                content,
                is_error,
            } => json!({"type": "tool_result", "tool_use_id": tool_use_id,
                        "content": content, "is_error": is_error}),
        })
        .collect();
    json!({"role": role, "content": content})
}

fn usage_of(value: &Value) -> Usage {
    serde_json::from_value(value.clone()).unwrap_or_default()
}

fn index_of(data: &Value) -> Result<usize, LlmError> {
    data["index"]
        .as_u64()
        .map(|i| i as usize)
        .ok_or_else(|| LlmError::Protocol(format!("event without index: {data}")))
}

/// Maps one SSE event of the Messages stream onto provider-neutral events.
pub(crate) fn map_event(event: SseEvent) -> Result<Vec<StreamEvent>, LlmError> {
    let data: Value = serde_json::from_str(&event.data).map_err(|e| {
        LlmError::Protocol(format!(
            "malformed SSE data for event {:?}: {e}",
            event.event.as_deref().unwrap_or("(none)")
        ))
    })?;
    let kind = data["type"]
        .as_str()
        .or(event.event.as_deref())
        .unwrap_or("");
    Ok(match kind {
        "message_start" => vec![StreamEvent::MessageStart {
            model: data["message"]["model"].as_str().unwrap_or("").to_string(),
            usage: usage_of(&data["message"]["usage"]),
        }],
        "content_block_start" => {
            let index = index_of(&data)?;
            let block = &data["content_block"];
            match block["type"].as_str() {
                Some("text") => {
                    let mut out = vec![StreamEvent::TextStart { index }];
                    if let Some(text) = block["text"].as_str().filter(|t| !t.is_empty()) {
                        out.push(StreamEvent::TextDelta {
                            index,
                            text: text.to_string(),
                        });
                    }
                    out
                }
                Some("tool_use") => vec![StreamEvent::ToolUseStart {
                    index,
                    id: block["id"].as_str().unwrap_or("").to_string(),
                    name: block["name"].as_str().unwrap_or("").to_string(),
                }],
                // Thinking and other block kinds are not used by the loop engine.
                _ => vec![],
            }
        }
        "content_block_delta" => {
            let index = index_of(&data)?;
            let delta = &data["delta"];
            match delta["type"].as_str() {
                Some("text_delta") => vec![StreamEvent::TextDelta {
                    index,
                    text: delta["text"].as_str().unwrap_or("").to_string(),
                }],
                Some("input_json_delta") => vec![StreamEvent::ToolInputDelta {
                    index,
                    partial_json: delta["partial_json"].as_str().unwrap_or("").to_string(),
                }],
                _ => vec![],
            }
        }
        "content_block_stop" => vec![StreamEvent::BlockStop {
            index: index_of(&data)?,
        }],
        "message_delta" => vec![StreamEvent::MessageDelta {
            stop_reason: data["delta"]["stop_reason"].as_str().map(StopReason::parse),
            usage: usage_of(&data["usage"]),
        }],
        "message_stop" => vec![StreamEvent::MessageStop],
        "ping" => vec![StreamEvent::Ping],
        "error" => {
            return Err(LlmError::Api {
                kind: data["error"]["type"]
                    .as_str()
                    .unwrap_or("error")
                    .to_string(),
                message: data["error"]["message"].as_str().unwrap_or("").to_string(),
            });
        }
        // New event types must not break old clients.
        _ => vec![],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ToolSpec;

    #[test]
    fn request_body_has_the_wire_shape() {
        let request = LlmRequest {
            model: "m".into(),
            system: Some("sys".into()),
            messages: vec![
                Message::user_text("hi"),
                Message {
                    role: Role::Assistant,
                    content: vec![ContentBlock::ToolUse {
                        id: "t1".into(),
                        name: "read_file".into(),
                        input: json!({"path": "a"}),
                        input_error: None,
                    }],
                },
                Message {
                    role: Role::User,
                    content: vec![ContentBlock::ToolResult {
                        tool_use_id: "t1".into(),
                        content: "nope".into(),
                        is_error: true,
                    }],
                },
            ],
            tools: vec![ToolSpec {
                name: "read_file".into(),
                description: "d".into(),
                input_schema: json!({"type": "object"}),
            }],
            max_tokens: 100,
        };
        let body = request_body(&request);
        assert_eq!(body["stream"], true);
        assert_eq!(body["system"], "sys");
        assert_eq!(body["messages"][1]["content"][0]["type"], "tool_use");
        assert_eq!(body["messages"][2]["content"][0]["is_error"], true);
        assert_eq!(body["tools"][0]["input_schema"]["type"], "object");
    }

    #[test]
    fn error_event_and_malformed_data() {
        let err = map_event(SseEvent {
            event: Some("error".into()),
            data: r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
                .into(),
        })
        .unwrap_err();
        assert!(err.is_retryable());
        let err = map_event(SseEvent {
            event: Some("message_start".into()),
            data: "{nope".into(),
        })
        .unwrap_err();
        assert!(matches!(err, LlmError::Protocol(_)));
    }
}
