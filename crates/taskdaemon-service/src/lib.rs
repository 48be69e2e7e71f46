//! The service layer: the one API every interface (CLI, web dashboard, TUI,
//! MCP server) calls to read and change taskdaemon's state.
//!
//! Layering: interfaces -> **service** -> runtime (daemon) -> engines ->
//! store -> core. The service opens the store (the backend choice lives in
//! [`open`]), assembles every view an interface shows as typed,
//! serde-serializable data, performs every action (going through the daemon
//! where one is needed, and rewriting the projection files after a change),
//! and offers a [change feed](feed) of events as they commit. Interfaces
//! parse their input, call a [`Service`] method and format the answer; they
//! never hold a query or a rule.
//!
//! Failures are [`ServiceError`]s whose [`class`](ServiceError::class) tells
//! an interface which code to show (the CLI's exit codes 1-4).

mod agent;
mod aggregates;
mod analytics;
mod chat;
mod daemon_calls;
mod error;
pub mod feed;
mod gates;
mod health;
mod history;
mod links;
mod logs;
mod loops;
mod looptypes;
mod memory;
mod metrics;
pub mod open;
mod pipeline;
mod processes;
mod queues;
mod rehydrate;
mod repair;
mod tracked;
mod wait;
mod web;

use std::path::PathBuf;
use std::sync::Arc;

use taskdaemon_daemon::Client;
use taskdaemon_store::{Location, Store};
use taskdaemon_workspace::{Config, Workspace};

pub use agent::{Agent, tool_name};
pub use aggregates::{Aggregate, Aggregates, Failure, Report};
pub use analytics::{Analytics, AnalyticsGroup, AnalyticsQuery, GroupBy};
pub use chat::{ChatMessage, ChatModel, ChatReply, ChatRole};
pub use error::{ErrorClass, Result, ServiceError, error_message, store_class};
pub use feed::{Feed, FeedOptions, Subscription};
pub use health::Health;
pub use history::HistoryQuery;
pub use links::{NextTask, TaskTree, TrackedPage};
pub use logs::{LogChunk, LogCursor, last_line, read_whole_log, tail_lines, tail_log};
pub use loops::{LoopRunInput, LoopShow};
pub use looptypes::{ConfigCheck, ConfigStatus};
pub use metrics::{Bucket, Counters, EXIT_DETECTION_BUCKETS, Histogram, StatusReport};
pub use pipeline::{
    ATTENTION_ITEMS, HumanMessage, LoopCost, NewPlanInput, PhaseShow, PipelineAttention, PlanShow,
    PlanSummary, RepositoryState, SpecShow, check_repository,
};
pub use processes::{DEFAULT_MAX_RESTARTS, ProcessView, SpawnInput, restart_policy};
pub use queues::{
    ImportedConfig, ImportedQueue, QueueEntryView, QueueTask, QueueTaskShow, SubmitInput,
    WorkerRow, WorkerState, worker_state,
};
pub use rehydrate::{Compaction, Rehydration};
pub use repair::{ProjectionRepair, Repair};
pub use taskdaemon_queue::TaskResult;
pub use tracked::{CompactAnalysis, NewTask, Resume, ShownTask, transition_hint};
pub use wait::WaitOutcome;
pub use web::{
    Access, DEFAULT_PAGE, LiveSample, LiveSamples, LogSlice, MAX_LOG_READ, MAX_PAGE, SHARES_KEY,
    Share, ShareScope, SpawnRequest, TaskLogChunk, TaskPage, TaskQuery,
};

/// Where warnings about projection files go (the change itself is committed).
type WarningSink = Box<dyn Fn(&str) + Send + Sync>;

/// One workspace's (or one database's) state, as every interface sees it.
pub struct Service {
    workspace: Option<Workspace>,
    config: Config,
    location: Location,
    store: Arc<dyn Store>,
    /// The taskdaemon binary, which provides the daemon when one is started.
    exe: Option<PathBuf>,
    warn: WarningSink,
    /// The web token as last read, with the stamp of the file it came from.
    web_token: web::TokenCache,
}

impl Service {
    /// Opens the workspace's store: SQLite, or PostgreSQL when a database
    /// URL is configured (see [`open`]).
    pub fn open(workspace: Workspace) -> Result<Self> {
        let config = Config::load(&workspace.config_path())?;
        let location = open::location(&workspace, &config);
        let store = taskdaemon_store::open(&location)?;
        Ok(Self::from_parts(Some(workspace), config, location, store))
    }

    /// Makes `root` a workspace (`.taskdaemon/`, the default config and
    /// queue, the store) and opens it; safe to repeat. Returns whether the
    /// workspace was created now.
    pub fn init(root: &std::path::Path) -> Result<(Self, bool)> {
        let (workspace, created) = Workspace::init(root)?;
        let config = workspace.config_path();
        if !config.exists() {
            std::fs::write(&config, taskdaemon_workspace::DEFAULT_CONFIG).map_err(|e| {
                ServiceError::Failed(format!("cannot write {}: {e}", config.display()))
            })?;
        }
        let service = Self::open(workspace)?;
        service.create_queue_folders()?;
        service.web_token()?;
        Ok((service, created))
    }

    /// Creates the folder of every queue the config registers: a fresh
    /// workspace's ad-hoc and planned (tasks/planning), or whatever an
    /// existing config says (a config from before `planned` keeps its
    /// queues). Harmless when they exist.
    fn create_queue_folders(&self) -> Result<()> {
        let workspace = self.workspace()?;
        for entry in &self.config.queue {
            let folder =
                taskdaemon_queue::QueueFolder::new(entry.id(), &workspace.resolve(&entry.path));
            folder.create().map_err(|e| {
                ServiceError::Failed(format!("cannot create {}: {e}", folder.root.display()))
            })?;
        }
        Ok(())
    }

    /// Opens a store without a workspace (a host that only runs workers or
    /// submits work): the default config, and views that need workspace files
    /// (logs, queue folders) are refused.
    pub fn open_location(location: Location) -> Result<Self> {
        let store = taskdaemon_store::open(&location)?;
        Ok(Self::from_parts(None, Config::default(), location, store))
    }

    /// A service over a store opened elsewhere.
    pub fn from_parts(
        workspace: Option<Workspace>,
        config: Config,
        location: Location,
        store: Arc<dyn Store>,
    ) -> Self {
        Self {
            workspace,
            config,
            location,
            store,
            exe: std::env::current_exe().ok(),
            warn: Box::new(|message| tracing::warn!("{message}")),
            web_token: web::TokenCache::default(),
        }
    }

    /// Uses `exe` (the `taskdaemon` binary) to start the daemon when an
    /// action needs one and none runs. Defaults to the current executable.
    pub fn with_exe(mut self, exe: PathBuf) -> Self {
        self.exe = Some(exe);
        self
    }

    /// Sends warnings (a projection file that could not be rewritten after a
    /// committed change) to `sink` instead of the log.
    pub fn on_warning(mut self, sink: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.warn = Box::new(sink);
        self
    }

    /// The store, for what no view covers yet (export, import, backup).
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// Changes whenever anything is committed to the store, by any process
    /// (see [`Store::commit_version`]); `None` when the backend cannot tell
    /// cheaply, and then nothing may be cached on it.
    pub fn commit_version(&self) -> Result<Option<u64>> {
        Ok(self.store.commit_version()?)
    }

    /// The store, shared (the daemon, shims and workers run on it).
    pub fn store_arc(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Where the store lives.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The workspace, or an error for a service opened without one.
    pub fn workspace(&self) -> Result<&Workspace> {
        self.workspace.as_ref().ok_or_else(|| {
            ServiceError::BadInput(
                "this needs a workspace (run it inside one, or pass --workspace DIR)".to_owned(),
            )
        })
    }

    /// The workspace, if the service has one.
    pub fn workspace_opt(&self) -> Option<&Workspace> {
        self.workspace.as_ref()
    }

    /// A connection to the workspace's daemon, starting it when none runs.
    fn daemon(&self) -> Result<Client> {
        let exe = self.exe.as_ref().ok_or_else(|| {
            ServiceError::Failed("cannot locate the taskdaemon binary".to_owned())
        })?;
        Ok(Client::connect_or_start(self.workspace()?, exe)?)
    }

    fn warn(&self, message: &str) {
        (self.warn)(message);
    }

    /// Rewrites seed 003's `current.json` and `memory.json` after a save
    /// trigger (`history/` is the daemon's and `autodev`'s: it grows with
    /// every ended task). The change is already committed, so a failure is a
    /// warning: `repair` rewrites the files.
    pub fn save_snapshot(&self, session: Option<&str>) {
        let Some(workspace) = &self.workspace else {
            return;
        };
        use taskdaemon_daemon::snapshot::{write, write_memory};
        let written = write(workspace, &self.config, &*self.store, session)
            .and_then(|_| write_memory(workspace, &self.config, &*self.store));
        if let Err(e) = written {
            self.warn(&format!("{e} (run `taskdaemon repair` to rewrite it)"));
        }
    }

    /// Rewrites all of seed 003's task files (`current.json`, `memory.json`,
    /// `history/`) from the store now: `taskdaemon autodev`.
    pub fn write_seed_files(&self) -> Result<taskdaemon_daemon::snapshot::Written> {
        let workspace = self.workspace()?;
        taskdaemon_daemon::snapshot::write_all(workspace, &self.config, &*self.store)
            .map_err(|e| ServiceError::Failed(e.to_string()))
    }

    /// Rewrites the registry projection (when enabled), logging a failure.
    pub fn refresh_registry(&self) {
        if let Some(workspace) = &self.workspace {
            taskdaemon_daemon::registry::refresh(workspace, &*self.store, &self.config);
        }
    }
}
