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
//!
//! Each submodule holds the SQL of one area; what a change writes, and when
//! it is refused, is decided by the shared modules (see the crate docs), and
//! the `Store` methods that only hand their arguments on are in
//! [`crate::wiring`].

mod announce;
mod batch;
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
mod rows;
mod search;
mod statements;
mod tracked;
mod transfer;

use std::path::Path;
use std::time::{Duration, Instant};

use postgres::NoTls;
use postgres::error::SqlState;
use postgres::types::Type;
use r2d2_postgres::PostgresConnectionManager;
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
use crate::changes::{self, Change};
use crate::claim::{Claim, ClaimCompleted, HeldLease, Lease, Released, WorkWaiter, WorkerInfo};
use crate::encoding::{canonical_id, find_by_id, parse_status};
use crate::lifecycle;
use crate::location::redact_url;
use crate::{
    ArchiveReport, ExitRecorded, HistoryFilter, Importer, IntegrityReport, MemoryFilter,
    ProcessFilter, RepairReport, Result, Sample, Started, Store, StoreError, TrackedFilter,
    WorkerRecord,
};
use events::insert_event;
use rows::{TASK_COLUMNS, column_type, task_from_row};

type Pool = r2d2::Pool<statements::Manager>;
pub(crate) use statements::Tx;

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
    /// Announces the events of claims and completions after they commit.
    announcer: announce::Announcer,
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
        let manager = statements::Manager(PostgresConnectionManager::new(config.clone(), NoTls));
        let pool = r2d2::Pool::builder()
            .max_size(options.pool_size.max(1))
            .min_idle(Some(1))
            // Testing each connection handed out costs a round trip per
            // operation; an operation finds a dropped connection at its
            // first statement and runs again on a fresh one (`with_retry`),
            // and the two that never run again ask first
            // (`answering_connection`).
            .test_on_check_out(false)
            .connection_timeout(CONNECT_TIMEOUT)
            .build(manager)
            .map_err(|e| unreachable(e.to_string()))?;
        let announcer = announce::Announcer::start(config.clone()).map_err(|e| {
            StoreError::Aborted(format!(
                "PostgreSQL store: cannot start the thread that announces events: {e}"
            ))
        })?;
        Ok(Self {
            pool,
            config,
            url,
            announcer,
        })
    }

    /// A claim or completion batch committed events its transaction did not
    /// announce (see `announce.rs`): wake the listeners.
    fn events_committed(&self) {
        self.announcer.committed();
    }

    /// The URL without its password.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A pooled connection that answered, for the operations that are
    /// never run again (export, import). A dropped connection fails the
    /// ping and is discarded when it goes back to the pool; the next one is
    /// tried, up to one more than the pool holds.
    fn answering_connection(&self) -> Result<r2d2::PooledConnection<statements::Manager>> {
        let mut failure = String::new();
        for _ in 0..=self.pool.max_size() {
            let mut conn = self.pool.get().map_err(|e| StoreError::Unreachable {
                url: self.url.clone(),
                message: e.to_string(),
            })?;
            match conn.simple_query("") {
                Ok(_) => return Ok(conn),
                Err(e) => failure = error_chain(&e),
            }
        }
        Err(StoreError::Unreachable {
            url: self.url.clone(),
            message: failure,
        })
    }

    /// Runs `op` on a pooled connection, again on a fresh one when the
    /// connection dropped or the transaction lost a race, for up to
    /// [`RECONNECT_FOR`].
    fn with_retry<T>(
        &self,
        mut op: impl FnMut(&mut statements::Conn) -> std::result::Result<T, Attempt>,
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
            if crate::durability::is_deferred() {
                // Flushed with the next durable commit (see `crate::deferred`).
                tx.batch_execute("SET LOCAL synchronous_commit = off")
                    .map_err(Attempt::from_pg)?;
            }
            let value = f(&mut tx).map_err(Attempt::from_store)?;
            tx.commit().map_err(Attempt::from_commit)?;
            Ok(value)
        })
    }

    /// Runs `f` in a read-only transaction.
    fn read<T>(&self, mut f: impl FnMut(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        self.with_retry(|client| {
            let mut tx = client
                .transaction_with(|c| c.build_transaction().read_only(true).start())
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

    /// The integrity check's read: one that sees every committed event.
    fn read_for_check<T>(&self, f: impl FnMut(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        self.read_events(f)
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
    // Prepared once per connection (see `statements`): task lookups are on
    // every hot path.
    find_by_id(id, |id| {
        tx.query_cached_opt(&sql, &[(&id, Type::TEXT)])?
            .map(|row| task_from_row(&row))
            .transpose()
    })
}

/// The stored id and status of the task `id` names (by [`load_task`]'s
/// rule): for callers that need no more, without the whole row's subqueries.
fn load_status(tx: &mut Tx<'_>, id: &str) -> Result<(String, Status)> {
    find_status(tx, id, "")
}

/// [`load_status`], locking the row until the transaction ends.
fn lock_status(tx: &mut Tx<'_>, id: &str) -> Result<(String, Status)> {
    find_status(tx, id, " FOR UPDATE")
}

fn find_status(tx: &mut Tx<'_>, id: &str, lock: &str) -> Result<(String, Status)> {
    let sql = format!("SELECT id, status FROM tasks WHERE id = $1{lock}");
    find_by_id(id, |id| {
        tx.query_cached_opt(&sql, &[(&id, Type::TEXT)])?
            .map(|row| Ok((row.try_get(0)?, parse_status(row.try_get(1)?)?)))
            .transpose()
    })
}

/// The stored id `id` names (see SQLite's `resolve_id`).
fn resolve_id(tx: &mut Tx<'_>, id: &str) -> Result<String> {
    match load_status(tx, id) {
        Ok((id, _)) => Ok(id),
        Err(StoreError::NotFound(_)) => Ok(canonical_id(id)),
        Err(other) => Err(other),
    }
}

/// Locks task `id`, applies the change `decide` makes of it (reading more
/// on `tx` if it must), and reads the task again.
fn change_task(
    tx: &mut Tx<'_>,
    id: &str,
    decide: impl FnOnce(&mut Tx<'_>, &TaskRecord) -> Result<Change>,
) -> Result<TaskRecord> {
    let task = lock_task(tx, id)?;
    let change = decide(tx, &task)?;
    apply(tx, &task, change)?;
    load_task(tx, id)
}

/// The stored id of an optional task reference (any spelling).
fn stored_id(tx: &mut Tx<'_>, id: Option<&str>) -> Result<Option<String>> {
    id.map(|id| load_status(tx, id).map(|(id, _)| id))
        .transpose()
}

/// Applies a [`Change`] decided for both backends on the caller's
/// transaction, which holds the task's row lock ([`lock_task`]): checks the
/// state machine, sets the status and the columns, appends the event, and
/// re-decides the tasks waiting on this one.
fn apply(tx: &mut Tx<'_>, task: &TaskRecord, change: Change) -> Result<()> {
    apply_at(tx, task, change, now_millis())
}

/// [`apply`], written as of `now` (the task's `updated_at`, the event's `at`).
fn apply_at(tx: &mut Tx<'_>, task: &TaskRecord, change: Change, now: i64) -> Result<()> {
    let (before, after) = change.check(task)?;
    let status = change.to.as_str();
    let (before, after) = (before.to_string(), after.to_string());
    let event = &change.event;
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
    for (column, value) in &change.columns {
        params.push((value, column_type(value)));
        set.push_str(&format!(", {column} = ${}", params.len()));
    }
    let sql = format!(
        "WITH changed AS (
           UPDATE tasks SET status = $1, updated_at = $2{set} WHERE id = $3 RETURNING id)
         INSERT INTO events (at, task_id, actor, kind, message, before, after)
         SELECT $2, id, $4, $5, $6, $7, $8 FROM changed"
    );
    tx.execute_cached(&sql, &params)?;
    let follow_up = FollowUp::of(task, &change);
    if follow_up.needed() {
        run_follow_ups(tx, &[follow_up])?;
    }
    Ok(())
}

/// What a change leaves to re-decide once it is written: the tasks waiting
/// on `task` (dependents, `until-succeeds` gates).
struct FollowUp {
    id: String,
    to: Status,
    actor: String,
    moves_dependents: bool,
    ends_gates: bool,
}

impl FollowUp {
    fn of(task: &TaskRecord, change: &Change) -> Self {
        Self {
            id: task.id.clone(),
            to: change.to,
            actor: change.event.actor.clone(),
            moves_dependents: change.moves_dependents(task),
            ends_gates: change.to != task.status
                && taskdaemon_core::gate::succeeds_outcome(&task.id, change.to).is_some(),
        }
    }

    fn needed(&self) -> bool {
        self.moves_dependents || self.ends_gates
    }

    fn run(&self, tx: &mut Tx<'_>) -> Result<()> {
        if self.moves_dependents {
            tracked::refresh_dependents(tx, &self.id, &self.actor)?;
        }
        if self.ends_gates {
            gates::target_ended(tx, &self.id, self.to, &self.actor)?;
        }
        Ok(())
    }
}

/// [`apply`] for many tasks, each locked by the caller and named once: one
/// statement per shape of change (the set of columns it sets), so a batch
/// of claims or completions costs the round trips of one. The follow-ups
/// run only for the tasks something waits on (found in one query). Written
/// as of `now` (see [`apply_at`]).
fn apply_all(tx: &mut Tx<'_>, mut changes: Vec<(&TaskRecord, Change)>, now: i64) -> Result<()> {
    if changes.len() == 1 {
        // One change takes the one-row statement: its cached plan is used
        // as is, where the arrays' would be planned again on every call.
        if let Some((task, change)) = changes.pop() {
            return apply_at(tx, task, change, now);
        }
    }
    let mut shapes: Vec<batch::Shape<'_>> = Vec::new();
    let mut follow_ups = Vec::new();
    for (task, change) in changes {
        let (before, after) = change.check(task)?;
        let follow_up = FollowUp::of(task, &change);
        if follow_up.needed() {
            follow_ups.push(follow_up);
        }
        batch::Shape::add(&mut shapes, task, change, before, after);
    }
    for shape in &shapes {
        shape.write(tx, now)?;
    }
    run_follow_ups(tx, &follow_ups)
}

/// Runs the follow-ups of the tasks something waits on, found in one query
/// (most tasks have no dependents and no gates on them: one round trip
/// instead of one per kind of waiter).
fn run_follow_ups(tx: &mut Tx<'_>, follow_ups: &[FollowUp]) -> Result<()> {
    if follow_ups.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = follow_ups.iter().map(|f| f.id.as_str()).collect();
    let waiters = |id: &str| {
        format!(
            "WHERE EXISTS (SELECT 1 FROM task_deps d WHERE d.depends_on = {id})
                OR EXISTS (SELECT 1 FROM task_gates g WHERE g.kind = 'until-succeeds'
                             AND g.target = {id} AND g.opened_at IS NULL)"
        )
    };
    // One id by `=`, so its cached plan is kept (see `load_tasks`).
    let rows = match ids.as_slice() {
        [id] => tx.query_cached(
            &format!("SELECT $1::text {}", waiters("$1")),
            &[(id, Type::TEXT)],
        )?,
        _ => tx.query_cached(
            &format!(
                "SELECT c.id FROM unnest($1::text[]) AS c(id) {}",
                waiters("c.id")
            ),
            &[(&ids, Type::TEXT_ARRAY)],
        )?,
    };
    let awaited: std::collections::HashSet<String> = rows
        .iter()
        .map(|r| r.try_get(0))
        .collect::<std::result::Result<_, _>>()?;
    for follow_up in follow_ups.iter().filter(|f| awaited.contains(&f.id)) {
        follow_up.run(tx)?;
    }
    Ok(())
}

/// Reads tasks `ids` (stored ids) by id; missing ones are left out.
fn load_tasks(
    tx: &mut Tx<'_>,
    ids: &[&str],
) -> Result<std::collections::HashMap<String, TaskRecord>> {
    let rows = match ids {
        // One id by `=`: the server keeps the prepared statement's generic
        // plan, where for an array (whose generic plan guesses ten ids) it
        // plans one id again on every call.
        [id] => tx.query_cached(
            &format!("SELECT {TASK_COLUMNS} FROM tasks WHERE tasks.id = $1"),
            &[(id, Type::TEXT)],
        )?,
        _ => tx.query_cached(
            &format!("SELECT {TASK_COLUMNS} FROM tasks WHERE tasks.id = ANY($1)"),
            &[(&ids, Type::TEXT_ARRAY)],
        )?,
    };
    rows.iter()
        .map(|row| task_from_row(row).map(|task| (task.id.clone(), task)))
        .collect()
}

/// The id of a new task: `PREFIX-N` with the next number of the shared counter.
fn next_task_id(tx: &mut Tx<'_>, tool: Option<&str>) -> Result<String> {
    let number = next_counter(tx, "task_id")?;
    Ok(HumanId::for_tool(tool, number)?.to_string())
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

impl Store for PgStore {
    crate::wiring::shared_store_methods!();

    fn make_durable(&self) -> Result<()> {
        self.with_retry(|client| {
            let mut tx = client.transaction().map_err(Attempt::from_pg)?;
            // A transaction with an id writes a commit record, and a
            // synchronous commit flushes the log up to it: every earlier
            // commit with it, deferred ones included.
            tx.batch_execute("SET LOCAL synchronous_commit = on; SELECT txid_current()")
                .map_err(Attempt::from_pg)?;
            tx.commit().map_err(Attempt::from_commit)?;
            Ok(())
        })
    }

    fn append_event(&self, task_id: Option<&str>, event: &NewEvent) -> Result<Event> {
        let id = self.write(|tx| events::append(tx, task_id, event))?;
        self.sequence_events()?;
        self.read(|tx| events::by_id(tx, id))
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
                    Ok((parse_status(&status)?, count as u64))
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

    fn archive_events(&self, before: i64) -> Result<ArchiveReport> {
        self.sequence_events()?;
        archive::in_chunks(|| self.write(|tx| history::archive_one_chunk(tx, before)))
    }

    fn export(&self, sink: &mut dyn FnMut(crate::ExportRecord) -> Result<()>) -> Result<()> {
        self.sequence_events()?;
        // Not retried: records already handed to the sink cannot be taken back.
        let mut client = self.answering_connection()?;
        transfer::export(&mut client, sink)
    }

    fn begin_import(&self) -> Result<Box<dyn Importer + '_>> {
        let client = self.answering_connection()?;
        Ok(Box::new(transfer::begin_import(client, &self.url)?))
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

    fn work_waiter(&self) -> Result<Box<dyn WorkWaiter>> {
        Ok(Box::new(claim::PgWaiter::new(
            self.config.clone(),
            self.url.clone(),
        )?))
    }

    fn queue_items(&self, filter: &crate::QueueItemFilter) -> Result<Vec<QueueItem>> {
        self.read(|tx| queue::list(tx, filter))
    }

    fn event_waiter(&self) -> Result<Box<dyn WorkWaiter>> {
        Ok(Box::new(claim::PgWaiter::on_channel(
            self.config.clone(),
            self.url.clone(),
            claim::EVENTS_CHANNEL,
        )?))
    }

    fn kind_counts(&self) -> Result<Vec<(taskdaemon_core::TaskKind, u64)>> {
        self.read(queue::kind_counts)
    }

    fn event_tallies(&self) -> Result<crate::EventTallies> {
        self.read(|tx| {
            let row = tx.query_one(crate::EVENT_TALLIES_SQL, &[])?;
            Ok(crate::EventTallies {
                claims: u64::try_from(row.try_get::<_, i64>(0)?).unwrap_or(0),
                retries: u64::try_from(row.try_get::<_, i64>(1)?).unwrap_or(0),
            })
        })
    }
}
