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

/// What one worker is doing: a folder queue's worker in the daemon, or a
/// claiming worker (`taskdaemon worker`) on any host.
#[derive(Debug, Serialize)]
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
    heartbeat_ms: Option<i64>,
    /// Every task a claiming worker holds.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub running: Vec<String>,
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
            worker: None,
            host: None,
            pid: None,
            heartbeat_at: None,
            heartbeat_ms: None,
            running: Vec::new(),
            state: if daemon_runs { "running" } else { "stopped" },
            current_task: current.map(|i| i.task_id),
            since: since_ms.map(to_rfc3339),
            since_ms,
            pending,
            done: count.map_or(0, |c| c.done),
            failed: count.map_or(0, |c| c.failed),
        });
    }
    rows.extend(claim_worker_rows(store)?);
    Ok(rows)
}

/// A claiming worker whose heartbeat is older than this is shown as `stale`
/// (its leases expire and its tasks run elsewhere).
const STALE_AFTER_MS: i64 = 90_000;

/// The claiming workers of every host the store has heard from.
pub fn claim_worker_rows(store: &dyn Store) -> anyhow::Result<Vec<WorkerRow>> {
    let now = now_millis();
    Ok(store
        .workers()?
        .into_iter()
        .map(|w| WorkerRow {
            queue: if w.queues.is_empty() {
                "*".to_owned()
            } else {
                w.queues.join(",")
            },
            state: if w.stopped_at.is_some() {
                "stopped"
            } else if now - w.heartbeat_at > STALE_AFTER_MS {
                "stale"
            } else {
                "running"
            },
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
        .collect())
}

/// The claiming workers as a table: host, pid, heartbeat age, held tasks.
pub fn render_claim_workers(rows: &[WorkerRow]) -> String {
    let now = now_millis();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .filter(|r| r.worker.is_some())
        .map(|r| {
            vec![
                r.worker.clone().unwrap_or_default(),
                r.host.clone().unwrap_or_default(),
                r.pid.map_or_else(String::new, |p| p.to_string()),
                r.queue.clone(),
                r.state.to_owned(),
                r.heartbeat_ms.map_or_else(
                    || "-".to_owned(),
                    |h| format!("{} ago", format_age((now - h).max(0))),
                ),
                if r.running.is_empty() {
                    "-".to_owned()
                } else {
                    r.running.join(",")
                },
            ]
        })
        .collect();
    table(
        &[
            "WORKER",
            "HOST",
            "PID",
            "QUEUES",
            "STATE",
            "HEARTBEAT",
            "RUNNING",
        ],
        &cells,
    )
}

/// The rows as a table for people.
pub fn render(rows: &[WorkerRow]) -> String {
    let now = now_millis();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .filter(|r| r.worker.is_none())
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
    } else {
        print_tables(&rows);
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
            rows.iter().filter(|r| r.worker.is_none()).count(),
            if config.queues.watch_enabled {
                "on"
            } else {
                "off (rescans only)"
            }
        ),
        None => println!(
            "{} worker(s) stopped: the daemon is not running (taskdaemon start)",
            rows.iter().filter(|r| r.worker.is_none()).count()
        ),
    }
    print_tables(&rows);
    Ok(0)
}

/// Folder workers, then claiming workers on every host.
pub fn print_tables(rows: &[WorkerRow]) {
    let (claiming, folder): (Vec<&WorkerRow>, Vec<&WorkerRow>) =
        rows.iter().partition(|r| r.worker.is_some());
    if folder.is_empty() && claiming.is_empty() {
        println!("no queues (taskdaemon queues add PATH --id ID adds one)");
    }
    if !folder.is_empty() {
        print!("{}", render(rows));
    }
    if !claiming.is_empty() {
        if !folder.is_empty() {
            println!();
        }
        print!("{}", render_claim_workers(rows));
    }
}
