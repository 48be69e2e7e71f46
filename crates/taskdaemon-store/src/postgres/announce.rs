//! Announcing the events of claims and completions once they committed,
//! from a connection of its own.
//!
//! A transaction that sends `NOTIFY` takes PostgreSQL's notify-queue lock
//! when it commits and keeps it until its commit record is on disk (so that
//! notifications are queued in commit order). Every such transaction in the
//! cluster therefore commits one disk flush after another: concurrent
//! commits can no longer share a flush. Migration 3's trigger made every
//! transaction that appends an event one of them, claims and completions
//! included, so concurrent workers took turns at the disk (16 workers
//! claimed no faster than 4).
//!
//! Claims and completions, the hot writes, mark their transaction instead
//! ([`MARK`], which the events trigger of migration 13 honours) and the
//! store announces their events here after the commit: a thread sends
//! `pg_notify` on a connection of its own, in a transaction that writes
//! nothing else, so it takes the lock without waiting for the disk.
//! Announcements that pile up while one is sent go out as one: listeners
//! read from their last sequence number, they need waking, not counting.
//! Every other write still notifies inside its transaction.
//!
//! Should the process die between a commit and its announcement, listeners
//! find the events at their next wake-up or time-out (the change feed's
//! safety tick), as after a dropped listener connection.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use postgres::NoTls;

use super::claim::EVENTS_CHANNEL;

/// A select-list item that marks the current transaction: its events are
/// announced after commit by the store, not by the events trigger. It is
/// part of the first statement of a claim or a completion (a statement of
/// its own would cost a round trip); it is set (transaction-locally) once
/// that statement returns a row, before anything is written.
pub(super) const MARK: &str =
    "set_config('taskdaemon.events_announced', 'after-commit', true) AS events_announced";

/// How long the announcer waits before trying again when its connection failed.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

#[derive(Default)]
struct State {
    /// Events committed since the last announcement went out.
    pending: bool,
    /// The store is closing: announce what is pending, then end.
    closing: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // The state is two flags: a panicking holder cannot leave it torn.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Sends `NOTIFY td_events_<schema>` after commits, coalesced, on a
/// connection it opens when first needed.
pub(super) struct Announcer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Announcer {
    /// Starts the announcing thread; it connects with `config` (whose
    /// search path names the store's schema) at the first announcement.
    pub(super) fn start(config: postgres::Config) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let thread = std::thread::Builder::new()
            .name("td-pg-announce".to_owned())
            .spawn({
                let shared = shared.clone();
                move || run(&shared, &config)
            })?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Events were committed: wake the listeners (soon, without waiting).
    pub(super) fn committed(&self) {
        self.shared.state().pending = true;
        self.shared.wake.notify_one();
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        self.shared.state().closing = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            // It only ends after sending what is pending (one try).
            let _ = thread.join();
        }
    }
}

fn run(shared: &Shared, config: &postgres::Config) {
    let mut client: Option<postgres::Client> = None;
    loop {
        let closing = {
            let mut state = shared.state();
            while !state.pending && !state.closing {
                state = shared
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if !state.pending {
                return;
            }
            state.pending = false;
            state.closing
        };
        if let Err(e) = announce(&mut client, config) {
            client = None;
            if closing {
                tracing::warn!(error = %e, "could not announce the last committed events");
                return;
            }
            tracing::warn!(error = %e, "could not announce committed events; retrying");
            shared.state().pending = true;
            std::thread::sleep(RETRY_PAUSE);
        }
    }
}

/// One `NOTIFY` on the events channel, connecting first if need be.
fn announce(
    client: &mut Option<postgres::Client>,
    config: &postgres::Config,
) -> Result<(), postgres::Error> {
    let connected = match client.take() {
        Some(connected) => connected,
        None => config.connect(NoTls)?,
    };
    let connected = client.insert(connected);
    connected.batch_execute(&format!(
        "SELECT pg_notify('{EVENTS_CHANNEL}' || current_schema(), '')"
    ))
}
