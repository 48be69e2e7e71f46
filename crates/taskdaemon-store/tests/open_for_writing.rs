//! `SqliteStore::open_for_writing`, which shims use: one connection, the
//! write connection, serves reads as well as writes, where a store opened
//! the usual way opens a read connection besides.

use taskdaemon_store::conformance::spec;
use taskdaemon_store::testing::descriptors_on;
use taskdaemon_store::{SqliteStore, Store};

#[test]
fn a_store_opened_for_writing_reads_and_writes_on_one_connection() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let task = SqliteStore::open(&db)
        .unwrap()
        .create_process(&spec(Some("claude"), &["true"]), "t")
        .unwrap();

    // The usual open: a read connection, and a write connection on the first write.
    let usual = SqliteStore::open(&db).unwrap();
    assert_eq!(usual.task(&task.id).unwrap(), task);
    usual.set_meta("usual", "1").unwrap();
    assert_eq!(descriptors_on(&db), 2);
    drop(usual);

    let writing = SqliteStore::open_for_writing(&db).unwrap();
    assert_eq!(writing.task(&task.id).unwrap(), task);
    writing.set_meta("mine", "2").unwrap();
    assert_eq!(writing.meta("mine").unwrap().as_deref(), Some("2"));
    assert_eq!(
        descriptors_on(&db),
        1,
        "reads went through the write connection"
    );

    // It sees what other connections commit.
    let other = SqliteStore::open(&db).unwrap();
    other.set_meta("theirs", "3").unwrap();
    assert_eq!(writing.meta("theirs").unwrap().as_deref(), Some("3"));
}

#[test]
fn opening_for_writing_creates_and_migrates_a_missing_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("new.db");
    let writing = SqliteStore::open_for_writing(&db).unwrap();
    let task = writing
        .create_process(&spec(None, &["sleep", "1"]), "t")
        .unwrap();
    drop(writing);
    assert_eq!(
        SqliteStore::open(&db).unwrap().task(&task.id).unwrap(),
        task
    );
}
