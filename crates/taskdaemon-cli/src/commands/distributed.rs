//! `taskdaemon worker` and `taskdaemon submit`: work shared by several hosts
//! through one store (PostgreSQL; SQLite works too, on one host).
//!
//! Both run without a workspace when a database URL is given, so a host
//! that only executes needs nothing but the binary and the URL.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use taskdaemon_daemon::worker::{WorkerOptions, run_worker};
use taskdaemon_service::{Service, SubmitInput};

use super::{find_workspace, service};
use crate::args::{SubmitArgs, WorkerArgs};
use crate::output::print_json;

/// The service: over a workspace when one is found or named, else over
/// the database URL alone.
fn open(workspace_arg: Option<&Path>) -> anyhow::Result<Service> {
    match find_workspace(workspace_arg) {
        Ok(workspace) => service(&workspace),
        Err(no_workspace) => match taskdaemon_service::open::url_location() {
            Some(location) => Ok(Service::open_location(location)?),
            None => Err(no_workspace.context(
                "no workspace here, and no --database-url (or TASKDAEMON_DATABASE_URL) to use instead",
            )),
        },
    }
}

pub fn worker(workspace_arg: Option<&Path>, args: WorkerArgs) -> anyhow::Result<u8> {
    let service = open(workspace_arg)?;
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
    // SIGTERM and Ctrl-C raise the flag the worker watches; nothing polls.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone())
            .context("cannot handle SIGTERM and SIGINT")?;
    }
    let log_dir = match service.workspace_opt() {
        Some(ws) => ws.procs_dir(),
        None => std::env::temp_dir().join("taskdaemon-worker"),
    };
    let options = WorkerOptions {
        queues: args.queues,
        concurrency: args.concurrency,
        lease: args.lease,
        log_dir,
        ..WorkerOptions::default()
    };
    eprintln!(
        "worker started: {} runner(s), queues {}",
        options.concurrency,
        if options.queues.is_empty() {
            "all".to_owned()
        } else {
            options.queues.join(", ")
        }
    );
    let report = run_worker(service.store_arc(), options, stop)?;
    println!(
        "worker stopped: {} task attempt(s) recorded, {} fenced off",
        report.completed, report.fenced
    );
    Ok(0)
}

pub fn submit(workspace_arg: Option<&Path>, args: SubmitArgs) -> anyhow::Result<u8> {
    let service = open(workspace_arg)?;
    let document = match &args.file {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "task.md".to_owned());
            Some((name, text))
        }
        None => None,
    };
    let task = service.submit(SubmitInput {
        document,
        command: args.command,
        queue: args.queue,
        executor: args.executor,
        id: args.id,
    })?;
    if args.json {
        print_json(&task)?;
    } else {
        println!("{}", task.id);
    }
    Ok(0)
}
