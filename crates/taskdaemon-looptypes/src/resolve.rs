//! From parsed files to resolved loop types: the built-in layer, the file's
//! layer (with `prompt_file`s read and the `prompts/` folder's partials),
//! `extends` chains (cycles and unknown parents are errors), the merge, and
//! the checks of every resolved type. Nothing is returned unless every type
//! resolves: the daemon never runs half of a broken file.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{ConfigError, with_suggestion};
use crate::inputs::check_value;
use crate::locate::locate;
use crate::merge::{Provenance, Source, merge, strip_nulls};
use crate::raw::{
    Command, InputDef, Network, OutputDef, OutputKind, RawFile, RawType, ToolOptions,
};
use crate::template;

/// The file label of the built-in types.
pub const BUILTIN_FILE: &str = "<builtin>";
const BUILTIN_TEXT: &str = include_str!("builtin.yml");
/// Validation timeout when a type gives none.
const DEFAULT_VALIDATION_TIMEOUT: Duration = Duration::from_secs(600);

/// A fully resolved loop type, ready to start loops from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoopType {
    pub name: String,
    pub description: Option<String>,
    /// The `extends` chain, root first, ending with this type.
    pub chain: Vec<String>,
    pub provider: String,
    pub model: String,
    pub max_iterations: u32,
    /// Wall-clock limit of a whole loop, seconds.
    pub timeout_secs: Option<u64>,
    /// Loops of this type running at once (under the daemon's global limit).
    pub concurrency: Option<u32>,
    /// Allowed tools and their options.
    pub tools: BTreeMap<String, ToolOptions>,
    pub network: Network,
    /// How the model's commands are confined (Landlock unless opted out).
    #[serde(default)]
    pub sandbox: taskdaemon_llm::SandboxPolicy,
    pub validation: Option<ResolvedValidation>,
    pub prompt: String,
    pub partials: BTreeMap<String, String>,
    pub inputs: BTreeMap<String, InputDef>,
    pub outputs: BTreeMap<String, OutputDef>,
    /// For each resolved value (dotted path), the file and type that set it.
    pub provenance: Provenance,
}

/// A type's validation command, a template over its inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedValidation {
    pub command: Command,
    pub timeout_secs: u64,
}

/// A type's merged layers, their provenance and its `extends` chain.
type Merged = (Map<String, Value>, Provenance, Vec<String>);

/// One definition of a type in one file.
struct Layer {
    source: Source,
    value: Map<String, Value>,
    /// The file `prompt` was read from, when it came from `prompt_file`.
    prompt_origin: Option<String>,
}

/// Every definition, by type name (built-in first, then the file's).
pub(crate) struct Definitions {
    layers: BTreeMap<String, Vec<Layer>>,
    /// File-level partials (`prompts/` folder, then `partials:`), by file label.
    partials: BTreeMap<String, String>,
    /// The text of each file, for locating errors.
    texts: BTreeMap<String, String>,
    /// Templates parsed so far in this load.
    parsed: RefCell<template::Parsed>,
}

impl Definitions {
    pub(crate) fn new() -> Self {
        let mut defs = Definitions {
            layers: BTreeMap::new(),
            partials: BTreeMap::new(),
            texts: BTreeMap::new(),
            parsed: RefCell::default(),
        };
        // The built-in file is part of the program; its tests keep it valid.
        static BUILTIN: std::sync::OnceLock<Option<RawFile>> = std::sync::OnceLock::new();
        let builtin = BUILTIN.get_or_init(|| crate::raw::parse(BUILTIN_TEXT, BUILTIN_FILE).ok());
        if let Some(raw) = builtin {
            let _ = defs.add(raw.clone(), BUILTIN_FILE, BUILTIN_TEXT, None);
        }
        defs
    }

    /// Adds a parsed file. `base_dir` is where `prompt_file`s are found.
    pub(crate) fn add(
        &mut self,
        raw: RawFile,
        file: &str,
        text: &str,
        base_dir: Option<&Path>,
    ) -> Result<(), ConfigError> {
        self.texts.insert(file.to_owned(), text.to_owned());
        if let Some(version) = raw.version.filter(|v| *v != 1) {
            return Err(self.error(
                file,
                &["version"],
                format!("version {version} is not supported; write `version: 1`"),
            ));
        }
        self.partials.extend(raw.partials);
        for (name, mut def) in raw.types {
            let prompt_origin = match def.prompt_file.take() {
                Some(_) if def.prompt.is_some() => {
                    return Err(self.error(
                        file,
                        &["types", &name, "prompt_file"],
                        "give `prompt` or `prompt_file`, not both".into(),
                    ));
                }
                Some(rel) => {
                    let path = base_dir.unwrap_or(Path::new(".")).join(&rel);
                    let text = std::fs::read_to_string(&path).map_err(|e| {
                        self.error(
                            file,
                            &["types", &name, "prompt_file"],
                            format!("cannot read {}: {e}", path.display()),
                        )
                    })?;
                    def.prompt = Some(text);
                    Some(path.display().to_string())
                }
                None => None,
            };
            let value = match serde_json::to_value(&def) {
                Ok(Value::Object(map)) => map,
                _ => Map::new(),
            };
            self.layers.entry(name.clone()).or_default().push(Layer {
                source: Source {
                    file: file.to_owned(),
                    type_name: name,
                },
                value,
                prompt_origin,
            });
        }
        Ok(())
    }

    /// Adds `dir/*.hbs` as partials named by file stem (before `partials:` in the file).
    pub(crate) fn add_partials_dir(&mut self, dir: &Path) -> Result<(), ConfigError> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(());
        };
        let mut found = BTreeMap::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "hbs")
                && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
            {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    ConfigError::file(
                        &path.display().to_string(),
                        format!("cannot read partial: {e}"),
                    )
                })?;
                found.insert(stem.to_owned(), text);
            }
        }
        // Folder partials override the built-in ones; the file's
        // `partials:` (added after) override both.
        self.partials.extend(found);
        Ok(())
    }

    fn error(&self, file: &str, path: &[&str], message: String) -> ConfigError {
        let mut error = ConfigError::file(file, message).at_field(path.join("."));
        if let Some((line, column)) = self.texts.get(file).and_then(|t| locate(t, path)) {
            error = error.at(line, column);
        }
        error
    }

    /// Resolves every type; the first error stops it.
    pub(crate) fn resolve_all(&self) -> Result<BTreeMap<String, LoopType>, ConfigError> {
        self.check_file_partials()?;
        let mut merged = BTreeMap::new();
        let mut types = BTreeMap::new();
        for name in self.layers.keys() {
            let (value, provenance, chain) = self.merged(name, &mut merged, &mut Vec::new())?;
            types.insert(name.clone(), self.finish(name, value, provenance, chain)?);
        }
        Ok(types)
    }

    /// Every file-level partial parses, whether or not a prompt includes it.
    fn check_file_partials(&self) -> Result<(), ConfigError> {
        let mut parsed = self.parsed.borrow_mut();
        for (name, source) in &self.partials {
            if let Err(p) = parsed.parse(&format!("partial {name}"), source) {
                let path = ["partials", name.as_str()];
                // The file that defines it: the user's file before the built-ins.
                let file = self
                    .texts
                    .iter()
                    .rev()
                    .find(|(f, t)| {
                        f.as_str() != BUILTIN_FILE && locate(t, &path).is_some_and(|(l, _)| l > 1)
                    })
                    .map_or(BUILTIN_FILE, |(f, _)| f.as_str());
                return Err(self.error(
                    file,
                    &path,
                    format!(
                        "partial {name} line {} column {}: {}",
                        p.line, p.column, p.message
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The merged layers of `name` and its ancestors (memoized in `done`).
    fn merged(
        &self,
        name: &str,
        done: &mut BTreeMap<String, Merged>,
        stack: &mut Vec<String>,
    ) -> Result<Merged, ConfigError> {
        if let Some(hit) = done.get(name) {
            return Ok(hit.clone());
        }
        let layers = &self.layers[name];
        stack.push(name.to_owned());
        let parent = layers.iter().rev().find_map(|l| {
            l.value
                .get("extends")
                .and_then(Value::as_str)
                .map(|p| (p, l))
        });
        let (mut value, mut provenance, mut chain) = match parent {
            None => (Map::new(), Provenance::new(), Vec::new()),
            Some((parent, layer)) => {
                let at = ["types", name, "extends"];
                if !self.layers.contains_key(parent) {
                    let message = with_suggestion(
                        format!("`{name}` extends `{parent}`, which is not a type"),
                        parent,
                        self.layers.keys().map(String::as_str),
                    );
                    return Err(self.error(&layer.source.file, &at, message));
                }
                if let Some(start) = stack.iter().position(|s| s == parent) {
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(parent.to_owned());
                    return Err(self.error(
                        &layer.source.file,
                        &at,
                        format!("extends cycle: {}", cycle.join(" -> ")),
                    ));
                }
                self.merged(parent, done, stack)?
            }
        };
        for layer in layers {
            let mut own = layer.value.clone();
            own.remove("extends");
            merge(&mut value, &own, &layer.source, &mut provenance, "");
            if let Some(origin) = &layer.prompt_origin {
                provenance.insert(
                    "prompt".into(),
                    Source {
                        file: origin.clone(),
                        type_name: layer.source.type_name.clone(),
                    },
                );
            }
        }
        chain.push(name.to_owned());
        stack.pop();
        let result = (value, provenance, chain);
        done.insert(name.to_owned(), result.clone());
        Ok(result)
    }

    /// Where a resolved field of `name` was set, for an error about it.
    fn blame(&self, name: &str, provenance: &Provenance, field: &[&str]) -> ConfigError {
        let key = field.join(".");
        let below = format!("{key}.");
        // The most specific value under the field takes the blame (a child
        // that set `tools.x.commands` is to blame for `tools.x`).
        let source = provenance
            .iter()
            .find(|(k, _)| k.starts_with(&below))
            .map(|(_, s)| s)
            .or_else(|| provenance.get(&key));
        let (file, type_name) = match source {
            Some(s) if !s.file.ends_with(".hbs") && self.texts.contains_key(&s.file) => {
                (s.file.clone(), s.type_name.clone())
            }
            _ => (
                self.layers[name]
                    .last()
                    .map_or(BUILTIN_FILE.to_owned(), |l| l.source.file.clone()),
                name.to_owned(),
            ),
        };
        let mut path = vec!["types", type_name.as_str()];
        path.extend_from_slice(field);
        self.error(&file, &path, String::new())
    }

    fn finish(
        &self,
        name: &str,
        mut value: Map<String, Value>,
        provenance: Provenance,
        chain: Vec<String>,
    ) -> Result<LoopType, ConfigError> {
        let fail = |field: &[&str], message: String| {
            let mut e = self.blame(name, &provenance, field);
            e.message = format!("type `{name}`: {message}");
            e
        };
        let mut whole = Value::Object(std::mem::take(&mut value));
        strip_nulls(&mut whole);
        let raw: RawType =
            serde_json::from_value(whole).map_err(|e| fail(&[], format!("cannot resolve: {e}")))?;
        let provider = raw
            .provider
            .ok_or_else(|| fail(&[], "no `provider` (anthropic or openai)".into()))?;
        provider
            .parse::<taskdaemon_llm::Provider>()
            .map_err(|e| fail(&["provider"], e.to_string()))?;
        let model = raw
            .model
            .filter(|m| !m.trim().is_empty())
            .ok_or_else(|| fail(&["model"], "no `model`".into()))?;
        let max_iterations = raw.max_iterations.unwrap_or(10);
        if max_iterations == 0 {
            return Err(fail(
                &["max_iterations"],
                "max_iterations must be at least 1".into(),
            ));
        }
        if raw.concurrency == Some(0) {
            return Err(fail(
                &["concurrency"],
                "concurrency must be at least 1".into(),
            ));
        }
        let timeout_secs = raw
            .timeout
            .as_ref()
            .map(|t| duration_secs(t).map_err(|e| fail(&["timeout"], e)))
            .transpose()?;
        let tools: BTreeMap<String, ToolOptions> = raw
            .tools
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect();
        // Toolbox tools act in the workdir; pipeline tools are offered only
        // when the loop's owner handles them (a plan's loops), see PipelineLoop.
        let known_tools: Vec<&str> = taskdaemon_llm::TOOL_NAMES
            .iter()
            .chain(taskdaemon_llm::PIPELINE_TOOL_NAMES.iter())
            .copied()
            .collect();
        for (tool, options) in &tools {
            if !known_tools.contains(&tool.as_str()) {
                let message = with_suggestion(
                    format!("unknown tool `{tool}`"),
                    tool,
                    known_tools.iter().copied(),
                ) + &format!("; tools: {}", known_tools.join(", "));
                return Err(fail(&["tools", tool], message));
            }
            if tool != "run_command" && (options.commands.is_some() || options.shell.is_some()) {
                return Err(fail(
                    &["tools", tool],
                    format!("`commands` and `shell` are options of run_command, not {tool}"),
                ));
            }
            if options
                .commands
                .as_ref()
                .is_some_and(|c| c.iter().any(|p| p.trim().is_empty()))
            {
                return Err(fail(
                    &["tools", tool, "commands"],
                    "an allowed command is empty".into(),
                ));
            }
        }
        let inputs: BTreeMap<String, InputDef> = raw
            .inputs
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
        for (input, def) in &inputs {
            if !is_identifier(input) || taskdaemon_llm::ENGINE_VARIABLES.contains(&input.as_str()) {
                return Err(fail(
                    &["inputs", input],
                    format!(
                        "input name `{input}` must be an identifier and not one of the engine's variables ({})",
                        taskdaemon_llm::ENGINE_VARIABLES.join(", ")
                    ),
                ));
            }
            if let Some(default) = &def.default {
                check_value(def, default)
                    .map_err(|e| fail(&["inputs", input, "default"], format!("default: {e}")))?;
            }
        }
        let input_names: BTreeSet<String> = inputs.keys().cloned().collect();
        let mut partials = self.partials.clone();
        partials.extend(raw.partials.unwrap_or_default());
        let prompt = raw
            .prompt
            .filter(|p| !p.trim().is_empty())
            .ok_or_else(|| fail(&["prompt"], "no `prompt` or `prompt_file`".into()))?;
        let mut prompt_vars = input_names.clone();
        prompt_vars.extend(
            taskdaemon_llm::ENGINE_VARIABLES
                .iter()
                .map(|s| s.to_string()),
        );
        // The engine's own parser: a template that passes here compiles there.
        let parsed = &mut self.parsed.borrow_mut();
        for (name, source) in &partials {
            parsed
                .parse(&format!("partial {name}"), source)
                .map_err(|p| {
                    fail(
                        &["partials", name],
                        format!(
                            "{} line {} column {}: {}",
                            p.template, p.line, p.column, p.message
                        ),
                    )
                })?;
        }
        template::check(parsed, "prompt", &prompt, &partials, &prompt_vars).map_err(|p| {
            fail(
                &["prompt"],
                format!(
                    "{} line {} column {}: {}",
                    p.template, p.line, p.column, p.message
                ),
            )
        })?;
        let validation = match raw.validation {
            None => None,
            Some(v) => {
                let timeout_secs = match &v.timeout {
                    Some(t) => duration_secs(t).map_err(|e| fail(&["validation", "timeout"], e))?,
                    None => DEFAULT_VALIDATION_TIMEOUT.as_secs(),
                };
                let parts: Vec<&str> = match &v.command {
                    Command::Shell(line) => vec![line.as_str()],
                    Command::Argv(argv) => argv.iter().map(String::as_str).collect(),
                };
                if parts.first().is_none_or(|p| p.trim().is_empty()) {
                    return Err(fail(
                        &["validation"],
                        "the validation command is empty".into(),
                    ));
                }
                for part in parts {
                    template::check(parsed, "validation", part, &BTreeMap::new(), &input_names)
                        .map_err(|p| fail(&["validation"], p.message))?;
                }
                Some(ResolvedValidation {
                    command: v.command,
                    timeout_secs,
                })
            }
        };
        let outputs: BTreeMap<String, OutputDef> = raw
            .outputs
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
        for (output, def) in &outputs {
            match (&def.kind, &def.path) {
                (OutputKind::File | OutputKind::Dir, None) => {
                    return Err(fail(
                        &["outputs", output],
                        "a file or dir output needs a `path`".into(),
                    ));
                }
                (_, Some(path)) => {
                    if path.starts_with('/') || path.split('/').any(|p| p == "..") {
                        return Err(fail(
                            &["outputs", output, "path"],
                            format!("`{path}` must be relative to the worktree, without `..`"),
                        ));
                    }
                    template::check(parsed, "output path", path, &BTreeMap::new(), &input_names)
                        .map_err(|p| fail(&["outputs", output, "path"], p.message))?;
                }
                _ => {}
            }
        }
        Ok(LoopType {
            name: name.to_owned(),
            description: raw.description,
            chain,
            provider,
            model,
            max_iterations,
            timeout_secs,
            concurrency: raw.concurrency,
            tools,
            network: raw.network.unwrap_or(Network::Open),
            sandbox: raw.sandbox.unwrap_or_default(),
            validation,
            prompt,
            partials,
            inputs,
            outputs,
            provenance,
        })
    }
}

/// `90`, `"90s"`, `"30m"`, `"2h"`: whole seconds, at least 1.
fn duration_secs(value: &Value) -> Result<u64, String> {
    let secs = match value {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| format!("`{n}` is not a whole number of seconds"))?,
        Value::String(s) => humantime::parse_duration(s)
            .map_err(|e| format!("`{s}` is not a duration (like 90s, 30m, 2h): {e}"))?
            .as_secs(),
        other => return Err(format!("`{other}` is not a duration (like 90s, 30m, 2h)")),
    };
    if secs == 0 {
        return Err("a timeout must be at least 1 second".into());
    }
    Ok(secs)
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_file_parses_and_resolves() {
        let raw = crate::raw::parse(BUILTIN_TEXT, BUILTIN_FILE).unwrap();
        let mut defs = Definitions {
            layers: BTreeMap::new(),
            partials: BTreeMap::new(),
            texts: BTreeMap::new(),
            parsed: RefCell::default(),
        };
        defs.add(raw, BUILTIN_FILE, BUILTIN_TEXT, None).unwrap();
        let types = defs.resolve_all().unwrap();
        assert_eq!(types.len(), 7);
    }
}
