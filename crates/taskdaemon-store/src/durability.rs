//! Deferred durability: commits nobody has been told about yet need not
//! wait for the disk.
//!
//! Every commit is durable by default (SQLite `synchronous=FULL`: the
//! write-ahead log is synced before the commit returns). Some commits are
//! acknowledged to no one when they are made: a queue task's creation, its
//! start and its exit are acknowledged only by its result, and the store
//! commit behind that result is durable. Both backends append commits to
//! one sequential log (SQLite's WAL, PostgreSQL's WAL), so syncing that
//! log for a later commit makes every earlier one durable too. Inside
//! [`deferred`], commits skip their own sync (SQLite `synchronous=NORMAL`,
//! PostgreSQL `synchronous_commit=off`) and become durable with the next
//! durable commit; a crash of the process loses none of them, a power cut
//! may lose those made since the last durable commit.
//!
//! The scope is per thread, so a deferred caller never relaxes the commits
//! other threads make on a shared store.

use std::cell::Cell;

thread_local! {
    static DEFERRED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with this thread's commits deferred (see the module docs).
pub fn deferred<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            DEFERRED.with(|d| d.set(self.0));
        }
    }
    let _restore = Restore(DEFERRED.with(|d| d.replace(true)));
    f()
}

/// Whether this thread's commits are deferred now.
pub(crate) fn is_deferred() -> bool {
    DEFERRED.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scope_is_restored_after_it_and_is_per_thread() {
        assert!(!is_deferred());
        deferred(|| {
            assert!(is_deferred());
            deferred(|| assert!(is_deferred()));
            assert!(is_deferred(), "a nested scope keeps the outer one");
            let other = std::thread::spawn(is_deferred).join().unwrap();
            assert!(!other, "another thread's commits stay durable");
        });
        assert!(!is_deferred());
    }
}
