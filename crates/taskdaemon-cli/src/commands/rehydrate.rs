//! `taskdaemon rehydrate`: the post-compaction summary.

use std::collections::{HashMap, HashSet};

use taskdaemon_core::rehydrate::{
    AlertItem, CurrentItem, EndedItem, ReadyItem, RehydrateInput, RunningItem, render,
};
use taskdaemon_core::time::now_millis;
use taskdaemon_core::{EventKind, MemoryKind, Status, TaskRecord};
use taskdaemon_daemon::running_pid;
use taskdaemon_store::{MemoryFilter, ProcessFilter, Store};
use taskdaemon_workspace::Workspace;

use super::open_store;
use crate::args::RehydrateArgs;
use crate::output::{last_line, print_json};

/// Where the last rehydrate stopped reading events.
const CURSOR_KEY: &str = "rehydrate.cursor";
/// At most this many ended processes and alerts are considered; the budget cuts further.
const MAX_ITEMS: usize = 500;
/// Events that report something the reader should see once.
const SEEN_KINDS: &[EventKind] = &[
    EventKind::Exited,
    EventKind::Lost,
    EventKind::StartFailed,
    EventKind::Alert,
];
/// Ready tasks and recent decisions considered.
const MAX_TRACKED_ITEMS: usize = 5;

pub fn run(workspace: &Workspace, args: RehydrateArgs) -> anyhow::Result<u8> {
    let store = open_store(workspace)?;
    let store = &*store;
    let cursor: i64 = store
        .meta(CURSOR_KEY)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // Read the newest event first so nothing committed meanwhile is skipped next time.
    let newest = store.last_event_seq()?;
    let input = gather(workspace, store, cursor, args.session.as_deref())?;
    let rendered = render(&input, args.budget);
    if args.json {
        #[derive(serde::Serialize)]
        struct Json<'a> {
            #[serde(flatten)]
            rendered: &'a taskdaemon_core::rehydrate::Rehydrated,
            #[serde(flatten)]
            input: &'a RehydrateInput,
        }
        print_json(&Json {
            rendered: &rendered,
            input: &input,
        })?;
    } else {
        print!("{}", rendered.markdown);
    }
    if !args.peek {
        // Only past what was shown: an exit or alert cut for the budget stays unseen.
        let mut next = newest;
        // The same newest items the summary considered; anything older was
        // beyond MAX_ITEMS and is passed over (`ps --all` still lists it).
        for event in store.newest_events_after(cursor, SEEN_KINDS, MAX_ITEMS)? {
            let Some(id) = event.task_id.as_deref() else {
                continue;
            };
            if event.seq > newest {
                break;
            }
            let shown = rendered.shown_ids.iter().any(|shown| shown == id);
            if !shown {
                next = next.min(event.seq - 1);
                break;
            }
        }
        store.set_meta(CURSOR_KEY, &next.to_string())?;
    }
    Ok(0)
}

fn gather(
    workspace: &Workspace,
    store: &dyn Store,
    cursor: i64,
    session: Option<&str>,
) -> anyhow::Result<RehydrateInput> {
    let live = store.processes(&ProcessFilter::default())?;
    let mut running: Vec<RunningItem> = live
        .iter()
        .filter(|t| t.status == Status::Running)
        .map(|t| RunningItem {
            id: t.id.clone(),
            command: t.command.clone(),
            pid: t.pid,
            started_at: t.started_at.unwrap_or(t.created_at),
            last_line: newest_log_line(workspace, &t.id),
        })
        .collect();
    // Loops run inside the daemon: no pid; their log's last line says where they are.
    running.extend(
        store
            .loops(false)?
            .into_iter()
            .filter(|l| l.task.status == Status::Running)
            .map(|l| RunningItem {
                last_line: last_line(&workspace.loop_log(&l.task.id)),
                command: format!("loop: {}", l.task.title()),
                id: l.task.id,
                pid: None,
                started_at: l.task.started_at.unwrap_or(l.task.created_at),
            }),
    );

    let ended_events = store.newest_events_after(
        cursor,
        &[EventKind::Exited, EventKind::Lost, EventKind::StartFailed],
        MAX_ITEMS,
    )?;
    // Newest first, one line per task, all the tasks read in one query.
    let mut seen = HashSet::new();
    let newest: Vec<(String, i64)> = ended_events
        .iter()
        .rev()
        .filter_map(|e| Some((e.task_id.clone()?, e.at)))
        .filter(|(id, _)| seen.insert(id.clone()))
        .collect();
    let ids: Vec<String> = newest.iter().map(|(id, _)| id.clone()).collect();
    let mut by_id: HashMap<String, TaskRecord> = store
        .tasks_by_ids(&ids)?
        .into_iter()
        .map(|t| (t.id.clone(), t))
        .collect();
    let mut ended = Vec::new();
    for (id, at) in &newest {
        let Some(task) = by_id.remove(id) else {
            continue;
        };
        if !task.status.is_terminal() {
            continue;
        }
        ended.push(EndedItem {
            id: task.id.clone(),
            command: task.command.clone(),
            status: task.status,
            exit: task.exit(),
            finished_at: task.finished_at.unwrap_or(*at),
            error: task.error.clone(),
        });
    }

    let alerts = store
        .newest_events_after(cursor, &[EventKind::Alert], MAX_ITEMS)?
        .into_iter()
        .rev()
        .map(|e| AlertItem {
            task_id: e.task_id,
            at: e.at,
            message: e.message,
        })
        .collect();

    let (current, ready, decisions) = tracked_work(store, session)?;
    Ok(RehydrateInput {
        workspace: workspace.root().display().to_string(),
        now: now_millis(),
        daemon_pid: running_pid(workspace),
        running,
        ended,
        alerts,
        current,
        ready,
        decisions,
    })
}

/// The tracked task in progress, ready work and recent decisions.
fn tracked_work(
    store: &dyn Store,
    session: Option<&str>,
) -> anyhow::Result<(Option<CurrentItem>, Vec<ReadyItem>, Vec<String>)> {
    let decisions = |task: Option<&str>| -> anyhow::Result<Vec<String>> {
        Ok(store
            .memories(&MemoryFilter {
                kind: Some(MemoryKind::Decision),
                task_id: task.map(str::to_owned),
                limit: Some(MAX_TRACKED_ITEMS),
            })?
            .into_iter()
            .map(|m| m.text)
            .collect())
    };
    let running = store.current_candidates(session)?;
    let current = match taskdaemon_core::snapshot::pick_current(&running, session) {
        Some(task) => Some(CurrentItem {
            id: task.id.clone(),
            title: task.title().to_owned(),
            started_at: task.started_at,
            files_modified: task.files_modified.clone(),
            decisions: decisions(Some(&task.id))?,
        }),
        None => None,
    };
    let ready = store
        .ready(MAX_TRACKED_ITEMS)?
        .into_iter()
        .map(|t| ReadyItem {
            title: t.title().to_owned(),
            id: t.id,
            priority: t.priority,
        })
        .collect();
    Ok((current, ready, decisions(None)?))
}

/// The last line of whichever of stdout and stderr was written last.
fn newest_log_line(workspace: &Workspace, id: &str) -> Option<String> {
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let (out, err) = (workspace.stdout_log(id), workspace.stderr_log(id));
    let first = if modified(&err) > modified(&out) {
        &err
    } else {
        &out
    };
    last_line(first).or_else(|| last_line(if first == &out { &err } else { &out }))
}
