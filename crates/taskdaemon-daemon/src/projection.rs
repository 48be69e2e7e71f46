//! Shared rules of the projection files (registry, seed snapshot): who may
//! write them when, and what they look like on disk, for `repair` to report
//! before it rewrites them from the store.

use std::fs::File;
use std::io;
use std::path::Path;

use serde::de::DeserializeOwned;

/// What reading a projection file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectionFile {
    Missing,
    Valid,
    /// Unreadable, truncated or not the expected shape: why, with line and column.
    Corrupt(String),
}

/// Reads `path` as a `T` without changing it.
pub fn inspect<T: DeserializeOwned>(path: &Path) -> ProjectionFile {
    match std::fs::read(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => ProjectionFile::Missing,
        Err(e) => ProjectionFile::Corrupt(e.to_string()),
        Ok(bytes) => match serde_json::from_slice::<T>(&bytes) {
            Ok(_) => ProjectionFile::Valid,
            Err(e) => ProjectionFile::Corrupt(e.to_string()),
        },
    }
}

/// Takes the exclusive lock that serialises the writers of one projection;
/// it is released when the returned file is dropped. Writers read the store
/// only once they hold it, so the last writer always writes the newest state.
pub fn exclusive(lock_path: &Path) -> io::Result<File> {
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path)?;
    lock.lock()?;
    Ok(lock)
}
