//! Loop types from taskdaemon.yml through the real binary and the real
//! daemon, against the fake LLM server: the config commands and their exit
//! codes, hot reload while a loop runs (the running loop keeps its prompt,
//! a new loop gets the new one), a broken edit (alert, old config kept),
//! `network: none`, and analytics.

mod common;

use std::fs;
use std::net::TcpListener;

use common::fake::Fake;
use common::{COMMAND_TIMEOUT, Run, Ws, eventually, run_command};
use serde_json::{Value, json};
use taskdaemon_fake_llm::{RecordedRequest, Reply, Turn};

fn tool(name: &str, input: Value) -> Reply {
    Turn::tool(name, input).into()
}

fn text(words: &str) -> Reply {
    Turn::text(words).into()
}

/// `taskdaemon ARGS` with a key and the fake server's URL.
fn with_key(ws: &Ws, fake: &Fake, args: &[&str]) -> Run {
    let mut command = ws.command(args);
    command
        .env("ANTHROPIC_API_KEY", "sk-test")
        .env("ANTHROPIC_BASE_URL", fake.url())
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL");
    run_command(command, COMMAND_TIMEOUT)
}

/// The first user message of a request: the rendered prompt.
fn prompt_of(request: &RecordedRequest) -> String {
    let content = &request.body["messages"][0]["content"];
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Every tool result text a request carries.
fn tool_results(request: &RecordedRequest) -> String {
    request.body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
        .filter(|b| b["type"] == "tool_result")
        .map(|b| b["content"].to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn config(word: &str) -> String {
    format!(
        "types:\n  t:\n    extends: ralph\n    validation: test -f second\n    inputs:\n      goal: {{type: string}}\n    prompt: |\n      {word} prompt for {{{{goal}}}} (iteration {{{{iteration}}}})\n      {{{{> progress}}}}\n"
    )
}

fn versions(ws: &Ws) -> Vec<Value> {
    ws.run(&["config", "history", "--json"])
        .ok()
        .json()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn spec_of(ws: &Ws, id: &str) -> Value {
    ws.run(&["loop", "show", id, "--json"]).ok().json()["spec"].clone()
}

#[test]
fn config_commands_report_through_exit_codes() {
    let ws = Ws::new();
    let check = ws.run(&["config", "check"]).ok();
    assert!(check.stdout.contains("built-in types"), "{check:#?}");
    ws.run(&["config", "init"]).ok();
    assert!(ws.root().join("taskdaemon.yml").exists());
    let again = ws.run(&["config", "init"]);
    assert_eq!(again.code, Some(2), "{again:#?}");
    let json = ws.run(&["config", "check", "--json"]).ok().json();
    assert!(
        json["types"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "fix-tests")
    );

    fs::write(
        ws.root().join("taskdaemon.yml"),
        "types:\n  a:\n    extends: ralph\n    modle: x\n",
    )
    .unwrap();
    let broken = ws.run(&["config", "check"]);
    assert_eq!(broken.code, Some(2), "{broken:#?}");
    assert!(
        broken.stderr.contains(
            "taskdaemon.yml:4:5: types.a.modle: unknown key `modle`; did you mean `model`?"
        ),
        "{broken:#?}"
    );
    assert_eq!(ws.run(&["loop", "types"]).code, Some(2));

    fs::write(ws.root().join("taskdaemon.yml"), config("OLD")).unwrap();
    let types = ws.run(&["loop", "types", "--json"]).ok().json();
    let t = &types["types"]["t"];
    assert_eq!(t["chain"], json!(["ralph", "t"]));
    assert_eq!(t["provenance"]["model"]["type"], "ralph");
    assert_eq!(t["provenance"]["model"]["file"], "<builtin>");
    assert_eq!(t["provenance"]["validation.command"]["type"], "t");
    let human = ws.run(&["loop", "types", "t"]).ok();
    assert!(
        human.stdout.contains("validation.command") && human.stdout.contains("OLD prompt"),
        "{human:#?}"
    );
    let unknown = ws.run(&["loop", "types", "tt"]);
    assert_eq!(unknown.code, Some(2));
    assert!(unknown.stderr.contains("did you mean `t`"), "{unknown:#?}");
}

#[test]
fn a_reload_reaches_new_loops_and_running_ones_keep_their_prompt() {
    let ws = Ws::new();
    let work = ws.root().join("work");
    fs::create_dir(&work).unwrap();
    fs::write(ws.root().join("taskdaemon.yml"), config("OLD")).unwrap();
    let go = work.join("go");
    let fake = Fake::start(vec![
        // Loop A, iteration 1: waits in a tool call until the test says go.
        tool(
            "run_command",
            json!({"argv": ["sh", "-c", "while [ ! -f go ]; do sleep 0.05; done"]}),
        ),
        text("waited"),
        // Iteration 2 writes what validation wants.
        tool("write_file", json!({"path": "second", "content": "x"})),
        text("done"),
        // Loop B, then loop C: one turn each (validation already passes).
        text("B done"),
        text("C done"),
    ]);
    let workdir = work.to_str().unwrap();
    let a = with_key(
        &ws,
        &fake,
        &[
            "loop",
            "run",
            "--type",
            "t",
            "--input",
            "goal=alpha",
            "--workdir",
            workdir,
            "--detach",
        ],
    )
    .ok()
    .last_line();
    eventually("loop A waits in its tool call", || {
        !fake.requests().is_empty()
            && fs::read_to_string(ws.state_dir().join("loops").join(&a).join("loop.log"))
                .unwrap_or_default()
                .contains("tool run_command")
    });
    assert_eq!(versions(&ws).len(), 1);

    fs::write(ws.root().join("taskdaemon.yml"), config("NEW")).unwrap();
    eventually("the daemon records version 2", || versions(&ws).len() == 2);
    fs::write(&go, "").unwrap();
    assert_eq!(ws.run(&["wait", &a]).code, Some(0));

    let b = with_key(
        &ws,
        &fake,
        &[
            "loop",
            "run",
            "--type",
            "t",
            "--input",
            "goal=beta",
            "--workdir",
            workdir,
            "--detach",
        ],
    )
    .ok()
    .last_line();
    assert_eq!(ws.run(&["wait", &b]).code, Some(0));

    let requests = fake.requests();
    assert_eq!(requests.len(), 5, "{requests:#?}");
    let a1 = prompt_of(&requests[0]);
    let a2 = prompt_of(&requests[2]);
    assert!(a1.contains("OLD prompt for alpha (iteration 1)"), "{a1}");
    assert!(
        a2.contains("OLD prompt for alpha (iteration 2)"),
        "the running loop kept its prompt: {a2}"
    );
    let b1 = prompt_of(&requests[4]);
    assert!(b1.contains("NEW prompt for beta (iteration 1)"), "{b1}");
    assert_eq!(spec_of(&ws, &a)["config_version"], 1);
    assert_eq!(spec_of(&ws, &b)["config_version"], 2);
    assert_eq!(spec_of(&ws, &b)["loop_type"], "t");

    // A broken edit: alert, the old (version 2) config stays in use.
    fs::write(
        ws.root().join("taskdaemon.yml"),
        "types:\n  t:\n    extends: ralph\n    max_iterations: lots\n",
    )
    .unwrap();
    eventually("status shows the alert", || {
        ws.status()["loop_types"]["alert"]
            .as_str()
            .is_some_and(|a| a.contains("taskdaemon.yml:4:21"))
    });
    let status = ws.run(&["status"]).ok().stdout;
    assert!(
        status.contains("alert") && status.contains("is invalid"),
        "{status}"
    );
    let rehydrate = ws.run(&["rehydrate"]).ok().stdout;
    assert!(
        rehydrate.contains("taskdaemon.yml is invalid"),
        "{rehydrate}"
    );
    let history = ws.run(&["history", "--json"]).ok().stdout;
    assert!(
        history.contains("\"alert\"") && history.contains("max_iterations"),
        "{history}"
    );
    assert_eq!(versions(&ws).len(), 2, "a broken file is no version");
    let c = with_key(
        &ws,
        &fake,
        &[
            "loop",
            "run",
            "--type",
            "t",
            "--input",
            "goal=gamma",
            "--workdir",
            workdir,
            "--detach",
        ],
    )
    .ok()
    .last_line();
    assert_eq!(ws.run(&["wait", &c]).code, Some(0));
    let c1 = prompt_of(&fake.requests()[5]);
    assert!(c1.contains("NEW prompt for gamma"), "{c1}");
    assert_eq!(spec_of(&ws, &c)["config_version"], 2);

    // Fixed again: the alert clears.
    fs::write(ws.root().join("taskdaemon.yml"), config("THIRD")).unwrap();
    eventually("the alert clears", || {
        ws.status()["loop_types"]["alert"].is_null()
    });
    assert_eq!(versions(&ws)[0]["version"], 3);

    let analytics = ws.run(&["analytics", "--json", "--by", "type"]).ok().json();
    let t = analytics["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"] == "t")
        .unwrap()
        .clone();
    assert_eq!(t["runs"], 3);
    assert_eq!(t["success_rate"], 1.0);
    assert_eq!(t["iterations"], 4);
    assert!(ws.run(&["analytics"]).ok().stdout.contains("SUCCESS"));
}

#[test]
fn bad_typed_input_is_refused_before_any_api_call() {
    let ws = Ws::new();
    fs::write(ws.root().join("taskdaemon.yml"), config("OLD")).unwrap();
    let fake = Fake::start(Vec::new());
    let missing = with_key(&ws, &fake, &["loop", "run", "--type", "t"]);
    assert_eq!(missing.code, Some(2), "{missing:#?}");
    assert!(
        missing.stderr.contains("needs input `goal`"),
        "{missing:#?}"
    );
    let unknown = with_key(
        &ws,
        &fake,
        &["loop", "run", "--type", "plna", "--input", "goal=x"],
    );
    assert_eq!(unknown.code, Some(2), "{unknown:#?}");
    assert!(
        unknown.stderr.contains("did you mean `plan`"),
        "{unknown:#?}"
    );
    let no_validation = with_key(&ws, &fake, &["loop", "run", "--type", "ralph"]);
    assert_eq!(no_validation.code, Some(2), "{no_validation:#?}");
    assert!(
        no_validation.stderr.contains("no validation command"),
        "{no_validation:#?}"
    );
    assert!(fake.requests().is_empty());
}

/// Runs one loop of `loop_type` whose model connects to a loopback listener;
/// returns whether the listener saw a connection and what the tool said.
fn connect_through(ws: &Ws, loop_type: &str) -> (bool, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let fake = Fake::start(vec![
        tool(
            "run_command",
            json!({"argv": ["bash", "-c", format!("echo hi > /dev/tcp/127.0.0.1/{port}")]}),
        ),
        text("tried"),
    ]);
    let work = ws.root().join("work");
    let id = with_key(
        ws,
        &fake,
        &[
            "loop",
            "run",
            "--type",
            loop_type,
            "--workdir",
            work.to_str().unwrap(),
            "--detach",
        ],
    )
    .ok()
    .last_line();
    assert_eq!(ws.run(&["wait", &id]).code, Some(0));
    let requests = fake.requests();
    (listener.accept().is_ok(), tool_results(&requests[1]))
}

#[test]
fn network_none_commands_cannot_reach_loopback() {
    let ws = Ws::new();
    fs::create_dir(ws.root().join("work")).unwrap();
    fs::write(
        ws.root().join("taskdaemon.yml"),
        "types:\n  online:\n    extends: ralph\n    validation: \"true\"\n  offline:\n    extends: online\n    network: none\n",
    )
    .unwrap();
    let (connected, said) = connect_through(&ws, "online");
    assert!(connected, "the default type can connect: {said}");
    assert!(said.contains("exit code: 0"), "{said}");
    let (connected, said) = connect_through(&ws, "offline");
    assert!(
        !connected,
        "a network: none loop reached the listener: {said}"
    );
    assert!(!said.contains("exit code: 0"), "{said}");
    let listed = ws.run(&["loop", "list", "--all", "--json"]).ok().json();
    let spec = spec_of(&ws, listed[1]["id"].as_str().unwrap());
    assert_eq!(spec["isolate_network"], true);
}

#[test]
fn a_type_s_concurrency_and_timeout_bound_its_loops() {
    let ws = Ws::new();
    let work = ws.root().join("work");
    fs::create_dir(&work).unwrap();
    fs::write(
        ws.root().join("taskdaemon.yml"),
        "types:\n  single:\n    extends: ralph\n    concurrency: 1\n    validation: \"true\"\n    inputs:\n      who: {type: string}\n    prompt: \"loop {{who}}\"\n  brief:\n    extends: single\n    concurrency: null\n    timeout: 1s\n",
    )
    .unwrap();
    let fake = Fake::start(vec![
        tool(
            "run_command",
            json!({"argv": ["sh", "-c", "while [ ! -f go ]; do sleep 0.05; done"]}),
        ),
        text("A done"),
        text("B done"),
        tool("run_command", json!({"argv": ["sleep", "60"]})),
    ]);
    let workdir = work.to_str().unwrap();
    let start = |who: &str, loop_type: &str| {
        with_key(
            &ws,
            &fake,
            &[
                "loop",
                "run",
                "--type",
                loop_type,
                "--input",
                &format!("who={who}"),
                "--workdir",
                workdir,
                "--detach",
            ],
        )
        .ok()
        .last_line()
    };
    let a = start("alpha", "single");
    eventually("A waits in its tool call", || !fake.requests().is_empty());
    let b = start("beta", "single");
    assert_eq!(
        ws.run(&["loop", "show", &b, "--json"]).ok().json()["status"],
        "pending"
    );
    fs::write(work.join("go"), "").unwrap();
    assert_eq!(ws.run(&["wait", &a]).code, Some(0));
    assert_eq!(ws.run(&["wait", &b]).code, Some(0));
    let requests = fake.requests();
    assert!(prompt_of(&requests[0]).contains("loop alpha"));
    assert!(
        tool_results(&requests[1]).contains("exit code: 0"),
        "A finished before B started"
    );
    assert!(
        prompt_of(&requests[2]).contains("loop beta"),
        "{:#?}",
        requests[2].body
    );

    // The whole loop's timeout ends it, with the reason.
    let c = start("gamma", "brief");
    assert_eq!(ws.run(&["wait", &c]).code, Some(1));
    let shown = ws.run(&["loop", "show", &c, "--json"]).ok().json();
    assert_eq!(shown["status"], "failed");
    assert!(shown.to_string().contains("timed out after 1s"), "{shown}");
}

/// Starts a loop of `loop_type` in `work/` with `HOME` set to `home` (the
/// daemon it starts inherits it), waits for it, and returns its id.
fn run_type_with_home(ws: &Ws, fake: &Fake, loop_type: &str, home: &std::path::Path) -> String {
    let work = ws.root().join("work");
    let mut command = ws.command(&[
        "loop",
        "run",
        "--type",
        loop_type,
        "--workdir",
        work.to_str().unwrap(),
        "--detach",
    ]);
    command
        .env("HOME", home)
        .env("ANTHROPIC_API_KEY", "sk-test")
        .env("ANTHROPIC_BASE_URL", fake.url())
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL");
    let id = run_command(command, COMMAND_TIMEOUT).ok().last_line();
    assert_eq!(ws.run(&["wait", &id]).code, Some(0), "loop {id} failed");
    id
}

/// Connects to the socket in `argv[1]`, asks for a ping without the token,
/// prints the answer, and fails unless the daemon answered.
const DRIVE_THE_DAEMON: &str = "import socket, sys\n\
    s = socket.socket(socket.AF_UNIX)\n\
    s.connect(sys.argv[1])\n\
    s.sendall(b'{\"request\":\"ping\"}\\n')\n\
    answer = s.makefile().readline()\n\
    print(answer)\n\
    sys.exit(0 if 'pong' in answer else 1)\n";

#[test]
fn a_hostile_model_cannot_leave_its_worktree_through_run_command() {
    let ws = Ws::new();
    let work = ws.root().join("work");
    fs::create_dir(&work).unwrap();
    let outside = ws.root().join("outside");
    fs::create_dir(&outside).unwrap();
    let secret = outside.join("file.txt");
    fs::write(&secret, "OUTSIDE-SECRET-5c1e\n").unwrap();
    let home = ws.root().join("home");
    fs::create_dir(&home).unwrap();
    fs::write(home.join(".secret"), "HOME-SECRET-9d2a\n").unwrap();
    // The validation is the user's own: it reads outside the worktree.
    fs::write(
        ws.root().join("taskdaemon.yml"),
        "types:\n  hostile:\n    extends: ralph\n    tools:\n      run_command: {shell: true}\n    validation: \"grep -q OUTSIDE-SECRET ../outside/file.txt && touch validation-saw-outside\"\n  trusted:\n    extends: hostile\n    sandbox: none\n",
    )
    .unwrap();
    let planted = outside.join("planted");
    let store = ws.root().join(".taskdaemon");
    let fake = Fake::start(vec![
        tool("run_command", json!({"argv": ["cat", secret]})),
        tool(
            "run_command",
            json!({"argv": ["sh", "-c", format!("echo x > {}", planted.display())]}),
        ),
        tool(
            "run_command",
            json!({"argv": ["cat", home.join(".secret")]}),
        ),
        tool("run_command", json!({"argv": ["ls", store]})),
        tool(
            "run_command",
            json!({"argv": ["cat", store.join("state.db")]}),
        ),
        // The daemon's socket is reachable by path (Landlock governs that
        // only from ABI 9), but its token file is not readable.
        tool(
            "run_command",
            json!({"argv": ["/usr/bin/python3", "-c", DRIVE_THE_DAEMON, store.join("daemon.sock")]}),
        ),
        text("tried"),
    ]);
    run_type_with_home(&ws, &fake, "hostile", &home);
    let requests = fake.requests();
    let said = tool_results(requests.last().unwrap());
    let denied = requests.last().unwrap().body.to_string();
    let sandboxed = taskdaemon_llm::landlock_support().available;
    let want = if sandboxed {
        "Permission denied"
    } else {
        "sandbox: none"
    };
    assert_eq!(denied.matches("\"is_error\":true").count(), 6, "{said}");
    assert_eq!(
        said.matches(want).count(),
        if sandboxed { 5 } else { 6 },
        "{said}"
    );
    if sandboxed {
        assert!(
            said.contains("did not open with the daemon's socket token"),
            "{said}"
        );
    }
    for leaked in ["OUTSIDE-SECRET", "HOME-SECRET", "SQLite format", "pong"] {
        assert!(!said.contains(leaked), "{leaked} reached the model: {said}");
    }
    assert!(!planted.exists(), "a sandboxed command wrote outside");
    assert!(
        work.join("validation-saw-outside").exists(),
        "the validation command ran sandboxed"
    );
    let status = ws.run(&["status", "--json"]).ok().json();
    assert_eq!(status["landlock"]["available"], sandboxed, "{status:#}");

    // A type that opts out runs the same command unconfined.
    let fake = Fake::start(vec![
        tool("run_command", json!({"argv": ["cat", secret]})),
        text("read it"),
    ]);
    let id = run_type_with_home(&ws, &fake, "trusted", &home);
    let said = tool_results(fake.requests().last().unwrap());
    assert!(said.contains("OUTSIDE-SECRET"), "{said}");
    assert_eq!(spec_of(&ws, &id)["sandbox"], "none");
}
