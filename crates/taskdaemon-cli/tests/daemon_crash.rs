//! The daemon can die at any moment: processes, exit codes and identities survive it.

mod common;

use std::fs;

use common::{Ws, alive, eventually, group_members, proc_stat, sigkill, sigkill_group};
use serde_json::Value;

/// A script that runs until the file `name` appears in its cwd, then exits 7.
fn exit7_on(name: &str) -> String {
    format!("while [ ! -e {name} ]; do sleep 0.05; done; exit 7")
}

#[test]
fn kill_9_of_the_daemon_then_readoption() {
    let ws = Ws::new();
    let id = ws.spawn(&["--", "sleep", "300"]);
    let task = ws.task(&id);
    let pid = task["pid"].as_i64().unwrap() as i32;
    let shim = task["shim_pid"].as_i64().unwrap() as i32;
    let daemon = ws.daemon_pid().expect("spawn started the daemon");

    sigkill(daemon);
    eventually("status notices the dead daemon", || {
        ws.status()["running"] == Value::Bool(false)
    });
    let status = ws.status();
    assert_eq!(status["pid"], Value::Null, "{status:#}");
    assert!(alive(pid), "the process died with the daemon");
    assert!(alive(shim), "the shim died with the daemon");
    let task = ws.task(&id);
    assert_eq!(task["status"], "running", "{task:#}");
    assert_eq!(task["pid"], pid);

    ws.run(&["start"]).ok();
    let new_daemon = ws.daemon_pid().expect("start started a daemon");
    assert_ne!(new_daemon, daemon);
    assert_eq!(ws.task(&id)["pid"], pid, "re-adoption changed the pid");
    assert!(alive(pid));

    let kill = ws.run(&["kill", &id, "--grace", "2s"]).ok();
    assert!(kill.stdout.contains("cancelled"), "{kill:#?}");
    let task = ws.wait_status(&id, "cancelled");
    assert_eq!(task["signal"], 15, "{task:#}");
    assert!(!alive(pid), "the process survived kill after re-adoption");
    assert!(group_members(pid).is_empty());
}

#[test]
fn readopted_orphan_without_shim_becomes_lost_when_it_exits() {
    // Daemon and shim both die; the command lives on. The next daemon must
    // watch the command itself and settle the task when it ends.
    let ws = Ws::new();
    let id = ws.spawn(&["--", "sleep", "300"]);
    let task = ws.task(&id);
    let pid = task["pid"].as_i64().unwrap() as i32;
    let shim = task["shim_pid"].as_i64().unwrap() as i32;
    let daemon = ws.daemon_pid().unwrap();
    sigkill(daemon);
    sigkill(shim);
    eventually("daemon and shim are gone", || {
        !alive(daemon) && !alive(shim)
    });
    eventually("status notices the dead daemon", || {
        ws.daemon_pid().is_none()
    });
    assert!(alive(pid));

    ws.run(&["start"]).ok();
    assert_eq!(ws.task_status(&id), "running", "the command still runs");
    sigkill(pid);
    let task = ws.wait_status(&id, "lost");
    assert!(
        task["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{task:#}"
    );
}

/// Starts a task that exits 7 on a signal file, takes the daemon down with
/// `down`, lets the task exit, and checks that `wait` and `ps` know the code
/// without any daemon.
fn exit_code_recorded_while_the_daemon_is_down(down: impl FnOnce(&Ws)) {
    let ws = Ws::new();
    let id = ws.spawn_sh(&exit7_on("go"));
    let pid = ws.pid_of(&id);
    down(&ws);
    assert_eq!(ws.daemon_pid(), None);
    eventually("the daemon process has exited", || {
        ws.daemon_processes().is_empty()
    });
    assert!(alive(pid));

    fs::write(ws.root().join("go"), "").unwrap();
    let wait = ws.run(&["wait", &id]);
    assert_eq!(wait.code, Some(7), "{wait:#?}");

    let task = ws.task(&id);
    assert_eq!(task["status"], "failed", "{task:#}");
    assert_eq!(task["exit_code"], 7, "{task:#}");
    let status = ws.status();
    assert_eq!(
        status["running"], false,
        "wait started the daemon: {status:#}"
    );
    assert_eq!(status["tasks"]["failed"], 1, "{status:#}");
    assert!(
        ws.daemon_processes().is_empty(),
        "wait or ps started a daemon"
    );
    // Asking again gives the same answer.
    assert_eq!(ws.run(&["wait", &id]).code, Some(7));
}

#[test]
fn exit_code_recorded_after_daemon_stop() {
    exit_code_recorded_while_the_daemon_is_down(|ws| {
        ws.run(&["stop"]).ok();
    });
}

#[test]
fn exit_code_recorded_after_daemon_sigkill() {
    exit_code_recorded_while_the_daemon_is_down(|ws| {
        let daemon = ws.daemon_pid().unwrap();
        sigkill(daemon);
        eventually("the daemon is gone", || ws.daemon_pid().is_none());
    });
}

#[test]
fn wait_started_while_the_daemon_runs_survives_its_death() {
    let ws = Ws::new();
    let id = ws.spawn_sh(&exit7_on("go"));
    let daemon = ws.daemon_pid().unwrap();
    let waiter = ws.command(&["wait", &id]);
    let handle = std::thread::spawn(move || common::run_command(waiter, common::COMMAND_TIMEOUT));
    sigkill(daemon);
    eventually("the daemon is gone", || ws.daemon_pid().is_none());
    fs::write(ws.root().join("go"), "").unwrap();
    let run = handle.join().unwrap();
    assert_eq!(run.code, Some(7), "{run:#?}");
}

/// Stops the daemon, then kills the task's shim (first, so it cannot record
/// an exit) and its whole group, leaving the store saying `running`.
fn stop_daemon_and_kill_task(ws: &mut Ws, id: &str) {
    let task = ws.task(id);
    let pgid = task["pgid"].as_i64().unwrap() as i32;
    let shim = task["shim_pid"].as_i64().unwrap() as i32;
    ws.run(&["stop"]).ok();
    sigkill(shim);
    eventually("the shim is gone", || !alive(shim));
    sigkill_group(pgid);
    eventually("the command is gone", || group_members(pgid).is_empty());
}

#[test]
fn a_recycled_pid_is_never_trusted() {
    let mut ws = Ws::new();
    let id = ws.spawn(&["--", "sleep", "300"]);
    stop_daemon_and_kill_task(&mut ws, &id);

    // An unrelated process, in a group of its own, takes the place of all three.
    let stranger = ws.start_own("sleep", &["300"]);
    let stranger_start = proc_stat(stranger).unwrap().start_time;
    let conn = rusqlite::Connection::open(ws.db_path()).unwrap();
    let (start_time, shim_start_time): (i64, i64) = conn
        .query_row(
            "SELECT start_time, shim_start_time FROM tasks WHERE id = ?1",
            [&id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_ne!(start_time as u64, stranger_start, "test precondition");
    assert_ne!(shim_start_time as u64, stranger_start, "test precondition");
    let changed = conn
        .execute(
            "UPDATE tasks SET pid = ?1, pgid = ?1, shim_pid = ?1 WHERE id = ?2",
            rusqlite::params![stranger, id],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(conn);

    ws.run(&["start"]).ok();
    let task = ws.wait_status(&id, "lost");
    assert_eq!(task["pid"], stranger, "{task:#}");
    assert!(
        alive(stranger),
        "the daemon signalled a recycled pid on start"
    );

    let kill = ws.run(&["kill", &id, "--grace", "1s"]);
    assert!(!kill.success(), "kill of a lost task succeeded: {kill:#?}");
    assert_ne!(kill.code, None, "{kill:#?}");
    let wait = ws.run(&["wait", &id]);
    assert_ne!(wait.code, Some(0), "{wait:#?}");
    assert!(alive(stranger), "kill signalled a recycled pid");
    assert_eq!(ws.task_status(&id), "lost");
}

#[test]
fn a_recycled_pid_is_not_signalled_by_kill_while_running() {
    // Same impostor, but the task is still `running` in the store when `kill`
    // comes, before any daemon has reconciled it.
    let mut ws = Ws::new();
    let id = ws.spawn(&["--", "sleep", "300"]);
    stop_daemon_and_kill_task(&mut ws, &id);

    let stranger = ws.start_own("sleep", &["300"]);
    let conn = rusqlite::Connection::open(ws.db_path()).unwrap();
    conn.execute(
        "UPDATE tasks SET pid = ?1, pgid = ?1, shim_pid = ?1 WHERE id = ?2",
        rusqlite::params![stranger, id],
    )
    .unwrap();
    drop(conn);

    // `kill` starts the daemon itself and asks it at once.
    let kill = ws.run(&["kill", &id, "--grace", "1s"]);
    assert!(alive(stranger), "kill signalled a recycled pid: {kill:#?}");
    let task = ws.wait_status(&id, "lost");
    assert_eq!(task["pid"], stranger);
    assert!(alive(stranger));
}
