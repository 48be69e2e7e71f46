//! Messages between the CLI and the daemon: one JSON object per line.
//!
//! A connection opens with [`Request::Hello`] carrying the daemon's socket
//! token (read from `.taskdaemon/daemon-token`); the daemon answers nothing
//! to a good one and refuses the connection otherwise. The socket's mode and
//! the peer's uid keep other users out; the token keeps out the owner's own
//! processes that cannot read `.taskdaemon/`, such as a model's commands in
//! the Landlock sandbox, which can still reach a path-named socket on
//! kernels before Landlock ABI 9.

use std::fmt;

use serde::{Deserialize, Serialize};
use taskdaemon_core::{LoopRecord, NewProcess, TaskRecord};
use taskdaemon_llm::LoopSpec;

/// What a client asks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// The first line of every connection: proves the client can read the
    /// daemon's token file.
    Hello {
        token: SocketToken,
    },
    Ping,
    Spawn(Box<NewProcess>),
    Kill {
        id: String,
        /// Signal number sent first.
        signal: i32,
        grace_ms: u64,
    },
    Restart {
        id: String,
        grace_ms: u64,
    },
    Shutdown,
    /// Re-read the `[[queue]]` list: start workers for new queues, stop removed ones.
    ReloadQueues,
    /// Create and start an LLM loop.
    LoopRun(Box<LoopRun>),
    /// Stop a loop; answered once it has ended (or with its state after a while).
    LoopStop {
        id: String,
    },
    /// Watch a process another tool started.
    Adopt(AdoptRequest),
    /// A person changed a plan (new, approved, resumed, cancelled, a
    /// message or an answer): the pipeline scheduler looks at every plan
    /// now instead of at its next tick.
    WakePipeline,
}

/// The daemon socket's token. `Debug` never shows it, so a logged request
/// cannot leak it; comparison takes the same time wherever the inputs differ.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SocketToken(String);

impl SocketToken {
    /// Wraps a token read from the token file.
    pub fn new(token: impl Into<String>) -> Self {
        SocketToken(token.into())
    }

    /// Whether `self` is `expected`, in constant time.
    pub fn matches(&self, expected: &SocketToken) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(self.0.as_bytes().ct_eq(expected.0.as_bytes()))
    }

    /// The raw token, for writing the token file only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SocketToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SocketToken([REDACTED])")
    }
}

/// A process to adopt, and how to label it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdoptRequest {
    pub pid: i32,
    pub name: Option<String>,
    pub tool: Option<String>,
    pub session: Option<String>,
}

/// A loop to create. The spec carries the base URL (not secret, stored);
/// the key travels only in memory, over the owner-only socket, and is never
/// stored: a restarted daemon uses its own environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoopRun {
    /// The engine's spec, with the spec text inline and an absolute workdir.
    pub spec: LoopSpec,
    pub name: Option<String>,
    pub session: Option<String>,
    /// The command line that asked, for reading.
    pub argv: Vec<String>,
    /// The API key from the caller's environment, if it has one.
    pub api_key: Option<Secret>,
    /// Start it from a loop type of the daemon's current configuration.
    #[serde(default)]
    pub typed: Option<TypedRun>,
}

/// `loop run --type NAME --input k=v ...`: the daemon resolves the type with
/// the configuration it holds now, and the loop keeps that version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TypedRun {
    pub name: String,
    pub inputs: std::collections::BTreeMap<String, String>,
    /// What the caller set explicitly; wins over the type.
    pub overrides: taskdaemon_looptypes::Overrides,
}

/// A secret string: sent as is, but never shown by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The raw value, for building a client only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

/// What the daemon answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "snake_case")]
pub enum Response {
    Pong {
        pid: i32,
    },
    Task {
        task: Box<TaskRecord>,
    },
    Loop {
        record: Box<LoopRecord>,
    },
    ShuttingDown,
    /// The queues that now have workers.
    QueuesReloaded {
        queues: Vec<String>,
    },
    /// The pipeline scheduler will look at every plan now.
    PipelineWoken,
    Error {
        kind: ErrorKind,
        message: String,
    },
}

/// Broad classes of failure, so the CLI can pick an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No such task.
    NotFound,
    /// The request does not fit the task's state.
    Conflict,
    /// The request itself is malformed.
    Invalid,
    /// The daemon failed to do it.
    Internal,
}
