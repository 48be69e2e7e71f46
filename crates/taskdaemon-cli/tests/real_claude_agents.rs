//! The hooks and the MCP server with the real Claude Code CLI, pointed at
//! the fake LLM server (see `common::claude`): what the real client sends
//! the model is what these tests check.

mod common;

use std::fs;

use common::claude::{claude, claude_command, fake_llm};
use common::{COMMAND_TIMEOUT, Run, Ws, run_command};
use serde_json::{Value, json};
use taskdaemon_fake_llm::{Block, RecordedRequest, Reply, Turn};

/// Runs `claude -p PROMPT` with stream-json output and any extra arguments.
fn claude_print(
    ws: &Ws,
    claude: &std::path::Path,
    fake: &taskdaemon_fake_llm::FakeLlm,
    prompt: &str,
    extra: &[&str],
) -> Run {
    let mut args = vec!["-p", prompt, "--output-format", "stream-json", "--verbose"];
    args.extend_from_slice(extra);
    let run = run_command(claude_command(ws, claude, fake, &args), COMMAND_TIMEOUT);
    assert_eq!(run.code, Some(0), "claude failed: {run:#?}");
    run
}

/// The Messages API requests of the conversation that carries `prompt`.
fn conversation<'a>(requests: &'a [RecordedRequest], prompt: &str) -> Vec<&'a RecordedRequest> {
    requests
        .iter()
        .filter(|r| r.path == "/v1/messages" && r.body["messages"].to_string().contains(prompt))
        .collect()
}

/// The `session_id` of the result line of a stream-json run.
fn session_of(run: &Run) -> String {
    run.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .rfind(|v| v["type"] == "result")
        .and_then(|v| v["session_id"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no result line: {}", run.stdout))
}

#[test]
fn with_hooks_installed_the_first_request_carries_the_workspace_summary() {
    let Some(claude) = claude() else { return };
    let ws = Ws::new();
    let id = ws.spawn_sh("echo listening on 8080; sleep 300");
    ws.run(&["hooks", "install", "claude"]).ok();
    let fake = fake_llm(vec![Reply::Turn(Turn::text("The dev server runs."))]);

    let prompt = "What is running in this project?";
    let run = claude_print(&ws, &claude, &fake, prompt, &[]);
    let requests = fake.requests();
    let first = conversation(&requests, prompt)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no request with the prompt: {requests:#?}"));
    // The hook's context reached the model: the process and its command,
    // in the system prompt or the messages.
    let sent = format!("{}{}", first.body["system"], first.body["messages"]);
    assert!(
        sent.contains("where work stands in this workspace"),
        "{sent}"
    );
    assert!(sent.contains(&id), "{sent}");
    assert!(sent.contains("sleep 300"), "{sent}");
    // And the hook recorded Claude's session.
    let session = session_of(&run);
    let shown = ws.run(&["session", "show", &session, "--json"]).ok().json();
    assert_eq!(shown["tool"], "claude", "{shown}");
}

#[test]
fn with_the_mcp_server_installed_claude_spawns_through_taskdaemon() {
    let Some(claude) = claude() else { return };
    let ws = Ws::new();
    ws.run(&["mcp", "install", "claude"]).ok();
    // Project servers in .mcp.json wait for approval; this is the approval.
    fs::create_dir_all(ws.root().join(".claude")).unwrap();
    fs::write(
        ws.root().join(".claude/settings.local.json"),
        json!({"enableAllProjectMcpServers": true}).to_string(),
    )
    .unwrap();
    let fake = fake_llm(vec![
        Reply::Turn(Turn::blocks(vec![
            Block::text("Starting the server under taskdaemon."),
            Block::tool_use(
                "mcp__taskdaemon__spawn",
                json!({"command": ["sh", "-c", "echo up; sleep 300"], "name": "devserver"}),
            ),
        ])),
        Reply::Turn(Turn::text("It runs under taskdaemon.")),
    ]);

    let prompt = "Start the dev server in the background.";
    let run = claude_print(
        &ws,
        &claude,
        &fake,
        prompt,
        &["--allowedTools", "mcp__taskdaemon__spawn"],
    );
    let requests = fake.requests();
    let turns = conversation(&requests, prompt);
    assert_eq!(turns.len(), 2, "{requests:#?}\n{}", run.stdout);
    assert!(
        turns[0].body["tools"]
            .as_array()
            .is_some_and(|tools| tools.iter().any(|t| t["name"] == "mcp__taskdaemon__spawn")),
        "our tools are offered"
    );

    // The process runs under taskdaemon ...
    let live = ws.ps_live();
    let process = live
        .iter()
        .find(|p| p["argv"] == json!(["sh", "-c", "echo up; sleep 300"]))
        .unwrap_or_else(|| panic!("not in ps: {live:#?}"));
    let id = process["id"].as_str().unwrap();
    assert!(id.starts_with("CLAUDE-"), "{process}");
    // ... and the tool_result the CLI sent back holds its id.
    let last = turns[1].body["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap();
    let tool_result = last["content"]
        .as_array()
        .and_then(|c| c.iter().find(|b| b["type"] == "tool_result"))
        .unwrap_or_else(|| panic!("no tool_result: {last:#}"));
    assert_ne!(tool_result["is_error"], true, "{tool_result:#}");
    assert!(
        tool_result["content"].to_string().contains(id),
        "{tool_result:#}"
    );
    // The client's session is the taskdaemon session: Claude Code gives its
    // MCP servers its session id, the one its hooks receive too.
    assert_eq!(process["session"], session_of(&run).as_str(), "{process}");
    assert_eq!(process["tool"], "claude");
}

#[test]
fn after_a_real_compaction_the_context_shows_what_ended_since_the_marker() {
    let Some(claude) = claude() else { return };
    let ws = Ws::new();
    // A process that ends when told to, after the PreCompact marker is set.
    let id = ws.spawn_sh("while [ ! -e GO ]; do sleep 0.05; done; echo bye; exit 3");
    ws.run(&["hooks", "install", "claude"]).ok();
    // Claude Code runs the hooks of one event in parallel, so the signal
    // rides on our installed PreCompact command: mark, then end the process
    // and wait until its exit is recorded, all before the summary is made.
    let settings_path = ws.root().join(".claude/settings.json");
    let mut settings: Value =
        serde_json::from_str(&fs::read_to_string(&settings_path).unwrap()).unwrap();
    let pre_compact = &mut settings["hooks"]["PreCompact"][0]["hooks"][0]["command"];
    let installed = pre_compact.as_str().unwrap().to_owned();
    let bin = common::bin();
    *pre_compact = json!(format!(
        "{installed} && touch GO && {} wait {id} >/dev/null 2>&1; true",
        bin.display()
    ));
    fs::write(&settings_path, settings.to_string()).unwrap();

    let mut script = vec![Reply::Turn(Turn::text("Hello."))];
    script.extend((0..4).map(|i| Reply::Turn(Turn::text(format!("Reply {i}.")))));
    script.push(Reply::Turn(Turn::text("<summary>We talked.</summary>")));
    script.push(Reply::Turn(Turn::text("TASK failed with exit 3.")));
    let fake = fake_llm(script);

    // Enough of a conversation that there is something to compact.
    let session = session_of(&claude_print(&ws, &claude, &fake, "hello", &[]));
    for i in 0..4 {
        claude_print(
            &ws,
            &claude,
            &fake,
            &format!("turn {i}"),
            &["--resume", &session],
        );
    }
    let compact = claude_print(&ws, &claude, &fake, "/compact", &["--resume", &session]);
    assert!(
        !compact.stdout.contains("Not enough messages"),
        "{}",
        compact.stdout
    );
    assert_eq!(ws.task_status(&id), "failed");

    let prompt = "What ended while you were compacting?";
    claude_print(&ws, &claude, &fake, prompt, &["--resume", &session]);
    let requests = fake.requests();
    let after = requests.last().unwrap();
    let sent = after.body["messages"].to_string();
    assert!(sent.contains(prompt), "{sent}");
    assert!(
        sent.contains("We talked."),
        "the compacted conversation: {sent}"
    );
    // SessionStart (source compact) put what ended since the marker into
    // the context the model sees after the compaction.
    let compacted = sent
        .find("Your context was compacted at")
        .unwrap_or_else(|| panic!("no compaction notice: {sent}"));
    let section = &sent[compacted..];
    assert!(
        section.contains(&id) && section.contains("exit 3"),
        "{section}"
    );
}
