//! `taskdaemon loop run|list|show|logs|stop`: LLM loops run by the daemon
//! (checked, started, listed and stopped by the service; formatted here).

use taskdaemon_core::time::{format_age, now_millis, to_rfc3339};
use taskdaemon_core::{LoopRecord, Status};
use taskdaemon_llm::CommandSpec;
use taskdaemon_service::{LogCursor, LoopRunInput};
use taskdaemon_workspace::Workspace;

use super::{logs, service};
use crate::args::{LoopCommand, LoopListArgs, LoopLogsArgs, LoopRunArgs, LoopShowArgs};
use crate::output::{print_json, status_cell, table};

pub fn run(workspace: &Workspace, command: LoopCommand) -> anyhow::Result<u8> {
    match command {
        LoopCommand::Run(args) => start(workspace, args),
        LoopCommand::List(args) => list(workspace, args),
        LoopCommand::Show(args) => show(workspace, args),
        LoopCommand::Logs(args) => logs_of(workspace, args),
        LoopCommand::Stop(args) => stop(workspace, &args.id),
        LoopCommand::Types(args) => super::config::types(workspace, args),
    }
}

fn start(workspace: &Workspace, args: LoopRunArgs) -> anyhow::Result<u8> {
    let detach = args.detach;
    let service = service(workspace)?;
    let record = service.loop_run(LoopRunInput {
        spec: args.spec,
        validate: args.validate,
        max_iterations: args.max_iterations,
        provider: args.provider,
        model: args.model,
        workdir: args.workdir,
        name: args.name,
        session: args.session,
        loop_type: args.loop_type,
        inputs: args.inputs,
    })?;
    let id = record.task.id.clone();
    if detach {
        eprintln!(
            "started {id} in {}",
            record.task.cwd.as_deref().unwrap_or("?")
        );
        println!("{id}");
        return Ok(0);
    }
    eprintln!(
        "started {id}; following its log (Ctrl-C leaves it running, `taskdaemon loop logs {id} -f` follows again)"
    );
    logs::follow(
        LogCursor::new(&workspace.loop_log(&id)),
        Some((&service, &id)),
    )?;
    let record = service.loop_record(&id)?;
    let code = verdict(&record);
    println!("{id}");
    Ok(code)
}

/// Reports how a loop ended; the exit code is 0 only for success.
fn verdict(record: &LoopRecord) -> u8 {
    let task = &record.task;
    let note = task.note.as_deref().unwrap_or("");
    match task.status {
        Status::Succeeded => {
            eprintln!("{} succeeded: {note}", task.id);
            0
        }
        status => {
            eprintln!("{} {status}: {note}", task.id);
            1
        }
    }
}

fn list(workspace: &Workspace, args: LoopListArgs) -> anyhow::Result<u8> {
    let loops = service(workspace)?.loops(args.all)?;
    if args.json {
        print_json(&loops)?;
        return Ok(0);
    }
    if loops.is_empty() {
        println!(
            "{}",
            if args.all {
                "no loops"
            } else {
                "no unfinished loops (loop list --all shows ended ones)"
            }
        );
        return Ok(0);
    }
    let now = now_millis();
    let rows: Vec<Vec<String>> = loops
        .iter()
        .map(|l| {
            let t = &l.task;
            let since = t.started_at.unwrap_or(t.created_at);
            vec![
                t.id.clone(),
                status_cell(t.status),
                l.iterations.to_string(),
                l.tool_calls.to_string(),
                format!("${:.4}", l.cost_usd),
                format_age(t.finished_at.unwrap_or(now) - since),
                t.title().to_owned(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &["ID", "STATUS", "ITER", "TOOLS", "COST", "TIME", "NAME"],
            &rows
        )
    );
    Ok(0)
}

fn show(workspace: &Workspace, args: LoopShowArgs) -> anyhow::Result<u8> {
    let shown = service(workspace)?.loop_show(&args.id)?;
    if args.json {
        print_json(&shown)?;
        return Ok(0);
    }
    let (record, progress) = (&shown.record, &shown.progress);
    let t = &record.task;
    let spec = &record.spec;
    println!("{}  {}  {}", t.id, status_cell(t.status), t.title());
    println!(
        "model       {} ({})",
        spec["model"].as_str().unwrap_or("?"),
        spec["provider"].as_str().unwrap_or("?")
    );
    println!("workdir     {}", t.cwd.as_deref().unwrap_or("?"));
    println!("validate    {}", validate_text(&spec["validate"]));
    println!(
        "iterations  {} of {}",
        record.iterations,
        spec["max_iterations"].as_u64().unwrap_or(0)
    );
    println!(
        "usage       {} tool calls, {} input + {} output tokens, ${:.4}",
        record.tool_calls, record.input_tokens, record.output_tokens, record.cost_usd
    );
    println!("created     {}", to_rfc3339(t.created_at));
    if let Some(end) = t.finished_at {
        println!("finished    {}", to_rfc3339(end));
    }
    if let Some(note) = &t.note {
        println!("result      {note}");
    }
    for r in progress {
        let verdict = if r.passed() {
            "passed".to_owned()
        } else {
            r.validation_exit_code
                .map_or("could not run".to_owned(), |c| format!("failed (exit {c})"))
        };
        println!(
            "  #{:<3} {} tool calls, validation {verdict}, ${:.4}",
            r.iteration, r.tool_calls, r.cost_usd
        );
    }
    Ok(0)
}

fn validate_text(value: &serde_json::Value) -> String {
    match serde_json::from_value::<CommandSpec>(value.clone()) {
        Ok(command) => command.display(),
        Err(_) => value.to_string(),
    }
}

fn logs_of(workspace: &Workspace, args: LoopLogsArgs) -> anyhow::Result<u8> {
    let service = service(workspace)?;
    let id = service.loop_record(&args.id)?.task.id;
    let path = workspace.loop_log(&id);
    if args.follow {
        logs::follow(LogCursor::new(&path), Some((&service, &id)))?;
    } else {
        logs::print_existing(&path, None)?;
    }
    Ok(0)
}

fn stop(workspace: &Workspace, id: &str) -> anyhow::Result<u8> {
    let record = service(workspace)?.loop_stop(id)?;
    eprintln!("{} {}", record.task.id, record.task.status);
    Ok(0)
}
