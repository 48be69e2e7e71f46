//! `taskdaemon hooks ...`, `mcp install ...` and `hook ...` through the
//! binary: merging into settings files that already hold other hooks and
//! servers, and what the hooks print.

mod common;

use std::fs;
use std::path::Path;

use common::Ws;
use serde_json::{Value, json};

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

/// A workspace whose HOME is a directory of its own.
fn ws_with_home() -> Ws {
    let mut ws = Ws::new();
    let home = ws.root().join("home");
    fs::create_dir_all(&home).unwrap();
    ws.set_env("HOME", home.to_str().unwrap());
    ws.set_env("CODEX_HOME", ws.root().join("codex-home").to_str().unwrap());
    ws
}

fn other_settings() -> Value {
    json!({
        "permissions": {"allow": ["Bash(npm test:*)"]},
        "hooks": {
            "SessionStart": [{"matcher": "startup", "hooks": [{"type": "command", "command": "./scripts/banner.sh"}]}],
            "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "./scripts/guard.sh"}]}]
        }
    })
}

#[test]
fn hooks_merge_into_settings_with_other_hooks_and_come_out_cleanly() {
    let ws = ws_with_home();
    let project = ws.root().join(".claude/settings.json");
    fs::create_dir_all(project.parent().unwrap()).unwrap();
    fs::write(
        &project,
        serde_json::to_string_pretty(&other_settings()).unwrap(),
    )
    .unwrap();

    let run = ws.run(&["hooks", "install", "claude"]).ok();
    assert!(run.stdout.starts_with("installed"), "{run:?}");
    let settings = read_json(&project);
    assert_eq!(settings["permissions"], other_settings()["permissions"]);
    assert_eq!(
        settings["hooks"]["PreToolUse"],
        other_settings()["hooks"]["PreToolUse"]
    );
    let starts = settings["hooks"]["SessionStart"].as_array().unwrap();
    assert_eq!(starts[0], other_settings()["hooks"]["SessionStart"][0]);
    assert_eq!(starts[1]["matcher"], "startup|resume|compact|clear");
    let command = starts[1]["hooks"][0]["command"].as_str().unwrap();
    assert!(
        command.ends_with("taskdaemon hook session-start"),
        "{command}"
    );
    let pre = &settings["hooks"]["PreCompact"][0]["hooks"][0]["command"];
    assert!(
        pre.as_str()
            .unwrap()
            .ends_with("taskdaemon hook pre-compact")
    );

    let before = fs::read_to_string(&project).unwrap();
    let again = ws.run(&["hooks", "install", "claude"]).ok();
    assert!(again.stdout.starts_with("unchanged"), "{again:?}");
    assert_eq!(fs::read_to_string(&project).unwrap(), before);

    ws.run(&["hooks", "install", "claude", "--scope", "user"])
        .ok();
    let user = ws.root().join("home/.claude/settings.json");
    let status = ws.run(&["hooks", "status", "--json"]).ok().json();
    let installed: Vec<(String, usize)> = status
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["scope"].as_str().unwrap().to_owned(),
                s["hooks"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        installed,
        [
            ("project".to_owned(), 2),
            ("local".to_owned(), 0),
            ("user".to_owned(), 2)
        ]
    );

    ws.run(&["hooks", "uninstall", "claude"]).ok();
    assert_eq!(read_json(&project), other_settings());
    assert_eq!(read_json(&user), json!({}));
    // A settings file we cannot parse is left alone, with its position named.
    fs::write(&project, "{\"hooks\": [}").unwrap();
    let broken = ws.run(&["hooks", "install", "claude"]);
    assert_eq!(broken.code, Some(1), "{broken:?}");
    assert!(broken.stderr.contains("settings.json:1:"), "{broken:?}");
    assert_eq!(fs::read_to_string(&project).unwrap(), "{\"hooks\": [}");
}

#[test]
fn the_mcp_server_merges_into_each_clients_config() {
    let ws = ws_with_home();
    let root = ws.root();
    let mcp_json = root.join(".mcp.json");
    fs::write(
        &mcp_json,
        r#"{"mcpServers": {"github": {"type": "http", "url": "https://api.example/mcp"}}}"#,
    )
    .unwrap();
    let gemini = root.join(".gemini/settings.json");
    fs::create_dir_all(gemini.parent().unwrap()).unwrap();
    fs::write(
        &gemini,
        r#"{"theme": "GitHub", "mcpServers": {"db": {"command": "db-mcp"}}}"#,
    )
    .unwrap();
    let codex = root.join("codex-home/config.toml");
    fs::create_dir_all(codex.parent().unwrap()).unwrap();
    let codex_before = "# mine\nmodel = \"o3\"\n\n[mcp_servers.docs]\ncommand = \"docs-mcp\"\n";
    fs::write(&codex, codex_before).unwrap();

    for client in ["claude", "codex", "gemini", "cursor"] {
        let run = ws.run(&["mcp", "install", client]).ok();
        assert!(run.stdout.starts_with("installed"), "{client}: {run:?}");
        let again = ws.run(&["mcp", "install", client]).ok();
        assert!(again.stdout.starts_with("unchanged"), "{client}: {again:?}");
    }
    let claude = read_json(&mcp_json);
    assert_eq!(
        claude["mcpServers"]["github"]["url"],
        "https://api.example/mcp"
    );
    let ours = &claude["mcpServers"]["taskdaemon"];
    assert_eq!(ours["type"], "stdio");
    assert_eq!(ours["args"], json!(["mcp"]));
    assert!(
        Path::new(ours["command"].as_str().unwrap()).is_file(),
        "{ours}"
    );
    let gemini_config = read_json(&gemini);
    assert_eq!(gemini_config["theme"], "GitHub");
    assert_eq!(gemini_config["mcpServers"]["db"]["command"], "db-mcp");
    assert_eq!(
        gemini_config["mcpServers"]["taskdaemon"]["args"],
        json!(["mcp"])
    );
    let cursor = read_json(&root.join(".cursor/mcp.json"));
    assert_eq!(cursor["mcpServers"]["taskdaemon"]["args"], json!(["mcp"]));
    let codex_text = fs::read_to_string(&codex).unwrap();
    assert!(codex_text.starts_with(codex_before), "{codex_text}");
    assert!(
        codex_text.contains("[mcp_servers.taskdaemon]\ncommand = "),
        "{codex_text}"
    );

    // --command writes the program people have on PATH.
    ws.run(&["mcp", "install", "cursor", "--command", "taskdaemon"])
        .ok();
    let cursor = read_json(&root.join(".cursor/mcp.json"));
    assert_eq!(cursor["mcpServers"]["taskdaemon"]["command"], "taskdaemon");

    for client in ["claude", "codex", "gemini", "cursor"] {
        let run = ws.run(&["mcp", "uninstall", client]).ok();
        assert!(run.stdout.starts_with("removed"), "{client}: {run:?}");
    }
    assert_eq!(
        read_json(&mcp_json),
        json!({"mcpServers": {"github": {"type": "http", "url": "https://api.example/mcp"}}})
    );
    assert_eq!(
        read_json(&gemini),
        json!({"theme": "GitHub", "mcpServers": {"db": {"command": "db-mcp"}}})
    );
    assert_eq!(fs::read_to_string(&codex).unwrap(), codex_before);
}

/// What a SessionStart hook put into the context.
fn context_of(run: &common::Run) -> String {
    assert_eq!(run.code, Some(0), "{run:?}");
    let answer: Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run:?}"));
    assert_eq!(
        answer["hookSpecificOutput"]["hookEventName"],
        "SessionStart"
    );
    answer["hookSpecificOutput"]["additionalContext"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn hook_input(ws: &Ws, session: &str, source: &str) -> String {
    json!({
        "session_id": session,
        "transcript_path": ws.root().join("transcript.jsonl"),
        "cwd": ws.root(),
        "hook_event_name": "SessionStart",
        "source": source,
    })
    .to_string()
}

#[test]
fn session_start_injects_the_summary_for_the_hooks_session() {
    let ws = Ws::new();
    let id = ws.spawn_sh("echo serving; sleep 300");
    ws.run(&[
        "task",
        "add",
        "wire the cache",
        "--session",
        "sess-1",
        "--tool",
        "claude",
    ])
    .ok();
    ws.run(&["task", "start", "CLAUDE-2", "--session", "sess-1"])
        .ok();

    // No --workspace: the hook finds it from the input's cwd.
    let run = common::run_command_input(
        ws.command_no_flag(&["hook", "session-start"]),
        &hook_input(&ws, "sess-1", "startup"),
        common::COMMAND_TIMEOUT,
    );
    let context = context_of(&run);
    assert!(
        context.contains(&id) && context.contains("sleep 300"),
        "{context}"
    );
    assert!(context.contains("wire the cache"), "{context}");
    assert!(context.chars().count() <= 10_000);
    // The hook's session is recorded as Claude's.
    let session = ws.run(&["session", "show", "sess-1", "--json"]).ok().json();
    assert_eq!(session["tool"], "claude");
}

#[test]
fn a_compact_session_start_shows_what_ended_since_the_pre_compact_marker() {
    let ws = Ws::new();
    let before = ws.spawn_sh("exit 0");
    ws.run(&["wait", &before]);
    // Seen before the compaction: not news afterwards.
    ws.run(&["rehydrate"]).ok();

    let pre = ws.run_input(
        &["hook", "pre-compact"],
        &json!({"session_id": "sess-9", "hook_event_name": "PreCompact", "trigger": "auto"})
            .to_string(),
    );
    assert_eq!(pre.code, Some(0), "{pre:?}");
    assert!(
        pre.stdout.is_empty(),
        "PreCompact's stdout would steer the summary: {pre:?}"
    );

    let during = ws.spawn_sh("echo broken >&2; exit 3");
    ws.run(&["wait", &during]);
    // An ordinary rehydrate in between reports it (and marks it seen) ...
    assert!(ws.run(&["rehydrate"]).ok().stdout.contains(&during));
    // ... yet after the compaction it is shown again: the agent lost it.
    let context = context_of(&ws.run_input(
        &["hook", "session-start"],
        &hook_input(&ws, "sess-9", "compact"),
    ));
    assert!(context.contains("compacted at"), "{context}");
    assert!(
        context.contains(&during) && context.contains("exit 3"),
        "{context}"
    );
    assert!(!context.contains(&before), "{context}");

    // The marker is used up: the next compaction start reports nothing old.
    let next = context_of(&ws.run_input(
        &["hook", "session-start"],
        &hook_input(&ws, "sess-9", "compact"),
    ));
    assert!(!next.contains(&during), "{next}");
    assert!(!next.contains("compacted at"), "{next}");
}

#[test]
fn a_hook_never_fails_the_session() {
    let ws = Ws::new();
    fs::write(ws.db_path(), "this is not a database").unwrap();
    for wal in ["state.db-wal", "state.db-shm"] {
        let _ = fs::remove_file(ws.state_dir().join(wal));
    }
    let run = ws.run_input(&["hook", "session-start"], &hook_input(&ws, "s", "startup"));
    let context = context_of(&run);
    assert!(context.starts_with("taskdaemon: "), "{context}");
    assert!(context.len() < 600, "a short notice: {context}");
    let run = ws.run_input(&["hook", "pre-compact"], "not even json");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    assert!(run.stderr.contains("taskdaemon: "), "{run:?}");

    // Outside any workspace the hooks are silent.
    let elsewhere = tempfile::tempdir().unwrap();
    let input =
        json!({"session_id": "s", "cwd": elsewhere.path(), "source": "startup"}).to_string();
    let mut command = std::process::Command::new(common::bin());
    command
        .args(["hook", "session-start"])
        .current_dir(elsewhere.path())
        .env_remove("TASKDAEMON_WORKSPACE");
    let run = common::run_command_input(command, &input, common::COMMAND_TIMEOUT);
    assert_eq!((run.code, run.stdout.as_str()), (Some(0), ""), "{run:?}");
}

/// With a daemon running, the hooks have it answer on its open store
/// instead of opening the store themselves: a config file broken on disk
/// (which stops anything that opens the store here) does not reach them.
#[test]
fn the_hooks_ask_a_running_daemon() {
    let ws = Ws::new();
    let id = ws.spawn_sh("echo serving; sleep 300");
    let config = ws.state_dir().join("config.toml");
    let good = fs::read_to_string(&config).unwrap();
    fs::write(&config, "[queues\n").unwrap();
    let opened_here = ws.run(&["status", "--detailed"]);
    assert!(
        opened_here.stderr.contains("config.toml"),
        "{opened_here:?}"
    );

    let context = context_of(&ws.run_input(
        &["hook", "session-start"],
        &hook_input(&ws, "sess-d", "startup"),
    ));
    assert!(context.contains(&id), "{context}");
    let pre = ws.run_input(
        &["hook", "pre-compact"],
        &json!({"session_id": "sess-d", "hook_event_name": "PreCompact"}).to_string(),
    );
    assert_eq!((pre.code, pre.stderr.as_str()), (Some(0), ""), "{pre:?}");
    // `spawn` reads the config itself.
    fs::write(&config, &good).unwrap();
    let ended = ws.spawn_sh("exit 4");
    ws.run(&["wait", &ended]);
    fs::write(&config, "[queues\n").unwrap();
    let after = context_of(&ws.run_input(
        &["hook", "session-start"],
        &hook_input(&ws, "sess-d", "compact"),
    ));
    assert!(
        after.contains("compacted at"),
        "the daemon set the marker: {after}"
    );
    assert!(after.contains(&ended), "{after}");

    fs::write(&config, good).unwrap();
    let session = ws.run(&["session", "show", "sess-d", "--json"]).ok().json();
    assert_eq!(session["tool"], "claude", "the daemon recorded the session");
    ws.run(&["kill", &id]).ok();
}
