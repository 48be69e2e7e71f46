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
//!
//! [`CommitProbe`] is one more read-only connection, kept for `PRAGMA
//! data_version`: the cheapest way to learn whether any connection, in any
//! process, committed since the last look.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use rusqlite::{Connection, OpenFlags};

use super::busy::wait_when_busy;
use super::classify_open_error;
use crate::Result;

/// The most read connections one store keeps open.
const MAX_READERS: usize = 8;

pub(super) struct Readers {
    path: PathBuf,
    /// [`MAX_READERS`] slots, of which the first [`Readers::in_use`] are used.
    slots: Vec<Mutex<Option<Connection>>>,
    /// How many slots reads spread over: one per available core (at least
    /// 2, at most [`MAX_READERS`]). Counted when a read first finds the
    /// first slot busy: counting reads the cgroup's CPU quota (a dozen
    /// system calls), which a command that reads one thing at a time never
    /// needs.
    in_use: OnceLock<usize>,
    /// Which slot the next read waits on when every slot is busy.
    next: AtomicUsize,
}

impl Readers {
    pub(super) fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            slots: (0..MAX_READERS).map(|_| Mutex::new(None)).collect(),
            in_use: OnceLock::new(),
            next: AtomicUsize::new(0),
        }
    }

    fn in_use(&self) -> usize {
        *self.in_use.get_or_init(|| {
            std::thread::available_parallelism()
                .map_or(2, usize::from)
                .clamp(2, MAX_READERS)
        })
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

    /// The first free slot, in slot order: slots fill from the first, so a
    /// free slot that holds a connection comes before one that would open
    /// a new one, and a short run reads through one connection (whose
    /// schema and pages it has loaded already). All busy: waits on one,
    /// picked in turn so waiters spread out.
    fn take(&self) -> MutexGuard<'_, Option<Connection>> {
        if let Ok(guard) = self.slots[0].try_lock() {
            return guard;
        }
        let slots = &self.slots[..self.in_use()];
        for slot in &slots[1..] {
            if let Ok(guard) = slot.try_lock() {
                return guard;
            }
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % slots.len();
        // A panic in a read leaves nothing half-done on a read-only connection.
        self.slots[start]
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn open(&self) -> Result<Connection> {
        open_read_only(&self.path)
    }

    /// Gives up every open connection without closing it (see
    /// [`super::leave_reads_to_process_exit`]).
    pub(super) fn abandon(&mut self) {
        for slot in &mut self.slots {
            let slot = slot.get_mut().unwrap_or_else(|p| p.into_inner());
            std::mem::forget(slot.take());
        }
    }
}

fn open_read_only(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn =
        Connection::open_with_flags(path, flags).map_err(|e| classify_open_error(path, e))?;
    // A reader waits only while another process recovers the WAL index.
    wait_when_busy(&mut conn)?;
    Ok(conn)
}

/// Counts commits made by any connection in any process: `PRAGMA
/// data_version` on a connection of its own that never writes changes
/// whenever another connection commits (it reads the shared WAL index; no
/// table is touched). The connection's value only ever grows.
pub(super) struct CommitProbe {
    path: PathBuf,
    conn: Mutex<Option<Connection>>,
}

impl CommitProbe {
    pub(super) fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            conn: Mutex::new(None),
        }
    }

    /// Gives up its connection without closing it (see
    /// [`super::leave_reads_to_process_exit`]).
    pub(super) fn abandon(&mut self) {
        let slot = self.conn.get_mut().unwrap_or_else(|p| p.into_inner());
        std::mem::forget(slot.take());
    }

    /// The current commit count as this probe sees it.
    pub(super) fn version(&self) -> Result<u64> {
        // A panic mid-pragma leaves nothing half-done on a read-only connection.
        let mut slot = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let conn = match slot.as_mut() {
            Some(conn) => conn,
            None => slot.insert(open_read_only(&self.path)?),
        };
        let mut stmt = conn.prepare_cached("PRAGMA data_version")?;
        let version: i64 = stmt.query_row([], |r| r.get(0))?;
        Ok(version as u64)
    }
}
