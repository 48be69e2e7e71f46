//! The tools offered to the model, and their execution inside the sandbox.
//!
//! Every failure — bad input, unknown tool, a refused path, a missing file —
//! becomes a [`ToolOutput`] with `is_error: true` that goes back to the model;
//! nothing here fails the loop.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::command::{CommandSpec, Isolation, run_command_isolated, truncate_output};
use crate::confine::Sandbox;
use crate::landlock_sandbox::{PreparedSandbox, SandboxPolicy};
use crate::types::ToolSpec;

/// Files larger than this are skipped by `search_files` and refused by `read_file`.
const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024;

/// Every tool a [`Toolbox`] offers, by the name the model calls it with.
pub const TOOL_NAMES: [&str; 6] = [
    "read_file",
    "write_file",
    "edit_file",
    "list_dir",
    "search_files",
    "run_command",
];

/// Tool settings of one loop.
#[derive(Debug, Clone)]
pub struct ToolboxConfig {
    /// Tool results are truncated to this many bytes, with a marker.
    pub output_limit: usize,
    /// Whether `run_command` may use a shell (`command` string).
    pub shell_allowed: bool,
    /// `run_command` timeout when the model gives none.
    pub default_timeout: Duration,
    /// Upper bound on a model-requested timeout.
    pub max_timeout: Duration,
    /// The tools offered; `None` offers all of [`TOOL_NAMES`].
    pub allowed_tools: Option<BTreeSet<String>>,
    /// Programs (argv[0], or its file name) `run_command` may run; `None` allows any.
    pub allowed_commands: Option<Vec<String>>,
    /// Run `run_command` children in a new, empty network namespace.
    pub isolate_network: bool,
    /// How `run_command` children are confined (Landlock unless opted out).
    pub sandbox: SandboxPolicy,
}

impl Default for ToolboxConfig {
    fn default() -> Self {
        ToolboxConfig {
            output_limit: 16 * 1024,
            shell_allowed: false,
            default_timeout: Duration::from_secs(120),
            max_timeout: Duration::from_secs(600),
            allowed_tools: None,
            allowed_commands: None,
            isolate_network: false,
            sandbox: SandboxPolicy::Landlock,
        }
    }
}

/// A tool's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutput {
    /// Text for the model.
    pub content: String,
    /// Whether it failed or was refused.
    pub is_error: bool,
}

impl ToolOutput {
    fn ok(content: impl Into<String>) -> Self {
        ToolOutput {
            content: content.into(),
            is_error: false,
        }
    }

    fn err(content: impl Into<String>) -> Self {
        ToolOutput {
            content: content.into(),
            is_error: true,
        }
    }
}

/// The tools of one loop, confined to its workdir. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Toolbox {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    sandbox: Sandbox,
    config: ToolboxConfig,
}

#[derive(Deserialize)]
struct PathInput {
    path: String,
}

#[derive(Deserialize)]
struct WriteInput {
    path: String,
    content: String,
}

#[derive(Deserialize)]
struct EditInput {
    path: String,
    old: String,
    new: String,
}

#[derive(Deserialize)]
struct ListInput {
    #[serde(default)]
    path: Option<String>,
}

#[derive(Deserialize)]
struct SearchInput {
    pattern: String,
    #[serde(default)]
    path: Option<String>,
}

#[derive(Deserialize)]
struct RunInput {
    #[serde(default)]
    argv: Option<Vec<String>>,
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    timeout_secs: Option<u64>,
}

impl Toolbox {
    /// Tools for `workdir` (which must exist).
    pub fn new(workdir: &Path, config: ToolboxConfig) -> std::io::Result<Self> {
        Ok(Toolbox {
            inner: Arc::new(Inner {
                sandbox: Sandbox::new(workdir)?,
                config,
            }),
        })
    }

    /// The sandbox.
    pub fn sandbox(&self) -> &Sandbox {
        &self.inner.sandbox
    }

    /// Whether this loop offers the tool `name`.
    fn allows(&self, name: &str) -> bool {
        self.inner
            .config
            .allowed_tools
            .as_ref()
            .is_none_or(|allowed| allowed.contains(name))
    }

    /// Tool definitions with JSON schemas, for the request.
    pub fn specs(&self) -> Vec<ToolSpec> {
        let spec = |name: &str, description: &str, schema: Value| ToolSpec {
            name: name.into(),
            description: description.into(),
            input_schema: schema,
        };
        let mut run_props = json!({
            "argv": {"type": "array", "items": {"type": "string"},
                     "description": "Program and arguments, run without a shell."},
            "timeout_secs": {"type": "integer", "minimum": 1},
        });
        let mut run_desc =
            "Run a program in the workdir and return its exit code and output.".to_string();
        if self.inner.config.shell_allowed {
            run_props["command"] =
                json!({"type": "string", "description": "A shell command line (sh -c)."});
            run_desc.push_str(" Give either argv or command.");
        }
        vec![
            spec(
                "read_file",
                "Read a text file in the workdir.",
                json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}),
            ),
            spec(
                "write_file",
                "Create or overwrite a file in the workdir (parent directories are created).",
                json!({"type": "object", "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
                       "required": ["path", "content"]}),
            ),
            spec(
                "edit_file",
                "Replace the exact text `old` with `new` in a file; `old` must occur exactly once.",
                json!({"type": "object", "properties": {"path": {"type": "string"}, "old": {"type": "string"},
                       "new": {"type": "string"}}, "required": ["path", "old", "new"]}),
            ),
            spec(
                "list_dir",
                "List a directory in the workdir (directories end with /).",
                json!({"type": "object", "properties": {"path": {"type": "string"}}}),
            ),
            spec(
                "search_files",
                "Search files under a directory for a regular expression; prints path:line: text.",
                json!({"type": "object", "properties": {"pattern": {"type": "string"}, "path": {"type": "string"}},
                       "required": ["pattern"]}),
            ),
            spec(
                "run_command",
                &run_desc,
                json!({"type": "object", "properties": run_props}),
            ),
        ]
        .into_iter()
        .filter(|tool| self.allows(&tool.name))
        .collect()
    }

    /// Runs tool `name` with `input`. `input_error` is set when the model's
    /// input JSON did not parse; the call is then answered with that error.
    pub async fn execute(
        &self,
        name: &str,
        input: &Value,
        input_error: Option<&str>,
        cancel: &CancellationToken,
    ) -> ToolOutput {
        if let Some(error) = input_error {
            return ToolOutput::err(format!("invalid input for {name}: {error}"));
        }
        let limit = self.inner.config.output_limit;
        if TOOL_NAMES.contains(&name) && !self.allows(name) {
            return ToolOutput::err(format!("tool '{name}' is not allowed for this loop's type"));
        }
        let out = match name {
            "run_command" => match parse::<RunInput>(name, input) {
                Ok(run) => self.run(run, cancel).await,
                Err(e) => e,
            },
            "read_file" | "write_file" | "edit_file" | "list_dir" | "search_files" => {
                let this = self.clone();
                let name = name.to_string();
                let input = input.clone();
                tokio::task::spawn_blocking(move || this.fs_tool(&name, &input))
                    .await
                    .unwrap_or_else(|e| ToolOutput::err(format!("tool failed: {e}")))
            }
            other => ToolOutput::err(format!(
                "unknown tool '{other}'; available: read_file, write_file, edit_file, list_dir, search_files, run_command"
            )),
        };
        ToolOutput {
            content: truncate_output(&out.content, limit),
            is_error: out.is_error,
        }
    }

    fn fs_tool(&self, name: &str, input: &Value) -> ToolOutput {
        let result = match name {
            "read_file" => parse::<PathInput>(name, input).map(|i| self.read_file(&i.path)),
            "write_file" => {
                parse::<WriteInput>(name, input).map(|i| self.write_file(&i.path, &i.content))
            }
            "edit_file" => {
                parse::<EditInput>(name, input).map(|i| self.edit_file(&i.path, &i.old, &i.new))
            }
            "list_dir" => parse::<ListInput>(name, input)
                .map(|i| self.list_dir(i.path.as_deref().unwrap_or("."))),
            "search_files" => parse::<SearchInput>(name, input)
                .map(|i| self.search(&i.pattern, i.path.as_deref().unwrap_or("."))),
            _ => Err(ToolOutput::err(format!("unknown tool '{name}'"))),
        };
        match result {
            Ok(Ok(text)) => ToolOutput::ok(text),
            Ok(Err(message)) => ToolOutput::err(message),
            Err(out) => out,
        }
    }

    fn read_file(&self, path: &str) -> Result<String, String> {
        let abs = self.inner.sandbox.resolve(path)?;
        let meta = fs::metadata(&abs).map_err(|e| format!("{path}: {e}"))?;
        if meta.is_dir() {
            return Err(format!("{path} is a directory; use list_dir"));
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(format!("{path} is too large ({} bytes)", meta.len()));
        }
        // Bounded read: the file may have grown since the size check.
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        self.inner
            .sandbox
            .open_beneath(&abs, false)
            .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
            .map_err(|e| format!("{path}: {e}"))?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(format!("{path} is too large (over {MAX_FILE_BYTES} bytes)"));
        }
        if bytes.iter().take(8192).any(|b| *b == 0) {
            return Err(format!(
                "{path} looks binary (a NUL byte in its first 8 KiB); not shown"
            ));
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn write_file(&self, path: &str, content: &str) -> Result<String, String> {
        let abs = self.inner.sandbox.resolve(path)?;
        if let Some(parent) = abs.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("{path}: {e}"))?;
        }
        self.write_beneath(&abs, content.as_bytes())
            .map_err(|e| format!("{path}: {e}"))?;
        Ok(format!(
            "wrote {} bytes to {}",
            content.len(),
            self.inner.sandbox.display(&abs)
        ))
    }

    /// Writes through [`Sandbox::open_beneath`], so the file written is the
    /// one that was checked.
    fn write_beneath(&self, abs: &Path, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        self.inner.sandbox.open_beneath(abs, true)?.write_all(bytes)
    }

    fn edit_file(&self, path: &str, old: &str, new: &str) -> Result<String, String> {
        if old.is_empty() {
            return Err("`old` must not be empty".into());
        }
        let abs = self.inner.sandbox.resolve(path)?;
        let mut text = String::new();
        self.inner
            .sandbox
            .open_beneath(&abs, false)
            .and_then(|mut f| f.read_to_string(&mut text))
            .map_err(|e| format!("{path}: {e}"))?;
        match text.matches(old).count() {
            0 => Err(format!("`old` text not found in {path}")),
            1 => {
                self.write_beneath(&abs, text.replacen(old, new, 1).as_bytes())
                    .map_err(|e| format!("{path}: {e}"))?;
                Ok(format!("edited {path}"))
            }
            n => Err(format!(
                "`old` text occurs {n} times in {path}; include more context so it is unique"
            )),
        }
    }

    fn list_dir(&self, path: &str) -> Result<String, String> {
        let abs = self.inner.sandbox.resolve(path)?;
        let mut names: Vec<String> = fs::read_dir(&abs)
            .map_err(|e| format!("{path}: {e}"))?
            .filter_map(Result::ok)
            .map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                match entry.file_type() {
                    Ok(t) if t.is_dir() => format!("{name}/"),
                    Ok(t) if t.is_symlink() => format!("{name}@"),
                    _ => name,
                }
            })
            .collect();
        names.sort();
        if names.is_empty() {
            return Ok("(empty)".into());
        }
        Ok(names.join("\n"))
    }

    fn search(&self, pattern: &str, path: &str) -> Result<String, String> {
        let regex = regex::Regex::new(pattern).map_err(|e| format!("bad pattern: {e}"))?;
        let abs = self.inner.sandbox.resolve(path)?;
        let limit = self.inner.config.output_limit;
        let mut out = String::new();
        let mut stack = vec![abs];
        let mut files = Vec::new();
        while let Some(dir) = stack.pop() {
            if dir.is_file() {
                files.push(dir);
                continue;
            }
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
            entries.sort_by_key(|e| e.file_name());
            for entry in entries.into_iter().rev() {
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                let name = entry.file_name();
                // Symlinks could lead out of the workdir; VCS internals are noise.
                if kind.is_symlink() || name == ".git" {
                    continue;
                }
                if kind.is_dir() {
                    stack.push(entry.path());
                } else if kind.is_file() {
                    files.push(entry.path());
                }
            }
        }
        files.sort();
        for file in files {
            let Some(text) = read_text_file(&file) else {
                continue;
            };
            for (n, line) in text.lines().enumerate() {
                if regex.is_match(line) {
                    out.push_str(&format!(
                        "{}:{}: {}\n",
                        self.inner.sandbox.display(&file),
                        n + 1,
                        line
                    ));
                    if out.len() > limit {
                        return Ok(out);
                    }
                }
            }
        }
        if out.is_empty() {
            out.push_str("no matches");
        }
        Ok(out)
    }

    /// Why `spec` may not run under this loop's command allow list, if so.
    fn refuse_command(&self, spec: &CommandSpec) -> Option<String> {
        let allowed = self.inner.config.allowed_commands.as_ref()?;
        let program = match spec {
            CommandSpec::Argv(argv) => argv.first()?,
            CommandSpec::Shell(_) => {
                return Some(
                    "shell commands cannot be checked against this loop's allowed commands; pass argv".into(),
                );
            }
        };
        let file_name = Path::new(program)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(program);
        let ok = allowed.iter().any(|a| {
            a == program || (!a.contains('/') && a == file_name && !program.contains('/'))
        });
        (!ok).then(|| {
            format!(
                "command '{program}' is not allowed for this loop's type; allowed: {}",
                allowed.join(", ")
            )
        })
    }

    async fn run(&self, input: RunInput, cancel: &CancellationToken) -> ToolOutput {
        let config = &self.inner.config;
        let spec = match (input.argv, input.command) {
            (Some(argv), None) if !argv.is_empty() => CommandSpec::Argv(argv),
            (None, Some(line)) if config.shell_allowed => CommandSpec::Shell(line),
            (None, Some(_)) => {
                return ToolOutput::err(
                    "shell commands are not allowed in this loop; pass argv (a list of program and arguments)",
                );
            }
            _ => return ToolOutput::err("run_command needs `argv`: a non-empty list of strings"),
        };
        if let Some(refusal) = self.refuse_command(&spec) {
            return ToolOutput::err(refusal);
        }
        let timeout = input
            .timeout_secs
            .map(Duration::from_secs)
            .unwrap_or(config.default_timeout)
            .min(config.max_timeout);
        let root = self.inner.sandbox.root();
        let landlock = match config.sandbox {
            SandboxPolicy::Landlock => match PreparedSandbox::new(root) {
                Ok(prepared) => Some(prepared),
                Err(e) => return ToolOutput::err(format!("cannot run {}: {e}", spec.display())),
            },
            SandboxPolicy::None => None,
        };
        let isolation = Isolation {
            network: config.isolate_network,
            sandbox: landlock.as_ref(),
        };
        match run_command_isolated(&spec, root, timeout, config.output_limit, cancel, isolation)
            .await
        {
            Ok(outcome) => {
                let code = outcome
                    .exit_code
                    .map_or("none".to_string(), |c| c.to_string());
                let text = format!("exit code: {code}\n{}", outcome.output);
                if outcome.success() {
                    ToolOutput::ok(text)
                } else {
                    ToolOutput::err(text)
                }
            }
            Err(e) => ToolOutput::err(format!("cannot run {}: {e}", spec.display())),
        }
    }
}

fn parse<T: for<'de> Deserialize<'de>>(name: &str, input: &Value) -> Result<T, ToolOutput> {
    serde_json::from_value(input.clone())
        .map_err(|e| ToolOutput::err(format!("invalid input for {name}: {e}")))
}

/// The file's text, or `None` when it is large or looks binary (a NUL in the first 8 KiB).
fn read_text_file(path: &Path) -> Option<String> {
    let meta = fs::metadata(path).ok()?;
    if meta.len() > MAX_FILE_BYTES {
        return None;
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    fs::File::open(path).ok()?.read_to_end(&mut bytes).ok()?;
    if bytes.iter().take(8192).any(|b| *b == 0) {
        return None;
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn call(tb: &Toolbox, name: &str, input: Value) -> ToolOutput {
        tb.execute(name, &input, None, &CancellationToken::new())
            .await
    }

    #[tokio::test]
    async fn file_tools_work_and_edit_requires_a_unique_match() {
        let dir = tempfile::tempdir().unwrap();
        let tb = Toolbox::new(dir.path(), ToolboxConfig::default()).unwrap();
        let w = call(
            &tb,
            "write_file",
            json!({"path": "src/a.txt", "content": "one two two"}),
        )
        .await;
        assert!(!w.is_error, "{w:?}");
        assert_eq!(
            call(&tb, "read_file", json!({"path": "src/a.txt"}))
                .await
                .content,
            "one two two"
        );
        let e = call(
            &tb,
            "edit_file",
            json!({"path": "src/a.txt", "old": "two", "new": "2"}),
        )
        .await;
        assert!(e.is_error && e.content.contains("2 times"), "{e:?}");
        let e = call(
            &tb,
            "edit_file",
            json!({"path": "src/a.txt", "old": "three", "new": "3"}),
        )
        .await;
        assert!(e.is_error && e.content.contains("not found"));
        let e = call(
            &tb,
            "edit_file",
            json!({"path": "src/a.txt", "old": "one", "new": "1"}),
        )
        .await;
        assert!(!e.is_error);
        assert_eq!(
            fs::read_to_string(dir.path().join("src/a.txt")).unwrap(),
            "1 two two"
        );
        let l = call(&tb, "list_dir", json!({})).await;
        assert_eq!(l.content, "src/");
        fs::write(dir.path().join("bin.dat"), b"two\0two").unwrap();
        let s = call(&tb, "search_files", json!({"pattern": "t[wW]o"})).await;
        assert_eq!(s.content, "src/a.txt:1: 1 two two\n");
    }

    #[tokio::test]
    async fn allow_lists_limit_tools_and_commands() {
        let dir = tempfile::tempdir().unwrap();
        let tb = Toolbox::new(
            dir.path(),
            ToolboxConfig {
                allowed_tools: Some(["read_file", "run_command"].map(String::from).into()),
                allowed_commands: Some(vec!["echo".into()]),
                ..Default::default()
            },
        )
        .unwrap();
        let names: Vec<String> = tb.specs().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["read_file", "run_command"]);
        let r = call(&tb, "write_file", json!({"path": "a", "content": "x"})).await;
        assert!(r.is_error && r.content.contains("not allowed"), "{r:?}");
        assert!(!dir.path().join("a").exists());
        let r = call(&tb, "run_command", json!({"argv": ["echo", "hi"]})).await;
        assert!(!r.is_error && r.content.contains("hi"), "{r:?}");
        let r = call(&tb, "run_command", json!({"argv": ["/bin/echo", "hi"]})).await;
        assert!(r.is_error && r.content.contains("not allowed"), "{r:?}");
        let r = call(&tb, "run_command", json!({"argv": ["touch", "b"]})).await;
        assert!(r.is_error && r.content.contains("allowed: echo"), "{r:?}");
        assert!(!dir.path().join("b").exists());
    }

    #[tokio::test]
    async fn run_command_argv_only_unless_shell_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let tb = Toolbox::new(dir.path(), ToolboxConfig::default()).unwrap();
        let r = call(&tb, "run_command", json!({"argv": ["echo", "hi; ls"]})).await;
        assert!(!r.is_error);
        assert!(r.content.contains("hi; ls"), "{r:?}");
        let r = call(&tb, "run_command", json!({"command": "echo hi"})).await;
        assert!(r.is_error && r.content.contains("not allowed"));
        let shell = Toolbox::new(
            dir.path(),
            ToolboxConfig {
                shell_allowed: true,
                ..ToolboxConfig::default()
            },
        )
        .unwrap();
        let r = call(
            &shell,
            "run_command",
            json!({"command": "echo a && exit 4"}),
        )
        .await;
        assert!(
            r.is_error && r.content.starts_with("exit code: 4\na"),
            "{r:?}"
        );
    }

    #[tokio::test]
    async fn output_is_truncated_with_a_marker() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("big"), "x".repeat(5000)).unwrap();
        let tb = Toolbox::new(
            dir.path(),
            ToolboxConfig {
                output_limit: 100,
                ..ToolboxConfig::default()
            },
        )
        .unwrap();
        let r = call(&tb, "read_file", json!({"path": "big"})).await;
        assert!(r.content.len() < 200);
        assert!(r.content.contains("[... truncated 4900 bytes ...]"));
    }
}
