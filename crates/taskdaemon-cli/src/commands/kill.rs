//! `taskdaemon kill`, `taskdaemon restart` and `taskdaemon adopt`

use taskdaemon_workspace::Workspace;

use super::service;
use crate::args::{AdoptArgs, KillArgs, RestartArgs};
use crate::output::print_json;

pub fn kill(workspace: &Workspace, args: KillArgs) -> anyhow::Result<u8> {
    let task = service(workspace)?.kill(&args.id, &args.signal, args.grace)?;
    let how = task.exit().map(|e| format!(" ({e})")).unwrap_or_default();
    println!("{} {}{how}", task.id, task.status);
    Ok(0)
}

pub fn adopt(workspace: &Workspace, args: AdoptArgs) -> anyhow::Result<u8> {
    let tool = taskdaemon_service::tool_name(args.tool.as_deref())?;
    let task = service(workspace)?.adopt(args.pid, args.name, tool, args.session)?;
    if args.json {
        print_json(&task)?;
    } else {
        eprintln!("adopted pid {}: {}", args.pid, task.command);
        println!("{}", task.id);
    }
    Ok(0)
}

pub fn restart(workspace: &Workspace, args: RestartArgs) -> anyhow::Result<u8> {
    let task = service(workspace)?.restart(&args.id, args.grace)?;
    let pid = task.pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
    println!("{} {}{pid}", task.id, task.status);
    Ok(0)
}
