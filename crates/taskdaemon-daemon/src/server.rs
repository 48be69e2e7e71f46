//! The daemon process: socket server, adoption and process following.

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::process::Signal;
use taskdaemon_core::{NewProcess, Status, TaskKind, TaskRecord};
use taskdaemon_store::{ProcessFilter, Store, StoreError};
use taskdaemon_supervisor::group::Group;
use taskdaemon_supervisor::launch::report;
use taskdaemon_supervisor::pidfd::{PidWatch, reap};
use taskdaemon_supervisor::reconcile::{Reconciled, reconcile};
use taskdaemon_supervisor::{LaunchError, launch_shim};
use taskdaemon_workspace::{Config, Workspace};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Notify;

use crate::lock::{LockError, PidLock};
use crate::loops::{self, Loops};
use crate::protocol::{ErrorKind, Request, Response};
use crate::{housekeeping, logging, queues, registry, watchdog};

/// The hidden subcommand that runs the daemon: `taskdaemon --workspace DIR __daemon`.
pub const DAEMON_SUBCOMMAND: &str = "__daemon";

/// Who the daemon says it is in events.
pub(crate) const ACTOR: &str = "daemon";

/// How long a kill waits for the shim to record the end, beyond the grace period.
const RECORD_WAIT: Duration = Duration::from_secs(10);

/// Shared state of the running daemon.
pub(crate) struct Daemon {
    pub workspace: Workspace,
    pub store: Arc<dyn Store>,
    pub config: Config,
    exe: PathBuf,
    /// Tasks with a follower, so each is followed once.
    followed: Mutex<HashSet<String>>,
    pub(crate) launch_lock: Mutex<()>,
    shutdown: Notify,
    /// Announces each task whose follower has finished (the task ended).
    pub(crate) ended: tokio::sync::broadcast::Sender<String>,
    /// The running queue workers, by queue id.
    pub(crate) workers: Mutex<HashMap<String, tokio::task::AbortHandle>>,
    pub(crate) loops: Loops,
    /// Asks the registry writer for a rewrite; requests made while it writes
    /// collapse into one more write (see [`registry_changed`]).
    registry_wanted: Notify,
}

type Shared = Arc<Daemon>;

/// A request that failed, with the class the client sees.
pub(crate) struct Failure {
    pub(crate) kind: ErrorKind,
    pub(crate) message: String,
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        let kind = match &e {
            StoreError::NotFound(_) => ErrorKind::NotFound,
            StoreError::IllegalTransition(_) | StoreError::Conflict(_) => ErrorKind::Conflict,
            StoreError::InvalidId(_) => ErrorKind::Invalid,
            _ => ErrorKind::Internal,
        };
        Failure {
            kind,
            message: e.to_string(),
        }
    }
}

fn failure(kind: ErrorKind, message: impl Into<String>) -> Failure {
    Failure {
        kind,
        message: message.into(),
    }
}

/// Runs the daemon for `workspace` until it is asked to stop. `exe` is the
/// binary that provides the shim; `store` is the workspace's store, opened by
/// the caller (the service layer decides the backend). Returns the process
/// exit code.
pub fn run_daemon(workspace: Workspace, exe: PathBuf, store: Arc<dyn Store>) -> i32 {
    match prepare(workspace, exe, store) {
        Ok((daemon, _lock)) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .max_blocking_threads(32)
                .build();
            let result = match runtime {
                Ok(runtime) => runtime.block_on(serve(daemon)),
                Err(e) => Err(format!("cannot start the async runtime: {e}")),
            };
            match result {
                Ok(()) => 0,
                Err(message) => {
                    tracing::error!("{message}");
                    let _ = report(&format!("error {message}"));
                    1
                }
            }
        }
        Err(message) => {
            let _ = report(&format!("error {message}"));
            eprintln!("taskdaemon daemon: {message}");
            1
        }
    }
}

fn prepare(
    workspace: Workspace,
    exe: PathBuf,
    store: Arc<dyn Store>,
) -> Result<(Shared, PidLock), String> {
    let lock = PidLock::acquire(&workspace).map_err(|e| match e {
        LockError::Held(pid) => format!("already running (pid {pid})"),
        other => other.to_string(),
    })?;
    let config = Config::load(&workspace.config_path()).map_err(|e| e.to_string())?;
    logging::init(
        &workspace.daemon_log(),
        config.daemon.log_max_bytes,
        config.daemon.log_keep,
    )
    .map_err(|e| format!("cannot open {}: {e}", workspace.daemon_log().display()))?;
    let loops = Loops::new(config.loops.clone());
    let daemon = Arc::new(Daemon {
        workspace,
        store,
        config,
        exe,
        followed: Mutex::new(HashSet::new()),
        launch_lock: Mutex::new(()),
        shutdown: Notify::new(),
        ended: tokio::sync::broadcast::channel(256).0,
        workers: Mutex::new(HashMap::new()),
        loops,
        registry_wanted: Notify::new(),
    });
    Ok((daemon, lock))
}

async fn serve(daemon: Shared) -> Result<(), String> {
    let socket = daemon.workspace.socket_path();
    // We hold the PID lock, so a socket file left here is a dead daemon's.
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket)
        .map_err(|e| format!("cannot listen on {}: {e}", socket.display()))?;
    // Only the owner may drive the daemon: it runs commands with the caller's environment.
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot restrict {}: {e}", socket.display()))?;
    let adopted = adopt_all(&daemon).await;
    let loops = loops::start(&daemon).await;
    tracing::info!(pid = std::process::id(), adopted, loops, socket = %socket.display(), "daemon started");
    refresh_registry(&daemon).await;
    let _ = report(&format!("ok {}", std::process::id()));

    tokio::spawn(watchdog::run(daemon.clone()));
    tokio::spawn(housekeeping::run(daemon.clone()));
    tokio::spawn(registry_writer(daemon.clone()));
    queues::sync_workers(&daemon, &daemon.config);
    let mut terminate = signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut interrupt = signal(tokio::signal::unix::SignalKind::interrupt())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => { tokio::spawn(handle_connection(daemon.clone(), stream)); }
                Err(e) => tracing::warn!(error = %e, "accept failed"),
            },
            _ = daemon.shutdown.notified() => break,
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    tracing::info!("daemon stopping; supervised processes keep running");
    let _ = std::fs::remove_file(&socket);
    Ok(())
}

fn signal(kind: tokio::signal::unix::SignalKind) -> Result<tokio::signal::unix::Signal, String> {
    tokio::signal::unix::signal(kind).map_err(|e| format!("cannot handle signals: {e}"))
}

/// Re-adopts every task that should have a process: running ones and those
/// pending a (re)start. Returns how many are followed.
async fn adopt_all(daemon: &Shared) -> usize {
    let d = daemon.clone();
    let tasks = tokio::task::spawn_blocking(move || d.store.processes(&ProcessFilter::default()))
        .await
        .unwrap_or_else(|e| Err(StoreError::Conflict(e.to_string())));
    match tasks {
        Ok(tasks) => {
            for task in &tasks {
                follow(daemon, task.id.clone());
            }
            tasks.len()
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot list processes to adopt");
            0
        }
    }
}

/// What a follower does next.
enum Step {
    Wait { watch: PidWatch, orphan: bool },
    Again,
    Done,
}

/// Follows task `id` until it has ended: watches its shim (or orphaned
/// command) by pidfd, reconciles when that exits, and launches a shim when a
/// restart is due with no shim to do it.
pub(crate) fn follow(daemon: &Shared, id: String) {
    let is_new = daemon
        .followed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id.clone());
    if !is_new {
        return;
    }
    let daemon = daemon.clone();
    tokio::spawn(async move {
        loop {
            let (d, task_id) = (daemon.clone(), id.clone());
            let step = tokio::task::spawn_blocking(move || next_step(&d, &task_id)).await;
            match step {
                Ok(Ok(Step::Wait { watch, orphan })) => {
                    let pid = watch.identity().pid;
                    if let Err(e) = wait_for_exit(watch).await {
                        tracing::warn!(id, error = %e, "cannot watch process");
                        break;
                    }
                    reap(pid);
                    if orphan {
                        let (d, task_id) = (daemon.clone(), id.clone());
                        let _ = tokio::task::spawn_blocking(move || {
                            d.store.mark_lost(
                                &task_id,
                                "exited while its shim was gone; exit status unknown",
                                ACTOR,
                            )
                        })
                        .await;
                    }
                    registry_changed(&daemon);
                }
                Ok(Ok(Step::Again)) => {}
                Ok(Ok(Step::Done)) => break,
                Ok(Err(e)) => {
                    tracing::warn!(id, error = %e, "cannot follow process");
                    break;
                }
                Err(e) => {
                    tracing::error!(id, error = %e, "follower panicked");
                    break;
                }
            }
        }
        daemon
            .followed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        // Nobody listening (no queue task) is fine.
        let _ = daemon.ended.send(id);
        registry_changed(&daemon);
    });
}

fn next_step(daemon: &Daemon, id: &str) -> Result<Step, StoreError> {
    let _guard = daemon.launch_lock.lock().unwrap_or_else(|p| p.into_inner());
    let task = daemon.store.task(id)?;
    if task.status.is_terminal() {
        return Ok(Step::Done);
    }
    Ok(
        match reconcile(&daemon.workspace, &*daemon.store, &task, ACTOR)? {
            Reconciled::Shim(watch) => Step::Wait {
                watch,
                orphan: false,
            },
            Reconciled::Orphan(watch) => {
                tracing::warn!(
                    id,
                    "shim is gone but the command runs; exit status will be unknown"
                );
                Step::Wait {
                    watch,
                    orphan: true,
                }
            }
            Reconciled::NeedsShim(task) => match launch(daemon, &task) {
                Ok(_) => Step::Again,
                Err(e) => {
                    tracing::warn!(id, error = %e.message, "restart failed");
                    Step::Done
                }
            },
            Reconciled::Settled(task) => {
                tracing::info!(id, status = %task.status, "process ended");
                Step::Done
            }
        },
    )
}

async fn wait_for_exit(watch: PidWatch) -> io::Result<()> {
    // SAFETY: PidWatch owns its pidfd and returns that same descriptor for
    // its whole life; the AsyncFd owns the PidWatch.
    let fd = unsafe { AsyncFd::register_with_interest(watch, tokio::io::Interest::READABLE) }
        .map_err(io::Error::from)?;
    let _ready = fd.readable().await?;
    Ok(())
}

/// Asks for a registry rewrite without waiting for it. Followers use this:
/// the shim has rewritten the registry already, and a queue worker waiting
/// for the end of a task must not wait for a projection too.
fn registry_changed(daemon: &Daemon) {
    daemon.registry_wanted.notify_one();
}

/// Rewrites the registry whenever asked; a burst of requests (a queue
/// running many short tasks) costs one write per write's duration, not one
/// per request.
async fn registry_writer(daemon: Shared) {
    loop {
        daemon.registry_wanted.notified().await;
        refresh_registry(&daemon).await;
    }
}

async fn refresh_registry(daemon: &Shared) {
    let d = daemon.clone();
    let _ = tokio::task::spawn_blocking(move || {
        registry::refresh(&d.workspace, &*d.store, &d.config);
    })
    .await;
}

async fn handle_connection(daemon: Shared, stream: UnixStream) {
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader).lines();
    loop {
        let line = match lines.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(error = %e, "client read failed");
                return;
            }
        };
        let response = match serde_json::from_str::<Request>(&line) {
            Ok(request) => dispatch(&daemon, request).await,
            Err(e) => Response::Error {
                kind: ErrorKind::Invalid,
                message: format!("malformed request: {e}"),
            },
        };
        let mut text = serde_json::to_string(&response).unwrap_or_else(|e| {
            format!(r#"{{"response":"error","kind":"internal","message":"{e}"}}"#)
        });
        text.push('\n');
        if writer.write_all(text.as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn dispatch(daemon: &Shared, request: Request) -> Response {
    let result = match request {
        Request::Ping => {
            return Response::Pong {
                pid: std::process::id() as i32,
            };
        }
        Request::Shutdown => {
            daemon.shutdown.notify_one();
            return Response::ShuttingDown;
        }
        Request::ReloadQueues => {
            return match Config::load(&daemon.workspace.config_path()) {
                Ok(config) => {
                    queues::sync_workers(daemon, &config);
                    Response::QueuesReloaded {
                        queues: config.queue.iter().map(|q| q.id().to_owned()).collect(),
                    }
                }
                Err(e) => Response::Error {
                    kind: ErrorKind::Invalid,
                    message: e.to_string(),
                },
            };
        }
        Request::LoopRun(run) => return loops::run(daemon, *run).await,
        Request::LoopStop { id } => return loops::stop(daemon, id).await,
        Request::Spawn(spec) => blocking(daemon, move |d| spawn_process(d, spec)).await,
        Request::Kill {
            id,
            signal,
            grace_ms,
        } => {
            blocking(daemon, move |d| {
                let signal = Signal::from_named_raw(signal).ok_or_else(|| {
                    failure(ErrorKind::Invalid, format!("unknown signal {signal}"))
                })?;
                kill(d, &id, signal, Duration::from_millis(grace_ms))
            })
            .await
        }
        Request::Restart { id, grace_ms } => {
            blocking(daemon, move |d| {
                restart(d, &id, Duration::from_millis(grace_ms))
            })
            .await
        }
    };
    match result {
        Ok(task) => {
            if !task.status.is_terminal() {
                follow(daemon, task.id.clone());
            }
            refresh_registry(daemon).await;
            Response::Task {
                task: Box::new(task),
            }
        }
        Err(f) => Response::Error {
            kind: f.kind,
            message: f.message,
        },
    }
}

async fn blocking(
    daemon: &Shared,
    work: impl FnOnce(&Daemon) -> Result<TaskRecord, Failure> + Send + 'static,
) -> Result<TaskRecord, Failure> {
    let d = daemon.clone();
    tokio::task::spawn_blocking(move || work(&d))
        .await
        .unwrap_or_else(|e| {
            Err(failure(
                ErrorKind::Internal,
                format!("request panicked: {e}"),
            ))
        })
}

fn spawn_process(daemon: &Daemon, spec: NewProcess) -> Result<TaskRecord, Failure> {
    if spec.argv.is_empty() || spec.argv[0].is_empty() {
        return Err(failure(
            ErrorKind::Invalid,
            "missing command: nothing to run",
        ));
    }
    let task = daemon.store.create_process(&spec, ACTOR)?;
    launch(daemon, &task)?;
    Ok(daemon.store.task(&task.id)?)
}

/// Launches the shim for a pending task and waits for it to report.
pub(crate) fn launch(daemon: &Daemon, task: &TaskRecord) -> Result<(), Failure> {
    match launch_shim(&daemon.exe, &daemon.workspace, &task.id) {
        Ok(_) => Ok(()),
        // The shim recorded the failure itself (e.g. no such program).
        Err(LaunchError::Refused(message)) => Err(failure(
            ErrorKind::Invalid,
            format!("{}: {message}", task.id),
        )),
        Err(e) => {
            let message = format!("{}: {e}", task.id);
            let _ = daemon.store.record_start_failure(&task.id, &message, ACTOR);
            Err(failure(ErrorKind::Internal, message))
        }
    }
}

fn kill(daemon: &Daemon, id: &str, signal: Signal, grace: Duration) -> Result<TaskRecord, Failure> {
    let task = daemon.store.task(id)?;
    not_a_loop(&task)?;
    match task.status {
        Status::Running => {}
        Status::Pending | Status::Blocked => return Ok(daemon.store.request_stop(id, ACTOR)?),
        ended => {
            let how = task.exit().map(|e| format!(", {e}")).unwrap_or_default();
            return Err(failure(
                ErrorKind::Conflict,
                format!("{} is not running (status {ended}{how})", task.id),
            ));
        }
    }
    daemon.store.request_stop(id, ACTOR)?;
    let (Some(pgid), Some(leader)) = (task.pgid, task.process_identity()) else {
        return Err(failure(
            ErrorKind::Internal,
            format!("{} has no process recorded", task.id),
        ));
    };
    let group = Group { pgid, leader };
    let outcome = group
        .terminate(signal, grace)
        .map_err(|e| failure(ErrorKind::Conflict, format!("{}: {e}", task.id)))?;
    tracing::info!(id = task.id, ?outcome, "terminated process group");
    wait_for_record(daemon, &task, grace + RECORD_WAIT)
}

/// Loops have no process to signal: they are stopped with `loop stop`.
fn not_a_loop(task: &TaskRecord) -> Result<(), Failure> {
    if task.kind == TaskKind::Loop {
        return Err(failure(
            ErrorKind::Invalid,
            format!(
                "{} is a loop, not a process: use `taskdaemon loop stop {}`",
                task.id, task.id
            ),
        ));
    }
    Ok(())
}

/// Waits for the shim of `task` to record its end, then returns the task.
fn wait_for_record(
    daemon: &Daemon,
    task: &TaskRecord,
    timeout: Duration,
) -> Result<TaskRecord, Failure> {
    if let Some(watch) = task
        .shim_identity()
        .and_then(|s| PidWatch::open(&s).ok().flatten())
    {
        let _ = watch.wait(Some(timeout));
        reap(watch.identity().pid);
    }
    let current = daemon.store.task(&task.id)?;
    if current.status != Status::Running {
        return Ok(current);
    }
    // The shim is gone without recording: settle it from what is left.
    Ok(
        match reconcile(&daemon.workspace, &*daemon.store, &current, ACTOR)? {
            Reconciled::Settled(task) | Reconciled::NeedsShim(task) => task,
            Reconciled::Shim(_) | Reconciled::Orphan(_) => daemon.store.task(&task.id)?,
        },
    )
}

fn restart(daemon: &Daemon, id: &str, grace: Duration) -> Result<TaskRecord, Failure> {
    let task = daemon.store.task(id)?;
    not_a_loop(&task)?;
    if !task.status.is_terminal() {
        kill(daemon, id, Signal::TERM, grace)?;
    }
    let _guard = daemon.launch_lock.lock().unwrap_or_else(|p| p.into_inner());
    let task = daemon.store.reopen_for_restart(id, ACTOR)?;
    launch(daemon, &task)?;
    Ok(daemon.store.task(id)?)
}
