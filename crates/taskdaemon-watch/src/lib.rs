//! Directory watching that wakes only on changes to what is in a directory.
//!
//! The queue workers watch `pending/`, `logs --follow` watches a log's
//! folder, and SQLite waiters watch the database's write-ahead log; all of
//! them go through here.
//!
//! `notify`'s inotify backend always subscribes to `IN_OPEN` (and reports
//! `IN_CLOSE_NOWRITE`), and the kernel raises `IN_OPEN` on a watched
//! directory when anyone opens the directory itself. A watcher that wakes a
//! reader on every event therefore wakes itself: the reader's own
//! `read_dir` or `File::open` raises the next event, and an idle daemon
//! spins a whole core listing an empty folder. This crate holds the one
//! rule for which events count, and a watcher that applies it: one per
//! process (one inotify thread), whatever number of directories it watches.

use std::path::{Path, PathBuf};

use notify::EventKind;
use notify::event::{AccessKind, AccessMode, ModifyKind};

pub use notify::Error;

/// Whether an event can change what a directory holds or what a file in it
/// says: something created, written (and closed), renamed in or out, or
/// removed. Opens, reads and closes without writing never count, nor do
/// metadata-only changes (permissions, times), so reading the directory or
/// its files raises nothing that wakes the reader again.
///
/// `Any` and `Other` count: notify uses them for events it cannot classify,
/// such as a queue overflow that asks for a rescan, and missing a real
/// change costs more than one needless look.
pub fn is_content_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Any | EventKind::Other => true,
    }
}

/// Whether an event says a file's bytes were written: created, removed,
/// renamed or modified. Stricter than [`is_content_change`]: a close after
/// writing does not count, because the write itself was an event already,
/// and a file opened for writing but only read (SQLite opens a database's
/// write-ahead log read-write on every connection, readers too) raises a
/// close-after-write when nothing changed. For watchers of files that are
/// written in place, never written whole and then closed.
pub fn is_data_write(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(_) => false,
        other => is_content_change(other),
    }
}

/// A live watch; dropping it stops watching.
pub struct DirWatch {
    id: u64,
    dir: PathBuf,
}

impl Drop for DirWatch {
    fn drop(&mut self) {
        hub::unsubscribe(self.id, &self.dir);
    }
}

/// Watches directory `dir` (not its subdirectories) and calls `on_change`
/// for every event that [`is_content_change`] accepts, and for watcher
/// errors (an error may hide a change; the caller's next look finds out).
pub fn watch_dir(dir: &Path, on_change: impl Fn() + Send + 'static) -> Result<DirWatch, Error> {
    watch_files(dir, |_| true, on_change)
}

/// Like [`watch_dir`], but only changes to paths that `wanted` accepts wake
/// the caller (an event naming no path, such as an overflow, always does).
pub fn watch_files(
    dir: &Path,
    wanted: impl Fn(&Path) -> bool + Send + 'static,
    on_change: impl Fn() + Send + 'static,
) -> Result<DirWatch, Error> {
    watch_with(dir, is_content_change, wanted, on_change)
}

/// Like [`watch_files`], but only [`is_data_write`] events count: for
/// files written in place (a database and its log), whose readers' opens
/// and closes must not wake the caller.
pub fn watch_file_writes(
    dir: &Path,
    wanted: impl Fn(&Path) -> bool + Send + 'static,
    on_change: impl Fn() + Send + 'static,
) -> Result<DirWatch, Error> {
    watch_with(dir, is_data_write, wanted, on_change)
}

fn watch_with(
    dir: &Path,
    counts: fn(&EventKind) -> bool,
    wanted: impl Fn(&Path) -> bool + Send + 'static,
    on_change: impl Fn() + Send + 'static,
) -> Result<DirWatch, Error> {
    let dir = hub::key(dir);
    let id = hub::subscribe(
        &dir,
        hub::Subscriber {
            counts,
            wanted: Box::new(wanted),
            on_change: Box::new(on_change),
        },
    )?;
    Ok(DirWatch { id, dir })
}

/// One inotify watcher (one thread) for every watch of the process: a
/// daemon watches its database, its queues' folders and its configuration,
/// and a thread each would be a thread each. Events are handed to the
/// subscribers of the directory they happened in.
mod hub {
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};
    use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

    use notify::{EventKind, RecursiveMode, Watcher};

    use super::Error;

    pub(super) struct Subscriber {
        pub(super) counts: fn(&EventKind) -> bool,
        pub(super) wanted: Box<dyn Fn(&Path) -> bool + Send>,
        pub(super) on_change: Box<dyn Fn() + Send>,
    }

    #[derive(Default)]
    struct Subscribers {
        next_id: u64,
        /// By directory, then by id.
        by_dir: HashMap<PathBuf, HashMap<u64, Subscriber>>,
    }

    /// The watcher, made on the first watch. A separate lock from the
    /// subscribers': the watcher's thread takes theirs to deliver an event
    /// while `watch` waits for that thread's answer.
    static WATCHER: OnceLock<Mutex<Option<notify::RecommendedWatcher>>> = OnceLock::new();
    static SUBSCRIBERS: OnceLock<Mutex<Subscribers>> = OnceLock::new();

    fn guard<T>(
        m: &'static OnceLock<Mutex<T>>,
        init: impl FnOnce() -> T,
    ) -> MutexGuard<'static, T> {
        // Plain maps: a panicking holder cannot leave them torn.
        m.get_or_init(|| Mutex::new(init()))
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn subscribers() -> MutexGuard<'static, Subscribers> {
        guard(&SUBSCRIBERS, Subscribers::default)
    }

    /// The path events in `dir` are reported under: notify joins a
    /// relative path to the current directory; resolving links too means
    /// two spellings of one directory share its watch.
    pub(super) fn key(dir: &Path) -> PathBuf {
        std::fs::canonicalize(dir).unwrap_or_else(|_| {
            std::env::current_dir()
                .map(|cwd| cwd.join(dir))
                .unwrap_or_else(|_| dir.to_owned())
        })
    }

    fn deliver(event: notify::Result<notify::Event>) {
        let subscribers = subscribers();
        for (dir, subs) in &subscribers.by_dir {
            // An event in `dir` names a path in it (or `dir` itself).
            let ours = |p: &PathBuf| p == dir || p.parent() == Some(dir.as_path());
            for sub in subs.values() {
                let wakes = match &event {
                    Ok(event) => {
                        ((sub.counts)(&event.kind) || event.need_rescan())
                            && (event.paths.is_empty()
                                || event.paths.iter().any(|p| ours(p) && (sub.wanted)(p)))
                    }
                    Err(_) => true,
                };
                if wakes {
                    (sub.on_change)();
                }
            }
        }
    }

    /// Adds `sub` for events in `dir`, watching `dir` if nobody did yet.
    /// Subscribing and unsubscribing take turns (the watcher's lock, then
    /// the subscribers'), so a directory is watched exactly while it has
    /// subscribers.
    pub(super) fn subscribe(dir: &Path, sub: Subscriber) -> Result<u64, Error> {
        let mut watcher = guard(&WATCHER, || None);
        let (id, first) = {
            let mut subscribers = subscribers();
            subscribers.next_id += 1;
            let id = subscribers.next_id;
            let subs = subscribers.by_dir.entry(dir.to_owned()).or_default();
            subs.insert(id, sub);
            (id, subs.len() == 1)
        };
        if !first {
            return Ok(id);
        }
        // The subscribers' lock is free here: the watcher's thread may
        // need it to deliver an event while `watch` waits for that thread.
        let watched = match watcher.as_mut() {
            Some(w) => w.watch(dir, RecursiveMode::NonRecursive),
            None => notify::recommended_watcher(deliver).and_then(|mut w| {
                w.watch(dir, RecursiveMode::NonRecursive)?;
                *watcher = Some(w);
                Ok(())
            }),
        };
        match watched {
            Ok(()) => Ok(id),
            Err(e) => {
                remove(id, dir);
                Err(e)
            }
        }
    }

    /// Removes subscriber `id`; whether it was the last of `dir`.
    fn remove(id: u64, dir: &Path) -> bool {
        let mut subscribers = subscribers();
        let Some(subs) = subscribers.by_dir.get_mut(dir) else {
            return false;
        };
        subs.remove(&id);
        let last = subs.is_empty();
        if last {
            subscribers.by_dir.remove(dir);
        }
        last
    }

    /// Removes subscriber `id`, and the watch of `dir` with its last one.
    pub(super) fn unsubscribe(id: u64, dir: &Path) {
        let mut watcher = guard(&WATCHER, || None);
        if remove(id, dir)
            && let Some(watcher) = watcher.as_mut()
        {
            // Gone already (the directory was removed): nothing to undo.
            let _ = watcher.unwatch(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use notify::event::{CreateKind, DataChange, MetadataKind, RemoveKind, RenameMode};

    use super::*;

    #[test]
    fn reads_and_metadata_do_not_count_as_changes() {
        for kind in [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Read),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)),
        ] {
            assert!(!is_content_change(&kind), "{kind:?} must not wake");
        }
        for kind in [
            EventKind::Create(CreateKind::File),
            EventKind::Remove(RemoveKind::File),
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Any,
        ] {
            assert!(is_content_change(&kind), "{kind:?} must wake");
        }
    }

    #[test]
    fn a_close_after_writing_is_no_data_write() {
        assert!(!is_data_write(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(is_data_write(&EventKind::Modify(ModifyKind::Data(
            DataChange::Any
        ))));
        assert!(is_data_write(&EventKind::Create(CreateKind::File)));
        assert!(is_data_write(&EventKind::Any));
    }

    /// Waits until `count` stops changing for `quiet`, at most `limit`.
    fn settle(count: &AtomicUsize, quiet: Duration, limit: Duration) -> usize {
        let start = Instant::now();
        let mut last = count.load(Ordering::SeqCst);
        let mut since = Instant::now();
        while start.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(20));
            let now = count.load(Ordering::SeqCst);
            if now != last {
                (last, since) = (now, Instant::now());
            } else if since.elapsed() >= quiet {
                break;
            }
        }
        last
    }

    #[test]
    fn reading_the_watched_directory_does_not_wake_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("a.md"), "x").expect("write");
        let wakes = Arc::new(AtomicUsize::new(0));
        let counter = wakes.clone();
        let _watcher = watch_dir(dir.path(), move || {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .expect("watch");

        // What a queue worker does on every wake-up: list, stat, read.
        for _ in 0..20 {
            let names: Vec<_> = std::fs::read_dir(dir.path())
                .expect("list")
                .flatten()
                .collect();
            assert_eq!(names.len(), 1);
            std::fs::read_to_string(dir.path().join("a.md")).expect("read");
        }
        let quiet = Duration::from_millis(300);
        assert_eq!(settle(&wakes, quiet, Duration::from_secs(3)), 0);

        // A real change wakes it.
        std::fs::write(dir.path().join("b.md"), "y").expect("write");
        let after_write = settle(&wakes, quiet, Duration::from_secs(5));
        assert!(after_write >= 1, "a new file must wake the watcher");
        std::fs::remove_file(dir.path().join("a.md")).expect("remove");
        assert!(settle(&wakes, quiet, Duration::from_secs(5)) > after_write);
    }

    fn counter() -> (Arc<AtomicUsize>, impl Fn() + Send + 'static) {
        let count = Arc::new(AtomicUsize::new(0));
        let bump = count.clone();
        (count, move || {
            bump.fetch_add(1, Ordering::SeqCst);
        })
    }

    #[test]
    fn watches_of_one_process_wake_only_for_their_own_directory_and_end_on_drop() {
        let (a, b) = (
            tempfile::tempdir().expect("dir"),
            tempfile::tempdir().expect("dir"),
        );
        let (quiet, limit) = (Duration::from_millis(300), Duration::from_secs(5));
        let (in_a, wake_a) = counter();
        let (in_b, wake_b) = counter();
        let (also_b, wake_also_b) = counter();
        let watch_a = watch_dir(a.path(), wake_a).expect("watch a");
        let watch_b = watch_dir(b.path(), wake_b).expect("watch b");
        // Another spelling of b: the same directory, the same watch.
        let spelled = b.path().join(".");
        let watch_also_b = watch_dir(&spelled, wake_also_b).expect("watch b again");

        std::fs::write(a.path().join("x.md"), "x").expect("write");
        assert!(
            settle(&in_a, quiet, limit) >= 1,
            "a change in a wakes a's watch"
        );
        assert_eq!(settle(&in_b, quiet, limit), 0, "nor b's");
        assert_eq!(settle(&also_b, quiet, limit), 0);

        // Dropping one of b's watches leaves the other watching.
        drop(watch_b);
        std::fs::write(b.path().join("y.md"), "y").expect("write");
        assert!(settle(&also_b, quiet, limit) >= 1, "b is still watched");
        assert_eq!(
            in_b.load(Ordering::SeqCst),
            0,
            "a dropped watch stays quiet"
        );

        // Dropping the last watch of a stops its wake-ups.
        drop(watch_a);
        let before = settle(&in_a, quiet, limit);
        std::fs::write(a.path().join("z.md"), "z").expect("write");
        assert_eq!(settle(&in_a, quiet, limit), before);
        drop(watch_also_b);
    }
}
