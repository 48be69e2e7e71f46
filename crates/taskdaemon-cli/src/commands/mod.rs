//! One module per command; [`dispatch`] routes a parsed command line.

mod daemon;
mod init;
mod internal;
mod kill;
mod logs;
mod ps;
mod queues;
mod rehydrate;
mod service;
mod spawn;
mod tasks;
mod wait;
mod workers;

use std::path::{Path, PathBuf};

use anyhow::Context;
use taskdaemon_core::id::normalize_tool;
use taskdaemon_store::SqliteStore;
use taskdaemon_workspace::Workspace;

use crate::args::{Cli, Command, QueuesCommand, ServiceCommand, TasksCommand, WorkersCommand};
use crate::error::UsageError;

/// Runs the command; the returned code is the process exit code.
pub fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    let workspace_arg = cli.workspace.as_deref();
    match cli.command {
        Command::Init => init::run(workspace_arg),
        Command::Start => daemon::start(&find_workspace(workspace_arg)?),
        Command::Stop => daemon::stop(&find_workspace(workspace_arg)?),
        Command::Status(args) => daemon::status(&find_workspace(workspace_arg)?, args),
        Command::Spawn(args) => spawn::run(&find_workspace(workspace_arg)?, args),
        Command::Ps(args) => ps::run(&find_workspace(workspace_arg)?, args),
        Command::Logs(args) => logs::run(&find_workspace(workspace_arg)?, args),
        Command::Kill(args) => kill::kill(&find_workspace(workspace_arg)?, args),
        Command::Restart(args) => kill::restart(&find_workspace(workspace_arg)?, args),
        Command::Wait(args) => wait::run(&find_workspace(workspace_arg)?, args),
        Command::Rehydrate(args) => rehydrate::run(&find_workspace(workspace_arg)?, args),
        Command::Queues(command) => {
            let workspace = find_workspace(workspace_arg)?;
            match command {
                QueuesCommand::Add(args) => queues::add(&workspace, args),
                QueuesCommand::List(args) => queues::list(&workspace, args.json),
                QueuesCommand::Rm(args) => queues::rm(&workspace, args),
            }
        }
        Command::Tasks(command) => {
            let workspace = find_workspace(workspace_arg)?;
            match command {
                TasksCommand::Show(args) => tasks::show(&workspace, args),
                TasksCommand::Logs(args) => tasks::logs(&workspace, args),
                TasksCommand::Cancel(args) => tasks::cancel(&workspace, args),
            }
        }
        Command::Workers(command) => {
            let workspace = find_workspace(workspace_arg)?;
            match command {
                WorkersCommand::Status(args) => workers::status(&workspace, args.json),
                WorkersCommand::List(args) => workers::list(&workspace, args.json),
            }
        }
        Command::Service(command) => {
            let workspace = find_workspace(workspace_arg)?;
            match command {
                ServiceCommand::Install(args) => service::install(&workspace, args),
                ServiceCommand::Uninstall(args) => service::uninstall(&workspace, args),
            }
        }
        Command::Shim { id } => Ok(internal::shim(&find_workspace(workspace_arg)?, &id)),
        Command::Daemon => Ok(internal::daemon(find_workspace(workspace_arg)?)),
    }
}

/// `--workspace DIR` when given, else the nearest workspace above the cwd.
fn find_workspace(arg: Option<&Path>) -> anyhow::Result<Workspace> {
    Ok(match arg {
        Some(dir) => Workspace::open(dir)?,
        None => {
            let cwd = std::env::current_dir().context("cannot read the current directory")?;
            Workspace::discover(&cwd)?
        }
    })
}

/// Validates and normalises a `--tool` value (`Claude` and `claude` are one tool).
fn tool_arg(tool: Option<&str>) -> Result<Option<String>, UsageError> {
    tool.map(normalize_tool)
        .transpose()
        .map_err(|e| UsageError(e.to_string()))
}

/// Opens the workspace's store.
fn open_store(workspace: &Workspace) -> anyhow::Result<SqliteStore> {
    Ok(SqliteStore::open(&workspace.db_path())?)
}

/// This binary, which provides the daemon and the shim.
fn current_exe() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("cannot locate the taskdaemon binary")
}
