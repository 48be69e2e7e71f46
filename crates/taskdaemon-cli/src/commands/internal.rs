//! The subcommands the daemon and shims run as: the hidden `__shim` and
//! `__daemon`, and `run` (the daemon in the foreground).

use std::sync::Arc;

use taskdaemon_daemon::{CallHandler, Extensions, registry, running_pid};
use taskdaemon_service::Service;
use taskdaemon_store::Store;
use taskdaemon_supervisor::launch::report;
use taskdaemon_supervisor::shim::Shim;
use taskdaemon_workspace::{Config, Workspace};

use crate::args::DaemonWebArgs;

/// `__shim ID`: supervise one command. Failures before the command starts are
/// reported on the handshake line, where the daemon reads them.
pub fn shim(workspace: &Workspace, id: &str) -> u8 {
    // One arena: the shim's threads (output pumps, memory watch) allocate
    // little, and every extra arena would stay mapped as long as the command runs.
    taskdaemon_supervisor::memory::limit_arenas(1);
    let config = match Config::load(&workspace.config_path()) {
        Ok(config) => config,
        Err(e) => {
            let message = e.to_string();
            let _ = report(&format!("error {message}"));
            taskdaemon_supervisor::note!("taskdaemon shim {id}: {message}");
            return 1;
        }
    };
    let location = taskdaemon_service::open::location(workspace, &config);
    run_shim(
        workspace,
        &config,
        &|| taskdaemon_store::open_for_writing(&location),
        id,
    )
}

/// `__shim-standby`: load what a shim needs, then start a shim for every
/// task the daemon names on stdin, each a fork of this process (see
/// [`taskdaemon_supervisor::standby`]). A standby that cannot load the
/// config exits at once: the daemon then starts a fresh shim, which reports
/// the failure where the task's starter sees it.
///
/// Each shim opens the store itself, after the fork: a connection must not
/// cross one. A spare forked ahead of its task opens a SQLite store while
/// it waits (see [`prepare_spare`]). A shim loads the config again if the
/// file changed since the standby did.
pub fn standby_shim(workspace: &Workspace) -> u8 {
    taskdaemon_supervisor::memory::limit_arenas(1);
    let config_path = workspace.config_path();
    let loaded_at = config_mtime(&config_path);
    let config = match Config::load(&config_path) {
        Ok(config) => config,
        Err(e) => {
            taskdaemon_supervisor::note!("taskdaemon standby shim: {e}");
            return 1;
        }
    };
    let prepare = || prepare_spare(workspace, &config);
    let run = |id: &str, prepared: Option<Arc<dyn Store>>| -> i32 {
        let fresh;
        let (config, prepared) = if config_mtime(&config_path) == loaded_at {
            (&config, prepared)
        } else {
            // The store may be another one now.
            match Config::load(&config_path) {
                Ok(reloaded) => {
                    fresh = reloaded;
                    (&fresh, None)
                }
                Err(e) => {
                    let message = e.to_string();
                    let _ = report(&format!("error {message}"));
                    taskdaemon_supervisor::note!("taskdaemon shim {id}: {message}");
                    return 1;
                }
            }
        };
        let location = taskdaemon_service::open::location(workspace, config);
        let opened_ahead = std::cell::RefCell::new(prepared);
        let open_store = || match opened_ahead.borrow_mut().take() {
            Some(store) => Ok(store),
            None => taskdaemon_store::open_for_writing(&location),
        };
        i32::from(run_shim(workspace, config, &open_store, id))
    };
    u8::try_from(taskdaemon_supervisor::standby::serve(
        workspace, &prepare, &run,
    ))
    .unwrap_or(1)
}

/// What a spare shim readies before its task comes: a SQLite store opened
/// for writing, which loads its schema (most of a shim's start-up), for the
/// shim's first use. None for PostgreSQL (a connection idle for long may be
/// closed by the server, failing the task it was kept for) and when the
/// store cannot be opened now: the shim then opens it as it goes, and
/// reports what fails where its task's starter sees it.
fn prepare_spare(workspace: &Workspace, config: &Config) -> Option<Arc<dyn Store>> {
    let location = taskdaemon_service::open::location(workspace, config);
    match location {
        taskdaemon_store::Location::Sqlite(_) => taskdaemon_store::open_for_writing(&location).ok(),
        taskdaemon_store::Location::Postgres(_) => None,
    }
}

/// When the config file was last changed, if it can be told.
fn config_mtime(path: &std::path::Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Runs the shim of task `id` with `config` and a way to open the store.
fn run_shim(
    workspace: &Workspace,
    config: &Config,
    open_store: taskdaemon_supervisor::shim::OpenStore<'_>,
    id: &str,
) -> u8 {
    let on_change = |store: &dyn Store| registry::refresh(workspace, store, config);
    // A running daemon follows this shim and rewrites the registry when it
    // exits; without one (or if it dies meanwhile, until the next one
    // starts and rewrites it) the shim must.
    let on_end = |store: &dyn Store| {
        if running_pid(workspace).is_none() {
            registry::refresh(workspace, store, config);
        }
    };
    let shim = Shim {
        workspace,
        open_store,
        logs: config.logs,
        on_change: &on_change,
        on_end: &on_end,
    };
    u8::try_from(shim.run(id)).unwrap_or(1)
}

/// `__container ID`: run container task `ID`'s container to its end; the
/// exit code is the container's (125 when the engine failed us, as
/// `docker run` does). A container that vanished makes the task `lost`.
pub fn container(workspace: &Workspace, id: &str) -> u8 {
    const ENGINE_FAILED: u8 = 125;
    let fail = |message: String| {
        eprintln!("taskdaemon container {id}: {message}");
        ENGINE_FAILED
    };
    let service = match Service::open(workspace.clone()) {
        Ok(service) => service,
        Err(e) => return fail(e.to_string()),
    };
    let store = service.store();
    let task = match store.task(id) {
        Ok(task) => task,
        Err(e) => return fail(e.to_string()),
    };
    let socket = task
        .container
        .as_ref()
        .map(|c| c.engine.clone())
        .unwrap_or_default();
    let engine = match taskdaemon_container::Engine::new(&socket) {
        Ok(engine) => engine,
        Err(e) => return fail(e.to_string()),
    };
    let root = workspace.root().display().to_string();
    let mut on_created = |container: &str| {
        if let Err(e) = store.set_container_id(id, container) {
            eprintln!("taskdaemon container {id}: cannot record container {container}: {e}");
        }
    };
    let ran = taskdaemon_container::block_on(taskdaemon_container::run(
        &engine,
        &task,
        &root,
        &mut on_created,
    ));
    match ran {
        Ok(Ok(taskdaemon_container::RunEnd::Exited(code))) => u8::try_from(code).unwrap_or(1),
        Ok(Ok(taskdaemon_container::RunEnd::Vanished(reason))) => {
            if let Err(e) = store.mark_lost(id, &reason, "container") {
                eprintln!("taskdaemon container {id}: cannot mark it lost: {e}");
            }
            fail(reason)
        }
        Ok(Err(e)) | Err(e) => fail(e.to_string()),
    }
}

/// The binary and the store the daemon runs with, the store opened by the
/// service layer, which also runs the calls clients make on the daemon.
fn daemon_parts(
    workspace: &Workspace,
) -> anyhow::Result<(std::path::PathBuf, Arc<dyn Store>, CallHandler)> {
    let exe = super::current_exe()?;
    let service = Arc::new(Service::open(workspace.clone())?);
    Ok((exe, service.store_arc(), service.call_handler()))
}

/// `__daemon`: run the daemon in this process, on the store the service
/// layer opens. Failures before it serves are reported on the handshake
/// line, where the starting client reads them.
pub fn daemon(workspace: Workspace, args: DaemonWebArgs) -> u8 {
    daemon_allocator();
    let (exe, store, calls) = match daemon_parts(&workspace) {
        Ok(parts) => parts,
        Err(e) => {
            let _ = report(&format!("error {e:#}"));
            eprintln!("taskdaemon daemon: {e:#}");
            return 1;
        }
    };
    let extensions = extensions(&workspace, args, calls);
    u8::try_from(taskdaemon_daemon::run_daemon_with(
        workspace, exe, store, extensions,
    ))
    .unwrap_or(1)
}

/// `run`: the daemon in the foreground, logging to stderr as well.
pub fn run(workspace: Workspace, args: DaemonWebArgs) -> u8 {
    daemon_allocator();
    let (exe, store, calls) = match daemon_parts(&workspace) {
        Ok(parts) => parts,
        Err(e) => {
            eprintln!("error: {e:#}");
            return 1;
        }
    };
    let extensions = extensions(&workspace, args, calls);
    u8::try_from(taskdaemon_daemon::run_foreground(
        workspace, exe, store, extensions,
    ))
    .unwrap_or(1)
}

/// Two allocator arenas for the daemon: its blocking pool grows to dozens of
/// threads in a burst (500 spawns), and with an arena each they would keep
/// tens of MiB mapped after the burst is over.
fn daemon_allocator() {
    taskdaemon_supervisor::memory::limit_arenas(2);
}

/// What the daemon process runs besides the daemon: the web server (when
/// asked for, started once the daemon holds its lock) and the service calls
/// clients make on it.
fn extensions(workspace: &Workspace, args: DaemonWebArgs, calls: CallHandler) -> Extensions {
    let workspace = workspace.clone();
    Extensions {
        on_start: Some(Box::new(move || {
            super::web::serve_from_daemon(&workspace, &args).map_err(|e| format!("{e:#}"))
        })),
        calls: Some(calls),
    }
}
