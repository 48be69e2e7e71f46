//! The SQLite store: `.taskdaemon/state.db` in WAL mode.
//!
//! Writers use `BEGIN IMMEDIATE` so that concurrent processes (CLI, daemon,
//! shims) queue on SQLite's lock, waiting as [`busy`] says, instead of failing
//! with "database is locked" half-way through a transaction.
//!
//! Reads outside a write go to a small pool of read-only connections (see
//! [`readers`]): WAL lets them run side by side, and beside an open write,
//! instead of taking turns on the one write connection.
//!
//! A `LIMIT` is written into the SQL as a number ([`limit_literal`]), never
//! bound as a parameter: SQLite's planner reads a bound `LIMIT`, so every
//! new binding expires the statement and the next step prepares it again
//! (a cached statement was re-prepared on each use, and a CLI command paid
//! each prepare twice).
//!
//! Each submodule holds the SQL of one area; what a change writes, and when
//! it is refused, is decided by the shared modules (see the crate docs), and
//! the `Store` methods that only hand their arguments on are in
//! [`crate::wiring`].

mod busy;
mod claim;
mod events;
mod gates;
mod history;
mod links;
mod loops;
mod memory;
mod migrations;
mod pipeline;
mod processes;
mod queue;
mod readers;
mod rows;
mod search;
mod tracked;
mod transfer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, Once, OnceLock};
use std::time::Duration;

use rusqlite::{
    Connection, ErrorCode, OptionalExtension, Transaction, TransactionBehavior, params,
};
// Several of these are named only by `shared_store_methods!` below.
use taskdaemon_core::process::ExitOutcome;
use taskdaemon_core::time::now_millis;
use taskdaemon_core::tracked::{SearchHit, Session};
use taskdaemon_core::{
    ConfigVersion, Event, EventKind, HumanId, LoopEnd, LoopIteration, LoopRecord, Memory, NewAgent,
    NewConfigVersion, NewEvent, NewLoop, NewMemory, NewProcess, NewTracked, QueueCounts, QueueItem,
    Status, TaskRecord, TrackedAction, TrackedEdit,
};

use crate::archive;
use crate::changes::{self, Change, Column};
use crate::claim::{
    Claim, ClaimCompleted, HeldLease, Lease, Released, WorkWaiter, WorkerInfo, WorkerRecord,
};
use crate::encoding::{canonical_id, find_by_id, parse_status};
use crate::lifecycle;
use crate::{
    ArchiveReport, ExitRecorded, HistoryFilter, Importer, IntegrityReport, MemoryFilter,
    ProcessFilter, RepairReport, Result, Sample, Started, Store, StoreError, TrackedFilter,
};
use busy::BUSY_TIMEOUT;
use events::insert_event;
use memory::touch_session;
use readers::{CommitProbe, Readers};
use rows::{TASK_COLUMNS, task_from_row};

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    path: PathBuf,
    /// Whether the write connection commits with `synchronous=NORMAL` now
    /// (see [`crate::deferred`]); changed only while its lock is held.
    relaxed: AtomicBool,
    /// Reads outside a write.
    readers: Readers,
    /// Tells whether anything was committed (see [`Store::commit_version`]).
    probe: CommitProbe,
    /// Reads go through the write connection too (see [`Self::open_for_writing`]).
    reads_on_writer: bool,
    /// Every write, and every read made inside one. Opened on the first
    /// write (or at open when the schema needs migrating), so a command
    /// that only reads (`task ready`, `show`, `search`) opens one
    /// connection and loads the schema once, not twice.
    ///
    /// Declared last so that it is dropped last: the last connection to
    /// close checkpoints the WAL and deletes it, but only a write connection
    /// can, and only once no other connection holds the file. Closed before
    /// the readers, it would leave the WAL behind, and every later process
    /// would rebuild its index from the whole WAL before its first read.
    conn: OnceLock<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self> {
        configure_library();
        let store = Self::unopened(path, false);
        if !store.is_current()? {
            drop(store.lock()?);
        }
        Ok(store)
    }

    /// [`Self::open`] for a process that writes as surely as it reads, one
    /// thing at a time (a shim: it reads its task, then records its start
    /// and exit): its one connection, the write connection, serves the
    /// reads too, so the schema is loaded once, not once per connection.
    /// Opened at once, bringing the schema up to date.
    pub fn open_for_writing(path: &Path) -> Result<Self> {
        configure_library();
        let store = Self::unopened(path, true);
        drop(store.lock()?);
        Ok(store)
    }

    fn unopened(path: &Path, reads_on_writer: bool) -> Self {
        Self {
            path: path.to_owned(),
            relaxed: AtomicBool::new(false),
            readers: Readers::new(path),
            probe: CommitProbe::new(path),
            reads_on_writer,
            conn: OnceLock::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file exists at this build's schema version, asked on a
    /// read connection (which then serves the reads that follow). A file
    /// that is missing, or that a read connection cannot read, is left to
    /// the write connection, which creates, migrates or reports it.
    fn is_current(&self) -> Result<bool> {
        if !self.path.exists() {
            return Ok(false);
        }
        let version = self
            .readers
            .with(|conn| Ok(conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))?));
        let latest = migrations::latest_version();
        match version {
            Ok(found) if found > latest => Err(StoreError::TooNew {
                path: self.path.clone(),
                found,
                known: latest,
            }),
            Ok(found) => Ok(found == latest),
            Err(_) => Ok(false),
        }
    }

    /// Opens the write connection: WAL, durable commits, foreign keys, and
    /// the schema brought up to date.
    fn open_writer(&self) -> Result<Connection> {
        let path = &self.path;
        let mut conn = Connection::open(path).map_err(|e| classify_open_error(path, e))?;
        configure(&mut conn, path).map_err(|e| match e {
            StoreError::Sqlite(source) => classify_open_error(path, source),
            other => other,
        })?;
        Ok(conn)
    }

    /// The write connection, opened on first use, committing durably.
    fn lock(&self) -> Result<MutexGuard<'_, Connection>> {
        self.lock_committing(false)
    }

    /// The write connection, its commits deferred or not (see
    /// [`crate::deferred`]). The mode is set here for every user of the
    /// connection, so a deferred commit never leaves it relaxed for the next.
    fn lock_committing(&self, deferred: bool) -> Result<MutexGuard<'_, Connection>> {
        let conn = self.lock_connection()?;
        if self.relaxed.load(Ordering::Relaxed) != deferred {
            let mode = if deferred { "NORMAL" } else { "FULL" };
            conn.pragma_update(None, "synchronous", mode)
                .map_err(|e| explain(&self.path, e.into()))?;
            self.relaxed.store(deferred, Ordering::Relaxed);
        }
        Ok(conn)
    }

    fn lock_connection(&self) -> Result<MutexGuard<'_, Connection>> {
        let conn = match self.conn.get() {
            Some(conn) => conn,
            None => {
                let opened = self.open_writer()?;
                // Another thread may have opened one meanwhile: the first stays.
                let _ = self.conn.set(Mutex::new(opened));
                self.conn.get().ok_or_else(|| StoreError::Open {
                    path: self.path.clone(),
                    source: rusqlite::Error::InvalidQuery,
                })?
            }
        };
        // A panic while holding the lock leaves the connection usable: SQLite
        // rolls back the unfinished transaction when it is dropped.
        Ok(conn.lock().unwrap_or_else(|poison| poison.into_inner()))
    }

    /// A claim or completion batch committed: nothing to announce, waiters
    /// watch the database's files (PostgreSQL's store wakes its listeners
    /// here).
    fn events_committed(&self) {}

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction, durable unless the
    /// calling thread defers it.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.lock_committing(crate::durability::is_deferred())?;
        let attempt = || {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        };
        attempt().map_err(|e| explain(&self.path, e))
    }

    /// Runs `f` on a free read-only connection. Each statement starts its own
    /// read transaction, so it sees every write committed before it began.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        if self.reads_on_writer {
            let conn = self.lock_connection()?;
            return f(&conn).map_err(|e| explain(&self.path, e));
        }
        self.readers.with(f).map_err(|e| explain(&self.path, e))
    }

    /// The integrity check's read, on the write connection: SQLite runs the
    /// search index's check as an `INSERT` command, refused on a read-only one.
    fn read_for_check<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.lock()?;
        f(&conn)
    }

    /// A read that sees every committed event: any read does in SQLite,
    /// where an event has its `seq` when it commits.
    fn read_events<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.read(f)
    }
}

/// `limit` as the number a `LIMIT` clause is written with (see the module
/// docs): past `i64::MAX` it means no limit, which SQLite spells -1.
pub(crate) fn limit_literal(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(-1)
}

/// The write-ahead log of the database at `path`.
fn wal_path(path: &Path) -> PathBuf {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

/// Names the file, and says what happened in words a user can act on, for
/// the failures that come from outside: another process holding the lock,
/// a full disk. SQLite's own text ("database or disk is full") names neither.
fn explain(path: &Path, error: StoreError) -> StoreError {
    let StoreError::Sqlite(source) = &error else {
        return error;
    };
    outside_failure(path, source).unwrap_or(error)
}

fn outside_failure(path: &Path, error: &rusqlite::Error) -> Option<StoreError> {
    match error.sqlite_error_code()? {
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => Some(StoreError::Locked {
            path: path.to_owned(),
            waited: BUSY_TIMEOUT,
        }),
        ErrorCode::DiskFull => Some(StoreError::DiskFull {
            path: path.to_owned(),
        }),
        _ => None,
    }
}

fn classify_open_error(path: &Path, error: rusqlite::Error) -> StoreError {
    if let Some(explained) = outside_failure(path, &error) {
        return explained;
    }
    match error.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreError::Corrupt {
            path: path.to_owned(),
            message: error.to_string(),
        },
        _ => StoreError::Open {
            path: path.to_owned(),
            source: error,
        },
    }
}

/// Set by [`leave_reads_to_process_exit`].
static READS_LEFT_TO_EXIT: AtomicBool = AtomicBool::new(false);

/// Tells this process's SQLite stores that the process exits soon after
/// its command's store is dropped (a short CLI command): the first store
/// dropped from now on that never wrote leaves its read connections open
/// instead of closing them. Closing one frees the parsed schema object by
/// object, about a tenth of a short CLI call's instructions, for memory the
/// exit returns anyway; and a read-only connection has nothing to
/// checkpoint or clean up, so the file is left exactly as a close would
/// leave it (SQLite counts on no close: a killed process is the same).
/// A store that wrote closes everything as usual, its write connection
/// last, so that the last connection to the file can checkpoint and delete
/// the WAL. Only one store is ever left so: a command that opens and drops
/// stores in a loop keeps at most one set of descriptors.
pub fn leave_reads_to_process_exit() {
    READS_LEFT_TO_EXIT.store(true, Ordering::Relaxed);
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        if self.conn.get().is_none() && READS_LEFT_TO_EXIT.swap(false, Ordering::Relaxed) {
            self.readers.abandon();
            self.probe.abandon();
        }
    }
}

/// Process-wide SQLite settings, made once before this process opens its
/// first connection (SQLite takes them only before it initialises).
///
/// No initial bulk allocation of page-cache lines: by default every
/// connection's cache starts with 20 lines allocated and written at once,
/// most of which a short command never fills; each new page of heap they
/// occupy is a page fault, about a hundred per CLI run. Lines are then
/// allocated one at a time as pages are read, as they are anyway after
/// the first 20.
fn configure_library() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: SQLITE_CONFIG_PAGECACHE takes (void*, int, int); a null
        // buffer with 0 lines asks for no bulk allocation. Called before
        // any connection opens; once SQLite is initialised (another
        // library in this process opened a connection first) it only
        // returns SQLITE_MISUSE and changes nothing, so the result is
        // ignored.
        unsafe {
            rusqlite::ffi::sqlite3_config(
                rusqlite::ffi::SQLITE_CONFIG_PAGECACHE,
                std::ptr::null_mut::<std::ffi::c_void>(),
                0 as std::ffi::c_int,
                0 as std::ffi::c_int,
            );
        }
    });
}

/// Settings every write connection needs, then the schema brought up to date.
fn configure(conn: &mut Connection, path: &Path) -> Result<()> {
    busy::wait_when_busy(conn)?;
    // WAL lets readers (status, ps, rehydrate) run while a writer commits;
    // FULL makes every acknowledged commit survive a power cut.
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(mode, "SQLite did not switch to WAL mode");
    }
    conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")?;
    migrate(conn, path)
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let latest = migrations::latest_version();
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current == latest {
        return Ok(());
    }
    if current > latest {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found: current,
            known: latest,
        });
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Another process may have migrated while we waited for the lock.
    let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (index, sql) in migrations::MIGRATIONS
        .iter()
        .enumerate()
        .skip(current as usize)
    {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
    }
    tx.commit()?;
    Ok(())
}

/// Reads one task inside a transaction, failing with `NotFound`, found by
/// [`find_by_id`]'s rule: the id as written, else its canonical spelling.
fn load_task(conn: &Connection, id: &str) -> Result<TaskRecord> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1"))?;
    find_by_id(id, |id| {
        stmt.query_row([id], task_from_row).optional()?.transpose()
    })
}

/// The stored id and status of the task `id` names (by [`load_task`]'s
/// rule), failing with `NotFound`: for callers that need no more than
/// these, without the whole row's correlated subqueries.
fn load_status(conn: &Connection, id: &str) -> Result<(String, Status)> {
    let mut stmt = conn.prepare_cached("SELECT id, status FROM tasks WHERE id = ?1")?;
    find_by_id(id, |id| {
        stmt.query_row([id], |row| Ok((row.get(0)?, row.get::<_, String>(1)?)))
            .optional()?
            .map(|(id, status)| Ok((id, parse_status(&status)?)))
            .transpose()
    })
}

/// The stored id `id` names: the task's own when it exists (so lookups follow
/// [`load_task`]'s rule), else its canonical `PREFIX-N` spelling.
fn resolve_id(conn: &Connection, id: &str) -> Result<String> {
    match load_status(conn, id) {
        Ok((id, _)) => Ok(id),
        Err(StoreError::NotFound(_)) => Ok(canonical_id(id)),
        Err(other) => Err(other),
    }
}

/// Reads task `id`, applies the change `decide` makes of it (reading more
/// on `tx` if it must), and reads the task again.
fn change_task(
    tx: &Connection,
    id: &str,
    decide: impl FnOnce(&Connection, &TaskRecord) -> Result<Change>,
) -> Result<TaskRecord> {
    let task = load_task(tx, id)?;
    let change = decide(tx, &task)?;
    apply(tx, &task, change)?;
    load_task(tx, id)
}

/// The stored id of an optional task reference (any spelling).
fn stored_id(tx: &Connection, id: Option<&str>) -> Result<Option<String>> {
    id.map(|id| load_status(tx, id).map(|(id, _)| id))
        .transpose()
}

/// Applies a [`Change`] decided for both backends on the caller's
/// transaction: checks the state machine, sets the status and the columns,
/// appends the event, and re-decides the tasks waiting on this one.
fn apply(tx: &Connection, task: &TaskRecord, change: Change) -> Result<()> {
    let (before, after) = change.check(task)?;
    let mut sql = String::from("UPDATE tasks SET status = ?1, updated_at = ?2");
    let mut values: Vec<rusqlite::types::Value> =
        vec![change.to.as_str().to_owned().into(), now_millis().into()];
    for (column, value) in &change.columns {
        values.push(sql_value(value));
        sql.push_str(&format!(", {column} = ?{}", values.len()));
    }
    values.push(task.id.clone().into());
    sql.push_str(&format!(" WHERE id = ?{}", values.len()));
    // Cached by its text: the columns a change writes come in few shapes,
    // and a queue runs the same ones for every task.
    tx.prepare_cached(&sql)?
        .execute(rusqlite::params_from_iter(values))?;
    insert_event(tx, Some(&task.id), &change.event, Some(before), Some(after))?;
    if change.moves_dependents(task) {
        tracked::refresh_dependents(tx, &task.id, &change.event.actor)?;
    }
    if change.to != task.status {
        gates::target_ended(tx, &task.id, change.to, &change.event.actor)?;
    }
    Ok(())
}

/// A decided column value as SQLite stores it (a flag is 0 or 1).
fn sql_value(value: &Column) -> rusqlite::types::Value {
    match value {
        Column::Int(v) => opt(*v),
        Column::Text(v) => opt(v.clone()),
        Column::Bool(v) => i64::from(*v).into(),
    }
}

fn opt<T: Into<rusqlite::types::Value>>(value: Option<T>) -> rusqlite::types::Value {
    value.map_or(rusqlite::types::Value::Null, Into::into)
}

/// The id of a new task: `PREFIX-N` with the next number of the shared counter.
fn next_task_id(tx: &Connection, tool: Option<&str>) -> Result<String> {
    let number = next_counter(tx, "task_id")?;
    Ok(HumanId::for_tool(tool, number)?.to_string())
}

/// The whole rows of the tasks whose ids `id_sql` selects with `params`,
/// in its order. Whole rows carry correlated subqueries that cost more to
/// prepare than a CLI call spends on anything else, so a list that is often
/// empty asks for its ids first and prepares the whole-row statement only
/// when there are rows to read.
fn tasks_by_id_query(
    conn: &Connection,
    id_sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<TaskRecord>> {
    let ids: Vec<String> = conn
        .prepare_cached(id_sql)?
        .query_map(params, |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    tasks_with_ids(conn, &ids)
}

/// The whole rows of the tasks with these ids, in their order; unknown ids
/// are left out. The ids go in as one JSON array: one cached statement
/// whatever their number, and no parameter limit.
fn tasks_with_ids(conn: &Connection, ids: &[String]) -> Result<Vec<TaskRecord>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list = serde_json::to_string(ids).map_err(|e| crate::encoding::malformed("ids", e))?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {TASK_COLUMNS} FROM tasks WHERE id IN (SELECT value FROM json_each(?1))"
    ))?;
    let mut by_id: std::collections::HashMap<String, TaskRecord> = stmt
        .query_map([list], task_from_row)?
        .map(|row| row?.map(|task| (task.id.clone(), task)))
        .collect::<Result<_>>()?;
    Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
}

fn next_counter(tx: &Connection, name: &str) -> Result<u64> {
    let value: i64 = tx.query_row(
        "INSERT INTO counters (name, value) VALUES (?1, 1)
         ON CONFLICT(name) DO UPDATE SET value = value + 1
         RETURNING value",
        [name],
        |r| r.get(0),
    )?;
    Ok(value as u64)
}

impl Store for SqliteStore {
    crate::wiring::shared_store_methods!();

    fn append_event(&self, task_id: Option<&str>, event: &NewEvent) -> Result<Event> {
        self.write(|tx| events::append(tx, task_id, event))
    }

    fn tasks_by_ids(&self, ids: &[String]) -> Result<Vec<TaskRecord>> {
        self.read(|conn| tasks_with_ids(conn, ids))
    }

    fn last_event_seq(&self) -> Result<i64> {
        self.read(events::last_seq)
    }

    fn status_counts(&self) -> Result<Vec<(Status, u64)>> {
        self.read(|conn| {
            // Kept by triggers (migration 15); statuses no task has are left out.
            let mut stmt =
                conn.prepare_cached("SELECT status, n FROM task_status_counts WHERE n > 0")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            rows.map(|row| {
                let (status, count) = row?;
                Ok((parse_status(&status)?, count as u64))
            })
            .collect()
        })
    }

    fn meta(&self, key: &str) -> Result<Option<String>> {
        self.read(|conn| {
            Ok(conn
                .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()?)
        })
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [key, value],
            )?;
            Ok(())
        })
    }

    fn record_samples(&self, samples: &[Sample]) -> Result<()> {
        self.write(|tx| {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO samples (task_id, at, cpu_percent, rss_kb, processes)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(task_id) DO UPDATE SET at = excluded.at,
                   cpu_percent = excluded.cpu_percent, rss_kb = excluded.rss_kb,
                   processes = excluded.processes",
            )?;
            for s in samples {
                stmt.execute(params![
                    s.task_id,
                    s.at,
                    s.cpu_percent,
                    s.rss_kb as i64,
                    s.processes
                ])?;
            }
            Ok(())
        })
    }

    fn samples(&self) -> Result<Vec<Sample>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT task_id, at, cpu_percent, rss_kb, processes FROM samples",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(Sample {
                    task_id: r.get(0)?,
                    at: r.get(1)?,
                    cpu_percent: r.get(2)?,
                    rss_kb: r.get::<_, i64>(3)? as u64,
                    processes: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn archive_events(&self, before: i64) -> Result<ArchiveReport> {
        // One chunk per transaction keeps other writers waiting only briefly.
        archive::in_chunks(|| self.write(|tx| history::archive_one_chunk(tx, before)))
    }

    fn export(&self, sink: &mut dyn FnMut(crate::ExportRecord) -> Result<()>) -> Result<()> {
        self.read(|conn| transfer::export(conn, sink))
    }

    fn begin_import(&self) -> Result<Box<dyn Importer + '_>> {
        Ok(Box::new(transfer::begin_import(self.lock()?, &self.path)?))
    }

    fn repair(&self, actor: &str) -> Result<RepairReport> {
        self.write(|tx| transfer::repair(tx, actor))
    }

    fn backup(&self, path: &Path) -> Result<()> {
        self.read(|conn| transfer::backup(conn, path))
    }

    fn work_waiter(&self) -> Result<Box<dyn WorkWaiter>> {
        Ok(Box::new(claim::SqliteWaiter::open(&self.path)?))
    }

    fn queue_items(&self, filter: &crate::QueueItemFilter) -> Result<Vec<QueueItem>> {
        self.read(|conn| queue::list(conn, filter))
    }

    fn event_waiter(&self) -> Result<Box<dyn WorkWaiter>> {
        Ok(Box::new(claim::SqliteWaiter::open(&self.path)?))
    }

    fn commit_version(&self) -> Result<Option<u64>> {
        self.probe.version().map(Some)
    }

    fn make_durable(&self) -> Result<()> {
        // Commits are appended to the write-ahead log in order, so syncing
        // it makes every one of them durable; what a checkpoint moved into
        // the database file was synced by the checkpoint. No log means no
        // connection is open and the last one to close checkpointed it all.
        let wal = wal_path(&self.path);
        match std::fs::File::open(&wal) {
            Ok(file) => file
                .sync_data()
                .map_err(|source| StoreError::Sync { path: wal, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::Sync { path: wal, source }),
        }
    }

    fn kind_counts(&self) -> Result<Vec<(taskdaemon_core::TaskKind, u64)>> {
        self.read(queue::kind_counts)
    }

    fn event_tallies(&self) -> Result<crate::EventTallies> {
        self.read(|conn| {
            let (claims, retries) = conn.query_row(crate::EVENT_TALLIES_SQL, [], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })?;
            Ok(crate::EventTallies {
                claims: u64::try_from(claims).unwrap_or(0),
                retries: u64::try_from(retries).unwrap_or(0),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The write connection's `PRAGMA synchronous`: 1 NORMAL, 2 FULL.
    fn synchronous(store: &SqliteStore) -> i64 {
        store
            .lock_connection()
            .unwrap()
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn only_deferred_commits_skip_the_sync_and_they_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = SqliteStore::open(&path).unwrap();
        store.set_meta("before", "1").unwrap();
        assert_eq!(synchronous(&store), 2);
        crate::deferred(|| {
            store.set_meta("deferred", "2").unwrap();
            assert_eq!(synchronous(&store), 1, "a deferred commit does not sync");
        });
        assert_eq!(store.meta("deferred").unwrap().as_deref(), Some("2"));
        store.set_meta("after", "3").unwrap();
        assert_eq!(synchronous(&store), 2, "later commits sync again");
        crate::deferred(|| store.set_meta("last", "4").unwrap());
        // Other users of the connection (an import) commit durably too.
        drop(store.lock().unwrap());
        assert_eq!(synchronous(&store), 2);
        store.make_durable().unwrap();
        drop(store);
        let reopened = SqliteStore::open(&path).unwrap();
        for (key, value) in [
            ("before", "1"),
            ("deferred", "2"),
            ("after", "3"),
            ("last", "4"),
        ] {
            assert_eq!(reopened.meta(key).unwrap().as_deref(), Some(value), "{key}");
        }
    }
}
