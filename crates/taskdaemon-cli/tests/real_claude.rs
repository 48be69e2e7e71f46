//! The `claude-code` executor against the real Claude Code CLI.
//!
//! The daemon runs a queued document through the `claude` that npm installs
//! (`scripts/install-claude-code.sh`; `TASKDAEMON_TEST_CLAUDE` names one
//! already installed, as `.ci/run` does), pointed by `ANTHROPIC_BASE_URL` at
//! the fake LLM server on loopback, with non-essential traffic off. So the
//! real client makes real Messages API requests, runs a real tool, and its
//! real stream-json is what the result and report are built from.
//!
//! Without an installed `claude`, the test installs one; it skips, loudly,
//! only when the npm registry cannot be reached.

mod common;

use std::fs;

use common::Ws;
use common::claude::{claude, fake_llm};
use serde_json::{Value, json};
use taskdaemon_fake_llm::{Block, RecordedRequest, Reply, Turn, Usage};

const ADHOC: &str = "tasks/ad-hoc";

fn text_of(request: &RecordedRequest) -> String {
    request.body["messages"].to_string()
}

#[test]
fn a_queued_document_runs_through_the_real_claude_code_cli() {
    let Some(claude) = claude() else { return };
    let mut ws = Ws::new();
    let notes = ws.root().join("NOTES.md");
    fs::write(&notes, "ship it on Friday\n").unwrap();

    // What "the model" says: read the notes with Claude Code's own Read
    // tool, then answer. Usage is per turn; the CLI sums it.
    let fake = fake_llm(vec![
        Reply::Turn(
            Turn::blocks(vec![
                Block::text("Reading the notes."),
                Block::tool_use("Read", json!({"file_path": notes.to_str().unwrap()})),
            ])
            .with_usage(Usage {
                input_tokens: 100,
                output_tokens: 20,
                cache_creation_input_tokens: 64,
                cache_read_input_tokens: 0,
            }),
        ),
        Reply::Turn(
            Turn::text("The notes say: ship it on Friday.").with_usage(Usage {
                input_tokens: 150,
                output_tokens: 8,
                cache_creation_input_tokens: 0,
                cache_read_input_tokens: 90,
            }),
        ),
    ]);

    ws.write_config(&format!(
        r#"
[queues]
watch_debounce_ms = 50
max_attempts = 1

[executors]
claude_path = "{}"

[[queue]]
id = "ad-hoc"
path = "tasks/ad-hoc"
"#,
        claude.display()
    ));
    // The daemon passes its environment to executors: only the fake server,
    // any key, no telemetry or update checks, and a scratch HOME so the
    // CLI's own settings and history stay out of the user's.
    let home = ws.root().join("home");
    fs::create_dir_all(&home).unwrap();
    ws.set_env("HOME", home.to_str().unwrap());
    ws.set_env("ANTHROPIC_BASE_URL", &fake.base_url());
    ws.set_env("ANTHROPIC_API_KEY", "sk-ant-test-key");
    ws.set_env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1");
    ws.drop_document(
        ADHOC,
        "task-20260101-0900-notes.md",
        "---\nexecutor: claude-code\nmodel: claude-sonnet-4-5\nallowed_tools: [Read]\n---\nWhat do the notes say?\n",
    );
    ws.run(&["start"]).ok();

    let result = ws.wait_result(ADHOC, "task-20260101-0900-notes");
    let id = "task-20260101-0900-notes";
    let stdout = ws.stdout_log(id);
    let final_line: Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .rfind(|v| v["type"] == "result")
        .unwrap_or_else(|| panic!("no result line from claude:\n{stdout}"));
    assert_eq!(result["status"], "succeeded", "{result:#}\n{stdout}");
    assert_eq!(result["exit_code"], 0);
    assert_eq!(result["attempt"], 1);
    assert_eq!(result["error"], Value::Null);
    // One tool round trip: two turns, the usage of both.
    assert_eq!(result["num_turns"], 2);
    assert_eq!(
        result["tokens"],
        json!({"input": 250, "output": 28, "cache_read": 90, "cache_creation": 64})
    );
    // Claude Code prices the usage itself; the executor keeps its figure.
    let cost = result["cost_usd"].as_f64().expect("cost_usd");
    assert!(cost > 0.0, "{result:#}");
    assert_eq!(result["cost_usd"], final_line["total_cost_usd"]);
    let session = result["session_id"].as_str().expect("session_id");
    assert_eq!(final_line["session_id"], session);
    assert_eq!(final_line["result"], "The notes say: ship it on Friday.");

    let report = fs::read_to_string(ws.queue_dir(ADHOC).join(format!("reports/{id}.md"))).unwrap();
    assert!(report.contains("succeeded"), "{report}");
    assert!(
        report.contains("The notes say: ship it on Friday."),
        "{report}"
    );
    assert!(report.contains(session), "{report}");
    assert!(
        report.contains("250 in, 28 out, 90 cache read, 64 cache write"),
        "{report}"
    );
    assert!(
        ws.queue_dir(ADHOC)
            .join(format!("completed/{id}.md"))
            .is_file()
    );

    // What the real client sent: exactly the two streamed Messages API
    // calls, with our key, model and prompt, the second carrying the Read
    // tool's result (the file's text) back.
    let requests = fake.requests();
    let summary: Vec<String> = requests
        .iter()
        .map(|r| {
            format!(
                "{} {}?{}",
                r.method,
                r.path,
                r.query.as_deref().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        summary,
        ["POST /v1/messages?beta=true", "POST /v1/messages?beta=true"],
        "{requests:#?}"
    );
    for request in &requests {
        assert_eq!(request.header("x-api-key"), Some("sk-ant-test-key"));
        assert_eq!(request.header("x-claude-code-session-id"), Some(session));
        assert_eq!(request.body["stream"], true);
        assert_eq!(request.body["model"], "claude-sonnet-4-5");
        assert!(
            request.body["tools"]
                .as_array()
                .is_some_and(|tools| tools.iter().any(|t| t["name"] == "Read")),
            "the Read tool is offered"
        );
    }
    assert!(text_of(&requests[0]).contains("What do the notes say?"));
    let answer = &requests[1].body["messages"];
    let tool_result = answer
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_array())
        .and_then(|c| c.iter().find(|b| b["type"] == "tool_result"))
        .unwrap_or_else(|| panic!("no tool_result in the second request: {answer:#}"));
    assert!(
        tool_result["content"]
            .to_string()
            .contains("ship it on Friday"),
        "{tool_result:#}"
    );
    assert_eq!(fake.remaining(), 0);

    // `tasks show` carries the same figures.
    let shown = ws.run(&["tasks", "show", id]).ok().stdout;
    assert!(shown.contains(session), "{shown}");
    assert!(shown.contains("\"input\":250"), "{shown}");
}
