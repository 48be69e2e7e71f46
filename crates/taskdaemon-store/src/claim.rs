//! Claiming queued work from several workers, possibly on several hosts.
//!
//! A task submitted with [`Store::submit`](crate::Store::submit) waits in
//! its queue until a worker claims it. The claim moves it `pending ->
//! running` and gives the worker a *lease*: the task is the worker's until
//! the lease expires, and the worker keeps it alive by heartbeat. A lease
//! that expires (the worker was killed, its host vanished) returns the task
//! to the queue; that attempt counts towards `max_attempts`
//! ([`taskdaemon_core::process::decide_after_lost_attempt`]).
//!
//! Every claim raises the item's lease *epoch*. Completion names the epoch it
//! was claimed under, and the store refuses it when the epoch moved on, so a
//! worker that lost its lease can never overwrite the result of the worker
//! that took the task over.
//!
//! Claims and completions also come in batches
//! ([`Store::claim_batch`](crate::Store::claim_batch),
//! [`Store::complete_claims`](crate::Store::complete_claims)): one
//! transaction, one commit and a fixed number of round trips for many tasks,
//! with the same rules per task as one at a time (the single forms are
//! batches of one). A batch is acknowledged as a whole once it commits.
//!
//! Lease times are read from the store's own clock (the database server's,
//! for PostgreSQL), never from a worker's, so hosts with skewed clocks agree
//! on when a lease ends.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use taskdaemon_core::process::{ExitDecision, ExitOutcome};
use taskdaemon_core::time::Millis;
use taskdaemon_core::{QueueItem, TaskRecord};

use crate::Result;

/// A worker announcing itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    /// Unique among all workers, e.g. `host:pid:random`.
    pub id: String,
    pub host: String,
    pub pid: u32,
    /// The queues it claims from; empty means every queue.
    pub queues: Vec<String>,
    /// How many tasks it runs at once.
    pub concurrency: u32,
}

/// A worker as the store last heard from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerRecord {
    pub id: String,
    pub host: String,
    pub pid: u32,
    pub queues: Vec<String>,
    pub concurrency: u32,
    pub started_at: Millis,
    /// The last heartbeat, by the store's clock.
    pub heartbeat_at: Millis,
    /// Set when it stopped cleanly.
    pub stopped_at: Option<Millis>,
    /// Tasks it holds a lease on now.
    pub running: Vec<String>,
}

/// The right to finish one attempt of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub task_id: String,
    pub worker: String,
    /// Raised by every claim; completion must name the current one.
    pub epoch: i64,
}

/// A task a worker has just claimed.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub task: TaskRecord,
    pub item: QueueItem,
    pub lease: Lease,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// When the lease ends unless renewed, by the store's clock.
    pub expires_at: Millis,
}

/// How one claimed attempt ended, for [`Store::complete_claims`](crate::Store::complete_claims).
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub lease: Lease,
    pub outcome: ExitOutcome,
    /// Recorded as the item's result when the attempt ends the task.
    pub result: serde_json::Value,
}

/// The most tasks one batch claims or completes (keeps a statement's
/// parameters and a transaction's locks bounded).
pub const MAX_BATCH: usize = 256;

/// A lease a heartbeat renewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldLease {
    pub lease: Lease,
    /// Someone asked for the task to stop: the worker should end the attempt.
    pub stop_requested: bool,
}

/// What [`Store::complete_claim`](crate::Store::complete_claim) decided.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimCompleted {
    pub task: TaskRecord,
    pub decision: ExitDecision,
}

/// What [`Store::release_expired`](crate::Store::release_expired) did to one task.
#[derive(Debug, Clone, PartialEq)]
pub struct Released {
    pub task_id: String,
    pub worker: String,
    pub decision: ExitDecision,
}

/// Waits for new work without polling the store in a loop.
///
/// PostgreSQL uses `LISTEN`/`NOTIFY`; SQLite (one host) watches its own
/// change counter.
pub trait WorkWaiter: Send {
    /// Returns `true` when work may have arrived, `false` when `timeout` passed.
    fn wait(&mut self, timeout: Duration) -> Result<bool>;

    /// Sleeps for `pause` without looking out for work: what arrives
    /// meanwhile is seen by the next [`wait`](Self::wait), at once. For a
    /// caller that passes wake-ups on at most once per pause, so that the
    /// waiter costs nothing while it would not act anyway.
    fn pause(&mut self, pause: Duration) {
        std::thread::sleep(pause);
    }
}
