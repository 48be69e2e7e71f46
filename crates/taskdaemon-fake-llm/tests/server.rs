//! The fake server over real HTTP: wire formats, faults, recording, and the binary.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use taskdaemon_fake_llm::{Block, FakeLlm, Reply, Turn};

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
