//! Views the service adds for every interface, through the real binary:
//! `tasks list` (folder and submitted queue tasks alike) and claim workers
//! that died showing `lost`.

mod common;

use std::process::Stdio;

use common::{Ws, eventually, eventually_some};
use serde_json::Value;

const ADHOC: &str = "tasks/ad-hoc";

#[test]
fn tasks_list_shows_folder_and_submitted_tasks() {
    let ws = Ws::new();
    let empty = ws.run(&["tasks", "list", "--json"]).ok().json();
    assert_eq!(empty, Value::Array(Vec::new()));
    ws.run(&[
        "submit",
        "--command",
        "true",
        "--queue",
        "build",
        "--id",
        "job-1",
    ])
    .ok();
    ws.run(&["start"]).ok();
    ws.drop_document(
        ADHOC,
        "task-folder.md",
        "---\nexecutor: command\ncommand: echo hi\n---\n",
    );
    ws.wait_result(ADHOC, "task-folder");

    let all = ws.run(&["tasks", "list", "--json"]).ok().json();
    let ids: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["job-1", "task-folder"], "{all:#}");
    assert_eq!(all[0]["submitted"], true);
    assert_eq!(all[0]["status"], "pending");
    assert_eq!(all[0]["queue"], "build");
    assert_eq!(all[1]["submitted"], false);
    assert_eq!(all[1]["status"], "succeeded");

    let build = ws
        .run(&["tasks", "list", "--queue", "build", "--json"])
        .ok()
        .json();
    assert_eq!(build.as_array().unwrap().len(), 1);
    let succeeded = ws
        .run(&["tasks", "list", "--status", "succeeded", "--json"])
        .ok()
        .json();
    assert_eq!(succeeded.as_array().unwrap().len(), 1);
    assert_eq!(succeeded[0]["id"], "task-folder");
    let table = ws.run(&["tasks", "list"]).ok();
    assert!(table.stdout.contains("ATTEMPT"), "{table:?}");
    assert!(table.stdout.contains("submitted"), "{table:?}");
    let bad = ws.run(&["tasks", "list", "--status", "sideways"]);
    assert_eq!(bad.code, Some(2), "{bad:?}");
    ws.run(&["stop"]).ok();
}

/// The one claim worker `workers list --json` reports.
fn claim_worker(ws: &Ws) -> Option<Value> {
    let rows = ws.run(&["workers", "list", "--json"]).ok().json();
    rows.as_array()?
        .iter()
        .find(|r| r.get("worker").is_some())
        .cloned()
}

#[test]
fn a_sigkilled_worker_shows_lost_not_running() {
    let ws = Ws::new();
    let mut worker = ws.command(&["worker", "--queue", "q", "--lease", "1s"]);
    worker.stdout(Stdio::null()).stderr(Stdio::null());
    let mut worker = worker.spawn().expect("start a worker");
    let row = eventually_some("the worker to register", || claim_worker(&ws));
    eventually("the worker to run", || {
        claim_worker(&ws).is_some_and(|w| w["state"] == "running")
    });
    assert_eq!(row["pid"], worker.id());

    common::sigkill(worker.id() as i32);
    worker.wait().unwrap();
    eventually("the killed worker to show lost", || {
        claim_worker(&ws).is_some_and(|w| w["state"] == "lost")
    });
    let status = ws.status();
    assert_eq!(status["claim_workers"][0]["state"], "lost", "{status:#}");
    let human = ws.run(&["status"]).ok();
    assert!(human.stdout.contains("1 lost"), "{human:?}");
    let table = ws.run(&["workers", "list"]).ok();
    assert!(table.stdout.contains("lost"), "{table:?}");
    assert!(!table.stdout.contains("running"), "{table:?}");
}

/// The service's actions that need the daemon, called directly (no
/// terminal, no CLI parsing) against a real daemon, shims and processes.
#[test]
fn service_actions_go_through_the_daemon() {
    use taskdaemon_core::process::RestartPolicy;
    use taskdaemon_core::{NewProcess, Status};
    use taskdaemon_service::{ErrorClass, Service, WaitOutcome};

    let ws = Ws::new();
    // Started by the CLI so the daemon (and what it runs) carries the test's tag.
    ws.run(&["start"]).ok();
    let service = Service::open(taskdaemon_workspace::Workspace::open(ws.root()).unwrap())
        .unwrap()
        .with_exe(common::bin());
    let spec = |script: &str| NewProcess {
        tool: Some("claude".to_owned()),
        name: None,
        session: None,
        argv: vec!["sh".to_owned(), "-c".to_owned(), script.to_owned()],
        cwd: ws.root().display().to_string(),
        env: Vec::new(),
        restart: RestartPolicy::default(),
        hang_timeout_ms: None,
        limits: Default::default(),
        container: None,
    };
    let quick = service.spawn(spec("exit 7")).unwrap();
    assert!(quick.id.starts_with("CLAUDE-"), "{}", quick.id);
    match service
        .wait(&quick.id, Some(std::time::Duration::from_secs(20)))
        .unwrap()
    {
        WaitOutcome::Ended(task) => assert_eq!(task.exit_code, Some(7)),
        other => panic!("not ended: {other:?}"),
    }

    let long = service.spawn(spec("sleep 60")).unwrap();
    let live = service.processes(false, Some("Claude")).unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].task.id, long.id);
    let restarted = service
        .restart(&long.id, std::time::Duration::from_secs(5))
        .unwrap();
    assert_eq!(restarted.status, Status::Running);
    assert_ne!(restarted.pid, long.pid, "a new process");
    let bad = service
        .kill(&long.id, "NOTASIGNAL", std::time::Duration::from_secs(1))
        .unwrap_err();
    assert_eq!(bad.class(), ErrorClass::BadInput);
    let killed = service
        .kill(&long.id, "TERM", std::time::Duration::from_secs(5))
        .unwrap();
    assert_eq!(killed.status, Status::Cancelled);
    let again = service
        .kill(&long.id, "TERM", std::time::Duration::from_secs(1))
        .unwrap_err();
    assert_eq!(again.class(), ErrorClass::IllegalState, "{again}");
    let missing = service
        .cancel("TASK-404", std::time::Duration::from_secs(1))
        .unwrap_err();
    assert_eq!(missing.class(), ErrorClass::NotFound);
    assert!(service.processes(false, None).unwrap().is_empty());
}
