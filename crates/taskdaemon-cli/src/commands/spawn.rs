//! `taskdaemon spawn`

use std::path::Path;

use anyhow::Context;
use taskdaemon_core::{NewProcess, ResourceLimits};
use taskdaemon_service::restart_policy;
use taskdaemon_workspace::Workspace;

use super::{service, tool_arg};
use crate::args::SpawnArgs;
use crate::error::UsageError;
use crate::output::print_json;

pub fn run(workspace: &Workspace, args: SpawnArgs) -> anyhow::Result<u8> {
    let json = args.json;
    let spec = build_spec(args)?;
    let task = service(workspace)?.spawn(spec)?;
    if json {
        print_json(&task)?;
    } else {
        eprintln!(
            "started {} (pid {}): {}",
            task.id,
            task.pid.map_or_else(|| "?".to_owned(), |p| p.to_string()),
            task.command
        );
        println!("{}", task.id);
    }
    Ok(0)
}

fn build_spec(args: SpawnArgs) -> anyhow::Result<NewProcess> {
    let tool = tool_arg(args.tool.as_deref())?;
    let cwd = resolve_cwd(args.cwd.as_deref())?;
    let mut env = inherited_env();
    for (key, value) in args.env {
        env.retain(|(k, _)| *k != key);
        env.push((key, value));
    }
    Ok(NewProcess {
        tool,
        name: args.name,
        session: args.session,
        argv: args.command,
        cwd,
        env,
        restart: restart_policy(args.restart, args.max_restarts, args.restart_delay),
        hang_timeout_ms: args.hang_timeout.map(|d| d.as_millis() as u64),
        limits: ResourceLimits {
            max_memory: args.max_memory,
            max_cpu_time_ms: args.max_cpu_time.map(|d| d.as_millis() as u64),
            max_files: args.max_files,
            nice: args.nice,
        },
    })
}

fn resolve_cwd(cwd: Option<&Path>) -> anyhow::Result<String> {
    let dir = match cwd {
        Some(dir) => std::fs::canonicalize(dir)
            .map_err(|e| UsageError(format!("--cwd {}: {e}", dir.display())))?,
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    if !dir.is_dir() {
        return Err(UsageError(format!("--cwd {}: not a directory", dir.display())).into());
    }
    dir.to_str()
        .map(str::to_owned)
        .ok_or_else(|| UsageError(format!("--cwd {}: not valid UTF-8", dir.display())).into())
}

/// The caller's environment: the command runs as if started from this shell,
/// not with the daemon's environment.
fn inherited_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k != "TASKDAEMON_WORKSPACE")
        .collect()
}
