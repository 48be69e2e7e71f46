//! Talking to the daemon, starting it when it is not running, and stopping it.

use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use taskdaemon_supervisor::{LaunchError, launch_detached, pidfd::PidWatch, procfs};
use taskdaemon_workspace::{Workspace, secret};

use crate::lock::running_pid;
use crate::protocol::{ErrorKind, Request, Response, SocketToken};
use crate::server::DAEMON_SUBCOMMAND;

/// How long `start` waits for a new daemon to report ready.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long `stop` waits for the daemon to exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A failed exchange with the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the daemon at {path}: {source}")]
    Connect {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the daemon's socket token at {path}: {reason}")]
    Token { path: String, reason: String },
    #[error("lost the connection to the daemon: {0}")]
    Io(#[from] io::Error),
    #[error("the daemon sent something unreadable: {0}")]
    Protocol(String),
    #[error("{message}")]
    Daemon { kind: ErrorKind, message: String },
    #[error(transparent)]
    Launch(#[from] LaunchError),
    #[error("the daemon (pid {pid}) did not stop within {secs}s", secs = STOP_TIMEOUT.as_secs())]
    StopTimeout { pid: i32 },
}

/// A connection to a workspace's daemon.
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    /// The hello line, sent with the first request: one write, so the
    /// daemon wakes once for both.
    hello: Option<String>,
}

impl Client {
    /// Connects to a running daemon and presents its socket token.
    pub fn connect(workspace: &Workspace) -> Result<Self, ClientError> {
        let path = workspace.socket_path();
        let stream = UnixStream::connect(&path).map_err(|source| ClientError::Connect {
            path: path.display().to_string(),
            source,
        })?;
        let token = read_socket_token(workspace)?;
        // No answer to a good hello; a refusal is the answer to the first request.
        Ok(Self {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            hello: Some(line_of(&Request::Hello { token })?),
        })
    }

    fn send(&mut self, request: &Request) -> Result<(), ClientError> {
        let line = line_of(request)?;
        match self.hello.take() {
            Some(hello) => self.writer.write_all((hello + &line).as_bytes())?,
            None => self.writer.write_all(line.as_bytes())?,
        }
        Ok(())
    }

    /// Connects, starting the daemon first when none runs.
    pub fn connect_or_start(workspace: &Workspace, exe: &Path) -> Result<Self, ClientError> {
        match Self::connect(workspace) {
            Ok(client) => Ok(client),
            Err(ClientError::Connect { .. }) => {
                start_daemon(workspace, exe)?;
                let deadline = Instant::now() + START_TIMEOUT;
                loop {
                    match Self::connect(workspace) {
                        Err(ClientError::Connect { .. }) if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        other => return other,
                    }
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Sends one request and reads its answer. Daemon-side failures come back
    /// as [`ClientError::Daemon`].
    pub fn request(&mut self, request: &Request) -> Result<Response, ClientError> {
        self.send(request)?;
        let mut answer = String::new();
        if self.reader.read_line(&mut answer)? == 0 {
            return Err(ClientError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the daemon closed the connection without answering",
            )));
        }
        match serde_json::from_str(&answer).map_err(|e| ClientError::Protocol(e.to_string()))? {
            Response::Error { kind, message } => Err(ClientError::Daemon { kind, message }),
            response => Ok(response),
        }
    }
}

/// `request` as the line that carries it.
fn line_of(request: &Request) -> Result<String, ClientError> {
    let mut line =
        serde_json::to_string(request).map_err(|e| ClientError::Protocol(e.to_string()))?;
    line.push('\n');
    Ok(line)
}

/// The running daemon's socket token. The daemon writes it before it
/// listens, so a socket that accepts has a token beside it.
fn read_socket_token(workspace: &Workspace) -> Result<SocketToken, ClientError> {
    let path = workspace.socket_token_path();
    match secret::read_secret(&path) {
        Ok(Some(token)) => Ok(SocketToken::new(token)),
        Ok(None) => Err(ClientError::Token {
            path: path.display().to_string(),
            reason: "missing or empty".to_string(),
        }),
        Err(e) => Err(ClientError::Token {
            path: path.display().to_string(),
            reason: e.to_string(),
        }),
    }
}

/// Starts the daemon for `workspace` unless one runs; returns its PID and
/// whether this call started it.
pub fn start_daemon(workspace: &Workspace, exe: &Path) -> Result<(i32, bool), ClientError> {
    start_daemon_with(workspace, exe, &[])
}

/// [`start_daemon`], passing `args` to the daemon subcommand (e.g. `--web ADDR`).
pub fn start_daemon_with(
    workspace: &Workspace,
    exe: &Path,
    args: &[String],
) -> Result<(i32, bool), ClientError> {
    if let Some(pid) = running_pid(workspace) {
        return Ok((pid, false));
    }
    let mut argv = vec![
        OsStr::new("--workspace"),
        workspace.root().as_os_str(),
        OsStr::new(DAEMON_SUBCOMMAND),
    ];
    argv.extend(args.iter().map(OsStr::new));
    match launch_detached(exe, &argv, "daemon", &workspace.daemon_log(), START_TIMEOUT) {
        Ok(launched) => Ok((launched.pid, true)),
        // Another client started one at the same moment: use that one.
        Err(LaunchError::Refused(message)) if message.starts_with("already running") => {
            let deadline = Instant::now() + START_TIMEOUT;
            loop {
                if let Some(pid) = running_pid(workspace).filter(|&p| p > 0) {
                    return Ok((pid, false));
                }
                if Instant::now() > deadline {
                    return Err(ClientError::Launch(LaunchError::Refused(message)));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Asks the daemon to shut down and waits until it has exited. Supervised
/// processes keep running. Returns the PID that was stopped, if any.
pub fn stop_daemon(workspace: &Workspace) -> Result<Option<i32>, ClientError> {
    let Some(pid) = running_pid(workspace) else {
        return Ok(None);
    };
    let watch = procfs::identity(pid)
        .ok()
        .and_then(|identity| PidWatch::open(&identity).ok().flatten());
    let mut client = Client::connect(workspace)?;
    client.request(&Request::Shutdown)?;
    let deadline = Instant::now() + STOP_TIMEOUT;
    if let Some(watch) = watch {
        watch.wait(Some(STOP_TIMEOUT))?;
    }
    // The lock is released at exit; wait for it so a following start succeeds.
    while running_pid(workspace).is_some() {
        if Instant::now() > deadline {
            return Err(ClientError::StopTimeout { pid });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(Some(pid))
}
