//! `pending/.task-{id}.lock`: the file that says a document is being run.
//!
//! It is a projection of the store, written when the executor starts and
//! removed when the result is written. It names the owner by full process
//! identity (boot id, pid, start time of the task's shim), so a lock is
//! stale exactly when that process is gone or its pid now belongs to someone
//! else, never merely because a pid number exists.

use std::fs;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};
use taskdaemon_core::ProcessIdentity;
use taskdaemon_supervisor::procfs::{Liveness, liveness};
use taskdaemon_workspace::write_projection;

/// The contents of a lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockFile {
    pub task_id: String,
    pub queue: String,
    /// The OS thread that started it, as a string of digits (seed 002's type).
    pub thread_id: String,
    /// The pid of the task's shim, which owns the executor for all its attempts.
    pub pid: i32,
    /// RFC 3339.
    pub started_at: String,
    /// The pid of the executor process itself (this attempt's).
    pub executor_pid: Option<i32>,
    /// The shim's full identity: what staleness is decided by.
    pub identity: ProcessIdentity,
}

impl LockFile {
    /// Writes the lock atomically.
    pub fn write(&self, path: &Path) -> io::Result<()> {
        let mut json = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        json.push(b'\n');
        // A projection of the store: after a power cut its owner is gone anyway.
        write_projection(path, &json)
    }

    /// Reads a lock. `Ok(None)` when there is none; an unreadable lock is an
    /// error the caller treats as stale.
    pub fn read(path: &Path) -> io::Result<Option<Self>> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether the owner is gone (or its pid recycled): the lock protects nothing.
    pub fn is_stale(&self) -> bool {
        self.identity.pid != self.pid || liveness(&self.identity) != Liveness::Alive
    }

    /// Removes a lock file; one that is already gone is fine.
    pub fn remove(path: &Path) -> io::Result<()> {
        match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use taskdaemon_supervisor::procfs::identity;

    fn lock(identity: ProcessIdentity) -> LockFile {
        LockFile {
            task_id: "task-1".into(),
            queue: "q".into(),
            thread_id: "4242".into(),
            pid: identity.pid,
            started_at: "2026-01-01T00:00:00.000Z".into(),
            executor_pid: None,
            identity,
        }
    }

    #[test]
    fn staleness_follows_the_identity() {
        let me = identity(std::process::id() as i32).unwrap();
        assert!(!lock(me.clone()).is_stale());
        let recycled = ProcessIdentity {
            start_time: me.start_time + 1,
            ..me.clone()
        };
        assert!(lock(recycled).is_stale(), "same pid, other process");
        let other_boot = ProcessIdentity {
            boot_id: "another-boot".into(),
            ..me
        };
        assert!(lock(other_boot).is_stale());
    }

    #[test]
    fn round_trip_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".task-task-1.lock");
        assert_eq!(LockFile::read(&path).unwrap(), None);
        let written = lock(identity(std::process::id() as i32).unwrap());
        written.write(&path).unwrap();
        assert_eq!(LockFile::read(&path).unwrap(), Some(written));
        fs::write(&path, "{half").unwrap();
        assert!(LockFile::read(&path).is_err());
        LockFile::remove(&path).unwrap();
        LockFile::remove(&path).unwrap();
    }
}
