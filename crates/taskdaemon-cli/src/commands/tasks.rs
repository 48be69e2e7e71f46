//! `taskdaemon tasks list|show|logs|cancel`: queue tasks, folder and
//! submitted alike.

use taskdaemon_core::time::{format_age, now_millis, to_rfc3339};
use taskdaemon_workspace::Workspace;

use super::{logs, service};
use crate::args::{TaskCancelArgs, TaskLogsArgs, TaskRetryArgs, TaskShowArgs, TasksListArgs};
use crate::error::UsageError;
use crate::output::{print_json, status_cell, table};

pub fn list(workspace: &Workspace, args: TasksListArgs) -> anyhow::Result<u8> {
    let tasks =
        service(workspace)?.queue_tasks(args.queue.as_deref(), args.status, Some(args.limit))?;
    if args.json {
        print_json(&tasks)?;
        return Ok(0);
    }
    if tasks.is_empty() {
        eprintln!(
            "no queue tasks (drop a task-*.md into a queue's pending/ folder, or `taskdaemon submit`)"
        );
        return Ok(0);
    }
    let now = now_millis();
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|t| {
            vec![
                t.id.clone(),
                t.queue.clone(),
                status_cell(t.status),
                format!("{}/{}", t.attempt, t.max_attempts),
                if t.submitted { "submitted" } else { "folder" }.to_owned(),
                format!("{} ago", format_age(now - t.created_at)),
                t.document.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "ID", "QUEUE", "STATUS", "ATTEMPT", "FROM", "CREATED", "DOCUMENT"
            ],
            &rows
        )
    );
    if tasks.len() == args.limit {
        eprintln!("showing the newest {}; use --limit for more", args.limit);
    }
    Ok(0)
}

pub fn show(workspace: &Workspace, args: TaskShowArgs) -> anyhow::Result<u8> {
    let shown = service(workspace)?.queue_task(&args.id)?;
    if args.json {
        print_json(&shown)?;
        return Ok(0);
    }
    let task = &shown.task;
    let item = &shown.queue_item;
    let line = |key: &str, value: String| println!("{key:<10} {value}");
    line("id", task.id.clone());
    line("kind", task.kind.as_str().to_owned());
    line("status", task.status.to_string());
    if let Some(item) = item {
        line("queue", item.queue.clone());
        line("document", item.document.clone());
        if let Some(path) = &shown.document_path {
            line("path", path.clone());
        }
        line("executor", item.executor.clone());
        line("added", to_rfc3339(item.created_at));
        line(
            "attempt",
            format!("{} of {}", task.restarts + 1, item.max_attempts),
        );
    }
    line("command", task.command.clone());
    if let Some(pid) = task.pid {
        line("pid", pid.to_string());
    }
    line("created", to_rfc3339(task.created_at));
    if let Some(at) = task.started_at {
        line("started", to_rfc3339(at));
    }
    if let Some(at) = task.finished_at {
        line("finished", to_rfc3339(at));
    }
    if let Some(exit) = task.exit() {
        line("exit", exit.to_string());
    }
    if let Some(error) = &task.error {
        line("error", error.clone());
    }
    if let Some(result) = item.as_ref().and_then(|i| i.result.as_ref()) {
        for key in ["session_id", "cost_usd", "num_turns", "error"] {
            if let Some(value) = result.get(key).filter(|v| !v.is_null()) {
                line(key, value.to_string().trim_matches('"').to_owned());
            }
        }
        // A command executor reports no usage: an all-zero line says nothing.
        let counted = |t: &serde_json::Value| {
            t.as_object()
                .is_some_and(|o| o.values().any(|v| v.as_u64().is_some_and(|n| n > 0)))
        };
        if let Some(tokens) = result.get("tokens").filter(|t| counted(t)) {
            line("tokens", tokens.to_string());
        }
    }
    line("stdout", shown.stdout_log.clone());
    Ok(0)
}

pub fn logs(workspace: &Workspace, args: TaskLogsArgs) -> anyhow::Result<u8> {
    let Some(id) = &args.logs.id else {
        return Err(UsageError("tasks logs needs a task id".to_owned()).into());
    };
    let output = args.output || args.logs.follow || args.logs.tail.is_some() || args.logs.stderr;
    if !output {
        return print_result(workspace, id);
    }
    logs::run(workspace, args.logs)
}

/// `tasks logs ID`: the result JSON the store keeps (the same as
/// `results/ID.json`), as seed 002's `logs` prints it.
fn print_result(workspace: &Workspace, id: &str) -> anyhow::Result<u8> {
    print_json(&service(workspace)?.queue_result(id)?)?;
    Ok(0)
}

pub fn cancel(workspace: &Workspace, args: TaskCancelArgs) -> anyhow::Result<u8> {
    let task = service(workspace)?.cancel(&args.id, args.grace)?;
    println!("{} {}", task.id, task.status);
    Ok(0)
}

pub fn retry(workspace: &Workspace, args: TaskRetryArgs) -> anyhow::Result<u8> {
    let path = service(workspace)?.retry(&args.id)?;
    println!("{} queued again: {}", args.id, path.display());
    Ok(0)
}
