//! LLM loops through the real binary and the real daemon, against the fake
//! LLM server (in this process, on loopback, speaking the Anthropic SSE wire
//! format). What the model does is scripted; everything else is real: the
//! daemon, the store, the progress log, the tools and the validation command.

mod common;

use std::fs;
use std::path::PathBuf;

use common::fake::Fake;
use common::{COMMAND_TIMEOUT, Run, Ws, eventually, run_command, sigkill};
use serde_json::{Value, json};
use taskdaemon_fake_llm::{Reply, Turn};

/// A key that must never reach the disk.
const KEY: &str = "sk-ant-test-NEVER-ON-DISK-7f3a9c2e51";

fn tool(name: &str, input: Value) -> Reply {
    Turn::tool(name, input).into()
}

fn text(words: &str) -> Reply {
    Turn::text(words).into()
}

/// A workspace with `spec.md` and an empty `work/` directory.
fn workspace() -> (Ws, PathBuf) {
    let ws = Ws::new();
    fs::write(
        ws.root().join("spec.md"),
        "Create the files the validation asks for.\n",
    )
    .unwrap();
    let work = ws.root().join("work");
    fs::create_dir(&work).unwrap();
    (ws, work)
}

/// `taskdaemon ARGS` with the provider's key and base URL in the environment.
fn with_key(ws: &Ws, fake: &Fake, args: &[&str]) -> Run {
    let mut command = ws.command(args);
    command
        .env("ANTHROPIC_API_KEY", KEY)
        .env("ANTHROPIC_BASE_URL", fake.url())
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL");
    run_command(command, COMMAND_TIMEOUT)
}

/// `loop run` in the foreground with the usual spec and workdir.
fn run_loop(ws: &Ws, fake: &Fake, validate: &str, extra: &[&str]) -> Run {
    let spec = ws.root().join("spec.md");
    let work = ws.root().join("work");
    let mut args = vec![
        "loop",
        "run",
        "--spec",
        spec.to_str().unwrap(),
        "--validate",
        validate,
        "--workdir",
        work.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    with_key(ws, fake, &args)
}

fn show(ws: &Ws, id: &str) -> Value {
    ws.run(&["loop", "show", id, "--json"]).ok().json()
}

fn iterations_of(record: &Value) -> Vec<u64> {
    record["progress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["iteration"].as_u64().unwrap())
        .collect()
}

fn loop_log(ws: &Ws, id: &str) -> String {
    fs::read_to_string(ws.state_dir().join("loops").join(id).join("loop.log")).unwrap_or_default()
}

/// Event kinds of a task, from `history --json`.
fn event_kinds(ws: &Ws, id: &str) -> Vec<String> {
    ws.run(&["history", "--task", id, "--json"])
        .ok()
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[test]
fn a_loop_creates_a_file_and_passes() {
    let (ws, work) = workspace();
    let fake = Fake::start(vec![
        tool(
            "write_file",
            json!({"path": "hello.txt", "content": "hello\n"}),
        ),
        text("Created hello.txt."),
    ]);
    let run = run_loop(&ws, &fake, "grep -q hello hello.txt", &[]).ok();
    let id = run.last_line();
    assert!(id.starts_with("LOOP-"), "{run:#?}");
    assert!(run.stdout.contains("tool write_file"), "{run:#?}");
    assert!(run.stdout.contains("validation passed"), "{run:#?}");
    assert_eq!(
        fs::read_to_string(work.join("hello.txt")).unwrap(),
        "hello\n"
    );

    let record = show(&ws, &id);
    assert_eq!(record["status"], "succeeded");
    assert_eq!(record["kind"], "loop");
    assert_eq!(record["iterations"], 1);
    assert_eq!(record["tool_calls"], 1);
    assert_eq!(iterations_of(&record), [1]);
    let kinds = event_kinds(&ws, &id);
    for kind in [
        "created",
        "started",
        "iteration_started",
        "iteration_finished",
        "exited",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} missing in {kinds:?}"
        );
    }
    // `wait` works for loops too, with the loop's verdict as exit code.
    assert_eq!(ws.run(&["wait", &id]).code, Some(0));
    let listed = ws.run(&["loop", "list", "--all", "--json"]).ok().json();
    assert_eq!(listed[0]["id"], id.as_str());
    assert!(
        ws.run(&["loop", "logs", &id])
            .ok()
            .stdout
            .contains("validation passed")
    );
    // The key reached the model (as the header), nothing else.
    assert_eq!(fake.requests()[0].header("x-api-key"), Some(KEY));
}

#[test]
fn a_validation_failure_then_a_fix() {
    let (ws, work) = workspace();
    let fake = Fake::start(vec![
        tool(
            "write_file",
            json!({"path": "out.txt", "content": "wrong answer\n"}),
        ),
        text("First try."),
        tool(
            "write_file",
            json!({"path": "out.txt", "content": "right answer\n"}),
        ),
        text("Fixed."),
    ]);
    let run = run_loop(&ws, &fake, "cat out.txt; grep -q right out.txt", &[]).ok();
    let id = run.last_line();
    assert!(
        run.stdout.contains("validation failed (exit 1)"),
        "{run:#?}"
    );
    assert!(run.stdout.contains("validation passed"), "{run:#?}");
    assert_eq!(
        fs::read_to_string(work.join("out.txt")).unwrap(),
        "right answer\n"
    );
    let record = show(&ws, &id);
    assert_eq!(iterations_of(&record), [1, 2]);
    assert_eq!(record["progress"][0]["validation_exit_code"], 1);
    assert_eq!(record["last_validation_exit_code"], 0);
    // The second iteration started from fresh context holding the failure.
    let requests = fake.requests();
    assert_eq!(requests.len(), 4);
    let second = requests[2].body.to_string();
    assert!(second.contains("wrong answer"), "{second}");
    assert_eq!(requests[2].body["messages"].as_array().unwrap().len(), 1);
}

#[test]
fn rate_limits_are_retried_after_retry_after() {
    let (ws, work) = workspace();
    let fake = Fake::start(vec![
        Reply::RateLimited {
            retry_after: "1".into(),
        },
        tool("write_file", json!({"path": "a.txt", "content": "a"})),
        text("ok"),
    ]);
    let run = run_loop(&ws, &fake, "test -f a.txt", &[]).ok();
    assert!(run.stdout.contains("retrying"), "{run:#?}");
    assert!(work.join("a.txt").is_file());
    assert_eq!(fake.requests().len(), 3);
}

#[test]
fn a_stream_cut_mid_message_is_retried() {
    let (ws, work) = workspace();
    let write = Turn::tool("write_file", json!({"path": "cut.txt", "content": "whole"}));
    let fake = Fake::start(vec![
        Reply::CutAfter {
            events: 3,
            turn: write.clone(),
        },
        write.into(),
        text("ok"),
    ]);
    let run = run_loop(&ws, &fake, "grep -q whole cut.txt", &[]).ok();
    assert!(run.stdout.contains("retrying"), "{run:#?}");
    assert_eq!(fs::read_to_string(work.join("cut.txt")).unwrap(), "whole");
    let record = show(&ws, &run.last_line());
    assert_eq!(record["tool_calls"], 1, "the cut call never ran");
}

#[test]
fn path_escapes_are_refused_and_nothing_is_written_outside() {
    let (ws, work) = workspace();
    let outside = ws.root().join("outside");
    fs::create_dir(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, work.join("link")).unwrap();
    let absolute = outside.join("absolute.txt");
    let fake = Fake::start(vec![
        tool(
            "write_file",
            json!({"path": "../escape.txt", "content": "x"}),
        ),
        tool(
            "write_file",
            json!({"path": absolute.to_str().unwrap(), "content": "x"}),
        ),
        tool(
            "write_file",
            json!({"path": "link/through-symlink.txt", "content": "x"}),
        ),
        tool("read_file", json!({"path": "../spec.md"})),
        text("I tried."),
    ]);
    let run = run_loop(&ws, &fake, "true", &[]).ok();
    assert!(!ws.root().join("escape.txt").exists());
    assert!(!absolute.exists());
    assert!(!outside.join("through-symlink.txt").exists());
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
    let log = loop_log(&ws, &run.last_line());
    assert_eq!(log.matches("refused").count(), 4, "{log}");
    // The model got each refusal back as an error result.
    let last = fake.requests().last().unwrap().body.clone();
    let errors = last.to_string().matches("\"is_error\":true").count();
    assert_eq!(errors, 4, "{last:#}");
    assert!(
        !last
            .to_string()
            .contains("Create the files the validation asks for.\\n\"")
    );
}

#[test]
fn the_key_never_reaches_the_disk() {
    let (ws, _work) = workspace();
    // First a daemon started without the key: it reaches the loop only
    // through the request, in memory.
    ws.run(&["start"]).ok();
    let fake = Fake::start(vec![
        Reply::ServerError { status: Some(500) },
        tool("write_file", json!({"path": "x.txt", "content": "x"})),
        text("done"),
        // Second loop, on a daemon started by `loop run` itself: the key is in
        // the daemon's environment, and the model's commands and the
        // validation print their environment.
        tool(
            "run_command",
            json!({"argv": ["sh", "-c", "env > env.txt"]}),
        ),
        text("done"),
    ]);
    let first = run_loop(&ws, &fake, "test -f x.txt", &[]).ok();
    ws.run(&["stop"]).ok();
    let second = run_loop(&ws, &fake, "env; test -f env.txt", &[]).ok();
    assert!(
        fake.requests()
            .iter()
            .all(|r| r.header("x-api-key") == Some(KEY))
    );
    for run in [&first, &second] {
        assert!(!run.stdout.contains(KEY) && !run.stderr.contains(KEY));
        ws.run(&["loop", "show", &run.last_line(), "--json"]).ok();
    }
    ws.run(&["stop"]).ok();
    let mut checked = 0;
    let mut stack = vec![ws.root().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                let bytes = fs::read(&path).unwrap();
                assert!(
                    !bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
                    "the key is in {}",
                    path.display()
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 8,
        "state.db, logs, progress and the workdir were read"
    );
    let env = fs::read_to_string(ws.root().join("work/env.txt")).unwrap();
    assert!(
        env.contains("ANTHROPIC_BASE_URL"),
        "the command saw an environment"
    );
}

#[test]
fn kill_9_mid_loop_then_resume_at_the_next_iteration() {
    let (ws, work) = workspace();
    let fake = Fake::start(vec![
        // Iteration 1: a file that does not pass.
        tool("write_file", json!({"path": "first.txt", "content": "1"})),
        text("Not done yet."),
        // Iteration 2 blocks in a tool; the daemon is killed meanwhile.
        tool(
            "run_command",
            json!({"argv": ["sleep", "60"], "timeout_secs": 120}),
        ),
        // Iteration 2 again, run by the restarted daemon.
        tool("write_file", json!({"path": "done.txt", "content": "2"})),
        text("Done."),
    ]);
    let run = run_loop(
        &ws,
        &fake,
        "echo ran >> ../validations.log; test -f done.txt",
        &["--detach"],
    )
    .ok();
    let id = run.last_line();
    let pid = ws.daemon_pid().expect("daemon runs");
    eventually("iteration 2 is in its tool call", || {
        loop_log(&ws, &id).contains("iteration 2: tool run_command")
    });
    sigkill(pid);
    eventually("the daemon is gone", || !common::alive(pid));
    assert_eq!(show(&ws, &id)["status"], "running");
    assert_eq!(iterations_of(&show(&ws, &id)), [1]);

    with_key(&ws, &fake, &["start"]).ok();
    let waited = with_key(&ws, &fake, &["wait", &id]);
    assert_eq!(waited.code, Some(0), "{waited:#?}\n{}", loop_log(&ws, &id));
    let record = show(&ws, &id);
    assert_eq!(record["status"], "succeeded");
    assert_eq!(
        iterations_of(&record),
        [1, 2],
        "no iteration recorded twice"
    );
    assert_eq!(record["iterations"], 2);
    assert!(work.join("done.txt").is_file());
    let validations = fs::read_to_string(ws.root().join("validations.log")).unwrap();
    assert_eq!(
        validations.lines().count(),
        2,
        "iteration 1 was not validated again"
    );
    let kinds = event_kinds(&ws, &id);
    let finished = kinds.iter().filter(|k| *k == "iteration_finished").count();
    assert_eq!(finished, 2, "{kinds:?}");
    assert!(kinds.iter().any(|k| k == "adopted"), "{kinds:?}");
    assert!(loop_log(&ws, &id).contains("resuming at iteration 2"));
}

#[test]
fn a_resumed_loop_without_its_key_fails_clearly() {
    let (ws, _work) = workspace();
    let fake = Fake::start(vec![
        tool("write_file", json!({"path": "first.txt", "content": "1"})),
        text("Not done yet."),
        tool("run_command", json!({"argv": ["sleep", "60"]})),
    ]);
    let id = run_loop(&ws, &fake, "test -f done.txt", &["--detach"])
        .ok()
        .last_line();
    let pid = ws.daemon_pid().expect("daemon runs");
    eventually("iteration 2 is in its tool call", || {
        loop_log(&ws, &id).contains("iteration 2: tool run_command")
    });
    sigkill(pid);
    eventually("the daemon is gone", || !common::alive(pid));
    // Restarted by a caller without the key: the loop ends with the reason.
    let mut start = ws.command(&["start"]);
    start.env_remove("ANTHROPIC_API_KEY");
    run_command(start, COMMAND_TIMEOUT).ok();
    let waited = ws.run(&["wait", &id]);
    assert_eq!(waited.code, Some(1), "{waited:#?}");
    let record = show(&ws, &id);
    assert_eq!(record["status"], "failed");
    let error = record["error"].as_str().unwrap();
    assert!(error.contains("ANTHROPIC_API_KEY is not set"), "{error}");
}

#[test]
fn stop_cancels_a_running_loop() {
    let (ws, _work) = workspace();
    let fake = Fake::start(vec![tool("run_command", json!({"argv": ["sleep", "60"]}))]);
    let id = run_loop(&ws, &fake, "true", &["--detach"]).ok().last_line();
    eventually("the loop is in its tool call", || {
        loop_log(&ws, &id).contains("tool run_command")
    });
    ws.run(&["loop", "stop", &id]).ok();
    assert_eq!(show(&ws, &id)["status"], "cancelled");
    assert_eq!(ws.run(&["loop", "stop", &id]).code, Some(4));
    assert_eq!(ws.run(&["wait", &id]).code, Some(1));
}

#[test]
fn bad_input_is_refused_before_any_api_call() {
    let (ws, _work) = workspace();
    let fake = Fake::start(Vec::new());
    let spec = ws.root().join("spec.md");
    let spec = spec.to_str().unwrap();
    let missing = with_key(
        &ws,
        &fake,
        &["loop", "run", "--spec", "nope.md", "--validate", "true"],
    );
    assert_eq!(missing.code, Some(2), "{missing:#?}");
    assert!(missing.stderr.contains("nope.md"), "{missing:#?}");
    let empty = with_key(
        &ws,
        &fake,
        &["loop", "run", "--spec", spec, "--validate", " "],
    );
    assert_eq!(empty.code, Some(2), "{empty:#?}");
    assert!(empty.stderr.contains("--validate"), "{empty:#?}");
    let provider = with_key(
        &ws,
        &fake,
        &[
            "loop",
            "run",
            "--spec",
            spec,
            "--validate",
            "true",
            "--provider",
            "gemini",
        ],
    );
    assert_eq!(provider.code, Some(2), "{provider:#?}");
    assert!(
        provider.stderr.contains("unknown provider 'gemini'"),
        "{provider:#?}"
    );
    let workdir = with_key(
        &ws,
        &fake,
        &[
            "loop",
            "run",
            "--spec",
            spec,
            "--validate",
            "true",
            "--workdir",
            "no/such/dir",
        ],
    );
    assert_eq!(workdir.code, Some(2), "{workdir:#?}");
    assert!(fake.requests().is_empty());
    assert!(
        ws.daemon_pid().is_none(),
        "bad input never starts the daemon"
    );
    assert_eq!(ws.run(&["loop", "show", "LOOP-9"]).code, Some(3));
}
