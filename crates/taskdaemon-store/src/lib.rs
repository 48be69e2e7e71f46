//! Durable state for taskdaemon.
//!
//! [`Store`] is the one source of truth. Every state change is one transaction
//! that updates the task row and appends its [`Event`]; the legality of a
//! status change is checked by [`taskdaemon_core::Status`] inside that
//! transaction. [`SqliteStore`] is the embedded default; a PostgreSQL
//! implementation joins behind the same trait.
//!
//! The trait is synchronous on purpose: the CLI opens the store, answers and
//! exits in a few milliseconds without an async runtime, and the daemon calls it
//! from blocking threads.

pub mod conformance;
mod error;
mod sqlite;

use taskdaemon_core::process::{ExitDecision, ExitOutcome, ProcessIdentity};
use taskdaemon_core::{
    Event, EventKind, NewAgent, NewEvent, NewProcess, QueueCounts, QueueItem, Status, TaskRecord,
};

pub use error::StoreError;
pub use sqlite::SqliteStore;

/// Result of store operations.
pub type Result<T> = std::result::Result<T, StoreError>;

/// Which processes a listing returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessFilter {
    /// Include ended processes too.
    pub all: bool,
    /// Only this tool (lower-case).
    pub tool: Option<String>,
    /// At most this many, newest first when limited.
    pub limit: Option<usize>,
}

/// A supervised command that has just been started by its shim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub process: ProcessIdentity,
    pub pgid: i32,
    pub shim: ProcessIdentity,
}

/// What [`Store::record_exit`] decided and stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ExitRecorded {
    pub task: TaskRecord,
    pub decision: ExitDecision,
}

/// The latest resource sample of a process group.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub task_id: String,
    pub at: i64,
    pub cpu_percent: f64,
    pub rss_kb: u64,
    /// Processes in the group, the command included.
    pub processes: u32,
}

/// The durable store behind every interface.
pub trait Store: Send + Sync {
    /// Creates a `pending` process task with the next id, and its `created` event.
    fn create_process(&self, spec: &NewProcess, actor: &str) -> Result<TaskRecord>;

    /// One task by human id (case-insensitive prefix).
    fn task(&self, id: &str) -> Result<TaskRecord>;

    /// Process tasks, oldest first.
    fn processes(&self, filter: &ProcessFilter) -> Result<Vec<TaskRecord>>;

    /// `pending -> running` with the identities of the command and its shim.
    /// `restarts` is the restart count the starter saw when it decided to
    /// start; if it changed since (someone else restarted the task), the start
    /// is refused with [`StoreError::Conflict`], so two shims never both run it.
    fn mark_started(
        &self,
        id: &str,
        restarts: u32,
        started: &Started,
        actor: &str,
    ) -> Result<TaskRecord>;

    /// `pending -> failed`: the command could not be started at all.
    fn record_start_failure(&self, id: &str, error: &str, actor: &str) -> Result<TaskRecord>;

    /// Records how the process `pid` ended and applies the restart policy.
    /// Refused with [`StoreError::Conflict`] when the task no longer runs that pid,
    /// so a late report can never overwrite a newer attempt.
    fn record_exit(
        &self,
        id: &str,
        pid: i32,
        outcome: ExitOutcome,
        actor: &str,
    ) -> Result<ExitRecorded>;

    /// Asks a task to stop: a running one gets `stop_requested` (its shim then
    /// records `cancelled`), a pending one is cancelled at once.
    fn request_stop(&self, id: &str, actor: &str) -> Result<TaskRecord>;

    /// Reopens an ended task as `pending` for a new start, counting a restart.
    fn reopen_for_restart(&self, id: &str, actor: &str) -> Result<TaskRecord>;

    /// `running -> lost`: the process vanished without a recorded exit.
    fn mark_lost(&self, id: &str, reason: &str, actor: &str) -> Result<TaskRecord>;

    /// Appends an event that changes no row (alerts, adoption).
    fn append_event(&self, task_id: Option<&str>, event: &NewEvent) -> Result<Event>;

    /// Events after `after_seq`, oldest first, of the given kinds (all when empty).
    fn events_after(&self, after_seq: i64, kinds: &[EventKind], limit: usize)
    -> Result<Vec<Event>>;

    /// The newest event's sequence number, 0 when there is none.
    fn last_event_seq(&self) -> Result<i64>;

    /// How many tasks are in each status.
    fn status_counts(&self) -> Result<Vec<(Status, u64)>>;

    /// A small named value (cursors, markers).
    fn meta(&self, key: &str) -> Result<Option<String>>;

    fn set_meta(&self, key: &str, value: &str) -> Result<()>;

    /// Replaces the latest resource samples, in one transaction.
    fn record_samples(&self, samples: &[Sample]) -> Result<()>;

    /// The latest sample of each task that has one.
    fn samples(&self) -> Result<Vec<Sample>>;

    /// Creates a `pending` agent task for a queue document, with its queue
    /// item and `created` event. The id is `spec.wanted_id` unless that is
    /// taken; then `~2`, `~3`, ... is appended. Lookups match the id as
    /// written before they try it as a `PREFIX-N` id.
    fn create_agent(&self, spec: &NewAgent, actor: &str) -> Result<TaskRecord>;

    /// The queue item of an agent task.
    fn queue_item(&self, task_id: &str) -> Result<QueueItem>;

    /// Items of `queue` whose result is not written yet, oldest first.
    fn open_queue_items(&self, queue: &str) -> Result<Vec<QueueItem>>;

    /// Records that the result of `task_id` was written and its document moved.
    /// The task must have ended.
    fn finish_queue_item(
        &self,
        task_id: &str,
        result: &serde_json::Value,
        actor: &str,
    ) -> Result<QueueItem>;

    /// Done, failed and open counts of every queue that has items.
    fn queue_counts(&self) -> Result<Vec<QueueCounts>>;
}
