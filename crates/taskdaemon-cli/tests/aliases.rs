//! The seed tools' names: `install-aliases` makes `task-watchdog` and
//! `task-queue` links, and the binary called through them answers with their
//! name and commands.

mod common;

use std::process::Command;

use common::{Ws, bin, run_command};

const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

fn through(link: &std::path::Path, ws: &Ws, args: &[&str]) -> common::Run {
    let mut command = Command::new(link);
    command
        .current_dir(ws.root())
        .env_remove("TASKDAEMON_WORKSPACE")
        .env_remove("TASKDAEMON_DATABASE_URL")
        .arg("--workspace")
        .arg(ws.root())
        .args(args);
    run_command(command, TIMEOUT)
}

#[test]
fn the_binary_answers_to_the_seed_tools_names() {
    let ws = Ws::new();
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    let installed = ws.run(&["install-aliases", dir_arg]).ok();
    assert!(
        installed.stdout.contains("task-queue  (made)"),
        "{installed:#?}"
    );
    // Again: nothing to do, nothing broken.
    let again = ws.run(&["install-aliases", dir_arg]).ok();
    assert!(
        again.stdout.contains("task-watchdog  (already there)"),
        "{again:#?}"
    );
    let watchdog = dir.path().join("task-watchdog");
    let queue = dir.path().join("task-queue");
    assert_eq!(
        std::fs::read_link(&queue).unwrap(),
        std::fs::canonicalize(bin()).unwrap()
    );

    // Usage under its own name.
    let help = through(&queue, &ws, &["--help"]).ok();
    assert!(help.stdout.contains("Usage: task-queue"), "{}", help.stdout);
    let status = through(&queue, &ws, &["status", "--json"]).ok().json();
    assert_eq!(status["running"], false);

    // Seed 000's `run CMD...` supervises the command.
    let started = through(
        &watchdog,
        &ws,
        &["run", "sh", "-c", "echo from-the-watchdog"],
    )
    .ok();
    let id = started.last_line();
    assert_eq!(ws.run(&["wait", &id]).code, Some(0));
    assert_eq!(ws.run(&["logs", &id]).ok().stdout, "from-the-watchdog\n");
    assert!(
        through(&watchdog, &ws, &["rehydrate"])
            .ok()
            .stdout
            .contains(&id)
    );
}

#[test]
fn install_aliases_never_replaces_a_stranger() {
    let ws = Ws::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("task-queue"), "#!/bin/sh\n").unwrap();
    let run = ws.run(&["install-aliases", dir.path().to_str().unwrap()]);
    assert_ne!(run.code, Some(0));
    assert!(
        run.stderr.contains("exists and is not a link"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("task-queue")).unwrap(),
        "#!/bin/sh\n"
    );
}
