//! `taskdaemon kill` and `taskdaemon restart`

use taskdaemon_workspace::Workspace;

use super::service;
use crate::args::{KillArgs, RestartArgs};

pub fn kill(workspace: &Workspace, args: KillArgs) -> anyhow::Result<u8> {
    let task = service(workspace)?.kill(&args.id, &args.signal, args.grace)?;
    let how = task.exit().map(|e| format!(" ({e})")).unwrap_or_default();
    println!("{} {}{how}", task.id, task.status);
    Ok(0)
}

pub fn restart(workspace: &Workspace, args: RestartArgs) -> anyhow::Result<u8> {
    let task = service(workspace)?.restart(&args.id, args.grace)?;
    let pid = task.pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
    println!("{} {}{pid}", task.id, task.status);
    Ok(0)
}
