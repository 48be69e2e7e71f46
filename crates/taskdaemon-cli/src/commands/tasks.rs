//! `taskdaemon tasks show|logs|cancel`: queue tasks.

use serde::Serialize;
use taskdaemon_core::time::to_rfc3339;
use taskdaemon_core::{QueueItem, TaskRecord};
use taskdaemon_daemon::Client;
use taskdaemon_daemon::protocol::Request;
use taskdaemon_store::StoreError;
use taskdaemon_supervisor::group::parse_signal;
use taskdaemon_workspace::Workspace;

use super::spawn::expect_task;
use super::{current_exe, logs, open_store};
use crate::args::{TaskCancelArgs, TaskLogsArgs, TaskShowArgs};
use crate::error::UsageError;
use crate::output::print_json;

#[derive(Serialize)]
struct Shown<'a> {
    #[serde(flatten)]
    task: &'a TaskRecord,
    /// The queue side; none for tasks that did not come from a queue.
    queue_item: Option<&'a QueueItem>,
    /// When the queue took the task in (RFC 3339); none outside a queue.
    added_at: Option<String>,
    stdout_log: String,
    stderr_log: String,
}

pub fn show(workspace: &Workspace, args: TaskShowArgs) -> anyhow::Result<u8> {
    let store = open_store(workspace)?;
    let store = &*store;
    let task = store.task(&args.id)?;
    let item = match store.queue_item(&task.id) {
        Ok(item) => Some(item),
        Err(StoreError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    if args.json {
        print_json(&Shown {
            task: &task,
            queue_item: item.as_ref(),
            added_at: item.as_ref().map(|i| to_rfc3339(i.created_at)),
            stdout_log: workspace.stdout_log(&task.id).display().to_string(),
            stderr_log: workspace.stderr_log(&task.id).display().to_string(),
        })?;
        return Ok(0);
    }
    let line = |key: &str, value: String| println!("{key:<10} {value}");
    line("id", task.id.clone());
    line("kind", task.kind.as_str().to_owned());
    line("status", task.status.to_string());
    if let Some(item) = &item {
        line("queue", item.queue.clone());
        line("document", item.document.clone());
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
    line(
        "stdout",
        workspace.stdout_log(&task.id).display().to_string(),
    );
    Ok(0)
}

pub fn logs(workspace: &Workspace, args: TaskLogsArgs) -> anyhow::Result<u8> {
    let Some(id) = &args.logs.id else {
        return Err(UsageError("tasks logs needs a task id".to_owned()).into());
    };
    if args.result {
        return print_result(workspace, id);
    }
    logs::run(workspace, args.logs)
}

/// `tasks logs ID --result`: the result JSON the store keeps (the same as
/// `results/ID.json`).
fn print_result(workspace: &Workspace, id: &str) -> anyhow::Result<u8> {
    let store = open_store(workspace)?;
    let task = store.task(id)?;
    let item = match store.queue_item(&task.id) {
        Ok(item) => item,
        Err(StoreError::NotFound(_)) => {
            return Err(
                UsageError(format!("{} is not a queue task: it has no result", task.id)).into(),
            );
        }
        Err(e) => return Err(e.into()),
    };
    match &item.result {
        Some(result) => {
            print_json(result)?;
            Ok(0)
        }
        None => Err(StoreError::Conflict(format!(
            "{} has no result yet (status {})",
            task.id, task.status
        ))
        .into()),
    }
}

pub fn cancel(workspace: &Workspace, args: TaskCancelArgs) -> anyhow::Result<u8> {
    let signal = parse_signal("TERM").map_err(UsageError)?;
    let mut client = Client::connect_or_start(workspace, &current_exe()?)?;
    let task = expect_task(client.request(&Request::Kill {
        id: args.id,
        signal: signal.as_raw(),
        grace_ms: args.grace.as_millis() as u64,
    })?)?;
    println!("{} {}", task.id, task.status);
    Ok(0)
}
