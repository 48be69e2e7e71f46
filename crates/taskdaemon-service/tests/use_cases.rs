//! Every use case of the service on a real SQLite workspace, called as an
//! interface would: no terminal, typed answers, classified errors.

mod common;

use std::time::Duration;

use common::TestWs;
use taskdaemon_core::process::{RestartMode, RestartPolicy};
use taskdaemon_core::{
    MemoryKind, NewAgent, NewEvent, NewProcess, Status, TrackedAction, TrackedEdit,
};
use taskdaemon_service::{
    Agent, ErrorClass, HistoryQuery, LoopRunInput, NewTask, Service, SubmitInput, WorkerState,
};
use taskdaemon_store::{MemoryFilter, TrackedFilter, WorkerInfo};

fn task(title: &str, after: &[&str]) -> NewTask {
    NewTask {
        title: title.to_owned(),
        after: after.iter().map(|s| (*s).to_owned()).collect(),
        ..Default::default()
    }
}

#[test]
fn tracked_work_actions_views_and_snapshot() {
    let ws = TestWs::new();
    let service = ws.service();
    let agent = Agent::new(Some("Claude"), Some("conv-1")).unwrap();
    assert_eq!(
        agent.tool.as_deref(),
        Some("claude"),
        "tools are normalised"
    );
    let first = service
        .add_task(&agent, task("Design the schema", &[]))
        .unwrap();
    assert_eq!(first.id, "CLAUDE-1");
    let second = service
        .add_task(&agent, task("Write queries", &[&first.id]))
        .unwrap();
    assert_eq!(second.status, Status::Blocked);

    // A refused action says why, and is classed as an illegal state (exit 4).
    let refused = service
        .act(&agent, &first.id, TrackedAction::Done { note: None })
        .unwrap_err();
    assert_eq!(refused.class(), ErrorClass::IllegalState);
    assert!(refused.to_string().contains("never started"), "{refused}");
    // A cycle is bad input (exit 2); an unknown id is not found (exit 3).
    let cycle = service
        .add_dependency(&agent, &first.id, &second.id)
        .unwrap_err();
    assert_eq!(cycle.class(), ErrorClass::BadInput, "{cycle}");
    let unknown = service
        .act(&agent, "CLAUDE-99", TrackedAction::Start)
        .unwrap_err();
    assert_eq!(unknown.class(), ErrorClass::NotFound);
    assert_eq!(
        Agent::new(None, Some("  ")).unwrap_err().class(),
        ErrorClass::BadInput
    );

    service
        .act(&agent, &first.id, TrackedAction::Start)
        .unwrap();
    service
        .add_task_files(&agent, &first.id, &["src/schema.sql".to_owned()])
        .unwrap();
    service
        .remember(
            &agent,
            MemoryKind::Decision,
            "WAL mode".to_owned(),
            Some(first.id.clone()),
            None,
        )
        .unwrap();
    let resume = service.resume(Some("conv-1")).unwrap();
    let current = resume.current_task.expect("a task in progress");
    assert_eq!(current.task.id, first.id);
    assert_eq!(current.task.files_modified, ["src/schema.sql"]);
    assert_eq!(current.decisions[0].text, "WAL mode");
    assert!(
        resume.ready.is_empty(),
        "the second task waits for the first"
    );
    assert!(!resume.last_events.is_empty());

    // The seed snapshot was rewritten after the changes.
    let snapshot: serde_json::Value = serde_json::from_slice(
        &std::fs::read(ws.workspace.snapshot_path(service.config())).unwrap(),
    )
    .unwrap();
    assert_eq!(snapshot["current_task"]["id"], first.id.as_str());

    service
        .act(&agent, &first.id, TrackedAction::Done { note: None })
        .unwrap();
    let ready = service.ready(10).unwrap();
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0].id, second.id, "done unblocks the dependent task");
    let edited = service
        .edit_task(
            &agent,
            &second.id,
            &TrackedEdit {
                priority: Some(100),
                add_labels: vec!["api".to_owned()],
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        (edited.priority, edited.labels.clone()),
        (100, vec!["api".to_owned()])
    );
    let labelled = service
        .tracked(&TrackedFilter {
            label: Some("api".to_owned()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(labelled.len(), 1);
    let (shown, decisions) = service.tracked_task(&first.id).unwrap();
    assert_eq!((shown.status, decisions.len()), (Status::Succeeded, 1));

    let ended = service.end_session("conv-1").unwrap();
    assert!(ended.ended_at.is_some());
    assert_eq!(
        service.session(Some("nope")).unwrap_err().class(),
        ErrorClass::NotFound
    );
}

#[test]
fn memory_search_and_history_pages() {
    let ws = TestWs::new();
    let service = ws.service();
    let agent = Agent::default();
    let added = service
        .add_task(&agent, task("Index the archive", &[]))
        .unwrap();
    service
        .remember(
            &agent,
            MemoryKind::Fact,
            "rust".to_owned(),
            None,
            Some("project_type".to_owned()),
        )
        .unwrap();
    service
        .remember(
            &agent,
            MemoryKind::Fact,
            "go".to_owned(),
            None,
            Some("project_type".to_owned()),
        )
        .unwrap();
    let facts = service
        .memories(&MemoryFilter {
            kind: Some(MemoryKind::Fact),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(facts.len(), 1, "a key replaces");
    assert_eq!(facts[0].text, "go");
    let hits = service.search("archive", 10).unwrap();
    assert_eq!(hits[0].id, added.id);

    let filter = service
        .history_filter(&HistoryQuery {
            task: Some(added.id.to_lowercase()),
            ..Default::default()
        })
        .unwrap();
    let page = service.history_page(&filter, 0, 100).unwrap();
    assert!(!page.is_empty());
    assert!(
        page.iter()
            .all(|e| e.task_id.as_deref() == Some(added.id.as_str()))
    );
    let unknown = service
        .history_filter(&HistoryQuery {
            task: Some("TASK-404".to_owned()),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(unknown.class(), ErrorClass::NotFound);
    let (report, _) = service.archive(Duration::from_secs(3600)).unwrap();
    assert_eq!(report.events, 0, "nothing is an hour old");
}

fn process(argv: &[&str]) -> NewProcess {
    NewProcess {
        tool: None,
        name: None,
        session: None,
        argv: argv.iter().map(|s| (*s).to_owned()).collect(),
        cwd: "/".to_owned(),
        env: Vec::new(),
        restart: RestartPolicy::default(),
        hang_timeout_ms: None,
        limits: Default::default(),
        container: None,
    }
}

#[test]
fn processes_rehydrate_and_counters() {
    let ws = TestWs::new();
    let service = ws.service();
    let store = service.store();
    let pending = store
        .create_process(&process(&["sleep", "1"]), "t")
        .unwrap();
    let ended = store.create_process(&process(&["false"]), "t").unwrap();
    store
        .record_start_failure(&ended.id, "no such file", "t")
        .unwrap();
    store
        .append_event(
            Some(&pending.id),
            &NewEvent::new(taskdaemon_core::EventKind::Alert, "t", "no output for 10m"),
        )
        .unwrap();

    let live = service.processes(false, None).unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].task.id, pending.id);
    assert!(live[0].stdout_log.ends_with("stdout.log"));
    assert_eq!(service.processes(true, None).unwrap().len(), 2);
    assert_eq!(
        service
            .processes(false, Some("Bad Tool!"))
            .unwrap_err()
            .class(),
        ErrorClass::BadInput
    );

    let first = service.rehydration(4000, None, false).unwrap();
    assert_eq!(first.input.ended.len(), 1, "{:?}", first.input);
    assert_eq!(first.input.ended[0].id, ended.id);
    assert_eq!(first.input.alerts.len(), 1);
    assert!(first.rendered.markdown.contains(&ended.id));
    let second = service.rehydration(4000, None, false).unwrap();
    assert!(second.input.ended.is_empty(), "what was shown is seen");
    assert!(second.input.alerts.is_empty());

    let counters = service.counters().unwrap();
    assert_eq!(counters.tasks["pending"], 1);
    assert_eq!(counters.tasks["failed"], 1);
    assert_eq!(counters.tasks["running"], 0, "every status is present");
    assert_eq!(counters.kinds["process"], 2);
    assert_eq!(counters.kinds["loop"], 0, "every kind is present");
    assert!(counters.last_event_seq >= 4);
    let status = service.status(true).unwrap();
    assert!(!status.running, "no daemon runs");
    assert_eq!(status.store, ws.workspace.db_path().display().to_string());
    let workers = status.workers.unwrap();
    assert_eq!(
        workers.len(),
        2,
        "the default queues' folder workers (ad-hoc, planned)"
    );
    assert!(workers.iter().all(|w| w.state == WorkerState::Stopped));
}

fn agent_spec(queue: &str, id: &str) -> NewAgent {
    NewAgent {
        wanted_id: id.to_owned(),
        queue: queue.to_owned(),
        document: format!("{id}.md"),
        executor: "command".to_owned(),
        argv: vec!["true".to_owned()],
        cwd: "/".to_owned(),
        env: Vec::new(),
        restart: RestartPolicy {
            mode: RestartMode::OnFailure,
            max_restarts: 1,
            initial_backoff: Duration::from_millis(10),
        },
        max_attempts: 2,
        timeout_ms: None,
        limits: Default::default(),
        container: None,
    }
}

#[test]
fn queue_tasks_submit_queues_and_lost_workers() {
    let ws = TestWs::new();
    let service = ws.service();
    service
        .store()
        .create_agent(&agent_spec("ad-hoc", "task-folder"), "t")
        .unwrap();
    let submitted = service
        .submit(SubmitInput {
            command: Some("echo hi".to_owned()),
            queue: "build".to_owned(),
            id: Some("job-1".to_owned()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(submitted.id, "job-1");
    let bad = service
        .submit(SubmitInput {
            command: Some("true".to_owned()),
            queue: "no spaces".to_owned(),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(bad.class(), ErrorClass::BadInput);

    let all = service.queue_tasks(None, None, None).unwrap();
    let ids: Vec<&str> = all.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["task-folder", "job-1"], "folder and submitted alike");
    assert!(!all[0].submitted && all[1].submitted);
    assert_eq!((all[1].attempt, all[1].max_attempts), (1, 3));
    let build = service.queue_tasks(Some("build"), None, None).unwrap();
    assert_eq!(build.len(), 1);
    service.store().request_stop("task-folder", "t").unwrap();
    let cancelled = service
        .queue_tasks(None, Some(Status::Cancelled), None)
        .unwrap();
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0].id, "task-folder");
    let shown = service.queue_task("job-1").unwrap();
    assert_eq!(shown.queue_item.unwrap().queue, "build");

    let queues = service.queues().unwrap();
    let ids: Vec<&str> = queues.iter().map(|q| q.id.as_str()).collect();
    assert_eq!(ids, ["ad-hoc", "planned"], "the default queues");
    assert_eq!(queues[0].failed, 0);

    // A claiming worker that stops renewing its heartbeat is lost once its
    // lease has passed; one that said goodbye is stopped.
    let store = service.store();
    for id in ["w-lost", "w-gone"] {
        store
            .register_worker(&WorkerInfo {
                id: id.to_owned(),
                host: "h".to_owned(),
                pid: 1,
                queues: vec!["build".to_owned()],
                concurrency: 1,
            })
            .unwrap();
        store
            .set_meta(&taskdaemon_daemon::worker::lease_meta_key(id), "100")
            .unwrap();
    }
    store.stop_worker("w-gone").unwrap();
    common::eventually("the silent worker to be lost", || {
        service
            .claim_worker_rows()
            .unwrap()
            .iter()
            .any(|r| r.worker.as_deref() == Some("w-lost") && r.state == WorkerState::Lost)
    });
    let counters = service.counters().unwrap();
    assert_eq!(counters.workers["lost"], 1);
    assert_eq!(counters.workers["stopped"], 1);
    assert_eq!(counters.queue_depth["build"], 1);
}

#[test]
fn worker_state_rule() {
    use taskdaemon_service::worker_state;
    use taskdaemon_store::WorkerRecord;
    let worker = WorkerRecord {
        id: "w".to_owned(),
        host: "h".to_owned(),
        pid: 1,
        queues: Vec::new(),
        concurrency: 1,
        started_at: 0,
        heartbeat_at: 10_000,
        stopped_at: None,
        running: Vec::new(),
    };
    let lease = Duration::from_secs(2);
    assert_eq!(worker_state(&worker, lease, 12_000), WorkerState::Running);
    assert_eq!(worker_state(&worker, lease, 12_001), WorkerState::Lost);
    let stopped = WorkerRecord {
        stopped_at: Some(11_000),
        ..worker
    };
    assert_eq!(worker_state(&stopped, lease, 99_000), WorkerState::Stopped);
}

#[test]
fn loops_refuse_bad_input_before_any_daemon() {
    let ws = TestWs::new();
    let service = ws.service();
    assert!(service.loops(true).unwrap().is_empty());
    let spec = ws.dir.path().join("SPEC.md");
    std::fs::write(&spec, "do it").unwrap();
    let input = |provider: &str, validate: &str, spec: &std::path::Path| LoopRunInput {
        spec: Some(spec.to_owned()),
        validate: Some(validate.to_owned()),
        max_iterations: Some(3),
        provider: Some(provider.to_owned()),
        workdir: Some(ws.dir.path().to_owned()),
        ..LoopRunInput::default()
    };
    let typed = |name: &str, inputs: &[&str]| LoopRunInput {
        loop_type: Some(name.to_owned()),
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        workdir: Some(ws.dir.path().to_owned()),
        ..LoopRunInput::default()
    };
    for bad in [
        input("nope", "true", &spec),
        input("anthropic", "  ", &spec),
        input("anthropic", "true", &ws.dir.path().join("missing.md")),
        typed("plan", &[]),
        typed("plan", &["goal=x", "plan_file=../outside.md"]),
        typed("plan", &["goal"]),
        typed("nosuchtype", &[]),
        typed("ralph", &[]),
    ] {
        let e = service.loop_run(bad).unwrap_err();
        assert_eq!(e.class(), ErrorClass::BadInput, "{e}");
    }
    assert!(
        !ws.workspace.socket_path().exists(),
        "no daemon was started for bad input"
    );
    assert_eq!(
        service.loop_stop("TASK-1").unwrap_err().class(),
        ErrorClass::NotFound
    );
}

#[test]
fn workspace_less_service_refuses_workspace_views() {
    let ws = TestWs::new();
    let service = taskdaemon_service::Service::open_location(taskdaemon_store::Location::Sqlite(
        ws.workspace.db_path(),
    ))
    .unwrap();
    assert!(service.worker_rows().unwrap().is_empty());
    assert_eq!(
        service.processes(true, None).unwrap_err().class(),
        ErrorClass::BadInput
    );
    assert_eq!(service.counters().unwrap().last_event_seq, 0);
}

#[test]
fn init_and_restart_policy_rules() {
    let dir = tempfile::tempdir().unwrap();
    let (service, created) = taskdaemon_service::Service::init(dir.path()).unwrap();
    assert!(created);
    let workspace = service.workspace().unwrap();
    assert!(workspace.config_path().is_file(), "the default config");
    assert!(workspace.db_path().is_file(), "the store");
    let (_, again) = taskdaemon_service::Service::init(dir.path()).unwrap();
    assert!(!again, "init is safe to repeat");

    use taskdaemon_service::{DEFAULT_MAX_RESTARTS, restart_policy};
    let delay = Duration::from_secs(1);
    assert_eq!(
        restart_policy(RestartMode::Never, Some(5), delay).max_restarts,
        0
    );
    assert_eq!(
        restart_policy(RestartMode::OnFailure, None, delay).max_restarts,
        DEFAULT_MAX_RESTARTS
    );
    assert_eq!(
        restart_policy(RestartMode::Always, Some(7), delay).max_restarts,
        7
    );
}

#[test]
fn loop_type_config_views() {
    let ws = TestWs::new();
    let service = ws.service();
    let builtin = service.config_check(None).unwrap();
    assert_eq!(builtin.file, None);
    assert_eq!(
        builtin.types,
        [
            "phase",
            "pipeline-phase",
            "pipeline-plan",
            "pipeline-spec",
            "plan",
            "ralph",
            "spec"
        ]
    );
    let written = service.config_init(false).unwrap();
    assert!(written.ends_with("taskdaemon.yml"));
    assert_eq!(
        service.config_init(false).unwrap_err().class(),
        ErrorClass::BadInput
    );
    assert!(
        service
            .config_check(None)
            .unwrap()
            .types
            .contains(&"fix-tests".to_owned())
    );
    std::fs::write(&written, "types:\n  a:\n    extends: nope\n").unwrap();
    let e = service.config_check(None).unwrap_err();
    assert_eq!(e.class(), ErrorClass::BadInput);
    assert!(
        e.to_string()
            .contains("taskdaemon.yml:3:5: types.a.extends"),
        "{e}"
    );
    // No daemon has loaded anything yet.
    let status = service.config_status().unwrap();
    assert!(status.version.is_none() && status.alert.is_none());
    assert!(service.config_history(10).unwrap().is_empty());
}

#[test]
fn queue_tasks_carry_the_cost_and_tokens_of_their_result() {
    let ws = TestWs::new();
    let service = ws.service();
    let store = service.store();
    store
        .create_agent(&agent_spec("ad-hoc", "costly"), "t")
        .unwrap();
    store
        .create_agent(&agent_spec("ad-hoc", "unfinished"), "t")
        .unwrap();
    // A result is recorded once the task has ended.
    store.request_stop("costly", "t").unwrap();
    store
        .finish_queue_item(
            "costly",
            &serde_json::json!({
                "task_id": "costly", "queue": "ad-hoc", "status": "succeeded",
                "attempt": 1, "added_at": null, "started_at": null, "finished_at": null,
                "duration_ms": 10, "exit_code": 0, "session_id": "s", "cost_usd": 0.25,
                "num_turns": 2, "error": null,
                "tokens": {"input": 100, "output": 40, "cache_read": 5, "cache_creation": 0}
            }),
            "t",
        )
        .unwrap();
    let tasks = service.queue_tasks(None, None, None).unwrap();
    let costly = tasks.iter().find(|t| t.id == "costly").unwrap();
    assert_eq!(costly.cost_usd, Some(0.25));
    let tokens = costly.tokens.unwrap();
    assert_eq!(
        (tokens.input, tokens.output, tokens.cache_read),
        (100, 40, 5)
    );
    let unfinished = tasks.iter().find(|t| t.id == "unfinished").unwrap();
    assert_eq!((unfinished.cost_usd, unfinished.tokens), (None, None));
    let json = serde_json::to_value(unfinished).unwrap();
    assert!(json.get("cost_usd").is_none(), "no result, no cost: {json}");
}

#[test]
fn daemon_pid_is_the_lock_holders() {
    let ws = TestWs::new();
    let service = ws.service();
    assert_eq!(service.daemon_pid(), None, "no daemon yet");
    // A daemon holds its pid file locked while it runs.
    let path = ws.workspace.pid_file();
    std::fs::write(&path, "4242\n").unwrap();
    assert_eq!(
        service.daemon_pid(),
        None,
        "a pid file nobody holds is stale"
    );
    let file = std::fs::File::open(&path).unwrap();
    file.lock().unwrap();
    assert_eq!(service.daemon_pid(), Some(4242));
    file.unlock().unwrap();
    assert_eq!(service.daemon_pid(), None);
}

#[test]
fn a_compaction_marker_brings_back_what_ended_since() {
    let ws = TestWs::new();
    let service = ws.service();
    let store = service.store();
    let before = store.create_process(&process(&["false"]), "t").unwrap();
    store.record_start_failure(&before.id, "gone", "t").unwrap();
    service.rehydrate(4000, None, false).unwrap();

    let marker = service.mark_compaction(Some("s1")).unwrap();
    assert_eq!(
        service.compaction_marker(Some("s1")).unwrap(),
        Some(marker.clone())
    );
    assert_eq!(service.compaction_marker(Some("other")).unwrap(), None);
    let during = store.create_process(&process(&["nope"]), "t").unwrap();
    store
        .record_start_failure(&during.id, "no such file", "t")
        .unwrap();
    // An ordinary rehydrate in between reports it and marks it seen ...
    let between = service.rehydration(4000, Some("s1"), false).unwrap();
    assert_eq!(between.input.ended.len(), 1);

    // ... and after the compaction it is shown again, the earlier one not.
    let (after, used) = service
        .rehydrate_after_compaction(4000, Some("s1"))
        .unwrap();
    assert_eq!(used, Some(marker));
    assert_eq!(
        after.shown_ids,
        std::slice::from_ref(&during.id),
        "{}",
        after.markdown
    );
    // The marker is used up, and the shared cursor did not move back.
    assert_eq!(service.compaction_marker(Some("s1")).unwrap(), None);
    let (again, none) = service
        .rehydrate_after_compaction(4000, Some("s1"))
        .unwrap();
    assert!(
        none.is_none() && again.shown_ids.is_empty(),
        "{}",
        again.markdown
    );
    assert!(
        service
            .rehydration(4000, None, true)
            .unwrap()
            .input
            .ended
            .is_empty()
    );
}

/// A summary with nothing new to mark seen writes nothing: it opens no
/// write connection (so loads no second schema and never waits for the
/// write lock); the next one that has something new moves the cursor.
#[test]
fn a_quiet_summary_opens_no_write_connection() {
    let ws = TestWs::new();
    let connections = || taskdaemon_store::testing::descriptors_on(&ws.workspace.db_path());
    let failed = |service: &Service, argv| {
        let store = service.store();
        let task = store.create_process(&process(argv), "t").unwrap();
        store.record_start_failure(&task.id, "gone", "t").unwrap();
        task.id
    };
    {
        let service = ws.service();
        let first = failed(&service, &["false"]);
        assert_eq!(
            service.rehydrate(4000, None, false).unwrap().shown_ids,
            [first]
        );
    }
    assert_eq!(connections(), 0);

    let service = ws.service();
    let quiet = service.rehydrate(4000, None, false).unwrap();
    assert!(quiet.shown_ids.is_empty(), "{}", quiet.markdown);
    assert_eq!(
        connections(),
        1,
        "a quiet summary opened a write connection"
    );

    let second = failed(&service, &["nope"]);
    assert_eq!(
        service.rehydrate(4000, None, false).unwrap().shown_ids,
        [second]
    );
    assert!(
        service
            .rehydrate(4000, None, false)
            .unwrap()
            .shown_ids
            .is_empty()
    );
}

/// The summary reads only the ended lines its budget could show, and says
/// exactly what reading them all would: the same Markdown, counts and
/// omitted lines, the same tasks marked seen.
#[test]
fn a_summary_reads_ended_lines_lazily_and_says_the_same() {
    use taskdaemon_core::process::ExitOutcome;
    use taskdaemon_core::rehydrate::Rehydrated;
    use taskdaemon_store::conformance::started;
    let ws = TestWs::new();
    let service = ws.service();
    let store = service.store();
    for n in 0..300 {
        let argv = format!("step-{n}");
        // About a third fail: more failures than one read of a class holds.
        let task = store
            .create_process(&process(&[&argv, "--flag"]), "t")
            .unwrap();
        if n % 4 == 3 {
            store
                .record_start_failure(&task.id, "no such file", "t")
                .unwrap();
        } else {
            let pid = 1000 + n;
            store.mark_started(&task.id, 0, &started(pid), "t").unwrap();
            let code = if n % 11 == 5 { 2 } else { 0 };
            store
                .record_exit(&task.id, pid, ExitOutcome::exited(code), None, "t")
                .unwrap();
        }
    }
    // Lines say how long ago each process ended, and every process's age
    // ticks at its own moment: compare with the ages left out. A tick that
    // changes an age's width between the two summaries can change what
    // fits, so a mismatch is retried.
    let without_ages = |mut rendered: Rehydrated| {
        rendered.markdown = rendered
            .markdown
            .lines()
            .map(|line| line.rsplit_once(", ").map_or(line, |(head, _)| head))
            .collect::<Vec<_>>()
            .join("\n");
        rendered
    };
    for budget in [0, 40, 300, 1500, 5000, 100_000] {
        let mut last = None;
        for _ in 0..5 {
            let lazily = without_ages(service.rehydrate(budget, None, true).unwrap());
            let whole = service.rehydration(budget, None, true).unwrap();
            assert_eq!(whole.input.ended.len(), 300);
            let whole = without_ages(whole.rendered);
            if lazily == whole {
                last = None;
                break;
            }
            last = Some((lazily, whole));
        }
        if let Some((lazily, whole)) = last {
            panic!("budget {budget}: read lazily\n{lazily:?}\nread whole\n{whole:?}");
        }
    }
    let tight = service.rehydrate(300, None, true).unwrap();
    assert!(tight.omitted_lines > 200, "{}", tight.markdown);
    assert!(
        tight
            .markdown
            .contains("## Ended since last rehydrate (300)"),
        "{}",
        tight.markdown
    );
}

#[test]
fn a_log_is_read_by_tail_or_from_an_offset() {
    let ws = TestWs::new();
    let service = ws.service();
    let task = service
        .store()
        .create_process(&process(&["echo"]), "t")
        .unwrap();
    let empty = service.read_log(&task.id, false, Some(5), None).unwrap();
    assert_eq!((empty.text.as_str(), empty.next_offset), ("", 0));
    let path = ws.workspace.stdout_log(&task.id);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "one\ntwo\nthree\n").unwrap();
    let tail = service.read_log(&task.id, false, Some(2), None).unwrap();
    assert_eq!(
        (tail.text.as_str(), tail.offset, tail.next_offset),
        ("two\nthree\n", 4, 14)
    );
    let since = service.read_log(&task.id, false, None, Some(8)).unwrap();
    assert_eq!(since.text, "three\n");
    let past_end = service.read_log(&task.id, false, None, Some(99)).unwrap();
    assert_eq!((past_end.text.as_str(), past_end.next_offset), ("", 14));
    assert_eq!(
        service
            .read_log("TASK-99", false, None, None)
            .unwrap_err()
            .class(),
        ErrorClass::NotFound
    );
}
