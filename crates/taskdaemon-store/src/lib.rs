//! Durable state for taskdaemon.
//!
//! [`Store`] is the one source of truth. Every state change is one transaction
//! that updates the task row and appends its [`Event`]; the legality of a
//! status change is checked by [`taskdaemon_core::Status`] inside that
//! transaction. [`SqliteStore`] is the embedded default; [`PgStore`] keeps
//! the same state in PostgreSQL so workers on several hosts can share it.
//! [`open`] picks the backend from a location (a file path or a
//! `postgres://` URL); every part of taskdaemon opens the store through it.
//!
//! The trait is synchronous on purpose: the CLI opens the store, answers and
//! exits in a few milliseconds without an async runtime, and the daemon calls it
//! from blocking threads.
//!
//! Every rule is written once for both backends: what a change writes, the
//! event it appends and when it is refused are decided by `changes`,
//! `lifecycle` (processes), `leases` (claimed work) and `queue_items`; the
//! import flow is `import`, and the `Store` methods that only hand their
//! arguments on are wired once in `wiring`. `sqlite/` and `postgres/` hold
//! only SQL and connection plumbing.
//!
//! The `testing` feature adds `conformance` (the checks every backend
//! passes) and `testing` (PostgreSQL schemas for tests); they are for tests
//! and other crates' dev-dependencies, not part of the library.

mod archive;
mod changes;
pub mod claim;
mod durability;
pub use durability::deferred;
#[cfg(feature = "testing")]
pub mod conformance;
mod encoding;
mod error;
mod gates;
mod import;
pub use import::{SHARES_META_KEY, begin_merge_import, syncs_between_clones, without_secrets};
mod import_file;
pub use import_file::feed_export;
mod leases;
mod lifecycle;
mod location;
mod postgres;
mod queue_items;
mod search_text;
mod sqlite;
mod task_page;
#[cfg(feature = "testing")]
pub mod testing;
mod wiring;

use serde::{Deserialize, Serialize};
use taskdaemon_core::pipeline::{
    Delivery, MessageKind, MessageRecord, NewMessage, NewPhase, NewPlan, NewSpec, PhaseRecord,
    PipelineCost, PipelineStatus, PlanContent, PlanRecord, PlanTree, SpecRecord,
};
use taskdaemon_core::process::{ExitDecision, ExitOutcome, ProcessIdentity};
use taskdaemon_core::time::Millis;
use taskdaemon_core::tracked::{SearchHit, Session};
use taskdaemon_core::{
    ConfigVersion, Event, EventKind, LoopEnd, LoopIteration, LoopRecord, Memory, MemoryKind,
    NewAgent, NewConfigVersion, NewEvent, NewLoop, NewMemory, NewProcess, NewTracked, QueueCounts,
    QueueItem, Status, TaskKind, TaskRecord, TrackedAction, TrackedEdit,
};

pub use claim::{
    Claim, ClaimCompleted, Completion, HeldLease, Lease, MAX_BATCH, Released, WorkWaiter,
    WorkerInfo, WorkerRecord,
};
pub use error::StoreError;
pub use location::{Location, open, open_for_writing, redact_url};
pub use postgres::{PgOptions, PgStore};
pub use sqlite::{SqliteStore, leave_reads_to_process_exit};

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

/// An event as [`Store::newest_event_tasks`] lists it: where it is in the
/// log, and the task that raised it, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTask {
    pub seq: i64,
    pub task_id: Option<String>,
}

/// An ended process as [`Store::newest_ended`] lists it: enough to count it
/// and rank its summary line before the line is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedRef {
    pub id: String,
    pub status: Status,
    /// When its end was reported: the line's time if the task has no `finished_at`.
    pub at: Millis,
}

/// Which tasks (of every kind) a page of [`Store::task_page`] holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskPageFilter {
    pub status: Option<Status>,
    pub kind: Option<TaskKind>,
    /// Only tasks of this tool (lower-case).
    pub tool: Option<String>,
    pub session: Option<String>,
    /// Only items of this queue.
    pub queue: Option<String>,
    pub label: Option<String>,
    /// Only the task with exactly this canonical id.
    pub id: Option<String>,
    /// Only tasks created before the one with this UUID (the cursor).
    pub before_uuid: Option<String>,
    /// At most this many.
    pub limit: usize,
}

/// An ended task as analytics read it: when it ran, how it ended, and its
/// queue and result when it came from a queue.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedTask {
    pub uuid: String,
    pub id: String,
    pub kind: TaskKind,
    pub status: Status,
    pub queue: Option<String>,
    pub started_at: Option<Millis>,
    pub finished_at: Millis,
    pub error: Option<String>,
    /// The queue result JSON, once written.
    pub result: Option<serde_json::Value>,
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

/// Counts read from the event log, for metrics. Archiving old events
/// lowers them (a counter reset, to a scraper).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventTallies {
    /// Attempts of queue items claimed by a worker.
    pub claims: u64,
    /// Further attempts scheduled: a process restarted by its policy, a
    /// queue item put back after a failed or lost attempt.
    pub retries: u64,
}

/// The query behind [`Store::event_tallies`], the same on both backends:
/// two range scans of the `(kind, seq)` index. A claim is the `started`
/// event a worker writes (its actor is `worker:ID`).
/// The `after` of every exit event whose watcher gave the instant it saw
/// the exit (the same text for both backends; `after` is TEXT in both).
pub(crate) const EXIT_TIMINGS_SQL: &str = "SELECT after FROM events
    WHERE kind IN ('exited', 'restarting') AND after LIKE '%\"exited_at_us\"%'";

/// An exit as the shim saw it: the process, how it ended, why (a limit the
/// supervisor enforced), and when its wait returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectedExit {
    pub pid: i32,
    pub outcome: ExitOutcome,
    pub reason: Option<String>,
    /// Microseconds since the epoch when the wait for the process returned.
    pub exited_at_us: i64,
}

/// When an exit was seen and when it was written to the store, in
/// microseconds since the epoch: its detection latency is the difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitTiming {
    pub exited_at_us: i64,
    pub recorded_at_us: i64,
}

impl ExitTiming {
    /// The timing an exit event's `after` text carries, if it carries one.
    pub(crate) fn from_after(after: &str) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_str(after).ok()?;
        Some(Self {
            exited_at_us: value.get(lifecycle::EXITED_AT_US)?.as_i64()?,
            recorded_at_us: value.get(lifecycle::RECORDED_AT_US)?.as_i64()?,
        })
    }

    /// From the exit to its record, never negative.
    pub fn latency(&self) -> std::time::Duration {
        let micros = self.recorded_at_us.saturating_sub(self.exited_at_us).max(0);
        std::time::Duration::from_micros(micros.unsigned_abs())
    }
}

pub(crate) const EVENT_TALLIES_SQL: &str = "SELECT
    (SELECT COUNT(*) FROM events WHERE kind = 'started' AND actor LIKE 'worker:%'),
    (SELECT COUNT(*) FROM events WHERE kind = 'restarting')";

/// Which tracked tasks a listing returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackedFilter {
    pub status: Option<Status>,
    pub label: Option<String>,
    /// At most this many, the newest.
    pub limit: Option<usize>,
}

/// Which memories a listing returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryFilter {
    pub kind: Option<MemoryKind>,
    pub task_id: Option<String>,
    /// At most this many, the newest.
    pub limit: Option<usize>,
}

/// Which queue items a listing returns (see [`Store::queue_items`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueItemFilter {
    /// Only items of this queue.
    pub queue: Option<String>,
    /// Only items whose task is in this status.
    pub status: Option<Status>,
    /// At most this many, the newest.
    pub limit: Option<usize>,
}

/// Which plans a listing returns (oldest first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanFilter {
    /// Only plans not ended (neither succeeded, failed nor cancelled).
    pub open_only: bool,
    /// At most this many, the newest.
    pub limit: Option<usize>,
}

/// Which coordinator messages a listing returns (oldest first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageFilter {
    pub plan: Option<String>,
    /// Only messages to exactly this recipient.
    pub to: Option<String>,
    pub kind: Option<MessageKind>,
    /// Only messages in one of these delivery states (any when empty).
    pub delivery: Vec<Delivery>,
    /// At most this many, the newest.
    pub limit: Option<usize>,
}

/// Which events a history page holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryFilter {
    /// Only events at or after this time.
    pub since: Option<Millis>,
    /// Only events of this task (canonical id).
    pub task_id: Option<String>,
}

/// What [`Store::archive_events`] moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ArchiveReport {
    pub events: u64,
    pub chunks: u64,
}

/// What an integrity check found; empty means healthy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IntegrityReport {
    pub problems: Vec<String>,
}

/// What a repair did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RepairReport {
    /// Entries written into the rebuilt search index.
    pub reindexed: u64,
    /// Waiting tasks whose `pending`/`blocked` status was corrected.
    pub resettled: Vec<String>,
    /// Pipeline rows removed because their plan, spec, phase or loop task
    /// is gone (phases, specs, messages, loop records), each named.
    pub orphans_removed: Vec<String>,
    /// Problems still present after the repair.
    pub remaining: Vec<String>,
}

/// A task with everything an export keeps, its environment included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedTask {
    #[serde(flatten)]
    pub task: TaskRecord,
    pub env: Vec<(String, String)>,
}

/// The loop-specific row of a `loop` task: its spec and counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedLoop {
    pub task_id: String,
    pub spec: serde_json::Value,
    pub iterations: u32,
    pub tool_calls: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    pub last_exit: Option<i32>,
}

/// The first record of every export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportHeader {
    /// Always `taskdaemon-export`.
    pub format: String,
    pub version: u32,
    /// Schema version of the store that wrote it.
    pub schema: i64,
}

/// The name in [`ExportHeader::format`].
pub const EXPORT_FORMAT: &str = "taskdaemon-export";
/// The export layout this build writes and reads.
pub const EXPORT_VERSION: u32 = 1;

/// One record of an export, in the order they are written: header, counters,
/// meta, sessions, tasks, memory, queue items, loops, plans, specs, phases,
/// coordinator messages, the loops that ran them, gates, events (archived ones included, by seq).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExportRecord {
    Header(ExportHeader),
    Counter {
        name: String,
        value: i64,
    },
    Meta {
        key: String,
        value: String,
    },
    Session(Session),
    Task(Box<ExportedTask>),
    Memory(Memory),
    QueueItem(QueueItem),
    Loop(ExportedLoop),
    Plan(Box<PlanRecord>),
    /// Specs of a plan come in creation order.
    Spec(Box<SpecRecord>),
    Phase(Box<PhaseRecord>),
    Message(Box<MessageRecord>),
    /// A loop task that ran a plan, spec or phase (`node`), oldest first.
    PipelineLoop {
        plan: String,
        node: String,
        loop_task: String,
    },
    /// A tracked task's gate, by task then number.
    Gate(Box<taskdaemon_core::gate::Gate>),
    Event(Event),
}

/// Checks an import's first record; every backend's importer calls this.
pub(crate) fn check_import_header(record: &ExportRecord) -> Result<()> {
    match record {
        ExportRecord::Header(header) => {
            if header.format != EXPORT_FORMAT || header.version > EXPORT_VERSION {
                return Err(StoreError::Invalid(format!(
                    "unsupported export: format '{}' version {} (this build reads {EXPORT_FORMAT} version {EXPORT_VERSION})",
                    header.format, header.version
                )));
            }
            Ok(())
        }
        _ => Err(StoreError::Invalid(
            "not a taskdaemon export: the first record must be the header".to_owned(),
        )),
    }
}

/// The refusal to import into a store that holds something already.
pub(crate) fn import_needs_empty_store(location: &str, held: i64) -> StoreError {
    StoreError::Conflict(format!(
        "import needs an empty store, but {location} already holds {held} tasks, memories and events; \
         import into a new workspace (`taskdaemon --workspace DIR init`)"
    ))
}

/// How many records of each kind an import wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub tasks: u64,
    pub memory: u64,
    pub events: u64,
    pub sessions: u64,
    /// `import --merge`: known tasks replaced by the file's newer version.
    #[serde(skip_serializing_if = "is_zero")]
    pub updated: u64,
    /// `import --merge`: known tasks the file holds as stored.
    #[serde(skip_serializing_if = "is_zero")]
    pub unchanged: u64,
    /// `import --merge`: known tasks changed here after the file was made.
    #[serde(skip_serializing_if = "is_zero")]
    pub kept: u64,
    /// `import --merge`: records that stay per clone (events, memory,
    /// sessions, processes, queues, loops, plans).
    #[serde(skip_serializing_if = "is_zero")]
    pub skipped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What [`Store::merge_tracked`] did, task by task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MergeReport {
    pub added: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: u64,
    /// Changed here after the file's version: left as stored.
    pub kept: Vec<String>,
}

/// An import in progress: one transaction that commits in [`Importer::finish`]
/// and rolls back if dropped before, so a bad file writes nothing.
pub trait Importer {
    fn add(&mut self, record: ExportRecord) -> Result<()>;
    fn finish(self: Box<Self>) -> Result<ImportReport>;
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

    /// Records how the process `pid` ended and applies the restart policy;
    /// `reason` says why it ended when the supervisor ended it (a limit),
    /// and becomes the task's error. Refused with [`StoreError::Conflict`]
    /// when the task no longer runs that pid, so a late report can never
    /// overwrite a newer attempt.
    fn record_exit(
        &self,
        id: &str,
        pid: i32,
        outcome: ExitOutcome,
        reason: Option<&str>,
        actor: &str,
    ) -> Result<ExitRecorded>;

    /// [`record_exit`](Store::record_exit) for an exit its shim saw as it
    /// happened: the event also records when the wait returned and when the
    /// exit was written, for the detection-latency histogram.
    fn record_detected_exit(
        &self,
        id: &str,
        exit: &DetectedExit,
        actor: &str,
    ) -> Result<ExitRecorded>;

    /// The timing of every recorded exit a shim saw as it happened (events
    /// archived away are not counted).
    fn exit_timings(&self) -> Result<Vec<ExitTiming>>;

    /// Asks a task to stop: a running one gets `stop_requested` (its shim then
    /// records `cancelled`), a pending one is cancelled at once.
    fn request_stop(&self, id: &str, actor: &str) -> Result<TaskRecord>;

    /// Reopens an ended task as `pending` for a new start, counting a restart.
    fn reopen_for_restart(&self, id: &str, actor: &str) -> Result<TaskRecord>;

    /// `running -> lost`: the process vanished without a recorded exit.
    fn mark_lost(&self, id: &str, reason: &str, actor: &str) -> Result<TaskRecord>;

    /// Records the engine's id of container task `id`'s container.
    fn set_container_id(&self, id: &str, container_id: &str) -> Result<TaskRecord>;

    /// Appends an event that changes no row (alerts, adoption).
    fn append_event(&self, task_id: Option<&str>, event: &NewEvent) -> Result<Event>;

    /// Events after `after_seq`, oldest first, of the given kinds (all when empty).
    fn events_after(&self, after_seq: i64, kinds: &[EventKind], limit: usize)
    -> Result<Vec<Event>>;

    /// The newest `limit` events after `after_seq` of the given kinds (all
    /// when empty), oldest first.
    fn newest_events_after(
        &self,
        after_seq: i64,
        kinds: &[EventKind],
        limit: usize,
    ) -> Result<Vec<Event>>;

    /// The sequence number and task of each event that
    /// [`Store::newest_events_after`] returns for the same arguments, oldest
    /// first, without reading (or decoding) the rest of each event.
    fn newest_event_tasks(
        &self,
        after_seq: i64,
        kinds: &[EventKind],
        limit: usize,
    ) -> Result<Vec<EventTask>>;

    /// Among the newest `lookback` events of `kinds`, the newest that no
    /// task raised (no `task_id`) and whose message starts with `prefix`:
    /// the workspace-wide state some alerts carry (the loop-type
    /// configuration's). Reads whole only the event it returns.
    fn newest_untasked_event(
        &self,
        kinds: &[EventKind],
        prefix: &str,
        lookback: usize,
    ) -> Result<Option<Event>>;

    /// The tasks with these ids, in no particular order; unknown ids are left out.
    fn tasks_by_ids(&self, ids: &[String]) -> Result<Vec<TaskRecord>>;

    /// The running processes, oldest first, with the few columns a summary
    /// line shows (no log line: that is read from the log).
    fn running_items(&self) -> Result<Vec<taskdaemon_core::rehydrate::RunningItem>>;

    /// The processes whose end (exit, loss, failed start) is among the
    /// newest `limit` such events after `after_seq`: newest end first, one
    /// per task, only tasks still ended. Reads each task's id and status
    /// only: [`ended_items`](Store::ended_items) reads the lines a summary shows.
    fn newest_ended(&self, after_seq: i64, limit: usize) -> Result<Vec<EndedRef>>;

    /// The summary lines of these ended processes, in their order, with the
    /// few columns a line shows; a task deleted or restarted since is left out.
    fn ended_items(&self, ended: &[EndedRef])
    -> Result<Vec<taskdaemon_core::rehydrate::EndedItem>>;

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

    // --- Tracked work -----------------------------------------------------

    /// Creates a `manual` task, `blocked` when a dependency is not done.
    fn create_tracked(&self, new: &NewTracked, actor: &str) -> Result<TaskRecord>;

    /// Makes `task` depend on `depends_on`; refused when it would close a cycle.
    fn add_dependency(&self, task: &str, depends_on: &str, actor: &str) -> Result<TaskRecord>;

    /// Adds gates to a tracked task that has not started, all or none; the
    /// task is `blocked` until every gate opens. A gate whose event already
    /// happened (or never can) is decided at once.
    fn add_gates(
        &self,
        task: &str,
        gates: &[taskdaemon_core::gate::NewGate],
        actor: &str,
    ) -> Result<Vec<taskdaemon_core::gate::Gate>>;
    /// Removes gate `seq` of `task`, or every gate of it; `NotFound` when none matched.
    fn remove_gates(
        &self,
        task: &str,
        seq: Option<i64>,
        actor: &str,
    ) -> Result<Vec<taskdaemon_core::gate::Gate>>;
    /// Opens the waiting approval gates of `task`; `NotFound` when it has none.
    fn approve_gates(&self, task: &str, actor: &str) -> Result<Vec<taskdaemon_core::gate::Gate>>;
    /// Every gate of `task`, in order.
    fn gates(&self, task: &str) -> Result<Vec<taskdaemon_core::gate::Gate>>;
    /// Every gate that has not opened (waiting, or never opening), on every task.
    fn shut_gates(&self) -> Result<Vec<taskdaemon_core::gate::Gate>>;
    /// Stores what evaluating a waiting gate decided (a gate decided
    /// already is left as it is) and re-decides its task's status.
    fn resolve_gate(
        &self,
        task: &str,
        seq: i64,
        outcome: &taskdaemon_core::gate::GateOutcome,
        actor: &str,
    ) -> Result<taskdaemon_core::gate::Gate>;

    fn remove_dependency(&self, task: &str, depends_on: &str, actor: &str) -> Result<TaskRecord>;

    /// Start, done, fail or cancel a tracked task, through the state machine.
    fn act_on_tracked(&self, id: &str, action: &TrackedAction, actor: &str) -> Result<TaskRecord>;

    /// Changes a tracked task's title, description, priority or labels.
    fn edit_tracked(&self, id: &str, edit: &TrackedEdit, actor: &str) -> Result<TaskRecord>;

    /// Records files the work on a task touched.
    fn add_task_files(&self, id: &str, files: &[String], actor: &str) -> Result<TaskRecord>;

    /// Tracked tasks, oldest first.
    fn tracked(&self, filter: &TrackedFilter) -> Result<Vec<TaskRecord>>;

    /// Pending tracked tasks (every dependency done), by priority then age.
    fn ready(&self, limit: usize) -> Result<Vec<TaskRecord>>;

    /// The candidates for the current task (see
    /// [`taskdaemon_core::snapshot::pick_current`]): the running tracked task
    /// `session` started last, and the one anyone started last.
    fn current_candidates(&self, session: Option<&str>) -> Result<Vec<TaskRecord>>;

    /// Tracked tasks that succeeded, most recently finished first.
    fn recently_succeeded(&self, limit: usize) -> Result<Vec<TaskRecord>>;

    /// Links `from KIND to` (a blocking kind is refused when it would close
    /// a cycle, naming it); returns `from`. An existing link changes nothing.
    fn link_tasks(
        &self,
        from: &str,
        kind: taskdaemon_core::LinkKind,
        to: &str,
        actor: &str,
    ) -> Result<TaskRecord>;

    /// Removes the links `from KIND to` (of any kind when `None`); returns `from`.
    fn unlink_tasks(
        &self,
        from: &str,
        kind: Option<taskdaemon_core::LinkKind>,
        to: &str,
        actor: &str,
    ) -> Result<TaskRecord>;

    /// The ready tasks `next` chooses among (see [`taskdaemon_core::next`]).
    fn next_candidates(&self) -> Result<Vec<taskdaemon_core::next::NextCandidate>>;

    /// Waiting (`pending`/`blocked`) tracked tasks, most urgent first, with
    /// what each waits for.
    fn open_graph(&self) -> Result<Vec<taskdaemon_core::graph::OpenNode>>;

    /// Atomically claims task `id`, or the task `next` picks when `None`,
    /// for `claimant` with a lease of `lease_ms`: a ready task starts, a
    /// stale claim is taken over. `None` when nothing is ready.
    fn claim_tracked(
        &self,
        id: Option<&str>,
        claimant: &str,
        lease_ms: taskdaemon_core::time::Millis,
        actor: &str,
    ) -> Result<Option<TaskRecord>>;

    /// Extends every lease `claimant` holds to `lease_ms` from now (its
    /// activity keeps its claims); returns how many were extended.
    fn renew_claims(&self, claimant: &str, lease_ms: taskdaemon_core::time::Millis) -> Result<u64>;

    /// Claimed tasks whose lease ran out: anyone may claim them again.
    fn stale_claims(&self) -> Result<Vec<TaskRecord>>;

    // --- Memory and sessions ----------------------------------------------

    /// Records a memory (replacing the one with the same key, if any).
    fn remember(&self, new: &NewMemory, actor: &str) -> Result<Memory>;

    /// Memories, newest first.
    fn memories(&self, filter: &MemoryFilter) -> Result<Vec<Memory>>;

    /// The memory recorded under `key`, if any.
    fn memory_by_key(&self, key: &str) -> Result<Option<Memory>>;

    /// Ranked hits over tasks, memory and history.
    fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>>;

    /// Notes that a session is active (creating it on first sight).
    fn touch_session(&self, session: &str, tool: Option<&str>) -> Result<()>;

    fn end_session(&self, session: &str, actor: &str) -> Result<Session>;

    fn session(&self, session: &str) -> Result<Option<Session>>;

    /// The session seen most recently.
    fn latest_session(&self) -> Result<Option<Session>>;

    // --- LLM loops ----------------------------------------------------------

    /// Creates a `pending` loop task `LOOP-N` (the shared id counter) with
    /// its spec, and its `created` event.
    fn create_loop(&self, new: &NewLoop, actor: &str) -> Result<LoopRecord>;

    /// One loop with its spec and counters.
    fn loop_record(&self, id: &str) -> Result<LoopRecord>;

    /// Loops, oldest first: those not ended, or all of them.
    fn loops(&self, all: bool) -> Result<Vec<LoopRecord>>;

    /// `pending -> running`. A loop found `running` (its daemon died) stays
    /// running and gets an `adopted` event naming the iteration it resumes at.
    fn mark_loop_running(&self, id: &str, next_iteration: u32, actor: &str) -> Result<LoopRecord>;

    /// Adds a finished iteration to the loop's counters with its
    /// `iteration_finished` event, and to the pipeline record the loop is
    /// linked from, if any. Idempotent by iteration number: returns false
    /// and changes nothing when the iteration was recorded already.
    fn record_loop_iteration(
        &self,
        id: &str,
        iteration: &LoopIteration,
        actor: &str,
    ) -> Result<bool>;

    /// Ends a loop through the state machine (`exited` event, reason as note).
    fn finish_loop(&self, id: &str, end: &LoopEnd, actor: &str) -> Result<LoopRecord>;

    // --- Loop-type configuration versions ----------------------------------

    /// Records a loaded loop-type configuration as the next version, with a
    /// `config_loaded` event, unless the newest version has the same digest
    /// (then it returns that one and records nothing).
    fn record_config_version(&self, new: &NewConfigVersion, actor: &str) -> Result<ConfigVersion>;

    /// Configuration versions, newest first, without their resolved types.
    fn config_versions(&self, limit: usize) -> Result<Vec<ConfigVersion>>;

    /// One configuration version with its resolved types.
    fn config_version(&self, version: i64) -> Result<ConfigVersion>;

    // --- History, archive, transfer, health --------------------------------

    /// Up to `limit` events after `after_seq`, oldest first, archived ones included.
    fn history_page(
        &self,
        filter: &HistoryFilter,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<Event>>;

    /// Compresses events older than `before` into the archive; they stay
    /// searchable and in the history.
    fn archive_events(&self, before: Millis) -> Result<ArchiveReport>;

    /// Streams every record, in [`ExportRecord`] order, to `sink`.
    fn export(&self, sink: &mut dyn FnMut(ExportRecord) -> Result<()>) -> Result<()>;

    /// Starts an import into this store, which must hold no tasks, memory or events.
    fn begin_import(&self) -> Result<Box<dyn Importer + '_>>;

    /// Compacts closed tracked tasks (decay): each summary replaces its
    /// task's description and note, which are kept, stay searchable and
    /// come back with [`Store::restore_tracked`]. All or nothing.
    fn compact_tracked(
        &self,
        summaries: &[taskdaemon_core::decay::CompactSummary],
        actor: &str,
    ) -> Result<Vec<TaskRecord>>;

    /// Gives a compacted task its original description and note back.
    fn restore_tracked(&self, id: &str, actor: &str) -> Result<TaskRecord>;

    /// The original text of a compacted task; `None` when it is not compacted.
    fn task_original(&self, id: &str) -> Result<Option<taskdaemon_core::decay::Original>>;

    /// Closed tracked tasks that ended before `cutoff` and are not
    /// compacted, oldest first, at most `limit`.
    fn compact_candidates(&self, cutoff: Millis, limit: usize) -> Result<Vec<TaskRecord>>;

    /// Applies tracked (`manual`) tasks of an export to this store in one
    /// transaction (`import --merge`): new ones are added, known ones take
    /// the given version unless the stored one is newer; `counters` move up
    /// to the given values. An id naming another task here is refused.
    fn merge_tracked(
        &self,
        tasks: &[ExportedTask],
        counters: &[(String, i64)],
        actor: &str,
    ) -> Result<MergeReport>;

    /// Checks the database, the search index, the archive and the dependency invariants.
    fn check_integrity(&self) -> Result<IntegrityReport>;

    /// Rebuilds the search index and corrects waiting statuses.
    fn repair(&self, actor: &str) -> Result<RepairReport>;

    /// Writes a consistent copy of the store to `path` (which must not exist).
    fn backup(&self, path: &std::path::Path) -> Result<()>;

    // --- Folder queues -----------------------------------------------------

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

    // --- Claimed work (several workers, several hosts); see [`claim`] -------

    /// Like [`Store::create_agent`], but the task waits for a worker to
    /// [`claim`](Store::claim) it instead of a folder watcher, and waiting
    /// workers are woken.
    fn submit(&self, spec: &NewAgent, actor: &str) -> Result<TaskRecord>;

    /// Announces a worker (again), with a fresh heartbeat.
    fn register_worker(&self, worker: &WorkerInfo) -> Result<()>;

    /// Renews the worker's heartbeat and its leases on `tasks` (the ones it
    /// is running) for `lease`; returns those it still holds (one missing
    /// was taken over). A lease on a task not listed is left to expire: a
    /// claim whose commit the worker never heard of runs elsewhere.
    fn heartbeat(
        &self,
        worker: &str,
        tasks: &[String],
        lease: std::time::Duration,
    ) -> Result<Vec<HeldLease>>;

    /// Marks a worker stopped; it should hold no lease any more.
    fn stop_worker(&self, worker: &str) -> Result<()>;

    /// Workers on every host, the most recent heartbeat first.
    fn workers(&self) -> Result<Vec<WorkerRecord>>;

    /// Claims the oldest claimable task of `queues` (all queues when empty)
    /// with a lease of `lease`; `None` when nothing waits. Concurrent
    /// claimers never get the same task.
    fn claim(
        &self,
        worker: &str,
        queues: &[String],
        lease: std::time::Duration,
    ) -> Result<Option<Claim>>;

    /// Records how the attempt held by `lease` ended and applies the retry
    /// policy; a final end also records `result` and finishes the queue
    /// item. Refused with [`StoreError::Conflict`] when the lease is no
    /// longer current (it expired and the task was taken over).
    fn complete_claim(
        &self,
        lease: &Lease,
        outcome: ExitOutcome,
        result: &serde_json::Value,
    ) -> Result<ClaimCompleted>;

    /// Claims up to `max` (at most [`MAX_BATCH`]) of the oldest claimable
    /// tasks of `queues` in one transaction, each under its own lease; fewer
    /// (or none) when fewer wait. Concurrent claimers never get the same task.
    fn claim_batch(
        &self,
        worker: &str,
        queues: &[String],
        lease: std::time::Duration,
        max: usize,
    ) -> Result<Vec<Claim>>;

    /// [`complete_claim`](Store::complete_claim) for many attempts in one
    /// transaction. Each gets its own answer, in order: one whose lease is no
    /// longer current is a [`StoreError::Conflict`] and leaves the others be.
    /// The outer error means nothing was recorded.
    fn complete_claims(&self, ends: &[Completion]) -> Result<Vec<Result<ClaimCompleted>>>;

    /// Returns the tasks whose lease expired to their queue (or ends them
    /// when no attempt is left), waking workers.
    fn release_expired(&self, actor: &str) -> Result<Vec<Released>>;

    /// A waiter that wakes when work may have been submitted or released.
    fn work_waiter(&self) -> Result<Box<dyn WorkWaiter>>;

    // --- Listings and change notification for interfaces --------------------

    /// Queue items, folder and submitted alike, oldest first.
    fn queue_items(&self, filter: &QueueItemFilter) -> Result<Vec<QueueItem>>;

    /// A waiter that wakes when events may have been committed, by any
    /// process (PostgreSQL: on any host): `LISTEN` on PostgreSQL; SQLite
    /// watches its change counter, so `wait(Duration::ZERO)` is a cheap
    /// check of whether anything was committed since the last call.
    fn event_waiter(&self) -> Result<Box<dyn WorkWaiter>>;

    /// Makes every commit made so far durable, by any process and deferred
    /// or not (see [`deferred`]): what is acknowledged after this returns
    /// survives a power cut.
    fn make_durable(&self) -> Result<()>;

    /// A number that changes whenever anything is committed to the store,
    /// by any process, read cheaply; `None` when the backend cannot tell
    /// (PostgreSQL), so nothing may be cached on it. A read that starts
    /// after this call returns sees at least the state it stands for, which
    /// is what lets a cache of reads keyed on it stay correct.
    fn commit_version(&self) -> Result<Option<u64>> {
        Ok(None)
    }

    /// How many tasks are of each kind (kinds without tasks left out).
    fn kind_counts(&self) -> Result<Vec<(TaskKind, u64)>>;

    /// Claims and retries counted in the event log (for metrics).
    fn event_tallies(&self) -> Result<EventTallies>;

    /// Tasks that ended at or after `since`, in UUID order after
    /// `after_uuid` (`""` for the start), at most `limit`.
    fn finished_tasks(
        &self,
        since: Millis,
        after_uuid: &str,
        limit: usize,
    ) -> Result<Vec<FinishedTask>>;

    /// Tasks of every kind matching `filter`, newest first (by UUIDv7).
    fn task_page(&self, filter: &TaskPageFilter) -> Result<Vec<TaskRecord>>;

    // --- The Plan -> Spec -> Phase pipeline (see `taskdaemon_core::pipeline`) ---

    /// Creates plan `PLAN-N` (the shared id counter): `draft`, or `pending`
    /// when auto-approved, with its `plan_created` event.
    fn create_plan(&self, new: &NewPlan, actor: &str) -> Result<PlanRecord>;

    /// Sets the title, summary and body the plan loop submitted. Submitting
    /// the same content again changes nothing; other content is refused.
    fn submit_plan(&self, plan: &str, content: &PlanContent, actor: &str) -> Result<PlanRecord>;

    fn plan(&self, id: &str) -> Result<PlanRecord>;

    /// Plans, oldest first.
    fn plans(&self, filter: &PlanFilter) -> Result<Vec<PlanRecord>>;

    /// A plan with its specs (creation order) and their phases (by number).
    fn plan_tree(&self, id: &str) -> Result<PlanTree>;

    /// `draft -> pending`.
    fn approve_plan(&self, id: &str, actor: &str) -> Result<PlanRecord>;

    /// Cancels the plan and every spec and phase of it not yet ended, in one
    /// transaction, one event each.
    fn cancel_plan(&self, id: &str, reason: &str, actor: &str) -> Result<PlanTree>;

    /// Puts the plan (if paused or failed) and its paused, failed or blocked
    /// specs and phases back to `pending`; succeeded work stays.
    fn resume_plan(&self, id: &str, actor: &str) -> Result<PlanTree>;

    /// Moves a plan through the state machine, `note` saying why.
    fn set_plan_status(
        &self,
        id: &str,
        to: PipelineStatus,
        note: Option<&str>,
        actor: &str,
    ) -> Result<PlanRecord>;

    /// Adds specs to a plan as one set: all or none. A spec whose name the
    /// plan has already is returned as it is when its content is the same,
    /// and refuses the set otherwise; unknown dependencies and cycles
    /// refuse the set. Returns the records in the order given.
    fn add_specs(&self, plan: &str, specs: &[NewSpec], actor: &str) -> Result<Vec<SpecRecord>>;

    /// One spec, `PLAN-N/name`.
    fn spec(&self, id: &str) -> Result<SpecRecord>;

    fn set_spec_status(
        &self,
        id: &str,
        to: PipelineStatus,
        note: Option<&str>,
        actor: &str,
    ) -> Result<SpecRecord>;

    /// Adds phases to spec `PLAN-N/name`, numbered on from its last; the
    /// same idempotency as [`Store::add_specs`], by phase name.
    fn add_phases(&self, spec: &str, phases: &[NewPhase], actor: &str) -> Result<Vec<PhaseRecord>>;

    /// One phase, `PLAN-N/name/K`.
    fn phase(&self, id: &str) -> Result<PhaseRecord>;

    fn set_phase_status(
        &self,
        id: &str,
        to: PipelineStatus,
        note: Option<&str>,
        actor: &str,
    ) -> Result<PhaseRecord>;

    /// Records the loop task running a plan, spec or phase (any pipeline
    /// id), or that none does; every loop ever set is kept for
    /// [`Store::pipeline_loops`]. A pointer, not a state change: no event
    /// (the loop's own events tell its story). From then on every iteration
    /// [`Store::record_loop_iteration`] records for the loop is charged to
    /// the record it was first linked from (and everything above it), in
    /// the same transaction: once per iteration, whatever crashes around it.
    fn set_pipeline_loop(&self, id: &str, loop_task: Option<&str>) -> Result<()>;

    /// Every loop task that ran a plan, spec or phase of `plan` (as
    /// [`Store::set_pipeline_loop`] recorded them): `(pipeline id, loop
    /// task id)`, oldest first.
    fn pipeline_loops(&self, plan: &str) -> Result<Vec<(String, String)>>;

    /// Adds spending to a plan, spec or phase and to everything above it.
    /// Counters only, no event (the loop's `iteration_finished` events carry
    /// the same figures). Linked loops are charged by the store itself (see
    /// [`Store::set_pipeline_loop`]); this is for spending of other origin.
    fn add_pipeline_cost(&self, id: &str, cost: &PipelineCost) -> Result<()>;

    /// Pending specs of running plans whose dependencies all succeeded,
    /// highest spec priority first, then the oldest plan, then creation order.
    fn ready_specs(&self, limit: usize) -> Result<Vec<SpecRecord>>;

    // --- Coordinator messages -----------------------------------------------

    /// Stores a `pending` message `MSG-N` with its `message_sent` event; the
    /// recipient must be `human`, `plan` or a spec of the plan.
    fn send_message(&self, new: &NewMessage, actor: &str) -> Result<MessageRecord>;

    fn message(&self, id: &str) -> Result<MessageRecord>;

    /// Messages matching `filter`, oldest first.
    fn messages(&self, filter: &MessageFilter) -> Result<Vec<MessageRecord>>;

    /// Pending messages for `recipient` of `plan`: those addressed to it,
    /// broadcasts (`plan`) it did not send itself, and its own queries
    /// answered since it last read (their answer not delivered to it yet);
    /// oldest first.
    fn pending_messages(&self, plan: &str, recipient: &str) -> Result<Vec<MessageRecord>>;

    /// `pending -> delivered` (marking a delivered message again changes nothing).
    fn mark_message_delivered(&self, id: &str, actor: &str) -> Result<MessageRecord>;

    /// Answers a query that is pending or delivered.
    fn answer_message(&self, id: &str, answer: &str, actor: &str) -> Result<MessageRecord>;

    /// Moves an undeliverable message to the dead letters with its reason.
    fn dead_letter(&self, id: &str, reason: &str, actor: &str) -> Result<MessageRecord>;

    /// Answers query `id` as the loop of spec `spec` of `plan` (a loop
    /// answering another spec's question): refused unless the query was
    /// put to that spec and still waits.
    fn answer_as(
        &self,
        plan: &str,
        spec: &str,
        id: &str,
        answer: &str,
        actor: &str,
    ) -> Result<MessageRecord> {
        let plan = self.plan(plan)?;
        let query = self.message(id)?;
        query
            .check_answerable_by(&plan.id, spec)
            .map_err(StoreError::Conflict)?;
        self.answer_message(&query.id, answer, actor)
    }

    /// Records that the loop of spec `recipient` read message `id`: one
    /// addressed to it becomes delivered; a broadcast records that
    /// recipient's own delivery, leaving the other recipients' alone (so
    /// it no longer appears in [`Store::pending_messages`] for it); a query
    /// it asked, once answered, records the answer's delivery to it (in
    /// the query's `deliveries`), so the answer reaches it once. Doing it
    /// again changes nothing.
    fn deliver_message(&self, id: &str, recipient: &str, actor: &str) -> Result<MessageRecord>;

    /// Records that broadcast `id` cannot reach spec `recipient`, with why.
    fn dead_letter_for(
        &self,
        id: &str,
        recipient: &str,
        reason: &str,
        actor: &str,
    ) -> Result<MessageRecord>;

    /// Records a dead delivery, with the reason, for every spec of `plan`
    /// that ended after a pending broadcast was sent without its loop
    /// reading it; returns the broadcasts changed.
    fn settle_broadcasts(&self, plan: &str, actor: &str) -> Result<Vec<MessageRecord>>;
}
