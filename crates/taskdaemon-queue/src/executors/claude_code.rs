//! The `claude-code` executor: the Claude Code CLI in headless mode,
//! `claude -p <prompt> --output-format stream-json --verbose`, plus
//! `--model` and `--allowedTools` when the document asks. The prompt is the
//! document's body; the summary comes from the stream's final `result` line
//! (see `stream.rs`).

mod stream;

use std::path::Path;

pub use stream::StreamSummary;

use super::{Executor, Launch, OutputSummary};
use crate::document::{DocumentError, TaskDocument};
use crate::executor::ExecutorSettings;

/// The `claude-code` executor.
pub(super) struct ClaudeCode;

impl ClaudeCode {
    fn model(doc: &TaskDocument) -> Option<String> {
        doc.option("model").ok().flatten()
    }

    fn allowed_tools(doc: &TaskDocument) -> Vec<String> {
        doc.option("allowed_tools")
            .ok()
            .flatten()
            .unwrap_or_default()
    }
}

impl Executor for ClaudeCode {
    fn name(&self) -> &'static str {
        "claude-code"
    }

    fn fields(&self) -> &'static [&'static str] {
        &["model", "allowed_tools"]
    }

    fn check(&self, doc: &TaskDocument) -> Result<(), DocumentError> {
        doc.option::<String>("model")?;
        doc.option::<Vec<String>>("allowed_tools")?;
        if doc.body.trim().is_empty() {
            return Err(
                doc.error_at_body(None, "the document has no prompt after its front matter")
            );
        }
        Ok(())
    }

    fn launch(&self, doc: &TaskDocument, settings: &ExecutorSettings) -> Launch {
        let mut argv = vec![
            settings.claude_path.to_string_lossy().into_owned(),
            "-p".to_owned(),
            doc.body.trim().to_owned(),
            "--output-format".to_owned(),
            "stream-json".to_owned(),
            "--verbose".to_owned(),
        ];
        if let Some(model) = Self::model(doc) {
            argv.extend(["--model".to_owned(), model]);
        }
        let tools = Self::allowed_tools(doc);
        if !tools.is_empty() {
            argv.extend(["--allowedTools".to_owned(), tools.join(",")]);
        }
        Launch {
            argv,
            env: Vec::new(),
            container: None,
        }
    }

    fn summarize(&self, stdout: &Path) -> OutputSummary {
        let stream = std::fs::File::open(stdout)
            .map(|f| StreamSummary::read(std::io::BufReader::new(f)))
            .unwrap_or_default();
        OutputSummary {
            error: stream.error(),
            session_id: stream.session_id,
            num_turns: stream.num_turns,
            cost_usd: stream.cost_usd,
            tokens: stream.tokens,
            final_text: stream.final_text,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::result::Tokens;

    fn settings() -> ExecutorSettings {
        ExecutorSettings {
            claude_path: PathBuf::from("claude"),
            workspace_root: PathBuf::from("/ws"),
            base_env: Vec::new(),
            default_max_attempts: 3,
            retry_backoff: Duration::from_secs(1),
        }
    }

    #[test]
    fn argv_carries_the_prompt_model_and_tools() {
        let doc =
            TaskDocument::parse("---\nmodel: opus\nallowed_tools: [Read, Edit]\n---\nFix it.\n")
                .unwrap();
        assert_eq!(
            ClaudeCode.launch(&doc, &settings()).argv,
            [
                "claude",
                "-p",
                "Fix it.",
                "--output-format",
                "stream-json",
                "--verbose",
                "--model",
                "opus",
                "--allowedTools",
                "Read,Edit"
            ]
        );
    }

    #[test]
    fn its_fields_are_checked_with_line_and_field() {
        let err =
            TaskDocument::parse("---\npriority: 1\nallowed_tools: Read\n---\nx\n").unwrap_err();
        assert_eq!(
            (err.line, err.field.as_deref()),
            (3, Some("allowed_tools")),
            "{err}"
        );
        let err = TaskDocument::parse("---\ncommand: make\n---\nx\n").unwrap_err();
        assert_eq!((err.line, err.field.as_deref()), (2, Some("command")));
        assert!(err.message.contains("executor: command"), "{err}");
    }

    #[test]
    fn the_summary_comes_from_the_result_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("stdout.log");
        std::fs::write(
            &log,
            concat!(
                r#"{"type":"system","subtype":"init","session_id":"s-9"}"#,
                "\n",
                r#"{"type":"result","subtype":"error_max_turns","is_error":true,"num_turns":4,"result":"gave up","session_id":"s-9","total_cost_usd":0.5,"usage":{"input_tokens":3,"output_tokens":2}}"#,
                "\n"
            ),
        )
        .unwrap();
        let summary = ClaudeCode.summarize(&log);
        assert_eq!(summary.session_id.as_deref(), Some("s-9"));
        assert_eq!(summary.num_turns, Some(4));
        assert_eq!(summary.cost_usd, Some(0.5));
        assert_eq!(
            summary.tokens,
            Tokens {
                input: 3,
                output: 2,
                ..Tokens::default()
            }
        );
        assert_eq!(summary.error.as_deref(), Some("gave up"));
        assert_eq!(
            ClaudeCode.summarize(&dir.path().join("missing")),
            OutputSummary::default()
        );
    }
}
