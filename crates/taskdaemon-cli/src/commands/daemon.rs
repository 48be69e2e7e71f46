//! `start`, `stop` and `status`.

use serde::Serialize;
use taskdaemon_core::Status;
use taskdaemon_daemon::{running_pid, start_daemon, stop_daemon};

use taskdaemon_workspace::Workspace;

use super::workers::{WorkerRow, claim_worker_rows, load_config, print_tables, worker_rows};
use super::{current_exe, open_store};
use crate::args::StatusArgs;
use crate::output::print_json;

pub fn start(workspace: &Workspace) -> anyhow::Result<u8> {
    let (pid, started) = start_daemon(workspace, &current_exe()?)?;
    if started {
        println!("daemon started (pid {pid})");
    } else {
        println!("daemon already running (pid {pid})");
    }
    Ok(0)
}

pub fn stop(workspace: &Workspace) -> anyhow::Result<u8> {
    match stop_daemon(workspace)? {
        Some(pid) => println!("daemon stopped (pid {pid}); supervised processes keep running"),
        None => println!("daemon is not running"),
    }
    Ok(0)
}

#[derive(Serialize)]
struct StatusReport {
    workspace: String,
    /// Whether the daemon runs.
    running: bool,
    /// The daemon's PID when it runs.
    pid: Option<i32>,
    socket: String,
    store: String,
    /// Tasks by status; every status is present.
    tasks: serde_json::Map<String, serde_json::Value>,
    /// Claiming workers (`taskdaemon worker`) on every host, with their heartbeats.
    claim_workers: Vec<WorkerRow>,
    /// With --detailed: each queue's worker.
    #[serde(skip_serializing_if = "Option::is_none")]
    workers: Option<Vec<WorkerRow>>,
}

pub fn status(workspace: &Workspace, args: StatusArgs) -> anyhow::Result<u8> {
    let json = args.json;
    let store = open_store(workspace)?;
    let store = &*store;
    let counts = store.status_counts()?;
    let pid = running_pid(workspace);
    let mut tasks = serde_json::Map::new();
    for status in Status::ALL {
        let count = counts
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, c)| *c);
        tasks.insert(status.to_string(), count.into());
    }
    let report = StatusReport {
        workspace: workspace.root().display().to_string(),
        running: pid.is_some(),
        pid,
        socket: workspace.socket_path().display().to_string(),
        store: taskdaemon_daemon::store::location(workspace, &load_config(workspace)?).display(),
        tasks,
        claim_workers: claim_worker_rows(store)?,
        workers: if args.detailed {
            Some(worker_rows(workspace, store, &load_config(workspace)?)?)
        } else {
            None
        },
    };
    if json {
        print_json(&report)?;
        return Ok(0);
    }
    println!("workspace  {}", report.workspace);
    match pid {
        Some(pid) => println!("daemon     running (pid {pid})"),
        None => println!("daemon     not running (processes keep running under their shims)"),
    }
    let summary: Vec<String> = report
        .tasks
        .iter()
        .filter(|(_, n)| n.as_u64() != Some(0))
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    if summary.is_empty() {
        println!("tasks      none");
    } else {
        println!("tasks      {}", summary.join(", "));
    }
    let hosts = report
        .claim_workers
        .iter()
        .filter(|w| w.state == "running")
        .filter_map(|w| w.host.as_deref())
        .collect::<std::collections::BTreeSet<_>>();
    if !report.claim_workers.is_empty() {
        let newest = report
            .claim_workers
            .iter()
            .filter_map(|w| w.heartbeat_at.as_deref())
            .max()
            .unwrap_or("-");
        println!(
            "workers    {} running on {} host(s), last heartbeat {newest}",
            report
                .claim_workers
                .iter()
                .filter(|w| w.state == "running")
                .count(),
            hosts.len()
        );
    }
    if let Some(workers) = &report.workers {
        if workers.is_empty() {
            println!("queues     none");
        } else {
            println!();
            print_tables(workers);
        }
    }
    Ok(0)
}
