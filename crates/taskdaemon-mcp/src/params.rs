//! The parameters of each MCP tool. Their doc comments are the JSON schema's
//! descriptions, so they are written for the agent calling the tool.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;

/// Start a command under supervision.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SpawnParams {
    /// The program and its arguments, e.g. ["cargo", "test"]. For a shell
    /// line use ["sh", "-c", "LINE"].
    pub command: Vec<String>,
    /// A short name for people.
    pub name: Option<String>,
    /// Working directory (default: the MCP server's, normally the project root).
    pub cwd: Option<PathBuf>,
    /// Environment variables set on top of the server's environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// When to start it again after it exits: never (default), on-failure or always.
    pub restart: Option<String>,
    /// Most restarts in all (default 3 when restart is given).
    pub max_restarts: Option<u32>,
    /// Alert when the process shows no output and no CPU for this long, e.g. "10m".
    pub hang_timeout: Option<String>,
    /// Kill it when it and its children hold more resident memory than this, e.g. "2G".
    pub max_memory: Option<String>,
    /// Kill a process of it when it has used this much CPU time, e.g. "10m".
    pub max_cpu_time: Option<String>,
    /// Most open files per process.
    pub max_files: Option<u64>,
    /// Run at this niceness (-20 first to 19 last).
    pub nice: Option<i32>,
}

/// Which supervised processes to list.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct PsParams {
    /// Include ended processes (default: running ones only).
    #[serde(default)]
    pub all: bool,
}

/// Read a process's output.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct LogsParams {
    /// The process id, e.g. CLAUDE-3.
    pub id: String,
    /// Only the last this many lines.
    pub tail: Option<usize>,
    /// Only what follows this byte offset: pass the `next_offset` of the
    /// previous call to read only new output.
    pub since: Option<u64>,
    /// Read stderr instead of stdout.
    #[serde(default)]
    pub stderr: bool,
}

/// Wait for a task to end.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct WaitParams {
    /// The task id.
    pub id: String,
    /// Give up after this long, e.g. "30s" or "5m" (default 60s).
    pub timeout: Option<String>,
}

/// Stop a process.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct KillParams {
    /// The process id.
    pub id: String,
    /// The first signal, by name or number (default TERM).
    pub signal: Option<String>,
    /// Time to exit after the first signal before SIGKILL (default 5s).
    pub grace: Option<String>,
}

/// Restart a process.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RestartParams {
    /// The process id.
    pub id: String,
    /// Time to exit after SIGTERM before SIGKILL, when it runs (default 5s).
    pub grace: Option<String>,
}

/// The post-compaction summary.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct RehydrateParams {
    /// Most tokens to return (4 characters count as one; default 1500).
    pub budget: Option<usize>,
    /// Do not mark what is shown as seen.
    #[serde(default)]
    pub peek: bool,
}

/// A tracked task to add.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct TaskAddParams {
    /// What the task is.
    pub title: String,
    /// More detail.
    pub description: Option<String>,
    /// An integer (higher first) or low, normal, high, urgent (default normal).
    pub priority: Option<String>,
    /// Labels.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Tasks that must succeed first.
    #[serde(default)]
    pub after: Vec<String>,
    /// Make it a subtask of this task (its id becomes PARENT.N).
    pub parent: Option<String>,
}

/// A tracked task by id.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct TaskIdParams {
    /// The task id, e.g. CLAUDE-7.
    pub id: String,
}

/// Mark a tracked task done.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct TaskDoneParams {
    /// The task id.
    pub id: String,
    /// What was done.
    pub note: Option<String>,
}

/// Mark a tracked task failed.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct TaskFailParams {
    /// The task id.
    pub id: String,
    /// Why it failed.
    pub reason: String,
}

/// Ready work.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct TaskReadyParams {
    /// At most this many (default 20).
    pub limit: Option<usize>,
    /// One short line per task instead of JSON objects.
    #[serde(default)]
    pub compact: bool,
}

/// Files the work on a task touched.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct TaskContextParams {
    /// The task id.
    pub id: String,
    /// Paths of files modified.
    pub files: Vec<String>,
}

/// Something to remember for later sessions.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RememberParams {
    /// What to remember.
    pub text: String,
    /// decision, pattern, note or fact.
    pub kind: String,
    /// The task it belongs to.
    pub task: Option<String>,
    /// Name it: remembering the same key again replaces the text.
    pub key: Option<String>,
}

/// Full-text search over tasks, memory and history.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchParams {
    /// Words to look for.
    pub query: String,
    /// At most this many results (default 20).
    pub limit: Option<usize>,
}

/// A page of the audit trail.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct HistoryParams {
    /// Only events of this task.
    pub task: Option<String>,
    /// Only events since this long ago ("2h", "3d") or this RFC 3339 time.
    pub since: Option<String>,
    /// Only events after this sequence number: pass the last `seq` seen to page on.
    pub after_seq: Option<i64>,
    /// At most this many events, oldest first (default 100).
    pub limit: Option<usize>,
}

/// Work to queue.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SubmitParams {
    /// The queue to put it in, e.g. ad-hoc.
    pub queue: String,
    /// A shell command to run (or give a document).
    pub command: Option<String>,
    /// A task document: Markdown with optional front matter.
    pub document: Option<String>,
    /// The document's file name (default task.md).
    pub document_name: Option<String>,
    /// command or claude-code (default: the document's, else command).
    pub executor: Option<String>,
    /// The task id wanted (default: the file stem, or job-TIMESTAMP).
    pub id: Option<String>,
}

/// Which queue tasks to list.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct TasksListParams {
    /// Only tasks of this queue.
    pub queue: Option<String>,
    /// Only tasks in this status (pending, running, succeeded, failed, ...).
    pub status: Option<String>,
    /// At most this many, the newest (default 100).
    pub limit: Option<usize>,
}

/// An LLM loop to start; it runs on in the daemon.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct LoopRunParams {
    /// The spec file the model works to (required without a loop type).
    pub spec: Option<PathBuf>,
    /// Validation command run with `sh -c` after each iteration; exit 0
    /// ends the loop (required without a loop type that has one).
    pub validate: Option<String>,
    /// A loop type from taskdaemon.yml to start from (`taskdaemon loop types`).
    #[serde(rename = "type")]
    pub loop_type: Option<String>,
    /// The type's inputs, as NAME=VALUE.
    #[serde(default)]
    pub inputs: Vec<String>,
    /// Iterations before the loop gives up (default 10).
    pub max_iterations: Option<u32>,
    /// anthropic (default) or openai.
    pub provider: Option<String>,
    /// Model name (default: the provider's).
    pub model: Option<String>,
    /// The directory the loop works in (default: the server's).
    pub workdir: Option<PathBuf>,
    /// A short name for people (default: the spec file's name).
    pub name: Option<String>,
}

/// One loop, or the list.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct LoopStatusParams {
    /// A loop id: its counters and every iteration. Without it: the loops.
    pub id: Option<String>,
    /// Without an id: include ended loops.
    #[serde(default)]
    pub all: bool,
}

/// Plans, or only those in progress.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct PlanListParams {
    /// Include plans that ended (default: only those in progress).
    #[serde(default)]
    pub all: bool,
}

/// One plan.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct PlanShowParams {
    /// The plan id, `PLAN-N`.
    pub id: String,
}

/// An answer to a question a plan's loop asked the human.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct PlanAnswerParams {
    /// The query's message id, `MSG-N` (from `plan_show`, `rehydrate` or `plan_list`'s waiting queries).
    pub message: String,
    /// The answer; the loop reads it in its next iteration.
    pub answer: String,
}

/// Link two tracked tasks: `from KIND to`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct TaskLinkParams {
    /// The subject, e.g. CLAUDE-3.
    pub from: String,
    /// blocks, parent-child, waits-for (these block), related,
    /// discovered-from, supersedes or caused-by.
    pub kind: String,
    /// The object, e.g. CLAUDE-4.
    pub to: String,
}

/// Remove links between two tracked tasks.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct TaskUnlinkParams {
    /// The subject of the links, e.g. CLAUDE-3.
    pub from: String,
    /// Only this kind (default: every kind from `from` to `to`).
    pub kind: Option<String>,
    /// The object of the links, e.g. CLAUDE-4.
    pub to: String,
}

/// Which task to do now.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct TaskNextParams {
    /// Also say which rule decided, against which runner-up.
    #[serde(default)]
    pub explain: bool,
}

/// Take a task for this agent, with a lease its activity renews.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct TaskClaimParams {
    /// The task to claim; without it, the task `task_next` picks.
    pub id: Option<String>,
    /// How long the claim lasts without activity (default 30m).
    pub lease: Option<String>,
}

/// One page of tracked tasks, newest first, one compact line each.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct TaskListParams {
    /// Only tasks in this status (pending, blocked, running, succeeded...).
    pub status: Option<String>,
    /// Only tasks with this label.
    pub label: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Tasks per page (default 200, at most 500).
    pub limit: Option<usize>,
}

/// Hold a tracked task that has not started until events happen; every
/// gate must open before the task is ready.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct TaskGateParams {
    /// The tracked task to hold back, e.g. CLAUDE-3.
    pub id: String,
    /// Wait until these supervised processes, queue tasks or loops succeed
    /// (ids such as CLAUDE-7). One that fails blocks the task for good.
    #[serde(default)]
    pub until_succeeds: Vec<String>,
    /// Wait until each of these shell commands exits 0 (the daemon runs it
    /// in the project root, retrying with backoff up to once a minute).
    #[serde(default)]
    pub until_command: Vec<String>,
    /// Wait until this time (RFC 3339, e.g. 2026-12-01T10:00:00Z).
    pub until: Option<String>,
    /// Wait this long from now (e.g. 90s, 2h, 1d).
    pub after: Option<String>,
    /// Wait until a person approves (task_approve).
    #[serde(default)]
    pub approval: bool,
}
