//! Conformance checks for LLM loops: ids, the lifecycle through the state
//! machine, idempotent iteration records, resume after a crash, stop.

use serde_json::json;
use taskdaemon_core::{
    EventKind, LoopEnd, LoopIteration, NewConfigVersion, NewLoop, Status, TaskKind,
};

use super::spec;
use crate::{HistoryFilter, Store, StoreError};

/// A loop request for tests.
pub fn new_loop(name: &str) -> NewLoop {
    NewLoop {
        name: Some(name.to_owned()),
        session: None,
        argv: vec!["loop".into(), "run".into(), "--spec".into(), name.into()],
        workdir: "/work".to_owned(),
        spec: json!({ "spec": "make it pass", "validate": ["true"], "model": "m",
                      "provider": "anthropic", "workdir": "/work" }),
    }
}

fn iteration(n: u32, passed: bool) -> LoopIteration {
    LoopIteration {
        iteration: n,
        tool_calls: 2,
        validation_exit_code: Some(if passed { 0 } else { 1 }),
        passed,
        input_tokens: 100,
        output_tokens: 10,
        cache_read_tokens: 7,
        cache_write_tokens: 3,
        cost_usd: 0.25,
    }
}

fn kinds(store: &dyn Store, id: &str) -> Vec<EventKind> {
    let filter = HistoryFilter {
        task_id: Some(id.to_owned()),
        ..HistoryFilter::default()
    };
    store
        .history_page(&filter, 0, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

/// Create, start, two iterations, succeed: one event per change, counters add up.
pub fn lifecycle(store: &dyn Store) {
    let first = store.create_process(&spec(None, &["x"]), "t").unwrap();
    let created = store.create_loop(&new_loop("spec.md"), "cli").unwrap();
    assert_eq!(first.id, "TASK-1");
    assert_eq!(created.task.id, "LOOP-2", "loops share the one id counter");
    assert_eq!(created.task.kind, TaskKind::Loop);
    assert_eq!(created.task.status, Status::Pending);
    assert_eq!(created.spec["validate"], json!(["true"]));
    assert_eq!(created.iterations, 0);
    assert_eq!(store.loop_record("loop-2").unwrap(), created);
    assert!(matches!(
        store.loop_record("TASK-1"),
        Err(StoreError::NotFound(_))
    ));

    let running = store.mark_loop_running("LOOP-2", 1, "daemon").unwrap();
    assert_eq!(running.task.status, Status::Running);
    assert!(running.task.started_at.is_some());
    assert!(
        store
            .record_loop_iteration("LOOP-2", &iteration(1, false), "daemon")
            .unwrap()
    );
    assert!(
        store
            .record_loop_iteration("LOOP-2", &iteration(2, true), "daemon")
            .unwrap()
    );
    let done = store
        .finish_loop("LOOP-2", &LoopEnd::Succeeded { iteration: 2 }, "daemon")
        .unwrap();
    assert_eq!(done.task.status, Status::Succeeded);
    assert_eq!(done.task.exit_code, Some(0));
    assert!(done.task.finished_at.is_some());
    assert_eq!(done.iterations, 2);
    assert_eq!(done.tool_calls, 4);
    assert_eq!(done.input_tokens, 200);
    assert_eq!(done.output_tokens, 20);
    assert!((done.cost_usd - 0.5).abs() < 1e-9);
    assert_eq!(done.last_validation_exit_code, Some(0));
    assert_eq!(
        kinds(store, "LOOP-2"),
        [
            EventKind::Created,
            EventKind::Started,
            EventKind::IterationFinished,
            EventKind::IterationFinished,
            EventKind::Exited
        ]
    );
}

/// Replaying an iteration (a resumed daemon reading its progress log) counts nothing twice.
pub fn iterations_count_once(store: &dyn Store) {
    let id = store.create_loop(&new_loop("a"), "cli").unwrap().task.id;
    assert!(
        matches!(
            store.record_loop_iteration(&id, &iteration(1, false), "daemon"),
            Err(StoreError::Conflict(_))
        ),
        "a pending loop records no iterations"
    );
    store.mark_loop_running(&id, 1, "daemon").unwrap();
    assert!(
        store
            .record_loop_iteration(&id, &iteration(1, false), "daemon")
            .unwrap()
    );
    assert!(
        !store
            .record_loop_iteration(&id, &iteration(1, false), "daemon")
            .unwrap()
    );
    let record = store.loop_record(&id).unwrap();
    assert_eq!((record.iterations, record.tool_calls), (1, 2));
    let finished = kinds(store, &id)
        .into_iter()
        .filter(|k| *k == EventKind::IterationFinished)
        .count();
    assert_eq!(finished, 1);
}

/// A loop found running resumes (an `adopted` event); ended loops cannot end again.
pub fn resume_and_illegal_ends(store: &dyn Store) {
    let id = store.create_loop(&new_loop("a"), "cli").unwrap().task.id;
    assert!(
        matches!(
            store.finish_loop(&id, &LoopEnd::Succeeded { iteration: 1 }, "daemon"),
            Err(StoreError::IllegalTransition(_))
        ),
        "pending cannot succeed"
    );
    store.mark_loop_running(&id, 1, "daemon").unwrap();
    store
        .record_loop_iteration(&id, &iteration(1, false), "daemon")
        .unwrap();
    let resumed = store.mark_loop_running(&id, 2, "daemon").unwrap();
    assert_eq!(resumed.task.status, Status::Running);
    assert_eq!(kinds(store, &id).last(), Some(&EventKind::Adopted));
    let failed = store
        .finish_loop(
            &id,
            &LoopEnd::Failed {
                reason: "no key".into(),
            },
            "daemon",
        )
        .unwrap();
    assert_eq!(failed.task.status, Status::Failed);
    assert_eq!(failed.task.error.as_deref(), Some("no key"));
    assert_eq!(failed.task.exit_code, Some(1));
    let before = kinds(store, &id).len();
    assert!(matches!(
        store.finish_loop(&id, &LoopEnd::Cancelled, "daemon"),
        Err(StoreError::IllegalTransition(_))
    ));
    assert_eq!(
        kinds(store, &id).len(),
        before,
        "a refused change leaves no event"
    );
}

/// Stop requests reuse the task rules; listings show unfinished loops or all.
pub fn stop_and_listing(store: &dyn Store) {
    let a = store.create_loop(&new_loop("a"), "cli").unwrap().task.id;
    let b = store.create_loop(&new_loop("b"), "cli").unwrap().task.id;
    store.create_process(&spec(None, &["x"]), "t").unwrap();
    store.mark_loop_running(&b, 1, "daemon").unwrap();
    assert_eq!(
        store.request_stop(&a, "cli").unwrap().status,
        Status::Cancelled
    );
    let b_task = store.request_stop(&b, "cli").unwrap();
    assert!(b_task.stop_requested && b_task.status == Status::Running);
    let live: Vec<String> = store
        .loops(false)
        .unwrap()
        .into_iter()
        .map(|l| l.task.id)
        .collect();
    assert_eq!(live, std::slice::from_ref(&b));
    store
        .finish_loop(&b, &LoopEnd::Cancelled, "daemon")
        .unwrap();
    assert!(store.loops(false).unwrap().is_empty());
    let all: Vec<String> = store
        .loops(true)
        .unwrap()
        .into_iter()
        .map(|l| l.task.id)
        .collect();
    assert_eq!(all, [a, b], "oldest first, processes left out");
}

fn config(digest: &str, names: &[&str]) -> NewConfigVersion {
    NewConfigVersion {
        digest: digest.to_owned(),
        file: Some("/work/taskdaemon.yml".to_owned()),
        type_names: names.iter().map(|s| s.to_string()).collect(),
        types: json!({ "ralph": { "model": digest } }),
    }
}

/// Configuration versions number up from 1, an unchanged digest records
/// nothing, each new version has its `config_loaded` event, and the
/// resolved types come back as stored.
pub fn config_versions_record_changes_once(store: &dyn Store) {
    assert!(store.config_versions(10).unwrap().is_empty());
    let first = store
        .record_config_version(&config("aaa", &["ralph"]), "daemon")
        .unwrap();
    assert_eq!((first.version, first.digest.as_str()), (1, "aaa"));
    let again = store
        .record_config_version(&config("aaa", &["ralph"]), "daemon")
        .unwrap();
    assert_eq!(
        again.version, 1,
        "an unchanged configuration is not a new version"
    );
    let second = store
        .record_config_version(&config("bbb", &["plan", "ralph"]), "daemon")
        .unwrap();
    assert_eq!(second.version, 2);
    // Going back to an earlier configuration is a new version too.
    let third = store
        .record_config_version(&config("aaa", &["ralph"]), "daemon")
        .unwrap();
    assert_eq!(third.version, 3);

    let listed = store.config_versions(10).unwrap();
    let versions: Vec<i64> = listed.iter().map(|v| v.version).collect();
    assert_eq!(versions, [3, 2, 1]);
    assert_eq!(listed[1].type_names, ["plan", "ralph"]);
    assert!(listed[0].types.is_null(), "listings leave the types out");
    assert_eq!(store.config_versions(1).unwrap().len(), 1);

    let full = store.config_version(2).unwrap();
    assert_eq!(full.types, json!({ "ralph": { "model": "bbb" } }));
    assert_eq!(full.file.as_deref(), Some("/work/taskdaemon.yml"));
    assert!(matches!(
        store.config_version(99),
        Err(StoreError::NotFound(_))
    ));

    let loaded = store
        .events_after(0, &[EventKind::ConfigLoaded], 10)
        .unwrap();
    assert_eq!(loaded.len(), 3);
    assert!(loaded[1].message.contains("version 2") && loaded[1].message.contains("plan, ralph"));
    assert_eq!(loaded[0].task_id, None);
}

/// Prompt-cache tokens add up per loop like the other counters.
pub fn cache_tokens_add_up(store: &dyn Store) {
    let created = store.create_loop(&new_loop("cache.md"), "cli").unwrap();
    let id = created.task.id;
    store.mark_loop_running(&id, 1, "daemon").unwrap();
    store
        .record_loop_iteration(&id, &iteration(1, false), "daemon")
        .unwrap();
    store
        .record_loop_iteration(&id, &iteration(1, false), "daemon")
        .unwrap();
    store
        .record_loop_iteration(&id, &iteration(2, true), "daemon")
        .unwrap();
    let record = store.loop_record(&id).unwrap();
    assert_eq!(
        (record.cache_read_tokens, record.cache_write_tokens),
        (14, 6)
    );
}
