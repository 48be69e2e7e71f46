//! Claimed work in PostgreSQL: `FOR UPDATE SKIP LOCKED` claims, leases timed
//! by the server's clock, fenced completion, and `LISTEN`/`NOTIFY` wake-ups
//! (see `crate::claim` for the model).
//!
//! Locks are always taken queue item first, then task, so claims,
//! completions and releases never wait on each other in a circle.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use postgres::NoTls;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::Type;
use taskdaemon_core::TaskRecord;
use taskdaemon_core::process::ExitDecision;
use taskdaemon_core::time::now_millis;

use super::announce::MARK;
use super::rows::{
    LEASED_ITEM_COLUMNS, QUEUE_ITEM_COLUMNS, TASK_COLUMNS, leased_item_from_row, task_from_row,
};
use super::{Tx, apply, apply_all, load_tasks, lock_task};
use crate::claim::{
    Claim, ClaimCompleted, Completion, HeldLease, Lease, Released, WorkWaiter, WorkerInfo,
    WorkerRecord,
};
use crate::encoding::to_json_text;
use crate::leases::{self, Ended, ItemAfter, millis};
use crate::{Result, StoreError};

/// Candidates looked at in one claim before giving up (each skipped one was
/// cancelled while it waited).
const CLAIM_SCAN: usize = 16;
/// Expired leases released in one transaction.
const RELEASE_BATCH: i64 = 100;

/// Keeps the plans of a claim's or completion's statements on the indexes.
/// Each reaches a batch of rows by key, but a connection keeps the plan
/// the server made at a statement's first runs, sized for the tables as
/// they were then: made on a young store (a few hundred rows), it scanned
/// and hashed all of `tasks` and `queue_items` on every later call (29,000
/// rows each per completion of 32, 1 ms of server CPU per claim). Off for
/// this transaction only; nothing else these transactions run wants them.
const KEYED_PLANS: &str = "SET LOCAL enable_seqscan = off; SET LOCAL enable_hashjoin = off; \
     SET LOCAL enable_mergejoin = off";

/// Plans this transaction's statements for keyed access (see [`KEYED_PLANS`]).
fn keyed_plans(tx: &mut Tx<'_>) -> Result<()> {
    tx.batch_execute(KEYED_PLANS)?;
    Ok(())
}

/// Wakes the workers listening on this schema; delivered at commit.
pub(super) fn notify(tx: &mut Tx<'_>, queue: &str) -> Result<()> {
    tx.execute(
        "SELECT pg_notify('td_work_' || current_schema(), $1)",
        &[&queue],
    )?;
    Ok(())
}

pub(super) fn register(tx: &mut Tx<'_>, worker: &WorkerInfo) -> Result<()> {
    tx.execute(
        "INSERT INTO workers (id, host, pid, queues, concurrency, started_at, heartbeat_at)
         VALUES ($1, $2, $3, $4, $5, td_now_ms(), td_now_ms())
         ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid,
           queues = excluded.queues, concurrency = excluded.concurrency,
           heartbeat_at = excluded.heartbeat_at, stopped_at = NULL",
        &[
            &worker.id,
            &worker.host,
            &i64::from(worker.pid),
            &to_json_text(&worker.queues),
            &i64::from(worker.concurrency),
        ],
    )?;
    Ok(())
}

pub(super) fn heartbeat(
    tx: &mut Tx<'_>,
    worker: &str,
    tasks: &[String],
    lease: Duration,
) -> Result<Vec<HeldLease>> {
    let known = tx.execute(
        "UPDATE workers SET heartbeat_at = td_now_ms() WHERE id = $1",
        &[&worker],
    )?;
    if known == 0 {
        return Err(StoreError::NotFound(format!("worker {worker}")));
    }
    let rows = tx.query(
        "UPDATE queue_items q SET lease_expires_at = td_now_ms() + $2
         FROM tasks t
         WHERE q.lease_owner = $1 AND q.task_id = ANY($3) AND t.id = q.task_id
         RETURNING q.task_id, q.lease_epoch, t.stop_requested",
        &[&worker, &millis(lease), &tasks],
    )?;
    rows.iter()
        .map(|r| {
            Ok(HeldLease {
                lease: Lease {
                    task_id: r.try_get(0)?,
                    worker: worker.to_owned(),
                    epoch: r.try_get(1)?,
                },
                stop_requested: r.try_get(2)?,
            })
        })
        .collect()
}

pub(super) fn stop(tx: &mut Tx<'_>, worker: &str) -> Result<()> {
    tx.execute(
        "UPDATE workers SET stopped_at = td_now_ms(), heartbeat_at = td_now_ms() WHERE id = $1",
        &[&worker],
    )?;
    Ok(())
}

pub(super) fn workers(tx: &mut Tx<'_>) -> Result<Vec<WorkerRecord>> {
    let rows = tx.query(
        "SELECT w.id, w.host, w.pid, w.queues, w.concurrency, w.started_at, w.heartbeat_at,
                w.stopped_at,
                (SELECT string_agg(q.task_id, E'\\n' ORDER BY q.task_id) FROM queue_items q
                  WHERE q.lease_owner = w.id) AS running
         FROM workers w ORDER BY w.heartbeat_at DESC, w.id",
        &[],
    )?;
    rows.iter()
        .map(|r| {
            let queues: String = r.try_get("queues")?;
            let running: Option<String> = r.try_get("running")?;
            Ok(WorkerRecord {
                id: r.try_get("id")?,
                host: r.try_get("host")?,
                pid: r.try_get::<_, i64>("pid")? as u32,
                queues: serde_json::from_str(&queues).map_err(|e| StoreError::Malformed {
                    field: "workers.queues",
                    message: e.to_string(),
                })?,
                concurrency: r.try_get::<_, i64>("concurrency")? as u32,
                started_at: r.try_get("started_at")?,
                heartbeat_at: r.try_get("heartbeat_at")?,
                stopped_at: r.try_get("stopped_at")?,
                running: running
                    .map(|t| t.split('\n').map(str::to_owned).collect())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Claims up to `max` tasks: one statement picks and leases the oldest
/// unleased items (`FOR UPDATE SKIP LOCKED`: items another claimer holds
/// are not waited for, they are simply not ours) and locks their tasks, one
/// starts them all. Items whose task was cancelled while it waited are
/// finished instead, and more are picked in their place.
pub(super) fn claim_batch(
    tx: &mut Tx<'_>,
    worker: &str,
    queues: &[String],
    lease: Duration,
    max: usize,
) -> Result<Vec<Claim>> {
    keyed_plans(tx)?;
    let mut claims = Vec::new();
    for _ in 0..CLAIM_SCAN {
        let want = max - claims.len();
        let picked = pick(tx, worker, queues, lease, want)?;
        if picked.is_empty() {
            break;
        }
        let drained = picked.len() < want;
        let (ended, waiting): (Vec<_>, Vec<_>) = picked
            .into_iter()
            .partition(|(task, _)| task.status.is_terminal());
        let skipped = !ended.is_empty();
        let ended: Vec<TaskRecord> = ended.into_iter().map(|(task, _)| task).collect();
        finish_ended(tx, &ended)?;
        claims.extend(start(tx, worker, waiting)?);
        if (drained && !skipped) || claims.len() >= max {
            break;
        }
    }
    Ok(claims)
}

/// An item [`pick`] leased, with its new lease.
struct Picked {
    item: taskdaemon_core::QueueItem,
    epoch: i64,
    expires_at: i64,
}

/// Picks and leases up to `want` claimable items of `queues`, oldest first,
/// and locks their tasks (item first, then task, in task order), in one
/// statement; returns each locked task with its item. A pick that finds
/// items marks the transaction: the store announces its events after
/// commit (see `announce.rs`).
fn pick(
    tx: &mut Tx<'_>,
    worker: &str,
    queues: &[String],
    lease: Duration,
    want: usize,
) -> Result<Vec<(TaskRecord, Picked)>> {
    // `td_claimable` (migration 14) walks the claimable items in FIFO
    // order down an index whatever the statistics say, and promises the
    // rest of the plan a small batch (no hash join over the queue).
    let sql = format!(
        "WITH picked AS (SELECT td_claimable AS picked_id FROM td_claimable($3, $4)),
         leased AS (
           UPDATE queue_items SET lease_owner = $1, lease_epoch = lease_epoch + 1,
             lease_expires_at = td_now_ms() + $2
           FROM picked WHERE task_id = picked.picked_id
           RETURNING n, lease_epoch, lease_expires_at, {QUEUE_ITEM_COLUMNS})
         SELECT {TASK_COLUMNS}, leased.n, leased.lease_epoch, leased.lease_expires_at,
           {LEASED_ITEM_COLUMNS}, (SELECT count(*) FROM leased) AS leased_count, {MARK}
         FROM leased JOIN tasks ON tasks.id = leased.task_id
         ORDER BY tasks.id FOR UPDATE OF tasks"
    );
    let lease_ms = millis(lease);
    // `claim_batch` caps `want` at `MAX_BATCH`.
    let want = i32::try_from(want).unwrap_or(i32::MAX);
    let params: [(&(dyn postgres::types::ToSql + Sync), Type); 4] = [
        (&worker, Type::TEXT),
        (&lease_ms, Type::INT8),
        (&queues, Type::TEXT_ARRAY),
        (&want, Type::INT4),
    ];
    let rows = tx.query_cached(&sql, &params)?;
    if let Some(first) = rows.first() {
        let leased: i64 = first.try_get("leased_count")?;
        if usize::try_from(leased).ok() != Some(rows.len()) {
            // An item without its task: nothing to start (the transaction
            // is rolled back, leases and all).
            return Err(StoreError::NotFound(format!(
                "the tasks of {} leased queue items (found {})",
                leased,
                rows.len()
            )));
        }
    }
    let mut picked = rows
        .iter()
        .map(|row| {
            Ok((
                row.try_get::<_, i64>("n")?,
                (
                    task_from_row(row)?,
                    Picked {
                        epoch: row.try_get("lease_epoch")?,
                        expires_at: row.try_get("lease_expires_at")?,
                        item: leased_item_from_row(row)?,
                    },
                ),
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    // Locked in task order; claimed in FIFO order, by `n`.
    picked.sort_by_key(|(n, _)| *n);
    Ok(picked.into_iter().map(|(_, picked)| picked).collect())
}

/// Finishes the picked items whose task ended (was cancelled) while they
/// waited: nothing to run. The lease `pick` gave them is taken back, epoch
/// and all, as if it had never been granted.
fn finish_ended(tx: &mut Tx<'_>, ended: &[TaskRecord]) -> Result<()> {
    if ended.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = ended.iter().map(|t| t.id.as_str()).collect();
    let results: Vec<String> = ended
        .iter()
        .map(|t| leases::ended_while_waiting(t).to_string())
        .collect();
    tx.execute_cached(
        "UPDATE queue_items q SET finished = TRUE, finished_at = $3, result = v.result,
           lease_owner = NULL, lease_expires_at = NULL, lease_epoch = q.lease_epoch - 1
         FROM unnest($1::text[], $2::text[]) AS v(id, result) WHERE q.task_id = v.id",
        &[
            (&ids, Type::TEXT_ARRAY),
            (&results, Type::TEXT_ARRAY),
            (&now_millis(), Type::INT8),
        ],
    )?;
    Ok(())
}

/// Starts the locked, leased tasks for `worker`; returns their claims, in
/// the order given.
fn start(tx: &mut Tx<'_>, worker: &str, waiting: Vec<(TaskRecord, Picked)>) -> Result<Vec<Claim>> {
    if waiting.is_empty() {
        return Ok(Vec::new());
    }
    let now = now_millis();
    let mut claims = Vec::with_capacity(waiting.len());
    let mut changes = Vec::with_capacity(waiting.len());
    for (task, picked) in &waiting {
        let granting = leases::claimed(
            task,
            picked.item.clone(),
            worker,
            (picked.epoch, picked.expires_at),
            now,
        );
        changes.push((task, granting.change));
        claims.push(granting.claim);
    }
    // The started tasks as written, without reading them back (a round
    // trip and the task columns' subqueries saved on every claim).
    let started: Option<Vec<TaskRecord>> = changes
        .iter()
        .map(|(task, change)| change.applied_to(task, now))
        .collect();
    apply_all(tx, changes, now)?;
    match started {
        Some(started) => {
            for (claim, task) in claims.iter_mut().zip(started) {
                claim.task = task;
            }
        }
        None => {
            let ids: Vec<&str> = claims.iter().map(|c| c.lease.task_id.as_str()).collect();
            let mut started = load_tasks(tx, &ids)?;
            for claim in &mut claims {
                match started.remove(&claim.lease.task_id) {
                    Some(task) => claim.task = task,
                    None => return Err(StoreError::NotFound(claim.lease.task_id.clone())),
                }
            }
        }
    }
    Ok(claims)
}

/// Records many ends: the items and their tasks are locked (in task order,
/// item first) in one statement and the leases fenced, every change written
/// in a statement per shape, and the items finished or queued again in a
/// statement each way; the answers carry the tasks as written (read back
/// only when a change sets a column `applied_to` does not map). A refused
/// end leaves the others be. The locking statement marks the transaction:
/// the store announces its events after commit (see `announce.rs`).
pub(super) fn complete_batch(
    tx: &mut Tx<'_>,
    ends: &[Completion],
) -> Result<Vec<Result<ClaimCompleted>>> {
    keyed_plans(tx)?;
    let ids: Vec<&str> = ends.iter().map(|e| e.lease.task_id.as_str()).collect();
    let locked = |condition: &str| {
        format!(
            "SELECT q.lease_owner, q.lease_epoch, {TASK_COLUMNS}, {MARK}
             FROM queue_items q JOIN tasks ON tasks.id = q.task_id
             WHERE {condition} ORDER BY q.task_id FOR UPDATE OF q, tasks"
        )
    };
    // One end by `=`, so its cached plan is kept (see `load_tasks`).
    let rows = match ids.as_slice() {
        [id] => tx.query_cached(&locked("q.task_id = $1"), &[(id, Type::TEXT)])?,
        _ => tx.query_cached(&locked("q.task_id = ANY($1)"), &[(&ids, Type::TEXT_ARRAY)])?,
    };
    let mut holders: HashMap<String, (Option<String>, i64)> = HashMap::new();
    let mut tasks: HashMap<String, TaskRecord> = HashMap::new();
    for row in rows {
        let task = task_from_row(&row)?;
        holders.insert(
            task.id.clone(),
            (row.try_get("lease_owner")?, row.try_get("lease_epoch")?),
        );
        tasks.insert(task.id.clone(), task);
    }
    let now = now_millis();
    let mut seen = HashSet::new();
    // Each end decided before anything is written: a refusal writes nothing.
    let decided: Vec<Result<(&TaskRecord, Ended)>> = ends
        .iter()
        .map(|end| {
            let holder = holders.get(&end.lease.task_id).cloned();
            let task = tasks.get(&end.lease.task_id);
            let ended = leases::decide_completion(end, holder, task, &mut seen, now)?;
            Ok((
                task.ok_or_else(|| StoreError::NotFound(end.lease.task_id.clone()))?,
                ended,
            ))
        })
        .collect();
    let mut changes = Vec::new();
    // The ended tasks as written (see `start`); read back only when a
    // change sets a column `applied_to` does not map.
    let mut ended_tasks: Option<HashMap<String, TaskRecord>> = Some(HashMap::new());
    let mut finish: (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    let mut requeue: (Vec<&str>, Vec<i64>) = (Vec::new(), Vec::new());
    for (task, ended) in decided.iter().flatten() {
        ended_tasks = ended_tasks.and_then(|mut tasks| {
            tasks.insert(task.id.clone(), ended.change.applied_to(task, now)?);
            Some(tasks)
        });
        changes.push((*task, ended.change.clone()));
        match &ended.item {
            ItemAfter::Finish { result } => {
                finish.0.push(&task.id);
                finish.1.push(result);
            }
            ItemAfter::Requeue { delay_ms } => {
                requeue.0.push(&task.id);
                requeue.1.push(*delay_ms);
            }
        }
    }
    apply_all(tx, changes, now)?;
    finish_items(tx, &finish.0, &finish.1, now)?;
    requeue_items(tx, &requeue.0, &requeue.1)?;
    let mut after = match ended_tasks {
        Some(tasks) => tasks,
        None => {
            let done: Vec<&str> = decided
                .iter()
                .flatten()
                .map(|(t, _)| t.id.as_str())
                .collect();
            load_tasks(tx, &done)?
        }
    };
    decided
        .into_iter()
        .map(|decided| {
            let (task, ended) = match decided {
                Ok(decided) => decided,
                Err(refused) => return Ok(Err(refused)),
            };
            let task = after
                .remove(&task.id)
                .ok_or_else(|| StoreError::NotFound(task.id.clone()))?;
            Ok(Ok(ClaimCompleted {
                task,
                decision: ended.decision,
            }))
        })
        .collect()
}

/// Clears the leases of `ids` and finishes their items with `results`.
fn finish_items(tx: &mut Tx<'_>, ids: &[&str], results: &[&str], now: i64) -> Result<()> {
    if let ([id], [result]) = (ids, results) {
        // One item by `=`: the server keeps this statement's generic plan,
        // where the arrays' one is planned again on every call.
        tx.execute_cached(
            "UPDATE queue_items SET lease_owner = NULL, lease_expires_at = NULL,
               finished = TRUE, result = $2, finished_at = $3
             WHERE task_id = $1",
            &[(id, Type::TEXT), (result, Type::TEXT), (&now, Type::INT8)],
        )?;
        return Ok(());
    }
    if ids.is_empty() {
        return Ok(());
    }
    tx.execute_cached(
        "UPDATE queue_items q SET lease_owner = NULL, lease_expires_at = NULL,
           finished = TRUE, result = v.result, finished_at = $3
         FROM unnest($1::text[], $2::text[]) AS v(id, result) WHERE q.task_id = v.id",
        &[
            (&ids, Type::TEXT_ARRAY),
            (&results, Type::TEXT_ARRAY),
            (&now, Type::INT8),
        ],
    )?;
    Ok(())
}

/// Clears the leases of `ids` and queues their items again after each
/// delay, waking the workers of their queues.
fn requeue_items(tx: &mut Tx<'_>, ids: &[&str], delays: &[i64]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    tx.execute_cached(
        "WITH again AS (
           UPDATE queue_items q SET lease_owner = NULL, lease_expires_at = NULL,
             available_at = td_now_ms() + v.delay_ms
           FROM unnest($1::text[], $2::int8[]) AS v(id, delay_ms) WHERE q.task_id = v.id
           RETURNING q.queue)
         SELECT pg_notify('td_work_' || current_schema(), queue)
         FROM (SELECT DISTINCT queue FROM again) AS queues",
        &[(&ids, Type::TEXT_ARRAY), (&delays, Type::INT8_ARRAY)],
    )?;
    Ok(())
}

/// Applies how an attempt ended to its task and its item; returns the decision.
fn end_attempt(tx: &mut Tx<'_>, task: &TaskRecord, ended: Ended) -> Result<ExitDecision> {
    apply(tx, task, ended.change)?;
    after_attempt(tx, &task.id, ended.item)?;
    Ok(ended.decision)
}

/// Clears the lease and either queues the item again (waking workers) or
/// finishes it.
fn after_attempt(tx: &mut Tx<'_>, task_id: &str, after: ItemAfter) -> Result<()> {
    match after {
        ItemAfter::Requeue { delay_ms } => {
            let queue: String = tx
                .query_one(
                    "UPDATE queue_items SET lease_owner = NULL, lease_expires_at = NULL,
                       available_at = td_now_ms() + $2
                     WHERE task_id = $1 RETURNING queue",
                    &[&task_id, &delay_ms],
                )?
                .try_get(0)?;
            notify(tx, &queue)
        }
        ItemAfter::Finish { result } => {
            tx.execute_cached(
                "UPDATE queue_items SET lease_owner = NULL, lease_expires_at = NULL,
                   finished = TRUE, result = $2, finished_at = $3
                 WHERE task_id = $1",
                &[
                    (&task_id, Type::TEXT),
                    (&result, Type::TEXT),
                    (&now_millis(), Type::INT8),
                ],
            )?;
            Ok(())
        }
    }
}

pub(super) fn release_expired(tx: &mut Tx<'_>, actor: &str) -> Result<Vec<Released>> {
    let rows = tx.query(
        "SELECT task_id, lease_owner FROM queue_items
         WHERE lease_owner IS NOT NULL AND lease_expires_at < td_now_ms()
         ORDER BY lease_expires_at LIMIT $1 FOR UPDATE SKIP LOCKED",
        &[&RELEASE_BATCH],
    )?;
    let mut released = Vec::with_capacity(rows.len());
    for row in rows {
        let task_id: String = row.try_get(0)?;
        let worker: String = row.try_get(1)?;
        let task = lock_task(tx, &task_id)?;
        let Some(ended) = leases::lost(&task, &worker, now_millis(), actor) else {
            tx.execute(
                "UPDATE queue_items SET lease_owner = NULL, lease_expires_at = NULL
                 WHERE task_id = $1",
                &[&task_id],
            )?;
            continue;
        };
        let decision = end_attempt(tx, &task, ended)?;
        released.push(leases::released(task_id, worker, decision));
    }
    Ok(released)
}

/// Waits on `LISTEN td_work_<schema>` on a connection of its own,
/// reconnecting when it drops.
pub(super) struct PgWaiter {
    config: postgres::Config,
    url: String,
    client: Option<postgres::Client>,
    /// The channel's prefix; the schema name completes it.
    channel: &'static str,
}

impl PgWaiter {
    pub(super) fn new(config: postgres::Config, url: String) -> Result<Self> {
        Self::on_channel(config, url, "td_work_")
    }

    /// A waiter on `<channel><schema>` instead of the work channel.
    pub(super) fn on_channel(
        config: postgres::Config,
        url: String,
        channel: &'static str,
    ) -> Result<Self> {
        let mut waiter = Self {
            config,
            url,
            client: None,
            channel,
        };
        waiter.connect()?;
        Ok(waiter)
    }

    fn connect(&mut self) -> Result<()> {
        let mut client = self
            .config
            .connect(NoTls)
            .map_err(|e| StoreError::Unreachable {
                url: self.url.clone(),
                message: super::error_chain(&e),
            })?;
        let schema: String = client.query_one("SELECT current_schema()", &[])?.get(0);
        client.batch_execute(&format!("LISTEN \"{}{schema}\"", self.channel))?;
        self.client = Some(client);
        Ok(())
    }
}

impl WorkWaiter for PgWaiter {
    fn wait(&mut self, timeout: Duration) -> Result<bool> {
        let Some(client) = self.client.as_mut() else {
            let started = Instant::now();
            return match self.connect() {
                // Notifications may have been missed while disconnected.
                Ok(()) => Ok(true),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for work; retrying");
                    std::thread::sleep(timeout.saturating_sub(started.elapsed()));
                    Ok(false)
                }
            };
        };
        let outcome = {
            let mut notifications = client.notifications();
            let first = notifications.timeout_iter(timeout).next();
            if let Ok(Some(_)) = first {
                // Drain what else arrived; one wake-up covers them all.
                while let Ok(Some(_)) = notifications.iter().next() {}
            }
            first.map(|n| n.is_some())
        };
        match outcome {
            Ok(woken) => Ok(woken),
            Err(e) => {
                tracing::warn!(error = %e, "the work listener dropped; reconnecting");
                self.client = None;
                Ok(true)
            }
        }
    }
}

/// The channel prefix every committed event is announced on (a trigger of
/// migration 3 notifies `td_events_<schema>` once per inserting statement).
pub(super) const EVENTS_CHANNEL: &str = "td_events_";
