//! `taskdaemon queues add|list|rm`: the `[[queue]]` entries of config.toml
//! (edited by the service, comments kept; a running daemon is told).

use anyhow::Context;
use taskdaemon_workspace::Workspace;

use super::service;
use crate::args::{QueuesAddArgs, QueuesImportArgs, QueuesRmArgs};
use crate::output::{print_json, table};

pub fn add(workspace: &Workspace, args: QueuesAddArgs) -> anyhow::Result<u8> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let absolute = if args.path.is_absolute() {
        args.path.clone()
    } else {
        cwd.join(&args.path)
    };
    let folder = service(workspace)?.add_queue(
        &absolute,
        &args.id,
        args.description.as_deref(),
        args.concurrency,
    )?;
    println!("queue {} at {}", args.id, absolute.display());
    println!(
        "  drop task documents (task-*.md) into {}",
        folder.pending().display()
    );
    Ok(0)
}

pub fn import_config(workspace: &Workspace, args: QueuesImportArgs) -> anyhow::Result<u8> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let imported = service(workspace)?.import_seed_config(&cwd.join(&args.path))?;
    if args.json {
        print_json(&imported)?;
        return Ok(0);
    }
    for setting in &imported.settings {
        println!("[queues] {setting}");
    }
    for ignored in &imported.ignored_settings {
        println!("settings.{ignored}: read, not needed (a document runs once it stops changing)");
    }
    for q in &imported.queues {
        let what = if q.added {
            "added"
        } else {
            "already registered"
        };
        println!("queue {} at {} ({what})", q.id, q.path.display());
    }
    if imported.queues.is_empty() {
        println!("no queues in the file");
    }
    Ok(0)
}

pub fn rm(workspace: &Workspace, args: QueuesRmArgs) -> anyhow::Result<u8> {
    match service(workspace)?.remove_queue(&args.queue_id)? {
        Some(folder) => println!(
            "queue {} removed; its folder {} and files are kept",
            args.queue_id,
            folder.display()
        ),
        None => println!("queue {} removed", args.queue_id),
    }
    Ok(0)
}

pub fn list(workspace: &Workspace, json: bool) -> anyhow::Result<u8> {
    let entries = service(workspace)?.queues()?;
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
