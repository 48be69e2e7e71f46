//! The SQLite store against the conformance checks, plus what is SQLite's own:
//! durability across reopen, concurrent writers, corrupt and future files.

use std::fs;
use std::sync::Arc;
use std::thread;

use taskdaemon_store::conformance::{CHECKS, spec};
use taskdaemon_store::{SqliteStore, Store, StoreError};

fn fresh() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("state.db")).unwrap();
    (dir, store)
}

#[test]
fn conformance() {
    for (name, check) in CHECKS {
        let (_dir, store) = fresh();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&store)));
        assert!(result.is_ok(), "conformance check {name} failed on SQLite");
    }
}

#[test]
fn data_survives_reopen() {
    let (dir, store) = fresh();
    let task = store
        .create_process(&spec(Some("claude"), &["sleep", "1"]), "t")
        .unwrap();
    drop(store);
    let reopened = SqliteStore::open(&dir.path().join("state.db")).unwrap();
    assert_eq!(reopened.task(&task.id).unwrap(), task);
    assert_eq!(
        reopened
            .create_process(&spec(None, &["x"]), "t")
            .unwrap()
            .id,
        "TASK-2"
    );
}

#[test]
fn concurrent_writers_on_separate_connections_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = Arc::new(dir.path().join("state.db"));
    SqliteStore::open(&path).unwrap();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let path = path.clone();
            thread::spawn(move || {
                let store = SqliteStore::open(&path).unwrap();
                (0..25)
                    .map(|_| store.create_process(&spec(None, &["x"]), "t").unwrap().id)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut ids: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 200);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.last_event_seq().unwrap(),
        200,
        "one created event each"
    );
}

#[test]
fn a_corrupt_file_is_reported_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    fs::write(&path, vec![0x42u8; 8192]).unwrap();
    let err = SqliteStore::open(&path)
        .err()
        .expect("garbage must not open");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    SqliteStore::open(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 999).unwrap();
    drop(conn);
    let err = SqliteStore::open(&path)
        .err()
        .expect("future schema must be refused");
    assert!(
        matches!(err, StoreError::TooNew { found: 999, .. }),
        "{err}"
    );
}
