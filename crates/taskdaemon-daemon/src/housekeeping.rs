//! Housekeeping the daemon does on its own: archiving old history, and
//! keeping all process logs under `[logs] total_max_bytes`.
//!
//! Once at start and then hourly, events older than `[history] archive_after`
//! move into compressed archive chunks (see the store's `archive_events`), so
//! the live event table stays small while `history` and `search` still see
//! everything.
//!
//! At start and then every few minutes (unless nothing was followed since
//! the last look), when the process logs together exceed the cap, the logs
//! of the tasks that ended longest ago are deleted until they fit (each
//! stream is bounded by the shim already; this bounds how many there are).
//! Running tasks keep theirs, and so does the rest of a task's folder (its
//! exit file).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use taskdaemon_core::time::now_millis;

use crate::blocking::blocking;
use crate::state::Daemon;

/// How often the archive runs after the first time.
const ARCHIVE_EVERY: Duration = Duration::from_secs(3600);
/// How often the total size of the process logs is checked.
const PRUNE_LOGS_EVERY: Duration = Duration::from_secs(300);

pub(crate) async fn run(daemon: Arc<Daemon>) {
    tokio::join!(
        archive_history(daemon.clone()),
        prune_logs_periodically(daemon)
    );
}

async fn prune_logs_periodically(daemon: Arc<Daemon>) {
    if daemon.config.logs.total_max_bytes == 0 {
        return;
    }
    let mut interval = tokio::time::interval(PRUNE_LOGS_EVERY);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // Followers begun as of the last pass, when it ran with none followed.
    let mut quiet_since = None;
    loop {
        interval.tick().await;
        // Only processes write logs, and every one is followed: with none
        // followed at the last pass nor since, the logs are as that pass
        // left them, and an idle daemon need not look (and page its code
        // back in).
        let begun = daemon.follows_begun.load(Ordering::SeqCst);
        if quiet_since == Some(begun) {
            continue;
        }
        quiet_since = daemon.follows_nothing().then_some(begun);
        let d = daemon.clone();
        match blocking(move || prune_logs(&d)).await {
            Ok(0) => {}
            Ok(freed) => tracing::info!(bytes = freed, "pruned the logs of old ended tasks"),
            Err(e) => tracing::error!(error = %e, "pruning logs panicked"),
        }
    }
}

/// Deletes the logs of the oldest ended tasks until all process logs fit
/// under the cap. Returns the bytes freed.
fn prune_logs(daemon: &Daemon) -> u64 {
    let cap = daemon.config.logs.total_max_bytes;
    let Ok(entries) = std::fs::read_dir(daemon.workspace.procs_dir()) else {
        return 0;
    };
    let mut total = 0;
    // (when it ended, its log files and their size) of each ended task.
    let mut ended = Vec::new();
    for entry in entries.flatten() {
        let (files, size) = log_files(&entry.path());
        total += size;
        let Some(id) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        match daemon.store.task(&id) {
            Ok(task) if task.status.is_terminal() => {
                ended.push((task.finished_at.unwrap_or(0), files, size));
            }
            _ => {}
        }
    }
    if total <= cap {
        return 0;
    }
    ended.sort_by_key(|(finished, _, _)| *finished);
    let mut freed = 0;
    for (_, files, size) in ended {
        if total - freed <= cap {
            break;
        }
        for file in files {
            if let Err(e) = std::fs::remove_file(&file) {
                tracing::warn!(file = %file.display(), error = %e, "cannot delete an old log");
            }
        }
        freed += size;
    }
    freed
}

/// A task folder's log files (`*.log` and their rotated copies) and their size.
fn log_files(dir: &Path) -> (Vec<std::path::PathBuf>, u64) {
    let mut files = Vec::new();
    let mut size = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let is_log = name.to_str().is_some_and(|n| {
            n.ends_with(".log")
                || n.rsplit_once(".log.")
                    .is_some_and(|(_, k)| k.parse::<u32>().is_ok())
        });
        if let (true, Ok(meta)) = (is_log, entry.metadata()) {
            size += meta.len();
            files.push(entry.path());
        }
    }
    (files, size)
}

async fn archive_history(daemon: Arc<Daemon>) {
    let history = daemon.config.history.clone();
    if !history.archive {
        return;
    }
    let mut interval = tokio::time::interval(ARCHIVE_EVERY);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        interval.tick().await;
        let before = now_millis() - history.archive_after.as_millis() as i64;
        let d = daemon.clone();
        match blocking(move || d.store.archive_events(before)).await {
            Ok(Ok(report)) if report.events > 0 => tracing::info!(
                events = report.events,
                chunks = report.chunks,
                "archived old history"
            ),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "archiving history failed"),
            Err(e) => tracing::error!(error = %e, "archiving history panicked"),
        }
    }
}
