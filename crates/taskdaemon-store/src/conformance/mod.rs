//! The behaviour every [`Store`] implementation must show.
//!
//! Each check takes a fresh, empty store. The SQLite tests run all of them,
//! and every further backend runs the same list, so the backends cannot drift
//! apart. Checks panic with a message on failure, like tests do.

use std::time::Duration;

use taskdaemon_core::process::{ExitDecision, ExitOutcome, RestartMode, RestartPolicy};
use taskdaemon_core::{
    EventKind, MemoryKind, NewAgent, NewEvent, NewMemory, NewProcess, ProcessIdentity, Status,
    TaskKind, TaskRecord, TrackedAction,
};

use crate::{ExportRecord, ImportReport, ProcessFilter, Sample, Started, Store, StoreError};

pub mod claim;
pub mod gates;
pub mod links;
pub mod loops;
pub mod pipeline;
pub mod tracked;

/// A named conformance check.
pub type Check = (&'static str, fn(&dyn Store));

/// Every check, by name.
pub const CHECKS: &[Check] = &[
    ("ids_share_one_counter", ids_share_one_counter),
    (
        "deferred_commits_are_commits_and_can_be_made_durable",
        deferred_commits_are_commits_and_can_be_made_durable,
    ),
    (
        "lifecycle_appends_one_event_per_change",
        lifecycle_appends_one_event_per_change,
    ),
    (
        "exit_of_another_pid_is_refused",
        exit_of_another_pid_is_refused,
    ),
    (
        "detected_exits_keep_their_timing",
        detected_exits_keep_their_timing,
    ),
    (
        "restart_policy_reopens_until_exhausted",
        restart_policy_reopens_until_exhausted,
    ),
    (
        "start_is_fenced_by_restart_count",
        start_is_fenced_by_restart_count,
    ),
    ("stop_requests", stop_requests),
    (
        "stop_flag_is_recorded_as_a_boolean",
        stop_flag_is_recorded_as_a_boolean,
    ),
    ("reopen_and_lost", reopen_and_lost),
    (
        "limits_are_kept_and_a_limit_exit_has_its_reason",
        limits_are_kept_and_a_limit_exit_has_its_reason,
    ),
    (
        "container_spec_and_id_are_kept",
        container_spec_and_id_are_kept,
    ),
    (
        "illegal_changes_leave_no_trace",
        illegal_changes_leave_no_trace,
    ),
    ("listings_filter_and_page", listings_filter_and_page),
    ("events_filter_by_kind", events_filter_by_kind),
    (
        "newest_ended_lists_each_ended_task_once",
        newest_ended_lists_each_ended_task_once,
    ),
    ("meta_and_samples", meta_and_samples),
    ("tracked_lifecycle", tracked::lifecycle),
    (
        "dependencies_block_and_release",
        tracked::dependencies_block_and_release,
    ),
    (
        "bad_edges_are_refused_and_leave_no_trace",
        tracked::bad_edges_are_refused_and_leave_no_trace,
    ),
    (
        "ready_orders_by_priority",
        tracked::ready_orders_by_priority,
    ),
    (
        "labels_and_status_filter",
        tracked::labels_and_status_filter,
    ),
    ("memory_keys_replace", tracked::memory_keys_replace),
    (
        "search_ranks_all_sources",
        tracked::search_ranks_all_sources,
    ),
    (
        "history_pages_across_the_archive",
        tracked::history_pages_across_the_archive,
    ),
    ("sessions_are_tracked", tracked::sessions_are_tracked),
    (
        "export_streams_everything",
        tracked::export_streams_everything,
    ),
    (
        "import_refuses_a_non_empty_store",
        tracked::import_refuses_a_non_empty_store,
    ),
    ("integrity_and_repair", tracked::integrity_and_repair),
    (
        "typed_links_block_and_render",
        links::typed_links_block_and_render,
    ),
    (
        "subtasks_number_and_roll_up",
        links::subtasks_number_and_roll_up,
    ),
    ("next_and_layers", links::next_and_layers),
    (
        "claims_are_exclusive_and_go_stale",
        links::claims_are_exclusive_and_go_stale,
    ),
    (
        "edits_change_scope_and_are_recorded",
        tracked::edits_change_scope_and_are_recorded,
    ),
    (
        "hash_ids_are_unique_and_found",
        tracked::hash_ids_are_unique_and_found,
    ),
    (
        "merge_import_applies_tracked_work",
        tracked::merge_import_applies_tracked_work,
    ),
    ("compact_and_restore", tracked::compact_and_restore),
    (
        "process_gates_follow_the_exit",
        gates::process_gates_follow_the_exit,
    ),
    ("every_gate_must_open", gates::every_gate_must_open),
    (
        "merge_import_settles_gated_tasks",
        gates::merge_import_settles_gated_tasks,
    ),
    (
        "gate_events_have_their_own_kinds",
        gates::gate_events_have_their_own_kinds,
    ),
    (
        "agent_tasks_get_unique_ids_and_queue_items",
        agent_tasks_get_unique_ids_and_queue_items,
    ),
    (
        "queue_items_finish_once_ended",
        queue_items_finish_once_ended,
    ),
    ("loop_lifecycle", loops::lifecycle),
    ("loop_iterations_count_once", loops::iterations_count_once),
    (
        "loop_resume_and_illegal_ends",
        loops::resume_and_illegal_ends,
    ),
    ("loop_stop_and_listing", loops::stop_and_listing),
    (
        "config_versions_record_changes_once",
        loops::config_versions_record_changes_once,
    ),
    ("loop_cache_tokens_add_up", loops::cache_tokens_add_up),
    ("plan_lifecycle", pipeline::plan_lifecycle),
    ("specs_are_added_once", pipeline::specs_are_added_once),
    (
        "phases_are_numbered_and_added_once",
        pipeline::phases_are_numbered_and_added_once,
    ),
    (
        "ready_specs_follow_dependencies_and_priority",
        pipeline::ready_specs_follow_dependencies_and_priority,
    ),
    (
        "cancel_and_resume_cascade",
        pipeline::cancel_and_resume_cascade,
    ),
    ("pipeline_costs_roll_up", pipeline::costs_roll_up),
    (
        "pipeline_loop_iterations_are_charged_once",
        pipeline::loop_iterations_are_charged_once,
    ),
    (
        "messages_are_delivered_answered_or_dead",
        pipeline::messages_are_delivered_answered_or_dead,
    ),
    (
        "broadcasts_are_delivered_per_recipient",
        pipeline::broadcasts_are_delivered_per_recipient,
    ),
    (
        "an_answer_reaches_the_asker_once",
        pipeline::an_answer_reaches_the_asker_once,
    ),
    (
        "repair_removes_pipeline_orphans",
        pipeline::repair_removes_pipeline_orphans,
    ),
    (
        "claims_are_fifo_and_exclusive",
        claim::claims_are_fifo_and_exclusive,
    ),
    (
        "completion_is_fenced_by_the_lease",
        claim::completion_is_fenced_by_the_lease,
    ),
    (
        "expired_leases_use_up_attempts",
        claim::expired_leases_use_up_attempts,
    ),
    (
        "failed_attempts_retry_then_fail",
        claim::failed_attempts_retry_then_fail,
    ),
    (
        "heartbeats_renew_leases_and_carry_stops",
        claim::heartbeats_renew_leases_and_carry_stops,
    ),
    ("waiters_wake_on_submit", claim::waiters_wake_on_submit),
    (
        "a_commit_during_a_pause_is_seen_by_the_next_wait",
        claim::a_commit_during_a_pause_is_seen_by_the_next_wait,
    ),
    (
        "claims_and_completions_wake_event_waiters",
        claim::claims_and_completions_wake_event_waiters,
    ),
    (
        "batch_events_reach_the_feed_in_order",
        claim::batch_events_reach_the_feed_in_order,
    ),
    (
        "batch_claims_are_fifo_and_short_when_few_wait",
        claim::batch_claims_are_fifo_and_short_when_few_wait,
    ),
    (
        "claims_from_several_queues_are_fifo_across_them",
        claim::claims_from_several_queues_are_fifo_across_them,
    ),
    (
        "batch_claim_events_are_searchable",
        claim::batch_claim_events_are_searchable,
    ),
    (
        "concurrent_batch_claimers_never_share_a_task",
        claim::concurrent_batch_claimers_never_share_a_task,
    ),
    (
        "batch_completion_records_each_end",
        claim::batch_completion_records_each_end,
    ),
    (
        "queue_items_filter_by_queue_and_status",
        queue_items_filter_by_queue_and_status,
    ),
    (
        "event_waiters_wake_on_any_event",
        event_waiters_wake_on_any_event,
    ),
    (
        "a_new_plan_wakes_event_waiters",
        a_new_plan_wakes_event_waiters,
    ),
    ("kind_counts_count_every_kind", kind_counts_count_every_kind),
    ("task_pages_filter_and_page", task_pages_filter_and_page),
    ("finished_tasks_page_by_time", finished_tasks_page_by_time),
];

/// Ended tasks since a time, with their queue, paged by UUID.
fn finished_tasks_page_by_time(store: &dyn Store) {
    let open = store.create_process(&spec(None, &["true"]), "t").unwrap();
    let ended = store.create_process(&spec(None, &["true"]), "t").unwrap();
    store
        .mark_started(&ended.id, 0, &started(100), "t")
        .unwrap();
    store
        .record_exit(&ended.id, 100, ExitOutcome::exited(3), None, "t")
        .unwrap();
    let queued = store.submit(&agent("build", "job.md"), "t").unwrap();
    store.request_stop(&queued.id, "t").unwrap();
    let all = store.finished_tasks(0, "", 10).unwrap();
    let ids: Vec<&str> = all.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        ids,
        [ended.id.as_str(), queued.id.as_str()],
        "{open:?} is open"
    );
    assert_eq!(all[0].status, Status::Failed);
    assert!(all[0].started_at.is_some() && all[0].queue.is_none());
    assert_eq!(
        (all[1].queue.as_deref(), all[1].kind),
        (Some("build"), TaskKind::Agent)
    );
    let rest = store.finished_tasks(0, &all[0].uuid, 10).unwrap();
    assert_eq!(rest.len(), 1);
    let later = all[1].finished_at + 1;
    assert!(store.finished_tasks(later, "", 10).unwrap().is_empty());
}

/// Every task kind in one listing: each filter, newest first, by cursor.
fn task_pages_filter_and_page(store: &dyn Store) {
    use crate::TaskPageFilter;
    let mut labelled = tracked::tracked("labelled", &[]);
    labelled.labels = vec!["ui".to_owned()];
    labelled.tool = Some("claude".to_owned());
    labelled.session = Some("s-1".to_owned());
    let manual = store.create_tracked(&labelled, "t").unwrap();
    let queued = store.create_agent(&agent("build", "job.md"), "t").unwrap();
    let other_queue = store.create_agent(&agent("test", "other.md"), "t").unwrap();
    let ids = |filter: TaskPageFilter| -> Vec<String> {
        store
            .task_page(&TaskPageFilter {
                limit: 10,
                ..filter
            })
            .unwrap()
            .into_iter()
            .map(|t| t.id)
            .collect()
    };
    assert_eq!(
        ids(TaskPageFilter::default()),
        [other_queue.id.clone(), queued.id.clone(), manual.id.clone()],
        "newest first"
    );
    let by_queue = TaskPageFilter {
        queue: Some("build".into()),
        ..Default::default()
    };
    assert_eq!(ids(by_queue), [queued.id.as_str()]);
    let by_label = TaskPageFilter {
        label: Some("ui".into()),
        ..Default::default()
    };
    assert_eq!(ids(by_label), [manual.id.as_str()]);
    let by_kind = TaskPageFilter {
        kind: Some(TaskKind::Agent),
        ..Default::default()
    };
    assert_eq!(ids(by_kind).len(), 2);
    let by_tool_and_session = TaskPageFilter {
        tool: Some("claude".into()),
        session: Some("s-1".into()),
        status: Some(Status::Pending),
        ..Default::default()
    };
    assert_eq!(ids(by_tool_and_session), [manual.id.as_str()]);
    let by_id = TaskPageFilter {
        id: Some(queued.id.clone()),
        ..Default::default()
    };
    assert_eq!(ids(by_id), [queued.id.as_str()]);
    let first = store
        .task_page(&TaskPageFilter {
            limit: 1,
            ..Default::default()
        })
        .unwrap();
    let after = TaskPageFilter {
        before_uuid: Some(first[0].uuid.to_string()),
        ..Default::default()
    };
    assert_eq!(
        ids(after),
        [queued.id.as_str(), manual.id.as_str()],
        "the cursor continues"
    );
    label_pages_combine_with_other_filters(store, &manual);
}

/// A label page (which SQLite starts from the label index) is newest first,
/// pages by cursor, and still honours every other filter.
fn label_pages_combine_with_other_filters(store: &dyn Store, older: &TaskRecord) {
    use crate::TaskPageFilter;
    let mut second = tracked::tracked("labelled too", &[]);
    second.labels = vec!["ui".to_owned(), "db".to_owned()];
    let newer = store.create_tracked(&second, "t").unwrap();
    let page = |filter: TaskPageFilter| -> Vec<String> {
        let filter = TaskPageFilter {
            label: Some("ui".into()),
            ..filter
        };
        let tasks = store.task_page(&filter).unwrap();
        tasks.into_iter().map(|t| t.id).collect()
    };
    let first = page(TaskPageFilter {
        limit: 1,
        ..Default::default()
    });
    assert_eq!(first, [newer.id.as_str()], "the newest labelled task first");
    let rest = page(TaskPageFilter {
        limit: 10,
        before_uuid: Some(newer.uuid.to_string()),
        ..Default::default()
    });
    assert_eq!(
        rest,
        [older.id.as_str()],
        "the label page's cursor continues"
    );
    let agents = page(TaskPageFilter {
        limit: 10,
        kind: Some(TaskKind::Agent),
        ..Default::default()
    });
    assert!(agents.is_empty(), "label and kind both apply: {agents:?}");
    let full = store.task_page(&TaskPageFilter {
        limit: 10,
        label: Some("ui".into()),
        ..Default::default()
    });
    assert_eq!(
        full.unwrap()[0].labels,
        ["db", "ui"],
        "every label is listed"
    );
}

/// Every record `store` exports, in order.
pub fn export_all(store: &dyn Store) -> Vec<ExportRecord> {
    let mut records = Vec::new();
    store
        .export(&mut |record| {
            records.push(record);
            Ok(())
        })
        .unwrap();
    records
}

/// Imports everything `from` exports into the empty store `to`.
pub fn copy(from: &dyn Store, to: &dyn Store) -> ImportReport {
    let mut importer = to.begin_import().unwrap();
    for record in export_all(from) {
        importer.add(record).unwrap();
    }
    importer.finish().unwrap()
}

/// The tracked tasks [`fill_for_export`] made: `second` depends on `first`,
/// which ended last.
pub struct Filled {
    pub first: TaskRecord,
    pub second: TaskRecord,
}

/// Fills `store` with a bit of everything an export carries: two tracked
/// tasks with a dependency, files and a keyed memory, a process, what
/// `extras` adds, then half of the history archived and one more change
/// after that (both halves must travel).
pub fn fill_for_export(store: &dyn Store, extras: impl FnOnce(&dyn Store)) -> Filled {
    let first = store
        .create_tracked(&tracked::tracked("first", &[]), "t")
        .unwrap();
    let second = store
        .create_tracked(&tracked::tracked("second", &[&first.id]), "t")
        .unwrap();
    // A gate already open: it travels with the export and changes nothing.
    store
        .add_gates(&first.id, &[taskdaemon_core::gate::NewGate::Until(1)], "t")
        .unwrap();
    store
        .act_on_tracked(&first.id, &TrackedAction::Start, "t")
        .unwrap();
    store
        .add_task_files(&first.id, &["b.rs".to_owned(), "a.rs".to_owned()], "t")
        .unwrap();
    // Typed links, a subtask and a claim travel too.
    let child = store
        .create_tracked(
            &taskdaemon_core::NewTracked {
                parent: Some(second.id.clone()),
                ..tracked::tracked("child", &[])
            },
            "t",
        )
        .unwrap();
    store
        .link_tasks(
            &child.id,
            taskdaemon_core::LinkKind::WaitsFor,
            &first.id,
            "t",
        )
        .unwrap();
    store
        .link_tasks(
            &second.id,
            taskdaemon_core::LinkKind::Related,
            &first.id,
            "t",
        )
        .unwrap();
    let claimed = store
        .create_tracked(&tracked::tracked("claimed", &[]), "t")
        .unwrap();
    store
        .claim_tracked(Some(&claimed.id), "cli:s-1", 60_000, "t")
        .unwrap();
    let decision = NewMemory {
        kind: MemoryKind::Decision,
        text: "keep SQLite as default".to_owned(),
        task_id: Some(second.id.clone()),
        key: Some("db".to_owned()),
        session: Some("s-1".to_owned()),
    };
    store.remember(&decision, "t").unwrap();
    store
        .create_process(&spec(Some("claude"), &["sleep", "1"]), "t")
        .unwrap();
    let boxed = NewProcess {
        container: Some(taskdaemon_core::ContainerSpec::image("img:1")),
        ..spec(None, &["true"])
    };
    let boxed = store.create_process(&boxed, "t").unwrap();
    store.set_container_id(&boxed.id, "c0ffee").unwrap();
    extras(store);
    store
        .archive_events(taskdaemon_core::time::now_millis() + 1)
        .unwrap();
    let done = TrackedAction::Done {
        note: Some("ok".into()),
    };
    let first = store.act_on_tracked(&first.id, &done, "t").unwrap();
    Filled { first, second }
}

/// Creates `each` processes from each of `threads` threads, every thread
/// on a store of its own from `open`; returns the ids, sorted, each once.
pub fn create_concurrently(
    threads: usize,
    each: usize,
    open: &(dyn Fn() -> Box<dyn Store> + Sync),
) -> Vec<String> {
    let mut ids: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let store = open();
                    (0..each)
                        .map(|_| store.create_process(&spec(None, &["x"]), "t").unwrap().id)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    ids.sort();
    ids.dedup();
    ids
}

/// A process spec for tests.
pub fn spec(tool: Option<&str>, argv: &[&str]) -> NewProcess {
    NewProcess {
        tool: tool.map(str::to_owned),
        name: None,
        session: None,
        argv: argv.iter().map(|s| (*s).to_owned()).collect(),
        cwd: "/".to_owned(),
        env: vec![("K".to_owned(), "V".to_owned())],
        restart: RestartPolicy::default(),
        hang_timeout_ms: None,
        limits: Default::default(),
        container: None,
    }
}

/// An agent spec for tests: document `document` of queue `queue`.
pub fn agent(queue: &str, document: &str) -> NewAgent {
    NewAgent {
        wanted_id: document.trim_end_matches(".md").to_owned(),
        queue: queue.to_owned(),
        document: document.to_owned(),
        executor: "command".to_owned(),
        argv: vec!["sh".to_owned(), "-c".to_owned(), "true".to_owned()],
        cwd: "/".to_owned(),
        env: Vec::new(),
        restart: RestartPolicy {
            mode: RestartMode::OnFailure,
            max_restarts: 2,
            initial_backoff: Duration::from_millis(10),
        },
        max_attempts: 3,
        timeout_ms: Some(5000),
        limits: Default::default(),
        container: None,
    }
}

/// Identities for a fake start with command pid `pid`.
pub fn started(pid: i32) -> Started {
    let identity = |pid| ProcessIdentity {
        boot_id: "boot".to_owned(),
        pid,
        start_time: 1000 + pid as u64,
    };
    Started {
        process: identity(pid),
        pgid: pid,
        shim: identity(pid + 1),
    }
}

fn ids_share_one_counter(store: &dyn Store) {
    let a = store
        .create_process(&spec(Some("claude"), &["a"]), "t")
        .unwrap();
    let b = store
        .create_process(&spec(Some("gemini"), &["b"]), "t")
        .unwrap();
    let c = store.create_process(&spec(None, &["c"]), "t").unwrap();
    assert_eq!(
        [a.id.as_str(), b.id.as_str(), c.id.as_str()],
        ["CLAUDE-1", "GEMINI-2", "TASK-3"]
    );
    assert_eq!(
        store.task("claude-1").unwrap().id,
        "CLAUDE-1",
        "lookup ignores case"
    );
    assert_eq!(a.status, Status::Pending);
    assert_eq!(a.env, vec![("K".to_owned(), "V".to_owned())]);
    assert!(matches!(
        store.task("TASK-99"),
        Err(StoreError::NotFound(_))
    ));
}

fn container_spec_and_id_are_kept(store: &dyn Store) {
    let container = taskdaemon_core::ContainerSpec {
        image: "localhost/busybox:td".into(),
        engine: "unix:///tmp/engine.sock".into(),
        mounts: vec!["/host:/data:ro".parse().unwrap()],
        env: vec![("A".into(), "b".into())],
        workdir: Some("/data".into()),
        name: Some("db".into()),
        keep: true,
    };
    let spec = NewProcess {
        container: Some(container.clone()),
        ..spec(None, &["sh", "-c", "exit 3"])
    };
    let task = store.create_process(&spec, "cli").unwrap();
    assert_eq!(task.container.as_ref(), Some(&container));
    assert_eq!(task.mode(), taskdaemon_core::ExecMode::Container);
    assert_eq!(task.container_id, None);
    let set = store.set_container_id(&task.id, "abc123").unwrap();
    assert_eq!(set.container_id.as_deref(), Some("abc123"));
    let read = store.task(&task.id).unwrap();
    assert_eq!(read.container, Some(container));
    assert_eq!(read.container_id.as_deref(), Some("abc123"));
    let plain = store.create_process(&spec_plain(), "cli").unwrap();
    assert_eq!(plain.mode(), taskdaemon_core::ExecMode::Process);
    assert!(matches!(
        store.set_container_id("NOPE-1", "x"),
        Err(crate::StoreError::NotFound(_))
    ));
}

fn spec_plain() -> NewProcess {
    spec(None, &["true"])
}

fn limits_are_kept_and_a_limit_exit_has_its_reason(store: &dyn Store) {
    let limits = taskdaemon_core::ResourceLimits {
        max_memory: Some(64 << 20),
        max_cpu_time_ms: Some(60_000),
        max_files: Some(32),
        nice: Some(-3),
    };
    let limited = NewProcess {
        limits,
        container: None,
        ..spec(None, &["hog"])
    };
    let task = store.create_process(&limited, "cli").unwrap();
    assert_eq!(store.task(&task.id).unwrap().limits, limits);
    let plain = store.create_process(&spec(None, &["ok"]), "cli").unwrap();
    assert!(plain.limits.is_empty());
    let agent = NewAgent {
        limits,
        container: None,
        ..agent("q", "task-l.md")
    };
    let queued = store.create_agent(&agent, "worker").unwrap();
    assert_eq!(queued.limits, limits);

    store
        .mark_started(&task.id, 0, &started(900), "shim")
        .unwrap();
    let reason = "killed: over its memory limit (--max-memory 64M, resident 70M)";
    let recorded = store
        .record_exit(
            &task.id,
            900,
            ExitOutcome::signalled(9),
            Some(reason),
            "shim",
        )
        .unwrap();
    assert_eq!(recorded.task.status, Status::Failed);
    assert_eq!(recorded.task.error.as_deref(), Some(reason));
    let exited = store.events_after(0, &[EventKind::Exited], 10).unwrap();
    assert!(
        exited.last().unwrap().message.ends_with(reason),
        "{exited:?}"
    );
}

fn lifecycle_appends_one_event_per_change(store: &dyn Store) {
    let task = store
        .create_process(&spec(None, &["make", "test"]), "cli")
        .unwrap();
    let running = store
        .mark_started(&task.id, 0, &started(100), "shim")
        .unwrap();
    assert_eq!(running.status, Status::Running);
    assert_eq!(
        (running.pid, running.pgid, running.shim_pid),
        (Some(100), Some(100), Some(101))
    );
    assert_eq!(running.process_identity().unwrap().start_time, 1100);
    let recorded = store
        .record_exit(&task.id, 100, ExitOutcome::exited(0), None, "shim")
        .unwrap();
    assert_eq!(recorded.decision, ExitDecision::Finish(Status::Succeeded));
    assert_eq!(recorded.task.status, Status::Succeeded);
    assert_eq!(recorded.task.exit_code, Some(0));
    assert!(recorded.task.finished_at.is_some());

    let events = store.events_after(0, &[], 100).unwrap();
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [EventKind::Created, EventKind::Started, EventKind::Exited]
    );
    assert_eq!(events[1].actor, "shim");
    assert_eq!(events[1].before.as_ref().unwrap()["status"], "pending");
    assert_eq!(events[1].after.as_ref().unwrap()["status"], "running");
    assert_eq!(events[1].after.as_ref().unwrap()["pid"], 100);
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(store.last_event_seq().unwrap(), events[2].seq);
}

/// An exit a shim saw carries its detection instant into the event, and
/// `exit_timings` returns one timing per such exit (restarts included), none
/// for exits reported without one.
fn detected_exits_keep_their_timing(store: &dyn Store) {
    let mut flaky = spec(None, &["flaky"]);
    flaky.restart = RestartPolicy {
        mode: RestartMode::OnFailure,
        max_restarts: 1,
        initial_backoff: Duration::from_millis(10),
    };
    let task = store.create_process(&flaky, "t").unwrap();
    let plain = store.create_process(&spec(None, &["x"]), "t").unwrap();
    store
        .mark_started(&plain.id, 0, &started(610), "t")
        .unwrap();
    store
        .record_exit(&plain.id, 610, ExitOutcome::exited(0), None, "t")
        .unwrap();
    assert!(store.exit_timings().unwrap().is_empty());

    let before = taskdaemon_core::time::now_micros();
    let exit = |pid, code| crate::DetectedExit {
        pid,
        outcome: ExitOutcome::exited(code),
        reason: None,
        exited_at_us: before - 1_500,
    };
    store.mark_started(&task.id, 0, &started(600), "t").unwrap();
    let first = store
        .record_detected_exit(&task.id, &exit(600, 2), "shim")
        .unwrap();
    assert_eq!(first.task.status, Status::Pending);
    store.mark_started(&task.id, 1, &started(601), "t").unwrap();
    let second = store
        .record_detected_exit(&task.id, &exit(601, 0), "shim")
        .unwrap();
    assert_eq!(second.task.status, Status::Succeeded);
    let err = store
        .record_detected_exit(&task.id, &exit(601, 0), "shim")
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");

    let timings = store.exit_timings().unwrap();
    assert_eq!(timings.len(), 2, "{timings:?}");
    let after = taskdaemon_core::time::now_micros();
    for timing in &timings {
        assert_eq!(timing.exited_at_us, before - 1_500);
        assert!(
            (before..=after).contains(&timing.recorded_at_us),
            "{timing:?}"
        );
        assert!(
            timing.latency() >= Duration::from_micros(1_500),
            "{timing:?}"
        );
    }
    let events = store
        .events_after(0, &[EventKind::Restarting, EventKind::Exited], 100)
        .unwrap();
    let last = events.last().unwrap().after.clone().unwrap();
    assert_eq!(last["exited_at_us"], before - 1_500, "{last}");
    assert_eq!(last["status"], "succeeded", "{last}");
}

fn exit_of_another_pid_is_refused(store: &dyn Store) {
    let task = store.create_process(&spec(None, &["x"]), "t").unwrap();
    store.mark_started(&task.id, 0, &started(200), "t").unwrap();
    let err = store
        .record_exit(&task.id, 999, ExitOutcome::exited(1), None, "t")
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_eq!(store.task(&task.id).unwrap().status, Status::Running);
}

fn restart_policy_reopens_until_exhausted(store: &dyn Store) {
    let mut spec = spec(None, &["flaky"]);
    spec.restart = RestartPolicy {
        mode: RestartMode::OnFailure,
        max_restarts: 1,
        initial_backoff: Duration::from_millis(10),
    };
    let task = store.create_process(&spec, "t").unwrap();
    store.mark_started(&task.id, 0, &started(300), "t").unwrap();
    let first = store
        .record_exit(&task.id, 300, ExitOutcome::exited(2), None, "t")
        .unwrap();
    assert!(matches!(
        first.decision,
        ExitDecision::Restart { restart: 1, .. }
    ));
    assert_eq!(first.task.status, Status::Pending);
    assert_eq!(first.task.restarts, 1);
    assert_eq!(first.task.exit_code, Some(2));
    store.mark_started(&task.id, 1, &started(310), "t").unwrap();
    let second = store
        .record_exit(&task.id, 310, ExitOutcome::signalled(9), None, "t")
        .unwrap();
    assert_eq!(second.decision, ExitDecision::Finish(Status::Failed));
    assert_eq!((second.task.exit_code, second.task.signal), (None, Some(9)));
}

fn start_is_fenced_by_restart_count(store: &dyn Store) {
    let task = store.create_process(&spec(None, &["x"]), "t").unwrap();
    let err = store
        .mark_started(&task.id, 5, &started(400), "t")
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_eq!(store.task(&task.id).unwrap().status, Status::Pending);
}

fn stop_requests(store: &dyn Store) {
    let pending = store.create_process(&spec(None, &["p"]), "t").unwrap();
    assert_eq!(
        store.request_stop(&pending.id, "t").unwrap().status,
        Status::Cancelled
    );

    let running = store.create_process(&spec(None, &["r"]), "t").unwrap();
    store
        .mark_started(&running.id, 0, &started(500), "t")
        .unwrap();
    let flagged = store.request_stop(&running.id, "t").unwrap();
    assert_eq!(flagged.status, Status::Running);
    assert!(flagged.stop_requested);
    let ended = store
        .record_exit(&running.id, 500, ExitOutcome::signalled(15), None, "t")
        .unwrap();
    assert_eq!(ended.task.status, Status::Cancelled);

    let err = store.request_stop(&running.id, "t").unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
}

/// `stop_requested` is a flag: every event records it as `true`/`false`,
/// like [`taskdaemon_core::TaskRecord::stop_requested`], never as the `1`
/// or `0` a backend may store.
fn stop_flag_is_recorded_as_a_boolean(store: &dyn Store) {
    let pending = store.create_process(&spec(None, &["p"]), "t").unwrap();
    store.request_stop(&pending.id, "t").unwrap();
    let running = store.create_process(&spec(None, &["r"]), "t").unwrap();
    store
        .mark_started(&running.id, 0, &started(520), "t")
        .unwrap();
    store.request_stop(&running.id, "t").unwrap();
    store
        .record_exit(&running.id, 520, ExitOutcome::signalled(15), None, "t")
        .unwrap();
    store.reopen_for_restart(&running.id, "t").unwrap();
    let flag = |kind: EventKind, task: &str| {
        let events = store.events_after(0, &[kind], 100).unwrap();
        let event = events
            .iter()
            .find(|e| e.task_id.as_deref() == Some(task))
            .unwrap_or_else(|| panic!("no {kind:?} event for {task}"));
        event.after.as_ref().unwrap()["stop_requested"].clone()
    };
    assert_eq!(
        flag(EventKind::Exited, &pending.id),
        serde_json::json!(true)
    );
    assert_eq!(
        flag(EventKind::StopRequested, &running.id),
        serde_json::json!(true)
    );
    assert_eq!(
        flag(EventKind::RestartRequested, &running.id),
        serde_json::json!(false)
    );
}

fn reopen_and_lost(store: &dyn Store) {
    let task = store.create_process(&spec(None, &["x"]), "t").unwrap();
    store.mark_started(&task.id, 0, &started(600), "t").unwrap();
    let err = store.reopen_for_restart(&task.id, "t").unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let lost = store.mark_lost(&task.id, "vanished", "daemon").unwrap();
    assert_eq!(lost.status, Status::Lost);
    assert_eq!(lost.error.as_deref(), Some("vanished"));
    let reopened = store.reopen_for_restart(&task.id, "t").unwrap();
    assert_eq!(reopened.status, Status::Pending);
    assert_eq!(reopened.restarts, 1);
    assert!(!reopened.stop_requested);
    let restarted = store.mark_started(&task.id, 1, &started(610), "t").unwrap();
    assert_eq!(restarted.exit_code, None, "a new start clears the old exit");
    assert_eq!(restarted.error, None);
}

fn illegal_changes_leave_no_trace(store: &dyn Store) {
    let task = store.create_process(&spec(None, &["x"]), "t").unwrap();
    let before = store.last_event_seq().unwrap();
    let err = store.mark_lost(&task.id, "nope", "t").unwrap_err();
    assert!(matches!(err, StoreError::IllegalTransition(_)), "{err}");
    assert_eq!(
        err.to_string(),
        format!("illegal status change for {}: pending -> lost", task.id)
    );
    assert_eq!(
        store.last_event_seq().unwrap(),
        before,
        "no event for a refused change"
    );
    assert_eq!(store.task(&task.id).unwrap().status, Status::Pending);
}

fn listings_filter_and_page(store: &dyn Store) {
    let claude = store
        .create_process(&spec(Some("claude"), &["a"]), "t")
        .unwrap();
    let other = store.create_process(&spec(None, &["b"]), "t").unwrap();
    store
        .mark_started(&other.id, 0, &started(700), "t")
        .unwrap();
    store
        .record_exit(&other.id, 700, ExitOutcome::exited(0), None, "t")
        .unwrap();
    let third = store
        .create_process(&spec(Some("claude"), &["c"]), "t")
        .unwrap();

    let live: Vec<String> = store
        .processes(&ProcessFilter::default())
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(live, [claude.id.clone(), third.id.clone()]);
    let all = store
        .processes(&ProcessFilter {
            all: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(all.len(), 3);
    let claude_only = store
        .processes(&ProcessFilter {
            all: true,
            tool: Some("claude".to_owned()),
            limit: None,
        })
        .unwrap();
    assert!(
        claude_only
            .iter()
            .all(|t| t.tool.as_deref() == Some("claude"))
    );
    assert_eq!(claude_only.len(), 2);
    let newest: Vec<String> = store
        .processes(&ProcessFilter {
            all: true,
            tool: None,
            limit: Some(2),
        })
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(newest, [other.id, third.id], "the newest two, oldest first");

    let counts = store.status_counts().unwrap();
    let count = |s| counts.iter().find(|(c, _)| *c == s).map_or(0, |(_, n)| *n);
    assert_eq!((count(Status::Pending), count(Status::Succeeded)), (2, 1));
}

/// What [`Store::newest_event_tasks`] must return, taken from the events
/// [`Store::newest_events_after`] reads whole.
fn event_tasks_read_whole(
    store: &dyn Store,
    after: i64,
    kinds: &[EventKind],
    limit: usize,
) -> Vec<crate::EventTask> {
    store
        .newest_events_after(after, kinds, limit)
        .unwrap()
        .into_iter()
        .map(|e| crate::EventTask {
            seq: e.seq,
            task_id: e.task_id,
        })
        .collect()
}

fn events_filter_by_kind(store: &dyn Store) {
    let task = store.create_process(&spec(None, &["x"]), "t").unwrap();
    store
        .append_event(
            Some(&task.id),
            &NewEvent::new(EventKind::Alert, "watchdog", "hung?"),
        )
        .unwrap();
    store
        .append_event(
            None,
            &NewEvent::new(EventKind::Alert, "daemon", "disk full"),
        )
        .unwrap();
    let alerts = store.events_after(0, &[EventKind::Alert], 10).unwrap();
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0].task_id.as_deref(), Some(task.id.as_str()));
    assert_eq!(alerts[1].task_id, None);
    assert_eq!(
        store
            .events_after(alerts[0].seq, &[EventKind::Alert], 10)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store.events_after(0, &[], 1).unwrap().len(),
        1,
        "limit is honoured"
    );
    let err = store
        .append_event(Some("TASK-404"), &NewEvent::new(EventKind::Alert, "t", "x"))
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)));

    // The newest alerts, still oldest first; and tasks fetched by id.
    store
        .append_event(None, &NewEvent::new(EventKind::Alert, "daemon", "third"))
        .unwrap();
    let newest = store
        .newest_events_after(0, &[EventKind::Alert], 2)
        .unwrap();
    let messages: Vec<&str> = newest.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages, ["disk full", "third"]);

    // The same selection narrowed to sequence number and task, for one
    // kind, several, and all.
    store
        .append_event(
            Some(&task.id),
            &NewEvent::new(EventKind::AlertCleared, "watchdog", "fine"),
        )
        .unwrap();
    let narrow = |after, kinds: &[EventKind], limit| {
        let tasks = store.newest_event_tasks(after, kinds, limit).unwrap();
        let whole = event_tasks_read_whole(store, after, kinds, limit);
        assert_eq!(tasks, whole, "after {after}, {kinds:?}, limit {limit}");
        tasks
    };
    let both = [EventKind::Alert, EventKind::AlertCleared];
    let tasks = narrow(0, &both, 3);
    assert_eq!(tasks.len(), 3);
    assert!(tasks.windows(2).all(|w| w[0].seq < w[1].seq), "{tasks:?}");
    assert_eq!(tasks[2].task_id.as_deref(), Some(task.id.as_str()));
    assert_eq!(narrow(0, &[EventKind::Alert], 2).len(), 2);
    assert_eq!(narrow(alerts[0].seq, &[EventKind::Alert], 10).len(), 2);
    assert_eq!(narrow(0, &[], 4).len(), 4);
    assert_eq!(narrow(tasks[2].seq, &both, 10), []);

    // The newest event no task raised with a prefix, among the newest
    // `lookback` of the kinds asked for (merged across kinds).
    let alert = |task: Option<&str>, kind, message: &str| {
        store
            .append_event(task, &NewEvent::new(kind, "daemon", message))
            .unwrap()
    };
    let kinds = [EventKind::Alert, EventKind::AlertCleared];
    let untasked = |prefix: &str, lookback| {
        store
            .newest_untasked_event(&kinds, prefix, lookback)
            .unwrap()
            .map(|e| (e.kind, e.message, e.task_id))
    };
    alert(None, EventKind::Alert, "cfg: broken");
    alert(Some(&task.id), EventKind::Alert, "cfg: raised by a task");
    assert_eq!(
        untasked("cfg:", 10),
        Some((EventKind::Alert, "cfg: broken".to_owned(), None))
    );
    alert(None, EventKind::AlertCleared, "cfg: loads again");
    alert(None, EventKind::Alert, "unrelated");
    let cleared = Some((EventKind::AlertCleared, "cfg: loads again".to_owned(), None));
    assert_eq!(untasked("cfg:", 2), cleared);
    assert_eq!(untasked("cfg:", 1), None, "only the newest is looked at");
    assert_eq!(untasked("nothing", 10), None);
    assert_eq!(
        store
            .newest_untasked_event(&[EventKind::Alert], "cfg:", 10)
            .unwrap()
            .map(|e| e.message),
        Some("cfg: broken".to_owned()),
        "kinds not asked for are left out"
    );
    let other = store.create_process(&spec(None, &["y"]), "t").unwrap();
    let mut found: Vec<String> = store
        .tasks_by_ids(&[other.id.clone(), "TASK-404".to_owned(), task.id.clone()])
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    found.sort();
    assert_eq!(found, [task.id.clone(), other.id.clone()]);
}

/// The ended list: newest end first, one item per task, restarted tasks
/// and running ones left out, bounded by the events it may read; its lines
/// read for any part of it, in that part's order. The running list beside it.
fn newest_ended_lists_each_ended_task_once(store: &dyn Store) {
    let before = store.last_event_seq().unwrap();
    let mut flaky = spec(None, &["flaky", "a b"]);
    flaky.restart = RestartPolicy {
        mode: RestartMode::OnFailure,
        max_restarts: 2,
        initial_backoff: Duration::from_millis(10),
    };
    // Exits twice (restarted in between): one item, with the last exit.
    let twice = store.create_process(&flaky, "t").unwrap();
    store
        .mark_started(&twice.id, 0, &started(700), "t")
        .unwrap();
    store
        .record_exit(&twice.id, 700, ExitOutcome::exited(3), None, "t")
        .unwrap();
    store
        .mark_started(&twice.id, 1, &started(701), "t")
        .unwrap();
    store
        .record_exit(&twice.id, 701, ExitOutcome::exited(0), None, "t")
        .unwrap();
    // Exited, then restarted: pending now, so not ended.
    let again = store.create_process(&flaky, "t").unwrap();
    store
        .mark_started(&again.id, 0, &started(702), "t")
        .unwrap();
    store
        .record_exit(&again.id, 702, ExitOutcome::signalled(9), None, "t")
        .unwrap();
    let failed = store.create_process(&spec(None, &["nope"]), "t").unwrap();
    store
        .record_start_failure(&failed.id, "no such file", "t")
        .unwrap();
    let running = store.create_process(&spec(None, &["up"]), "t").unwrap();
    store
        .mark_started(&running.id, 0, &started(703), "t")
        .unwrap();
    let lost = store.create_process(&spec(None, &["gone"]), "t").unwrap();
    store.mark_started(&lost.id, 0, &started(704), "t").unwrap();
    store.mark_lost(&lost.id, "vanished", "t").unwrap();

    let refs = store.newest_ended(before, 100).unwrap();
    let ref_ids: Vec<&str> = refs.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ref_ids, [&lost.id, &failed.id, &twice.id], "{refs:?}");
    let statuses: Vec<Status> = refs.iter().map(|e| e.status).collect();
    assert_eq!(statuses, [Status::Lost, Status::Failed, Status::Succeeded]);
    let ended = store.ended_items(&refs).unwrap();
    let ids: Vec<&str> = ended.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ref_ids, "{ended:?}");
    // Any part of the list, in the part's order.
    let part = [refs[2].clone(), refs[0].clone()];
    let part_ids: Vec<String> = store
        .ended_items(&part)
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(part_ids, [twice.id.clone(), lost.id.clone()]);
    assert_eq!(store.ended_items(&[]).unwrap(), []);
    let [gone, nope, flaky] = &ended[..] else {
        unreachable!()
    };
    assert_eq!(
        (gone.status, gone.error.as_deref(), gone.exit),
        (Status::Lost, Some("vanished"), None)
    );
    assert_eq!(
        (nope.status, nope.error.as_deref(), nope.command.as_str()),
        (Status::Failed, Some("no such file"), "nope")
    );
    assert_eq!(flaky.status, Status::Succeeded);
    assert_eq!(flaky.exit, Some(ExitOutcome::exited(0)));
    assert_eq!(flaky.command, "flaky 'a b'");
    assert_eq!(flaky.image, None);
    let task = store.task(&twice.id).unwrap();
    assert_eq!(Some(flaky.finished_at), task.finished_at);

    // The limit counts end events (the lost one, the failed start), and
    // only events after the cursor count.
    let newest_two = store.newest_ended(before, 2).unwrap();
    assert_eq!(newest_two.len(), 2);

    // The ends with alerts among them, narrowed to sequence and task, are
    // the same events as read whole (SQLite reads the ends from their own
    // index when every end kind is asked for).
    store
        .append_event(None, &NewEvent::new(EventKind::Alert, "daemon", "late"))
        .unwrap();
    let seen = [
        EventKind::Exited,
        EventKind::Lost,
        EventKind::StartFailed,
        EventKind::Alert,
    ];
    for kinds in [&seen[..], &seen[..3], &seen[1..]] {
        for limit in [1, 3, 100] {
            assert_eq!(
                store.newest_event_tasks(before, kinds, limit).unwrap(),
                event_tasks_read_whole(store, before, kinds, limit),
                "{kinds:?}, limit {limit}"
            );
        }
    }
    let all = store.newest_event_tasks(before, &seen, 100).unwrap();
    let tasks: Vec<Option<&str>> = all.iter().map(|e| e.task_id.as_deref()).collect();
    assert_eq!(
        tasks,
        [Some(&*twice.id), Some(&*failed.id), Some(&*lost.id), None],
        "{all:?}"
    );
    let after = store.last_event_seq().unwrap();
    assert_eq!(store.newest_ended(after, 100).unwrap(), []);

    // What runs: only the started process still running, with its command and pid.
    let running_now: Vec<_> = store
        .running_items()
        .unwrap()
        .into_iter()
        .filter(|r| [&running.id, &again.id, &twice.id].contains(&&r.id))
        .collect();
    assert_eq!(running_now.len(), 1, "{running_now:?}");
    let up = &running_now[0];
    assert_eq!(
        (
            up.id.as_str(),
            up.command.as_str(),
            up.pid,
            up.last_line.as_deref()
        ),
        (running.id.as_str(), "up", Some(703), None)
    );
    assert_eq!(
        Some(up.started_at),
        store.task(&running.id).unwrap().started_at
    );
}

fn meta_and_samples(store: &dyn Store) {
    assert_eq!(store.meta("cursor").unwrap(), None);
    store.set_meta("cursor", "5").unwrap();
    store.set_meta("cursor", "9").unwrap();
    assert_eq!(store.meta("cursor").unwrap().as_deref(), Some("9"));

    let sample = |cpu, rss| Sample {
        task_id: "TASK-1".to_owned(),
        at: 1,
        cpu_percent: cpu,
        rss_kb: rss,
        processes: 2,
    };
    store.record_samples(&[sample(10.0, 100)]).unwrap();
    store.record_samples(&[sample(20.0, 200)]).unwrap();
    assert_eq!(store.samples().unwrap(), vec![sample(20.0, 200)]);
}

fn agent_tasks_get_unique_ids_and_queue_items(store: &dyn Store) {
    let first = store.create_agent(&agent("q", "task-a.md"), "t").unwrap();
    assert_eq!(first.id, "task-a");
    assert_eq!(first.kind, TaskKind::Agent);
    assert_eq!(first.status, Status::Pending);
    assert_eq!(first.restart.max_restarts, 2);
    let again = store.create_agent(&agent("q", "task-a.md"), "t").unwrap();
    assert_eq!(again.id, "task-a~2", "a resubmitted document gets a new id");
    let humanlike = store.create_agent(&agent("q", "task-1.md"), "t").unwrap();
    assert_eq!(humanlike.id, "task-1");
    let process = store.create_process(&spec(None, &["x"]), "t").unwrap();
    assert_eq!(process.id, "TASK-1", "agent tasks do not use the counter");
    assert_eq!(
        store.task("task-1").unwrap().kind,
        TaskKind::Agent,
        "exact id first"
    );
    assert_eq!(store.task("TASK-1").unwrap().kind, TaskKind::Process);
    assert_eq!(store.task("Task-1").unwrap().kind, TaskKind::Process);
    assert!(
        store
            .processes(&ProcessFilter {
                all: true,
                ..Default::default()
            })
            .unwrap()
            .iter()
            .all(|t| t.kind == TaskKind::Process),
        "ps lists processes only"
    );

    let item = store.queue_item("task-a").unwrap();
    assert_eq!(
        (
            item.queue.as_str(),
            item.document.as_str(),
            item.max_attempts
        ),
        ("q", "task-a.md", 3)
    );
    assert_eq!(item.timeout_ms, Some(5000));
    assert!(!item.finished && item.result.is_none());
    store
        .create_agent(&agent("other", "task-b.md"), "t")
        .unwrap();
    let open: Vec<String> = store
        .open_queue_items("q")
        .unwrap()
        .into_iter()
        .map(|i| i.task_id)
        .collect();
    assert_eq!(open, ["task-a", "task-a~2", "task-1"], "oldest first");
    assert!(matches!(
        store.queue_item(&process.id),
        Err(StoreError::NotFound(_))
    ));
    let events = store.events_after(0, &[EventKind::Created], 10).unwrap();
    assert_eq!(events[0].task_id.as_deref(), Some("task-a"));
}

/// A deferred commit is a commit like any other to every reader, its
/// transaction all or nothing; only its sync to the disk waits.
fn deferred_commits_are_commits_and_can_be_made_durable(store: &dyn Store) {
    let task = crate::deferred(|| {
        let task = store.create_agent(&agent("q", "task-d.md"), "t").unwrap();
        store.mark_started(&task.id, 0, &started(900), "t").unwrap();
        let refused = store.mark_started(&task.id, 0, &started(901), "t");
        assert!(
            refused.is_err(),
            "a deferred change is checked the same way"
        );
        task
    });
    assert_eq!(store.task(&task.id).unwrap().status, Status::Running);
    assert_eq!(store.task(&task.id).unwrap().pid, Some(900));
    assert_eq!(store.open_queue_items("q").unwrap()[0].task_id, task.id);
    store.make_durable().unwrap();
    // Commits after a deferred scope are made as before.
    store
        .record_exit(&task.id, 900, ExitOutcome::exited(0), None, "t")
        .unwrap();
    assert_eq!(store.task(&task.id).unwrap().status, Status::Succeeded);
    store.make_durable().unwrap();
}

fn queue_items_finish_once_ended(store: &dyn Store) {
    let task = store.create_agent(&agent("q", "task-x.md"), "t").unwrap();
    let result = serde_json::json!({ "status": "succeeded" });
    let err = store.finish_queue_item(&task.id, &result, "t").unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert!(err.to_string().contains("task-x is pending"), "{err}");
    let unknown = store
        .finish_queue_item("task-none", &result, "t")
        .unwrap_err();
    assert!(matches!(unknown, StoreError::NotFound(_)), "{unknown}");
    store.mark_started(&task.id, 0, &started(800), "t").unwrap();
    let first = store
        .record_exit(&task.id, 800, ExitOutcome::exited(1), None, "t")
        .unwrap();
    assert!(
        matches!(first.decision, ExitDecision::Restart { restart: 1, .. }),
        "a failed attempt is retried under the queue's policy"
    );
    store.mark_started(&task.id, 1, &started(810), "t").unwrap();
    store
        .record_exit(&task.id, 810, ExitOutcome::exited(0), None, "t")
        .unwrap();
    let item = store.finish_queue_item(&task.id, &result, "t").unwrap();
    assert!(item.finished);
    assert_eq!(item.result, Some(result));
    assert!(store.open_queue_items("q").unwrap().is_empty());

    let failed = store.create_agent(&agent("q", "task-y.md"), "t").unwrap();
    store
        .record_start_failure(&failed.id, "malformed", "t")
        .unwrap();
    store
        .finish_queue_item(&failed.id, &serde_json::json!({}), "t")
        .unwrap();
    let open = store.create_agent(&agent("q", "task-z.md"), "t").unwrap();
    let counts = store.queue_counts().unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!(
        (counts[0].done, counts[0].failed, counts[0].open),
        (1, 1, 1),
        "{counts:?}"
    );
    assert_eq!(store.open_queue_items("q").unwrap()[0].task_id, open.id);
}

fn queue_items_filter_by_queue_and_status(store: &dyn Store) {
    use crate::QueueItemFilter;
    store.create_agent(&agent("a", "task-1.md"), "t").unwrap();
    store.submit(&agent("b", "task-2.md"), "t").unwrap();
    store.create_agent(&agent("a", "task-3.md"), "t").unwrap();
    store.request_stop("task-3", "t").unwrap();
    store.create_process(&spec(None, &["x"]), "t").unwrap();
    let ids = |filter: QueueItemFilter| -> Vec<String> {
        store
            .queue_items(&filter)
            .unwrap()
            .into_iter()
            .map(|i| i.task_id)
            .collect()
    };
    assert_eq!(
        ids(QueueItemFilter::default()),
        ["task-1", "task-2", "task-3"],
        "folder and submitted items, oldest first, no process"
    );
    let of_a = QueueItemFilter {
        queue: Some("a".to_owned()),
        ..Default::default()
    };
    assert_eq!(ids(of_a.clone()), ["task-1", "task-3"]);
    assert_eq!(
        ids(QueueItemFilter {
            status: Some(Status::Cancelled),
            ..of_a
        }),
        ["task-3"]
    );
    assert_eq!(
        ids(QueueItemFilter {
            limit: Some(2),
            ..Default::default()
        }),
        ["task-2", "task-3"],
        "a limit keeps the newest"
    );
    let submitted = store.queue_items(&QueueItemFilter {
        queue: Some("b".to_owned()),
        ..Default::default()
    });
    assert!(submitted.unwrap()[0].claimable);
}

fn event_waiters_wake_on_any_event(store: &dyn Store) {
    let mut waiter = store.event_waiter().unwrap();
    std::thread::scope(|scope| {
        let waiting = scope.spawn(move || waiter.wait(Duration::from_secs(10)).unwrap());
        std::thread::sleep(Duration::from_millis(100));
        store
            .append_event(None, &NewEvent::new(EventKind::Alert, "t", "wake up"))
            .unwrap();
        assert!(waiting.join().unwrap(), "an appended event woke the waiter");
    });
}

/// An idle daemon's scheduler sleeps on the event waiter until a plan is
/// written, by whatever process or host writes it.
fn a_new_plan_wakes_event_waiters(store: &dyn Store) {
    let mut waiter = store.event_waiter().unwrap();
    std::thread::scope(|scope| {
        let waiting = scope.spawn(move || waiter.wait(Duration::from_secs(10)).unwrap());
        std::thread::sleep(Duration::from_millis(100));
        store
            .create_plan(&pipeline::new_plan("wake the scheduler", false), "t")
            .unwrap();
        assert!(waiting.join().unwrap(), "a new plan woke the waiter");
    });
}

fn kind_counts_count_every_kind(store: &dyn Store) {
    assert!(store.kind_counts().unwrap().is_empty());
    store.create_process(&spec(None, &["x"]), "t").unwrap();
    store.create_process(&spec(None, &["y"]), "t").unwrap();
    store.submit(&agent("q", "task-1.md"), "t").unwrap();
    store
        .create_tracked(&tracked::tracked("t", &[]), "t")
        .unwrap();
    let mut counts = store.kind_counts().unwrap();
    counts.sort_by_key(|(kind, _)| kind.as_str());
    assert_eq!(
        counts,
        [
            (TaskKind::Agent, 1),
            (TaskKind::Manual, 1),
            (TaskKind::Process, 2)
        ]
    );
}
