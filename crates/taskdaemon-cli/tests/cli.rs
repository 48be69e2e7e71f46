//! The command line users expect around the core commands: shell
//! completions, man pages, the foreground daemon (`run`) under real
//! signals, the default queues of `init`, and the `task create` alias.

mod common;

use std::fs;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

use common::{DEADLINE, Ws, alive, eventually, run_command, signal};
use rustix::process::Signal;

#[test]
fn completions_cover_every_shell_and_the_commands() {
    let ws = Ws::uninitialised();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = run_command(ws.command_no_flag(&["completions", shell]), DEADLINE).ok();
        assert!(
            run.stdout.contains("spawn") && run.stdout.contains("rehydrate"),
            "{shell}: {}",
            &run.stdout[..run.stdout.len().min(500)]
        );
        assert!(
            !run.stdout.contains("__shim"),
            "{shell} completes a hidden command"
        );
    }
    let bash = run_command(ws.command_no_flag(&["completions", "bash"]), DEADLINE).ok();
    assert!(
        bash.stdout.contains("complete -F _taskdaemon"),
        "{}",
        bash.stdout
    );
    let zsh = run_command(ws.command_no_flag(&["completions", "zsh"]), DEADLINE).ok();
    assert!(
        zsh.stdout.starts_with("#compdef taskdaemon"),
        "{}",
        zsh.stdout
    );

    // Bash itself accepts the script and completes a subcommand with it;
    // also a group's subcommands (built only when the parser enters the
    // group), under `help` too, and their options.
    let script = ws.root().join("taskdaemon.bash");
    fs::write(&script, &bash.stdout).unwrap();
    let complete = |words: &[&str]| {
        let (cur, before) = words.split_last().unwrap();
        let prev = before.last().unwrap();
        let probe = format!(
            "source {} && COMP_WORDS=({}) COMP_CWORD={} && _taskdaemon taskdaemon {cur} {prev} && echo \"${{COMPREPLY[@]}}\"",
            script.display(),
            words.join(" "),
            words.len() - 1
        );
        let mut bash_run = Command::new("bash");
        bash_run.args(["--norc", "-c", &probe]);
        run_command(bash_run, DEADLINE)
            .ok()
            .stdout
            .trim()
            .to_owned()
    };
    assert_eq!(complete(&["taskdaemon", "rehy"]), "rehydrate");
    assert_eq!(complete(&["taskdaemon", "task", "rea"]), "ready");
    assert_eq!(complete(&["taskdaemon", "help", "task", "rea"]), "ready");
    assert_eq!(complete(&["taskdaemon", "task", "ready", "--js"]), "--json");

    let bad = run_command(ws.command_no_flag(&["completions", "tcsh"]), DEADLINE);
    assert_eq!(bad.code, Some(2), "{bad:#?}");
}

#[test]
fn the_man_page_is_roff_naming_the_commands() {
    let ws = Ws::uninitialised();
    let page = run_command(ws.command_no_flag(&["man"]), DEADLINE)
        .ok()
        .stdout;
    assert!(page.starts_with(".ie") || page.starts_with(".TH"), "{page}");
    assert!(page.contains(".TH taskdaemon 1"), "{page}");
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH SUBCOMMANDS"] {
        assert!(page.contains(section), "{section} missing: {page}");
    }
    for command in ["spawn", "rehydrate", "completions", "man", "run"] {
        assert!(
            page.contains(&format!("taskdaemon\\-{command}")),
            "{command} missing: {page}"
        );
    }
    assert!(
        !page.contains("__shim") && !page.contains("__daemon"),
        "{page}"
    );

    // groff renders it without complaint when it is installed.
    if Command::new("groff").arg("--version").output().is_ok() {
        let file = ws.root().join("taskdaemon.1");
        fs::write(&file, &page).unwrap();
        let mut groff = Command::new("groff");
        // -P-cbou: plain text, no overstriking for bold and underline.
        groff.args(["-man", "-Tutf8", "-ww", "-P-cbou"]).arg(&file);
        let rendered = run_command(groff, DEADLINE).ok();
        assert!(rendered.stderr.trim().is_empty(), "{rendered:#?}");
        assert!(
            rendered.stdout.contains("SUBCOMMANDS") && rendered.stdout.contains("rehydrate"),
            "{rendered:#?}"
        );
    } else {
        eprintln!("NOTICE: groff is not installed; the man page was checked as text only");
    }

    let dir = ws.root().join("man1");
    let out = dir.to_str().unwrap();
    run_command(ws.command_no_flag(&["man", "-o", out]), DEADLINE).ok();
    for name in [
        "taskdaemon.1",
        "taskdaemon-spawn.1",
        "taskdaemon-task-add.1",
    ] {
        let text = fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(text.contains(".TH"), "{name}: {text}");
    }
    let names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains("__")), "{names:?}");
}

/// Collects a pipe on a thread, so the test can look at it while the child runs.
fn collect(mut pipe: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    text
}

/// `taskdaemon run` in the foreground: logs on stderr, stopped by `signal`.
fn run_in_foreground_until(signal_to_send: Signal) {
    let ws = Ws::new();
    let mut child = ws
        .command(&["run"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start taskdaemon run");
    let stderr = collect(child.stderr.take().unwrap());
    let _stdout = collect(child.stdout.take().unwrap());
    let pid = child.id() as i32;
    eventually("the foreground daemon answers", || {
        ws.daemon_pid() == Some(pid)
    });
    // A supervised process: it must outlive the daemon's shutdown.
    let id = ws.spawn(&["--", "sleep", "600"]);
    let sleeper = ws.pid_of(&id);

    signal(pid, signal_to_send);
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "run did not stop on {signal_to_send:?}"
        );
        thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "{status:?}");
    eventually("stderr closed", || {
        stderr.lock().unwrap().contains("daemon stopping")
    });
    let logged = stderr.lock().unwrap().clone();
    assert!(logged.contains("daemon started"), "{logged}");
    assert!(logged.contains("daemon stopping"), "{logged}");
    let file = fs::read_to_string(ws.state_dir().join("daemon.log")).unwrap();
    assert!(
        file.contains("daemon started") && file.contains("daemon stopping"),
        "{file}"
    );

    assert!(
        alive(sleeper),
        "the supervised process died with the daemon"
    );
    assert_eq!(ws.daemon_pid(), None);
    assert_eq!(ws.task_status(&id), "running");
}

#[test]
fn run_stops_cleanly_on_sigterm_leaving_processes_running() {
    run_in_foreground_until(Signal::TERM);
}

#[test]
fn run_stops_cleanly_on_sigint() {
    run_in_foreground_until(Signal::INT);
}

#[test]
fn run_refuses_a_second_daemon() {
    let ws = Ws::new();
    ws.run(&["start"]).ok();
    let second = ws.run(&["run"]);
    assert_eq!(second.code, Some(1), "{second:#?}");
    assert!(second.stderr.contains("already running"), "{second:#?}");
}

#[test]
fn init_registers_the_ad_hoc_and_planned_queues() {
    let ws = Ws::new();
    for sub in ["pending", "completed", "failed", "results", "reports"] {
        assert!(ws.root().join("tasks/planning").join(sub).is_dir(), "{sub}");
        assert!(ws.root().join("tasks/ad-hoc").join(sub).is_dir(), "{sub}");
    }
    let list = ws.run(&["queues", "list", "--json"]).ok().json();
    let queues: Vec<(&str, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|q| (q["id"].as_str().unwrap(), q["path"].as_str().unwrap()))
        .collect();
    assert_eq!(queues.len(), 2, "{list}");
    assert_eq!(queues[0].0, "ad-hoc");
    assert_eq!(queues[1].0, "planned");
    assert!(queues[1].1.ends_with("tasks/planning"), "{list}");

    // A workspace whose config predates `planned` keeps its queues as they are.
    let old = Ws::uninitialised();
    fs::create_dir_all(old.state_dir()).unwrap();
    old.write_config("[[queue]]\nid = \"ad-hoc\"\npath = \"tasks/ad-hoc\"\n");
    old.run(&["init"]).ok();
    let list = old.run(&["queues", "list", "--json"]).ok().json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert!(!old.root().join("tasks/planning").exists());
}

#[test]
fn task_create_is_task_add() {
    let ws = Ws::new();
    let id = ws
        .run(&["task", "create", "Write the docs"])
        .ok()
        .last_line();
    assert_eq!(id, "TASK-1");
    let shown = ws.run(&["task", "show", &id, "--json"]).ok().json();
    assert_eq!(shown["title"], "Write the docs", "{shown}");
}
