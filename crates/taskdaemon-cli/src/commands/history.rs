//! `taskdaemon history` and `archive`: the audit trail, paged from the store
//! so that even a long history streams in constant memory.

use std::io::{self, Write};

use taskdaemon_core::time::to_rfc3339;
use taskdaemon_service::HistoryQuery;
use taskdaemon_workspace::Workspace;

use super::service;
use crate::args::{ArchiveArgs, HistoryArgs};
use crate::output::print_json;

/// Events read from the store at a time.
const PAGE: usize = 1000;

pub fn history(workspace: &Workspace, args: HistoryArgs) -> anyhow::Result<u8> {
    let service = service(workspace)?;
    let filter = service.history_filter(&HistoryQuery {
        since: args.since,
        task: args.task,
    })?;
    let mut remaining = args.limit.unwrap_or(usize::MAX);
    let mut cursor = 0;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    while remaining > 0 {
        let page = service.history_page(&filter, cursor, PAGE.min(remaining))?;
        let Some(last) = page.last() else { break };
        cursor = last.seq;
        remaining -= page.len();
        for event in &page {
            if args.json {
                serde_json::to_writer(&mut out, event)?;
                writeln!(out)?;
            } else {
                writeln!(
                    out,
                    "{:>7} {} {:<10} {:<18} {:<8} {}",
                    event.seq,
                    to_rfc3339(event.at),
                    event.task_id.as_deref().unwrap_or("-"),
                    event.kind.as_str(),
                    event.actor,
                    event.message.replace('\n', " ")
                )?;
            }
        }
    }
    out.flush()?;
    Ok(0)
}

pub fn archive(workspace: &Workspace, args: ArchiveArgs) -> anyhow::Result<u8> {
    let (report, before) = service(workspace)?.archive(args.older_than)?;
    if args.json {
        print_json(&report)?;
    } else {
        println!(
            "archived {} events in {} compressed chunks (older than {})",
            report.events,
            report.chunks,
            to_rfc3339(before)
        );
    }
    Ok(0)
}
