//! `taskdaemon ps`

use std::collections::HashMap;

use serde::Serialize;
use taskdaemon_core::TaskRecord;
use taskdaemon_core::time::{format_age, now_millis};
use taskdaemon_store::{ProcessFilter, Sample};
use taskdaemon_workspace::Workspace;

use super::{open_store, tool_arg};
use crate::args::PsArgs;
use crate::output::{print_json, status_cell, table};

#[derive(Serialize)]
struct PsEntry<'a> {
    #[serde(flatten)]
    task: &'a TaskRecord,
    /// CPU use over the last sample interval, in percent of one core.
    cpu_percent: Option<f64>,
    rss_kb: Option<u64>,
    /// Processes in the group.
    processes: Option<u32>,
    stdout_log: String,
    stderr_log: String,
}

pub fn run(workspace: &Workspace, args: PsArgs) -> anyhow::Result<u8> {
    let store = open_store(workspace)?;
    let store = &*store;
    let tool = tool_arg(args.tool.as_deref())?;
    let tasks = store.processes(&ProcessFilter {
        all: args.all,
        tool,
        limit: None,
    })?;
    let samples: HashMap<String, Sample> = store
        .samples()?
        .into_iter()
        .map(|s| (s.task_id.clone(), s))
        .collect();
    if args.json {
        let entries: Vec<PsEntry<'_>> = tasks
            .iter()
            .map(|task| {
                let sample = samples.get(&task.id).filter(|_| !task.status.is_terminal());
                PsEntry {
                    task,
                    cpu_percent: sample.map(|s| (s.cpu_percent * 10.0).round() / 10.0),
                    rss_kb: sample.map(|s| s.rss_kb),
                    processes: sample.map(|s| s.processes),
                    stdout_log: workspace.stdout_log(&task.id).display().to_string(),
                    stderr_log: workspace.stderr_log(&task.id).display().to_string(),
                }
            })
            .collect();
        print_json(&entries)?;
        return Ok(0);
    }
    if tasks.is_empty() {
        println!(
            "{}",
            if args.all {
                "no processes"
            } else {
                "no running processes (ps --all shows ended ones)"
            }
        );
        return Ok(0);
    }
    let now = now_millis();
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|t| {
            let sample = samples.get(&t.id).filter(|_| !t.status.is_terminal());
            vec![
                t.id.clone(),
                status_cell(t.status),
                t.pid.map_or_else(|| "-".to_owned(), |p| p.to_string()),
                age(t, now),
                t.exit().map_or_else(|| "-".to_owned(), |e| e.to_string()),
                sample.map_or_else(|| "-".to_owned(), |s| format!("{:.0}%", s.cpu_percent)),
                sample.map_or_else(|| "-".to_owned(), |s| format!("{}M", s.rss_kb / 1024)),
                t.command.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "ID", "STATUS", "PID", "AGE", "EXIT", "CPU", "RSS", "COMMAND"
            ],
            &rows
        )
    );
    Ok(0)
}

/// Running time for live processes, time since the end for ended ones.
fn age(task: &TaskRecord, now: i64) -> String {
    match (task.finished_at, task.started_at) {
        (Some(end), _) if task.status.is_terminal() => format!("{} ago", format_age(now - end)),
        (_, Some(start)) => format_age(now - start),
        _ => format_age(now - task.created_at),
    }
}
