//! Where things live in a taskdaemon workspace, and the workspace's config.
//!
//! A workspace is a project directory holding `.taskdaemon/`. Commands find it
//! the way git finds `.git`: walking up from the current directory. Every path
//! the program uses (store, socket, logs, per-process files) is derived here and
//! nowhere else, and every file the outside world reads is written through
//! [`write_atomic`] (or, for projections of the store, [`write_projection`]).

mod atomic;
mod config;
pub mod logfile;
mod paths;
pub mod secret;
pub mod seed_config;

pub use atomic::{write_atomic, write_atomic_with, write_projection};
pub use config::{
    AutodevConfig, Config, ConfigError, DEFAULT_CONFIG, DaemonConfig, ExecutorsConfig,
    HistoryConfig, LogsConfig, LoopsConfig, MAX_QUEUE_CONCURRENCY, MergeMode, NewQueueEntry,
    PipelineConfig, QueueEntry, QueuesConfig, RegistryConfig, StoreConfig, TrackedConfig,
    WebConfig, add_queue_entry, remove_queue_entry, valid_queue_id,
};
pub use paths::{
    DEFAULT_QUEUE, PLANNED_QUEUE, PLANNED_QUEUE_DIR, QUEUE_SUBDIRS, STATE_DIR, Workspace,
    WorkspaceError,
};
