//! Task documents: Markdown with optional YAML front matter.
//!
//! ```text
//! ---
//! executor: command        # claude-code (default) or command
//! command: cargo test      # for the command executor (else the body is the script)
//! max_attempts: 2
//! timeout: 10m
//! ---
//! The prompt (claude-code) or notes for people.
//! ```
//!
//! Unknown fields are errors, and every error names the line and the field,
//! so that the report in `failed/` says exactly what to fix.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use taskdaemon_core::duration::parse_duration;

/// Which executor runs a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExecutorKind {
    /// `claude -p <prompt> --output-format stream-json --verbose`.
    #[default]
    ClaudeCode,
    /// `sh -c <command>`.
    Command,
}

impl ExecutorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutorKind::ClaudeCode => "claude-code",
            ExecutorKind::Command => "command",
        }
    }
}

/// The front matter exactly as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    executor: Option<ExecutorKind>,
    max_attempts: Option<u32>,
    timeout: Option<String>,
    model: Option<String>,
    workdir: Option<PathBuf>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    allowed_tools: Vec<String>,
    #[serde(default)]
    priority: i32,
    command: Option<String>,
}

/// A parsed, validated task document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDocument {
    pub executor: ExecutorKind,
    /// None: use the queue's default from config.
    pub max_attempts: Option<u32>,
    /// Time limit of one attempt.
    pub timeout: Option<Duration>,
    pub model: Option<String>,
    /// Relative paths are relative to the workspace root.
    pub workdir: Option<PathBuf>,
    pub env: BTreeMap<String, String>,
    pub allowed_tools: Vec<String>,
    /// Higher runs first; equal priorities run in file-name order.
    pub priority: i32,
    /// The shell command of the `command` executor.
    pub command: Option<String>,
    /// The Markdown after the front matter: the prompt.
    pub body: String,
}

/// A document that cannot be run, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DocumentError {
    /// 1-based line in the document file.
    pub line: usize,
    /// The front-matter field at fault, when one is.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}", self.line)?;
        if let Some(field) = &self.field {
            write!(f, ", field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

fn error(line: usize, field: Option<&str>, message: impl Into<String>) -> DocumentError {
    DocumentError {
        line,
        field: field.map(str::to_owned),
        message: message.into(),
    }
}

/// Front-matter field names, to tell a field from other words in messages.
const FIELDS: [&str; 9] = [
    "executor",
    "max_attempts",
    "timeout",
    "model",
    "workdir",
    "env",
    "allowed_tools",
    "priority",
    "command",
];

impl TaskDocument {
    /// Parses a document's text.
    pub fn parse(text: &str) -> Result<Self, DocumentError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let (yaml, body) = split_front_matter(text)?;
        let front: FrontMatter = match yaml {
            Some(yaml) if !yaml.trim().is_empty() => {
                serde_norway::from_str(yaml).map_err(|e| yaml_error(yaml, &e))?
            }
            _ => FrontMatter::default(),
        };
        // The first body line: after `---`, the YAML and the closing `---`.
        let body_line = yaml.map_or(1, |y| y.lines().count() + 3);
        let yaml = yaml.unwrap_or("");
        let line_of = |field: &str| field_line(yaml, field);
        let timeout = front
            .timeout
            .as_deref()
            .map(|t| {
                parse_duration(t)
                    .map_err(|e| error(line_of("timeout"), Some("timeout"), e.to_string()))
            })
            .transpose()?;
        if timeout.is_some_and(|t| t.is_zero()) {
            return Err(error(
                line_of("timeout"),
                Some("timeout"),
                "must be more than zero",
            ));
        }
        if front.max_attempts == Some(0) {
            return Err(error(
                line_of("max_attempts"),
                Some("max_attempts"),
                "must be at least 1",
            ));
        }
        let executor = front.executor.unwrap_or_default();
        let body = body.to_owned();
        match executor {
            ExecutorKind::Command => {
                let script = front.command.as_deref().unwrap_or(body.trim());
                if script.trim().is_empty() {
                    return Err(error(
                        body_line,
                        Some("command"),
                        "the command executor needs `command:` (or the command as the body)",
                    ));
                }
            }
            ExecutorKind::ClaudeCode => {
                if front.command.is_some() {
                    return Err(error(
                        line_of("command"),
                        Some("command"),
                        "only the command executor takes `command:` (add `executor: command`)",
                    ));
                }
                if body.trim().is_empty() {
                    return Err(error(
                        body_line,
                        None,
                        "the document has no prompt after its front matter",
                    ));
                }
            }
        }
        Ok(Self {
            executor,
            max_attempts: front.max_attempts,
            timeout,
            model: front.model,
            workdir: front.workdir,
            env: front.env,
            allowed_tools: front.allowed_tools,
            priority: front.priority,
            command: front.command,
            body,
        })
    }

    /// The shell script of the `command` executor: `command:`, else the body.
    pub fn script(&self) -> &str {
        self.command.as_deref().unwrap_or(self.body.trim())
    }

    /// Just the priority, for ordering; a malformed document sorts as 0 and
    /// fails when its turn comes.
    pub fn priority_of(text: &str) -> i32 {
        Self::parse(text).map_or(0, |d| d.priority)
    }
}

/// Splits `---\n<yaml>\n---\n<body>`; no opening `---` means no front matter.
fn split_front_matter(text: &str) -> Result<(Option<&str>, &str), DocumentError> {
    let first_end = text.find('\n').map_or(text.len(), |i| i + 1);
    if text[..first_end].trim_end() != "---" {
        return Ok((None, text));
    }
    let rest = &text[first_end..];
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed == "..." {
            let yaml = &rest[..offset];
            let body = &rest[offset + line.len()..];
            return Ok((Some(yaml), body));
        }
        offset += line.len();
    }
    Err(error(
        1,
        None,
        "the front matter opened with `---` is never closed (add a `---` line after it)",
    ))
}

/// The document line of a YAML error: one more than the YAML line (the
/// opening `---`), with the field taken from the message.
fn yaml_error(yaml: &str, e: &serde_norway::Error) -> DocumentError {
    let text = e.to_string();
    let message = match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text.clone(),
    };
    let (field, message) = split_field(&message);
    let line = match (e.location(), &field) {
        (Some(location), _) => location.line() + 1,
        (None, Some(field)) => field_line(yaml, field),
        (None, None) => 2,
    };
    error(line, field.as_deref(), message)
}

/// `max_attempts: invalid type...` -> field and rest; `unknown field `x`` -> x.
fn split_field(message: &str) -> (Option<String>, String) {
    if let Some((head, rest)) = message.split_once(": ") {
        let top = head.split(['.', '[']).next().unwrap_or(head);
        if FIELDS.contains(&top) {
            return (Some(head.to_owned()), rest.to_owned());
        }
    }
    if let Some(start) = message.find("unknown field `") {
        let name = &message[start + "unknown field `".len()..];
        if let Some(end) = name.find('`') {
            return (Some(name[..end].to_owned()), message.to_owned());
        }
    }
    if message.contains("unknown variant") {
        return (Some("executor".to_owned()), message.to_owned());
    }
    (None, message.to_owned())
}

/// The document line where `field:` is written at the top level, or the
/// first front-matter line when it is not.
fn field_line(yaml: &str, field: &str) -> usize {
    yaml.lines()
        .position(|line| {
            line.strip_prefix(field)
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
        })
        .map_or(2, |i| i + 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_markdown_is_a_claude_prompt() {
        let doc = TaskDocument::parse("# Fix the build\n\nMake `cargo test` pass.\n").unwrap();
        assert_eq!(doc.executor, ExecutorKind::ClaudeCode);
        assert!(doc.body.contains("cargo test"));
        assert_eq!(doc.max_attempts, None);
    }

    #[test]
    fn front_matter_sets_every_field() {
        let text = "---\nexecutor: command\ncommand: make check\nmax_attempts: 2\ntimeout: 90s\nmodel: sonnet\nworkdir: sub\nenv:\n  A: b\nallowed_tools: [Read, Edit]\npriority: 5\n---\nnotes\n";
        let doc = TaskDocument::parse(text).unwrap();
        assert_eq!(doc.executor, ExecutorKind::Command);
        assert_eq!(doc.script(), "make check");
        assert_eq!(doc.max_attempts, Some(2));
        assert_eq!(doc.timeout, Some(Duration::from_secs(90)));
        assert_eq!(doc.env.get("A").map(String::as_str), Some("b"));
        assert_eq!(doc.allowed_tools, ["Read", "Edit"]);
        assert_eq!(doc.priority, 5);
        assert_eq!(doc.body, "notes\n");
    }

    #[test]
    fn the_body_can_be_the_command() {
        let doc = TaskDocument::parse("---\nexecutor: command\n---\necho hi\n").unwrap();
        assert_eq!(doc.script(), "echo hi");
    }

    #[test]
    fn errors_name_line_and_field() {
        let err = TaskDocument::parse("---\nexecutor: command\nmax_attempts: many\n---\nx\n")
            .unwrap_err();
        assert_eq!(
            (err.line, err.field.as_deref()),
            (3, Some("max_attempts")),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("line 3, field `max_attempts`: "),
            "{err}"
        );

        let err = TaskDocument::parse("---\nmodel: x\nretries: 3\n---\nx\n").unwrap_err();
        assert_eq!(
            (err.line, err.field.as_deref()),
            (3, Some("retries")),
            "{err}"
        );

        let err = TaskDocument::parse("---\nexecutor: loop\n---\nx\n").unwrap_err();
        assert_eq!(
            (err.line, err.field.as_deref()),
            (2, Some("executor")),
            "{err}"
        );

        let err =
            TaskDocument::parse("---\nmodel: x\n\ntimeout: 5 fortnights\n---\nx\n").unwrap_err();
        assert_eq!(
            (err.line, err.field.as_deref()),
            (4, Some("timeout")),
            "{err}"
        );

        let err = TaskDocument::parse("---\nmodel: [unclosed\n---\nx\n").unwrap_err();
        assert!(err.line >= 2, "{err}");

        let err = TaskDocument::parse("---\nmodel: x\nno end\n").unwrap_err();
        assert!(err.message.contains("never closed"), "{err}");

        let err = TaskDocument::parse("---\nexecutor: command\n---\n\n").unwrap_err();
        assert_eq!(err.field.as_deref(), Some("command"), "{err}");

        let err = TaskDocument::parse("---\nmodel: x\n---\n").unwrap_err();
        assert!(err.message.contains("no prompt"), "{err}");
    }

    #[test]
    fn crlf_and_bom_are_accepted() {
        let doc = TaskDocument::parse("\u{feff}---\r\npriority: 2\r\n---\r\nhello\r\n").unwrap();
        assert_eq!(doc.priority, 2);
        assert_eq!(doc.body.trim(), "hello");
    }
}
