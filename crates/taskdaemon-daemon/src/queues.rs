//! Folder-queue workers: one tokio task per configured queue.
//!
//! A worker starts its queue's documents in file-name order (higher
//! `priority:` first) and runs up to the queue's `concurrency` of them at
//! once (one by default, so each waits for the one before it to end),
//! while the workers of different queues run in parallel. It wakes on
//! inotify events in `pending/` (and rescans now and then in case an event
//! was lost; a worker with a backlog lists `pending/` before each document
//! anyway, so it lets go of the watch until it runs out of documents),
//! waits until a document has stopped changing, records it in
//! the store as an `agent` task, and launches it under a shim like any
//! process, so the executor outlives the daemon. Each running document has
//! a driver of its own that follows it to its end.
//!
//! Everything a worker needs to pick up after a crash is in the store: on
//! start it first drives the queue items that have no result yet (still
//! running, ended while the daemon was down, or never launched) before it
//! takes a new document. Lock files are projections; a lock whose owner is
//! gone and that the store knows nothing of is removed, and its document
//! runs.
//!
//! A worker starts its documents' shims through a standby shim of its own
//! (see [`taskdaemon_supervisor::standby`]): a process started once that
//! forks each shim, so the exec and start-up of the binary are off the
//! path from a document to its running command. The worker keeps it while
//! documents come, and lets it go after [`STANDBY_IDLE`] without one.
//!
//! Writing an ended task's result, report and folder moves (several
//! fsyncs) is handed to the worker's finisher, so the next document starts
//! meanwhile; the finisher keeps the order, and until it is done the item
//! stays open in the store and its document is not picked up again.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::process::Signal;
use taskdaemon_core::duration::format_duration;
use taskdaemon_core::time::{now_millis, to_rfc3339};
use taskdaemon_core::{EventKind, NewEvent, QueueItem, Status, TaskRecord};
use taskdaemon_queue::executor::{ExecutorSettings, agent_spec, malformed_spec, stem};
use taskdaemon_queue::folder::{DocumentRead, Outcome, is_document_name};
use taskdaemon_queue::{
    ExecutorKind, LockFile, QueueFolder, TaskDocument, TaskResult, output_tail,
};
use taskdaemon_store::{QueueItemFilter, StoreError};
use taskdaemon_supervisor::group::Group;
use taskdaemon_supervisor::standby::Standby;
use taskdaemon_workspace::{Config, QueuesConfig};
use tokio::sync::Notify;

use taskdaemon_watch as fswatch;

use crate::blocking::blocking;
use crate::follow::{follow, follow_from, launch, launch_with};
use crate::state::{ACTOR, Daemon, Shared};

/// Rescan `pending/` this often when it is not watched (watching disabled
/// or impossible), or while a document waits for the holder of its lock,
/// a process elsewhere whose end raises no event here.
const RESCAN_UNWATCHED: Duration = Duration::from_secs(5);
/// Rescan a watched `pending/` this often: inotify loses no events short of
/// a queue overflow (which notify reports, and which wakes the worker), so
/// this only bounds the cost of a bug; an idle worker sleeps meanwhile.
/// Rarely: each rescan reads the store and lists the folder, and brings
/// back into memory the code an idle daemon handed back.
const RESCAN_WATCHED: Duration = Duration::from_secs(600);
/// How long a busy worker (one that does not watch `pending/`: it has just
/// started a document) picks documents from its last listing of
/// `pending/` before it lists the folder again. A backlog of N documents
/// then costs a directory read of N entries every so often instead of for
/// every document; a document that came meanwhile, whatever its priority,
/// waits at most this much longer to be considered, and a lock that a
/// process elsewhere took meanwhile is seen as much later.
const LISTING_REUSE: Duration = Duration::from_millis(100);
/// How often a worker re-reads a running task besides waiting for its end.
const POLL: Duration = Duration::from_secs(1);
/// Grace period for an executor that ran past its timeout.
const TIMEOUT_GRACE: Duration = Duration::from_secs(5);
/// Lines of output kept in the report of a task without a final text.
const REPORT_TAIL_LINES: usize = 40;
/// How long a worker keeps its standby shim with no document to hand it:
/// long enough to bridge the gaps of a steady trickle, short enough that
/// an idle queue holds no extra process for long.
pub(crate) const STANDBY_IDLE: Duration = Duration::from_secs(30);

/// A running worker, as the daemon keeps it.
pub(crate) struct WorkerHandle {
    task: tokio::task::AbortHandle,
    /// Its queue's `concurrency`, which a config reload changes in place.
    concurrency: tokio::sync::watch::Sender<u32>,
}

/// What a worker shares with the drivers of its running documents.
struct Lane {
    daemon: Shared,
    folder: QueueFolder,
    /// Ended tasks handed to the finisher and not finished yet: task id to
    /// document name.
    finishing: Finishing,
    to_finisher: tokio::sync::mpsc::UnboundedSender<Ended>,
}

/// One queue's worker and what it runs with.
struct Worker {
    lane: Arc<Lane>,
    settings: QueuesConfig,
    executors: ExecutorSettings,
    wake: Arc<Notify>,
    /// How many documents may run at once.
    concurrency: tokio::sync::watch::Receiver<u32>,
    /// The drivers of the running documents, each following one to its end.
    drivers: tokio::task::JoinSet<()>,
    /// Per driver: the task it follows and that task's document.
    driven: HashMap<tokio::task::Id, (String, String)>,
    /// The watch on `pending/`, while the worker waits for documents (see
    /// [`Worker::watch_while_waiting`]).
    watch: Option<fswatch::DirWatch>,
    /// Priorities of documents already read, by file name.
    priorities: HashMap<String, i32>,
    /// Entries refused and reported that stay in `pending/` (a directory,
    /// FIFO, socket or device named like a document): reported once, then
    /// passed over while they stay.
    refused_in_place: HashSet<String>,
    /// The last listing of `pending/`, while the worker is busy (see
    /// [`LISTING_REUSE`]).
    listed: Option<Listed>,
    /// A shim started ahead of the next document, waiting for its task id
    /// (see [`taskdaemon_supervisor::standby`]).
    standby: Option<Standby>,
    /// When the worker last started a document: a standby is kept for
    /// [`STANDBY_IDLE`] after that.
    last_start: Option<Instant>,
}

type Finishing = Arc<std::sync::Mutex<HashMap<String, String>>>;

/// An ended task whose result is still to be written.
struct Ended {
    item: QueueItem,
    task: TaskRecord,
    extra_error: Option<String>,
}

/// Starts a worker for every `[[queue]]` of `config` that has none, tells
/// the others their queue's concurrency, and stops the workers of queues no
/// longer configured.
pub(crate) fn sync_workers(daemon: &Shared, config: &Config) {
    let mut workers = daemon.workers.lock().unwrap_or_else(|p| p.into_inner());
    workers.retain(|id, handle| {
        let keep = config.queue_entry(id).is_some() && !handle.task.is_finished();
        if !keep {
            handle.task.abort();
            tracing::info!(queue = id, "worker stopped");
        }
        keep
    });
    for entry in &config.queue {
        if let Some(handle) = workers.get(entry.id()) {
            handle.concurrency.send_if_modified(|now| {
                let changed = *now != entry.concurrency;
                *now = entry.concurrency;
                changed
            });
            continue;
        }
        let folder = QueueFolder::new(entry.id(), &daemon.workspace.resolve(&entry.path));
        if let Err(e) = folder.create() {
            tracing::error!(queue = entry.id(), error = %e, "cannot create the queue folder");
            continue;
        }
        let (to_finisher, ended) = tokio::sync::mpsc::unbounded_channel();
        let finishing = Finishing::default();
        let finisher = finisher(daemon.clone(), folder.clone(), finishing.clone(), ended);
        let (concurrency, concurrency_now) = tokio::sync::watch::channel(entry.concurrency);
        let worker = Worker {
            lane: Arc::new(Lane {
                daemon: daemon.clone(),
                folder,
                finishing,
                to_finisher,
            }),
            settings: config.queues.clone(),
            executors: executor_settings(daemon, config),
            wake: Arc::new(Notify::new()),
            concurrency: concurrency_now,
            drivers: tokio::task::JoinSet::new(),
            driven: HashMap::new(),
            watch: None,
            priorities: HashMap::new(),
            refused_in_place: HashSet::new(),
            listed: None,
            standby: None,
            last_start: None,
        };
        // One task for all, so stopping the worker stops its drivers and
        // finisher; an unfinished item is finished by the next worker (it
        // is open in the store).
        let task = tokio::spawn(async move {
            tokio::join!(worker.run(), finisher);
        });
        let handle = WorkerHandle {
            task: task.abort_handle(),
            concurrency,
        };
        workers.insert(entry.id().to_owned(), handle);
    }
}

fn executor_settings(daemon: &Daemon, config: &Config) -> ExecutorSettings {
    // Executors run with the daemon's environment, as `spawn` commands run
    // with the caller's.
    let base_env = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k != "TASKDAEMON_WORKSPACE")
        .collect();
    ExecutorSettings::from_config(config, daemon.workspace.root().to_owned(), base_env)
}

impl Worker {
    fn queue(&self) -> &str {
        &self.lane.folder.id
    }

    async fn run(mut self) {
        self.watch_while_waiting();
        tracing::info!(queue = self.queue(), folder = %self.lane.folder.root.display(), "worker started");
        let (daemon, folder) = (self.lane.daemon.clone(), self.lane.folder.clone());
        if let Err(e) = blocking(move || restore_result_files(&daemon, &folder)).await {
            tracing::warn!(queue = self.queue(), error = %e, "cannot check for missing result files");
        }
        loop {
            if let Err(e) = self.step().await {
                tracing::error!(queue = self.queue(), error = %e, "worker step failed; retrying");
                tokio::time::sleep(POLL).await;
            }
        }
    }

    /// Watches `pending/` unless it does already. Returns whether it
    /// started watching: documents that came while it did not are then to
    /// be looked for before it waits.
    fn watch_while_waiting(&mut self) -> bool {
        if self.watch.is_some() {
            return false;
        }
        self.watch = self.watch();
        self.watch.is_some()
    }

    /// The longest sleep before `pending/` is listed again unwoken.
    fn rescan(&self) -> Duration {
        if self.watch.is_some() {
            RESCAN_WATCHED
        } else {
            RESCAN_UNWATCHED
        }
    }

    /// Watches `pending/`; a change to a document in it wakes the worker
    /// (its own directory reads do not: see [`fswatch`]; nor do the lock
    /// and temp files written there as documents run, which would wake it
    /// several times per document). None when watching is off or
    /// impossible (the periodic rescan still finds documents).
    fn watch(&self) -> Option<fswatch::DirWatch> {
        if !self.settings.watch_enabled {
            return None;
        }
        let wake = self.wake.clone();
        let patterns = self.settings.watch_patterns.clone();
        let is_document = move |path: &std::path::Path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| is_document_name(name, &patterns))
        };
        let watched = fswatch::watch_files(&self.lane.folder.pending(), is_document, move || {
            wake.notify_one()
        });
        match watched {
            Ok(watcher) => Some(watcher),
            Err(e) => {
                tracing::warn!(queue = self.queue(), error = %e, "cannot watch pending/; rescanning every {}s", RESCAN_UNWATCHED.as_secs());
                None
            }
        }
    }

    /// One turn: drive what the store says is open and nobody drives,
    /// then start the next document if there is room for it, else sleep
    /// until something changes.
    async fn step(&mut self) -> Result<(), String> {
        while let Some(done) = self.drivers.try_join_next_with_id() {
            self.driver_done(done);
        }
        let finishing = self.lane.finishing_now();
        // The worker's own tasks: driven, or ended and not finished yet.
        let own: HashSet<String> = self
            .driven
            .values()
            .map(|(id, _)| id.clone())
            .chain(finishing.keys().cloned())
            .collect();
        // Their documents are still in pending/, and their locks ours.
        let held: HashSet<String> = finishing
            .values()
            .chain(self.driven.values().map(|(_, name)| name))
            .map(|name| stem(name))
            .collect();
        let free = self.concurrency_now().saturating_sub(self.driven.len());
        let looking = Looking {
            settings: self.settings.clone(),
            rescan: self.rescan(),
            priorities: std::mem::take(&mut self.priorities),
            refused_in_place: std::mem::take(&mut self.refused_in_place),
            // Watched, it is woken by what changes and lists afresh.
            listed: self.listed.take().filter(|_| self.watch.is_none()),
        };
        let lane = self.lane.clone();
        // One blocking step for the store read and, when there is room, the
        // folder's: each step costs a thread hand-off and back.
        let (open, looking, next) =
            blocking(move || look(&lane, looking, &own, held, free)).await??;
        self.priorities = looking.priorities;
        self.refused_in_place = looking.refused_in_place;
        self.listed = looking.listed;
        for item in open {
            self.drive(item, None);
        }
        let room = next.is_some();
        let delay = match next {
            Some(Next::Run(name)) => {
                // Busy: the next step lists pending/ again whatever
                // happens there, and the documents' lock files raise
                // events there (several per document) that nobody needs.
                self.watch = None;
                return self.start(name).await;
            }
            // One more look, watched now, for what came meanwhile.
            Some(Next::Wait(_)) if self.watch_while_waiting() => return Ok(()),
            Some(Next::Wait(delay)) => delay,
            None => self.rescan(),
        };
        let delay = self.keep_standby(delay).await;
        tokio::select! {
            _ = self.wake.notified(), if room => {}
            Some(done) = self.drivers.join_next_with_id() => self.driver_done(done),
            Ok(()) = self.concurrency.changed() => {}
            () = tokio::time::sleep(delay) => {}
        }
        Ok(())
    }

    /// The queue's concurrency as configured now.
    fn concurrency_now(&self) -> usize {
        usize::try_from(*self.concurrency.borrow()).unwrap_or(usize::MAX)
    }

    /// Follows `item` to its end in a driver of its own; `read` is its
    /// task as read since it was launched, when it was.
    fn drive(&mut self, item: QueueItem, read: Option<TaskRecord>) {
        let ids = (item.task_id.clone(), item.document.clone());
        let lane = self.lane.clone();
        let driver = self.drivers.spawn(async move {
            let id = item.task_id.clone();
            if let Err(e) = lane.drive(item, read).await {
                // The item stays open: the worker drives it again, after a
                // pause so a lasting failure does not spin.
                tracing::error!(queue = lane.folder.id, id, error = %e, "cannot follow a queue task; retrying");
                tokio::time::sleep(POLL).await;
            }
        });
        self.driven.insert(driver.id(), ids);
    }

    /// Forgets a driver that has returned (its task handed to the finisher,
    /// or left open to be driven again).
    fn driver_done(&mut self, done: Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
        let id = match done {
            Ok((id, ())) => id,
            Err(e) => {
                if e.is_panic() {
                    tracing::error!(
                        queue = self.queue(),
                        "a queue task's driver panicked; driving it again"
                    );
                }
                e.id()
            }
        };
        self.driven.remove(&id);
    }

    /// Records document `name` as a task and launches it; a malformed one
    /// is recorded as failed and finished at once.
    async fn start(&mut self, name: String) -> Result<(), String> {
        self.priorities.remove(&name);
        let (daemon, folder, executors) = (
            self.lane.daemon.clone(),
            self.lane.folder.clone(),
            self.executors.clone(),
        );
        let settings = self.settings.clone();
        let mut standby = self.standby.take();
        self.last_start = Some(Instant::now());
        let (started, standby) = blocking({
            let name = name.clone();
            move || {
                ensure_standby(&daemon, &folder.id, &mut standby);
                let started =
                    start_document(&daemon, &folder, &executors, &settings, &name, &mut standby);
                (started, standby)
            }
        })
        .await?;
        // Gone only when it can take no more tasks.
        self.standby = standby;
        let started = started?;
        match started {
            Started::Item(item, read) => self.drive(*item, read.map(|task| *task)),
            Started::Nothing => {}
            Started::RefusedInPlace => {
                self.refused_in_place.insert(name);
            }
        }
        Ok(())
    }

    /// Before the worker waits up to `delay` for a document: starts a
    /// standby shim if it ran a document within [`STANDBY_IDLE`] and has
    /// none, or lets the one it has go after that. Returns how long to wait,
    /// shortened so that the worker comes back to let it go in time.
    async fn keep_standby(&mut self, delay: Duration) -> Duration {
        let left = self.last_start.map_or(Duration::ZERO, |at| {
            STANDBY_IDLE.saturating_sub(at.elapsed())
        });
        if left.is_zero() {
            if let Some(standby) = self.standby.take() {
                let _ = blocking(move || standby.dismiss()).await;
            }
            return delay;
        }
        if self.standby.is_none() {
            let (daemon, queue) = (self.lane.daemon.clone(), self.queue().to_owned());
            self.standby = blocking(move || {
                let mut standby = None;
                ensure_standby(&daemon, &queue, &mut standby);
                standby
            })
            .await
            .ok()
            .flatten();
        }
        delay.min(left)
    }
}

impl Lane {
    /// Follows an open item until its task has ended, enforcing its timeout
    /// and rerunning a lost attempt, then writes its result. `read` is the
    /// task as read since its launch, if it was: its first look needs no
    /// read of its own.
    async fn drive(&self, item: QueueItem, read: Option<TaskRecord>) -> Result<(), String> {
        let id = item.task_id.clone();
        let mut ended = self.daemon.ended.subscribe();
        // The attempt we stopped for its timeout, so it is stopped once.
        let mut timed_out: Option<u32> = None;
        // The task as read already: since its launch, or by its follower
        // when it announced the end; each saves a read.
        let mut known: Option<std::sync::Arc<TaskRecord>> = read.map(std::sync::Arc::new);
        follow_from(&self.daemon, id.clone(), known.clone());
        loop {
            let task = match known.take() {
                Some(task) => std::sync::Arc::unwrap_or_clone(task),
                None => {
                    let (daemon, task_id) = (self.daemon.clone(), id.clone());
                    blocking(move || daemon.store.task(&task_id))
                        .await?
                        .map_err(|e| e.to_string())?
                }
            };
            if task.status.is_terminal() {
                if self.rerun_lost(&task, &item).await? {
                    follow(&self.daemon, id.clone());
                    continue;
                }
                let extra_error = timeout_error(&task, &item);
                self.lock_finishing()
                    .insert(task.id.clone(), item.document.clone());
                // The finisher is gone only when the worker is being stopped.
                let _ = self.to_finisher.send(Ended {
                    item,
                    task,
                    extra_error,
                });
                return Ok(());
            }
            let mut wait = POLL;
            if let (Status::Running, Some(limit), Some(started)) =
                (task.status, item.timeout_ms, task.started_at)
            {
                let limit = Duration::from_millis(limit);
                let elapsed =
                    Duration::from_millis(u64::try_from(now_millis() - started).unwrap_or(0));
                if elapsed >= limit {
                    if timed_out != Some(task.restarts) {
                        timed_out = Some(task.restarts);
                        let daemon = self.daemon.clone();
                        blocking(move || stop_for_timeout(&daemon, &task, limit)).await?;
                    }
                } else {
                    wait = wait.min(limit - elapsed);
                }
            }
            // The follower announces the end; the poll covers a follower
            // that gave up (it logs why) and the timeout.
            let _ = tokio::time::timeout(wait, async {
                loop {
                    match ended.recv().await {
                        Ok(end) if end.id == id => {
                            known = end.task;
                            return;
                        }
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                            std::future::pending::<()>().await
                        }
                    }
                }
            })
            .await;
            follow(&self.daemon, id.clone());
        }
    }

    fn lock_finishing(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.finishing.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn finishing_now(&self) -> HashMap<String, String> {
        self.lock_finishing().clone()
    }

    /// A task whose shim vanished (`lost`) gets its remaining attempts:
    /// reopened and launched again. Returns whether it was.
    async fn rerun_lost(&self, task: &TaskRecord, item: &QueueItem) -> Result<bool, String> {
        if task.status != Status::Lost
            || task.stop_requested
            || task.restarts + 1 >= item.max_attempts
        {
            return Ok(false);
        }
        let (daemon, id) = (self.daemon.clone(), task.id.clone());
        let folder = self.folder.clone();
        blocking(move || {
            let _guard = daemon.launch_lock.lock().unwrap_or_else(|p| p.into_inner());
            let task = daemon
                .store
                .reopen_for_restart(&id, ACTOR)
                .map_err(|e| e.to_string())?;
            tracing::info!(id, attempt = task.restarts + 1, "rerunning a lost attempt");
            if launch(&daemon, &task).is_ok() {
                write_lock(&daemon, &folder, &id);
            }
            Ok::<_, String>(true)
        })
        .await?
    }
}

/// Finishes ended tasks in the order they ended, each batch that piled up
/// meanwhile in one blocking step.
async fn finisher(
    daemon: Shared,
    folder: QueueFolder,
    finishing: Finishing,
    mut ended: tokio::sync::mpsc::UnboundedReceiver<Ended>,
) {
    while let Some(first) = ended.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = ended.try_recv() {
            batch.push(more);
        }
        let (d, f, finishing) = (daemon.clone(), folder.clone(), finishing.clone());
        let done = blocking(move || finish_batch(&d, &f, &finishing, batch)).await;
        if let Err(e) = done {
            tracing::error!(queue = folder.id, error = %e, "finisher step failed");
        }
    }
}

/// How often the finisher tries to make a batch durable before it leaves
/// the batch's result files to the next start (see [`restore_result_files`]).
const SYNC_ATTEMPTS: u32 = 5;

/// Finishes a batch of ended tasks with one sync of the store for all of
/// them: each item is closed with a deferred commit, the store is made
/// durable once, and only then are their results (what programs act on)
/// written. A batch of one costs what finishing one task always did.
fn finish_batch(daemon: &Daemon, folder: &QueueFolder, finishing: &Finishing, batch: Vec<Ended>) {
    let untrack = |id: &str| {
        finishing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    };
    let mut closed = Vec::with_capacity(batch.len());
    for Ended {
        item,
        task,
        extra_error,
    } in batch
    {
        match taskdaemon_store::deferred(|| close(daemon, folder, &item, &task, extra_error)) {
            Ok(result) => closed.push(result),
            Err(e) => {
                // The item stays open: the worker drives it again, after
                // a pause so a lasting failure does not spin.
                tracing::error!(queue = folder.id, id = task.id, error = %e, "cannot finish; retrying");
                std::thread::sleep(POLL);
                untrack(&task.id);
            }
        }
    }
    if closed.is_empty() {
        return;
    }
    let mut attempt = 1;
    while let Err(e) = daemon.store.make_durable() {
        if attempt >= SYNC_ATTEMPTS {
            // Closed in the store, so not run again; the worker's next
            // start writes the result files of items closed without one.
            tracing::error!(queue = folder.id, error = %e, "cannot make finished tasks durable; their result files wait for the next start");
            closed.iter().for_each(|result| untrack(&result.task_id));
            return;
        }
        tracing::warn!(queue = folder.id, error = %e, "cannot make finished tasks durable; retrying");
        std::thread::sleep(POLL);
        attempt += 1;
    }
    for result in closed {
        if let Err(e) = publish(folder, &result) {
            tracing::error!(queue = folder.id, id = result.task_id, error = %e, "cannot write the result; it is restored on the next start");
        }
        untrack(&result.task_id);
    }
}

enum Next {
    Run(String),
    Wait(Duration),
}

/// What a worker's look at `pending/` works with, and what it remembers
/// of the folder from one look to the next.
struct Looking {
    settings: QueuesConfig,
    /// The longest wait for a document while no document is held (by a
    /// task of the worker's own or a lock of a process elsewhere).
    rescan: Duration,
    /// Priorities of documents already read, by file name.
    priorities: HashMap<String, i32>,
    /// Entries refused and reported that stay in `pending/`.
    refused_in_place: HashSet<String>,
    /// The last listing, to pick from again when it is recent, and set to
    /// the one made when the look ends with a document to start.
    listed: Option<Listed>,
}

/// A listing of `pending/` a busy worker picks documents from for
/// [`LISTING_REUSE`]: the documents in it that were ready, neither held (by
/// a task of the worker's or a live lock elsewhere) nor picked since, in
/// the order they run in reversed (the next one last).
struct Listed {
    at: Instant,
    documents: Vec<String>,
}

impl Listed {
    /// The documents of `listing` but `picked` and those `held`, as a
    /// worker that started `picked` keeps them. Only documents whose
    /// priority `priorities` knows are kept: they were found ready, and the
    /// others are looked at again by the next listing.
    fn keep(
        listing: Vec<String>,
        picked: &str,
        held: &HashSet<String>,
        priorities: &HashMap<String, i32>,
    ) -> Self {
        let mut ranked: Vec<(i32, String)> = listing
            .into_iter()
            .filter(|name| name != picked && !held.contains(&stem(name)))
            .filter_map(|name| Some((*priorities.get(&name)?, name)))
            .collect();
        // The order of `next_document`: a higher priority first, then names.
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        Self {
            at: Instant::now(),
            documents: ranked.into_iter().rev().map(|(_, name)| name).collect(),
        }
    }

    /// The next document to start from this listing, but those `held` or
    /// refused in place (taken off it), or none when it is too old or has
    /// none left: the folder is listed afresh then.
    fn pick(
        &mut self,
        held: &HashSet<String>,
        refused_in_place: &HashSet<String>,
    ) -> Option<String> {
        if self.at.elapsed() >= LISTING_REUSE {
            return None;
        }
        let at = self
            .documents
            .iter()
            .rposition(|name| !held.contains(&stem(name)) && !refused_in_place.contains(name))?;
        Some(self.documents.remove(at))
    }
}

/// One look of a worker that has `free` places: the queue's open items
/// that are none of its `own` tasks (for it to drive), then, if places
/// are left over for a document, the next one to start or how long to
/// wait for one (none when the open items fill every place). `held`
/// names the documents of its own tasks.
fn look(
    lane: &Lane,
    mut looking: Looking,
    own: &HashSet<String>,
    mut held: HashSet<String>,
    free: usize,
) -> Result<(Vec<QueueItem>, Looking, Option<Next>), String> {
    let folder = &lane.folder;
    let open: Vec<QueueItem> = lane
        .daemon
        .store
        .open_queue_items(&folder.id)
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|item| !own.contains(&item.task_id))
        .collect();
    if open.len() >= free {
        return Ok((open, looking, None));
    }
    held.extend(open.iter().map(|item| stem(&item.document)));
    let read_error =
        |e: std::io::Error| format!("cannot read in {}: {e}", folder.pending().display());
    if let Some(mut listed) = looking.listed.take()
        && let Some(name) = listed.pick(&held, &looking.refused_in_place)
    {
        looking.listed = Some(listed);
        return Ok((open, looking, Some(Next::Run(name))));
    }
    let listing = folder
        .list_pending(&looking.settings.watch_patterns)
        .map_err(|e| format!("cannot list {}: {e}", folder.pending().display()))?;
    looking.forget_all_but(&listing.documents);
    let holders_elsewhere = clean_stale_locks(folder, &listing.locks, own);
    let rescan = if holders_elsewhere.is_empty() && held.is_empty() {
        looking.rescan
    } else {
        RESCAN_UNWATCHED
    };
    held.extend(holders_elsewhere);
    let next = next_document(folder, &mut looking, &listing.documents, &held, rescan)
        .map_err(read_error)?;
    if let Next::Run(name) = &next {
        // A held document is left to its holder: once its task ends it is
        // moved away, or else found by the next listing.
        looking.listed = Some(Listed::keep(
            listing.documents,
            name,
            &held,
            &looking.priorities,
        ));
    }
    Ok((open, looking, Some(next)))
}

impl Looking {
    /// Forgets what it knew of entries that are not among `names` (the
    /// folder's documents, sorted, as just listed).
    fn forget_all_but(&mut self, names: &[String]) {
        self.priorities
            .retain(|name, _| names.binary_search(name).is_ok());
        self.refused_in_place
            .retain(|name| names.binary_search(name).is_ok());
    }
}

/// The next ready document of `folder` among `names` (its documents as
/// just listed) but those `held`, or how long to wait for one (at most
/// `rescan`).
///
/// A document is looked at (stat, then its front matter for the priority)
/// only until it is first found ready, so a backlog of N documents costs
/// O(N) names per listing, not N stats and reads (and a busy worker lists
/// at most every [`LISTING_REUSE`]: see [`Listed`]).
fn next_document(
    folder: &QueueFolder,
    looking: &mut Looking,
    names: &[String],
    held: &HashSet<String>,
    rescan: Duration,
) -> std::io::Result<Next> {
    let settings = &looking.settings;
    let settle = Duration::from_millis(settings.watch_debounce_ms);
    let priorities = &mut looking.priorities;
    let refused_in_place = &mut looking.refused_in_place;
    let mut best: Option<(i32, &String)> = None;
    let mut wait = rescan;
    for name in names {
        if held.contains(&stem(name)) || refused_in_place.contains(name) {
            // A live process elsewhere holds its lock (not ours to
            // run), or it was refused already and stays.
            continue;
        }
        let priority = match priorities.get(name) {
            Some(p) => *p,
            None => match folder.read_document(name, settle, settings.max_document_bytes)? {
                DocumentRead::Gone => continue,
                DocumentRead::Settling(left) => {
                    // Come back when it has had time to settle.
                    wait = wait.min(left + Duration::from_millis(5));
                    continue;
                }
                // Reported (and moved aside) first, whatever its name.
                DocumentRead::Refused(_) => return Ok(Next::Run(name.clone())),
                DocumentRead::Text(bytes) => {
                    let p = std::str::from_utf8(&bytes)
                        .map(TaskDocument::priority_of)
                        .unwrap_or(0);
                    priorities.insert(name.clone(), p);
                    p
                }
            },
        };
        // Names come sorted: a later name wins only with a higher priority.
        if best.is_none_or(|(p, _)| priority > p) {
            best = Some((priority, name));
        }
    }
    Ok(match best {
        Some((_, name)) => Next::Run(name.clone()),
        None => Next::Wait(wait),
    })
}

/// What became of a document the worker tried to start.
enum Started {
    /// Recorded and launched (or failed to launch): drive it to its end;
    /// with its task as read after the launch, when it was.
    Item(Box<QueueItem>, Option<Box<TaskRecord>>),
    /// Nothing to drive: it vanished, is still settling, or was malformed
    /// or refused and moved to `failed/` with its result.
    Nothing,
    /// Refused and reported, but left in `pending/` (not a file or a link).
    RefusedInPlace,
}

/// Reads, records and launches one document, through `standby` when there
/// is one (let go if it can take no more tasks). A malformed or refused
/// document is recorded as a failed task with the reason, and its result
/// written at once.
fn start_document(
    daemon: &Daemon,
    folder: &QueueFolder,
    executors: &ExecutorSettings,
    settings: &QueuesConfig,
    name: &str,
    standby: &mut Option<Standby>,
) -> Result<Started, String> {
    let settle = Duration::from_millis(settings.watch_debounce_ms);
    let read = folder
        .read_document(name, settle, settings.max_document_bytes)
        .map_err(|e| format!("cannot read the document: {e}"));
    let (text, in_place) = match read {
        Ok(DocumentRead::Text(bytes)) => (
            String::from_utf8(bytes).map_err(|_| "the document is not valid UTF-8".to_owned()),
            false,
        ),
        // Deleted or renamed while queued, or changed again: nothing to run now.
        Ok(DocumentRead::Gone) => {
            tracing::info!(queue = folder.id, name, "document vanished before it ran");
            return Ok(Started::Nothing);
        }
        Ok(DocumentRead::Settling(_)) => return Ok(Started::Nothing),
        Ok(DocumentRead::Refused(refusal)) if !refusal.movable => {
            // It stays in pending/, so a daemon restarted since its report
            // finds it again: report it once, not once per daemon.
            if reported_before(daemon, folder, name)? {
                return Ok(Started::RefusedInPlace);
            }
            (Err(refusal.reason), true)
        }
        Ok(DocumentRead::Refused(refusal)) => (Err(refusal.reason), false),
        Err(message) => (Err(message), false),
    };
    let parsed = text.and_then(|text| TaskDocument::parse(&text).map_err(|e| e.to_string()));
    let store = &daemon.store;
    let doc = match parsed {
        Ok(doc) => doc,
        Err(message) => {
            let task = store
                .create_agent(&malformed_spec(&folder.id, name, executors), ACTOR)
                .map_err(|e| e.to_string())?;
            let error = format!("{name}: {message}");
            tracing::warn!(queue = folder.id, id = task.id, %error, "document not run");
            let task = store
                .record_start_failure(&task.id, &error, ACTOR)
                .map_err(|e| e.to_string())?;
            let item = store.queue_item(&task.id).map_err(|e| e.to_string())?;
            finish(daemon, folder, &item, &task, Some(error))?;
            return Ok(if in_place {
                Started::RefusedInPlace
            } else {
                Started::Nothing
            });
        }
    };
    let spec = agent_spec(&folder.id, name, &doc, executors);
    // Acknowledged by nobody: the document stays in pending/ until its
    // result is written, after a durable commit (see `finish_batch`).
    let task = taskdaemon_store::deferred(|| store.create_agent(&spec, ACTOR))
        .map_err(|e| e.to_string())?;
    tracing::info!(
        queue = folder.id,
        id = task.id,
        executor = doc.executor.as_str(),
        "document picked up"
    );
    // A launch failure is recorded in the store by the shim or by `launch`;
    // the item is then driven to its (failed) end like any other.
    let launched = launch_with(daemon, &task, standby).is_ok();
    let read = launched
        .then(|| write_lock(daemon, folder, &task.id))
        .flatten();
    store
        .queue_item(&task.id)
        .map(|item| Started::Item(Box::new(item), read.map(Box::new)))
        .map_err(|e| e.to_string())
}

/// Starts a standby shim for queue `queue`'s worker unless it has one; a
/// failure is logged, and the worker's shims then start fresh.
fn ensure_standby(daemon: &Daemon, queue: &str, standby: &mut Option<Standby>) {
    if standby.is_some() {
        return;
    }
    match Standby::start(&daemon.exe, &daemon.workspace) {
        Ok(started) => *standby = Some(started),
        Err(e) => tracing::warn!(queue, error = %e, "cannot start a standby shim"),
    }
}

/// How many of a queue's newest items [`restore_result_files`] looks at: a
/// crash leaves at most the few last ones without their file.
const RESTORE_LOOKBACK: usize = 100;

/// Writes the result file of each recently finished item that has none (the
/// daemon died between closing the item in the store and writing its file).
fn restore_result_files(daemon: &Daemon, folder: &QueueFolder) {
    let filter = QueueItemFilter {
        queue: Some(folder.id.clone()),
        status: None,
        limit: Some(RESTORE_LOOKBACK),
    };
    let Ok(items) = daemon.store.queue_items(&filter) else {
        return;
    };
    for item in items.into_iter().filter(|item| item.finished) {
        let Some(json) = item.result else { continue };
        if folder.result_path(&item.task_id).exists() {
            continue;
        }
        match serde_json::from_value::<TaskResult>(json) {
            Ok(result) => match result.write_result(folder) {
                Ok(()) => tracing::info!(id = item.task_id, "restored a missing result file"),
                Err(e) => {
                    tracing::warn!(id = item.task_id, error = %e, "cannot restore a result file")
                }
            },
            Err(e) => tracing::warn!(id = item.task_id, error = %e, "stored result is unreadable"),
        }
    }
}

/// How many of a queue's newest failed items [`reported_before`] looks at.
const REPORTED_LOOKBACK: usize = 10_000;

/// Whether entry `name` of `pending/` already has a failed task recorded.
fn reported_before(daemon: &Daemon, folder: &QueueFolder, name: &str) -> Result<bool, String> {
    let filter = QueueItemFilter {
        queue: Some(folder.id.clone()),
        status: Some(Status::Failed),
        limit: Some(REPORTED_LOOKBACK),
    };
    let items = daemon
        .store
        .queue_items(&filter)
        .map_err(|e| e.to_string())?;
    Ok(items.iter().any(|item| item.document == name))
}

/// The calling OS thread's id, as digits.
fn current_thread_id() -> String {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() }.to_string()
}

/// Writes the lock file of a launched task, naming its shim. Returns the
/// task as read for it.
fn write_lock(daemon: &Daemon, folder: &QueueFolder, id: &str) -> Option<TaskRecord> {
    let task = daemon.store.task(id).ok()?;
    let Some(identity) = task.shim_identity() else {
        return Some(task);
    };
    let lock = LockFile {
        task_id: task.id.clone(),
        queue: folder.id.clone(),
        // Seed 002's type: a string of digits, the id of the OS thread that
        // started the task (as its Python workers wrote `threading.get_ident()`).
        thread_id: current_thread_id(),
        pid: identity.pid,
        started_at: to_rfc3339(task.started_at.unwrap_or_else(now_millis)),
        executor_pid: task.pid,
        identity,
    };
    if let Err(e) = lock.write(&folder.lock_path(&task.id)) {
        tracing::warn!(id, error = %e, "cannot write the lock file");
    }
    Some(task)
}

/// Removes those of `locks` (the lock files of `folder`, as listed) whose
/// owner is gone, passing over those of the worker's `own` tasks (running,
/// or ended and not finished yet: their finish removes them), so a wide
/// queue does not read every running task's lock each time it looks for a
/// document. Returns the document stems that live locks still hold.
fn clean_stale_locks(
    folder: &QueueFolder,
    locks: &[std::path::PathBuf],
    own: &HashSet<String>,
) -> HashSet<String> {
    let mut held = HashSet::new();
    let own: HashSet<std::path::PathBuf> = own.iter().map(|id| folder.lock_path(id)).collect();
    for path in locks.iter().filter(|path| !own.contains(*path)) {
        let stale = match LockFile::read(path) {
            Ok(Some(lock)) if !lock.is_stale() => {
                let stem = lock
                    .task_id
                    .rsplit_once('~')
                    .map_or(lock.task_id.as_str(), |(s, _)| s);
                held.insert(stem.to_owned());
                false
            }
            Ok(Some(_)) => true,
            Ok(None) => false,
            // Half-written or garbage: it protects nothing.
            Err(_) => true,
        };
        if stale {
            tracing::info!(lock = %path.display(), "removing a stale lock");
            if let Err(e) = LockFile::remove(path) {
                tracing::warn!(lock = %path.display(), error = %e, "cannot remove a stale lock");
            }
        }
    }
    held
}

/// "timed out after …" when the last attempt of `task` ended by a signal
/// after running at least its time limit, without anyone asking it to stop.
/// Decided from the store alone, so a daemon restarted while the timed-out
/// attempt was being stopped reports it the same way ("signal 15" is the
/// how, the timeout is the why).
fn timeout_error(task: &TaskRecord, item: &QueueItem) -> Option<String> {
    let limit = item.timeout_ms?;
    let ran = task.finished_at? - task.started_at?;
    (task.signal.is_some() && !task.stop_requested && ran >= limit.try_into().unwrap_or(i64::MAX))
        .then(|| {
            format!(
                "timed out after {}",
                format_duration(Duration::from_millis(limit))
            )
        })
}

/// Sends TERM (then KILL) to an executor that ran past its time limit. Its
/// shim records the signal; a retry follows if attempts remain.
fn stop_for_timeout(daemon: &Daemon, task: &TaskRecord, limit: Duration) {
    let message = format!(
        "timed out after {}; stopping attempt {}",
        format_duration(limit),
        task.restarts + 1
    );
    tracing::warn!(id = task.id, "{message}");
    let _ = daemon.store.append_event(
        Some(&task.id),
        &NewEvent::new(EventKind::Alert, ACTOR, message),
    );
    let (Some(pgid), Some(leader)) = (task.pgid, task.process_identity()) else {
        return;
    };
    if let Err(e) = (Group { pgid, leader }).terminate(Signal::TERM, TIMEOUT_GRACE) {
        tracing::warn!(id = task.id, error = %e, "cannot stop a timed-out executor");
    }
}

/// Finishes an ended task at once, durably: [`close`], then [`publish`].
fn finish(
    daemon: &Daemon,
    folder: &QueueFolder,
    item: &QueueItem,
    task: &TaskRecord,
    extra_error: Option<String>,
) -> Result<(), String> {
    let result = close(daemon, folder, item, task, extra_error)?;
    publish(folder, &result)
}

/// Writes the report of an ended task, moves its document to `completed/`
/// or `failed/`, removes its lock, and closes its item in the store.
/// Returns the result, to [`publish`] once the close is durable. Each step
/// can be repeated, so a crash half-way is finished on the next start.
fn close(
    daemon: &Daemon,
    folder: &QueueFolder,
    item: &QueueItem,
    task: &TaskRecord,
    extra_error: Option<String>,
) -> Result<TaskResult, String> {
    let stdout = daemon.workspace.stdout_log(&task.id);
    // A malformed document names no executor ("none"): its output is empty.
    let output = ExecutorKind::from_name(&item.executor)
        .map(|kind| kind.executor().summarize(&stdout))
        .unwrap_or_default();
    let result = TaskResult::build(task, item, &output, extra_error, now_millis());
    let tail = output_tail(&stdout, REPORT_TAIL_LINES);
    let report = result.report(item, output.final_text.as_deref(), &tail);
    let outcome = if result.succeeded() {
        Outcome::Completed
    } else {
        Outcome::Failed
    };
    match folder.finish_document(&item.document, &task.id, outcome) {
        Ok(Some(_)) => {}
        Ok(None) => tracing::info!(
            id = task.id,
            document = item.document,
            "document was gone (or is not a file or link, and stays) when its task ended"
        ),
        Err(e) => tracing::warn!(id = task.id, error = %e, "cannot move the document"),
    }
    if let Err(e) = LockFile::remove(&folder.lock_path(&task.id)) {
        tracing::warn!(id = task.id, error = %e, "cannot remove the lock file");
    }
    // The store is told before the result file is written, so whoever sees
    // the file finds the document moved, the lock gone, the report written
    // and the store agreeing. A crash before the store is told redoes all
    // of this on restart (the item is still open); a crash after it leaves
    // only the file to write, which the worker does when it starts.
    result
        .write_report(folder, &report)
        .map_err(|e| format!("cannot write the report of {}: {e}", task.id))?;
    let json = serde_json::to_value(&result).map_err(|e| e.to_string())?;
    match daemon.store.finish_queue_item(&task.id, &json, ACTOR) {
        Ok(_) => {}
        Err(StoreError::NotFound(_)) => {}
        Err(e) => return Err(format!("cannot close the queue item of {}: {e}", task.id)),
    }
    Ok(result)
}

/// Writes the result file of a task whose item is closed, durably, in the
/// store: the acknowledgement programs act on.
fn publish(folder: &QueueFolder, result: &TaskResult) -> Result<(), String> {
    result
        .write_result(folder)
        .map_err(|e| format!("cannot write the result of {}: {e}", result.task_id))?;
    tracing::info!(
        queue = folder.id,
        id = result.task_id,
        status = result.status,
        attempt = result.attempt,
        "task finished"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|name| (*name).to_owned()).collect()
    }

    /// A kept listing runs what the first look would have run next, in its
    /// order (priority, then name), passing over documents held or refused
    /// since, and leaves out the picked, the held and the unready.
    #[test]
    fn a_kept_listing_picks_in_next_documents_order() {
        let listing = names(&[
            "task-a.md",
            "task-b.md",
            "task-c.md",
            "task-d.md",
            "task-e.md",
            "task-settling.md",
        ]);
        let priorities: HashMap<String, i32> = [
            ("task-a.md", 0),
            ("task-b.md", 5),
            ("task-c.md", 0),
            ("task-d.md", 5),
            ("task-e.md", 0),
        ]
        .into_iter()
        .map(|(name, p)| (name.to_owned(), p))
        .collect();
        let held: HashSet<String> = ["task-c".to_owned()].into();
        let mut kept = Listed::keep(listing, "task-b.md", &held, &priorities);
        assert_eq!(
            kept.documents,
            names(&["task-e.md", "task-a.md", "task-d.md"])
        );

        let nothing_refused = HashSet::new();
        let now_held: HashSet<String> = ["task-d".to_owned()].into();
        assert_eq!(
            kept.pick(&now_held, &nothing_refused).as_deref(),
            Some("task-a.md")
        );
        let refused: HashSet<String> = ["task-d.md".to_owned()].into();
        assert_eq!(
            kept.pick(&HashSet::new(), &refused).as_deref(),
            Some("task-e.md")
        );
        assert_eq!(
            kept.pick(&HashSet::new(), &nothing_refused).as_deref(),
            Some("task-d.md")
        );
        assert_eq!(kept.pick(&HashSet::new(), &nothing_refused), None);

        let mut old = Listed::keep(
            names(&["task-a.md"]),
            "task-b.md",
            &HashSet::new(),
            &priorities,
        );
        old.at -= LISTING_REUSE;
        assert_eq!(
            old.pick(&HashSet::new(), &nothing_refused),
            None,
            "too old to pick from"
        );
    }
}
