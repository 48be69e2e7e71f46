//! Claude Code's headless output: `claude -p ... --output-format stream-json --verbose`.
//!
//! One JSON object per line: a `system` line (subtype `init`) with the
//! `session_id`, `assistant` and `user` messages, and a final `result` line
//! with `session_id`, `num_turns`, `total_cost_usd`, `usage`, `result` (the
//! final text), `is_error` and `subtype`. Lines of other types and lines that
//! are not JSON at all (a wrapper's own output, a crash trace) are skipped,
//! so a newer CLI with more line types still parses.
//!
//! The log of a retried task holds every attempt; a new `init` line starts
//! the summary over, so it describes the last attempt.

use std::io::BufRead;

use serde::Serialize;
use serde_json::Value;

use crate::result::Tokens;

/// What a stream said, folded line by line.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StreamSummary {
    pub session_id: Option<String>,
    pub num_turns: Option<u32>,
    pub cost_usd: Option<f64>,
    pub tokens: Tokens,
    /// The `result` text, or the last assistant text when no result came.
    pub final_text: Option<String>,
    /// The result line said `is_error: true`.
    pub is_error: bool,
    /// The result's `subtype` (`success`, `error_max_turns`, ...).
    pub subtype: Option<String>,
    /// A `result` line was seen.
    pub has_result: bool,
    /// Lines that were JSON objects of a known type.
    pub events: u32,
}

impl StreamSummary {
    /// Reads a whole stream.
    pub fn read(reader: impl BufRead) -> Self {
        let mut summary = Self::default();
        for line in reader.split(b'\n').map_while(Result::ok) {
            summary.push_line(&String::from_utf8_lossy(&line));
        }
        summary
    }

    /// Takes in one line of the stream.
    pub fn push_line(&mut self, line: &str) {
        let line = line.trim();
        if !line.starts_with('{') {
            return;
        }
        let Ok(value) = serde_json::from_str::<Value>(line) else {
            return;
        };
        match value.get("type").and_then(Value::as_str) {
            Some("system") => {
                if value.get("subtype").and_then(Value::as_str) == Some("init") {
                    *self = Self::default();
                }
                self.take_session(&value);
            }
            Some("assistant") => {
                self.take_session(&value);
                if let Some(text) = assistant_text(&value) {
                    self.final_text = Some(text);
                }
                if let Some(usage) = value.pointer("/message/usage").filter(|_| !self.has_result) {
                    self.tokens.add(&Tokens::from_usage(usage));
                }
            }
            Some("user") => self.take_session(&value),
            Some("result") => {
                self.take_session(&value);
                self.has_result = true;
                self.num_turns = value
                    .get("num_turns")
                    .and_then(Value::as_u64)
                    .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
                self.cost_usd = value
                    .get("total_cost_usd")
                    .or_else(|| value.get("cost_usd"))
                    .and_then(Value::as_f64);
                if let Some(usage) = value.get("usage") {
                    // The result's usage is the whole session's: it replaces
                    // what the messages added up to.
                    self.tokens = Tokens::from_usage(usage);
                }
                if let Some(text) = value.get("result").and_then(Value::as_str) {
                    self.final_text = Some(text.to_owned());
                }
                self.is_error = value
                    .get("is_error")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                self.subtype = value
                    .get("subtype")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
            }
            _ => return,
        }
        self.events += 1;
    }

    fn take_session(&mut self, value: &Value) {
        if let Some(id) = value.get("session_id").and_then(Value::as_str) {
            self.session_id = Some(id.to_owned());
        }
    }

    /// Why the run counts as failed according to the stream, if it does:
    /// the result line's own message exactly as Claude Code wrote it (a
    /// subtype such as `success` says nothing about an `is_error` run, so it
    /// is never prefixed), or the subtype when the line carries no message.
    pub fn error(&self) -> Option<String> {
        if !self.is_error {
            return None;
        }
        Some(match self.final_text.as_deref() {
            Some(text) if !text.trim().is_empty() => text.to_owned(),
            _ => self.subtype.clone().unwrap_or_else(|| "error".to_owned()),
        })
    }
}

/// The text blocks of an assistant message, joined.
fn assistant_text(value: &Value) -> Option<String> {
    let content = value.pointer("/message/content")?.as_array()?;
    let text: Vec<&str> = content
        .iter()
        .filter(|block| block.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|block| block.get("text").and_then(Value::as_str))
        .collect();
    (!text.is_empty()).then(|| text.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = r#"{"type":"system","subtype":"init","cwd":"/w","session_id":"s-1","tools":["Read"],"model":"claude-sonnet-4","permissionMode":"default","apiKeySource":"ANTHROPIC_API_KEY"}
{"type":"assistant","message":{"id":"m1","type":"message","role":"assistant","model":"claude-sonnet-4","content":[{"type":"text","text":"Looking."},{"type":"tool_use","id":"t1","name":"Read","input":{}}],"usage":{"input_tokens":10,"output_tokens":5}},"parent_tool_use_id":null,"session_id":"s-1"}
{"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"ok"}]},"parent_tool_use_id":null,"session_id":"s-1"}
not json: a wrapper said this
{"type":"stream_event","event":{}}
{"type":"result","subtype":"success","is_error":false,"duration_ms":1200,"duration_api_ms":900,"num_turns":2,"result":"All done.","session_id":"s-1","total_cost_usd":0.0123,"usage":{"input_tokens":30,"cache_creation_input_tokens":7,"cache_read_input_tokens":100,"output_tokens":12,"server_tool_use":{"web_search_requests":0},"service_tier":"standard"},"permission_denials":[]}
"#;

    #[test]
    fn a_successful_stream() {
        let s = StreamSummary::read(STREAM.as_bytes());
        assert_eq!(s.session_id.as_deref(), Some("s-1"));
        assert_eq!(s.num_turns, Some(2));
        assert_eq!(s.cost_usd, Some(0.0123));
        assert_eq!(
            s.tokens,
            Tokens {
                input: 30,
                output: 12,
                cache_read: 100,
                cache_creation: 7
            }
        );
        assert_eq!(s.final_text.as_deref(), Some("All done."));
        assert!(s.has_result && !s.is_error);
        assert_eq!(s.error(), None);
        assert_eq!(s.events, 4);
    }

    #[test]
    fn an_error_result_and_a_cut_stream() {
        let s = StreamSummary::read(
            r#"{"type":"result","subtype":"error_max_turns","is_error":true,"num_turns":9,"session_id":"s"}"#
                .as_bytes(),
        );
        assert_eq!(s.error().as_deref(), Some("error_max_turns"));

        // Killed before the result: the last assistant text and summed usage remain.
        let cut: String = STREAM.lines().take(3).collect::<Vec<_>>().join("\n");
        let s = StreamSummary::read(cut.as_bytes());
        assert!(!s.has_result);
        assert_eq!(s.final_text.as_deref(), Some("Looking."));
        assert_eq!(s.tokens.input, 10);
    }

    #[test]
    fn an_error_keeps_its_message_as_written() {
        // Claude Code reports a missing login with subtype `success` and
        // `is_error: true`; the message must not be prefixed or cut.
        let s = StreamSummary::read(
            r#"{"type":"result","subtype":"success","is_error":true,"result":"Not logged in · Please run /login\nsecond line","session_id":"s"}"#
                .as_bytes(),
        );
        assert_eq!(
            s.error().as_deref(),
            Some("Not logged in · Please run /login\nsecond line")
        );
    }

    #[test]
    fn a_new_attempt_starts_over() {
        let retried = format!(
            "{}\n{}",
            r#"{"type":"result","subtype":"error_during_execution","is_error":true,"session_id":"old"}"#,
            STREAM
        );
        let s = StreamSummary::read(retried.as_bytes());
        assert_eq!(s.session_id.as_deref(), Some("s-1"));
        assert!(!s.is_error);
    }

    #[test]
    fn huge_counts_saturate_instead_of_overflowing() {
        // Found by the claude_stream fuzz target: two assistant messages whose
        // usage adds up past u64::MAX panicked (debug) or wrapped (release).
        let s = StreamSummary::read(
            &include_bytes!("../../../../../fuzz/seeds/claude_stream/crash-token-overflow.jsonl")[..],
        );
        assert_eq!(s.tokens.input, u64::MAX);
        assert_eq!(s.tokens.output, 3);
        assert_eq!(s.num_turns, Some(u32::MAX));
    }

    #[test]
    fn garbage_is_skipped() {
        let s = StreamSummary::read(&b"\xff\xfe\n{\"type\":\n[1,2]\n{}\n"[..]);
        assert_eq!(s, StreamSummary::default());
    }
}
