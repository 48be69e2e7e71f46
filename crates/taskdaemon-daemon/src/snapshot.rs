//! The seed snapshot projection: `.taskdaemon/current.json`.
//!
//! Rewritten from the store after every save trigger (a task created, a status
//! change, a context or scope change, a session end) by whoever made the
//! change. Like the registry, it is built inside an exclusive lock, so the last
//! writer always writes the newest state, and renamed into place atomically
//! (without fsync: it is a projection, and `repair` rebuilds it from the store).

use std::io;
use std::path::{Path, PathBuf};

use taskdaemon_core::MemoryKind;
use taskdaemon_core::snapshot::{
    COMPLETED_IN_SNAPSHOT, CompletedTask, CurrentTask, MEMORIES_IN_SNAPSHOT, SeedSnapshot,
    SnapshotMemory, pick_current,
};
use taskdaemon_core::time::now_millis;
use taskdaemon_store::{MemoryFilter, Store, StoreError};
use taskdaemon_workspace::{Workspace, write_projection};

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

/// Rewrites `current.json`; returns the snapshot written.
pub fn write(
    workspace: &Workspace,
    store: &dyn Store,
    session: Option<&str>,
) -> Result<SeedSnapshot, SnapshotError> {
    let path = workspace.snapshot_path();
    let io_error = |source| SnapshotError::Io {
        path: path.clone(),
        source,
    };
    let _lock = crate::projection::exclusive(&workspace.snapshot_lock()).map_err(io_error)?;
    // Read inside the lock: the newest writer always writes the newest state.
    let snapshot = build(workspace, store, session)?;
    let json = serde_json::to_vec_pretty(&snapshot)
        .map_err(|e| io_error(io::Error::other(e.to_string())))?;
    write_projection(&path, &json).map_err(io_error)?;
    Ok(snapshot)
}

/// Checks the snapshot file on disk without changing it.
pub fn inspect(workspace: &Workspace) -> ProjectionFile {
    crate::projection::inspect::<SeedSnapshot>(&workspace.snapshot_path())
}
