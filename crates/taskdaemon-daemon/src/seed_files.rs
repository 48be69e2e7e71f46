//! The daemon keeps seed 003's task files (see [`crate::snapshot`]) current
//! for changes nobody else writes them after: queue tasks and processes that
//! end, tasks reopened by a dependency, another host's writes.
//!
//! A thread of its own sleeps on the daemon's store watch (any process's
//! commit wakes it, and so does the daemon's end). After a change it waits
//! until the store has been quiet for [`QUIET`] (at most [`MAX_DELAY`] in a
//! busy stretch), so a burst of changes costs one rewrite. It holds the
//! daemon weakly and ends with it.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::state::Daemon;
use crate::store_changes::ChangeWaiter;

/// How long the store must be quiet before the files are rewritten.
const QUIET: Duration = Duration::from_millis(300);
/// The longest a rewrite waits for quiet while changes keep coming.
const MAX_DELAY: Duration = Duration::from_secs(2);

pub(crate) fn start(daemon: &Arc<Daemon>) {
    let weak = Arc::downgrade(daemon);
    let spawned = std::thread::Builder::new()
        .name("seed-files".to_owned())
        .spawn(move || run(weak));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the seed files writer");
    }
}

fn run(daemon: Weak<Daemon>) {
    let Some(mut waiter) = daemon.upgrade().map(|d| d.changes.waiter()) else {
        return;
    };
    let mut written = None;
    loop {
        let Some(d) = daemon.upgrade() else { return };
        let seen = d.store.last_event_seq().ok();
        if seen.is_some() && seen != written {
            written = rewrite(&d).or(written);
        }
        drop(d);
        // Woken by a change (or, with no change, by the daemon's end).
        if waiter.wait(Duration::MAX) {
            settle(&mut waiter);
        }
    }
}

/// Waits until nothing was committed for [`QUIET`], or [`MAX_DELAY`] passed.
fn settle(waiter: &mut ChangeWaiter) {
    let start = Instant::now();
    while start.elapsed() < MAX_DELAY && waiter.wait(QUIET) {}
}

/// Rewrites the files; returns the store version they reflect.
fn rewrite(daemon: &Daemon) -> Option<i64> {
    match crate::snapshot::write_all(&daemon.workspace, &daemon.config, &*daemon.store) {
        Ok(written) => {
            if written.archived > 0 {
                tracing::info!(
                    archived = written.archived,
                    "archived ended tasks in the seed history"
                );
            }
            Some(written.version)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot write the seed task files");
            None
        }
    }
}
