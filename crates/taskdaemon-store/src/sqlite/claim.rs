//! Claimed work in SQLite: the same model as PostgreSQL's (see
//! `crate::claim`) for workers on one host. `BEGIN IMMEDIATE` already makes
//! every claim exclusive, so no row locks are needed; leases are timed by
//! this host's clock, which every worker shares.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, params};
use taskdaemon_core::TaskRecord;
use taskdaemon_core::process::ExitDecision;
use taskdaemon_core::time::now_millis;

use super::rows::{QUEUE_ITEM_COLUMNS, queue_item_from_row};
use super::{apply, load_task};
use crate::claim::{
    Claim, ClaimCompleted, Completion, HeldLease, Lease, Released, WorkWaiter, WorkerInfo,
    WorkerRecord,
};
use crate::encoding::to_json_text;
use crate::leases::{self, Ended, ItemAfter, millis};
use crate::{Result, StoreError};

/// Candidates looked at in one claim (each skipped one was cancelled while it waited).
const CLAIM_SCAN: usize = 16;
/// How often a waiter without a file watch looks for another connection's commit.
const WAIT_STEP: Duration = Duration::from_millis(20);
/// The first look for a commit after a write to the database's files; each
/// later look waits twice as long, up to [`RECHECK_MAX`].
const RECHECK_FIRST: Duration = Duration::from_micros(100);
const RECHECK_MAX: Duration = Duration::from_millis(2);
/// How long after a write to the database's files a waiter polls for the
/// commit to show (a commit's fsync comes between its write and its
/// publication).
const COMMIT_SETTLE: Duration = Duration::from_millis(100);
/// How long after a write a waiter still looks at every wake-up (see
/// `SqliteWaiter::may_have_changed`); after that an idle waiter's
/// time-outs run no SQL.
const LATE_COMMIT: Duration = Duration::from_secs(10);

pub(super) fn register(tx: &Connection, worker: &WorkerInfo) -> Result<()> {
    let now = now_millis();
    tx.execute(
        "INSERT INTO workers (id, host, pid, queues, concurrency, started_at, heartbeat_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
         ON CONFLICT(id) DO UPDATE SET host = excluded.host, pid = excluded.pid,
           queues = excluded.queues, concurrency = excluded.concurrency,
           heartbeat_at = excluded.heartbeat_at, stopped_at = NULL",
        params![
            worker.id,
            worker.host,
            worker.pid,
            to_json_text(&worker.queues),
            worker.concurrency,
            now
        ],
    )?;
    Ok(())
}

pub(super) fn heartbeat(
    tx: &Connection,
    worker: &str,
    tasks: &[String],
    lease: Duration,
) -> Result<Vec<HeldLease>> {
    let now = now_millis();
    let known = tx.execute(
        "UPDATE workers SET heartbeat_at = ?1 WHERE id = ?2",
        params![now, worker],
    )?;
    if known == 0 {
        return Err(StoreError::NotFound(format!("worker {worker}")));
    }
    let tasks = to_json_text(&tasks);
    tx.execute(
        "UPDATE queue_items SET lease_expires_at = ?1
         WHERE lease_owner = ?2 AND task_id IN (SELECT value FROM json_each(?3))",
        params![now + millis(lease), worker, tasks],
    )?;
    let mut stmt = tx.prepare_cached(
        "SELECT q.task_id, q.lease_epoch, t.stop_requested FROM queue_items q
         JOIN tasks t ON t.id = q.task_id
         WHERE q.lease_owner = ?1 AND q.task_id IN (SELECT value FROM json_each(?2))",
    )?;
    let rows = stmt.query_map(params![worker, tasks], |r| {
        Ok(HeldLease {
            lease: Lease {
                task_id: r.get(0)?,
                worker: worker.to_owned(),
                epoch: r.get(1)?,
            },
            stop_requested: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn stop(tx: &Connection, worker: &str) -> Result<()> {
    tx.execute(
        "UPDATE workers SET stopped_at = ?1, heartbeat_at = ?1 WHERE id = ?2",
        params![now_millis(), worker],
    )?;
    Ok(())
}

pub(super) fn workers(conn: &Connection) -> Result<Vec<WorkerRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, host, pid, queues, concurrency, started_at, heartbeat_at, stopped_at
         FROM workers ORDER BY heartbeat_at DESC, id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            WorkerRecord {
                id: r.get(0)?,
                host: r.get(1)?,
                pid: r.get(2)?,
                queues: Vec::new(),
                concurrency: r.get(4)?,
                started_at: r.get(5)?,
                heartbeat_at: r.get(6)?,
                stopped_at: r.get(7)?,
                running: Vec::new(),
            },
            r.get::<_, String>(3)?,
        ))
    })?;
    let mut workers = rows
        .map(|row| {
            let (mut record, queues) = row?;
            record.queues = serde_json::from_str(&queues).map_err(|e| StoreError::Malformed {
                field: "workers.queues",
                message: e.to_string(),
            })?;
            Ok(record)
        })
        .collect::<Result<Vec<_>>>()?;
    // The leased items in a second statement, read only when there is a
    // worker to hold one: most stores have none, and `status` pays for
    // preparing every statement it runs. Unordered, so that SQLite walks
    // the partial index of leased items rather than every item in id order.
    if !workers.is_empty() {
        let mut running: HashMap<String, Vec<String>> = HashMap::new();
        let mut stmt = conn.prepare_cached(
            "SELECT lease_owner, task_id FROM queue_items WHERE lease_owner IS NOT NULL",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))?;
        for row in rows {
            let (owner, task) = row?;
            running.entry(owner).or_default().push(task);
        }
        for worker in &mut workers {
            let mut tasks = running.remove(&worker.id).unwrap_or_default();
            tasks.sort_unstable();
            worker.running = tasks;
        }
    }
    Ok(workers)
}

/// Claims up to `max` tasks, oldest first, one after another inside the
/// caller's one transaction (`BEGIN IMMEDIATE` makes it exclusive; the
/// batch costs one commit).
pub(super) fn claim_batch(
    tx: &Connection,
    worker: &str,
    queues: &[String],
    lease: Duration,
    max: usize,
) -> Result<Vec<Claim>> {
    let queues_json = to_json_text(&queues);
    let mut claims = Vec::new();
    while claims.len() < max {
        match claim_one(tx, worker, &queues_json, lease)? {
            Some(claim) => claims.push(claim),
            None => break,
        }
    }
    Ok(claims)
}

fn claim_one(
    tx: &Connection,
    worker: &str,
    queues_json: &str,
    lease: Duration,
) -> Result<Option<Claim>> {
    for _ in 0..CLAIM_SCAN {
        let task_id: Option<String> = tx
            .prepare_cached(
                "SELECT task_id FROM queue_items
                 WHERE claimable = 1 AND finished = 0 AND lease_owner IS NULL
                   AND available_at <= ?1
                   AND (?2 = '[]' OR queue IN (SELECT value FROM json_each(?2)))
                 ORDER BY created_at, rowid LIMIT 1",
            )?
            .query_row(params![now_millis(), queues_json], |r| r.get(0))
            .optional()?;
        let Some(task_id) = task_id else {
            return Ok(None);
        };
        let task = load_task(tx, &task_id)?;
        if task.status.is_terminal() {
            // Cancelled while it waited: nothing to run, its item is done.
            tx.execute(
                "UPDATE queue_items SET finished = 1, finished_at = ?2, result = ?3
                 WHERE task_id = ?1",
                params![
                    task.id,
                    now_millis(),
                    leases::ended_while_waiting(&task).to_string()
                ],
            )?;
            continue;
        }
        return take(tx, worker, lease, task).map(Some);
    }
    Ok(None)
}

fn take(tx: &Connection, worker: &str, lease: Duration, task: TaskRecord) -> Result<Claim> {
    let expires_at = now_millis() + millis(lease);
    let (epoch, item) = tx.query_row(
        &format!(
            "UPDATE queue_items SET lease_owner = ?2, lease_epoch = lease_epoch + 1,
               lease_expires_at = ?3
             WHERE task_id = ?1 RETURNING lease_epoch, {QUEUE_ITEM_COLUMNS}"
        ),
        params![task.id, worker, expires_at],
        |r| Ok((r.get::<_, i64>("lease_epoch")?, queue_item_from_row(r)?)),
    )?;
    let item = item?;
    let mut granting = leases::claimed(&task, item, worker, (epoch, expires_at), now_millis());
    apply(tx, &task, granting.change)?;
    granting.claim.task = load_task(tx, &task.id)?;
    Ok(granting.claim)
}

/// Records many ends, one after another inside the caller's one
/// transaction. A refused end (see [`leases::decide_completion`]) writes
/// nothing and leaves the others be.
pub(super) fn complete_batch(
    tx: &Connection,
    ends: &[Completion],
) -> Result<Vec<Result<ClaimCompleted>>> {
    let mut seen = HashSet::new();
    ends.iter()
        .map(|end| {
            let holder: Option<(Option<String>, i64)> = tx
                .prepare_cached(
                    "SELECT lease_owner, lease_epoch FROM queue_items WHERE task_id = ?1",
                )?
                .query_row([&end.lease.task_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let task = holder
                .as_ref()
                .map(|_| load_task(tx, &end.lease.task_id))
                .transpose()?;
            let ended = match leases::decide_completion(
                end,
                holder,
                task.as_ref(),
                &mut seen,
                now_millis(),
            ) {
                Ok(ended) => ended,
                Err(refused) => return Ok(Err(refused)),
            };
            // Never `None` here: an end without its task is refused above.
            let Some(task) = task else {
                return Ok(Err(StoreError::NotFound(end.lease.task_id.clone())));
            };
            let decision = end_attempt(tx, &task, ended)?;
            let task = load_task(tx, &task.id)?;
            Ok(Ok(ClaimCompleted { task, decision }))
        })
        .collect()
}

/// Applies how an attempt ended to its task and its item; returns the decision.
fn end_attempt(tx: &Connection, task: &TaskRecord, ended: Ended) -> Result<ExitDecision> {
    apply(tx, task, ended.change)?;
    after_attempt(tx, &task.id, ended.item)?;
    Ok(ended.decision)
}

/// Clears the lease and either queues the item again or finishes it.
fn after_attempt(tx: &Connection, task_id: &str, after: ItemAfter) -> Result<()> {
    match after {
        ItemAfter::Requeue { delay_ms } => tx.execute(
            "UPDATE queue_items SET lease_owner = NULL, lease_expires_at = NULL,
               available_at = ?2 WHERE task_id = ?1",
            params![task_id, now_millis() + delay_ms],
        )?,
        ItemAfter::Finish { result } => tx.execute(
            "UPDATE queue_items SET lease_owner = NULL, lease_expires_at = NULL,
               finished = 1, result = ?2, finished_at = ?3 WHERE task_id = ?1",
            params![task_id, result, now_millis()],
        )?,
    };
    Ok(())
}

pub(super) fn release_expired(tx: &Connection, actor: &str) -> Result<Vec<Released>> {
    let expired: Vec<(String, String)> = tx
        .prepare_cached(
            "SELECT task_id, lease_owner FROM queue_items
             WHERE lease_owner IS NOT NULL AND lease_expires_at < ?1
             ORDER BY lease_expires_at",
        )?
        .query_map([now_millis()], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut released = Vec::with_capacity(expired.len());
    for (task_id, worker) in expired {
        let task = load_task(tx, &task_id)?;
        let Some(ended) = leases::lost(&task, &worker, now_millis(), actor) else {
            tx.execute(
                "UPDATE queue_items SET lease_owner = NULL, lease_expires_at = NULL
                 WHERE task_id = ?1",
                [&task_id],
            )?;
            continue;
        };
        let decision = end_attempt(tx, &task, ended)?;
        released.push(leases::released(task_id, worker, decision));
    }
    Ok(released)
}

/// Waits for another connection's commit. SQLite has no notifications:
/// a commit is seen as a change of `PRAGMA data_version` on a connection of
/// its own (a cheap read of the shared WAL index, no table is touched), and
/// looked for when the database's files are written (an inotify watch on
/// its folder, filtered to the database and its WAL), polling at growing
/// intervals only for [`COMMIT_SETTLE`] after a write, so an idle waiter
/// sleeps. Without a watch it looks every [`WAIT_STEP`].
///
/// With a watch, it looks only after a write (and for [`LATE_COMMIT`]
/// after one): a wait that times out long after the last write runs no
/// SQL, so a caller that wakes
/// every few seconds to check on something else costs no store read (and
/// brings back none of the memory an idle daemon handed back).
pub(super) struct SqliteWaiter {
    path: PathBuf,
    conn: Connection,
    seen: i64,
    /// Whether a write may have happened since the last look: set by a
    /// write event, and at first (the watch started after `seen` was read).
    unlooked: bool,
    /// Written-to signals from the watch; none when watching failed.
    written: Option<(taskdaemon_watch::DirWatch, mpsc::Receiver<()>)>,
    /// When the files were last seen written. A commit writes the WAL
    /// first and publishes itself in the shared-memory index after, which
    /// raises no event, so for a while after a write the waiter polls.
    written_at: Option<Instant>,
}

impl SqliteWaiter {
    pub(super) fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        let seen = conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
        Ok(Self {
            path: path.to_owned(),
            conn,
            seen,
            unlooked: true,
            written: watch_database(path),
            written_at: None,
        })
    }

    fn changed(&mut self) -> Result<bool> {
        self.unlooked = false;
        let version: i64 = self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?;
        let changed = version != self.seen;
        self.seen = version;
        Ok(changed)
    }

    /// Whether a commit may have happened that no look has seen: always
    /// without a watch; else after a write event, and for
    /// [`LATE_COMMIT`] after one (a commit shows once its log is synced,
    /// which on a slow disk can outlast the polling of [`COMMIT_SETTLE`]).
    fn may_have_changed(&self, now: Instant) -> bool {
        self.written.is_none()
            || self.unlooked
            || self
                .written_at
                .is_some_and(|at| now.duration_since(at) < LATE_COMMIT)
    }

    fn settling(&self, now: Instant) -> bool {
        self.written_at
            .is_some_and(|at| now.duration_since(at) < COMMIT_SETTLE)
    }
}

/// Watches the folder of database `path` for writes to the database or its
/// WAL; none (with a warning) when the watch cannot be set up.
fn watch_database(path: &Path) -> Option<(taskdaemon_watch::DirWatch, mpsc::Receiver<()>)> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty())?;
    let name = path.file_name()?.to_owned();
    let mut wal = name.clone();
    wal.push("-wal");
    let (tx, rx) = mpsc::sync_channel(1);
    let wanted = move |p: &Path| p.file_name().is_some_and(|n| n == name || n == wal);
    // A full channel already holds a wake-up: dropping this one loses nothing.
    // Writes only: every connection, a CLI's read-only one too, opens the
    // WAL read-write, and its close would otherwise wake every waiter.
    match taskdaemon_watch::watch_file_writes(dir, wanted, move || {
        let _ = tx.try_send(());
    }) {
        Ok(watch) => Some((watch, rx)),
        Err(e) => {
            tracing::warn!(database = %path.display(), error = %e, "cannot watch the database; polling it");
            None
        }
    }
}

impl WorkWaiter for SqliteWaiter {
    /// Lets go of the watch for the pause: while a folder is watched, each
    /// WAL page any process writes raises an event the watch thread reads
    /// and filters, a wake-up per page in a busy spell. The watch comes
    /// back after it, and the first wait then looks at once, so commits
    /// made meanwhile are seen.
    fn pause(&mut self, pause: Duration) {
        let watched = self.written.take().is_some();
        std::thread::sleep(pause);
        if watched {
            self.written = watch_database(&self.path);
        }
        self.unlooked = true;
        self.written_at = None;
    }

    fn wait(&mut self, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        let mut step = RECHECK_FIRST;
        loop {
            if self.may_have_changed(Instant::now()) && self.changed()? {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            let settling = self.settling(now);
            match &self.written {
                Some((_, written)) if !settling => match written.recv_timeout(deadline - now) {
                    Ok(()) => {
                        self.written_at = Some(Instant::now());
                        self.unlooked = true;
                        step = RECHECK_FIRST;
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    // The watch thread is gone: poll from now on.
                    Err(mpsc::RecvTimeoutError::Disconnected) => self.written = None,
                },
                Some((_, written)) => {
                    // More writes keep the window open; the commit usually
                    // shows within microseconds of its WAL write, or after
                    // its fsync, so look soon, then less often.
                    if written.try_recv().is_ok() {
                        self.written_at = Some(now);
                        self.unlooked = true;
                    }
                    std::thread::sleep(step.min(deadline - now));
                    step = (step * 2).min(RECHECK_MAX);
                }
                None => std::thread::sleep(WAIT_STEP.min(deadline - now)),
            }
        }
    }
}
