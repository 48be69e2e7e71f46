//! Per-task limits: `spawn --max-memory/--max-cpu-time/--max-files/--nice`
//! and the same fields in queue documents, enforced on real processes, with
//! the reason recorded when a limit ends a task.

mod common;

use common::Ws;

fn shown(ws: &Ws, id: &str) -> serde_json::Value {
    ws.run(&["ps", "--all", "--json"])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("{id} is not listed"))
}

#[test]
fn a_task_over_its_memory_limit_is_killed_with_that_reason() {
    let ws = Ws::new();
    // Touches 300 MiB (bytes(n) * 1 writes every page), then waits.
    let id = ws.spawn(&[
        "--max-memory",
        "64M",
        "--",
        "python3",
        "-c",
        "import time; a = b'x' * (300 << 20); time.sleep(60)",
    ]);
    assert_eq!(ws.run(&["wait", &id]).code, Some(128 + 9));
    let task = shown(&ws, &id);
    assert_eq!(task["status"], "failed", "{task:#}");
    let error = task["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("memory limit") && error.contains("64M"),
        "{task:#}"
    );
    assert_eq!(task["limits"]["max_memory"], 64 << 20);
}

#[test]
fn a_task_that_uses_up_its_cpu_time_ends_with_that_reason() {
    let ws = Ws::new();
    let id = ws.spawn(&[
        "--max-cpu-time",
        "1s",
        "--",
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    assert_eq!(ws.run(&["wait", &id]).code, Some(128 + libc::SIGXCPU));
    let task = shown(&ws, &id);
    let error = task["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("CPU time") && error.contains("1s"),
        "{task:#}"
    );
}

#[test]
fn file_and_nice_limits_reach_the_command() {
    let ws = Ws::new();
    let id = ws.spawn(&[
        "--max-files",
        "37",
        "--nice",
        "7",
        "--",
        "sh",
        "-c",
        "ulimit -n; cut -d' ' -f19 /proc/self/stat",
    ]);
    assert_eq!(ws.run(&["wait", &id]).code, Some(0));
    assert_eq!(ws.run(&["logs", &id]).ok().stdout, "37\n7\n");
    // A task without limits shows none.
    let plain = ws.spawn_sh("true");
    assert_eq!(ws.run(&["wait", &plain]).code, Some(0));
    assert!(shown(&ws, &plain).get("limits").is_none());
}

#[test]
fn bad_limits_are_refused_before_anything_starts() {
    let ws = Ws::new();
    let run = ws.run(&["spawn", "--max-memory", "lots", "--", "true"]);
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert!(run.stderr.contains("not a size"), "{}", run.stderr);
    let run = ws.run(&["spawn", "--nice", "40", "--", "true"]);
    assert_ne!(run.code, Some(0));
    assert!(
        run.stderr.contains("nice must be between -20 and 19"),
        "{}",
        run.stderr
    );
    assert_eq!(
        ws.run(&["ps", "--all", "--json"]).ok().json(),
        serde_json::json!([])
    );
}

#[test]
fn queue_documents_carry_limits_and_bad_ones_name_their_line() {
    let ws = Ws::new();
    ws.run(&["start"]).ok();
    ws.drop_document(
        "tasks/ad-hoc",
        "task-lim.md",
        "---\nexecutor: command\nmax_cpu_time: 1s\nmax_attempts: 1\n---\nwhile :; do :; done\n",
    );
    let result = ws.wait_result("tasks/ad-hoc", "task-lim");
    assert_eq!(result["status"], "failed");
    assert!(
        result["error"].as_str().unwrap().contains("CPU time"),
        "{result:#}"
    );

    ws.drop_document(
        "tasks/ad-hoc",
        "task-bad.md",
        "---\nexecutor: command\n\nmax_memory: plenty\n---\ntrue\n",
    );
    let result = ws.wait_result("tasks/ad-hoc", "task-bad");
    let error = result["error"].as_str().unwrap();
    assert!(
        error.contains("line 4") && error.contains("max_memory"),
        "{error}"
    );
}

#[test]
fn status_says_how_limits_are_enforced() {
    let ws = Ws::new();
    let status = ws.run(&["status", "--json"]).ok().json();
    assert!(
        status["limits"].as_str().unwrap().contains("setrlimit"),
        "{status:#}"
    );
}
