//! A real workspace (SQLite file, config, folders) in a temporary directory,
//! filled with one of everything the TUI shows: processes, tracked work with
//! dependencies and a decision, a queue task with a result, a loop with an
//! iteration, and the events all that wrote.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use taskdaemon_core::process::{ExitOutcome, ProcessIdentity, RestartMode, RestartPolicy};
use taskdaemon_core::queue::NewAgent;
use taskdaemon_core::{LoopIteration, MemoryKind, NewLoop, NewProcess, TrackedAction};
use taskdaemon_llm::{IterationRecord, ProgressLog, Usage};
use taskdaemon_service::{Agent, HistoryQuery, NewTask, Service};
use taskdaemon_store::{Sample, Started};
use taskdaemon_tui::model::Model;
use taskdaemon_workspace::{DEFAULT_CONFIG, Workspace};

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub workspace: Workspace,
    pub service: Service,
}

fn no_restart() -> RestartPolicy {
    RestartPolicy {
        mode: RestartMode::Never,
        max_restarts: 0,
        initial_backoff: Duration::from_millis(10),
    }
}

fn identity(pid: i32) -> ProcessIdentity {
    ProcessIdentity {
        boot_id: "boot".to_owned(),
        pid,
        start_time: 1,
    }
}

impl Fixture {
    /// An empty workspace.
    pub fn empty() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (workspace, _) = Workspace::init(dir.path()).unwrap();
        std::fs::write(workspace.config_path(), DEFAULT_CONFIG).unwrap();
        let service = Service::open(workspace.clone()).unwrap();
        Self {
            dir,
            workspace,
            service,
        }
    }

    /// A workspace holding one of everything.
    pub fn filled() -> Self {
        let fixture = Self::empty();
        fixture.fill();
        fixture
    }

    fn process(&self, name: &str, pid: i32) -> String {
        let store = self.service.store();
        let task = store
            .create_process(
                &NewProcess {
                    tool: None,
                    name: None,
                    session: None,
                    argv: vec!["sh".into(), "-c".into(), name.into()],
                    cwd: "/".into(),
                    env: Vec::new(),
                    restart: no_restart(),
                    hang_timeout_ms: None,
                    limits: Default::default(),
                    container: None,
                },
                "test",
            )
            .unwrap();
        store
            .mark_started(
                &task.id,
                0,
                &Started {
                    process: identity(pid),
                    pgid: pid,
                    shim: identity(pid - 1),
                },
                "test",
            )
            .unwrap();
        task.id
    }

    fn fill(&self) {
        let service = &self.service;
        let store = service.store();
        // TASK-1 runs with a resource sample; TASK-2 failed with exit 3.
        let running = self.process("make serve", 4242);
        store
            .record_samples(&[Sample {
                task_id: running.clone(),
                at: 0,
                cpu_percent: 12.5,
                rss_kb: 20480,
                processes: 2,
            }])
            .unwrap();
        let log = self.workspace.stdout_log(&running);
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        std::fs::write(&log, "listening on :8080\nGET / 200\n").unwrap();
        let failed = self.process("cargo test", 4343);
        store
            .record_exit(&failed, 4343, ExitOutcome::exited(3), None, "test")
            .unwrap();

        // Tracked: TASK-3 in progress, TASK-4 waits for it, TASK-5 ready.
        let agent = Agent::new(None, None).unwrap();
        let task = |title: &str, after: &[&str]| {
            service
                .add_task(
                    &agent,
                    NewTask {
                        title: title.to_owned(),
                        after: after.iter().map(|s| s.to_string()).collect(),
                        ..NewTask::default()
                    },
                )
                .unwrap()
                .id
        };
        let schema = task("Design the schema", &[]);
        task("Write the API", &[&schema]);
        task("Document the endpoints", &[]);
        service.act(&agent, &schema, TrackedAction::Start).unwrap();
        service
            .remember(
                &agent,
                MemoryKind::Decision,
                "Use SQLite for the first release".to_owned(),
                Some(schema.clone()),
                None,
            )
            .unwrap();

        // A queue task that ran and left a result with cost and tokens.
        store
            .create_agent(
                &NewAgent {
                    wanted_id: "fix-typos".to_owned(),
                    queue: "ad-hoc".to_owned(),
                    document: "fix-typos.md".to_owned(),
                    executor: "claude-code".to_owned(),
                    argv: vec!["claude".to_owned()],
                    cwd: "/".to_owned(),
                    env: Vec::new(),
                    restart: no_restart(),
                    max_attempts: 2,
                    timeout_ms: None,
                    limits: Default::default(),
                    container: None,
                },
                "test",
            )
            .unwrap();
        store.request_stop("fix-typos", "test").unwrap();
        store
            .finish_queue_item(
                "fix-typos",
                &serde_json::json!({
                    "task_id": "fix-typos", "queue": "ad-hoc", "status": "cancelled",
                    "attempt": 1, "added_at": null, "started_at": null, "finished_at": null,
                    "duration_ms": 10, "exit_code": null, "session_id": null, "cost_usd": 0.42,
                    "num_turns": 3, "error": null,
                    "tokens": {"input": 1200, "output": 300, "cache_read": 0, "cache_creation": 0}
                }),
                "test",
            )
            .unwrap();

        // A loop at its second iteration; the first failed validation.
        let record = store
            .create_loop(
                &NewLoop {
                    name: Some("login.md".to_owned()),
                    session: None,
                    argv: vec!["loop".into(), "run".into()],
                    workdir: "/".into(),
                    spec: serde_json::json!({"max_iterations": 5}),
                },
                "test",
            )
            .unwrap();
        let id = record.task.id;
        store.mark_loop_running(&id, 1, "test").unwrap();
        store
            .record_loop_iteration(
                &id,
                &LoopIteration {
                    iteration: 1,
                    tool_calls: 4,
                    validation_exit_code: Some(1),
                    passed: false,
                    input_tokens: 5000,
                    output_tokens: 800,
                    cost_usd: 0.03,
                    cache_read_tokens: 0,
                    cache_write_tokens: 0,
                },
                "test",
            )
            .unwrap();
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let path = self.workspace.loop_progress(&id);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        ProgressLog::open(&path)
            .unwrap()
            .append(IterationRecord {
                iteration: 1,
                started_at: at,
                finished_at: at,
                tool_calls: 4,
                tool_names: vec!["write_file".to_owned()],
                tool_rounds_exhausted: false,
                summary: "Wrote the login form".to_owned(),
                validation_exit_code: Some(1),
                validation_timed_out: false,
                validation_output: "test login ... FAILED\n1 failed".to_owned(),
                usage: Usage {
                    input_tokens: 5000,
                    output_tokens: 800,
                    ..Usage::default()
                },
                cost_usd: 0.03,
                llm_calls: 2,
                finished: false,
            })
            .unwrap();
    }

    /// The model as the TUI loads it, with every event in the records.
    pub fn model(&self) -> Model {
        let last = self.service.counters().unwrap().last_event_seq;
        let mut model = Model::load(&self.service, last).unwrap();
        let filter = self
            .service
            .history_filter(&HistoryQuery::default())
            .unwrap();
        let events = self.service.history_page(&filter, 0, 10_000).unwrap();
        model.apply(&self.service, events).unwrap();
        model
    }
}

/// Polls `check` until it holds; panics naming `what` after 30 s.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
