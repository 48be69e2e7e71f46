//! Messages between the CLI and the daemon: one JSON object per line.

use serde::{Deserialize, Serialize};
use taskdaemon_core::{NewProcess, TaskRecord};

/// What a client asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    Ping,
    Spawn(NewProcess),
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
    ShuttingDown,
    /// The queues that now have workers.
    QueuesReloaded {
        queues: Vec<String>,
    },
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
