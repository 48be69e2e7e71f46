//! The one error type of loop-type configuration: every problem names the
//! file, and where it can, the line, column and field.

use std::fmt;

/// A problem in `taskdaemon.yml` (or a file it refers to).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file (`<builtin>` for the built-in types).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// Dotted field path (`types.spec.max_iterations`), when known.
    pub field: Option<String>,
    /// What is wrong, and what to do about it.
    pub message: String,
}

impl ConfigError {
    /// An error about the whole file.
    pub fn file(file: &str, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_owned(),
            line: None,
            column: None,
            field: None,
            message: message.into(),
        }
    }

    /// Sets the field path.
    pub fn at_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Sets the line and column (1-based).
    pub fn at(mut self, line: usize, column: usize) -> Self {
        self.line = Some(line);
        self.column = Some(column);
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// "did you mean `x`?" for `word` among `known`, when one is close.
pub use taskdaemon_llm::did_you_mean;

/// `message` with a "did you mean" suffix when one applies.
pub fn with_suggestion<'a>(
    message: String,
    word: &str,
    known: impl IntoIterator<Item = &'a str>,
) -> String {
    match did_you_mean(word, known) {
        Some(k) => format!("{message}; did you mean `{k}`?"),
        None => message,
    }
}
