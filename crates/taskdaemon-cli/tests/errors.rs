//! Bad input and odd situations: one-line errors, documented exit codes, no
//! half-written state.

mod common;

use std::fs;
use std::io::Read;
use std::process::Stdio;

use common::{Run, Ws, eventually, proc_stat, run_command};

/// The error message is one line naming `what`.
fn assert_one_line_error(run: &Run, what: &str) {
    let text = run.stderr.trim();
    assert!(text.starts_with("error: "), "{run:#?}");
    assert_eq!(text.lines().count(), 1, "not one line: {run:#?}");
    assert!(text.contains(what), "does not name {what}: {run:#?}");
}

#[test]
fn init_twice_is_harmless() {
    let ws = Ws::new();
    let config = "[daemon]\nhang_timeout = \"3m\"\n";
    ws.write_config(config);
    let id = ws.spawn_sh("echo kept");
    assert_eq!(ws.run(&["wait", &id]).code, Some(0));

    let again = ws.run(&["init"]).ok();
    assert!(again.stdout.contains("already"), "{again:#?}");
    // Also from the directory itself, without --workspace.
    run_command(ws.command_no_flag(&["init"]), common::COMMAND_TIMEOUT).ok();

    assert_eq!(
        fs::read_to_string(ws.state_dir().join("config.toml")).unwrap(),
        config,
        "init overwrote the config"
    );
    let task = ws.task(&id);
    assert_eq!(task["status"], "succeeded", "init lost the store: {task:#}");
    assert!(ws.root().join("tasks/ad-hoc/pending").is_dir());
    assert!(ws.root().join("tasks/ad-hoc/results").is_dir());
    // The id counter was not reset either.
    let next = ws.spawn_sh("true");
    assert_ne!(next, id);
}

#[test]
fn commands_find_the_workspace_from_a_subdirectory() {
    let ws = Ws::new();
    let deep = ws.root().join("a/b");
    fs::create_dir_all(&deep).unwrap();
    let mut command = ws.command_no_flag(&["status", "--json"]);
    command.current_dir(&deep);
    let status = run_command(command, common::COMMAND_TIMEOUT).ok().json();
    assert_eq!(status["workspace"], ws.root().to_str().unwrap());
}

#[test]
fn outside_any_workspace_says_run_init() {
    let ws = Ws::uninitialised();
    let above = ws
        .root()
        .ancestors()
        .find(|d| d.join(".taskdaemon").is_dir());
    assert!(
        above.is_none(),
        "test precondition: {above:?} is a workspace, so the temp dir is inside one"
    );
    for args in [["status"], ["ps"], ["rehydrate"]] {
        let run = run_command(ws.command_no_flag(&args), common::COMMAND_TIMEOUT);
        assert_ne!(run.code, Some(0), "{run:#?}");
        assert_one_line_error(&run, "taskdaemon init");
    }
    let run = run_command(
        ws.command_no_flag(&["spawn", "--", "true"]),
        common::COMMAND_TIMEOUT,
    );
    assert_ne!(run.code, Some(0), "{run:#?}");
    assert_one_line_error(&run, "taskdaemon init");
    // With --workspace pointing at it.
    let run = ws.run(&["status"]);
    assert_ne!(run.code, Some(0), "{run:#?}");
    assert_one_line_error(&run, "taskdaemon init");
    assert!(
        !ws.root().join(".taskdaemon").exists(),
        "a failing command created the workspace"
    );
}

#[test]
fn unknown_id_exits_3() {
    let ws = Ws::new();
    for args in [
        vec!["kill", "NOPE-1"],
        vec!["wait", "TASK-99"],
        vec!["logs", "TASK-99"],
        vec!["restart", "TASK-99"],
    ] {
        let run = ws.run(&args);
        assert_eq!(run.code, Some(3), "{args:?}: {run:#?}");
        assert_one_line_error(&run, args[1]);
    }
}

#[test]
fn bad_duration_exits_2_and_names_the_value() {
    let ws = Ws::new();
    let run = ws.run(&["kill", "X", "--grace", "5x"]);
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert!(run.stderr.contains("'5x'"), "{run:#?}");
    let run = ws.run(&["spawn", "--hang-timeout", "soon", "--", "true"]);
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert!(run.stderr.contains("soon"), "{run:#?}");
    let run = ws.run(&["wait", "X", "--timeout", "-1s"]);
    assert_eq!(run.code, Some(2), "{run:#?}");
    // Nothing was started or recorded.
    assert!(ws.daemon_processes().is_empty());
    assert!(ws.ps_all().is_empty());
}

#[test]
fn missing_command_exits_2() {
    let ws = Ws::new();
    let run = ws.run(&["spawn"]);
    assert_eq!(run.code, Some(2), "{run:#?}");
    let run = ws.run(&["spawn", "--"]);
    assert_eq!(run.code, Some(2), "{run:#?}");
    let run = ws.run(&["spawn", "--", ""]);
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert_one_line_error(&run, "command");
    let run = ws.run(&["spawn", "--cwd", "/no/such/dir", "--", "true"]);
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert_one_line_error(&run, "/no/such/dir");
    // Nothing half-written: no task exists.
    assert!(ws.ps_all().is_empty(), "{:#?}", ws.ps_all());
}

#[test]
fn a_program_that_cannot_start_exits_2_and_leaves_no_zombie() {
    let ws = Ws::new();
    let run = ws.run(&["spawn", "--", "/no/such/program", "arg"]);
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert_one_line_error(&run, "/no/such/program");
    for task in ws.ps_all() {
        assert_eq!(task["status"], "failed", "{task:#}");
        assert!(task["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    // The shim that reported the failure has exited; the daemon, its
    // parent, must reap it rather than keep a zombie per failed start.
    let daemon = ws.daemon_pid().expect("the daemon runs");
    eventually("the failed shim is reaped", || {
        common::all_pids()
            .into_iter()
            .all(|pid| proc_stat(pid).is_none_or(|s| !(s.ppid == daemon && s.state == 'Z')))
    });
}

#[test]
fn corrupt_store_is_a_one_line_error_naming_the_file() {
    let ws = Ws::new();
    let db = ws.db_path();
    let garbage: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(&db, garbage).unwrap();
    for suffix in ["-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let before = fs::read(&db).unwrap();
    for args in [
        vec!["status"],
        vec!["status", "--json"],
        vec!["ps"],
        vec!["rehydrate"],
        vec!["spawn", "--", "true"],
    ] {
        let run = ws.run(&args);
        assert!(
            !run.success() && run.code.is_some(),
            "{args:?} did not fail: {run:#?}"
        );
        assert_one_line_error(&run, db.to_str().unwrap());
    }
    assert_eq!(
        fs::read(&db).unwrap(),
        before,
        "the corrupt store was modified"
    );
}

#[test]
fn closed_stdout_is_not_a_crash() {
    // `taskdaemon ps --json | head -1` and the like: a reader that goes away
    // must not make the CLI panic.
    let ws = Ws::new();
    for _ in 0..3 {
        ws.spawn_sh("true");
    }
    let mut crashed = Vec::new();
    for args in [
        vec!["ps", "--all", "--json"],
        vec!["ps", "--all"],
        vec!["status", "--json"],
        vec!["status"],
        vec!["rehydrate", "--json"],
        vec!["rehydrate"],
    ] {
        let mut command = ws.command(&args);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        // Close the read end before the CLI writes anything.
        drop(child.stdout.take());
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let status = child.wait().unwrap();
        if stderr.contains("panicked") || status.code() == Some(101) {
            crashed.push(format!(
                "{args:?}: {status}: {}",
                stderr.lines().nth(1).unwrap_or("")
            ));
        }
    }
    assert!(
        crashed.is_empty(),
        "panicked on a closed stdout:\n{}",
        crashed.join("\n")
    );
}
