//! The SQLite store: `.taskdaemon/state.db` in WAL mode.
//!
//! Writers use `BEGIN IMMEDIATE` so that concurrent processes (CLI, daemon,
//! shims) queue on SQLite's lock with a generous busy timeout instead of failing
//! with "database is locked" half-way through a transaction.

mod claim;
mod history;
mod loops;
mod memory;
mod migrations;
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
use serde_json::json;
use taskdaemon_core::process::{ExitDecision, ExitOutcome, decide_after_exit};
use taskdaemon_core::time::now_millis;
use taskdaemon_core::{
    Event, EventKind, HumanId, NewAgent, NewEvent, NewProcess, QueueCounts, QueueItem, Status,
    TaskKind, TaskRecord, task::shell_join,
};
use uuid::Uuid;

use crate::claim::{
    Claim, ClaimCompleted, HeldLease, Lease, Released, WorkWaiter, WorkerInfo, WorkerRecord,
};
use crate::{
    ArchiveReport, ExitRecorded, HistoryFilter, Importer, IntegrityReport, MemoryFilter,
    ProcessFilter, RepairReport, Result, Sample, Started, Store, StoreError, TrackedFilter,
};
use memory::touch_session;
use rows::{
    EVENT_COLUMNS, QUEUE_ITEM_COLUMNS, TASK_COLUMNS, event_from_row, queue_item_from_row,
    task_from_row,
};
use taskdaemon_core::tracked::{SearchHit, Session};
use taskdaemon_core::{
    LoopEnd, LoopIteration, LoopRecord, Memory, NewLoop, NewMemory, NewTracked, TrackedAction,
    TrackedEdit,
};

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

    /// Ends a task without an exit status (it never started, or vanished),
    /// keeping `error` as the reason.
    fn end_with_error(
        &self,
        id: &str,
        status: Status,
        kind: EventKind,
        error: &str,
        actor: &str,
    ) -> Result<TaskRecord> {
        self.write(|tx| {
            let task = load_task(tx, id)?;
            transition(
                tx,
                &task,
                status,
                &[
                    ("error", error.to_owned().into()),
                    ("finished_at", now_millis().into()),
                ],
                NewEvent::new(kind, actor, error),
            )?;
            load_task(tx, id)
        })
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

/// Reads one queue item, failing with `NotFound`.
fn load_queue_item(conn: &Connection, task_id: &str) -> Result<QueueItem> {
    conn.prepare_cached(&format!(
        "SELECT {QUEUE_ITEM_COLUMNS} FROM queue_items WHERE task_id = ?1"
    ))?
    .query_row([task_id], queue_item_from_row)
    .optional()?
    .unwrap_or_else(|| Err(StoreError::NotFound(task_id.to_owned())))
}

/// The first free id for an agent task: `wanted`, else `wanted~2`, `~3`, ...
/// Human ids are stored upper-case and queue ids as written, so `task-1`
/// and `TASK-1` are two tasks; an exact lookup finds each.
fn free_agent_id(conn: &Connection, wanted: &str) -> Result<String> {
    let taken = |id: &str| -> Result<bool> {
        Ok(conn
            .prepare_cached("SELECT 1 FROM tasks WHERE id = ?1")?
            .query_row([id], |_| Ok(()))
            .optional()?
            .is_some())
    };
    if !taken(wanted)? {
        return Ok(wanted.to_owned());
    }
    for n in 2u32.. {
        let id = format!("{wanted}~{n}");
        if !taken(&id)? {
            return Ok(id);
        }
    }
    unreachable!("u32 suffixes cannot all be taken")
}

/// Ids are stored upper-case; `claude-3` finds `CLAUDE-3`.
/// The stored id `id` names: the task's own when it exists (so lookups follow
/// [`load_task`]'s rule), else its canonical `PREFIX-N` spelling.
fn resolve_id(conn: &Connection, id: &str) -> Result<String> {
    match load_task(conn, id) {
        Ok(task) => Ok(task.id),
        Err(StoreError::NotFound(_)) => Ok(canonical_id(id)),
        Err(other) => Err(other),
    }
}

fn canonical_id(id: &str) -> String {
    id.parse::<HumanId>()
        .map(|h| h.to_string())
        .unwrap_or_else(|_| id.to_owned())
}

fn insert_event(
    tx: &Connection,
    task_id: Option<&str>,
    event: &NewEvent,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> Result<Event> {
    let at = now_millis();
    let before_text = before.as_ref().map(serde_json::Value::to_string);
    let after_text = after.as_ref().map(serde_json::Value::to_string);
    tx.execute(
        "INSERT INTO events (at, task_id, actor, kind, message, before, after)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            at,
            task_id,
            event.actor,
            event.kind.as_str(),
            event.message,
            before_text,
            after_text
        ],
    )?;
    Ok(Event {
        seq: tx.last_insert_rowid(),
        at,
        task_id: task_id.map(str::to_owned),
        actor: event.actor.clone(),
        kind: event.kind,
        message: event.message.clone(),
        before,
        after,
    })
}

/// Changes a task's status after checking the state machine, sets the extra
/// columns given, and appends the event, all on the caller's transaction.
fn transition(
    tx: &Connection,
    task: &TaskRecord,
    to: Status,
    extra: &[(&str, rusqlite::types::Value)],
    event: NewEvent,
) -> Result<()> {
    task.status.check_transition(to, &task.id)?;
    let now = now_millis();
    let mut sql = String::from("UPDATE tasks SET status = ?1, updated_at = ?2");
    let mut values: Vec<rusqlite::types::Value> = vec![to.as_str().to_owned().into(), now.into()];
    let mut after = serde_json::Map::new();
    after.insert("status".to_owned(), json!(to.as_str()));
    for (column, value) in extra {
        values.push(value.clone());
        sql.push_str(&format!(", {column} = ?{}", values.len()));
        after.insert((*column).to_owned(), value_to_json(value));
    }
    values.push(task.id.clone().into());
    sql.push_str(&format!(" WHERE id = ?{}", values.len()));
    tx.execute(&sql, rusqlite::params_from_iter(values))?;
    insert_event(
        tx,
        Some(&task.id),
        &event,
        Some(json!({ "status": task.status.as_str() })),
        Some(serde_json::Value::Object(after)),
    )?;
    // Success is what dependents wait for: gaining or losing it re-decides them.
    if task.status == Status::Succeeded || to == Status::Succeeded {
        tracked::refresh_dependents(tx, &task.id, &event.actor)?;
    }
    Ok(())
}

/// ` AND kind IN (...)` for a non-empty list of kinds. The names are our own
/// constants, never user input.
fn kind_filter(kinds: &[EventKind]) -> String {
    if kinds.is_empty() {
        return String::new();
    }
    let names: Vec<String> = kinds.iter().map(|k| format!("'{}'", k.as_str())).collect();
    format!(" AND kind IN ({})", names.join(", "))
}

/// Applies a [`changes::Change`] decided for both backends.
fn apply(tx: &Connection, task: &TaskRecord, change: crate::changes::Change) -> Result<()> {
    let columns: Vec<(&str, rusqlite::types::Value)> = change
        .columns
        .into_iter()
        .map(|(column, value)| {
            let value = match value {
                crate::changes::Column::Int(v) => opt(v),
                crate::changes::Column::Text(v) => opt(v),
            };
            (column, value)
        })
        .collect();
    transition(tx, task, change.to, &columns, change.event)
}

fn value_to_json(value: &rusqlite::types::Value) -> serde_json::Value {
    use rusqlite::types::Value;
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Integer(i) => json!(i),
        Value::Real(f) => json!(f),
        Value::Text(t) => json!(t),
        Value::Blob(b) => json!(format!("<{} bytes>", b.len())),
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

fn to_json_text<T: serde::Serialize>(value: &T) -> String {
    // Serialising plain data structures (strings, numbers, vectors) cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

/// Applies an exit decision to a running task (shared by process exits and
/// claimed attempts).
fn apply_exit(
    tx: &Connection,
    task: &TaskRecord,
    outcome: ExitOutcome,
    decision: ExitDecision,
    actor: &str,
) -> Result<()> {
    let mut columns = vec![
        ("exit_code", opt(outcome.code)),
        ("signal", opt(outcome.signal)),
        ("finished_at", now_millis().into()),
    ];
    match decision {
        ExitDecision::Restart { restart, delay } => {
            columns.push(("restarts", i64::from(restart).into()));
            let message = format!(
                "{outcome}; restart {restart}/{} in {}",
                task.restart.max_restarts,
                taskdaemon_core::duration::format_duration(delay)
            );
            transition(
                tx,
                task,
                Status::Pending,
                &columns,
                NewEvent::new(EventKind::Restarting, actor, message),
            )
        }
        ExitDecision::Finish(status) => transition(
            tx,
            task,
            status,
            &columns,
            NewEvent::new(EventKind::Exited, actor, format!("{status}, {outcome}")),
        ),
    }
}

fn check_agent_spec(spec: &NewAgent) -> Result<()> {
    if spec.wanted_id.is_empty() || spec.queue.is_empty() {
        return Err(StoreError::Conflict(
            "an agent task needs an id and a queue".to_owned(),
        ));
    }
    Ok(())
}

/// Inserts an agent task and its queue item (shared by folder queues and
/// submitted work).
fn insert_agent(tx: &Connection, spec: &NewAgent, claimable: bool, actor: &str) -> Result<String> {
    let id = free_agent_id(tx, &spec.wanted_id)?;
    let now = now_millis();
    tx.execute(
        "INSERT INTO tasks (uuid, id, kind, name, status, argv, cwd, env, restart,
                            created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
        params![
            Uuid::now_v7().to_string(),
            id,
            TaskKind::Agent.as_str(),
            spec.document,
            Status::Pending.as_str(),
            to_json_text(&spec.argv),
            spec.cwd,
            to_json_text(&spec.env),
            to_json_text(&spec.restart),
            now,
        ],
    )?;
    tx.execute(
        "INSERT INTO queue_items (task_id, queue, document, executor, max_attempts,
                                  timeout_ms, created_at, claimable)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            id,
            spec.queue,
            spec.document,
            spec.executor,
            spec.max_attempts,
            spec.timeout_ms.map(|v| v as i64),
            now,
            claimable,
        ],
    )?;
    insert_event(
        tx,
        Some(&id),
        &NewEvent::new(
            EventKind::Created,
            actor,
            format!(
                "queue {}: {} ({})",
                spec.queue, spec.document, spec.executor
            ),
        ),
        None,
        Some(json!({ "status": Status::Pending.as_str(), "queue": spec.queue })),
    )?;
    Ok(id)
}

impl Store for SqliteStore {
    fn create_process(&self, spec: &NewProcess, actor: &str) -> Result<TaskRecord> {
        if spec.argv.is_empty() {
            return Err(StoreError::Conflict("a process needs a command".to_owned()));
        }
        self.write(|tx| {
            let number = next_counter(tx, "task_id")?;
            let id = HumanId::for_tool(spec.tool.as_deref(), number)?.to_string();
            let now = now_millis();
            tx.execute(
                "INSERT INTO tasks (uuid, id, kind, name, tool, session, status, argv, cwd, env,
                                    restart, hang_timeout_ms, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)",
                params![
                    Uuid::now_v7().to_string(),
                    id,
                    TaskKind::Process.as_str(),
                    spec.name,
                    spec.tool,
                    spec.session,
                    Status::Pending.as_str(),
                    to_json_text(&spec.argv),
                    spec.cwd,
                    to_json_text(&spec.env),
                    to_json_text(&spec.restart),
                    spec.hang_timeout_ms.map(|v| v as i64),
                    now,
                ],
            )?;
            if let Some(session) = &spec.session {
                touch_session(tx, session, spec.tool.as_deref(), now)?;
            }
            insert_event(
                tx,
                Some(&id),
                &NewEvent::new(EventKind::Created, actor, shell_join(&spec.argv)),
                None,
                Some(json!({ "status": Status::Pending.as_str() })),
            )?;
            load_task(tx, &id)
        })
    }

    fn task(&self, id: &str) -> Result<TaskRecord> {
        self.read(|conn| load_task(conn, id))
    }

    fn processes(&self, filter: &ProcessFilter) -> Result<Vec<TaskRecord>> {
        self.read(|conn| {
            // Live tasks are few: find them through the status index. Listing
            // all (newest first, often with a limit) is a rowid walk; `+kind`
            // keeps SQLite from sorting the whole table through an index.
            let mut sql = if filter.all {
                format!(
                    "SELECT rowid AS row_order, {TASK_COLUMNS} FROM tasks WHERE +kind = 'process'"
                )
            } else {
                format!(
                    "SELECT rowid AS row_order, {TASK_COLUMNS} FROM tasks WHERE kind = 'process' \
                     AND status IN ('pending', 'blocked', 'running')"
                )
            };
            if filter.tool.is_some() {
                sql.push_str(" AND tool = ?1");
            }
            let limit = filter.limit.map_or(-1, |l| l as i64);
            // The newest `limit` rows, shown oldest first.
            let sql = format!(
                "SELECT * FROM ({sql} ORDER BY rowid DESC LIMIT {limit}) ORDER BY row_order"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = match &filter.tool {
                Some(tool) => stmt.query_map([tool], task_from_row)?,
                None => stmt.query_map([], task_from_row)?,
            };
            rows.map(|row| row?).collect()
        })
    }

    fn mark_started(
        &self,
        id: &str,
        restarts: u32,
        started: &Started,
        actor: &str,
    ) -> Result<TaskRecord> {
        self.write(|tx| {
            let task = load_task(tx, id)?;
            if task.restarts != restarts {
                return Err(StoreError::Conflict(format!(
                    "{} was restarted by someone else (restart {} instead of {restarts})",
                    task.id, task.restarts
                )));
            }
            let message = format!("pid {} (shim {})", started.process.pid, started.shim.pid);
            transition(
                tx,
                &task,
                Status::Running,
                &[
                    ("pid", started.process.pid.into()),
                    ("pgid", started.pgid.into()),
                    ("start_time", (started.process.start_time as i64).into()),
                    ("boot_id", started.process.boot_id.clone().into()),
                    ("shim_pid", started.shim.pid.into()),
                    ("shim_start_time", (started.shim.start_time as i64).into()),
                    ("started_at", now_millis().into()),
                    ("finished_at", rusqlite::types::Value::Null),
                    ("exit_code", rusqlite::types::Value::Null),
                    ("signal", rusqlite::types::Value::Null),
                    ("error", rusqlite::types::Value::Null),
                ],
                NewEvent::new(EventKind::Started, actor, message),
            )?;
            load_task(tx, id)
        })
    }

    fn record_start_failure(&self, id: &str, error: &str, actor: &str) -> Result<TaskRecord> {
        self.end_with_error(id, Status::Failed, EventKind::StartFailed, error, actor)
    }

    fn record_exit(
        &self,
        id: &str,
        pid: i32,
        outcome: ExitOutcome,
        actor: &str,
    ) -> Result<ExitRecorded> {
        self.write(|tx| {
            let task = load_task(tx, id)?;
            if task.status != Status::Running || task.pid != Some(pid) {
                return Err(StoreError::Conflict(format!(
                    "exit of pid {pid} not recorded for {}: it is {} with pid {:?}",
                    task.id, task.status, task.pid
                )));
            }
            let decision =
                decide_after_exit(&task.restart, task.restarts, outcome, task.stop_requested);
            apply_exit(tx, &task, outcome, decision, actor)?;
            Ok(ExitRecorded {
                task: load_task(tx, id)?,
                decision,
            })
        })
    }

    fn request_stop(&self, id: &str, actor: &str) -> Result<TaskRecord> {
        self.write(|tx| {
            let task = load_task(tx, id)?;
            match task.status {
                Status::Running => {
                    tx.execute(
                        "UPDATE tasks SET stop_requested = 1, updated_at = ?1 WHERE id = ?2",
                        params![now_millis(), task.id],
                    )?;
                    insert_event(
                        tx,
                        Some(&task.id),
                        &NewEvent::new(EventKind::StopRequested, actor, "stop requested"),
                        Some(json!({ "stop_requested": task.stop_requested })),
                        Some(json!({ "stop_requested": true })),
                    )?;
                }
                Status::Pending | Status::Blocked => transition(
                    tx,
                    &task,
                    Status::Cancelled,
                    &[
                        ("stop_requested", 1.into()),
                        ("finished_at", now_millis().into()),
                    ],
                    NewEvent::new(EventKind::Exited, actor, "cancelled before it started"),
                )?,
                ended => {
                    return Err(StoreError::Conflict(format!(
                        "{} is not running (status {ended})",
                        task.id
                    )));
                }
            }
            load_task(tx, id)
        })
    }

    fn reopen_for_restart(&self, id: &str, actor: &str) -> Result<TaskRecord> {
        self.write(|tx| {
            let task = load_task(tx, id)?;
            // `running -> pending` is legal for automatic restarts only; a
            // requested restart needs the old process to have ended first.
            if !task.status.is_terminal() {
                return Err(StoreError::Conflict(format!(
                    "{} is {}: it must end before it can be reopened",
                    task.id, task.status
                )));
            }
            transition(
                tx,
                &task,
                Status::Pending,
                &[
                    ("stop_requested", 0.into()),
                    ("restarts", i64::from(task.restarts + 1).into()),
                ],
                NewEvent::new(EventKind::RestartRequested, actor, "restart requested"),
            )?;
            load_task(tx, id)
        })
    }

    fn mark_lost(&self, id: &str, reason: &str, actor: &str) -> Result<TaskRecord> {
        self.end_with_error(id, Status::Lost, EventKind::Lost, reason, actor)
    }

    fn append_event(&self, task_id: Option<&str>, event: &NewEvent) -> Result<Event> {
        self.write(|tx| {
            let task_id = match task_id {
                Some(id) => Some(load_task(tx, id)?.id),
                None => None,
            };
            insert_event(tx, task_id.as_deref(), event, None, None)
        })
    }

    fn events_after(
        &self,
        after_seq: i64,
        kinds: &[EventKind],
        limit: usize,
    ) -> Result<Vec<Event>> {
        self.read(|conn| {
            let sql = format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE seq > ?1{} ORDER BY seq LIMIT ?2",
                kind_filter(kinds)
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![after_seq, limit as i64], event_from_row)?;
            rows.map(|row| row?).collect()
        })
    }

    fn newest_events_after(
        &self,
        after_seq: i64,
        kinds: &[EventKind],
        limit: usize,
    ) -> Result<Vec<Event>> {
        self.read(|conn| {
            let sql = format!(
                "SELECT * FROM (SELECT {EVENT_COLUMNS} FROM events WHERE seq > ?1{} \
                 ORDER BY seq DESC LIMIT ?2) ORDER BY seq",
                kind_filter(kinds)
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![after_seq, limit as i64], event_from_row)?;
            rows.map(|row| row?).collect()
        })
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
        // The AUTOINCREMENT high-water mark survives archiving the newest events.
        self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
                    [],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or(0))
        })
    }

    fn status_counts(&self) -> Result<Vec<(Status, u64)>> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT status, COUNT(*) FROM tasks GROUP BY status")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            rows.map(|row| {
                let (status, count) = row?;
                let status =
                    status
                        .parse()
                        .map_err(|e: taskdaemon_core::status::UnknownStatus| {
                            StoreError::Malformed {
                                field: "tasks.status",
                                message: e.to_string(),
                            }
                        })?;
                Ok((status, count as u64))
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
        check_agent_spec(spec)?;
        self.write(|tx| {
            let id = insert_agent(tx, spec, false, actor)?;
            load_task(tx, &id)
        })
    }

    fn queue_item(&self, task_id: &str) -> Result<QueueItem> {
        self.read(|conn| {
            let id = load_task(conn, task_id)?.id;
            load_queue_item(conn, &id)
        })
    }

    fn open_queue_items(&self, queue: &str) -> Result<Vec<QueueItem>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {QUEUE_ITEM_COLUMNS} FROM queue_items
                 WHERE queue = ?1 AND finished = 0 ORDER BY created_at, rowid"
            ))?;
            let rows = stmt.query_map([queue], queue_item_from_row)?;
            rows.map(|row| row?).collect()
        })
    }

    fn finish_queue_item(
        &self,
        task_id: &str,
        result: &serde_json::Value,
        _actor: &str,
    ) -> Result<QueueItem> {
        self.write(|tx| {
            let task = load_task(tx, task_id)?;
            if !task.status.is_terminal() {
                return Err(StoreError::Conflict(format!(
                    "{} is {}: its result cannot be recorded before it ends",
                    task.id, task.status
                )));
            }
            let changed = tx.execute(
                "UPDATE queue_items SET finished = 1, result = ?1, finished_at = ?2
                 WHERE task_id = ?3",
                params![result.to_string(), now_millis(), task.id],
            )?;
            if changed == 0 {
                return Err(StoreError::NotFound(task.id));
            }
            load_queue_item(tx, &task.id)
        })
    }

    fn queue_counts(&self) -> Result<Vec<QueueCounts>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT q.queue,
                        SUM(q.finished = 1 AND t.status = 'succeeded'),
                        SUM(q.finished = 1 AND t.status <> 'succeeded'),
                        SUM(q.finished = 0)
                 FROM queue_items q JOIN tasks t ON t.id = q.task_id
                 GROUP BY q.queue ORDER BY q.queue",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(QueueCounts {
                    queue: r.get(0)?,
                    done: r.get::<_, i64>(1)? as u64,
                    failed: r.get::<_, i64>(2)? as u64,
                    open: r.get::<_, i64>(3)? as u64,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn submit(&self, spec: &NewAgent, actor: &str) -> Result<TaskRecord> {
        check_agent_spec(spec)?;
        self.write(|tx| {
            let id = insert_agent(tx, spec, true, actor)?;
            load_task(tx, &id)
        })
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

    fn queue_items(&self, filter: &crate::QueueItemFilter) -> Result<Vec<QueueItem>> {
        let limit = filter
            .limit
            .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {QUEUE_ITEM_COLUMNS} FROM queue_items
                 WHERE (?1 IS NULL OR queue = ?1)
                   AND (?2 IS NULL OR (SELECT status FROM tasks WHERE id = task_id) = ?2)
                 ORDER BY created_at DESC, rowid DESC LIMIT ?3"
            ))?;
            let status = filter.status.map(|s| s.as_str());
            let rows = stmt.query_map(
                rusqlite::params![filter.queue, status, limit],
                queue_item_from_row,
            )?;
            let mut items: Vec<QueueItem> = rows.map(|row| row?).collect::<Result<_>>()?;
            items.reverse();
            Ok(items)
        })
    }

    fn event_waiter(&self) -> Result<Box<dyn WorkWaiter>> {
        Ok(Box::new(claim::SqliteWaiter::open(&self.path)?))
    }

    fn kind_counts(&self) -> Result<Vec<(taskdaemon_core::TaskKind, u64)>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT kind, COUNT(*) FROM tasks GROUP BY kind ORDER BY kind")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            rows.map(|row| {
                let (kind, count) = row?;
                Ok((crate::parse_kind(&kind)?, count as u64))
            })
            .collect()
        })
    }
}
