//! The daemon process: starting it ([`run_daemon`], [`prepare`]), the socket
//! listener, and adoption of the processes the store says should run.
//!
//! What a request does is in `handlers/` (one file per request); following
//! a process and launching its shim is in `follow.rs`; the shared state is
//! in `state.rs`.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use taskdaemon_store::{ProcessFilter, Store, StoreError};
use taskdaemon_supervisor::launch::report;
use taskdaemon_workspace::{Config, Workspace, secret};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Notify;

use crate::blocking::blocking;
use crate::follow::follow;
use crate::lock::{LockError, PidLock};
use crate::loop_state::Loops;
use crate::loops;
use crate::protocol::{
    ErrorKind, MAX_REQUEST_BYTES, Request, Response, SocketToken, parse_request, read_frame,
};
use crate::state::{Daemon, Shared};
use crate::{handlers, housekeeping, logging, queues, watchdog};

/// The hidden subcommand that runs the daemon: `taskdaemon --workspace DIR __daemon`.
pub const DAEMON_SUBCOMMAND: &str = "__daemon";

/// Runs the daemon for `workspace` until it is asked to stop. `exe` is the
/// binary that provides the shim; `store` is the workspace's store, opened by
/// the caller (the service layer decides the backend). Returns the process
/// exit code.
pub fn run_daemon(workspace: Workspace, exe: PathBuf, store: Arc<dyn Store>) -> i32 {
    run_daemon_with(workspace, exe, store, Extensions::default())
}

/// How long an idle blocking-pool thread waits for more work before it
/// ends (tokio's default is 10 s). Shorter than the watchdog's idle settle,
/// so the threads start-up used are gone (their stacks handed back) by the
/// time an idle daemon trims its heap; a burst of requests keeps its
/// threads, since each ends only after this long without work.
const BLOCKING_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs once the daemon holds its lock, before it serves: what an
/// interface adds to the daemon process (the web server). An error fails
/// the start and is reported to the starting client.
pub type StartHook = Box<dyn FnOnce() -> Result<(), String>>;

/// Runs a call of the layer above on the daemon's open store, for a client
/// that asks the daemon ([`Request::Call`]): the call in, its answer out,
/// both JSON that the service layer defines and the daemon passes on
/// unread, running the call off its async thread.
pub type CallHandler =
    Arc<dyn Fn(serde_json::Value) -> Result<serde_json::Value, CallError> + Send + Sync>;

/// Why a [`CallHandler`] gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// Not a call this daemon knows (its client is newer): the client
    /// makes the answer itself.
    Unknown(String),
    /// The call ran and failed.
    Failed(String),
}

/// What the layers above add to the daemon process.
#[derive(Default)]
pub struct Extensions {
    /// Run once the daemon holds the workspace's lock (so a second daemon
    /// fails on the lock, not on what the hook binds).
    pub on_start: Option<StartHook>,
    /// Answers [`Request::Call`]; without it the daemon refuses every call
    /// as unknown, and clients make the answers themselves.
    pub calls: Option<CallHandler>,
}

/// [`run_daemon`], with what the layers above add to it.
pub fn run_daemon_with(
    workspace: Workspace,
    exe: PathBuf,
    store: Arc<dyn Store>,
    extensions: Extensions,
) -> i32 {
    match prepare(workspace, exe, store, extensions) {
        Ok((daemon, _lock)) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .max_blocking_threads(32)
                .thread_keep_alive(BLOCKING_KEEP_ALIVE)
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

/// Runs the daemon in the foreground (`taskdaemon run`, for systemd and
/// containers): as [`run_daemon`], with the log copied to stderr. SIGTERM
/// and SIGINT end it cleanly with exit code 0; supervised processes keep
/// running.
pub fn run_foreground(
    workspace: Workspace,
    exe: PathBuf,
    store: Arc<dyn Store>,
    extensions: Extensions,
) -> i32 {
    logging::also_to_stderr();
    run_daemon_with(workspace, exe, store, extensions)
}

fn prepare(
    workspace: Workspace,
    exe: PathBuf,
    store: Arc<dyn Store>,
    extensions: Extensions,
) -> Result<(Shared, PidLock), String> {
    let lock = PidLock::acquire(&workspace).map_err(|e| match e {
        LockError::Held(pid) => format!("already running (pid {pid})"),
        other => other.to_string(),
    })?;
    let Extensions { on_start, calls } = extensions;
    if let Some(hook) = on_start {
        hook()?;
    }
    let config = Config::load(&workspace.config_path()).map_err(|e| e.to_string())?;
    logging::init(
        &workspace.daemon_log(),
        config.daemon.log_max_bytes,
        config.daemon.log_keep,
    )
    .map_err(|e| format!("cannot open {}: {e}", workspace.daemon_log().display()))?;
    let loops = Loops::new(config.loops.clone());
    let changes = crate::store_changes::StoreChanges::start(store.clone());
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
        types: crate::loop_types::TypeConfig::new(),
        registry_wanted: Notify::new(),
        follow_started: Notify::new(),
        follows_begun: Default::default(),
        pipeline: crate::pipeline::Pipeline::default(),
        changes,
        request_standby: Default::default(),
        calls,
    });
    Ok((daemon, lock))
}

async fn serve(daemon: Shared) -> Result<(), String> {
    let socket = daemon.workspace.socket_path();
    // A new token per daemon, written before the socket exists, so any
    // client that reaches the socket finds the token beside it.
    let token = new_socket_token(&daemon.workspace)?;
    // We hold the PID lock, so a socket file left here is a dead daemon's.
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket)
        .map_err(|e| format!("cannot listen on {}: {e}", socket.display()))?;
    // Only the owner may drive the daemon: it runs commands with the caller's environment.
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot restrict {}: {e}", socket.display()))?;
    let adopted = adopt_all(&daemon).await;
    crate::loop_types::start(&daemon).await;
    let loops = loops::start(&daemon).await;
    crate::pipeline::start(&daemon).await;
    tracing::info!(pid = std::process::id(), adopted, loops, socket = %socket.display(), "daemon started");
    daemon.refresh_registry().await;
    // Before the start is reported: whoever started the daemon may drop a
    // document into a queue folder it creates as soon as it hears.
    queues::sync_workers(&daemon, &daemon.config);
    let _ = report(&format!("ok {}", std::process::id()));

    tokio::spawn(watchdog::run(daemon.clone()));
    tokio::spawn(housekeeping::run(daemon.clone()));
    tokio::spawn(daemon.clone().registry_writer());
    tokio::spawn(crate::request_standby::keep(daemon.clone()));
    crate::seed_files::start(&daemon);
    crate::gates::start(&daemon);
    let mut terminate = signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut interrupt = signal(tokio::signal::unix::SignalKind::interrupt())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => { tokio::spawn(handle_connection(daemon.clone(), token.clone(), stream)); }
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

/// Whether the peer runs as the daemon's own user. The socket's 0600 mode
/// keeps other users out already; the kernel's word on the peer
/// (SO_PEERCRED) still holds if that mode is loosened or the socket is
/// passed on, and the daemon runs commands in its own name.
fn peer_is_owner(stream: &UnixStream) -> Result<(), String> {
    let owner = rustix::process::geteuid().as_raw();
    match stream.peer_cred() {
        Ok(peer) if peer.uid() == owner => Ok(()),
        Ok(peer) => Err(format!(
            "uid {} is not the daemon's owner (uid {owner})",
            peer.uid()
        )),
        Err(e) => Err(format!("cannot read the peer's credentials: {e}")),
    }
}

fn signal(kind: tokio::signal::unix::SignalKind) -> Result<tokio::signal::unix::Signal, String> {
    tokio::signal::unix::signal(kind).map_err(|e| format!("cannot handle signals: {e}"))
}

/// Re-adopts every task that should have a process: running ones and those
/// pending a (re)start. Returns how many are followed.
async fn adopt_all(daemon: &Shared) -> usize {
    let d = daemon.clone();
    let tasks = blocking(move || d.store.processes(&ProcessFilter::default()))
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

/// Makes and writes this daemon's socket token.
fn new_socket_token(workspace: &Workspace) -> Result<Arc<SocketToken>, String> {
    let path = workspace.socket_token_path();
    let token =
        secret::random_secret().map_err(|e| format!("cannot make the socket token: {e}"))?;
    secret::write_secret(&path, &token)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(Arc::new(SocketToken::new(token)))
}

/// Why a connection's first line does not let it in, if it does not.
fn check_hello(line: &str, token: &SocketToken) -> Result<(), String> {
    match parse_request(line) {
        Ok(Request::Hello { token: given }) if given.matches(token) => Ok(()),
        Ok(Request::Hello { .. }) => {
            Err("the connection presented a stale or wrong socket token".to_string())
        }
        _ => Err(
            "the connection did not open with the daemon's socket token \
             (clients read it from .taskdaemon/daemon-token)"
                .to_string(),
        ),
    }
}

/// Answers `reason` as a refusal and logs it.
async fn refuse(writer: &mut (impl AsyncWriteExt + Unpin), reason: &str) {
    tracing::warn!(%reason, "refused a connection");
    let refusal = Response::Error {
        kind: ErrorKind::Invalid,
        message: format!("refused: {reason}"),
    };
    let _ = write_response(writer, &refusal).await;
}

/// Reads and drops what a refused client sent after its first line (its
/// first request, usually), until it hangs up, for at most a second and
/// 64 KiB. Closing a Unix socket with unread input resets the connection,
/// and the client would see the reset instead of the refusal.
async fn drain(reader: &mut (impl AsyncReadExt + Unpin)) {
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        let mut total = 0;
        while total < 64 * 1024 {
            match reader.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    })
    .await;
}

async fn handle_connection(daemon: Shared, token: Arc<SocketToken>, mut stream: UnixStream) {
    if let Err(reason) = peer_is_owner(&stream) {
        refuse(&mut stream, &reason).await;
        return;
    }
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let hello = match read_frame(&mut reader, MAX_REQUEST_BYTES).await {
        Ok(Some(line)) => check_hello(&line, &token),
        Ok(None) => return,
        // Too long or not UTF-8: no token either.
        Err(_) => check_hello("", &token),
    };
    if let Err(reason) = hello {
        refuse(&mut writer, &reason).await;
        let _ = writer.shutdown().await;
        drain(&mut reader).await;
        return;
    }
    loop {
        let response = match read_frame(&mut reader, MAX_REQUEST_BYTES).await {
            Ok(Some(line)) => match parse_request(&line) {
                Ok(request) => handlers::dispatch(&daemon, request).await,
                Err(refusal) => refusal,
            },
            Ok(None) => return,
            // Too long or not UTF-8: say why, then close, since the rest of
            // the stream can no longer be cut into requests.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                let refusal = Response::Error {
                    kind: ErrorKind::Invalid,
                    message: format!("malformed request: {e}"),
                };
                let _ = write_response(&mut writer, &refusal).await;
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, "client read failed");
                return;
            }
        };
        if write_response(&mut writer, &response).await.is_err() {
            return;
        }
    }
}

/// Writes one answer line.
async fn write_response(
    writer: &mut (impl AsyncWriteExt + Unpin),
    response: &Response,
) -> std::io::Result<()> {
    let mut text = serde_json::to_string(response)
        .unwrap_or_else(|e| format!(r#"{{"response":"error","kind":"internal","message":"{e}"}}"#));
    text.push('\n');
    writer.write_all(text.as_bytes()).await
}
