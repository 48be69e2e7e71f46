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
//! rule for which events count, and a watcher that applies it.

use std::path::Path;

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecursiveMode, Watcher};

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
    _watcher: notify::RecommendedWatcher,
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
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let wakes = match &event {
            Ok(event) => {
                (counts(&event.kind) || event.need_rescan())
                    && (event.paths.is_empty() || event.paths.iter().any(|p| wanted(p)))
            }
            Err(_) => true,
        };
        if wakes {
            on_change();
        }
    })?;
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    Ok(DirWatch { _watcher: watcher })
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
}
