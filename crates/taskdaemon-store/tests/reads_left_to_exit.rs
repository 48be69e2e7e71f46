//! `leave_reads_to_process_exit`, which short CLI commands turn on: a store
//! that only read leaves its connections open when dropped (once), and a
//! store that wrote still closes everything, so the last connection
//! checkpoints and deletes the WAL.
//!
//! Its own test binary: the switch is process-wide, and this file's single
//! test is the only code in the process that opens stores.

use taskdaemon_store::conformance::spec;
use taskdaemon_store::testing::descriptors_on;
use taskdaemon_store::{SqliteStore, Store, leave_reads_to_process_exit};

#[test]
fn only_a_store_that_never_wrote_leaves_its_reads_open_and_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let wal = dir.path().join("state.db-wal");
    let store = SqliteStore::open(&db).unwrap();
    let task = store
        .create_process(&spec(Some("claude"), &["true"]), "t")
        .unwrap();
    drop(store);
    assert!(!wal.exists(), "a store closed normally deletes the WAL");

    leave_reads_to_process_exit();

    // A store that wrote closes everything, writer last: the WAL goes.
    let store = SqliteStore::open(&db).unwrap();
    assert_eq!(store.task(&task.id).unwrap(), task);
    store.set_meta("written", "yes").unwrap();
    assert!(wal.exists());
    drop(store);
    assert!(!wal.exists(), "the writer checkpointed and deleted the WAL");
    assert_eq!(descriptors_on(&db), 0);

    // The first store that only read keeps its connection open...
    let store = SqliteStore::open(&db).unwrap();
    assert_eq!(store.task(&task.id).unwrap(), task);
    assert_eq!(descriptors_on(&db), 1);
    drop(store);
    assert_eq!(descriptors_on(&db), 1, "its read connection was left open");

    // ...and later ones close theirs: the switch is used up. (SQLite keeps
    // a closed connection's descriptor while another connection of the
    // process has the file open, and reuses it for the next open, so
    // closing shows as no growth.)
    for _ in 0..5 {
        let store = SqliteStore::open(&db).unwrap();
        assert_eq!(store.meta("written").unwrap().as_deref(), Some("yes"));
        drop(store);
    }
    assert!(
        descriptors_on(&db) <= 2,
        "{} descriptors: read-only stores after the first were left open too",
        descriptors_on(&db)
    );

    // The connection left open holds no lock a writer would wait for.
    let store = SqliteStore::open(&db).unwrap();
    store.set_meta("after", "ok").unwrap();
    assert_eq!(store.meta("after").unwrap().as_deref(), Some("ok"));
}
