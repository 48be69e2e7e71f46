//! Many agents at once: concurrent spawns race to start one daemon.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use std::thread;

use common::{COMMAND_TIMEOUT, Run, Ws, alive, eventually, run_command};

const SPAWNS: usize = 20;

#[test]
fn concurrent_spawns_autostart_one_daemon_and_get_distinct_ids() {
    // The race to start the daemon goes differently each time: run it in a
    // few fresh workspaces.
    for _ in 0..3 {
        spawn_race();
    }
}

fn spawn_race() {
    let ws = Ws::new();
    assert_eq!(ws.daemon_pid(), None, "no daemon before the race");

    let barrier = Arc::new(Barrier::new(SPAWNS));
    let handles: Vec<_> = (0..SPAWNS)
        .map(|_| {
            let command = ws.command(&["spawn", "--tool", "claude", "--", "sleep", "30"]);
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                run_command(command, COMMAND_TIMEOUT)
            })
        })
        .collect();
    let runs: Vec<Run> = handles
        .into_iter()
        .map(|h| h.join().expect("spawn thread"))
        .collect();

    let failures: Vec<&Run> = runs.iter().filter(|r| !r.success()).collect();
    assert!(
        failures.is_empty(),
        "{} of {SPAWNS} concurrent spawns failed: {failures:#?}",
        failures.len()
    );
    let ids: HashSet<String> = runs.iter().map(Run::last_line).collect();
    assert_eq!(ids.len(), SPAWNS, "ids are not distinct: {ids:?}");
    let expected: HashSet<String> = (1..=SPAWNS).map(|n| format!("CLAUDE-{n}")).collect();
    assert_eq!(ids, expected);

    let live = ws.ps_live();
    assert_eq!(live.len(), SPAWNS, "ps --json: {live:#?}");
    for task in &live {
        assert_eq!(task["status"], "running", "{task:#}");
        assert_eq!(task["tool"], "claude");
        let pid = task["pid"].as_i64().unwrap() as i32;
        assert!(alive(pid), "{} is not alive", task["id"]);
        assert!(ids.contains(task["id"].as_str().unwrap()));
    }
    let pids: HashSet<i64> = live.iter().map(|t| t["pid"].as_i64().unwrap()).collect();
    assert_eq!(pids.len(), SPAWNS, "pids are not distinct");

    let status = ws.status();
    assert_eq!(status["running"], true, "{status:#}");
    let daemon = status["pid"].as_i64().expect("daemon pid") as i32;
    assert_eq!(status["tasks"]["running"], SPAWNS as u64, "{status:#}");
    // Daemons that lost the race to start exit on their own; one must remain.
    eventually("exactly one daemon process runs for the workspace", || {
        ws.daemon_processes() == vec![daemon]
    });
    assert_eq!(ws.daemon_pid(), Some(daemon));
}

#[test]
fn concurrent_kills_and_spawns() {
    // Several CLIs changing the same workspace at once through one daemon.
    let ws = Ws::new();
    let ids: Vec<String> = (0..6).map(|_| ws.spawn(&["--", "sleep", "300"])).collect();
    let handles: Vec<_> = ids
        .iter()
        .map(|id| {
            let kill = ws.command(&["kill", id, "--grace", "2s"]);
            let spawn = ws.command(&["spawn", "--", "sh", "-c", "exit 0"]);
            thread::spawn(move || {
                (
                    run_command(kill, COMMAND_TIMEOUT),
                    run_command(spawn, COMMAND_TIMEOUT),
                )
            })
        })
        .collect();
    for handle in handles {
        let (kill, spawn) = handle.join().unwrap();
        assert!(kill.success(), "{kill:#?}");
        assert!(spawn.success(), "{spawn:#?}");
    }
    for id in &ids {
        assert_eq!(ws.task_status(id), "cancelled");
    }
    assert_eq!(ws.ps_all().len(), 12);
}
