//! Queues and their workers: folder queues run by the daemon, submitted
//! work claimed by workers on any host, the tasks of both, and the actions
//! on them (submit, cancel).
//!
//! Read from the store and the queue folders, so every view answers while
//! the daemon is down (its folder workers are then reported as stopped).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use taskdaemon_core::time::{Millis, now_millis, serde_rfc3339, to_rfc3339};
use taskdaemon_core::{QueueItem, Status, TaskRecord};
use taskdaemon_daemon::running_pid;
use taskdaemon_daemon::worker::lease_meta_key;
use taskdaemon_queue::executor::{ExecutorSettings, agent_spec};
use taskdaemon_queue::{QueueFolder, TaskDocument, TaskResult, Tokens};
use taskdaemon_store::{QueueItemFilter, StoreError, WorkerRecord};

use taskdaemon_workspace::seed_config::SeedConfig;

use crate::{Result, Service, ServiceError};

/// What `queues import-config` did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportedConfig {
    /// The seed config's `version`.
    pub version: Option<String>,
    /// The `[queues]` settings set, as `key = value`.
    pub settings: Vec<String>,
    /// Seed settings read and checked that taskdaemon has no use for.
    pub ignored_settings: Vec<String>,
    pub queues: Vec<ImportedQueue>,
}

/// One queue of an imported seed config.
#[derive(Debug, Clone, Serialize)]
pub struct ImportedQueue {
    pub id: String,
    pub path: PathBuf,
    pub description: Option<String>,
    /// When the seed added it, as it wrote it.
    pub added_at: Option<String>,
    /// `false`: it was registered at that folder already.
    pub added: bool,
}

/// The lease a worker that recorded none is assumed to hold (the worker's default).
const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// What a worker is doing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WorkerState {
    /// A folder worker in a running daemon, or a claiming worker whose
    /// heartbeat is fresh.
    Running,
    /// The daemon is down, or a claiming worker said goodbye.
    Stopped,
    /// A claiming worker whose heartbeat is older than its lease: killed or
    /// cut off; its tasks run elsewhere once the lease expires.
    Lost,
}

impl WorkerState {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Running => "running",
            WorkerState::Stopped => "stopped",
            WorkerState::Lost => "lost",
        }
    }
}

impl std::fmt::Display for WorkerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of a claiming worker at `now`: stopped when it said so, lost
/// when its heartbeat is older than its lease, else running.
pub fn worker_state(worker: &WorkerRecord, lease: Duration, now: Millis) -> WorkerState {
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    if worker.stopped_at.is_some() {
        WorkerState::Stopped
    } else if now - worker.heartbeat_at > lease_ms {
        WorkerState::Lost
    } else {
        WorkerState::Running
    }
}

/// What one worker is doing: a folder queue's worker in the daemon, or a
/// claiming worker (`taskdaemon worker`) on any host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkerRow {
    pub queue: String,
    /// A claiming worker's id (`host:pid:nonce`); none for a folder worker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// A claiming worker's last heartbeat (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat_at: Option<String>,
    #[serde(skip)]
    pub heartbeat_ms: Option<Millis>,
    /// Every task a claiming worker holds, or that a folder worker whose
    /// queue runs several at once runs now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub running: Vec<String>,
    pub state: WorkerState,
    /// The task it runs now.
    pub current_task: Option<String>,
    /// Since when (RFC 3339): the current task's start, else none.
    pub since: Option<String>,
    #[serde(skip)]
    pub since_ms: Option<Millis>,
    /// Documents waiting in `pending/`.
    pub pending: usize,
    pub done: u64,
    pub failed: u64,
}

/// A configured queue with its counts, as `queues list` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QueueEntryView {
    pub id: String,
    pub path: String,
    pub description: Option<String>,
    /// How many of its documents run at once.
    pub concurrency: u32,
    pub pending: usize,
    pub done: u64,
    pub failed: u64,
    pub current_task: Option<String>,
}

/// One queue task (folder or submitted), as `tasks list` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QueueTask {
    pub id: String,
    pub queue: String,
    pub document: String,
    pub executor: String,
    pub status: Status,
    /// Submitted for workers to claim (`taskdaemon submit`), not run from a folder.
    pub submitted: bool,
    /// The attempt running or last run (1 for the first).
    pub attempt: u32,
    pub max_attempts: u32,
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Millis,
    #[serde(with = "serde_rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<Millis>,
    #[serde(with = "serde_rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<Millis>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    /// What the run cost, from its result (ended tasks whose executor reported it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// Tokens the run used, from its result (none before it ended).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Tokens>,
}

/// A queue task in full, as `tasks show --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct QueueTaskShow {
    #[serde(flatten)]
    pub task: TaskRecord,
    /// The queue side; none for tasks that did not come from a queue.
    pub queue_item: Option<QueueItem>,
    /// When the queue took the task in (RFC 3339); none outside a queue.
    pub added_at: Option<String>,
    /// Where its document is now (`pending/`, `completed/` or `failed/`);
    /// none for a submitted task or a document that is gone.
    pub document_path: Option<String>,
    pub stdout_log: String,
    pub stderr_log: String,
}

/// Work to submit for workers: a document (file name and text) or a command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubmitInput {
    /// A task document: its file name and text.
    pub document: Option<(String, String)>,
    /// A shell command to run instead of a document.
    pub command: Option<String>,
    pub queue: String,
    /// `command` or `claude-code` (default: the document's, else `command`).
    pub executor: Option<String>,
    /// The task id wanted (default: the file stem, or job-TIMESTAMP).
    pub id: Option<String>,
}

impl Service {
    /// Every configured queue's folder worker, then the claiming workers of
    /// every host the store has heard from.
    pub fn worker_rows(&self) -> Result<Vec<WorkerRow>> {
        let mut rows = self.folder_worker_rows()?;
        rows.extend(self.claim_worker_rows()?);
        Ok(rows)
    }

    fn folder_worker_rows(&self) -> Result<Vec<WorkerRow>> {
        let Some(workspace) = &self.workspace else {
            return Ok(Vec::new());
        };
        let daemon_runs = running_pid(workspace).is_some();
        let counts = self.store.queue_counts()?;
        let mut rows = Vec::new();
        for entry in &self.config.queue {
            let folder = QueueFolder::new(entry.id(), &workspace.resolve(&entry.path));
            let pending = folder
                .documents(&self.config.queues.watch_patterns, Duration::ZERO)
                .map(|docs| docs.len())
                .unwrap_or(0);
            let open = self.store.open_queue_items(entry.id())?;
            let running = if entry.concurrency > 1 {
                open.iter().map(|item| item.task_id.clone()).collect()
            } else {
                Vec::new()
            };
            let current = open.into_iter().next();
            let since_ms = current.as_ref().map(|item| {
                self.store
                    .task(&item.task_id)
                    .ok()
                    .and_then(|t| t.started_at)
                    .unwrap_or(item.created_at)
            });
            let count = counts.iter().find(|c| c.queue == entry.id());
            rows.push(WorkerRow {
                queue: entry.id().to_owned(),
                worker: None,
                host: None,
                pid: None,
                heartbeat_at: None,
                heartbeat_ms: None,
                running,
                state: if daemon_runs {
                    WorkerState::Running
                } else {
                    WorkerState::Stopped
                },
                current_task: current.map(|i| i.task_id),
                since: since_ms.map(to_rfc3339),
                since_ms,
                pending,
                done: count.map_or(0, |c| c.done),
                failed: count.map_or(0, |c| c.failed),
            });
        }
        Ok(rows)
    }

    /// The lease a claiming worker recorded when it started.
    fn worker_lease(&self, worker: &str) -> Result<Duration> {
        Ok(self
            .store
            .meta(&lease_meta_key(worker))?
            .and_then(|v| v.parse().ok())
            .map_or(DEFAULT_LEASE, Duration::from_millis))
    }

    /// The claiming workers of every host, the most recent heartbeat first.
    pub fn claim_worker_rows(&self) -> Result<Vec<WorkerRow>> {
        let now = now_millis();
        self.store
            .workers()?
            .into_iter()
            .map(|w| {
                let state = worker_state(&w, self.worker_lease(&w.id)?, now);
                Ok(WorkerRow {
                    queue: if w.queues.is_empty() {
                        "*".to_owned()
                    } else {
                        w.queues.join(",")
                    },
                    state,
                    current_task: w.running.first().cloned(),
                    since: None,
                    since_ms: None,
                    pending: 0,
                    done: 0,
                    failed: 0,
                    worker: Some(w.id),
                    host: Some(w.host),
                    pid: Some(w.pid),
                    heartbeat_at: Some(to_rfc3339(w.heartbeat_at)),
                    heartbeat_ms: Some(w.heartbeat_at),
                    running: w.running,
                })
            })
            .collect()
    }

    /// The configured queues with their folders and counts.
    pub fn queues(&self) -> Result<Vec<QueueEntryView>> {
        let workspace = self.workspace()?;
        let rows = self.folder_worker_rows()?;
        Ok(self
            .config
            .queue
            .iter()
            .zip(rows)
            .map(|(entry, row)| QueueEntryView {
                id: entry.id().to_owned(),
                path: workspace.resolve(&entry.path).display().to_string(),
                description: entry.description.clone(),
                concurrency: entry.concurrency,
                pending: row.pending,
                done: row.done,
                failed: row.failed,
                current_task: row.current_task,
            })
            .collect())
    }

    /// Queue tasks, folder and submitted alike, oldest first (the newest
    /// `limit` when limited).
    pub fn queue_tasks(
        &self,
        queue: Option<&str>,
        status: Option<Status>,
        limit: Option<usize>,
    ) -> Result<Vec<QueueTask>> {
        let items = self.store.queue_items(&QueueItemFilter {
            queue: queue.map(str::to_owned),
            status,
            limit,
        })?;
        let ids: Vec<String> = items.iter().map(|i| i.task_id.clone()).collect();
        let mut tasks: HashMap<String, TaskRecord> = self
            .store
            .tasks_by_ids(&ids)?
            .into_iter()
            .map(|t| (t.id.clone(), t))
            .collect();
        Ok(items
            .into_iter()
            .filter_map(|item| {
                let task = tasks.remove(&item.task_id)?;
                let result: Option<TaskResult> = item
                    .result
                    .as_ref()
                    .and_then(|r| serde_json::from_value(r.clone()).ok());
                Some(QueueTask {
                    cost_usd: result.as_ref().and_then(|r| r.cost_usd),
                    tokens: result.map(|r| r.tokens),
                    attempt: task.restarts + 1,
                    max_attempts: item.max_attempts,
                    id: item.task_id,
                    queue: item.queue,
                    document: item.document,
                    executor: item.executor,
                    status: task.status,
                    submitted: item.claimable,
                    created_at: item.created_at,
                    started_at: task.started_at,
                    finished_at: task.finished_at,
                    exit_code: task.exit_code,
                    error: task.error,
                })
            })
            .collect())
    }

    /// A task with its queue side (none when it did not come from a queue).
    pub fn queue_task(&self, id: &str) -> Result<QueueTaskShow> {
        let workspace = self.workspace()?;
        let task = self.store.task(id)?;
        let queue_item = match self.store.queue_item(&task.id) {
            Ok(item) => Some(item),
            Err(StoreError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let document_path = queue_item.as_ref().and_then(|item| {
            let entry = self.config.queue_entry(&item.queue)?;
            let folder = QueueFolder::new(entry.id(), &workspace.resolve(&entry.path));
            let path = folder.document_path(&item.document, &item.task_id, item.finished)?;
            Some(path.display().to_string())
        });
        Ok(QueueTaskShow {
            document_path,
            stdout_log: workspace.stdout_log(&task.id).display().to_string(),
            stderr_log: workspace.stderr_log(&task.id).display().to_string(),
            added_at: queue_item.as_ref().map(|i| to_rfc3339(i.created_at)),
            task,
            queue_item,
        })
    }

    /// The result a queue task ended with (the same JSON as its
    /// `results/ID.json`): bad input for a task that is not a queue task,
    /// an illegal state for one that has not ended yet.
    pub fn queue_result(&self, id: &str) -> Result<serde_json::Value> {
        let task = self.store.task(id)?;
        let item = match self.store.queue_item(&task.id) {
            Ok(item) => item,
            Err(StoreError::NotFound(_)) => {
                return Err(ServiceError::BadInput(format!(
                    "{} is not a queue task: it has no result",
                    task.id
                )));
            }
            Err(e) => return Err(e.into()),
        };
        item.result.ok_or_else(|| {
            ServiceError::Store(StoreError::Conflict(format!(
                "{} has no result yet (status {})",
                task.id, task.status
            )))
        })
    }

    /// Runs an ended folder-queue task again: its document goes back from
    /// `failed/` (or `completed/`) into `pending/`, where the queue's worker
    /// picks it up as a new task (`ID~2`, ...). Returns the document's path.
    /// A submitted task has no document to move: submit it again.
    pub fn retry(&self, id: &str) -> Result<PathBuf> {
        let workspace = self.workspace()?;
        let task = self.store.task(id)?;
        let item = match self.store.queue_item(&task.id) {
            Ok(item) => item,
            Err(StoreError::NotFound(_)) => {
                return Err(ServiceError::BadInput(format!(
                    "{} is not a queue task: restart a process with `restart`",
                    task.id
                )));
            }
            Err(e) => return Err(e.into()),
        };
        if !item.finished {
            return Err(ServiceError::Store(StoreError::Conflict(format!(
                "{} has not ended yet (status {}): cancel it first",
                task.id, task.status
            ))));
        }
        let folder = match self.config.queue_entry(&item.queue) {
            Some(entry) if !item.claimable => {
                QueueFolder::new(entry.id(), &workspace.resolve(&entry.path))
            }
            _ => {
                return Err(ServiceError::BadInput(format!(
                    "{} was submitted, not dropped into a queue folder: submit it again",
                    task.id
                )));
            }
        };
        match folder.restore_document(&item.document, &task.id) {
            Ok(Some(path)) => Ok(path),
            Ok(None) => Err(ServiceError::Failed(format!(
                "the document of {} is in neither {} nor {}",
                task.id,
                folder.failed().display(),
                folder.completed().display()
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(ServiceError::Store(StoreError::Conflict(format!(
                    "{} exists already: a document of that name is waiting",
                    folder.pending().join(&item.document).display()
                ))))
            }
            Err(e) => Err(ServiceError::Failed(format!(
                "cannot move the document of {} back to {}: {e}",
                task.id,
                folder.pending().display()
            ))),
        }
    }

    /// Stops a queue task: SIGTERM to its group, SIGKILL after `grace`.
    pub fn cancel(&self, id: &str, grace: Duration) -> Result<TaskRecord> {
        self.kill(id, "TERM", grace)
    }

    /// Queues a task document or a command for workers on any host.
    pub fn submit(&self, input: SubmitInput) -> Result<TaskRecord> {
        if !taskdaemon_workspace::valid_queue_id(&input.queue) {
            return Err(ServiceError::BadInput(format!(
                "--queue '{}': use letters, digits, '-', '_' or '.'",
                input.queue
            )));
        }
        let (name, text) = match (input.document, &input.command) {
            (Some(document), _) => document,
            (None, Some(command)) => {
                let executor = input.executor.as_deref().unwrap_or("command");
                // One path for both: a command is a document whose body is the script.
                (
                    format!("job-{}.md", now_millis()),
                    format!("---\nexecutor: {executor}\n---\n{command}\n"),
                )
            }
            (None, None) => {
                return Err(ServiceError::BadInput(
                    "give a FILE or --command".to_owned(),
                ));
            }
        };
        // --executor wins over the document's front matter.
        let doc = TaskDocument::parse_as(&text, input.executor.as_deref())
            .map_err(|e| ServiceError::BadInput(format!("{name}: {e}")))?;
        let root = match &self.workspace {
            Some(ws) => ws.root().to_owned(),
            None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
        };
        // Workers run with their own environment plus the document's `env:`.
        let settings = ExecutorSettings::from_config(&self.config, root, Vec::new());
        let mut spec = agent_spec(&input.queue, &name, &doc, &settings);
        if let Some(id) = input.id {
            spec.wanted_id = id;
        }
        Ok(self.store.submit(&spec, "cli")?)
    }

    /// Registers `path` as queue `id` in config.toml (comments kept) and
    /// creates its folders; a running daemon starts its worker, which runs
    /// `concurrency` documents at once (none: one at a time). Returns the
    /// folder.
    pub fn add_queue(
        &self,
        path: &Path,
        id: &str,
        description: Option<&str>,
        concurrency: Option<u32>,
    ) -> Result<QueueFolder> {
        let workspace = self.workspace()?;
        let config_path = workspace.config_path();
        let text = read_config_text(&config_path)?;
        // Inside the workspace the entry stays relative, so the workspace can move.
        let recorded: PathBuf = path
            .strip_prefix(workspace.root())
            .map(Path::to_owned)
            .unwrap_or_else(|_| path.to_owned());
        let entry = taskdaemon_workspace::NewQueueEntry {
            id,
            path: &recorded,
            description,
            concurrency,
        };
        let updated = taskdaemon_workspace::add_queue_entry(&text, &entry)
            .map_err(|e| ServiceError::BadInput(format!("queues add: {e}")))?;
        let folder = QueueFolder::new(id, path);
        folder.create().map_err(|e| {
            ServiceError::Failed(format!(
                "cannot create the queue folder {}: {e}",
                path.display()
            ))
        })?;
        write_config(&config_path, &updated)?;
        self.reload_queues();
        Ok(folder)
    }

    /// Switches a user of seed 002's task monitor over: reads its
    /// `config.json` (`version`, `settings`, `project_workspace`, `queues`),
    /// maps the settings onto `[queues]`, registers its queues and creates
    /// their folders. A bad file (the error names the JSON path), a
    /// `project_workspace` that is not this workspace, or a queue id taken at
    /// another folder changes nothing.
    pub fn import_seed_config(&self, path: &Path) -> Result<ImportedConfig> {
        let workspace = self.workspace()?;
        let bad = |e: String| ServiceError::BadInput(format!("{}: {e}", path.display()));
        let text = std::fs::read_to_string(path)
            .map_err(|e| ServiceError::BadInput(format!("cannot read {}: {e}", path.display())))?;
        let seed = SeedConfig::parse(&text).map_err(bad)?;
        if let Some(project) = &seed.project_workspace {
            let same = std::fs::canonicalize(project).is_ok_and(|p| p == workspace.root());
            if !same {
                return Err(bad(format!(
                    "project_workspace: {} is not this workspace ({}): run the import there, or pass --workspace {}",
                    project.display(),
                    workspace.root().display(),
                    project.display()
                )));
            }
        }
        let config_path = workspace.config_path();
        let current = read_config_text(&config_path)?;
        let import = seed.apply(&current, workspace.root()).map_err(bad)?;
        for (queue, folder, _) in &import.queues {
            QueueFolder::new(&queue.id, folder).create().map_err(|e| {
                ServiceError::Failed(format!(
                    "cannot create the queue folder {}: {e} (the config was not changed)",
                    folder.display()
                ))
            })?;
        }
        write_config(&config_path, &import.config_text)?;
        self.reload_queues();
        Ok(ImportedConfig {
            version: seed.version,
            settings: import.settings,
            ignored_settings: seed
                .settings
                .enable_file_hash
                .map(|_| "enable_file_hash".to_owned())
                .into_iter()
                .collect(),
            queues: import
                .queues
                .into_iter()
                .map(|(q, folder, added)| ImportedQueue {
                    id: q.id,
                    path: folder,
                    description: q.description,
                    added_at: q.added_at,
                    added,
                })
                .collect(),
        })
    }

    /// Unregisters queue `id` (its folder and files stay); returns its folder
    /// when it was configured.
    pub fn remove_queue(&self, id: &str) -> Result<Option<PathBuf>> {
        let workspace = self.workspace()?;
        let config_path = workspace.config_path();
        let text = read_config_text(&config_path)?;
        let folder = self
            .config
            .queue_entry(id)
            .map(|e| workspace.resolve(&e.path));
        let updated = taskdaemon_workspace::remove_queue_entry(&text, id)
            .map_err(|e| ServiceError::BadInput(format!("queues rm: {e}")))?;
        write_config(&config_path, &updated)?;
        self.reload_queues();
        Ok(folder)
    }

    /// Tells a running daemon to pick up a queue change; without one, the
    /// next start reads the config anyway.
    fn reload_queues(&self) {
        let Some(workspace) = &self.workspace else {
            return;
        };
        if let Ok(mut client) = taskdaemon_daemon::Client::connect(workspace)
            && let Err(e) = client.request(&taskdaemon_daemon::protocol::Request::ReloadQueues)
        {
            self.warn(&format!("the daemon did not reload its queues: {e}"));
        }
    }
}

fn read_config_text(path: &Path) -> Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(ServiceError::Failed(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

fn write_config(path: &Path, text: &str) -> Result<()> {
    taskdaemon_workspace::write_atomic(path, text.as_bytes())
        .map_err(|e| ServiceError::Failed(format!("cannot write {}: {e}", path.display())))
}
