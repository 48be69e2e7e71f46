//! `taskdaemon workers status|list`: one worker per queue.
//!
//! Read from the store and the queue folders, like `status`, so it answers
//! while the daemon is down (the workers are then reported as stopped).

use serde::Serialize;
use taskdaemon_core::time::{format_age, now_millis, to_rfc3339};
use taskdaemon_daemon::running_pid;
use taskdaemon_queue::QueueFolder;
use taskdaemon_store::Store;
use taskdaemon_workspace::{Config, Workspace};

use super::open_store;
use crate::output::{print_json, table};

/// What one worker is doing.
#[derive(Debug, Serialize)]
pub struct WorkerRow {
    pub queue: String,
    /// `running` (the daemon runs it) or `stopped`.
    pub state: &'static str,
    /// The task it runs now.
    pub current_task: Option<String>,
    /// Since when (RFC 3339): the current task's start, else none.
    pub since: Option<String>,
    #[serde(skip)]
    since_ms: Option<i64>,
    /// Documents waiting in `pending/`.
    pub pending: usize,
    pub done: u64,
    pub failed: u64,
}

/// Loads the config, naming its file on failure.
pub fn load_config(workspace: &Workspace) -> anyhow::Result<Config> {
    Ok(Config::load(&workspace.config_path())?)
}

/// Every configured queue's worker.
pub fn worker_rows(
    workspace: &Workspace,
    store: &dyn Store,
    config: &Config,
) -> anyhow::Result<Vec<WorkerRow>> {
    let daemon_runs = running_pid(workspace).is_some();
    let counts = store.queue_counts()?;
    let mut rows = Vec::new();
    for entry in &config.queue {
        let folder = QueueFolder::new(entry.id(), &workspace.resolve(&entry.path));
        let pending = folder
            .documents(&config.queues.watch_patterns, std::time::Duration::ZERO)
            .map(|docs| docs.len())
            .unwrap_or(0);
        let current = store.open_queue_items(entry.id())?.into_iter().next();
        let since_ms = current.as_ref().map(|item| {
            store
                .task(&item.task_id)
                .ok()
                .and_then(|t| t.started_at)
                .unwrap_or(item.created_at)
        });
        let count = counts.iter().find(|c| c.queue == entry.id());
        rows.push(WorkerRow {
            queue: entry.id().to_owned(),
            state: if daemon_runs { "running" } else { "stopped" },
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

/// The rows as a table for people.
pub fn render(rows: &[WorkerRow]) -> String {
    let now = now_millis();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.queue.clone(),
                r.state.to_owned(),
                r.current_task.clone().unwrap_or_else(|| "-".to_owned()),
                r.since_ms.map_or_else(
                    || "-".to_owned(),
                    |s| format!("{} ago", format_age(now - s)),
                ),
                r.pending.to_string(),
                r.done.to_string(),
                r.failed.to_string(),
            ]
        })
        .collect();
    table(
        &[
            "QUEUE", "WORKER", "CURRENT", "SINCE", "PENDING", "DONE", "FAILED",
        ],
        &cells,
    )
}

pub fn list(workspace: &Workspace, json: bool) -> anyhow::Result<u8> {
    let store = open_store(workspace)?;
    let store = &*store;
    let rows = worker_rows(workspace, store, &load_config(workspace)?)?;
    if json {
        print_json(&rows)?;
    } else if rows.is_empty() {
        println!("no queues (taskdaemon queues add PATH --id ID adds one)");
    } else {
        print!("{}", render(&rows));
    }
    Ok(0)
}

pub fn status(workspace: &Workspace, json: bool) -> anyhow::Result<u8> {
    let store = open_store(workspace)?;
    let store = &*store;
    let config = load_config(workspace)?;
    let rows = worker_rows(workspace, store, &config)?;
    let pid = running_pid(workspace);
    if json {
        #[derive(Serialize)]
        struct Status<'a> {
            daemon_running: bool,
            daemon_pid: Option<i32>,
            watch_enabled: bool,
            workers: &'a [WorkerRow],
        }
        print_json(&Status {
            daemon_running: pid.is_some(),
            daemon_pid: pid,
            watch_enabled: config.queues.watch_enabled,
            workers: &rows,
        })?;
        return Ok(0);
    }
    match pid {
        Some(pid) => println!(
            "{} worker(s) running in the daemon (pid {pid}); watching {}",
            rows.len(),
            if config.queues.watch_enabled {
                "on"
            } else {
                "off (rescans only)"
            }
        ),
        None => println!(
            "{} worker(s) stopped: the daemon is not running (taskdaemon start)",
            rows.len()
        ),
    }
    if !rows.is_empty() {
        print!("{}", render(&rows));
    }
    Ok(0)
}
