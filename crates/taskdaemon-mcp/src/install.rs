//! Registering taskdaemon in agents' own settings files, and removing it:
//! Claude Code's hooks, and the MCP server for Claude Code, Codex, Gemini
//! CLI and Cursor.
//!
//! The rules, in one place:
//! - A file is merged, never replaced: everything that is not ours stays as
//!   it was (key order included).
//! - Ours is identified by command: a hook whose command runs `taskdaemon
//!   hook ...` (any path to the binary), an MCP server named `taskdaemon`.
//! - Installing is idempotent: a file that already holds exactly ours is
//!   not rewritten. Installing again with another binary path updates ours.
//! - A file that cannot be parsed is an error naming the file, line and
//!   column, and is left untouched. Writes are atomic (temp file, rename).
//!
//! Formats, from each tool's documentation:
//! - Claude Code hooks: `hooks.EVENT[] = {matcher, hooks: [{type: "command",
//!   command, timeout}]}` in `.claude/settings.json` (project),
//!   `.claude/settings.local.json` (local) or `~/.claude/settings.json`
//!   (user): <https://code.claude.com/docs/en/hooks>.
//! - Claude Code MCP: `.mcp.json`, `mcpServers.NAME = {type: "stdio",
//!   command, args, env}`: <https://code.claude.com/docs/en/mcp>.
//! - Codex: `$CODEX_HOME/config.toml` (default `~/.codex`), table
//!   `[mcp_servers.NAME]` with `command`, `args`:
//!   <https://developers.openai.com/codex/mcp>.
//! - Gemini CLI: `.gemini/settings.json`, `mcpServers.NAME = {command, args}`:
//!   <https://geminicli.com/docs/tools/mcp-server/>.
//! - Cursor: `.cursor/mcp.json`, `mcpServers.NAME = {command, args}`:
//!   <https://cursor.com/docs/mcp>.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::hooks::HookEvent;

/// The name taskdaemon's MCP server is registered under.
pub const SERVER_NAME: &str = "taskdaemon";
/// Seconds Claude Code gives one of our hooks before it gives up on it.
const HOOK_TIMEOUT_SECS: u64 = 10;
/// SessionStart sources whose start re-injects the summary.
const SESSION_START_MATCHER: &str = "startup|resume|compact|clear";

/// Errors reading or writing a settings file.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: {message}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: {what} must be {expected}", path.display())]
    Shape {
        path: PathBuf,
        what: String,
        expected: &'static str,
    },
}

/// What an install or uninstall did to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Created,
    Updated,
    Unchanged,
    Removed,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Change::Created => "created",
            Change::Updated => "updated",
            Change::Unchanged => "unchanged",
            Change::Removed => "removed",
        })
    }
}

/// Where Claude Code's hooks are installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookScope {
    /// `.claude/settings.json`: shared with everyone on the project.
    Project,
    /// `.claude/settings.local.json`: this checkout only (git-ignored).
    Local,
    /// `~/.claude/settings.json`: every project of this user.
    User,
}

impl HookScope {
    pub const ALL: [HookScope; 3] = [HookScope::Project, HookScope::Local, HookScope::User];

    pub fn as_str(self) -> &'static str {
        match self {
            HookScope::Project => "project",
            HookScope::Local => "local",
            HookScope::User => "user",
        }
    }

    /// The settings file of this scope for the project at `root`.
    pub fn settings_path(self, root: &Path, home: &Path) -> PathBuf {
        match self {
            HookScope::Project => root.join(".claude/settings.json"),
            HookScope::Local => root.join(".claude/settings.local.json"),
            HookScope::User => home.join(".claude/settings.json"),
        }
    }
}

/// An agent whose MCP configuration taskdaemon can register in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum McpClient {
    Claude,
    Codex,
    Gemini,
    Cursor,
}

impl McpClient {
    pub fn as_str(self) -> &'static str {
        match self {
            McpClient::Claude => "claude",
            McpClient::Codex => "codex",
            McpClient::Gemini => "gemini",
            McpClient::Cursor => "cursor",
        }
    }

    /// The file the client reads its servers from: in the project at `root`,
    /// except Codex's, in `codex_home` (default `~/.codex`).
    pub fn config_path(self, root: &Path, home: &Path, codex_home: Option<&Path>) -> PathBuf {
        match self {
            McpClient::Claude => root.join(".mcp.json"),
            McpClient::Gemini => root.join(".gemini/settings.json"),
            McpClient::Cursor => root.join(".cursor/mcp.json"),
            McpClient::Codex => codex_home
                .map(Path::to_owned)
                .unwrap_or_else(|| home.join(".codex"))
                .join("config.toml"),
        }
    }
}

/// The command line of one of our hooks: `PROGRAM hook SUBCOMMAND`.
pub fn hook_command(program: &str, event: HookEvent) -> String {
    format!("{} hook {}", shell_quote(program), event.subcommand())
}

/// Whether a hook command is one of ours: it runs a binary named
/// `taskdaemon` (wherever it lives) with `hook` as its first argument.
pub fn is_our_hook_command(command: &str) -> bool {
    let Some((program, rest)) = first_word(command) else {
        return false;
    };
    let name = Path::new(&program).file_name().and_then(|n| n.to_str());
    name == Some("taskdaemon") && rest.split_whitespace().next() == Some("hook")
}

/// One of our hooks found in a settings file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstalledHook {
    pub event: String,
    pub matcher: Option<String>,
    pub command: String,
}

/// Merges our SessionStart and PreCompact hooks, run as `program`, into
/// Claude Code settings.
pub fn install_hooks(settings: &mut Value, program: &str) -> Result<(), String> {
    let hooks = object_entry(settings, "hooks")?;
    for (event, matcher) in [
        (HookEvent::SessionStart, Some(SESSION_START_MATCHER)),
        (HookEvent::PreCompact, None),
    ] {
        let command = hook_command(program, event);
        let groups = hooks
            .entry(event.claude_name())
            .or_insert_with(|| Value::Array(Vec::new()));
        let groups = groups
            .as_array_mut()
            .ok_or_else(|| format!("hooks.{} must be an array", event.claude_name()))?;
        if groups.iter().any(|g| is_exactly_ours(g, matcher, &command)) {
            continue;
        }
        remove_our_hooks(groups);
        let mut group = Map::new();
        if let Some(matcher) = matcher {
            group.insert("matcher".to_owned(), json!(matcher));
        }
        group.insert(
            "hooks".to_owned(),
            json!([{"type": "command", "command": command, "timeout": HOOK_TIMEOUT_SECS}]),
        );
        groups.push(Value::Object(group));
    }
    Ok(())
}

/// Removes every hook of ours from Claude Code settings, and the groups,
/// events and `hooks` object left empty by it. Returns how many were removed.
pub fn uninstall_hooks(settings: &mut Value) -> usize {
    let Some(hooks) = settings.get_mut("hooks").and_then(Value::as_object_mut) else {
        return 0;
    };
    let mut removed = 0;
    for groups in hooks.values_mut() {
        if let Some(groups) = groups.as_array_mut() {
            removed += remove_our_hooks(groups);
        }
    }
    hooks.retain(|_, groups| groups.as_array().is_none_or(|g| !g.is_empty()));
    if hooks.is_empty()
        && let Some(object) = settings.as_object_mut()
    {
        object.remove("hooks");
    }
    removed
}

/// Our hooks in Claude Code settings.
pub fn our_hooks(settings: &Value) -> Vec<InstalledHook> {
    let mut found = Vec::new();
    let Some(hooks) = settings.get("hooks").and_then(Value::as_object) else {
        return found;
    };
    for (event, groups) in hooks {
        for group in groups.as_array().into_iter().flatten() {
            let matcher = group.get("matcher").and_then(Value::as_str);
            for command in commands_of(group).filter(|c| is_our_hook_command(c)) {
                found.push(InstalledHook {
                    event: event.clone(),
                    matcher: matcher.map(str::to_owned),
                    command: command.to_owned(),
                });
            }
        }
    }
    found
}

fn commands_of(group: &Value) -> impl Iterator<Item = &str> {
    group
        .get("hooks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|hook| hook.get("command").and_then(Value::as_str))
}

/// A group holding only our hook, with this matcher and command.
fn is_exactly_ours(group: &Value, matcher: Option<&str>, command: &str) -> bool {
    let commands: Vec<&str> = commands_of(group).collect();
    group.get("matcher").and_then(Value::as_str) == matcher && commands == [command]
}

/// Drops our hooks from each group, and groups left with no hooks.
fn remove_our_hooks(groups: &mut Vec<Value>) -> usize {
    let mut removed = 0;
    for group in groups.iter_mut() {
        if let Some(hooks) = group.get_mut("hooks").and_then(Value::as_array_mut) {
            let before = hooks.len();
            hooks.retain(|hook| {
                !hook
                    .get("command")
                    .and_then(Value::as_str)
                    .is_some_and(is_our_hook_command)
            });
            removed += before - hooks.len();
        }
    }
    groups.retain(|group| {
        group
            .get("hooks")
            .and_then(Value::as_array)
            .is_none_or(|hooks| !hooks.is_empty())
    });
    removed
}

/// The server entry a JSON-configured client runs.
fn server_entry(client: McpClient, program: &str) -> Value {
    match client {
        McpClient::Claude => {
            json!({"type": "stdio", "command": program, "args": ["mcp"], "env": {}})
        }
        _ => json!({"command": program, "args": ["mcp"]}),
    }
}

/// Merges our server into a JSON MCP configuration (`mcpServers`).
pub fn install_server_json(
    config: &mut Value,
    client: McpClient,
    program: &str,
) -> Result<(), String> {
    let servers = object_entry(config, "mcpServers")?;
    servers.insert(SERVER_NAME.to_owned(), server_entry(client, program));
    Ok(())
}

/// Removes our server from a JSON MCP configuration; whether it was there.
pub fn uninstall_server_json(config: &mut Value) -> bool {
    let Some(servers) = config.get_mut("mcpServers").and_then(Value::as_object_mut) else {
        return false;
    };
    servers.remove(SERVER_NAME).is_some()
}

/// Merges our server into Codex's `config.toml` as `[mcp_servers.taskdaemon]`.
pub fn install_server_toml(doc: &mut toml_edit::DocumentMut, program: &str) -> Result<(), String> {
    let servers = doc
        .entry("mcp_servers")
        .or_insert_with(|| {
            let mut table = toml_edit::Table::new();
            table.set_implicit(true);
            toml_edit::Item::Table(table)
        })
        .as_table_mut()
        .ok_or("mcp_servers must be a table")?;
    let mut ours = toml_edit::Table::new();
    ours.insert("command", toml_edit::value(program));
    let mut args = toml_edit::Array::new();
    args.push("mcp");
    ours.insert("args", toml_edit::value(args));
    // Keep an existing table's other keys (a user's `env`, `startup_timeout_sec`).
    match servers
        .get_mut(SERVER_NAME)
        .and_then(toml_edit::Item::as_table_mut)
    {
        Some(existing) => {
            for (key, item) in ours.iter() {
                existing.insert(key, item.clone());
            }
        }
        None => {
            servers.insert(SERVER_NAME, toml_edit::Item::Table(ours));
        }
    }
    Ok(())
}

/// Removes `[mcp_servers.taskdaemon]`; whether it was there.
pub fn uninstall_server_toml(doc: &mut toml_edit::DocumentMut) -> bool {
    let Some(servers) = doc
        .get_mut("mcp_servers")
        .and_then(toml_edit::Item::as_table_mut)
    else {
        return false;
    };
    let removed = servers.remove(SERVER_NAME).is_some();
    if servers.is_empty() {
        doc.remove("mcp_servers");
    }
    removed
}

/// Installs our hooks into the settings file at `path`.
pub fn install_hooks_file(path: &Path, program: &str) -> Result<Change, InstallError> {
    edit_json(path, |settings| install_hooks(settings, program))
}

/// Removes our hooks from the settings file at `path` (a missing file holds none).
pub fn uninstall_hooks_file(path: &Path) -> Result<Change, InstallError> {
    if !path.exists() {
        return Ok(Change::Unchanged);
    }
    edit_json(path, |settings| {
        uninstall_hooks(settings);
        Ok(())
    })
    .map(removed_if_updated)
}

/// Our hooks in the settings file at `path` (none when it does not exist).
pub fn hooks_in_file(path: &Path) -> Result<Vec<InstalledHook>, InstallError> {
    Ok(read_json(path)?.map(|v| our_hooks(&v)).unwrap_or_default())
}

/// Registers our server, run as `program`, in `client`'s file at `path`.
pub fn install_server_file(
    client: McpClient,
    path: &Path,
    program: &str,
) -> Result<Change, InstallError> {
    match client {
        McpClient::Codex => edit_toml(path, |doc| install_server_toml(doc, program)),
        _ => edit_json(path, |config| install_server_json(config, client, program)),
    }
}

/// Removes our server from `client`'s file at `path`.
pub fn uninstall_server_file(client: McpClient, path: &Path) -> Result<Change, InstallError> {
    if !path.exists() {
        return Ok(Change::Unchanged);
    }
    let change = match client {
        McpClient::Codex => edit_toml(path, |doc| {
            uninstall_server_toml(doc);
            Ok(())
        }),
        _ => edit_json(path, |config| {
            uninstall_server_json(config);
            Ok(())
        }),
    }?;
    Ok(removed_if_updated(change))
}

fn removed_if_updated(change: Change) -> Change {
    match change {
        Change::Updated => Change::Removed,
        other => other,
    }
}

/// The object under `key`, created when missing.
fn object_entry<'a>(value: &'a mut Value, key: &str) -> Result<&'a mut Map<String, Value>, String> {
    let object = value
        .as_object_mut()
        .ok_or("the settings must be a JSON object")?;
    object
        .entry(key)
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| format!("{key} must be an object"))
}

/// The JSON at `path`, or `None` when the file does not exist.
fn read_json(path: &Path) -> Result<Option<Value>, InstallError> {
    let Some(text) = read_text(path)? else {
        return Ok(None);
    };
    if text.trim().is_empty() {
        return Ok(Some(Value::Object(Map::new())));
    }
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| InstallError::Parse {
            path: path.to_owned(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })
}

fn read_text(path: &Path) -> Result<Option<String>, InstallError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(InstallError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Applies `edit` to the JSON file at `path` (an empty object when
/// missing) and writes it back when it changed.
fn edit_json(
    path: &Path,
    edit: impl FnOnce(&mut Value) -> Result<(), String>,
) -> Result<Change, InstallError> {
    let before = read_json(path)?;
    let existed = before.is_some();
    let mut value = before.clone().unwrap_or_else(|| Value::Object(Map::new()));
    edit(&mut value).map_err(|what| shape_error(path, what))?;
    if before.as_ref() == Some(&value) {
        return Ok(Change::Unchanged);
    }
    let mut text = serde_json::to_string_pretty(&value).map_err(|e| InstallError::Write {
        path: path.to_owned(),
        source: std::io::Error::other(e),
    })?;
    text.push('\n');
    write_atomically(path, text.as_bytes())?;
    Ok(if existed {
        Change::Updated
    } else {
        Change::Created
    })
}

/// Applies `edit` to the TOML file at `path`, keeping its comments and layout.
fn edit_toml(
    path: &Path,
    edit: impl FnOnce(&mut toml_edit::DocumentMut) -> Result<(), String>,
) -> Result<Change, InstallError> {
    let before = read_text(path)?;
    let existed = before.is_some();
    let before = before.unwrap_or_default();
    let mut doc: toml_edit::DocumentMut = before.parse().map_err(|e: toml_edit::TomlError| {
        let (line, column) = e
            .span()
            .map(|span| line_and_column(&before, span.start))
            .unwrap_or((1, 1));
        InstallError::Parse {
            path: path.to_owned(),
            line,
            column,
            message: e.message().to_owned(),
        }
    })?;
    edit(&mut doc).map_err(|what| shape_error(path, what))?;
    let after = doc.to_string();
    if after == before {
        return Ok(Change::Unchanged);
    }
    write_atomically(path, after.as_bytes())?;
    Ok(if existed {
        Change::Updated
    } else {
        Change::Created
    })
}

fn shape_error(path: &Path, what: String) -> InstallError {
    InstallError::Shape {
        path: path.to_owned(),
        expected: if what.contains("array") {
            "an array"
        } else {
            "an object"
        },
        what: what.split(" must be").next().unwrap_or(&what).to_owned(),
    }
}

/// 1-based line and column of byte `offset` in `text`.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Writes `bytes` to `path` through a temporary file in the same directory
/// and a rename, so a reader sees the old file or the new one, never half.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), InstallError> {
    let failed = |source| InstallError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(failed)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(failed)?;
    if let Ok(meta) = std::fs::metadata(path) {
        temp.as_file()
            .set_permissions(meta.permissions())
            .map_err(failed)?;
    }
    temp.write_all(bytes).map_err(failed)?;
    temp.as_file().sync_all().map_err(failed)?;
    temp.persist(path).map_err(|e| failed(e.error))?;
    Ok(())
}

/// Quotes `word` for `sh` when it holds anything but safe characters.
fn shell_quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:=@%,".contains(c));
    if safe {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The first shell word of `command` (unquoted) and the rest of the line.
fn first_word(command: &str) -> Option<(String, &str)> {
    let command = command.trim_start();
    let mut word = String::new();
    let mut chars = command.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\'' => {
                for (_, q) in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '"' => {
                while let Some((_, q)) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => {
                            if let Some((_, escaped)) = chars.next() {
                                word.push(escaped);
                            }
                        }
                        _ => word.push(q),
                    }
                }
            }
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    word.push(escaped);
                }
            }
            c if c.is_whitespace() => return Some((word, &command[i..])),
            c => word.push(c),
        }
    }
    (!word.is_empty()).then_some((word, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXE: &str = "/opt/td/bin/taskdaemon";

    fn other_hooks() -> Value {
        json!({
            "permissions": {"allow": ["Bash(ls:*)"]},
            "hooks": {
                "SessionStart": [
                    {"matcher": "startup", "hooks": [{"type": "command", "command": "echo hello"}]}
                ],
                "PostToolUse": [
                    {"matcher": "Write", "hooks": [{"type": "command", "command": "cargo fmt"}]}
                ]
            },
            "model": "opus"
        })
    }

    #[test]
    fn our_hook_commands_are_recognised_wherever_the_binary_is() {
        assert!(is_our_hook_command("taskdaemon hook session-start"));
        assert!(is_our_hook_command(
            "/usr/local/bin/taskdaemon hook pre-compact"
        ));
        assert!(is_our_hook_command(
            "'/my dir/taskdaemon' hook session-start"
        ));
        assert!(is_our_hook_command(&hook_command(
            "/a b/it's/taskdaemon",
            HookEvent::PreCompact
        )));
        assert!(!is_our_hook_command("taskdaemon rehydrate"));
        assert!(!is_our_hook_command("echo taskdaemon hook"));
        assert!(!is_our_hook_command("/bin/taskdaemon-other hook x"));
        assert!(!is_our_hook_command(""));
    }

    #[test]
    fn installing_keeps_other_hooks_and_settings_and_is_idempotent() {
        let mut settings = other_hooks();
        install_hooks(&mut settings, EXE).unwrap();
        let once = settings.clone();
        install_hooks(&mut settings, EXE).unwrap();
        assert_eq!(settings, once, "a second install changes nothing");

        assert_eq!(settings["permissions"], other_hooks()["permissions"]);
        assert_eq!(settings["model"], "opus");
        assert_eq!(
            settings["hooks"]["PostToolUse"],
            other_hooks()["hooks"]["PostToolUse"]
        );
        let session_start = settings["hooks"]["SessionStart"].as_array().unwrap();
        assert_eq!(session_start.len(), 2);
        assert_eq!(session_start[0], other_hooks()["hooks"]["SessionStart"][0]);
        assert_eq!(session_start[1]["matcher"], SESSION_START_MATCHER);
        assert_eq!(
            session_start[1]["hooks"][0]["command"],
            format!("{EXE} hook session-start")
        );
        let installed = our_hooks(&settings);
        assert_eq!(installed.len(), 2, "{installed:?}");
        assert!(
            installed
                .iter()
                .any(|h| h.event == "PreCompact" && h.matcher.is_none())
        );
    }

    #[test]
    fn installing_with_another_binary_replaces_ours_only() {
        let mut settings = other_hooks();
        install_hooks(&mut settings, "/old/taskdaemon").unwrap();
        install_hooks(&mut settings, EXE).unwrap();
        let commands: Vec<String> = our_hooks(&settings)
            .into_iter()
            .map(|h| h.command)
            .collect();
        assert_eq!(
            commands,
            [
                format!("{EXE} hook session-start"),
                format!("{EXE} hook pre-compact")
            ]
        );
        assert_eq!(
            settings["hooks"]["SessionStart"].as_array().unwrap().len(),
            2
        );
    }

    #[test]
    fn uninstalling_removes_only_ours_and_what_it_left_empty() {
        let mut settings = other_hooks();
        install_hooks(&mut settings, EXE).unwrap();
        // Ours sharing a group with someone else's hook: only ours goes.
        settings["hooks"]["PostToolUse"][0]["hooks"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "command", "command": "taskdaemon hook session-start"}));
        assert_eq!(uninstall_hooks(&mut settings), 3);
        assert_eq!(settings, other_hooks());

        let mut only_ours = json!({"env": {"A": "1"}});
        install_hooks(&mut only_ours, EXE).unwrap();
        uninstall_hooks(&mut only_ours);
        assert_eq!(only_ours, json!({"env": {"A": "1"}}));
    }

    #[test]
    fn a_misshapen_settings_file_is_refused() {
        let mut settings = json!({"hooks": []});
        assert!(
            install_hooks(&mut settings, EXE)
                .unwrap_err()
                .contains("hooks")
        );
        let mut settings = json!({"hooks": {"SessionStart": {}}});
        assert!(
            install_hooks(&mut settings, EXE)
                .unwrap_err()
                .contains("SessionStart")
        );
    }

    #[test]
    fn json_servers_merge_and_go_again() {
        let mut config = json!({"mcpServers": {"github": {"command": "gh-mcp"}}, "other": 1});
        install_server_json(&mut config, McpClient::Cursor, EXE).unwrap();
        assert_eq!(config["mcpServers"]["github"]["command"], "gh-mcp");
        assert_eq!(
            config["mcpServers"]["taskdaemon"],
            json!({"command": EXE, "args": ["mcp"]})
        );
        assert!(uninstall_server_json(&mut config));
        assert_eq!(
            config,
            json!({"mcpServers": {"github": {"command": "gh-mcp"}}, "other": 1})
        );
        assert!(!uninstall_server_json(&mut config));
    }

    #[test]
    fn codex_toml_keeps_comments_and_other_servers() {
        let before = "# my codex config\nmodel = \"o3\"\n\n[mcp_servers.docs]\ncommand = \"docs-mcp\" # pinned\n";
        let mut doc: toml_edit::DocumentMut = before.parse().unwrap();
        install_server_toml(&mut doc, EXE).unwrap();
        let text = doc.to_string();
        assert!(text.starts_with(before), "{text}");
        assert!(
            text.ends_with(&format!(
                "\n[mcp_servers.taskdaemon]\ncommand = \"{EXE}\"\nargs = [\"mcp\"]\n"
            )),
            "{text}"
        );
        let mut again: toml_edit::DocumentMut = text.parse().unwrap();
        install_server_toml(&mut again, EXE).unwrap();
        assert_eq!(again.to_string(), text);
        assert!(uninstall_server_toml(&mut again));
        assert_eq!(again.to_string(), before);
    }

    #[test]
    fn files_are_created_merged_left_alone_and_refused_with_a_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".claude/settings.json");
        assert_eq!(install_hooks_file(&path, EXE).unwrap(), Change::Created);
        assert_eq!(install_hooks_file(&path, EXE).unwrap(), Change::Unchanged);
        assert_eq!(hooks_in_file(&path).unwrap().len(), 2);
        assert_eq!(uninstall_hooks_file(&path).unwrap(), Change::Removed);
        assert_eq!(uninstall_hooks_file(&path).unwrap(), Change::Unchanged);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}\n");

        std::fs::write(&path, "{\n  \"hooks\": {,\n}").unwrap();
        let err = install_hooks_file(&path, EXE).unwrap_err().to_string();
        assert!(err.contains("settings.json:2:"), "{err}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\n  \"hooks\": {,\n}"
        );

        let codex = dir.path().join("codex/config.toml");
        std::fs::create_dir_all(codex.parent().unwrap()).unwrap();
        std::fs::write(&codex, "a = 1\nb = \n").unwrap();
        let err = install_server_file(McpClient::Codex, &codex, EXE)
            .unwrap_err()
            .to_string();
        assert!(err.contains("config.toml:2:"), "{err}");
    }

    #[test]
    fn paths_follow_each_tool() {
        let (root, home) = (Path::new("/p"), Path::new("/h"));
        assert_eq!(
            HookScope::Local.settings_path(root, home),
            Path::new("/p/.claude/settings.local.json")
        );
        assert_eq!(
            HookScope::User.settings_path(root, home),
            Path::new("/h/.claude/settings.json")
        );
        assert_eq!(
            McpClient::Codex.config_path(root, home, None),
            Path::new("/h/.codex/config.toml")
        );
        assert_eq!(
            McpClient::Codex.config_path(root, home, Some(Path::new("/c"))),
            Path::new("/c/config.toml")
        );
        assert_eq!(
            McpClient::Gemini.config_path(root, home, None),
            Path::new("/p/.gemini/settings.json")
        );
        assert_eq!(
            McpClient::Cursor.config_path(root, home, None),
            Path::new("/p/.cursor/mcp.json")
        );
    }
}
