//! Gates through the real binary and the real daemon: a tracked task waits
//! until a supervised process succeeds (blocked with the reason when it
//! fails), a command starts succeeding, a time passes, a person approves;
//! rehydrate lists the gates not open.

mod common;

use std::fs;

use common::{Ws, eventually};
use serde_json::Value;

fn add(ws: &Ws, title: &str) -> String {
    ws.run(&["task", "add", title]).ok().last_line()
}

fn shown(ws: &Ws, id: &str) -> Value {
    ws.run(&["task", "show", id, "--json"]).ok().json()
}

fn status(ws: &Ws, id: &str) -> String {
    shown(ws, id)["status"].as_str().unwrap().to_owned()
}

fn ready_ids(ws: &Ws) -> Vec<String> {
    ws.run(&["task", "ready", "--json"])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A process that exits with `code` once `go` exists.
fn spawn_waiting(ws: &Ws, go: &std::path::Path, code: i32) -> String {
    ws.spawn_sh(&format!(
        "while [ ! -f '{}' ]; do sleep 0.05; done; exit {code}",
        go.display()
    ))
}

#[test]
fn a_task_gated_on_a_process_follows_its_exit() {
    let ws = Ws::new();
    let go = ws.root().join("go");
    let good = spawn_waiting(&ws, &go, 0);
    let bad = spawn_waiting(&ws, &go, 1);
    let after_good = add(&ws, "deploy after the build");
    let after_bad = add(&ws, "release after the tests");
    ws.run(&["task", "gate", &after_good, "--until-succeeds", &good])
        .ok();
    ws.run(&["task", "gate", &after_bad, "--until-succeeds", &bad])
        .ok();
    assert_eq!(status(&ws, &after_good), "blocked");
    assert!(!ready_ids(&ws).contains(&after_good));

    fs::write(&go, "").unwrap();
    eventually("the task gated on the build is ready", || {
        ready_ids(&ws).contains(&after_good)
    });
    eventually(
        "the task gated on the failed run is blocked for good",
        || shown(&ws, &after_bad)["blocked_reason"].is_string(),
    );
    let blocked = shown(&ws, &after_bad);
    assert_eq!(blocked["status"], "blocked");
    let reason = blocked["blocked_reason"].as_str().unwrap();
    assert!(
        reason.contains(&bad) && reason.contains("failed"),
        "{reason}"
    );
    assert_eq!(blocked["gates"][0]["kind"], "until-succeeds");
    let listed = ws.run(&["task", "list"]).ok().stdout;
    assert!(listed.contains("can never open"), "{listed}");
    let listed_json = ws.run(&["task", "list", "--json"]).ok().json();
    let entry = listed_json
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == after_bad.as_str())
        .unwrap()
        .clone();
    assert_eq!(entry["blocked_reason"], reason);

    // Removing the gate that can never open releases the task.
    ws.run(&["task", "ungate", &after_bad, "1"]).ok();
    assert_eq!(status(&ws, &after_bad), "pending");
}

#[test]
fn command_time_and_approval_gates_open() {
    let ws = Ws::new();
    let flag = ws.root().join("flag");
    let task = add(&ws, "ship it");
    // The daemon evaluates command and time gates: make sure it runs.
    ws.run(&["start"]).ok();
    ws.run(&[
        "task",
        "gate",
        &task,
        "--until-command",
        &format!("test -f '{}'", flag.display()),
        "--after",
        "1s",
        "--approval",
    ])
    .ok();
    let gates = shown(&ws, &task)["gates"].as_array().unwrap().clone();
    assert_eq!(gates.len(), 3);
    assert_eq!(status(&ws, &task), "blocked");

    // Rehydrate (text and JSON) lists the gates not open.
    let text = ws.run(&["rehydrate", "--peek"]).ok().stdout;
    assert!(text.contains("Gates not open"), "{text}");
    assert!(text.contains("approval: waiting"), "{text}");
    let json = ws.run(&["rehydrate", "--peek", "--json"]).ok().json();
    assert!(
        json["gates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["kind"] == "until-command")
    );

    eventually("the time gate opens", || {
        shown(&ws, &task)["gates"][1]["opened_at"].is_string()
    });
    fs::write(&flag, "").unwrap();
    eventually("the command gate opens once the command succeeds", || {
        shown(&ws, &task)["gates"][0]["opened_at"].is_string()
    });
    // The approval gate still holds it.
    assert_eq!(status(&ws, &task), "blocked");
    ws.run(&["task", "approve", &task]).ok();
    assert_eq!(status(&ws, &task), "pending");
    assert!(ready_ids(&ws).contains(&task));
    let again = ws.run(&["task", "approve", &task]);
    assert!(!again.success());
    let text = ws.run(&["rehydrate", "--peek"]).ok().stdout;
    assert!(!text.contains("Gates not open"), "{text}");
}

#[test]
fn bad_gates_are_refused_clearly() {
    let ws = Ws::new();
    let task = add(&ws, "gated");
    let bad_time = ws.run(&["task", "gate", &task, "--until", "tomorrow"]);
    assert!(!bad_time.success());
    assert!(bad_time.stderr.contains("--until"), "{}", bad_time.stderr);
    let unknown = ws.run(&["task", "gate", &task, "--until-succeeds", "NOPE-9"]);
    assert!(!unknown.success());
    assert!(unknown.stderr.contains("NOPE-9"), "{}", unknown.stderr);
    let none = ws.run(&["task", "gate", &task]);
    assert!(!none.success());
    // Nothing was half-written: the task has no gate and is still pending.
    assert!(shown(&ws, &task)["gates"].is_null());
    assert_eq!(status(&ws, &task), "pending");
    // A time already passed opens at once.
    ws.run(&["task", "gate", &task, "--until", "2020-01-01T00:00:00Z"])
        .ok();
    assert_eq!(status(&ws, &task), "pending");
}
