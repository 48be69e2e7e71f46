//! One module per command; [`dispatch`] routes a parsed command line.

mod agents;
mod config;
mod daemon;
mod distributed;
mod docs;
mod history;
mod init;
mod install_aliases;
mod internal;
mod kill;
mod logs;
mod loops;
mod memory;
mod migrate;
mod plans;
mod ps;
mod queues;
mod rehydrate;
mod service;
mod session;
mod spawn;
mod task;
mod tasks;
mod transfer;
mod tui;
mod wait;
mod web;
mod workers;

use std::path::{Path, PathBuf};

use anyhow::Context;
use std::sync::Arc;

use taskdaemon_service::{Agent, Service};
use taskdaemon_store::Store;
use taskdaemon_workspace::Workspace;

use crate::args::{
    AgentArgs, Cli, Command, Deferred, QueuesCommand, ServiceCommand, TasksCommand, WorkersCommand,
};

/// Runs the command; the returned code is the process exit code.
pub fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    let workspace_arg = cli.workspace.as_deref();
    match cli.command {
        Command::Init => init::run(workspace_arg),
        Command::Start(Deferred(args)) => daemon::start(&find_workspace(workspace_arg)?, args),
        Command::Stop => daemon::stop(&find_workspace(workspace_arg)?),
        Command::Status(Deferred(args)) => daemon::status(&find_workspace(workspace_arg)?, args),
        Command::Spawn(Deferred(args)) => spawn::run(&find_workspace(workspace_arg)?, args),
        Command::Ps(Deferred(args)) => ps::run(&find_workspace(workspace_arg)?, args),
        Command::Logs(Deferred(args)) => logs::run(&find_workspace(workspace_arg)?, args),
        Command::Kill(Deferred(args)) => kill::kill(&find_workspace(workspace_arg)?, args),
        Command::Restart(Deferred(args)) => kill::restart(&find_workspace(workspace_arg)?, args),
        Command::Adopt(Deferred(args)) => kill::adopt(&find_workspace(workspace_arg)?, args),
        Command::Wait(Deferred(args)) => wait::run(&find_workspace(workspace_arg)?, args),
        Command::Rehydrate(Deferred(args)) => rehydrate::run(&find_workspace(workspace_arg)?, args),
        Command::Task(Deferred(command)) => task::run(&find_workspace(workspace_arg)?, command),
        Command::NewPlan(Deferred(args)) => plans::new_plan(&find_workspace(workspace_arg)?, args),
        Command::Plan(Deferred(command)) => plans::run(&find_workspace(workspace_arg)?, command),
        Command::Remember(Deferred(args)) => {
            memory::remember(&find_workspace(workspace_arg)?, args)
        }
        Command::Memory(Deferred(command)) => memory::run(&find_workspace(workspace_arg)?, command),
        Command::Search(Deferred(args)) => memory::search(&find_workspace(workspace_arg)?, args),
        Command::History(Deferred(args)) => history::history(&find_workspace(workspace_arg)?, args),
        Command::Archive(Deferred(args)) => history::archive(&find_workspace(workspace_arg)?, args),
        Command::Session(Deferred(command)) => {
            session::run(&find_workspace(workspace_arg)?, command)
        }
        Command::Export(Deferred(args)) => transfer::export(&find_workspace(workspace_arg)?, args),
        Command::Import(Deferred(args)) => transfer::import(&find_workspace(workspace_arg)?, args),
        Command::MergeDriver(Deferred(args)) => transfer::merge_driver(args),
        Command::Backup(Deferred(args)) => transfer::backup(&find_workspace(workspace_arg)?, args),
        Command::Repair(Deferred(args)) => {
            transfer::repair(&find_workspace(workspace_arg)?, args.json)
        }
        Command::Autodev(Deferred(args)) => {
            transfer::autodev(&find_workspace(workspace_arg)?, args.json)
        }
        Command::Queues(Deferred(command)) => {
            let workspace = find_workspace(workspace_arg)?;
            match command {
                QueuesCommand::Add(args) => queues::add(&workspace, args),
                QueuesCommand::List(args) => queues::list(&workspace, args.json),
                QueuesCommand::Rm(args) => queues::rm(&workspace, args),
                QueuesCommand::ImportConfig(args) => queues::import_config(&workspace, args),
            }
        }
        Command::Tasks(Deferred(command)) => {
            let workspace = find_workspace(workspace_arg)?;
            match command {
                TasksCommand::Show(args) => tasks::show(&workspace, args),
                TasksCommand::Logs(args) => tasks::logs(&workspace, args),
                TasksCommand::Cancel(args) => tasks::cancel(&workspace, args),
                TasksCommand::Retry(args) => tasks::retry(&workspace, args),
                TasksCommand::List(args) => tasks::list(&workspace, args),
            }
        }
        Command::Workers(Deferred(command)) => {
            let workspace = find_workspace(workspace_arg)?;
            match command {
                WorkersCommand::Status(args) => workers::status(&workspace, args.json),
                WorkersCommand::List(args) => workers::list(&workspace, args.json),
            }
        }
        Command::Service(Deferred(command)) => {
            let workspace = find_workspace(workspace_arg)?;
            match command {
                ServiceCommand::Install(args) => service::install(&workspace, args),
                ServiceCommand::Uninstall(args) => service::uninstall(&workspace, args),
            }
        }
        Command::Loop(Deferred(command)) => loops::run(&find_workspace(workspace_arg)?, command),
        Command::Config(Deferred(command)) => config::run(&find_workspace(workspace_arg)?, command),
        Command::Analytics(Deferred(args)) => {
            config::analytics(&find_workspace(workspace_arg)?, args)
        }
        Command::Worker(Deferred(args)) => distributed::worker(workspace_arg, args),
        Command::Submit(Deferred(args)) => distributed::submit(workspace_arg, args),
        Command::Tui(Deferred(args)) => tui::run(&find_workspace(workspace_arg)?, args),
        Command::Migrate(Deferred(args)) => migrate::run(&find_workspace(workspace_arg)?, args),
        Command::Mcp(args) => agents::mcp(workspace_arg, args),
        Command::Hooks(Deferred(command)) => agents::hooks(workspace_arg, command),
        Command::Hook(Deferred(command)) => agents::hook(workspace_arg, command),
        Command::Container { id } => Ok(internal::container(&find_workspace(workspace_arg)?, &id)),
        Command::Shim { id } => Ok(internal::shim(&find_workspace(workspace_arg)?, &id)),
        Command::ShimStandby => Ok(internal::standby_shim(&find_workspace(workspace_arg)?)),
        Command::Daemon(Deferred(args)) => {
            Ok(internal::daemon(find_workspace(workspace_arg)?, args))
        }
        Command::Completions(Deferred(args)) => docs::completions(args),
        Command::Man(Deferred(args)) => docs::man(args),
        Command::Run(Deferred(args)) => Ok(internal::run(find_workspace(workspace_arg)?, args)),
        Command::Web(args) => web::web(&find_workspace(workspace_arg)?, args),
        Command::Dashboard(Deferred(args)) => web::dashboard(&find_workspace(workspace_arg)?, args),
        Command::Share(args) => web::share(&find_workspace(workspace_arg)?, args),
        Command::Report(Deferred(args)) => web::report(&find_workspace(workspace_arg)?, args),
        Command::InstallAliases(Deferred(args)) => install_aliases::run(args),
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

/// The service over the workspace's store: SQLite, or PostgreSQL when a
/// database URL is configured (see [`taskdaemon_service::open`], the one
/// place that decides). Warnings about projection files go to stderr.
fn service(workspace: &Workspace) -> anyhow::Result<Service> {
    Ok(Service::open(workspace.clone())?.on_warning(|message| eprintln!("warning: {message}")))
}

/// Opens the workspace's store, for the commands that use it directly.
fn open_store(workspace: &Workspace) -> anyhow::Result<Arc<dyn Store>> {
    Ok(service(workspace)?.store_arc())
}

/// This binary, which provides the daemon and the shim.
fn current_exe() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("cannot locate the taskdaemon binary")
}

/// The agent acting on tracked work, from `--tool` and `--session`.
fn agent(args: &AgentArgs) -> anyhow::Result<Agent> {
    Ok(Agent::new(args.tool.as_deref(), args.session.as_deref())?)
}
