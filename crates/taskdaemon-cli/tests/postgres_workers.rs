//! Workers on one PostgreSQL database, through the real binary: three
//! workers with one SIGKILLed mid-run, connections dropped mid-run, an
//! unreachable server, `submit`/`status`/`workers list`, and `migrate`.
//!
//! Needs `TASKDAEMON_TEST_DATABASE_URL` (`.ci/run` sets it); without it the
//! tests that need a server print a loud notice and pass without running.

mod common;

use std::collections::{HashMap, HashSet};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Ws;
use rustix::process::{Pid, Signal, kill_process};
use taskdaemon_core::process::{RestartMode, RestartPolicy};
use taskdaemon_core::{EventKind, NewAgent, Status};
use taskdaemon_store::testing::TestSchema;
use taskdaemon_store::{PgOptions, PgStore, Store};

/// A short task that appends its id to `runs` in `dir`, so every execution
/// (not only every recorded end) can be counted.
fn short_task(dir: &std::path::Path, n: usize) -> NewAgent {
    NewAgent {
        wanted_id: format!("t-{n:04}"),
        queue: "q".to_owned(),
        document: format!("t-{n:04}.md"),
        executor: "command".to_owned(),
        argv: vec![
            "sh".to_owned(),
            "-c".to_owned(),
            "echo \"$TASKDAEMON_TASK_ID\" >> runs".to_owned(),
        ],
        cwd: dir.display().to_string(),
        env: Vec::new(),
        restart: RestartPolicy {
            mode: RestartMode::OnFailure,
            max_restarts: 4,
            initial_backoff: Duration::from_millis(50),
        },
        max_attempts: 5,
        timeout_ms: Some(60_000),
        limits: Default::default(),
        container: None,
    }
}

fn start_worker(ws: &Ws, url: &str, concurrency: &str) -> Child {
    let mut command = ws.command_no_flag(&[
        "worker",
        "--queue",
        "q",
        "--concurrency",
        concurrency,
        "--lease",
        "2s",
    ]);
    command
        .env("TASKDAEMON_DATABASE_URL", url)
        .env("TMPDIR", ws.root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    command.spawn().expect("start a worker")
}

fn finished(store: &dyn Store) -> u64 {
    store
        .queue_counts()
        .unwrap()
        .iter()
        .map(|c| c.done + c.failed)
        .sum()
}

fn wait_all_finished(store: &dyn Store, total: u64, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let done = finished(store);
        if done == total {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {done} of {total} tasks finished in {limit:?}: {:?}",
            store.status_counts().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stop_workers(workers: Vec<Child>) {
    for mut worker in workers {
        if let Some(pid) = Pid::from_raw(worker.id() as i32) {
            let _ = kill_process(pid, Signal::TERM);
        }
        let _ = worker.wait();
    }
}

/// Every task ended once: succeeded, one final `exited` event, its queue
/// item finished; and ran more than once only if an attempt was lost.
fn assert_each_ended_once(store: &dyn Store, dir: &std::path::Path, total: usize) -> usize {
    let counts = store.status_counts().unwrap();
    assert_eq!(
        counts,
        vec![(Status::Succeeded, total as u64)],
        "every task succeeded"
    );
    let mut ends: HashMap<String, usize> = HashMap::new();
    for event in store
        .events_after(0, &[EventKind::Exited], 1_000_000)
        .unwrap()
    {
        *ends.entry(event.task_id.unwrap_or_default()).or_default() += 1;
    }
    assert_eq!(ends.len(), total, "an end for every task");
    assert!(
        ends.values().all(|&n| n == 1),
        "no task ended twice: {:?}",
        ends.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    let runs = std::fs::read_to_string(dir.join("runs")).unwrap();
    let mut executions: HashMap<&str, usize> = HashMap::new();
    for line in runs.lines() {
        *executions.entry(line).or_default() += 1;
    }
    assert_eq!(executions.len(), total, "every task ran");
    let retried: HashSet<String> = store
        .events_after(0, &[EventKind::Restarting], 1_000_000)
        .unwrap()
        .into_iter()
        .filter_map(|e| e.task_id)
        .collect();
    for (task, n) in &executions {
        assert!(
            *n == 1 || retried.contains(*task),
            "{task} ran {n} times without a lost attempt"
        );
    }
    retried.len()
}

#[test]
fn postgres_three_workers_one_killed_every_task_ends_exactly_once() {
    let Some(schema) = TestSchema::create("postgres_three_workers_one_killed") else {
        return;
    };
    const TOTAL: usize = 1000;
    let ws = Ws::uninitialised();
    let url = schema.url();
    let store: Arc<dyn Store> = Arc::new(PgStore::open(&PgOptions::new(&url)).unwrap());
    let mut workers: Vec<Child> = (0..3).map(|_| start_worker(&ws, &url, "4")).collect();

    // Submit from four threads while the workers already run.
    let submitters: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            let dir = ws.root().to_owned();
            std::thread::spawn(move || {
                for n in (t..TOTAL).step_by(4) {
                    store.submit(&short_task(&dir, n), "test").unwrap();
                }
            })
        })
        .collect();
    // Kill one worker partway, with tasks in its hands.
    let deadline = Instant::now() + Duration::from_secs(120);
    while finished(&*store) < 300 {
        assert!(Instant::now() < deadline, "the workers make no progress");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut victim = workers.remove(0);
    let pid = Pid::from_raw(victim.id() as i32).unwrap();
    kill_process(pid, Signal::KILL).unwrap();
    victim.wait().unwrap();
    for submitter in submitters {
        submitter.join().unwrap();
    }
    wait_all_finished(&*store, TOTAL as u64, Duration::from_secs(240));
    stop_workers(workers);

    let retried = assert_each_ended_once(&*store, ws.root(), TOTAL);
    eprintln!("{retried} task(s) were retried after the SIGKILL");
    let live: Vec<_> = store
        .workers()
        .unwrap()
        .into_iter()
        .filter(|w| w.stopped_at.is_none())
        .collect();
    assert_eq!(live.len(), 1, "only the killed worker never said goodbye");
    assert!(live[0].running.is_empty(), "its leases were taken back");
}

#[test]
fn postgres_workers_survive_dropped_connections() {
    let Some(schema) = TestSchema::create("postgres_workers_dropped_connections") else {
        return;
    };
    const TOTAL: usize = 300;
    let ws = Ws::uninitialised();
    let url = schema.url();
    let store = PgStore::open(&PgOptions::new(&url)).unwrap();
    for n in 0..TOTAL {
        store.submit(&short_task(ws.root(), n), "test").unwrap();
    }
    let workers: Vec<Child> = (0..2).map(|_| start_worker(&ws, &url, "3")).collect();
    let mut cuts = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while cuts < 4 && finished(&store) < TOTAL as u64 {
        assert!(Instant::now() < deadline, "the workers make no progress");
        if finished(&store) >= (cuts as u64 + 1) * 50 {
            // Every connection of the workers (and ours): pools, listeners.
            cuts += 1;
            assert!(schema.terminate_connections() > 0);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(cuts >= 1, "no connection was cut before the run ended");
    wait_all_finished(&store, TOTAL as u64, Duration::from_secs(180));
    stop_workers(workers);
    assert_each_ended_once(&store, ws.root(), TOTAL);
}

#[test]
fn postgres_unreachable_database_is_a_clear_error_without_password() {
    let ws = Ws::uninitialised();
    for args in [
        &["worker"][..],
        &["submit", "--command", "true", "--queue", "q"][..],
    ] {
        let mut command = ws.command_no_flag(&[]);
        command
            .arg("--database-url")
            .arg("postgres://alice:hunter2@127.0.0.1:1/nowhere?connect_timeout=2")
            .args(args);
        let run = common::run_command(command, common::COMMAND_TIMEOUT);
        assert_ne!(run.code, Some(0), "{run:?}");
        assert!(
            run.stderr.contains(
                "cannot connect to PostgreSQL at postgres://alice:***@127.0.0.1:1/nowhere"
            ),
            "{run:?}"
        );
        assert!(!run.stderr.contains("hunter2"), "{run:?}");
    }
}

#[test]
fn postgres_submit_status_workers_and_migrate() {
    let Some(schema) = TestSchema::create("postgres_cli_submit_and_migrate") else {
        return;
    };
    let url = schema.url();
    // A SQLite workspace with some history, migrated into PostgreSQL.
    let ws = Ws::new();
    let id = ws
        .run(&["task", "add", "Write the migration"])
        .ok()
        .last_line();
    ws.run(&["remember", "--kind", "decision", "use PostgreSQL for teams"])
        .ok();
    let migrated = ws.run(&["migrate", "--to", &url, "--json"]).ok().json();
    assert_eq!(migrated["verified"], true, "{migrated:#}");
    assert_eq!(migrated["source"]["counts"]["tasks"], 1);
    assert_eq!(
        migrated["source"]["checksum"],
        migrated["target"]["checksum"]
    );
    let again = ws.run(&["migrate", "--to", &url]);
    assert!(
        !again.success(),
        "a second migration into a full database is refused"
    );
    assert!(again.stderr.contains("empty store"), "{again:?}");

    // The workspace now uses PostgreSQL: nothing more goes to SQLite.
    let mut ws = ws;
    ws.set_env("TASKDAEMON_DATABASE_URL", &url);
    let sqlite_before = std::fs::metadata(ws.db_path()).unwrap().modified().unwrap();
    let shown = ws.run(&["task", "show", &id, "--json"]).ok().json();
    assert_eq!(shown["title"], "Write the migration", "{shown:#}");
    let submitted = ws
        .run(&[
            "submit",
            "--command",
            "echo done",
            "--queue",
            "q",
            "--id",
            "job-1",
        ])
        .ok()
        .last_line();
    assert_eq!(submitted, "job-1");
    let worker = {
        let mut command = ws.command(&["worker", "--queue", "q", "--lease", "2s"]);
        command.stdout(Stdio::null()).stderr(Stdio::null());
        command.spawn().unwrap()
    };
    let store = PgStore::open(&PgOptions::new(&url)).unwrap();
    wait_all_finished(&store, 1, Duration::from_secs(30));
    let status = ws.run(&["status", "--json"]).ok().json();
    assert!(
        status["store"].as_str().unwrap().starts_with("postgres://"),
        "{status:#}"
    );
    assert_eq!(status["claim_workers"][0]["state"], "running", "{status:#}");
    assert!(status["claim_workers"][0]["heartbeat_at"].is_string());
    let list = ws.run(&["workers", "list"]).ok();
    assert!(list.stdout.contains("HEARTBEAT"), "{list:?}");
    stop_workers(vec![worker]);
    let shown = ws.run(&["tasks", "show", "job-1", "--json"]).ok().json();
    assert_eq!(shown["status"], "succeeded", "{shown:#}");
    assert_eq!(
        std::fs::metadata(ws.db_path()).unwrap().modified().unwrap(),
        sqlite_before,
        "the SQLite file was not touched"
    );
}

#[test]
fn postgres_daemon_and_shims_use_the_database_url_and_never_sqlite() {
    let Some(schema) = TestSchema::create("postgres_daemon_and_shims") else {
        return;
    };
    let url = schema.url();
    let ws = Ws::new();
    let spawned = ws
        .run(&[
            "--database-url",
            &url,
            "spawn",
            "--",
            "sh",
            "-c",
            "echo hello; exit 3",
        ])
        .ok();
    let id = spawned.last_line();
    let waited = ws.run(&["--database-url", &url, "wait", &id]);
    assert_eq!(
        waited.code,
        Some(3),
        "the shim recorded the exit: {waited:?}"
    );
    let logs = ws.run(&["--database-url", &url, "logs", &id]).ok();
    assert!(logs.stdout.contains("hello"), "{logs:?}");
    ws.run(&["--database-url", &url, "stop"]).ok();

    let store = PgStore::open(&PgOptions::new(&url)).unwrap();
    let task = store.task(&id).unwrap();
    assert_eq!((task.status, task.exit_code), (Status::Failed, Some(3)));
    let sqlite = taskdaemon_store::SqliteStore::open(&ws.db_path()).unwrap();
    assert!(
        sqlite.status_counts().unwrap().is_empty(),
        "nothing was written to SQLite"
    );
}
