//! What a finished document leaves behind: `results/{id}.json` for programs
//! and `reports/{id}.md` for people, both written atomically.

use std::io;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use taskdaemon_core::TaskRecord;
use taskdaemon_core::queue::QueueItem;
use taskdaemon_core::time::{Millis, to_rfc3339};
use taskdaemon_workspace::{write_atomic, write_projection};

use crate::executors::OutputSummary;
use crate::folder::QueueFolder;

/// Token usage: input, output and prompt-cache reads and writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_creation: u64,
}

impl Tokens {
    /// From an Anthropic `usage` object; missing counts are zero.
    pub fn from_usage(usage: &Value) -> Self {
        let count = |key: &str| usage.get(key).and_then(Value::as_u64).unwrap_or(0);
        Self {
            input: count("input_tokens"),
            output: count("output_tokens"),
            cache_read: count("cache_read_input_tokens"),
            cache_creation: count("cache_creation_input_tokens"),
        }
    }

    /// Adds `other`; a count the output claims past `u64::MAX` stays at the
    /// maximum (the stream is outside input: it must not overflow a sum).
    pub fn add(&mut self, other: &Tokens) {
        self.input = self.input.saturating_add(other.input);
        self.output = self.output.saturating_add(other.output);
        self.cache_read = self.cache_read.saturating_add(other.cache_read);
        self.cache_creation = self.cache_creation.saturating_add(other.cache_creation);
    }
}

/// `results/{id}.json`: exactly these fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskResult {
    pub task_id: String,
    pub queue: String,
    /// `succeeded`, `failed`, `cancelled` or `lost`.
    pub status: String,
    /// 1-based number of the attempt this result describes (the last one).
    pub attempt: u32,
    /// RFC 3339: when the queue took the task in (the document was picked
    /// up, or submitted). None only in results written before it was recorded.
    #[serde(default)]
    pub added_at: Option<String>,
    /// RFC 3339; none when no attempt ever started.
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_ms: Option<u64>,
    pub exit_code: Option<i32>,
    pub session_id: Option<String>,
    pub cost_usd: Option<f64>,
    pub num_turns: Option<u32>,
    pub tokens: Tokens,
    pub error: Option<String>,
}

impl TaskResult {
    /// The result of an ended task from the store's record and what its
    /// output said (its executor's summary). `extra_error` is what the
    /// worker knows beyond both (a timeout, a malformed document).
    pub fn build(
        task: &TaskRecord,
        item: &QueueItem,
        output: &OutputSummary,
        extra_error: Option<String>,
        now: Millis,
    ) -> Self {
        let finished = task.finished_at.unwrap_or(now);
        let exit = task.exit();
        let error = extra_error
            .or_else(|| output.error.clone())
            .or_else(|| task.error.clone())
            .or_else(|| match (task.status, exit) {
                (taskdaemon_core::Status::Succeeded, _) => None,
                (taskdaemon_core::Status::Cancelled, _) => Some("cancelled".to_owned()),
                (_, Some(exit)) => Some(exit.to_string()),
                (status, None) => Some(status.to_string()),
            });
        Self {
            task_id: task.id.clone(),
            queue: item.queue.clone(),
            status: task.status.to_string(),
            attempt: task.restarts + 1,
            added_at: Some(to_rfc3339(item.created_at)),
            started_at: task.started_at.map(to_rfc3339),
            finished_at: Some(to_rfc3339(finished)),
            duration_ms: task
                .started_at
                .map(|start| u64::try_from(finished - start).unwrap_or(0)),
            exit_code: exit.and_then(|e| e.code),
            session_id: output.session_id.clone(),
            cost_usd: output.cost_usd,
            num_turns: output.num_turns,
            tokens: output.tokens,
            error,
        }
    }

    pub fn succeeded(&self) -> bool {
        self.status == "succeeded"
    }

    /// The human report: a summary table, the error, and the final text (or
    /// the end of the output for commands).
    pub fn report(&self, item: &QueueItem, final_text: Option<&str>, output_tail: &str) -> String {
        let mut table = String::new();
        let mut row = |key: &str, value: String| {
            table.push_str(&format!("| {key} | {} |\n", value.replace('|', "\\|")));
        };
        row("queue", self.queue.clone());
        row("document", item.document.clone());
        row("executor", item.executor.clone());
        row(
            "attempt",
            format!("{} of {}", self.attempt, item.max_attempts),
        );
        let none = || "-".to_owned();
        row("added", self.added_at.clone().unwrap_or_else(none));
        row("started", self.started_at.clone().unwrap_or_else(none));
        row("finished", self.finished_at.clone().unwrap_or_else(none));
        row(
            "duration",
            self.duration_ms
                .map_or_else(none, |ms| format!("{:.1}s", ms as f64 / 1000.0)),
        );
        row(
            "exit code",
            self.exit_code.map_or_else(none, |c| c.to_string()),
        );
        if let Some(session) = &self.session_id {
            row("session", session.clone());
        }
        if let Some(cost) = self.cost_usd {
            row("cost", format!("${cost:.4}"));
        }
        if let Some(turns) = self.num_turns {
            row("turns", turns.to_string());
        }
        if self.tokens != Tokens::default() {
            let t = self.tokens;
            row(
                "tokens",
                format!(
                    "{} in, {} out, {} cache read, {} cache write",
                    t.input, t.output, t.cache_read, t.cache_creation
                ),
            );
        }
        let mut out = format!(
            "# {}: {}\n\n| | |\n|---|---|\n{table}",
            self.task_id, self.status
        );
        if let Some(error) = &self.error {
            out.push_str(&format!("\n## Error\n\n{error}\n"));
        }
        match final_text {
            Some(text) if !text.trim().is_empty() => {
                out.push_str(&format!("\n## Result\n\n{}\n", text.trim_end()));
            }
            _ if !output_tail.trim().is_empty() => {
                out.push_str(&format!(
                    "\n## Output (end)\n\n```text\n{}\n```\n",
                    output_tail.trim_end()
                ));
            }
            _ => {}
        }
        out
    }

    /// Writes `reports/{id}.md` atomically, not synced: it is prose derived
    /// from the stored result and the task's log. Write it before the result,
    /// so whoever sees the result can read the report too.
    pub fn write_report(&self, folder: &QueueFolder, report: &str) -> io::Result<()> {
        write_projection(&folder.report_path(&self.task_id), report.as_bytes())
    }

    /// Writes `results/{id}.json` atomically and synced: it is what programs
    /// act on.
    pub fn write_result(&self, folder: &QueueFolder) -> io::Result<()> {
        let mut json = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        json.push(b'\n');
        write_atomic(&folder.result_path(&self.task_id), &json)
    }
}

/// The last `lines` lines of an output log (reading at most its last 16 KiB),
/// for the report of a command. Empty when there is no log.
pub fn output_tail(path: &std::path::Path, lines: usize) -> String {
    use std::io::{Read, Seek, SeekFrom};
    const MAX: u64 = 16 * 1024;
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(MAX);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    // A cut first line is partial unless the read began at the start.
    let skip = usize::from(start > 0 && all.len() > 1);
    let from = all.len().saturating_sub(lines).max(skip);
    all[from..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_json_has_exactly_the_documented_fields() {
        let result = TaskResult {
            task_id: "task-1".into(),
            queue: "q".into(),
            status: "succeeded".into(),
            attempt: 1,
            added_at: None,
            started_at: None,
            finished_at: None,
            duration_ms: None,
            exit_code: Some(0),
            session_id: None,
            cost_usd: None,
            num_turns: None,
            tokens: Tokens::default(),
            error: None,
        };
        let json = serde_json::to_value(&result).unwrap();
        let mut keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "added_at",
                "attempt",
                "cost_usd",
                "duration_ms",
                "error",
                "exit_code",
                "finished_at",
                "num_turns",
                "queue",
                "session_id",
                "started_at",
                "status",
                "task_id",
                "tokens"
            ]
        );
        let mut token_keys: Vec<&str> = json["tokens"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        token_keys.sort();
        assert_eq!(
            token_keys,
            ["cache_creation", "cache_read", "input", "output"]
        );
    }
}
