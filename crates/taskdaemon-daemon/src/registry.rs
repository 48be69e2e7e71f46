//! The registry projection: `.claude/process_registry.json` by default.
//!
//! A file mirror of the process table for tools that read files rather than
//! call the CLI. It is rebuilt from the store after every change, by whoever
//! made the change (daemon or shim), under an exclusive lock so that an older
//! snapshot can never be renamed over a newer one, and written atomically.

use std::io;
use std::path::PathBuf;

use serde::Serialize;
use taskdaemon_core::time::{Millis, now_millis, serde_rfc3339};
use taskdaemon_core::{Status, TaskRecord};
use taskdaemon_store::{ProcessFilter, Store, StoreError};
use taskdaemon_workspace::{Config, Workspace, write_projection};

/// The registry file format version.
pub const SCHEMA: u32 = 1;

/// How many ended processes the registry keeps beside the live ones.
const RECENT_ENDED: usize = 50;

/// Why the registry could not be written.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

#[derive(Serialize)]
struct Registry<'a> {
    /// Increases with every change: the store's last event number.
    version: i64,
    schema: u32,
    #[serde(with = "serde_rfc3339")]
    updated_at: Millis,
    workspace: String,
    processes: Vec<Entry<'a>>,
}

#[derive(Serialize)]
struct Entry<'a> {
    id: &'a str,
    name: Option<&'a str>,
    tool: Option<&'a str>,
    status: Status,
    /// How it runs: `process` (under a taskdaemon shim), `container`
    /// (in a container, through the engine) or `adopted` (started by
    /// another tool, watched by taskdaemon).
    mode: &'static str,
    /// Container tasks: the image and the engine's container id.
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    container_id: Option<&'a str>,
    pid: Option<i32>,
    pgid: Option<i32>,
    /// With `boot_id`, what identifies the process beyond its PID (which
    /// the kernel reuses): field 22 of `/proc/PID/stat`, in clock ticks.
    start_time: Option<u64>,
    boot_id: Option<&'a str>,
    command: &'a str,
    cwd: Option<&'a str>,
    exit_code: Option<i32>,
    signal: Option<i32>,
    #[serde(with = "serde_rfc3339::option")]
    started_at: Option<Millis>,
    #[serde(with = "serde_rfc3339::option")]
    finished_at: Option<Millis>,
    stdout_log: String,
    stderr_log: String,
}

/// Rewrites the registry if the config enables it; returns the path written.
pub fn write(
    workspace: &Workspace,
    store: &dyn Store,
    config: &Config,
) -> Result<Option<PathBuf>, RegistryError> {
    if !config.registry.enabled {
        return Ok(None);
    }
    let path = workspace.resolve(&config.registry.path);
    let io_error = |source| RegistryError::Io {
        path: path.clone(),
        source,
    };
    let _lock = crate::projection::exclusive(&workspace.registry_lock()).map_err(io_error)?;

    // Read inside the lock: the newest writer always writes the newest state.
    let version = store.last_event_seq()?;
    let live = store.processes(&ProcessFilter::default())?;
    let recent = store.processes(&ProcessFilter {
        all: true,
        tool: None,
        limit: Some(RECENT_ENDED + live.len()),
    })?;
    let mut tasks: Vec<&TaskRecord> = recent.iter().filter(|t| t.status.is_terminal()).collect();
    tasks.extend(live.iter());
    tasks.sort_by_key(|t| (t.created_at, t.id.len(), t.id.clone()));

    let registry = Registry {
        version,
        schema: SCHEMA,
        updated_at: now_millis(),
        workspace: workspace.root().display().to_string(),
        processes: tasks.iter().map(|t| entry(workspace, t)).collect(),
    };
    let json = serde_json::to_vec_pretty(&registry)
        .map_err(|e| io_error(io::Error::other(e.to_string())))?;
    // A projection: rebuilt after every change and at daemon start.
    write_projection(&path, &json).map_err(io_error)?;
    Ok(Some(path))
}

fn entry<'a>(workspace: &Workspace, task: &'a TaskRecord) -> Entry<'a> {
    Entry {
        id: &task.id,
        name: task.name.as_deref(),
        tool: task.tool.as_deref(),
        status: task.status,
        mode: if task.is_adopted() {
            "adopted"
        } else {
            task.mode().as_str()
        },
        image: task.image(),
        container_id: task.container_id.as_deref(),
        pid: task.pid,
        pgid: task.pgid,
        start_time: task.start_time,
        boot_id: task.boot_id.as_deref(),
        command: &task.command,
        cwd: task.cwd.as_deref(),
        exit_code: task.exit_code,
        signal: task.signal,
        started_at: task.started_at,
        finished_at: task.finished_at,
        stdout_log: workspace.stdout_log(&task.id).display().to_string(),
        stderr_log: workspace.stderr_log(&task.id).display().to_string(),
    }
}

/// The shape `repair` expects of an existing registry file.
#[derive(serde::Deserialize)]
struct RegistryShape {
    #[allow(dead_code)]
    version: i64,
    #[allow(dead_code)]
    processes: Vec<serde_json::Value>,
}

/// Checks the registry file on disk (when enabled) without changing it.
pub fn inspect(
    workspace: &Workspace,
    config: &Config,
) -> Option<(PathBuf, crate::projection::ProjectionFile)> {
    config.registry.enabled.then(|| {
        let path = workspace.resolve(&config.registry.path);
        let found = crate::projection::inspect::<RegistryShape>(&path);
        (path, found)
    })
}

/// Rewrites the registry, logging instead of failing: the store already holds
/// the truth, and a later change or `repair` rewrites the projection.
pub fn refresh(workspace: &Workspace, store: &dyn Store, config: &Config) {
    if let Err(e) = write(workspace, store, config) {
        tracing::warn!(error = %e, "registry projection not written");
    }
}
