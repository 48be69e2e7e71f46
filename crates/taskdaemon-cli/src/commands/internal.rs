//! The subcommands the daemon and shims run as: the hidden `__shim` and
//! `__daemon`, and `run` (the daemon in the foreground).

use std::sync::Arc;

use taskdaemon_daemon::{registry, running_pid};
use taskdaemon_service::Service;
use taskdaemon_store::Store;
use taskdaemon_supervisor::launch::report;
use taskdaemon_supervisor::shim::Shim;
use taskdaemon_workspace::Workspace;

use crate::args::DaemonWebArgs;

/// `__shim ID`: supervise one command. Failures before the command starts are
/// reported on the handshake line, where the daemon reads them.
pub fn shim(workspace: &Workspace, id: &str) -> u8 {
    let fail = |message: String| {
        let _ = report(&format!("error {message}"));
        eprintln!("taskdaemon shim {id}: {message}");
        1
    };
    let service = match Service::open(workspace.clone()) {
        Ok(service) => service,
        Err(e) => return fail(e.to_string()),
    };
    let (store, config) = (service.store(), service.config());
    let on_change = || registry::refresh(workspace, store, config);
    // A running daemon follows this shim and rewrites the registry when it
    // exits; without one (or if it dies meanwhile, until the next one
    // starts and rewrites it) the shim must.
    let on_end = || {
        if running_pid(workspace).is_none() {
            registry::refresh(workspace, store, config);
        }
    };
    let shim = Shim {
        workspace,
        store,
        logs: config.logs,
        on_change: &on_change,
        on_end: &on_end,
    };
    u8::try_from(shim.run(id)).unwrap_or(1)
}

/// The binary and the store the daemon runs with, the store opened by the
/// service layer.
fn daemon_parts(workspace: &Workspace) -> anyhow::Result<(std::path::PathBuf, Arc<dyn Store>)> {
    let exe = super::current_exe()?;
    Ok((exe, Service::open(workspace.clone())?.store_arc()))
}

/// `__daemon`: run the daemon in this process, on the store the service
/// layer opens. Failures before it serves are reported on the handshake
/// line, where the starting client reads them.
pub fn daemon(workspace: Workspace, args: DaemonWebArgs) -> u8 {
    let (exe, store) = match daemon_parts(&workspace) {
        Ok(parts) => parts,
        Err(e) => {
            let _ = report(&format!("error {e:#}"));
            eprintln!("taskdaemon daemon: {e:#}");
            return 1;
        }
    };
    let hook = web_hook(&workspace, args);
    u8::try_from(taskdaemon_daemon::run_daemon_with(
        workspace, exe, store, hook,
    ))
    .unwrap_or(1)
}

/// `run`: the daemon in the foreground, logging to stderr as well.
pub fn run(workspace: Workspace, args: DaemonWebArgs) -> u8 {
    let (exe, store) = match daemon_parts(&workspace) {
        Ok(parts) => parts,
        Err(e) => {
            eprintln!("error: {e:#}");
            return 1;
        }
    };
    let hook = web_hook(&workspace, args);
    u8::try_from(taskdaemon_daemon::run_foreground(
        workspace, exe, store, hook,
    ))
    .unwrap_or(1)
}

/// Starts the web server (when asked for) once the daemon holds its lock.
fn web_hook(workspace: &Workspace, args: DaemonWebArgs) -> Option<taskdaemon_daemon::StartHook> {
    let workspace = workspace.clone();
    Some(Box::new(move || {
        super::web::serve_from_daemon(&workspace, &args).map_err(|e| format!("{e:#}"))
    }))
}
