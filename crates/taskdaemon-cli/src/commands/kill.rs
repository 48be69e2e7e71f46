//! `taskdaemon kill` and `taskdaemon restart`

use taskdaemon_daemon::Client;
use taskdaemon_daemon::protocol::Request;
use taskdaemon_supervisor::group::parse_signal;
use taskdaemon_workspace::Workspace;

use super::current_exe;
use super::spawn::expect_task;
use crate::args::{KillArgs, RestartArgs};
use crate::error::UsageError;

pub fn kill(workspace: &Workspace, args: KillArgs) -> anyhow::Result<u8> {
    let signal = parse_signal(&args.signal).map_err(UsageError)?;
    let mut client = Client::connect_or_start(workspace, &current_exe()?)?;
    let task = expect_task(client.request(&Request::Kill {
        id: args.id,
        signal: signal.as_raw(),
        grace_ms: args.grace.as_millis() as u64,
    })?)?;
    let how = task.exit().map(|e| format!(" ({e})")).unwrap_or_default();
    println!("{} {}{how}", task.id, task.status);
    Ok(0)
}

pub fn restart(workspace: &Workspace, args: RestartArgs) -> anyhow::Result<u8> {
    let mut client = Client::connect_or_start(workspace, &current_exe()?)?;
    let task = expect_task(client.request(&Request::Restart {
        id: args.id,
        grace_ms: args.grace.as_millis() as u64,
    })?)?;
    let pid = task.pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
    println!("{} {}{pid}", task.id, task.status);
    Ok(0)
}
