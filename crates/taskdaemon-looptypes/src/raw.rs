//! The file as written: serde structs that reject unknown keys, and the
//! parser that turns a serde error into a [`ConfigError`] naming the line,
//! column and field path, with a "did you mean" for a misspelt key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ConfigError, with_suggestion};

/// A whole `taskdaemon.yml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    /// Format version; only 1 exists.
    #[serde(default)]
    pub version: Option<u32>,
    /// Partials every type's prompt may include.
    #[serde(default)]
    pub partials: BTreeMap<String, String>,
    /// Loop types by name.
    #[serde(default)]
    pub types: BTreeMap<String, RawType>,
}

/// One type as written: every field optional (it may come from a parent).
/// Serialized (without the `None`s) it is the layer inheritance merges.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawType {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extends: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_iterations: Option<u32>,
    /// A duration: `90s`, `30m`, `2h`, or plain seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// Allowed tools with their options; `null` removes an inherited tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<BTreeMap<String, Option<ToolOptions>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    /// How the model's commands are confined: `landlock` (the default) or
    /// `none`, an explicit opt-out where Landlock is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<taskdaemon_llm::SandboxPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<Validation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partials: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<BTreeMap<String, Option<InputDef>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<BTreeMap<String, Option<OutputDef>>>,
}

/// Options of one allowed tool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolOptions {
    /// `run_command` only: the programs it may run (argv[0]); absent = any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands: Option<Vec<String>>,
    /// `run_command` only: whether a shell string is allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<bool>,
}

/// Network access of a loop's commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub enum Network {
    /// No restriction (the default).
    Open,
    /// Commands run in an empty network namespace.
    None,
    /// Only these hosts (recorded; see the README for what is enforced).
    Allow(Vec<String>),
}

impl TryFrom<Value> for Network {
    type Error = String;

    fn try_from(value: Value) -> Result<Self, String> {
        const WANT: &str = "network must be `none`, `open`, or `{allow: [host, ...]}`";
        match &value {
            Value::String(s) if s == "none" => Ok(Network::None),
            Value::String(s) if s == "open" => Ok(Network::Open),
            Value::Object(map) => match (map.len(), map.get("allow")) {
                (1, Some(Value::Array(hosts))) => hosts
                    .iter()
                    .map(|h| h.as_str().map(str::to_owned).ok_or_else(|| WANT.to_owned()))
                    .collect::<Result<_, _>>()
                    .map(Network::Allow),
                _ => Err(format!("{WANT}, got {value}")),
            },
            other => Err(format!("{WANT}, got {other}")),
        }
    }
}

impl From<Network> for Value {
    fn from(network: Network) -> Value {
        match network {
            Network::Open => Value::from("open"),
            Network::None => Value::from("none"),
            Network::Allow(hosts) => serde_json::json!({ "allow": hosts }),
        }
    }
}

/// The validation command: a shell string, an argv list, or
/// `{command: ..., timeout: ...}`. It may use the type's inputs (`{{name}}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Value")]
pub struct Validation {
    pub command: Command,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Value>,
}

impl TryFrom<Value> for Validation {
    type Error = String;

    fn try_from(value: Value) -> Result<Self, String> {
        const WANT: &str =
            "validation must be a command (a string or a list) or {command: ..., timeout: ...}";
        let command = |v: Value| serde_json::from_value::<Command>(v).map_err(|_| WANT.to_owned());
        match value {
            Value::Object(mut map) => {
                if let Some(key) = map.keys().find(|k| *k != "command" && *k != "timeout") {
                    return Err(with_suggestion(
                        format!("unknown key `{key}` in validation"),
                        key,
                        ["command", "timeout"],
                    ));
                }
                let Some(cmd) = map.remove("command") else {
                    return Err("validation needs `command`".to_owned());
                };
                Ok(Validation {
                    command: command(cmd)?,
                    timeout: map.remove("timeout"),
                })
            }
            other => Ok(Validation {
                command: command(other)?,
                timeout: None,
            }),
        }
    }
}

/// A command: a string for `sh -c` or an argv list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Command {
    Shell(String),
    Argv(Vec<String>),
}

/// A typed input of a loop type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputDef {
    #[serde(rename = "type", default = "InputKind::default_kind")]
    pub kind: InputKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Used when the input is not given; an input without one is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Allowed values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choices: Option<Vec<Value>>,
    /// Numbers: inclusive bounds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// The type of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputKind {
    String,
    Integer,
    Number,
    Boolean,
    /// A path relative to the loop's worktree (no `..`, not absolute).
    Path,
}

impl InputKind {
    fn default_kind() -> Self {
        InputKind::String
    }
}

/// What a loop must produce; the Plan -> Spec -> Phase cascade reads these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputDef {
    pub kind: OutputKind,
    /// Worktree-relative path (a template over the inputs); required for
    /// `file` and `dir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The kind of an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputKind {
    /// One file at `path`.
    File,
    /// A directory at `path`, not empty.
    Dir,
    /// The model's final summary.
    Text,
}

/// Parses `text` (already substituted) as a `taskdaemon.yml`.
pub fn parse(text: &str, file: &str) -> Result<RawFile, ConfigError> {
    if text.trim().is_empty() {
        return Ok(RawFile::default());
    }
    let deserializer = serde_norway::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        let mut error = ConfigError::file(file, explain(without_path(&message, &path)));
        if let Some(location) = inner.location() {
            error = error.at(location.line(), location.column());
        }
        if path != "." {
            error = error.at_field(path);
        }
        error
    })
}

/// serde_norway starts a message with the path of the node it was in
/// (`types.a: ...`); we print the full path ourselves.
fn without_path<'m>(message: &'m str, path: &str) -> &'m str {
    match message.split_once(": ") {
        Some((prefix, rest)) if path == prefix || path.starts_with(&format!("{prefix}.")) => rest,
        _ => message,
    }
}

/// The serde message without its trailing position (we print our own),
/// with a "did you mean" for an unknown field.
fn explain(message: &str) -> String {
    let message = match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    };
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message;
    };
    let Some((word, expected)) = rest.split_once('`') else {
        return message;
    };
    let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    with_suggestion(format!("unknown key `{word}`"), word, known.iter().copied())
        + &format!("; allowed: {}", known.join(", "))
}
