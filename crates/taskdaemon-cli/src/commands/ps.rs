//! `taskdaemon ps`

use taskdaemon_core::TaskRecord;
use taskdaemon_core::time::{format_age, now_millis};
use taskdaemon_workspace::Workspace;

use super::service;
use crate::args::PsArgs;
use crate::output::{print_json, status_cell, table};

pub fn run(workspace: &Workspace, args: PsArgs) -> anyhow::Result<u8> {
    let processes = service(workspace)?.processes(args.all, args.tool.as_deref())?;
    if args.json {
        print_json(&processes)?;
        return Ok(0);
    }
    if processes.is_empty() {
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
    // The container columns only when there is a container to show.
    let containers = processes.iter().any(|p| p.image.is_some());
    let rows: Vec<Vec<String>> = processes
        .iter()
        .map(|p| {
            let t = &p.task;
            let mut row = vec![
                t.id.clone(),
                status_cell(t.status),
                t.pid.map_or_else(|| "-".to_owned(), |p| p.to_string()),
                age(t, now),
                t.exit().map_or_else(|| "-".to_owned(), |e| e.to_string()),
                p.cpu_percent
                    .map_or_else(|| "-".to_owned(), |c| format!("{c:.0}%")),
                p.rss_kb
                    .map_or_else(|| "-".to_owned(), |r| format!("{}M", r / 1024)),
            ];
            if containers {
                row.push(p.mode.to_string());
                row.push(p.image.clone().unwrap_or_else(|| "-".to_owned()));
                row.push(p.container_id.as_deref().map_or_else(
                    || "-".to_owned(),
                    |id| taskdaemon_container::short(id).to_owned(),
                ));
            }
            row.push(t.command.clone());
            row
        })
        .collect();
    let mut headers = vec!["ID", "STATUS", "PID", "AGE", "EXIT", "CPU", "RSS"];
    if containers {
        headers.extend(["MODE", "IMAGE", "CONTAINER"]);
    }
    headers.push("COMMAND");
    print!("{}", table(&headers, &rows));
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
