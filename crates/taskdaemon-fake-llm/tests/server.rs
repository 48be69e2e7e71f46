//! The fake server over real HTTP: wire formats, faults, recording, and the binary.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use taskdaemon_fake_llm::{Block, FakeLlm, Reply, Route, Turn};

async fn post(url: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .header("x-api-key", "k")
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn non_streaming_anthropic_json_and_beta_query() {
    let server = FakeLlm::start([Turn::blocks(vec![
        Block::text("hi"),
        Block::tool_use("read_file", json!({"path": "a"})),
    ])
    .into()])
    .await
    .unwrap();
    let response = post(
        &format!("{}/v1/messages?beta=true", server.base_url()),
        json!({"model": "claude-x", "max_tokens": 10, "messages": []}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "message");
    assert_eq!(body["model"], "claude-x");
    assert_eq!(body["stop_reason"], "tool_use");
    assert_eq!(body["content"][1]["input"]["path"], "a");
    assert!(body["usage"]["cache_read_input_tokens"].is_u64());
    let recorded = &server.requests()[0];
    assert_eq!(recorded.query.as_deref(), Some("beta=true"));
    assert_eq!(recorded.header("X-Api-Key"), Some("k"));
}

#[tokio::test]
async fn streaming_sse_cut_and_faults() {
    let server = FakeLlm::start([
        Reply::CutAfter {
            events: 2,
            turn: Turn::text("hello world"),
        },
        Reply::RateLimited {
            retry_after: "3".into(),
        },
        Reply::Overloaded,
        Turn::text("abc").into(),
    ])
    .await
    .unwrap();
    let url = format!("{}/v1/messages", server.base_url());
    let body = json!({"model": "m", "stream": true, "messages": []});

    let cut = post(&url, body.clone()).await;
    assert_eq!(cut.status(), 200);
    assert!(
        cut.text().await.is_err(),
        "a cut stream must fail to read to the end"
    );

    let limited = post(&url, body.clone()).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "3");
    let overloaded = post(&url, body.clone()).await;
    assert_eq!(overloaded.status().as_u16(), 529);
    let err: Value = overloaded.json().await.unwrap();
    assert_eq!(err["error"]["type"], "overloaded_error");

    let ok = post(&url, body.clone()).await;
    assert_eq!(ok.headers()["content-type"], "text/event-stream");
    let text = ok.text().await.unwrap();
    assert!(text.starts_with("event: message_start\ndata: {"));
    assert!(text.contains("\"type\":\"text_delta\""));
    assert!(
        text.trim_end()
            .ends_with("data: {\"type\":\"message_stop\"}")
    );

    let exhausted = post(&url, body).await;
    assert_eq!(exhausted.status(), 400);
    assert_eq!(server.requests().len(), 5);
}

#[tokio::test]
async fn openai_stream_ends_with_usage_and_done() {
    let server = FakeLlm::start([Turn::tool("f", json!({"a": 1})).into()])
        .await
        .unwrap();
    let text = post(
        &format!("{}/v1/chat/completions", server.base_url()),
        json!({"model": "gpt", "stream": true, "stream_options": {"include_usage": true}}),
    )
    .await
    .text()
    .await
    .unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.last(), Some(&"data: [DONE]"));
    let usage: Value = serde_json::from_str(&lines[lines.len() - 2][6..]).unwrap();
    assert!(usage["usage"]["prompt_tokens"].is_u64());
    assert!(text.contains("\"finish_reason\":\"tool_calls\""));
}

/// An Anthropic request body offering `tools`, whose prompt is `prompt`.
fn anthropic_body(tools: &[&str], prompt: &str) -> Value {
    json!({"model": "m", "max_tokens": 10,
           "tools": tools.iter().map(|t| json!({"name": t, "description": "", "input_schema": {"type": "object"}})).collect::<Vec<_>>(),
           "messages": [{"role": "user", "content": [{"type": "text", "text": prompt}]}]})
}

/// The same request in OpenAI's format (system message first, tools as functions).
fn openai_body(tools: &[&str], prompt: &str) -> Value {
    json!({"model": "m",
           "tools": tools.iter().map(|t| json!({"type": "function", "function": {"name": t, "parameters": {"type": "object"}}})).collect::<Vec<_>>(),
           "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": prompt}]})
}

#[tokio::test]
async fn routes_serve_requests_by_offered_tool_in_both_wire_formats() {
    let server = FakeLlm::start_routed([
        Route::offering("create_spec")
            .prompt_contains("spec A")
            .reply(Turn::text("A1"))
            .reply(Turn::text("A2")),
        Route::offering("create_spec").reply(Turn::text("any spec")),
        Route::offering("send_message").reply(Turn::tool("send_message", json!({"to": "human"}))),
    ])
    .await
    .unwrap();
    server.push(Turn::text("queued"));
    let anthropic = format!("{}/v1/messages", server.base_url());
    let openai = format!("{}/v1/chat/completions", server.base_url());
    let text = |v: &Value| v["content"][0]["text"].as_str().unwrap_or("").to_string();

    // Interleaved as concurrent loops would send them: each gets its own script.
    let r: Value = post(
        &openai,
        openai_body(&["read_file", "send_message"], "phase 1"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        r["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "send_message"
    );
    let r: Value = post(
        &anthropic,
        anthropic_body(&["read_file", "create_spec"], "do spec B"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(text(&r), "any spec");
    let r: Value = post(
        &anthropic,
        anthropic_body(&["create_spec", "finish"], "do spec A"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(text(&r), "A1");
    let r: Value = post(&openai, openai_body(&["create_spec"], "do spec A now"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["choices"][0]["message"]["content"], "A2");
    // Both create_spec routes are spent: the plain queue answers, then nothing does.
    let r: Value = post(&anthropic, anthropic_body(&["create_spec"], "do spec A"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(text(&r), "queued");
    let exhausted = post(&anthropic, anthropic_body(&["create_spec"], "do spec A")).await;
    assert_eq!(exhausted.status(), 400);
    let err: Value = exhausted.json().await.unwrap();
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("offering [create_spec]"),
        "{err}"
    );

    let routes: Vec<Option<usize>> = server.requests().iter().map(|r| r.route).collect();
    assert_eq!(routes, [Some(2), Some(1), Some(0), Some(0), None, None]);
    let a = server.requests_served_by(0);
    assert_eq!(a.len(), 2);
    assert_eq!(a[1].prompt(), "do spec A now");
    assert_eq!(a[1].offered_tools(), ["create_spec"]);
    assert_eq!(server.route_remaining(0), 0);
    let late = server.add_route(Route::offering("ask"));
    server.push_to_route(late, Turn::text("late"));
    assert_eq!(server.route_remaining(late), 1);
    let r: Value = post(&anthropic, anthropic_body(&["ask"], "q"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(text(&r), "late");
}

#[test]
fn binary_serves_a_script_file_and_prints_its_port() {
    let dir = std::env::temp_dir().join(format!("fake-llm-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("script.json");
    std::fs::write(
        &script,
        r#"[{"kind": "turn", "blocks": [{"type": "text", "text": "from file"}]}]"#,
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_taskdaemon-fake-llm"))
        .arg(&script)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().expect("first line is the port");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body: Value = runtime.block_on(async {
        post(
            &format!("http://127.0.0.1:{port}/v1/messages"),
            json!({"model": "m", "messages": []}),
        )
        .await
        .json()
        .await
        .unwrap()
    });
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(body["content"][0]["text"], "from file");
}

#[test]
fn binary_serves_a_routed_script_file() {
    let dir = tempfile_dir("routed");
    let script = dir.join("script.json");
    std::fs::write(
        &script,
        r#"{"routes": [{"when_offers": "finish", "replies": [{"kind": "turn", "blocks": [{"type": "text", "text": "routed"}]}]}],
            "replies": [{"kind": "turn", "blocks": [{"type": "text", "text": "queued"}]}]}"#,
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_taskdaemon-fake-llm"))
        .arg(&script)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().expect("first line is the port");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/v1/messages");
    let (plain, routed): (Value, Value) = runtime.block_on(async {
        let plain = post(&url, anthropic_body(&["read_file"], "x"))
            .await
            .json()
            .await
            .unwrap();
        let routed = post(&url, anthropic_body(&["finish"], "x"))
            .await
            .json()
            .await
            .unwrap();
        (plain, routed)
    });
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(plain["content"][0]["text"], "queued");
    assert_eq!(routed["content"][0]["text"], "routed");
}

fn tempfile_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("fake-llm-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
