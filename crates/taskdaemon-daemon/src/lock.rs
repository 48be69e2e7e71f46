//! The PID file lock that keeps one daemon per workspace.
//!
//! The daemon holds an exclusive `flock` on `.taskdaemon/daemon.pid` for its
//! whole life and writes its PID into it. The lock, not the file's existence,
//! says whether a daemon runs, so a PID file left by a `kill -9` is harmless.

use std::fs::{File, TryLockError};
use std::io::{self, Read, Seek, Write};

use taskdaemon_workspace::Workspace;

/// The held lock; dropping it (or dying) releases it.
#[derive(Debug)]
pub struct PidLock {
    _file: File,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("a daemon already runs for this workspace (pid {0})")]
    Held(i32),
    #[error("cannot lock the PID file: {0}")]
    Io(#[from] io::Error),
}

impl PidLock {
    /// Takes the lock and records this process's PID.
    pub fn acquire(workspace: &Workspace) -> Result<Self, LockError> {
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(workspace.pid_file())?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Held(read_pid(&mut file).unwrap_or(0)));
            }
            Err(TryLockError::Error(e)) => return Err(e.into()),
        }
        file.set_len(0)?;
        file.rewind()?;
        writeln!(file, "{}", std::process::id())?;
        file.sync_all()?;
        Ok(Self { _file: file })
    }
}

/// The PID of the daemon running for `workspace`, if one does.
pub fn running_pid(workspace: &Workspace) -> Option<i32> {
    let mut file = File::open(workspace.pid_file()).ok()?;
    match file.try_lock_shared() {
        // We could lock it: nobody holds it, so no daemon runs.
        Ok(()) => None,
        Err(TryLockError::WouldBlock) => read_pid(&mut file),
        Err(TryLockError::Error(_)) => None,
    }
}

fn read_pid(file: &mut File) -> Option<i32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}
