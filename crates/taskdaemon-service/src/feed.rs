//! The change feed: events as they commit, from any process (on
//! PostgreSQL, from any host), for live views (dashboard, TUI, MCP).
//!
//! ```no_run
//! # fn main() -> taskdaemon_service::Result<()> {
//! # let service: taskdaemon_service::Service = todo!();
//! let mut events = service.subscribe(0)?; // everything after seq 0, then live
//! while let Some(event) = events.next_timeout(Some(std::time::Duration::from_secs(1)))? {
//!     println!("{} {}", event.seq, event.kind);
//! }
//! # Ok(()) }
//! ```
//!
//! One [`Feed`] runs one background thread per service that sleeps until
//! something may have committed, reads the new events from the store (in
//! pages, after the last sequence number it saw) and hands them to every
//! [`Subscription`]:
//!
//! - **SQLite** has no notifications: the store's waiter
//!   ([`Store::event_waiter`]) sleeps on an inotify watch of the database's
//!   WAL, which any process's write wakes, and its `PRAGMA data_version`
//!   says whether a commit became visible. An idle feed sleeps; a check
//!   every [`SAFETY_TICK`] is the only periodic work.
//! - **PostgreSQL** announces every committed event on `td_events_<schema>`
//!   (a trigger); the thread `LISTEN`s there, so events of every host and
//!   workspace on the database arrive.
//!
//! Buffers are bounded ([`FeedOptions::buffer`]): the feed never waits for a
//! subscriber, and writers never wait for the feed. A subscriber that fell
//! further behind loses its buffer and, on its next read, re-reads from the
//! store after the last sequence number it returned, so it sees every event
//! once, in order, without a gap. The API is blocking (a subscription is an
//! iterator); an async consumer runs it on a blocking thread.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use taskdaemon_core::Event;
use taskdaemon_store::{Location, Store, StoreError, WorkWaiter};

use crate::{Result, Service, ServiceError};

/// The longest an idle feed sleeps before it checks the store anyway.
pub const SAFETY_TICK: Duration = Duration::from_millis(250);
/// PostgreSQL delivers every notification; read anyway this often, in case
/// the listening connection dropped unnoticed.
const PG_SAFETY_READ: u32 = 4;

/// How a feed buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedOptions {
    /// Events held per subscriber before it is cut loose to re-read the store.
    pub buffer: usize,
    /// Events read from the store at a time.
    pub page: usize,
}

impl Default for FeedOptions {
    fn default() -> Self {
        Self {
            buffer: 1024,
            page: 500,
        }
    }
}

/// Events after sequence number `prev`: the feed read `event` right after `prev`.
type Item = (i64, Event);

/// One subscriber's buffer.
#[derive(Default)]
struct Slot {
    queue: Mutex<SlotQueue>,
    ready: Condvar,
}

#[derive(Default)]
struct SlotQueue {
    items: VecDeque<Item>,
    /// The buffer overflowed and was dropped (or never held what the
    /// subscriber wants first): re-read the store.
    lagged: bool,
    /// How often that happened.
    overflows: u64,
}

struct Hub {
    store: Arc<dyn Store>,
    options: FeedOptions,
    slots: Mutex<Vec<Weak<Slot>>>,
    /// The last sequence number the feed read.
    cursor: AtomicI64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Hub {
    /// Reads every new event and hands it to the subscribers.
    fn pump(&self) -> std::result::Result<(), StoreError> {
        loop {
            let cursor = self.cursor.load(Ordering::Acquire);
            let page = self.store.events_after(cursor, &[], self.options.page)?;
            let Some(last) = page.last().map(|e| e.seq) else {
                return Ok(());
            };
            let full = page.len() == self.options.page;
            let mut prev = cursor;
            let items: Vec<Item> = page
                .into_iter()
                .map(|e| {
                    let item = (prev, e);
                    prev = item.1.seq;
                    item
                })
                .collect();
            self.deliver(&items, last);
            if !full {
                return Ok(());
            }
        }
    }

    /// Hands `items` to every subscriber and moves the cursor to `last`,
    /// both under the subscribers' lock, so a new subscriber sees either
    /// the items or the moved cursor.
    fn deliver(&self, items: &[Item], last: i64) {
        let mut slots = lock(&self.slots);
        self.cursor.store(last, Ordering::Release);
        slots.retain(|slot| {
            let Some(slot) = slot.upgrade() else {
                return false;
            };
            let mut queue = lock(&slot.queue);
            if !queue.lagged {
                if queue.items.len() + items.len() > self.options.buffer {
                    // Never wait for a slow reader: it re-reads the store.
                    queue.items.clear();
                    queue.lagged = true;
                    queue.overflows += 1;
                } else {
                    queue.items.extend(items.iter().cloned());
                }
            }
            slot.ready.notify_all();
            true
        });
    }
}

/// A running change feed; subscribe to it as often as needed.
pub struct Feed {
    hub: Arc<Hub>,
}

impl Feed {
    /// Starts a feed on `store` at `location` (which says how to wake up).
    pub fn start(store: Arc<dyn Store>, location: &Location, options: FeedOptions) -> Result<Self> {
        let waiter: Box<dyn WorkWaiter> = store.event_waiter()?;
        let periodic_read = matches!(location, Location::Postgres(_));
        let hub = Arc::new(Hub {
            cursor: AtomicI64::new(store.last_event_seq()?),
            store,
            options: FeedOptions {
                buffer: options.buffer.max(1),
                page: options.page.max(1),
            },
            slots: Mutex::new(Vec::new()),
        });
        let weak = Arc::downgrade(&hub);
        std::thread::Builder::new()
            .name("td-feed".into())
            .spawn(move || run(&weak, waiter, periodic_read))
            .map_err(|e| ServiceError::Failed(format!("cannot start the feed thread: {e}")))?;
        Ok(Self { hub })
    }

    /// Every event after `from_seq`, in order, then new ones as they commit.
    /// `0` is everything; [`Store::last_event_seq`] is only what comes next.
    pub fn subscribe(&self, from_seq: i64) -> Subscription {
        let slot = Arc::new(Slot::default());
        let mut slots = lock(&self.hub.slots);
        // Events up to the feed's cursor are not buffered: read them from the store.
        lock(&slot.queue).lagged = from_seq < self.hub.cursor.load(Ordering::Acquire);
        slots.push(Arc::downgrade(&slot));
        drop(slots);
        Subscription {
            hub: self.hub.clone(),
            slot,
            last_seq: from_seq,
            local: VecDeque::new(),
            accept_gap: false,
        }
    }

    /// The last sequence number the feed has read from the store.
    pub fn last_seq(&self) -> i64 {
        self.hub.cursor.load(Ordering::Acquire)
    }
}

/// The feed's thread: sleep until woken (or the safety tick), then pump.
/// It holds the hub only while pumping, and ends once the feed and every
/// subscription are gone.
fn run(hub: &Weak<Hub>, mut waiter: Box<dyn WorkWaiter>, periodic_read: bool) {
    let mut quiet_ticks = 0u32;
    loop {
        let woken = waiter.wait(SAFETY_TICK);
        let Some(hub) = hub.upgrade() else {
            return;
        };
        let read = match woken {
            Ok(true) => true,
            Ok(false) => {
                quiet_ticks += 1;
                periodic_read && quiet_ticks.is_multiple_of(PG_SAFETY_READ)
            }
            Err(e) => {
                tracing::warn!(error = %e, "change feed: waiting for events failed");
                true
            }
        };
        if read {
            quiet_ticks = 0;
            if let Err(e) = hub.pump() {
                tracing::warn!(error = %e, "change feed: reading events failed; retrying");
            }
        }
    }
}

/// One reader of the feed: every event after the sequence number it started
/// from, each once and in order. Also an (endless) iterator.
pub struct Subscription {
    hub: Arc<Hub>,
    slot: Arc<Slot>,
    last_seq: i64,
    /// Events read from the store, returned before the buffer's.
    local: VecDeque<Event>,
    /// The store had nothing to fill a gap with (events archived meanwhile).
    accept_gap: bool,
}

impl Subscription {
    /// The next event, waiting as long as it takes.
    pub fn next_event(&mut self) -> Result<Event> {
        loop {
            if let Some(event) = self.next_timeout(Some(Duration::from_secs(3600)))? {
                return Ok(event);
            }
        }
    }

    /// The next event, or `None` when `timeout` passes first (`None`
    /// timeout: only what is already there, without waiting).
    pub fn next_timeout(&mut self, timeout: Option<Duration>) -> Result<Option<Event>> {
        let deadline = Instant::now() + timeout.unwrap_or(Duration::ZERO);
        loop {
            if let Some(event) = self.local.pop_front() {
                self.last_seq = event.seq;
                return Ok(Some(event));
            }
            let slot = self.slot.clone();
            let mut queue = lock(&slot.queue);
            if queue.lagged {
                queue.lagged = false;
                queue.items.clear();
                drop(queue);
                self.read_store()?;
                continue;
            }
            let mut gap = false;
            while let Some((prev, event)) = queue.items.front() {
                if event.seq <= self.last_seq {
                    queue.items.pop_front();
                } else if *prev > self.last_seq && !self.accept_gap {
                    gap = true;
                    break;
                } else if let Some((_, event)) = queue.items.pop_front() {
                    self.accept_gap = false;
                    self.last_seq = event.seq;
                    return Ok(Some(event));
                }
            }
            if gap {
                // Events between ours and the buffer's are only in the store.
                drop(queue);
                self.read_store()?;
                self.accept_gap = self.local.is_empty();
                continue;
            }
            if self.last_seq < self.hub.cursor.load(Ordering::Acquire) {
                // The feed read events this buffer never held (they came
                // before the subscription or while it was cut loose).
                drop(queue);
                self.read_store()?;
                if !self.local.is_empty() {
                    continue;
                }
                queue = lock(&slot.queue);
                if queue.lagged || !queue.items.is_empty() {
                    continue;
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let _unused = slot
                .ready
                .wait_timeout(queue, deadline - now)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    fn read_store(&mut self) -> Result<()> {
        let page = self
            .hub
            .store
            .events_after(self.last_seq, &[], self.hub.options.page)?;
        self.local.extend(page);
        Ok(())
    }

    /// The sequence number of the last event returned: resume from it.
    pub fn last_seq(&self) -> i64 {
        self.last_seq
    }

    /// How often this subscriber fell so far behind that its buffer was
    /// dropped (it then re-read the store).
    pub fn overflows(&self) -> u64 {
        lock(&self.slot.queue).overflows
    }
}

impl Iterator for Subscription {
    type Item = Result<Event>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.next_event())
    }
}

impl Service {
    /// Starts a change feed on this service's store.
    pub fn feed(&self, options: FeedOptions) -> Result<Feed> {
        Feed::start(self.store.clone(), &self.location, options)
    }

    /// Every event after `from_seq`, then new ones as they commit, on a feed
    /// of its own (share one [`Feed`] between many subscribers instead).
    pub fn subscribe(&self, from_seq: i64) -> Result<Subscription> {
        Ok(self.feed(FeedOptions::default())?.subscribe(from_seq))
    }

    /// The sequence number of the newest committed event (0 for none): a
    /// snapshot taken after reading it misses nothing a feed from it sends.
    pub fn last_event_seq(&self) -> Result<i64> {
        Ok(self.store.last_event_seq()?)
    }

    /// At most `limit` events after `after_seq`, oldest first: a reader
    /// that fell behind catches up from the store in pages.
    pub fn events_after(&self, after_seq: i64, limit: usize) -> Result<Vec<Event>> {
        Ok(self.store.events_after(after_seq, &[], limit)?)
    }
}
