//! `taskdaemon task ...`: tracked work an agent does itself.
//!
//! Every command that changes a task is a save trigger: after the store
//! commits, the seed snapshot `current.json` is rewritten.

use serde::Serialize;
use taskdaemon_core::time::{format_age, now_millis};
use taskdaemon_core::{
    Event, IllegalTransition, Memory, MemoryKind, NewTracked, Status, TaskRecord, TrackedAction,
    TrackedEdit, TrackedView,
};
use taskdaemon_store::{MemoryFilter, Store, StoreError, TrackedFilter};
use taskdaemon_workspace::Workspace;

use super::{Agent, open_store, save_snapshot};
use crate::args::{
    AgentArgs, DepCommand, TaskActArgs, TaskAddArgs, TaskCommand, TaskContextArgs, TaskDoneArgs,
    TaskFailArgs, TaskListArgs, TaskReadyArgs, TaskResumeArgs, TaskShowArgs,
};
use crate::output::{print_json, status_cell, table};

/// Events shown by `task resume`.
const RESUME_EVENTS: i64 = 10;
/// Ready tasks shown by `task resume`.
const RESUME_READY: usize = 5;

pub fn run(workspace: &Workspace, command: TaskCommand) -> anyhow::Result<u8> {
    let store = open_store(workspace)?;
    let store = &*store;
    match command {
        TaskCommand::Add(args) => add(workspace, store, args),
        TaskCommand::Dep(DepCommand::Add(args)) => {
            let agent = Agent::from_args(&args.agent)?;
            let task = store.add_dependency(&args.task, &args.depends_on, &agent.actor())?;
            changed(workspace, store, &agent, &task)
        }
        TaskCommand::Dep(DepCommand::Rm(args)) => {
            let agent = Agent::from_args(&args.agent)?;
            let task = store.remove_dependency(&args.task, &args.depends_on, &agent.actor())?;
            changed(workspace, store, &agent, &task)
        }
        TaskCommand::List(args) => list(store, args),
        TaskCommand::Show(args) => show(store, args),
        TaskCommand::Ready(args) => ready(store, args),
        TaskCommand::Start(TaskActArgs { id, agent }) => {
            act(workspace, store, &id, TrackedAction::Start, &agent)
        }
        TaskCommand::Done(TaskDoneArgs { id, note, agent }) => {
            act(workspace, store, &id, TrackedAction::Done { note }, &agent)
        }
        TaskCommand::Fail(TaskFailArgs { id, reason, agent }) => act(
            workspace,
            store,
            &id,
            TrackedAction::Fail { reason },
            &agent,
        ),
        TaskCommand::Cancel(TaskActArgs { id, agent }) => {
            act(workspace, store, &id, TrackedAction::Cancel, &agent)
        }
        TaskCommand::Context(args) => context(workspace, store, args),
        TaskCommand::Edit(args) => {
            let agent = Agent::from_args(&args.agent)?;
            let edit = TrackedEdit {
                title: args.title,
                description: args.description,
                priority: args.priority,
                add_labels: args.add_labels,
                remove_labels: args.remove_labels,
            };
            agent.touch(store)?;
            let task = store.edit_tracked(&args.id, &edit, &agent.actor())?;
            changed(workspace, store, &agent, &task)
        }
        TaskCommand::Resume(args) => resume(store, args),
    }
}

fn add(workspace: &Workspace, store: &dyn Store, args: TaskAddArgs) -> anyhow::Result<u8> {
    let agent = Agent::from_args(&args.agent)?;
    let new = NewTracked {
        title: args.title,
        description: args.description,
        priority: args.priority,
        labels: args.labels,
        depends_on: args.after,
        tool: agent.tool.clone(),
        session: agent.session.clone(),
    };
    let task = store.create_tracked(&new, &agent.actor())?;
    save_snapshot(workspace, store, &agent);
    if args.json {
        print_json(&TrackedView::from(&task))?;
    } else {
        eprintln!("added {} ({}): {}", task.id, task.status, task.title());
        println!("{}", task.id);
    }
    Ok(0)
}

fn act(
    workspace: &Workspace,
    store: &dyn Store,
    id: &str,
    action: TrackedAction,
    agent: &AgentArgs,
) -> anyhow::Result<u8> {
    let agent = Agent::from_args(agent)?;
    agent.touch(store)?;
    let task = match store.act_on_tracked(id, &action, &agent.actor()) {
        Ok(task) => task,
        Err(StoreError::IllegalTransition(illegal)) => {
            let hint = transition_hint(&action, &illegal);
            return Err(anyhow::Error::from(StoreError::IllegalTransition(illegal)).context(hint));
        }
        Err(other) => return Err(other.into()),
    };
    changed(workspace, store, &agent, &task)
}

fn context(workspace: &Workspace, store: &dyn Store, args: TaskContextArgs) -> anyhow::Result<u8> {
    let agent = Agent::from_args(&args.agent)?;
    agent.touch(store)?;
    let task = store.add_task_files(&args.id, &args.files, &agent.actor())?;
    changed(workspace, store, &agent, &task)
}

/// Says in words why `action` does not apply, and what would.
fn transition_hint(action: &TrackedAction, illegal: &IllegalTransition) -> String {
    let id = &illegal.id;
    match (action, illegal.from) {
        (TrackedAction::Done { .. }, Status::Pending | Status::Blocked) => {
            format!(
                "cannot mark {id} done: it was never started (`taskdaemon task start {id}` first)"
            )
        }
        (_, from) if from.is_terminal() => {
            format!("cannot {} {id}: it already ended ({from})", action.verb())
        }
        (TrackedAction::Start, Status::Running) => format!("{id} is already running"),
        _ => format!("cannot {} {id} while it is {}", action.verb(), illegal.from),
    }
}

/// After a change: save the snapshot and say where the task stands now.
fn changed(
    workspace: &Workspace,
    store: &dyn Store,
    agent: &Agent,
    task: &TaskRecord,
) -> anyhow::Result<u8> {
    save_snapshot(workspace, store, agent);
    println!("{} {}: {}", task.id, task.status, task.title());
    Ok(0)
}

fn list(store: &dyn Store, args: TaskListArgs) -> anyhow::Result<u8> {
    let tasks = store.tracked(&TrackedFilter {
        status: args.status,
        label: args.label,
        limit: Some(args.limit),
    })?;
    if args.json {
        let views: Vec<TrackedView> = tasks.iter().map(TrackedView::from).collect();
        print_json(&views)?;
    } else if tasks.is_empty() {
        eprintln!("no tracked tasks (add one with `taskdaemon task add TITLE`)");
    } else {
        print!("{}", task_table(&tasks));
        if tasks.len() == args.limit {
            eprintln!("showing the newest {}; use --limit for more", args.limit);
        }
    }
    Ok(0)
}

fn ready(store: &dyn Store, args: TaskReadyArgs) -> anyhow::Result<u8> {
    let tasks = store.ready(args.limit)?;
    if args.json {
        let views: Vec<TrackedView> = tasks.iter().map(TrackedView::from).collect();
        print_json(&views)?;
    } else if tasks.is_empty() {
        eprintln!("nothing is ready: every open task is blocked, running or done");
    } else {
        print!("{}", task_table(&tasks));
    }
    Ok(0)
}

fn task_table(tasks: &[TaskRecord]) -> String {
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|t| {
            vec![
                t.id.clone(),
                status_cell(t.status),
                t.priority.to_string(),
                t.depends_on.join(","),
                t.labels.join(","),
                t.title().to_owned(),
            ]
        })
        .collect();
    table(&["ID", "STATUS", "PRI", "AFTER", "LABELS", "TITLE"], &rows)
}

/// A task with its decisions, as `task show --json` prints it.
#[derive(Serialize)]
struct ShownTask {
    #[serde(flatten)]
    task: TrackedView,
    decisions: Vec<Memory>,
}

fn show(store: &dyn Store, args: TaskShowArgs) -> anyhow::Result<u8> {
    let task = store.task(&args.id)?;
    let decisions = decisions_of(store, &task.id)?;
    if args.json {
        print_json(&ShownTask {
            task: TrackedView::from(&task),
            decisions,
        })?;
        return Ok(0);
    }
    let now = now_millis();
    println!("{}  {}", task.id, task.title());
    println!("status:     {}", status_cell(task.status));
    println!("priority:   {}", task.priority);
    if !task.labels.is_empty() {
        println!("labels:     {}", task.labels.join(", "));
    }
    if !task.depends_on.is_empty() {
        println!("after:      {}", task.depends_on.join(", "));
    }
    println!("created:    {} ago", format_age(now - task.created_at));
    if let Some(started) = task.started_at {
        println!("started:    {} ago", format_age(now - started));
    }
    if let Some(finished) = task.finished_at {
        println!("finished:   {} ago", format_age(now - finished));
    }
    if let Some(session) = &task.session {
        println!("session:    {session}");
    }
    if let Some(description) = &task.description {
        println!("\n{description}");
    }
    if let Some(note) = &task.note {
        println!("\nnote: {note}");
    }
    for file in &task.files_modified {
        println!("file: {file}");
    }
    for decision in &decisions {
        println!("decision: {}", decision.text);
    }
    Ok(0)
}

fn decisions_of(store: &dyn Store, id: &str) -> anyhow::Result<Vec<Memory>> {
    Ok(store.memories(&MemoryFilter {
        kind: Some(MemoryKind::Decision),
        task_id: Some(id.to_owned()),
        limit: Some(20),
    })?)
}

/// Everything `task resume` reports.
#[derive(Serialize)]
struct Resume {
    session: Option<String>,
    current_task: Option<ShownTask>,
    ready: Vec<TrackedView>,
    recent_decisions: Vec<Memory>,
    last_events: Vec<Event>,
}

fn resume(store: &dyn Store, args: TaskResumeArgs) -> anyhow::Result<u8> {
    let agent = Agent::from_args(&args.agent)?;
    let session = match &agent.session {
        Some(id) => Some(id.clone()),
        None => store.latest_session()?.map(|s| s.id),
    };
    let running = store.current_candidates(session.as_deref())?;
    let current = taskdaemon_core::snapshot::pick_current(&running, session.as_deref());
    let current_task = match current {
        Some(task) => Some(ShownTask {
            task: TrackedView::from(task),
            decisions: decisions_of(store, &task.id)?,
        }),
        None => None,
    };
    let last = store.last_event_seq()?;
    let resume = Resume {
        session,
        current_task,
        ready: store
            .ready(RESUME_READY)?
            .iter()
            .map(TrackedView::from)
            .collect(),
        recent_decisions: store.memories(&MemoryFilter {
            kind: Some(MemoryKind::Decision),
            task_id: None,
            limit: Some(5),
        })?,
        last_events: store.events_after(
            (last - RESUME_EVENTS).max(0),
            &[],
            RESUME_EVENTS as usize,
        )?,
    };
    if args.json {
        print_json(&resume)?;
    } else {
        print!("{}", resume_markdown(&resume, now_millis()));
    }
    Ok(0)
}

fn resume_markdown(resume: &Resume, now: i64) -> String {
    let mut out = String::from("# Where work stands");
    if let Some(session) = &resume.session {
        out.push_str(&format!(" (session {session})"));
    }
    out.push_str("\n\n## In progress\n");
    match &resume.current_task {
        Some(current) => {
            let t = &current.task;
            let since = t.started_at.map_or_else(String::new, |s| {
                format!(", started {} ago", format_age(now - s))
            });
            out.push_str(&format!("- {} {}{since}\n", t.id, t.title));
            if !t.files_modified.is_empty() {
                out.push_str(&format!("  files: {}\n", t.files_modified.join(", ")));
            }
            for d in &current.decisions {
                out.push_str(&format!("  decided: {}\n", d.text));
            }
        }
        None => out.push_str("- nothing is in progress\n"),
    }
    out.push_str(&format!("\n## Ready ({})\n", resume.ready.len()));
    for t in &resume.ready {
        out.push_str(&format!(
            "- {} {} (priority {})\n",
            t.id, t.title, t.priority
        ));
    }
    if !resume.recent_decisions.is_empty() {
        out.push_str("\n## Recent decisions\n");
        for d in &resume.recent_decisions {
            out.push_str(&format!("- {}\n", d.text));
        }
    }
    out.push_str("\n## Last events\n");
    for e in &resume.last_events {
        out.push_str(&format!(
            "- {} ago {} {}: {}\n",
            format_age(now - e.at),
            e.task_id.as_deref().unwrap_or("-"),
            e.kind,
            e.message
        ));
    }
    out
}
