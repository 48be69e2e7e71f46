//! The SQLite store: `.taskdaemon/state.db` in WAL mode.
//!
//! Writers use `BEGIN IMMEDIATE` so that concurrent processes (CLI, daemon,
//! shims) queue on SQLite's lock with a generous busy timeout instead of failing
//! with "database is locked" half-way through a transaction.

mod claim;
mod events;
mod history;
mod loops;
mod memory;
mod migrations;
mod processes;
mod queue;
mod rows;
mod search;
mod tracked;
mod transfer;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{
    Connection, ErrorCode, OptionalExtension, Transaction, TransactionBehavior, params,
};
use taskdaemon_core::process::ExitOutcome;
use taskdaemon_core::time::now_millis;
use taskdaemon_core::tracked::{SearchHit, Session};
use taskdaemon_core::{
    Event, EventKind, LoopEnd, LoopIteration, LoopRecord, Memory, NewAgent, NewEvent, NewLoop,
    NewMemory, NewProcess, NewTracked, QueueCounts, QueueItem, Status, TaskRecord, TrackedAction,
    TrackedEdit,
};

use crate::changes::{Change, Column};
use crate::claim::{
    Claim, ClaimCompleted, HeldLease, Lease, Released, WorkWaiter, WorkerInfo, WorkerRecord,
};
use crate::encoding::{canonical_id, parse_status};
use crate::{
    ArchiveReport, ExitRecorded, HistoryFilter, Importer, IntegrityReport, MemoryFilter,
    ProcessFilter, RepairReport, Result, Sample, Started, Store, StoreError, TrackedFilter,
};
use events::insert_event;
use memory::touch_session;
use rows::{TASK_COLUMNS, task_from_row};

/// How long a writer waits for another writer before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path).map_err(|e| classify_open_error(path, e))?;
        let store = Self {
            path: path.to_owned(),
            conn: Mutex::new(conn),
        };
        store.configure().map_err(|e| match e {
            StoreError::Sqlite(source) => classify_open_error(path, source),
            other => other,
        })?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn configure(&self) -> Result<()> {
        let mut conn = self.lock();
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL lets readers (status, ps, rehydrate) run while a writer commits;
        // FULL makes every acknowledged commit survive a power cut.
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(mode, "SQLite did not switch to WAL mode");
        }
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")?;
        migrate(&mut conn, &self.path)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable: SQLite
        // rolls back the unfinished transaction when it is dropped.
        self.conn
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.lock();
        f(&conn)
    }
}

fn classify_open_error(path: &Path, error: rusqlite::Error) -> StoreError {
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

/// Reads one task inside a transaction, failing with `NotFound`.
/// The id as written wins (queue tasks are named by their file, e.g.
/// `task-1`); otherwise the canonical human id (`claude-3` is `CLAUDE-3`).
fn load_task(conn: &Connection, id: &str) -> Result<TaskRecord> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1"))?;
    if let Some(task) = stmt.query_row([id], task_from_row).optional()? {
        return task;
    }
    let canonical = canonical_id(id);
    if canonical == id {
        return Err(StoreError::NotFound(id.to_owned()));
    }
    stmt.query_row([&canonical], task_from_row)
        .optional()?
        .unwrap_or_else(|| Err(StoreError::NotFound(id.to_owned())))
}

/// The stored id `id` names: the task's own when it exists (so lookups follow
/// [`load_task`]'s rule), else its canonical `PREFIX-N` spelling.
fn resolve_id(conn: &Connection, id: &str) -> Result<String> {
    match load_task(conn, id) {
        Ok(task) => Ok(task.id),
        Err(StoreError::NotFound(_)) => Ok(canonical_id(id)),
        Err(other) => Err(other),
    }
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
    tx.execute(&sql, rusqlite::params_from_iter(values))?;
    insert_event(tx, Some(&task.id), &change.event, Some(before), Some(after))?;
    if change.moves_dependents(task) {
        tracked::refresh_dependents(tx, &task.id, &change.event.actor)?;
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
    fn create_process(&self, spec: &NewProcess, actor: &str) -> Result<TaskRecord> {
        self.write(|tx| processes::create(tx, spec, actor))
    }

    fn task(&self, id: &str) -> Result<TaskRecord> {
        self.read(|conn| load_task(conn, id))
    }

    fn processes(&self, filter: &ProcessFilter) -> Result<Vec<TaskRecord>> {
        self.read(|conn| processes::list(conn, filter))
    }

    fn mark_started(
        &self,
        id: &str,
        restarts: u32,
        started: &Started,
        actor: &str,
    ) -> Result<TaskRecord> {
        self.write(|tx| processes::start(tx, id, restarts, started, actor))
    }

    fn record_start_failure(&self, id: &str, error: &str, actor: &str) -> Result<TaskRecord> {
        let (status, kind) = (Status::Failed, EventKind::StartFailed);
        self.write(|tx| processes::end_with_error(tx, id, status, kind, error, actor))
    }

    fn record_exit(
        &self,
        id: &str,
        pid: i32,
        outcome: ExitOutcome,
        actor: &str,
    ) -> Result<ExitRecorded> {
        self.write(|tx| processes::record_exit(tx, id, pid, outcome, actor))
    }

    fn request_stop(&self, id: &str, actor: &str) -> Result<TaskRecord> {
        self.write(|tx| processes::request_stop(tx, id, actor))
    }

    fn reopen_for_restart(&self, id: &str, actor: &str) -> Result<TaskRecord> {
        self.write(|tx| processes::reopen(tx, id, actor))
    }

    fn mark_lost(&self, id: &str, reason: &str, actor: &str) -> Result<TaskRecord> {
        let (status, kind) = (Status::Lost, EventKind::Lost);
        self.write(|tx| processes::end_with_error(tx, id, status, kind, reason, actor))
    }

    fn append_event(&self, task_id: Option<&str>, event: &NewEvent) -> Result<Event> {
        self.write(|tx| events::append(tx, task_id, event))
    }

    fn events_after(
        &self,
        after_seq: i64,
        kinds: &[EventKind],
        limit: usize,
    ) -> Result<Vec<Event>> {
        self.read(|conn| events::after(conn, after_seq, kinds, limit))
    }

    fn newest_events_after(
        &self,
        after_seq: i64,
        kinds: &[EventKind],
        limit: usize,
    ) -> Result<Vec<Event>> {
        self.read(|conn| events::newest_after(conn, after_seq, kinds, limit))
    }

    fn tasks_by_ids(&self, ids: &[String]) -> Result<Vec<TaskRecord>> {
        self.read(|conn| {
            let mut tasks = Vec::with_capacity(ids.len());
            // Bounded batches keep each statement under SQLite's parameter limit.
            for batch in ids.chunks(500) {
                let marks = vec!["?"; batch.len()].join(", ");
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {TASK_COLUMNS} FROM tasks WHERE id IN ({marks})"
                ))?;
                for row in stmt.query_map(rusqlite::params_from_iter(batch), task_from_row)? {
                    tasks.push(row??);
                }
            }
            Ok(tasks)
        })
    }

    fn last_event_seq(&self) -> Result<i64> {
        self.read(events::last_seq)
    }

    fn status_counts(&self) -> Result<Vec<(Status, u64)>> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT status, COUNT(*) FROM tasks GROUP BY status")?;
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

    fn create_tracked(&self, new: &NewTracked, actor: &str) -> Result<TaskRecord> {
        self.write(|tx| tracked::create(tx, new, actor))
    }

    fn add_dependency(&self, task: &str, depends_on: &str, actor: &str) -> Result<TaskRecord> {
        self.write(|tx| tracked::add_dependency(tx, task, depends_on, actor))
    }

    fn remove_dependency(&self, task: &str, depends_on: &str, actor: &str) -> Result<TaskRecord> {
        self.write(|tx| tracked::remove_dependency(tx, task, depends_on, actor))
    }

    fn act_on_tracked(&self, id: &str, action: &TrackedAction, actor: &str) -> Result<TaskRecord> {
        self.write(|tx| tracked::act(tx, id, action, actor))
    }

    fn edit_tracked(&self, id: &str, edit: &TrackedEdit, actor: &str) -> Result<TaskRecord> {
        self.write(|tx| tracked::edit(tx, id, edit, actor))
    }

    fn add_task_files(&self, id: &str, files: &[String], actor: &str) -> Result<TaskRecord> {
        self.write(|tx| tracked::add_files(tx, id, files, actor))
    }

    fn tracked(&self, filter: &TrackedFilter) -> Result<Vec<TaskRecord>> {
        self.read(|conn| tracked::list(conn, filter))
    }

    fn ready(&self, limit: usize) -> Result<Vec<TaskRecord>> {
        self.read(|conn| tracked::ready(conn, limit))
    }

    fn current_candidates(&self, session: Option<&str>) -> Result<Vec<TaskRecord>> {
        self.read(|conn| tracked::current_candidates(conn, session))
    }

    fn recently_succeeded(&self, limit: usize) -> Result<Vec<TaskRecord>> {
        self.read(|conn| tracked::recently_succeeded(conn, limit))
    }

    fn remember(&self, new: &NewMemory, actor: &str) -> Result<Memory> {
        self.write(|tx| memory::remember(tx, new, actor))
    }

    fn memories(&self, filter: &MemoryFilter) -> Result<Vec<Memory>> {
        self.read(|conn| memory::memories(conn, filter))
    }

    fn memory_by_key(&self, key: &str) -> Result<Option<Memory>> {
        self.read(|conn| memory::by_key(conn, key))
    }

    fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>> {
        self.read(|conn| search::search(conn, query, limit))
    }

    fn touch_session(&self, session: &str, tool: Option<&str>) -> Result<()> {
        self.write(|tx| touch_session(tx, session, tool, now_millis()))
    }

    fn end_session(&self, session: &str, actor: &str) -> Result<Session> {
        self.write(|tx| memory::end_session(tx, session, actor))
    }

    fn session(&self, session: &str) -> Result<Option<Session>> {
        self.read(|conn| memory::load_session(conn, session))
    }

    fn latest_session(&self) -> Result<Option<Session>> {
        self.read(memory::latest_session)
    }

    fn create_loop(&self, new: &NewLoop, actor: &str) -> Result<LoopRecord> {
        self.write(|tx| loops::create(tx, new, actor))
    }

    fn loop_record(&self, id: &str) -> Result<LoopRecord> {
        self.read(|conn| loops::load(conn, id))
    }

    fn loops(&self, all: bool) -> Result<Vec<LoopRecord>> {
        self.read(|conn| loops::list(conn, all))
    }

    fn mark_loop_running(&self, id: &str, next_iteration: u32, actor: &str) -> Result<LoopRecord> {
        self.write(|tx| loops::mark_running(tx, id, next_iteration, actor))
    }

    fn record_loop_iteration(
        &self,
        id: &str,
        iteration: &LoopIteration,
        actor: &str,
    ) -> Result<bool> {
        self.write(|tx| loops::record_iteration(tx, id, iteration, actor))
    }

    fn finish_loop(&self, id: &str, end: &LoopEnd, actor: &str) -> Result<LoopRecord> {
        self.write(|tx| loops::finish(tx, id, end, actor))
    }

    fn history_page(
        &self,
        filter: &HistoryFilter,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<Event>> {
        self.read(|conn| {
            let mut filter = filter.clone();
            if let Some(task) = &filter.task_id {
                filter.task_id = Some(resolve_id(conn, task)?);
            }
            history::page(conn, &filter, after_seq, limit)
        })
    }

    fn archive_events(&self, before: i64) -> Result<ArchiveReport> {
        let mut report = ArchiveReport::default();
        // One chunk per transaction keeps other writers waiting only briefly.
        loop {
            let moved = self.write(|tx| history::archive_one_chunk(tx, before))?;
            if moved == 0 {
                return Ok(report);
            }
            report.events += moved as u64;
            report.chunks += 1;
        }
    }

    fn export(&self, sink: &mut dyn FnMut(crate::ExportRecord) -> Result<()>) -> Result<()> {
        self.read(|conn| transfer::export(conn, sink))
    }

    fn begin_import(&self) -> Result<Box<dyn Importer + '_>> {
        Ok(Box::new(transfer::SqliteImporter::begin(
            self.lock(),
            &self.path,
        )?))
    }

    fn check_integrity(&self) -> Result<IntegrityReport> {
        self.read(transfer::check)
    }

    fn repair(&self, actor: &str) -> Result<RepairReport> {
        self.write(|tx| transfer::repair(tx, actor))
    }

    fn backup(&self, path: &Path) -> Result<()> {
        self.read(|conn| transfer::backup(conn, path))
    }

    fn create_agent(&self, spec: &NewAgent, actor: &str) -> Result<TaskRecord> {
        self.write(|tx| queue::create_agent(tx, spec, false, actor))
    }

    fn queue_item(&self, task_id: &str) -> Result<QueueItem> {
        self.read(|conn| queue::item(conn, task_id))
    }

    fn open_queue_items(&self, queue: &str) -> Result<Vec<QueueItem>> {
        self.read(|conn| queue::open_items(conn, queue))
    }

    fn finish_queue_item(
        &self,
        task_id: &str,
        result: &serde_json::Value,
        _actor: &str,
    ) -> Result<QueueItem> {
        self.write(|tx| queue::finish(tx, task_id, result))
    }

    fn queue_counts(&self) -> Result<Vec<QueueCounts>> {
        self.read(queue::counts)
    }

    fn submit(&self, spec: &NewAgent, actor: &str) -> Result<TaskRecord> {
        self.write(|tx| queue::create_agent(tx, spec, true, actor))
    }

    fn register_worker(&self, worker: &WorkerInfo) -> Result<()> {
        self.write(|tx| claim::register(tx, worker))
    }

    fn heartbeat(&self, worker: &str, tasks: &[String], lease: Duration) -> Result<Vec<HeldLease>> {
        self.write(|tx| claim::heartbeat(tx, worker, tasks, lease))
    }

    fn stop_worker(&self, worker: &str) -> Result<()> {
        self.write(|tx| claim::stop(tx, worker))
    }

    fn workers(&self) -> Result<Vec<WorkerRecord>> {
        self.read(claim::workers)
    }

    fn claim(&self, worker: &str, queues: &[String], lease: Duration) -> Result<Option<Claim>> {
        self.write(|tx| claim::claim(tx, worker, queues, lease))
    }

    fn complete_claim(
        &self,
        lease: &Lease,
        outcome: ExitOutcome,
        result: &serde_json::Value,
    ) -> Result<ClaimCompleted> {
        self.write(|tx| claim::complete(tx, lease, outcome, result))
    }

    fn release_expired(&self, actor: &str) -> Result<Vec<Released>> {
        self.write(|tx| claim::release_expired(tx, actor))
    }

    fn work_waiter(&self) -> Result<Box<dyn WorkWaiter>> {
        Ok(Box::new(claim::SqliteWaiter::open(&self.path)?))
    }
}
