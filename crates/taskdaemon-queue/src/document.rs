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
//! This module reads the fields every executor shares; the executor named
//! in `executor:` reads and checks its own (see `executors/`). Unknown
//! fields are errors, and every error names the line and the field, so that
//! the report in `failed/` says exactly what to fix.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use taskdaemon_core::ResourceLimits;
use taskdaemon_core::duration::parse_duration;
use taskdaemon_core::limits::parse_size;

use crate::executors::ExecutorKind;

/// The front-matter fields every executor shares, exactly as written.
/// Unknown fields are not rejected here: the executor's own fields pass
/// through, and [`TaskDocument::parse_as`] rejects the rest.
#[derive(Debug, Clone, Default, Deserialize)]
struct FrontMatter {
    executor: Option<String>,
    max_attempts: Option<u32>,
    timeout: Option<String>,
    workdir: Option<PathBuf>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    priority: i32,
    max_memory: Option<String>,
    max_cpu_time: Option<String>,
    max_files: Option<u64>,
    nice: Option<i32>,
}

/// The fields [`FrontMatter`] reads, whatever the executor.
pub(crate) const COMMON_FIELDS: [&str; 10] = [
    "executor",
    "max_attempts",
    "timeout",
    "workdir",
    "env",
    "priority",
    "max_memory",
    "max_cpu_time",
    "max_files",
    "nice",
];

/// A parsed, validated task document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDocument {
    /// What runs it; its own fields are read with [`TaskDocument::option`].
    pub executor: ExecutorKind,
    /// None: use the queue's default from config.
    pub max_attempts: Option<u32>,
    /// Time limit of one attempt.
    pub timeout: Option<Duration>,
    /// Relative paths are relative to the workspace root.
    pub workdir: Option<PathBuf>,
    pub env: BTreeMap<String, String>,
    /// Higher runs first; equal priorities run in file-name order.
    pub priority: i32,
    /// What the executor may use (`max_memory: 2G`, `max_cpu_time: 10m`,
    /// `max_files: 256`, `nice: 10`).
    pub limits: ResourceLimits,
    /// The Markdown after the front matter: the prompt.
    pub body: String,
    /// The front matter's YAML, for the executor's own fields.
    front_matter: String,
    /// The document line the body starts on.
    body_line: usize,
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

/// Whether `name` is a front-matter field of any executor, to tell a field
/// from other words in messages.
fn is_field(name: &str) -> bool {
    COMMON_FIELDS.contains(&name) || ExecutorKind::owning(name).is_some()
}

impl TaskDocument {
    /// Parses a document's text.
    pub fn parse(text: &str) -> Result<Self, DocumentError> {
        Self::parse_as(text, None)
    }

    /// Parses a document's text, run by `executor` whatever its front matter
    /// says (`submit --executor`); `None` follows the front matter.
    pub fn parse_as(text: &str, executor: Option<&str>) -> Result<Self, DocumentError> {
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
        let executor = match executor.or(front.executor.as_deref()) {
            None => ExecutorKind::default(),
            Some(name) => ExecutorKind::from_name(name).ok_or_else(|| {
                error(
                    line_of("executor"),
                    Some("executor"),
                    format!(
                        "unknown executor `{name}`, expected one of: {}",
                        ExecutorKind::names()
                    ),
                )
            })?,
        };
        check_fields(yaml, executor)?;
        let limits = limits_of(&front, &line_of)?;
        let doc = Self {
            executor,
            max_attempts: front.max_attempts,
            timeout,
            workdir: front.workdir,
            env: front.env,
            priority: front.priority,
            limits,
            body: body.to_owned(),
            front_matter: yaml.to_owned(),
            body_line,
        };
        executor.executor().check(&doc)?;
        Ok(doc)
    }

    /// One of the executor's own front-matter fields, `None` when the
    /// document does not set it. The error names the line and the field.
    pub fn option<T: DeserializeOwned>(&self, field: &str) -> Result<Option<T>, DocumentError> {
        if self.front_matter.trim().is_empty() {
            return Ok(None);
        }
        serde_norway::Deserializer::from_str(&self.front_matter)
            .deserialize_map(OneField::<T>::new(field))
            .map_err(|e| {
                let mut err = yaml_error(&self.front_matter, &e);
                err.field.get_or_insert_with(|| field.to_owned());
                err
            })
    }

    /// An error about the value of front-matter field `field`, at its line.
    pub fn error_at_field(&self, field: &str, message: &str) -> DocumentError {
        error(field_line(&self.front_matter, field), Some(field), message)
    }

    /// An error about the body (a missing prompt or script).
    pub fn error_at_body(&self, field: Option<&str>, message: &str) -> DocumentError {
        error(self.body_line, field, message)
    }

    /// Just the priority, for ordering; a malformed document sorts as 0 and
    /// fails when its turn comes.
    pub fn priority_of(text: &str) -> i32 {
        Self::parse(text).map_or(0, |d| d.priority)
    }
}

/// The limits the front matter sets, each error naming its line and field.
fn limits_of(
    front: &FrontMatter,
    line_of: &dyn Fn(&str) -> usize,
) -> Result<ResourceLimits, DocumentError> {
    let max_memory = front
        .max_memory
        .as_deref()
        .map(|m| parse_size(m).map_err(|e| error(line_of("max_memory"), Some("max_memory"), e)))
        .transpose()?;
    let max_cpu_time_ms = front
        .max_cpu_time
        .as_deref()
        .map(|t| {
            parse_duration(t)
                .map(|d| d.as_millis() as u64)
                .map_err(|e| error(line_of("max_cpu_time"), Some("max_cpu_time"), e.to_string()))
        })
        .transpose()?;
    let limits = ResourceLimits {
        max_memory,
        max_cpu_time_ms,
        max_files: front.max_files,
        nice: front.nice,
    };
    limits.validate().map_err(|message| {
        // The message starts with the field it is about.
        let field = ["nice", "max_memory", "max_files", "max_cpu_time"]
            .into_iter()
            .find(|f| message.starts_with(f));
        error(field.map_or(1, line_of), field, message)
    })?;
    Ok(limits)
}

/// Rejects a field that is neither common nor `executor`'s own, naming the
/// executor it belongs to when another one takes it.
fn check_fields(yaml: &str, executor: ExecutorKind) -> Result<(), DocumentError> {
    if yaml.trim().is_empty() {
        return Ok(());
    }
    let keys = serde_norway::Deserializer::from_str(yaml)
        .deserialize_map(Keys)
        .map_err(|e| yaml_error(yaml, &e))?;
    let own = executor.executor().fields();
    for key in keys {
        if COMMON_FIELDS.contains(&key.as_str()) || own.contains(&key.as_str()) {
            continue;
        }
        let message = match ExecutorKind::owning(&key) {
            Some(other) => format!(
                "only the {other} executor takes `{key}:`, not {executor} (add `executor: {other}`)"
            ),
            None => {
                let known: Vec<&str> = COMMON_FIELDS.iter().chain(own).copied().collect();
                format!(
                    "unknown field `{key}` for the {executor} executor, expected one of: {}",
                    known.join(", ")
                )
            }
        };
        return Err(error(field_line(yaml, &key), Some(&key), message));
    }
    Ok(())
}

/// Reads the top-level keys of a YAML mapping, skipping their values.
struct Keys;

impl<'de> Visitor<'de> for Keys {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("front matter fields (`name: value` lines)")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut keys = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            map.next_value::<IgnoredAny>()?;
            keys.push(key);
        }
        Ok(keys)
    }
}

/// Reads one top-level field of a YAML mapping straight from the text, so a
/// value means what it would in a struct field and errors keep their line.
struct OneField<'a, T> {
    name: &'a str,
    value: std::marker::PhantomData<T>,
}

impl<'a, T> OneField<'a, T> {
    fn new(name: &'a str) -> Self {
        Self {
            name,
            value: std::marker::PhantomData,
        }
    }
}

impl<'de, T: DeserializeOwned> Visitor<'de> for OneField<'_, T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("front matter fields (`name: value` lines)")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == self.name {
                found = Some(map.next_value::<T>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
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
        if is_field(top) {
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
        assert_eq!(doc.executor.as_str(), "claude-code");
        assert!(doc.body.contains("cargo test"));
        assert_eq!(doc.max_attempts, None);
    }

    #[test]
    fn front_matter_sets_every_field() {
        let text = "---\nexecutor: command\ncommand: make check\nmax_attempts: 2\ntimeout: 90s\nworkdir: sub\nenv:\n  A: b\npriority: 5\n---\nnotes\n";
        let doc = TaskDocument::parse(text).unwrap();
        assert_eq!(doc.executor.as_str(), "command");
        assert_eq!(
            doc.option::<String>("command").unwrap().as_deref(),
            Some("make check")
        );
        assert_eq!(doc.max_attempts, Some(2));
        assert_eq!(doc.timeout, Some(Duration::from_secs(90)));
        assert_eq!(doc.workdir, Some(PathBuf::from("sub")));
        assert_eq!(doc.env.get("A").map(String::as_str), Some("b"));
        assert_eq!(doc.priority, 5);
        assert_eq!(doc.body, "notes\n");
    }

    #[test]
    fn fields_of_each_executor() {
        let text = "---\nmodel: sonnet\nallowed_tools: [Read, Edit]\n---\nFix it.\n";
        let doc = TaskDocument::parse(text).unwrap();
        assert_eq!(
            doc.option::<Vec<String>>("allowed_tools").unwrap().unwrap(),
            ["Read", "Edit"]
        );
        assert_eq!(
            doc.option::<String>("model").unwrap().as_deref(),
            Some("sonnet")
        );
        // `model` is claude-code's: a command document may not have it.
        let err = TaskDocument::parse_as(text, Some("command")).unwrap_err();
        assert_eq!(
            (err.line, err.field.as_deref()),
            (2, Some("model")),
            "{err}"
        );
        assert!(err.message.contains("executor: claude-code"), "{err}");
        let doc = TaskDocument::parse_as("echo hi\n", Some("command")).unwrap();
        assert_eq!(doc.executor.as_str(), "command");
        let err = TaskDocument::parse_as("x\n", Some("nope")).unwrap_err();
        assert!(err.message.contains("claude-code, command"), "{err}");
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
