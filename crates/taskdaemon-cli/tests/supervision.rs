//! Supervising processes: kill, wait, logs, restarts, the registry, `stop`.

mod common;

use std::fs;

use common::{Ws, alive, eventually, group_members, proc_stat};
use serde_json::Value;

#[test]
fn group_kill_leaves_no_survivor_even_when_term_is_ignored() {
    let ws = Ws::new();
    let id = ws.spawn_sh(r#"trap "" TERM; sleep 300 & sleep 300 & wait"#);
    let task = ws.wait_status(&id, "running");
    let pgid = task["pgid"].as_i64().expect("pgid") as i32;
    let leader = task["pid"].as_i64().expect("pid") as i32;
    assert_eq!(pgid, leader, "the command leads its own process group");
    // The shell and both sleeps, all in the command's group.
    eventually("the group has its three members", || {
        group_members(pgid).len() >= 3
    });
    let members = group_members(pgid);
    assert_ne!(
        proc_stat(pgid).map(|s| s.pgrp),
        proc_stat(std::process::id() as i32).map(|s| s.pgrp),
        "the command must not share the test's group"
    );

    let kill = ws.run(&["kill", &id, "--grace", "1s"]).ok();
    assert!(kill.stdout.contains("cancelled"), "{kill:#?}");

    let task = ws.task(&id);
    assert_eq!(task["status"], "cancelled", "{task:#}");
    // The shell ignored TERM, so only the SIGKILL after the grace period ended it.
    assert_eq!(task["signal"], 9, "{task:#}");
    assert_eq!(
        group_members(pgid),
        Vec::<i32>::new(),
        "processes of group {pgid} survived the kill"
    );
    for pid in members {
        assert!(!alive(pid), "member {pid} of group {pgid} survived");
    }
}

#[test]
fn plain_kill_ends_with_sigterm() {
    let ws = Ws::new();
    let id = ws.spawn(&["--", "sleep", "300"]);
    let pid = ws.pid_of(&id);
    assert!(alive(pid));

    ws.run(&["kill", &id]).ok();
    let task = ws.wait_status(&id, "cancelled");
    assert_eq!(task["signal"], 15, "{task:#}");
    assert_eq!(task["exit_code"], Value::Null, "{task:#}");
    assert!(!alive(pid), "the sleep still runs after kill");

    // A shell reports death by signal N as 128 + N.
    assert_eq!(ws.run(&["wait", &id]).code, Some(128 + 15));
    // It has ended: killing it again is refused as a state conflict.
    let again = ws.run(&["kill", &id]);
    assert_eq!(again.code, Some(4), "{again:#?}");
}

#[test]
fn kill_with_another_signal() {
    let ws = Ws::new();
    let id = ws.spawn(&["--", "sleep", "300"]);
    ws.run(&["kill", &id, "--signal", "INT"]).ok();
    let task = ws.wait_status(&id, "cancelled");
    assert_eq!(task["signal"], 2, "{task:#}");
}

#[test]
fn wait_exits_with_the_exit_code_or_128_plus_signal() {
    let ws = Ws::new();
    let ok = ws.spawn_sh("exit 0");
    let three = ws.spawn_sh("sleep 0.3; exit 3");
    // The shell signals itself: SIGUSR1 (10) ends it.
    let usr1 = ws.spawn_sh("kill -USR1 $$; sleep 5");

    assert_eq!(ws.run(&["wait", &ok]).code, Some(0));
    let run = ws.run(&["wait", &three]);
    assert_eq!(run.code, Some(3), "{run:#?}");
    let run = ws.run(&["wait", &usr1]);
    assert_eq!(run.code, Some(128 + 10), "{run:#?}");

    assert_eq!(ws.task(&ok)["status"], "succeeded");
    let task = ws.task(&three);
    assert_eq!(task["status"], "failed");
    assert_eq!(task["exit_code"], 3);
    let task = ws.task(&usr1);
    assert_eq!(task["status"], "failed");
    assert_eq!(task["signal"], 10);
}

#[test]
fn wait_timeout_exits_124_and_leaves_the_process_alone() {
    let ws = Ws::new();
    let id = ws.spawn(&["--", "sleep", "300"]);
    let run = ws.run(&["wait", &id, "--timeout", "300ms"]);
    assert_eq!(run.code, Some(124), "{run:#?}");
    assert_eq!(ws.task_status(&id), "running");
    assert!(alive(ws.pid_of(&id)));
}

#[test]
fn logs_tail_and_stderr() {
    let ws = Ws::new();
    let id = ws.spawn_sh("for i in 1 2 3 4 5; do echo out$i; done; echo err1 >&2; echo err2 >&2");
    assert_eq!(ws.run(&["wait", &id]).code, Some(0));

    let all = ws.run(&["logs", &id]).ok();
    assert_eq!(all.stdout, "out1\nout2\nout3\nout4\nout5\n");
    let tail = ws.run(&["logs", &id, "--tail", "2"]).ok();
    assert_eq!(tail.stdout, "out4\nout5\n");
    let tail = ws.run(&["logs", &id, "-n", "1"]).ok();
    assert_eq!(tail.stdout, "out5\n");
    let err = ws.run(&["logs", &id, "--stderr"]).ok();
    assert_eq!(err.stdout, "err1\nerr2\n");
    let err = ws.run(&["logs", &id, "--stderr", "--tail", "1"]).ok();
    assert_eq!(err.stdout, "err2\n");
}

#[test]
fn logs_follow_ends_with_the_process_and_prints_everything() {
    let ws = Ws::new();
    // The process ends only once the file `go` exists, which the test creates
    // after `logs --follow` has started.
    let id = ws.spawn_sh(
        "echo first; while [ ! -e go ]; do sleep 0.05; done; echo second; echo late >&2; echo third",
    );
    let follow = ws.command(&["logs", &id, "--follow"]);
    let handle = std::thread::spawn(move || common::run_command(follow, common::COMMAND_TIMEOUT));
    // Give `logs --follow` a moment to attach before the rest is written;
    // correctness does not depend on it.
    std::thread::sleep(std::time::Duration::from_millis(300));
    fs::write(ws.root().join("go"), "").unwrap();

    let run = handle.join().expect("logs --follow thread").ok();
    assert_eq!(run.stdout, "first\nsecond\nthird\n", "{run:#?}");
    assert_eq!(ws.task_status(&id), "succeeded");
}

#[test]
fn restart_on_failure_stops_after_max_restarts() {
    let ws = Ws::new();
    let id = ws.spawn(&[
        "--restart",
        "on-failure",
        "--max-restarts",
        "2",
        "--restart-delay",
        "100ms",
        "--",
        "sh",
        "-c",
        "echo x; exit 1",
    ]);
    let run = ws.run(&["wait", &id]);
    assert_eq!(run.code, Some(1), "{run:#?}");
    let task = ws.wait_status(&id, "failed");
    assert_eq!(task["restarts"], 2, "{task:#}");
    assert_eq!(task["exit_code"], 1, "{task:#}");
    assert_eq!(ws.stdout_log(&id), "x\nx\nx\n", "one x per start");
}

#[test]
fn restart_always_restarts_a_success_too() {
    let ws = Ws::new();
    let id = ws.spawn(&[
        "--restart",
        "always",
        "--max-restarts",
        "1",
        "--restart-delay",
        "50ms",
        "--",
        "sh",
        "-c",
        "echo y",
    ]);
    let task = ws.wait_task(&id, "ended", |t| {
        t["status"] != "running" && t["status"] != "pending"
    });
    assert_eq!(task["status"], "succeeded", "{task:#}");
    assert_eq!(task["restarts"], 1, "{task:#}");
    assert_eq!(ws.stdout_log(&id), "y\ny\n");
}

#[test]
fn restart_of_a_running_process_gives_a_new_pid() {
    // Several rounds, since a race between restart and the daemon's own
    // follower of the task shows only some of the time.
    const RESTARTS: u32 = 6;
    let ws = Ws::new();
    // Each start of the command leaves one line in its log.
    let id = ws.spawn_sh("echo started; exec sleep 300");
    let mut old = ws.pid_of(&id);

    for n in 1..=RESTARTS {
        let run = ws.run(&["restart", &id, "--grace", "2s"]);
        assert!(run.success(), "restart number {n} failed: {run:#?}");
        let task = ws.wait_status(&id, "running");
        let new = task["pid"].as_i64().expect("pid") as i32;
        assert_ne!(new, old, "restart kept the old pid");
        assert!(alive(new), "the restarted process does not run");
        assert!(!alive(old), "the old process still runs after restart");
        assert_eq!(task["restarts"], n, "{task:#}");
        old = new;
    }
    // An ended process can be restarted as well.
    ws.run(&["kill", &id]).ok();
    ws.wait_status(&id, "cancelled");
    ws.run(&["restart", &id]).ok();
    let task = ws.wait_status(&id, "running");
    let newer = task["pid"].as_i64().expect("pid") as i32;
    assert!(alive(newer));
    assert_ne!(newer, old);
    ws.run(&["kill", &id]).ok();
    ws.wait_status(&id, "cancelled");

    // One start, RESTARTS restarts while running and one after the kill:
    // never two starts for one restart.
    let starts = ws
        .stdout_log(&id)
        .lines()
        .filter(|l| *l == "started")
        .count();
    assert_eq!(
        starts,
        RESTARTS as usize + 2,
        "the command was started {starts} times"
    );
}

#[test]
fn registry_mirrors_the_process_table() {
    let ws = Ws::new();
    let id = ws.spawn(&["--tool", "claude", "--", "sleep", "300"]);
    // Read before anything else: a `spawn` that returned is in the file.
    let path = ws.root().join(".claude/process_registry.json");

    let read = || -> Value {
        let text = fs::read_to_string(&path).expect("registry file");
        serde_json::from_str(&text).expect("registry is JSON")
    };
    let entry_of = |registry: &Value| -> Option<Value> {
        registry["processes"]
            .as_array()
            .expect("processes array")
            .iter()
            .find(|p| p["id"] == id.as_str())
            .cloned()
    };
    let registry = read();
    let pid = ws.pid_of(&id);
    let first_version = registry["version"].as_i64().expect("numeric version");
    let entry = entry_of(&registry).expect("the process is listed");
    assert_eq!(entry["pid"], pid);
    assert_eq!(entry["status"], "running");
    assert_eq!(entry["tool"], "claude");

    ws.run(&["kill", &id]).ok();
    eventually("the registry shows the kill", || {
        let registry = read();
        entry_of(&registry).is_some_and(|e| e["status"] == "cancelled")
            && registry["version"].as_i64().unwrap() > first_version
    });
    // No temp files are left beside it once the writers are done (one may
    // be half-way through a write at any moment).
    let leftovers = || -> Vec<String> {
        fs::read_dir(path.parent().unwrap())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name != "process_registry.json")
            .collect()
    };
    eventually("no temp files beside the registry", || {
        leftovers().is_empty()
    });
}

#[test]
fn stop_leaves_supervised_processes_running() {
    let ws = Ws::new();
    let id = ws.spawn(&["--", "sleep", "300"]);
    let pid = ws.pid_of(&id);
    let daemon = ws.daemon_pid().expect("spawn started the daemon");

    ws.run(&["stop"]).ok();
    assert_eq!(ws.daemon_pid(), None, "status still reports a daemon");
    eventually("the daemon process exits after stop", || !alive(daemon));
    assert!(alive(pid), "stop killed a supervised process");
    let task = ws.task(&id);
    assert_eq!(task["status"], "running");
    assert_eq!(task["pid"], pid);

    // A second stop is harmless.
    ws.run(&["stop"]).ok();
    // The next daemon (started on demand) can still kill it.
    ws.run(&["kill", &id, "--grace", "2s"]).ok();
    ws.wait_status(&id, "cancelled");
    assert!(!alive(pid));
}

#[test]
fn spawn_options_reach_the_command() {
    let ws = Ws::new();
    let sub = ws.root().join("sub");
    fs::create_dir(&sub).unwrap();
    let id = ws.spawn(&[
        "--tool",
        "gemini",
        "--name",
        "probe",
        "--cwd",
        sub.to_str().unwrap(),
        "--env",
        "PROBE=a=b",
        "--",
        "sh",
        "-c",
        "pwd; echo $PROBE; echo $TASKDAEMON_TASK_ID",
    ]);
    assert!(id.starts_with("GEMINI-"), "{id}");
    assert_eq!(ws.run(&["wait", &id]).code, Some(0));
    assert_eq!(
        ws.stdout_log(&id),
        format!("{}\na=b\n{id}\n", sub.display())
    );
    let task = ws.task(&id);
    assert_eq!(task["name"], "probe");
    assert_eq!(task["tool"], "gemini");
    let listed = ws.run(&["ps", "--all", "--tool", "gemini", "--json"]).ok();
    assert_eq!(listed.json().as_array().unwrap().len(), 1);
    let listed = ws.run(&["ps", "--all", "--tool", "claude", "--json"]).ok();
    assert_eq!(listed.json().as_array().unwrap().len(), 0);
}

/// The shim starts a program it finds on the command's PATH by its path
/// (see `spawnable_file`), as `execvp` would have found it: the program
/// still sees the name it was given as argv[0], and a file the kernel
/// cannot run (no `#!`) still runs with `/bin/sh`, as `execvp` runs it.
#[test]
fn a_program_found_on_path_runs_as_execvp_would_run_it() {
    use std::os::unix::fs::PermissionsExt;
    let mut ws = Ws::new();
    let bin = ws.root().join("bin");
    fs::create_dir(&bin).unwrap();
    let headerless = bin.join("headerless");
    fs::write(&headerless, "echo \"ran as $0\"\n").unwrap();
    fs::set_permissions(&headerless, fs::Permissions::from_mode(0o755)).unwrap();
    ws.prepend_path(&bin);

    let named = ws.spawn(&["--", "bash", "-c", "echo $0"]);
    assert_eq!(ws.run(&["wait", &named]).code, Some(0));
    assert_eq!(ws.stdout_log(&named), "bash\n");

    let script = ws.spawn(&["--", "headerless"]);
    assert_eq!(ws.run(&["wait", &script]).code, Some(0));
    assert_eq!(
        ws.stdout_log(&script),
        format!("ran as {}\n", headerless.display())
    );
}

#[test]
fn supervised_commands_inherit_no_stray_descriptors() {
    let ws = Ws::new();
    let leaked = ws.root().join("leaked-by-the-caller");
    // The caller holds fd 7 open without close-on-exec, as shells and
    // editors' terminals do; it autostarts the daemon through this spawn.
    let inner = ws.command(&["spawn", "--", "sleep", "30"]);
    let mut outer = std::process::Command::new("sh");
    outer
        .arg("-c")
        .arg(r#"exec 7>"$0"; exec "$@""#)
        .arg(&leaked)
        .arg(inner.get_program())
        .args(inner.get_args())
        .current_dir(ws.root());
    for (key, value) in inner.get_envs() {
        match value {
            Some(value) => outer.env(key, value),
            None => outer.env_remove(key),
        };
    }
    let id = common::run_command(outer, common::COMMAND_TIMEOUT)
        .ok()
        .last_line();
    let task = ws.wait_status(&id, "running");
    let pids = [
        task["pid"].as_i64().unwrap() as i32,
        task["shim_pid"].as_i64().unwrap() as i32,
        ws.daemon_pid().expect("the spawn started the daemon"),
    ];
    for pid in pids {
        let fds: Vec<String> = fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
            .map(|target| target.display().to_string())
            .collect();
        assert!(
            fds.iter().all(|fd| !fd.contains("leaked-by-the-caller")),
            "pid {pid} holds the caller's descriptor: {fds:?}"
        );
    }
}

/// Resident kB of the mapping named `name` in `/proc/PID/smaps`.
fn resident_kb(pid: i32, name: &str) -> u64 {
    let smaps = fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut in_mapping = false;
    let mut total = 0;
    for line in smaps.lines() {
        if line.split_whitespace().nth(1).is_some_and(|p| p.len() == 4) && line.contains('-') {
            in_mapping = line.ends_with(name);
        } else if in_mapping && let Some(rest) = line.strip_prefix("Rss:") {
            total += rest.trim().trim_end_matches(" kB").parse::<u64>().unwrap();
        }
    }
    total
}

#[test]
fn a_waiting_shim_holds_no_store_and_records_the_exit_after() {
    let ws = Ws::new();
    let go = ws.root().join("go");
    let script = format!(
        "while [ ! -e '{}' ]; do sleep 0.05; done; exit 3",
        go.display()
    );
    let id = ws.spawn(&["--", "sh", "-c", &script]);
    let task = ws.wait_status(&id, "running");
    let shim = task["shim_pid"].as_i64().unwrap() as i32;
    let open_files = || -> Vec<String> {
        fs::read_dir(format!("/proc/{shim}/fd"))
            .unwrap()
            .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
            .map(|target| target.display().to_string())
            .collect()
    };
    // It closes the store right after it answers the spawn.
    common::eventually("the shim closes the store", || {
        open_files().iter().all(|f| !f.contains("state.db"))
    });
    let threads = fs::read_dir(format!("/proc/{shim}/task")).unwrap().count();
    assert!(
        threads <= 3,
        "the waiting thread and two output pumps: {threads} threads"
    );
    // Set-up ran deep on the main stack; the wait keeps only its own frames.
    let stack = resident_kb(shim, "[stack]");
    assert!(stack <= 256, "{stack} kB of stack resident while waiting");

    fs::write(&go, "").unwrap();
    let task = ws.wait_status(&id, "failed");
    assert_eq!(task["exit_code"], 3, "{task:#}");
    let exit: Value = serde_json::from_str(
        &fs::read_to_string(ws.state_dir().join("procs").join(&id).join("exit.json"))
            .unwrap_or_default(),
    )
    .unwrap_or(Value::Null);
    assert_eq!(exit["code"], 3, "the exit file beside the logs: {exit:#}");
}

/// After a `spawn`, the daemon keeps a standby shim with a spare forked
/// ahead of time (see `request_standby`). The next `spawn` runs under that
/// very spare, with its own options (not the standby's environment or
/// directory); SIGKILL of the daemon ends the standby and its next spare,
/// while the processes they supervise run on.
#[test]
fn a_spawn_runs_under_the_spare_the_last_spawn_left_ready() {
    let ws = Ws::new();
    let first = ws.spawn(&["--", "sleep", "300"]);
    let daemon = ws.daemon_pid().expect("spawn started the daemon");
    let standby = common::eventually_some("a standby shim for requests", || {
        let standbys = ws.standby_shims();
        (standbys.len() == 1).then(|| standbys[0])
    });
    assert_eq!(proc_stat(standby).map(|s| s.ppid), Some(daemon));
    let store = ws.db_path();
    let spare = common::eventually_some("a spare with the store open", || {
        let children = common::live_children(standby);
        let spare = *children.first().filter(|_| children.len() == 1)?;
        common::holds_open(spare, &store).then_some(spare)
    });

    let sub = ws.root().join("sub");
    fs::create_dir(&sub).unwrap();
    let second = ws.spawn(&[
        "--cwd",
        sub.to_str().unwrap(),
        "--env",
        "PROBE=spare",
        "--",
        "sh",
        "-c",
        "pwd; echo $PROBE; sleep 300",
    ]);
    let task = ws.task(&second);
    assert_eq!(
        task["shim_pid"].as_i64(),
        Some(i64::from(spare)),
        "the spare ran it: {task}"
    );
    eventually("its output", || {
        ws.stdout_log(&second) == format!("{}\nspare\n", sub.display())
    });

    let next = common::eventually_some("the next spare", || {
        common::live_children(standby)
            .into_iter()
            .find(|&pid| pid != spare)
    });
    common::sigkill(daemon);
    eventually("the standby exits", || !alive(standby));
    eventually("its spare exits too", || !alive(next));
    for id in [&first, &second] {
        assert!(alive(ws.pid_of(id)), "{id} runs on");
    }
    let listed = ws.run(&["ps", "--all", "--json"]).ok().json();
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(2),
        "the spares ran nothing: {listed}"
    );
    for id in [&first, &second] {
        ws.run(&["kill", id]).ok();
    }
}
