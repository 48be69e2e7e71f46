//! The PostgreSQL store against the same conformance checks as SQLite (each
//! in its own schema, a few at a time), plus what is PostgreSQL's own: several
//! stores on one database, an unreachable server, dropped connections, and
//! the export/import round trip SQLite -> PostgreSQL -> SQLite.
//!
//! Needs `TASKDAEMON_TEST_DATABASE_URL`; without it every test here prints a
//! loud notice and passes without running.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

/// How many conformance checks run at once.
const CONFORMANCE_WORKERS: usize = 8;

use taskdaemon_store::conformance::{
    CHECKS, copy, create_concurrently, export_all, fill_for_export, spec,
};
use taskdaemon_store::testing::TestSchema;
use taskdaemon_store::{ExportRecord, PgOptions, PgStore, SqliteStore, Store, StoreError};

#[test]
fn postgres_conformance() {
    if TestSchema::create("postgres_conformance").is_none() {
        return;
    }
    // A few workers take the checks in turn: one thread per check opened
    // more connections at once than the server's `max_connections` allows.
    let next = AtomicUsize::new(0);
    let failed: Vec<String> = thread::scope(|scope| {
        let workers: Vec<_> = (0..CONFORMANCE_WORKERS)
            .map(|_| {
                scope.spawn(|| {
                    let mut failed = Vec::new();
                    while let Some((name, check)) = CHECKS.get(next.fetch_add(1, Ordering::SeqCst))
                    {
                        let passed = thread::scope(|one| {
                            one.spawn(|| {
                                let schema = TestSchema::create(name).expect("checked above");
                                let store = schema.open().unwrap();
                                check(&store);
                            })
                            .join()
                            .is_ok()
                        });
                        if !passed {
                            failed.push((*name).to_owned());
                        }
                    }
                    failed
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    assert!(
        failed.is_empty(),
        "conformance checks failed on PostgreSQL: {failed:?}"
    );
}

#[test]
fn postgres_stores_on_one_database_share_state_and_lose_nothing() {
    let Some(schema) = TestSchema::create("postgres_stores_share_state") else {
        return;
    };
    let url = schema.url();
    let first = PgStore::open(&PgOptions::new(&url)).unwrap();
    let open = || -> Box<dyn Store> { Box::new(PgStore::open(&PgOptions::new(&url)).unwrap()) };
    let ids = create_concurrently(6, 25, &open);
    assert_eq!(ids.len(), 150);
    assert_eq!(first.last_event_seq().unwrap(), 150, "gap-free sequence");
    let events = first.events_after(0, &[], 1000).unwrap();
    assert!(events.windows(2).all(|w| w[1].seq == w[0].seq + 1));
}

#[test]
fn postgres_unreachable_server_names_the_url_without_password() {
    // No server listens on port 1; the URL carries a password to hide.
    let err = PgStore::open(&PgOptions::new(
        "postgres://alice:hunter2@127.0.0.1:1/nowhere?connect_timeout=2",
    ))
    .err()
    .expect("nothing listens there");
    let message = err.to_string();
    assert!(matches!(err, StoreError::Unreachable { .. }), "{message}");
    assert!(
        message.contains("postgres://alice:***@127.0.0.1:1/nowhere"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
}

#[test]
fn postgres_operations_survive_terminated_connections() {
    let Some(schema) = TestSchema::create("postgres_terminated_connections") else {
        return;
    };
    let store = schema.open().unwrap();
    store.create_process(&spec(None, &["a"]), "t").unwrap();
    for round in 0..3 {
        assert!(schema.terminate_connections() > 0, "round {round}");
        let task = store
            .create_process(&spec(None, &["b"]), "t")
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(store.task(&task.id).unwrap().id, task.id);
    }
    assert_eq!(store.status_counts().unwrap()[0].1, 4);
}

#[test]
fn postgres_export_and_import_survive_terminated_connections() {
    let Some(schema) = TestSchema::create("postgres_export_terminated") else {
        return;
    };
    let store = schema.open().unwrap();
    let task = store.create_process(&spec(None, &["a"]), "t").unwrap();
    for round in 0..2 {
        assert!(schema.terminate_connections() > 0, "round {round}");
        let mut exported = Vec::new();
        store
            .export(&mut |record| {
                if let ExportRecord::Task(t) = record {
                    exported.push(t.task.id.clone());
                }
                Ok(())
            })
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(exported, vec![task.id.clone()], "round {round}");
    }
    assert!(schema.terminate_connections() > 0);
    // The store holds a task, so the import is refused: by the check that
    // needs a live connection, not by the dropped one.
    let refused = store.begin_import().err().expect("a non-empty store");
    assert!(matches!(refused, StoreError::Conflict(_)), "{refused}");
}

#[test]
fn postgres_newer_schema_is_refused() {
    let Some(schema) = TestSchema::create("postgres_newer_schema") else {
        return;
    };
    drop(schema.open().unwrap());
    let mut admin = schema.admin();
    admin
        .batch_execute(&format!(
            "INSERT INTO {}.td_schema (version) VALUES (999)",
            schema.schema()
        ))
        .unwrap();
    let err = schema.open().err().expect("a future schema is refused");
    assert!(
        matches!(err, StoreError::PgTooNew { found: 999, .. }),
        "{err}"
    );
}

#[test]
fn postgres_backup_points_to_pg_dump() {
    let Some(schema) = TestSchema::create("postgres_backup") else {
        return;
    };
    let store = schema.open().unwrap();
    let err = store.backup(std::path::Path::new("/tmp/x.db")).unwrap_err();
    assert!(matches!(err, StoreError::Unsupported(_)), "{err}");
    assert!(err.to_string().contains("pg_dump"), "{err}");
}

#[test]
fn postgres_round_trip_sqlite_to_postgres_to_sqlite() {
    use taskdaemon_core::{MemoryKind, NewMemory};
    use taskdaemon_store::conformance::{agent, tracked::tracked};
    let Some(schema) = TestSchema::create("postgres_round_trip") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let source = SqliteStore::open(&dir.path().join("a.db")).unwrap();
    fill_for_export(&source, |store| {
        store.create_agent(&agent("q", "task-f.md"), "t").unwrap();
        store.submit(&agent("q", "task-s.md"), "t").unwrap();
        store.set_meta("cursor", "7").unwrap();
        taskdaemon_store::conformance::pipeline::fill_plan(store);
    });
    let exported = export_all(&source);
    assert!(
        exported
            .iter()
            .any(|r| matches!(r, taskdaemon_store::ExportRecord::Gate(_)))
    );

    let pg = schema.open().unwrap();
    copy(&source, &pg);
    let mut from_pg = export_all(&pg);
    // The header names the writer's schema version; everything else is equal.
    from_pg[0] = exported[0].clone();
    assert_eq!(
        from_pg, exported,
        "PostgreSQL holds exactly what SQLite held"
    );

    let back = SqliteStore::open(&dir.path().join("b.db")).unwrap();
    copy(&pg, &back);
    assert_eq!(export_all(&back), exported, "and gives it back unchanged");

    // The PostgreSQL copy carries on where the source stopped.
    // Tracked, container and plan tasks share one counter, which the copy carries.
    let next = pg.create_tracked(&tracked("third", &[]), "t").unwrap();
    assert_eq!(next.id, "TASK-7");
    let plan = pg.plans(&Default::default()).unwrap().remove(0);
    let message = pg
        .send_message(
            &taskdaemon_core::NewMessage {
                plan: plan.id.clone(),
                from: "human".into(),
                to: "plan".into(),
                kind: taskdaemon_core::MessageKind::Share,
                body: "after import".into(),
            },
            "t",
        )
        .unwrap();
    assert_eq!(message.id, "MSG-4", "message numbers carry on");
    assert!(pg.last_event_seq().unwrap() > source.last_event_seq().unwrap());
    assert!(!pg.search("SQLite default", 5).unwrap().is_empty());
    let memory = pg
        .remember(
            &NewMemory {
                kind: MemoryKind::Note,
                text: "after import".to_owned(),
                task_id: None,
                key: None,
                session: None,
            },
            "t",
        )
        .unwrap();
    assert_eq!(memory.id, "MEM-2", "memory numbers carry on");
    let claim = pg
        .claim("w", &[], std::time::Duration::from_secs(5))
        .unwrap();
    assert_eq!(
        claim.unwrap().lease.task_id,
        "task-s",
        "submitted work stays claimable"
    );
}
