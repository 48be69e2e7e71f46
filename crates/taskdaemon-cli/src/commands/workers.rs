//! `taskdaemon workers status|list`: folder workers (one per queue) and
//! claiming workers on every host, as the service reports them.

use serde::Serialize;
use taskdaemon_core::time::{format_age, now_millis};
use taskdaemon_daemon::running_pid;
use taskdaemon_service::WorkerRow;
use taskdaemon_workspace::Workspace;

use super::service;
use crate::output::{print_json, table};

/// The claiming workers as a table: host, pid, heartbeat age, held tasks.
fn render_claim_workers(rows: &[WorkerRow]) -> String {
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
                r.state.to_string(),
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

/// The folder workers as a table for people.
fn render(rows: &[WorkerRow]) -> String {
    let now = now_millis();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .filter(|r| r.worker.is_none())
        .map(|r| {
            vec![
                r.queue.clone(),
                r.state.to_string(),
                // A queue that runs several at once lists them all.
                if r.running.is_empty() {
                    r.current_task.clone().unwrap_or_else(|| "-".to_owned())
                } else {
                    r.running.join(",")
                },
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
    let rows = service(workspace)?.worker_rows()?;
    if json {
        print_json(&rows)?;
    } else {
        print_tables(&rows);
    }
    Ok(0)
}

pub fn status(workspace: &Workspace, json: bool) -> anyhow::Result<u8> {
    let service = service(workspace)?;
    let rows = service.worker_rows()?;
    let pid = running_pid(workspace);
    let watch_enabled = service.config().queues.watch_enabled;
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
            watch_enabled,
            workers: &rows,
        })?;
        return Ok(0);
    }
    let folder_workers = rows.iter().filter(|r| r.worker.is_none()).count();
    match pid {
        Some(pid) => println!(
            "{folder_workers} worker(s) running in the daemon (pid {pid}); watching {}",
            if watch_enabled {
                "on"
            } else {
                "off (rescans only)"
            }
        ),
        None => println!(
            "{folder_workers} worker(s) stopped: the daemon is not running (taskdaemon start)"
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
