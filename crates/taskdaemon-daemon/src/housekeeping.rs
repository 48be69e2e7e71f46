//! Housekeeping the daemon does on its own: archiving old history.
//!
//! Once at start and then hourly, events older than `[history] archive_after`
//! move into compressed archive chunks (see the store's `archive_events`), so
//! the live event table stays small while `history` and `search` still see
//! everything.

use std::sync::Arc;
use std::time::Duration;

use taskdaemon_core::time::now_millis;

use crate::blocking::blocking;
use crate::state::Daemon;

/// How often the archive runs after the first time.
const ARCHIVE_EVERY: Duration = Duration::from_secs(3600);

pub(crate) async fn run(daemon: Arc<Daemon>) {
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
