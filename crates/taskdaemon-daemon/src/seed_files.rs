//! The daemon keeps seed 003's task files (see [`crate::snapshot`]) current
//! for changes nobody else writes them after: queue tasks and processes that
//! end, tasks reopened by a dependency, another host's writes.
//!
//! A thread of its own sleeps on the store's event waiter (any process's
//! commit wakes it). After a change it waits until the store has been quiet
//! for [`QUIET`] (at most [`MAX_DELAY`] in a busy stretch), so a burst of
//! changes costs one rewrite. It holds the daemon weakly and ends with it.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::state::Daemon;

/// How long the store must be quiet before the files are rewritten.
const QUIET: Duration = Duration::from_millis(300);
/// The longest a rewrite waits for quiet while changes keep coming.
const MAX_DELAY: Duration = Duration::from_secs(2);
/// How often an idle writer checks that the daemon still runs.
const IDLE_CHECK: Duration = Duration::from_secs(5);

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
    let mut waiter = match daemon.upgrade().map(|d| d.store.event_waiter()) {
        Some(Ok(waiter)) => waiter,
        Some(Err(e)) => {
            tracing::error!(error = %e, "the seed files writer cannot watch the store");
            return;
        }
        None => return,
    };
    let mut written = None;
    // Whether the store may have changed since the last look. The periodic
    // wake-up only checks that the daemon still runs: reading the store
    // then would bring back, every few seconds, the memory an idle daemon
    // hands back.
    let mut changed = true;
    loop {
        let Some(d) = daemon.upgrade() else { return };
        if changed {
            let seen = d.store.last_event_seq().ok();
            if seen.is_some() && seen != written {
                written = rewrite(&d).or(written);
            }
        }
        drop(d);
        changed = match waiter.wait(IDLE_CHECK) {
            Ok(true) => {
                settle(&mut *waiter);
                true
            }
            Ok(false) => false,
            Err(e) => {
                tracing::warn!(error = %e, "the seed files writer lost its store watch");
                std::thread::sleep(IDLE_CHECK);
                true
            }
        };
    }
}

/// Waits until nothing was committed for [`QUIET`], or [`MAX_DELAY`] passed.
fn settle(waiter: &mut dyn taskdaemon_store::WorkWaiter) {
    let start = Instant::now();
    while start.elapsed() < MAX_DELAY {
        match waiter.wait(QUIET) {
            Ok(true) => continue,
            _ => return,
        }
    }
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
