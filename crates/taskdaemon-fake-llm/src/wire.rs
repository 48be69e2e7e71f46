//! Rendering scripted turns into the providers' real wire formats.

use serde_json::{Value, json};

use crate::script::{Block, Turn};

/// One server-sent event: `event:` name (None for OpenAI's unnamed events) and `data:` payload.
pub(crate) struct SseFrame {
    pub event: Option<&'static str>,
    pub data: String,
}

impl SseFrame {
    fn named(event: &'static str, data: Value) -> Self {
        SseFrame {
            event: Some(event),
            data: data.to_string(),
        }
    }

    fn data(data: impl Into<String>) -> Self {
        SseFrame {
            event: None,
            data: data.into(),
        }
    }

    /// The bytes on the wire, ending with the blank line that terminates an event.
    pub fn encode(&self) -> String {
        match self.event {
            Some(event) => format!("event: {event}\ndata: {}\n\n", self.data),
            None => format!("data: {}\n\n", self.data),
        }
    }
}

/// Splits `s` into up to `parts` pieces on char boundaries, so deltas are realistic fragments.
pub(crate) fn split_pieces(s: &str, parts: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    let size = chars.len().div_ceil(parts.max(1));
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

fn tool_id(id: &Option<String>, n: usize, prefix: &str) -> String {
    id.clone()
        .unwrap_or_else(|| format!("{prefix}_fake_{n:04}"))
}

fn tool_input_text(input: &Value, raw: &Option<String>) -> String {
    match raw {
        Some(raw) => raw.clone(),
        None if input.is_null() => "{}".into(),
        None => input.to_string(),
    }
}

fn usage_json(turn: &Turn) -> Value {
    json!({
        "input_tokens": turn.usage.input_tokens,
        "output_tokens": turn.usage.output_tokens,
        "cache_creation_input_tokens": turn.usage.cache_creation_input_tokens,
        "cache_read_input_tokens": turn.usage.cache_read_input_tokens,
    })
}

/// The full Anthropic event sequence for a turn.
pub(crate) fn anthropic_events(turn: &Turn, model: &str, seq: usize) -> Vec<SseFrame> {
    let mut out = Vec::new();
    let mut start_usage = usage_json(turn);
    // The real API reports a provisional output count at message_start and the final one in message_delta.
    start_usage["output_tokens"] = json!(1.min(turn.usage.output_tokens));
    out.push(SseFrame::named(
        "message_start",
        json!({
            "type": "message_start",
            "message": {
                "id": format!("msg_fake_{seq:04}"),
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": start_usage,
            }
        }),
    ));
    out.push(SseFrame::named("ping", json!({"type": "ping"})));
    for (index, block) in turn.blocks.iter().enumerate() {
        match block {
            Block::Text { text } => {
                out.push(SseFrame::named(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": index,
                           "content_block": {"type": "text", "text": ""}}),
                ));
                for piece in split_pieces(text, 3) {
                    out.push(SseFrame::named(
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": index,
                               "delta": {"type": "text_delta", "text": piece}}),
                    ));
                }
            }
            Block::ToolUse {
                id,
                name,
                input,
                raw_input,
            } => {
                out.push(SseFrame::named(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": index,
                           "content_block": {"type": "tool_use", "id": tool_id(id, seq * 100 + index, "toolu"),
                                             "name": name, "input": {}}}),
                ));
                for piece in split_pieces(&tool_input_text(input, raw_input), 3) {
                    out.push(SseFrame::named(
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": index,
                               "delta": {"type": "input_json_delta", "partial_json": piece}}),
                    ));
                }
            }
        }
        out.push(SseFrame::named(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
    }
    out.push(SseFrame::named(
        "message_delta",
        json!({"type": "message_delta",
               "delta": {"stop_reason": turn.effective_stop_reason(), "stop_sequence": null},
               "usage": {"output_tokens": turn.usage.output_tokens}}),
    ));
    out.push(SseFrame::named(
        "message_stop",
        json!({"type": "message_stop"}),
    ));
    out
}

/// The non-streaming Anthropic response body for a turn.
pub(crate) fn anthropic_message(turn: &Turn, model: &str, seq: usize) -> Value {
    let content: Vec<Value> = turn
        .blocks
        .iter()
        .enumerate()
        .map(|(index, block)| match block {
            Block::Text { text } => json!({"type": "text", "text": text}),
            Block::ToolUse {
                id,
                name,
                input,
                raw_input,
            } => {
                let input = match raw_input {
                    // A non-streaming body must itself be JSON; carry raw text as a string.
                    Some(raw) => serde_json::from_str(raw).unwrap_or(Value::String(raw.clone())),
                    None => input.clone(),
                };
                json!({"type": "tool_use", "id": tool_id(id, seq * 100 + index, "toolu"),
                       "name": name, "input": input})
            }
        })
        .collect();
    json!({
        "id": format!("msg_fake_{seq:04}"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": turn.effective_stop_reason(),
        "stop_sequence": null,
        "usage": usage_json(turn),
    })
}

/// Anthropic error body, as sent with a non-2xx status or inside an `error` event.
pub(crate) fn anthropic_error(error_type: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": error_type, "message": message}})
}

/// Anthropic `stop_reason` mapped to OpenAI `finish_reason`.
fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "tool_use" => "tool_calls",
        "max_tokens" => "length",
        _ => "stop",
    }
}

fn openai_usage(turn: &Turn) -> Value {
    let u = turn.usage;
    let prompt = u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens;
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": u.output_tokens,
        "total_tokens": prompt + u.output_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cache_read_input_tokens},
    })
}

/// The OpenAI chunk sequence for a turn, ending with `[DONE]`.
pub(crate) fn openai_chunks(
    turn: &Turn,
    model: &str,
    seq: usize,
    include_usage: bool,
) -> Vec<SseFrame> {
    let id = format!("chatcmpl-fake{seq:04}");
    let chunk = |delta: Value, finish: Option<&str>| {
        SseFrame::data(
            json!({"id": id, "object": "chat.completion.chunk", "created": 1_700_000_000u64,
                   "model": model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            .to_string(),
        )
    };
    let mut out = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    let mut tool_index = 0usize;
    for (n, block) in turn.blocks.iter().enumerate() {
        match block {
            Block::Text { text } => {
                for piece in split_pieces(text, 3) {
                    out.push(chunk(json!({"content": piece}), None));
                }
            }
            Block::ToolUse {
                id,
                name,
                input,
                raw_input,
            } => {
                out.push(chunk(
                    json!({"tool_calls": [{"index": tool_index, "id": tool_id(id, seq * 100 + n, "call"),
                                           "type": "function",
                                           "function": {"name": name, "arguments": ""}}]}),
                    None,
                ));
                for piece in split_pieces(&tool_input_text(input, raw_input), 3) {
                    out.push(chunk(
                        json!({"tool_calls": [{"index": tool_index, "function": {"arguments": piece}}]}),
                        None,
                    ));
                }
                tool_index += 1;
            }
        }
    }
    out.push(chunk(
        json!({}),
        Some(finish_reason(&turn.effective_stop_reason())),
    ));
    if include_usage {
        out.push(SseFrame::data(
            json!({"id": id, "object": "chat.completion.chunk", "created": 1_700_000_000u64,
                   "model": model, "choices": [], "usage": openai_usage(turn)})
            .to_string(),
        ));
    }
    out.push(SseFrame::data("[DONE]"));
    out
}

/// The non-streaming OpenAI response body for a turn.
pub(crate) fn openai_completion(turn: &Turn, model: &str, seq: usize) -> Value {
    let mut text = String::new();
    let mut calls = Vec::new();
    for (n, block) in turn.blocks.iter().enumerate() {
        match block {
            Block::Text { text: t } => text.push_str(t),
            Block::ToolUse {
                id,
                name,
                input,
                raw_input,
            } => calls.push(json!({"id": tool_id(id, seq * 100 + n, "call"), "type": "function",
                                   "function": {"name": name, "arguments": tool_input_text(input, raw_input)}})),
        }
    }
    let mut message = json!({"role": "assistant", "content": text});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    json!({"id": format!("chatcmpl-fake{seq:04}"), "object": "chat.completion", "created": 1_700_000_000u64,
           "model": model,
           "choices": [{"index": 0, "message": message,
                        "finish_reason": finish_reason(&turn.effective_stop_reason())}],
           "usage": openai_usage(turn)})
}

/// OpenAI error body.
pub(crate) fn openai_error(error_type: &str, message: &str) -> Value {
    json!({"error": {"message": message, "type": error_type, "code": null}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_pieces_rejoins_and_respects_char_boundaries() {
        let s = "héllo wörld ✓";
        let pieces = split_pieces(s, 3);
        assert!(pieces.len() > 1);
        assert_eq!(pieces.concat(), s);
    }

    #[test]
    fn anthropic_sequence_has_the_real_event_order() {
        let turn = Turn::blocks(vec![
            Block::text("hi"),
            Block::tool_use("read_file", json!({"path": "a.txt"})),
        ]);
        let names: Vec<_> = anthropic_events(&turn, "m", 1)
            .iter()
            .map(|f| f.event.unwrap_or(""))
            .collect();
        assert_eq!(names.first(), Some(&"message_start"));
        assert_eq!(names.last(), Some(&"message_stop"));
        assert_eq!(names[names.len() - 2], "message_delta");
        assert_eq!(
            names
                .iter()
                .filter(|n| **n == "content_block_start")
                .count(),
            2
        );
    }
}
