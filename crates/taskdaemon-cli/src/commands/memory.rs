//! `taskdaemon remember`, `memory list` and `search`: what agents decided and
//! learned, and finding anything again (formatting over the service).

use taskdaemon_core::time::{format_age, now_millis};
use taskdaemon_store::MemoryFilter;
use taskdaemon_workspace::Workspace;

use super::{agent, service};
use crate::args::{MemoryCommand, MemoryListArgs, RememberArgs, SearchArgs};
use crate::output::{print_json, table};

pub fn remember(workspace: &Workspace, args: RememberArgs) -> anyhow::Result<u8> {
    let service = service(workspace)?;
    let agent = agent(&args.agent)?;
    let memory = service.remember(&agent, args.kind, args.text, args.task, args.key)?;
    if args.json {
        print_json(&memory)?;
    } else {
        eprintln!("remembered {} {}", memory.kind, memory.id);
        println!("{}", memory.id);
    }
    Ok(0)
}

pub fn run(workspace: &Workspace, command: MemoryCommand) -> anyhow::Result<u8> {
    match command {
        MemoryCommand::List(args) => list(workspace, args),
    }
}

fn list(workspace: &Workspace, args: MemoryListArgs) -> anyhow::Result<u8> {
    let memories = service(workspace)?.memories(&MemoryFilter {
        kind: args.kind,
        task_id: args.task,
        limit: Some(args.limit),
    })?;
    if args.json {
        print_json(&memories)?;
        return Ok(0);
    }
    if memories.is_empty() {
        eprintln!("no memory yet (record some with `taskdaemon remember TEXT --kind decision`)");
        return Ok(0);
    }
    let now = now_millis();
    let rows: Vec<Vec<String>> = memories
        .iter()
        .map(|m| {
            vec![
                m.id.clone(),
                m.kind.to_string(),
                m.task_id.clone().unwrap_or_default(),
                m.key.clone().unwrap_or_default(),
                format_age(now - m.updated_at),
                m.text.replace('\n', " "),
            ]
        })
        .collect();
    print!(
        "{}",
        table(&["ID", "KIND", "TASK", "KEY", "AGE", "TEXT"], &rows)
    );
    Ok(0)
}

pub fn search(workspace: &Workspace, args: SearchArgs) -> anyhow::Result<u8> {
    let query = args.query.join(" ");
    let hits = service(workspace)?.search(&query, args.limit)?;
    if args.json {
        print_json(&hits)?;
        return Ok(0);
    }
    if hits.is_empty() {
        eprintln!("nothing matches '{query}'");
        return Ok(0);
    }
    let now = now_millis();
    for hit in &hits {
        println!(
            "{:<8} {:<10} {} ({} ago)\n         {}",
            format!("{:?}", hit.source).to_lowercase(),
            hit.id,
            hit.title,
            format_age(now - hit.at),
            hit.excerpt
        );
    }
    Ok(0)
}
