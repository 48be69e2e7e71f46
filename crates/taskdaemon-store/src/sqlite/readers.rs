//! The pool of read-only connections the SQLite store reads through.
//!
//! In WAL mode any number of readers run beside each other and beside one
//! writer, each seeing the last commit made before its read transaction
//! began; sharing the write connection made every read wait its turn (and
//! wait out every write). The pool is a fixed set of slots, one connection
//! each, opened on first use so that a short CLI run pays for the one it
//! needs. A fixed `Vec` of mutexes picked by `try_lock` is all this needs:
//! connections are never recycled, checked or grown, which is what a
//! general pool (r2d2 and friends) would add, along with a dependency.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OpenFlags};

use super::{BUSY_TIMEOUT, classify_open_error};
use crate::Result;

/// The most read connections one store keeps open.
const MAX_READERS: usize = 8;

pub(super) struct Readers {
    path: PathBuf,
    slots: Vec<Mutex<Option<Connection>>>,
    /// Where the next search for a free slot starts, so load spreads out.
    next: AtomicUsize,
}

impl Readers {
    /// One slot per available core (at least 2, at most [`MAX_READERS`]).
    pub(super) fn new(path: &Path) -> Self {
        let count = std::thread::available_parallelism()
            .map_or(2, usize::from)
            .clamp(2, MAX_READERS);
        Self {
            path: path.to_owned(),
            slots: (0..count).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// Runs `f` on the first free connection, or waits for one when all are busy.
    pub(super) fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let mut slot = self.take();
        let conn = match slot.as_mut() {
            Some(conn) => conn,
            None => slot.insert(self.open()?),
        };
        f(conn)
    }

    /// A free slot: one with an open connection first, so that a process
    /// reading one thing at a time opens (and parses the schema on) one
    /// connection only.
    fn take(&self) -> MutexGuard<'_, Option<Connection>> {
        let start = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let order = || (start..self.slots.len()).chain(0..start);
        let mut unopened = None;
        for index in order() {
            if let Ok(guard) = self.slots[index].try_lock() {
                if guard.is_some() {
                    return guard;
                }
                unopened.get_or_insert(guard);
            }
        }
        if let Some(guard) = unopened {
            return guard;
        }
        // A panic in a read leaves nothing half-done on a read-only connection.
        self.slots[start]
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn open(&self) -> Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)
            .map_err(|e| classify_open_error(&self.path, e))?;
        // A reader waits only while another process recovers the WAL index.
        conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(conn)
    }
}
