//! `taskdaemon mcp` as a subprocess over stdio, the way an agent runs it:
//! the handshake, the tool list, every tool against a real daemon and real
//! processes, the resources, and the error paths (the CLI's own messages).

mod common;

use common::mcp::McpChild;
use common::{COMMAND_TIMEOUT, Ws, run_command};
use serde_json::json;

#[test]
fn the_handshake_names_the_server_and_lists_every_tool() {
    let ws = Ws::new();
    let (mut mcp, init) = McpChild::start(&ws, &[], "claude-code");
    let result = &init["result"];
    assert_eq!(result["serverInfo"]["name"], "taskdaemon", "{init}");
    assert!(result["capabilities"]["tools"].is_object(), "{init}");
    assert!(result["capabilities"]["resources"].is_object(), "{init}");
    assert!(
        result["instructions"]
            .as_str()
            .unwrap()
            .contains("rehydrate")
    );

    let listed = mcp.request("tools/list", json!({}));
    let tools = listed["result"]["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 32, "{listed}");
    for tool in tools {
        assert!(
            tool["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{tool}"
        );
        assert_eq!(tool["inputSchema"]["type"], "object", "{tool}");
    }
    mcp.close();

    // `--profile core` lists fewer tools.
    let (mut core, _) = McpChild::start(&ws, &["--profile", "core"], "claude-code");
    let listed = core.request("tools/list", json!({}));
    assert_eq!(
        listed["result"]["tools"].as_array().unwrap().len(),
        12,
        "{listed}"
    );
    core.close();
    let (mut mcp, _) = McpChild::start(&ws, &[], "claude-code");
    let resources = mcp.request("resources/list", json!({}));
    assert_eq!(
        resources["result"]["resources"].as_array().unwrap().len(),
        2
    );
    // An unknown tool is a protocol error, not a crash.
    let unknown = mcp.request(
        "tools/call",
        json!({"name": "format_disk", "arguments": {}}),
    );
    assert!(unknown["error"].is_object(), "{unknown}");
    assert_eq!(mcp.close(), Some(0));
}

#[test]
fn processes_through_the_tools() {
    let ws = Ws::new();
    let (mut mcp, _) = McpChild::start(&ws, &[], "claude-code");

    let task = mcp
        .call(
            "spawn",
            json!({"command": ["sh", "-c", "echo one; echo two; echo warn >&2; echo three"], "name": "counter"}),
        )
        .json();
    let id = task["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("CLAUDE-"), "{task}");
    assert_eq!(task["tool"], "claude");
    let waited = mcp.call("wait", json!({"id": id, "timeout": "60s"})).json();
    assert_eq!(waited["ended"], true, "{waited}");
    assert_eq!(waited["status"], "succeeded", "{waited}");

    // The CLI sees what the tool started.
    let ps = ws.ps_all();
    assert!(ps.iter().any(|p| p["id"] == id.as_str()), "{ps:?}");

    let tail = mcp.call("logs", json!({"id": id, "tail": 2})).json();
    assert_eq!(tail["text"], "two\nthree\n", "{tail}");
    let all = mcp.call("logs", json!({"id": id})).json();
    assert_eq!(all["text"], "one\ntwo\nthree\n");
    let since = mcp.call("logs", json!({"id": id, "since": 4})).json();
    assert_eq!(since["text"], "two\nthree\n");
    let nothing_new = mcp
        .call("logs", json!({"id": id, "since": all["next_offset"]}))
        .json();
    assert_eq!(nothing_new["text"], "");
    let stderr = mcp.call("logs", json!({"id": id, "stderr": true})).json();
    assert_eq!(stderr["text"], "warn\n");

    let sleeper = mcp
        .call("spawn", json!({"command": ["sleep", "300"]}))
        .json();
    let sleeper_id = sleeper["id"].as_str().unwrap().to_owned();
    let timed_out = mcp
        .call("wait", json!({"id": sleeper_id, "timeout": "200ms"}))
        .json();
    assert_eq!(timed_out["ended"], false, "{timed_out}");
    let running = mcp.call("ps", json!({})).json();
    assert!(
        running
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == sleeper_id.as_str()),
        "{running}"
    );
    let restarted = mcp
        .call("restart", json!({"id": sleeper_id, "grace": "2s"}))
        .json();
    assert_eq!(restarted["status"], "running", "{restarted}");
    assert_ne!(restarted["pid"], sleeper["pid"]);
    let killed = mcp
        .call("kill", json!({"id": sleeper_id, "grace": "2s"}))
        .json();
    assert!(
        ["failed", "cancelled"].contains(&killed["status"].as_str().unwrap()),
        "{killed}"
    );

    // Errors carry exactly what the CLI prints.
    let again = mcp.call("kill", json!({"id": sleeper_id}));
    assert!(again.is_error);
    let cli = ws.run(&["kill", &sleeper_id]);
    assert_eq!(again.text, cli.stderr.trim(), "{cli:?}");
    let bad_cwd = mcp.call("spawn", json!({"command": ["true"], "cwd": "/no/such/dir"}));
    assert!(
        bad_cwd.is_error && bad_cwd.text.contains("/no/such/dir"),
        "{bad_cwd:?}"
    );
    let empty = mcp.call("spawn", json!({"command": []}));
    assert!(empty.is_error, "{empty:?}");
    let bad_signal = mcp.call("kill", json!({"id": id, "signal": "SIGNOPE"}));
    assert!(bad_signal.is_error, "{bad_signal:?}");

    let summary = mcp.call("rehydrate", json!({"peek": true}));
    assert!(!summary.is_error);
    assert!(summary.text.contains(&id), "{}", summary.text);
    assert_eq!(mcp.close(), Some(0));
}

#[test]
fn queues_loops_and_tracked_work_through_the_tools() {
    let ws = Ws::new();
    let (mut mcp, _) = McpChild::start(&ws, &["--session", "sess-7", "--tool", "gemini"], "x");

    let submitted = mcp
        .call(
            "submit",
            json!({"queue": "ad-hoc", "command": "echo queued", "id": "job-1"}),
        )
        .json();
    assert_eq!(submitted["id"], "job-1", "{submitted}");
    let listed = mcp.call("tasks_list", json!({"queue": "ad-hoc"})).json();
    let job = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "job-1");
    assert_eq!(
        job.map(|j| &j["status"]),
        Some(&json!("pending")),
        "{listed}"
    );

    // A loop is checked before anything starts: a missing spec is refused.
    let refused = mcp.call(
        "loop_run",
        json!({"spec": ws.root().join("no-spec.md"), "validate": "true"}),
    );
    assert!(
        refused.is_error && refused.text.contains("no-spec.md"),
        "{refused:?}"
    );
    assert_eq!(
        mcp.call("loop_status", json!({"all": true})).json(),
        json!([])
    );

    let added = mcp.call("task_add", json!({"title": "triage"})).json();
    let id = added["id"].as_str().unwrap();
    assert!(id.starts_with("GEMINI-"), "{added}");
    mcp.call("task_start", json!({"id": id})).json();
    mcp.call(
        "remember",
        json!({"text": "use the staging db", "kind": "fact"}),
    )
    .json();
    let resume = mcp.call("task_resume", json!({})).json();
    assert_eq!(resume["session"], "sess-7");
    assert_eq!(resume["current_task"]["id"], id);
    // The CLI shows the same session's work.
    let shown = ws.run(&["session", "show", "sess-7", "--json"]).ok().json();
    assert_eq!(shown["tool"], "gemini", "{shown}");

    let current = mcp.request(
        "resources/read",
        json!({"uri": "taskdaemon://current.json"}),
    );
    let text = current["result"]["contents"][0]["text"].as_str().unwrap();
    assert!(text.contains("triage"), "{text}");
    assert_eq!(mcp.close(), Some(0));
}

#[test]
fn outside_a_workspace_the_server_refuses_to_start_with_the_cli_message() {
    let ws = Ws::uninitialised();
    let run = run_command(ws.command_no_flag(&["mcp"]), COMMAND_TIMEOUT);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stdout.is_empty(),
        "stdout is for the protocol only: {run:?}"
    );
    assert!(
        run.stderr
            .starts_with("error: not in a taskdaemon workspace"),
        "{run:?}"
    );
}
