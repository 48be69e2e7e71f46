//! `taskdaemon task ...`: tracked work an agent does itself (formatting;
//! the rules and queries are the service's).

use taskdaemon_core::compact::compact_line;
use taskdaemon_core::gate::GateRequest;
use taskdaemon_core::time::{format_age, now_millis};
use taskdaemon_core::{LinkKind, TaskRecord, TrackedAction, TrackedEdit, TrackedView};
use taskdaemon_service::{NewTask, Resume, Service, ShownTask, TaskTree};
use taskdaemon_store::TrackedFilter;
use taskdaemon_workspace::Workspace;

use super::{agent, service};
use crate::args::{
    Deferred, DepCommand, ListFormat, TaskActArgs, TaskAddArgs, TaskClaimArgs, TaskCommand,
    TaskCompactArgs, TaskDoneArgs, TaskFailArgs, TaskGateArgs, TaskListArgs, TaskNextArgs,
    TaskReadyArgs, TaskResumeArgs, TaskShowArgs, TaskStaleArgs, TaskTreeArgs, TaskUnlinkArgs,
};
use crate::error::UsageError;
use crate::output::{print_json, status_cell, table};
use taskdaemon_core::decay::parse_summaries;

pub fn run(workspace: &Workspace, command: TaskCommand) -> anyhow::Result<u8> {
    let service = service(workspace)?;
    let task = match command {
        TaskCommand::Add(Deferred(args)) => return add(&service, args),
        TaskCommand::List(Deferred(args)) => return list(&service, args),
        TaskCommand::Show(Deferred(args)) => return show(&service, args),
        TaskCommand::Ready(Deferred(args)) => return ready(&service, args),
        TaskCommand::Resume(Deferred(args)) => return resume(&service, args),
        TaskCommand::Compact(Deferred(args)) => return compact(&service, args),
        TaskCommand::Gate(Deferred(args)) => return gate(&service, args),
        TaskCommand::Ungate(Deferred(args)) => {
            let removed = service.ungate(&agent(&args.agent)?, &args.id, args.gate)?;
            for gate in &removed {
                eprintln!("removed {}", gate.describe());
            }
            service.tracked_task(&args.id)?.0
        }
        TaskCommand::Approve(Deferred(TaskActArgs { id, agent: who })) => {
            for gate in service.approve_task(&agent(&who)?, &id)? {
                eprintln!("approved {}", gate.describe());
            }
            service.tracked_task(&id)?.0
        }
        TaskCommand::Restore(Deferred(TaskActArgs { id, agent: who })) => {
            service.restore_task(&agent(&who)?, &id)?
        }
        TaskCommand::Next(Deferred(args)) => return next(&service, args),
        TaskCommand::Claim(Deferred(args)) => return claim(&service, args),
        TaskCommand::Stale(Deferred(args)) => return stale(&service, args),
        TaskCommand::Tree(Deferred(args)) => return tree(&service, args),
        TaskCommand::Link(Deferred(args)) => {
            service.link_tasks(&agent(&args.agent)?, &args.from, args.kind, &args.to)?
        }
        TaskCommand::Unlink(Deferred(args)) => unlink(&service, args)?,
        TaskCommand::Dep(DepCommand::Add(args)) => {
            service.add_dependency(&agent(&args.agent)?, &args.task, &args.depends_on)?
        }
        TaskCommand::Dep(DepCommand::Rm(args)) => {
            service.remove_dependency(&agent(&args.agent)?, &args.task, &args.depends_on)?
        }
        TaskCommand::Start(Deferred(TaskActArgs { id, agent: who })) => {
            service.act(&agent(&who)?, &id, TrackedAction::Start)?
        }
        TaskCommand::Done(Deferred(TaskDoneArgs {
            id,
            note,
            agent: who,
        })) => service.act(&agent(&who)?, &id, TrackedAction::Done { note })?,
        TaskCommand::Fail(Deferred(TaskFailArgs {
            id,
            reason,
            agent: who,
        })) => service.act(&agent(&who)?, &id, TrackedAction::Fail { reason })?,
        TaskCommand::Cancel(Deferred(TaskActArgs { id, agent: who })) => {
            service.act(&agent(&who)?, &id, TrackedAction::Cancel)?
        }
        TaskCommand::Context(Deferred(args)) => {
            service.add_task_files(&agent(&args.agent)?, &args.id, &args.files)?
        }
        TaskCommand::Edit(Deferred(args)) => {
            let edit = TrackedEdit {
                title: args.title,
                description: args.description,
                priority: args.priority,
                add_labels: args.add_labels,
                remove_labels: args.remove_labels,
            };
            service.edit_task(&agent(&args.agent)?, &args.id, &edit)?
        }
    };
    // After a change: say where the task stands now.
    println!("{} {}: {}", task.id, task.status, task.title());
    Ok(0)
}

/// `task gate`: adds the gates the flags name, then says where the task stands.
fn gate(service: &Service, args: TaskGateArgs) -> anyhow::Result<u8> {
    let request = GateRequest {
        until_succeeds: args.until_succeeds,
        until_command: args.until_command,
        until: args.until,
        after: args.after,
        approval: args.approval,
    };
    let added = service.gate_request(&agent(&args.agent)?, &args.id, request)?;
    if args.json {
        print_json(&added)?;
        return Ok(0);
    }
    for gate in &added {
        eprintln!("gate {}", gate.describe());
    }
    let (task, _) = service.tracked_task(&args.id)?;
    println!("{} {}: {}", task.id, task.status, task.title());
    Ok(0)
}

/// `task compact`: `--analyze` prints the work to summarise as JSON;
/// `--apply FILE` stores the summaries.
fn compact(service: &Service, args: TaskCompactArgs) -> anyhow::Result<u8> {
    let Some(path) = args.apply else {
        print_json(&service.compact_analysis(args.older_than)?)?;
        return Ok(0);
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
    let summaries = parse_summaries(&text)
        .map_err(|e| UsageError(format!("{}: {e}; nothing was compacted", path.display())))?;
    let tasks = service.compact_apply(&agent(&args.agent)?, &summaries)?;
    for task in &tasks {
        println!("{} compacted: {}", task.id, task.title());
    }
    Ok(0)
}

fn add(service: &Service, args: TaskAddArgs) -> anyhow::Result<u8> {
    let agent = agent(&args.agent)?;
    let task = service.add_task(
        &agent,
        NewTask {
            title: args.title,
            description: args.description,
            priority: args.priority,
            labels: args.labels,
            after: args.after,
            parent: args.parent,
        },
    )?;
    if args.json {
        print_json(&TrackedView::from(&task))?;
    } else {
        eprintln!("added {} ({}): {}", task.id, task.status, task.title());
        println!("{}", task.id);
    }
    Ok(0)
}

/// `--json` is `--format json`.
fn format_of(format: ListFormat, json: bool) -> ListFormat {
    if json { ListFormat::Json } else { format }
}

fn list(service: &Service, args: TaskListArgs) -> anyhow::Result<u8> {
    let format = format_of(args.format, args.json);
    if args.cursor.is_some() || format == ListFormat::Compact {
        return list_page(service, args, format);
    }
    let tasks = service.tracked(&TrackedFilter {
        status: args.status,
        label: args.label,
        limit: Some(args.limit),
    })?;
    let views = service.gated_views(&tasks)?;
    if format == ListFormat::Json {
        print_json(&views)?;
    } else if tasks.is_empty() {
        eprintln!("no tracked tasks (add one with `taskdaemon task add TITLE`)");
    } else {
        print!("{}", task_table(&tasks));
        print_gate_notes(&views);
        if tasks.len() == args.limit {
            eprintln!("showing the newest {}; use --limit for more", args.limit);
        }
    }
    Ok(0)
}

/// A page of the listing, newest first; the last line names the cursor
/// of the next page.
fn list_page(service: &Service, args: TaskListArgs, format: ListFormat) -> anyhow::Result<u8> {
    let page = service.tracked_page(args.status, args.label, args.cursor, args.limit)?;
    match format {
        ListFormat::Json => print_json(&page)?,
        ListFormat::Compact => {
            print_compact(&page.tasks);
            if let Some(cursor) = &page.next_cursor {
                println!("# more: --cursor {cursor}");
            }
        }
        ListFormat::Table => {
            print!("{}", task_table(&page.tasks));
            if let Some(cursor) = &page.next_cursor {
                eprintln!("more: --cursor {cursor}");
            }
        }
    }
    Ok(0)
}

fn print_compact(tasks: &[TaskRecord]) {
    for task in tasks {
        println!("{}", compact_line(task));
    }
}

fn ready(service: &Service, args: TaskReadyArgs) -> anyhow::Result<u8> {
    let format = format_of(args.format, args.json);
    if args.graph {
        return ready_graph(service, format);
    }
    let tasks = service.ready(args.limit)?;
    match format {
        ListFormat::Json => {
            let views: Vec<TrackedView> = tasks.iter().map(TrackedView::from).collect();
            print_json(&views)?;
        }
        _ if tasks.is_empty() => {
            eprintln!("nothing is ready: every open task is blocked, running or done")
        }
        ListFormat::Compact => print_compact(&tasks),
        ListFormat::Table => print!("{}", task_table(&tasks)),
    }
    Ok(0)
}

fn ready_graph(service: &Service, format: ListFormat) -> anyhow::Result<u8> {
    let layers = service.ready_graph()?;
    if format == ListFormat::Json {
        print_json(&layers)?;
        return Ok(0);
    }
    if layers.layers.is_empty() && layers.stuck.is_empty() {
        eprintln!("nothing waits: every open task is running or done");
    }
    for (n, layer) in layers.layers.iter().enumerate() {
        let when = if n == 0 {
            "now"
        } else {
            "after the layers above"
        };
        println!(
            "layer {n} ({} task(s), {when}): {}",
            layer.len(),
            layer.join(" ")
        );
    }
    if !layers.stuck.is_empty() {
        println!(
            "stuck (wait on failed, cancelled or lost work): {}",
            layers.stuck.join(" ")
        );
    }
    Ok(0)
}

fn next(service: &Service, args: TaskNextArgs) -> anyhow::Result<u8> {
    let Some(next) = service.next_task()? else {
        eprintln!("nothing ready: every open task is blocked, running or done");
        return Ok(3);
    };
    match format_of(args.format, args.json) {
        ListFormat::Json => print_json(&next)?,
        ListFormat::Compact => {
            println!("{}", compact_line(&service.tracked_task(&next.task.id)?.0))
        }
        ListFormat::Table => println!("{} {}", next.task.id, next.task.title),
    }
    if args.explain && args.format != ListFormat::Json && !args.json {
        println!("why: {}", next.pick.explanation);
    }
    Ok(0)
}

fn claim(service: &Service, args: TaskClaimArgs) -> anyhow::Result<u8> {
    let agent = agent(&args.agent)?;
    let lease = args.lease.map(|d| d.as_millis() as i64);
    let Some(task) = service.claim_task(&agent, args.id.as_deref(), lease)? else {
        eprintln!("nothing ready to claim: every open task is blocked, claimed or done");
        return Ok(3);
    };
    if args.json {
        print_json(&TrackedView::from(&task))?;
    } else {
        eprintln!("claimed {}: {}", task.id, task.title());
        println!("{}", task.id);
    }
    Ok(0)
}

fn stale(service: &Service, args: TaskStaleArgs) -> anyhow::Result<u8> {
    let tasks = service.stale_claims()?;
    if args.json {
        let views: Vec<TrackedView> = tasks.iter().map(TrackedView::from).collect();
        print_json(&views)?;
        return Ok(0);
    }
    if tasks.is_empty() {
        eprintln!("no stale claims");
    }
    let now = now_millis();
    for task in &tasks {
        if let Some(claim) = &task.claim {
            println!(
                "{} claimed by {}, lease ran out {} ago: {}",
                task.id,
                claim.by,
                format_age(now - claim.lease_until),
                task.title()
            );
        }
    }
    Ok(0)
}

fn unlink(service: &Service, args: TaskUnlinkArgs) -> anyhow::Result<TaskRecord> {
    let (from, kind, to) = match args.words.as_slice() {
        [from, to] => (from, None, to),
        [from, kind, to] => (
            from,
            Some(
                kind.parse::<LinkKind>()
                    .map_err(taskdaemon_service::ServiceError::BadInput)?,
            ),
            to,
        ),
        _ => {
            return Err(taskdaemon_service::ServiceError::BadInput(
                "usage: task unlink A [TYPE] B".to_owned(),
            )
            .into());
        }
    };
    Ok(service.unlink_tasks(&agent(&args.agent)?, from, kind, to)?)
}

fn tree(service: &Service, args: TaskTreeArgs) -> anyhow::Result<u8> {
    let tree = service.task_tree(&args.id)?;
    if args.json {
        print_json(&tree)?;
    } else {
        let mut out = String::new();
        render_tree(&tree, 0, &mut out);
        print!("{out}");
    }
    Ok(0)
}

fn render_tree(node: &TaskTree, depth: usize, out: &mut String) {
    let t = &node.task;
    let indent = "  ".repeat(depth);
    let rollup = t.rollup.map_or_else(String::new, |r| format!(" [{r}]"));
    out.push_str(&format!(
        "{indent}{} {} {}{rollup}\n",
        t.id, t.status, t.title
    ));
    for link in t.links.iter().filter(|l| l.kind != LinkKind::ParentChild) {
        let (phrase, other) = link.seen_from(&t.id);
        out.push_str(&format!("{indent}    {phrase} {other}\n"));
    }
    for child in &node.children {
        render_tree(child, depth + 1, out);
    }
}

/// Under a table: each task's gates that have not opened, and why a task
/// is blocked for good.
fn print_gate_notes(views: &[TrackedView]) {
    for view in views.iter().filter(|v| !v.gates.is_empty()) {
        let gates: Vec<String> = view.gates.iter().map(|g| g.describe()).collect();
        println!("{} waits on gates: {}", view.id, gates.join("; "));
    }
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
                match &t.rollup {
                    Some(rollup) => format!("{} [{rollup}]", t.title()),
                    None => t.title().to_owned(),
                },
            ]
        })
        .collect();
    table(&["ID", "STATUS", "PRI", "AFTER", "LABELS", "TITLE"], &rows)
}

fn show(service: &Service, args: TaskShowArgs) -> anyhow::Result<u8> {
    let shown = service.shown_task(&args.id)?;
    if args.json {
        print_json(&shown)?;
        return Ok(0);
    }
    let ShownTask {
        task,
        decisions,
        original,
    } = shown;
    let now = now_millis();
    println!("{}  {}", task.id, task.title);
    println!("status:     {}", status_cell(task.status));
    println!("priority:   {}", task.priority);
    if !task.labels.is_empty() {
        println!("labels:     {}", task.labels.join(", "));
    }
    if !task.depends_on.is_empty() {
        println!("after:      {}", task.depends_on.join(", "));
    }
    if let Some(rollup) = &task.rollup {
        println!("subtasks:   {rollup}");
    }
    if let Some(claim) = &task.claim {
        println!("claimed by: {}", claim.by);
    }
    for link in &task.links {
        let (phrase, other) = link.seen_from(&task.id);
        println!("link:       {phrase} {other}");
    }
    if let Some(reason) = &task.blocked_reason {
        println!("blocked:    {reason}");
    }
    for gate in &task.gates {
        println!("gate:       {}", gate.describe());
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
    if let Some(original) = &original {
        println!(
            "\ncompacted {} ago; the original (`taskdaemon task restore {}` brings it back):",
            format_age(now - original.compacted_at),
            task.id
        );
        for text in [&original.description, &original.note]
            .into_iter()
            .flatten()
        {
            println!("  {text}");
        }
    }
    Ok(0)
}

fn resume(service: &Service, args: TaskResumeArgs) -> anyhow::Result<u8> {
    let agent = agent(&args.agent)?;
    let resume = service.resume(agent.session.as_deref())?;
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
    if !resume.plans.is_empty() {
        out.push_str(&format!(
            "\n## Plans in progress ({})\n",
            resume.plans.len()
        ));
        for p in &resume.plans {
            out.push_str(&format!(
                "- {} {}: {}, {}/{} specs done\n",
                p.plan.id,
                p.plan.display_title(),
                p.plan.status,
                p.specs_succeeded,
                p.specs_total
            ));
        }
    }
    if !resume.waiting_queries.is_empty() {
        out.push_str(&format!(
            "\n## Waiting for your answer ({})\n",
            resume.waiting_queries.len()
        ));
        for q in &resume.waiting_queries {
            out.push_str(&format!(
                "- {} ({}, from {}): {} (answer: `taskdaemon plan answer {} TEXT`)\n",
                q.id, q.plan, q.from, q.body, q.id
            ));
        }
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
