//! The SQLite store against the conformance checks, plus what is SQLite's own:
//! durability across reopen, concurrent writers, corrupt and future files.

use std::fs;

use taskdaemon_store::conformance::{
    CHECKS, Filled, copy, create_concurrently, export_all, fill_for_export, spec, started,
};
use taskdaemon_store::{SqliteStore, Store, StoreError};

fn fresh() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("state.db")).unwrap();
    (dir, store)
}

#[test]
fn conformance() {
    let failed: Vec<&str> = CHECKS
        .iter()
        .filter(|(_, check)| {
            let (_dir, store) = fresh();
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&store))).is_err()
        })
        .map(|(name, _)| *name)
        .collect();
    assert!(
        failed.is_empty(),
        "conformance checks failed on SQLite: {failed:?}"
    );
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
    let path = dir.path().join("state.db");
    SqliteStore::open(&path).unwrap();
    let open = || -> Box<dyn Store> { Box::new(SqliteStore::open(&path).unwrap()) };
    let ids = create_concurrently(8, 25, &open);
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

#[test]
fn export_then_import_round_trips_everything() {
    use taskdaemon_store::conformance::tracked::tracked;
    let (_a, source) = fresh();
    let mut looped = None;
    let Filled { second, .. } = fill_for_export(&source, |store| {
        // A queue task and a loop carry rows of their own beside the task.
        store
            .create_agent(
                &taskdaemon_core::NewAgent {
                    wanted_id: "task-fix-docs".to_owned(),
                    queue: "ad-hoc".to_owned(),
                    document: "task-fix-docs.md".to_owned(),
                    executor: "command".to_owned(),
                    argv: vec!["true".to_owned()],
                    cwd: "/".to_owned(),
                    env: Vec::new(),
                    restart: Default::default(),
                    max_attempts: 3,
                    timeout_ms: Some(60_000),
                    limits: Default::default(),
                    container: None,
                },
                "t",
            )
            .unwrap();
        let looping = store
            .create_loop(
                &taskdaemon_core::NewLoop {
                    name: Some("spec.md".to_owned()),
                    session: None,
                    argv: vec!["taskdaemon".to_owned(), "loop".to_owned(), "run".to_owned()],
                    workdir: "/tmp".to_owned(),
                    spec: serde_json::json!({ "spec": "make it pass", "validate": "true" }),
                },
                "t",
            )
            .unwrap();
        store.mark_loop_running(&looping.task.id, 1, "t").unwrap();
        store
            .record_loop_iteration(
                &looping.task.id,
                &taskdaemon_core::LoopIteration {
                    iteration: 1,
                    tool_calls: 2,
                    validation_exit_code: Some(1),
                    passed: false,
                    input_tokens: 100,
                    output_tokens: 20,
                    cost_usd: 0.01,
                    ..Default::default()
                },
                "t",
            )
            .unwrap();
        looped = Some(looping);
        taskdaemon_store::conformance::pipeline::fill_plan(store);
    });
    let looped = looped.unwrap();
    let exported = export_all(&source);
    assert!(
        exported
            .iter()
            .any(|r| matches!(r, taskdaemon_store::ExportRecord::Gate(_)))
    );

    let (_b, target) = fresh();
    let report = copy(&source, &target);
    assert_eq!(
        report.tasks, 8,
        "with the subtask, the claimed task and the container task"
    );
    assert_eq!(report.memory, 1);
    assert_eq!(
        export_all(&target),
        exported,
        "a second export is identical"
    );
    // The imported store carries on where the source stopped.
    assert_eq!(
        target.task(&second.id).unwrap().status,
        taskdaemon_core::Status::Pending
    );
    assert_eq!(target.queue_item("task-fix-docs").unwrap().max_attempts, 3);
    let restored = target.loop_record(&looped.task.id).unwrap();
    assert_eq!(restored.iterations, 1);
    assert_eq!(restored.spec["spec"], "make it pass");
    // Plans travel whole, and their numbering carries on.
    let plans = target.plans(&Default::default()).unwrap();
    assert_eq!(plans.len(), 1);
    let tree = target.plan_tree(&plans[0].id).unwrap();
    assert_eq!(tree.specs[0].phases[0].loop_task.as_deref(), Some("LOOP-1"));
    assert_eq!(tree.plan.cost.cost_usd, 0.125);
    let next = target
        .send_message(
            &taskdaemon_core::NewMessage {
                plan: tree.plan.id.clone(),
                from: "human".into(),
                to: "plan".into(),
                kind: taskdaemon_core::MessageKind::Share,
                body: "after import".into(),
            },
            "t",
        )
        .unwrap();
    assert_eq!(next.id, "MSG-4");
    let next = target.create_tracked(&tracked("third", &[]), "t").unwrap();
    assert_eq!(
        next.id, "TASK-8",
        "the id counter travels (queue tasks use their file stem; tracked, container and plan tasks share it)"
    );
    assert!(target.last_event_seq().unwrap() > source.last_event_seq().unwrap());
    assert!(!target.search("SQLite default", 5).unwrap().is_empty());
}

#[test]
fn a_failed_import_writes_nothing() {
    let (_a, source) = fresh();
    source
        .create_tracked(
            &taskdaemon_store::conformance::tracked::tracked("x", &[]),
            "t",
        )
        .unwrap();
    let mut exported = export_all(&source);
    // A duplicate task id makes the second insert fail after the first succeeded.
    let task = exported
        .iter()
        .find(|r| matches!(r, taskdaemon_store::ExportRecord::Task(_)))
        .cloned()
        .unwrap();
    exported.push(task);
    let (_b, target) = fresh();
    let mut importer = target.begin_import().unwrap();
    let mut failed = false;
    for record in exported {
        if importer.add(record).is_err() {
            failed = true;
            break;
        }
    }
    assert!(failed, "the duplicate must be refused");
    drop(importer);
    assert!(
        export_all(&target)
            .iter()
            .all(|r| !matches!(r, taskdaemon_store::ExportRecord::Task(_)))
    );
    assert_eq!(target.last_event_seq().unwrap(), 0);
}

/// Rows a file edited with foreign keys off can hold (a spec, its phase and
/// a message left behind by a deleted parent) are reported and removed by
/// repair; the plan's other spec stays.
#[test]
fn repair_removes_pipeline_rows_whose_parent_is_gone() {
    use taskdaemon_core::pipeline::{MessageKind, NewMessage, NewPhase, PipelineStatus};
    use taskdaemon_store::conformance::pipeline::{new_plan, new_spec};

    let (dir, store) = fresh();
    let plan = store.create_plan(&new_plan("goal", true), "t").unwrap().id;
    store
        .set_plan_status(&plan, PipelineStatus::Running, None, "t")
        .unwrap();
    store
        .add_specs(&plan, &[new_spec("a", &[], 0), new_spec("b", &[], 0)], "t")
        .unwrap();
    let phase = NewPhase {
        name: "one".into(),
        title: "One".into(),
        body: "do it".into(),
        validation: "true".into(),
    };
    store
        .add_phases(&format!("{plan}/a"), &[phase], "t")
        .unwrap();
    let message = store
        .send_message(
            &NewMessage {
                plan: plan.clone(),
                from: "b".into(),
                to: "a".into(),
                kind: MessageKind::Share,
                body: "found it".into(),
            },
            "t",
        )
        .unwrap();
    let raw = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
    raw.execute_batch(&format!(
        "PRAGMA foreign_keys=OFF;
         DELETE FROM specs WHERE plan = '{plan}' AND name = 'a';"
    ))
    .unwrap();
    drop(raw);

    let problems = store.check_integrity().unwrap().problems;
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].starts_with(&format!(
            "{plan}/a/1: phase of a spec or plan that does not exist"
        )),
        "{problems:?}"
    );
    assert!(
        problems[1].starts_with(&format!("{}: message of a plan or spec", message.id)),
        "{problems:?}"
    );
    let report = store.repair("t").unwrap();
    assert_eq!(
        report.orphans_removed,
        vec![format!("{plan}/a/1"), message.id.clone()]
    );
    assert_eq!(report.remaining, Vec::<String>::new());
    let tree = store.plan_tree(&plan).unwrap();
    let names: Vec<&str> = tree.specs.iter().map(|s| s.spec.name.as_str()).collect();
    assert_eq!(names, ["b"]);
    assert!(store.message(&message.id).is_err());
}

/// How long a test waits for another thread before calling it stuck.
const DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

#[test]
fn a_read_on_another_thread_sees_a_write_committed_just_before() {
    let (_dir, store) = fresh();
    let store = std::sync::Arc::new(store);
    let (ready, on_reader) = std::sync::mpsc::channel::<()>();
    let (written, on_writer) = std::sync::mpsc::channel::<String>();
    let reader = {
        let store = store.clone();
        std::thread::spawn(move || {
            // Every read connection has read before the write, so none of
            // them is new when the write commits.
            for _ in 0..16 {
                assert_eq!(store.status_counts().unwrap(), []);
            }
            ready.send(()).unwrap();
            let id = on_writer.recv().unwrap();
            store.task(&id).map(|task| task.id)
        })
    };
    on_reader.recv().unwrap();
    let created = store.create_process(&spec(None, &["true"]), "t").unwrap();
    written.send(created.id.clone()).unwrap();
    assert_eq!(reader.join().unwrap().unwrap(), created.id);
}

#[test]
fn a_write_on_another_thread_is_seen_by_the_next_read() {
    let (_dir, store) = fresh();
    let store = std::sync::Arc::new(store);
    for _ in 0..16 {
        assert_eq!(store.status_counts().unwrap(), []);
    }
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || store.create_process(&spec(None, &["true"]), "t"))
    };
    let created = writer.join().unwrap().unwrap();
    // Every pooled connection, whichever serves the read, sees the commit.
    for _ in 0..16 {
        assert_eq!(store.task(&created.id).unwrap().id, created.id);
    }
}

#[test]
fn reads_proceed_while_a_write_transaction_is_open() {
    let (_dir, store) = fresh();
    let store = std::sync::Arc::new(store);
    let held = std::sync::Arc::new(std::sync::Barrier::new(2));
    let (answered, answer) = std::sync::mpsc::channel();
    let reader = {
        let (store, held) = (store.clone(), held.clone());
        std::thread::spawn(move || {
            held.wait();
            answered
                .send(store.status_counts().map(|c| c.len()))
                .unwrap();
        })
    };
    // An import holds the write connection and SQLite's write lock until it ends.
    let importer = store.begin_import().unwrap();
    held.wait();
    let read = answer.recv_timeout(DEADLINE);
    drop(importer);
    reader.join().unwrap();
    assert_eq!(
        read.expect("a read waited for the open write transaction")
            .unwrap(),
        0
    );
}

#[test]
fn reads_proceed_while_another_process_holds_the_write_lock() {
    let (dir, store) = fresh();
    let task = store.create_process(&spec(None, &["true"]), "t").unwrap();
    let other = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
    other
        .execute_batch("BEGIN IMMEDIATE; DELETE FROM meta;")
        .unwrap();
    // Uncommitted work is not seen, and does not hold the read up.
    assert_eq!(store.task(&task.id).unwrap(), task);
    other.execute_batch("ROLLBACK").unwrap();
}

#[test]
fn commit_version_moves_with_every_commit_from_any_connection() {
    let (dir, store) = fresh();
    let version = || store.commit_version().unwrap().expect("SQLite tells");
    let start = version();
    assert_eq!(version(), start, "nothing committed, nothing moves");

    // The store's own write connection.
    store.set_meta("k", "1").unwrap();
    let after_own = version();
    assert_ne!(after_own, start);

    // Another connection (another process, as far as SQLite knows).
    let other = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
    other
        .execute_batch("BEGIN IMMEDIATE; UPDATE meta SET value = '2';")
        .unwrap();
    assert_eq!(version(), after_own, "uncommitted work moves nothing");
    other.execute_batch("COMMIT").unwrap();
    let after_other = version();
    assert_ne!(after_other, after_own);
    assert_eq!(version(), after_other);
}

#[test]
fn a_store_that_wrote_and_read_leaves_no_wal_behind_when_closed() {
    let (dir, store) = fresh();
    let task = store.create_process(&spec(None, &["true"]), "t").unwrap();
    // Open a read connection and the commit probe beside the write one.
    assert_eq!(store.task(&task.id).unwrap(), task);
    store.commit_version().unwrap();
    let wal = dir.path().join("state.db-wal");
    assert!(wal.exists(), "the write went to the WAL");
    drop(store);
    // The write connection closed last, checkpointed and removed it, so
    // the next process to open the file has no WAL index to rebuild.
    assert!(!wal.exists(), "the WAL outlived the store");
}

/// Tasks by status: `(status, count)` rows.
type StatusCounts = Vec<(String, i64)>;

/// Tasks by status as `task_status_counts` (kept by triggers) holds them,
/// and as a count of the rows says they are.
fn kept_and_counted(path: &std::path::Path) -> (StatusCounts, StatusCounts) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let rows = |sql: &str| -> StatusCounts {
        let mut stmt = conn.prepare(sql).unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    (
        rows("SELECT status, n FROM task_status_counts WHERE n > 0 ORDER BY status"),
        rows("SELECT status, COUNT(*) FROM tasks GROUP BY status ORDER BY status"),
    )
}

#[test]
fn status_counts_follow_every_insert_change_and_delete() {
    let (dir, source) = fresh();
    let Filled { second, .. } = fill_for_export(&source, |_| {});
    let path = dir.path().join("state.db");
    let (kept, counted) = kept_and_counted(&path);
    assert!(
        counted.len() > 1,
        "the filled store has several statuses: {counted:?}"
    );
    assert_eq!(kept, counted);

    // An import inserts through the same triggers.
    let (copy_dir, target) = fresh();
    copy(&source, &target);
    let (kept, counted) = kept_and_counted(&copy_dir.path().join("state.db"));
    assert_eq!(kept, counted);

    // A merge deletes a known task's row and writes its newer version.
    source
        .act_on_tracked(&second.id, &taskdaemon_core::TrackedAction::Start, "t")
        .unwrap();
    let tasks: Vec<taskdaemon_store::ExportedTask> = export_all(&source)
        .into_iter()
        .filter_map(|record| match record {
            taskdaemon_store::ExportRecord::Task(task) if task.task.id == second.id => Some(*task),
            _ => None,
        })
        .collect();
    let report = target.merge_tracked(&tasks, &[], "t").unwrap();
    assert!(report.updated.contains(&second.id), "{report:?}");
    let (kept, counted) = kept_and_counted(&copy_dir.path().join("state.db"));
    assert_eq!(kept, counted);

    let reported: Vec<(String, i64)> = target
        .status_counts()
        .unwrap()
        .into_iter()
        .map(|(s, n)| (s.to_string(), n as i64))
        .collect();
    assert_eq!(reported, counted);
}

#[test]
fn an_older_store_lists_its_ended_processes_once_migrated() {
    let (dir, store) = fresh();
    for n in 0..3 {
        let task = store.create_process(&spec(None, &["true"]), "t").unwrap();
        store
            .mark_started(&task.id, 0, &started(900 + n), "t")
            .unwrap();
        let exit = taskdaemon_core::process::ExitOutcome::exited(n);
        store
            .record_exit(&task.id, 900 + n, exit, None, "t")
            .unwrap();
    }
    let failed = store.create_process(&spec(None, &["nope"]), "t").unwrap();
    store
        .record_start_failure(&failed.id, "no such file", "t")
        .unwrap();
    let before = store.newest_ended(0, 100).unwrap();
    assert_eq!(before.len(), 4, "{before:?}");
    drop(store);
    let path = dir.path().join("state.db");
    // Back to schema 15: no index of end events, which the list names.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("DROP INDEX events_ended; PRAGMA user_version = 15;")
        .unwrap();
    drop(conn);
    let reopened = SqliteStore::open(&path).unwrap();
    assert_eq!(reopened.newest_ended(0, 100).unwrap(), before);
}

#[test]
fn an_older_store_gets_its_status_counts_when_migrated() {
    let (dir, store) = fresh();
    fill_for_export(&store, |_| {});
    drop(store);
    let path = dir.path().join("state.db");
    // Back to schema 14: no counts table, no triggers (nor what came after).
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TRIGGER tasks_count_insert; DROP TRIGGER tasks_count_delete;
         DROP TRIGGER tasks_count_update; DROP TABLE task_status_counts;
         DROP INDEX events_ended; PRAGMA user_version = 14;",
    )
    .unwrap();
    drop(conn);
    let reopened = SqliteStore::open(&path).unwrap();
    let (kept, counted) = kept_and_counted(&path);
    assert!(!counted.is_empty());
    assert_eq!(kept, counted);
    assert_eq!(reopened.status_counts().unwrap().len(), counted.len());
}
