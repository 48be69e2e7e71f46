//! Seed 003's task files, a projection of the store in `[autodev] dir`
//! (`.auto-dev/tasks/` by default): `current.json`, `memory.json` and
//! `history/` (see `taskdaemon_core::snapshot` for their shape).
//!
//! `current.json` and `memory.json` are rewritten after every save trigger (a
//! task created, a status change, a context or scope change, a session end)
//! by whoever made the change; the daemon rewrites all three when the store
//! changed (debounced), and `taskdaemon autodev` on demand. Each file is
//! built inside an exclusive lock, so the last writer always writes the
//! newest state, validated, and renamed into place atomically (without fsync:
//! it is a projection, and `repair` rebuilds it from the store). The copy of
//! `current.json` it replaces is kept as `current.json.bak`, the seed's
//! "backup before writes".

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use taskdaemon_core::snapshot::{
    ArchivedTask, COMPLETED_IN_SNAPSHOT, CompletedTask, CurrentTask, MEMORIES_IN_MEMORY_FILE,
    MEMORIES_IN_SNAPSHOT, MemoryEntry, SeedFileError, SeedMemory, SeedSnapshot, SnapshotMemory,
    pick_current,
};
use taskdaemon_core::time::now_millis;
use taskdaemon_core::{MemoryKind, Status};
use taskdaemon_store::{MemoryFilter, Store, StoreError, TrackedFilter};
use taskdaemon_workspace::{Config, Workspace, write_projection};

use crate::projection::ProjectionFile;

/// The memory key that names the project type, when an agent recorded it.
pub const PROJECT_TYPE_KEY: &str = "project_type";

/// Why the snapshot could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file would break the seed's shape; nothing was written.
    #[error("not writing {}: {source}", path.display())]
    Invalid {
        path: PathBuf,
        #[source]
        source: SeedFileError,
    },
}

/// The file names inside the directory.
pub const CURRENT_FILE: &str = "current.json";
pub const CURRENT_BACKUP: &str = "current.json.bak";
pub const MEMORY_FILE: &str = "memory.json";
pub const HISTORY_DIR: &str = "history";

/// What a full write did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Written {
    pub dir: PathBuf,
    /// The store's last event the files reflect.
    pub version: i64,
    /// Tasks newly archived in `history/` by this write.
    pub archived: usize,
}

/// Builds the snapshot from the store, as seen by `session` (or the latest one).
pub fn build(
    workspace: &Workspace,
    store: &dyn Store,
    session: Option<&str>,
) -> Result<SeedSnapshot, StoreError> {
    let version = store.last_event_seq()?;
    let session = match session {
        Some(id) => store.session(id)?,
        None => store.latest_session()?,
    };
    let running = store.current_candidates(session.as_ref().map(|s| s.id.as_str()))?;
    let current = pick_current(&running, session.as_ref().map(|s| s.id.as_str()));
    let current_task = match current {
        Some(task) => {
            let decisions = texts(store, MemoryKind::Decision, Some(&task.id))?;
            Some(CurrentTask::new(task, decisions))
        }
        None => None,
    };
    let completed_tasks = store
        .recently_succeeded(COMPLETED_IN_SNAPSHOT)?
        .iter()
        .filter_map(CompletedTask::new)
        .collect();
    Ok(SeedSnapshot {
        session_id: session.as_ref().map(|s| s.id.clone()),
        started_at: session.as_ref().map(|s| s.started_at),
        current_task,
        completed_tasks,
        memory: SnapshotMemory {
            project_type: project_type(workspace, store)?,
            key_decisions: texts(store, MemoryKind::Decision, None)?,
            learned_patterns: texts(store, MemoryKind::Pattern, None)?,
        },
        version,
        generated_at: now_millis(),
    })
}

fn texts(
    store: &dyn Store,
    kind: MemoryKind,
    task: Option<&str>,
) -> Result<Vec<String>, StoreError> {
    Ok(store
        .memories(&MemoryFilter {
            kind: Some(kind),
            task_id: task.map(str::to_owned),
            limit: Some(MEMORIES_IN_SNAPSHOT),
        })?
        .into_iter()
        .map(|m| m.text)
        .collect())
}

/// What an agent recorded under [`PROJECT_TYPE_KEY`], else a guess from the
/// files at the workspace root.
fn project_type(workspace: &Workspace, store: &dyn Store) -> Result<Option<String>, StoreError> {
    let recorded = store.memory_by_key(PROJECT_TYPE_KEY)?.map(|m| m.text);
    Ok(recorded.or_else(|| detect_project_type(workspace.root()).map(str::to_owned)))
}

/// The kind of project whose marker file sits in `root`.
pub fn detect_project_type(root: &Path) -> Option<&'static str> {
    const MARKERS: [(&str, &str); 8] = [
        ("Cargo.toml", "rust"),
        ("package.json", "node"),
        ("pyproject.toml", "python"),
        ("setup.py", "python"),
        ("go.mod", "go"),
        ("pom.xml", "java"),
        ("build.gradle", "java"),
        ("Gemfile", "ruby"),
    ];
    MARKERS
        .iter()
        .find(|(file, _)| root.join(file).is_file())
        .map(|&(_, kind)| kind)
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_owned(),
        source,
    }
}

fn invalid(path: &Path) -> impl FnOnce(SeedFileError) -> SnapshotError + '_ {
    move |source| SnapshotError::Invalid {
        path: path.to_owned(),
        source,
    }
}

fn to_json<T: Serialize>(value: &T, path: &Path) -> Result<Vec<u8>, SnapshotError> {
    serde_json::to_vec_pretty(value).map_err(|e| io_error(path)(io::Error::other(e.to_string())))
}

/// Rewrites `current.json` (keeping the copy it replaces as
/// `current.json.bak`); returns the snapshot written.
pub fn write(
    workspace: &Workspace,
    config: &Config,
    store: &dyn Store,
    session: Option<&str>,
) -> Result<SeedSnapshot, SnapshotError> {
    let dir = workspace.autodev_dir(config);
    let path = dir.join(CURRENT_FILE);
    let _lock =
        crate::projection::exclusive(&workspace.snapshot_lock()).map_err(io_error(&path))?;
    std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
    // Read inside the lock: the newest writer always writes the newest state.
    let snapshot = build(workspace, store, session)?;
    snapshot.validate().map_err(invalid(&path))?;
    let json = to_json(&snapshot, &path)?;
    keep_backup(&path, &dir.join(CURRENT_BACKUP))?;
    write_projection(&path, &json).map_err(io_error(&path))?;
    Ok(snapshot)
}

/// Copies the file about to be replaced to `backup` (atomically too), so a
/// reader always finds the previous state whole.
fn keep_backup(path: &Path, backup: &Path) -> Result<(), SnapshotError> {
    match std::fs::read(path) {
        Ok(previous) => write_projection(backup, &previous).map_err(io_error(backup)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(path)(e)),
    }
}

/// Builds `memory.json` from the store.
pub fn build_memory(store: &dyn Store) -> Result<SeedMemory, StoreError> {
    let version = store.last_event_seq()?;
    let entries = |kind| -> Result<Vec<MemoryEntry>, StoreError> {
        Ok(store
            .memories(&MemoryFilter {
                kind: Some(kind),
                task_id: None,
                limit: Some(MEMORIES_IN_MEMORY_FILE),
            })?
            .iter()
            .map(MemoryEntry::from)
            .collect())
    };
    Ok(SeedMemory {
        decisions: entries(MemoryKind::Decision)?,
        learned_patterns: entries(MemoryKind::Pattern)?,
        facts: entries(MemoryKind::Fact)?,
        version,
        generated_at: now_millis(),
    })
}

/// Rewrites `memory.json`.
pub fn write_memory(
    workspace: &Workspace,
    config: &Config,
    store: &dyn Store,
) -> Result<SeedMemory, SnapshotError> {
    let dir = workspace.autodev_dir(config);
    let path = dir.join(MEMORY_FILE);
    let _lock =
        crate::projection::exclusive(&workspace.snapshot_lock()).map_err(io_error(&path))?;
    std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
    let memory = build_memory(store)?;
    memory.validate().map_err(invalid(&path))?;
    write_projection(&path, &to_json(&memory, &path)?).map_err(io_error(&path))?;
    Ok(memory)
}

/// Archives every ended tracked task not yet in `history/`, one
/// gzip-compressed JSON file each; returns how many it added. A file once
/// written is never rewritten.
pub fn archive_history(
    workspace: &Workspace,
    config: &Config,
    store: &dyn Store,
) -> Result<usize, SnapshotError> {
    let dir = workspace.autodev_dir(config).join(HISTORY_DIR);
    std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
    let mut added = 0;
    for status in [
        Status::Succeeded,
        Status::Failed,
        Status::Cancelled,
        Status::Lost,
    ] {
        let ended = store.tracked(&TrackedFilter {
            status: Some(status),
            label: None,
            limit: None,
        })?;
        for task in &ended {
            let Some(finished) = task.finished_at else {
                continue;
            };
            let path = dir.join(ArchivedTask::file_name(&task.id, finished));
            if path.exists() {
                continue;
            }
            let decisions = texts(store, MemoryKind::Decision, Some(&task.id))?;
            let Some(archived) = ArchivedTask::new(task, decisions) else {
                continue;
            };
            let json = serde_json::to_vec(&archived)
                .map_err(|e| io_error(&path)(io::Error::other(e.to_string())))?;
            write_gzip(&path, &json)?;
            added += 1;
        }
    }
    Ok(added)
}

fn write_gzip(path: &Path, json: &[u8]) -> Result<(), SnapshotError> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(json).map_err(io_error(path))?;
    let compressed = encoder.finish().map_err(io_error(path))?;
    write_projection(path, &compressed).map_err(io_error(path))
}

/// Rewrites all of seed 003's files from the store.
pub fn write_all(
    workspace: &Workspace,
    config: &Config,
    store: &dyn Store,
) -> Result<Written, SnapshotError> {
    let snapshot = write(workspace, config, store, None)?;
    write_memory(workspace, config, store)?;
    let archived = archive_history(workspace, config, store)?;
    Ok(Written {
        dir: workspace.autodev_dir(config),
        version: snapshot.version,
        archived,
    })
}

/// Checks the snapshot file on disk without changing it.
pub fn inspect(workspace: &Workspace, config: &Config) -> ProjectionFile {
    crate::projection::inspect::<SeedSnapshot>(&workspace.snapshot_path(config))
}
