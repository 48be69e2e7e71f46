//! Loop types from `taskdaemon.yml`: the one place that parses, validates
//! and resolves them.
//!
//! A loop type says how a kind of loop runs: provider and model, iteration
//! and time limits, concurrency, allowed tools (with options), network
//! policy, validation command, a Handlebars prompt with partials, typed
//! inputs and declared outputs. Types inherit (`extends`); built-in `ralph`,
//! `plan`, `spec` and `phase` exist without any file, and a file's type of
//! the same name is layered over the built-in one.
//!
//! Loading is all or nothing: [`LoopTypes::load`] returns every type
//! resolved and checked (templates included), or the first [`ConfigError`],
//! naming file, line, column and field.
//!
//! ```
//! let types = taskdaemon_looptypes::LoopTypes::builtin();
//! let plan = types.get("plan").unwrap();
//! assert_eq!(plan.chain, ["ralph", "plan"]);
//! ```

mod apply;
mod error;
mod inputs;
mod locate;
mod merge;
mod raw;
mod resolve;
mod subst;
mod template;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use apply::Overrides;
pub use error::{ConfigError, did_you_mean};
pub use inputs::{parse_pairs, resolve_inputs};
pub use merge::{Provenance, Source};
pub use raw::{Command, InputDef, InputKind, Network, OutputDef, OutputKind, ToolOptions};
pub use resolve::{BUILTIN_FILE, LoopType, ResolvedValidation};

/// The file's name, at the workspace root.
pub const FILE_NAME: &str = "taskdaemon.yml";
/// The folder (beside the file) whose `*.hbs` files are partials.
pub const PARTIALS_DIR: &str = "prompts";
/// What `taskdaemon config init` writes.
pub const STARTER: &str = include_str!("starter.yml");

/// Every resolved loop type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoopTypes {
    /// The file they were read from; `None` when only the built-ins exist.
    pub file: Option<PathBuf>,
    /// A digest of the resolved types (hex FNV-1a 64): equal digests, equal
    /// configuration.
    pub digest: String,
    pub types: BTreeMap<String, LoopType>,
}

impl LoopTypes {
    /// The built-in types only.
    pub fn builtin() -> Self {
        let defs = resolve::Definitions::new();
        // The built-in file is checked by this crate's tests; an error here
        // would be a bug in the program, so it falls back to no types.
        let types = defs.resolve_all().unwrap_or_default();
        Self::from_types(None, types)
    }

    /// Loads `root/taskdaemon.yml` (and `root/prompts/*.hbs`) over the
    /// built-ins; without the file, the built-ins. Environment variables
    /// are substituted from the process environment.
    pub fn load(root: &Path) -> Result<Self, ConfigError> {
        let path = root.join(FILE_NAME);
        if !path.exists() {
            return Ok(Self::builtin());
        }
        Self::load_file(&path)
    }

    /// Loads one file over the built-ins, with its `prompts/` folder.
    pub fn load_file(path: &Path) -> Result<Self, ConfigError> {
        let label = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::file(&label, format!("cannot read: {e}")))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut loaded =
            Self::load_text(&text, &label, Some(base), &|name| std::env::var(name).ok())?;
        loaded.file = Some(path.to_path_buf());
        Ok(loaded)
    }

    /// Loads `text` (labelled `file` in errors) over the built-ins.
    /// `base_dir` holds `prompt_file`s and the `prompts/` folder; `env`
    /// answers `${VAR}`.
    pub fn load_text(
        text: &str,
        file: &str,
        base_dir: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let substituted = subst::substitute(text, file, env)?;
        let parsed = raw::parse(&substituted, file)?;
        let mut defs = resolve::Definitions::new();
        if let Some(base) = base_dir {
            defs.add_partials_dir(&base.join(PARTIALS_DIR))?;
        }
        defs.add(parsed, file, &substituted, base_dir)?;
        let types = defs.resolve_all()?;
        Ok(Self::from_types(None, types))
    }

    fn from_types(file: Option<PathBuf>, types: BTreeMap<String, LoopType>) -> Self {
        let encoded = serde_json::to_string(&types).unwrap_or_default();
        LoopTypes {
            file,
            digest: format!("{:016x}", fnv1a(encoded.as_bytes())),
            types,
        }
    }

    /// The type `name`, or an error listing the types (with a "did you mean").
    pub fn get(&self, name: &str) -> Result<&LoopType, String> {
        self.types.get(name).ok_or_else(|| {
            let names: Vec<&str> = self.types.keys().map(String::as_str).collect();
            let mut message = format!("no loop type `{name}`");
            if let Some(close) = did_you_mean(name, names.iter().copied()) {
                message.push_str(&format!("; did you mean `{close}`?"));
            }
            message + &format!("; types: {}", names.join(", "))
        })
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
