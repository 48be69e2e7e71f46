//! `taskdaemon queues add|list|rm`: the `[[queue]]` entries of config.toml.
//!
//! The config file is edited in place (comments kept) and replaced
//! atomically; a running daemon is told to start or stop the worker.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use taskdaemon_daemon::Client;
use taskdaemon_daemon::protocol::Request;
use taskdaemon_queue::QueueFolder;
use taskdaemon_workspace::{Workspace, add_queue_entry, remove_queue_entry, write_atomic};

use super::open_store;
use super::workers::{load_config, worker_rows};
use crate::args::{QueuesAddArgs, QueuesRmArgs};
use crate::error::UsageError;
use crate::output::{print_json, table};

pub fn add(workspace: &Workspace, args: QueuesAddArgs) -> anyhow::Result<u8> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let absolute = if args.path.is_absolute() {
        args.path.clone()
    } else {
        cwd.join(&args.path)
    };
    let config_path = workspace.config_path();
    let text = read_config_text(&config_path)?;
    // Inside the workspace the entry stays relative, so the workspace can move.
    let recorded: PathBuf = absolute
        .strip_prefix(workspace.root())
        .map(Path::to_owned)
        .unwrap_or_else(|_| absolute.clone());
    let updated = add_queue_entry(&text, &args.id, &recorded, args.description.as_deref())
        .map_err(|e| UsageError(format!("queues add: {e}")))?;
    let folder = QueueFolder::new(&args.id, &absolute);
    folder
        .create()
        .with_context(|| format!("cannot create the queue folder {}", absolute.display()))?;
    write_atomic(&config_path, updated.as_bytes())
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    println!("queue {} at {}", args.id, absolute.display());
    println!(
        "  drop task documents (task-*.md) into {}",
        folder.pending().display()
    );
    reload(workspace);
    Ok(0)
}

pub fn rm(workspace: &Workspace, args: QueuesRmArgs) -> anyhow::Result<u8> {
    let config_path = workspace.config_path();
    let text = read_config_text(&config_path)?;
    let config = load_config(workspace)?;
    let folder = config
        .queue_entry(&args.queue_id)
        .map(|e| workspace.resolve(&e.path));
    let updated = remove_queue_entry(&text, &args.queue_id)
        .map_err(|e| UsageError(format!("queues rm: {e}")))?;
    write_atomic(&config_path, updated.as_bytes())
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    match folder {
        Some(folder) => println!(
            "queue {} removed; its folder {} and files are kept",
            args.queue_id,
            folder.display()
        ),
        None => println!("queue {} removed", args.queue_id),
    }
    reload(workspace);
    Ok(0)
}

#[derive(Serialize)]
struct QueueListEntry {
    id: String,
    path: String,
    description: Option<String>,
    pending: usize,
    done: u64,
    failed: u64,
    current_task: Option<String>,
}

pub fn list(workspace: &Workspace, json: bool) -> anyhow::Result<u8> {
    let config = load_config(workspace)?;
    let store = open_store(workspace)?;
    let store = &*store;
    let rows = worker_rows(workspace, store, &config)?;
    let entries: Vec<QueueListEntry> = config
        .queue
        .iter()
        .zip(rows)
        .map(|(entry, row)| QueueListEntry {
            id: entry.id().to_owned(),
            path: workspace.resolve(&entry.path).display().to_string(),
            description: entry.description.clone(),
            pending: row.pending,
            done: row.done,
            failed: row.failed,
            current_task: row.current_task,
        })
        .collect();
    if json {
        print_json(&entries)?;
        return Ok(0);
    }
    if entries.is_empty() {
        println!("no queues (taskdaemon queues add PATH --id ID adds one)");
        return Ok(0);
    }
    let cells: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                e.id.clone(),
                e.pending.to_string(),
                e.done.to_string(),
                e.failed.to_string(),
                e.path.clone(),
                e.description.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &["ID", "PENDING", "DONE", "FAILED", "PATH", "DESCRIPTION"],
            &cells
        )
    );
    Ok(0)
}

fn read_config_text(path: &Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Tells a running daemon to pick up the change; without one, the next
/// start reads the config anyway.
fn reload(workspace: &Workspace) {
    if let Ok(mut client) = Client::connect(workspace)
        && let Err(e) = client.request(&Request::ReloadQueues)
    {
        eprintln!("warning: the daemon did not reload its queues: {e}");
    }
}
