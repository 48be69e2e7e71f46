//! `taskdaemon loop run|list|show|logs|stop`: LLM loops run by the daemon.
//!
//! `loop run` checks everything it can before any API call (spec file,
//! validate command, provider, workdir), then hands the loop to the daemon.
//! The caller's `*_BASE_URL` goes into the stored spec; the caller's
//! `*_API_KEY` travels to the daemon over its owner-only socket and stays in
//! the daemon's memory, never on disk. Read commands use the store and the
//! files under `.taskdaemon/loops/ID/` directly, so they work while the
//! daemon is down.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use taskdaemon_core::time::{format_age, now_millis, to_rfc3339};
use taskdaemon_core::{LoopRecord, Status, TaskKind, TaskRecord};
use taskdaemon_daemon::protocol::{LoopRun, Request, Response, Secret};
use taskdaemon_daemon::{Client, running_pid};
use taskdaemon_llm::{CommandSpec, IterationRecord, LoopSpec, ProgressLog, Provider};
use taskdaemon_store::Store;
use taskdaemon_workspace::Workspace;

use super::{current_exe, logs, open_store};
use crate::args::{LoopCommand, LoopListArgs, LoopLogsArgs, LoopRunArgs, LoopShowArgs};
use crate::error::UsageError;
use crate::output::{print_json, status_cell, table};

/// How often a loop's end is checked while waiting for it.
const POLL: Duration = Duration::from_millis(100);
/// How often a waiter makes sure a daemon runs to drive the loop.
const DAEMON_CHECK: Duration = Duration::from_secs(1);

pub fn run(workspace: &Workspace, command: LoopCommand) -> anyhow::Result<u8> {
    match command {
        LoopCommand::Run(args) => start(workspace, args),
        LoopCommand::List(args) => list(workspace, args),
        LoopCommand::Show(args) => show(workspace, args),
        LoopCommand::Logs(args) => logs_of(workspace, args),
        LoopCommand::Stop(args) => stop(workspace, &args.id),
    }
}

fn start(workspace: &Workspace, args: LoopRunArgs) -> anyhow::Result<u8> {
    let detach = args.detach;
    let request = build_request(args)?;
    let mut client = Client::connect_or_start(workspace, &current_exe()?)?;
    let record = expect_loop(client.request(&Request::LoopRun(Box::new(request)))?)?;
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
    let store = open_store(workspace)?;
    logs::follow(&workspace.loop_log(&id), 0, Some((&*store, &id)))?;
    let record = store.loop_record(&id)?;
    let code = verdict(&record);
    println!("{id}");
    Ok(code)
}

/// Checks the arguments and builds the request: bad input fails here with
/// exit code 2, before the daemon or any model is involved.
fn build_request(args: LoopRunArgs) -> anyhow::Result<LoopRun> {
    let provider: Provider = args
        .provider
        .parse()
        .map_err(|e: taskdaemon_llm::UnknownProvider| UsageError(format!("--provider: {e}")))?;
    if args.validate.trim().is_empty() {
        return Err(UsageError(
            "--validate must not be empty: give the command that says the work is done".to_owned(),
        )
        .into());
    }
    let spec_text = std::fs::read_to_string(&args.spec)
        .map_err(|e| UsageError(format!("--spec {}: {e}", args.spec.display())))?;
    let workdir = match &args.workdir {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let workdir = std::fs::canonicalize(&workdir)
        .map_err(|e| UsageError(format!("--workdir {}: {e}", workdir.display())))?;
    let model = args
        .model
        .unwrap_or_else(|| default_model(provider).to_owned());
    let mut spec = LoopSpec::new(
        spec_text,
        CommandSpec::Shell(args.validate.clone()),
        &provider.to_string(),
        &model,
        &workdir,
    );
    spec.max_iterations = args.max_iterations;
    spec.base_url = env_value(provider.base_url_var());
    // The same checks the daemon makes, so bad input never reaches it.
    spec.clone()
        .into_config()
        .map_err(|e| UsageError(e.to_string()))?;
    let name = args.name.or_else(|| {
        args.spec
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
    });
    let mut argv = vec![
        "loop".to_owned(),
        "run".to_owned(),
        "--spec".to_owned(),
        args.spec.display().to_string(),
        "--validate".to_owned(),
        args.validate,
    ];
    if args.max_iterations != 10 {
        argv.extend([
            "--max-iterations".to_owned(),
            args.max_iterations.to_string(),
        ]);
    }
    Ok(LoopRun {
        spec,
        name,
        session: args.session,
        argv,
        api_key: env_value(provider.key_var()).map(Secret::new),
    })
}

fn default_model(provider: Provider) -> &'static str {
    match provider {
        Provider::Anthropic => "claude-sonnet-4-5",
        Provider::OpenAi => "gpt-4.1",
    }
}

fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn expect_loop(response: Response) -> anyhow::Result<LoopRecord> {
    match response {
        Response::Loop { record } => Ok(*record),
        other => anyhow::bail!("unexpected answer from the daemon: {other:?}"),
    }
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

/// `wait` for a loop: polls the store until it ends. Loops run inside the
/// daemon, so when none runs one is started (it resumes the loop).
pub fn wait(
    workspace: &Workspace,
    store: &dyn Store,
    task: &TaskRecord,
    timeout: Option<Duration>,
) -> anyhow::Result<Option<TaskRecord>> {
    debug_assert_eq!(task.kind, TaskKind::Loop);
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut checked = Instant::now() - DAEMON_CHECK;
    loop {
        let task = store.task(&task.id)?;
        if task.status.is_terminal() {
            return Ok(Some(task));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
        if checked.elapsed() >= DAEMON_CHECK {
            checked = Instant::now();
            if running_pid(workspace).is_none() {
                Client::connect_or_start(workspace, &current_exe()?)?;
            }
        }
        std::thread::sleep(POLL);
    }
}

#[derive(Serialize)]
struct ShowJson<'a> {
    #[serde(flatten)]
    record: &'a LoopRecord,
    progress_log: String,
    log: String,
    /// Every recorded iteration, from the progress log.
    progress: Vec<IterationRecord>,
}

fn list(workspace: &Workspace, args: LoopListArgs) -> anyhow::Result<u8> {
    let store = open_store(workspace)?;
    let loops = store.loops(args.all)?;
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
    let store = open_store(workspace)?;
    let record = store.loop_record(&args.id)?;
    let id = &record.task.id;
    let progress_path = workspace.loop_progress(id);
    let progress = ProgressLog::read(&progress_path)
        .with_context(|| format!("cannot read {}", progress_path.display()))?;
    if args.json {
        print_json(&ShowJson {
            record: &record,
            progress_log: progress_path.display().to_string(),
            log: workspace.loop_log(id).display().to_string(),
            progress,
        })?;
        return Ok(0);
    }
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
    for r in &progress {
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
    let store = open_store(workspace)?;
    let id = store.loop_record(&args.id)?.task.id;
    let path = workspace.loop_log(&id);
    if args.follow {
        logs::follow(&path, 0, Some((&*store, &id)))?;
    } else {
        logs::print_existing(&path, None)?;
    }
    Ok(0)
}

fn stop(workspace: &Workspace, id: &str) -> anyhow::Result<u8> {
    let store = open_store(workspace)?;
    // Refuse what is not a loop before involving the daemon.
    let id = store.loop_record(id)?.task.id;
    let mut client = Client::connect_or_start(workspace, &current_exe()?)?;
    let record = expect_loop(client.request(&Request::LoopStop { id: id.clone() })?)?;
    eprintln!("{id} {}", record.task.status);
    Ok(0)
}
