//! Folder-queue tasks as the store keeps them: the spec of a new agent task
//! and the queue item that ties it to its document.
//!
//! A task document becomes one `agent` task. Its queue item remembers which
//! queue and file it came from, how many attempts it may take, and whether
//! its result has been written back to the folder (the projection step that
//! must be redone after a crash).

use serde::{Deserialize, Serialize};

use crate::process::RestartPolicy;
use crate::time::{Millis, serde_rfc3339};

/// Everything needed to create the task for one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAgent {
    /// The id wanted, normally the document's file stem; the store makes it
    /// unique (and distinct from `PREFIX-N` ids) with a `~N` suffix.
    pub wanted_id: String,
    /// The queue id.
    pub queue: String,
    /// The document's file name inside `pending/`.
    pub document: String,
    /// `claude-code` or `command`.
    pub executor: String,
    /// Program and arguments; empty for a document that could not be parsed.
    pub argv: Vec<String>,
    /// Working directory, absolute.
    pub cwd: String,
    /// The complete environment the executor starts with.
    pub env: Vec<(String, String)>,
    /// Attempts after the first are automatic restarts under this policy.
    pub restart: RestartPolicy,
    pub max_attempts: u32,
    /// Per-attempt time limit, none for no limit.
    pub timeout_ms: Option<u64>,
    /// What the executor may use (memory, CPU time, files, niceness).
    #[serde(default)]
    pub limits: crate::ResourceLimits,
    /// The `container` executor: run in this container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<crate::ContainerSpec>,
}

/// The queue side of an `agent` task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueItem {
    pub task_id: String,
    pub queue: String,
    pub document: String,
    pub executor: String,
    pub max_attempts: u32,
    pub timeout_ms: Option<u64>,
    /// The result has been written to `results/` and the document moved.
    pub finished: bool,
    /// The result JSON, once written.
    pub result: Option<serde_json::Value>,
    #[serde(with = "serde_rfc3339")]
    pub created_at: Millis,
    /// When the result was written.
    #[serde(default, with = "serde_rfc3339::option")]
    pub finished_at: Option<Millis>,
    /// Submitted for workers to claim (`taskdaemon submit`), rather than run
    /// by the daemon that watches its folder.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub claimable: bool,
}

/// Done and failed counts of one queue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueCounts {
    pub queue: String,
    /// Finished with success.
    pub done: u64,
    /// Finished otherwise (failed, cancelled, lost, malformed).
    pub failed: u64,
    /// Picked up and not finished yet.
    pub open: u64,
}
