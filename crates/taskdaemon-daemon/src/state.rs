//! The daemon's shared state: the [`Daemon`] every part of it holds (store,
//! config, workers, loops, notifications), the [`Failure`] a request ends
//! with, and the actor name it records in events.
//!
//! It sits at the bottom of the daemon's modules: the listener, the request
//! handlers, the queue workers, the loop manager, the watchdog and
//! housekeeping all use it, and it uses none of them.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use taskdaemon_core::TaskRecord;
use taskdaemon_store::{Store, StoreError};
use taskdaemon_workspace::{Config, Workspace};
use tokio::sync::Notify;

use crate::blocking::{Panicked, blocking};
use crate::loop_state::Loops;
use crate::protocol::ErrorKind;
use crate::registry;

/// Who the daemon says it is in events.
pub(crate) const ACTOR: &str = "daemon";

/// Shared state of the running daemon.
pub(crate) struct Daemon {
    pub(crate) workspace: Workspace,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config: Config,
    /// The binary that provides the shim.
    pub(crate) exe: PathBuf,
    /// Tasks with a follower, so each is followed once.
    pub(crate) followed: Mutex<HashSet<String>>,
    /// Held while a task is (re)launched, so a follower and a request never
    /// launch the same task twice.
    pub(crate) launch_lock: Mutex<()>,
    /// Wakes the listener to stop.
    pub(crate) shutdown: Notify,
    /// Announces each task whose follower has finished (the task ended).
    pub(crate) ended: tokio::sync::broadcast::Sender<TaskEnded>,
    /// The running queue workers, by queue id.
    pub(crate) workers: Mutex<HashMap<String, crate::queues::WorkerHandle>>,
    pub(crate) loops: Loops,
    /// The loop types new loops start from (`taskdaemon.yml`, hot reloaded).
    pub(crate) types: crate::loop_types::TypeConfig,
    /// Asks the registry writer for a rewrite; requests made while it writes
    /// collapse into one more write (see [`Daemon::registry_changed`]).
    pub(crate) registry_wanted: Notify,
    /// Signalled when a follower starts, so the watchdog, which sleeps
    /// while nothing is followed, wakes up.
    pub(crate) follow_started: Notify,
    /// Followers started so far: housekeeping skips what only a followed
    /// process can have made necessary when none was.
    pub(crate) follows_begun: std::sync::atomic::AtomicU64,
    /// The plan pipeline's driver.
    pub(crate) pipeline: crate::pipeline::Pipeline,
    /// Wakes what sleeps until the store changes (any process's commit).
    pub(crate) changes: crate::store_changes::StoreChanges,
    /// The standby shim of `spawn` and `restart` launches.
    pub(crate) request_standby: crate::request_standby::RequestStandby,
    /// Runs the layer above's calls clients make here, when it gave a handler.
    pub(crate) calls: Option<crate::server::CallHandler>,
}

/// The daemon as its tasks hold it.
pub(crate) type Shared = Arc<Daemon>;

impl Daemon {
    /// Whether no task has a follower, i.e. nothing supervised runs.
    pub(crate) fn follows_nothing(&self) -> bool {
        self.followed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// Asks for a registry rewrite without waiting for it. Followers use this:
    /// the shim has rewritten the registry already, and a queue worker waiting
    /// for the end of a task must not wait for a projection too.
    pub(crate) fn registry_changed(&self) {
        self.registry_wanted.notify_one();
    }

    /// Rewrites the registry now, off the async thread. It is the last
    /// step of every change to the process table (a burst of spawns ends
    /// with it), so it is where the memory the change used goes back.
    pub(crate) async fn refresh_registry(self: &Arc<Self>) {
        let d = self.clone();
        let _ = blocking(move || {
            registry::refresh(&d.workspace, &*d.store, &d.config);
            taskdaemon_supervisor::memory::release_free_memory();
        })
        .await;
    }

    /// Gives back the memory a change used, for a change whose registry
    /// rewrite someone else made (a spawn's, by its shim).
    pub(crate) async fn release_memory(&self) {
        let _ = blocking(taskdaemon_supervisor::memory::release_free_memory).await;
    }

    /// Rewrites the registry whenever asked; a burst of requests (a queue
    /// running many short tasks) costs one write per write's duration, not
    /// one per request.
    pub(crate) async fn registry_writer(self: Arc<Self>) {
        loop {
            self.registry_wanted.notified().await;
            self.refresh_registry().await;
        }
    }
}

/// A request that failed, with the class the client sees.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) kind: ErrorKind,
    pub(crate) message: String,
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        let kind = match &e {
            StoreError::NotFound(_) | StoreError::Missing { .. } => ErrorKind::NotFound,
            StoreError::IllegalTransition(_)
            | StoreError::IllegalPipelineTransition(_)
            | StoreError::Conflict(_) => ErrorKind::Conflict,
            StoreError::InvalidId(_) | StoreError::Pipeline(_) => ErrorKind::Invalid,
            _ => ErrorKind::Internal,
        };
        Failure {
            kind,
            message: e.to_string(),
        }
    }
}

impl From<Panicked> for Failure {
    fn from(p: Panicked) -> Self {
        failure(ErrorKind::Internal, format!("request panicked: {p}"))
    }
}

/// A [`Failure`] of `kind`.
pub(crate) fn failure(kind: ErrorKind, message: impl Into<String>) -> Failure {
    Failure {
        kind,
        message: message.into(),
    }
}

/// A follower's announcement that task `id` has ended.
#[derive(Debug, Clone)]
pub(crate) struct TaskEnded {
    pub(crate) id: String,
    /// The task as the follower last read it, ended, when it did: a
    /// listener that needs it need not read it again.
    pub(crate) task: Option<Arc<TaskRecord>>,
}
