//! `adopt PID`: processes another tool started are watched like our own,
//! identified by start time, their exit recorded when it can be read, and
//! stopped without touching the tool's other processes.

mod common;

use std::fs;

use common::{Ws, alive, eventually, eventually_some};
use serde_json::Value;

fn registry_entry(ws: &Ws, id: &str) -> Value {
    let registry: Value = serde_json::from_str(
        &fs::read_to_string(ws.root().join(".claude/process_registry.json")).unwrap(),
    )
    .unwrap();
    registry["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("{id} is not in the registry: {registry:#}"))
}

#[test]
fn an_adopted_process_is_watched_and_its_exit_code_recorded() {
    let mut ws = Ws::new();
    // The test is its parent and does not collect it, so the exit status
    // can still be read when it exits.
    let pid = ws.start_own("sh", &["-c", "sleep 1; exit 3"]);
    let id = ws
        .run(&[
            "adopt",
            &pid.to_string(),
            "--name",
            "build",
            "--tool",
            "claude",
        ])
        .ok()
        .last_line();
    assert!(id.starts_with("CLAUDE-"), "{id}");
    let entry = registry_entry(&ws, &id);
    assert_eq!(entry["mode"], "adopted");
    assert_eq!(entry["pid"], pid);
    assert!(entry["start_time"].as_u64().is_some() && entry["boot_id"].is_string());
    assert_eq!(entry["status"], "running");

    assert_eq!(ws.run(&["wait", &id]).code, Some(3));
    let task = ws.run(&["ps", "--all", "--json"]).ok().json();
    let task = task
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap();
    assert_eq!(
        (task["status"].as_str(), task["exit_code"].as_i64()),
        (Some("failed"), Some(3))
    );
    assert!(ws.run(&["rehydrate"]).ok().stdout.contains(&id));

    let twice = ws
        .run(&["adopt", &std::process::id().to_string()])
        .ok()
        .last_line();
    let again = ws.run(&["adopt", &std::process::id().to_string()]);
    assert_ne!(again.code, Some(0));
    assert!(
        again
            .stderr
            .contains(&format!("already supervised as {twice}")),
        "{again:#?}"
    );
    let missing = ws.run(&["adopt", "999999999"]);
    assert_ne!(missing.code, Some(0));
    assert!(
        missing.stderr.contains("no process with pid 999999999"),
        "{missing:#?}"
    );
}

#[test]
fn killing_an_adopted_process_leaves_its_group_alone() {
    let mut ws = Ws::new();
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("child.pid");
    // `sleep` shares the shell's process group: it is not a group leader.
    let shell = ws.start_own(
        "sh",
        &[
            "-c",
            &format!(
                "sleep 300 & echo $! > {}; wait; sleep 300",
                pidfile.display()
            ),
        ],
    );
    let sleeper: i32 = eventually_some("the child pid", || {
        fs::read_to_string(&pidfile).ok()?.trim().parse().ok()
    });
    let id = ws.run(&["adopt", &sleeper.to_string()]).ok().last_line();
    let killed = ws.run(&["kill", &id, "--grace", "5s"]).ok();
    assert!(killed.stdout.contains("cancelled"), "{killed:#?}");
    eventually("the adopted process is gone", || !alive(sleeper));
    assert!(alive(shell), "the shell that started it must live on");
    let entry = registry_entry(&ws, &id);
    assert_eq!(entry["status"], "cancelled");
}

#[test]
fn an_adopted_process_is_watched_again_after_a_daemon_restart() {
    let mut ws = Ws::new();
    let go = ws.root().join("go");
    let pid = ws.start_own(
        "sh",
        &[
            "-c",
            &format!(
                "while [ ! -e {} ]; do sleep 0.05; done; exit 4",
                go.display()
            ),
        ],
    );
    let id = ws.run(&["adopt", &pid.to_string()]).ok().last_line();
    ws.run(&["stop"]).ok();
    ws.run(&["start"]).ok();
    assert_eq!(ws.task_status(&id), "running");
    fs::write(&go, "").unwrap();
    let waited = ws.run(&["wait", &id]);
    assert_eq!(waited.code, Some(4), "{waited:#?}");
}
