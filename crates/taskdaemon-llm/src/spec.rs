//! What a loop is asked to do: the user-facing [`LoopSpec`] and the checked [`LoopConfig`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::command::CommandSpec;
use crate::config::{Provider, UnknownProvider};
use crate::landlock_sandbox::SandboxPolicy;
use crate::prompt::{DEFAULT_TEMPLATE, PromptTemplate};
use crate::tools::ToolboxConfig;

/// A loop as a user or the daemon describes it (e.g. deserialized from a
/// loop file). Nothing is checked until [`LoopSpec::into_config`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoopSpec {
    /// The spec text itself ...
    #[serde(default)]
    pub spec: Option<String>,
    /// ... or a file holding it (relative paths are relative to `workdir`).
    #[serde(default)]
    pub spec_file: Option<PathBuf>,
    /// Validation: an argv list (no shell) or a string (run with `sh -c`;
    /// it is written by the operator, not the model).
    pub validate: CommandSpec,
    /// Iterations before the loop gives up.
    #[serde(default = "defaults::max_iterations")]
    pub max_iterations: u32,
    /// Model name.
    pub model: String,
    /// `anthropic` or `openai`.
    pub provider: String,
    /// Base URL override (else the provider's env var, else the public endpoint).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Directory the loop works in (its worktree); tools are confined to it.
    pub workdir: PathBuf,
    /// Handlebars template for each iteration's prompt (`spec`, `progress`, `iteration`, `max_iterations`).
    #[serde(default)]
    pub prompt_template: Option<String>,
    /// Validation command timeout, seconds.
    #[serde(default = "defaults::validation_timeout_secs")]
    pub validation_timeout_secs: u64,
    /// Default `run_command` timeout, seconds.
    #[serde(default = "defaults::command_timeout_secs")]
    pub command_timeout_secs: u64,
    /// Tool results and validation output are cut to this many bytes.
    #[serde(default = "defaults::tool_output_limit")]
    pub tool_output_limit: usize,
    /// Whether the model's `run_command` may use a shell.
    #[serde(default)]
    pub shell: bool,
    /// Model/tool round trips per iteration before the iteration is cut short.
    #[serde(default = "defaults::max_tool_rounds")]
    pub max_tool_rounds: u32,
    /// Output token limit per model call.
    #[serde(default = "defaults::max_tokens")]
    pub max_tokens: u32,
    /// Characters of previous iterations' progress put into the prompt.
    #[serde(default = "defaults::progress_chars")]
    pub progress_chars: usize,
    /// Partials the prompt template may include (`{{> name}}`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub prompt_partials: BTreeMap<String, String>,
    /// Extra template variables: a loop type's inputs.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub prompt_vars: Map<String, Value>,
    /// The tools offered to the model; absent = all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_tools: Option<Vec<String>>,
    /// Programs `run_command` may run; absent = any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_commands: Option<Vec<String>>,
    /// `run_command` children run with no network (a new network namespace).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub isolate_network: bool,
    /// How `run_command` children are confined; `none` only when the loop's
    /// type opts out explicitly.
    #[serde(default, skip_serializing_if = "is_landlock")]
    pub sandbox: SandboxPolicy,
    /// Hosts the loop's type allows (recorded; not enforced yet).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_allow: Vec<String>,
    /// Wall-clock limit of the whole loop, seconds (from its type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// Loops of the same type that may run at once (from its type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_concurrency: Option<u32>,
    /// The loop type this loop was started from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loop_type: Option<String>,
    /// The loop-type configuration version it runs with (the daemon's
    /// `config history`); kept for the loop's whole life.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_version: Option<i64>,
}

fn is_landlock(policy: &SandboxPolicy) -> bool {
    *policy == SandboxPolicy::Landlock
}

mod defaults {
    pub fn max_iterations() -> u32 {
        10
    }
    pub fn validation_timeout_secs() -> u64 {
        600
    }
    pub fn command_timeout_secs() -> u64 {
        120
    }
    pub fn tool_output_limit() -> usize {
        16 * 1024
    }
    pub fn max_tool_rounds() -> u32 {
        50
    }
    pub fn max_tokens() -> u32 {
        8192
    }
    pub fn progress_chars() -> usize {
        8000
    }
}

impl LoopSpec {
    /// A spec with defaults for everything optional.
    pub fn new(
        spec: impl Into<String>,
        validate: CommandSpec,
        provider: &str,
        model: &str,
        workdir: &Path,
    ) -> Self {
        LoopSpec {
            spec: Some(spec.into()),
            spec_file: None,
            validate,
            max_iterations: defaults::max_iterations(),
            model: model.into(),
            provider: provider.into(),
            base_url: None,
            workdir: workdir.to_path_buf(),
            prompt_template: None,
            validation_timeout_secs: defaults::validation_timeout_secs(),
            command_timeout_secs: defaults::command_timeout_secs(),
            tool_output_limit: defaults::tool_output_limit(),
            shell: false,
            max_tool_rounds: defaults::max_tool_rounds(),
            max_tokens: defaults::max_tokens(),
            progress_chars: defaults::progress_chars(),
            prompt_partials: BTreeMap::new(),
            prompt_vars: Map::new(),
            allowed_tools: None,
            allowed_commands: None,
            isolate_network: false,
            sandbox: SandboxPolicy::Landlock,
            network_allow: Vec::new(),
            timeout_secs: None,
            type_concurrency: None,
            loop_type: None,
            config_version: None,
        }
    }

    /// Checks everything and loads the spec file, so bad input fails here,
    /// before any API call.
    pub fn into_config(self) -> Result<LoopConfig, SpecError> {
        let provider: Provider = self.provider.parse()?;
        if self.validate.is_empty() {
            return Err(SpecError::EmptyValidate);
        }
        if self.max_iterations == 0 {
            return Err(SpecError::Invalid(
                "max_iterations must be at least 1".into(),
            ));
        }
        if self.max_tool_rounds == 0 {
            return Err(SpecError::Invalid(
                "max_tool_rounds must be at least 1".into(),
            ));
        }
        if self.model.trim().is_empty() {
            return Err(SpecError::Invalid("model is empty".into()));
        }
        let workdir =
            std::fs::canonicalize(&self.workdir).map_err(|source| SpecError::Workdir {
                path: self.workdir.clone(),
                source,
            })?;
        if !workdir.is_dir() {
            return Err(SpecError::Workdir {
                path: self.workdir.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
            });
        }
        let spec_text = match (self.spec, &self.spec_file) {
            (Some(_), Some(_)) => {
                return Err(SpecError::Invalid(
                    "give either spec or spec_file, not both".into(),
                ));
            }
            (Some(text), None) => text,
            (None, Some(file)) => {
                let path = workdir.join(file);
                std::fs::read_to_string(&path)
                    .map_err(|source| SpecError::SpecFile { path, source })?
            }
            // A loop type's own template may not need a spec at all.
            (None, None) if self.prompt_template.is_some() => String::new(),
            (None, None) => return Err(SpecError::Invalid("no spec or spec_file given".into())),
        };
        if spec_text.trim().is_empty() && self.prompt_template.is_none() {
            return Err(SpecError::Invalid("the spec is empty".into()));
        }
        let template = PromptTemplate::compile(
            self.prompt_template.as_deref().unwrap_or(DEFAULT_TEMPLATE),
            &self.prompt_partials,
            Some(&workdir),
        )
        .map_err(SpecError::Template)?
        .with_vars(self.prompt_vars);
        Ok(LoopConfig {
            spec_text,
            validate: self.validate,
            max_iterations: self.max_iterations,
            model: self.model,
            provider,
            base_url: self.base_url,
            workdir,
            template,
            validation_timeout: Duration::from_secs(self.validation_timeout_secs.max(1)),
            tools: ToolboxConfig {
                output_limit: self.tool_output_limit.max(256),
                shell_allowed: self.shell,
                default_timeout: Duration::from_secs(self.command_timeout_secs.max(1)),
                max_timeout: Duration::from_secs(self.command_timeout_secs.max(1) * 10),
                allowed_tools: self.allowed_tools.map(|t| t.into_iter().collect()),
                allowed_commands: self.allowed_commands,
                isolate_network: self.isolate_network,
                sandbox: self.sandbox,
            },
            max_tool_rounds: self.max_tool_rounds,
            max_tokens: self.max_tokens,
            progress_chars: self.progress_chars,
            timeout: self.timeout_secs.map(|s| Duration::from_secs(s.max(1))),
            loop_type: self.loop_type,
            type_concurrency: self.type_concurrency.filter(|n| *n > 0),
        })
    }
}

/// A checked loop configuration.
#[derive(Debug, Clone)]
pub struct LoopConfig {
    /// The spec text.
    pub spec_text: String,
    /// Validation command.
    pub validate: CommandSpec,
    /// Iteration limit.
    pub max_iterations: u32,
    /// Model name.
    pub model: String,
    /// Provider.
    pub provider: Provider,
    /// Base URL override.
    pub base_url: Option<String>,
    /// Canonical workdir.
    pub workdir: PathBuf,
    /// Compiled prompt template.
    pub template: PromptTemplate,
    /// Validation timeout.
    pub validation_timeout: Duration,
    /// Tool settings.
    pub tools: ToolboxConfig,
    /// Rounds per iteration.
    pub max_tool_rounds: u32,
    /// Output tokens per call.
    pub max_tokens: u32,
    /// Progress characters in the prompt.
    pub progress_chars: usize,
    /// Wall-clock limit of the whole loop.
    pub timeout: Option<Duration>,
    /// The loop type it started from, and that type's concurrency limit.
    pub loop_type: Option<String>,
    pub type_concurrency: Option<u32>,
}

/// Why a loop spec was rejected.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// Unknown provider name.
    #[error(transparent)]
    UnknownProvider(#[from] UnknownProvider),
    /// The validate command is empty.
    #[error("the validate command is empty: give an argv list or a shell string")]
    EmptyValidate,
    /// The spec file could not be read.
    #[error("cannot read spec file {}: {source}", path.display())]
    SpecFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The workdir is missing or not a directory.
    #[error("workdir {}: {source}", path.display())]
    Workdir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The prompt template does not compile.
    #[error("prompt template: {0}")]
    Template(String),
    /// Any other invalid value.
    #[error("{0}")]
    Invalid(String),
}
