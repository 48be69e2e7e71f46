//! The PostgreSQL store, for several hosts sharing one database.
//!
//! The semantics are SQLite's (the conformance checks hold both to them):
//! every change is one transaction that updates its rows and appends its
//! event, and the state machine is checked inside it. Where SQLite relies on
//! `BEGIN IMMEDIATE` (one writer at a time), this backend locks what it reads
//! for a change (`SELECT ... FOR UPDATE` on the task row, an advisory lock
//! around dependency-graph edits), so unrelated changes run in parallel.
//!
//! Event sequence numbers are handed out just after commit by
//! `td_sequence_events()` (see the migration): gap-free and in the order
//! readers can see them, without making every writer queue on one counter
//! row until its commit is on disk.
//!
//! Connections come from an r2d2 pool. An operation that fails because its
//! connection dropped (a restarted server, `pg_terminate_backend`) or that
//! lost a serialization race is run again on a fresh connection, for up to
//! [`RECONNECT_FOR`]; a commit whose outcome is unknown is never repeated.

mod claim;
mod history;
mod loops;
mod memory;
mod migrations;
mod rows;
mod search;
mod tracked;
mod transfer;

use std::path::Path;
use std::time::{Duration, Instant};

use postgres::error::SqlState;
use postgres::types::Type;
use postgres::{NoTls, Transaction};
use r2d2_postgres::PostgresConnectionManager;
use serde_json::json;
use taskdaemon_core::process::{ExitDecision, ExitOutcome, decide_after_exit};
use taskdaemon_core::time::now_millis;
use taskdaemon_core::tracked::{SearchHit, Session};
use taskdaemon_core::{
    Event, EventKind, HumanId, LoopEnd, LoopIteration, LoopRecord, Memory, NewAgent, NewEvent,
    NewLoop, NewMemory, NewProcess, NewTracked, QueueCounts, QueueItem, Status, TaskKind,
    TaskRecord, TrackedAction, TrackedEdit, task::shell_join,
};
use uuid::Uuid;

use crate::claim::{Claim, ClaimCompleted, HeldLease, Lease, Released, WorkWaiter, WorkerInfo};
use crate::location::redact_url;
use crate::{
    ArchiveReport, ExitRecorded, HistoryFilter, Importer, IntegrityReport, MemoryFilter,
    ProcessFilter, RepairReport, Result, Sample, Started, Store, StoreError, TrackedFilter,
    WorkerRecord,
};
use rows::{QUEUE_ITEM_COLUMNS, TASK_COLUMNS, Value, queue_item_from_row, task_from_row};

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;
pub(crate) type Tx<'a> = Transaction<'a>;

/// How long an operation keeps trying to reach a database that dropped it.
pub const RECONNECT_FOR: Duration = Duration::from_secs(30);
/// How long opening waits for the first connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How to reach the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// `postgres://user[:password]@host[:port]/database[?...]`
    pub url: String,
    /// Keep every table in this schema (created if missing) instead of the
    /// default search path; tests use one schema each to run in parallel.
    pub schema: Option<String>,
    /// Connections kept open at most.
    pub pool_size: u32,
}

impl PgOptions {
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            schema: None,
            pool_size: 8,
        }
    }
}

/// The PostgreSQL implementation of [`Store`].
pub struct PgStore {
    pool: Pool,
    config: postgres::Config,
    /// The URL without its password, for messages.
    url: String,
}

impl PgStore {
    /// Connects, creates the schema if asked, and brings it up to date.
    ///
    /// An unreachable server fails at once with [`StoreError::Unreachable`],
    /// naming the URL without its password.
    pub fn open(options: &PgOptions) -> Result<Self> {
        let url = redact_url(&options.url);
        let unreachable = |message: String| StoreError::Unreachable {
            url: url.clone(),
            message,
        };
        let mut config: postgres::Config = options
            .url
            .parse()
            .map_err(|e: postgres::Error| unreachable(format!("not a valid URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("taskdaemon");
        }
        if let Some(schema) = &options.schema {
            check_schema_name(schema)?;
            let mut client = config
                .connect(NoTls)
                .map_err(|e| unreachable(error_chain(&e)))?;
            client.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))?;
            // Added to the URL's own `options`, never replacing them.
            let options = match config.get_options() {
                Some(given) => format!("{given} -c search_path={schema}"),
                None => format!("-c search_path={schema}"),
            };
            config.options(&options);
        }
        let mut client = config
            .connect(NoTls)
            .map_err(|e| unreachable(error_chain(&e)))?;
        migrate(&mut client, &url)?;
        drop(client);
        let manager = PostgresConnectionManager::new(config.clone(), NoTls);
        let pool = r2d2::Pool::builder()
            .max_size(options.pool_size.max(1))
            .min_idle(Some(1))
            .connection_timeout(CONNECT_TIMEOUT)
            .build(manager)
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(Self { pool, config, url })
    }

    /// The URL without its password.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs `op` on a pooled connection, again on a fresh one when the
    /// connection dropped or the transaction lost a race, for up to
    /// [`RECONNECT_FOR`].
    fn with_retry<T>(
        &self,
        mut op: impl FnMut(&mut postgres::Client) -> std::result::Result<T, Attempt>,
    ) -> Result<T> {
        let deadline = Instant::now() + RECONNECT_FOR;
        let mut pause = Duration::from_millis(20);
        loop {
            let outcome = match self.pool.get() {
                Ok(mut client) => op(&mut client),
                Err(e) => Err(Attempt::Retry(StoreError::Unreachable {
                    url: self.url.clone(),
                    message: e.to_string(),
                })),
            };
            match outcome {
                Ok(value) => return Ok(value),
                Err(Attempt::Retry(error)) if Instant::now() < deadline => {
                    tracing::debug!(error = %error, "retrying a PostgreSQL operation");
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                Err(Attempt::Retry(error) | Attempt::Fail(error)) => return Err(error),
            }
        }
    }

    /// Runs `f` in one read-committed transaction.
    fn write<T>(&self, mut f: impl FnMut(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        self.with_retry(|client| {
            let mut tx = client.transaction().map_err(Attempt::from_pg)?;
            let value = f(&mut tx).map_err(Attempt::from_store)?;
            tx.commit().map_err(Attempt::from_commit)?;
            Ok(value)
        })
    }

    /// Runs `f` in a read-only transaction.
    fn read<T>(&self, mut f: impl FnMut(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        self.with_retry(|client| {
            let mut tx = client
                .build_transaction()
                .read_only(true)
                .start()
                .map_err(Attempt::from_pg)?;
            let value = f(&mut tx).map_err(Attempt::from_store)?;
            tx.commit().map_err(Attempt::from_pg)?;
            Ok(value)
        })
    }

    /// Sequences committed events, then runs the read `f`.
    fn read_events<T>(&self, f: impl FnMut(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        self.sequence_events()?;
        self.read(f)
    }

    /// Gives every committed event its sequence number; returns the last one.
    fn sequence_events(&self) -> Result<i64> {
        self.with_retry(|client| {
            client
                .query_one("SELECT td_sequence_events()", &[])
                .map(|row| row.get(0))
                .map_err(Attempt::from_pg)
        })
    }

    /// Ends a task without an exit status, keeping `error` as the reason.
    fn end_with_error(
        &self,
        id: &str,
        status: Status,
        kind: EventKind,
        error: &str,
        actor: &str,
    ) -> Result<TaskRecord> {
        self.write(|tx| {
            let task = lock_task(tx, id)?;
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
}

/// Whether a failed attempt may be run again.
enum Attempt {
    Retry(StoreError),
    Fail(StoreError),
}

impl Attempt {
    fn from_pg(error: postgres::Error) -> Self {
        if is_transient(&error) {
            Attempt::Retry(error.into())
        } else {
            Attempt::Fail(error.into())
        }
    }

    fn from_store(error: StoreError) -> Self {
        match error {
            StoreError::Postgres(e) => Attempt::from_pg(e),
            other => Attempt::Fail(other),
        }
    }

    /// A commit that failed for a lost race was rolled back and may run
    /// again; one whose connection dropped may have committed, so it is
    /// reported, never repeated.
    fn from_commit(error: postgres::Error) -> Self {
        let raced = matches!(
            error.code(),
            Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
        );
        if raced {
            Attempt::Retry(error.into())
        } else {
            Attempt::Fail(error.into())
        }
    }
}

/// A dropped connection, a server going away, or a lost race.
fn is_transient(error: &postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    match error.code() {
        Some(code) => {
            *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
                || code.code().starts_with("08")
        }
        // No SQLSTATE: the error came from the socket, not the server.
        None => std::error::Error::source(error)
            .is_some_and(|source| source.downcast_ref::<std::io::Error>().is_some()),
    }
}

/// An error with its causes, for messages.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

fn check_schema_name(schema: &str) -> Result<()> {
    let valid = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !schema.starts_with(|c: char| c.is_ascii_digit());
    if valid {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "schema name '{schema}' must be lower-case letters, digits and _"
        )))
    }
}

fn migrate(client: &mut postgres::Client, url: &str) -> Result<()> {
    let latest = migrations::latest_version();
    let mut tx = client.transaction()?;
    // One migrator per schema at a time; the others wait and find it done.
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.taskdaemon.migrate'))",
        &[],
    )?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS td_schema (version BIGINT NOT NULL)")?;
    let current: Option<i64> = tx
        .query_opt("SELECT max(version) FROM td_schema", &[])?
        .and_then(|row| row.get(0));
    let current = current.unwrap_or(0);
    if current > latest {
        return Err(StoreError::PgTooNew {
            url: url.to_owned(),
            found: current,
            known: latest,
        });
    }
    for (index, sql) in migrations::MIGRATIONS
        .iter()
        .enumerate()
        .skip(current as usize)
    {
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO td_schema (version) VALUES ($1)",
            &[&(index as i64 + 1)],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// Reads one task, failing with `NotFound`. The id as written wins, then
/// the canonical human id (the same rule as SQLite's `load_task`).
fn load_task(tx: &mut Tx<'_>, id: &str) -> Result<TaskRecord> {
    find_task(tx, id, "")
}

/// [`load_task`], locking the row until the transaction ends.
fn lock_task(tx: &mut Tx<'_>, id: &str) -> Result<TaskRecord> {
    find_task(tx, id, " FOR UPDATE OF tasks")
}

fn find_task(tx: &mut Tx<'_>, id: &str, lock: &str) -> Result<TaskRecord> {
    let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1{lock}");
    // Typed queries go out in one round trip (no separate prepare): task
    // lookups are on every hot path.
    if let Some(row) = tx.query_typed_opt(&sql, &[(&id, Type::TEXT)])? {
        return task_from_row(&row);
    }
    let canonical = canonical_id(id);
    if canonical == id {
        return Err(StoreError::NotFound(id.to_owned()));
    }
    match tx.query_typed_opt(&sql, &[(&canonical, Type::TEXT)])? {
        Some(row) => task_from_row(&row),
        None => Err(StoreError::NotFound(id.to_owned())),
    }
}

fn canonical_id(id: &str) -> String {
    id.parse::<HumanId>()
        .map(|h| h.to_string())
        .unwrap_or_else(|_| id.to_owned())
}

/// The stored id `id` names (see SQLite's `resolve_id`).
fn resolve_id(tx: &mut Tx<'_>, id: &str) -> Result<String> {
    match load_task(tx, id) {
        Ok(task) => Ok(task.id),
        Err(StoreError::NotFound(_)) => Ok(canonical_id(id)),
        Err(other) => Err(other),
    }
}

fn load_queue_item(tx: &mut Tx<'_>, task_id: &str) -> Result<QueueItem> {
    match tx.query_typed_opt(
        &format!("SELECT {QUEUE_ITEM_COLUMNS} FROM queue_items WHERE task_id = $1"),
        &[(&task_id, Type::TEXT)],
    )? {
        Some(row) => queue_item_from_row(&row),
        None => Err(StoreError::NotFound(task_id.to_owned())),
    }
}

/// The first free id for an agent task: `wanted`, else `wanted~2`, `~3`, ...
fn free_agent_id(tx: &mut Tx<'_>, wanted: &str) -> Result<String> {
    let mut taken = |id: &str| -> Result<bool> {
        Ok(tx
            .query_opt("SELECT 1 FROM tasks WHERE id = $1", &[&id])?
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

/// Appends an event on the caller's transaction. Its `seq` is given after
/// commit (see the module docs), so the returned event carries the row id
/// in `seq` only until then; callers that return an event re-read it.
fn insert_event(
    tx: &mut Tx<'_>,
    task_id: Option<&str>,
    event: &NewEvent,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> Result<i64> {
    let before = before.as_ref().map(serde_json::Value::to_string);
    let after = after.as_ref().map(serde_json::Value::to_string);
    let row = tx.query_typed_one(
        "INSERT INTO events (at, task_id, actor, kind, message, before, after)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        &[
            (&now_millis(), Type::INT8),
            (&task_id, Type::TEXT),
            (&event.actor, Type::TEXT),
            (&event.kind.as_str(), Type::TEXT),
            (&event.message, Type::TEXT),
            (&before, Type::TEXT),
            (&after, Type::TEXT),
        ],
    )?;
    Ok(row.try_get(0)?)
}

/// Changes a task's status after checking the state machine, sets the extra
/// columns, and appends the event, on the caller's transaction. The caller
/// holds the task's row lock ([`lock_task`]).
fn transition(
    tx: &mut Tx<'_>,
    task: &TaskRecord,
    to: Status,
    extra: &[(&str, Value)],
    event: NewEvent,
) -> Result<()> {
    task.status.check_transition(to, &task.id)?;
    let now = now_millis();
    let status = to.as_str().to_owned();
    let mut after = serde_json::Map::new();
    after.insert("status".to_owned(), json!(to.as_str()));
    for (column, value) in extra {
        after.insert((*column).to_owned(), value.to_json());
    }
    let before = json!({ "status": task.status.as_str() }).to_string();
    let after = serde_json::Value::Object(after).to_string();
    let kind = event.kind.as_str();
    // The row and its event in one typed statement: one round trip.
    let mut params: Vec<(&(dyn postgres::types::ToSql + Sync), Type)> = vec![
        (&status, Type::TEXT),
        (&now, Type::INT8),
        (&task.id, Type::TEXT),
        (&event.actor, Type::TEXT),
        (&kind, Type::TEXT),
        (&event.message, Type::TEXT),
        (&before, Type::TEXT),
        (&after, Type::TEXT),
    ];
    let mut set = String::new();
    for (column, value) in extra {
        params.push((value, value.sql_type()));
        set.push_str(&format!(", {column} = ${}", params.len()));
    }
    let sql = format!(
        "WITH changed AS (
           UPDATE tasks SET status = $1, updated_at = $2{set} WHERE id = $3 RETURNING id)
         INSERT INTO events (at, task_id, actor, kind, message, before, after)
         SELECT $2, id, $4, $5, $6, $7, $8 FROM changed"
    );
    tx.execute_typed(&sql, &params)?;
    if task.status == Status::Succeeded || to == Status::Succeeded {
        tracked::refresh_dependents(tx, &task.id, &event.actor)?;
    }
    Ok(())
}

/// Applies a [`crate::changes::Change`] decided for both backends.
fn apply(tx: &mut Tx<'_>, task: &TaskRecord, change: crate::changes::Change) -> Result<()> {
    let columns: Vec<(&str, Value)> = change
        .columns
        .into_iter()
        .map(|(column, value)| {
            let value = match value {
                crate::changes::Column::Int(v) => Value::Int(v),
                crate::changes::Column::Text(v) => Value::Text(v),
            };
            (column, value)
        })
        .collect();
    transition(tx, task, change.to, &columns, change.event)
}

fn next_counter(tx: &mut Tx<'_>, name: &str) -> Result<u64> {
    let value: i64 = tx
        .query_one(
            "INSERT INTO counters (name, value) VALUES ($1, 1)
             ON CONFLICT (name) DO UPDATE SET value = counters.value + 1
             RETURNING value",
            &[&name],
        )?
        .get(0);
    Ok(value as u64)
}

fn to_json_text<T: serde::Serialize>(value: &T) -> String {
    // Serialising plain data structures (strings, numbers, vectors) cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

/// The exit columns an attempt's end writes.
fn exit_columns(outcome: ExitOutcome) -> Vec<(&'static str, Value)> {
    vec![
        ("exit_code", outcome.code.into()),
        ("signal", outcome.signal.into()),
        ("finished_at", now_millis().into()),
    ]
}

/// Applies an exit decision to a running task (shared by process exits and
/// claimed attempts).
fn apply_exit(
    tx: &mut Tx<'_>,
    task: &TaskRecord,
    outcome: ExitOutcome,
    decision: ExitDecision,
    actor: &str,
) -> Result<()> {
    let mut columns = exit_columns(outcome);
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

/// Inserts an agent task and its queue item (shared by folder queues and
/// submitted work).
fn insert_agent(tx: &mut Tx<'_>, spec: &NewAgent, claimable: bool, actor: &str) -> Result<String> {
    let id = free_agent_id(tx, &spec.wanted_id)?;
    let now = now_millis();
    tx.execute(
        "INSERT INTO tasks (uuid, id, kind, name, status, argv, cwd, env, restart,
                            created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        &[
            &Uuid::now_v7().to_string(),
            &id,
            &TaskKind::Agent.as_str(),
            &spec.document,
            &Status::Pending.as_str(),
            &to_json_text(&spec.argv),
            &spec.cwd,
            &to_json_text(&spec.env),
            &to_json_text(&spec.restart),
            &now,
        ],
    )?;
    tx.execute(
        "INSERT INTO queue_items (task_id, queue, document, executor, max_attempts,
                                  timeout_ms, created_at, claimable)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &id,
            &spec.queue,
            &spec.document,
            &spec.executor,
            &i64::from(spec.max_attempts),
            &spec.timeout_ms.map(|v| v as i64),
            &now,
            &claimable,
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

fn check_agent_spec(spec: &NewAgent) -> Result<()> {
    if spec.wanted_id.is_empty() || spec.queue.is_empty() {
        return Err(StoreError::Conflict(
            "an agent task needs an id and a queue".to_owned(),
        ));
    }
    Ok(())
}

impl Store for PgStore {
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
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)",
                &[
                    &Uuid::now_v7().to_string(),
                    &id,
                    &TaskKind::Process.as_str(),
                    &spec.name,
                    &spec.tool,
                    &spec.session,
                    &Status::Pending.as_str(),
                    &to_json_text(&spec.argv),
                    &spec.cwd,
                    &to_json_text(&spec.env),
                    &to_json_text(&spec.restart),
                    &spec.hang_timeout_ms.map(|v| v as i64),
                    &now,
                ],
            )?;
            if let Some(session) = &spec.session {
                memory::touch_session(tx, session, spec.tool.as_deref(), now)?;
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
        self.read(|tx| load_task(tx, id))
    }

    fn processes(&self, filter: &ProcessFilter) -> Result<Vec<TaskRecord>> {
        self.read(|tx| {
            let mut sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE kind = 'process'");
            if !filter.all {
                sql.push_str(" AND status IN ('pending', 'blocked', 'running')");
            }
            if filter.tool.is_some() {
                sql.push_str(" AND tool = $1");
            }
            let limit = filter
                .limit
                .map_or_else(|| "ALL".to_owned(), |l| l.to_string());
            // The newest `limit` rows, shown oldest first.
            let sql = format!(
                "SELECT * FROM ({sql} ORDER BY search_key DESC LIMIT {limit}) t ORDER BY search_key"
            );
            let rows = match &filter.tool {
                Some(tool) => tx.query(&sql, &[tool])?,
                None => tx.query(&sql, &[])?,
            };
            rows.iter().map(task_from_row).collect()
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
            let task = lock_task(tx, id)?;
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
                    ("finished_at", Value::Int(None)),
                    ("exit_code", Value::Int(None)),
                    ("signal", Value::Int(None)),
                    ("error", Value::Text(None)),
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
            let task = lock_task(tx, id)?;
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
            let task = lock_task(tx, id)?;
            match task.status {
                Status::Running => {
                    tx.execute(
                        "UPDATE tasks SET stop_requested = TRUE, updated_at = $1 WHERE id = $2",
                        &[&now_millis(), &task.id],
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
                        ("stop_requested", true.into()),
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
            let task = lock_task(tx, id)?;
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
                    ("stop_requested", false.into()),
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
        let id = self.write(|tx| {
            let task_id = match task_id {
                Some(id) => Some(load_task(tx, id)?.id),
                None => None,
            };
            insert_event(tx, task_id.as_deref(), event, None, None)
        })?;
        self.sequence_events()?;
        self.read(|tx| history::event_by_id(tx, id))
    }

    fn events_after(
        &self,
        after_seq: i64,
        kinds: &[EventKind],
        limit: usize,
    ) -> Result<Vec<Event>> {
        self.read_events(|tx| history::events_after(tx, after_seq, kinds, limit))
    }

    fn newest_events_after(
        &self,
        after_seq: i64,
        kinds: &[EventKind],
        limit: usize,
    ) -> Result<Vec<Event>> {
        self.read_events(|tx| history::newest_events_after(tx, after_seq, kinds, limit))
    }

    fn tasks_by_ids(&self, ids: &[String]) -> Result<Vec<TaskRecord>> {
        self.read(|tx| {
            tx.query(
                &format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ANY($1)"),
                &[&ids],
            )?
            .iter()
            .map(task_from_row)
            .collect()
        })
    }

    fn last_event_seq(&self) -> Result<i64> {
        self.sequence_events()
    }

    fn status_counts(&self) -> Result<Vec<(Status, u64)>> {
        self.read(|tx| {
            tx.query("SELECT status, COUNT(*) FROM tasks GROUP BY status", &[])?
                .iter()
                .map(|row| {
                    let status: String = row.try_get(0)?;
                    let count: i64 = row.try_get(1)?;
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
        self.read(|tx| {
            Ok(tx
                .query_opt("SELECT value FROM meta WHERE key = $1", &[&key])?
                .map(|row| row.get(0)))
        })
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&key, &value],
            )?;
            Ok(())
        })
    }

    fn record_samples(&self, samples: &[Sample]) -> Result<()> {
        self.write(|tx| {
            let stmt = tx.prepare(
                "INSERT INTO samples (task_id, at, cpu_percent, rss_kb, processes)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (task_id) DO UPDATE SET at = excluded.at,
                   cpu_percent = excluded.cpu_percent, rss_kb = excluded.rss_kb,
                   processes = excluded.processes",
            )?;
            for s in samples {
                tx.execute(
                    &stmt,
                    &[
                        &s.task_id,
                        &s.at,
                        &s.cpu_percent,
                        &(s.rss_kb as i64),
                        &i64::from(s.processes),
                    ],
                )?;
            }
            Ok(())
        })
    }

    fn samples(&self) -> Result<Vec<Sample>> {
        self.read(|tx| {
            tx.query(
                "SELECT task_id, at, cpu_percent, rss_kb, processes FROM samples",
                &[],
            )?
            .iter()
            .map(|r| {
                Ok(Sample {
                    task_id: r.try_get(0)?,
                    at: r.try_get(1)?,
                    cpu_percent: r.try_get(2)?,
                    rss_kb: r.try_get::<_, i64>(3)? as u64,
                    processes: r.try_get::<_, i64>(4)? as u32,
                })
            })
            .collect()
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

    fn add_task_files(&self, id: &str, files: &[String], actor: &str) -> Result<TaskRecord> {
        self.write(|tx| tracked::add_files(tx, id, files, actor))
    }

    fn tracked(&self, filter: &TrackedFilter) -> Result<Vec<TaskRecord>> {
        self.read(|tx| tracked::list(tx, filter))
    }

    fn ready(&self, limit: usize) -> Result<Vec<TaskRecord>> {
        self.read(|tx| tracked::ready(tx, limit))
    }

    fn current_candidates(&self, session: Option<&str>) -> Result<Vec<TaskRecord>> {
        self.read(|tx| tracked::current_candidates(tx, session))
    }

    fn recently_succeeded(&self, limit: usize) -> Result<Vec<TaskRecord>> {
        self.read(|tx| tracked::recently_succeeded(tx, limit))
    }

    fn edit_tracked(&self, id: &str, edit: &TrackedEdit, actor: &str) -> Result<TaskRecord> {
        self.write(|tx| tracked::edit(tx, id, edit, actor))
    }

    fn create_loop(&self, new: &NewLoop, actor: &str) -> Result<LoopRecord> {
        self.write(|tx| loops::create(tx, new, actor))
    }

    fn loop_record(&self, id: &str) -> Result<LoopRecord> {
        self.read(|tx| loops::load(tx, id))
    }

    fn loops(&self, all: bool) -> Result<Vec<LoopRecord>> {
        self.read(|tx| loops::list(tx, all))
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

    fn remember(&self, new: &NewMemory, actor: &str) -> Result<Memory> {
        self.write(|tx| memory::remember(tx, new, actor))
    }

    fn memories(&self, filter: &MemoryFilter) -> Result<Vec<Memory>> {
        self.read(|tx| memory::memories(tx, filter))
    }

    fn memory_by_key(&self, key: &str) -> Result<Option<Memory>> {
        self.read(|tx| memory::by_key(tx, key))
    }

    fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>> {
        self.read_events(|tx| search::search(tx, query, limit))
    }

    fn touch_session(&self, session: &str, tool: Option<&str>) -> Result<()> {
        self.write(|tx| memory::touch_session(tx, session, tool, now_millis()))
    }

    fn end_session(&self, session: &str, actor: &str) -> Result<Session> {
        self.write(|tx| memory::end_session(tx, session, actor))
    }

    fn session(&self, session: &str) -> Result<Option<Session>> {
        self.read(|tx| memory::load_session(tx, session))
    }

    fn latest_session(&self) -> Result<Option<Session>> {
        self.read(memory::latest_session)
    }

    fn history_page(
        &self,
        filter: &HistoryFilter,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<Event>> {
        self.read_events(|tx| {
            let mut filter = filter.clone();
            if let Some(task) = &filter.task_id {
                filter.task_id = Some(resolve_id(tx, task)?);
            }
            history::page(tx, &filter, after_seq, limit)
        })
    }

    fn archive_events(&self, before: i64) -> Result<ArchiveReport> {
        let mut report = ArchiveReport::default();
        self.sequence_events()?;
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
        self.sequence_events()?;
        // Not retried: records already handed to the sink cannot be taken back.
        let mut client = self.pool.get().map_err(|e| StoreError::Unreachable {
            url: self.url.clone(),
            message: e.to_string(),
        })?;
        transfer::export(&mut client, sink)
    }

    fn begin_import(&self) -> Result<Box<dyn Importer + '_>> {
        let client = self.pool.get().map_err(|e| StoreError::Unreachable {
            url: self.url.clone(),
            message: e.to_string(),
        })?;
        Ok(Box::new(transfer::PgImporter::begin(client, &self.url)?))
    }

    fn check_integrity(&self) -> Result<IntegrityReport> {
        self.read_events(transfer::check)
    }

    fn repair(&self, actor: &str) -> Result<RepairReport> {
        self.sequence_events()?;
        self.write(|tx| transfer::repair(tx, actor))
    }

    fn backup(&self, path: &Path) -> Result<()> {
        Err(StoreError::Unsupported(format!(
            "backup writes a SQLite file and the store is PostgreSQL ({}): use `pg_dump` for a \
             database backup, or `taskdaemon export --output {}` for a portable copy",
            self.url,
            path.display()
        )))
    }

    fn create_agent(&self, spec: &NewAgent, actor: &str) -> Result<TaskRecord> {
        check_agent_spec(spec)?;
        self.write(|tx| {
            let id = insert_agent(tx, spec, false, actor)?;
            load_task(tx, &id)
        })
    }

    fn queue_item(&self, task_id: &str) -> Result<QueueItem> {
        self.read(|tx| {
            let id = load_task(tx, task_id)?.id;
            load_queue_item(tx, &id)
        })
    }

    fn open_queue_items(&self, queue: &str) -> Result<Vec<QueueItem>> {
        self.read(|tx| {
            tx.query(
                &format!(
                    "SELECT {QUEUE_ITEM_COLUMNS} FROM queue_items
                     WHERE queue = $1 AND NOT finished ORDER BY created_at, n"
                ),
                &[&queue],
            )?
            .iter()
            .map(queue_item_from_row)
            .collect()
        })
    }

    fn finish_queue_item(
        &self,
        task_id: &str,
        result: &serde_json::Value,
        _actor: &str,
    ) -> Result<QueueItem> {
        self.write(|tx| {
            let task = lock_task(tx, task_id)?;
            if !task.status.is_terminal() {
                return Err(StoreError::Conflict(format!(
                    "{} is {}: its result cannot be recorded before it ends",
                    task.id, task.status
                )));
            }
            let changed = tx.execute(
                "UPDATE queue_items SET finished = TRUE, result = $1, finished_at = $2
                 WHERE task_id = $3",
                &[&result.to_string(), &now_millis(), &task.id],
            )?;
            if changed == 0 {
                return Err(StoreError::NotFound(task.id));
            }
            load_queue_item(tx, &task.id)
        })
    }

    fn queue_counts(&self) -> Result<Vec<QueueCounts>> {
        self.read(|tx| {
            tx.query(
                "SELECT q.queue,
                        count(*) FILTER (WHERE q.finished AND t.status = 'succeeded'),
                        count(*) FILTER (WHERE q.finished AND t.status <> 'succeeded'),
                        count(*) FILTER (WHERE NOT q.finished)
                 FROM queue_items q JOIN tasks t ON t.id = q.task_id
                 GROUP BY q.queue ORDER BY q.queue",
                &[],
            )?
            .iter()
            .map(|r| {
                Ok(QueueCounts {
                    queue: r.try_get(0)?,
                    done: r.try_get::<_, i64>(1)? as u64,
                    failed: r.try_get::<_, i64>(2)? as u64,
                    open: r.try_get::<_, i64>(3)? as u64,
                })
            })
            .collect()
        })
    }

    fn submit(&self, spec: &NewAgent, actor: &str) -> Result<TaskRecord> {
        check_agent_spec(spec)?;
        self.write(|tx| {
            let id = insert_agent(tx, spec, true, actor)?;
            claim::notify(tx, &spec.queue)?;
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
        Ok(Box::new(claim::PgWaiter::new(
            self.config.clone(),
            self.url.clone(),
        )?))
    }

    fn queue_items(&self, filter: &crate::QueueItemFilter) -> Result<Vec<QueueItem>> {
        let limit = filter.limit.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        let status = filter.status.map(|s| s.as_str().to_owned());
        self.read(|tx| {
            let mut items = tx
                .query(
                    &format!(
                        "SELECT {QUEUE_ITEM_COLUMNS} FROM queue_items q
                         WHERE ($1::TEXT IS NULL OR q.queue = $1::TEXT)
                           AND ($2::TEXT IS NULL
                                OR (SELECT status FROM tasks WHERE id = q.task_id) = $2::TEXT)
                         ORDER BY q.created_at DESC, q.n DESC LIMIT $3::BIGINT"
                    ),
                    &[&filter.queue, &status, &limit],
                )?
                .iter()
                .map(queue_item_from_row)
                .collect::<Result<Vec<_>>>()?;
            items.reverse();
            Ok(items)
        })
    }

    fn event_waiter(&self) -> Result<Box<dyn WorkWaiter>> {
        Ok(Box::new(claim::PgWaiter::on_channel(
            self.config.clone(),
            self.url.clone(),
            claim::EVENTS_CHANNEL,
        )?))
    }

    fn kind_counts(&self) -> Result<Vec<(TaskKind, u64)>> {
        self.read(|tx| {
            tx.query(
                "SELECT kind, COUNT(*) FROM tasks GROUP BY kind ORDER BY kind",
                &[],
            )?
            .iter()
            .map(|row| {
                let kind: String = row.try_get(0)?;
                let count: i64 = row.try_get(1)?;
                Ok((crate::parse_kind(&kind)?, count as u64))
            })
            .collect()
        })
    }
}
