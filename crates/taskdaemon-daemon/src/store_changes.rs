//! The daemon's one watch on the store: every commit, by any process (on
//! PostgreSQL, on any host), wakes whatever in the daemon waits for the
//! store to change; the commits of a busy spell wake it once per [`PAUSE`].
//!
//! The gate evaluator and the seed files writer (threads of their own) and
//! the pipeline's scheduler (an async task) sleep until the store changes
//! rather than look every few seconds: an idle daemon that looks runs code
//! it has handed back (see `taskdaemon_supervisor::memory`) and brings it
//! back into memory. One thread here holds the store's event waiter (on
//! SQLite a connection and a file watch, on PostgreSQL a `LISTEN`
//! connection) and passes each wake-up on to all of them, so they share
//! one watch instead of holding one each.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use taskdaemon_store::{Store, StoreError, WorkWaiter};

/// How long the watch sleeps before it looks whether the daemon let it go:
/// only a daemon run in-process (tests) ever does, and a process that ends
/// ends the thread, so it may be long.
const CLOSE_CHECK: Duration = Duration::from_secs(600);
/// How long to wait before watching again when the watch failed (an
/// unreachable database); waiters are woken meanwhile, since a change may
/// have been missed.
const RETRY: Duration = Duration::from_secs(5);
/// The least time between two wake-ups passed on. A commit after a quiet
/// spell is passed on at once; the commits of a busy spell (a queue running
/// hundreds of tasks a second commits several times per task) are passed on
/// as one wake-up per pause. Without it, every commit woke the gate
/// evaluator, the seed files writer and the scheduler, and this watch
/// polled the store continuously: a tenth of the daemon's time per task.
/// What waits here (gates, projections, the scheduler) needs no
/// sub-second answer; the change feed and claim waiters watch on their own.
const PAUSE: Duration = Duration::from_millis(50);

#[derive(Default)]
struct State {
    /// Counts the wake-ups passed on so far.
    generation: u64,
    /// The daemon let the watch go: waiters stop waiting.
    closed: bool,
}

struct Inner {
    state: Mutex<State>,
    changed: Condvar,
    /// The same generation, for async waiters.
    generation: tokio::sync::watch::Sender<u64>,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        // A counter and a flag: a panicking holder cannot leave them torn.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tells every waiter the store may have changed: async waiters first,
    /// so that a thread that saw a change knows the async side has too.
    fn bump(&self) {
        let mut state = self.state();
        state.generation += 1;
        self.generation.send_replace(state.generation);
        drop(state);
        self.changed.notify_all();
    }
}

/// The shared watch; the daemon holds it, and dropping it ends the watch
/// and wakes every waiter for good.
pub(crate) struct StoreChanges {
    inner: Arc<Inner>,
}

impl StoreChanges {
    /// Starts watching `store` on a thread of its own. Waiters are woken
    /// once the watch is in place (a commit made before it was may not be
    /// seen otherwise), then on every change.
    pub(crate) fn start(store: Arc<dyn Store>) -> Self {
        let inner = Arc::new(Inner {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            generation: tokio::sync::watch::channel(0).0,
        });
        let watching = inner.clone();
        let spawned = std::thread::Builder::new()
            .name("store-changes".to_owned())
            .spawn(move || watch(&*store, &watching));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot watch the store for changes");
        }
        StoreChanges { inner }
    }

    /// A waiter for a thread: [`ChangeWaiter::wait`] returns `true` once
    /// the store changed since the waiter's last wake-up (or since it was
    /// made).
    pub(crate) fn waiter(&self) -> ChangeWaiter {
        ChangeWaiter {
            seen: self.inner.state().generation,
            inner: self.inner.clone(),
        }
    }

    /// A waiter for an async task: `changed()` completes once the store
    /// changed since the receiver last looked (`borrow_and_update`).
    pub(crate) fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.generation.subscribe()
    }
}

impl Drop for StoreChanges {
    fn drop(&mut self) {
        self.inner.state().closed = true;
        self.inner.changed.notify_all();
    }
}

/// Passes the store's wake-ups on until the daemon lets the watch go.
fn watch(store: &dyn Store, inner: &Inner) {
    let mut waiter: Option<Box<dyn WorkWaiter>> = None;
    while !inner.state().closed {
        let Some(events) = waiter.as_mut() else {
            match store.event_waiter() {
                Ok(opened) => {
                    waiter = Some(opened);
                    inner.bump();
                }
                Err(e) => failed(inner, &e),
            }
            continue;
        };
        match events.wait(CLOSE_CHECK) {
            Ok(true) => {
                inner.bump();
                // Commits meanwhile are seen by the next wait, as one.
                events.pause(PAUSE);
            }
            Ok(false) => {}
            Err(e) => {
                // The waiter reconnects on its next wait if it can.
                failed(inner, &e);
            }
        }
    }
}

fn failed(inner: &Inner, e: &StoreError) {
    tracing::warn!(error = %e, "the store watch failed; retrying");
    std::thread::sleep(RETRY);
    inner.bump();
}

/// One thread's view of [`StoreChanges`].
pub(crate) struct ChangeWaiter {
    inner: Arc<Inner>,
    /// The generation this waiter last woke for.
    seen: u64,
}

impl ChangeWaiter {
    /// `true` when the store changed since the last wake-up; `false` when
    /// `timeout` passed first, or at once once the daemon let the watch go
    /// (the caller then finds the daemon gone). A timeout too long for the
    /// clock (`Duration::MAX`) waits without one.
    pub(crate) fn wait(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.inner.state();
        loop {
            if state.generation != self.seen {
                self.seen = state.generation;
                return true;
            }
            if state.closed {
                return false;
            }
            state = match deadline {
                None => self
                    .inner
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    self.inner
                        .changed
                        .wait_timeout(state, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use taskdaemon_core::{EventKind, NewEvent};
    use taskdaemon_store::SqliteStore;

    fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(&dir.path().join("state.db")).expect("open the store");
        (dir, Arc::new(store))
    }

    /// Waits until the watch is in place (it has passed on its first wake-up).
    fn watching(changes: &StoreChanges) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while changes.inner.state().generation == 0 {
            assert!(Instant::now() < deadline, "the watch never started");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_commit_by_another_handle_wakes_every_waiter() {
        let (dir, store) = store();
        let changes = StoreChanges::start(store);
        watching(&changes);
        let (mut first, mut second) = (changes.waiter(), changes.waiter());
        let mut async_side = changes.subscribe();
        async_side.borrow_and_update();
        assert!(!first.wait(Duration::ZERO), "nothing changed yet");

        let other = SqliteStore::open(&dir.path().join("state.db")).expect("open again");
        other
            .append_event(None, &NewEvent::new(EventKind::Alert, "t", "wake up"))
            .expect("append");
        assert!(first.wait(Duration::from_secs(30)));
        assert!(second.wait(Duration::from_secs(30)));
        assert!(async_side.has_changed().expect("the watch is alive"));
    }

    #[test]
    fn a_commit_during_the_pause_after_a_wake_up_is_passed_on() {
        let (dir, store) = store();
        let changes = StoreChanges::start(store);
        watching(&changes);
        let mut waiter = changes.waiter();
        let other = SqliteStore::open(&dir.path().join("state.db")).expect("open again");
        let commit = |what: &str| {
            other
                .append_event(None, &NewEvent::new(EventKind::Alert, "t", what))
                .expect("append");
        };
        commit("first");
        assert!(waiter.wait(Duration::from_secs(30)));
        // Right after the first wake-up: inside the watch's pause.
        commit("second");
        assert!(
            waiter.wait(Duration::from_secs(30)),
            "the second commit was never passed on"
        );
    }

    #[test]
    fn letting_the_watch_go_wakes_a_waiter_with_no_timeout() {
        let (_dir, store) = store();
        let changes = StoreChanges::start(store);
        watching(&changes);
        let mut waiter = changes.waiter();
        let waiting = std::thread::spawn(move || waiter.wait(Duration::MAX));
        drop(changes);
        assert!(!waiting.join().expect("the waiter ends"));
    }
}
