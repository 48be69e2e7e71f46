//! `start`, `stop` and `status`.

use taskdaemon_core::time::to_rfc3339;
use taskdaemon_daemon::scheduler_state::SchedulerState;
use taskdaemon_daemon::{start_daemon_with, stop_daemon};
use taskdaemon_service::{PipelineAttention, Service, WorkerState};
use taskdaemon_workspace::Workspace;

use super::workers::print_tables;
use super::{current_exe, service};
use crate::args::{DaemonWebArgs, StatusArgs};
use crate::output::print_json;

pub fn start(workspace: &Workspace, args: DaemonWebArgs) -> anyhow::Result<u8> {
    let daemon_args = super::web::daemon_args(&args);
    let (pid, started) = start_daemon_with(workspace, &current_exe()?, &daemon_args)?;
    if started {
        println!("daemon started (pid {pid})");
    } else {
        println!("daemon already running (pid {pid})");
        if args.web.is_some() {
            eprintln!(
                "warning: --web applies when the daemon starts: `taskdaemon stop` first (or run `taskdaemon web`)"
            );
        }
    }
    let serves_web = args.web.is_some() || service(workspace)?.config().web.listen.is_some();
    if started
        && serves_web
        && let Some(url) = service(workspace)?.web_url()?
    {
        println!("dashboard  {url}/ (log in: taskdaemon dashboard)");
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

pub fn status(workspace: &Workspace, args: StatusArgs) -> anyhow::Result<u8> {
    let json = args.json;
    let report = Service::status_via_daemon(workspace, args.detailed, || service(workspace))?;
    let pid = report.pid;
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
        .filter(|(_, n)| **n != 0)
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
        .filter(|w| w.state == WorkerState::Running)
        .filter_map(|w| w.host.as_deref())
        .collect::<std::collections::BTreeSet<_>>();
    if !report.claim_workers.is_empty() {
        let newest = report
            .claim_workers
            .iter()
            .filter_map(|w| w.heartbeat_at.as_deref())
            .max()
            .unwrap_or("-");
        let lost = report
            .claim_workers
            .iter()
            .filter(|w| w.state == WorkerState::Lost)
            .count();
        println!(
            "workers    {} running on {} host(s), last heartbeat {newest}{}",
            report
                .claim_workers
                .iter()
                .filter(|w| w.state == WorkerState::Running)
                .count(),
            hosts.len(),
            if lost > 0 {
                format!("; {lost} lost (no heartbeat within its lease)")
            } else {
                String::new()
            }
        );
    }
    let config = &report.loop_types;
    match &config.version {
        Some(v) => println!(
            "loop types version {} loaded {} ({})",
            v.version,
            to_rfc3339(v.loaded_at),
            v.file.as_deref().unwrap_or("built-in types")
        ),
        None => {
            println!("loop types none loaded yet (the daemon loads taskdaemon.yml when it starts)")
        }
    }
    if let Some(alert) = &config.alert {
        println!("alert      {alert}");
    }
    let sandbox = if report.landlock.available {
        "model commands run under Landlock"
    } else {
        "unavailable: model commands refused unless a loop type sets `sandbox: none`"
    };
    println!("sandbox    {sandbox} ({})", report.landlock.detail);
    print_pipeline(&report.pipeline);
    print_scheduler(&report.scheduler);
    if args.detailed {
        println!("limits     {}", report.limits);
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

/// Plans in progress, queries waiting for an answer and alerts, one line each.
fn print_pipeline(pipeline: &PipelineAttention) {
    for p in &pipeline.plans {
        println!(
            "plan       {} {}: {}, {}/{} specs done",
            p.plan.id,
            p.plan.display_title(),
            p.plan.status,
            p.specs_succeeded,
            p.specs_total
        );
    }
    for q in &pipeline.queries {
        println!(
            "query      {} ({}, from {}): {} (answer: taskdaemon plan answer {} TEXT)",
            q.id,
            q.plan,
            q.from,
            one_line(&q.body),
            q.id
        );
    }
    for a in &pipeline.alerts {
        println!(
            "alert      {} ({}, from {}): {}",
            a.id,
            a.plan,
            a.from,
            one_line(&a.body)
        );
    }
}

/// Backpressure holding the plan scheduler back, when it does: why, since
/// when, and what waits for it.
fn print_scheduler(state: &SchedulerState) {
    let Some(reason) = &state.held else {
        return;
    };
    let since = state
        .held_since
        .map(|at| format!(" since {}", to_rfc3339(at)))
        .unwrap_or_default();
    let mut waiting = Vec::new();
    if !state.waiting_plans.is_empty() {
        waiting.push(format!("next step of {}", state.waiting_plans.join(", ")));
    }
    if state.specs_waiting {
        waiting.push("ready specs".to_owned());
    }
    let waiting = if waiting.is_empty() {
        String::new()
    } else {
        format!("; waiting: {}", waiting.join(", "))
    };
    println!("scheduler  held back{since}, no new spec or plan step starts: {reason}{waiting}");
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}
