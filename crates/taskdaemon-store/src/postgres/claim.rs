//! Claimed work in PostgreSQL: `FOR UPDATE SKIP LOCKED` claims, leases timed
//! by the server's clock, fenced completion, and `LISTEN`/`NOTIFY` wake-ups
//! (see `crate::claim` for the model).
//!
//! Locks are always taken queue item first, then task, so claims,
//! completions and releases never wait on each other in a circle.

use std::time::{Duration, Instant};

use postgres::NoTls;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::Type;
use taskdaemon_core::TaskRecord;
use taskdaemon_core::process::{ExitDecision, ExitOutcome};
use taskdaemon_core::time::now_millis;

use super::rows::{QUEUE_ITEM_COLUMNS, queue_item_from_row};
use super::{Tx, apply, load_task, lock_task};
use crate::claim::{
    Claim, ClaimCompleted, HeldLease, Lease, Released, WorkWaiter, WorkerInfo, WorkerRecord,
};
use crate::encoding::to_json_text;
use crate::leases::{self, Ended, ItemAfter, millis};
use crate::{Result, StoreError};

/// Candidates looked at in one claim before giving up (each skipped one was
/// cancelled while it waited).
const CLAIM_SCAN: usize = 16;
/// Expired leases released in one transaction.
const RELEASE_BATCH: i64 = 100;

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

pub(super) fn claim(
    tx: &mut Tx<'_>,
    worker: &str,
    queues: &[String],
    lease: Duration,
) -> Result<Option<Claim>> {
    for _ in 0..CLAIM_SCAN {
        // SKIP LOCKED: items another worker is claiming right now are not
        // waited for, they are simply not ours.
        // Two spellings, so each can walk its index in FIFO order.
        let candidate = if queues.is_empty() {
            tx.query_typed_opt(
                "SELECT task_id FROM queue_items
                 WHERE claimable AND NOT finished AND lease_owner IS NULL
                   AND available_at <= td_now_ms()
                 ORDER BY n LIMIT 1 FOR UPDATE SKIP LOCKED",
                &[],
            )?
        } else {
            tx.query_typed_opt(
                "SELECT task_id FROM queue_items
                 WHERE claimable AND NOT finished AND lease_owner IS NULL
                   AND available_at <= td_now_ms() AND queue = ANY($1)
                 ORDER BY n LIMIT 1 FOR UPDATE SKIP LOCKED",
                &[(&queues, Type::TEXT_ARRAY)],
            )?
        };
        let Some(row) = candidate else {
            return Ok(None);
        };
        let task_id: String = row.try_get(0)?;
        let task = lock_task(tx, &task_id)?;
        if task.status.is_terminal() {
            // Cancelled while it waited: nothing to run, its item is done.
            tx.execute(
                "UPDATE queue_items SET finished = TRUE, finished_at = $2,
                   result = $3 WHERE task_id = $1",
                &[
                    &task.id,
                    &now_millis(),
                    &leases::ended_while_waiting(&task).to_string(),
                ],
            )?;
            continue;
        }
        return take(tx, worker, lease, task).map(Some);
    }
    Ok(None)
}

/// Gives the locked, claimable `task` to `worker`.
fn take(tx: &mut Tx<'_>, worker: &str, lease: Duration, task: TaskRecord) -> Result<Claim> {
    let row = tx.query_typed_one(
        &format!(
            "UPDATE queue_items SET lease_owner = $2, lease_epoch = lease_epoch + 1,
               lease_expires_at = td_now_ms() + $3
             WHERE task_id = $1 RETURNING lease_epoch, lease_expires_at, {QUEUE_ITEM_COLUMNS}"
        ),
        &[
            (&task.id, Type::TEXT),
            (&worker, Type::TEXT),
            (&millis(lease), Type::INT8),
        ],
    )?;
    let epoch: i64 = row.try_get("lease_epoch")?;
    let expires_at: i64 = row.try_get("lease_expires_at")?;
    let item = queue_item_from_row(&row)?;
    let mut granting = leases::claimed(&task, item, worker, (epoch, expires_at), now_millis());
    apply(tx, &task, granting.change)?;
    granting.claim.task = load_task(tx, &task.id)?;
    Ok(granting.claim)
}

pub(super) fn complete(
    tx: &mut Tx<'_>,
    lease: &Lease,
    outcome: ExitOutcome,
    result: &serde_json::Value,
) -> Result<ClaimCompleted> {
    let holder = tx.query_typed_opt(
        "SELECT lease_owner, lease_epoch FROM queue_items WHERE task_id = $1 FOR UPDATE",
        &[(&lease.task_id, Type::TEXT)],
    )?;
    let Some(holder) = holder else {
        return Err(StoreError::NotFound(lease.task_id.clone()));
    };
    let owner: Option<String> = holder.try_get(0)?;
    let epoch: i64 = holder.try_get(1)?;
    leases::check_current(lease, owner.as_deref(), epoch)?;
    let task = lock_task(tx, &lease.task_id)?;
    let ended = leases::completed(&task, lease, outcome, result, now_millis());
    let decision = end_attempt(tx, &task, ended)?;
    let task = load_task(tx, &task.id)?;
    Ok(ClaimCompleted { task, decision })
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
            tx.execute_typed(
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
