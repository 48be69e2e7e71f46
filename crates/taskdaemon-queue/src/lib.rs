//! Folder queues: the engine side, with no daemon in it.
//!
//! A queue is a folder with `pending/`, `completed/`, `failed/`, `results/`
//! and `reports/`. Task documents (Markdown with optional YAML front matter)
//! dropped into `pending/` are run one at a time, in file-name order, by an
//! executor (`executors/`: the `claude` CLI in headless mode, or a shell
//! command, each one module behind the `Executor` trait). This
//! crate owns what is true of those files whoever runs them: which files
//! count as ready documents, how a document parses, what the Claude Code
//! stream says, what a lock file holds and when it is stale, and what the
//! result and report look like. The daemon's workers put it to use.

pub mod document;
pub mod executor;
pub mod executors;
pub mod folder;
pub mod lockfile;
pub mod result;

pub use document::{DocumentError, TaskDocument};
pub use executors::StreamSummary;
pub use executors::{Executor, ExecutorKind, Launch, OutputSummary};
pub use folder::{QueueFolder, glob_match};
pub use lockfile::LockFile;
pub use result::{TaskResult, Tokens, output_tail};
