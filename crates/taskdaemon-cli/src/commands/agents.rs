//! `taskdaemon mcp`, `mcp install|uninstall`, `hooks install|uninstall|status`
//! and `hook session-start|pre-compact`: taskdaemon for agents. The server,
//! the hooks and the settings-file rules live in `taskdaemon_mcp`.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use taskdaemon_mcp::hooks::{HookEvent, run_hook};
use taskdaemon_mcp::install::{self, Change, HookScope, McpClient};
use taskdaemon_mcp::{ServerOptions, serve_stdio};

use super::{current_exe, find_workspace, service};
use crate::args::{
    HookCommand, HookScopeArg, HooksCommand, McpArgs, McpClientName, McpCommand, McpInstallArgs,
};
use crate::error::UsageError;
use crate::output::print_json;

pub fn mcp(workspace_arg: Option<&Path>, args: McpArgs) -> anyhow::Result<u8> {
    match args.command {
        Some(McpCommand::Install(install)) => mcp_install(workspace_arg, install),
        Some(McpCommand::Uninstall(client)) => {
            let client = mcp_client(client.client);
            let path = mcp_config_path(workspace_arg, client)?;
            let change = install::uninstall_server_file(client, &path)?;
            report(change, &path, "the taskdaemon MCP server");
            Ok(0)
        }
        None => {
            // stdout is the protocol: logs go to stderr only.
            let _ = tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
                )
                .try_init();
            let service = service(&find_workspace(workspace_arg)?)?;
            let options = ServerOptions {
                tool: args.tool,
                session: args.session,
                profile: args.profile,
            };
            serve_stdio(service, options)?;
            Ok(0)
        }
    }
}

fn mcp_install(workspace_arg: Option<&Path>, args: McpInstallArgs) -> anyhow::Result<u8> {
    let client = mcp_client(args.client);
    let path = mcp_config_path(workspace_arg, client)?;
    let program = program(args.command)?;
    let change = install::install_server_file(client, &path, &program)?;
    report(change, &path, "the taskdaemon MCP server");
    Ok(0)
}

pub fn hooks(workspace_arg: Option<&Path>, command: HooksCommand) -> anyhow::Result<u8> {
    match command {
        HooksCommand::Install(args) => {
            let scope = hook_scope(args.scope);
            let path = settings_path(workspace_arg, scope)?;
            let change = install::install_hooks_file(&path, &program(args.command)?)?;
            report(change, &path, "the SessionStart and PreCompact hooks");
        }
        HooksCommand::Uninstall(args) => {
            let scopes = match args.scope {
                Some(scope) => vec![hook_scope(scope)],
                None => HookScope::ALL.to_vec(),
            };
            for scope in scopes {
                // Without a workspace only the user file can be cleaned.
                let Ok(path) = settings_path(workspace_arg, scope) else {
                    continue;
                };
                let change = install::uninstall_hooks_file(&path)?;
                report(change, &path, "the taskdaemon hooks");
            }
        }
        HooksCommand::Status(args) => return hooks_status(workspace_arg, args.json),
    }
    Ok(0)
}

fn hooks_status(workspace_arg: Option<&Path>, json: bool) -> anyhow::Result<u8> {
    let mut rows = Vec::new();
    for scope in HookScope::ALL {
        let Ok(path) = settings_path(workspace_arg, scope) else {
            continue;
        };
        let hooks = install::hooks_in_file(&path)?;
        rows.push(serde_json::json!({
            "scope": scope.as_str(),
            "path": path.display().to_string(),
            "hooks": hooks,
        }));
        if !json {
            let what = if hooks.is_empty() {
                "not installed".to_owned()
            } else {
                hooks
                    .iter()
                    .map(|h| h.event.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            println!("{:<8} {what:<24} {}", scope.as_str(), path.display());
        }
    }
    if json {
        print_json(&rows)?;
    }
    Ok(0)
}

/// Answers a hook: reads stdin, prints the answer, exits 0 whatever happens.
pub fn hook(workspace_arg: Option<&Path>, command: HookCommand) -> anyhow::Result<u8> {
    let event = match command {
        HookCommand::SessionStart => HookEvent::SessionStart,
        HookCommand::PreCompact => HookEvent::PreCompact,
    };
    let mut stdin = String::new();
    // Unreadable input counts as none: the hook still answers.
    let _ = std::io::stdin().read_to_string(&mut stdin);
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let output = run_hook(event, &stdin, workspace_arg, &cwd);
    print!("{}", output.stdout);
    if !output.stderr.is_empty() {
        eprintln!("{}", output.stderr);
    }
    Ok(0)
}

fn report(change: Change, path: &Path, what: &str) {
    let verb = match change {
        Change::Created | Change::Updated => format!("installed {what} in"),
        Change::Removed => format!("removed {what} from"),
        Change::Unchanged => "unchanged:".to_owned(),
    };
    println!("{verb} {}", path.display());
}

/// The program an agent runs: the one given, else this binary.
fn program(given: Option<String>) -> anyhow::Result<String> {
    match given {
        Some(program) if program.trim().is_empty() => {
            Err(UsageError("--command must not be empty".to_owned()).into())
        }
        Some(program) => Ok(program),
        None => {
            let exe = current_exe()?;
            exe.to_str()
                .map(str::to_owned)
                .with_context(|| format!("{} is not valid UTF-8", exe.display()))
        }
    }
}

fn home() -> anyhow::Result<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| UsageError("HOME is not set".to_owned()).into())
}

fn settings_path(workspace_arg: Option<&Path>, scope: HookScope) -> anyhow::Result<PathBuf> {
    let home = home()?;
    let root = match scope {
        HookScope::User => home.clone(),
        _ => find_workspace(workspace_arg)?.root().to_owned(),
    };
    Ok(scope.settings_path(&root, &home))
}

fn mcp_config_path(workspace_arg: Option<&Path>, client: McpClient) -> anyhow::Result<PathBuf> {
    let home = home()?;
    let codex_home = std::env::var_os("CODEX_HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from);
    let root = match client {
        McpClient::Codex => home.clone(),
        _ => find_workspace(workspace_arg)?.root().to_owned(),
    };
    Ok(client.config_path(&root, &home, codex_home.as_deref()))
}

fn mcp_client(name: McpClientName) -> McpClient {
    match name {
        McpClientName::Claude => McpClient::Claude,
        McpClientName::Codex => McpClient::Codex,
        McpClientName::Gemini => McpClient::Gemini,
        McpClientName::Cursor => McpClient::Cursor,
    }
}

fn hook_scope(scope: HookScopeArg) -> HookScope {
    match scope {
        HookScopeArg::Project => HookScope::Project,
        HookScopeArg::Local => HookScope::Local,
        HookScopeArg::User => HookScope::User,
    }
}
