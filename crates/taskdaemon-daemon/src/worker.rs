//! A worker that claims submitted tasks from the store and runs them, for
//! hosts that only execute (`taskdaemon worker`). Several workers, on one
//! host or many, share a queue through the store's claims (see
//! `taskdaemon_store::claim`).
//!
//! Threads, all blocking (the store is synchronous):
//! - a claimer: claims as many tasks as runners are idle, in one batch
//!   (one transaction and one commit for all of them), and hands them out;
//! - `concurrency` runners: take a claim, run the command, pass on how it
//!   ended;
//! - a recorder: records the ends that have piled up, in one batch, while
//!   the runners go on (so a busy worker commits once for many tasks);
//! - a heartbeat: renews this worker's leases every third of the lease,
//!   releases other workers' expired leases, and tells runners whose lease
//!   was taken over (or whose task was asked to stop) to end their command;
//! - a listener: waits on the store's [`WorkWaiter`] (`LISTEN`/`NOTIFY` on
//!   PostgreSQL) and wakes idle runners, so nobody polls for work.
//!
//! A command runs in its own process group and dies with its runner thread
//! (`PR_SET_PDEATHSIG`), so a killed worker leaves nothing behind; its
//! leases expire and the tasks run elsewhere.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group};
use serde_json::json;
use taskdaemon_core::process::{ExitDecision, ExitOutcome};
use taskdaemon_core::time::{now_millis, to_rfc3339};
use taskdaemon_store::{Claim, Completion, Lease, MAX_BATCH, Store, StoreError, WorkerInfo};

/// How long a runner keeps trying to record how its task ended.
const COMPLETE_FOR: Duration = Duration::from_secs(120);

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub queues: Vec<String>,
    pub concurrency: u32,
    /// How long a claim is ours without a heartbeat.
    pub lease: Duration,
    /// Where each task's `stdout.log` and `stderr.log` go (`DIR/ID/`).
    pub log_dir: PathBuf,
    /// The longest an idle runner sleeps without a wake-up (retries whose
    /// backoff ended are noticed this late at most).
    pub idle_wait: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            queues: Vec::new(),
            concurrency: 1,
            lease: Duration::from_secs(30),
            log_dir: std::env::temp_dir().join("taskdaemon-worker"),
            idle_wait: Duration::from_secs(1),
        }
    }
}

/// What the worker did before it stopped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WorkerReport {
    pub completed: u64,
    /// Completions refused because the lease was taken over meanwhile.
    pub fenced: u64,
}

/// Why a runner ends its command early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Abort {
    None,
    /// Someone asked the task to stop: end it and record the end.
    Stop,
    /// Our lease was taken over: end it and record nothing.
    LeaseLost,
}

/// Claims on their way from the claimer to the runners.
#[derive(Default)]
struct Dispatch {
    /// Runners waiting for a claim.
    idle: usize,
    /// Claimed, not yet taken by a runner.
    ready: VecDeque<Claim>,
    /// The claimer stopped: a runner that finds nothing ready leaves.
    closed: bool,
}

struct Shared {
    store: Arc<dyn Store>,
    info: WorkerInfo,
    options: WorkerOptions,
    stop: Arc<AtomicBool>,
    /// Raised by every wake-up; idle runners wait for it to move.
    wake: (Mutex<u64>, Condvar),
    /// Claims for the runners, and the runners waiting for them (both wait
    /// on the condition variable).
    dispatch: (Mutex<Dispatch>, Condvar),
    /// What this worker holds (claimed, handed out or running), by task id.
    running: Mutex<HashMap<String, (Lease, Abort)>>,
    completed: AtomicU64,
    fenced: AtomicU64,
}

impl Shared {
    fn wake_all(&self) {
        let (lock, cvar) = &self.wake;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        cvar.notify_all();
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Whether the worker is stopping with nothing left running.
    fn done(&self) -> bool {
        self.stopping() && self.running.lock().map(|r| r.is_empty()).unwrap_or(true)
    }

    /// Sleeps for `period`, or until a wake-up finds the worker [`done`]
    /// (the last runner to leave wakes everyone). Returns whether it is done.
    /// Waiting on the condition variable rather than napping in short steps
    /// keeps an idle worker asleep.
    fn sleep_unless_done(&self, period: Duration) -> bool {
        let deadline = Instant::now() + period;
        let (lock, cvar) = &self.wake;
        let mut guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if self.done() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            guard = cvar
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn actor(&self) -> String {
        format!("worker:{}", self.info.id)
    }
}

/// This host's name.
pub fn host_name() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// A worker id unique across hosts and restarts: `host:pid:nanos`.
pub fn new_worker_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{}:{}:{nanos:08x}", host_name(), std::process::id())
}

/// The store meta key under which a worker records its lease, in
/// milliseconds: a worker whose heartbeat is older than that is lost.
pub fn lease_meta_key(worker_id: &str) -> String {
    format!("worker.lease_ms.{worker_id}")
}

/// Runs a worker until `stop` is set, then lets the running tasks finish,
/// marks the worker stopped and returns.
pub fn run_worker(
    store: Arc<dyn Store>,
    options: WorkerOptions,
    stop: Arc<AtomicBool>,
) -> Result<WorkerReport, StoreError> {
    let info = WorkerInfo {
        id: new_worker_id(),
        host: host_name(),
        pid: std::process::id(),
        queues: options.queues.clone(),
        concurrency: options.concurrency.max(1),
    };
    store.register_worker(&info)?;
    // Readers judge a silent worker lost once its heartbeat is older than this.
    store.set_meta(
        &lease_meta_key(&info.id),
        &options.lease.as_millis().to_string(),
    )?;
    let waiter = store.work_waiter()?;
    tracing::info!(worker = %info.id, queues = ?info.queues, "worker started");
    let shared = Arc::new(Shared {
        store,
        info,
        options,
        stop,
        wake: (Mutex::new(0), Condvar::new()),
        dispatch: (Mutex::new(Dispatch::default()), Condvar::new()),
        running: Mutex::new(HashMap::new()),
        completed: AtomicU64::new(0),
        fenced: AtomicU64::new(0),
    });
    let listener = {
        let shared = shared.clone();
        thread::Builder::new()
            .name("td-listen".into())
            .spawn(move || listen(&shared, waiter))
            .map_err(|e| StoreError::Aborted(format!("cannot start a thread: {e}")))?
    };
    let heart = {
        let shared = shared.clone();
        thread::Builder::new()
            .name("td-heartbeat".into())
            .spawn(move || heartbeat(&shared))
            .map_err(|e| StoreError::Aborted(format!("cannot start a thread: {e}")))?
    };
    let (ended, ends) = mpsc::channel();
    let recorder = {
        let shared = shared.clone();
        thread::Builder::new()
            .name("td-record".into())
            .spawn(move || recorder(&shared, &ends))
            .map_err(|e| StoreError::Aborted(format!("cannot start a thread: {e}")))?
    };
    let runners: Vec<_> = (0..shared.info.concurrency)
        .map(|n| {
            let shared = shared.clone();
            let ended = ended.clone();
            thread::Builder::new()
                .name(format!("td-run-{n}"))
                .spawn(move || runner(&shared, &ended))
        })
        .collect::<Result<_, _>>()
        .map_err(|e| StoreError::Aborted(format!("cannot start a thread: {e}")))?;
    // The recorder ends once every runner has dropped its sender.
    drop(ended);
    claimer(&shared);
    for runner in runners {
        let _ = runner.join();
    }
    let _ = recorder.join();
    shared.wake_all();
    let _ = heart.join();
    let _ = listener.join();
    shared.store.stop_worker(&shared.info.id)?;
    tracing::info!(worker = %shared.info.id, "worker stopped");
    Ok(WorkerReport {
        completed: shared.completed.load(Ordering::Relaxed),
        fenced: shared.fenced.load(Ordering::Relaxed),
    })
}

fn listen(shared: &Shared, mut waiter: Box<dyn taskdaemon_store::WorkWaiter>) {
    while !shared.stopping() {
        match waiter.wait(Duration::from_millis(500)) {
            Ok(true) => shared.wake_all(),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "waiting for work failed");
                thread::sleep(Duration::from_millis(500));
            }
        }
    }
}

fn heartbeat(shared: &Shared) {
    let every = (shared.options.lease / 3).max(Duration::from_millis(50));
    let actor = shared.actor();
    loop {
        let mine: Vec<String> = shared
            .running
            .lock()
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default();
        match shared
            .store
            .heartbeat(&shared.info.id, &mine, shared.options.lease)
        {
            Ok(held) => {
                let mut running = shared.running.lock().unwrap_or_else(|p| p.into_inner());
                for (task, (lease, abort)) in running.iter_mut() {
                    // Claimed after this heartbeat asked: its lease is new,
                    // and the answer cannot speak for it.
                    if !mine.contains(task) {
                        continue;
                    }
                    match held.iter().find(|h| &h.lease.task_id == task) {
                        Some(h) if h.lease == *lease => {
                            if h.stop_requested && *abort == Abort::None {
                                *abort = Abort::Stop;
                            }
                        }
                        _ => *abort = Abort::LeaseLost,
                    }
                }
            }
            Err(StoreError::NotFound(_)) => {
                // Our row is gone (a store reset): announce ourselves again.
                let _ = shared.store.register_worker(&shared.info);
            }
            Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
        }
        // Any live worker returns the tasks of dead ones to their queue.
        match shared.store.release_expired(&actor) {
            Ok(released) if !released.is_empty() => {
                for r in &released {
                    tracing::warn!(task = %r.task_id, worker = %r.worker, "lease expired; task released");
                }
                shared.wake_all();
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "releasing expired leases failed"),
        }
        if shared.done() {
            return;
        }
        if shared.sleep_unless_done(every) {
            return;
        }
    }
}

/// Claims, in one batch, as many tasks as runners wait for, until the
/// worker stops; then tells the runners no more will come.
fn claimer(shared: &Shared) {
    while let Some(wanted) = wait_for_idle_runners(shared) {
        let seen = *shared.wake.0.lock().unwrap_or_else(|p| p.into_inner());
        match shared.store.claim_batch(
            &shared.info.id,
            &shared.options.queues,
            shared.options.lease,
            wanted.min(MAX_BATCH),
        ) {
            Ok(claims) if !claims.is_empty() => hand_out(shared, claims),
            Ok(_) => {
                let (lock, cvar) = &shared.wake;
                let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
                let _ = cvar
                    .wait_timeout_while(guard, shared.options.idle_wait, |n| {
                        *n == seen && !shared.stopping()
                    })
                    .map(drop);
            }
            Err(e) => {
                tracing::warn!(error = %e, "claiming failed; retrying");
                thread::sleep(Duration::from_millis(500));
            }
        }
    }
    let (lock, cvar) = &shared.dispatch;
    lock.lock().unwrap_or_else(|p| p.into_inner()).closed = true;
    cvar.notify_all();
}

/// Waits until some runner has no claim waiting for it; returns how many
/// claims would keep every runner busy, or `None` once the worker stops.
fn wait_for_idle_runners(shared: &Shared) -> Option<usize> {
    let (lock, cvar) = &shared.dispatch;
    let mut dispatch = lock.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        if shared.stopping() {
            return None;
        }
        if dispatch.idle > dispatch.ready.len() {
            return Some(dispatch.idle - dispatch.ready.len());
        }
        // Timed, because a stop is only noticed between waits.
        dispatch = cvar
            .wait_timeout(dispatch, shared.options.idle_wait)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

/// Puts fresh claims where the heartbeat renews them and the runners find them.
fn hand_out(shared: &Shared, claims: Vec<Claim>) {
    {
        let mut running = shared.running.lock().unwrap_or_else(|p| p.into_inner());
        for claim in &claims {
            running.insert(
                claim.lease.task_id.clone(),
                (claim.lease.clone(), Abort::None),
            );
        }
    }
    let (lock, cvar) = &shared.dispatch;
    lock.lock()
        .unwrap_or_else(|p| p.into_inner())
        .ready
        .extend(claims);
    cvar.notify_all();
}

/// The next claim for a runner; `None` once the claimer stopped and none is left.
fn next_claim(shared: &Shared) -> Option<Claim> {
    let (lock, cvar) = &shared.dispatch;
    let mut dispatch = lock.lock().unwrap_or_else(|p| p.into_inner());
    dispatch.idle += 1;
    cvar.notify_all();
    let claim = loop {
        if let Some(claim) = dispatch.ready.pop_front() {
            break Some(claim);
        }
        if dispatch.closed {
            break None;
        }
        dispatch = cvar.wait(dispatch).unwrap_or_else(|p| p.into_inner());
    };
    dispatch.idle -= 1;
    claim
}

fn runner(shared: &Shared, ended: &mpsc::Sender<Completion>) {
    while let Some(claim) = next_claim(shared) {
        run_claim(shared, claim, ended);
    }
}

fn run_claim(shared: &Shared, claim: Claim, ended: &mpsc::Sender<Completion>) {
    let lease = claim.lease.clone();
    let started = now_millis();
    let (outcome, error) = execute(shared, &claim);
    let abort = shared
        .running
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&lease.task_id)
        .map_or(Abort::None, |(_, abort)| abort);
    if abort == Abort::LeaseLost {
        tracing::warn!(task = %lease.task_id, "lease taken over; result not recorded");
        shared.fenced.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let finished = now_millis();
    let result = json!({
        "task_id": lease.task_id,
        "queue": claim.item.queue,
        "attempt": claim.attempt,
        "worker": shared.info.id,
        "host": shared.info.host,
        "started_at": to_rfc3339(started),
        "finished_at": to_rfc3339(finished),
        "duration_ms": finished - started,
        "exit_code": outcome.code,
        "signal": outcome.signal,
        "error": error,
    });
    // The recorder outlives every runner, so this only fails if it panicked.
    if ended
        .send(Completion {
            lease,
            outcome,
            result,
        })
        .is_err()
    {
        tracing::error!(task = %claim.lease.task_id, "the recorder is gone; the end is not recorded");
    }
}

/// Records the ends the runners pass on: whatever piled up while the last
/// batch committed goes into the next one. Returns once every runner is gone
/// and every end is recorded (or given up on).
fn recorder(shared: &Shared, ends: &mpsc::Receiver<Completion>) {
    while let Ok(first) = ends.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match ends.try_recv() {
                Ok(end) => batch.push(end),
                Err(_) => break,
            }
        }
        record(shared, &batch);
    }
}

/// Records one batch of ends and counts what became of each.
fn record(shared: &Shared, batch: &[Completion]) {
    let answers = match complete(shared, batch) {
        Ok(answers) => answers,
        Err(e) => {
            for end in batch {
                tracing::error!(task = %end.lease.task_id, error = %e, "cannot record the end");
            }
            return;
        }
    };
    for (end, answer) in batch.iter().zip(answers) {
        match answer {
            Ok(done) => {
                shared.completed.fetch_add(1, Ordering::Relaxed);
                if matches!(done.decision, ExitDecision::Restart { .. }) {
                    shared.wake_all();
                }
            }
            Err(StoreError::Conflict(message)) => {
                tracing::warn!(task = %end.lease.task_id, %message, "completion fenced off");
                shared.fenced.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::error!(task = %end.lease.task_id, error = %e, "cannot record the end");
            }
        }
    }
}

/// Records the ends, trying again while the store is unreachable: a batch
/// whose commit was lost with its connection is repeated, and the fence
/// makes a repeat of an end that did commit a harmless `Conflict`.
fn complete(
    shared: &Shared,
    batch: &[Completion],
) -> Result<Vec<Result<taskdaemon_store::ClaimCompleted, StoreError>>, StoreError> {
    let deadline = Instant::now() + COMPLETE_FOR;
    loop {
        match shared.store.complete_claims(batch) {
            Err(e @ (StoreError::Postgres(_) | StoreError::Unreachable { .. }))
                if Instant::now() < deadline =>
            {
                tracing::warn!(ends = batch.len(), error = %e, "recording ends failed; retrying");
                thread::sleep(Duration::from_millis(200));
            }
            other => return other,
        }
    }
}

/// Runs the claimed command; returns how it ended and, when it could not
/// start, why.
fn execute(shared: &Shared, claim: &Claim) -> (ExitOutcome, Option<String>) {
    let task = &claim.task;
    let Some((program, args)) = task.argv.split_first() else {
        return (ExitOutcome::exited(127), Some("nothing to run".to_owned()));
    };
    let dir = shared.options.log_dir.join(&task.id);
    let logs = fs::create_dir_all(&dir).and_then(|()| {
        Ok((
            File::options()
                .create(true)
                .append(true)
                .open(dir.join("stdout.log"))?,
            File::options()
                .create(true)
                .append(true)
                .open(dir.join("stderr.log"))?,
        ))
    });
    let (stdout, stderr) = match logs {
        Ok(files) => files,
        Err(e) => {
            return (
                ExitOutcome::exited(127),
                Some(format!("cannot open logs in {}: {e}", dir.display())),
            );
        }
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .envs(task.env.iter().map(|(k, v)| (k, v)))
        .env("TASKDAEMON_TASK_ID", &task.id)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0);
    // The submitting host's directory may not exist here: then run where
    // the worker runs.
    if let Some(cwd) = task.cwd.as_deref().filter(|c| Path::new(c).is_dir()) {
        command.current_dir(cwd);
    }
    // SAFETY: prctl is async-signal-safe and only affects the child.
    unsafe {
        command.pre_exec(|| {
            if libc_prctl_pdeathsig() != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            return (
                ExitOutcome::exited(127),
                Some(format!("cannot start {program}: {e}")),
            );
        }
    };
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let deadline = claim
        .item
        .timeout_ms
        .map(|ms| Instant::now() + Duration::from_millis(ms));
    let mut signalled = false;
    let status = loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(status) => break status,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                break Err(std::io::Error::other("the wait thread ended"));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        let abort = shared
            .running
            .lock()
            .ok()
            .and_then(|r| r.get(&task.id).map(|(_, a)| *a))
            .unwrap_or(Abort::None);
        let timed_out = deadline.is_some_and(|d| Instant::now() >= d);
        if (abort != Abort::None || timed_out) && !signalled {
            signalled = true;
            if let Some(pgid) = Pid::from_raw(pid) {
                let _ = kill_process_group(pgid, Signal::KILL);
            }
        }
    };
    let _ = waiter.join();
    match status {
        Ok(status) => {
            use std::os::unix::process::ExitStatusExt;
            let outcome = match (status.code(), status.signal()) {
                (Some(code), _) => ExitOutcome::exited(code),
                (None, Some(signal)) => ExitOutcome::signalled(signal),
                (None, None) => ExitOutcome::exited(1),
            };
            (outcome, None)
        }
        Err(e) => (ExitOutcome::exited(1), Some(format!("waiting failed: {e}"))),
    }
}

/// `prctl(PR_SET_PDEATHSIG, SIGKILL)`: the command dies with its runner.
fn libc_prctl_pdeathsig() -> i32 {
    // SAFETY: plain syscall with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    use taskdaemon_core::process::{RestartMode, RestartPolicy};
    use taskdaemon_core::{EventKind, NewAgent, Status};
    use taskdaemon_store::SqliteStore;

    use super::*;

    /// A job running `program` with one retry.
    fn job(n: usize, program: &str) -> NewAgent {
        NewAgent {
            wanted_id: format!("job-{n}"),
            queue: "q".to_owned(),
            document: format!("job-{n}.md"),
            executor: "command".to_owned(),
            argv: vec![program.to_owned()],
            cwd: "/".to_owned(),
            env: Vec::new(),
            restart: RestartPolicy {
                mode: RestartMode::OnFailure,
                max_restarts: 1,
                initial_backoff: Duration::from_millis(10),
            },
            max_attempts: 2,
            timeout_ms: None,
            limits: Default::default(),
            container: None,
        }
    }

    /// The batched path end to end: the claimer hands out claims, runners
    /// run real commands, the recorder records their ends in batches; every
    /// task runs its attempts once each and ends once.
    #[test]
    fn a_worker_runs_every_attempt_once_and_records_every_end() {
        const JOBS: usize = 40;
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
        let failing = (0..JOBS).filter(|n| n % 5 == 0).count();
        for n in 0..JOBS {
            let program = if n % 5 == 0 { "false" } else { "true" };
            store.submit(&job(n, program), "test").unwrap();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let options = WorkerOptions {
            concurrency: 4,
            log_dir: dir.path().join("logs"),
            idle_wait: Duration::from_millis(100),
            ..WorkerOptions::default()
        };
        let worker = {
            let (store, stop) = (store.clone(), stop.clone());
            thread::spawn(move || run_worker(store, options, stop))
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        while store.queue_counts().unwrap().iter().any(|c| c.open > 0) {
            assert!(Instant::now() < deadline, "the worker makes no progress");
            thread::sleep(Duration::from_millis(50));
        }
        stop.store(true, Ordering::Relaxed);
        let report = worker.join().unwrap().unwrap();

        let attempts = JOBS + failing;
        assert_eq!(
            report,
            WorkerReport {
                completed: attempts as u64,
                fenced: 0
            },
            "every attempt's end recorded once"
        );
        let counts = store.queue_counts().unwrap();
        assert_eq!(
            (counts[0].done, counts[0].failed),
            ((JOBS - failing) as u64, failing as u64)
        );
        let started = store
            .events_after(0, &[EventKind::Started], attempts * 2)
            .unwrap();
        assert_eq!(started.len(), attempts, "one claim per attempt");
        for n in 0..JOBS {
            let task = store.task(&format!("job-{n}")).unwrap();
            let expected = if n % 5 == 0 {
                Status::Failed
            } else {
                Status::Succeeded
            };
            assert_eq!(task.status, expected, "{task:?}");
        }
        let workers = store.workers().unwrap();
        assert!(workers[0].stopped_at.is_some());
        assert!(workers[0].running.is_empty(), "{workers:?}");
    }
}
