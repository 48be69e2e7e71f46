//! A daemon with nothing to do sleeps.
//!
//! CPU time is read from `/proc/PID/stat` (utime + stime), which counts only
//! what the process itself ran, so a busy machine does not inflate it. The
//! bounds are generous: they catch a process that wakes itself in a loop
//! (an inotify watcher woken by its own directory reads spun a whole core),
//! not a slow machine.

mod common;

use std::fs;
use std::thread;
use std::time::Duration;

use common::{Ws, eventually};

/// How long each idle stretch is measured.
const IDLE: Duration = Duration::from_secs(5);
/// The most CPU an idle stretch may use: 5% of one core.
const IDLE_CPU_LIMIT: Duration = Duration::from_millis(250);

/// CPU time (user + system) a process has used so far.
fn cpu_time(pid: i32) -> Duration {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // Fields after the parenthesised command name start at field 3; utime
    // and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').expect("comm") + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis(ticks * 1000 / per_second)
}

/// CPU time `pid` uses over [`IDLE`].
fn idle_cpu(pid: i32) -> Duration {
    let before = cpu_time(pid);
    thread::sleep(IDLE);
    cpu_time(pid) - before
}

fn worker_count(ws: &Ws) -> usize {
    let workers = ws.run(&["workers", "list", "--json"]).ok().json();
    workers.as_array().map_or(0, Vec::len)
}

#[test]
fn an_idle_daemon_sleeps_with_the_default_queues_with_ten_and_with_an_unrunnable_document() {
    let ws = Ws::new();
    ws.run(&["start"]).ok();
    let pid = ws.daemon_pid().expect("daemon running");
    // `init` registers the default queues (ad-hoc and planned).
    let queues = ws.run(&["queues", "list", "--json"]).ok().json();
    let defaults = queues.as_array().map_or(0, Vec::len);
    assert!((1..10).contains(&defaults), "default queues: {queues}");
    eventually("the default queues' workers start", || {
        worker_count(&ws) == defaults
    });
    // Let start-up work (adoption, the first archive pass) finish.
    thread::sleep(Duration::from_secs(1));

    let default_queues = idle_cpu(pid);
    assert!(
        default_queues < IDLE_CPU_LIMIT,
        "idle daemon with {defaults} queue(s) used {default_queues:?} of CPU in {IDLE:?}"
    );

    for i in defaults..10 {
        let (path, id) = (format!("tasks/q{i}"), format!("q{i}"));
        ws.run(&["queues", "add", &path, "--id", &id]).ok();
    }
    eventually("ten workers run", || worker_count(&ws) == 10);
    // A document that can never run: a directory with a document's name.
    fs::create_dir(ws.queue_dir("tasks/ad-hoc/pending/task-a-directory.md"))
        .expect("create the directory");
    thread::sleep(Duration::from_secs(1));

    let ten_queues = idle_cpu(pid);
    assert!(
        ten_queues < IDLE_CPU_LIMIT,
        "idle daemon with ten queues and an unrunnable document used {ten_queues:?} of CPU in {IDLE:?}"
    );

    // Sleeping is not deafness: a document dropped now still runs at once.
    ws.drop_document(
        "tasks/q9",
        "task-after-idle.md",
        "---\nexecutor: command\ncommand: echo woke\n---\n",
    );
    assert_eq!(
        ws.wait_result("tasks/q9", "task-after-idle")["status"],
        "succeeded"
    );
    assert!(
        ws.queue_dir("tasks/ad-hoc/pending/task-a-directory.md")
            .is_dir(),
        "the unrunnable document is left where it is"
    );
}

#[test]
fn following_a_quiet_log_sleeps() {
    let mut ws = Ws::new();
    let id = ws.spawn_sh("echo started; sleep 30");
    eventually("the process wrote its first line", || {
        ws.stdout_log(&id).contains("started")
    });
    let (bin, root) = (common::bin(), ws.root().to_owned());
    let follower = ws.start_own(
        bin.to_str().expect("utf-8 path"),
        &[
            "--workspace",
            root.to_str().expect("utf-8 path"),
            "logs",
            &id,
            "--follow",
        ],
    );
    thread::sleep(Duration::from_millis(500));
    let used = idle_cpu(follower);
    assert!(
        used < IDLE_CPU_LIMIT,
        "`logs --follow` of a quiet process used {used:?} of CPU in {IDLE:?}"
    );
}

#[test]
fn a_daemon_watching_a_quiet_process_samples_cheaply() {
    let ws = Ws::new();
    let id = ws.spawn_sh("sleep 30");
    ws.wait_status(&id, "running");
    let pid = ws.daemon_pid().expect("daemon running");
    thread::sleep(Duration::from_secs(1));
    let used = idle_cpu(pid);
    assert!(
        used < IDLE_CPU_LIMIT,
        "a daemon sampling one quiet process used {used:?} of CPU in {IDLE:?}"
    );
}
