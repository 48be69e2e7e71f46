//! The `command` executor: `sh -c <script>`, where the script is the
//! `command:` field or else the document's body. Its output is plain text:
//! the report shows its end, and it says nothing about cost or tokens.

use super::{Executor, Launch};
use crate::document::{DocumentError, TaskDocument};
use crate::executor::ExecutorSettings;

/// The `command` executor.
pub(super) struct Command;

impl Command {
    /// `command:`, else the body.
    fn script(doc: &TaskDocument) -> String {
        doc.option::<String>("command")
            .ok()
            .flatten()
            .unwrap_or_else(|| doc.body.trim().to_owned())
    }
}

impl Executor for Command {
    fn name(&self) -> &'static str {
        "command"
    }

    fn fields(&self) -> &'static [&'static str] {
        &["command"]
    }

    fn check(&self, doc: &TaskDocument) -> Result<(), DocumentError> {
        let script = doc
            .option::<String>("command")?
            .unwrap_or_else(|| doc.body.clone());
        if script.trim().is_empty() {
            return Err(doc.error_at_body(
                Some("command"),
                "the command executor needs `command:` (or the command as the body)",
            ));
        }
        Ok(())
    }

    fn launch(&self, doc: &TaskDocument, _settings: &ExecutorSettings) -> Launch {
        Launch {
            argv: vec!["sh".to_owned(), "-c".to_owned(), Self::script(doc)],
            env: Vec::new(),
            container: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;

    fn launch(text: &str) -> Vec<String> {
        let settings = ExecutorSettings {
            claude_path: PathBuf::from("claude"),
            workspace_root: PathBuf::from("/ws"),
            base_env: Vec::new(),
            default_max_attempts: 1,
            retry_backoff: Duration::from_secs(1),
        };
        Command
            .launch(&TaskDocument::parse(text).unwrap(), &settings)
            .argv
    }

    #[test]
    fn the_script_is_the_field_else_the_body() {
        assert_eq!(
            launch("---\nexecutor: command\ncommand: make check\n---\nnotes\n"),
            ["sh", "-c", "make check"]
        );
        assert_eq!(
            launch("---\nexecutor: command\n---\necho hi\n"),
            ["sh", "-c", "echo hi"]
        );
    }

    #[test]
    fn an_empty_script_names_the_field() {
        let err = TaskDocument::parse("---\nexecutor: command\n---\n\n").unwrap_err();
        assert_eq!(err.field.as_deref(), Some("command"), "{err}");
        let err = TaskDocument::parse("---\nexecutor: command\ncommand: [make, test]\n---\n")
            .unwrap_err();
        assert_eq!(
            (err.line, err.field.as_deref()),
            (3, Some("command")),
            "{err}"
        );
    }
}
